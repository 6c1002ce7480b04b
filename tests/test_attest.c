/*
 * The attestation layout, signature, chain hash and digests (lib/wire/cl_attest.h)
 * against fixed test vectors.
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
 * rules of the three digests.
 */
#include "cl_attest.h"
#include "cl_err.h"
#include "cl_key.h"

#include <check.h>
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

static const char CHIP_PK_HEX[] = "d04ab232742bb4ab3a1368bd4615e4e6d0224ab71a016baf8520a332c9778737";
static const char VERIFIER_PK_HEX[] =
    "a09aa5f47a6759802ff955f8dc2d2a14a5c99d23be97f864127ff9383455a4f0";
static const char SITE_PK_HEX[] = "17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce";

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

/* The inverse of the layout: every field back from its bytes (the context
 * is not part of the struct). */
static void hand_parse(cl_attestation *a, const uint8_t in[303]) {
  memset(a, 0, sizeof *a);
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
  ck_assert_uint_eq(CL_ATTESTATION_LAYOUT_LEN, 303);
  ck_assert_uint_eq(sizeof CL_CTX_ATTESTATION, 23);
  uint8_t want[303], got[CL_ATTESTATION_LAYOUT_LEN];
  hand_layout(want, &v);
  memset(got, 0xee, sizeof got);
  ck_assert_uint_eq(cl_attest_layout(got, &v.a), 303);
  for (size_t i = 0; i < 303; i++)
    ck_assert_msg(got[i] == want[i], "byte %zu: 0x%02x, wanted 0x%02x", i, got[i], want[i]);
  assert_hex(got, sizeof got, LAYOUT_HEX);
  /* The digests inside it, computed independently. */
  uint8_t d[CL_HASH_LEN];
  crypto_hash_sha256(d, (const uint8_t *)"BEL,DEU,FRA", 11);
  ck_assert_mem_eq(d, v.a.allowed_digest, CL_HASH_LEN);
  assert_hex(v.a.allowed_digest, CL_HASH_LEN, ALLOWED_DIGEST_HEX);
  assert_hex(v.a.excluded_digest, CL_HASH_LEN, EXCLUDED_DIGEST_HEX);
  assert_hex(v.a.measurements_digest, CL_HASH_LEN, MEASUREMENTS_DIGEST_HEX);
  /* Parsing the layout by hand gives back the struct's fields. */
  cl_attestation back;
  hand_parse(&back, got);
  ck_assert_int_eq(back.centre_lat_e7, V_LAT_E7);
  ck_assert_int_eq(back.centre_lon_e7, V_LON_E7);
  ck_assert_int_eq(back.site_margin_m, V_MARGIN_M);
  ck_assert_uint_eq(back.n_measurements, V_N_MEASUREMENTS);
  uint8_t again[CL_ATTESTATION_LAYOUT_LEN];
  cl_attest_layout(again, &back);
  ck_assert_mem_eq(again, want, sizeof again);
  vector_fini(&v);
}
END_TEST

START_TEST(test_signature_and_hash_pinned) {
  vector v;
  vector_init(&v);
  cl_attest_sign(&v.a, v.verifier);
  assert_hex(v.a.sig, CL_SIG_LEN, SIG_HEX);
  ck_assert_int_eq(cl_attest_verify(&v.a), CL_OK);
  /* The signature is a plain Ed25519 signature over the layout bytes. */
  uint8_t lay[CL_ATTESTATION_LAYOUT_LEN];
  hex_to(lay, sizeof lay, LAYOUT_HEX);
  ck_assert_int_eq(cl_sig_verify(cl_key_public(v.verifier), v.a.sig, lay, sizeof lay), CL_OK);
  ck_assert_int_eq(crypto_sign_verify_detached(v.a.sig, lay, sizeof lay,
                                               cl_key_public(v.verifier)),
                   0);

  /* Chain hash: SHA-256("chiploc v1 attestation-hash" NUL || layout || sig). */
  uint8_t h[CL_HASH_LEN], want[CL_HASH_LEN];
  cl_attest_hash(&v.a, h);
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

START_TEST(test_every_byte_flip_fails) {
  vector v;
  vector_init(&v);
  cl_attest_sign(&v.a, v.verifier);
  uint8_t lay[CL_ATTESTATION_LAYOUT_LEN], h0[CL_HASH_LEN];
  cl_attest_layout(lay, &v.a);
  cl_attest_hash(&v.a, h0);
  for (size_t i = 0; i < sizeof lay; i++) {
    for (int bit = 0; bit < 8; bit += 7) {
      uint8_t flipped[CL_ATTESTATION_LAYOUT_LEN];
      memcpy(flipped, lay, sizeof lay);
      flipped[i] ^= (uint8_t)(1u << bit);
      /* Signed bytes, context included: the raw signature check fails. */
      ck_assert_msg(cl_sig_verify(v.a.verifier, v.a.sig, flipped, sizeof flipped) == CL_EBADSIG,
                    "byte %zu bit %d", i, bit);
      if (i < sizeof CL_CTX_ATTESTATION) continue;
      /* A field byte: the record carrying that field value fails, and its
       * chain hash changes. */
      cl_attestation t;
      hand_parse(&t, flipped);
      memcpy(t.sig, v.a.sig, CL_SIG_LEN);
      uint8_t relaid[CL_ATTESTATION_LAYOUT_LEN];
      cl_attest_layout(relaid, &t);
      ck_assert_mem_eq(relaid, flipped, sizeof relaid);
      ck_assert_msg(cl_attest_verify(&t) == CL_EBADSIG, "byte %zu bit %d verified", i, bit);
      uint8_t h[CL_HASH_LEN];
      cl_attest_hash(&t, h);
      ck_assert_msg(memcmp(h, h0, CL_HASH_LEN) != 0, "byte %zu bit %d: same hash", i, bit);
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
END_TEST

START_TEST(test_first_record_and_zero_fields) {
  /* A first record: prev_hash and the site landmark are zeros, no
   * measurements, no regions; the layout still has its fixed size and
   * carries the digests of nothing. */
  vector v;
  vector_init(&v);
  cl_attestation a;
  memset(&a, 0, sizeof a);
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
  uint8_t lay[CL_ATTESTATION_LAYOUT_LEN];
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
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
