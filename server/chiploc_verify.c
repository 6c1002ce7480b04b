/*
 * chiploc verifier add / chiploc verify: the verifier. One round takes, for
 * every active chip, the fastest measurement per landmark in the window,
 * runs the location engine, and writes one signed attestation chained to the
 * chip's previous one, opening or clearing its alerts, all in one transaction
 * under the verifier's round lock. --follow repeats this on a libuv timer at
 * every round boundary; a second run in the same round writes nothing. With
 * --metrics, --follow also serves Prometheus metrics (docs/METRICS.md),
 * rendered on the loop after every round.
 */
#include "chiploc_cli.h"
#include "chiploc_cmds.h"
#include "cl_clock.h"
#include "cl_config.h"
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_key.h"
#include "cl_log.h"
#include "cl_metrics.h"
#include "cl_probe.h"
#include "cl_store.h"
#include "cl_verify.h"
#include "cl_vstore.h"
#include "cl_xcheck.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

/* chiploc verifier bind --name NAME --db-role ROLE */
static int verifier_bind(int argc, char **argv) {
  static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                       {"name", required_argument, NULL, 'n'},
                                       {"db-role", required_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *db = NULL, *name = NULL, *role = NULL;
  optind = 1;
  int o;
  while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (o) {
    case 'd': db = optarg; break;
    case 'n': name = optarg; break;
    case 'r': role = optarg; break;
    case 'h':
      printf("usage: chiploc verifier bind [--db CONNINFO] --name NAME --db-role ROLE\n"
             "Lets the database login ROLE (a member of chiploc_verifier) write the\n"
             "attestations of verifier NAME, and no other verifier's.\n");
      return 0;
    default: return 2;
    }
  }
  if (optind != argc || !name || !*name || !role || !*role) {
    fprintf(stderr, "usage: chiploc verifier bind [--db CONNINFO] --name NAME --db-role ROLE\n");
    return 2;
  }
  if (!(db = chiploc_conninfo(db, "verifier bind"))) return 2;
  cl_store *s = chiploc_connect(db);
  if (!s) return 1;
  char err[512];
  int rc = cl_vstore_verifier_bind(s, name, role, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    fprintf(stderr, "chiploc: verifier bind %s: %s\n", name, err);
    return rc == CL_EINVAL ? 2 : 1;
  }
  printf("verifier %s bound to role %s\n", name, role);
  return 0;
}

int cmd_verifier(int argc, char **argv) {
  static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                       {"name", required_argument, NULL, 'n'},
                                       {"pubkey", required_argument, NULL, 'p'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *db = NULL, *name = NULL, *pkhex = NULL;
  if (argc >= 2 && strcmp(argv[1], "bind") == 0) return verifier_bind(argc - 1, argv + 1);
  if (argc < 2 || strcmp(argv[1], "add") != 0) {
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
      printf("usage: chiploc verifier add [--db CONNINFO] --name NAME --pubkey HEX\n"
             "       chiploc verifier bind [--db CONNINFO] --name NAME --db-role ROLE\n");
      return 0;
    }
    fprintf(stderr, "usage: chiploc verifier add [--db CONNINFO] --name NAME --pubkey HEX\n");
    return 2;
  }
  optind = 1;
  int o;
  while ((o = getopt_long(argc - 1, argv + 1, "h", opts, NULL)) != -1) {
    switch (o) {
    case 'd': db = optarg; break;
    case 'n': name = optarg; break;
    case 'p': pkhex = optarg; break;
    case 'h':
      printf("usage: chiploc verifier add [--db CONNINFO] --name NAME --pubkey HEX\n"
             "Registers a verifier's public key (chiploc keygen makes the key).\n");
      return 0;
    default: return 2;
    }
  }
  uint8_t pk[CL_PK_LEN];
  if (!name || !*name || !pkhex) {
    fprintf(stderr, "chiploc: verifier add needs --name and --pubkey\n");
    return 2;
  }
  if (cl_pk_from_hex(pkhex, pk) != CL_OK || cl_pk_check(pk) != CL_OK) {
    fprintf(stderr, "chiploc: --pubkey %s: not a valid Ed25519 public key (64 hex characters)\n",
            pkhex);
    return 2;
  }
  if (!(db = chiploc_conninfo(db, "verifier add"))) return 2;
  cl_store *s = chiploc_connect(db);
  if (!s) return 1;
  char err[512];
  int64_t id = 0;
  int rc = cl_vstore_verifier_add(s, name, pk, &id, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    fprintf(stderr, "chiploc: verifier add: %s\n", err);
    return 1;
  }
  printf("verifier %s id=%lld\n", name, (long long)id);
  return 0;
}

/* Rows of one landmark that a pool member's batches refused in a round. */
typedef struct {
  int64_t id;
  char *name;
  uint64_t rejected[CL_EV__COUNT];
} lm_tally;

typedef struct {
  const char *conninfo;
  cl_key *key;
  cl_verify_params vp;
  uint64_t interval_ns;
  uint64_t settle_ns;
  int quiet;
  cl_store *db;
  int64_t verifier_id;
  cl_geo_ctx *geo;
  uint64_t last_round;
  /* libuv */
  uv_loop_t *loop;
  uv_timer_t timer;
  uv_signal_t sigterm, sigint, sighup;
  int exit_code;
  uint64_t rounds;
  /* --metrics: counters owned by the loop, rendered into a snapshot */
  cl_metrics_server *metrics;
  cl_mtext mtext;
  uint64_t round_failures;
  uint64_t attested[CL_ATT_CONSISTENCY_COUNT][CL_ATT_SITE_COUNT][CL_ATT_REGION_COUNT];
  uint64_t open_alerts[CL_VSTORE_ALERT_KINDS];
  uint64_t last_round_end_ns;
  size_t last_round_chips;
  cl_histogram round_seconds;
  /* Outcomes of the signature checks, kept across rounds. */
  cl_evcache *ev;
  uint64_t rejected[CL_EV__COUNT];
  /* --pool: the pool's name, its members in the current round, the rows
   * refused per landmark over the round's batches, and the chips found
   * unattested in earlier rounds of the pool (by this process's checks). */
  const char *pool;
  int64_t *members;
  size_t n_members;
  lm_tally *tally;
  size_t n_tally;
  uint64_t tally_round; /* the round the tally counts */
  uint64_t pool_unattested;
} verifier;

/* How far the verifier's clock may run ahead of the database's before a
 * round is refused: a round ending in the database's future would attest
 * chips before their measurements exist, and later rounds would be skipped
 * as already attested. */
#define CLOCK_AHEAD_SLACK_NS 2000000000ull

