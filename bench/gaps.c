/*
 * gaps: how well neighbouring countries of a border set meet, measured with
 * the engine's own point test (cl_region_contains, lib/engine/cl_region.c)
 * on regions read by its own loader (lib/io/cl_region_geojson.c); run
 * through bench/gaps.sh.
 *
 *   gaps [--step S] [--box NAME:CODES:LON0,LAT0,LON1,LAT1 ...] NAME=FILE:PROPERTY ...
 *
 * Each of a list of boxes lies across a land border (two or three
 * countries) or an inland lake, far from any sea, so that every point of it
 * is in reality territory of exactly one of its countries: a fixed list, or the boxes
 * given with --box (CODES comma-separated, corners in degrees). A grid of
 * sample points with a spacing of S metres (default 25) covers the box, one
 * point at the centre of each cell; each sample is tested
 * against every region of the set whose bounding box meets the box. A sample
 * in no region is gap, a sample in two or more is overlap. Each sample
 * stands for its grid cell, whose area is that of the cell on the WGS84
 * ellipsoid (the area element M(lat) N(lat) cos(lat) dlat dlon at the
 * sample's latitude). The grid's degree steps are fixed per box from the
 * radii of curvature at the box's centre latitude, so that a whole number
 * of cells tiles the box and a cell is S x S metres there (to half a step
 * over the box's width) and within 0.5 % of it across a box.
 *
 * Uncertainty: a gap (or overlap) sample whose four neighbours are not all
 * of its kind, or a non-gap sample next to a gap one, is a boundary cell;
 * the area of those cells bounds the error of the estimate (a sliver
 * thinner than S can be missed entirely, which the figure at a finer step
 * shows). The widest gap is the largest distance from a gap sample to the
 * nearest sample in a region (an exact Euclidean distance transform of the
 * grid in metres at the box centre; within the box, so an upper bound when
 * the nearest region lies outside it; within S of the true value).
 *
 * Prints one Markdown table row per set and box:
 *   | box | countries | set | countries found | samples | gap km² (± bound) | widest gap m |
 *   overlap km² (± bound) |
 * with a † after the gap when it reaches the box's edge (it may go on
 * outside: the figure is then a lower bound of that gap's area), and a
 * warning on stderr when a region other than the box's countries
 * shows up in a box (a box badly placed, not a data gap).
 * Exit status: 0 done, 1 a file could not be loaded, 2 usage.
 */
#include "cl_err.h"
#include "cl_region.h"
#include "cl_region_geojson.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  const char *codes; /* the countries that share the box, comma-separated */
  double lon0, lat0, lon1, lat1;
} box;

/* Land borders far from the sea: every point is one country's territory
 * (land or an inland lake). */
static const box DEFAULT_BOXES[] = {
    {"Geneva", "CHE,FRA", 5.85, 46.05, 6.40, 46.42},
    {"Aachen tri-point", "BEL,DEU,NLD", 5.80, 50.60, 6.25, 50.90},
    {"Basel tri-point", "CHE,DEU,FRA", 7.45, 47.48, 7.75, 47.65},
    {"Strasbourg (Rhine)", "DEU,FRA", 7.65, 48.45, 7.95, 48.70},
    {"Lille", "BEL,FRA", 3.00, 50.60, 3.35, 50.80},
    {"Görlitz (Neisse)", "DEU,POL", 14.85, 51.05, 15.10, 51.25},
    {"Salzburg (Salzach)", "AUT,DEU", 12.85, 47.70, 13.10, 47.90},
    {"Chiasso", "CHE,ITA", 8.90, 45.75, 9.15, 45.90},
    /* Territory that is not land: the land borders leave large lakes out. */
    {"Lake Geneva", "CHE,FRA", 6.15, 46.20, 6.95, 46.55},
};
#define N_DEFAULT_BOXES (sizeof DEFAULT_BOXES / sizeof DEFAULT_BOXES[0])
#define MAX_BOXES 64

