/*
 * Probe acceptance and burst reduction (lib/wire/cl_probe.h). Each named result
 * of cl_probe_accept is produced with a real signed challenge and response,
 * including the order of the checks when several fail at once; then the
 * burst minimum in every insertion order, the measurement record it yields,
 * the distance bound against exact integer arithmetic, and the speed parser.
 */
#include "cl_err.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_probe.h"

#include <check.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define SENT_NS 5000000000ull
#define DEADLINE_NS (SENT_NS + 2000000000ull)
#define NO_RTT 0xDEADBEEFull

static cl_key *g_landmark, *g_chip, *g_other;
static cl_probe g_probe;
static uint8_t g_sig[CL_SIG_LEN]; /* the chip's valid response signature */

static void make_challenge(cl_challenge *ch, uint64_t seq) {
  memset(ch, 0, sizeof *ch);
  memcpy(ch->landmark, cl_key_public(g_landmark), CL_PK_LEN);
  memcpy(ch->chip, cl_key_public(g_chip), CL_PK_LEN);
  for (int i = 0; i < CL_NONCE_LEN; i++) ch->nonce[i] = (uint8_t)(seq * 31 + (uint64_t)i);
  ch->issued_unix_ns = 1700000000000000000ull + seq;
  ch->seq = seq;
  cl_challenge_sign(ch, g_landmark);
}

static void setup(void) {
  uint8_t seed[32];
  memset(seed, 0x01, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_landmark, seed), CL_OK);
  memset(seed, 0x02, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_chip, seed), CL_OK);
  memset(seed, 0x03, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_other, seed), CL_OK);
  memset(&g_probe, 0, sizeof g_probe);
  make_challenge(&g_probe.ch, 7);
  g_probe.sent_ns = SENT_NS;
  g_probe.deadline_ns = DEADLINE_NS;
  g_probe.state = CL_PROBE_OUTSTANDING;
  cl_response_sign(&g_probe.ch, g_chip, g_sig);
}

static void teardown(void) {
  cl_key_destroy(&g_landmark);
  cl_key_destroy(&g_chip);
  cl_key_destroy(&g_other);
}

/* Runs the checks on probe p with the response fields given; asserts that
 * the probe is left unchanged and that *rtt is only written on success. */
static cl_accept_result check_accept(const cl_probe *p, const uint8_t *chip, const uint8_t *nonce,
                               const uint8_t *sig, uint64_t recv_ns, uint64_t *rtt) {
  cl_probe before;
  memset(&before, 0, sizeof before);
  if (p) before = *p;
  *rtt = NO_RTT;
  cl_accept_result r = cl_probe_accept(p, chip, nonce, sig, recv_ns, rtt);
  if (p) ck_assert_mem_eq(&before, p, sizeof before);
  if (r != CL_ACCEPT_OK) ck_assert_uint_eq(*rtt, NO_RTT);
  return r;
}

START_TEST(test_ok) {
  uint64_t rtt;
  const cl_probe *p = &g_probe;
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, g_sig, SENT_NS + 12345, &rtt), CL_ACCEPT_OK);
  ck_assert_uint_eq(rtt, 12345);
  /* The edges of the window are inside it. */
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, g_sig, SENT_NS, &rtt), CL_ACCEPT_OK);
  ck_assert_uint_eq(rtt, 0);
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, g_sig, DEADLINE_NS, &rtt), CL_ACCEPT_OK);
  ck_assert_uint_eq(rtt, DEADLINE_NS - SENT_NS);
}
END_TEST

