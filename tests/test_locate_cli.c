/*
 * `chiploc locate` and `chiploc landmarks check` as a user runs them: the
 * real binary on small CSVs written into a temporary directory, each verdict
 * in text and JSON, the GeoJSON picture (feature count, every cap polygon
 * containing its cap, F's rectangles containing every feasible point found
 * by dense sampling), input errors naming file and line, and exit codes.
 *
 * The replay slice runs the engine directly on real RTTs between WonderProxy
 * servers ($CHIPLOC_SHARED_DATA/wonderproxy-2020-07-19, always beside the
 * repository): five chips with their ten nearest servers as landmarks at c.
 * Published sites must be SITE_CONSISTENT and F's radius below a bound
 * measured on that data with margin. A missing data directory fails.
 */
#define _GNU_SOURCE
#include "cl_csv.h"
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_probe.h"
#include "cl_xcheck.h"
#include "testutil.h"

#include <check.h>
#include <geodesic.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *g_dir;
static int g_nrun;

static void setup(void) {
  g_dir = tu_tmpdir("chiploc-locate");
  g_nrun = 0;
}

static void teardown(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  ck_assert_int_eq(system(cmd), 0);
  free(g_dir);
}

/* Runs chiploc with the NULL-terminated arguments; *out receives stdout and
 * stderr (malloc'd). Returns the exit status. */
static int cli(char **out, ...) {
  char *argv[32];
  int n = 0;
  argv[n++] = tu_bin("server/chiploc");
  va_list ap;
  va_start(ap, out);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 31)
    argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  char *log = NULL;
  ck_assert(asprintf(&log, "%s/run-%d.log", g_dir, g_nrun++) > 0);
  int rc = tu_run(argv, log);
  *out = tu_read_file(log);
  if (!*out)
    *out = strdup("");
  free(log);
  free(argv[0]);
  return rc;
}

typedef struct {
  const char *name;
  double lat, lon;
} place;

static const place FRANKFURT = {"Frankfurt", 50.1109, 8.6821};
static const place EUROPE[] = {{"Paris", 48.8566, 2.3522},     {"London", 51.5074, -0.1278},
                               {"Amsterdam", 52.3676, 4.9041}, {"Zurich", 47.3769, 8.5417},
                               {"Berlin", 52.52, 13.405},      {"Vienna", 48.2082, 16.3738}};
#define N_EUROPE (sizeof EUROPE / sizeof EUROPE[0])

/* RTT a chip at `chip` would show to a landmark: 1.3x light plus 0.4 ms. */
static double honest_rtt_ms(const place *chip, const place *lm) {
  double s = cl_geo_distance_m(chip->lat, chip->lon, lm->lat, lm->lon);
  return 1.3 * 2.0 * s / CL_SPEED_C * 1e3 + 0.4;
}

/* Landmark CSV for a chip at `chip` seen by the first n European
 * landmarks, plus an optional extra row. Returns the path (malloc'd). */
static char *landmarks_csv(const char *file, const place *chip, size_t n, const char *extra) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  fprintf(f, "name,lat,lon,rtt_ms\n");
  for (size_t i = 0; i < n; i++)
    fprintf(f, "%s,%.6f,%.6f,%.6f\n", EUROPE[i].name, EUROPE[i].lat, EUROPE[i].lon,
            honest_rtt_ms(chip, &EUROPE[i]));
  if (extra)
    fputs(extra, f);
  fclose(f);
  char *path = tu_write_file(g_dir, file, text);
  free(text);
  return path;
}

/* Value of `key: ` in text output (first line that has it), malloc'd. */
static char *field(const char *out, const char *key) {
  char needle[64];
  snprintf(needle, sizeof needle, "%s: ", key);
  for (const char *p = out; p && *p;) {
    if (strncmp(p, needle, strlen(needle)) == 0) {
      const char *v = p + strlen(needle);
      return strndup(v, strcspn(v, "\n"));
    }
    p = strchr(p, '\n');
    if (p)
      p++;
  }
  return NULL;
}

static void assert_field(const char *out, const char *key, const char *want) {
  char *v = field(out, key);
  ck_assert_msg(v && strcmp(v, want) == 0, "%s: got '%s', want '%s' in:\n%s", key,
                v ? v : "(missing)", want, out);
  free(v);
}

START_TEST(test_help_and_usage) {
  char *out = NULL;
  ck_assert_int_eq(cli(&out, "locate", "--help", NULL), 0);
  ck_assert_ptr_nonnull(strstr(out, "usage: chiploc locate --landmarks FILE.csv"));
  free(out);
  ck_assert_int_eq(cli(&out, "landmarks", "check", "--help", NULL), 0);
  ck_assert_ptr_nonnull(strstr(out, "Exit status: 0 no violation, 3 violations found"));
  free(out);
  ck_assert_int_eq(cli(&out, "landmarks", "--help", NULL), 0);
  free(out);
  ck_assert_int_eq(cli(&out, "landmarks", NULL), 2);
  free(out);
  ck_assert_int_eq(cli(&out, "landmarks", "verify", NULL), 2);
  ck_assert_ptr_nonnull(strstr(out, "chiploc: landmarks: unknown subcommand 'verify'"));
  free(out);
  ck_assert_int_eq(cli(&out, "locate", NULL), 2);
  free(out);
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", "x.csv", "--bogus", NULL), 2);
  free(out);
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", "x.csv", "stray", NULL), 2);
  ck_assert_ptr_nonnull(strstr(out, "chiploc: unexpected argument 'stray'"));
  free(out);
  ck_assert_int_eq(cli(&out, "landmarks", "check", "--positions", "p.csv", NULL), 2);
  free(out);
}
END_TEST

