/*
 * The attestation layouts (versions 1 and 2), signature, chain hash and
 * digests (lib/wire/cl_attest.h) against fixed test vectors.
 *
 * Keys come from fixed seeds (all bytes 0x11 for the chip, 0x22 for the
 * verifier, 0x33 for the site landmark, 0x44, 0x55, 0x66 and 0x77 for four
 * excluded landmarks). Every field of the vector holds a value that differs
 * from its neighbours' (distinct verdict codes, negative centre and margin),
 * chosen to expose a misplaced, swapped or wrongly encoded field rather than
 * to be a plausible verdict. The expected layout is built here by hand from
 * the table of docs/ATTESTATION.md (context string, one NUL, fields in table
 * order with explicit big-endian shifts, negative values as literal two's
 * complement bytes) and also pinned as hex; Ed25519 is deterministic, so the
 * signature and the chain hash are pinned too. Any change to the format
 * breaks this test. The rest checks that every single-byte change of the
 * signed bytes or the signature makes verification fail, and the sorting
 * rules of the digests. Version 2 is the same vector under the v2 context
 * with the three input digests appended, each digest pinned from its own
 * vector (docs/ATTESTATION.md lists the inputs' and outputs' hex).
 */
#include "cl_attest.h"
#include "cl_err.h"
#include "cl_key.h"

#include <check.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the vector ------------------------------------------------------------ */

#define V_ROUND_END_NS 1700000100000000000ull
#define V_WINDOW_NS 300000000000ull
#define V_SPEED 199861638ull
#define V_LAT_E7 (-338688000)
#define V_LON_E7 (-1512093000)
#define V_RADIUS_M 123456789ull
#define V_MARGIN_M (-1234)
#define V_N_MEASUREMENTS 5u

static const char CHIP_PK_HEX[] =
    "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737";
static const char VERIFIER_PK_HEX[] =
    "a09aa5f47a6759802ff955f8dc2d2a14a5c99d23be97f864127ff9383455a4f0";
static const char SITE_PK_HEX[] =
    "17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce";

/* SHA-256("BEL,DEU,FRA"), of the four excluded keys sorted, of the five
 * measurement signatures sorted, and of the empty string. */
static const char ALLOWED_DIGEST_HEX[] =
    "12374fcfa8c273440327ae09f2f7d9e30a9c93d0149ab735e535234e830cab4e";
static const char EXCLUDED_DIGEST_HEX[] =
    "ab4cb27312357aee2a694948d36d65b128a36fd1ff9a00c8a0fa21b96e43f9bf";
static const char MEASUREMENTS_DIGEST_HEX[] =
    "85a7df86dbc339fb7b21f6fc5f17f1a9adcf91d4bbb309ad6a7d19a596ab0bc0";
