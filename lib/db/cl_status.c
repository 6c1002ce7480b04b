/* The operators' reads of the views, and alert acknowledgements (see
 * cl_status.h). */
#include "cl_status.h"
#include "cl_err.h"

#include <assert.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Type oids of pg_type.h (server headers are not installed with libpq). */
enum {
  OID_BOOL = 16,
  OID_INT8 = 20,
  OID_INT2 = 21,
  OID_INT4 = 23,
  OID_FLOAT4 = 700,
  OID_FLOAT8 = 701,
  OID_TEXT_ARRAY = 1009,
  OID_NUMERIC = 1700,
};

/* A timestamptz as ISO 8601 UTC text to the second. */
#define ISO(x) "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static int fail(PGresult *r, PGconn *c, const char *what, char *err, size_t errlen) {
  const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  int code = st && strcmp(st, "42501") == 0 ? CL_EPERM : CL_EDB;
  cl_err_set(err, errlen, "%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
  if (err && errlen) {
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = '\0';
  }
  if (r) PQclear(r);
  return code;
}

int cl_status_col(const cl_status_rows *t, const char *name) {
  for (size_t j = 0; j < t->ncols; j++)
    if (strcmp(t->names[j], name) == 0) return (int)j;
  return -1;
}

const char *cl_status_cell(const cl_status_rows *t, size_t row, const char *name) {
  int j = cl_status_col(t, name);
  assert(j >= 0 && row < t->nrows);
  return t->cells[row * t->ncols + (size_t)j];
}

void cl_status_rows_free(cl_status_rows *t) {
  for (size_t i = 0; t->cells && i < t->nrows * t->ncols; i++) free(t->cells[i]);
  for (size_t j = 0; t->names && j < t->ncols; j++) free(t->names[j]);
  free(t->cells);
  free(t->names);
  free(t->types);
  memset(t, 0, sizeof *t);
}

static cl_status_type type_of(Oid oid) {
  switch (oid) {
  case OID_BOOL: return CL_STATUS_BOOL;
  case OID_INT2:
  case OID_INT4:
  case OID_INT8: return CL_STATUS_INT;
  case OID_FLOAT4:
  case OID_FLOAT8:
  case OID_NUMERIC: return CL_STATUS_REAL;
  case OID_TEXT_ARRAY: return CL_STATUS_LIST;
  default: return CL_STATUS_TEXT;
  }
}

/* A text[] literal such as {a,b} or {"a b"} as its elements joined by ','
 * (malloc'd; "" for {}). Elements are alert kinds: no ',' of their own. */
