/*
 * The audit (see cl_audit.h): four streamed reads of one snapshot.
 *
 *  1. measurements: each protocol 2 row is rebuilt into a cl_measurement
 *     (cl_store_row_measurement, the verifier's reader too) with the
 *     landmark's and the chip's enrolled keys and re-verified completely,
 *     then judged against its landmark's lifecycle (retired_at,
 *     retire_kind); protocol 1 rows are counted as legacy;
 *  2. landmark_links: the same, the peer landmark's key in the chip's part;
 *  3. regions: the geometry digest (cl_region_digest) of every region that a
 *     version-2 attestation names, computed once into a small sorted table,
 *     and the ranges of measurement_retention that excuse, merged into a
 *     short sorted list (its table holds a row per removed month);
 *  4. attestations, in (chip, verifier, round) order: each row is rebuilt
 *     into a cl_attestation (keys through chips, verifiers and landmarks;
 *     version 1: the measurements digest from the rows measurement_ids
 *     names; version 2: from the row's own measurement_sigs and digests),
 *     its signature and stored hash are checked, and its prev_hash is
 *     compared with the hash of the record before it in the same chain.
 *
 * Evidence of a version-2 attestation. The query of step 4 joins each
 * attestation with the candidate rows of every signature it cites: the
 * measurement rows of its chip, in its window, carrying that landmark_sig.
 * It yields one result row per (attestation, candidate), or one row without
 * a candidate, ordered so that an attestation's rows are consecutive. The
 * first row of an attestation runs the record's own checks; each candidate
 * row is then verified again (the signatures and the landmark's lifecycle,
 * as in step 1) until one per cited signature is found usable; the next
 * attestation's first row (or the end of the stream) closes the group and
 * reports missing evidence (unless retention removed it) and a changed
 * landmarks digest. Re-verifying the candidates, rather than remembering
 * which rows step 1 refused, keeps memory independent of how many rows fail
 * (an attacker who inserts many forged copies of a cited signature costs
 * signature checks, not memory, and cannot push the genuine row out of a
 * bounded list); the price is one more signature check per cited row, a few
 * per measurement.
 *
 * Rows arrive in binary format in single-row mode, so no table is ever held
 * in memory. Each row yields at most one content finding (the first check
 * that fails); the chain check of an attestation is separate, because it
 * concerns the link between two rows, and so are the evidence and input
 * checks of a version-2 attestation, which concern other rows.
 */
#include "cl_audit.h"
#include "cl_attest.h"
#include "cl_err.h"
#include "cl_evidence.h"
#include "cl_layout.h"
#include "cl_region.h"
#include "cl_region_geojson.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_UNIX_US 946684800000000LL
/* Whole metres per second of c, for bound_m (docs/SCHEMA.md: c * rtt / 2). */
#define C_M_PER_S 299792458ULL

_Static_assert(CL_REGION_DIGEST_LEN == CL_HASH_LEN, "a geometry digest is an attestation hash");

/* The geometry digest of one region a version-2 attestation names. */
typedef struct {
  char *code;
  int ok; /* the region parsed and digest holds its geometry digest */
  uint8_t digest[CL_HASH_LEN];
} region_digest;

/* The attestation whose result rows are being read (step 4): what its
 * first row established, and per cited signature what the candidate rows
 * showed so far. The arrays hold CL_AUDIT_MAX_IDS entries. */
typedef struct {
  int open;          /* a group is being read */
  int64_t id;
  int evidence;      /* version 2 and verified: follow its evidence */
  size_t n_cited;
  uint8_t landmarks_digest[CL_HASH_LEN];
  uint8_t *usable;   /* per cited signature: a usable row was found */
  int64_t *fail_ref; /* per cited signature: the first refused row's id */
  cl_attest_landmark *lms; /* per cited signature: the usable row's landmark */
  int64_t lo_ns, hi_ns;    /* the window (lo_ns, hi_ns] */
  int legacy;              /* a usable row is a protocol 1 row */
  uint8_t *retired;        /* per cited signature: measurement_retention_cited records it */
} att_group;

/* A range of measured_at that retention removed, [lo, hi) in PostgreSQL
 * microseconds (since 2000). */
typedef struct {
  int64_t lo, hi;
} retired_range;

typedef struct {
  PGconn *c;
  cl_audit_report *rep;
  char *err;
  size_t errlen;
  /* The previous attestation in stream order, for the chain check. */
  int have_prev;
  int64_t prev_id, prev_chip, prev_verifier;
  uint8_t prev_stored[CL_HASH_LEN];
  int prev_rebuilt; /* prev_rebuilt_hash is valid */
  uint8_t prev_rebuilt_hash[CL_HASH_LEN];
  int prev_verified; /* the previous record's signature verified */
  /* The chain's last record whose signature verified, if any. */
  int have_good;
  uint8_t good_hash[CL_HASH_LEN];
  /* Step 3's table, sorted by code (strcmp). */
  region_digest *regions;
  size_t n_regions, cap_regions;
  /* Step 3's ranges of measurement_retention in force, merged, by lo. */
  retired_range *retired;
  size_t n_retired, cap_retired;
  att_group g;
  int pools_counted; /* the pool gaps' counts are in rep */
} audit_ctx;

/* Writes "what: server message" (one line) into err and returns the CL_*
 * code for the failed result r (which may be NULL). Does not clear r. */
static int db_fail(audit_ctx *a, const PGresult *r, const char *what) {
  const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  char buf[512];
  snprintf(buf, sizeof buf, "%s", msg ? msg : PQerrorMessage(a->c));
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\t') *p = ' ';
  size_t n = strlen(buf);
  while (n > 0 && buf[n - 1] == ' ') buf[--n] = '\0';
  cl_err_set(a->err, a->errlen, "%s: %s", what, buf[0] ? buf : "unexpected result");
  const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  return st && strcmp(st, "42501") == 0 ? CL_EPERM : CL_EDB;
}

/* ---- findings ------------------------------------------------------------ */

const char *cl_audit_table_name(cl_audit_table t) {
  switch (t) {
  case CL_AUDIT_MEASUREMENTS: return "measurements";
  case CL_AUDIT_LANDMARK_LINKS: return "landmark_links";
  case CL_AUDIT_ATTESTATIONS: return "attestations";
  }
  return "?";
}

const char *cl_audit_problem_name(cl_audit_problem p) {
  switch (p) {
  case CL_AUDIT_SIGNATURE: return "signature";
  case CL_AUDIT_ATTESTATION_SIGNATURE: return "attestation signature";
  case CL_AUDIT_HASH_MISMATCH: return "hash mismatch";
  case CL_AUDIT_MEASUREMENT_MISSING: return "measurement missing";
  case CL_AUDIT_CHAIN_BREAK: return "chain break";
  case CL_AUDIT_CHAIN_START: return "chain start";
  case CL_AUDIT_DERIVED_COLUMN: return "derived column";
  case CL_AUDIT_EVIDENCE: return "evidence";
  case CL_AUDIT_INPUT_CHANGED: return "input changed";
  case CL_AUDIT_RETIRED_KEY: return "retired key";
  }
  return "?";
}

void cl_audit_report_free(cl_audit_report *r) {
  if (!r) return;
  free(r->findings);
  for (size_t i = 0; i < r->n_gaps; i++) free(r->gaps[i].serial);
  memset(r, 0, sizeof *r);
}

/* Counts a finding and keeps it if there is room; CL_ENOMEM only when the
 * list cannot grow below its cap. */
static int add_finding(audit_ctx *a, cl_audit_table t, int64_t id, cl_audit_problem p,
                       int64_t ref) {
  cl_audit_report *r = a->rep;
  r->problems++;
  if (r->n_findings >= CL_AUDIT_MAX_FINDINGS) return CL_OK;
  if (r->n_findings == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    if (cap > CL_AUDIT_MAX_FINDINGS) cap = CL_AUDIT_MAX_FINDINGS;
    cl_audit_finding *f = realloc(r->findings, cap * sizeof *f);
    if (!f) {
      cl_err_set(a->err, a->errlen, "out of memory for %zu findings", cap);
      return CL_ENOMEM;
    }
    r->findings = f;
    r->cap = cap;
  }
  r->findings[r->n_findings++] = (cl_audit_finding){t, id, p, ref};
  return CL_OK;
}

static int cmp_finding(const void *x, const void *y) {
  const cl_audit_finding *a = x, *b = y;
  if (a->table != b->table) return a->table < b->table ? -1 : 1;
  if (a->id != b->id) return a->id < b->id ? -1 : 1;
  if (a->problem != b->problem) return a->problem < b->problem ? -1 : 1;
  if (a->ref != b->ref) return a->ref < b->ref ? -1 : 1;
  return 0;
}

/* ---- binary columns ------------------------------------------------------- */

/* Row 0 of a single-row result: binary integers are big-endian. A NULL or a
 * value of an unexpected width reads as 0 with *ok cleared. */
static int64_t col_int(const PGresult *r, int col, int width, int *ok) {
  if (PQgetisnull(r, 0, col) || PQgetlength(r, 0, col) != width) {
    *ok = 0;
    return 0;
  }
  const uint8_t *p = (const uint8_t *)PQgetvalue(r, 0, col);
  switch (width) {
  case 2: return (int16_t)(uint16_t)((p[0] << 8) | p[1]);
  case 4: return (int32_t)cl_get_be32(p);
  default: return (int64_t)cl_get_be64(p);
  }
}

/* Copies a bytea of exactly len bytes; 0 if it is NULL or of another length. */
static int col_bytes(const PGresult *r, int col, uint8_t *out, size_t len) {
  if (PQgetisnull(r, 0, col) || (size_t)PQgetlength(r, 0, col) != len) return 0;
  memcpy(out, PQgetvalue(r, 0, col), len);
  return 1;
}

/* A binary float8: the IEEE-754 bits, big-endian. 0 if NULL or malformed. */
static int col_double(const PGresult *r, int col, double *out) {
  if (PQgetisnull(r, 0, col) || PQgetlength(r, 0, col) != 8) return 0;
  uint64_t bits = cl_get_be64((const uint8_t *)PQgetvalue(r, 0, col));
  memcpy(out, &bits, sizeof *out);
  return 1;
}

/* A binary bool: 1 for true, 0 for false or NULL. */
static int col_bool(const PGresult *r, int col) {
  return !PQgetisnull(r, 0, col) && PQgetlength(r, 0, col) == 1 && PQgetvalue(r, 0, col)[0] == 1;
}

/*
 * Reads a one-dimensional array in PostgreSQL's binary format: ndim, a
 * has-NULL flag, the element type, then per dimension its length and lower
 * bound, then each element as a 4-byte length (-1 for NULL) and its bytes.
 * An empty array has ndim 0.
 */
typedef struct {
  const uint8_t *p;
  size_t len, off;
  int32_t n, i;
} array_iter;

/* CL_OK (it->n elements follow) or CL_EMALFORMED. */
static int array_open(array_iter *it, const uint8_t *p, size_t len) {
  memset(it, 0, sizeof *it);
  if (len < 12) return CL_EMALFORMED;
  int32_t ndim = (int32_t)cl_get_be32(p);
  it->p = p;
  it->len = len;
  if (ndim == 0) return CL_OK;
  if (ndim != 1 || len < 20) return CL_EMALFORMED;
  int32_t n = (int32_t)cl_get_be32(p + 12);
  /* Every element takes at least its 4-byte length word. */
  if (n < 0 || (size_t)n > (len - 20) / 4) return CL_EMALFORMED;
  it->n = n;
  it->off = 20;
  return CL_OK;
}

