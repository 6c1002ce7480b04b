/*
 * The chip's side of a protocol-2 session (lib/wire/cl_chipsess.h) against
 * the landmark's computations done here with cl_layout: offer, the
 * landmark's half, accept, the chip's handshake signature, timed answers,
 * the transcript of a burst and the signed record built from it. Then what
 * the chip refuses: a landmark signature that does not verify under the
 * pinned key (the offer is void, nothing of it is kept), a small-order
 * landmark ephemeral key, transcripts of seqs it never answered, and calls
 * in the wrong state; and that ending a session, or a new offer, wipes the
 * key in the caller's memory.
 */
#include "testutil.h"
#include "cl_chipsess.h"
#include "cl_err.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_probe.h"

#include <check.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static cl_key *g_landmark, *g_chip, *g_other;
static uint8_t g_slot[CL_SESSION_KEY_LEN];
static cl_chipsess g_s;

static void setup(void) {
  uint8_t seed[32];
  memset(seed, 0x01, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_landmark, seed), CL_OK);
  memset(seed, 0x02, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_chip, seed), CL_OK);
  memset(seed, 0x05, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_other, seed), CL_OK);
  memset(g_slot, 0x77, sizeof g_slot);
  cl_chipsess_init(&g_s, g_slot);
}

static void teardown(void) {
  cl_chipsess_end(&g_s);
  cl_key_destroy(&g_landmark);
  cl_key_destroy(&g_chip);
  cl_key_destroy(&g_other);
}

static int all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

/* What the landmark keeps of one handshake. */
typedef struct {
  cl_handshake hs;
  uint8_t key[CL_SESSION_KEY_LEN];
} lm_side;

/*
 * The landmark's half for an offer, as landmarkd computes it: a fresh
 * ephemeral key and nonce, its signature by `signer` (the landmark itself,
 * or an impostor), the session key; and the ChipResult that carries it.
 * eph_override (may be NULL) replaces the landmark's ephemeral public key
 * before signing.
 */
static void landmark_answers(const cl_chip_offer *o, const cl_key *signer,
                             const uint8_t *eph_override, lm_side *lm, cl_chip_result *r) {
  memset(lm, 0, sizeof *lm);
  lm->hs.suite = CL_SUITE_ED25519_X25519;
  memcpy(lm->hs.landmark, cl_key_public(g_landmark), CL_PK_LEN);
  memcpy(lm->hs.chip, o->chip, CL_PK_LEN);
  memcpy(lm->hs.chip_eph, o->eph, CL_EPH_LEN);
  memcpy(lm->hs.chip_nonce, o->nonce, CL_NONCE_LEN);
  uint8_t sk[CL_EPH_SK_LEN];
  cl_eph_generate(lm->hs.landmark_eph, sk);
  if (eph_override) memcpy(lm->hs.landmark_eph, eph_override, CL_EPH_LEN);
  randombytes_buf(lm->hs.landmark_nonce, CL_NONCE_LEN);
  uint8_t layout[CL_HS_LANDMARK_LAYOUT_LEN];
  cl_key_sign(signer, lm->hs.landmark_sig, layout, cl_layout_hs_landmark(layout, &lm->hs));
  if (!eph_override)
    ck_assert_int_eq(cl_session_key(&lm->hs, CL_SIDE_LANDMARK, sk, lm->key), CL_OK);
  sodium_memzero(sk, sizeof sk);

  memset(r, 0, sizeof *r);
  memcpy(r->chip, o->chip, CL_PK_LEN);
  r->accepted = 1;
  memcpy(r->eph, lm->hs.landmark_eph, CL_EPH_LEN);
  memcpy(r->nonce, lm->hs.landmark_nonce, CL_NONCE_LEN);
  memcpy(r->sig, lm->hs.landmark_sig, CL_SIG_LEN);
}

static void offer(cl_chip_offer *o) {
  ck_assert_int_eq(cl_chipsess_offer(&g_s, CL_SUITE_ED25519_X25519, cl_key_public(g_landmark),
                                     cl_key_public(g_chip), o),
                   CL_OK);
}

