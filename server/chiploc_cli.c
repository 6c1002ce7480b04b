/* Helpers shared by the chiploc subcommands (see chiploc_cli.h). */
#include "chiploc_cli.h"
#include "cl_err.h"

#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void chiploc_errorf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("chiploc: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

const char *chiploc_conninfo(const char *opt, const char *cmd) {
  if (opt) return opt;
  const char *env = getenv("CHIPLOC_DB");
  if (env && env[0]) return env;
  chiploc_errorf("%s: no database: give --db CONNINFO or set CHIPLOC_DB", cmd);
  return NULL;
}

cl_store *chiploc_connect(const char *conninfo) {
  cl_store *s = NULL;
  char err[512] = "";
  int rc = cl_store_connect(&s, conninfo, err, sizeof err);
  if (rc != CL_OK) {
    chiploc_errorf("%s", err);
    /* Every command connects before it changes anything, so a login the
     * database refuses can end the command here, as a configuration
     * error. */
    if (rc == CL_EPERM) exit(2);
    return NULL;
  }
  return s;
}

int chiploc_parse_duration(const char *text, int64_t *seconds) {
  const char *p = text;
  int64_t n = 0;
  if (!isdigit((unsigned char)*p)) return CL_EMALFORMED;
  for (; isdigit((unsigned char)*p); p++) {
    if (n > (INT64_MAX - (*p - '0')) / 10) return CL_ETOOBIG;
    n = n * 10 + (*p - '0');
  }
  int64_t unit = 1;
  switch (*p) {
  case '\0': break;
  case 's': unit = 1; break;
  case 'm': unit = 60; break;
  case 'h': unit = 3600; break;
  case 'd': unit = 86400; break;
  default: return CL_EMALFORMED;
  }
  if (*p && p[1] != '\0') return CL_EMALFORMED;
  if (n > INT64_MAX / unit) return CL_ETOOBIG;
  *seconds = n * unit;
  return CL_OK;
}

int chiploc_duration_arg(const char *flag, const char *text, int64_t min_s, int64_t max_s,
                         int64_t *seconds) {
  int64_t v = 0;
  int rc = chiploc_parse_duration(text, &v);
  if (rc == CL_EMALFORMED) {
    chiploc_errorf("%s %s: expected a duration such as 90, 90s, 5m, 2h or 7d", flag, text);
    return 2;
  }
  if (rc != CL_OK || v < min_s || v > max_s) {
    chiploc_errorf("%s %s: must be between %" PRId64 " and %" PRId64 " seconds", flag, text,
                   min_s, max_s);
    return 2;
  }
  *seconds = v;
  return 0;
}

void chiploc_getopt_reset(void) {
#ifdef __GLIBC__
  optind = 0;
#else
  optind = 1;
#endif
  opterr = 0;
}

int chiploc_bad_option(const char *cmd, int c, char **argv) {
  const char *arg = optind > 0 ? argv[optind - 1] : "?";
  if (c == ':')
    chiploc_errorf("%s: %s needs a value", cmd, arg);
  else
    chiploc_errorf("%s: unknown option %s (see chiploc %s --help)", cmd, arg, cmd);
  return 2;
}
