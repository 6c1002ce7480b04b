/* The dashboard's seeded world (see tu_seed.h). */
#include "tu_seed.h"
#include "tu_record.h"

#include "cl_err.h"
#include "cl_key.h"
#include "cl_probe.h"
#include "cl_store.h"
#include "cl_vstore.h"

#include <fcntl.h>
#include <sodium.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum { PAR, FRA, LON, QUIET, OLD, N_LM };
static const struct {
  const char *name;
  double lat, lon;
} LM[N_LM] = {{"lm-par", 48.8566, 2.3522},  {"lm-fra", 50.1109, 8.6821},
              {"lm-lon", 51.5074, -0.1278}, {"lm-quiet", 52.52, 13.405},
              {"lm-old", 50.6292, 3.0573}};

/* Boxes, closed rings of [lon, lat]. */
static const struct {
  const char *code;
  double w, s, e, n;
} REGIONS[] = {{"FRA", -4.8, 42.3, 8.2, 51.1},
               {"DEU", 5.9, 47.3, 15.0, 55.0},
               {"GBR", -8.0, 49.9, 1.8, 58.7},
               /* Its western edge runs through Paris: a feasible region
                * around Paris is partly inside, partly out. */
               {"EDGE", 2.3522, 42.3, 8.2, 51.1}};

/* Round trips (ns) as from Paris, per measuring landmark, and how many
 * seconds before the seeding each was measured. */
static const struct {
  int lm;
  uint64_t rtt_ns;
  uint64_t ago_s;
} ROWS[] = {{PAR, 160000, 100}, {PAR, 140000, 80},  {PAR, 150000, 60},
            {FRA, 3400000, 90}, {FRA, 3300000, 70}, {LON, 2400000, 75}};
#define N_ROWS (sizeof ROWS / sizeof ROWS[0])

typedef struct {
  const char *conninfo, *chiploc, *log;
  cl_store *s;
  cl_key *lm[N_LM];
  int64_t lm_id[N_LM];
  uint64_t now_ns;
  char *err;
  size_t errlen;
} seed;

