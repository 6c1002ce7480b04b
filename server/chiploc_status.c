/*
 * The operators' read commands of the chiploc CLI, and `alerts ack`:
 * `status`, `chip list`, `chip show`, `landmark list`, `alerts`,
 * `measurements` and `links`. They read the views (lib/db/cl_status.c), so
 * the read-only dashboard and auditor logins can run them. Each prints an
 * aligned table or key: value lines, or with --json one JSON document whose
 * keys are the view columns' names (docs/OPERATIONS.md, "Read the fleet");
 * subjects are named by chip serial and landmark name. Every argument is
 * checked before a connection is opened.
 */
#include "chiploc_cli.h"
#include "chiploc_cmds.h"
#include "chiploc_status.h"

#include "cl_err.h"
#include "cl_status.h"
#include "cl_store.h"
#include "cl_vstore.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest window of `measurements` and `links`: 100 years. */
#define SINCE_MAX_S 3153600000LL
#define SINCE_DEFAULT_S 3600LL
/* A landmark without a measurement or link for this long is stale (five
 * probe intervals at landmarkd's default interval_s of 60 s). The views
 * look back one hour, which bounds --stale. */
#define STALE_DEFAULT_S 300LL
#define STALE_MAX_S 3600LL
/* Longest --window of `chip show`: a day, as the verifier's --window. */
#define WINDOW_MAX_S 86400LL

enum {
  OPT_DB = 256,
  OPT_JSON,
  OPT_STALE,
  OPT_OPERATOR,
  OPT_VERDICT,
  OPT_WINDOW,
  OPT_CHIP,
  OPT_KIND,
  OPT_ALL,
  OPT_SINCE,
  OPT_BY,
  OPT_REASON,
  OPT_HELP,
};

/* Connects for command `cmd` (--db or $CHIPLOC_DB): NULL with *code set to
 * the exit status when it cannot. */
static cl_store *open_db(const char *db, const char *cmd, int *code) {
  const char *conninfo = chiploc_conninfo(db, cmd);
  if (!conninfo) {
    *code = 2;
    return NULL;
  }
  cl_store *s = chiploc_connect(conninfo);
  if (!s) *code = 1;
  return s;
}

/* ---- JSON ------------------------------------------------------------------ */

static json_t *cell_json(cl_status_type type, const char *v) {
  if (!v) return json_null();
  switch (type) {
  case CL_STATUS_INT: return json_integer(strtoll(v, NULL, 10));
  case CL_STATUS_REAL: return json_real(strtod(v, NULL));
  case CL_STATUS_BOOL: return json_boolean(v[0] == 't');
  case CL_STATUS_LIST: {
    json_t *a = json_array();
    const char *p = v;
    while (a && *p) {
      const char *comma = strchr(p, ',');
      size_t n = comma ? (size_t)(comma - p) : strlen(p);
      json_array_append_new(a, json_stringn(p, n));
      p += n + (comma ? 1 : 0);
    }
    return a;
  }
  case CL_STATUS_TEXT: break;
  }
  return json_string(v);
}

json_t *chiploc_row_json(const cl_status_rows *t, size_t i) {
  json_t *o = json_object();
  for (size_t j = 0; o && j < t->ncols; j++)
    json_object_set_new(o, t->names[j], cell_json(t->types[j], t->cells[i * t->ncols + j]));
  return o;
}

json_t *chiploc_rows_json(const cl_status_rows *t) {
  json_t *a = json_array();
  for (size_t i = 0; a && i < t->nrows; i++) json_array_append_new(a, chiploc_row_json(t, i));
  return a;
}

/* Prints doc (and takes it); 0, or 1 when it could not be built. */
static int print_json(json_t *doc, const char *cmd) {
  if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2)) != 0) {
    json_decref(doc);
    chiploc_errorf("%s: out of memory", cmd);
    return 1;
  }
  putchar('\n');
  json_decref(doc);
  return 0;
}

/* ---- tables ------------------------------------------------------------------ */

typedef enum {
  F_TEXT,    /* as stored, control characters replaced */
  F_NUM,     /* a number as stored, right-aligned */
  F_US,      /* nanoseconds as microseconds, 3 decimals */
  F_KM,      /* metres as kilometres, 3 decimals */
  F_KM_REAL, /* kilometres, 3 decimals */
  F_DEG,     /* degrees, 5 decimals */
  F_ACTIVE,  /* a boolean as active / inactive */
  F_YESNO,   /* a boolean as yes / no */
  F_SUBJECT, /* col2's kind and col's name: "chip S-1" */
  F_ACK,     /* col's name and col2's reason: "alice: reason" */
} cell_fmt;

typedef struct {
  const char *header;
  const char *col;
  cell_fmt fmt;
  const char *col2;
} colspec;

/* Copies text with control characters replaced, so that a name from the
 * database cannot drive the terminal. */
