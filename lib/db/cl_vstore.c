/* The verifier's SQL (see cl_vstore.h). */
#include "cl_vstore.h"
#include "cl_region_geojson.h"
#include "cl_err.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VERIFY_LOCK_BASE 7163091138909266800LL /* distinct from the migration lock */
/* The bucket modulus in SQL text; the schema's CHECK on
 * verifier_claims.bucket holds the same number. */
#define CL_VSTORE_BUCKETS_TEXT "64"
_Static_assert(CL_VSTORE_BUCKETS == 64, "CL_VSTORE_BUCKETS_TEXT and schema 0010 say 64");

/* A timestamptz as unix ns (bigint), clamped to what 64 bits of ns hold:
 * an infinite or far time written by someone with the rights to do so
 * must not fail the query, and so every round. NULL stays NULL (least and
 * greatest alone would turn it into the clamp). SQL text around a column. */
#define UNIX_NS(col)                                                                        \
  "(CASE WHEN " col " IS NULL THEN NULL ELSE (extract(epoch FROM greatest(least(" col ", "     \
  "'2262-04-11 00:00:00+00'::timestamptz), '1970-01-01 00:00:00+00'::timestamptz)) * 1e9)" \
  "::bigint END)"

/* Writes "what: server message" into err, clears r (which may be NULL) and
 * returns code. */
static int fail(PGresult *r, PGconn *c, int code, char *err, size_t errlen, const char *what) {
  cl_err_set(err, errlen, "%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
  if (r) PQclear(r);
  return code;
}

static int map_state(PGresult *r) {
  const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  if (!st) return CL_EDB;
  if (strcmp(st, "23505") == 0) return CL_EEXIST;
  if (strcmp(st, "42501") == 0) return CL_EPERM;
  return CL_EDB;
}

static void hexbytea(char *out, const uint8_t *b, size_t n) {
  out[0] = '\\', out[1] = 'x';
  cl_hex_encode(out + 2, b, n);
}

static int bytea_col(PGresult *r, int row, int col, uint8_t *out, size_t n) {
  size_t len = 0;
  unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &len);
  int ok = b && len == n;
  if (ok) memcpy(out, b, n);
  PQfreemem(b);
  return ok ? CL_OK : CL_EMALFORMED;
}

int cl_vstore_verifier_add(cl_store *s, const char *name, const uint8_t pk[CL_PK_LEN],
                           int64_t *id, char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  char hex[2 + 2 * CL_PK_LEN + 1];
  hexbytea(hex, pk, CL_PK_LEN);
  const char *v[2] = {name, hex};
  /* The friendly refusals first (a key of a chip or landmark, a name in
   * use); the unique constraints still decide a race. */
  int rc = cl_store_key_free(s, pk, "verifier", err, errlen);
  if (rc != CL_OK) return rc;
  PGresult *r = PQexecParams(c, "SELECT 1 FROM verifiers WHERE name = $1::text", 1, NULL, v, NULL,
                             NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "verifier add");
  int taken = PQntuples(r) > 0;
  PQclear(r);
  if (taken) {
    cl_err_set(err, errlen,
               "verifier %s already exists; names are unique: give the new key a new name", name);
    return CL_EEXIST;
  }
  r = PQexecParams(c,
                   "INSERT INTO verifiers (name, public_key) VALUES ($1::text, $2::bytea) "
                   "RETURNING id",
                   2, NULL, v, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "verifier add");
  *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return CL_OK;
}

int cl_vstore_verifier_find(cl_store *s, const uint8_t pk[CL_PK_LEN], int64_t *id, char *err,
                            size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  char hex[2 + 2 * CL_PK_LEN + 1];
  hexbytea(hex, pk, CL_PK_LEN);
  const char *v[1] = {hex};
  PGresult *r = PQexecParams(c, "SELECT id FROM verifiers WHERE public_key = $1::bytea", 1, NULL,
                             v, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "verifier lookup");
  if (PQntuples(r) == 0) {
    PQclear(r);
    char pkhex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(pk, pkhex);
    cl_err_set(err, errlen,
               "verifier key %s is not registered; run: chiploc verifier add --pubkey %s ...",
               pkhex, pkhex);
    return CL_ENOTFOUND;
  }
  *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return CL_OK;
}

int cl_vstore_verifier_bind(cl_store *s, const char *name, const char *role, char *err,
                            size_t errlen) {
  return cl_store_bind(s, CL_STORE_BIND_VERIFIER, name, role, err, errlen);
}

int cl_vstore_verifier_may_write(cl_store *s, int64_t id, char *err, size_t errlen) {
  return cl_store_may_write(s, CL_STORE_BIND_VERIFIER, id, err, errlen);
}

int cl_vstore_lock(cl_store *s, int64_t verifier_id, char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  char key[32];
  snprintf(key, sizeof key, "%lld", (long long)(VERIFY_LOCK_BASE + verifier_id));
  const char *v[1] = {key};
  PGresult *r = PQexecParams(c, "SELECT pg_advisory_xact_lock($1::bigint)", 1, NULL, v, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "round lock");
  PQclear(r);
  return CL_OK;
}

static cl_vchip *find_chip(cl_vworld *w, int64_t id) {
  size_t lo = 0, hi = w->n_chips;
  while (lo < hi) { /* chips are loaded ordered by id */
    size_t mid = (lo + hi) / 2;
    if (w->chips[mid].in.chip_id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo < w->n_chips && w->chips[lo].in.chip_id == id ? &w->chips[lo] : NULL;
}

void cl_vworld_free(cl_vworld *w) {
  for (size_t i = 0; i < w->n_chips; i++) {
    cl_vchip *c = &w->chips[i];
    free(c->serial);
    for (size_t j = 0; j < c->n_codes; j++) free(c->codes[j]);
    free(c->codes);
    free(c->members);
    free(c->region_digests);
    free(c->mins);
  }
  free(w->chips);
  for (size_t i = 0; i < w->n_landmarks; i++) free(w->landmarks[i].name);
  free(w->landmarks);
  free(w->links);
  if (!w->regions_borrowed) {
    free(w->region_digests);
    cl_region_set_free(&w->regions);
  }
  memset(w, 0, sizeof *w);
}

/*
 * ---- loading a round's inputs ---------------------------------------------
 *
 * One loader per query, run in the order below by cl_vstore_load (a loader
 * that reads what another filled says so). Each fills its part of the
 * world and returns 0, or a CL_* code with err set, and clears its own
 * result. A loader that fails leaves the world consistent for
 * cl_vworld_free: a count (n_chips, n_codes, n_landmarks, n_links, n_mins)
 * covers only entries whose owned pointers are set or NULL, so
 * cl_vworld_free releases exactly what was allocated, and cl_vstore_load
 * calls it before it returns an error.
 */

/* Runs a query that returns rows. On success *out holds the result, which
 * the caller clears; on failure nothing is left allocated, err reads
 * "what: server message" and the code is map_state's. */
static int query_rows(PGconn *c, const char *what, const char *sql, int nparams,
                      const char *const *params, int binary, PGresult **out, char *err,
                      size_t errlen) {
  PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, binary);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    *out = NULL;
    return fail(r, c, map_state(r), err, errlen, what);
  }
  *out = r;
  return CL_OK;
}

/* Sets err to "what: out of memory" and returns CL_ENOMEM. */
static int no_memory(const char *what, char *err, size_t errlen) {
  cl_err_set(err, errlen, "%s: out of memory", what);
  return CL_ENOMEM;
}

/* One zeroed entry of size bytes per row of r, at least one so that an
 * empty result is not taken for a failed allocation; NULL when out of
 * memory. Zeroed entries own nothing, so a count may cover them at once. */
static void *row_array(PGresult *r, size_t size) {
  size_t n = (size_t)PQntuples(r);
  return calloc(n ? n : 1, size);
}

/* The loaded chip whose id is in column 0 of row i, or NULL for a chip that
 * is not active (the row is skipped then). */
static cl_vchip *row_chip(cl_vworld *w, PGresult *r, int i) {
  return find_chip(w, strtoll(PQgetvalue(r, i, 0), NULL, 10));
}

/* Fills w->chips with every active chip (id, key, serial, site, enrolment),
 * or those of the buckets named (an integer[] literal; NULL: all), ordered by
 * id, which find_chip relies on. CL_EMALFORMED for a key of the wrong size,
 * CL_ENOMEM. */
static int load_chips(PGconn *c, cl_vworld *w, const char *buckets, char *err, size_t errlen) {
  PGresult *r;
  const char *v[1] = {buckets};
  int rc = query_rows(c, "load chips",
                      buckets ? "SELECT id, public_key, serial, site_lat, site_lon, "
                                UNIX_NS("enrolled_at") " FROM chips WHERE active "
                                "AND (id % " CL_VSTORE_BUCKETS_TEXT ")::integer = ANY($1::integer[]) "
                                "ORDER BY id"
                              : "SELECT id, public_key, serial, site_lat, site_lon, "
                                UNIX_NS("enrolled_at") " FROM chips WHERE active ORDER BY id",
                      buckets ? 1 : 0, buckets ? v : NULL, 0, &r, err, errlen);
  if (rc != CL_OK) return rc;
  if (!(w->chips = row_array(r, sizeof *w->chips))) {
    PQclear(r);
    return no_memory("load chips", err, errlen);
  }
  w->n_chips = (size_t)PQntuples(r);
  for (size_t i = 0; i < w->n_chips; i++) {
    cl_vchip *ch = &w->chips[i];
    ch->in.chip_id = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
    if (bytea_col(r, (int)i, 1, ch->in.pk, CL_PK_LEN) != CL_OK) {
      cl_err_set(err, errlen, "chip %lld: bad public key", (long long)ch->in.chip_id);
      rc = CL_EMALFORMED;
      break;
    }
    if (!(ch->serial = strdup(PQgetvalue(r, (int)i, 2)))) {
      rc = no_memory("load chips", err, errlen);
      break;
    }
    ch->in.site_lat = strtod(PQgetvalue(r, (int)i, 3), NULL);
    ch->in.site_lon = strtod(PQgetvalue(r, (int)i, 4), NULL);
    ch->in.enrolled_ns = strtoll(PQgetvalue(r, (int)i, 5), NULL, 10);
  }
  PQclear(r);
  return rc;
}

