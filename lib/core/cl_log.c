/* logfmt logging to stderr with a level filter and a rate limiter. */
#include "cl_log.h"
#include "cl_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static cl_log_level g_level = CL_LOG_INFO;
static const char *g_prog = NULL;

void cl_log_set_level(cl_log_level level) { g_level = level; }
cl_log_level cl_log_get_level(void) { return g_level; }
void cl_log_set_prog(const char *prog) { g_prog = prog; }

int cl_log_parse_level(const char *text, cl_log_level *out) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(text, names[i]) == 0) {
      *out = (cl_log_level)i;
      return CL_OK;
    }
  }
  return CL_EINVAL;
}

static void put_quoted(FILE *f, const char *s) {
  int needs = (*s == '\0');
  for (const char *p = s; *p; p++)
    if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20) needs = 1;
  if (!needs) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (const char *p = s; *p; p++) {
    if (*p == '"' || *p == '\\') fputc('\\', f);
    if ((unsigned char)*p < 0x20)
      fprintf(f, "\\x%02x", (unsigned char)*p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

void cl_log(cl_log_level level, const char *msg, const char *kvfmt, ...) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  if (level < g_level) return;
  char line[2048];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char tbuf[40];
  strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
  char kv[1800] = "";
  if (kvfmt && *kvfmt) {
    va_list ap;
    va_start(ap, kvfmt);
    vsnprintf(kv, sizeof kv, kvfmt, ap);
    va_end(ap);
  }
  /* Build the whole line first so concurrent writers do not interleave. */
  FILE *mem = fmemopen(line, sizeof line - 2, "w");
  if (!mem) return;
  fprintf(mem, "ts=%s.%06ldZ level=%s", tbuf, ts.tv_nsec / 1000, names[level]);
  if (g_prog) fprintf(mem, " prog=%s", g_prog);
  fputs(" msg=", mem);
  put_quoted(mem, msg);
  if (kv[0]) fprintf(mem, " %s", kv);
  long n = ftell(mem);
  fclose(mem);
  if (n < 0) return;
  if ((size_t)n > sizeof line - 2) n = (long)(sizeof line - 2);
  line[n] = '\n';
  line[n + 1] = '\0';
  fputs(line, stderr);
  fflush(stderr);
}

char *cl_log_quote(char *out, size_t outlen, const void *data, size_t len) {
  const unsigned char *p = data;
  size_t o = 0;
  if (outlen < 3) {
    if (outlen) out[0] = '\0';
    return out;
  }
  out[o++] = '"';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      if (o + 2 >= outlen) break;
      out[o++] = (char)c;
    } else {
      if (o + 5 >= outlen) break;
      snprintf(out + o, 5, "\\x%02x", c);
      o += 4;
    }
  }
  out[o++] = '"';
  out[o] = '\0';
  return out;
}

void cl_ratelimit_init(cl_ratelimit *rl, double burst, double per_sec) {
  rl->tokens = burst;
  rl->burst = burst;
  rl->per_sec = per_sec;
  rl->last_ns = 0;
  rl->suppressed = 0;
}

int cl_ratelimit_allow(cl_ratelimit *rl, uint64_t now_ns, uint64_t *suppressed) {
  if (rl->last_ns != 0 && now_ns > rl->last_ns) {
    rl->tokens += (double)(now_ns - rl->last_ns) / 1e9 * rl->per_sec;
    if (rl->tokens > rl->burst) rl->tokens = rl->burst;
  }
  rl->last_ns = now_ns;
  if (rl->tokens >= 1.0) {
    rl->tokens -= 1.0;
    if (suppressed) *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return 1;
  }
  rl->suppressed++;
  return 0;
}