typedef struct {
  size_t chips, written, skipped, alerts_open;
  size_t by_consistency[CL_ATT_CONSISTENCY_COUNT], by_site[CL_ATT_SITE_COUNT],
      by_region[CL_ATT_REGION_COUNT];
  size_t by_verdict[CL_ATT_CONSISTENCY_COUNT][CL_ATT_SITE_COUNT][CL_ATT_REGION_COUNT];
  /* Where the round's time went (ns): reading its inputs (lock included),
   * the location engine, digests/signatures/chain hashes, writing
   * attestations and alerts (commit included), the landmark cross-check
   * (its SQL included), and the whole round. */
  uint64_t sql_read_ns, geometry_ns, sign_ns, sql_write_ns, landmarks_ns, total_ns;
  /* Rows judged and refused (by cl_ev_reason), signature checks done and
   * outcomes taken from the cache; chips whose last attestation is dated
   * after this round (a clock that ran ahead earlier). */
  uint64_t judged, rejected[CL_EV__COUNT], verified, cache_hits, verify_ns;
  size_t heads_ahead;
  /* Chips the engine refused (not attested this round), and chips attested
   * from their CL_GEO_MAX_LANDMARKS tightest minima only. */
  size_t chips_failed, chips_truncated;
  /* --pool: batches committed and buckets they claimed this round. */
  size_t batches, buckets;
  int header_printed; /* the verdict table's header, once per round */
} round_summary;

static void print_row(const cl_vchip *ch, const cl_verify_out *o) {
  static const char *cons[] = {"CONSISTENT", "INSUFFICIENT", "INCONSISTENT"};
  static const char *site[] = {"-", "SITE_CONSISTENT", "SITE_EXCLUDED"};
  static const char *reg[] = {"-", "INSIDE", "OUTSIDE", "UNDETERMINED"};
  _Static_assert(sizeof cons / sizeof *cons == CL_ATT_CONSISTENCY_COUNT, "a name per verdict");
  _Static_assert(sizeof site / sizeof *site == CL_ATT_SITE_COUNT, "a name per verdict");
  _Static_assert(sizeof reg / sizeof *reg == CL_ATT_REGION_COUNT, "a name per verdict");
  char alerts[128] = "";
  size_t n = 0;
  for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++)
    if (o->alert[k])
      n += (size_t)snprintf(alerts + n, sizeof alerts - n, "%s%s", n ? "," : "", cl_alert_kind_name(k));
  printf("%-16s %-12s %-15s %-12s %10.1f %4zu  %s\n", ch->serial, cons[o->a.consistency],
         site[o->a.site], reg[o->a.region], o->radius_km, o->landmarks_used, n ? alerts : "-");
}

/*
 * The landmark_misplaced detail for a suspect: the group it belongs to, by
 * name, and how many of it every smallest explanation takes. Names beyond
 * the buffer are counted, not listed.
 */
static void suspect_detail(const cl_vworld *w, const cl_xcheck_group *g, char *out, size_t len) {
  size_t k = (size_t)snprintf(out, len, "ambiguous: %zu of {", g->need);
  size_t i = 0;
  for (; i < g->n_members; i++) {
    const char *name = w->landmarks[g->members[i]].name;
    if (k + strlen(name) + 80 > len) break;
    k += (size_t)snprintf(out + k, len - k, "%s%s", i ? ", " : "", name);
  }
  if (i < g->n_members) k += (size_t)snprintf(out + k, len - k, ", and %zu more", g->n_members - i);
  snprintf(out + k, len - k, "} %s misplaced; the links cannot say which",
           g->need == 1 ? "is" : "are");
}

/*
 * Landmark cross-check on the round's landmark-to-landmark links: a landmark
 * in every smallest set that explains the faster-than-light pairs is blamed
 * (landmark_misplaced, with its count of such links). Where the links cannot
 * single one out (a single violated link a-b), each suspect gets the alert
 * with an "ambiguous:" detail that names the whole group instead. A landmark
 * no longer blamed or suspected has it cleared. Links are judged at the
 * speed of light whatever the chip bounds use.
 */
static int check_landmarks(verifier *v, cl_vworld *w, round_summary *sum, char *err,
                           size_t errlen) {
  (void)v;
  if (w->n_landmarks < 2) return CL_OK;
  cl_xcheck_position *pos = calloc(w->n_landmarks, sizeof *pos);
  cl_xcheck_rtt *rtts = calloc(w->n_links ? w->n_links : 1, sizeof *rtts);
  int rc = CL_ENOMEM;
  cl_xcheck_result res;
  memset(&res, 0, sizeof res);
  if (!pos || !rtts) goto done;
  for (size_t i = 0; i < w->n_landmarks; i++)
    pos[i] = (cl_xcheck_position){w->landmarks[i].name, w->landmarks[i].lat, w->landmarks[i].lon};
  size_t nr = 0;
  for (size_t i = 0; i < w->n_links; i++) {
    const char *a = NULL, *b = NULL;
    for (size_t j = 0; j < w->n_landmarks; j++) {
      if (w->landmarks[j].id == w->links[i].from_id) a = w->landmarks[j].name;
      if (w->landmarks[j].id == w->links[i].to_id) b = w->landmarks[j].name;
    }
    if (a && b) rtts[nr++] = (cl_xcheck_rtt){a, b, w->links[i].rtt_ms, 0};
  }
  rc = cl_xcheck_run(pos, w->n_landmarks, rtts, nr, CL_SPEED_C, "landmark_links", &res, err, errlen);
  if (rc != CL_OK) goto done;
  for (size_t i = 0; i < w->n_landmarks && rc == CL_OK; i++) {
    int blamed = 0;
    for (size_t k = 0; k < res.n_blamed; k++) blamed |= res.blamed[k] == i;
    const cl_xcheck_group *group = NULL;
    for (size_t g = 0; g < res.n_ambiguous && !blamed; g++)
      for (size_t k = 0; k < res.ambiguous[g].n_members; k++)
        if (res.ambiguous[g].members[k] == i) group = &res.ambiguous[g];
    char detail[512] = "";
    if (blamed) {
      size_t pairs = 0;
      for (size_t k = 0; k < res.n_violations; k++)
        pairs += res.violations[k].a == i || res.violations[k].b == i;
      snprintf(detail, sizeof detail,
               "%zu landmark link(s) faster than light for the declared position (%.4f, %.4f)",
               pairs, w->landmarks[i].lat, w->landmarks[i].lon);
    } else if (group) {
      suspect_detail(w, group, detail, sizeof detail);
    }
    if (blamed || group) sum->alerts_open++;
    rc = cl_vstore_landmark_alert(v->db, &w->landmarks[i], CL_VALERT_MISPLACED, blamed || group,
                                  detail, err, errlen);
  }
done:
  cl_xcheck_result_free(&res);
  free(pos);
  free(rtts);
  return rc;
}

/* The detail of a landmark_bad_records alert ("reason=N ...") of the counts
 * by cl_ev_reason; returns the total. */
static uint64_t refusal_detail(const uint64_t rejected[CL_EV__COUNT], char *detail, size_t len) {
  size_t n = 0;
  uint64_t total = 0;
  detail[0] = '\0';
  for (int k = 1; k < CL_EV__COUNT; k++) {
    if (!rejected[k]) continue;
    total += rejected[k];
    n += (size_t)snprintf(detail + n, len - n, "%s%s=%llu", n ? " " : "",
                          cl_ev_reason_name((cl_ev_reason)k), (unsigned long long)rejected[k]);
    if (n >= len) n = len - 1;
  }
  return total;
}

