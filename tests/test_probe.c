/*
 * Probe acceptance and burst reduction (lib/wire/cl_probe.h). Each named
 * result of cl_probe_accept is produced with a real session key (from a
 * real handshake) and a real answer MAC, including the order of the checks
 * when several fail at once; then the burst minimum in every order of the
 * RTTs, the measurement record a burst yields (re-verified offline), the
 * distance bound against exact integer arithmetic, and the speed parser.
 */
#include "testutil.h"
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
#define SUITE CL_SUITE_ED25519_X25519

static cl_key *g_landmark, *g_chip, *g_other;
static cl_handshake g_hs;                  /* a complete, signed handshake */
static uint8_t g_key[CL_SESSION_KEY_LEN];  /* its session key */
static uint8_t g_key2[CL_SESSION_KEY_LEN]; /* another session's key, same parties */
static cl_probe g_probe;
static uint8_t g_mac[CL_MAC_LEN]; /* the chip's valid answer to g_probe */

/* A handshake between the landmark and the chip, signed by both, and the
 * session key as each side derives it (they must agree). */
static void make_session(cl_handshake *hs, uint8_t key[CL_SESSION_KEY_LEN]) {
  memset(hs, 0, sizeof *hs);
  hs->suite = SUITE;
  memcpy(hs->landmark, cl_key_public(g_landmark), CL_PK_LEN);
  memcpy(hs->chip, cl_key_public(g_chip), CL_PK_LEN);
  uint8_t lsk[CL_EPH_SK_LEN], csk[CL_EPH_SK_LEN], ckey[CL_SESSION_KEY_LEN];
  cl_eph_generate(hs->landmark_eph, lsk);
  cl_eph_generate(hs->chip_eph, csk);
  randombytes_buf(hs->landmark_nonce, CL_NONCE_LEN);
  randombytes_buf(hs->chip_nonce, CL_NONCE_LEN);
  ck_assert_int_eq(cl_hs_sign_landmark(hs, g_landmark), CL_OK);
  ck_assert_int_eq(cl_hs_sign_chip(hs, g_chip), CL_OK);
  ck_assert_int_eq(cl_session_key(hs, CL_SIDE_LANDMARK, lsk, key), CL_OK);
  ck_assert_int_eq(cl_session_key(hs, CL_SIDE_CHIP, csk, ckey), CL_OK);
  ck_assert_mem_eq(key, ckey, CL_SESSION_KEY_LEN);
  sodium_memzero(lsk, sizeof lsk);
  sodium_memzero(csk, sizeof csk);
}

static void make_probe(cl_probe *p, uint64_t seq) {
  memset(p, 0, sizeof *p);
  p->seq = seq;
  for (int i = 0; i < CL_NONCE_LEN; i++) p->nonce[i] = (uint8_t)(seq * 31 + (uint64_t)i);
  p->sent_ns = SENT_NS;
  p->deadline_ns = DEADLINE_NS;
  p->state = CL_PROBE_OUTSTANDING;
}

static void setup(void) {
  uint8_t seed[32];
  memset(seed, 0x01, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_landmark, seed), CL_OK);
  memset(seed, 0x02, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_chip, seed), CL_OK);
  memset(seed, 0x03, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_other, seed), CL_OK);
  make_session(&g_hs, g_key);
  cl_handshake hs2;
  make_session(&hs2, g_key2);
  ck_assert(memcmp(g_key, g_key2, CL_SESSION_KEY_LEN) != 0);
  make_probe(&g_probe, 7);
  cl_answer_mac(g_key, SUITE, g_hs.landmark, g_hs.chip, g_probe.seq, g_probe.nonce, g_mac);
}

static void teardown(void) {
  cl_key_destroy(&g_landmark);
  cl_key_destroy(&g_chip);
  cl_key_destroy(&g_other);
}

