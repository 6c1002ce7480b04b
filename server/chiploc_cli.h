/*
 * Small helpers shared by the chiploc subcommands: one error style, the
 * --db / $CHIPLOC_DB rule, and connecting with the error printed.
 */
#ifndef CHIPLOC_CLI_H
#define CHIPLOC_CLI_H

#include "cl_store.h"

/* One line on stderr, prefixed "chiploc: ". */
void chiploc_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The --db value, or $CHIPLOC_DB; NULL after a message naming `cmd` when
 * neither is given (the caller then exits 2). */
const char *chiploc_conninfo(const char *opt, const char *cmd);
/* Connects; NULL after printing libpq's reason (the caller then exits 1). */
cl_store *chiploc_connect(const char *conninfo);

#endif
