/*
 * landmarkd's counters as text: the stats log line and the Prometheus
 * exposition. See landmark_metrics.h; docs/METRICS.md lists every series.
 */
#include "landmark_metrics.h"
#include "cl_err.h"
#include "cl_log.h"

#include <stdio.h>

void lm_stats_log(const lm_server_view *view, const lm_writer_stats *ws) {
  const cl_lm_stats *t = view->core;
  cl_log(CL_LOG_INFO, "stats",
         "conns=%zu conns_accepted=%llu conns_refused_limit=%llu chips_live=%zu "
         "chips_registered=%llu refused_not_enrolled=%llu refused_bad_proof=%llu "
         "refused_duplicate=%llu refused_inactive=%llu refused_not_asked=%llu "
         "suite_refused=%llu handshakes=%llu bad_handshake_sigs=%llu "
         "confirms_unexpected=%llu rekeys_asked=%llu rekeys_done=%llu rekeys_failed=%llu "
         "probes_sent=%llu accepted=%llu timeouts=%llu rejected_unknown_probe=%llu "
         "rejected_replay=%llu rejected_late=%llu rejected_bad_mac=%llu "
         "rejected_not_registered=%llu bursts_empty=%llu transcripts_ok=%llu "
         "transcripts_bad=%llu transcript_timeouts=%llu frames_too_large=%llu "
         "frames_malformed=%llu frames_unknown_type=%llu version_mismatch=%llu "
         "unexpected_msg=%llu handshake_timeouts=%llu idle_timeouts=%llu measurements=%llu "
         "measurements_dropped=%llu rows_written=%llu db_queue=%llu db_errors=%llu "
         "conns_refused_per_address=%llu probes_deferred=%llu peer_errors=%llu "
         "rows_spooled=%llu rows_replayed=%llu spool_rows=%llu spool_bytes=%llu "
         "spool_dropped=%llu spool_corrupt=%llu write_queue_overflows=%llu "
         "error_replies_suppressed=%llu reads_paused=%llu conns_read_paused=%zu "
         "write_queue_bytes=%zu jobs_orphaned=%llu chip_takeovers=%llu",
         view->conns, (unsigned long long)t->conns_accepted,
         (unsigned long long)t->conns_refused_limit, view->chips_live,
         (unsigned long long)t->chips_registered,
         (unsigned long long)t->handshake_refused[CL_REFUSE_NOT_ENROLLED],
         (unsigned long long)t->handshake_refused[CL_REFUSE_BAD_PROOF],
         (unsigned long long)t->handshake_refused[CL_REFUSE_DUPLICATE],
         (unsigned long long)t->handshake_refused[CL_REFUSE_INACTIVE],
         (unsigned long long)t->handshake_refused[CL_REFUSE_NOT_ASKED],
         (unsigned long long)t->suite_refused, (unsigned long long)t->handshakes_ok,
         (unsigned long long)t->bad_handshake_sigs, (unsigned long long)t->confirms_unexpected,
         (unsigned long long)t->rekeys_asked, (unsigned long long)t->rekeys_done,
         (unsigned long long)t->rekeys_failed, (unsigned long long)t->probes_sent,
         (unsigned long long)t->responses_accepted, (unsigned long long)t->probe_timeouts,
         (unsigned long long)t->rejected[CL_ACCEPT_UNKNOWN_PROBE],
         (unsigned long long)t->rejected[CL_ACCEPT_REPLAY],
         (unsigned long long)t->rejected[CL_ACCEPT_LATE],
         (unsigned long long)t->rejected[CL_ACCEPT_BAD_MAC],
         (unsigned long long)t->rejected_not_registered, (unsigned long long)t->bursts_empty,
         (unsigned long long)t->transcripts_ok, (unsigned long long)t->transcripts_bad,
         (unsigned long long)t->transcript_timeouts, (unsigned long long)t->frames_too_large,
         (unsigned long long)t->frames_malformed, (unsigned long long)t->frames_unknown_type,
         (unsigned long long)t->version_mismatch, (unsigned long long)t->unexpected_msg,
         (unsigned long long)t->handshake_timeouts, (unsigned long long)t->idle_timeouts,
         (unsigned long long)t->measurements, (unsigned long long)t->measurements_dropped,
         (unsigned long long)ws->rows_written, (unsigned long long)ws->queue_depth,
         (unsigned long long)ws->db_errors, (unsigned long long)t->conns_refused_per_address,
         (unsigned long long)t->probes_deferred, (unsigned long long)t->peer_errors,
         (unsigned long long)ws->rows_spooled, (unsigned long long)ws->rows_replayed,
         (unsigned long long)ws->spool_rows, (unsigned long long)ws->spool_bytes,
         (unsigned long long)ws->spool_dropped, (unsigned long long)ws->spool_corrupt,
         (unsigned long long)t->write_queue_overflows,
         (unsigned long long)t->error_replies_suppressed, (unsigned long long)view->reads_paused,
         view->conns_read_paused, view->write_queue_bytes,
         (unsigned long long)t->jobs_orphaned, (unsigned long long)t->chip_takeovers);
}

