/* The verifier's SQL (see cl_vstore.h). */
#include "cl_vstore.h"
#include "cl_err.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERIFY_LOCK_BASE 7163091138909266800LL /* distinct from the migration lock */

static int fail(PGresult *r, PGconn *c, int code, char *err, size_t errlen, const char *what) {
  if (err && errlen)
    snprintf(err, errlen, "%s: %s", what, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
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
  PGresult *r = PQexecParams(c,
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
    snprintf(err, errlen, "verifier key %s is not registered; run: chiploc verifier add --pubkey %s ...",
             pkhex, pkhex);
    return CL_ENOTFOUND;
  }
  *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return CL_OK;
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
    free(c->mins);
  }
  free(w->chips);
  for (size_t i = 0; i < w->n_landmarks; i++) free(w->landmarks[i].name);
  free(w->landmarks);
  free(w->links);
  cl_region_set_free(&w->regions);
  memset(w, 0, sizeof *w);
}

/* Loads the regions any chip is allowed in, as one region set. */
static int load_regions(PGconn *c, cl_vworld *w, char *err, size_t errlen) {
  PGresult *r = PQexecParams(
      c,
      "SELECT json_build_object('type', 'FeatureCollection', 'features', "
      "coalesce(json_agg(json_build_object('type', 'Feature', 'properties', "
      "json_build_object('code', code), 'geometry', geojson)), '[]'::json))::text "
      "FROM regions WHERE code IN (SELECT region_code FROM chip_regions)",
      0, NULL, NULL, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "load regions");
  const char *text = PQgetvalue(r, 0, 0);
  if (strstr(text, "\"features\" : []") || strstr(text, "\"features\":[]")) {
    PQclear(r); /* no chip has allowed regions */
    return CL_OK;
  }
  int rc = cl_region_set_parse_geojson(&w->regions, text, strlen(text), "code", err, errlen);
  PQclear(r);
  return rc;
}

