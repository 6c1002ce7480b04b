/*
 * An attestation as EAT claims in a JWS (see cl_eat.h). The claims are
 * built in one place, cl_eat_claims, and the verifier builds them again
 * from the embedded layout and compares: whatever a token's JSON says
 * beyond the layout fails that comparison, so no second reading of the
 * claims exists that could drift from the first.
 */
#include "cl_eat.h"
#include "cl_err.h"
#include "cl_jws.h"
#include "cl_layout.h"

#include <stdlib.h>
#include <string.h>

/* Every int32 of degrees x 10^7 has at most 10 significant digits, so
 * printing location's degrees with 10 gives the decimal the layout holds
 * ("48.8566", not "48.856600000000000"), which reads back as the same
 * double. */
#define EAT_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(10))

static const char *const CONSISTENCY[CL_ATT_CONSISTENCY_COUNT] = {"CONSISTENT", "INSUFFICIENT",
                                                                  "INCONSISTENT"};
static const char *const SITE[CL_ATT_SITE_COUNT] = {"UNKNOWN", "SITE_CONSISTENT",
                                                    "SITE_EXCLUDED"};
static const char *const REGION[CL_ATT_REGION_COUNT] = {"UNKNOWN", "INSIDE", "OUTSIDE",
                                                        "UNDETERMINED"};

/* ---- the layout read back -------------------------------------------------------- */

int cl_eat_parse_layout(const uint8_t *buf, size_t len, cl_attestation *a) {
  memset(a, 0, sizeof *a);
  if (len == CL_ATTESTATION_LAYOUT_V1_LEN &&
      memcmp(buf, CL_CTX_ATTESTATION, sizeof CL_CTX_ATTESTATION) == 0)
    a->version = CL_ATT_V1;
  else if (len == CL_ATTESTATION_LAYOUT_V2_LEN &&
           memcmp(buf, CL_CTX_ATTESTATION_V2, sizeof CL_CTX_ATTESTATION_V2) == 0)
    a->version = CL_ATT_V2;
  else
    return CL_EMALFORMED;
  /* Both contexts are 22 characters and a NUL: the fields start at 23. */
  const uint8_t *p = buf + sizeof CL_CTX_ATTESTATION;
  memcpy(a->chip, p, CL_PK_LEN), p += CL_PK_LEN;
  memcpy(a->verifier, p, CL_PK_LEN), p += CL_PK_LEN;
  a->round_end_ns = cl_get_be64(p), p += 8;
  a->window_ns = cl_get_be64(p), p += 8;
  memcpy(a->prev_hash, p, CL_HASH_LEN), p += CL_HASH_LEN;
  a->consistency = *p++;
  a->site = *p++;
  a->region = *p++;
  a->n_excluded = *p++;
  a->speed_m_per_s = cl_get_be64(p), p += 8;
  a->centre_lat_e7 = (int32_t)cl_get_be32(p), p += 4;
  a->centre_lon_e7 = (int32_t)cl_get_be32(p), p += 4;
  a->radius_m = cl_get_be64(p), p += 8;
  memcpy(a->site_landmark, p, CL_PK_LEN), p += CL_PK_LEN;
  a->site_margin_m = (int64_t)cl_get_be64(p), p += 8;
  memcpy(a->allowed_digest, p, CL_HASH_LEN), p += CL_HASH_LEN;
  memcpy(a->excluded_digest, p, CL_HASH_LEN), p += CL_HASH_LEN;
  a->n_measurements = cl_get_be32(p), p += 4;
  memcpy(a->measurements_digest, p, CL_HASH_LEN), p += CL_HASH_LEN;
  if (a->version == CL_ATT_V2) {
    memcpy(a->site_digest, p, CL_HASH_LEN), p += CL_HASH_LEN;
    memcpy(a->landmarks_digest, p, CL_HASH_LEN), p += CL_HASH_LEN;
    memcpy(a->regions_digest, p, CL_HASH_LEN), p += CL_HASH_LEN;
  }
  /* The writer is the definition: what it does not give back byte for
   * byte was not read right. */
  uint8_t again[CL_ATTESTATION_LAYOUT_MAX];
  if ((size_t)(p - buf) != len || cl_attest_layout(again, a) != len || memcmp(again, buf, len))
    return CL_EMALFORMED;
  return CL_OK;
}

