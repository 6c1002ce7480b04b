/*
 * The strict CSV reader of cl_csv.h. The whole input is read into memory
 * (bounded by CL_CSV_MAX_BYTES) and records are parsed one at a time into a
 * field buffer sized once from the input, so no allocation depends on a count
 * the file declares.
 */
#include "cl_csv.h"
#include "cl_err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cl_csv {
  char *name;
  char *text; /* the input, NUL-terminated */
  size_t len, pos;
  size_t line;        /* current line while parsing */
  size_t record_line; /* line where the current record starts */
  size_t rows;        /* data records read */
  char *buf;          /* unescaped fields of the current record, NUL-separated */
  size_t bufcap;
  size_t off[CL_CSV_MAX_FIELDS];
  size_t nf;
  char **header;
  size_t nheader;
  size_t header_line;
};

/* Renders a field for an error message: quoted, printable ASCII kept, other
 * bytes as \xNN, cut after 40 input bytes. */
static const char *show(const char *s, char *out, size_t outlen) {
  size_t o = 0;
  out[o++] = '"';
  size_t i;
  for (i = 0; s[i] && i < 40 && o + 6 < outlen; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
      out[o++] = (char)ch;
    else
      o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
  }
  if (s[i] && o + 5 < outlen) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o++] = '"';
  out[o] = '\0';
  return out;
}

/*
 * Parses the record at c->pos into c->buf/c->off. Returns 1 for a record,
 * 0 at the end of input, CL_EMALFORMED with err naming the line.
 */
static int parse_record(cl_csv *c, char *err, size_t errlen) {
  const char *t = c->text;
  /* Completely empty lines are skipped. */
  for (;;) {
    if (c->pos < c->len && t[c->pos] == '\n') {
      c->pos++;
      c->line++;
    } else if (c->pos + 1 < c->len && t[c->pos] == '\r' && t[c->pos + 1] == '\n') {
      c->pos += 2;
      c->line++;
    } else {
      break;
    }
  }
  if (c->pos >= c->len)
    return 0;
  c->record_line = c->line;
  c->nf = 0;
  size_t b = 0;
  for (;;) {
    if (c->nf == CL_CSV_MAX_FIELDS) {
      cl_err_set(err, errlen, "%s:%zu: more than %d fields", c->name, c->record_line,
                 CL_CSV_MAX_FIELDS);
      return CL_EMALFORMED;
    }
    c->off[c->nf] = b;
    if (c->pos < c->len && t[c->pos] == '"') {
      c->pos++;
      for (;;) {
        if (c->pos >= c->len) {
          cl_err_set(err, errlen, "%s:%zu: quoted field not closed before the end of the file",
                     c->name, c->record_line);
          return CL_EMALFORMED;
        }
        char ch = t[c->pos];
        if (ch == '"') {
          if (c->pos + 1 < c->len && t[c->pos + 1] == '"') {
            c->buf[b++] = '"';
            c->pos += 2;
            continue;
          }
          c->pos++;
          break;
        }
        if (ch == '\n')
          c->line++;
        c->buf[b++] = ch;
        c->pos++;
      }
      if (c->pos < c->len && t[c->pos] != ',' && t[c->pos] != '\n' &&
          !(t[c->pos] == '\r' && c->pos + 1 < c->len && t[c->pos + 1] == '\n')) {
        cl_err_set(err, errlen, "%s:%zu: field %zu: characters after the closing quote", c->name,
                   c->line, c->nf + 1);
        return CL_EMALFORMED;
      }
    } else {
      while (c->pos < c->len && t[c->pos] != ',' && t[c->pos] != '\n') {
        char ch = t[c->pos];
        if (ch == '\r') {
          if (c->pos + 1 < c->len && t[c->pos + 1] == '\n')
            break;
          cl_err_set(err, errlen, "%s:%zu: carriage return not followed by a line feed", c->name,
                     c->line);
          return CL_EMALFORMED;
        }
        if (ch == '"') {
          cl_err_set(err, errlen, "%s:%zu: field %zu: quote inside an unquoted field", c->name,
                     c->line, c->nf + 1);
          return CL_EMALFORMED;
        }
        c->buf[b++] = ch;
        c->pos++;
      }
    }
    c->buf[b++] = '\0';
    c->nf++;
    if (c->pos >= c->len)
      return 1;
    if (t[c->pos] == ',') {
      c->pos++;
      /* A comma at the very end of the input ends the record with an empty field. */
      if (c->pos >= c->len) {
        c->off[c->nf] = b;
        c->buf[b++] = '\0';
        c->nf++;
        return 1;
      }
      continue;
    }
    c->pos += t[c->pos] == '\r' ? 2 : 1;
    c->line++;
    return 1;
  }
}