START_TEST(test_site_consistent) {
  char *lm = landmarks_csv("lm.csv", &FRANKFURT, 5, NULL);
  char *out = NULL;
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--site", "50.1109,8.6821", NULL), 0);
  assert_field(out, "consistency", "CONSISTENT");
  assert_field(out, "speed_m_per_s", "299792458");
  assert_field(out, "landmarks_used", "5");
  assert_field(out, "site", "SITE_CONSISTENT");
  assert_field(out, "region", "UNKNOWN");
  ck_assert_ptr_null(strstr(out, "site_landmark"));
  ck_assert_ptr_null(strstr(out, "chiploc:"));
  /* The centre lies near the chip and F is smaller than Europe. */
  char *centre = field(out, "centre"), *radius = field(out, "radius_km");
  ck_assert_ptr_nonnull(centre);
  ck_assert_ptr_nonnull(radius);
  double clat = 0, clon = 0;
  ck_assert_int_eq(sscanf(centre, "%lf, %lf", &clat, &clon), 2);
  ck_assert(cl_geo_distance_m(clat, clon, FRANKFURT.lat, FRANKFURT.lon) < 400e3);
  double r = atof(radius);
  ck_assert(r > 50 && r < 800);
  free(centre);
  free(radius);
  free(out);
  free(lm);
}
END_TEST

START_TEST(test_site_excluded) {
  char *lm = landmarks_csv("lm.csv", &FRANKFURT, 5, NULL);
  const place madrid = {"Madrid", 40.4168, -3.7038};
  /* The landmark that excludes Madrid by the widest margin, computed here. */
  double worst = 0;
  size_t who = 0;
  for (size_t i = 0; i < 5; i++) {
    double bound = cl_geo_bound_m(honest_rtt_ms(&FRANKFURT, &EUROPE[i]) / 1e3, CL_SPEED_C);
    double excess = cl_geo_distance_m(madrid.lat, madrid.lon, EUROPE[i].lat, EUROPE[i].lon) - bound;
    if (excess > worst) {
      worst = excess;
      who = i;
    }
  }
  ck_assert(worst > 100e3);
  char *out = NULL;
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--site", "40.4168,-3.7038", NULL), 0);
  assert_field(out, "consistency", "CONSISTENT");
  assert_field(out, "site", "SITE_EXCLUDED");
  assert_field(out, "site_landmark", EUROPE[who].name);
  char *margin = field(out, "site_margin_km");
  ck_assert_ptr_nonnull(margin);
  ck_assert_double_eq_tol(atof(margin), worst / 1e3, 0.1);
  free(margin);
  free(out);
  free(lm);
}
END_TEST

START_TEST(test_inconsistent_names_landmark) {
  /* A landmark claiming Sydney with an RTT that only Europe allows. */
  char *lm = landmarks_csv("lm.csv", &FRANKFURT, 5, "Liar,-33.8688,151.2093,6.5\n");
  char *out = NULL;
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--site", "50.1109,8.6821", NULL), 0);
  assert_field(out, "consistency", "INCONSISTENT");
  assert_field(out, "landmarks_used", "6");
  assert_field(out, "excluded", "Liar");
  assert_field(out, "site", "UNKNOWN");
  ck_assert_ptr_null(strstr(out, "radius_km"));
  free(out);
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--json", NULL), 0);
  json_error_t jerr;
  json_t *j = json_loads(out, 0, &jerr);
  ck_assert_msg(j != NULL, "%s: %s", jerr.text, out);
  ck_assert_str_eq(json_string_value(json_object_get(j, "consistency")), "INCONSISTENT");
  json_t *ex = json_object_get(j, "excluded");
  ck_assert_uint_eq(json_array_size(ex), 1);
  ck_assert_str_eq(json_string_value(json_array_get(ex, 0)), "Liar");
  ck_assert(json_is_true(json_object_get(j, "excluded_minimal")));
  ck_assert(json_is_null(json_object_get(j, "centre")));
  ck_assert(json_is_null(json_object_get(j, "radius_km")));
  json_decref(j);
  free(out);
  free(lm);
}
END_TEST

START_TEST(test_insufficient) {
  char *lm = landmarks_csv("lm.csv", &FRANKFURT, 2, NULL);
  char *out = NULL;
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--site", "50.1109,8.6821", NULL), 0);
  assert_field(out, "consistency", "INSUFFICIENT");
  assert_field(out, "landmarks_used", "2");
  assert_field(out, "min_landmarks", "3");
  assert_field(out, "site", "UNKNOWN");
  free(out);
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--min-landmarks", "2", "--site",
                       "50.1109,8.6821", NULL),
                   0);
  assert_field(out, "consistency", "CONSISTENT");
  assert_field(out, "site", "SITE_CONSISTENT");
  free(out);
  /* A third row 300 m from Paris (the same landmark after a key rotation)
   * is no third witness. */
  char extra[128];
  snprintf(extra, sizeof extra, "Paris-2,%.6f,%.6f,%.6f\n", EUROPE[0].lat + 0.0027, EUROPE[0].lon,
           honest_rtt_ms(&FRANKFURT, &EUROPE[0]));
  char *dup = landmarks_csv("dup.csv", &FRANKFURT, 2, extra);
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", dup, NULL), 0);
  assert_field(out, "consistency", "INSUFFICIENT");
  assert_field(out, "landmarks_used", "2");
  free(out);
  free(dup);
  /* Only the header: zero landmarks is a verdict too. */
  char *empty = tu_write_file(g_dir, "empty.csv", "name,lat,lon,rtt_ms\n");
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", empty, NULL), 0);
  assert_field(out, "consistency", "INSUFFICIENT");
  assert_field(out, "landmarks_used", "0");
  free(out);
  free(empty);
  free(lm);
}
END_TEST

