/*
 * The chip's side of one protocol-2 session with one landmark, without I/O:
 * the offer (a fresh X25519 key and nonce), the landmark's answer (its
 * handshake signature checked, the chip's signed, the session key derived),
 * the timed answers (one MAC each, remembered for the transcript) and the
 * transcript of a burst. chipagent, the fleet simulator, the tests and the
 * fuzz corpus generators all use this one implementation.
 *
 * The session key lives in memory the caller gives (chipagent: one
 * sodium_malloc block for all its sessions, guarded and locked); it is
 * written only by cl_chipsess_accept and wiped by cl_chipsess_end and by a
 * new offer. The ephemeral secret lives in the struct from the offer to the
 * accept and is wiped there.
 */
#ifndef CL_CHIPSESS_H
#define CL_CHIPSESS_H

#include "cl_key.h"
#include "cl_layout.h"
#include "cl_msg.h"

#include <stddef.h>
#include <stdint.h>

/* Answers remembered for transcripts: two bursts' worth. */
#define CL_CHIPSESS_LOG (2 * CL_MAX_BURST)

typedef enum { CL_CHIPSESS_NONE = 0, CL_CHIPSESS_OFFERED, CL_CHIPSESS_ESTABLISHED } cl_chipsess_state;

typedef struct {
  cl_chipsess_state state;
  cl_handshake hs;                 /* suite, identities, both halves, both signatures */
  uint8_t eph_sk[CL_EPH_SK_LEN];   /* OFFERED only */
  uint8_t *key;                    /* CL_SESSION_KEY_LEN bytes of the caller's memory */
  cl_probe_entry log[CL_CHIPSESS_LOG]; /* answers given (rtt_ns unused) */
  unsigned log_next;
  uint64_t answers; /* answers given in this session */
} cl_chipsess;

/* key_slot: CL_SESSION_KEY_LEN bytes the session key will live in. */
void cl_chipsess_init(cl_chipsess *s, uint8_t *key_slot);
/*
 * Starts a handshake: a fresh ephemeral key pair and nonce, for the chip
 * `chip` (public key) and the landmark `landmark` (the pinned key) in
 * `suite`. Any previous session is ended first. Fills *offer. 0 or
 * CL_ESUITE.
 */
int cl_chipsess_offer(cl_chipsess *s, uint32_t suite, const uint8_t landmark[CL_PK_LEN],
                      const uint8_t chip[CL_PK_LEN], cl_chip_offer *offer);
/*
 * The landmark accepted the offer (r->accepted, r->chip is this chip):
 * checks the landmark's handshake signature under the pinned landmark key,
 * derives the session key, then fills *hs_out with the handshake the chip
 * must sign (cl_hs_sign_chip) and whose chip_sig goes into the Confirm.
 * The session counts as established from here (the caller signs, then
 * cl_chipsess_confirmed stores the signature). Returns 0, CL_EINVAL (not
 * OFFERED, or another chip), CL_EBADSIG (the landmark's signature fails or
 * its ephemeral key is of small order: the offer is void).
 */
int cl_chipsess_accept(cl_chipsess *s, const cl_chip_result *r, cl_handshake *hs_out);
/* Stores the chip's handshake signature (for records the chip reads back). */
void cl_chipsess_confirmed(cl_chipsess *s, const uint8_t chip_sig[CL_SIG_LEN]);
/*
 * The timed answer to a challenge: MAC under the session key, remembered
 * for the transcript. 0, or CL_EINVAL when no session is established.
 */
int cl_chipsess_answer(cl_chipsess *s, uint64_t seq, const uint8_t nonce[CL_NONCE_LEN],
                       uint8_t mac[CL_MAC_LEN]);
/*
 * The transcript entries of a BurstEnd: for each seq, in order, the nonce
 * and MAC this chip answered it with. 0; CL_EINVAL (no session, n out of
 * 1..CL_MAX_BURST); CL_ENOTFOUND when a seq is not one this chip answered
 * in this session (or is no longer remembered): the chip signs only what
 * it answered.
 */
int cl_chipsess_transcript(const cl_chipsess *s, const uint64_t *seqs, size_t n,
                           cl_probe_entry out[CL_MAX_BURST]);
/* Wipes the key and the ephemeral secret; the state goes back to NONE. */
void cl_chipsess_end(cl_chipsess *s);

#endif