int cl_csv_open_mem(cl_csv **out, const char *name, const char *text, size_t len, char *err,
                    size_t errlen) {
  if (!out || !name || (!text && len))
    return CL_EINVAL;
  *out = NULL;
  if (len > CL_CSV_MAX_BYTES) {
    cl_err_set(err, errlen, "%s: larger than %u bytes", name, CL_CSV_MAX_BYTES);
    return CL_ETOOBIG;
  }
  if (memchr(text, '\0', len)) {
    const char *z = memchr(text, '\0', len);
    size_t line = 1;
    for (const char *p = text; p < z; p++)
      line += *p == '\n';
    cl_err_set(err, errlen, "%s:%zu: NUL byte in the input", name, line);
    return CL_EMALFORMED;
  }
  cl_csv *c = calloc(1, sizeof *c);
  if (!c)
    return CL_ENOMEM;
  c->name = strdup(name);
  c->text = malloc(len + 1);
  /* Every unescaped field is no longer than its text plus a terminator. */
  c->bufcap = len + CL_CSV_MAX_FIELDS + 2;
  c->buf = malloc(c->bufcap);
  if (!c->name || !c->text || !c->buf) {
    cl_csv_close(&c);
    return CL_ENOMEM;
  }
  if (len)
    memcpy(c->text, text, len);
  c->text[len] = '\0';
  c->len = len;
  c->line = 1;
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
    c->pos = 3;

  int rc = parse_record(c, err, errlen);
  if (rc == 0) {
    cl_err_set(err, errlen, "%s: empty file: a header row is required", name);
    rc = CL_EMALFORMED;
  }
  if (rc < 0) {
    cl_csv_close(&c);
    return rc;
  }
  c->header = calloc(c->nf, sizeof *c->header);
  if (!c->header) {
    cl_csv_close(&c);
    return CL_ENOMEM;
  }
  c->nheader = c->nf;
  c->header_line = c->record_line;
  for (size_t i = 0; i < c->nf; i++) {
    c->header[i] = strdup(c->buf + c->off[i]);
    if (!c->header[i]) {
      cl_csv_close(&c);
      return CL_ENOMEM;
    }
    /* Empty header names (trailing commas in some exports) cannot be looked
     * up, so only named columns must be unique. */
    for (size_t j = 0; j < i && c->header[i][0]; j++) {
      if (strcmp(c->header[i], c->header[j]) == 0) {
        char shown[200];
        cl_err_set(err, errlen, "%s:%zu: header: column %s appears twice", name, c->record_line,
                   show(c->header[i], shown, sizeof shown));
        cl_csv_close(&c);
        return CL_EMALFORMED;
      }
    }
  }
  c->nf = 0;
  *out = c;
  return CL_OK;
}

int cl_csv_open(cl_csv **out, const char *path, char *err, size_t errlen) {
  if (!out || !path)
    return CL_EINVAL;
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    cl_err_set(err, errlen, "%s: %s", path, strerror(errno));
    return CL_EIO;
  }
  /* Read in chunks: the size is checked as it grows, never taken from the
   * file system ahead of time (a pipe has none). */
  size_t cap = 65536, n = 0;
  char *data = malloc(cap);
  if (!data) {
    fclose(f);
    return CL_ENOMEM;
  }
  for (;;) {
    if (n == cap) {
      if (cap > CL_CSV_MAX_BYTES)
        break;
      /* One byte past the limit is enough to know the file is too big. */
      size_t ncap = cap * 2 > (size_t)CL_CSV_MAX_BYTES + 1 ? (size_t)CL_CSV_MAX_BYTES + 1 : cap * 2;
      char *nd = realloc(data, ncap);
      if (!nd) {
        free(data);
        fclose(f);
        return CL_ENOMEM;
      }
      data = nd;
      cap = ncap;
    }
    size_t r = fread(data + n, 1, cap - n, f);
    n += r;
    if (r == 0)
      break;
  }
  int ioerr = ferror(f);
  int saved = errno;
  fclose(f);
  if (ioerr) {
    free(data);
    cl_err_set(err, errlen, "%s: read error: %s", path, strerror(saved));
    return CL_EIO;
  }
  if (n > CL_CSV_MAX_BYTES) {
    free(data);
    cl_err_set(err, errlen, "%s: larger than %u bytes", path, CL_CSV_MAX_BYTES);
    return CL_ETOOBIG;
  }
  int rc = cl_csv_open_mem(out, path, data, n, err, errlen);
  free(data);
  return rc;
}

