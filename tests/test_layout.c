/*
 * The byte layouts of protocol version 2 (lib/wire/cl_layout.h) against
 * fixed test vectors: the worked example of docs/PROTOCOL.md §9.
 *
 * Identity keys come from fixed seeds (all bytes 0x01 for the landmark,
 * 0x02 for the chip), the ephemeral X25519 secrets are all 0x03 (landmark)
 * and all 0x04 (chip), nonces are byte ramps. Every layout is also built
 * here by hand from the document (context string, one NUL, fields with
 * explicit big-endian shifts) and the session key derived by hand with
 * libsodium's primitives; Ed25519 and BLAKE2b are deterministic, so every
 * signature, MAC and frame is pinned as hex too. The hex strings are exactly
 * the hex blocks of §9: the test reads the document and fails on any block
 * it does not pin and any value it pins that the document lacks.
 *
 * The second half changes every byte of every layout, signature and MAC,
 * and every field of every struct, and expects verification to fail.
 */
#include "testutil.h"
#include "cl_err.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_msg.h"
#include "cl_probe.h"

#include <check.h>
#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The inputs of the example (tests/protocol_example.c uses the same). */
#define EX_AGENT "agent-1"
#define EX_SEQ_A 42ull
#define EX_SEQ_C 44ull
#define EX_RTT_A 1300000ull
#define EX_RTT_C 1234567ull
#define EX_PROBES_SENT 3u
#define EX_MEASURED_UNIX_NS 1700000060000000000ull

/* ---- the pinned values: every hex block of PROTOCOL.md §9 ---------------- */

#define PIN(name, hex) static const char name[] = hex
PIN(LSEED_HEX, "0101010101010101010101010101010101010101010101010101010101010101");
PIN(LPK_HEX, "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c");
PIN(CSEED_HEX, "0202020202020202020202020202020202020202020202020202020202020202");
PIN(CPK_HEX, "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394");
PIN(LESK_HEX, "0303030303030303030303030303030303030303030303030303030303030303");
PIN(LEPK_HEX, "5dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22");
PIN(CESK_HEX, "0404040404040404040404040404040404040404040404040404040404040404");
PIN(CEPK_HEX, "ac01b2209e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10b");
PIN(LNONCE_HEX, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
PIN(CNONCE_HEX, "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf");
PIN(HELLO_FRAME_HEX, "00000028080212240a208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94"
                     "121bf3748801b40f6f5c1001");
PIN(REGISTER_FRAME_HEX, "0000007708021a730a076167656e742d3110011a660a208139770ea87d175f56"
                        "a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3941220ac01b2209e8635"
                        "4fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10b1a20c0c1c2c3c4"
                        "c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf");
PIN(HS_LANDMARK_LAYOUT_HEX, "636869706c6f632076322068616e647368616b65206c616e646d61726b000000"
                            "00018a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f"
                            "6f5c8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9"
                            "b3945dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3"
                            "ef22ac01b2209e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fec"
                            "f10ba0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbd"
                            "bebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdd"
                            "dedf");
PIN(HS_LANDMARK_SIG_HEX, "d69afcad79b5c41e80be189bf5467b24bc69eb01cbe79262a203964c1ddc236b"
                         "709fc257b3d8a6b0e2379adabd3f63a5024abab34c860fa040343357dd0ea406");
PIN(REGISTER_RESULT_FRAME_HEX, "000000b2080222ad010aaa010a208139770ea87d175f56a35466c34c7ecccb8d"
                               "8a91b4ee37a25df60f5b8fc9b39410012a205dfedd3b6bd47f6fa28ee15d969d"
                               "5bb0ea53774d488bdaf9df1c6e0124b3ef223220a0a1a2a3a4a5a6a7a8a9aaab"
                               "acadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf3a40d69afcad79b5c41e80be"
                               "189bf5467b24bc69eb01cbe79262a203964c1ddc236b709fc257b3d8a6b0e237"
                               "9adabd3f63a5024abab34c860fa040343357dd0ea406");
PIN(HS_CHIP_LAYOUT_HEX, "636869706c6f632076322068616e647368616b65206368697000000000018a88"
                        "e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c8139"
                        "770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3945dfe"
                        "dd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22ac01"
                        "b2209e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10ba0a1"
                        "a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1"
                        "c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf");
PIN(HS_CHIP_SIG_HEX, "cb5c670419bd13e5440e0cc945d186b4f9cdd59e1ecb76a2f17604bf4b9cd177"
                     "4c9826721cd2156fec5a9a22a770ffa9ca8051bca5c18f340b83422749434f00");
PIN(CONFIRM_FRAME_HEX, "0000006a080242660a640a208139770ea87d175f56a35466c34c7ecccb8d8a91"
                       "b4ee37a25df60f5b8fc9b3941240cb5c670419bd13e5440e0cc945d186b4f9cd"
                       "d59e1ecb76a2f17604bf4b9cd1774c9826721cd2156fec5a9a22a770ffa9ca80"
                       "51bca5c18f340b83422749434f00");
PIN(SESSION_ID_HEX, "8d718b188194cfdd93363dadcf1b6ee080fe56ac30de3b7fe2ea37889c614b42");
PIN(SESSION_KEY_HEX, "da4ee1b6ed1b3dd37aeb6f7b1678483fbf72a40cf8f3f29ec80cb3591ed77273");
PIN(NONCE_A_HEX, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
PIN(NONCE_B_HEX, "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f");
PIN(NONCE_C_HEX, "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f");
PIN(ANSWER_LAYOUT_HEX, "636869706c6f6320763220616e7377657200000000018a88e3dd7409f195fd52"
                       "db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c8139770ea87d175f56a3"
                       "5466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394000000000000002a0001"
                       "02030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
PIN(MAC_A_HEX, "f7464aa002f32d14d7338bd3cc5a70a2397d9bd5b50598a9293ea8b51b6e9396");
PIN(MAC_C_HEX, "cf671a6b8a843e4c5549021d9feb790e789edae35858aaeac58d1d141de37f78");
PIN(CHALLENGE_FRAME_HEX, "0000004a08022a460a208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee"
                         "37a25df60f5b8fc9b394102a1a20000102030405060708090a0b0c0d0e0f1011"
                         "12131415161718191a1b1c1d1e1f");
PIN(RESPONSE_FRAME_HEX, "0000004a080232460a208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee"
                        "37a25df60f5b8fc9b394102a1a20f7464aa002f32d14d7338bd3cc5a70a2397d"
                        "9bd5b50598a9293ea8b51b6e9396");
PIN(BURST_END_FRAME_HEX, "0000002a08024a260a208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee"
                         "37a25df60f5b8fc9b39412022a2c");
PIN(TRANSCRIPT_LAYOUT_HEX, "636869706c6f63207632207472616e73637269707400000000018d718b188194"
                           "cfdd93363dadcf1b6ee080fe56ac30de3b7fe2ea37889c614b428a88e3dd7409"
                           "f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c8139770ea87d"
                           "175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394000000020000"
                           "00000000002a000102030405060708090a0b0c0d0e0f10111213141516171819"
                           "1a1b1c1d1e1ff7464aa002f32d14d7338bd3cc5a70a2397d9bd5b50598a9293e"
                           "a8b51b6e9396000000000000002c404142434445464748494a4b4c4d4e4f5051"
                           "52535455565758595a5b5c5d5e5fcf671a6b8a843e4c5549021d9feb790e789e"
                           "dae35858aaeac58d1d141de37f78");
PIN(TRANSCRIPT_SIG_HEX, "d826d0078b2e214d7e2f1a5f820844e3b981150096a03ec0cd7d1909f351d55e"
                        "af285a9b940dcbe0d482851d751710669cf41be7a574de9911bea89b9d7b6107");
PIN(TRANSCRIPT_FRAME_HEX, "0000006a080252660a208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee"
                          "37a25df60f5b8fc9b394102a1a40d826d0078b2e214d7e2f1a5f820844e3b981"
                          "150096a03ec0cd7d1909f351d55eaf285a9b940dcbe0d482851d751710669cf4"
                          "1be7a574de9911bea89b9d7b6107");
PIN(MEASUREMENT_LAYOUT_HEX, "636869706c6f63207632206d6561737572656d656e7400000000018a88e3dd74"
                            "09f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c8139770ea8"
                            "7d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b3945dfedd3b6b"
                            "d47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22ac01b2209e"
                            "86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10ba0a1a2a3a4"
                            "a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4"
                            "c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfd69afcad79"
                            "b5c41e80be189bf5467b24bc69eb01cbe79262a203964c1ddc236b709fc257b3"
                            "d8a6b0e2379adabd3f63a5024abab34c860fa040343357dd0ea406cb5c670419"
                            "bd13e5440e0cc945d186b4f9cdd59e1ecb76a2f17604bf4b9cd1774c9826721c"
                            "d2156fec5a9a22a770ffa9ca8051bca5c18f340b83422749434f000000000200"
                            "0000000000002a000102030405060708090a0b0c0d0e0f101112131415161718"
                            "191a1b1c1d1e1ff7464aa002f32d14d7338bd3cc5a70a2397d9bd5b50598a929"
                            "3ea8b51b6e9396000000000013d620000000000000002c404142434445464748"
                            "494a4b4c4d4e4f505152535455565758595a5b5c5d5e5fcf671a6b8a843e4c55"
                            "49021d9feb790e789edae35858aaeac58d1d141de37f78000000000012d687d8"
                            "26d0078b2e214d7e2f1a5f820844e3b981150096a03ec0cd7d1909f351d55eaf"
                            "285a9b940dcbe0d482851d751710669cf41be7a574de9911bea89b9d7b610700"
                            "0000000012d6870000000317979d0c2e715800");
PIN(MEASUREMENT_SIG_HEX, "efd9d88ef18c776252af6c902b083d14c44cd3f67ef098781b1f37ac5beae393"
                         "dd8cd9549456c4b28234bab5828881f69240ca2e0020d33324ffb93390e6eb00");
PIN(HS_BLOB_HEX, "5dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22"
                 "ac01b2209e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10b"
                 "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
                 "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
                 "d69afcad79b5c41e80be189bf5467b24bc69eb01cbe79262a203964c1ddc236b"
                 "709fc257b3d8a6b0e2379adabd3f63a5024abab34c860fa040343357dd0ea406"
                 "cb5c670419bd13e5440e0cc945d186b4f9cdd59e1ecb76a2f17604bf4b9cd177"
                 "4c9826721cd2156fec5a9a22a770ffa9ca8051bca5c18f340b83422749434f00");
PIN(PROBES_BLOB_HEX, "000000000000002a000102030405060708090a0b0c0d0e0f1011121314151617"
                     "18191a1b1c1d1e1ff7464aa002f32d14d7338bd3cc5a70a2397d9bd5b50598a9"
                     "293ea8b51b6e9396000000000013d620000000000000002c4041424344454647"
                     "48494a4b4c4d4e4f505152535455565758595a5b5c5d5e5fcf671a6b8a843e4c"
                     "5549021d9feb790e789edae35858aaeac58d1d141de37f78000000000012d687");
PIN(REKEY_FRAME_HEX, "0000002608025a220a208139770ea87d175f56a35466c34c7ecccb8d8a91b4ee"
                     "37a25df60f5b8fc9b394");
PIN(ERROR_FRAME_HEX, "0000002e08023a2a0801122670726f746f636f6c2076657273696f6e20312c20"
                     "74686973207369646520737065616b732032");
#undef PIN

static const char *const PINNED[] = {
    LSEED_HEX, LPK_HEX, CSEED_HEX, CPK_HEX, LESK_HEX, LEPK_HEX, CESK_HEX, CEPK_HEX, LNONCE_HEX,
    CNONCE_HEX, HELLO_FRAME_HEX, REGISTER_FRAME_HEX, HS_LANDMARK_LAYOUT_HEX, HS_LANDMARK_SIG_HEX,
    REGISTER_RESULT_FRAME_HEX, HS_CHIP_LAYOUT_HEX, HS_CHIP_SIG_HEX, CONFIRM_FRAME_HEX,
    SESSION_ID_HEX, SESSION_KEY_HEX, NONCE_A_HEX, NONCE_B_HEX, NONCE_C_HEX, ANSWER_LAYOUT_HEX,
    MAC_A_HEX, MAC_C_HEX, CHALLENGE_FRAME_HEX, RESPONSE_FRAME_HEX, BURST_END_FRAME_HEX,
    TRANSCRIPT_LAYOUT_HEX, TRANSCRIPT_SIG_HEX, TRANSCRIPT_FRAME_HEX, MEASUREMENT_LAYOUT_HEX,
    MEASUREMENT_SIG_HEX, HS_BLOB_HEX, PROBES_BLOB_HEX, REKEY_FRAME_HEX, ERROR_FRAME_HEX,
};
#define N_PINNED (sizeof PINNED / sizeof PINNED[0])

/* ---- the example, built with the library ---------------------------------- */

static cl_key *g_landmark, *g_chip, *g_other;
static uint8_t g_lsk[CL_EPH_SK_LEN], g_csk[CL_EPH_SK_LEN];

static void ramp(uint8_t *p, size_t n, uint8_t first) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(first + i);
}

static void setup(void) {
  uint8_t seed[32];
  memset(seed, 0x01, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_landmark, seed), CL_OK);
  memset(seed, 0x02, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_chip, seed), CL_OK);
  memset(seed, 0x05, sizeof seed);
  ck_assert_int_eq(cl_key_from_seed(&g_other, seed), CL_OK);
  memset(g_lsk, 0x03, sizeof g_lsk);
  memset(g_csk, 0x04, sizeof g_csk);
}

