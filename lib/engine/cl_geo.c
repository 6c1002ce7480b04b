/*
 * The location engine (see cl_geo.h for the geometry and why it is sound).
 *
 * F is covered by longitude/latitude cells, refined level by level from a
 * 22.5-degree grid. For a cell with centre c and angular radius bound rho
 * (every point of the cell lies within rho of c), a cap of bound r is tested
 * on the normal sphere against angles r / (b^2/a) (outside it: dropped) and
 * r / (a^2/b) (inside it: inside the cap), on dot products with a tolerance
 * that only ever makes a test harder to pass; between the two, against the
 * cap's own bracket of the radii of curvature, and for small cells against
 * an exact geodesic to c (cap_test). A cell is dropped only when it is
 * outside some cap, so the kept cells cover F.
 *
 * rho: any point (phi, lambda) of a cell is reached from the centre by a
 * meridian arc of at most dphi/2 and then an arc of the parallel at phi of
 * at most cos(phi) * dlambda/2, and cos(phi) <= cos(phi_min), phi_min the
 * cell latitude closest to the equator. So rho = dphi/2 + cos(phi_min) *
 * dlambda/2 bounds the angle (the great circle is no longer than any path).
 */
#include "cl_geo.h"
#include "cl_err.h"

#include <errno.h>
#include <float.h>
#include <geodesic.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define D2R (M_PI / 180.0)
#define R2D (180.0 / M_PI)
#define DOT_EPS 1e-12  /* slack on dot-product comparisons, always conservative */
#define MAX_LEVEL 40   /* a cap on splits (some halve one side only); min_cell_km stops far earlier */
#define SITE_TOL_M 0.01 /* PROJ geodesics are accurate to nanometres */
#define GEO_TOL_M 1e-6  /* rounding allowance on a cell's radius in metres */
#define REGION_FLOOR 16 /* cells near a border are refined to min_cell_km / 16 */
#define RADIUS_FLOOR 8  /* and cells on F's far rim to min_cell_km / 8 */
#define RADIUS_SLACK 0.025 /* the radius is refined to within 2.5 % of F's true reach */
#define POST_CELL_BUDGET 200000 /* new cells the two refinements may add */
#define REMOVAL_BUDGET 40000 /* candidate subsets examined */
#define SOLVE_COST 100       /* budget one emptiness test costs */

/* Radii of curvature bounds of WGS84: b^2/a and a^2/b. */
static double geo_b(void) { return CL_WGS84_A * (1.0 - CL_WGS84_F); }
static double r_min(void) { return geo_b() * geo_b() / CL_WGS84_A; }
static double r_max(void) { return CL_WGS84_A * CL_WGS84_A / geo_b(); }

static struct geod_geodesic g_geod;
static pthread_once_t g_geod_once = PTHREAD_ONCE_INIT;
static void geod_setup(void) { geod_init(&g_geod, CL_WGS84_A, CL_WGS84_F); }

int cl_geo_parse_position(const char *text, double *lat, double *lon) {
  const char *comma = strchr(text, ',');
  if (!comma || text[0] == ' ' || comma[1] == ' ') return CL_EMALFORMED;
  char *end = NULL;
  errno = 0;
  double la = strtod(text, &end);
  if (errno || end == text || end != comma) return CL_EMALFORMED;
  const char *t2 = comma + 1;
  double lo = strtod(t2, &end);
  if (errno || end == t2 || *end != '\0') return CL_EMALFORMED;
  if (!isfinite(la) || !isfinite(lo) || fabs(la) > 90 || fabs(lo) > 180) return CL_EMALFORMED;
  *lat = la;
  *lon = lo;
  return CL_OK;
}

double cl_geo_distance_m(double lat1, double lon1, double lat2, double lon2) {
  pthread_once(&g_geod_once, geod_setup);
  double s12 = 0;
  geod_inverse(&g_geod, lat1, lon1, lat2, lon2, &s12, NULL, NULL);
  return s12;
}

double cl_geo_path_m(double rtt_s, double speed_m_per_s) {
  return speed_m_per_s * rtt_s * (1.0 + CL_CLOCK_RATE_MARGIN) / 2.0;
}

/*
 * A minimising geodesic of length L is, as a space curve, bent by its normal
 * curvature only, which is at most 1/R with R = b^2/a. By Schur's comparison
 * theorem its chord d is then at least the chord of a circular arc of
 * radius R and the same length, 2R sin(L / 2R), for L up to 2 pi R. Every
 * geodesic is at most L_max = pi a^2/b (the normal-sphere bracket), and
 * L_max / 2R is between pi/2 and pi, so a geodesic longer than pi R has a
 * chord of at least d_star = 2R sin(L_max / 2R): below d_star, L <= pi R
 * and hence L <= 2R asin(d / 2R). From d_star on, any geodesic fits. The
 * result is inflated by a few units in the last place for rounding.
 */
double cl_geo_cap_of_path_m(double path_m) {
  if (!(path_m > 0) || !isfinite(path_m)) return path_m;
  double R = r_min(), l_max = M_PI * r_max();
  double d_star = 2.0 * R * sin(l_max / (2.0 * R)) * (1.0 - 1e-12); /* rounding: lower is safe */
  if (path_m >= d_star) return fmax(l_max, path_m);
  return 2.0 * R * asin(path_m / (2.0 * R)) * (1.0 + 4.0 * DBL_EPSILON);
}

double cl_geo_bound_m(double rtt_s, double speed_m_per_s) {
  return cl_geo_cap_of_path_m(cl_geo_path_m(rtt_s, speed_m_per_s));
}

void cl_geo_params_default(cl_geo_params *p) {
  p->min_landmarks = 3;
  p->min_cell_km = 1.0;
  p->rel_precision = 0.05;
}

const char *cl_geo_consistency_name(cl_geo_consistency c) {
  switch (c) {
  case CL_GEO_CONSISTENT: return "CONSISTENT";
  case CL_GEO_INSUFFICIENT: return "INSUFFICIENT";
  case CL_GEO_INCONSISTENT: return "INCONSISTENT";
  }
  return "?";
}

const char *cl_geo_site_name(cl_geo_site_verdict v) {
  switch (v) {
  case CL_SITE_UNKNOWN: return "UNKNOWN";
  case CL_SITE_CONSISTENT: return "SITE_CONSISTENT";
  case CL_SITE_EXCLUDED: return "SITE_EXCLUDED";
  }
  return "?";
}

const char *cl_geo_region_name(cl_geo_region_verdict v) {
  switch (v) {
  case CL_REGION_UNKNOWN: return "UNKNOWN";
  case CL_REGION_INSIDE: return "INSIDE";
  case CL_REGION_OUTSIDE: return "OUTSIDE";
  case CL_REGION_UNDETERMINED: return "UNDETERMINED";
  }
  return "?";
}

typedef struct {
  double x, y, z;
  double alpha, cosa, sina;    /* outer angle r / (b^2/a): a cell outside it is outside the cap */
  double alpha_in, cosi, sini; /* inner angle r / (a^2/b): a cell inside it is inside the cap */
  double alpha_o2, coso2, sino2; /* the outer and inner angles from the radii of curvature */
  double alpha_i2, cosi2, sini2; /* where the cap's edge runs (cap_brackets) */
  double band_m;                 /* what those two leave open, in metres of bound */
  double lat, lon, r_m;        /* the landmark (degrees) and the bound (metres) */
  size_t idx;                  /* index into the caller's landmark array */
} cap;