START_TEST(test_json_fields) {
  char *lm = landmarks_csv("lm.csv", &FRANKFURT, 6, NULL);
  char *out = NULL;
  ck_assert_int_eq(
      cli(&out, "locate", "--landmarks", lm, "--site", "40.4168,-3.7038", "--json", NULL), 0);
  json_error_t jerr;
  json_t *j = json_loads(out, 0, &jerr);
  ck_assert_msg(j != NULL, "%s: %s", jerr.text, out);
  ck_assert_str_eq(json_string_value(json_object_get(j, "consistency")), "CONSISTENT");
  ck_assert_double_eq(json_number_value(json_object_get(j, "speed_m_per_s")), CL_SPEED_C);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "landmarks_used")), 6);
  json_t *centre = json_object_get(j, "centre");
  ck_assert(json_is_number(json_object_get(centre, "lat")));
  ck_assert(json_is_number(json_object_get(centre, "lon")));
  ck_assert(json_number_value(json_object_get(j, "radius_km")) > 0);
  json_t *site = json_object_get(j, "site");
  ck_assert_str_eq(json_string_value(json_object_get(site, "verdict")), "SITE_EXCLUDED");
  ck_assert(json_is_string(json_object_get(site, "landmark")));
  ck_assert(json_number_value(json_object_get(site, "margin_km")) > 100);
  json_t *region = json_object_get(j, "region");
  ck_assert_str_eq(json_string_value(json_object_get(region, "verdict")), "UNKNOWN");
  ck_assert(json_is_array(json_object_get(region, "allowed")));
  ck_assert_uint_eq(json_array_size(json_object_get(j, "excluded")), 0);
  ck_assert(json_is_boolean(json_object_get(j, "excluded_minimal")));
  json_decref(j);
  free(out);

  /* fibre: the same RTTs give smaller caps, so a smaller F. */
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--json", NULL), 0);
  j = json_loads(out, 0, &jerr);
  ck_assert_ptr_nonnull(j);
  double r_c = json_number_value(json_object_get(j, "radius_km"));
  json_decref(j);
  free(out);
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--speed", "fibre", "--json", NULL), 0);
  j = json_loads(out, 0, &jerr);
  ck_assert_ptr_nonnull(j);
  ck_assert_double_eq_tol(json_number_value(json_object_get(j, "speed_m_per_s")),
                          CL_SPEED_C * 2 / 3, 1e-3);
  ck_assert(json_number_value(json_object_get(j, "radius_km")) < r_c);
  json_decref(j);
  free(out);
  free(lm);
}
END_TEST

/* ---- GeoJSON ---------------------------------------------------------------- */

/* Even-odd test of (x, y) against one GeoJSON polygon (array of rings). */
static int in_polygon(json_t *poly, double x, double y) {
  int in = 0;
  size_t ri;
  json_t *ring;
  json_array_foreach(poly, ri, ring) {
    size_t n = json_array_size(ring);
    for (size_t i = 0, j = n - 1; i < n; j = i++) {
      json_t *a = json_array_get(ring, i), *b = json_array_get(ring, j);
      double ax = json_number_value(json_array_get(a, 0)),
             ay = json_number_value(json_array_get(a, 1));
      double bx = json_number_value(json_array_get(b, 0)),
             by = json_number_value(json_array_get(b, 1));
      if ((ay > y) != (by > y) && x < (bx - ax) * (y - ay) / (by - ay) + ax)
        in = !in;
    }
  }
  return in;
}

/* Point (lon x, lat y) in a Polygon or MultiPolygon geometry. */
static int in_geometry(json_t *geom, double x, double y) {
  const char *type = json_string_value(json_object_get(geom, "type"));
  json_t *coords = json_object_get(geom, "coordinates");
  if (strcmp(type, "Polygon") == 0)
    return in_polygon(coords, x, y);
  ck_assert_str_eq(type, "MultiPolygon");
  size_t i;
  json_t *poly;
  json_array_foreach(coords, i, poly) if (in_polygon(poly, x, y)) return 1;
  return 0;
}

/* Every position of a geometry within [-180, 180] x [-90, 90], rings closed. */
static void assert_valid_positions(json_t *geom) {
  json_t *coords = json_object_get(geom, "coordinates");
  size_t i, k, m;
  json_t *poly, *ring, *pt;
  json_array_foreach(coords, i, poly) {
    json_array_foreach(poly, k, ring) {
      ck_assert_uint_ge(json_array_size(ring), 4);
      ck_assert(
          json_equal(json_array_get(ring, 0), json_array_get(ring, json_array_size(ring) - 1)));
      json_array_foreach(ring, m, pt) {
        double x = json_number_value(json_array_get(pt, 0)),
               y = json_number_value(json_array_get(pt, 1));
        ck_assert(x >= -180 && x <= 180 && y >= -90 && y <= 90);
      }
    }
  }
}

static unsigned long long g_rng = 0x243F6A8885A308D3ull;
static double urand(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (double)(g_rng >> 11) / 9007199254740992.0;
}

