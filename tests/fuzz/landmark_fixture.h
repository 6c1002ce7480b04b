/*
 * The fixed world of fuzz_landmark, shared with the generator of its seed
 * corpus (gen_landmark.c) so that the seeds answer the challenges the
 * target issues: the landmark key, the session nonce of the connection,
 * four chips, and the challenges the landmark sends to each chip that can
 * register, in order, with the chips' valid responses.
 *
 * Everything derives from fixed seeds; nothing here is secret. Include from
 * one .c file only.
 *
 * Input layout of fuzz_landmark: byte 0 chooses how the stream is cut into
 * reads (see LM_FX_MODE_*), byte 1 how far the clock moves before each read
 * (lm_fx_step_ns), the rest is the byte stream from the agent.
 */
#ifndef LANDMARK_FIXTURE_H
#define LANDMARK_FIXTURE_H

#include "cl_key.h"
#include "cl_layout.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Chips: 0 and 1 enrolled and active, 2 enrolled but inactive, 3 unknown. */
#define LM_FX_CHIPS 4
#define LM_FX_ACTIVE 2
#define LM_FX_INACTIVE 2
#define LM_FX_UNKNOWN 3
/* Challenges per active chip: more than the landmark's ring of 8, so that
 * a third burst overwrites the slots of the first. */
#define LM_FX_CHALLENGES 12

/* Read modes (byte 0 & 3). */
#define LM_FX_MODE_FRAMES 0 /* one read per frame, as the length prefix says;
                               a frame the input does not finish: a byte per read */
#define LM_FX_MODE_BYTES 1  /* one byte per read */
#define LM_FX_MODE_FIXED 2  /* (byte 0 >> 2) + 1 bytes per read */
#define LM_FX_MODE_RANDOM 3 /* 1..300 bytes per read, pseudo-random */

/* landmarkd's defaults, which the target's timing follows. */
#define LM_FX_BURST 5
#define LM_FX_GAP_MS 100u
#define LM_FX_DEADLINE_MS 1000u
#define LM_FX_INTERVAL_MS 60000u
#define LM_FX_HANDSHAKE_MS 10000u
#define LM_FX_IDLE_S 300u
#define LM_FX_MAX_PENDING 64u /* max_pending_challenges */

/* Challenges carry wall-clock issue times from here on. */
#define LM_FX_UNIX_NS 1700000000000000000ull

typedef struct {
  cl_key *landmark;
  cl_key *chip[LM_FX_CHIPS];
  uint8_t session[CL_NONCE_LEN];
  uint8_t proof[LM_FX_CHIPS][CL_SIG_LEN]; /* valid Register proofs */
  cl_challenge ch[LM_FX_ACTIVE][LM_FX_CHALLENGES];
  uint8_t resp[LM_FX_ACTIVE][LM_FX_CHALLENGES][CL_SIG_LEN]; /* valid Response signatures */
} lm_fixture;

/* Clock advance before each read: (low 6 bits + 1) units of 1 ms, 10 ms,
 * 100 ms or 1 s (top 2 bits), at most 64 s. */
static inline uint64_t lm_fx_step_ns(uint8_t b) {
  static const uint64_t unit_ms[4] = {1, 10, 100, 1000};
  return ((uint64_t)(b & 63) + 1) * unit_ms[b >> 6] * 1000000ull;
}

/* Sequence number of challenge j of chip k; unique, never 0. */
static inline uint64_t lm_fx_seq(int k, int j) {
  return 1 + (uint64_t)k * LM_FX_CHALLENGES + (uint64_t)j;
}

static inline void lm_fx_init(lm_fixture *f) {
  if (sodium_init() < 0) {
    fprintf(stderr, "sodium_init failed\n");
    abort();
  }
  memset(f, 0, sizeof *f);
  uint8_t seed[32];
  memset(seed, 0x01, sizeof seed);
  if (cl_key_from_seed(&f->landmark, seed) != 0) abort();
  for (int k = 0; k < LM_FX_CHIPS; k++) {
    memset(seed, 0x02 + k, sizeof seed);
    if (cl_key_from_seed(&f->chip[k], seed) != 0) abort();
  }
  memset(f->session, 0x40, sizeof f->session);
  const uint8_t *lpk = cl_key_public(f->landmark);
  for (int k = 0; k < LM_FX_CHIPS; k++) cl_register_sign(lpk, f->session, f->chip[k], f->proof[k]);
  for (int k = 0; k < LM_FX_ACTIVE; k++) {
    for (int j = 0; j < LM_FX_CHALLENGES; j++) {
      cl_challenge *c = &f->ch[k][j];
      memcpy(c->landmark, lpk, CL_PK_LEN);
      memcpy(c->chip, cl_key_public(f->chip[k]), CL_PK_LEN);
      for (int i = 0; i < CL_NONCE_LEN; i++) c->nonce[i] = (uint8_t)(0xA0 + 16 * k + j + 3 * i);
      c->seq = lm_fx_seq(k, j);
      c->issued_unix_ns = LM_FX_UNIX_NS + c->seq * 1000000000ull;
      cl_challenge_sign(c, f->landmark);
      cl_response_sign(c, f->chip[k], f->resp[k][j]);
    }
  }
}

static inline void lm_fx_fini(lm_fixture *f) {
  cl_key_destroy(&f->landmark);
  for (int k = 0; k < LM_FX_CHIPS; k++) cl_key_destroy(&f->chip[k]);
}

#endif
