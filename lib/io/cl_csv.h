/*
 * A small, strict CSV reader for the offline inputs of chiploc: landmark
 * rows for `chiploc locate`, landmark positions and landmark-to-landmark RTTs
 * for the cross-check. Not a general library.
 *
 * Format (RFC 4180): comma-separated fields; a field may be quoted with
 * double quotes, a quote inside a quoted field is written twice, a quoted
 * field may span lines. Lines end in LF or CRLF; the last line may lack its
 * end. A UTF-8 byte order mark at the very start is skipped. Completely empty
 * lines are skipped. The first record is the header: it is required, and
 * columns are found by their header name (exact, case-sensitive match). Every
 * record must have as many fields as the header. Fields are never trimmed.
 *
 * Errors are reported as `FILE:LINE: problem` (LINE is the line on which the
 * record starts), with `column NAME:` when a field is at fault, e.g.
 *     landmarks.csv:7: column rtt_ms: "abc" is not a number
 */
#ifndef CL_CSV_H
#define CL_CSV_H

#include <stddef.h>

/* Limits checked before anything is allocated from the input's size. */
#define CL_CSV_MAX_BYTES (256u * 1024u * 1024u) /* whole file */
#define CL_CSV_MAX_FIELDS 256                   /* fields per record */
#define CL_CSV_MAX_ROWS 10000000u               /* data records */

typedef struct cl_csv cl_csv;

/*
 * Reads the file at path (at most CL_CSV_MAX_BYTES) and its header. The name
 * used in error messages is the path as given. Returns 0, CL_EIO (cannot
 * read; err says why), CL_ETOOBIG, CL_EMALFORMED (no header, bad quoting,
 * duplicate column name) or CL_ENOMEM. On success *out is owned by the
 * caller (cl_csv_close).
 */
int cl_csv_open(cl_csv **out, const char *path, char *err, size_t errlen);
/* Same over text already in memory (copied); name is used in messages. */
int cl_csv_open_mem(cl_csv **out, const char *name, const char *text, size_t len, char *err,
                    size_t errlen);
void cl_csv_close(cl_csv **c);

/* Column index of the header named name, or CL_ENOTFOUND. */
int cl_csv_column(const cl_csv *c, const char *name);
/*
 * Looks up n required columns at once; idx[i] receives the index of
 * names[i]. Returns 0 or CL_EMALFORMED with err naming every missing column
 * (`FILE:1: header: missing columns rtt_ms, lon`).
 */
int cl_csv_require(const cl_csv *c, const char *const *names, size_t n, int *idx, char *err,
                   size_t errlen);

/*
 * Advances to the next data record. Returns 1 if there is one, 0 at the end,
 * CL_EMALFORMED (bad quoting, wrong field count: err names the line) or
 * CL_ETOOBIG (more than CL_CSV_MAX_ROWS records).
 */
int cl_csv_next(cl_csv *c, char *err, size_t errlen);
/* Field col of the current record (NUL-terminated, valid until the next
 * cl_csv_next), or NULL if col is out of range. */
const char *cl_csv_field(const cl_csv *c, int col);
size_t cl_csv_nfields(const cl_csv *c);
/* Line on which the current record starts (1-based; the header is line 1
 * unless blank lines precede it). */
size_t cl_csv_line(const cl_csv *c);
/* The name used in messages. */
const char *cl_csv_name(const cl_csv *c);

/*
 * Field col as a finite number in [min, max] (strtod over the whole field,
 * no surrounding spaces). Returns 0 or CL_EMALFORMED with err such as
 * `FILE:LINE: column lat: "91" is out of range [-90, 90]`. When min_exclusive
 * is set, the field must be strictly greater than min.
 */
int cl_csv_number(const cl_csv *c, int col, double min, double max, int min_exclusive, double *out,
                  char *err, size_t errlen);
/* Field col as a non-empty string (no copy). Returns 0 or CL_EMALFORMED. */
int cl_csv_name_field(const cl_csv *c, int col, const char **out, char *err, size_t errlen);

/* ---- The three input files ------------------------------------------------ */

/* A landmark row for locate: name,lat,lon,rtt_ms (rtt_ms > 0). */
typedef struct {
  char *name;
  double lat, lon, rtt_ms;
  size_t line;
} cl_csv_landmark;

/* A position row for the cross-check: name,lat,lon. */
typedef struct {
  char *name;
  double lat, lon;
  size_t line;
} cl_csv_position;

/* An RTT row for the cross-check: a,b,rtt_ms (rtt_ms > 0). */
typedef struct {
  char *a, *b;
  double rtt_ms;
  size_t line;
} cl_csv_rtt;

/*
 * Loaders for the three files. Extra columns are ignored; missing columns,
 * empty names, bad numbers, out-of-range coordinates and (for landmarks and
 * positions) duplicate names are CL_EMALFORMED with err naming file, line and
 * column. CL_EIO, CL_ETOOBIG, CL_ENOMEM as for cl_csv_open. On success the
 * caller frees the array with the matching _free function; on failure *out
 * is NULL and *n is 0.
 */
int cl_csv_load_landmarks(const char *path, cl_csv_landmark **out, size_t *n, char *err,
                          size_t errlen);
int cl_csv_load_positions(const char *path, cl_csv_position **out, size_t *n, char *err,
                          size_t errlen);
int cl_csv_load_rtts(const char *path, cl_csv_rtt **out, size_t *n, char *err, size_t errlen);
void cl_csv_landmarks_free(cl_csv_landmark **v, size_t n);
void cl_csv_positions_free(cl_csv_position **v, size_t n);
void cl_csv_rtts_free(cl_csv_rtt **v, size_t n);

#endif