/* The next element: CL_OK with *el (NULL for an SQL NULL) and *ellen, or
 * CL_EMALFORMED. Call only it->n times. */
static int array_next(array_iter *it, const uint8_t **el, size_t *ellen) {
  if (it->i >= it->n || it->len - it->off < 4) return CL_EMALFORMED;
  int32_t n = (int32_t)cl_get_be32(it->p + it->off);
  it->off += 4;
  it->i++;
  if (n == -1) {
    *el = NULL;
    *ellen = 0;
    return CL_OK;
  }
  if (n < 0 || (size_t)n > it->len - it->off) return CL_EMALFORMED;
  *el = it->p + it->off;
  *ellen = (size_t)n;
  it->off += (size_t)n;
  return CL_OK;
}

/* ---- streaming ------------------------------------------------------------ */

typedef int (*row_fn)(audit_ctx *a, const PGresult *r);

/* Consumes whatever the connection still has to deliver for the current
 * query, asking the server to stop first. */
static void abandon_query(audit_ctx *a) {
  PGcancel *cancel = PQgetCancel(a->c);
  if (cancel) {
    char buf[256];
    PQcancel(cancel, buf, sizeof buf);
    PQfreeCancel(cancel);
  }
  PGresult *r;
  while ((r = PQgetResult(a->c)) != NULL) PQclear(r);
}

/*
 * Runs sql (params as text, results binary) in single-row mode and calls fn
 * for each row with a result of exactly one row. Returns 0, the first
 * non-zero code of fn, or the database error (with err set).
 */
static int stream(audit_ctx *a, const char *sql, int nparams, const char *const *params,
                  const char *what, row_fn fn) {
  if (!PQsendQueryParams(a->c, sql, nparams, NULL, params, NULL, NULL, 1))
    return db_fail(a, NULL, what);
  if (!PQsetSingleRowMode(a->c)) {
    abandon_query(a);
    cl_err_set(a->err, a->errlen, "%s: single-row mode refused", what);
    return CL_EDB;
  }
  int rc = CL_OK;
  PGresult *r;
  while ((r = PQgetResult(a->c)) != NULL) {
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_SINGLE_TUPLE) {
      rc = fn(a, r);
      PQclear(r);
      if (rc != CL_OK) {
        abandon_query(a);
        return rc;
      }
    } else if (st == PGRES_TUPLES_OK) {
      PQclear(r); /* the end of the rows */
    } else {
      rc = db_fail(a, r, what);
      PQclear(r);
      abandon_query(a);
      return rc;
    }
  }
  return CL_OK;
}

/* Runs a statement without parameters or rows (BEGIN, COMMIT). */
static int exec_cmd(audit_ctx *a, const char *sql, const char *what) {
  PGresult *r = PQexecParams(a->c, sql, 0, NULL, NULL, NULL, NULL, 0);
  int rc = CL_OK;
  if (PQresultStatus(r) != PGRES_COMMAND_OK) rc = db_fail(a, r, what);
  PQclear(r);
  return rc;
}

/* ---- derived columns ------------------------------------------------------ */

/* A timestamptz holds microseconds; it must be the signed nanoseconds cut
 * or rounded to the microsecond. */
static int time_matches(int64_t pg_us, int64_t unix_ns) {
  int64_t floor_us = unix_ns / 1000 - (unix_ns % 1000 < 0);
  int64_t ceil_us = floor_us + (unix_ns % 1000 != 0);
  if (pg_us > INT64_MAX - PG_EPOCH_UNIX_US) return 0;
  int64_t us = pg_us + PG_EPOCH_UNIX_US;
  return us == floor_us || us == ceil_us;
}

/* A timestamptz (microseconds since 2000) as microseconds since 1970;
 * 'infinity' and anything beyond int64 read as INT64_MAX. */
static int64_t unix_us(int64_t pg_us) {
  if (pg_us > INT64_MAX - PG_EPOCH_UNIX_US) return INT64_MAX;
  return pg_us + PG_EPOCH_UNIX_US;
}

/* bound_m is c * rtt / 2 rounded up; a metre either way is tolerated, for
 * writers that round differently. Exact integer arithmetic. */
static int bound_matches(int64_t bound_m, uint64_t rtt_ns) {
  uint64_t q = rtt_ns / 2000000000u, rem = rtt_ns % 2000000000u;
  if (q > UINT64_MAX / C_M_PER_S / 2) return 0; /* no signed bound is this large */
  uint64_t want = q * C_M_PER_S + (rem * C_M_PER_S + 1999999999u) / 2000000000u;
  if (bound_m < 0) return 0;
  uint64_t got = (uint64_t)bound_m;
  return got + 1 >= want && got <= want + 1;
}

/* ---- passes 1 and 2: measurements and landmark links ------------------------ */

/*
 * The columns of a signed row, from a base column on: the same block in the
 * measurement and link queries and, for the candidate rows of an
 * attestation's evidence, in the attestation query. The record itself is
 * the block CL_STORE_RECORD_COLUMNS at S_RECORD, which
 * cl_store_row_measurement reads (the verifier reads it with the same
 * function); its first column is the row's protocol.
 */
enum {
  S_ID = 0,       /* bigint */
  S_SIGNER_PK,    /* the signing landmark's key */
  S_PEER_PK,      /* the chip's key (a link: the probed landmark's) */
  S_NONCE,        /* the fastest probe's nonce and seq, repeated (unsigned) */
  S_SEQ,
  S_BOUND_M,
  S_MEASURED_AT,  /* timestamptz */
  S_RETIRED_AT,   /* the signer's retired_at: timestamptz or NULL */
  S_REVOKED,      /* bool: retire_kind = 'revoked' */
  S_INSERTED_AT,  /* timestamptz */
  S_SIGNER_ID,    /* bigint */
  S_RECORD,       /* CL_STORE_RECORD_COLUMNS, protocol first */
  S_NCOLS = S_RECORD + CL_STORE_RECORD_NCOLS,
};

#define SIGNED_COLUMNS(t, signer, peer_pk)                                                      \
  t ".id, " signer ".public_key, " peer_pk ", " t ".nonce, " t ".seq, " t ".bound_m, " t         \
  ".measured_at, " signer ".retired_at, " signer ".retire_kind = 'revoked', " t                 \
  ".inserted_at, " signer ".id AS signer_id, " CL_STORE_RECORD_COLUMNS(t)

static const char SQL_MEASUREMENTS[] =
    "SELECT " SIGNED_COLUMNS("m", "l", "c.public_key")
    " FROM measurements m LEFT JOIN landmarks l ON l.id = m.landmark_id"
    " LEFT JOIN chips c ON c.id = m.chip_id";

static const char SQL_LINKS[] =
    "SELECT " SIGNED_COLUMNS("k", "lf", "lt.public_key")
    " FROM landmark_links k LEFT JOIN landmarks lf ON lf.id = k.from_landmark_id"
    " LEFT JOIN landmarks lt ON lt.id = k.to_landmark_id";

/* The protocol of rows this version neither makes nor verifies. */
#define LEGACY_PROTOCOL 1

/* A signed row read from its block of columns. */
typedef struct {
  int64_t id;
  int has_id;
  int legacy;            /* a protocol 1 row: only m.hs.landmark and m.measured_unix_ns read */
  int complete;          /* every signed column present, of its size and range */
  cl_measurement m;      /* the record, keys from the rows the row names */
  /* The derived columns (measured_at: PostgreSQL us; seq and nonce: the
   * fastest probe's, repeated for the unique keys). */
  int64_t bound_m, measured_at, seq;
  uint8_t nonce[CL_NONCE_LEN];
  cl_ev_key_state key;   /* the signer's lifecycle, as the verifier reads it */
  uint64_t inserted_ns;  /* the database's insert time */
} signed_row;

/* A timestamptz as unix ns the way the verifier reads it (extract(epoch) *
 * 1e9): at or before 1970 reads as `at_or_before_epoch`, beyond 2262 as
 * UINT64_MAX. */
static uint64_t pg_time_ns(int64_t pg_us, uint64_t at_or_before_epoch) {
  int64_t us = unix_us(pg_us);
  if (us <= 0) return at_or_before_epoch;
  if ((uint64_t)us > UINT64_MAX / 1000u) return UINT64_MAX;
  return (uint64_t)us * 1000u;
}

/* Reads the signed-row block that starts at column base. A protocol 1 row
 * is marked legacy with its signer's key and its measured_at_ns, all that
 * the evidence of an attestation needs of it; nothing of it is verified. */
static void read_signed_row(const PGresult *r, int base, signed_row *row) {
  memset(row, 0, sizeof *row);
  int ok = 1;
  row->id = col_int(r, base + S_ID, 8, &ok);
  row->has_id = ok;
  const cl_store_cols cols = cl_store_cols_at(base + S_RECORD);
  cl_measurement *m = &row->m;
  uint8_t signer[CL_PK_LEN] = {0}, peer[CL_PK_LEN] = {0};
  int keys = col_bytes(r, base + S_SIGNER_PK, signer, CL_PK_LEN) &
             col_bytes(r, base + S_PEER_PK, peer, CL_PK_LEN);
  ok = 1;
  if (col_int(r, cols.protocol, 2, &ok) == LEGACY_PROTOCOL && ok) {
    row->legacy = 1;
    int64_t measured_ns = col_int(r, cols.measured_at_ns, 8, &ok);
    row->complete = keys && ok && measured_ns >= 0;
    memcpy(m->hs.landmark, signer, CL_PK_LEN);
    m->measured_unix_ns = (uint64_t)measured_ns;
  } else {
    /* Anything but a whole protocol 2 record (another protocol, a column
     * NULL or of the wrong size, a count the entries do not match) cannot
     * be signed data: cl_store_row_measurement refuses it. */
    char why[160];
    int record = keys && cl_store_row_measurement(r, 0, &cols, signer, peer, m, why,
                                                  sizeof why) == CL_OK;
    ok = 1;
    row->seq = col_int(r, base + S_SEQ, 8, &ok);
    row->bound_m = col_int(r, base + S_BOUND_M, 8, &ok);
    row->measured_at = col_int(r, base + S_MEASURED_AT, 8, &ok);
    int nonce = col_bytes(r, base + S_NONCE, row->nonce, CL_NONCE_LEN);
    row->complete = record && nonce && ok;
  }
  /* The signer's lifecycle (schema 0004, PROTOCOL.md §11). A retirement
   * time that cannot be read counts as a revocation at the epoch: the key
   * is not believed. */
  if (!PQgetisnull(r, 0, base + S_RETIRED_AT)) {
    int rok = 1;
    int64_t retired = col_int(r, base + S_RETIRED_AT, 8, &rok);
    row->key.retired_ns = rok ? pg_time_ns(retired, 1) : 1;
    row->key.revoked = !rok || col_bool(r, base + S_REVOKED);
  }
  int iok = 1;
  int64_t inserted = col_int(r, base + S_INSERTED_AT, 8, &iok);
  row->inserted_ns = iok ? pg_time_ns(inserted, 0) : UINT64_MAX;
}