static char *printable(const char *text) {
  char *out = strdup(text);
  for (char *p = out; p && *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
  return out;
}

/* Scaled integer with three decimals: 123456 -> "123.456". */
static char *milli(const char *v) {
  long long n = strtoll(v, NULL, 10);
  char buf[48];
  snprintf(buf, sizeof buf, "%s%lld.%03lld", n < 0 ? "-" : "", llabs(n / 1000), llabs(n % 1000));
  return strdup(buf);
}

static char *fixed(const char *v, int decimals) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.*f", decimals, strtod(v, NULL));
  return strdup(buf);
}

/* The text of one cell (malloc'd; "-" for NULL or an empty list). */
static char *cell_text(const cl_status_rows *t, size_t i, const colspec *c) {
  const char *v = cl_status_cell(t, i, c->col);
  const char *v2 = c->col2 ? cl_status_cell(t, i, c->col2) : NULL;
  if (!v || (!v[0] && c->fmt == F_TEXT)) return strdup("-");
  switch (c->fmt) {
  case F_US:
  case F_KM: return milli(v);
  case F_KM_REAL: return fixed(v, 3);
  case F_DEG: return fixed(v, 5);
  case F_ACTIVE: return strdup(v[0] == 't' ? "active" : "inactive");
  case F_YESNO: return strdup(v[0] == 't' ? "yes" : "no");
  case F_SUBJECT:
  case F_ACK: {
    size_t n = strlen(v) + (v2 ? strlen(v2) : 0) + 4;
    char *buf = malloc(n);
    if (!buf) return NULL;
    if (c->fmt == F_SUBJECT)
      snprintf(buf, n, "%s %s", v2 ? v2 : "?", v);
    else
      snprintf(buf, n, "%s: %s", v, v2 ? v2 : "");
    char *out = printable(buf);
    free(buf);
    return out;
  }
  case F_TEXT:
  case F_NUM: break;
  }
  return printable(v);
}

static int right_aligned(cell_fmt f) {
  return f == F_NUM || f == F_US || f == F_KM || f == F_KM_REAL || f == F_DEG;
}

/* One table line; the last column is not padded. */
static void print_line(char *const *cell, const colspec *spec, const size_t *width, size_t n) {
  for (size_t j = 0; j + 1 < n; j++)
    printf(right_aligned(spec[j].fmt) ? "%*s  " : "%-*s  ", (int)width[j], cell[j]);
  printf("%s\n", cell[n - 1]);
}

/* Prints t as a table of the columns spec[0..n), aligned like `chronyc
 * sources`; `empty` instead of rows when there are none. 0, or -1 out of
 * memory. */
static int print_table(const cl_status_rows *t, const colspec *spec, size_t n, const char *empty) {
  size_t cells_n = (t->nrows + 1) * n;
  char **cells = calloc(cells_n, sizeof *cells);
  size_t *width = calloc(n, sizeof *width);
  int rc = cells && width ? 0 : -1;
  for (size_t j = 0; j < n && rc == 0; j++) {
    cells[j] = strdup(spec[j].header);
    if (!cells[j]) rc = -1;
  }
  for (size_t i = 0; i < t->nrows && rc == 0; i++)
    for (size_t j = 0; j < n && rc == 0; j++)
      if (!(cells[(i + 1) * n + j] = cell_text(t, i, &spec[j]))) rc = -1;
  for (size_t k = 0; rc == 0 && k < cells_n; k++)
    if (strlen(cells[k]) > width[k % n]) width[k % n] = strlen(cells[k]);
  if (rc == 0) {
    for (size_t i = 0; i <= t->nrows; i++) print_line(cells + i * n, spec, width, n);
    if (t->nrows == 0 && empty) puts(empty);
  }
  for (size_t k = 0; cells && k < cells_n; k++) free(cells[k]);
  free(cells);
  free(width);
  return rc;
}

