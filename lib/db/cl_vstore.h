/*
 * The verifier's database side: the verifier registry, one round's inputs
 * (chips, their allowed regions, the fastest measurement per landmark in the
 * window, chain heads and open alerts) and its outputs (attestations and
 * alert changes). Blocking libpq through cl_store; all SQL parameterised.
 * A round runs inside one transaction holding an advisory lock per verifier,
 * so two verifier processes with the same key never interleave a round.
 * Verifiers of a pool (schema 0010) share the chips: each round's chips
 * are claimed in batches of buckets, each batch one such transaction.
 */
#ifndef CL_VSTORE_H
#define CL_VSTORE_H

#include "cl_evidence.h"
#include "cl_region.h"
#include "cl_store.h"
#include "cl_verify.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
  cl_verify_chip in; /* pointers into the members below */
  char *serial;
  char **codes;
  size_t n_codes;
  const cl_region **members;
  uint8_t (*region_digests)[CL_HASH_LEN]; /* cl_region_digest of each member */
  cl_region_union uni;
  cl_verify_min *mins;
  int attested;                       /* already attested for this round */
  int head_ahead;                     /* ... by a round ending after this one */
  int open_alert[CL_ALERT__CHIP_KINDS]; /* currently open alerts */
} cl_vchip;

typedef struct {
  int64_t id;
  char *name;
  double lat, lon;
  uint8_t pk[CL_PK_LEN];
  cl_ev_key_state key; /* retirement or revocation */
  int open_misplaced;   /* a landmark_misplaced alert is open */
  int open_bad_records; /* a landmark_bad_records alert is open */
  /* Rows naming this landmark (as measuring landmark, or as the probing
   * landmark of a link) that the round refused, by cl_ev_reason. */
  uint64_t rejected[CL_EV__COUNT];
} cl_vlandmark;

/* Fastest landmark-to-landmark probe of a pair (one direction) in the window. */
typedef struct {
  int64_t from_id, to_id;
  double rtt_ms;
} cl_vlink;

typedef struct {
  cl_vchip *chips;
  size_t n_chips;
  cl_region_set regions;
  uint8_t (*region_digests)[CL_HASH_LEN]; /* of each region of the set, in its order */
  cl_vlandmark *landmarks; /* every landmark, ordered by id */
  size_t n_landmarks;
  cl_vlink *links;
  size_t n_links;
  /* Rows refused this round, by cl_ev_reason (the sum over landmarks), and
   * rows judged (the candidates read, whatever the outcome). */
  uint64_t rejected[CL_EV__COUNT];
  uint64_t judged;
  uint64_t judge_ns; /* time spent judging rows (CLOCK_MONOTONIC), for the round log */
  int regions_borrowed; /* regions and region_digests belong to a cl_vregions */
} cl_vworld;

/* Candidate rows read per (chip, landmark), fastest first: the fastest that
 * the verifier believes is used. An honest round reads one row per pair,
 * as many as the minima it needs. When all of them are refused, the
 * CL_VSTORE_DEEPER next rows of that pair are read; when those are refused
 * too, that landmark gives no bound for the chip this round, which only
 * widens the result (and its alert names the landmark). Garbage rows in a
 * landmark's name must outnumber both to take its bound out of a round. */
#define CL_VSTORE_CANDIDATES 1
#define CL_VSTORE_DEEPER 64
/* Candidate rows read per ordered landmark pair (links are few). */
#define CL_VSTORE_LINK_CANDIDATES 16

int cl_vstore_verifier_add(cl_store *s, const char *name, const uint8_t pk[CL_PK_LEN],
                           int64_t *id, char *err, size_t errlen);
/* CL_ENOTFOUND if the key is not registered. */
int cl_vstore_verifier_find(cl_store *s, const uint8_t pk[CL_PK_LEN], int64_t *id, char *err,
                            size_t errlen);
