/*
 * landmarkd's database side. One worker thread owns the PostgreSQL
 * connection: it looks up the landmark's own id, refreshes the enrolled chip
 * set periodically, and writes queued measurement rows in COPY batches. The
 * event loop only enqueues rows (a mutex and a condition variable) and
 * receives results through a uv_async_t, so a slow or absent database never
 * stalls probing.
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
  uint64_t rows_written; /* committed to the database */
  uint64_t rows_dropped; /* lost because the queue was full */
  uint64_t rows_rejected; /* refused by the database (constraint), logged */
  uint64_t batches;
  uint64_t db_errors;
  uint64_t queue_depth;
} lm_writer_stats;

/* Starts the thread. cfg and landmark_pk must outlive the writer. */
int lm_writer_create(lm_writer **out, uv_loop_t *loop, const cl_landmark_config *cfg,
                     const uint8_t landmark_pk[CL_PK_LEN], lm_writer_callbacks cb);
/* Queues one row (copied). Thread-safe and non-blocking. Returns 0, or
 * CL_ETOOBIG when the queue is full (the row is counted as dropped). */
int lm_writer_push(lm_writer *w, const cl_store_row *row);
void lm_writer_get_stats(lm_writer *w, lm_writer_stats *out);
/*
 * Asks the thread to write everything still queued (retrying for up to
 * `drain_ms` if the database is unavailable), joins it, and closes the async
 * handle. `done` is called on the loop thread once the handle is closed; the
 * writer may then be destroyed.
 */
void lm_writer_stop(lm_writer *w, uint32_t drain_ms, void (*done)(void *arg), void *arg);
void lm_writer_destroy(lm_writer **w);

#endif