/* "Label          : value" lines, like `chronyc tracking`. */
static void kv(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kv(const char *label, const char *fmt, ...) {
  printf("%-16s: ", label);
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
}

/* A text cell for kv(): printable, "-" for NULL; *tofree takes it. */
static const char *show(const char *v, char **tofree) {
  *tofree = v ? printable(v) : NULL;
  return *tofree ? *tofree : "-";
}

/* ---- status ------------------------------------------------------------------ */

static void usage_status(FILE *f) {
  fputs("usage: chiploc status [--db CONNINFO] [--stale DURATION] [--json]\n"
        "\n"
        "The fleet at a glance: chips enrolled, active and inactive, the latest\n"
        "verdicts of the active chips (consistency, site, region) and those never\n"
        "attested; landmarks healthy, stale, retired or revoked; open alerts per\n"
        "kind and how many are acknowledged; the newest verifier round and its age.\n"
        "Reads the views only: a chiploc_dashboard or chiploc_auditor login will do.\n"
        "\n"
        "  --db CONNINFO     libpq connection string (default: $CHIPLOC_DB)\n"
        "  --stale DURATION  a landmark that measured no chip and probed no peer for\n"
        "                    this long is stale (default 5m; at most 1h)\n"
        "  --json            one JSON document (docs in chiploc(1))\n",
        f);
}

/* The count of row `value` in column `col` of t, where `key` holds the
 * value's name (0 when absent). */
static long long count_of(const cl_status_rows *t, const char *key, const char *value,
                          const char *col) {
  for (size_t i = 0; i < t->nrows; i++)
    if (strcmp(cl_status_cell(t, i, key), value) == 0)
      return strtoll(cl_status_cell(t, i, col), NULL, 10);
  return 0;
}

static long long total(const cl_status_rows *t, const char *col) {
  long long n = 0;
  for (size_t i = 0; i < t->nrows; i++) n += strtoll(cl_status_cell(t, i, col), NULL, 10);
  return n;
}

static const char *const LANDMARK_STATES[] = {"healthy", "stale", "retired", "revoked"};
#define N_LANDMARK_STATES (sizeof LANDMARK_STATES / sizeof LANDMARK_STATES[0])
static const char *const VERDICTS[] = {"consistency", "site_verdict", "region_verdict"};

/* Integer cell `col` of row i (0 for NULL). */
static json_int_t int_cell(const cl_status_rows *t, size_t i, const char *col) {
  const char *v = cl_status_cell(t, i, col);
  return v ? (json_int_t)strtoll(v, NULL, 10) : 0;
}

json_t *chiploc_status_json(const cl_status_summary *s, int64_t stale_s) {
  const cl_status_rows *v = &s->verdicts, *a = &s->alerts;
  json_t *chips = chiploc_row_json(&s->chips, 0);
  for (size_t k = 0; chips && k < sizeof VERDICTS / sizeof VERDICTS[0]; k++) {
    json_t *m = json_object();
    for (size_t i = 0; m && i < v->nrows; i++)
      if (strcmp(cl_status_cell(v, i, "verdict"), VERDICTS[k]) == 0)
        json_object_set_new(m, cl_status_cell(v, i, "value"),
                            json_integer(int_cell(v, i, "chips")));
    json_object_set_new(chips, VERDICTS[k], m);
  }
  json_t *lms = json_pack("{sI sI}", "total", (json_int_t)total(&s->landmarks, "landmarks"),
                          "stale_after_s", (json_int_t)stale_s);
  for (size_t k = 0; lms && k < N_LANDMARK_STATES; k++)
    json_object_set_new(lms, LANDMARK_STATES[k],
                        json_integer(count_of(&s->landmarks, "state", LANDMARK_STATES[k],
                                              "landmarks")));
  json_t *kinds = json_object();
  for (size_t i = 0; kinds && i < a->nrows; i++)
    json_object_set_new(kinds, cl_status_cell(a, i, "kind"),
                        json_pack("{sI sI}", "open", int_cell(a, i, "open"), "acked",
                                  int_cell(a, i, "acked")));
  json_t *alerts = json_pack("{sI sI so*}", "open", (json_int_t)total(a, "open"), "acked",
                             (json_int_t)total(a, "acked"), "by_kind", kinds);
  return json_pack("{so* so* so* so*}", "chips", chips, "landmarks", lms, "alerts", alerts,
                   "last_round", chiploc_row_json(&s->round, 0));
}

/* "NAME n, NAME n" of the verdict rows of one kind, or "-". */
static void verdict_line(const cl_status_rows *v, const char *kind, const char *label) {
  char line[512] = "";
  size_t len = 0;
  for (size_t i = 0; i < v->nrows && len < sizeof line; i++)
    if (strcmp(cl_status_cell(v, i, "verdict"), kind) == 0)
      len += (size_t)snprintf(line + len, sizeof line - len, "%s%s %s", len ? ", " : "",
                              cl_status_cell(v, i, "value"), cl_status_cell(v, i, "chips"));
  kv(label, "%s", len ? line : "-");
}

static void status_text(const cl_status_summary *s, int64_t stale_s) {
  const cl_status_rows *c = &s->chips;
  kv("Chips", "%s enrolled: %s active, %s inactive; %s active never attested",
     cl_status_cell(c, 0, "enrolled"), cl_status_cell(c, 0, "active"),
     cl_status_cell(c, 0, "inactive"), cl_status_cell(c, 0, "never_attested"));
  verdict_line(&s->verdicts, "consistency", "Consistency");
  verdict_line(&s->verdicts, "site_verdict", "Site verdicts");
  verdict_line(&s->verdicts, "region_verdict", "Region verdicts");
  char line[512];
  size_t len = (size_t)snprintf(line, sizeof line, "%lld:", total(&s->landmarks, "landmarks"));
  for (size_t k = 0; k < N_LANDMARK_STATES && len < sizeof line; k++)
    len += (size_t)snprintf(line + len, sizeof line - len, "%s %lld %s", k ? "," : "",
                            count_of(&s->landmarks, "state", LANDMARK_STATES[k], "landmarks"),
                            LANDMARK_STATES[k]);
  kv("Landmarks", "%s (stale: nothing measured for %" PRId64 " s)", line, stale_s);
  len = (size_t)snprintf(line, sizeof line, "%lld, %lld acknowledged", total(&s->alerts, "open"),
                         total(&s->alerts, "acked"));
  for (size_t i = 0; i < s->alerts.nrows && len < sizeof line; i++)
    len += (size_t)snprintf(line + len, sizeof line - len, "%s %s %s", i ? "," : ":",
                            cl_status_cell(&s->alerts, i, "kind"),
                            cl_status_cell(&s->alerts, i, "open"));
  kv("Open alerts", "%s", line);
  const char *end = cl_status_cell(&s->round, 0, "round_end");
  if (end)
    kv("Last round", "%s, %s s ago", end, cl_status_cell(&s->round, 0, "age_s"));
  else
    kv("Last round", "none");
}

int cmd_status(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"stale", required_argument, NULL, OPT_STALE},
      {"json", no_argument, NULL, OPT_JSON},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL;
  int json = 0, c;
  int64_t stale = STALE_DEFAULT_S;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_JSON: json = 1; break;
    case OPT_STALE:
      if (chiploc_duration_arg("--stale", optarg, 1, STALE_MAX_S, &stale)) return 2;
      break;
    case 'h':
    case OPT_HELP: usage_status(stdout); return 0;
    default: return chiploc_bad_option("status", c, argv);
    }
  }
  if (optind < argc) {
    chiploc_errorf("status: unexpected argument %s", argv[optind]);
    return 2;
  }
  int code = 0;
  cl_store *s = open_db(db, "status", &code);
  if (!s) return code;
  char err[512] = "";
  cl_status_summary sum;
  int rc = cl_status_summary_load(s, stale, &sum, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    chiploc_errorf("status: %s", err);
    return 1;
  }
  if (json)
    code = print_json(chiploc_status_json(&sum, stale), "status");
  else
    status_text(&sum, stale);
  cl_status_summary_free(&sum);
  return code;
}

