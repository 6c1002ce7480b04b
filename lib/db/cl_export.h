/*
 * What `chiploc export` draws, read from the dashboard views only
 * (landmark_health, chip_status; schema 0003), so that the read-only
 * chiploc_dashboard role can export: every landmark with its open alerts,
 * every chip with its declared site, its latest attestation's verdicts and
 * feasible-region cap (centre, radius) and its open alerts. One snapshot
 * (a REPEATABLE READ, READ ONLY transaction). Blocking libpq through
 * cl_store; no SQL outside lib/.
 */
#ifndef CL_EXPORT_H
#define CL_EXPORT_H

#include "cl_store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int64_t id;
  char *name;
  double lat, lon;      /* declared position */
  char *open_alerts;    /* comma-separated kinds, sorted; "" if none */
  int64_t measurements_1h;
} cl_export_landmark;

typedef struct {
  int64_t id;
  char *serial, *operator_name;
  double site_lat, site_lon; /* declared site */
  int active;
  int attested;         /* the fields below are set only when 1 */
  char *round_end;      /* ISO 8601 UTC, e.g. 2024-05-01T12:00:10Z */
  char *consistency;    /* CONSISTENT, INSUFFICIENT, INCONSISTENT */
  char *site_verdict;   /* UNKNOWN, SITE_CONSISTENT, SITE_EXCLUDED */
  char *region_verdict; /* UNKNOWN, INSIDE, OUTSIDE, UNDETERMINED */
  int has_region;       /* CONSISTENT: the cap below contains F */
  double centre_lat, centre_lon, radius_km;
  int64_t landmarks_used;
  char *open_alerts;    /* comma-separated kinds, sorted; "" if none */
} cl_export_chip;

typedef struct {
  cl_export_landmark *landmarks; /* ordered by id */
  size_t n_landmarks;
  cl_export_chip *chips; /* ordered by id */
  size_t n_chips;
} cl_export_world;

/* Loads everything. 0, CL_EDB (err says why), CL_EPERM (the role may not
 * read the views) or CL_ENOMEM; on error *w is empty. */
int cl_export_load(cl_store *s, cl_export_world *w, char *err, size_t errlen);
void cl_export_free(cl_export_world *w);

#endif
