/* Attestation layouts (versions 1 and 2), signature, chain hash and digests.
 * Pure functions. docs/ATTESTATION.md gives every byte. */
#include "cl_attest.h"
#include "cl_err.h"
#include "cl_layout.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The hash context of a layout version, NULL for none. Its sizeof-length
 * (with the NUL) is the same for both versions. */
static const char *hash_context(uint8_t version) {
  switch (version) {
  case CL_ATT_V1: return CL_CTX_ATTESTATION_HASH;
  case CL_ATT_V2: return CL_CTX_ATTESTATION_HASH_V2;
  }
  return NULL;
}

_Static_assert(sizeof CL_CTX_ATTESTATION == sizeof CL_CTX_ATTESTATION_V2,
               "both layouts put the fields at the same offsets");
_Static_assert(sizeof CL_CTX_ATTESTATION_HASH == sizeof CL_CTX_ATTESTATION_HASH_V2,
               "both hash contexts have one length");

size_t cl_attest_layout(uint8_t out[CL_ATTESTATION_LAYOUT_MAX], const cl_attestation *a) {
  const char *ctx;
  switch (a->version) {
  case CL_ATT_V1: ctx = CL_CTX_ATTESTATION; break;
  case CL_ATT_V2: ctx = CL_CTX_ATTESTATION_V2; break;
  default: return 0;
  }
  uint8_t *p = out;
  memcpy(p, ctx, sizeof CL_CTX_ATTESTATION);
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
  if (a->version == CL_ATT_V2) {
    PUT(a->site_digest, CL_HASH_LEN);
    PUT(a->landmarks_digest, CL_HASH_LEN);
    PUT(a->regions_digest, CL_HASH_LEN);
  }
#undef PUT
  return (size_t)(p - out);
}

int cl_attest_sign(cl_attestation *a, const cl_key *verifier) {
  uint8_t buf[CL_ATTESTATION_LAYOUT_MAX];
  size_t n = cl_attest_layout(buf, a);
  if (n == 0) {
    memset(a->sig, 0, CL_SIG_LEN);
    return CL_EINVAL;
  }
  cl_key_sign(verifier, a->sig, buf, n);
  return CL_OK;
}

int cl_attest_verify(const cl_attestation *a) {
  uint8_t buf[CL_ATTESTATION_LAYOUT_MAX];
  size_t n = cl_attest_layout(buf, a);
  if (n == 0) return CL_EBADSIG;
  return cl_sig_verify(a->verifier, a->sig, buf, n);
}

int cl_attest_hash(const cl_attestation *a, uint8_t out[CL_HASH_LEN]) {
  uint8_t buf[CL_ATTESTATION_LAYOUT_MAX];
  size_t n = cl_attest_layout(buf, a);
  const char *ctx = hash_context(a->version);
  if (n == 0 || !ctx) {
    memset(out, 0, CL_HASH_LEN);
    return CL_EINVAL;
  }
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, (const uint8_t *)ctx, sizeof CL_CTX_ATTESTATION_HASH);
  crypto_hash_sha256_update(&st, buf, n);
  crypto_hash_sha256_update(&st, a->sig, CL_SIG_LEN);
  crypto_hash_sha256_final(&st, out);
  return CL_OK;
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

/* Sorts n records of `size` bytes bytewise and hashes ctx (ctx_len bytes,
 * none when NULL) followed by their concatenation. */
static int digest_sorted(const char *ctx, size_t ctx_len, const void *recs, size_t n, size_t size,
                         uint8_t out[CL_HASH_LEN], int (*cmp)(const void *, const void *)) {
  if (n > SIZE_MAX / size) return CL_ENOMEM;
  uint8_t *copy = malloc(n ? n * size : 1);
  if (!copy) return CL_ENOMEM;
  if (n) memcpy(copy, recs, n * size);
  qsort(copy, n, size, cmp);
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  if (ctx) crypto_hash_sha256_update(&st, (const uint8_t *)ctx, ctx_len);
  crypto_hash_sha256_update(&st, copy, n * size);
  crypto_hash_sha256_final(&st, out);
  free(copy);
  return CL_OK;
}

static int cmp_key(const void *x, const void *y) { return memcmp(x, y, CL_PK_LEN); }
static int cmp_sig(const void *x, const void *y) { return memcmp(x, y, CL_SIG_LEN); }

