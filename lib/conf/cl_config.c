/*
 * Loader for the INI configuration files of landmarkd and chipagent.
 *
 * Each kind of file is described by two tables: its sections (fixed ones
 * such as [probe], and repeated ones such as [landmark.NAME]) and its
 * settings, each with a type, range, default and offset into the output
 * struct. Parsing, defaults, range checks, duplicate and required-key checks
 * are all driven by those tables, so adding a setting is one table line.
 *
 * inih does the key = value parsing. We feed it through our own line reader,
 * which numbers the lines (the handler gets no line number), strips leading
 * whitespace (so an indented key is never taken for a continuation line),
 * tracks section headers (so an empty or repeated section is seen too), and
 * passes values of lines too long for inih's 200-byte buffer around it.
 * The first error wins and is reported as "FILE:LINE: message".
 */
#include "cl_config.h"
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_probe.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum {
  OPT_U32,      /* uint32_t: a decimal integer in [min, max] */
  OPT_DOUBLE,   /* double: a finite number in [min, max] */
  OPT_NAME,     /* char[CL_CONFIG_NAME_MAX + 1]: 1..64 printable ASCII characters */
  OPT_SECRET,   /* char[size]: non-empty text never echoed in errors (conninfo) */
  OPT_PATH,     /* char[size]: a file path, relative to the config file's directory */
  OPT_HOSTPORT, /* char[size] host at off, int port at off2 */
  OPT_SPEED,    /* double m/s at off, char[size] original text at off2 */
  OPT_PUBKEY,   /* uint8_t[CL_PK_LEN]: 64 hex characters, a valid Ed25519 point */
} opt_type;

#define OPT_REQUIRED 1u
#define OPT_EMPTY_OK 2u /* OPT_HOSTPORT: an empty value clears host and port (disabled) */

/* A section kind: either one fixed [name], or repeated [name.INSTANCE]. */
typedef struct {
  const char *name;
  int multi;
  /* multi only: where the instances live in the output struct */
  size_t min_count, max_count;
  size_t arr_off, elem_size, count_off, name_off;
} section_def;

typedef struct {
  int sec; /* index into the kind's section table */
  const char *key;
  opt_type type;
  unsigned flags;
  double min, max, def;  /* numeric types; def is applied unless OPT_REQUIRED */
  const char *def_text;  /* default of the other types, parsed like a value; may be NULL */
  size_t off, off2, size; /* offsets into the section's struct; size of the off buffer */
} option;

struct parse_ctx;
typedef struct {
  const section_def *secs;
  size_t n_secs;
  const option *opts;
  size_t n_opts;
  size_t struct_size;
  /* Optional hooks: defaults that are not constants, cross-field checks. */
  void (*init)(void *cfg);
  int (*check)(struct parse_ctx *c);
} config_kind;

#define MAX_OPTS_PER_KIND 40

/* One section as it appears in the file (or, for fixed sections, as it
 * would: fixed sections exist even when the file omits them). */
typedef struct {
  int sec;
  char name[CL_CONFIG_NAME_MAX + 1]; /* instance name of a multi section */
  int header_line;                   /* 0: not in the file */
  void *base;                        /* struct this section's settings go into */
  int seen[MAX_OPTS_PER_KIND];       /* line each option was set on, 0 if unset */
} instance;

typedef struct parse_ctx {
  const config_kind *kind;
  const char *path;
  char dir[PATH_MAX];
  void *cfg;
  FILE *f;
  char *line;
  size_t linecap;
  int lineno;
  instance *inst;
  size_t n_inst, cap_inst;
  instance *cur; /* section of the keys being read; NULL before the first header */
  int cur_bad;   /* the current header was rejected: its keys are ignored */
  char *long_value; /* value of an over-long line, handed around inih */
  int long_line;
  int has_err;
  int err_line;
  char err[512];
} parse_ctx;

/* Marker inih sees instead of an over-long value. */
#define LONG_VALUE_MARK "\x01"

/* ---- error reporting ---------------------------------------------------- */

/* Records the first error only; line 0 means "not tied to a line". */
static void set_err(parse_ctx *c, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(parse_ctx *c, int line, const char *fmt, ...) {
  if (c->has_err) return;
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  cl_err_vset(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (line > 0)
    cl_err_set(c->err, sizeof c->err, "%s:%d: %s", c->path, line, msg);
  else
    cl_err_set(c->err, sizeof c->err, "%s: %s", c->path, msg);
  c->has_err = 1;
  c->err_line = line;
}

/* "[probe]" or "[landmark.fra]" */
static const char *inst_label(const parse_ctx *c, const instance *in, char *buf, size_t len) {
  const section_def *s = &c->kind->secs[in->sec];
  if (s->multi)
    snprintf(buf, len, "[%s.%s]", s->name, in->name);
  else
    snprintf(buf, len, "[%s]", s->name);
  return buf;
}

/* Values are echoed in errors; an empty one is shown as "". */
static const char *shown(const char *v) { return *v ? v : "\"\""; }

/* ---- value parsers ------------------------------------------------------ */

/* Strict decimal: digits only, no sign, no spaces, no trailing text. */
static int parse_u32(const char *s, double min, double max, uint32_t *out) {
  if (!isdigit((unsigned char)s[0])) return CL_EMALFORMED;
  errno = 0;
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end != '\0') return CL_EMALFORMED;
  if ((double)v < min || (double)v > max) return CL_EMALFORMED;
  *out = (uint32_t)v;
  return CL_OK;
}

static int parse_double(const char *s, double min, double max, double *out) {
  if (!*s || isspace((unsigned char)s[0])) return CL_EMALFORMED;
  errno = 0;
  char *end = NULL;
  double v = strtod(s, &end);
  if (errno || *end != '\0' || !isfinite(v)) return CL_EMALFORMED;
  if (v < min || v > max) return CL_EMALFORMED;
  *out = v;
  return CL_OK;
}

static int valid_name(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
  return 1;
}

/* Names of [landmark.NAME] and [chip.NAME] instances: a conservative set. */
static int valid_instance_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > CL_CONFIG_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i])) return 0;
  return 1;
}

