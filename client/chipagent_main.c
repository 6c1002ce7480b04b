/*
 * chipagent: the operator's agent. Wiring only: options, libsodium, the
 * config file, the event loop, signals, and the agent (client/agent.c).
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 on a runtime failure, 2 on a usage
 * or configuration error (bad option, bad config file, unreadable chip key,
 * bad CHIPLOC_TEST_SIGN_DELAY_MS).
 */
#include "agent.h"
#include "cl_config.h"
#include "cl_err.h"
#include "cl_log.h"

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

typedef struct {
  agent *ag;
  uv_signal_t sigterm;
  uv_signal_t sigint;
} app;

static void usage(FILE *f) {
  fprintf(f,
          "usage: chipagent --config FILE [--log-level debug|info|warn|error]\n"
          "       chipagent --help | --version\n"
          "\n"
          "Connects to every landmark of FILE, opens a session for each chip of\n"
          "FILE, answers the challenges and signs the transcripts of the bursts.\n"
          "Stops cleanly on SIGTERM or SIGINT.\n"
          "See docs/CONFIG.md for the config file.\n");
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

static void on_signal(uv_signal_t *s, int signum) {
  app *ap = s->data;
  cl_log(CL_LOG_INFO, "shutting down", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  agent_stop(ap->ag);
  uv_close((uv_handle_t *)&ap->sigterm, NULL);
  uv_close((uv_handle_t *)&ap->sigint, NULL);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"config", required_argument, NULL, 'c'},
      {"log-level", required_argument, NULL, 'l'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0},
  };
  const char *config = NULL;
  cl_log_level level = CL_LOG_INFO;
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
  err[0] = '\0';
  rc = agent_create(&ap.ag, &loop, cfg, err, sizeof err);
  free(cfg);
  if (rc != CL_OK) {
    fprintf(stderr, "chipagent: %s\n", err[0] ? err : cl_strerror(rc));
    uv_loop_close(&loop);
    return rc == CL_ENOMEM ? EXIT_RUNTIME : EXIT_USAGE;
  }
  agent_set_sign_delay(ap.ag, sign_delay_ms);
  char qconfig[PATH_MAX];
  cl_log_quote(qconfig, sizeof qconfig, config, strlen(config));
  cl_log(CL_LOG_INFO, "starting", "version=%s config=%s", CHIPLOC_VERSION, qconfig);

  int status = 0;
  ap.sigterm.data = &ap;
  ap.sigint.data = &ap;
  uv_signal_init(&loop, &ap.sigterm);
  uv_signal_init(&loop, &ap.sigint);
  if (uv_signal_start(&ap.sigterm, on_signal, SIGTERM) != 0 ||
      uv_signal_start(&ap.sigint, on_signal, SIGINT) != 0 || agent_start(ap.ag) != CL_OK) {
    cl_log(CL_LOG_ERROR, "cannot start", "exit=%d", EXIT_RUNTIME);
    status = EXIT_RUNTIME;
    agent_stop(ap.ag);
    uv_close((uv_handle_t *)&ap.sigterm, NULL);
    uv_close((uv_handle_t *)&ap.sigint, NULL);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  agent_destroy(&ap.ag);
  if (uv_loop_close(&loop) != 0) {
    cl_log(CL_LOG_ERROR, "event loop still busy at exit", "exit=%d", EXIT_RUNTIME);
    status = EXIT_RUNTIME;
  }
  if (status == 0) cl_log(CL_LOG_INFO, "stopped", "exit=%d", status);
  return status;
}