static const char EMPTY_DIGEST_HEX[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static const char LAYOUT_HEX[] =
    "636869706c6f63207631206174746573746174696f6e00d04ab232742bb4ab3a"
    "1368bd4615e4e6d0224ab71a016baf8520a332c9778737a09aa5f47a6759802f"
    "f955f8dc2d2a14a5c99d23be97f864127ff9383455a4f017979d157ea0e80000"
    "000045d964b800a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8"
    "b9babbbcbdbebf01020304000000000be9a586ebd00800a5df4ab80000000007"
    "5bcd1517cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e1"
    "8080cefffffffffffffb2e12374fcfa8c273440327ae09f2f7d9e30a9c93d014"
    "9ab735e535234e830cab4eab4cb27312357aee2a694948d36d65b128a36fd1ff"
    "9a00c8a0fa21b96e43f9bf0000000585a7df86dbc339fb7b21f6fc5f17f1a9ad"
    "cf91d4bbb309ad6a7d19a596ab0bc0";
static const char SIG_HEX[] =
    "e85001cd2ac52bd99852bdf5a5a27a8a5e6c0ab82993c64b2024028590c07e09"
    "d7d2256c9f1c309fda0d4bebe723673f67dab07780fa1d513ea2172218717d0d";
static const char HASH_HEX[] = "3eda7abd23a2b0fd9bd562a259e5fb3bccc38e85c8645988c4909da7e1d0f2a4";

/* Version 2 digest vectors. The site: (-33.8688, 151.2093). */
#define V2_SITE_LAT (-33.8688)
#define V2_SITE_LON 151.2093
static const char SITE_INPUT_HEX[] =
    "636869706c6f63207632207369746500c040ef34d6a161e54062e6b295e9e1b1";
static const char SITE_DIGEST_HEX[] =
    "5e952b495223ac8befc9cf48d9e17174e26c176707e2ed648d946e70f6727440";
/* The landmarks: the keys of seeds 0x44, 0x55, 0x66 at Paris, Frankfurt and
 * Sydney, given in that order; the hashed input is the 21-byte context and
 * the three 48-byte entries sorted bytewise. */
static const double V2_LM_POS[3][2] = {{48.8566, 2.3522}, {50.1109, 8.6821}, {-33.8688, 151.2093}};
static const char LANDMARKS_INPUT_HEX[] =
    "636869706c6f63207632206c616e646d61726b730034b4d9043156cb6dcf0beb"
    "0a2949b7559c940d2bcb6dbe8c53a9b30278e3a746c040ef34d6a161e54062e6"
    "b295e9e1b1c6822637c7d310ec57627be00ba259d253749f4aaf644470cffbe5"
    "3a35f7324240490e31f8a0902e40215d3c36113405d759793bbc13a2819a827c"
    "76adb6fba8a49aee007f49f2d0992d99b825ad2c4840486da5119ce0764002d1"
    "4e3bcd35a8";
static const char LANDMARKS_DIGEST_HEX[] =
    "625db1d3d36b467631808cd35eaa68bfaedbe3e494efa3e2bf6d9b76cdcbced1";
static const char LANDMARKS_EMPTY_HEX[] =
    "7f8bdbf5c705dd0e8f9a57e96c6f79877b327b48a98429c81731ef69fe4d9dda";
/* The regions: FRA, DEU, BEL (in that order) with geometry digests of 32
 * bytes 0x03, 0x02 and 0x01. */
static const char REGIONS_INPUT_HEX[] =
    "636869706c6f6320763220726567696f6e730042454c00010101010101010101"
    "0101010101010101010101010101010101010101010101444555000202020202"
    "0202020202020202020202020202020202020202020202020202024652410003"
    "03030303030303030303030303030303030303030303030303030303030303";
static const char REGIONS_DIGEST_HEX[] =
    "b3f442928619c30c8101acfa32f40c1b050261c6b99da5b7da787f21948a79a6";
static const char REGIONS_EMPTY_HEX[] =
    "3580014d0609f8aea292a5f3f9b9eb0f92f379b966ccd7f106af311c18f60e3b";
/* The v2 layout of the vector (its v1 fields and the three digests above),
 * its signature and its chain hash. */
static const char LAYOUT_V2_HEX[] =
    "636869706c6f63207632206174746573746174696f6e00d04ab232742bb4ab3a"
    "1368bd4615e4e6d0224ab71a016baf8520a332c9778737a09aa5f47a6759802f"
    "f955f8dc2d2a14a5c99d23be97f864127ff9383455a4f017979d157ea0e80000"
    "000045d964b800a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8"
    "b9babbbcbdbebf01020304000000000be9a586ebd00800a5df4ab80000000007"
    "5bcd1517cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e1"
    "8080cefffffffffffffb2e12374fcfa8c273440327ae09f2f7d9e30a9c93d014"
    "9ab735e535234e830cab4eab4cb27312357aee2a694948d36d65b128a36fd1ff"
    "9a00c8a0fa21b96e43f9bf0000000585a7df86dbc339fb7b21f6fc5f17f1a9ad"
    "cf91d4bbb309ad6a7d19a596ab0bc05e952b495223ac8befc9cf48d9e17174e2"
    "6c176707e2ed648d946e70f6727440625db1d3d36b467631808cd35eaa68bfae"
    "dbe3e494efa3e2bf6d9b76cdcbced1b3f442928619c30c8101acfa32f40c1b05"
    "0261c6b99da5b7da787f21948a79a6";
static const char SIG_V2_HEX[] =
    "ca1eda06d6b5f2faa959c0a0b5e951c4405cf927decad035adfe5f13be48c895"
    "f71aaa79776831da545b3f0525a9fce3f237c99c5b521280ad087da073361809";
static const char HASH_V2_HEX[] =
    "38ed0c0e000635222127dc4f50720e5b11d5e2b2de5f2baf7e8e2529116c5849";

typedef struct {
  cl_key *chip, *verifier, *site, *excluded[4];
  uint8_t excluded_pk[4][CL_PK_LEN];
  uint8_t sigs[V_N_MEASUREMENTS][CL_SIG_LEN];
  cl_attestation a;
} vector;

static cl_key *key_from_byte(uint8_t b) {
  uint8_t seed[32];
  memset(seed, b, sizeof seed);
  cl_key *k = NULL;
  ck_assert_int_eq(cl_key_from_seed(&k, seed), CL_OK);
  return k;
}

static void hex_to(uint8_t *out, size_t len, const char *hex) {
  ck_assert_uint_eq(strlen(hex), 2 * len);
  ck_assert_int_eq(cl_hex_decode(out, len, hex, strlen(hex)), CL_OK);
}

static void assert_hex(const uint8_t *got, size_t len, const char *want_hex) {
  char *hex = malloc(2 * len + 1);
  ck_assert_ptr_nonnull(hex);
  cl_hex_encode(hex, got, len);
  ck_assert_str_eq(hex, want_hex);
  free(hex);
}

/* The vector's attestation, unsigned. */
static void vector_init(vector *v) {
  memset(v, 0, sizeof *v);
  v->chip = key_from_byte(0x11);
  v->verifier = key_from_byte(0x22);
  v->site = key_from_byte(0x33);
  for (int i = 0; i < 4; i++) {
    v->excluded[i] = key_from_byte((uint8_t)(0x44 + 0x11 * i));
    memcpy(v->excluded_pk[i], cl_key_public(v->excluded[i]), CL_PK_LEN);
  }
  /* Measurement signatures given out of order: 0xc0.., 0x90.., ... 0x00... */
  for (int i = 0; i < (int)V_N_MEASUREMENTS; i++)
    for (int j = 0; j < CL_SIG_LEN; j++) v->sigs[i][j] = (uint8_t)((4 - i) * 0x30 + j);

  cl_attestation *a = &v->a;
  a->version = CL_ATT_V1;
  memcpy(a->chip, cl_key_public(v->chip), CL_PK_LEN);
  memcpy(a->verifier, cl_key_public(v->verifier), CL_PK_LEN);
  a->round_end_ns = V_ROUND_END_NS;
  a->window_ns = V_WINDOW_NS;
  for (int i = 0; i < CL_HASH_LEN; i++) a->prev_hash[i] = (uint8_t)(0xa0 + i);
  a->consistency = CL_ATT_INSUFFICIENT;
  a->site = CL_ATT_SITE_EXCLUDED;
  a->region = CL_ATT_REGION_UNDETERMINED;
  a->n_excluded = 4;
  a->speed_m_per_s = V_SPEED;
  a->centre_lat_e7 = V_LAT_E7;
  a->centre_lon_e7 = V_LON_E7;
  a->radius_m = V_RADIUS_M;
  memcpy(a->site_landmark, cl_key_public(v->site), CL_PK_LEN);
  a->site_margin_m = V_MARGIN_M;
  const char *codes[] = {"FRA", "DEU", "BEL"};
  ck_assert_int_eq(cl_attest_digest_codes(codes, 3, a->allowed_digest), CL_OK);
  ck_assert_int_eq(cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN])v->excluded_pk, 4,
                                         a->excluded_digest),
                   CL_OK);
  a->n_measurements = V_N_MEASUREMENTS;
  ck_assert_int_eq(cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])v->sigs, V_N_MEASUREMENTS,
                                         a->measurements_digest),
                   CL_OK);
}

/* The inputs of the v2 digest vectors. */
static void v2_landmarks(const vector *v, cl_attest_landmark lms[3]) {
  for (int i = 0; i < 3; i++) {
    memcpy(lms[i].pk, v->excluded_pk[i], CL_PK_LEN);
    lms[i].lat = V2_LM_POS[i][0];
    lms[i].lon = V2_LM_POS[i][1];
  }
}

static const char *const V2_CODES[3] = {"FRA", "DEU", "BEL"};

static void v2_geometry(uint8_t g[3][CL_HASH_LEN]) {
  for (int i = 0; i < 3; i++) memset(g[i], 3 - i, CL_HASH_LEN);
}

/* The vector as version 2, unsigned: its digests from the vectors above. */
static void vector_v2(vector *v) {
  cl_attestation *a = &v->a;
  a->version = CL_ATT_V2;
  cl_attest_digest_site(V2_SITE_LAT, V2_SITE_LON, a->site_digest);
  cl_attest_landmark lms[3];
  v2_landmarks(v, lms);
  ck_assert_int_eq(cl_attest_digest_landmarks(lms, 3, a->landmarks_digest), CL_OK);
  uint8_t g[3][CL_HASH_LEN];
  v2_geometry(g);
  ck_assert_int_eq(cl_attest_digest_regions(V2_CODES, (const uint8_t(*)[CL_HASH_LEN])g, 3,
                                            a->regions_digest),
                   CL_OK);
}