int cl_parse_hostport(const char *text, char *host, size_t hostlen, int *port) {
  if (!text || !host || hostlen == 0 || !port) return CL_EINVAL;
  const char *h, *hend, *p;
  if (text[0] == '[') {
    h = text + 1;
    hend = strchr(h, ']');
    if (!hend || hend[1] != ':') return CL_EMALFORMED;
    p = hend + 2;
    if (hend == h || !memchr(h, ':', (size_t)(hend - h))) return CL_EMALFORMED;
    for (const char *q = h; q < hend; q++)
      if (!isalnum((unsigned char)*q) && !strchr(":.%-_", *q)) return CL_EMALFORMED;
  } else {
    hend = strrchr(text, ':');
    if (!hend) return CL_EMALFORMED;
    h = text;
    p = hend + 1;
    if (hend == h) return CL_EMALFORMED;
    /* A colon in an unbracketed host is an IPv6 address without brackets. */
    for (const char *q = h; q < hend; q++)
      if (!isalnum((unsigned char)*q) && !strchr(".-_", *q)) return CL_EMALFORMED;
  }
  size_t plen = strlen(p);
  if (plen == 0 || plen > 5) return CL_EMALFORMED;
  long v = 0;
  for (const char *q = p; *q; q++) {
    if (!isdigit((unsigned char)*q)) return CL_EMALFORMED;
    v = v * 10 + (*q - '0');
  }
  if (v < 1 || v > 65535) return CL_EMALFORMED;
  size_t hl = (size_t)(hend - h);
  if (hl >= hostlen) return CL_EMALFORMED;
  memcpy(host, h, hl);
  host[hl] = '\0';
  *port = (int)v;
  return CL_OK;
}

/*
 * Parses `value` for option o of instance in, writing into in->base.
 * Returns 0, or CL_EMALFORMED after recording an error at `line`.
 */
static int apply(parse_ctx *c, const instance *in, const option *o, const char *value, int line) {
  char *base = in->base;
  char lab[CL_CONFIG_NAME_MAX + 32];
  inst_label(c, in, lab, sizeof lab);
  switch (o->type) {
  case OPT_U32:
    if (parse_u32(value, o->min, o->max, (uint32_t *)(base + o->off)) == CL_OK) return CL_OK;
    set_err(c, line, "%s %s = %s: must be an integer in [%.0f, %.0f]", lab, o->key, shown(value),
            o->min, o->max);
    return CL_EMALFORMED;
  case OPT_DOUBLE:
    if (parse_double(value, o->min, o->max, (double *)(base + o->off)) == CL_OK) return CL_OK;
    set_err(c, line, "%s %s = %s: must be a number in [%g, %g]", lab, o->key, shown(value), o->min,
            o->max);
    return CL_EMALFORMED;
  case OPT_NAME:
    if (valid_name(value, o->size - 1)) {
      snprintf(base + o->off, o->size, "%s", value);
      return CL_OK;
    }
    set_err(c, line, "%s %s = %s: must be 1 to %zu printable ASCII characters", lab, o->key,
            shown(value), o->size - 1);
    return CL_EMALFORMED;
  case OPT_SECRET:
    /* Never echo the value: a conninfo may hold a password. */
    if (!*value) {
      set_err(c, line, "%s %s: must not be empty", lab, o->key);
      return CL_EMALFORMED;
    }
    if (strlen(value) >= o->size) {
      set_err(c, line, "%s %s: longer than %zu characters", lab, o->key, o->size - 1);
      return CL_EMALFORMED;
    }
    snprintf(base + o->off, o->size, "%s", value);
    return CL_OK;
  case OPT_PATH: {
    if (!*value) {
      set_err(c, line, "%s %s: must be a file path, not empty", lab, o->key);
      return CL_EMALFORMED;
    }
    int n = value[0] == '/' ? snprintf(base + o->off, o->size, "%s", value)
                            : snprintf(base + o->off, o->size, "%s/%s", c->dir, value);
    if (n < 0 || (size_t)n >= o->size) {
      set_err(c, line, "%s %s = %s: path longer than %zu characters", lab, o->key, value,
              o->size - 1);
      return CL_EMALFORMED;
    }
    return CL_OK;
  }
  case OPT_HOSTPORT:
    if ((o->flags & OPT_EMPTY_OK) && !*value) {
      base[o->off] = '\0';
      *(int *)(base + o->off2) = 0;
      return CL_OK;
    }
    if (cl_parse_hostport(value, base + o->off, o->size, (int *)(base + o->off2)) == CL_OK)
      return CL_OK;
    set_err(c, line, "%s %s = %s: must be HOST:PORT or [IPV6]:PORT with a port in [1, 65535]",
            lab, o->key, shown(value));
    return CL_EMALFORMED;
  case OPT_SPEED:
    if (strlen(value) < o->size && cl_speed_parse(value, (double *)(base + o->off)) == CL_OK) {
      snprintf(base + o->off2, o->size, "%s", value);
      return CL_OK;
    }
    set_err(c, line,
            "%s %s = %s: must be c, fibre, or metres per second in (0, %.0f]", lab, o->key,
            shown(value), CL_SPEED_C);
    return CL_EMALFORMED;
  case OPT_PUBKEY: {
    uint8_t *pk = (uint8_t *)(base + o->off);
    if (cl_pk_from_hex(value, pk) != CL_OK) {
      set_err(c, line, "%s %s = %s: must be 64 hex characters (an Ed25519 public key)", lab,
              o->key, shown(value));
      return CL_EMALFORMED;
    }
    if (cl_pk_check(pk) != CL_OK) {
      set_err(c, line, "%s %s = %s: not a usable Ed25519 public key", lab, o->key, value);
      return CL_EMALFORMED;
    }
    return CL_OK;
  }
  }
  set_err(c, line, "%s %s: internal error: unknown setting type", lab, o->key);
  return CL_EINVAL;
}

