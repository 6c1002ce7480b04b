/*
 * dashboard_seed: seeds an empty database with the dashboard's world
 * (tests/tu_seed.h: landmarks, regions, chips with genuine signed records,
 * two of them with script-like serial and operator, the real verifier's
 * rounds) and prints what it made as one JSON document: the chips with
 * their verdicts and open alerts as the database has them, and the
 * landmarks. A test tool for the browser test, never installed.
 *
 *   dashboard_seed --db CONNINFO [--chiploc PATH] [--dir DIR]
 *
 * --chiploc defaults to the chiploc of this build tree, --dir (the
 * verifier's key and seed.log) to a new directory under /tmp. Exit status:
 * 0 seeded, 1 failure, 2 usage.
 */
#include "tu_seed.h"

#include "cl_err.h"
#include "cl_status.h"
#include "cl_store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The chips and landmarks as the views show them, printed. */
static int print_world(const char *conninfo) {
  cl_store *s = NULL;
  char err[512] = "";
  cl_status_rows chips, lms;
  if (cl_store_connect(&s, conninfo, err, sizeof err) != CL_OK ||
      cl_status_chips(s, NULL, NULL, &chips, err, sizeof err) != CL_OK) {
    fprintf(stderr, "dashboard_seed: %s\n", err);
    cl_store_destroy(&s);
    return 1;
  }
  if (cl_status_landmarks(s, 300, &lms, err, sizeof err) != CL_OK) {
    fprintf(stderr, "dashboard_seed: %s\n", err);
    cl_status_rows_free(&chips);
    cl_store_destroy(&s);
    return 1;
  }
  cl_store_destroy(&s);
  static const char *const CHIP_COLS[] = {"serial", "operator", "consistency", "site_verdict",
                                          "region_verdict"};
  json_t *ca = json_array(), *la = json_array();
  for (size_t i = 0; i < chips.nrows; i++) {
    json_t *o = json_object();
    for (size_t k = 0; k < sizeof CHIP_COLS / sizeof CHIP_COLS[0]; k++) {
      const char *v = cl_status_cell(&chips, i, CHIP_COLS[k]);
      json_object_set_new(o, CHIP_COLS[k], v ? json_string(v) : json_null());
    }
    json_object_set_new(o, "active",
                        json_boolean(cl_status_cell(&chips, i, "active")[0] == 't'));
    json_t *alerts = json_array();
    const char *p = cl_status_cell(&chips, i, "open_alerts");
    while (p && *p) {
      size_t n = strcspn(p, ",");
      json_array_append_new(alerts, json_stringn(p, n));
      p += n + (p[n] == ',');
    }
    json_object_set_new(o, "open_alerts", alerts);
    json_array_append_new(ca, o);
  }
  for (size_t i = 0; i < lms.nrows; i++)
    json_array_append_new(la, json_pack("{ss ss}", "name", cl_status_cell(&lms, i, "name"),
                                        "state", cl_status_cell(&lms, i, "state")));
  json_t *doc = json_pack("{so so ss ss ss si}", "chips", ca, "landmarks", la, "smuggled",
                          "S-SMUGGLED", "hostile_serial", TU_SEED_HOSTILE_SERIAL,
                          "hostile_operator", TU_SEED_HOSTILE_OPERATOR, "rounds", TU_SEED_ROUNDS);
  cl_status_rows_free(&chips);
  cl_status_rows_free(&lms);
  int rc = doc && json_dumpf(doc, stdout, JSON_INDENT(2)) == 0 ? 0 : 1;
  putchar('\n');
  json_decref(doc);
  return rc;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                       {"chiploc", required_argument, NULL, 'c'},
                                       {"dir", required_argument, NULL, 'D'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *db = NULL, *chiploc = TU_SEED_CHIPLOC, *dir = NULL;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'd': db = optarg; break;
    case 'c': chiploc = optarg; break;
    case 'D': dir = optarg; break;
    case 'h':
      puts("usage: dashboard_seed --db CONNINFO [--chiploc PATH] [--dir DIR]");
      return 0;
    default: return 2;
    }
  }
  if (!db || optind < argc) {
    fprintf(stderr, "usage: dashboard_seed --db CONNINFO [--chiploc PATH] [--dir DIR]\n");
    return 2;
  }
  char tmpl[] = "/tmp/cl-dash-seed-XXXXXX";
  if (!dir && !(dir = mkdtemp(tmpl))) {
    perror("dashboard_seed: mkdtemp");
    return 1;
  }
  char err[512] = "";
  if (tu_seed_dashboard(db, chiploc, dir, err, sizeof err) != 0) {
    fprintf(stderr, "dashboard_seed: %s\n", err);
    return 1;
  }
  return print_world(db);
}