/* Binds the login role `role` to the verifier named `name`: that login may
 * then write this verifier's attestations (schema 0004's guard).
 * CL_ENOTFOUND (no such verifier or role), CL_EINVAL (a group role). */
int cl_vstore_verifier_bind(cl_store *s, const char *name, const char *role, char *err,
                            size_t errlen);
/* CL_OK when this connection's login may write attestations of verifier
 * id (bound to it, a member of chiploc_admin or the tables' owner), else
 * CL_EPERM with err naming the `chiploc verifier bind` that fixes it. */
int cl_vstore_verifier_may_write(cl_store *s, int64_t id, char *err, size_t errlen);
/* Inside an open transaction: waits for this verifier's round lock. */
int cl_vstore_lock(cl_store *s, int64_t verifier_id, char *err, size_t errlen);
/* The database's clock (unix ns), to compare with the verifier's. */
int cl_vstore_db_now(cl_store *s, uint64_t *now_ns, char *err, size_t errlen);
/*
 * Loads every active chip's inputs for the round ending at round_end_ns,
 * with the measurements and landmark links of the window_ns before it, into
 * w (overwritten: pass a zeroed or freed world, not a loaded one). Inside
 * the round's transaction. Returns 0, or with err set: CL_EDB, CL_EPERM
 * (a query failed), CL_EMALFORMED (a key, hash, measurement column or
 * region geometry the engine cannot use), CL_ENOMEM.
 *
 * Ownership: on success the caller owns everything in w and releases it
 * with cl_vworld_free. On any error the loader has already released what
 * it had loaded and left w zeroed, so the caller has nothing to free;
 * calling cl_vworld_free on it anyway is harmless, which lets a caller use
 * one cleanup path for both outcomes.
 */
/*
 * Only protocol 2 rows are read (the protocol 1 rows of an upgraded
 * database are neither candidates nor refusals), and only those that
 * cl_evidence_judge accepts count: each chip's minimum per
 * landmark is the fastest accepted one among the CL_VSTORE_CANDIDATES
 * fastest rows (and, when those are all refused, the CL_VSTORE_DEEPER next
 * ones), and each link the fastest accepted among its
 * CL_VSTORE_LINK_CANDIDATES fastest; every refusal is counted in
 * w->rejected and in its landmark's rejected. ev (may be NULL) remembers
 * outcomes across rounds.
 */
int cl_vstore_load(cl_store *s, int64_t verifier_id, uint64_t round_end_ns, uint64_t window_ns,
                   cl_evcache *ev, cl_vworld *w, char *err, size_t errlen);

/*
 * ---- pools: verifiers that share the chips ---------------------------------
 *
 * A chip belongs to bucket chip_id mod CL_VSTORE_BUCKETS (the schema's CHECK
 * on verifier_claims.bucket says the same). In a round, a member claims up
 * to CL_VSTORE_BATCH_BUCKETS buckets that no one has claimed for that round,
 * attests their chips, and commits claims and attestations together; it
 * repeats until no bucket is left. A bucket another member is working on
 * (an uncommitted claim) is skipped, never waited for.
 */
#define CL_VSTORE_BUCKETS 64
#define CL_VSTORE_BATCH_BUCKETS 8
/* Pool names: 1 to 64 of [A-Za-z0-9_.-] (the schema's CHECK). */
#define CL_VSTORE_POOL_MAX 64
/* The pool's members, for the previous verdicts of a chip: the verifiers
 * with a claim in the pool within this many rounds before the current one. */
#define CL_VSTORE_MEMBER_ROUNDS 60

/* CL_OK when name is a valid pool name, else CL_EINVAL. */
int cl_vstore_pool_name_ok(const char *name);

/* The regions any chip is allowed in, parsed once for all the batches of a
 * round, with the cl_region_digest of each (in the set's order). */
typedef struct {
  cl_region_set set;
  uint8_t (*digests)[CL_HASH_LEN];
} cl_vregions;