/* Writes the defaults of every option of in's section. */
static int apply_defaults(parse_ctx *c, const instance *in) {
  for (size_t i = 0; i < c->kind->n_opts; i++) {
    const option *o = &c->kind->opts[i];
    if (o->sec != in->sec || (o->flags & OPT_REQUIRED)) continue;
    char *base = in->base;
    if (o->type == OPT_U32)
      *(uint32_t *)(base + o->off) = (uint32_t)o->def;
    else if (o->type == OPT_DOUBLE)
      *(double *)(base + o->off) = o->def;
    else if (o->def_text && apply(c, in, o, o->def_text, 0) != CL_OK)
      return CL_EINVAL;
  }
  return CL_OK;
}

static instance *add_instance(parse_ctx *c, int sec) {
  if (c->n_inst == c->cap_inst) return NULL;
  instance *in = &c->inst[c->n_inst++];
  memset(in, 0, sizeof *in);
  in->sec = sec;
  return in;
}

/* ---- the line reader and the inih handler ------------------------------- */

/*
 * Handles a line starting with '[': finds or creates the section instance
 * and makes it current. Errors are recorded; the section's keys are then
 * ignored (cur_bad) so that only the first, real problem is reported.
 */
static void on_section(parse_ctx *c, const char *p) {
  int line = c->lineno;
  c->cur = NULL;
  c->cur_bad = 1;
  const char *end = strchr(p, ']');
  if (!end) {
    set_err(c, line, "section header without a closing ']': %.80s", p);
    return;
  }
  const char *rest = end + 1;
  while (isspace((unsigned char)*rest)) rest++;
  if (*rest && *rest != ';' && *rest != '#') {
    set_err(c, line, "unexpected text after section header: %.80s", p);
    return;
  }
  char name[160];
  size_t n = (size_t)(end - p - 1);
  if (n >= sizeof name) n = sizeof name - 1;
  memcpy(name, p + 1, n);
  name[n] = '\0';

  const config_kind *k = c->kind;
  for (size_t s = 0; s < k->n_secs; s++) {
    const section_def *sd = &k->secs[s];
    size_t pl = strlen(sd->name);
    if (!sd->multi) {
      if (strcmp(name, sd->name) != 0) continue;
      for (size_t i = 0; i < c->n_inst; i++) {
        instance *in = &c->inst[i];
        if (in->sec != (int)s) continue;
        if (in->header_line) {
          set_err(c, line, "section [%s] appears twice (first on line %d)", name, in->header_line);
          return;
        }
        in->header_line = line;
        c->cur = in;
        c->cur_bad = 0;
        return;
      }
      continue;
    }
    if (strncmp(name, sd->name, pl) != 0 || name[pl] != '.') continue;
    const char *iname = name + pl + 1;
    if (!valid_instance_name(iname)) {
      set_err(c, line,
              "section [%s]: the name after '%s.' must be 1 to %d letters, digits, '-', '_' "
              "or '.'",
              name, sd->name, CL_CONFIG_NAME_MAX);
      return;
    }
    size_t *count = (size_t *)((char *)c->cfg + sd->count_off);
    for (size_t i = 0; i < c->n_inst; i++) {
      if (c->inst[i].sec == (int)s && strcmp(c->inst[i].name, iname) == 0) {
        set_err(c, line, "section [%s] appears twice (first on line %d)", name,
                c->inst[i].header_line);
        return;
      }
    }
    if (*count >= sd->max_count) {
      set_err(c, line, "too many [%s.NAME] sections: at most %zu", sd->name, sd->max_count);
      return;
    }
    instance *in = add_instance(c, (int)s);
    if (!in) {
      set_err(c, line, "too many sections");
      return;
    }
    in->header_line = line;
    snprintf(in->name, sizeof in->name, "%s", iname);
    in->base = (char *)c->cfg + sd->arr_off + *count * sd->elem_size;
    snprintf((char *)in->base + sd->name_off, CL_CONFIG_NAME_MAX + 1, "%s", iname);
    (*count)++;
    if (apply_defaults(c, in) != CL_OK) return;
    c->cur = in;
    c->cur_bad = 0;
    return;
  }
  /* Unknown: list what this kind of file accepts. */
  char expect[200] = "";
  size_t o = 0;
  for (size_t s = 0; s < k->n_secs && o < sizeof expect; s++) {
    int w = snprintf(expect + o, sizeof expect - o, "%s[%s%s]", s ? ", " : "", k->secs[s].name,
                     k->secs[s].multi ? ".NAME" : "");
    if (w < 0) break;
    o += (size_t)w;
  }
  set_err(c, line, "unknown section [%s] (expected %s)", name, expect);
}