/* Runs the checks on probe p with this key, chip and MAC; asserts that the
 * probe is left unchanged and that *rtt is only written on success. */
static cl_accept_result check_accept(const cl_probe *p, const uint8_t *key, const uint8_t *chip,
                                     const uint8_t *mac, uint64_t recv_ns, uint64_t *rtt) {
  cl_probe before;
  memset(&before, 0, sizeof before);
  if (p) before = *p;
  *rtt = NO_RTT;
  cl_accept_result r = cl_probe_accept(p, key, SUITE, g_hs.landmark, chip, mac, recv_ns, rtt);
  if (p) ck_assert_mem_eq(&before, p, sizeof before);
  if (r != CL_ACCEPT_OK) ck_assert_uint_eq(*rtt, NO_RTT);
  return r;
}

START_TEST(test_ok) {
  uint64_t rtt;
  const cl_probe *p = &g_probe;
  ck_assert_int_eq(check_accept(p, g_key, g_hs.chip, g_mac, SENT_NS + 12345, &rtt), CL_ACCEPT_OK);
  ck_assert_uint_eq(rtt, 12345);
  /* The edges of the window are inside it. */
  ck_assert_int_eq(check_accept(p, g_key, g_hs.chip, g_mac, SENT_NS, &rtt), CL_ACCEPT_OK);
  ck_assert_uint_eq(rtt, 0);
  ck_assert_int_eq(check_accept(p, g_key, g_hs.chip, g_mac, DEADLINE_NS, &rtt), CL_ACCEPT_OK);
  ck_assert_uint_eq(rtt, DEADLINE_NS - SENT_NS);
}
END_TEST

START_TEST(test_unknown_probe) {
  uint64_t rtt;
  /* No probe remembered with the answer's seq. */
  ck_assert_int_eq(check_accept(NULL, g_key, g_hs.chip, g_mac, SENT_NS + 1, &rtt),
                   CL_ACCEPT_UNKNOWN_PROBE);
  /* A free ring slot is no probe either, whatever it holds. */
  cl_probe p = g_probe;
  p.state = CL_PROBE_FREE;
  ck_assert_int_eq(check_accept(&p, g_key, g_hs.chip, g_mac, SENT_NS + 1, &rtt),
                   CL_ACCEPT_UNKNOWN_PROBE);
}
END_TEST

START_TEST(test_replay) {
  uint64_t rtt;
  cl_probe p = g_probe;
  p.state = CL_PROBE_ANSWERED;
  ck_assert_int_eq(check_accept(&p, g_key, g_hs.chip, g_mac, SENT_NS + 1, &rtt),
                   CL_ACCEPT_REPLAY);
}
END_TEST

START_TEST(test_late) {
  uint64_t rtt;
  const cl_probe *p = &g_probe;
  ck_assert_int_eq(check_accept(p, g_key, g_hs.chip, g_mac, DEADLINE_NS + 1, &rtt),
                   CL_ACCEPT_LATE);
  /* Before the send stamp: the clock went backwards or the stamp is wrong;
   * never a negative RTT. */
  ck_assert_int_eq(check_accept(p, g_key, g_hs.chip, g_mac, SENT_NS - 1, &rtt), CL_ACCEPT_LATE);
  /* An expired probe (deadline passed, or its MAC failed once) is late. */
  cl_probe e = g_probe;
  e.state = CL_PROBE_EXPIRED;
  ck_assert_int_eq(check_accept(&e, g_key, g_hs.chip, g_mac, SENT_NS + 1, &rtt), CL_ACCEPT_LATE);
}
END_TEST

