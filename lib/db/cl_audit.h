/*
 * Offline audit of the signed records in the database: every protocol 2
 * measurement and landmark link is re-verified completely against the
 * enrolled keys (cl_measurement_verify: the record, the chip's transcript
 * and both handshake signatures) and the lifecycle of the landmark that
 * signed it; protocol 1 rows, kept from before the upgrade, are counted as
 * legacy, not re-verifiable by this version. Every attestation is rebuilt
 * from its row, its signature and stored hash are checked, and each (chip,
 * verifier) chain is walked in round order. A version-2 attestation is
 * rebuilt from its own row alone (it carries the landmark signatures it
 * cites and the digests of its inputs); the audit then follows the evidence:
 * each cited signature must belong to a measurement row of the chip, in the
 * attestation's window, that the verifier would believe, and the digests of the declared site,
 * the used landmarks and the allowed regions' geometry are recomputed from
 * the current enrolment rows. docs/OPERATIONS.md says what the audit can
 * and cannot detect; docs/ATTESTATION.md gives the layouts and digests.
 *
 * Evidence removed by retention (`chiploc db maintain --retain-months`,
 * schema 0007) is no finding: a cited measurement that no live row carries
 * counts as retired when measurement_retention, which only chiploc_maintain
 * writes, shows that it went with its partition. That is when the
 * attestation's window, widened by the second of slack the evidence query
 * allows, lies inside the recorded ranges, and no live row carries the
 * signature at all; or when measurement_retention_cited records the row
 * for this attestation (a window reaching past a removed month into a live
 * one). A recorded range that a partition of measurements covers again (an
 * archive attached back) excuses nothing: its rows are checked as live. A
 * row missing anywhere else stays a finding.
 *
 * Verifier pools (schema 0010) are checked for coverage: a chip that no
 * member of a pool attested for one of the pool's rounds is a pool gap (see
 * cl_audit_pool_gap), a problem like a finding.
 *
 * The audit reads inside one REPEATABLE READ, READ ONLY transaction, so it
 * sees one consistent snapshot even while landmarks and the verifier keep
 * writing, and it streams every table in libpq's single-row mode: memory
 * does not grow with the size of the measurement, link or attestation
 * tables, only with the number of findings (at most CL_AUDIT_MAX_FINDINGS
 * are kept; all are counted) and with the number of regions that version-2
 * attestations name (one geometry digest each, computed once).
 */
#ifndef CL_AUDIT_H
#define CL_AUDIT_H

#include "cl_attest.h"
#include "cl_store.h"

#include <stddef.h>
#include <stdint.h>

/* Findings kept in a report; further ones are only counted. */
#define CL_AUDIT_MAX_FINDINGS 100000
/* Pool gaps kept in a report (the first, by round, pool and serial); all
 * are counted. */
#define CL_AUDIT_POOL_GAPS_SHOWN 10
/* Most measurement ids (version 1) or landmark signatures (version 2) one
 * attestation may name and still be rebuilt; the verifier names one per
 * landmark. */
#define CL_AUDIT_MAX_IDS 4096

/* ref of a CL_AUDIT_INPUT_CHANGED finding: which input differs. */
enum {
  CL_AUDIT_INPUT_SITE = 1,      /* site_digest vs chips.site_lat/site_lon */
  CL_AUDIT_INPUT_LANDMARKS = 2, /* landmarks_digest vs the cited rows' landmarks */
  CL_AUDIT_INPUT_REGIONS = 3,   /* regions_digest vs regions.geojson of allowed_regions */
};

typedef enum {
  CL_AUDIT_MEASUREMENTS = 0,
  CL_AUDIT_LANDMARK_LINKS,
  CL_AUDIT_ATTESTATIONS,
} cl_audit_table;