/*
 * A key = value line longer than inih's buffer: split it the way inih
 * would (first '=' or ':', inline ';' comment after whitespace, whitespace
 * trimmed), keep the value, and give inih "KEY=<mark>". Returns the text
 * to give inih.
 */
static const char *stash_long_line(parse_ctx *c, char *p, int num) {
  if (*p == ';' || *p == '#' || *p == '[') return ";"; /* comment, or a header handled above */
  char *sep = p;
  int was_space = 0;
  while (*sep && *sep != '=' && *sep != ':' && !(was_space && *sep == ';')) {
    was_space = isspace((unsigned char)*sep);
    sep++;
  }
  if (*sep != '=' && *sep != ':') {
    set_err(c, c->lineno, "expected [section] or key = value");
    return ";";
  }
  char *kend = sep;
  while (kend > p && isspace((unsigned char)kend[-1])) kend--;
  size_t klen = (size_t)(kend - p);
  if (klen + sizeof LONG_VALUE_MARK + 1 > (size_t)num) {
    set_err(c, c->lineno, "line too long");
    return ";";
  }
  char *v = sep + 1;
  while (isspace((unsigned char)*v)) v++;
  char *e = v;
  was_space = 0;
  while (*e && !(was_space && *e == ';')) {
    was_space = isspace((unsigned char)*e);
    e++;
  }
  while (e > v && isspace((unsigned char)e[-1])) e--;
  *e = '\0';
  free(c->long_value);
  c->long_value = strdup(v);
  if (!c->long_value) {
    set_err(c, c->lineno, "out of memory");
    return ";";
  }
  c->long_line = c->lineno;
  /* Reuse the line buffer for "KEY=<mark>"; it is at least this long. */
  memmove(c->line, p, klen);
  memcpy(c->line + klen, "=" LONG_VALUE_MARK, sizeof LONG_VALUE_MARK + 1);
  return c->line;
}

/* fgets-style reader for ini_parse_stream: one line per call, numbered. */
static char *read_line(char *str, int num, void *stream) {
  parse_ctx *c = stream;
  ssize_t n = getline(&c->line, &c->linecap, c->f);
  if (n < 0) return NULL;
  c->lineno++;
  char *p = c->line;
  while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r')) p[--n] = '\0';
  if (c->lineno == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
  while (isspace((unsigned char)*p)) p++;
  const char *give = p;
  if (*p == '[') {
    on_section(c, p);
  } else if (*p && *p != ';' && *p != '#' && !strpbrk(p, "=:")) {
    /* inih rejects this line too; our message is the clearer one. */
    set_err(c, c->lineno, "expected [section] or key = value: %.80s", p);
  }
  if (strlen(give) + 1 > (size_t)num) give = stash_long_line(c, p, num);
  snprintf(str, (size_t)num, "%s", give);
  return str;
}

static const option *find_option(const config_kind *k, int sec, const char *key, size_t *idx) {
  for (size_t i = 0; i < k->n_opts; i++) {
    if (k->opts[i].sec == sec && strcmp(k->opts[i].key, key) == 0) {
      *idx = i;
      return &k->opts[i];
    }
  }
  return NULL;
}

/* inih callback: returns 1 to go on, 0 to flag this line as an error. */
static int on_key(void *user, const char *section, const char *name, const char *value) {
  parse_ctx *c = user;
  int line = c->lineno;
  (void)section; /* our reader tracks sections, with no length limit */
  if (c->long_line == line && c->long_value && strcmp(value, LONG_VALUE_MARK) == 0)
    value = c->long_value;
  if (c->cur_bad) return 1; /* the header's error is already recorded */
  if (!c->cur) {
    set_err(c, line, "%s = %s: setting outside of any section", name, shown(value));
    return 0;
  }
  char lab[CL_CONFIG_NAME_MAX + 32];
  inst_label(c, c->cur, lab, sizeof lab);
  size_t idx = 0;
  const option *o = find_option(c->kind, c->cur->sec, name, &idx);
  if (!o) {
    set_err(c, line, "%s %s: unknown key", lab, name);
    return 0;
  }
  if (c->cur->seen[idx]) {
    set_err(c, line, "%s %s: duplicate key (first set on line %d)", lab, name,
            c->cur->seen[idx]);
    return 0;
  }
  c->cur->seen[idx] = line;
  return apply(c, c->cur, o, value, line) == CL_OK;
}

/* ---- driver ------------------------------------------------------------- */

static void config_dir(const char *path, char *out, size_t outlen) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s", path);
  char *slash = strrchr(tmp, '/');
  if (!slash)
    snprintf(tmp, sizeof tmp, ".");
  else if (slash == tmp)
    tmp[1] = '\0';
  else
    *slash = '\0';
  char real[PATH_MAX];
  if (realpath(tmp, real))
    snprintf(out, outlen, "%s", real);
  else
    snprintf(out, outlen, "%s", tmp);
}

