/*
 * What the operators' read commands of the chiploc CLI show (`status`,
 * `chip list|show`, `landmark list`, `alerts`, `measurements`, `links`)
 * and what `chiploc dashboard` serves, read from the views of schema 0003
 * to 0009 only, so that the read-only
 * chiploc_dashboard and chiploc_auditor roles can run them; and the one
 * write among them, `alerts ack` (chiploc_admin). Subjects are named by
 * chip serial and landmark name, never by id. Times are ISO 8601 UTC text
 * to the second. Blocking libpq through cl_store; no SQL outside lib/.
 *
 * A result is a small table: named, typed columns (the names are the keys
 * of the CLI's JSON, docs/OPERATIONS.md) and text cells as PostgreSQL
 * prints them, NULL for SQL NULL.
 */
#ifndef CL_STATUS_H
#define CL_STATUS_H

#include "cl_store.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
  CL_STATUS_TEXT = 0, /* text, times included */
  CL_STATUS_INT,      /* a whole number, e.g. "-12" */
  CL_STATUS_REAL,     /* a decimal or floating-point number */
  CL_STATUS_BOOL,     /* "t" or "f" */
  CL_STATUS_LIST,     /* a list of words (alert kinds) joined by ',', "" when empty */
} cl_status_type;

typedef struct {
  size_t ncols, nrows;
  char **names;          /* ncols column names */
  cl_status_type *types; /* ncols column types */
  char **cells;          /* nrows * ncols, row-major; NULL for SQL NULL */
} cl_status_rows;

/* Column `name`'s index, or -1 when the result has no such column. */
int cl_status_col(const cl_status_rows *t, const char *name);
/* The cell of row `row` in column `name` (NULL for SQL NULL). The column
 * must exist (asserted). */
const char *cl_status_cell(const cl_status_rows *t, size_t row, const char *name);
void cl_status_rows_free(cl_status_rows *t);

/*
 * The fleet at a glance, one snapshot:
 *   chips      one row: enrolled, active, inactive, never_attested (active
 *              chips without an attestation);
 *   verdicts   the latest verdicts of the active, attested chips: rows of
 *              verdict (consistency, site_verdict or region_verdict), value
 *              (CONSISTENT, SITE_EXCLUDED, ...) and chips;
 *   landmarks  rows of state (healthy, stale, retired, revoked; see
 *              cl_status_landmarks) and landmarks;
 *   alerts     the open alerts per kind: kind, open, acked (of them);
 *   round      one row: round_end (the newest attestation's round, NULL
 *              without one) and age_s (seconds since, by the database's
 *              clock).
 * stale_s: 1 to 3600.
 */
typedef struct {
  cl_status_rows chips, verdicts, landmarks, alerts, round;
} cl_status_summary;
int cl_status_summary_load(cl_store *s, int64_t stale_s, cl_status_summary *out, char *err,
                           size_t errlen);
void cl_status_summary_free(cl_status_summary *sum);

/*
 * Every chip, by serial: serial, operator, active, consistency,
 * site_verdict, region_verdict (NULL when never attested), radius_km,
 * centre_lat, centre_lon (NULL unless CONSISTENT), site_lat, site_lon,
 * landmarks_used, round_end, last_seen (newest measurement) and
 * open_alerts (LIST). operator_name and verdict (both may be NULL) filter:
 * verdict is a consistency, site or region verdict name, or NONE for the
 * chips never attested.
 */
int cl_status_chips(cl_store *s, const char *operator_name, const char *verdict,
                    cl_status_rows *out, char *err, size_t errlen);

/*
 * One chip, one snapshot:
 *   chip       one row: the columns of cl_status_chips, and verifier,
 *              attested_at, window_s, chain_position (1 for the first
 *              record of that verifier's chain of the chip),
 *              attestation_hash (hex), window_start, window_end;
 *   landmarks  per landmark that measured the chip in that window: landmark,
 *              records, min_rtt_ns, min_bound_m (the bound at c of the
 *              fastest), last_measured and used (the latest attestation
 *              cites one of these records);
 *   alerts     its open alerts, as cl_status_alerts.
 * The window is the latest attestation's, (round_end - window, round_end];
 * with window_s > 0, or for a chip never attested (then window_s 300 when
 * 0), the window_s seconds up to now. CL_ENOTFOUND for an unknown serial.
 */
