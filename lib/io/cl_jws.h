/*
 * JSON Web Signatures (RFC 7515) in the compact serialization, signed with
 * EdDSA over Ed25519 (RFC 8037), the only algorithm chiploc signs with:
 *
 *     BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature)
 *
 * where the signature is Ed25519's over the ASCII bytes of the first two
 * parts, and BASE64URL is base64 with the URL-safe alphabet and no padding
 * (RFC 7515 §2). The header is a JSON object; the payload is any bytes (for
 * a JWT, a JSON object of claims). Verification accepts "alg": "EdDSA" only,
 * so neither "none" nor an HMAC keyed with the public key can pass (RFC 8725
 * §2.1, §3.1), refuses a "crit" header (it understands no extension), and a
 * "kid" other than the verifying key in lowercase hex. Pure: no I/O.
 */
#ifndef CL_JWS_H
#define CL_JWS_H

#include "cl_key.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The longest token cl_jws_verify reads, in bytes. */
#define CL_JWS_MAX_LEN (1024 * 1024)

/* base64url without padding of len bytes: a malloc'd NUL-terminated string,
 * or NULL when out of memory. */
char *cl_b64url_encode(const uint8_t *in, size_t len);
/* Decodes exactly inlen characters of base64url without padding into a
 * malloc'd buffer (*out, *outlen; *out is never NULL on success). Anything
 * else (padding, whitespace, another alphabet, a last character with bits
 * that encode nothing) is CL_EMALFORMED; CL_ENOMEM. */
int cl_b64url_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen);

/*
 * Signs: *token receives the malloc'd NUL-terminated compact JWS of the
 * header (a JSON object's text, used as given) and the payload bytes,
 * signed with key. The header must say "alg": "EdDSA" (CL_EINVAL
 * otherwise, with err). Returns 0, CL_EINVAL or CL_ENOMEM.
 */
int cl_jws_sign(const char *header, const uint8_t *payload, size_t payload_len,
                const cl_key *key, char **token, char *err, size_t errlen);

/*
 * Verifies the compact JWS token (len bytes, no surrounding whitespace)
 * under the Ed25519 public key pk. On success *header holds the parsed
 * header (a JSON object; json_decref it) and *payload, *payload_len the
 * decoded payload (malloc'd; free it). Errors, with err naming the part:
 *   CL_ETOOBIG     longer than CL_JWS_MAX_LEN;
 *   CL_EMALFORMED  not three base64url parts, a header that is not one JSON
 *                  object (duplicate members included), or a signature that
 *                  is not 64 bytes;
 *   CL_ESUITE      "alg" is not "EdDSA" (or missing);
 *   CL_EVERSION    a "crit" header;
 *   CL_EBADSIG     a "kid" that names another key, or the signature fails;
 *   CL_ENOMEM.
 */
int cl_jws_verify(const char *token, size_t len, const uint8_t pk[CL_PK_LEN], json_t **header,
                  uint8_t **payload, size_t *payload_len, char *err, size_t errlen);

#endif
