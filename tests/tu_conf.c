/* Config files of landmarkd and chipagent written from a struct (tu_conf.h). */
#define _GNU_SOURCE
#include "tu_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes `key = value` for a numeric field that is set. */
static void put_int(FILE *f, const char *key, int v) {
  if (v == TU_CONF_ZERO)
    fprintf(f, "%s = 0\n", key);
  else if (v)
    fprintf(f, "%s = %d\n", key, v);
}

static void put_str(FILE *f, const char *key, const char *v) {
  if (v) fprintf(f, "%s = %s\n", key, v);
}

/* Closes the memory stream and returns its text (*buf is only final after
 * the close), or NULL. */
static char *finish(FILE *f, char **buf) {
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    free(*buf);
    return NULL;
  }
  return *buf;
}

char *tu_conf_landmark_text(const tu_landmark_opts *o) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  fprintf(f, "[landmark]\n");
  put_str(f, "name", o->name);
  put_str(f, "key", o->key);
  if (o->port) fprintf(f, "listen = 127.0.0.1:%d\n", o->port);
  fprintf(f, "lat = %.10g\nlon = %.10g\n", o->lat, o->lon);

  fprintf(f, "\n[database]\n");
  put_str(f, "conninfo", o->conninfo);
  put_int(f, "batch_size", o->batch_size);
  put_int(f, "flush_interval_ms", o->flush_interval_ms);
  put_int(f, "refresh_interval_s", o->refresh_interval_s);
  put_str(f, "spool_path", o->spool_path);
  put_int(f, "spool_max_mb", o->spool_max_mb);

  fprintf(f, "\n[probe]\n");
  put_int(f, "interval_s", o->interval_s);
  if (o->jitter == TU_CONF_ZERO)
    fprintf(f, "jitter = 0\n");
  else if (o->jitter != 0)
    fprintf(f, "jitter = %g\n", o->jitter);
  put_int(f, "burst", o->burst);
  put_int(f, "burst_gap_ms", o->burst_gap_ms);
  put_int(f, "deadline_ms", o->deadline_ms);
  put_str(f, "speed", o->speed);
  put_int(f, "verify_threads", o->verify_threads);

  fprintf(f, "\n[limits]\n");
  put_int(f, "max_connections", o->max_connections);
  put_int(f, "max_connections_per_address", o->max_connections_per_address);
  put_int(f, "max_pending_challenges", o->max_pending_challenges);
  put_int(f, "max_frame_bytes", o->max_frame_bytes);
  put_int(f, "handshake_timeout_ms", o->handshake_timeout_ms);
  put_int(f, "idle_timeout_s", o->idle_timeout_s);
  put_int(f, "stats_interval_s", o->stats_interval_s);
  put_int(f, "max_write_queue_bytes", o->max_write_queue_bytes);
  put_int(f, "max_error_replies_per_s", o->max_error_replies_per_s);

  if (o->metrics_port) fprintf(f, "\n[metrics]\nlisten = 127.0.0.1:%d\n", o->metrics_port);
  return finish(f, &buf);
}

char *tu_conf_agent_text(const tu_agent_opts *o) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  fprintf(f, "[agent]\n");
  put_str(f, "name", o->name);
  put_int(f, "backoff_min_ms", o->backoff_min_ms);
  put_int(f, "backoff_max_ms", o->backoff_max_ms);
  put_int(f, "idle_timeout_s", o->idle_timeout_s);
  for (int i = 0; i < TU_AGENT_MAX && o->landmarks[i].name; i++)
    fprintf(f, "\n[landmark.%s]\naddress = 127.0.0.1:%d\npublic_key = %s\n", o->landmarks[i].name,
            o->landmarks[i].port, o->landmarks[i].public_key);
  for (int i = 0; i < TU_AGENT_MAX && o->chips[i].name; i++)
    fprintf(f, "\n[chip.%s]\nkey = %s\n", o->chips[i].name, o->chips[i].key);
  return finish(f, &buf);
}

/* Writes text (freed here) to dir/name; the malloc'd path or NULL. */
static char *write_text(const char *dir, const char *name, char *text) {
  if (!text) return NULL;
  char *path = NULL;
  if (asprintf(&path, "%s/%s", dir, name) < 0) {
    free(text);
    errno = ENOMEM;
    return NULL;
  }
  FILE *f = fopen(path, "w");
  int ok = f && fputs(text, f) >= 0;
  if (f && fclose(f) != 0) ok = 0;
  free(text);
  if (!ok) {
    int e = errno;
    free(path);
    errno = e;
    return NULL;
  }
  return path;
}

char *tu_conf_landmark_write(const char *dir, const tu_landmark_opts *o) {
  return write_text(dir, o->file ? o->file : "landmarkd.conf", tu_conf_landmark_text(o));
}

char *tu_conf_agent_write(const char *dir, const tu_agent_opts *o) {
  return write_text(dir, o->file ? o->file : "chipagent.conf", tu_conf_agent_text(o));
}
