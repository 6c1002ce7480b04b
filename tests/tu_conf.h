/*
 * Config files for the real landmarkd and chipagent (docs/CONFIG.md), written
 * from a struct instead of by hand. Plain C with no Check dependency, so that
 * the benchmarks (bench/ingest.c) write their configs with it too; the tests
 * use it through testutil.h (tu_landmark_conf, tu_agent_conf).
 *
 * A numeric field left 0 and a string left NULL are not written, so the
 * program's own default applies; TU_CONF_ZERO writes an explicit 0.
 */
#ifndef TU_CONF_H
#define TU_CONF_H

/* A numeric field set to this is written as 0 (0 itself means "not written"). */
#define TU_CONF_ZERO (-1)

/* landmarkd. name, key, conninfo, lat and lon are required and always
 * written; addresses are on 127.0.0.1. */
typedef struct {
  const char *file; /* file name in the directory; NULL: landmarkd.conf (the
                       default spool path is named after it) */
  /* [landmark] */
  const char *name;
  const char *key; /* path of the identity key file */
  int port;        /* listen = 127.0.0.1:port */
  double lat, lon;
  /* [database] */
  const char *conninfo;
  int batch_size, flush_interval_ms, refresh_interval_s, spool_max_mb;
  const char *spool_path;
  /* [probe] */
  int interval_s;
  double jitter;
  int burst, burst_gap_ms, deadline_ms;
  const char *speed; /* c, fibre or m/s */
  int verify_threads;
  /* [limits] */
  int max_connections, max_connections_per_address, max_pending_challenges, max_frame_bytes;
  int handshake_timeout_ms, idle_timeout_s, stats_interval_s;
  int max_write_queue_bytes, max_error_replies_per_s;
  /* [metrics] */
  int metrics_port; /* listen = 127.0.0.1:metrics_port */
} tu_landmark_opts;

#define TU_AGENT_MAX 16

/* One [landmark.NAME] section of a chipagent config. */
typedef struct {
  const char *name;
  int port;               /* address = 127.0.0.1:port */
  const char *public_key; /* 64 hex digits */
} tu_agent_landmark;

/* One [chip.NAME] section. */
typedef struct {
  const char *name;
  const char *key; /* path of the chip's key file */
} tu_agent_chip;

/* chipagent. The lists end at the first entry whose name is NULL. */
typedef struct {
  const char *file; /* NULL: chipagent.conf */
  /* [agent] */
  const char *name;
  int backoff_min_ms, backoff_max_ms, idle_timeout_s;
  tu_agent_landmark landmarks[TU_AGENT_MAX];
  tu_agent_chip chips[TU_AGENT_MAX];
} tu_agent_opts;

/* The config text: malloc'd (the caller frees it), or NULL when out of
 * memory. */
char *tu_conf_landmark_text(const tu_landmark_opts *o);
char *tu_conf_agent_text(const tu_agent_opts *o);

/* Writes the config to dir/o->file (or the default name). Returns the path,
 * malloc'd (the caller frees it), or NULL with errno set. */
char *tu_conf_landmark_write(const char *dir, const tu_landmark_opts *o);
char *tu_conf_agent_write(const char *dir, const tu_agent_opts *o);

#endif