static void teardown(void) {
  cl_key_destroy(&g_landmark);
  cl_key_destroy(&g_chip);
  cl_key_destroy(&g_other);
}

/* The example handshake without signatures. */
static cl_handshake example_hs_unsigned(void) {
  cl_handshake hs;
  memset(&hs, 0, sizeof hs);
  hs.suite = CL_SUITE_ED25519_X25519;
  memcpy(hs.landmark, cl_key_public(g_landmark), CL_PK_LEN);
  memcpy(hs.chip, cl_key_public(g_chip), CL_PK_LEN);
  ck_assert_int_eq(crypto_scalarmult_base(hs.landmark_eph, g_lsk), 0);
  ck_assert_int_eq(crypto_scalarmult_base(hs.chip_eph, g_csk), 0);
  ramp(hs.landmark_nonce, CL_NONCE_LEN, 0xa0);
  ramp(hs.chip_nonce, CL_NONCE_LEN, 0xc0);
  return hs;
}

static cl_handshake example_hs(void) {
  cl_handshake hs = example_hs_unsigned();
  ck_assert_int_eq(cl_hs_sign_landmark(&hs, g_landmark), CL_OK);
  ck_assert_int_eq(cl_hs_sign_chip(&hs, g_chip), CL_OK);
  return hs;
}

static void example_key(const cl_handshake *hs, uint8_t key[CL_SESSION_KEY_LEN]) {
  ck_assert_int_eq(cl_session_key(hs, CL_SIDE_LANDMARK, g_lsk, key), CL_OK);
}

/* The two accepted probes (seq 42 and 44) with their MACs and RTTs. */
static void example_entries(const cl_handshake *hs, cl_probe_entry e[2]) {
  uint8_t key[CL_SESSION_KEY_LEN];
  example_key(hs, key);
  memset(e, 0, 2 * sizeof *e);
  e[0].seq = EX_SEQ_A;
  ramp(e[0].nonce, CL_NONCE_LEN, 0x00);
  e[0].rtt_ns = EX_RTT_A;
  e[1].seq = EX_SEQ_C;
  ramp(e[1].nonce, CL_NONCE_LEN, 0x40);
  e[1].rtt_ns = EX_RTT_C;
  for (int i = 0; i < 2; i++)
    cl_answer_mac(key, hs->suite, hs->landmark, hs->chip, e[i].seq, e[i].nonce, e[i].mac);
}

static cl_measurement g_m; /* large: kept off the stack */

static const cl_measurement *example_measurement(void) {
  memset(&g_m, 0, sizeof g_m);
  g_m.hs = example_hs();
  g_m.count = 2;
  example_entries(&g_m.hs, g_m.probes);
  ck_assert_int_eq(
      cl_transcript_sign(&g_m.hs, g_m.probes, g_m.count, g_chip, g_m.transcript_sig), CL_OK);
  g_m.rtt_ns = EX_RTT_C;
  g_m.probes_sent = EX_PROBES_SENT;
  g_m.measured_unix_ns = EX_MEASURED_UNIX_NS;
  ck_assert_int_eq(cl_measurement_sign(&g_m, g_landmark), CL_OK);
  return &g_m;
}

static void assert_hex(const uint8_t *got, size_t n, const char *want_hex) {
  char *h = malloc(2 * n + 1);
  ck_assert_ptr_nonnull(h);
  cl_hex_encode(h, got, n);
  ck_assert_str_eq(h, want_hex);
  free(h);
}

