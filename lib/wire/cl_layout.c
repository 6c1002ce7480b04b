/*
 * Protocol version 2's byte layouts and the cryptography over them: build,
 * sign, verify, derive, MAC. Pure functions, no I/O. docs/PROTOCOL.md §6.
 */
#include "cl_layout.h"
#include "cl_err.h"

#include <sodium.h>
#include <stdio.h>
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

/* ---- suites ------------------------------------------------------------------ */

int cl_suite_known(uint32_t suite) { return suite == CL_SUITE_ED25519_X25519; }

const char *cl_suite_name(uint32_t suite) {
  switch (suite) {
  case CL_SUITE_ED25519_X25519: return "ed25519-x25519-blake2b";
  default: return "unknown";
  }
}

/* ---- cursor helpers --------------------------------------------------------------- */

/* Copies a context string including its NUL and returns the new cursor. */
static uint8_t *put_ctx(uint8_t *p, const char *ctx) {
  size_t n = strlen(ctx) + 1;
  memcpy(p, ctx, n);
  return p + n;
}

static uint8_t *put(uint8_t *p, const void *src, size_t n) {
  memcpy(p, src, n);
  return p + n;
}

static uint8_t *put32(uint8_t *p, uint32_t v) {
  cl_put_be32(p, v);
  return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v) {
  cl_put_be64(p, v);
  return p + 8;
}

/* ---- the handshake ------------------------------------------------------------------ */

/* suite || landmark || chip || landmark_eph || chip_eph || landmark_nonce || chip_nonce */
static uint8_t *put_hs_body(uint8_t *p, const cl_handshake *hs) {
  p = put32(p, hs->suite);
  p = put(p, hs->landmark, CL_PK_LEN);
  p = put(p, hs->chip, CL_PK_LEN);
  p = put(p, hs->landmark_eph, CL_EPH_LEN);
  p = put(p, hs->chip_eph, CL_EPH_LEN);
  p = put(p, hs->landmark_nonce, CL_NONCE_LEN);
  p = put(p, hs->chip_nonce, CL_NONCE_LEN);
  return p;
}

size_t cl_layout_hs_landmark(uint8_t out[CL_HS_LANDMARK_LAYOUT_LEN], const cl_handshake *hs) {
  uint8_t *p = put_hs_body(put_ctx(out, CL_CTX_HS_LANDMARK), hs);
  return (size_t)(p - out);
}

size_t cl_layout_hs_chip(uint8_t out[CL_HS_CHIP_LAYOUT_LEN], const cl_handshake *hs) {
  uint8_t *p = put_hs_body(put_ctx(out, CL_CTX_HS_CHIP), hs);
  return (size_t)(p - out);
}

int cl_hs_sign_landmark(cl_handshake *hs, const cl_key *landmark) {
  if (!cl_suite_known(hs->suite)) return CL_ESUITE;
  if (memcmp(cl_key_public(landmark), hs->landmark, CL_PK_LEN) != 0) return CL_EINVAL;
  uint8_t buf[CL_HS_LANDMARK_LAYOUT_LEN];
  cl_key_sign(landmark, hs->landmark_sig, buf, cl_layout_hs_landmark(buf, hs));
  return CL_OK;
}

int cl_hs_sign_chip(cl_handshake *hs, const cl_key *chip) {
  if (!cl_suite_known(hs->suite)) return CL_ESUITE;
  if (memcmp(cl_key_public(chip), hs->chip, CL_PK_LEN) != 0) return CL_EINVAL;
  uint8_t buf[CL_HS_CHIP_LAYOUT_LEN];
  cl_key_sign(chip, hs->chip_sig, buf, cl_layout_hs_chip(buf, hs));
  return CL_OK;
}

int cl_hs_verify_landmark(const cl_handshake *hs) {
  if (!cl_suite_known(hs->suite)) return CL_ESUITE;
  uint8_t buf[CL_HS_LANDMARK_LAYOUT_LEN];
  return cl_sig_verify(hs->landmark, hs->landmark_sig, buf, cl_layout_hs_landmark(buf, hs));
}

int cl_hs_verify_chip(const cl_handshake *hs) {
  if (!cl_suite_known(hs->suite)) return CL_ESUITE;
  uint8_t buf[CL_HS_CHIP_LAYOUT_LEN];
  return cl_sig_verify(hs->chip, hs->chip_sig, buf, cl_layout_hs_chip(buf, hs));
}

