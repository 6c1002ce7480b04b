/*
 * landmarkd: the landmark node. Wiring only: parse arguments, load the
 * config and the identity key, start the database writer, start listening
 * once the enrolled chip set is known, serve Prometheus metrics if
 * configured ([metrics] listen), and shut down in reverse order on SIGTERM
 * or SIGINT (flushing every queued measurement first).
 *
 * Exit codes: 0 clean shutdown, 1 runtime failure, 2 usage or config error
 * (an unusable spool file included).
 */
#include "cl_config.h"
#include "cl_err.h"
#include "cl_key.h"
#include "cl_log.h"
#include "cl_metrics.h"
#include "landmark.h"
#include "landmark_metrics.h"
#include "writer.h"

#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_MS 10000u
#define METRICS_PERIOD_MS 1000u

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
  uv_signal_t sigterm, sigint;
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
          "See docs/CONFIG.md for the configuration file.\n");
}

static void on_signal_closed(uv_handle_t *h) { (void)h; }

static void on_writer_stopped(void *arg) {
  app *a = arg;
  if (a->metrics) uv_close((uv_handle_t *)&a->metrics_timer, on_signal_closed);
  uv_close((uv_handle_t *)&a->sigterm, on_signal_closed);
  uv_close((uv_handle_t *)&a->sigint, on_signal_closed);
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
  cl_mtext_reset(&a->mtext);
  if (lm_metrics_render(&v, &ws, a->cfg.name, &a->mtext) != CL_OK ||
      cl_metrics_server_publish(a->metrics, a->mtext.buf, a->mtext.len) != CL_OK)
    cl_log(CL_LOG_WARN, "cannot render metrics", "err=out_of_memory");
}

static void on_metrics_timer(uv_timer_t *t) { publish_metrics(t->data); }
static void on_stats_timer(uv_timer_t *t) { log_stats(t->data); }

static void on_signal(uv_signal_t *h, int signum) {
  app *a = h->data;
  cl_log(CL_LOG_INFO, "shutting down", "signal=%d", signum);
  shutdown_app(a, 0);
}

static void on_chips(void *arg, cl_store_chip *chips, size_t n) {
  app *a = arg;
  if (a->stopping) {
    free(chips);
    return;
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

static void on_fatal(void *arg, const char *why) {
  app *a = arg;
  char q[600];
  cl_log(CL_LOG_ERROR, "database writer stopped", "err=%s", cl_log_quote(q, sizeof q, why, strlen(why)));
  shutdown_app(a, 1);
}

/* Every connection is a descriptor: the soft limit (often 1024) goes up to
 * the hard limit, with a warning when even that is below max_connections. */
static void raise_nofile(uint32_t max_connections) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  rlim_t need = (rlim_t)max_connections + 64; /* listener, database, spool, metrics */
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
    cl_log(CL_LOG_WARN, "open-file limit below max_connections",
           "nofile=%llu max_connections=%u hint=\"raise LimitNOFILE or ulimit -n\"",
           (unsigned long long)rl.rlim_cur, max_connections);
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
    printf("%s: ok\n", config);
    cl_key_destroy(&a.key);
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_nofile(a.cfg.max_connections);
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
    cl_log(CL_LOG_INFO, "serving metrics", "addr=%s:%d path=/metrics", a.cfg.metrics_host,
           cl_metrics_server_port(a.metrics));
  }
  uv_signal_init(a.loop, &a.sigterm);
  uv_signal_init(a.loop, &a.sigint);
  a.sigterm.data = a.sigint.data = &a;
  uv_signal_start(&a.sigterm, on_signal, SIGTERM);
  uv_signal_start(&a.sigint, on_signal, SIGINT);
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
