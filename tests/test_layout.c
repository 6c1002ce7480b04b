/*
 * Signed byte layouts (lib/wire/cl_layout.h) against fixed test vectors.
 *
 * Keys come from fixed seeds (all bytes 0x01 for the landmark, 0x02 for the
 * chip); the challenge has a fixed nonce, issue time and sequence number.
 * The expected layouts are built here by hand from docs/PROTOCOL.md (context
 * string, one NUL, fields with explicit big-endian shifts) and also pinned as
 * hex literals; Ed25519 is deterministic, so the signatures are pinned too.
 * These are the bytes of the worked example in docs/PROTOCOL.md (printed by
 * tests/protocol_example.c); any change to a layout breaks this test.
 * The second half checks that every single-byte change of a layout, a
 * signature or a field makes verification fail.
 */
#include "cl_err.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_msg.h"

#include <check.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define EX_ISSUED_UNIX_NS 1700000000123456789ull
#define EX_SEQ 42ull
#define EX_RTT_NS 1234567ull
#define EX_PROBE_COUNT 5u
#define EX_MEASURED_UNIX_NS 1700000060000000000ull

static const char LANDMARK_PK_HEX[] =
    "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
static const char CHIP_PK_HEX[] = "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";

static const char CHALLENGE_LAYOUT_HEX[] =
    "636869706c6f63207631206368616c6c656e6765008a88e3dd7409f195fd52db"
    "2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c8139770ea87d175f56a354"
    "66c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394000102030405060708090a"
    "0b0c0d0e0f101112131415161718191a1b1c1d1e1f17979cfe3d85cd15000000"
    "000000002a";
static const char CHALLENGE_SIG_HEX[] =
    "c7447418a889301aa481cca090093337b56cc013568e9e639d72b020ca59d3ba"
    "15c36eb0fab39b532d1d4358d021975bd2340c1a437211a8013fb72f338a5005";
static const char RESPONSE_LAYOUT_HEX[] =
    "636869706c6f6320763120726573706f6e736500636869706c6f632076312063"
    "68616c6c656e6765008a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d9412"
    "1bf3748801b40f6f5c8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37"
    "a25df60f5b8fc9b394000102030405060708090a0b0c0d0e0f10111213141516"
    "1718191a1b1c1d1e1f17979cfe3d85cd15000000000000002ac7447418a88930"
    "1aa481cca090093337b56cc013568e9e639d72b020ca59d3ba15c36eb0fab39b"
    "532d1d4358d021975bd2340c1a437211a8013fb72f338a5005";
static const char RESPONSE_SIG_HEX[] =
    "59806f11f196fef562cdf8b5dc332c78981b30f6108370017851ef8339f679c6"
    "8c9c6055ca6232a42584d6d05c3f079e9cdbfa9485c8a303c29f30dd0325e303";
static const char REGISTER_LAYOUT_HEX[] =
    "636869706c6f63207631207265676973746572008a88e3dd7409f195fd52db2d"
    "3cba5d72ca6709bf1d94121bf3748801b40f6f5c404142434445464748494a4b"
    "4c4d4e4f505152535455565758595a5b5c5d5e5f8139770ea87d175f56a35466"
    "c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";
static const char REGISTER_SIG_HEX[] =
    "08ae1068d50c7f7cd102026cc04522c1c37854b1e9903de1d0028f531f645489"
    "5d532f5ad187f20999dbcf77606dc4f7c6c0b4f4dda8869b966d0bc9c77f2b07";
static const char MEASUREMENT_LAYOUT_HEX[] =
    "636869706c6f63207631206d6561737572656d656e74008a88e3dd7409f195fd"
    "52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c8139770ea87d175f56"
    "a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394000102030405060708"
    "090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f17979cfe3d85cd1500"
    "0000000000002ac7447418a889301aa481cca090093337b56cc013568e9e639d"
    "72b020ca59d3ba15c36eb0fab39b532d1d4358d021975bd2340c1a437211a801"
    "3fb72f338a500559806f11f196fef562cdf8b5dc332c78981b30f61083700178"
    "51ef8339f679c68c9c6055ca6232a42584d6d05c3f079e9cdbfa9485c8a303c2"
    "9f30dd0325e303000000000012d6870000000517979d0c2e715800";
