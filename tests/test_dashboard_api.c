/*
 * The real `chiploc dashboard` (server/chiploc_dashboard.c, lib/http
 * cl_httpd, lib/db cl_status and cl_audit_chip_chain, schema 0009) over the
 * seeded world of tests/tu_seed.h (genuine signed records, the real
 * verifier's rounds, a chip whose serial and operator are script-like),
 * logged in as a member of chiploc_dashboard: every endpoint's status,
 * headers and JSON (parsed with jansson), the hostile strings returned as
 * the exact JSON strings, a chip's chain verified N of N and then broken at
 * the record whose signature the owner corrupts, files of the assets
 * directory and nothing outside it, 404, 405, and odd requests that must
 * not bring the server down.
 */
#include "testutil.h"
#include "tu_seed.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CSP                                                                                   \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
#define SECRET "NOT-FOR-THE-WEB-4711"

typedef struct {
  char *conninfo, *dash_conninfo, *dir, *assets, *log;
  pid_t pid;
  int port;
} world;

static world W;

/* ---- HTTP ------------------------------------------------------------------------ */

typedef struct {
  int status;
  char *head; /* the status line and headers, NUL-terminated */
  char *body;
  size_t body_len;
} answer;

static void answer_free(answer *a) {
  free(a->head);
  free(a->body);
  memset(a, 0, sizeof *a);
}

/* Sends the raw request bytes and reads the whole answer (the server
 * closes after it: HTTP/1.0, or Connection: close). status 0 when no
 * answer came within 10 s. */
static answer http_raw(const char *req, size_t len) {
  answer a = {0};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)W.port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "connect: %s",
                strerror(errno));
  ck_assert(send(fd, req, len, MSG_NOSIGNAL) == (ssize_t)len);
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  ck_assert(buf);
  for (;;) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10000) <= 0) break;
    if (cap - n < 4096) ck_assert((buf = realloc(buf, cap *= 2)) != NULL);
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  buf[n] = '\0';
  char *end = strstr(buf, "\r\n\r\n");
  if (strncmp(buf, "HTTP/1.", 7) == 0 && end) {
    a.status = atoi(buf + 9);
    a.head = strndup(buf, (size_t)(end - buf) + 2);
    a.body_len = n - (size_t)(end + 4 - buf);
    a.body = malloc(a.body_len + 1);
    memcpy(a.body, end + 4, a.body_len);
    a.body[a.body_len] = '\0';
  }
  free(buf);
  return a;
}

static answer request(const char *method, const char *path) {
  char *req = tu_fmt("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", method,
                     path);
  return http_raw(req, strlen(req));
}

/* The value of header `name` (case-insensitive), owned; NULL if absent. */
static char *header(const answer *a, const char *name) {
  size_t n = strlen(name);
  for (const char *p = a->head ? strstr(a->head, "\r\n") : NULL; p && p[2];
       p = strstr(p + 2, "\r\n")) {
    const char *line = p + 2;
    if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
      const char *v = line + n + 1;
      while (*v == ' ') v++;
      return tu_own(strndup(v, strcspn(v, "\r")));
    }
  }
  return NULL;
}

/* Every answer carries the security headers. */
static void assert_secure(const answer *a, const char *what) {
  char *csp = header(a, "Content-Security-Policy");
  ck_assert_msg(csp && strcmp(csp, CSP) == 0, "%s: CSP %s", what, csp ? csp : "(none)");
  char *nosniff = header(a, "X-Content-Type-Options");
  ck_assert_msg(nosniff && strcmp(nosniff, "nosniff") == 0, "%s: no nosniff", what);
  char *ref = header(a, "Referrer-Policy");
  ck_assert_msg(ref && strcmp(ref, "no-referrer") == 0, "%s: Referrer-Policy", what);
}

/* GET path: must answer `status` with the security headers and a JSON
 * document of Content-Type ctype; returns the document (json_decref it). */
