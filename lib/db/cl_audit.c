/*
 * The audit (see cl_audit.h): three streamed passes over one snapshot.
 *
 *  1. measurements: each row is rebuilt into a cl_measurement with the
 *     landmark's and the chip's enrolled keys and re-verified;
 *  2. landmark_links: the same, the peer landmark's key in the chip's part;
 *  3. attestations, in (chip, verifier, round) order: each row is rebuilt
 *     into a cl_attestation (keys through chips, verifiers and landmarks,
 *     digests from the named regions, landmarks and measurements), its
 *     signature and stored hash are checked, and its prev_hash is compared
 *     with the hash of the record before it in the same chain.
 *
 * Rows arrive in binary format in single-row mode, so no table is ever held
 * in memory. Each row yields at most one content finding (the first check
 * that fails); the chain check of an attestation is separate, because it
 * concerns the link between two rows.
 */
#include "cl_audit.h"
#include "cl_attest.h"
#include "cl_err.h"
#include "cl_layout.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_UNIX_US 946684800000000LL
/* Whole metres per second of c, for bound_m (docs/SCHEMA.md: c * rtt / 2). */
#define C_M_PER_S 299792458ULL

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
  }
  return "?";
}

void cl_audit_report_free(cl_audit_report *r) {
  if (!r) return;
  free(r->findings);
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

/* Both queries return the same columns: id, signer key, chip-part key, the
 * signed fields in layout order, bound_m and measured_at. */
static const char SQL_MEASUREMENTS[] =
    "SELECT m.id, l.public_key, c.public_key, m.nonce, m.issued_at_ns, m.seq, m.challenge_sig,"
    " m.chip_sig, m.rtt_ns, m.probe_count, m.measured_at_ns, m.landmark_sig, m.bound_m,"
    " m.measured_at"
    " FROM measurements m LEFT JOIN landmarks l ON l.id = m.landmark_id"
    " LEFT JOIN chips c ON c.id = m.chip_id";

static const char SQL_LINKS[] =
    "SELECT k.id, lf.public_key, lt.public_key, k.nonce, k.issued_at_ns, k.seq, k.challenge_sig,"
    " k.chip_sig, k.rtt_ns, k.probe_count, k.measured_at_ns, k.landmark_sig, k.bound_m,"
    " k.measured_at"
    " FROM landmark_links k LEFT JOIN landmarks lf ON lf.id = k.from_landmark_id"
    " LEFT JOIN landmarks lt ON lt.id = k.to_landmark_id";

/* Checks one measurement-shaped row of `table`. */
static int check_signed_row(audit_ctx *a, const PGresult *r, cl_audit_table table) {
  int ok = 1;
  int64_t id = col_int(r, 0, 8, &ok);
  if (!ok) {
    cl_err_set(a->err, a->errlen, "%s: a row without an id", cl_audit_table_name(table));
    return CL_EDB;
  }
  cl_measurement m;
  memset(&m, 0, sizeof m);
  int complete = col_bytes(r, 1, m.ch.landmark, CL_PK_LEN) &
                 col_bytes(r, 2, m.ch.chip, CL_PK_LEN) &
                 col_bytes(r, 3, m.ch.nonce, CL_NONCE_LEN) &
                 col_bytes(r, 6, m.ch.sig, CL_SIG_LEN) & col_bytes(r, 7, m.chip_sig, CL_SIG_LEN) &
                 col_bytes(r, 11, m.sig, CL_SIG_LEN);
  m.ch.issued_unix_ns = (uint64_t)col_int(r, 4, 8, &ok);
  m.ch.seq = (uint64_t)col_int(r, 5, 8, &ok);
  m.rtt_ns = (uint64_t)col_int(r, 8, 8, &ok);
  m.probe_count = (uint32_t)col_int(r, 9, 4, &ok);
  m.measured_unix_ns = (uint64_t)col_int(r, 10, 8, &ok);
  int64_t bound_m = col_int(r, 12, 8, &ok);
  int64_t measured_at = col_int(r, 13, 8, &ok);
  if (table == CL_AUDIT_MEASUREMENTS)
    a->rep->measurements++;
  else
    a->rep->links++;
  /* A missing key or a column of the wrong size cannot be signed data. */
  if (!complete || !ok || cl_measurement_verify(&m) != CL_OK)
    return add_finding(a, table, id, CL_AUDIT_SIGNATURE, 0);
  if (!time_matches(measured_at, (int64_t)m.measured_unix_ns) || !bound_matches(bound_m, m.rtt_ns))
    return add_finding(a, table, id, CL_AUDIT_DERIVED_COLUMN, 0);
  return CL_OK;
}

static int measurement_row(audit_ctx *a, const PGresult *r) {
  return check_signed_row(a, r, CL_AUDIT_MEASUREMENTS);
}

static int link_row(audit_ctx *a, const PGresult *r) {
  return check_signed_row(a, r, CL_AUDIT_LANDMARK_LINKS);
}

/* ---- pass 3: attestations ---------------------------------------------------- */

/*
 * One row per attestation, in chain order. $1 is CL_AUDIT_MAX_IDS: longer id
 * lists are not expanded (their row cannot have been signed by a verifier
 * and would only cost memory). Columns:
 *  0 id, 1 chip_id, 2 verifier_id, 3 chip key, 4 verifier key,
 *  5 round_end_ns, 6 window_ns, 7 prev_hash, 8 consistency, 9 site_verdict,
 *  10 region_verdict, 11 speed_m_s, 12 centre_lat_e7, 13 centre_lon_e7,
 *  14 radius_m, 15 site_landmark_id IS NOT NULL, 16 site landmark key,
 *  17 site_margin_m, 18 allowed_regions, 19 number of excluded ids,
 *  20 their keys concatenated, 21 how many of them exist, 22 number of
 *  measurement ids, 23 their landmark signatures concatenated, 24 the
 *  smallest id that names no measurement, 25 hash, 26 signature,
 *  27 round_end.
 */
static const char SQL_ATTESTATIONS[] =
    "SELECT a.id, a.chip_id, a.verifier_id, c.public_key, v.public_key, a.round_end_ns,"
    " a.window_ns, a.prev_hash, a.consistency, a.site_verdict, a.region_verdict, a.speed_m_s,"
    " a.centre_lat_e7, a.centre_lon_e7, a.radius_m, a.site_landmark_id IS NOT NULL,"
    " sl.public_key, a.site_margin_m, a.allowed_regions,"
    " cardinality(a.excluded_landmark_ids)::bigint,"
    " CASE WHEN cardinality(a.excluded_landmark_ids) <= $1::integer THEN"
    "  (SELECT string_agg(l.public_key, ''::bytea) FROM unnest(a.excluded_landmark_ids) e(id)"
    "   JOIN landmarks l ON l.id = e.id) END,"
    " CASE WHEN cardinality(a.excluded_landmark_ids) <= $1::integer THEN"
    "  (SELECT count(*) FROM unnest(a.excluded_landmark_ids) e(id)"
    "   JOIN landmarks l ON l.id = e.id) END,"
    " cardinality(a.measurement_ids)::bigint,"
    " CASE WHEN cardinality(a.measurement_ids) <= $1::integer THEN"
    "  (SELECT string_agg(m.landmark_sig, ''::bytea) FROM unnest(a.measurement_ids) u(id)"
    "   JOIN measurements m ON m.id = u.id) END,"
    " CASE WHEN cardinality(a.measurement_ids) <= $1::integer THEN"
    "  (SELECT min(u.id) FROM unnest(a.measurement_ids) u(id)"
    "   WHERE NOT EXISTS (SELECT 1 FROM measurements m WHERE m.id = u.id)) END,"
    " a.hash, a.signature, a.round_end"
    " FROM attestations a LEFT JOIN chips c ON c.id = a.chip_id"
    " LEFT JOIN verifiers v ON v.id = a.verifier_id"
    " LEFT JOIN landmarks sl ON sl.id = a.site_landmark_id"
    " ORDER BY a.chip_id, a.verifier_id, a.round_end_ns, a.id";

static int32_t be32s(const uint8_t *p) { return (int32_t)cl_get_be32(p); }

/*
 * Digest of a one-dimensional text[] in binary array format: SHA-256 of the
 * codes sorted bytewise and joined by ','. Returns CL_OK, CL_EMALFORMED for
 * anything else (more dimensions, NULL elements, a code holding NUL) or
 * CL_ENOMEM.
 */
static int digest_text_array(const uint8_t *p, size_t len, uint8_t out[CL_HASH_LEN]) {
  if (len < 12) return CL_EMALFORMED;
  int32_t ndim = be32s(p);
  if (ndim == 0) return cl_attest_digest_codes(NULL, 0, out);
  if (ndim != 1 || len < 20) return CL_EMALFORMED;
  int32_t n = be32s(p + 12);
  /* Every element takes at least its 4-byte length word. */
  if (n < 0 || (size_t)n > (len - 20) / 4) return CL_EMALFORMED;
  const char **codes = malloc(((size_t)n ? (size_t)n : 1) * sizeof *codes);
  char *text = malloc(len); /* the codes and their NULs fit in the value */
  if (!codes || !text) {
    free(codes);
    free(text);
    return CL_ENOMEM;
  }
  size_t off = 20, t = 0;
  int rc = CL_OK;
  for (int32_t i = 0; i < n && rc == CL_OK; i++) {
    if (len - off < 4) {
      rc = CL_EMALFORMED;
      break;
    }
    int32_t el = be32s(p + off);
    off += 4;
    if (el < 0 || (size_t)el > len - off || memchr(p + off, 0, (size_t)el)) {
      rc = CL_EMALFORMED;
      break;
    }
    memcpy(text + t, p + off, (size_t)el);
    codes[i] = text + t;
    t += (size_t)el;
    text[t++] = '\0';
    off += (size_t)el;
  }
  if (rc == CL_OK) rc = cl_attest_digest_codes(codes, (size_t)n, out);
  free(codes);
  free(text);
  return rc;
}

/* Rebuilds the attestation of row r. Returns 1 when every column and
 * referenced row was there and *at is complete, 0 when the row cannot be
 * the one a verifier signed (a key or a column is missing or malformed), or
 * a negative CL_* code (CL_ENOMEM). */
static int rebuild_attestation(const PGresult *r, cl_attestation *at) {
  memset(at, 0, sizeof *at);
  int ok = 1;
  int complete = col_bytes(r, 3, at->chip, CL_PK_LEN) &
                 col_bytes(r, 4, at->verifier, CL_PK_LEN) &
                 col_bytes(r, 7, at->prev_hash, CL_HASH_LEN) & col_bytes(r, 26, at->sig, CL_SIG_LEN);
  at->round_end_ns = (uint64_t)col_int(r, 5, 8, &ok);
  at->window_ns = (uint64_t)col_int(r, 6, 8, &ok);
  at->consistency = (uint8_t)col_int(r, 8, 2, &ok);
  at->site = (uint8_t)col_int(r, 9, 2, &ok);
  at->region = (uint8_t)col_int(r, 10, 2, &ok);
  at->speed_m_per_s = (uint64_t)col_int(r, 11, 8, &ok);
  at->centre_lat_e7 = (int32_t)col_int(r, 12, 4, &ok);
  at->centre_lon_e7 = (int32_t)col_int(r, 13, 4, &ok);
  at->radius_m = (uint64_t)col_int(r, 14, 8, &ok);
  at->site_margin_m = col_int(r, 17, 8, &ok);
  if (!complete || !ok) return 0;

  /* The site landmark's key, or zeros when there is none. */
  int has_site = PQgetlength(r, 0, 15) == 1 && PQgetvalue(r, 0, 15)[0] == 1;
  if (has_site && !col_bytes(r, 16, at->site_landmark, CL_PK_LEN)) return 0;

  int rc;
  if (PQgetisnull(r, 0, 18)) return 0;
  rc = digest_text_array((const uint8_t *)PQgetvalue(r, 0, 18), (size_t)PQgetlength(r, 0, 18),
                         at->allowed_digest);
  if (rc == CL_EMALFORMED) return 0;
  if (rc != CL_OK) return rc;

  /* Excluded landmarks: every id must name a landmark; at most 255 fit the
   * layout's count. */
  int64_t n_excl = col_int(r, 19, 8, &ok);
  if (!ok || n_excl < 0 || n_excl > 255) return 0;
  if (n_excl > 0) {
    int64_t found = col_int(r, 21, 8, &ok);
    if (!ok || found != n_excl || PQgetisnull(r, 0, 20) ||
        (size_t)PQgetlength(r, 0, 20) != (size_t)n_excl * CL_PK_LEN)
      return 0;
    rc = cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN])PQgetvalue(r, 0, 20), (size_t)n_excl,
                               at->excluded_digest);
  } else {
    rc = cl_attest_digest_keys(NULL, 0, at->excluded_digest);
  }
  if (rc != CL_OK) return rc;
  at->n_excluded = (uint8_t)n_excl;

  /* Measurements: as many signatures as ids (the caller has ruled out
   * missing ones); a duplicated id would add a signature and fail here. */
  int64_t n_meas = col_int(r, 22, 8, &ok);
  if (!ok || n_meas < 0 || n_meas > CL_AUDIT_MAX_IDS) return 0;
  if (n_meas > 0) {
    if (PQgetisnull(r, 0, 23) || (size_t)PQgetlength(r, 0, 23) != (size_t)n_meas * CL_SIG_LEN)
      return 0;
    rc = cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])PQgetvalue(r, 0, 23), (size_t)n_meas,
                               at->measurements_digest);
  } else {
    rc = cl_attest_digest_sigs(NULL, 0, at->measurements_digest);
  }
  if (rc != CL_OK) return rc;
  at->n_measurements = (uint32_t)n_meas;
  return 1;
}