typedef struct {
  double lat0, lat1, lon0, lon1; /* degrees */
  double x, y, z, rho;           /* centre unit vector, angular radius bound */
  double cos_lat;                /* cosine of the centre latitude (area weight) */
  double slon, clon;             /* sine and cosine of the centre longitude */
  double cpm;                    /* cos(phi_min) */
  double cr, sr;                 /* cos(rho), sin(rho) */
  double reach;                  /* exact_radius: an upper bound of its reach, or -1 */
  uint64_t inside;               /* bit i: inside cap i (the first 64 caps) */
  uint8_t certain;               /* inside every cap */
  uint8_t centre_in;             /* its centre is inside every cap (a point of F) */
  int8_t rclass;                 /* cl_rect_class, or -1 if not classified */
  uint8_t level;
  uint8_t latj, lonj; /* the latitude span is 22.5 / 2^latj degrees, longitude 22.5 / 2^lonj */
} wcell;

typedef struct {
  wcell *v;
  size_t n, cap;
} cellvec;

#define BASE_ROWS 8
#define BASE_COLS 16

/* Halvings of a span the table below covers: each split halves at least one
 * span and there are at most MAX_LEVEL splits. */
#define MAX_SPLITS (MAX_LEVEL + 1)

struct cl_geo_ctx {
  cellvec cur, next, fin;
  wcell base[BASE_ROWS * BASE_COLS]; /* the 22.5-degree grid, geometry filled once */
  /* cos and sin of half a span of 22.5 / 2^j degrees (a cell's centre to its
   * edge), for j = 0 .. MAX_SPLITS. */
  double half_cos[MAX_SPLITS + 1], half_sin[MAX_SPLITS + 1];
  cap *caps;
  size_t caps_cap;
  struct place *places; /* count_places' scratch, caps_cap of them */
  cl_geo_cell *out;
  size_t out_cap;
};

/* Makes room for k more cells. */
static inline int cv_reserve(cellvec *cv, size_t k) {
  if (cv->n + k > cv->cap) {
    size_t ncap = cv->cap ? cv->cap * 2 : 256;
    while (ncap < cv->n + k) ncap *= 2;
    wcell *nv = realloc(cv->v, ncap * sizeof *nv);
    if (!nv) return CL_ENOMEM;
    cv->v = nv;
    cv->cap = ncap;
  }
  return CL_OK;
}

static inline int cv_push(cellvec *cv, const wcell *c) {
  if (cv_reserve(cv, 1)) return CL_ENOMEM;
  cv->v[cv->n++] = *c;
  return CL_OK;
}


static void unit_vec(double lat_deg, double lon_deg, double *x, double *y, double *z) {
  double phi = lat_deg * D2R, lam = lon_deg * D2R;
  double cp = cos(phi);
  *x = cp * cos(lam);
  *y = cp * sin(lam);
  *z = sin(phi);
}

static double angle_between(double ax, double ay, double az, double bx, double by, double bz) {
  /* atan2 of |a x b| and a.b is accurate at every angle. */
  double cx = ay * bz - az * by, cy = az * bx - ax * bz, cz = ax * by - ay * bx;
  return atan2(sqrt(cx * cx + cy * cy + cz * cz), ax * bx + ay * by + az * bz);
}

/* Latitude closest to the equator of [lat0, lat1], radians. */
static inline double phi_min(double lat0, double lat1) {
  return (lat0 <= 0 && lat1 >= 0) ? 0 : fmin(fabs(lat0), fabs(lat1)) * D2R;
}

/* Sets rho from the bounds and cos(phi_min), and its cosine and sine. */
static inline void cell_rho(wcell *c, double cos_phimin) {
  double dphi = (c->lat1 - c->lat0) * D2R / 2;
  double dlam = (c->lon1 - c->lon0) * D2R / 2;
  double rho = dphi + cos_phimin * dlam;
  c->rho = rho * (1 + 1e-9) + 1e-12;
}

/*
 * cos(x) and sin(x) for 0 <= x <= 0.5 (a child cell's rho; base cells use
 * libm): Taylor series to x^16 and x^15, whose remainders are below 1e-20,
 * summed by Horner's rule in x^2, a few units in the last place from the
 * exact values, far inside the DOT_EPS the tests add. Larger x go to libm.
 */
static inline void small_cos_sin(double x, double *c, double *s) {
  if (!(x <= 0.5)) {
    *c = cos(x);
    *s = sin(x);
    return;
  }
  double x2 = x * x;
  *c = 1 + x2 * (-1.0 / 2 + x2 * (1.0 / 24 + x2 * (-1.0 / 720 + x2 * (1.0 / 40320 +
       x2 * (-1.0 / 3628800 + x2 * (1.0 / 479001600 + x2 * (-1.0 / 87178291200.0 +
       x2 * (1.0 / 20922789888000.0))))))));
  *s = x * (1 + x2 * (-1.0 / 6 + x2 * (1.0 / 120 + x2 * (-1.0 / 5040 + x2 * (1.0 / 362880 +
       x2 * (-1.0 / 39916800 + x2 * (1.0 / 6227020800.0 + x2 * (-1.0 / 1307674368000.0))))))));
}

/* Fills the centre and rho of a base cell from its bounds. */
static void cell_geometry(wcell *c) {
  double phi = (c->lat0 + c->lat1) / 2 * D2R, lam = (c->lon0 + c->lon1) / 2 * D2R;
  c->cos_lat = cos(phi);
  c->slon = sin(lam);
  c->clon = cos(lam);
  c->x = c->cos_lat * c->clon;
  c->y = c->cos_lat * c->slon;
  c->z = sin(phi);
  c->cpm = cos(phi_min(c->lat0, c->lat1));
  cell_rho(c, c->cpm);
  c->cr = cos(c->rho);
  c->sr = sin(c->rho);
}

/*
 * Splits cell p at the latitudes la[0..nlat] and longitudes lo[0..nlon] into
 * out[0 .. nlat * nlon - 1]. A child's centre is its parent's moved by half
 * the child's span, so its sines and cosines follow from the parent's by the
 * angle-sum formulas with the tabled cos/sin of that half span, and so does
 * cos(phi_min) (phi_min is the child's centre latitude less half its span,
 * in absolute value). Each value carries a few units of rounding in the last
 * place per level (at most MAX_LEVEL levels: of the order of 1e-14), which the
 * inflation of rho and DOT_EPS absorb many times over. Children in one row
 * share rho, so its cosine and sine are computed once per row.
 */
