/*
 * Worker thread that owns landmarkd's PostgreSQL connection and its outage
 * spool. See writer.h.
 *
 * The queue is a ring of rows guarded by `mu`. The thread takes a batch by
 * copying the queued rows out (up to batch_max()), writes them with one COPY
 * transaction, and only then removes them from the ring, so a failed write
 * loses nothing: the same rows are retried after a reconnect. Moving rows to
 * the spool follows the same pattern: copy, append and fdatasync, then
 * remove.
 *
 * Outage handling. `down_since` is the time of the first database failure
 * (a failed connect or a batch that failed with CL_EDB) since the last
 * successful write. Once the outage has lasted flush_interval_ms, or a full
 * batch is waiting, every queued row moves to the spool; the ring stays
 * small. While the spool holds rows and the database answers, the thread
 * replays the spool, oldest first, before it writes any newer queued row, so
 * rows reach the database in the order they were accepted. A replayed row
 * the database already has (a consume that did not reach the disk before a
 * crash) is refused as a duplicate and counted as stored.
 *
 * Only this thread touches the spool once it runs; lm_writer_create opens it
 * before the thread starts and lm_writer_destroy closes it after the join.
 *
 * Key rotation. A spool written under another landmark key is never a
 * reason to stop: holding no record, it is re-made for this key; holding
 * records, it is moved aside (spool.h) and replayed under the landmark
 * entry of the key that signed them, which the schema allows while this
 * login is bound to that entry too (docs/OPERATIONS.md, "Rotate a landmark
 * key"), then deleted. A set-aside spool whose rows cannot be written (key
 * not registered, login not bound, rows refused) is kept and logged, and
 * tried again after lm_writer_refresh or at the next start.
 */
#include "writer.h"
#include "cl_err.h"
#include "cl_key.h"
#include "cl_log.h"
#include "spool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Memory the in-memory queue may use (the ring doubles up to it): about
 * what 10^6 rows of protocol 1 took. A protocol 2 row has room for
 * CL_MAX_BURST probes, so this is about 220 000 rows. */
#define QUEUE_MAX_BYTES (384u * 1024u * 1024u)
#define QUEUE_MAX (QUEUE_MAX_BYTES / sizeof(cl_store_row))
#define RETRY_MIN_MS 200u
#define RETRY_MAX_MS 10000u
/* After a spool I/O error (not a full spool), wait this long before the
 * next attempt; rows stay in memory meanwhile. */
#define SPOOL_RETRY_MS 5000u
/* Set-aside spools opened at start: one per key rotated away while rows
 * were spooled. More wait for a later start. */
#define MAX_ASIDE 16
/* Most rows in one COPY while a backlog is queued (rows arriving faster than
 * batches of batch_size are stored, a spool replay, the queue after an
 * outage). Each transaction costs the server a fixed amount (statement and
 * trigger set-up, round trips, commit): bench/ingest.sh measured a backlog
 * written in 500-row batches at 0.75-0.82 x the rows per second of one raw
 * COPY, and at 0.92-0.99 x with this limit. batch_size still decides
 * when a write is due; a write then takes whatever is queued, up to this
 * many (or batch_size, if that is larger). */
#define BACKLOG_BATCH_ROWS 10000u
/* Rows copied out of the ring per hold of `mu`: a whole backlog batch is
 * megabytes, and lm_writer_push on the event loop must not wait that long. */
#define TAKE_CHUNK_ROWS 256u
/* Bounds of every statement of the writer's session (db_open). */
#define WRITER_STATEMENT_TIMEOUT_MS 60000u
#define WRITER_LOCK_TIMEOUT_MS 30000u

/* A spool of a replaced key (spool.h, lm_spool_move). */
typedef enum {
  ASIDE_UNRESOLVED, /* its landmark entry is looked up at the next connect */
  ASIDE_READY,      /* replayed under landmark_id while the database answers */
  ASIDE_HELD,       /* its rows cannot be written this run (logged): kept */
} aside_state;

typedef struct {
  lm_spool *sp;
  int64_t landmark_id;
  aside_state state;
  uint64_t replayed; /* rows settled from it by this run */
} aside_spool;

struct lm_writer {
  uv_loop_t *loop;
  const cl_landmark_config *cfg;
  uint8_t pk[CL_PK_LEN];
  lm_writer_callbacks cb;
  lm_spool *spool; /* the thread's once it runs */
  aside_spool aside[MAX_ASIDE]; /* likewise */
  size_t n_aside;

  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t cond;
  uv_async_t async;

  /* Guarded by mu. */
  cl_store_row *ring;
  size_t cap, head, len;
  uint64_t oldest_ns; /* uv_hrtime when the oldest queued row arrived */
  int stop;
  int refresh; /* lm_writer_refresh was called */
  uint32_t drain_ms;
  cl_store_chip *chips_out; /* handed to the loop */
  size_t n_chips_out;
  int chips_ready;
  char fatal[768];
  int fatal_code;
  int fatal_ready;
  lm_writer_stats stats;
  int fatal_seen; /* loop thread: the code of the fatal error delivered */

  void (*stopped_cb)(void *);
  void *stopped_arg;
};

/* The thread's own state (no lock needed). */
typedef struct {
  cl_store *db;
  int64_t landmark_id;
  cl_store_row *scratch; /* batch_max() rows */
  uint64_t retry_ms;
  uint64_t next_try;     /* no database work before this (backoff), ns */
  uint64_t next_refresh; /* next enrolled-chip refresh, ns */
  uint64_t down_since;   /* first failure of the current outage, 0 if none */
  uint64_t next_spool;   /* no spool append before this (after an I/O error) */
  uint64_t next_replay;  /* no replay before this (after an I/O error) */
  int outage_logged;     /* "spooling" logged for the current outage */
  int spool_full;        /* inside a fill event: "spool full" logged */
  int spool_failing;     /* inside a run of spool I/O errors: logged */
  int resolve_due;       /* set-aside spools wait for their landmark ids */
  uint64_t drain_rows;   /* rows replayed since the spool last was empty */
  uint64_t drain_start;  /* when the current replay began, ns; 0 if none */
  int fatal;             /* a fatal error was posted: leave the loop */
} wstate;

static uint64_t now_ns(void) { return uv_hrtime(); }
static uint64_t ms_ns(uint64_t ms) { return ms * 1000000ull; }
static uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Rows per COPY, per spool replay read and per spool append. */
static size_t batch_max(const lm_writer *w) {
  return w->cfg->batch_size > BACKLOG_BATCH_ROWS ? w->cfg->batch_size : BACKLOG_BATCH_ROWS;
}

