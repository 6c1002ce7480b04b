/*
 * chiploc dashboard: the read-only web dashboard. A web server (lib/http
 * cl_httpd: the security headers, GET and HEAD only, the page's files from
 * --assets) whose JSON and GeoJSON API (docs/DASHBOARD.md) is built here
 * with jansson from the views (lib/db cl_status, the chain check of
 * cl_audit), over one database connection that a mutex serialises: a
 * login of chiploc_dashboard, which reads views and nothing else, will do.
 * Runs until SIGTERM or SIGINT; SIGHUP drops the cached borders. Exit
 * codes: 0 after a signal, 1 runtime failure (database unreachable at start,
 * cannot listen), 2 usage or configuration error.
 */
#include "chiploc_cli.h"
#include "chiploc_cmds.h"
#include "chiploc_status.h"

#include "cl_audit.h"
#include "cl_clock.h"
#include "cl_config.h"
#include "cl_err.h"
#include "cl_geojson.h"
#include "cl_httpd.h"
#include "cl_log.h"
#include "cl_status.h"
#include "cl_store.h"
#include "cl_vstore.h"

#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_LISTEN "127.0.0.1:8080"
/* The credit the borders of scripts/fetch-borders.sh need (ODbL). */
#define DEFAULT_ATTRIBUTION "Borders \xc2\xa9 OpenStreetMap contributors, ODbL"
#define ATTRIBUTION_MAX 200
/* The page's refresh period (--refresh-s), which /api/summary states. */
#define REFRESH_DEFAULT_S 30
#define REFRESH_MAX_S 3600
/* A landmark without a row for this long is stale, as for `chiploc status`. */
#define STALE_DEFAULT_S 300LL
#define STALE_MAX_S 3600LL
/* Longest ?since= of /api/alerts: 100 years, as `chiploc alerts --since`. */
#define SINCE_MAX_S 3153600000LL
/* A chip page's verdict history and alerts, newest first. */
#define HISTORY_MAX 500
#define CHIP_ALERTS_MAX 200
/* The borders change with `chiploc region import` only: re-read at most
 * this often (and on SIGHUP). */
#define BORDERS_TTL_NS (600ull * 1000000000ull)
/* Every statement is bounded, so that one stuck query cannot hold the
 * connection (and every request queued behind it) for ever. */
#define STATEMENT_TIMEOUT_MS 30000
#define LOCK_TIMEOUT_MS 5000

#define JSON_TYPE "application/json"
#define GEOJSON_TYPE "application/geo+json"

typedef struct {
  pthread_mutex_t mu; /* guards everything below */
  const char *conninfo;
  cl_store *s;        /* NULL while the database is unreachable */
  int64_t stale_s, refresh_s;
  const char *attribution; /* credit for the borders' data, or "" */
  char *borders;      /* the cached /api/borders.geojson, or NULL */
  size_t borders_len;
  uint64_t borders_at_ns; /* cl_clock_raw_ns when it was built */
} dash;

/* ---- answers ------------------------------------------------------------------- */

/* Serialises doc (taken) as the answer. */
static int reply_json(cl_httpd_reply *out, unsigned status, json_t *doc, const char *ctype) {
  char *body = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
  json_decref(doc);
  if (!body) {
    static const char oom[] = "{\"error\":\"out of memory\"}";
    body = strdup(oom);
    status = 500;
    ctype = JSON_TYPE;
  }
  out->status = status;
  out->content_type = ctype;
  out->body = body;
  out->len = body ? strlen(body) : 0;
  return 1;
}

static int reply_error(cl_httpd_reply *out, unsigned status, const char *msg) {
  return reply_json(out, status, json_pack("{ss}", "error", msg), JSON_TYPE);
}

/* A failed read: logged with its reason; the client learns what failed. */
static int reply_db_error(cl_httpd_reply *out, const char *what, int rc, const char *err) {
  cl_log(CL_LOG_WARN, "database read failed", "what=%s code=%s err=\"%s\"", what, cl_strerror(rc),
         err);
  return reply_error(out, rc == CL_ENOTFOUND ? 404 : 500,
                     rc == CL_EPERM ? "the dashboard's login may not read a view (see its log)"
                                    : "database error (see the dashboard's log)");
}