/* Offer, the landmark's answer, accept, the chip's signature verified by
 * the landmark: an established session. */
static void establish(lm_side *lm) {
  cl_chip_offer o;
  cl_chip_result r;
  offer(&o);
  landmark_answers(&o, g_landmark, NULL, lm, &r);
  cl_handshake hs;
  ck_assert_int_eq(cl_chipsess_accept(&g_s, &r, &hs), CL_OK);
  ck_assert_int_eq(cl_hs_sign_chip(&hs, g_chip), CL_OK);
  cl_chipsess_confirmed(&g_s, hs.chip_sig);
  memcpy(lm->hs.chip_sig, hs.chip_sig, CL_SIG_LEN);
  ck_assert_int_eq(cl_hs_verify_chip(&lm->hs), CL_OK);
}

START_TEST(test_offer) {
  ck_assert_int_eq(g_s.state, CL_CHIPSESS_NONE);
  ck_assert(all_zero(g_slot, sizeof g_slot)); /* init wipes the slot it is given */
  cl_chip_offer a, b;
  offer(&a);
  ck_assert_int_eq(g_s.state, CL_CHIPSESS_OFFERED);
  ck_assert_mem_eq(a.chip, cl_key_public(g_chip), CL_PK_LEN);
  ck_assert_mem_eq(a.eph, g_s.hs.chip_eph, CL_EPH_LEN);
  ck_assert_mem_eq(a.nonce, g_s.hs.chip_nonce, CL_NONCE_LEN);
  ck_assert(!all_zero(g_s.eph_sk, CL_EPH_SK_LEN));
  /* The offered key is the public half of the secret kept. */
  uint8_t pk[CL_EPH_LEN];
  ck_assert_int_eq(crypto_scalarmult_base(pk, g_s.eph_sk), 0);
  ck_assert_mem_eq(pk, a.eph, CL_EPH_LEN);
  /* Every offer is fresh. */
  offer(&b);
  ck_assert_int_ne(memcmp(a.eph, b.eph, CL_EPH_LEN), 0);
  ck_assert_int_ne(memcmp(a.nonce, b.nonce, CL_NONCE_LEN), 0);
  /* A suite this build does not implement is refused and changes nothing. */
  cl_chip_offer c;
  ck_assert_int_eq(cl_chipsess_offer(&g_s, CL_SUITE_P256_RESERVED, cl_key_public(g_landmark),
                                     cl_key_public(g_chip), &c),
                   CL_ESUITE);
  ck_assert_int_eq(g_s.state, CL_CHIPSESS_OFFERED);
  ck_assert_mem_eq(g_s.hs.chip_eph, b.eph, CL_EPH_LEN);
}
END_TEST

