/* logfmt logging to stderr with a level filter and a rate limiter. */
#include "cl_log.h"
#include "cl_err.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
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

/* Longest line written, newline included. */
#define LINE_MAX_LEN 2048
/* Longest msg written; a longer one is cut (and the line says so). */
#define MSG_MAX_LEN 256
/* What ends a line that did not fit: the pairs before it are whole. */
#define TRUNCATED " truncated=true"

/*
 * A line under construction. Appends past the end set `over` instead of
 * writing; the writer then drops the pair that did not fit (back to the
 * mark taken at its start), so that a cut line still parses.
 */
typedef struct {
  char *p;
  size_t cap, len;
  int over;
} linebuf;

static void lb_putc(linebuf *b, char c) {
  if (b->len + 1 > b->cap) {
    b->over = 1;
    return;
  }
  b->p[b->len++] = c;
}

static void lb_puts(linebuf *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) lb_putc(b, s[i]);
}

/* One byte of a quoted value: \" \\ \n, other control bytes as \xNN. */
static void lb_escaped(linebuf *b, unsigned char c) {
  char hex[5];
  if (c == '"' || c == '\\') {
    lb_putc(b, '\\');
    lb_putc(b, (char)c);
  } else if (c == '\n') {
    lb_puts(b, "\\n", 2);
  } else if (c < 0x20 || c == 0x7f) {
    snprintf(hex, sizeof hex, "\\x%02x", c);
    lb_puts(b, hex, 4);
  } else {
    lb_putc(b, (char)c);
  }
}

/* Whether a value must be quoted: empty, or holding a space, '=', a quote,
 * a backslash or a control byte. */
static int needs_quotes(const char *s, size_t n) {
  if (n == 0) return 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f) return 1;
  }
  return 0;
}

/* Whether s is already one well-formed quoted value, as cl_log_quote
 * makes them: a quote, then no bare quote or control byte and only whole
 * escapes, then the closing quote. */
static int is_quoted_value(const char *s, size_t n) {
  if (n < 2 || s[0] != '"' || s[n - 1] != '"') return 0;
  for (size_t i = 1; i < n - 1; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\') {
      if (++i >= n - 1) return 0;
    } else if (c == '"' || c < 0x20 || c == 0x7f) {
      return 0;
    }
  }
  return 1;
}

/* Writes one value, quoted and escaped when it needs it or `quote` asks. */
static void lb_value(linebuf *b, const char *s, size_t n, int quote) {
  if (!quote && !needs_quotes(s, n)) {
    lb_puts(b, s, n);
    return;
  }
  lb_putc(b, '"');
  for (size_t i = 0; i < n; i++) lb_escaped(b, (unsigned char)s[i]);
  lb_putc(b, '"');
}

/*
 * Formats the printf conversion that starts at *f (its '%') with
 * the next arguments of *ap into out, and moves *f past it. Returns the
 * length written (out always NUL-terminated), or -1 for a conversion it does
 * not know (%n, wide characters), after which no argument may be read.
 * The compiler checks cl_log's format against its arguments, so the types
 * read here are the ones passed.
 */
static int format_one(const char **f, va_list *ap, char *out, size_t outlen) {
  const char *s = *f + 1;
  char spec[32] = "%";
  size_t k = 1;
  int star[2], stars = 0;
#define SPEC_COPY()                                                                      \
  do {                                                                                   \
    if (k + 2 >= sizeof spec) return -1;                                                 \
    spec[k++] = *s++;                                                                    \
  } while (0)
  if (*s == '%') {
    *f = s + 1;
    return snprintf(out, outlen, "%%");
  }
  while (*s && strchr("-+ #0", *s)) SPEC_COPY();
  if (*s == '*') {
    star[stars++] = va_arg(*ap, int);
    SPEC_COPY();
  }
  while (*s >= '0' && *s <= '9') SPEC_COPY();
  if (*s == '.') {
    SPEC_COPY();
    if (*s == '*') {
      star[stars++] = va_arg(*ap, int);
      SPEC_COPY();
    }
    while (*s >= '0' && *s <= '9') SPEC_COPY();
  }
  int len = 0; /* 1 h, 2 hh, 3 l, 4 ll, 5 j, 6 z, 7 t, 8 L */
  if (*s == 'h') {
    len = s[1] == 'h' ? 2 : 1;
  } else if (*s == 'l') {
    len = s[1] == 'l' ? 4 : 3;
  } else if (*s == 'j') {
    len = 5;
  } else if (*s == 'z') {
    len = 6;
  } else if (*s == 't') {
    len = 7;
  } else if (*s == 'L') {
    len = 8;
  }
  if (len == 2 || len == 4) SPEC_COPY();
  if (len) SPEC_COPY();
  char conv = *s;
  if (!conv) return -1;
  SPEC_COPY();
  spec[k] = '\0';
#undef SPEC_COPY
  *f = s;
  int n = -1;
#define EMIT(T)                                                                          \
  do {                                                                                   \
    T v_ = va_arg(*ap, T);                                                               \
    n = stars == 0   ? snprintf(out, outlen, spec, v_)                                   \
        : stars == 1 ? snprintf(out, outlen, spec, star[0], v_)                          \
                     : snprintf(out, outlen, spec, star[0], star[1], v_);                \
  } while (0)
  switch (conv) {
  case 'd':
  case 'i':
    if (len == 3) EMIT(long);
    else if (len == 4) EMIT(long long);
    else if (len == 5) EMIT(intmax_t);
    else if (len == 6) EMIT(ssize_t);
    else if (len == 7) EMIT(ptrdiff_t);
    else if (len <= 2) EMIT(int);
    break;
  case 'u':
  case 'o':
  case 'x':
  case 'X':
    if (len == 3) EMIT(unsigned long);
    else if (len == 4) EMIT(unsigned long long);
    else if (len == 5) EMIT(uintmax_t);
    else if (len == 6 || len == 7) EMIT(size_t);
    else if (len <= 2) EMIT(unsigned);
    break;
  case 'e':
  case 'E':
  case 'f':
  case 'F':
  case 'g':
  case 'G':
  case 'a':
  case 'A':
    if (len == 8) EMIT(long double);
    else if (len == 0) EMIT(double);
    break;
  case 'c':
    if (len == 0) EMIT(int);
    break;
  case 's':
    if (len == 0) EMIT(const char *);
    break;
  case 'p':
    if (len == 0) EMIT(void *);
    break;
  default:
    break;
  }
#undef EMIT
  if (n < 0) return -1;
  return (size_t)n < outlen ? n : (int)outlen - 1;
}

