/* Attestation layout, signature, chain hash and digests. Pure functions. */
#include "cl_attest.h"
#include "cl_err.h"
#include "cl_layout.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

size_t cl_attest_layout(uint8_t out[CL_ATTESTATION_LAYOUT_LEN], const cl_attestation *a) {
  uint8_t *p = out;
  memcpy(p, CL_CTX_ATTESTATION, sizeof CL_CTX_ATTESTATION);
  p += sizeof CL_CTX_ATTESTATION;
#define PUT(src, n) (memcpy(p, (src), (n)), p += (n))
  PUT(a->chip, CL_PK_LEN);
  PUT(a->verifier, CL_PK_LEN);
  cl_put_be64(p, a->round_end_ns), p += 8;
  cl_put_be64(p, a->window_ns), p += 8;
  PUT(a->prev_hash, CL_HASH_LEN);
  *p++ = a->consistency;
  *p++ = a->site;
  *p++ = a->region;
  *p++ = a->n_excluded;
  cl_put_be64(p, a->speed_m_per_s), p += 8;
  cl_put_be32(p, (uint32_t)a->centre_lat_e7), p += 4;
  cl_put_be32(p, (uint32_t)a->centre_lon_e7), p += 4;
  cl_put_be64(p, a->radius_m), p += 8;
  PUT(a->site_landmark, CL_PK_LEN);
  cl_put_be64(p, (uint64_t)a->site_margin_m), p += 8;
  PUT(a->allowed_digest, CL_HASH_LEN);
  PUT(a->excluded_digest, CL_HASH_LEN);
  cl_put_be32(p, a->n_measurements), p += 4;
  PUT(a->measurements_digest, CL_HASH_LEN);
#undef PUT
  return (size_t)(p - out);
}

void cl_attest_sign(cl_attestation *a, const cl_key *verifier) {
  uint8_t buf[CL_ATTESTATION_LAYOUT_LEN];
  size_t n = cl_attest_layout(buf, a);
  cl_key_sign(verifier, a->sig, buf, n);
}

int cl_attest_verify(const cl_attestation *a) {
  uint8_t buf[CL_ATTESTATION_LAYOUT_LEN];
  size_t n = cl_attest_layout(buf, a);
  return cl_sig_verify(a->verifier, a->sig, buf, n);
}

void cl_attest_hash(const cl_attestation *a, uint8_t out[CL_HASH_LEN]) {
  uint8_t buf[CL_ATTESTATION_LAYOUT_LEN];
  size_t n = cl_attest_layout(buf, a);
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, (const uint8_t *)CL_CTX_ATTESTATION_HASH,
                            sizeof CL_CTX_ATTESTATION_HASH);
  crypto_hash_sha256_update(&st, buf, n);
  crypto_hash_sha256_update(&st, a->sig, CL_SIG_LEN);
  crypto_hash_sha256_final(&st, out);
}

static int cmp_str(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

int cl_attest_digest_codes(const char *const *codes, size_t n, uint8_t out[CL_HASH_LEN]) {
  const char **sorted = malloc((n ? n : 1) * sizeof *sorted);
  if (!sorted) return CL_ENOMEM;
  if (n) memcpy(sorted, codes, n * sizeof *sorted);
  qsort(sorted, n, sizeof *sorted, cmp_str);
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  for (size_t i = 0; i < n; i++) {
    if (i) crypto_hash_sha256_update(&st, (const uint8_t *)",", 1);
    crypto_hash_sha256_update(&st, (const uint8_t *)sorted[i], strlen(sorted[i]));
  }
  crypto_hash_sha256_final(&st, out);
  free(sorted);
  return CL_OK;
}

/* Sorts n records of `size` bytes bytewise and hashes their concatenation. */
static int digest_sorted(const void *recs, size_t n, size_t size, uint8_t out[CL_HASH_LEN],
                         int (*cmp)(const void *, const void *)) {
  uint8_t *copy = malloc(n ? n * size : 1);
  if (!copy) return CL_ENOMEM;
  if (n) memcpy(copy, recs, n * size);
  qsort(copy, n, size, cmp);
  crypto_hash_sha256(out, copy, n * size);
  free(copy);
  return CL_OK;
}

static int cmp_key(const void *x, const void *y) { return memcmp(x, y, CL_PK_LEN); }
static int cmp_sig(const void *x, const void *y) { return memcmp(x, y, CL_SIG_LEN); }

int cl_attest_digest_keys(const uint8_t (*keys)[CL_PK_LEN], size_t n, uint8_t out[CL_HASH_LEN]) {
  return digest_sorted(keys, n, CL_PK_LEN, out, cmp_key);
}

int cl_attest_digest_sigs(const uint8_t (*sigs)[CL_SIG_LEN], size_t n, uint8_t out[CL_HASH_LEN]) {
  return digest_sorted(sigs, n, CL_SIG_LEN, out, cmp_sig);
}