int cl_vstore_load(cl_store *s, int64_t verifier_id, uint64_t round_end_ns, uint64_t window_ns,
                   cl_vworld *w, char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  memset(w, 0, sizeof *w);
  char vid[24], end[24], start[24];
  snprintf(vid, sizeof vid, "%lld", (long long)verifier_id);
  snprintf(end, sizeof end, "%llu", (unsigned long long)round_end_ns);
  snprintf(start, sizeof start, "%llu", (unsigned long long)(round_end_ns - window_ns));
  int rc;
  /* Chips. */
  PGresult *r = PQexecParams(c,
                             "SELECT id, public_key, serial, site_lat, site_lon, "
                             "(extract(epoch FROM enrolled_at) * 1e9)::bigint "
                             "FROM chips WHERE active ORDER BY id",
                             0, NULL, NULL, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "load chips");
  w->n_chips = (size_t)PQntuples(r);
  w->chips = calloc(w->n_chips ? w->n_chips : 1, sizeof *w->chips);
  if (!w->chips) {
    PQclear(r);
    return CL_ENOMEM;
  }
  for (size_t i = 0; i < w->n_chips; i++) {
    cl_vchip *ch = &w->chips[i];
    ch->in.chip_id = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
    if (bytea_col(r, (int)i, 1, ch->in.pk, CL_PK_LEN) != CL_OK) {
      PQclear(r);
      snprintf(err, errlen, "chip %lld: bad public key", (long long)ch->in.chip_id);
      return CL_EMALFORMED;
    }
    ch->serial = strdup(PQgetvalue(r, (int)i, 2));
    ch->in.site_lat = strtod(PQgetvalue(r, (int)i, 3), NULL);
    ch->in.site_lon = strtod(PQgetvalue(r, (int)i, 4), NULL);
    ch->in.enrolled_ns = strtoll(PQgetvalue(r, (int)i, 5), NULL, 10);
  }
  PQclear(r);
  if ((rc = load_regions(c, w, err, errlen)) != CL_OK) return rc;
  /* Allowed codes. */
  r = PQexecParams(c, "SELECT chip_id, region_code FROM chip_regions ORDER BY chip_id, region_code",
                   0, NULL, NULL, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "load chip regions");
  for (int i = 0; i < PQntuples(r); i++) {
    cl_vchip *ch = find_chip(w, strtoll(PQgetvalue(r, i, 0), NULL, 10));
    if (!ch) continue;
    char **nc = realloc(ch->codes, (ch->n_codes + 1) * sizeof *nc);
    const cl_region **nm = realloc(ch->members, (ch->n_codes + 1) * sizeof *nm);
    if (nc) ch->codes = nc;
    if (nm) ch->members = nm;
    if (!nc || !nm) {
      PQclear(r);
      return CL_ENOMEM;
    }
    ch->codes[ch->n_codes] = strdup(PQgetvalue(r, i, 1));
    ch->members[ch->n_codes] = cl_region_set_find(&w->regions, ch->codes[ch->n_codes]);
    if (!ch->members[ch->n_codes]) {
      snprintf(err, errlen, "region %s of chip %s has no geometry", ch->codes[ch->n_codes], ch->serial);
      PQclear(r);
      return CL_EMALFORMED;
    }
    ch->n_codes++;
  }
  PQclear(r);
  /* Fastest measurement per (chip, landmark) in the window. */
  const char *v2[2] = {start, end};
  r = PQexecParams(
      c,
      "SELECT DISTINCT ON (m.chip_id, m.landmark_id) m.chip_id, m.landmark_id, m.id, m.rtt_ns, "
      "m.landmark_sig, l.public_key, l.lat, l.lon "
      "FROM measurements m JOIN landmarks l ON l.id = m.landmark_id "
      "WHERE m.measured_at_ns > $1::bigint AND m.measured_at_ns <= $2::bigint "
      "AND m.measured_at > to_timestamp($1::bigint / 1e9) - interval '1 second' "
      "AND m.measured_at <= to_timestamp($2::bigint / 1e9) + interval '1 second' "
      "ORDER BY m.chip_id, m.landmark_id, m.rtt_ns, m.id",
      2, NULL, v2, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "load measurements");
  int n = PQntuples(r);
  for (int i = 0; i < n;) {
    int64_t chip = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    int j = i;
    while (j < n && strtoll(PQgetvalue(r, j, 0), NULL, 10) == chip) j++;
    cl_vchip *ch = find_chip(w, chip);
    if (ch) {
      ch->mins = calloc((size_t)(j - i), sizeof *ch->mins);
      if (!ch->mins) {
        PQclear(r);
        return CL_ENOMEM;
      }
      for (int k = i; k < j; k++) {
        cl_verify_min *m = &ch->mins[k - i];
        m->landmark_id = strtoll(PQgetvalue(r, k, 1), NULL, 10);
        m->measurement_id = strtoll(PQgetvalue(r, k, 2), NULL, 10);
        m->rtt_ns = strtoull(PQgetvalue(r, k, 3), NULL, 10);
        if (bytea_col(r, k, 4, m->landmark_sig, CL_SIG_LEN) ||
            bytea_col(r, k, 5, m->landmark_pk, CL_PK_LEN)) {
          PQclear(r);
          snprintf(err, errlen, "measurement %lld: bad signature or key column",
                   (long long)m->measurement_id);
          return CL_EMALFORMED;
        }
        m->lat = strtod(PQgetvalue(r, k, 6), NULL);
        m->lon = strtod(PQgetvalue(r, k, 7), NULL);
      }
      ch->in.n_mins = (size_t)(j - i);
    }
    i = j;
  }
  PQclear(r);
  /* Chain heads and last sufficient rounds. */
  const char *v1[1] = {vid};
  r = PQexecParams(c,
                   "SELECT DISTINCT ON (chip_id) chip_id, hash, round_end_ns, consistency, "
                   "centre_lat_e7, centre_lon_e7, radius_m FROM attestations "
                   "WHERE verifier_id = $1::bigint ORDER BY chip_id, round_end_ns DESC",
                   1, NULL, v1, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "load chain heads");
  for (int i = 0; i < PQntuples(r); i++) {
    cl_vchip *ch = find_chip(w, strtoll(PQgetvalue(r, i, 0), NULL, 10));
    if (!ch) continue;
    if (bytea_col(r, i, 1, ch->in.prev_hash, CL_HASH_LEN) != CL_OK) {
      PQclear(r);
      snprintf(err, errlen, "chip %s: bad attestation hash", ch->serial);
      return CL_EMALFORMED;
    }
    ch->in.has_prev = 1;
    uint64_t prev_end = strtoull(PQgetvalue(r, i, 2), NULL, 10);
    ch->attested = prev_end >= round_end_ns;
    ch->in.prev_consistent = atoi(PQgetvalue(r, i, 3)) == CL_ATT_CONSISTENT;
    ch->in.prev_lat_e7 = atoi(PQgetvalue(r, i, 4));
    ch->in.prev_lon_e7 = atoi(PQgetvalue(r, i, 5));
    ch->in.prev_radius_m = strtoull(PQgetvalue(r, i, 6), NULL, 10);
  }
  PQclear(r);
  r = PQexecParams(c,
                   "SELECT chip_id, max(round_end_ns) FROM attestations "
                   "WHERE verifier_id = $1::bigint AND consistency <> 1 GROUP BY chip_id",
                   1, NULL, v1, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "load last rounds");
  for (int i = 0; i < PQntuples(r); i++) {
    cl_vchip *ch = find_chip(w, strtoll(PQgetvalue(r, i, 0), NULL, 10));
    if (ch) ch->in.last_sufficient_ns = strtoll(PQgetvalue(r, i, 1), NULL, 10);
  }
  PQclear(r);
  /* Open alerts. */
  r = PQexecParams(c, "SELECT chip_id, kind FROM alerts WHERE cleared_at IS NULL AND chip_id IS NOT NULL",
                   0, NULL, NULL, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "load alerts");
  for (int i = 0; i < PQntuples(r); i++) {
    cl_vchip *ch = find_chip(w, strtoll(PQgetvalue(r, i, 0), NULL, 10));
    if (!ch) continue;
    for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++)
      if (strcmp(PQgetvalue(r, i, 1), cl_alert_kind_name(k)) == 0) ch->open_alert[k] = 1;
  }
  PQclear(r);
  /* Landmarks, their open misplacement alerts, and their links. */
  r = PQexecParams(c,
                   "SELECT l.id, l.name, l.lat, l.lon, EXISTS (SELECT 1 FROM alerts a WHERE "
                   "a.landmark_id = l.id AND a.kind = 'landmark_misplaced' AND a.cleared_at IS NULL) "
                   "FROM landmarks l ORDER BY l.id",
                   0, NULL, NULL, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "load landmarks");
  w->n_landmarks = (size_t)PQntuples(r);
  w->landmarks = calloc(w->n_landmarks ? w->n_landmarks : 1, sizeof *w->landmarks);
  if (!w->landmarks) {
    PQclear(r);
    return CL_ENOMEM;
  }
  for (size_t i = 0; i < w->n_landmarks; i++) {
    cl_vlandmark *l = &w->landmarks[i];
    l->id = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
    l->name = strdup(PQgetvalue(r, (int)i, 1));
    l->lat = strtod(PQgetvalue(r, (int)i, 2), NULL);
    l->lon = strtod(PQgetvalue(r, (int)i, 3), NULL);
    l->open_misplaced = PQgetvalue(r, (int)i, 4)[0] == 't';
  }
  PQclear(r);
  r = PQexecParams(c,
                   "SELECT DISTINCT ON (from_landmark_id, to_landmark_id) from_landmark_id, "
                   "to_landmark_id, rtt_ns FROM landmark_links "
                   "WHERE measured_at_ns > $1::bigint AND measured_at_ns <= $2::bigint "
                   "ORDER BY from_landmark_id, to_landmark_id, rtt_ns",
                   2, NULL, v2, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "load links");
  w->n_links = (size_t)PQntuples(r);
  w->links = calloc(w->n_links ? w->n_links : 1, sizeof *w->links);
  if (!w->links) {
    PQclear(r);
    return CL_ENOMEM;
  }
  for (size_t i = 0; i < w->n_links; i++) {
    w->links[i].from_id = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
    w->links[i].to_id = strtoll(PQgetvalue(r, (int)i, 1), NULL, 10);
    w->links[i].rtt_ms = (double)strtoull(PQgetvalue(r, (int)i, 2), NULL, 10) / 1e6;
  }
  PQclear(r);
  /* Wire the engine inputs. */
  for (size_t i = 0; i < w->n_chips; i++) {
    cl_vchip *ch = &w->chips[i];
    ch->uni.members = ch->members;
    ch->uni.n = ch->n_codes;
    ch->in.allowed = &ch->uni;
    ch->in.allowed_codes = (const char *const *)ch->codes;
    ch->in.n_allowed = ch->n_codes;
    ch->in.mins = ch->mins;
  }
  return CL_OK;
}