static char *list_text(const char *lit) {
  size_t n = strlen(lit);
  char *out = malloc(n + 1), *o = out;
  if (!out) return NULL;
  const char *p = lit;
  if (*p == '{') p++;
  int quoted = 0;
  for (; *p; p++) {
    if (quoted && *p == '\\' && p[1]) {
      *o++ = *++p;
    } else if (*p == '"') {
      quoted = !quoted;
    } else if (!quoted && *p == '}') {
      break;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return out;
}

/* Copies a result into *out. CL_ENOMEM. */
static int rows_from(PGresult *r, cl_status_rows *out) {
  memset(out, 0, sizeof *out);
  size_t nc = (size_t)PQnfields(r), nr = (size_t)PQntuples(r);
  out->names = calloc(nc ? nc : 1, sizeof *out->names);
  out->types = calloc(nc ? nc : 1, sizeof *out->types);
  out->cells = calloc(nr * nc > 0 ? nr * nc : 1, sizeof *out->cells);
  if (!out->names || !out->types || !out->cells) goto oom;
  out->ncols = nc;
  out->nrows = nr;
  for (size_t j = 0; j < nc; j++) {
    out->types[j] = type_of(PQftype(r, (int)j));
    if (!(out->names[j] = strdup(PQfname(r, (int)j)))) goto oom;
  }
  for (size_t i = 0; i < nr; i++)
    for (size_t j = 0; j < nc; j++) {
      if (PQgetisnull(r, (int)i, (int)j)) continue;
      const char *v = PQgetvalue(r, (int)i, (int)j);
      char *c = out->types[j] == CL_STATUS_LIST ? list_text(v) : strdup(v);
      if (!c) goto oom;
      out->cells[i * nc + j] = c;
    }
  return CL_OK;
oom:
  cl_status_rows_free(out);
  return CL_ENOMEM;
}

/* Runs a query with n text parameters (NULL for SQL NULL) into *out. */
static int query(PGconn *c, const char *what, const char *sql, int n, const char *const *vals,
                 cl_status_rows *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, what, err, errlen);
  int rc = rows_from(r, out);
  PQclear(r);
  if (rc != CL_OK) cl_err_set(err, errlen, "%s: out of memory", what);
  return rc;
}

/* Several reads that must agree run in one snapshot. */
static int snapshot(PGconn *c, char *err, size_t errlen) {
  PGresult *r = PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (PQresultStatus(r) != PGRES_COMMAND_OK) return fail(r, c, "starting a snapshot", err, errlen);
  PQclear(r);
  return CL_OK;
}

static void snapshot_end(PGconn *c) { PQclear(PQexec(c, "ROLLBACK")); /* nothing to keep */ }

/* CL_OK when a chip has this serial, else CL_ENOTFOUND with err set. */
static int chip_exists(PGconn *c, const char *serial, char *err, size_t errlen) {
  const char *v[1] = {serial};
  cl_status_rows t;
  int rc = query(c, "looking up the chip", "SELECT 1 FROM chip_status WHERE serial = $1::text", 1,
                 v, &t, err, errlen);
  if (rc != CL_OK) return rc;
  size_t n = t.nrows;
  cl_status_rows_free(&t);
  if (n > 0) return CL_OK;
  cl_err_set(err, errlen, "no chip with serial \"%.80s\" (see chiploc chip list)", serial);
  return CL_ENOTFOUND;
}

/* ---- status ------------------------------------------------------------------ */

/* A landmark's state ($1: seconds without a row before it is stale). */
#define LANDMARK_STATE                                                                        \
  "CASE WHEN retired_at <= now() THEN retire_kind"                                            \
  " WHEN greatest(last_probe, last_link) > now() - make_interval(secs => $1::float8)"         \
  " THEN 'healthy' ELSE 'stale' END"

int cl_status_summary_load(cl_store *s, int64_t stale_s, cl_status_summary *out, char *err,
                           size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!s || stale_s < 1 || stale_s > 3600) return CL_EINVAL;
  PGconn *c = cl_store_pgconn(s);
  char stale[24];
  snprintf(stale, sizeof stale, "%" PRId64, stale_s);
  const char *v[1] = {stale};
  int rc = snapshot(c, err, errlen);
  if (rc != CL_OK) return rc;
  rc = query(c, "chip_status",
             "SELECT count(*) AS enrolled, count(*) FILTER (WHERE active) AS active,"
             " count(*) FILTER (WHERE NOT active) AS inactive,"
             " count(*) FILTER (WHERE active AND round_end IS NULL) AS never_attested"
             " FROM chip_status",
             0, NULL, &out->chips, err, errlen);
  if (rc == CL_OK)
    rc = query(c, "chip_status",
               "SELECT 'consistency' AS verdict, consistency AS value, count(*) AS chips"
               " FROM chip_status WHERE active AND round_end IS NOT NULL GROUP BY consistency"
               " UNION ALL SELECT 'site_verdict', site_verdict, count(*) FROM chip_status"
               " WHERE active AND round_end IS NOT NULL GROUP BY site_verdict"
               " UNION ALL SELECT 'region_verdict', region_verdict, count(*) FROM chip_status"
               " WHERE active AND round_end IS NOT NULL GROUP BY region_verdict ORDER BY 1, 2",
               0, NULL, &out->verdicts, err, errlen);
  if (rc == CL_OK)
    rc = query(c, "landmark_health",
               "SELECT " LANDMARK_STATE " AS state, count(*) AS landmarks FROM landmark_health"
               " GROUP BY 1 ORDER BY 1",
               1, v, &out->landmarks, err, errlen);
  if (rc == CL_OK)
    rc = query(c, "open_alerts",
               "SELECT kind, count(*) AS open, count(acked_at) AS acked FROM open_alerts"
               " GROUP BY kind ORDER BY kind",
               0, NULL, &out->alerts, err, errlen);
  if (rc == CL_OK)
    rc = query(c, "chip_status",
               "SELECT " ISO("max(round_end)") " AS round_end,"
               " floor(extract(epoch FROM now() - max(round_end)))::bigint AS age_s"
               " FROM chip_status",
               0, NULL, &out->round, err, errlen);
  snapshot_end(c);
  if (rc != CL_OK) cl_status_summary_free(out);
  return rc;
}