/* ---- hand-written layouts, independent of cl_layout.c ------------------- */

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
static uint8_t *hand_hs_body(uint8_t *p, const cl_handshake *hs) {
  p = hand_be32(p, hs->suite);
  p = hand_raw(p, hs->landmark, 32);
  p = hand_raw(p, hs->chip, 32);
  p = hand_raw(p, hs->landmark_eph, 32);
  p = hand_raw(p, hs->chip_eph, 32);
  p = hand_raw(p, hs->landmark_nonce, 32);
  return hand_raw(p, hs->chip_nonce, 32);
}
static void hand_session_id(const cl_handshake *hs, uint8_t id[32]) {
  uint8_t buf[256];
  uint8_t *p = hand_hs_body(hand_ctx(buf, "chiploc v2 session id"), hs);
  ck_assert_uint_eq((size_t)(p - buf), 22 + 196);
  crypto_generichash(id, 32, buf, (size_t)(p - buf), NULL, 0);
}
static size_t hand_transcript(uint8_t *out, const cl_handshake *hs, const cl_probe_entry *e,
                              size_t n) {
  uint8_t sid[32];
  hand_session_id(hs, sid);
  uint8_t *p = hand_ctx(out, "chiploc v2 transcript");
  p = hand_be32(p, hs->suite);
  p = hand_raw(p, sid, 32);
  p = hand_raw(p, hs->landmark, 32);
  p = hand_raw(p, hs->chip, 32);
  p = hand_be32(p, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    p = hand_be64(p, e[i].seq);
    p = hand_raw(p, e[i].nonce, 32);
    p = hand_raw(p, e[i].mac, 32);
  }
  return (size_t)(p - out);
}

/* ---- the document --------------------------------------------------------- */

/*
 * The hex blocks of §9 of docs/PROTOCOL.md: fenced code blocks whose every
 * line is lowercase hex, each block's lines joined. Returns the count;
 * blocks[] are malloc'd.
 */
static size_t doc_hex_blocks(char **blocks, size_t max) {
  const char *dir = getenv("CHIPLOC_SOURCE_DIR");
  ck_assert_msg(dir != NULL, "CHIPLOC_SOURCE_DIR is not set");
  char path[4096];
  snprintf(path, sizeof path, "%s/docs/PROTOCOL.md", dir);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  static char line[4096];
  int in_section = 0, in_block = 0, hex_only = 0;
  size_t n = 0, len = 0;
  static char cur[8192];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "## ", 3) == 0) in_section = strncmp(line, "## 9. ", 6) == 0;
    if (!in_section) continue;
    char *s = line;
    while (*s == ' ') s++;
    size_t l = strcspn(s, "\r\n");
    s[l] = '\0';
    if (strncmp(s, "```", 3) == 0) {
      if (in_block && hex_only && len > 0) {
        ck_assert_uint_lt(n, max);
        blocks[n] = malloc(len + 1);
        ck_assert_ptr_nonnull(blocks[n]);
        memcpy(blocks[n], cur, len + 1);
        n++;
      }
      in_block = !in_block;
      hex_only = 1;
      len = 0;
      cur[0] = '\0';
      continue;
    }
    if (!in_block) continue;
    for (size_t i = 0; i < l; i++)
      if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) hex_only = 0;
    if (hex_only && l > 0) {
      ck_assert_uint_lt(len + l, sizeof cur);
      memcpy(cur + len, s, l + 1);
      len += l;
    }
  }
  fclose(f);
  ck_assert_msg(!in_block, "an unclosed code block in §9");
  return n;
}

START_TEST(test_document_shows_exactly_these_bytes) {
  char *blocks[128];
  size_t n = doc_hex_blocks(blocks, 128);
  /* Every pinned value appears in §9, in a block of its own. */
  for (size_t k = 0; k < N_PINNED; k++) {
    int found = 0;
    for (size_t i = 0; i < n; i++) found |= strcmp(blocks[i], PINNED[k]) == 0;
    ck_assert_msg(found, "§9 does not show %.64s...", PINNED[k]);
  }
  /* Every hex block of §9 is a pinned value: no stale bytes. */
  for (size_t i = 0; i < n; i++) {
    int found = 0;
    for (size_t k = 0; k < N_PINNED; k++) found |= strcmp(blocks[i], PINNED[k]) == 0;
    ck_assert_msg(found, "§9 shows bytes nobody checks: %.64s...", blocks[i]);
    free(blocks[i]);
  }
}
END_TEST

/* ---- vectors ---------------------------------------------------------------- */

START_TEST(test_layout_lengths) {
  ck_assert_uint_eq(sizeof CL_CTX_HS_LANDMARK, 30);
  ck_assert_uint_eq(sizeof CL_CTX_HS_CHIP, 26);
  ck_assert_uint_eq(sizeof CL_CTX_SESSION_ID, 22);
  ck_assert_uint_eq(sizeof CL_CTX_SESSION_KEY, 23);
  ck_assert_uint_eq(sizeof CL_CTX_ANSWER, 18);
  ck_assert_uint_eq(sizeof CL_CTX_TRANSCRIPT, 22);
  ck_assert_uint_eq(sizeof CL_CTX_MEASUREMENT, 23);
  /* suite 4, two identities, two ephemerals, two nonces */
  ck_assert_uint_eq(CL_HS_BODY_LEN, 196);
  ck_assert_uint_eq(CL_HS_LANDMARK_LAYOUT_LEN, 226);
  ck_assert_uint_eq(CL_HS_CHIP_LAYOUT_LEN, 222);
  /* context 18, suite 4, landmark 32, chip 32, seq 8, nonce 32 */
  ck_assert_uint_eq(CL_ANSWER_LAYOUT_LEN, 126);
  ck_assert_uint_eq(CL_TRANSCRIPT_ENTRY_LEN, 72);
  ck_assert_uint_eq(CL_TRANSCRIPT_LAYOUT_LEN(1), 198);
  ck_assert_uint_eq(CL_TRANSCRIPT_LAYOUT_LEN(2), 270);
  ck_assert_uint_eq(CL_TRANSCRIPT_LAYOUT_MAX, 126 + 72 * 16);
  ck_assert_uint_eq(CL_RECORD_ENTRY_LEN, 80);
  ck_assert_uint_eq(CL_MEASUREMENT_LAYOUT_LEN(1), 515);
  ck_assert_uint_eq(CL_MEASUREMENT_LAYOUT_LEN(2), 595);
  ck_assert_uint_eq(CL_MEASUREMENT_LAYOUT_MAX, 435 + 80 * 16);
  ck_assert_uint_eq(CL_HS_BLOB_LEN, 256);
  ck_assert_uint_eq(CL_PROBES_BLOB_MAX, 1280);
}
END_TEST

START_TEST(test_keys_and_ephemerals) {
  char hex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(g_landmark), hex);
  ck_assert_str_eq(hex, LPK_HEX);
  cl_pk_to_hex(cl_key_public(g_chip), hex);
  ck_assert_str_eq(hex, CPK_HEX);
  assert_hex(g_lsk, 32, LESK_HEX);
  assert_hex(g_csk, 32, CESK_HEX);
  cl_handshake hs = example_hs_unsigned();
  assert_hex(hs.landmark_eph, 32, LEPK_HEX);
  assert_hex(hs.chip_eph, 32, CEPK_HEX);
  assert_hex(hs.landmark_nonce, 32, LNONCE_HEX);
  assert_hex(hs.chip_nonce, 32, CNONCE_HEX);
  uint8_t seed[32];
  memset(seed, 0x01, sizeof seed);
  assert_hex(seed, 32, LSEED_HEX);
  memset(seed, 0x02, sizeof seed);
  assert_hex(seed, 32, CSEED_HEX);
}
END_TEST

