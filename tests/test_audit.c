/*
 * Integration tests of the audit (lib/db/cl_audit.c and `chiploc audit`)
 * against the throwaway PostgreSQL of the run.
 *
 * Each test builds its own database of really signed records without the
 * verifier binary: two landmarks, two chips allowed in two regions (FRA, DEU),
 * genuine protocol 2 records (tests/tu_record.c) written with
 * cl_store_insert_measurements and cl_store_insert_links (two landmark
 * links), a registered verifier, and per chip a chain of five
 * attestations made with cl_attest (consistent, inconsistent with an
 * excluded landmark, site excluded), named measurements and all, inserted
 * with parameterised SQL the way the verifier writes them. The chain
 * changes layout on the way, as it does when a verifier is upgraded: rounds
 * 0-2 are version 1, rounds 3-4 version 2 (citing the landmark signatures
 * and the digests of the site, the landmarks and the regions' geometry). A
 * clean database must audit clean; then one kind of tampering per test, and
 * the audit must name exactly the tampered row (or, for a deletion, the row
 * that reveals it) with the right problem. Protocol 1 rows, kept from
 * before the upgrade, are counted as legacy and are no finding. The last
 * test adds records written by the real `chiploc verify`, which must audit
 * clean next to the ones made here.
 */
#include "testutil.h"

#include "cl_attest.h"
#include "cl_audit.h"
#include "cl_err.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_probe.h"
#include "cl_region.h"
#include "cl_region_geojson.h"
#include "cl_store.h"
#include "tu_record.h"

#include <check.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_CHIPS 2
#define N_LMS 2
#define N_ROUNDS 5
#define ROUND_NS 60000000000ull
#define WINDOW_NS 300000000000ull
/* The first round attested with layout version 2. */
#define V2_FROM 3
#define N_REGIONS 2

/* The chips' declared site and the landmarks' positions. */
#define SITE_LAT 50.11
#define SITE_LON 8.68
static const double LM_POS[N_LMS][2] = {{48.8566, 2.3522}, {50.1109, 8.6821}};
/* The allowed regions: a box, and two polygons, one with a hole. */
static const char *const REGION_CODES[N_REGIONS] = {"FRA", "DEU"};
static const char *const REGION_GEOJSON[N_REGIONS] = {
    "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[-5.1,42.3],[8.2,42.3],[8.2,51.1],"
    "[-5.1,51.1],[-5.1,42.3]]]]}",
    "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[5.9,47.3],[15.0,47.3],[15.0,55.1],"
    "[5.9,55.1],[5.9,47.3]],[[8.0,50.0],[8.5,50.0],[8.5,50.5],[8.0,50.5],[8.0,50.0]]],"
    "[[[13.0,54.2],[14.5,54.2],[14.5,54.7],[13.0,54.2]]]]}",
};

/* ---- the world ------------------------------------------------------------- */

typedef struct {
  char *conninfo;
  PGconn *pg; /* the database owner's connection, for fixtures and tampering */
  cl_store *s;
  cl_key *lm[N_LMS], *chip[N_CHIPS], *verifier, *rogue;
  int64_t lm_id[N_LMS], chip_id[N_CHIPS], verifier_id;
  uint64_t t0_ns; /* round_end of round 0 */
  int64_t meas_id[N_CHIPS][N_ROUNDS][N_LMS];
  uint8_t meas_sig[N_CHIPS][N_ROUNDS][N_LMS][CL_SIG_LEN];
  int64_t att_id[N_CHIPS][N_ROUNDS];
  cl_attestation att[N_CHIPS][N_ROUNDS];
  uint8_t att_hash[N_CHIPS][N_ROUNDS][CL_HASH_LEN];
  int64_t link_id[N_LMS];
  uint8_t region_digest[N_REGIONS][CL_HASH_LEN]; /* geometry of REGION_CODES, as stored */
} world;

static cl_key *key_from_byte(uint8_t b) {
  uint8_t seed[32];
  memset(seed, b, sizeof seed);
  cl_key *k = NULL;
  ck_assert_int_eq(cl_key_from_seed(&k, seed), CL_OK);
  return k;
}

/* Runs a statement with text parameters (NULL for SQL NULL) and binary
 * results; asserts it succeeded. The caller clears the result. */
static PGresult *q(PGconn *c, const char *sql, int n, const char *const *v) {
  PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 1);
  ExecStatusType st = PQresultStatus(r);
  ck_assert_msg(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "%s: %s", sql,
                PQresultErrorMessage(r));
  return r;
}

static void q_do(PGconn *c, const char *sql, int n, const char *const *v) { PQclear(q(c, sql, n, v)); }

/* The bigint in row 0, column 0 of a binary result. */
static int64_t q_id(PGresult *r) {
  ck_assert_int_eq(PQntuples(r), 1);
  ck_assert_int_eq(PQgetlength(r, 0, 0), 8);
  int64_t v = (int64_t)cl_get_be64((const uint8_t *)PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

static void i64s(char *buf, size_t len, int64_t v) { snprintf(buf, len, "%" PRId64, v); }

/* A bytea parameter in text form: \x and hex. */
static void bytea_hex(char *out, const uint8_t *b, size_t n) {
  out[0] = '\\';
  out[1] = 'x';
  cl_hex_encode(out + 2, b, n);
}

/* A timestamptz literal for unix_ns cut to the microsecond, as the store
 * writes measured_at. */
static void ts_text(char *out, size_t len, uint64_t unix_ns) {
  time_t sec = (time_t)(unix_ns / 1000000000u);
  struct tm tm;
  gmtime_r(&sec, &tm);
  char day[32];
  strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm);
  snprintf(out, len, "%s.%06u+00", day, (unsigned)(unix_ns % 1000000000u / 1000u));
}

/* A genuine record as landmarkd builds it, of three probes whose fastest,
 * the first, has seq `seq` (so the row's seq column is seq) and RTT
 * rtt_ns. `peer` takes the chip's part: a chip, or another landmark for a
 * link. */
static void make_measurement(cl_measurement *m, const cl_key *lm, const cl_key *peer, uint64_t seq,
                             uint64_t rtt_ns, uint64_t measured_ns) {
  const uint64_t rtts[3] = {rtt_ns, rtt_ns + 3000u, rtt_ns + 1500u};
  ck_assert_int_eq(tu_record(m, lm, peer, seq, 3, rtts, measured_ns), CL_OK);
}

static void insert_measurements(world *w) {
  char err[512] = "";
  for (int l = 0; l < N_LMS; l++) {
    cl_store_row rows[N_CHIPS * N_ROUNDS];
    size_t n = 0;
    for (int c = 0; c < N_CHIPS; c++)
      for (int r = 0; r < N_ROUNDS; r++) {
        cl_store_row *row = &rows[n++];
        memset(row, 0, sizeof *row);
        uint64_t seq = (uint64_t)(r * 100 + c * 10 + l);
        uint64_t rtt = 2000000u + 7919u * seq; /* a few hundred km */
        make_measurement(&row->m, w->lm[l], w->chip[c], seq, rtt,
                         w->t0_ns + (uint64_t)r * ROUND_NS - 1000000000u - 1234u);
        row->chip_id = w->chip_id[c];
        row->bound_m = cl_bound_m(rtt, CL_SPEED_C);
        row->est_speed = CL_SPEED_FIBRE;
        row->est_bound_m = cl_bound_m(rtt, CL_SPEED_FIBRE);
      }
    ck_assert_msg(cl_store_insert_measurements(w->s, w->lm_id[l], rows, n, err, sizeof err) ==
                      CL_OK,
                  "%s", err);
  }
  /* Their ids and landmark signatures, as the verifier reads them. */
  for (int c = 0; c < N_CHIPS; c++)
    for (int r = 0; r < N_ROUNDS; r++)
      for (int l = 0; l < N_LMS; l++) {
        char lid[24], seq[24];
        i64s(lid, sizeof lid, w->lm_id[l]);
        i64s(seq, sizeof seq, r * 100 + c * 10 + l);
        const char *v[2] = {lid, seq};
        PGresult *res = q(w->pg,
                          "SELECT id, landmark_sig FROM measurements"
                          " WHERE landmark_id = $1::bigint AND seq = $2::bigint",
                          2, v);
        ck_assert_int_eq(PQntuples(res), 1);
        ck_assert_int_eq(PQgetlength(res, 0, 1), CL_SIG_LEN);
        memcpy(w->meas_sig[c][r][l], PQgetvalue(res, 0, 1), CL_SIG_LEN);
        w->meas_id[c][r][l] = q_id(res);
      }
}

/* Landmark l probes the other landmark: a link record signed like a
 * measurement, the peer's key in the chip's part, written as landmarkd
 * writes links. */
static void insert_links(world *w) {
  char err[512] = "";
  for (int l = 0; l < N_LMS; l++) {
    int peer = (l + 1) % N_LMS;
    cl_store_row row;
    memset(&row, 0, sizeof row);
    uint64_t rtt = 5000000u + (uint64_t)l * 111u;
    make_measurement(&row.m, w->lm[l], w->lm[peer], 900u + (uint64_t)l, rtt, w->t0_ns - 7777u);
    row.chip_id = w->lm_id[peer];
    row.is_link = 1;
    row.bound_m = cl_bound_m(rtt, CL_SPEED_C);
    row.est_speed = CL_SPEED_FIBRE;
    row.est_bound_m = cl_bound_m(rtt, CL_SPEED_FIBRE);
    ck_assert_msg(cl_store_insert_links(w->s, w->lm_id[l], &row, 1, err, sizeof err) == CL_OK,
                  "%s", err);
    char from[24];
    i64s(from, sizeof from, w->lm_id[l]);
    const char *v[1] = {from};
    w->link_id[l] =
        q_id(q(w->pg, "SELECT id FROM landmark_links WHERE from_landmark_id = $1::bigint", 1, v));
  }
}

/* An attestation row exactly as the verifier writes it (cl_vwriter_add):
 * ids for the keys, arrays for the digests, and for version 2 the cited
 * landmark signatures (in the order of the ids) and the input digests.
 * site_lm and excluded_lm are landmark indices or -1. Returns the row's id. */
static int64_t insert_attestation(world *w, int c, const cl_attestation *a,
                                  const uint8_t hash[CL_HASH_LEN], int site_lm, int excluded_lm,
                                  const int64_t *meas_ids, const uint8_t (*meas_sigs)[CL_SIG_LEN],
                                  size_t n_meas) {
  char chip[24], vid[24], end[24], win[24], cons[8], site[8], region[8], speed[24], lat[16],
      lon[16], radius[24], slm[24], margin[24], excluded[32], used[16], meas[256];
  char prev[2 + 64 + 1], hash_s[2 + 64 + 1], sig[2 + 128 + 1], version[8], sigs[1024],
      site_d[2 + 64 + 1], lms_d[2 + 64 + 1], regions_d[2 + 64 + 1];
  i64s(chip, sizeof chip, w->chip_id[c]);
  i64s(vid, sizeof vid, w->verifier_id);
  i64s(end, sizeof end, (int64_t)a->round_end_ns);
  i64s(win, sizeof win, (int64_t)a->window_ns);
  snprintf(cons, sizeof cons, "%u", a->consistency);
  snprintf(site, sizeof site, "%u", a->site);
  snprintf(region, sizeof region, "%u", a->region);
  i64s(speed, sizeof speed, (int64_t)a->speed_m_per_s);
  snprintf(lat, sizeof lat, "%d", a->centre_lat_e7);
  snprintf(lon, sizeof lon, "%d", a->centre_lon_e7);
  i64s(radius, sizeof radius, (int64_t)a->radius_m);
  if (site_lm >= 0) i64s(slm, sizeof slm, w->lm_id[site_lm]);
  i64s(margin, sizeof margin, a->site_margin_m);
  if (excluded_lm >= 0)
    snprintf(excluded, sizeof excluded, "{%" PRId64 "}", w->lm_id[excluded_lm]);
  else
    snprintf(excluded, sizeof excluded, "{}");
  snprintf(used, sizeof used, "%zu", n_meas);
  size_t o = (size_t)snprintf(meas, sizeof meas, "{");
  for (size_t i = 0; i < n_meas; i++)
    o += (size_t)snprintf(meas + o, sizeof meas - o, "%s%" PRId64, i ? "," : "", meas_ids[i]);
  snprintf(meas + o, sizeof meas - o, "}");
  bytea_hex(prev, a->prev_hash, CL_HASH_LEN);
  bytea_hex(hash_s, hash, CL_HASH_LEN);
  bytea_hex(sig, a->sig, CL_SIG_LEN);
  snprintf(version, sizeof version, "%u", a->version);
  int v2 = a->version == CL_ATT_V2;
  if (v2) {
    /* bytea[] as text: {"\\x..","\\x.."} */
    o = (size_t)snprintf(sigs, sizeof sigs, "{");
    for (size_t i = 0; i < n_meas; i++) {
      char hex[2 * CL_SIG_LEN + 1];
      cl_hex_encode(hex, meas_sigs[i], CL_SIG_LEN);
      o += (size_t)snprintf(sigs + o, sizeof sigs - o, "%s\"\\\\x%s\"", i ? "," : "", hex);
    }
    ck_assert_uint_lt(o, sizeof sigs - 1);
    snprintf(sigs + o, sizeof sigs - o, "}");
    bytea_hex(site_d, a->site_digest, CL_HASH_LEN);
    bytea_hex(lms_d, a->landmarks_digest, CL_HASH_LEN);
    bytea_hex(regions_d, a->regions_digest, CL_HASH_LEN);
  }
  const char *v[25] = {chip,   vid,  end,      win,    cons,     site,
                       region, speed, lat,     lon,    radius,   site_lm >= 0 ? slm : NULL,
                       margin, "{\"FRA\",\"DEU\"}", excluded, used, meas, prev, hash_s, sig,
                       version, v2 ? sigs : NULL, v2 ? site_d : NULL, v2 ? lms_d : NULL,
                       v2 ? regions_d : NULL};
  return q_id(q(w->pg,
                "INSERT INTO attestations (chip_id, verifier_id, round_end_ns, round_end,"
                " window_ns, consistency, site_verdict, region_verdict, speed_m_s, centre_lat_e7,"
                " centre_lon_e7, radius_m, site_landmark_id, site_margin_m, allowed_regions,"
                " excluded_landmark_ids, landmarks_used, measurement_ids, prev_hash, hash,"
                " signature, layout_version, measurement_sigs, site_digest, landmarks_digest,"
                " regions_digest) VALUES ($1::bigint, $2::bigint, $3::bigint,"
                " to_timestamp($3::bigint / 1e9), $4::bigint, $5::smallint, $6::smallint,"
                " $7::smallint, $8::bigint, $9::integer, $10::integer, $11::bigint, $12::bigint,"
                " $13::bigint, $14::text[], $15::bigint[], $16::integer, $17::bigint[],"
                " $18::bytea, $19::bytea, $20::bytea, $21::smallint, $22::bytea[], $23::bytea,"
                " $24::bytea, $25::bytea) RETURNING id",
                25, v));
}

/* The unsigned attestation of chip c for round r, chained to prev, naming
 * the measurements of round mr. Round 2 is INCONSISTENT (landmark 1 named
 * for removal), round 3 SITE_EXCLUDED by landmark 0, the others CONSISTENT
 * and INSIDE. Rounds from V2_FROM on are version 2, their digests made from
 * what the world enrolled, as the verifier loads it. */
static void make_attestation(world *w, int c, int r, int mr, const uint8_t prev[CL_HASH_LEN],
                             cl_attestation *a, int *site_lm, int *excluded_lm) {
  memset(a, 0, sizeof *a);
  a->version = r >= V2_FROM ? CL_ATT_V2 : CL_ATT_V1;
  memcpy(a->chip, cl_key_public(w->chip[c]), CL_PK_LEN);
  memcpy(a->verifier, cl_key_public(w->verifier), CL_PK_LEN);
  a->round_end_ns = w->t0_ns + (uint64_t)r * ROUND_NS;
  a->window_ns = WINDOW_NS;
  memcpy(a->prev_hash, prev, CL_HASH_LEN);
  a->speed_m_per_s = 299792458u;
  *site_lm = -1;
  *excluded_lm = -1;
  uint8_t excluded_pk[1][CL_PK_LEN];
  size_t n_excluded = 0;
  if (r == 2) {
    a->consistency = CL_ATT_INCONSISTENT;
    *excluded_lm = 1;
    memcpy(excluded_pk[0], cl_key_public(w->lm[1]), CL_PK_LEN);
    n_excluded = 1;
  } else {
    a->consistency = CL_ATT_CONSISTENT;
    a->centre_lat_e7 = 501100000 + c * 1000;
    a->centre_lon_e7 = 86800000 - r * 1000;
    a->radius_m = 250000u + (uint64_t)r;
    a->region = CL_ATT_REGION_INSIDE;
    a->site = CL_ATT_SITE_CONSISTENT;
  }
  if (r == 3) {
    a->site = CL_ATT_SITE_EXCLUDED;
    a->region = CL_ATT_REGION_UNDETERMINED;
    memcpy(a->site_landmark, cl_key_public(w->lm[0]), CL_PK_LEN);
    a->site_margin_m = 12345;
    *site_lm = 0;
  }
  a->n_excluded = (uint8_t)n_excluded;
  const char *codes[] = {"FRA", "DEU"};
  ck_assert_int_eq(cl_attest_digest_codes(codes, 2, a->allowed_digest), CL_OK);
  ck_assert_int_eq(cl_attest_digest_keys((const uint8_t(*)[CL_PK_LEN])excluded_pk, n_excluded,
                                         a->excluded_digest),
                   CL_OK);
  a->n_measurements = N_LMS;
  ck_assert_int_lt(mr, N_ROUNDS);
  ck_assert_int_eq(cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])w->meas_sig[c][mr], N_LMS,
                                         a->measurements_digest),
                   CL_OK);
  if (a->version != CL_ATT_V2) return;
  cl_attest_digest_site(SITE_LAT, SITE_LON, a->site_digest);
  cl_attest_landmark lms[N_LMS];
  for (int l = 0; l < N_LMS; l++) {
    memcpy(lms[l].pk, cl_key_public(w->lm[l]), CL_PK_LEN);
    lms[l].lat = LM_POS[l][0];
    lms[l].lon = LM_POS[l][1];
  }
  ck_assert_int_eq(cl_attest_digest_landmarks(lms, N_LMS, a->landmarks_digest), CL_OK);
  ck_assert_int_eq(cl_attest_digest_regions(REGION_CODES,
                                            (const uint8_t(*)[CL_HASH_LEN])w->region_digest,
                                            N_REGIONS, a->regions_digest),
                   CL_OK);
}