/* 1 if the signer's key counted for the row: checks 2 and 3 of
 * PROTOCOL.md §11 (not measured after the landmark's retirement, not
 * received after its revocation), as cl_evidence_judge applies them. */
static int key_in_force(const signed_row *row) {
  return cl_ev_key_check(&row->key, row->m.measured_unix_ns, row->inserted_ns) == CL_EV_OK;
}

/* How a row of measurements or landmark_links fares, best last. */
typedef enum {
  ROW_BAD_SIGNATURE = 0, /* a key or column missing, inconsistent, or a signature fails */
  ROW_RETIRED,           /* signed, but the signer's key no longer counted */
  ROW_DERIVED,           /* signed and in force; an unsigned column disagrees */
  ROW_OK,
} row_state;

/* Passes 1 and 2, for a protocol 2 row: the whole record
 * (cl_measurement_verify: its consistency, the landmark's record
 * signature, the chip's transcript signature and both handshake
 * signatures), its signer's lifecycle, its derived columns (measured_at,
 * bound_m, and the nonce and seq of its fastest probe), in that order. */
static row_state judge_stored_row(const signed_row *row) {
  if (!row->complete || cl_measurement_verify(&row->m) != CL_OK) return ROW_BAD_SIGNATURE;
  if (!key_in_force(row)) return ROW_RETIRED;
  const cl_probe_entry *fastest = &row->m.probes[cl_measurement_fastest(&row->m)];
  if (!time_matches(row->measured_at, (int64_t)row->m.measured_unix_ns) ||
      !bound_matches(row->bound_m, row->m.rtt_ns) || row->seq < 0 ||
      (uint64_t)row->seq != fastest->seq ||
      memcmp(row->nonce, fastest->nonce, CL_NONCE_LEN) != 0)
    return ROW_DERIVED;
  return ROW_OK;
}

/* Evidence: 1 if the verifier would have believed the row, by exactly its
 * own rule (cl_evidence_judge, PROTOCOL.md §11: not dated after its insert
 * time, key in force, a consistent record, record and transcript
 * signatures). The handshake signatures are not part of the rule (the
 * transcript signature covers the session id): a row whose handshake
 * signature fails is still reported as `signature` by pass 1, but the
 * attestation that used it followed the rule and is not `evidence`.
 * Derived columns do not matter: nothing signed differs. */
static int believable(const signed_row *row) {
  return row->complete && !row->legacy &&
         cl_evidence_judge(NULL, &row->m, &row->key, row->inserted_ns) == CL_EV_OK;
}

/* A protocol 1 row cited as evidence: its signatures cannot be checked by
 * this version, but the checks of the rule that need none still apply
 * (cl_ev_time_check: not dated after its insert time, key in force). */
static int legacy_believable(const signed_row *row) {
  return row->complete && row->legacy &&
         cl_ev_time_check(&row->key, row->m.measured_unix_ns, row->inserted_ns) == CL_EV_OK;
}

/* Checks one measurement-shaped row of `table`; protocol 1 rows are only
 * counted. */
static int check_signed_row(audit_ctx *a, const PGresult *r, cl_audit_table table) {
  signed_row row;
  read_signed_row(r, 0, &row);
  if (!row.has_id) {
    cl_err_set(a->err, a->errlen, "%s: a row without an id", cl_audit_table_name(table));
    return CL_EDB;
  }
  int links = table == CL_AUDIT_LANDMARK_LINKS;
  if (row.legacy) {
    if (links)
      a->rep->legacy_links++;
    else
      a->rep->legacy_measurements++;
    return CL_OK;
  }
  int64_t id = row.id;
  row_state st = judge_stored_row(&row);
  if (links)
    a->rep->links++;
  else
    a->rep->measurements++;
  int ok = 1;
  switch (st) {
  case ROW_BAD_SIGNATURE: return add_finding(a, table, id, CL_AUDIT_SIGNATURE, 0);
  case ROW_RETIRED:
    return add_finding(a, table, id, CL_AUDIT_RETIRED_KEY, col_int(r, S_SIGNER_ID, 8, &ok));
  case ROW_DERIVED: return add_finding(a, table, id, CL_AUDIT_DERIVED_COLUMN, 0);
  case ROW_OK: break;
  }
  return CL_OK;
}

static int measurement_row(audit_ctx *a, const PGresult *r) {
  return check_signed_row(a, r, CL_AUDIT_MEASUREMENTS);
}

static int link_row(audit_ctx *a, const PGresult *r) {
  return check_signed_row(a, r, CL_AUDIT_LANDMARK_LINKS);
}

/* ---- pass 3: the geometry of the regions version-2 attestations name ------- */

/* Every region some version-2 attestation names, in code order. */
static const char SQL_REGIONS[] =
    "SELECT r.code, r.geojson::text FROM regions r WHERE r.code IN"
    " (SELECT unnest(a.allowed_regions) FROM attestations a WHERE a.layout_version = 2)"
    " ORDER BY r.code COLLATE \"C\"";

/* Parses one region row the way the verifier loads it (the GeoJSON region
 * parser, the geometry alone) and keeps its geometry digest. A geometry the
 * parser refuses is kept as not ok: no attestation can have been drawn from
 * it. */
static int region_row(audit_ctx *a, const PGresult *r) {
  if (PQgetisnull(r, 0, 0) || PQgetisnull(r, 0, 1)) {
    cl_err_set(a->err, a->errlen, "regions: a row without its code or geometry");
    return CL_EDB;
  }
  if (a->n_regions == a->cap_regions) {
    size_t cap = a->cap_regions ? a->cap_regions * 2 : 64;
    region_digest *nr = realloc(a->regions, cap * sizeof *nr);
    if (!nr) {
      cl_err_set(a->err, a->errlen, "out of memory for %zu region digests", cap);
      return CL_ENOMEM;
    }
    a->regions = nr;
    a->cap_regions = cap;
  }
  region_digest *d = &a->regions[a->n_regions];
  memset(d, 0, sizeof *d);
  size_t code_len = (size_t)PQgetlength(r, 0, 0);
  if (!(d->code = malloc(code_len + 1))) {
    cl_err_set(a->err, a->errlen, "out of memory for a region code");
    return CL_ENOMEM;
  }
  memcpy(d->code, PQgetvalue(r, 0, 0), code_len);
  d->code[code_len] = '\0';
  a->n_regions++;
  cl_region_set set;
  char perr[256] = "";
  int rc = cl_region_set_parse_geojson(&set, PQgetvalue(r, 0, 1), (size_t)PQgetlength(r, 0, 1),
                                       "code", perr, sizeof perr);
  if (rc == CL_ENOMEM) {
    cl_err_set(a->err, a->errlen, "region %.40s: out of memory", d->code);
    return rc;
  }
  if (rc == CL_OK && set.n == 1 && cl_region_digest(set.regions[0], d->digest) == CL_OK) d->ok = 1;
  cl_region_set_free(&set);
  return CL_OK;
}

static int cmp_region_digest(const void *x, const void *y) {
  return strcmp(((const region_digest *)x)->code, ((const region_digest *)y)->code);
}

/* The digest of the region with this code, or NULL (no such row, or its
 * geometry does not parse). */
static const region_digest *find_region(const audit_ctx *a, const char *code) {
  if (a->n_regions == 0) return NULL;
  region_digest key = {.code = (char *)code};
  const region_digest *d =
      bsearch(&key, a->regions, a->n_regions, sizeof *a->regions, cmp_region_digest);
  return d && d->ok ? d : NULL;
}

static void free_regions(audit_ctx *a) {
  for (size_t i = 0; i < a->n_regions; i++) free(a->regions[i].code);
  free(a->regions);
  a->regions = NULL;
  a->n_regions = a->cap_regions = 0;
}

/* ---- pass 3: the ranges retention removed ---------------------------------------- */

/*
 * True when an attached partition of measurements (not the default one)
 * overlaps the range of the measurement_retention row `r`: the range was
 * attached back (an archive restored) or never removed, its rows are live
 * and checked as such, and it excuses nothing. A bound that is not a
 * timestamp (MINVALUE, MAXVALUE) reaches without end.
 */
#define RETENTION_COVERED_AGAIN(r)                                                              \
  "EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid"                   \
  " CROSS JOIN LATERAL pg_get_expr(p.relpartbound, p.oid) b(bound)"                             \
  " WHERE i.inhparent = 'measurements'::regclass AND b.bound <> 'DEFAULT'"                     \
  " AND coalesce((regexp_match(b.bound, 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz,"           \
  " '-infinity') < " r ".range_end"                                                             \
  " AND coalesce((regexp_match(b.bound, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz,"             \
  " 'infinity') > " r ".range_start)"

/* Every recorded range, by start, and whether it excuses. */
static const char SQL_RETENTION[] =
    "SELECT r.range_start, r.range_end, NOT " RETENTION_COVERED_AGAIN("r")
    " FROM measurement_retention r ORDER BY r.range_start, r.range_end";

/* One range: counted, and merged into the list when it excuses (rows come
 * by start, so a range either extends the last one or follows it). */
static int retention_row(audit_ctx *a, const PGresult *r) {
  int ok = 1;
  int64_t lo = col_int(r, 0, 8, &ok), hi = col_int(r, 1, 8, &ok);
  if (!ok || PQgetisnull(r, 0, 2)) {
    cl_err_set(a->err, a->errlen, "measurement_retention: a row without its range");
    return CL_EDB;
  }
  if (!col_bool(r, 2)) {
    a->rep->ignored_ranges++;
    return CL_OK;
  }
  a->rep->retention_ranges++;
  if (unix_us(hi) > a->rep->retired_until_us) a->rep->retired_until_us = unix_us(hi);
  if (a->n_retired > 0 && lo <= a->retired[a->n_retired - 1].hi) {
    retired_range *last = &a->retired[a->n_retired - 1];
    if (hi > last->hi) last->hi = hi;
    return CL_OK;
  }
  if (a->n_retired == a->cap_retired) {
    size_t cap = a->cap_retired ? a->cap_retired * 2 : 16;
    retired_range *nr = realloc(a->retired, cap * sizeof *nr);
    if (!nr) {
      cl_err_set(a->err, a->errlen, "out of memory for %zu retention ranges", cap);
      return CL_ENOMEM;
    }
    a->retired = nr;
    a->cap_retired = cap;
  }
  a->retired[a->n_retired++] = (retired_range){lo, hi};
  return CL_OK;
}

/*
 * 1 if every row the evidence query could return for the window
 * (lo_ns, hi_ns] lies in one merged range that retention removed: measured_at
 * in (lo - 1 s, hi + 1 s], widened by two microseconds for to_timestamp's
 * rounding. The window must be inside the ranges, not merely touch them.
 */
static int window_retired(const audit_ctx *a, int64_t lo_ns, int64_t hi_ns) {
  if (a->n_retired == 0 || lo_ns > hi_ns) return 0;
  int64_t lo_us = lo_ns / 1000 - (lo_ns % 1000 < 0) - PG_EPOCH_UNIX_US - 1000002;
  int64_t hi_us = hi_ns / 1000 + (hi_ns % 1000 > 0) - PG_EPOCH_UNIX_US + 1000002;
  /* The last range starting at or before lo_us. */
  size_t lo = 0, hi = a->n_retired;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a->retired[mid].lo <= lo_us)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo > 0 && a->retired[lo - 1].hi > hi_us;
}