static json_t *get_json(const char *path, int status, const char *ctype) {
  answer a = request("GET", path);
  ck_assert_msg(a.status == status, "GET %s: %d, want %d: %s", path, a.status, status,
                a.body ? a.body : "");
  assert_secure(&a, path);
  char *ct = header(&a, "Content-Type");
  ck_assert_msg(ct && strcmp(ct, ctype) == 0, "GET %s: Content-Type %s", path, ct ? ct : "-");
  char *cc = header(&a, "Cache-Control");
  ck_assert_msg(cc && strcmp(cc, "no-store") == 0, "GET %s: Cache-Control %s", path,
                cc ? cc : "-");
  json_error_t e;
  json_t *j = json_loadb(a.body, a.body_len, 0, &e);
  ck_assert_msg(j, "GET %s: not JSON (%s): %s", path, e.text, a.body);
  answer_free(&a);
  return j;
}

#define API(path) get_json(path, 200, "application/json")
#define GEO(path) get_json(path, 200, "application/geo+json")

/* Percent-encodes everything but unreserved characters. Owned. */
static char *urlenc(const char *s) {
  char *out = tu_own(malloc(strlen(s) * 3 + 1)), *o = out;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '.' || *p == '_' || *p == '~')
      *o++ = (char)*p;
    else
      o += sprintf(o, "%%%02X", *p);
  }
  *o = '\0';
  return out;
}

/* ---- JSON ------------------------------------------------------------------------ */

static const char *jstr(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  ck_assert_msg(json_is_string(v), "%s is not a string", key);
  return json_string_value(v);
}

static long long jint(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
  return (long long)json_integer_value(v);
}

/* The element of array a whose `key` is `value` (the test fails without). */
static json_t *find(json_t *a, const char *key, const char *value) {
  size_t i;
  json_t *e;
  json_array_foreach(a, i, e) {
    json_t *v = json_object_get(e, key);
    if (json_is_string(v) && strcmp(json_string_value(v), value) == 0) return e;
  }
  ck_abort_msg("no element with %s = %s", key, value);
  return NULL;
}

/* The one string of a JSON array of one string. */
static const char *only(json_t *a) {
  ck_assert_msg(json_array_size(a) == 1, "%zu elements, want 1", json_array_size(a));
  return json_string_value(json_array_get(a, 0));
}

/* ---- the world ------------------------------------------------------------------- */

static void sqlf(const char *sql) {
  char err[512] = "";
  ck_assert_msg(tu_sql(W.conninfo, sql, err, sizeof err) == 0, "%s: %s", sql, err);
}

/* A LOGIN role that is a member of chiploc_dashboard only (roles are
 * cluster-wide: it may remain from an earlier run). */
static char *dashboard_login(void) {
  sqlf("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dash_api_test') THEN "
       "CREATE ROLE dash_api_test LOGIN; END IF; END $$; GRANT chiploc_dashboard TO dash_api_test");
  return tu_own(tu_conninfo_as(W.conninfo, "dash_api_test"));
}

/* A small page in its own directory, a file with a served extension
 * outside it, and a symbolic link from inside to that file. */
static void make_assets(void) {
  W.assets = tu_fmt("%s/assets", W.dir);
  char *outside = tu_fmt("%s/outside", W.dir);
  ck_assert_int_eq(mkdir(W.assets, 0700), 0);
  ck_assert_int_eq(mkdir(outside, 0700), 0);
  char *lf = tu_fmt("%s/leaflet", W.assets);
  ck_assert_int_eq(mkdir(lf, 0700), 0);
  tu_own(tu_write_file(W.assets, "index.html", "<!doctype html><title>chiploc</title>\n"));
  tu_own(tu_write_file(W.assets, "app.js", "'use strict';\n"));
  tu_own(tu_write_file(W.assets, "app.css", "body{}\n"));
  tu_own(tu_write_file(W.assets, ".hidden.js", "hidden\n"));
  tu_own(tu_write_file(W.assets, "notes.txt", "no such type\n"));
  tu_own(tu_write_file(lf, "leaflet.js", "/* leaflet */\n"));
  tu_own(tu_write_file(outside, "secret.html", SECRET "\n"));
  tu_own(tu_write_file(W.dir, "secret.html", SECRET "\n"));
  ck_assert_int_eq(symlink(tu_fmt("%s/secret.html", outside), tu_fmt("%s/leak.html", W.assets)),
                   0);
  ck_assert_int_eq(symlink("../outside", tu_fmt("%s/out", W.assets)), 0);
}

