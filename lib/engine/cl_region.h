/*
 * Allowed regions: unions of polygons with holes, as GeoJSON defines them
 * (RFC 7946): coordinates are longitude/latitude degrees on WGS84 and every
 * edge is a straight line in that longitude/latitude plane. Polygons that
 * cross the antimeridian must be split there, as RFC 7946 asks; an edge is
 * never taken to wrap around. Membership is even-odd over all rings of a
 * polygon (outer ring minus holes), union over polygons.
 *
 * All tests are planar in (lon, lat) and conservative: a rectangle that comes
 * within CL_REGION_EPS_DEG of an edge is reported as BOUNDARY, never INSIDE or
 * OUTSIDE. The location engine relies on that for its soundness. Edges lying
 * on longitude -180 or 180 or on latitude -90 or 90 are seams of the plane,
 * not borders on the sphere: a rectangle within [-180, 180] x [-90, 90] that
 * only touches such an edge is classified by the rest of the region (a
 * region split at the antimeridian is INSIDE on both sides of the cut).
 */
#ifndef CL_REGION_H
#define CL_REGION_H

#include <stddef.h>
#include <stdint.h>

#define CL_REGION_EPS_DEG 1e-9
/* Length of a geometry digest: a SHA-256, the CL_HASH_LEN of attestations. */
#define CL_REGION_DIGEST_LEN 32
/* Context of the geometry digest (one NUL follows it in the hashed bytes). */
#define CL_CTX_REGION_GEOMETRY "chiploc v2 geometry"

typedef struct cl_region cl_region;

typedef enum {
  CL_RECT_OUTSIDE = 0,  /* no point of the rectangle is in the region */
  CL_RECT_INSIDE = 1,   /* every point of the rectangle is in the region */
  CL_RECT_BOUNDARY = 2, /* an edge of the region meets the (slightly grown) rectangle */
} cl_rect_class;

/* An empty region; add rings with cl_region_add_ring, then cl_region_finish. */
int cl_region_create(cl_region **out, const char *code);
/*
 * Adds one ring of polygon `polygon` (rings of the same polygon share the
 * number; the first ring is the outer one). lonlat holds n pairs (lon, lat);
 * a closing point equal to the first is optional. Errors: CL_EINVAL for fewer
 * than 3 distinct points or coordinates out of range/not finite.
 */
int cl_region_add_ring(cl_region *r, int polygon, const double *lonlat, size_t n);
/* Builds the search indexes. Must be called once after the last ring. */
int cl_region_finish(cl_region *r);
void cl_region_destroy(cl_region **r);

const char *cl_region_code(const cl_region *r);
/* Bounding box of all rings, degrees. */
void cl_region_bbox(const cl_region *r, double *lon0, double *lat0, double *lon1, double *lat1);
size_t cl_region_vertex_count(const cl_region *r);
/*
 * The region as a GeoJSON MultiPolygon geometry (one polygon per polygon
 * number, in increasing order; closed rings; numbers that read back
 * exactly). *out is malloc'd and NUL-terminated; *len (may be NULL) gets its
 * length. CL_EINVAL before cl_region_finish, CL_ENOMEM.
 */
int cl_region_to_geojson(const cl_region *r, char **out, size_t *len);
/*
 * The geometry digest that version-2 attestations sign (docs/ATTESTATION.md):
 * SHA-256 over the polygons, rings and vertices exactly as the region holds
 * them after cl_region_finish (closing points and consecutive repeats
 * dropped, polygons in increasing order of their numbers, rings of a polygon
 * in the order they were added):
 *
 *   "chiploc v2 geometry" NUL || be32 polygon count ||
 *   per polygon: be32 ring count ||
 *     per ring: be32 vertex count || per vertex be64(bits of lon) || be64(bits of lat)
 *
 * The code is not part of it. Returns 0, or CL_EINVAL (NULL, or not finished).
 */
int cl_region_digest(const cl_region *r, uint8_t out[CL_REGION_DIGEST_LEN]);

/* 1 if (lon, lat) is in the region (points on an edge may go either way). */
int cl_region_contains(const cl_region *r, double lon, double lat);
/* Classifies the closed rectangle [lon0, lon1] x [lat0, lat1]. */
cl_rect_class cl_region_classify_rect(const cl_region *r, double lon0, double lat0, double lon1,
                                      double lat1);

/*
 * A set of regions, sorted by code (lookups are binary searches). Loaded
 * from GeoJSON by cl_region_geojson.h; freed with cl_region_set_free.
 */
typedef struct {
  cl_region **regions;
  size_t n;
} cl_region_set;

/* The region with this code, or NULL. */
cl_region *cl_region_set_find(const cl_region_set *s, const char *code);
void cl_region_set_free(cl_region_set *s);

/*
 * A union of regions treated as one allowed area (e.g. --allowed FRA,DEU).
 * Holds borrowed pointers. Classification of a rectangle: INSIDE if some
 * member region has it INSIDE; OUTSIDE if all have it OUTSIDE. Otherwise
 * the union's own border decides: it is made of the members' edges less
 * those the union has on both sides, namely edges that two members (or two
 * polygons of one) hold exactly, same endpoints in either order, with the
 * union on both sides all along (neighbouring countries, an enclave filling
 * a hole). When every edge that meets the grown rectangle is such an edge,
 * and two points of it away from all edges are in the union, the answer is
 * INSIDE; else BOUNDARY. Edges that do not match exactly (a vertex more on
 * one side, a gap however narrow) stay borders. The sides of an edge are
 * worked out when a query first needs them and kept in the region: the
 * queries stay safe to run from several threads at once.
 */
typedef struct {
  const cl_region *const *members;
  size_t n;
} cl_region_union;

int cl_region_union_contains(const cl_region_union *u, double lon, double lat);
cl_rect_class cl_region_union_classify_rect(const cl_region_union *u, double lon0, double lat0,
                                            double lon1, double lat1);

#endif