/* After the file: required settings and instance counts. */
static void check_required(parse_ctx *c) {
  const config_kind *k = c->kind;
  for (size_t i = 0; i < c->n_inst; i++) {
    instance *in = &c->inst[i];
    for (size_t j = 0; j < k->n_opts; j++) {
      const option *o = &k->opts[j];
      if (o->sec != in->sec || !(o->flags & OPT_REQUIRED) || in->seen[j]) continue;
      char lab[CL_CONFIG_NAME_MAX + 32];
      set_err(c, 0, "%s %s is required", inst_label(c, in, lab, sizeof lab), o->key);
      return;
    }
  }
  for (size_t s = 0; s < k->n_secs; s++) {
    const section_def *sd = &k->secs[s];
    if (!sd->multi) continue;
    size_t count = *(size_t *)((char *)c->cfg + sd->count_off);
    if (count < sd->min_count) {
      set_err(c, 0, "at least %zu [%s.NAME] section%s required", sd->min_count, sd->name,
              sd->min_count == 1 ? " is" : "s are");
      return;
    }
  }
}

/*
 * Loads path into cfg (kind->struct_size bytes). Returns 0, CL_EIO,
 * CL_ENOMEM or CL_EMALFORMED; on error err holds "FILE[:LINE]: message".
 */
static int config_load(const config_kind *k, const char *path, void *cfg, char *err,
                       size_t errlen) {
  if (!path || !cfg) return CL_EINVAL;
  if (err && errlen) err[0] = '\0';
  memset(cfg, 0, k->struct_size);
  parse_ctx *c = calloc(1, sizeof *c);
  if (!c) return CL_ENOMEM;
  c->kind = k;
  c->path = path;
  c->cfg = cfg;
  size_t cap = 0;
  for (size_t s = 0; s < k->n_secs; s++) cap += k->secs[s].multi ? k->secs[s].max_count : 1;
  c->inst = calloc(cap, sizeof *c->inst);
  c->cap_inst = cap;
  int rc = CL_OK;
  if (!c->inst) {
    rc = CL_ENOMEM;
    goto out;
  }
  if (k->init) k->init(cfg);
  for (size_t s = 0; s < k->n_secs; s++) {
    if (k->secs[s].multi) continue;
    instance *in = add_instance(c, (int)s);
    in->base = cfg;
    if (apply_defaults(c, in) != CL_OK) {
      rc = CL_EINVAL;
      goto out;
    }
  }
  c->f = fopen(path, "r");
  if (!c->f) {
    set_err(c, 0, "cannot open: %s", strerror(errno));
    rc = CL_EIO;
    goto out;
  }
  config_dir(path, c->dir, sizeof c->dir);
  int r = ini_parse_stream(read_line, c, on_key, c);
  if (r == -2) {
    rc = CL_ENOMEM;
    set_err(c, 0, "out of memory");
    goto out;
  }
  if (r > 0 && (!c->has_err || r < c->err_line)) {
    c->has_err = 0;
    set_err(c, r, "expected [section] or key = value");
  }
  if (!c->has_err) check_required(c);
  if (!c->has_err && k->check) k->check(c);
  if (c->has_err) rc = CL_EMALFORMED;
out:
  if (c->has_err && err && errlen) snprintf(err, errlen, "%s", c->err);
  if (c->f) fclose(c->f);
  free(c->line);
  free(c->long_value);
  free(c->inst);
  free(c);
  return rc;
}

/* Line an option was set on (0 if only defaulted), for cross-field errors. */
static int seen_line(const parse_ctx *c, int sec, const char *key) {
  size_t idx;
  if (!find_option(c->kind, sec, key, &idx)) return 0;
  for (size_t i = 0; i < c->n_inst; i++)
    if (c->inst[i].sec == sec) return c->inst[i].seen[idx];
  return 0;
}

/* ---- landmarkd ---------------------------------------------------------- */

enum { LS_LANDMARK, LS_DATABASE, LS_PROBE, LS_LIMITS, LS_METRICS };

static const section_def landmark_secs[] = {
    [LS_LANDMARK] = {.name = "landmark"},
    [LS_DATABASE] = {.name = "database"},
    [LS_PROBE] = {.name = "probe"},
    [LS_LIMITS] = {.name = "limits"},
    [LS_METRICS] = {.name = "metrics"},
};

#define LMF(f) offsetof(cl_landmark_config, f)
#define LMS(f) sizeof(((cl_landmark_config *)0)->f)
#define LM_U32(s, k, f, lo, hi, d) \
  {.sec = s, .key = k, .type = OPT_U32, .min = lo, .max = hi, .def = d, .off = LMF(f)}