static void log_refused(const char *name, int64_t id, uint64_t total, const char *detail) {
  char qn[160];
  cl_log(CL_LOG_WARN, "rows refused", "landmark=%s landmark_id=%lld rows=%llu %s",
         cl_log_quote(qn, sizeof qn, name, strlen(name)), (long long)id,
         (unsigned long long)total, detail);
}

/*
 * Rows the round refused, per landmark they name: one log line each and a
 * landmark_bad_records alert, opened (or its detail updated) while a round
 * refuses some of its rows and cleared by the first round that refuses
 * none.
 */
static int report_rejections(verifier *v, cl_vworld *w, round_summary *sum, char *err,
                             size_t errlen) {
  int rc = CL_OK;
  for (int k = 0; k < CL_EV__COUNT; k++) sum->rejected[k] = w->rejected[k];
  sum->judged = w->judged;
  for (size_t i = 0; i < w->n_landmarks && rc == CL_OK; i++) {
    cl_vlandmark *l = &w->landmarks[i];
    char detail[160];
    uint64_t total = refusal_detail(l->rejected, detail, sizeof detail);
    if (total) log_refused(l->name, l->id, total, detail);
    rc = cl_vstore_landmark_alert(v->db, l, CL_VALERT_BAD_RECORDS, total > 0, detail, err,
                                  errlen);
  }
  return rc;
}

/* A pool member's batch: its refusals are added to the round's (the alerts
 * follow once the round's batches are done, tally_alerts). CL_ENOMEM. */
static int tally_rejections(verifier *v, const cl_vworld *w, round_summary *sum) {
  for (int k = 0; k < CL_EV__COUNT; k++) sum->rejected[k] += w->rejected[k];
  sum->judged += w->judged;
  for (size_t i = 0; i < w->n_landmarks; i++) {
    const cl_vlandmark *l = &w->landmarks[i];
    size_t j = 0;
    while (j < v->n_tally && v->tally[j].id != l->id) j++;
    if (j == v->n_tally) {
      lm_tally *nt = realloc(v->tally, (v->n_tally + 1) * sizeof *nt);
      if (!nt) return CL_ENOMEM;
      v->tally = nt;
      memset(&nt[j], 0, sizeof nt[j]);
      if (!(nt[j].name = strdup(l->name))) return CL_ENOMEM;
      nt[j].id = l->id;
      v->n_tally++;
    }
    for (int k = 0; k < CL_EV__COUNT; k++) v->tally[j].rejected[k] += l->rejected[k];
  }
  return CL_OK;
}

static void tally_free(verifier *v) {
  for (size_t i = 0; i < v->n_tally; i++) free(v->tally[i].name);
  free(v->tally);
  v->tally = NULL;
  v->n_tally = 0;
}

/* After a pool member's batches: one log line per landmark with refused
 * rows, and this member's landmark_bad_records alerts, in one transaction. */
static int tally_alerts(verifier *v, char *err, size_t errlen) {
  size_t n = v->n_tally;
  int64_t *ids = calloc(n ? n : 1, sizeof *ids);
  uint64_t *totals = calloc(n ? n : 1, sizeof *totals);
  char **details = calloc(n ? n : 1, sizeof *details);
  int rc = ids && totals && details ? CL_OK : CL_ENOMEM;
  for (size_t i = 0; i < n && rc == CL_OK; i++) {
    if (!(details[i] = malloc(160))) {
      rc = CL_ENOMEM;
      break;
    }
    ids[i] = v->tally[i].id;
    totals[i] = refusal_detail(v->tally[i].rejected, details[i], 160);
    if (totals[i]) log_refused(v->tally[i].name, ids[i], totals[i], details[i]);
  }
  if (rc == CL_ENOMEM) cl_err_set(err, errlen, "landmark_bad_records: out of memory");
  if (rc == CL_OK) rc = cl_store_begin(v->db, err, errlen);
  if (rc == CL_OK) {
    rc = cl_vstore_pool_bad_records(v->db, v->pool, v->verifier_id, v->members, v->n_members,
                                    ids, totals, details, n, err, errlen);
    if (rc == CL_OK) rc = cl_store_commit(v->db, err, errlen);
    else cl_store_rollback(v->db);
  }
  for (size_t i = 0; details && i < n; i++) free(details[i]);
  free(details);
  free(totals);
  free(ids);
  return rc;
}

/* How many rounds back a pool's coverage is checked: far enough that a
 * member one round late has finished it. */
#define POOL_GAP_ROUNDS 2

/*
 * The pool's coverage of the round POOL_GAP_ROUNDS before round_end, checked
 * by the member whose batch claimed bucket 0 (once per round in the pool),
 * after its batches: active chips that no member attested for it are
 * counted and logged. A failed check is logged and fails nothing.
 */
static void check_pool_gaps(verifier *v, uint64_t round_end) {
  uint64_t back = POOL_GAP_ROUNDS * v->interval_ns;
  if (round_end <= back) return;
  uint64_t past = round_end - back;
  int ran = 0;
  uint64_t chips = 0;
  char first[256], err[512];
  if (cl_vstore_pool_gaps(v->db, v->pool, past, v->members, v->n_members, &ran, &chips, first,
                          sizeof first, err, sizeof err) != CL_OK) {
    cl_log(CL_LOG_WARN, "cannot check the pool's coverage", "err=\"%.400s\"", err);
    return;
  }
  if (!ran || !chips) return;
  v->pool_unattested += chips;
  char qs[300];
  cl_log(CL_LOG_WARN, "chips not attested", "pool=%s round_end_ns=%llu chips=%llu first=%s "
         "hint=\"no member of the pool attested them for that round: a member died in the "
         "middle of a batch, or their claims or attestations were deleted\"",
         v->pool, (unsigned long long)past, (unsigned long long)chips,
         cl_log_quote(qs, sizeof qs, first, strlen(first)));
}

/*
 * Refuses a round that would end in the database's future (the verifier's
 * clock runs ahead), with the verifier_clock alert opened in its own
 * transaction; clears that alert once the clocks agree. CL_EINVAL with err
 * set when refused.
 */
static int check_clock(verifier *v, uint64_t round_end, char *err, size_t errlen) {
  uint64_t db_now = 0;
  int rc = cl_vstore_db_now(v->db, &db_now, err, errlen);
  if (rc != CL_OK) return rc;
  int ahead = round_end > db_now + CLOCK_AHEAD_SLACK_NS;
  char detail[160] = "";
  if (ahead)
    snprintf(detail, sizeof detail,
             "round end %llu is %.1f s after the database's clock; no round until they agree",
             (unsigned long long)round_end, (double)(round_end - db_now) / 1e9);
  char aerr[512];
  if (cl_vstore_verifier_alert(v->db, v->verifier_id, ahead, detail, aerr, sizeof aerr) != CL_OK)
    cl_log(CL_LOG_WARN, "cannot update the verifier_clock alert", "err=\"%.400s\"", aerr);
  if (!ahead) return CL_OK;
  cl_err_set(err, errlen, "verifier clock ahead of the database: %s", detail);
  return CL_EINVAL;
}

