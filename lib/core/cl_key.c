/* Ed25519 key pairs in guarded memory, and their versioned key files. */
#include "cl_key.h"
#include "cl_err.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cl_key {
  uint8_t sk[CL_SK_LEN]; /* seed || public key, libsodium layout */
  uint8_t pk[CL_PK_LEN];
};

static const char MAGIC[] = "chiploc-secret-key v1";

static cl_key *key_alloc(void) {
  cl_key *k = sodium_malloc(sizeof *k);
  return k;
}

int cl_key_generate(cl_key **out) {
  cl_key *k = key_alloc();
  if (!k) return CL_ENOMEM;
  crypto_sign_keypair(k->pk, k->sk);
  *out = k;
  return CL_OK;
}

int cl_key_from_seed(cl_key **out, const uint8_t seed[32]) {
  cl_key *k = key_alloc();
  if (!k) return CL_ENOMEM;
  crypto_sign_seed_keypair(k->pk, k->sk, seed);
  *out = k;
  return CL_OK;
}

void cl_key_destroy(cl_key **key) {
  if (!key || !*key) return;
  sodium_free(*key); /* sodium_free wipes the region before unmapping */
  *key = NULL;
}

const uint8_t *cl_key_public(const cl_key *key) { return key->pk; }

void cl_key_sign(const cl_key *key, uint8_t sig[CL_SIG_LEN], const uint8_t *msg, size_t len) {
  crypto_sign_detached(sig, NULL, msg, len, key->sk);
}

int cl_sig_verify(const uint8_t pk[CL_PK_LEN], const uint8_t sig[CL_SIG_LEN], const uint8_t *msg,
                  size_t len) {
  return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? CL_OK : CL_EBADSIG;
}

void cl_hex_encode(char *out, const uint8_t *in, size_t len) {
  sodium_bin2hex(out, 2 * len + 1, in, len);
}

int cl_hex_decode(uint8_t *out, size_t outlen, const char *hex, size_t hexlen) {
  size_t bin_len = 0;
  const char *end = NULL;
  if (hexlen != 2 * outlen) return CL_EMALFORMED;
  if (sodium_hex2bin(out, outlen, hex, hexlen, NULL, &bin_len, &end) != 0) return CL_EMALFORMED;
  if (bin_len != outlen || end != hex + hexlen) return CL_EMALFORMED;
  return CL_OK;
}

void cl_pk_to_hex(const uint8_t pk[CL_PK_LEN], char out[CL_PK_HEX_LEN + 1]) {
  cl_hex_encode(out, pk, CL_PK_LEN);
}

int cl_pk_from_hex(const char *text, uint8_t pk[CL_PK_LEN]) {
  if (!text) return CL_EMALFORMED;
  while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r') text++;
  size_t n = strlen(text);
  while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n' ||
                   text[n - 1] == '\r'))
    n--;
  return cl_hex_decode(pk, CL_PK_LEN, text, n);
}

int cl_pk_check(const uint8_t pk[CL_PK_LEN]) {
  return crypto_core_ed25519_is_valid_point(pk) ? CL_OK : CL_EMALFORMED;
}

int cl_key_save(const cl_key *key, const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return errno == EEXIST ? CL_EEXIST : CL_EIO;
  char seedhex[65], pkhex[65];
  cl_hex_encode(seedhex, key->sk, 32);
  cl_pk_to_hex(key->pk, pkhex);
  char buf[256];
  int n = snprintf(buf, sizeof buf, "%s\nseed %s\npublic %s\n", MAGIC, seedhex, pkhex);
  sodium_memzero(seedhex, sizeof seedhex);
  int rc = CL_OK;
  if (n <= 0 || write(fd, buf, (size_t)n) != n || fsync(fd) != 0) rc = CL_EIO;
  sodium_memzero(buf, sizeof buf);
  if (close(fd) != 0) rc = CL_EIO;
  if (rc != CL_OK) unlink(path);
  return rc;
}

int cl_key_load(cl_key **out, const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    cl_err_set(err, errlen, "cannot open: %s", strerror(errno));
    return CL_EIO;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    cl_err_set(err, errlen, "cannot stat");
    return CL_EIO;
  }
  if (st.st_mode & 077) {
    close(fd);
    cl_err_set(err, errlen, "key file is readable by group or others; chmod 600 it");
    return CL_EPERM;
  }
  char *buf = sodium_malloc(512);
  if (!buf) {
    close(fd);
    return CL_ENOMEM;
  }
  ssize_t n = read(fd, buf, 511);
  close(fd);
  if (n < 0) {
    sodium_free(buf);
    cl_err_set(err, errlen, "read failed");
    return CL_EIO;
  }
  buf[n] = '\0';
  int rc = CL_OK;
  uint8_t seed[32], pk[32];
  char *save = NULL;
  char *l1 = strtok_r(buf, "\n", &save);
  char *l2 = l1 ? strtok_r(NULL, "\n", &save) : NULL;
  char *l3 = l2 ? strtok_r(NULL, "\n", &save) : NULL;
  if (!l1 || strcmp(l1, MAGIC) != 0) {
    rc = (l1 && strncmp(l1, "chiploc-secret-key ", 19) == 0) ? CL_EVERSION : CL_EMALFORMED;
    cl_err_set(err, errlen, "%s",
               rc == CL_EVERSION
                   ? "unsupported key file version (want v1)"
                   : "not a chiploc key file (first line must be 'chiploc-secret-key v1')");
  } else if (!l2 || strncmp(l2, "seed ", 5) != 0 ||
             cl_hex_decode(seed, 32, l2 + 5, strlen(l2 + 5)) != CL_OK) {
    rc = CL_EMALFORMED;
    cl_err_set(err, errlen, "line 2 must be 'seed <64 hex chars>'");
  } else if (!l3 || strncmp(l3, "public ", 7) != 0 || cl_pk_from_hex(l3 + 7, pk) != CL_OK) {
    rc = CL_EMALFORMED;
    cl_err_set(err, errlen, "line 3 must be 'public <64 hex chars>'");
  }
  sodium_free(buf);
  if (rc != CL_OK) {
    sodium_memzero(seed, sizeof seed);
    return rc;
  }
  cl_key *k = NULL;
  rc = cl_key_from_seed(&k, seed);
  sodium_memzero(seed, sizeof seed);
  if (rc != CL_OK) return rc;
  if (sodium_memcmp(k->pk, pk, 32) != 0) {
    cl_key_destroy(&k);
    cl_err_set(err, errlen, "public key line does not match the seed");
    return CL_EMALFORMED;
  }
  *out = k;
  return CL_OK;
}
