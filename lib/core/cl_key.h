/*
 * Ed25519 identity keys for landmarks, chips and the verifier.
 *
 * A secret key lives only in sodium_malloc memory (guarded pages, wiped on
 * free). Key files are versioned text records:
 *
 *     chiploc-secret-key v1
 *     seed <64 lowercase hex chars: the 32-byte Ed25519 seed>
 *     public <64 lowercase hex chars: the public key>
 *
 * created with O_CREAT|O_EXCL and mode 0600; an existing file is never
 * overwritten. The public key's stable text form is 64 lowercase hex
 * characters (cl_pk_to_hex / cl_pk_from_hex).
 */
#ifndef CL_KEY_H
#define CL_KEY_H

#include <stddef.h>
#include <stdint.h>

#define CL_PK_LEN 32
#define CL_SK_LEN 64
#define CL_SIG_LEN 64
#define CL_PK_HEX_LEN 64 /* without the NUL */

typedef struct cl_key cl_key; /* opaque: holds the secret key */

/* Generates a fresh key pair. Returns 0, CL_ENOMEM. */
int cl_key_generate(cl_key **out);
/* Derives a key pair from a 32-byte seed (tests and test vectors). */
int cl_key_from_seed(cl_key **out, const uint8_t seed[32]);
/* Loads a key file. Errors: CL_EIO (open/read; errno set), CL_EVERSION (not
 * a v1 key file), CL_EMALFORMED (bad line or hex, or the public line does not
 * match the seed), CL_EPERM (file readable by group or others). On error
 * writes a one-line reason into err (may be NULL). */
int cl_key_load(cl_key **out, const char *path, char *err, size_t errlen);
/* Writes a key file with O_CREAT|O_EXCL, mode 0600. CL_EEXIST if the path
 * exists, CL_EIO on any other failure (the partial file is removed). */
int cl_key_save(const cl_key *key, const char *path);
/* Wipes and frees the key, sets *key to NULL. NULL-safe. */
void cl_key_destroy(cl_key **key);

const uint8_t *cl_key_public(const cl_key *key);
/* Signs msg; sig receives CL_SIG_LEN bytes. */
void cl_key_sign(const cl_key *key, uint8_t sig[CL_SIG_LEN], const uint8_t *msg, size_t len);
/* Returns 0 if sig is valid for msg under pk, CL_EBADSIG otherwise. */
int cl_sig_verify(const uint8_t pk[CL_PK_LEN], const uint8_t sig[CL_SIG_LEN], const uint8_t *msg,
                  size_t len);

/* out must hold CL_PK_HEX_LEN + 1 bytes. */
void cl_pk_to_hex(const uint8_t pk[CL_PK_LEN], char out[CL_PK_HEX_LEN + 1]);
/* Accepts exactly 64 hex characters (either case), surrounding whitespace
 * ignored. Returns 0 or CL_EMALFORMED. Does not check that the point is on
 * the curve; cl_pk_check does. */
int cl_pk_from_hex(const char *text, uint8_t pk[CL_PK_LEN]);
/* Returns 0 if pk is a usable Ed25519 public key (on the curve, not of small
 * order), CL_EMALFORMED otherwise. */
int cl_pk_check(const uint8_t pk[CL_PK_LEN]);

/* Hex helpers for any length; out needs 2*len+1 bytes. */
void cl_hex_encode(char *out, const uint8_t *in, size_t len);
int cl_hex_decode(uint8_t *out, size_t outlen, const char *hex, size_t hexlen);

#endif
