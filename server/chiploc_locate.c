/*
 * chiploc locate / chiploc landmarks check: offline location of one chip
 * from a CSV of landmark positions and RTTs, and the landmark cross-check.
 * Thin shell over the location engine (cl_geo), the regions (cl_region), the
 * CSV reader (cl_csv) and the cross-check (cl_xcheck): it parses arguments,
 * reads files, prints verdicts as text or JSON and writes a GeoJSON picture.
 *
 * Exit codes. locate: 0 for any verdict (the verdict is the output), 1 on
 * I/O or memory failure, 2 on usage or input errors. landmarks check: 0 when
 * no pair violates physics, 3 when some do, 1 and 2 as for locate.
 */
#include "chiploc_cmds.h"
#include "cl_csv.h"
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_geojson.h"
#include "cl_probe.h"
#include "cl_region.h"
#include "cl_region_geojson.h"
#include "cl_xcheck.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_VIOLATIONS 3

#define MAX_ALLOWED 64

/* Exit code for a library error while reading input: I/O and memory are
 * runtime failures, everything else is bad input. */
static int input_exit(int rc) {
  return rc == CL_EIO || rc == CL_ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
}

/* ---- locate: arguments ---------------------------------------------------- */

static const char LOCATE_USAGE[] =
    "usage: chiploc locate --landmarks FILE.csv [--speed c|fibre|M_PER_S] [--site LAT,LON]\n"
    "                      [--regions FILE.geojson --allowed CODE[,CODE...]]\n"
    "                      [--code-property NAME] [--min-landmarks N] [--json]\n"
    "                      [--geojson OUT]\n";

static void locate_help(void) {
  printf("%s", LOCATE_USAGE);
  printf("\n"
         "Computes the feasible region F of one chip from landmark RTTs and gives the\n"
         "verdicts of chiploc(1) (LOCATE.md in share/doc/chiploc). FILE.csv has a\n"
         "header row with the columns name,lat,lon,rtt_ms (degrees on WGS84, round-trip\n"
         "time in milliseconds; other columns are ignored). Each RTT bounds the signal's path to\n"
         "v * rtt * (1 + %g) / 2 (a margin for the clock's rate), and as no path is\n"
         "shorter than the straight line through the Earth, the distance on the surface\n"
         "may be a little longer (ENGINE.md): 8 km at 2 000 km, 140 km at 5 000 km.\n"
         "Landmarks within %g m of each other count once towards --min-landmarks.\n"
         "\n"
         "  --speed V            c (default; sound against any medium), fibre (2/3 c, a\n"
         "                       tighter estimate) or metres per second\n"
         "  --site LAT,LON       declared site: SITE_CONSISTENT or SITE_EXCLUDED\n"
         "  --regions FILE       GeoJSON FeatureCollection of allowed regions, with\n"
         "  --allowed CODES      the codes (comma-separated) whose union is allowed:\n"
         "                       INSIDE, OUTSIDE or UNDETERMINED\n"
         "  --code-property NAME feature property holding the code (default A3)\n"
         "  --min-landmarks N    fewer landmarks give INSUFFICIENT (default 3)\n"
         "  --json               one JSON object instead of key: value lines\n"
         "  --geojson OUT        also write landmarks, their caps, F and the site as a\n"
         "                       GeoJSON FeatureCollection\n"
         "\n"
         "Exit status: 0 for any verdict, 1 on I/O failure, 2 on usage or input errors.\n",
         CL_CLOCK_RATE_MARGIN, CL_GEO_SAME_PLACE_M);
}

typedef struct {
  const char *landmarks, *speed, *site, *regions, *allowed, *code_property, *geojson;
  long min_landmarks;
  int json;
} locate_args;

/* Everything the outputs need about one run. */
typedef struct {
  const cl_csv_landmark *lm;
  size_t n;
  const cl_geo_landmark *glm;
  double speed;
  const double *site; /* NULL if none */
  const char *const *allowed;
  size_t n_allowed;
  size_t min_landmarks;
  const cl_geo_result *res;
} locate_run;

