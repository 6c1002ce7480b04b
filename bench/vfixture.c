/*
 * vfixture: the data set of the verifier benchmark (bench/verifier.sh).
 *
 * Into a migrated database whose regions hold the country borders (bench/
 * verifier.sh imports the maritime ones), it enrols landmarks at real
 * European cities and N chips at random points drawn uniformly inside real
 * European countries (rejection sampling against the polygons of the
 * --countries file, property A3: the land borders, so that no chip is at
 * sea; overseas territories left out), each allowed in its own country. For every
 * chip it stores one measurement from each of its K nearest landmarks with a
 * round-trip time derived from geography: twice the geodesic distance at the
 * speed of light plus a positive extra delay (a fixed part and an
 * exponential part, like queueing and processing on a real path), so that
 * the chip obeys physics and the verdicts are the engine's honest work.
 * Every record is a genuine protocol 2 record of a burst of three probes
 * (tests/tu_record.c: a session handshake signed by the landmark and the
 * chip, one answer MAC per probe under the session key, the chip's
 * transcript signature and the landmark's record signature), so the
 * verifier believes it and `chiploc audit` accepts the data. Chips and
 * their regions go in with COPY; measurements with
 * cl_store_insert_measurements, the landmark writer's own COPY path.
 * Deterministic for a seed, but for the timestamps, which are "now", and
 * the sessions' random keys and nonces.
 *
 * usage: vfixture --db CONNINFO --chips N [--per-chip K] [--seed S]
 * Prints one summary line (key=value) on stdout.
 */
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_probe.h"
#include "cl_region.h"
#include "cl_region_geojson.h"
#include "cl_store.h"
#include "europe.h"
#include "tu_record.h"

#include <getopt.h>
#include <libpq-fe.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CHIPS 1000000
#define MAX_PER_CHIP 16

/* Probes per burst; the fastest is the record's RTT. */
#define BURST 3

static int die(const char *what, const char *err) {
  fprintf(stderr, "vfixture: %s: %s\n", what, err);
  return 1;
}

/* Runs COPY ... FROM STDIN with the text in buf. */
static int copy_text(PGconn *c, const char *sql, const char *buf, size_t len) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COPY_IN) {
    fprintf(stderr, "vfixture: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    return -1;
  }
  PQclear(r);
  if (PQputCopyData(c, buf, (int)len) != 1 || PQputCopyEnd(c, NULL) != 1) {
    fprintf(stderr, "vfixture: COPY data: %s", PQerrorMessage(c));
    return -1;
  }
  int ok = 0;
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      fprintf(stderr, "vfixture: COPY: %s", PQresultErrorMessage(r));
      ok = -1;
    }
    PQclear(r);
  }
  return ok;
}

typedef struct {
  char *p;
  size_t len, cap;
} buf;

static void bput(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bput(buf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t ncap = b->cap ? b->cap * 2 : 1 << 20;
    char *np = realloc(b->p, ncap);
    if (!np) {
      fprintf(stderr, "vfixture: out of memory\n");
      exit(1);
    }
    b->p = np;
    b->cap = ncap;
  }
}

static void seed_for(uint8_t seed[32], uint64_t s, const char *what, uint64_t i) {
  char text[96];
  int n = snprintf(text, sizeof text, "vfixture %llu %s %llu", (unsigned long long)s, what,
                   (unsigned long long)i);
  crypto_generichash(seed, 32, (const uint8_t *)text, (size_t)n, NULL, 0);
}

typedef struct {
  double lat, lon;
  size_t country;
  int64_t id;
} chip;

typedef struct {
  double d;
  size_t i;
} near;