/* ---- pass 4: attestations ---------------------------------------------------- */

/* Retention recorded this attestation's citation `cond` (of rc) as removed,
 * and the range is not covered again. */
#define RETIRED_CITATION(cond)                                                                  \
  "EXISTS (SELECT 1 FROM measurement_retention_cited rc"                                        \
  " JOIN measurement_retention r ON r.id = rc.retention_id"                                     \
  " WHERE rc.attestation_id = a.id AND " cond " AND NOT " RETENTION_COVERED_AGAIN("r") ")"

/*
 * One result row per (attestation, candidate row of its evidence), in chain
 * order; an attestation without candidates gives one row whose candidate
 * columns are NULL. $1 is CL_AUDIT_MAX_IDS: longer id or signature lists are
 * not expanded (their row cannot have been signed by a verifier and would
 * only cost memory). The subquery's OFFSET 0 keeps PostgreSQL from pulling
 * it up, so its subselects run once per attestation, not per candidate.
 */
enum {
  A_ID = 0, A_CHIP, A_VERIFIER, A_CHIP_PK, A_VERIFIER_PK, A_ROUND_END_NS, A_WINDOW_NS,
  A_PREV_HASH, A_CONSISTENCY, A_SITE, A_REGION, A_SPEED, A_LAT_E7, A_LON_E7, A_RADIUS,
  A_HAS_SITE_LM, A_SITE_LM_PK, A_MARGIN, A_ALLOWED,
  A_N_EXCLUDED,    /* number of excluded ids */
  A_EXCLUDED_PKS,  /* their keys concatenated */
  A_EXCLUDED_FOUND, /* how many of them name a landmark */
  A_N_IDS,         /* number of measurement ids */
  A_ID_SIGS,       /* version 1: their landmark signatures concatenated */
  A_MISSING_ID,    /* version 1: the smallest id that names no measurement and
                    * that measurement_retention_cited does not record */
  A_HASH, A_SIGNATURE, A_ROUND_END, A_VERSION,
  A_SIGS,          /* measurement_sigs (bytea[]), NULL when too long */
  A_SITE_DIGEST, A_LANDMARKS_DIGEST, A_REGIONS_DIGEST,
  A_SITE_LAT, A_SITE_LON, /* the chip's current declared site */
  A_LO_NS,         /* round_end_ns - window_ns when the evidence is followed (the
                    * query's; the group recomputes it from the signed fields) */
  A_RETIRED_IDS,   /* version 1: how many ids name no measurement but are recorded
                    * in measurement_retention_cited */
  A_RETIRED_ORDS,  /* version 2: the ordinals (bigint[]) of the cited signatures
                    * recorded there */
  E_ORDINAL,       /* the candidate's cited signature, 1-based; NULL: no candidate */
  E_ROW,           /* the candidate's signed-row block (S_*) */
  E_LAT = E_ROW + S_NCOLS, E_LON, /* its landmark's current position */
  A_NCOLS,
};

/* The columns A_ID to A_RETIRED_ORDS of the rows of attestations a that
 * pass `where` (text after the joins, "" for all), the chip c, verifier v
 * and site landmark sl joined: the audit's rows and cl_audit_chain_walk's. */
#define ATTESTATION_ROWS(where)                                                                 \
    "SELECT a.id, a.chip_id, a.verifier_id, c.public_key AS chip_pk,"                           \
    " v.public_key, a.round_end_ns, a.window_ns, a.prev_hash, a.consistency, a.site_verdict,"   \
    " a.region_verdict, a.speed_m_s, a.centre_lat_e7, a.centre_lon_e7, a.radius_m,"             \
    " a.site_landmark_id IS NOT NULL, sl.public_key, a.site_margin_m, a.allowed_regions,"       \
    " cardinality(a.excluded_landmark_ids)::bigint,"                                            \
    " CASE WHEN cardinality(a.excluded_landmark_ids) <= $1::integer THEN"                       \
    "  (SELECT string_agg(l.public_key, ''::bytea) FROM unnest(a.excluded_landmark_ids) e(id)"  \
    "   JOIN landmarks l ON l.id = e.id) END,"                                                  \
    " CASE WHEN cardinality(a.excluded_landmark_ids) <= $1::integer THEN"                       \
    "  (SELECT count(*) FROM unnest(a.excluded_landmark_ids) e(id)"                             \
    "   JOIN landmarks l ON l.id = e.id) END,"                                                  \
    " cardinality(a.measurement_ids)::bigint,"                                                  \
    " CASE WHEN a.layout_version = 1 AND cardinality(a.measurement_ids) <= $1::integer THEN"    \
    "  (SELECT string_agg(m.landmark_sig, ''::bytea) FROM unnest(a.measurement_ids) u(id)"      \
    "   JOIN measurements m ON m.id = u.id) END,"                                               \
    " CASE WHEN a.layout_version = 1 AND cardinality(a.measurement_ids) <= $1::integer THEN"    \
    "  (SELECT min(u.id) FROM unnest(a.measurement_ids) u(id)"                                  \
    "   WHERE NOT EXISTS (SELECT 1 FROM measurements m WHERE m.id = u.id)"                      \
    "   AND NOT " RETIRED_CITATION("rc.measurement_id = u.id") ") END,"                         \
    " a.hash, a.signature, a.round_end, a.layout_version,"                                      \
    " CASE WHEN cardinality(a.measurement_sigs) <= $1::integer THEN a.measurement_sigs END"     \
    "  AS sigs,"                                                                                \
    " a.site_digest, a.landmarks_digest, a.regions_digest, c.site_lat, c.site_lon,"             \
    /* The window's start, where it cannot overflow and there is evidence to follow. */         \
    " CASE WHEN a.layout_version = 2 AND a.round_end_ns >= 0 AND a.window_ns > 0"               \
    "  AND coalesce(cardinality(a.measurement_sigs), 0) BETWEEN 1 AND $1::integer"              \
    "  THEN a.round_end_ns - a.window_ns END AS lo_ns,"                                         \
    " CASE WHEN a.layout_version = 1 AND cardinality(a.measurement_ids) <= $1::integer THEN"    \
    "  (SELECT count(*) FROM unnest(a.measurement_ids) u(id)"                                   \
    "   WHERE NOT EXISTS (SELECT 1 FROM measurements m WHERE m.id = u.id)"                      \
    "   AND " RETIRED_CITATION("rc.measurement_id = u.id") ") END,"                             \
    " CASE WHEN a.layout_version = 2 AND cardinality(a.measurement_sigs) <= $1::integer THEN"   \
    "  ARRAY(SELECT u.o FROM unnest(a.measurement_sigs) WITH ORDINALITY u(s, o)"                \
    "   WHERE " RETIRED_CITATION("rc.landmark_sig = u.s") ") END"                               \
    " FROM attestations a LEFT JOIN chips c ON c.id = a.chip_id"                                \
    " LEFT JOIN verifiers v ON v.id = a.verifier_id"                                           \
    " LEFT JOIN landmarks sl ON sl.id = a.site_landmark_id" where

static const char SQL_ATTESTATIONS[] =
    "SELECT a.*, e.* FROM (" ATTESTATION_ROWS("") " OFFSET 0) a"
    /* The candidates: rows of the chip, measured in the window, carrying a
     * cited signature. measured_at (indexed, and within a microsecond of
     * measured_at_ns on any row that is not a derived-column finding)
     * narrows the scan; a second of slack as the verifier reads it. */
    " LEFT JOIN LATERAL (SELECT u.o, " SIGNED_COLUMNS("m", "l", "a.chip_pk") ", l.lat, l.lon"
    "  FROM measurements m JOIN unnest(a.sigs) WITH ORDINALITY u(s, o) ON u.s = m.landmark_sig"
    "  LEFT JOIN landmarks l ON l.id = m.landmark_id"
    "  WHERE a.lo_ns IS NOT NULL AND m.chip_id = a.chip_id"
    "  AND m.measured_at_ns > a.lo_ns AND m.measured_at_ns <= a.round_end_ns"
    "  AND m.measured_at > to_timestamp(a.lo_ns / 1e9) - interval '1 second'"
    "  AND m.measured_at <= to_timestamp(a.round_end_ns / 1e9) + interval '1 second') e ON true"
    " ORDER BY a.chip_id, a.verifier_id, a.round_end_ns, a.id, e.o, e.id";

/*
 * Parses a one-dimensional text[] in binary array format into *codes (n
 * pointers into *text, both malloc'd; free both). Returns CL_OK,
 * CL_EMALFORMED for anything else (more dimensions, NULL elements, a code
 * holding NUL) or CL_ENOMEM.
 */
static int parse_codes(const uint8_t *p, size_t len, const char ***codes, size_t *n,
                       char **text) {
  *codes = NULL;
  *text = NULL;
  *n = 0;
  array_iter it;
  if (array_open(&it, p, len) != CL_OK) return CL_EMALFORMED;
  const char **c = malloc(((size_t)it.n ? (size_t)it.n : 1) * sizeof *c);
  char *t = malloc(len); /* the codes and their NULs fit in the value */
  if (!c || !t) {
    free(c);
    free(t);
    return CL_ENOMEM;
  }
  size_t o = 0;
  for (int32_t i = 0; i < it.n; i++) {
    const uint8_t *el;
    size_t el_len;
    if (array_next(&it, &el, &el_len) != CL_OK || !el || memchr(el, 0, el_len)) {
      free(c);
      free(t);
      return CL_EMALFORMED;
    }
    memcpy(t + o, el, el_len);
    c[i] = t + o;
    o += el_len;
    t[o++] = '\0';
  }
  *codes = c;
  *text = t;
  *n = (size_t)it.n;
  return CL_OK;
}

/* SHA-256 of the codes of a text[] sorted bytewise and joined by ','. */
static int digest_text_array(const uint8_t *p, size_t len, uint8_t out[CL_HASH_LEN]) {
  const char **codes;
  char *text;
  size_t n;
  int rc = parse_codes(p, len, &codes, &n, &text);
  if (rc == CL_OK) rc = cl_attest_digest_codes(codes, n, out);
  free(codes);
  free(text);
  return rc;
}

/*
 * The landmark signatures of a version-2 row (measurement_sigs, binary
 * bytea[]): their digest and count. 0 when the array cannot be what a
 * verifier wrote (NULL, too long, a NULL element or one of another length),
 * 1 when done, or CL_ENOMEM.
 */
static int digest_sig_array(const PGresult *r, uint8_t out[CL_HASH_LEN], uint32_t *n_out) {
  if (PQgetisnull(r, 0, A_SIGS)) return 0;
  array_iter it;
  if (array_open(&it, (const uint8_t *)PQgetvalue(r, 0, A_SIGS),
                 (size_t)PQgetlength(r, 0, A_SIGS)) != CL_OK ||
      it.n > CL_AUDIT_MAX_IDS)
    return 0;
  uint8_t(*sigs)[CL_SIG_LEN] = malloc(((size_t)it.n ? (size_t)it.n : 1) * sizeof *sigs);
  if (!sigs) return CL_ENOMEM;
  for (int32_t i = 0; i < it.n; i++) {
    const uint8_t *el;
    size_t el_len;
    if (array_next(&it, &el, &el_len) != CL_OK || !el || el_len != CL_SIG_LEN) {
      free(sigs);
      return 0;
    }
    memcpy(sigs[i], el, CL_SIG_LEN);
  }
  int rc = cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])sigs, (size_t)it.n, out);
  free(sigs);
  if (rc != CL_OK) return rc;
  *n_out = (uint32_t)it.n;
  return 1;
}