/* ---- the database ------------------------------------------------------------------ */

/* The connection, (re)made when needed; NULL when the database cannot be
 * reached (logged). Called with d->mu held. */
static cl_store *db(dash *d) {
  if (d->s && cl_store_ok(d->s)) return d->s;
  char err[512] = "";
  if (d->s && cl_store_reset(d->s) != CL_OK) cl_store_destroy(&d->s);
  if (!d->s && cl_store_connect(&d->s, d->conninfo, err, sizeof err) != CL_OK) {
    cl_log(CL_LOG_WARN, "database unreachable", "err=\"%s\"", err);
    cl_store_destroy(&d->s);
    return NULL;
  }
  if (cl_store_set_timeouts(d->s, STATEMENT_TIMEOUT_MS, LOCK_TIMEOUT_MS, err, sizeof err) !=
      CL_OK) {
    cl_log(CL_LOG_WARN, "database unreachable", "err=\"%s\"", err);
    cl_store_destroy(&d->s);
    return NULL;
  }
  cl_log(CL_LOG_INFO, "database connected", NULL);
  return d->s;
}

/* ---- JSON of the chips -------------------------------------------------------------- */

/* serial -> array of allowed codes, from cl_status_allowed's rows. */
static json_t *allowed_map(const cl_status_rows *al) {
  json_t *m = json_object();
  for (size_t i = 0; m && i < al->nrows; i++) {
    json_t *row = chiploc_row_json(al, i);
    json_t *codes = json_object_get(row, "allowed");
    if (codes) json_object_set(m, cl_status_cell(al, i, "chip"), codes);
    json_decref(row);
  }
  return m;
}

/* A chip row as /api/chips gives it: its columns and `allowed`. */
static json_t *chip_json(const cl_status_rows *t, size_t i, json_t *allowed) {
  json_t *o = chiploc_row_json(t, i);
  json_t *codes = json_object_get(allowed, cl_status_cell(t, i, "serial"));
  json_object_set_new(o, "allowed", codes ? json_copy(codes) : json_array());
  return o;
}

/* The chips and their allowed regions: 0, or a reply already made. */
static int load_chips(cl_store *s, cl_status_rows *t, json_t **allowed, cl_httpd_reply *out) {
  char err[512] = "";
  int rc = cl_status_chips(s, NULL, NULL, t, err, sizeof err);
  if (rc != CL_OK) return reply_db_error(out, "chip_status", rc, err);
  cl_status_rows al;
  rc = cl_status_allowed(s, NULL, &al, err, sizeof err);
  if (rc != CL_OK) {
    cl_status_rows_free(t);
    return reply_db_error(out, "chip_allowed", rc, err);
  }
  *allowed = allowed_map(&al);
  cl_status_rows_free(&al);
  return 0;
}

static int api_chips(cl_store *s, cl_httpd_reply *out) {
  cl_status_rows t;
  json_t *allowed = NULL;
  if (load_chips(s, &t, &allowed, out)) return 1;
  json_t *chips = json_array();
  for (size_t i = 0; chips && i < t.nrows; i++)
    json_array_append_new(chips, chip_json(&t, i, allowed));
  json_decref(allowed);
  cl_status_rows_free(&t);
  return reply_json(out, 200, json_pack("{so*}", "chips", chips), JSON_TYPE);
}

/*
 * Per chip a `chip_region` feature when its latest verdict is CONSISTENT
 * (the attestation's cap drawn so that it contains the feasible region, as
 * `chiploc export` draws it; property outline) and a `declared_site` Point,
 * the regions first so that a map draws the points over them. Properties:
 * the chip's fields of /api/chips and `kind`.
 */
