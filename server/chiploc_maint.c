/*
 * chiploc db maintain: the partition maintenance of the measurements table
 * (pg_partman, schema 0007). All of it is in lib/db/cl_maint.c; this file
 * parses, connects and prints.
 *
 * Output: one line per change, "created TABLE", "archived
 * chiploc_archive.TABLE" or "dropped TABLE", then the summary "maintain: N
 * partitions (OLDEST .. NEWEST); created N, archived N, dropped N", and
 * unless --claims-days 0 "maintain: deleted N verifier claim(s) of rounds
 * that ended more than D day(s) ago". On
 * stderr, a warning when rows wait in measurements_default (dated past the
 * partitions made ahead: a landmark's clock) and a reminder while tables
 * wait in chiploc_archive. Exit codes: 0 done, 1 database failure or
 * permission, 2 usage error.
 */
#include "chiploc_cli.h"
#include "chiploc_cmds.h"

#include "cl_err.h"
#include "cl_maint.h"
#include "cl_store.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_DB = 256, OPT_RETAIN, OPT_DROP, OPT_CLAIMS, OPT_HELP };

static void usage_maintain(FILE *f) {
  fprintf(f,
          "usage: chiploc db maintain [--db CONNINFO] [--retain-months N [--drop]]\n"
          "                           [--claims-days N]\n"
          "\n"
          "Runs pg_partman's maintenance of the measurements table: makes the\n"
          "partitions of the coming months and gives rows waiting in the default\n"
          "partition their month's partition, and deletes the verifier pools' old\n"
          "claims. Without --retain-months no partition is removed. Run it daily\n"
          "(chiploc-maintenance.timer), as the database owner or a member of\n"
          "chiploc_admin.\n"
          "\n"
          "  --db CONNINFO      libpq connection string (default: $CHIPLOC_DB)\n"
          "  --retain-months N  detach every partition whose month ended more than N\n"
          "                     months ago (1 to %d) into schema chiploc_archive;\n"
          "                     the owner dumps each with pg_dump, then drops it\n"
          "  --drop             drop those partitions instead: their rows are gone,\n"
          "                     and the audit reports the attestations that cited them\n"
          "  --claims-days N    delete the rows of verifier_claims (verifier pools) of\n"
          "                     rounds that ended more than N days ago (default %d,\n"
          "                     at most %d; 0 keeps them all)\n"
          "\n"
          "exit status: 0 done, 1 database error or permission, 2 usage error\n",
          CL_MAINT_RETAIN_MAX, CL_MAINT_CLAIMS_DAYS, CL_MAINT_CLAIMS_DAYS_MAX);
}

/* --retain-months: a whole number in [1, CL_MAINT_RETAIN_MAX]. */
static int parse_months(const char *text, int *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || text[0] == '+' || text[0] == '-' ||
      v < 1 || v > CL_MAINT_RETAIN_MAX) {
    chiploc_errorf("db maintain: --retain-months %s: must be a whole number of months, 1 to %d",
                   text, CL_MAINT_RETAIN_MAX);
    return 2;
  }
  *out = (int)v;
  return 0;
}

/* --claims-days: a whole number in [0, CL_MAINT_CLAIMS_DAYS_MAX]. */
static int parse_days(const char *text, int *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE || text[0] == '+' || text[0] == '-' ||
      v < 0 || v > CL_MAINT_CLAIMS_DAYS_MAX) {
    chiploc_errorf("db maintain: --claims-days %s: must be a whole number of days, 0 to %d",
                   text, CL_MAINT_CLAIMS_DAYS_MAX);
    return 2;
  }
  *out = (int)v;
  return 0;
}

static void print_report(const cl_maint_report *r, int claims_days) {
  int64_t n[3] = {0, 0, 0};
  for (size_t i = 0; i < r->n_changes; i++) {
    printf("%s %s\n", cl_maint_action_name(r->changes[i].action), r->changes[i].table);
    n[r->changes[i].action]++;
  }
  printf("maintain: %" PRId64 " partitions (%s .. %s); created %" PRId64 ", archived %" PRId64
         ", dropped %" PRId64 "\n",
         r->partitions, r->oldest ? r->oldest : "none", r->newest ? r->newest : "none",
         n[CL_MAINT_CREATED], n[CL_MAINT_ARCHIVED], n[CL_MAINT_DROPPED]);
  if (claims_days > 0)
    printf("maintain: deleted %" PRId64 " verifier claim(s) of rounds that ended more than %d"
           " day(s) ago\n",
           r->claims_deleted, claims_days);
  if (r->default_rows > 0)
    chiploc_errorf("db maintain: warning: %" PRId64 " row(s) in measurements_default, the newest"
                   " measured at %s, past the partitions made ahead: check the landmarks' clocks",
                   r->default_rows, r->default_newest ? r->default_newest : "?");
  if (r->archived_tables > 0)
    chiploc_errorf("db maintain: %" PRId64 " table(s) wait in schema chiploc_archive: dump each"
                   " with pg_dump, then drop it (chiploc(1), db maintain)",
                   r->archived_tables);
}

int cmd_db_maintain(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"retain-months", required_argument, NULL, OPT_RETAIN},
      {"drop", no_argument, NULL, OPT_DROP},
      {"claims-days", required_argument, NULL, OPT_CLAIMS},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL;
  int months = 0, drop = 0, claims_days = CL_MAINT_CLAIMS_DAYS, c;
#ifdef __GLIBC__
  optind = 0;
#else
  optind = 1;
#endif
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_RETAIN:
      if (parse_months(optarg, &months) != 0) return 2;
      break;
    case OPT_DROP: drop = 1; break;
    case OPT_CLAIMS:
      if (parse_days(optarg, &claims_days) != 0) return 2;
      break;
    case 'h':
    case OPT_HELP: usage_maintain(stdout); return 0;
    case ':': chiploc_errorf("db maintain: %s needs a value", argv[optind - 1]); return 2;
    default:
      chiploc_errorf("db maintain: unknown option %s (see chiploc db maintain --help)",
                     argv[optind - 1]);
      return 2;
    }
  }
  if (optind < argc) {
    chiploc_errorf("db maintain: unexpected argument %s", argv[optind]);
    return 2;
  }
  if (drop && months == 0) {
    chiploc_errorf("db maintain: --drop needs --retain-months");
    return 2;
  }
  const char *conninfo = chiploc_conninfo(db, "db maintain");
  if (!conninfo) return 2;
  cl_store *s = chiploc_connect(conninfo);
  if (!s) return 1;
  char err[512] = "";
  cl_maint_report rep;
  int rc = cl_maint_run(s, months, drop, claims_days, &rep, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    if (rc == CL_EPERM)
      chiploc_errorf("db maintain: %s (run it as the database owner or a member of chiploc_admin)",
                     err);
    else
      chiploc_errorf("db maintain: %s", err);
    return 1;
  }
  print_report(&rep, claims_days);
  cl_maint_report_free(&rep);
  return 0;
}