#define WGS84_A 6378137.0
#define WGS84_E2 6.69437999014e-3
#define DEG (M_PI / 180.0)

/* Meridional (M) and prime vertical (N) radii of curvature at lat (deg). */
static void radii(double lat, double *m, double *n) {
  double s = sin(lat * DEG), w = sqrt(1.0 - WGS84_E2 * s * s);
  *m = WGS84_A * (1.0 - WGS84_E2) / (w * w * w);
  *n = WGS84_A / w;
}

/* One dimension of the squared Euclidean distance transform (Felzenszwalb
 * and Huttenlocher): d[i] = min_j (f[j] + (i - j)^2) over n samples. */
static void edt_1d(const double *f, double *d, size_t n, size_t *v, double *z) {
  /* v[0..k]: the parabolas of the lower envelope, z: where each begins. */
  long k = -1;
  for (size_t q = 0; q < n; q++) {
    if (isinf(f[q])) continue;
    double s = -INFINITY;
    while (k >= 0) {
      double p = (double)v[k];
      s = ((f[q] + (double)q * (double)q) - (f[v[k]] + p * p)) / (2.0 * ((double)q - p));
      if (s > z[k]) break;
      k--;
    }
    k++;
    v[k] = q;
    z[k] = k == 0 ? -INFINITY : s;
    z[k + 1] = INFINITY;
  }
  if (k < 0) {
    for (size_t q = 0; q < n; q++) d[q] = INFINITY;
    return;
  }
  long j = 0;
  for (size_t q = 0; q < n; q++) {
    while (z[j + 1] < (double)q) j++;
    double dq = (double)q - (double)v[j];
    d[q] = dq * dq + f[v[j]];
  }
}

/* Largest distance, in grid steps, from a sample with gap[i] set to the
 * nearest sample without it; 0 when there is no gap, INFINITY when there is
 * nothing but gap. */
static double widest(const unsigned char *gap, size_t nx, size_t ny) {
  size_t n = nx > ny ? nx : ny;
  double *g = malloc(nx * ny * sizeof *g), *f = malloc(n * sizeof *f), *d = malloc(n * sizeof *d);
  double *z = malloc((n + 1) * sizeof *z);
  size_t *v = malloc(n * sizeof *v);
  if (!g || !f || !d || !z || !v) {
    fprintf(stderr, "gaps: out of memory\n");
    exit(1);
  }
  for (size_t i = 0; i < nx * ny; i++) g[i] = gap[i] ? INFINITY : 0.0;
  for (size_t y = 0; y < ny; y++) {
    memcpy(f, g + y * nx, nx * sizeof *f);
    edt_1d(f, g + y * nx, nx, v, z);
  }
  double best = 0;
  for (size_t x = 0; x < nx; x++) {
    for (size_t y = 0; y < ny; y++) f[y] = g[y * nx + x];
    edt_1d(f, d, ny, v, z);
    for (size_t y = 0; y < ny; y++)
      if (gap[y * nx + x] && d[y] > best) best = d[y];
  }
  free(g);
  free(f);
  free(d);
  free(z);
  free(v);
  return sqrt(best);
}

/* 1 if code is one of the comma-separated codes. */
static int listed(const char *codes, const char *code) {
  size_t n = strlen(code);
  for (const char *p = codes; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, code, n) == 0) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

