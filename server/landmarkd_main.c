/*
 * landmarkd: the landmark node. Wiring only: parse arguments, load the
 * config and the identity key, start the database writer, start listening
 * once the enrolled chip set is known, serve Prometheus metrics if
 * configured ([metrics] listen), and shut down in reverse order on SIGTERM
 * or SIGINT (flushing every queued measurement first). SIGHUP re-reads the
 * enrolled set at once and names the settings of a changed config file
 * that need a restart (none is changed under a running landmark).
 * --check-config checks the file and the key, then what a start needs: the
 * spool, the metrics address, the database login and this landmark's entry.
 *
 * Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage or config error
 * (an unusable spool file, a database login the server refuses, a key not
 * registered or a login not bound to it included).
 */
#include "cl_config.h"
#include "cl_err.h"
#include "cl_key.h"
#include "cl_log.h"
#include "cl_metrics.h"
#include "landmark.h"
#include "landmark_metrics.h"
#include "spool.h"
#include "writer.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_MS 10000u
#define METRICS_PERIOD_MS 1000u
/* Descriptors landmarkd needs besides its agent connections: standard
 * streams (3), the event loop's (epoll, its wake-up eventfd, the signal
 * pipe's two, libuv's spare for EMFILE), the listener, the database
 * connection (and the files libpq reads while connecting), the spool with
 * its compaction file and directory, and up to 16 set-aside spools: 31;
 * rounded up. The metrics server adds its listener, poller, wake-up pipe
 * and up to 32 scrapes at once. docs/OPERATIONS.md states the rule. */
#define NOFILE_RESERVED 48u
#define NOFILE_METRICS 36u
/* /healthz fails when the loop has not published for ten periods. */
#define METRICS_STALE_MS 10000u

typedef struct {
  uv_loop_t *loop;
  cl_landmark_config cfg;
  cl_key *key;
  lm_writer *writer;
  lm_server *server;
  cl_metrics_server *metrics; /* NULL: no [metrics] listen */
  uv_timer_t metrics_timer;   /* re-renders the snapshot the HTTP thread serves */
  uv_timer_t stats_timer;     /* the `msg=stats` log line every stats_interval_s */
  cl_mtext mtext;
  uv_signal_t sigterm, sigint, sighup;
  const char *config_path;
  int hup_pending; /* a SIGHUP's re-read of the enrolled set is not logged yet */
  int exit_code;
  int stopping;
} app;

static void usage(FILE *f) {
  fprintf(f,
          "usage: landmarkd --config FILE [--log-level debug|info|warn|error]\n"
          "       landmarkd --check-config --config FILE\n"
          "       landmarkd --help | --version\n"
          "\n"
          "Landmark node of chiploc: accepts chip agents, agrees a session key with\n"
          "each of their chips, probes them with timed challenges answered under\n"
          "that key, and records signed RTT measurements in PostgreSQL.\n"
          "--check-config checks the file and the key, then what a start needs: the\n"
          "spool, the metrics address, the database login, this landmark's entry and\n"
          "the login's right to write its rows (one ok or FAIL line each; exit 2 on a\n"
          "failure). SIGHUP re-reads the enrolled chips. See landmarkd(8) and\n"
          "chiploc.conf(5).\n");
}

static void on_signal_closed(uv_handle_t *h) { (void)h; }

static void on_writer_stopped(void *arg) {
  app *a = arg;
  if (a->metrics) uv_close((uv_handle_t *)&a->metrics_timer, on_signal_closed);
  uv_close((uv_handle_t *)&a->sigterm, on_signal_closed);
  uv_close((uv_handle_t *)&a->sigint, on_signal_closed);
  uv_close((uv_handle_t *)&a->sighup, on_signal_closed);
}

static void on_server_closed(void *arg) {
  app *a = arg;
  /* Every burst that finished is queued by now; write it all before exit. */
  lm_writer_stop(a->writer, DRAIN_MS, on_writer_stopped, a);
}