/* Loop side: deliver chip sets and fatal errors from the thread. */
static void on_async(uv_async_t *h) {
  lm_writer *w = h->data;
  uv_mutex_lock(&w->mu);
  cl_store_chip *chips = NULL;
  size_t n = 0;
  int have_chips = w->chips_ready;
  if (have_chips) {
    chips = w->chips_out;
    n = w->n_chips_out;
    w->chips_out = NULL;
    w->chips_ready = 0;
  }
  char fatal[768] = "";
  if (w->fatal_ready) {
    memcpy(fatal, w->fatal, sizeof fatal);
    w->fatal_seen = w->fatal_code;
    w->fatal_ready = 0;
  }
  uv_mutex_unlock(&w->mu);
  if (have_chips) {
    if (w->cb.on_chips)
      w->cb.on_chips(w->cb.arg, chips, n);
    else
      free(chips);
  }
  if (fatal[0] && w->cb.on_fatal) w->cb.on_fatal(w->cb.arg, fatal);
}

/* code: CL_EPERM, CL_ENOTFOUND or CL_EINVAL for what the operator must fix
 * (lm_writer_fatal_code), CL_ENOMEM otherwise. */
static void post_fatal(lm_writer *w, int code, const char *why) {
  uv_mutex_lock(&w->mu);
  snprintf(w->fatal, sizeof w->fatal, "%s", why);
  w->fatal_code = code;
  w->fatal_ready = 1;
  uv_mutex_unlock(&w->mu);
  uv_async_send(&w->async);
}

/* Copies the spool's size into the stats; spool_rows counts the records
 * of set-aside spools too. Called with mu held, on the thread (or before
 * it starts). */
static void spool_stats_locked(lm_writer *w) {
  uint64_t rows = lm_spool_rows(w->spool);
  for (size_t i = 0; i < w->n_aside; i++) rows += lm_spool_rows(w->aside[i].sp);
  w->stats.spool_rows = rows;
  w->stats.spool_bytes = lm_spool_bytes(w->spool);
}

/*
 * What is wrong, and what to run, when the landmark's entry was not found
 * (CL_ENOTFOUND) or this login may not read it or write its rows
 * (CL_EPERM); err is the store's message.
 */
static void lookup_why(int rc, const char *err, const cl_landmark_config *cfg,
                       const uint8_t pk[CL_PK_LEN], char *why, size_t whylen) {
  char pkhex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(pk, pkhex);
  if (rc == CL_ENOTFOUND)
    snprintf(why, whylen,
             "this landmark's key %s is not registered; run: chiploc landmark add --name %s "
             "--pubkey %s --lat %.10g --lon %.10g",
             pkhex, cfg->name, pkhex, cfg->lat, cfg->lon);
  else /* may_write's text names the login and the bind that fixes it; a
        * refused SELECT is a login outside chiploc_landmark. */
    snprintf(why, whylen, "%.500s%s", err,
             strstr(err, "chiploc landmark bind")
                 ? ""
                 : "; the login role of [database] conninfo must be a member of chiploc_landmark");
}

/* How far, in degrees of latitude or longitude, the configured position may
 * be from the registered one: 1e-6 degrees is at most 11 cm on the ground,
 * finer than the survey a landmark's position comes from, and yet a
 * billion times coarser than a decimal number's rounding through a double
 * (about 1e-14 degrees here), so the same number written differently in
 * the two places (50.1109, 50.110900) is the same position, and any other
 * one is not. */
#define POSITION_TOLERANCE_DEG 1e-6

/* CL_OK when the configuration's name and position are the registered
 * landmark's; else CL_EINVAL, with both in why and what to do. */
static int identity_why(const cl_landmark_config *cfg, const cl_store_landmark *lm, char *why,
                        size_t whylen) {
  if (strcmp(cfg->name, lm->name) == 0 && fabs(cfg->lat - lm->lat) <= POSITION_TOLERANCE_DEG &&
      fabs(cfg->lon - lm->lon) <= POSITION_TOLERANCE_DEG)
    return CL_OK;
  snprintf(why, whylen,
           "config name=%s lat=%.10g lon=%.10g but the database has name=%s lat=%.10g "
           "lon=%.10g for this key (landmark id %lld); fix the config, or, if the landmark "
           "moved, register it anew (chiploc landmark add, a new key) and retire this entry "
           "(chiploc landmark retire --name %s)",
           cfg->name, cfg->lat, cfg->lon, lm->name, lm->lat, lm->lon, (long long)lm->id,
           lm->name);
  return CL_EINVAL;
}

/* The text of a login the server refused (CL_EPERM from cl_store_connect). */
static void login_why(const char *err, char *why, size_t whylen) {
  snprintf(why, whylen,
           "login refused: %.400s; fix [database] conninfo: a login role in chiploc_landmark, "
           "an existing database, admitted by pg_hba.conf",
           err);
}

/*
 * Connects and identifies the landmark. Returns 0, CL_EDB (an outage: retry
 * later), or another code after posting a fatal error: what the operator
 * must fix (a login the server refuses, a key not registered, a login not
 * bound to it) is not retried.
 */
static int db_open(lm_writer *w, cl_store **db, int64_t *landmark_id) {
  char err[512], why[768], q[600];
  int rc = cl_store_connect(db, w->cfg->conninfo, err, sizeof err);
  if (rc == CL_EPERM) {
    login_why(err, why, sizeof why);
    post_fatal(w, CL_EPERM, why);
    return CL_EPERM;
  }
  if (rc != CL_OK) {
    cl_log(CL_LOG_WARN, "database unavailable", "err=%s",
           cl_log_quote(q, sizeof q, err, strlen(err)));
    return CL_EDB;
  }
  cl_store_landmark lm;
  rc = cl_store_landmark_get(*db, w->pk, &lm, err, sizeof err);
  if (rc == CL_OK && identity_why(w->cfg, &lm, why, sizeof why) != CL_OK) {
    cl_store_destroy(db);
    post_fatal(w, CL_EINVAL, why);
    return CL_EINVAL;
  }
  if (rc == CL_OK) rc = cl_store_landmark_may_write(*db, lm.id, err, sizeof err);
  /* No statement of the writer may block it for good: a batch of
   * BACKLOG_BATCH_ROWS rows takes well under a second, so a statement still
   * running after a minute, or waiting half a minute for a lock, meets a
   * hung server or a dead client's transaction; cancelled, it fails like an
   * outage, and the rows are retried or spooled. */
  if (rc == CL_OK &&
      cl_store_set_timeouts(*db, WRITER_STATEMENT_TIMEOUT_MS, WRITER_LOCK_TIMEOUT_MS, err,
                            sizeof err) != CL_OK) {
    cl_log(CL_LOG_WARN, "database unavailable", "err=%s",
           cl_log_quote(q, sizeof q, err, strlen(err)));
    cl_store_destroy(db);
    return CL_EDB;
  }
  if (rc == CL_OK) {
    *landmark_id = lm.id;
    cl_log(CL_LOG_INFO, "database connected", "landmark=%s landmark_id=%lld", lm.name,
           (long long)*landmark_id);
    return CL_OK;
  }
  cl_store_destroy(db);
  if (rc != CL_ENOTFOUND && rc != CL_EPERM) {
    cl_log(CL_LOG_WARN, "landmark lookup failed", "err=%s",
           cl_log_quote(q, sizeof q, err, strlen(err)));
    return CL_EDB;
  }
  lookup_why(rc, err, w->cfg, w->pk, why, sizeof why);
  post_fatal(w, rc, why);
  return rc;
}