void cl_status_summary_free(cl_status_summary *sum) {
  cl_status_rows_free(&sum->chips);
  cl_status_rows_free(&sum->verdicts);
  cl_status_rows_free(&sum->landmarks);
  cl_status_rows_free(&sum->alerts);
  cl_status_rows_free(&sum->round);
}

/* ---- chips ------------------------------------------------------------------- */

#define CHIP_COLUMNS                                                                          \
  "serial, operator, active, consistency, site_verdict, region_verdict, radius_km,"          \
  " centre_lat, centre_lon, site_lat, site_lon, landmarks_used, " ISO("round_end")           \
  " AS round_end, " ISO("last_seen") " AS last_seen, open_alerts"

int cl_status_chips(cl_store *s, const char *operator_name, const char *verdict,
                    cl_status_rows *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!s) return CL_EINVAL;
  const char *v[2] = {operator_name, verdict};
  return query(cl_store_pgconn(s), "chip_status",
               "SELECT " CHIP_COLUMNS " FROM chip_status"
               " WHERE ($1::text IS NULL OR operator = $1::text)"
               " AND ($2::text IS NULL OR ($2::text = 'NONE' AND round_end IS NULL)"
               " OR $2::text IN (consistency, site_verdict, region_verdict))"
               " ORDER BY serial",
               2, v, out, err, errlen);
}

/* The window of `chip show` ($2: seconds up to now, 0 for the latest
 * attestation's window). */
#define WIN_END "(CASE WHEN $2::bigint > 0 OR round_end IS NULL THEN now() ELSE round_end END)"
#define WIN_START                                                                             \
  "(" WIN_END " - make_interval(secs => (CASE WHEN $2::bigint > 0 THEN $2::bigint"           \
  " WHEN round_end IS NULL THEN 300 ELSE window_s END)::float8))"

#define ALERT_COLUMNS                                                                         \
  "id, kind, state, CASE WHEN chip_serial IS NOT NULL THEN 'chip'"                           \
  " WHEN landmark_name IS NOT NULL THEN 'landmark' ELSE 'verifier' END AS subject_type,"     \
  " coalesce(chip_serial, landmark_name, verifier_name) AS subject, " ISO("raised_at")       \
  " AS raised_at, " ISO("cleared_at") " AS cleared_at, " ISO("acked_at")                     \
  " AS acked_at, acked_by, ack_reason, acked_login, detail"

int cl_status_chip(cl_store *s, const char *serial, int64_t window_s, cl_status_chip_detail *out,
                   char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!s || !serial || window_s < 0) return CL_EINVAL;
  PGconn *c = cl_store_pgconn(s);
  char win[24];
  snprintf(win, sizeof win, "%" PRId64, window_s);
  const char *v[2] = {serial, win};
  int rc = snapshot(c, err, errlen);
  if (rc != CL_OK) return rc;
  rc = query(c, "chip_status",
             "SELECT " CHIP_COLUMNS ", verifier_name AS verifier, " ISO("attested_at")
             " AS attested_at, window_s, chain_position, attestation_hash, " ISO(WIN_START)
             " AS window_start, " ISO(WIN_END) " AS window_end"
             " FROM chip_status WHERE serial = $1::text",
             2, v, &out->chip, err, errlen);
  if (rc == CL_OK && out->chip.nrows == 0) {
    cl_err_set(err, errlen, "no chip with serial \"%.80s\" (see chiploc chip list)", serial);
    rc = CL_ENOTFOUND;
  }
  if (rc == CL_OK)
    rc = query(c, "measurement_log",
               "WITH w AS (SELECT " WIN_START " AS lo, " WIN_END " AS hi,"
               " coalesce(measurement_ids, '{}') AS ids FROM chip_status WHERE serial = $1::text)"
               " SELECT m.landmark_name AS landmark, count(*) AS records,"
               " min(m.rtt_ns) AS min_rtt_ns, min(m.bound_m) AS min_bound_m, "
               ISO("max(m.measured_at)") " AS last_measured, bool_or(m.id = ANY (w.ids)) AS used"
               " FROM measurement_log m, w WHERE m.chip_serial = $1::text"
               " AND m.measured_at > w.lo AND m.measured_at <= w.hi"
               " GROUP BY m.landmark_name ORDER BY m.landmark_name",
               2, v, &out->landmarks, err, errlen);
  if (rc == CL_OK)
    rc = query(c, "alert_log",
               "SELECT " ALERT_COLUMNS " FROM alert_log"
               " WHERE chip_serial = $1::text AND cleared_at IS NULL ORDER BY raised_at, id",
               1, v, &out->alerts, err, errlen);
  snapshot_end(c);
  if (rc != CL_OK) cl_status_chip_free(out);
  return rc;
}