static int is_excluded(const locate_run *r, size_t i) {
  if (r->res->consistency != CL_GEO_INCONSISTENT)
    return 0;
  for (size_t k = 0; k < r->res->n_excluded; k++)
    if (r->res->excluded[k] == i)
      return 1;
  return 0;
}

/* Writes the FeatureCollection to path. Returns 0 or an exit code. */
static int write_geojson(const locate_run *r, const char *path) {
  const cl_geo_result *res = r->res;
  json_t *features = json_array();
  for (size_t i = 0; i < r->n; i++) {
    json_t *props = json_pack("{s:s,s:s,s:f,s:f,s:b}", "kind", "landmark", "name", r->lm[i].name,
                              "rtt_ms", r->lm[i].rtt_ms, "bound_km", r->glm[i].bound_m / 1e3,
                              "excluded", is_excluded(r, i));
    json_array_append_new(features,
                          cl_geojson_feature(cl_geojson_point(r->lm[i].lat, r->lm[i].lon), props));
  }
  for (size_t i = 0; i < r->n; i++) {
    const char *how = "";
    json_t *geom = cl_geojson_cap(r->lm[i].lat, r->lm[i].lon, r->glm[i].bound_m, &how);
    if (!geom) {
      json_decref(features);
      fprintf(stderr, "chiploc: out of memory\n");
      return EXIT_RUNTIME;
    }
    json_t *props = json_pack("{s:s,s:s,s:f,s:s}", "kind", "cap", "name", r->lm[i].name,
                              "bound_km", r->glm[i].bound_m / 1e3, "outline", how);
    json_array_append_new(features, cl_geojson_feature(geom, props));
  }
  json_t *fprops = json_pack("{s:s,s:s,s:f,s:I}", "kind", "feasible_region", "consistency",
                             cl_geo_consistency_name(res->consistency), "speed_m_per_s", r->speed,
                             "landmarks_used", (json_int_t)res->n_usable);
  json_object_set_new(fprops, "site", json_string(cl_geo_site_name(res->site)));
  json_object_set_new(fprops, "region", json_string(cl_geo_region_name(res->region)));
  json_t *fgeom = NULL;
  if (res->consistency == CL_GEO_CONSISTENT) {
    size_t nrects = 0;
    fgeom = cl_geojson_cells(res->cells, res->n_cells, &nrects);
    if (!fgeom) {
      json_decref(fprops);
      json_decref(features);
      fprintf(stderr, "chiploc: out of memory\n");
      return EXIT_RUNTIME;
    }
    json_object_set_new(fprops, "centre_lat", json_real(res->centre_lat));
    json_object_set_new(fprops, "centre_lon", json_real(res->centre_lon));
    json_object_set_new(fprops, "radius_km", json_real(res->radius_km));
    json_object_set_new(fprops, "rectangles", json_integer((json_int_t)nrects));
  }
  json_array_append_new(features, cl_geojson_feature(fgeom, fprops));
  if (r->site) {
    json_t *sprops = json_pack("{s:s,s:s}", "kind", "site", "verdict", cl_geo_site_name(res->site));
    if (res->site == CL_SITE_EXCLUDED) {
      json_object_set_new(sprops, "landmark", json_string(r->lm[res->site_landmark].name));
      json_object_set_new(sprops, "margin_km", json_real(res->site_margin_km));
    }
    json_array_append_new(features,
                          cl_geojson_feature(cl_geojson_point(r->site[0], r->site[1]), sprops));
  }
  json_t *root = cl_geojson_collection(features);
  int rc = json_dump_file(root, path, JSON_INDENT(1) | JSON_REAL_PRECISION(12));
  json_decref(root);
  if (rc != 0) {
    fprintf(stderr, "chiploc: cannot write %s: %s\n", path, strerror(errno));
    return EXIT_RUNTIME;
  }
  return EXIT_OK;
}

/* ---- locate: outputs ---------------------------------------------------- */

