/* Signed byte layouts: build, sign, verify. Pure functions, no I/O. */
#include "cl_layout.h"
#include "cl_err.h"

#include <string.h>

void cl_put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
}

void cl_put_be64_double(uint8_t *p, double v) {
  uint64_t bits;
  _Static_assert(sizeof bits == sizeof v, "double is 64 bits");
  memcpy(&bits, &v, sizeof bits);
  cl_put_be64(p, bits);
}

void cl_put_be32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--) {
    p[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
}

uint64_t cl_get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return v;
}

uint32_t cl_get_be32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = (v << 8) | p[i];
  return v;
}

/* Copies a context string including its NUL and returns the new cursor. */
static uint8_t *put_ctx(uint8_t *p, const char *ctx, size_t size_with_nul) {
  memcpy(p, ctx, size_with_nul);
  return p + size_with_nul;
}

static uint8_t *put(uint8_t *p, const void *src, size_t n) {
  memcpy(p, src, n);
  return p + n;
}

size_t cl_layout_challenge(uint8_t out[CL_CHALLENGE_LAYOUT_LEN], const cl_challenge *ch) {
  uint8_t *p = put_ctx(out, CL_CTX_CHALLENGE, sizeof CL_CTX_CHALLENGE);
  p = put(p, ch->landmark, CL_PK_LEN);
  p = put(p, ch->chip, CL_PK_LEN);
  p = put(p, ch->nonce, CL_NONCE_LEN);
  cl_put_be64(p, ch->issued_unix_ns);
  p += 8;
  cl_put_be64(p, ch->seq);
  p += 8;
  return (size_t)(p - out);
}

size_t cl_layout_response(uint8_t out[CL_RESPONSE_LAYOUT_LEN], const cl_challenge *ch) {
  uint8_t *p = put_ctx(out, CL_CTX_RESPONSE, sizeof CL_CTX_RESPONSE);
  p += cl_layout_challenge(p, ch);
  p = put(p, ch->sig, CL_SIG_LEN);
  return (size_t)(p - out);
}

size_t cl_layout_register(uint8_t out[CL_REGISTER_LAYOUT_LEN], const uint8_t landmark[CL_PK_LEN],
                          const uint8_t session_nonce[CL_NONCE_LEN], const uint8_t chip[CL_PK_LEN]) {
  uint8_t *p = put_ctx(out, CL_CTX_REGISTER, sizeof CL_CTX_REGISTER);
  p = put(p, landmark, CL_PK_LEN);
  p = put(p, session_nonce, CL_NONCE_LEN);
  p = put(p, chip, CL_PK_LEN);
  return (size_t)(p - out);
}

size_t cl_layout_measurement(uint8_t out[CL_MEASUREMENT_LAYOUT_LEN], const cl_measurement *m) {
  uint8_t *p = put_ctx(out, CL_CTX_MEASUREMENT, sizeof CL_CTX_MEASUREMENT);
  p = put(p, m->ch.landmark, CL_PK_LEN);
  p = put(p, m->ch.chip, CL_PK_LEN);
  p = put(p, m->ch.nonce, CL_NONCE_LEN);
  cl_put_be64(p, m->ch.issued_unix_ns);
  p += 8;
  cl_put_be64(p, m->ch.seq);
  p += 8;
  p = put(p, m->ch.sig, CL_SIG_LEN);
  p = put(p, m->chip_sig, CL_SIG_LEN);
  cl_put_be64(p, m->rtt_ns);
  p += 8;
  cl_put_be32(p, m->probe_count);
  p += 4;
  cl_put_be64(p, m->measured_unix_ns);
  p += 8;
  return (size_t)(p - out);
}

void cl_challenge_sign(cl_challenge *ch, const cl_key *landmark) {
  uint8_t buf[CL_CHALLENGE_LAYOUT_LEN];
  size_t n = cl_layout_challenge(buf, ch);
  cl_key_sign(landmark, ch->sig, buf, n);
}

int cl_challenge_verify(const cl_challenge *ch) {
  uint8_t buf[CL_CHALLENGE_LAYOUT_LEN];
  size_t n = cl_layout_challenge(buf, ch);
  return cl_sig_verify(ch->landmark, ch->sig, buf, n);
}

void cl_response_sign(const cl_challenge *ch, const cl_key *chip, uint8_t sig[CL_SIG_LEN]) {
  uint8_t buf[CL_RESPONSE_LAYOUT_LEN];
  size_t n = cl_layout_response(buf, ch);
  cl_key_sign(chip, sig, buf, n);
}

int cl_response_verify(const cl_challenge *ch, const uint8_t sig[CL_SIG_LEN]) {
  uint8_t buf[CL_RESPONSE_LAYOUT_LEN];
  size_t n = cl_layout_response(buf, ch);
  return cl_sig_verify(ch->chip, sig, buf, n);
}

void cl_register_sign(const uint8_t landmark[CL_PK_LEN], const uint8_t session_nonce[CL_NONCE_LEN],
                      const cl_key *chip, uint8_t sig[CL_SIG_LEN]) {
  uint8_t buf[CL_REGISTER_LAYOUT_LEN];
  size_t n = cl_layout_register(buf, landmark, session_nonce, cl_key_public(chip));
  cl_key_sign(chip, sig, buf, n);
}

int cl_register_verify(const uint8_t landmark[CL_PK_LEN],
                       const uint8_t session_nonce[CL_NONCE_LEN], const uint8_t chip[CL_PK_LEN],
                       const uint8_t sig[CL_SIG_LEN]) {
  uint8_t buf[CL_REGISTER_LAYOUT_LEN];
  size_t n = cl_layout_register(buf, landmark, session_nonce, chip);
  return cl_sig_verify(chip, sig, buf, n);
}

void cl_measurement_sign(cl_measurement *m, const cl_key *landmark) {
  uint8_t buf[CL_MEASUREMENT_LAYOUT_LEN];
  size_t n = cl_layout_measurement(buf, m);
  cl_key_sign(landmark, m->sig, buf, n);
}

int cl_measurement_verify(const cl_measurement *m) {
  uint8_t buf[CL_MEASUREMENT_LAYOUT_LEN];
  size_t n = cl_layout_measurement(buf, m);
  if (cl_sig_verify(m->ch.landmark, m->sig, buf, n) != CL_OK) return CL_EBADSIG;
  if (cl_challenge_verify(&m->ch) != CL_OK) return CL_EBADSIG;
  return cl_response_verify(&m->ch, m->chip_sig);
}