int lm_writer_check(const cl_landmark_config *cfg, const uint8_t landmark_pk[CL_PK_LEN],
                    lm_check_line line, void *arg) {
  char err[512], msg[1024], what[96];
  cl_store *db = NULL;
  int rc = cl_store_connect(&db, cfg->conninfo, err, sizeof err);
  if (rc != CL_OK) {
    if (rc == CL_EPERM)
      login_why(err, msg, sizeof msg);
    else
      snprintf(msg, sizeof msg, "unreachable: %.900s", err);
    line(arg, 0, "database", msg);
    return 1;
  }
  line(arg, 1, "database", "logged in");
  int failed = 0;
  cl_store_landmark lm;
  snprintf(what, sizeof what, "landmark %s", cfg->name);
  rc = cl_store_landmark_get(db, landmark_pk, &lm, err, sizeof err);
  if (rc == CL_OK) {
    if (identity_why(cfg, &lm, msg, sizeof msg) == CL_OK) {
      snprintf(msg, sizeof msg, "key registered as landmark id %lld, name and position match",
               (long long)lm.id);
      line(arg, 1, what, msg);
    } else {
      line(arg, 0, what, msg);
      failed++;
    }
    rc = cl_store_landmark_may_write(db, lm.id, err, sizeof err);
    if (rc == CL_OK) {
      line(arg, 1, "database role", "may write this landmark's rows");
    } else {
      if (rc == CL_EPERM) lookup_why(rc, err, cfg, landmark_pk, msg, sizeof msg);
      line(arg, 0, "database role", rc == CL_EPERM ? msg : err);
      failed++;
    }
  } else {
    if (rc == CL_ENOTFOUND || rc == CL_EPERM) lookup_why(rc, err, cfg, landmark_pk, msg, sizeof msg);
    line(arg, 0, what, rc == CL_ENOTFOUND || rc == CL_EPERM ? msg : err);
    failed++;
  }
  cl_store_destroy(&db);
  return failed;
}

static int refresh_chips(lm_writer *w, cl_store *db) {
  cl_store_chip *chips = NULL, *peers = NULL;
  size_t n = 0, np = 0;
  char err[512];
  int rc = cl_store_load_chips(db, &chips, &n, err, sizeof err);
  if (rc == CL_OK) rc = cl_store_load_landmarks(db, &peers, &np, err, sizeof err);
  if (rc != CL_OK) {
    free(chips);
    cl_log(CL_LOG_WARN, "enrolled chip refresh failed", "err=\"%.300s\"", err);
    return rc;
  }
  /* Peer landmarks are probed like chips; this landmark's own key is left
   * out (it never registers with itself). */
  cl_store_chip *all = realloc(chips, (n + np + 1) * sizeof *all);
  if (!all) {
    free(chips);
    free(peers);
    return CL_ENOMEM;
  }
  chips = all;
  for (size_t i = 0; i < np; i++)
    if (memcmp(peers[i].pk, w->pk, CL_PK_LEN) != 0) chips[n++] = peers[i];
  free(peers);
  uv_mutex_lock(&w->mu);
  free(w->chips_out); /* an unconsumed older set is superseded */
  w->chips_out = chips;
  w->n_chips_out = n;
  w->chips_ready = 1;
  uv_mutex_unlock(&w->mu);
  uv_async_send(&w->async);
  return CL_OK;
}

/* The seq a row is stored under (its fastest probe's), for the log. */
static uint64_t row_seq(const cl_store_row *row) {
  return row->m.probes[cl_measurement_fastest(&row->m)].seq;
}

/*
 * Writes rows[0..n) (all of one kind) in one COPY transaction. When the
 * batch is refused for a reason retrying cannot fix (a row the schema
 * refuses, or rows already stored by a commit whose acknowledgement was
 * lost, or replayed from the spool), falls back to one row per transaction
 * so that only the offending rows are set aside, each logged.
 *
 * *settled receives how many leading rows are settled: stored, already
 * stored (counted in *existed), or refused and set aside (*rejected).
 * Returns CL_OK when all n are settled; CL_EDB when the database failed
 * (rows from *settled on are not settled); CL_EPERM with `why` saying what
 * was refused (a missing grant or binding is an operator error, not a bad
 * row: the caller decides what it stops).
 */
static int write_rows(cl_store *db, int64_t landmark_id, const cl_store_row *rows, size_t n,
                      size_t *settled, uint64_t *rejected, uint64_t *existed, char *why,
                      size_t whylen) {
  int (*insert)(cl_store *, int64_t, const cl_store_row *, size_t, char *, size_t) =
      rows[0].is_link ? cl_store_insert_links : cl_store_insert_measurements;
  char err[512];
  *settled = 0;
  *rejected = 0;
  *existed = 0;
  int rc = insert(db, landmark_id, rows, n, err, sizeof err);
  if (rc == CL_OK) {
    *settled = n;
    return CL_OK;
  }
  if (rc == CL_EDB) {
    cl_log(CL_LOG_WARN, "batch write failed; rows kept for retry", "rows=%zu err=\"%.300s\"", n,
           err);
    return CL_EDB;
  }
  if (rc == CL_EPERM) {
    snprintf(why, whylen, "permission denied writing measurements: %.600s", err);
    return CL_EPERM;
  }
  cl_log(rc == CL_EEXIST ? CL_LOG_INFO : CL_LOG_WARN, "batch refused; writing rows one by one",
         "rows=%zu err=\"%.300s\"", n, err);
  for (size_t i = 0; i < n; i++) {
    int r1 = insert(db, landmark_id, &rows[i], 1, err, sizeof err);
    if (r1 == CL_EDB) {
      cl_log(CL_LOG_WARN, "row write failed; rows kept for retry", "rows=%zu err=\"%.300s\"",
             n - i, err);
      return CL_EDB; /* connection trouble: keep the rest */
    }
    if (r1 == CL_EPERM) {
      snprintf(why, whylen, "permission denied writing measurements: %.600s", err);
      return CL_EPERM;
    }
    if (r1 == CL_EEXIST) {
      (*existed)++;
      cl_log(CL_LOG_DEBUG, "row already stored", "seq=%llu",
             (unsigned long long)row_seq(&rows[i]));
    } else if (r1 != CL_OK) {
      (*rejected)++;
      /* A row carries no serial (it may have waited in the spool since the
       * enrolled set changed): the chip is named by its key, as the
       * landmark's own lines give it in chip_key=. */
      char key[17];
      cl_hex_encode(key, rows[i].m.hs.chip, 8);
      cl_log(CL_LOG_ERROR, "row refused by the database; set aside",
             "seq=%llu chip_key=%s chip_id=%lld err=\"%.300s\"",
             (unsigned long long)row_seq(&rows[i]), key, (long long)rows[i].chip_id, err);
    }
    *settled = i + 1;
  }
  if (*existed)
    cl_log(CL_LOG_INFO, "rows already stored", "rows=%llu", (unsigned long long)*existed);
  return CL_OK;
}