static void insert_chains(world *w) {
  for (int c = 0; c < N_CHIPS; c++) {
    uint8_t prev[CL_HASH_LEN] = {0};
    for (int r = 0; r < N_ROUNDS; r++) {
      cl_attestation *a = &w->att[c][r];
      int site_lm, excluded_lm;
      make_attestation(w, c, r, r, prev, a, &site_lm, &excluded_lm);
      cl_attest_sign(a, w->verifier);
      ck_assert_int_eq(cl_attest_verify(a), CL_OK);
      cl_attest_hash(a, w->att_hash[c][r]);
      w->att_id[c][r] = insert_attestation(w, c, a, w->att_hash[c][r], site_lm, excluded_lm,
                                           w->meas_id[c][r],
                                           (const uint8_t(*)[CL_SIG_LEN])w->meas_sig[c][r], N_LMS);
      memcpy(prev, w->att_hash[c][r], CL_HASH_LEN);
    }
  }
}

/* The geometry digest of region g as the database holds it now: its
 * geojson parsed by the GeoJSON region parser, as the verifier loads it. */
static void region_digest_now(world *w, int g, uint8_t out[CL_HASH_LEN]) {
  const char *v[1] = {REGION_CODES[g]};
  PGresult *r = PQexecParams(w->pg, "SELECT geojson::text FROM regions WHERE code = $1::text", 1,
                             NULL, v, NULL, NULL, 0);
  ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
  ck_assert_int_eq(PQntuples(r), 1);
  cl_region_set set;
  char err[256] = "";
  ck_assert_msg(cl_region_set_parse_geojson(&set, PQgetvalue(r, 0, 0),
                                            (size_t)PQgetlength(r, 0, 0), "code", err,
                                            sizeof err) == CL_OK,
                "%s", err);
  ck_assert_uint_eq(set.n, 1);
  ck_assert_int_eq(cl_region_digest(set.regions[0], out), CL_OK);
  cl_region_set_free(&set);
  PQclear(r);
}

/* The world, its rounds ending at t0_ns + r minutes (t0_ns on a whole
 * minute). */
static void world_init_at(world *w, const char *dbname, uint64_t t0_ns) {
  memset(w, 0, sizeof *w);
  w->conninfo = tu_db_create(dbname);
  char err[512] = "";
  ck_assert_msg(cl_store_connect(&w->s, w->conninfo, err, sizeof err) == CL_OK, "%s", err);
  int applied = 0;
  ck_assert_msg(cl_store_migrate(w->s, &applied, err, sizeof err) == CL_OK, "migrate: %s", err);
  w->pg = PQconnectdb(w->conninfo);
  ck_assert_int_eq(PQstatus(w->pg), CONNECTION_OK);

  static const char *const lm_names[N_LMS] = {"lm-paris", "lm-frankfurt"};
  for (int l = 0; l < N_LMS; l++) {
    w->lm[l] = key_from_byte((uint8_t)(0x01 + l));
    ck_assert_msg(cl_store_landmark_add(w->s, lm_names[l], cl_key_public(w->lm[l]), LM_POS[l][0],
                                        LM_POS[l][1], &w->lm_id[l], err, sizeof err) == CL_OK,
                  "%s", err);
  }
  for (int g = 0; g < N_REGIONS; g++) {
    ck_assert_msg(cl_store_region_put(w->s, REGION_CODES[g], REGION_GEOJSON[g], 14, err,
                                      sizeof err) == CL_OK,
                  "%s", err);
    region_digest_now(w, g, w->region_digest[g]);
  }
  static const char *const serials[N_CHIPS] = {"A-0001", "B-0002"};
  for (int c = 0; c < N_CHIPS; c++) {
    w->chip[c] = key_from_byte((uint8_t)(0x11 + c));
    ck_assert_msg(cl_store_chip_enroll(w->s, cl_key_public(w->chip[c]), serials[c], "Example DC",
                                       SITE_LAT, SITE_LON, &w->chip_id[c], err, sizeof err) ==
                      CL_OK,
                  "%s", err);
    for (int g = 0; g < N_REGIONS; g++)
      ck_assert_msg(cl_store_chip_allow(w->s, w->chip_id[c], REGION_CODES[g], err, sizeof err) ==
                        CL_OK,
                    "%s", err);
  }
  w->verifier = key_from_byte(0x21);
  w->rogue = key_from_byte(0x66);
  char pk[2 + 64 + 1];
  bytea_hex(pk, cl_key_public(w->verifier), CL_PK_LEN);
  const char *v[2] = {"verifier-1", pk};
  w->verifier_id = q_id(q(w->pg,
                          "INSERT INTO verifiers (name, public_key) VALUES ($1::text, $2::bytea)"
                          " RETURNING id",
                          2, v));

  w->t0_ns = t0_ns;
  insert_measurements(w);
  insert_links(w);
  insert_chains(w);
}

/* Round ends on whole minutes, the last one a minute ago. */
static void world_init(world *w, const char *dbname) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t now_s = (uint64_t)ts.tv_sec;
  world_init_at(w, dbname, (now_s / 60u * 60u - 60u * N_ROUNDS) * 1000000000ull);
}

static void world_fini(world *w) {
  cl_store_destroy(&w->s);
  PQfinish(w->pg);
  for (int l = 0; l < N_LMS; l++) cl_key_destroy(&w->lm[l]);
  for (int c = 0; c < N_CHIPS; c++) cl_key_destroy(&w->chip[c]);
  cl_key_destroy(&w->verifier);
  cl_key_destroy(&w->rogue);
  free(w->conninfo);
}

/* ---- checking the audit ------------------------------------------------------- */

typedef struct {
  cl_audit_table table;
  int64_t id;
  cl_audit_problem problem;
} want_finding;

static void run_audit(world *w, cl_audit_report *rep) {
  char err[512] = "";
  int rc = cl_audit_run(w->s, rep, err, sizeof err);
  ck_assert_msg(rc == CL_OK, "audit: %s (%s)", err, cl_strerror(rc));
}

static void print_findings(const cl_audit_report *rep, char *buf, size_t len) {
  size_t o = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < rep->n_findings && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "[%s id=%" PRId64 " %s] ",
                          cl_audit_table_name(rep->findings[i].table), rep->findings[i].id,
                          cl_audit_problem_name(rep->findings[i].problem));
}

static int want_before(const want_finding *x, const want_finding *y) {
  if (x->table != y->table) return x->table < y->table;
  if (x->id != y->id) return x->id < y->id;
  return x->problem < y->problem;
}

/* The audit's findings are exactly `want` (in any order; the report's is
 * table, id, problem), and it checked the whole world. */
static void expect_findings(world *w, const want_finding *want_in, size_t n,
                            int64_t measurements, int64_t attestations, cl_audit_report *out) {
  want_finding want[64];
  ck_assert_uint_le(n, 64);
  if (n) memcpy(want, want_in, n * sizeof *want);
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && want_before(&want[j], &want[j - 1]); j--) {
      want_finding t = want[j];
      want[j] = want[j - 1];
      want[j - 1] = t;
    }
  cl_audit_report rep;
  run_audit(w, &rep);
  char got[2048];
  print_findings(&rep, got, sizeof got);
  ck_assert_msg(rep.n_findings == n && rep.problems == (int64_t)n, "wanted %zu finding(s), got %s",
                n, got);
  for (size_t i = 0; i < n; i++) {
    const cl_audit_finding *f = &rep.findings[i];
    ck_assert_msg(f->table == want[i].table && f->id == want[i].id &&
                      f->problem == want[i].problem,
                  "finding %zu: wanted %s id=%" PRId64 " %s, got %s", i,
                  cl_audit_table_name(want[i].table), want[i].id,
                  cl_audit_problem_name(want[i].problem), got);
  }
  ck_assert_int_eq(rep.measurements, measurements);
  ck_assert_int_eq(rep.links, N_LMS);
  ck_assert_int_eq(rep.attestations, attestations);
  if (out)
    *out = rep;
  else
    cl_audit_report_free(&rep);
}

/* Sorts a few ids in place, for the order findings come in. */
static void sort_ids(int64_t *ids, size_t n) {
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && ids[j - 1] > ids[j]; j--) {
      int64_t t = ids[j];
      ids[j] = ids[j - 1];
      ids[j - 1] = t;
    }
}

#define ALL_MEAS (N_CHIPS * N_ROUNDS * N_LMS)
#define ALL_ATT (N_CHIPS * N_ROUNDS)

/* Runs `chiploc audit ARGS...` (NULL-terminated); returns the exit status
 * and the output (stdout and stderr) through *out, malloc'd. */
static int cli(char **out, ...) {
  static int runs;
  char *dir = tu_tmpdir("chiploc-audit-cli");
  char log[512];
  snprintf(log, sizeof log, "%s/run%d.log", dir, runs++);
  char *bin = tu_bin("server/chiploc");
  char *argv[16];
  int argc = 0;
  argv[argc++] = bin;
  argv[argc++] = "audit";
  va_list ap;
  va_start(ap, out);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && argc < 15) argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  int rc = tu_run(argv, log);
  *out = tu_read_file(log);
  ck_assert_ptr_nonnull(*out);
  remove(log);
  remove(dir);
  free(dir);
  free(bin);
  return rc;
}

static char *sql_text(PGconn *c, const char *sql, int n, const char *const *v) {
  PGresult *r = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
  ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
  ck_assert_int_eq(PQntuples(r), 1);
  char *s = strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  return s;
}

/* ---- a clean database ------------------------------------------------------------ */