/*
 * Writes the key=value part of a line from a printf format and its
 * arguments, making every value valid logfmt whatever the arguments hold.
 * The format is read as pairs separated by spaces: `key=value`, where the
 * value is what follows '=' up to the next space, or, when the format
 * writes it in quotes (`err=\"%s\"`), up to the closing quote. Each value
 * is assembled unescaped from the format's text and its conversions, then
 * written quoted and escaped if it needs it or the format quoted it
 * (lb_value). A conversion that is a whole unquoted value and already a
 * quoted value (cl_log_quote's output) is kept as it is. A conversion where
 * a key is expected inserts pre-formatted pairs (`rows=%llu %s`): copied
 * with control bytes escaped so the line stays one line. A pair that does
 * not fit is left out with everything after it, and the line ends in
 * `truncated=true`.
 */
static void render_kv(linebuf *b, const char *f, va_list *ap) {
  char val[LINE_MAX_LEN], conv[LINE_MAX_LEN];
  size_t vlen = 0;
  int in_value = 0, quoted = 0, only_conv = 0;
  size_t mark = b->len;
  lb_putc(b, ' ');
  while (!b->over) {
    if (!in_value) {
      if (*f == '\0') break;
      if (*f == ' ') mark = b->len;
      if (*f == '%') {
        int n = format_one(&f, ap, conv, sizeof conv);
        if (n < 0) break;
        for (int i = 0; i < n; i++) {
          unsigned char c = (unsigned char)conv[i];
          if (c < 0x20 || c == 0x7f)
            lb_escaped(b, c);
          else
            lb_putc(b, (char)c);
        }
        continue;
      }
      lb_putc(b, *f);
      if (*f++ == '=') {
        in_value = 1;
        quoted = *f == '"';
        if (quoted) f++;
        vlen = 0;
        only_conv = 0;
      }
      continue;
    }
    if (*f == '\0' || (!quoted && *f == ' ') || (quoted && *f == '"')) {
      if (only_conv == 1 && !quoted && is_quoted_value(val, vlen))
        lb_puts(b, val, vlen);
      else
        lb_value(b, val, vlen, quoted);
      if (quoted && *f == '"') f++;
      in_value = 0;
      continue;
    }
    if (*f == '%') {
      int n = format_one(&f, ap, conv, sizeof conv);
      if (n < 0) break;
      size_t take = (size_t)n < sizeof val - vlen ? (size_t)n : sizeof val - vlen;
      memcpy(val + vlen, conv, take);
      vlen += take;
      only_conv = vlen == take ? only_conv + 1 : 2;
      continue;
    }
    if (quoted && *f == '\\' && f[1]) f++;
    if (vlen < sizeof val) val[vlen++] = *f;
    only_conv = 2;
    f++;
  }
  if (b->over) {
    b->len = mark;
    b->over = 0;
    lb_puts(b, TRUNCATED, strlen(TRUNCATED));
  }
}

void cl_log(cl_log_level level, const char *msg, const char *kvfmt, ...) {
  static const char *names[] = {"debug", "info", "warn", "error"};
  if (level < g_level) return;
  char line[LINE_MAX_LEN];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char tbuf[40];
  strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
  /* The whole line is built first so concurrent writers do not interleave;
   * room is kept for the truncation mark and the newline. */
  linebuf b = {.p = line, .cap = sizeof line - sizeof TRUNCATED - 1};
  int n = snprintf(line, b.cap, "ts=%s.%06ldZ level=%s", tbuf, ts.tv_nsec / 1000, names[level]);
  b.len = (size_t)n;
  if (g_prog) {
    lb_puts(&b, " prog=", 6);
    lb_value(&b, g_prog, strlen(g_prog), 0);
  }
  lb_puts(&b, " msg=", 5);
  /* Even escaped in full a message this long leaves room for the pairs. */
  size_t mlen = strnlen(msg, MSG_MAX_LEN);
  lb_value(&b, msg, mlen, 0);
  if (msg[mlen]) {
    lb_puts(&b, TRUNCATED, strlen(TRUNCATED));
  } else if (kvfmt && *kvfmt) {
    va_list ap;
    va_start(ap, kvfmt);
    render_kv(&b, kvfmt, &ap);
    va_end(ap);
  }
  b.cap = sizeof line; /* the reserve */
  lb_putc(&b, '\n');
  fwrite(line, 1, b.len, stderr);
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