/* ---- chip list and chip show ------------------------------------------------- */

/* The verdict names `chip list --verdict` takes (the views' text), and
 * NONE for chips never attested. */
static const char *const VERDICT_NAMES[] = {
    "CONSISTENT", "INSUFFICIENT", "INCONSISTENT", "SITE_CONSISTENT", "SITE_EXCLUDED",
    "INSIDE",     "OUTSIDE",      "UNDETERMINED", "UNKNOWN",         "NONE"};

static void usage_chip_read(FILE *f) {
  fputs("usage: chiploc chip list [--db CONNINFO] [--operator OPERATOR] [--verdict VERDICT]\n"
        "                         [--json]\n"
        "       chiploc chip show SERIAL [--db CONNINFO] [--window DURATION] [--json]\n"
        "\n"
        "list: every chip with its latest verdicts, feasible-region radius, the\n"
        "landmarks used, its round and its open alerts. --operator keeps one\n"
        "operator's chips; --verdict one verdict: CONSISTENT, INSUFFICIENT,\n"
        "INCONSISTENT, SITE_CONSISTENT, SITE_EXCLUDED, INSIDE, OUTSIDE,\n"
        "UNDETERMINED, UNKNOWN, or NONE (never attested).\n"
        "show: one chip: its latest attestation (verdicts, centre and radius, when,\n"
        "by which verifier, its place in that verifier's chain of the chip), per\n"
        "landmark the fastest round trip in the attestation's window with its\n"
        "distance bound at c and whether the attestation used it, and its open\n"
        "alerts. --window DURATION looks at the DURATION up to now instead (for a\n"
        "chip never attested: 5m).\n"
        "Both read the views only: a chiploc_dashboard or chiploc_auditor login will do.\n",
        f);
}

static const colspec CHIP_TABLE[] = {
    {"SERIAL", "serial", F_TEXT, NULL},
    {"OPERATOR", "operator", F_TEXT, NULL},
    {"STATE", "active", F_ACTIVE, NULL},
    {"CONSISTENCY", "consistency", F_TEXT, NULL},
    {"SITE", "site_verdict", F_TEXT, NULL},
    {"REGION", "region_verdict", F_TEXT, NULL},
    {"RADIUS_KM", "radius_km", F_KM_REAL, NULL},
    {"LMS", "landmarks_used", F_NUM, NULL},
    {"ROUND_END_UTC", "round_end", F_TEXT, NULL},
    {"ALERTS", "open_alerts", F_TEXT, NULL},
};