/*
 * One transaction of a round: the whole round (scope NULL), or one batch of
 * a pool member, whose buckets it claims first (*claimed = 0 and nothing
 * done when none is left). Adds to sum; t0 is when its time started.
 * The landmark duties of the round (cross-check, refusals) are done here
 * for a whole round; for a pool, the cross-check by the batch that claims
 * bucket 0 (*duty = 1), and the refusals are tallied for tally_alerts.
 * Returns 0 or a CL_* code with err set; on error nothing of the
 * transaction was written.
 */
static int run_batch(verifier *v, uint64_t round_end, cl_vscope *scope, round_summary *sum,
                     int print, uint64_t t0, int *claimed, int *duty, char *err, size_t errlen) {
  int rc;
  *claimed = 1;
  *duty = 0;
  if ((rc = cl_store_begin(v->db, err, errlen)) != CL_OK) return rc;
  if (!scope) cl_evcache_round(v->ev); /* a pool member's round starts before its batches */
  uint64_t verified0 = cl_evcache_verified(v->ev), hits0 = cl_evcache_hits(v->ev);
  cl_vworld w;
  cl_vwriter *wr = NULL;
  memset(&w, 0, sizeof w);
  if ((rc = cl_vstore_lock(v->db, v->verifier_id, err, errlen)) != CL_OK) goto fail;
  if (scope) {
    if ((rc = cl_vstore_pool_claim(v->db, v->pool, round_end, v->interval_ns, v->verifier_id,
                                   scope, err, errlen)) != CL_OK)
      goto fail;
    if (!scope->n_buckets) {
      *claimed = 0;
      cl_store_rollback(v->db);
      return CL_OK;
    }
    *duty = scope->buckets[0] == 0;
  }
  if ((rc = cl_vstore_load_scope(v->db, v->verifier_id, round_end, v->vp.window_ns, scope, v->ev,
                                 &w, err, errlen)) != CL_OK)
    goto fail;
  sum->verified += cl_evcache_verified(v->ev) - verified0;
  sum->cache_hits += cl_evcache_hits(v->ev) - hits0;
  uint64_t t = uv_hrtime();
  sum->verify_ns += w.judge_ns;
  sum->sql_read_ns += t - t0 - w.judge_ns;
  if ((rc = cl_vwriter_begin(v->db, v->verifier_id, round_end, &wr, err, errlen)) != CL_OK) goto fail;
  if (print && !sum->header_printed) {
    printf("%-16s %-12s %-15s %-12s %10s %4s  %s\n", "CHIP", "CONSISTENCY", "SITE", "REGION",
           "RADIUS_KM", "LMS", "ALERTS");
    sum->header_printed = 1;
  }
  for (size_t i = 0; i < w.n_chips; i++) {
    cl_vchip *ch = &w.chips[i];
    sum->chips++;
    if (ch->attested) {
      sum->skipped++;
      sum->heads_ahead += ch->head_ahead;
      continue;
    }
    cl_verify_out o;
    rc = cl_verify_chip_round(v->geo, &v->vp, v->key, round_end, &ch->in, &o);
    if (rc == CL_EINVAL) {
      /* This chip's inputs are beyond the engine: it gets no attestation
       * this round, every other chip does. */
      sum->chips_failed++;
      char qs[160];
      cl_log(CL_LOG_WARN, "chip not attested", "chip=%s minima=%zu err=\"%s\"",
             cl_log_quote(qs, sizeof qs, ch->serial, strlen(ch->serial)), ch->in.n_mins,
             cl_strerror(rc));
      rc = CL_OK;
      continue;
    }
    if (rc != CL_OK) {
      snprintf(err, errlen, "chip %s: engine error %s", ch->serial, cl_strerror(rc));
      goto fail;
    }
    if (o.minima_dropped) {
      sum->chips_truncated++;
      char qs[160];
      cl_log(CL_LOG_WARN, "chip attested from its tightest minima", "chip=%s minima=%zu used=%d "
             "dropped=%zu", cl_log_quote(qs, sizeof qs, ch->serial, strlen(ch->serial)),
             ch->in.n_mins, CL_GEO_MAX_LANDMARKS, o.minima_dropped);
    }
    sum->geometry_ns += o.engine_ns;
    sum->sign_ns += o.sign_ns;
    uint64_t tw = uv_hrtime();
    rc = cl_vwriter_add(wr, ch, &o, err, errlen);
    sum->sql_write_ns += uv_hrtime() - tw;
    if (rc != CL_OK) goto fail;
    sum->written++;
    sum->by_consistency[o.a.consistency]++;
    sum->by_site[o.a.site]++;
    sum->by_region[o.a.region]++;
    if (o.a.consistency < CL_ATT_CONSISTENCY_COUNT && o.a.site < CL_ATT_SITE_COUNT &&
        o.a.region < CL_ATT_REGION_COUNT)
      sum->by_verdict[o.a.consistency][o.a.site][o.a.region]++;
    for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++) sum->alerts_open += (size_t)o.alert[k];
    if (print) print_row(ch, &o);
  }
  t = uv_hrtime();
  rc = cl_vwriter_finish(&wr, err, errlen);
  sum->sql_write_ns += uv_hrtime() - t;
  if (rc != CL_OK) goto fail;
  t = uv_hrtime();
  if (!scope) {
    if ((rc = check_landmarks(v, &w, sum, err, errlen)) != CL_OK ||
        (rc = report_rejections(v, &w, sum, err, errlen)) != CL_OK)
      goto fail;
  } else if (*duty && (rc = check_landmarks(v, &w, sum, err, errlen)) != CL_OK) {
    goto fail;
  }
  sum->landmarks_ns += uv_hrtime() - t;
  t = uv_hrtime();
  rc = cl_store_commit(v->db, err, errlen);
  sum->sql_write_ns += uv_hrtime() - t;
  if (rc == CL_OK && scope) {
    sum->batches++;
    sum->buckets += scope->n_buckets;
    /* Counted once committed: a batch rolled back is done again. */
    if (tally_rejections(v, &w, sum) != CL_OK)
      cl_log(CL_LOG_WARN, "cannot count the rows refused", "err=out_of_memory");
  }
  cl_vworld_free(&w);
  return rc;
fail:
  cl_vwriter_abort(&wr);
  cl_vworld_free(&w);
  cl_store_rollback(v->db);
  return rc;
}

/*
 * A pool member's round: the pool's members, then batches of unclaimed
 * buckets until none is left, then this member's refusal alerts and, after
 * the batch that claimed bucket 0, the pool's coverage of an earlier round.
 * A failed round is retried like any other: the batches committed before
 * the failure stay, and the retry claims what is left.
 */
