/* Helpers shared by the chiploc subcommands (see chiploc_cli.h). */
#include "chiploc_cli.h"
#include "cl_err.h"

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
  if (cl_store_connect(&s, conninfo, err, sizeof err) != CL_OK) {
    chiploc_errorf("%s", err);
    return NULL;
  }
  return s;
}