static int api_chips_geojson(cl_store *s, cl_httpd_reply *out) {
  cl_status_rows t;
  json_t *allowed = NULL;
  if (load_chips(s, &t, &allowed, out)) return 1;
  json_t *regions = json_array(), *sites = json_array();
  for (size_t i = 0; regions && sites && i < t.nrows; i++) {
    json_t *props = chip_json(&t, i, allowed);
    const char *radius = cl_status_cell(&t, i, "radius_km");
    const char *lat = cl_status_cell(&t, i, "centre_lat");
    const char *lon = cl_status_cell(&t, i, "centre_lon");
    if (radius && lat && lon) {
      const char *how = "";
      json_t *cap = cl_geojson_cap(strtod(lat, NULL), strtod(lon, NULL),
                                   strtod(radius, NULL) * 1000.0, &how);
      json_t *p = json_deep_copy(props);
      json_object_set_new(p, "kind", json_string("chip_region"));
      json_object_set_new(p, "outline", json_string(how));
      json_array_append_new(regions, cl_geojson_feature(cap, p));
    }
    json_object_set_new(props, "kind", json_string("declared_site"));
    const char *slat = cl_status_cell(&t, i, "site_lat"), *slon = cl_status_cell(&t, i, "site_lon");
    json_array_append_new(sites, cl_geojson_feature(cl_geojson_point(strtod(slat, NULL),
                                                                     strtod(slon, NULL)),
                                                    props));
  }
  json_decref(allowed);
  cl_status_rows_free(&t);
  if (regions && sites) json_array_extend(regions, sites);
  json_decref(sites);
  return reply_json(out, 200, regions ? cl_geojson_collection(regions) : NULL, GEOJSON_TYPE);
}

/* ---- landmarks, alerts, summary ---------------------------------------------------- */

static int api_landmarks(dash *d, cl_store *s, int geojson, cl_httpd_reply *out) {
  char err[512] = "";
  cl_status_rows t;
  int rc = cl_status_landmarks(s, d->stale_s, &t, err, sizeof err);
  if (rc != CL_OK) return reply_db_error(out, "landmark_health", rc, err);
  json_t *doc;
  if (geojson) {
    json_t *features = json_array();
    for (size_t i = 0; features && i < t.nrows; i++)
      json_array_append_new(
          features,
          cl_geojson_feature(cl_geojson_point(strtod(cl_status_cell(&t, i, "lat"), NULL),
                                              strtod(cl_status_cell(&t, i, "lon"), NULL)),
                             chiploc_row_json(&t, i)));
    doc = features ? cl_geojson_collection(features) : NULL;
  } else {
    doc = json_pack("{sI so*}", "stale_after_s", (json_int_t)d->stale_s, "landmarks",
                    chiploc_rows_json(&t));
  }
  cl_status_rows_free(&t);
  return reply_json(out, 200, doc, geojson ? GEOJSON_TYPE : JSON_TYPE);
}

static int api_summary(dash *d, cl_store *s, cl_httpd_reply *out) {
  char err[512] = "";
  cl_status_summary sum;
  int rc = cl_status_summary_load(s, d->stale_s, &sum, err, sizeof err);
  if (rc != CL_OK) return reply_db_error(out, "summary", rc, err);
  json_t *doc = chiploc_status_json(&sum, d->stale_s);
  cl_status_summary_free(&sum);
  if (doc) json_object_set_new(doc, "refresh_s", json_integer((json_int_t)d->refresh_s));
  return reply_json(out, 200, doc, JSON_TYPE);
}

/* /api/alerts?state=open|all&chip=S&kind=K&since=DUR */
static int api_alerts(cl_store *s, const cl_httpd_req *req, cl_httpd_reply *out) {
  const char *state = cl_httpd_arg(req, "state"), *chip = cl_httpd_arg(req, "chip");
  const char *kind = cl_httpd_arg(req, "kind"), *since = cl_httpd_arg(req, "since");
  int64_t since_s = 0;
  if (state && strcmp(state, "open") != 0 && strcmp(state, "all") != 0)
    return reply_error(out, 400, "state: want open or all");
  if (since && (chiploc_parse_duration(since, &since_s) != CL_OK || since_s < 1 ||
                since_s > SINCE_MAX_S))
    return reply_error(out, 400, "since: want a duration such as 90s, 5m, 2h or 7d");
  if (since && state && strcmp(state, "all") == 0)
    return reply_error(out, 400, "give state=all or since, not both");
  if (kind) {
    int k = 0;
    while (k < CL_VSTORE_ALERT_KINDS && strcmp(kind, cl_vstore_alert_kind_name(k)) != 0) k++;
    if (k == CL_VSTORE_ALERT_KINDS) return reply_error(out, 400, "kind: not an alert kind");
  }
  if (state && strcmp(state, "all") == 0) since_s = -1;
  char err[512] = "";
  cl_status_rows t;
  int rc = cl_status_alerts(s, chip && chip[0] ? chip : NULL, kind, since_s, &t, err, sizeof err);
  if (rc == CL_ENOTFOUND) return reply_error(out, 404, "no such chip");
  if (rc != CL_OK) return reply_db_error(out, "alert_log", rc, err);
  json_t *doc = json_pack("{so*}", "alerts", chiploc_rows_json(&t));
  cl_status_rows_free(&t);
  return reply_json(out, 200, doc, JSON_TYPE);
}

