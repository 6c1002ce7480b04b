/*
 * The fixed byte layouts that chiploc signs. Signatures never cover a
 * protobuf serialisation. Each layout begins with a versioned context string
 * and its terminating NUL byte; integers are unsigned big-endian; keys,
 * nonces and signatures are raw bytes. docs/PROTOCOL.md is the normative
 * description and must change together with this file.
 */
#ifndef CL_LAYOUT_H
#define CL_LAYOUT_H

#include "cl_key.h"

#include <stddef.h>
#include <stdint.h>

#define CL_NONCE_LEN 32

#define CL_CTX_CHALLENGE "chiploc v1 challenge"
#define CL_CTX_RESPONSE "chiploc v1 response"
#define CL_CTX_REGISTER "chiploc v1 register"
#define CL_CTX_MEASUREMENT "chiploc v1 measurement"

/* Sizes of the layouts, context NUL included. */
#define CL_CHALLENGE_LAYOUT_LEN (sizeof CL_CTX_CHALLENGE + 3 * 32 + 8 + 8)
#define CL_RESPONSE_LAYOUT_LEN (sizeof CL_CTX_RESPONSE + CL_CHALLENGE_LAYOUT_LEN + CL_SIG_LEN)
#define CL_REGISTER_LAYOUT_LEN (sizeof CL_CTX_REGISTER + 3 * 32)
#define CL_MEASUREMENT_LAYOUT_LEN \
  (sizeof CL_CTX_MEASUREMENT + 3 * 32 + 8 + 8 + CL_SIG_LEN + CL_SIG_LEN + 8 + 4 + 8)

typedef struct {
  uint8_t landmark[CL_PK_LEN];
  uint8_t chip[CL_PK_LEN];
  uint8_t nonce[CL_NONCE_LEN];
  uint64_t issued_unix_ns;
  uint64_t seq;
  uint8_t sig[CL_SIG_LEN]; /* landmark signature over the challenge layout */
} cl_challenge;

/* One signed measurement record: the fastest accepted probe of a burst. */
typedef struct {
  cl_challenge ch;              /* the challenge of the fastest probe */
  uint8_t chip_sig[CL_SIG_LEN]; /* chip signature over the response layout */
  uint64_t rtt_ns;              /* minimum RTT of the burst */
  uint32_t probe_count;         /* accepted probes in the burst */
  uint64_t measured_unix_ns;    /* landmark wall clock when the burst ended */
  uint8_t sig[CL_SIG_LEN];      /* landmark signature over the measurement layout */
} cl_measurement;

/* Each writes exactly the layout's length into out and returns it. */
size_t cl_layout_challenge(uint8_t out[CL_CHALLENGE_LAYOUT_LEN], const cl_challenge *ch);
size_t cl_layout_response(uint8_t out[CL_RESPONSE_LAYOUT_LEN], const cl_challenge *ch);
size_t cl_layout_register(uint8_t out[CL_REGISTER_LAYOUT_LEN], const uint8_t landmark[CL_PK_LEN],
                          const uint8_t session_nonce[CL_NONCE_LEN], const uint8_t chip[CL_PK_LEN]);
size_t cl_layout_measurement(uint8_t out[CL_MEASUREMENT_LAYOUT_LEN], const cl_measurement *m);

/* Landmark: fills ch->sig. ch->landmark must equal the key's public key. */
void cl_challenge_sign(cl_challenge *ch, const cl_key *landmark);
/* Returns 0 or CL_EBADSIG; checks ch->sig under ch->landmark. */
int cl_challenge_verify(const cl_challenge *ch);
/* Chip: signs the response layout of ch. */
void cl_response_sign(const cl_challenge *ch, const cl_key *chip, uint8_t sig[CL_SIG_LEN]);
/* Returns 0 or CL_EBADSIG; checks sig under ch->chip. */
int cl_response_verify(const cl_challenge *ch, const uint8_t sig[CL_SIG_LEN]);
void cl_register_sign(const uint8_t landmark[CL_PK_LEN], const uint8_t session_nonce[CL_NONCE_LEN],
                      const cl_key *chip, uint8_t sig[CL_SIG_LEN]);
int cl_register_verify(const uint8_t landmark[CL_PK_LEN],
                       const uint8_t session_nonce[CL_NONCE_LEN], const uint8_t chip[CL_PK_LEN],
                       const uint8_t sig[CL_SIG_LEN]);
/* Landmark: fills m->sig. */
void cl_measurement_sign(cl_measurement *m, const cl_key *landmark);
/* Offline re-verification of a record: the landmark signature, the landmark's
 * challenge signature and the chip signature. Returns 0 or CL_EBADSIG. */
int cl_measurement_verify(const cl_measurement *m);

void cl_put_be64(uint8_t *p, uint64_t v);
/* The 64 bits of an IEEE-754 double, big-endian: how digests encode a
 * position or a vertex exactly. */
void cl_put_be64_double(uint8_t *p, double v);
void cl_put_be32(uint8_t *p, uint32_t v);
uint64_t cl_get_be64(const uint8_t *p);
uint32_t cl_get_be32(const uint8_t *p);

#endif