/* Samples points of every cap and checks that the cap's feature holds them. */
static void assert_caps_contain(json_t *features, int samples) {
  struct geod_geodesic g;
  geod_init(&g, CL_WGS84_A, CL_WGS84_F);
  size_t i, ncaps = 0;
  json_t *f;
  json_array_foreach(features, i, f) {
    json_t *props = json_object_get(f, "properties");
    if (strcmp(json_string_value(json_object_get(props, "kind")), "cap") != 0)
      continue;
    ncaps++;
    const char *name = json_string_value(json_object_get(props, "name"));
    double bound_m = json_number_value(json_object_get(props, "bound_km")) * 1e3;
    /* The landmark's own point feature gives the centre. */
    double lat = NAN, lon = NAN;
    size_t k;
    json_t *p;
    json_array_foreach(features, k, p) {
      json_t *pp = json_object_get(p, "properties");
      if (strcmp(json_string_value(json_object_get(pp, "kind")), "landmark") == 0 &&
          strcmp(json_string_value(json_object_get(pp, "name")), name) == 0) {
        json_t *c = json_object_get(json_object_get(p, "geometry"), "coordinates");
        lon = json_number_value(json_array_get(c, 0));
        lat = json_number_value(json_array_get(c, 1));
      }
    }
    ck_assert(isfinite(lat));
    json_t *geom = json_object_get(f, "geometry");
    assert_valid_positions(geom);
    for (int s = 0; s < samples; s++) {
      /* Half the samples on the cap's edge, where a polygon is most likely
       * to fall short. */
      double d = s % 2 ? bound_m : bound_m * sqrt(urand());
      double az = 360.0 * urand(), la = 0, lo = 0;
      geod_direct(&g, lat, lon, az, d, &la, &lo, NULL);
      double s12 = 0;
      geod_inverse(&g, lat, lon, la, lo, &s12, NULL, NULL);
      if (s12 > bound_m)
        continue; /* past the antipode: not in the cap */
      ck_assert_msg(in_geometry(geom, lo, la),
                    "cap %s (%.0f km, %s): (%.4f, %.4f) at %.0f km not inside", name, bound_m / 1e3,
                    json_string_value(json_object_get(props, "outline")), la, lo, s12 / 1e3);
    }
  }
  ck_assert_uint_gt(ncaps, 0);
}

static json_t *load_geojson(const char *path) {
  json_error_t jerr;
  json_t *j = json_load_file(path, 0, &jerr);
  ck_assert_msg(j != NULL, "%s: %s", path, jerr.text);
  ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "FeatureCollection");
  return j;
}

static json_t *feature_of_kind(json_t *features, const char *kind) {
  size_t i;
  json_t *f;
  json_array_foreach(features, i, f) {
    if (strcmp(json_string_value(json_object_get(json_object_get(f, "properties"), "kind")),
               kind) == 0)
      return f;
  }
  return NULL;
}

START_TEST(test_geojson_output) {
  char *lm = landmarks_csv("lm.csv", &FRANKFURT, 5, NULL);
  char *gj = NULL;
  ck_assert(asprintf(&gj, "%s/out.geojson", g_dir) > 0);
  char *out = NULL;
  ck_assert_int_eq(
      cli(&out, "locate", "--landmarks", lm, "--site", "50.1109,8.6821", "--geojson", gj, NULL), 0);
  assert_field(out, "site", "SITE_CONSISTENT");
  free(out);
  json_t *j = load_geojson(gj);
  json_t *features = json_object_get(j, "features");
  /* A point and a cap per landmark, F, the site. */
  ck_assert_uint_eq(json_array_size(features), 2 * 5 + 2);
  size_t i, points = 0, caps = 0;
  json_t *f;
  json_array_foreach(features, i, f) {
    ck_assert_str_eq(json_string_value(json_object_get(f, "type")), "Feature");
    const char *kind = json_string_value(json_object_get(json_object_get(f, "properties"), "kind"));
    points += strcmp(kind, "landmark") == 0;
    caps += strcmp(kind, "cap") == 0;
  }
  ck_assert_uint_eq(points, 5);
  ck_assert_uint_eq(caps, 5);
  assert_caps_contain(features, 400);

  json_t *fr = feature_of_kind(features, "feasible_region");
  ck_assert_ptr_nonnull(fr);
  json_t *fprops = json_object_get(fr, "properties");
  ck_assert_str_eq(json_string_value(json_object_get(fprops, "consistency")), "CONSISTENT");
  ck_assert_str_eq(json_string_value(json_object_get(fprops, "site")), "SITE_CONSISTENT");
  json_t *fgeom = json_object_get(fr, "geometry");
  ck_assert_str_eq(json_string_value(json_object_get(fgeom, "type")), "MultiPolygon");
  assert_valid_positions(fgeom);
  /* Dense sampling: every point within all bounds must be in F's cells. */
  double bounds[5];
  for (size_t k = 0; k < 5; k++)
    bounds[k] = cl_geo_bound_m(honest_rtt_ms(&FRANKFURT, &EUROPE[k]) / 1e3, CL_SPEED_C);
  int feasible = 0;
  for (double la = 44; la <= 56; la += 0.05) {
    for (double lo = 0; lo <= 18; lo += 0.05) {
      int ok = 1;
      for (size_t k = 0; k < 5 && ok; k++)
        ok = cl_geo_distance_m(la, lo, EUROPE[k].lat, EUROPE[k].lon) <= bounds[k];
      if (!ok)
        continue;
      feasible++;
      ck_assert_msg(in_geometry(fgeom, lo, la), "feasible (%.2f, %.2f) outside F", la, lo);
    }
  }
  ck_assert_int_gt(feasible, 100);
  json_t *site = feature_of_kind(features, "site");
  ck_assert_ptr_nonnull(site);
  ck_assert_str_eq(json_string_value(json_object_get(json_object_get(site, "geometry"), "type")),
                   "Point");
  json_decref(j);

  /* Without a site, and INCONSISTENT: F has no geometry. */
  char *bad = landmarks_csv("bad.csv", &FRANKFURT, 5, "Liar,-33.8688,151.2093,6.5\n");
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", bad, "--geojson", gj, NULL), 0);
  free(out);
  j = load_geojson(gj);
  features = json_object_get(j, "features");
  ck_assert_uint_eq(json_array_size(features), 2 * 6 + 1);
  fr = feature_of_kind(features, "feasible_region");
  ck_assert(json_is_null(json_object_get(fr, "geometry")));
  json_decref(j);
  free(bad);

  /* An unwritable output is an I/O failure. */
  ck_assert_int_eq(
      cli(&out, "locate", "--landmarks", lm, "--geojson", "/nonexistent/x.geojson", NULL), 1);
  ck_assert_ptr_nonnull(strstr(out, "chiploc: cannot write /nonexistent/x.geojson"));
  free(out);
  free(gj);
  free(lm);
}
END_TEST

