/*
 * Partition maintenance of the measurements table (schema 0007,
 * docs/SCHEMA.md "Partitions"): pg_partman makes the coming months'
 * partitions, and a retention, when asked for, detaches the months past it.
 * All of it is the SQL function chiploc_maintain, which only chiploc_admin
 * and the owner may run; this module calls it and reads back what it did.
 * It also deletes the verifier pools' old claims (schema 0010), a record
 * that nothing else removes. Blocking libpq through cl_store.
 */
#ifndef CL_MAINT_H
#define CL_MAINT_H

#include "cl_store.h"

#include <stddef.h>
#include <stdint.h>

/* Longest retention `--retain-months` accepts (chiploc_maintain's bound). */
#define CL_MAINT_RETAIN_MAX 1200
/* Default and longest retention of verifier_claims, `--claims-days`. */
#define CL_MAINT_CLAIMS_DAYS 7
#define CL_MAINT_CLAIMS_DAYS_MAX 36500

typedef enum {
  CL_MAINT_CREATED = 0, /* a partition made for a coming month, or for rows of the default */
  CL_MAINT_ARCHIVED,    /* detached into schema chiploc_archive, rows kept */
  CL_MAINT_DROPPED,     /* detached and dropped, rows gone */
} cl_maint_action;

typedef struct {
  cl_maint_action action;
  char *table; /* schema-qualified for an archived one: chiploc_archive.measurements_p2025_01 */
} cl_maint_change;

typedef struct {
  cl_maint_change *changes; /* created ones first, by name; then archived and dropped */
  size_t n_changes;
  int64_t partitions;       /* monthly partitions of measurements after the run */
  char *oldest, *newest;    /* their first and last name; NULL when there are none */
  int64_t default_rows;     /* rows left in measurements_default (dated past the premake) */
  char *default_newest;     /* the newest of them, as PostgreSQL prints it in UTC; or NULL */
  int64_t archived_tables;  /* tables waiting in chiploc_archive to be dumped and dropped */
  int64_t claims_deleted;   /* rows of verifier_claims deleted by the claims retention */
} cl_maint_report;

/*
 * Runs the maintenance in one transaction. retain_months 0 keeps every
 * partition; 1 ... CL_MAINT_RETAIN_MAX detaches each partition whose month
 * ended more than that many months ago, into chiploc_archive, or drops it
 * when drop is 1, and records it in measurement_retention (in the same
 * transaction: what `chiploc audit` counts as evidence retired).
 * claims_days 0 keeps every claim of verifier_claims; 1 ...
 * CL_MAINT_CLAIMS_DAYS_MAX deletes the claims of every round that ended more
 * than that many days before the database's now(), whole rounds at a time.
 * CL_OK with *rep filled; CL_EINVAL (a bad argument),
 * CL_EPERM (the login may not maintain), CL_EDB, CL_ENOMEM, with err set;
 * on error *rep is empty.
 */
int cl_maint_run(cl_store *s, int retain_months, int drop, int claims_days, cl_maint_report *rep,
                 char *err, size_t errlen);
void cl_maint_report_free(cl_maint_report *rep);
/* "created", "archived", "dropped". */
const char *cl_maint_action_name(cl_maint_action a);

#endif