START_TEST(test_unknown_nonce) {
  uint64_t rtt;
  const cl_probe *p = &g_probe;
  /* No probe found for the nonce. */
  ck_assert_int_eq(check_accept(NULL, p->ch.chip, p->ch.nonce, g_sig, SENT_NS + 1, &rtt),
                   CL_ACCEPT_UNKNOWN_NONCE);
  /* A free slot, even one still holding the old nonce. */
  cl_probe f = g_probe;
  f.state = CL_PROBE_FREE;
  ck_assert_int_eq(check_accept(&f, f.ch.chip, f.ch.nonce, g_sig, SENT_NS + 1, &rtt),
                   CL_ACCEPT_UNKNOWN_NONCE);
  /* A nonce that differs from the probe's in any byte. */
  for (int i = 0; i < CL_NONCE_LEN; i++) {
    uint8_t n[CL_NONCE_LEN];
    memcpy(n, p->ch.nonce, sizeof n);
    n[i] ^= 0x80;
    ck_assert_msg(check_accept(p, p->ch.chip, n, g_sig, SENT_NS + 1, &rtt) == CL_ACCEPT_UNKNOWN_NONCE,
                  "nonce byte %d", i);
  }
}
END_TEST

START_TEST(test_wrong_chip) {
  uint64_t rtt;
  const cl_probe *p = &g_probe;
  /* Another chip answers this chip's challenge, with its own valid
   * signature over the same response layout. */
  uint8_t sig[CL_SIG_LEN];
  cl_response_sign(&p->ch, g_other, sig);
  ck_assert_int_eq(check_accept(p, cl_key_public(g_other), p->ch.nonce, sig, SENT_NS + 1, &rtt),
                   CL_ACCEPT_WRONG_CHIP);
  for (int i = 0; i < CL_PK_LEN; i++) {
    uint8_t c[CL_PK_LEN];
    memcpy(c, p->ch.chip, sizeof c);
    c[i] ^= 0x01;
    ck_assert_int_eq(check_accept(p, c, p->ch.nonce, g_sig, SENT_NS + 1, &rtt), CL_ACCEPT_WRONG_CHIP);
  }
}
END_TEST

START_TEST(test_replay) {
  uint64_t rtt;
  cl_probe a = g_probe;
  a.state = CL_PROBE_ANSWERED;
  /* The same valid answer a second time, in time. */
  ck_assert_int_eq(check_accept(&a, a.ch.chip, a.ch.nonce, g_sig, SENT_NS + 10, &rtt), CL_ACCEPT_REPLAY);
}
END_TEST

/* While an answer's signature is being checked (off the event loop), a
 * second answer with the same nonce is a replay, even with a valid
 * signature and in time. */
START_TEST(test_verifying_is_replay) {
  uint64_t rtt;
  cl_probe v = g_probe;
  v.state = CL_PROBE_VERIFYING;
  ck_assert_int_eq(check_accept(&v, v.ch.chip, v.ch.nonce, g_sig, SENT_NS + 10, &rtt), CL_ACCEPT_REPLAY);
  ck_assert_int_eq(cl_probe_check(&v, v.ch.chip, v.ch.nonce, SENT_NS + 10, &rtt), CL_ACCEPT_REPLAY);
}
END_TEST

/* cl_probe_check is tests 1 to 4 only: same results as cl_probe_accept for
 * every failure before the signature, and OK (with the RTT) whatever the
 * signature, which it never sees. */
START_TEST(test_check_without_signature) {
  const cl_probe *p = &g_probe;
  uint64_t rtt = NO_RTT;
  ck_assert_int_eq(cl_probe_check(p, p->ch.chip, p->ch.nonce, SENT_NS + 777, &rtt), CL_ACCEPT_OK);
  ck_assert_uint_eq(rtt, 777);
  uint8_t bad[CL_SIG_LEN];
  memcpy(bad, g_sig, sizeof bad);
  bad[0] ^= 1;
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, bad, SENT_NS + 777, &rtt),
                   CL_ACCEPT_BAD_SIGNATURE);
  rtt = NO_RTT;
  ck_assert_int_eq(cl_probe_check(NULL, p->ch.chip, p->ch.nonce, SENT_NS + 1, &rtt),
                   CL_ACCEPT_UNKNOWN_NONCE);
  ck_assert_int_eq(cl_probe_check(p, cl_key_public(g_other), p->ch.nonce, SENT_NS + 1, &rtt),
                   CL_ACCEPT_WRONG_CHIP);
  ck_assert_int_eq(cl_probe_check(p, p->ch.chip, p->ch.nonce, DEADLINE_NS + 1, &rtt),
                   CL_ACCEPT_LATE);
  cl_probe a = g_probe;
  a.state = CL_PROBE_ANSWERED;
  ck_assert_int_eq(cl_probe_check(&a, a.ch.chip, a.ch.nonce, SENT_NS + 1, &rtt), CL_ACCEPT_REPLAY);
  ck_assert_uint_eq(rtt, NO_RTT);
}
END_TEST