static void print_text(const locate_run *r) {
  const cl_geo_result *res = r->res;
  printf("consistency: %s\n", cl_geo_consistency_name(res->consistency));
  printf("speed_m_per_s: %.10g\n", r->speed);
  printf("landmarks_used: %zu\n", res->n_usable);
  if (res->consistency == CL_GEO_INSUFFICIENT)
    printf("min_landmarks: %zu\n", r->min_landmarks);
  if (res->consistency == CL_GEO_CONSISTENT) {
    printf("centre: %.5f, %.5f\n", res->centre_lat, res->centre_lon);
    printf("radius_km: %.1f\n", res->radius_km);
  }
  if (res->consistency == CL_GEO_INCONSISTENT) {
    printf("excluded: ");
    for (size_t k = 0; k < res->n_excluded; k++)
      printf("%s%s", k ? ", " : "", r->lm[res->excluded[k]].name);
    printf("%s\n", res->excluded_minimal ? "" : " (not proven minimal)");
  }
  printf("site: %s\n", cl_geo_site_name(res->site));
  if (res->site == CL_SITE_EXCLUDED) {
    printf("site_landmark: %s\n", r->lm[res->site_landmark].name);
    printf("site_margin_km: %.1f\n", res->site_margin_km);
  }
  printf("region: %s\n", cl_geo_region_name(res->region));
  if (r->n_allowed) {
    printf("allowed: ");
    for (size_t k = 0; k < r->n_allowed; k++)
      printf("%s%s", k ? "," : "", r->allowed[k]);
    printf("\n");
  }
}

static int print_json(const locate_run *r) {
  const cl_geo_result *res = r->res;
  int consistent = res->consistency == CL_GEO_CONSISTENT;
  json_t *o = json_object();
  json_object_set_new(o, "consistency", json_string(cl_geo_consistency_name(res->consistency)));
  json_object_set_new(o, "speed_m_per_s", json_real(r->speed));
  json_object_set_new(o, "landmarks_used", json_integer((json_int_t)res->n_usable));
  json_object_set_new(o, "min_landmarks", json_integer((json_int_t)r->min_landmarks));
  json_object_set_new(o, "centre",
                      consistent
                          ? json_pack("{s:f,s:f}", "lat", res->centre_lat, "lon", res->centre_lon)
                          : json_null());
  json_object_set_new(o, "radius_km", consistent ? json_real(res->radius_km) : json_null());
  json_t *site = json_pack("{s:s}", "verdict", cl_geo_site_name(res->site));
  if (r->site) {
    json_object_set_new(site, "lat", json_real(r->site[0]));
    json_object_set_new(site, "lon", json_real(r->site[1]));
  }
  int ex = res->site == CL_SITE_EXCLUDED;
  json_object_set_new(site, "landmark",
                      ex ? json_string(r->lm[res->site_landmark].name) : json_null());
  json_object_set_new(site, "margin_km", ex ? json_real(res->site_margin_km) : json_null());
  json_object_set_new(o, "site", site);
  json_t *allowed = json_array();
  for (size_t k = 0; k < r->n_allowed; k++)
    json_array_append_new(allowed, json_string(r->allowed[k]));
  json_object_set_new(
      o, "region",
      json_pack("{s:s,s:o}", "verdict", cl_geo_region_name(res->region), "allowed", allowed));
  json_t *excl = json_array();
  int inconsistent = res->consistency == CL_GEO_INCONSISTENT;
  for (size_t k = 0; inconsistent && k < res->n_excluded; k++)
    json_array_append_new(excl, json_string(r->lm[res->excluded[k]].name));
  json_object_set_new(o, "excluded", excl);
  json_object_set_new(o, "excluded_minimal",
                      json_boolean(inconsistent ? res->excluded_minimal : 1));
  int rc = json_dumpf(o, stdout, JSON_INDENT(2));
  json_decref(o);
  if (rc != 0)
    return EXIT_RUNTIME;
  printf("\n");
  return EXIT_OK;
}

/* ---- locate --------------------------------------------------------------- */