/* ---- claims ------------------------------------------------------------------------- */

static int cmp_code(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int cmp_key(const void *x, const void *y) { return memcmp(x, y, CL_PK_LEN); }

/* Sets key of o to v; either may be NULL after a failed allocation. 0, or
 * 1 when it failed; v is o's or dropped in either case. */
static int put(json_t *o, const char *key, json_t *v) {
  if (!o) {
    json_decref(v);
    return 1;
  }
  return json_object_set_new(o, key, v) != 0;
}

static json_t *hex_json(const uint8_t *p, size_t len) {
  char buf[2 * CL_SIG_LEN + 1];
  cl_hex_encode(buf, p, len);
  return json_string(buf);
}

static json_t *b64_json(const uint8_t *p, size_t len) {
  char *s = cl_b64url_encode(p, len);
  json_t *v = s ? json_string(s) : NULL;
  free(s);
  return v;
}

static int all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

/* The sorted copies of x's codes and keys into *codes and *keys, after
 * checking them against a's digests. */
static int context_lists(const cl_attestation *a, const cl_eat_context *x, const char ***codes,
                         uint8_t (**keys)[CL_PK_LEN], char *err, size_t errlen) {
  *codes = malloc((x->n_allowed ? x->n_allowed : 1) * sizeof **codes);
  *keys = malloc((x->n_excluded ? x->n_excluded : 1) * sizeof **keys);
  if (!*codes || !*keys) return CL_ENOMEM;
  if (x->n_allowed) memcpy(*codes, x->allowed, x->n_allowed * sizeof **codes);
  if (x->n_excluded) memcpy(*keys, x->excluded, x->n_excluded * sizeof **keys);
  for (size_t i = 0; i < x->n_allowed; i++)
    if (!(*codes)[i]) {
      cl_err_set(err, errlen, "allowed region %zu: no code", i + 1);
      return CL_EINVAL;
    }
  qsort(*codes, x->n_allowed, sizeof **codes, cmp_code);
  qsort(*keys, x->n_excluded, sizeof **keys, cmp_key);
  uint8_t d[CL_HASH_LEN];
  int rc = cl_attest_digest_codes(*codes, x->n_allowed, d);
  if (rc != CL_OK) return rc;
  if (memcmp(d, a->allowed_digest, CL_HASH_LEN) != 0) {
    cl_err_set(err, errlen, "the %zu allowed region code(s) do not give the signed allowed_digest",
               x->n_allowed);
    return CL_EINVAL;
  }
  rc = cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN]) * keys, x->n_excluded, d);
  if (rc != CL_OK) return rc;
  if (x->n_excluded != a->n_excluded || memcmp(d, a->excluded_digest, CL_HASH_LEN) != 0) {
    cl_err_set(err, errlen,
               "the %zu excluded landmark key(s) do not give the signed n_excluded (%u) and "
               "excluded_digest",
               x->n_excluded, a->n_excluded);
    return CL_EINVAL;
  }
  return CL_OK;
}