/* Appends "{a,b,c}" of int64 values to buf. */
static void int_array(char *buf, size_t len, const int64_t *v, size_t n) {
  size_t o = (size_t)snprintf(buf, len, "{");
  for (size_t i = 0; i < n && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)v[i]);
  if (o < len) snprintf(buf + o, len - o, "}");
}

int cl_vstore_write(cl_store *s, int64_t verifier_id, const cl_vchip *ch, const cl_verify_out *o,
                    char *err, size_t errlen) {
  PGconn *c = cl_store_pgconn(s);
  const cl_attestation *a = &o->a;
  char chip[24], vid[24], end[24], win[24], cons[4], site[4], region[4], speed[24], lat[16],
      lon[16], radius[24], slm[24], smargin[24], used[16];
  char prev[2 + 64 + 1], hash[2 + 64 + 1], sig[2 + 128 + 1];
  snprintf(chip, sizeof chip, "%lld", (long long)ch->in.chip_id);
  snprintf(vid, sizeof vid, "%lld", (long long)verifier_id);
  snprintf(end, sizeof end, "%llu", (unsigned long long)a->round_end_ns);
  snprintf(win, sizeof win, "%llu", (unsigned long long)a->window_ns);
  snprintf(cons, sizeof cons, "%u", a->consistency);
  snprintf(site, sizeof site, "%u", a->site);
  snprintf(region, sizeof region, "%u", a->region);
  snprintf(speed, sizeof speed, "%llu", (unsigned long long)a->speed_m_per_s);
  snprintf(lat, sizeof lat, "%d", a->centre_lat_e7);
  snprintf(lon, sizeof lon, "%d", a->centre_lon_e7);
  snprintf(radius, sizeof radius, "%llu", (unsigned long long)a->radius_m);
  snprintf(slm, sizeof slm, "%lld", (long long)o->site_landmark_id);
  snprintf(smargin, sizeof smargin, "%lld", (long long)a->site_margin_m);
  snprintf(used, sizeof used, "%zu", o->landmarks_used);
  hexbytea(prev, a->prev_hash, CL_HASH_LEN);
  hexbytea(hash, o->hash, CL_HASH_LEN);
  hexbytea(sig, a->sig, CL_SIG_LEN);
  char excluded[CL_GEO_MAX_EXCLUDED * 22 + 4];
  int_array(excluded, sizeof excluded, o->excluded_ids, o->n_excluded);
  size_t mlen = ch->in.n_mins * 22 + 4;
  char *meas = malloc(mlen);
  int64_t *ids = malloc((ch->in.n_mins ? ch->in.n_mins : 1) * sizeof *ids);
  size_t alen = 4;
  for (size_t i = 0; i < ch->n_codes; i++) alen += strlen(ch->codes[i]) * 2 + 4;
  char *allowed = malloc(alen);
  if (!meas || !ids || !allowed) {
    free(meas), free(ids), free(allowed);
    return CL_ENOMEM;
  }
  for (size_t i = 0; i < ch->in.n_mins; i++) ids[i] = ch->in.mins[i].measurement_id;
  int_array(meas, mlen, ids, ch->in.n_mins);
  /* Region codes are quoted array elements; codes never hold quotes or
   * backslashes (the importer takes them from GeoJSON strings, so escape). */
  size_t p = 0;
  allowed[p++] = '{';
  for (size_t i = 0; i < ch->n_codes; i++) {
    if (i) allowed[p++] = ',';
    allowed[p++] = '"';
    for (const char *q = ch->codes[i]; *q; q++) {
      if (*q == '"' || *q == '\\') allowed[p++] = '\\';
      allowed[p++] = *q;
    }
    allowed[p++] = '"';
  }
  allowed[p++] = '}';
  allowed[p] = '\0';
  const char *v[20] = {chip, vid,    end,    win,  cons,   site,     region, speed,   lat,  lon,
                       radius, o->site_landmark_id ? slm : NULL, smargin, allowed, excluded, used,
                       meas, prev, hash, sig};
  PGresult *r = PQexecParams(
      c,
      "INSERT INTO attestations (chip_id, verifier_id, round_end_ns, round_end, window_ns, "
      "consistency, site_verdict, region_verdict, speed_m_s, centre_lat_e7, centre_lon_e7, radius_m, "
      "site_landmark_id, site_margin_m, allowed_regions, excluded_landmark_ids, landmarks_used, "
      "measurement_ids, prev_hash, hash, signature) VALUES ($1::bigint, $2::bigint, $3::bigint, "
      "to_timestamp($3::bigint / 1e9), $4::bigint, $5::smallint, $6::smallint, $7::smallint, "
      "$8::bigint, $9::integer, $10::integer, $11::bigint, $12::bigint, $13::bigint, $14::text[], "
      "$15::bigint[], $16::integer, $17::bigint[], $18::bytea, $19::bytea, $20::bytea) RETURNING id",
      20, NULL, v, NULL, NULL, 0);
  free(meas), free(ids), free(allowed);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(r, c, map_state(r), err, errlen, "insert attestation");
  char att_id[24];
  snprintf(att_id, sizeof att_id, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++) {
    if (o->alert[k] && !ch->open_alert[k]) {
      const char *va[4] = {cl_alert_kind_name(k), chip, o->detail[k], att_id};
      r = PQexecParams(c,
                       "INSERT INTO alerts (kind, chip_id, detail, attestation_id) "
                       "VALUES ($1::text, $2::bigint, $3::text, $4::bigint)",
                       4, NULL, va, NULL, NULL, 0);
    } else if (!o->alert[k] && ch->open_alert[k]) {
      const char *va[2] = {cl_alert_kind_name(k), chip};
      r = PQexecParams(c,
                       "UPDATE alerts SET cleared_at = now() WHERE kind = $1::text "
                       "AND chip_id = $2::bigint AND cleared_at IS NULL",
                       2, NULL, va, NULL, NULL, 0);
    } else {
      continue;
    }
    if (PQresultStatus(r) != PGRES_COMMAND_OK) return fail(r, c, map_state(r), err, errlen, "alert");
    PQclear(r);
  }
  return CL_OK;
}

