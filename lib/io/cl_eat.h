/*
 * Attestation results for relying parties: one verified attestation
 * (cl_attest) as the claims of an Entity Attestation Token (RFC 9711) in a
 * JWS signed with the verifier's Ed25519 key (cl_jws), which anyone holding
 * the verifier's public key checks offline with ordinary JOSE tools. In the
 * terms of RFC 9334 the verifier is the Verifier and this document its
 * Attestation Result. docs/ATTESTATION.md, "Attestation results for relying
 * parties (JWS)", names every claim.
 *
 * The token carries the signed layout itself and its original signature,
 * and every claim that the layout holds is stated exactly as the layout
 * says it: cl_eat_verify rebuilds the claims from the embedded layout and
 * refuses a token whose JSON says anything else. Only the verifier's name
 * (iss), the chip's serial and the chain position are stated by the token's
 * signature alone; the allowed region codes and the excluded landmarks'
 * keys must give the layout's digests. Pure: no I/O.
 */
#ifndef CL_EAT_H
#define CL_EAT_H

#include "cl_attest.h"
#include "cl_key.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The eat_profile claim: this document's profile, version 1. */
#define CL_EAT_PROFILE "tag:chiploc,2026:attestation-result:1"
/* The JWS typ header: the media type application/eat+jwt (RFC 9782), its
 * "application/" left out as RFC 7515 §4.1.9 recommends. */
#define CL_EAT_TYP "eat+jwt"

/* What the token states besides the layout. */
typedef struct {
  const char *issuer; /* the verifier's name (iss) */
  const char *serial; /* the chip's serial */
  uint32_t position;  /* 1-based place of the record in the chip's chain by this verifier */
  const char *const *allowed; /* the allowed region codes: their digest is allowed_digest */
  size_t n_allowed;
  const uint8_t (*excluded)[CL_PK_LEN]; /* the excluded landmarks' keys: excluded_digest */
  size_t n_excluded;
} cl_eat_context;

/*
 * The claims of record a with the context x, as a new JSON object (*out;
 * json_decref it). Lists are stated sorted bytewise. Errors, with err:
 * CL_EINVAL (a's version is none, x's issuer or serial empty, position 0,
 * the codes or keys do not give a's digests, or their count is not
 * n_excluded), CL_EMALFORMED (a verdict code no name is known for, or a
 * time or radius beyond JSON's 63-bit integers), CL_ENOMEM.
 */
int cl_eat_claims(const cl_attestation *a, const cl_eat_context *x, json_t **out, char *err,
                  size_t errlen);

/*
 * Signs the claims of a as a compact JWS: header {"alg":"EdDSA",
 * "typ":"eat+jwt","kid":<verifier key in hex>}, payload the compact JSON
 * of cl_eat_claims. *token is malloc'd (free it). a must verify under key
 * (a->verifier is key's public key): the token never carries a record whose
 * own signature fails. Returns 0, CL_EBADSIG (a does not verify under key),
 * or what cl_eat_claims returns.
 */
int cl_eat_sign(const cl_attestation *a, const cl_eat_context *x, const cl_key *key, char **token,
                char *err, size_t errlen);

/*
 * Verifies a token offline under the verifier's key pk: the JWS
 * (cl_jws_verify: EdDSA only, kid = pk), the header is exactly the one
 * cl_eat_sign writes, the embedded layout parses, is by verifier pk and its
 * own signature verifies (cl_attest_verify), and the claims are exactly
 * those cl_eat_claims gives for that record and the token's own issuer,
 * serial, position, codes and keys. On success *out (may be NULL) receives
 * the record and *claims (may be NULL) the claims (json_decref them).
 * Errors, with err naming the part or claim: those of cl_jws_verify;
 * CL_EMALFORMED (a header or claim not of this profile, a layout that does
 * not parse, claims other than the record's); CL_EBADSIG (the layout is by
 * another verifier, or its signature fails); CL_ENOMEM.
 */
int cl_eat_verify(const char *token, size_t len, const uint8_t pk[CL_PK_LEN], cl_attestation *out,
                  json_t **claims, char *err, size_t errlen);

/*
 * Reads a signed layout (version 1 or 2, by its context and length) back
 * into *a, the inverse of cl_attest_layout; a->sig is zeroed. CL_OK, or
 * CL_EMALFORMED for anything cl_attest_layout would not have written.
 */
int cl_eat_parse_layout(const uint8_t *buf, size_t len, cl_attestation *a);

#endif
