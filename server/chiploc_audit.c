/*
 * chiploc audit: re-verifies every signed record in the database (the
 * measurements, the landmark links and the verifier's hash-chained
 * attestations) and lists what does not check out. All the work is in
 * lib/db/cl_audit.c; this file parses, connects and prints.
 *
 * Output: one line per finding, "TABLE id=N PROBLEM" (the problem names of
 * cl_audit_problem_name, docs/OPERATIONS.md); when the database holds rows
 * of protocol 1, the line "legacy (protocol 1), not re-verifiable by this
 * version: N measurements, N links; N attestations cite such rows"; when
 * measurement_retention records removed ranges, the line "evidence retired:
 * N attestations cite measurements removed by retention (N range(s), up to
 * TIME)"; when verifier pools are in the database, one line per pool gap
 * shown, "pool gap: chip=SERIAL pool=NAME round_end=TIME round_end_ns=N",
 * and "pools: N pool(s), N round(s) checked; N gap(s)"; then the summary
 * "audit: N measurements, N links, N attestations checked; N problem(s)"
 * (findings and pool gaps). With --json, one JSON object instead (the legacy
 * counts always in "legacy", the retention ones in "retired", the pools' in
 * "pools"). Exit codes: 0 clean, 4 findings or pool gaps, 1 database
 * failure, 2 usage error. Legacy rows and retired evidence are no findings.
 */
#include "chiploc_cli.h"
#include "chiploc_cmds.h"

#include "cl_audit.h"
#include "cl_err.h"
#include "cl_log.h"
#include "cl_store.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUDIT_EXIT_FINDINGS 4

enum { OPT_DB = 256, OPT_JSON, OPT_HELP };

static void usage_audit(FILE *f) {
  fputs("usage: chiploc audit [--db CONNINFO] [--json]\n"
        "\n"
        "Re-verifies every measurement and landmark link against the enrolled keys,\n"
        "every attestation's signature and hash, and each chip's attestation chain,\n"
        "the evidence a version-2 attestation cites and the digests of its inputs,\n"
        "in one consistent snapshot. Rows of protocol 1 (stored before the upgrade)\n"
        "cannot be re-verified by this version: they are counted as legacy, not as\n"
        "findings. Nor are cited measurements that chiploc db maintain\n"
        "--retain-months removed, as its table measurement_retention records:\n"
        "they are counted as evidence retired.\n"
        "Prints one line per finding, TABLE id=N PROBLEM,\n"
        "where PROBLEM is one of: signature, attestation signature, hash mismatch,\n"
        "measurement missing, chain break, chain start, derived column, evidence,\n"
        "input changed, retired key. Verifier pools (chiploc verify --pool) are\n"
        "checked for coverage: a chip that no member of a pool attested for one of\n"
        "the pool's rounds (before its newest) is a pool gap, a problem too; the\n"
        "first are listed as pool gap: chip=SERIAL pool=NAME round_end=TIME.\n"
        "Then a summary. --json adds each finding's ref.\n"
        "--db defaults to $CHIPLOC_DB. Run it as a login in chiploc_auditor, the\n"
        "read-only role made for it (chiploc_admin and chiploc_verifier can read as\n"
        "much, but also write).\n"
        "\n"
        "exit status: 0 no problems, 4 findings or pool gaps, 1 database error,\n"
        "2 usage error\n",
        f);
}

/* Microseconds since 1970 as 2024-03-01T00:00:00Z (whole seconds, cut). */
static void format_utc(char *out, size_t len, int64_t unix_us) {
  time_t t = (time_t)(unix_us / 1000000);
  struct tm tm;
  if (!gmtime_r(&t, &tm) || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, len, "%" PRId64 "us", unix_us);
}

/* Findings not listed: all problems but the listed findings and the gaps. */
static int64_t unlisted_findings(const cl_audit_report *r) {
  return r->problems - r->pool_gaps - (int64_t)r->n_findings;
}

static void print_text(const cl_audit_report *r) {
  for (size_t i = 0; i < r->n_findings; i++) {
    const cl_audit_finding *f = &r->findings[i];
    printf("%s id=%" PRId64 " %s\n", cl_audit_table_name(f->table), f->id,
           cl_audit_problem_name(f->problem));
  }
  if (unlisted_findings(r) > 0)
    printf("(%" PRId64 " more finding(s) not listed)\n", unlisted_findings(r));
  for (size_t i = 0; i < r->n_gaps; i++) {
    const cl_audit_pool_gap *g = &r->gaps[i];
    char serial[300], pool[160], when[64];
    format_utc(when, sizeof when, g->round_end_ns / 1000);
    printf("pool gap: chip=%s pool=%s round_end=%s round_end_ns=%" PRId64 "\n",
           cl_log_quote(serial, sizeof serial, g->serial, strlen(g->serial)),
           cl_log_quote(pool, sizeof pool, g->pool, strlen(g->pool)), when, g->round_end_ns);
  }
  if (r->pool_gaps > (int64_t)r->n_gaps)
    printf("(%" PRId64 " more pool gap(s) not listed)\n", r->pool_gaps - (int64_t)r->n_gaps);
  if (r->pools)
    printf("pools: %" PRId64 " pool(s), %" PRId64 " round(s) checked; %" PRId64 " gap(s)\n",
           r->pools, r->pool_rounds, r->pool_gaps);
  if (r->legacy_measurements || r->legacy_links || r->legacy_evidence)
    printf("legacy (protocol 1), not re-verifiable by this version: %" PRId64
           " measurements, %" PRId64 " links; %" PRId64 " attestations cite such rows\n",
           r->legacy_measurements, r->legacy_links, r->legacy_evidence);
  if (r->retention_ranges || r->ignored_ranges || r->evidence_retired) {
    char until[64] = "";
    if (r->retention_ranges) format_utc(until, sizeof until, r->retired_until_us);
    printf("evidence retired: %" PRId64
           " attestations cite measurements removed by retention (%" PRId64 " range(s)%s%s)",
           r->evidence_retired, r->retention_ranges, until[0] ? ", up to " : "", until);
    if (r->ignored_ranges)
      printf("; %" PRId64 " range(s) ignored: a partition of measurements covers them again",
             r->ignored_ranges);
    putchar('\n');
  }
  printf("audit: %" PRId64 " measurements, %" PRId64 " links, %" PRId64
         " attestations checked; %" PRId64 " problem(s)\n",
         r->measurements, r->links, r->attestations, r->problems);
}