START_TEST(test_bad_mac) {
  uint64_t rtt;
  const cl_probe *p = &g_probe;
  uint8_t m[CL_MAC_LEN];
  /* Any bit of the MAC. */
  for (int i = 0; i < CL_MAC_LEN * 8; i++) {
    memcpy(m, g_mac, CL_MAC_LEN);
    m[i / 8] ^= (uint8_t)(1u << (i % 8));
    ck_assert_int_eq(check_accept(p, g_key, g_hs.chip, m, SENT_NS + 1, &rtt), CL_ACCEPT_BAD_MAC);
  }
  /* The valid MAC, checked under another session's key. */
  ck_assert_int_eq(check_accept(p, g_key2, g_hs.chip, g_mac, SENT_NS + 1, &rtt),
                   CL_ACCEPT_BAD_MAC);
  /* A MAC under another session's key (a chip answering from another
   * session, or someone who holds another session's key). */
  cl_answer_mac(g_key2, SUITE, g_hs.landmark, g_hs.chip, p->seq, p->nonce, m);
  ck_assert_int_eq(check_accept(p, g_key, g_hs.chip, m, SENT_NS + 1, &rtt), CL_ACCEPT_BAD_MAC);
  /* The right key over a layout naming another landmark (a session with
   * it relayed here), another chip, another seq or another nonce. */
  cl_answer_mac(g_key, SUITE, cl_key_public(g_other), g_hs.chip, p->seq, p->nonce, m);
  ck_assert_int_eq(check_accept(p, g_key, g_hs.chip, m, SENT_NS + 1, &rtt), CL_ACCEPT_BAD_MAC);
  cl_answer_mac(g_key, SUITE, g_hs.landmark, cl_key_public(g_other), p->seq, p->nonce, m);
  ck_assert_int_eq(check_accept(p, g_key, g_hs.chip, m, SENT_NS + 1, &rtt), CL_ACCEPT_BAD_MAC);
  ck_assert_int_eq(check_accept(p, g_key, cl_key_public(g_other), g_mac, SENT_NS + 1, &rtt),
                   CL_ACCEPT_BAD_MAC);
  cl_answer_mac(g_key, SUITE, g_hs.landmark, g_hs.chip, p->seq + 1, p->nonce, m);
  ck_assert_int_eq(check_accept(p, g_key, g_hs.chip, m, SENT_NS + 1, &rtt), CL_ACCEPT_BAD_MAC);
  uint8_t n[CL_NONCE_LEN];
  memcpy(n, p->nonce, CL_NONCE_LEN);
  n[31] ^= 0x80;
  cl_answer_mac(g_key, SUITE, g_hs.landmark, g_hs.chip, p->seq, n, m);
  ck_assert_int_eq(check_accept(p, g_key, g_hs.chip, m, SENT_NS + 1, &rtt), CL_ACCEPT_BAD_MAC);
}
END_TEST

START_TEST(test_check_without_mac) {
  /* cl_probe_check is checks 1 to 3 alone: it passes a bad MAC (the caller
   * checks the MAC after the receive stamp) and fails what they fail. */
  uint64_t rtt = NO_RTT;
  ck_assert_int_eq(cl_probe_check(&g_probe, SENT_NS + 9, &rtt), CL_ACCEPT_OK);
  ck_assert_uint_eq(rtt, 9);
  ck_assert_int_eq(cl_probe_check(NULL, SENT_NS + 9, &rtt), CL_ACCEPT_UNKNOWN_PROBE);
  ck_assert_int_eq(cl_probe_check(&g_probe, DEADLINE_NS + 1, &rtt), CL_ACCEPT_LATE);
  cl_probe p = g_probe;
  p.state = CL_PROBE_ANSWERED;
  ck_assert_int_eq(cl_probe_check(&p, SENT_NS + 9, &rtt), CL_ACCEPT_REPLAY);
}
END_TEST