START_TEST(test_session_end_to_end) {
  cl_chip_offer o;
  cl_chip_result r;
  lm_side lm;
  offer(&o);
  landmark_answers(&o, g_landmark, NULL, &lm, &r);
  cl_handshake hs;
  ck_assert_int_eq(cl_chipsess_accept(&g_s, &r, &hs), CL_OK);
  ck_assert_int_eq(g_s.state, CL_CHIPSESS_ESTABLISHED);
  /* Both sides hold the same key and the same handshake; the ephemeral
   * secret is gone. */
  ck_assert_mem_eq(g_slot, lm.key, CL_SESSION_KEY_LEN);
  ck_assert(all_zero(g_s.eph_sk, CL_EPH_SK_LEN));
  ck_assert_mem_eq(&hs, &lm.hs, sizeof hs);
  uint8_t id_chip[CL_SESSION_ID_LEN], id_lm[CL_SESSION_ID_LEN];
  ck_assert_int_eq(cl_session_id(&hs, id_chip), CL_OK);
  ck_assert_int_eq(cl_session_id(&lm.hs, id_lm), CL_OK);
  ck_assert_mem_eq(id_chip, id_lm, CL_SESSION_ID_LEN);

  /* The chip signs the handshake the accept returned; the landmark checks
   * it over its own copy (the Confirm). */
  ck_assert_int_eq(cl_hs_sign_chip(&hs, g_chip), CL_OK);
  cl_chipsess_confirmed(&g_s, hs.chip_sig);
  ck_assert_mem_eq(g_s.hs.chip_sig, hs.chip_sig, CL_SIG_LEN);
  memcpy(lm.hs.chip_sig, hs.chip_sig, CL_SIG_LEN);
  ck_assert_int_eq(cl_hs_verify_chip(&lm.hs), CL_OK);
  ck_assert_int_eq(cl_hs_verify_landmark(&lm.hs), CL_OK);

  /* A burst of four probes; the third got no accepted answer. The
   * landmark checks every MAC under its own key. */
  cl_burst b;
  cl_burst_reset(&b);
  for (uint64_t seq = 100; seq < 104; seq++) {
    uint8_t nonce[CL_NONCE_LEN], mac[CL_MAC_LEN];
    randombytes_buf(nonce, sizeof nonce);
    ck_assert_int_eq(cl_chipsess_answer(&g_s, seq, nonce, mac), CL_OK);
    ck_assert_int_eq(
        cl_answer_check(lm.key, lm.hs.suite, lm.hs.landmark, lm.hs.chip, seq, nonce, mac), CL_OK);
    b.sent++;
    if (seq != 102) cl_burst_add(&b, seq, nonce, mac, 1000000 + seq);
  }
  ck_assert_uint_eq(g_s.answers, 4);

  /* BurstEnd{100, 101, 103}: the chip's entries are the landmark's. */
  uint64_t seqs[CL_MAX_BURST];
  for (uint32_t i = 0; i < b.accepted; i++) seqs[i] = b.e[i].seq;
  cl_probe_entry e[CL_MAX_BURST];
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, b.accepted, e), CL_OK);
  for (uint32_t i = 0; i < b.accepted; i++) {
    ck_assert_uint_eq(e[i].seq, b.e[i].seq);
    ck_assert_mem_eq(e[i].nonce, b.e[i].nonce, CL_NONCE_LEN);
    ck_assert_mem_eq(e[i].mac, b.e[i].mac, CL_MAC_LEN);
    ck_assert_uint_eq(e[i].rtt_ns, 0);
  }
  uint8_t tsig[CL_SIG_LEN];
  ck_assert_int_eq(cl_transcript_sign(&g_s.hs, e, b.accepted, g_chip, tsig), CL_OK);
  /* The landmark verifies it over its own view of the burst, builds and
   * signs the record; offline, the record verifies entirely. */
  ck_assert_int_eq(cl_transcript_verify(&lm.hs, b.e, b.accepted, tsig), CL_OK);
  static cl_measurement m;
  cl_burst_to_measurement(&b, &lm.hs, tsig, 1700000000000000000ull, &m);
  ck_assert_uint_eq(m.count, 3);
  ck_assert_uint_eq(m.probes_sent, 4);
  ck_assert_uint_eq(m.rtt_ns, 1000100);
  ck_assert_int_eq(cl_measurement_sign(&m, g_landmark), CL_OK);
  ck_assert_int_eq(cl_measurement_verify(&m), CL_OK);

  /* The chip's transcript of a different set (the expired probe included)
   * does not verify over the landmark's view. */
  const uint64_t all[] = {100, 101, 102, 103};
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, all, 4, e), CL_OK);
  ck_assert_int_eq(cl_transcript_sign(&g_s.hs, e, 4, g_chip, tsig), CL_OK);
  ck_assert_int_eq(cl_transcript_verify(&lm.hs, b.e, b.accepted, tsig), CL_EBADSIG);
}
END_TEST