/* A string as JSON (jansson escapes it); null if it is not UTF-8. */
static void print_json_string(const char *s) {
  json_t *j = json_string(s);
  char *text = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
  fputs(text ? text : "null", stdout);
  free(text);
  json_decref(j);
}

/* "pools": the counts and the gaps shown. */
static void print_json_pools(const cl_audit_report *r) {
  printf(",\"pools\":{\"pools\":%" PRId64 ",\"rounds\":%" PRId64 ",\"gaps\":%" PRId64
         ",\"first\":[",
         r->pools, r->pool_rounds, r->pool_gaps);
  for (size_t i = 0; i < r->n_gaps; i++) {
    const cl_audit_pool_gap *g = &r->gaps[i];
    char when[64];
    format_utc(when, sizeof when, g->round_end_ns / 1000);
    printf("%s{\"serial\":", i ? "," : "");
    print_json_string(g->serial);
    fputs(",\"pool\":", stdout);
    print_json_string(g->pool);
    printf(",\"round_end\":\"%s\",\"round_end_ns\":%" PRId64 "}", when, g->round_end_ns);
  }
  fputs("]}", stdout);
}

/* Table and problem names are fixed ASCII words: nothing to escape. */
static void print_json(const cl_audit_report *r) {
  char until[64] = "null";
  if (r->retention_ranges) {
    char t[48];
    format_utc(t, sizeof t, r->retired_until_us);
    snprintf(until, sizeof until, "\"%s\"", t);
  }
  printf("{\"measurements\":%" PRId64 ",\"links\":%" PRId64 ",\"attestations\":%" PRId64
         ",\"chains\":%" PRId64 ",\"legacy\":{\"measurements\":%" PRId64 ",\"links\":%" PRId64
         ",\"attestations\":%" PRId64 "},\"retired\":{\"attestations\":%" PRId64
         ",\"ranges\":%" PRId64 ",\"ignored_ranges\":%" PRId64
         ",\"until\":%s}",
         r->measurements, r->links, r->attestations, r->chains, r->legacy_measurements,
         r->legacy_links, r->legacy_evidence, r->evidence_retired, r->retention_ranges,
         r->ignored_ranges, until);
  print_json_pools(r);
  printf(",\"problems\":%" PRId64 ",\"findings\":[", r->problems);
  for (size_t i = 0; i < r->n_findings; i++) {
    const cl_audit_finding *f = &r->findings[i];
    printf("%s{\"table\":\"%s\",\"id\":%" PRId64 ",\"problem\":\"%s\"", i ? "," : "",
           cl_audit_table_name(f->table), f->id, cl_audit_problem_name(f->problem));
    if (f->ref) printf(",\"ref\":%" PRId64, f->ref);
    putchar('}');
  }
  printf("],\"truncated\":%s}\n", unlisted_findings(r) > 0 ? "true" : "false");
}

int cmd_audit(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"json", no_argument, NULL, OPT_JSON},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL;
  int json = 0, c;
#ifdef __GLIBC__
  optind = 0; /* getopt keeps state between calls: start afresh */
#else
  optind = 1;
#endif
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_JSON: json = 1; break;
    case 'h':
    case OPT_HELP: usage_audit(stdout); return 0;
    case ':':
      fprintf(stderr, "chiploc: audit: %s needs a value\n", argv[optind - 1]);
      return 2;
    default:
      fprintf(stderr, "chiploc: audit: unknown option %s (see chiploc audit --help)\n",
              argv[optind - 1]);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "chiploc: audit: unexpected argument %s\n", argv[optind]);
    return 2;
  }
  db = chiploc_conninfo(db, "audit");
  if (!db) return 2;
  cl_store *s = chiploc_connect(db);
  if (!s) return 1;
  char err[512] = "";
  cl_audit_report rep;
  int rc = cl_audit_run(s, &rep, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    fprintf(stderr, "chiploc: audit: %s\n", err[0] ? err : cl_strerror(rc));
    return 1;
  }
  if (json)
    print_json(&rep);
  else
    print_text(&rep);
  int status = rep.problems ? AUDIT_EXIT_FINDINGS : 0;
  cl_audit_report_free(&rep);
  if (fflush(stdout) != 0) return 1;
  return status;
}