static void log_stats(app *a) {
  lm_server_view v;
  lm_writer_stats ws;
  lm_server_view_get(a->server, &v);
  lm_writer_get_stats(a->writer, &ws);
  lm_stats_log(&v, &ws);
}

static void shutdown_app(app *a, int code) {
  if (a->stopping) return;
  a->stopping = 1;
  a->exit_code = code;
  log_stats(a);
  uv_timer_stop(&a->stats_timer);
  uv_close((uv_handle_t *)&a->stats_timer, on_signal_closed);
  lm_server_close(a->server, on_server_closed, a);
}

/* Renders every counter on the loop thread and hands the text to the HTTP
 * thread, which never reads the counters themselves. */
static void publish_metrics(app *a) {
  lm_server_view v;
  lm_writer_stats ws;
  lm_server_view_get(a->server, &v);
  lm_writer_get_stats(a->writer, &ws);
  char why[256];
  cl_metrics_health h = {.stale_after_ms = METRICS_STALE_MS, .why = why};
  h.ready = lm_ready(lm_server_is_listening(a->server), a->stopping, &ws,
                     (uint64_t)a->cfg.spool_max_mb * 1024u * 1024u, why, sizeof why);
  cl_mtext_reset(&a->mtext);
  if (lm_metrics_render(&v, &ws, a->cfg.name, &a->mtext) != CL_OK ||
      cl_metrics_server_publish(a->metrics, a->mtext.buf, a->mtext.len, &h) != CL_OK)
    cl_log(CL_LOG_WARN, "cannot render metrics", "err=out_of_memory");
}

static void on_metrics_timer(uv_timer_t *t) { publish_metrics(t->data); }
static void on_stats_timer(uv_timer_t *t) { log_stats(t->data); }

static void on_signal(uv_signal_t *h, int signum) {
  app *a = h->data;
  cl_log(CL_LOG_INFO, "shutting down", "signal=%d", signum);
  shutdown_app(a, 0);
}

/*
 * SIGHUP, as PostgreSQL and chrony do it: reload what can be reloaded and
 * say what cannot. The enrolled set is re-read at once (and set-aside
 * spools the writer held are tried again). The settings are read by the
 * writer thread and the server without locks, so none changes under a
 * running landmark: a changed file is read, checked and compared, and the
 * settings that differ are named as needing a restart. Logs go to standard
 * error: there is no file to reopen.
 */
static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  app *a = h->data;
  cl_log(CL_LOG_INFO, "SIGHUP: reloading", "config=%s", a->config_path);
  a->hup_pending = 1;
  lm_writer_refresh(a->writer);
  cl_landmark_config *fresh = malloc(sizeof *fresh);
  char err[1024], q[1100];
  if (!fresh) {
    cl_log(CL_LOG_ERROR, "SIGHUP: configuration not reloaded", "err=out_of_memory");
    return;
  }
  if (cl_landmark_config_load(a->config_path, fresh, err, sizeof err) != CL_OK) {
    cl_log(CL_LOG_ERROR, "SIGHUP: configuration not reloaded; the running one stays",
           "err=%s", cl_log_quote(q, sizeof q, err, strlen(err)));
    free(fresh);
    return;
  }
  char keys[1024];
  size_t changed = cl_landmark_config_diff(&a->cfg, fresh, keys, sizeof keys);
  if (changed == 0 && strcmp(fresh->key_path, a->cfg.key_path) == 0) {
    /* Same path: the file itself may hold another key now. */
    cl_key *k = NULL;
    if (cl_key_load(&k, fresh->key_path, err, sizeof err) == CL_OK &&
        memcmp(cl_key_public(k), cl_key_public(a->key), CL_PK_LEN) != 0) {
      snprintf(keys, sizeof keys, "[landmark] key (the file holds another key)");
      changed = 1;
    }
    cl_key_destroy(&k);
  }
  free(fresh);
  if (changed)
    cl_log(CL_LOG_WARN, "SIGHUP: changed settings need a restart", "changed=%s",
           cl_log_quote(q, sizeof q, keys, strlen(keys)));
  else
    cl_log(CL_LOG_INFO, "SIGHUP: configuration unchanged", NULL);
}

