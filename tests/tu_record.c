/* Genuine protocol-2 records for the tests (see tu_record.h). */
#include "tu_record.h"
#include "cl_err.h"

#include <sodium.h>
#include <string.h>

int tu_record(cl_measurement *m, const cl_key *landmark, const cl_key *chip, uint64_t first_seq,
              uint32_t count, const uint64_t *rtt_ns, uint64_t measured_unix_ns) {
  if (count < 1 || count > CL_MAX_BURST) return CL_EINVAL;
  for (uint32_t i = 0; i < count; i++)
    if (rtt_ns[i] == 0) return CL_EINVAL;
  memset(m, 0, sizeof *m);
  cl_handshake *hs = &m->hs;
  hs->suite = CL_SUITE_ED25519_X25519;
  memcpy(hs->landmark, cl_key_public(landmark), CL_PK_LEN);
  memcpy(hs->chip, cl_key_public(chip), CL_PK_LEN);
  /* Both halves of the handshake, each side's ephemeral secret its own. */
  uint8_t landmark_sk[CL_EPH_SK_LEN], chip_sk[CL_EPH_SK_LEN];
  cl_eph_generate(hs->landmark_eph, landmark_sk);
  cl_eph_generate(hs->chip_eph, chip_sk);
  randombytes_buf(hs->landmark_nonce, CL_NONCE_LEN);
  randombytes_buf(hs->chip_nonce, CL_NONCE_LEN);
  uint8_t key_l[CL_SESSION_KEY_LEN], key_c[CL_SESSION_KEY_LEN];
  int rc = cl_hs_sign_landmark(hs, landmark);
  if (rc == CL_OK) rc = cl_hs_sign_chip(hs, chip);
  if (rc == CL_OK) rc = cl_session_key(hs, CL_SIDE_LANDMARK, landmark_sk, key_l);
  if (rc == CL_OK) rc = cl_session_key(hs, CL_SIDE_CHIP, chip_sk, key_c);
  sodium_memzero(landmark_sk, sizeof landmark_sk);
  sodium_memzero(chip_sk, sizeof chip_sk);
  /* Both sides must have derived the same key, or the MACs prove nothing. */
  if (rc == CL_OK && sodium_memcmp(key_l, key_c, sizeof key_l) != 0) rc = CL_EINVAL;
  for (uint32_t i = 0; rc == CL_OK && i < count; i++) {
    cl_probe_entry *e = &m->probes[i];
    e->seq = first_seq + i;
    randombytes_buf(e->nonce, CL_NONCE_LEN);
    /* The chip answers with its key; the landmark accepts with its own. */
    cl_answer_mac(key_c, hs->suite, hs->landmark, hs->chip, e->seq, e->nonce, e->mac);
    rc = cl_answer_check(key_l, hs->suite, hs->landmark, hs->chip, e->seq, e->nonce, e->mac);
    e->rtt_ns = rtt_ns[i];
  }
  sodium_memzero(key_l, sizeof key_l);
  sodium_memzero(key_c, sizeof key_c);
  if (rc != CL_OK) return rc;
  m->count = count;
  m->probes_sent = count;
  m->measured_unix_ns = measured_unix_ns;
  m->rtt_ns = m->probes[cl_measurement_fastest(m)].rtt_ns;
  rc = cl_transcript_sign(hs, m->probes, count, chip, m->transcript_sig);
  if (rc == CL_OK) rc = cl_measurement_sign(m, landmark);
  return rc;
}

int tu_record_rtt(cl_measurement *m, const cl_key *landmark, const cl_key *chip, uint64_t rtt_ns,
                  uint64_t measured_unix_ns) {
  uint64_t seq = randombytes_uniform(1u << 30);
  const uint64_t rtts[3] = {rtt_ns + 2000, rtt_ns, rtt_ns + 5000};
  return tu_record(m, landmark, chip, seq, 3, rtts, measured_unix_ns);
}