START_TEST(test_handshake_vectors) {
  cl_handshake hs = example_hs_unsigned();
  uint8_t got[CL_HS_LANDMARK_LAYOUT_LEN + 16], want[CL_HS_LANDMARK_LAYOUT_LEN];
  memset(got, 0xAA, sizeof got);
  ck_assert_uint_eq(cl_layout_hs_landmark(got, &hs), CL_HS_LANDMARK_LAYOUT_LEN);
  for (size_t i = CL_HS_LANDMARK_LAYOUT_LEN; i < sizeof got; i++) ck_assert_uint_eq(got[i], 0xAA);
  uint8_t *p = hand_hs_body(hand_ctx(want, "chiploc v2 handshake landmark"), &hs);
  ck_assert_uint_eq((size_t)(p - want), CL_HS_LANDMARK_LAYOUT_LEN);
  ck_assert_mem_eq(got, want, CL_HS_LANDMARK_LAYOUT_LEN);
  assert_hex(got, CL_HS_LANDMARK_LAYOUT_LEN, HS_LANDMARK_LAYOUT_HEX);
  /* The suite at offset 30, big-endian. */
  ck_assert_uint_eq(got[29], 0x00);
  ck_assert_uint_eq(cl_get_be32(got + 30), 1);

  ck_assert_int_eq(cl_hs_sign_landmark(&hs, g_landmark), CL_OK);
  assert_hex(hs.landmark_sig, CL_SIG_LEN, HS_LANDMARK_SIG_HEX);
  ck_assert_int_eq(cl_sig_verify(hs.landmark, hs.landmark_sig, want, sizeof want), CL_OK);
  ck_assert_int_eq(cl_hs_verify_landmark(&hs), CL_OK);

  uint8_t gotc[CL_HS_CHIP_LAYOUT_LEN + 16], wantc[CL_HS_CHIP_LAYOUT_LEN];
  memset(gotc, 0xAA, sizeof gotc);
  ck_assert_uint_eq(cl_layout_hs_chip(gotc, &hs), CL_HS_CHIP_LAYOUT_LEN);
  for (size_t i = CL_HS_CHIP_LAYOUT_LEN; i < sizeof gotc; i++) ck_assert_uint_eq(gotc[i], 0xAA);
  p = hand_hs_body(hand_ctx(wantc, "chiploc v2 handshake chip"), &hs);
  ck_assert_uint_eq((size_t)(p - wantc), CL_HS_CHIP_LAYOUT_LEN);
  ck_assert_mem_eq(gotc, wantc, CL_HS_CHIP_LAYOUT_LEN);
  assert_hex(gotc, CL_HS_CHIP_LAYOUT_LEN, HS_CHIP_LAYOUT_HEX);
  /* The chip's layout does not hold the landmark's signature. */
  ck_assert_int_eq(cl_hs_sign_chip(&hs, g_chip), CL_OK);
  assert_hex(hs.chip_sig, CL_SIG_LEN, HS_CHIP_SIG_HEX);
  ck_assert_int_eq(cl_sig_verify(hs.chip, hs.chip_sig, wantc, sizeof wantc), CL_OK);
  ck_assert_int_eq(cl_hs_verify_chip(&hs), CL_OK);
}
END_TEST

START_TEST(test_session_id_and_key_vectors) {
  cl_handshake hs = example_hs();
  uint8_t id[CL_SESSION_ID_LEN], hand[32];
  ck_assert_int_eq(cl_session_id(&hs, id), CL_OK);
  hand_session_id(&hs, hand);
  ck_assert_mem_eq(id, hand, 32);
  assert_hex(id, 32, SESSION_ID_HEX);
  /* Neither signature is part of the session id. */
  cl_handshake u = example_hs_unsigned();
  ck_assert_int_eq(cl_session_id(&u, hand), CL_OK);
  ck_assert_mem_eq(id, hand, 32);

  /* Both sides derive the same key, and it is the documented derivation:
   * BLAKE2b-256 keyed with the X25519 output over the context and the id. */
  uint8_t kl[CL_SESSION_KEY_LEN], kc[CL_SESSION_KEY_LEN], q[32], want[32], msg[23 + 32];
  ck_assert_int_eq(cl_session_key(&hs, CL_SIDE_LANDMARK, g_lsk, kl), CL_OK);
  ck_assert_int_eq(cl_session_key(&hs, CL_SIDE_CHIP, g_csk, kc), CL_OK);
  ck_assert_mem_eq(kl, kc, sizeof kl);
  ck_assert_int_eq(crypto_scalarmult(q, g_lsk, hs.chip_eph), 0);
  uint8_t *p = hand_raw(hand_ctx(msg, "chiploc v2 session key"), id, 32);
  ck_assert_uint_eq((size_t)(p - msg), sizeof msg);
  crypto_generichash(want, 32, msg, sizeof msg, q, sizeof q);
  ck_assert_mem_eq(kl, want, 32);
  assert_hex(kl, 32, SESSION_KEY_HEX);
  /* The session key is not the session id nor the X25519 output. */
  ck_assert_int_ne(memcmp(kl, id, 32), 0);
  ck_assert_int_ne(memcmp(kl, q, 32), 0);
}
END_TEST

START_TEST(test_answer_vectors) {
  cl_handshake hs = example_hs();
  uint8_t key[CL_SESSION_KEY_LEN];
  example_key(&hs, key);
  cl_probe_entry e[2];
  example_entries(&hs, e);
  assert_hex(e[0].nonce, 32, NONCE_A_HEX);
  assert_hex(e[1].nonce, 32, NONCE_C_HEX);
  uint8_t nonce_b[32];
  ramp(nonce_b, sizeof nonce_b, 0x20);
  assert_hex(nonce_b, 32, NONCE_B_HEX);

  uint8_t got[CL_ANSWER_LAYOUT_LEN + 16], want[CL_ANSWER_LAYOUT_LEN];
  memset(got, 0xAA, sizeof got);
  ck_assert_uint_eq(cl_layout_answer(got, hs.suite, hs.landmark, hs.chip, e[0].seq, e[0].nonce),
                    CL_ANSWER_LAYOUT_LEN);
  for (size_t i = CL_ANSWER_LAYOUT_LEN; i < sizeof got; i++) ck_assert_uint_eq(got[i], 0xAA);
  uint8_t *p = hand_ctx(want, "chiploc v2 answer");
  p = hand_be32(p, hs.suite);
  p = hand_raw(p, hs.landmark, 32);
  p = hand_raw(p, hs.chip, 32);
  p = hand_be64(p, e[0].seq);
  p = hand_raw(p, e[0].nonce, 32);
  ck_assert_uint_eq((size_t)(p - want), CL_ANSWER_LAYOUT_LEN);
  ck_assert_mem_eq(got, want, CL_ANSWER_LAYOUT_LEN);
  assert_hex(got, CL_ANSWER_LAYOUT_LEN, ANSWER_LAYOUT_HEX);

  uint8_t mac[32];
  crypto_generichash(mac, 32, want, sizeof want, key, sizeof key);
  ck_assert_mem_eq(mac, e[0].mac, 32);
  assert_hex(e[0].mac, 32, MAC_A_HEX);
  assert_hex(e[1].mac, 32, MAC_C_HEX);
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(
        cl_answer_check(key, hs.suite, hs.landmark, hs.chip, e[i].seq, e[i].nonce, e[i].mac),
        CL_OK);
}
END_TEST

START_TEST(test_transcript_vector) {
  cl_handshake hs = example_hs();
  cl_probe_entry e[2];
  example_entries(&hs, e);
  uint8_t got[CL_TRANSCRIPT_LAYOUT_MAX], want[CL_TRANSCRIPT_LAYOUT_MAX];
  size_t n = cl_layout_transcript(got, &hs, e, 2);
  ck_assert_uint_eq(n, CL_TRANSCRIPT_LAYOUT_LEN(2));
  ck_assert_uint_eq(hand_transcript(want, &hs, e, 2), n);
  ck_assert_mem_eq(got, want, n);
  assert_hex(got, n, TRANSCRIPT_LAYOUT_HEX);
  /* The RTTs are the landmark's: not in what the chip signs. */
  cl_probe_entry f[2];
  memcpy(f, e, sizeof f);
  f[0].rtt_ns = 1;
  f[1].rtt_ns = 99;
  ck_assert_uint_eq(cl_layout_transcript(got, &hs, f, 2), n);
  ck_assert_mem_eq(got, want, n);

  uint8_t sig[CL_SIG_LEN];
  ck_assert_int_eq(cl_transcript_sign(&hs, e, 2, g_chip, sig), CL_OK);
  assert_hex(sig, CL_SIG_LEN, TRANSCRIPT_SIG_HEX);
  ck_assert_int_eq(cl_sig_verify(hs.chip, sig, want, n), CL_OK);
  ck_assert_int_eq(cl_transcript_verify(&hs, e, 2, sig), CL_OK);
  /* The bounds of n. */
  ck_assert_uint_eq(cl_layout_transcript(got, &hs, e, 0), 0);
  static cl_probe_entry many[CL_MAX_BURST + 1];
  ck_assert_uint_eq(cl_layout_transcript(got, &hs, many, CL_MAX_BURST), CL_TRANSCRIPT_LAYOUT_MAX);
  ck_assert_uint_eq(cl_layout_transcript(got, &hs, many, CL_MAX_BURST + 1), 0);
  ck_assert_int_eq(cl_transcript_sign(&hs, e, 0, g_chip, sig), CL_EINVAL);
  ck_assert_int_eq(cl_transcript_verify(&hs, many, CL_MAX_BURST + 1, sig), CL_EINVAL);
}
END_TEST