int cmd_chip_list(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"operator", required_argument, NULL, OPT_OPERATOR},
      {"verdict", required_argument, NULL, OPT_VERDICT},
      {"json", no_argument, NULL, OPT_JSON},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL, *op = NULL, *verdict = NULL;
  int json = 0, c;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_OPERATOR: op = optarg; break;
    case OPT_VERDICT: verdict = optarg; break;
    case OPT_JSON: json = 1; break;
    case 'h':
    case OPT_HELP: usage_chip_read(stdout); return 0;
    default: return chiploc_bad_option("chip list", c, argv);
    }
  }
  if (optind < argc) {
    chiploc_errorf("chip list: unexpected argument %s", argv[optind]);
    return 2;
  }
  char vbuf[32] = "";
  if (verdict) {
    size_t k = 0, n = sizeof VERDICT_NAMES / sizeof VERDICT_NAMES[0];
    while (k < n && strcasecmp(verdict, VERDICT_NAMES[k]) != 0) k++;
    if (k == n) {
      chiploc_errorf("chip list: --verdict %s: not a verdict (see chiploc chip --help)", verdict);
      return 2;
    }
    snprintf(vbuf, sizeof vbuf, "%s", VERDICT_NAMES[k]);
  }
  int code = 0;
  cl_store *s = open_db(db, "chip list", &code);
  if (!s) return code;
  char err[512] = "";
  cl_status_rows t;
  int rc = cl_status_chips(s, op, verdict ? vbuf : NULL, &t, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    chiploc_errorf("chip list: %s", err);
    return 1;
  }
  if (json)
    code = print_json(json_pack("{so*}", "chips", chiploc_rows_json(&t)), "chip list");
  else if (print_table(&t, CHIP_TABLE, sizeof CHIP_TABLE / sizeof CHIP_TABLE[0], "(no chips)")) {
    chiploc_errorf("chip list: out of memory");
    code = 1;
  }
  cl_status_rows_free(&t);
  return code;
}

static const colspec CHIP_LANDMARKS[] = {
    {"LANDMARK", "landmark", F_TEXT, NULL},
    {"RECORDS", "records", F_NUM, NULL},
    {"MIN_RTT_US", "min_rtt_ns", F_US, NULL},
    {"BOUND_KM_C", "min_bound_m", F_KM, NULL},
    {"USED", "used", F_YESNO, NULL},
    {"LAST_MEASURED_UTC", "last_measured", F_TEXT, NULL},
};

static const colspec ALERT_TABLE[] = {
    {"ID", "id", F_NUM, NULL},
    {"KIND", "kind", F_TEXT, NULL},
    {"SUBJECT", "subject", F_SUBJECT, "subject_type"},
    {"STATE", "state", F_TEXT, NULL},
    {"RAISED_UTC", "raised_at", F_TEXT, NULL},
    {"CLEARED_UTC", "cleared_at", F_TEXT, NULL},
    {"ACK", "acked_by", F_ACK, "ack_reason"},
    {"DETAIL", "detail", F_TEXT, NULL},
};

static int chip_show_text(const cl_status_chip_detail *d) {
  const cl_status_rows *c = &d->chip;
  char *f[6] = {NULL};
  kv("Serial", "%s", show(cl_status_cell(c, 0, "serial"), &f[0]));
  kv("Operator", "%s", show(cl_status_cell(c, 0, "operator"), &f[1]));
  kv("State", "%s", cl_status_cell(c, 0, "active")[0] == 't' ? "active" : "inactive");
  kv("Declared site", "%.5f, %.5f", strtod(cl_status_cell(c, 0, "site_lat"), NULL),
     strtod(cl_status_cell(c, 0, "site_lon"), NULL));
  const char *end = cl_status_cell(c, 0, "round_end");
  if (!end) {
    kv("Latest verdict", "never attested");
  } else {
    kv("Round end", "%s (window %g s)", end, strtod(cl_status_cell(c, 0, "window_s"), NULL));
    kv("Attested", "%s by verifier %s, record %s of its chain of this chip",
       cl_status_cell(c, 0, "attested_at"), show(cl_status_cell(c, 0, "verifier"), &f[2]),
       cl_status_cell(c, 0, "chain_position"));
    kv("Record hash", "%s", cl_status_cell(c, 0, "attestation_hash"));
    kv("Consistency", "%s", cl_status_cell(c, 0, "consistency"));
    kv("Site verdict", "%s", cl_status_cell(c, 0, "site_verdict"));
    kv("Region verdict", "%s", cl_status_cell(c, 0, "region_verdict"));
    const char *radius = cl_status_cell(c, 0, "radius_km");
    if (radius)
      kv("Feasible region", "centre %.5f, %.5f, radius %.3f km",
         strtod(cl_status_cell(c, 0, "centre_lat"), NULL),
         strtod(cl_status_cell(c, 0, "centre_lon"), NULL), strtod(radius, NULL));
    kv("Landmarks used", "%s", show(cl_status_cell(c, 0, "landmarks_used"), &f[3]));
  }
  kv("Last seen", "%s", show(cl_status_cell(c, 0, "last_seen"), &f[4]));
  for (size_t k = 0; k < 6; k++) free(f[k]);
  printf("\nMeasurements after %s up to %s:\n", cl_status_cell(c, 0, "window_start"),
         cl_status_cell(c, 0, "window_end"));
  int rc = print_table(&d->landmarks, CHIP_LANDMARKS,
                       sizeof CHIP_LANDMARKS / sizeof CHIP_LANDMARKS[0], "(no measurements)");
  printf("\nOpen alerts:\n");
  if (rc == 0)
    rc = print_table(&d->alerts, ALERT_TABLE, sizeof ALERT_TABLE / sizeof ALERT_TABLE[0],
                     "(none)");
  return rc;
}

