/*
 * Tests of allowed regions (lib/engine/cl_region.c) and their GeoJSON loader
 * (lib/io/cl_region_geojson.c): point membership with holes, multipolygons,
 * the antimeridian and the poles (seams, not borders); the conservative
 * rectangle classifier checked against brute force on random star polygons
 * and against sampling on regions that use the seams (fixed seeds); every
 * malformed-GeoJSON error naming its feature and problem; and the real
 * country borders, land and maritime, fetched by the countries_fetch and
 * borders_fetch fixtures into the files named by CHIPLOC_COUNTRIES and
 * CHIPLOC_BORDERS (missing file: failure, not a skip). The
 * geometry digest that version-2 attestations sign is built by hand from
 * its documented bytes and pinned (docs/ATTESTATION.md).
 */
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_region.h"
#include "cl_region_geojson.h"

#include <check.h>
#include <math.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------- */

static cl_region *new_region(const char *code) {
  cl_region *r = NULL;
  ck_assert_int_eq(cl_region_create(&r, code), CL_OK);
  ck_assert_ptr_nonnull(r);
  return r;
}

static void add_ring(cl_region *r, int polygon, const double *p, size_t n) {
  ck_assert_int_eq(cl_region_add_ring(r, polygon, p, n), CL_OK);
}

/* An axis-aligned box ring (counter-clockwise, unclosed). */
static void box(double *p, double x0, double y0, double x1, double y1) {
  const double v[8] = {x0, y0, x1, y0, x1, y1, x0, y1};
  memcpy(p, v, sizeof v);
}

static cl_region *box_region(const char *code, double x0, double y0, double x1, double y1) {
  cl_region *r = new_region(code);
  double p[8];
  box(p, x0, y0, x1, y1);
  add_ring(r, 0, p, 4);
  ck_assert_int_eq(cl_region_finish(r), CL_OK);
  return r;
}

#define CLASS(r, x0, y0, x1, y1) cl_region_classify_rect((r), (x0), (y0), (x1), (y1))

/* Deterministic generator (splitmix64): the same numbers on every machine. */
static uint64_t rng_state;
static double rnd(void) {
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53;
}
static double rnd_in(double a, double b) { return a + (b - a) * rnd(); }

/* ---- brute-force reference -------------------------------------------------- */

#define REF_MAX_RINGS 8
typedef struct {
  int polygon[REF_MAX_RINGS];
  double *pts[REF_MAX_RINGS];
  size_t n[REF_MAX_RINGS];
  size_t nrings;
} ref_shape;

/* Even-odd per polygon over all its rings, union over polygons, with the
 * textbook division form of the crossing test (independent of the code
 * under test). */
static int ref_contains(const ref_shape *s, double x, double y) {
  for (size_t a = 0; a < s->nrings; a++) {
    int seen = 0;
    for (size_t b = 0; b < a; b++) seen |= s->polygon[b] == s->polygon[a];
    if (seen) continue;
    int odd = 0;
    for (size_t b = a; b < s->nrings; b++) {
      if (s->polygon[b] != s->polygon[a]) continue;
      const double *p = s->pts[b];
      size_t n = s->n[b];
      for (size_t i = 0, j = n - 1; i < n; j = i++) {
        double xi = p[2 * i], yi = p[2 * i + 1], xj = p[2 * j], yj = p[2 * j + 1];
        if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) odd ^= 1;
      }
    }
    if (odd) return 1;
  }
  return 0;
}

/* Liang-Barsky: 1 if segment (x0,y0)-(x1,y1) meets the closed rectangle. */
static int ref_seg_meets(double x0, double y0, double x1, double y1, double rx0, double ry0,
                         double rx1, double ry1) {
  double t0 = 0, t1 = 1, dx = x1 - x0, dy = y1 - y0;
  const double p[4] = {-dx, dx, -dy, dy};
  const double q[4] = {x0 - rx0, rx1 - x0, y0 - ry0, ry1 - y0};
  for (int k = 0; k < 4; k++) {
    if (p[k] == 0) {
      if (q[k] < 0) return 0;
      continue;
    }
    double t = q[k] / p[k];
    if (p[k] < 0) {
      if (t > t1) return 0;
      if (t > t0) t0 = t;
    } else {
      if (t < t0) return 0;
      if (t < t1) t1 = t;
    }
  }
  return 1;
}

static int ref_edge_meets(const ref_shape *s, double rx0, double ry0, double rx1, double ry1) {
  for (size_t b = 0; b < s->nrings; b++) {
    const double *p = s->pts[b];
    size_t n = s->n[b];
    for (size_t i = 0, j = n - 1; i < n; j = i++)
      if (ref_seg_meets(p[2 * j], p[2 * j + 1], p[2 * i], p[2 * i + 1], rx0, ry0, rx1, ry1))
        return 1;
  }
  return 0;
}

/* A random star-shaped ring of n vertices around (cx, cy), radii in
 * [rmin, rmax] degrees (malloc'd). */
static double *star(double cx, double cy, double rmin, double rmax, size_t n) {
  double *p = malloc(2 * n * sizeof *p);
  ck_assert_ptr_nonnull(p);
  for (size_t k = 0; k < n; k++) {
    double a = 2 * M_PI * ((double)k + rnd_in(0.0, 0.8)) / (double)n;
    double rad = rnd_in(rmin, rmax);
    p[2 * k] = cx + rad * cos(a);
    p[2 * k + 1] = cy + rad * sin(a);
  }
  return p;
}

/* ---- basic membership -------------------------------------------------------- */

START_TEST(test_unit_square) {
  cl_region *r = box_region("SQ", 0, 0, 1, 1);
  ck_assert_str_eq(cl_region_code(r), "SQ");
  ck_assert_uint_eq(cl_region_vertex_count(r), 4);
  double a, b, c, d;
  cl_region_bbox(r, &a, &b, &c, &d);
  ck_assert(a == 0 && b == 0 && c == 1 && d == 1);
  ck_assert_int_eq(cl_region_contains(r, 0.5, 0.5), 1);
  ck_assert_int_eq(cl_region_contains(r, 0.001, 0.999), 1);
  ck_assert_int_eq(cl_region_contains(r, 1.5, 0.5), 0);
  ck_assert_int_eq(cl_region_contains(r, -0.5, 0.5), 0);
  ck_assert_int_eq(cl_region_contains(r, 0.5, 1.0001), 0);
  ck_assert_int_eq(cl_region_contains(r, 0.5, -0.0001), 0);
  ck_assert_int_eq(cl_region_contains(r, NAN, 0.5), 0);
  cl_region_destroy(&r);
  ck_assert_ptr_null(r);
  cl_region_destroy(&r); /* NULL is fine */
}
END_TEST

START_TEST(test_ring_input) {
  cl_region *r = new_region("X");
  /* A closing point is optional and not stored. */
  const double closed[] = {0, 0, 2, 0, 2, 2, 0, 2, 0, 0};
  add_ring(r, 0, closed, 5);
  ck_assert_uint_eq(cl_region_vertex_count(r), 4);
  /* Repeated points collapse. */
  const double rep[] = {5, 5, 5, 5, 6, 5, 6, 5, 6, 6, 5, 5};
  add_ring(r, 1, rep, 6);
  ck_assert_uint_eq(cl_region_vertex_count(r), 7);
  /* Fewer than 3 distinct points, bad coordinates: refused, nothing kept. */
  const double two[] = {0, 0, 1, 1, 0, 0, 1, 1};
  ck_assert_int_eq(cl_region_add_ring(r, 2, two, 4), CL_EINVAL);
  ck_assert_int_eq(cl_region_add_ring(r, 2, two, 2), CL_EINVAL);
  const double lat91[] = {0, 0, 1, 91, 1, 0};
  ck_assert_int_eq(cl_region_add_ring(r, 2, lat91, 3), CL_EINVAL);
  const double lon181[] = {0, 0, 181, 1, 1, 0};
  ck_assert_int_eq(cl_region_add_ring(r, 2, lon181, 3), CL_EINVAL);
  const double nan_pt[] = {0, 0, NAN, 1, 1, 0};
  ck_assert_int_eq(cl_region_add_ring(r, 2, nan_pt, 3), CL_EINVAL);
  const double inf_pt[] = {0, 0, 1, INFINITY, 1, 0};
  ck_assert_int_eq(cl_region_add_ring(r, 2, inf_pt, 3), CL_EINVAL);
  ck_assert_int_eq(cl_region_add_ring(r, -1, closed, 5), CL_EINVAL);
  ck_assert_int_eq(cl_region_add_ring(NULL, 0, closed, 5), CL_EINVAL);
  ck_assert_uint_eq(cl_region_vertex_count(r), 7);
  /* Queries before finish are conservative. */
  ck_assert_int_eq(cl_region_contains(r, 1, 1), 0);
  ck_assert_int_eq(CLASS(r, 0.5, 0.5, 0.6, 0.6), CL_RECT_BOUNDARY);
  ck_assert_int_eq(cl_region_finish(r), CL_OK);
  ck_assert_int_eq(cl_region_finish(r), CL_EINVAL);
  ck_assert_int_eq(cl_region_add_ring(r, 3, closed, 5), CL_EINVAL);
  ck_assert_int_eq(cl_region_contains(r, 1, 1), 1);
  ck_assert_int_eq(cl_region_contains(r, 5.9, 5.5), 1);
  cl_region_destroy(&r);
  /* A region without rings cannot be finished. */
  r = new_region("EMPTY");
  ck_assert_int_eq(cl_region_finish(r), CL_EINVAL);
  cl_region_destroy(&r);
  ck_assert_int_eq(cl_region_create(NULL, "X"), CL_EINVAL);
}
END_TEST

START_TEST(test_rect_classes) {
  cl_region *r = box_region("SQ", 0, 0, 1, 1);
  ck_assert_int_eq(CLASS(r, 0.2, 0.2, 0.4, 0.4), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, 0.5, 0.5, 0.5, 0.5), CL_RECT_INSIDE); /* a point */
  ck_assert_int_eq(CLASS(r, 2, 2, 3, 3), CL_RECT_OUTSIDE);
  ck_assert_int_eq(CLASS(r, -3, 0.2, -2, 0.4), CL_RECT_OUTSIDE);
  ck_assert_int_eq(CLASS(r, 0.5, 0.5, 1.5, 0.6), CL_RECT_BOUNDARY);
  /* A rectangle holding the whole polygon, no edge crossing its sides. */
  ck_assert_int_eq(CLASS(r, -1, -1, 2, 2), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, -0.001, -0.001, 1.001, 1.001), CL_RECT_BOUNDARY);
  /* Touching an edge from outside, or coming within the margin of one. */
  ck_assert_int_eq(CLASS(r, 1, 0.2, 2, 0.4), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, 1 + 1e-12, 0.2, 2, 0.4), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, 1 + 0.5e-9, 0.2, 2, 0.4), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, 1 + 1e-6, 0.2, 2, 0.4), CL_RECT_OUTSIDE);
  /* Touching from inside, and touching only at a corner. */
  ck_assert_int_eq(CLASS(r, 0.5, 0.5, 1, 0.6), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, 0.5, 0.5, 1 - 1e-6, 0.6), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, 1, 1, 2, 2), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, -1, -1, 0, 0), CL_RECT_BOUNDARY);
  /* A thin rectangle crossing the square with no vertex inside it. */
  ck_assert_int_eq(CLASS(r, -5, 0.4, 5, 0.41), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, 0.4, -5, 0.41, 5), CL_RECT_BOUNDARY);
  /* Malformed rectangles are never claimed INSIDE or OUTSIDE. */
  ck_assert_int_eq(CLASS(r, 0.4, 0.2, 0.3, 0.4), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, NAN, 0.2, 0.3, 0.4), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, 0.1, 0.2, INFINITY, 0.4), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(NULL, 0.1, 0.2, 0.3, 0.4), CL_RECT_BOUNDARY);
  cl_region_destroy(&r);
}
END_TEST