/* Content checks of one attestation: at most one finding. *rebuilt is set
 * when the row could be rebuilt and its own hash is in rebuilt_hash. */
static int check_attestation(audit_ctx *a, const PGresult *r, int64_t id,
                             const uint8_t stored[CL_HASH_LEN], int *rebuilt,
                             uint8_t rebuilt_hash[CL_HASH_LEN]) {
  *rebuilt = 0;
  int ok = 1;
  /* A named measurement that is gone: deleted. Nothing else can be
   * rebuilt without its signature. */
  if (!PQgetisnull(r, 0, 24)) {
    int64_t missing = col_int(r, 24, 8, &ok);
    return add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_MEASUREMENT_MISSING, missing);
  }
  cl_attestation at;
  int got = rebuild_attestation(r, &at);
  if (got < 0) {
    cl_err_set(a->err, a->errlen, "attestation %lld: %s", (long long)id, cl_strerror(got));
    return got;
  }
  if (got == 0 || cl_attest_verify(&at) != CL_OK)
    return add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_ATTESTATION_SIGNATURE, 0);
  cl_attest_hash(&at, rebuilt_hash);
  *rebuilt = 1;
  if (memcmp(rebuilt_hash, stored, CL_HASH_LEN) != 0)
    return add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_HASH_MISMATCH, 0);
  int64_t round_end = col_int(r, 27, 8, &ok);
  if (!ok || !time_matches(round_end, (int64_t)at.round_end_ns))
    return add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_DERIVED_COLUMN, 0);
  return CL_OK;
}