static const option landmark_opts[] = {
    {.sec = LS_LANDMARK, .key = "name", .type = OPT_NAME, .flags = OPT_REQUIRED,
     .off = LMF(name), .size = LMS(name)},
    {.sec = LS_LANDMARK, .key = "key", .type = OPT_PATH, .flags = OPT_REQUIRED,
     .off = LMF(key_path), .size = LMS(key_path)},
    {.sec = LS_LANDMARK, .key = "listen", .type = OPT_HOSTPORT, .def_text = "0.0.0.0:7400",
     .off = LMF(listen_host), .off2 = LMF(listen_port), .size = LMS(listen_host)},
    {.sec = LS_LANDMARK, .key = "lat", .type = OPT_DOUBLE, .flags = OPT_REQUIRED, .min = -90,
     .max = 90, .off = LMF(lat)},
    {.sec = LS_LANDMARK, .key = "lon", .type = OPT_DOUBLE, .flags = OPT_REQUIRED, .min = -180,
     .max = 180, .off = LMF(lon)},
    {.sec = LS_DATABASE, .key = "conninfo", .type = OPT_SECRET, .flags = OPT_REQUIRED,
     .off = LMF(conninfo), .size = LMS(conninfo)},
    LM_U32(LS_DATABASE, "batch_size", batch_size, 1, 100000, 500),
    LM_U32(LS_DATABASE, "flush_interval_ms", flush_interval_ms, 10, 600000, 1000),
    LM_U32(LS_DATABASE, "refresh_interval_s", refresh_interval_s, 1, 86400, 30),
    /* No constant default: landmark_check derives it from the file's name. */
    {.sec = LS_DATABASE, .key = "spool_path", .type = OPT_PATH, .off = LMF(spool_path),
     .size = LMS(spool_path)},
    LM_U32(LS_DATABASE, "spool_max_mb", spool_max_mb, 1, 100000, 256),
    LM_U32(LS_PROBE, "interval_s", interval_s, 1, 86400, 60),
    {.sec = LS_PROBE, .key = "jitter", .type = OPT_DOUBLE, .min = 0, .max = 0.5, .def = 0.1,
     .off = LMF(jitter)},
    /* A measurement record holds at most CL_MAX_BURST probes. */
    LM_U32(LS_PROBE, "burst", burst, 1, CL_MAX_BURST, 5),
    LM_U32(LS_PROBE, "burst_gap_ms", burst_gap_ms, 0, 60000, 100),
    LM_U32(LS_PROBE, "deadline_ms", deadline_ms, 1, 60000, 1000),
    {.sec = LS_PROBE, .key = "speed", .type = OPT_SPEED, .def_text = "c",
     .off = LMF(speed_m_per_s), .off2 = LMF(speed_text), .size = LMS(speed_text)},
    /* Worker threads for the asymmetric work of the sessions (each chip's
     * handshake, the check of its Confirm and of each burst's transcript,
     * the record signature), so that it never delays the event loop. 0 does
     * it on the loop itself. */
    LM_U32(LS_PROBE, "verify_threads", verify_threads, 0, 64, 2),
    /* From the BurstEnd to the chip's Transcript; a burst whose transcript
     * does not come in time makes no record. */
    LM_U32(LS_PROBE, "transcript_timeout_ms", transcript_timeout_ms, 100, 60000, 10000),
    /* A chip's session key is replaced (Rekey) at its first burst after the
     * session is this old. */
    LM_U32(LS_PROBE, "session_lifetime_s", session_lifetime_s, 60, 86400, 3600),
    LM_U32(LS_LIMITS, "max_connections", max_connections, 1, 1000000, 20000),
    LM_U32(LS_LIMITS, "handshake_timeout_ms", handshake_timeout_ms, 100, 600000, 10000),
    LM_U32(LS_LIMITS, "idle_timeout_s", idle_timeout_s, 1, 86400, 300),
    LM_U32(LS_LIMITS, "stats_interval_s", stats_interval_s, 1, 86400, 60),
    LM_U32(LS_LIMITS, "max_connections_per_address", max_connections_per_address, 1, 100000, 64),
    /* Probes outstanding at once on one connection. landmarkd keeps at most
     * one per chip and a connection registers at most 64 chips, so the
     * default never defers a probe; a lower value does. */
    LM_U32(LS_LIMITS, "max_pending_challenges", max_pending_challenges, 1, 1024, 64),
    /* Frame body limit once a peer has registered. It may only be lowered
     * from the protocol's CL_FRAME_MAX, down to 1024 bytes, which still holds
     * every Response and Error a conforming agent sends. The limit before
     * registration is the protocol constant CL_FRAME_MAX_UNREGISTERED (8192
     * bytes, sized for the largest Register) and is not a setting. */
    LM_U32(LS_LIMITS, "max_frame_bytes", max_frame_bytes, 1024, CL_FRAME_MAX, CL_FRAME_MAX),
    /* Bytes held for writing to one connection (write requests included)
     * while its peer does not read; more closes the connection, and above a
     * quarter of it the connection is not read until the queue is empty.
     * The minimum leaves room for the largest frame landmarkd sends (a
     * RegisterResult for 64 chips, under 16 KiB) above the pause mark. */
    LM_U32(LS_LIMITS, "max_write_queue_bytes", max_write_queue_bytes, 65536, 67108864, 262144),
    /* Error replies to rejected Responses, per connection: a burst of this
     * many, then this many per second; beyond it the rejection is counted
     * but not answered. An honest agent gets a few in a whole interval. */
    LM_U32(LS_LIMITS, "max_error_replies_per_s", max_error_replies_per_s, 1, 100000, 10),
    /* No default: absent or empty means no metrics endpoint. */
    {.sec = LS_METRICS, .key = "listen", .type = OPT_HOSTPORT, .flags = OPT_EMPTY_OK,
     .off = LMF(metrics_host), .off2 = LMF(metrics_port), .size = LMS(metrics_host)},
};