START_TEST(test_geojson_awkward_caps) {
  /* Caps across the antimeridian, around a pole, around both poles, larger
   * than the Earth: each polygon must still hold its whole cap. Quito's
   * 84 ms (a path of 12 594 km, a cap of about 18 500 km) leaves a hole
   * around its antipode; from a path of 12 669 km (84.5 ms) on, a cap is the
   * whole Earth. */
  const char *text = "name,lat,lon,rtt_ms\n"
                     "Fiji,-17.7,178.0,20\n"
                     "Anchorage,61.2,-149.9,25\n"
                     "Svalbard,78.2,15.6,30\n"
                     "McMurdo,-77.85,166.67,12\n"
                     "Polar2,-60,-170,40\n"
                     "Quito,-0.18,-78.5,84\n"
                     "Tarawa,1.45,172.98,110\n"
                     "Mid,10,20,140\n"
                     "Huge,0,0,300\n"
                     "Tiny,35,139,0.05\n";
  char *lm = tu_write_file(g_dir, "edge.csv", text);
  char *gj = NULL;
  ck_assert(asprintf(&gj, "%s/edge.geojson", g_dir) > 0);
  char *out = NULL;
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--geojson", gj, NULL), 0);
  free(out);
  json_t *j = load_geojson(gj);
  json_t *features = json_object_get(j, "features");
  ck_assert_uint_eq(json_array_size(features), 2 * 10 + 1);
  assert_caps_contain(features, 3000);
  /* Both ways of drawing a huge cap appear. */
  int polar = 0, world = 0, minus = 0;
  size_t i;
  json_t *f;
  json_array_foreach(features, i, f) {
    const char *how =
        json_string_value(json_object_get(json_object_get(f, "properties"), "outline"));
    if (!how)
      continue;
    polar += strcmp(how, "polar") == 0;
    world += strcmp(how, "world") == 0;
    minus += strcmp(how, "world minus antipode") == 0;
  }
  ck_assert_int_ge(polar, 3);
  ck_assert_int_ge(world, 1);
  ck_assert_int_ge(minus, 1);
  json_decref(j);
  free(gj);
  free(lm);
}
END_TEST

/* ---- Input errors ------------------------------------------------------------ */

START_TEST(test_bad_csv_row) {
  char *lm = landmarks_csv("lm.csv", &FRANKFURT, 3, "Oslo,59.91,10.75,abc\n");
  char *out = NULL;
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, NULL), 2);
  char *want = NULL;
  ck_assert(asprintf(&want, "chiploc: %s:5: column rtt_ms: \"abc\" is not a number\n", lm) > 0);
  ck_assert_str_eq(out, want);
  free(want);
  free(out);
  free(lm);

  lm = landmarks_csv("dup.csv", &FRANKFURT, 3, "Paris,48.8566,2.3522,9\n");
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, NULL), 2);
  ck_assert_ptr_nonnull(
      strstr(out, "dup.csv:5: column name: duplicate landmark name \"Paris\" (first on line 2)"));
  free(out);
  free(lm);

  lm = tu_write_file(g_dir, "cols.csv", "name,latitude,lon,rtt\nA,1,2,3\n");
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, NULL), 2);
  ck_assert_ptr_nonnull(strstr(out, "cols.csv:1: header: missing columns lat, rtt_ms"));
  free(out);
  free(lm);

  ck_assert_int_eq(cli(&out, "locate", "--landmarks", "/nonexistent/lm.csv", NULL), 1);
  ck_assert_ptr_nonnull(strstr(out, "chiploc: /nonexistent/lm.csv: No such file or directory"));
  free(out);
}
END_TEST

START_TEST(test_bad_options) {
  char *lm = landmarks_csv("lm.csv", &FRANKFURT, 4, NULL);
  char *out = NULL;
  const char *bad_sites[] = {"50", "50;8", "91,8", "50,181", "abc,8", "50,8x", "50, 8", "nan,1"};
  for (size_t i = 0; i < sizeof bad_sites / sizeof bad_sites[0]; i++) {
    ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--site", bad_sites[i], NULL), 2);
    ck_assert_ptr_nonnull(strstr(out, "chiploc: --site:"));
    free(out);
  }
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--speed", "warp", NULL), 2);
  ck_assert_ptr_nonnull(strstr(out, "chiploc: --speed: 'warp'"));
  free(out);
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--speed", "400000000", NULL), 2);
  free(out);
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--speed", "250000000", NULL), 0);
  assert_field(out, "speed_m_per_s", "250000000");
  free(out);
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--min-landmarks", "0", NULL), 2);
  free(out);
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--allowed", "DEU", NULL), 2);
  ck_assert_ptr_nonnull(strstr(out, "--regions and --allowed go together"));
  free(out);
  free(lm);
}
END_TEST

/* ---- Regions ------------------------------------------------------------------ */

