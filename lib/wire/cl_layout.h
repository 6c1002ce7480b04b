/*
 * The fixed byte layouts of protocol version 2 and the cryptography over
 * them: the session handshake, the session key, the answer MAC of the timed
 * phase, the chip's transcript signature after a burst and the landmark's
 * measurement record. Signatures and MACs never cover a protobuf
 * serialisation. Each layout begins with a versioned context string and its
 * terminating NUL byte; integers are unsigned big-endian; keys, nonces,
 * MACs and signatures are raw bytes. docs/PROTOCOL.md is the normative
 * description and must change together with this file.
 *
 * Every layout names its cipher suite. Suite 1 (CL_SUITE_ED25519_X25519):
 * Ed25519 identities (RFC 8032), X25519 key agreement (RFC 7748), keyed
 * BLAKE2b-256 (RFC 7693) as the key derivation and the answer MAC.
 * Functions given a suite they do not know return CL_ESUITE.
 */
#ifndef CL_LAYOUT_H
#define CL_LAYOUT_H

#include "cl_key.h"

#include <stddef.h>
#include <stdint.h>

/* ---- cipher suites ------------------------------------------------------- */

#define CL_SUITE_ED25519_X25519 1u /* Ed25519, X25519, keyed BLAKE2b-256 */
/* Reserved, not implemented: ECDSA P-256 identities, P-256 ECDH,
 * HMAC-SHA256 (what TPM 2.0, PKCS#11 tokens and SPDM devices offer). */
#define CL_SUITE_P256_RESERVED 2u

/* 1 when this build implements the suite. */
int cl_suite_known(uint32_t suite);
/* A stable name ("ed25519-x25519-blake2b"), or "unknown". */
const char *cl_suite_name(uint32_t suite);

/* ---- sizes ---------------------------------------------------------------- */

#define CL_NONCE_LEN 32
#define CL_EPH_LEN 32         /* X25519 public key */
#define CL_EPH_SK_LEN 32      /* X25519 secret key */
#define CL_MAC_LEN 32         /* keyed BLAKE2b-256 */
#define CL_SESSION_KEY_LEN 32 /* secret: the MAC key of one session */
#define CL_SESSION_ID_LEN 32  /* public: names the session */
/* Probes one burst, one transcript and one measurement record may hold. */
#define CL_MAX_BURST 16

#define CL_CTX_HS_LANDMARK "chiploc v2 handshake landmark"
#define CL_CTX_HS_CHIP "chiploc v2 handshake chip"
#define CL_CTX_SESSION_ID "chiploc v2 session id"
#define CL_CTX_SESSION_KEY "chiploc v2 session key"
#define CL_CTX_ANSWER "chiploc v2 answer"
#define CL_CTX_TRANSCRIPT "chiploc v2 transcript"
#define CL_CTX_MEASUREMENT "chiploc v2 measurement"

/* The fields both handshake signatures cover, after the context string. */
#define CL_HS_BODY_LEN (4 + 2 * CL_PK_LEN + 2 * CL_EPH_LEN + 2 * CL_NONCE_LEN)
#define CL_HS_LANDMARK_LAYOUT_LEN (sizeof CL_CTX_HS_LANDMARK + CL_HS_BODY_LEN)
#define CL_HS_CHIP_LAYOUT_LEN (sizeof CL_CTX_HS_CHIP + CL_HS_BODY_LEN)
#define CL_ANSWER_LAYOUT_LEN (sizeof CL_CTX_ANSWER + 4 + 2 * CL_PK_LEN + 8 + CL_NONCE_LEN)
/* One probe in a transcript: seq, nonce, the chip's MAC. */
#define CL_TRANSCRIPT_ENTRY_LEN (8 + CL_NONCE_LEN + CL_MAC_LEN)
#define CL_TRANSCRIPT_LAYOUT_LEN(n)                                                    \
  (sizeof CL_CTX_TRANSCRIPT + 4 + CL_SESSION_ID_LEN + 2 * CL_PK_LEN + 4 +              \
   (size_t)(n) * CL_TRANSCRIPT_ENTRY_LEN)
#define CL_TRANSCRIPT_LAYOUT_MAX CL_TRANSCRIPT_LAYOUT_LEN(CL_MAX_BURST)
/* One probe in a measurement record: the transcript entry and its RTT. */
#define CL_RECORD_ENTRY_LEN (CL_TRANSCRIPT_ENTRY_LEN + 8)
#define CL_MEASUREMENT_LAYOUT_LEN(n)                                                   \
  (sizeof CL_CTX_MEASUREMENT + CL_HS_BODY_LEN + 2 * CL_SIG_LEN + 4 +                   \
   (size_t)(n) * CL_RECORD_ENTRY_LEN + CL_SIG_LEN + 8 + 4 + 8)
#define CL_MEASUREMENT_LAYOUT_MAX CL_MEASUREMENT_LAYOUT_LEN(CL_MAX_BURST)

/* ---- the handshake --------------------------------------------------------- */

/*
 * One session between a landmark and a chip, as both sides sign it: the
 * suite, both identities, both ephemeral X25519 keys, both fresh nonces and
 * both identity signatures over them (each with its own context string).
 */