START_TEST(test_measurement_vector) {
  const cl_measurement *m = example_measurement();
  uint8_t got[CL_MEASUREMENT_LAYOUT_MAX], want[CL_MEASUREMENT_LAYOUT_MAX];
  size_t n = cl_layout_measurement(got, m);
  ck_assert_uint_eq(n, CL_MEASUREMENT_LAYOUT_LEN(2));
  uint8_t *p = hand_ctx(want, "chiploc v2 measurement");
  p = hand_hs_body(p, &m->hs);
  p = hand_raw(p, m->hs.landmark_sig, 64);
  p = hand_raw(p, m->hs.chip_sig, 64);
  p = hand_be32(p, m->count);
  for (uint32_t i = 0; i < m->count; i++) {
    p = hand_be64(p, m->probes[i].seq);
    p = hand_raw(p, m->probes[i].nonce, 32);
    p = hand_raw(p, m->probes[i].mac, 32);
    p = hand_be64(p, m->probes[i].rtt_ns);
  }
  p = hand_raw(p, m->transcript_sig, 64);
  p = hand_be64(p, m->rtt_ns);
  p = hand_be32(p, m->probes_sent);
  p = hand_be64(p, m->measured_unix_ns);
  ck_assert_uint_eq((size_t)(p - want), n);
  ck_assert_mem_eq(got, want, n);
  assert_hex(got, n, MEASUREMENT_LAYOUT_HEX);
  assert_hex(m->transcript_sig, CL_SIG_LEN, TRANSCRIPT_SIG_HEX);
  assert_hex(m->sig, CL_SIG_LEN, MEASUREMENT_SIG_HEX);
  ck_assert_int_eq(cl_sig_verify(m->hs.landmark, m->sig, want, n), CL_OK);
  ck_assert_int_eq(cl_measurement_verify(m), CL_OK);
  ck_assert_int_eq(cl_measurement_verify_landmark(m), CL_OK);
  ck_assert_int_eq(cl_measurement_verify_chip(m), CL_OK);
  /* The fastest probe is the second (seq 44), and its bound at c. */
  ck_assert_uint_eq(cl_measurement_fastest(m), 1);
  ck_assert_uint_eq(m->probes[1].seq, EX_SEQ_C);
  ck_assert_uint_eq(cl_bound_m(m->rtt_ns, CL_SPEED_C), 185057);
}
END_TEST

START_TEST(test_storage_blobs) {
  const cl_measurement *m = example_measurement();
  uint8_t hb[CL_HS_BLOB_LEN], want[CL_HS_BLOB_LEN];
  cl_hs_blob_put(hb, &m->hs);
  uint8_t *p = hand_raw(want, m->hs.landmark_eph, 32);
  p = hand_raw(p, m->hs.chip_eph, 32);
  p = hand_raw(p, m->hs.landmark_nonce, 32);
  p = hand_raw(p, m->hs.chip_nonce, 32);
  p = hand_raw(p, m->hs.landmark_sig, 64);
  p = hand_raw(p, m->hs.chip_sig, 64);
  ck_assert_uint_eq((size_t)(p - want), CL_HS_BLOB_LEN);
  ck_assert_mem_eq(hb, want, sizeof hb);
  assert_hex(hb, sizeof hb, HS_BLOB_HEX);

  uint8_t pb[CL_PROBES_BLOB_MAX], pwant[2 * 80];
  ck_assert_uint_eq(cl_probes_blob_put(pb, m->probes, 2), 160);
  p = pwant;
  for (int i = 0; i < 2; i++) {
    p = hand_be64(p, m->probes[i].seq);
    p = hand_raw(p, m->probes[i].nonce, 32);
    p = hand_raw(p, m->probes[i].mac, 32);
    p = hand_be64(p, m->probes[i].rtt_ns);
  }
  ck_assert_mem_eq(pb, pwant, sizeof pwant);
  assert_hex(pb, 160, PROBES_BLOB_HEX);

  /* A record rebuilt from the stored form (suite and identities from the
   * row's columns) verifies. */
  static cl_measurement r;
  memset(&r, 0, sizeof r);
  r.hs.suite = m->hs.suite;
  memcpy(r.hs.landmark, m->hs.landmark, CL_PK_LEN);
  memcpy(r.hs.chip, m->hs.chip, CL_PK_LEN);
  cl_hs_blob_get(&r.hs, hb);
  size_t cnt = 0;
  ck_assert_int_eq(cl_probes_blob_get(r.probes, &cnt, pb, 160), CL_OK);
  ck_assert_uint_eq(cnt, 2);
  r.count = (uint32_t)cnt;
  memcpy(r.transcript_sig, m->transcript_sig, CL_SIG_LEN);
  r.rtt_ns = m->rtt_ns;
  r.probes_sent = m->probes_sent;
  r.measured_unix_ns = m->measured_unix_ns;
  memcpy(r.sig, m->sig, CL_SIG_LEN);
  ck_assert_mem_eq(&r.hs, &m->hs, sizeof r.hs);
  ck_assert_mem_eq(r.probes, m->probes, 2 * sizeof r.probes[0]);
  ck_assert_int_eq(cl_measurement_verify(&r), CL_OK);

  /* Lengths the probes blob refuses. */
  static uint8_t big[CL_PROBES_BLOB_MAX + 80];
  static const size_t bad[] = {0, 1, 79, 81, 159, 161, CL_PROBES_BLOB_MAX + 80};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(cl_probes_blob_get(r.probes, &cnt, big, bad[i]) == CL_EMALFORMED, "len %zu",
                  bad[i]);
  ck_assert_int_eq(cl_probes_blob_get(r.probes, &cnt, big, CL_PROBES_BLOB_MAX), CL_OK);
  ck_assert_uint_eq(cnt, CL_MAX_BURST);
}
END_TEST

static cl_msg g_msg;

static void assert_frame(const char *want_hex) {
  uint8_t buf[1024];
  size_t n = 0;
  ck_assert_int_eq(cl_msg_encode(&g_msg, buf, sizeof buf, &n), CL_OK);
  assert_hex(buf, n, want_hex);
  /* And the frame decodes to the message it came from. */
  static cl_msg back;
  char err[128];
  ck_assert_uint_eq(cl_get_be32(buf), n - 4);
  ck_assert_int_eq(cl_msg_decode(buf + 4, n - 4, &back, err, sizeof err), CL_OK);
  ck_assert_int_eq(back.type, g_msg.type);
  memset(&g_msg, 0, sizeof g_msg);
}

START_TEST(test_frame_vectors) {
  const cl_measurement *m = example_measurement();
  const cl_handshake *hs = &m->hs;
  memset(&g_msg, 0, sizeof g_msg);
  g_msg.type = CL_MSG_HELLO;
  memcpy(g_msg.u.hello.landmark, hs->landmark, CL_PK_LEN);
  g_msg.u.hello.suite = hs->suite;
  assert_frame(HELLO_FRAME_HEX);

  g_msg.type = CL_MSG_REGISTER;
  strcpy(g_msg.u.reg.agent, EX_AGENT);
  g_msg.u.reg.suite = hs->suite;
  g_msg.u.reg.n = 1;
  memcpy(g_msg.u.reg.chips[0].chip, hs->chip, CL_PK_LEN);
  memcpy(g_msg.u.reg.chips[0].eph, hs->chip_eph, CL_EPH_LEN);
  memcpy(g_msg.u.reg.chips[0].nonce, hs->chip_nonce, CL_NONCE_LEN);
  assert_frame(REGISTER_FRAME_HEX);

  g_msg.type = CL_MSG_REGISTER_RESULT;
  g_msg.u.reg_result.n = 1;
  cl_chip_result *r = &g_msg.u.reg_result.r[0];
  memcpy(r->chip, hs->chip, CL_PK_LEN);
  r->accepted = 1;
  memcpy(r->eph, hs->landmark_eph, CL_EPH_LEN);
  memcpy(r->nonce, hs->landmark_nonce, CL_NONCE_LEN);
  memcpy(r->sig, hs->landmark_sig, CL_SIG_LEN);
  assert_frame(REGISTER_RESULT_FRAME_HEX);

  g_msg.type = CL_MSG_CONFIRM;
  g_msg.u.confirm.n = 1;
  memcpy(g_msg.u.confirm.chips[0].chip, hs->chip, CL_PK_LEN);
  memcpy(g_msg.u.confirm.chips[0].sig, hs->chip_sig, CL_SIG_LEN);
  assert_frame(CONFIRM_FRAME_HEX);

  g_msg.type = CL_MSG_CHALLENGE;
  memcpy(g_msg.u.challenge.chip, hs->chip, CL_PK_LEN);
  g_msg.u.challenge.seq = m->probes[0].seq;
  memcpy(g_msg.u.challenge.nonce, m->probes[0].nonce, CL_NONCE_LEN);
  assert_frame(CHALLENGE_FRAME_HEX);

  g_msg.type = CL_MSG_RESPONSE;
  memcpy(g_msg.u.response.chip, hs->chip, CL_PK_LEN);
  g_msg.u.response.seq = m->probes[0].seq;
  memcpy(g_msg.u.response.mac, m->probes[0].mac, CL_MAC_LEN);
  assert_frame(RESPONSE_FRAME_HEX);

  g_msg.type = CL_MSG_BURST_END;
  memcpy(g_msg.u.burst_end.chip, hs->chip, CL_PK_LEN);
  g_msg.u.burst_end.n = 2;
  g_msg.u.burst_end.seqs[0] = EX_SEQ_A;
  g_msg.u.burst_end.seqs[1] = EX_SEQ_C;
  assert_frame(BURST_END_FRAME_HEX);

  g_msg.type = CL_MSG_TRANSCRIPT;
  memcpy(g_msg.u.transcript.chip, hs->chip, CL_PK_LEN);
  g_msg.u.transcript.first_seq = EX_SEQ_A;
  memcpy(g_msg.u.transcript.sig, m->transcript_sig, CL_SIG_LEN);
  assert_frame(TRANSCRIPT_FRAME_HEX);

  g_msg.type = CL_MSG_REKEY;
  memcpy(g_msg.u.rekey.chip, hs->chip, CL_PK_LEN);
  assert_frame(REKEY_FRAME_HEX);

  uint8_t buf[256];
  size_t n = 0;
  ck_assert_int_eq(cl_msg_encode_error(CL_ERR_VERSION, "protocol version 1, this side speaks 2",
                                       buf, sizeof buf, &n),
                   CL_OK);
  assert_hex(buf, n, ERROR_FRAME_HEX);
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
  cl_put_be64_double(b, 1.0);
  const uint8_t one[8] = {0x3f, 0xf0, 0, 0, 0, 0, 0, 0};
  ck_assert_mem_eq(b, one, 8);
}
END_TEST

