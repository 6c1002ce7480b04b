/*
 * chipagent: the operator's agent. Wiring only: options, libsodium, the
 * config file, the event loop, signals, the metrics endpoint, and the agent
 * (client/agent.c).
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 on a runtime failure (the metrics
 * address cannot be bound), 2 on a usage or configuration error (bad
 * option, bad config file, unreadable chip key, a metrics address that is
 * not a numeric IP, bad CHIPLOC_TEST_SIGN_DELAY_MS). --check-config: see
 * agent_check.h.
 */
#include "agent.h"
#include "agent_check.h"
#include "agent_metrics.h"
#include "cl_config.h"
#include "cl_err.h"
#include "cl_log.h"
#include "cl_metrics.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
/* Test hook: milliseconds added to every identity-key signature, as on a
 * slow hardware signer (agent_set_sign_delay). */
#define SIGN_DELAY_ENV "CHIPLOC_TEST_SIGN_DELAY_MS"
#define SIGN_DELAY_MAX_MS 60000u
#define METRICS_PERIOD_MS 1000u
/* /healthz fails when the loop has not published for this long: ten
 * periods, so that only a loop that is stuck fails it. */
#define METRICS_STALE_MS 10000u
#define CHECK_TIMEOUT_MS 5000u /* --check-config: connect + Hello, per landmark */

typedef struct {
  agent *ag;
  const char *config_path;
  cl_agent_config *cfg; /* as running: SIGHUP compares the file with it */
  uv_signal_t sigterm;
  uv_signal_t sigint;
  uv_signal_t sighup;
  cl_metrics_server *metrics; /* NULL: no [metrics] listen */
  uv_timer_t metrics_timer;   /* re-renders the snapshot the HTTP thread serves */
  cl_mtext mtext;
  int stopping;
} app;

static void usage(FILE *f) {
  fprintf(f,
          "usage: chipagent --config FILE [--log-level debug|info|warn|error]\n"
          "       chipagent --check-config --config FILE\n"
          "       chipagent --help | --version\n"
          "\n"
          "Connects to every landmark of FILE, opens a session for each chip of\n"
          "FILE, answers the challenges and signs the transcripts of the bursts.\n"
          "Stops cleanly on SIGTERM or SIGINT; SIGHUP reloads nothing and logs\n"
          "which settings of FILE changed (they need a restart).\n"
          "--check-config checks FILE, the chip keys, the metrics address and\n"
          "that every landmark answers with the pinned key; exit 0 all ok, 1 a\n"
          "landmark failed, 2 chipagent would not start.\n"
          "See chipagent(8) and chiploc.conf(5).\n");
}

/* CHIPLOC_TEST_SIGN_DELAY_MS: unset or empty is 0. 0, or -1 after printing
 * why the value is refused. */
static int sign_delay_from_env(unsigned *ms) {
  const char *v = getenv(SIGN_DELAY_ENV);
  *ms = 0;
  if (!v || !*v) return 0;
  char *end = NULL;
  unsigned long n = strtoul(v, &end, 10);
  if (*end != '\0' || v[0] == '-' || n > SIGN_DELAY_MAX_MS) {
    fprintf(stderr, "chipagent: %s='%s': want 0..%u milliseconds\n", SIGN_DELAY_ENV, v,
            SIGN_DELAY_MAX_MS);
    return -1;
  }
  *ms = (unsigned)n;
  return 0;
}

/* Renders the agent's counters on the loop thread and hands the text and
 * the health to the HTTP thread, which never reads the counters. */
static void publish_metrics(app *ap) {
  char why[128] = "shutting down";
  cl_metrics_health h = {.stale_after_ms = METRICS_STALE_MS, .why = why};
  h.ready = !ap->stopping && agent_ready(ap->ag, why, sizeof why);
  cl_mtext_reset(&ap->mtext);
  if (agent_metrics_render(ap->ag, ap->cfg->name, &ap->mtext) != CL_OK ||
      cl_metrics_server_publish(ap->metrics, ap->mtext.buf, ap->mtext.len, &h) != CL_OK)
    cl_log(CL_LOG_WARN, "cannot render metrics", "err=out_of_memory");
}

static void on_metrics_timer(uv_timer_t *t) { publish_metrics(t->data); }