/* Copies up to max rows (of one kind, with same_kind) from the head of the
 * ring into out. Called without mu; returns the count. The lock is taken
 * once per TAKE_CHUNK_ROWS rows: only this thread removes rows, and a push
 * (even one that grows the ring) keeps the rows from the head in place, so
 * row i is the same row in every chunk. */
static size_t take_head(lm_writer *w, cl_store_row *out, size_t max, int same_kind) {
  size_t i = 0;
  for (;;) {
    uv_mutex_lock(&w->mu);
    size_t n = w->len < max ? w->len : max;
    size_t end = n - i > TAKE_CHUNK_ROWS ? i + TAKE_CHUNK_ROWS : n;
    int other_kind = 0;
    for (; i < end; i++) {
      out[i] = w->ring[(w->head + i) % w->cap];
      if (same_kind && out[i].is_link != out[0].is_link) {
        other_kind = 1;
        break;
      }
    }
    uv_mutex_unlock(&w->mu);
    if (other_kind || i >= n) return i;
  }
}

/* Removes n rows from the head of the ring. Called with mu held. */
static void drop_head_locked(lm_writer *w, size_t n) {
  w->head = (w->head + n) % w->cap;
  w->len -= n;
  /* Rows left behind keep their age: they are due already (a batch holds one
   * kind of row, so when measurements and links alternate, restarting the
   * clock here would delay every short run by a whole flush interval). */
  if (w->len == 0) w->oldest_ns = 0;
  w->stats.queue_depth = w->len;
}

/* Writes one batch from the head of the ring. Returns what write_rows
 * returned (CL_OK when the ring was empty), CL_EPERM after posting it as
 * fatal. */
static int flush_batch(lm_writer *w, wstate *st) {
  size_t n = take_head(w, st->scratch, batch_max(w), 1);
  if (n == 0) return CL_OK;
  size_t settled;
  uint64_t rejected, existed;
  uint64_t t0 = now_ns();
  char why[768];
  int rc = write_rows(st->db, st->landmark_id, st->scratch, n, &settled, &rejected, &existed,
                      why, sizeof why);
  if (rc == CL_EPERM) post_fatal(w, CL_EPERM, why);
  uv_mutex_lock(&w->mu);
  drop_head_locked(w, settled);
  w->stats.rows_written += settled - rejected;
  w->stats.rows_rejected += rejected;
  if (settled) {
    w->stats.batches++;
    w->stats.batch_ns_total += now_ns() - t0; /* the batch's database time */
  }
  if (rc != CL_OK) w->stats.db_errors++;
  uv_mutex_unlock(&w->mu);
  if (rc == CL_OK)
    cl_log(CL_LOG_DEBUG, "batch written", "rows=%zu ms=%.3f", n, (double)(now_ns() - t0) / 1e6);
  return rc;
}

/* Deletes the drained set-aside spool a and takes it off the list. */
static void drop_aside(lm_writer *w, aside_spool *a) {
  char err[512], path[PATH_MAX + 32], key[CL_PK_HEX_LEN + 1];
  snprintf(path, sizeof path, "%s", lm_spool_path(a->sp));
  cl_pk_to_hex(lm_spool_key(a->sp), key);
  if (lm_spool_remove(&a->sp, err, sizeof err) == CL_OK)
    cl_log(CL_LOG_INFO, "spool: set-aside spool replayed and removed",
           "path=%s key=%s landmark_id=%lld rows_replayed=%llu", path, key,
           (long long)a->landmark_id, (unsigned long long)a->replayed);
  else
    cl_log(CL_LOG_ERROR, "spool: set-aside spool replayed but not removed",
           "path=%s rows_replayed=%llu err=\"%.400s\"", path, (unsigned long long)a->replayed,
           err);
  *a = w->aside[--w->n_aside];
}

/*
 * Replays one batch from the spool, or from the set-aside spool `a` (when
 * not NULL) under the id of the landmark whose key signed it: reads the
 * batch, writes it, then consumes the records. A drained spool is
 * compacted; a drained set-aside spool is deleted. Returns CL_OK, CL_EDB
 * (database failed; nothing consumed beyond the settled rows), CL_EPERM
 * (rows refused, posted as fatal), or CL_EIO (spool I/O; logged, replay
 * paused for a while). Rows of a set-aside spool that are refused for want
 * of permission hold that spool (logged) and the landmark goes on: CL_OK.
 */
