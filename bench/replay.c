/*
 * Replay of real landmark data through the location engine, and the engine's
 * speed against a brute-force sampler. Driven by bench/replay.sh, which
 * converts the WonderProxy data into the CSVs of docs/LOCATE.md first.
 *
 *   replay locate --positions P.csv --rtts R.csv [--exclude NAME,...]
 *       Every server not excluded is the chip in turn; the other servers
 *       not excluded are its landmarks (all of them, its nearest 10, its
 *       nearest 5 by RTT), at c and at 2/3 c, with the published position
 *       as the declared site. Prints one Markdown table row per
 *       configuration: chips, SITE_CONSISTENT, INCONSISTENT, INSUFFICIENT,
 *       median and p90 radius_km, median and p90 engine time per chip.
 *       Then the excluded servers as chips (all landmarks, c).
 *
 *   replay sweep --positions P.csv --rtts R.csv [--exclude NAME,...] [--seed N]
 *       Precision against the number of landmarks, at c: every server not
 *       excluded as the chip, with its k nearest landmarks by RTT and with k
 *       landmarks drawn at random (uniformly, without replacement, from
 *       those with an RTT to it; a fixed seed, default 1), for k = 3, 5, 8,
 *       10, 15, 20, 30, 50 and all. Prints one Markdown table row per k and
 *       choice: chips, the share of chips that are CONSISTENT with the site
 *       SITE_CONSISTENT, INCONSISTENT, INSUFFICIENT, median and p90
 *       radius_km (of the CONSISTENT ones) and the median number of
 *       landmarks actually used.
 *
 *   replay speed --positions P.csv --rtts R.csv --countries FILE --chip NAME
 *                --code DEU [--code-property A3] [--exclude NAME,...] [--runs N]
 *                [--brute-runs N]
 *       One chip, its 10 nearest landmarks at c, the declared site and one
 *       country of FILE (its code in the feature property --code-property,
 *       default A3) as the allowed region: the engine's median time over N runs
 *       (default 200) and a brute-force sampler's over --brute-runs (default
 *       5), with both verdicts.
 *
 * RTTs are reduced to the minimum per unordered pair. Engine times are
 * CLOCK_MONOTONIC around cl_geo_locate alone.
 */
#include "cl_csv.h"
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_probe.h"
#include "cl_region.h"
#include "cl_region_geojson.h"

#include <geodesic.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
  cl_csv_position *pos;
  size_t n;
  double *rtt; /* n*n, ms, NAN where unmeasured */
  unsigned char *excluded;
} data;

static void die(const char *msg) {
  fprintf(stderr, "replay: %s\n", msg);
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long find(const data *d, const char *name) {
  for (size_t i = 0; i < d->n; i++)
    if (strcmp(d->pos[i].name, name) == 0)
      return (long)i;
  return -1;
}

static void load(data *d, const char *positions, const char *rtts, const char *exclude) {
  char err[512];
  if (cl_csv_load_positions(positions, &d->pos, &d->n, err, sizeof err) < 0)
    die(err);
  cl_csv_rtt *rt = NULL;
  size_t nrt = 0;
  if (cl_csv_load_rtts(rtts, &rt, &nrt, err, sizeof err) < 0)
    die(err);
  d->rtt = malloc(d->n * d->n * sizeof *d->rtt);
  d->excluded = calloc(d->n, 1);
  if (!d->rtt || !d->excluded)
    die("out of memory");
  for (size_t i = 0; i < d->n * d->n; i++)
    d->rtt[i] = NAN;
  for (size_t k = 0; k < nrt; k++) {
    long a = find(d, rt[k].a), b = find(d, rt[k].b);
    if (a < 0 || b < 0) {
      snprintf(err, sizeof err, "%s:%zu: unknown name", rtts, rt[k].line);
      die(err);
    }
    if (a == b)
      continue;
    double *x = &d->rtt[(size_t)a * d->n + (size_t)b], *y = &d->rtt[(size_t)b * d->n + (size_t)a];
    if (isnan(*x) || rt[k].rtt_ms < *x)
      *x = *y = rt[k].rtt_ms;
  }
  cl_csv_rtts_free(&rt, nrt);
  if (exclude && *exclude) {
    char *copy = strdup(exclude), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      while (*t == ' ')
        t++;
      long i = find(d, t);
      if (i < 0) {
        snprintf(err, sizeof err, "--exclude: unknown name %s", t);
        die(err);
      }
      d->excluded[i] = 1;
    }
    free(copy);
  }
}

