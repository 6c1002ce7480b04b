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
#include "cl_probe.h"
#include "cl_region.h"
#include "cl_xcheck.h"

#include <errno.h>
#include <geodesic.h>
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

#define CAP_VERTICES 128
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
         "verdicts of docs/LOCATE.md. FILE.csv has a header row with the columns\n"
         "name,lat,lon,rtt_ms (degrees on WGS84, round-trip time in milliseconds; other\n"
         "columns are ignored). Each RTT bounds the distance to r = v * rtt / 2.\n"
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
         "Exit status: 0 for any verdict, 1 on I/O failure, 2 on usage or input errors.\n");
}

typedef struct {
  const char *landmarks, *speed, *site, *regions, *allowed, *code_property, *geojson;
  long min_landmarks;
  int json;
} locate_args;

/* Parses "LAT,LON" (whole numbers, finite, in range). Returns 0 or -1. */
static int parse_site(const char *text, double out[2]) {
  const char *comma = strchr(text, ',');
  if (!comma)
    return -1;
  char *end = NULL;
  errno = 0;
  double lat = strtod(text, &end);
  if (errno || end == text || end != comma || text[0] == ' ')
    return -1;
  const char *t2 = comma + 1;
  double lon = strtod(t2, &end);
  if (errno || end == t2 || *end != '\0' || t2[0] == ' ')
    return -1;
  if (!isfinite(lat) || !isfinite(lon) || fabs(lat) > 90 || fabs(lon) > 180)
    return -1;
  out[0] = lat;
  out[1] = lon;
  return 0;
}

/* ---- GeoJSON ------------------------------------------------------------ */

typedef struct {
  double *xy; /* x (lon), y (lat) pairs */
  size_t n, cap;
} ring;

static int ring_push(ring *r, double x, double y) {
  if (r->n == r->cap) {
    size_t ncap = r->cap ? r->cap * 2 : 2 * CAP_VERTICES + 16;
    double *nv = realloc(r->xy, ncap * 2 * sizeof *nv);
    if (!nv)
      return CL_ENOMEM;
    r->xy = nv;
    r->cap = ncap;
  }
  r->xy[2 * r->n] = x;
  r->xy[2 * r->n + 1] = y;
  r->n++;
  return CL_OK;
}

static double ring_area2(const ring *r) {
  double a = 0;
  for (size_t i = 0; i < r->n; i++) {
    size_t j = (i + 1) % r->n;
    a += r->xy[2 * i] * r->xy[2 * j + 1] - r->xy[2 * j] * r->xy[2 * i + 1];
  }
  return a;
}

static void ring_reverse(ring *r) {
  for (size_t i = 0, j = r->n ? r->n - 1 : 0; i < j; i++, j--) {
    double tx = r->xy[2 * i], ty = r->xy[2 * i + 1];
    r->xy[2 * i] = r->xy[2 * j];
    r->xy[2 * i + 1] = r->xy[2 * j + 1];
    r->xy[2 * j] = tx;
    r->xy[2 * j + 1] = ty;
  }
}

/*
 * Sutherland-Hodgman against one vertical line: keeps x <= X (keep_le) or
 * x >= X. Exact for the rings drawn here, which every meridian meets in one
 * interval. out must be empty.
 */
static int clip_vertical(const ring *in, double X, int keep_le, ring *out) {
  for (size_t i = 0; i < in->n; i++) {
    size_t j = (i + 1) % in->n;
    double ax = in->xy[2 * i], ay = in->xy[2 * i + 1];
    double bx = in->xy[2 * j], by = in->xy[2 * j + 1];
    int ain = keep_le ? ax <= X : ax >= X;
    int bin = keep_le ? bx <= X : bx >= X;
    if (ain && ring_push(out, ax, ay))
      return CL_ENOMEM;
    if (ain != bin) {
      double t = (X - ax) / (bx - ax);
      if (ring_push(out, X, ay + t * (by - ay)))
        return CL_ENOMEM;
    }
  }
  return CL_OK;
}

/* JSON array [[x, y], ...] of a ring, closed, with consecutive repeats
 * removed; NULL if fewer than three distinct points remain. */
static json_t *ring_json(const ring *r) {
  json_t *a = json_array();
  size_t k = 0;
  double fx = 0, fy = 0, px = NAN, py = NAN;
  for (size_t i = 0; i < r->n; i++) {
    double x = r->xy[2 * i], y = r->xy[2 * i + 1];
    if (x == px && y == py)
      continue;
    if (k == 0)
      fx = x, fy = y;
    json_array_append_new(a, json_pack("[ff]", x, y));
    px = x, py = y;
    k++;
  }
  if (k > 1 && px == fx && py == fy)
    k--; /* already closed */
  else
    json_array_append_new(a, json_pack("[ff]", fx, fy));
  if (k < 3) {
    json_decref(a);
    return NULL;
  }
  return a;
}