static int replay_batch(lm_writer *w, wstate *st, aside_spool *a) {
  lm_spool *sp = a ? a->sp : w->spool;
  int64_t landmark_id = a ? a->landmark_id : st->landmark_id;
  char err[512], why[768];
  size_t n = 0, skipped = 0;
  if (!a && st->drain_start == 0) {
    st->drain_start = now_ns();
    cl_log(CL_LOG_INFO, "replaying spool", "spool_rows=%llu spool_bytes=%llu",
           (unsigned long long)lm_spool_rows(sp), (unsigned long long)lm_spool_bytes(sp));
  }
  int rc = lm_spool_peek(sp, st->scratch, batch_max(w), &n, &skipped, err, sizeof err);
  if (rc != CL_OK) {
    cl_log(CL_LOG_ERROR, "spool read failed; replay paused", "err=\"%.400s\"", err);
    st->next_replay = now_ns() + ms_ns(SPOOL_RETRY_MS);
    return CL_EIO;
  }
  if (skipped)
    cl_log(CL_LOG_ERROR, "spool records failed their checksum; dropped", "records=%zu path=%s",
           skipped, lm_spool_path(sp));
  size_t settled = 0;
  uint64_t rejected = 0, existed = 0;
  uint64_t t0 = now_ns();
  if (n > 0)
    rc = write_rows(st->db, landmark_id, st->scratch, n, &settled, &rejected, &existed, why,
                    sizeof why);
  uint64_t db_ns = now_ns() - t0;
  if (rc == CL_EPERM && !a) post_fatal(w, CL_EPERM, why);
  if (rc == CL_EPERM && a) {
    char q[800];
    a->state = ASIDE_HELD;
    cl_log(CL_LOG_ERROR, "spool: set-aside spool kept; the database refuses its rows",
           "path=%s landmark_id=%lld err=%s", lm_spool_path(sp), (long long)landmark_id,
           cl_log_quote(q, sizeof q, why, strlen(why)));
    rc = CL_OK;
  }
  if (skipped + settled > 0) {
    int crc = lm_spool_consume(sp, skipped + settled, err, sizeof err);
    if (crc != CL_OK) {
      /* The rows are in the database; they come back as duplicates, which
       * the database refuses. */
      cl_log(CL_LOG_ERROR, "spool offset not saved; replay paused", "err=\"%.400s\"", err);
      st->next_replay = now_ns() + ms_ns(SPOOL_RETRY_MS);
      if (rc == CL_OK) rc = CL_EIO;
    }
    if (crc == CL_OK) {
      if (a)
        a->replayed += settled - rejected;
      else
        st->drain_rows += settled - rejected;
    }
  }
  int drained = lm_spool_rows(sp) == 0 && rc == CL_OK;
  if (drained && !a && lm_spool_compact(sp, err, sizeof err) != CL_OK)
    cl_log(CL_LOG_ERROR, "spool compaction failed", "err=\"%.400s\"", err);
  if (drained && a) drop_aside(w, a);
  uv_mutex_lock(&w->mu);
  w->stats.rows_written += settled - rejected;
  w->stats.rows_replayed += settled - rejected;
  w->stats.rows_rejected += rejected;
  w->stats.spool_corrupt += skipped;
  if (settled) {
    w->stats.batches++;
    w->stats.batch_ns_total += db_ns;
  }
  if (rc == CL_EDB) w->stats.db_errors++;
  spool_stats_locked(w);
  uint64_t total = w->stats.rows_replayed;
  uv_mutex_unlock(&w->mu);
  if (drained && !a) {
    cl_log(CL_LOG_INFO, "spool drained", "rows_replayed=%llu ms=%.0f rows_replayed_total=%llu",
           (unsigned long long)st->drain_rows, (double)(now_ns() - st->drain_start) / 1e6,
           (unsigned long long)total);
    st->drain_rows = 0;
    st->drain_start = 0;
    if (st->spool_full) {
      st->spool_full = 0;
      cl_log(CL_LOG_INFO, "spool has room again", "spool_max_bytes=%llu",
             (unsigned long long)lm_spool_max_bytes(sp));
    }
  }
  return rc;
}

/* The first set-aside spool ready for replay, or NULL. */
static aside_spool *ready_aside(lm_writer *w) {
  for (size_t i = 0; i < w->n_aside; i++)
    if (w->aside[i].state == ASIDE_READY) return &w->aside[i];
  return NULL;
}

/*
 * Looks up the landmark entry of each unresolved set-aside spool's key and
 * checks that this login may write its rows: then the spool is replayed;
 * when the key is not registered or the login not bound to it, it is held
 * (logged with what to do). Returns CL_EDB when the database failed (the
 * rest stays unresolved), else CL_OK.
 */