static int cmp_near(const void *a, const void *b) {
  double x = ((const near *)a)->d, y = ((const near *)b)->d;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                       {"countries", required_argument, NULL, 'c'},
                                       {"chips", required_argument, NULL, 'n'},
                                       {"per-chip", required_argument, NULL, 'k'},
                                       {"seed", required_argument, NULL, 's'},
                                       {NULL, 0, NULL, 0}};
  const char *db = NULL, *countries = NULL;
  long nchips = 20000, per_chip = 8;
  unsigned long long seed = 20240601;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case 'd': db = optarg; break;
    case 'c': countries = optarg; break;
    case 'n': nchips = strtol(optarg, NULL, 10); break;
    case 'k': per_chip = strtol(optarg, NULL, 10); break;
    case 's': seed = strtoull(optarg, NULL, 10); break;
    default: return 2;
    }
  }
  if (!db || !countries || nchips < 1 || nchips > MAX_CHIPS || per_chip < 3 ||
      per_chip > MAX_PER_CHIP || (size_t)per_chip > N_LANDMARKS) {
    fprintf(stderr, "usage: vfixture --db CONNINFO --countries GEOJSON --chips N (1..%d) "
                    "[--per-chip K (3..%d)] [--seed S]\n", MAX_CHIPS, MAX_PER_CHIP);
    return 2;
  }
  if (sodium_init() < 0) return die("sodium_init", "failed");
  rng_state = rng_seed_state(seed);
  char err[512];
  cl_region_set set;
  if (cl_region_set_load_geojson(&set, countries, "A3", err, sizeof err) != CL_OK)
    return die(countries, err);
  const cl_region *regions[N_COUNTRIES];
  for (size_t i = 0; i < N_COUNTRIES; i++)
    if (!(regions[i] = cl_region_set_find(&set, COUNTRIES[i]))) return die(COUNTRIES[i], "no such country");

  cl_store *s = NULL;
  if (cl_store_connect(&s, db, err, sizeof err) != CL_OK) return die("connect", err);
  PGconn *pg = cl_store_pgconn(s);

  /* Landmarks. */
  cl_key *lkeys[N_LANDMARKS];
  int64_t lids[N_LANDMARKS];
  for (size_t i = 0; i < N_LANDMARKS; i++) {
    uint8_t sd[32];
    seed_for(sd, seed, "landmark", i);
    if (cl_key_from_seed(&lkeys[i], sd) != CL_OK) return die("landmark key", "failed");
    if (cl_store_landmark_add(s, LANDMARKS[i].name, cl_key_public(lkeys[i]), LANDMARKS[i].lat,
                              LANDMARKS[i].lon, &lids[i], err, sizeof err) != CL_OK)
      return die("landmark add", err);
  }

  /* Chips: countries in turn, a uniform point of the country's European part. */
  size_t n = (size_t)nchips;
  chip *chips = calloc(n, sizeof *chips);
  if (!chips) return die("chips", "out of memory");
  buf b = {0};
  for (size_t i = 0; i < n; i++) {
    size_t ci = i % N_COUNTRIES;
    double lat = 0, lon = 0;
    if (europe_point_in(regions[ci], &lat, &lon) != 0)
      return die(COUNTRIES[ci], "no point found in the sampling box");
    chips[i] = (chip){lat, lon, ci, 0};
    /* Keys live in guarded sodium memory: one at a time, derived again
     * from the seed when the chip's measurements are signed. */
    cl_key *ck = NULL;
    uint8_t sd[32];
    seed_for(sd, seed, "chip", i);
    if (cl_key_from_seed(&ck, sd) != CL_OK) return die("chip key", "failed");
    char hex[2 * CL_PK_LEN + 1];
    cl_hex_encode(hex, cl_key_public(ck), CL_PK_LEN);
    cl_key_destroy(&ck);
    bput(&b, "\\\\x%s\tVB-%06zu\tdc-%s\t%.6f\t%.6f\n", hex, i, COUNTRIES[ci], lat, lon);
  }
  if (copy_text(pg, "COPY chips (public_key, serial, operator, site_lat, site_lon) FROM STDIN",
                b.p, b.len))
    return 1;
  PGresult *r = PQexec(pg, "SELECT id FROM chips WHERE serial LIKE 'VB-%' ORDER BY serial");
  if (PQresultStatus(r) != PGRES_TUPLES_OK || (size_t)PQntuples(r) != n)
    return die("chip ids", PQerrorMessage(pg));
  for (size_t i = 0; i < n; i++) chips[i].id = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
  PQclear(r);
  b.len = 0;
  for (size_t i = 0; i < n; i++)
    bput(&b, "%lld\t%s\n", (long long)chips[i].id, COUNTRIES[chips[i].country]);
  if (copy_text(pg, "COPY chip_regions (chip_id, region_code) FROM STDIN", b.p, b.len)) return 1;
  free(b.p);

  /* Measurements, grouped by landmark for the writer's COPY. */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t now_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
  cl_store_row *rows[N_LANDMARKS];
  size_t nrows[N_LANDMARKS] = {0};
  for (size_t l = 0; l < N_LANDMARKS; l++)
    if (!(rows[l] = calloc(n, sizeof *rows[l]))) return die("rows", "out of memory");
  double extra_sum_ms = 0, bound_excess_km = 0;
  size_t nmeas = 0;
  for (size_t i = 0; i < n; i++) {
    cl_key *ck = NULL;
    uint8_t sd[32];
    seed_for(sd, seed, "chip", i);
    if (cl_key_from_seed(&ck, sd) != CL_OK) return die("chip key", "failed");
    near nl[N_LANDMARKS];
    for (size_t l = 0; l < N_LANDMARKS; l++)
      nl[l] = (near){cl_geo_distance_m(chips[i].lat, chips[i].lon, LANDMARKS[l].lat, LANDMARKS[l].lon), l};
    qsort(nl, N_LANDMARKS, sizeof nl[0], cmp_near);
    for (long k = 0; k < per_chip; k++) {
      size_t l = nl[k].i;
      double extra = europe_extra_ns();
      uint64_t rtt = (uint64_t)ceil(2.0 * nl[k].d / CL_SPEED_C * 1e9 + extra);
      /* The burst: the middle probe is the fastest, the others waited
       * longer in the same queues. */
      uint64_t rtts[BURST];
      for (int p = 0; p < BURST; p++)
        rtts[p] = p == 1 ? rtt : rtt + 1 + (uint64_t)(-EXTRA_MEAN_NS * log(1.0 - rng_unit()));
      cl_store_row *row = &rows[l][nrows[l]++];
      uint64_t measured_ns = now_ns - 30000000000ull + (uint64_t)(rng_unit() * 20e9);
      int rc = tu_record(&row->m, lkeys[l], ck, (uint64_t)i * BURST, BURST, rtts, measured_ns);
      if (rc != CL_OK) return die("record", cl_strerror(rc));
      row->chip_id = chips[i].id;
      row->bound_m = cl_bound_m(rtt, CL_SPEED_C);
      row->est_speed = CL_SPEED_FIBRE;
      row->est_bound_m = cl_bound_m(rtt, CL_SPEED_FIBRE);
      extra_sum_ms += extra / 1e6;
      bound_excess_km += ((double)row->bound_m - nl[k].d) / 1000.0;
      nmeas++;
    }
    cl_key_destroy(&ck);
  }
  for (size_t l = 0; l < N_LANDMARKS; l++) {
    if (nrows[l] && cl_store_insert_measurements(s, lids[l], rows[l], nrows[l], err, sizeof err) != CL_OK)
      return die("insert measurements", err);
    free(rows[l]);
  }
  r = PQexec(pg, "ANALYZE");
  PQclear(r);
  printf("landmarks=%zu chips=%zu measurements=%zu per_chip=%ld countries=%zu "
         "extra_delay_mean_ms=%.3f bound_excess_mean_km=%.1f\n",
         N_LANDMARKS, n, nmeas, per_chip, N_COUNTRIES, extra_sum_ms / (double)nmeas,
         bound_excess_km / (double)nmeas);
  for (size_t l = 0; l < N_LANDMARKS; l++) cl_key_destroy(&lkeys[l]);
  free(chips);
  cl_store_destroy(&s);
  cl_region_set_free(&set);
  return 0;
}
