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
  /* Called on the loop thread when the writer cannot go on (landmark not
   * registered, permission denied). `why` is valid during the call. */
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
  uint64_t spool_rows;    /* records in the spool waiting for the database */
  uint64_t spool_bytes;   /* size of the spool file */
} lm_writer_stats;

/*
 * Opens the spool (cfg->spool_path, at most cfg->spool_max_mb MiB; rows a
 * previous run left there are replayed once the database is reachable) and
 * starts the thread. cfg and landmark_pk must outlive the writer. Returns 0;
 * CL_ENOMEM (no memory or no thread); or the spool's error (CL_EIO,
 * CL_EVERSION, CL_EMALFORMED, CL_EEXIST: see lm_spool_open) with err saying
 * what is wrong with the file.
 */
int lm_writer_create(lm_writer **out, uv_loop_t *loop, const cl_landmark_config *cfg,
                     const uint8_t landmark_pk[CL_PK_LEN], lm_writer_callbacks cb, char *err,
                     size_t errlen);
/* Queues one row (copied). Thread-safe and non-blocking. Returns 0, or
 * CL_ETOOBIG when the queue is full (the row is counted as dropped). */
int lm_writer_push(lm_writer *w, const cl_store_row *row);
void lm_writer_get_stats(lm_writer *w, lm_writer_stats *out);
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

#endif