typedef struct {
  uint32_t suite;
  uint8_t landmark[CL_PK_LEN];
  uint8_t chip[CL_PK_LEN];
  uint8_t landmark_eph[CL_EPH_LEN];
  uint8_t chip_eph[CL_EPH_LEN];
  uint8_t landmark_nonce[CL_NONCE_LEN];
  uint8_t chip_nonce[CL_NONCE_LEN];
  uint8_t landmark_sig[CL_SIG_LEN]; /* landmark key over the landmark layout */
  uint8_t chip_sig[CL_SIG_LEN];     /* chip key over the chip layout */
} cl_handshake;

/* Each writes exactly the layout's length into out and returns it. */
size_t cl_layout_hs_landmark(uint8_t out[CL_HS_LANDMARK_LAYOUT_LEN], const cl_handshake *hs);
size_t cl_layout_hs_chip(uint8_t out[CL_HS_CHIP_LAYOUT_LEN], const cl_handshake *hs);

/* Fills hs->landmark_sig / hs->chip_sig; the key must be the one hs names.
 * CL_ESUITE for an unknown suite, CL_EINVAL for another key. */
int cl_hs_sign_landmark(cl_handshake *hs, const cl_key *landmark);
int cl_hs_sign_chip(cl_handshake *hs, const cl_key *chip);
/* 0, CL_ESUITE, or CL_EBADSIG: the signature under hs->landmark / hs->chip. */
int cl_hs_verify_landmark(const cl_handshake *hs);
int cl_hs_verify_chip(const cl_handshake *hs);

/*
 * session_id = BLAKE2b-256(CL_CTX_SESSION_ID NUL || handshake body): public,
 * names the session in transcripts and records. Depends on neither
 * signature. 0 or CL_ESUITE.
 */
int cl_session_id(const cl_handshake *hs, uint8_t id[CL_SESSION_ID_LEN]);

/* A fresh X25519 key pair (eph_sk is secret: wipe it after use). */
void cl_eph_generate(uint8_t eph_pk[CL_EPH_LEN], uint8_t eph_sk[CL_EPH_SK_LEN]);

/*
 * The session key from one side's ephemeral secret and the other side's
 * ephemeral public key (which of hs->landmark_eph / hs->chip_eph is the
 * peer's follows from `side`): q = X25519(own_sk, peer_eph), then
 * key = BLAKE2b-256(key = q, CL_CTX_SESSION_KEY NUL || session_id). q is
 * wiped. Returns 0, CL_ESUITE, or CL_EBADSIG when q is all zero (the peer
 * sent a key of small order).
 */
typedef enum { CL_SIDE_LANDMARK, CL_SIDE_CHIP } cl_side;
int cl_session_key(const cl_handshake *hs, cl_side side, const uint8_t own_eph_sk[CL_EPH_SK_LEN],
                   uint8_t key[CL_SESSION_KEY_LEN]);

/* ---- the timed phase --------------------------------------------------------- */

size_t cl_layout_answer(uint8_t out[CL_ANSWER_LAYOUT_LEN], uint32_t suite,
                        const uint8_t landmark[CL_PK_LEN], const uint8_t chip[CL_PK_LEN],
                        uint64_t seq, const uint8_t nonce[CL_NONCE_LEN]);
/* mac = BLAKE2b-256(key = session key, answer layout). Suite 1 only (the
 * caller checked the suite at the handshake). */
void cl_answer_mac(const uint8_t key[CL_SESSION_KEY_LEN], uint32_t suite,
                   const uint8_t landmark[CL_PK_LEN], const uint8_t chip[CL_PK_LEN], uint64_t seq,
                   const uint8_t nonce[CL_NONCE_LEN], uint8_t mac[CL_MAC_LEN]);
/* 0, or CL_EBADSIG (compared in constant time). */
int cl_answer_check(const uint8_t key[CL_SESSION_KEY_LEN], uint32_t suite,
                    const uint8_t landmark[CL_PK_LEN], const uint8_t chip[CL_PK_LEN], uint64_t seq,
                    const uint8_t nonce[CL_NONCE_LEN], const uint8_t mac[CL_MAC_LEN]);

/* ---- after the burst ---------------------------------------------------------- */

/* One answered probe. */
typedef struct {
  uint64_t seq;
  uint8_t nonce[CL_NONCE_LEN];
  uint8_t mac[CL_MAC_LEN];
  uint64_t rtt_ns; /* the landmark's measurement; not in the transcript */
} cl_probe_entry;

/*
 * The transcript the chip signs: suite, session id, both identities, the
 * count, then each entry's seq, nonce and MAC in order. n must be 1 to
 * CL_MAX_BURST. Returns the length written, 0 for a bad n or suite.
 */
size_t cl_layout_transcript(uint8_t out[CL_TRANSCRIPT_LAYOUT_MAX], const cl_handshake *hs,
                            const cl_probe_entry *e, size_t n);