static void vector_fini(vector *v) {
  cl_key_destroy(&v->chip);
  cl_key_destroy(&v->verifier);
  cl_key_destroy(&v->site);
  for (int i = 0; i < 4; i++) cl_key_destroy(&v->excluded[i]);
}

/* ---- building and parsing by hand ------------------------------------------ */

/* Writes the n low bytes of v, most significant first. */
static uint8_t *be(uint8_t *p, uint64_t v, int n) {
  for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  return p + n;
}

static uint8_t *bytes(uint8_t *p, const void *src, size_t n) {
  memcpy(p, src, n);
  return p + n;
}

/* Asserts that the next field starts at the offset of the documented table. */
#define AT(off) ck_assert_int_eq((int)(p - out), (off))

/* The 303 bytes of docs/ATTESTATION.md for vector v, written field by field
 * without the library's encoders. */
static void hand_layout(uint8_t out[303], const vector *v) {
  const cl_attestation *a = &v->a;
  uint8_t *p = out;
  AT(0);
  p = bytes(p, "chiploc v1 attestation", 22);
  *p++ = 0x00;
  AT(23);
  p = bytes(p, cl_key_public(v->chip), 32);
  AT(55);
  p = bytes(p, cl_key_public(v->verifier), 32);
  AT(87);
  p = be(p, 1700000100000000000ull, 8);
  AT(95);
  p = be(p, 300000000000ull, 8);
  AT(103);
  for (int i = 0; i < 32; i++) *p++ = (uint8_t)(0xa0 + i);
  AT(135);
  *p++ = 1; /* INSUFFICIENT */
  AT(136);
  *p++ = 2; /* SITE_EXCLUDED */
  AT(137);
  *p++ = 3; /* UNDETERMINED */
  AT(138);
  *p++ = 4; /* n_excluded */
  AT(139);
  p = be(p, 199861638u, 8);
  AT(147);
  p = bytes(p, "\xeb\xd0\x08\x00", 4); /* -338688000 */
  AT(151);
  p = bytes(p, "\xa5\xdf\x4a\xb8", 4); /* -1512093000 */
  AT(155);
  p = be(p, 123456789u, 8);
  AT(163);
  p = bytes(p, cl_key_public(v->site), 32);
  AT(195);
  p = bytes(p, "\xff\xff\xff\xff\xff\xff\xfb\x2e", 8); /* -1234 */
  AT(203);
  p = bytes(p, a->allowed_digest, 32);
  AT(235);
  p = bytes(p, a->excluded_digest, 32);
  AT(267);
  p = be(p, 5, 4);
  AT(271);
  p = bytes(p, a->measurements_digest, 32);
  AT(303);
}

