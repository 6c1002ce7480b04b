/*
 * The database subcommands of the chiploc CLI that change it: `db migrate`,
 * `landmark add|bind|retire` and `chip enroll|deactivate|reactivate` (the
 * reads are in chiploc_status.c). Every argument is checked before a
 * connection is opened, so a typo is reported against the flag that
 * carried it and nothing is half-applied. A request the database's state
 * refuses (a duplicate, an unknown serial or name) exits 1 like a failure;
 * 2 is for usage. All SQL lives in the store module (lib/db/cl_store.c);
 * this file only parses, connects and prints.
 */
#include "chiploc_cli.h"
#include "chiploc_cmds.h"

#include "cl_err.h"
#include "cl_key.h"
#include "cl_store.h"
#include "cl_schema.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  OPT_DB = 256,
  OPT_NAME,
  OPT_PUBKEY,
  OPT_PUBKEY_FILE,
  OPT_LAT,
  OPT_LON,
  OPT_SITE,
  OPT_SERIAL,
  OPT_OPERATOR,
  OPT_ALLOWED,
  OPT_DB_ROLE,
  OPT_AT,
  OPT_REVOKE,
  OPT_REASON,
  OPT_HELP,
};

/* Most region codes one `chip enroll --allowed` may name. */
#define ALLOWED_MAX 64

/* Parses one coordinate; returns NULL or the reason it is refused. */
static const char *coord_error(const char *text, int is_lat, double *out) {
  double lim = is_lat ? 90.0 : 180.0;
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (end == text || *end != '\0' || errno == ERANGE) return "not a number";
  if (!isfinite(v) || v < -lim || v > lim)
    return is_lat ? "latitude must be in [-90, 90]" : "longitude must be in [-180, 180]";
  *out = v;
  return NULL;
}

/* --lat or --lon: 0, or 2 after a message naming the flag and value. */
static int parse_coord(const char *flag, const char *text, int is_lat, double *out) {
  const char *why = coord_error(text, is_lat, out);
  if (!why) return 0;
  chiploc_errorf("%s %s: %s", flag, text, why);
  return 2;
}

/* --site LAT,LON: 0, or 2 after a message naming the value. */
static int parse_site(const char *text, double *lat, double *lon) {
  const char *comma = strchr(text, ',');
  if (!comma || strchr(comma + 1, ',')) {
    chiploc_errorf("--site %s: expected LAT,LON", text);
    return 2;
  }
  char latbuf[64];
  size_t n = (size_t)(comma - text);
  if (n >= sizeof latbuf) {
    chiploc_errorf("--site %.40s...: latitude is too long", text);
    return 2;
  }
  memcpy(latbuf, text, n);
  latbuf[n] = '\0';
  const char *why = coord_error(latbuf, 1, lat);
  if (!why) why = coord_error(comma + 1, 0, lon);
  if (!why) return 0;
  chiploc_errorf("--site %s: %s", text, why);
  return 2;
}

/* Resolves --site / --lat / --lon into one position; 0 or 2. */
static int resolve_position(const char *site, const char *lat_s, const char *lon_s, double *lat,
                            double *lon, const char *cmd) {
  if (site && (lat_s || lon_s)) {
    chiploc_errorf("%s: give either --site or --lat and --lon, not both", cmd);
    return 2;
  }
  if (site) return parse_site(site, lat, lon);
  if (!lat_s || !lon_s) {
    chiploc_errorf("%s: the position is missing: give --site LAT,LON or --lat and --lon", cmd);
    return 2;
  }
  int rc = parse_coord("--lat", lat_s, 1, lat);
  if (rc == 0) rc = parse_coord("--lon", lon_s, 0, lon);
  return rc;
}

/* --pubkey HEX64: 0, or 2 after a message naming the value. */
static int parse_pubkey(const char *text, uint8_t pk[CL_PK_LEN]) {
  if (cl_pk_from_hex(text, pk) != CL_OK) {
    chiploc_errorf("--pubkey %.80s: expected 64 hex characters", text);
    return 2;
  }
  if (cl_pk_check(pk) != CL_OK) {
    chiploc_errorf("--pubkey %.80s: not a valid Ed25519 public key", text);
    return 2;
  }
  return 0;
}