static int failf(seed *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int failf(seed *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cl_err_vset(w->err, w->errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* Runs the chiploc binary with the NULL-terminated arguments, output
 * appended to the log; its exit status, or -1. */
static int run_chiploc(seed *w, ...) {
  char *argv[24];
  int n = 0;
  argv[n++] = (char *)w->chiploc;
  va_list ap;
  va_start(ap, w);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && n < 23) argv[n++] = (char *)a;
  va_end(ap);
  argv[n] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, w->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  int rc = posix_spawn(&pid, w->chiploc, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int st = 0;
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Stores one genuine record of `subject` by landmark lm (a link when
 * link). */
static int store_row(seed *w, int lm, const cl_key *subject, int64_t subject_id, uint64_t rtt_ns,
                     uint64_t ago_s, int link) {
  cl_store_row row;
  memset(&row, 0, sizeof row);
  if (tu_record_rtt(&row.m, w->lm[lm], subject, rtt_ns, w->now_ns - ago_s * 1000000000ull) !=
      CL_OK)
    return failf(w, "cannot make a record");
  row.chip_id = subject_id;
  row.is_link = link;
  row.bound_m = cl_bound_m(rtt_ns, CL_SPEED_C);
  row.est_speed = CL_SPEED_FIBRE;
  row.est_bound_m = cl_bound_m(rtt_ns, CL_SPEED_FIBRE);
  char err[512] = "";
  int rc = link ? cl_store_insert_links(w->s, w->lm_id[lm], &row, 1, err, sizeof err)
                : cl_store_insert_measurements(w->s, w->lm_id[lm], &row, 1, err, sizeof err);
  return rc == CL_OK ? 0 : failf(w, "storing a row of %s: %s", LM[lm].name, err);
}

/* Enrols a chip (allowed: a region code or NULL) and stores its rows: of
 * every measuring landmark, or of lm-par alone when few. */
static int chip(seed *w, const char *serial, const char *op, double lat, double lon,
                const char *allowed, int few) {
  cl_key *key = NULL;
  if (cl_key_generate(&key) != CL_OK) return failf(w, "cannot make a chip key");
  char err[512] = "";
  int64_t id = 0;
  int rc = cl_store_chip_enroll(w->s, cl_key_public(key), serial, op, lat, lon, &id, err,
                                sizeof err);
  if (rc == CL_OK && allowed) rc = cl_store_chip_allow(w->s, id, allowed, err, sizeof err);
  if (rc != CL_OK) {
    cl_key_destroy(&key);
    return failf(w, "enrolling %s: %s", serial, err);
  }
  int bad = 0;
  for (size_t i = 0; i < N_ROWS && !bad; i++)
    if (!few || ROWS[i].lm == PAR)
      bad = store_row(w, ROWS[i].lm, key, id, ROWS[i].rtt_ns, ROWS[i].ago_s, 0);
  cl_key_destroy(&key);
  return bad;
}

static int seed_world(seed *w, const char *dir) {
  char err[512] = "";
  int applied = 0;
  if (cl_store_connect(&w->s, w->conninfo, err, sizeof err) != CL_OK ||
      cl_store_migrate(w->s, &applied, err, sizeof err) != CL_OK)
    return failf(w, "database: %s", err);
  for (int i = 0; i < N_LM; i++)
    if (cl_key_generate(&w->lm[i]) != CL_OK ||
        cl_store_landmark_add(w->s, LM[i].name, cl_key_public(w->lm[i]), LM[i].lat, LM[i].lon,
                              &w->lm_id[i], err, sizeof err) != CL_OK)
      return failf(w, "landmark %s: %s", LM[i].name, err);
  if (cl_store_landmark_retire(w->s, "lm-old", NULL, 0, err, sizeof err) != CL_OK)
    return failf(w, "retiring lm-old: %s", err);
  for (size_t i = 0; i < sizeof REGIONS / sizeof REGIONS[0]; i++) {
    char geom[256];
    double x0 = REGIONS[i].w, y0 = REGIONS[i].s, x1 = REGIONS[i].e, y1 = REGIONS[i].n;
    snprintf(geom, sizeof geom,
             "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[%g,%g],[%g,%g],[%g,%g],[%g,%g],"
             "[%g,%g]]]]}",
             x0, y0, x1, y0, x1, y1, x0, y1, x0, y0);
    if (cl_store_region_put(w->s, REGIONS[i].code, geom, 5, err, sizeof err) != CL_OK)
      return failf(w, "region %s: %s", REGIONS[i].code, err);
  }
  w->now_ns = (uint64_t)time(NULL) * 1000000000ull;
  const double PLAT = 48.8566, PLON = 2.3522;
  if (chip(w, "S-PARIS", "op-a", PLAT, PLON, "FRA", 0) ||
      chip(w, "S-SMUGGLED", "op-b", 35.6762, 139.6503, "FRA", 0) ||
      chip(w, "S-OUTSIDE", "op-b", PLAT, PLON, "DEU", 0) ||
      chip(w, "S-EDGE", "op-a", PLAT, PLON, "EDGE", 0) ||
      chip(w, "S-FEW", "op-a", PLAT, PLON, "FRA", 1) ||
      chip(w, TU_SEED_HOSTILE_SERIAL, TU_SEED_HOSTILE_OPERATOR, PLAT, PLON, "FRA", 0) ||
      chip(w, "S-OFF", "op-a", PLAT, PLON, "FRA", 0))
    return -1;
  int changed = 0;
  int64_t cleared = 0;
  if (cl_store_chip_set_active(w->s, "S-OFF", 0, "seeded inactive", &changed, &cleared, err,
                               sizeof err) != CL_OK)
    return failf(w, "deactivating S-OFF: %s", err);
  /* Links between the measuring landmarks (the probed one plays the chip). */
  static const struct {
    int from, to;
    uint64_t rtt_ns, ago_s;
  } LINKS[] = {{PAR, FRA, 5100000, 80}, {PAR, FRA, 5000000, 70}, {FRA, PAR, 5200000, 75},
               {LON, PAR, 3000000, 65}};
  for (size_t i = 0; i < sizeof LINKS / sizeof LINKS[0]; i++)
    if (store_row(w, LINKS[i].from, w->lm[LINKS[i].to], w->lm_id[LINKS[i].to], LINKS[i].rtt_ns,
                  LINKS[i].ago_s, 1))
      return -1;

  /* The verifier and its rounds: every row is older than the first
   * round's end and inside the 300 s window of each. */
  char keypath[4096];
  snprintf(keypath, sizeof keypath, "%s/verifier.key", dir);
  cl_key *vkey = NULL;
  int64_t vid = 0;
  if (cl_key_generate(&vkey) != CL_OK || cl_key_save(vkey, keypath) != CL_OK) {
    cl_key_destroy(&vkey);
    return failf(w, "cannot write %s", keypath);
  }
  int rc = cl_vstore_verifier_add(w->s, TU_SEED_VERIFIER, cl_key_public(vkey), &vid, err,
                                  sizeof err);
  cl_key_destroy(&vkey);
  if (rc != CL_OK) return failf(w, "verifier: %s", err);
  long long round0 = (long long)(w->now_ns / 1000000000ull) / 10 * 10 - 40;
  for (int k = 0; k < TU_SEED_ROUNDS; k++) {
    char end[32];
    snprintf(end, sizeof end, "%lld", round0 + 10LL * k);
    int st = run_chiploc(w, "verify", "--db", w->conninfo, "--key", keypath, "--window", "300",
                         "--interval", "10", "--round-end", end, "--quiet", NULL);
    if (st != 0) return failf(w, "chiploc verify, round %d: exit %d (see %s)", k, st, w->log);
  }
  /* Enrolled after the rounds: never attested. */
  cl_key *late = NULL;
  int64_t late_id = 0;
  if (cl_key_generate(&late) != CL_OK) return failf(w, "cannot make a chip key");
  rc = cl_store_chip_enroll(w->s, cl_key_public(late), "S-LATE", "op-c", PLAT, PLON, &late_id,
                            err, sizeof err);
  cl_key_destroy(&late);
  if (rc != CL_OK) return failf(w, "enrolling S-LATE: %s", err);
  return 0;
}

int tu_seed_dashboard(const char *conninfo, const char *chiploc, const char *dir, char *err,
                      size_t errlen) {
  char log[4096];
  snprintf(log, sizeof log, "%s/seed.log", dir);
  seed w;
  memset(&w, 0, sizeof w);
  w.conninfo = conninfo;
  w.chiploc = chiploc;
  w.log = log;
  w.err = err;
  w.errlen = errlen;
  if (sodium_init() < 0) return failf(&w, "libsodium failed to initialise");
  int rc = seed_world(&w, dir);
  for (int i = 0; i < N_LM; i++) cl_key_destroy(&w.lm[i]);
  cl_store_destroy(&w.s);
  return rc;
}