void cl_status_chip_free(cl_status_chip_detail *d) {
  cl_status_rows_free(&d->chip);
  cl_status_rows_free(&d->landmarks);
  cl_status_rows_free(&d->alerts);
}

/* ---- landmarks --------------------------------------------------------------- */

int cl_status_landmarks(cl_store *s, int64_t stale_s, cl_status_rows *out, char *err,
                        size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!s || stale_s < 1 || stale_s > 3600) return CL_EINVAL;
  char stale[24];
  snprintf(stale, sizeof stale, "%" PRId64, stale_s);
  const char *v[1] = {stale};
  return query(cl_store_pgconn(s), "landmark_health",
               "SELECT name, lat, lon, " LANDMARK_STATE " AS state, " ISO("retired_at")
               " AS retired_at, retire_kind, " ISO("last_probe") " AS last_measured,"
               " measurements_1h, " ISO("last_link") " AS last_link, links_1h, peers_1h,"
               " open_alerts FROM landmark_health ORDER BY name",
               1, v, out, err, errlen);
}

/* ---- alerts ------------------------------------------------------------------ */

int cl_status_alerts(cl_store *s, const char *chip, const char *kind, int64_t since_s,
                     cl_status_rows *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!s) return CL_EINVAL;
  PGconn *c = cl_store_pgconn(s);
  if (chip) {
    int rc = chip_exists(c, chip, err, errlen);
    if (rc != CL_OK) return rc;
  }
  char since[24];
  snprintf(since, sizeof since, "%" PRId64, since_s);
  const char *v[3] = {chip, kind, since};
  return query(c, "alert_log",
               "SELECT " ALERT_COLUMNS " FROM alert_log"
               " WHERE ($1::text IS NULL OR chip_serial = $1::text)"
               " AND ($2::text IS NULL OR kind = $2::text)"
               " AND (cleared_at IS NULL OR $3::bigint < 0 OR ($3::bigint > 0"
               " AND cleared_at > now() - make_interval(secs => $3::float8)))"
               " ORDER BY raised_at, id",
               3, v, out, err, errlen);
}

int cl_status_alert_ack(cl_store *s, int64_t id, const char *by, const char *reason, char *err,
                        size_t errlen) {
  if (!s || !by || !reason) return CL_EINVAL;
  if (!by[0] || !reason[0]) {
    cl_err_set(err, errlen, "an acknowledgement names who (--by) and why (--reason)");
    return CL_EINVAL;
  }
  PGconn *c = cl_store_pgconn(s);
  char sid[24];
  snprintf(sid, sizeof sid, "%" PRId64, id);
  const char *v[3] = {sid, by, reason};
  PGresult *r = PQexecParams(c,
                             "UPDATE alerts SET acked_at = now(), acked_by = $2::text,"
                             " ack_reason = $3::text, acked_login = session_user"
                             " WHERE id = $1::bigint AND cleared_at IS NULL AND acked_at IS NULL",
                             3, NULL, v, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    int rc = fail(r, c, "acknowledging", err, errlen);
    if (rc == CL_EPERM) {
      char why[256];
      snprintf(why, sizeof why, "%s", err ? err : "");
      cl_err_set(err, errlen, "%s (acknowledging takes a member of chiploc_admin)", why);
    }
    return rc;
  }
  int done = strcmp(PQcmdTuples(r), "1") == 0;
  PQclear(r);
  if (done) return CL_OK;
  /* Nothing changed: say why. */
  cl_status_rows t;
  int rc = query(c, "alert_log",
                 "SELECT state, acked_by, " ISO("acked_at") " AS acked_at, " ISO("cleared_at")
                 " AS cleared_at FROM alert_log WHERE id = $1::bigint",
                 1, v, &t, err, errlen);
  if (rc != CL_OK) return rc;
  if (t.nrows == 0) {
    cl_err_set(err, errlen, "no alert with id %" PRId64 " (see chiploc alerts)", id);
    rc = CL_ENOTFOUND;
  } else if (strcmp(cl_status_cell(&t, 0, "state"), "cleared") == 0) {
    cl_err_set(err, errlen, "alert %" PRId64 " was cleared at %s: nothing to acknowledge", id,
               cl_status_cell(&t, 0, "cleared_at"));
    rc = CL_EINVAL;
  } else {
    cl_err_set(err, errlen, "alert %" PRId64 " was acknowledged by %.80s at %s already", id,
               cl_status_cell(&t, 0, "acked_by"), cl_status_cell(&t, 0, "acked_at"));
    rc = CL_EEXIST;
  }
  cl_status_rows_free(&t);
  return rc;
}