START_TEST(test_clean) {
  world w;
  world_init(&w, "cl_audit_clean");
  cl_audit_report rep;
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, &rep);
  ck_assert_int_eq(rep.chains, N_CHIPS);
  ck_assert_ptr_null(rep.findings);
  cl_audit_report_free(&rep);
  cl_audit_report_free(&rep); /* twice is harmless */
  cl_audit_report_free(NULL);

  /* The CLI: exit 0 and the summary; --json; CHIPLOC_DB. */
  char *o = NULL;
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, NULL), 0);
  ck_assert_str_eq(o, "audit: 20 measurements, 2 links, 10 attestations checked; 0 problem(s)\n");
  free(o);
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, "--json", NULL), 0);
  ck_assert_str_eq(o, "{\"measurements\":20,\"links\":2,\"attestations\":10,\"chains\":2,"
                      "\"legacy\":{\"measurements\":0,\"links\":0,\"attestations\":0},"
                      "\"retired\":{\"attestations\":0,\"ranges\":0,\"ignored_ranges\":0,"
                      "\"until\":null},\"pools\":{\"pools\":0,\"rounds\":0,\"gaps\":0,"
                      "\"first\":[]},\"problems\":0,\"findings\":[],\"truncated\":false}\n");
  free(o);
  setenv("CHIPLOC_DB", w.conninfo, 1);
  ck_assert_int_eq(cli(&o, NULL), 0);
  ck_assert_ptr_nonnull(strstr(o, "0 problem(s)"));
  free(o);
  unsetenv("CHIPLOC_DB");

  /* The verifier role may run it; the dashboard role may not. */
  char err[512] = "";
  ck_assert_msg(tu_sql(w.conninfo,
                       "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname ="
                       " 'audit_ver_test') THEN CREATE ROLE audit_ver_test LOGIN; END IF;"
                       " IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'audit_dash_test')"
                       " THEN CREATE ROLE audit_dash_test LOGIN; END IF; END $$;"
                       " GRANT chiploc_verifier TO audit_ver_test;"
                       " GRANT chiploc_dashboard TO audit_dash_test",
                       err, sizeof err) == 0,
                "%s", err);
  char *ver = tu_conninfo_as(w.conninfo, "audit_ver_test");
  /* Bound to a verifier, as a verifier's login is: the audit needs no
   * binding, so this only checks that binding changes nothing for it. */
  ck_assert_msg(tu_sql(w.conninfo, "UPDATE verifiers SET db_role = 'audit_ver_test'", err,
                       sizeof err) == 0,
                "%s", err);
  char *dash = tu_conninfo_as(w.conninfo, "audit_dash_test");
  ck_assert_int_eq(cli(&o, "--db", ver, NULL), 0);
  free(o);
  ck_assert_int_eq(cli(&o, "--db", dash, NULL), 1);
  ck_assert_msg(strstr(o, "chiploc: audit: reading measurements: permission denied") != NULL, "%s",
                o);
  free(o);
  cl_store *ds = NULL;
  ck_assert_int_eq(cl_store_connect(&ds, dash, err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_audit_run(ds, &rep, err, sizeof err), CL_EPERM);
  ck_assert_ptr_null(rep.findings);
  ck_assert_int_eq(rep.measurements, 0);
  /* The failed run left the connection usable and outside a transaction. */
  ck_assert_int_eq(cl_audit_run(ds, &rep, err, sizeof err), CL_EPERM);
  cl_store_destroy(&ds);
  free(ver);
  free(dash);

  /* Not inside the caller's transaction. */
  ck_assert_int_eq(cl_store_begin(w.s, err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_audit_run(w.s, &rep, err, sizeof err), CL_EINVAL);
  cl_store_rollback(w.s);
  run_audit(&w, &rep);
  ck_assert_int_eq(rep.problems, 0);
  cl_audit_report_free(&rep);
  world_fini(&w);
}
END_TEST

START_TEST(test_cli_usage) {
  char *o = NULL;
  ck_assert_int_eq(cli(&o, "--help", NULL), 0);
  ck_assert_ptr_nonnull(strstr(o, "usage: chiploc audit"));
  ck_assert_ptr_nonnull(strstr(o, "4 findings"));
  free(o);
  ck_assert_int_eq(cli(&o, "--frob", NULL), 2);
  ck_assert_ptr_nonnull(strstr(o, "chiploc: audit: unknown option --frob"));
  free(o);
  ck_assert_int_eq(cli(&o, "--db", NULL), 2);
  ck_assert_ptr_nonnull(strstr(o, "--db needs a value"));
  free(o);
  ck_assert_int_eq(cli(&o, "--db", "dbname=x", "extra", NULL), 2);
  ck_assert_ptr_nonnull(strstr(o, "unexpected argument extra"));
  free(o);
  unsetenv("CHIPLOC_DB");
  ck_assert_int_eq(cli(&o, NULL), 2);
  ck_assert_ptr_nonnull(strstr(o, "CHIPLOC_DB"));
  free(o);
  ck_assert_int_eq(cli(&o, "--db", "host=/nonexistent dbname=none", NULL), 1);
  ck_assert_ptr_nonnull(strstr(o, "chiploc: "));
  free(o);
}
END_TEST

/* ---- measurements and links ---------------------------------------------------------- */

START_TEST(test_measurement_edited) {
  world w;
  world_init(&w, "cl_audit_meas_edit");
  int64_t id = w.meas_id[0][1][0];
  char ids[24];
  i64s(ids, sizeof ids, id);
  const char *v[1] = {ids};
  q_do(w.pg, "UPDATE measurements SET rtt_ns = rtt_ns - 1000 WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_MEASUREMENTS, id, CL_AUDIT_SIGNATURE}};
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT, NULL);

  /* The CLI says the same, exits 4. */
  char *o = NULL;
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, NULL), 4);
  char line[128];
  snprintf(line, sizeof line, "measurements id=%" PRId64 " signature\naudit: 20 measurements,"
                              " 2 links, 10 attestations checked; 1 problem(s)\n", id);
  ck_assert_str_eq(o, line);
  free(o);
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, "--json", NULL), 4);
  snprintf(line, sizeof line,
           "\"findings\":[{\"table\":\"measurements\",\"id\":%" PRId64 ",\"problem\":\"signature\"}]",
           id);
  ck_assert_msg(strstr(o, line) != NULL, "%s", o);
  ck_assert_ptr_nonnull(strstr(o, "\"problems\":1,"));
  free(o);
  world_fini(&w);
}
END_TEST

/* Every part of a protocol 2 record is covered: each byte edit below is
 * its own inverse, so the row is clean again after the second. */
START_TEST(test_measurement_record_edited) {
  world w;
  world_init(&w, "cl_audit_meas_record");
  /* Cited by a version-1 attestation, which goes by its landmark_sig only. */
  int64_t id = w.meas_id[0][1][0];
  char ids[24];
  i64s(ids, sizeof ids, id);
  const char *v[1] = {ids};
  static const char *const edits[] = {
      /* the landmark's ephemeral key, the chip's nonce, each handshake signature */
      "UPDATE measurements SET handshake = set_byte(handshake, 3, get_byte(handshake, 3) # 1)"
      " WHERE id = $1::bigint",
      "UPDATE measurements SET handshake = set_byte(handshake, 100, get_byte(handshake, 100) # 1)"
      " WHERE id = $1::bigint",
      "UPDATE measurements SET handshake = set_byte(handshake, 130, get_byte(handshake, 130) # 1)"
      " WHERE id = $1::bigint",
      "UPDATE measurements SET handshake = set_byte(handshake, 250, get_byte(handshake, 250) # 1)"
      " WHERE id = $1::bigint",
      /* the second entry's seq, nonce, MAC and RTT */
      "UPDATE measurements SET probes = set_byte(probes, 87, get_byte(probes, 87) # 1)"
      " WHERE id = $1::bigint",
      "UPDATE measurements SET probes = set_byte(probes, 100, get_byte(probes, 100) # 1)"
      " WHERE id = $1::bigint",
      "UPDATE measurements SET probes = set_byte(probes, 130, get_byte(probes, 130) # 1)"
      " WHERE id = $1::bigint",
      "UPDATE measurements SET probes = set_byte(probes, 159, get_byte(probes, 159) # 1)"
      " WHERE id = $1::bigint",
      /* the entries swapped (seqs out of order) */
      "UPDATE measurements SET probes = substring(probes from 81 for 80) ||"
      " substring(probes from 1 for 80) || substring(probes from 161) WHERE id = $1::bigint",
      "UPDATE measurements SET transcript_sig ="
      " set_byte(transcript_sig, 0, get_byte(transcript_sig, 0) # 1) WHERE id = $1::bigint",
      "UPDATE measurements SET suite = 3 - suite WHERE id = $1::bigint",
      "UPDATE measurements SET probes_sent = probes_sent # 4 WHERE id = $1::bigint",
      "UPDATE measurements SET measured_at_ns = measured_at_ns # 1 WHERE id = $1::bigint",
  };
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    q_do(w.pg, edits[i], 1, v);
    cl_audit_report rep;
    run_audit(&w, &rep);
    char got[2048];
    print_findings(&rep, got, sizeof got);
    ck_assert_msg(rep.n_findings == 1 && rep.findings[0].table == CL_AUDIT_MEASUREMENTS &&
                      rep.findings[0].id == id && rep.findings[0].problem == CL_AUDIT_SIGNATURE,
                  "%s: got %s", edits[i], got);
    cl_audit_report_free(&rep);
    q_do(w.pg, edits[i], 1, v);
    expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);
  }

  /* A record its landmark signed over a handshake the chip never signed:
   * the verifier's rule does not look at the handshake signatures (the
   * transcript covers the session), the audit does. */
  cl_store_row row;
  memset(&row, 0, sizeof row);
  make_measurement(&row.m, w.lm[1], w.chip[0], 7777u, 3000000u, w.t0_ns - 5000000000ull);
  memset(row.m.hs.chip_sig, 0, CL_SIG_LEN);
  ck_assert_int_eq(cl_measurement_sign(&row.m, w.lm[1]), CL_OK);
  row.chip_id = w.chip_id[0];
  row.bound_m = cl_bound_m(row.m.rtt_ns, CL_SPEED_C);
  row.est_speed = CL_SPEED_FIBRE;
  row.est_bound_m = cl_bound_m(row.m.rtt_ns, CL_SPEED_FIBRE);
  char err[512] = "";
  ck_assert_msg(cl_store_insert_measurements(w.s, w.lm_id[1], &row, 1, err, sizeof err) == CL_OK,
                "%s", err);
  char *bad = sql_text(w.pg, "SELECT id FROM measurements WHERE seq = 7777", 0, NULL);
  want_finding want[] = {{CL_AUDIT_MEASUREMENTS, strtoll(bad, NULL, 10), CL_AUDIT_SIGNATURE}};
  expect_findings(&w, want, 1, ALL_MEAS + 1, ALL_ATT, NULL);
  free(bad);
  world_fini(&w);
}
END_TEST

START_TEST(test_measurement_unsigned_columns) {
  world w;
  world_init(&w, "cl_audit_meas_derived");
  /* bound_m, measured_at, nonce and seq are not signed; they must agree
   * with rtt_ns, measured_at_ns and the fastest probe's nonce and seq,
   * which are. */
  int64_t a = w.meas_id[1][0][1], b = w.meas_id[0][4][0], c = w.meas_id[1][3][0],
          d = w.meas_id[0][2][1], e = w.meas_id[1][4][0];
  char as[24], bs[24], cs[24], ds[24], es[24];
  i64s(as, sizeof as, a);
  i64s(bs, sizeof bs, b);
  i64s(cs, sizeof cs, c);
  i64s(ds, sizeof ds, d);
  i64s(es, sizeof es, e);
  const char *va[1] = {as}, *vb[1] = {bs}, *vc[1] = {cs}, *vd[1] = {ds}, *ve[1] = {es};
  q_do(w.pg, "UPDATE measurements SET bound_m = bound_m * 2 WHERE id = $1::bigint", 1, va);
  q_do(w.pg, "UPDATE measurements SET measured_at = measured_at - interval '10 minutes'"
             " WHERE id = $1::bigint", 1, vb);
  q_do(w.pg, "UPDATE measurements SET measured_at = measured_at + interval '500 milliseconds'"
             " WHERE id = $1::bigint", 1, vc);
  /* The second probe's seq, and a nonce no probe had. e is cited by a
   * version-2 attestation, which finds it by its signature all the same. */
  q_do(w.pg, "UPDATE measurements SET seq = seq + 1 WHERE id = $1::bigint", 1, vd);
  q_do(w.pg, "UPDATE measurements SET nonce = sha256(nonce) WHERE id = $1::bigint", 1, ve);
  /* b is cited by the version-2 attestation of its round, which looks for
   * its evidence by measured_at (the indexed column) within a second of
   * the window, as the verifier does: moved by ten minutes, the row is
   * not found there, and that attestation's evidence is reported missing
   * too. c, moved by half a second, is still found. */
  int64_t ids[5] = {a, b, c, d, e};
  sort_ids(ids, 5);
  want_finding want[] = {{CL_AUDIT_MEASUREMENTS, ids[0], CL_AUDIT_DERIVED_COLUMN},
                         {CL_AUDIT_MEASUREMENTS, ids[1], CL_AUDIT_DERIVED_COLUMN},
                         {CL_AUDIT_MEASUREMENTS, ids[2], CL_AUDIT_DERIVED_COLUMN},
                         {CL_AUDIT_MEASUREMENTS, ids[3], CL_AUDIT_DERIVED_COLUMN},
                         {CL_AUDIT_MEASUREMENTS, ids[4], CL_AUDIT_DERIVED_COLUMN},
                         {CL_AUDIT_ATTESTATIONS, w.att_id[0][4], CL_AUDIT_EVIDENCE}};
  cl_audit_report rep;
  expect_findings(&w, want, 6, ALL_MEAS, ALL_ATT, &rep);
  ck_assert_int_eq(rep.findings[5].ref, 0);
  cl_audit_report_free(&rep);
  world_fini(&w);
}
END_TEST