int cmd_chip_show(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"window", required_argument, NULL, OPT_WINDOW},
      {"json", no_argument, NULL, OPT_JSON},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL;
  int json = 0, c;
  int64_t window = 0;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_JSON: json = 1; break;
    case OPT_WINDOW:
      if (chiploc_duration_arg("--window", optarg, 1, WINDOW_MAX_S, &window)) return 2;
      break;
    case 'h':
    case OPT_HELP: usage_chip_read(stdout); return 0;
    default: return chiploc_bad_option("chip show", c, argv);
    }
  }
  if (argc - optind != 1) {
    chiploc_errorf("chip show: give one chip serial (see chiploc chip --help)");
    return 2;
  }
  const char *serial = argv[optind];
  int code = 0;
  cl_store *s = open_db(db, "chip show", &code);
  if (!s) return code;
  char err[512] = "";
  cl_status_chip_detail d;
  int rc = cl_status_chip(s, serial, window, &d, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    chiploc_errorf("chip show: %s", err);
    return 1;
  }
  if (json)
    code = print_json(json_pack("{so* so* so*}", "chip", chiploc_row_json(&d.chip, 0),
                                "landmarks", chiploc_rows_json(&d.landmarks), "alerts",
                                chiploc_rows_json(&d.alerts)),
                      "chip show");
  else if (chip_show_text(&d)) {
    chiploc_errorf("chip show: out of memory");
    code = 1;
  }
  cl_status_chip_free(&d);
  return code;
}

/* ---- landmark list ------------------------------------------------------------ */

static void usage_landmark_list(FILE *f) {
  fputs("usage: chiploc landmark list [--db CONNINFO] [--stale DURATION] [--json]\n"
        "\n"
        "Every landmark: its position, its state (healthy, stale, retired, revoked),\n"
        "its newest measurement and the measurements of the last hour, its links to\n"
        "peer landmarks in the last hour (records, peers reached) and its open alerts\n"
        "(landmark_misplaced, landmark_bad_records). A landmark that measured no chip\n"
        "and probed no peer for --stale (default 5m, at most 1h) is stale.\n"
        "Reads the views only: a chiploc_dashboard or chiploc_auditor login will do.\n",
        f);
}

static const colspec LANDMARK_TABLE[] = {
    {"NAME", "name", F_TEXT, NULL},
    {"LAT", "lat", F_DEG, NULL},
    {"LON", "lon", F_DEG, NULL},
    {"STATE", "state", F_TEXT, NULL},
    {"LAST_MEASURED_UTC", "last_measured", F_TEXT, NULL},
    {"RECORDS_1H", "measurements_1h", F_NUM, NULL},
    {"LINKS_1H", "links_1h", F_NUM, NULL},
    {"PEERS_1H", "peers_1h", F_NUM, NULL},
    {"ALERTS", "open_alerts", F_TEXT, NULL},
};

int cmd_landmark_list(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"stale", required_argument, NULL, OPT_STALE},
      {"json", no_argument, NULL, OPT_JSON},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL;
  int json = 0, c;
  int64_t stale = STALE_DEFAULT_S;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_JSON: json = 1; break;
    case OPT_STALE:
      if (chiploc_duration_arg("--stale", optarg, 1, STALE_MAX_S, &stale)) return 2;
      break;
    case 'h':
    case OPT_HELP: usage_landmark_list(stdout); return 0;
    default: return chiploc_bad_option("landmark list", c, argv);
    }
  }
  if (optind < argc) {
    chiploc_errorf("landmark list: unexpected argument %s", argv[optind]);
    return 2;
  }
  int code = 0;
  cl_store *s = open_db(db, "landmark list", &code);
  if (!s) return code;
  char err[512] = "";
  cl_status_rows t;
  int rc = cl_status_landmarks(s, stale, &t, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    chiploc_errorf("landmark list: %s", err);
    return 1;
  }
  if (json)
    code = print_json(json_pack("{sI so*}", "stale_after_s", (json_int_t)stale, "landmarks",
                                chiploc_rows_json(&t)),
                      "landmark list");
  else if (print_table(&t, LANDMARK_TABLE, sizeof LANDMARK_TABLE / sizeof LANDMARK_TABLE[0],
                       "(no landmarks)")) {
    chiploc_errorf("landmark list: out of memory");
    code = 1;
  }
  cl_status_rows_free(&t);
  return code;
}