/* --pubkey-file KEYFILE: the public half of a key file; 0 or 1. */
static int load_pubkey_file(const char *path, uint8_t pk[CL_PK_LEN]) {
  cl_key *key = NULL;
  char err[256] = "";
  int rc = cl_key_load(&key, path, err, sizeof err);
  if (rc != CL_OK) {
    chiploc_errorf("--pubkey-file %s: %s", path, err[0] ? err : cl_strerror(rc));
    return 1;
  }
  memcpy(pk, cl_key_public(key), CL_PK_LEN);
  cl_key_destroy(&key);
  return 0;
}

static int init_sodium(void) {
  if (sodium_init() < 0) {
    chiploc_errorf("libsodium failed to initialise");
    return 1;
  }
  return 0;
}

/* ---- db migrate ---------------------------------------------------------- */

static void usage_db(FILE *f) {
  fputs("usage: chiploc db migrate [--db CONNINFO]\n"
        "       chiploc db maintain [--db CONNINFO] [--retain-months N [--drop]]\n"
        "\n"
        "Applies the schema migrations this build carries that the database does\n"
        "not have yet, then creates measurement partitions for the coming months.\n"
        "Safe to run twice, and from two hosts at once.\n"
        "maintain: the daily partition maintenance (see chiploc db maintain --help).\n"
        "\n"
        "  --db CONNINFO  libpq connection string (default: $CHIPLOC_DB)\n",
        f);
}

static int db_migrate(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL;
  int c;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case 'h':
    case OPT_HELP: usage_db(stdout); return 0;
    default: return chiploc_bad_option("db migrate", c, argv);
    }
  }
  if (optind < argc) {
    chiploc_errorf("db migrate: unexpected argument %s", argv[optind]);
    return 2;
  }
  const char *conninfo = chiploc_conninfo(db, "db migrate");
  if (!conninfo) return 2;
  cl_store *s = chiploc_connect(conninfo);
  if (!s) return 1;
  char err[512] = "";
  int applied = 0;
  int rc = cl_store_migrate(s, &applied, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    chiploc_errorf("db migrate: %s", err);
    return 1;
  }
  const char *head =
      cl_schema_migration_count > 0 ? cl_schema_migrations[cl_schema_migration_count - 1].name : "";
  if (applied > 0)
    printf("applied %d migration(s); schema at %s\n", applied, head);
  else
    printf("schema is current (%s)\n", head);
  return 0;
}