START_TEST(test_measurement_deleted) {
  world w;
  world_init(&w, "cl_audit_meas_delete");
  int64_t id = w.meas_id[1][2][1];
  char ids[24];
  i64s(ids, sizeof ids, id);
  const char *v[1] = {ids};
  q_do(w.pg, "DELETE FROM measurements WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[1][2], CL_AUDIT_MEASUREMENT_MISSING}};
  cl_audit_report rep;
  expect_findings(&w, want, 1, ALL_MEAS - 1, ALL_ATT, &rep);
  ck_assert_int_eq(rep.findings[0].ref, id);
  cl_audit_report_free(&rep);
  world_fini(&w);
}
END_TEST

START_TEST(test_link_edited) {
  world w;
  world_init(&w, "cl_audit_link_edit");
  char ids[24];
  i64s(ids, sizeof ids, w.link_id[1]);
  const char *v[1] = {ids};
  q_do(w.pg, "UPDATE landmark_links SET rtt_ns = rtt_ns * 2, bound_m = bound_m * 2"
             " WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_LANDMARK_LINKS, w.link_id[1], CL_AUDIT_SIGNATURE}};
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT, NULL);
  /* Swapping the link's direction changes whose keys are used: both fail. */
  i64s(ids, sizeof ids, w.link_id[0]);
  q_do(w.pg, "UPDATE landmark_links SET from_landmark_id = to_landmark_id,"
             " to_landmark_id = from_landmark_id WHERE id = $1::bigint", 1, v);
  want_finding want2[] = {{CL_AUDIT_LANDMARK_LINKS, w.link_id[0], CL_AUDIT_SIGNATURE},
                          {CL_AUDIT_LANDMARK_LINKS, w.link_id[1], CL_AUDIT_SIGNATURE}};
  expect_findings(&w, want2, 2, ALL_MEAS, ALL_ATT, NULL);
  world_fini(&w);
}
END_TEST

/* ---- attestations ---------------------------------------------------------------------- */

START_TEST(test_attestation_edited) {
  world w;
  world_init(&w, "cl_audit_att_edit");
  int64_t id = w.att_id[0][1];
  char ids[24];
  i64s(ids, sizeof ids, id);
  const char *v[1] = {ids};
  q_do(w.pg, "UPDATE attestations SET region_verdict = 2 WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_ATTESTATION_SIGNATURE}};
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT, NULL);
  /* Putting it back makes the database clean again. */
  q_do(w.pg, "UPDATE attestations SET region_verdict = 1 WHERE id = $1::bigint", 1, v);
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);

  /* Each signed column, and each array the digests come from, is covered. */
  static const char *const edits[] = {
      "UPDATE attestations SET window_ns = window_ns + 1 WHERE id = $1::bigint",
      "UPDATE attestations SET consistency = 1 WHERE id = $1::bigint",
      "UPDATE attestations SET site_verdict = 2 WHERE id = $1::bigint",
      "UPDATE attestations SET speed_m_s = 199861638 WHERE id = $1::bigint",
      "UPDATE attestations SET centre_lat_e7 = -centre_lat_e7 WHERE id = $1::bigint",
      "UPDATE attestations SET centre_lon_e7 = centre_lon_e7 + 1 WHERE id = $1::bigint",
      "UPDATE attestations SET radius_m = radius_m - 1 WHERE id = $1::bigint",
      "UPDATE attestations SET site_margin_m = 1 WHERE id = $1::bigint",
      "UPDATE attestations SET site_landmark_id = (SELECT min(id) FROM landmarks)"
      " WHERE id = $1::bigint",
      "UPDATE attestations SET allowed_regions = '{FRA}' WHERE id = $1::bigint",
      "UPDATE attestations SET allowed_regions = '{DEU,FRA,CHE}' WHERE id = $1::bigint",
      "UPDATE attestations SET excluded_landmark_ids = (SELECT array_agg(id) FROM landmarks)"
      " WHERE id = $1::bigint",
      "UPDATE attestations SET measurement_ids = measurement_ids[1:1] WHERE id = $1::bigint",
      "UPDATE attestations SET measurement_ids = measurement_ids ||"
      " (SELECT min(id) FROM measurements) WHERE id = $1::bigint",
      "UPDATE attestations SET chip_id = (SELECT max(id) FROM chips) WHERE id = $1::bigint",
  };
  /* A third chip to move the record to, without clashing with a round of
   * chip B. */
  q_do(w.pg, "INSERT INTO chips (public_key, serial, operator, site_lat, site_lon)"
             " VALUES (decode(repeat('5a', 32), 'hex'), 'C-0003', 'Example DC', 0, 0)", 0, NULL);
  /* The row as written, to put back after each edit (a temporary table of
   * this session). */
  q_do(w.pg, "CREATE TEMP TABLE saved AS SELECT * FROM attestations WHERE id = $1::bigint", 1, v);
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    q_do(w.pg, edits[i], 1, v);
    cl_audit_report rep;
    run_audit(&w, &rep);
    int found = 0;
    for (size_t k = 0; k < rep.n_findings; k++)
      if (rep.findings[k].id == id && rep.findings[k].table == CL_AUDIT_ATTESTATIONS &&
          rep.findings[k].problem == CL_AUDIT_ATTESTATION_SIGNATURE)
        found = 1;
    char got[2048];
    print_findings(&rep, got, sizeof got);
    ck_assert_msg(found, "%s: not reported; got %s", edits[i], got);
    cl_audit_report_free(&rep);
    q_do(w.pg, "DELETE FROM attestations WHERE id = $1::bigint", 1, v);
    q_do(w.pg, "INSERT INTO attestations SELECT * FROM saved", 0, NULL);
    expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);
  }
  world_fini(&w);
}
END_TEST

START_TEST(test_attestation_deleted_middle) {
  world w;
  world_init(&w, "cl_audit_att_delete");
  char ids[24];
  i64s(ids, sizeof ids, w.att_id[0][2]);
  const char *v[1] = {ids};
  q_do(w.pg, "DELETE FROM attestations WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[0][3], CL_AUDIT_CHAIN_BREAK}};
  cl_audit_report rep;
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT - 1, &rep);
  ck_assert_int_eq(rep.findings[0].ref, w.att_id[0][1]);
  cl_audit_report_free(&rep);

  char *o = NULL;
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, NULL), 4);
  char line[96];
  snprintf(line, sizeof line, "attestations id=%" PRId64 " chain break\n", w.att_id[0][3]);
  ck_assert_msg(strstr(o, line) == o, "%s", o);
  ck_assert_ptr_nonnull(strstr(o, "9 attestations checked; 1 problem(s)\n"));
  free(o);
  world_fini(&w);
}
END_TEST

START_TEST(test_attestation_deleted_first) {
  world w;
  world_init(&w, "cl_audit_att_first");
  char ids[24];
  i64s(ids, sizeof ids, w.att_id[1][0]);
  const char *v[1] = {ids};
  q_do(w.pg, "DELETE FROM attestations WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[1][1], CL_AUDIT_CHAIN_START}};
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT - 1, NULL);
  /* The first two: still the chain start, at the new first record. */
  i64s(ids, sizeof ids, w.att_id[1][1]);
  q_do(w.pg, "DELETE FROM attestations WHERE id = $1::bigint", 1, v);
  want_finding want2[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[1][2], CL_AUDIT_CHAIN_START}};
  expect_findings(&w, want2, 1, ALL_MEAS, ALL_ATT - 2, NULL);
  world_fini(&w);
}
END_TEST

START_TEST(test_attestation_forged) {
  world w;
  world_init(&w, "cl_audit_att_forged");
  /* A record for the next round, chained correctly, claiming the real
   * verifier but signed with another key. */
  cl_attestation f;
  int site_lm, excluded_lm;
  /* It names round 4's measurements, the newest there are. */
  make_attestation(&w, 0, N_ROUNDS, N_ROUNDS - 1, w.att_hash[0][N_ROUNDS - 1], &f, &site_lm,
                   &excluded_lm);
  cl_attest_sign(&f, w.rogue); /* f.verifier is still the real verifier's key */
  uint8_t h[CL_HASH_LEN];
  cl_attest_hash(&f, h);
  int64_t forged = insert_attestation(&w, 0, &f, h, site_lm, excluded_lm,
                                      w.meas_id[0][N_ROUNDS - 1],
                                      (const uint8_t(*)[CL_SIG_LEN])w.meas_sig[0][N_ROUNDS - 1],
                                      N_LMS);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, forged, CL_AUDIT_ATTESTATION_SIGNATURE}};
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT + 1, NULL);

  /* Another one, for the round after, carrying a copied genuine signature. */
  cl_attestation g;
  make_attestation(&w, 1, N_ROUNDS, N_ROUNDS - 1, w.att_hash[1][N_ROUNDS - 1], &g, &site_lm,
                   &excluded_lm);
  memcpy(g.sig, w.att[1][N_ROUNDS - 1].sig, CL_SIG_LEN);
  cl_attest_hash(&g, h);
  int64_t copied = insert_attestation(&w, 1, &g, h, site_lm, excluded_lm,
                                      w.meas_id[1][N_ROUNDS - 1],
                                      (const uint8_t(*)[CL_SIG_LEN])w.meas_sig[1][N_ROUNDS - 1],
                                      N_LMS);
  want_finding want2[] = {{CL_AUDIT_ATTESTATIONS, forged, CL_AUDIT_ATTESTATION_SIGNATURE},
                          {CL_AUDIT_ATTESTATIONS, copied, CL_AUDIT_ATTESTATION_SIGNATURE}};
  expect_findings(&w, want2, 2, ALL_MEAS, ALL_ATT + 2, NULL);
  world_fini(&w);
}
END_TEST

START_TEST(test_attestation_inserted_middle) {
  world w;
  world_init(&w, "cl_audit_att_insert");
  /* A record between rounds 1 and 2 of chip 1, chained to round 1: it is
   * forged and reported; round 2, which links to round 1 over it, is not
   * blamed for it. */
  cl_attestation f;
  int site_lm, excluded_lm;
  make_attestation(&w, 1, 1, 1, w.att_hash[1][1], &f, &site_lm, &excluded_lm);
  f.round_end_ns += ROUND_NS / 2;
  cl_attest_sign(&f, w.rogue);
  uint8_t h[CL_HASH_LEN];
  cl_attest_hash(&f, h);
  int64_t forged = insert_attestation(&w, 1, &f, h, site_lm, excluded_lm, w.meas_id[1][1],
                                      (const uint8_t(*)[CL_SIG_LEN])w.meas_sig[1][1], N_LMS);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, forged, CL_AUDIT_ATTESTATION_SIGNATURE}};
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT + 1, NULL);
  /* A forged first record: the genuine first record after it, with its
   * prev_hash of zeros, still starts the chain. */
  cl_attestation f0;
  const uint8_t zero[CL_HASH_LEN] = {0};
  make_attestation(&w, 0, 0, 0, zero, &f0, &site_lm, &excluded_lm);
  f0.round_end_ns -= ROUND_NS / 2;
  cl_attest_sign(&f0, w.rogue);
  cl_attest_hash(&f0, h);
  int64_t forged0 = insert_attestation(&w, 0, &f0, h, site_lm, excluded_lm, w.meas_id[0][0],
                                       (const uint8_t(*)[CL_SIG_LEN])w.meas_sig[0][0], N_LMS);
  want_finding want2[] = {{CL_AUDIT_ATTESTATIONS, forged, CL_AUDIT_ATTESTATION_SIGNATURE},
                          {CL_AUDIT_ATTESTATIONS, forged0, CL_AUDIT_ATTESTATION_SIGNATURE}};
  expect_findings(&w, want2, 2, ALL_MEAS, ALL_ATT + 2, NULL);
  world_fini(&w);
}
END_TEST

START_TEST(test_attestation_hash_edited) {
  world w;
  world_init(&w, "cl_audit_att_hash");
  int64_t id = w.att_id[0][3];
  char ids[24];
  i64s(ids, sizeof ids, id);
  const char *v[1] = {ids};
  q_do(w.pg, "UPDATE attestations SET hash = sha256(hash) WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_HASH_MISMATCH}};
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT, NULL);
  /* Rewriting the next record's link to match does not help without the
   * verifier's key: prev_hash is signed. */
  i64s(ids, sizeof ids, w.att_id[0][4]);
  q_do(w.pg, "UPDATE attestations SET prev_hash = sha256(prev_hash) WHERE id = $1::bigint", 1, v);
  want_finding want2[] = {{CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_HASH_MISMATCH},
                          {CL_AUDIT_ATTESTATIONS, w.att_id[0][4], CL_AUDIT_ATTESTATION_SIGNATURE}};
  expect_findings(&w, want2, 2, ALL_MEAS, ALL_ATT, NULL);
  /* A link that matches nothing is a chain break as well. */
  q_do(w.pg, "UPDATE attestations SET prev_hash = sha256(prev_hash) WHERE id = $1::bigint", 1, v);
  want_finding want3[] = {{CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_HASH_MISMATCH},
                          {CL_AUDIT_ATTESTATIONS, w.att_id[0][4], CL_AUDIT_ATTESTATION_SIGNATURE},
                          {CL_AUDIT_ATTESTATIONS, w.att_id[0][4], CL_AUDIT_CHAIN_BREAK}};
  expect_findings(&w, want3, 3, ALL_MEAS, ALL_ATT, NULL);
  world_fini(&w);
}
END_TEST

START_TEST(test_attestation_round_end_edited) {
  world w;
  world_init(&w, "cl_audit_att_round_end");
  int64_t id = w.att_id[1][4];
  char ids[24];
  i64s(ids, sizeof ids, id);
  const char *v[1] = {ids};
  /* round_end is what dashboards show; round_end_ns is what was signed. */
  q_do(w.pg, "UPDATE attestations SET round_end = round_end + interval '1 day'"
             " WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_DERIVED_COLUMN}};
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT, NULL);
  /* Rewritten from round_end_ns the way the verifier writes it: clean. */
  q_do(w.pg, "UPDATE attestations SET round_end = to_timestamp(round_end_ns / 1e9)"
             " WHERE id = $1::bigint", 1, v);
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);
  world_fini(&w);
}
END_TEST

START_TEST(test_signed_measurement_swapped) {
  world w;
  world_init(&w, "cl_audit_meas_swap");
  /* A measurement's landmark signature replaced by another genuine one:
   * the measurement fails, and so does the attestation that named it. */
  char a[24], b[24];
  i64s(a, sizeof a, w.meas_id[0][0][0]);
  i64s(b, sizeof b, w.meas_id[0][1][0]);
  const char *v[2] = {a, b};
  q_do(w.pg, "UPDATE measurements SET landmark_sig = (SELECT landmark_sig FROM measurements"
             " WHERE id = $2::bigint) WHERE id = $1::bigint", 2, v);
  want_finding want[] = {{CL_AUDIT_MEASUREMENTS, w.meas_id[0][0][0], CL_AUDIT_SIGNATURE},
                         {CL_AUDIT_ATTESTATIONS, w.att_id[0][0], CL_AUDIT_ATTESTATION_SIGNATURE}};
  expect_findings(&w, want, 2, ALL_MEAS, ALL_ATT, NULL);
  world_fini(&w);
}
END_TEST

