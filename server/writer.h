/*
 * landmarkd's database side. One worker thread owns the PostgreSQL
 * connection: it looks up the landmark's own id, refreshes the enrolled chip
 * set periodically, and writes queued measurement rows in COPY batches. The
 * event loop only enqueues rows (a mutex and a condition variable) and
 * receives results through a uv_async_t, so a slow or absent database never
 * stalls probing.
 *
 * When the database stays unreachable, the thread moves queued rows into the
 * outage spool (spool.h: a bounded, fsync'd local file) and replays the spool,
 * oldest first, before any newer row once the database is back. Rows in the
 * spool survive a restart. docs/SPOOL.md describes the guarantees.
 */
#ifndef LM_WRITER_H
#define LM_WRITER_H

#include "cl_config.h"
#include "cl_store.h"

#include <stdint.h>
#include <uv.h>

typedef struct lm_writer lm_writer;

typedef struct {
  /* Called on the loop thread with a fresh enrolled set; takes ownership
   * of `chips` (free() it). */
  void (*on_chips)(void *arg, cl_store_chip *chips, size_t n);
  /* Called on the loop thread when the writer cannot go on (the login
   * refused, landmark not registered, permission denied: see
   * lm_writer_fatal_code). `why` is valid during the call. */
  void (*on_fatal)(void *arg, const char *why);
  void *arg;
} lm_writer_callbacks;

typedef struct {
  uint64_t rows_queued;  /* accepted by lm_writer_push */
  uint64_t rows_written; /* settled in the database (replayed ones included) */
  uint64_t rows_dropped; /* lost because the queue was full */
  uint64_t rows_rejected; /* refused by the database (constraint), logged */
  uint64_t batches;
  uint64_t batch_ns_total; /* time spent in the batches counted by `batches` (uv_hrtime ns) */
  uint64_t db_errors;
  uint64_t queue_depth;  /* rows in memory: neither written nor spooled yet */
  uint64_t rows_spooled; /* moved from memory into the spool */
  uint64_t rows_replayed; /* read back from the spool and settled in the database */
  uint64_t spool_dropped; /* lost because the spool was full (spool_max_mb) */
  uint64_t spool_corrupt; /* spool records dropped for a bad checksum */
  uint64_t spool_rows;    /* records waiting for the database: spool and set-aside spools */
  uint64_t spool_bytes;   /* size of the spool file */
  int connected;          /* 1 while the thread holds a database connection */
} lm_writer_stats;

/*
 * Opens the spool (cfg->spool_path, at most cfg->spool_max_mb MiB; rows a
 * previous run left there are replayed once the database is reachable) and
 * starts the thread. A spool of another landmark key (a rotated key) is
 * re-made for this key when it holds no record, else set aside and
 * replayed under the key that signed it (spool.h, docs/SPOOL.md); set-aside
 * spools an earlier run left are picked up too. cfg and landmark_pk must
 * outlive the writer. Returns 0; CL_ENOMEM (no memory or no thread); or the
 * spool's error (CL_EIO, CL_EVERSION, CL_EMALFORMED: see lm_spool_open;
 * CL_EEXIST: records of another key to set aside where a set-aside spool
 * of that key exists already) with err saying what is wrong with the file.
 */
int lm_writer_create(lm_writer **out, uv_loop_t *loop, const cl_landmark_config *cfg,
                     const uint8_t landmark_pk[CL_PK_LEN], lm_writer_callbacks cb, char *err,
                     size_t errlen);
/* Queues one row (copied). Thread-safe and non-blocking. Returns 0, or
 * CL_ETOOBIG when the queue is full (the row is counted as dropped). */
int lm_writer_push(lm_writer *w, const cl_store_row *row);
void lm_writer_get_stats(lm_writer *w, lm_writer_stats *out);
/* Asks the thread to re-read the enrolled set at once (when connected;
 * else at the connect), and to try again set-aside spools it held.
 * Thread-safe. */
void lm_writer_refresh(lm_writer *w);
/* After on_fatal: what stopped the writer. CL_EPERM (the database refused
 * the login, or this login may not read the landmarks or write this
 * landmark's rows), CL_ENOTFOUND (the key is not registered), CL_EINVAL
 * (the configuration's name or position is not the registered
 * landmark's, see POSITION_TOLERANCE_DEG in writer.c): for the
 * operator to fix; CL_ENOMEM otherwise. Loop thread only. */
int lm_writer_fatal_code(const lm_writer *w);
/*
 * Asks the thread to write everything still queued and joins it. Rows go to
 * the database while it answers, for up to `drain_ms`; when it does not (or
 * the spool still holds older rows), the rest goes to the spool, fsync'd.
 * Rows that fit in neither stay counted in queue_depth. Then the async
 * handle is closed; `done` is called on the loop thread once it is, and the
 * writer may then be destroyed.
 */
void lm_writer_stop(lm_writer *w, uint32_t drain_ms, void (*done)(void *arg), void *arg);
void lm_writer_destroy(lm_writer **w);

/* One finding of lm_writer_check: ok 1 or 0, what was checked, and what
 * was found (on failure: what is wrong and what to do). */
typedef void (*lm_check_line)(void *arg, int ok, const char *what, const char *detail);
/*
 * For landmarkd --check-config, without a thread or a loop: logs in with
 * cfg->conninfo (a refused login and an unreachable server are both
 * failures, told apart), looks up the landmark entry of landmark_pk,
 * compares its name and position with the configuration's and checks that
 * the login may write its rows, as the writer does when it connects. Calls line once per check made; returns the number that failed.
 */
int lm_writer_check(const cl_landmark_config *cfg, const uint8_t landmark_pk[CL_PK_LEN],
                    lm_check_line line, void *arg);

#endif