/* ---- one chip -------------------------------------------------------------------------- */

/* The chain state of /api/chip/S. */
static json_t *chain_json(const cl_audit_chain *c) {
  json_t *bad = c->bad ? json_pack("{ss ss sI}", "round_end", c->bad_round_end, "problem",
                                   cl_audit_problem_name(c->bad_problem), "id",
                                   (json_int_t)c->bad_id)
                       : json_null();
  return json_pack("{so* sI sI so*}", "verifier",
                   c->verifier ? json_string(c->verifier) : json_null(), "records",
                   (json_int_t)c->records, "verified", (json_int_t)c->verified, "first_bad", bad);
}

static int api_chip(cl_store *s, const char *serial, cl_httpd_reply *out) {
  char err[512] = "";
  cl_status_chip_detail det;
  int rc = cl_status_chip(s, serial, 0, &det, err, sizeof err);
  if (rc == CL_ENOTFOUND) return reply_error(out, 404, "no such chip");
  if (rc != CL_OK) return reply_db_error(out, "chip_status", rc, err);
  cl_status_rows hist, alerts, al;
  cl_audit_chain chain;
  memset(&hist, 0, sizeof hist);
  memset(&alerts, 0, sizeof alerts);
  memset(&al, 0, sizeof al);
  memset(&chain, 0, sizeof chain);
  const char *what = "attestation_log";
  rc = cl_status_history(s, serial, HISTORY_MAX, &hist, err, sizeof err);
  if (rc == CL_OK) {
    what = "alert_log";
    rc = cl_status_alerts(s, serial, NULL, -1, &alerts, err, sizeof err);
  }
  if (rc == CL_OK) {
    what = "chip_allowed";
    rc = cl_status_allowed(s, serial, &al, err, sizeof err);
  }
  if (rc == CL_OK) {
    what = "the chain";
    rc = cl_audit_chip_chain(s, serial, &chain, err, sizeof err);
  }
  json_t *doc = NULL;
  if (rc == CL_OK) {
    json_t *allowed = allowed_map(&al);
    json_t *chip = chip_json(&det.chip, 0, allowed);
    json_decref(allowed);
    /* alert_log comes oldest first: the newest CHIP_ALERTS_MAX, newest first. */
    json_t *list = json_array();
    for (size_t k = 0; list && k < alerts.nrows && k < CHIP_ALERTS_MAX; k++)
      json_array_append_new(list, chiploc_row_json(&alerts, alerts.nrows - 1 - k));
    doc = json_pack("{so* so* so* so* so*}", "chip", chip, "history", chiploc_rows_json(&hist),
                    "landmarks", chiploc_rows_json(&det.landmarks), "chain", chain_json(&chain),
                    "alerts", list);
  }
  cl_status_chip_free(&det);
  cl_status_rows_free(&hist);
  cl_status_rows_free(&alerts);
  cl_status_rows_free(&al);
  cl_audit_chain_free(&chain);
  if (rc != CL_OK) return reply_db_error(out, what, rc, err);
  return reply_json(out, 200, doc, JSON_TYPE);
}

/* ---- borders ------------------------------------------------------------------------------ */

/* The imported regions as a FeatureCollection (property code, name), kept
 * for BORDERS_TTL_NS. Called with d->mu held. */