static void start_dashboard(void) {
  W.port = tu_free_port();
  W.log = tu_fmt("%s/dashboard.log", W.dir);
  char *listen = tu_fmt("127.0.0.1:%d", W.port);
  char *bin = tu_own(tu_bin("server/chiploc"));
  char *argv[] = {bin, "dashboard", "--db", W.dash_conninfo, "--listen", listen,
                  "--assets", W.assets, "--log-level", "debug", NULL};
  W.pid = tu_spawn(argv, W.log);
  ck_assert_msg(tu_wait_log(W.log, "msg=listening", 1, 20000) == 0, "dashboard did not start: %s",
                W.log);
}

static void world_init(void) {
  memset(&W, 0, sizeof W);
  W.conninfo = tu_own(tu_db_create("cl_dash_api"));
  W.dir = tu_own(tu_tmpdir("cl-dash-api"));
  fprintf(stderr, "test_dashboard_api: files and logs in %s\n", W.dir);
  char err[512] = "";
  char *chiploc = tu_own(tu_bin("server/chiploc"));
  ck_assert_msg(tu_seed_dashboard(W.conninfo, chiploc, W.dir, err, sizeof err) == 0, "%s", err);
  W.dash_conninfo = dashboard_login();
  make_assets();
  start_dashboard();
}

static void world_fini(void) {
  ck_assert_int_eq(tu_stop(W.pid, SIGTERM, 10000), 0);
  ck_assert_msg(tu_count_in_file(W.log, "msg=\"shutting down\"") == 1, "%s", W.log);
  tu_release();
}

/* ---- the endpoints --------------------------------------------------------------- */

static void check_summary(void) {
  json_t *j = API("/api/summary");
  json_t *chips = json_object_get(j, "chips");
  ck_assert_int_eq(jint(chips, "enrolled"), TU_SEED_CHIPS);
  ck_assert_int_eq(jint(chips, "active"), TU_SEED_CHIPS - 1);
  ck_assert_int_eq(jint(chips, "inactive"), 1);
  ck_assert_int_eq(jint(chips, "never_attested"), 1);
  ck_assert_int_eq(jint(json_object_get(chips, "consistency"), "CONSISTENT"), 5);
  ck_assert_int_eq(jint(json_object_get(chips, "consistency"), "INSUFFICIENT"), 1);
  ck_assert_int_eq(jint(json_object_get(chips, "site_verdict"), "SITE_EXCLUDED"), 1);
  json_t *lms = json_object_get(j, "landmarks");
  ck_assert_int_eq(jint(lms, "total"), TU_SEED_LANDMARKS);
  ck_assert_int_eq(jint(lms, "healthy"), 3);
  ck_assert_int_eq(jint(lms, "stale"), 1);
  ck_assert_int_eq(jint(lms, "retired"), 1);
  ck_assert_int_eq(jint(j, "refresh_s"), 30);
  ck_assert(json_is_string(json_object_get(json_object_get(j, "last_round"), "round_end")));
  json_decref(j);
}

/* The verdicts of tu_seed.h, as /api/chips and /api/chip/S give them. */
static const struct {
  const char *serial, *consistency, *site, *region;
} VERDICTS[] = {
    {"S-PARIS", "CONSISTENT", "SITE_CONSISTENT", "INSIDE"},
    {"S-SMUGGLED", "CONSISTENT", "SITE_EXCLUDED", "INSIDE"},
    {"S-OUTSIDE", "CONSISTENT", "SITE_CONSISTENT", "OUTSIDE"},
    {"S-EDGE", "CONSISTENT", "SITE_CONSISTENT", "UNDETERMINED"},
    {TU_SEED_HOSTILE_SERIAL, "CONSISTENT", "SITE_CONSISTENT", "INSIDE"},
};
#define N_VERDICTS (sizeof VERDICTS / sizeof VERDICTS[0])