START_TEST(test_many_rows) {
  /* Enough rows that nothing fits one network buffer, and a chain long
   * enough to be streamed across many reads. */
  world w;
  world_init(&w, "cl_audit_many");
  char err[512] = "";
  enum { N = 3000 };
  cl_store_row *rows = calloc(N, sizeof *rows);
  ck_assert_ptr_nonnull(rows);
  for (int i = 0; i < N; i++) {
    uint64_t rtt = 3000000u + (uint64_t)i;
    make_measurement(&rows[i].m, w.lm[0], w.chip[1], 100000u + (uint64_t)i, rtt,
                     w.t0_ns - 3600000000000ull + (uint64_t)i * 1000000u);
    rows[i].chip_id = w.chip_id[1];
    rows[i].bound_m = cl_bound_m(rtt, CL_SPEED_C);
    rows[i].est_speed = CL_SPEED_C;
    rows[i].est_bound_m = rows[i].bound_m;
  }
  ck_assert_msg(cl_store_insert_measurements(w.s, w.lm_id[0], rows, N, err, sizeof err) == CL_OK,
                "%s", err);
  free(rows);
  /* Edit one in the middle. */
  q_do(w.pg, "UPDATE measurements SET probes_sent = probes_sent + 1 WHERE seq = 101500", 0, NULL);
  char *id_s = sql_text(w.pg, "SELECT id FROM measurements WHERE seq = 101500", 0, NULL);
  want_finding want[] = {
      {CL_AUDIT_MEASUREMENTS, strtoll(id_s, NULL, 10), CL_AUDIT_SIGNATURE}};
  free(id_s);
  expect_findings(&w, want, 1, ALL_MEAS + N, ALL_ATT, NULL);
  world_fini(&w);
}
END_TEST

/* ---- version 2: the audit follows the evidence ------------------------------------ */

/* The ref of the finding of (table, id, problem) in rep; asserts there is one. */
static int64_t ref_of(const cl_audit_report *rep, cl_audit_table t, int64_t id,
                      cl_audit_problem p) {
  for (size_t i = 0; i < rep->n_findings; i++)
    if (rep->findings[i].table == t && rep->findings[i].id == id && rep->findings[i].problem == p)
      return rep->findings[i].ref;
  ck_abort_msg("no %s id=%" PRId64 " %s", cl_audit_table_name(t), id, cl_audit_problem_name(p));
  return 0;
}

/* Inserts a copy of measurement `id` that differs in its (signed) RTT, `ms`
 * milliseconds later in measured_at (the keys are (id, measured_at) and
 * (landmark_id, nonce, measured_at)) and carries the same landmark_sig, and
 * then gives it the id new_id: what anyone who may insert measurements can
 * do to a row an attestation cites. Only one row may have the id `id`. */
static void insert_forged_copy(world *w, int64_t id, int64_t new_id, int ms) {
  char ids[24], news[24], forged[24], mss[16];
  i64s(ids, sizeof ids, id);
  i64s(news, sizeof news, new_id);
  snprintf(mss, sizeof mss, "%d", ms);
  const char *v[2] = {ids, mss};
  int64_t f = q_id(q(w->pg,
                     "INSERT INTO measurements (chip_id, landmark_id, suite, nonce, seq,"
                     " handshake, probes, transcript_sig, rtt_ns, bound_m, est_speed_m_s,"
                     " est_bound_m, probe_count, probes_sent, measured_at, measured_at_ns,"
                     " landmark_sig)"
                     " SELECT chip_id, landmark_id, suite, nonce, seq, handshake, probes,"
                     " transcript_sig, rtt_ns / 2, bound_m / 2, est_speed_m_s, est_bound_m / 2,"
                     " probe_count, probes_sent,"
                     " measured_at + $2::integer * interval '1 millisecond',"
                     " measured_at_ns, landmark_sig FROM measurements WHERE id = $1::bigint"
                     " RETURNING id",
                     2, v));
  i64s(forged, sizeof forged, f);
  const char *u[2] = {forged, news};
  q_do(w->pg, "UPDATE measurements SET id = $2::bigint WHERE id = $1::bigint", 2, u);
}

START_TEST(test_v2_attestation_edited) {
  world w;
  world_init(&w, "cl_audit_v2_edit");
  int64_t id = w.att_id[0][3];
  char ids[24];
  i64s(ids, sizeof ids, id);
  const char *v[1] = {ids};
  /* Every column of the row that the v2 layout covers. */
  static const char *const edits[] = {
      "UPDATE attestations SET measurement_sigs = measurement_sigs[1:1] WHERE id = $1::bigint",
      "UPDATE attestations SET measurement_sigs = measurement_sigs ||"
      " (SELECT landmark_sig FROM measurements WHERE id = (SELECT min(id) FROM measurements))"
      " WHERE id = $1::bigint",
      "UPDATE attestations SET measurement_sigs = ARRAY[measurement_sigs[2],"
      " sha256(measurement_sigs[1]) || sha256(measurement_sigs[1])] WHERE id = $1::bigint",
      "UPDATE attestations SET measurement_sigs = ARRAY[measurement_sigs[1], '\\x00'::bytea]"
      " WHERE id = $1::bigint",
      "UPDATE attestations SET measurement_sigs = ARRAY[measurement_sigs[1], NULL]"
      " WHERE id = $1::bigint",
      "UPDATE attestations SET site_digest = sha256(site_digest) WHERE id = $1::bigint",
      "UPDATE attestations SET landmarks_digest = sha256(landmarks_digest) WHERE id = $1::bigint",
      "UPDATE attestations SET regions_digest = sha256(regions_digest) WHERE id = $1::bigint",
      "UPDATE attestations SET layout_version = 1 WHERE id = $1::bigint",
      "UPDATE attestations SET allowed_regions = '{FRA}' WHERE id = $1::bigint",
      "UPDATE attestations SET window_ns = window_ns - 1 WHERE id = $1::bigint",
  };
  q_do(w.pg, "CREATE TEMP TABLE saved AS SELECT * FROM attestations WHERE id = $1::bigint", 1, v);
  for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
    q_do(w.pg, edits[i], 1, v);
    want_finding want[] = {{CL_AUDIT_ATTESTATIONS, id, CL_AUDIT_ATTESTATION_SIGNATURE}};
    expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT, NULL);
    q_do(w.pg, "DELETE FROM attestations WHERE id = $1::bigint", 1, v);
    q_do(w.pg, "INSERT INTO attestations SELECT * FROM saved", 0, NULL);
    expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);
  }
  /* measurement_ids proves nothing in version 2: not read. */
  q_do(w.pg, "UPDATE attestations SET measurement_ids = '{0,0,0}' WHERE id = $1::bigint", 1, v);
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);
  world_fini(&w);
}
END_TEST

START_TEST(test_v2_cited_id_reused) {
  world w;
  world_init(&w, "cl_audit_v2_id_reused");
  /* A row that copies a cited signature under the cited id, and another
   * under an id below every genuine one, both with other content: each is
   * a forged measurement, and the attestation that cites the genuine row
   * still stands, since the audit looks the evidence up by its signature
   * and takes the row that verifies. */
  int64_t cited = w.meas_id[0][3][0];
  insert_forged_copy(&w, cited, 0, 2);
  insert_forged_copy(&w, cited, cited, 1);
  want_finding want[] = {{CL_AUDIT_MEASUREMENTS, 0, CL_AUDIT_SIGNATURE},
                         {CL_AUDIT_MEASUREMENTS, cited, CL_AUDIT_SIGNATURE}};
  expect_findings(&w, want, 2, ALL_MEAS + 2, ALL_ATT, NULL);
  /* A version-1 attestation has only the ids to go by: the same trick makes
   * its rebuilt layout carry a signature too many, and it reads as forged
   * (docs/ATTESTATION.md, "Version 1 records"). */
  int64_t old = w.meas_id[1][1][1];
  insert_forged_copy(&w, old, old, 1);
  want_finding want2[] = {{CL_AUDIT_MEASUREMENTS, 0, CL_AUDIT_SIGNATURE},
                          {CL_AUDIT_MEASUREMENTS, cited, CL_AUDIT_SIGNATURE},
                          {CL_AUDIT_MEASUREMENTS, old, CL_AUDIT_SIGNATURE},
                          {CL_AUDIT_ATTESTATIONS, w.att_id[1][1], CL_AUDIT_ATTESTATION_SIGNATURE}};
  expect_findings(&w, want2, 4, ALL_MEAS + 3, ALL_ATT, NULL);
  world_fini(&w);
}
END_TEST

START_TEST(test_v2_cited_measurement_edited) {
  world w;
  world_init(&w, "cl_audit_v2_meas_edit");
  int64_t id = w.meas_id[0][3][1];
  char ids[24];
  i64s(ids, sizeof ids, id);
  const char *v[1] = {ids};
  q_do(w.pg, "UPDATE measurements SET rtt_ns = rtt_ns - 1000 WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_MEASUREMENTS, id, CL_AUDIT_SIGNATURE},
                         {CL_AUDIT_ATTESTATIONS, w.att_id[0][3], CL_AUDIT_EVIDENCE}};
  cl_audit_report rep;
  expect_findings(&w, want, 2, ALL_MEAS, ALL_ATT, &rep);
  ck_assert_int_eq(ref_of(&rep, CL_AUDIT_ATTESTATIONS, w.att_id[0][3], CL_AUDIT_EVIDENCE), id);
  cl_audit_report_free(&rep);

  /* The CLI: the names and the ref. */
  char *o = NULL;
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, NULL), 4);
  char line[512];
  snprintf(line, sizeof line,
           "measurements id=%" PRId64 " signature\nattestations id=%" PRId64 " evidence\n"
           "audit: 20 measurements, 2 links, 10 attestations checked; 2 problem(s)\n",
           id, w.att_id[0][3]);
  ck_assert_str_eq(o, line);
  free(o);
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, "--json", NULL), 4);
  snprintf(line, sizeof line,
           "{\"table\":\"attestations\",\"id\":%" PRId64
           ",\"problem\":\"evidence\",\"ref\":%" PRId64 "}",
           w.att_id[0][3], id);
  ck_assert_msg(strstr(o, line) != NULL, "%s", o);
  free(o);

  /* The cited row put back: clean again. */
  q_do(w.pg, "UPDATE measurements SET rtt_ns = rtt_ns + 1000 WHERE id = $1::bigint", 1, v);
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);
  /* Moved to another chip, the row is no evidence of this one's: no row of
   * the chip carries the signature (ref 0). */
  q_do(w.pg, "UPDATE measurements SET chip_id = (SELECT max(id) FROM chips) WHERE id = $1::bigint",
       1, v);
  run_audit(&w, &rep);
  ck_assert_int_eq(ref_of(&rep, CL_AUDIT_ATTESTATIONS, w.att_id[0][3], CL_AUDIT_EVIDENCE), 0);
  cl_audit_report_free(&rep);
  world_fini(&w);
}
END_TEST

START_TEST(test_v2_cited_measurement_deleted) {
  world w;
  world_init(&w, "cl_audit_v2_meas_delete");
  int64_t id = w.meas_id[1][4][1];
  char ids[24];
  i64s(ids, sizeof ids, id);
  const char *v[1] = {ids};
  q_do(w.pg, "DELETE FROM measurements WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[1][4], CL_AUDIT_EVIDENCE}};
  cl_audit_report rep;
  expect_findings(&w, want, 1, ALL_MEAS - 1, ALL_ATT, &rep);
  ck_assert_int_eq(rep.findings[0].ref, 0);
  cl_audit_report_free(&rep);
  world_fini(&w);
}
END_TEST

START_TEST(test_v2_site_edited) {
  world w;
  world_init(&w, "cl_audit_v2_site");
  char ids[24];
  i64s(ids, sizeof ids, w.chip_id[1]);
  const char *v[1] = {ids};
  q_do(w.pg, "UPDATE chips SET site_lat = 50.12 WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[1][3], CL_AUDIT_INPUT_CHANGED},
                         {CL_AUDIT_ATTESTATIONS, w.att_id[1][4], CL_AUDIT_INPUT_CHANGED}};
  cl_audit_report rep;
  expect_findings(&w, want, 2, ALL_MEAS, ALL_ATT, &rep);
  for (size_t i = 0; i < 2; i++) ck_assert_int_eq(rep.findings[i].ref, CL_AUDIT_INPUT_SITE);
  cl_audit_report_free(&rep);
  char *o = NULL;
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, "--json", NULL), 4);
  char frag[160];
  snprintf(frag, sizeof frag,
           "{\"table\":\"attestations\",\"id\":%" PRId64
           ",\"problem\":\"input changed\",\"ref\":1}",
           w.att_id[1][3]);
  ck_assert_msg(strstr(o, frag) != NULL, "%s", o);
  free(o);
  /* The same value again (the very double): clean. -0.0 would not be. */
  q_do(w.pg, "UPDATE chips SET site_lat = 50.11 WHERE id = $1::bigint", 1, v);
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);
  world_fini(&w);
}
END_TEST

