/*
 * Signed, hash-chained attestation records written by the verifier: one per
 * chip and round. Like every signed record in chiploc it covers a fixed byte
 * layout (docs/ATTESTATION.md), never a database row or a serialisation. Each
 * record carries the hash of the same chip's previous record, so deleting,
 * inserting or editing any record breaks the chain. Pure: no I/O.
 *
 * Two layouts exist. Version 1 (303 bytes) binds the verdicts and the
 * landmark signatures of the measurements used. Version 2 (399 bytes) is the
 * same field sequence under its own context followed by the digests of the
 * inputs the verdicts were drawn from: the chip's declared site, the used
 * landmarks' keys and positions, and the allowed regions' geometry. The
 * verifier writes version 2; version 1 records stay verifiable.
 */
#ifndef CL_ATTEST_H
#define CL_ATTEST_H

#include "cl_key.h"

#include <stddef.h>
#include <stdint.h>

#define CL_CTX_ATTESTATION "chiploc v1 attestation"
#define CL_CTX_ATTESTATION_HASH "chiploc v1 attestation-hash"
#define CL_CTX_ATTESTATION_V2 "chiploc v2 attestation"
#define CL_CTX_ATTESTATION_HASH_V2 "chiploc v2 attestation-hash"
/* Contexts of the v2 digests (each followed by one NUL in the hashed bytes). */
#define CL_CTX_DIGEST_SITE "chiploc v2 site"
#define CL_CTX_DIGEST_LANDMARKS "chiploc v2 landmarks"
#define CL_CTX_DIGEST_REGIONS "chiploc v2 regions"
#define CL_HASH_LEN 32

/* Layout versions (the `version` field; 0 and anything above 2 are none). */
enum { CL_ATT_V1 = 1, CL_ATT_V2 = 2 };

#define CL_ATTESTATION_LAYOUT_V1_LEN                                                        \
  (sizeof CL_CTX_ATTESTATION + 32 + 32 + 8 + 8 + 32 + 4 + 8 + 4 + 4 + 8 + 32 + 8 + 32 + 32 + \
   4 + 32)
#define CL_ATTESTATION_LAYOUT_V2_LEN                                                         \
  (sizeof CL_CTX_ATTESTATION_V2 + 32 + 32 + 8 + 8 + 32 + 4 + 8 + 4 + 4 + 8 + 32 + 8 + 32 + \
   32 + 4 + 32 + 3 * CL_HASH_LEN)
/* The longest layout: the size of a buffer that holds any of them. */
#define CL_ATTESTATION_LAYOUT_MAX CL_ATTESTATION_LAYOUT_V2_LEN
/* Older name of CL_ATTESTATION_LAYOUT_MAX, kept so that a buffer declared
 * with it holds every layout (it was the v1 length before version 2). */
#define CL_ATTESTATION_LAYOUT_LEN CL_ATTESTATION_LAYOUT_MAX

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
  uint8_t version;           /* CL_ATT_V1 or CL_ATT_V2; 0 is no layout */
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
  /* Version 2 only (ignored by version 1): */
  uint8_t site_digest[CL_HASH_LEN];      /* cl_attest_digest_site of the declared site */
  uint8_t landmarks_digest[CL_HASH_LEN]; /* cl_attest_digest_landmarks of the used landmarks */
  uint8_t regions_digest[CL_HASH_LEN];   /* cl_attest_digest_regions of the allowed regions */
  uint8_t sig[CL_SIG_LEN];   /* verifier signature over the layout */
} cl_attestation;

/* Writes the layout of a->version into out (room for CL_ATTESTATION_LAYOUT_MAX
 * bytes) and returns its length: CL_ATTESTATION_LAYOUT_V1_LEN or _V2_LEN, or
 * 0 for an unknown version (nothing written). */
size_t cl_attest_layout(uint8_t out[CL_ATTESTATION_LAYOUT_MAX], const cl_attestation *a);
/* Fills a->sig; a->verifier must be the key's public key. Returns 0, or
 * CL_EINVAL for an unknown version (a->sig is then zeroed: it verifies
 * nothing). */
int cl_attest_sign(cl_attestation *a, const cl_key *verifier);
/* 0 or CL_EBADSIG (also for an unknown version). */
int cl_attest_verify(const cl_attestation *a);
/* SHA-256(hash context || NUL || layout || signature): the chain link. The
 * hash context follows the version ("chiploc v1 attestation-hash" or "chiploc
 * v2 attestation-hash"). Returns 0, or CL_EINVAL for an unknown version (out
 * is then zeroed). */
int cl_attest_hash(const cl_attestation *a, uint8_t out[CL_HASH_LEN]);

/* SHA-256 of the codes sorted bytewise and joined by ','. codes may be NULL
 * when n is 0. The array is not modified. Returns 0 or CL_ENOMEM. */
int cl_attest_digest_codes(const char *const *codes, size_t n, uint8_t out[CL_HASH_LEN]);
/* SHA-256 of the 32-byte keys sorted bytewise and concatenated. */
int cl_attest_digest_keys(const uint8_t (*keys)[CL_PK_LEN], size_t n, uint8_t out[CL_HASH_LEN]);
/* SHA-256 of the 64-byte signatures sorted bytewise and concatenated. */
int cl_attest_digest_sigs(const uint8_t (*sigs)[CL_SIG_LEN], size_t n, uint8_t out[CL_HASH_LEN]);

/* ---- version 2 digests (docs/ATTESTATION.md gives the bytes and vectors) ---- */

/* SHA-256("chiploc v2 site" NUL || be64(bits of lat) || be64(bits of lon)):
 * the IEEE-754 bits of the doubles exactly as given (so -0.0 and 0.0
 * differ; no rounding). */
void cl_attest_digest_site(double lat, double lon, uint8_t out[CL_HASH_LEN]);

/* A landmark as an attestation's input: its key and enrolled position. */
typedef struct {
  uint8_t pk[CL_PK_LEN];
  double lat, lon;
} cl_attest_landmark;

/* SHA-256("chiploc v2 landmarks" NUL || entries): one 48-byte entry per
 * landmark, pk || be64(bits of lat) || be64(bits of lon), sorted bytewise,
 * duplicates kept. lms may be NULL when n is 0; it is not modified. Returns
 * 0, CL_EINVAL (lms NULL with n > 0) or CL_ENOMEM. */
int cl_attest_digest_landmarks(const cl_attest_landmark *lms, size_t n, uint8_t out[CL_HASH_LEN]);

/* SHA-256("chiploc v2 regions" NUL || entries): for each region, its code's
 * bytes, one NUL and its 32-byte geometry digest (cl_region_digest), sorted
 * by code bytewise (strcmp), equal codes by geometry digest; duplicates kept.
 * codes and geometry may be NULL when n is 0; neither is modified. Returns 0,
 * CL_EINVAL (a NULL array with n > 0, or a NULL code) or CL_ENOMEM. */
int cl_attest_digest_regions(const char *const *codes, const uint8_t (*geometry)[CL_HASH_LEN],
                             size_t n, uint8_t out[CL_HASH_LEN]);

#endif