int cl_session_id(const cl_handshake *hs, uint8_t id[CL_SESSION_ID_LEN]) {
  if (!cl_suite_known(hs->suite)) return CL_ESUITE;
  uint8_t buf[sizeof CL_CTX_SESSION_ID + CL_HS_BODY_LEN];
  uint8_t *p = put_hs_body(put_ctx(buf, CL_CTX_SESSION_ID), hs);
  crypto_generichash(id, CL_SESSION_ID_LEN, buf, (size_t)(p - buf), NULL, 0);
  return CL_OK;
}

void cl_eph_generate(uint8_t eph_pk[CL_EPH_LEN], uint8_t eph_sk[CL_EPH_SK_LEN]) {
  crypto_box_keypair(eph_pk, eph_sk);
}

int cl_session_key(const cl_handshake *hs, cl_side side, const uint8_t own_eph_sk[CL_EPH_SK_LEN],
                   uint8_t key[CL_SESSION_KEY_LEN]) {
  _Static_assert(crypto_scalarmult_BYTES == 32, "X25519 output is 32 bytes");
  if (!cl_suite_known(hs->suite)) return CL_ESUITE;
  const uint8_t *peer = side == CL_SIDE_LANDMARK ? hs->chip_eph : hs->landmark_eph;
  uint8_t q[crypto_scalarmult_BYTES];
  /* libsodium refuses (-1) an all-zero result: a peer key of small order. */
  if (crypto_scalarmult(q, own_eph_sk, peer) != 0) {
    sodium_memzero(q, sizeof q);
    return CL_EBADSIG;
  }
  uint8_t msg[sizeof CL_CTX_SESSION_KEY + CL_SESSION_ID_LEN];
  uint8_t *p = put_ctx(msg, CL_CTX_SESSION_KEY);
  cl_session_id(hs, p);
  p += CL_SESSION_ID_LEN;
  crypto_generichash(key, CL_SESSION_KEY_LEN, msg, (size_t)(p - msg), q, sizeof q);
  sodium_memzero(q, sizeof q);
  return CL_OK;
}

/* ---- the timed phase ----------------------------------------------------------------- */

size_t cl_layout_answer(uint8_t out[CL_ANSWER_LAYOUT_LEN], uint32_t suite,
                        const uint8_t landmark[CL_PK_LEN], const uint8_t chip[CL_PK_LEN],
                        uint64_t seq, const uint8_t nonce[CL_NONCE_LEN]) {
  uint8_t *p = put_ctx(out, CL_CTX_ANSWER);
  p = put32(p, suite);
  p = put(p, landmark, CL_PK_LEN);
  p = put(p, chip, CL_PK_LEN);
  p = put64(p, seq);
  p = put(p, nonce, CL_NONCE_LEN);
  return (size_t)(p - out);
}

void cl_answer_mac(const uint8_t key[CL_SESSION_KEY_LEN], uint32_t suite,
                   const uint8_t landmark[CL_PK_LEN], const uint8_t chip[CL_PK_LEN], uint64_t seq,
                   const uint8_t nonce[CL_NONCE_LEN], uint8_t mac[CL_MAC_LEN]) {
  uint8_t buf[CL_ANSWER_LAYOUT_LEN];
  size_t n = cl_layout_answer(buf, suite, landmark, chip, seq, nonce);
  crypto_generichash(mac, CL_MAC_LEN, buf, n, key, CL_SESSION_KEY_LEN);
}

int cl_answer_check(const uint8_t key[CL_SESSION_KEY_LEN], uint32_t suite,
                    const uint8_t landmark[CL_PK_LEN], const uint8_t chip[CL_PK_LEN], uint64_t seq,
                    const uint8_t nonce[CL_NONCE_LEN], const uint8_t mac[CL_MAC_LEN]) {
  uint8_t want[CL_MAC_LEN];
  cl_answer_mac(key, suite, landmark, chip, seq, nonce, want);
  int ok = sodium_memcmp(want, mac, CL_MAC_LEN) == 0;
  sodium_memzero(want, sizeof want);
  return ok ? CL_OK : CL_EBADSIG;
}

/* ---- the transcript --------------------------------------------------------------------- */