static void close_handles(app *ap) {
  uv_close((uv_handle_t *)&ap->sigterm, NULL);
  uv_close((uv_handle_t *)&ap->sigint, NULL);
  uv_close((uv_handle_t *)&ap->sighup, NULL);
  if (ap->metrics) uv_close((uv_handle_t *)&ap->metrics_timer, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
  app *ap = s->data;
  cl_log(CL_LOG_INFO, "shutting down", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  ap->stopping = 1;
  if (ap->metrics) publish_metrics(ap); /* /readyz: not ready, shutting down */
  agent_stop(ap->ag);
  close_handles(ap);
}

/* Appends " KEY" to out (at most len bytes, always terminated). */
static void add_key(char *out, size_t len, const char *fmt, const char *name) {
  size_t used = strlen(out);
  if (used + 1 >= len) return;
  if (used) out[used++] = ' ';
  snprintf(out + used, len - used, fmt, name);
}

static const cl_agent_landmark *find_landmark(const cl_agent_config *c, const char *name) {
  for (size_t i = 0; i < c->n_landmarks; i++)
    if (strcmp(c->landmarks[i].name, name) == 0) return &c->landmarks[i];
  return NULL;
}

static const cl_agent_chip *find_chip(const cl_agent_config *c, const char *name) {
  for (size_t i = 0; i < c->n_chips; i++)
    if (strcmp(c->chips[i].name, name) == 0) return &c->chips[i];
  return NULL;
}

/* The settings that differ between the running config and the file's, as
 * space-separated keys (section.key, or the section when it was added or
 * removed) in out; empty when none. */
static void config_changes(const cl_agent_config *run, const cl_agent_config *file, char *out,
                           size_t len) {
  out[0] = '\0';
  if (strcmp(run->name, file->name) != 0) add_key(out, len, "%s", "agent.name");
  if (run->backoff_min_ms != file->backoff_min_ms) add_key(out, len, "%s", "agent.backoff_min_ms");
  if (run->backoff_max_ms != file->backoff_max_ms) add_key(out, len, "%s", "agent.backoff_max_ms");
  if (run->idle_timeout_s != file->idle_timeout_s) add_key(out, len, "%s", "agent.idle_timeout_s");
  if (strcmp(run->metrics_host, file->metrics_host) != 0 ||
      run->metrics_port != file->metrics_port)
    add_key(out, len, "%s", "metrics.listen");
  for (size_t i = 0; i < run->n_landmarks; i++) {
    const cl_agent_landmark *r = &run->landmarks[i], *f = find_landmark(file, r->name);
    if (!f) {
      add_key(out, len, "landmark.%s", r->name);
      continue;
    }
    if (strcmp(r->host, f->host) != 0 || r->port != f->port)
      add_key(out, len, "landmark.%s.address", r->name);
    if (memcmp(r->pk, f->pk, CL_PK_LEN) != 0) add_key(out, len, "landmark.%s.public_key", r->name);
  }
  for (size_t i = 0; i < file->n_landmarks; i++)
    if (!find_landmark(run, file->landmarks[i].name))
      add_key(out, len, "landmark.%s", file->landmarks[i].name);
  for (size_t i = 0; i < run->n_chips; i++) {
    const cl_agent_chip *r = &run->chips[i], *f = find_chip(file, r->name);
    if (!f)
      add_key(out, len, "chip.%s", r->name);
    else if (strcmp(r->key_path, f->key_path) != 0)
      add_key(out, len, "chip.%s.key", r->name);
  }
  for (size_t i = 0; i < file->n_chips; i++)
    if (!find_chip(run, file->chips[i].name)) add_key(out, len, "chip.%s", file->chips[i].name);
}

/*
 * SIGHUP: the agent has nothing it can reload without dropping its
 * sessions (keys, landmarks and chips are bound to them; it writes no log
 * file of its own to reopen). It says so, and names the settings of the
 * file that differ from the running ones, which take effect at the next
 * restart.
 */
static void on_sighup(uv_signal_t *s, int signum) {
  app *ap = s->data;
  (void)signum;
  char qpath[PATH_MAX];
  cl_log_quote(qpath, sizeof qpath, ap->config_path, strlen(ap->config_path));
  cl_agent_config *file = malloc(sizeof *file);
  char err[600] = "";
  int rc = file ? cl_agent_config_load(ap->config_path, file, err, sizeof err) : CL_ENOMEM;
  if (rc != CL_OK) {
    char q[sizeof err * 4 + 3];
    const char *e = err[0] ? err : cl_strerror(rc);
    cl_log(CL_LOG_WARN, "SIGHUP: config file not valid; nothing reloaded, the running config stays",
           "config=%s err=%s", qpath, cl_log_quote(q, sizeof q, e, strlen(e)));
    free(file);
    return;
  }
  char changed[1024];
  config_changes(ap->cfg, file, changed, sizeof changed);
  free(file);
  if (changed[0])
    cl_log(CL_LOG_WARN, "SIGHUP: nothing reloaded; changed settings need a restart",
           "config=%s changed=\"%s\"", qpath, changed);
  else
    cl_log(CL_LOG_INFO, "SIGHUP: nothing to reload; the config file is unchanged", "config=%s",
           qpath);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"log-level", required_argument, NULL, 'l'},
      {"check-config", no_argument, NULL, 'k'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0},
  };
  const char *config = NULL;
  cl_log_level level = CL_LOG_INFO;
  int check_only = 0;
  int ch;
  while ((ch = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
    switch (ch) {
    case 'c':
      config = optarg;
      break;
    case 'l':
      if (cl_log_parse_level(optarg, &level) != CL_OK) {
        fprintf(stderr, "chipagent: unknown log level '%s' (debug, info, warn, error)\n", optarg);
        return EXIT_USAGE;
      }
      break;
    case 'k':
      check_only = 1;
      break;
    case 'h':
      usage(stdout);
      return 0;
    case 'V':
      printf("chipagent %s\n", CHIPLOC_VERSION);
      return 0;
    default:
      usage(stderr);
      return EXIT_USAGE;
    }
  }
  if (optind != argc || !config) {
    if (optind != argc)
      fprintf(stderr, "chipagent: unexpected argument '%s'\n", argv[optind]);
    else
      fprintf(stderr, "chipagent: --config FILE is required\n");
    usage(stderr);
    return EXIT_USAGE;
  }
  unsigned sign_delay_ms = 0;
  if (sign_delay_from_env(&sign_delay_ms) != 0) return EXIT_USAGE;
  if (sodium_init() < 0) {
    fprintf(stderr, "chipagent: libsodium failed to initialise\n");
    return EXIT_RUNTIME;
  }
  cl_log_set_prog("chipagent");
  cl_log_set_level(level);
  /* A landmark that hangs up mid-write must not kill us. */
  signal(SIGPIPE, SIG_IGN);
  if (check_only) return agent_check_config(config, CHECK_TIMEOUT_MS);

  cl_agent_config *cfg = malloc(sizeof *cfg);
  if (!cfg) {
    fprintf(stderr, "chipagent: out of memory\n");
    return EXIT_RUNTIME;
  }
  char err[600];
  int rc = cl_agent_config_load(config, cfg, err, sizeof err);
  if (rc != CL_OK) {
    fprintf(stderr, "chipagent: %s\n", err[0] ? err : cl_strerror(rc));
    free(cfg);
    return EXIT_USAGE;
  }

  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) {
    fprintf(stderr, "chipagent: cannot create the event loop\n");
    free(cfg);
    return EXIT_RUNTIME;
  }
  app ap;
  memset(&ap, 0, sizeof ap);
  ap.config_path = config;
  ap.cfg = cfg;
  err[0] = '\0';
  rc = agent_create(&ap.ag, &loop, cfg, err, sizeof err);
  if (rc != CL_OK) {
    fprintf(stderr, "chipagent: %s\n", err[0] ? err : cl_strerror(rc));
    free(cfg);
    uv_loop_close(&loop);
    return rc == CL_ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
  }
  /* Bound before any connection, so that a taken port fails cleanly. */
  if (cfg->metrics_host[0]) {
    rc = cl_metrics_server_start(&ap.metrics, cfg->metrics_host, cfg->metrics_port, err,
                                 sizeof err);
    if (rc != CL_OK) {
      fprintf(stderr, "chipagent: %s: [metrics] listen: %s\n", config, err);
      agent_destroy(&ap.ag);
      free(cfg);
      uv_loop_close(&loop);
      return rc == CL_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
    }
    cl_mtext_init(&ap.mtext);
  }
  agent_set_sign_delay(ap.ag, sign_delay_ms);
  char qconfig[PATH_MAX];
  cl_log_quote(qconfig, sizeof qconfig, config, strlen(config));
  cl_log(CL_LOG_INFO, "starting", "version=%s config=%s", CHIPLOC_VERSION, qconfig);

  int status = 0;
  ap.sigterm.data = &ap;
  ap.sigint.data = &ap;
  ap.sighup.data = &ap;
  uv_signal_init(&loop, &ap.sigterm);
  uv_signal_init(&loop, &ap.sigint);
  uv_signal_init(&loop, &ap.sighup);
  if (ap.metrics) {
    uv_timer_init(&loop, &ap.metrics_timer);
    ap.metrics_timer.data = &ap;
  }
  if (uv_signal_start(&ap.sigterm, on_signal, SIGTERM) != 0 ||
      uv_signal_start(&ap.sigint, on_signal, SIGINT) != 0 ||
      uv_signal_start(&ap.sighup, on_sighup, SIGHUP) != 0 || agent_start(ap.ag) != CL_OK ||
      (ap.metrics && uv_timer_start(&ap.metrics_timer, on_metrics_timer, METRICS_PERIOD_MS,
                                    METRICS_PERIOD_MS) != 0)) {
    cl_log(CL_LOG_ERROR, "cannot start", "exit=%d", EXIT_RUNTIME);
    status = EXIT_RUNTIME;
    agent_stop(ap.ag);
    close_handles(&ap);
  } else if (ap.metrics) {
    publish_metrics(&ap);
    cl_log(CL_LOG_INFO, "serving metrics", "addr=%s:%d paths=/metrics,/healthz,/readyz",
           cfg->metrics_host, cl_metrics_server_port(ap.metrics));
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  cl_metrics_server_stop(&ap.metrics);
  cl_mtext_fini(&ap.mtext);
  agent_destroy(&ap.ag);
  free(cfg);
  if (uv_loop_close(&loop) != 0) {
    cl_log(CL_LOG_ERROR, "event loop still busy at exit", "exit=%d", EXIT_RUNTIME);
    status = EXIT_RUNTIME;
  }
  if (status == 0) cl_log(CL_LOG_INFO, "stopped", "exit=%d", status);
  return status;
}
