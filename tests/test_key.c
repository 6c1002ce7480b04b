/*
 * Keys and key files (lib/core/cl_key.h): generation, the 0600 O_EXCL key file
 * and its refusal to overwrite, loading and every load error, the public
 * key's hex form, and cl_pk_check on small-order and off-curve points.
 */
#include "cl_err.h"
#include "cl_key.h"
#include "testutil.h"

#include <check.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *g_dir;

static void setup(void) {
  umask(022);
  g_dir = tu_tmpdir("chiploc-test-key");
  ck_assert_ptr_nonnull(g_dir);
}

static void teardown(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  ck_assert_int_eq(system(cmd), 0);
  free(g_dir);
  g_dir = NULL;
}

static char *path_in(const char *name) {
  size_t n = strlen(g_dir) + strlen(name) + 2;
  char *p = malloc(n);
  ck_assert_ptr_nonnull(p);
  snprintf(p, n, "%s/%s", g_dir, name);
  return p;
}

static cl_key *seed_key(uint8_t b) {
  uint8_t seed[32];
  memset(seed, b, sizeof seed);
  cl_key *k = NULL;
  ck_assert_int_eq(cl_key_from_seed(&k, seed), CL_OK);
  return k;
}

/* Writes a key file with the given content and mode. */
static char *write_key_file(const char *name, const char *content, mode_t mode) {
  char *p = tu_write_file(g_dir, name, content);
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(chmod(p, mode), 0);
  return p;
}

/* Loads path and expects code rc and (if want_err) that text in err. */
static void expect_load(const char *path, int rc, const char *want_err) {
  cl_key *k = (cl_key *)0x1; /* must not be written on failure */
  char err[256] = "";
  ck_assert_int_eq(cl_key_load(&k, path, err, sizeof err), rc);
  ck_assert_ptr_eq(k, (cl_key *)0x1);
  if (want_err)
    ck_assert_msg(strstr(err, want_err) != NULL, "err '%s' lacks '%s'", err, want_err);
}

static const char SEED01_HEX[] = "0101010101010101010101010101010101010101010101010101010101010101";
static const char PK01_HEX[] = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
static const char PK02_HEX[] = "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";

START_TEST(test_generate) {
  cl_key *a = NULL, *b = NULL;
  ck_assert_int_eq(cl_key_generate(&a), CL_OK);
  ck_assert_int_eq(cl_key_generate(&b), CL_OK);
  ck_assert_ptr_nonnull(a);
  ck_assert(memcmp(cl_key_public(a), cl_key_public(b), CL_PK_LEN) != 0);
  ck_assert_int_eq(cl_pk_check(cl_key_public(a)), CL_OK);
  const uint8_t msg[] = "measure me";
  uint8_t sig[CL_SIG_LEN];
  cl_key_sign(a, sig, msg, sizeof msg);
  ck_assert_int_eq(cl_sig_verify(cl_key_public(a), sig, msg, sizeof msg), CL_OK);
  ck_assert_int_eq(cl_sig_verify(cl_key_public(b), sig, msg, sizeof msg), CL_EBADSIG);
  ck_assert_int_eq(cl_sig_verify(cl_key_public(a), sig, msg, sizeof msg - 1), CL_EBADSIG);
  cl_key_destroy(&a);
  ck_assert_ptr_null(a);
  cl_key_destroy(&a); /* NULL-safe */
  cl_key_destroy(NULL);
  cl_key_destroy(&b);
}
END_TEST

START_TEST(test_from_seed) {
  cl_key *a = seed_key(0x01), *b = seed_key(0x01), *c = seed_key(0x02);
  char hex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(a), hex);
  ck_assert_str_eq(hex, PK01_HEX);
  cl_pk_to_hex(cl_key_public(c), hex);
  ck_assert_str_eq(hex, PK02_HEX);
  ck_assert_mem_eq(cl_key_public(a), cl_key_public(b), CL_PK_LEN);
  uint8_t s1[CL_SIG_LEN], s2[CL_SIG_LEN];
  cl_key_sign(a, s1, (const uint8_t *)"x", 1);
  cl_key_sign(b, s2, (const uint8_t *)"x", 1);
  ck_assert_mem_eq(s1, s2, CL_SIG_LEN); /* Ed25519 is deterministic */
  cl_key_destroy(&a);
  cl_key_destroy(&b);
  cl_key_destroy(&c);
}
END_TEST