/* A refused accept: CL_EBADSIG, and nothing of the offer survives. */
static void assert_voided(const cl_chip_result *r) {
  cl_handshake hs;
  memset(&hs, 0x5a, sizeof hs);
  ck_assert_int_eq(cl_chipsess_accept(&g_s, r, &hs), CL_EBADSIG);
  ck_assert_int_eq(g_s.state, CL_CHIPSESS_NONE);
  ck_assert(all_zero(g_slot, sizeof g_slot));
  ck_assert(all_zero(g_s.eph_sk, CL_EPH_SK_LEN));
  /* The offer cannot be accepted later, nor answered with. */
  ck_assert_int_eq(cl_chipsess_accept(&g_s, r, &hs), CL_EINVAL);
  uint8_t nonce[CL_NONCE_LEN] = {0}, mac[CL_MAC_LEN];
  ck_assert_int_eq(cl_chipsess_answer(&g_s, 1, nonce, mac), CL_EINVAL);
}

START_TEST(test_wrong_landmark_signature) {
  cl_chip_offer o;
  cl_chip_result r;
  lm_side lm;
  /* A relay or another landmark signs with its own key. */
  offer(&o);
  landmark_answers(&o, g_other, NULL, &lm, &r);
  assert_voided(&r);
  /* Any byte of the signature, the landmark's ephemeral key or its nonce
   * changed on the way. */
  for (int f = 0; f < 3; f++) {
    for (size_t i = 0; i < 32; i += 7) {
      offer(&o);
      landmark_answers(&o, g_landmark, NULL, &lm, &r);
      uint8_t *p = f == 0 ? r.sig : f == 1 ? r.eph : r.nonce;
      p[i] ^= 0x01;
      assert_voided(&r);
    }
  }
  /* A genuine answer to an earlier offer (the chip's eph and nonce differ). */
  cl_chip_offer old;
  offer(&old);
  landmark_answers(&old, g_landmark, NULL, &lm, &r);
  offer(&o);
  assert_voided(&r);
}
END_TEST

START_TEST(test_small_order_landmark_eph) {
  /* Correctly signed by the landmark key, but the landmark's ephemeral key
   * is of small order: the shared secret would be known to anyone. */
  static const uint8_t small[][32] = {
      {0},
      {1},
      {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
       0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
       0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
  };
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
    cl_chip_offer o;
    cl_chip_result r;
    lm_side lm;
    offer(&o);
    landmark_answers(&o, g_landmark, small[i], &lm, &r);
    ck_assert_int_eq(cl_hs_verify_landmark(&lm.hs), CL_OK);
    assert_voided(&r);
  }
}
END_TEST

START_TEST(test_accept_wrong_state_or_chip) {
  cl_chip_offer o;
  cl_chip_result r;
  lm_side lm;
  cl_handshake hs;
  /* Nothing offered. */
  memset(&r, 0, sizeof r);
  r.accepted = 1;
  ck_assert_int_eq(cl_chipsess_accept(&g_s, &r, &hs), CL_EINVAL);
  /* A refusal, or a result for another chip, leaves the offer standing. */
  offer(&o);
  landmark_answers(&o, g_landmark, NULL, &lm, &r);
  cl_chip_result t = r;
  t.accepted = 0;
  ck_assert_int_eq(cl_chipsess_accept(&g_s, &t, &hs), CL_EINVAL);
  t = r;
  t.chip[0] ^= 0x01;
  ck_assert_int_eq(cl_chipsess_accept(&g_s, &t, &hs), CL_EINVAL);
  ck_assert_int_eq(g_s.state, CL_CHIPSESS_OFFERED);
  ck_assert_int_eq(cl_chipsess_accept(&g_s, &r, &hs), CL_OK);
  /* Accepting twice is refused and keeps the session. */
  ck_assert_int_eq(cl_chipsess_accept(&g_s, &r, &hs), CL_EINVAL);
  ck_assert_int_eq(g_s.state, CL_CHIPSESS_ESTABLISHED);
  ck_assert_mem_eq(g_slot, lm.key, CL_SESSION_KEY_LEN);
}
END_TEST

