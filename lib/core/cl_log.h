/*
 * One-line-per-event logging in logfmt: `ts=... level=... msg=... key=value`.
 * Every value is written so that a line always parses and an operator can
 * grep it: a value holding a space, '=', a quote, a backslash or a control
 * byte (or an empty one) is quoted, with \" \\ and \n escapes and \xNN for
 * other control bytes. Output goes to stderr, at most 2048 bytes a line;
 * pairs that do not fit are left out whole and the line ends in
 * `truncated=true`.
 *
 * Usage: cl_log(CL_LOG_INFO, "probe accepted", "chip=%s rtt_ns=%llu", hex, rtt);
 * The format string after msg supplies the key=value part, pairs separated
 * by spaces. cl_log escapes each value itself, whatever its conversions
 * produce (libpq's messages with quotes and newlines included): write
 * `err=%s` or `err=\"%s\"` (a value the format quotes is always written
 * quoted, and may hold literal spaces: `hint=\"two words\"`). A conversion where a key belongs
 * inserts pairs formatted elsewhere (`rows=%llu %s`). Use cl_log_quote() for
 * bytes a peer controls: its quoted output is kept as it is.
 */
#ifndef CL_LOG_H
#define CL_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { CL_LOG_DEBUG = 0, CL_LOG_INFO, CL_LOG_WARN, CL_LOG_ERROR } cl_log_level;

void cl_log_set_level(cl_log_level level);
cl_log_level cl_log_get_level(void);
/* Parses "debug", "info", "warn" or "error"; returns 0 or CL_EINVAL. */
int cl_log_parse_level(const char *text, cl_log_level *out);
/* Prefix every line with `prog=NAME` (static string, not copied). */
void cl_log_set_prog(const char *prog);

void cl_log(cl_log_level level, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Writes a logfmt-safe rendering of untrusted bytes into out (always
 * NUL-terminated, truncated to outlen-1): printable ASCII except quote and
 * backslash is kept, everything else becomes \xNN. The result is wrapped in
 * double quotes. Returns out.
 */
char *cl_log_quote(char *out, size_t outlen, const void *data, size_t len);

/*
 * Token-bucket rate limiter for log lines about hostile peers: allows
 * `burst` lines, refilled at `per_sec` lines per second. Returns 1 if a line
 * may be written now, 0 if it must be suppressed (suppressed lines are
 * counted and reported in the next allowed line through *suppressed).
 */
typedef struct {
  double tokens;
  double burst;
  double per_sec;
  uint64_t last_ns;
  uint64_t suppressed;
} cl_ratelimit;

void cl_ratelimit_init(cl_ratelimit *rl, double burst, double per_sec);
int cl_ratelimit_allow(cl_ratelimit *rl, uint64_t now_ns, uint64_t *suppressed);

#endif