void cl_csv_close(cl_csv **cp) {
  if (!cp || !*cp)
    return;
  cl_csv *c = *cp;
  for (size_t i = 0; i < c->nheader; i++)
    free(c->header[i]);
  free(c->header);
  free(c->buf);
  free(c->text);
  free(c->name);
  free(c);
  *cp = NULL;
}

int cl_csv_column(const cl_csv *c, const char *name) {
  if (!c || !name || !name[0])
    return CL_ENOTFOUND;
  for (size_t i = 0; i < c->nheader; i++)
    if (strcmp(c->header[i], name) == 0)
      return (int)i;
  return CL_ENOTFOUND;
}

int cl_csv_require(const cl_csv *c, const char *const *names, size_t n, int *idx, char *err,
                   size_t errlen) {
  char missing[512] = "";
  size_t nmissing = 0, used = 0;
  for (size_t i = 0; i < n; i++) {
    idx[i] = cl_csv_column(c, names[i]);
    if (idx[i] >= 0)
      continue;
    int w = snprintf(missing + used, sizeof missing - used, "%s%s", nmissing ? ", " : "", names[i]);
    if (w > 0 && (size_t)w < sizeof missing - used)
      used += (size_t)w;
    nmissing++;
  }
  if (nmissing == 0)
    return CL_OK;
  cl_err_set(err, errlen, "%s:%zu: header: missing column%s %s", c->name, c->header_line,
             nmissing > 1 ? "s" : "", missing);
  return CL_EMALFORMED;
}

int cl_csv_next(cl_csv *c, char *err, size_t errlen) {
  int rc = parse_record(c, err, errlen);
  if (rc <= 0) {
    c->nf = 0;
    return rc;
  }
  if (c->nf != c->nheader) {
    cl_err_set(err, errlen, "%s:%zu: %zu field%s, but the header has %zu", c->name, c->record_line,
               c->nf, c->nf == 1 ? "" : "s", c->nheader);
    c->nf = 0;
    return CL_EMALFORMED;
  }
  if (++c->rows > CL_CSV_MAX_ROWS) {
    cl_err_set(err, errlen, "%s:%zu: more than %u records", c->name, c->record_line,
               CL_CSV_MAX_ROWS);
    c->nf = 0;
    return CL_ETOOBIG;
  }
  return 1;
}

const char *cl_csv_field(const cl_csv *c, int col) {
  if (!c || col < 0 || (size_t)col >= c->nf)
    return NULL;
  return c->buf + c->off[col];
}

size_t cl_csv_nfields(const cl_csv *c) { return c ? c->nf : 0; }
size_t cl_csv_line(const cl_csv *c) { return c ? c->record_line : 0; }
const char *cl_csv_name(const cl_csv *c) { return c ? c->name : ""; }

int cl_csv_number(const cl_csv *c, int col, double min, double max, int min_exclusive, double *out,
                  char *err, size_t errlen) {
  const char *s = cl_csv_field(c, col);
  if (!s)
    return CL_EINVAL;
  const char *cname = c->header[col];
  char shown[200];
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  /* strtod skips leading space; a number here is the whole field and nothing else. */
  if (s[0] == '\0' || s[0] == ' ' || s[0] == '\t' || end == s || *end != '\0') {
    cl_err_set(err, errlen, "%s:%zu: column %s: %s is not a number", c->name, c->record_line, cname,
               show(s, shown, sizeof shown));
    return CL_EMALFORMED;
  }
  if (!isfinite(v)) {
    cl_err_set(err, errlen, "%s:%zu: column %s: %s is not a finite number", c->name, c->record_line,
               cname, show(s, shown, sizeof shown));
    return CL_EMALFORMED;
  }
  if (v > max || v < min || (min_exclusive && v == min)) {
    cl_err_set(err, errlen, "%s:%zu: column %s: %s is out of range %s%g, %g]", c->name,
               c->record_line, cname, show(s, shown, sizeof shown), min_exclusive ? "(" : "[", min,
               max);
    return CL_EMALFORMED;
  }
  *out = v;
  return CL_OK;
}