START_TEST(test_transcript_refuses_unanswered) {
  lm_side lm;
  uint64_t seqs[CL_MAX_BURST + 1];
  cl_probe_entry e[CL_MAX_BURST];
  /* No session yet. */
  seqs[0] = 1;
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, 1, e), CL_EINVAL);
  establish(&lm);
  uint8_t nonce[CL_NONCE_LEN], mac[CL_MAC_LEN], mac2[CL_MAC_LEN];
  for (uint64_t seq = 10; seq <= 12; seq++) {
    randombytes_buf(nonce, sizeof nonce);
    ck_assert_int_eq(cl_chipsess_answer(&g_s, seq, nonce, mac), CL_OK);
  }
  /* A seq never answered, alone or among answered ones. */
  seqs[0] = 13;
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, 1, e), CL_ENOTFOUND);
  seqs[0] = 10;
  seqs[1] = 11;
  seqs[2] = 99;
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, 3, e), CL_ENOTFOUND);
  seqs[2] = 12;
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, 3, e), CL_OK);
  /* Counts outside 1..CL_MAX_BURST. */
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, 0, e), CL_EINVAL);
  for (int i = 0; i <= CL_MAX_BURST; i++) seqs[i] = 10;
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, CL_MAX_BURST + 1, e), CL_EINVAL);

  /* A seq answered twice: the transcript holds the newest answer. */
  memset(nonce, 0xAB, sizeof nonce);
  ck_assert_int_eq(cl_chipsess_answer(&g_s, 11, nonce, mac2), CL_OK);
  seqs[0] = 11;
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, 1, e), CL_OK);
  ck_assert_mem_eq(e[0].nonce, nonce, CL_NONCE_LEN);
  ck_assert_mem_eq(e[0].mac, mac2, CL_MAC_LEN);

  /* Answers are remembered for two bursts: the oldest is forgotten once
   * CL_CHIPSESS_LOG newer answers were given. */
  for (uint64_t seq = 1000; seq < 1000 + CL_CHIPSESS_LOG - 1; seq++) {
    randombytes_buf(nonce, sizeof nonce);
    ck_assert_int_eq(cl_chipsess_answer(&g_s, seq, nonce, mac), CL_OK);
  }
  seqs[0] = 11; /* CL_CHIPSESS_LOG answers ago, counting itself */
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, 1, e), CL_OK);
  ck_assert_int_eq(cl_chipsess_answer(&g_s, 5000, nonce, mac), CL_OK);
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, 1, e), CL_ENOTFOUND);
  seqs[0] = 1000;
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, 1, e), CL_OK);

  /* Answers of an earlier session are not in this one's transcripts. */
  lm_side lm2;
  establish(&lm2);
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, seqs, 1, e), CL_ENOTFOUND);
}
END_TEST

START_TEST(test_end_wipes_key) {
  lm_side lm;
  establish(&lm);
  ck_assert(!all_zero(g_slot, sizeof g_slot));
  ck_assert_mem_eq(g_slot, lm.key, CL_SESSION_KEY_LEN);
  uint8_t nonce[CL_NONCE_LEN] = {1}, mac[CL_MAC_LEN];
  ck_assert_int_eq(cl_chipsess_answer(&g_s, 7, nonce, mac), CL_OK);
  cl_chipsess_end(&g_s);
  /* The caller's memory holds zeros, the session nothing to answer with. */
  ck_assert(all_zero(g_slot, sizeof g_slot));
  ck_assert(all_zero(g_s.eph_sk, CL_EPH_SK_LEN));
  ck_assert_int_eq(g_s.state, CL_CHIPSESS_NONE);
  ck_assert_uint_eq(g_s.answers, 0);
  ck_assert_int_eq(cl_chipsess_answer(&g_s, 8, nonce, mac), CL_EINVAL);
  uint64_t seq = 7;
  cl_probe_entry e[CL_MAX_BURST];
  ck_assert_int_eq(cl_chipsess_transcript(&g_s, &seq, 1, e), CL_EINVAL);
  /* Ending twice is harmless. */
  cl_chipsess_end(&g_s);
  ck_assert(all_zero(g_slot, sizeof g_slot));
}
END_TEST