START_TEST(test_region_verdicts) {
  const char *gjs =
      "{\"type\":\"FeatureCollection\",\"features\":["
      "{\"type\":\"Feature\",\"properties\":{\"A3\":\"BIG\"},\"geometry\":{\"type\":\"Polygon\","
      "\"coordinates\":[[[-15,30],[35,30],[35,70],[-15,70],[-15,30]]]}},"
      "{\"type\":\"Feature\",\"properties\":{\"A3\":\"AUS\"},\"geometry\":{\"type\":\"Polygon\","
      "\"coordinates\":[[[110,-45],[155,-45],[155,-10],[110,-10],[110,-45]]]}},"
      "{\"type\":\"Feature\",\"properties\":{\"A3\":\"WEST\"},\"geometry\":{\"type\":\"Polygon\","
      "\"coordinates\":[[[-15,30],[8.68,30],[8.68,70],[-15,70],[-15,30]]]}}]}";
  char *regions = tu_write_file(g_dir, "regions.geojson", gjs);
  char *lm = landmarks_csv("lm.csv", &FRANKFURT, 5, NULL);
  char *out = NULL;
  ck_assert_int_eq(
      cli(&out, "locate", "--landmarks", lm, "--regions", regions, "--allowed", "BIG", NULL), 0);
  assert_field(out, "region", "INSIDE");
  assert_field(out, "allowed", "BIG");
  free(out);
  ck_assert_int_eq(
      cli(&out, "locate", "--landmarks", lm, "--regions", regions, "--allowed", "AUS", NULL), 0);
  assert_field(out, "region", "OUTSIDE");
  free(out);
  ck_assert_int_eq(
      cli(&out, "locate", "--landmarks", lm, "--regions", regions, "--allowed", "WEST", NULL), 0);
  assert_field(out, "region", "UNDETERMINED");
  free(out);
  ck_assert_int_eq(cli(&out, "locate", "--landmarks", lm, "--regions", regions, "--allowed",
                       "AUS,WEST", "--json", NULL),
                   0);
  json_t *j = json_loads(out, 0, NULL);
  ck_assert_ptr_nonnull(j);
  json_t *region = json_object_get(j, "region");
  ck_assert_str_eq(json_string_value(json_object_get(region, "verdict")), "UNDETERMINED");
  ck_assert_uint_eq(json_array_size(json_object_get(region, "allowed")), 2);
  ck_assert_str_eq(json_string_value(json_array_get(json_object_get(region, "allowed"), 1)),
                   "WEST");
  json_decref(j);
  free(out);
  ck_assert_int_eq(
      cli(&out, "locate", "--landmarks", lm, "--regions", regions, "--allowed", "FRA", NULL), 2);
  ck_assert_ptr_nonnull(strstr(out, "chiploc: --allowed: no region with A3 \"FRA\""));
  free(out);
  char *broken = tu_write_file(g_dir, "broken.geojson", "{\"type\":");
  ck_assert_int_eq(
      cli(&out, "locate", "--landmarks", lm, "--regions", broken, "--allowed", "BIG", NULL), 2);
  ck_assert_ptr_nonnull(strstr(out, "chiploc: "));
  free(out);
  free(broken);
  free(regions);
  free(lm);
}
END_TEST

/* ---- landmarks check ------------------------------------------------------------ */

START_TEST(test_landmarks_check) {
  char *pos = tu_write_file(g_dir, "positions.csv",
                            "name,lat,lon\n"
                            "Paris,48.8566,2.3522\n"
                            "Berlin,52.52,13.405\n"
                            "Madrid,40.4168,-3.7038\n"
                            "Liar,-33.8688,151.2093\n");
  /* Honest RTTs at 1.5x light; Liar's RTTs are those of Paris. */
  char *rtts = tu_write_file(g_dir, "rtts.csv",
                             "a,b,rtt_ms\n"
                             "Paris,Berlin,9.0\n"
                             "Madrid,Paris,10.6\n"
                             "Berlin,Madrid,19.0\n"
                             "Paris,Paris,0.01\n");
  char *out = NULL;
  ck_assert_int_eq(cli(&out, "landmarks", "check", "--positions", pos, "--rtts", rtts, NULL), 0);
  ck_assert_str_eq(out, "no violations (3 pairs checked)\n");
  free(out);
  free(rtts);
  rtts = tu_write_file(g_dir, "rtts.csv",
                       "a,b,rtt_ms\n"
                       "Paris,Berlin,9.0\n"
                       "Madrid,Paris,10.6\n"
                       "Berlin,Madrid,19.0\n"
                       "Liar,Paris,0.5\n"
                       "Berlin,Liar,9.1\n"
                       "Liar,Madrid,10.7\n");
  ck_assert_int_eq(cli(&out, "landmarks", "check", "--positions", pos, "--rtts", rtts, NULL), 3);
  ck_assert_ptr_nonnull(strstr(out, "rtt_ms  min_rtt_ms  distance_km\n"));
  ck_assert_ptr_nonnull(strstr(out, "violations: 3 of 6 pairs\n"));
  ck_assert_ptr_nonnull(strstr(out, "\nblame: Liar\n"));
  free(out);
  ck_assert_int_eq(
      cli(&out, "landmarks", "check", "--positions", pos, "--rtts", rtts, "--json", NULL), 3);
  json_error_t jerr;
  json_t *j = json_loads(out, 0, &jerr);
  ck_assert_msg(j != NULL, "%s: %s", jerr.text, out);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "pairs_checked")), 6);
  json_t *v = json_object_get(j, "violations");
  ck_assert_uint_eq(json_array_size(v), 3);
  json_t *v0 = json_array_get(v, 0);
  ck_assert(json_number_value(json_object_get(v0, "rtt_ms")) <
            json_number_value(json_object_get(v0, "min_rtt_ms")));
  ck_assert(json_number_value(json_object_get(v0, "distance_km")) > 15000);
  ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "blame"), 0)), "Liar");
  ck_assert(json_is_true(json_object_get(j, "blame_minimal")));
  json_decref(j);
  free(out);
  free(rtts);

  rtts = tu_write_file(g_dir, "rtts.csv", "a,b,rtt_ms\nParis,Berlin,9.0\nParis,Lisbon,12\n");
  ck_assert_int_eq(cli(&out, "landmarks", "check", "--positions", pos, "--rtts", rtts, NULL), 2);
  char *want = NULL;
  ck_assert(
      asprintf(&want,
               "chiploc: %s:3: unknown landmark \"Lisbon\" in column b (not in the positions)\n",
               rtts) > 0);
  ck_assert_str_eq(out, want);
  free(want);
  free(out);
  free(rtts);

  rtts = tu_write_file(g_dir, "rtts.csv", "a,b,rtt_ms\nParis,Berlin,-9.0\n");
  ck_assert_int_eq(cli(&out, "landmarks", "check", "--positions", pos, "--rtts", rtts, NULL), 2);
  ck_assert_ptr_nonnull(strstr(out, "rtts.csv:2: column rtt_ms: \"-9.0\" is out of range"));
  free(out);
  ck_assert_int_eq(
      cli(&out, "landmarks", "check", "--positions", "/nonexistent/p.csv", "--rtts", rtts, NULL),
      1);
  free(out);
  free(rtts);
  free(pos);
}
END_TEST