int cl_eat_claims(const cl_attestation *a, const cl_eat_context *x, json_t **out, char *err,
                  size_t errlen) {
  *out = NULL;
  uint8_t layout[CL_ATTESTATION_LAYOUT_MAX];
  size_t layout_len = cl_attest_layout(layout, a);
  if (layout_len == 0) {
    cl_err_set(err, errlen, "attestation layout version %u is none", a->version);
    return CL_EINVAL;
  }
  if (!x->issuer || !x->issuer[0] || !x->serial || !x->serial[0] || x->position == 0) {
    cl_err_set(err, errlen, "the issuer, the serial and the chain position must be given");
    return CL_EINVAL;
  }
  if (a->consistency >= CL_ATT_CONSISTENCY_COUNT || a->site >= CL_ATT_SITE_COUNT ||
      a->region >= CL_ATT_REGION_COUNT) {
    cl_err_set(err, errlen, "verdict codes %u/%u/%u: one has no name", a->consistency, a->site,
               a->region);
    return CL_EMALFORMED;
  }
  /* JSON integers here are 63-bit (jansson's json_int_t, and what most
   * readers keep exactly is far less: see docs/ATTESTATION.md). */
  if (a->round_end_ns > INT64_MAX || a->window_ns > INT64_MAX || a->radius_m > INT64_MAX ||
      a->speed_m_per_s > INT64_MAX) {
    cl_err_set(err, errlen, "a time, speed or radius beyond 2^63 - 1");
    return CL_EMALFORMED;
  }
  const char **codes = NULL;
  uint8_t(*keys)[CL_PK_LEN] = NULL;
  int rc = context_lists(a, x, &codes, &keys, err, errlen);
  json_t *c = NULL, *claims = NULL;
  uint8_t hash[CL_HASH_LEN];
  if (rc == CL_OK) rc = cl_attest_hash(a, hash);
  if (rc == CL_OK) {
    rc = CL_ENOMEM;
    claims = json_object();
    c = json_object();
  }
  if (claims && c) {
    /* One member per statement: insertion order is the order of the text
     * (jansson keeps it), and a failed put has already dropped its value. */
    uint64_t start_ns = a->round_end_ns >= a->window_ns ? a->round_end_ns - a->window_ns : 0;
    int bad = 0;
    bad |= put(claims, "iss", json_string(x->issuer));
    bad |= put(claims, "sub", b64_json(a->chip, CL_PK_LEN));
    bad |= put(claims, "iat", json_integer((json_int_t)(a->round_end_ns / 1000000000u)));
    bad |= put(claims, "nbf", json_integer((json_int_t)(start_ns / 1000000000u)));
    bad |= put(claims, "eat_profile", json_string(CL_EAT_PROFILE));
    if (a->consistency == CL_ATT_CONSISTENT) {
      json_t *loc = json_object();
      bad |= put(loc, "latitude", json_real(a->centre_lat_e7 / 1e7));
      bad |= put(loc, "longitude", json_real(a->centre_lon_e7 / 1e7));
      bad |= put(loc, "accuracy", json_integer((json_int_t)a->radius_m));
      bad |= put(claims, "location", loc);
    }
    bad |= put(c, "serial", json_string(x->serial));
    bad |= put(c, "layout_version", json_integer(a->version));
    bad |= put(c, "round_end_ns", json_integer((json_int_t)a->round_end_ns));
    bad |= put(c, "window_ns", json_integer((json_int_t)a->window_ns));
    bad |= put(c, "consistency", json_string(CONSISTENCY[a->consistency]));
    bad |= put(c, "site_verdict", json_string(SITE[a->site]));
    bad |= put(c, "region_verdict", json_string(REGION[a->region]));
    bad |= put(c, "radius_m", json_integer((json_int_t)a->radius_m));
    bad |= put(c, "centre_lat_e7", json_integer(a->centre_lat_e7));
    bad |= put(c, "centre_lon_e7", json_integer(a->centre_lon_e7));
    bad |= put(c, "speed_m_per_s", json_integer((json_int_t)a->speed_m_per_s));
    bad |= put(c, "site_landmark", all_zero(a->site_landmark, CL_PK_LEN)
                                       ? json_null()
                                       : hex_json(a->site_landmark, CL_PK_LEN));
    bad |= put(c, "site_margin_m", json_integer(a->site_margin_m));
    json_t *allowed = json_array(), *excluded = json_array();
    for (size_t i = 0; allowed && i < x->n_allowed; i++)
      bad |= json_array_append_new(allowed, json_string(codes[i]));
    for (size_t i = 0; excluded && i < x->n_excluded; i++)
      bad |= json_array_append_new(excluded, hex_json(keys[i], CL_PK_LEN));
    bad |= put(c, "allowed_regions", allowed);
    bad |= put(c, "excluded_landmarks", excluded);
    bad |= put(c, "n_measurements", json_integer(a->n_measurements));
    json_t *chain = json_object();
    bad |= put(chain, "position", json_integer(x->position));
    bad |= put(chain, "hash", hex_json(hash, CL_HASH_LEN));
    bad |= put(chain, "prev_hash", hex_json(a->prev_hash, CL_HASH_LEN));
    bad |= put(c, "chain", chain);
    json_t *d = json_object();
    bad |= put(d, "allowed", hex_json(a->allowed_digest, CL_HASH_LEN));
    bad |= put(d, "excluded", hex_json(a->excluded_digest, CL_HASH_LEN));
    bad |= put(d, "measurements", hex_json(a->measurements_digest, CL_HASH_LEN));
    if (a->version == CL_ATT_V2) {
      bad |= put(d, "site", hex_json(a->site_digest, CL_HASH_LEN));
      bad |= put(d, "landmarks", hex_json(a->landmarks_digest, CL_HASH_LEN));
      bad |= put(d, "regions", hex_json(a->regions_digest, CL_HASH_LEN));
    }
    bad |= put(c, "digests", d);
    bad |= put(c, "layout", b64_json(layout, layout_len));
    bad |= put(c, "signature", b64_json(a->sig, CL_SIG_LEN));
    bad |= put(claims, "chiploc", c);
    c = NULL; /* claims holds it now */
    if (!bad) rc = CL_OK;
  }
  json_decref(c);
  free(codes);
  free(keys);
  if (rc != CL_OK) {
    json_decref(claims);
    if (rc == CL_ENOMEM) cl_err_set(err, errlen, "out of memory for the claims");
    return rc;
  }
  *out = claims;
  return CL_OK;
}