/* 0, CL_EINVAL (bad n), CL_ESUITE. */
int cl_transcript_sign(const cl_handshake *hs, const cl_probe_entry *e, size_t n,
                       const cl_key *chip, uint8_t sig[CL_SIG_LEN]);
/* 0, CL_EINVAL, CL_ESUITE, or CL_EBADSIG (under hs->chip). */
int cl_transcript_verify(const cl_handshake *hs, const cl_probe_entry *e, size_t n,
                         const uint8_t sig[CL_SIG_LEN]);

/* ---- the measurement record ------------------------------------------------------ */

/*
 * One signed measurement record: a burst's accepted probes with the
 * session they ran in, the chip's transcript signature over them and the
 * landmark's signature over all of it. Stands alone: anyone with the two
 * public keys re-verifies it offline (cl_measurement_verify).
 */
typedef struct {
  cl_handshake hs;                    /* suite, identities, session, both signatures */
  uint32_t count;                     /* accepted probes, 1..CL_MAX_BURST */
  cl_probe_entry probes[CL_MAX_BURST]; /* in increasing seq */
  uint8_t transcript_sig[CL_SIG_LEN]; /* chip key over the transcript layout */
  uint64_t rtt_ns;                    /* the smallest probes[].rtt_ns */
  uint32_t probes_sent;               /* probes of the burst, answered or not */
  uint64_t measured_unix_ns;          /* landmark wall clock when the burst ended */
  uint8_t sig[CL_SIG_LEN];            /* landmark key over the measurement layout */
} cl_measurement;

/* Returns the length written, 0 for a bad count or suite. */
size_t cl_layout_measurement(uint8_t out[CL_MEASUREMENT_LAYOUT_MAX], const cl_measurement *m);
/*
 * The record's own consistency, without any signature: a known suite,
 * count 1..CL_MAX_BURST, seqs strictly increasing, probes_sent >= count,
 * rtt_ns equal to the smallest entry's RTT. 0, CL_ESUITE or CL_EMALFORMED
 * (err, may be NULL, names the field).
 */
int cl_measurement_check(const cl_measurement *m, char *err, size_t errlen);
/* Landmark: fills m->sig. CL_EINVAL for a record cl_measurement_check refuses. */
int cl_measurement_sign(cl_measurement *m, const cl_key *landmark);
/* The landmark's signature alone: 0, CL_ESUITE, CL_EMALFORMED, CL_EBADSIG. */
int cl_measurement_verify_landmark(const cl_measurement *m);
/* The chip's transcript signature alone (what the verifier's check 5 is). */
int cl_measurement_verify_chip(const cl_measurement *m);
/*
 * Offline re-verification of everything a record carries: its consistency,
 * the landmark's record signature, the chip's transcript signature, and
 * both handshake signatures. 0, CL_ESUITE, CL_EMALFORMED or CL_EBADSIG.
 */
int cl_measurement_verify(const cl_measurement *m);
/* Index of the fastest probe (the first of equal ones). */
size_t cl_measurement_fastest(const cl_measurement *m);

/* ---- the record's storage form -------------------------------------------------- */

/*
 * How a record is kept in the database (docs/SCHEMA.md) and the spool: the
 * handshake's session fields as one blob (landmark_eph || chip_eph ||
 * landmark_nonce || chip_nonce || landmark_sig || chip_sig), and the
 * entries as one blob of count * CL_RECORD_ENTRY_LEN bytes (each seq ||
 * nonce || mac || rtt_ns). The suite and the two identities are kept
 * apart (columns and the keys the row's ids name).
 */
#define CL_HS_BLOB_LEN (2 * CL_EPH_LEN + 2 * CL_NONCE_LEN + 2 * CL_SIG_LEN)
#define CL_PROBES_BLOB_MAX (CL_MAX_BURST * CL_RECORD_ENTRY_LEN)
void cl_hs_blob_put(uint8_t out[CL_HS_BLOB_LEN], const cl_handshake *hs);
/* Fills the session fields of hs; suite and identities are the caller's. */
void cl_hs_blob_get(cl_handshake *hs, const uint8_t in[CL_HS_BLOB_LEN]);
/* Returns n * CL_RECORD_ENTRY_LEN (n <= CL_MAX_BURST). */
size_t cl_probes_blob_put(uint8_t out[CL_PROBES_BLOB_MAX], const cl_probe_entry *e, size_t n);
/* Reads len bytes into e[], *n entries. CL_EMALFORMED unless len is a
 * non-zero multiple of CL_RECORD_ENTRY_LEN of at most CL_MAX_BURST entries. */
int cl_probes_blob_get(cl_probe_entry e[CL_MAX_BURST], size_t *n, const uint8_t *in, size_t len);

/* ---- integers ------------------------------------------------------------------ */

void cl_put_be64(uint8_t *p, uint64_t v);
/* The 64 bits of an IEEE-754 double, big-endian: how digests encode a
 * position or a vertex exactly. */
void cl_put_be64_double(uint8_t *p, double v);
void cl_put_be32(uint8_t *p, uint32_t v);
uint64_t cl_get_be64(const uint8_t *p);
uint32_t cl_get_be32(const uint8_t *p);

#endif
