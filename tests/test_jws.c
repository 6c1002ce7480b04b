/*
 * Compact JWS with EdDSA (lib/io/cl_jws.c) and attestation results as EAT
 * claims in it (lib/io/cl_eat.c).
 *
 * The JWS side is pinned by RFC 8037's own example (Appendix A.4: the
 * Ed25519 key of RFC 8032 test 1 signing "Example of Ed25519 signing" under
 * {"alg":"EdDSA"}) and by base64url's edge cases; tokens that must be
 * refused are made by hand: "alg" none and HS256, a kid of another key, a
 * "crit" header, duplicate header members, each part tampered with.
 *
 * The EAT side is pinned by the worked example of docs/ATTESTATION.md,
 * "Attestation results for relying parties (JWS)": a version-2 record from
 * fixed seeds (verifier 0x22, chip 0x11) whose token is asserted byte for
 * byte. Then tokens signed with the right key whose claims say something
 * other than the embedded layout (a verdict, the radius, the location, an
 * added claim, an extra allowed region, a different hash) are refused, each
 * naming the claim, and so are a layout by another verifier and a layout
 * whose own signature fails.
 */
#define _GNU_SOURCE /* asprintf */
#include "cl_attest.h"
#include "cl_eat.h"
#include "cl_err.h"
#include "cl_jws.h"
#include "cl_key.h"

#include <check.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- base64url ---------------------------------------------------------------- */

START_TEST(test_b64url) {
  static const struct {
    const char *bin, *b64;
    size_t len;
  } v[] = {{"", "", 0},          {"f", "Zg", 1},       {"fo", "Zm8", 2},
           {"foo", "Zm9v", 3},   {"foob", "Zm9vYg", 4}, {"\xfb\xff", "-_8", 2},
           {"\xff\xfe\xfd", "__79", 3}};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char *e = cl_b64url_encode((const uint8_t *)v[i].bin, v[i].len);
    ck_assert_str_eq(e, v[i].b64);
    free(e);
    uint8_t *d = NULL;
    size_t n = 99;
    ck_assert_int_eq(cl_b64url_decode(v[i].b64, strlen(v[i].b64), &d, &n), CL_OK);
    ck_assert_uint_eq(n, v[i].len);
    ck_assert(d != NULL);
    ck_assert_mem_eq(d, v[i].bin, n);
    free(d);
  }
  /* Padding, the standard alphabet, whitespace, a lone character, unused
   * bits that are not zero ("Zh" would be "f" with a stray bit). */
  static const char *const bad[] = {"Zg==", "Zg=", "Zm+v", "Zm/v", "Zm9v\n", " Zm9v", "Z",
                                    "Zh",   "Zm9",  "Zm9vY", "Zm.v"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint8_t *d = (uint8_t *)1;
    size_t n = 7;
    ck_assert_msg(cl_b64url_decode(bad[i], strlen(bad[i]), &d, &n) == CL_EMALFORMED, "%s",
                  bad[i]);
    ck_assert_ptr_null(d);
    ck_assert_uint_eq(n, 0);
  }
}
END_TEST

/* ---- JWS ------------------------------------------------------------------------- */

/* RFC 8037 A.1 and A.4. */
static const char RFC8037_SEED_HEX[] =
    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char RFC8037_PAYLOAD[] = "Example of Ed25519 signing";
static const char RFC8037_JWS[] =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

static cl_key *key_from_byte(uint8_t b) {
  uint8_t seed[32];
  memset(seed, b, sizeof seed);
  cl_key *k = NULL;
  ck_assert_int_eq(cl_key_from_seed(&k, seed), CL_OK);
  return k;
}

static cl_key *rfc8037_key(void) {
  uint8_t seed[32];
  ck_assert_int_eq(cl_hex_decode(seed, sizeof seed, RFC8037_SEED_HEX, 64), CL_OK);
  cl_key *k = NULL;
  ck_assert_int_eq(cl_key_from_seed(&k, seed), CL_OK);
  return k;
}

/* cl_jws_verify of a NUL-terminated token; the parts it returns are freed. */
static int verify(const char *token, const uint8_t pk[CL_PK_LEN], char *err, size_t errlen) {
  json_t *h = NULL;
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = cl_jws_verify(token, strlen(token), pk, &h, &p, &n, err, errlen);
  if (rc != CL_OK) {
    ck_assert_ptr_null(h);
    ck_assert_ptr_null(p);
  }
  json_decref(h);
  free(p);
  return rc;
}

