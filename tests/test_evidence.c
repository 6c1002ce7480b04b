/* What the verifier believes of a row (cl_evidence, docs/PROTOCOL.md §11). */
#include "cl_err.h"
#include "cl_evidence.h"
#include "cl_layout.h"
#include "tu_record.h"

#include <check.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static cl_key *LM, *CHIP, *OTHER;

#define T0 1700000000000000000ull

/* A genuine record of four probes measured at T0 + 1 s; the fastest is the
 * third. */
static cl_measurement genuine(void) {
  cl_measurement m;
  const uint64_t rtts[4] = {130000, 125000, 123456, 140000};
  ck_assert_int_eq(tu_record(&m, LM, CHIP, 7, 4, rtts, T0 + 1000000000ull), CL_OK);
  ck_assert_int_eq(cl_measurement_verify(&m), CL_OK);
  return m;
}

static const cl_ev_key_state ACTIVE = {0, 0};

START_TEST(test_genuine_and_tampered) {
  cl_measurement m = genuine();
  uint64_t ins = m.measured_unix_ns + 5000000000ull;
  ck_assert_int_eq(cl_evidence_judge(NULL, &m, &ACTIVE, ins), CL_EV_OK);
  /* Any signed field changed: the record signature fails. */
  cl_measurement t = m;
  t.probes_sent = 9;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  t = m;
  t.hs.landmark_nonce[0] ^= 1;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  t = m;
  t.probes[1].rtt_ns = 124000; /* still not the fastest: consistent, but not signed */
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  /* All-zero signatures. */
  t = m;
  memset(t.sig, 0, sizeof t.sig);
  memset(t.transcript_sig, 0, sizeof t.transcript_sig);
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  /* Named under another landmark's key: the signature is not that key's. */
  t = m;
  memcpy(t.hs.landmark, cl_key_public(OTHER), CL_PK_LEN);
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  /* One probe dropped after signing (the last, so the rest stay
   * consistent): not what the landmark signed. */
  t = m;
  t.count = 3;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  /* A landmark that signs a record for a chip that never answered: its own
   * signature is good, the transcript's is not. */
  t = m;
  memset(t.transcript_sig, 0, sizeof t.transcript_sig);
  ck_assert_int_eq(cl_measurement_sign(&t, LM), CL_OK);
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_CHIP_SIGNATURE);
  /* The transcript signed by another key than the chip's. */
  t = m;
  ck_assert_int_eq(cl_transcript_sign(&t.hs, t.probes, t.count, OTHER, t.transcript_sig), CL_OK);
  ck_assert_int_eq(cl_measurement_sign(&t, LM), CL_OK);
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_CHIP_SIGNATURE);
  /* Named for another chip. */
  t = m;
  memcpy(t.hs.chip, cl_key_public(OTHER), CL_PK_LEN);
  ck_assert_int_eq(cl_measurement_sign(&t, LM), CL_OK);
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_CHIP_SIGNATURE);
  /* An answer the chip did not give, signed over by the landmark. */
  t = m;
  t.probes[2].mac[0] ^= 1;
  ck_assert_int_eq(cl_measurement_sign(&t, LM), CL_OK);
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_CHIP_SIGNATURE);
  /* The handshake signatures are not the verifier's to check: the
   * transcript names the session by a hash of the handshake without them.
   * The audit checks them (cl_measurement_verify). */
  t = m;
  memset(t.hs.chip_sig, 0, sizeof t.hs.chip_sig);
  ck_assert_int_eq(cl_measurement_sign(&t, LM), CL_OK);
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_OK);
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
}
END_TEST

/* Records no landmark could have signed: refused as malformed before any
 * signature, whatever the signatures are. */
START_TEST(test_malformed) {
  cl_measurement m = genuine();
  uint64_t ins = m.measured_unix_ns;
  cl_measurement t;
  /* rtt_ns is not the smallest of the signed entries' RTTs (the column
   * edited to a faster time, or to a slower one). */
  t = m;
  t.rtt_ns = 100000;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  t = m;
  t.rtt_ns = 125000;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  /* The fastest entry dropped after signing: the rest's minimum is slower. */
  t = m;
  t.probes[2] = t.probes[3];
  t.count = 3;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  /* Entries reordered after signing. */
  t = m;
  t.probes[0] = m.probes[1];
  t.probes[1] = m.probes[0];
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  /* An entry repeated. */
  t = m;
  t.probes[3].seq = t.probes[2].seq;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  /* No entries, or more than a burst holds. */
  t = m;
  t.count = 0;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  t = m;
  t.count = CL_MAX_BURST + 1;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  /* Fewer probes sent than answered. */
  t = m;
  t.probes_sent = 3;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  /* A suite this build does not know, reserved or not. */
  t = m;
  t.hs.suite = CL_SUITE_P256_RESERVED;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  t.hs.suite = 7;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  /* Malformed is decided without the cache: nothing is verified or kept. */
  cl_evcache *c = cl_evcache_new();
  ck_assert_ptr_nonnull(c);
  t = m;
  t.rtt_ns = 1;
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_MALFORMED);
  ck_assert_uint_eq(cl_evcache_verified(c), 0);
  ck_assert_uint_eq(cl_evcache_hits(c), 0);
  cl_evcache_free(&c);
}
END_TEST