static void measure(const char *set_name, const cl_region_set *set, const box *b, double step) {
  double lat_c = 0.5 * (b->lat0 + b->lat1), m, n;
  radii(lat_c, &m, &n);
  /* Whole cells tile the box exactly, each within half a step of S. */
  size_t nx = (size_t)fmax(1, round((b->lon1 - b->lon0) * n * cos(lat_c * DEG) * DEG / step));
  size_t ny = (size_t)fmax(1, round((b->lat1 - b->lat0) * m * DEG / step));
  double dlon = (b->lon1 - b->lon0) / (double)nx, dlat = (b->lat1 - b->lat0) / (double)ny;
  /* The regions that can hold a point of the box. */
  const cl_region **cand = malloc((set->n ? set->n : 1) * sizeof *cand);
  size_t *hits = calloc(set->n ? set->n : 1, sizeof *hits);
  unsigned char *k = malloc(nx * ny);
  if (!cand || !hits || !k) {
    fprintf(stderr, "gaps: out of memory\n");
    exit(1);
  }
  size_t nc = 0;
  for (size_t i = 0; i < set->n; i++) {
    double x0, y0, x1, y1;
    cl_region_bbox(set->regions[i], &x0, &y0, &x1, &y1);
    if (x1 >= b->lon0 && x0 <= b->lon1 && y1 >= b->lat0 && y0 <= b->lat1)
      cand[nc++] = set->regions[i];
  }
  for (size_t y = 0; y < ny; y++) {
    double lat = b->lat0 + ((double)y + 0.5) * dlat;
    for (size_t x = 0; x < nx; x++) {
      double lon = b->lon0 + ((double)x + 0.5) * dlon;
      unsigned c = 0;
      for (size_t i = 0; i < nc; i++)
        if (cl_region_contains(cand[i], lon, lat)) {
          c++;
          hits[i]++;
        }
      k[y * nx + x] = (unsigned char)(c > 2 ? 2 : c);
    }
  }
  /* Areas, and the boundary cells that bound their error. */
  double gap = 0, gap_b = 0, over = 0, over_b = 0;
  int at_edge = 0;
  unsigned char *is_gap = malloc(nx * ny);
  if (!is_gap) {
    fprintf(stderr, "gaps: out of memory\n");
    exit(1);
  }
  for (size_t y = 0; y < ny; y++) {
    double lat = b->lat0 + ((double)y + 0.5) * dlat, mm, nn;
    radii(lat, &mm, &nn);
    double area = mm * nn * cos(lat * DEG) * (dlat * DEG) * (dlon * DEG) / 1e6;
    for (size_t x = 0; x < nx; x++) {
      unsigned char c = k[y * nx + x];
      is_gap[y * nx + x] = c == 0;
      int gap_edge = 0, over_edge = 0;
      const long dx[4] = {1, -1, 0, 0}, dy[4] = {0, 0, 1, -1};
      for (int j = 0; j < 4; j++) {
        long xx = (long)x + dx[j], yy = (long)y + dy[j];
        if (xx < 0 || yy < 0 || xx >= (long)nx || yy >= (long)ny) continue;
        unsigned char o = k[(size_t)yy * nx + (size_t)xx];
        if ((o == 0) != (c == 0)) gap_edge = 1;
        if ((o == 2) != (c == 2)) over_edge = 1;
      }
      if (c == 0) {
        gap += area;
        if (x == 0 || y == 0 || x + 1 == nx || y + 1 == ny) at_edge = 1;
      }
      if (c == 2) over += area;
      if (gap_edge) gap_b += area;
      if (over_edge) over_b += area;
    }
  }
  double wide = widest(is_gap, nx, ny) * step;
  char found[256] = "";
  size_t used = 0;
  for (size_t i = 0; i < nc; i++) {
    if (!hits[i]) continue;
    const char *code = cl_region_code(cand[i]);
    int w = snprintf(found + used, sizeof found - used, "%s%s", used ? "," : "", code);
    if (w > 0 && (size_t)w < sizeof found - used) used += (size_t)w;
    if (!listed(b->codes, code))
      fprintf(stderr, "gaps: warning: %s holds %zu sample(s) of %s in box %s (not one of %s)\n",
              set_name, hits[i], code, b->name, b->codes);
  }
  char wide_s[32];
  if (gap == 0)
    snprintf(wide_s, sizeof wide_s, "-");
  else if (isinf(wide))
    snprintf(wide_s, sizeof wide_s, "whole box");
  else
    snprintf(wide_s, sizeof wide_s, "%.0f", wide);
  printf("| %s | %s | %s | %s | %zu | %.3f (± %.3f)%s | %s | %.3f (± %.3f) |\n", b->name, b->codes,
         set_name, found[0] ? found : "none", nx * ny, gap, gap_b, at_edge ? " †" : "", wide_s,
         over, over_b);
  fflush(stdout);
  free(cand);
  free(hits);
  free(k);
  free(is_gap);
}