/* The header cl_eat_sign writes for the key pk. */
static json_t *eat_header(const uint8_t pk[CL_PK_LEN]) {
  char kid[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(pk, kid);
  return json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", CL_EAT_TYP, "kid", kid);
}

int cl_eat_sign(const cl_attestation *a, const cl_eat_context *x, const cl_key *key, char **token,
                char *err, size_t errlen) {
  *token = NULL;
  const uint8_t *pk = cl_key_public(key);
  if (memcmp(a->verifier, pk, CL_PK_LEN) != 0 || cl_attest_verify(a) != CL_OK) {
    cl_err_set(err, errlen, "the attestation does not verify under the signing key");
    return CL_EBADSIG;
  }
  json_t *claims = NULL;
  int rc = cl_eat_claims(a, x, &claims, err, errlen);
  if (rc != CL_OK) return rc;
  json_t *h = eat_header(pk);
  char *header = h ? json_dumps(h, EAT_JSON_FLAGS) : NULL;
  char *payload = json_dumps(claims, EAT_JSON_FLAGS);
  rc = header && payload ? cl_jws_sign(header, (const uint8_t *)payload, strlen(payload), key,
                                       token, err, errlen)
                         : CL_ENOMEM;
  if (rc == CL_ENOMEM) cl_err_set(err, errlen, "out of memory for the token");
  free(header);
  free(payload);
  json_decref(h);
  json_decref(claims);
  return rc;
}

/* ---- verification ------------------------------------------------------------------ */

/* Names, into err, the first member where `got` differs from `want`
 * (recursing into objects; path is the name so far). */
static void name_difference(const json_t *want, const json_t *got, const char *path, char *err,
                            size_t errlen) {
  if (json_is_object(want) && json_is_object(got)) {
    const char *k;
    json_t *v;
    char sub[128];
    json_object_foreach((json_t *)want, k, v) {
      snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", k);
      json_t *g = json_object_get(got, k);
      if (!g) {
        cl_err_set(err, errlen, "claim %s is missing", sub);
        return;
      }
      if (!json_equal(v, g)) {
        name_difference(v, g, sub, err, errlen);
        return;
      }
    }
    json_object_foreach((json_t *)got, k, v) {
      if (!json_object_get(want, k)) {
        cl_err_set(err, errlen, "claim %s%s%.60s is not part of this profile", path,
                   path[0] ? "." : "", k);
        return;
      }
    }
  }
  cl_err_set(err, errlen, "claim %s differs from the signed record", path[0] ? path : "set");
}

/* The member at a dotted path of claims, or NULL. */
static json_t *claim(json_t *claims, const char *a, const char *b, const char *c) {
  json_t *v = json_object_get(claims, a);
  if (b) v = json_object_get(v, b);
  if (c) v = json_object_get(v, c);
  return v;
}

/* What the token states beyond the layout, read from its claims: the
 * strings point into claims, the arrays are malloc'd (*codes, *keys). */
static int read_context(json_t *claims, cl_eat_context *x, const char ***codes,
                        uint8_t (**keys)[CL_PK_LEN], char *err, size_t errlen) {
  memset(x, 0, sizeof *x);
  *codes = NULL;
  *keys = NULL;
  x->issuer = json_string_value(claim(claims, "iss", NULL, NULL));
  x->serial = json_string_value(claim(claims, "chiploc", "serial", NULL));
  json_t *pos = claim(claims, "chiploc", "chain", "position");
  json_t *allowed = claim(claims, "chiploc", "allowed_regions", NULL);
  json_t *excluded = claim(claims, "chiploc", "excluded_landmarks", NULL);
  const char *bad = !x->issuer                      ? "iss"
                    : !x->serial                    ? "chiploc.serial"
                    : !json_is_integer(pos) || json_integer_value(pos) < 1 ||
                            json_integer_value(pos) > UINT32_MAX
                        ? "chiploc.chain.position"
                    : !json_is_array(allowed)  ? "chiploc.allowed_regions"
                    : !json_is_array(excluded) ? "chiploc.excluded_landmarks"
                                               : NULL;
  if (bad) {
    cl_err_set(err, errlen, "claim %s is missing or not of its type", bad);
    return CL_EMALFORMED;
  }
  x->position = (uint32_t)json_integer_value(pos);
  size_t na = json_array_size(allowed), ne = json_array_size(excluded);
  *codes = malloc((na ? na : 1) * sizeof **codes);
  *keys = malloc((ne ? ne : 1) * sizeof **keys);
  if (!*codes || !*keys) {
    cl_err_set(err, errlen, "out of memory");
    return CL_ENOMEM;
  }
  for (size_t i = 0; i < na; i++)
    if (!((*codes)[i] = json_string_value(json_array_get(allowed, i)))) {
      cl_err_set(err, errlen, "claim chiploc.allowed_regions[%zu] is not text", i);
      return CL_EMALFORMED;
    }
  for (size_t i = 0; i < ne; i++) {
    const char *h = json_string_value(json_array_get(excluded, i));
    if (!h || strlen(h) != CL_PK_HEX_LEN || cl_pk_from_hex(h, (*keys)[i]) != CL_OK) {
      cl_err_set(err, errlen, "claim chiploc.excluded_landmarks[%zu] is not a key in hex", i);
      return CL_EMALFORMED;
    }
  }
  x->allowed = *codes;
  x->n_allowed = na;
  x->excluded = (const uint8_t(*)[CL_PK_LEN]) * keys;
  x->n_excluded = ne;
  return CL_OK;
}

/* The embedded record: the layout and its signature, parsed and verified
 * under pk. */
static int embedded_record(json_t *claims, const uint8_t pk[CL_PK_LEN], cl_attestation *a,
                           char *err, size_t errlen) {
  const char *layout = json_string_value(claim(claims, "chiploc", "layout", NULL));
  const char *sig = json_string_value(claim(claims, "chiploc", "signature", NULL));
  if (!layout || !sig) {
    cl_err_set(err, errlen, "claim chiploc.%s is missing or not text",
               layout ? "signature" : "layout");
    return CL_EMALFORMED;
  }
  uint8_t *lb = NULL, *sb = NULL;
  size_t ll = 0, sl = 0;
  int rc = cl_b64url_decode(layout, strlen(layout), &lb, &ll);
  if (rc == CL_OK) rc = cl_b64url_decode(sig, strlen(sig), &sb, &sl);
  if (rc == CL_OK && sl != CL_SIG_LEN) rc = CL_EMALFORMED;
  if (rc == CL_OK) rc = cl_eat_parse_layout(lb, ll, a);
  if (rc == CL_EMALFORMED)
    cl_err_set(err, errlen, "claims chiploc.layout and chiploc.signature: not an attestation "
                            "layout and a 64-byte signature in base64url");
  if (rc == CL_OK) {
    memcpy(a->sig, sb, CL_SIG_LEN);
    char want[CL_PK_HEX_LEN + 1], got[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(pk, want);
    cl_pk_to_hex(a->verifier, got);
    if (memcmp(a->verifier, pk, CL_PK_LEN) != 0) {
      cl_err_set(err, errlen, "the embedded attestation is by verifier %s, not %s", got, want);
      rc = CL_EBADSIG;
    } else if (cl_attest_verify(a) != CL_OK) {
      cl_err_set(err, errlen, "the embedded attestation's signature does not verify under %s",
                 want);
      rc = CL_EBADSIG;
    }
  }
  if (rc == CL_ENOMEM) cl_err_set(err, errlen, "out of memory");
  free(lb);
  free(sb);
  return rc;
}

int cl_eat_verify(const char *token, size_t len, const uint8_t pk[CL_PK_LEN], cl_attestation *out,
                  json_t **claims_out, char *err, size_t errlen) {
  if (claims_out) *claims_out = NULL;
  json_t *header = NULL, *claims = NULL, *want = NULL, *want_header = NULL;
  uint8_t *payload = NULL;
  size_t payload_len = 0;
  int rc = cl_jws_verify(token, len, pk, &header, &payload, &payload_len, err, errlen);
  if (rc == CL_OK) {
    want_header = eat_header(pk);
    if (!want_header) {
      rc = CL_ENOMEM;
    } else if (!json_equal(header, want_header)) {
      const char *typ = json_string_value(json_object_get(header, "typ"));
      if (!json_object_get(header, "kid"))
        cl_err_set(err, errlen, "JWS header: no kid");
      else if (!typ || strcmp(typ, CL_EAT_TYP) != 0)
        cl_err_set(err, errlen, "JWS header: typ %.40s, want %s", typ ? typ : "missing",
                   CL_EAT_TYP);
      else
        cl_err_set(err, errlen, "JWS header: members beyond alg, typ and kid");
      rc = CL_EMALFORMED;
    }
  }
  if (rc == CL_OK) {
    json_error_t je;
    claims = json_loadb((const char *)payload, payload_len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(claims)) {
      cl_err_set(err, errlen, "JWS payload: not one JSON object (%s)",
                 claims ? "another type" : je.text);
      rc = CL_EMALFORMED;
    }
  }
  cl_attestation a;
  memset(&a, 0, sizeof a);
  if (rc == CL_OK) rc = embedded_record(claims, pk, &a, err, errlen);
  const char **codes = NULL;
  uint8_t(*keys)[CL_PK_LEN] = NULL;
  cl_eat_context x;
  if (rc == CL_OK) rc = read_context(claims, &x, &codes, &keys, err, errlen);
  if (rc == CL_OK) {
    rc = cl_eat_claims(&a, &x, &want, err, errlen);
    if (rc == CL_EINVAL) rc = CL_EMALFORMED; /* the token's lists, not the caller's */
  }
  if (rc == CL_OK && !json_equal(want, claims)) {
    name_difference(want, claims, "", err, errlen);
    rc = CL_EMALFORMED;
  }
  free(codes);
  free(keys);
  free(payload);
  json_decref(header);
  json_decref(want_header);
  json_decref(want);
  if (rc != CL_OK) {
    json_decref(claims);
    return rc;
  }
  if (out) *out = a;
  if (claims_out)
    *claims_out = claims;
  else
    json_decref(claims);
  return CL_OK;
}