static int api_borders(dash *d, cl_store *s, cl_httpd_reply *out) {
  uint64_t now = cl_clock_raw_ns();
  if (!d->borders || now - d->borders_at_ns > BORDERS_TTL_NS) {
    char err[512] = "";
    cl_status_rows t;
    int rc = cl_status_region_shapes(s, &t, err, sizeof err);
    if (rc != CL_OK) return reply_db_error(out, "region_shapes", rc, err);
    json_t *features = json_array();
    for (size_t i = 0; features && i < t.nrows; i++) {
      const char *code = cl_status_cell(&t, i, "code"), *name = cl_status_cell(&t, i, "name");
      json_error_t je;
      json_t *geom = json_loads(cl_status_cell(&t, i, "geojson"), 0, &je);
      if (!geom) {
        cl_log(CL_LOG_WARN, "region left off the borders", "code=%s err=\"%s\"", code, je.text);
        continue;
      }
      json_array_append_new(
          features, cl_geojson_feature(geom, json_pack("{s:s, s:s?}", "code", code, "name", name)));
    }
    cl_status_rows_free(&t);
    json_t *doc = features ? cl_geojson_collection(features) : NULL;
    /* A foreign member (RFC 7946 section 6.1): the page credits the data
     * in the map's corner, as the borders' licence asks. */
    if (doc && d->attribution[0])
      json_object_set_new(doc, "attribution", json_string(d->attribution));
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(doc);
    if (!text) return reply_error(out, 500, "out of memory");
    free(d->borders);
    d->borders = text;
    d->borders_len = strlen(text);
    d->borders_at_ns = now;
  }
  char *copy = malloc(d->borders_len + 1);
  if (!copy) return reply_error(out, 500, "out of memory");
  memcpy(copy, d->borders, d->borders_len + 1);
  out->status = 200;
  out->content_type = GEOJSON_TYPE;
  out->body = copy;
  out->len = d->borders_len;
  return 1;
}

/* ---- routes ------------------------------------------------------------------------------- */

/* cl_httpd's handler: /healthz and /api/...; every other path is a file. */
static int on_api(void *ctx, const cl_httpd_req *req, const char *path, cl_httpd_reply *out) {
  dash *d = ctx;
  if (strcmp(path, "/healthz") == 0) {
    out->status = 200;
    out->content_type = "text/plain; charset=utf-8";
    out->body = strdup("ok\n");
    out->len = out->body ? 3 : 0;
    return 1;
  }
  if (strncmp(path, "/api/", 5) != 0) return 0;
  const char *ep = path + 5;
  static const char chip_prefix[] = "chip/";
  static const char *const known[] = {"summary", "chips", "chips.geojson", "landmarks",
                                      "landmarks.geojson", "alerts", "borders.geojson"};
  int is_chip = strncmp(ep, chip_prefix, sizeof chip_prefix - 1) == 0 &&
                ep[sizeof chip_prefix - 1] != '\0';
  size_t k = 0;
  while (k < sizeof known / sizeof known[0] && strcmp(ep, known[k]) != 0) k++;
  if (!is_chip && k == sizeof known / sizeof known[0])
    return reply_error(out, 404, "no such endpoint (see DASHBOARD.md)");
  pthread_mutex_lock(&d->mu);
  cl_store *s = db(d);
  int r;
  if (!s)
    r = reply_error(out, 503, "database unavailable");
  else if (is_chip)
    r = api_chip(s, ep + sizeof chip_prefix - 1, out);
  else if (strcmp(ep, "summary") == 0)
    r = api_summary(d, s, out);
  else if (strcmp(ep, "chips") == 0)
    r = api_chips(s, out);
  else if (strcmp(ep, "chips.geojson") == 0)
    r = api_chips_geojson(s, out);
  else if (strcmp(ep, "landmarks") == 0)
    r = api_landmarks(d, s, 0, out);
  else if (strcmp(ep, "landmarks.geojson") == 0)
    r = api_landmarks(d, s, 1, out);
  else if (strcmp(ep, "alerts") == 0)
    r = api_alerts(s, req, out);
  else
    r = api_borders(d, s, out);
  pthread_mutex_unlock(&d->mu);
  return r;
}