/* Rebuilds the attestation of row r. Returns 1 when every column and
 * referenced row was there and *at is complete, 0 when the row cannot be
 * the one a verifier signed (a key or a column is missing or malformed, an
 * unknown layout version), or a negative CL_* code (CL_ENOMEM). */
static int rebuild_attestation(const PGresult *r, cl_attestation *at) {
  memset(at, 0, sizeof *at);
  int ok = 1;
  int complete = col_bytes(r, A_CHIP_PK, at->chip, CL_PK_LEN) &
                 col_bytes(r, A_VERIFIER_PK, at->verifier, CL_PK_LEN) &
                 col_bytes(r, A_PREV_HASH, at->prev_hash, CL_HASH_LEN) &
                 col_bytes(r, A_SIGNATURE, at->sig, CL_SIG_LEN);
  int64_t version = col_int(r, A_VERSION, 2, &ok);
  at->round_end_ns = (uint64_t)col_int(r, A_ROUND_END_NS, 8, &ok);
  at->window_ns = (uint64_t)col_int(r, A_WINDOW_NS, 8, &ok);
  at->consistency = (uint8_t)col_int(r, A_CONSISTENCY, 2, &ok);
  at->site = (uint8_t)col_int(r, A_SITE, 2, &ok);
  at->region = (uint8_t)col_int(r, A_REGION, 2, &ok);
  at->speed_m_per_s = (uint64_t)col_int(r, A_SPEED, 8, &ok);
  at->centre_lat_e7 = (int32_t)col_int(r, A_LAT_E7, 4, &ok);
  at->centre_lon_e7 = (int32_t)col_int(r, A_LON_E7, 4, &ok);
  at->radius_m = (uint64_t)col_int(r, A_RADIUS, 8, &ok);
  at->site_margin_m = col_int(r, A_MARGIN, 8, &ok);
  if (!complete || !ok || (version != CL_ATT_V1 && version != CL_ATT_V2)) return 0;
  at->version = (uint8_t)version;

  /* The site landmark's key, or zeros when there is none. */
  if (col_bool(r, A_HAS_SITE_LM) && !col_bytes(r, A_SITE_LM_PK, at->site_landmark, CL_PK_LEN))
    return 0;

  int rc;
  if (PQgetisnull(r, 0, A_ALLOWED)) return 0;
  rc = digest_text_array((const uint8_t *)PQgetvalue(r, 0, A_ALLOWED),
                         (size_t)PQgetlength(r, 0, A_ALLOWED), at->allowed_digest);
  if (rc == CL_EMALFORMED) return 0;
  if (rc != CL_OK) return rc;

  /* Excluded landmarks: every id must name a landmark; at most 255 fit the
   * layout's count. */
  int64_t n_excl = col_int(r, A_N_EXCLUDED, 8, &ok);
  if (!ok || n_excl < 0 || n_excl > 255) return 0;
  if (n_excl > 0) {
    int64_t found = col_int(r, A_EXCLUDED_FOUND, 8, &ok);
    if (!ok || found != n_excl || PQgetisnull(r, 0, A_EXCLUDED_PKS) ||
        (size_t)PQgetlength(r, 0, A_EXCLUDED_PKS) != (size_t)n_excl * CL_PK_LEN)
      return 0;
    rc = cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN])PQgetvalue(r, 0, A_EXCLUDED_PKS),
                               (size_t)n_excl, at->excluded_digest);
  } else {
    rc = cl_attest_digest_keys(NULL, 0, at->excluded_digest);
  }
  if (rc != CL_OK) return rc;
  at->n_excluded = (uint8_t)n_excl;

  if (at->version == CL_ATT_V2) {
    /* Everything from the row itself: the cited signatures and the input
     * digests. measurement_ids proves nothing and is not read. */
    if (!col_bytes(r, A_SITE_DIGEST, at->site_digest, CL_HASH_LEN) ||
        !col_bytes(r, A_LANDMARKS_DIGEST, at->landmarks_digest, CL_HASH_LEN) ||
        !col_bytes(r, A_REGIONS_DIGEST, at->regions_digest, CL_HASH_LEN))
      return 0;
    return digest_sig_array(r, at->measurements_digest, &at->n_measurements);
  }

  /* Version 1 measurements: as many signatures as ids (the caller has ruled
   * out missing ones); a duplicated id, or an id that two rows share, adds a
   * signature and fails here. */
  int64_t n_meas = col_int(r, A_N_IDS, 8, &ok);
  if (!ok || n_meas < 0 || n_meas > CL_AUDIT_MAX_IDS) return 0;
  if (n_meas > 0) {
    if (PQgetisnull(r, 0, A_ID_SIGS) ||
        (size_t)PQgetlength(r, 0, A_ID_SIGS) != (size_t)n_meas * CL_SIG_LEN)
      return 0;
    rc = cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])PQgetvalue(r, 0, A_ID_SIGS),
                               (size_t)n_meas, at->measurements_digest);
  } else {
    rc = cl_attest_digest_sigs(NULL, 0, at->measurements_digest);
  }
  if (rc != CL_OK) return rc;
  at->n_measurements = (uint32_t)n_meas;
  return 1;
}

/* Version 1: 1 if the record's window (its columns: nothing of it can be
 * verified) lies inside the ranges retention removed. */
static int v1_window_retired(const audit_ctx *a, const PGresult *r) {
  int ok = 1;
  int64_t end = col_int(r, A_ROUND_END_NS, 8, &ok);
  int64_t window = col_int(r, A_WINDOW_NS, 8, &ok);
  return ok && end >= 0 && window > 0 && window_retired(a, end - window, end);
}

/* Content checks of one attestation: at most one finding. *at is rebuilt
 * and *verified set when its signature verifies; *rebuilt is set when its
 * own hash is in rebuilt_hash; *retired when it is a version 1 record whose
 * missing measurements retention removed (nothing of it can be checked). */
static int check_attestation(audit_ctx *a, const PGresult *r, int64_t id,
                             const uint8_t stored[CL_HASH_LEN], cl_attestation *at,
                             int *verified, int *rebuilt, uint8_t rebuilt_hash[CL_HASH_LEN],
                             int *retired) {
  *rebuilt = 0;
  *verified = 0;
  *retired = 0;
  int ok = 1;
  /* Version 1: a named measurement that is gone, and not with a partition
   * whose removal covers the record's whole window: deleted. Nothing else
   * can be rebuilt without its signature. */
  if (!PQgetisnull(r, 0, A_MISSING_ID)) {
    int64_t missing = col_int(r, A_MISSING_ID, 8, &ok);
    if (!v1_window_retired(a, r))
      return add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_MEASUREMENT_MISSING, missing);
    *retired = 1;
    return CL_OK;
  }
  /* Every missing one was recorded as removed with its partition. */
  if (!PQgetisnull(r, 0, A_RETIRED_IDS) && col_int(r, A_RETIRED_IDS, 8, &ok) > 0) {
    *retired = 1;
    return CL_OK;
  }
  int got = rebuild_attestation(r, at);
  if (got < 0) {
    cl_err_set(a->err, a->errlen, "attestation %lld: %s", (long long)id, cl_strerror(got));
    return got;
  }
  if (got == 0 || cl_attest_verify(at) != CL_OK)
    return add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_ATTESTATION_SIGNATURE, 0);
  *verified = 1;
  cl_attest_hash(at, rebuilt_hash);
  *rebuilt = 1;
  if (memcmp(rebuilt_hash, stored, CL_HASH_LEN) != 0)
    return add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_HASH_MISMATCH, 0);
  int64_t round_end = col_int(r, A_ROUND_END, 8, &ok);
  if (!ok || !time_matches(round_end, (int64_t)at->round_end_ns))
    return add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_DERIVED_COLUMN, 0);
  return CL_OK;
}

/*
 * The regions digest of a verified version-2 attestation from the current
 * regions rows of its allowed codes: 1 and *out when every code has a
 * geometry that parses, 0 when one does not, or CL_ENOMEM.
 */
static int current_regions_digest(const audit_ctx *a, const PGresult *r,
                                  uint8_t out[CL_HASH_LEN]) {
  const char **codes;
  char *text;
  size_t n;
  int rc = parse_codes((const uint8_t *)PQgetvalue(r, 0, A_ALLOWED),
                       (size_t)PQgetlength(r, 0, A_ALLOWED), &codes, &n, &text);
  /* The row verified, so the array parsed before: only memory can fail. */
  if (rc == CL_EMALFORMED) return 0;
  if (rc != CL_OK) return rc;
  uint8_t(*geometry)[CL_HASH_LEN] = malloc((n ? n : 1) * sizeof *geometry);
  int found = geometry != NULL;
  for (size_t i = 0; found && i < n; i++) {
    const region_digest *d = find_region(a, codes[i]);
    if (d)
      memcpy(geometry[i], d->digest, CL_HASH_LEN);
    else
      found = 0;
  }
  if (!geometry)
    rc = CL_ENOMEM;
  else if (found)
    rc = cl_attest_digest_regions(codes, (const uint8_t(*)[CL_HASH_LEN])geometry, n, out);
  free(geometry);
  free(codes);
  free(text);
  if (rc != CL_OK) return rc;
  return found;
}

/* The site and regions of a verified version-2 attestation against the
 * current chips and regions rows: one finding per input that differs. */
static int check_inputs(audit_ctx *a, const PGresult *r, int64_t id, const cl_attestation *at) {
  uint8_t d[CL_HASH_LEN];
  double lat, lon;
  int rc = CL_OK;
  int site_same = col_double(r, A_SITE_LAT, &lat) && col_double(r, A_SITE_LON, &lon);
  if (site_same) {
    cl_attest_digest_site(lat, lon, d);
    site_same = memcmp(d, at->site_digest, CL_HASH_LEN) == 0;
  }
  if (!site_same)
    rc = add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_INPUT_CHANGED, CL_AUDIT_INPUT_SITE);
  if (rc != CL_OK) return rc;
  int got = current_regions_digest(a, r, d);
  if (got < 0) {
    cl_err_set(a->err, a->errlen, "attestation %lld: %s", (long long)id, cl_strerror(got));
    return got;
  }
  if (got == 0 || memcmp(d, at->regions_digest, CL_HASH_LEN) != 0)
    rc = add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_INPUT_CHANGED, CL_AUDIT_INPUT_REGIONS);
  return rc;
}

static int all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

/* Closes the open attestation group: a cited signature without a usable row
 * is missing evidence, unless retention removed its row (recorded for this
 * attestation, or no live row carries it and the whole window was
 * removed); with all of them found, the landmarks digest must match their
 * landmarks as enrolled now. */