/* ---- Replay slice on real RTTs ---------------------------------------------- */

#define MAX_SERVERS 512

typedef struct {
  size_t n;
  long id[MAX_SERVERS];
  char name[MAX_SERVERS][64];
  char idstr[MAX_SERVERS][16];
  double lat[MAX_SERVERS], lon[MAX_SERVERS];
  double *rtt; /* n*n minimum RTT, ms; NAN where unmeasured */
} wp_data;

static long wp_index(const wp_data *w, long id) {
  for (size_t i = 0; i < w->n; i++)
    if (w->id[i] == id)
      return (long)i;
  return -1;
}

static void wp_load(wp_data *w) {
  const char *base = getenv("CHIPLOC_SHARED_DATA");
  ck_assert_msg(base != NULL, "CHIPLOC_SHARED_DATA is not set: run this test through ctest");
  char path[1024], err[512] = "";
  snprintf(path, sizeof path, "%s/wonderproxy-2020-07-19/servers.csv", base);
  cl_csv *c = NULL;
  ck_assert_msg(cl_csv_open(&c, path, err, sizeof err) == CL_OK, "%s", err);
  static const char *const scols[] = {"id", "name", "latitude", "longitude"};
  int sidx[4];
  ck_assert_msg(cl_csv_require(c, scols, 4, sidx, err, sizeof err) == CL_OK, "%s", err);
  w->n = 0;
  int r;
  while ((r = cl_csv_next(c, err, sizeof err)) == 1) {
    ck_assert_uint_lt(w->n, MAX_SERVERS);
    double id = 0;
    ck_assert_msg(cl_csv_number(c, sidx[0], 0, 1e6, 0, &id, err, sizeof err) == CL_OK, "%s", err);
    ck_assert_msg(cl_csv_number(c, sidx[2], -90, 90, 0, &w->lat[w->n], err, sizeof err) == CL_OK,
                  "%s", err);
    ck_assert_msg(cl_csv_number(c, sidx[3], -180, 180, 0, &w->lon[w->n], err, sizeof err) == CL_OK,
                  "%s", err);
    w->id[w->n] = (long)id;
    snprintf(w->name[w->n], sizeof w->name[w->n], "%s", cl_csv_field(c, sidx[1]));
    snprintf(w->idstr[w->n], sizeof w->idstr[w->n], "%ld", (long)id);
    w->n++;
  }
  ck_assert_msg(r == 0, "%s", err);
  cl_csv_close(&c);
  ck_assert_uint_gt(w->n, 200);

  snprintf(path, sizeof path, "%s/wonderproxy-2020-07-19/pings.csv", base);
  ck_assert_msg(cl_csv_open(&c, path, err, sizeof err) == CL_OK, "%s", err);
  static const char *const pcols[] = {"source", "destination", "min"};
  int pidx[3];
  ck_assert_msg(cl_csv_require(c, pcols, 3, pidx, err, sizeof err) == CL_OK, "%s", err);
  w->rtt = malloc(w->n * w->n * sizeof *w->rtt);
  for (size_t i = 0; i < w->n * w->n; i++)
    w->rtt[i] = NAN;
  while ((r = cl_csv_next(c, err, sizeof err)) == 1) {
    double s = 0, d = 0, ms = 0;
    ck_assert_msg(cl_csv_number(c, pidx[0], 0, 1e6, 0, &s, err, sizeof err) == CL_OK, "%s", err);
    ck_assert_msg(cl_csv_number(c, pidx[1], 0, 1e6, 0, &d, err, sizeof err) == CL_OK, "%s", err);
    ck_assert_msg(cl_csv_number(c, pidx[2], 0, 1e6, 0, &ms, err, sizeof err) == CL_OK, "%s", err);
    long a = wp_index(w, (long)s), b = wp_index(w, (long)d);
    if (a < 0 || b < 0 || a == b || !(ms > 0))
      continue; /* servers without a position */
    double *x = &w->rtt[(size_t)a * w->n + (size_t)b], *y = &w->rtt[(size_t)b * w->n + (size_t)a];
    if (isnan(*x) || ms < *x)
      *x = *y = ms;
  }
  ck_assert_msg(r == 0, "%s", err);
  cl_csv_close(&c);
}

