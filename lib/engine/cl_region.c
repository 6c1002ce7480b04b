/*
 * Allowed regions as polygons with holes in the longitude/latitude plane,
 * and the two indexes that keep queries cheap enough for the location
 * engine, which classifies thousands of cells per chip against country
 * borders of thousands of vertices.
 *
 * - A uniform grid of up to GRID_MAX x GRID_MAX buckets over the bounding
 *   box lists, for each bucket, the edges that meet it (slightly grown).
 *   Buckets that no edge meets are entirely inside or entirely outside; that
 *   state is computed once. A summed-area table of the buckets that hold
 *   edges answers "does this block of buckets hold any edge?" in O(1).
 * - Latitude bands list every non-horizontal edge whose latitude range meets
 *   the band, once per band and grouped by polygon, so that a ray cast from
 *   a point sees each edge of its band exactly once and the crossing count
 *   per polygon is exact.
 *
 * Soundness of rectangle classification rests on two facts: an edge that
 * meets the grown query rectangle is always registered in some bucket the
 * query visits (buckets are registered with a margin far above rounding
 * error), and the segment/rectangle test only ever errs towards "meets"
 * (orientation signs within their rounding bound count as touching). When
 * no edge meets the grown rectangle, the rectangle lies in one face of the
 * arrangement and one point (its centre, at least CL_REGION_EPS_DEG from
 * every edge) classifies all of it. Edges on longitude +-180 and latitude
 * +-90 are seams of the plane, not borders, and are looked through (see
 * cl_region_classify_rect). No query allocates.
 *
 * Unions (cl_region_union_classify_rect) look further when no member
 * decides: edges that members share exactly, with the union on both sides
 * all along, are no border of the union. Which side of an edge a region is
 * on is probed once per edge, beside its midpoint, and held for the whole
 * edge only when no other edge of the region touches it; a summed-area
 * table of the buckets listing an edge the region holds twice lets a
 * single member skip that search in O(1).
 */
#include "cl_region.h"
#include "cl_err.h"
#include "cl_layout.h"

#include <float.h>
#include <math.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest grid side. */
#define GRID_MAX 128
/* Buckets per edge below that cap: borders are curves, so most buckets hold
 * no edge and a generous grid keeps the edges per bucket few. */
#define GRID_PER_EDGE 32
/* Most latitude bands; at most one per edge. */
#define BANDS_MAX 4096
/* Fewer bands when the band lists would hold more entries than this per
 * edge on average: an edge is listed in every band its latitude range
 * meets, so long edges would make the lists grow as edges x bands. */
#define BAND_ENTRIES_PER_EDGE 16
/* Vertices one region may hold: edge indexes are 32-bit. */
#define MAX_VERTICES ((size_t)1 << 28)
/* Edges are registered in every bucket they come within this distance of.
 * It must exceed the rounding error of bucket boundaries (~1e-13 degrees);
 * anything more only costs a few extra edge tests. */
#define GRID_MARGIN (4 * CL_REGION_EPS_DEG)
/* Bound on the relative rounding error of an orientation value computed
 * from differences of coordinates (a few units in the last place, doubled
 * for slack). */
#define ORIENT_ERR (8 * DBL_EPSILON)
/* The side probes of an edge lie this fraction of its length off its
 * midpoint: far below the distance to any other vertex of ordinary data,
 * far above rounding (each probe is checked to lie strictly on its side). */
#define SIDE_STEP 1e-4

typedef struct {
  double x0, y0, x1, y1;
} edge;

typedef struct {
  size_t start, n; /* vertices in r->pts (pairs), closing point not stored */
  int polygon;     /* the caller's polygon number */
  uint32_t dense;  /* 0..npoly-1, in increasing order of polygon number */
} ring;

enum { CELL_OUT = 0, CELL_IN = 1, CELL_EDGES = 2, CELL_UNSET = 3 /* while building */ };

/*
 * What the region is on either side of an edge, as seen from the edge's
 * direction. SIDE_KNOWN says the two side flags hold along the whole edge:
 * no other edge of the region (exact copies aside) touches its interior,
 * and the probes next to its midpoint were decided with no other edge near.
 */
enum { SIDE_LEFT = 1, SIDE_RIGHT = 2, SIDE_KNOWN = 4, SIDE_DONE = 8 };

struct cl_region {
  char *code;
  double *pts; /* lon, lat pairs of all rings */
  size_t npts, ptcap;
  ring *rings;
  size_t nrings, ringcap;
  int finished;
  double bx0, by0, bx1, by1; /* bounding box of all vertices */

  /* Edges in ring order after sorting rings by polygon: polygon p owns the
   * edges [pstart[p], pstart[p + 1]). */
  edge *edges;
  size_t nedges;
  uint32_t *epoly;  /* dense polygon of each edge */
  uint32_t *pstart; /* npoly + 1 */
  uint32_t npoly;

  /* Grid: bucket (ix, iy) is ix + iy * gx. */
  int gx, gy;
  double sx, sy;       /* buckets per degree (0 when the box is flat) */
  size_t *goff;        /* gx * gy + 1 offsets into gedges */
  uint32_t *gedges;    /* edge indexes per bucket */
  uint8_t *gstate;     /* CELL_* per bucket */
  uint32_t *gsum;      /* (gx + 1) * (gy + 1): buckets with edges below/left */

  /* Latitude bands. */
  int nb;
  double sb;        /* bands per degree */
  size_t *boff;     /* nb + 1 offsets into bedges */
  uint32_t *bedges; /* edge indexes per band, increasing (so grouped by polygon) */

  /* SIDE_* flags of each edge for unions, computed when a query first needs
   * them (0 until then): the only memory a query writes. Each is a pure
   * function of the region, so threads that race on one store the same
   * value. dsum counts, like gsum, the buckets listing an edge that the
   * region holds more than once (NULL when there is none). */
  _Atomic uint8_t *eside;
  uint16_t *dsum;
};

int cl_region_create(cl_region **out, const char *code) {
  if (!out) return CL_EINVAL;
  *out = NULL;
  cl_region *r = calloc(1, sizeof *r);
  if (!r) return CL_ENOMEM;
  r->code = strdup(code ? code : "");
  if (!r->code) {
    free(r);
    return CL_ENOMEM;
  }
  r->bx0 = r->by0 = INFINITY;
  r->bx1 = r->by1 = -INFINITY;
  *out = r;
  return CL_OK;
}

void cl_region_destroy(cl_region **rp) {
  if (!rp || !*rp) return;
  cl_region *r = *rp;
  free(r->code);
  free(r->pts);
  free(r->rings);
  free(r->edges);
  free(r->epoly);
  free(r->pstart);
  free(r->goff);
  free(r->gedges);
  free(r->gstate);
  free(r->gsum);
  free(r->boff);
  free(r->bedges);
  free((void *)r->eside);
  free(r->dsum);
  free(r);
  *rp = NULL;
}

const char *cl_region_code(const cl_region *r) { return r ? r->code : ""; }

void cl_region_bbox(const cl_region *r, double *lon0, double *lat0, double *lon1, double *lat1) {
  int empty = !r || r->npts == 0;
  if (lon0) *lon0 = empty ? 0 : r->bx0;
  if (lat0) *lat0 = empty ? 0 : r->by0;
  if (lon1) *lon1 = empty ? 0 : r->bx1;
  if (lat1) *lat1 = empty ? 0 : r->by1;
}

size_t cl_region_vertex_count(const cl_region *r) { return r ? r->npts : 0; }