static uint64_t get_be(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

/* The v2 layout of vector v: the v1 fields under the v2 context, then the
 * three digests. */
static void hand_layout_v2(uint8_t out[399], const vector *v) {
  hand_layout(out, v);
  memcpy(out, "chiploc v2 attestation", 22);
  uint8_t *p = out + 303;
  AT(303);
  p = bytes(p, v->a.site_digest, 32);
  AT(335);
  p = bytes(p, v->a.landmarks_digest, 32);
  AT(367);
  p = bytes(p, v->a.regions_digest, 32);
  AT(399);
}

/* The inverse of the layout: every field back from its bytes (the context
 * is not part of the struct; the version is the layout's, by its length n,
 * 303 or 399). */
static void hand_parse(cl_attestation *a, const uint8_t *in, size_t n) {
  memset(a, 0, sizeof *a);
  a->version = n == 399 ? CL_ATT_V2 : CL_ATT_V1;
  memcpy(a->chip, in + 23, 32);
  memcpy(a->verifier, in + 55, 32);
  a->round_end_ns = get_be(in + 87, 8);
  a->window_ns = get_be(in + 95, 8);
  memcpy(a->prev_hash, in + 103, 32);
  a->consistency = in[135];
  a->site = in[136];
  a->region = in[137];
  a->n_excluded = in[138];
  a->speed_m_per_s = get_be(in + 139, 8);
  a->centre_lat_e7 = (int32_t)(uint32_t)get_be(in + 147, 4);
  a->centre_lon_e7 = (int32_t)(uint32_t)get_be(in + 151, 4);
  a->radius_m = get_be(in + 155, 8);
  memcpy(a->site_landmark, in + 163, 32);
  a->site_margin_m = (int64_t)get_be(in + 195, 8);
  memcpy(a->allowed_digest, in + 203, 32);
  memcpy(a->excluded_digest, in + 235, 32);
  a->n_measurements = (uint32_t)get_be(in + 267, 4);
  memcpy(a->measurements_digest, in + 271, 32);
  if (a->version == CL_ATT_V2) {
    memcpy(a->site_digest, in + 303, 32);
    memcpy(a->landmarks_digest, in + 335, 32);
    memcpy(a->regions_digest, in + 367, 32);
  }
}

/* ---- layout, signature, hash ------------------------------------------------- */

START_TEST(test_keys_from_seeds) {
  vector v;
  vector_init(&v);
  assert_hex(cl_key_public(v.chip), CL_PK_LEN, CHIP_PK_HEX);
  assert_hex(cl_key_public(v.verifier), CL_PK_LEN, VERIFIER_PK_HEX);
  assert_hex(cl_key_public(v.site), CL_PK_LEN, SITE_PK_HEX);
  vector_fini(&v);
}
END_TEST

START_TEST(test_layout_by_hand) {
  vector v;
  vector_init(&v);
  ck_assert_uint_eq(CL_ATTESTATION_LAYOUT_V1_LEN, 303);
  ck_assert_uint_eq(CL_ATTESTATION_LAYOUT_V2_LEN, 399);
  ck_assert_uint_eq(CL_ATTESTATION_LAYOUT_MAX, 399);
  ck_assert_uint_eq(CL_ATTESTATION_LAYOUT_LEN, CL_ATTESTATION_LAYOUT_MAX);
  ck_assert_uint_eq(sizeof CL_CTX_ATTESTATION, 23);
  uint8_t want[303], got[CL_ATTESTATION_LAYOUT_MAX];
  hand_layout(want, &v);
  memset(got, 0xee, sizeof got);
  ck_assert_uint_eq(cl_attest_layout(got, &v.a), 303);
  for (size_t i = 0; i < 303; i++)
    ck_assert_msg(got[i] == want[i], "byte %zu: 0x%02x, wanted 0x%02x", i, got[i], want[i]);
  for (size_t i = 303; i < sizeof got; i++) ck_assert_uint_eq(got[i], 0xee); /* untouched */
  assert_hex(got, 303, LAYOUT_HEX);
  /* The v2 fields are not part of version 1. */
  cl_attestation filled = v.a;
  memset(filled.site_digest, 0x5a, CL_HASH_LEN);
  memset(filled.landmarks_digest, 0x5b, CL_HASH_LEN);
  memset(filled.regions_digest, 0x5c, CL_HASH_LEN);
  uint8_t same[CL_ATTESTATION_LAYOUT_MAX];
  ck_assert_uint_eq(cl_attest_layout(same, &filled), 303);
  ck_assert_mem_eq(same, want, 303);
  /* The digests inside it, computed independently. */
  uint8_t d[CL_HASH_LEN];
  crypto_hash_sha256(d, (const uint8_t *)"BEL,DEU,FRA", 11);
  ck_assert_mem_eq(d, v.a.allowed_digest, CL_HASH_LEN);
  assert_hex(v.a.allowed_digest, CL_HASH_LEN, ALLOWED_DIGEST_HEX);
  assert_hex(v.a.excluded_digest, CL_HASH_LEN, EXCLUDED_DIGEST_HEX);
  assert_hex(v.a.measurements_digest, CL_HASH_LEN, MEASUREMENTS_DIGEST_HEX);
  /* Parsing the layout by hand gives back the struct's fields. */
  cl_attestation back;
  hand_parse(&back, got, 303);
  ck_assert_int_eq(back.centre_lat_e7, V_LAT_E7);
  ck_assert_int_eq(back.centre_lon_e7, V_LON_E7);
  ck_assert_int_eq(back.site_margin_m, V_MARGIN_M);
  ck_assert_uint_eq(back.n_measurements, V_N_MEASUREMENTS);
  uint8_t again[CL_ATTESTATION_LAYOUT_MAX];
  ck_assert_uint_eq(cl_attest_layout(again, &back), 303);
  ck_assert_mem_eq(again, want, 303);
  vector_fini(&v);
}
END_TEST

START_TEST(test_signature_and_hash_pinned) {
  vector v;
  vector_init(&v);
  ck_assert_int_eq(cl_attest_sign(&v.a, v.verifier), CL_OK);
  assert_hex(v.a.sig, CL_SIG_LEN, SIG_HEX);
  ck_assert_int_eq(cl_attest_verify(&v.a), CL_OK);
  /* The signature is a plain Ed25519 signature over the layout bytes. */
  uint8_t lay[303];
  hex_to(lay, sizeof lay, LAYOUT_HEX);
  ck_assert_int_eq(cl_sig_verify(cl_key_public(v.verifier), v.a.sig, lay, sizeof lay), CL_OK);
  ck_assert_int_eq(crypto_sign_verify_detached(v.a.sig, lay, sizeof lay,
                                               cl_key_public(v.verifier)),
                   0);

  /* Chain hash: SHA-256("chiploc v1 attestation-hash" NUL || layout || sig). */
  uint8_t h[CL_HASH_LEN], want[CL_HASH_LEN];
  ck_assert_int_eq(cl_attest_hash(&v.a, h), CL_OK);
  assert_hex(h, CL_HASH_LEN, HASH_HEX);
  uint8_t buf[28 + 303 + 64];
  memcpy(buf, "chiploc v1 attestation-hash", 27);
  buf[27] = 0x00;
  memcpy(buf + 28, lay, 303);
  memcpy(buf + 28 + 303, v.a.sig, 64);
  crypto_hash_sha256(want, buf, sizeof buf);
  ck_assert_mem_eq(h, want, CL_HASH_LEN);

  /* Another verifier's key does not verify it; a record it signs differs. */
  cl_attestation other = v.a;
  memcpy(other.verifier, cl_key_public(v.chip), CL_PK_LEN);
  ck_assert_int_eq(cl_attest_verify(&other), CL_EBADSIG);
  cl_attest_sign(&other, v.chip);
  ck_assert_int_eq(cl_attest_verify(&other), CL_OK);
  ck_assert_int_ne(memcmp(other.sig, v.a.sig, CL_SIG_LEN), 0);
  vector_fini(&v);
}
END_TEST

/* Every single-bit change (bits 0 and 7) of every signed byte of the
 * vector's layout of `version`, and of its signature, fails verification
 * and changes the chain hash. */
static void every_byte_flip(uint8_t version) {
  vector v;
  vector_init(&v);
  if (version == CL_ATT_V2) vector_v2(&v);
  cl_attest_sign(&v.a, v.verifier);
  uint8_t lay[CL_ATTESTATION_LAYOUT_MAX], h0[CL_HASH_LEN];
  size_t n = cl_attest_layout(lay, &v.a);
  ck_assert_uint_eq(n, version == CL_ATT_V2 ? 399 : 303);
  cl_attest_hash(&v.a, h0);
  for (size_t i = 0; i < n; i++) {
    for (int bit = 0; bit < 8; bit += 7) {
      uint8_t flipped[CL_ATTESTATION_LAYOUT_MAX];
      memcpy(flipped, lay, n);
      flipped[i] ^= (uint8_t)(1u << bit);
      /* Signed bytes, context included: the raw signature check fails. */
      ck_assert_msg(cl_sig_verify(v.a.verifier, v.a.sig, flipped, n) == CL_EBADSIG,
                    "v%u byte %zu bit %d", version, i, bit);
      if (i < sizeof CL_CTX_ATTESTATION) continue;
      /* A field byte: the record carrying that field value fails, and its
       * chain hash changes. */
      cl_attestation t;
      hand_parse(&t, flipped, n);
      memcpy(t.sig, v.a.sig, CL_SIG_LEN);
      uint8_t relaid[CL_ATTESTATION_LAYOUT_MAX];
      ck_assert_uint_eq(cl_attest_layout(relaid, &t), n);
      ck_assert_mem_eq(relaid, flipped, n);
      ck_assert_msg(cl_attest_verify(&t) == CL_EBADSIG, "v%u byte %zu bit %d verified", version,
                    i, bit);
      uint8_t h[CL_HASH_LEN];
      cl_attest_hash(&t, h);
      ck_assert_msg(memcmp(h, h0, CL_HASH_LEN) != 0, "v%u byte %zu bit %d: same hash", version,
                    i, bit);
    }
  }
  /* Any change of the signature fails too, and changes the hash. */
  for (size_t i = 0; i < CL_SIG_LEN; i++) {
    cl_attestation t = v.a;
    t.sig[i] ^= 0x01;
    ck_assert_msg(cl_attest_verify(&t) == CL_EBADSIG, "signature byte %zu", i);
    uint8_t h[CL_HASH_LEN];
    cl_attest_hash(&t, h);
    ck_assert_msg(memcmp(h, h0, CL_HASH_LEN) != 0, "signature byte %zu: same hash", i);
  }
  vector_fini(&v);
}

START_TEST(test_every_byte_flip_fails) {
  every_byte_flip(CL_ATT_V1);
  every_byte_flip(CL_ATT_V2);
}
END_TEST

START_TEST(test_first_record_and_zero_fields) {
  /* A first record: prev_hash and the site landmark are zeros, no
   * measurements, no regions; the layout still has its fixed size and
   * carries the digests of nothing. */
  vector v;
  vector_init(&v);
  cl_attestation a;
  memset(&a, 0, sizeof a);
  a.version = CL_ATT_V1;
  memcpy(a.chip, cl_key_public(v.chip), CL_PK_LEN);
  memcpy(a.verifier, cl_key_public(v.verifier), CL_PK_LEN);
  a.round_end_ns = V_ROUND_END_NS;
  a.window_ns = V_WINDOW_NS;
  a.speed_m_per_s = 299792458u;
  ck_assert_int_eq(cl_attest_digest_codes(NULL, 0, a.allowed_digest), CL_OK);
  ck_assert_int_eq(cl_attest_digest_keys(NULL, 0, a.excluded_digest), CL_OK);
  ck_assert_int_eq(cl_attest_digest_sigs(NULL, 0, a.measurements_digest), CL_OK);
  assert_hex(a.allowed_digest, CL_HASH_LEN, EMPTY_DIGEST_HEX);
  assert_hex(a.excluded_digest, CL_HASH_LEN, EMPTY_DIGEST_HEX);
  assert_hex(a.measurements_digest, CL_HASH_LEN, EMPTY_DIGEST_HEX);
  uint8_t lay[CL_ATTESTATION_LAYOUT_MAX];
  ck_assert_uint_eq(cl_attest_layout(lay, &a), 303);
  static const uint8_t zeros[32];
  ck_assert_mem_eq(lay + 103, zeros, 32);
  ck_assert_mem_eq(lay + 163, zeros, 32);
  ck_assert_uint_eq(get_be(lay + 139, 8), 299792458u);
  cl_attest_sign(&a, v.verifier);
  ck_assert_int_eq(cl_attest_verify(&a), CL_OK);
  /* The next record chains to it. */
  cl_attestation b = a;
  cl_attest_hash(&a, b.prev_hash);
  b.round_end_ns += 60000000000ull;
  cl_attest_sign(&b, v.verifier);
  ck_assert_int_eq(cl_attest_verify(&b), CL_OK);
  ck_assert_int_ne(memcmp(b.prev_hash, zeros, 32), 0);
  vector_fini(&v);
}
END_TEST

/* ---- digests -------------------------------------------------------------------- */

static void sha_text(const char *text, uint8_t out[CL_HASH_LEN]) {
  crypto_hash_sha256(out, (const uint8_t *)text, strlen(text));
}

START_TEST(test_digest_codes) {
  uint8_t got[CL_HASH_LEN], want[CL_HASH_LEN];
  /* Empty list: SHA-256 of "". */
  ck_assert_int_eq(cl_attest_digest_codes(NULL, 0, got), CL_OK);
  assert_hex(got, CL_HASH_LEN, EMPTY_DIGEST_HEX);
  /* One code: no separator. */
  const char *one[] = {"FRA"};
  ck_assert_int_eq(cl_attest_digest_codes(one, 1, got), CL_OK);
  sha_text("FRA", want);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
  /* Bytewise order: a prefix first, upper case before lower case, bytes
   * above 0x7f (UTF-8 "É") last. */
  const char *mixed[] = {"b", "\xc3\x89", "B", "AB", "A"};
  const char *copy[5];
  memcpy(copy, mixed, sizeof copy);
  ck_assert_int_eq(cl_attest_digest_codes(mixed, 5, got), CL_OK);
  sha_text("A,AB,B,b,\xc3\x89", want);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
  ck_assert_mem_eq(mixed, copy, sizeof copy); /* the caller's array is untouched */
  /* Every order of the input gives the same digest. */
  const char *codes[] = {"FRA", "DEU", "BEL"};
  static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (int p = 0; p < 6; p++) {
    const char *in[3] = {codes[perms[p][0]], codes[perms[p][1]], codes[perms[p][2]]};
    ck_assert_int_eq(cl_attest_digest_codes(in, 3, got), CL_OK);
    assert_hex(got, CL_HASH_LEN, ALLOWED_DIGEST_HEX);
  }
  /* Another set differs. */
  const char *two[] = {"DEU", "FRA"};
  ck_assert_int_eq(cl_attest_digest_codes(two, 2, got), CL_OK);
  sha_text("DEU,FRA", want);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
}
END_TEST

/* Digest of n records of size bytes in the given order, by hand. */
static void concat_digest(const uint8_t *const *recs, size_t n, size_t size,
                          uint8_t out[CL_HASH_LEN]) {
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  for (size_t i = 0; i < n; i++) crypto_hash_sha256_update(&st, recs[i], size);
  crypto_hash_sha256_final(&st, out);
}

START_TEST(test_digest_keys) {
  uint8_t got[CL_HASH_LEN], want[CL_HASH_LEN];
  ck_assert_int_eq(cl_attest_digest_keys(NULL, 0, got), CL_OK);
  assert_hex(got, CL_HASH_LEN, EMPTY_DIGEST_HEX);
  /* Keys that differ only in the last byte, and in the first byte across
   * 0x7f/0x80 (a signed comparison would put 0x80 first). */
  uint8_t k[4][CL_PK_LEN];
  memset(k[0], 0x80, CL_PK_LEN);
  memset(k[1], 0x7f, CL_PK_LEN);
  memset(k[2], 0x7f, CL_PK_LEN);
  k[2][CL_PK_LEN - 1] = 0x00;
  memset(k[3], 0x00, CL_PK_LEN);
  const uint8_t *sorted[4] = {k[3], k[2], k[1], k[0]};
  concat_digest(sorted, 4, CL_PK_LEN, want);
  uint8_t before[4][CL_PK_LEN];
  memcpy(before, k, sizeof k);
  ck_assert_int_eq(cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN])k, 4, got), CL_OK);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
  ck_assert_mem_eq(k, before, sizeof k);
  /* Any order: reversed and rotated. */
  uint8_t r[4][CL_PK_LEN];
  for (int s = 0; s < 4; s++) {
    for (int i = 0; i < 4; i++) memcpy(r[i], k[(i + s) % 4], CL_PK_LEN);
    ck_assert_int_eq(cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN])r, 4, got), CL_OK);
    ck_assert_mem_eq(got, want, CL_HASH_LEN);
    for (int i = 0; i < 4; i++) memcpy(r[i], k[3 - (i + s) % 4], CL_PK_LEN);
    ck_assert_int_eq(cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN])r, 4, got), CL_OK);
    ck_assert_mem_eq(got, want, CL_HASH_LEN);
  }
  /* The vector's four real keys. */
  vector v;
  vector_init(&v);
  uint8_t rev[4][CL_PK_LEN];
  for (int i = 0; i < 4; i++) memcpy(rev[i], v.excluded_pk[3 - i], CL_PK_LEN);
  ck_assert_int_eq(cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN])rev, 4, got), CL_OK);
  assert_hex(got, CL_HASH_LEN, EXCLUDED_DIGEST_HEX);
  vector_fini(&v);
}
END_TEST