_Static_assert(sizeof landmark_opts / sizeof landmark_opts[0] <= MAX_OPTS_PER_KIND,
               "raise MAX_OPTS_PER_KIND");

/*
 * The default spool_path: beside the config file, named after it with the
 * extension replaced by .spool (/etc/chiploc/landmarkd.conf gives
 * /etc/chiploc/landmarkd.spool), so landmarks whose configs share a
 * directory never share a spool.
 */
static int landmark_default_spool(parse_ctx *c) {
  cl_landmark_config *cfg = c->cfg;
  if (cfg->spool_path[0]) return CL_OK;
  const char *base = strrchr(c->path, '/');
  base = base ? base + 1 : c->path;
  const char *dot = strrchr(base, '.');
  size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  int n = len ? snprintf(cfg->spool_path, sizeof cfg->spool_path, "%s/%.*s.spool", c->dir,
                         (int)len, base)
              : snprintf(cfg->spool_path, sizeof cfg->spool_path, "%s/landmarkd.spool", c->dir);
  if (n < 0 || (size_t)n >= sizeof cfg->spool_path) {
    set_err(c, 0, "[database] spool_path: the default path beside this file is longer than %zu "
            "characters; set spool_path", sizeof cfg->spool_path - 1);
    return CL_EMALFORMED;
  }
  return CL_OK;
}

/*
 * An honest agent only sends when probed, so the idle timeout must outlast a
 * whole probe cycle, or every quiet connection would be cut. The longest
 * silence is the longest jittered interval plus a whole burst, each probe
 * waiting out its deadline and the gap after it. The error names no line:
 * the settings involved may all be defaults.
 */
static int landmark_check_idle(parse_ctx *c) {
  const cl_landmark_config *cfg = c->cfg;
  double cycle_s = cfg->interval_s * (1.0 + cfg->jitter) +
                   cfg->burst * (cfg->deadline_ms + cfg->burst_gap_ms) / 1000.0;
  if (cfg->idle_timeout_s > cycle_s) return CL_OK;
  set_err(c, 0,
          "[limits] idle_timeout_s = %u must exceed one probe cycle (%.1f s: "
          "interval_s * (1 + jitter) + burst * (deadline_ms + burst_gap_ms))",
          cfg->idle_timeout_s, cycle_s);
  return CL_EMALFORMED;
}

/* Cross-field rules, after every key is read and defaulted. */
static int landmark_check(parse_ctx *c) {
  int rc = landmark_default_spool(c);
  if (rc != CL_OK) return rc;
  return landmark_check_idle(c);
}

static const config_kind landmark_kind = {
    .secs = landmark_secs,
    .n_secs = sizeof landmark_secs / sizeof landmark_secs[0],
    .opts = landmark_opts,
    .n_opts = sizeof landmark_opts / sizeof landmark_opts[0],
    .struct_size = sizeof(cl_landmark_config),
    .check = landmark_check,
};

int cl_landmark_config_load(const char *path, cl_landmark_config *out, char *err, size_t errlen) {
  return config_load(&landmark_kind, path, out, err, errlen);
}

/* Whether option o has the same value in the structs a and b. */
static int same_value(const option *o, const void *a, const void *b) {
  const char *pa = (const char *)a + o->off, *pb = (const char *)b + o->off;
  switch (o->type) {
  case OPT_U32: return *(const uint32_t *)pa == *(const uint32_t *)pb;
  case OPT_DOUBLE:
  case OPT_SPEED: return *(const double *)pa == *(const double *)pb;
  case OPT_NAME:
  case OPT_SECRET:
  case OPT_PATH: return strcmp(pa, pb) == 0;
  case OPT_HOSTPORT:
    return strcmp(pa, pb) == 0 &&
           *(const int *)((const char *)a + o->off2) == *(const int *)((const char *)b + o->off2);
  case OPT_PUBKEY: return memcmp(pa, pb, CL_PK_LEN) == 0;
  }
  return 0;
}

size_t cl_landmark_config_diff(const cl_landmark_config *a, const cl_landmark_config *b,
                               char *out, size_t outlen) {
  size_t n = 0, used = 0;
  if (out && outlen) out[0] = '\0';
  for (size_t i = 0; i < landmark_kind.n_opts; i++) {
    const option *o = &landmark_kind.opts[i];
    if (same_value(o, a, b)) continue;
    if (out && used < outlen)
      used += (size_t)snprintf(out + used, outlen - used, "%s[%s] %s", n ? ", " : "",
                               landmark_kind.secs[o->sec].name, o->key);
    n++;
  }
  return n;
}

/* ---- chipagent ---------------------------------------------------------- */

enum { AS_AGENT, AS_LANDMARK, AS_CHIP, AS_METRICS };