START_TEST(test_late) {
  uint64_t rtt;
  const cl_probe *p = &g_probe;
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, g_sig, DEADLINE_NS + 1, &rtt),
                   CL_ACCEPT_LATE);
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, g_sig, UINT64_MAX, &rtt), CL_ACCEPT_LATE);
  /* The probe expired (deadline timer fired), even if recv_ns looks early. */
  cl_probe e = g_probe;
  e.state = CL_PROBE_EXPIRED;
  ck_assert_int_eq(check_accept(&e, e.ch.chip, e.ch.nonce, g_sig, SENT_NS + 1, &rtt), CL_ACCEPT_LATE);
  /* A receive time before the send time never yields an RTT. */
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, g_sig, SENT_NS - 1, &rtt), CL_ACCEPT_LATE);
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, g_sig, 0, &rtt), CL_ACCEPT_LATE);
}
END_TEST

START_TEST(test_bad_signature) {
  uint64_t rtt;
  const cl_probe *p = &g_probe;
  for (int i = 0; i < CL_SIG_LEN; i++) {
    uint8_t s[CL_SIG_LEN];
    memcpy(s, g_sig, sizeof s);
    s[i] ^= 0x01;
    ck_assert_msg(check_accept(p, p->ch.chip, p->ch.nonce, s, SENT_NS + 1, &rtt) ==
                      CL_ACCEPT_BAD_SIGNATURE,
                  "sig byte %d", i);
  }
  uint8_t s[CL_SIG_LEN];
  /* Another key's signature over the right layout. */
  cl_response_sign(&p->ch, g_other, s);
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, s, SENT_NS + 1, &rtt),
                   CL_ACCEPT_BAD_SIGNATURE);
  /* The landmark's challenge signature echoed back. */
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, p->ch.sig, SENT_NS + 1, &rtt),
                   CL_ACCEPT_BAD_SIGNATURE);
  /* The chip's signature over another challenge (same nonce, other seq). */
  cl_challenge other = p->ch;
  other.seq++;
  cl_challenge_sign(&other, g_landmark);
  cl_response_sign(&other, g_chip, s);
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, s, SENT_NS + 1, &rtt),
                   CL_ACCEPT_BAD_SIGNATURE);
  /* All zeros. */
  memset(s, 0, sizeof s);
  ck_assert_int_eq(check_accept(p, p->ch.chip, p->ch.nonce, s, SENT_NS + 1, &rtt),
                   CL_ACCEPT_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_check_order) {
  /* When several checks fail, the first in the documented order wins:
   * unknown nonce, wrong chip, replay, late, bad signature. */
  uint64_t rtt;
  uint8_t bad[CL_SIG_LEN], wrong_chip[CL_PK_LEN], wrong_nonce[CL_NONCE_LEN];
  memcpy(bad, g_sig, sizeof bad);
  bad[0] ^= 0x01;
  memcpy(wrong_chip, cl_key_public(g_other), CL_PK_LEN);
  memcpy(wrong_nonce, g_probe.ch.nonce, CL_NONCE_LEN);
  wrong_nonce[3] ^= 0x01;

  cl_probe answered = g_probe, expired = g_probe, free_slot = g_probe;
  answered.state = CL_PROBE_ANSWERED;
  expired.state = CL_PROBE_EXPIRED;
  free_slot.state = CL_PROBE_FREE;
  const uint8_t *chip = g_probe.ch.chip, *nonce = g_probe.ch.nonce;

  /* Replay beats bad signature and lateness. */
  ck_assert_int_eq(check_accept(&answered, chip, nonce, bad, SENT_NS + 1, &rtt), CL_ACCEPT_REPLAY);
  ck_assert_int_eq(check_accept(&answered, chip, nonce, bad, DEADLINE_NS + 1, &rtt), CL_ACCEPT_REPLAY);
  /* Late beats bad signature. */
  ck_assert_int_eq(check_accept(&g_probe, chip, nonce, bad, DEADLINE_NS + 1, &rtt), CL_ACCEPT_LATE);
  ck_assert_int_eq(check_accept(&expired, chip, nonce, bad, SENT_NS + 1, &rtt), CL_ACCEPT_LATE);
  /* Wrong chip beats replay, late and bad signature. */
  ck_assert_int_eq(check_accept(&answered, wrong_chip, nonce, bad, DEADLINE_NS + 1, &rtt),
                   CL_ACCEPT_WRONG_CHIP);
  ck_assert_int_eq(check_accept(&expired, wrong_chip, nonce, g_sig, SENT_NS + 1, &rtt),
                   CL_ACCEPT_WRONG_CHIP);
  /* Unknown nonce beats everything. */
  ck_assert_int_eq(check_accept(&answered, wrong_chip, wrong_nonce, bad, DEADLINE_NS + 1, &rtt),
                   CL_ACCEPT_UNKNOWN_NONCE);
  ck_assert_int_eq(check_accept(&free_slot, wrong_chip, nonce, bad, DEADLINE_NS + 1, &rtt),
                   CL_ACCEPT_UNKNOWN_NONCE);
  ck_assert_int_eq(check_accept(NULL, wrong_chip, nonce, bad, DEADLINE_NS + 1, &rtt),
                   CL_ACCEPT_UNKNOWN_NONCE);
}
END_TEST