static void split_geometry(const cl_geo_ctx *ctx, const wcell *p, const double *la, int nlat,
                           const double *lo, int nlon, wcell *out) {
  double slat[2], clat[2], cpm[2], slon[2], clon[2];
  uint8_t latj = (uint8_t)(p->latj + (nlat == 2)), lonj = (uint8_t)(p->lonj + (nlon == 2));
  if (nlat == 2) {
    double hc = ctx->half_cos[latj], hs = ctx->half_sin[latj];
    double pz = p->z, pc = p->cos_lat;
    slat[0] = pz * hc - pc * hs, clat[0] = pc * hc + pz * hs; /* centre - h */
    slat[1] = pz * hc + pc * hs, clat[1] = pc * hc - pz * hs; /* centre + h */
    for (int a = 0; a < 2; a++)
      cpm[a] = (la[a] <= 0 && la[a + 1] >= 0) ? 1.0 : clat[a] * hc + fabs(slat[a]) * hs;
  } else {
    slat[0] = p->z, clat[0] = p->cos_lat, cpm[0] = p->cpm;
  }
  if (nlon == 2) {
    double hc = ctx->half_cos[lonj], hs = ctx->half_sin[lonj];
    double ps = p->slon, pc = p->clon;
    slon[0] = ps * hc - pc * hs, clon[0] = pc * hc + ps * hs;
    slon[1] = ps * hc + pc * hs, clon[1] = pc * hc - ps * hs;
  } else {
    slon[0] = p->slon, clon[0] = p->clon;
  }
  double last_rho = -1, last_cr = 0, last_sr = 0;
  for (int a = 0; a < nlat; a++) {
    for (int b = 0; b < nlon; b++) {
      wcell *k = &out[a * nlon + b];
      *k = *p;
      k->lat0 = la[a], k->lat1 = la[a + 1], k->lon0 = lo[b], k->lon1 = lo[b + 1];
      k->level = p->level + 1;
      k->reach = -1;
      k->latj = latj, k->lonj = lonj;
      k->x = clat[a] * clon[b];
      k->y = clat[a] * slon[b];
      k->z = slat[a];
      k->cos_lat = clat[a];
      k->slon = slon[b], k->clon = clon[b];
      k->cpm = cpm[a];
      cell_rho(k, cpm[a]);
      if (k->rho != last_rho) {
        last_rho = k->rho;
        small_cos_sin(k->rho, &last_cr, &last_sr);
      }
      k->cr = last_cr;
      k->sr = last_sr;
    }
  }
}

/*
 * Splits c into out[0 .. 3] and returns how many children it has. Cells are
 * kept roughly square on the ground: near the poles a cell is much narrower
 * east-west than north-south, so only its latitude is split (and only its
 * longitude in the opposite case).
 */
static int split_cell(const cl_geo_ctx *ctx, const wcell *c, wcell *out) {
  double ns = c->lat1 - c->lat0;
  double ew = (c->lon1 - c->lon0) * c->cpm;
  int nlat = ew < ns / 2 ? 2 : (ns < ew / 2 ? 1 : 2);
  int nlon = ns < ew / 2 ? 2 : (ew < ns / 2 ? 1 : 2);
  double lm = (c->lat0 + c->lat1) / 2, om = (c->lon0 + c->lon1) / 2;
  double la[3] = {c->lat0, nlat == 2 ? lm : c->lat1, c->lat1};
  double lo[3] = {c->lon0, nlon == 2 ? om : c->lon1, c->lon1};
  split_geometry(ctx, c, la, nlat, lo, nlon, out);
  return nlat * nlon;
}

int cl_geo_ctx_create(cl_geo_ctx **out) {
  cl_geo_ctx *c = calloc(1, sizeof *c);
  if (!c) return CL_ENOMEM;
  for (int j = 0; j <= MAX_SPLITS; j++) {
    double h = ldexp(22.5 * D2R, -j) / 2;
    c->half_cos[j] = cos(h);
    c->half_sin[j] = sin(h);
  }
  for (int r = 0; r < BASE_ROWS; r++) {
    for (int q = 0; q < BASE_COLS; q++) {
      wcell *b = &c->base[r * BASE_COLS + q];
      *b = (wcell){.lat0 = -90 + 22.5 * r, .lat1 = -90 + 22.5 * (r + 1), .lon0 = -180 + 22.5 * q,
                   .lon1 = -180 + 22.5 * (q + 1), .reach = -1, .rclass = -1, .level = 0};
      cell_geometry(b);
    }
  }
  *out = c;
  return CL_OK;
}

void cl_geo_ctx_destroy(cl_geo_ctx **pc) {
  if (!pc || !*pc) return;
  cl_geo_ctx *c = *pc;
  free(c->cur.v);
  free(c->next.v);
  free(c->fin.v);
  free(c->caps);
  free(c->places);
  free(c->out);
  free(c);
  *pc = NULL;
}

enum { CELL_DROP = 0, CELL_PARTIAL = 1, CELL_CERTAIN = 2 };
/* CAP_PART_C: partly in the cap, and the cell's centre is in it. */
enum { CAP_OUT = 0, CAP_PART = 1, CAP_IN = 2, CAP_PART_C = 3 };

/* Radii of curvature at a latitude given by the square of its sine:
 * M (meridian) and N (prime vertical). Both grow with |latitude|. */
static inline double m_of(double s2) {
  double e2 = CL_WGS84_F * (2 - CL_WGS84_F), w = 1 - e2 * s2;
  return CL_WGS84_A * (1 - e2) / (w * sqrt(w));
}
static inline double n_of(double s2) {
  double e2 = CL_WGS84_F * (2 - CL_WGS84_F);
  return CL_WGS84_A / sqrt(1 - e2 * s2);
}

/*
 * A bracket of the geodesic from a point A (latitude lat_a, |sin| za) to the
 * points of cell c, tighter than [b^2/a, a^2/b] theta: on the ellipsoid
 * ds^2 = M^2 dphi^2 + N^2 cos^2(phi) dlambda^2 and M <= N, so M dtheta <= ds
 * <= N dtheta along any path (theta the angle on the sphere of normals).
 * - The geodesic's image on the normal sphere is no shorter than theta, and
 *   when A and the cell lie in one closed hemisphere the geodesic never comes
 *   nearer the equator than the nearer of its ends (on Bessel's auxiliary
 *   sphere it is a minor great-circle arc, whose points are normalised
 *   convex combinations of its ends, so |z| >= the smaller end's |z|): s >=
 *   M(phi_lo) theta, phi_lo the nearer of A's latitude and the cell's
 *   latitude closest to the equator (else the equator, M = b^2/a).
 * - The lifted great-circle arc of angle theta from A to a point of the cell
 *   is a path of length at most N(phi_hi) theta, where along a minor arc
 *   |sin(latitude)| <= max(|z| of its ends) / cos(theta / 2) (the chord's
 *   midpoint is the nearest point of the arc to the centre), so s <=
 *   N(phi_hi) theta.
 * theta_hi bounds the angle from A to every point of the cell.
 */
static void local_bracket(double lat_a, double za, const wcell *c, double theta_hi, double *mlo,
                          double *nhi) {
  int same = (lat_a >= 0 && c->lat0 >= 0) || (lat_a <= 0 && c->lat1 <= 0);
  double s2c = 1 - c->cpm * c->cpm; /* sin^2 of the cell's latitude closest to the equator */
  *mlo = same ? m_of(fmin(za * za, s2c)) * (1 - 1e-12) : r_min();
  double smax = sin(fmax(fabs(c->lat0), fabs(c->lat1)) * D2R);
  double half = theta_hi / 2;
  double sh = half < M_PI / 2 ? fmax(za, smax) / cos(half) : 1;
  *nhi = sh >= 1 ? r_max() : fmin(r_max(), n_of(sh * sh) * (1 + 1e-12));
}

/* Cells up to this angular radius get the cap's tighter bracket. */
#define BRACKET_RHO 0.01

/*
 * The cap's own bracket of the radii of curvature (local_bracket, for the
 * whole neighbourhood of its edge at once): every point of a cell of radius
 * up to BRACKET_RHO that is not outside the outer cap lies within A = alpha
 * + 2 BRACKET_RHO of the landmark. When that spherical cap stays in one
 * hemisphere, a geodesic from the landmark to such a point keeps |latitude|
 * >= |lat_L| - A, so s >= M(|lat_L| - A) theta; and when A < pi/2 the cap is
 * convex, so the great-circle arc to the point keeps |latitude| <= |lat_L| +
 * A and s <= N(|lat_L| + A) theta. Otherwise the global radii stand.
 */