START_TEST(test_save_mode_and_format) {
  static const mode_t masks[] = {022, 0, 077};
  for (size_t i = 0; i < 3; i++) {
    umask(masks[i]);
    cl_key *k = seed_key(0x01);
    char name[32];
    snprintf(name, sizeof name, "k%zu.key", i);
    char *p = path_in(name);
    ck_assert_int_eq(cl_key_save(k, p), CL_OK);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0600); /* regardless of umask */
    char *text = tu_read_file(p);
    char want[256];
    snprintf(want, sizeof want, "chiploc-secret-key v1\nseed %s\npublic %s\n", SEED01_HEX,
             PK01_HEX);
    ck_assert_str_eq(text, want);
    free(text);
    free(p);
    cl_key_destroy(&k);
  }
  umask(022);
}
END_TEST

START_TEST(test_save_refuses_overwrite) {
  cl_key *k1 = seed_key(0x01), *k2 = seed_key(0x02);
  char *p = path_in("landmark.key");
  ck_assert_int_eq(cl_key_save(k1, p), CL_OK);
  char *before = tu_read_file(p);
  struct stat st1, st2;
  ck_assert_int_eq(stat(p, &st1), 0);
  ck_assert_int_eq(cl_key_save(k2, p), CL_EEXIST);
  ck_assert_int_eq(cl_key_save(k1, p), CL_EEXIST);
  char *after = tu_read_file(p);
  ck_assert_str_eq(before, after);
  ck_assert_int_eq(stat(p, &st2), 0);
  ck_assert_uint_eq(st1.st_ino, st2.st_ino);
  ck_assert_uint_eq(st2.st_mode & 07777, 0600);
  /* Any existing file, whatever its content. */
  char *other = tu_write_file(g_dir, "notes.txt", "keep me\n");
  ck_assert_int_eq(cl_key_save(k1, other), CL_EEXIST);
  char *kept = tu_read_file(other);
  ck_assert_str_eq(kept, "keep me\n");
  /* A dangling symlink is not followed: the target is not created. */
  char *target = path_in("target.key"), *link = path_in("link.key");
  ck_assert_int_eq(symlink(target, link), 0);
  ck_assert_int_eq(cl_key_save(k1, link), CL_EEXIST);
  ck_assert_int_eq(access(target, F_OK), -1);
  /* A directory that does not exist is an I/O error. */
  char *nodir = path_in("no/such/dir.key");
  ck_assert_int_eq(cl_key_save(k1, nodir), CL_EIO);
  free(before);
  free(after);
  free(other);
  free(kept);
  free(target);
  free(link);
  free(nodir);
  free(p);
  cl_key_destroy(&k1);
  cl_key_destroy(&k2);
}
END_TEST

START_TEST(test_load_round_trip) {
  cl_key *k = NULL, *l = NULL;
  ck_assert_int_eq(cl_key_generate(&k), CL_OK);
  char *p = path_in("chip.key");
  ck_assert_int_eq(cl_key_save(k, p), CL_OK);
  char err[256] = "untouched";
  ck_assert_int_eq(cl_key_load(&l, p, err, sizeof err), CL_OK);
  ck_assert_ptr_nonnull(l);
  ck_assert_mem_eq(cl_key_public(k), cl_key_public(l), CL_PK_LEN);
  const uint8_t msg[] = "challenge";
  uint8_t s1[CL_SIG_LEN], s2[CL_SIG_LEN];
  cl_key_sign(l, s1, msg, sizeof msg);
  ck_assert_int_eq(cl_sig_verify(cl_key_public(k), s1, msg, sizeof msg), CL_OK);
  cl_key_sign(k, s2, msg, sizeof msg);
  ck_assert_mem_eq(s1, s2, CL_SIG_LEN); /* the same secret key */
  /* A read-only 0400 file loads too; err may be NULL. */
  ck_assert_int_eq(chmod(p, 0400), 0);
  cl_key_destroy(&l);
  ck_assert_int_eq(cl_key_load(&l, p, NULL, 0), CL_OK);
  ck_assert_mem_eq(cl_key_public(k), cl_key_public(l), CL_PK_LEN);
  free(p);
  cl_key_destroy(&k);
  cl_key_destroy(&l);
}
END_TEST