/* ---- alerts ------------------------------------------------------------------- */

static void usage_alerts(FILE *f) {
  fputs("usage: chiploc alerts [--db CONNINFO] [--chip SERIAL] [--kind KIND]\n"
        "                      [--all | --since DURATION] [--json]\n"
        "       chiploc alerts ack ID --by WHO --reason TEXT [--db CONNINFO]\n"
        "\n"
        "Lists the open alerts, oldest first, acknowledged ones included (state\n"
        "acked); --since DURATION adds those cleared in that time (e.g. 1h, 7d),\n"
        "--all every alert ever raised. --chip and --kind filter.\n"
        "Kinds: chip_dark, chip_moved, site_excluded, outside_region, inconsistent,\n"
        "landmark_misplaced, landmark_bad_records, verifier_clock.\n"
        "\n"
        "ack: records who acknowledged open alert ID and why. The alert stays open\n"
        "(shown as acked) until the verifier clears it; a later occurrence is a new\n"
        "alert. Takes a member of chiploc_admin; listing takes a dashboard or\n"
        "auditor login.\n",
        f);
}

static int alerts_ack(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"by", required_argument, NULL, OPT_BY},
      {"reason", required_argument, NULL, OPT_REASON},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL, *by = NULL, *reason = NULL;
  int c;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_BY: by = optarg; break;
    case OPT_REASON: reason = optarg; break;
    case 'h':
    case OPT_HELP: usage_alerts(stdout); return 0;
    default: return chiploc_bad_option("alerts ack", c, argv);
    }
  }
  if (argc - optind != 1) {
    chiploc_errorf("alerts ack: give one alert id (see chiploc alerts)");
    return 2;
  }
  const char *id_s = argv[optind];
  char *end = NULL;
  errno = 0;
  long long id = strtoll(id_s, &end, 10);
  if (end == id_s || *end || errno == ERANGE || id < 1) {
    chiploc_errorf("alerts ack %s: expected an alert id, a positive whole number", id_s);
    return 2;
  }
  if (!by || !by[0] || !reason || !reason[0]) {
    chiploc_errorf("alerts ack: --by WHO and --reason TEXT are required");
    return 2;
  }
  int code = 0;
  cl_store *s = open_db(db, "alerts ack", &code);
  if (!s) return code;
  char err[512] = "";
  int rc = cl_status_alert_ack(s, (int64_t)id, by, reason, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    chiploc_errorf("alerts ack: %s", err);
    return 1;
  }
  printf("alert %lld acknowledged by %s\n", id, by);
  return 0;
}

int cmd_alerts(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "ack") == 0) return alerts_ack(argc - 1, argv + 1);
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"chip", required_argument, NULL, OPT_CHIP},
      {"kind", required_argument, NULL, OPT_KIND},
      {"all", no_argument, NULL, OPT_ALL},
      {"since", required_argument, NULL, OPT_SINCE},
      {"json", no_argument, NULL, OPT_JSON},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL, *chip = NULL, *kind = NULL;
  int json = 0, all = 0, c;
  int64_t since = 0;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_CHIP: chip = optarg; break;
    case OPT_KIND: kind = optarg; break;
    case OPT_ALL: all = 1; break;
    case OPT_SINCE:
      if (chiploc_duration_arg("--since", optarg, 1, SINCE_MAX_S, &since)) return 2;
      break;
    case OPT_JSON: json = 1; break;
    case 'h':
    case OPT_HELP: usage_alerts(stdout); return 0;
    default: return chiploc_bad_option("alerts", c, argv);
    }
  }
  if (optind < argc) {
    chiploc_errorf("alerts: unexpected argument %s", argv[optind]);
    return 2;
  }
  if (all && since) {
    chiploc_errorf("alerts: give --all or --since, not both");
    return 2;
  }
  if (kind) {
    int k = 0;
    while (k < CL_VSTORE_ALERT_KINDS && strcmp(kind, cl_vstore_alert_kind_name(k)) != 0) k++;
    if (k == CL_VSTORE_ALERT_KINDS) {
      chiploc_errorf("alerts: --kind %s: not an alert kind (see chiploc alerts --help)", kind);
      return 2;
    }
  }
  int code = 0;
  cl_store *s = open_db(db, "alerts", &code);
  if (!s) return code;
  char err[512] = "";
  cl_status_rows t;
  int rc = cl_status_alerts(s, chip, kind, all ? -1 : since, &t, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    chiploc_errorf("alerts: %s", err);
    return 1;
  }
  if (json)
    code = print_json(json_pack("{so*}", "alerts", chiploc_rows_json(&t)), "alerts");
  else if (print_table(&t, ALERT_TABLE, sizeof ALERT_TABLE / sizeof ALERT_TABLE[0],
                       "(no alerts)")) {
    chiploc_errorf("alerts: out of memory");
    code = 1;
  }
  cl_status_rows_free(&t);
  return code;
}