static int run_pool_round(verifier *v, uint64_t round_end, round_summary *sum, int print,
                          char *err, size_t errlen) {
  free(v->members);
  v->members = NULL;
  int rc = cl_vstore_pool_members(v->db, v->pool, round_end, v->interval_ns, v->verifier_id,
                                  &v->members, &v->n_members, err, errlen);
  if (rc != CL_OK) return rc;
  /* A retried round keeps the refusals of the batches it committed. */
  if (v->tally_round != round_end) tally_free(v);
  v->tally_round = round_end;
  /* The regions are parsed once for all batches (as one transaction reads
   * them once), and the signature cache ages once per round, so that the
   * rows of every batch of the last round stay in it. */
  uint64_t t = uv_hrtime();
  cl_vregions regions;
  if ((rc = cl_vstore_load_regions(v->db, &regions, err, errlen)) != CL_OK) return rc;
  sum->sql_read_ns += uv_hrtime() - t;
  cl_evcache_round(v->ev);
  int claimed = 1, duty = 0, had_duty = 0;
  while (rc == CL_OK && claimed) {
    cl_vscope scope;
    memset(&scope, 0, sizeof scope);
    scope.members = v->members;
    scope.n_members = v->n_members;
    scope.regions = &regions;
    rc = run_batch(v, round_end, &scope, sum, print, uv_hrtime(), &claimed, &duty, err, errlen);
    had_duty |= rc == CL_OK && duty;
  }
  cl_vregions_free(&regions);
  if (rc == CL_OK) rc = tally_alerts(v, err, errlen);
  if (had_duty) check_pool_gaps(v, round_end);
  return rc;
}

/*
 * Runs one round ending at round_end: in one transaction, or as a pool
 * member in batches. Returns 0 or a CL_* code with err set; on error
 * nothing of the failed transaction was written.
 */
static int run_round(verifier *v, uint64_t round_end, round_summary *sum, int print, char *err,
                     size_t errlen) {
  memset(sum, 0, sizeof *sum);
  uint64_t t_start = uv_hrtime();
  int rc = check_clock(v, round_end, err, errlen);
  if (rc != CL_OK) return rc;
  int claimed, duty;
  if (v->pool) rc = run_pool_round(v, round_end, sum, print, err, errlen);
  else rc = run_batch(v, round_end, NULL, sum, print, t_start, &claimed, &duty, err, errlen);
  if (sum->chips_failed || sum->chips_truncated)
    cl_log(CL_LOG_WARN, "chips not fully attested", "round_end_ns=%llu not_attested=%zu "
           "truncated=%zu", (unsigned long long)round_end, sum->chips_failed,
           sum->chips_truncated);
  sum->total_ns = uv_hrtime() - t_start;
  return rc;
}

/*
 * Connects when not connected, and identifies the verifier. *login_refused
 * is set when the database refused the login itself (cl_store_connect's
 * CL_EPERM: a configuration error, exit 2); CL_EDB is an outage, retried at
 * the next round.
 */
static int ensure_db(verifier *v, int *login_refused, char *err, size_t errlen) {
  *login_refused = 0;
  if (v->db && cl_store_ok(v->db)) return CL_OK;
  cl_store_destroy(&v->db);
  int rc = cl_store_connect(&v->db, v->conninfo, err, errlen);
  *login_refused = rc == CL_EPERM;
  if (rc != CL_OK) return rc;
  rc = cl_vstore_verifier_find(v->db, cl_key_public(v->key), &v->verifier_id, err, errlen);
  if (rc == CL_OK) rc = cl_vstore_verifier_may_write(v->db, v->verifier_id, err, errlen);
  return rc;
}

static uint64_t refused(const round_summary *s) {
  uint64_t n = 0;
  for (int k = 1; k < CL_EV__COUNT; k++) n += s->rejected[k];
  return n;
}

static void log_round(uint64_t round_end, const round_summary *s) {
  double ms = 1e-6;
  cl_log(CL_LOG_INFO, "round", "round_end_ns=%llu chips=%zu written=%zu skipped=%zu "
         "consistent=%zu insufficient=%zu inconsistent=%zu site_consistent=%zu "
         "site_excluded=%zu inside=%zu outside=%zu undetermined=%zu alerts=%zu "
         "round_ms=%.1f sql_read_ms=%.1f geometry_ms=%.1f sign_ms=%.1f sql_write_ms=%.1f "
         "landmarks_ms=%.1f verify_ms=%.1f rows_judged=%llu rows_refused=%llu sig_checks=%llu cache_hits=%llu "
         "heads_ahead=%zu",
         (unsigned long long)round_end, s->chips, s->written, s->skipped,
         s->by_consistency[CL_ATT_CONSISTENT], s->by_consistency[CL_ATT_INSUFFICIENT],
         s->by_consistency[CL_ATT_INCONSISTENT], s->by_site[CL_ATT_SITE_CONSISTENT],
         s->by_site[CL_ATT_SITE_EXCLUDED], s->by_region[CL_ATT_REGION_INSIDE],
         s->by_region[CL_ATT_REGION_OUTSIDE], s->by_region[CL_ATT_REGION_UNDETERMINED],
         s->alerts_open, (double)s->total_ns * ms,
         (double)s->sql_read_ns * ms, (double)s->geometry_ns * ms, (double)s->sign_ns * ms,
         (double)s->sql_write_ns * ms, (double)s->landmarks_ns * ms, (double)s->verify_ns * ms,
         (unsigned long long)s->judged, (unsigned long long)refused(s),
         (unsigned long long)s->verified, (unsigned long long)s->cache_hits, s->heads_ahead);
  if (s->heads_ahead)
    cl_log(CL_LOG_WARN, "chips attested after this round", "round_end_ns=%llu chips=%zu "
           "hint=\"a round earlier than their last (--round-end, or a clock that ran ahead): no "
           "attestation until a round passes their last\"",
           (unsigned long long)round_end, s->heads_ahead);
}

/* A pool member's share of the round, beside its round line. */
static void log_pool_round(const verifier *v, uint64_t round_end, const round_summary *s) {
  if (!v->pool) return;
  cl_log(CL_LOG_INFO, "pool round", "pool=%s round_end_ns=%llu members=%zu batches=%zu "
         "buckets=%zu chips=%zu written=%zu", v->pool, (unsigned long long)round_end,
         v->n_members, s->batches, s->buckets, s->chips, s->written);
}

static void schedule(verifier *v);

/* /healthz fails when no publish came for two intervals plus this: the
 * loop publishes after every round and every retry, and blocks while a
 * round runs. */
#define METRICS_STALE_SLACK_MS 10000u

/*
 * /readyz of the verifier: connected to the database, and its last round
 * committed within two intervals (the round of the window ending at
 * last_round runs at last_round + settle; the next one interval later).
 * Returns 1, or 0 with why.
 */