static const char MEASUREMENT_SIG_HEX[] =
    "9cd96729f77cecfd5a0be40c6bd46e3db427cc44bde9b3ec35d70292ddf24ea8"
    "5b3c16bb6757ec13b452c639ee809ba799d4f814dcc2bd5a9bbf5b27fe20d907";
/* The Challenge frame on the wire: length prefix and serialised Envelope. */
static const char CHALLENGE_FRAME_HEX[] =
    "000000b908012ab4010a208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d"
    "94121bf3748801b40f6f5c12208139770ea87d175f56a35466c34c7ecccb8d8a"
    "91b4ee37a25df60f5b8fc9b3941a20000102030405060708090a0b0c0d0e0f10"
    "1112131415161718191a1b1c1d1e1f20959a97ece39fe7cb17282a3240c74474"
    "18a889301aa481cca090093337b56cc013568e9e639d72b020ca59d3ba15c36e"
    "b0fab39b532d1d4358d021975bd2340c1a437211a8013fb72f338a5005";
static const char RESPONSE_FRAME_HEX[] =
    "0000008b08013286010a208139770ea87d175f56a35466c34c7ecccb8d8a91b4"
    "ee37a25df60f5b8fc9b3941220000102030405060708090a0b0c0d0e0f101112"
    "131415161718191a1b1c1d1e1f1a4059806f11f196fef562cdf8b5dc332c7898"
    "1b30f6108370017851ef8339f679c68c9c6055ca6232a42584d6d05c3f079e9c"
    "dbfa9485c8a303c29f30dd0325e303";

static cl_key *g_landmark, *g_chip, *g_other;
static uint8_t g_session[CL_NONCE_LEN];

static void setup(void) {
  uint8_t seed[32];
  memset(seed, 0x01, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_landmark, seed), CL_OK);
  memset(seed, 0x02, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_chip, seed), CL_OK);
  memset(seed, 0x03, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_other, seed), CL_OK);
  for (int i = 0; i < CL_NONCE_LEN; i++) g_session[i] = (uint8_t)(0x40 + i);
}

static void teardown(void) {
  cl_key_destroy(&g_landmark);
  cl_key_destroy(&g_chip);
  cl_key_destroy(&g_other);
}

/* The example challenge, unsigned. */
static cl_challenge example_challenge(void) {
  cl_challenge ch;
  memset(&ch, 0, sizeof ch);
  memcpy(ch.landmark, cl_key_public(g_landmark), CL_PK_LEN);
  memcpy(ch.chip, cl_key_public(g_chip), CL_PK_LEN);
  for (int i = 0; i < CL_NONCE_LEN; i++) ch.nonce[i] = (uint8_t)i;
  ch.issued_unix_ns = EX_ISSUED_UNIX_NS;
  ch.seq = EX_SEQ;
  return ch;
}

static cl_challenge signed_challenge(void) {
  cl_challenge ch = example_challenge();
  cl_challenge_sign(&ch, g_landmark);
  return ch;
}

static cl_measurement example_measurement(void) {
  cl_measurement m;
  memset(&m, 0, sizeof m);
  m.ch = signed_challenge();
  cl_response_sign(&m.ch, g_chip, m.chip_sig);
  m.rtt_ns = EX_RTT_NS;
  m.probe_count = EX_PROBE_COUNT;
  m.measured_unix_ns = EX_MEASURED_UNIX_NS;
  cl_measurement_sign(&m, g_landmark);
  return m;
}

static void assert_hex(const uint8_t *got, size_t n, const char *want_hex) {
  char *h = malloc(2 * n + 1);
  ck_assert_ptr_nonnull(h);
  cl_hex_encode(h, got, n);
  ck_assert_str_eq(h, want_hex);
  free(h);
}

/* Hand-written big-endian writers, independent of cl_put_be64/32. */
static uint8_t *hand_be64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) *p++ = (uint8_t)(v >> (56 - 8 * i));
  return p;
}
static uint8_t *hand_be32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) *p++ = (uint8_t)(v >> (24 - 8 * i));
  return p;
}
static uint8_t *hand_ctx(uint8_t *p, const char *ctx) {
  size_t n = strlen(ctx);
  memcpy(p, ctx, n);
  p[n] = 0x00;
  return p + n + 1;
}
static uint8_t *hand_raw(uint8_t *p, const void *src, size_t n) {
  memcpy(p, src, n);
  return p + n;
}
static size_t hand_challenge(uint8_t *out, const cl_challenge *ch) {
  uint8_t *p = hand_ctx(out, "chiploc v1 challenge");
  p = hand_raw(p, ch->landmark, 32);
  p = hand_raw(p, ch->chip, 32);
  p = hand_raw(p, ch->nonce, 32);
  p = hand_be64(p, ch->issued_unix_ns);
  p = hand_be64(p, ch->seq);
  return (size_t)(p - out);
}