/* ---- building ------------------------------------------------------------ */

static int same_point(const double *a, const double *b) { return a[0] == b[0] && a[1] == b[1]; }

/* 1 if the n points hold at least 3 distinct ones. */
static int has_three_distinct(const double *p, size_t n) {
  size_t i = 1;
  while (i < n && same_point(&p[2 * i], p)) i++;
  if (i >= n) return 0;
  const double *second = &p[2 * i];
  for (i++; i < n; i++)
    if (!same_point(&p[2 * i], p) && !same_point(&p[2 * i], second)) return 1;
  return 0;
}

static int grow(void **buf, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return CL_OK;
  size_t ncap = *cap ? *cap : 16;
  while (ncap < need) ncap *= 2;
  void *nb = realloc(*buf, ncap * elem);
  if (!nb) return CL_ENOMEM;
  *buf = nb;
  *cap = ncap;
  return CL_OK;
}

/*
 * Stores one ring without its closing point(s) and without consecutive
 * repeats. Errors: CL_EINVAL (bad argument, finished region, coordinates
 * out of range, fewer than 3 distinct points, negative polygon number),
 * CL_ETOOBIG (more than MAX_VERTICES in the region), CL_ENOMEM. On error the
 * region is unchanged.
 */
int cl_region_add_ring(cl_region *r, int polygon, const double *lonlat, size_t n) {
  if (!r || r->finished || polygon < 0 || (n > 0 && !lonlat)) return CL_EINVAL;
  for (size_t i = 0; i < n; i++) {
    double lon = lonlat[2 * i], lat = lonlat[2 * i + 1];
    if (!(lon >= -180.0 && lon <= 180.0) || !(lat >= -90.0 && lat <= 90.0)) return CL_EINVAL;
  }
  size_t m = n;
  while (m > 1 && same_point(&lonlat[2 * (m - 1)], lonlat)) m--;
  if (m < 3 || !has_three_distinct(lonlat, m)) return CL_EINVAL;
  if (m > MAX_VERTICES - r->npts) return CL_ETOOBIG;
  if (grow((void **)&r->pts, &r->ptcap, 2 * (r->npts + m), sizeof *r->pts) != CL_OK ||
      grow((void **)&r->rings, &r->ringcap, r->nrings + 1, sizeof *r->rings) != CL_OK)
    return CL_ENOMEM;
  double *dst = r->pts + 2 * r->npts;
  size_t k = 0;
  for (size_t i = 0; i < m; i++) {
    const double *p = &lonlat[2 * i];
    if (k > 0 && same_point(&dst[2 * (k - 1)], p)) continue;
    dst[2 * k] = p[0];
    dst[2 * k + 1] = p[1];
    k++;
  }
  /* The last point may repeat the first after repeats were dropped. */
  while (k > 1 && same_point(&dst[2 * (k - 1)], dst)) k--;
  for (size_t i = 0; i < k; i++) {
    if (dst[2 * i] < r->bx0) r->bx0 = dst[2 * i];
    if (dst[2 * i] > r->bx1) r->bx1 = dst[2 * i];
    if (dst[2 * i + 1] < r->by0) r->by0 = dst[2 * i + 1];
    if (dst[2 * i + 1] > r->by1) r->by1 = dst[2 * i + 1];
  }
  r->rings[r->nrings++] = (ring){.start = r->npts, .n = k, .polygon = polygon, .dense = 0};
  r->npts += k;
  return CL_OK;
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* Rings ordered by polygon, then by the order they were added. */
static int cmp_ring(const void *a, const void *b) {
  const ring *x = a, *y = b;
  if (x->dense != y->dense) return x->dense < y->dense ? -1 : 1;
  return (x->start > y->start) - (x->start < y->start);
}

/* Numbers the polygons densely and sorts the rings by polygon. */
static int number_polygons(cl_region *r) {
  int *ids = malloc(r->nrings * sizeof *ids);
  if (!ids) return CL_ENOMEM;
  for (size_t i = 0; i < r->nrings; i++) ids[i] = r->rings[i].polygon;
  qsort(ids, r->nrings, sizeof *ids, cmp_int);
  size_t u = 0;
  for (size_t i = 0; i < r->nrings; i++)
    if (u == 0 || ids[u - 1] != ids[i]) ids[u++] = ids[i];
  for (size_t i = 0; i < r->nrings; i++) {
    const int *hit = bsearch(&r->rings[i].polygon, ids, u, sizeof *ids, cmp_int);
    r->rings[i].dense = (uint32_t)(hit - ids);
  }
  free(ids);
  r->npoly = (uint32_t)u;
  qsort(r->rings, r->nrings, sizeof *r->rings, cmp_ring);
  return CL_OK;
}

static int build_edges(cl_region *r) {
  r->nedges = r->npts;
  r->edges = malloc(r->nedges * sizeof *r->edges);
  r->epoly = malloc(r->nedges * sizeof *r->epoly);
  r->pstart = calloc((size_t)r->npoly + 1, sizeof *r->pstart);
  if (!r->edges || !r->epoly || !r->pstart) return CL_ENOMEM;
  size_t k = 0;
  for (size_t i = 0; i < r->nrings; i++) {
    const ring *g = &r->rings[i];
    const double *p = r->pts + 2 * g->start;
    if (i == 0 || r->rings[i - 1].dense != g->dense) r->pstart[g->dense] = (uint32_t)k;
    for (size_t j = 0; j < g->n; j++) {
      size_t nx = j + 1 == g->n ? 0 : j + 1;
      r->edges[k] = (edge){p[2 * j], p[2 * j + 1], p[2 * nx], p[2 * nx + 1]};
      r->epoly[k] = g->dense;
      k++;
    }
  }
  r->pstart[r->npoly] = (uint32_t)k;
  return CL_OK;
}

/* Bucket and band indexes: monotone in the coordinate, clamped. */
static inline int grid_ix(const cl_region *r, double x) {
  double f = (x - r->bx0) * r->sx;
  if (!(f > 0)) return 0;
  if (f >= r->gx) return r->gx - 1;
  return (int)f;
}

static inline int grid_iy(const cl_region *r, double y) {
  double f = (y - r->by0) * r->sy;
  if (!(f > 0)) return 0;
  if (f >= r->gy) return r->gy - 1;
  return (int)f;
}

static inline int band_of(const cl_region *r, double y) {
  double f = (y - r->by0) * r->sb;
  if (!(f > 0)) return 0;
  if (f >= r->nb) return r->nb - 1;
  return (int)f;
}

/*
 * 1 if segment g meets the closed rectangle [rx0, rx1] x [ry0, ry1], or if
 * rounding leaves that in doubt; 0 only when they are certainly apart.
 * Separating axes: x, y, and the segment's normal.
 */
static inline int seg_meets_rect(const edge *g, double rx0, double ry0, double rx1, double ry1) {
  double ex0 = g->x0 < g->x1 ? g->x0 : g->x1, ex1 = g->x0 < g->x1 ? g->x1 : g->x0;
  double ey0 = g->y0 < g->y1 ? g->y0 : g->y1, ey1 = g->y0 < g->y1 ? g->y1 : g->y0;
  if (ex1 < rx0 || ex0 > rx1 || ey1 < ry0 || ey0 > ry1) return 0;
  if (g->x0 >= rx0 && g->x0 <= rx1 && g->y0 >= ry0 && g->y0 <= ry1) return 1;
  if (g->x1 >= rx0 && g->x1 <= rx1 && g->y1 >= ry0 && g->y1 <= ry1) return 1;
  double dx = g->x1 - g->x0, dy = g->y1 - g->y0;
  double ax0 = rx0 - g->x0, ax1 = rx1 - g->x0, ay0 = ry0 - g->y0, ay1 = ry1 - g->y0;
  double o00 = dx * ay0 - dy * ax0, o10 = dx * ay0 - dy * ax1;
  double o01 = dx * ay1 - dy * ax0, o11 = dx * ay1 - dy * ax1;
  double amax = fabs(ax0) > fabs(ax1) ? fabs(ax0) : fabs(ax1);
  double bmax = fabs(ay0) > fabs(ay1) ? fabs(ay0) : fabs(ay1);
  double err = ORIENT_ERR * (fabs(dx) + fabs(dy)) * (amax + bmax);
  if (o00 > err && o10 > err && o01 > err && o11 > err) return 0;
  if (o00 < -err && o10 < -err && o01 < -err && o11 < -err) return 0;
  return 1;
}

/* Bucket (ix, iy) as a rectangle grown by GRID_MARGIN. */
static void bucket_rect(const cl_region *r, int ix, int iy, double *x0, double *y0, double *x1,
                        double *y1) {
  double w = r->bx1 - r->bx0, h = r->by1 - r->by0;
  *x0 = r->bx0 + w * ix / r->gx - GRID_MARGIN;
  *x1 = r->bx0 + w * (ix + 1) / r->gx + GRID_MARGIN;
  *y0 = r->by0 + h * iy / r->gy - GRID_MARGIN;
  *y1 = r->by0 + h * (iy + 1) / r->gy + GRID_MARGIN;
}

/*
 * Calls fn(r, bucket, arg) for every bucket that edge g meets (grown by
 * GRID_MARGIN, as seg_meets_rect decides); stops at the first non-zero
 * return and returns it, else 0.
 */
typedef int (*bucket_fn)(const cl_region *r, size_t bucket, void *arg);
static int edge_buckets(const cl_region *r, const edge *g, bucket_fn fn, void *arg) {
  double ex0 = fmin(g->x0, g->x1), ex1 = fmax(g->x0, g->x1);
  double ey0 = fmin(g->y0, g->y1), ey1 = fmax(g->y0, g->y1);
  int ix0 = grid_ix(r, ex0 - GRID_MARGIN), ix1 = grid_ix(r, ex1 + GRID_MARGIN);
  int iy0 = grid_iy(r, ey0 - GRID_MARGIN), iy1 = grid_iy(r, ey1 + GRID_MARGIN);
  double dx = g->x1 - g->x0, dy = g->y1 - g->y0;
  for (int iy = iy0; iy <= iy1; iy++) {
    /*
     * A slanted edge meets a row of buckets only near where it crosses the
     * row's (grown) latitude range: scan from there, not the whole span of
     * the edge, or a long diagonal edge costs every bucket of the grid. The
     * slack (a bucket, the margin, and the rounding of t magnified by the
     * slope) keeps this a superset of the buckets the exact test accepts.
     */
    int jx0 = ix0, jx1 = ix1;
    if (dy != 0 && ix1 - ix0 > 2) {
      double x0, y0, x1, y1;
      bucket_rect(r, ix0, iy, &x0, &y0, &x1, &y1);
      double ta = (y0 - g->y0) / dy, tb = (y1 - g->y0) / dy;
      double t0 = fmax(0.0, fmin(ta, tb)), t1 = fmin(1.0, fmax(ta, tb));
      double xa = g->x0 + t0 * dx, xb = g->x0 + t1 * dx;
      double slack = (x1 - x0) + GRID_MARGIN + (fabs(dx / dy) + 1) * 1e-9;
      int ka = grid_ix(r, fmin(xa, xb) - slack), kb = grid_ix(r, fmax(xa, xb) + slack);
      if (ka > jx0) jx0 = ka;
      if (kb < jx1) jx1 = kb;
    }
    for (int ix = jx0; ix <= jx1; ix++) {
      double x0, y0, x1, y1;
      bucket_rect(r, ix, iy, &x0, &y0, &x1, &y1);
      if (!seg_meets_rect(g, x0, y0, x1, y1)) continue;
      int rc = fn(r, (size_t)ix + (size_t)iy * (size_t)r->gx, arg);
      if (rc) return rc;
    }
  }
  return 0;
}

static int count_edge(const cl_region *r, size_t bucket, void *arg) {
  (void)r;
  ((size_t *)arg)[bucket]++;
  return 0;
}

typedef struct {
  size_t *cursor;
  uint32_t *fill;
  uint32_t e;
} fill_arg;

static int fill_edge(const cl_region *r, size_t bucket, void *arg) {
  (void)r;
  fill_arg *a = arg;
  a->fill[a->cursor[bucket]++] = a->e;
  return 0;
}

/* Grid side lengths for about `target` square-ish buckets over w x h. */
static void grid_dims(double w, double h, size_t target, int *gx, int *gy) {
  double t = (double)target;
  double fx, fy;
  if (w <= 0 && h <= 0) {
    fx = fy = 1;
  } else if (h <= 0) {
    fx = t;
    fy = 1;
  } else if (w <= 0) {
    fx = 1;
    fy = t;
  } else {
    fx = sqrt(t * w / h);
    if (fx > GRID_MAX) fx = GRID_MAX;
    if (fx < 1) fx = 1;
    fy = t / floor(fx);
  }
  *gx = fx >= GRID_MAX ? GRID_MAX : fx < 1 ? 1 : (int)fx;
  *gy = fy >= GRID_MAX ? GRID_MAX : fy < 1 ? 1 : (int)fy;
}

/* Entries the band lists need with the current r->nb and r->sb. */
static size_t band_entries(const cl_region *r) {
  size_t n = 0;
  for (size_t e = 0; e < r->nedges; e++) {
    const edge *g = &r->edges[e];
    if (g->y0 == g->y1) continue;
    n += (size_t)(band_of(r, fmax(g->y0, g->y1)) - band_of(r, fmin(g->y0, g->y1))) + 1;
  }
  return n;
}

static int build_bands(cl_region *r) {
  double h = r->by1 - r->by0;
  r->nb = r->nedges > BANDS_MAX ? BANDS_MAX : (int)r->nedges;
  if (h <= 0 || r->nb < 1) r->nb = 1;
  r->sb = h > 0 ? r->nb / h : 0;
  while (r->nb > 1 && band_entries(r) > BAND_ENTRIES_PER_EDGE * r->nedges) {
    r->nb /= 2;
    r->sb = r->nb / h;
  }
  r->boff = calloc((size_t)r->nb + 1, sizeof *r->boff);
  if (!r->boff) return CL_ENOMEM;
  /* Horizontal edges never cross a horizontal ray; leave them out. */
  for (size_t e = 0; e < r->nedges; e++) {
    const edge *g = &r->edges[e];
    if (g->y0 == g->y1) continue;
    int b0 = band_of(r, fmin(g->y0, g->y1)), b1 = band_of(r, fmax(g->y0, g->y1));
    for (int b = b0; b <= b1; b++) r->boff[b + 1]++;
  }
  for (int b = 0; b < r->nb; b++) r->boff[b + 1] += r->boff[b];
  r->bedges = malloc((r->boff[r->nb] ? r->boff[r->nb] : 1) * sizeof *r->bedges);
  size_t *cur = malloc((size_t)r->nb * sizeof *cur);
  if (!r->bedges || !cur) {
    free(cur);
    return CL_ENOMEM;
  }
  memcpy(cur, r->boff, (size_t)r->nb * sizeof *cur);
  for (size_t e = 0; e < r->nedges; e++) {
    const edge *g = &r->edges[e];
    if (g->y0 == g->y1) continue;
    int b0 = band_of(r, fmin(g->y0, g->y1)), b1 = band_of(r, fmax(g->y0, g->y1));
    for (int b = b0; b <= b1; b++) r->bedges[cur[b]++] = (uint32_t)e;
  }
  free(cur);
  return CL_OK;
}

/*
 * Even-odd ray casting towards +lon over the band of py, polygon by
 * polygon; 1 as soon as one polygon has an odd count. The half-open rule
 * (y0 > py) != (y1 > py) counts a vertex on the ray once.
 */
static int point_in(const cl_region *r, double px, double py) {
  int b = band_of(r, py);
  const uint32_t *e = r->bedges + r->boff[b], *end = r->bedges + r->boff[b + 1];
  uint32_t pend = 0;
  int odd = 0;
  for (; e < end; e++) {
    if (*e >= pend) {
      if (odd) return 1;
      pend = r->pstart[r->epoly[*e] + 1];
    }
    const edge *g = &r->edges[*e];
    if ((g->y0 > py) == (g->y1 > py)) continue;
    /* The crossing lies right of p iff p is left of the upward edge. */
    double o = (g->x1 - g->x0) * (py - g->y0) - (g->y1 - g->y0) * (px - g->x0);
    if (g->y1 > g->y0 ? o > 0 : o < 0) odd ^= 1;
  }
  return odd;
}

static int build_grid(cl_region *r) {
  double w = r->bx1 - r->bx0, h = r->by1 - r->by0;
  size_t target = r->nedges > (size_t)GRID_MAX * GRID_MAX / GRID_PER_EDGE
                      ? (size_t)GRID_MAX * GRID_MAX
                      : GRID_PER_EDGE * r->nedges;
  grid_dims(w, h, target, &r->gx, &r->gy);
  /* Buckets narrower than the margin would all list the same edges as
   * their neighbours: a region only a few margins across gets fewer. */
  if (r->gx > 1 && w < r->gx * GRID_MARGIN) r->gx = w > GRID_MARGIN ? (int)(w / GRID_MARGIN) : 1;
  if (r->gy > 1 && h < r->gy * GRID_MARGIN) r->gy = h > GRID_MARGIN ? (int)(h / GRID_MARGIN) : 1;
  r->sx = w > 0 ? r->gx / w : 0;
  r->sy = h > 0 ? r->gy / h : 0;
  size_t nbk = (size_t)r->gx * (size_t)r->gy;
  r->goff = calloc(nbk + 1, sizeof *r->goff);
  r->gstate = malloc(nbk);
  r->gsum = calloc(((size_t)r->gx + 1) * ((size_t)r->gy + 1), sizeof *r->gsum);
  size_t *cur = malloc(nbk * sizeof *cur);
  if (!r->goff || !r->gstate || !r->gsum || !cur) {
    free(cur);
    return CL_ENOMEM;
  }
  for (size_t e = 0; e < r->nedges; e++) edge_buckets(r, &r->edges[e], count_edge, r->goff + 1);
  for (size_t b = 0; b < nbk; b++) r->goff[b + 1] += r->goff[b];
  r->gedges = malloc((r->goff[nbk] ? r->goff[nbk] : 1) * sizeof *r->gedges);
  if (!r->gedges) {
    free(cur);
    return CL_ENOMEM;
  }
  memcpy(cur, r->goff, nbk * sizeof *cur);
  for (size_t e = 0; e < r->nedges; e++) {
    fill_arg fa = {cur, r->gedges, (uint32_t)e};
    edge_buckets(r, &r->edges[e], fill_edge, &fa);
  }
  free(cur);

  /*
   * A bucket no edge meets is inside or outside as a whole; its centre is
   * at least half a bucket from every edge, so ray casting there is exact.
   * Two such buckets side by side are in the same state (the segment
   * between their centres stays within them, so no edge crosses it): one
   * ray per connected group of them is enough. A ray per bucket would cost
   * buckets x edges per band, which long edges make large.
   */
  uint32_t *stack = malloc(nbk * sizeof *stack);
  if (!stack) return CL_ENOMEM;
  for (size_t b = 0; b < nbk; b++)
    r->gstate[b] = r->goff[b + 1] > r->goff[b] ? CELL_EDGES : CELL_UNSET;
  for (size_t b0 = 0; b0 < nbk; b0++) {
    if (r->gstate[b0] != CELL_UNSET) continue;
    double x0, y0, x1, y1;
    bucket_rect(r, (int)(b0 % (size_t)r->gx), (int)(b0 / (size_t)r->gx), &x0, &y0, &x1, &y1);
    uint8_t st = point_in(r, 0.5 * (x0 + x1), 0.5 * (y0 + y1)) ? CELL_IN : CELL_OUT;
    size_t top = 0;
    r->gstate[b0] = st;
    stack[top++] = (uint32_t)b0;
    while (top > 0) {
      size_t b = stack[--top];
      int ix = (int)(b % (size_t)r->gx), iy = (int)(b / (size_t)r->gx);
      size_t nb[4];
      int k = 0;
      if (ix > 0) nb[k++] = b - 1;
      if (ix + 1 < r->gx) nb[k++] = b + 1;
      if (iy > 0) nb[k++] = b - (size_t)r->gx;
      if (iy + 1 < r->gy) nb[k++] = b + (size_t)r->gx;
      for (int i = 0; i < k; i++) {
        if (r->gstate[nb[i]] != CELL_UNSET) continue;
        r->gstate[nb[i]] = st;
        stack[top++] = (uint32_t)nb[i];
      }
    }
  }
  free(stack);
  size_t stride = (size_t)r->gx + 1;
  for (int iy = 0; iy < r->gy; iy++)
    for (int ix = 0; ix < r->gx; ix++) {
      size_t b = (size_t)ix + (size_t)iy * (size_t)r->gx;
      int has = r->gstate[b] == CELL_EDGES;
      r->gsum[(size_t)(iy + 1) * stride + (size_t)ix + 1] =
          r->gsum[(size_t)iy * stride + (size_t)ix + 1] +
          r->gsum[(size_t)(iy + 1) * stride + (size_t)ix] -
          r->gsum[(size_t)iy * stride + (size_t)ix] + (uint32_t)has;
    }
  return CL_OK;
}

/* ---- sides of edges ---------------------------------------------------- */

/*
 * The side of line g (from its first point to its second) that (px, py)
 * lies on: 1 left, -1 right, 0 on it or too close for rounding to tell.
 * The bound is the one seg_meets_rect uses.
 */
static inline int orient_sign(const edge *g, double px, double py) {
  double dx = g->x1 - g->x0, dy = g->y1 - g->y0;
  double ax = px - g->x0, ay = py - g->y0;
  double o = dx * ay - dy * ax;
  double err = ORIENT_ERR * (fabs(dx) + fabs(dy)) * (fabs(ax) + fabs(ay));
  return o > err ? 1 : o < -err ? -1 : 0;
}

/* 1 if b is a with the same endpoints in the same order, -1 in reverse
 * order, else 0. */
static inline int same_edge(const edge *a, const edge *b) {
  if (a->x0 == b->x0 && a->y0 == b->y0 && a->x1 == b->x1 && a->y1 == b->y1) return 1;
  if (a->x0 == b->x1 && a->y0 == b->y1 && a->x1 == b->x0 && a->y1 == b->y0) return -1;
  return 0;
}

/* 1 only if the closed segments a and b certainly have no common point:
 * their boxes are apart, or one lies strictly on one side of the other's
 * line. */
static int segs_apart(const edge *a, const edge *b) {
  if (fmax(a->x0, a->x1) < fmin(b->x0, b->x1) || fmax(b->x0, b->x1) < fmin(a->x0, a->x1) ||
      fmax(a->y0, a->y1) < fmin(b->y0, b->y1) || fmax(b->y0, b->y1) < fmin(a->y0, a->y1))
    return 1;
  int s0 = orient_sign(a, b->x0, b->y0), s1 = orient_sign(a, b->x1, b->y1);
  if (s0 != 0 && s0 == s1) return 1;
  s0 = orient_sign(b, a->x0, a->y0);
  s1 = orient_sign(b, a->x1, a->y1);
  return s0 != 0 && s0 == s1;
}

/*
 * 0 if f, which starts at endpoint (px, py) of g and ends at (wx, wy),
 * certainly meets g only there: (wx, wy) is certainly off g's line (two
 * distinct lines through one point have no other point in common), or f
 * points away from g (every point of f lies behind the line through the
 * shared endpoint across g).
 */
static int touches_from_end(const edge *g, double px, double py, double wx, double wy) {
  if (orient_sign(g, wx, wy) != 0) return 0;
  double qx = px == g->x0 && py == g->y0 ? g->x1 : g->x0;
  double qy = px == g->x0 && py == g->y0 ? g->y1 : g->y0;
  double ux = wx - px, uy = wy - py, vx = qx - px, vy = qy - py;
  double dot = ux * vx + uy * vy;
  return !(dot < -ORIENT_ERR * (fabs(ux) + fabs(uy)) * (fabs(vx) + fabs(vy)));
}

/* 0 only if f certainly does not meet the relative interior of g (f is not
 * a copy of g). */
static int touches_interior(const edge *g, const edge *f) {
  int p0 = (f->x0 == g->x0 && f->y0 == g->y0) || (f->x0 == g->x1 && f->y0 == g->y1);
  int p1 = (f->x1 == g->x0 && f->y1 == g->y0) || (f->x1 == g->x1 && f->y1 == g->y1);
  if (p0 && !p1) return touches_from_end(g, f->x0, f->y0, f->x1, f->y1);
  if (p1 && !p0) return touches_from_end(g, f->x1, f->y1, f->x0, f->y0);
  return !segs_apart(g, f);
}

static inline int in_region(const cl_region *r, double x, double y) {
  return x >= r->bx0 && x <= r->bx1 && y >= r->by0 && y <= r->by1 && point_in(r, x, y);
}

typedef struct {
  const edge *g;
  uint32_t self;
} touch_arg;

/* 1 if an edge listed in the bucket, other than g and its copies, may
 * touch g's interior. */
static int bucket_touches(const cl_region *r, size_t b, void *arg) {
  const touch_arg *a = arg;
  const edge *g = a->g;
  double gx0 = fmin(g->x0, g->x1), gx1 = fmax(g->x0, g->x1);
  double gy0 = fmin(g->y0, g->y1), gy1 = fmax(g->y0, g->y1);
  for (size_t k = r->goff[b]; k < r->goff[b + 1]; k++) {
    uint32_t e = r->gedges[k];
    const edge *f = &r->edges[e];
    if (e == a->self || fmax(f->x0, f->x1) < gx0 || fmin(f->x0, f->x1) > gx1 ||
        fmax(f->y0, f->y1) < gy0 || fmin(f->y0, f->y1) > gy1 || same_edge(g, f))
      continue;
    if (touches_interior(g, f)) return 1;
  }
  return 0;
}

/* 1 if an edge other than g and its copies meets the box. */
static int box_holds_other(const cl_region *r, const edge *g, double x0, double y0, double x1,
                           double y1) {
  int ix1 = grid_ix(r, x1), iy1 = grid_iy(r, y1);
  for (int iy = grid_iy(r, y0); iy <= iy1; iy++)
    for (int ix = grid_ix(r, x0); ix <= ix1; ix++) {
      size_t b = (size_t)ix + (size_t)iy * (size_t)r->gx;
      for (size_t k = r->goff[b]; k < r->goff[b + 1]; k++) {
        const edge *f = &r->edges[r->gedges[k]];
        if (!same_edge(g, f) && seg_meets_rect(f, x0, y0, x1, y1)) return 1;
      }
    }
  return 0;
}

/*
 * SIDE_* flags of edge i. Probes left and right of the midpoint, each
 * strictly on its side of the edge whichever end the rounding starts from
 * (a copy of the edge may run the other way), with no other edge within
 * CL_REGION_EPS_DEG of the segment between them: ray casting is then exact
 * there, and the region is the same just beside the midpoint. When no
 * other edge touches the edge's interior either, the region on each side
 * is the same along all of it. Anything less leaves the sides unknown (0).
 */
static uint8_t edge_sides(const cl_region *r, uint32_t i) {
  const edge *g = &r->edges[i];
  const edge rev = {g->x1, g->y1, g->x0, g->y0};
  double dx = g->x1 - g->x0, dy = g->y1 - g->y0;
  double mx = 0.5 * (g->x0 + g->x1), my = 0.5 * (g->y0 + g->y1);
  double lx = mx - SIDE_STEP * dy, ly = my + SIDE_STEP * dx;
  double rx = mx + SIDE_STEP * dy, ry = my - SIDE_STEP * dx;
  if (orient_sign(g, lx, ly) != 1 || orient_sign(&rev, lx, ly) != -1 ||
      orient_sign(g, rx, ry) != -1 || orient_sign(&rev, rx, ry) != 1)
    return 0;
  if (box_holds_other(r, g, fmin(lx, rx) - CL_REGION_EPS_DEG, fmin(ly, ry) - CL_REGION_EPS_DEG,
                      fmax(lx, rx) + CL_REGION_EPS_DEG, fmax(ly, ry) + CL_REGION_EPS_DEG))
    return 0;
  touch_arg ta = {g, i};
  if (edge_buckets(r, g, bucket_touches, &ta)) return 0;
  uint8_t f = SIDE_KNOWN;
  if (in_region(r, lx, ly)) f |= SIDE_LEFT;
  if (in_region(r, rx, ry)) f |= SIDE_RIGHT;
  return f;
}

/* The SIDE_* flags of edge i, with SIDE_DONE. */
static uint8_t sides_of(const cl_region *r, uint32_t i) {
  uint8_t f = atomic_load_explicit(&r->eside[i], memory_order_relaxed);
  if (f == 0) {
    f = (uint8_t)(SIDE_DONE | edge_sides(r, i));
    atomic_store_explicit(&r->eside[i], f, memory_order_relaxed);
  }
  return f;
}

/* Index of an edge of b other than `self` with the endpoints of g (either
 * order), or -1; *dir is 1 when it runs the same way, -1 the other way. A
 * copy passes through g's midpoint, so the bucket of the midpoint lists it. */
static long find_copy(const cl_region *b, const edge *g, long self, int *dir) {
  double mx = 0.5 * (g->x0 + g->x1), my = 0.5 * (g->y0 + g->y1);
  if (!(mx >= b->bx0 && mx <= b->bx1 && my >= b->by0 && my <= b->by1)) return -1;
  size_t k = (size_t)grid_ix(b, mx) + (size_t)grid_iy(b, my) * (size_t)b->gx;
  for (size_t j = b->goff[k]; j < b->goff[k + 1]; j++) {
    if ((long)b->gedges[j] == self) continue;
    int d = same_edge(g, &b->edges[b->gedges[j]]);
    if (d) {
      *dir = d;
      return (long)b->gedges[j];
    }
  }
  return -1;
}

static int build_sides(cl_region *r) {
  r->eside = calloc(r->nedges ? r->nedges : 1, sizeof *r->eside);
  uint8_t *dup = malloc(r->nedges ? r->nedges : 1);
  if (!r->eside || !dup) {
    free(dup);
    return CL_ENOMEM;
  }
  int any = 0, dir;
  for (size_t e = 0; e < r->nedges; e++) {
    dup[e] = find_copy(r, &r->edges[e], (long)e, &dir) >= 0;
    any |= dup[e];
  }
  size_t stride = (size_t)r->gx + 1;
  if (any) r->dsum = calloc(stride * ((size_t)r->gy + 1), sizeof *r->dsum);
  if (any && !r->dsum) {
    free(dup);
    return CL_ENOMEM;
  }
  for (size_t iy = 1; any && iy <= (size_t)r->gy; iy++)
    for (size_t ix = 1; ix <= (size_t)r->gx; ix++) {
      size_t b = ix - 1 + (iy - 1) * (size_t)r->gx;
      int has = 0;
      for (size_t k = r->goff[b]; k < r->goff[b + 1] && !has; k++) has = dup[r->gedges[k]];
      r->dsum[iy * stride + ix] =
          (uint16_t)(has + r->dsum[(iy - 1) * stride + ix] + r->dsum[iy * stride + ix - 1] -
                     r->dsum[(iy - 1) * stride + ix - 1]);
    }
  free(dup);
  return CL_OK;
}

/*
 * Builds edges, bands, grid and edge sides. CL_EINVAL if the region has no
 * ring or is finished already; CL_ENOMEM (the region stays unfinished and
 * can be destroyed).
 */
int cl_region_finish(cl_region *r) {
  if (!r || r->finished || r->nrings == 0) return CL_EINVAL;
  int rc = number_polygons(r);
  if (rc == CL_OK) rc = build_edges(r);
  if (rc == CL_OK) rc = build_bands(r);
  if (rc == CL_OK) rc = build_grid(r);
  if (rc == CL_OK) rc = build_sides(r);
  if (rc != CL_OK) return rc;
  r->finished = 1;
  return CL_OK;
}

/* ---- queries --------------------------------------------------------------- */

int cl_region_contains(const cl_region *r, double lon, double lat) {
  if (!r || !r->finished) return 0;
  return in_region(r, lon, lat);
}

/* Buckets holding edges in [ix0, ix1] x [iy0, iy1]. */
static inline uint32_t buckets_with_edges(const cl_region *r, int ix0, int iy0, int ix1, int iy1) {
  size_t stride = (size_t)r->gx + 1;
  return r->gsum[(size_t)(iy1 + 1) * stride + (size_t)ix1 + 1] -
         r->gsum[(size_t)iy0 * stride + (size_t)ix1 + 1] -
         r->gsum[(size_t)(iy1 + 1) * stride + (size_t)ix0] +
         r->gsum[(size_t)iy0 * stride + (size_t)ix0];
}

/* Seams of the longitude/latitude plane a query may look through. */
enum { SEAM_W = 1, SEAM_E = 2, SEAM_S = 4, SEAM_N = 8 };

/* 1 if g lies on one of the seams in mask: the meridian +-180 or a pole. */
static inline int on_seam(const edge *g, unsigned mask) {
  if (g->x0 == g->x1) {
    if (g->x0 == -180.0 && (mask & SEAM_W)) return 1;
    if (g->x0 == 180.0 && (mask & SEAM_E)) return 1;
  }
  if (g->y0 == g->y1) {
    if (g->y0 == -90.0 && (mask & SEAM_S)) return 1;
    if (g->y0 == 90.0 && (mask & SEAM_N)) return 1;
  }
  return 0;
}

/* The seams a query of [lon0, lon1] x [lat0, lat1] looks through (see
 * cl_region_classify_rect). */
static inline unsigned seams_to_ignore(double lon0, double lat0, double lon1, double lat1) {
  unsigned seams = 0;
  if (lon0 >= -180.0 && lon1 > -180.0) seams |= SEAM_W;
  if (lon1 <= 180.0 && lon0 < 180.0) seams |= SEAM_E;
  if (lat0 >= -90.0 && lat1 > -90.0) seams |= SEAM_S;
  if (lat1 <= 90.0 && lat0 < 90.0) seams |= SEAM_N;
  return seams;
}

/* 1 if some edge listed in bucket (ix, iy), other than an ignored seam
 * edge, meets the rectangle. */
static inline int bucket_hits(const cl_region *r, int ix, int iy, double x0, double y0, double x1,
                              double y1, unsigned seams) {
  size_t b = (size_t)ix + (size_t)iy * (size_t)r->gx;
  for (size_t k = r->goff[b]; k < r->goff[b + 1]; k++) {
    const edge *g = &r->edges[r->gedges[k]];
    if (seg_meets_rect(g, x0, y0, x1, y1) && !on_seam(g, seams)) return 1;
  }
  return 0;
}

cl_rect_class cl_region_classify_rect(const cl_region *r, double lon0, double lat0, double lon1,
                                      double lat1) {
  /* Anything this function cannot reason about is BOUNDARY: never wrong. */
  if (!r || !r->finished || !(lon0 <= lon1) || !(lat0 <= lat1) || !isfinite(lon0) ||
      !isfinite(lon1) || !isfinite(lat0) || !isfinite(lat1))
    return CL_RECT_BOUNDARY;
  double x0 = lon0 - CL_REGION_EPS_DEG, x1 = lon1 + CL_REGION_EPS_DEG;
  double y0 = lat0 - CL_REGION_EPS_DEG, y1 = lat1 + CL_REGION_EPS_DEG;
  /* The region lies within its bounding box. */
  if (x1 < r->bx0 || x0 > r->bx1 || y1 < r->by0 || y0 > r->by1) return CL_RECT_OUTSIDE;
  /*
   * Edges along longitude +-180 and latitude +-90 are seams of the plane, not
   * borders on the sphere (a region split at the antimeridian continues on
   * the other side; a latitude-90 edge is the pole). Such an edge is ignored
   * when the rectangle does not reach past its line and has points off it:
   * the rectangle minus the line is then connected and meets no other edge,
   * so the centre still decides for every point (points on the line lie on
   * the region's closed boundary).
   */
  unsigned seams = seams_to_ignore(lon0, lat0, lon1, lat1);
  int ix0 = grid_ix(r, x0), ix1 = grid_ix(r, x1);
  int iy0 = grid_iy(r, y0), iy1 = grid_iy(r, y1);
  if (buckets_with_edges(r, ix0, iy0, ix1, iy1) != 0) {
    /* Buckets strictly inside the span lie within the grown rectangle (up
     * to GRID_MARGIN): an edge listed there meets it. Seam edges lie in the
     * outermost buckets of the grid, never strictly inside a span. */
    if (ix1 - ix0 >= 2 && iy1 - iy0 >= 2 &&
        buckets_with_edges(r, ix0 + 1, iy0 + 1, ix1 - 1, iy1 - 1) != 0)
      return CL_RECT_BOUNDARY;
    for (int ix = ix0; ix <= ix1; ix++) {
      if (bucket_hits(r, ix, iy0, x0, y0, x1, y1, seams)) return CL_RECT_BOUNDARY;
      if (iy1 != iy0 && bucket_hits(r, ix, iy1, x0, y0, x1, y1, seams)) return CL_RECT_BOUNDARY;
    }
    for (int iy = iy0 + 1; iy < iy1; iy++) {
      if (bucket_hits(r, ix0, iy, x0, y0, x1, y1, seams)) return CL_RECT_BOUNDARY;
      if (ix1 != ix0 && bucket_hits(r, ix1, iy, x0, y0, x1, y1, seams)) return CL_RECT_BOUNDARY;
    }
  }
  /* No edge meets the grown rectangle: one point decides for all of it. */
  double cx = 0.5 * (lon0 + lon1), cy = 0.5 * (lat0 + lat1);
  if (!(cx >= r->bx0 && cx <= r->bx1 && cy >= r->by0 && cy <= r->by1)) return CL_RECT_OUTSIDE;
  uint8_t st = r->gstate[(size_t)grid_ix(r, cx) + (size_t)grid_iy(r, cy) * (size_t)r->gx];
  if (st == CELL_EDGES) st = point_in(r, cx, cy) ? CELL_IN : CELL_OUT;
  return st == CELL_IN ? CL_RECT_INSIDE : CL_RECT_OUTSIDE;
}

/* ---- unions ---------------------------------------------------------------- */

int cl_region_union_contains(const cl_region_union *u, double lon, double lat) {
  if (!u) return 0;
  for (size_t i = 0; i < u->n; i++)
    if (u->members[i] && cl_region_contains(u->members[i], lon, lat)) return 1;
  return 0;
}

/* Adds what SIDE_* flags f say of the two sides of an edge that runs the
 * same way as (dir 1) or against (dir -1) the edge in question; flags that
 * are not known add nothing. */
static inline void add_sides(uint8_t f, int dir, int *left, int *right) {
  if (!(f & SIDE_KNOWN)) return;
  int l = (f & SIDE_LEFT) != 0, r = (f & SIDE_RIGHT) != 0;
  *left |= dir > 0 ? l : r;
  *right |= dir > 0 ? r : l;
}

/*
 * 1 if edge i of member a is no border of the union: the union is on both
 * sides of it all along. Only an edge held more than once (by another
 * member, or twice by a) is looked at; every other edge is a border. The
 * sides are those of the members that hold it, each where its sides are
 * known; other members only add to the union, so they may be left out.
 */
static int edge_cancelled(const cl_region_union *u, const cl_region *a, uint32_t i) {
  const edge *g = &a->edges[i];
  int left = 0, right = 0, dir;
  int held = a->dsum && find_copy(a, g, (long)i, &dir) >= 0;
  if (held) add_sides(sides_of(a, i), 1, &left, &right);
  for (size_t j = 0; j < u->n && !(left && right); j++) {
    const cl_region *b = u->members[j];
    if (b == a || !b->finished) continue;
    long c = find_copy(b, g, -1, &dir);
    if (c < 0) continue;
    if (!held) add_sides(sides_of(a, i), 1, &left, &right);
    held = 1;
    add_sides(sides_of(b, (uint32_t)c), dir, &left, &right);
  }
  return left && right;
}

/*
 * 1 if every edge of member a that meets the grown rectangle (seams in
 * `seams` aside) is cancelled in u; *seen counts the edges looked at (an
 * edge listed in several buckets counts more than once).
 */
static int rect_edges_cancelled(const cl_region_union *u, const cl_region *a, double x0,
                                double y0, double x1, double y1, unsigned seams, size_t *seen) {
  if (x1 < a->bx0 || x0 > a->bx1 || y1 < a->by0 || y0 > a->by1) return 1;
  int ix0 = grid_ix(a, x0), ix1 = grid_ix(a, x1);
  int iy0 = grid_iy(a, y0), iy1 = grid_iy(a, y1);
  if (buckets_with_edges(a, ix0, iy0, ix1, iy1) == 0) return 1;
  for (int iy = iy0; iy <= iy1; iy++) {
    if (buckets_with_edges(a, ix0, iy, ix1, iy) == 0) continue;
    for (int ix = ix0; ix <= ix1; ix++) {
      size_t b = (size_t)ix + (size_t)iy * (size_t)a->gx;
      for (size_t k = a->goff[b]; k < a->goff[b + 1]; k++) {
        const edge *g = &a->edges[a->gedges[k]];
        if (!seg_meets_rect(g, x0, y0, x1, y1) || on_seam(g, seams)) continue;
        (*seen)++;
        if (!edge_cancelled(u, a, a->gedges[k])) return 0;
      }
    }
  }
  return 1;
}

/* 1 if no edge of any member comes within CL_REGION_EPS_DEG of the point,
 * so that ray casting decides it exactly. */
static int point_clear(const cl_region_union *u, double px, double py) {
  double x0 = px - CL_REGION_EPS_DEG, x1 = px + CL_REGION_EPS_DEG;
  double y0 = py - CL_REGION_EPS_DEG, y1 = py + CL_REGION_EPS_DEG;
  for (size_t j = 0; j < u->n; j++) {
    const cl_region *a = u->members[j];
    if (x1 < a->bx0 || x0 > a->bx1 || y1 < a->by0 || y0 > a->by1) continue;
    int ix1 = grid_ix(a, x1), iy1 = grid_iy(a, y1);
    for (int iy = grid_iy(a, y0); iy <= iy1; iy++)
      for (int ix = grid_ix(a, x0); ix <= ix1; ix++) {
        size_t b = (size_t)ix + (size_t)iy * (size_t)a->gx;
        for (size_t k = a->goff[b]; k < a->goff[b + 1]; k++)
          if (seg_meets_rect(&a->edges[a->gedges[k]], x0, y0, x1, y1)) return 0;
      }
  }
  return 1;
}

/*
 * The rectangle is BOUNDARY for some member and INSIDE for none. The
 * union's border is made of member edges, less those it has on both sides
 * (edge_cancelled). When every member edge that meets the grown rectangle
 * is cancelled, the border does not meet it (at a vertex every edge through
 * it is cancelled too, so each angle between them is in the union): the
 * rectangle lies in the union or out of it as a whole, and in it, since a
 * cancelled edge meets it. Two points at least CL_REGION_EPS_DEG from every
 * edge confirm that; anything else stays BOUNDARY.
 */
static cl_rect_class union_shared(const cl_region_union *u, double lon0, double lat0, double lon1,
                                  double lat1) {
  if (!(lon0 <= lon1) || !(lat0 <= lat1) || !isfinite(lon0) || !isfinite(lon1) ||
      !isfinite(lat0) || !isfinite(lat1))
    return CL_RECT_BOUNDARY;
  for (size_t j = 0; j < u->n; j++)
    if (!u->members[j]->finished) return CL_RECT_BOUNDARY;
  double x0 = lon0 - CL_REGION_EPS_DEG, x1 = lon1 + CL_REGION_EPS_DEG;
  double y0 = lat0 - CL_REGION_EPS_DEG, y1 = lat1 + CL_REGION_EPS_DEG;
  unsigned seams = seams_to_ignore(lon0, lat0, lon1, lat1);
  size_t seen = 0;
  for (size_t j = 0; j < u->n; j++)
    if (!rect_edges_cancelled(u, u->members[j], x0, y0, x1, y1, seams, &seen))
      return CL_RECT_BOUNDARY;
  if (seen == 0) return CL_RECT_BOUNDARY;
  /* Fractions of the rectangle that simple data (halves, quarters) rarely
   * puts an edge on. */
  static const double probe[][2] = {{0.5, 0.5},
                                    {0.381966, 0.618034},
                                    {0.618034, 0.381966},
                                    {0.236068, 0.236068},
                                    {0.763932, 0.763932}};
  int clear = 0;
  for (size_t k = 0; k < sizeof probe / sizeof probe[0] && clear < 2; k++) {
    double px = lon0 + (lon1 - lon0) * probe[k][0], py = lat0 + (lat1 - lat0) * probe[k][1];
    if (!point_clear(u, px, py)) continue;
    if (!cl_region_union_contains(u, px, py)) return CL_RECT_BOUNDARY;
    clear++;
  }
  return clear == 2 ? CL_RECT_INSIDE : CL_RECT_BOUNDARY;
}

/* 1 if a bucket that the grown rectangle meets lists an edge that r holds
 * more than once (the rectangle is valid: r has it BOUNDARY). */
static int dups_near(const cl_region *r, double lon0, double lat0, double lon1, double lat1) {
  if (!r->dsum) return 0;
  int ix0 = grid_ix(r, lon0 - CL_REGION_EPS_DEG), ix1 = grid_ix(r, lon1 + CL_REGION_EPS_DEG);
  int iy0 = grid_iy(r, lat0 - CL_REGION_EPS_DEG), iy1 = grid_iy(r, lat1 + CL_REGION_EPS_DEG);
  size_t stride = (size_t)r->gx + 1;
  return r->dsum[(size_t)(iy1 + 1) * stride + (size_t)ix1 + 1] -
             r->dsum[(size_t)iy0 * stride + (size_t)ix1 + 1] -
             r->dsum[(size_t)(iy1 + 1) * stride + (size_t)ix0] +
             r->dsum[(size_t)iy0 * stride + (size_t)ix0] !=
         0;
}

cl_rect_class cl_region_union_classify_rect(const cl_region_union *u, double lon0, double lat0,
                                            double lon1, double lat1) {
  if (!u) return CL_RECT_BOUNDARY;
  size_t boundary = 0;
  int dup = 0;
  for (size_t i = 0; i < u->n; i++) {
    if (!u->members[i]) return CL_RECT_BOUNDARY;
    cl_rect_class c = cl_region_classify_rect(u->members[i], lon0, lat0, lon1, lat1);
    if (c == CL_RECT_INSIDE) return CL_RECT_INSIDE;
    if (c == CL_RECT_BOUNDARY) {
      boundary++;
      dup |= dups_near(u->members[i], lon0, lat0, lon1, lat1);
    }
  }
  if (boundary == 0) return CL_RECT_OUTSIDE;
  /* An edge is cancelled by a copy in another member, which meets the
   * rectangle too (so is BOUNDARY there), and rarely otherwise: a member
   * holding no edge twice near the rectangle is taken to be a border
   * wherever it is BOUNDARY. */
  if (boundary < 2 && !dup) return CL_RECT_BOUNDARY;
  return union_shared(u, lon0, lat0, lon1, lat1);
}

/* ---- export ---------------------------------------------------------------- */

typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (grow((void **)&b->p, &b->cap, b->len + n + 1, 1) != CL_OK) {
    b->oom = 1;
    return;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

/* The shortest %g form that reads back as the same double. */
static void sb_num(sbuf *b, double v) {
  char t[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(t, sizeof t, "%.*g", prec, v);
    if (strtod(t, NULL) == v) break;
  }
  sb_put(b, t, strlen(t));
}

int cl_region_to_geojson(const cl_region *r, char **out, size_t *len) {
  if (!r || !r->finished || !out) return CL_EINVAL;
  *out = NULL;
  sbuf b = {0};
  sb_put(&b, "{\"type\":\"MultiPolygon\",\"coordinates\":[", 38);
  for (size_t i = 0; i < r->nrings; i++) {
    const ring *g = &r->rings[i];
    int first_of_poly = i == 0 || r->rings[i - 1].dense != g->dense;
    int last_of_poly = i + 1 == r->nrings || r->rings[i + 1].dense != g->dense;
    if (first_of_poly) sb_put(&b, i == 0 ? "[" : ",[", i == 0 ? 1 : 2);
    if (!first_of_poly) sb_put(&b, ",", 1);
    sb_put(&b, "[", 1);
    /* RFC 7946 rings are closed: repeat the first vertex. */
    for (size_t j = 0; j <= g->n; j++) {
      const double *p = r->pts + 2 * (g->start + (j == g->n ? 0 : j));
      sb_put(&b, j == 0 ? "[" : ",[", j == 0 ? 1 : 2);
      sb_num(&b, p[0]);
      sb_put(&b, ",", 1);
      sb_num(&b, p[1]);
      sb_put(&b, "]", 1);
    }
    sb_put(&b, "]", 1);
    if (last_of_poly) sb_put(&b, "]", 1);
  }
  sb_put(&b, "]}", 2);
  if (b.oom) {
    free(b.p);
    return CL_ENOMEM;
  }
  *out = b.p;
  if (len) *len = b.len;
  return CL_OK;
}

/* ---- digest ---------------------------------------------------------------- */

static void hash_be32(crypto_hash_sha256_state *st, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  crypto_hash_sha256_update(st, b, sizeof b);
}

/* The IEEE-754 bits of v, big-endian. */
static void hash_double(crypto_hash_sha256_state *st, double v) {
  uint8_t b[8];
  cl_put_be64_double(b, v);
  crypto_hash_sha256_update(st, b, sizeof b);
}

int cl_region_digest(const cl_region *r, uint8_t out[CL_REGION_DIGEST_LEN]) {
  if (!r || !out || !r->finished) return CL_EINVAL;
  _Static_assert(crypto_hash_sha256_BYTES == CL_REGION_DIGEST_LEN, "a SHA-256");
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, (const uint8_t *)CL_CTX_REGION_GEOMETRY,
                            sizeof CL_CTX_REGION_GEOMETRY);
  /* Rings are sorted by dense polygon number (number_polygons): a polygon's
   * rings are consecutive, and every number 0..npoly-1 has at least one. */
  hash_be32(&st, r->npoly);
  for (size_t i = 0; i < r->nrings;) {
    size_t j = i;
    while (j < r->nrings && r->rings[j].dense == r->rings[i].dense) j++;
    hash_be32(&st, (uint32_t)(j - i));
    for (; i < j; i++) {
      const ring *g = &r->rings[i];
      hash_be32(&st, (uint32_t)g->n);
      const double *p = r->pts + 2 * g->start;
      for (size_t k = 0; k < g->n; k++) {
        hash_double(&st, p[2 * k]);
        hash_double(&st, p[2 * k + 1]);
      }
    }
  }
  crypto_hash_sha256_final(&st, out);
  return CL_OK;
}

/* ---- sets ---------------------------------------------------------------- */

static int cmp_code(const void *key, const void *elem) {
  return strcmp((const char *)key, cl_region_code(*(cl_region *const *)elem));
}

cl_region *cl_region_set_find(const cl_region_set *s, const char *code) {
  if (!s || !code || s->n == 0) return NULL;
  cl_region **hit = bsearch(code, s->regions, s->n, sizeof *s->regions, cmp_code);
  return hit ? *hit : NULL;
}

void cl_region_set_free(cl_region_set *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n; i++) cl_region_destroy(&s->regions[i]);
  free(s->regions);
  s->regions = NULL;
  s->n = 0;
}