static void check_chips(void) {
  json_t *j = API("/api/chips");
  json_t *a = json_object_get(j, "chips");
  ck_assert_int_eq(json_array_size(a), TU_SEED_CHIPS);
  for (size_t i = 0; i < N_VERDICTS; i++) {
    json_t *c = find(a, "serial", VERDICTS[i].serial);
    ck_assert_str_eq(jstr(c, "consistency"), VERDICTS[i].consistency);
    ck_assert_str_eq(jstr(c, "site_verdict"), VERDICTS[i].site);
    ck_assert_str_eq(jstr(c, "region_verdict"), VERDICTS[i].region);
    ck_assert(json_is_real(json_object_get(c, "radius_km")));
    ck_assert(json_is_real(json_object_get(c, "centre_lat")));
    ck_assert(json_is_real(json_object_get(c, "site_lat")));
    ck_assert_int_eq(jint(c, "landmarks_used"), 3);
  }
  /* The hostile strings come back exactly. */
  json_t *h = find(a, "serial", TU_SEED_HOSTILE_SERIAL);
  ck_assert_str_eq(jstr(h, "operator"), TU_SEED_HOSTILE_OPERATOR);
  ck_assert_str_eq(only(json_object_get(h, "allowed")), "FRA");
  ck_assert_str_eq(only(json_object_get(find(a, "serial", "S-OUTSIDE"), "allowed")), "DEU");
  ck_assert_str_eq(only(json_object_get(find(a, "serial", "S-SMUGGLED"), "open_alerts")),
                   "site_excluded");
  ck_assert_str_eq(only(json_object_get(find(a, "serial", "S-OUTSIDE"), "open_alerts")),
                   "outside_region");
  json_t *few = find(a, "serial", "S-FEW");
  ck_assert_str_eq(jstr(few, "consistency"), "INSUFFICIENT");
  ck_assert(json_is_null(json_object_get(few, "radius_km")));
  json_t *late = find(a, "serial", "S-LATE");
  ck_assert(json_is_null(json_object_get(late, "consistency")));
  ck_assert(json_is_null(json_object_get(late, "round_end")));
  ck_assert_int_eq(json_array_size(json_object_get(late, "allowed")), 0);
  ck_assert(json_is_false(json_object_get(find(a, "serial", "S-OFF"), "active")));
  json_decref(j);

  /* GeoJSON: a site per chip, a region per CONSISTENT chip. */
  j = GEO("/api/chips.geojson");
  ck_assert_str_eq(jstr(j, "type"), "FeatureCollection");
  json_t *features = json_object_get(j, "features");
  size_t sites = 0, regions = 0, i;
  json_t *f;
  json_array_foreach(features, i, f) {
    json_t *p = json_object_get(f, "properties");
    json_t *g = json_object_get(f, "geometry");
    if (strcmp(jstr(p, "kind"), "declared_site") == 0) {
      sites++;
      ck_assert_str_eq(jstr(g, "type"), "Point");
    } else {
      ck_assert_str_eq(jstr(p, "kind"), "chip_region");
      ck_assert_str_eq(jstr(p, "consistency"), "CONSISTENT");
      ck_assert_str_eq(jstr(p, "outline"), "circle");
      ck_assert_str_eq(jstr(g, "type"), "MultiPolygon");
      regions++;
    }
    if (strcmp(jstr(p, "serial"), TU_SEED_HOSTILE_SERIAL) == 0)
      ck_assert_str_eq(jstr(p, "operator"), TU_SEED_HOSTILE_OPERATOR);
  }
  ck_assert_int_eq(sites, TU_SEED_CHIPS);
  ck_assert_int_eq(regions, 5);
  json_decref(j);
}

static void check_landmarks(void) {
  json_t *j = API("/api/landmarks");
  json_t *a = json_object_get(j, "landmarks");
  ck_assert_int_eq(json_array_size(a), TU_SEED_LANDMARKS);
  ck_assert_str_eq(jstr(find(a, "name", "lm-par"), "state"), "healthy");
  ck_assert_str_eq(jstr(find(a, "name", "lm-quiet"), "state"), "stale");
  ck_assert_str_eq(jstr(find(a, "name", "lm-old"), "state"), "retired");
  ck_assert_int_eq(jint(find(a, "name", "lm-par"), "measurements_1h"), 3 * 6 + 3);
  ck_assert_int_eq(jint(j, "stale_after_s"), 300);
  json_decref(j);
  j = GEO("/api/landmarks.geojson");
  json_t *features = json_object_get(j, "features");
  ck_assert_int_eq(json_array_size(features), TU_SEED_LANDMARKS);
  json_t *f = json_array_get(features, 0);
  ck_assert_str_eq(jstr(json_object_get(f, "geometry"), "type"), "Point");
  ck_assert(json_is_string(json_object_get(json_object_get(f, "properties"), "state")));
  json_decref(j);
}

