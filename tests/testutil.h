/*
 * Helpers shared by the tests: the throwaway PostgreSQL of the run, temporary
 * files, configs for the real binaries and the binaries run as child
 * processes, their logs, and the wire protocol from one end of a socket.
 */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include "cl_chipsess.h"
#include "cl_frame.h"
#include "cl_key.h"
#include "cl_msg.h"
#include "tu_conf.h"

#include <check.h>
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

/*
 * Starts argv[0] with stdout and stderr appended to logfile. Returns pid.
 * Every process started so is remembered until tu_stop or tu_run reaps it:
 * should the test process end first (a failed assertion exits it), an
 * atexit handler kills what is left (SIGCONT, then SIGKILL, so a stopped one
 * too), and a test process that is killed takes them along
 * (PR_SET_PDEATHSIG). No test leaves a daemon behind.
 */
pid_t tu_spawn(char *const argv[], const char *logfile);
/* Runs argv to completion with output appended to logfile; returns the exit
 * status (0..255) or -1 if it was killed or could not run. */
int tu_run(char *const argv[], const char *logfile);
/* Runs argv to completion with stdout and stderr each captured into a file
 * of dir (out and err, replaced each run); *out and *err receive their
 * contents, malloc'd (free them). When logfile is not NULL the command line
 * and both outputs are appended to it. Returns the exit status (0..255), or
 * -1 when it did not exit. */
int tu_run_capture(char *const argv[], const char *dir, char **out, char **err,
                   const char *logfile);
/* Sends sig and waits up to timeout_ms; returns the exit status (0..255),
 * 128+signal if killed by a signal, or -1 after SIGKILL on timeout. */
int tu_stop(pid_t pid, int sig, int timeout_ms);
/* (sig 0 sends nothing: it only waits, for a process that exits by itself.) */
/* tu_stop(pid, SIGTERM, timeout_ms) for every process tu_spawn started that
 * is still running, newest first. Returns how many did not exit with status
 * 0 (each is named on stderr). */
int tu_stop_all(int timeout_ms);
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

/* ---- keys, configs and the real daemons ------------------------------------ */

/* `chiploc keygen --out dir/name.key` (must exit 0), output appended to log.
 * Returns the key file's path, owned (tu_own). */
char *tu_keygen(const char *dir, const char *name, const char *log);
/* The key in a key file (the test fails if it does not load); the caller
 * destroys it with cl_key_destroy. */
cl_key *tu_key_load(const char *path);
/* The public key of a key file as 64 hex digits, owned. */
char *tu_key_hex(const char *path);

/*
 * The landmarkd settings the process tests share: landmark lm-paris at
 * Paris (48.8566, 2.3522); rows written every 100 ms and enrolled chips
 * re-read every second; a burst of 3 probes 20 ms apart per chip every
 * second (jitter 0.1) with a 300 ms deadline; idle timeout 30 s; a stats
 * line every second. The test sets key, port and conninfo, and changes what
 * it needs (0 or NULL: not written, landmarkd's default; tu_conf.h).
 */
tu_landmark_opts tu_landmark_defaults(void);
/* Writes the config into dir (tu_conf.h); returns its path, owned. */
char *tu_landmark_conf(const char *dir, const tu_landmark_opts *o);
char *tu_agent_conf(const char *dir, const tu_agent_opts *o);
/* Starts the built landmarkd on conf, output appended to log, and waits up
 * to 30 s until log holds one more "msg=listening" line than before (the
 * test fails otherwise). Returns the pid. */
pid_t tu_landmarkd_start(const char *conf, const char *log);
/* The same for the built chipagent and its "agent started" line; log_level
 * (NULL: the default) is given as --log-level. */
pid_t tu_chipagent_start(const char *conf, const char *log, const char *log_level);

/* ---- logs ------------------------------------------------------------------- */