static void cap_brackets(cap *k) {
  double A = k->alpha + 2 * BRACKET_RHO, la = fabs(k->lat) * D2R;
  double lo = la - A, hi = la + A;
  double mlo = lo > 0 ? m_of(sin(lo) * sin(lo)) * (1 - 1e-12) : r_min();
  double nhi = A < M_PI / 2 && hi < M_PI / 2 ? n_of(sin(hi) * sin(hi)) * (1 + 1e-12) : r_max();
  k->alpha_o2 = k->r_m / mlo;
  k->alpha_i2 = k->r_m / nhi * (1 - 1e-12);
  k->coso2 = cos(k->alpha_o2), k->sino2 = sin(k->alpha_o2);
  k->cosi2 = cos(k->alpha_i2), k->sini2 = sin(k->alpha_i2);
  k->band_m = k->r_m / mlo * (nhi - mlo);
}

/*
 * Cell c against cap k. On the normal sphere the true cap lies between the
 * caps of angle alpha_in = r / (a^2/b) and alpha = r / (b^2/a): a cell
 * outside the outer one is outside the cap, a cell inside the inner one is
 * inside it. Between the two (a band about 1 % of r wide) the cap's own
 * bracket (cap_brackets) narrows the band to the spread of M and N where
 * the cap's edge runs (0.4 % for a 500 km cap at 50 degrees). What is left
 * of the band, once the cell is narrower than half of it, an exact geodesic
 * from the landmark to the cell's centre decides: every point of the cell is
 * within rho_m = (a^2/b) rho metres of its centre (the path along the
 * meridian, then along the parallel, with both radii of curvature at most
 * a^2/b), so by the triangle inequality the cell is outside the cap when
 * s - rho_m > r and inside when s + rho_m <= r.
 */
static inline int cap_test(const cap *k, const wcell *c) {
  double d = k->x * c->x + k->y * c->y + k->z * c->z;
  if (k->alpha + c->rho < M_PI) {
    double cos_out = k->cosa * c->cr - k->sina * c->sr; /* cos(alpha + rho) */
    if (d < cos_out - DOT_EPS) return CAP_OUT;
  }
  if (c->rho > BRACKET_RHO) {
    double cos_in = k->cosi * c->cr + k->sini * c->sr; /* cos(alpha_in - rho) */
    if (k->alpha_in >= c->rho && d >= cos_in + DOT_EPS) return CAP_IN;
    return d >= k->cosi + DOT_EPS ? CAP_PART_C : CAP_PART;
  }
  if (k->alpha_o2 + c->rho < M_PI && d < k->coso2 * c->cr - k->sino2 * c->sr - DOT_EPS)
    return CAP_OUT;
  if (k->alpha_i2 >= c->rho && d >= k->cosi2 * c->cr + k->sini2 * c->sr + DOT_EPS) return CAP_IN;
  int centre_in = d >= k->cosi2 + DOT_EPS;
  if (2 * c->rho * r_max() < k->band_m) {
    double s = cl_geo_distance_m(k->lat, k->lon, (c->lat0 + c->lat1) / 2, (c->lon0 + c->lon1) / 2);
    double rho_m = c->rho * r_max() * (1 + 1e-9) + GEO_TOL_M;
    if (s - rho_m > k->r_m * (1 + 1e-12)) return CAP_OUT;
    if (s + rho_m <= k->r_m * (1 - 1e-12)) return CAP_IN;
    centre_in |= s + GEO_TOL_M <= k->r_m * (1 - 1e-12);
  }
  return centre_in ? CAP_PART_C : CAP_PART;
}

/*
 * Classifies a cell against every cap (cap_test). A cell inside cap i (bit
 * i of c->inside, for the first 64 caps) is skipped for that cap: its
 * children are subsets of it, so they inherit the bit and are inside the cap
 * too (and hence not outside it). The bits found here are stored in
 * c->inside. A cell inside every cap is CELL_CERTAIN: every point of it is
 * feasible.
 */
static int classify_caps(const cap *caps, size_t n, wcell *c) {
  uint64_t inside = c->inside;
  int all_in = 1, centre_in = 1;
  size_t nbits = n < 64 ? n : 64;
  uint64_t todo = (nbits == 64 ? ~(uint64_t)0 : ((uint64_t)1 << nbits) - 1) & ~inside;
  /* The first 64 caps, smallest first, skipping those the cell is inside. */
  while (todo) {
    int i = __builtin_ctzll(todo);
    todo &= todo - 1;
    int t = cap_test(&caps[i], c);
    if (t == CAP_OUT) return CELL_DROP;
    if (t == CAP_IN) inside |= (uint64_t)1 << i;
    else all_in = 0;
    centre_in &= t != CAP_PART;
  }
  /* Any further caps, without bits. */
  for (size_t i = nbits; i < n; i++) {
    int t = cap_test(&caps[i], c);
    if (t == CAP_OUT) return CELL_DROP;
    if (t != CAP_IN) all_in = 0;
    centre_in &= t != CAP_PART;
  }
  c->inside = inside;
  c->centre_in = (uint8_t)centre_in;
  return all_in ? CELL_CERTAIN : CELL_PARTIAL;
}

static int region_present(const cl_region_union *u) { return u && u->n > 0; }

/*
 * Centre and angular radius of a cap containing every cell of the lists. When
 * the radius is at least `enough`, *radius may be any value in [enough,
 * radius] (the caller keeps only radii below `enough`); pass HUGE_VAL for the
 * exact bound.
 */
static void enclosing_cap(const cellvec *a, const cellvec *b, double enough, double *cx,
                          double *cy, double *cz, double *radius) {
  double sx = 0, sy = 0, sz = 0;
  const cellvec *lists[2] = {a, b};
  for (int l = 0; l < 2; l++) {
    if (!lists[l]) continue;
    for (size_t i = 0; i < lists[l]->n; i++) {
      const wcell *c = &lists[l]->v[i];
      /* Weight by area (proportional to cos(lat) dlat dlon). */
      double w = (c->lat1 - c->lat0) * (c->lon1 - c->lon0) * c->cos_lat;
      sx += w * c->x;
      sy += w * c->y;
      sz += w * c->z;
    }
  }
  double norm = sqrt(sx * sx + sy * sy + sz * sz);
  if (norm < 1e-12) {
    const wcell *c = a->n ? &a->v[0] : &b->v[0];
    sx = c->x, sy = c->y, sz = c->z, norm = 1;
  }
  sx /= norm, sy /= norm, sz /= norm;
  /*
   * r = max over cells of angle(s, c) + rho. The angle is at least the chord
   * h = |s - c| and at most h + h^3 / (24 (1 - h^2 / 4)) (the series of asin
   * has no coefficient above 1/6), so a first pass over chords gives a lower
   * bound lo of r, and only cells whose upper bound reaches lo can hold the
   * maximum: the exact angle is computed for those alone. (The cell that
   * sets lo is never skipped and its exact term is at least lo, so r >= lo.)
   */
  double lo = 0;
  for (int l = 0; l < 2; l++) {
    if (!lists[l]) continue;
    for (size_t i = 0; i < lists[l]->n; i++) {
      const wcell *c = &lists[l]->v[i];
      double dx = sx - c->x, dy = sy - c->y, dz = sz - c->z;
      double t = sqrt(dx * dx + dy * dy + dz * dz) * (1 - 1e-12) + c->rho;
      if (t > lo) lo = t;
    }
  }
  *cx = sx, *cy = sy, *cz = sz;
  if (lo >= enough) {
    *radius = lo;
    return;
  }
  double r = 0;
  for (int l = 0; l < 2; l++) {
    if (!lists[l]) continue;
    for (size_t i = 0; i < lists[l]->n; i++) {
      const wcell *c = &lists[l]->v[i];
      double dx = sx - c->x, dy = sy - c->y, dz = sz - c->z;
      double h2 = dx * dx + dy * dy + dz * dz, h = sqrt(h2);
      double q = 1 - h2 / 4;
      if (q > 0.25 && (h + h * h2 / (24 * q)) * (1 + 1e-12) + 1e-15 + c->rho < lo) continue;
      double t = angle_between(sx, sy, sz, c->x, c->y, c->z) + c->rho;
      if (t > r) r = t;
    }
  }
  *cx = sx, *cy = sy, *cz = sz;
  *radius = r > M_PI ? M_PI : r;
}

