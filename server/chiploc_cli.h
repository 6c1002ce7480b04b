/*
 * Small helpers shared by the chiploc subcommands: one error style, the
 * --db / $CHIPLOC_DB rule, connecting with the error printed, durations.
 */
#ifndef CHIPLOC_CLI_H
#define CHIPLOC_CLI_H

#include "cl_store.h"

#include <stdint.h>

/* One line on stderr, prefixed "chiploc: ". */
void chiploc_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The --db value, or $CHIPLOC_DB; NULL after a message naming `cmd` when
 * neither is given (the caller then exits 2). */
const char *chiploc_conninfo(const char *opt, const char *cmd);
/* Connects; NULL after printing why when the database cannot be reached
 * (the caller then exits 1). A configuration error (cl_store_connect's
 * CL_EPERM: login refused, no such database, a conninfo that does not
 * parse) exits 2 right here after its message. */
cl_store *chiploc_connect(const char *conninfo);

/*
 * A duration: a whole number of seconds, or of the unit after it: s
 * (seconds), m (minutes), h (hours) or d (days of 86400 s): "90", "90s",
 * "5m", "2h", "7d". Nothing else (no sign, space, fraction or second unit).
 * 0 with *seconds set, or CL_EMALFORMED, or CL_ETOOBIG above INT64_MAX s.
 */
int chiploc_parse_duration(const char *text, int64_t *seconds);
/* The duration of option `flag` in [min_s, max_s]: 0, or 2 after a message
 * naming the flag, the value and the range. */
int chiploc_duration_arg(const char *flag, const char *text, int64_t min_s, int64_t max_s,
                         int64_t *seconds);

/* getopt keeps state between calls: each subcommand starts its parse
 * afresh with this (opterr off: chiploc_bad_option reports). */
void chiploc_getopt_reset(void);
/* Reports a getopt failure ('?' or ':') of command `cmd` and returns 2. */
int chiploc_bad_option(const char *cmd, int c, char **argv);

#endif