START_TEST(test_holes) {
  /* [0,10]^2 minus [4,6]^2; a diagonal edge on the outer ring too. */
  cl_region *r = new_region("H");
  const double outer[] = {0, 0, 10, 0, 10, 8, 8, 10, 0, 10};
  double hole[8];
  box(hole, 4, 4, 6, 6);
  add_ring(r, 0, outer, 5);
  add_ring(r, 0, hole, 4);
  ck_assert_int_eq(cl_region_finish(r), CL_OK);
  ck_assert_int_eq(cl_region_contains(r, 2, 2), 1);
  ck_assert_int_eq(cl_region_contains(r, 5, 5), 0);
  ck_assert_int_eq(cl_region_contains(r, 9.5, 9.5), 0); /* cut corner */
  ck_assert_int_eq(cl_region_contains(r, 8.9, 8.9), 1);
  ck_assert_int_eq(CLASS(r, 4.5, 4.5, 5.5, 5.5), CL_RECT_OUTSIDE); /* inside the hole */
  ck_assert_int_eq(CLASS(r, 4.5, 4.5, 6.5, 5.5), CL_RECT_BOUNDARY); /* over the hole's edge */
  ck_assert_int_eq(CLASS(r, 3.5, 3.5, 6.5, 6.5), CL_RECT_BOUNDARY); /* around the hole */
  ck_assert_int_eq(CLASS(r, 1, 1, 3, 3), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, 7, 1, 9, 3), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, 9.2, 9.2, 9.8, 9.8), CL_RECT_OUTSIDE);
  ck_assert_int_eq(CLASS(r, 8.5, 8.5, 9.5, 9.5), CL_RECT_BOUNDARY); /* over the diagonal */
  cl_region_destroy(&r);
}
END_TEST

START_TEST(test_multipolygon) {
  /* Polygon numbers need not be dense nor their rings adjacent, and
   * overlapping polygons are a union (not an exclusive or). */
  cl_region *r = new_region("M");
  double a[8], ah[8], b[8], c[8];
  box(a, 0, 0, 10, 10);
  box(ah, 2, 2, 4, 4);
  box(b, 20, 0, 30, 10);
  box(c, 8, 8, 12, 12);
  add_ring(r, 7, a, 4);
  add_ring(r, 3, b, 4);
  add_ring(r, 7, ah, 4);
  add_ring(r, 11, c, 4);
  ck_assert_int_eq(cl_region_finish(r), CL_OK);
  ck_assert_int_eq(cl_region_contains(r, 1, 1), 1);
  ck_assert_int_eq(cl_region_contains(r, 3, 3), 0);   /* hole of polygon 7 */
  ck_assert_int_eq(cl_region_contains(r, 25, 5), 1);  /* polygon 3 */
  ck_assert_int_eq(cl_region_contains(r, 15, 5), 0);  /* between */
  ck_assert_int_eq(cl_region_contains(r, 9, 9), 1);   /* in both 7 and 11 */
  ck_assert_int_eq(cl_region_contains(r, 11, 11), 1); /* in 11 only */
  ck_assert_int_eq(CLASS(r, 8.5, 8.5, 9.5, 9.5), CL_RECT_INSIDE);
  /* Inside the union, but polygon 7's corner lies in it: conservative. */
  ck_assert_int_eq(CLASS(r, 9.5, 9.5, 10.5, 10.5), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, 21, 1, 29, 9), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, 13, 1, 19, 9), CL_RECT_OUTSIDE);
  ck_assert_int_eq(CLASS(r, 2.5, 2.5, 3.5, 3.5), CL_RECT_OUTSIDE);
  ck_assert_int_eq(CLASS(r, 5, 5, 25, 6), CL_RECT_BOUNDARY);
  ck_assert_uint_eq(cl_region_vertex_count(r), 16);
  cl_region_destroy(&r);
}
END_TEST

START_TEST(test_antimeridian) {
  /* Fiji-like: one island split at 180 into two polygons, as RFC 7946 asks. */
  cl_region *r = new_region("FJX");
  double east[8], west[8];
  box(east, 177, -19, 180, -16);
  box(west, -180, -19, -178, -16);
  add_ring(r, 0, east, 4);
  add_ring(r, 1, west, 4);
  ck_assert_int_eq(cl_region_finish(r), CL_OK);
  ck_assert_int_eq(cl_region_contains(r, 178, -17.5), 1);
  ck_assert_int_eq(cl_region_contains(r, 179.99, -17.5), 1);
  ck_assert_int_eq(cl_region_contains(r, -179.99, -17.5), 1);
  ck_assert_int_eq(cl_region_contains(r, -179, -17.5), 1);
  ck_assert_int_eq(cl_region_contains(r, 0, -17.5), 0); /* edges never wrap */
  ck_assert_int_eq(cl_region_contains(r, 176, -17.5), 0);
  ck_assert_int_eq(cl_region_contains(r, -177, -17.5), 0);
  ck_assert_int_eq(CLASS(r, 178, -18, 179, -17), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, -179.5, -18, -178.5, -17), CL_RECT_INSIDE);
  /* The cut is a seam, not a border: cells on either side of it are
   * INSIDE, cells over the real edges are not. */
  ck_assert_int_eq(CLASS(r, 179, -18, 180, -17), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, -180, -18, -179, -17), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, 179, -16.5, 180, -15.5), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, -180, -19.5, -179, -18.5), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, -178.5, -18, -177.5, -17), CL_RECT_BOUNDARY);
  /* Looking through the seam needs a rectangle with points off it that
   * does not reach past it. */
  ck_assert_int_eq(CLASS(r, 180, -18, 180, -17), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, 179, -18, 180.5, -17), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, -180.5, -18, -179, -17), CL_RECT_BOUNDARY);
  ck_assert_int_eq(CLASS(r, -10, -18, 10, -17), CL_RECT_OUTSIDE);
  ck_assert_int_eq(CLASS(r, -177, -18, 176, -17), CL_RECT_OUTSIDE);
  cl_region_destroy(&r);
  /* One half alone: its side of the seam is still INSIDE (the line itself
   * is its closed boundary), the other side OUTSIDE. */
  r = box_region("E", 177, -19, 180, -16);
  ck_assert_int_eq(CLASS(r, 179, -18, 180, -17), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, -180, -18, -179, -17), CL_RECT_OUTSIDE);
  cl_region_destroy(&r);
}
END_TEST

START_TEST(test_poles) {
  /* A cap around the north pole as a planar box up to lat 90, and a
   * triangle whose apex is the south pole. */
  cl_region *r = new_region("POLE");
  double cap[8];
  box(cap, -180, 80, 180, 90);
  const double tri[] = {0, -80, 10, -80, 5, -90};
  add_ring(r, 0, cap, 4);
  add_ring(r, 1, tri, 3);
  ck_assert_int_eq(cl_region_finish(r), CL_OK);
  ck_assert_int_eq(cl_region_contains(r, 0, 85), 1);
  ck_assert_int_eq(cl_region_contains(r, 179.99, 89.999), 1);
  ck_assert_int_eq(cl_region_contains(r, -179.99, 80.001), 1);
  ck_assert_int_eq(cl_region_contains(r, 0, 79.9), 0);
  ck_assert_int_eq(cl_region_contains(r, 5, -89), 1);
  ck_assert_int_eq(cl_region_contains(r, 9, -89), 0);
  ck_assert_int_eq(cl_region_contains(r, 5, -79), 0);
  ck_assert_int_eq(CLASS(r, -10, 85, 10, 89.5), CL_RECT_INSIDE);
  /* The edge along latitude 90 is the pole, and the edges along +-180 are
   * the seam: neither is a border. */
  ck_assert_int_eq(CLASS(r, -10, 85, 10, 90), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, -180, 81, 180, 89), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, -180, 81, 180, 90), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, -179, 81, 179, 89), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, -180, 79, 180, 90), CL_RECT_BOUNDARY); /* the real edge, at 80 */
  ck_assert_int_eq(CLASS(r, -10, 90, 10, 90), CL_RECT_BOUNDARY);   /* on the seam only */
  ck_assert_int_eq(CLASS(r, 4.9, -85, 5.1, -84), CL_RECT_INSIDE);
  ck_assert_int_eq(CLASS(r, 20, -90, 30, -85), CL_RECT_OUTSIDE);
  ck_assert_int_eq(CLASS(r, 0, -90, 10, -89), CL_RECT_BOUNDARY);
  cl_region_destroy(&r);
}
END_TEST

START_TEST(test_union) {
  cl_region *a = box_region("A", 0, 0, 1, 1);
  cl_region *b = box_region("B", 1, 0, 2, 1);
  const cl_region *m[2] = {a, b};
  cl_region_union u = {m, 2};
  ck_assert_int_eq(cl_region_union_contains(&u, 0.5, 0.5), 1);
  ck_assert_int_eq(cl_region_union_contains(&u, 1.5, 0.5), 1);
  ck_assert_int_eq(cl_region_union_contains(&u, 2.5, 0.5), 0);
  ck_assert_int_eq(cl_region_union_classify_rect(&u, 0.2, 0.2, 0.4, 0.4), CL_RECT_INSIDE);
  ck_assert_int_eq(cl_region_union_classify_rect(&u, 1.2, 0.2, 1.4, 0.4), CL_RECT_INSIDE);
  ck_assert_int_eq(cl_region_union_classify_rect(&u, 3, 3, 4, 4), CL_RECT_OUTSIDE);
  /* Straddling the shared border: each member says BOUNDARY, the union
   * has A on one side and B on the other (test_union_shared_edges). */
  ck_assert_int_eq(cl_region_union_classify_rect(&u, 0.9, 0.4, 1.1, 0.6), CL_RECT_INSIDE);
  ck_assert_int_eq(cl_region_union_classify_rect(&u, 1.9, 0.4, 2.1, 0.6), CL_RECT_BOUNDARY);
  cl_region_union none = {m, 0};
  ck_assert_int_eq(cl_region_union_contains(&none, 0.5, 0.5), 0);
  ck_assert_int_eq(cl_region_union_classify_rect(&none, 0.2, 0.2, 0.4, 0.4), CL_RECT_OUTSIDE);
  cl_region_destroy(&a);
  cl_region_destroy(&b);
}
END_TEST

/* A region of one polygon with one ring of n points (closed or not),
 * optionally a hole of m points. */
static cl_region *ring_region(const char *code, const double *p, size_t n, const double *hole,
                              size_t m) {
  cl_region *r = new_region(code);
  add_ring(r, 0, p, n);
  if (hole) add_ring(r, 0, hole, m);
  ck_assert_int_eq(cl_region_finish(r), CL_OK);
  return r;
}

#define UCLASS(u, x0, y0, x1, y1) cl_region_union_classify_rect((u), (x0), (y0), (x1), (y1))

/*
 * Edges that two members share exactly, with the union on both sides, are
 * no border of the union: a rectangle across them is INSIDE. Shared edges
 * with both members on the same side, partly shared edges and gaps stay
 * borders.
 */