static int verifier_ready(const verifier *v, char *why, size_t whylen) {
  if (!v->db) {
    cl_err_set(why, whylen, "not connected to the database");
    return 0;
  }
  if (!v->rounds) {
    cl_err_set(why, whylen, "no round committed yet");
    return 0;
  }
  uint64_t now = cl_clock_unix_ns();
  uint64_t limit = 2 * v->interval_ns + v->settle_ns;
  if (now > v->last_round && now - v->last_round > limit) {
    cl_err_set(why, whylen, "last round committed ended %.0f s ago, more than two intervals",
               (double)(now - v->last_round) / 1e9);
    return 0;
  }
  return 1;
}

/* Renders the verifier's counters and health on the loop thread and hands
 * them to the HTTP thread. */
static void publish_metrics(verifier *v) {
  static const char *cons[] = {"consistent", "insufficient", "inconsistent"};
  static const char *site[] = {"none", "site_consistent", "site_excluded"};
  static const char *reg[] = {"none", "inside", "outside", "undetermined"};
  _Static_assert(sizeof cons / sizeof *cons == CL_ATT_CONSISTENCY_COUNT, "a label per verdict");
  _Static_assert(sizeof site / sizeof *site == CL_ATT_SITE_COUNT, "a label per verdict");
  _Static_assert(sizeof reg / sizeof *reg == CL_ATT_REGION_COUNT, "a label per verdict");
  cl_mtext *t = &v->mtext;
  char lab[128];
  cl_mtext_reset(t);
  cl_mtext_family(t, "chiploc_verifier_rounds_total", "counter", "Rounds completed and committed.");
  cl_mtext_u64(t, "chiploc_verifier_rounds_total", NULL, v->rounds);
  cl_mtext_family(t, "chiploc_verifier_round_failures_total", "counter",
                  "Rounds that failed and were rolled back (retried).");
  cl_mtext_u64(t, "chiploc_verifier_round_failures_total", NULL, v->round_failures);
  cl_mtext_family(t, "chiploc_verifier_round_seconds", "histogram",
                  "Time of one round, committed or not.");
  cl_mtext_histogram(t, "chiploc_verifier_round_seconds", NULL, &v->round_seconds);
  cl_mtext_family(t, "chiploc_verifier_last_round_end_seconds", "gauge",
                  "End of the window of the last committed round, Unix time.");
  cl_mtext_double(t, "chiploc_verifier_last_round_end_seconds", NULL,
                  (double)v->last_round_end_ns / 1e9);
  cl_mtext_family(t, "chiploc_verifier_chips", "gauge", "Active chips in the last committed round.");
  cl_mtext_u64(t, "chiploc_verifier_chips", NULL, v->last_round_chips);
  cl_mtext_family(t, "chiploc_attestations_total", "counter",
                  "Attestations written by this process, by verdicts.");
  for (int c = 0; c < CL_ATT_CONSISTENCY_COUNT; c++)
    for (int si = 0; si < CL_ATT_SITE_COUNT; si++)
      for (int r = 0; r < CL_ATT_REGION_COUNT; r++) {
        snprintf(lab, sizeof lab, "consistency=\"%s\",site=\"%s\",region=\"%s\"", cons[c],
                 site[si], reg[r]);
        cl_mtext_u64(t, "chiploc_attestations_total", lab, v->attested[c][si][r]);
      }
  cl_mtext_family(t, "chiploc_open_alerts", "gauge",
                  "Alerts not cleared, by kind, after the last round (all verifiers).");
  for (int k = 0; k < CL_VSTORE_ALERT_KINDS; k++) {
    snprintf(lab, sizeof lab, "kind=\"%s\"", cl_vstore_alert_kind_name(k));
    cl_mtext_u64(t, "chiploc_open_alerts", lab, v->open_alerts[k]);
  }
  cl_mtext_family(t, "chiploc_verifier_rows_refused_total", "counter",
                  "Measurement and link rows the verifier did not believe, by reason.");
  for (int k = 1; k < CL_EV__COUNT; k++) {
    snprintf(lab, sizeof lab, "reason=\"%s\"", cl_ev_reason_name((cl_ev_reason)k));
    cl_mtext_u64(t, "chiploc_verifier_rows_refused_total", lab, v->rejected[k]);
  }
  if (v->pool) {
    cl_mtext_family(t, "chiploc_verifier_pool_unattested_total", "counter",
                    "Chips that no member of the pool attested for a round, found by this "
                    "process's coverage checks (--pool).");
    cl_mtext_u64(t, "chiploc_verifier_pool_unattested_total", NULL, v->pool_unattested);
  }
  cl_mtext_family(t, "chiploc_verifier_signature_checks_total", "counter",
                  "Rows whose signatures the verifier checked (each row once while cached).");
  cl_mtext_u64(t, "chiploc_verifier_signature_checks_total", NULL, cl_evcache_verified(v->ev));
  cl_mtext_family(t, "chiploc_database_connected", "gauge",
                  "1 while the verifier holds a PostgreSQL connection (as of its last round or "
                  "retry), 0 after a failure until it reconnects.");
  cl_mtext_u64(t, "chiploc_database_connected", NULL, v->db ? 1 : 0);
  char why[256];
  cl_metrics_health h = {.why = why};
  h.stale_after_ms = (uint32_t)((2 * v->interval_ns + v->settle_ns) / 1000000ull) +
                     METRICS_STALE_SLACK_MS;
  h.ready = verifier_ready(v, why, sizeof why);
  if (cl_mtext_ok(t) != CL_OK ||
      cl_metrics_server_publish(v->metrics, t->buf, t->len, &h) != CL_OK)
    cl_log(CL_LOG_WARN, "cannot render metrics", "err=out_of_memory");
}

/* After a committed round: what it wrote, and the open alerts now. */
static void count_round(verifier *v, uint64_t round_end, const round_summary *sum) {
  for (int c = 0; c < CL_ATT_CONSISTENCY_COUNT; c++)
    for (int si = 0; si < CL_ATT_SITE_COUNT; si++)
      for (int r = 0; r < CL_ATT_REGION_COUNT; r++)
        v->attested[c][si][r] += sum->by_verdict[c][si][r];
  v->last_round_end_ns = round_end;
  v->last_round_chips = sum->chips;
  for (int k = 0; k < CL_EV__COUNT; k++) v->rejected[k] += sum->rejected[k];
  char err[512];
  if (cl_vstore_open_alerts(v->db, v->open_alerts, err, sizeof err) != CL_OK)
    cl_log(CL_LOG_WARN, "cannot count open alerts", "err=\"%.400s\"", err);
}

/* Starts the --metrics endpoint. Returns 0, or the exit code: 2 for an
 * address that is not a numeric IP, 1 when it cannot be served. */