static void check_alerts(void) {
  json_t *j = API("/api/alerts");
  json_t *a = json_object_get(j, "alerts");
  ck_assert_int_eq(json_array_size(a), 2);
  json_t *s = find(a, "subject", "S-SMUGGLED");
  ck_assert_str_eq(jstr(s, "kind"), "site_excluded");
  ck_assert_str_eq(jstr(s, "state"), "open");
  ck_assert_str_eq(jstr(s, "subject_type"), "chip");
  ck_assert_str_eq(jstr(find(a, "subject", "S-OUTSIDE"), "kind"), "outside_region");
  json_decref(j);
  j = API("/api/alerts?kind=site_excluded");
  ck_assert_int_eq(json_array_size(json_object_get(j, "alerts")), 1);
  json_decref(j);
  j = API("/api/alerts?chip=S-OUTSIDE&state=all");
  ck_assert_int_eq(json_array_size(json_object_get(j, "alerts")), 1);
  json_decref(j);
  j = API("/api/alerts?since=1h&chip=S-PARIS");
  ck_assert_int_eq(json_array_size(json_object_get(j, "alerts")), 0);
  json_decref(j);
  static const struct {
    const char *path;
    int status;
  } bad[] = {{"/api/alerts?chip=S-NOPE", 404},
             {"/api/alerts?state=closed", 400},
             {"/api/alerts?kind=fire", 400},
             {"/api/alerts?since=soon", 400},
             {"/api/alerts?since=0", 400},
             {"/api/alerts?state=all&since=1h", 400}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    j = get_json(bad[i].path, bad[i].status, "application/json");
    ck_assert(json_is_string(json_object_get(j, "error")));
    json_decref(j);
  }
}

/* /api/chip/serial: the chip, its history, landmarks, chain and alerts. */
static json_t *chip_page(const char *serial) {
  return API(tu_fmt("/api/chip/%s", urlenc(serial)));
}