/* Adds to polys (a MultiPolygon coordinate array) the parts of the
 * unwrapped ring that fall in each copy of [-180, 180]: pieces outside are
 * shifted by 360 degrees. Exterior rings come out counter-clockwise. */
static int add_split_ring(json_t *polys, const ring *r, const ring *hole) {
  for (int s = -1; s <= 1; s++) {
    double shift = 360.0 * s;
    ring a = {0}, b = {0};
    int rc = clip_vertical(r, 180.0 - shift, 1, &a);
    if (!rc)
      rc = clip_vertical(&a, -180.0 - shift, 0, &b);
    if (rc) {
      free(a.xy);
      free(b.xy);
      return rc;
    }
    for (size_t i = 0; i < b.n; i++)
      b.xy[2 * i] += shift;
    if (fabs(ring_area2(&b)) > 1e-12) {
      if (ring_area2(&b) < 0)
        ring_reverse(&b);
      json_t *outer = ring_json(&b);
      if (outer) {
        json_t *poly = json_array();
        json_array_append_new(poly, outer);
        if (hole && s == 0) {
          ring h = {0};
          for (size_t i = 0; i < hole->n; i++)
            if (ring_push(&h, hole->xy[2 * i], hole->xy[2 * i + 1])) {
              free(h.xy);
              free(a.xy);
              free(b.xy);
              json_decref(poly);
              return CL_ENOMEM;
            }
          if (ring_area2(&h) > 0)
            ring_reverse(&h);
          json_t *hj = ring_json(&h);
          if (hj)
            json_array_append_new(poly, hj);
          free(h.xy);
        }
        json_array_append_new(polys, poly);
      }
    }
    free(a.xy);
    free(b.xy);
  }
  return CL_OK;
}

/* Longitude difference b - a wrapped into (-180, 180]. */
static double dlon(double a, double b) {
  double d = fmod(b - a, 360.0);
  if (d > 180)
    d -= 360;
  if (d <= -180)
    d += 360;
  return d;
}

/*
 * Boundary of the geodesic circle of radius dist around (lat, lon), drawn
 * with CAP_VERTICES vertices and unwrapped in longitude starting near lon.
 * Returns the total longitude swept (0 if the circle winds around no pole,
 * +-360 if it winds around one).
 */
static double circle_ring(const struct geod_geodesic *g, double lat, double lon, double dist,
                          ring *out, int *rc) {
  double x = 0, prev_lon = lon, total = 0;
  out->n = 0;
  *rc = CL_OK;
  for (int i = 0; i < CAP_VERTICES; i++) {
    double az = 360.0 * i / CAP_VERTICES, la = 0, lo = 0;
    geod_direct(g, lat, lon, az, dist, &la, &lo, NULL);
    double d = dlon(prev_lon, lo);
    x = i == 0 ? lon + d : x + d;
    if (i > 0)
      total += d;
    prev_lon = lo;
    if (ring_push(out, x, la))
      *rc = CL_ENOMEM;
  }
  total += dlon(prev_lon, out->n ? out->xy[0] : lon);
  return total;
}

/*
 * Smallest geodesic distance from (lat, lon) to the straight lon/lat edges
 * of the ring (the closing edge goes to the first vertex shifted by
 * `shift` degrees of longitude), sampled at 16 points per edge.
 */
static double ring_min_dist(const struct geod_geodesic *g, const ring *r, double shift, double lat,
                            double lon) {
  double best = INFINITY;
  for (size_t i = 0; i < r->n; i++) {
    double ax = r->xy[2 * i], ay = r->xy[2 * i + 1];
    double bx = i + 1 < r->n ? r->xy[2 * i + 2] : r->xy[0] + shift;
    double by = i + 1 < r->n ? r->xy[2 * i + 3] : r->xy[1];
    for (int k = 0; k < 16; k++) {
      double t = k / 16.0, s12 = 0;
      double y = ay + t * (by - ay);
      if (y > 90)
        y = 90;
      if (y < -90)
        y = -90;
      geod_inverse(g, lat, lon, y, ax + t * (bx - ax), &s12, NULL, NULL);
      if (s12 < best)
        best = s12;
    }
  }
  return best;
}

static json_t *world_polygon(void) {
  return json_pack("[[[ff][ff][ff][ff][ff]]]", -180.0, -90.0, 180.0, -90.0, 180.0, 90.0, -180.0,
                   90.0, -180.0, -90.0);
}