static int resolve_asides(lm_writer *w, wstate *st) {
  for (size_t i = 0; i < w->n_aside; i++) {
    aside_spool *a = &w->aside[i];
    if (a->state != ASIDE_UNRESOLVED) continue;
    char err[512], key[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(lm_spool_key(a->sp), key);
    int rc = cl_store_landmark_find(st->db, lm_spool_key(a->sp), &a->landmark_id, err, sizeof err);
    if (rc == CL_OK) rc = cl_store_landmark_may_write(st->db, a->landmark_id, err, sizeof err);
    if (rc == CL_OK) {
      a->state = ASIDE_READY;
      cl_log(CL_LOG_INFO, "spool: replaying a set-aside spool under the key that signed it",
             "path=%s key=%s landmark_id=%lld spool_rows=%llu", lm_spool_path(a->sp), key,
             (long long)a->landmark_id, (unsigned long long)lm_spool_rows(a->sp));
    } else if (rc == CL_ENOTFOUND || rc == CL_EPERM) {
      char q[600];
      a->state = ASIDE_HELD;
      cl_log(CL_LOG_WARN, "spool: set-aside spool kept; its rows cannot be written",
             "path=%s key=%s spool_rows=%llu err=%s hint=\"register the key or bind this "
             "login to its landmark, then send SIGHUP\"",
             lm_spool_path(a->sp), key, (unsigned long long)lm_spool_rows(a->sp),
             cl_log_quote(q, sizeof q, err, strlen(err)));
    } else {
      return CL_EDB;
    }
  }
  return CL_OK;
}

/*
 * Moves queued rows, oldest first, into the spool (each chunk fdatasync'd
 * before it leaves memory). With drop_overflow, rows the full spool cannot
 * take are dropped and counted (spool_dropped); without it (at shutdown)
 * they stay queued. Returns how many rows were spooled; on an I/O error the
 * remaining rows stay queued and appends pause for SPOOL_RETRY_MS.
 */
static uint64_t spool_queue(lm_writer *w, wstate *st, int drop_overflow) {
  char err[512];
  uint64_t total = 0;
  for (;;) {
    size_t n = take_head(w, st->scratch, batch_max(w), 0);
    if (n == 0) break;
    size_t k = 0;
    int rc = lm_spool_append(w->spool, st->scratch, n, &k, err, sizeof err);
    if (rc != CL_OK) {
      if (!st->spool_failing)
        cl_log(CL_LOG_ERROR, "spool write failed; rows kept in memory",
               "rows=%zu err=\"%.400s\"", n, err);
      st->spool_failing = 1;
      st->next_spool = now_ns() + ms_ns(SPOOL_RETRY_MS);
      break;
    }
    if (st->spool_failing) {
      cl_log(CL_LOG_INFO, "spool writable again", "path=%s", lm_spool_path(w->spool));
      st->spool_failing = 0;
    }
    size_t dropped = (k < n && drop_overflow) ? n - k : 0;
    uv_mutex_lock(&w->mu);
    drop_head_locked(w, k + dropped);
    w->stats.rows_spooled += k;
    w->stats.spool_dropped += dropped;
    spool_stats_locked(w);
    uint64_t all_dropped = w->stats.spool_dropped;
    uv_mutex_unlock(&w->mu);
    total += k;
    if (k < n) {
      if (!st->spool_full) {
        cl_log(CL_LOG_ERROR, "spool full",
               "path=%s spool_bytes=%llu spool_max_bytes=%llu spool_rows=%llu rows_dropped=%zu "
               "spool_dropped=%llu",
               lm_spool_path(w->spool), (unsigned long long)lm_spool_bytes(w->spool),
               (unsigned long long)lm_spool_max_bytes(w->spool),
               (unsigned long long)lm_spool_rows(w->spool), dropped,
               (unsigned long long)all_dropped);
        st->spool_full = 1;
      }
      if (!drop_overflow) break;
    } else if (st->spool_full) {
      st->spool_full = 0;
      cl_log(CL_LOG_INFO, "spool has room again", "spool_dropped=%llu",
             (unsigned long long)all_dropped);
    }
  }
  return total;
}

/* Records a database failure: starts the outage clock and the backoff. */
static void db_failed(wstate *st, uint64_t t) {
  if (!st->down_since) st->down_since = t;
  st->next_try = t + ms_ns(st->retry_ms);
  st->retry_ms = st->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : st->retry_ms * 2;
}

/* Records a successful write: the outage, if any, is over. */
static void db_worked(wstate *st) {
  st->down_since = 0;
  st->outage_logged = 0;
  st->retry_ms = RETRY_MIN_MS;
  st->next_try = 0;
}

/* When queued rows should move to the spool: the database is failing and
 * the outage has outlasted the grace (flush_interval_ms); then, like a
 * database batch, once a full batch waits or the oldest row has waited
 * flush_interval_ms, so that one fdatasync covers many rows. */
static uint64_t spool_due_at(const lm_writer *w, const wstate *st, size_t queued,
                             uint64_t oldest) {
  if (!st->down_since || queued == 0) return UINT64_MAX;
  uint64_t grace = ms_ns(w->cfg->flush_interval_ms);
  uint64_t at = queued >= w->cfg->batch_size ? st->down_since + grace
                                             : max_u64(st->down_since, oldest) + grace;
  return max_u64(at, st->next_spool);
}

static void thread_main(void *arg) {
  lm_writer *w = arg;
  wstate st;
  memset(&st, 0, sizeof st);
  st.retry_ms = RETRY_MIN_MS;
  uint64_t stop_deadline = 0;
  st.scratch = malloc(sizeof *st.scratch * batch_max(w));
  if (!st.scratch) {
    post_fatal(w, CL_ENOMEM, "out of memory for the write batch");
    return;
  }
  for (;;) {
    uint64_t t = now_ns();
    uv_mutex_lock(&w->mu);
    int stopping = w->stop;
    size_t queued = w->len;
    uint64_t oldest = w->oldest_ns;
    int refresh = w->refresh;
    w->refresh = 0;
    if (stopping && !stop_deadline) stop_deadline = t + ms_ns(w->drain_ms);
    uv_mutex_unlock(&w->mu);
    if (refresh) {
      /* At once (or as soon as connected), and held set-aside spools are
       * tried again: the operator may have bound the login meanwhile. */
      st.next_refresh = 0;
      for (size_t i = 0; i < w->n_aside; i++)
        if (w->aside[i].state == ASIDE_HELD) w->aside[i].state = ASIDE_UNRESOLVED;
      st.resolve_due = 1;
    }
    /* Stopping: write the rest while the database answers and the spool
     * holds no older rows; otherwise (or at the deadline) the rest goes to
     * the spool after the loop. */
    if (stopping && (queued == 0 || !st.db || st.down_since || lm_spool_rows(w->spool) > 0 ||
                     t > stop_deadline))
      break;
    int acted = 0;

    if (st.db && !cl_store_ok(st.db)) {
      cl_log(CL_LOG_WARN, "database connection lost", NULL);
      cl_store_destroy(&st.db);
      db_failed(&st, t);
    }
    if (!st.db && t >= st.next_try) {
      int rc = db_open(w, &st.db, &st.landmark_id);
      if (rc != CL_OK && rc != CL_EDB) break; /* fatal, already posted */
      if (rc != CL_OK) {
        db_failed(&st, t);
      } else {
        st.next_refresh = 0;
        st.retry_ms = RETRY_MIN_MS;
        st.next_try = 0;
        st.resolve_due = 1;
      }
      acted = 1;
    }
    if (st.db && t >= st.next_try) {
      if (!stopping && t >= st.next_refresh) {
        if (refresh_chips(w, st.db) == CL_OK)
          st.next_refresh = t + ms_ns((uint64_t)w->cfg->refresh_interval_s * 1000ull);
        else
          st.next_refresh = t + ms_ns(1000);
      }
      int rc = CL_OK;
      int wrote = 0;
      aside_spool *aside = NULL;
      if (st.resolve_due && !stopping) {
        /* Once per connect (and per refresh request); an outage during it
         * leaves the rest for the next connect. */
        st.resolve_due = 0;
        resolve_asides(w, &st);
      }
      if (!stopping && t >= st.next_replay && (aside = ready_aside(w)) != NULL) {
        /* Rows of a replaced key: older than anything in the spool. */
        rc = replay_batch(w, &st, aside);
        wrote = 1;
      } else if (!stopping && lm_spool_rows(w->spool) > 0 && t >= st.next_replay) {
        /* Older rows first: the spool before anything queued. */
        rc = replay_batch(w, &st, NULL);
        wrote = 1;
      } else if (queued && (queued >= w->cfg->batch_size || stopping ||
                            t - oldest >= ms_ns(w->cfg->flush_interval_ms) ||
                            (lm_spool_rows(w->spool) > 0 && t < st.next_replay))) {
        rc = flush_batch(w, &st);
        wrote = 1;
      }
      if (rc == CL_EPERM) break; /* fatal, already posted */
      if (wrote) {
        acted = 1;
        if (rc == CL_OK) {
          db_worked(&st);
        } else if (rc == CL_EDB) {
          if (!cl_store_ok(st.db)) cl_store_destroy(&st.db);
          db_failed(&st, now_ns());
        }
      }
    }
    uv_mutex_lock(&w->mu);
    queued = w->len;
    oldest = w->oldest_ns;
    w->stats.connected = st.db != NULL;
    uv_mutex_unlock(&w->mu);
    t = now_ns();
    if (!stopping && t >= spool_due_at(w, &st, queued, oldest)) {
      if (!st.outage_logged) {
        cl_log(CL_LOG_WARN, "database unavailable; spooling rows",
               "path=%s rows=%zu outage_ms=%llu", lm_spool_path(w->spool), queued,
               (unsigned long long)((t - st.down_since) / 1000000ull));
        st.outage_logged = 1;
      }
      spool_queue(w, &st, 1);
      acted = 1;
    }
    if (acted) continue;

    /* Nothing was due: sleep until the earliest thing that can become due,
     * or until a push fills a batch or stop is requested. */
    uint64_t wake = UINT64_MAX;
    if (!st.db) {
      wake = st.next_try;
    } else {
      if (!stopping) wake = min_u64(wake, max_u64(st.next_try, st.next_refresh));
      if (lm_spool_rows(w->spool) > 0 || ready_aside(w))
        wake = min_u64(wake, max_u64(st.next_try, st.next_replay));
      if (queued)
        wake = min_u64(wake, max_u64(st.next_try, oldest + ms_ns(w->cfg->flush_interval_ms)));
    }
    wake = min_u64(wake, spool_due_at(w, &st, queued, oldest));
    uv_mutex_lock(&w->mu);
    if (!w->stop && !w->refresh && w->len == queued) {
      t = now_ns();
      uint64_t ns = wake > t ? wake - t : 0;
      if (ns < 1000000ull) ns = 1000000ull;
      uv_cond_timedwait(&w->cond, &w->mu, ns);
    }
    uv_mutex_unlock(&w->mu);
  }

  /* Leaving (stop or fatal error): whatever is still queued goes to the
   * spool, so that it is written by the next run. */
  uv_mutex_lock(&w->mu);
  size_t left = w->len;
  uv_mutex_unlock(&w->mu);
  if (left) {
    uint64_t spooled = spool_queue(w, &st, 0);
    uv_mutex_lock(&w->mu);
    size_t unspooled = w->len;
    uv_mutex_unlock(&w->mu);
    cl_log(CL_LOG_INFO, "rows spooled at shutdown", "rows=%llu spool_rows=%llu path=%s",
           (unsigned long long)spooled, (unsigned long long)lm_spool_rows(w->spool),
           lm_spool_path(w->spool));
    if (unspooled)
      cl_log(CL_LOG_ERROR, "rows neither written nor spooled at shutdown", "rows=%zu",
             unspooled);
  }
  free(st.scratch);
  cl_store_destroy(&st.db);
}

/* Logs what lm_spool_open repaired in the spool at path. */
static void log_recovery(const char *path, const lm_spool_recovery *rec) {
  if (rec->torn_bytes || rec->torn_records)
    cl_log(CL_LOG_WARN, "spool: torn records at the end dropped",
           "path=%s bytes=%llu records=%llu", path, (unsigned long long)rec->torn_bytes,
           (unsigned long long)rec->torn_records);
  if (rec->offset_reset)
    cl_log(CL_LOG_WARN, "spool: read offset unreadable; replaying from the first record",
           "path=%s", path);
  if (rec->stale_tmp)
    cl_log(CL_LOG_INFO, "spool: unfinished compaction file removed", "path=%s.tmp", path);
  if (rec->replaced_v1)
    cl_log(CL_LOG_INFO, "spool: empty version 1 spool replaced", "path=%s", path);
}

static void close_spools(lm_writer *w) {
  lm_spool_close(&w->spool);
  for (size_t i = 0; i < w->n_aside; i++) lm_spool_close(&w->aside[i].sp);
  w->n_aside = 0;
}

static uint64_t spool_max_bytes(const lm_writer *w) {
  return (uint64_t)w->cfg->spool_max_mb * 1024u * 1024u;
}

/*
 * The configured spool belongs to another key (the landmark's key was
 * rotated). Holding no record, it is re-made for this key; holding records,
 * it is renamed aside, kept open for replay under its own key, and a new
 * spool is made. Returns what lm_spool_open, lm_spool_rekey or
 * lm_spool_move returned (CL_EEXIST: a set-aside spool of that key exists
 * already), with err set.
 */
static int adopt_spool(lm_writer *w, lm_spool_recovery *rec, char *err, size_t errlen) {
  const char *path = w->cfg->spool_path;
  lm_spool *old = NULL;
  int rc = lm_spool_open(&old, path, NULL, spool_max_bytes(w), rec, err, errlen);
  if (rc != CL_OK) return rc;
  log_recovery(path, rec);
  char key[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(lm_spool_key(old), key);
  uint64_t rows = lm_spool_rows(old);
  if (rows == 0) {
    rc = lm_spool_rekey(old, w->pk, err, errlen);
    if (rc != CL_OK) {
      lm_spool_close(&old);
      return rc;
    }
    cl_log(CL_LOG_INFO, "spool: empty spool of another landmark key re-made for this key",
           "path=%s old_key=%s", path, key);
    memset(rec, 0, sizeof *rec);
    w->spool = old;
    return CL_OK;
  }
  char aside[PATH_MAX + 32];
  lm_spool_aside_path(path, lm_spool_key(old), aside, sizeof aside);
  rc = lm_spool_move(old, aside, err, errlen);
  if (rc != CL_OK) {
    lm_spool_close(&old);
    if (rc == CL_EEXIST)
      cl_err_set(err, errlen,
                 "spool %s: holds %llu records of landmark key %s, and %s (records of that key "
                 "set aside earlier) exists; move one of them elsewhere",
                 path, (unsigned long long)rows, key, aside);
    return rc;
  }
  cl_log(CL_LOG_WARN, "spool: records of another landmark key set aside",
         "path=%s old_key=%s spool_rows=%llu new_path=%s", path, key, (unsigned long long)rows,
         aside);
  w->aside[w->n_aside++] = (aside_spool){.sp = old, .state = ASIDE_UNRESOLVED};
  return lm_spool_open(&w->spool, path, w->pk, spool_max_bytes(w), rec, err, errlen);
}

/*
 * Opens the set-aside spools beside the spool that an earlier run left
 * (their replay did not finish), up to MAX_ASIDE. None of them stops the
 * landmark: one that cannot be opened is logged and left as it is; an empty
 * one is deleted.
 */
static void find_asides(lm_writer *w) {
  char err[512];
  char **names = NULL;
  size_t n = 0;
  if (lm_spool_find_aside(w->cfg->spool_path, &names, &n, err, sizeof err) != CL_OK) {
    cl_log(CL_LOG_WARN, "spool: cannot look for set-aside spools", "err=\"%.400s\"", err);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    int known = 0;
    for (size_t j = 0; j < w->n_aside; j++)
      known |= strcmp(lm_spool_path(w->aside[j].sp), names[i]) == 0;
    if (known) continue;
    if (w->n_aside == MAX_ASIDE) {
      cl_log(CL_LOG_WARN, "spool: too many set-aside spools; this one waits for a later start",
             "path=%s max=%d", names[i], MAX_ASIDE);
      continue;
    }
    lm_spool *sp = NULL;
    lm_spool_recovery rec;
    if (lm_spool_open(&sp, names[i], NULL, spool_max_bytes(w), &rec, err, sizeof err) != CL_OK) {
      cl_log(CL_LOG_ERROR, "spool: set-aside spool cannot be opened; left as it is",
             "path=%s err=\"%.400s\"", names[i], err);
      continue;
    }
    log_recovery(names[i], &rec);
    if (lm_spool_rows(sp) == 0) {
      if (lm_spool_remove(&sp, err, sizeof err) != CL_OK)
        cl_log(CL_LOG_WARN, "spool: empty set-aside spool not removed", "path=%s err=\"%.400s\"",
               names[i], err);
      continue;
    }
    char key[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(lm_spool_key(sp), key);
    cl_log(CL_LOG_WARN, "spool: set-aside spool found", "path=%s key=%s spool_rows=%llu",
           names[i], key, (unsigned long long)lm_spool_rows(sp));
    w->aside[w->n_aside++] = (aside_spool){.sp = sp, .state = ASIDE_UNRESOLVED};
  }
  lm_spool_free_names(&names, n);
}

int lm_writer_create(lm_writer **out, uv_loop_t *loop, const cl_landmark_config *cfg,
                     const uint8_t landmark_pk[CL_PK_LEN], lm_writer_callbacks cb, char *err,
                     size_t errlen) {
  if (err && errlen) err[0] = '\0';
  lm_writer *w = calloc(1, sizeof *w);
  if (!w) return CL_ENOMEM;
  w->loop = loop;
  w->cfg = cfg;
  memcpy(w->pk, landmark_pk, CL_PK_LEN);
  w->cb = cb;
  lm_spool_recovery rec;
  int rc = lm_spool_open(&w->spool, cfg->spool_path, landmark_pk, spool_max_bytes(w), &rec, err,
                         errlen);
  if (rc == CL_EEXIST) rc = adopt_spool(w, &rec, err, errlen);
  if (rc != CL_OK) {
    close_spools(w);
    free(w);
    return rc;
  }
  log_recovery(cfg->spool_path, &rec);
  cl_log(lm_spool_rows(w->spool) ? CL_LOG_WARN : CL_LOG_INFO, "spool opened",
         "path=%s spool_rows=%llu spool_bytes=%llu spool_max_bytes=%llu created=%d",
         cfg->spool_path, (unsigned long long)lm_spool_rows(w->spool),
         (unsigned long long)lm_spool_bytes(w->spool),
         (unsigned long long)lm_spool_max_bytes(w->spool), rec.created);
  find_asides(w);
  spool_stats_locked(w); /* no thread yet: nobody else reads the stats */
  w->stats.spool_corrupt = rec.torn_records;
  w->cap = 1024;
  w->ring = malloc(sizeof *w->ring * w->cap);
  if (!w->ring || uv_mutex_init(&w->mu) != 0) {
    free(w->ring);
    close_spools(w);
    free(w);
    return CL_ENOMEM;
  }
  if (uv_cond_init(&w->cond) != 0) {
    uv_mutex_destroy(&w->mu);
    free(w->ring);
    close_spools(w);
    free(w);
    return CL_ENOMEM;
  }
  uv_async_init(loop, &w->async, on_async);
  w->async.data = w;
  if (uv_thread_create(&w->thread, thread_main, w) != 0) {
    /* The async handle is registered: close it and leak nothing else. */
    uv_close((uv_handle_t *)&w->async, NULL);
    close_spools(w);
    cl_err_set(err, errlen, "cannot start the database thread");
    return CL_ENOMEM;
  }
  *out = w;
  return CL_OK;
}

int lm_writer_push(lm_writer *w, const cl_store_row *row) {
  uv_mutex_lock(&w->mu);
  if (w->len == w->cap) {
    size_t ncap = w->cap * 2 < QUEUE_MAX ? w->cap * 2 : QUEUE_MAX;
    cl_store_row *n = ncap > w->cap ? malloc(sizeof *n * ncap) : NULL;
    if (!n) {
      w->stats.rows_dropped++;
      uv_mutex_unlock(&w->mu);
      return CL_ETOOBIG;
    }
    for (size_t i = 0; i < w->len; i++) n[i] = w->ring[(w->head + i) % w->cap];
    free(w->ring);
    w->ring = n;
    w->cap = ncap;
    w->head = 0;
  }
  w->ring[(w->head + w->len) % w->cap] = *row;
  if (w->len == 0) w->oldest_ns = now_ns();
  w->len++;
  w->stats.rows_queued++;
  w->stats.queue_depth = w->len;
  /* Wake the thread for a full batch, and for the first row of an empty
   * queue so that it can time that row's flush (or spooling). */
  int wake = w->len >= w->cfg->batch_size || w->len == 1;
  uv_mutex_unlock(&w->mu);
  if (wake) uv_cond_signal(&w->cond);
  return CL_OK;
}

void lm_writer_refresh(lm_writer *w) {
  uv_mutex_lock(&w->mu);
  w->refresh = 1;
  uv_mutex_unlock(&w->mu);
  uv_cond_signal(&w->cond);
}

int lm_writer_fatal_code(const lm_writer *w) { return w->fatal_seen; }

void lm_writer_get_stats(lm_writer *w, lm_writer_stats *out) {
  uv_mutex_lock(&w->mu);
  *out = w->stats;
  uv_mutex_unlock(&w->mu);
}

static void on_async_closed(uv_handle_t *h) {
  lm_writer *w = h->data;
  if (w->stopped_cb) w->stopped_cb(w->stopped_arg);
}

void lm_writer_stop(lm_writer *w, uint32_t drain_ms, void (*done)(void *arg), void *arg) {
  uv_mutex_lock(&w->mu);
  w->stop = 1;
  w->drain_ms = drain_ms;
  uv_mutex_unlock(&w->mu);
  uv_cond_signal(&w->cond);
  uv_thread_join(&w->thread);
  w->stopped_cb = done;
  w->stopped_arg = arg;
  uv_close((uv_handle_t *)&w->async, on_async_closed);
}

void lm_writer_destroy(lm_writer **pw) {
  if (!pw || !*pw) return;
  lm_writer *w = *pw;
  free(w->chips_out);
  free(w->ring);
  close_spools(w);
  uv_cond_destroy(&w->cond);
  uv_mutex_destroy(&w->mu);
  free(w);
  *pw = NULL;
}