START_TEST(test_v2_region_edited) {
  world w;
  world_init(&w, "cl_audit_v2_region");
  /* Written differently, the same geometry: the digest is of the parsed
   * vertices, not of the text. */
  q_do(w.pg, "UPDATE regions SET geojson = jsonb_set(geojson, '{coordinates,0,0,1,0}', '8.20')"
             " WHERE code = 'FRA'", 0, NULL);
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);
  /* One vertex of DEU's hole moved: every version-2 attestation of a chip
   * allowed in DEU drew its region verdict from other borders. */
  q_do(w.pg, "UPDATE regions SET geojson = jsonb_set(geojson, '{coordinates,0,1,1,0}', '8.6')"
             " WHERE code = 'DEU'", 0, NULL);
  want_finding want[4];
  size_t n = 0;
  for (int c = 0; c < N_CHIPS; c++)
    for (int r = V2_FROM; r < N_ROUNDS; r++)
      want[n++] = (want_finding){CL_AUDIT_ATTESTATIONS, w.att_id[c][r], CL_AUDIT_INPUT_CHANGED};
  cl_audit_report rep;
  expect_findings(&w, want, n, ALL_MEAS, ALL_ATT, &rep);
  for (size_t i = 0; i < n; i++) ck_assert_int_eq(rep.findings[i].ref, CL_AUDIT_INPUT_REGIONS);
  cl_audit_report_free(&rep);
  /* Gone altogether, or no longer a geometry the parser takes: the same. */
  q_do(w.pg, "UPDATE regions SET geojson = jsonb_set(geojson, '{coordinates,0,1,1,0}', '8.5')"
             " WHERE code = 'DEU'", 0, NULL);
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);
  q_do(w.pg, "UPDATE regions SET geojson = '{\"type\":\"MultiPolygon\",\"coordinates\":[]}'"
             " WHERE code = 'DEU'", 0, NULL);
  expect_findings(&w, want, n, ALL_MEAS, ALL_ATT, NULL);
  q_do(w.pg, "DELETE FROM chip_regions WHERE region_code = 'DEU'", 0, NULL);
  q_do(w.pg, "DELETE FROM regions WHERE code = 'DEU'", 0, NULL);
  expect_findings(&w, want, n, ALL_MEAS, ALL_ATT, NULL);
  world_fini(&w);
}
END_TEST

START_TEST(test_v2_landmark_moved) {
  world w;
  world_init(&w, "cl_audit_v2_landmark");
  char ids[24];
  i64s(ids, sizeof ids, w.lm_id[0]);
  const char *v[1] = {ids};
  q_do(w.pg, "UPDATE landmarks SET lat = lat + 0.001 WHERE id = $1::bigint", 1, v);
  want_finding want[4];
  size_t n = 0;
  for (int c = 0; c < N_CHIPS; c++)
    for (int r = V2_FROM; r < N_ROUNDS; r++)
      want[n++] = (want_finding){CL_AUDIT_ATTESTATIONS, w.att_id[c][r], CL_AUDIT_INPUT_CHANGED};
  cl_audit_report rep;
  expect_findings(&w, want, n, ALL_MEAS, ALL_ATT, &rep);
  for (size_t i = 0; i < n; i++) ck_assert_int_eq(rep.findings[i].ref, CL_AUDIT_INPUT_LANDMARKS);
  cl_audit_report_free(&rep);
  world_fini(&w);
}
END_TEST

/* Sets landmark l's retirement: kind "retired" or "revoked" at unix_ns, or
 * none (kind NULL). */
static void retire(world *w, int l, const char *kind, uint64_t unix_ns) {
  char ids[24], us[24];
  i64s(ids, sizeof ids, w->lm_id[l]);
  i64s(us, sizeof us, (int64_t)(unix_ns / 1000u));
  const char *v[3] = {ids, kind ? us : NULL, kind};
  q_do(w->pg, "UPDATE landmarks SET retired_at = to_timestamp($2::bigint / 1e6),"
              " retire_kind = $3::text WHERE id = $1::bigint", 3, v);
}

START_TEST(test_retired_keys) {
  world w;
  world_init(&w, "cl_audit_retired");
  /* Landmark 1 retired between rounds 3 and 4: what it measured in round 4
   * no longer counts, and the round-4 attestations cite it. */
  retire(&w, 1, "retired", w.t0_ns + 3 * ROUND_NS + 30000000000ull);
  want_finding want[64];
  size_t n = 0;
  for (int c = 0; c < N_CHIPS; c++) {
    want[n++] = (want_finding){CL_AUDIT_MEASUREMENTS, w.meas_id[c][4][1], CL_AUDIT_RETIRED_KEY};
    want[n++] = (want_finding){CL_AUDIT_ATTESTATIONS, w.att_id[c][4], CL_AUDIT_EVIDENCE};
  }
  cl_audit_report rep;
  expect_findings(&w, want, n, ALL_MEAS, ALL_ATT, &rep);
  for (int c = 0; c < N_CHIPS; c++) {
    ck_assert_int_eq(ref_of(&rep, CL_AUDIT_MEASUREMENTS, w.meas_id[c][4][1], CL_AUDIT_RETIRED_KEY),
                     w.lm_id[1]);
    ck_assert_int_eq(ref_of(&rep, CL_AUDIT_ATTESTATIONS, w.att_id[c][4], CL_AUDIT_EVIDENCE),
                     w.meas_id[c][4][1]);
  }
  cl_audit_report_free(&rep);

  /* Retired after the last measurement: nothing. */
  uint64_t after_all = w.t0_ns + 4 * ROUND_NS;
  retire(&w, 1, "retired", after_all);
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);
  /* Revoked at that time: the database received every row after it, so
   * none of landmark 1's rows counts, its link included, and every
   * version-2 attestation lacks its evidence. */
  retire(&w, 1, "revoked", after_all);
  n = 0;
  for (int c = 0; c < N_CHIPS; c++)
    for (int r = 0; r < N_ROUNDS; r++) {
      want[n++] = (want_finding){CL_AUDIT_MEASUREMENTS, w.meas_id[c][r][1], CL_AUDIT_RETIRED_KEY};
      if (r >= V2_FROM)
        want[n++] = (want_finding){CL_AUDIT_ATTESTATIONS, w.att_id[c][r], CL_AUDIT_EVIDENCE};
    }
  want[n++] = (want_finding){CL_AUDIT_LANDMARK_LINKS, w.link_id[1], CL_AUDIT_RETIRED_KEY};
  expect_findings(&w, want, n, ALL_MEAS, ALL_ATT, &rep);
  ck_assert_int_eq(ref_of(&rep, CL_AUDIT_LANDMARK_LINKS, w.link_id[1], CL_AUDIT_RETIRED_KEY),
                   w.lm_id[1]);
  cl_audit_report_free(&rep);
  /* The link's signer counts, not its peer: landmark 0 revoked alone
   * takes its own rows and link, not landmark 1's link to it. */
  retire(&w, 1, NULL, 0);
  retire(&w, 0, "revoked", after_all);
  run_audit(&w, &rep);
  ref_of(&rep, CL_AUDIT_LANDMARK_LINKS, w.link_id[0], CL_AUDIT_RETIRED_KEY);
  for (size_t i = 0; i < rep.n_findings; i++)
    ck_assert(!(rep.findings[i].table == CL_AUDIT_LANDMARK_LINKS &&
                rep.findings[i].id == w.link_id[1]));
  cl_audit_report_free(&rep);

  /* Dated more than 10 s after the database received it (an insert time
   * edited afterwards): the verifier would not have believed the row
   * (PROTOCOL.md §11, check 1), so it is no evidence; by itself such a row
   * is no finding of the audit's first pass. */
  retire(&w, 0, NULL, 0);
  int64_t cited = w.meas_id[0][3][0];
  char ids[24];
  i64s(ids, sizeof ids, cited);
  const char *v[1] = {ids};
  q_do(w.pg, "UPDATE measurements SET inserted_at = measured_at - interval '11 seconds'"
             " WHERE id = $1::bigint", 1, v);
  want_finding want2[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[0][3], CL_AUDIT_EVIDENCE}};
  expect_findings(&w, want2, 1, ALL_MEAS, ALL_ATT, &rep);
  ck_assert_int_eq(rep.findings[0].ref, cited);
  cl_audit_report_free(&rep);
  q_do(w.pg, "UPDATE measurements SET inserted_at = measured_at - interval '9 seconds'"
             " WHERE id = $1::bigint", 1, v);
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, NULL);
  world_fini(&w);
}
END_TEST

/* Inserts a protocol 1 row as a landmark wrote it before the upgrade to
 * protocol 2: a measurement of chip c by landmark l (link = 0) or a link
 * from landmark l to the other one (link = 1), with random signature bytes
 * (this version can check none) and landmark signature sig. Triggers off:
 * since migration 0005 the guard refuses protocol 1 rows. Returns its id. */
static int64_t insert_legacy(world *w, int link, int c, int l, uint64_t measured_ns,
                             const uint8_t sig[CL_SIG_LEN]) {
  uint8_t b[CL_NONCE_LEN + 2 * CL_SIG_LEN];
  randombytes_buf(b, sizeof b);
  char subject[24], signer[24], nonce[2 + 64 + 1], csig[2 + 128 + 1], chsig[2 + 128 + 1],
      lsig[2 + 128 + 1], at[64], at_ns[24], issued[24];
  i64s(subject, sizeof subject, link ? w->lm_id[(l + 1) % N_LMS] : w->chip_id[c]);
  i64s(signer, sizeof signer, w->lm_id[l]);
  bytea_hex(nonce, b, CL_NONCE_LEN);
  bytea_hex(csig, b + CL_NONCE_LEN, CL_SIG_LEN);
  bytea_hex(chsig, b + CL_NONCE_LEN + CL_SIG_LEN, CL_SIG_LEN);
  bytea_hex(lsig, sig, CL_SIG_LEN);
  ts_text(at, sizeof at, measured_ns);
  i64s(at_ns, sizeof at_ns, (int64_t)measured_ns);
  i64s(issued, sizeof issued, (int64_t)measured_ns - 40000000);
  const char *v[9] = {subject, signer, nonce, issued, csig, chsig, at, at_ns, lsig};
  q_do(w->pg, "SET session_replication_role = replica", 0, NULL);
  int64_t id = q_id(q(w->pg,
                      link ? "INSERT INTO landmark_links (to_landmark_id, from_landmark_id,"
                             " protocol, nonce, seq, issued_at_ns, challenge_sig, chip_sig,"
                             " rtt_ns, bound_m, probe_count, probes_sent, measured_at,"
                             " measured_at_ns, landmark_sig) VALUES ($1::bigint, $2::bigint, 1,"
                             " $3::bytea, 1, $4::bigint, $5::bytea, $6::bytea, 4000000, 599585,"
                             " 3, 3, $7::timestamptz, $8::bigint, $9::bytea) RETURNING id"
                           : "INSERT INTO measurements (chip_id, landmark_id, protocol, nonce,"
                             " seq, issued_at_ns, challenge_sig, chip_sig, rtt_ns, bound_m,"
                             " est_speed_m_s, est_bound_m, probe_count, probes_sent, measured_at,"
                             " measured_at_ns, landmark_sig) VALUES ($1::bigint, $2::bigint, 1,"
                             " $3::bytea, 1, $4::bigint, $5::bytea, $6::bytea, 2000000, 299793,"
                             " 2e8, 199862, 3, 3, $7::timestamptz, $8::bigint, $9::bytea)"
                             " RETURNING id",
                      9, v));
  q_do(w->pg, "SET session_replication_role = DEFAULT", 0, NULL);
  return id;
}

/* A database upgraded from protocol 1: the rows landmarks wrote before
 * stay, and so do the attestations that cite them. This version cannot
 * re-verify those rows: counted as legacy, never a finding. */
START_TEST(test_legacy_rows) {
  world w;
  world_init(&w, "cl_audit_legacy");
  /* Protocol 1 rows of both landmarks for chip 0, measured two seconds
   * before the end of the round after the last, and one link. */
  uint64_t end = w.t0_ns + (uint64_t)N_ROUNDS * ROUND_NS;
  uint8_t sigs[N_LMS][CL_SIG_LEN];
  int64_t ids[N_LMS];
  for (int l = 0; l < N_LMS; l++) {
    randombytes_buf(sigs[l], CL_SIG_LEN);
    ids[l] = insert_legacy(&w, 0, 0, l, end - 2000000000ull, sigs[l]);
  }
  uint8_t other[CL_SIG_LEN];
  randombytes_buf(other, sizeof other);
  insert_legacy(&w, 1, 0, 0, w.t0_ns - 9999u, other);
  /* A version-2 attestation of that round citing them, chained to round 4:
   * what a verifier wrote before the upgrade. */
  cl_attestation a;
  int site_lm, excluded_lm;
  make_attestation(&w, 0, N_ROUNDS, N_ROUNDS - 1, w.att_hash[0][N_ROUNDS - 1], &a, &site_lm,
                   &excluded_lm);
  ck_assert_int_eq(cl_attest_digest_sigs((const uint8_t(*)[CL_SIG_LEN])sigs, N_LMS,
                                         a.measurements_digest),
                   CL_OK);
  cl_attest_sign(&a, w.verifier);
  uint8_t h[CL_HASH_LEN];
  cl_attest_hash(&a, h);
  int64_t att = insert_attestation(&w, 0, &a, h, site_lm, excluded_lm, ids,
                                   (const uint8_t(*)[CL_SIG_LEN])sigs, N_LMS);
  cl_audit_report rep;
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT + 1, &rep);
  ck_assert_int_eq(rep.legacy_measurements, N_LMS);
  ck_assert_int_eq(rep.legacy_links, 1);
  ck_assert_int_eq(rep.legacy_evidence, 1);
  cl_audit_report_free(&rep);
  /* The CLI says so, and exits 0. */
  char *o = NULL;
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, NULL), 0);
  ck_assert_str_eq(o, "legacy (protocol 1), not re-verifiable by this version: 2 measurements,"
                      " 1 links; 1 attestations cite such rows\n"
                      "audit: 20 measurements, 2 links, 11 attestations checked; 0 problem(s)\n");
  free(o);
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, "--json", NULL), 0);
  ck_assert_msg(strstr(o, "\"legacy\":{\"measurements\":2,\"links\":1,\"attestations\":1}"), "%s",
                o);
  free(o);
  /* Their signatures are not checked: edited, they are still legacy. */
  char id0[24];
  i64s(id0, sizeof id0, ids[0]);
  const char *v[1] = {id0};
  q_do(w.pg, "UPDATE measurements SET rtt_ns = 1 WHERE id = $1::bigint", 1, v);
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT + 1, NULL);
  /* What needs no signature is still checked: the cited row gone, or its
   * landmark retired before it was measured, the evidence is missing. */
  retire(&w, 0, "retired", end - 3000000000ull);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, att, CL_AUDIT_EVIDENCE}};
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT + 1, &rep);
  ck_assert_int_eq(rep.findings[0].ref, ids[0]);
  ck_assert_int_eq(rep.legacy_evidence, 0);
  cl_audit_report_free(&rep);
  retire(&w, 0, NULL, 0);
  q_do(w.pg, "DELETE FROM measurements WHERE id = $1::bigint", 1, v);
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT + 1, &rep);
  ck_assert_int_eq(rep.findings[0].ref, 0);
  ck_assert_int_eq(rep.legacy_measurements, N_LMS - 1);
  cl_audit_report_free(&rep);
  world_fini(&w);
}
END_TEST