/*
 * Geometry of one landmark's cap of radius r_m: a MultiPolygon that contains
 * the cap, with straight edges in longitude/latitude as RFC 7946 reads them.
 * The circle's vertices start at r / cos(pi/N), which contains the cap in
 * the plane; because longitude/latitude is not a plane, the radius is then
 * grown until every edge, sampled, stays outside the cap by a small margin.
 * The ring is split at the antimeridian; a cap around one pole is closed
 * along that pole; a cap around both poles is the world minus a circle
 * around the antipode kept outside the cap the same way, or the whole world
 * when that circle would cross the antimeridian or vanish. *how says which
 * ("circle", "polar", "world minus antipode", "world").
 */
static json_t *cap_geometry(const struct geod_geodesic *g, double lat, double lon, double r_m,
                            const char **how) {
  double to_n = 0, to_s = 0, to_anti = 0;
  geod_inverse(g, lat, lon, 90, lon, &to_n, NULL, NULL);
  geod_inverse(g, lat, lon, -90, lon, &to_s, NULL, NULL);
  double alat = -lat, alon = lon > 0 ? lon - 180 : lon + 180;
  geod_inverse(g, lat, lon, alat, alon, &to_anti, NULL, NULL);
  double target = r_m + fmax(1.0, r_m * 1e-5);
  json_t *polys = json_array();
  ring r = {0};
  int rc = CL_OK, in_n = 0, in_s = 0;
  double rout = r_m / cos(M_PI / CAP_VERTICES), total = 0;
  for (int iter = 0; iter < 40; iter++) {
    in_n = rout >= to_n;
    in_s = rout >= to_s;
    if (in_n && in_s)
      break;
    total = circle_ring(g, lat, lon, rout, &r, &rc);
    if (rc)
      break;
    int polar = (in_n || in_s) && fabs(total) > 180;
    double d = ring_min_dist(g, &r, polar ? total : 0, lat, lon);
    if (d >= target)
      break;
    rout *= 1 + 2 * (target - d) / r_m + 1e-4;
  }
  if (rc) {
    /* out of memory: handled below */
  } else if (in_n && in_s) {
    /* Inside the hole (around the antipode) every point is farther than r
     * from the landmark: shrink it until its sampled edges are. */
    double rho = (to_anti - rout) * cos(M_PI / CAP_VERTICES);
    int ok = 0;
    for (int iter = 0; iter < 40 && rho > 1000 && !rc; iter++) {
      circle_ring(g, alat, alon, rho, &r, &rc);
      double d = ring_min_dist(g, &r, 0, lat, lon);
      if (d >= target) {
        ok = 1;
        break;
      }
      rho -= 2 * (target - d) + 1e-4 * rho;
    }
    int crosses = 0;
    for (size_t i = 0; i < r.n; i++)
      crosses |= fabs(r.xy[2 * i]) > 180;
    if (ok && !crosses && !rc) {
      *how = "world minus antipode";
      ring world = {0};
      rc = ring_push(&world, -180, -90);
      if (!rc)
        rc = ring_push(&world, 180, -90);
      if (!rc)
        rc = ring_push(&world, 180, 90);
      if (!rc)
        rc = ring_push(&world, -180, 90);
      if (!rc)
        rc = add_split_ring(polys, &world, &r);
      free(world.xy);
    } else if (!rc) {
      *how = "world";
      json_array_append_new(polys, world_polygon());
    }
  } else if ((in_n || in_s) && fabs(total) > 180) {
    /* Around a pole: every meridian meets the cap in one interval ending at
     * that pole; close the ring along the pole's latitude. */
    *how = "polar";
    double pole = in_n ? 90.0 : -90.0;
    double x0 = r.xy[0], y0 = r.xy[1];
    rc = ring_push(&r, x0 + total, y0);
    if (!rc)
      rc = ring_push(&r, x0 + total, pole);
    if (!rc)
      rc = ring_push(&r, x0, pole);
    if (!rc)
      rc = add_split_ring(polys, &r, NULL);
  } else {
    *how = "circle";
    rc = add_split_ring(polys, &r, NULL);
  }
  free(r.xy);
  if (rc) {
    json_decref(polys);
    return NULL;
  }
  return json_pack("{s:s,s:o}", "type", "MultiPolygon", "coordinates", polys);
}

typedef struct {
  double lat0, lat1, lon0, lon1;
} rect;

static int cmp_rect(const void *a, const void *b) {
  const rect *x = a, *y = b;
  if (x->lat0 != y->lat0)
    return x->lat0 < y->lat0 ? -1 : 1;
  if (x->lat1 != y->lat1)
    return x->lat1 < y->lat1 ? -1 : 1;
  return x->lon0 < y->lon0 ? -1 : x->lon0 > y->lon0;
}

/* F as a MultiPolygon of the engine's cells, horizontally adjacent cells of
 * the same latitude range merged into one rectangle. NULL on no memory. */