int cmd_db(int argc, char **argv) {
  if (argc < 2) {
    usage_db(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage_db(stdout);
    return 0;
  }
  if (strcmp(argv[1], "migrate") == 0) return db_migrate(argc - 1, argv + 1);
  if (strcmp(argv[1], "maintain") == 0) return cmd_db_maintain(argc - 1, argv + 1);
  chiploc_errorf("db: unknown subcommand %s (see chiploc db --help)", argv[1]);
  return 2;
}

/* ---- landmark add -------------------------------------------------------- */

static void usage_landmark(FILE *f) {
  fputs("usage: chiploc landmark add [--db CONNINFO] --name NAME --pubkey HEX64\n"
        "                            (--lat LAT --lon LON | --site LAT,LON)\n"
        "       chiploc landmark bind [--db CONNINFO] --name NAME --db-role ROLE\n"
        "       chiploc landmark retire [--db CONNINFO] --name NAME [--at TIME] [--revoke]\n"
        "       chiploc landmark list [--db CONNINFO] [--stale DURATION] [--json]\n"
        "\n"
        "Registers a landmark node: its name, its Ed25519 public key (the\n"
        "`public` line of its key file) and its position in decimal degrees.\n"
        "\n"
        "  --db CONNINFO   libpq connection string (default: $CHIPLOC_DB)\n"
        "  --name NAME     unique name, e.g. a city\n"
        "  --pubkey HEX64  the landmark's public key, 64 hex characters\n"
        "  --lat LAT       latitude in [-90, 90]\n"
        "  --lon LON       longitude in [-180, 180]\n"
        "  --site LAT,LON  both at once\n"
        "\n"
        "bind: the database login ROLE (a member of chiploc_landmark) may from then\n"
        "on write measurements and links of this landmark (and of any other it is\n"
        "bound to: the old and new entries of a key rotation), of no other.\n"
        "retire: from TIME on (a PostgreSQL timestamp, default now) the verifier\n"
        "believes none of the landmark's rows measured later: after a key rotation,\n"
        "retire the old entry at the switch. --revoke is for a key that may be\n"
        "stolen: rows the database received after TIME are refused too, whatever\n"
        "time they claim.\n",
        f);
}

static int landmark_add(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"name", required_argument, NULL, OPT_NAME},
      {"pubkey", required_argument, NULL, OPT_PUBKEY},
      {"lat", required_argument, NULL, OPT_LAT},
      {"lon", required_argument, NULL, OPT_LON},
      {"site", required_argument, NULL, OPT_SITE},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL, *name = NULL, *pubkey = NULL, *lat_s = NULL, *lon_s = NULL, *site = NULL;
  int c;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_NAME: name = optarg; break;
    case OPT_PUBKEY: pubkey = optarg; break;
    case OPT_LAT: lat_s = optarg; break;
    case OPT_LON: lon_s = optarg; break;
    case OPT_SITE: site = optarg; break;
    case 'h':
    case OPT_HELP: usage_landmark(stdout); return 0;
    default: return chiploc_bad_option("landmark add", c, argv);
    }
  }
  if (optind < argc) {
    chiploc_errorf("landmark add: unexpected argument %s", argv[optind]);
    return 2;
  }
  if (init_sodium()) return 1;
  if (!name || !name[0]) {
    chiploc_errorf("landmark add: --name is required");
    return 2;
  }
  if (!pubkey) {
    chiploc_errorf("landmark add: --pubkey is required");
    return 2;
  }
  uint8_t pk[CL_PK_LEN];
  double lat = 0, lon = 0;
  if (parse_pubkey(pubkey, pk)) return 2;
  if (resolve_position(site, lat_s, lon_s, &lat, &lon, "landmark add")) return 2;
  const char *conninfo = chiploc_conninfo(db, "landmark add");
  if (!conninfo) return 2;

  cl_store *s = chiploc_connect(conninfo);
  if (!s) return 1;
  char err[512] = "";
  int64_t id = 0;
  int rc = cl_store_landmark_add(s, name, pk, lat, lon, &id, err, sizeof err);
  cl_store_destroy(&s);
  if (rc == CL_EEXIST) {
    /* The message names the landmark or the key's holder itself. */
    chiploc_errorf("%s", err);
    return 1;
  }
  if (rc != CL_OK) {
    chiploc_errorf("landmark %s: %s", name, err);
    return 1;
  }
  printf("landmark %s id=%" PRId64 "\n", name, id);
  return 0;
}

