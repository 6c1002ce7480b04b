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

#define CL_PROTOCOL_VERSION 2u
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
  CL_MSG_CONFIRM,
  CL_MSG_BURST_END,
  CL_MSG_TRANSCRIPT,
  CL_MSG_REKEY,
} cl_msg_type;

/* Values match the RefuseReason and ErrorCode enums of proto/chiploc.proto. */
typedef enum {
  CL_REFUSE_NONE = 0,
  CL_REFUSE_NOT_ENROLLED = 1,
  CL_REFUSE_BAD_PROOF = 2,
  CL_REFUSE_DUPLICATE = 3,
  CL_REFUSE_INACTIVE = 4,
  CL_REFUSE_NOT_ASKED = 5,
} cl_refuse_reason;
#define CL_REFUSE__COUNT 6

typedef enum {
  CL_ERR_NONE = 0,
  CL_ERR_VERSION = 1,
  CL_ERR_MALFORMED = 2,
  CL_ERR_TOO_LARGE = 3,
  CL_ERR_UNEXPECTED = 4,
  CL_ERR_UNKNOWN_PROBE = 5,
  CL_ERR_REPLAY = 6,
  CL_ERR_LATE = 7,
  CL_ERR_BAD_MAC = 8,
  CL_ERR_NOT_REGISTERED = 9,
  CL_ERR_BAD_LANDMARK = 10,
  CL_ERR_LIMIT = 11,
  CL_ERR_SUITE = 12,
  CL_ERR_BAD_HANDSHAKE = 13,
  CL_ERR_BAD_TRANSCRIPT = 14,
  CL_ERR_CHIP_TAKEN_OVER = 15,
} cl_wire_error;

/* A chip's half of a handshake. */
typedef struct {
  uint8_t chip[CL_PK_LEN];
  uint8_t eph[CL_EPH_LEN];
  uint8_t nonce[CL_NONCE_LEN];
} cl_chip_offer;

/* The landmark's half (eph, nonce, sig set only when accepted). */
typedef struct {
  uint8_t chip[CL_PK_LEN];
  int accepted;
  cl_refuse_reason reason;
  char detail[CL_MAX_DETAIL + 1];
  uint8_t eph[CL_EPH_LEN];
  uint8_t nonce[CL_NONCE_LEN];
  uint8_t sig[CL_SIG_LEN];
} cl_chip_result;

typedef struct {
  uint8_t chip[CL_PK_LEN];
  uint8_t sig[CL_SIG_LEN];
} cl_chip_confirm;

typedef struct {
  cl_msg_type type;
  uint32_t version;
  union {
    struct {
      uint8_t landmark[CL_PK_LEN];
      uint32_t suite;
    } hello;
    struct {
      char agent[CL_MAX_AGENT_NAME + 1];
      uint32_t suite;
      size_t n;
      cl_chip_offer chips[CL_MAX_CHIPS_PER_REGISTER];
    } reg;
    struct {
      size_t n;
      cl_chip_result r[CL_MAX_CHIPS_PER_REGISTER];
    } reg_result;
    struct {
      size_t n;
      cl_chip_confirm chips[CL_MAX_CHIPS_PER_REGISTER];
    } confirm;
    struct {
      uint8_t chip[CL_PK_LEN];
      uint64_t seq;
      uint8_t nonce[CL_NONCE_LEN];
    } challenge;
    struct {
      uint8_t chip[CL_PK_LEN];
      uint64_t seq;
      uint8_t mac[CL_MAC_LEN];
    } response;
    struct {
      uint8_t chip[CL_PK_LEN];
      size_t n; /* 1..CL_MAX_BURST */
      uint64_t seqs[CL_MAX_BURST];
    } burst_end;
    struct {
      uint8_t chip[CL_PK_LEN];
      uint64_t first_seq;
      uint8_t sig[CL_SIG_LEN];
    } transcript;
    struct {
      uint8_t chip[CL_PK_LEN];
    } rekey;
    struct {
      cl_wire_error code;
      char text[CL_MAX_ERROR_TEXT + 1];
    } error;
  } u;
} cl_msg;

/*
 * Decodes one frame body. Returns 0 and fills *out, or:
 *   CL_EMALFORMED  not a valid Envelope, or a field of the wrong length, or
 *                  too many chips or seqs / too long a string, or seqs not
 *                  strictly increasing;
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