/* Loads *out (overwritten). Errors as cl_vstore_load's region part
 * (CL_EDB, CL_EMALFORMED, CL_ENOMEM); on error *out is left empty. */
int cl_vstore_load_regions(cl_store *s, cl_vregions *out, char *err, size_t errlen);
/* Releases a cl_vregions and zeroes it; safe on a zeroed one. */
void cl_vregions_free(cl_vregions *r);

/* A batch: the buckets claimed, the pool's members, and the round's
 * regions (NULL: the batch loads them itself). */
typedef struct {
  int buckets[CL_VSTORE_BUCKETS];
  size_t n_buckets;
  const int64_t *members; /* verifier ids, this verifier's among them */
  size_t n_members;
  const cl_vregions *regions; /* borrowed by the batch's world */
} cl_vscope;

/*
 * The pool's members for the round ending at round_end_ns: self and every
 * verifier with a claim in `pool` for one of the CL_VSTORE_MEMBER_ROUNDS
 * rounds (of interval_ns) before it. *members is malloc'd (the caller frees
 * it). Refuses with CL_EINVAL, err naming both, when a member claimed one of
 * those rounds with another interval: the members' rounds would not align
 * and chips would be attested more than once per round. CL_EDB, CL_ENOMEM.
 */
int cl_vstore_pool_members(cl_store *s, const char *pool, uint64_t round_end_ns,
                           uint64_t interval_ns, int64_t self, int64_t **members, size_t *n,
                           char *err, size_t errlen);
/*
 * Inside an open transaction: claims up to CL_VSTORE_BATCH_BUCKETS buckets
 * of the round that are neither claimed (committed) nor being claimed (a
 * transaction advisory lock per pool, round and bucket, tried, never waited
 * for), into scope->buckets (ascending; n_buckets 0 when none is left). The
 * claims commit or roll back with the transaction. Preferred: this member's
 * buckets of the round before (up to a fair share of the members of that
 * round), then buckets no one had, others' beyond their share, and those of
 * members that have committed nothing this round; the rest of a working
 * member's share is taken only to fill this member's own share. CL_EDB,
 * CL_EPERM (the login is not bound to verifier_id).
 */
int cl_vstore_pool_claim(cl_store *s, const char *pool, uint64_t round_end_ns,
                         uint64_t interval_ns, int64_t verifier_id, cl_vscope *scope, char *err,
                         size_t errlen);
/*
 * cl_vstore_load for the chips of scope's buckets only (scope NULL: every
 * active chip, exactly cl_vstore_load). A chip's chain head (prev_hash,
 * whether this round is attested) is this verifier's, as always; its
 * previous verdicts (the chip_moved and chip_dark inputs) are those of its
 * latest attestation by any of scope's members, so that a chip moving
 * between members keeps its alerts' history. The regions are scope's
 * (borrowed: cl_vworld_free leaves them), or when it has none loaded as by
 * cl_vstore_load. Ownership and errors as cl_vstore_load.
 */
int cl_vstore_load_scope(cl_store *s, int64_t verifier_id, uint64_t round_end_ns,
                         uint64_t window_ns, const cl_vscope *scope, cl_evcache *ev, cl_vworld *w,
                         char *err, size_t errlen);
/*
 * Coverage of a past round of the pool: the active chips enrolled before
 * round_end_ns that no member attested for it, when the pool claimed at
 * least one bucket of that round (*ran = 1; 0 and no count otherwise).
 * *first_serial gets the serial of the first such chip ("" when none).
 * CL_EDB with err.
 */
int cl_vstore_pool_gaps(cl_store *s, const char *pool, uint64_t round_end_ns,
                        const int64_t *members, size_t n_members, int *ran, uint64_t *chips,
                        char *first_serial, size_t serial_len, char *err, size_t errlen);
