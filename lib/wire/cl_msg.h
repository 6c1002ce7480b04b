/*
 * Wire messages as plain C structs, and their codec. Decoding turns one frame
 * body (a serialised Envelope) into a cl_msg and checks every field length;
 * nothing outside this module touches protobuf-c types. Encoding writes a
 * complete frame (length prefix included) into a caller buffer.
 */
#ifndef CL_MSG_H
#define CL_MSG_H

#include "cl_layout.h"

#include <stddef.h>
#include <stdint.h>

#define CL_PROTOCOL_VERSION 1u
#define CL_MAX_CHIPS_PER_REGISTER 64
#define CL_MAX_AGENT_NAME 64
#define CL_MAX_ERROR_TEXT 200
#define CL_MAX_DETAIL 96

typedef enum {
  CL_MSG_HELLO = 1,
  CL_MSG_REGISTER,
  CL_MSG_REGISTER_RESULT,
  CL_MSG_CHALLENGE,
  CL_MSG_RESPONSE,
  CL_MSG_ERROR,
} cl_msg_type;

/* Values match the RefuseReason and ErrorCode enums of proto/chiploc.proto. */
typedef enum {
  CL_REFUSE_NONE = 0,
  CL_REFUSE_NOT_ENROLLED = 1,
  CL_REFUSE_BAD_PROOF = 2,
  CL_REFUSE_DUPLICATE = 3,
  CL_REFUSE_INACTIVE = 4,
} cl_refuse_reason;

typedef enum {
  CL_ERR_NONE = 0,
  CL_ERR_VERSION = 1,
  CL_ERR_MALFORMED = 2,
  CL_ERR_TOO_LARGE = 3,
  CL_ERR_UNEXPECTED = 4,
  CL_ERR_UNKNOWN_NONCE = 5,
  CL_ERR_REPLAY = 6,
  CL_ERR_LATE = 7,
  CL_ERR_BAD_SIGNATURE = 8,
  CL_ERR_NOT_REGISTERED = 9,
  CL_ERR_BAD_LANDMARK = 10,
  CL_ERR_LIMIT = 11,
} cl_wire_error;

typedef struct {
  uint8_t chip[CL_PK_LEN];
  uint8_t proof[CL_SIG_LEN];
} cl_chip_claim;

typedef struct {
  uint8_t chip[CL_PK_LEN];
  int accepted;
  cl_refuse_reason reason;
  char detail[CL_MAX_DETAIL + 1];
} cl_chip_result;

typedef struct {
  cl_msg_type type;
  uint32_t version;
  union {
    struct {
      uint8_t landmark[CL_PK_LEN];
      uint8_t session_nonce[CL_NONCE_LEN];
    } hello;
    struct {
      char agent[CL_MAX_AGENT_NAME + 1];
      size_t n;
      cl_chip_claim chips[CL_MAX_CHIPS_PER_REGISTER];
    } reg;
    struct {
      size_t n;
      cl_chip_result r[CL_MAX_CHIPS_PER_REGISTER];
    } reg_result;
    cl_challenge challenge;
    struct {
      uint8_t chip[CL_PK_LEN];
      uint8_t nonce[CL_NONCE_LEN];
      uint8_t sig[CL_SIG_LEN];
    } response;
    struct {
      cl_wire_error code;
      char text[CL_MAX_ERROR_TEXT + 1];
    } error;
  } u;
} cl_msg;

/*
 * Decodes one frame body. Returns 0 and fills *out, or:
 *   CL_EMALFORMED  not a valid Envelope, or a field of the wrong length, or
 *                  too many chips / too long a string;
 *   CL_EVERSION    envelope version is not CL_PROTOCOL_VERSION (out->version
 *                  holds the peer's version);
 *   CL_EUNKNOWNMSG no message type this version knows.
 * err (may be NULL) receives a one-line reason naming the field.
 */
int cl_msg_decode(const uint8_t *body, size_t len, cl_msg *out, char *err, size_t errlen);

/*
 * Encodes msg (its version field is ignored; CL_PROTOCOL_VERSION is sent,
 * unless version_override is non-zero, for tests) as a complete frame into
 * out[0..cap). Returns 0 and sets *outlen, CL_ETOOBIG if it does not fit or
 * exceeds CL_FRAME_MAX, CL_EINVAL on a bad struct (n too large).
 */
int cl_msg_encode(const cl_msg *msg, uint8_t *out, size_t cap, size_t *outlen);
int cl_msg_encode_version(const cl_msg *msg, uint32_t version, uint8_t *out, size_t cap,
                          size_t *outlen);

/* Convenience: an Error frame. text is truncated to CL_MAX_ERROR_TEXT. */
int cl_msg_encode_error(cl_wire_error code, const char *text, uint8_t *out, size_t cap,
                        size_t *outlen);

const char *cl_wire_error_name(cl_wire_error code);
const char *cl_refuse_reason_name(cl_refuse_reason r);
const char *cl_msg_type_name(cl_msg_type t);

#endif
