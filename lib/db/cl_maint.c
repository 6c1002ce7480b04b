/* Partition maintenance: chiploc_maintain and a summary (see cl_maint.h). */
#include "cl_maint.h"
#include "cl_err.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes "what: server message" into err on one line, clears r, and maps
 * the SQLSTATE: insufficient_privilege is CL_EPERM, a data exception (a
 * bound chiploc_maintain checks) CL_EINVAL. */
static int fail(PGresult *r, PGconn *c, char *err, size_t errlen, const char *what) {
  const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  int code = CL_EDB;
  if (st && strcmp(st, "42501") == 0) code = CL_EPERM;
  if (st && strncmp(st, "22", 2) == 0) code = CL_EINVAL;
  const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  cl_err_set(err, errlen, "%s: %s", what, primary ? primary : PQerrorMessage(c));
  if (err && errlen)
    for (char *p = err; *p; p++)
      if (*p == '\n' || *p == '\t') *p = ' ';
  if (err && errlen) {
    size_t n = strlen(err);
    while (n > 0 && err[n - 1] == ' ') err[--n] = '\0';
  }
  if (r) PQclear(r);
  return code;
}

/* Copy of a text column, or NULL (not an error) when the value is NULL. */
static int text_col(const PGresult *r, int row, int col, char **out) {
  *out = NULL;
  if (PQgetisnull(r, row, col)) return CL_OK;
  *out = strdup(PQgetvalue(r, row, col));
  return *out ? CL_OK : CL_ENOMEM;
}

static int64_t int_col(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

const char *cl_maint_action_name(cl_maint_action a) {
  switch (a) {
  case CL_MAINT_CREATED: return "created";
  case CL_MAINT_ARCHIVED: return "archived";
  case CL_MAINT_DROPPED: return "dropped";
  }
  return "?";
}

/* The rows of chiploc_maintain into rep. */
static int take_changes(const PGresult *r, cl_maint_report *rep) {
  int n = PQntuples(r);
  rep->changes = n > 0 ? calloc((size_t)n, sizeof *rep->changes) : NULL;
  if (n > 0 && !rep->changes) return CL_ENOMEM;
  for (int i = 0; i < n; i++) {
    const char *action = PQgetvalue(r, i, 0);
    if (strcmp(action, "default") == 0) {
      rep->default_rows = int_col(r, i, 2);
      if (text_col(r, i, 3, &rep->default_newest) != CL_OK) return CL_ENOMEM;
      continue;
    }
    cl_maint_change *ch = &rep->changes[rep->n_changes];
    if (strcmp(action, "created") == 0)
      ch->action = CL_MAINT_CREATED;
    else if (strcmp(action, "archived") == 0)
      ch->action = CL_MAINT_ARCHIVED;
    else
      ch->action = CL_MAINT_DROPPED;
    if (text_col(r, i, 1, &ch->table) != CL_OK || !ch->table) return CL_ENOMEM;
    rep->n_changes++;
  }
  return CL_OK;
}

/* The partitions after the run, and the archive waiting to be dumped. */
static const char SQL_SUMMARY[] =
    "SELECT count(*), min(c.relname::text), max(c.relname::text),"
    " (SELECT count(*) FROM pg_class a JOIN pg_namespace n ON n.oid = a.relnamespace"
    "  WHERE n.nspname = 'chiploc_archive' AND a.relkind IN ('r', 'p'))"
    " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = 'public.measurements'::regclass"
    " AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'";

/* The claims of every round that ended more than $1 days before now(); the
 * cut is in the signed nanoseconds of round_end_ns, so a round goes whole. */
static const char SQL_CLAIMS[] =
    "DELETE FROM verifier_claims WHERE round_end_ns <"
    " (extract(epoch FROM now() - make_interval(days => $1::integer)) * 1e9)::bigint";

/* Ends the transaction that failed and passes on its code. */
static int abort_run(PGconn *c, cl_maint_report *rep, int rc) {
  PQclear(PQexec(c, "ROLLBACK"));
  cl_maint_report_free(rep);
  return rc;
}

int cl_maint_run(cl_store *s, int retain_months, int drop, int claims_days, cl_maint_report *rep,
                 char *err, size_t errlen) {
  if (!s || !rep) return CL_EINVAL;
  memset(rep, 0, sizeof *rep);
  if (retain_months < 0 || retain_months > CL_MAINT_RETAIN_MAX) {
    cl_err_set(err, errlen, "retention of %d months: must be 1 to %d, or 0 to keep everything",
               retain_months, CL_MAINT_RETAIN_MAX);
    return CL_EINVAL;
  }
  if (drop && retain_months == 0) {
    cl_err_set(err, errlen, "dropping needs a retention: nothing is past none");
    return CL_EINVAL;
  }
  if (claims_days < 0 || claims_days > CL_MAINT_CLAIMS_DAYS_MAX) {
    cl_err_set(err, errlen,
               "claims retention of %d days: must be 1 to %d, or 0 to keep every claim",
               claims_days, CL_MAINT_CLAIMS_DAYS_MAX);
    return CL_EINVAL;
  }
  PGconn *c = cl_store_pgconn(s);
  /* One transaction: the partitions and the claims change together or not
   * at all. */
  PGresult *r = PQexec(c, "BEGIN");
  if (PQresultStatus(r) != PGRES_COMMAND_OK) return fail(r, c, err, errlen, "BEGIN");
  PQclear(r);
  char months[16];
  snprintf(months, sizeof months, "%d", retain_months);
  const char *params[2] = {retain_months > 0 ? months : NULL, drop ? "true" : "false"};
  r = PQexecParams(c,
                   "SELECT action, partition, rows_left, detail"
                   " FROM chiploc_maintain($1::integer, $2::boolean)",
                   2, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    return abort_run(c, rep, fail(r, c, err, errlen, "chiploc_maintain"));
  int rc = take_changes(r, rep);
  PQclear(r);
  if (rc != CL_OK) {
    cl_err_set(err, errlen, "out of memory");
    return abort_run(c, rep, rc);
  }
  if (claims_days > 0) {
    char days[16];
    snprintf(days, sizeof days, "%d", claims_days);
    const char *dv[1] = {days};
    r = PQexecParams(c, SQL_CLAIMS, 1, NULL, dv, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      return abort_run(c, rep, fail(r, c, err, errlen, "deleting old verifier_claims"));
    rep->claims_deleted = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
  }
  r = PQexec(c, SQL_SUMMARY);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
    return abort_run(c, rep, fail(r, c, err, errlen, "reading the partitions of measurements"));
  rep->partitions = int_col(r, 0, 0);
  rep->archived_tables = int_col(r, 0, 3);
  if (text_col(r, 0, 1, &rep->oldest) != CL_OK || text_col(r, 0, 2, &rep->newest) != CL_OK) {
    PQclear(r);
    cl_err_set(err, errlen, "out of memory");
    return abort_run(c, rep, CL_ENOMEM);
  }
  PQclear(r);
  r = PQexec(c, "COMMIT");
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    cl_maint_report_free(rep);
    return fail(r, c, err, errlen, "COMMIT");
  }
  PQclear(r);
  return CL_OK;
}

void cl_maint_report_free(cl_maint_report *rep) {
  if (!rep) return;
  for (size_t i = 0; i < rep->n_changes; i++) free(rep->changes[i].table);
  free(rep->changes);
  free(rep->oldest);
  free(rep->newest);
  free(rep->default_newest);
  memset(rep, 0, sizeof *rep);
}