int cl_csv_name_field(const cl_csv *c, int col, const char **out, char *err, size_t errlen) {
  const char *s = cl_csv_field(c, col);
  if (!s)
    return CL_EINVAL;
  if (!s[0]) {
    cl_err_set(err, errlen, "%s:%zu: column %s: empty name", c->name, c->record_line,
               c->header[col]);
    return CL_EMALFORMED;
  }
  *out = s;
  return CL_OK;
}

/* ---- Loaders --------------------------------------------------------------- */

/* Growable array of fixed-size rows; doubling from a small start, bounded by
 * CL_CSV_MAX_ROWS through cl_csv_next. */
static int grow(void **v, size_t *cap, size_t n, size_t elem) {
  if (n < *cap)
    return CL_OK;
  size_t ncap = *cap ? *cap * 2 : 16;
  void *nv = realloc(*v, ncap * elem);
  if (!nv)
    return CL_ENOMEM;
  *v = nv;
  *cap = ncap;
  return CL_OK;
}

typedef struct {
  const char *name;
  size_t line;
} name_ref;

static int cmp_name_ref(const void *a, const void *b) {
  const name_ref *x = a, *y = b;
  int r = strcmp(x->name, y->name);
  if (r)
    return r;
  return x->line < y->line ? -1 : x->line > y->line;
}

/* Finds a repeated name among n (sorting copies of the pointers). Returns 0,
 * CL_EMALFORMED with err naming both lines, or CL_ENOMEM. */
static int check_unique(const char *file, const char *what, name_ref *refs, size_t n, char *err,
                        size_t errlen) {
  qsort(refs, n, sizeof *refs, cmp_name_ref);
  for (size_t i = 1; i < n; i++) {
    if (strcmp(refs[i].name, refs[i - 1].name) == 0) {
      char shown[200];
      cl_err_set(err, errlen, "%s:%zu: column name: duplicate %s name %s (first on line %zu)", file,
                 refs[i].line, what, show(refs[i].name, shown, sizeof shown), refs[i - 1].line);
      return CL_EMALFORMED;
    }
  }
  return CL_OK;
}

/* What a loader reads: name/lat/lon/rtt_ms or a/b/rtt_ms. */
enum { KIND_LANDMARKS, KIND_POSITIONS, KIND_RTTS };

/*
 * Shared loader. Rows are stored in *out as the struct of the kind; on any
 * error the partial array is freed. Returns as cl_csv_load_*.
 */