/* Splits a comma-separated list of codes into codes[] (pointers into buf). */
static int split_codes(char *buf, const char **codes, size_t *n) {
  *n = 0;
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    if (*n == MAX_ALLOWED)
      return -1;
    codes[(*n)++] = t;
  }
  return *n > 0 ? 0 : -1;
}

/* Runs locate once arguments are parsed; owns nothing it does not free. */
static int locate_main(const locate_args *a) {
  double speed = 0;
  if (cl_speed_parse(a->speed, &speed) != CL_OK) {
    fprintf(stderr, "chiploc: --speed: '%s' is not c, fibre or a speed in m/s in (0, c]\n",
            a->speed);
    return EXIT_USAGE;
  }
  double site[2];
  if (a->site && cl_geo_parse_position(a->site, &site[0], &site[1]) != CL_OK) {
    fprintf(stderr,
            "chiploc: --site: '%s' is not LAT,LON in degrees (lat in [-90, 90], lon in "
            "[-180, 180])\n",
            a->site);
    return EXIT_USAGE;
  }
  if (!!a->regions != !!a->allowed) {
    fprintf(stderr, "chiploc: --regions and --allowed go together\n%s", LOCATE_USAGE);
    return EXIT_USAGE;
  }
  char *codes_buf = a->allowed ? strdup(a->allowed) : NULL;
  const char *codes[MAX_ALLOWED];
  size_t ncodes = 0;
  if (a->allowed && (!codes_buf || split_codes(codes_buf, codes, &ncodes) != 0)) {
    fprintf(stderr, "chiploc: --allowed: give 1 to %d comma-separated region codes\n", MAX_ALLOWED);
    free(codes_buf);
    return EXIT_USAGE;
  }

  int exit_code = EXIT_RUNTIME;
  char err[512] = "";
  cl_csv_landmark *lm = NULL;
  size_t n = 0;
  cl_geo_landmark *glm = NULL;
  cl_region_set set = {0};
  const cl_region *members[MAX_ALLOWED];
  cl_geo_ctx *ctx = NULL;

  int rc = cl_csv_load_landmarks(a->landmarks, &lm, &n, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "chiploc: %s\n", err[0] ? err : cl_strerror(rc));
    exit_code = input_exit(rc);
    goto done;
  }
  if (n > CL_GEO_MAX_LANDMARKS) {
    fprintf(stderr, "chiploc: %s: %zu landmarks, more than the %d the engine takes\n", a->landmarks,
            n, CL_GEO_MAX_LANDMARKS);
    exit_code = EXIT_USAGE;
    goto done;
  }
  glm = calloc(n ? n : 1, sizeof *glm);
  if (!glm)
    goto oom;
  for (size_t i = 0; i < n; i++)
    glm[i] = (cl_geo_landmark){lm[i].lat, lm[i].lon, cl_geo_bound_m(lm[i].rtt_ms / 1e3, speed)};

  cl_region_union allowed = {members, 0};
  if (a->regions) {
    rc = cl_region_set_load_geojson(&set, a->regions, a->code_property, err, sizeof err);
    if (rc < 0) {
      if (strncmp(err, a->regions, strlen(a->regions)) == 0 || strstr(err, a->regions))
        fprintf(stderr, "chiploc: %s\n", err);
      else
        fprintf(stderr, "chiploc: %s: %s\n", a->regions, err[0] ? err : cl_strerror(rc));
      exit_code = input_exit(rc);
      goto done;
    }
    for (size_t k = 0; k < ncodes; k++) {
      members[k] = cl_region_set_find(&set, codes[k]);
      if (!members[k]) {
        fprintf(stderr, "chiploc: --allowed: no region with %s \"%s\" in %s\n", a->code_property,
                codes[k], a->regions);
        exit_code = EXIT_USAGE;
        goto done;
      }
    }
    allowed.n = ncodes;
  }

  cl_geo_params params;
  cl_geo_params_default(&params);
  params.min_landmarks = (size_t)a->min_landmarks;
  if (cl_geo_ctx_create(&ctx) != CL_OK)
    goto oom;
  cl_geo_result res;
  rc = cl_geo_locate(ctx, glm, n, &params, a->site ? site : NULL, a->regions ? &allowed : NULL,
                     &res);
  if (rc == CL_ENOMEM)
    goto oom;
  if (rc < 0) {
    fprintf(stderr, "chiploc: the location engine refused the input: %s\n", cl_strerror(rc));
    exit_code = EXIT_USAGE;
    goto done;
  }
  locate_run run = {.lm = lm,
                    .n = n,
                    .glm = glm,
                    .speed = speed,
                    .site = a->site ? site : NULL,
                    .allowed = codes,
                    .n_allowed = ncodes,
                    .min_landmarks = params.min_landmarks,
                    .res = &res};
  exit_code = EXIT_OK;
  if (a->geojson)
    exit_code = write_geojson(&run, a->geojson);
  if (exit_code == EXIT_OK) {
    if (a->json)
      exit_code = print_json(&run);
    else
      print_text(&run);
  }
  if (fflush(stdout) != 0) {
    fprintf(stderr, "chiploc: cannot write the output: %s\n", strerror(errno));
    exit_code = EXIT_RUNTIME;
  }
  goto done;