START_TEST(test_result_names) {
  static const char *want[] = {"ok", "unknown_nonce", "wrong_chip", "replay", "late",
                               "bad_signature"};
  ck_assert_int_eq(CL_ACCEPT__COUNT, 6);
  for (int i = 0; i < CL_ACCEPT__COUNT; i++)
    ck_assert_str_eq(cl_accept_result_name((cl_accept_result)i), want[i]);
  ck_assert_str_eq(cl_accept_result_name(CL_ACCEPT__COUNT), "unknown");
  ck_assert_str_eq(cl_accept_result_name((cl_accept_result)-1), "unknown");
}
END_TEST

/* ---- Bursts. ---- */

#define K 5
static cl_challenge g_ch[K];
static uint8_t g_rsig[K][CL_SIG_LEN];
static const uint64_t g_rtt[K] = {500000, 300000, 700000, 250000, 400000}; /* min: index 3 */

static void make_burst(void) {
  for (int i = 0; i < K; i++) {
    make_challenge(&g_ch[i], 100 + (uint64_t)i);
    cl_response_sign(&g_ch[i], g_chip, g_rsig[i]);
  }
}

static void assert_min(const cl_burst *b, int idx, uint32_t count) {
  ck_assert_uint_eq(b->accepted, count);
  ck_assert_uint_eq(b->min_rtt_ns, g_rtt[idx]);
  ck_assert_mem_eq(&b->min_ch, &g_ch[idx], sizeof(cl_challenge));
  ck_assert_mem_eq(b->min_sig, g_rsig[idx], CL_SIG_LEN);
}

