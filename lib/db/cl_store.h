/*
 * PostgreSQL access for every chiploc component (blocking libpq; daemons call
 * it from a worker thread, never from the event loop). All SQL is
 * parameterised. Migrations are the numbered files of schema/, compiled into
 * the library at build time.
 */
#ifndef CL_STORE_H
#define CL_STORE_H

#include "cl_layout.h"
#include "cl_lmrecord.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cl_store cl_store;

/*
 * Connects with conninfo (key=value pairs or a postgresql:// URI). Unless
 * the conninfo sets them, the connection gets connect_timeout=10,
 * keepalives (idle 10 s, interval 5 s, count 3) and tcp_user_timeout=30000,
 * so that a database host that vanishes is noticed within about 30 s
 * (docs/CONFIG.md). Returns CL_OK; CL_EPERM for a configuration error that
 * retrying cannot fix: the conninfo does not parse, the server refused the
 * login (authentication failed, no pg_hba.conf entry, a role that does not
 * exist or may not log in, a password required and not given), the
 * database does not exist or the role may not connect to it; CL_EDB for an
 * outage worth retrying: no server answered (refused, unreachable, timed
 * out) or it turned the connection away for now (starting up, shutting
 * down, in recovery, too many clients); CL_ENOMEM. err names the problem
 * and, for CL_EPERM, what to change; it never contains the conninfo.
 */
int cl_store_connect(cl_store **out, const char *conninfo, char *err, size_t errlen);
void cl_store_destroy(cl_store **s);
/* 1 if the connection is usable, 0 if it was lost. */
int cl_store_ok(cl_store *s);
/* Tries PQreset; 0 on success, CL_EDB otherwise. */
int cl_store_reset(cl_store *s);
/*
 * Bounds every later statement of the session (0: no bound): the server
 * cancels one that runs longer than statement_ms or waits for a lock longer
 * than lock_ms (SQLSTATE 57014 / 55P03, an error like an outage's). For a
 * server that answers TCP but whose backend hangs, or a lock held by a
 * dead client's transaction: keepalives see neither. Not reapplied by
 * cl_store_reset: call it again after one. CL_OK or CL_EDB.
 */
int cl_store_set_timeouts(cl_store *s, uint32_t statement_ms, uint32_t lock_ms, char *err,
                          size_t errlen);

/*
 * Applies every migration not yet recorded in chiploc_schema_migrations, each
 * in its own transaction, in order; then makes sure measurement partitions
 * exist for the current and the next months. *applied receives how many
 * migrations ran (0 when the schema is current). Safe to run twice and from
 * two processes at once (advisory lock).
 */
int cl_store_migrate(cl_store *s, int *applied, char *err, size_t errlen);

/* CL_OK if no chip, landmark or verifier holds public key pk; else
 * CL_EEXIST with err naming the holder and that a new `what` ("chip",
 * "landmark", "verifier") needs a key of its own. One key is one identity:
 * the tables' unique constraints hold within each table only. */
int cl_store_key_free(cl_store *s, const uint8_t pk[CL_PK_LEN], const char *what, char *err,
                      size_t errlen);

/* Registers a landmark. CL_EEXIST, with err naming the holder, if the name
 * or key is taken (the key by a landmark, a chip or a verifier), CL_EINVAL
 * on coordinates out of range. */
int cl_store_landmark_add(cl_store *s, const char *name, const uint8_t pk[CL_PK_LEN], double lat,
                          double lon, int64_t *id, char *err, size_t errlen);
/* Binds the database login role `role` to the landmark named `name`: from
 * then on that role may write measurements and links of this landmark only
 * (schema 0004's guard), besides any other landmark it is bound to (the
 * old and new entries of a key rotation). CL_ENOTFOUND for an unknown
 * landmark. */
int cl_store_landmark_bind(cl_store *s, const char *name, const char *role, char *err,
                           size_t errlen);
/* What a database login can be bound to (schema 0004's guards): a landmark,
 * whose measurements and links it may then write, or a verifier, whose
 * attestations it may then write. */
typedef enum { CL_STORE_BIND_LANDMARK = 0, CL_STORE_BIND_VERIFIER } cl_store_binding;
/* Binds login `role` to the landmark or verifier named `name`.
 * CL_ENOTFOUND (no such entry or role), CL_EINVAL (an empty or group
 * role). cl_store_landmark_bind and cl_vstore_verifier_bind are this. */
int cl_store_bind(cl_store *s, cl_store_binding b, const char *name, const char *role, char *err,
                  size_t errlen);
/* CL_OK when this connection's login may write the rows of landmark or
 * verifier `id` (bound to it, a member of chiploc_admin or of the tables'
 * owner), else CL_EPERM with err naming the `chiploc ... bind` that fixes
 * it; other codes when the check itself fails. */
int cl_store_may_write(cl_store *s, cl_store_binding b, int64_t id, char *err, size_t errlen);
/* CL_OK when `role` exists, can log in and has no members; CL_ENOTFOUND,
 * or CL_EINVAL for a group role or one with members (its members could all
 * SET ROLE to it), with err set. */