START_TEST(test_check_order) {
  /* When several checks fail, the first in order is reported: unknown
   * probe, replay, late, bad MAC. */
  uint64_t rtt;
  uint8_t bad[CL_MAC_LEN];
  memcpy(bad, g_mac, CL_MAC_LEN);
  bad[0] ^= 1;
  cl_probe p = g_probe;
  /* Late and bad MAC: late. */
  ck_assert_int_eq(check_accept(&p, g_key, g_hs.chip, bad, DEADLINE_NS + 1, &rtt),
                   CL_ACCEPT_LATE);
  /* Answered, late and bad MAC: replay. */
  p.state = CL_PROBE_ANSWERED;
  ck_assert_int_eq(check_accept(&p, g_key, g_hs.chip, bad, DEADLINE_NS + 1, &rtt),
                   CL_ACCEPT_REPLAY);
  /* Free slot, otherwise everything wrong: unknown probe. */
  p.state = CL_PROBE_FREE;
  ck_assert_int_eq(check_accept(&p, g_key2, g_hs.chip, bad, DEADLINE_NS + 1, &rtt),
                   CL_ACCEPT_UNKNOWN_PROBE);
}
END_TEST

START_TEST(test_result_names) {
  static const char *want[] = {"ok", "unknown_probe", "replay", "late", "bad_mac"};
  for (int r = 0; r < CL_ACCEPT__COUNT; r++)
    ck_assert_str_eq(cl_accept_result_name((cl_accept_result)r), want[r]);
  ck_assert_str_eq(cl_accept_result_name(CL_ACCEPT__COUNT), "unknown");
}
END_TEST

/* ---- Bursts. ---- */

#define K 5
static cl_probe g_p[K];
static uint8_t g_m[K][CL_MAC_LEN];

static void make_burst_probes(void) {
  for (int i = 0; i < K; i++) {
    make_probe(&g_p[i], 100 + (uint64_t)i);
    cl_answer_mac(g_key, SUITE, g_hs.landmark, g_hs.chip, g_p[i].seq, g_p[i].nonce, g_m[i]);
  }
}

START_TEST(test_burst_all_orders) {
  make_burst_probes();
  /* Every assignment of the RTTs 10..50 us to the five probes (sent in seq
   * order): the minimum is found wherever it sits, and the entries keep
   * the order they were added in. */
  int perm[K] = {0, 1, 2, 3, 4};
  int seen = 0;
  for (;;) {
    cl_burst b;
    cl_burst_reset(&b);
    for (int j = 0; j < K; j++)
      cl_burst_add(&b, g_p[j].seq, g_p[j].nonce, g_m[j], 10000 * (uint64_t)(perm[j] + 1));
    ck_assert_uint_eq(b.accepted, K);
    ck_assert_uint_eq(cl_burst_min_rtt(&b), 10000);
    for (int j = 0; j < K; j++) {
      ck_assert_uint_eq(b.e[j].seq, g_p[j].seq);
      ck_assert_mem_eq(b.e[j].nonce, g_p[j].nonce, CL_NONCE_LEN);
      ck_assert_mem_eq(b.e[j].mac, g_m[j], CL_MAC_LEN);
    }
    seen++;
    /* Next permutation (lexicographic). */
    int i = K - 2;
    while (i >= 0 && perm[i] > perm[i + 1]) i--;
    if (i < 0) break;
    int j = K - 1;
    while (perm[j] < perm[i]) j--;
    int t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
    for (int a = i + 1, z = K - 1; a < z; a++, z--) {
      t = perm[a];
      perm[a] = perm[z];
      perm[z] = t;
    }
  }
  ck_assert_int_eq(seen, 120);
}
END_TEST