static void on_chips(void *arg, cl_store_chip *chips, size_t n) {
  app *a = arg;
  if (a->stopping) {
    free(chips);
    return;
  }
  if (a->hup_pending) {
    a->hup_pending = 0;
    cl_log(CL_LOG_INFO, "SIGHUP: enrolled set re-read", "targets=%zu", n);
  }
  lm_server_set_enrolled(a->server, chips, n);
  if (!lm_server_is_listening(a->server)) {
    char err[256];
    if (lm_server_listen(a->server, err, sizeof err) != CL_OK) {
      cl_log(CL_LOG_ERROR, "cannot listen", "err=\"%s\"", err);
      shutdown_app(a, 1);
      return;
    }
    char pk[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(cl_key_public(a->key), pk);
    cl_log(CL_LOG_INFO, "listening", "addr=%s:%d landmark=%s pubkey=%s enrolled_chips=%zu",
           a->cfg.listen_host, a->cfg.listen_port, a->cfg.name, pk, n);
  }
}

/* What the operator must fix (the login, the registration, the binding)
 * is a configuration error: exit status 2, which systemd does not restart
 * (RestartPreventExitStatus=2). */
static void on_fatal(void *arg, const char *why) {
  app *a = arg;
  char q[900];
  int code = lm_writer_fatal_code(a->writer);
  cl_log(CL_LOG_ERROR, "database writer stopped", "config=%s err=%s", a->config_path,
         cl_log_quote(q, sizeof q, why, strlen(why)));
  shutdown_app(a, code == CL_EPERM || code == CL_ENOTFOUND || code == CL_EINVAL ? 2 : 1);
}

/* Every connection is a descriptor: the soft limit (often 1024) goes up to
 * the hard limit, with a warning when even that cannot hold max_connections
 * and the descriptors landmarkd needs besides (NOFILE_RESERVED, plus
 * NOFILE_METRICS with a metrics endpoint). */
static void raise_nofile(const cl_landmark_config *cfg) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  unsigned reserved = NOFILE_RESERVED + (cfg->metrics_host[0] ? NOFILE_METRICS : 0u);
  unsigned long long need = (unsigned long long)cfg->max_connections + reserved;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return;
  unsigned long long have = (unsigned long long)rl.rlim_cur;
  char lower[96] = "";
  if (have > reserved)
    snprintf(lower, sizeof lower, ", or lower [limits] max_connections to %llu", have - reserved);
  cl_log(CL_LOG_WARN, "open-file limit too low for max_connections",
         "nofile=%llu needed=%llu max_connections=%u reserved=%u hint=\"set LimitNOFILE=%llu or "
         "more (systemctl edit chiploc-landmarkd), or ulimit -n %llu%s\"",
         have, need, cfg->max_connections, reserved, need, need, lower);
}

/* One line of --check-config on standard output; counts the failures. */
static void check_line(void *arg, int ok, const char *what, const char *detail) {
  int *failed = arg;
  if (!ok) (*failed)++;
  printf("%-4s %s: %s\n", ok ? "ok" : "FAIL", what, detail);
}

/*
 * --check-config once the file and the key have loaded: what a start
 * needs, each check one `ok` or `FAIL` line. The spool (its directory
 * writable, the file this user's), the metrics address (bound and released
 * at once), then the database as the writer sees it when it connects.
 * Nothing is started or changed. A landmarkd already running on this
 * configuration holds the spool's lock and the metrics address: both are
 * then reported as in use by it, not as failures, so that a changed file
 * can be checked before a restart. Returns the exit status: 0, or 2 when a
 * check failed.
 */