START_TEST(test_rfc8037_example) {
  cl_key *k = rfc8037_key();
  /* A.1: the public key x. */
  char *x = cl_b64url_encode(cl_key_public(k), CL_PK_LEN);
  ck_assert_str_eq(x, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
  free(x);
  char *tok = NULL, err[256] = "";
  ck_assert_int_eq(cl_jws_sign("{\"alg\":\"EdDSA\"}", (const uint8_t *)RFC8037_PAYLOAD,
                               strlen(RFC8037_PAYLOAD), k, &tok, err, sizeof err),
                   CL_OK);
  ck_assert_str_eq(tok, RFC8037_JWS);
  free(tok);
  json_t *h = NULL;
  uint8_t *p = NULL;
  size_t n = 0;
  ck_assert_int_eq(cl_jws_verify(RFC8037_JWS, strlen(RFC8037_JWS), cl_key_public(k), &h, &p, &n,
                                 err, sizeof err),
                   CL_OK);
  ck_assert_str_eq(json_string_value(json_object_get(h, "alg")), "EdDSA");
  ck_assert_uint_eq(n, strlen(RFC8037_PAYLOAD));
  ck_assert_mem_eq(p, RFC8037_PAYLOAD, n);
  json_decref(h);
  free(p);
  /* Another key does not verify it. */
  cl_key *other = key_from_byte(0x22);
  ck_assert_int_eq(verify(RFC8037_JWS, cl_key_public(other), err, sizeof err), CL_EBADSIG);
  cl_key_destroy(&other);
  /* Signing refuses a header that does not say EdDSA. */
  ck_assert_int_eq(cl_jws_sign("{\"alg\":\"none\"}", (const uint8_t *)"x", 1, k, &tok, err,
                               sizeof err),
                   CL_EINVAL);
  ck_assert_int_eq(cl_jws_sign("[1]", (const uint8_t *)"x", 1, k, &tok, err, sizeof err),
                   CL_EINVAL);
  ck_assert_ptr_null(tok);
  cl_key_destroy(&k);
}
END_TEST

/* A token of the header text and payload text with the given signature
 * bytes (sig may be NULL: an empty third part), owned by the caller. */
static char *forge(const char *header, const char *payload, const uint8_t *sig, size_t sig_len) {
  char *h = cl_b64url_encode((const uint8_t *)header, strlen(header));
  char *p = cl_b64url_encode((const uint8_t *)payload, strlen(payload));
  char *s = cl_b64url_encode(sig ? sig : (const uint8_t *)"", sig ? sig_len : 0);
  size_t n = strlen(h) + strlen(p) + strlen(s) + 3;
  char *t = malloc(n);
  ck_assert(t != NULL);
  snprintf(t, n, "%s.%s.%s", h, p, s);
  free(h);
  free(p);
  free(s);
  return t;
}

/* A token of header and payload properly signed by k (header as given). */
static char *signed_token(const char *header, const char *payload, const cl_key *k) {
  char *h = cl_b64url_encode((const uint8_t *)header, strlen(header));
  char *p = cl_b64url_encode((const uint8_t *)payload, strlen(payload));
  size_t n = strlen(h) + strlen(p) + 2;
  char *input = malloc(n);
  ck_assert(input != NULL);
  snprintf(input, n, "%s.%s", h, p);
  uint8_t sig[CL_SIG_LEN];
  cl_key_sign(k, sig, (const uint8_t *)input, strlen(input));
  char *t = forge(header, payload, sig, sizeof sig);
  free(h);
  free(p);
  free(input);
  return t;
}

START_TEST(test_jws_refusals) {
  cl_key *k = rfc8037_key();
  const uint8_t *pk = cl_key_public(k);
  char err[256] = "";
  char hex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(pk, hex);

  /* "alg": "none" with an empty signature, and with a real one. */
  char *t = forge("{\"alg\":\"none\"}", "{\"iss\":\"x\"}", NULL, 0);
  ck_assert_int_eq(verify(t, pk, err, sizeof err), CL_ESUITE);
  ck_assert_msg(strstr(err, "\"none\" refused"), "%s", err);
  free(t);
  t = signed_token("{\"alg\":\"none\"}", "{\"iss\":\"x\"}", k);
  ck_assert_int_eq(verify(t, pk, err, sizeof err), CL_ESUITE);
  free(t);
  /* HS256 keyed with the public key: the classic confusion. */
  uint8_t mac[32];
  char *h = cl_b64url_encode((const uint8_t *)"{\"alg\":\"HS256\"}", 15);
  char *p = cl_b64url_encode((const uint8_t *)"{}", 2);
  char input[256];
  snprintf(input, sizeof input, "%s.%s", h, p);
  crypto_auth_hmacsha256(mac, (const uint8_t *)input, strlen(input), pk);
  t = forge("{\"alg\":\"HS256\"}", "{}", mac, sizeof mac);
  ck_assert_int_eq(verify(t, pk, err, sizeof err), CL_ESUITE);
  ck_assert_msg(strstr(err, "HS256"), "%s", err);
  free(t);
  free(h);
  free(p);
  /* No alg, alg of another case, alg not text. */
  static const char *const no_alg[] = {"{}", "{\"alg\":\"eddsa\"}", "{\"alg\":null}",
                                       "{\"alg\":[\"EdDSA\"]}", "{\"alg\":\"Ed25519\"}"};
  for (size_t i = 0; i < sizeof no_alg / sizeof no_alg[0]; i++) {
    t = signed_token(no_alg[i], "{}", k);
    ck_assert_msg(verify(t, pk, err, sizeof err) == CL_ESUITE, "%s", no_alg[i]);
    free(t);
  }
  /* A kid naming another key; the right kid passes. */
  char header[256];
  snprintf(header, sizeof header, "{\"alg\":\"EdDSA\",\"kid\":\"%064d\"}", 0);
  t = signed_token(header, "{}", k);
  ck_assert_int_eq(verify(t, pk, err, sizeof err), CL_EBADSIG);
  ck_assert_msg(strstr(err, "kid"), "%s", err);
  free(t);
  snprintf(header, sizeof header, "{\"alg\":\"EdDSA\",\"kid\":\"%s\"}", hex);
  t = signed_token(header, "{}", k);
  ck_assert_int_eq(verify(t, pk, err, sizeof err), CL_OK);
  free(t);
  /* crit: an extension this verifier does not know. */
  t = signed_token("{\"alg\":\"EdDSA\",\"crit\":[\"exp\"],\"exp\":1}", "{}", k);
  ck_assert_int_eq(verify(t, pk, err, sizeof err), CL_EVERSION);
  free(t);
  /* Two "alg" members: one parser might read the first, another the last. */
  t = signed_token("{\"alg\":\"none\",\"alg\":\"EdDSA\"}", "{}", k);
  ck_assert_int_eq(verify(t, pk, err, sizeof err), CL_EMALFORMED);
  free(t);
  t = signed_token("[\"EdDSA\"]", "{}", k);
  ck_assert_int_eq(verify(t, pk, err, sizeof err), CL_EMALFORMED);
  free(t);

  /* Every character of each part changed in turn: refused. */
  size_t n = strlen(RFC8037_JWS);
  char *m = strdup(RFC8037_JWS);
  for (size_t i = 0; i < n; i++) {
    if (m[i] == '.') continue;
    char c = m[i];
    m[i] = c == 'A' ? 'B' : 'A';
    int rc = verify(m, pk, err, sizeof err);
    ck_assert_msg(rc != CL_OK, "position %zu", i);
    m[i] = c;
  }
  ck_assert_int_eq(verify(m, pk, err, sizeof err), CL_OK);
  free(m);
  /* Shape: missing or extra parts, surrounding whitespace, a short
   * signature, too long. */
  static const char *const shapes[] = {"", ".", "..", "...", "eyJhbGciOiJFZERTQSJ9",
                                       "eyJhbGciOiJFZERTQSJ9.e30"};
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
    ck_assert_msg(verify(shapes[i], pk, err, sizeof err) == CL_EMALFORMED, "'%s'", shapes[i]);
  char buf[512];
  snprintf(buf, sizeof buf, "%s.", RFC8037_JWS);
  ck_assert_int_eq(verify(buf, pk, err, sizeof err), CL_EMALFORMED);
  snprintf(buf, sizeof buf, "%s\n", RFC8037_JWS);
  ck_assert_int_eq(verify(buf, pk, err, sizeof err), CL_EMALFORMED);
  snprintf(buf, sizeof buf, "%.*s", (int)(n - 3), RFC8037_JWS);
  ck_assert_int_eq(verify(buf, pk, err, sizeof err), CL_EMALFORMED);
  json_t *hj = NULL;
  uint8_t *pj = NULL;
  size_t pn = 0;
  ck_assert_int_eq(
      cl_jws_verify(RFC8037_JWS, CL_JWS_MAX_LEN + 1, pk, &hj, &pj, &pn, err, sizeof err),
      CL_ETOOBIG);
  cl_key_destroy(&k);
}
END_TEST

/* ---- the worked example of docs/ATTESTATION.md -------------------------------------- */

#define E_ROUND_END_NS 1767225600000000000ull /* 2026-01-01T00:00:00Z */
#define E_WINDOW_NS 300000000000ull
static const char *const E_ALLOWED[] = {"FRA"};

/* The record of the worked example, signed by the verifier (seed 0x22). */
static void example_record(cl_attestation *a, const cl_key *verifier) {
  memset(a, 0, sizeof *a);
  cl_key *chip = key_from_byte(0x11);
  a->version = CL_ATT_V2;
  memcpy(a->chip, cl_key_public(chip), CL_PK_LEN);
  memcpy(a->verifier, cl_key_public(verifier), CL_PK_LEN);
  a->round_end_ns = E_ROUND_END_NS;
  a->window_ns = E_WINDOW_NS;
  for (int i = 0; i < CL_HASH_LEN; i++) a->prev_hash[i] = (uint8_t)(0xa0 + i);
  a->consistency = CL_ATT_CONSISTENT;
  a->site = CL_ATT_SITE_CONSISTENT;
  a->region = CL_ATT_REGION_INSIDE;
  a->speed_m_per_s = 299792458;
  a->centre_lat_e7 = 488566000;
  a->centre_lon_e7 = 23522000;
  a->radius_m = 25000;
  ck_assert_int_eq(cl_attest_digest_codes(E_ALLOWED, 1, a->allowed_digest), CL_OK);
  ck_assert_int_eq(cl_attest_digest_keys(NULL, 0, a->excluded_digest), CL_OK);
  uint8_t sigs[3][CL_SIG_LEN];
  for (int i = 0; i < 3; i++) memset(sigs[i], i + 1, CL_SIG_LEN);
  a->n_measurements = 3;
  ck_assert_int_eq(
      cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])sigs, 3, a->measurements_digest),
      CL_OK);
  cl_attest_digest_site(48.8566, 2.3522, a->site_digest);
  cl_key *lk[3] = {key_from_byte(0x33), key_from_byte(0x44), key_from_byte(0x55)};
  cl_attest_landmark lms[3] = {{.lat = 51.5074, .lon = -0.1278},
                               {.lat = 48.8566, .lon = 2.3522},
                               {.lat = 50.1109, .lon = 8.6821}};
  for (int i = 0; i < 3; i++) {
    memcpy(lms[i].pk, cl_key_public(lk[i]), CL_PK_LEN);
    cl_key_destroy(&lk[i]);
  }
  ck_assert_int_eq(cl_attest_digest_landmarks(lms, 3, a->landmarks_digest), CL_OK);
  uint8_t geometry[1][CL_HASH_LEN];
  memset(geometry[0], 0x03, CL_HASH_LEN);
  ck_assert_int_eq(cl_attest_digest_regions(E_ALLOWED, (const uint8_t(*)[CL_HASH_LEN])geometry,
                                            1, a->regions_digest),
                   CL_OK);
  ck_assert_int_eq(cl_attest_sign(a, verifier), CL_OK);
  cl_key_destroy(&chip);
}

