/*
 * chiploc attestation export | check: one chip's attestation as a signed
 * document a relying party verifies offline (docs/ATTESTATION.md,
 * "Attestation results for relying parties (JWS)").
 *
 * export trusts nothing the database says: it walks the chip's chain by the
 * verifier of the key file from its first record to the one asked for
 * (lib/db/cl_audit.c, cl_audit_chain_walk: each record rebuilt from its row,
 * its signature verified under the verifier's key, its stored hash and its
 * prev_hash checked), refuses the export if any record fails, and only then
 * signs the claims of that verified record (lib/io/cl_eat.c) with the
 * verifier's key. check needs no database: the token's signature, its
 * embedded layout's own signature, and claims that are exactly the
 * layout's. Exit codes: 0 exported / valid, 1 refused / invalid (or a
 * database or file failure), 2 usage.
 */
#include "chiploc_cli.h"
#include "chiploc_cmds.h"

#include "cl_attest.h"
#include "cl_audit.h"
#include "cl_eat.h"
#include "cl_err.h"
#include "cl_jws.h"
#include "cl_key.h"
#include "cl_store.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OPT_DB = 256, OPT_KEY, OPT_ROUND_END, OPT_LATEST, OPT_OUT, OPT_VERIFIER_KEY, OPT_JSON,
       OPT_HELP };

/* The latest round_end accepted for --round-end: its nanoseconds fit int64. */
#define ROUND_END_MAX_S (INT64_MAX / 1000000000)

static void usage_attestation(FILE *f) {
  fputs("usage: chiploc attestation export SERIAL --key VERIFIER_KEYFILE [--db CONNINFO]\n"
        "                                  [--round-end UNIX_S | --latest] [--out FILE|-]\n"
        "       chiploc attestation check FILE|- --verifier-key HEX [--json]\n"
        "\n"
        "export writes one attestation of the chip as a JWS signed with the verifier's\n"
        "key (EdDSA, typ eat+jwt): the latest one (--latest, the default) or the one\n"
        "of round --round-end. First it walks the chip's chain by that verifier from\n"
        "its first record to this one, rebuilding each record from its row and\n"
        "checking its signature, its hash and its link to the record before it; any\n"
        "failure refuses the export. --out defaults to - (stdout); --db to $CHIPLOC_DB.\n"
        "\n"
        "check verifies such a document offline: the JWS signature under the verifier\n"
        "key, the embedded attestation's own signature under the same key, and that\n"
        "every claim is what that attestation says. It prints the verdicts (--json:\n"
        "one JSON object).\n"
        "\n"
        "exit status: 0 exported / valid, 1 refused / invalid, or a database or file\n"
        "error, 2 usage error\n",
        f);
}

/* ---- export ---------------------------------------------------------------------- */

/* What the walk kept: the last record that checked out (with copies of what
 * the callback's record only pointed to), or the first that did not. */
typedef struct {
  int n_ok;
  cl_attestation at;
  uint32_t position;
  char *verifier_name;
  char **allowed;
  size_t n_allowed;
  uint8_t (*excluded)[CL_PK_LEN];
  size_t n_excluded;
  int bad;
  int64_t bad_id;
  uint32_t bad_position;
  cl_audit_problem bad_problem;
} walk_result;

static void result_clear_lists(walk_result *w) {
  for (size_t i = 0; i < w->n_allowed; i++) free(w->allowed[i]);
  free(w->allowed);
  free(w->excluded);
  w->allowed = NULL;
  w->excluded = NULL;
  w->n_allowed = w->n_excluded = 0;
}

static int keep_record(void *arg, const cl_audit_record *rec) {
  walk_result *w = arg;
  if (!rec->ok) {
    w->bad = 1;
    w->bad_id = rec->id;
    w->bad_position = rec->position;
    w->bad_problem = rec->problem;
    return CL_OK;
  }
  result_clear_lists(w);
  w->n_ok++;
  w->at = rec->at;
  w->position = rec->position;
  w->allowed = calloc(rec->n_allowed ? rec->n_allowed : 1, sizeof *w->allowed);
  w->excluded = malloc((rec->n_excluded ? rec->n_excluded : 1) * sizeof *w->excluded);
  if (!w->allowed || !w->excluded) return CL_ENOMEM;
  for (size_t i = 0; i < rec->n_allowed; i++) {
    if (!(w->allowed[i] = strdup(rec->allowed[i]))) return CL_ENOMEM;
    w->n_allowed = i + 1;
  }
  if (rec->n_excluded) memcpy(w->excluded, rec->excluded, rec->n_excluded * sizeof *w->excluded);
  w->n_excluded = rec->n_excluded;
  return CL_OK;
}