static int check_config(const char *config, const cl_landmark_config *cfg, const cl_key *key) {
  int failed = 0;
  char what[PATH_MAX + 64], detail[1024], pk[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(key), pk);
  snprintf(what, sizeof what, "config %s", config);
  check_line(&failed, 1, what, "valid");
  snprintf(what, sizeof what, "key %s", cfg->key_path);
  snprintf(detail, sizeof detail, "public key %s", pk);
  check_line(&failed, 1, what, detail);
  snprintf(what, sizeof what, "spool %s", cfg->spool_path);
  int spool = lm_spool_check(cfg->spool_path, cl_key_public(key), detail, sizeof detail);
  check_line(&failed, spool == CL_OK || spool == CL_EAGAIN, what, detail);
  if (cfg->metrics_host[0]) {
    cl_metrics_server *m = NULL;
    char err[512];
    snprintf(what, sizeof what, "metrics %s:%d", cfg->metrics_host, cfg->metrics_port);
    int rc = cl_metrics_server_start(&m, cfg->metrics_host, cfg->metrics_port, err, sizeof err);
    cl_metrics_server_stop(&m);
    if (rc == CL_OK)
      check_line(&failed, 1, what, "can be bound");
    else if (spool == CL_EAGAIN && strstr(err, strerror(EADDRINUSE)))
      check_line(&failed, 1, what, "in use, by the landmarkd running on this spool");
    else
      check_line(&failed, 0, what, err);
  }
  (void)lm_writer_check(cfg, cl_key_public(key), check_line, &failed);
  if (failed)
    printf("%s: %d check%s failed\n", config, failed, failed == 1 ? "" : "s");
  else
    printf("%s: ok\n", config);
  return failed ? 2 : 0;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                       {"log-level", required_argument, NULL, 'l'},
                                       {"check-config", no_argument, NULL, 'k'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
  const char *config = NULL;
  int check_only = 0;
  int o;
  cl_log_set_prog("landmarkd");
  while ((o = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
    switch (o) {
    case 'c': config = optarg; break;
    case 'l': {
      cl_log_level lvl;
      if (cl_log_parse_level(optarg, &lvl) != CL_OK) {
        fprintf(stderr, "landmarkd: --log-level %s: want debug, info, warn or error\n", optarg);
        return 2;
      }
      cl_log_set_level(lvl);
      break;
    }
    case 'k': check_only = 1; break;
    case 'h': usage(stdout); return 0;
    case 'V': printf("landmarkd %s\n", CHIPLOC_VERSION); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!config || optind != argc) {
    usage(stderr);
    return 2;
  }
  if (sodium_init() < 0) {
    fprintf(stderr, "landmarkd: libsodium failed to initialise\n");
    return 1;
  }
  app a;
  memset(&a, 0, sizeof a);
  char err[1024];
  if (cl_landmark_config_load(config, &a.cfg, err, sizeof err) != CL_OK) {
    fprintf(stderr, "landmarkd: %s\n", err);
    return 2;
  }
  /* The loader has also checked the settings against one another (the idle
   * timeout against one probe cycle), so the config fuzzer covers that too. */
  int rc = cl_key_load(&a.key, a.cfg.key_path, err, sizeof err);
  if (rc != CL_OK) {
    fprintf(stderr, "landmarkd: key %s: %s\n", a.cfg.key_path, err);
    return 2;
  }
  if (check_only) {
    rc = check_config(config, &a.cfg, a.key);
    cl_key_destroy(&a.key);
    return rc;
  }
  a.config_path = config;
  signal(SIGPIPE, SIG_IGN);
  raise_nofile(&a.cfg);
  /* Bound before the writer starts, so that a taken port fails cleanly. */
  if (a.cfg.metrics_host[0]) {
    rc = cl_metrics_server_start(&a.metrics, a.cfg.metrics_host, a.cfg.metrics_port, err,
                                 sizeof err);
    if (rc != CL_OK) {
      fprintf(stderr, "landmarkd: %s: [metrics] listen: %s\n", config, err);
      cl_key_destroy(&a.key);
      return rc == CL_EINVAL ? 2 : 1;
    }
    cl_mtext_init(&a.mtext);
  }
  if (a.cfg.verify_threads > 0) {
    /* Session handshakes, Confirm and transcript checks and record
     * signatures run on libuv's thread pool, sized once at its first use:
     * landmarkd does no other work there. */
    char n[16];
    snprintf(n, sizeof n, "%u", a.cfg.verify_threads);
    setenv("UV_THREADPOOL_SIZE", n, 1);
  }
  a.loop = uv_default_loop();
  lm_writer_callbacks cb = {.on_chips = on_chips, .on_fatal = on_fatal, .arg = &a};
  rc = lm_writer_create(&a.writer, a.loop, &a.cfg, cl_key_public(a.key), cb, err, sizeof err);
  if (rc != CL_OK) {
    /* Anything but a lack of memory or threads is a spool file the operator
     * must look at (unwritable, damaged, another landmark's, in use). */
    fprintf(stderr, "landmarkd: %s\n",
            rc == CL_ENOMEM ? "cannot start (out of memory or threads)" : err);
    return rc == CL_ENOMEM ? 1 : 2;
  }
  if (lm_server_create(&a.server, a.loop, &a.cfg, a.key, a.writer) != CL_OK) {
    fprintf(stderr, "landmarkd: cannot start (out of memory or threads)\n");
    return 1;
  }
  uint64_t every = (uint64_t)a.cfg.stats_interval_s * 1000ull;
  uv_timer_init(a.loop, &a.stats_timer);
  a.stats_timer.data = &a;
  uv_timer_start(&a.stats_timer, on_stats_timer, every, every);
  if (a.metrics) {
    uv_timer_init(a.loop, &a.metrics_timer);
    a.metrics_timer.data = &a;
    publish_metrics(&a);
    uv_timer_start(&a.metrics_timer, on_metrics_timer, METRICS_PERIOD_MS, METRICS_PERIOD_MS);
    cl_log(CL_LOG_INFO, "serving metrics", "addr=%s:%d paths=/metrics,/healthz,/readyz",
           a.cfg.metrics_host, cl_metrics_server_port(a.metrics));
  }
  uv_signal_init(a.loop, &a.sigterm);
  uv_signal_init(a.loop, &a.sigint);
  uv_signal_init(a.loop, &a.sighup);
  a.sigterm.data = a.sigint.data = a.sighup.data = &a;
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_signal_start(&a.sigint, on_signal, SIGINT);
  uv_signal_start(&a.sighup, on_sighup, SIGHUP);
  cl_log(CL_LOG_INFO, "starting", "version=%s landmark=%s lat=%.6f lon=%.6f speed=%s", CHIPLOC_VERSION,
         a.cfg.name, a.cfg.lat, a.cfg.lon, a.cfg.speed_text);
  uv_run(a.loop, UV_RUN_DEFAULT);

  lm_writer_stats ws;
  lm_writer_get_stats(a.writer, &ws);
  /* Spooled rows are safe (the next run replays them); only rows neither
   * written nor spooled make the exit status 1. */
  cl_log(CL_LOG_INFO, "stopped",
         "exit=%d rows_written=%llu rows_spooled=%llu spool_rows=%llu rows_unwritten=%llu",
         a.exit_code, (unsigned long long)ws.rows_written, (unsigned long long)ws.rows_spooled,
         (unsigned long long)ws.spool_rows, (unsigned long long)ws.queue_depth);
  if (ws.queue_depth > 0 && a.exit_code == 0) a.exit_code = 1;
  cl_metrics_server_stop(&a.metrics);
  cl_mtext_fini(&a.mtext);
  lm_server_destroy(&a.server);
  lm_writer_destroy(&a.writer);
  cl_key_destroy(&a.key);
  uv_loop_close(a.loop);
  return a.exit_code;
}
