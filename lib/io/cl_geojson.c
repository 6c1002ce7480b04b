/*
 * GeoJSON pictures of caps, cell covers and points (see cl_geojson.h).
 * Caps are drawn as geodesic circles (PROJ geod_direct) pushed out until
 * every straight lon/lat edge, sampled, stays outside the cap, then split at
 * the antimeridian; caps around a pole are closed along it.
 */
#include "cl_geojson.h"
#include "cl_err.h"

#include <geodesic.h>
#include <math.h>
#include <stdlib.h>

#define CAP_VERTICES CL_GEOJSON_CAP_VERTICES

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

json_t *cl_geojson_cells(const cl_geo_cell *cells, size_t n, size_t *nrects) {
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
  if (nrects)
    *nrects = m;
  return json_pack("{s:s,s:o}", "type", "MultiPolygon", "coordinates", polys);
}

json_t *cl_geojson_feature(json_t *geometry, json_t *props) {
  return json_pack("{s:s,s:o,s:o}", "type", "Feature", "geometry",
                   geometry ? geometry : json_null(), "properties", props);
}

json_t *cl_geojson_point(double lat, double lon) {
  return json_pack("{s:s,s:[ff]}", "type", "Point", "coordinates", lon, lat);
}

json_t *cl_geojson_cap(double lat, double lon, double r_m, const char **outline) {
  struct geod_geodesic g;
  geod_init(&g, CL_WGS84_A, CL_WGS84_F);
  const char *how = "";
  json_t *geom = cap_geometry(&g, lat, lon, r_m, &how);
  if (outline)
    *outline = how;
  return geom;
}

json_t *cl_geojson_collection(json_t *features) {
  if (!features)
    return NULL;
  return json_pack("{s:s,s:o}", "type", "FeatureCollection", "features", features);
}
