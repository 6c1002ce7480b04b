/*
 * libFuzzer target for the GeoJSON region loader (lib/io/cl_region_geojson.c)
 * and the queries on what it builds (lib/engine/cl_region.c).
 *
 * Input: GeoJSON text, up to MAX_INPUT bytes. It is parsed twice, with
 * the code property "A3" and with "code" (the two the tools use). For
 * every region loaded, points and rectangles derived from the input bytes
 * are classified, and the region is written back with cl_region_to_geojson
 * and parsed again.
 *
 * Checked on every input, beyond the sanitizers:
 *  - a failed parse returns a known code with a NUL-terminated, non-empty
 *    message and leaves an empty set; a successful one returns regions
 *    sorted by distinct, non-empty code that cl_region_set_find finds;
 *  - classification is sound where it commits: a rectangle classified
 *    INSIDE (OUTSIDE) has its centre and two inner points inside (outside)
 *    by cl_region_contains, and a point outside the bounding box is never
 *    contained;
 *  - the export reads back as one region with the same vertex count and
 *    bounding box, the same answer on every query, and the same export
 *    (once -0 coordinates, which read back as 0, are gone).
 */
#include "cl_err.h"
#include "cl_region.h"
#include "cl_region_geojson.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) \
  do {              \
    if (!(cond)) abort(); \
  } while (0)

/* Queries per region: points, and rectangles built from pairs of them. */
#define N_POINTS 8
/* Larger inputs are skipped. Building a region costs about its edges times
 * the buckets each crosses (up to 256 for an edge across the whole grid),
 * and every input builds up to six: a few hundred long edges already reach
 * every path, while tens of kilobytes of them only burn the time limit. */
#define MAX_INPUT 32768

/* Byte i of the input, cycling; 0 for an empty input. */
static uint8_t byte_at(const uint8_t *data, size_t size, size_t i) {
  return size ? data[i % size] : 0;
}

/* A coordinate between lo and hi from one byte, reaching a sixth of the
 * span past either end; some bytes give the ends and the middle exactly. */
static double coord(uint8_t b, double lo, double hi) {
  switch (b) {
  case 0: return lo;
  case 1: return hi;
  case 2: return 0.5 * (lo + hi);
  case 3: return lo - CL_REGION_EPS_DEG;
  case 4: return hi + CL_REGION_EPS_DEG;
  default: break;
  }
  double f = ((double)b - 37.0) / 180.0; /* about -0.17 .. 1.21 */
  return lo + f * (hi - lo);
}

typedef struct {
  double lon[N_POINTS], lat[N_POINTS];
  int in[N_POINTS];
  cl_rect_class cls[N_POINTS];
} answers;

static void check_point_in_rect(const cl_region *r, cl_rect_class c, double x, double y) {
  if (c == CL_RECT_BOUNDARY) return;
  CHECK(cl_region_contains(r, x, y) == (c == CL_RECT_INSIDE));
}

/*
 * Runs the queries on r, fills *a with the answers and checks that they
 * agree with each other. The points are derived from the input bytes at
 * `salt` so that each region of a set gets its own.
 */
static void query(const cl_region *r, const uint8_t *data, size_t size, size_t salt, answers *a) {
  double bx0, by0, bx1, by1;
  cl_region_bbox(r, &bx0, &by0, &bx1, &by1);
  CHECK(bx0 <= bx1 && by0 <= by1);
  CHECK(bx0 >= -180.0 && bx1 <= 180.0 && by0 >= -90.0 && by1 <= 90.0);
  for (size_t i = 0; i < N_POINTS; i++) {
    a->lon[i] = coord(byte_at(data, size, salt + 2 * i), bx0, bx1);
    a->lat[i] = coord(byte_at(data, size, salt + 2 * i + 1), by0, by1);
    a->in[i] = cl_region_contains(r, a->lon[i], a->lat[i]);
    CHECK(a->in[i] == 0 || a->in[i] == 1);
    if (a->lon[i] < bx0 || a->lon[i] > bx1 || a->lat[i] < by0 || a->lat[i] > by1)
      CHECK(!a->in[i]);
  }
  for (size_t i = 0; i < N_POINTS; i++) {
    /* Rectangle spanned by points i and i+1; every other one is shrunk to
     * a sliver around point i, where rounding matters most. */
    const size_t j = (i + 1) % N_POINTS;
    double x0 = fmin(a->lon[i], a->lon[j]), x1 = fmax(a->lon[i], a->lon[j]);
    double y0 = fmin(a->lat[i], a->lat[j]), y1 = fmax(a->lat[i], a->lat[j]);
    if (i % 2) {
      x0 = a->lon[i] - 1e-7;
      x1 = a->lon[i] + 1e-7;
      y0 = y1 = a->lat[i];
    }
    cl_rect_class c = cl_region_classify_rect(r, x0, y0, x1, y1);
    CHECK(c == CL_RECT_OUTSIDE || c == CL_RECT_INSIDE || c == CL_RECT_BOUNDARY);
    a->cls[i] = c;
    /* Points in the open rectangle (or on it, when it is flat). */
    double cx = 0.5 * (x0 + x1), cy = 0.5 * (y0 + y1);
    check_point_in_rect(r, c, cx, cy);
    check_point_in_rect(r, c, x0 + 0.25 * (x1 - x0), y0 + 0.75 * (y1 - y0));
    check_point_in_rect(r, c, x0 + 0.75 * (x1 - x0), y0 + 0.25 * (y1 - y0));
  }
  /* The whole bounding box. It is not always BOUNDARY, nor even never
   * OUTSIDE: edges on seams are looked through, and a region of zero area
   * drawn on seams alone has no point off them. */
  check_point_in_rect(r, cl_region_classify_rect(r, bx0, by0, bx1, by1), 0.5 * (bx0 + bx1),
                      0.5 * (by0 + by1));
  /* Reversed or non-finite rectangles are never committed to. */
  CHECK(cl_region_classify_rect(r, bx1 + 1, by0, bx0, by1) == CL_RECT_BOUNDARY);
  CHECK(cl_region_classify_rect(r, NAN, by0, bx1, by1) == CL_RECT_BOUNDARY);
}

