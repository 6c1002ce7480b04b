/*
 * Worker thread that owns landmarkd's PostgreSQL connection. See writer.h.
 *
 * The queue is a ring of rows guarded by `mu`. The thread takes a batch by
 * copying up to batch_size rows out, writes them with one COPY transaction,
 * and only then removes them from the ring, so a failed write loses nothing:
 * the same rows are retried after a reconnect.
 */
#include "writer.h"
#include "cl_err.h"
#include "cl_log.h"

#include <stdlib.h>
#include <string.h>

#define QUEUE_MAX 1000000u
#define RETRY_MIN_MS 200u
#define RETRY_MAX_MS 10000u

struct lm_writer {
  uv_loop_t *loop;
  const cl_landmark_config *cfg;
  uint8_t pk[CL_PK_LEN];
  lm_writer_callbacks cb;

  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t cond;
  uv_async_t async;

  /* Guarded by mu. */
  cl_store_row *ring;
  size_t cap, head, len;
  uint64_t oldest_ns; /* uv_hrtime when the oldest queued row arrived */
  int stop;
  uint32_t drain_ms;
  cl_store_chip *chips_out; /* handed to the loop */
  size_t n_chips_out;
  int chips_ready;
  char fatal[768];
  int fatal_ready;
  lm_writer_stats stats;

  void (*stopped_cb)(void *);
  void *stopped_arg;
};

static uint64_t now_ns(void) { return uv_hrtime(); }

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

static void post_fatal(lm_writer *w, const char *why) {
  uv_mutex_lock(&w->mu);
  snprintf(w->fatal, sizeof w->fatal, "%s", why);
  w->fatal_ready = 1;
  uv_mutex_unlock(&w->mu);
  uv_async_send(&w->async);
}

/* Waits on the condition for up to ms, or until stop. Called with mu held. */
static void wait_ms(lm_writer *w, uint64_t ms) {
  if (!w->stop) uv_cond_timedwait(&w->cond, &w->mu, ms * 1000000ull);
}

/*
 * Connects and identifies the landmark. Returns 0, CL_EDB (retry later), or
 * another code after posting a fatal error.
 */