typedef struct {
  int empty; /* F provably empty */
} solve_out;

/*
 * Covers F_sphere of the given caps with cells (into ctx->fin). With
 * stop_when_nonempty, returns as soon as a certainly feasible cell is found
 * (for the removal search). Returns 0 or CL_ENOMEM.
 */
static int solve(cl_geo_ctx *ctx, const cap *caps, size_t n, const cl_geo_params *p,
                 const cl_region_union *region, int stop_when_nonempty, solve_out *so) {
  ctx->cur.n = ctx->next.n = ctx->fin.n = 0;
  so->empty = 0;
  double min_rho = p->min_cell_km * 1000.0 / r_max();
  double extent = M_PI;
  for (size_t i = 0; i < n; i++)
    if (caps[i].alpha < extent) extent = caps[i].alpha;
  int want_region = region_present(region);
  int seen_ci = 0, seen_co = 0; /* certain cells inside / outside the region */
  /* Final cells are never dropped or refined again, so once they hold a
   * BOUNDARY cell, or an INSIDE and an OUTSIDE one, the verdict is
   * UNDETERMINED whatever happens to the other cells. */
  int fin_in = 0, fin_out = 0, fin_bd = 0;

  if (cv_reserve(&ctx->cur, BASE_ROWS * BASE_COLS)) return CL_ENOMEM;
  memcpy(ctx->cur.v, ctx->base, sizeof ctx->base);
  ctx->cur.n = BASE_ROWS * BASE_COLS;
  while (ctx->cur.n > 0) {
    /* Classify this level; keep the survivors in place. */
    size_t kept = 0;
    for (size_t i = 0; i < ctx->cur.n; i++) {
      wcell *c = &ctx->cur.v[i];
      if (!c->certain) {
        int st = classify_caps(caps, n, c);
        if (st == CELL_DROP) continue;
        c->certain = st == CELL_CERTAIN;
      }
      if (stop_when_nonempty && c->certain) {
        ctx->cur.n = 0;
        return CL_OK;
      }
      if (want_region && (c->rclass < 0 || c->rclass == CL_RECT_BOUNDARY))
        c->rclass = (int8_t)cl_region_union_classify_rect(region, c->lon0, c->lat0, c->lon1, c->lat1);
      if (c->certain && c->rclass == CL_RECT_INSIDE) seen_ci = 1;
      if (c->certain && c->rclass == CL_RECT_OUTSIDE) seen_co = 1;
      if (kept != i) ctx->cur.v[kept] = *c;
      kept++;
    }
    ctx->cur.n = kept;
    if (kept == 0) break;
    double ex, ey, ez, level_extent;
    /* Only a radius below the current extent changes it. */
    enclosing_cap(&ctx->cur, &ctx->fin, extent, &ex, &ey, &ez, &level_extent);
    if (level_extent < extent) extent = level_extent;
    double f_target = fmax(min_rho, p->rel_precision * extent);
    int region_decided = (seen_ci && seen_co) || fin_bd || (fin_in && fin_out);
    ctx->next.n = 0;
    for (size_t i = 0; i < ctx->cur.n; i++) {
      const wcell *c = &ctx->cur.v[i];
      int refine_f = !c->certain && c->rho > f_target;
      int refine_r = want_region && !region_decided && c->rclass == CL_RECT_BOUNDARY &&
                     c->rho > min_rho;
      if ((refine_f || refine_r) && c->level < MAX_LEVEL) {
        if (cv_reserve(&ctx->next, 4)) return CL_ENOMEM;
        ctx->next.n += (size_t)split_cell(ctx, c, ctx->next.v + ctx->next.n);
      } else {
        if (cv_push(&ctx->fin, c)) return CL_ENOMEM;
        fin_in |= c->rclass == CL_RECT_INSIDE;
        fin_out |= c->rclass == CL_RECT_OUTSIDE;
        fin_bd |= c->rclass == CL_RECT_BOUNDARY;
      }
    }
    cellvec t = ctx->cur;
    ctx->cur = ctx->next;
    ctx->next = t;
  }
  if (ctx->fin.n == 0) {
    so->empty = 1;
    return CL_OK;
  }
  return CL_OK;
}

/* The region verdict of the final cells. */
static cl_geo_region_verdict region_verdict(const cellvec *fin) {
  int any_in = 0, any_out = 0, any_bd = 0;
  for (size_t i = 0; i < fin->n; i++) {
    int rc = fin->v[i].rclass;
    any_in |= rc == CL_RECT_INSIDE;
    any_out |= rc == CL_RECT_OUTSIDE;
    any_bd |= rc == CL_RECT_BOUNDARY;
  }
  if (!any_bd && !any_out) return CL_REGION_INSIDE;
  if (!any_bd && !any_in) return CL_REGION_OUTSIDE;
  return CL_REGION_UNDETERMINED;
}

/*
 * Splits final cell c (split_cell), tests the children against the
 * caps and appends the ones that may hold a feasible point to ctx->next,
 * with their region class (inherited unless BOUNDARY). Returns 0 or
 * CL_ENOMEM.
 */
static int refine_final(cl_geo_ctx *ctx, const cap *caps, size_t n, const cl_region_union *region,
                        const wcell *c) {
  wcell kids[4];
  int nk = split_cell(ctx, c, kids);
  for (int j = 0; j < nk; j++) {
    wcell *k = &kids[j];
    if (!k->certain) {
      int st = classify_caps(caps, n, k);
      if (st == CELL_DROP) continue;
      k->certain = st == CELL_CERTAIN;
    }
    if (region_present(region) && k->rclass == CL_RECT_BOUNDARY)
      k->rclass = (int8_t)cl_region_union_classify_rect(region, k->lon0, k->lat0, k->lon1, k->lat1);
    if (cv_push(&ctx->next, k)) return CL_ENOMEM;
  }
  return CL_OK;
}

/*
 * Refines the final cells with want[i] set (refine_final): ctx->fin becomes
 * the cells left alone, in order, followed by the children kept, of which
 * there are *nnew. Returns 0 or CL_ENOMEM.
 */
static int refine_marked(cl_geo_ctx *ctx, const cap *caps, size_t n,
                         const cl_region_union *region, const uint8_t *want, size_t *nnew) {
  ctx->next.n = 0;
  for (size_t i = 0; i < ctx->fin.n; i++)
    if (want[i] && refine_final(ctx, caps, n, region, &ctx->fin.v[i])) return CL_ENOMEM;
  *nnew = ctx->next.n;
  size_t kept = 0;
  for (size_t i = 0; i < ctx->fin.n; i++)
    if (!want[i]) ctx->fin.v[kept++] = ctx->fin.v[i];
  ctx->fin.n = kept;
  if (cv_reserve(&ctx->fin, ctx->next.n)) return CL_ENOMEM;
  memcpy(ctx->fin.v + ctx->fin.n, ctx->next.v, ctx->next.n * sizeof *ctx->next.v);
  ctx->fin.n += ctx->next.n;
  ctx->next.n = 0;
  return CL_OK;
}