START_TEST(test_burst_all_orders) {
  make_burst();
  /* Every permutation of the five probes (Heap's algorithm). */
  int perm[K] = {0, 1, 2, 3, 4}, c[K] = {0};
  int orders = 0;
  for (int i = 0;;) {
    cl_burst b;
    cl_burst_reset(&b);
    int best = -1;
    for (int k = 0; k < K; k++) {
      int j = perm[k];
      cl_burst_add(&b, &g_ch[j], g_rsig[j], g_rtt[j]);
      if (best < 0 || g_rtt[j] < g_rtt[best]) best = j;
      assert_min(&b, best, (uint32_t)k + 1); /* the running minimum */
    }
    assert_min(&b, 3, K);
    orders++;
    while (i < K && c[i] >= i) c[i++] = 0;
    if (i >= K) break;
    int s = (i % 2 == 0) ? 0 : c[i];
    int t = perm[s];
    perm[s] = perm[i];
    perm[i] = t;
    c[i]++;
    i = 0;
  }
  ck_assert_int_eq(orders, 120);
}
END_TEST

START_TEST(test_burst_ties_and_extremes) {
  make_burst();
  cl_burst b;
  cl_burst_reset(&b);
  /* Equal RTTs: the first one added is kept. */
  cl_burst_add(&b, &g_ch[0], g_rsig[0], 1000);
  cl_burst_add(&b, &g_ch[1], g_rsig[1], 1000);
  ck_assert_mem_eq(&b.min_ch, &g_ch[0], sizeof(cl_challenge));
  ck_assert_uint_eq(b.accepted, 2);
  /* A zero RTT is a valid minimum; a huge one never displaces it. */
  cl_burst_add(&b, &g_ch[2], g_rsig[2], 0);
  cl_burst_add(&b, &g_ch[3], g_rsig[3], UINT64_MAX);
  ck_assert_uint_eq(b.min_rtt_ns, 0);
  ck_assert_mem_eq(&b.min_ch, &g_ch[2], sizeof(cl_challenge));
  ck_assert_uint_eq(b.accepted, 4);
  /* A first probe with the largest RTT is still taken. */
  cl_burst_reset(&b);
  ck_assert_uint_eq(b.accepted, 0);
  ck_assert_uint_eq(b.min_rtt_ns, 0);
  cl_burst_add(&b, &g_ch[4], g_rsig[4], UINT64_MAX);
  ck_assert_uint_eq(b.min_rtt_ns, UINT64_MAX);
  ck_assert_uint_eq(b.accepted, 1);
  /* Reset clears everything. */
  cl_burst_reset(&b);
  cl_burst zero;
  memset(&zero, 0, sizeof zero);
  ck_assert_mem_eq(&b, &zero, sizeof b);
}
END_TEST

START_TEST(test_burst_to_measurement) {
  make_burst();
  cl_burst b;
  cl_burst_reset(&b);
  uint64_t t0 = SENT_NS;
  for (int i = 0; i < K; i++) {
    /* Each response goes through the acceptance checks first, as in the
     * landmark. */
    cl_probe p = {.ch = g_ch[i], .sent_ns = t0, .deadline_ns = t0 + 1000000000ull,
                  .state = CL_PROBE_OUTSTANDING};
    uint64_t rtt = 0;
    ck_assert_int_eq(cl_probe_accept(&p, g_ch[i].chip, g_ch[i].nonce, g_rsig[i], t0 + g_rtt[i],
                                     &rtt),
                     CL_ACCEPT_OK);
    ck_assert_uint_eq(rtt, g_rtt[i]);
    cl_burst_add(&b, &p.ch, g_rsig[i], rtt);
    t0 += 10000000000ull;
  }
  cl_measurement m;
  memset(&m, 0x5A, sizeof m);
  cl_burst_to_measurement(&b, 1700000099000000000ull, &m);
  ck_assert_mem_eq(&m.ch, &g_ch[3], sizeof(cl_challenge));
  ck_assert_mem_eq(m.chip_sig, g_rsig[3], CL_SIG_LEN);
  ck_assert_uint_eq(m.rtt_ns, 250000);
  ck_assert_uint_eq(m.probe_count, K);
  ck_assert_uint_eq(m.measured_unix_ns, 1700000099000000000ull);
  uint8_t zero[CL_SIG_LEN] = {0};
  ck_assert_mem_eq(m.sig, zero, CL_SIG_LEN); /* unsigned until the landmark signs */
  ck_assert_int_eq(cl_measurement_verify(&m), CL_EBADSIG);
  cl_measurement_sign(&m, g_landmark);
  ck_assert_int_eq(cl_measurement_verify(&m), CL_OK);
}
END_TEST