/* ---- measurements and links ------------------------------------------------- */

static void usage_measurements(FILE *f) {
  fputs("usage: chiploc measurements [--db CONNINFO] [--since DURATION] [--chip SERIAL]\n"
        "                            [--json]\n"
        "       chiploc links [--db CONNINFO] [--since DURATION] [--json]\n"
        "\n"
        "measurements: the measurements of the last DURATION (default 1h), one row\n"
        "per chip and landmark: record count, fastest round trip in microseconds,\n"
        "its distance bound at the speed of light in km, and the newest record's\n"
        "time in UTC. --chip keeps one chip.\n"
        "links: the same for the landmark links, one row per probing and probed\n"
        "landmark.\n"
        "Rows are as stored: the verifier believes only those whose signatures it\n"
        "checks (chiploc chip show says which it used).\n"
        "\n"
        "  --db CONNINFO     libpq connection string (default: $CHIPLOC_DB)\n"
        "  --since DURATION  90 or 90s, 5m, 2h, 7d; a plain number is seconds\n"
        "                    (1 s to 100 years)\n"
        "  --json            one JSON document (docs in chiploc(1))\n",
        f);
}

static const colspec MEASUREMENT_TABLE[] = {
    {"CHIP", "chip", F_TEXT, NULL},
    {"LANDMARK", "landmark", F_TEXT, NULL},
    {"RECORDS", "records", F_NUM, NULL},
    {"MIN_RTT_US", "min_rtt_ns", F_US, NULL},
    {"BOUND_KM_C", "min_bound_m", F_KM, NULL},
    {"LAST_MEASURED_UTC", "last_measured", F_TEXT, NULL},
};

static const colspec LINK_TABLE[] = {
    {"FROM", "from_landmark", F_TEXT, NULL},
    {"TO", "to_landmark", F_TEXT, NULL},
    {"RECORDS", "records", F_NUM, NULL},
    {"MIN_RTT_US", "min_rtt_ns", F_US, NULL},
    {"BOUND_KM_C", "min_bound_m", F_KM, NULL},
    {"LAST_MEASURED_UTC", "last_measured", F_TEXT, NULL},
};

/* measurements (links = 0) and links (links = 1). */
static int recent(int argc, char **argv, int links) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"since", required_argument, NULL, OPT_SINCE},
      {"chip", required_argument, NULL, OPT_CHIP},
      {"json", no_argument, NULL, OPT_JSON},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *cmd = links ? "links" : "measurements";
  const char *db = NULL, *chip = NULL;
  int json = 0, c;
  int64_t since = SINCE_DEFAULT_S;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_SINCE:
      if (chiploc_duration_arg("--since", optarg, 1, SINCE_MAX_S, &since)) return 2;
      break;
    case OPT_CHIP: chip = optarg; break;
    case OPT_JSON: json = 1; break;
    case 'h':
    case OPT_HELP: usage_measurements(stdout); return 0;
    default: return chiploc_bad_option(cmd, c, argv);
    }
  }
  if (optind < argc) {
    chiploc_errorf("%s: unexpected argument %s", cmd, argv[optind]);
    return 2;
  }
  if (links && chip) {
    chiploc_errorf("links: --chip does not apply (links are between landmarks)");
    return 2;
  }
  int code = 0;
  cl_store *s = open_db(db, cmd, &code);
  if (!s) return code;
  char err[512] = "";
  cl_status_rows t;
  int rc = links ? cl_status_links(s, since, &t, err, sizeof err)
                 : cl_status_measurements(s, since, chip, &t, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    chiploc_errorf("%s: %s", cmd, err);
    return 1;
  }
  if (json && links)
    code = print_json(json_pack("{sI so*}", "since_s", (json_int_t)since, "links",
                                chiploc_rows_json(&t)),
                      cmd);
  else if (json)
    code = print_json(json_pack("{sI so* so*}", "since_s", (json_int_t)since, "chip",
                                chip ? json_string(chip) : json_null(), "measurements",
                                chiploc_rows_json(&t)),
                      cmd);
  else if (links ? print_table(&t, LINK_TABLE, sizeof LINK_TABLE / sizeof LINK_TABLE[0],
                               "(no links)")
                 : print_table(&t, MEASUREMENT_TABLE,
                               sizeof MEASUREMENT_TABLE / sizeof MEASUREMENT_TABLE[0],
                               "(no measurements)")) {
    chiploc_errorf("%s: out of memory", cmd);
    code = 1;
  }
  cl_status_rows_free(&t);
  return code;
}

int cmd_measurements(int argc, char **argv) { return recent(argc, argv, 0); }
int cmd_links(int argc, char **argv) { return recent(argc, argv, 1); }