/* landmark bind and landmark retire: one landmark by --name, one change. */
static int landmark_change(int argc, char **argv, int retire) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"name", required_argument, NULL, OPT_NAME},
      {"db-role", required_argument, NULL, OPT_DB_ROLE},
      {"at", required_argument, NULL, OPT_AT},
      {"revoke", no_argument, NULL, OPT_REVOKE},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *what = retire ? "landmark retire" : "landmark bind";
  const char *db = NULL, *name = NULL, *role = NULL, *at = NULL;
  int revoke = 0, c;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_NAME: name = optarg; break;
    case OPT_DB_ROLE: role = optarg; break;
    case OPT_AT: at = optarg; break;
    case OPT_REVOKE: revoke = 1; break;
    case 'h':
    case OPT_HELP: usage_landmark(stdout); return 0;
    default: return chiploc_bad_option(what, c, argv);
    }
  }
  if (optind < argc) {
    chiploc_errorf("%s: unexpected argument %s", what, argv[optind]);
    return 2;
  }
  if (!name || !name[0]) {
    chiploc_errorf("%s: --name is required", what);
    return 2;
  }
  if (!retire && (!role || !role[0])) {
    chiploc_errorf("landmark bind: --db-role is required");
    return 2;
  }
  if (retire ? role != NULL : (at != NULL || revoke)) {
    chiploc_errorf("%s: %s does not apply", what, retire ? "--db-role" : "--at/--revoke");
    return 2;
  }
  const char *conninfo = chiploc_conninfo(db, what);
  if (!conninfo) return 2;
  cl_store *s = chiploc_connect(conninfo);
  if (!s) return 1;
  char err[512] = "";
  int rc = retire ? cl_store_landmark_retire(s, name, at, revoke, err, sizeof err)
                  : cl_store_landmark_bind(s, name, role, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    chiploc_errorf("%s %s: %s", what, name, err);
    return rc == CL_EINVAL ? 2 : 1;
  }
  if (retire)
    printf("landmark %s %s from %s\n", name, revoke ? "revoked" : "retired", at ? at : "now");
  else
    printf("landmark %s bound to role %s\n", name, role);
  return 0;
}