/* Export, re-parse, and compare with the original's answers. */
static void round_trip(const cl_region *r, const uint8_t *data, size_t size, size_t salt,
                       const answers *a) {
  char *text = NULL;
  size_t len = 0;
  CHECK(cl_region_to_geojson(r, &text, &len) == CL_OK);
  CHECK(text != NULL && strlen(text) == len);
  cl_region_set s2;
  char err[256];
  int rc = cl_region_set_parse_geojson(&s2, text, len, "code", err, sizeof err);
  CHECK(rc == CL_OK && s2.n == 1);
  const cl_region *r2 = s2.regions[0];
  CHECK(strcmp(cl_region_code(r2), "REGION") == 0);
  CHECK(cl_region_vertex_count(r2) == cl_region_vertex_count(r));
  double b1[4], b2[4];
  cl_region_bbox(r, &b1[0], &b1[1], &b1[2], &b1[3]);
  cl_region_bbox(r2, &b2[0], &b2[1], &b2[2], &b2[3]);
  for (int i = 0; i < 4; i++) CHECK(b1[i] == b2[i]); /* -0.0 == 0.0 */
  answers a2;
  query(r2, data, size, salt, &a2);
  CHECK(memcmp(a->in, a2.in, sizeof a->in) == 0);
  CHECK(memcmp(a->cls, a2.cls, sizeof a->cls) == 0);
  char *text2 = NULL;
  size_t len2 = 0;
  CHECK(cl_region_to_geojson(r2, &text2, &len2) == CL_OK);
  if (len2 != len || memcmp(text, text2, len) != 0) {
    /* The one allowed difference: a coordinate -0.0 is written "-0",
     * which JSON readers take for the integer 0. The second export must
     * then be a fixed point. */
    CHECK(strstr(text, "-0,") || strstr(text, "-0]"));
    cl_region_set s3;
    CHECK(cl_region_set_parse_geojson(&s3, text2, len2, "code", err, sizeof err) == CL_OK);
    char *text3 = NULL;
    size_t len3 = 0;
    CHECK(cl_region_to_geojson(s3.regions[0], &text3, &len3) == CL_OK);
    CHECK(len3 == len2 && memcmp(text2, text3, len2) == 0);
    free(text3);
    cl_region_set_free(&s3);
  }
  free(text2);
  free(text);
  cl_region_set_free(&s2);
}

static void run(const uint8_t *data, size_t size, const char *prop) {
  cl_region_set s;
  char err[256];
  memset(err, 'X', sizeof err);
  err[0] = '\0';
  int rc = cl_region_set_parse_geojson(&s, (const char *)data, size, prop, err, sizeof err);
  CHECK(memchr(err, '\0', sizeof err) != NULL);
  if (rc != CL_OK) {
    CHECK(rc == CL_EMALFORMED || rc == CL_ENOMEM || rc == CL_ETOOBIG || rc == CL_EINVAL);
    CHECK(err[0] != '\0');
    CHECK(s.n == 0 && s.regions == NULL);
    return;
  }
  CHECK(s.n >= 1);
  for (size_t i = 0; i < s.n; i++) {
    const cl_region *r = s.regions[i];
    const char *code = cl_region_code(r);
    CHECK(code[0] != '\0');
    if (i > 0) CHECK(strcmp(cl_region_code(s.regions[i - 1]), code) < 0);
    CHECK(cl_region_set_find(&s, code) == r);
    CHECK(cl_region_vertex_count(r) >= 3);
    answers a;
    query(r, data, size, 7 * i, &a);
    round_trip(r, data, size, 7 * i, &a);
  }
  cl_region_set_free(&s);
  CHECK(s.n == 0 && s.regions == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > MAX_INPUT) return 0;
  run(data, size, "A3");
  run(data, size, "code");
  return 0;
}