START_TEST(test_layout_lengths) {
  /* Context strings and their lengths without the NUL. */
  ck_assert_uint_eq(strlen(CL_CTX_CHALLENGE), 20);
  ck_assert_uint_eq(strlen(CL_CTX_RESPONSE), 19);
  ck_assert_uint_eq(strlen(CL_CTX_REGISTER), 19);
  ck_assert_uint_eq(strlen(CL_CTX_MEASUREMENT), 22);
  /* challenge: 21 + landmark 32 + chip 32 + nonce 32 + issued 8 + seq 8 */
  ck_assert_uint_eq(CL_CHALLENGE_LAYOUT_LEN, 133);
  /* response: 20 + challenge layout 133 + landmark signature 64 */
  ck_assert_uint_eq(CL_RESPONSE_LAYOUT_LEN, 217);
  /* register: 20 + landmark 32 + session nonce 32 + chip 32 */
  ck_assert_uint_eq(CL_REGISTER_LAYOUT_LEN, 116);
  /* measurement: 23 + 32*3 + 8 + 8 + 64 + 64 + rtt 8 + count 4 + time 8 */
  ck_assert_uint_eq(CL_MEASUREMENT_LAYOUT_LEN, 283);
}
END_TEST

START_TEST(test_keys_from_seed) {
  char hex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(g_landmark), hex);
  ck_assert_str_eq(hex, LANDMARK_PK_HEX);
  cl_pk_to_hex(cl_key_public(g_chip), hex);
  ck_assert_str_eq(hex, CHIP_PK_HEX);
}
END_TEST

START_TEST(test_challenge_vector) {
  cl_challenge ch = example_challenge();
  uint8_t got[CL_CHALLENGE_LAYOUT_LEN + 16];
  memset(got, 0xAA, sizeof got);
  ck_assert_uint_eq(cl_layout_challenge(got, &ch), CL_CHALLENGE_LAYOUT_LEN);
  for (size_t i = CL_CHALLENGE_LAYOUT_LEN; i < sizeof got; i++) ck_assert_uint_eq(got[i], 0xAA);

  uint8_t want[CL_CHALLENGE_LAYOUT_LEN];
  ck_assert_uint_eq(hand_challenge(want, &ch), CL_CHALLENGE_LAYOUT_LEN);
  ck_assert_mem_eq(got, want, CL_CHALLENGE_LAYOUT_LEN);
  assert_hex(got, CL_CHALLENGE_LAYOUT_LEN, CHALLENGE_LAYOUT_HEX);
  /* Spot checks of the big-endian integers at their offsets. */
  ck_assert_uint_eq(got[20], 0x00);
  ck_assert_uint_eq(got[CL_CHALLENGE_LAYOUT_LEN - 1], 42);
  ck_assert_uint_eq(got[CL_CHALLENGE_LAYOUT_LEN - 16], 0x17);

  cl_challenge_sign(&ch, g_landmark);
  assert_hex(ch.sig, CL_SIG_LEN, CHALLENGE_SIG_HEX);
  ck_assert_int_eq(cl_challenge_verify(&ch), CL_OK);
  ck_assert_int_eq(cl_sig_verify(ch.landmark, ch.sig, want, sizeof want), CL_OK);
}
END_TEST

START_TEST(test_response_vector) {
  cl_challenge ch = signed_challenge();
  uint8_t got[CL_RESPONSE_LAYOUT_LEN + 16];
  memset(got, 0xAA, sizeof got);
  ck_assert_uint_eq(cl_layout_response(got, &ch), CL_RESPONSE_LAYOUT_LEN);
  for (size_t i = CL_RESPONSE_LAYOUT_LEN; i < sizeof got; i++) ck_assert_uint_eq(got[i], 0xAA);

  uint8_t want[CL_RESPONSE_LAYOUT_LEN];
  uint8_t *p = hand_ctx(want, "chiploc v1 response");
  p += hand_challenge(p, &ch);
  p = hand_raw(p, ch.sig, 64);
  ck_assert_uint_eq((size_t)(p - want), CL_RESPONSE_LAYOUT_LEN);
  ck_assert_mem_eq(got, want, CL_RESPONSE_LAYOUT_LEN);
  assert_hex(got, CL_RESPONSE_LAYOUT_LEN, RESPONSE_LAYOUT_HEX);

  uint8_t sig[CL_SIG_LEN];
  cl_response_sign(&ch, g_chip, sig);
  assert_hex(sig, CL_SIG_LEN, RESPONSE_SIG_HEX);
  ck_assert_int_eq(cl_response_verify(&ch, sig), CL_OK);
  ck_assert_int_eq(cl_sig_verify(ch.chip, sig, want, sizeof want), CL_OK);
}
END_TEST