START_TEST(test_digest_sigs) {
  uint8_t got[CL_HASH_LEN], want[CL_HASH_LEN];
  ck_assert_int_eq(cl_attest_digest_sigs(NULL, 0, got), CL_OK);
  assert_hex(got, CL_HASH_LEN, EMPTY_DIGEST_HEX);
  /* Differences past the first 32 bytes count: a key-sized compare would
   * call these equal. */
  uint8_t s[3][CL_SIG_LEN];
  memset(s, 0x55, sizeof s);
  s[0][63] = 0x03;
  s[1][63] = 0x01;
  s[2][40] = 0xf0;
  const uint8_t *sorted[3] = {s[1], s[0], s[2]};
  concat_digest(sorted, 3, CL_SIG_LEN, want);
  uint8_t before[3][CL_SIG_LEN];
  memcpy(before, s, sizeof s);
  ck_assert_int_eq(cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])s, 3, got), CL_OK);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
  ck_assert_mem_eq(s, before, sizeof s);
  static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (int p = 0; p < 6; p++) {
    uint8_t in[3][CL_SIG_LEN];
    for (int i = 0; i < 3; i++) memcpy(in[i], s[perms[p][i]], CL_SIG_LEN);
    ck_assert_int_eq(cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])in, 3, got), CL_OK);
    ck_assert_mem_eq(got, want, CL_HASH_LEN);
  }
  /* The vector's five signatures, given in descending order. */
  vector v;
  vector_init(&v);
  const uint8_t *asc[5] = {v.sigs[4], v.sigs[3], v.sigs[2], v.sigs[1], v.sigs[0]};
  concat_digest(asc, 5, CL_SIG_LEN, want);
  assert_hex(want, CL_HASH_LEN, MEASUREMENTS_DIGEST_HEX);
  ck_assert_mem_eq(v.a.measurements_digest, want, CL_HASH_LEN);
  vector_fini(&v);
}
END_TEST

