/*
 * One-line-per-event logging in logfmt: `ts=... level=... msg=... key=value`.
 * Values with spaces, quotes or '=' are quoted and escaped so that a line
 * always parses and an operator can grep it. Output goes to stderr.
 *
 * Usage: cl_log(CL_LOG_INFO, "probe accepted", "chip=%s rtt_ns=%llu", hex, rtt);
 * The format string after msg supplies the key=value part; use cl_log_quote()
 * for values a peer controls.
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