static void check_chip_pages(void) {
  json_t *j = chip_page("S-PARIS");
  json_t *c = json_object_get(j, "chip");
  ck_assert_str_eq(jstr(c, "serial"), "S-PARIS");
  ck_assert_str_eq(jstr(c, "region_verdict"), "INSIDE");
  ck_assert_str_eq(only(json_object_get(c, "allowed")), "FRA");
  json_t *hist = json_object_get(j, "history");
  ck_assert_int_eq(json_array_size(hist), TU_SEED_ROUNDS);
  /* Newest first: round_end strictly decreasing (ISO text sorts by time). */
  for (size_t i = 1; i < json_array_size(hist); i++)
    ck_assert_int_gt(strcmp(jstr(json_array_get(hist, i - 1), "round_end"),
                            jstr(json_array_get(hist, i), "round_end")),
                     0);
  ck_assert_str_eq(jstr(json_array_get(hist, 0), "round_end"), jstr(c, "round_end"));
  ck_assert_str_eq(jstr(json_array_get(hist, 0), "verifier"), TU_SEED_VERIFIER);
  ck_assert_str_eq(jstr(json_array_get(hist, 0), "site_verdict"), "SITE_CONSISTENT");
  json_t *lms = json_object_get(j, "landmarks");
  ck_assert_int_eq(json_array_size(lms), 3);
  json_t *par = find(lms, "landmark", "lm-par");
  ck_assert_int_eq(jint(par, "records"), 3);
  ck_assert_int_eq(jint(par, "min_rtt_ns"), 140000);
  ck_assert(json_is_true(json_object_get(par, "used")));
  json_t *chain = json_object_get(j, "chain");
  ck_assert_str_eq(jstr(chain, "verifier"), TU_SEED_VERIFIER);
  ck_assert_int_eq(jint(chain, "records"), TU_SEED_ROUNDS);
  ck_assert_int_eq(jint(chain, "verified"), TU_SEED_ROUNDS);
  ck_assert(json_is_null(json_object_get(chain, "first_bad")));
  ck_assert_int_eq(json_array_size(json_object_get(j, "alerts")), 0);
  json_decref(j);

  /* The smuggled chip: its verdict and its alert. */
  j = chip_page("S-SMUGGLED");
  ck_assert_str_eq(jstr(json_object_get(j, "chip"), "site_verdict"), "SITE_EXCLUDED");
  json_t *alerts = json_object_get(j, "alerts");
  ck_assert_int_eq(json_array_size(alerts), 1);
  ck_assert_str_eq(jstr(json_array_get(alerts, 0), "kind"), "site_excluded");
  ck_assert_int_eq(jint(json_object_get(j, "chain"), "verified"), TU_SEED_ROUNDS);
  json_decref(j);

  /* The hostile serial, percent-encoded in the path (its '/' too). */
  j = chip_page(TU_SEED_HOSTILE_SERIAL);
  ck_assert_str_eq(jstr(json_object_get(j, "chip"), "serial"), TU_SEED_HOSTILE_SERIAL);
  ck_assert_str_eq(jstr(json_object_get(j, "chip"), "operator"), TU_SEED_HOSTILE_OPERATOR);
  ck_assert_int_eq(jint(json_object_get(j, "chain"), "verified"), TU_SEED_ROUNDS);
  json_decref(j);

  /* Never attested: no history, no chain. */
  j = chip_page("S-LATE");
  ck_assert_int_eq(json_array_size(json_object_get(j, "history")), 0);
  ck_assert(json_is_null(json_object_get(json_object_get(j, "chain"), "verifier")));
  ck_assert_int_eq(jint(json_object_get(j, "chain"), "records"), 0);
  json_decref(j);

  j = get_json("/api/chip/S-NOPE", 404, "application/json");
  ck_assert(json_is_string(json_object_get(j, "error")));
  json_decref(j);
}

/* The owner corrupts the signature of S-PARIS's second record: the chain
 * is verified up to it and names it. */
static void check_chain_break(void) {
  sqlf("UPDATE attestations SET signature = set_byte(signature, 0, get_byte(signature, 0) # 1)"
       " WHERE id = (SELECT a.id FROM attestations a JOIN chips c ON c.id = a.chip_id"
       " WHERE c.serial = 'S-PARIS' ORDER BY a.round_end_ns OFFSET 1 LIMIT 1)");
  char *end = tu_own(tu_sql_value(
      W.conninfo, "SELECT to_char(a.round_end AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                  " FROM attestations a JOIN chips c ON c.id = a.chip_id WHERE c.serial ="
                  " 'S-PARIS' ORDER BY a.round_end_ns OFFSET 1 LIMIT 1"));
  json_t *j = chip_page("S-PARIS");
  json_t *chain = json_object_get(j, "chain");
  ck_assert_int_eq(jint(chain, "records"), TU_SEED_ROUNDS);
  ck_assert_int_eq(jint(chain, "verified"), 1);
  json_t *bad = json_object_get(chain, "first_bad");
  ck_assert_str_eq(jstr(bad, "problem"), "attestation signature");
  ck_assert_str_eq(jstr(bad, "round_end"), end);
  json_decref(j);
  /* The other chips' chains are untouched. */
  j = chip_page("S-EDGE");
  ck_assert_int_eq(jint(json_object_get(j, "chain"), "verified"), TU_SEED_ROUNDS);
  json_decref(j);
}

static void check_borders(void) {
  json_t *j = GEO("/api/borders.geojson");
  json_t *features = json_object_get(j, "features");
  ck_assert_int_eq(json_array_size(features), 4);
  /* The default credit for the borders fetch-borders.sh fetches. */
  ck_assert_str_eq(jstr(j, "attribution"), "Borders \xc2\xa9 OpenStreetMap contributors, ODbL");
  static const char *const codes[] = {"DEU", "EDGE", "FRA", "GBR"};
  for (size_t i = 0; i < 4; i++) {
    json_t *f = json_array_get(features, i);
    ck_assert_str_eq(jstr(json_object_get(f, "properties"), "code"), codes[i]);
    ck_assert_str_eq(jstr(json_object_get(f, "geometry"), "type"), "MultiPolygon");
  }
  json_decref(j);
}