/* ---- retention: evidence removed by `chiploc db maintain` ---------------------------- */

/* Runs a statement as the owner (text results); asserts it succeeded. */
static void owner_sql(world *w, const char *sql) {
  char err[512] = "";
  ck_assert_msg(tu_sql(w->conninfo, sql, err, sizeof err) == 0, "%s: %s", sql, err);
}

/* A login member of `group`, made once per cluster. */
static char *login_in(world *w, const char *name, const char *group) {
  owner_sql(w, tu_fmt("DO $$ BEGIN CREATE ROLE %s LOGIN IN ROLE %s;"
                      " EXCEPTION WHEN duplicate_object THEN NULL; END $$",
                      name, group));
  return tu_own(tu_conninfo_as(w->conninfo, name));
}

/* The start of the UTC month `months` before this one, as unix seconds. */
static int64_t month_start(int months) {
  long long t = tu_sql_int(tu_pg_conninfo(),
                           tu_fmt("SELECT extract(epoch FROM date_trunc('month', (now() AT TIME"
                                  " ZONE 'UTC') - interval '%d months'))::bigint",
                                  months));
  ck_assert_int_gt(t, 0);
  return (int64_t)t;
}

/* `chiploc db maintain ARGS...` on the world's database must exit 0; its
 * output. */
static char *maintain(world *w, const char *retain, const char *drop) {
  char *dir = tu_own(tu_tmpdir("chiploc-audit-maint"));
  char *log = tu_fmt("%s/maintain.log", dir);
  ck_assert_int_eq(tu_cli(log, "db", "maintain", "--db", w->conninfo, "--retain-months", retain,
                          drop, NULL),
                   0);
  char *out = tu_read_file(log);
  ck_assert_ptr_nonnull(out);
  return tu_own(out);
}

START_TEST(test_retention_retires_evidence) {
  /* The rounds end 3, 2 and 1 minutes before a month boundary B, at B and a
   * minute after it; each round's rows were measured a second before its
   * end. Retention removes the month before B (keep 14 months): the
   * records of the first three rounds (version 1) have their whole window
   * in it, the fourth (version 2) cites rows of that month from a window
   * that reaches past B, and the fifth cites rows after B that stay. */
  int64_t b = month_start(14);
  world w;
  world_init_at(&w, "cl_audit_retention", (uint64_t)(b - 180) * 1000000000ull);
  char *part = tu_own(tu_sql_value(w.conninfo,
                                   tu_fmt("SELECT 'measurements_p' || to_char(to_timestamp(%lld)"
                                          " AT TIME ZONE 'UTC' - interval '1 month', 'YYYY_MM')",
                                          (long long)b)));
  char *out = maintain(&w, "14", NULL);
  ck_assert_msg(strstr(out, tu_fmt("archived chiploc_archive.%s\n", part)), "%s", out);
  ck_assert_msg(strstr(out, "archived 1, dropped 0\n"), "%s", out);

  /* The record: the month's bounds, by this login; and the rows the fourth
   * round's records cite, for which the month's range is not enough. */
  ck_assert_str_eq(tu_own(tu_sql_value(
                       w.conninfo,
                       tu_fmt("SELECT concat_ws(' ', partition, action, done_by = session_user,"
                              " range_start = to_timestamp(%lld) - interval '1 month',"
                              " range_end = to_timestamp(%lld)) FROM measurement_retention",
                              (long long)b, (long long)b))),
                   tu_fmt("%s archived t t t", part));
  ck_assert_int_eq(tu_sql_int(w.conninfo, "SELECT count(*) FROM measurement_retention_cited"),
                   N_CHIPS * N_LMS);
  ck_assert_int_eq(tu_sql_int(w.conninfo,
                              tu_fmt("SELECT count(*) FROM measurement_retention_cited"
                                     " WHERE attestation_id IN (%" PRId64 ", %" PRId64 ")",
                                     w.att_id[0][3], w.att_id[1][3])),
                   N_CHIPS * N_LMS);

  /* Nothing is missing that retention did not remove: no finding, the
   * first four records of each chain counted as retired, the rows of the
   * fifth round checked. */
  cl_audit_report rep;
  expect_findings(&w, NULL, 0, N_CHIPS * N_LMS, ALL_ATT, &rep);
  ck_assert_int_eq(rep.evidence_retired, N_CHIPS * 4);
  ck_assert_int_eq(rep.retention_ranges, 1);
  ck_assert_int_eq(rep.ignored_ranges, 0);
  ck_assert_int_eq(rep.retired_until_us, b * 1000000);
  cl_audit_report_free(&rep);
  char *until = tu_own(tu_sql_value(
      w.conninfo, tu_fmt("SELECT to_char(to_timestamp(%lld) AT TIME ZONE 'UTC',"
                         " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                         (long long)b)));
  char *o = NULL;
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, NULL), 0);
  ck_assert_str_eq(o, tu_fmt("evidence retired: 8 attestations cite measurements removed by"
                             " retention (1 range(s), up to %s)\n"
                             "audit: 4 measurements, 2 links, 10 attestations checked;"
                             " 0 problem(s)\n",
                             until));
  free(o);
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, "--json", NULL), 0);
  ck_assert_msg(strstr(o, tu_fmt("\"retired\":{\"attestations\":8,\"ranges\":1,"
                                 "\"ignored_ranges\":0,\"until\":\"%s\"},\"pools\":{\"pools\":0,"
                                 "\"rounds\":0,\"gaps\":0,\"first\":[]},\"problems\":0",
                                 until)),
                "%s", o);
  free(o);
  /* The auditor's login reads the record. */
  char *auditor = login_in(&w, "audit_ret_auditor", "chiploc_auditor");
  ck_assert_int_eq(cli(&o, "--db", auditor, NULL), 0);
  free(o);

  /* Only chiploc_maintain writes the record: not the auditor, not even
   * chiploc_admin, which may delete measurements. */
  char *admin = login_in(&w, "audit_ret_admin", "chiploc_admin");
  const char *writers[] = {admin, auditor};
  for (size_t i = 0; i < 2; i++) {
    char err[512] = "";
    ck_assert_int_ne(tu_sql(writers[i],
                            "INSERT INTO measurement_retention (partition, range_start,"
                            " range_end, action) VALUES ('x', now(), now() + interval '1 day',"
                            " 'dropped')",
                            err, sizeof err),
                     0);
    ck_assert_msg(strstr(err, "permission denied for table measurement_retention"), "%s", err);
    ck_assert_int_ne(tu_sql(writers[i], "DELETE FROM measurement_retention_cited", err,
                            sizeof err),
                     0);
    ck_assert_msg(strstr(err, "permission denied"), "%s", err);
    ck_assert_int_ne(tu_sql(writers[i], "SELECT chiploc_retire_months(1, true)", err, sizeof err),
                     0);
    ck_assert_msg(strstr(err, "permission denied"), "%s", err);
  }

  /* Without the recorded citations, the fourth round's window is not
   * inside the removed month: its records are `evidence` again. */
  q_do(w.pg, "CREATE TEMP TABLE cited AS SELECT * FROM measurement_retention_cited", 0, NULL);
  q_do(w.pg, "DELETE FROM measurement_retention_cited", 0, NULL);
  want_finding uncited[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[0][3], CL_AUDIT_EVIDENCE},
                            {CL_AUDIT_ATTESTATIONS, w.att_id[1][3], CL_AUDIT_EVIDENCE}};
  expect_findings(&w, uncited, 2, N_CHIPS * N_LMS, ALL_ATT, &rep);
  ck_assert_int_eq(rep.evidence_retired, N_CHIPS * 3);
  cl_audit_report_free(&rep);
  q_do(w.pg, "INSERT INTO measurement_retention_cited SELECT * FROM cited", 0, NULL);
  expect_findings(&w, NULL, 0, N_CHIPS * N_LMS, ALL_ATT, NULL);

  /* A version 1 record slipped into the removed month, naming rows that
   * never were, cannot be checked; but it is not stepped over: the genuine
   * record after it no longer links. */
  cl_attestation f;
  int site_lm, excluded_lm;
  make_attestation(&w, 1, 0, 0, w.att_hash[1][0], &f, &site_lm, &excluded_lm);
  f.round_end_ns += ROUND_NS / 2;
  cl_attest_sign(&f, w.verifier);
  uint8_t h[CL_HASH_LEN];
  cl_attest_hash(&f, h);
  const int64_t never[N_LMS] = {INT64_MAX - 1, INT64_MAX - 2};
  int64_t forged = insert_attestation(&w, 1, &f, h, site_lm, excluded_lm, never,
                                      (const uint8_t(*)[CL_SIG_LEN])w.meas_sig[1][0], N_LMS);
  want_finding slipped[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[1][1], CL_AUDIT_CHAIN_BREAK}};
  expect_findings(&w, slipped, 1, N_CHIPS * N_LMS, ALL_ATT + 1, &rep);
  ck_assert_int_eq(rep.findings[0].ref, forged);
  ck_assert_int_eq(rep.evidence_retired, N_CHIPS * 4 + 1);
  cl_audit_report_free(&rep);
  char fid[24];
  i64s(fid, sizeof fid, forged);
  const char *fv[1] = {fid};
  q_do(w.pg, "DELETE FROM attestations WHERE id = $1::bigint", 1, fv);

  /* A row deleted after B, where nothing was removed, is `evidence` though
   * the record's window begins in the removed month. */
  char gone[24];
  i64s(gone, sizeof gone, w.meas_id[0][4][0]);
  const char *gv[1] = {gone};
  q_do(w.pg, "DELETE FROM measurements WHERE id = $1::bigint", 1, gv);
  want_finding deleted[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[0][4], CL_AUDIT_EVIDENCE}};
  expect_findings(&w, deleted, 1, N_CHIPS * N_LMS - 1, ALL_ATT, &rep);
  ck_assert_int_eq(rep.findings[0].ref, 0);
  ck_assert_int_eq(rep.evidence_retired, N_CHIPS * 4);
  cl_audit_report_free(&rep);
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, NULL), 4);
  ck_assert_msg(strstr(o, tu_fmt("attestations id=%" PRId64 " evidence\n", w.att_id[0][4])), "%s",
                o);
  free(o);

  /* The archive attached back: its rows are live and checked again, the
   * recorded range (and its citations) excuses nothing, and a row deleted
   * from it is missing. */
  owner_sql(&w, tu_own(tu_sql_value(w.conninfo,
                                    "SELECT format('ALTER TABLE measurements ATTACH PARTITION"
                                    " chiploc_archive.%I FOR VALUES FROM (%L) TO (%L)',"
                                    " partition, range_start, range_end)"
                                    " FROM measurement_retention")));
  expect_findings(&w, deleted, 1, ALL_MEAS - 1, ALL_ATT, &rep);
  ck_assert_int_eq(rep.evidence_retired, 0);
  ck_assert_int_eq(rep.retention_ranges, 0);
  ck_assert_int_eq(rep.ignored_ranges, 1);
  cl_audit_report_free(&rep);
  i64s(gone, sizeof gone, w.meas_id[0][1][0]);
  q_do(w.pg, "DELETE FROM measurements WHERE id = $1::bigint", 1, gv);
  i64s(gone, sizeof gone, w.meas_id[1][3][1]);
  q_do(w.pg, "DELETE FROM measurements WHERE id = $1::bigint", 1, gv);
  want_finding attached[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[0][4], CL_AUDIT_EVIDENCE},
                             {CL_AUDIT_ATTESTATIONS, w.att_id[0][1], CL_AUDIT_MEASUREMENT_MISSING},
                             {CL_AUDIT_ATTESTATIONS, w.att_id[1][3], CL_AUDIT_EVIDENCE}};
  expect_findings(&w, attached, 3, ALL_MEAS - 3, ALL_ATT, NULL);
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, NULL), 4);
  ck_assert_msg(strstr(o, "evidence retired: 0 attestations cite measurements removed by"
                          " retention (0 range(s)); 1 range(s) ignored: a partition of"
                          " measurements covers them again\n"),
                "%s", o);
  free(o);
  world_fini(&w);
  tu_release();
}
END_TEST