oom:
  fprintf(stderr, "chiploc: out of memory\n");
  exit_code = EXIT_RUNTIME;
done:
  cl_geo_ctx_destroy(&ctx);
  cl_region_set_free(&set);
  free(glm);
  cl_csv_landmarks_free(&lm, n);
  free(codes_buf);
  return exit_code;
}

int cmd_locate(int argc, char **argv) {
  static const struct option opts[] = {{"landmarks", required_argument, NULL, 'l'},
                                       {"speed", required_argument, NULL, 's'},
                                       {"site", required_argument, NULL, 'S'},
                                       {"regions", required_argument, NULL, 'r'},
                                       {"allowed", required_argument, NULL, 'a'},
                                       {"code-property", required_argument, NULL, 'p'},
                                       {"min-landmarks", required_argument, NULL, 'm'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"geojson", required_argument, NULL, 'g'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  locate_args a = {.speed = "c", .code_property = "A3", .min_landmarks = 3};
  int o;
  optind = 1;
  while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (o) {
    case 'l': a.landmarks = optarg; break;
    case 's': a.speed = optarg; break;
    case 'S': a.site = optarg; break;
    case 'r': a.regions = optarg; break;
    case 'a': a.allowed = optarg; break;
    case 'p': a.code_property = optarg; break;
    case 'j': a.json = 1; break;
    case 'g': a.geojson = optarg; break;
    case 'm': {
      char *end = NULL;
      errno = 0;
      long v = strtol(optarg, &end, 10);
      if (errno || end == optarg || *end || v < 1 || v > CL_GEO_MAX_LANDMARKS) {
        fprintf(stderr, "chiploc: --min-landmarks: '%s' is not an integer in [1, %d]\n", optarg,
                CL_GEO_MAX_LANDMARKS);
        return EXIT_USAGE;
      }
      a.min_landmarks = v;
      break;
    }
    case 'h': locate_help(); return EXIT_OK;
    default: fprintf(stderr, "%s", LOCATE_USAGE); return EXIT_USAGE;
    }
  }
  if (!a.landmarks || optind != argc) {
    if (optind != argc)
      fprintf(stderr, "chiploc: unexpected argument '%s'\n", argv[optind]);
    fprintf(stderr, "%s", LOCATE_USAGE);
    return EXIT_USAGE;
  }
  return locate_main(&a);
}

/* ---- landmarks check ---------------------------------------------------- */

static const char CHECK_USAGE[] =
    "usage: chiploc landmarks check --positions FILE.csv --rtts FILE.csv [--speed V] [--json]\n";

static void check_help(void) {
  printf("%s", CHECK_USAGE);
  printf("\n"
         "Cross-checks landmarks: flags every pair whose RTT is below the physical\n"
         "minimum 2 s / v for their declared positions (s the WGS84 geodesic distance),\n"
         "and names the landmarks to blame: those in every smallest set that takes\n"
         "part in every violation. Where the links cannot single one out (a single\n"
         "violated link a-b: either end explains it), the suspects are listed as a\n"
         "group, \"ambiguous: N of {a, b, ...}\", and none of them is blamed.\n"
         "Positions: columns name,lat,lon. RTTs: columns a,b,rtt_ms (either\n"
         "direction; the smallest RTT of a pair counts; rows with a = b are ignored).\n"
         "\n"
         "  --speed V   c (default: only then is a violation a proof), fibre, or m/s\n"
         "  --json      one JSON object instead of the table\n"
         "\n"
         "Exit status: 0 no violation, 3 violations found, 1 I/O failure, 2 usage or\n"
         "input errors.\n");
}

static int check_main(const char *positions, const char *rtts, const char *speed_text, int json) {
  double speed = 0;
  if (cl_speed_parse(speed_text, &speed) != CL_OK) {
    fprintf(stderr, "chiploc: --speed: '%s' is not c, fibre or a speed in m/s in (0, c]\n",
            speed_text);
    return EXIT_USAGE;
  }
  char err[512] = "";
  cl_csv_position *pos = NULL;
  cl_csv_rtt *rt = NULL;
  size_t npos = 0, nrt = 0;
  cl_xcheck_position *xp = NULL;
  cl_xcheck_rtt *xr = NULL;
  cl_xcheck_result res = {0};
  int exit_code = EXIT_RUNTIME;
  int rc = cl_csv_load_positions(positions, &pos, &npos, err, sizeof err);
  if (rc == CL_OK)
    rc = cl_csv_load_rtts(rtts, &rt, &nrt, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "chiploc: %s\n", err[0] ? err : cl_strerror(rc));
    exit_code = input_exit(rc);
    goto done;
  }
  xp = malloc((npos ? npos : 1) * sizeof *xp);
  xr = malloc((nrt ? nrt : 1) * sizeof *xr);
  if (!xp || !xr) {
    fprintf(stderr, "chiploc: out of memory\n");
    goto done;
  }
  for (size_t i = 0; i < npos; i++)
    xp[i] = (cl_xcheck_position){pos[i].name, pos[i].lat, pos[i].lon};
  for (size_t i = 0; i < nrt; i++)
    xr[i] = (cl_xcheck_rtt){rt[i].a, rt[i].b, rt[i].rtt_ms, rt[i].line};
  rc = cl_xcheck_run(xp, npos, xr, nrt, speed, rtts, &res, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "chiploc: %s\n", err[0] ? err : cl_strerror(rc));
    exit_code = input_exit(rc);
    goto done;
  }
  if (json) {
    json_t *viol = json_array();
    for (size_t i = 0; i < res.n_violations; i++) {
      const cl_xcheck_violation *v = &res.violations[i];
      json_array_append_new(viol,
                            json_pack("{s:s,s:s,s:f,s:f,s:f,s:f,s:I}", "a", pos[v->a].name, "b",
                                      pos[v->b].name, "rtt_ms", v->rtt_ms, "min_rtt_ms",
                                      v->min_rtt_ms, "distance_km", v->distance_km, "deficit_ms",
                                      v->deficit_ms, "line", (json_int_t)v->line));
    }
    json_t *blame = json_array();
    for (size_t i = 0; i < res.n_blamed; i++)
      json_array_append_new(blame, json_string(pos[res.blamed[i]].name));
    json_t *amb = json_array();
    for (size_t g = 0; g < res.n_ambiguous; g++) {
      json_t *names = json_array();
      for (size_t i = 0; i < res.ambiguous[g].n_members; i++)
        json_array_append_new(names, json_string(pos[res.ambiguous[g].members[i]].name));
      json_array_append_new(amb, json_pack("{s:o,s:I}", "landmarks", names, "need",
                                           (json_int_t)res.ambiguous[g].need));
    }
    json_t *o = json_pack("{s:f,s:I,s:I,s:o,s:o,s:b,s:o}", "speed_m_per_s", speed, "landmarks",
                          (json_int_t)npos, "pairs_checked", (json_int_t)res.n_pairs, "violations",
                          viol, "blame", blame, "blame_minimal", res.blamed_minimal, "ambiguous",
                          amb);
    int jr = json_dumpf(o, stdout, JSON_INDENT(2));
    json_decref(o);
    printf("\n");
    if (jr != 0)
      goto done;
  } else if (res.n_violations == 0) {
    printf("no violations (%zu pairs checked)\n", res.n_pairs);
  } else {
    int wa = 1, wb = 1;
    for (size_t i = 0; i < res.n_violations; i++) {
      int la = (int)strlen(pos[res.violations[i].a].name);
      int lb = (int)strlen(pos[res.violations[i].b].name);
      if (la > wa)
        wa = la;
      if (lb > wb)
        wb = lb;
    }
    printf("%-*s  %-*s  %10s  %10s  %11s\n", wa, "a", wb, "b", "rtt_ms", "min_rtt_ms",
           "distance_km");
    for (size_t i = 0; i < res.n_violations; i++) {
      const cl_xcheck_violation *v = &res.violations[i];
      printf("%-*s  %-*s  %10.3f  %10.3f  %11.1f\n", wa, pos[v->a].name, wb, pos[v->b].name,
             v->rtt_ms, v->min_rtt_ms, v->distance_km);
    }
    printf("violations: %zu of %zu pairs\n", res.n_violations, res.n_pairs);
    printf("blame: ");
    for (size_t i = 0; i < res.n_blamed; i++)
      printf("%s%s", i ? ", " : "", pos[res.blamed[i]].name);
    printf("%s%s\n", res.n_blamed ? "" : "none",
           res.blamed_minimal ? "" : " (not proven minimal)");
    /* A group per set of suspects the links cannot tell apart. */
    for (size_t g = 0; g < res.n_ambiguous; g++) {
      const cl_xcheck_group *gr = &res.ambiguous[g];
      printf("ambiguous: %zu of {", gr->need);
      for (size_t i = 0; i < gr->n_members; i++)
        printf("%s%s", i ? ", " : "", pos[gr->members[i]].name);
      printf("}; the links cannot say which\n");
    }
  }
  if (fflush(stdout) != 0)
    goto done;
  exit_code = res.n_violations ? EXIT_VIOLATIONS : EXIT_OK;