static int start_metrics(verifier *v, const char *host, int port) {
  char err[512];
  int rc = cl_metrics_server_start(&v->metrics, host, port, err, sizeof err);
  if (rc != CL_OK) {
    fprintf(stderr, "chiploc: --metrics: %s\n", err);
    return rc == CL_EINVAL ? 2 : 1;
  }
  /* 10 ms to 5 min: a round over many chips with a slow database. */
  static const double le[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
  cl_histogram_init(&v->round_seconds, le, sizeof le / sizeof le[0]);
  cl_mtext_init(&v->mtext);
  publish_metrics(v);
  cl_log(CL_LOG_INFO, "serving metrics", "addr=%s:%d paths=/metrics,/healthz,/readyz", host,
         cl_metrics_server_port(v->metrics));
  return 0;
}

static void on_timer(uv_timer_t *t) {
  verifier *v = t->data;
  uint64_t now = cl_clock_unix_ns();
  uint64_t round_end = (now - v->settle_ns) / v->interval_ns * v->interval_ns;
  char err[512];
  if (round_end > v->last_round) {
    int refused = 0;
    int rc = ensure_db(v, &refused, err, sizeof err);
    if (rc == CL_ENOTFOUND || rc == CL_EPERM) {
      cl_log(CL_LOG_ERROR,
             refused            ? "database login refused"
             : rc == CL_EPERM   ? "verifier not bound"
                                : "verifier not registered",
             "err=\"%s\"", err);
      v->exit_code = refused ? 2 : 1;
      uv_stop(v->loop);
      return;
    }
    round_summary sum;
    uint64_t t0 = uv_hrtime();
    if (rc == CL_OK) rc = run_round(v, round_end, &sum, 0, err, sizeof err);
    cl_histogram_observe(&v->round_seconds, (double)(uv_hrtime() - t0) / 1e9);
    if (rc == CL_OK) {
      v->last_round = round_end;
      v->rounds++;
      log_round(round_end, &sum);
      log_pool_round(v, round_end, &sum);
      if (v->metrics) count_round(v, round_end, &sum);
    } else {
      v->round_failures++;
      cl_log(CL_LOG_WARN, "round failed; will retry", "err=\"%.400s\"", err);
      cl_store_destroy(&v->db);
    }
    if (v->metrics) publish_metrics(v);
  }
  schedule(v);
}

/* Arms the timer for the next round boundary plus the settle time, or one
 * second from now when a failed round must be retried. */
static void schedule(verifier *v) {
  uint64_t now = cl_clock_unix_ns();
  uint64_t next = ((now - v->settle_ns) / v->interval_ns + 1) * v->interval_ns + v->settle_ns;
  uint64_t delay_ms = (next - now) / 1000000ull + 1;
  uint64_t due_round = (now - v->settle_ns) / v->interval_ns * v->interval_ns;
  if (due_round > v->last_round) delay_ms = 1000; /* retry */
  uv_timer_start(&v->timer, on_timer, delay_ms, 0);
}

static void on_signal(uv_signal_t *h, int signum) {
  verifier *v = h->data;
  cl_log(CL_LOG_INFO, "shutting down", "signal=%d rounds=%llu", signum,
         (unsigned long long)v->rounds);
  uv_stop(v->loop);
}

/* SIGHUP must neither kill the verifier (its default action would, in the
 * middle of a round) nor pretend: every setting comes from the command line
 * and the environment, which a running process cannot re-read, and the log
 * goes to standard error, so there is nothing to reload or reopen. */
static void on_sighup(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  cl_log(CL_LOG_INFO, "SIGHUP: nothing to reload",
         "hint=\"options and CHIPLOC_DB are read at start: restart to change them\"");
}

static void on_closed(uv_handle_t *h) { (void)h; }

static void usage(FILE *f) {
  fprintf(f,
          "usage: chiploc verify [--db CONNINFO] --key FILE [--window SECONDS] [--interval SECONDS]\n"
          "                      [--settle SECONDS] [--speed c|fibre|M_PER_S] [--min-landmarks N]\n"
          "                      [--dark-after SECONDS] [--max-chip-speed M_PER_S]\n"
          "                      [--follow [--metrics HOST:PORT] | --round-end UNIX_SECONDS]\n"
          "                      [--pool NAME] [--quiet] [--log-level L]\n"
          "Attests every active chip for the latest finished round: the fastest measurement\n"
          "per landmark within the window, the location engine's verdicts, one signed\n"
          "attestation chained to the chip's previous one, alerts opened or cleared.\n"
          "Defaults: window 300 s, interval 60 s, settle 2 s, speed c, 3 landmarks,\n"
          "dark after 900 s, chips moving at up to 40 m/s (every bound grows by window\n"
          "times that: 12 km by default; 0 for chips that never move).\n"
          "Without --follow: one round, a table of verdicts; --round-end names the round\n"
          "(its end, rounded down to the interval), e.g. a missed one; chips attested\n"
          "for a later round are skipped (a chain only grows forward).\n"
          "A round ending more than 2 s after the database's clock is refused (exit 1)\n"
          "and raises a verifier_clock alert.\n"
          "With --follow: a round at every interval boundary until SIGTERM; --metrics\n"
          "serves Prometheus metrics at http://HOST:PORT/metrics, and /healthz and\n"
          "/readyz (numeric IP).\n"
          "With --pool NAME: share the chips with the other verifiers of pool NAME\n"
          "(each with its own key; the same --interval and --window): each round's\n"
          "chips are claimed in batches, each chip attested by one member, and a\n"
          "member that stops has its chips taken by the others from the next round.\n"
          "--db defaults to $CHIPLOC_DB: the verifier's own login, a member of\n"
          "chiploc_verifier bound to it (chiploc verifier bind).\n");
}

/* Parses a whole number of seconds in [min, max]. */
static int parse_secs(const char *opt, const char *text, double min, double max, double *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || end == text || *end || !(v >= min && v <= max)) {
    fprintf(stderr, "chiploc: %s %s: must be a number of seconds in [%.0f, %.0f]\n", opt, text, min,
            max);
    return -1;
  }
  *out = v;
  return 0;
}