int cl_store_check_login(cl_store *s, const char *role, char *err, size_t errlen);
/* Retires (revoke = 0) or revokes (revoke = 1) the landmark named `name`
 * with effect from `at` (a PostgreSQL timestamptz literal; NULL: now):
 * afterwards the verifier believes none of its rows measured after that
 * time, nor, when revoked, any received after it. The time only ever moves
 * earlier (a later one is ignored), and a revocation stays one; revoking a
 * retired landmark keeps the earlier time and makes it a revocation.
 * CL_ENOTFOUND, CL_EINVAL (a bad or infinite time). */
int cl_store_landmark_retire(cl_store *s, const char *name, const char *at, int revoke,
                             char *err, size_t errlen);
/* Whether this connection's login may write rows of landmark_id (a member
 * of chiploc_admin, the tables' owner, or the role bound to it). CL_OK, or
 * CL_EPERM with err naming the role and the `chiploc landmark bind` that
 * fixes it. */
int cl_store_landmark_may_write(cl_store *s, int64_t landmark_id, char *err, size_t errlen);
/* Looks a landmark up by key. CL_ENOTFOUND if it is not registered. */
int cl_store_landmark_find(cl_store *s, const uint8_t pk[CL_PK_LEN], int64_t *id, char *err,
                           size_t errlen);
/* A registered landmark: its id, name and declared position. */
typedef struct {
  int64_t id;
  char name[CL_LM_NAME_MAX + 1]; /* cut to CL_LM_NAME_MAX bytes */
  double lat, lon;
} cl_store_landmark;
/* The landmark registered with key pk. CL_ENOTFOUND if there is none,
 * CL_EPERM when this login may not read landmarks, CL_EDB. */
int cl_store_landmark_get(cl_store *s, const uint8_t pk[CL_PK_LEN], cl_store_landmark *out,
                          char *err, size_t errlen);
/*
 * Enrols a chip with its declared site. CL_EEXIST, with err naming the
 * holder and what to do, when the serial is enrolled already or the key
 * belongs to a chip, a landmark or a verifier (one key, one identity).
 * cl_store_landmark_add refuses a name or key the same way.
 */
int cl_store_chip_enroll(cl_store *s, const uint8_t pk[CL_PK_LEN], const char *serial,
                         const char *operator_name, double site_lat, double site_lon, int64_t *id,
                         char *err, size_t errlen);

/*
 * Deactivates (active = 0) or reactivates the chip with this serial. A
 * deactivation records its time and reason (may be NULL) in
 * chips.deactivated_at and deactivation_reason, and clears the chip's open
 * alerts (*alerts_cleared of them): the verifier, which attests active
 * chips only, would never clear them. A reactivation clears the time and
 * reason; the verifier raises alerts anew where they still hold. *changed
 * is 0 when the chip was in that state already (nothing is written: an
 * earlier deactivation keeps its time and reason). CL_ENOTFOUND for an
 * unknown serial. Landmarks drop an inactive chip at their next refresh of
 * the enrolled set and refuse its offers (REFUSE_INACTIVE).
 */
int cl_store_chip_set_active(cl_store *s, const char *serial, int active, const char *reason,
                             int *changed, int64_t *alerts_cleared, char *err, size_t errlen);

/* A probe target as landmarkd loads it (cl_lmrecord.h). */
typedef cl_lm_target cl_store_chip;

/* All registered landmarks as probe targets (is_landmark = 1, active = 1;
 * id is landmarks.id, name the landmark's name). *out is malloc'd. */
int cl_store_load_landmarks(cl_store *s, cl_store_chip **out, size_t *n, char *err,
                            size_t errlen);

/* All enrolled chips, deactivated ones with active = 0, each named by its
 * serial (a name longer than CL_LM_NAME_MAX is left empty). *out is
 * malloc'd (caller frees), *n its length. */
int cl_store_load_chips(cl_store *s, cl_store_chip **out, size_t *n, char *err, size_t errlen);

/* A row of measurements or landmark_links: a landmark's burst record
 * (cl_lmrecord.h). */
typedef cl_lm_record cl_store_row;

/* Inserts rows in one transaction with COPY. All or nothing: on error nothing
 * was written and the caller keeps the rows. Every row must carry the public
 * key of landmark_id. Errors that retrying cannot fix: CL_EINVAL (a row fails
 * the schema's checks or carries another landmark's key), CL_ENOTFOUND (an
 * unknown chip or landmark id), CL_EEXIST (a row's landmark, nonce and time
 * are stored already, e.g. a batch replayed after its commit was not
 * acknowledged), CL_EPERM (missing grant).
 * CL_EDB otherwise, a lost connection included: retry later. */
int cl_store_insert_measurements(cl_store *s, int64_t landmark_id, const cl_store_row *rows,
                                 size_t n, char *err, size_t errlen);