START_TEST(test_load_errors) {
  char good[256];
  snprintf(good, sizeof good, "chiploc-secret-key v1\nseed %s\npublic %s\n", SEED01_HEX, PK01_HEX);
  /* Sanity: the good text loads. */
  char *p = write_key_file("good.key", good, 0600);
  cl_key *k = NULL;
  ck_assert_int_eq(cl_key_load(&k, p, NULL, 0), CL_OK);
  cl_key_destroy(&k);
  free(p);

  char *missing = path_in("missing.key");
  expect_load(missing, CL_EIO, "cannot open");
  free(missing);

  static const mode_t loose[] = {0644, 0640, 0604, 0660, 0601, 0610};
  for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "loose%zu.key", i);
    p = write_key_file(name, good, loose[i]);
    expect_load(p, CL_EPERM, "chmod 600");
    free(p);
  }

  struct {
    const char *name, *content;
    int rc;
    const char *err;
  } cases[] = {
      {"empty", "", CL_EMALFORMED, "not a chiploc key file"},
      {"magic", "minisign secret key v1\nseed 00\npublic 00\n", CL_EMALFORMED,
       "not a chiploc key file"},
      {"v2", "chiploc-secret-key v2\nseed 00\npublic 00\n", CL_EVERSION, "want v1"},
      {"v10", "chiploc-secret-key v10\n", CL_EVERSION, "want v1"},
      {"noseed", "chiploc-secret-key v1\n", CL_EMALFORMED, "line 2"},
      {"badhex",
       "chiploc-secret-key v1\nseed 01010101010101010101010101010101010101010101010101010101010101zz\n"
       "public 8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\n",
       CL_EMALFORMED, "line 2"},
      {"shortseed",
       "chiploc-secret-key v1\nseed 010101010101010101010101010101010101010101010101010101010101010\n"
       "public 8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\n",
       CL_EMALFORMED, "line 2"},
      {"seedword",
       "chiploc-secret-key v1\nsead 0101010101010101010101010101010101010101010101010101010101010101\n"
       "public 8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\n",
       CL_EMALFORMED, "line 2"},
      {"nopublic",
       "chiploc-secret-key v1\nseed 0101010101010101010101010101010101010101010101010101010101010101\n",
       CL_EMALFORMED, "line 3"},
      {"badpublic",
       "chiploc-secret-key v1\nseed 0101010101010101010101010101010101010101010101010101010101010101\n"
       "public 8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5\n",
       CL_EMALFORMED, "line 3"},
      {"mismatch",
       "chiploc-secret-key v1\nseed 0101010101010101010101010101010101010101010101010101010101010101\n"
       "public 8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394\n",
       CL_EMALFORMED, "does not match the seed"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    p = write_key_file(cases[i].name, cases[i].content, 0600);
    cl_key *out = NULL;
    char err[256] = "";
    int rc = cl_key_load(&out, p, err, sizeof err);
    ck_assert_msg(rc == cases[i].rc, "%s: rc %d, want %d (%s)", cases[i].name, rc, cases[i].rc,
                  err);
    ck_assert_ptr_null(out);
    ck_assert_msg(strstr(err, cases[i].err) != NULL, "%s: err '%s'", cases[i].name, err);
    free(p);
  }
  /* The public line may be in upper case (it is parsed as a public key). */
  char upper[256];
  snprintf(upper, sizeof upper, "chiploc-secret-key v1\nseed %s\npublic %s\n", SEED01_HEX,
           "8A88E3DD7409F195FD52DB2D3CBA5D72CA6709BF1D94121BF3748801B40F6F5C");
  p = write_key_file("upper.key", upper, 0600);
  ck_assert_int_eq(cl_key_load(&k, p, NULL, 0), CL_OK);
  cl_key_destroy(&k);
  free(p);
}
END_TEST