/* ---- Distance bound. ---- */

/* ceil(299792458 * rtt / 2e9) in exact integer arithmetic. */
static uint64_t exact_bound_c(uint64_t rtt) {
  unsigned __int128 num = (unsigned __int128)rtt * 299792458u;
  return (uint64_t)(num / 2000000000u) + (num % 2000000000u != 0);
}

START_TEST(test_bound_exact_values) {
  /* 1 ms at c: 299792458 * 0.001 / 2 = 149896.229 m, rounded up. */
  ck_assert_uint_eq(cl_bound_m(1000000, CL_SPEED_C), 149897);
  ck_assert_uint_eq(cl_bound_m(0, CL_SPEED_C), 0);
  /* The worked example of docs/PROTOCOL.md: 185056.94 m. */
  ck_assert_uint_eq(cl_bound_m(1234567, CL_SPEED_C), 185057);
  ck_assert_uint_eq(cl_bound_m(0, CL_SPEED_FIBRE), 0);
  /* 1 ns is 0.15 m: any positive RTT gives at least 1 m. */
  ck_assert_uint_eq(cl_bound_m(1, CL_SPEED_C), 1);
  ck_assert_uint_eq(cl_bound_m(2, CL_SPEED_C), 1);
  ck_assert_uint_eq(cl_bound_m(20, CL_SPEED_C), 3); /* 2.998 */
  /* Exact products are not bumped up: 2 s at c is exactly c metres. */
  ck_assert_uint_eq(cl_bound_m(2000000000ull, CL_SPEED_C), 299792458ull);
  ck_assert_uint_eq(cl_bound_m(3600000000000ull, CL_SPEED_C), 539626424400ull); /* 1 h */
  /* 1 ms in fibre (2/3 c): 99930.819 m. */
  ck_assert_uint_eq(cl_bound_m(1000000, CL_SPEED_FIBRE), 99931);
  ck_assert_uint_eq(cl_bound_m(1000000, 2e8), 100000);
  ck_assert_uint_eq(cl_bound_m(1000001, 2e8), 100001); /* 100000.1 */
  /* Antipodal round trip (~133 ms at c) fits easily. */
  ck_assert_uint_eq(cl_bound_m(133425638ull, CL_SPEED_C), exact_bound_c(133425638ull));
  /* The largest RTT does not overflow: 2.765e18 m. */
  uint64_t huge = cl_bound_m(UINT64_MAX, CL_SPEED_C);
  ck_assert_uint_ge(huge, 2765097373977159000ull);
  ck_assert_uint_le(huge, 2765097373977159830ull);
}
END_TEST

START_TEST(test_bound_never_below_exact) {
  /* Against exact integer arithmetic for 1M random RTTs up to 2^40 ns
   * (18 minutes, far above any response deadline). */
  uint64_t x = 0x0123456789ABCDEFull;
  for (int i = 0; i < 1000000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    uint64_t rtt = (x >> (24 + i % 24)) & ((1ull << 40) - 1);
    ck_assert_uint_eq(cl_bound_m(rtt, CL_SPEED_C), exact_bound_c(rtt));
  }
  /* Slower speeds give smaller bounds and never round down. */
  for (uint64_t rtt = 1; rtt < 100000000ull; rtt = rtt * 3 + 1) {
    uint64_t b = cl_bound_m(rtt, CL_SPEED_FIBRE);
    ck_assert_uint_le(b, cl_bound_m(rtt, CL_SPEED_C));
    ck_assert((long double)b >= (long double)CL_SPEED_FIBRE * rtt / 2e9L);
    ck_assert((long double)b < (long double)CL_SPEED_FIBRE * rtt / 2e9L + 1.0L);
  }
}
END_TEST