static int close_group(audit_ctx *a) {
  att_group *g = &a->g;
  int evidence = g->open && g->evidence;
  g->open = 0;
  if (!evidence) return CL_OK;
  size_t retired = 0;
  int window = -1; /* window_retired, once needed */
  for (size_t i = 0; i < g->n_cited; i++) {
    if (g->usable[i]) continue;
    if (!g->retired[i] && g->fail_ref[i] == 0) {
      if (window < 0) window = window_retired(a, g->lo_ns, g->hi_ns);
      g->retired[i] = (uint8_t)window;
    }
    if (!g->retired[i])
      return add_finding(a, CL_AUDIT_ATTESTATIONS, g->id, CL_AUDIT_EVIDENCE, g->fail_ref[i]);
    retired++;
  }
  if (g->legacy) a->rep->legacy_evidence++;
  /* The landmarks of removed rows are unknown: the digest cannot be
   * recomputed. */
  if (retired) {
    a->rep->evidence_retired++;
    return CL_OK;
  }
  uint8_t d[CL_HASH_LEN];
  int rc = cl_attest_digest_landmarks(g->lms, g->n_cited, d);
  if (rc != CL_OK) {
    cl_err_set(a->err, a->errlen, "attestation %lld: %s", (long long)g->id, cl_strerror(rc));
    return rc;
  }
  if (memcmp(d, g->landmarks_digest, CL_HASH_LEN) != 0)
    return add_finding(a, CL_AUDIT_ATTESTATIONS, g->id, CL_AUDIT_INPUT_CHANGED,
                       CL_AUDIT_INPUT_LANDMARKS);
  return CL_OK;
}

/* The cited signatures of a version-2 group that measurement_retention_cited
 * records as removed (A_RETIRED_ORDS, 1-based ordinals). */
static int mark_retired(audit_ctx *a, const PGresult *r, att_group *g) {
  if (PQgetisnull(r, 0, A_RETIRED_ORDS)) return CL_OK;
  array_iter it;
  if (array_open(&it, (const uint8_t *)PQgetvalue(r, 0, A_RETIRED_ORDS),
                 (size_t)PQgetlength(r, 0, A_RETIRED_ORDS)) != CL_OK) {
    cl_err_set(a->err, a->errlen, "attestation %lld: a malformed list of retired citations",
               (long long)g->id);
    return CL_EDB;
  }
  for (int32_t i = 0; i < it.n; i++) {
    const uint8_t *el;
    size_t len;
    if (array_next(&it, &el, &len) != CL_OK || !el || len != 8) {
      cl_err_set(a->err, a->errlen, "attestation %lld: a malformed list of retired citations",
                 (long long)g->id);
      return CL_EDB;
    }
    uint64_t o = cl_get_be64(el);
    if (o >= 1 && o <= g->n_cited) g->retired[o - 1] = 1;
  }
  return CL_OK;
}

/* The first row of an attestation: its content, its link to the previous
 * record of the same chip and verifier (rows arrive in chain order), and,
 * for a version-2 record that verifies, its inputs and the start of its
 * evidence check. */
static int open_group(audit_ctx *a, const PGresult *r, int64_t id) {
  int ok = 1;
  int64_t chip = col_int(r, A_CHIP, 8, &ok);
  int64_t verifier = col_int(r, A_VERIFIER, 8, &ok);
  uint8_t stored[CL_HASH_LEN], prev_hash[CL_HASH_LEN];
  if (!ok || !col_bytes(r, A_HASH, stored, CL_HASH_LEN) ||
      !col_bytes(r, A_PREV_HASH, prev_hash, CL_HASH_LEN)) {
    cl_err_set(a->err, a->errlen, "attestations: a row without its id, chip, verifier or hashes");
    return CL_EDB;
  }
  a->rep->attestations++;
  att_group *g = &a->g;
  g->open = 1;
  g->id = id;
  g->evidence = 0;
  int verified = 0, rebuilt = 0, retired = 0;
  uint8_t rebuilt_hash[CL_HASH_LEN];
  cl_attestation at;
  int rc = check_attestation(a, r, id, stored, &at, &verified, &rebuilt, rebuilt_hash, &retired);
  if (rc != CL_OK) return rc;
  if (retired) a->rep->evidence_retired++;

  int first = !a->have_prev || a->prev_chip != chip || a->prev_verifier != verifier;
  if (first) {
    a->rep->chains++;
    a->have_good = 0;
    if (!all_zero(prev_hash, CL_HASH_LEN))
      rc = add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_CHAIN_START, 0);
  } else {
    /* The previous record's stored hash and, when it could be rebuilt, the
     * hash of its contents both count: a record whose hash column alone was
     * edited is reported once, as a hash mismatch, not again here. */
    int linked = memcmp(prev_hash, a->prev_stored, CL_HASH_LEN) == 0 ||
                 (a->prev_rebuilt && memcmp(prev_hash, a->prev_rebuilt_hash, CL_HASH_LEN) == 0);
    /* Records whose signature fails are stepped over: one slipped into a
     * chain (by anyone who can insert rows) is reported alone, as an
     * attestation signature, and a genuine record after it that links to
     * the last genuine one before it is not blamed. */
    if (!linked && !a->prev_verified)
      linked = a->have_good ? memcmp(prev_hash, a->good_hash, CL_HASH_LEN) == 0
                            : all_zero(prev_hash, CL_HASH_LEN);
    if (!linked) rc = add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_CHAIN_BREAK, a->prev_id);
  }
  a->have_prev = 1;
  a->prev_id = id;
  a->prev_chip = chip;
  a->prev_verifier = verifier;
  memcpy(a->prev_stored, stored, CL_HASH_LEN);
  a->prev_rebuilt = rebuilt;
  if (rebuilt) memcpy(a->prev_rebuilt_hash, rebuilt_hash, CL_HASH_LEN);
  /* A version 1 record whose evidence was removed cannot be checked, but
   * it is not stepped over either: the next record must link to its stored
   * hash, so that a record slipped into a removed month still breaks the
   * chain. */
  a->prev_verified = (verified && rebuilt) || retired;
  if (a->prev_verified) {
    a->have_good = 1;
    memcpy(a->good_hash, rebuilt ? rebuilt_hash : stored, CL_HASH_LEN);
  }
  if (rc != CL_OK || !verified || at.version != CL_ATT_V2) return rc;

  /* A version-2 record the verifier signed: what it cites and what it was
   * drawn from must still be there. */
  if ((rc = check_inputs(a, r, id, &at)) != CL_OK) return rc;
  g->evidence = 1;
  g->legacy = 0;
  g->n_cited = at.n_measurements; /* at most CL_AUDIT_MAX_IDS: digest_sig_array */
  memcpy(g->landmarks_digest, at.landmarks_digest, CL_HASH_LEN);
  memset(g->usable, 0, g->n_cited * sizeof *g->usable);
  memset(g->fail_ref, 0, g->n_cited * sizeof *g->fail_ref);
  memset(g->retired, 0, g->n_cited * sizeof *g->retired);
  if ((rc = mark_retired(a, r, g)) != CL_OK) return rc;
  /* The query expands candidates only for round_end_ns >= 0 and a positive
   * window (the columns are bigint); lo_ns is then round_end_ns - window_ns,
   * possibly negative, and cannot overflow. */
  g->hi_ns = (int64_t)at.round_end_ns;
  g->lo_ns = g->hi_ns >= 0 && (int64_t)at.window_ns > 0 ? g->hi_ns - (int64_t)at.window_ns
                                                         : g->hi_ns;
  return CL_OK;
}

/* One candidate row of the open group's evidence. The first usable row per
 * cited signature counts; later ones are not checked. */
static int candidate(audit_ctx *a, const PGresult *r) {
  att_group *g = &a->g;
  if (!g->evidence || PQgetisnull(r, 0, E_ORDINAL)) return CL_OK;
  int ok = 1;
  int64_t ordinal = col_int(r, E_ORDINAL, 8, &ok);
  if (!ok || ordinal < 1 || (uint64_t)ordinal > g->n_cited) {
    cl_err_set(a->err, a->errlen, "attestation %lld: a candidate outside its citations",
               (long long)g->id);
    return CL_EDB;
  }
  size_t i = (size_t)(ordinal - 1);
  if (g->usable[i]) return CL_OK;
  signed_row row;
  read_signed_row(r, E_ROW, &row);
  /* The window is the query's; checked again on the signed time. */
  int64_t t = (int64_t)row.m.measured_unix_ns;
  double lat, lon;
  /* A protocol 1 row (an attestation made before the upgrade) is taken on
   * the checks that need no signature, and the attestation is counted as
   * resting on rows this version cannot re-verify. */
  if (row.has_id && t > g->lo_ns && t <= g->hi_ns && col_double(r, E_LAT, &lat) &&
      col_double(r, E_LON, &lon) && (believable(&row) || legacy_believable(&row))) {
    g->usable[i] = 1;
    g->legacy |= row.legacy;
    memcpy(g->lms[i].pk, row.m.hs.landmark, CL_PK_LEN);
    g->lms[i].lat = lat;
    g->lms[i].lon = lon;
  } else if (g->fail_ref[i] == 0) {
    g->fail_ref[i] = row.id;
  }
  return CL_OK;
}

/* One result row of the attestation query. */
static int attestation_row(audit_ctx *a, const PGresult *r) {
  if (PQnfields(r) != A_NCOLS) {
    cl_err_set(a->err, a->errlen, "attestations: %d columns, want %d", PQnfields(r), A_NCOLS);
    return CL_EDB;
  }
  int ok = 1;
  int64_t id = col_int(r, A_ID, 8, &ok);
  if (!ok) {
    cl_err_set(a->err, a->errlen, "attestations: a row without an id");
    return CL_EDB;
  }
  if (!a->g.open || a->g.id != id) {
    int rc = close_group(a);
    if (rc == CL_OK) rc = open_group(a, r, id);
    if (rc != CL_OK) return rc;
  }
  return candidate(a, r);
}

/* ---- the run ------------------------------------------------------------------- */

/* ---- verifier pools' coverage -------------------------------------------- */

/*
 * The pool gaps of cl_audit_pool_gap in one statement: the pools, their
 * members and rounds from verifier_claims and the members' attestations,
 * then every (round, chip) that should have an attestation and has none by
 * a member (an anti-join, not a loop over chips). Times are compared in
 * numeric nanoseconds, so no value the database holds can overflow the
 * query. One row: the counts, and NULL for the gap when there is none; or
 * one row per gap shown ($1 at most), each with the counts.
 */
static const char SQL_POOL_GAPS[] =
    "WITH pools AS (SELECT pool, min(round_end_ns) AS oldest, max(round_end_ns) AS newest,"
    " max(interval_ns)::numeric AS interval_ns FROM verifier_claims GROUP BY pool),"
    " members AS (SELECT DISTINCT pool, verifier_id FROM verifier_claims),"
    " rounds AS (SELECT k.pool, k.round_end_ns FROM verifier_claims k"
    "  JOIN pools p ON p.pool = k.pool WHERE k.round_end_ns < p.newest"
    "  UNION SELECT m.pool, a.round_end_ns FROM attestations a"
    "  JOIN members m ON m.verifier_id = a.verifier_id JOIN pools p ON p.pool = m.pool"
    "  WHERE a.round_end_ns >= p.oldest AND a.round_end_ns < p.newest),"
    " gaps AS (SELECT r.pool, r.round_end_ns, c.serial FROM rounds r"
    "  JOIN pools p ON p.pool = r.pool"
    "  JOIN chips c ON extract(epoch FROM c.enrolled_at) * 1e9 <= r.round_end_ns"
    "  AND (c.active OR extract(epoch FROM c.deactivated_at) * 1e9"
    "   > r.round_end_ns::numeric + 2 * p.interval_ns)"
    "  WHERE NOT EXISTS (SELECT 1 FROM attestations a JOIN members m"
    "   ON m.verifier_id = a.verifier_id AND m.pool = r.pool"
    "   WHERE a.chip_id = c.id AND a.round_end_ns = r.round_end_ns))"
    " SELECT (SELECT count(*) FROM pools), (SELECT count(*) FROM rounds),"
    " (SELECT count(*) FROM gaps), g.pool, g.round_end_ns, g.serial"
    " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT * FROM gaps"
    " ORDER BY round_end_ns, pool COLLATE \"C\", serial COLLATE \"C\" LIMIT $1::integer) g"
    " ON true";