START_TEST(test_union_shared_edges) {
  static const double A[] = {0, 0, 1, 0, 1, 1, 0, 1};
  static const double B_CCW[] = {1, 0, 2, 0, 2, 1, 1, 1};
  static const double B_CW[] = {1, 1, 2, 1, 2, 0, 1, 0, 1, 1}; /* closed, other way */
  cl_region *a = ring_region("A", A, 4, NULL, 0);
  for (int k = 0; k < 2; k++) {
    cl_region *b = ring_region("B", k ? B_CW : B_CCW, k ? 5 : 4, NULL, 0);
    const cl_region *m[2] = {a, b};
    cl_region_union u = {m, 2}, ua = {m, 1}, ub = {&m[1], 1};
    ck_assert_int_eq(UCLASS(&u, 0.9, 0.4, 1.1, 0.6), CL_RECT_INSIDE);
    ck_assert_int_eq(UCLASS(&ua, 0.9, 0.4, 1.1, 0.6), CL_RECT_BOUNDARY);
    ck_assert_int_eq(UCLASS(&ub, 0.9, 0.4, 1.1, 0.6), CL_RECT_BOUNDARY);
    /* The whole shared edge and its end points, from within the union. */
    ck_assert_int_eq(UCLASS(&u, 0.5, 1e-8, 1.5, 1 - 1e-8), CL_RECT_INSIDE);
    ck_assert_int_eq(UCLASS(&u, 1.0, 0.5, 1.0 + 1e-7, 0.5), CL_RECT_INSIDE);
    /* A point on the edge has no probe off it: not proven. */
    ck_assert_int_eq(UCLASS(&u, 1.0, 0.5, 1.0, 0.5), CL_RECT_BOUNDARY);
    /* Reaching past the union's outer border, at the shared edge's end. */
    ck_assert_int_eq(UCLASS(&u, 0.9, 0.9, 1.1, 1.1), CL_RECT_BOUNDARY);
    ck_assert_int_eq(UCLASS(&u, 0.9, -0.1, 1.1, 0.1), CL_RECT_BOUNDARY);
    ck_assert_int_eq(UCLASS(&u, 0.5, 0.5, 2.5, 0.6), CL_RECT_BOUNDARY);
    ck_assert_int_eq(UCLASS(&u, 0.5, 0.5, 2.0, 1.0), CL_RECT_BOUNDARY);
    cl_region_destroy(&b);
  }

  /* Overlap: C = [0.5, 1] x [0, 1] shares A's edge x = 1, on the same side.
   * That edge is a border of A u C. */
  static const double C[] = {0.5, 0, 1, 0, 1, 1, 0.5, 1};
  cl_region *c = ring_region("C", C, 4, NULL, 0);
  const cl_region *ac[2] = {a, c};
  cl_region_union uac = {ac, 2};
  ck_assert_int_eq(UCLASS(&uac, 0.9, 0.4, 1.1, 0.6), CL_RECT_BOUNDARY);
  /* Sticking out by a sliver that no probe point of the rectangle hits. */
  ck_assert_int_eq(UCLASS(&uac, 0.9, 0.4, 1.001, 0.6), CL_RECT_BOUNDARY);
  ck_assert_int_eq(UCLASS(&uac, 0.45, 0.4, 0.55, 0.6), CL_RECT_INSIDE); /* in A */
  cl_region_destroy(&c);

  /* An enclave: B fills A's hole exactly (the hole runs the other way and
   * starts at another vertex). */
  static const double OUTER[] = {0, 0, 3, 0, 3, 3, 0, 3};
  static const double HOLE[] = {2, 2, 2, 1, 1, 1, 1, 2};
  static const double ENCLAVE[] = {1, 1, 2, 1, 2, 2, 1, 2};
  cl_region *h = ring_region("H", OUTER, 4, HOLE, 4);
  cl_region *e = ring_region("E", ENCLAVE, 4, NULL, 0);
  const cl_region *he[2] = {h, e};
  cl_region_union uhe = {he, 2}, uh = {he, 1}, ue = {&he[1], 1};
  ck_assert_int_eq(UCLASS(&uhe, 0.9, 1.4, 1.1, 1.6), CL_RECT_INSIDE);
  ck_assert_int_eq(UCLASS(&uhe, 0.5, 0.5, 2.5, 2.5), CL_RECT_INSIDE); /* the whole hole */
  ck_assert_int_eq(UCLASS(&uhe, 2.9, 1.4, 3.1, 1.6), CL_RECT_BOUNDARY);
  ck_assert_int_eq(UCLASS(&uh, 0.9, 1.4, 1.1, 1.6), CL_RECT_BOUNDARY);
  ck_assert_int_eq(UCLASS(&ue, 0.9, 1.4, 1.1, 1.6), CL_RECT_BOUNDARY);
  ck_assert_int_eq(UCLASS(&uh, 1.4, 1.4, 1.6, 1.6), CL_RECT_OUTSIDE);
  cl_region_destroy(&h);
  cl_region_destroy(&e);

  /* A gap of 1e-6 degrees between the squares is never allowed. */
  static const double G[] = {1 + 1e-6, 0, 2, 0, 2, 1, 1 + 1e-6, 1};
  cl_region *g = ring_region("G", G, 4, NULL, 0);
  const cl_region *ag[2] = {a, g};
  cl_region_union uag = {ag, 2};
  ck_assert_int_eq(UCLASS(&uag, 0.9, 0.4, 1.1, 0.6), CL_RECT_BOUNDARY);
  ck_assert_int_eq(UCLASS(&uag, 1 + 2e-7, 0.4, 1 + 8e-7, 0.6), CL_RECT_OUTSIDE);
  cl_region_destroy(&g);

  /* A self-crossing ring whose spike crosses its own edge x = 1 at y =
   * 3.27 and 3.6: left of that edge A is there at y = 2 but not at y =
   * 3.4. S beyond it shares the edge exactly; the sides seen at the
   * edge's midpoint do not hold along all of it, so it stays a border. */
  static const double SPIKED[] = {1, 0, 1, 4, 0, 4, 1.5, 3.4, 0, 3, 0, 0};
  static const double S[] = {1, 0, 2, 0, 2, 4, 1, 4};
  cl_region *sp = ring_region("SP", SPIKED, 6, NULL, 0);
  cl_region *sr = ring_region("S", S, 4, NULL, 0);
  ck_assert_int_eq(cl_region_contains(sp, 0.99, 2), 1);
  ck_assert_int_eq(cl_region_contains(sp, 0.99, 3.4), 0);
  const cl_region *ss[2] = {sp, sr};
  cl_region_union uss = {ss, 2};
  ck_assert_int_eq(UCLASS(&uss, 0.99999, 3.4, 1.01, 3.41), CL_RECT_BOUNDARY);
  cl_region_destroy(&sp);
  cl_region_destroy(&sr);

  /* An islet 3e-4 degrees left of the edge x = 1 of a box of R, which Q
   * repeats: the probe left of that edge's midpoint (4e-4 away) lands in
   * the islet, but the water between them is in neither. */
  static const double RBOX[] = {1, 0, 2, 0, 2, 4, 1, 4};
  static const double ISLET[] = {1 - 5e-4, 1.9, 1 - 3e-4, 1.9, 1 - 3e-4, 2.1, 1 - 5e-4, 2.1};
  cl_region *ri = new_region("R");
  add_ring(ri, 0, RBOX, 4);
  add_ring(ri, 1, ISLET, 4);
  ck_assert_int_eq(cl_region_finish(ri), CL_OK);
  cl_region *rq = ring_region("Q", RBOX, 4, NULL, 0);
  const cl_region *ris[2] = {ri, rq};
  cl_region_union uri = {ris, 2};
  ck_assert_int_eq(UCLASS(&uri, 0.99999, 1.95, 1.01, 1.96), CL_RECT_BOUNDARY);
  cl_region_destroy(&ri);
  cl_region_destroy(&rq);

  /* T: B's edge x = 1 runs on past A's corner; the edges are not copies,
   * so the union stays BOUNDARY there (conservative). */
  static const double T[] = {1, 0, 2, 0, 2, 2, 1, 2};
  cl_region *t = ring_region("T", T, 4, NULL, 0);
  const cl_region *at[2] = {a, t};
  cl_region_union uat = {at, 2};
  ck_assert_int_eq(UCLASS(&uat, 0.9, 0.4, 1.1, 0.6), CL_RECT_BOUNDARY);
  cl_region_destroy(&t);

  /* Three regions around the vertex (1, 1): A, B and above them N, whose
   * lower edge has a vertex at (1, 1) in line with its neighbours. */
  static const double N[] = {0, 1, 1, 1, 2, 1, 2, 2, 0, 2};
  cl_region *b = ring_region("B", B_CCW, 4, NULL, 0);
  cl_region *n = ring_region("N", N, 5, NULL, 0);
  const cl_region *abn[3] = {a, b, n};
  cl_region_union u3 = {abn, 3}, u2 = {abn, 2};
  ck_assert_int_eq(UCLASS(&u3, 0.9, 0.9, 1.1, 1.1), CL_RECT_INSIDE);
  ck_assert_int_eq(UCLASS(&u3, 0.1, 0.1, 1.9, 1.9), CL_RECT_INSIDE);
  ck_assert_int_eq(UCLASS(&u3, 0.1, 0.1, 1.9, 2.1), CL_RECT_BOUNDARY);
  ck_assert_int_eq(UCLASS(&u2, 0.9, 0.9, 1.1, 1.1), CL_RECT_BOUNDARY);

  /* Two polygons of one region side by side: a union of that one region. */
  cl_region *ab = new_region("AB");
  add_ring(ab, 0, A, 4);
  add_ring(ab, 1, B_CW, 5);
  ck_assert_int_eq(cl_region_finish(ab), CL_OK);
  const cl_region *one[1] = {ab};
  cl_region_union u1 = {one, 1};
  ck_assert_int_eq(CLASS(ab, 0.9, 0.4, 1.1, 0.6), CL_RECT_BOUNDARY);
  ck_assert_int_eq(UCLASS(&u1, 0.9, 0.4, 1.1, 0.6), CL_RECT_INSIDE);
  ck_assert_int_eq(UCLASS(&u1, 0.9, 0.9, 1.1, 1.1), CL_RECT_BOUNDARY);
  cl_region_destroy(&ab);
  cl_region_destroy(&a);
  cl_region_destroy(&b);
  cl_region_destroy(&n);
}
END_TEST

/* ---- random partitions ------------------------------------------------------- */

#define PART_MAX_K 6
#define PART_MAX_PIECES (2 * PART_MAX_K * PART_MAX_K)
#define PART_REGIONS 3

/* A square cut into jittered quadrilaterals, some of them halved into
 * triangles; each piece belongs to up to two regions, or to none. */
typedef struct {
  double pts[PART_MAX_PIECES][8];
  size_t n[PART_MAX_PIECES];
  int owner[PART_MAX_PIECES][2]; /* region numbers, -1 for none */
  size_t npieces;
  double x0, y0, size;
} partition;

static int piece_contains(const double *p, size_t n, double x, double y) {
  int odd = 0;
  for (size_t i = 0, j = n - 1; i < n; j = i++) {
    double xi = p[2 * i], yi = p[2 * i + 1], xj = p[2 * j], yj = p[2 * j + 1];
    if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) odd ^= 1;
  }
  return odd;
}

/* The reference: some piece owned by a selected region holds the point. */
static int part_contains(const partition *pt, const int *selected, double x, double y) {
  for (size_t i = 0; i < pt->npieces; i++)
    for (int o = 0; o < 2; o++)
      if (pt->owner[i][o] >= 0 && selected[pt->owner[i][o]] &&
          piece_contains(pt->pts[i], pt->n[i], x, y))
        return 1;
  return 0;
}

static int part_edge_near(const partition *pt, double x, double y, double eps) {
  for (size_t i = 0; i < pt->npieces; i++)
    for (size_t a = 0, b = pt->n[i] - 1; a < pt->n[i]; b = a++)
      if (ref_seg_meets(pt->pts[i][2 * b], pt->pts[i][2 * b + 1], pt->pts[i][2 * a],
                        pt->pts[i][2 * a + 1], x - eps, y - eps, x + eps, y + eps))
        return 1;
  return 0;
}

static void make_partition(partition *pt) {
  int k = 3 + (int)(rnd() * (PART_MAX_K - 2));
  if (k > PART_MAX_K) k = PART_MAX_K;
  pt->size = pow(10, rnd_in(-2, 0.7));
  pt->x0 = rnd_in(-150, 150);
  pt->y0 = rnd_in(-60, 60);
  double lat[PART_MAX_K + 1][PART_MAX_K + 1][2];
  double step = pt->size / k;
  for (int i = 0; i <= k; i++)
    for (int j = 0; j <= k; j++) {
      int inner = i > 0 && i < k && j > 0 && j < k;
      lat[i][j][0] = pt->x0 + step * i + (inner ? rnd_in(-0.3, 0.3) * step : 0);
      lat[i][j][1] = pt->y0 + step * j + (inner ? rnd_in(-0.3, 0.3) * step : 0);
    }
  pt->npieces = 0;
  for (int i = 0; i < k; i++)
    for (int j = 0; j < k; j++) {
      const double *q[4] = {lat[i][j], lat[i + 1][j], lat[i + 1][j + 1], lat[i][j + 1]};
      double tri = rnd();
      int parts = tri < 0.3 ? 2 : 1, diag = tri < 0.15;
      for (int t = 0; t < parts; t++) {
        const double *v[4];
        size_t n = 0;
        if (parts == 1) {
          for (int c = 0; c < 4; c++) v[n++] = q[c];
        } else {
          /* Halves along the diagonal q0-q2 or q1-q3. */
          int s0 = diag ? 0 : 1;
          for (int c = 0; c < 3; c++) v[n++] = q[(s0 + 2 * t + c) % 4];
        }
        size_t p = pt->npieces++;
        /* A random start vertex and direction: the same shared edge shows
         * up either way round. */
        int rev = rnd() < 0.5, rot = (int)(rnd() * n) % (int)n;
        for (size_t c = 0; c < n; c++) {
          size_t from = rev ? (rot + n - c) % n : (rot + c) % n;
          pt->pts[p][2 * c] = v[from][0];
          pt->pts[p][2 * c + 1] = v[from][1];
        }
        pt->n[p] = n;
        double r = rnd();
        pt->owner[p][0] = r < 0.12 ? -1 : (int)(rnd() * PART_REGIONS) % PART_REGIONS;
        pt->owner[p][1] = rnd() < 0.15 ? (int)(rnd() * PART_REGIONS) % PART_REGIONS : -1;
      }
    }
}