static int load(int kind, const char *path, void **out, size_t *nout, char *err, size_t errlen) {
  static const char *const lm_cols[] = {"name", "lat", "lon", "rtt_ms"};
  static const char *const pos_cols[] = {"name", "lat", "lon"};
  static const char *const rtt_cols[] = {"a", "b", "rtt_ms"};
  const char *const *cols = kind == KIND_LANDMARKS   ? lm_cols
                            : kind == KIND_POSITIONS ? pos_cols
                                                     : rtt_cols;
  size_t ncols = kind == KIND_POSITIONS ? 3 : kind == KIND_LANDMARKS ? 4 : 3;
  size_t elem = kind == KIND_LANDMARKS   ? sizeof(cl_csv_landmark)
                : kind == KIND_POSITIONS ? sizeof(cl_csv_position)
                                         : sizeof(cl_csv_rtt);
  *out = NULL;
  *nout = 0;
  cl_csv *c = NULL;
  int rc = cl_csv_open(&c, path, err, errlen);
  if (rc < 0)
    return rc;
  int idx[4];
  rc = cl_csv_require(c, cols, ncols, idx, err, errlen);
  void *v = NULL;
  size_t n = 0, cap = 0;
  while (rc == CL_OK) {
    int r = cl_csv_next(c, err, errlen);
    if (r <= 0) {
      rc = r;
      break;
    }
    if ((rc = grow(&v, &cap, n, elem)) < 0)
      break;
    size_t line = cl_csv_line(c);
    if (kind == KIND_RTTS) {
      const char *a = NULL, *b = NULL;
      double rtt = 0;
      if ((rc = cl_csv_name_field(c, idx[0], &a, err, errlen)) < 0 ||
          (rc = cl_csv_name_field(c, idx[1], &b, err, errlen)) < 0 ||
          (rc = cl_csv_number(c, idx[2], 0, 1e9, 1, &rtt, err, errlen)) < 0)
        break;
      cl_csv_rtt *row = (cl_csv_rtt *)v + n;
      row->a = strdup(a);
      row->b = strdup(b);
      row->rtt_ms = rtt;
      row->line = line;
      n++;
      if (!row->a || !row->b)
        rc = CL_ENOMEM;
    } else {
      const char *name = NULL;
      double lat = 0, lon = 0, rtt = 0;
      if ((rc = cl_csv_name_field(c, idx[0], &name, err, errlen)) < 0 ||
          (rc = cl_csv_number(c, idx[1], -90, 90, 0, &lat, err, errlen)) < 0 ||
          (rc = cl_csv_number(c, idx[2], -180, 180, 0, &lon, err, errlen)) < 0)
        break;
      if (kind == KIND_LANDMARKS) {
        if ((rc = cl_csv_number(c, idx[3], 0, 1e9, 1, &rtt, err, errlen)) < 0)
          break;
        cl_csv_landmark *row = (cl_csv_landmark *)v + n;
        *row = (cl_csv_landmark){strdup(name), lat, lon, rtt, line};
        n++;
        if (!row->name)
          rc = CL_ENOMEM;
      } else {
        cl_csv_position *row = (cl_csv_position *)v + n;
        *row = (cl_csv_position){strdup(name), lat, lon, line};
        n++;
        if (!row->name)
          rc = CL_ENOMEM;
      }
    }
  }
  cl_csv_close(&c);
  if (rc == CL_OK && kind != KIND_RTTS && n > 1) {
    name_ref *refs = malloc(n * sizeof *refs);
    if (!refs) {
      rc = CL_ENOMEM;
    } else {
      for (size_t i = 0; i < n; i++) {
        if (kind == KIND_LANDMARKS)
          refs[i] = (name_ref){((cl_csv_landmark *)v)[i].name, ((cl_csv_landmark *)v)[i].line};
        else
          refs[i] = (name_ref){((cl_csv_position *)v)[i].name, ((cl_csv_position *)v)[i].line};
      }
      rc = check_unique(path, "landmark", refs, n, err, errlen);
      free(refs);
    }
  }
  if (rc < 0) {
    if (kind == KIND_LANDMARKS) {
      cl_csv_landmark *p = v;
      cl_csv_landmarks_free(&p, n);
    } else if (kind == KIND_POSITIONS) {
      cl_csv_position *p = v;
      cl_csv_positions_free(&p, n);
    } else {
      cl_csv_rtt *p = v;
      cl_csv_rtts_free(&p, n);
    }
    return rc;
  }
  *out = v;
  *nout = n;
  return CL_OK;
}

int cl_csv_load_landmarks(const char *path, cl_csv_landmark **out, size_t *n, char *err,
                          size_t errlen) {
  if (!path || !out || !n)
    return CL_EINVAL;
  void *v = NULL;
  int rc = load(KIND_LANDMARKS, path, &v, n, err, errlen);
  *out = v;
  return rc;
}

int cl_csv_load_positions(const char *path, cl_csv_position **out, size_t *n, char *err,
                          size_t errlen) {
  if (!path || !out || !n)
    return CL_EINVAL;
  void *v = NULL;
  int rc = load(KIND_POSITIONS, path, &v, n, err, errlen);
  *out = v;
  return rc;
}

int cl_csv_load_rtts(const char *path, cl_csv_rtt **out, size_t *n, char *err, size_t errlen) {
  if (!path || !out || !n)
    return CL_EINVAL;
  void *v = NULL;
  int rc = load(KIND_RTTS, path, &v, n, err, errlen);
  *out = v;
  return rc;
}

void cl_csv_landmarks_free(cl_csv_landmark **v, size_t n) {
  if (!v || !*v)
    return;
  for (size_t i = 0; i < n; i++)
    free((*v)[i].name);
  free(*v);
  *v = NULL;
}

void cl_csv_positions_free(cl_csv_position **v, size_t n) {
  if (!v || !*v)
    return;
  for (size_t i = 0; i < n; i++)
    free((*v)[i].name);
  free(*v);
  *v = NULL;
}

void cl_csv_rtts_free(cl_csv_rtt **v, size_t n) {
  if (!v || !*v)
    return;
  for (size_t i = 0; i < n; i++) {
    free((*v)[i].a);
    free((*v)[i].b);
  }
  free(*v);
  *v = NULL;
}