START_TEST(test_pk_hex) {
  uint8_t pk[CL_PK_LEN], want[CL_PK_LEN];
  ck_assert_int_eq(cl_hex_decode(want, sizeof want, PK01_HEX, 64), CL_OK);
  ck_assert_int_eq(cl_pk_from_hex(PK01_HEX, pk), CL_OK);
  ck_assert_mem_eq(pk, want, CL_PK_LEN);
  memset(pk, 0, sizeof pk);
  ck_assert_int_eq(
      cl_pk_from_hex("8A88E3DD7409F195FD52DB2D3CBA5D72CA6709BF1D94121BF3748801B40F6F5C", pk), CL_OK);
  ck_assert_mem_eq(pk, want, CL_PK_LEN);
  memset(pk, 0, sizeof pk);
  ck_assert_int_eq(
      cl_pk_from_hex(" \t\n8a88E3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6F5c\r\n ",
                     pk),
      CL_OK);
  ck_assert_mem_eq(pk, want, CL_PK_LEN);

  char out[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(want, out);
  ck_assert_str_eq(out, PK01_HEX);
  ck_assert_uint_eq(strlen(out), CL_PK_HEX_LEN);

  static const char *bad[] = {
      "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5",   /* 63 */
      "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c0", /* 65 */
      "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c8a",
      "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5g", /* non-hex */
      "8a88e3dd7409f195fd52db2d3cba5d72 ca6709bf1d94121bf3748801b40f6f5c", /* inner space */
      "8a88e3dd7409f195fd52db2d3cba5d72:a6709bf1d94121bf3748801b40f6f5c",
      "0x8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f",
      "",
      "   ",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(cl_pk_from_hex(bad[i], pk) == CL_EMALFORMED, "accepted '%s'", bad[i]);
  ck_assert_int_eq(cl_pk_from_hex(NULL, pk), CL_EMALFORMED);

  /* The generic helpers. */
  uint8_t b3[3];
  ck_assert_int_eq(cl_hex_decode(b3, 3, "a1B2c3", 6), CL_OK);
  ck_assert_uint_eq(b3[0], 0xa1);
  ck_assert_uint_eq(b3[2], 0xc3);
  ck_assert_int_eq(cl_hex_decode(b3, 3, "a1b2c", 5), CL_EMALFORMED);
  ck_assert_int_eq(cl_hex_decode(b3, 3, "a1b2c3d4", 8), CL_EMALFORMED);
  char h[7];
  cl_hex_encode(h, b3, 3);
  ck_assert_str_eq(h, "a1b2c3");
}
END_TEST

START_TEST(test_pk_check) {
  uint8_t pk[CL_PK_LEN];
  /* Real keys pass. */
  cl_key *k = seed_key(0x01);
  ck_assert_int_eq(cl_pk_check(cl_key_public(k)), CL_OK);
  cl_key_destroy(&k);
  /* All zero: y = 0 decodes to a point of order 4, which libsodium's
   * crypto_core_ed25519_is_valid_point refuses as small order. */
  memset(pk, 0, sizeof pk);
  ck_assert_int_eq(crypto_core_ed25519_is_valid_point(pk), 0);
  ck_assert_int_eq(cl_pk_check(pk), CL_EMALFORMED);
  /* The neutral element (y = 1), order 1. */
  pk[0] = 1;
  ck_assert_int_eq(cl_pk_check(pk), CL_EMALFORMED);
  /* y = -1, order 2. */
  ck_assert_int_eq(cl_pk_from_hex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", pk),
                   CL_OK);
  ck_assert_int_eq(cl_pk_check(pk), CL_EMALFORMED);
  /* A point of order 8. */
  ck_assert_int_eq(cl_pk_from_hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", pk),
                   CL_OK);
  ck_assert_int_eq(cl_pk_check(pk), CL_EMALFORMED);
  /* A non-canonical encoding (y >= p). */
  ck_assert_int_eq(cl_pk_from_hex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", pk),
                   CL_OK);
  ck_assert_int_eq(cl_pk_check(pk), CL_EMALFORMED);
  /* y = 2 is not on the curve. */
  memset(pk, 0, sizeof pk);
  pk[0] = 2;
  ck_assert_int_eq(cl_pk_check(pk), CL_EMALFORMED);
  /* A valid key plus a small-order point is off the prime-order subgroup. */
  cl_key *g = seed_key(0x02);
  uint8_t t[CL_PK_LEN], sum[CL_PK_LEN];
  ck_assert_int_eq(cl_pk_from_hex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", t),
                   CL_OK);
  ck_assert_int_eq(crypto_core_ed25519_add(sum, cl_key_public(g), t), 0);
  ck_assert_int_eq(cl_pk_check(sum), CL_EMALFORMED);
  cl_key_destroy(&g);
}
END_TEST

static Suite *key_suite(void) {
  Suite *s = suite_create("key");
  TCase *tc = tcase_create("key");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_generate);
  tcase_add_test(tc, test_from_seed);
  tcase_add_test(tc, test_save_mode_and_format);
  tcase_add_test(tc, test_save_refuses_overwrite);
  tcase_add_test(tc, test_load_round_trip);
  tcase_add_test(tc, test_load_errors);
  tcase_add_test(tc, test_pk_hex);
  tcase_add_test(tc, test_pk_check);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  SRunner *sr = srunner_create(key_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