int cmd_landmark(int argc, char **argv) {
  if (argc < 2) {
    usage_landmark(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage_landmark(stdout);
    return 0;
  }
  if (strcmp(argv[1], "add") == 0) return landmark_add(argc - 1, argv + 1);
  if (strcmp(argv[1], "bind") == 0) return landmark_change(argc - 1, argv + 1, 0);
  if (strcmp(argv[1], "retire") == 0) return landmark_change(argc - 1, argv + 1, 1);
  if (strcmp(argv[1], "list") == 0) return cmd_landmark_list(argc - 1, argv + 1);
  chiploc_errorf("landmark: unknown subcommand %s (see chiploc landmark --help)", argv[1]);
  return 2;
}

/* ---- chip enroll --------------------------------------------------------- */

static void usage_chip(FILE *f) {
  fputs("usage: chiploc chip enroll [--db CONNINFO] (--pubkey HEX64 | --pubkey-file KEYFILE)\n"
        "                           --serial SERIAL --operator OPERATOR\n"
        "                           (--site LAT,LON | --lat LAT --lon LON)\n"
        "                           [--allowed CODE[,CODE...]]\n"
        "\n"
        "Enrols a chip: its Ed25519 public key, serial number, operator and the\n"
        "site the operator declares, in decimal degrees, and optionally the\n"
        "regions it may run in (imported before with chiploc region import).\n"
        "All or nothing: an unknown region code enrols nothing.\n"
        "\n"
        "  --db CONNINFO         libpq connection string (default: $CHIPLOC_DB)\n"
        "  --pubkey HEX64        the chip's public key, 64 hex characters\n"
        "  --pubkey-file KEYFILE take the public key from a chiploc key file\n"
        "  --serial SERIAL       unique serial number\n"
        "  --operator OPERATOR   operator of the datacenter\n"
        "  --site LAT,LON        declared site\n"
        "  --lat LAT, --lon LON  the same, separately\n"
        "  --allowed CODES       comma-separated region codes, e.g. FRA,DEU\n"
        "\n"
        "       chiploc chip deactivate [--db CONNINFO] SERIAL [--reason TEXT]\n"
        "       chiploc chip reactivate [--db CONNINFO] SERIAL\n"
        "\n"
        "deactivate: the chip is no longer measured or attested: landmarks drop it at\n"
        "their next refresh of the enrolled set and refuse its agent's offers, the\n"
        "verifier attests active chips only, and the chip's open alerts are cleared.\n"
        "Its rows stay. The time and TEXT are kept until reactivate undoes it.\n"
        "\n"
        "A serial, name or key the database holds already is refused, naming its\n"
        "holder (exit 1): one key is one chip, landmark or verifier.\n"
        "\n"
        "       chiploc chip list [--db CONNINFO] [--operator O] [--verdict V] [--json]\n"
        "       chiploc chip show SERIAL [--db CONNINFO] [--window DURATION] [--json]\n"
        "\n"
        "Read-only (a chiploc_dashboard login will do): see chiploc chip list --help.\n",
        f);
}

/* Splits --allowed CODE[,CODE...] into codes[] (pointers into buf, a copy
 * of text); 0, or 2 after a message naming the value. */
static int parse_allowed(const char *text, char *buf, size_t buflen, char *codes[ALLOWED_MAX],
                         size_t *n) {
  *n = 0;
  if (strlen(text) >= buflen) {
    chiploc_errorf("--allowed %.40s...: too long", text);
    return 2;
  }
  snprintf(buf, buflen, "%s", text);
  char *p = buf;
  for (;;) {
    char *comma = strchr(p, ',');
    if (comma) *comma = '\0';
    if (p[0] == '\0') {
      chiploc_errorf("--allowed %s: empty region code", text);
      return 2;
    }
    if (*n == ALLOWED_MAX) {
      chiploc_errorf("--allowed %.40s...: more than %d region codes", text, ALLOWED_MAX);
      return 2;
    }
    codes[(*n)++] = p;
    if (!comma) return 0;
    p = comma + 1;
  }
}

/* Enrols the chip and allows its regions in one transaction; 0 or 1. */
static int enroll_with_regions(cl_store *s, const uint8_t pk[CL_PK_LEN], const char *serial,
                               const char *op, double lat, double lon, char *const *codes,
                               size_t ncodes, int64_t *id, char *err, size_t errlen) {
  int rc = cl_store_begin(s, err, errlen);
  if (rc == CL_OK) rc = cl_store_chip_enroll(s, pk, serial, op, lat, lon, id, err, errlen);
  for (size_t i = 0; i < ncodes && rc == CL_OK; i++)
    rc = cl_store_chip_allow(s, *id, codes[i], err, errlen);
  if (rc == CL_OK) rc = cl_store_commit(s, err, errlen);
  if (rc != CL_OK) cl_store_rollback(s);
  return rc;
}

static int chip_enroll(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"pubkey", required_argument, NULL, OPT_PUBKEY},
      {"pubkey-file", required_argument, NULL, OPT_PUBKEY_FILE},
      {"serial", required_argument, NULL, OPT_SERIAL},
      {"operator", required_argument, NULL, OPT_OPERATOR},
      {"site", required_argument, NULL, OPT_SITE},
      {"lat", required_argument, NULL, OPT_LAT},
      {"lon", required_argument, NULL, OPT_LON},
      {"allowed", required_argument, NULL, OPT_ALLOWED},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL, *pubkey = NULL, *keyfile = NULL, *serial = NULL, *op = NULL;
  const char *site = NULL, *lat_s = NULL, *lon_s = NULL, *allowed = NULL;
  int c;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_PUBKEY: pubkey = optarg; break;
    case OPT_PUBKEY_FILE: keyfile = optarg; break;
    case OPT_SERIAL: serial = optarg; break;
    case OPT_OPERATOR: op = optarg; break;
    case OPT_SITE: site = optarg; break;
    case OPT_LAT: lat_s = optarg; break;
    case OPT_LON: lon_s = optarg; break;
    case OPT_ALLOWED: allowed = optarg; break;
    case 'h':
    case OPT_HELP: usage_chip(stdout); return 0;
    default: return chiploc_bad_option("chip enroll", c, argv);
    }
  }
  if (optind < argc) {
    chiploc_errorf("chip enroll: unexpected argument %s", argv[optind]);
    return 2;
  }
  if (init_sodium()) return 1;
  if ((pubkey != NULL) == (keyfile != NULL)) {
    chiploc_errorf("chip enroll: give exactly one of --pubkey and --pubkey-file");
    return 2;
  }
  if (!serial || !serial[0]) {
    chiploc_errorf("chip enroll: --serial is required");
    return 2;
  }
  if (!op || !op[0]) {
    chiploc_errorf("chip enroll: --operator is required");
    return 2;
  }
  uint8_t pk[CL_PK_LEN];
  double lat = 0, lon = 0;
  if (pubkey && parse_pubkey(pubkey, pk)) return 2;
  if (resolve_position(site, lat_s, lon_s, &lat, &lon, "chip enroll")) return 2;
  char codebuf[1024];
  char *codes[ALLOWED_MAX];
  size_t ncodes = 0;
  if (allowed && parse_allowed(allowed, codebuf, sizeof codebuf, codes, &ncodes)) return 2;
  const char *conninfo = chiploc_conninfo(db, "chip enroll");
  if (!conninfo) return 2;
  if (keyfile && load_pubkey_file(keyfile, pk)) return 1;

  cl_store *s = chiploc_connect(conninfo);
  if (!s) return 1;
  char err[512] = "";
  int64_t id = 0;
  int rc = enroll_with_regions(s, pk, serial, op, lat, lon, codes, ncodes, &id, err, sizeof err);
  cl_store_destroy(&s);
  if (rc == CL_EEXIST) {
    /* The message names the chip or the key's holder itself. */
    chiploc_errorf("%s", err);
    return 1;
  }
  if (rc != CL_OK) {
    chiploc_errorf("chip %s: %s", serial, err);
    return 1;
  }
  printf("chip %s id=%" PRId64 "\n", serial, id);
  if (ncodes > 0) printf("chip %s allowed in %s\n", serial, allowed);
  return 0;
}