START_TEST(test_register_vector) {
  const uint8_t *lpk = cl_key_public(g_landmark), *cpk = cl_key_public(g_chip);
  uint8_t got[CL_REGISTER_LAYOUT_LEN + 16];
  memset(got, 0xAA, sizeof got);
  ck_assert_uint_eq(cl_layout_register(got, lpk, g_session, cpk), CL_REGISTER_LAYOUT_LEN);
  for (size_t i = CL_REGISTER_LAYOUT_LEN; i < sizeof got; i++) ck_assert_uint_eq(got[i], 0xAA);

  uint8_t want[CL_REGISTER_LAYOUT_LEN];
  uint8_t *p = hand_ctx(want, "chiploc v1 register");
  p = hand_raw(p, lpk, 32);
  p = hand_raw(p, g_session, 32);
  p = hand_raw(p, cpk, 32);
  ck_assert_uint_eq((size_t)(p - want), CL_REGISTER_LAYOUT_LEN);
  ck_assert_mem_eq(got, want, CL_REGISTER_LAYOUT_LEN);
  assert_hex(got, CL_REGISTER_LAYOUT_LEN, REGISTER_LAYOUT_HEX);

  uint8_t sig[CL_SIG_LEN];
  cl_register_sign(lpk, g_session, g_chip, sig);
  assert_hex(sig, CL_SIG_LEN, REGISTER_SIG_HEX);
  ck_assert_int_eq(cl_register_verify(lpk, g_session, cpk, sig), CL_OK);
}
END_TEST

START_TEST(test_measurement_vector) {
  cl_measurement m = example_measurement();
  uint8_t got[CL_MEASUREMENT_LAYOUT_LEN + 16];
  memset(got, 0xAA, sizeof got);
  ck_assert_uint_eq(cl_layout_measurement(got, &m), CL_MEASUREMENT_LAYOUT_LEN);
  for (size_t i = CL_MEASUREMENT_LAYOUT_LEN; i < sizeof got; i++)
    ck_assert_uint_eq(got[i], 0xAA);

  uint8_t want[CL_MEASUREMENT_LAYOUT_LEN];
  uint8_t *p = hand_ctx(want, "chiploc v1 measurement");
  p = hand_raw(p, m.ch.landmark, 32);
  p = hand_raw(p, m.ch.chip, 32);
  p = hand_raw(p, m.ch.nonce, 32);
  p = hand_be64(p, m.ch.issued_unix_ns);
  p = hand_be64(p, m.ch.seq);
  p = hand_raw(p, m.ch.sig, 64);
  p = hand_raw(p, m.chip_sig, 64);
  p = hand_be64(p, m.rtt_ns);
  p = hand_be32(p, m.probe_count);
  p = hand_be64(p, m.measured_unix_ns);
  ck_assert_uint_eq((size_t)(p - want), CL_MEASUREMENT_LAYOUT_LEN);
  ck_assert_mem_eq(got, want, CL_MEASUREMENT_LAYOUT_LEN);
  assert_hex(got, CL_MEASUREMENT_LAYOUT_LEN, MEASUREMENT_LAYOUT_HEX);
  assert_hex(m.chip_sig, CL_SIG_LEN, RESPONSE_SIG_HEX);
  assert_hex(m.sig, CL_SIG_LEN, MEASUREMENT_SIG_HEX);
  ck_assert_int_eq(cl_measurement_verify(&m), CL_OK);
}
END_TEST