done:
  cl_xcheck_result_free(&res);
  free(xp);
  free(xr);
  cl_csv_positions_free(&pos, npos);
  cl_csv_rtts_free(&rt, nrt);
  return exit_code;
}

int cmd_landmarks(int argc, char **argv) {
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    FILE *f = argc < 2 ? stderr : stdout;
    fprintf(f, "usage: chiploc landmarks check --positions FILE.csv --rtts FILE.csv [--json]\n"
               "  (chiploc landmarks check --help for details)\n");
    return argc < 2 ? EXIT_USAGE : EXIT_OK;
  }
  if (strcmp(argv[1], "check") != 0) {
    fprintf(stderr, "chiploc: landmarks: unknown subcommand '%s' (try chiploc landmarks --help)\n",
            argv[1]);
    return EXIT_USAGE;
  }
  static const struct option opts[] = {{"positions", required_argument, NULL, 'p'},
                                       {"rtts", required_argument, NULL, 'r'},
                                       {"speed", required_argument, NULL, 's'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *positions = NULL, *rtts = NULL, *speed = "c";
  int json = 0, o;
  optind = 1;
  while ((o = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
    switch (o) {
    case 'p': positions = optarg; break;
    case 'r': rtts = optarg; break;
    case 's': speed = optarg; break;
    case 'j': json = 1; break;
    case 'h': check_help(); return EXIT_OK;
    default: fprintf(stderr, "%s", CHECK_USAGE); return EXIT_USAGE;
    }
  }
  if (!positions || !rtts || optind != argc - 1) {
    if (optind != argc - 1)
      fprintf(stderr, "chiploc: unexpected argument '%s'\n", argv[optind + 1]);
    fprintf(stderr, "%s", CHECK_USAGE);
    return EXIT_USAGE;
  }
  return check_main(positions, rtts, speed, json);
}