int cmd_verify(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, 'd'},         {"key", required_argument, NULL, 'k'},
      {"window", required_argument, NULL, 'w'},     {"interval", required_argument, NULL, 'i'},
      {"settle", required_argument, NULL, 's'},     {"speed", required_argument, NULL, 'v'},
      {"min-landmarks", required_argument, NULL, 'm'}, {"dark-after", required_argument, NULL, 'a'},
      {"follow", no_argument, NULL, 'f'},           {"quiet", no_argument, NULL, 'q'},
      {"log-level", required_argument, NULL, 'l'},  {"help", no_argument, NULL, 'h'},
      {"metrics", required_argument, NULL, 'M'},
      {"max-chip-speed", required_argument, NULL, 'x'}, {"round-end", required_argument, NULL, 'r'},
      {"pool", required_argument, NULL, 'P'},
      {NULL, 0, NULL, 0}};
  const char *db = NULL, *keyfile = NULL, *metrics = NULL, *pool = NULL;
  double window = 300, interval = 60, settle = 2, dark = 900, minl = 3;
  double speed = CL_SPEED_C, chip_speed = CL_VERIFY_MAX_CHIP_SPEED_DEFAULT;
  int follow = 0, quiet = 0, o;
  const char *round_end_text = NULL;
  optind = 1;
  while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (o) {
    case 'd': db = optarg; break;
    case 'k': keyfile = optarg; break;
    case 'w': if (parse_secs("--window", optarg, 1, 86400, &window)) return 2; break;
    case 'i': if (parse_secs("--interval", optarg, 1, 86400, &interval)) return 2; break;
    case 's': if (parse_secs("--settle", optarg, 0, 3600, &settle)) return 2; break;
    case 'a': if (parse_secs("--dark-after", optarg, 1, 30 * 86400.0, &dark)) return 2; break;
    case 'm':
      if (parse_secs("--min-landmarks", optarg, 1, CL_GEO_MAX_LANDMARKS, &minl)) return 2;
      break;
    case 'v':
      if (cl_speed_parse(optarg, &speed) != CL_OK) {
        fprintf(stderr, "chiploc: --speed %s: want c, fibre or metres per second in (0, c]\n", optarg);
        return 2;
      }
      break;
    case 'f': follow = 1; break;
    case 'M': metrics = optarg; break;
    case 'x': {
      char *end = NULL;
      errno = 0;
      chip_speed = strtod(optarg, &end);
      if (errno || end == optarg || *end ||
          !(chip_speed >= 0 && chip_speed <= CL_VERIFY_MAX_CHIP_SPEED_LIMIT)) {
        fprintf(stderr, "chiploc: --max-chip-speed %s: must be metres per second in [0, %g]\n",
                optarg, CL_VERIFY_MAX_CHIP_SPEED_LIMIT);
        return 2;
      }
      break;
    }
    case 'r': round_end_text = optarg; break;
    case 'P':
      if (cl_vstore_pool_name_ok(optarg) != CL_OK) {
        fprintf(stderr, "chiploc: --pool %s: want 1 to %d letters, digits, '_', '.' or '-'\n",
                optarg, CL_VSTORE_POOL_MAX);
        return 2;
      }
      pool = optarg;
      break;
    case 'q': quiet = 1; break;
    case 'l': {
      cl_log_level lvl;
      if (cl_log_parse_level(optarg, &lvl) != CL_OK) {
        fprintf(stderr, "chiploc: --log-level %s: want debug, info, warn or error\n", optarg);
        return 2;
      }
      cl_log_set_level(lvl);
      break;
    }
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!keyfile || optind != argc) {
    usage(stderr);
    return 2;
  }
  if (!(db = chiploc_conninfo(db, "verify"))) return 2;
  char mhost[256];
  int mport = 0;
  if (metrics && !follow) {
    fprintf(stderr, "chiploc: --metrics needs --follow\n");
    return 2;
  }
  double round_end_s = 0;
  if (round_end_text && follow) {
    fprintf(stderr, "chiploc: --round-end names one round; it does not go with --follow\n");
    return 2;
  }
  if (round_end_text &&
      parse_secs("--round-end", round_end_text, interval, 4102444800.0, &round_end_s))
    return 2;
  if (metrics && cl_parse_hostport(metrics, mhost, sizeof mhost, &mport) != CL_OK) {
    fprintf(stderr, "chiploc: --metrics %s: want HOST:PORT or [IPV6]:PORT\n", metrics);
    return 2;
  }
  verifier v;
  memset(&v, 0, sizeof v);
  v.conninfo = db;
  v.vp.window_ns = (uint64_t)(window * 1e9);
  v.vp.speed_m_per_s = speed;
  v.vp.min_landmarks = (size_t)minl;
  v.vp.dark_after_ns = (uint64_t)(dark * 1e9);
  v.vp.max_chip_speed_m_per_s = chip_speed;
  v.interval_ns = (uint64_t)(interval * 1e9);
  v.settle_ns = (uint64_t)(settle * 1e9);
  v.quiet = quiet;
  v.pool = pool;
  char err[512];
  if (cl_key_load(&v.key, keyfile, err, sizeof err) != CL_OK) {
    fprintf(stderr, "chiploc: key %s: %s\n", keyfile, err);
    return 2;
  }
  if (cl_geo_ctx_create(&v.geo) != CL_OK || !(v.ev = cl_evcache_new())) {
    cl_geo_ctx_destroy(&v.geo);
    cl_key_destroy(&v.key);
    return 1;
  }
  int code = 0;
  if (!follow) {
    int refused = 0;
    int rc = ensure_db(&v, &refused, err, sizeof err);
    round_summary sum;
    uint64_t end = round_end_text ? (uint64_t)(round_end_s * 1e9) : cl_clock_unix_ns() - v.settle_ns;
    uint64_t round_end = end / v.interval_ns * v.interval_ns;
    if (rc == CL_OK) rc = run_round(&v, round_end, &sum, !quiet, err, sizeof err);
    if (rc != CL_OK) {
      fprintf(stderr, "chiploc: %s\n", err);
      code = refused ? 2 : 1;
    } else {
      printf("verify: round ending %llu: %zu chip(s), %zu attested, %zu already attested\n",
             (unsigned long long)round_end, sum.chips, sum.written, sum.skipped);
      log_round(round_end, &sum);
      log_pool_round(&v, round_end, &sum);
    }
  } else {
    cl_log_set_prog("verifier");
    signal(SIGPIPE, SIG_IGN);
    if (metrics && (code = start_metrics(&v, mhost, mport)) != 0) goto out;
    v.loop = uv_default_loop();
    uv_timer_init(v.loop, &v.timer);
    v.timer.data = &v;
    uv_signal_init(v.loop, &v.sigterm);
    uv_signal_init(v.loop, &v.sigint);
    uv_signal_init(v.loop, &v.sighup);
    v.sigterm.data = v.sigint.data = v.sighup.data = &v;
    uv_signal_start(&v.sigterm, on_signal, SIGTERM);
    uv_signal_start(&v.sigint, on_signal, SIGINT);
    uv_signal_start(&v.sighup, on_sighup, SIGHUP);
    cl_log(CL_LOG_INFO, "starting", "window_s=%.0f interval_s=%.0f speed=%.0f min_landmarks=%zu "
           "max_chip_speed=%g pool=%s", window, interval, speed, v.vp.min_landmarks, chip_speed,
           pool ? pool : "-");
    uv_timer_start(&v.timer, on_timer, 0, 0);
    uv_run(v.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&v.timer, on_closed);
    uv_close((uv_handle_t *)&v.sigterm, on_closed);
    uv_close((uv_handle_t *)&v.sigint, on_closed);
    uv_close((uv_handle_t *)&v.sighup, on_closed);
    uv_run(v.loop, UV_RUN_DEFAULT);
    uv_loop_close(v.loop);
    code = v.exit_code;
  }
out:
  cl_metrics_server_stop(&v.metrics);
  cl_mtext_fini(&v.mtext);
  cl_store_destroy(&v.db);
  cl_geo_ctx_destroy(&v.geo);
  cl_evcache_free(&v.ev);
  cl_key_destroy(&v.key);
  free(v.members);
  tally_free(&v);
  return code;
}
