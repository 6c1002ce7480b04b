/*
 * Compact JWS with EdDSA / Ed25519 (see cl_jws.h). base64url is libsodium's
 * (sodium_bin2base64 and sodium_base642bin, URL-safe alphabet without
 * padding); its decoder refuses characters outside the alphabet and a last
 * character whose unused bits are not zero, so every byte string has one
 * encoding and a signature cannot be re-encoded into another token.
 */
#include "cl_jws.h"
#include "cl_err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

char *cl_b64url_encode(const uint8_t *in, size_t len) {
  size_t n = sodium_base64_ENCODED_LEN(len, B64);
  char *out = malloc(n);
  if (!out) return NULL;
  sodium_bin2base64(out, n, in, len, B64);
  return out;
}

int cl_b64url_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  /* Four characters carry three bytes; a partial group of 2 or 3
   * characters one or two. */
  size_t max = inlen / 4 * 3 + 2;
  uint8_t *buf = malloc(max);
  if (!buf) return CL_ENOMEM;
  const char *end = NULL;
  size_t n = 0;
  if (sodium_base642bin(buf, max, in, inlen, NULL, &n, &end, B64) != 0 || end != in + inlen) {
    free(buf);
    return CL_EMALFORMED;
  }
  *out = buf;
  *outlen = n;
  return CL_OK;
}

/* header "." payload, both encoded: the signing input (RFC 7515 §5.1). */
static char *signing_input(const char *header, size_t header_len, const uint8_t *payload,
                           size_t payload_len) {
  char *h = cl_b64url_encode((const uint8_t *)header, header_len);
  char *p = cl_b64url_encode(payload, payload_len);
  char *out = NULL;
  if (h && p) {
    size_t hl = strlen(h), pl = strlen(p);
    if ((out = malloc(hl + 1 + pl + 1)) != NULL) {
      memcpy(out, h, hl);
      out[hl] = '.';
      memcpy(out + hl + 1, p, pl + 1);
    }
  }
  free(h);
  free(p);
  return out;
}

/* CL_OK when the header object says "alg": "EdDSA". */
static int check_alg(const json_t *header, char *err, size_t errlen) {
  const char *alg = json_string_value(json_object_get(header, "alg"));
  if (!alg) {
    cl_err_set(err, errlen, "JWS header: no \"alg\"");
    return CL_ESUITE;
  }
  if (strcmp(alg, "EdDSA") != 0) {
    cl_err_set(err, errlen, "JWS header: alg \"%.32s\" refused: only EdDSA (Ed25519) is accepted",
               alg);
    return CL_ESUITE;
  }
  return CL_OK;
}

int cl_jws_sign(const char *header, const uint8_t *payload, size_t payload_len,
                const cl_key *key, char **token, char *err, size_t errlen) {
  *token = NULL;
  json_error_t je;
  json_t *h = json_loads(header, JSON_REJECT_DUPLICATES, &je);
  int rc = CL_EINVAL;
  if (!json_is_object(h))
    cl_err_set(err, errlen, "JWS header: not one JSON object");
  else
    rc = check_alg(h, err, errlen);
  json_decref(h);
  if (rc != CL_OK) return CL_EINVAL;
  char *input = signing_input(header, strlen(header), payload, payload_len);
  if (!input) return CL_ENOMEM;
  uint8_t sig[CL_SIG_LEN];
  size_t in_len = strlen(input);
  cl_key_sign(key, sig, (const uint8_t *)input, in_len);
  char *s = cl_b64url_encode(sig, sizeof sig);
  char *out = s ? malloc(in_len + 1 + strlen(s) + 1) : NULL;
  if (out) {
    memcpy(out, input, in_len);
    out[in_len] = '.';
    memcpy(out + in_len + 1, s, strlen(s) + 1);
  }
  free(s);
  free(input);
  if (!out) return CL_ENOMEM;
  *token = out;
  return CL_OK;
}

int cl_jws_verify(const char *token, size_t len, const uint8_t pk[CL_PK_LEN], json_t **header,
                  uint8_t **payload, size_t *payload_len, char *err, size_t errlen) {
  *header = NULL;
  *payload = NULL;
  *payload_len = 0;
  if (len > CL_JWS_MAX_LEN) {
    cl_err_set(err, errlen, "JWS: %zu bytes, more than %d", len, CL_JWS_MAX_LEN);
    return CL_ETOOBIG;
  }
  /* Exactly three parts: two dots. */
  const char *d1 = memchr(token, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
  if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token))) {
    cl_err_set(err, errlen, "JWS: not the compact form header.payload.signature");
    return CL_EMALFORMED;
  }
  uint8_t *hbytes = NULL, *pbytes = NULL, *sig = NULL;
  size_t hlen = 0, plen = 0, slen = 0;
  json_t *h = NULL;
  int rc = cl_b64url_decode(token, (size_t)(d1 - token), &hbytes, &hlen);
  if (rc == CL_EMALFORMED) cl_err_set(err, errlen, "JWS header: not base64url");
  if (rc == CL_OK) {
    rc = cl_b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &pbytes, &plen);
    if (rc == CL_EMALFORMED) cl_err_set(err, errlen, "JWS payload: not base64url");
  }
  if (rc == CL_OK) {
    rc = cl_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - token), &sig, &slen);
    if (rc == CL_EMALFORMED) cl_err_set(err, errlen, "JWS signature: not base64url");
  }
  if (rc == CL_OK) {
    /* Duplicate members are refused: two parsers must not read two
     * different headers from one token. */
    json_error_t je;
    h = json_loadb((const char *)hbytes, hlen, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(h)) {
      cl_err_set(err, errlen, "JWS header: not one JSON object (%s)", h ? "another type" : je.text);
      rc = CL_EMALFORMED;
    }
  }
  if (rc == CL_OK) rc = check_alg(h, err, errlen);
  if (rc == CL_OK && json_object_get(h, "crit")) {
    cl_err_set(err, errlen, "JWS header: \"crit\" names extensions this verifier does not know");
    rc = CL_EVERSION;
  }
  if (rc == CL_OK && json_object_get(h, "kid")) {
    char hex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(pk, hex);
    const char *kid = json_string_value(json_object_get(h, "kid"));
    if (!kid || strcmp(kid, hex) != 0) {
      cl_err_set(err, errlen, "JWS header: kid %.80s is not the key %s", kid ? kid : "(not text)",
                 hex);
      rc = CL_EBADSIG;
    }
  }
  if (rc == CL_OK && slen != CL_SIG_LEN) {
    cl_err_set(err, errlen, "JWS signature: %zu bytes, an Ed25519 signature has %d", slen,
               CL_SIG_LEN);
    rc = CL_EMALFORMED;
  }
  /* The signing input is the token's own first two parts, as they are. */
  if (rc == CL_OK &&
      cl_sig_verify(pk, sig, (const uint8_t *)token, (size_t)(d2 - token)) != CL_OK) {
    cl_err_set(err, errlen, "JWS: the signature does not verify under the key");
    rc = CL_EBADSIG;
  }
  free(hbytes);
  free(sig);
  if (rc != CL_OK) {
    json_decref(h);
    free(pbytes);
    return rc;
  }
  *header = h;
  *payload = pbytes;
  *payload_len = plen;
  return CL_OK;
}