size_t cl_layout_transcript(uint8_t out[CL_TRANSCRIPT_LAYOUT_MAX], const cl_handshake *hs,
                            const cl_probe_entry *e, size_t n) {
  if (n < 1 || n > CL_MAX_BURST || !cl_suite_known(hs->suite)) return 0;
  uint8_t *p = put_ctx(out, CL_CTX_TRANSCRIPT);
  p = put32(p, hs->suite);
  cl_session_id(hs, p);
  p += CL_SESSION_ID_LEN;
  p = put(p, hs->landmark, CL_PK_LEN);
  p = put(p, hs->chip, CL_PK_LEN);
  p = put32(p, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    p = put64(p, e[i].seq);
    p = put(p, e[i].nonce, CL_NONCE_LEN);
    p = put(p, e[i].mac, CL_MAC_LEN);
  }
  return (size_t)(p - out);
}

int cl_transcript_sign(const cl_handshake *hs, const cl_probe_entry *e, size_t n,
                       const cl_key *chip, uint8_t sig[CL_SIG_LEN]) {
  if (!cl_suite_known(hs->suite)) return CL_ESUITE;
  uint8_t buf[CL_TRANSCRIPT_LAYOUT_MAX];
  size_t len = cl_layout_transcript(buf, hs, e, n);
  if (len == 0) return CL_EINVAL;
  cl_key_sign(chip, sig, buf, len);
  return CL_OK;
}

int cl_transcript_verify(const cl_handshake *hs, const cl_probe_entry *e, size_t n,
                         const uint8_t sig[CL_SIG_LEN]) {
  if (!cl_suite_known(hs->suite)) return CL_ESUITE;
  uint8_t buf[CL_TRANSCRIPT_LAYOUT_MAX];
  size_t len = cl_layout_transcript(buf, hs, e, n);
  if (len == 0) return CL_EINVAL;
  return cl_sig_verify(hs->chip, sig, buf, len);
}

/* ---- the measurement record ------------------------------------------------------------- */

size_t cl_layout_measurement(uint8_t out[CL_MEASUREMENT_LAYOUT_MAX], const cl_measurement *m) {
  if (m->count < 1 || m->count > CL_MAX_BURST || !cl_suite_known(m->hs.suite)) return 0;
  uint8_t *p = put_ctx(out, CL_CTX_MEASUREMENT);
  p = put_hs_body(p, &m->hs);
  p = put(p, m->hs.landmark_sig, CL_SIG_LEN);
  p = put(p, m->hs.chip_sig, CL_SIG_LEN);
  p = put32(p, m->count);
  for (uint32_t i = 0; i < m->count; i++) {
    const cl_probe_entry *e = &m->probes[i];
    p = put64(p, e->seq);
    p = put(p, e->nonce, CL_NONCE_LEN);
    p = put(p, e->mac, CL_MAC_LEN);
    p = put64(p, e->rtt_ns);
  }
  p = put(p, m->transcript_sig, CL_SIG_LEN);
  p = put64(p, m->rtt_ns);
  p = put32(p, m->probes_sent);
  p = put64(p, m->measured_unix_ns);
  return (size_t)(p - out);
}

size_t cl_measurement_fastest(const cl_measurement *m) {
  size_t best = 0;
  for (size_t i = 1; i < m->count && i < CL_MAX_BURST; i++)
    if (m->probes[i].rtt_ns < m->probes[best].rtt_ns) best = i;
  return best;
}

int cl_measurement_check(const cl_measurement *m, char *err, size_t errlen) {
  if (!err) errlen = 0;
  if (!cl_suite_known(m->hs.suite)) {
    if (errlen) snprintf(err, errlen, "suite %u is unknown", m->hs.suite);
    return CL_ESUITE;
  }
  if (m->count < 1 || m->count > CL_MAX_BURST) {
    if (errlen) snprintf(err, errlen, "count %u is not within 1..%d", m->count, CL_MAX_BURST);
    return CL_EMALFORMED;
  }
  for (uint32_t i = 1; i < m->count; i++) {
    if (m->probes[i].seq <= m->probes[i - 1].seq) {
      if (errlen)
        snprintf(err, errlen, "probe %u seq %llu does not follow seq %llu", i,
                 (unsigned long long)m->probes[i].seq, (unsigned long long)m->probes[i - 1].seq);
      return CL_EMALFORMED;
    }
  }
  if (m->probes_sent < m->count) {
    if (errlen)
      snprintf(err, errlen, "probes_sent %u is below count %u", m->probes_sent, m->count);
    return CL_EMALFORMED;
  }
  uint64_t min = m->probes[cl_measurement_fastest(m)].rtt_ns;
  if (m->rtt_ns != min) {
    if (errlen)
      snprintf(err, errlen, "rtt_ns %llu is not the smallest probe rtt %llu",
               (unsigned long long)m->rtt_ns, (unsigned long long)min);
    return CL_EMALFORMED;
  }
  return CL_OK;
}