/* ---- suites ------------------------------------------------------------------ */

START_TEST(test_suites) {
  ck_assert_int_eq(cl_suite_known(CL_SUITE_ED25519_X25519), 1);
  ck_assert_str_eq(cl_suite_name(1), "ed25519-x25519-blake2b");
  static const uint32_t unknown[] = {0, CL_SUITE_P256_RESERVED, 3, 7, UINT32_MAX};
  cl_handshake hs = example_hs();
  uint8_t out[CL_MEASUREMENT_LAYOUT_MAX], sig[CL_SIG_LEN], key[32];
  cl_probe_entry e[2];
  example_entries(&hs, e);
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    uint32_t s = unknown[i];
    ck_assert_int_eq(cl_suite_known(s), 0);
    ck_assert_str_eq(cl_suite_name(s), "unknown");
    cl_handshake t = hs;
    t.suite = s;
    ck_assert_int_eq(cl_hs_sign_landmark(&t, g_landmark), CL_ESUITE);
    ck_assert_int_eq(cl_hs_sign_chip(&t, g_chip), CL_ESUITE);
    ck_assert_int_eq(cl_hs_verify_landmark(&t), CL_ESUITE);
    ck_assert_int_eq(cl_hs_verify_chip(&t), CL_ESUITE);
    ck_assert_int_eq(cl_session_id(&t, key), CL_ESUITE);
    ck_assert_int_eq(cl_session_key(&t, CL_SIDE_LANDMARK, g_lsk, key), CL_ESUITE);
    ck_assert_uint_eq(cl_layout_transcript(out, &t, e, 2), 0);
    ck_assert_int_eq(cl_transcript_sign(&t, e, 2, g_chip, sig), CL_ESUITE);
    ck_assert_int_eq(cl_transcript_verify(&t, e, 2, sig), CL_ESUITE);
    static cl_measurement m;
    m = *example_measurement();
    m.hs.suite = s;
    char err[80];
    ck_assert_int_eq(cl_measurement_check(&m, err, sizeof err), CL_ESUITE);
    char want[80];
    snprintf(want, sizeof want, "suite %u is unknown", s);
    ck_assert_str_eq(err, want);
    ck_assert_uint_eq(cl_layout_measurement(out, &m), 0);
    ck_assert_int_eq(cl_measurement_sign(&m, g_landmark), CL_EINVAL);
    ck_assert_int_eq(cl_measurement_verify(&m), CL_ESUITE);
  }
  /* Signing with a key other than the one the handshake names. */
  cl_handshake t = example_hs_unsigned();
  ck_assert_int_eq(cl_hs_sign_landmark(&t, g_chip), CL_EINVAL);
  ck_assert_int_eq(cl_hs_sign_chip(&t, g_landmark), CL_EINVAL);
}
END_TEST

/* ---- tampering ----------------------------------------------------------------- */

/* Every bit pattern 0x01 and 0x80 of every byte of layout, and the layout
 * one byte short: the signature over the original fails on each. */
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
  ck_assert_int_eq(cl_sig_verify(pk, sig, layout, n - 1), CL_EBADSIG);
  ck_assert_int_eq(cl_sig_verify(pk, sig, layout, n), CL_OK);
  free(m);
}

/* Field f of hs and its length: the handshake's byte fields in layout
 * order, then both signatures. */
static uint8_t *hs_field(cl_handshake *hs, int f, size_t *len) {
  switch (f) {
  case 0: *len = CL_PK_LEN; return hs->landmark;
  case 1: *len = CL_PK_LEN; return hs->chip;
  case 2: *len = CL_EPH_LEN; return hs->landmark_eph;
  case 3: *len = CL_EPH_LEN; return hs->chip_eph;
  case 4: *len = CL_NONCE_LEN; return hs->landmark_nonce;
  case 5: *len = CL_NONCE_LEN; return hs->chip_nonce;
  case 6: *len = CL_SIG_LEN; return hs->landmark_sig;
  default: *len = CL_SIG_LEN; return hs->chip_sig;
  }
}
static size_t hs_field_len(int f) {
  cl_handshake hs;
  size_t len = 0;
  hs_field(&hs, f, &len);
  return len;
}
#define HS_BODY_FIELDS 6
#define HS_FIELDS 8

START_TEST(test_handshake_tamper) {
  const cl_handshake hs = example_hs();
  uint8_t l[CL_HS_LANDMARK_LAYOUT_LEN], c[CL_HS_CHIP_LAYOUT_LEN];
  cl_layout_hs_landmark(l, &hs);
  cl_layout_hs_chip(c, &hs);
  flip_layout_fails(hs.landmark, hs.landmark_sig, l, sizeof l);
  flip_layout_fails(hs.chip, hs.chip_sig, c, sizeof c);

  /* Every byte of every field: both handshake signatures fail, except that
   * a signature's own bytes only break that signature. */
  for (int f = 0; f < HS_FIELDS; f++) {
    size_t len = hs_field_len(f);
    for (size_t i = 0; i < len; i++) {
      cl_handshake t = hs;
      hs_field(&t, f, &len)[i] ^= 0x01;
      int lm = cl_hs_verify_landmark(&t), ch = cl_hs_verify_chip(&t);
      if (f != 7) ck_assert_msg(lm == CL_EBADSIG, "field %d byte %zu: landmark sig holds", f, i);
      if (f != 6) ck_assert_msg(ch == CL_EBADSIG, "field %d byte %zu: chip sig holds", f, i);
    }
  }
  /* Each signature under the other context: the two layouts differ, so one
   * party's signature can never stand for the other's. */
  cl_handshake t = hs;
  cl_key_sign(g_chip, t.chip_sig, l, sizeof l); /* chip key over the landmark layout */
  ck_assert_int_eq(cl_hs_verify_chip(&t), CL_EBADSIG);
  t = hs;
  memcpy(t.landmark_sig, t.chip_sig, CL_SIG_LEN);
  ck_assert_int_eq(cl_hs_verify_landmark(&t), CL_EBADSIG);
  /* Signed by a third key named as neither party. */
  t = hs;
  cl_key_sign(g_other, t.landmark_sig, l, sizeof l);
  ck_assert_int_eq(cl_hs_verify_landmark(&t), CL_EBADSIG);
  ck_assert_int_eq(cl_hs_verify_landmark(&hs), CL_OK);
  ck_assert_int_eq(cl_hs_verify_chip(&hs), CL_OK);
}
END_TEST