START_TEST(test_time_and_lifecycle) {
  cl_measurement m = genuine();
  uint64_t at = m.measured_unix_ns;
  /* Dated after its insert time: up to the slack is a clock difference. */
  ck_assert_int_eq(cl_evidence_judge(NULL, &m, &ACTIVE, at - CL_EV_FUTURE_SLACK_NS), CL_EV_OK);
  ck_assert_int_eq(cl_evidence_judge(NULL, &m, &ACTIVE, at - CL_EV_FUTURE_SLACK_NS - 1),
                   CL_EV_FUTURE);
  /* Retired: rows measured up to the time count, later ones do not. */
  cl_ev_key_state ret = {at, 0};
  ck_assert_int_eq(cl_evidence_judge(NULL, &m, &ret, at + 1), CL_EV_OK);
  ret.retired_ns = at - 1;
  ck_assert_int_eq(cl_evidence_judge(NULL, &m, &ret, at + 1), CL_EV_RETIRED);
  /* Revoked: also rows received after the time, whatever they claim. */
  cl_ev_key_state rev = {at + 10, 1};
  ck_assert_int_eq(cl_evidence_judge(NULL, &m, &rev, at + 10), CL_EV_OK);
  ck_assert_int_eq(cl_evidence_judge(NULL, &m, &rev, at + 11), CL_EV_REVOKED);
  /* The same three checks without a record (the audit's for rows it
   * cannot verify), in the same order. */
  ck_assert_int_eq(cl_ev_time_check(&ACTIVE, at, at - CL_EV_FUTURE_SLACK_NS), CL_EV_OK);
  ck_assert_int_eq(cl_ev_time_check(&ACTIVE, at, at - CL_EV_FUTURE_SLACK_NS - 1), CL_EV_FUTURE);
  ck_assert_int_eq(cl_ev_time_check(&ret, at, at - CL_EV_FUTURE_SLACK_NS - 1), CL_EV_FUTURE);
  ck_assert_int_eq(cl_ev_time_check(&ret, at, at + 1), CL_EV_RETIRED);
  ck_assert_int_eq(cl_ev_time_check(&rev, at, at + 11), CL_EV_REVOKED);
  ck_assert_int_eq(cl_ev_time_check(&rev, at, at + 10), CL_EV_OK);
}
END_TEST

/* The checks in their order: a row that fails every check is refused for
 * the first, and fixing each in turn gives the next. */
START_TEST(test_order) {
  cl_measurement m = genuine();
  uint64_t at = m.measured_unix_ns;
  /* Signed by the landmark over a transcript the chip did not sign. */
  cl_measurement bad = m;
  memset(bad.transcript_sig, 0, sizeof bad.transcript_sig);
  ck_assert_int_eq(cl_measurement_sign(&bad, LM), CL_OK);
  ck_assert_int_eq(cl_evidence_judge(NULL, &bad, &ACTIVE, at), CL_EV_BAD_CHIP_SIGNATURE);
  /* ... and not signed by the landmark either. */
  memset(bad.sig, 0, sizeof bad.sig);
  ck_assert_int_eq(cl_evidence_judge(NULL, &bad, &ACTIVE, at), CL_EV_BAD_SIGNATURE);
  /* ... and inconsistent. */
  bad.rtt_ns = 1;
  ck_assert_int_eq(cl_evidence_judge(NULL, &bad, &ACTIVE, at), CL_EV_MALFORMED);
  /* ... and received after the landmark's key was revoked. */
  cl_ev_key_state k = {at + 1, 1};
  ck_assert_int_eq(cl_evidence_judge(NULL, &bad, &k, at + 2), CL_EV_REVOKED);
  /* ... and measured after it. */
  k.retired_ns = at - 1;
  ck_assert_int_eq(cl_evidence_judge(NULL, &bad, &k, at + 2), CL_EV_RETIRED);
  /* ... and dated after its insert time. */
  ck_assert_int_eq(cl_evidence_judge(NULL, &bad, &k, 0), CL_EV_FUTURE);
}
END_TEST

