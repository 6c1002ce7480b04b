/* The verifier's rule for believing a signed row (see cl_evidence.h). */
#include "cl_evidence.h"
#include "cl_err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define DIGEST_LEN 32

const char *cl_ev_reason_name(cl_ev_reason r) {
  switch (r) {
  case CL_EV_OK: return "ok";
  case CL_EV_BAD_SIGNATURE: return "bad_signature";
  case CL_EV_BAD_CHIP_SIGNATURE: return "bad_chip_signature";
  case CL_EV_RETIRED: return "retired";
  case CL_EV_REVOKED: return "revoked";
  case CL_EV_FUTURE: return "future";
  case CL_EV_MALFORMED: return "malformed";
  case CL_EV__COUNT: break;
  }
  return "unknown";
}

/* One generation: an open-addressing set of row digests (BLAKE2b-256 keyed
 * with the cache's random key) with the outcome of
 * their signature checks (a cl_ev_reason, stored + 1 so that 0 is empty). */
typedef struct {
  uint8_t (*keys)[DIGEST_LEN];
  uint8_t *val;
  size_t cap, n; /* cap: a power of two, or 0 */
} gen;

struct cl_evcache {
  gen cur, old;
  uint64_t verified, hits;
  /* Keys the digest, so that rows cannot be made to collide in the table's
   * slots (their bytes are chosen by whoever writes them). */
  uint8_t key[crypto_generichash_KEYBYTES];
};

static void gen_free(gen *g) {
  free(g->keys);
  free(g->val);
  memset(g, 0, sizeof *g);
}

static size_t slot_of(const gen *g, const uint8_t d[DIGEST_LEN]) {
  uint64_t h;
  memcpy(&h, d, sizeof h); /* the digest is uniformly random already */
  size_t i = (size_t)h & (g->cap - 1);
  while (g->val[i] && memcmp(g->keys[i], d, DIGEST_LEN) != 0) i = (i + 1) & (g->cap - 1);
  return i;
}

static int gen_get(const gen *g, const uint8_t d[DIGEST_LEN]) {
  if (!g->cap) return 0;
  return g->val[slot_of(g, d)];
}

/* Inserts or overwrites; when memory runs out the outcome is simply not
 * remembered (it will be checked again). */
static void gen_put(gen *g, const uint8_t d[DIGEST_LEN], int v) {
  if (2 * (g->n + 1) > g->cap) {
    size_t ncap = g->cap ? 2 * g->cap : 1024;
    gen bigger = {calloc(ncap, DIGEST_LEN), calloc(ncap, 1), ncap, 0};
    if (!bigger.keys || !bigger.val) {
      gen_free(&bigger);
      return;
    }
    for (size_t i = 0; i < g->cap; i++)
      if (g->val[i]) {
        size_t j = slot_of(&bigger, g->keys[i]);
        memcpy(bigger.keys[j], g->keys[i], DIGEST_LEN);
        bigger.val[j] = g->val[i];
        bigger.n++;
      }
    gen_free(g);
    *g = bigger;
  }
  size_t i = slot_of(g, d);
  if (!g->val[i]) g->n++;
  memcpy(g->keys[i], d, DIGEST_LEN);
  g->val[i] = (uint8_t)v;
}

cl_evcache *cl_evcache_new(void) {
  cl_evcache *c = calloc(1, sizeof *c);
  if (c) randombytes_buf(c->key, sizeof c->key);
  return c;
}

void cl_evcache_free(cl_evcache **c) {
  if (!c || !*c) return;
  gen_free(&(*c)->cur);
  gen_free(&(*c)->old);
  free(*c);
  *c = NULL;
}

void cl_evcache_round(cl_evcache *c) {
  if (!c) return;
  gen_free(&c->old);
  c->old = c->cur;
  memset(&c->cur, 0, sizeof c->cur);
}

uint64_t cl_evcache_verified(const cl_evcache *c) { return c ? c->verified : 0; }
uint64_t cl_evcache_hits(const cl_evcache *c) { return c ? c->hits : 0; }

/* Checks 4 and 5 of a consistent record, without the cache: the record
 * signature over its layout (n bytes) under the named landmark's key,
 * then the transcript signature under the named chip's key. */
static cl_ev_reason check_signatures(const cl_measurement *m, const uint8_t *layout, size_t n) {
  if (cl_sig_verify(m->hs.landmark, m->sig, layout, n) != CL_OK) return CL_EV_BAD_SIGNATURE;
  if (cl_measurement_verify_chip(m) != CL_OK) return CL_EV_BAD_CHIP_SIGNATURE;
  return CL_EV_OK;
}

cl_ev_reason cl_ev_key_check(const cl_ev_key_state *k, uint64_t measured_ns,
                             uint64_t inserted_ns) {
  if (k->retired_ns && measured_ns > k->retired_ns) return CL_EV_RETIRED;
  if (k->retired_ns && k->revoked && inserted_ns > k->retired_ns) return CL_EV_REVOKED;
  return CL_EV_OK;
}

cl_ev_reason cl_ev_time_check(const cl_ev_key_state *k, uint64_t measured_ns,
                              uint64_t inserted_ns) {
  if (measured_ns > inserted_ns && measured_ns - inserted_ns > CL_EV_FUTURE_SLACK_NS)
    return CL_EV_FUTURE;
  return cl_ev_key_check(k, measured_ns, inserted_ns);
}

cl_ev_reason cl_evidence_judge(cl_evcache *c, const cl_measurement *m, const cl_ev_key_state *k,
                               uint64_t inserted_ns) {
  cl_ev_reason life = cl_ev_time_check(k, m->measured_unix_ns, inserted_ns);
  if (life != CL_EV_OK) return life;
  /* A record no honest landmark could have signed (rtt_ns not the
   * smallest of its entries, seqs out of order, an unknown suite, no or too
   * many entries) is refused before any signature is looked at, and has no
   * layout to digest. */
  if (cl_measurement_check(m, NULL, 0) != CL_OK) return CL_EV_MALFORMED;
  uint8_t layout[CL_MEASUREMENT_LAYOUT_MAX];
  size_t n = cl_layout_measurement(layout, m);
  if (!c) return check_signatures(m, layout, n);
  /* The digest covers the whole layout (handshake, entries, transcript
   * signature, RTT, times; its count fixes its length) and the record
   * signature, so a row that differs from a checked one in anything has
   * another digest. */
  uint8_t d[DIGEST_LEN];
  crypto_generichash_state st;
  crypto_generichash_init(&st, c->key, sizeof c->key, DIGEST_LEN);
  crypto_generichash_update(&st, layout, n);
  crypto_generichash_update(&st, m->sig, CL_SIG_LEN);
  crypto_generichash_final(&st, d, DIGEST_LEN);
  int v = gen_get(&c->cur, d);
  if (!v && (v = gen_get(&c->old, d)) != 0) gen_put(&c->cur, d, v);
  if (v) {
    c->hits++;
    return (cl_ev_reason)(v - 1);
  }
  cl_ev_reason r = check_signatures(m, layout, n);
  c->verified++;
  gen_put(&c->cur, d, (int)r + 1);
  return r;
}