/* One row of SQL_POOL_GAPS: the counts, and a gap to show if it has one. */
static int pool_gap_row(audit_ctx *a, const PGresult *r) {
  cl_audit_report *rep = a->rep;
  int ok = 1;
  int64_t pools = col_int(r, 0, 8, &ok), rounds = col_int(r, 1, 8, &ok);
  int64_t gaps = col_int(r, 2, 8, &ok);
  if (!ok) {
    cl_err_set(a->err, a->errlen, "verifier pools: a count is missing");
    return CL_EDB;
  }
  if (!a->pools_counted) { /* every row repeats the counts */
    a->pools_counted = 1;
    rep->pools = pools;
    rep->pool_rounds = rounds;
    rep->pool_gaps = gaps;
    rep->problems += gaps;
  }
  if (PQgetisnull(r, 0, 3)) return CL_OK;
  int64_t round = col_int(r, 4, 8, &ok);
  if (!ok || PQgetisnull(r, 0, 5) || rep->n_gaps >= CL_AUDIT_POOL_GAPS_SHOWN) {
    cl_err_set(a->err, a->errlen, "verifier pools: a gap without its round or chip");
    return CL_EDB;
  }
  cl_audit_pool_gap *g = &rep->gaps[rep->n_gaps];
  g->serial = strdup(PQgetvalue(r, 0, 5));
  if (!g->serial) {
    cl_err_set(a->err, a->errlen, "verifier pools: out of memory");
    return CL_ENOMEM;
  }
  snprintf(g->pool, sizeof g->pool, "%s", PQgetvalue(r, 0, 3));
  g->round_end_ns = round;
  rep->n_gaps++;
  return CL_OK;
}

/* The connection a read of the audit (`what` names it in err) may use: open,
 * outside a transaction (each read is one snapshot of its own), and with
 * integer datetimes, since binary timestamps are 64-bit microseconds only
 * with those (the only kind since PostgreSQL 10). */
static int snapshot_conn(cl_store *s, const char *what, PGconn **out, char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    cl_err_set(err, errlen, "%s: not connected to the database", what);
    return CL_EDB;
  }
  if (PQtransactionStatus(c) != PQTRANS_IDLE) {
    cl_err_set(err, errlen, "%s: the connection is inside a transaction", what);
    return CL_EINVAL;
  }
  const char *idt = PQparameterStatus(c, "integer_datetimes");
  if (!idt || strcmp(idt, "on") != 0) {
    cl_err_set(err, errlen, "%s: the server does not use integer timestamps", what);
    return CL_EDB;
  }
  *out = c;
  return CL_OK;
}

int cl_audit_run(cl_store *s, cl_audit_report *out, char *err, size_t errlen) {
  if (!s || !out) return CL_EINVAL;
  memset(out, 0, sizeof *out);
  PGconn *c = NULL;
  int rc = snapshot_conn(s, "audit", &c, err, errlen);
  if (rc != CL_OK) return rc;
  audit_ctx a;
  memset(&a, 0, sizeof a);
  a.c = c;
  a.rep = out;
  a.err = err;
  a.errlen = errlen;
  a.g.usable = calloc(CL_AUDIT_MAX_IDS, sizeof *a.g.usable);
  a.g.fail_ref = calloc(CL_AUDIT_MAX_IDS, sizeof *a.g.fail_ref);
  a.g.lms = calloc(CL_AUDIT_MAX_IDS, sizeof *a.g.lms);
  a.g.retired = calloc(CL_AUDIT_MAX_IDS, sizeof *a.g.retired);
  if (!a.g.usable || !a.g.fail_ref || !a.g.lms || !a.g.retired) {
    free(a.g.usable);
    free(a.g.fail_ref);
    free(a.g.lms);
    free(a.g.retired);
    cl_err_set(err, errlen, "audit: out of memory");
    return CL_ENOMEM;
  }
  char max_ids[16];
  snprintf(max_ids, sizeof max_ids, "%d", CL_AUDIT_MAX_IDS);
  const char *params[1] = {max_ids};

  /* One snapshot for all passes: rows committed meanwhile by the landmarks
   * or the verifier are neither half-seen nor mistaken for gaps. */
  rc = exec_cmd(&a, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                    "starting the audit transaction");
  if (rc == CL_OK) rc = stream(&a, SQL_MEASUREMENTS, 0, NULL, "reading measurements",
                               measurement_row);
  if (rc == CL_OK) rc = stream(&a, SQL_LINKS, 0, NULL, "reading landmark_links", link_row);
  if (rc == CL_OK) rc = stream(&a, SQL_REGIONS, 0, NULL, "reading regions", region_row);
  if (rc == CL_OK && a.n_regions > 1)
    qsort(a.regions, a.n_regions, sizeof *a.regions, cmp_region_digest);
  if (rc == CL_OK)
    rc = stream(&a, SQL_RETENTION, 0, NULL, "reading measurement_retention", retention_row);
  if (rc == CL_OK)
    rc = stream(&a, SQL_ATTESTATIONS, 1, params, "reading attestations", attestation_row);
  if (rc == CL_OK) rc = close_group(&a);
  char shown[16];
  snprintf(shown, sizeof shown, "%d", CL_AUDIT_POOL_GAPS_SHOWN);
  const char *gap_params[1] = {shown};
  if (rc == CL_OK)
    rc = stream(&a, SQL_POOL_GAPS, 1, gap_params, "checking the verifier pools' coverage",
                pool_gap_row);
  if (rc == CL_OK) rc = exec_cmd(&a, "COMMIT", "ending the audit transaction");
  free_regions(&a);
  free(a.retired);
  free(a.g.usable);
  free(a.g.fail_ref);
  free(a.g.lms);
  free(a.g.retired);
  if (rc != CL_OK) {
    PGTransactionStatusType t = PQtransactionStatus(c);
    if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR) PQclear(PQexec(c, "ROLLBACK"));
    cl_audit_report_free(out);
    return rc;
  }
  if (out->n_findings > 1) qsort(out->findings, out->n_findings, sizeof *out->findings, cmp_finding);
  return CL_OK;
}

/* ---- one chip's chain by one verifier, record by record ------------------------ */

static const char SQL_WALK_CHIP[] = "SELECT id FROM chips WHERE serial = $1::text";
static const char SQL_WALK_VERIFIER[] =
    "SELECT id, name FROM verifiers WHERE public_key = decode($1::text, 'hex')";
/* $1 CL_AUDIT_MAX_IDS (as for the audit), $2 the chip's id, $3 the
 * verifier's, $4 the last round_end_ns. */
static const char SQL_WALK[] = ATTESTATION_ROWS(
    " WHERE a.chip_id = $2::bigint AND a.verifier_id = $3::bigint"
    " AND a.round_end_ns <= $4::bigint ORDER BY a.round_end_ns, a.id");

/* Returned by walk_row after passing a record that is not ok: the walk ends
 * there (positive, so no CL_* code and no code of the caller's fn is taken
 * for it; `ended` tells them apart). */
#define WALK_END 1

/* The walk's state; `a` first, so that stream's callbacks find the rest. */
typedef struct {
  audit_ctx a;
  cl_audit_record_fn fn;
  void *arg;
  int64_t chip_id, verifier_id;
  int found; /* the chip or verifier lookup returned its row */
  char *verifier_name;
  uint32_t position;
  int ended;
  uint8_t prev[CL_HASH_LEN]; /* the hash of the previous record (all were ok) */
} walk_ctx;

static int walk_chip_row(audit_ctx *a, const PGresult *r) {
  walk_ctx *w = (walk_ctx *)a;
  int ok = 1;
  w->chip_id = col_int(r, 0, 8, &ok);
  w->found = ok;
  return CL_OK;
}

static int walk_verifier_row(audit_ctx *a, const PGresult *r) {
  walk_ctx *w = (walk_ctx *)a;
  int ok = 1;
  w->verifier_id = col_int(r, 0, 8, &ok);
  if (!ok || PQgetisnull(r, 0, 1)) return CL_OK;
  size_t n = (size_t)PQgetlength(r, 0, 1);
  if (!(w->verifier_name = malloc(n + 1))) {
    cl_err_set(a->err, a->errlen, "out of memory");
    return CL_ENOMEM;
  }
  memcpy(w->verifier_name, PQgetvalue(r, 0, 1), n);
  w->verifier_name[n] = '\0';
  w->found = 1;
  return CL_OK;
}

/* One record: rebuilt and checked as the audit checks it (check_attestation
 * into a report of its own), then linked to the record before it. */
static int walk_row(audit_ctx *a, const PGresult *r) {
  walk_ctx *w = (walk_ctx *)a;
  if (PQnfields(r) != E_ORDINAL) {
    cl_err_set(a->err, a->errlen, "attestations: %d columns, want %d", PQnfields(r), E_ORDINAL);
    return CL_EDB;
  }
  cl_audit_record rec;
  memset(&rec, 0, sizeof rec);
  int ok = 1;
  rec.id = col_int(r, A_ID, 8, &ok);
  if (!ok) {
    cl_err_set(a->err, a->errlen, "attestations: a row without an id");
    return CL_EDB;
  }
  rec.position = ++w->position;
  col_bytes(r, A_HASH, rec.hash, CL_HASH_LEN); /* NOT NULL; zeros never match */
  int64_t problems = a->rep->problems;
  size_t findings = a->rep->n_findings;
  int verified = 0, rebuilt = 0, retired = 0;
  uint8_t rebuilt_hash[CL_HASH_LEN];
  int rc = check_attestation(a, r, rec.id, rec.hash, &rec.at, &verified, &rebuilt, rebuilt_hash,
                             &retired);
  if (rc != CL_OK) return rc;
  if (a->rep->problems > problems) {
    rec.problem = a->rep->n_findings > findings ? a->rep->findings[findings].problem
                                                : CL_AUDIT_ATTESTATION_SIGNATURE;
  } else if (retired) {
    /* Its measurements went with their partitions: nothing of it can be
     * verified, so nothing after it either. */
    rec.problem = CL_AUDIT_MEASUREMENT_MISSING;
  } else if (rec.position == 1 ? !all_zero(rec.at.prev_hash, CL_HASH_LEN)
                               : memcmp(rec.at.prev_hash, w->prev, CL_HASH_LEN) != 0) {
    rec.problem = rec.position == 1 ? CL_AUDIT_CHAIN_START : CL_AUDIT_CHAIN_BREAK;
  } else {
    rec.ok = 1;
  }
  /* The values the layout binds by digest, for the caller to state. */
  const char **codes = NULL;
  char *text = NULL;
  /* A record that verified has an array that parses (its digest was taken
   * from it); one that does not parse leaves the list empty. */
  if (!PQgetisnull(r, 0, A_ALLOWED) &&
      parse_codes((const uint8_t *)PQgetvalue(r, 0, A_ALLOWED),
                  (size_t)PQgetlength(r, 0, A_ALLOWED), &codes, &rec.n_allowed,
                  &text) == CL_ENOMEM) {
    cl_err_set(a->err, a->errlen, "attestation %lld: out of memory", (long long)rec.id);
    return CL_ENOMEM;
  }
  rec.allowed = codes;
  if (!PQgetisnull(r, 0, A_EXCLUDED_PKS) && PQgetlength(r, 0, A_EXCLUDED_PKS) % CL_PK_LEN == 0) {
    rec.excluded = (const uint8_t(*)[CL_PK_LEN])PQgetvalue(r, 0, A_EXCLUDED_PKS);
    rec.n_excluded = (size_t)PQgetlength(r, 0, A_EXCLUDED_PKS) / CL_PK_LEN;
  }
  rc = w->fn(w->arg, &rec);
  free(codes);
  free(text);
  if (rc != 0) return rc;
  if (!rec.ok) {
    w->ended = 1;
    return WALK_END;
  }
  memcpy(w->prev, rec.hash, CL_HASH_LEN);
  return CL_OK;
}