/* ---- Speed parsing. ---- */

START_TEST(test_speed_parse) {
  double v = 0;
  ck_assert_int_eq(cl_speed_parse("c", &v), CL_OK);
  ck_assert(v == CL_SPEED_C);
  ck_assert_int_eq(cl_speed_parse("C", &v), CL_OK);
  ck_assert(v == 299792458.0);
  ck_assert_int_eq(cl_speed_parse("fibre", &v), CL_OK);
  ck_assert(v == CL_SPEED_FIBRE);
  v = 0;
  ck_assert_int_eq(cl_speed_parse("fiber", &v), CL_OK);
  ck_assert(v == CL_SPEED_FIBRE);
  ck_assert_int_eq(cl_speed_parse("FIBRE", &v), CL_OK);
  ck_assert(fabs(CL_SPEED_FIBRE - 199861638.6666667) < 1e-6);
  ck_assert_int_eq(cl_speed_parse("2e8", &v), CL_OK);
  ck_assert(v == 2e8);
  ck_assert_int_eq(cl_speed_parse("200000000", &v), CL_OK);
  ck_assert(v == 2e8);
  ck_assert_int_eq(cl_speed_parse("299792458", &v), CL_OK); /* exactly c */
  ck_assert(v == CL_SPEED_C);
  ck_assert_int_eq(cl_speed_parse("1", &v), CL_OK);
  ck_assert(v == 1.0);
  ck_assert_int_eq(cl_speed_parse("0.5", &v), CL_OK);
  ck_assert(v == 0.5);

  static const char *bad[] = {"0",        "0.0",      "-0",       "-1",     "-2e8",
                              "299792459", "3e8",      "1e300",    "1e400",  "inf",
                              "-inf",      "nan",      "",         "abc",    "c2",
                              "cc",        "fibres",   "2e8x",     "2e8 ",   "c ",
                              "200000000m", "1e-400"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    v = 12345.0;
    ck_assert_msg(cl_speed_parse(bad[i], &v) == CL_EINVAL, "accepted '%s'", bad[i]);
    ck_assert_msg(v == 12345.0, "'%s' changed the output", bad[i]);
  }
  ck_assert_int_eq(cl_speed_parse(NULL, &v), CL_EINVAL);
}
END_TEST

static Suite *probe_suite(void) {
  Suite *s = suite_create("probe");
  TCase *ta = tcase_create("accept");
  tcase_add_checked_fixture(ta, setup, teardown);
  tcase_set_timeout(ta, 30);
  tcase_add_test(ta, test_ok);
  tcase_add_test(ta, test_unknown_nonce);
  tcase_add_test(ta, test_wrong_chip);
  tcase_add_test(ta, test_replay);
  tcase_add_test(ta, test_late);
  tcase_add_test(ta, test_verifying_is_replay);
  tcase_add_test(ta, test_check_without_signature);
  tcase_add_test(ta, test_bad_signature);
  tcase_add_test(ta, test_check_order);
  tcase_add_test(ta, test_result_names);
  suite_add_tcase(s, ta);

  TCase *tb = tcase_create("burst");
  tcase_add_checked_fixture(tb, setup, teardown);
  tcase_set_timeout(tb, 30);
  tcase_add_test(tb, test_burst_all_orders);
  tcase_add_test(tb, test_burst_ties_and_extremes);
  tcase_add_test(tb, test_burst_to_measurement);
  suite_add_tcase(s, tb);

  TCase *tc = tcase_create("bound");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_bound_exact_values);
  tcase_add_test(tc, test_bound_never_below_exact);
  tcase_add_test(tc, test_speed_parse);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  SRunner *sr = srunner_create(probe_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