/* ---- chip deactivate / reactivate ---------------------------------------- */

static int chip_set_active(int argc, char **argv, int active) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"reason", required_argument, NULL, OPT_REASON},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *what = active ? "chip reactivate" : "chip deactivate";
  const char *db = NULL, *reason = NULL;
  int c;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_REASON: reason = optarg; break;
    case 'h':
    case OPT_HELP: usage_chip(stdout); return 0;
    default: return chiploc_bad_option(what, c, argv);
    }
  }
  if (optind >= argc || !argv[optind][0]) {
    chiploc_errorf("%s: the chip's SERIAL is missing", what);
    return 2;
  }
  if (optind + 1 < argc) {
    chiploc_errorf("%s: unexpected argument %s", what, argv[optind + 1]);
    return 2;
  }
  if (active && reason) {
    chiploc_errorf("chip reactivate: --reason does not apply");
    return 2;
  }
  const char *serial = argv[optind];
  const char *conninfo = chiploc_conninfo(db, what);
  if (!conninfo) return 2;
  cl_store *s = chiploc_connect(conninfo);
  if (!s) return 1;
  char err[512] = "";
  int changed = 0;
  int64_t cleared = 0;
  int rc = cl_store_chip_set_active(s, serial, active, reason, &changed, &cleared, err, sizeof err);
  cl_store_destroy(&s);
  if (rc != CL_OK) {
    chiploc_errorf("%s %s: %s", what, serial, err);
    return 1;
  }
  if (!changed)
    printf("chip %s is %s already\n", serial, active ? "active" : "deactivated");
  else if (active)
    printf("chip %s reactivated\n", serial);
  else
    printf("chip %s deactivated; %" PRId64 " open alert(s) cleared\n", serial, cleared);
  return 0;
}

int cmd_chip(int argc, char **argv) {
  if (argc < 2) {
    usage_chip(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage_chip(stdout);
    return 0;
  }
  if (strcmp(argv[1], "enroll") == 0) return chip_enroll(argc - 1, argv + 1);
  if (strcmp(argv[1], "deactivate") == 0) return chip_set_active(argc - 1, argv + 1, 0);
  if (strcmp(argv[1], "reactivate") == 0) return chip_set_active(argc - 1, argv + 1, 1);
  if (strcmp(argv[1], "list") == 0) return cmd_chip_list(argc - 1, argv + 1);
  if (strcmp(argv[1], "show") == 0) return cmd_chip_show(argc - 1, argv + 1);
  chiploc_errorf("chip: unknown subcommand %s (see chiploc chip --help)", argv[1]);
  return 2;
}