static cl_eat_context example_context(void) {
  return (cl_eat_context){.issuer = "v-treaty",
                          .serial = "S-0001",
                          .position = 7,
                          .allowed = E_ALLOWED,
                          .n_allowed = 1};
}

static const char EXAMPLE_TOKEN[] =
    "eyJhbGciOiJFZERTQSIsInR5cCI6ImVhdCtqd3QiLCJraWQiOiJhMDlhYTVmNDdhNjc1OTgwMmZmOTU1ZjhkYzJk"
    "MmExNGE1Yzk5ZDIzYmU5N2Y4NjQxMjdmZjkzODM0NTVhNGYwIn0.eyJpc3MiOiJ2LXRyZWF0eSIsInN1YiI6IjBF"
    "cXlNblFydEtzNkUyaTlSaFhrNXRBaVNyY2FBV3V2aFNDak1zbDNoemMiLCJpYXQiOjE3NjcyMjU2MDAsIm5iZiI6"
    "MTc2NzIyNTMwMCwiZWF0X3Byb2ZpbGUiOiJ0YWc6Y2hpcGxvYywyMDI2OmF0dGVzdGF0aW9uLXJlc3VsdDoxIiwi"
    "bG9jYXRpb24iOnsibGF0aXR1ZGUiOjQ4Ljg1NjYsImxvbmdpdHVkZSI6Mi4zNTIyLCJhY2N1cmFjeSI6MjUwMDB9"
    "LCJjaGlwbG9jIjp7InNlcmlhbCI6IlMtMDAwMSIsImxheW91dF92ZXJzaW9uIjoyLCJyb3VuZF9lbmRfbnMiOjE3"
    "NjcyMjU2MDAwMDAwMDAwMDAsIndpbmRvd19ucyI6MzAwMDAwMDAwMDAwLCJjb25zaXN0ZW5jeSI6IkNPTlNJU1RF"
    "TlQiLCJzaXRlX3ZlcmRpY3QiOiJTSVRFX0NPTlNJU1RFTlQiLCJyZWdpb25fdmVyZGljdCI6IklOU0lERSIsInJh"
    "ZGl1c19tIjoyNTAwMCwiY2VudHJlX2xhdF9lNyI6NDg4NTY2MDAwLCJjZW50cmVfbG9uX2U3IjoyMzUyMjAwMCwi"
    "c3BlZWRfbV9wZXJfcyI6Mjk5NzkyNDU4LCJzaXRlX2xhbmRtYXJrIjpudWxsLCJzaXRlX21hcmdpbl9tIjowLCJh"
    "bGxvd2VkX3JlZ2lvbnMiOlsiRlJBIl0sImV4Y2x1ZGVkX2xhbmRtYXJrcyI6W10sIm5fbWVhc3VyZW1lbnRzIjoz"
    "LCJjaGFpbiI6eyJwb3NpdGlvbiI6NywiaGFzaCI6Ijg5OWY2NzZlMmU0Nzg1ZGQ1ZGUyNzk3YjM3YmRkNDJhYjBk"
    "MzkzZjIxMWFkN2M0YTlkNmQ1MTM2YTg0YjU1NTUiLCJwcmV2X2hhc2giOiJhMGExYTJhM2E0YTVhNmE3YThhOWFh"
    "YWJhY2FkYWVhZmIwYjFiMmIzYjRiNWI2YjdiOGI5YmFiYmJjYmRiZWJmIn0sImRpZ2VzdHMiOnsiYWxsb3dlZCI6"
    "IjlhNGMxNzU0YzJiN2MzNTU0NDFjMTg0NTdjM2QwZjA4NTJkYTM4YjNmNTY4MTk0ZmJkZWJiNjQzMmU2YTAwNjki"
    "LCJleGNsdWRlZCI6ImUzYjBjNDQyOThmYzFjMTQ5YWZiZjRjODk5NmZiOTI0MjdhZTQxZTQ2NDliOTM0Y2E0OTU5"
    "OTFiNzg1MmI4NTUiLCJtZWFzdXJlbWVudHMiOiJiNjk0OTVhZjIwZGYwNGU0YTMzYWZlZmVjYTUyZGQzYjJlZDI1"
    "ZDYyYmU5MTA4MjIwMzI3NjQ4OTJjNDk4YmFiIiwic2l0ZSI6ImI5YWQ1ODU3OTEyMDk1YzQyYjcyMTUxNDliZmRm"
    "NmNmNWZjMTQ5ZTUzNjk0ZGIxZjNhYWE2MGE4ODZmYzRjNTIiLCJsYW5kbWFya3MiOiI4M2ZhNGFjYmIyOGJlYTFi"
    "ZjM3MDE4NDM4ZGYyNzc2ZjcxNjdkN2YxNzNiZTQ4NWM3MzM4MWRiYjI1Y2M0YmM4IiwicmVnaW9ucyI6Ijc0NDBm"
    "OGU4MzA4ODg1NDUyZjVlMzEyNDRlZDg3MzBjZDI5YzM1MGQ0MWU4ZGRiNTY4YjE4NmM5M2E3MDgyNDEifSwibGF5"
    "b3V0IjoiWTJocGNHeHZZeUIyTWlCaGRIUmxjM1JoZEdsdmJnRFFTckl5ZEN1MHF6b1RhTDFHRmVUbTBDSkt0eG9C"
    "YTYtRklLTXl5WGVITjZDYXBmUjZaMW1BTF9sVi1Od3RLaFNseVowanZwZjRaQkpfLVRnMFZhVHdHSVp5VWUzNkFB"
    "QUFBQUJGMldTNEFLQ2hvcU9rcGFhbnFLbXFxNnl0cnEtd3NiS3p0TFcydDdpNXVydTh2YjZfQUFFQkFBQUFBQUFS"
    "M25oS0hSN3M4QUZtNnRBQUFBQUFBQUJocUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    "QUFBQUFBQUFBQUFBQ2FUQmRVd3JmRFZVUWNHRVY4UFE4SVV0bzRzX1ZvR1UtOTY3WkRMbW9BYWVPd3hFS1lfQndV"
    "bXZ2MHlKbHZ1U1FucmtIa1pKdVRUS1NWbVJ0NFVyaFZBQUFBQTdhVWxhOGczd1Rrb3pyLV9zcFMzVHN1MGwxaXZw"
    "RUlJZ01uWklrc1NZdXJ1YTFZVjVFZ2xjUXJjaFVVbV8zMnoxX0JTZVUybE5zZk9xcGdxSWI4VEZLRC1rckxzb3Zx"
    "R19Od0dFT044bmR2Y1dmWDhYTy1TRnh6T0IyN0pjeEx5SFJBLU9nd2lJVkZMMTR4SkU3WWN3elNuRFVOUWVqZHRX"
    "aXhoc2s2Y0lKQiIsInNpZ25hdHVyZSI6InNEaTlYa2lCbHMyYV9nZTdHek1LS1FCNGhYSG4zVXdXeE1haFN0OG1Z"
    "NU9mZEFOcnFQMXpwX25jVUFSVkFMNzNmYmFGOFR5YWlEY2d0U0VxOW5abkJ3In19.jt-FBrJ2S6yzu06mlLUIu1V"
    "b6zu_DD8W9xjCIs9qxeU4beFAUSkgtArLXUrKG356nm6_fNb73yUz6WdDkojLCA";