/*
 * Random partitions of a square into polygons whose neighbours share their
 * edges exactly, with gaps (pieces of no region) and overlaps (pieces of
 * two regions): the union of a random selection of the regions against
 * random rectangles, checked by sampling. INSIDE only if every sampled
 * point is in the union, OUTSIDE only if none is.
 */
START_TEST(test_union_random_partitions) {
  rng_state = 1515;
  long inside = 0, outside = 0, boundary = 0, joined = 0;
  for (int trial = 0; trial < 24; trial++) {
    partition pt;
    make_partition(&pt);
    cl_region *regs[PART_REGIONS] = {NULL};
    for (int g = 0; g < PART_REGIONS; g++) {
      char code[8];
      snprintf(code, sizeof code, "P%d", g);
      regs[g] = new_region(code);
      int any = 0;
      for (size_t i = 0; i < pt.npieces; i++)
        if (pt.owner[i][0] == g || pt.owner[i][1] == g) {
          add_ring(regs[g], (int)i, pt.pts[i], pt.n[i]);
          any = 1;
        }
      if (!any || cl_region_finish(regs[g]) != CL_OK) cl_region_destroy(&regs[g]);
    }
    for (int sel_try = 0; sel_try < 4; sel_try++) {
      int selected[PART_REGIONS] = {0};
      const cl_region *members[PART_REGIONS];
      size_t nm = 0;
      for (int g = 0; g < PART_REGIONS; g++)
        if (regs[g] && (sel_try == 0 || rnd() < 0.6)) {
          selected[g] = 1;
          members[nm++] = regs[g];
        }
      cl_region_union u = {members, nm};
      for (int q = 0; q < 250; q++) {
        double w, h, cx, cy;
        if (q % 2 == 0) {
          /* Around a random vertex of a random piece, or a point on one of
           * its edges: where shared edges meet the rectangles. */
          size_t i = (size_t)(rnd() * (double)pt.npieces) % pt.npieces;
          size_t a = (size_t)(rnd() * (double)pt.n[i]) % pt.n[i], b = (a + 1) % pt.n[i];
          double t = q % 4 == 0 ? 0 : rnd();
          cx = pt.pts[i][2 * a] + t * (pt.pts[i][2 * b] - pt.pts[i][2 * a]);
          cy = pt.pts[i][2 * a + 1] + t * (pt.pts[i][2 * b + 1] - pt.pts[i][2 * a + 1]);
          cx += rnd_in(-0.02, 0.02) * pt.size;
          cy += rnd_in(-0.02, 0.02) * pt.size;
          w = pt.size * pow(10, rnd_in(-5, -0.5));
        } else {
          cx = pt.x0 + rnd_in(-0.1, 1.1) * pt.size;
          cy = pt.y0 + rnd_in(-0.1, 1.1) * pt.size;
          w = pt.size * pow(10, rnd_in(-4, 0.1));
        }
        h = w * rnd_in(0.3, 3);
        double x0 = cx - 0.5 * w, y0 = cy - 0.5 * h, x1 = cx + 0.5 * w, y1 = cy + 0.5 * h;
        cl_rect_class c = UCLASS(&u, x0, y0, x1, y1);
        int by_member = 0;
        for (size_t j = 0; j < nm; j++)
          by_member |= CLASS(members[j], x0, y0, x1, y1) == CL_RECT_INSIDE;
        int in = 0, out = 0;
        for (int k = 0; k < 120; k++) {
          double x = k < 9 ? x0 + 0.5 * (k % 3) * w : rnd_in(x0, x1);
          double y = k < 9 ? y0 + 0.5 * (k / 3) * h : rnd_in(y0, y1);
          if (part_edge_near(&pt, x, y, 1e-12 * pt.size)) continue;
          if (part_contains(&pt, selected, x, y))
            in++;
          else
            out++;
        }
        if (c == CL_RECT_INSIDE) {
          inside++;
          joined += !by_member;
          ck_assert_msg(out == 0,
                        "trial %d: INSIDE [%.17g,%.17g]x[%.17g,%.17g] with %d of %d points "
                        "outside the union",
                        trial, x0, x1, y0, y1, out, in + out);
        } else if (c == CL_RECT_OUTSIDE) {
          outside++;
          ck_assert_msg(in == 0,
                        "trial %d: OUTSIDE [%.17g,%.17g]x[%.17g,%.17g] with %d of %d points "
                        "in the union",
                        trial, x0, x1, y0, y1, in, in + out);
        } else {
          boundary++;
        }
      }
    }
    for (int g = 0; g < PART_REGIONS; g++) cl_region_destroy(&regs[g]);
  }
  /* Plausibility: all three answers occur, and many INSIDE answers come
   * from cancelled shared edges (no single member has them INSIDE). */
  ck_assert_int_gt(inside, 4000);
  ck_assert_int_gt(outside, 4000);
  ck_assert_int_gt(boundary, 2000);
  ck_assert_int_gt(joined, 800);
}
END_TEST

/* ---- randomized property test ------------------------------------------------ */

typedef struct {
  long rects, inside, outside, boundary, boundary_pure, samples;
} prop_stats;

/*
 * Classifies one rectangle and checks the answer: INSIDE/OUTSIDE agree with
 * cl_region_contains at 200 points of the rectangle (corners, edge
 * midpoints, centre and random points) and no edge meets the rectangle;
 * BOUNDARY only when an edge comes within 1e-7 degrees of it. Counts go to
 * st unless it is NULL.
 */
static void check_rect(const cl_region *r, const ref_shape *s, double x0, double y0, double x1,
                       double y1, prop_stats *st) {
  prop_stats ignored = {0};
  if (!st) st = &ignored;
  cl_rect_class c = CLASS(r, x0, y0, x1, y1);
  st->rects++;
  int in = 0, out = 0;
  for (int k = 0; k < 200; k++) {
    double x, y;
    if (k < 9) {
      x = k % 3 == 0 ? x0 : k % 3 == 1 ? 0.5 * (x0 + x1) : x1;
      y = k / 3 == 0 ? y0 : k / 3 == 1 ? 0.5 * (y0 + y1) : y1;
    } else {
      x = rnd_in(x0, x1);
      y = rnd_in(y0, y1);
    }
    if (cl_region_contains(r, x, y))
      in++;
    else
      out++;
    st->samples++;
  }
  if (c == CL_RECT_INSIDE) {
    st->inside++;
    ck_assert_msg(out == 0, "INSIDE [%.17g,%.17g]x[%.17g,%.17g] but %d points outside", x0, x1,
                  y0, y1, out);
    ck_assert_msg(!ref_edge_meets(s, x0, y0, x1, y1), "INSIDE but an edge meets the rectangle");
    ck_assert_msg(ref_contains(s, 0.5 * (x0 + x1), 0.5 * (y0 + y1)), "INSIDE, reference disagrees");
  } else if (c == CL_RECT_OUTSIDE) {
    st->outside++;
    ck_assert_msg(in == 0, "OUTSIDE [%.17g,%.17g]x[%.17g,%.17g] but %d points inside", x0, x1,
                  y0, y1, in);
    ck_assert_msg(!ref_edge_meets(s, x0, y0, x1, y1), "OUTSIDE but an edge meets the rectangle");
    ck_assert_msg(!ref_contains(s, 0.5 * (x0 + x1), 0.5 * (y0 + y1)),
                  "OUTSIDE, reference disagrees");
  } else {
    st->boundary++;
    if (in == 0 || out == 0) st->boundary_pure++;
    ck_assert_msg(ref_edge_meets(s, x0 - 1e-7, y0 - 1e-7, x1 + 1e-7, y1 + 1e-7),
                  "BOUNDARY [%.17g,%.17g]x[%.17g,%.17g] with no edge near", x0, x1, y0, y1);
  }
}

START_TEST(test_random_stars) {
  rng_state = 20240611;
  prop_stats st = {0};
  for (int shape = 0; shape < 40; shape++) {
    ref_shape s = {0};
    /* Away from the seams: the reference knows nothing of them. */
    double cx = rnd_in(-160, 160), cy = rnd_in(-70, 70), rad = rnd_in(0.01, 8);
    /* Polygon 0: a 50-vertex star with a star-shaped hole; polygon 1: a
     * second star that may overlap the first. */
    s.pts[0] = star(cx, cy, 0.3 * rad, rad, 50);
    s.pts[1] = star(cx, cy, 0.05 * rad, 0.25 * rad, 20);
    s.pts[2] = star(cx + rnd_in(-rad, rad), cy + rnd_in(-rad, rad), 0.2 * rad, 0.6 * rad, 50);
    s.n[0] = 50, s.n[1] = 20, s.n[2] = 50;
    s.polygon[0] = 0, s.polygon[1] = 0, s.polygon[2] = 1;
    s.nrings = 3;
    for (size_t i = 0; i < s.nrings; i++)
      for (size_t k = 0; k < s.n[i]; k++) {
        double *p = &s.pts[i][2 * k];
        p[0] = fmax(-180, fmin(180, p[0]));
        p[1] = fmax(-90, fmin(90, p[1]));
      }
    cl_region *r = new_region("STAR");
    for (size_t i = 0; i < s.nrings; i++) add_ring(r, s.polygon[i], s.pts[i], s.n[i]);
    ck_assert_int_eq(cl_region_finish(r), CL_OK);

    /* Membership agrees with the brute-force reference away from edges. */
    for (int k = 0; k < 2000; k++) {
      double x = cx + rnd_in(-1.6 * rad, 1.6 * rad), y = cy + rnd_in(-1.6 * rad, 1.6 * rad);
      double e = 1e-9 * rad;
      if (ref_edge_meets(&s, x - e, y - e, x + e, y + e)) continue;
      ck_assert_msg(cl_region_contains(r, x, y) == ref_contains(&s, x, y),
                    "shape %d: contains(%.17g, %.17g) disagrees with the reference", shape, x, y);
    }
    /* Random rectangles of sizes from 1e-5 to 2.5 times the shape. */
    for (int k = 0; k < 400; k++) {
      double w = rad * pow(10, rnd_in(-5, 0.4)), h = w * rnd_in(0.3, 3);
      double x0 = cx + rnd_in(-1.6 * rad, 1.6 * rad) - 0.5 * w;
      double y0 = cy + rnd_in(-1.6 * rad, 1.6 * rad) - 0.5 * h;
      check_rect(r, &s, x0, y0, x0 + w, y0 + h, &st);
    }
    /* Tiny rectangles at chosen distances from an edge, on both sides. */
    for (int k = 0; k < 100; k++) {
      size_t i = (size_t)(rnd() * 50) % 50, j = (i + 1) % 50;
      const double *p = s.pts[0];
      double ex = p[2 * j] - p[2 * i], ey = p[2 * j + 1] - p[2 * i + 1];
      double len = hypot(ex, ey);
      if (len == 0) continue;
      double t = rnd_in(0.2, 0.8);
      double mx = p[2 * i] + t * ex, my = p[2 * i + 1] + t * ey;
      static const double dist[] = {0, 1e-12, 5e-10, 3e-9, 1e-8, 1e-6, 1e-4};
      double d = dist[k % 7] * (k % 2 ? 1 : -1);
      double qx = mx - ey / len * d, qy = my + ex / len * d;
      double half = 1e-10;
      cl_rect_class c = CLASS(r, qx - half, qy - half, qx + half, qy + half);
      if (fabs(d) <= 5e-10) ck_assert_int_eq(c, CL_RECT_BOUNDARY);
      check_rect(r, &s, qx - half, qy - half, qx + half, qy + half, NULL);
    }
    cl_region_destroy(&r);
    for (size_t i = 0; i < s.nrings; i++) free(s.pts[i]);
  }
  /* Plausibility: all three answers occur, and BOUNDARY is rarely given to
   * rectangles that sampling finds pure (only those an edge grazes). */
  ck_assert_int_gt(st.inside, 500);
  ck_assert_int_gt(st.outside, 2000);
  ck_assert_int_gt(st.boundary, 1000);
  ck_assert_msg(st.boundary_pure * 10 < st.boundary, "%ld of %ld BOUNDARY rectangles look pure",
                st.boundary_pure, st.boundary);
}
END_TEST

/* Regions that use the seams (split at the antimeridian, reaching the
 * poles) against rectangles within the valid range, some snapped to the
 * seams: INSIDE and OUTSIDE must agree with every sampled point off the
 * seam lines (on them, membership may go either way). */