/*
 * When the final cells leave the region verdict open only because of cells
 * that are not proved feasible, refines those (below min_cell_km, down to
 * REGION_FLOOR of it): cells that hold no feasible point are dropped once
 * their children are, and a feasible region a little way from a border then
 * gets its verdict. Certain cells are feasible, so their classes bind the
 * verdict; when they all agree (or there are none) only the cells that
 * disagree with them, or are BOUNDARY, are refined. Stops after
 * POST_CELL_BUDGET new cells. Refining never makes a verdict wrong: every
 * kept cell still covers its part of F.
 */
static int refine_region(cl_geo_ctx *ctx, const cap *caps, size_t n, const cl_geo_params *p,
                         const cl_region_union *region, size_t *budget) {
  double floor_rho = p->min_cell_km * 1000.0 / r_max() / REGION_FLOOR;
  for (int iter = 0; iter < MAX_LEVEL; iter++) {
    if (region_verdict(&ctx->fin) != CL_REGION_UNDETERMINED) return CL_OK;
    int ci = 0, co = 0;
    double area_in = 0, area_out = 0;
    for (size_t i = 0; i < ctx->fin.n; i++) {
      const wcell *c = &ctx->fin.v[i];
      double a = (c->lat1 - c->lat0) * (c->lon1 - c->lon0) * c->cos_lat;
      if (c->rclass == CL_RECT_INSIDE) area_in += a, ci |= c->certain;
      if (c->rclass == CL_RECT_OUTSIDE) area_out += a, co |= c->certain;
    }
    if (ci && co) return CL_OK; /* feasible points on both sides */
    int keep = ci ? CL_RECT_INSIDE : co ? CL_RECT_OUTSIDE
                                        : (area_in >= area_out ? CL_RECT_INSIDE : CL_RECT_OUTSIDE);
    uint8_t *want = calloc(ctx->fin.n ? ctx->fin.n : 1, 1);
    if (!want) return CL_ENOMEM;
    size_t nwant = 0;
    for (size_t i = 0; i < ctx->fin.n; i++) {
      const wcell *c = &ctx->fin.v[i];
      if (c->rclass == keep || c->rho <= floor_rho || c->level >= MAX_LEVEL) continue;
      want[i] = 1;
      nwant++;
    }
    if (nwant == 0 || nwant * 4 > *budget) {
      free(want);
      return CL_OK;
    }
    *budget -= nwant * 4;
    size_t nnew;
    int rc = refine_marked(ctx, caps, n, region, want, &nnew);
    free(want);
    if (rc != CL_OK) return rc;
  }
  return CL_OK;
}

/* Exact geodesic distance from (lat, lon) to the centre of c, in metres. */
static double cell_dist_m(double lat, double lon, const wcell *c) {
  return cl_geo_distance_m(lat, lon, (c->lat0 + c->lat1) / 2, (c->lon0 + c->lon1) / 2);
}

/* Upper bound in metres on the geodesic from the centre (unit vector e, or
 * elat/elon) to any point of c: from the local bracket when that puts it at
 * or below `enough`, or (for a cell that can still be split) puts even its
 * lower end above it; else from the exact geodesic to the cell's centre. */
static double cell_reach_m(double ex, double ey, double ez, double elat, double elon,
                           const wcell *c, double enough, int refinable) {
  double rho_m = c->rho * r_max() * (1 + 1e-9) + GEO_TOL_M;
  double theta = angle_between(ex, ey, ez, c->x, c->y, c->z);
  double up = theta * r_max() * (1 + 1e-12) + GEO_TOL_M;
  if (up + rho_m <= enough) return up + rho_m;
  double mlo, nhi; /* the bracket of the whole cell bounds its centre too */
  local_bracket(elat, fabs(ez), c, (theta + c->rho) * (1 + 1e-9) + 1e-15, &mlo, &nhi);
  up = theta * nhi * (1 + 1e-12) + GEO_TOL_M;
  if (up + rho_m <= enough) return up + rho_m;
  /* Past the target whatever the exact distance: the cell will be split,
   * and its bound replaced by its children's. */
  if (refinable && theta * mlo * (1 - 1e-12) + rho_m > enough) return up + rho_m;
  double s = cell_dist_m(elat, elon, c) * (1 + 1e-12) + GEO_TOL_M;
  return fmin(up, s) + rho_m;
}

/*
 * The radius of F around the centre e, in metres: the largest reach of a
 * final cell (cell_reach_m). While some cell reaches past (1 +
 * RADIUS_SLACK) lb, lb the distance to the farthest cell centre that is a
 * point of F (certain cells, and cells whose centre passed every cap: a
 * lower bound on F's true reach), and is
 * wider than min_cell_km / RADIUS_FLOOR, it is refined: children outside a
 * cap go, the others reach less far. Stops after the budget of new cells.
 */
static int exact_radius(cl_geo_ctx *ctx, const cap *caps, size_t n, const cl_geo_params *p,
                        const cl_region_union *region, double ex, double ey, double ez,
                        size_t *budget, double *radius_m) {
  double elat = atan2(ez, sqrt(ex * ex + ey * ey)) * R2D, elon = atan2(ey, ex) * R2D;
  double floor_rho = p->min_cell_km * 1000.0 / r_max() / RADIUS_FLOOR;
  double lb = 0;
  size_t fresh = 0; /* cells from here on are new since lb was last raised */
  for (int iter = 0;; iter++) {
    /* lb: the farthest centre of a cell whose centre is feasible (exact
     * geodesic, for the centres the bracket cannot rule out). */
    for (size_t i = fresh; i < ctx->fin.n; i++) {
      const wcell *c = &ctx->fin.v[i];
      if (!(c->certain || c->centre_in)) continue;
      if (angle_between(ex, ey, ez, c->x, c->y, c->z) * r_max() <= lb) continue;
      double s = cell_dist_m(elat, elon, c) * (1 - 1e-12);
      if (s > lb) lb = s;
    }
    double enough = lb * (1 + RADIUS_SLACK);
    uint8_t *want = calloc(ctx->fin.n ? ctx->fin.n : 1, 1);
    if (!want) return CL_ENOMEM;
    size_t nwant = 0;
    double r = 0;
    for (size_t i = 0; i < ctx->fin.n; i++) {
      wcell *c = &ctx->fin.v[i];
      /* A reach kept from an earlier pass is still an upper bound: either
       * exact, or one that was within the target then, and the target
       * only grows. */
      int refinable = c->rho > floor_rho && c->level < MAX_LEVEL;
      if (c->reach < 0) c->reach = cell_reach_m(ex, ey, ez, elat, elon, c, enough, refinable);
      if (c->reach > r) r = c->reach;
      if (c->reach > enough && refinable) {
        want[i] = 1;
        nwant++;
      }
    }
    if (nwant == 0 || nwant * 4 > *budget || iter >= MAX_LEVEL) {
      free(want);
      *radius_m = r;
      return CL_OK;
    }
    *budget -= nwant * 4;
    size_t nnew;
    int rc = refine_marked(ctx, caps, n, region, want, &nnew);
    free(want);
    if (rc != CL_OK) return rc;
    fresh = ctx->fin.n - nnew;
  }
}

/* ---- smallest removal set for an inconsistent measurement ---------------- */

typedef struct {
  size_t n;
  const cap *caps;
  size_t (*edges)[2]; /* pairs of caps provably disjoint on the sphere */
  size_t n_edges;
  size_t *degree;     /* conflicts per cap */
  size_t best[CL_GEO_MAX_EXCLUDED];
  size_t nbest;
} removal;