static int all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

/* One attestation: its content, then its link to the previous record of
 * the same chip and verifier (rows arrive in chain order). */
static int attestation_row(audit_ctx *a, const PGresult *r) {
  int ok = 1;
  int64_t id = col_int(r, 0, 8, &ok);
  int64_t chip = col_int(r, 1, 8, &ok);
  int64_t verifier = col_int(r, 2, 8, &ok);
  uint8_t stored[CL_HASH_LEN], prev_hash[CL_HASH_LEN];
  if (!ok || !col_bytes(r, 25, stored, CL_HASH_LEN) || !col_bytes(r, 7, prev_hash, CL_HASH_LEN)) {
    cl_err_set(a->err, a->errlen, "attestations: a row without its id, chip, verifier or hashes");
    return CL_EDB;
  }
  a->rep->attestations++;
  int rebuilt = 0;
  uint8_t rebuilt_hash[CL_HASH_LEN];
  int rc = check_attestation(a, r, id, stored, &rebuilt, rebuilt_hash);
  if (rc != CL_OK) return rc;

  int first = !a->have_prev || a->prev_chip != chip || a->prev_verifier != verifier;
  if (first) {
    a->rep->chains++;
    if (!all_zero(prev_hash, CL_HASH_LEN))
      rc = add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_CHAIN_START, 0);
  } else {
    /* The previous record's stored hash and, when it could be rebuilt, the
     * hash of its contents both count: a record whose hash column alone was
     * edited is reported once, as a hash mismatch, not again here. */
    int linked = memcmp(prev_hash, a->prev_stored, CL_HASH_LEN) == 0 ||
                 (a->prev_rebuilt && memcmp(prev_hash, a->prev_rebuilt_hash, CL_HASH_LEN) == 0);
    if (!linked) rc = add_finding(a, CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_CHAIN_BREAK, a->prev_id);
  }
  a->have_prev = 1;
  a->prev_id = id;
  a->prev_chip = chip;
  a->prev_verifier = verifier;
  memcpy(a->prev_stored, stored, CL_HASH_LEN);
  a->prev_rebuilt = rebuilt;
  if (rebuilt) memcpy(a->prev_rebuilt_hash, rebuilt_hash, CL_HASH_LEN);
  return rc;
}