typedef struct {
  size_t idx;
  double ms;
} cand;

static int cmp_cand(const void *a, const void *b) {
  double x = ((const cand *)a)->ms, y = ((const cand *)b)->ms;
  return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double pct(const double *v, size_t n, double p) {
  if (n == 0)
    return NAN;
  size_t k = (size_t)ceil(p * (double)n);
  if (k < 1)
    k = 1;
  if (k > n)
    k = n;
  return v[k - 1];
}

/* Landmarks of chip c: usable servers with an RTT to it, nearest first, at
 * most k (0: all). Returns the count. */
static size_t landmarks_of(const data *d, size_t c, size_t k, double speed, cl_geo_landmark *out,
                           cand *scratch) {
  size_t m = 0;
  for (size_t j = 0; j < d->n; j++) {
    double ms = d->rtt[c * d->n + j];
    if (j == c || d->excluded[j] || isnan(ms))
      continue;
    scratch[m++] = (cand){j, ms};
  }
  qsort(scratch, m, sizeof *scratch, cmp_cand);
  if (k && m > k)
    m = k;
  for (size_t i = 0; i < m; i++) {
    const cl_csv_position *p = &d->pos[scratch[i].idx];
    out[i] = (cl_geo_landmark){p->lat, p->lon, cl_geo_bound_m(scratch[i].ms / 1e3, speed)};
  }
  return m;
}

/* splitmix64: a small deterministic generator, so that the random
 * landmark choice is the same in every run with the same seed. */
static uint64_t next_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Landmarks of chip c like landmarks_of, but k of them drawn at random
 * (partial Fisher-Yates over the candidates; all of them when k is 0 or
 * at least their number). Returns the count. */
static size_t random_landmarks_of(const data *d, size_t c, size_t k, double speed,
                                  cl_geo_landmark *out, cand *scratch, uint64_t *rng) {
  size_t m = landmarks_of(d, c, 0, speed, out, scratch);
  if (k == 0 || k >= m)
    return m;
  for (size_t i = 0; i < k; i++) {
    size_t j = i + (size_t)(next_rand(rng) % (uint64_t)(m - i));
    cl_geo_landmark t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return k;
}

static int cmd_sweep(const data *d, uint64_t seed) {
  static const size_t ks[] = {3, 5, 8, 10, 15, 20, 30, 50, 0};
  cl_geo_ctx *ctx = NULL;
  if (cl_geo_ctx_create(&ctx) != CL_OK)
    die("out of memory");
  cl_geo_landmark *lms = malloc(d->n * sizeof *lms);
  cand *scratch = malloc(d->n * sizeof *scratch);
  double *radii = malloc(d->n * sizeof *radii), *used = malloc(d->n * sizeof *used);
  if (!lms || !scratch || !radii || !used)
    die("out of memory");
  cl_geo_params p;
  cl_geo_params_default(&p);
  printf("| landmarks | choice | chips | SITE_CONSISTENT | INCONSISTENT | INSUFFICIENT | "
         "median radius (km) | p90 radius (km) | median landmarks used |\n");
  printf("|---|---|---|---|---|---|---|---|---|\n");
  for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
    for (int random = 0; random < 2; random++) {
      if (ks[ki] == 0 && random)
        continue; /* all landmarks: the choice does not matter */
      uint64_t rng = seed;
      size_t chips = 0, inside = 0, incons = 0, insuff = 0, nr = 0;
      for (size_t c = 0; c < d->n; c++) {
        if (d->excluded[c])
          continue;
        size_t m = random ? random_landmarks_of(d, c, ks[ki], CL_SPEED_C, lms, scratch, &rng)
                          : landmarks_of(d, c, ks[ki], CL_SPEED_C, lms, scratch);
        double site[2] = {d->pos[c].lat, d->pos[c].lon};
        cl_geo_result res;
        if (cl_geo_locate(ctx, lms, m, &p, site, NULL, &res) != CL_OK)
          die("cl_geo_locate failed");
        used[chips++] = (double)m;
        if (res.consistency == CL_GEO_INCONSISTENT)
          incons++;
        if (res.consistency == CL_GEO_INSUFFICIENT)
          insuff++;
        if (res.consistency != CL_GEO_CONSISTENT)
          continue;
        radii[nr++] = res.radius_km;
        if (res.site == CL_SITE_CONSISTENT)
          inside++;
      }
      qsort(radii, nr, sizeof *radii, cmp_double);
      qsort(used, chips, sizeof *used, cmp_double);
      char label[24];
      if (ks[ki])
        snprintf(label, sizeof label, "%zu", ks[ki]);
      else
        snprintf(label, sizeof label, "all");
      printf("| %s | %s | %zu | %.1f %% | %zu | %zu | %.0f | %.0f | %.0f |\n", label,
             ks[ki] == 0 ? "all" : random ? "random" : "nearest", chips,
             chips ? 100.0 * (double)inside / (double)chips : 0.0, incons, insuff,
             pct(radii, nr, 0.5), pct(radii, nr, 0.9), pct(used, chips, 0.5));
    }
  }
  free(lms);
  free(scratch);
  free(radii);
  free(used);
  cl_geo_ctx_destroy(&ctx);
  return 0;
}

static int cmd_locate(const data *d) {
  static const struct {
    size_t k;
    const char *label;
  } sets[] = {{0, "all"}, {10, "nearest 10"}, {5, "nearest 5"}};
  static const struct {
    double v;
    const char *label;
  } speeds[] = {{CL_SPEED_C, "c"}, {CL_SPEED_FIBRE, "2/3 c"}};
  cl_geo_ctx *ctx = NULL;
  if (cl_geo_ctx_create(&ctx) != CL_OK)
    die("out of memory");
  cl_geo_landmark *lms = malloc(d->n * sizeof *lms);
  cand *scratch = malloc(d->n * sizeof *scratch);
  double *radii = malloc(d->n * sizeof *radii), *times = malloc(d->n * sizeof *times);
  if (!lms || !scratch || !radii || !times)
    die("out of memory");
  cl_geo_params p;
  cl_geo_params_default(&p);
  printf("| speed | landmarks | chips | SITE_CONSISTENT | SITE_EXCLUDED | INCONSISTENT | "
         "INSUFFICIENT | median radius (km) | p90 radius (km) | median engine time (ms) | "
         "p90 engine time (ms) |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (size_t s = 0; s < 2; s++) {
    for (size_t k = 0; k < 3; k++) {
      size_t chips = 0, inside = 0, excl = 0, incons = 0, insuff = 0, nr = 0, nt = 0;
      for (size_t c = 0; c < d->n; c++) {
        if (d->excluded[c])
          continue;
        chips++;
        size_t m = landmarks_of(d, c, sets[k].k, speeds[s].v, lms, scratch);
        double site[2] = {d->pos[c].lat, d->pos[c].lon};
        cl_geo_result res;
        double t0 = now_s();
        int rc = cl_geo_locate(ctx, lms, m, &p, site, NULL, &res);
        double t1 = now_s();
        if (rc != CL_OK)
          die("cl_geo_locate failed");
        times[nt++] = (t1 - t0) * 1e3;
        if (res.consistency == CL_GEO_INCONSISTENT)
          incons++;
        if (res.consistency == CL_GEO_INSUFFICIENT)
          insuff++;
        if (res.consistency != CL_GEO_CONSISTENT)
          continue;
        radii[nr++] = res.radius_km;
        if (res.site == CL_SITE_CONSISTENT)
          inside++;
        if (res.site == CL_SITE_EXCLUDED)
          excl++;
      }
      qsort(radii, nr, sizeof *radii, cmp_double);
      qsort(times, nt, sizeof *times, cmp_double);
      printf("| %s | %s | %zu | %zu | %zu | %zu | %zu | %.0f | %.0f | %.3f | %.3f |\n",
             speeds[s].label, sets[k].label, chips, inside, excl, incons, insuff,
             pct(radii, nr, 0.5), pct(radii, nr, 0.9), pct(times, nt, 0.5), pct(times, nt, 0.9));
    }
  }
  /* The excluded servers as chips, every usable landmark, at c. */
  int any = 0;
  for (size_t c = 0; c < d->n; c++) {
    if (!d->excluded[c])
      continue;
    if (!any)
      printf("\nBlamed and suspected servers as chips (all other usable landmarks, c):\n\n");
    any = 1;
    size_t m = landmarks_of(d, c, 0, CL_SPEED_C, lms, scratch);
    double site[2] = {d->pos[c].lat, d->pos[c].lon};
    cl_geo_result res;
    if (cl_geo_locate(ctx, lms, m, &p, site, NULL, &res) != CL_OK)
      die("cl_geo_locate failed");
    printf("- %s: %s", d->pos[c].name, cl_geo_consistency_name(res.consistency));
    if (res.consistency == CL_GEO_CONSISTENT) {
      printf(", %s", cl_geo_site_name(res.site));
      if (res.site == CL_SITE_EXCLUDED)
        printf(" by %.0f km", res.site_margin_km);
      printf(", F centred at (%.2f, %.2f), radius %.0f km", res.centre_lat, res.centre_lon,
             res.radius_km);
    }
    printf("\n");
  }
  free(lms);
  free(scratch);
  free(radii);
  free(times);
  cl_geo_ctx_destroy(&ctx);
  return 0;
}

/* ---- speed ------------------------------------------------------------------ */

typedef struct {
  size_t feasible, in_region;
  int site_ok;
} brute_out;

/*
 * Dense sampling of the smallest cap's bounding box at about 1 km: each
 * point is tested against every cap with the exact geodesic distance
 * (smallest caps first, stopping at the first that excludes it) and, if
 * feasible, against the region.
 */
static void brute(const cl_geo_landmark *lms, size_t n, const cl_region *region,
                  const double site[2], brute_out *o) {
  struct geod_geodesic g;
  geod_init(&g, CL_WGS84_A, CL_WGS84_F);
  size_t order[64];
  for (size_t i = 0; i < n; i++)
    order[i] = i;
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && lms[order[j - 1]].bound_m > lms[order[j]].bound_m; j--) {
      size_t t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  const cl_geo_landmark *s = &lms[order[0]];
  double lat0 = 90, lat1 = -90, lon0 = 180, lon1 = -180;
  for (int az = 0; az < 360; az += 5) {
    double la = 0, lo = 0;
    geod_direct(&g, s->lat, s->lon, az, s->bound_m * 1.01, &la, &lo, NULL);
    lat0 = fmin(lat0, la), lat1 = fmax(lat1, la);
    lon0 = fmin(lon0, lo), lon1 = fmax(lon1, lo);
  }
  double dlat = 1.0 / 111.2; /* about 1 km */
  o->feasible = o->in_region = 0;
  for (double la = lat0; la <= lat1; la += dlat) {
    double dlon = dlat / fmax(cos(la * M_PI / 180), 0.01);
    for (double lo = lon0; lo <= lon1; lo += dlon) {
      int ok = 1;
      for (size_t i = 0; i < n && ok; i++) {
        double s12 = 0;
        geod_inverse(&g, la, lo, lms[order[i]].lat, lms[order[i]].lon, &s12, NULL, NULL);
        ok = s12 <= lms[order[i]].bound_m;
      }
      if (!ok)
        continue;
      o->feasible++;
      o->in_region += cl_region_contains(region, lo, la) != 0;
    }
  }
  o->site_ok = 1;
  for (size_t i = 0; i < n; i++) {
    double s12 = 0;
    geod_inverse(&g, site[0], site[1], lms[i].lat, lms[i].lon, &s12, NULL, NULL);
    if (s12 > lms[i].bound_m)
      o->site_ok = 0;
  }
}

static int cmd_speed(const data *d, const char *countries, const char *code_property,
                     const char *chip, const char *code, int runs, int brute_runs) {
  long c = find(d, chip);
  if (c < 0)
    die("--chip: unknown name");
  char err[512] = "";
  cl_region_set set = {0};
  if (cl_region_set_load_geojson(&set, countries, code_property, err, sizeof err) < 0)
    die(err);
  const cl_region *region = cl_region_set_find(&set, code);
  if (!region)
    die("--code: no such region");
  cl_geo_landmark lms[10];
  cand *scratch = malloc(d->n * sizeof *scratch);
  size_t m = landmarks_of(d, (size_t)c, 10, CL_SPEED_C, lms, scratch);
  free(scratch);
  double site[2] = {d->pos[c].lat, d->pos[c].lon};
  const cl_region *members[1] = {region};
  cl_region_union allowed = {members, 1};
  cl_geo_ctx *ctx = NULL;
  if (cl_geo_ctx_create(&ctx) != CL_OK)
    die("out of memory");
  cl_geo_params p;
  cl_geo_params_default(&p);
  double *t = malloc((size_t)runs * sizeof *t);
  cl_geo_result res;
  for (int r = 0; r < runs; r++) {
    double t0 = now_s();
    if (cl_geo_locate(ctx, lms, m, &p, site, &allowed, &res) != CL_OK)
      die("cl_geo_locate failed");
    t[r] = (now_s() - t0) * 1e3;
  }
  qsort(t, (size_t)runs, sizeof *t, cmp_double);
  double *bt = malloc((size_t)brute_runs * sizeof *bt);
  brute_out bo = {0};
  for (int r = 0; r < brute_runs; r++) {
    double t0 = now_s();
    brute(lms, m, region, site, &bo);
    bt[r] = (now_s() - t0) * 1e3;
  }
  qsort(bt, (size_t)brute_runs, sizeof *bt, cmp_double);
  double smallest = INFINITY;
  for (size_t i = 0; i < m; i++)
    smallest = fmin(smallest, lms[i].bound_m / 1e3);
  const char *bregion = bo.feasible == 0              ? "none feasible"
                        : bo.in_region == bo.feasible ? "INSIDE (all samples)"
                        : bo.in_region == 0           ? "OUTSIDE (all samples)"
                                                      : "UNDETERMINED (samples on both sides)";
  printf("chip=%s landmarks=%zu smallest_bound_km=%.1f region=%s vertices=%zu\n", chip, m, smallest,
         code, cl_region_vertex_count(region));
  printf("engine: runs=%d median_ms=%.4f p90_ms=%.4f consistency=%s site=%s region=%s "
         "radius_km=%.1f cells=%zu\n",
         runs, pct(t, (size_t)runs, 0.5), pct(t, (size_t)runs, 0.9),
         cl_geo_consistency_name(res.consistency), cl_geo_site_name(res.site),
         cl_geo_region_name(res.region), res.radius_km, res.n_cells);
  printf("brute: runs=%d median_ms=%.1f samples_feasible=%zu in_region=%zu site=%s region=%s\n",
         brute_runs, pct(bt, (size_t)brute_runs, 0.5), bo.feasible, bo.in_region,
         bo.site_ok ? "SITE_CONSISTENT" : "SITE_EXCLUDED", bregion);
  printf("ratio: %.0f\n", pct(bt, (size_t)brute_runs, 0.5) / pct(t, (size_t)runs, 0.5));
  free(t);
  free(bt);
  cl_geo_ctx_destroy(&ctx);
  cl_region_set_free(&set);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: replay locate|sweep|speed --positions P.csv --rtts R.csv ...\n");
    return 2;
  }
  const char *positions = NULL, *rtts = NULL, *exclude = NULL, *countries = NULL, *chip = NULL,
             *code = NULL, *code_property = "A3";
  int runs = 200, brute_runs = 5;
  uint64_t seed = 1;
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (strcmp(k, "--positions") == 0)
      positions = v;
    else if (strcmp(k, "--rtts") == 0)
      rtts = v;
    else if (strcmp(k, "--exclude") == 0)
      exclude = v;
    else if (strcmp(k, "--countries") == 0)
      countries = v;
    else if (strcmp(k, "--chip") == 0)
      chip = v;
    else if (strcmp(k, "--code") == 0)
      code = v;
    else if (strcmp(k, "--code-property") == 0)
      code_property = v;
    else if (strcmp(k, "--runs") == 0)
      runs = atoi(v);
    else if (strcmp(k, "--brute-runs") == 0)
      brute_runs = atoi(v);
    else if (strcmp(k, "--seed") == 0)
      seed = strtoull(v, NULL, 10);
    else {
      fprintf(stderr, "replay: unknown option %s\n", k);
      return 2;
    }
  }
  if (!positions || !rtts || runs < 1 || brute_runs < 1) {
    fprintf(stderr, "replay: --positions and --rtts are required\n");
    return 2;
  }
  data d = {0};
  load(&d, positions, rtts, exclude);
  int rc;
  if (strcmp(argv[1], "locate") == 0) {
    rc = cmd_locate(&d);
  } else if (strcmp(argv[1], "sweep") == 0) {
    rc = cmd_sweep(&d, seed);
  } else if (strcmp(argv[1], "speed") == 0) {
    if (!countries || !chip || !code) {
      fprintf(stderr, "replay: speed needs --countries, --chip and --code\n");
      return 2;
    }
    rc = cmd_speed(&d, countries, code_property, chip, code, runs, brute_runs);
  } else {
    fprintf(stderr, "replay: unknown mode %s\n", argv[1]);
    return 2;
  }
  cl_csv_positions_free(&d.pos, d.n);
  free(d.rtt);
  free(d.excluded);
  return rc;
}