/* Is every conflict edge covered by `chosen`? O(conflicts). */
static int covers(const removal *rm, const uint8_t *chosen) {
  for (size_t e = 0; e < rm->n_edges; e++)
    if (!chosen[rm->edges[e][0]] && !chosen[rm->edges[e][1]]) return 0;
  return 1;
}

/*
 * Tries every k-subset (in lexicographic order) that covers the conflict
 * graph, testing whether F becomes non-empty without it. Returns 1 when one
 * is found (rm->best), 0 when none of size k works, -1 when the budget ran
 * out, or CL_ENOMEM.
 */
static int try_subsets(cl_geo_ctx *ctx, removal *rm, size_t k, const cl_geo_params *p,
                       int *budget, cap *scratch, uint8_t *chosen) {
  size_t idx[CL_GEO_MAX_EXCLUDED];
  if (k > CL_GEO_MAX_EXCLUDED || k >= rm->n) return 0;
  for (size_t i = 0; i < k; i++) idx[i] = i;
  for (;;) {
    /* Every candidate costs budget, covers or not, so that the search is
     * bounded however many landmarks there are. */
    if ((*budget)-- <= 0) return -1;
    for (size_t i = 0; i < k; i++) chosen[idx[i]] = 1;
    int is_cover = covers(rm, chosen);
    for (size_t i = 0; i < k; i++) chosen[idx[i]] = 0;
    if (is_cover) {
      *budget -= SOLVE_COST;
      for (size_t i = 0; i < k; i++) chosen[idx[i]] = 1;
      size_t m = 0;
      for (size_t i = 0; i < rm->n; i++)
        if (!chosen[i]) scratch[m++] = rm->caps[i];
      for (size_t i = 0; i < k; i++) chosen[idx[i]] = 0;
      solve_out so;
      int rc = solve(ctx, scratch, m, p, NULL, 1, &so);
      if (rc != CL_OK) return rc;
      if (!so.empty) {
        rm->nbest = k;
        memcpy(rm->best, idx, k * sizeof idx[0]);
        return 1;
      }
    }
    /* Next combination. */
    size_t i = k;
    while (i > 0 && idx[i - 1] == rm->n - k + i - 1) i--;
    if (i == 0) return 0;
    idx[i - 1]++;
    for (size_t j = i; j < k; j++) idx[j] = idx[j - 1] + 1;
  }
}

/* Greedy fallback: drop the cap with the most conflicts (then the smallest)
 * until F is not provably empty. */
static int greedy_removal(cl_geo_ctx *ctx, removal *rm, const cl_geo_params *p, cap *scratch,
                          uint8_t *chosen) {
  memset(chosen, 0, rm->n);
  rm->nbest = 0;
  while (rm->nbest < CL_GEO_MAX_EXCLUDED && rm->nbest + 1 < rm->n) {
    size_t pick = rm->n, best_deg = 0;
    for (size_t i = 0; i < rm->n; i++) {
      if (chosen[i]) continue;
      size_t deg = 0;
      for (size_t e = 0; e < rm->n_edges; e++) {
        size_t a = rm->edges[e][0], b = rm->edges[e][1];
        if ((a == i && !chosen[b]) || (b == i && !chosen[a])) deg++;
      }
      if (pick == rm->n || deg > best_deg ||
          (deg == best_deg && rm->caps[i].alpha < rm->caps[pick].alpha)) {
        pick = i;
        best_deg = deg;
      }
    }
    chosen[pick] = 1;
    rm->best[rm->nbest++] = pick;
    size_t m = 0;
    for (size_t i = 0; i < rm->n; i++)
      if (!chosen[i]) scratch[m++] = rm->caps[i];
    solve_out so;
    int rc = solve(ctx, scratch, m, p, NULL, 1, &so);
    if (rc != CL_OK) return rc;
    if (!so.empty) return 1;
  }
  return 0;
}

static int find_removal(cl_geo_ctx *ctx, const cap *caps, size_t n, const cl_geo_params *p,
                        cl_geo_result *out) {
  removal rm = {.n = n, .caps = caps};
  cap *scratch = malloc((n ? n : 1) * sizeof *scratch);
  uint8_t *chosen = calloc(n ? n : 1, 1);
  size_t edge_cap = 64;
  rm.edges = malloc(edge_cap * sizeof *rm.edges);
  int rc = CL_ENOMEM;
  if (!rm.edges || !scratch || !chosen) goto done;
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++) {
      double t = angle_between(caps[i].x, caps[i].y, caps[i].z, caps[j].x, caps[j].y, caps[j].z);
      if (t > caps[i].alpha + caps[j].alpha + 1e-9) {
        if (rm.n_edges == edge_cap) {
          size_t (*ne)[2] = realloc(rm.edges, 2 * edge_cap * sizeof *ne);
          if (!ne) goto done;
          rm.edges = ne;
          edge_cap *= 2;
        }
        rm.edges[rm.n_edges][0] = i;
        rm.edges[rm.n_edges][1] = j;
        rm.n_edges++;
      }
    }
  /* Any removal set must cover every pairwise conflict, so sizes below the
   * smallest cover cannot work; subsets that are not covers are skipped. */
  int budget = REMOVAL_BUDGET;
  int found = 0;
  for (size_t k = 1; k <= CL_GEO_MAX_EXCLUDED && k < n && !found; k++) {
    found = try_subsets(ctx, &rm, k, p, &budget, scratch, chosen);
    if (found < 0) break;
  }
  if (found < 0 && found != -1) {
    rc = found;
    goto done;
  }
  out->excluded_minimal = found == 1;
  if (found != 1) {
    int g = greedy_removal(ctx, &rm, p, scratch, chosen);
    if (g < 0) {
      rc = g;
      goto done;
    }
  }
  out->n_excluded = rm.nbest;
  for (size_t i = 0; i < rm.nbest; i++) out->excluded[i] = caps[rm.best[i]].idx;
  rc = CL_OK;
done:
  free(rm.edges);
  free(scratch);
  free(chosen);
  return rc;
}

/* ---- places: colocated landmarks count once -------------------------------- */

struct place {
  double x, y, z; /* unit normal */
  size_t parent;  /* union-find over the sorted array */
};

static int place_cmp_z(const void *a, const void *b) {
  double za = ((const struct place *)a)->z, zb = ((const struct place *)b)->z;
  return (za > zb) - (za < zb);
}

static size_t place_root(struct place *p, size_t i) {
  while (p[i].parent != i) {
    p[i].parent = p[p[i].parent].parent; /* path halving */
    i = p[i].parent;
  }
  return i;
}

/*
 * Number of places among the m usable landmarks in p[0..m-1] (x, y, z set):
 * the connected components of the graph joining two landmarks whose normals
 * are within the angle CL_GEO_SAME_PLACE_M / (b^2/a), which every pair
 * within CL_GEO_SAME_PLACE_M of geodesic is (s >= (b^2/a) theta). Chaining
 * is transitive, so the count never depends on the landmarks' order; it can
 * only err towards fewer places. Sorted by z, a pair whose z differ by more
 * than the chord threshold is too far apart (|dz| <= chord), so each
 * landmark is compared with its neighbours in z only. Reorders p.
 */