START_TEST(test_example_token) {
  cl_key *v = key_from_byte(0x22);
  cl_attestation a;
  example_record(&a, v);
  cl_eat_context x = example_context();
  char *tok = NULL, err[256] = "";
  ck_assert_msg(cl_eat_sign(&a, &x, v, &tok, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_str_eq(tok, EXAMPLE_TOKEN);
  cl_attestation got;
  json_t *claims = NULL;
  ck_assert_msg(cl_eat_verify(tok, strlen(tok), cl_key_public(v), &got, &claims, err,
                              sizeof err) == CL_OK,
                "%s", err);
  uint8_t l1[CL_ATTESTATION_LAYOUT_MAX], l2[CL_ATTESTATION_LAYOUT_MAX];
  ck_assert_uint_eq(cl_attest_layout(l1, &got), CL_ATTESTATION_LAYOUT_V2_LEN);
  ck_assert_uint_eq(cl_attest_layout(l2, &a), CL_ATTESTATION_LAYOUT_V2_LEN);
  ck_assert_mem_eq(l1, l2, CL_ATTESTATION_LAYOUT_V2_LEN);
  ck_assert_mem_eq(got.sig, a.sig, CL_SIG_LEN);
  ck_assert_str_eq(json_string_value(json_object_get(claims, "iss")), "v-treaty");
  json_decref(claims);
  free(tok);
  cl_key_destroy(&v);
}
END_TEST

/* The example header for key k, as text. */
static char *example_header(const cl_key *k) {
  char hex[CL_PK_HEX_LEN + 1], *h = NULL;
  cl_pk_to_hex(cl_key_public(k), hex);
  ck_assert_int_ge(asprintf(&h, "{\"alg\":\"EdDSA\",\"typ\":\"eat+jwt\",\"kid\":\"%s\"}", hex), 0);
  return h;
}

/* A token of these claims under header, properly signed by k: what a holder
 * of the verifier's key could write. */
static char *sign_claims(const json_t *claims, const char *header, const cl_key *k) {
  char *payload = json_dumps(claims, JSON_COMPACT | JSON_REAL_PRECISION(10));
  ck_assert(payload != NULL);
  char *tok = NULL, err[256] = "";
  ck_assert_msg(cl_jws_sign(header, (const uint8_t *)payload, strlen(payload), k, &tok, err,
                            sizeof err) == CL_OK,
                "%s", err);
  free(payload);
  return tok;
}

/* cl_eat_verify of tok under k's key: its code, err filled. */
static int eat_verify(const char *tok, const cl_key *k, char *err, size_t errlen) {
  cl_attestation a;
  json_t *claims = (json_t *)1;
  int rc = cl_eat_verify(tok, strlen(tok), cl_key_public(k), &a, &claims, err, errlen);
  if (rc == CL_OK)
    json_decref(claims);
  else
    ck_assert_ptr_null(claims);
  return rc;
}

/* The example's claims with member path (a, b) set to v (NULL: removed). */
static json_t *edited(const cl_attestation *a, const char *k1, const char *k2, json_t *v) {
  cl_eat_context x = example_context();
  json_t *c = NULL;
  char err[256] = "";
  ck_assert_msg(cl_eat_claims(a, &x, &c, err, sizeof err) == CL_OK, "%s", err);
  json_t *o = k2 ? json_object_get(c, k1) : c;
  const char *k = k2 ? k2 : k1;
  ck_assert(o != NULL);
  if (v)
    json_object_set_new(o, k, v);
  else
    ck_assert_int_eq(json_object_del(o, k), 0);
  return c;
}

START_TEST(test_claims_must_be_the_layouts) {
  cl_key *v = key_from_byte(0x22);
  cl_attestation a;
  example_record(&a, v);
  char *header = example_header(v), err[256];
  static const struct {
    const char *k1, *k2;
    const char *value; /* JSON text; NULL: remove the member */
    const char *why;   /* in the error */
  } cases[] = {
      {"chiploc", "consistency", "\"INCONSISTENT\"", "claim chiploc.consistency differs"},
      {"chiploc", "site_verdict", "\"SITE_EXCLUDED\"", "claim chiploc.site_verdict differs"},
      {"chiploc", "region_verdict", "\"OUTSIDE\"", "claim chiploc.region_verdict differs"},
      {"chiploc", "radius_m", "24999", "claim chiploc.radius_m differs"},
      {"chiploc", "radius_m", "25000.0", "claim chiploc.radius_m differs"},
      {"location", "accuracy", "1000", "claim location.accuracy differs"},
      {"location", "latitude", "48.85660001", "claim location.latitude differs"},
      {"location", NULL, NULL, "claim location is missing"},
      {"exp", NULL, "1767229200", "claim exp is not part of this profile"},
      {"chiploc", "note", "\"trust me\"", "claim chiploc.note is not part of this profile"},
      {"sub", NULL, "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"", "claim sub differs"},
      {"iat", NULL, "1767225601", "claim iat differs"},
      {"nbf", NULL, "0", "claim nbf differs"},
      {"eat_profile", NULL, "\"tag:chiploc,2026:attestation-result:2\"",
       "claim eat_profile differs"},
      {"chiploc", "round_end_ns", "1767225600000000001", "claim chiploc.round_end_ns differs"},
      {"chiploc", "allowed_regions", "[\"DEU\",\"FRA\"]", "allowed_digest"},
      {"chiploc", "allowed_regions", "[]", "allowed_digest"},
      {"chiploc", "excluded_landmarks",
       "[\"a09aa5f47a6759802ff955f8dc2d2a14a5c99d23be97f864127ff9383455a4f0\"]",
       "excluded_digest"},
      {"chiploc", "digests", "{}", "claim chiploc.digests.allowed is missing"},
      {"chiploc", "n_measurements", "4", "claim chiploc.n_measurements differs"},
      {"chiploc", "serial", "7", "claim chiploc.serial is missing or not of its type"},
      {"chiploc", "layout", "\"Y2hpcGxvYw\"", "not an attestation layout"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_t *val = NULL;
    if (cases[i].value) {
      json_error_t je;
      val = json_loads(cases[i].value, JSON_DECODE_ANY, &je);
      ck_assert_msg(val != NULL, "%s", cases[i].value);
    }
    json_t *c = edited(&a, cases[i].k1, cases[i].k2, val);
    char *tok = sign_claims(c, header, v);
    err[0] = '\0';
    ck_assert_msg(eat_verify(tok, v, err, sizeof err) == CL_EMALFORMED, "case %zu", i);
    ck_assert_msg(strstr(err, cases[i].why), "case %zu: %s", i, err);
    free(tok);
    json_decref(c);
  }
  /* The issuer, the serial and the chain position are the token's own
   * statement: another value verifies (its signature vouches for it). */
  json_t *c = edited(&a, "iss", NULL, json_string("v-other"));
  char *tok = sign_claims(c, header, v);
  ck_assert_msg(eat_verify(tok, v, err, sizeof err) == CL_OK, "%s", err);
  free(tok);
  json_decref(c);
  /* The example's claims unchanged, re-signed: they verify (the cases
   * above fail for their edit alone). */
  c = edited(&a, "chiploc", "serial", json_string("S-0001"));
  tok = sign_claims(c, header, v);
  ck_assert_msg(eat_verify(tok, v, err, sizeof err) == CL_OK, "%s", err);
  free(tok);
  json_decref(c);

  /* Another record of the same verifier (SITE_EXCLUDED) embedded under the
   * example's claims: they no longer say what its layout says. */
  cl_attestation b = a;
  b.site = CL_ATT_SITE_EXCLUDED;
  ck_assert_int_eq(cl_attest_sign(&b, v), CL_OK);
  cl_eat_context x = example_context();
  json_t *cb = NULL, *ca = NULL;
  ck_assert_int_eq(cl_eat_claims(&b, &x, &cb, err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_eat_claims(&a, &x, &ca, err, sizeof err), CL_OK);
  json_t *ch = json_object_get(ca, "chiploc");
  json_object_set(ch, "layout", json_object_get(json_object_get(cb, "chiploc"), "layout"));
  json_object_set(ch, "signature", json_object_get(json_object_get(cb, "chiploc"), "signature"));
  tok = sign_claims(ca, header, v);
  ck_assert_int_eq(eat_verify(tok, v, err, sizeof err), CL_EMALFORMED);
  ck_assert_msg(strstr(err, "claim chiploc.site_verdict differs"), "%s", err);
  free(tok);
  /* The embedded layout's own signature broken (the JWS is still good). */
  cl_attestation d = a;
  d.sig[5] ^= 1;
  json_t *cd = NULL;
  ck_assert_int_eq(cl_eat_claims(&d, &x, &cd, err, sizeof err), CL_OK);
  tok = sign_claims(cd, header, v);
  ck_assert_int_eq(eat_verify(tok, v, err, sizeof err), CL_EBADSIG);
  ck_assert_msg(strstr(err, "signature does not verify"), "%s", err);
  free(tok);
  /* A record of another verifier (seed 0x33), in a JWS of 0x22. */
  cl_key *w = key_from_byte(0x33);
  cl_attestation e = a;
  memcpy(e.verifier, cl_key_public(w), CL_PK_LEN);
  ck_assert_int_eq(cl_attest_sign(&e, w), CL_OK);
  json_t *ce = NULL;
  ck_assert_int_eq(cl_eat_claims(&e, &x, &ce, err, sizeof err), CL_OK);
  tok = sign_claims(ce, header, v);
  ck_assert_int_eq(eat_verify(tok, v, err, sizeof err), CL_EBADSIG);
  ck_assert_msg(strstr(err, "is by verifier"), "%s", err);
  free(tok);
  /* Signing refuses both. */
  ck_assert_int_eq(cl_eat_sign(&d, &x, v, &tok, err, sizeof err), CL_EBADSIG);
  ck_assert_int_eq(cl_eat_sign(&e, &x, v, &tok, err, sizeof err), CL_EBADSIG);
  ck_assert_ptr_null(tok);
  /* And a context whose codes do not give the layout's digest. */
  static const char *const two[] = {"FRA", "DEU"};
  x.allowed = two;
  x.n_allowed = 2;
  ck_assert_int_eq(cl_eat_sign(&a, &x, v, &tok, err, sizeof err), CL_EINVAL);
  ck_assert_msg(strstr(err, "allowed_digest"), "%s", err);
  json_decref(ca);
  json_decref(cb);
  json_decref(cd);
  json_decref(ce);
  cl_key_destroy(&w);
  free(header);
  cl_key_destroy(&v);
}
END_TEST

START_TEST(test_header_of_the_profile) {
  cl_key *v = key_from_byte(0x22);
  cl_attestation a;
  example_record(&a, v);
  json_t *c = edited(&a, "iss", NULL, json_string("v-treaty"));
  char hex[CL_PK_HEX_LEN + 1], h[256], err[256];
  cl_pk_to_hex(cl_key_public(v), hex);
  static const char *const headers[] = {
      "{\"alg\":\"EdDSA\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
      "{\"alg\":\"EdDSA\",\"kid\":\"%s\"}",
      "{\"alg\":\"EdDSA\",\"typ\":\"eat+jwt\",\"kid\":\"%s\",\"x5u\":\"http://x\"}",
      "{\"alg\":\"EdDSA\",\"typ\":\"eat+jwt\"%.0s}",
  };
  static const char *const why[] = {"typ JWT", "typ missing", "beyond alg, typ and kid", "no kid"};
  for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
    snprintf(h, sizeof h, headers[i], hex);
    char *tok = sign_claims(c, h, v);
    ck_assert_int_eq(eat_verify(tok, v, err, sizeof err), CL_EMALFORMED);
    ck_assert_msg(strstr(err, why[i]), "%s: %s", h, err);
    free(tok);
  }
  /* A payload with a claim twice. */
  snprintf(h, sizeof h, "{\"alg\":\"EdDSA\",\"typ\":\"eat+jwt\",\"kid\":\"%s\"}", hex);
  char *payload = json_dumps(c, JSON_COMPACT | JSON_REAL_PRECISION(10)), *dup = NULL;
  ck_assert_int_ge(asprintf(&dup, "{\"iss\":\"v-evil\",%s", payload + 1), 0);
  char *tok = NULL;
  ck_assert_int_eq(cl_jws_sign(h, (const uint8_t *)dup, strlen(dup), v, &tok, err, sizeof err),
                   CL_OK);
  ck_assert_int_eq(eat_verify(tok, v, err, sizeof err), CL_EMALFORMED);
  ck_assert_msg(strstr(err, "payload"), "%s", err);
  free(tok);
  free(dup);
  free(payload);
  json_decref(c);
  cl_key_destroy(&v);
}
END_TEST

START_TEST(test_version_1_and_layout_parse) {
  cl_key *v = key_from_byte(0x22);
  cl_attestation a;
  example_record(&a, v);
  /* Both layouts read back into the same record. */
  for (int version = CL_ATT_V1; version <= CL_ATT_V2; version++) {
    a.version = (uint8_t)version;
    ck_assert_int_eq(cl_attest_sign(&a, v), CL_OK);
    uint8_t l[CL_ATTESTATION_LAYOUT_MAX], l2[CL_ATTESTATION_LAYOUT_MAX];
    size_t n = cl_attest_layout(l, &a);
    cl_attestation b;
    ck_assert_int_eq(cl_eat_parse_layout(l, n, &b), CL_OK);
    ck_assert_uint_eq(b.version, version);
    ck_assert_uint_eq(cl_attest_layout(l2, &b), n);
    ck_assert_mem_eq(l, l2, n);
    /* Cut, lengthened, or under the other version's context. */
    ck_assert_int_eq(cl_eat_parse_layout(l, n - 1, &b), CL_EMALFORMED);
    ck_assert_int_eq(cl_eat_parse_layout(l, n + 1, &b), CL_EMALFORMED);
    l[8] = version == CL_ATT_V1 ? '2' : '1'; /* "chiploc v1 ..." <-> "v2" */
    ck_assert_int_eq(cl_eat_parse_layout(l, n, &b), CL_EMALFORMED);
  }
  /* A version 1 record: no input digests among the claims. */
  a.version = CL_ATT_V1;
  ck_assert_int_eq(cl_attest_sign(&a, v), CL_OK);
  cl_eat_context x = example_context();
  char *tok = NULL, err[256];
  ck_assert_msg(cl_eat_sign(&a, &x, v, &tok, err, sizeof err) == CL_OK, "%s", err);
  json_t *claims = NULL;
  ck_assert_msg(cl_eat_verify(tok, strlen(tok), cl_key_public(v), NULL, &claims, err,
                              sizeof err) == CL_OK,
                "%s", err);
  json_t *d = json_object_get(json_object_get(claims, "chiploc"), "digests");
  ck_assert_uint_eq(json_object_size(d), 3);
  ck_assert_ptr_null(json_object_get(d, "site"));
  ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(claims, "chiploc"),
                                                      "layout_version")),
                   1);
  json_decref(claims);
  free(tok);
  /* Not CONSISTENT: no location claim; an excluded landmark and a site
   * landmark stated as keys. */
  a.version = CL_ATT_V2;
  a.consistency = CL_ATT_INCONSISTENT;
  a.site = CL_ATT_SITE_EXCLUDED;
  a.region = CL_ATT_REGION_UNDETERMINED;
  a.centre_lat_e7 = a.centre_lon_e7 = 0;
  a.radius_m = 0;
  cl_key *ex = key_from_byte(0x66);
  uint8_t keys[1][CL_PK_LEN];
  memcpy(keys[0], cl_key_public(ex), CL_PK_LEN);
  memcpy(a.site_landmark, keys[0], CL_PK_LEN);
  a.site_margin_m = -1234;
  a.n_excluded = 1;
  ck_assert_int_eq(cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN])keys, 1, a.excluded_digest),
                   CL_OK);
  ck_assert_int_eq(cl_attest_sign(&a, v), CL_OK);
  x.excluded = (const uint8_t(*)[CL_PK_LEN])keys;
  x.n_excluded = 1;
  ck_assert_msg(cl_eat_sign(&a, &x, v, &tok, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_msg(cl_eat_verify(tok, strlen(tok), cl_key_public(v), NULL, &claims, err,
                              sizeof err) == CL_OK,
                "%s", err);
  ck_assert_ptr_null(json_object_get(claims, "location"));
  json_t *cc = json_object_get(claims, "chiploc");
  char hex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(keys[0], hex);
  ck_assert_str_eq(json_string_value(json_object_get(cc, "site_landmark")), hex);
  ck_assert_str_eq(json_string_value(json_array_get(json_object_get(cc, "excluded_landmarks"), 0)),
                   hex);
  ck_assert_int_eq(json_integer_value(json_object_get(cc, "site_margin_m")), -1234);
  ck_assert_str_eq(json_string_value(json_object_get(cc, "consistency")), "INCONSISTENT");
  json_decref(claims);
  free(tok);
  /* The excluded key missing from the context: refused. */
  x.n_excluded = 0;
  ck_assert_int_eq(cl_eat_sign(&a, &x, v, &tok, err, sizeof err), CL_EINVAL);
  /* An unknown verdict code has no name. */
  a.region = CL_ATT_REGION_COUNT;
  ck_assert_int_eq(cl_attest_sign(&a, v), CL_OK);
  x.n_excluded = 1;
  ck_assert_int_eq(cl_eat_sign(&a, &x, v, &tok, err, sizeof err), CL_EMALFORMED);
  cl_key_destroy(&ex);
  cl_key_destroy(&v);
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *su = suite_create("jws");
  TCase *tc = tcase_create("jws");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_b64url);
  tcase_add_test(tc, test_rfc8037_example);
  tcase_add_test(tc, test_jws_refusals);
  tcase_add_test(tc, test_example_token);
  tcase_add_test(tc, test_claims_must_be_the_layouts);
  tcase_add_test(tc, test_header_of_the_profile);
  tcase_add_test(tc, test_version_1_and_layout_parse);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