/* ---- the run ------------------------------------------------------------------- */

int cl_audit_run(cl_store *s, cl_audit_report *out, char *err, size_t errlen) {
  if (!s || !out) return CL_EINVAL;
  memset(out, 0, sizeof *out);
  PGconn *c = cl_store_pgconn(s);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    cl_err_set(err, errlen, "audit: not connected to the database");
    return CL_EDB;
  }
  if (PQtransactionStatus(c) != PQTRANS_IDLE) {
    cl_err_set(err, errlen, "audit: the connection is inside a transaction");
    return CL_EINVAL;
  }
  /* Binary timestamps are 64-bit microseconds only with integer datetimes
   * (the only kind since PostgreSQL 10). */
  const char *idt = PQparameterStatus(c, "integer_datetimes");
  if (!idt || strcmp(idt, "on") != 0) {
    cl_err_set(err, errlen, "audit: the server does not use integer timestamps");
    return CL_EDB;
  }
  audit_ctx a;
  memset(&a, 0, sizeof a);
  a.c = c;
  a.rep = out;
  a.err = err;
  a.errlen = errlen;
  char max_ids[16];
  snprintf(max_ids, sizeof max_ids, "%d", CL_AUDIT_MAX_IDS);
  const char *params[1] = {max_ids};

  /* One snapshot for all three passes: rows committed meanwhile by the
   * landmarks or the verifier are neither half-seen nor mistaken for gaps. */
  int rc = exec_cmd(&a, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                    "starting the audit transaction");
  if (rc == CL_OK) rc = stream(&a, SQL_MEASUREMENTS, 0, NULL, "reading measurements",
                               measurement_row);
  if (rc == CL_OK) rc = stream(&a, SQL_LINKS, 0, NULL, "reading landmark_links", link_row);
  if (rc == CL_OK)
    rc = stream(&a, SQL_ATTESTATIONS, 1, params, "reading attestations", attestation_row);
  if (rc == CL_OK) rc = exec_cmd(&a, "COMMIT", "ending the audit transaction");
  if (rc != CL_OK) {
    PGTransactionStatusType t = PQtransactionStatus(c);
    if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR) PQclear(PQexec(c, "ROLLBACK"));
    cl_audit_report_free(out);
    return rc;
  }
  if (out->n_findings > 1) qsort(out->findings, out->n_findings, sizeof *out->findings, cmp_finding);
  return CL_OK;
}