START_TEST(test_random_seams) {
  rng_state = 4242;
  cl_region *r = new_region("SEAMS");
  double a[8], b[8], c[8], d[8];
  box(a, 170, -25, 180, -10);
  box(b, -180, -25, -172, -12);
  box(c, -180, 84, 180, 90);
  const double wedge[] = {-40, -90, 40, -90, 10, -70, -10, -75};
  box(d, 175, 30, 180, 40);
  add_ring(r, 0, a, 4);
  add_ring(r, 1, b, 4);
  add_ring(r, 2, c, 4);
  add_ring(r, 3, wedge, 4);
  add_ring(r, 4, d, 4);
  ck_assert_int_eq(cl_region_finish(r), CL_OK);
  long decided = 0;
  for (int k = 0; k < 20000; k++) {
    double w = pow(10, rnd_in(-3, 1.5)), h = w * rnd_in(0.3, 3);
    double x0 = rnd_in(-180, 180 - w), y0 = rnd_in(-90, 90 - h);
    switch (k % 5) {
    case 0: x0 = 180 - w; break;
    case 1: x0 = -180; break;
    case 2: y0 = 90 - h; break;
    case 3: y0 = -90; break;
    default: break;
    }
    double x1 = x0 + w, y1 = y0 + h;
    if (x1 > 180 || y1 > 90 || y0 < -90) continue;
    cl_rect_class cls = CLASS(r, x0, y0, x1, y1);
    if (cls == CL_RECT_BOUNDARY) continue;
    decided++;
    for (int s = 0; s < 100; s++) {
      double x = s < 4 ? (s & 1 ? x1 : x0) : rnd_in(x0, x1);
      double y = s < 4 ? (s & 2 ? y1 : y0) : rnd_in(y0, y1);
      if (fabs(x) == 180 || fabs(y) == 90) continue;
      ck_assert_msg(cl_region_contains(r, x, y) == (cls == CL_RECT_INSIDE),
                    "%s [%.17g,%.17g]x[%.17g,%.17g] but (%.17g, %.17g) disagrees",
                    cls == CL_RECT_INSIDE ? "INSIDE" : "OUTSIDE", x0, x1, y0, y1, x, y);
    }
  }
  ck_assert_int_gt(decided, 5000);
  cl_region_destroy(&r);
}
END_TEST

/* ---- export ------------------------------------------------------------------- */

START_TEST(test_export_roundtrip) {
  cl_region *r = new_region("EXP");
  double a[8], ah[8], b[8];
  box(a, 0.1, 0.1, 10.3, 10.7);
  box(ah, 2, 2, 4, 4);
  box(b, -180, -90, -170, -80);
  add_ring(r, 1, a, 4);
  add_ring(r, 0, b, 4);
  add_ring(r, 1, ah, 4);
  ck_assert_int_eq(cl_region_finish(r), CL_OK);
  char *json = NULL;
  size_t len = 0;
  ck_assert_int_eq(cl_region_to_geojson(r, &json, &len), CL_OK);
  ck_assert_uint_eq(len, strlen(json));
  ck_assert_str_eq(json, "{\"type\":\"MultiPolygon\",\"coordinates\":["
                         "[[[-180,-90],[-170,-90],[-170,-80],[-180,-80],[-180,-90]]],"
                         "[[[0.1,0.1],[10.3,0.1],[10.3,10.7],[0.1,10.7],[0.1,0.1]],"
                         "[[2,2],[4,2],[4,4],[2,4],[2,2]]]]}");
  cl_region_set s;
  char err[256] = "";
  ck_assert_int_eq(cl_region_set_parse_geojson(&s, json, len, "code", err, sizeof err), CL_OK);
  ck_assert_uint_eq(s.n, 1);
  ck_assert_str_eq(cl_region_code(s.regions[0]), "REGION");
  ck_assert_uint_eq(cl_region_vertex_count(s.regions[0]), 12);
  rng_state = 7;
  for (int k = 0; k < 1000; k++) {
    double x = rnd_in(-180, 12), y = rnd_in(-90, 12);
    ck_assert_int_eq(cl_region_contains(s.regions[0], x, y), cl_region_contains(r, x, y));
  }
  cl_region_set_free(&s);
  free(json);
  cl_region *unfinished = new_region("U");
  ck_assert_int_eq(cl_region_to_geojson(unfinished, &json, NULL), CL_EINVAL);
  cl_region_destroy(&unfinished);
  cl_region_destroy(&r);
}
END_TEST

/* ---- GeoJSON ------------------------------------------------------------------- */

static const char *const good_fc =
    "{\"type\":\"FeatureCollection\",\"features\":[\n"
    " {\"type\":\"Feature\",\"properties\":{\"A3\":\"AAA\",\"name\":\"A land\"},\n"
    "  \"geometry\":{\"type\":\"Polygon\",\"coordinates\":"
    "[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}},\n"
    " {\"type\":\"Feature\",\"properties\":{\"A3\":\"BBB\"},\n"
    "  \"geometry\":{\"type\":\"MultiPolygon\",\"coordinates\":"
    "[[[[20,0,5],[30,0,5],[30,10,5],[20,10,5],[20,0,5]]],[[[40,0],[50,0],[45,5]]]]}},\n"
    " {\"type\":\"Feature\",\"properties\":{\"A3\":\"AAA\"},\n"
    "  \"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[-10,-10],[-5,-10],[-5,-5],[-10,-5]]]}}\n"
    "]}\n";

START_TEST(test_geojson_good) {
  cl_region_set s;
  char err[256] = "";
  int rc = cl_region_set_parse_geojson(&s, good_fc, strlen(good_fc), "A3", err, sizeof err);
  ck_assert_msg(rc == CL_OK, "%s", err);
  ck_assert_uint_eq(s.n, 2);
  cl_region *a = cl_region_set_find(&s, "AAA"), *b = cl_region_set_find(&s, "BBB");
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_ptr_null(cl_region_set_find(&s, "CCC"));
  ck_assert_ptr_null(cl_region_set_find(&s, ""));
  /* Features 0 and 2 share AAA: one region with both shapes. */
  ck_assert_uint_eq(cl_region_vertex_count(a), 12);
  ck_assert_int_eq(cl_region_contains(a, 1, 1), 1);
  ck_assert_int_eq(cl_region_contains(a, 5, 5), 0);
  ck_assert_int_eq(cl_region_contains(a, -7, -7), 1);
  ck_assert_int_eq(cl_region_contains(a, 25, 5), 0);
  /* BBB: altitude ignored, an unclosed ring accepted. */
  ck_assert_uint_eq(cl_region_vertex_count(b), 7);
  ck_assert_int_eq(cl_region_contains(b, 25, 5), 1);
  ck_assert_int_eq(cl_region_contains(b, 45, 2), 1);
  ck_assert_int_eq(CLASS(b, 21, 1, 29, 9), CL_RECT_INSIDE);
  cl_region_set_free(&s);
  ck_assert_ptr_null(s.regions);
  ck_assert_uint_eq(s.n, 0);
  cl_region_set_free(&s);

  /* A bare Feature, a bare Polygon and a bare MultiPolygon. */
  const char *feature = "{\"type\":\"Feature\",\"properties\":{\"iso\":\"ZZ\"},\"geometry\":"
                        "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}}";
  ck_assert_int_eq(cl_region_set_parse_geojson(&s, feature, strlen(feature), "iso", err,
                                               sizeof err),
                   CL_OK);
  ck_assert_uint_eq(s.n, 1);
  ck_assert_ptr_nonnull(cl_region_set_find(&s, "ZZ"));
  cl_region_set_free(&s);
  const char *poly = "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}";
  ck_assert_int_eq(cl_region_set_parse_geojson(&s, poly, strlen(poly), "A3", err, sizeof err),
                   CL_OK);
  ck_assert_uint_eq(s.n, 1);
  ck_assert_int_eq(cl_region_contains(cl_region_set_find(&s, "REGION"), 0.7, 0.2), 1);
  cl_region_set_free(&s);
  const char *mp = "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[0,0],[1,0],[1,1],[0,0]]],"
                   "[[[5,5],[6,5],[6,6],[5,5]]]]}";
  ck_assert_int_eq(cl_region_set_parse_geojson(&s, mp, strlen(mp), "A3", err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_region_contains(cl_region_set_find(&s, "REGION"), 5.7, 5.2), 1);
  cl_region_set_free(&s);
}
END_TEST

/* A FeatureCollection of two good features and `third` as feature 2. */
static char *doc_with_third(const char *third) {
  static const char head[] =
      "{\"type\":\"FeatureCollection\",\"features\":[\n"
      "{\"type\":\"Feature\",\"properties\":{\"A3\":\"AAA\"},\"geometry\":{\"type\":\"Polygon\","
      "\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}},\n"
      "{\"type\":\"Feature\",\"properties\":{\"A3\":\"BBB\"},\"geometry\":{\"type\":\"Polygon\","
      "\"coordinates\":[[[2,0],[3,0],[3,1],[2,0]]]}},\n";
  size_t n = strlen(head) + strlen(third) + 8;
  char *d = malloc(n);
  ck_assert_ptr_nonnull(d);
  snprintf(d, n, "%s%s\n]}\n", head, third);
  return d;
}

#define FEAT(props, geom) "{\"type\":\"Feature\",\"properties\":" props ",\"geometry\":" geom "}"
#define POLY(coords) "{\"type\":\"Polygon\",\"coordinates\":" coords "}"
#define MPOLY(coords) "{\"type\":\"MultiPolygon\",\"coordinates\":" coords "}"
#define TRI "[[[0,0],[1,0],[1,1],[0,0]]]"

static void expect_malformed(const char *text, const char *code_property, const char *want) {
  cl_region_set s = {(cl_region **)1, 99};
  char err[512] = "";
  int rc = cl_region_set_parse_geojson(&s, text, strlen(text), code_property, err, sizeof err);
  ck_assert_msg(rc == CL_EMALFORMED, "rc %d for %s", rc, text);
  ck_assert_ptr_null(s.regions);
  ck_assert_uint_eq(s.n, 0);
  ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

static void expect_third_malformed(const char *third, const char *want) {
  char *d = doc_with_third(third);
  expect_malformed(d, "A3", want);
  free(d);
}

START_TEST(test_geojson_errors) {
  /* The golden document parses. */
  char *d = doc_with_third(FEAT("{\"A3\":\"CCC\"}", POLY(TRI)));
  cl_region_set s;
  char err[256] = "";
  ck_assert_msg(cl_region_set_parse_geojson(&s, d, strlen(d), "A3", err, sizeof err) == CL_OK,
                "%s", err);
  ck_assert_uint_eq(s.n, 3);
  cl_region_set_free(&s);
  free(d);

  /* One field corrupted at a time, in feature 2. */
  expect_third_malformed(FEAT("{\"name\":\"x\"}", POLY(TRI)),
                         "feature 2: property \"A3\" missing or not a string");
  expect_third_malformed(FEAT("{\"A3\":7}", POLY(TRI)),
                         "feature 2: property \"A3\" missing or not a string");
  expect_third_malformed(FEAT("null", POLY(TRI)),
                         "feature 2: property \"A3\" missing or not a string");
  expect_third_malformed(FEAT("{\"A3\":\"\"}", POLY(TRI)), "feature 2: property \"A3\" is empty");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", "null"),
                         "feature 2 (code \"CCC\"): geometry is null");
  expect_third_malformed("{\"type\":\"Feature\",\"properties\":{\"A3\":\"CCC\"}}",
                         "feature 2 (code \"CCC\"): geometry is null");
  expect_third_malformed(
      FEAT("{\"A3\":\"CCC\"}", "{\"type\":\"LineString\",\"coordinates\":[[0,0],[1,1]]}"),
      "feature 2 (code \"CCC\"): unsupported geometry type \"LineString\"");
  expect_third_malformed(
      FEAT("{\"A3\":\"CCC\"}", "{\"type\":\"Point\",\"coordinates\":[0,0]}"),
      "feature 2 (code \"CCC\"): unsupported geometry type \"Point\" (Polygon, MultiPolygon, "
      "or a GeometryCollection of them)");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", "{\"coordinates\":[]}"),
                         "feature 2 (code \"CCC\"): geometry.type missing or not a string");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", "[1]"),
                         "feature 2 (code \"CCC\"): geometry: expected an object");
  expect_third_malformed(FEAT("{\"A3\":\"FRA\"}", POLY("[[[0,0],[1,0],[1,1],[0,\"x\"],[0,0]]]")),
                         "feature 2 (code \"FRA\"): geometry.coordinates[0][3]: expected [lon, "
                         "lat] numbers");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", POLY("[[[0,0],[1],[1,1],[0,0]]]")),
                         "feature 2 (code \"CCC\"): geometry.coordinates[0][1]: expected [lon, "
                         "lat] numbers");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", POLY("[[[0,0],[1,0,null],[1,1],[0,0]]]")),
                         "geometry.coordinates[0][1]: expected [lon, lat] numbers");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", POLY("[[[0,0],{},[1,1],[0,0]]]")),
                         "geometry.coordinates[0][1]: expected [lon, lat] numbers");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", POLY("[[[0,0],[1,95.2],[1,1],[0,0]]]")),
                         "feature 2 (code \"CCC\"): geometry.coordinates[0][1]: latitude 95.2 out "
                         "of range");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", POLY("[[[0,0],[181,1],[1,1],[0,0]]]")),
                         "geometry.coordinates[0][1]: longitude 181 out of range");
  expect_third_malformed(
      FEAT("{\"A3\":\"X\"}", MPOLY("[" TRI ",[[[0,0],[1,1],[0,0],[1,1],[0,0]]]]")),
      "feature 2 (code \"X\"): ring 0 of polygon 1 has 2 distinct points, need 3");
  expect_third_malformed(FEAT("{\"A3\":\"X\"}", POLY("[[[0,0],[1,1],[0,0]],[[5,5]]]")),
                         "feature 2 (code \"X\"): ring 0 of polygon 0 has 2 distinct points");
  expect_third_malformed(FEAT("{\"A3\":\"X\"}", POLY("[[[0,0],[1,0],[1,1]],[[5,5],[5,5]]]")),
                         "ring 1 of polygon 0 has 1 distinct point, need 3");
  expect_third_malformed(FEAT("{\"A3\":\"X\"}", POLY("[[]]")),
                         "ring 0 of polygon 0 has 0 distinct points, need 3");
  expect_third_malformed(FEAT("{\"A3\":\"X\"}", POLY("[]")),
                         "feature 2 (code \"X\"): geometry.coordinates: polygon 0 has no rings");
  expect_third_malformed(FEAT("{\"A3\":\"X\"}", MPOLY("[" TRI ",[]]")),
                         "geometry.coordinates[1]: polygon 1 has no rings");
  expect_third_malformed(FEAT("{\"A3\":\"X\"}", MPOLY("[]")),
                         "feature 2 (code \"X\"): geometry.coordinates: no polygons");
  expect_third_malformed(FEAT("{\"A3\":\"X\"}", POLY("{}")),
                         "geometry.coordinates: expected an array of rings");
  expect_third_malformed(FEAT("{\"A3\":\"X\"}", POLY("[5]")),
                         "geometry.coordinates[0]: expected an array of positions");
  expect_third_malformed("{\"type\":\"Point\",\"properties\":{\"A3\":\"X\"}}",
                         "feature 2: type is \"Point\", expected \"Feature\"");
  expect_third_malformed("[]", "feature 2: expected a Feature object");

  /* The document as a whole. */
  expect_malformed("{\"type\":\"FeatureCollection\",\"features\":[\n{\"type\":\"Feature\",,}]}",
                   "A3", "JSON syntax error at line 2, column ");
  expect_malformed("{\"type\":\"FeatureCollection\",\"features\":[", "A3", "JSON syntax error");
  expect_malformed("", "A3", "JSON syntax error");
  expect_malformed("{\"type\":\"FeatureCollection\",\"features\":[]}", "A3", "no features");
  expect_malformed("{\"type\":\"FeatureCollection\"}", "A3",
                   "\"features\" missing or not an array");
  expect_malformed("{\"type\":\"Point\",\"coordinates\":[0,0]}", "A3",
                   "unsupported GeoJSON type \"Point\"");
  expect_malformed("{\"type\":\"GeometryCollection\",\"geometries\":[]}", "A3",
                   "unsupported GeoJSON type \"GeometryCollection\"");
  expect_malformed("{\"features\":[]}", "A3", "\"type\" missing");
  expect_malformed("[1,2]", "A3", "expected a GeoJSON object");
  expect_malformed(POLY("[[[0,0],[1,0],[1,1],[0,91]]]"), "A3",
                   "geometry.coordinates[0][3]: latitude 91 out of range");
  /* The code property named by the caller. */
  expect_malformed(good_fc, "ISO", "feature 0: property \"ISO\" missing or not a string");
  /* The first problem in file order is the one reported. */
  char *two_bad = doc_with_third(FEAT("{\"A3\":\"AAA\"}", POLY("[[[0,0],[1,0],[1,99],[0,0]]]")));
  char *p = strstr(two_bad, "[2,0],[3,0]");
  ck_assert_ptr_nonnull(p);
  memcpy(p + 6, "[\"a\"]", 5);
  expect_malformed(two_bad, "A3", "feature 1 (code \"BBB\"): geometry.coordinates[0][1]");
  free(two_bad);
  /* Arguments. */
  ck_assert_int_eq(cl_region_set_parse_geojson(&s, good_fc, strlen(good_fc), "", err, sizeof err),
                   CL_EINVAL);
  ck_assert_int_eq(cl_region_set_parse_geojson(&s, NULL, 0, "A3", err, sizeof err), CL_EINVAL);
}
END_TEST