/* Same contract for rows whose chip_id is a peer landmark's id (is_link):
 * they go to landmark_links, landmark_id probing, chip_id probed. */
int cl_store_insert_links(cl_store *s, int64_t landmark_id, const cl_store_row *rows, size_t n,
                          char *err, size_t errlen);

/* ---- transactions -------------------------------------------------------- */

/* Opens a transaction: the calls that follow, up to cl_store_commit, take
 * effect together or not at all. CL_EDB (or CL_EINVAL if one is open). */
int cl_store_begin(cl_store *s, char *err, size_t errlen);
/* Commits the open transaction. CL_EDB if it failed (a statement in it
 * failed, or the connection was lost): then nothing of it was stored. */
int cl_store_commit(cl_store *s, char *err, size_t errlen);
/* Abandons the open or failed transaction, if any. */
void cl_store_rollback(cl_store *s);

/* ---- regions ------------------------------------------------------------- */

/* Inserts region `code`, or replaces its geometry if the code exists (the
 * name is kept; imported_at is renewed). geometry_json is a GeoJSON
 * MultiPolygon geometry (cl_region_to_geojson makes one). CL_EINVAL for an
 * empty code, a vertex count below 3 or above 2^31-1, or a geometry the
 * schema refuses (not JSON, not a MultiPolygon). */
int cl_store_region_put(cl_store *s, const char *code, const char *geometry_json,
                        size_t vertex_count, char *err, size_t errlen);
/* Allows chip chip_id to run in region `code` (nothing happens if it is
 * allowed already). CL_ENOTFOUND, with err naming it, if the region or the
 * chip does not exist. */
int cl_store_chip_allow(cl_store *s, int64_t chip_id, const char *code, char *err,
                        size_t errlen);

/* ---- reading records back ------------------------------------------------ */

/* libpq's result type (PGresult is a typedef of it), declared here so that
 * this header does not need libpq-fe.h. */
struct pg_result;

/* The record columns of a measurements or landmark_links row (schema 0005),
 * in the order cl_store_cols_at assumes. t is the table's alias in the
 * query, as a string literal: CL_STORE_RECORD_COLUMNS("m"). */
#define CL_STORE_RECORD_COLUMNS(t)                                                          \
  t ".protocol, " t ".suite, " t ".handshake, " t ".probes, " t ".transcript_sig, " t      \
  ".landmark_sig, " t ".rtt_ns, " t ".probe_count, " t ".probes_sent, " t ".measured_at_ns"
#define CL_STORE_RECORD_NCOLS 10

/*
 * Where the record columns are in a result (column numbers). protocol may
 * be -1 when the query selects protocol 2 rows only; every other column
 * must be present. The nonce and seq columns are not read: they repeat the
 * fastest probe's (cl_measurement_fastest), which the caller may compare.
 */
typedef struct {
  int protocol;       /* smallint; when present it must be 2 */
  int suite;          /* integer */
  int handshake;      /* bytea, CL_HS_BLOB_LEN */
  int probes;         /* bytea, probe_count * CL_RECORD_ENTRY_LEN */
  int transcript_sig; /* bytea, CL_SIG_LEN */
  int landmark_sig;   /* bytea, CL_SIG_LEN: the record signature */
  int rtt_ns;         /* bigint */
  int probe_count;    /* integer: the number of entries in probes */
  int probes_sent;    /* integer */
  int measured_at_ns; /* bigint */
} cl_store_cols;

/* The columns of CL_STORE_RECORD_COLUMNS selected from column `base` on. */
cl_store_cols cl_store_cols_at(int base);

/*
 * Rebuilds the signed record of row `row` of a result in BINARY format
 * (PQexecParams with resultFormat 1): the suite, the session fields of the
 * handshake blob, the entries of the probes blob, the transcript and record
 * signatures, rtt_ns, probes_sent and measured_at_ns; the two identities
 * are the keys the caller resolved from the row's landmark and chip (or
 * peer landmark) ids. No signature is checked and cl_measurement_check is
 * not run: that is the reader's judgement. CL_EMALFORMED, err naming the
 * column and what is wrong with it, for a NULL, a text-format or wrongly
 * sized field (probes must be probe_count * CL_RECORD_ENTRY_LEN bytes), a
 * negative integer, a probe_count outside 1..CL_MAX_BURST or a protocol
 * other than 2; m is then unspecified. CL_EINVAL for a NULL argument, a row
 * or a column number outside the result.
 */
int cl_store_row_measurement(const struct pg_result *r, int row, const cl_store_cols *cols,
                             const uint8_t landmark_pk[CL_PK_LEN], const uint8_t chip_pk[CL_PK_LEN],
                             cl_measurement *m, char *err, size_t errlen);

/* ---- for other store modules of the library ------------------------------ */

/* The libpq connection, for lib modules that keep their own SQL (the
 * verifier's and the audit's queries); never for code outside lib/. The
 * pointer is a PGconn * (declared void * to keep libpq out of this header). */
void *cl_store_pgconn(cl_store *s);

#endif