/*
 * A member's landmark_bad_records alerts (schema 0010: one per landmark and
 * member, verifier_id set): for each of the n landmarks, opens it (or
 * updates its detail) when refused[i] > 0, with detail[i]; clears every other
 * open one of this verifier, and those of verifiers that claimed in `pool`
 * once but are no longer among its members (gone for CL_VSTORE_MEMBER_ROUNDS
 * rounds: no one else would ever clear them). CL_EDB, CL_EPERM, CL_ENOMEM.
 */
int cl_vstore_pool_bad_records(cl_store *s, const char *pool, int64_t verifier_id,
                               const int64_t *members, size_t n_members,
                               const int64_t *landmark_ids, const uint64_t *refused,
                               char *const *detail, size_t n, char *err, size_t errlen);
/* Releases everything a world loaded by cl_vstore_load owns (serials, codes,
 * minima, landmark names, links, regions) and zeroes w. Safe on a zeroed
 * world, so a second call is harmless. */
void cl_vworld_free(cl_vworld *w);
/*
 * The round's writes, batched: cl_vwriter_begin starts one COPY into
 * attestations; cl_vwriter_add streams one chip's attestation row into it
 * (so the server parses rows while the verifier computes the next chips)
 * and notes its alert changes; cl_vwriter_finish ends the COPY, then opens
 * the new alerts (one INSERT ... SELECT over arrays, each linked to its
 * attestation by chip, verifier and round) and clears the others (one
 * UPDATE). Inside the round's transaction; no other statement may run on
 * the connection between begin and finish. finish and abort free the
 * writer. Errors: CL_EDB (with err), CL_EEXIST (an attestation of that
 * round exists), CL_EPERM, CL_ENOMEM, CL_EINVAL (an attestation of another
 * round); after an error the caller aborts (if not finished) and rolls back.
 */
typedef struct cl_vwriter cl_vwriter;
int cl_vwriter_begin(cl_store *s, int64_t verifier_id, uint64_t round_end_ns, cl_vwriter **out,
                     char *err, size_t errlen);
int cl_vwriter_add(cl_vwriter *w, const cl_vchip *c, const cl_verify_out *o, char *err,
                   size_t errlen);
int cl_vwriter_finish(cl_vwriter **w, char *err, size_t errlen);
void cl_vwriter_abort(cl_vwriter **w);

/* Landmark alert kinds of cl_vstore_landmark_alert. */
typedef enum { CL_VALERT_MISPLACED = 0, CL_VALERT_BAD_RECORDS } cl_valert_kind;
/* Opens (open = 1) or clears the landmark_misplaced or landmark_bad_records
 * alert of a landmark, unless it is already in that state
 * (lm->open_misplaced, lm->open_bad_records). An open alert's detail is
 * updated when it changes. */
int cl_vstore_landmark_alert(cl_store *s, const cl_vlandmark *lm, cl_valert_kind kind, int open,
                             const char *detail, char *err, size_t errlen);
/* Opens or clears this verifier's verifier_clock alert (its clock runs
 * ahead of the database's); CL_OK without a change when already so. */
int cl_vstore_verifier_alert(cl_store *s, int64_t verifier_id, int open, const char *detail,
                             char *err, size_t errlen);

/* Kinds counted by cl_vstore_open_alerts: the chip kinds CL_ALERT_*, then
 * landmark_misplaced, landmark_bad_records and verifier_clock. */
#define CL_VSTORE_ALERT_KINDS (CL_ALERT__CHIP_KINDS + 3)
/* The alert kind text of index k of cl_vstore_open_alerts' counts. */
const char *cl_vstore_alert_kind_name(int k);
/* Counts the open alerts (not cleared) of every kind, whoever raised them,
 * indexed as cl_vstore_alert_kind_name. Returns 0 or CL_EDB with err set. */
int cl_vstore_open_alerts(cl_store *s, uint64_t counts[CL_VSTORE_ALERT_KINDS], char *err,
                          size_t errlen);

#endif