#define GC(members) "{\"type\":\"GeometryCollection\",\"geometries\":[" members "]}"
/* Two polygons, the first with a hole, and the same as one MultiPolygon. */
#define GC_A "[[[0,0],[4,0],[4,4],[0,4],[0,0]],[[1,1],[2,1],[2,2],[1,2],[1,1]]]"
#define GC_B "[[[10,10],[12,10],[11,12],[10,10]]]"

/* The digest of the only region of a document. */
static void digest_of_doc(const char *text, const char *code_property, uint8_t *out,
                          cl_region_set *keep) {
  char err[256] = "";
  int rc = cl_region_set_parse_geojson(keep, text, strlen(text), code_property, err, sizeof err);
  ck_assert_msg(rc == CL_OK, "%s: %s", text, err);
  ck_assert_uint_eq(keep->n, 1);
  ck_assert_int_eq(cl_region_digest(keep->regions[0], out), CL_OK);
}

START_TEST(test_geojson_collection) {
  /* A GeometryCollection of two Polygons is the MultiPolygon of the two:
   * the same region, answers and geometry digest, whatever the container. */
  static const char *const docs[] = {
      FEAT("{\"A3\":\"SWE\"}", MPOLY("[" GC_A "," GC_B "]")),
      FEAT("{\"A3\":\"SWE\"}", GC(POLY(GC_A) "," POLY(GC_B))),
      FEAT("{\"A3\":\"SWE\"}", GC(MPOLY("[" GC_A "]") "," POLY(GC_B))),
      FEAT("{\"A3\":\"SWE\"}", GC(MPOLY("[" GC_A "," GC_B "]"))),
      FEAT("{\"A3\":\"SWE\"}", GC(GC(POLY(GC_A)) "," POLY(GC_B))),
      FEAT("{\"A3\":\"SWE\"}", GC(POLY(GC_A) "," GC(POLY(GC_B)))),
  };
  cl_region_set ref;
  uint8_t want[CL_REGION_DIGEST_LEN];
  digest_of_doc(docs[0], "A3", want, &ref);
  const cl_region *m = ref.regions[0];
  ck_assert_uint_eq(cl_region_vertex_count(m), 11);
  for (size_t d = 1; d < sizeof docs / sizeof *docs; d++) {
    cl_region_set s;
    uint8_t got[CL_REGION_DIGEST_LEN];
    digest_of_doc(docs[d], "A3", got, &s);
    ck_assert_msg(memcmp(got, want, sizeof got) == 0, "digest differs for %s", docs[d]);
    const cl_region *g = s.regions[0];
    ck_assert_str_eq(cl_region_code(g), "SWE");
    ck_assert_uint_eq(cl_region_vertex_count(g), cl_region_vertex_count(m));
    ck_assert_int_eq(cl_region_contains(g, 3, 3), 1);
    ck_assert_int_eq(cl_region_contains(g, 1.5, 1.5), 0);
    ck_assert_int_eq(cl_region_contains(g, 11, 10.5), 1);
    ck_assert_int_eq(CLASS(g, 2.5, 2.5, 3.5, 3.5), CL_RECT_INSIDE);
    ck_assert_int_eq(CLASS(g, 1.2, 1.2, 1.8, 1.8), CL_RECT_OUTSIDE);
    rng_state = 15;
    for (int k = 0; k < 2000; k++) {
      double x0 = rnd_in(-1, 13), y0 = rnd_in(-1, 13);
      double x1 = x0 + rnd_in(0, 3), y1 = y0 + rnd_in(0, 3);
      ck_assert_int_eq(cl_region_contains(g, x0, y0), cl_region_contains(m, x0, y0));
      ck_assert_int_eq(CLASS(g, x0, y0, x1, y1), CLASS(m, x0, y0, x1, y1));
    }
    cl_region_set_free(&s);
  }
  cl_region_set_free(&ref);

  /* As the maritime border sets ship them: every feature a collection of
   * one polygon member, codes in isoA3; a code split over two features. */
  static const char fc[] =
      "{\"type\":\"FeatureCollection\",\"features\":["
      FEAT("{\"isoA3\":\"SWE\",\"isoA2\":\"SE\"}", GC(MPOLY("[" GC_A "]"))) ","
      FEAT("{\"isoA3\":\"FIN\",\"isoA2\":\"FI\"}", GC(POLY("[[[20,0],[21,0],[21,1],[20,0]]]"))) ","
      FEAT("{\"isoA3\":\"SWE\",\"isoA2\":\"SE\"}", GC(POLY(GC_B))) "]}";
  cl_region_set s;
  uint8_t got[CL_REGION_DIGEST_LEN];
  char err[256] = "";
  ck_assert_msg(cl_region_set_parse_geojson(&s, fc, strlen(fc), "isoA3", err, sizeof err) ==
                    CL_OK,
                "%s", err);
  ck_assert_uint_eq(s.n, 2);
  ck_assert_int_eq(cl_region_digest(cl_region_set_find(&s, "SWE"), got), CL_OK);
  ck_assert_mem_eq(got, want, sizeof got);
  ck_assert_int_eq(cl_region_contains(cl_region_set_find(&s, "FIN"), 20.7, 0.2), 1);
  cl_region_set_free(&s);

  /* Members other than polygons, empty and deep collections: errors that
   * name the feature, its code and the member. */
  expect_third_malformed(
      FEAT("{\"A3\":\"FRA\"}",
           GC(POLY(TRI) "," POLY(TRI) "," MPOLY("[" TRI "]") ","
              "{\"type\":\"LineString\",\"coordinates\":[[0,0],[1,1]]}")),
      "feature 2 (code \"FRA\"): GeometryCollection member 3 is a LineString; only Polygon and "
      "MultiPolygon members are accepted");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", GC("{\"type\":\"Point\",\"coordinates\":[0,0]}")),
                         "feature 2 (code \"CCC\"): GeometryCollection member 0 is a Point; only "
                         "Polygon and MultiPolygon members are accepted");
  expect_third_malformed(
      FEAT("{\"A3\":\"CCC\"}", GC(POLY(TRI) "," GC("{\"type\":\"MultiPoint\",\"coordinates\":[]}"))),
      "feature 2 (code \"CCC\"): GeometryCollection member 1.0 is a MultiPoint;");
  expect_third_malformed(
      FEAT("{\"A3\":\"CCC\"}", GC(POLY(TRI) "," GC("{\"type\":\"Ellipse\"}"))),
      "GeometryCollection member 1.0 is an Ellipse;");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", GC("")),
                         "feature 2 (code \"CCC\"): geometry is an empty GeometryCollection (a "
                         "region needs a shape)");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", GC(POLY(TRI) "," GC(""))),
                         "feature 2 (code \"CCC\"): geometry.geometries[1] is an empty "
                         "GeometryCollection");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", GC(GC(GC(POLY(TRI))))),
                         "feature 2 (code \"CCC\"): GeometryCollection member 0.0 is a "
                         "GeometryCollection nested 3 deep; at most 2 levels are accepted");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", "{\"type\":\"GeometryCollection\"}"),
                         "feature 2 (code \"CCC\"): geometry.geometries: expected an array of "
                         "geometries");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", GC(POLY(TRI) ",7")),
                         "feature 2 (code \"CCC\"): geometry.geometries[1]: expected a geometry "
                         "object");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", GC("{\"coordinates\":[]}")),
                         "feature 2 (code \"CCC\"): geometry.geometries[0].type missing or not a "
                         "string");
  /* Coordinates and rings inside a member are placed in it. */
  expect_third_malformed(
      FEAT("{\"A3\":\"CCC\"}", GC(POLY(TRI) "," MPOLY("[" TRI ",[[[0,0],[1,1],[0,\"x\"]]]]"))),
      "feature 2 (code \"CCC\"): geometry.geometries[1].coordinates[1][0][2]: expected [lon, lat] "
      "numbers");
  expect_third_malformed(
      FEAT("{\"A3\":\"CCC\"}", GC(POLY(TRI) "," GC(POLY("[[[0,0],[1,1],[0,0]]]")))),
      "feature 2 (code \"CCC\"): geometry.geometries[1].geometries[0]: ring 0 of polygon 0 has 2 "
      "distinct points, need 3");
  expect_third_malformed(FEAT("{\"A3\":\"CCC\"}", GC(MPOLY("[]"))),
                         "feature 2 (code \"CCC\"): geometry.geometries[0].coordinates: no "
                         "polygons");
  /* A bare collection, outside any Feature, has no code to carry. */
  expect_malformed(GC(POLY(TRI)), "A3", "unsupported GeoJSON type \"GeometryCollection\"");
}
END_TEST