static json_t *cells_geometry(const cl_geo_cell *cells, size_t n, size_t *nrects) {
  rect *v = malloc((n ? n : 1) * sizeof *v);
  if (!v)
    return NULL;
  for (size_t i = 0; i < n; i++)
    v[i] = (rect){cells[i].lat0, cells[i].lat1, cells[i].lon0, cells[i].lon1};
  qsort(v, n, sizeof *v, cmp_rect);
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (m > 0 && v[m - 1].lat0 == v[i].lat0 && v[m - 1].lat1 == v[i].lat1 &&
        fabs(v[m - 1].lon1 - v[i].lon0) < 1e-12) {
      if (v[i].lon1 > v[m - 1].lon1)
        v[m - 1].lon1 = v[i].lon1;
      continue;
    }
    v[m++] = v[i];
  }
  json_t *polys = json_array();
  for (size_t i = 0; i < m; i++) {
    json_array_append_new(polys, json_pack("[[[ff][ff][ff][ff][ff]]]", v[i].lon0, v[i].lat0,
                                           v[i].lon1, v[i].lat0, v[i].lon1, v[i].lat1, v[i].lon0,
                                           v[i].lat1, v[i].lon0, v[i].lat0));
  }
  free(v);
  *nrects = m;
  return json_pack("{s:s,s:o}", "type", "MultiPolygon", "coordinates", polys);
}

static json_t *feature(json_t *geometry, json_t *props) {
  return json_pack("{s:s,s:o,s:o}", "type", "Feature", "geometry",
                   geometry ? geometry : json_null(), "properties", props);
}

static json_t *point(double lat, double lon) {
  return json_pack("{s:s,s:[ff]}", "type", "Point", "coordinates", lon, lat);
}

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
  struct geod_geodesic g;
  geod_init(&g, CL_WGS84_A, CL_WGS84_F);
  const cl_geo_result *res = r->res;
  json_t *features = json_array();
  for (size_t i = 0; i < r->n; i++) {
    json_array_append_new(
        features, feature(point(r->lm[i].lat, r->lm[i].lon),
                          json_pack("{s:s,s:s,s:f,s:f,s:b}", "kind", "landmark", "name",
                                    r->lm[i].name, "rtt_ms", r->lm[i].rtt_ms, "bound_km",
                                    r->glm[i].bound_m / 1e3, "excluded", is_excluded(r, i))));
  }
  for (size_t i = 0; i < r->n; i++) {
    const char *how = "";
    json_t *geom = cap_geometry(&g, r->lm[i].lat, r->lm[i].lon, r->glm[i].bound_m, &how);
    if (!geom) {
      json_decref(features);
      fprintf(stderr, "chiploc: out of memory\n");
      return EXIT_RUNTIME;
    }
    json_array_append_new(
        features, feature(geom, json_pack("{s:s,s:s,s:f,s:s}", "kind", "cap", "name", r->lm[i].name,
                                          "bound_km", r->glm[i].bound_m / 1e3, "outline", how)));
  }
  json_t *fprops = json_pack("{s:s,s:s,s:f,s:I}", "kind", "feasible_region", "consistency",
                             cl_geo_consistency_name(res->consistency), "speed_m_per_s", r->speed,
                             "landmarks_used", (json_int_t)res->n_usable);
  json_object_set_new(fprops, "site", json_string(cl_geo_site_name(res->site)));
  json_object_set_new(fprops, "region", json_string(cl_geo_region_name(res->region)));
  json_t *fgeom = NULL;
  if (res->consistency == CL_GEO_CONSISTENT) {
    size_t nrects = 0;
    fgeom = cells_geometry(res->cells, res->n_cells, &nrects);
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
  json_array_append_new(features, feature(fgeom, fprops));
  if (r->site) {
    json_t *sprops = json_pack("{s:s,s:s}", "kind", "site", "verdict", cl_geo_site_name(res->site));
    if (res->site == CL_SITE_EXCLUDED) {
      json_object_set_new(sprops, "landmark", json_string(r->lm[res->site_landmark].name));
      json_object_set_new(sprops, "margin_km", json_real(res->site_margin_km));
    }
    json_array_append_new(features, feature(point(r->site[0], r->site[1]), sprops));
  }
  json_t *root = json_pack("{s:s,s:o}", "type", "FeatureCollection", "features", features);
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
  if (a->site && parse_site(a->site, site) != 0) {
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
         "and names the landmarks to blame: a smallest set that takes part in every\n"
         "violation. Positions: columns name,lat,lon. RTTs: columns a,b,rtt_ms (either\n"
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
    json_t *o = json_pack("{s:f,s:I,s:I,s:o,s:o,s:b}", "speed_m_per_s", speed, "landmarks",
                          (json_int_t)npos, "pairs_checked", (json_int_t)res.n_pairs, "violations",
                          viol, "blame", blame, "blame_minimal", res.blamed_minimal);
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
    printf("%s\n", res.blamed_minimal ? "" : " (not proven minimal)");
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