typedef enum {
  /* A protocol 2 measurement or link that does not re-verify under the
   * enrolled keys (cl_measurement_verify): a column missing or of the
   * wrong size, a record that is not consistent in itself (rtt_ns not the
   * smallest entry's, seqs out of order), or its record, transcript or
   * either handshake signature fails. The row was edited (or a key was),
   * or its landmark signed what no chip answered. */
  CL_AUDIT_SIGNATURE = 0,
  /* An attestation whose verifier signature fails over the layout rebuilt
   * from its row (version 2: from its row alone; version 1: with the
   * landmark signatures of the measurements its ids name): edited, or
   * forged without the verifier's key. */
  CL_AUDIT_ATTESTATION_SIGNATURE,
  /* The stored hash is not the hash of the attestation's contents. */
  CL_AUDIT_HASH_MISMATCH,
  /* Version 1 only: a measurement the attestation names is gone (deleted),
   * and retention did not remove it. ref: its id. (Version 2 reports
   * CL_AUDIT_EVIDENCE instead.) */
  CL_AUDIT_MEASUREMENT_MISSING,
  /* prev_hash is not the hash of the previous attestation of the same chip
   * and verifier: a record was deleted before this one, or this one was
   * inserted. ref: the id of the previous record in round order. */
  CL_AUDIT_CHAIN_BREAK,
  /* The first attestation of a chip and verifier has a non-zero prev_hash:
   * the chain's first record(s) were deleted. */
  CL_AUDIT_CHAIN_START,
  /* A column that is not signed disagrees with the signed values it is
   * derived from (measured_at vs measured_at_ns, bound_m vs rtt_ns, nonce
   * and seq vs the fastest probe's, round_end vs round_end_ns): edited. */
  CL_AUDIT_DERIVED_COLUMN,
  /* A version-2 attestation that verifies cites a landmark signature that
   * no usable measurement row carries: no row of the attestation's chip,
   * with measured_at_ns in (round_end_ns - window_ns, round_end_ns] (and
   * measured_at within a second of it) and that signature, is one the
   * verifier would believe now (cl_evidence_judge: not dated more than
   * CL_EV_FUTURE_SLACK_NS after its insert time, its landmark's key not
   * retired before it was measured nor revoked before it was inserted, a
   * consistent record, record and transcript signatures valid under the
   * enrolled keys). A protocol 1 row carrying the signature counts when the
   * checks that need no signature pass (see legacy_evidence); a row that
   * retention removed counts as retired (see evidence_retired). The row was
   * deleted or edited, or its landmark retired afterwards. One finding per
   * attestation, for the first such
   * signature in measurement_sigs order; ref: the id of the first row
   * carrying it that failed, 0 if no row carries it. */
  CL_AUDIT_EVIDENCE,
  /* A version-2 attestation that verifies signed a digest of an input that
   * the current enrolment rows no longer give: ref CL_AUDIT_INPUT_SITE,
   * _LANDMARKS or _REGIONS (one finding per input that differs). A row of
   * chips, landmarks or regions was edited after the attestation (or the
   * verifier was given other rows than the database holds now). */
  CL_AUDIT_INPUT_CHANGED,
  /* A measurement or link whose signatures verify but whose signing
   * landmark (landmark_id; from_landmark_id of a link) was retired before
   * the row's measured_at_ns, or revoked before the database received the
   * row (inserted_at): its key no longer counted. ref: the landmark's id. */
  CL_AUDIT_RETIRED_KEY,
} cl_audit_problem;

typedef struct {
  cl_audit_table table;
  int64_t id;               /* the row's id in that table */
  cl_audit_problem problem;
  int64_t ref;              /* related id or input (see the problem), 0 if none */
} cl_audit_finding;

/*
 * A pool gap: a chip that no member of a verifier pool attested for a round
 * of the pool. The pool's members are the verifiers named by its claims
 * (verifier_claims, any round); its rounds are the round_end_ns of its
 * claims and of its members' attestations, from its oldest claimed round up
 * to, not including, its newest one (which may still be running). A chip
 * counts for a round when it was enrolled by the round's end and was active
 * then, as far as the chips table tells: active now, or deactivated
 * (deactivated_at, schema 0008) more than two of the pool's longest round
 * intervals after the round's end (a member may attest a round that late).
 * A chip deactivated and reactivated keeps no record of it: one that was
 * inactive during a round but is active now counts as a gap.
 */