/* ---- version 2 ----------------------------------------------------------------- */

START_TEST(test_v2_layout_by_hand) {
  vector v;
  vector_init(&v);
  vector_v2(&v);
  ck_assert_uint_eq(sizeof CL_CTX_ATTESTATION_V2, 23);
  assert_hex(v.a.site_digest, CL_HASH_LEN, SITE_DIGEST_HEX);
  assert_hex(v.a.landmarks_digest, CL_HASH_LEN, LANDMARKS_DIGEST_HEX);
  assert_hex(v.a.regions_digest, CL_HASH_LEN, REGIONS_DIGEST_HEX);
  uint8_t want[399], got[CL_ATTESTATION_LAYOUT_MAX];
  hand_layout_v2(want, &v);
  memset(got, 0xee, sizeof got);
  ck_assert_uint_eq(cl_attest_layout(got, &v.a), 399);
  for (size_t i = 0; i < 399; i++)
    ck_assert_msg(got[i] == want[i], "byte %zu: 0x%02x, wanted 0x%02x", i, got[i], want[i]);
  assert_hex(got, 399, LAYOUT_V2_HEX);
  /* The first 303 bytes are the v1 layout but for the context's "2". */
  uint8_t v1[303];
  hex_to(v1, sizeof v1, LAYOUT_HEX);
  ck_assert_int_eq(got[9], '2');
  v1[9] = '2';
  ck_assert_mem_eq(got, v1, 303);
  cl_attestation back;
  hand_parse(&back, got, 399);
  uint8_t again[CL_ATTESTATION_LAYOUT_MAX];
  ck_assert_uint_eq(cl_attest_layout(again, &back), 399);
  ck_assert_mem_eq(again, want, 399);
  vector_fini(&v);
}
END_TEST

START_TEST(test_v2_signature_and_hash_pinned) {
  vector v;
  vector_init(&v);
  vector_v2(&v);
  ck_assert_int_eq(cl_attest_sign(&v.a, v.verifier), CL_OK);
  assert_hex(v.a.sig, CL_SIG_LEN, SIG_V2_HEX);
  ck_assert_int_eq(cl_attest_verify(&v.a), CL_OK);
  uint8_t lay[399];
  hex_to(lay, sizeof lay, LAYOUT_V2_HEX);
  ck_assert_int_eq(crypto_sign_verify_detached(v.a.sig, lay, sizeof lay,
                                               cl_key_public(v.verifier)),
                   0);
  /* Chain hash: SHA-256("chiploc v2 attestation-hash" NUL || layout || sig). */
  uint8_t h[CL_HASH_LEN], want[CL_HASH_LEN];
  ck_assert_int_eq(cl_attest_hash(&v.a, h), CL_OK);
  assert_hex(h, CL_HASH_LEN, HASH_V2_HEX);
  uint8_t buf[28 + 399 + 64];
  memcpy(buf, "chiploc v2 attestation-hash", 27);
  buf[27] = 0x00;
  memcpy(buf + 28, lay, 399);
  memcpy(buf + 28 + 399, v.a.sig, 64);
  crypto_hash_sha256(want, buf, sizeof buf);
  ck_assert_mem_eq(h, want, CL_HASH_LEN);
  vector_fini(&v);
}
END_TEST

START_TEST(test_versions_do_not_mix) {
  /* A record signed as one version does not verify as the other, whatever
   * its fields: the context differs, and so does the hash context. */
  vector v;
  vector_init(&v);
  vector_v2(&v);
  cl_attestation two = v.a;
  cl_attest_sign(&two, v.verifier);
  cl_attestation one = two;
  one.version = CL_ATT_V1;
  ck_assert_int_eq(cl_attest_verify(&one), CL_EBADSIG);
  cl_attest_sign(&one, v.verifier);
  ck_assert_int_eq(cl_attest_verify(&one), CL_OK);
  cl_attestation back = one;
  back.version = CL_ATT_V2;
  ck_assert_int_eq(cl_attest_verify(&back), CL_EBADSIG);
  uint8_t h1[CL_HASH_LEN], h2[CL_HASH_LEN];
  cl_attest_hash(&one, h1);
  cl_attest_hash(&two, h2);
  ck_assert_int_ne(memcmp(h1, h2, CL_HASH_LEN), 0);
  /* Each v2 digest counts on its own. */
  uint8_t *digests[3] = {two.site_digest, two.landmarks_digest, two.regions_digest};
  for (int i = 0; i < 3; i++) {
    cl_attestation t = two;
    uint8_t *d = (uint8_t *)&t + (digests[i] - (uint8_t *)&two);
    d[CL_HASH_LEN - 1] ^= 0x80;
    ck_assert_int_eq(cl_attest_verify(&t), CL_EBADSIG);
  }
  vector_fini(&v);
}
END_TEST