/* Value of ` key=N` in one log line; -1 when the line has no such key. */
long long tu_line_value(const char *line, const char *key);
/* Value of key in the last complete line of log holding "msg=stats"; -1
 * when there is no such line (or no log). The test fails when that line
 * lacks key. */
long long tu_last_stat(const char *log, const char *key);

/* Applies the embedded migrations whose names sort before `first_left_out`
 * (e.g. "0005_protocol_v2.sql") to an empty database, recording each in
 * chiploc_schema_migrations as `chiploc db migrate` does: a database as an
 * older release left it, for upgrade tests. */
void tu_migrate_before(const char *conninfo, const char *first_left_out);

/* Runs the suite (srunner, CK_NORMAL); returns EXIT_SUCCESS when every test
 * passed, else EXIT_FAILURE: main() returns it. */
int tu_run_suite(Suite *s);

/* Rebuilds every protocol-2 row of `measurements` from its columns
 * (cl_store_row_measurement) and checks everything it carries
 * (cl_measurement_verify: record, transcript and both handshake
 * signatures, and its consistency), that bound_m is the bound at c of
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
/* Resident set size of process pid in KiB (VmRSS of /proc/PID/status), or
 * -1 when the process or the line is gone. */
long tu_proc_rss_kb(pid_t pid);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t tu_mono_ns(void);
/* CLOCK_REALTIME in nanoseconds since the epoch (the clock of measured_at_ns
 * and of the ts= field of log lines). */
uint64_t tu_unix_ns(void);

/*
 * The wire protocol from one end of a TCP connection, for tests that play a
 * landmark or an agent themselves: messages are encoded and decoded with
 * cl_msg and framed with cl_frame. tu_wire_connect and tu_wire_accept set
 * one up; tu_wire_close ends it.
 */
typedef struct {
  int fd;
  cl_frame_asm fa;
  uint8_t buf[8192];
  size_t have, off;
} tu_wire;
#define TU_WIRE_TIMEOUT -1
#define TU_WIRE_EOF -2
/* A listening TCP socket on 127.0.0.1 at a port the kernel picks; returns
 * the fd and the port in *port. */
int tu_listen_local(int *port);
/* Connects to 127.0.0.1:port from the loopback address src (NULL: any),
 * TCP_NODELAY, frames up to CL_FRAME_MAX. 0, or -1 when connect fails (w is
 * set up either way: tu_wire_close it). */
int tu_wire_connect(tu_wire *w, const char *src, int port);
/* Accepts the next connection on the listening socket lfd within
 * timeout_ms and sets w up on it as tu_wire_connect does. 0, or -1 when
 * nobody connected in time. */
int tu_wire_accept(tu_wire *w, int lfd, int timeout_ms);
/* Sends len bytes as they are (MSG_NOSIGNAL); the test fails on a short
 * write. */
void tu_wire_send_raw(tu_wire *w, const void *data, size_t len);
/* Encodes the n messages back to back and sends them with one write. */
void tu_wire_send_all(tu_wire *w, const cl_msg *m, size_t n);
void tu_wire_send(tu_wire *w, const cl_msg *m);
/* Sends a Response: chip, seq and MAC as given (the MAC of a chip's session
 * comes from cl_chipsess_answer or cl_answer_mac). */
void tu_wire_respond(tu_wire *w, const uint8_t chip[CL_PK_LEN], uint64_t seq,
                     const uint8_t mac[CL_MAC_LEN]);
/* Next message within timeout_ms: 0, TU_WIRE_TIMEOUT, or TU_WIRE_EOF when
 * the peer closed the connection. Whatever has arrived is read even with a
 * timeout of 0. A frame that does not decode fails the test. */
int tu_wire_recv(tu_wire *w, cl_msg *m, int timeout_ms);
void tu_wire_close(tu_wire *w);