/* ---- the command ---------------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: chiploc dashboard [--db CONNINFO] [--listen HOST:PORT] [--assets DIR]\n"
          "                         [--refresh-s N] [--stale DURATION] [--log-level L]\n"
          "                         [--borders-attribution TEXT]\n"
          "\n"
          "Serves the read-only web dashboard: a map of the landmarks and chips, each\n"
          "chip's verdict history and chain state, the open alerts, and the JSON and\n"
          "GeoJSON API behind them (chiploc(1); DASHBOARD.md in share/doc/chiploc).\n"
          "Reads the views only: log in as a member of chiploc_dashboard. Runs until\n"
          "SIGTERM or SIGINT; SIGHUP makes it re-read the borders.\n"
          "\n"
          "  --db CONNINFO      libpq connection string (default: $CHIPLOC_DB)\n"
          "  --listen HOST:PORT numeric address to serve on (default %s; [V6]:PORT\n"
          "                     for IPv6); anything but loopback shows the fleet to\n"
          "                     whoever reaches it\n"
          "  --assets DIR       the page's files (default: the installed\n"
          "                     share/chiploc/dashboard)\n"
          "  --refresh-s N      how often the page reloads its data, 1 to %d s\n"
          "                     (default %d)\n"
          "  --stale DURATION   a landmark with no row for this long is stale\n"
          "                     (default 5m; at most 1h)\n"
          "  --log-level L      debug (every request), info, warn or error (default info)\n"
          "  --borders-attribution TEXT\n"
          "                     the credit the map shows for the imported borders\n"
          "                     (default \"%s\",\n"
          "                     right for the borders scripts/fetch-borders.sh fetches;\n"
          "                     \"\" for none); at most %d bytes of UTF-8 text\n"
          "\n"
          "exit status: 0 stopped by a signal, 1 runtime failure, 2 usage error\n",
          DEFAULT_LISTEN, REFRESH_MAX_S, REFRESH_DEFAULT_S, DEFAULT_ATTRIBUTION, ATTRIBUTION_MAX);
}

/* The installed page: DATADIR/chiploc/dashboard beside this binary's
 * BINDIR (both relative to the prefix), or NULL. Malloc'd. */
static char *default_assets(void) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return NULL;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash) return NULL;
  *slash = '\0';
  size_t len = strlen(exe) + sizeof "/" CHIPLOC_DATADIR_FROM_BINDIR "/chiploc/dashboard";
  char *dir = malloc(len);
  if (dir) snprintf(dir, len, "%s/%s/chiploc/dashboard", exe, CHIPLOC_DATADIR_FROM_BINDIR);
  return dir;
}

enum {
  OPT_DB = 256,
  OPT_LISTEN,
  OPT_ASSETS,
  OPT_REFRESH,
  OPT_STALE,
  OPT_LOG_LEVEL,
  OPT_ATTRIBUTION,
  OPT_HELP
};

/* Text the map may show: 1..ATTRIBUTION_MAX bytes of valid UTF-8 without
 * control characters (or empty). 1 if acceptable. */
static int attribution_ok(const char *t) {
  size_t n = strlen(t);
  if (n > ATTRIBUTION_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f) return 0;
  json_t *j = json_string(t); /* NULL unless valid UTF-8 */
  int ok = n == 0 || j != NULL;
  json_decref(j);
  return ok;
}