START_TEST(test_session_id_and_key_tamper) {
  const cl_handshake hs = example_hs();
  uint8_t id[32], key[32], tid[32], tkey[32];
  ck_assert_int_eq(cl_session_id(&hs, id), CL_OK);
  example_key(&hs, key);
  /* Every byte of the handshake body changes the id and the key (the
   * ephemeral keys change the key through the id even where X25519 is
   * not recomputed with them). */
  for (int f = 0; f < HS_BODY_FIELDS; f++) {
    size_t len = hs_field_len(f);
    for (size_t i = 0; i < len; i++) {
      cl_handshake t = hs;
      hs_field(&t, f, &len)[i] ^= 0x01;
      ck_assert_int_eq(cl_session_id(&t, tid), CL_OK);
      ck_assert_msg(memcmp(tid, id, 32) != 0, "field %d byte %zu: same id", f, i);
      /* A chip_eph of small order after the flip cannot happen for these
       * bytes; the landmark side's key must differ. */
      ck_assert_int_eq(cl_session_key(&t, CL_SIDE_LANDMARK, g_lsk, tkey), CL_OK);
      ck_assert_msg(memcmp(tkey, key, 32) != 0, "field %d byte %zu: same key", f, i);
    }
  }
  /* The signatures are in neither. */
  cl_handshake t = hs;
  memset(t.landmark_sig, 0, CL_SIG_LEN);
  memset(t.chip_sig, 0xff, CL_SIG_LEN);
  ck_assert_int_eq(cl_session_id(&t, tid), CL_OK);
  ck_assert_mem_eq(tid, id, 32);
  ck_assert_int_eq(cl_session_key(&t, CL_SIDE_CHIP, g_csk, tkey), CL_OK);
  ck_assert_mem_eq(tkey, key, 32);
  /* Another ephemeral secret on either side: another key. */
  uint8_t sk[32];
  memcpy(sk, g_csk, sizeof sk);
  sk[0] ^= 0x08; /* bit 3 survives X25519's clamping */
  ck_assert_int_eq(cl_session_key(&hs, CL_SIDE_CHIP, sk, tkey), CL_OK);
  ck_assert_int_ne(memcmp(tkey, key, 32), 0);
  /* A peer key of small order gives no session key, on either side. */
  static const uint8_t small[][32] = {
      {0},                                                           /* 0 */
      {1},                                                           /* 1 */
      {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
       0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
       0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00}, /* order 8 */
  };
  for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
    t = hs;
    memcpy(t.chip_eph, small[i], 32);
    memset(tkey, 0x55, sizeof tkey);
    ck_assert_msg(cl_session_key(&t, CL_SIDE_LANDMARK, g_lsk, tkey) == CL_EBADSIG, "point %zu",
                  i);
    t = hs;
    memcpy(t.landmark_eph, small[i], 32);
    ck_assert_msg(cl_session_key(&t, CL_SIDE_CHIP, g_csk, tkey) == CL_EBADSIG, "point %zu", i);
  }
}
END_TEST

START_TEST(test_answer_tamper) {
  const cl_handshake hs = example_hs();
  uint8_t key[32];
  example_key(&hs, key);
  cl_probe_entry e[2];
  example_entries(&hs, e);
  uint8_t l[CL_ANSWER_LAYOUT_LEN];
  cl_layout_answer(l, hs.suite, hs.landmark, hs.chip, e[0].seq, e[0].nonce);
  /* Every single-byte change of the layout gives another MAC. */
  for (size_t i = 0; i < sizeof l; i++) {
    for (int mask = 0x01; mask <= 0x80; mask <<= 7) {
      uint8_t t[CL_ANSWER_LAYOUT_LEN], mac[32];
      memcpy(t, l, sizeof t);
      t[i] ^= (uint8_t)mask;
      crypto_generichash(mac, 32, t, sizeof t, key, 32);
      ck_assert_msg(memcmp(mac, e[0].mac, 32) != 0, "byte %zu mask %#x: same MAC", i, mask);
    }
  }
  /* Every byte of the MAC, the key, the identities, the nonce, every bit of
   * the seq, and the suite. */
  for (size_t i = 0; i < 32; i++) {
    uint8_t m[32], k[32], lm[32], ch[32], n[32];
    memcpy(m, e[0].mac, 32);
    m[i] ^= 0x01;
    ck_assert_int_eq(cl_answer_check(key, hs.suite, hs.landmark, hs.chip, e[0].seq, e[0].nonce, m),
                     CL_EBADSIG);
    memcpy(k, key, 32);
    k[i] ^= 0x01;
    ck_assert_int_eq(
        cl_answer_check(k, hs.suite, hs.landmark, hs.chip, e[0].seq, e[0].nonce, e[0].mac),
        CL_EBADSIG);
    memcpy(lm, hs.landmark, 32);
    lm[i] ^= 0x01;
    ck_assert_int_eq(cl_answer_check(key, hs.suite, lm, hs.chip, e[0].seq, e[0].nonce, e[0].mac),
                     CL_EBADSIG);
    memcpy(ch, hs.chip, 32);
    ch[i] ^= 0x01;
    ck_assert_int_eq(
        cl_answer_check(key, hs.suite, hs.landmark, ch, e[0].seq, e[0].nonce, e[0].mac),
        CL_EBADSIG);
    memcpy(n, e[0].nonce, 32);
    n[i] ^= 0x01;
    ck_assert_int_eq(cl_answer_check(key, hs.suite, hs.landmark, hs.chip, e[0].seq, n, e[0].mac),
                     CL_EBADSIG);
  }
  for (int bit = 0; bit < 64; bit++)
    ck_assert_int_eq(cl_answer_check(key, hs.suite, hs.landmark, hs.chip, e[0].seq ^ (1ull << bit),
                                     e[0].nonce, e[0].mac),
                     CL_EBADSIG);
  ck_assert_int_eq(cl_answer_check(key, 2, hs.landmark, hs.chip, e[0].seq, e[0].nonce, e[0].mac),
                   CL_EBADSIG);
  /* One probe's MAC does not answer another. */
  ck_assert_int_eq(
      cl_answer_check(key, hs.suite, hs.landmark, hs.chip, e[1].seq, e[1].nonce, e[0].mac),
      CL_EBADSIG);
  ck_assert_int_eq(
      cl_answer_check(key, hs.suite, hs.landmark, hs.chip, e[0].seq, e[0].nonce, e[0].mac), CL_OK);
}
END_TEST

START_TEST(test_transcript_tamper) {
  const cl_handshake hs = example_hs();
  cl_probe_entry e[2];
  example_entries(&hs, e);
  uint8_t sig[CL_SIG_LEN], l[CL_TRANSCRIPT_LAYOUT_MAX];
  ck_assert_int_eq(cl_transcript_sign(&hs, e, 2, g_chip, sig), CL_OK);
  size_t n = cl_layout_transcript(l, &hs, e, 2);
  flip_layout_fails(hs.chip, sig, l, n);

  for (size_t i = 0; i < CL_SIG_LEN; i++) {
    uint8_t s[CL_SIG_LEN];
    memcpy(s, sig, sizeof s);
    s[i] ^= 0x01;
    ck_assert_msg(cl_transcript_verify(&hs, e, 2, s) == CL_EBADSIG, "sig byte %zu", i);
  }
  /* Every entry's seq, nonce and MAC. */
  for (int k = 0; k < 2; k++) {
    for (size_t i = 0; i < 32; i++) {
      cl_probe_entry f[2];
      memcpy(f, e, sizeof f);
      f[k].nonce[i] ^= 0x01;
      ck_assert_int_eq(cl_transcript_verify(&hs, f, 2, sig), CL_EBADSIG);
      memcpy(f, e, sizeof f);
      f[k].mac[i] ^= 0x01;
      ck_assert_int_eq(cl_transcript_verify(&hs, f, 2, sig), CL_EBADSIG);
    }
    for (int bit = 0; bit < 64; bit++) {
      cl_probe_entry f[2];
      memcpy(f, e, sizeof f);
      f[k].seq ^= 1ull << bit;
      ck_assert_int_eq(cl_transcript_verify(&hs, f, 2, sig), CL_EBADSIG);
    }
  }
  /* Fewer entries, entries swapped. */
  ck_assert_int_eq(cl_transcript_verify(&hs, e, 1, sig), CL_EBADSIG);
  cl_probe_entry sw[2] = {e[1], e[0]};
  ck_assert_int_eq(cl_transcript_verify(&hs, sw, 2, sig), CL_EBADSIG);
  /* Every byte of the handshake body moves the session id, so the same
   * entries in another session fail; the handshake signatures do not. */
  for (int f = 0; f < HS_FIELDS; f++) {
    size_t len = hs_field_len(f);
    for (size_t i = 0; i < len; i++) {
      cl_handshake t = hs;
      hs_field(&t, f, &len)[i] ^= 0x01;
      int rc = cl_transcript_verify(&t, e, 2, sig);
      if (f < HS_BODY_FIELDS)
        ck_assert_msg(rc == CL_EBADSIG, "field %d byte %zu verified", f, i);
      else
        ck_assert_int_eq(rc, CL_OK);
    }
  }
  /* Signed by another key. */
  uint8_t other[CL_SIG_LEN];
  ck_assert_int_eq(cl_transcript_sign(&hs, e, 2, g_other, other), CL_OK);
  ck_assert_int_eq(cl_transcript_verify(&hs, e, 2, other), CL_EBADSIG);
  ck_assert_int_eq(cl_transcript_verify(&hs, e, 2, sig), CL_OK);
}
END_TEST

