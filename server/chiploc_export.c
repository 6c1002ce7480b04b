/*
 * chiploc export: the current picture of the world as one RFC 7946 GeoJSON
 * FeatureCollection, for QGIS, a web map or any GeoJSON reader. It reads
 * only the dashboard views (lib/db/cl_export.c), so the read-only
 * chiploc_dashboard role can run it. Features, each with a `kind` property:
 *
 *   landmark       Point at the declared position: name, open alerts
 *   chip_region    the latest attestation's cap (centre, radius), which
 *                  contains the chip's feasible region F, as a MultiPolygon;
 *                  a null geometry when that attestation is not CONSISTENT
 *                  or the chip was never attested
 *   declared_site  Point at the chip's declared site
 *
 * The file is written next to its final name and renamed into place, so a
 * reader never sees half of it. Exit codes: 0 written, 1 database or file
 * failure, 2 usage error.
 */
#include "chiploc_cli.h"
#include "chiploc_cmds.h"

#include "cl_err.h"
#include "cl_export.h"
#include "cl_geojson.h"
#include "cl_store.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_DB = 256, OPT_OUT, OPT_HELP };

static void usage_export(FILE *f) {
  fputs("usage: chiploc export [--db CONNINFO] --out FILE.geojson|-\n"
        "\n"
        "Writes every landmark (Point at its declared position), every chip's latest\n"
        "feasible region (the attestation's cap around its centre, a MultiPolygon; null\n"
        "geometry unless CONSISTENT) and every chip's declared site (Point) as one\n"
        "GeoJSON FeatureCollection (RFC 7946). Each feature has a \"kind\" property:\n"
        "landmark, chip_region or declared_site; chips carry serial, operator, verdicts,\n"
        "radius_km, round_end and open_alerts. Reads the dashboard views only, so the\n"
        "chiploc_dashboard role may run it. --db defaults to $CHIPLOC_DB. --out -\n"
        "writes the document to standard output (and the summary line to stderr);\n"
        "a file is replaced atomically.\n"
        "\n"
        "exit status: 0 written, 1 database or file error, 2 usage error\n",
        f);
}

/* JSON array of the comma-separated alert kinds (empty array for ""). */
static json_t *alerts_json(const char *list) {
  json_t *a = json_array();
  if (!a || !list) return a;
  const char *p = list;
  while (*p) {
    size_t n = strcspn(p, ",");
    if (n > 0) json_array_append_new(a, json_stringn(p, n));
    p += n;
    if (*p == ',') p++;
  }
  return a;
}

static json_t *string_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* The properties every chip feature shares. */
static json_t *chip_props(const cl_export_chip *ch, const char *kind) {
  json_t *p = json_object();
  json_object_set_new(p, "kind", json_string(kind));
  json_object_set_new(p, "serial", json_string(ch->serial ? ch->serial : ""));
  json_object_set_new(p, "operator", json_string(ch->operator_name ? ch->operator_name : ""));
  json_object_set_new(p, "site_lat", json_real(ch->site_lat));
  json_object_set_new(p, "site_lon", json_real(ch->site_lon));
  json_object_set_new(p, "active", json_boolean(ch->active));
  json_object_set_new(p, "consistency", string_or_null(ch->consistency));
  json_object_set_new(p, "site", string_or_null(ch->site_verdict));
  json_object_set_new(p, "region", string_or_null(ch->region_verdict));
  json_object_set_new(p, "round_end", string_or_null(ch->round_end));
  json_object_set_new(p, "open_alerts", alerts_json(ch->open_alerts));
  return p;
}