START_TEST(test_replay_slice) {
  static wp_data w;
  wp_load(&w);

  /* Cross-check all servers at c; the blamed ones are not used as landmarks. */
  cl_xcheck_position *pos = calloc(w.n, sizeof *pos);
  cl_xcheck_rtt *rt = calloc(w.n * w.n, sizeof *rt);
  size_t nrt = 0;
  for (size_t i = 0; i < w.n; i++) {
    pos[i] = (cl_xcheck_position){w.idstr[i], w.lat[i], w.lon[i]};
    for (size_t j = i + 1; j < w.n; j++)
      if (!isnan(w.rtt[i * w.n + j]))
        rt[nrt++] = (cl_xcheck_rtt){w.idstr[i], w.idstr[j], w.rtt[i * w.n + j], 0};
  }
  cl_xcheck_result xr;
  char err[256] = "";
  ck_assert_msg(cl_xcheck_run(pos, w.n, rt, nrt, CL_SPEED_C, "pings", &xr, err, sizeof err) ==
                    CL_OK,
                "%s", err);
  unsigned char *blamed = calloc(w.n, 1);
  for (size_t i = 0; i < xr.n_blamed; i++)
    blamed[xr.blamed[i]] = 1;
  /* Measured on this data: four servers the RTTs single out (La Ceiba
   * answers like the US east coast; Belfast, Prague and Rome have impossible
   * pairs with several peers), and Auckland-Wellington, whose one
   * impossible link cannot say which end is wrong: named, not blamed. */
  static const long want_blamed[] = {3, 190, 204, 220};
  ck_assert_uint_eq(xr.n_blamed, 4);
  ck_assert_int_eq(xr.blamed_minimal, 1);
  for (size_t i = 0; i < 4; i++)
    ck_assert(blamed[wp_index(&w, want_blamed[i])]);
  ck_assert_uint_eq(xr.n_ambiguous, 1);
  ck_assert_uint_eq(xr.ambiguous[0].need, 1);
  ck_assert_uint_eq(xr.ambiguous[0].n_members, 2);
  long auckland = wp_index(&w, 8), wellington = wp_index(&w, 139);
  ck_assert_uint_eq(xr.ambiguous[0].members[0], (size_t)(auckland < wellington ? auckland : wellington));
  ck_assert_uint_eq(xr.ambiguous[0].members[1], (size_t)(auckland < wellington ? wellington : auckland));
  /* Neither suspect is used as a landmark. */
  for (size_t i = 0; i < 2; i++)
    blamed[xr.ambiguous[0].members[i]] = 1;
  cl_xcheck_result_free(&xr);

  /* Frankfurt, Tokyo, New York (Manhattan), Sydney, Sao Paulo; radius bound
   * in km, pinned at about 1.5x what was measured (512, 109, 124, 752 and
   * 2866 km: Sao Paulo's nearest servers all lie to one side of it). */
  static const struct {
    long id;
    double max_radius_km;
  } chips[] = {{29, 770}, {6, 165}, {114, 190}, {107, 1130}, {125, 4300}};
  cl_geo_ctx *ctx = NULL;
  ck_assert_int_eq(cl_geo_ctx_create(&ctx), CL_OK);
  for (size_t c = 0; c < sizeof chips / sizeof chips[0]; c++) {
    long ci = wp_index(&w, chips[c].id);
    ck_assert_int_ge(ci, 0);
    ck_assert(!blamed[ci]);
    /* The ten usable servers with the smallest RTT to the chip. */
    size_t pick[10], np = 0;
    unsigned char *used = calloc(w.n, 1);
    for (; np < 10; np++) {
      long best = -1;
      for (size_t j = 0; j < w.n; j++) {
        double ms = w.rtt[(size_t)ci * w.n + j];
        if ((long)j == ci || blamed[j] || used[j] || isnan(ms))
          continue;
        if (best < 0 || ms < w.rtt[(size_t)ci * w.n + (size_t)best])
          best = (long)j;
      }
      ck_assert_int_ge(best, 0);
      used[best] = 1;
      pick[np] = (size_t)best;
    }
    free(used);
    cl_geo_landmark lms[10];
    for (size_t k = 0; k < 10; k++)
      lms[k] =
          (cl_geo_landmark){w.lat[pick[k]], w.lon[pick[k]],
                            cl_geo_bound_m(w.rtt[(size_t)ci * w.n + pick[k]] / 1e3, CL_SPEED_C)};
    cl_geo_params p;
    cl_geo_params_default(&p);
    double site[2] = {w.lat[ci], w.lon[ci]};
    cl_geo_result res;
    ck_assert_int_eq(cl_geo_locate(ctx, lms, 10, &p, site, NULL, &res), CL_OK);
    fprintf(stderr, "replay: chip %ld %s: %s %s radius %.1f km\n", chips[c].id, w.name[ci],
            cl_geo_consistency_name(res.consistency), cl_geo_site_name(res.site), res.radius_km);
    ck_assert_int_eq(res.consistency, CL_GEO_CONSISTENT);
    ck_assert_int_eq(res.site, CL_SITE_CONSISTENT);
    ck_assert(res.radius_km > 0 && res.radius_km < chips[c].max_radius_km);
  }
  cl_geo_ctx_destroy(&ctx);
  free(blamed);
  free(pos);
  free(rt);
  free(w.rtt);
}
END_TEST

static Suite *locate_suite(void) {
  Suite *s = suite_create("locate_cli");
  TCase *tc = tcase_create("locate");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_help_and_usage);
  tcase_add_test(tc, test_site_consistent);
  tcase_add_test(tc, test_site_excluded);
  tcase_add_test(tc, test_inconsistent_names_landmark);
  tcase_add_test(tc, test_insufficient);
  tcase_add_test(tc, test_json_fields);
  tcase_add_test(tc, test_geojson_output);
  tcase_add_test(tc, test_geojson_awkward_caps);
  tcase_add_test(tc, test_bad_csv_row);
  tcase_add_test(tc, test_bad_options);
  tcase_add_test(tc, test_region_verdicts);
  tcase_add_test(tc, test_landmarks_check);
  suite_add_tcase(s, tc);

  TCase *tr = tcase_create("replay");
  tcase_set_timeout(tr, 120);
  tcase_add_test(tr, test_replay_slice);
  suite_add_tcase(s, tr);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(locate_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