int cl_audit_chain_walk(cl_store *s, const char *serial, const uint8_t verifier_pk[CL_PK_LEN],
                        int64_t until_round_end_ns, cl_audit_record_fn fn, void *arg,
                        char **verifier_name, char *err, size_t errlen) {
  if (verifier_name) *verifier_name = NULL;
  if (!s || !serial || !verifier_pk || !fn) return CL_EINVAL;
  PGconn *c = NULL;
  int rc = snapshot_conn(s, "chain", &c, err, errlen);
  if (rc != CL_OK) return rc;
  cl_audit_report rep;
  memset(&rep, 0, sizeof rep);
  walk_ctx w;
  memset(&w, 0, sizeof w);
  w.a.c = c;
  w.a.rep = &rep;
  w.a.err = err;
  w.a.errlen = errlen;
  w.fn = fn;
  w.arg = arg;
  char pk_hex[CL_PK_HEX_LEN + 1], max_ids[16], chip_id[24], verifier_id[24], until[24];
  cl_pk_to_hex(verifier_pk, pk_hex);
  snprintf(max_ids, sizeof max_ids, "%d", CL_AUDIT_MAX_IDS);
  snprintf(until, sizeof until, "%lld", (long long)until_round_end_ns);
  const char *p_serial[1] = {serial}, *p_pk[1] = {pk_hex};
  const char *p_walk[4] = {max_ids, chip_id, verifier_id, until};

  rc = exec_cmd(&w.a, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                    "starting the chain's snapshot");
  if (rc == CL_OK) rc = stream(&w.a, SQL_WALK_CHIP, 1, p_serial, "reading chips", walk_chip_row);
  if (rc == CL_OK && !w.found) {
    cl_err_set(err, errlen, "no chip with serial %s", serial);
    rc = CL_ENOTFOUND;
  }
  w.found = 0;
  if (rc == CL_OK)
    rc = stream(&w.a, SQL_WALK_VERIFIER, 1, p_pk, "reading verifiers", walk_verifier_row);
  if (rc == CL_OK && !w.found) {
    cl_err_set(err, errlen, "no verifier with public key %s", pk_hex);
    rc = CL_ENOTFOUND;
  }
  if (rc == CL_OK) {
    snprintf(chip_id, sizeof chip_id, "%lld", (long long)w.chip_id);
    snprintf(verifier_id, sizeof verifier_id, "%lld", (long long)w.verifier_id);
    rc = stream(&w.a, SQL_WALK, 4, p_walk, "reading attestations", walk_row);
    if (rc == WALK_END && w.ended) rc = CL_OK;
  }
  if (rc == CL_OK) rc = exec_cmd(&w.a, "COMMIT", "ending the chain's snapshot");
  PGTransactionStatusType t = PQtransactionStatus(c);
  if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR) PQclear(PQexec(c, "ROLLBACK"));
  cl_audit_report_free(&rep);
  if (verifier_name)
    *verifier_name = w.verifier_name;
  else
    free(w.verifier_name);
  return rc;
}

/* ---- one chip's chain, from the view -------------------------------------------- */

/* The verifier of the chip's newest attestation and how many attestations
 * of the chip it made ($1: the serial). */
static const char SQL_CHAIN_VERIFIER[] =
    "SELECT x.verifier_id, x.verifier_name, (SELECT count(*) FROM attestation_log y"
    " WHERE y.chip_serial = $1::text AND y.verifier_id = x.verifier_id)"
    " FROM attestation_log x WHERE x.chip_serial = $1::text"
    " ORDER BY x.round_end_ns DESC, x.id DESC LIMIT 1";

/*
 * That verifier's attestations of the chip ($2: its id) in chain order, in
 * the columns of ATTESTATION_ROWS (A_ID to A_RETIRED_ORDS) drawn from
 * attestation_log: the keys and the layout-1 signatures it carries in
 * arrays become the concatenations and counts that rebuild_attestation
 * reads. What only the audit follows (the declared site, the window's
 * start, retention) is NULL. $3 is CL_AUDIT_MAX_IDS, as for the audit.
 */
static const char SQL_CHAIN[] =
    "SELECT x.id, x.chip_id, x.verifier_id, x.chip_public_key, x.verifier_public_key,"
    " x.round_end_ns, x.window_ns, x.prev_hash, x.consistency_code, x.site_code, x.region_code,"
    " x.speed_m_s, x.centre_lat_e7, x.centre_lon_e7, x.radius_m, x.has_site_landmark,"
    " x.site_landmark_public_key, x.site_margin_m, x.allowed_regions,"
    " cardinality(x.excluded_landmark_keys)::bigint,"
    " (SELECT string_agg(k, ''::bytea) FROM unnest(x.excluded_landmark_keys) k),"
    " (SELECT count(k) FROM unnest(x.excluded_landmark_keys) k),"
    " cardinality(x.measurement_ids)::bigint,"
    " CASE WHEN cardinality(x.measurement_ids) <= $3::integer THEN"
    "  (SELECT string_agg(u.s, ''::bytea) FROM unnest(x.measurement_id_sigs) u(s)) END,"
    " CASE WHEN x.layout_version = 1 AND cardinality(x.measurement_ids) <= $3::integer THEN"
    "  (SELECT min(u.id) FROM unnest(x.measurement_ids, x.measurement_id_sigs) u(id, s)"
    "   WHERE u.s IS NULL) END,"
    " x.hash, x.signature, x.round_end, x.layout_version,"
    " CASE WHEN cardinality(x.measurement_sigs) <= $3::integer THEN x.measurement_sigs END,"
    " x.site_digest, x.landmarks_digest, x.regions_digest,"
    " NULL, NULL, NULL, NULL, NULL"
    " FROM attestation_log x WHERE x.chip_serial = $1::text AND x.verifier_id = $2::bigint"
    " ORDER BY x.round_end_ns, x.id";

/* cl_audit_chip_chain's walk: walk_row's state first (walk_row casts the
 * audit_ctx it is given to it), then the result. */
typedef struct {
  walk_ctx w;
  cl_audit_chain *out;
  char round_end[32]; /* the current row's round_end, ISO 8601 UTC */
} chain_ctx;

void cl_audit_chain_free(cl_audit_chain *c) {
  if (!c) return;
  free(c->verifier);
  memset(c, 0, sizeof *c);
}

static int chain_verifier_row(audit_ctx *a, const PGresult *r) {
  chain_ctx *x = (chain_ctx *)a;
  int ok = 1;
  x->w.verifier_id = col_int(r, 0, 8, &ok);
  x->out->records = col_int(r, 2, 8, &ok);
  if (!ok || PQgetisnull(r, 0, 1)) {
    cl_err_set(a->err, a->errlen, "attestation_log: a row without its verifier");
    return CL_EDB;
  }
  size_t n = (size_t)PQgetlength(r, 0, 1);
  if (!(x->out->verifier = malloc(n + 1))) {
    cl_err_set(a->err, a->errlen, "out of memory");
    return CL_ENOMEM;
  }
  memcpy(x->out->verifier, PQgetvalue(r, 0, 1), n);
  x->out->verifier[n] = '\0';
  return CL_OK;
}

/* Notes the row's round_end (a record that fails may not be rebuilt far
 * enough to give its signed one) and hands the row to walk_row. */
static int chain_row(audit_ctx *a, const PGresult *r) {
  chain_ctx *x = (chain_ctx *)a;
  int ok = 1;
  int64_t us = unix_us(col_int(r, A_ROUND_END, 8, &ok));
  time_t t = (time_t)(us / 1000000 - (us % 1000000 < 0));
  struct tm tm;
  x->round_end[0] = '\0';
  if (ok && gmtime_r(&t, &tm))
    strftime(x->round_end, sizeof x->round_end, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return walk_row(a, r);
}

/* The walk's fn: counts the records that pass and describes the first that
 * does not (the walk ends there). */
static int chain_record(void *arg, const cl_audit_record *rec) {
  chain_ctx *x = arg;
  if (rec->ok) {
    x->out->verified++;
    return 0;
  }
  x->out->bad = 1;
  x->out->bad_id = rec->id;
  x->out->bad_problem = rec->problem;
  snprintf(x->out->bad_round_end, sizeof x->out->bad_round_end, "%s", x->round_end);
  return 0;
}

int cl_audit_chip_chain(cl_store *s, const char *serial, cl_audit_chain *out, char *err,
                        size_t errlen) {
  if (!s || !serial || !out) return CL_EINVAL;
  memset(out, 0, sizeof *out);
  PGconn *c = NULL;
  int rc = snapshot_conn(s, "chain", &c, err, errlen);
  if (rc != CL_OK) return rc;
  cl_audit_report rep;
  memset(&rep, 0, sizeof rep);
  chain_ctx x;
  memset(&x, 0, sizeof x);
  x.w.a.c = c;
  x.w.a.rep = &rep;
  x.w.a.err = err;
  x.w.a.errlen = errlen;
  x.w.fn = chain_record;
  x.w.arg = &x;
  x.out = out;
  char verifier_id[24], max_ids[16];
  snprintf(max_ids, sizeof max_ids, "%d", CL_AUDIT_MAX_IDS);
  const char *params[3] = {serial, verifier_id, max_ids};
  rc = exec_cmd(&x.w.a, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                    "starting the chain's snapshot");
  if (rc == CL_OK)
    rc = stream(&x.w.a, SQL_CHAIN_VERIFIER, 1, params, "reading attestation_log",
                chain_verifier_row);
  if (rc == CL_OK && out->verifier) {
    snprintf(verifier_id, sizeof verifier_id, "%lld", (long long)x.w.verifier_id);
    rc = stream(&x.w.a, SQL_CHAIN, 3, params, "reading attestation_log", chain_row);
    if (rc == WALK_END && x.w.ended) rc = CL_OK;
  }
  PGTransactionStatusType t = PQtransactionStatus(c);
  if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR) PQclear(PQexec(c, "ROLLBACK"));
  cl_audit_report_free(&rep);
  if (rc != CL_OK) cl_audit_chain_free(out);
  return rc;
}