int cl_attest_digest_keys(const uint8_t (*keys)[CL_PK_LEN], size_t n, uint8_t out[CL_HASH_LEN]) {
  return digest_sorted(NULL, 0, keys, n, CL_PK_LEN, out, cmp_key);
}

int cl_attest_digest_sigs(const uint8_t (*sigs)[CL_SIG_LEN], size_t n, uint8_t out[CL_HASH_LEN]) {
  return digest_sorted(NULL, 0, sigs, n, CL_SIG_LEN, out, cmp_sig);
}

/* ---- version 2 digests ------------------------------------------------------ */

/* The IEEE-754 bits of v, big-endian. */
void cl_attest_digest_site(double lat, double lon, uint8_t out[CL_HASH_LEN]) {
  uint8_t buf[sizeof CL_CTX_DIGEST_SITE + 16];
  memcpy(buf, CL_CTX_DIGEST_SITE, sizeof CL_CTX_DIGEST_SITE);
  cl_put_be64_double(buf + sizeof CL_CTX_DIGEST_SITE, lat);
  cl_put_be64_double(buf + sizeof CL_CTX_DIGEST_SITE + 8, lon);
  crypto_hash_sha256(out, buf, sizeof buf);
}

/* One landmark entry of the landmarks digest: pk || lat || lon. */
#define LANDMARK_ENTRY_LEN (CL_PK_LEN + 8 + 8)

static int cmp_landmark_entry(const void *x, const void *y) {
  return memcmp(x, y, LANDMARK_ENTRY_LEN);
}

int cl_attest_digest_landmarks(const cl_attest_landmark *lms, size_t n, uint8_t out[CL_HASH_LEN]) {
  if (n > 0 && !lms) return CL_EINVAL;
  if (n > SIZE_MAX / LANDMARK_ENTRY_LEN) return CL_ENOMEM;
  uint8_t *entries = malloc(n ? n * LANDMARK_ENTRY_LEN : 1);
  if (!entries) return CL_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    uint8_t *e = entries + i * LANDMARK_ENTRY_LEN;
    memcpy(e, lms[i].pk, CL_PK_LEN);
    cl_put_be64_double(e + CL_PK_LEN, lms[i].lat);
    cl_put_be64_double(e + CL_PK_LEN + 8, lms[i].lon);
  }
  int rc = digest_sorted(CL_CTX_DIGEST_LANDMARKS, sizeof CL_CTX_DIGEST_LANDMARKS, entries, n,
                         LANDMARK_ENTRY_LEN, out, cmp_landmark_entry);
  free(entries);
  return rc;
}

/* A region of the regions digest, for sorting. */
typedef struct {
  const char *code;
  const uint8_t *geometry;
} region_ref;

static int cmp_region_ref(const void *x, const void *y) {
  const region_ref *a = x, *b = y;
  int c = strcmp(a->code, b->code);
  return c ? c : memcmp(a->geometry, b->geometry, CL_HASH_LEN);
}

int cl_attest_digest_regions(const char *const *codes, const uint8_t (*geometry)[CL_HASH_LEN],
                             size_t n, uint8_t out[CL_HASH_LEN]) {
  if (n > 0 && (!codes || !geometry)) return CL_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!codes[i]) return CL_EINVAL;
  if (n > SIZE_MAX / sizeof(region_ref)) return CL_ENOMEM;
  region_ref *refs = malloc((n ? n : 1) * sizeof *refs);
  if (!refs) return CL_ENOMEM;
  for (size_t i = 0; i < n; i++) refs[i] = (region_ref){codes[i], geometry[i]};
  qsort(refs, n, sizeof *refs, cmp_region_ref);
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, (const uint8_t *)CL_CTX_DIGEST_REGIONS,
                            sizeof CL_CTX_DIGEST_REGIONS);
  for (size_t i = 0; i < n; i++) {
    /* The code with its terminating NUL: no code is a prefix of the next
     * entry's bytes. */
    crypto_hash_sha256_update(&st, (const uint8_t *)refs[i].code, strlen(refs[i].code) + 1);
    crypto_hash_sha256_update(&st, refs[i].geometry, CL_HASH_LEN);
  }
  crypto_hash_sha256_final(&st, out);
  free(refs);
  return CL_OK;
}