/* Builds the FeatureCollection; NULL when out of memory. */
static json_t *build(const cl_export_world *w, size_t *n_regions) {
  json_t *features = json_array();
  if (!features) return NULL;
  *n_regions = 0;
  for (size_t i = 0; i < w->n_landmarks; i++) {
    const cl_export_landmark *l = &w->landmarks[i];
    json_t *p = json_object();
    json_object_set_new(p, "kind", json_string("landmark"));
    json_object_set_new(p, "name", json_string(l->name ? l->name : ""));
    json_object_set_new(p, "lat", json_real(l->lat));
    json_object_set_new(p, "lon", json_real(l->lon));
    json_object_set_new(p, "measurements_1h", json_integer((json_int_t)l->measurements_1h));
    json_object_set_new(p, "open_alerts", alerts_json(l->open_alerts));
    json_array_append_new(features, cl_geojson_feature(cl_geojson_point(l->lat, l->lon), p));
  }
  for (size_t i = 0; i < w->n_chips; i++) {
    const cl_export_chip *ch = &w->chips[i];
    json_t *geom = NULL;
    json_t *p = chip_props(ch, "chip_region");
    if (ch->has_region) {
      const char *how = "";
      geom = cl_geojson_cap(ch->centre_lat, ch->centre_lon, ch->radius_km * 1000.0, &how);
      if (!geom) {
        json_decref(p);
        json_decref(features);
        return NULL;
      }
      json_object_set_new(p, "centre_lat", json_real(ch->centre_lat));
      json_object_set_new(p, "centre_lon", json_real(ch->centre_lon));
      json_object_set_new(p, "radius_km", json_real(ch->radius_km));
      json_object_set_new(p, "outline", json_string(how));
      (*n_regions)++;
    } else {
      json_object_set_new(p, "centre_lat", json_null());
      json_object_set_new(p, "centre_lon", json_null());
      json_object_set_new(p, "radius_km", json_null());
    }
    json_object_set_new(p, "landmarks_used",
                        ch->attested ? json_integer((json_int_t)ch->landmarks_used) : json_null());
    json_array_append_new(features, cl_geojson_feature(geom, p));
  }
  for (size_t i = 0; i < w->n_chips; i++) {
    const cl_export_chip *ch = &w->chips[i];
    json_array_append_new(features, cl_geojson_feature(cl_geojson_point(ch->site_lat, ch->site_lon),
                                                       chip_props(ch, "declared_site")));
  }
  if (json_array_size(features) != w->n_landmarks + 2 * w->n_chips) {
    json_decref(features); /* an allocation inside failed */
    return NULL;
  }
  return cl_geojson_collection(features);
}

/* Writes root to path through a temporary file in the same directory. */
static int write_atomic(json_t *root, const char *path) {
  if (strcmp(path, "-") == 0) {
    int rc = json_dumpf(root, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(12));
    if (rc == 0 && (fputc('\n', stdout) == EOF || fflush(stdout) != 0)) rc = -1;
    return rc == 0 ? CL_OK : CL_EIO;
  }
  size_t n = strlen(path) + 16;
  char *tmp = malloc(n);
  if (!tmp) return CL_ENOMEM;
  snprintf(tmp, n, "%s.tmp", path);
  int rc = json_dump_file(root, tmp, JSON_INDENT(1) | JSON_REAL_PRECISION(12));
  if (rc == 0 && rename(tmp, path) != 0) rc = -1;
  if (rc != 0) {
    int e = errno;
    remove(tmp);
    errno = e;
  }
  free(tmp);
  return rc == 0 ? CL_OK : CL_EIO;
}

int cmd_export(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"out", required_argument, NULL, OPT_OUT},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL, *out = NULL;
  int c;
#ifdef __GLIBC__
  optind = 0; /* getopt keeps state between calls: start afresh */
#else
  optind = 1;
#endif
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_OUT: out = optarg; break;
    case 'h':
    case OPT_HELP: usage_export(stdout); return 0;
    case ':':
      fprintf(stderr, "chiploc: export: %s needs a value\n", argv[optind - 1]);
      return 2;
    default:
      fprintf(stderr, "chiploc: export: unknown option %s (see chiploc export --help)\n",
              argv[optind - 1]);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "chiploc: export: unexpected argument %s\n", argv[optind]);
    return 2;
  }
  if (!out || !out[0]) {
    fprintf(stderr, "chiploc: export: --out FILE.geojson is required\n");
    return 2;
  }
  db = chiploc_conninfo(db, "export");
  if (!db) return 2;
  cl_store *s = chiploc_connect(db);
  if (!s) return 1;
  char err[512] = "";
  cl_export_world w;
  int rc = cl_export_load(s, &w, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    fprintf(stderr, "chiploc: export: %s\n", err[0] ? err : cl_strerror(rc));
    return 1;
  }
  size_t n_regions = 0;
  json_t *root = build(&w, &n_regions);
  int status = 0;
  if (!root) {
    fprintf(stderr, "chiploc: export: out of memory\n");
    status = 1;
  } else if (write_atomic(root, out) != CL_OK) {
    fprintf(stderr, "chiploc: export: cannot write %s: %s\n", out, strerror(errno));
    status = 1;
  } else {
    /* With --out - the document is stdout: the summary goes to stderr. */
    fprintf(strcmp(out, "-") == 0 ? stderr : stdout,
            "export: %zu landmark(s), %zu chip(s), %zu feasible region(s) written to %s\n",
            w.n_landmarks, w.n_chips, n_regions, strcmp(out, "-") == 0 ? "stdout" : out);
  }
  json_decref(root);
  cl_export_free(&w);
  if (status == 0 && fflush(stdout) != 0) status = 1;
  return status;
}