/* Unix nanoseconds as 2026-01-01T00:00:00Z (to the second, cut). */
static void iso_ns(uint64_t ns, char *out, size_t len) {
  time_t t = (time_t)(ns / 1000000000u);
  struct tm tm;
  if (!gmtime_r(&t, &tm) || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, len, "%" PRIu64 "ns", ns);
}

/* Writes the token and a newline to path ("-": stdout), through a
 * temporary file renamed into place. */
static int write_token(const char *token, const char *path) {
  if (strcmp(path, "-") == 0)
    return printf("%s\n", token) < 0 || fflush(stdout) != 0 ? CL_EIO : CL_OK;
  size_t n = strlen(path) + 8;
  char *tmp = malloc(n);
  if (!tmp) return CL_ENOMEM;
  snprintf(tmp, n, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  int rc = f ? CL_OK : CL_EIO;
  if (f && (fprintf(f, "%s\n", token) < 0 || fclose(f) != 0)) rc = CL_EIO;
  if (rc == CL_OK && rename(tmp, path) != 0) rc = CL_EIO;
  if (rc != CL_OK) {
    int e = errno;
    remove(tmp);
    errno = e;
  }
  free(tmp);
  return rc;
}

static int attestation_export(int argc, char **argv) {
  static const struct option opts[] = {
      {"db", required_argument, NULL, OPT_DB},
      {"key", required_argument, NULL, OPT_KEY},
      {"round-end", required_argument, NULL, OPT_ROUND_END},
      {"latest", no_argument, NULL, OPT_LATEST},
      {"out", required_argument, NULL, OPT_OUT},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *db = NULL, *keyfile = NULL, *round_end = NULL, *out = "-";
  int latest = 0, c;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DB: db = optarg; break;
    case OPT_KEY: keyfile = optarg; break;
    case OPT_ROUND_END: round_end = optarg; break;
    case OPT_LATEST: latest = 1; break;
    case OPT_OUT: out = optarg; break;
    case 'h':
    case OPT_HELP: usage_attestation(stdout); return 0;
    default: return chiploc_bad_option("attestation export", c, argv);
    }
  }
  if (optind + 1 != argc) {
    chiploc_errorf(optind < argc ? "attestation export: one SERIAL, not %s and more"
                                 : "attestation export: which chip? give its SERIAL%s",
                   optind < argc ? argv[optind] : "");
    return 2;
  }
  const char *serial = argv[optind];
  if (!keyfile) {
    chiploc_errorf("attestation export: --key VERIFIER_KEYFILE is required");
    return 2;
  }
  if (round_end && latest) {
    chiploc_errorf("attestation export: give --round-end or --latest, not both");
    return 2;
  }
  int64_t until_ns = INT64_MAX, round_end_s = -1;
  if (round_end) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(round_end, &end, 10);
    if (errno || end == round_end || *end || v < 0 || v > ROUND_END_MAX_S) {
      chiploc_errorf("attestation export: --round-end %s: expected unix seconds, 0 to %lld",
                     round_end, (long long)ROUND_END_MAX_S);
      return 2;
    }
    round_end_s = v;
    until_ns = v * 1000000000LL;
  }
  if (!out[0]) {
    chiploc_errorf("attestation export: --out needs a file name or -");
    return 2;
  }
  char err[512] = "";
  cl_key *key = NULL;
  if (cl_key_load(&key, keyfile, err, sizeof err) != CL_OK) {
    chiploc_errorf("key %s: %s", keyfile, err);
    return 2;
  }
  db = chiploc_conninfo(db, "attestation export");
  if (!db) {
    cl_key_destroy(&key);
    return 2;
  }
  cl_store *s = chiploc_connect(db);
  if (!s) {
    cl_key_destroy(&key);
    return 1;
  }
  char pk_hex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(key), pk_hex);
  walk_result w;
  memset(&w, 0, sizeof w);
  int rc = cl_audit_chain_walk(s, serial, cl_key_public(key), until_ns, keep_record, &w,
                               &w.verifier_name, err, sizeof err);
  cl_store_destroy(&s);
  int status = 1;
  char when[40];
  if (rc != CL_OK) {
    chiploc_errorf("attestation export: %s", err[0] ? err : cl_strerror(rc));
  } else if (w.bad) {
    chiploc_errorf("attestation export: chip %s: its attestation id=%" PRId64
                   " (record %u of the chain of verifier %s) fails: %s; nothing exported "
                   "(chiploc audit says more)",
                   serial, w.bad_id, w.bad_position, w.verifier_name,
                   cl_audit_problem_name(w.bad_problem));
  } else if (w.n_ok == 0) {
    chiploc_errorf("attestation export: chip %s has no attestation by verifier %s (%s)%s", serial,
                   w.verifier_name, pk_hex, round_end ? " at or before --round-end" : "");
  } else if (round_end && w.at.round_end_ns != (uint64_t)until_ns) {
    iso_ns(w.at.round_end_ns, when, sizeof when);
    chiploc_errorf("attestation export: chip %s has no attestation by verifier %s at round_end "
                   "%" PRId64 " (the latest before it: %s, round_end %" PRIu64 ")",
                   serial, w.verifier_name, round_end_s, when, w.at.round_end_ns / 1000000000u);
  } else if (memcmp(w.at.verifier, cl_key_public(key), CL_PK_LEN) != 0) {
    /* The walk reads the chain of this key only: a record rebuilt under
     * another key cannot have verified. */
    chiploc_errorf("attestation export: the record is not by the key of %s", keyfile);
  } else {
    cl_eat_context x = {.issuer = w.verifier_name,
                        .serial = serial,
                        .position = w.position,
                        .allowed = (const char *const *)w.allowed,
                        .n_allowed = w.n_allowed,
                        .excluded = (const uint8_t(*)[CL_PK_LEN])w.excluded,
                        .n_excluded = w.n_excluded};
    char *token = NULL;
    rc = cl_eat_sign(&w.at, &x, key, &token, err, sizeof err);
    if (rc != CL_OK) {
      chiploc_errorf("attestation export: chip %s: %s", serial, err);
    } else if (write_token(token, out) != CL_OK) {
      chiploc_errorf("attestation export: cannot write %s: %s", out, strerror(errno));
    } else {
      iso_ns(w.at.round_end_ns, when, sizeof when);
      /* With --out - the document is stdout: the summary goes to stderr. */
      fprintf(strcmp(out, "-") == 0 ? stderr : stdout,
              "attestation export: chip %s, round_end %s, record %u of verifier %s's chain "
              "(all %u verified), written to %s\n",
              serial, when, w.position, w.verifier_name, w.position,
              strcmp(out, "-") == 0 ? "stdout" : out);
      status = 0;
    }
    free(token);
  }
  result_clear_lists(&w);
  free(w.verifier_name);
  cl_key_destroy(&key);
  if (status == 0 && fflush(stdout) != 0) status = 1;
  return status;
}