START_TEST(test_geojson_file) {
  char dir[] = "/tmp/cl-region-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[256];
  snprintf(path, sizeof path, "%s/regions.geojson", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(good_fc, f);
  fclose(f);
  cl_region_set s;
  char err[512] = "";
  ck_assert_msg(cl_region_set_load_geojson(&s, path, "A3", err, sizeof err) == CL_OK, "%s", err);
  ck_assert_uint_eq(s.n, 2);
  cl_region_set_free(&s);
  char missing[300];
  snprintf(missing, sizeof missing, "%s/none.geojson", dir);
  ck_assert_int_eq(cl_region_set_load_geojson(&s, missing, "A3", err, sizeof err), CL_EIO);
  ck_assert_msg(strstr(err, "none.geojson") != NULL, "%s", err);
  ck_assert_ptr_null(s.regions);
  ck_assert_int_eq(cl_region_set_load_geojson(&s, dir, "A3", err, sizeof err), CL_EIO);
  unlink(path);
  rmdir(dir);
}
END_TEST

/* ---- the real country borders ------------------------------------------------ */

static cl_region_set countries;

static void load_countries(void) {
  const char *path = getenv("CHIPLOC_COUNTRIES");
  ck_assert_msg(path && path[0],
                "CHIPLOC_COUNTRIES is not set: run through ctest (the countries_fetch fixture "
                "downloads the file)");
  ck_assert_msg(access(path, R_OK) == 0,
                "%s is missing: scripts/fetch-borders.sh DIR land did not run or failed", path);
  char err[512] = "";
  int rc = cl_region_set_load_geojson(&countries, path, "A3", err, sizeof err);
  ck_assert_msg(rc == CL_OK, "%s: %s", path, err);
}

static const cl_region *country(const char *code) {
  const cl_region *r = cl_region_set_find(&countries, code);
  ck_assert_msg(r != NULL, "no region %s", code);
  return r;
}

START_TEST(test_countries) {
  load_countries();
  /* @geo-maps/countries-land-10km 0.6.0 holds 220 features, one per code. */
  ck_assert_uint_ge(countries.n, 200);
  size_t vertices = 0;
  for (size_t i = 0; i < countries.n; i++) vertices += cl_region_vertex_count(countries.regions[i]);
  ck_assert_uint_gt(vertices, 50000);
  ck_assert_int_eq(cl_region_contains(country("FRA"), 2.3522, 48.8566), 1);   /* Paris */
  ck_assert_int_eq(cl_region_contains(country("DEU"), 13.405, 52.52), 1);     /* Berlin */
  ck_assert_int_eq(cl_region_contains(country("FRA"), 13.405, 52.52), 0);
  ck_assert_int_eq(cl_region_contains(country("DEU"), 2.3522, 48.8566), 0);
  ck_assert_int_eq(cl_region_contains(country("AUS"), 151.2093, -33.8688), 1); /* Sydney */
  /* New York: at 10 km resolution the harbour point (40.7, -74.0) and even
   * Manhattan are water; the Bronx is land. */
  ck_assert_int_eq(cl_region_contains(country("USA"), -73.87, 40.85), 1);
  ck_assert_int_eq(cl_region_contains(country("USA"), -100, 40), 1);
  ck_assert_int_eq(cl_region_contains(country("USA"), -30, 40), 0);
  /* Russia is split at the antimeridian: Chukotka on both sides. */
  double x0, y0, x1, y1;
  cl_region_bbox(country("RUS"), &x0, &y0, &x1, &y1);
  ck_assert(x0 == -180 && x1 == 180);
  ck_assert_int_eq(cl_region_contains(country("RUS"), -175, 66.5), 1);
  ck_assert_int_eq(cl_region_contains(country("RUS"), 177.5, 64.7), 1);
  ck_assert_int_eq(cl_region_contains(country("RUS"), 37.62, 55.75), 1); /* Moscow */
  ck_assert_int_eq(cl_region_contains(country("RUS"), 0, 66.5), 0);
  /* Rectangles: around Paris, in the Atlantic, over the French-German border. */
  const cl_region *m[2] = {country("FRA"), country("DEU")};
  cl_region_union u = {m, 2};
  ck_assert_int_eq(cl_region_union_classify_rect(&u, 2.2, 48.7, 2.5, 49.0), CL_RECT_INSIDE);
  ck_assert_int_eq(cl_region_union_classify_rect(&u, 12.9, 52.3, 13.9, 52.7), CL_RECT_INSIDE);
  ck_assert_int_eq(cl_region_union_classify_rect(&u, -30, 40, -25, 45), CL_RECT_OUTSIDE);
  ck_assert_int_eq(cl_region_union_classify_rect(&u, 7.0, 48.0, 9.0, 50.0), CL_RECT_BOUNDARY);
  ck_assert_int_eq(cl_region_classify_rect(country("FRA"), -10, 40, 12, 52), CL_RECT_BOUNDARY);
}
END_TEST

/* Classification against sampling on real borders (islands, holes, long
 * coasts), for a few countries. */
START_TEST(test_countries_sampled) {
  load_countries();
  static const struct {
    const char *code;
    double x0, y0, x1, y1; /* window for the random rectangles */
  } cases[] = {
      {"FRA", -6, 41, 10, 52}, {"RUS", 160, 55, 180, 72}, {"RUS", -180, 60, -165, 72},
      {"NOR", 3, 57, 32, 72},  {"ITA", 6, 36, 19, 48},    {"ZAF", 16, -35, 33, -22}};
  rng_state = 99;
  long pure_boundary = 0, boundary = 0, decided = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const cl_region *r = country(cases[c].code);
    for (int k = 0; k < 1500; k++) {
      double w = pow(10, rnd_in(-3, 0.5)), h = w * rnd_in(0.5, 2);
      double x0 = rnd_in(cases[c].x0, cases[c].x1 - w), y0 = rnd_in(cases[c].y0, cases[c].y1 - h);
      cl_rect_class cls = CLASS(r, x0, y0, x0 + w, y0 + h);
      int in = 0, out = 0;
      for (int s = 0; s < 200; s++) {
        if (cl_region_contains(r, rnd_in(x0, x0 + w), rnd_in(y0, y0 + h)))
          in++;
        else
          out++;
      }
      if (cls == CL_RECT_INSIDE)
        ck_assert_msg(out == 0, "%s INSIDE [%g,%g]x[%g,%g]: %d points outside", cases[c].code, x0,
                      x0 + w, y0, y0 + h, out);
      if (cls == CL_RECT_OUTSIDE)
        ck_assert_msg(in == 0, "%s OUTSIDE [%g,%g]x[%g,%g]: %d points inside", cases[c].code, x0,
                      x0 + w, y0, y0 + h, in);
      if (cls == CL_RECT_BOUNDARY) {
        boundary++;
        if (in == 0 || out == 0) pure_boundary++;
      } else {
        decided++;
      }
    }
  }
  ck_assert_int_gt(decided, 3000);
  ck_assert_msg(pure_boundary * 4 < boundary, "%ld of %ld BOUNDARY rectangles look pure",
                pure_boundary, boundary);
}
END_TEST

/* ---- the maritime borders ------------------------------------------------------ */

static cl_region_set maritime;

static void load_maritime(void) {
  const char *path = getenv("CHIPLOC_BORDERS");
  ck_assert_msg(path && path[0],
                "CHIPLOC_BORDERS is not set: run through ctest (the borders_fetch fixture "
                "downloads the file)");
  ck_assert_msg(access(path, R_OK) == 0,
                "%s is missing: scripts/fetch-borders.sh did not run or failed", path);
  char err[512] = "";
  int rc = cl_region_set_load_geojson(&maritime, path, "isoA3", err, sizeof err);
  ck_assert_msg(rc == CL_OK, "%s: %s", path, err);
}

/* Coastal datacenter sites: in their country's land and territorial sea
 * (@osm_borders/maritime_1000m, every feature a GeometryCollection), and
 * most of them outside the 10 km land borders, which is why maritime
 * borders are the default allowed regions (docs/REGIONS.md). */
START_TEST(test_maritime) {
  load_maritime();
  load_countries();
  /* @osm_borders/maritime_1000m 1.1.0 holds 249 features, one per code. */
  ck_assert_uint_eq(maritime.n, 249);
  static const struct {
    const char *code, *site;
    double lat, lon;
    int on_land_10km; /* in the land borders' region too */
  } sites[] = {
      {"SWE", "Stockholm, Värtahamnen (the harbour)", 59.351, 18.105, 0},
      {"SWE", "Stockholm, Lidingö", 59.36, 18.15, 0},
      {"SWE", "Stockholm, city centre", 59.3293, 18.0686, 1},
      {"SWE", "Stockholm, Kista", 59.4036, 17.9447, 1},
      {"FIN", "Helsinki, city centre", 60.1699, 24.9384, 0},
      {"DNK", "Copenhagen, city centre", 55.6761, 12.5683, 0},
      {"SGP", "Singapore, Raffles Place", 1.2897, 103.8501, 1},
      {"USA", "New York, 60 Hudson Street", 40.7177, -74.0088, 0},
      {"USA", "New York, Midtown Manhattan", 40.758, -73.9855, 0},
  };
  for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++) {
    const cl_region *m = cl_region_set_find(&maritime, sites[i].code);
    ck_assert_msg(m != NULL, "no maritime region %s", sites[i].code);
    ck_assert_msg(cl_region_contains(m, sites[i].lon, sites[i].lat) == 1, "%s is not in %s",
                  sites[i].site, sites[i].code);
    ck_assert_msg(cl_region_contains(country(sites[i].code), sites[i].lon, sites[i].lat) ==
                      sites[i].on_land_10km,
                  "%s: in %s of the land borders should be %d", sites[i].site,
                  sites[i].code, sites[i].on_land_10km);
    /* And in no other country's. */
    for (size_t k = 0; k < maritime.n; k++)
      if (maritime.regions[k] != m)
        ck_assert_msg(!cl_region_contains(maritime.regions[k], sites[i].lon, sites[i].lat),
                      "%s is in %s too", sites[i].site, cl_region_code(maritime.regions[k]));
  }
  /* International waters, more than 12 nmi (22 km) from every coast, are
   * nobody's: the middle of the Baltic between Gotland (50 km away) and
   * Latvia, the North Sea between Scotland and Norway, the Atlantic. */
  static const double sea[][2] = {{19.0, 56.5}, {2.0, 58.0}, {-30.0, 40.0}};
  for (size_t i = 0; i < sizeof sea / sizeof sea[0]; i++)
    for (size_t k = 0; k < maritime.n; k++)
      ck_assert_msg(!cl_region_contains(maritime.regions[k], sea[i][0], sea[i][1]),
                    "(%g, %g) is in %s", sea[i][1], sea[i][0], cl_region_code(maritime.regions[k]));
  /* Inland the two sets agree: Paris, Berlin, Geneva, Basel. */
  ck_assert_int_eq(cl_region_contains(cl_region_set_find(&maritime, "FRA"), 2.3522, 48.8566), 1);
  ck_assert_int_eq(cl_region_contains(cl_region_set_find(&maritime, "DEU"), 13.405, 52.52), 1);
  ck_assert_int_eq(cl_region_contains(cl_region_set_find(&maritime, "CHE"), 6.1432, 46.2044), 1);
  ck_assert_int_eq(cl_region_contains(cl_region_set_find(&maritime, "CHE"), 7.5886, 47.5596), 1);
}
END_TEST