static const section_def agent_secs[] = {
    [AS_AGENT] = {.name = "agent"},
    [AS_METRICS] = {.name = "metrics"},
    [AS_LANDMARK] = {.name = "landmark",
                     .multi = 1,
                     .min_count = 1,
                     .max_count = CL_CONFIG_MAX_LANDMARKS,
                     .arr_off = offsetof(cl_agent_config, landmarks),
                     .elem_size = sizeof(cl_agent_landmark),
                     .count_off = offsetof(cl_agent_config, n_landmarks),
                     .name_off = offsetof(cl_agent_landmark, name)},
    [AS_CHIP] = {.name = "chip",
                 .multi = 1,
                 .min_count = 1,
                 .max_count = CL_CONFIG_MAX_CHIPS,
                 .arr_off = offsetof(cl_agent_config, chips),
                 .elem_size = sizeof(cl_agent_chip),
                 .count_off = offsetof(cl_agent_config, n_chips),
                 .name_off = offsetof(cl_agent_chip, name)},
};

#define AGF(f) offsetof(cl_agent_config, f)

static const option agent_opts[] = {
    /* The name's default is the host name, set by agent_init. */
    {.sec = AS_AGENT, .key = "name", .type = OPT_NAME, .off = AGF(name),
     .size = sizeof(((cl_agent_config *)0)->name)},
    {.sec = AS_AGENT, .key = "backoff_min_ms", .type = OPT_U32, .min = 10, .max = 600000,
     .def = 500, .off = AGF(backoff_min_ms)},
    {.sec = AS_AGENT, .key = "backoff_max_ms", .type = OPT_U32, .min = 100, .max = 3600000,
     .def = 30000, .off = AGF(backoff_max_ms)},
    /* Landmarks only send when they probe, so this must exceed their probe
     * cycle; the agent cannot know it, docs/CONFIG.md gives the rule. */
    {.sec = AS_AGENT, .key = "idle_timeout_s", .type = OPT_U32, .min = 1, .max = 86400,
     .def = 300, .off = AGF(idle_timeout_s)},
    {.sec = AS_LANDMARK, .key = "address", .type = OPT_HOSTPORT, .flags = OPT_REQUIRED,
     .off = offsetof(cl_agent_landmark, host), .off2 = offsetof(cl_agent_landmark, port),
     .size = sizeof(((cl_agent_landmark *)0)->host)},
    {.sec = AS_LANDMARK, .key = "public_key", .type = OPT_PUBKEY, .flags = OPT_REQUIRED,
     .off = offsetof(cl_agent_landmark, pk)},
    {.sec = AS_CHIP, .key = "key", .type = OPT_PATH, .flags = OPT_REQUIRED,
     .off = offsetof(cl_agent_chip, key_path), .size = sizeof(((cl_agent_chip *)0)->key_path)},
    /* No default, as landmarkd's: absent or empty means no metrics endpoint. */
    {.sec = AS_METRICS, .key = "listen", .type = OPT_HOSTPORT, .flags = OPT_EMPTY_OK,
     .off = AGF(metrics_host), .off2 = AGF(metrics_port),
     .size = sizeof(((cl_agent_config *)0)->metrics_host)},
};

static void agent_init(void *p) {
  cl_agent_config *cfg = p;
  char host[256];
  if (gethostname(host, sizeof host) != 0 || !host[0]) snprintf(host, sizeof host, "chipagent");
  host[sizeof host - 1] = '\0';
  /* Keep the default a valid name: printable, at most CL_CONFIG_NAME_MAX. */
  size_t j = 0;
  for (size_t i = 0; host[i] && j < CL_CONFIG_NAME_MAX; i++)
    if ((unsigned char)host[i] >= 0x20 && (unsigned char)host[i] <= 0x7e) cfg->name[j++] = host[i];
  cfg->name[j] = '\0';
  if (j == 0) snprintf(cfg->name, sizeof cfg->name, "chipagent");
}

static int agent_check(parse_ctx *c) {
  cl_agent_config *cfg = c->cfg;
  if (cfg->backoff_max_ms >= cfg->backoff_min_ms) return CL_OK;
  int lmax = seen_line(c, AS_AGENT, "backoff_max_ms");
  int lmin = seen_line(c, AS_AGENT, "backoff_min_ms");
  if (lmax)
    set_err(c, lmax, "[agent] backoff_max_ms = %u: must be >= backoff_min_ms (%u)",
            cfg->backoff_max_ms, cfg->backoff_min_ms);
  else
    set_err(c, lmin, "[agent] backoff_min_ms = %u: must be <= backoff_max_ms (%u)",
            cfg->backoff_min_ms, cfg->backoff_max_ms);
  return CL_EMALFORMED;
}

_Static_assert(sizeof agent_opts / sizeof agent_opts[0] <= MAX_OPTS_PER_KIND,
               "raise MAX_OPTS_PER_KIND");

static const config_kind agent_kind = {
    .secs = agent_secs,
    .n_secs = sizeof agent_secs / sizeof agent_secs[0],
    .opts = agent_opts,
    .n_opts = sizeof agent_opts / sizeof agent_opts[0],
    .struct_size = sizeof(cl_agent_config),
    .init = agent_init,
    .check = agent_check,
};

int cl_agent_config_load(const char *path, cl_agent_config *out, char *err, size_t errlen) {
  return config_load(&agent_kind, path, out, err, errlen);
}