/* One counter family with one labelled series per (label value, count). */
static void counter_by(cl_mtext *t, const char *name, const char *help, const char *label,
                       const char *const *values, const uint64_t *counts, size_t n) {
  cl_mtext_family(t, name, "counter", help);
  for (size_t i = 0; i < n; i++) {
    char lab[96];
    snprintf(lab, sizeof lab, "%s=\"%s\"", label, values[i]);
    cl_mtext_u64(t, name, lab, counts[i]);
  }
}

static void counter1(cl_mtext *t, const char *name, const char *help, uint64_t v) {
  cl_mtext_family(t, name, "counter", help);
  cl_mtext_u64(t, name, NULL, v);
}

static void gauge1(cl_mtext *t, const char *name, const char *help, double v) {
  cl_mtext_family(t, name, "gauge", help);
  cl_mtext_double(t, name, NULL, v);
}

int lm_metrics_render(const lm_server_view *view, const lm_writer_stats *ws, const char *name,
                      cl_mtext *t) {
  const cl_lm_stats *st = view->core;
  char name_q[CL_CONFIG_NAME_MAX * 2 + 1], lab[CL_CONFIG_NAME_MAX * 2 + 64];
  cl_mtext_label_value(name_q, sizeof name_q, name);
  snprintf(lab, sizeof lab, "landmark=\"%s\",version=\"%s\"", name_q, CHIPLOC_VERSION);
  cl_mtext_family(t, "chiploc_landmark_info", "gauge",
                  "Constant 1, labelled with the landmark name and version.");
  cl_mtext_u64(t, "chiploc_landmark_info", lab, 1);

  counter1(t, "chiploc_probes_sent_total", "Challenges sent.", st->probes_sent);
  counter1(t, "chiploc_responses_accepted_total", "Responses that passed every acceptance check.",
           st->responses_accepted);
  {
    const char *v[] = {"unknown_probe", "replay", "late", "bad_mac", "not_registered"};
    uint64_t n[] = {st->rejected[CL_ACCEPT_UNKNOWN_PROBE], st->rejected[CL_ACCEPT_REPLAY],
                    st->rejected[CL_ACCEPT_LATE], st->rejected[CL_ACCEPT_BAD_MAC],
                    st->rejected_not_registered};
    counter_by(t, "chiploc_responses_rejected_total",
               "Responses (and Transcripts, as not_registered) rejected, by reason.", "reason", v,
               n, 5);
  }
  counter1(t, "chiploc_bursts_empty_total",
           "Bursts that ended without an accepted probe: no BurstEnd, no record.",
           st->bursts_empty);
  {
    const char *v[] = {"ok", "bad", "timeout"};
    uint64_t n[] = {st->transcripts_ok, st->transcripts_bad, st->transcript_timeouts};
    counter_by(t, "chiploc_transcripts_total",
               "Bursts awaiting the chip's transcript, by outcome: ok (verified, the record is "
               "signed), bad (signature, first_seq, or no burst awaiting one), timeout.",
               "result", v, n, 3);
  }
  counter1(t, "chiploc_probes_deferred_total",
           "Probes postponed because the connection had max_pending_challenges outstanding.",
           st->probes_deferred);
  {
    const char *v[] = {"too_large", "malformed", "unknown_type", "version", "unexpected",
                       "suite"};
    uint64_t n[] = {st->frames_too_large, st->frames_malformed, st->frames_unknown_type,
                    st->version_mismatch, st->unexpected_msg, st->suite_refused};
    counter_by(t, "chiploc_frames_rejected_total",
               "Frames rejected (the connection is closed), by reason.", "reason", v, n, 6);
  }
  counter1(t, "chiploc_peer_errors_total", "Error frames received from agents.", st->peer_errors);
  counter1(t, "chiploc_error_replies_suppressed_total",
           "Error replies to rejected responses not sent: over max_error_replies_per_s on their "
           "connection.",
           st->error_replies_suppressed);
  counter1(t, "chiploc_write_queue_overflows_total",
           "Connections closed because their write queue would pass max_write_queue_bytes (the "
           "peer does not read).",
           st->write_queue_overflows);
  counter1(t, "chiploc_reads_paused_total",
           "Times a connection stopped being read because its write queue passed a quarter of "
           "max_write_queue_bytes.",
           view->reads_paused);
  gauge1(t, "chiploc_connections_read_paused",
         "Connections not being read until their write queue drains.",
         (double)view->conns_read_paused);
  gauge1(t, "chiploc_write_queue_bytes",
         "Bytes held for writing to agents, all connections, write requests included.",
         (double)view->write_queue_bytes);
  counter1(t, "chiploc_chips_registered_total",
           "Chips whose first session verified (they became active on a connection).",
           st->chips_registered);
  counter1(t, "chiploc_chip_takeovers_total",
           "Active chips taken from their connection by a newer verified session on another "
           "(the old connection got ERROR_CHIP_TAKEN_OVER): a second agent with the chip's key.",
           st->chip_takeovers);
  {
    const char *v[] = {"not_enrolled", "bad_proof", "duplicate", "inactive", "not_asked"};
    uint64_t n[] = {st->handshake_refused[CL_REFUSE_NOT_ENROLLED],
                    st->handshake_refused[CL_REFUSE_BAD_PROOF],
                    st->handshake_refused[CL_REFUSE_DUPLICATE],
                    st->handshake_refused[CL_REFUSE_INACTIVE],
                    st->handshake_refused[CL_REFUSE_NOT_ASKED]};
    counter_by(t, "chiploc_registrations_refused_total",
               "Chip offers refused in a RegisterResult, by reason.", "reason", v, n, 5);
  }
  counter1(t, "chiploc_handshakes_total",
           "Sessions that began: a chip's Confirm verified (first sessions and rekeys).",
           st->handshakes_ok);
  counter1(t, "chiploc_handshake_bad_signatures_total",
           "Confirms whose chip signature did not verify (the chip was dropped).",
           st->bad_handshake_sigs);
  counter1(t, "chiploc_confirms_unexpected_total",
           "Confirm entries for a chip with no handshake awaiting one (answered with an Error).",
           st->confirms_unexpected);
  {
    const char *v[] = {"asked", "completed", "failed"};
    uint64_t n[] = {st->rekeys_asked, st->rekeys_done, st->rekeys_failed};
    counter_by(t, "chiploc_rekeys_total",
               "Rekeys: asked (a Rekey sent), completed (the new session verified), failed (not "
               "completed within handshake_timeout_ms: the chip was dropped).",
               "result", v, n, 3);
  }
  gauge1(t, "chiploc_chips_live", "Chips registered on an open connection.",
         (double)view->chips_live);
  gauge1(t, "chiploc_connections", "Agent connections open.", (double)view->conns);
  counter1(t, "chiploc_connections_accepted_total", "Agent connections accepted.",
           st->conns_accepted);
  {
    const char *v[] = {"limit", "per_address"};
    uint64_t n[] = {st->conns_refused_limit, st->conns_refused_per_address};
    counter_by(t, "chiploc_connections_refused_total",
               "Connections refused with ERROR_LIMIT, by limit reached.", "reason", v, n, 2);
  }
  {
    const char *v[] = {"handshake", "idle", "probe"};
    uint64_t n[] = {st->handshake_timeouts, st->idle_timeouts, st->probe_timeouts};
    counter_by(t, "chiploc_timeouts_total",
               "Timeouts: handshakes not completed in time (a connection with no active chip, or "
               "one chip's), connections idle, probes unanswered by the deadline.",
               "kind", v, n, 3);
  }
  cl_mtext_family(t, "chiploc_rtt_seconds", "histogram", "Round-trip time of accepted probes.");
  cl_mtext_histogram(t, "chiploc_rtt_seconds", NULL, &st->rtt);
  cl_mtext_family(t, "chiploc_probe_lag_seconds", "histogram",
                  "How late each challenge was sent against its scheduled time.");
  cl_mtext_histogram(t, "chiploc_probe_lag_seconds", NULL, &st->lag);
  {
    const char *v[] = {"handshake", "confirm", "transcript"};
    uint64_t n[] = {st->jobs_queued[CL_LM_WORK_HANDSHAKE], st->jobs_queued[CL_LM_WORK_CONFIRM],
                    st->jobs_queued[CL_LM_WORK_TRANSCRIPT]};
    counter_by(t, "chiploc_jobs_queued_total",
               "Jobs handed to the verify threads, by kind (stays 0 with verify_threads = 0).",
               "kind", v, n, 3);
  }
  gauge1(t, "chiploc_pool_inflight", "Jobs queued or running on the verify threads.",
         (double)view->pool_inflight);
  counter1(t, "chiploc_pool_orphaned_total",
           "Jobs whose result was not used: their chip or connection was gone when they "
           "finished, or they were cancelled.",
           st->jobs_orphaned);
  counter1(t, "chiploc_measurements_total", "Burst measurements handed to the database writer.",
           st->measurements);
  counter1(t, "chiploc_measurements_dropped_total",
           "Burst measurements lost because the writer queue was full.",
           st->measurements_dropped);
  cl_mtext_family(t, "chiploc_db_batch_seconds", "summary",
                  "Time to write one batch of rows to PostgreSQL (successful batches).");
  cl_mtext_double(t, "chiploc_db_batch_seconds_sum", NULL, (double)ws->batch_ns_total / 1e9);
  cl_mtext_u64(t, "chiploc_db_batch_seconds_count", NULL, ws->batches);
  gauge1(t, "chiploc_database_connected",
         "1 while the database writer holds a PostgreSQL connection, 0 during an outage.",
         ws->connected ? 1.0 : 0.0);
  gauge1(t, "chiploc_db_queue_depth", "Rows waiting to be written.", (double)ws->queue_depth);
  counter1(t, "chiploc_db_rows_written_total", "Rows committed to PostgreSQL.", ws->rows_written);
  counter1(t, "chiploc_db_rows_rejected_total", "Rows refused by the database and set aside.",
           ws->rows_rejected);
  counter1(t, "chiploc_db_errors_total", "Failed batch writes (retried).", ws->db_errors);
  gauge1(t, "chiploc_spool_bytes", "Size of the outage spool file (rows waiting for the database).",
         (double)ws->spool_bytes);
  gauge1(t, "chiploc_spool_rows", "Rows in the outage spool waiting for the database.",
         (double)ws->spool_rows);
  counter1(t, "chiploc_spool_rows_dropped_total", "Rows lost because the spool was full.",
           ws->spool_dropped);
  return cl_mtext_ok(t);
}

int lm_ready(int listening, int stopping, const lm_writer_stats *ws, uint64_t spool_max_bytes,
             char *why, size_t whylen) {
  if (stopping) {
    cl_err_set(why, whylen, "shutting down");
    return 0;
  }
  if (!listening) {
    cl_err_set(why, whylen, "not listening yet: the enrolled chips were never loaded "
                            "(database not reached since the start)");
    return 0;
  }
  if (!ws->connected && ws->spool_bytes >= spool_max_bytes / 100 * 99) {
    cl_err_set(why, whylen,
               "database disconnected and the spool full (%llu of %llu bytes): measurements "
               "are being lost",
               (unsigned long long)ws->spool_bytes, (unsigned long long)spool_max_bytes);
    return 0;
  }
  return 1;
}