int cmd_dashboard(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"listen", required_argument, NULL, OPT_LISTEN},
      {"assets", required_argument, NULL, OPT_ASSETS},
      {"refresh-s", required_argument, NULL, OPT_REFRESH},
      {"stale", required_argument, NULL, OPT_STALE},
      {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
      {"borders-attribution", required_argument, NULL, OPT_ATTRIBUTION},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *dbopt = NULL, *listen = DEFAULT_LISTEN, *assets = NULL;
  const char *attribution = DEFAULT_ATTRIBUTION;
  int64_t refresh = REFRESH_DEFAULT_S, stale = STALE_DEFAULT_S;
  int c;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: dbopt = optarg; break;
    case OPT_LISTEN: listen = optarg; break;
    case OPT_ASSETS: assets = optarg; break;
    case OPT_REFRESH:
      if (chiploc_duration_arg("--refresh-s", optarg, 1, REFRESH_MAX_S, &refresh)) return 2;
      break;
    case OPT_STALE:
      if (chiploc_duration_arg("--stale", optarg, 1, STALE_MAX_S, &stale)) return 2;
      break;
    case OPT_LOG_LEVEL: {
      cl_log_level lvl;
      if (cl_log_parse_level(optarg, &lvl) != CL_OK) {
        chiploc_errorf("dashboard: --log-level %s: want debug, info, warn or error", optarg);
        return 2;
      }
      cl_log_set_level(lvl);
      break;
    }
    case OPT_ATTRIBUTION:
      if (!attribution_ok(optarg)) {
        chiploc_errorf("dashboard: --borders-attribution \"%.40s\": want at most %d bytes of "
                       "UTF-8 text without control characters",
                       optarg, ATTRIBUTION_MAX);
        return 2;
      }
      attribution = optarg;
      break;
    case 'h':
    case OPT_HELP: usage(stdout); return 0;
    default: return chiploc_bad_option("dashboard", c, argv);
    }
  }
  if (optind < argc) {
    chiploc_errorf("dashboard: unexpected argument %s", argv[optind]);
    return 2;
  }
  char host[128];
  int port = 0;
  if (cl_parse_hostport(listen, host, sizeof host, &port) != CL_OK) {
    chiploc_errorf("dashboard: --listen %s: want HOST:PORT or [IPV6]:PORT", listen);
    return 2;
  }
  const char *conninfo = chiploc_conninfo(dbopt, "dashboard");
  if (!conninfo) return 2;
  char *assets_default = assets ? NULL : default_assets();
  if (!assets && !assets_default) {
    chiploc_errorf("dashboard: cannot find the installed page: give --assets DIR");
    return 2;
  }

  cl_log_set_prog("dashboard");
  signal(SIGPIPE, SIG_IGN);
  dash d;
  memset(&d, 0, sizeof d);
  pthread_mutex_init(&d.mu, NULL);
  d.conninfo = conninfo;
  d.stale_s = stale;
  d.refresh_s = refresh;
  d.attribution = attribution;
  int code = 0;
  /* A database that refuses the login is a configuration error (exit 2,
   * in chiploc_connect); one that does not answer at start, a runtime one. */
  if (!(d.s = chiploc_connect(conninfo))) {
    code = 1;
    goto out;
  }
  char err[512] = "";
  if (cl_store_set_timeouts(d.s, STATEMENT_TIMEOUT_MS, LOCK_TIMEOUT_MS, err, sizeof err) != CL_OK) {
    chiploc_errorf("dashboard: %s", err);
    code = 1;
    goto out;
  }
  /* The signals are taken by sigwait below; blocked before the server's
   * threads start, so that they inherit the mask and never take one. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  cl_httpd_opts o = {
      .host = host,
      .port = port,
      .assets_dir = assets ? assets : assets_default,
      .handler = on_api,
      .ctx = &d,
      .threads = 4,
      .max_connections = 64,
      .per_ip_connections = 16,
      .timeout_s = 30,
  };
  cl_httpd *h = NULL;
  int rc = cl_httpd_start(&h, &o, err, sizeof err);
  if (rc != CL_OK) {
    chiploc_errorf("dashboard: %s", err);
    code = rc == CL_EINVAL ? 2 : 1;
    goto out;
  }
  cl_log(CL_LOG_INFO, "listening", "url=http://%s%s%s:%d/ assets=\"%s\" refresh_s=%lld",
         strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", cl_httpd_port(h),
         o.assets_dir, (long long)refresh);
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      pthread_mutex_lock(&d.mu);
      free(d.borders);
      d.borders = NULL;
      pthread_mutex_unlock(&d.mu);
      cl_log(CL_LOG_INFO, "SIGHUP: borders will be re-read",
             "hint=\"options and CHIPLOC_DB are read at start: restart to change them\"");
      continue;
    }
    cl_log(CL_LOG_INFO, "shutting down", "signal=%d", sig);
    break;
  }
  cl_httpd_stop(&h);
out:
  cl_store_destroy(&d.s);
  free(d.borders);
  free(assets_default);
  pthread_mutex_destroy(&d.mu);
  return code;
}