/* Geneva lies a few km from France on three sides: a feasible region of
 * about 10 km around it straddles the CHE/FRA border. The maritime 1000 m
 * borders leave no gap there (bench/gaps.sh), so with both countries
 * allowed the engine must say INSIDE, the truth; with either one alone
 * UNDETERMINED. Before the border refinement the union was decided cell by
 * cell, and every cell on the border was BOUNDARY for both. */
START_TEST(test_shared_border) {
  load_maritime();
  const cl_region *che = cl_region_set_find(&maritime, "CHE");
  const cl_region *fra = cl_region_set_find(&maritime, "FRA");
  ck_assert_ptr_nonnull(che);
  ck_assert_ptr_nonnull(fra);
  const double glat = 46.2044, glon = 6.1432;
  cl_geo_landmark lms[4];
  for (int k = 0; k < 4; k++) {
    double lat = glat + (k == 0 ? 0.5 : k == 2 ? -0.5 : 0);
    double lon = glon + (k == 1 ? 0.7 : k == 3 ? -0.7 : 0);
    lms[k] = (cl_geo_landmark){lat, lon, cl_geo_distance_m(glat, glon, lat, lon) + 8000.0};
  }
  cl_geo_ctx *ctx = NULL;
  ck_assert_int_eq(cl_geo_ctx_create(&ctx), CL_OK);
  const cl_region *both[2] = {che, fra};
  struct {
    const cl_region *const *members;
    size_t n;
    cl_geo_region_verdict want;
  } cases[] = {{both, 2, CL_REGION_INSIDE},
               {&both[0], 1, CL_REGION_UNDETERMINED},
               {&both[1], 1, CL_REGION_UNDETERMINED}};
  for (size_t i = 0; i < 3; i++) {
    cl_region_union u = {cases[i].members, cases[i].n};
    cl_geo_result res;
    ck_assert_int_eq(cl_geo_locate(ctx, lms, 4, NULL, NULL, &u, &res), CL_OK);
    ck_assert_int_eq(res.consistency, CL_GEO_CONSISTENT);
    ck_assert_msg(res.region == cases[i].want, "case %zu: %s, want %s (radius %.1f km)", i,
                  cl_geo_region_name(res.region), cl_geo_region_name(cases[i].want),
                  res.radius_km);
  }
  cl_geo_ctx_destroy(&ctx);
}
END_TEST

/* ---- geometry digest ------------------------------------------------------ */

/* The digest's vector: polygon 7 (a triangle, closed) added before polygon
 * 3 (a box whose first vertex repeats, then a hole), so that the digest's
 * polygon order (by number) differs from the order of adding. */
static const double DIGEST_TRIANGLE[] = {10.0, 10.0, 11.25, 10.0, 10.5, 11.0, 10.0, 10.0};
static const double DIGEST_BOX[] = {-0.5, -0.5, -0.5, -0.5, 4.0, -0.5, 4.0, 4.0, -0.5, 4.0};
static const double DIGEST_HOLE[] = {1.0, 1.0, 2.0, 1.0, 2.0, 2.0, 1.0, 2.0};
static const char DIGEST_INPUT_HEX[] =
    "636869706c6f632076322067656f6d6574727900000000020000000200000004"
    "bfe0000000000000bfe00000000000004010000000000000bfe0000000000000"
    "40100000000000004010000000000000bfe00000000000004010000000000000"
    "000000043ff00000000000003ff000000000000040000000000000003ff00000"
    "00000000400000000000000040000000000000003ff000000000000040000000"
    "0000000000000001000000034024000000000000402400000000000040268000"
    "00000000402400000000000040250000000000004026000000000000";
static const char DIGEST_HEX[] =
    "424bed0d6d72cd92a70b8c6b37dc4b299ca6b63ad1061b936b6efc5f48b9dd01";

static cl_region *digest_region(const char *code) {
  cl_region *r = new_region(code);
  add_ring(r, 7, DIGEST_TRIANGLE, 4);
  add_ring(r, 3, DIGEST_BOX, 5);
  add_ring(r, 3, DIGEST_HOLE, 4);
  ck_assert_int_eq(cl_region_finish(r), CL_OK);
  return r;
}

static uint8_t *put_be32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) *p++ = (uint8_t)(v >> (24 - 8 * i));
  return p;
}

static uint8_t *put_double(uint8_t *p, double d) {
  uint64_t bits;
  memcpy(&bits, &d, 8);
  for (int i = 0; i < 8; i++) *p++ = (uint8_t)(bits >> (56 - 8 * i));
  return p;
}

/* n vertices (lon, lat) of p, as the digest writes a ring. */
static uint8_t *put_ring(uint8_t *out, const double *p, uint32_t n) {
  out = put_be32(out, n);
  for (uint32_t i = 0; i < n; i++) {
    out = put_double(out, p[2 * i]);
    out = put_double(out, p[2 * i + 1]);
  }
  return out;
}

static void hex_of(char *out, const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

START_TEST(test_digest) {
  /* By hand: context and NUL, the polygon count, then polygon 3 (box
   * without its repeated first vertex, then the hole) and polygon 7 (the
   * triangle without its closing point). */
  uint8_t in[20 + 4 + 4 + (4 + 4 * 16) + (4 + 4 * 16) + 4 + (4 + 3 * 16)];
  uint8_t *p = in;
  memcpy(p, "chiploc v2 geometry", 20);
  p += 20;
  p = put_be32(p, 2);
  p = put_be32(p, 2);
  p = put_ring(p, DIGEST_BOX + 2, 4);
  p = put_ring(p, DIGEST_HOLE, 4);
  p = put_be32(p, 1);
  p = put_ring(p, DIGEST_TRIANGLE, 3);
  ck_assert_int_eq((int)(p - in), (int)sizeof in);
  char hex[2 * sizeof in + 1];
  hex_of(hex, in, sizeof in);
  ck_assert_str_eq(hex, DIGEST_INPUT_HEX);
  uint8_t want[CL_REGION_DIGEST_LEN], got[CL_REGION_DIGEST_LEN];
  crypto_hash_sha256(want, in, sizeof in);
  cl_region *r = digest_region("X");
  ck_assert_int_eq(cl_region_digest(r, got), CL_OK);
  ck_assert_mem_eq(got, want, sizeof got);
  char dh[2 * CL_REGION_DIGEST_LEN + 1];
  hex_of(dh, got, sizeof got);
  ck_assert_str_eq(dh, DIGEST_HEX);

  /* The code is no part of it; the same shape from GeoJSON, polygons in
   * number order and rings closed, gives the same digest. */
  cl_region *y = digest_region("Y");
  uint8_t other[CL_REGION_DIGEST_LEN];
  ck_assert_int_eq(cl_region_digest(y, other), CL_OK);
  ck_assert_mem_eq(other, got, sizeof got);
  cl_region_destroy(&y);
  static const char gj[] =
      "{\"type\":\"MultiPolygon\",\"coordinates\":["
      "[[[-0.5,-0.5],[4,-0.5],[4,4],[-0.5,4],[-0.5,-0.5]],[[1,1],[2,1],[2,2],[1,2],[1,1]]],"
      "[[[10,10],[11.25,10],[10.5,11],[10,10]]]]}";
  cl_region_set set;
  char err[256] = "";
  ck_assert_msg(cl_region_set_parse_geojson(&set, gj, strlen(gj), "code", err, sizeof err) ==
                    CL_OK,
                "%s", err);
  ck_assert_int_eq(cl_region_digest(set.regions[0], other), CL_OK);
  ck_assert_mem_eq(other, got, sizeof got);
  cl_region_set_free(&set);
  /* And the same polygons as the members of a GeometryCollection. */
  static const char gc[] =
      "{\"type\":\"Feature\",\"properties\":{\"code\":\"X\"},\"geometry\":"
      "{\"type\":\"GeometryCollection\",\"geometries\":["
      "{\"type\":\"Polygon\",\"coordinates\":"
      "[[[-0.5,-0.5],[4,-0.5],[4,4],[-0.5,4],[-0.5,-0.5]],[[1,1],[2,1],[2,2],[1,2],[1,1]]]},"
      "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[10,10],[11.25,10],[10.5,11],[10,10]]]]}"
      "]}}";
  ck_assert_msg(cl_region_set_parse_geojson(&set, gc, strlen(gc), "code", err, sizeof err) ==
                    CL_OK,
                "%s", err);
  ck_assert_int_eq(cl_region_digest(set.regions[0], other), CL_OK);
  ck_assert_mem_eq(other, got, sizeof got);
  cl_region_set_free(&set);

  /* What changes it: one vertex by one unit in the last place, the rings
   * of a polygon swapped, a ring moved to its own polygon. */
  double moved[8];
  memcpy(moved, DIGEST_HOLE, sizeof moved);
  moved[5] = nextafter(moved[5], 3.0);
  cl_region *m = new_region("X");
  add_ring(m, 7, DIGEST_TRIANGLE, 4);
  add_ring(m, 3, DIGEST_BOX, 5);
  add_ring(m, 3, moved, 4);
  ck_assert_int_eq(cl_region_finish(m), CL_OK);
  ck_assert_int_eq(cl_region_digest(m, other), CL_OK);
  ck_assert_int_ne(memcmp(other, got, sizeof got), 0);
  cl_region_destroy(&m);
  m = new_region("X");
  add_ring(m, 7, DIGEST_TRIANGLE, 4);
  add_ring(m, 3, DIGEST_HOLE, 4);
  add_ring(m, 3, DIGEST_BOX, 5);
  ck_assert_int_eq(cl_region_finish(m), CL_OK);
  ck_assert_int_eq(cl_region_digest(m, other), CL_OK);
  ck_assert_int_ne(memcmp(other, got, sizeof got), 0);
  cl_region_destroy(&m);
  m = new_region("X");
  add_ring(m, 7, DIGEST_TRIANGLE, 4);
  add_ring(m, 3, DIGEST_BOX, 5);
  add_ring(m, 4, DIGEST_HOLE, 4);
  ck_assert_int_eq(cl_region_finish(m), CL_OK);
  ck_assert_int_eq(cl_region_digest(m, other), CL_OK);
  ck_assert_int_ne(memcmp(other, got, sizeof got), 0);
  cl_region_destroy(&m);

  /* Only a finished region has one. */
  m = new_region("X");
  add_ring(m, 0, DIGEST_HOLE, 4);
  ck_assert_int_eq(cl_region_digest(m, other), CL_EINVAL);
  cl_region_destroy(&m);
  ck_assert_int_eq(cl_region_digest(NULL, other), CL_EINVAL);
  cl_region_destroy(&r);
}
END_TEST

static void countries_teardown(void) {
  cl_region_set_free(&countries);
  cl_region_set_free(&maritime);
}

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *su = suite_create("region");
  TCase *tc = tcase_create("polygons");
  tcase_add_test(tc, test_unit_square);
  tcase_add_test(tc, test_ring_input);
  tcase_add_test(tc, test_rect_classes);
  tcase_add_test(tc, test_holes);
  tcase_add_test(tc, test_multipolygon);
  tcase_add_test(tc, test_antimeridian);
  tcase_add_test(tc, test_poles);
  tcase_add_test(tc, test_union);
  tcase_add_test(tc, test_union_shared_edges);
  tcase_add_test(tc, test_export_roundtrip);
  tcase_add_test(tc, test_digest);
  suite_add_tcase(su, tc);
  TCase *props = tcase_create("properties");
  tcase_set_timeout(props, 120);
  tcase_add_test(props, test_random_stars);
  tcase_add_test(props, test_random_seams);
  tcase_add_test(props, test_union_random_partitions);
  suite_add_tcase(su, props);
  TCase *gj = tcase_create("geojson");
  tcase_add_test(gj, test_geojson_good);
  tcase_add_test(gj, test_geojson_errors);
  tcase_add_test(gj, test_geojson_collection);
  tcase_add_test(gj, test_geojson_file);
  suite_add_tcase(su, gj);
  TCase *world = tcase_create("countries");
  tcase_set_timeout(world, 120);
  tcase_add_checked_fixture(world, NULL, countries_teardown);
  tcase_add_test(world, test_countries);
  tcase_add_test(world, test_countries_sampled);
  tcase_add_test(world, test_maritime);
  tcase_add_test(world, test_shared_border);
  suite_add_tcase(su, world);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