START_TEST(test_cache) {
  cl_evcache *c = cl_evcache_new();
  ck_assert_ptr_nonnull(c);
  cl_measurement m = genuine();
  uint64_t ins = m.measured_unix_ns;
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ACTIVE, ins), CL_EV_OK);
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ACTIVE, ins), CL_EV_OK);
  ck_assert_uint_eq(cl_evcache_verified(c), 1);
  ck_assert_uint_eq(cl_evcache_hits(c), 1);
  /* A row with one byte changed is another row, checked afresh, and a
   * refusal is remembered as one. */
  cl_measurement t = m;
  t.probes_sent++;
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  ck_assert_uint_eq(cl_evcache_verified(c), 2);
  ck_assert_uint_eq(cl_evcache_hits(c), 2);
  /* The copied record signature does not make t pass, nor m fail. */
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ACTIVE, ins), CL_EV_OK);
  /* Every part of the layout is in the digest: a row that differs from m
   * only in a handshake byte, a handshake signature, an entry, the
   * transcript signature or the chip it names is judged afresh, never
   * served m's outcome. */
  uint64_t before = cl_evcache_verified(c);
  t = m;
  t.hs.chip_eph[5] ^= 1;
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  t = m;
  t.hs.landmark_sig[0] ^= 1;
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  t = m;
  t.probes[3].nonce[31] ^= 1;
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  t = m;
  t.transcript_sig[63] ^= 1;
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  t = m;
  memcpy(t.hs.chip, cl_key_public(OTHER), CL_PK_LEN);
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  /* So is the record signature: the same layout with another signature
   * is another row. */
  t = m;
  t.sig[0] ^= 1;
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  ck_assert_uint_eq(cl_evcache_verified(c), before + 6);
  /* Time and lifecycle are judged every time, cached or not. */
  cl_ev_key_state ret = {ins - 1, 0};
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ret, ins), CL_EV_RETIRED);
  /* A row looked at in the previous round stays; one not looked at for a
   * whole round is forgotten. */
  uint64_t verified = cl_evcache_verified(c);
  cl_evcache_round(c);
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ACTIVE, ins), CL_EV_OK);
  ck_assert_uint_eq(cl_evcache_verified(c), verified);
  cl_evcache_round(c);
  cl_evcache_round(c);
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ACTIVE, ins), CL_EV_OK);
  ck_assert_uint_eq(cl_evcache_verified(c), verified + 1);
  /* Many rows: the table grows and every outcome stays right. */
  for (int i = 0; i < 3000; i++) {
    cl_measurement k = m;
    k.probes_sent = m.count + 1 + (uint32_t)i;
    ck_assert_int_eq(cl_evidence_judge(c, &k, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  }
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ACTIVE, ins), CL_EV_OK);
  ck_assert_uint_eq(cl_evcache_verified(c), verified + 3001);
  cl_evcache_free(&c);
  ck_assert_ptr_null(c);
  cl_evcache_free(&c);
}
END_TEST

/* The generator the tests share: every signature of its records verifies,
 * for one probe and for a full burst, and it refuses what no burst holds. */
START_TEST(test_generator) {
  cl_measurement m;
  uint64_t rtts[CL_MAX_BURST];
  for (int i = 0; i < CL_MAX_BURST; i++) rtts[i] = 200000 - 1000 * (uint64_t)i;
  ck_assert_int_eq(tu_record(&m, LM, CHIP, 1, 1, rtts, T0), CL_OK);
  ck_assert_int_eq(cl_measurement_verify(&m), CL_OK);
  ck_assert_uint_eq(m.rtt_ns, 200000);
  ck_assert_int_eq(tu_record(&m, LM, CHIP, 1, CL_MAX_BURST, rtts, T0), CL_OK);
  ck_assert_int_eq(cl_measurement_verify(&m), CL_OK);
  ck_assert_uint_eq(m.rtt_ns, 200000 - 1000 * (CL_MAX_BURST - 1));
  ck_assert_uint_eq(m.probes[CL_MAX_BURST - 1].seq, CL_MAX_BURST);
  ck_assert_int_eq(tu_record(&m, LM, CHIP, 1, 0, rtts, T0), CL_EINVAL);
  ck_assert_int_eq(tu_record(&m, LM, CHIP, 1, CL_MAX_BURST + 1, rtts, T0), CL_EINVAL);
  ck_assert_int_eq(tu_record_rtt(&m, LM, CHIP, 5000, T0), CL_OK);
  ck_assert_int_eq(cl_measurement_verify(&m), CL_OK);
  ck_assert_uint_eq(m.rtt_ns, 5000);
  ck_assert_uint_eq(cl_measurement_fastest(&m), 1);
}
END_TEST

START_TEST(test_names) {
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_OK), "ok");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_BAD_SIGNATURE), "bad_signature");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_BAD_CHIP_SIGNATURE), "bad_chip_signature");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_RETIRED), "retired");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_REVOKED), "revoked");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_FUTURE), "future");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_MALFORMED), "malformed");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV__COUNT), "unknown");
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  if (cl_key_generate(&LM) || cl_key_generate(&CHIP) || cl_key_generate(&OTHER)) return 1;
  Suite *s = suite_create("evidence");
  TCase *tc = tcase_create("judge");
  tcase_add_test(tc, test_genuine_and_tampered);
  tcase_add_test(tc, test_malformed);
  tcase_add_test(tc, test_time_and_lifecycle);
  tcase_add_test(tc, test_order);
  tcase_add_test(tc, test_cache);
  tcase_add_test(tc, test_generator);
  tcase_add_test(tc, test_names);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  cl_key_destroy(&LM);
  cl_key_destroy(&CHIP);
  cl_key_destroy(&OTHER);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