/* ---- check ------------------------------------------------------------------------ */

/* Reads the whole token from path ("-": stdin), one trailing newline (or
 * CRLF) dropped; NULL with err set when it cannot be read or is too long. */
static char *read_token(const char *path, size_t *len, char *err, size_t errlen) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) {
    cl_err_set(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = CL_JWS_MAX_LEN + 3;
  char *buf = malloc(cap);
  size_t n = buf ? fread(buf, 1, cap, f) : 0;
  int failed = !buf || ferror(f);
  if (f != stdin) fclose(f);
  if (failed) {
    cl_err_set(err, errlen, "%s: cannot read it", path);
    free(buf);
    return NULL;
  }
  if (n > 0 && buf[n - 1] == '\n') n--;
  if (n > 0 && buf[n - 1] == '\r') n--;
  if (n > CL_JWS_MAX_LEN) {
    cl_err_set(err, errlen, "%s: longer than %d bytes", path, CL_JWS_MAX_LEN);
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

/* A string of the token, for a terminal: control characters as '?'. */
static void print_text(const char *label, const char *s) {
  printf("%-16s", label);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
  putchar('\n');
}

static const char *cstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static int attestation_check(int argc, char **argv) {
  static const struct option opts[] = {
      {"verifier-key", required_argument, NULL, OPT_VERIFIER_KEY},
      {"json", no_argument, NULL, OPT_JSON},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0},
  };
  const char *hex = NULL;
  int json = 0, c;
  chiploc_getopt_reset();
  while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
    switch (c) {
    case OPT_VERIFIER_KEY: hex = optarg; break;
    case OPT_JSON: json = 1; break;
    case 'h':
    case OPT_HELP: usage_attestation(stdout); return 0;
    default: return chiploc_bad_option("attestation check", c, argv);
    }
  }
  if (optind + 1 != argc) {
    chiploc_errorf("attestation check: give one FILE (or - for stdin)");
    return 2;
  }
  uint8_t pk[CL_PK_LEN];
  if (!hex) {
    chiploc_errorf("attestation check: --verifier-key HEX is required");
    return 2;
  }
  if (cl_pk_from_hex(hex, pk) != CL_OK || cl_pk_check(pk) != CL_OK) {
    chiploc_errorf("attestation check: --verifier-key %.80s: not an Ed25519 public key in hex",
                   hex);
    return 2;
  }
  char err[512] = "";
  size_t len = 0;
  char *token = read_token(argv[optind], &len, err, sizeof err);
  cl_attestation at;
  json_t *claims = NULL;
  int rc = token ? cl_eat_verify(token, len, pk, &at, &claims, err, sizeof err) : CL_EIO;
  free(token);
  if (rc != CL_OK) {
    if (json) {
      json_t *o = json_pack("{s:b, s:s}", "valid", 0, "error", err);
      if (o) json_dumpf(o, stdout, JSON_COMPACT);
      putchar('\n');
      json_decref(o);
    }
    chiploc_errorf("attestation check: %s: %s", rc == CL_EIO ? "cannot read" : "invalid", err);
    return 1;
  }
  json_t *cc = json_object_get(claims, "chiploc");
  json_t *chain = json_object_get(cc, "chain");
  char chip[CL_PK_HEX_LEN + 1], verifier[CL_PK_HEX_LEN + 1], when[40];
  cl_pk_to_hex(at.chip, chip);
  cl_pk_to_hex(at.verifier, verifier);
  iso_ns(at.round_end_ns, when, sizeof when);
  int status = 0;
  if (json) {
    json_t *o = json_pack(
        "{s:b, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s}",
        "valid", 1, "issuer", cstr(claims, "iss"), "verifier", verifier, "serial",
        cstr(cc, "serial"), "chip", chip, "round_end", when, "round_end_ns",
        (json_int_t)at.round_end_ns, "window_ns", (json_int_t)at.window_ns, "consistency",
        cstr(cc, "consistency"), "site_verdict", cstr(cc, "site_verdict"), "region_verdict",
        cstr(cc, "region_verdict"), "radius_m", (json_int_t)at.radius_m, "centre_lat_e7",
        (json_int_t)at.centre_lat_e7, "centre_lon_e7", (json_int_t)at.centre_lon_e7,
        "position", json_integer_value(json_object_get(chain, "position")), "hash",
        cstr(chain, "hash"));
    if (!o || json_dumpf(o, stdout, JSON_COMPACT) != 0) status = 1;
    putchar('\n');
    json_decref(o);
  } else {
    print_text("valid:", "signed by the verifier key; the claims are the attestation's");
    print_text("issuer", cstr(claims, "iss"));
    print_text("verifier", verifier);
    print_text("serial", cstr(cc, "serial"));
    print_text("chip", chip);
    printf("%-16s%s (window %" PRIu64 " s)\n", "round_end", when, at.window_ns / 1000000000u);
    print_text("consistency", cstr(cc, "consistency"));
    print_text("site_verdict", cstr(cc, "site_verdict"));
    print_text("region_verdict", cstr(cc, "region_verdict"));
    if (at.consistency == CL_ATT_CONSISTENT)
      printf("%-16s%.7f, %.7f within %" PRIu64 " m\n", "centre", at.centre_lat_e7 / 1e7,
             at.centre_lon_e7 / 1e7, at.radius_m);
    printf("%-16s%" JSON_INTEGER_FORMAT " (hash %s)\n", "chain record",
           json_integer_value(json_object_get(chain, "position")), cstr(chain, "hash"));
  }
  json_decref(claims);
  if (fflush(stdout) != 0) status = 1;
  return status;
}

int cmd_attestation(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "export") == 0) return attestation_export(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "check") == 0) return attestation_check(argc - 1, argv + 1);
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage_attestation(stdout);
    return 0;
  }
  usage_attestation(stderr);
  return 2;
}