typedef struct {
  char *serial;             /* chips.serial, malloc'd */
  char pool[72];            /* verifier_claims.pool (at most 64 bytes) */
  int64_t round_end_ns;
} cl_audit_pool_gap;

typedef struct {
  int64_t measurements;     /* rows checked per table (protocol 2 rows) */
  int64_t links;
  int64_t attestations;
  /* Legacy (protocol 1), not re-verifiable by this version: rows stored
   * before the upgrade to protocol 2, counted rather than checked, and
   * version-2 attestations whose evidence includes such a row (found by
   * its signature, window and lifecycle; its signatures unchecked). None
   * is a finding. */
  int64_t legacy_measurements;
  int64_t legacy_links;
  int64_t legacy_evidence;
  /* Attestations citing measurements that retention removed (see above):
   * none is a finding. A version-2 record is still verified from its own
   * row, but its landmarks digest cannot be recomputed without the rows; a
   * version-1 record cannot be rebuilt at all (its signature covers the
   * removed rows' signatures) and counts in its chain by its stored hash.
   * The ranges of measurement_retention that excuse (retention_ranges; the
   * newest end in retired_until_us, microseconds since 1970, 0 if none) and
   * those a partition of measurements covers again (ignored_ranges). */
  int64_t evidence_retired;
  int64_t retention_ranges;
  int64_t ignored_ranges;
  int64_t retired_until_us;
  int64_t chains;           /* distinct (chip, verifier) chains walked */
  /* Verifier pools: the pools and pool rounds checked, the (chip, pool,
   * round) gaps found (each one a problem) and the first of them. */
  int64_t pools;
  int64_t pool_rounds;
  int64_t pool_gaps;
  cl_audit_pool_gap gaps[CL_AUDIT_POOL_GAPS_SHOWN];
  size_t n_gaps;
  int64_t problems;         /* every finding, kept or not, and every pool gap */
  cl_audit_finding *findings; /* the first CL_AUDIT_MAX_FINDINGS, malloc'd */
  size_t n_findings;
  size_t cap;
} cl_audit_report;

/*
 * Audits the whole database behind s. The connection must not be inside a
 * transaction (CL_EINVAL otherwise); the audit opens and ends its own. On
 * success *out holds the counts and the findings, sorted by table, id,
 * problem and ref (free it with cl_audit_report_free); 0 findings means
 * clean (and 0 problems: no finding and no pool gap).
 * Returns 0 even when there are findings. Errors: CL_EPERM (the role lacks
 * SELECT on a table; the audit needs what chiploc_admin or chiploc_verifier
 * may read), CL_EDB (any other database failure), CL_ENOMEM; err says
 * which step failed, and *out is left empty.
 */
int cl_audit_run(cl_store *s, cl_audit_report *out, char *err, size_t errlen);
/* Frees the findings and zeroes the report. NULL-safe. */
void cl_audit_report_free(cl_audit_report *r);

/*
 * One chip's chain as the dashboard shows it, checked from the view
 * attestation_log alone (schema 0009), so that a chiploc_dashboard login
 * can run it: the attestations of the verifier that made the chip's newest
 * one, in round order, each rebuilt from its row as cl_audit_run rebuilds
 * it, its signature verified under that verifier's key, its stored hash
 * compared with the rebuilt one, its round_end with the signed round_end_ns,
 * and its prev_hash compared with the hash of the record before it (zeros
 * for the first). The walk stops counting at the first record that fails.
 * Not the audit: the evidence a record cites and the inputs it was drawn
 * from are not followed, and a version-1 record whose measurements are gone
 * fails as `measurement missing` even when retention removed them.
 */
typedef struct {
  char *verifier;     /* the newest attestation's verifier; NULL: never attested */
  int64_t records;    /* that verifier's attestations of the chip */
  int64_t verified;   /* how many pass, in round order, before the first that fails */
  int bad;            /* 1: a record fails; the fields below describe the first */
  int64_t bad_id;     /* its attestations.id */
  char bad_round_end[32]; /* its round_end, ISO 8601 UTC to the second */
  cl_audit_problem bad_problem; /* attestation signature, hash mismatch, derived column,
                                 * measurement missing, chain start or chain break */
} cl_audit_chain;