START_TEST(test_wire_frames_vector) {
  static cl_msg msg;
  uint8_t frame[512];
  size_t n = 0;
  memset(&msg, 0, sizeof msg);
  msg.type = CL_MSG_CHALLENGE;
  msg.u.challenge = signed_challenge();
  ck_assert_int_eq(cl_msg_encode(&msg, frame, sizeof frame, &n), CL_OK);
  ck_assert_uint_eq(n, 189);
  assert_hex(frame, n, CHALLENGE_FRAME_HEX);

  cl_challenge ch = msg.u.challenge;
  memset(&msg, 0, sizeof msg);
  msg.type = CL_MSG_RESPONSE;
  memcpy(msg.u.response.chip, ch.chip, CL_PK_LEN);
  memcpy(msg.u.response.nonce, ch.nonce, CL_NONCE_LEN);
  cl_response_sign(&ch, g_chip, msg.u.response.sig);
  ck_assert_int_eq(cl_msg_encode(&msg, frame, sizeof frame, &n), CL_OK);
  ck_assert_uint_eq(n, 143);
  assert_hex(frame, n, RESPONSE_FRAME_HEX);
}
END_TEST

START_TEST(test_be_helpers) {
  uint8_t b[8];
  cl_put_be64(b, 0x0102030405060708ull);
  const uint8_t w64[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  ck_assert_mem_eq(b, w64, 8);
  ck_assert_uint_eq(cl_get_be64(b), 0x0102030405060708ull);
  cl_put_be64(b, UINT64_MAX);
  ck_assert_uint_eq(cl_get_be64(b), UINT64_MAX);
  cl_put_be32(b, 0xA1B2C3D4u);
  const uint8_t w32[4] = {0xA1, 0xB2, 0xC3, 0xD4};
  ck_assert_mem_eq(b, w32, 4);
  ck_assert_uint_eq(cl_get_be32(b), 0xA1B2C3D4u);
}
END_TEST

/* Flips bit patterns of every byte of buf and expects verification of the
 * original signature over the changed bytes to fail. */
static void flip_layout_fails(const uint8_t *pk, const uint8_t *sig, const uint8_t *layout,
                              size_t n) {
  uint8_t *m = malloc(n);
  ck_assert_ptr_nonnull(m);
  for (size_t i = 0; i < n; i++) {
    for (int mask = 0x01; mask <= 0x80; mask <<= 7) {
      memcpy(m, layout, n);
      m[i] ^= (uint8_t)mask;
      ck_assert_msg(cl_sig_verify(pk, sig, m, n) == CL_EBADSIG, "byte %zu mask %#x verified", i,
                    mask);
    }
  }
  /* Dropping the last byte fails too; the original still verifies. */
  ck_assert_int_eq(cl_sig_verify(pk, sig, layout, n - 1), CL_EBADSIG);
  ck_assert_int_eq(cl_sig_verify(pk, sig, layout, n), CL_OK);
  free(m);
}

START_TEST(test_challenge_tamper) {
  cl_challenge ch = signed_challenge();
  uint8_t l[CL_CHALLENGE_LAYOUT_LEN];
  cl_layout_challenge(l, &ch);
  flip_layout_fails(ch.landmark, ch.sig, l, sizeof l);

  /* Every byte of the signature. */
  for (size_t i = 0; i < CL_SIG_LEN; i++) {
    cl_challenge t = ch;
    t.sig[i] ^= 0x01;
    ck_assert_msg(cl_challenge_verify(&t) == CL_EBADSIG, "sig byte %zu", i);
  }
  /* Every byte of every key and nonce field, every bit of the integers. */
  for (size_t i = 0; i < 32; i++) {
    cl_challenge t = ch;
    t.landmark[i] ^= 0x01;
    ck_assert_msg(cl_challenge_verify(&t) == CL_EBADSIG, "landmark byte %zu", i);
    t = ch;
    t.chip[i] ^= 0x01;
    ck_assert_msg(cl_challenge_verify(&t) == CL_EBADSIG, "chip byte %zu", i);
    t = ch;
    t.nonce[i] ^= 0x01;
    ck_assert_msg(cl_challenge_verify(&t) == CL_EBADSIG, "nonce byte %zu", i);
  }
  for (int bit = 0; bit < 64; bit++) {
    cl_challenge t = ch;
    t.issued_unix_ns ^= 1ull << bit;
    ck_assert_msg(cl_challenge_verify(&t) == CL_EBADSIG, "issued bit %d", bit);
    t = ch;
    t.seq ^= 1ull << bit;
    ck_assert_msg(cl_challenge_verify(&t) == CL_EBADSIG, "seq bit %d", bit);
  }
  /* Signed by the wrong key. */
  cl_challenge t = ch;
  cl_challenge_sign(&t, g_other);
  ck_assert_int_eq(cl_challenge_verify(&t), CL_EBADSIG);
  ck_assert_int_eq(cl_challenge_verify(&ch), CL_OK);
}
END_TEST

START_TEST(test_response_tamper) {
  cl_challenge ch = signed_challenge();
  uint8_t sig[CL_SIG_LEN];
  cl_response_sign(&ch, g_chip, sig);
  uint8_t l[CL_RESPONSE_LAYOUT_LEN];
  cl_layout_response(l, &ch);
  flip_layout_fails(ch.chip, sig, l, sizeof l);

  for (size_t i = 0; i < CL_SIG_LEN; i++) {
    uint8_t s[CL_SIG_LEN];
    memcpy(s, sig, sizeof s);
    s[i] ^= 0x01;
    ck_assert_msg(cl_response_verify(&ch, s) == CL_EBADSIG, "chip sig byte %zu", i);
    cl_challenge t = ch;
    t.sig[i] ^= 0x01; /* the landmark signature is part of what the chip signs */
    ck_assert_msg(cl_response_verify(&t, sig) == CL_EBADSIG, "landmark sig byte %zu", i);
  }
  for (size_t i = 0; i < 32; i++) {
    cl_challenge t = ch;
    t.landmark[i] ^= 0x01;
    ck_assert_msg(cl_response_verify(&t, sig) == CL_EBADSIG, "landmark byte %zu", i);
    t = ch;
    t.chip[i] ^= 0x01;
    ck_assert_msg(cl_response_verify(&t, sig) == CL_EBADSIG, "chip byte %zu", i);
    t = ch;
    t.nonce[i] ^= 0x01;
    ck_assert_msg(cl_response_verify(&t, sig) == CL_EBADSIG, "nonce byte %zu", i);
  }
  for (int bit = 0; bit < 64; bit++) {
    cl_challenge t = ch;
    t.issued_unix_ns ^= 1ull << bit;
    ck_assert_int_eq(cl_response_verify(&t, sig), CL_EBADSIG);
    t = ch;
    t.seq ^= 1ull << bit;
    ck_assert_int_eq(cl_response_verify(&t, sig), CL_EBADSIG);
  }
  /* Another chip's signature over the same layout, and the landmark's own
   * challenge signature, are both rejected. */
  uint8_t other[CL_SIG_LEN];
  cl_response_sign(&ch, g_other, other);
  ck_assert_int_eq(cl_response_verify(&ch, other), CL_EBADSIG);
  ck_assert_int_eq(cl_response_verify(&ch, ch.sig), CL_EBADSIG);
  /* A chip signature over the challenge layout (no response context) fails. */
  uint8_t cl[CL_CHALLENGE_LAYOUT_LEN];
  cl_layout_challenge(cl, &ch);
  cl_key_sign(g_chip, other, cl, sizeof cl);
  ck_assert_int_eq(cl_response_verify(&ch, other), CL_EBADSIG);
  ck_assert_int_eq(cl_response_verify(&ch, sig), CL_OK);
}
END_TEST

START_TEST(test_register_tamper) {
  const uint8_t *lpk = cl_key_public(g_landmark), *cpk = cl_key_public(g_chip);
  uint8_t sig[CL_SIG_LEN];
  cl_register_sign(lpk, g_session, g_chip, sig);
  ck_assert_int_eq(cl_register_verify(lpk, g_session, cpk, sig), CL_OK);
  uint8_t l[CL_REGISTER_LAYOUT_LEN];
  cl_layout_register(l, lpk, g_session, cpk);
  flip_layout_fails(cpk, sig, l, sizeof l);

  for (size_t i = 0; i < 32; i++) {
    uint8_t s[32];
    memcpy(s, g_session, 32);
    s[i] ^= 0x01;
    ck_assert_msg(cl_register_verify(lpk, s, cpk, sig) == CL_EBADSIG, "session byte %zu", i);
    uint8_t k[32];
    memcpy(k, lpk, 32);
    k[i] ^= 0x01;
    ck_assert_msg(cl_register_verify(k, g_session, cpk, sig) == CL_EBADSIG, "landmark %zu", i);
    memcpy(k, cpk, 32);
    k[i] ^= 0x01;
    ck_assert_msg(cl_register_verify(lpk, g_session, k, sig) == CL_EBADSIG, "chip %zu", i);
  }
  for (size_t i = 0; i < CL_SIG_LEN; i++) {
    uint8_t s[CL_SIG_LEN];
    memcpy(s, sig, sizeof s);
    s[i] ^= 0x01;
    ck_assert_int_eq(cl_register_verify(lpk, g_session, cpk, s), CL_EBADSIG);
  }
  /* A proof made for another session (a replayed Register) fails. */
  uint8_t other_session[32];
  memset(other_session, 0x77, sizeof other_session);
  uint8_t old[CL_SIG_LEN];
  cl_register_sign(lpk, other_session, g_chip, old);
  ck_assert_int_eq(cl_register_verify(lpk, g_session, cpk, old), CL_EBADSIG);
  ck_assert_int_eq(cl_register_verify(lpk, other_session, cpk, old), CL_OK);
  /* A proof by another key claiming this chip fails. */
  cl_register_sign(lpk, g_session, g_other, old);
  ck_assert_int_eq(cl_register_verify(lpk, g_session, cpk, old), CL_EBADSIG);
}
END_TEST

START_TEST(test_measurement_tamper) {
  const cl_measurement m = example_measurement();
  ck_assert_int_eq(cl_measurement_verify(&m), CL_OK);
  uint8_t l[CL_MEASUREMENT_LAYOUT_LEN];
  cl_layout_measurement(l, &m);
  flip_layout_fails(m.ch.landmark, m.sig, l, sizeof l);

  cl_measurement t = m;
  t.rtt_ns--;
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
  t = m;
  t.rtt_ns = 1;
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
  t = m;
  t.probe_count++;
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
  t = m;
  t.measured_unix_ns += 1;
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
  for (size_t i = 0; i < CL_SIG_LEN; i++) {
    t = m;
    t.chip_sig[i] ^= 0x01;
    ck_assert_msg(cl_measurement_verify(&t) == CL_EBADSIG, "chip_sig byte %zu", i);
    t = m;
    t.sig[i] ^= 0x01;
    ck_assert_msg(cl_measurement_verify(&t) == CL_EBADSIG, "sig byte %zu", i);
    t = m;
    t.ch.sig[i] ^= 0x01;
    ck_assert_msg(cl_measurement_verify(&t) == CL_EBADSIG, "ch.sig byte %zu", i);
  }
  for (size_t i = 0; i < 32; i++) {
    t = m;
    t.ch.nonce[i] ^= 0x01;
    ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
    t = m;
    t.ch.chip[i] ^= 0x01;
    ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
  }

  /* The landmark re-signing a record does not launder a bad inner
   * signature: each of the three checks stands on its own. */
  t = m;
  t.chip_sig[5] ^= 0x01;
  cl_measurement_sign(&t, g_landmark);
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
  t = m;
  t.ch.seq++; /* challenge signature no longer matches */
  cl_response_sign(&t.ch, g_chip, t.chip_sig);
  cl_measurement_sign(&t, g_landmark);
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
  t = m;
  cl_measurement_sign(&t, g_other); /* wrong landmark key */
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
  /* Changing the RTT and re-signing with the right key is a valid record:
   * the landmark vouches for its RTT, nobody else can. */
  t = m;
  t.rtt_ns = 999;
  cl_measurement_sign(&t, g_landmark);
  ck_assert_int_eq(cl_measurement_verify(&t), CL_OK);
}
END_TEST

static Suite *layout_suite(void) {
  Suite *s = suite_create("layout");
  TCase *tc = tcase_create("vectors");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_layout_lengths);
  tcase_add_test(tc, test_keys_from_seed);
  tcase_add_test(tc, test_challenge_vector);
  tcase_add_test(tc, test_response_vector);
  tcase_add_test(tc, test_register_vector);
  tcase_add_test(tc, test_measurement_vector);
  tcase_add_test(tc, test_wire_frames_vector);
  tcase_add_test(tc, test_be_helpers);
  suite_add_tcase(s, tc);

  TCase *tt = tcase_create("tamper");
  tcase_add_checked_fixture(tt, setup, teardown);
  tcase_set_timeout(tt, 120);
  tcase_add_test(tt, test_challenge_tamper);
  tcase_add_test(tt, test_response_tamper);
  tcase_add_test(tt, test_register_tamper);
  tcase_add_test(tt, test_measurement_tamper);
  suite_add_tcase(s, tt);
  return s;
}

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  SRunner *sr = srunner_create(layout_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