START_TEST(test_endpoints) {
  world_init();
  answer a = request("GET", "/healthz");
  ck_assert_int_eq(a.status, 200);
  ck_assert_str_eq(a.body, "ok\n");
  assert_secure(&a, "/healthz");
  answer_free(&a);
  check_summary();
  check_chips();
  check_landmarks();
  check_alerts();
  check_chip_pages();
  check_borders();
  check_chain_break();
  /* Each request is logged at debug level, by path. */
  ck_assert_int_ge(tu_count_in_file(W.log, "msg=request method=\"GET\" path=\"/api/summary\""),
                   1);
  world_fini();
}
END_TEST

/* ---- files, methods, odd requests ------------------------------------------------ */

static void assert_file(const char *path, const char *type, const char *start) {
  answer a = request("GET", path);
  ck_assert_msg(a.status == 200, "GET %s: %d", path, a.status);
  assert_secure(&a, path);
  ck_assert_str_eq(header(&a, "Content-Type"), type);
  ck_assert_str_eq(header(&a, "Cache-Control"), "no-cache");
  ck_assert_msg(strncmp(a.body, start, strlen(start)) == 0, "GET %s: %s", path, a.body);
  answer_free(&a);
}

/* A request the server must refuse with `status`, nothing of the secret
 * in the answer, the security headers on it. */
static void assert_refused(const char *req, int status) {
  answer a = http_raw(req, strlen(req));
  ck_assert_msg(a.status == status, "%s: %d, want %d", req, a.status, status);
  ck_assert_msg(!strstr(a.body, SECRET), "%s: leaked the file", req);
  assert_secure(&a, req);
  answer_free(&a);
}

START_TEST(test_files_and_refusals) {
  world_init();
  assert_file("/", "text/html; charset=utf-8", "<!doctype html>");
  assert_file("/index.html", "text/html; charset=utf-8", "<!doctype html>");
  assert_file("/app.js", "text/javascript; charset=utf-8", "'use strict'");
  assert_file("/app.css", "text/css; charset=utf-8", "body{}");
  assert_file("/leaflet/leaflet.js", "text/javascript; charset=utf-8", "/* leaflet */");
  /* HEAD: the headers of GET, no body. */
  answer a = request("HEAD", "/api/chips");
  ck_assert_int_eq(a.status, 200);
  ck_assert_str_eq(header(&a, "Content-Type"), "application/json");
  ck_assert_int_eq(a.body_len, 0);
  assert_secure(&a, "HEAD /api/chips");
  answer_free(&a);

  /* Nothing outside the assets directory, by any spelling. */
  static const char *const outside[] = {
      "GET /../secret.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /%2e%2e/secret.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /%2E%2E%2Fsecret.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /leaflet/../../secret.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /leaflet/%2e%2e/%2e%2e/secret.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET //etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET http://x/../secret.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /leak.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /out/secret.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /.hidden.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /notes.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /leaflet HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /leaflet/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /index.html%00.png HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /api/chip/S-PARIS%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /nope.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /api/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /api/chip/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) assert_refused(outside[i], 404);
  a = request("GET", "/api/nope");
  ck_assert_str_eq(header(&a, "Content-Type"), "application/json");
  json_t *j = json_loads(a.body, 0, NULL);
  ck_assert(json_is_string(json_object_get(j, "error")));
  json_decref(j);
  answer_free(&a);

  /* GET and HEAD only. */
  static const char *const methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
    a = request(methods[i], "/api/chips");
    ck_assert_msg(a.status == 405, "%s: %d", methods[i], a.status);
    ck_assert_str_eq(header(&a, "Allow"), "GET, HEAD");
    assert_secure(&a, methods[i]);
    answer_free(&a);
  }
  assert_refused("POST /api/alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n"
                 "Connection: close\r\n\r\n{\"ack\":\"1\"}",
                 405);

  /* Odd requests: whatever the server answers, it stays up. */
  char *longpath = tu_own(malloc(20000));
  memset(longpath, 'a', 19999);
  longpath[0] = '/';
  longpath[19999] = '\0';
  const char *odd[] = {
      "/api/chip/%",
      "/api/chip/%zz",
      "/api/chip/%00",
      "/api/chip/%ff%fe",
      "/api/chip/a%2fb",
      "/api/alerts?chip=%00",
      "/api/alerts?chip=%ff&kind=%",
      "/api/alerts?since=99999999999999999999d",
      "/api/alerts?since=",
      "/api/alerts?state=&chip=",
      "/api/alerts?&&&=&=",
      "/api/chips?x=<script>",
      "/api/summary?%",
      "/%",
      "/%%%",
      "/\xff\xfe.html",
      "/a/b/c/d/e/f.js",
      "/api//chips",
      "/api",
      "/api/",
      "/healthz?x",
      longpath,
  };
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    a = request("GET", odd[i]);
    ck_assert_msg(a.status == 0 || (a.status >= 200 && a.status < 600), "%.60s: %d", odd[i],
                  a.status);
    answer_free(&a);
  }
  static const char *const raw[] = {
      "GET\r\n\r\n", "\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
      "\x16\x03\x01\x02\x01\xfc\x03\x03", "GET / HTTP/1.1\r\nHost: x\r\nX: \xff\r\n\r\n",
      "GET /api/chips HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "GET /api/chips HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
    a = http_raw(raw[i], strlen(raw[i]));
    answer_free(&a);
  }
  ck_assert_int_eq(kill(W.pid, 0), 0);
  a = request("GET", "/healthz");
  ck_assert_int_eq(a.status, 200);
  answer_free(&a);
  j = API("/api/summary");
  json_decref(j);
  world_fini();
}
END_TEST