int cl_measurement_sign(cl_measurement *m, const cl_key *landmark) {
  if (cl_measurement_check(m, NULL, 0) != CL_OK) return CL_EINVAL;
  if (memcmp(cl_key_public(landmark), m->hs.landmark, CL_PK_LEN) != 0) return CL_EINVAL;
  uint8_t buf[CL_MEASUREMENT_LAYOUT_MAX];
  cl_key_sign(landmark, m->sig, buf, cl_layout_measurement(buf, m));
  return CL_OK;
}

int cl_measurement_verify_landmark(const cl_measurement *m) {
  int rc = cl_measurement_check(m, NULL, 0);
  if (rc != CL_OK) return rc;
  uint8_t buf[CL_MEASUREMENT_LAYOUT_MAX];
  return cl_sig_verify(m->hs.landmark, m->sig, buf, cl_layout_measurement(buf, m));
}

int cl_measurement_verify_chip(const cl_measurement *m) {
  int rc = cl_measurement_check(m, NULL, 0);
  if (rc != CL_OK) return rc;
  return cl_transcript_verify(&m->hs, m->probes, m->count, m->transcript_sig);
}

int cl_measurement_verify(const cl_measurement *m) {
  int rc = cl_measurement_verify_landmark(m);
  if (rc == CL_OK) rc = cl_measurement_verify_chip(m);
  if (rc == CL_OK) rc = cl_hs_verify_landmark(&m->hs);
  if (rc == CL_OK) rc = cl_hs_verify_chip(&m->hs);
  return rc;
}

/* ---- storage form ----------------------------------------------------------------------- */

void cl_hs_blob_put(uint8_t out[CL_HS_BLOB_LEN], const cl_handshake *hs) {
  uint8_t *p = put(out, hs->landmark_eph, CL_EPH_LEN);
  p = put(p, hs->chip_eph, CL_EPH_LEN);
  p = put(p, hs->landmark_nonce, CL_NONCE_LEN);
  p = put(p, hs->chip_nonce, CL_NONCE_LEN);
  p = put(p, hs->landmark_sig, CL_SIG_LEN);
  put(p, hs->chip_sig, CL_SIG_LEN);
}

void cl_hs_blob_get(cl_handshake *hs, const uint8_t in[CL_HS_BLOB_LEN]) {
  const uint8_t *p = in;
  memcpy(hs->landmark_eph, p, CL_EPH_LEN), p += CL_EPH_LEN;
  memcpy(hs->chip_eph, p, CL_EPH_LEN), p += CL_EPH_LEN;
  memcpy(hs->landmark_nonce, p, CL_NONCE_LEN), p += CL_NONCE_LEN;
  memcpy(hs->chip_nonce, p, CL_NONCE_LEN), p += CL_NONCE_LEN;
  memcpy(hs->landmark_sig, p, CL_SIG_LEN), p += CL_SIG_LEN;
  memcpy(hs->chip_sig, p, CL_SIG_LEN);
}

size_t cl_probes_blob_put(uint8_t out[CL_PROBES_BLOB_MAX], const cl_probe_entry *e, size_t n) {
  if (n > CL_MAX_BURST) n = CL_MAX_BURST;
  uint8_t *p = out;
  for (size_t i = 0; i < n; i++) {
    p = put64(p, e[i].seq);
    p = put(p, e[i].nonce, CL_NONCE_LEN);
    p = put(p, e[i].mac, CL_MAC_LEN);
    p = put64(p, e[i].rtt_ns);
  }
  return (size_t)(p - out);
}

int cl_probes_blob_get(cl_probe_entry e[CL_MAX_BURST], size_t *n, const uint8_t *in, size_t len) {
  if (len == 0 || len % CL_RECORD_ENTRY_LEN != 0 || len / CL_RECORD_ENTRY_LEN > CL_MAX_BURST)
    return CL_EMALFORMED;
  *n = len / CL_RECORD_ENTRY_LEN;
  const uint8_t *p = in;
  for (size_t i = 0; i < *n; i++) {
    e[i].seq = cl_get_be64(p), p += 8;
    memcpy(e[i].nonce, p, CL_NONCE_LEN), p += CL_NONCE_LEN;
    memcpy(e[i].mac, p, CL_MAC_LEN), p += CL_MAC_LEN;
    e[i].rtt_ns = cl_get_be64(p), p += 8;
  }
  return CL_OK;
}
