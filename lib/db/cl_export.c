/* The export's reads of the dashboard views (see cl_export.h). */
#include "cl_export.h"
#include "cl_err.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(PGresult *r, PGconn *c, char *err, size_t errlen, const char *what) {
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

static int exec_cmd(PGconn *c, const char *sql, char *err, size_t errlen, const char *what) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) return fail(r, c, err, errlen, what);
  PQclear(r);
  return CL_OK;
}

/* Copy of a text column, or NULL (not an error) when the value is NULL. */
static int text_col(PGresult *r, int row, int col, char **out) {
  *out = NULL;
  if (PQgetisnull(r, row, col)) return CL_OK;
  *out = strdup(PQgetvalue(r, row, col));
  return *out ? CL_OK : CL_ENOMEM;
}

static double num_col(PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0.0 : strtod(PQgetvalue(r, row, col), NULL);
}

static int64_t int_col(PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int load_landmarks(PGconn *c, cl_export_world *w, char *err, size_t errlen) {
  PGresult *r = PQexecParams(c,
                             "SELECT landmark_id, name, lat, lon, "
                             "array_to_string(open_alerts, ','), measurements_1h "
                             "FROM landmark_health ORDER BY landmark_id",
                             0, NULL, NULL, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, err, errlen, "landmark_health");
  size_t n = (size_t)PQntuples(r);
  w->landmarks = calloc(n ? n : 1, sizeof *w->landmarks);
  if (!w->landmarks) {
    PQclear(r);
    return CL_ENOMEM;
  }
  int rc = CL_OK;
  for (size_t i = 0; i < n && rc == CL_OK; i++) {
    cl_export_landmark *l = &w->landmarks[i];
    w->n_landmarks = i + 1;
    l->id = int_col(r, (int)i, 0);
    l->lat = num_col(r, (int)i, 2);
    l->lon = num_col(r, (int)i, 3);
    l->measurements_1h = int_col(r, (int)i, 5);
    if ((rc = text_col(r, (int)i, 1, &l->name)) == CL_OK)
      rc = text_col(r, (int)i, 4, &l->open_alerts);
  }
  PQclear(r);
  return rc;
}

static int load_chips(PGconn *c, cl_export_world *w, char *err, size_t errlen) {
  PGresult *r = PQexecParams(
      c,
      "SELECT chip_id, serial, operator, site_lat, site_lon, active, round_end IS NOT NULL, "
      "to_char(round_end AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), consistency, "
      "site_verdict, region_verdict, radius_km, centre_lat, centre_lon, landmarks_used, "
      "array_to_string(open_alerts, ',') FROM chip_status ORDER BY chip_id",
      0, NULL, NULL, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, err, errlen, "chip_status");
  size_t n = (size_t)PQntuples(r);
  w->chips = calloc(n ? n : 1, sizeof *w->chips);
  if (!w->chips) {
    PQclear(r);
    return CL_ENOMEM;
  }
  int rc = CL_OK;
  for (size_t i = 0; i < n && rc == CL_OK; i++) {
    int row = (int)i;
    cl_export_chip *ch = &w->chips[i];
    w->n_chips = i + 1;
    ch->id = int_col(r, row, 0);
    ch->site_lat = num_col(r, row, 3);
    ch->site_lon = num_col(r, row, 4);
    ch->active = PQgetvalue(r, row, 5)[0] == 't';
    ch->attested = PQgetvalue(r, row, 6)[0] == 't';
    ch->has_region = ch->attested && !PQgetisnull(r, row, 11) && !PQgetisnull(r, row, 12) &&
                     !PQgetisnull(r, row, 13);
    ch->radius_km = num_col(r, row, 11);
    ch->centre_lat = num_col(r, row, 12);
    ch->centre_lon = num_col(r, row, 13);
    ch->landmarks_used = int_col(r, row, 14);
    const int cols[] = {1, 2, 7, 8, 9, 10, 15};
    char **dst[] = {&ch->serial,       &ch->operator_name,  &ch->round_end, &ch->consistency,
                    &ch->site_verdict, &ch->region_verdict, &ch->open_alerts};
    for (size_t k = 0; k < sizeof cols / sizeof cols[0] && rc == CL_OK; k++)
      rc = text_col(r, row, cols[k], dst[k]);
  }
  PQclear(r);
  return rc;
}

int cl_export_load(cl_store *s, cl_export_world *w, char *err, size_t errlen) {
  memset(w, 0, sizeof *w);
  if (!s) return CL_EINVAL;
  PGconn *c = cl_store_pgconn(s);
  int rc = exec_cmd(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen,
                    "starting a snapshot");
  if (rc != CL_OK) return rc;
  rc = load_landmarks(c, w, err, errlen);
  if (rc == CL_OK) rc = load_chips(c, w, err, errlen);
  PQclear(PQexec(c, "ROLLBACK")); /* read only: nothing to keep */
  if (rc == CL_ENOMEM) cl_err_set(err, errlen, "out of memory");
  if (rc != CL_OK) cl_export_free(w);
  return rc;
}

void cl_export_free(cl_export_world *w) {
  for (size_t i = 0; i < w->n_landmarks; i++) {
    free(w->landmarks[i].name);
    free(w->landmarks[i].open_alerts);
  }
  free(w->landmarks);
  for (size_t i = 0; i < w->n_chips; i++) {
    cl_export_chip *ch = &w->chips[i];
    free(ch->serial);
    free(ch->operator_name);
    free(ch->round_end);
    free(ch->consistency);
    free(ch->site_verdict);
    free(ch->region_verdict);
    free(ch->open_alerts);
  }
  free(w->chips);
  memset(w, 0, sizeof *w);
}