static int db_open(lm_writer *w, cl_store **db, int64_t *landmark_id) {
  char err[512];
  int rc = cl_store_connect(db, w->cfg->conninfo, err, sizeof err);
  if (rc != CL_OK) {
    cl_log(CL_LOG_WARN, "database unavailable", "err=\"%.300s\"", err);
    return CL_EDB;
  }
  rc = cl_store_landmark_find(*db, w->pk, landmark_id, err, sizeof err);
  if (rc == CL_OK) {
    cl_log(CL_LOG_INFO, "database connected", "landmark_id=%lld", (long long)*landmark_id);
    return CL_OK;
  }
  cl_store_destroy(db);
  if (rc == CL_ENOTFOUND || rc == CL_EPERM) {
    char pkhex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(w->pk, pkhex);
    char why[700];
    snprintf(why, sizeof why,
             rc == CL_ENOTFOUND
                 ? "this landmark's key %s is not registered; run: chiploc landmark add --pubkey %s ..."
                 : "database permission denied for landmark %s%s",
             pkhex, rc == CL_ENOTFOUND ? pkhex : "");
    post_fatal(w, why);
    return rc;
  }
  cl_log(CL_LOG_WARN, "landmark lookup failed", "err=\"%.300s\"", err);
  return CL_EDB;
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

/* Writes up to batch_size rows from the head of the ring. Called without mu. */
static int flush_batch(lm_writer *w, cl_store *db, int64_t landmark_id, cl_store_row *scratch) {
  uv_mutex_lock(&w->mu);
  size_t n = w->len < w->cfg->batch_size ? w->len : w->cfg->batch_size;
  /* One batch holds rows of one kind: chip measurements or landmark links
   * (rare), so that each batch is one table and one transaction. */
  size_t same = 0;
  for (; same < n; same++) {
    scratch[same] = w->ring[(w->head + same) % w->cap];
    if (scratch[same].is_link != scratch[0].is_link) break;
  }
  n = same;
  uv_mutex_unlock(&w->mu);
  if (n == 0) return CL_OK;
  int (*insert)(cl_store *, int64_t, const cl_store_row *, size_t, char *, size_t) =
      scratch[0].is_link ? cl_store_insert_links : cl_store_insert_measurements;
  char err[512];
  uint64_t t0 = now_ns();
  int rc = insert(db, landmark_id, scratch, n, err, sizeof err);
  uint64_t rejected = 0;
  if (rc == CL_EPERM) {
    /* A missing grant is an operator error, not a bad row: stop loudly and
     * keep every row queued rather than set them aside one by one. */
    char why[700];
    snprintf(why, sizeof why, "permission denied writing measurements: %.600s", err);
    post_fatal(w, why);
    return rc;
  }
  if (rc != CL_OK && rc != CL_EDB) {
    /* Retrying the same batch cannot succeed (a row the schema refuses, or
     * rows already stored by a commit whose acknowledgement was lost). Fall
     * back to one row per transaction so that only the offending rows are
     * set aside, each logged with its reason. */
    cl_log(CL_LOG_WARN, "batch refused; writing rows one by one", "rows=%zu err=\"%.300s\"", n,
           err);
    rc = CL_OK;
    for (size_t i = 0; i < n && rc == CL_OK; i++) {
      int r1 = insert(db, landmark_id, &scratch[i], 1, err, sizeof err);
      if (r1 == CL_EDB) {
        rc = CL_EDB; /* connection trouble: keep the rest queued */
        n = i;
      } else if (r1 == CL_EEXIST) {
        cl_log(CL_LOG_INFO, "row already stored", "seq=%llu",
               (unsigned long long)scratch[i].m.ch.seq);
      } else if (r1 != CL_OK) {
        rejected++;
        cl_log(CL_LOG_ERROR, "row refused by the database; set aside",
               "seq=%llu chip_id=%lld err=\"%.300s\"", (unsigned long long)scratch[i].m.ch.seq,
               (long long)scratch[i].chip_id, err);
      }
    }
    if (rc == CL_EDB && n > 0) rc = CL_OK; /* the first n rows are settled */
  }
  uv_mutex_lock(&w->mu);
  w->stats.rows_rejected += rejected;
  if (rc == CL_OK) {
    w->head = (w->head + n) % w->cap;
    w->len -= n;
    w->oldest_ns = w->len ? now_ns() : 0;
    w->stats.rows_written += n - rejected;
    w->stats.batches++;
  } else {
    w->stats.db_errors++;
  }
  w->stats.queue_depth = w->len;
  uv_mutex_unlock(&w->mu);
  if (rc == CL_OK)
    cl_log(CL_LOG_DEBUG, "batch written", "rows=%zu ms=%.3f", n, (double)(now_ns() - t0) / 1e6);
  else
    cl_log(CL_LOG_WARN, "batch write failed; rows kept for retry", "rows=%zu err=\"%.300s\"", n,
           err);
  return rc;
}

static void thread_main(void *arg) {
  lm_writer *w = arg;
  cl_store *db = NULL;
  int64_t landmark_id = 0;
  uint64_t retry_ms = RETRY_MIN_MS;
  uint64_t next_refresh = 0;
  uint64_t stop_deadline = 0;
  cl_store_row *scratch = malloc(sizeof *scratch * w->cfg->batch_size);
  if (!scratch) {
    post_fatal(w, "out of memory for the write batch");
    return;
  }
  for (;;) {
    uv_mutex_lock(&w->mu);
    int stopping = w->stop;
    size_t queued = w->len;
    if (stopping && !stop_deadline) stop_deadline = now_ns() + (uint64_t)w->drain_ms * 1000000ull;
    uv_mutex_unlock(&w->mu);
    if (stopping && (queued == 0 || now_ns() > stop_deadline)) {
      if (queued)
        cl_log(CL_LOG_ERROR, "rows not written at shutdown", "rows=%zu", queued);
      break;
    }
    if (db && !cl_store_ok(db)) {
      cl_log(CL_LOG_WARN, "database connection lost", NULL);
      cl_store_destroy(&db);
    }
    if (!db) {
      int rc = db_open(w, &db, &landmark_id);
      if (rc != CL_OK && rc != CL_EDB) break; /* fatal, already posted */
      if (rc != CL_OK) {
        uv_mutex_lock(&w->mu);
        wait_ms(w, retry_ms);
        uv_mutex_unlock(&w->mu);
        retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
        continue;
      }
      retry_ms = RETRY_MIN_MS;
      next_refresh = 0;
    }
    uint64_t t = now_ns();
    if (!stopping && t >= next_refresh) {
      if (refresh_chips(w, db) == CL_OK)
        next_refresh = t + (uint64_t)w->cfg->refresh_interval_s * 1000000000ull;
      else
        next_refresh = t + 1000000000ull;
    }
    /* Flush when a batch is full, the oldest row has waited long enough,
     * or we are stopping. */
    uv_mutex_lock(&w->mu);
    uint64_t age_ms = w->len ? (now_ns() - w->oldest_ns) / 1000000ull : 0;
    int due = w->len >= w->cfg->batch_size || (w->len && age_ms >= w->cfg->flush_interval_ms) ||
              (w->stop && w->len);
    if (!due) {
      uint64_t until_flush = w->len ? w->cfg->flush_interval_ms - age_ms : UINT64_MAX;
      uint64_t until_refresh = next_refresh > now_ns() ? (next_refresh - now_ns()) / 1000000ull : 0;
      uint64_t sleep = until_flush < until_refresh ? until_flush : until_refresh;
      if (sleep == 0) sleep = 1;
      wait_ms(w, sleep);
      uv_mutex_unlock(&w->mu);
      continue;
    }
    uv_mutex_unlock(&w->mu);
    int frc = flush_batch(w, db, landmark_id, scratch);
    if (frc == CL_EPERM) break; /* fatal, already posted */
    if (frc != CL_OK) {
      /* Keep the rows; reconnect if the connection broke, else back off. */
      if (!cl_store_ok(db)) cl_store_destroy(&db);
      uv_mutex_lock(&w->mu);
      wait_ms(w, retry_ms);
      uv_mutex_unlock(&w->mu);
      retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
    } else {
      retry_ms = RETRY_MIN_MS;
    }
  }
  free(scratch);
  cl_store_destroy(&db);
}

int lm_writer_create(lm_writer **out, uv_loop_t *loop, const cl_landmark_config *cfg,
                     const uint8_t landmark_pk[CL_PK_LEN], lm_writer_callbacks cb) {
  lm_writer *w = calloc(1, sizeof *w);
  if (!w) return CL_ENOMEM;
  w->loop = loop;
  w->cfg = cfg;
  memcpy(w->pk, landmark_pk, CL_PK_LEN);
  w->cb = cb;
  w->cap = 1024;
  w->ring = malloc(sizeof *w->ring * w->cap);
  if (!w->ring || uv_mutex_init(&w->mu) != 0) {
    free(w->ring);
    free(w);
    return CL_ENOMEM;
  }
  uv_cond_init(&w->cond);
  uv_async_init(loop, &w->async, on_async);
  w->async.data = w;
  if (uv_thread_create(&w->thread, thread_main, w) != 0) {
    /* The async handle is registered: close it and leak nothing else. */
    uv_close((uv_handle_t *)&w->async, NULL);
    return CL_EIO;
  }
  *out = w;
  return CL_OK;
}

int lm_writer_push(lm_writer *w, const cl_store_row *row) {
  uv_mutex_lock(&w->mu);
  if (w->len == w->cap) {
    size_t ncap = w->cap * 2;
    cl_store_row *n = ncap <= QUEUE_MAX ? malloc(sizeof *n * ncap) : NULL;
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
  int wake = w->len >= w->cfg->batch_size;
  uv_mutex_unlock(&w->mu);
  if (wake) uv_cond_signal(&w->cond);
  return CL_OK;
}

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
  uv_cond_destroy(&w->cond);
  uv_mutex_destroy(&w->mu);
  free(w);
  *pw = NULL;
}