/* Fills w->regions with the regions any chip is allowed in, as one region
 * set (left empty when no chip has one). CL_EMALFORMED for GeoJSON the
 * region parser refuses; on that error the set is already released. */
static int load_regions(PGconn *c, cl_vworld *w, char *err, size_t errlen) {
  PGresult *r;
  int rc = query_rows(
      c, "load regions",
      "SELECT json_build_object('type', 'FeatureCollection', 'features', "
      "coalesce(json_agg(json_build_object('type', 'Feature', 'properties', "
      "json_build_object('code', code), 'geometry', geojson)), '[]'::json))::text "
      "FROM regions WHERE code IN (SELECT region_code FROM chip_regions)",
      0, NULL, 0, &r, err, errlen);
  if (rc != CL_OK) return rc;
  const char *text = PQgetvalue(r, 0, 0);
  if (strstr(text, "\"features\" : []") || strstr(text, "\"features\":[]")) {
    PQclear(r); /* no chip has allowed regions */
    return CL_OK;
  }
  rc = cl_region_set_parse_geojson(&w->regions, text, strlen(text), "code", err, errlen);
  PQclear(r);
  if (rc != CL_OK) return rc;
  /* The geometry each attestation signs a digest of: the parsed regions,
   * hashed once per round. */
  if (!(w->region_digests = calloc(w->regions.n ? w->regions.n : 1, CL_HASH_LEN)))
    return no_memory("load regions", err, errlen);
  for (size_t i = 0; i < w->regions.n && rc == CL_OK; i++)
    if ((rc = cl_region_digest(w->regions.regions[i], w->region_digests[i])) != CL_OK)
      cl_err_set(err, errlen, "load regions: digest of %s: %s",
                 cl_region_code(w->regions.regions[i]), cl_strerror(rc));
  return rc;
}

/* Fills each loaded chip's allowed codes (owned copies) and their regions
 * (borrowed from w->regions, so load_regions runs first), reading those of
 * the chips of the bigint[] literal chips (NULL: all). CL_EMALFORMED for a
 * code without geometry, CL_ENOMEM. */
static int load_chip_regions(PGconn *c, cl_vworld *w, const char *chips, char *err,
                             size_t errlen) {
  PGresult *r;
  const char *v[1] = {chips};
  int rc = query_rows(c, "load chip regions",
                      chips ? "SELECT chip_id, region_code FROM chip_regions "
                              "WHERE chip_id = ANY($1::bigint[]) ORDER BY chip_id, region_code"
                            : "SELECT chip_id, region_code FROM chip_regions "
                              "ORDER BY chip_id, region_code",
                      chips ? 1 : 0, chips ? v : NULL, 0, &r, err, errlen);
  if (rc != CL_OK) return rc;
  for (int i = 0; i < PQntuples(r); i++) {
    cl_vchip *ch = row_chip(w, r, i);
    if (!ch) continue;
    /* Each array keeps what it had if the other one cannot grow. */
    char **nc = realloc(ch->codes, (ch->n_codes + 1) * sizeof *nc);
    if (nc) ch->codes = nc;
    const cl_region **nm = realloc(ch->members, (ch->n_codes + 1) * sizeof *nm);
    if (nm) ch->members = nm;
    uint8_t(*nd)[CL_HASH_LEN] = realloc(ch->region_digests, (ch->n_codes + 1) * sizeof *nd);
    if (nd) ch->region_digests = nd;
    char *code = nc && nm && nd ? strdup(PQgetvalue(r, i, 1)) : NULL;
    if (!code) {
      rc = no_memory("load chip regions", err, errlen);
      break;
    }
    /* Counted before the lookup, so the copy is freed if the lookup fails. */
    size_t k = ch->n_codes++;
    ch->codes[k] = code;
    ch->members[k] = cl_region_set_find(&w->regions, code);
    if (!ch->members[k]) {
      cl_err_set(err, errlen, "region %s of chip %s has no geometry", code, ch->serial);
      rc = CL_EMALFORMED;
      break;
    }
    for (size_t j = 0; j < w->regions.n; j++)
      if (w->regions.regions[j] == ch->members[k])
        memcpy(ch->region_digests[k], w->region_digests[j], CL_HASH_LEN);
  }
  PQclear(r);
  return rc;
}

/* Fills w->landmarks with every landmark (id, name, position, key, its
 * retirement or revocation, whether a landmark_misplaced or
 * landmark_bad_records alert is open), ordered by id, which find_landmark
 * relies on. CL_EMALFORMED for a key of the wrong size, CL_ENOMEM. */
static int load_landmarks(PGconn *c, cl_vworld *w, char *err, size_t errlen) {
  PGresult *r;
  int rc = query_rows(
      c, "load landmarks",
      "SELECT l.id, l.name, l.lat, l.lon, EXISTS (SELECT 1 FROM alerts a WHERE "
      "a.landmark_id = l.id AND a.kind = 'landmark_misplaced' AND a.cleared_at IS NULL), "
      "l.public_key, " UNIX_NS("l.retired_at") ", "
      "l.retire_kind = 'revoked', EXISTS (SELECT 1 FROM alerts a WHERE "
      "a.landmark_id = l.id AND a.kind = 'landmark_bad_records' AND a.cleared_at IS NULL) "
      "FROM landmarks l ORDER BY l.id",
      0, NULL, 0, &r, err, errlen);
  if (rc != CL_OK) return rc;
  if (!(w->landmarks = row_array(r, sizeof *w->landmarks))) {
    PQclear(r);
    return no_memory("load landmarks", err, errlen);
  }
  w->n_landmarks = (size_t)PQntuples(r);
  for (size_t i = 0; i < w->n_landmarks; i++) {
    cl_vlandmark *l = &w->landmarks[i];
    l->id = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
    if (!(l->name = strdup(PQgetvalue(r, (int)i, 1)))) {
      rc = no_memory("load landmarks", err, errlen);
      break;
    }
    l->lat = strtod(PQgetvalue(r, (int)i, 2), NULL);
    l->lon = strtod(PQgetvalue(r, (int)i, 3), NULL);
    l->open_misplaced = PQgetvalue(r, (int)i, 4)[0] == 't';
    if (bytea_col(r, (int)i, 5, l->pk, CL_PK_LEN) != CL_OK) {
      cl_err_set(err, errlen, "landmark %lld: bad public key", (long long)l->id);
      rc = CL_EMALFORMED;
      break;
    }
    if (!PQgetisnull(r, (int)i, 6)) {
      /* Retired at or before 1970 counts as retired since the epoch's
       * first ns (0 would mean in force). */
      l->key.retired_ns = strtoull(PQgetvalue(r, (int)i, 6), NULL, 10);
      if (l->key.retired_ns == 0) l->key.retired_ns = 1;
      l->key.revoked = PQgetvalue(r, (int)i, 7)[0] == 't';
    }
    l->open_bad_records = PQgetvalue(r, (int)i, 8)[0] == 't';
  }
  PQclear(r);
  return rc;
}

/* A binary int8 field (network byte order); CL_EMALFORMED if it is not one. */
static int int8_col(PGresult *r, int row, int col, int64_t *out) {
  if (PQgetlength(r, row, col) != 8 || PQgetisnull(r, row, col)) return CL_EMALFORMED;
  const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  *out = (int64_t)v;
  return CL_OK;
}

