/*
 * Helpers shared by the tests: the throwaway PostgreSQL of the run, temporary
 * files, and the real binaries run as child processes.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include "cl_frame.h"
#include "cl_msg.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Conninfo of the test server's maintenance database (from
 * $CHIPLOC_TEST_PG_DIR/conninfo). Aborts the test when it is missing. */
const char *tu_pg_conninfo(void);
/* Drops and creates database `name`; returns a malloc'd conninfo for it. */
char *tu_db_create(const char *name);
/* Same conninfo as another role: malloc'd. */
char *tu_conninfo_as(const char *conninfo, const char *user);
/* Runs SQL (several statements allowed). 0 on success; on failure -1 and the
 * server's message in err. */
int tu_sql(const char *conninfo, const char *sql, char *err, size_t errlen);
/* First column of the first row, malloc'd, or NULL on error / no row. */
char *tu_sql_value(const char *conninfo, const char *sql);
/* Integer form of tu_sql_value; -1 on error. */
long long tu_sql_int(const char *conninfo, const char *sql);

/* mkdtemp under /tmp; malloc'd path. */
char *tu_tmpdir(const char *prefix);
/* Writes content to dir/name; returns malloc'd path. */
char *tu_write_file(const char *dir, const char *name, const char *content);
/* Whole file, malloc'd and NUL-terminated, or NULL. */
char *tu_read_file(const char *path);
/* Path of a built binary: $CHIPLOC_BIN_DIR/rel (e.g. "server/landmarkd"). */
char *tu_bin(const char *rel);
/* Path of a source file: $CHIPLOC_SOURCE_DIR/rel. */
char *tu_src(const char *rel);

/* Starts argv[0] with stdout and stderr appended to logfile. Returns pid. */
pid_t tu_spawn(char *const argv[], const char *logfile);
/* Runs argv to completion with output appended to logfile; returns the exit
 * status (0..255) or -1 if it was killed or could not run. */
int tu_run(char *const argv[], const char *logfile);
/* Sends sig and waits up to timeout_ms; returns the exit status (0..255),
 * 128+signal if killed by a signal, or -1 after SIGKILL on timeout. */
int tu_stop(pid_t pid, int sig, int timeout_ms);
/* Waits until logfile contains needle at least `count` times. 0 or -1. */
int tu_wait_log(const char *logfile, const char *needle, int count, int timeout_ms);
/* Occurrences of needle in the file. */
int tu_count_in_file(const char *path, const char *needle);
/* Sleep for ms milliseconds. */
void tu_sleep_ms(int ms);

/* A TCP port on 127.0.0.1 that was free a moment ago, never the same one
 * twice in one test process. */
int tu_free_port(void);
/* HTTP/1.0 GET of http://127.0.0.1:port/path. Returns the malloc'd body of
 * the answer, or NULL when there is none within timeout_ms. *status (may be
 * NULL) receives the status code (0 without an answer). */
char *tu_http_get(int port, const char *path, int timeout_ms, int *status);
/* Value of one sample in Prometheus text: series is the name with its
 * labels exactly as exposed (`x_total{reason="late"}`) or a bare name.
 * Returns -1 when the series is absent. */
double tu_metric(const char *text, const char *series);

/* Runs the built chiploc CLI with the NULL-terminated arguments, output
 * appended to log; returns its exit status (as tu_run). */
int tu_cli(const char *log, ...);

/* Rebuilds every row of `measurements` from its columns and checks its three
 * signatures (cl_measurement_verify), that bound_m is the bound at c of
 * rtt_ns, and that rtt_ns is positive and, when max_rtt_ns is not 0, below
 * it. Returns the row count; *bad receives how many failed verification. */
long long tu_verify_measurements(const char *conninfo, uint64_t max_rtt_ns, long long *bad);

/*
 * Allocations a test keeps until its end: tu_own records p (asserted
 * non-NULL) and returns it, tu_fmt is an owned vasprintf, tu_release frees
 * them all. Keeps the sanitizer build's leak check meaningful without a
 * free() after every use.
 */
char *tu_own(char *p);
char *tu_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
void tu_release(void);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t tu_mono_ns(void);

/*
 * The wire protocol from one end of a TCP connection, for tests that play a
 * landmark themselves: messages are encoded and decoded with cl_msg and
 * framed with cl_frame. Set fd and cl_frame_asm_init(&w.fa, ...) first.
 */
typedef struct {
  int fd;
  cl_frame_asm fa;
  uint8_t buf[8192];
  size_t have, off;
} tu_wire;
#define TU_WIRE_TIMEOUT -1
#define TU_WIRE_EOF -2
/* Encodes the n messages back to back and sends them with one write. */
void tu_wire_send_all(tu_wire *w, const cl_msg *m, size_t n);
void tu_wire_send(tu_wire *w, const cl_msg *m);
/* Next message within timeout_ms: 0, TU_WIRE_TIMEOUT, or TU_WIRE_EOF when
 * the peer closed the connection. A frame that does not decode fails the
 * test. */
int tu_wire_recv(tu_wire *w, cl_msg *m, int timeout_ms);
void tu_wire_close(tu_wire *w);

#endif