/* ---- the command line ------------------------------------------------------------ */

START_TEST(test_command_line) {
  char *dir = tu_own(tu_tmpdir("cl-dash-cli"));
  char *log = tu_fmt("%s/cli.log", dir);
  ck_assert_int_eq(tu_cli(log, "dashboard", "--help", NULL), 0);
  ck_assert_int_eq(tu_cli(log, "dashboard", "--bogus", NULL), 2);
  ck_assert_int_eq(tu_cli(log, "dashboard", "--db", "dbname=x", "--listen", "nowhere", NULL), 2);
  ck_assert_int_eq(tu_cli(log, "dashboard", "--db", "dbname=x", "--refresh-s", "0", NULL), 2);
  ck_assert_int_eq(
      tu_cli(log, "dashboard", "--db", "dbname=x", "--borders-attribution", "a\nb", NULL), 2);
  ck_assert_int_eq(
      tu_cli(log, "dashboard", "--db", "dbname=x", "--borders-attribution", "\xff\xfe", NULL), 2);
  ck_assert_int_eq(tu_cli(log, "dashboard", "extra", NULL), 2);
  /* A database that refuses the login: a configuration error. */
  char *nobody = tu_own(tu_conninfo_as(tu_pg_conninfo(), "no_such_role_dash"));
  ck_assert_int_eq(tu_cli(log, "dashboard", "--db", nobody, "--assets", dir, NULL), 2);
  /* An assets directory that is not one. */
  char *db = tu_own(tu_db_create("cl_dash_cli"));
  ck_assert_int_eq(tu_cli(log, "dashboard", "--db", db, "--assets", tu_fmt("%s/none", dir),
                          "--listen", tu_fmt("127.0.0.1:%d", tu_free_port()), NULL),
                   2);
  ck_assert_int_ge(tu_count_in_file(log, "assets directory"), 1);
  /* A port in use: a runtime failure. */
  int port = 0, lfd = tu_listen_local(&port);
  ck_assert_int_eq(tu_cli(log, "dashboard", "--db", db, "--assets", dir, "--listen",
                          tu_fmt("127.0.0.1:%d", port), NULL),
                   1);
  close(lfd);
  tu_release();
}
END_TEST

int main(void) {
  Suite *s = suite_create("dashboard_api");
  TCase *tc = tcase_create("dashboard_api");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_endpoints);
  tcase_add_test(tc, test_files_and_refusals);
  tcase_add_test(tc, test_command_line);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