START_TEST(test_retention_elsewhere) {
  /* Retention dropped a month long before the chains: rows deleted from
   * the live months are findings as before, and a range recorded by hand
   * over a month that is still attached excuses nothing. */
  world w;
  world_init(&w, "cl_audit_retention_else");
  uint8_t sig[CL_SIG_LEN];
  randombytes_buf(sig, sizeof sig);
  insert_legacy(&w, 0, 0, 0, (uint64_t)month_start(16) * 1000000000ull + 5000000000ull, sig);
  char *out = maintain(&w, "12", "--drop");
  ck_assert_msg(strstr(out, "archived 0, dropped 1\n"), "%s", out);
  ck_assert_str_eq(tu_own(tu_sql_value(w.conninfo, "SELECT action FROM measurement_retention")),
                   "dropped");
  cl_audit_report rep;
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT, &rep);
  ck_assert_int_eq(rep.evidence_retired, 0);
  ck_assert_int_eq(rep.retention_ranges, 1);
  ck_assert_int_eq(rep.legacy_measurements, 0);
  cl_audit_report_free(&rep);

  char id[24];
  const char *v[1] = {id};
  i64s(id, sizeof id, w.meas_id[1][4][1]);
  q_do(w.pg, "DELETE FROM measurements WHERE id = $1::bigint", 1, v);
  i64s(id, sizeof id, w.meas_id[1][2][1]);
  q_do(w.pg, "DELETE FROM measurements WHERE id = $1::bigint", 1, v);
  want_finding want[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[1][4], CL_AUDIT_EVIDENCE},
                         {CL_AUDIT_ATTESTATIONS, w.att_id[1][2], CL_AUDIT_MEASUREMENT_MISSING}};
  expect_findings(&w, want, 2, ALL_MEAS - 2, ALL_ATT, NULL);
  char *o = NULL;
  ck_assert_int_eq(cli(&o, "--db", w.conninfo, NULL), 4);
  free(o);

  /* A version 1 record slipped in front of chip 0's chain, dated in the
   * dropped month and naming rows that never were: it cannot be checked,
   * but the genuine first record does not start the chain after it. */
  cl_attestation f;
  int site_lm, excluded_lm;
  const uint8_t zero[CL_HASH_LEN] = {0};
  make_attestation(&w, 0, 0, 0, zero, &f, &site_lm, &excluded_lm);
  f.round_end_ns = (uint64_t)month_start(16) * 1000000000ull + 86400000000000ull;
  cl_attest_sign(&f, w.rogue);
  uint8_t h[CL_HASH_LEN];
  cl_attest_hash(&f, h);
  const int64_t never[N_LMS] = {INT64_MAX - 1, INT64_MAX - 2};
  int64_t forged = insert_attestation(&w, 0, &f, h, site_lm, excluded_lm, never,
                                      (const uint8_t(*)[CL_SIG_LEN])w.meas_sig[0][0], N_LMS);
  want_finding slipped[] = {{CL_AUDIT_ATTESTATIONS, w.att_id[0][0], CL_AUDIT_CHAIN_BREAK},
                            want[0], want[1]};
  expect_findings(&w, slipped, 3, ALL_MEAS - 2, ALL_ATT + 1, &rep);
  ck_assert_int_eq(rep.evidence_retired, 1);
  cl_audit_report_free(&rep);
  char fid[24];
  i64s(fid, sizeof fid, forged);
  const char *fv[1] = {fid};
  q_do(w.pg, "DELETE FROM attestations WHERE id = $1::bigint", 1, fv);

  /* The owner records this month as removed while its partition is there:
   * ignored, the findings stay. */
  q_do(w.pg, "INSERT INTO measurement_retention (partition, range_start, range_end, action)"
             " VALUES ('measurements_now', date_trunc('month', now()) - interval '1 month',"
             " date_trunc('month', now()) + interval '1 month', 'dropped')",
       0, NULL);
  expect_findings(&w, want, 2, ALL_MEAS - 2, ALL_ATT, &rep);
  ck_assert_int_eq(rep.retention_ranges, 1);
  ck_assert_int_eq(rep.ignored_ranges, 1);
  ck_assert_int_eq(rep.evidence_retired, 0);
  cl_audit_report_free(&rep);
  world_fini(&w);
  tu_release();
}
END_TEST

/* Runs the chiploc CLI with the given arguments (NULL-terminated), output
 * to a log file in dir; returns the exit status. */
static int run_chiploc(const char *dir, ...) {
  char log[512];
  snprintf(log, sizeof log, "%s/chiploc.log", dir);
  char *bin = tu_bin("server/chiploc");
  char *argv[32];
  int argc = 0;
  argv[argc++] = bin;
  va_list ap;
  va_start(ap, dir);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && argc < 31) argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  int rc = tu_run(argv, log);
  free(bin);
  return rc;
}

START_TEST(test_real_verifier) {
  /* The verifier's own records, written by `chiploc verify` over three
   * one-second rounds next to the chains made here, audit clean (version 2:
   * their evidence found and their input digests recomputed alike);
   * deleting one of its middle records breaks its chain. */
  world w;
  world_init(&w, "cl_audit_verifier");
  char *dir = tu_tmpdir("chiploc-audit-verify");
  char keyfile[512], pkhex[CL_PK_HEX_LEN + 1];
  snprintf(keyfile, sizeof keyfile, "%s/verifier.key", dir);
  cl_key *vk = key_from_byte(0x77);
  ck_assert_int_eq(cl_key_save(vk, keyfile), CL_OK);
  cl_pk_to_hex(cl_key_public(vk), pkhex);
  cl_key_destroy(&vk);
  ck_assert_int_eq(run_chiploc(dir, "verifier", "add", "--db", w.conninfo, "--name", "verifier-2",
                               "--pubkey", pkhex, NULL),
                   0);
  for (int round = 0; round < 3; round++) {
    if (round) tu_sleep_ms(1100);
    ck_assert_int_eq(run_chiploc(dir, "verify", "--db", w.conninfo, "--key", keyfile,
                                 "--interval", "1", "--settle", "0", "--min-landmarks", "2",
                                 "--quiet", NULL),
                     0);
  }
  char log[600];
  snprintf(log, sizeof log, "%s/chiploc.log", dir);
  long long written = tu_sql_int(w.conninfo, "SELECT count(*) FROM attestations a JOIN verifiers v"
                                             " ON v.id = a.verifier_id WHERE v.name = 'verifier-2'");
  ck_assert_int_eq(written, 3 * N_CHIPS);
  /* Version 2, citing both landmarks' signatures, drawn against the two
   * regions: the audit's recomputed digests match the verifier's. */
  ck_assert_int_eq(tu_sql_int(w.conninfo,
                              "SELECT count(*) FROM attestations a JOIN verifiers v"
                              " ON v.id = a.verifier_id WHERE v.name = 'verifier-2'"
                              " AND a.layout_version = 2 AND cardinality(a.measurement_sigs) = 2"
                              " AND cardinality(a.allowed_regions) = 2"),
                   written);
  cl_audit_report rep;
  expect_findings(&w, NULL, 0, ALL_MEAS, ALL_ATT + written, &rep);
  ck_assert_int_eq(rep.chains, 2 * N_CHIPS);
  cl_audit_report_free(&rep);

  char *mid = sql_text(w.pg,
                       "SELECT a.id FROM attestations a JOIN verifiers v ON v.id = a.verifier_id"
                       " WHERE v.name = 'verifier-2' AND a.chip_id = (SELECT min(id) FROM chips)"
                       " ORDER BY a.round_end_ns OFFSET 1 LIMIT 1",
                       0, NULL);
  char *next = sql_text(w.pg,
                        "SELECT a.id FROM attestations a JOIN verifiers v ON v.id = a.verifier_id"
                        " WHERE v.name = 'verifier-2' AND a.chip_id = (SELECT min(id) FROM chips)"
                        " ORDER BY a.round_end_ns OFFSET 2 LIMIT 1",
                        0, NULL);
  const char *v[1] = {mid};
  q_do(w.pg, "DELETE FROM alerts WHERE attestation_id = $1::bigint", 1, v);
  q_do(w.pg, "DELETE FROM attestations WHERE id = $1::bigint", 1, v);
  want_finding want[] = {
      {CL_AUDIT_ATTESTATIONS, strtoll(next, NULL, 10), CL_AUDIT_CHAIN_BREAK}};
  expect_findings(&w, want, 1, ALL_MEAS, ALL_ATT + written - 1, NULL);
  free(mid);
  free(next);
  unlink(keyfile);
  unlink(log);
  rmdir(dir);
  free(dir);
  world_fini(&w);
}
END_TEST

/* ---- verifier pools: coverage ------------------------------------------------ */

/* The audit's pool gaps, run as the owner: the counts, and no finding. */
static void expect_pool(world *w, int64_t rounds, int64_t gaps, cl_audit_report *rep) {
  run_audit(w, rep);
  ck_assert_int_eq(rep->n_findings, 0);
  ck_assert_int_eq(rep->pools, 1);
  ck_assert_int_eq(rep->pool_rounds, rounds);
  ck_assert_int_eq(rep->pool_gaps, gaps);
  ck_assert_int_eq(rep->problems, gaps);
  ck_assert_uint_eq(rep->n_gaps, (size_t)gaps);
}

START_TEST(test_pool_gaps) {
  world w;
  world_init(&w, "cl_audit_pool");
  /* The world's verifier as the only member of pool p1, every bucket of
   * every round claimed: each chip attested in each round, no gap. The
   * newest round (4) may still be running and is not checked. */
  owner_sql(&w, tu_fmt("INSERT INTO verifier_claims (pool, round_end_ns, bucket, verifier_id,"
                       " interval_ns) SELECT 'p1', %llu + r * %llu, b, %lld, %llu"
                       " FROM generate_series(0, %d) r, generate_series(0, 63) b",
                       (unsigned long long)w.t0_ns, ROUND_NS, (long long)w.verifier_id,
                       ROUND_NS, N_ROUNDS - 1));
  cl_audit_report rep;
  expect_pool(&w, N_ROUNDS - 1, 0, &rep);
  cl_audit_report_free(&rep);
  char *auditor = login_in(&w, "audit_pool_auditor", "chiploc_auditor");
  char *o = NULL;
  ck_assert_int_eq(cli(&o, "--db", auditor, NULL), 0);
  ck_assert_msg(strstr(o, "pools: 1 pool(s), 4 round(s) checked; 0 gap(s)\n") &&
                    strstr(o, "; 0 problem(s)\n") && !strstr(o, "pool gap:"),
                "%s", o);
  free(o);

  /* A chip enrolled in the middle of round 2 that no member attested (a
   * forged claim took its bucket): a gap in round 3, none in round 2 (it
   * was not enrolled by its end) nor in round 4 (the newest). */
  int64_t late = 0;
  char err[512] = "";
  cl_key *k = key_from_byte(0x13);
  ck_assert_msg(cl_store_chip_enroll(w.s, cl_key_public(k), "C-0003", "Example DC", SITE_LAT,
                                     SITE_LON, &late, err, sizeof err) == CL_OK,
                "%s", err);
  cl_key_destroy(&k);
  uint64_t round3 = w.t0_ns + 3 * ROUND_NS;
  owner_sql(&w, tu_fmt("UPDATE chips SET enrolled_at = to_timestamp(%llu / 1e9) WHERE id = %lld",
                       (unsigned long long)(w.t0_ns + 2 * ROUND_NS + ROUND_NS / 2),
                       (long long)late));
  expect_pool(&w, N_ROUNDS - 1, 1, &rep);
  ck_assert_str_eq(rep.gaps[0].serial, "C-0003");
  ck_assert_str_eq(rep.gaps[0].pool, "p1");
  ck_assert_int_eq(rep.gaps[0].round_end_ns, (int64_t)round3);
  cl_audit_report_free(&rep);
  ck_assert_int_eq(cli(&o, "--db", auditor, NULL), 4);
  ck_assert_msg(strstr(o, "pool gap: chip=\"C-0003\" pool=\"p1\" round_end=") &&
                    strstr(o, tu_fmt(" round_end_ns=%llu\n", (unsigned long long)round3)) &&
                    strstr(o, "pools: 1 pool(s), 4 round(s) checked; 1 gap(s)\n") &&
                    strstr(o, "; 1 problem(s)\n") && !strstr(o, "not listed"),
                "%s", o);
  free(o);
  ck_assert_int_eq(cli(&o, "--db", auditor, "--json", NULL), 4);
  ck_assert_msg(strstr(o, "\"pools\":{\"pools\":1,\"rounds\":4,\"gaps\":1,\"first\":"
                           "[{\"serial\":\"C-0003\",\"pool\":\"p1\",\"round_end\":\"") &&
                    strstr(o, tu_fmt("\",\"round_end_ns\":%llu}]},\"problems\":1,\"findings\":[],"
                                     "\"truncated\":false}\n",
                                     (unsigned long long)round3)),
                "%s", o);
  free(o);

  /* Deactivated within two rounds of round 3's end: a member may have
   * attested round 3 after it, so no gap; deactivated later, the gap. */
  owner_sql(&w, tu_fmt("UPDATE chips SET active = false, deactivated_at = to_timestamp(%llu / 1e9)"
                       " WHERE id = %lld",
                       (unsigned long long)(round3 + 2 * ROUND_NS - ROUND_NS / 2),
                       (long long)late));
  expect_pool(&w, N_ROUNDS - 1, 0, &rep);
  cl_audit_report_free(&rep);
  owner_sql(&w, tu_fmt("UPDATE chips SET deactivated_at = to_timestamp(%llu / 1e9) WHERE id = %lld",
                       (unsigned long long)(round3 + 3 * ROUND_NS), (long long)late));
  expect_pool(&w, N_ROUNDS - 1, 1, &rep);
  cl_audit_report_free(&rep);

  /* A round whose claims are all gone still counts through the members'
   * attestations; the other chips' attestations of round 1 are there. */
  owner_sql(&w, tu_fmt("DELETE FROM verifier_claims WHERE round_end_ns = %llu",
                       (unsigned long long)(w.t0_ns + ROUND_NS)));
  expect_pool(&w, N_ROUNDS - 1, 1, &rep);
  cl_audit_report_free(&rep);
  tu_release();
  world_fini(&w);
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *su = suite_create("audit");
  TCase *tc = tcase_create("postgres");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_clean);
  tcase_add_test(tc, test_cli_usage);
  tcase_add_test(tc, test_measurement_edited);
  tcase_add_test(tc, test_measurement_record_edited);
  tcase_add_test(tc, test_measurement_unsigned_columns);
  tcase_add_test(tc, test_measurement_deleted);
  tcase_add_test(tc, test_link_edited);
  tcase_add_test(tc, test_attestation_edited);
  tcase_add_test(tc, test_attestation_deleted_middle);
  tcase_add_test(tc, test_attestation_deleted_first);
  tcase_add_test(tc, test_attestation_forged);
  tcase_add_test(tc, test_attestation_inserted_middle);
  tcase_add_test(tc, test_attestation_hash_edited);
  tcase_add_test(tc, test_attestation_round_end_edited);
  tcase_add_test(tc, test_signed_measurement_swapped);
  tcase_add_test(tc, test_many_rows);
  tcase_add_test(tc, test_v2_attestation_edited);
  tcase_add_test(tc, test_v2_cited_id_reused);
  tcase_add_test(tc, test_v2_cited_measurement_edited);
  tcase_add_test(tc, test_v2_cited_measurement_deleted);
  tcase_add_test(tc, test_v2_site_edited);
  tcase_add_test(tc, test_v2_region_edited);
  tcase_add_test(tc, test_v2_landmark_moved);
  tcase_add_test(tc, test_retired_keys);
  tcase_add_test(tc, test_legacy_rows);
  tcase_add_test(tc, test_retention_retires_evidence);
  tcase_add_test(tc, test_retention_elsewhere);
  tcase_add_test(tc, test_real_verifier);
  tcase_add_test(tc, test_pool_gaps);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