typedef struct {
  cl_status_rows chip, landmarks, alerts;
} cl_status_chip_detail;
int cl_status_chip(cl_store *s, const char *serial, int64_t window_s, cl_status_chip_detail *out,
                   char *err, size_t errlen);
void cl_status_chip_free(cl_status_chip_detail *d);

/*
 * Every landmark, by name: name, lat, lon, state, retired_at, retire_kind,
 * last_measured, measurements_1h, last_link, links_1h, peers_1h and
 * open_alerts (LIST). state is 'retired' or 'revoked' once its retirement
 * is in effect; else 'healthy' when it measured a chip or probed a peer
 * landmark in the last stale_s seconds (1 to 3600; the measurement's signed
 * time), 'stale' when not. last_measured and last_link look back one hour
 * (landmark_health): NULL means none in the last hour.
 */
int cl_status_landmarks(cl_store *s, int64_t stale_s, cl_status_rows *out, char *err,
                        size_t errlen);

/*
 * Alerts, oldest first: id, kind, state ('open', 'acked' or 'cleared'),
 * subject_type ('chip', 'landmark' or 'verifier'), subject (its serial or
 * name), raised_at, cleared_at, acked_at, acked_by, ack_reason, acked_login
 * and detail. The open ones (acknowledged included); with since_s > 0 also
 * those cleared in the last since_s seconds; with since_s < 0 all. chip
 * and kind (may be NULL) filter; CL_ENOTFOUND for an unknown chip.
 */
int cl_status_alerts(cl_store *s, const char *chip, const char *kind, int64_t since_s,
                     cl_status_rows *out, char *err, size_t errlen);

/*
 * Acknowledges open alert `id` (schema 0006): who (by) and why (reason),
 * both non-empty, with the time and the database login. The alert stays
 * open until the verifier clears it. CL_ENOTFOUND (no such alert),
 * CL_EEXIST (acknowledged already: err says by whom and when), CL_EINVAL
 * (cleared already, or an empty by or reason), CL_EPERM (a login that may
 * not; err names the role that may).
 */
int cl_status_alert_ack(cl_store *s, int64_t id, const char *by, const char *reason, char *err,
                        size_t errlen);

/*
 * The measurements of the last since_s seconds (> 0) per chip and
 * landmark, by serial then name: chip, landmark, records, min_rtt_ns,
 * min_bound_m (bound at c of the fastest), last_measured. chip (may be
 * NULL) filters; CL_ENOTFOUND for an unknown chip.
 */
int cl_status_measurements(cl_store *s, int64_t since_s, const char *chip, cl_status_rows *out,
                           char *err, size_t errlen);

/* The landmark links of the last since_s seconds (> 0) per probing and
 * probed landmark, by name: from_landmark, to_landmark, records,
 * min_rtt_ns, min_bound_m, last_measured. */
int cl_status_links(cl_store *s, int64_t since_s, cl_status_rows *out, char *err,
                    size_t errlen);

/* ---- the dashboard's reads (views of schema 0009) ------------------------------ */

/*
 * The chip's attestations, newest first, at most `limit` (1 to 10000):
 * round_end, consistency, site_verdict, region_verdict, radius_km,
 * centre_lat, centre_lon (NULL unless CONSISTENT), landmarks_used, verifier
 * and attested_at (attestation_log). No rows for an unknown serial.
 */
int cl_status_history(cl_store *s, const char *serial, int64_t limit, cl_status_rows *out,
                      char *err, size_t errlen);

/* The allowed regions of the chips that have any, by serial: chip and
 * allowed (LIST of region codes, sorted; codes hold no ','). serial (may be
 * NULL) keeps one chip. */
int cl_status_allowed(cl_store *s, const char *serial, cl_status_rows *out, char *err,
                      size_t errlen);

/* Every imported region, by code: code, name (may be NULL) and geojson,
 * the MultiPolygon's GeoJSON text as stored (region_shapes). */
int cl_status_region_shapes(cl_store *s, cl_status_rows *out, char *err, size_t errlen);

#endif