START_TEST(test_unknown_version) {
  vector v;
  vector_init(&v);
  static const uint8_t zeros[CL_SIG_LEN];
  const uint8_t versions[] = {0, 3, 255};
  for (size_t k = 0; k < sizeof versions; k++) {
    cl_attestation a = v.a;
    a.version = versions[k];
    uint8_t lay[CL_ATTESTATION_LAYOUT_MAX];
    memset(lay, 0xee, sizeof lay);
    ck_assert_uint_eq(cl_attest_layout(lay, &a), 0);
    for (size_t i = 0; i < sizeof lay; i++) ck_assert_uint_eq(lay[i], 0xee);
    memset(a.sig, 0x77, CL_SIG_LEN);
    ck_assert_int_eq(cl_attest_sign(&a, v.verifier), CL_EINVAL);
    ck_assert_mem_eq(a.sig, zeros, CL_SIG_LEN);
    ck_assert_int_eq(cl_attest_verify(&a), CL_EBADSIG);
    /* Not even a signature over the v1 bytes makes it verify. */
    cl_attestation one = v.a;
    cl_attest_sign(&one, v.verifier);
    memcpy(a.sig, one.sig, CL_SIG_LEN);
    ck_assert_int_eq(cl_attest_verify(&a), CL_EBADSIG);
    uint8_t h[CL_HASH_LEN];
    memset(h, 0x77, sizeof h);
    ck_assert_int_eq(cl_attest_hash(&a, h), CL_EINVAL);
    ck_assert_mem_eq(h, zeros, CL_HASH_LEN);
  }
  vector_fini(&v);
}
END_TEST

START_TEST(test_digest_site) {
  /* "chiploc v2 site" NUL || be64(bits of lat) || be64(bits of lon). */
  uint8_t in[16 + 16];
  memcpy(in, "chiploc v2 site", 16); /* with its NUL */
  double lat = V2_SITE_LAT, lon = V2_SITE_LON;
  uint64_t bits;
  memcpy(&bits, &lat, 8);
  be(in + 16, bits, 8);
  memcpy(&bits, &lon, 8);
  be(in + 24, bits, 8);
  assert_hex(in, sizeof in, SITE_INPUT_HEX);
  uint8_t want[CL_HASH_LEN], got[CL_HASH_LEN];
  crypto_hash_sha256(want, in, sizeof in);
  cl_attest_digest_site(V2_SITE_LAT, V2_SITE_LON, got);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
  assert_hex(got, CL_HASH_LEN, SITE_DIGEST_HEX);
  /* The bits, not the value: -0.0 is not 0.0; the next double differs; lat
   * and lon are not interchangeable. */
  uint8_t a[CL_HASH_LEN], b[CL_HASH_LEN];
  cl_attest_digest_site(0.0, 0.0, a);
  cl_attest_digest_site(-0.0, 0.0, b);
  ck_assert_int_ne(memcmp(a, b, CL_HASH_LEN), 0);
  cl_attest_digest_site(nextafter(V2_SITE_LAT, 0.0), V2_SITE_LON, a);
  ck_assert_int_ne(memcmp(a, got, CL_HASH_LEN), 0);
  cl_attest_digest_site(V2_SITE_LON, V2_SITE_LAT, a);
  ck_assert_int_ne(memcmp(a, got, CL_HASH_LEN), 0);
}
END_TEST

/* One 48-byte landmark entry by hand. */
static void lm_entry(uint8_t out[48], const cl_attest_landmark *l) {
  memcpy(out, l->pk, 32);
  uint64_t bits;
  memcpy(&bits, &l->lat, 8);
  be(out + 32, bits, 8);
  memcpy(&bits, &l->lon, 8);
  be(out + 40, bits, 8);
}