/*
 * Checks the chain of the chip with this serial into *out (free it with
 * cl_audit_chain_free). The connection must not be inside a transaction
 * (CL_EINVAL); the reads share one snapshot. A serial without attestations
 * (or without a chip) gives verifier NULL and records 0. Returns 0, CL_EPERM
 * (the role may not read attestation_log), CL_EDB or CL_ENOMEM with err set;
 * *out is then empty.
 */
int cl_audit_chip_chain(cl_store *s, const char *serial, cl_audit_chain *out, char *err,
                        size_t errlen);
void cl_audit_chain_free(cl_audit_chain *c);

/*
 * One chip's chain by one verifier, record by record, for a reader that
 * needs the records themselves (`chiploc attestation export`): the
 * attestations of the chip with this serial by the verifier with key
 * verifier_pk, in chain order (round_end_ns, then id) up to and including
 * round until_round_end_ns (INT64_MAX: all), each rebuilt from its row as
 * cl_audit_run rebuilds it, read from the tables (what chiploc_verifier,
 * chiploc_auditor and chiploc_admin may read) in one snapshot.
 *
 * A record is ok when it was rebuilt, its signature verifies under the
 * verifier's key, its stored hash is its hash, its round_end matches the
 * signed round_end_ns, and its prev_hash is the hash of the record before it
 * (32 zero bytes for the first). Each record is passed to fn in order until
 * one is not ok: that one is passed too (ok 0, problem: the first check
 * that failed), and the walk ends. Unlike the audit, nothing is stepped
 * over: a chain is only as good as its first bad record. A version-1 record
 * whose measurements are gone, retention included, cannot be rebuilt and
 * fails as `measurement missing`; the evidence and inputs a version-2
 * record cites are not followed (cl_audit_run does that).
 */
typedef struct {
  int64_t id;                /* attestations.id */
  uint32_t position;         /* 1-based place in the chain */
  int ok;
  cl_audit_problem problem;  /* when !ok: attestation signature, hash mismatch, derived
                              * column, measurement missing, chain start or chain break */
  cl_attestation at;         /* rebuilt from the row; its signature verified when ok */
  uint8_t hash[CL_HASH_LEN]; /* the stored hash (the record's hash when ok) */
  /* What the layout binds only by digest, as the row names it: the allowed
   * region codes (allowed_digest) and the keys of the excluded landmarks
   * (excluded_digest), in the row's order. */
  const char *const *allowed;
  size_t n_allowed;
  const uint8_t (*excluded)[CL_PK_LEN];
  size_t n_excluded;
} cl_audit_record;

/* Called per record; the record and what it points to are valid during the
 * call only. A non-zero return ends the walk and is returned by it. */
typedef int (*cl_audit_record_fn)(void *arg, const cl_audit_record *rec);

/*
 * Walks the chain (see above). The connection must not be inside a
 * transaction (CL_EINVAL). When the verifier is found, *verifier_name (if
 * verifier_name is not NULL) receives its name, malloc'd (free it; NULL
 * otherwise). Returns 0 (also when fn saw no record: the verifier never
 * attested the chip, or not by that round), CL_ENOTFOUND (no
 * chip with this serial, or no verifier with this key; err says which),
 * CL_EPERM (the role may not read the tables), CL_EDB, CL_ENOMEM, or the
 * first non-zero value of fn.
 */
int cl_audit_chain_walk(cl_store *s, const char *serial, const uint8_t verifier_pk[CL_PK_LEN],
                        int64_t until_round_end_ns, cl_audit_record_fn fn, void *arg,
                        char **verifier_name, char *err, size_t errlen);

/* The stable names printed by `chiploc audit`: "measurements",
 * "landmark_links", "attestations"; "signature", "attestation signature",
 * "hash mismatch", "measurement missing", "chain break", "chain start",
 * "derived column", "evidence", "input changed", "retired key". */
const char *cl_audit_table_name(cl_audit_table t);
const char *cl_audit_problem_name(cl_audit_problem p);

#endif