/* ---- measurements and links -------------------------------------------------- */

int cl_status_measurements(cl_store *s, int64_t since_s, const char *chip, cl_status_rows *out,
                           char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!s || since_s <= 0) return CL_EINVAL;
  PGconn *c = cl_store_pgconn(s);
  if (chip) {
    int rc = chip_exists(c, chip, err, errlen);
    if (rc != CL_OK) return rc;
  }
  char since[24];
  snprintf(since, sizeof since, "%" PRId64, since_s);
  const char *v[2] = {since, chip};
  return query(c, "measurement_log",
               "SELECT chip_serial AS chip, landmark_name AS landmark, count(*) AS records,"
               " min(rtt_ns) AS min_rtt_ns, min(bound_m) AS min_bound_m, "
               ISO("max(measured_at)") " AS last_measured FROM measurement_log"
               " WHERE measured_at >= now() - make_interval(secs => $1::float8)"
               " AND ($2::text IS NULL OR chip_serial = $2::text)"
               " GROUP BY chip_serial, landmark_name ORDER BY chip_serial, landmark_name",
               2, v, out, err, errlen);
}

int cl_status_links(cl_store *s, int64_t since_s, cl_status_rows *out, char *err,
                    size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!s || since_s <= 0) return CL_EINVAL;
  char since[24];
  snprintf(since, sizeof since, "%" PRId64, since_s);
  const char *v[1] = {since};
  return query(cl_store_pgconn(s), "link_log",
               "SELECT from_landmark, to_landmark, count(*) AS records,"
               " min(rtt_ns) AS min_rtt_ns, min(bound_m) AS min_bound_m, "
               ISO("max(measured_at)") " AS last_measured FROM link_log"
               " WHERE measured_at >= now() - make_interval(secs => $1::float8)"
               " GROUP BY from_landmark, to_landmark ORDER BY from_landmark, to_landmark",
               1, v, out, err, errlen);
}

/* ---- the dashboard's reads --------------------------------------------------- */

int cl_status_history(cl_store *s, const char *serial, int64_t limit, cl_status_rows *out,
                      char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!s || !serial || limit < 1 || limit > 10000) return CL_EINVAL;
  char lim[24];
  snprintf(lim, sizeof lim, "%" PRId64, limit);
  const char *v[2] = {serial, lim};
  return query(cl_store_pgconn(s), "attestation_log",
               "SELECT " ISO("round_end") " AS round_end, consistency, site_verdict,"
               " region_verdict, radius_km, centre_lat, centre_lon, landmarks_used,"
               " verifier_name AS verifier, " ISO("attested_at") " AS attested_at"
               " FROM attestation_log WHERE chip_serial = $1::text"
               " ORDER BY round_end_ns DESC, id DESC LIMIT $2::bigint",
               2, v, out, err, errlen);
}

int cl_status_allowed(cl_store *s, const char *serial, cl_status_rows *out, char *err,
                      size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!s) return CL_EINVAL;
  const char *v[1] = {serial};
  return query(cl_store_pgconn(s), "chip_allowed",
               "SELECT chip_serial AS chip, array_agg(code ORDER BY code) AS allowed"
               " FROM chip_allowed WHERE $1::text IS NULL OR chip_serial = $1::text"
               " GROUP BY chip_serial ORDER BY chip_serial",
               1, v, out, err, errlen);
}

int cl_status_region_shapes(cl_store *s, cl_status_rows *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (!s) return CL_EINVAL;
  return query(cl_store_pgconn(s), "region_shapes",
               "SELECT code, name, geojson::text AS geojson FROM region_shapes ORDER BY code", 0,
               NULL, out, err, errlen);
}