START_TEST(test_rekey_replaces_key) {
  lm_side a, b;
  establish(&a);
  uint8_t nonce[CL_NONCE_LEN] = {9}, mac_a[CL_MAC_LEN], mac_b[CL_MAC_LEN];
  ck_assert_int_eq(cl_chipsess_answer(&g_s, 50, nonce, mac_a), CL_OK);
  /* A new offer wipes the old key before anything else. */
  cl_chip_offer o;
  offer(&o);
  ck_assert(all_zero(g_slot, sizeof g_slot));
  ck_assert_int_eq(cl_chipsess_answer(&g_s, 51, nonce, mac_b), CL_EINVAL);
  cl_chip_result r;
  landmark_answers(&o, g_landmark, NULL, &b, &r);
  cl_handshake hs;
  ck_assert_int_eq(cl_chipsess_accept(&g_s, &r, &hs), CL_OK);
  /* A fresh key and a fresh session id; the old session's MACs do not
   * answer under the new key. */
  ck_assert_int_ne(memcmp(a.key, b.key, CL_SESSION_KEY_LEN), 0);
  uint8_t ida[CL_SESSION_ID_LEN], idb[CL_SESSION_ID_LEN];
  cl_session_id(&a.hs, ida);
  cl_session_id(&b.hs, idb);
  ck_assert_int_ne(memcmp(ida, idb, CL_SESSION_ID_LEN), 0);
  ck_assert_int_eq(cl_chipsess_answer(&g_s, 50, nonce, mac_b), CL_OK);
  ck_assert_int_ne(memcmp(mac_a, mac_b, CL_MAC_LEN), 0);
  ck_assert_int_eq(
      cl_answer_check(b.key, b.hs.suite, b.hs.landmark, b.hs.chip, 50, nonce, mac_a), CL_EBADSIG);
  ck_assert_int_eq(
      cl_answer_check(b.key, b.hs.suite, b.hs.landmark, b.hs.chip, 50, nonce, mac_b), CL_OK);
}
END_TEST

START_TEST(test_guarded_key_slot) {
  /* chipagent keeps its keys in sodium_malloc'd memory; the session only
   * writes the CL_SESSION_KEY_LEN bytes it was given. */
  uint8_t *block = sodium_malloc(2 * CL_SESSION_KEY_LEN);
  ck_assert_ptr_nonnull(block);
  memset(block, 0xEE, 2 * CL_SESSION_KEY_LEN);
  static cl_chipsess s;
  cl_chipsess_init(&s, block + CL_SESSION_KEY_LEN);
  ck_assert(all_zero(block + CL_SESSION_KEY_LEN, CL_SESSION_KEY_LEN));
  cl_chip_offer o;
  ck_assert_int_eq(cl_chipsess_offer(&s, CL_SUITE_ED25519_X25519, cl_key_public(g_landmark),
                                     cl_key_public(g_chip), &o),
                   CL_OK);
  cl_chip_result r;
  lm_side lm;
  landmark_answers(&o, g_landmark, NULL, &lm, &r);
  cl_handshake hs;
  ck_assert_int_eq(cl_chipsess_accept(&s, &r, &hs), CL_OK);
  ck_assert_mem_eq(block + CL_SESSION_KEY_LEN, lm.key, CL_SESSION_KEY_LEN);
  for (int i = 0; i < CL_SESSION_KEY_LEN; i++) ck_assert_uint_eq(block[i], 0xEE);
  cl_chipsess_end(&s);
  ck_assert(all_zero(block + CL_SESSION_KEY_LEN, CL_SESSION_KEY_LEN));
  sodium_free(block);
}
END_TEST

static Suite *chipsess_suite(void) {
  Suite *s = suite_create("chipsess");
  TCase *tc = tcase_create("session");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_offer);
  tcase_add_test(tc, test_session_end_to_end);
  tcase_add_test(tc, test_wrong_landmark_signature);
  tcase_add_test(tc, test_small_order_landmark_eph);
  tcase_add_test(tc, test_accept_wrong_state_or_chip);
  tcase_add_test(tc, test_transcript_refuses_unanswered);
  tcase_add_test(tc, test_end_wipes_key);
  tcase_add_test(tc, test_rekey_replaces_key);
  tcase_add_test(tc, test_guarded_key_slot);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  return tu_run_suite(chipsess_suite());
}