START_TEST(test_measurement_tamper) {
  const cl_measurement m = *example_measurement();
  uint8_t l[CL_MEASUREMENT_LAYOUT_MAX];
  size_t n = cl_layout_measurement(l, &m);
  flip_layout_fails(m.hs.landmark, m.sig, l, n);

  static cl_measurement t;
#define EXPECT_BAD(what)                                                                    \
  ck_assert_msg(cl_measurement_verify(&t) != CL_OK, "%s verified", what);                   \
  ck_assert_msg(cl_measurement_verify_landmark(&t) != CL_OK, "%s: record signature holds", \
                what)
  for (int f = 0; f < HS_FIELDS; f++) {
    size_t len = hs_field_len(f);
    for (size_t i = 0; i < len; i++) {
      t = m;
      hs_field(&t.hs, f, &len)[i] ^= 0x01;
      EXPECT_BAD("handshake field");
    }
  }
  for (size_t i = 0; i < CL_SIG_LEN; i++) {
    t = m;
    t.sig[i] ^= 0x01;
    ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
    ck_assert_int_eq(cl_measurement_verify_landmark(&t), CL_EBADSIG);
    ck_assert_int_eq(cl_measurement_verify_chip(&t), CL_OK);
    t = m;
    t.transcript_sig[i] ^= 0x01;
    EXPECT_BAD("transcript_sig");
    ck_assert_int_eq(cl_measurement_verify_chip(&t), CL_EBADSIG);
  }
  for (uint32_t k = 0; k < m.count; k++) {
    for (size_t i = 0; i < 32; i++) {
      t = m;
      t.probes[k].nonce[i] ^= 0x01;
      EXPECT_BAD("nonce");
      ck_assert_int_eq(cl_measurement_verify_chip(&t), CL_EBADSIG);
      t = m;
      t.probes[k].mac[i] ^= 0x01;
      EXPECT_BAD("mac");
      ck_assert_int_eq(cl_measurement_verify_chip(&t), CL_EBADSIG);
    }
    t = m;
    t.probes[k].seq += 100;
    EXPECT_BAD("seq");
    t = m;
    t.probes[k].rtt_ns += 1000000; /* not the minimum: the landmark's signature */
    EXPECT_BAD("rtt");
  }
  t = m;
  t.probes_sent++;
  EXPECT_BAD("probes_sent");
  t = m;
  t.measured_unix_ns++;
  EXPECT_BAD("measured_unix_ns");
  t = m;
  t.count = 1; /* the first entry alone: rtt_ns is no longer its minimum */
  EXPECT_BAD("count");
  t = m;
  t.count = 1;
  t.rtt_ns = t.probes[0].rtt_ns; /* consistent, but not what was signed */
  EXPECT_BAD("count and rtt");
#undef EXPECT_BAD

  /* The landmark re-signing a record does not launder the chip's part:
   * a changed MAC or nonce, or another session's handshake signature. */
  t = m;
  t.probes[0].mac[3] ^= 0x01;
  ck_assert_int_eq(cl_measurement_sign(&t, g_landmark), CL_OK);
  ck_assert_int_eq(cl_measurement_verify_landmark(&t), CL_OK);
  ck_assert_int_eq(cl_measurement_verify_chip(&t), CL_EBADSIG);
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
  t = m;
  t.hs.chip_sig[0] ^= 0x01;
  ck_assert_int_eq(cl_measurement_sign(&t, g_landmark), CL_OK);
  ck_assert_int_eq(cl_measurement_verify_chip(&t), CL_OK); /* the id has no signatures */
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);  /* the audit's check does */
  /* Signed by a key the record does not name. */
  t = m;
  ck_assert_int_eq(cl_measurement_sign(&t, g_other), CL_EINVAL);
  t = m;
  cl_key_sign(g_other, t.sig, l, n);
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EBADSIG);
  /* The RTTs are the landmark's to vouch for: changed consistently and
   * re-signed by the landmark, the record verifies. */
  t = m;
  t.probes[1].rtt_ns = 999;
  t.rtt_ns = 999;
  ck_assert_int_eq(cl_measurement_sign(&t, g_landmark), CL_OK);
  ck_assert_int_eq(cl_measurement_verify(&t), CL_OK);
}
END_TEST

START_TEST(test_measurement_check) {
  const cl_measurement m = *example_measurement();
  static cl_measurement t;
  char err[120];
  ck_assert_int_eq(cl_measurement_check(&m, err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_measurement_check(&m, NULL, 0), CL_OK);

  t = m;
  t.count = 0;
  ck_assert_int_eq(cl_measurement_check(&t, err, sizeof err), CL_EMALFORMED);
  ck_assert_str_eq(err, "count 0 is not within 1..16");
  t.count = CL_MAX_BURST + 1;
  ck_assert_int_eq(cl_measurement_check(&t, err, sizeof err), CL_EMALFORMED);
  ck_assert_str_eq(err, "count 17 is not within 1..16");

  t = m;
  t.probes[1].seq = t.probes[0].seq;
  ck_assert_int_eq(cl_measurement_check(&t, err, sizeof err), CL_EMALFORMED);
  ck_assert_str_eq(err, "probe 1 seq 42 does not follow seq 42");
  t.probes[1].seq = 41;
  ck_assert_int_eq(cl_measurement_check(&t, err, sizeof err), CL_EMALFORMED);

  t = m;
  t.probes_sent = 1;
  ck_assert_int_eq(cl_measurement_check(&t, err, sizeof err), CL_EMALFORMED);
  ck_assert_str_eq(err, "probes_sent 1 is below count 2");
  t.probes_sent = 2; /* every probe sent was accepted */
  ck_assert_int_eq(cl_measurement_check(&t, err, sizeof err), CL_OK);

  t = m;
  t.rtt_ns = EX_RTT_A;
  ck_assert_int_eq(cl_measurement_check(&t, err, sizeof err), CL_EMALFORMED);
  ck_assert_str_eq(err, "rtt_ns 1300000 is not the smallest probe rtt 1234567");
  t.rtt_ns = EX_RTT_C - 1;
  ck_assert_int_eq(cl_measurement_check(&t, NULL, 0), CL_EMALFORMED);
  /* A malformed record is refused before any signature: signing refuses
   * it, and verification names it malformed, not a bad signature. */
  ck_assert_int_eq(cl_measurement_sign(&t, g_landmark), CL_EINVAL);
  ck_assert_int_eq(cl_measurement_verify_landmark(&t), CL_EMALFORMED);
  ck_assert_int_eq(cl_measurement_verify_chip(&t), CL_EMALFORMED);
  ck_assert_int_eq(cl_measurement_verify(&t), CL_EMALFORMED);
}
END_TEST

static Suite *layout_suite(void) {
  Suite *s = suite_create("layout");
  TCase *tc = tcase_create("vectors");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_document_shows_exactly_these_bytes);
  tcase_add_test(tc, test_layout_lengths);
  tcase_add_test(tc, test_keys_and_ephemerals);
  tcase_add_test(tc, test_handshake_vectors);
  tcase_add_test(tc, test_session_id_and_key_vectors);
  tcase_add_test(tc, test_answer_vectors);
  tcase_add_test(tc, test_transcript_vector);
  tcase_add_test(tc, test_measurement_vector);
  tcase_add_test(tc, test_storage_blobs);
  tcase_add_test(tc, test_frame_vectors);
  tcase_add_test(tc, test_be_helpers);
  tcase_add_test(tc, test_suites);
  suite_add_tcase(s, tc);

  TCase *tt = tcase_create("tamper");
  tcase_add_checked_fixture(tt, setup, teardown);
  tcase_set_timeout(tt, 120);
  tcase_add_test(tt, test_handshake_tamper);
  tcase_add_test(tt, test_session_id_and_key_tamper);
  tcase_add_test(tt, test_answer_tamper);
  tcase_add_test(tt, test_transcript_tamper);
  tcase_add_test(tt, test_measurement_tamper);
  tcase_add_test(tt, test_measurement_check);
  suite_add_tcase(s, tt);
  return s;
}

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  return tu_run_suite(layout_suite());
}
