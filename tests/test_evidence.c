/* What the verifier believes of a row (cl_evidence, docs/PROTOCOL.md §11). */
#include "cl_err.h"
#include "cl_evidence.h"
#include "cl_layout.h"

#include <check.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static cl_key *LM, *CHIP, *OTHER;

#define T0 1700000000000000000ull

/* A genuine record measured at T0 + 1 s. */
static cl_measurement genuine(void) {
  cl_measurement m;
  memset(&m, 0, sizeof m);
  memcpy(m.ch.landmark, cl_key_public(LM), CL_PK_LEN);
  memcpy(m.ch.chip, cl_key_public(CHIP), CL_PK_LEN);
  randombytes_buf(m.ch.nonce, CL_NONCE_LEN);
  m.ch.issued_unix_ns = T0;
  m.ch.seq = 7;
  cl_challenge_sign(&m.ch, LM);
  cl_response_sign(&m.ch, CHIP, m.chip_sig);
  m.rtt_ns = 123456;
  m.probe_count = 3;
  m.measured_unix_ns = T0 + 1000000000ull;
  cl_measurement_sign(&m, LM);
  return m;
}

static const cl_ev_key_state ACTIVE = {0, 0};

START_TEST(test_genuine_and_tampered) {
  cl_measurement m = genuine();
  uint64_t ins = m.measured_unix_ns + 5000000000ull;
  ck_assert_int_eq(cl_evidence_judge(NULL, &m, &ACTIVE, ins), CL_EV_OK);
  /* Any signed field changed: the record signature fails. */
  cl_measurement t = m;
  t.rtt_ns = 1000;
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  /* All-zero signatures. */
  t = m;
  memset(t.sig, 0, sizeof t.sig);
  memset(t.chip_sig, 0, sizeof t.chip_sig);
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  /* Named under another landmark's key: the signature is not that key's. */
  t = m;
  memcpy(t.ch.landmark, cl_key_public(OTHER), CL_PK_LEN);
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  /* A landmark that signs a record for a chip that never answered: its own
   * signature is good, the chip's is not. */
  t = m;
  memset(t.chip_sig, 0, sizeof t.chip_sig);
  cl_measurement_sign(&t, LM);
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_CHIP_SIGNATURE);
  /* Named for another chip. */
  t = m;
  memcpy(t.ch.chip, cl_key_public(OTHER), CL_PK_LEN);
  cl_measurement_sign(&t, LM);
  ck_assert_int_eq(cl_evidence_judge(NULL, &t, &ACTIVE, ins), CL_EV_BAD_CHIP_SIGNATURE);
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
  /* The order: future before retired before revoked before signatures. */
  cl_measurement bad = m;
  memset(bad.sig, 0, sizeof bad.sig);
  cl_ev_key_state both = {at - 1, 1};
  ck_assert_int_eq(cl_evidence_judge(NULL, &bad, &both, 0), CL_EV_FUTURE);
  ck_assert_int_eq(cl_evidence_judge(NULL, &bad, &both, at), CL_EV_RETIRED);
  cl_ev_key_state later = {at + 1, 1};
  ck_assert_int_eq(cl_evidence_judge(NULL, &bad, &later, at + 2), CL_EV_REVOKED);
  ck_assert_int_eq(cl_evidence_judge(NULL, &bad, &ACTIVE, at), CL_EV_BAD_SIGNATURE);
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
  t.rtt_ns--;
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  ck_assert_int_eq(cl_evidence_judge(c, &t, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  ck_assert_uint_eq(cl_evcache_verified(c), 2);
  /* The copied record signature does not make t pass, nor m fail. */
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ACTIVE, ins), CL_EV_OK);
  /* Time and lifecycle are judged every time, cached or not. */
  cl_ev_key_state ret = {ins - 1, 0};
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ret, ins), CL_EV_RETIRED);
  /* A row looked at in the previous round stays; one not looked at for a
   * whole round is forgotten. */
  cl_evcache_round(c);
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ACTIVE, ins), CL_EV_OK);
  ck_assert_uint_eq(cl_evcache_verified(c), 2);
  cl_evcache_round(c);
  cl_evcache_round(c);
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ACTIVE, ins), CL_EV_OK);
  ck_assert_uint_eq(cl_evcache_verified(c), 3);
  /* Many rows: the table grows and every outcome stays right. */
  for (int i = 0; i < 3000; i++) {
    cl_measurement k = m;
    k.ch.seq = (uint64_t)i + 100;
    ck_assert_int_eq(cl_evidence_judge(c, &k, &ACTIVE, ins), CL_EV_BAD_SIGNATURE);
  }
  ck_assert_int_eq(cl_evidence_judge(c, &m, &ACTIVE, ins), CL_EV_OK);
  ck_assert_uint_eq(cl_evcache_verified(c), 3003);
  cl_evcache_free(&c);
  ck_assert_ptr_null(c);
  cl_evcache_free(&c);
}
END_TEST

START_TEST(test_names) {
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_OK), "ok");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_BAD_SIGNATURE), "bad_signature");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_BAD_CHIP_SIGNATURE), "bad_chip_signature");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_RETIRED), "retired");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_REVOKED), "revoked");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV_FUTURE), "future");
  ck_assert_str_eq(cl_ev_reason_name(CL_EV__COUNT), "unknown");
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  if (cl_key_generate(&LM) || cl_key_generate(&CHIP) || cl_key_generate(&OTHER)) return 1;
  Suite *s = suite_create("evidence");
  TCase *tc = tcase_create("judge");
  tcase_add_test(tc, test_genuine_and_tampered);
  tcase_add_test(tc, test_time_and_lifecycle);
  tcase_add_test(tc, test_cache);
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