START_TEST(test_digest_landmarks) {
  vector v;
  vector_init(&v);
  cl_attest_landmark lms[3];
  v2_landmarks(&v, lms);
  /* By hand: the context, then the entries sorted bytewise. The keys' first
   * bytes decide here; the test checks the order it assumes. */
  uint8_t e[3][48];
  for (int i = 0; i < 3; i++) lm_entry(e[i], &lms[i]);
  int order[3] = {0, 1, 2};
  for (int i = 0; i < 3; i++)
    for (int j = i + 1; j < 3; j++)
      if (memcmp(e[order[j]], e[order[i]], 48) < 0) {
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
  uint8_t in[21 + 3 * 48];
  memcpy(in, "chiploc v2 landmarks", 21);
  for (int i = 0; i < 3; i++) memcpy(in + 21 + 48 * i, e[order[i]], 48);
  assert_hex(in, sizeof in, LANDMARKS_INPUT_HEX);
  uint8_t want[CL_HASH_LEN], got[CL_HASH_LEN];
  crypto_hash_sha256(want, in, sizeof in);
  cl_attest_landmark before[3];
  memcpy(before, lms, sizeof lms);
  ck_assert_int_eq(cl_attest_digest_landmarks(lms, 3, got), CL_OK);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
  ck_assert_mem_eq(lms, before, sizeof lms);
  assert_hex(got, CL_HASH_LEN, LANDMARKS_DIGEST_HEX);
  /* Every order of the input gives the same digest. */
  static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  for (int p = 0; p < 6; p++) {
    cl_attest_landmark in3[3] = {lms[perms[p][0]], lms[perms[p][1]], lms[perms[p][2]]};
    ck_assert_int_eq(cl_attest_digest_landmarks(in3, 3, got), CL_OK);
    assert_hex(got, CL_HASH_LEN, LANDMARKS_DIGEST_HEX);
  }
  /* None: the context alone. */
  ck_assert_int_eq(cl_attest_digest_landmarks(NULL, 0, got), CL_OK);
  crypto_hash_sha256(want, (const uint8_t *)"chiploc v2 landmarks", 21);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
  assert_hex(got, CL_HASH_LEN, LANDMARKS_EMPTY_HEX);
  /* Duplicates are kept; a moved landmark changes the digest; so does a
   * position that differs in its last bit. */
  cl_attest_landmark two[2] = {lms[0], lms[0]};
  uint8_t one_d[CL_HASH_LEN], two_d[CL_HASH_LEN];
  ck_assert_int_eq(cl_attest_digest_landmarks(two, 1, one_d), CL_OK);
  ck_assert_int_eq(cl_attest_digest_landmarks(two, 2, two_d), CL_OK);
  ck_assert_int_ne(memcmp(one_d, two_d, CL_HASH_LEN), 0);
  uint8_t tw[2][48];
  lm_entry(tw[0], &two[0]);
  lm_entry(tw[1], &two[1]);
  uint8_t in2[21 + 96];
  memcpy(in2, "chiploc v2 landmarks", 21);
  memcpy(in2 + 21, tw, 96);
  crypto_hash_sha256(want, in2, sizeof in2);
  ck_assert_mem_eq(two_d, want, CL_HASH_LEN);
  cl_attest_landmark moved[3];
  memcpy(moved, lms, sizeof lms);
  moved[1].lon = nextafter(moved[1].lon, 180.0);
  ck_assert_int_eq(cl_attest_digest_landmarks(moved, 3, got), CL_OK);
  ck_assert_int_ne(memcmp(got, want, CL_HASH_LEN), 0);
  ck_assert_int_eq(cl_attest_digest_landmarks(NULL, 1, got), CL_EINVAL);
  vector_fini(&v);
}
END_TEST

START_TEST(test_digest_regions) {
  uint8_t g[3][CL_HASH_LEN];
  v2_geometry(g);
  /* By hand: context, then per region sorted by code: code NUL geometry. */
  uint8_t in[19 + 3 * (4 + 32)];
  uint8_t *p = in;
  p = bytes(p, "chiploc v2 regions", 19);
  p = bytes(p, "BEL", 4);
  p = bytes(p, g[2], 32);
  p = bytes(p, "DEU", 4);
  p = bytes(p, g[1], 32);
  p = bytes(p, "FRA", 4);
  p = bytes(p, g[0], 32);
  ck_assert_int_eq((int)(p - in), (int)sizeof in);
  assert_hex(in, sizeof in, REGIONS_INPUT_HEX);
  uint8_t want[CL_HASH_LEN], got[CL_HASH_LEN];
  crypto_hash_sha256(want, in, sizeof in);
  ck_assert_int_eq(
      cl_attest_digest_regions(V2_CODES, (const uint8_t(*)[CL_HASH_LEN])g, 3, got), CL_OK);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
  assert_hex(got, CL_HASH_LEN, REGIONS_DIGEST_HEX);
  /* Any order of the pairs; not the pairing. */
  const char *rev_codes[3] = {"BEL", "DEU", "FRA"};
  uint8_t rev_g[3][CL_HASH_LEN];
  for (int i = 0; i < 3; i++) memcpy(rev_g[i], g[2 - i], CL_HASH_LEN);
  ck_assert_int_eq(
      cl_attest_digest_regions(rev_codes, (const uint8_t(*)[CL_HASH_LEN])rev_g, 3, got), CL_OK);
  assert_hex(got, CL_HASH_LEN, REGIONS_DIGEST_HEX);
  ck_assert_int_eq(
      cl_attest_digest_regions(rev_codes, (const uint8_t(*)[CL_HASH_LEN])g, 3, got), CL_OK);
  ck_assert_int_ne(memcmp(got, want, CL_HASH_LEN), 0);
  /* None: the context alone. */
  ck_assert_int_eq(cl_attest_digest_regions(NULL, NULL, 0, got), CL_OK);
  crypto_hash_sha256(want, (const uint8_t *)"chiploc v2 regions", 19);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
  assert_hex(got, CL_HASH_LEN, REGIONS_EMPTY_HEX);
  /* Bytewise order of the codes' bytes as given (UTF-8, no normalisation):
   * a prefix first, upper case before lower case, "\xc3\x89" (É) last; the
   * NUL after each code keeps "A"+geometry apart from "AB". Equal codes are
   * kept, ordered by geometry. */
  const char *mixed[5] = {"b", "\xc3\x89", "A", "AB", "A"};
  uint8_t mg[5][CL_HASH_LEN];
  for (int i = 0; i < 5; i++) memset(mg[i], 0x10 + i, CL_HASH_LEN);
  uint8_t in5[19 + 2 + 32 + 2 + 32 + 3 + 32 + 2 + 32 + 3 + 32];
  p = in5;
  p = bytes(p, "chiploc v2 regions", 19);
  p = bytes(p, "A", 2);
  p = bytes(p, mg[2], 32);
  p = bytes(p, "A", 2);
  p = bytes(p, mg[4], 32);
  p = bytes(p, "AB", 3);
  p = bytes(p, mg[3], 32);
  p = bytes(p, "b", 2);
  p = bytes(p, mg[0], 32);
  p = bytes(p, "\xc3\x89", 3);
  p = bytes(p, mg[1], 32);
  ck_assert_int_eq((int)(p - in5), (int)sizeof in5);
  crypto_hash_sha256(want, in5, sizeof in5);
  ck_assert_int_eq(
      cl_attest_digest_regions(mixed, (const uint8_t(*)[CL_HASH_LEN])mg, 5, got), CL_OK);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
  /* Swapping the two "A" entries changes nothing. */
  const char *swapped[5] = {"b", "\xc3\x89", "A", "AB", "A"};
  uint8_t sg[5][CL_HASH_LEN];
  memcpy(sg, mg, sizeof sg);
  memcpy(sg[2], mg[4], CL_HASH_LEN);
  memcpy(sg[4], mg[2], CL_HASH_LEN);
  ck_assert_int_eq(
      cl_attest_digest_regions(swapped, (const uint8_t(*)[CL_HASH_LEN])sg, 5, got), CL_OK);
  ck_assert_mem_eq(got, want, CL_HASH_LEN);
  /* Bad arguments. */
  const char *with_null[2] = {"FRA", NULL};
  ck_assert_int_eq(cl_attest_digest_regions(with_null, (const uint8_t(*)[CL_HASH_LEN])g, 2, got),
                   CL_EINVAL);
  ck_assert_int_eq(cl_attest_digest_regions(NULL, (const uint8_t(*)[CL_HASH_LEN])g, 1, got),
                   CL_EINVAL);
  ck_assert_int_eq(cl_attest_digest_regions(V2_CODES, NULL, 1, got), CL_EINVAL);
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *su = suite_create("attest");
  TCase *tc = tcase_create("vectors");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_keys_from_seeds);
  tcase_add_test(tc, test_layout_by_hand);
  tcase_add_test(tc, test_signature_and_hash_pinned);
  tcase_add_test(tc, test_every_byte_flip_fails);
  tcase_add_test(tc, test_first_record_and_zero_fields);
  tcase_add_test(tc, test_digest_codes);
  tcase_add_test(tc, test_digest_keys);
  tcase_add_test(tc, test_digest_sigs);
  tcase_add_test(tc, test_v2_layout_by_hand);
  tcase_add_test(tc, test_v2_signature_and_hash_pinned);
  tcase_add_test(tc, test_versions_do_not_mix);
  tcase_add_test(tc, test_unknown_version);
  tcase_add_test(tc, test_digest_site);
  tcase_add_test(tc, test_digest_landmarks);
  tcase_add_test(tc, test_digest_regions);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