int cl_vstore_landmark_alert(cl_store *s, const cl_vlandmark *lm, int open, const char *detail,
                             char *err, size_t errlen) {
  if (open == lm->open_misplaced) return CL_OK;
  PGconn *c = cl_store_pgconn(s);
  char id[24];
  snprintf(id, sizeof id, "%lld", (long long)lm->id);
  PGresult *r;
  if (open) {
    const char *v[2] = {id, detail ? detail : ""};
    r = PQexecParams(c,
                     "INSERT INTO alerts (kind, landmark_id, detail) "
                     "VALUES ('landmark_misplaced', $1::bigint, $2::text)",
                     2, NULL, v, NULL, NULL, 0);
  } else {
    const char *v[1] = {id};
    r = PQexecParams(c,
                     "UPDATE alerts SET cleared_at = now() WHERE kind = 'landmark_misplaced' "
                     "AND landmark_id = $1::bigint AND cleared_at IS NULL",
                     1, NULL, v, NULL, NULL, 0);
  }
  if (PQresultStatus(r) != PGRES_COMMAND_OK) return fail(r, c, map_state(r), err, errlen, "landmark alert");
  PQclear(r);
  return CL_OK;
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
    if (strcmp(kind, "landmark_misplaced") == 0) {
      counts[CL_ALERT__CHIP_KINDS] = n;
      continue;
    }
    for (int k = 0; k < CL_ALERT__CHIP_KINDS; k++)
      if (strcmp(kind, cl_alert_kind_name(k)) == 0) counts[k] = n;
  }
  PQclear(r);
  return CL_OK;
}