START_TEST(test_burst_ties_and_extremes) {
  make_burst_probes();
  cl_burst b;
  cl_burst_reset(&b);
  /* Equal RTTs; then 0 and the largest. */
  cl_burst_add(&b, g_p[0].seq, g_p[0].nonce, g_m[0], 1000);
  cl_burst_add(&b, g_p[1].seq, g_p[1].nonce, g_m[1], 1000);
  ck_assert_uint_eq(cl_burst_min_rtt(&b), 1000);
  cl_burst_add(&b, g_p[2].seq, g_p[2].nonce, g_m[2], 0);
  cl_burst_add(&b, g_p[3].seq, g_p[3].nonce, g_m[3], UINT64_MAX);
  ck_assert_uint_eq(cl_burst_min_rtt(&b), 0);
  ck_assert_uint_eq(b.accepted, 4);
  /* Never more than CL_MAX_BURST entries. */
  cl_burst_reset(&b);
  for (int i = 0; i < CL_MAX_BURST + 3; i++)
    cl_burst_add(&b, 1000 + (uint64_t)i, g_p[0].nonce, g_m[0], 5000 - (uint64_t)i);
  ck_assert_uint_eq(b.accepted, CL_MAX_BURST);
  ck_assert_uint_eq(b.e[CL_MAX_BURST - 1].seq, 1000 + CL_MAX_BURST - 1);
  ck_assert_uint_eq(cl_burst_min_rtt(&b), 5000 - (CL_MAX_BURST - 1));
  /* Reset clears everything. */
  cl_burst zero;
  memset(&zero, 0, sizeof zero);
  cl_burst_reset(&b);
  ck_assert_mem_eq(&b, &zero, sizeof zero);
}
END_TEST

START_TEST(test_burst_to_measurement) {
  make_burst_probes();
  /* Probes 0, 2, 3 accepted of 5 sent; the fastest is probe 3. */
  cl_burst b;
  cl_burst_reset(&b);
  b.sent = K;
  static const int acc[] = {0, 2, 3};
  static const uint64_t rtt[] = {900000, 700000, 650000};
  for (int i = 0; i < 3; i++)
    cl_burst_add(&b, g_p[acc[i]].seq, g_p[acc[i]].nonce, g_m[acc[i]], rtt[i]);
  uint8_t tsig[CL_SIG_LEN];
  ck_assert_int_eq(cl_transcript_sign(&g_hs, b.e, b.accepted, g_chip, tsig), CL_OK);
  ck_assert_int_eq(cl_transcript_verify(&g_hs, b.e, b.accepted, tsig), CL_OK);
  cl_measurement m;
  cl_burst_to_measurement(&b, &g_hs, tsig, 1700000099000000000ull, &m);
  ck_assert_mem_eq(&m.hs, &g_hs, sizeof g_hs);
  ck_assert_uint_eq(m.count, 3);
  ck_assert_uint_eq(m.rtt_ns, 650000);
  ck_assert_uint_eq(m.probes_sent, K);
  ck_assert_uint_eq(m.measured_unix_ns, 1700000099000000000ull);
  ck_assert_uint_eq(m.probes[2].seq, g_p[3].seq);
  ck_assert_uint_eq(cl_measurement_fastest(&m), 2);
  ck_assert_int_eq(cl_measurement_check(&m, NULL, 0), CL_OK);
  /* Unsigned until the landmark signs it; then everything re-verifies
   * offline, and a change to any probe breaks it. */
  ck_assert_int_eq(cl_measurement_verify(&m), CL_EBADSIG);
  ck_assert_int_eq(cl_measurement_sign(&m, g_landmark), CL_OK);
  ck_assert_int_eq(cl_measurement_verify(&m), CL_OK);
  cl_measurement t = m;
  t.probes[1].rtt_ns++;
  ck_assert_int_ne(cl_measurement_verify(&t), CL_OK);
  /* A burst that never counted its sends still says it sent what it
   * accepted. */
  b.sent = 0;
  cl_burst_to_measurement(&b, &g_hs, tsig, 1, &m);
  ck_assert_uint_eq(m.probes_sent, 3);
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
  tcase_add_test(ta, test_unknown_probe);
  tcase_add_test(ta, test_replay);
  tcase_add_test(ta, test_late);
  tcase_add_test(ta, test_bad_mac);
  tcase_add_test(ta, test_check_without_mac);
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
  return tu_run_suite(probe_suite());
}
