/*
 * `chiploc region import`: loads allowed regions from a GeoJSON file into
 * the database. The whole file is parsed and checked by the region loader
 * (lib/io/cl_region_geojson.c) before a connection is opened, and every region
 * is then written in one transaction: a malformed file, or a database
 * failure halfway, imports nothing.
 */
#include "chiploc_cli.h"
#include "chiploc_cmds.h"

#include "cl_err.h"
#include "cl_region.h"
#include "cl_region_geojson.h"
#include "cl_store.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_DB = 256, OPT_CODE_PROPERTY, OPT_HELP };

static void usage(FILE *f) {
  fputs("usage: chiploc region import FILE.geojson --code-property NAME [--db CONNINFO]\n"
        "\n"
        "Loads allowed regions into the database. FILE is a GeoJSON\n"
        "FeatureCollection (or one Feature) of Polygon and MultiPolygon\n"
        "geometries, or GeometryCollections of them (maritime borders come so);\n"
        "the feature property NAME holds each region's code, and\n"
        "features sharing a code become one region. Existing codes are replaced.\n"
        "The file is checked in full first: if anything is wrong, nothing is\n"
        "imported. See chiploc(1), and REGIONS.md in share/doc/chiploc.\n"
        "\n"
        "  --code-property NAME  feature property with the region code (isoA3 in the\n"
        "                        maritime country borders, A3 in the land borders)\n"
        "  --db CONNINFO         libpq connection string (default: $CHIPLOC_DB)\n",
        f);
}

/* Writes every region in one transaction; 0 or 1 after a message. */
static int store_all(const char *conninfo, const cl_region_set *set, char **json,
                     const char *file) {
  cl_store *s = chiploc_connect(conninfo);
  if (!s) return 1;
  char err[512] = "";
  int rc = cl_store_begin(s, err, sizeof err);
  for (size_t i = 0; i < set->n && rc == CL_OK; i++)
    rc = cl_store_region_put(s, cl_region_code(set->regions[i]), json[i],
                             cl_region_vertex_count(set->regions[i]), err, sizeof err);
  if (rc == CL_OK) rc = cl_store_commit(s, err, sizeof err);
  if (rc != CL_OK) cl_store_rollback(s);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    chiploc_errorf("region import %s: %s; nothing was imported", file, err);
    return 1;
  }
  return 0;
}

static int region_import(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"code-property", required_argument, NULL, OPT_CODE_PROPERTY},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL, *prop = NULL;
  int c;
#ifdef __GLIBC__
  optind = 0;
#else
  optind = 1;
#endif
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_CODE_PROPERTY: prop = optarg; break;
    case 'h':
    case OPT_HELP: usage(stdout); return 0;
    case ':': chiploc_errorf("region import: %s needs a value", argv[optind - 1]); return 2;
    default:
      chiploc_errorf("region import: unknown option %s (see chiploc region --help)", argv[optind - 1]);
      return 2;
    }
  }
  if (optind >= argc) {
    chiploc_errorf("region import: no GeoJSON file given");
    return 2;
  }
  if (argc - optind > 1) {
    chiploc_errorf("region import: unexpected argument %s", argv[optind + 1]);
    return 2;
  }
  const char *file = argv[optind];
  if (!prop || !prop[0]) {
    chiploc_errorf("region import: --code-property is required (the feature property holding the code)");
    return 2;
  }
  const char *conninfo = chiploc_conninfo(db, "region import");
  if (!conninfo) return 2;

  cl_region_set set;
  char err[512] = "";
  int rc = cl_region_set_load_geojson(&set, file, prop, err, sizeof err);
  if (rc != CL_OK) {
    chiploc_errorf("region import %s: %s; nothing was imported", file, err[0] ? err : cl_strerror(rc));
    return 1;
  }
  char **json = calloc(set.n ? set.n : 1, sizeof *json);
  rc = json ? CL_OK : CL_ENOMEM;
  for (size_t i = 0; i < set.n && rc == CL_OK; i++)
    rc = cl_region_to_geojson(set.regions[i], &json[i], NULL);
  int status;
  if (rc != CL_OK) {
    chiploc_errorf("region import %s: %s", file, cl_strerror(rc));
    status = 1;
  } else {
    status = store_all(conninfo, &set, json, file);
  }
  if (status == 0) printf("imported %zu region(s) from %s\n", set.n, file);
  for (size_t i = 0; json && i < set.n; i++) free(json[i]);
  free(json);
  cl_region_set_free(&set);
  return status;
}

int cmd_region(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(argv[1], "import") == 0) return region_import(argc - 1, argv + 1);
  chiploc_errorf("region: unknown subcommand %s (see chiploc region --help)", argv[1]);
  return 2;
}