/* NAME:CODES:LON0,LAT0,LON1,LAT1 into b (pointing into spec); 0 or -1. */
static int parse_box(char *spec, box *b) {
  char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
  if (!c1 || !c2 || c1 == spec || c2 == c1 + 1) return -1;
  *c1 = *c2 = '\0';
  int used = 0;
  if (sscanf(c2 + 1, "%lf,%lf,%lf,%lf%n", &b->lon0, &b->lat0, &b->lon1, &b->lat1, &used) != 4 ||
      c2[1 + used] != '\0')
    return -1;
  if (!(b->lon0 >= -180 && b->lon0 < b->lon1 && b->lon1 <= 180 && b->lat0 >= -90 &&
        b->lat0 < b->lat1 && b->lat1 <= 90))
    return -1;
  b->name = spec;
  b->codes = c1 + 1;
  return 0;
}

int main(int argc, char **argv) {
  double step = 25;
  box given[MAX_BOXES];
  size_t n_given = 0;
  int first = 1;
  while (first + 1 < argc && argv[first][0] == '-') {
    if (strcmp(argv[first], "--step") == 0) {
      char *end;
      step = strtod(argv[first + 1], &end);
      if (*end || !(step >= 1 && step <= 10000)) {
        fprintf(stderr, "gaps: --step %s: expected metres in [1, 10000]\n", argv[first + 1]);
        return 2;
      }
    } else if (strcmp(argv[first], "--box") == 0) {
      if (n_given == MAX_BOXES || parse_box(argv[first + 1], &given[n_given]) != 0) {
        fprintf(stderr, "gaps: --box %s: expected NAME:CODES:LON0,LAT0,LON1,LAT1 (at most %d)\n",
                argv[first + 1], MAX_BOXES);
        return 2;
      }
      n_given++;
    } else {
      break;
    }
    first += 2;
  }
  if (first >= argc || argv[first][0] == '-') {
    fprintf(stderr,
            "usage: gaps [--step S] [--box NAME:CODES:LON0,LAT0,LON1,LAT1 ...] "
            "NAME=FILE:PROPERTY ...\n");
    return 2;
  }
  const box *boxes = n_given ? given : DEFAULT_BOXES;
  size_t n_boxes = n_given ? n_given : N_DEFAULT_BOXES;
  printf("| box | countries | set | found | samples | gap km² (± bound) | widest gap m | "
         "overlap km² (± bound) |\n");
  printf("|---|---|---|---|---|---|---|---|\n");
  for (int a = first; a < argc; a++) {
    char spec[4096];
    if (snprintf(spec, sizeof spec, "%s", argv[a]) >= (int)sizeof spec) {
      fprintf(stderr, "gaps: %s: too long\n", argv[a]);
      return 2;
    }
    char *eq = strchr(spec, '='), *colon = strrchr(spec, ':');
    if (!eq || !colon || colon < eq || eq == spec || colon[1] == '\0') {
      fprintf(stderr, "gaps: %s: expected NAME=FILE:PROPERTY\n", argv[a]);
      return 2;
    }
    *eq = '\0';
    *colon = '\0';
    cl_region_set set;
    char err[512] = "";
    if (cl_region_set_load_geojson(&set, eq + 1, colon + 1, err, sizeof err) != CL_OK) {
      fprintf(stderr, "gaps: %s: %s\n", eq + 1, err[0] ? err : "cannot load");
      return 1;
    }
    for (size_t i = 0; i < n_boxes; i++) measure(spec, &set, &boxes[i], step);
    cl_region_set_free(&set);
  }
  return 0;
}