/*
 * The chip side of protocol 2 on a tu_wire, for tests that play an agent
 * against the real landmarkd (hostile, flood, e2e). Chips are given as
 * arrays: chips[i] is a chip's key and sess[i] its session with the
 * landmark, a cl_chipsess as chipagent keeps it (keys: the caller's memory,
 * n * CL_SESSION_KEY_LEN bytes; sess[i] keeps its key at keys + i *
 * CL_SESSION_KEY_LEN). n is 1 to CL_MAX_CHIPS_PER_REGISTER. Every wait is
 * at most 5 s; a landmark that does not follow the protocol fails the test.
 */
#define TU_CHIP_AGENT "tu-chip" /* the agent name of the Registers */

/* Reads the Hello; landmark (may be NULL) receives the landmark's id.
 * Returns the Hello's suite. */
uint32_t tu_chip_hello(tu_wire *w, uint8_t landmark[CL_PK_LEN]);
/*
 * Sends one Register with a fresh offer (cl_chipsess_offer, suite 1) for
 * each of chips[0..n) to `landmark`, reads the RegisterResult (the next
 * message must be it) into *res (may be NULL), and sends one Confirm for
 * the accepted chips: each landmark handshake signature must verify
 * (cl_chipsess_accept), each chip signs its half (cl_hs_sign_chip). No
 * Confirm when none is accepted. A refused chip's session is ended (state
 * CL_CHIPSESS_NONE). sess[0..n) must be initialised (cl_chipsess_init, or
 * an earlier tu_chip_handshake). Returns the number of accepted chips.
 */
size_t tu_chip_register(tu_wire *w, const uint8_t landmark[CL_PK_LEN], cl_key *const *chips,
                        size_t n, cl_chipsess *sess, cl_msg *res);
/* A fresh connection's whole handshake: cl_chipsess_init of every sess[i]
 * on its slot of keys, tu_chip_hello, tu_chip_register to the landmark of
 * the Hello. Returns the number of accepted chips; a refused chip's session
 * is CL_CHIPSESS_NONE. */
size_t tu_chip_handshake(tu_wire *w, cl_key *const *chips, size_t n, cl_chipsess *sess,
                         uint8_t *keys);

/* What tu_chip_handle did, accumulated. */
typedef struct {
  uint64_t answered;    /* Challenges answered */
  uint64_t unanswered;  /* Challenges for a chip of ours without an established session */
  uint64_t transcripts; /* BurstEnds answered with a signed Transcript */
  uint64_t refused;     /* BurstEnds naming a probe the chip did not answer: no Transcript */
  uint64_t rekeys;      /* Rekeys answered with a Register of a fresh offer */
  uint64_t confirms;    /* RegisterResults after a Rekey answered (Confirm or refusal) */
  uint64_t errors;      /* Error frames received */
  cl_wire_error last_error;
} tu_chip_stats;

/*
 * What chipagent does with one message from the landmark, at once and on
 * the calling thread: a Challenge for one of the chips with an established
 * session is answered with its MAC (cl_chipsess_answer); a BurstEnd with
 * the signed Transcript (nothing when cl_chipsess_transcript refuses); a
 * Rekey with a Register holding a fresh offer for that chip (which must
 * have a session: its landmark is taken from it); a RegisterResult with the
 * Confirm of the accepted chips (as tu_chip_register); an Error is counted.
 * A message naming a chip not in chips fails the test. Returns 1 when m was
 * one of these five types, 0 otherwise (m is then the caller's business).
 * st may be NULL.
 */
int tu_chip_handle(tu_wire *w, cl_key *const *chips, size_t n, cl_chipsess *sess,
                   const cl_msg *m, tu_chip_stats *st);
/*
 * Plays the chips for ms milliseconds: every message goes to tu_chip_handle,
 * any other type fails the test. Returns 0 after ms, or TU_WIRE_EOF as soon
 * as the landmark closes the connection. st may be NULL.
 */
int tu_chip_serve(tu_wire *w, cl_key *const *chips, size_t n, cl_chipsess *sess, int ms,
                  tu_chip_stats *st);

#endif
