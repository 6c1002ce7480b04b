/*
 * Signed, hash-chained attestation records written by the verifier: one per
 * chip and round. Like every signed record in chiploc it covers a fixed byte
 * layout (docs/ATTESTATION.md), never a database row or a serialisation. Each
 * record carries the hash of the same chip's previous record, so deleting,
 * inserting or editing any record breaks the chain. Pure: no I/O.
 */
#ifndef CL_ATTEST_H
#define CL_ATTEST_H

#include "cl_key.h"

#include <stddef.h>
#include <stdint.h>

#define CL_CTX_ATTESTATION "chiploc v1 attestation"
#define CL_CTX_ATTESTATION_HASH "chiploc v1 attestation-hash"
#define CL_HASH_LEN 32

#define CL_ATTESTATION_LAYOUT_LEN                                                           \
  (sizeof CL_CTX_ATTESTATION + 32 + 32 + 8 + 8 + 32 + 4 + 8 + 4 + 4 + 8 + 32 + 8 + 32 + 32 + \
   4 + 32)

/* Verdict codes inside the layout (stable: part of the signed format). Each
 * *_COUNT is one past the largest code of its kind, the size of a table
 * indexed by those codes; a byte at or above it is no known verdict. */
enum {
  CL_ATT_CONSISTENT = 0, CL_ATT_INSUFFICIENT = 1, CL_ATT_INCONSISTENT = 2,
  CL_ATT_CONSISTENCY_COUNT = 3,
};
enum {
  CL_ATT_SITE_UNKNOWN = 0, CL_ATT_SITE_CONSISTENT = 1, CL_ATT_SITE_EXCLUDED = 2,
  CL_ATT_SITE_COUNT = 3,
};
enum {
  CL_ATT_REGION_UNKNOWN = 0, CL_ATT_REGION_INSIDE = 1, CL_ATT_REGION_OUTSIDE = 2,
  CL_ATT_REGION_UNDETERMINED = 3,
  CL_ATT_REGION_COUNT = 4,
};

typedef struct {
  uint8_t chip[CL_PK_LEN];
  uint8_t verifier[CL_PK_LEN];
  uint64_t round_end_ns;     /* unix ns: the end of the measurement window */
  uint64_t window_ns;        /* window length */
  uint8_t prev_hash[CL_HASH_LEN]; /* hash of the chip's previous attestation; zeros if first */
  uint8_t consistency, site, region, n_excluded;
  uint64_t speed_m_per_s;    /* propagation speed of the bounds, whole m/s */
  int32_t centre_lat_e7, centre_lon_e7; /* degrees * 1e7, rounded; 0 if not consistent */
  uint64_t radius_m;         /* rounded up; 0 if not consistent */
  uint8_t site_landmark[CL_PK_LEN]; /* excluding landmark, zeros if none */
  int64_t site_margin_m;     /* metres beyond that landmark's bound, 0 if none */
  uint8_t allowed_digest[CL_HASH_LEN];  /* cl_attest_digest_codes of the allowed regions */
  uint8_t excluded_digest[CL_HASH_LEN]; /* cl_attest_digest_keys of the excluded landmarks */
  uint32_t n_measurements;
  uint8_t measurements_digest[CL_HASH_LEN]; /* cl_attest_digest_sigs of the measurements used */
  uint8_t sig[CL_SIG_LEN];   /* verifier signature over the layout */
} cl_attestation;

/* Writes the layout (CL_ATTESTATION_LAYOUT_LEN bytes); returns its length. */
size_t cl_attest_layout(uint8_t out[CL_ATTESTATION_LAYOUT_LEN], const cl_attestation *a);
/* Fills a->sig; a->verifier must be the key's public key. */
void cl_attest_sign(cl_attestation *a, const cl_key *verifier);
/* 0 or CL_EBADSIG. */
int cl_attest_verify(const cl_attestation *a);
/* SHA-256(context || NUL || layout || signature): the chain link. */
void cl_attest_hash(const cl_attestation *a, uint8_t out[CL_HASH_LEN]);

/* SHA-256 of the codes sorted bytewise and joined by ','. codes may be NULL
 * when n is 0. The array is not modified. Returns 0 or CL_ENOMEM. */
int cl_attest_digest_codes(const char *const *codes, size_t n, uint8_t out[CL_HASH_LEN]);
/* SHA-256 of the 32-byte keys sorted bytewise and concatenated. */
int cl_attest_digest_keys(const uint8_t (*keys)[CL_PK_LEN], size_t n, uint8_t out[CL_HASH_LEN]);
/* SHA-256 of the 64-byte signatures sorted bytewise and concatenated. */
int cl_attest_digest_sigs(const uint8_t (*sigs)[CL_SIG_LEN], size_t n, uint8_t out[CL_HASH_LEN]);

#endif