static const cl_vlandmark *find_landmark(const cl_vworld *w, int64_t id) {
  size_t lo = 0, hi = w->n_landmarks;
  while (lo < hi) { /* landmarks are loaded ordered by id */
    size_t mid = (lo + hi) / 2;
    if (w->landmarks[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo < w->n_landmarks && w->landmarks[lo].id == id ? &w->landmarks[lo] : NULL;
}

/*
 * The signed-row columns shared by the measurement and link queries, from
 * column 2 on: 2 id, 3 inserted_at (unix ns), then the record columns of
 * CL_STORE_RECORD_COLUMNS (ROW_RECORD on), which cl_store_row_measurement
 * reads. Columns 0 and 1 name the chip (or peer) and the landmark, which
 * the caller resolves. The queries read protocol 2 rows only: rows of
 * protocol 1 (kept in a database upgraded from it) carry no record this
 * version can verify, so they are no candidates and no refusals.
 */
#define SIGNED_ROW_COLUMNS(t) t ".id, " UNIX_NS(t ".inserted_at") ", " CL_STORE_RECORD_COLUMNS(t)
#define ROW_RECORD 4
#define SIGNED_ROW_NFIELDS (ROW_RECORD + CL_STORE_RECORD_NCOLS)

/* Rebuilds the record of row k with the keys the row names, its id and the
 * database's insert time. CL_EMALFORMED (err naming the row and the column)
 * for any field of the wrong size or a value the record cannot hold. */
static int signed_row(PGresult *r, int k, const uint8_t landmark_pk[CL_PK_LEN],
                      const uint8_t chip_pk[CL_PK_LEN], cl_measurement *m, int64_t *id,
                      uint64_t *inserted_ns, char *err, size_t errlen) {
  int64_t ins;
  if (int8_col(r, k, 2, id) || int8_col(r, k, 3, &ins) || ins < 0) {
    cl_err_set(err, errlen, "row %d: a bad id or inserted_at", k);
    return CL_EMALFORMED;
  }
  *inserted_ns = (uint64_t)ins;
  const cl_store_cols cols = cl_store_cols_at(ROW_RECORD);
  char why[160];
  if (cl_store_row_measurement(r, k, &cols, landmark_pk, chip_pk, m, why, sizeof why) != CL_OK) {
    cl_err_set(err, errlen, "row id %lld: %s", (long long)*id, why);
    return CL_EMALFORMED;
  }
  return CL_OK;
}

/* Judges one row and counts a refusal against the landmark it names. */
static int believe(cl_vworld *w, cl_evcache *ev, cl_vlandmark *l, const cl_measurement *m,
                   uint64_t inserted_ns) {
  w->judged++;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  cl_ev_reason why = cl_evidence_judge(ev, m, &l->key, inserted_ns);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  w->judge_ns += (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
  if (why == CL_EV_OK) return 1;
  l->rejected[why]++;
  w->rejected[why]++;
  return 0;
}

static cl_vlandmark *find_landmark_rw(cl_vworld *w, int64_t id) {
  return (cl_vlandmark *)find_landmark(w, id);
}

/*
 * Fills each chip's minima from the binary result of the measurement query
 * (chip_id, landmark_id, then SIGNED_ROW_COLUMNS; ordered by chip, landmark
 * and RTT): per landmark, the first row the verifier believes. Rows of chips
 * not loaded, or of landmarks not loaded, are skipped. CL_EMALFORMED for a
 * field of the wrong size, CL_ENOMEM. A chip's mins, once allocated, stay
 * with it (n_mins counts the filled ones) for cl_vworld_free.
 */
/* (chip, landmark) pairs whose candidates were all refused: they get a
 * second, deeper read. Text arrays for the query, built as pairs come. */
typedef struct {
  /* chip ids, landmark ids, and the RTT and id of the last row read */
  char *col[4];
  size_t len[4], cap[4], n;
  int oom;
} pair_list;

static void pl_add_one(char **buf, size_t *len, size_t *cap, int64_t v, int first, int *oom) {
  char t[32];
  int k = snprintf(t, sizeof t, "%s%lld", first ? "{" : ",", (long long)v);
  if (*len + (size_t)k + 2 > *cap) {
    size_t nc = *cap ? 2 * *cap : 256;
    while (nc < *len + (size_t)k + 2) nc *= 2;
    char *nb = realloc(*buf, nc);
    if (!nb) {
      *oom = 1;
      return;
    }
    *buf = nb, *cap = nc;
  }
  memcpy(*buf + *len, t, (size_t)k);
  *len += (size_t)k;
  (*buf)[*len] = '\0';
}

static void pl_add(pair_list *p, int64_t chip, int64_t landmark, int64_t rtt, int64_t id) {
  int64_t v[4] = {chip, landmark, rtt, id};
  for (int k = 0; k < 4 && !p->oom; k++)
    pl_add_one(&p->col[k], &p->len[k], &p->cap[k], v[k], p->n == 0, &p->oom);
  if (!p->oom) p->n++;
}

static void pl_free(pair_list *p) {
  for (int k = 0; k < 4; k++) free(p->col[k]);
  memset(p, 0, sizeof *p);
}

static int fill_minima(cl_vworld *w, cl_evcache *ev, PGresult *r, pair_list *refused,
                       char *err, size_t errlen) {
  int n = PQntuples(r);
  if (PQnfields(r) != SIGNED_ROW_NFIELDS) {
    cl_err_set(err, errlen, "load measurements: %d columns, want %d", PQnfields(r),
               SIGNED_ROW_NFIELDS);
    return CL_EMALFORMED;
  }
  int64_t *chip_ids = row_array(r, sizeof *chip_ids);
  if (!chip_ids) return no_memory("load measurements", err, errlen);
  int rc = CL_OK;
  for (int i = 0; i < n && rc == CL_OK; i++)
    if (int8_col(r, i, 0, &chip_ids[i]) != CL_OK) {
      cl_err_set(err, errlen, "load measurements: row %d: bad chip id", i);
      rc = CL_EMALFORMED;
    }
  for (int i = 0; i < n && rc == CL_OK;) {
    int j = i;
    while (j < n && chip_ids[j] == chip_ids[i]) j++;
    cl_vchip *ch = find_chip(w, chip_ids[i]);
    /* Room for one more minimum per row, after those a first pass gave. */
    cl_verify_min *nm =
        ch ? realloc(ch->mins, (ch->in.n_mins + (size_t)(j - i)) * sizeof *ch->mins) : NULL;
    if (ch && !nm) rc = no_memory("load measurements", err, errlen);
    else if (ch) ch->mins = nm;
    int64_t group = -1; /* the landmark of the rows being read, and how they fared */
    int group_rows = 0, group_believed = 0;
    int64_t group_rtt = 0, group_id = 0; /* its last row read */
    for (int k = i; k <= j && ch && rc == CL_OK; k++) {
      int64_t landmark_id = -1, id;
      if (k < j && int8_col(r, k, 1, &landmark_id) != CL_OK) {
        cl_err_set(err, errlen, "load measurements: row %d: bad landmark id", k);
        rc = CL_EMALFORMED;
        break;
      }
      if (landmark_id != group) {
        if (refused && group >= 0 && group_rows >= CL_VSTORE_CANDIDATES && !group_believed)
          pl_add(refused, ch->in.chip_id, group, group_rtt, group_id);
        group = landmark_id, group_rows = 0, group_believed = 0;
      }
      if (k == j) break;
      cl_vlandmark *l = find_landmark_rw(w, landmark_id);
      if (!l) continue;
      /* This landmark already gave a believed, faster row. */
      if (ch->in.n_mins && ch->mins[ch->in.n_mins - 1].landmark_id == landmark_id) continue;
      uint64_t inserted_ns;
      cl_measurement m;
      char why[200];
      if (signed_row(r, k, l->pk, ch->in.pk, &m, &id, &inserted_ns, why, sizeof why)) {
        cl_err_set(err, errlen, "load measurements: %s", why);
        rc = CL_EMALFORMED;
        break;
      }
      group_rows++;
      group_rtt = (int64_t)m.rtt_ns, group_id = id;
      if (!believe(w, ev, l, &m, inserted_ns)) continue;
      group_believed = 1;
      cl_verify_min *mn = &ch->mins[ch->in.n_mins++];
      mn->landmark_id = landmark_id;
      mn->measurement_id = id;
      mn->rtt_ns = m.rtt_ns;
      memcpy(mn->landmark_sig, m.sig, CL_SIG_LEN);
      memcpy(mn->landmark_pk, l->pk, CL_PK_LEN);
      mn->lat = l->lat;
      mn->lon = l->lon;
      mn->landmark_name = l->name;
    }
    i = j;
  }
  free(chip_ids);
  return rc;
}

/* Fills each chip's minima: per (chip, landmark), the fastest believed of
 * the CL_VSTORE_CANDIDATES fastest measurements in the window (then of the
 * CL_VSTORE_DEEPER next, for pairs whose first were all refused) (window[0],
 * window[1]] (ns since the epoch, as text), with the landmark's key and
 * position, so load_chips and load_landmarks run first; only rows of the
 * chips of the bigint[] literal chips when it is not NULL. Errors as
 * fill_minima's, or the query's. */
static int load_measurements(PGconn *c, cl_vworld *w, cl_evcache *ev, const char *const window[2],
                             const char *chips, char *err, size_t errlen) {
  /* The sort of a large fleet's window outgrows the default work_mem and
   * would spill to disk; this round's transaction gets more. */
  PGresult *r = PQexec(c, "SET LOCAL work_mem = '128MB'");
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    return fail(r, c, map_state(r), err, errlen, "set work_mem");
  PQclear(r);
  char cand[16];
  snprintf(cand, sizeof cand, "%d", CL_VSTORE_CANDIDATES);
  const char *const params[4] = {window[0], window[1], cand, chips};
  /* Binary results: the ids, RTTs and signatures arrive as fixed-size
   * fields, with nothing to parse or unescape. A batch of a pool reads its
   * chips' rows through measurements_chip_time. */
  int rc = query_rows(
      c, "load measurements",
      chips ? "SELECT chip_id, landmark_id, " SIGNED_ROW_COLUMNS("s") " FROM ("
              "SELECT m.*, row_number() OVER (PARTITION BY m.chip_id, m.landmark_id "
              "ORDER BY m.rtt_ns, m.id) AS k FROM measurements m "
              "WHERE m.protocol = 2 AND m.chip_id = ANY($4::bigint[]) "
              "AND m.measured_at_ns > $1::bigint AND m.measured_at_ns <= $2::bigint "
              "AND m.measured_at > to_timestamp($1::bigint / 1e9) - interval '1 second' "
              "AND m.measured_at <= to_timestamp($2::bigint / 1e9) + interval '1 second') s "
              "WHERE k <= $3::integer ORDER BY chip_id, landmark_id, rtt_ns, id"
            : "SELECT chip_id, landmark_id, " SIGNED_ROW_COLUMNS("s") " FROM ("
              "SELECT m.*, row_number() OVER (PARTITION BY m.chip_id, m.landmark_id "
              "ORDER BY m.rtt_ns, m.id) AS k FROM measurements m "
              "WHERE m.protocol = 2 "
              "AND m.measured_at_ns > $1::bigint AND m.measured_at_ns <= $2::bigint "
              "AND m.measured_at > to_timestamp($1::bigint / 1e9) - interval '1 second' "
              "AND m.measured_at <= to_timestamp($2::bigint / 1e9) + interval '1 second') s "
              "WHERE k <= $3::integer ORDER BY chip_id, landmark_id, rtt_ns, id",
      chips ? 4 : 3, params, 1, &r, err, errlen);
  if (rc != CL_OK) return rc;
  pair_list refused;
  memset(&refused, 0, sizeof refused);
  rc = fill_minima(w, ev, r, &refused, err, errlen);
  PQclear(r);
  if (rc == CL_OK && refused.oom) rc = no_memory("load measurements", err, errlen);
  if (rc == CL_OK && refused.n) {
    /* Pairs whose fastest rows were all refused: read deeper, so that a few
     * fast rows of garbage in a landmark's name do not take its genuine
     * bound out of the round. */
    /* The rows after the last one read, in the same order: a new snapshot
     * (the round reads in READ COMMITTED) cannot make it read one twice. */
    char deep[16];
    snprintf(deep, sizeof deep, "%d", CL_VSTORE_DEEPER);
    for (int k = 0; k < 4; k++) strcat(refused.col[k], "}");
    const char *const p2[7] = {window[0],        window[1],        deep,           refused.col[0],
                               refused.col[1], refused.col[2], refused.col[3]};
    rc = query_rows(
        c, "load measurements (deeper)",
        "SELECT chip_id, landmark_id, " SIGNED_ROW_COLUMNS("s") " FROM ("
        "SELECT m.*, row_number() OVER (PARTITION BY m.chip_id, m.landmark_id "
        "ORDER BY m.rtt_ns, m.id) AS k FROM measurements m "
        "JOIN unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) "
        "AS p(chip_id, landmark_id, rtt_ns, id) "
        "ON m.chip_id = p.chip_id AND m.landmark_id = p.landmark_id "
        "AND (m.rtt_ns, m.id) > (p.rtt_ns, p.id) "
        "WHERE m.protocol = 2 "
        "AND m.measured_at_ns > $1::bigint AND m.measured_at_ns <= $2::bigint "
        "AND m.measured_at > to_timestamp($1::bigint / 1e9) - interval '1 second' "
        "AND m.measured_at <= to_timestamp($2::bigint / 1e9) + interval '1 second') s "
        "WHERE k <= $3::integer ORDER BY chip_id, landmark_id, rtt_ns, id",
        7, p2, 1, &r, err, errlen);
    if (rc == CL_OK) {
      rc = fill_minima(w, ev, r, NULL, err, errlen);
      PQclear(r);
    }
  }
  pl_free(&refused);
  return rc;
}

/* Row i of a chain-head query (load_chain_heads, load_pool_heads): whether
 * the chip is already attested for round_end_ns (column 2, the head's round,
 * when there is one), the latest CONSISTENT cap (3-6) and the last
 * sufficient round (7). */
static void head_row(cl_vchip *ch, PGresult *r, int i, uint64_t round_end_ns) {
  if (!PQgetisnull(r, i, 2)) {
    /* round_end_ns is unsigned in the layout; a negative one read as 0. */
    long long head_end = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    uint64_t prev_end = head_end > 0 ? (uint64_t)head_end : 0;
    ch->attested = prev_end >= round_end_ns;
    ch->head_ahead = prev_end > round_end_ns;
  }
  ch->in.prev_consistent = atoi(PQgetvalue(r, i, 3)) == CL_ATT_CONSISTENT;
  ch->in.prev_lat_e7 = atoi(PQgetvalue(r, i, 4));
  ch->in.prev_lon_e7 = atoi(PQgetvalue(r, i, 5));
  ch->in.prev_radius_m = strtoull(PQgetvalue(r, i, 6), NULL, 10);
  if (!PQgetisnull(r, i, 7)) ch->in.last_sufficient_ns = strtoll(PQgetvalue(r, i, 7), NULL, 10);
}

/* Fills each chip's chain head (prev_hash, whether it is already attested
 * for round_end_ns), the centre and radius of its latest CONSISTENT
 * attestation (prev_consistent 0 when there is none) and its last
 * sufficient round, from this verifier's attestations. chip_moved compares
 * with the last region that located the chip, not the head's: a chip
 * carried elsewhere passes through rounds whose window holds answers from
 * both places (INCONSISTENT) or none (INSUFFICIENT, while it travels), and
 * a head of that kind would hide the move. Per active chip, one backward
 * probe of the attestations_chip_round index (more only when the head is
 * not CONSISTENT), so the cost follows the number of chips, not the length
 * of the history. Allocates nothing; CL_EMALFORMED for a hash of the wrong
 * size. */
static int load_chain_heads(PGconn *c, cl_vworld *w, const char *verifier_id,
                            uint64_t round_end_ns, char *err, size_t errlen) {
  const char *v[1] = {verifier_id};
  PGresult *r;
  int rc = query_rows(c, "load chain heads",
                      "SELECT c.id, h.hash, h.round_end_ns, "
                      "CASE WHEN h.consistency = 0 OR k.radius_m IS NOT NULL THEN 0 ELSE 1 END, "
                      "coalesce(k.centre_lat_e7, h.centre_lat_e7), "
                      "coalesce(k.centre_lon_e7, h.centre_lon_e7), coalesce(k.radius_m, h.radius_m), "
                      "CASE WHEN h.consistency <> 1 THEN h.round_end_ns ELSE "
                      "(SELECT a.round_end_ns FROM attestations a WHERE a.chip_id = c.id "
                      "AND a.verifier_id = $1::bigint AND a.consistency <> 1 "
                      "ORDER BY a.round_end_ns DESC LIMIT 1) END "
                      "FROM chips c CROSS JOIN LATERAL (SELECT a.hash, a.round_end_ns, "
                      "a.consistency, a.centre_lat_e7, a.centre_lon_e7, a.radius_m "
                      "FROM attestations a WHERE a.chip_id = c.id AND a.verifier_id = $1::bigint "
                      "ORDER BY a.round_end_ns DESC LIMIT 1) h "
                      "LEFT JOIN LATERAL (SELECT a.centre_lat_e7, a.centre_lon_e7, a.radius_m "
                      "FROM attestations a WHERE h.consistency <> 0 AND a.chip_id = c.id "
                      "AND a.verifier_id = $1::bigint AND a.consistency = 0 "
                      "ORDER BY a.round_end_ns DESC LIMIT 1) k ON true WHERE c.active",
                      1, v, 0, &r, err, errlen);
  if (rc != CL_OK) return rc;
  for (int i = 0; i < PQntuples(r); i++) {
    cl_vchip *ch = row_chip(w, r, i);
    if (!ch) continue;
    if (bytea_col(r, i, 1, ch->in.prev_hash, CL_HASH_LEN) != CL_OK) {
      cl_err_set(err, errlen, "chip %s: bad attestation hash", ch->serial);
      rc = CL_EMALFORMED;
      break;
    }
    ch->in.has_prev = 1;
    head_row(ch, r, i, round_end_ns);
  }
  PQclear(r);
  return rc;
}

/*
 * load_chain_heads for a pool's batch: the chips of the bigint[] literal
 * chips; the chain head (prev_hash, attested, head_ahead) from this
 * verifier's attestations as there, the previous verdicts and the last
 * sufficient round from the chip's latest attestations by any of the
 * members (bigint[] literal). A chip that only another member attested
 * before gets has_prev with a zero prev_hash: its attestation then starts
 * this verifier's chain of it (the layout of a first record), while
 * chip_moved still compares with the last region that located the chip:
 * the latest CONSISTENT attestation by any member.
 */
static int load_pool_heads(PGconn *c, cl_vworld *w, const char *verifier_id, const char *chips,
                           const char *members, uint64_t round_end_ns, char *err, size_t errlen) {
  const char *v[3] = {verifier_id, chips, members};
  PGresult *r;
  int rc = query_rows(c, "load chain heads",
                      "SELECT c.id, h.hash, h.round_end_ns, "
                      "CASE WHEN p.consistency = 0 OR k.radius_m IS NOT NULL THEN 0 ELSE 1 END, "
                      "coalesce(k.centre_lat_e7, p.centre_lat_e7), "
                      "coalesce(k.centre_lon_e7, p.centre_lon_e7), coalesce(k.radius_m, p.radius_m), "
                      "CASE WHEN p.consistency <> 1 THEN p.round_end_ns ELSE "
                      "(SELECT a.round_end_ns FROM attestations a WHERE a.chip_id = c.id "
                      "AND a.verifier_id = ANY($3::bigint[]) AND a.consistency <> 1 "
                      "ORDER BY a.round_end_ns DESC LIMIT 1) END "
                      "FROM chips c CROSS JOIN LATERAL (SELECT a.round_end_ns, a.consistency, "
                      "a.centre_lat_e7, a.centre_lon_e7, a.radius_m FROM attestations a "
                      "WHERE a.chip_id = c.id AND a.verifier_id = ANY($3::bigint[]) "
                      "ORDER BY a.round_end_ns DESC, a.id DESC LIMIT 1) p "
                      "LEFT JOIN LATERAL (SELECT a.centre_lat_e7, a.centre_lon_e7, a.radius_m "
                      "FROM attestations a WHERE p.consistency <> 0 AND a.chip_id = c.id "
                      "AND a.verifier_id = ANY($3::bigint[]) AND a.consistency = 0 "
                      "ORDER BY a.round_end_ns DESC, a.id DESC LIMIT 1) k ON true "
                      "LEFT JOIN LATERAL (SELECT a.hash, a.round_end_ns FROM attestations a "
                      "WHERE a.chip_id = c.id AND a.verifier_id = $1::bigint "
                      "ORDER BY a.round_end_ns DESC LIMIT 1) h ON true "
                      "WHERE c.active AND c.id = ANY($2::bigint[])",
                      3, v, 0, &r, err, errlen);
  if (rc != CL_OK) return rc;
  for (int i = 0; i < PQntuples(r); i++) {
    cl_vchip *ch = row_chip(w, r, i);
    if (!ch) continue;
    if (!PQgetisnull(r, i, 1)) {
      if (bytea_col(r, i, 1, ch->in.prev_hash, CL_HASH_LEN) != CL_OK) {
        cl_err_set(err, errlen, "chip %s: bad attestation hash", ch->serial);
        rc = CL_EMALFORMED;
        break;
      }
    }
    ch->in.has_prev = 1;
    head_row(ch, r, i, round_end_ns);
  }
  PQclear(r);
  return rc;
}

/* Fills each chip's open_alert flags from the alerts not yet cleared,
 * whoever raised them. Allocates nothing; errors are the query's. */
static int load_open_alerts(PGconn *c, cl_vworld *w, char *err, size_t errlen) {
  PGresult *r;
  int rc = query_rows(
      c, "load alerts",
      "SELECT chip_id, kind FROM alerts WHERE cleared_at IS NULL AND chip_id IS NOT NULL", 0,
      NULL, 0, &r, err, errlen);
  if (rc != CL_OK) return rc;
  for (int i = 0; i < PQntuples(r); i++) {
    cl_vchip *ch = row_chip(w, r, i);
    if (!ch) continue;
    for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++)
      if (strcmp(PQgetvalue(r, i, 1), cl_alert_kind_name(k)) == 0) ch->open_alert[k] = 1;
  }
  PQclear(r);
  return CL_OK;
}

/* Fills w->links with the fastest believed landmark-to-landmark probe per
 * ordered pair among the CL_VSTORE_LINK_CANDIDATES fastest in the window
 * (window[0], window[1]]; the probing landmark signs, the probed one plays
 * the chip's part. load_landmarks runs first. CL_EMALFORMED, CL_ENOMEM. */
static int load_links(PGconn *c, cl_vworld *w, cl_evcache *ev, const char *const window[2],
                      char *err, size_t errlen) {
  char cand[16];
  snprintf(cand, sizeof cand, "%d", CL_VSTORE_LINK_CANDIDATES);
  const char *const params[3] = {window[0], window[1], cand};
  PGresult *r;
  int rc = query_rows(c, "load links",
                      "SELECT from_landmark_id, to_landmark_id, " SIGNED_ROW_COLUMNS("s") " FROM ("
                      "SELECT ll.*, row_number() OVER (PARTITION BY from_landmark_id, "
                      "to_landmark_id ORDER BY rtt_ns, id) AS k FROM landmark_links ll "
                      "WHERE protocol = 2 AND measured_at_ns > $1::bigint "
                      "AND measured_at_ns <= $2::bigint) s "
                      "WHERE k <= $3::integer ORDER BY from_landmark_id, to_landmark_id, rtt_ns, id",
                      3, params, 1, &r, err, errlen);
  if (rc != CL_OK) return rc;
  if (PQnfields(r) != SIGNED_ROW_NFIELDS) {
    cl_err_set(err, errlen, "load links: %d columns, want %d", PQnfields(r), SIGNED_ROW_NFIELDS);
    PQclear(r);
    return CL_EMALFORMED;
  }
  if (!(w->links = row_array(r, sizeof *w->links))) {
    PQclear(r);
    return no_memory("load links", err, errlen);
  }
  for (int k = 0; k < PQntuples(r); k++) {
    int64_t from, to, id;
    if (int8_col(r, k, 0, &from) || int8_col(r, k, 1, &to)) {
      cl_err_set(err, errlen, "load links: row %d: a bad landmark id", k);
      rc = CL_EMALFORMED;
      break;
    }
    cl_vlandmark *lf = find_landmark_rw(w, from), *lt = find_landmark_rw(w, to);
    if (!lf || !lt) continue;
    if (w->n_links && w->links[w->n_links - 1].from_id == from &&
        w->links[w->n_links - 1].to_id == to)
      continue; /* a faster believed probe of the pair is in */
    uint64_t inserted_ns;
    cl_measurement m;
    char why[200];
    if (signed_row(r, k, lf->pk, lt->pk, &m, &id, &inserted_ns, why, sizeof why)) {
      cl_err_set(err, errlen, "load links: %s", why);
      rc = CL_EMALFORMED;
      break;
    }
    /* The probed landmark's key answers for it: it must be in force too. */
    cl_ev_reason peer = cl_ev_key_check(&lt->key, m.measured_unix_ns, inserted_ns);
    if (peer != CL_EV_OK) {
      w->judged++;
      lt->rejected[peer]++;
      w->rejected[peer]++;
      continue;
    }
    if (!believe(w, ev, lf, &m, inserted_ns)) continue;
    w->links[w->n_links++] = (cl_vlink){from, to, (double)m.rtt_ns / 1e6};
  }
  PQclear(r);
  return rc;
}

/* Points each chip's engine input at the arrays loaded for it. */
static void wire_inputs(cl_vworld *w) {
  for (size_t i = 0; i < w->n_chips; i++) {
    cl_vchip *ch = &w->chips[i];
    ch->uni.members = ch->members;
    ch->uni.n = ch->n_codes;
    ch->in.allowed = &ch->uni;
    ch->in.allowed_codes = (const char *const *)ch->codes;
    ch->in.region_digests = (const uint8_t(*)[CL_HASH_LEN])ch->region_digests;
    ch->in.n_allowed = ch->n_codes;
    ch->in.mins = ch->mins;
  }
}

int cl_vstore_db_now(cl_store *s, uint64_t *now_ns, char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  PGresult *r;
  int rc = query_rows(c, "database clock",
                      "SELECT (extract(epoch FROM clock_timestamp()) * 1e9)::bigint", 0, NULL, 0,
                      &r, err, errlen);
  if (rc != CL_OK) return rc;
  *now_ns = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return CL_OK;
}

int cl_vstore_load(cl_store *s, int64_t verifier_id, uint64_t round_end_ns, uint64_t window_ns,
                   cl_evcache *ev, cl_vworld *w, char *err, size_t errlen) {
  return cl_vstore_load_scope(s, verifier_id, round_end_ns, window_ns, NULL, ev, w, err, errlen);
}

/* An array literal "{a,b,...}" of n integers, malloc'd; NULL when out of
 * memory. */
static char *int_array(const int64_t *v, size_t n) {
  char *out = malloc(2 + 21 * (n ? n : 1));
  if (!out) return NULL;
  size_t k = 0;
  out[k++] = '{';
  for (size_t i = 0; i < n; i++)
    k += (size_t)sprintf(out + k, "%s%lld", i ? "," : "", (long long)v[i]);
  out[k++] = '}';
  out[k] = '\0';
  return out;
}

/* The bigint[] literal of the loaded chips' ids; NULL when out of memory. */
static char *chip_array(const cl_vworld *w) {
  int64_t *ids = malloc((w->n_chips ? w->n_chips : 1) * sizeof *ids);
  if (!ids) return NULL;
  for (size_t i = 0; i < w->n_chips; i++) ids[i] = w->chips[i].in.chip_id;
  char *out = int_array(ids, w->n_chips);
  free(ids);
  return out;
}

int cl_vstore_load_scope(cl_store *s, int64_t verifier_id, uint64_t round_end_ns,
                         uint64_t window_ns, const cl_vscope *scope, cl_evcache *ev, cl_vworld *w,
                         char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  memset(w, 0, sizeof *w);
  char vid[24], end[24], start[24];
  snprintf(vid, sizeof vid, "%lld", (long long)verifier_id);
  snprintf(end, sizeof end, "%llu", (unsigned long long)round_end_ns);
  snprintf(start, sizeof start, "%llu", (unsigned long long)(round_end_ns - window_ns));
  const char *const window[2] = {start, end};
  char *buckets = NULL, *chips = NULL, *members = NULL;
  int rc = CL_OK;
  if (scope) {
    int64_t b[CL_VSTORE_BUCKETS];
    for (size_t i = 0; i < scope->n_buckets; i++) b[i] = scope->buckets[i];
    if (!(buckets = int_array(b, scope->n_buckets)) ||
        !(members = int_array(scope->members, scope->n_members)))
      rc = no_memory("load chips", err, errlen);
    if (rc == CL_OK && (rc = load_chips(c, w, buckets, err, errlen)) == CL_OK &&
        !(chips = chip_array(w)))
      rc = no_memory("load chips", err, errlen);
  } else {
    rc = load_chips(c, w, NULL, err, errlen);
  }
  if (rc == CL_OK && scope && scope->regions) {
    w->regions = scope->regions->set;
    w->region_digests = scope->regions->digests;
    w->regions_borrowed = 1;
  } else if (rc == CL_OK) {
    rc = load_regions(c, w, err, errlen);
  }
  if (rc != CL_OK || (rc = load_chip_regions(c, w, chips, err, errlen)) != CL_OK ||
      (rc = load_landmarks(c, w, err, errlen)) != CL_OK ||
      (rc = load_measurements(c, w, ev, window, chips, err, errlen)) != CL_OK ||
      (rc = scope ? load_pool_heads(c, w, vid, chips, members, round_end_ns, err, errlen)
                  : load_chain_heads(c, w, vid, round_end_ns, err, errlen)) != CL_OK ||
      (rc = load_open_alerts(c, w, err, errlen)) != CL_OK ||
      (rc = load_links(c, w, ev, window, err, errlen)) != CL_OK) {
    free(buckets), free(chips), free(members);
    cl_vworld_free(w); /* the promise of cl_vstore.h: nothing left to free */
    return rc;
  }
  free(buckets), free(chips), free(members);
  wire_inputs(w);
  return CL_OK;
}

/* ---- batched writes of a round ------------------------------------------- */

/* A growing text buffer; oom latches so that callers check once. */
typedef struct {
  char *p;
  size_t len, cap;
  int oom;
} tbuf;

static void tb_reserve(tbuf *b, size_t more) {
  if (b->oom || b->len + more + 1 <= b->cap) return;
  size_t ncap = b->cap ? b->cap : 4096;
  while (ncap < b->len + more + 1) ncap *= 2;
  char *np = realloc(b->p, ncap);
  if (!np) {
    b->oom = 1;
    return;
  }
  b->p = np;
  b->cap = ncap;
}

static void tb_put(tbuf *b, const char *s, size_t n) {
  tb_reserve(b, n);
  if (b->oom) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void tb_str(tbuf *b, const char *s) { tb_put(b, s, strlen(s)); }

static void tb_i64(tbuf *b, long long v) {
  char t[24];
  tb_put(b, t, (size_t)snprintf(t, sizeof t, "%lld", v));
}

static void tb_u64(tbuf *b, unsigned long long v) {
  char t[24];
  tb_put(b, t, (size_t)snprintf(t, sizeof t, "%llu", v));
}

/* A bytea value in COPY text format: \\x and hex (the backslash escaped). */
static void tb_bytea(tbuf *b, const uint8_t *v, size_t n) {
  tb_reserve(b, 3 + 2 * n);
  if (b->oom) return;
  b->p[b->len++] = '\\';
  b->p[b->len++] = '\\';
  b->p[b->len++] = 'x';
  cl_hex_encode(b->p + b->len, v, n);
  b->len += 2 * n;
  b->p[b->len] = '\0';
}

/* One array element, double-quoted, with '"' and '\' escaped by a
 * backslash; inside a COPY field (copy = 1) every backslash is doubled once
 * more. Region codes never hold either character (schema CHECK). */
static void tb_array_text(tbuf *b, const char *s, int copy) {
  const char *bs = copy ? "\\\\" : "\\";
  size_t bn = copy ? 2 : 1;
  tb_put(b, "\"", 1);
  for (const char *q = s; *q; q++) {
    if (*q == '"' || *q == '\\') tb_put(b, bs, bn);
    if (*q == '\\') tb_put(b, bs, bn);
    else tb_put(b, q, 1);
  }
  tb_put(b, "\"", 1);
}

/* round_end as timestamptz text: UTC, microseconds (rounded), as
 * to_timestamp(ns / 1e9) gives it. */
static void tb_timestamp(tbuf *b, uint64_t ns) {
  uint64_t us = (ns + 500) / 1000;
  time_t secs = (time_t)(us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char t[48];
  int n = snprintf(t, sizeof t, "%04d-%02d-%02d %02d:%02d:%02d.%06llu+00", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   (unsigned long long)(us % 1000000));
  tb_put(b, t, (size_t)n);
}

struct cl_vwriter {
  PGconn *c;
  int64_t verifier_id;
  uint64_t round_end_ns;
  int in_copy;
  size_t rows;
  tbuf row;                      /* one COPY line, reused */
  tbuf open_kind, open_chip, open_detail; /* alerts to open: array literals */
  tbuf clear_kind, clear_chip;            /* alerts to clear */
  size_t n_open, n_clear;
};

static void vw_free(cl_vwriter *w) {
  free(w->row.p);
  free(w->open_kind.p), free(w->open_chip.p), free(w->open_detail.p);
  free(w->clear_kind.p), free(w->clear_chip.p);
  free(w);
}

int cl_vwriter_begin(cl_store *s, int64_t verifier_id, uint64_t round_end_ns, cl_vwriter **out,
                     char *err, size_t errlen) {
  *out = NULL;
  cl_vwriter *w = calloc(1, sizeof *w);
  if (!w) return CL_ENOMEM;
  w->c = cl_store_pgconn(s);
  w->verifier_id = verifier_id;
  w->round_end_ns = round_end_ns;
  PGresult *r = PQexec(
      w->c,
      "COPY attestations (chip_id, verifier_id, round_end_ns, round_end, window_ns, consistency, "
      "site_verdict, region_verdict, speed_m_s, centre_lat_e7, centre_lon_e7, radius_m, "
      "site_landmark_id, site_margin_m, allowed_regions, excluded_landmark_ids, landmarks_used, "
      "measurement_ids, prev_hash, hash, signature, layout_version, measurement_sigs, "
      "site_digest, landmarks_digest, regions_digest) FROM STDIN");
  if (PQresultStatus(r) != PGRES_COPY_IN) {
    int rc = fail(r, w->c, map_state(r), err, errlen, "start attestation COPY");
    vw_free(w);
    return rc;
  }
  PQclear(r);
  w->in_copy = 1;
  *out = w;
  return CL_OK;
}

/* Appends one element to an array literal under construction. */
static void arr_add(tbuf *b, size_t n_before, const char *elem, int quote) {
  tb_put(b, n_before ? "," : "{", 1);
  if (quote) tb_array_text(b, elem, 0);
  else tb_str(b, elem);
}

int cl_vwriter_add(cl_vwriter *w, const cl_vchip *ch, const cl_verify_out *o, char *err,
                   size_t errlen) {
  const cl_attestation *a = &o->a;
  if (a->round_end_ns != w->round_end_ns) {
    cl_err_set(err, errlen, "attestation of chip %s is for another round", ch->serial);
    return CL_EINVAL;
  }
  tbuf *b = &w->row;
  b->len = 0;
#define SEP tb_put(b, "\t", 1)
  tb_i64(b, (long long)ch->in.chip_id), SEP;
  tb_i64(b, (long long)w->verifier_id), SEP;
  tb_u64(b, (unsigned long long)a->round_end_ns), SEP;
  tb_timestamp(b, a->round_end_ns), SEP;
  tb_u64(b, (unsigned long long)a->window_ns), SEP;
  tb_u64(b, a->consistency), SEP;
  tb_u64(b, a->site), SEP;
  tb_u64(b, a->region), SEP;
  tb_u64(b, (unsigned long long)a->speed_m_per_s), SEP;
  tb_i64(b, a->centre_lat_e7), SEP;
  tb_i64(b, a->centre_lon_e7), SEP;
  tb_u64(b, (unsigned long long)a->radius_m), SEP;
  if (o->site_landmark_id) tb_i64(b, (long long)o->site_landmark_id);
  else tb_str(b, "\\N");
  SEP;
  tb_i64(b, (long long)a->site_margin_m), SEP;
  tb_put(b, "{", 1);
  for (size_t i = 0; i < ch->n_codes; i++) {
    if (i) tb_put(b, ",", 1);
    tb_array_text(b, ch->codes[i], 1);
  }
  tb_put(b, "}", 1), SEP;
  tb_put(b, "{", 1);
  for (size_t i = 0; i < o->n_excluded; i++) {
    if (i) tb_put(b, ",", 1);
    tb_i64(b, (long long)o->excluded_ids[i]);
  }
  tb_put(b, "}", 1), SEP;
  tb_u64(b, o->landmarks_used), SEP;
  tb_put(b, "{", 1);
  for (size_t i = 0; i < ch->in.n_mins; i++) {
    if (i) tb_put(b, ",", 1);
    tb_i64(b, (long long)ch->in.mins[i].measurement_id);
  }
  tb_put(b, "}", 1), SEP;
  tb_bytea(b, a->prev_hash, CL_HASH_LEN), SEP;
  tb_bytea(b, o->hash, CL_HASH_LEN), SEP;
  tb_bytea(b, a->sig, CL_SIG_LEN), SEP;
  tb_u64(b, a->version), SEP;
  /* The evidence, cited by what no one can reuse: the landmark signatures,
   * in the order of measurement_ids. Elements "\\x<hex>" in COPY text. */
  tb_put(b, "{", 1);
  for (size_t i = 0; i < ch->in.n_mins; i++) {
    tb_str(b, i ? ",\"" : "\"");
    tb_put(b, "\\\\\\\\x", 5);
    tb_reserve(b, 2 * CL_SIG_LEN);
    if (b->oom) return CL_ENOMEM;
    cl_hex_encode(b->p + b->len, ch->in.mins[i].landmark_sig, CL_SIG_LEN);
    b->len += 2 * CL_SIG_LEN;
    b->p[b->len] = '\0';
    tb_put(b, "\"", 1);
  }
  tb_put(b, "}", 1), SEP;
  tb_bytea(b, a->site_digest, CL_HASH_LEN), SEP;
  tb_bytea(b, a->landmarks_digest, CL_HASH_LEN), SEP;
  tb_bytea(b, a->regions_digest, CL_HASH_LEN);
  tb_put(b, "\n", 1);
#undef SEP
  if (b->oom) return CL_ENOMEM;
  if (PQputCopyData(w->c, b->p, (int)b->len) != 1) {
    cl_err_set(err, errlen, "attestation COPY: %s", PQerrorMessage(w->c));
    return CL_EDB;
  }
  w->rows++;
  /* Alert changes wait for the end of the COPY (they reference the rows). */
  char chip[24];
  snprintf(chip, sizeof chip, "%lld", (long long)ch->in.chip_id);
  for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++) {
    if (o->alert[k] && !ch->open_alert[k]) {
      arr_add(&w->open_kind, w->n_open, cl_alert_kind_name(k), 0);
      arr_add(&w->open_chip, w->n_open, chip, 0);
      arr_add(&w->open_detail, w->n_open, o->detail[k], 1);
      w->n_open++;
    } else if (!o->alert[k] && ch->open_alert[k]) {
      arr_add(&w->clear_kind, w->n_clear, cl_alert_kind_name(k), 0);
      arr_add(&w->clear_chip, w->n_clear, chip, 0);
      w->n_clear++;
    }
  }
  if (w->open_kind.oom || w->open_chip.oom || w->open_detail.oom || w->clear_kind.oom ||
      w->clear_chip.oom)
    return CL_ENOMEM;
  return CL_OK;
}

static int copy_end(cl_vwriter *w, const char *abort_msg, char *err, size_t errlen) {
  w->in_copy = 0;
  int rc = CL_OK;
  if (PQputCopyEnd(w->c, abort_msg) != 1) {
    cl_err_set(err, errlen, "attestation COPY end: %s", PQerrorMessage(w->c));
    rc = CL_EDB;
  }
  PGresult *r;
  while ((r = PQgetResult(w->c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == CL_OK && !abort_msg) {
      rc = map_state(r);
      cl_err_set(err, errlen, "attestation COPY: %s", PQresultErrorMessage(r));
    }
    PQclear(r);
  }
  return rc;
}

int cl_vwriter_finish(cl_vwriter **pw, char *err, size_t errlen) {
  cl_vwriter *w = *pw;
  *pw = NULL;
  int rc = copy_end(w, NULL, err, errlen);
  if (rc == CL_OK && w->n_open) {
    tb_put(&w->open_kind, "}", 1), tb_put(&w->open_chip, "}", 1), tb_put(&w->open_detail, "}", 1);
    char vid[24], end[24];
    snprintf(vid, sizeof vid, "%lld", (long long)w->verifier_id);
    snprintf(end, sizeof end, "%llu", (unsigned long long)w->round_end_ns);
    const char *v[5] = {w->open_kind.p, w->open_chip.p, w->open_detail.p, vid, end};
    PGresult *r = PQexecParams(
        w->c,
        "INSERT INTO alerts (kind, chip_id, detail, attestation_id) "
        "SELECT t.kind, t.chip_id, t.detail, a.id "
        "FROM unnest($1::text[], $2::bigint[], $3::text[]) AS t(kind, chip_id, detail) "
        "JOIN attestations a ON a.chip_id = t.chip_id AND a.verifier_id = $4::bigint "
        "AND a.round_end_ns = $5::bigint",
        5, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) rc = fail(r, w->c, map_state(r), err, errlen, "open alerts");
    else if (strtoull(PQcmdTuples(r), NULL, 10) != w->n_open) {
      cl_err_set(err, errlen, "open alerts: %s of %zu rows inserted", PQcmdTuples(r), w->n_open);
      PQclear(r);
      rc = CL_EDB;
    } else {
      PQclear(r);
    }
  }
  if (rc == CL_OK && w->n_clear) {
    tb_put(&w->clear_kind, "}", 1), tb_put(&w->clear_chip, "}", 1);
    if (w->clear_kind.oom || w->clear_chip.oom) rc = CL_ENOMEM;
    const char *v[2] = {w->clear_kind.p, w->clear_chip.p};
    PGresult *r = rc != CL_OK ? NULL
                              : PQexecParams(w->c,
                                             "UPDATE alerts SET cleared_at = now() "
                                             "FROM unnest($1::text[], $2::bigint[]) AS t(kind, chip_id) "
                                             "WHERE alerts.kind = t.kind AND alerts.chip_id = t.chip_id "
                                             "AND alerts.cleared_at IS NULL",
                                             2, NULL, v, NULL, NULL, 0);
    if (r && PQresultStatus(r) != PGRES_COMMAND_OK) rc = fail(r, w->c, map_state(r), err, errlen, "clear alerts");
    else if (r) PQclear(r);
  }
  vw_free(w);
  return rc;
}

void cl_vwriter_abort(cl_vwriter **pw) {
  cl_vwriter *w = *pw;
  if (!w) return;
  *pw = NULL;
  char err[8];
  if (w->in_copy) copy_end(w, "round aborted", err, sizeof err);
  vw_free(w);
}

/* Opens (open = 1) or clears the alert `kind` of one subject (the column
 * `subject` = id). An open alert whose detail differs gets the new one. */
static int subject_alert(cl_store *s, const char *kind, const char *subject, int64_t id,
                         int was_open, int open, const char *detail, char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  char sid[24], sql[256];
  snprintf(sid, sizeof sid, "%lld", (long long)id);
  PGresult *r;
  if (open) {
    const char *v[3] = {kind, sid, detail ? detail : ""};
    if (was_open)
      snprintf(sql, sizeof sql,
               "UPDATE alerts SET detail = $3::text WHERE kind = $1::text AND %s = $2::bigint "
               "AND cleared_at IS NULL AND detail <> $3::text",
               subject);
    else
      snprintf(sql, sizeof sql,
               "INSERT INTO alerts (kind, %s, detail) VALUES ($1::text, $2::bigint, $3::text)",
               subject);
    r = PQexecParams(c, sql, 3, NULL, v, NULL, NULL, 0);
  } else {
    if (!was_open) return CL_OK;
    const char *v[2] = {kind, sid};
    snprintf(sql, sizeof sql,
             "UPDATE alerts SET cleared_at = now() WHERE kind = $1::text AND %s = $2::bigint "
             "AND cleared_at IS NULL",
             subject);
    r = PQexecParams(c, sql, 2, NULL, v, NULL, NULL, 0);
  }
  if (PQresultStatus(r) != PGRES_COMMAND_OK) return fail(r, c, map_state(r), err, errlen, kind);
  PQclear(r);
  return CL_OK;
}

int cl_vstore_landmark_alert(cl_store *s, const cl_vlandmark *lm, cl_valert_kind kind, int open,
                             const char *detail, char *err, size_t errlen) {
  int misplaced = kind == CL_VALERT_MISPLACED;
  int was_open = misplaced ? lm->open_misplaced : lm->open_bad_records;
  /* A landmark_misplaced detail follows from the links; it is not rewritten. */
  if (misplaced && open == was_open) return CL_OK;
  return subject_alert(s, misplaced ? "landmark_misplaced" : "landmark_bad_records",
                       "landmark_id", lm->id, was_open, open, detail, err, errlen);
}

int cl_vstore_verifier_alert(cl_store *s, int64_t verifier_id, int open, const char *detail,
                             char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  char sid[24];
  snprintf(sid, sizeof sid, "%lld", (long long)verifier_id);
  const char *v[1] = {sid};
  PGresult *r;
  int rc = query_rows(c, "verifier alert",
                      "SELECT 1 FROM alerts WHERE kind = 'verifier_clock' AND verifier_id = "
                      "$1::bigint AND cleared_at IS NULL",
                      1, v, 0, &r, err, errlen);
  if (rc != CL_OK) return rc;
  int was_open = PQntuples(r) > 0;
  PQclear(r);
  return subject_alert(s, "verifier_clock", "verifier_id", verifier_id, was_open, open, detail,
                       err, errlen);
}

const char *cl_vstore_alert_kind_name(int k) {
  if (k >= 0 && k < CL_ALERT__CHIP_KINDS) return cl_alert_kind_name(k);
  switch (k - CL_ALERT__CHIP_KINDS) {
  case 0: return "landmark_misplaced";
  case 1: return "landmark_bad_records";
  case 2: return "verifier_clock";
  }
  return "unknown";
}

int cl_vstore_open_alerts(cl_store *s, uint64_t counts[CL_VSTORE_ALERT_KINDS], char *err,
                          size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  memset(counts, 0, CL_VSTORE_ALERT_KINDS * sizeof counts[0]);
  PGresult *r = PQexecParams(c,
                             "SELECT kind, count(*) FROM alerts WHERE cleared_at IS NULL "
                             "GROUP BY kind",
                             0, NULL, NULL, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "open alerts");
  for (int i = 0; i < PQntuples(r); i++) {
    const char *kind = PQgetvalue(r, i, 0);
    uint64_t n = strtoull(PQgetvalue(r, i, 1), NULL, 10);
    for (int k = 0; k < CL_VSTORE_ALERT_KINDS; k++)
      if (strcmp(kind, cl_vstore_alert_kind_name(k)) == 0) counts[k] = n;
  }
  PQclear(r);
  return CL_OK;
}

/* ---- pools ------------------------------------------------------------------ */

int cl_vstore_load_regions(cl_store *s, cl_vregions *out, char *err, size_t errlen) {
  cl_vworld w;
  memset(&w, 0, sizeof w);
  memset(out, 0, sizeof *out);
  int rc = load_regions(cl_store_pgconn(s), &w, err, errlen);
  if (rc != CL_OK) {
    cl_vworld_free(&w);
    return rc;
  }
  out->set = w.regions;
  out->digests = w.region_digests;
  return CL_OK;
}

void cl_vregions_free(cl_vregions *r) {
  free(r->digests);
  cl_region_set_free(&r->set);
  memset(r, 0, sizeof *r);
}

int cl_vstore_pool_name_ok(const char *name) {
  size_t n = strlen(name);
  if (n < 1 || n > CL_VSTORE_POOL_MAX) return CL_EINVAL;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          *p == '_' || *p == '.' || *p == '-'))
      return CL_EINVAL;
  return CL_OK;
}

int cl_vstore_pool_members(cl_store *s, const char *pool, uint64_t round_end_ns,
                           uint64_t interval_ns, int64_t self, int64_t **members, size_t *n,
                           char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  *members = NULL;
  *n = 0;
  uint64_t span = (uint64_t)CL_VSTORE_MEMBER_ROUNDS * interval_ns;
  char end[24], from[24], ival[24];
  snprintf(end, sizeof end, "%llu", (unsigned long long)round_end_ns);
  snprintf(from, sizeof from, "%llu",
           (unsigned long long)(round_end_ns > span ? round_end_ns - span : 0));
  snprintf(ival, sizeof ival, "%llu", (unsigned long long)interval_ns);
  const char *v[4] = {pool, from, end, ival};
  PGresult *r;
  int rc = query_rows(c, "pool members",
                      "SELECT verifier_id, bool_or(interval_ns <> $4::bigint), "
                      "max(interval_ns) FILTER (WHERE interval_ns <> $4::bigint) "
                      "FROM verifier_claims WHERE pool = $1::text "
                      "AND round_end_ns >= $2::bigint AND round_end_ns <= $3::bigint "
                      "GROUP BY verifier_id ORDER BY verifier_id",
                      4, v, 0, &r, err, errlen);
  if (rc != CL_OK) return rc;
  int rows = PQntuples(r);
  for (int i = 0; i < rows; i++)
    if (PQgetvalue(r, i, 1)[0] == 't') {
      cl_err_set(err, errlen,
                 "pool %s: verifier id %s runs rounds every %.0f s, this verifier every %.0f s; "
                 "the members of a pool must use the same --interval",
                 pool, PQgetvalue(r, i, 0), strtod(PQgetvalue(r, i, 2), NULL) / 1e9,
                 (double)interval_ns / 1e9);
      PQclear(r);
      return CL_EINVAL;
    }
  int64_t *m = malloc(((size_t)rows + 1) * sizeof *m);
  if (!m) {
    PQclear(r);
    return no_memory("pool members", err, errlen);
  }
  size_t k = 0;
  int have_self = 0;
  for (int i = 0; i < rows; i++) {
    m[k] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    have_self |= m[k] == self;
    k++;
  }
  PQclear(r);
  if (!have_self) m[k++] = self;
  *members = m;
  *n = k;
  return CL_OK;
}

int cl_vstore_pool_claim(cl_store *s, const char *pool, uint64_t round_end_ns,
                         uint64_t interval_ns, int64_t verifier_id, cl_vscope *scope, char *err,
                         size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  scope->n_buckets = 0;
  char end[24], vid[24], ival[24], max[16];
  snprintf(end, sizeof end, "%llu", (unsigned long long)round_end_ns);
  snprintf(vid, sizeof vid, "%lld", (long long)verifier_id);
  snprintf(ival, sizeof ival, "%llu", (unsigned long long)interval_ns);
  snprintf(max, sizeof max, "%d", CL_VSTORE_BATCH_BUCKETS);
  const char *v[5] = {pool, end, vid, ival, max};
  /* Each bucket is taken when no claim of it is committed and no other
   * transaction holds its lock (tried, so a member in the middle of a batch
   * is never waited for). The lock (two int4 keys: the pool and round's
   * hash, the bucket) is held to the end of this transaction, and the claim
   * conflicts with a claim committed after this statement's snapshot, so a
   * bucket is never taken twice.
   *
   * Which buckets, from the claims of the round before: a chip should stay
   * with the member that checked its rows' signatures then (its cache), and
   * the members should have equal shares. The fair share is 64 over the
   * members of the round before (with this one). In order: (0) this
   * member's buckets of the round before, up to the fair share; (1)
   * buckets no one claimed then; (2) any member's buckets beyond its fair
   * share; (3) buckets of a member that has committed no batch of this
   * round (gone, or late); (4) while this member holds less than the fair
   * share of this round, the others' (a newcomer takes its share so). A
   * member at work keeps the rest of its share. The lock is tried outside
   * the sorted subquery (a volatile condition is not pushed into it), in
   * that order, until the batch is full. */
  PGresult *r;
  int rc = query_rows(
      c, "claim buckets",
      "WITH prev AS (SELECT bucket, verifier_id, row_number() OVER (PARTITION BY verifier_id "
      "ORDER BY bucket) AS k FROM verifier_claims WHERE pool = $1::text "
      "AND round_end_ns = $2::bigint - $4::bigint), "
      "share AS (SELECT (" CL_VSTORE_BUCKETS_TEXT " + count(*) - 1) / count(*) AS cap FROM "
      "(SELECT verifier_id FROM prev UNION SELECT $3::bigint) m), "
      "held AS (SELECT count(*) AS n FROM verifier_claims WHERE pool = $1::text "
      "AND round_end_ns = $2::bigint AND verifier_id = $3::bigint) "
      "INSERT INTO verifier_claims (pool, round_end_ns, bucket, verifier_id, interval_ns) "
      "SELECT $1::text, $2::bigint, f.b, $3::bigint, $4::bigint FROM (SELECT o.b FROM ("
      "SELECT g.b, CASE WHEN p.verifier_id IS NULL THEN 1 WHEN p.k > share.cap THEN 2 "
      "WHEN p.verifier_id = $3::bigint THEN 0 "
      "WHEN NOT EXISTS (SELECT 1 FROM verifier_claims w WHERE w.pool = $1::text "
      "AND w.round_end_ns = $2::bigint AND w.verifier_id = p.verifier_id) THEN 3 "
      "WHEN held.n < share.cap THEN 4 END AS rank "
      "FROM generate_series(0, " CL_VSTORE_BUCKETS_TEXT " - 1) AS g(b) "
      "CROSS JOIN share CROSS JOIN held LEFT JOIN prev p ON p.bucket = g.b "
      "WHERE NOT EXISTS (SELECT 1 FROM verifier_claims k WHERE k.pool = $1::text "
      "AND k.round_end_ns = $2::bigint AND k.bucket = g.b)) o "
      "WHERE o.rank IS NOT NULL ORDER BY o.rank, o.b OFFSET 0) f "
      "WHERE pg_try_advisory_xact_lock(hashtext($1::text || ' ' || $2::text), f.b) "
      "LIMIT $5::integer ON CONFLICT DO NOTHING RETURNING bucket",
      5, v, 0, &r, err, errlen);
  if (rc != CL_OK) return rc;
  for (int i = 0; i < PQntuples(r) && scope->n_buckets < CL_VSTORE_BUCKETS; i++)
    scope->buckets[scope->n_buckets++] = atoi(PQgetvalue(r, i, 0));
  PQclear(r);
  /* RETURNING gives no order: ascending, for the logs and the duty check. */
  for (size_t i = 1; i < scope->n_buckets; i++)
    for (size_t j = i; j > 0 && scope->buckets[j - 1] > scope->buckets[j]; j--) {
      int t = scope->buckets[j];
      scope->buckets[j] = scope->buckets[j - 1];
      scope->buckets[j - 1] = t;
    }
  return CL_OK;
}

int cl_vstore_pool_gaps(cl_store *s, const char *pool, uint64_t round_end_ns,
                        const int64_t *members, size_t n_members, int *ran, uint64_t *chips,
                        char *first_serial, size_t serial_len, char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  *ran = 0;
  *chips = 0;
  if (serial_len) first_serial[0] = '\0';
  char end[24];
  snprintf(end, sizeof end, "%llu", (unsigned long long)round_end_ns);
  char *m = int_array(members, n_members);
  if (!m) return no_memory("pool coverage", err, errlen);
  const char *v[3] = {pool, end, m};
  PGresult *r;
  int rc = query_rows(
      c, "pool coverage",
      "SELECT EXISTS (SELECT 1 FROM verifier_claims WHERE pool = $1::text "
      "AND round_end_ns = $2::bigint), count(*), min(c.serial COLLATE \"C\") "
      "FROM chips c WHERE c.active AND c.enrolled_at <= to_timestamp($2::bigint / 1e9) "
      "AND NOT EXISTS (SELECT 1 FROM attestations a WHERE a.chip_id = c.id "
      "AND a.round_end_ns = $2::bigint AND a.verifier_id = ANY($3::bigint[]))",
      3, v, 0, &r, err, errlen);
  free(m);
  if (rc != CL_OK) return rc;
  *ran = PQgetvalue(r, 0, 0)[0] == 't';
  if (*ran) {
    *chips = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
    if (serial_len) snprintf(first_serial, serial_len, "%s", PQgetvalue(r, 0, 2));
  }
  PQclear(r);
  return CL_OK;
}

int cl_vstore_pool_bad_records(cl_store *s, const char *pool, int64_t verifier_id,
                               const int64_t *members, size_t n_members,
                               const int64_t *landmark_ids, const uint64_t *refused,
                               char *const *detail, size_t n, char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  /* The landmarks with refusals and their details, as array literals. */
  tbuf ids = {0}, details = {0};
  size_t k = 0;
  char id[24];
  for (size_t i = 0; i < n; i++)
    if (refused[i]) {
      snprintf(id, sizeof id, "%lld", (long long)landmark_ids[i]);
      arr_add(&ids, k, id, 0);
      arr_add(&details, k, detail[i], 1);
      k++;
    }
  tb_str(&ids, k ? "}" : "{}");
  tb_str(&details, k ? "}" : "{}");
  char *m = int_array(members, n_members);
  char vid[24];
  snprintf(vid, sizeof vid, "%lld", (long long)verifier_id);
  int rc = CL_OK;
  if (!m || ids.oom || details.oom) rc = no_memory("landmark_bad_records", err, errlen);
  /* This verifier's alerts of landmarks without refusals now, and those of
   * former members, are cleared; the open ones whose detail changed get the
   * new one; the missing ones are opened. */
  const char *clear[4] = {vid, ids.p, m, pool};
  const char *rows[3] = {vid, ids.p, details.p};
  struct {
    const char *sql;
    int n;
    const char *const *v;
  } q[3] = {
      {"UPDATE alerts SET cleared_at = now() WHERE kind = 'landmark_bad_records' "
       "AND cleared_at IS NULL AND ((verifier_id = $1::bigint "
       "AND NOT (landmark_id = ANY($2::bigint[]))) OR (verifier_id <> ALL($3::bigint[]) "
       "AND EXISTS (SELECT 1 FROM verifier_claims k WHERE k.verifier_id = alerts.verifier_id "
       "AND k.pool = $4::text)))",
       4, clear},
      {"UPDATE alerts SET detail = t.detail FROM unnest($2::bigint[], $3::text[]) "
       "AS t(landmark_id, detail) WHERE alerts.kind = 'landmark_bad_records' "
       "AND alerts.cleared_at IS NULL AND alerts.verifier_id = $1::bigint "
       "AND alerts.landmark_id = t.landmark_id AND alerts.detail <> t.detail",
       3, rows},
      {"INSERT INTO alerts (kind, landmark_id, verifier_id, detail) "
       "SELECT 'landmark_bad_records', t.landmark_id, $1::bigint, t.detail "
       "FROM unnest($2::bigint[], $3::text[]) AS t(landmark_id, detail) "
       "WHERE NOT EXISTS (SELECT 1 FROM alerts a WHERE a.kind = 'landmark_bad_records' "
       "AND a.cleared_at IS NULL AND a.verifier_id = $1::bigint "
       "AND a.landmark_id = t.landmark_id)",
       3, rows}};
  for (int i = 0; i < 3 && rc == CL_OK; i++) {
    PGresult *r = PQexecParams(c, q[i].sql, q[i].n, NULL, q[i].v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      rc = fail(r, c, map_state(r), err, errlen, "landmark_bad_records");
    else
      PQclear(r);
  }
  free(m);
  free(ids.p);
  free(details.p);
  return rc;
}
