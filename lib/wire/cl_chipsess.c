/* The chip's side of a protocol-2 session. See cl_chipsess.h. */
#include "cl_chipsess.h"
#include "cl_err.h"

#include <sodium.h>
#include <string.h>

void cl_chipsess_init(cl_chipsess *s, uint8_t *key_slot) {
  memset(s, 0, sizeof *s);
  s->key = key_slot;
  sodium_memzero(key_slot, CL_SESSION_KEY_LEN);
}

void cl_chipsess_end(cl_chipsess *s) {
  sodium_memzero(s->key, CL_SESSION_KEY_LEN);
  sodium_memzero(s->eph_sk, sizeof s->eph_sk);
  memset(&s->hs, 0, sizeof s->hs);
  memset(s->log, 0, sizeof s->log);
  s->log_next = 0;
  s->answers = 0;
  s->state = CL_CHIPSESS_NONE;
}

int cl_chipsess_offer(cl_chipsess *s, uint32_t suite, const uint8_t landmark[CL_PK_LEN],
                      const uint8_t chip[CL_PK_LEN], cl_chip_offer *offer) {
  if (!cl_suite_known(suite)) return CL_ESUITE;
  cl_chipsess_end(s);
  s->hs.suite = suite;
  memcpy(s->hs.landmark, landmark, CL_PK_LEN);
  memcpy(s->hs.chip, chip, CL_PK_LEN);
  cl_eph_generate(s->hs.chip_eph, s->eph_sk);
  randombytes_buf(s->hs.chip_nonce, CL_NONCE_LEN);
  s->state = CL_CHIPSESS_OFFERED;
  memcpy(offer->chip, chip, CL_PK_LEN);
  memcpy(offer->eph, s->hs.chip_eph, CL_EPH_LEN);
  memcpy(offer->nonce, s->hs.chip_nonce, CL_NONCE_LEN);
  return CL_OK;
}

int cl_chipsess_accept(cl_chipsess *s, const cl_chip_result *r, cl_handshake *hs_out) {
  if (s->state != CL_CHIPSESS_OFFERED || !r->accepted ||
      memcmp(r->chip, s->hs.chip, CL_PK_LEN) != 0)
    return CL_EINVAL;
  cl_handshake hs = s->hs;
  memcpy(hs.landmark_eph, r->eph, CL_EPH_LEN);
  memcpy(hs.landmark_nonce, r->nonce, CL_NONCE_LEN);
  memcpy(hs.landmark_sig, r->sig, CL_SIG_LEN);
  /* The landmark's signature under the pinned key: whoever answers without
   * it (a relay, another landmark) gets no session. */
  int rc = cl_hs_verify_landmark(&hs);
  if (rc == CL_OK) rc = cl_session_key(&hs, CL_SIDE_CHIP, s->eph_sk, s->key);
  sodium_memzero(s->eph_sk, sizeof s->eph_sk);
  if (rc != CL_OK) {
    cl_chipsess_end(s);
    return rc == CL_ESUITE ? rc : CL_EBADSIG;
  }
  s->hs = hs;
  s->state = CL_CHIPSESS_ESTABLISHED;
  *hs_out = hs;
  return CL_OK;
}

void cl_chipsess_confirmed(cl_chipsess *s, const uint8_t chip_sig[CL_SIG_LEN]) {
  memcpy(s->hs.chip_sig, chip_sig, CL_SIG_LEN);
}

int cl_chipsess_answer(cl_chipsess *s, uint64_t seq, const uint8_t nonce[CL_NONCE_LEN],
                       uint8_t mac[CL_MAC_LEN]) {
  if (s->state != CL_CHIPSESS_ESTABLISHED) return CL_EINVAL;
  cl_answer_mac(s->key, s->hs.suite, s->hs.landmark, s->hs.chip, seq, nonce, mac);
  cl_probe_entry *e = &s->log[s->log_next++ % CL_CHIPSESS_LOG];
  e->seq = seq;
  memcpy(e->nonce, nonce, CL_NONCE_LEN);
  memcpy(e->mac, mac, CL_MAC_LEN);
  e->rtt_ns = 0;
  s->answers++;
  return CL_OK;
}

int cl_chipsess_transcript(const cl_chipsess *s, const uint64_t *seqs, size_t n,
                           cl_probe_entry out[CL_MAX_BURST]) {
  if (s->state != CL_CHIPSESS_ESTABLISHED || n < 1 || n > CL_MAX_BURST) return CL_EINVAL;
  for (size_t i = 0; i < n; i++) {
    const cl_probe_entry *found = NULL;
    /* The newest answer to a seq wins (a seq is answered once by an honest chip). */
    for (unsigned k = 0; k < CL_CHIPSESS_LOG && k < s->answers; k++) {
      const cl_probe_entry *e = &s->log[(s->log_next - 1 - k) % CL_CHIPSESS_LOG];
      if (e->seq == seqs[i]) {
        found = e;
        break;
      }
    }
    if (!found) return CL_ENOTFOUND;
    out[i] = *found;
    out[i].rtt_ns = 0;
  }
  return CL_OK;
}