static size_t count_places(struct place *p, size_t m) {
  if (m == 0) return 0;
  qsort(p, m, sizeof *p, place_cmp_z);
  double theta = CL_GEO_SAME_PLACE_M / r_min();
  double chord = 2.0 * sin(theta / 2.0) * (1 + 1e-9) + 1e-15;
  double chord2 = chord * chord;
  for (size_t i = 0; i < m; i++) p[i].parent = i;
  size_t places = m;
  for (size_t i = 0; i < m; i++) {
    for (size_t j = i + 1; j < m && p[j].z - p[i].z <= chord; j++) {
      double dx = p[i].x - p[j].x, dy = p[i].y - p[j].y, dz = p[i].z - p[j].z;
      if (dx * dx + dy * dy + dz * dz > chord2) continue;
      size_t a = place_root(p, i), b = place_root(p, j);
      if (a != b) {
        p[a > b ? a : b].parent = a < b ? a : b;
        places--;
      }
    }
  }
  return places;
}

/* ---- entry point ---------------------------------------------------------- */

int cl_geo_locate(cl_geo_ctx *ctx, const cl_geo_landmark *lms, size_t n, const cl_geo_params *p,
                  const double *site_latlon, const cl_region_union *allowed, cl_geo_result *out) {
  memset(out, 0, sizeof *out);
  if (n > CL_GEO_MAX_LANDMARKS) return CL_EINVAL;
  cl_geo_params defaults;
  if (!p) {
    cl_geo_params_default(&defaults);
    p = &defaults;
  }
  if (!(p->min_cell_km >= 0.01 && p->min_cell_km <= 1000) ||
      !(p->rel_precision >= 0.001 && p->rel_precision <= 0.5))
    return CL_EINVAL;
  if (site_latlon && (!isfinite(site_latlon[0]) || !isfinite(site_latlon[1]) ||
                      fabs(site_latlon[0]) > 90 || fabs(site_latlon[1]) > 180))
    return CL_EINVAL;
  if (ctx->caps_cap < n) {
    cap *nc = realloc(ctx->caps, (n ? n : 1) * sizeof *nc);
    if (!nc) return CL_ENOMEM;
    ctx->caps = nc;
    struct place *np = realloc(ctx->places, (n ? n : 1) * sizeof *np);
    if (!np) return CL_ENOMEM;
    ctx->places = np;
    ctx->caps_cap = n;
  }
  size_t ncaps = 0, nused = 0;
  for (size_t i = 0; i < n; i++) {
    const cl_geo_landmark *l = &lms[i];
    if (!isfinite(l->lat) || !isfinite(l->lon) || fabs(l->lat) > 90 || fabs(l->lon) > 180)
      return CL_EINVAL;
    if (!(l->bound_m > 0) || !isfinite(l->bound_m)) continue;
    struct place *pl = &ctx->places[nused++];
    unit_vec(l->lat, l->lon, &pl->x, &pl->y, &pl->z);
    double alpha = l->bound_m / r_min();
    if (alpha >= M_PI) continue; /* covers the whole sphere: no constraint */
    cap *k = &ctx->caps[ncaps++];
    k->x = pl->x, k->y = pl->y, k->z = pl->z;
    k->alpha = alpha;
    k->cosa = cos(alpha);
    k->sina = sin(alpha);
    k->alpha_in = l->bound_m / r_max() * (1 - 1e-12);
    k->cosi = cos(k->alpha_in);
    k->sini = sin(k->alpha_in);
    k->lat = l->lat, k->lon = l->lon, k->r_m = l->bound_m;
    cap_brackets(k);
    k->idx = i;
  }
  /* Witnesses are places, not entries: two entries of one landmark (a key
   * rotation) count once. */
  out->n_usable = count_places(ctx->places, nused);
  out->n_colocated = nused - out->n_usable;
  if (out->n_usable < p->min_landmarks) {
    out->consistency = CL_GEO_INSUFFICIENT;
    return CL_OK;
  }
  /* Smallest caps first: they drop cells soonest. */
  for (size_t i = 1; i < ncaps; i++) {
    cap t = ctx->caps[i];
    size_t j = i;
    for (; j > 0 && ctx->caps[j - 1].alpha > t.alpha; j--) ctx->caps[j] = ctx->caps[j - 1];
    ctx->caps[j] = t;
  }
  solve_out so;
  int rc = solve(ctx, ctx->caps, ncaps, p, allowed, 0, &so);
  if (rc != CL_OK) return rc;
  if (so.empty) {
    out->consistency = CL_GEO_INCONSISTENT;
    /* The removal search reuses the cell buffers: copy the caps first. */
    cap *caps = malloc(ncaps * sizeof *caps);
    if (!caps) return CL_ENOMEM;
    memcpy(caps, ctx->caps, ncaps * sizeof *caps);
    rc = find_removal(ctx, caps, ncaps, p, out);
    free(caps);
    ctx->fin.n = 0;
    return rc;
  }
  out->consistency = CL_GEO_CONSISTENT;
  size_t budget = POST_CELL_BUDGET;
  if (region_present(allowed)) {
    rc = refine_region(ctx, ctx->caps, ncaps, p, allowed, &budget);
    if (rc != CL_OK) return rc;
    out->region = region_verdict(&ctx->fin);
  }

  double cx, cy, cz, radius, radius_m;
  enclosing_cap(&ctx->fin, NULL, HUGE_VAL, &cx, &cy, &cz, &radius);
  out->centre_lat = atan2(cz, sqrt(cx * cx + cy * cy)) * R2D;
  out->centre_lon = atan2(cy, cx) * R2D;
  rc = exact_radius(ctx, ctx->caps, ncaps, p, allowed, cx, cy, cz, &budget, &radius_m);
  if (rc != CL_OK) return rc;
  out->radius_km = fmin(radius * r_max(), radius_m) / 1000.0;
  if (region_present(allowed)) out->region = region_verdict(&ctx->fin);

  if (ctx->out_cap < ctx->fin.n) {
    cl_geo_cell *nc = realloc(ctx->out, ctx->fin.n * sizeof *nc);
    if (!nc) return CL_ENOMEM;
    ctx->out = nc;
    ctx->out_cap = ctx->fin.n;
  }
  for (size_t i = 0; i < ctx->fin.n; i++) {
    const wcell *c = &ctx->fin.v[i];
    ctx->out[i] = (cl_geo_cell){c->lat0, c->lat1, c->lon0, c->lon1, c->certain};
  }
  out->cells = ctx->out;
  out->n_cells = ctx->fin.n;

  if (site_latlon) {
    out->site = CL_SITE_CONSISTENT;
    double worst = 0;
    double px, py, pz;
    unit_vec(site_latlon[0], site_latlon[1], &px, &py, &pz);
    for (size_t i = 0; i < n; i++) {
      const cl_geo_landmark *l = &lms[i];
      if (!(l->bound_m > 0) || !isfinite(l->bound_m)) continue;
      /* s <= (a^2/b) * theta (theta between the normals): when that bound,
       * with a margin far above its rounding, keeps the site within bound +
       * SITE_TOL_M, so does the exact distance, and no geodesic is needed. */
      double lx, ly, lz;
      unit_vec(l->lat, l->lon, &lx, &ly, &lz);
      double theta = angle_between(px, py, pz, lx, ly, lz);
      if (theta * r_max() * (1 + 1e-12) + 1e-6 <= l->bound_m + SITE_TOL_M) continue;
      double s = cl_geo_distance_m(site_latlon[0], site_latlon[1], l->lat, l->lon);
      double excess = s - l->bound_m;
      if (excess > SITE_TOL_M && excess > worst) {
        worst = excess;
        out->site = CL_SITE_EXCLUDED;
        out->site_landmark = i;
        out->site_margin_km = excess / 1000.0;
      }
    }
  }
  return CL_OK;
}
