/*
 * PostgreSQL access for chiploc: schema migrations, enrolment of landmarks
 * and chips, allowed regions, and batched inserts of signed measurement
 * records. Blocking libpq; every statement is fixed text with $n::type
 * parameters, keys and signatures travel as binary parameters or hex.
 * Server errors are mapped to CL_* codes by SQLSTATE so that callers can
 * tell a permanent refusal (duplicate, constraint, permission) from a
 * database that is away.
 */
#include "cl_store.h"
#include "cl_err.h"
#include "cl_probe.h"
#include "cl_schema.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cl_store {
  PGconn *conn;
};

/* Key of the session advisory lock that serialises migrators ("chiploc1"). */
#define MIGRATE_LOCK_KEY "7163091138909266737"
/* Monthly measurement partitions kept ready beyond the current month. */
#define PARTITION_MONTHS_AHEAD "3"
/* Longest COPY line: the five byteas in hex ("\\x" and two digits a byte)
 * at their largest, and room for the integers, the double, the timestamp
 * and the tabs. */
#define COPY_HEX_MAX                                                                     \
  (5 * 3 + 2 * (CL_NONCE_LEN + CL_HS_BLOB_LEN + CL_PROBES_BLOB_MAX + 2 * CL_SIG_LEN))
#define COPY_LINE_MAX (COPY_HEX_MAX + 512)
/* The protocol version of the records this release writes and reads. */
#define RECORD_PROTOCOL 2

/* libpq messages end in a newline and may span lines; make them one line. */
static void flatten(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) s[--n] = '\0';
  for (size_t i = 0; i < n; i++)
    if (s[i] == '\n' || s[i] == '\t') s[i] = ' ';
}

/* Connection-level failures and NOTICEs from IF NOT EXISTS are not for the
 * user's terminal; errors reach the caller through err instead. */
static void quiet_notices(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* The CL_* code for a failed result, by SQLSTATE. A NULL result or one
 * without SQLSTATE (connection lost, out of memory) is CL_EDB. */
static int map_sqlstate(const PGresult *r) {
  const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (!st) return CL_EDB;
  if (strcmp(st, "23505") == 0) return CL_EEXIST;     /* unique_violation */
  if (strcmp(st, "42501") == 0) return CL_EPERM;      /* insufficient_privilege */
  if (strcmp(st, "23503") == 0) return CL_ENOTFOUND;  /* foreign_key_violation */
  if (strcmp(st, "23514") == 0) return CL_EINVAL;     /* check_violation */
  if (strcmp(st, "23502") == 0) return CL_EINVAL;     /* not_null_violation */
  if (strncmp(st, "22", 2) == 0) return CL_EINVAL;    /* data_exception */
  return CL_EDB;
}

/* Writes "what: server message" into err, clears r and returns the mapped
 * code. r may be NULL, in which case the connection's message is used. */
static int fail(cl_store *s, PGresult *r, const char *what, char *err, size_t errlen) {
  char msg[768];
  const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  const char *detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : NULL;
  if (primary && detail)
    snprintf(msg, sizeof msg, "%s (%s)", primary, detail);
  else if (primary)
    snprintf(msg, sizeof msg, "%s", primary);
  else
    snprintf(msg, sizeof msg, "%s", PQerrorMessage(s->conn));
  flatten(msg);
  if (msg[0] == '\0') snprintf(msg, sizeof msg, "unexpected result");
  cl_err_set(err, errlen, "%s: %s", what, msg);
  int rc = map_sqlstate(r);
  PQclear(r);
  return rc;
}

/* Runs a statement without parameters and expects COMMAND_OK or TUPLES_OK. */
static int exec_simple(cl_store *s, const char *sql, const char *what, char *err, size_t errlen) {
  PGresult *r = PQexec(s->conn, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return fail(s, r, what, err, errlen);
  PQclear(r);
  return CL_OK;
}

/* Ends an open or failed transaction; harmless when none is open. */
static void rollback(cl_store *s) {
  PGTransactionStatusType t = PQtransactionStatus(s->conn);
  if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR) PQclear(PQexec(s->conn, "ROLLBACK"));
}

/* COMMIT of a failed transaction answers with the tag ROLLBACK; only the
 * tag COMMIT means the rows are stored. */
static int commit(cl_store *s, const char *what, char *err, size_t errlen) {
  PGresult *r = PQexec(s->conn, "COMMIT");
  if (PQresultStatus(r) != PGRES_COMMAND_OK) return fail(s, r, what, err, errlen);
  int ok = strcmp(PQcmdStatus(r), "COMMIT") == 0;
  PQclear(r);
  if (!ok) {
    cl_err_set(err, errlen, "%s: the transaction was rolled back", what);
    return CL_EDB;
  }
  return CL_OK;
}

static int check_site(double lat, double lon, char *err, size_t errlen) {
  if (!isfinite(lat) || lat < -90.0 || lat > 90.0) {
    cl_err_set(err, errlen, "latitude %g is outside [-90, 90]", lat);
    return CL_EINVAL;
  }
  if (!isfinite(lon) || lon < -180.0 || lon > 180.0) {
    cl_err_set(err, errlen, "longitude %g is outside [-180, 180]", lon);
    return CL_EINVAL;
  }
  return CL_OK;
}

static int parse_i64(const char *text, int64_t *out) {
  char *end = NULL;
  long long v = strtoll(text, &end, 10);
  if (end == text || *end != '\0') return CL_EMALFORMED;
  *out = (int64_t)v;
  return CL_OK;
}

/*
 * Session settings every chiploc connection relies on. Floats in text with
 * all their digits (positions are read as text and must be the doubles
 * that are stored and hashed); a failure here shows on the next statement.
 * And the server's side of the keepalives the client gets by default
 * (conn_defaults): those detect a server that vanished; these let the
 * server end the backend of a client that vanished within about 30 s,
 * instead of the kernel's two hours, so that its open transaction (a
 * landmark's COPY cut off mid-batch) stops holding the locks and index
 * entries the client's retry of the same rows then waits on. Ignored on a
 * Unix socket.
 */
static void session_setup(PGconn *c) {
  PQclear(PQexec(c, "SET extra_float_digits = 3; SET tcp_keepalives_idle = 10;"
                    " SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3;"
                    " SET tcp_user_timeout = 30000"));
}

/*
 * Connection defaults every chiploc component gets unless its conninfo (or,
 * for connect_timeout, $PGCONNECT_TIMEOUT) sets the keyword. Without them a
 * database host that vanishes without resetting the connection (power loss,
 * a partition, a firewall dropping state) blocks a statement for the
 * kernel's ~15 minutes of retransmissions, and an idle connection for
 * hours; with them the connection fails within about 30 s and the caller's
 * retry and spooling take over (docs/CONFIG.md, conninfo).
 */
static const char *const conn_defaults[][2] = {
    /* A host or server that never answers the connection attempt. */
    {"connect_timeout", "10"},
    /* An idle connection is probed after 10 s, then every 5 s, and dropped
     * after 3 unanswered probes: about 25 s. */
    {"keepalives", "1"},
    {"keepalives_idle", "10"},
    {"keepalives_interval", "5"},
    {"keepalives_count", "3"},
    /* Data sent and not acknowledged for 30 s (a statement or its result
     * in flight) drops the connection; keepalives alone do not cover that. */
    {"tcp_user_timeout", "30000"},
};
#define N_CONN_DEFAULTS (sizeof conn_defaults / sizeof conn_defaults[0])

/* Whether `key` appears in a PQconninfoOption array with a value. */
static int option_set(const PQconninfoOption *opts, const char *key) {
  for (const PQconninfoOption *o = opts; o && o->keyword; o++)
    if (strcmp(o->keyword, key) == 0) return o->val != NULL && o->val[0] != '\0';
  return 0;
}

/* Whether this libpq knows `key` (an older one may lack tcp_user_timeout). */
static int option_known(const PQconninfoOption *opts, const char *key) {
  for (const PQconninfoOption *o = opts; o && o->keyword; o++)
    if (strcmp(o->keyword, key) == 0) return 1;
  return 0;
}

/*
 * Starts a connection: the defaults above that libpq knows and the
 * environment does not set, then the user's conninfo, expanded as dbname.
 * libpq lets later keywords override earlier ones, so every keyword the
 * conninfo names wins over a default. NULL only when out of memory.
 */
static PGconn *connect_start(const char *conninfo) {
  const char *keys[N_CONN_DEFAULTS + 2], *vals[N_CONN_DEFAULTS + 2];
  size_t n = 0;
  PQconninfoOption *env = PQconndefaults();
  for (size_t i = 0; i < N_CONN_DEFAULTS; i++) {
    if (!option_known(env, conn_defaults[i][0]) || option_set(env, conn_defaults[i][0])) continue;
    keys[n] = conn_defaults[i][0];
    vals[n++] = conn_defaults[i][1];
  }
  keys[n] = "dbname";
  vals[n++] = conninfo;
  keys[n] = vals[n] = NULL;
  PGconn *c = PQconnectStartParams(keys, vals, 1);
  PQconninfoFree(env);
  return c;
}

/* libpq's connect_timeout for c in seconds, 0 for none; like PQconnectdb,
 * values of 1 count as 2. */
static int connect_timeout_s(PGconn *c) {
  PQconninfoOption *opts = PQconninfo(c);
  int t = 0;
  for (PQconninfoOption *o = opts; o && o->keyword; o++)
    if (strcmp(o->keyword, "connect_timeout") == 0 && o->val) t = atoi(o->val);
  PQconninfoFree(opts);
  if (t <= 0) return 0;
  return t < 2 ? 2 : t;
}

/* The host, port and address libpq is trying now, to see when it moves on. */
static void attempt_id(PGconn *c, char *out, size_t outlen) {
  const char *h = PQhost(c), *p = PQport(c), *a = PQhostaddr(c);
  snprintf(out, outlen, "%s|%s|%s", h ? h : "", p ? p : "", a ? a : "");
}

/*
 * Drives PQconnectPoll to its end, waiting on the socket with poll().
 * connect_timeout bounds each host or address as in PQconnectdb (the clock
 * restarts when libpq moves on to the next one); when it runs out the
 * attempt ends there, without trying the remaining hosts of a multi-host
 * conninfo (the caller's next attempt starts with the first again).
 * Returns 1 when connected, 0 when libpq failed, -1 on the timeout.
 */
static int connect_wait(PGconn *c) {
  int timeout_s = connect_timeout_s(c);
  char at[1024] = "", now_at[1024];
  struct timespec deadline = {0, 0};
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  for (;;) {
    if (st == PGRES_POLLING_OK) return 1;
    if (st == PGRES_POLLING_FAILED) return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    attempt_id(c, now_at, sizeof now_at);
    if (timeout_s > 0 && strcmp(at, now_at) != 0) {
      snprintf(at, sizeof at, "%s", now_at);
      deadline = now;
      deadline.tv_sec += timeout_s;
    }
    int wait_ms = -1;
    if (timeout_s > 0) {
      long long left = (long long)(deadline.tv_sec - now.tv_sec) * 1000 +
                       (deadline.tv_nsec - now.tv_nsec) / 1000000;
      if (left <= 0) return -1;
      wait_ms = (int)left;
    }
    struct pollfd p = {.fd = PQsocket(c), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
    if (p.fd >= 0) {
      int r = poll(&p, 1, wait_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) continue; /* the deadline check above ends it */
    }
    st = PQconnectPoll(c);
  }
}

/*
 * The last error a server sent in a failed connection's message, which
 * connect_fail asks libpq to render verbosely: each attempt that reached a
 * server adds a line "SEVERITY:  SQLSTATE: text". The SQLSTATE is the only
 * part that is neither translated (the server's lc_messages, the client's
 * locale) nor reworded between releases, so the classification rests on it
 * alone; libpq's own failures (refused, no such socket, unknown host,
 * timeout) carry none. On success state holds the five characters, line
 * the whole line without the SQLSTATE (as libpq would print it by default)
 * and text the server's message. Returns 1 if there was one, else 0.
 */
static int server_error(const char *msg, char state[6], char *line, size_t linelen, char *text,
                        size_t textlen) {
  const char *found = NULL;
  for (const char *p = strstr(msg, ":  "); p; p = strstr(p + 1, ":  ")) {
    const char *s = p + 3;
    int ok = 1;
    for (int i = 0; i < 5 && ok; i++) ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z');
    if (ok && s[5] == ':' && s[6] == ' ') found = s;
  }
  if (!found) return 0;
  memcpy(state, found, 5);
  state[5] = '\0';
  const char *bol = found;
  while (bol > msg && bol[-1] != '\n') bol--;
  size_t eol = strcspn(found + 7, "\n");
  snprintf(line, linelen, "%.*s%.*s", (int)(found - bol), bol, (int)eol, found + 7);
  snprintf(text, textlen, "%.*s", (int)eol, found + 7);
  return 1;
}

/*
 * Whether a server's refusal is a configuration error that retrying cannot
 * fix. Class 28 (invalid_authorization_specification, invalid_password):
 * the role does not exist or may not log in, no pg_hba.conf entry, a
 * failed password, peer or certificate check. 3D000: the database does not
 * exist. 42501: no CONNECT privilege on the database. Everything else is
 * an outage to retry: 57P03 (starting up, shutting down, in recovery),
 * 53300 (too many clients), 57P01 (terminated by an administrator), ...
 */
static int refusal_is_config(const char *state) {
  return strncmp(state, "28", 2) == 0 || strcmp(state, "3D000") == 0 ||
         strcmp(state, "42501") == 0;
}

/* What the operator can do about a configuration refusal. The English text
 * only picks a more precise hint; the SQLSTATE alone decides the class. */
static const char *refusal_hint(const char *state, const char *text) {
  if (strcmp(state, "3D000") == 0) return "create it with createdb, or fix dbname= in the conninfo";
  if (strcmp(state, "42501") == 0) return "GRANT CONNECT ON DATABASE ... TO the login role";
  if (strcmp(state, "28P01") == 0)
    return "check password= in the conninfo, $PGPASSWORD or the password file";
  if (strstr(text, "not permitted to log in"))
    return "a group role? log in with a member of it, see chiploc(1)";
  if (strstr(text, "does not exist")) return "create the login role, or fix user= in the conninfo";
  if (strstr(text, "pg_hba.conf"))
    return "allow this host, role and database in the server's pg_hba.conf";
  return "check user= in the conninfo and the server's pg_hba.conf";
}

/* Turns a failed attempt into err and CL_EPERM (configuration) or CL_EDB
 * (an outage, retried). timed_out: connect_wait gave up, not libpq. */
static int connect_fail(PGconn *c, int timed_out, char *err, size_t errlen) {
  if (timed_out) {
    const char *h = PQhost(c), *p = PQport(c);
    cl_err_set(err, errlen,
               "cannot connect to the database: connection to server at \"%s\", port %s timed "
               "out after %d s (connect_timeout)",
               h ? h : "?", p ? p : "?", connect_timeout_s(c));
    return CL_EDB;
  }
  char state[6], line[512], text[400];
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
  if (server_error(msg, state, line, sizeof line, text, sizeof text)) {
    flatten(line);
    flatten(text);
    if (refusal_is_config(state)) {
      cl_err_set(err, errlen, "database login failed: %s (%s); this is a configuration error",
                 text, refusal_hint(state, text));
      return CL_EPERM;
    }
    cl_err_set(err, errlen, "cannot connect to the database: %s", line);
    return CL_EDB;
  }
  /* The server asked for a password and the conninfo gave none: libpq
   * ends the attempt itself, so there is no SQLSTATE, but this call says
   * so without doubt. */
  if (PQconnectionNeedsPassword(c)) {
    cl_err_set(err, errlen,
               "database login failed: the server asks for a password and none was given (set "
               "password= in the conninfo or use a password file); this is a configuration "
               "error");
    return CL_EPERM;
  }
  flatten(msg);
  cl_err_set(err, errlen, "cannot connect to the database: %s", msg);
  return CL_EDB;
}

int cl_store_connect(cl_store **out, const char *conninfo, char *err, size_t errlen) {
  if (!out || !conninfo) {
    cl_err_set(err, errlen, "no connection string");
    return CL_EINVAL;
  }
  *out = NULL;
  /* A conninfo that does not parse is refused before any attempt. Its
   * text is not shown: libpq's message quotes part of it, and a conninfo
   * may hold a password. */
  char *perr = NULL;
  PQconninfoOption *parsed = PQconninfoParse(conninfo, &perr);
  if (!parsed) {
    int oom = perr == NULL;
    PQfreemem(perr);
    if (oom) {
      cl_err_set(err, errlen, "out of memory");
      return CL_ENOMEM;
    }
    cl_err_set(err, errlen,
               "invalid database connection string: not key=value pairs or a postgresql:// URI "
               "(its text is not shown, it may hold a password); this is a configuration error");
    return CL_EPERM;
  }
  PQconninfoFree(parsed);
  cl_store *s = calloc(1, sizeof *s);
  if (s) s->conn = connect_start(conninfo);
  if (!s || !s->conn) {
    free(s);
    cl_err_set(err, errlen, "out of memory");
    return CL_ENOMEM;
  }
  /* Verbose errors carry the server's SQLSTATE (see server_error). */
  PQsetErrorVerbosity(s->conn, PQERRORS_VERBOSE);
  int ok = PQstatus(s->conn) != CONNECTION_BAD ? connect_wait(s->conn) : 0;
  if (ok != 1) {
    int rc = connect_fail(s->conn, ok < 0, err, errlen);
    PQfinish(s->conn);
    free(s);
    return rc;
  }
  PQsetErrorVerbosity(s->conn, PQERRORS_DEFAULT);
  PQsetNoticeProcessor(s->conn, quiet_notices, NULL);
  session_setup(s->conn);
  *out = s;
  return CL_OK;
}

void cl_store_destroy(cl_store **s) {
  if (!s || !*s) return;
  PQfinish((*s)->conn);
  free(*s);
  *s = NULL;
}

int cl_store_ok(cl_store *s) { return s && s->conn && PQstatus(s->conn) == CONNECTION_OK; }

int cl_store_set_timeouts(cl_store *s, uint32_t statement_ms, uint32_t lock_ms, char *err,
                          size_t errlen) {
  if (!s || !s->conn) return CL_EINVAL;
  char sql[128];
  snprintf(sql, sizeof sql, "SET statement_timeout = %u; SET lock_timeout = %u", statement_ms,
           lock_ms);
  PGresult *r = PQexec(s->conn, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) cl_err_set(err, errlen, "setting timeouts: %s", PQerrorMessage(s->conn));
  PQclear(r);
  return ok ? CL_OK : CL_EDB;
}

int cl_store_reset(cl_store *s) {
  if (!s || !s->conn) return CL_EINVAL;
  PQreset(s->conn);
  if (PQstatus(s->conn) != CONNECTION_OK) return CL_EDB;
  session_setup(s->conn);
  return CL_OK;
}

/* Applies one migration and records it, in one transaction. */
static int apply_migration(cl_store *s, const cl_schema_migration *m, char *err, size_t errlen) {
  char what[160];
  snprintf(what, sizeof what, "migration %s", m->name);
  int rc = exec_simple(s, "BEGIN", what, err, errlen);
  if (rc != CL_OK) return rc;
  /* Our own file, compiled in: several statements in one PQexec. */
  rc = exec_simple(s, m->sql, what, err, errlen);
  if (rc == CL_OK) {
    const char *params[1] = {m->name};
    PGresult *r = PQexecParams(s->conn,
                               "INSERT INTO chiploc_schema_migrations (name) VALUES ($1::text)", 1,
                               NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
      rc = fail(s, r, what, err, errlen);
    else
      PQclear(r);
  }
  if (rc == CL_OK) rc = commit(s, what, err, errlen);
  if (rc != CL_OK) rollback(s);
  return rc;
}

static int migrate_locked(cl_store *s, int *applied, char *err, size_t errlen) {
  int rc = exec_simple(s,
                       "CREATE TABLE IF NOT EXISTS chiploc_schema_migrations ("
                       " name text PRIMARY KEY,"
                       " applied_at timestamptz NOT NULL DEFAULT now())",
                       "creating chiploc_schema_migrations", err, errlen);
  if (rc != CL_OK) return rc;
  PGresult *done = PQexec(s->conn, "SELECT name FROM chiploc_schema_migrations");
  if (PQresultStatus(done) != PGRES_TUPLES_OK)
    return fail(s, done, "reading chiploc_schema_migrations", err, errlen);
  int ndone = PQntuples(done);
  for (int i = 0; i < cl_schema_migration_count && rc == CL_OK; i++) {
    const cl_schema_migration *m = &cl_schema_migrations[i];
    int seen = 0;
    for (int j = 0; j < ndone && !seen; j++) seen = strcmp(PQgetvalue(done, j, 0), m->name) == 0;
    if (seen) continue;
    rc = apply_migration(s, m, err, errlen);
    if (rc == CL_OK) (*applied)++;
  }
  PQclear(done);
  if (rc != CL_OK) return rc;
  return exec_simple(s, "SELECT chiploc_ensure_partitions(" PARTITION_MONTHS_AHEAD ")",
                     "creating measurement partitions", err, errlen);
}

int cl_store_migrate(cl_store *s, int *applied, char *err, size_t errlen) {
  if (!s || !applied) return CL_EINVAL;
  *applied = 0;
  int rc = exec_simple(s, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
                       "taking the migration lock", err, errlen);
  if (rc != CL_OK) return rc;
  rc = migrate_locked(s, applied, err, errlen);
  /* A lost connection releases the lock by itself; ignore that failure. */
  PQclear(PQexec(s->conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
  return rc;
}

/*
 * Who holds public key pk already, as a phrase for a refusal: "chip SN1
 * (operator acme)", "landmark paris", "verifier v1", or "" when no chip,
 * landmark or verifier has it. One key is one identity: the tables' unique
 * constraints hold within each table only, so enrolment checks across them
 * here. 0 or the code of a failed query.
 */
static int key_holder(cl_store *s, const uint8_t pk[CL_PK_LEN], char *out, size_t outlen,
                      char *err, size_t errlen) {
  const char *vals[1] = {(const char *)pk};
  const int lens[1] = {CL_PK_LEN};
  const int fmts[1] = {1};
  PGresult *r = PQexecParams(s->conn,
                             "SELECT 'chip ' || serial || ' (operator ' || operator || ')'"
                             " FROM chips WHERE public_key = $1::bytea"
                             " UNION ALL SELECT 'landmark ' || name FROM landmarks"
                             " WHERE public_key = $1::bytea"
                             " UNION ALL SELECT 'verifier ' || name FROM verifiers"
                             " WHERE public_key = $1::bytea LIMIT 1",
                             1, NULL, vals, lens, fmts, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(s, r, "looking up the key", err, errlen);
  snprintf(out, outlen, "%s", PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "");
  PQclear(r);
  return CL_OK;
}

/* A refusal of key pk, held by `holder` (key_holder), for a new `what`
 * ("chip" or "landmark"): CL_EEXIST with err naming the holder. */
static int key_taken(const uint8_t pk[CL_PK_LEN], const char *holder, const char *what, char *err,
                     size_t errlen) {
  char hex[17];
  cl_hex_encode(hex, pk, 8);
  if (strncmp(holder, what, strlen(what)) == 0 && holder[strlen(what)] == ' ')
    cl_err_set(err, errlen, "key %s already belongs to %s; one key, one %s", hex, holder, what);
  else
    cl_err_set(err, errlen,
               "key %s belongs to %s; a %s needs a key of its own (chiploc keygen makes one)",
               hex, holder, what);
  return CL_EEXIST;
}

int cl_store_key_free(cl_store *s, const uint8_t pk[CL_PK_LEN], const char *what, char *err,
                      size_t errlen) {
  if (!s || !pk || !what) return CL_EINVAL;
  char holder[256];
  int rc = key_holder(s, pk, holder, sizeof holder, err, errlen);
  if (rc != CL_OK) return rc;
  return holder[0] ? key_taken(pk, holder, what, err, errlen) : CL_OK;
}

int cl_store_landmark_add(cl_store *s, const char *name, const uint8_t pk[CL_PK_LEN], double lat,
                          double lon, int64_t *id, char *err, size_t errlen) {
  if (!s || !name || !pk || !id) return CL_EINVAL;
  if (name[0] == '\0') {
    cl_err_set(err, errlen, "landmark name is empty");
    return CL_EINVAL;
  }
  int rc = check_site(lat, lon, err, errlen);
  if (rc != CL_OK) return rc;
  if (cl_pk_check(pk) != CL_OK) {
    cl_err_set(err, errlen, "landmark key is not a valid Ed25519 public key");
    return CL_EINVAL;
  }
  /* The friendly refusals first; the unique constraints still decide a
   * race with another enrolment. */
  const char *nv[1] = {name};
  PGresult *q = PQexecParams(s->conn,
                             "SELECT encode(substring(public_key FROM 1 FOR 8), 'hex')"
                             " FROM landmarks WHERE name = $1::text",
                             1, NULL, nv, NULL, NULL, 0);
  if (PQresultStatus(q) != PGRES_TUPLES_OK) return fail(s, q, "looking up landmark", err, errlen);
  if (PQntuples(q) > 0) {
    cl_err_set(err, errlen,
               "landmark %s already exists (key %s); names are unique: a new key for it goes "
               "under a new name, and the old entry is retired (chiploc landmark retire)",
               name, PQgetvalue(q, 0, 0));
    PQclear(q);
    return CL_EEXIST;
  }
  PQclear(q);
  rc = cl_store_key_free(s, pk, "landmark", err, errlen);
  if (rc != CL_OK) return rc;
  char slat[40], slon[40];
  snprintf(slat, sizeof slat, "%.17g", lat);
  snprintf(slon, sizeof slon, "%.17g", lon);
  const char *vals[4] = {name, (const char *)pk, slat, slon};
  const int lens[4] = {0, CL_PK_LEN, 0, 0};
  const int fmts[4] = {0, 1, 0, 0};
  PGresult *r = PQexecParams(s->conn,
                             "INSERT INTO landmarks (name, public_key, lat, lon)"
                             " VALUES ($1::text, $2::bytea, $3::float8, $4::float8) RETURNING id",
                             4, NULL, vals, lens, fmts, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
    return fail(s, r, "adding landmark", err, errlen);
  rc = parse_i64(PQgetvalue(r, 0, 0), id);
  PQclear(r);
  return rc;
}

int cl_store_check_login(cl_store *s, const char *role, char *err, size_t errlen) {
  const char *vals[1] = {role};
  PGresult *r = PQexecParams(s->conn,
                             "SELECT r.rolcanlogin AND NOT EXISTS (SELECT 1 FROM pg_auth_members m"
                             " WHERE m.roleid = r.oid) FROM pg_roles r WHERE r.rolname = $1::name",
                             1, NULL, vals, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(s, r, "looking up role", err, errlen);
  int rc = CL_OK;
  if (PQntuples(r) == 0) {
    cl_err_set(err, errlen, "no database role %s", role);
    rc = CL_ENOTFOUND;
  } else if (PQgetvalue(r, 0, 0)[0] != 't') {
    /* Every member of a group may SET ROLE to it: binding a group would let
     * all of them write in the bound name. */
    cl_err_set(err, errlen,
               "role %s cannot log in or has members (a group role?); bind a login role "
               "without members",
               role);
    rc = CL_EINVAL;
  }
  PQclear(r);
  return rc;
}

/* What a login can be bound to: the registry, the table its rows go to,
 * and the words of the messages. */
static const struct {
  const char *registry, *owned, *noun, *rows;
} BINDINGS[] = {
    [CL_STORE_BIND_LANDMARK] = {"landmarks", "measurements", "landmark", "rows"},
    [CL_STORE_BIND_VERIFIER] = {"verifiers", "attestations", "verifier", "attestations"},
};

int cl_store_bind(cl_store *s, cl_store_binding b, const char *name, const char *role, char *err,
                  size_t errlen) {
  if (!s || !name || !role || (b != CL_STORE_BIND_LANDMARK && b != CL_STORE_BIND_VERIFIER))
    return CL_EINVAL;
  if (!role[0]) {
    cl_err_set(err, errlen, "database role is empty");
    return CL_EINVAL;
  }
  int rc = cl_store_check_login(s, role, err, errlen);
  if (rc != CL_OK) return rc;
  char sql[160], what[40];
  snprintf(sql, sizeof sql, "UPDATE %s SET db_role = $2::name WHERE name = $1::text RETURNING id",
           BINDINGS[b].registry);
  snprintf(what, sizeof what, "binding %s", BINDINGS[b].noun);
  const char *vals[2] = {name, role};
  PGresult *r = PQexecParams(s->conn, sql, 2, NULL, vals, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(s, r, what, err, errlen);
  int found = PQntuples(r) == 1;
  PQclear(r);
  if (!found) {
    cl_err_set(err, errlen, "no %s named %s", BINDINGS[b].noun, name);
    return CL_ENOTFOUND;
  }
  return CL_OK;
}

int cl_store_landmark_bind(cl_store *s, const char *name, const char *role, char *err,
                           size_t errlen) {
  return cl_store_bind(s, CL_STORE_BIND_LANDMARK, name, role, err, errlen);
}

int cl_store_landmark_retire(cl_store *s, const char *name, const char *at, int revoke,
                             char *err, size_t errlen) {
  if (!s || !name) return CL_EINVAL;
  const char *vals[3] = {name, at ? at : "now", revoke ? "revoked" : "retired"};
  /* The cut-off only ever moves earlier, so that no later command brings a
   * key back into force for rows it had stopped counting; a revocation
   * stays a revocation. */
  PGresult *r = PQexecParams(
      s->conn,
      "UPDATE landmarks SET "
      " retired_at = LEAST(coalesce(retired_at, $2::timestamptz), $2::timestamptz),"
      " retire_kind = CASE WHEN retire_kind = 'revoked' THEN 'revoked' ELSE $3::text END"
      " WHERE name = $1::text RETURNING id",
      3, NULL, vals, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    /* A data exception, or the CHECK that the time is finite. */
    if (st && (strncmp(st, "22", 2) == 0 || strcmp(st, "23514") == 0)) {
      cl_err_set(err, errlen, "--at %s: not a finite time PostgreSQL understands",
                 at ? at : "now");
      PQclear(r);
      return CL_EINVAL;
    }
    return fail(s, r, "retiring landmark", err, errlen);
  }
  int found = PQntuples(r) == 1;
  PQclear(r);
  if (!found) {
    cl_err_set(err, errlen, "no landmark named %s", name);
    return CL_ENOTFOUND;
  }
  return CL_OK;
}

int cl_store_may_write(cl_store *s, cl_store_binding b, int64_t id, char *err, size_t errlen) {
  if (!s || (b != CL_STORE_BIND_LANDMARK && b != CL_STORE_BIND_VERIFIER)) return CL_EINVAL;
  char sid[24], sql[512], what[64];
  snprintf(sid, sizeof sid, "%" PRId64, id);
  /* The rule of schema 0004's guards, asked before the first write. */
  snprintf(sql, sizeof sql,
           "SELECT pg_has_role(current_user, 'chiploc_admin', 'MEMBER')"
           " OR pg_has_role(current_user, (SELECT relowner FROM pg_class"
           "   WHERE oid = '%s'::regclass), 'MEMBER')"
           " OR EXISTS (SELECT 1 FROM %s WHERE id = $1::bigint AND db_role = current_user),"
           " current_user, (SELECT name FROM %s WHERE id = $1::bigint)",
           BINDINGS[b].owned, BINDINGS[b].registry, BINDINGS[b].registry);
  snprintf(what, sizeof what, "checking the %s's database role", BINDINGS[b].noun);
  const char *vals[1] = {sid};
  PGresult *r = PQexecParams(s->conn, sql, 1, NULL, vals, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
    return fail(s, r, what, err, errlen);
  int ok = PQgetvalue(r, 0, 0)[0] == 't';
  if (!ok)
    cl_err_set(err, errlen,
               "database role %s may not write %s of %s %s; run: chiploc %s bind --name %s "
               "--db-role %s",
               PQgetvalue(r, 0, 1), BINDINGS[b].rows, BINDINGS[b].noun, PQgetvalue(r, 0, 2),
               BINDINGS[b].noun, PQgetvalue(r, 0, 2), PQgetvalue(r, 0, 1));
  PQclear(r);
  return ok ? CL_OK : CL_EPERM;
}

int cl_store_landmark_may_write(cl_store *s, int64_t landmark_id, char *err, size_t errlen) {
  return cl_store_may_write(s, CL_STORE_BIND_LANDMARK, landmark_id, err, errlen);
}

int cl_store_landmark_find(cl_store *s, const uint8_t pk[CL_PK_LEN], int64_t *id, char *err,
                           size_t errlen) {
  if (!s || !pk || !id) return CL_EINVAL;
  const char *vals[1] = {(const char *)pk};
  const int lens[1] = {CL_PK_LEN};
  const int fmts[1] = {1};
  PGresult *r = PQexecParams(s->conn, "SELECT id FROM landmarks WHERE public_key = $1::bytea", 1,
                             NULL, vals, lens, fmts, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(s, r, "looking up landmark", err, errlen);
  if (PQntuples(r) == 0) {
    PQclear(r);
    char hex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(pk, hex);
    cl_err_set(err, errlen, "no landmark with key %s", hex);
    return CL_ENOTFOUND;
  }
  int rc = parse_i64(PQgetvalue(r, 0, 0), id);
  PQclear(r);
  return rc;
}

int cl_store_landmark_get(cl_store *s, const uint8_t pk[CL_PK_LEN], cl_store_landmark *out,
                          char *err, size_t errlen) {
  if (!s || !pk || !out) return CL_EINVAL;
  memset(out, 0, sizeof *out);
  const char *vals[1] = {(const char *)pk};
  const int lens[1] = {CL_PK_LEN};
  const int fmts[1] = {1};
  /* extra_float_digits = 3 (session_setup): the text of a double is exact. */
  PGresult *r = PQexecParams(s->conn,
                             "SELECT id, name, lat, lon FROM landmarks WHERE public_key = $1::bytea",
                             1, NULL, vals, lens, fmts, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(s, r, "looking up landmark", err, errlen);
  if (PQntuples(r) == 0) {
    PQclear(r);
    char hex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(pk, hex);
    cl_err_set(err, errlen, "no landmark with key %s", hex);
    return CL_ENOTFOUND;
  }
  int rc = parse_i64(PQgetvalue(r, 0, 0), &out->id);
  snprintf(out->name, sizeof out->name, "%s", PQgetvalue(r, 0, 1));
  out->lat = strtod(PQgetvalue(r, 0, 2), NULL);
  out->lon = strtod(PQgetvalue(r, 0, 3), NULL);
  PQclear(r);
  return rc;
}

int cl_store_chip_enroll(cl_store *s, const uint8_t pk[CL_PK_LEN], const char *serial,
                         const char *operator_name, double site_lat, double site_lon, int64_t *id,
                         char *err, size_t errlen) {
  if (!s || !pk || !serial || !operator_name || !id) return CL_EINVAL;
  if (serial[0] == '\0' || operator_name[0] == '\0') {
    cl_err_set(err, errlen, "chip serial and operator must not be empty");
    return CL_EINVAL;
  }
  int rc = check_site(site_lat, site_lon, err, errlen);
  if (rc != CL_OK) return rc;
  if (cl_pk_check(pk) != CL_OK) {
    cl_err_set(err, errlen, "chip key is not a valid Ed25519 public key");
    return CL_EINVAL;
  }
  /* The friendly refusals first; the unique constraints still decide a
   * race with another enrolment. */
  const char *qv[2] = {serial, (const char *)pk};
  const int ql[2] = {0, CL_PK_LEN};
  const int qf[2] = {0, 1};
  PGresult *q = PQexecParams(s->conn,
                             "SELECT operator, encode(substring(public_key FROM 1 FOR 8), 'hex'),"
                             " public_key = $2::bytea, active FROM chips WHERE serial = $1::text",
                             2, NULL, qv, ql, qf, 0);
  if (PQresultStatus(q) != PGRES_TUPLES_OK) return fail(s, q, "looking up chip", err, errlen);
  if (PQntuples(q) > 0) {
    if (PQgetvalue(q, 0, 2)[0] == 't')
      cl_err_set(err, errlen, "chip %s is already enrolled with this key (operator %s)%s", serial,
                 PQgetvalue(q, 0, 0),
                 PQgetvalue(q, 0, 3)[0] == 't' ? ""
                                               : "; it is deactivated: chiploc chip reactivate");
    else
      cl_err_set(err, errlen,
                 "chip %s is already enrolled (operator %s, key %s); serials are unique: to give "
                 "the chip a new key, deactivate it (chiploc chip deactivate %s) and enrol the "
                 "new key under a new serial",
                 serial, PQgetvalue(q, 0, 0), PQgetvalue(q, 0, 1), serial);
    PQclear(q);
    return CL_EEXIST;
  }
  PQclear(q);
  char holder[256];
  rc = key_holder(s, pk, holder, sizeof holder, err, errlen);
  if (rc != CL_OK) return rc;
  if (holder[0]) return key_taken(pk, holder, "chip", err, errlen);
  char slat[40], slon[40];
  snprintf(slat, sizeof slat, "%.17g", site_lat);
  snprintf(slon, sizeof slon, "%.17g", site_lon);
  const char *vals[5] = {(const char *)pk, serial, operator_name, slat, slon};
  const int lens[5] = {CL_PK_LEN, 0, 0, 0, 0};
  const int fmts[5] = {1, 0, 0, 0, 0};
  PGresult *r = PQexecParams(s->conn,
                             "INSERT INTO chips (public_key, serial, operator, site_lat, site_lon)"
                             " VALUES ($1::bytea, $2::text, $3::text, $4::float8, $5::float8)"
                             " RETURNING id",
                             5, NULL, vals, lens, fmts, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
    return fail(s, r, "enrolling chip", err, errlen);
  rc = parse_i64(PQgetvalue(r, 0, 0), id);
  PQclear(r);
  return rc;
}

int cl_store_chip_set_active(cl_store *s, const char *serial, int active, const char *reason,
                             int *changed, int64_t *alerts_cleared, char *err, size_t errlen) {
  if (!s || !serial || !changed || !alerts_cleared) return CL_EINVAL;
  *changed = 0;
  *alerts_cleared = 0;
  const char *vals[3] = {serial, active ? "true" : "false",
                         !active && reason && reason[0] ? reason : NULL};
  /* One statement: the chip and its open alerts change together. */
  PGresult *r = PQexecParams(
      s->conn,
      "WITH c AS (UPDATE chips SET active = $2::boolean,"
      " deactivated_at = CASE WHEN $2::boolean THEN NULL ELSE now() END,"
      " deactivation_reason = CASE WHEN $2::boolean THEN NULL ELSE $3::text END"
      " WHERE serial = $1::text AND active <> $2::boolean RETURNING id),"
      " a AS (UPDATE alerts SET cleared_at = greatest(now(), raised_at)"
      " WHERE NOT $2::boolean AND cleared_at IS NULL AND chip_id IN (SELECT id FROM c)"
      " RETURNING id)"
      " SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM a)",
      3, NULL, vals, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
    return fail(s, r, active ? "reactivating chip" : "deactivating chip", err, errlen);
  *changed = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
  int rc = parse_i64(PQgetvalue(r, 0, 1), alerts_cleared);
  PQclear(r);
  if (rc != CL_OK || *changed) return rc;
  /* Nothing changed: an unknown serial, or a chip in that state already. */
  const char *sv[1] = {serial};
  r = PQexecParams(s->conn, "SELECT 1 FROM chips WHERE serial = $1::text", 1, NULL, sv, NULL, NULL,
                   0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(s, r, "looking up chip", err, errlen);
  int found = PQntuples(r) > 0;
  PQclear(r);
  if (found) return CL_OK;
  cl_err_set(err, errlen, "no chip with serial %s (chiploc chip list shows them)", serial);
  return CL_ENOTFOUND;
}

/* A probe target's name for log lines: left empty when longer than
 * CL_LM_NAME_MAX (the logs then name it by its key). */
static void target_name(cl_store_chip *t, const char *name) {
  if (strlen(name) <= CL_LM_NAME_MAX) snprintf(t->name, sizeof t->name, "%s", name);
}

int cl_store_load_chips(cl_store *s, cl_store_chip **out, size_t *n, char *err, size_t errlen) {
  if (!s || !out || !n) return CL_EINVAL;
  *out = NULL;
  *n = 0;
  PGresult *r = PQexec(
      s->conn, "SELECT id, encode(public_key, 'hex'), active, serial FROM chips ORDER BY id");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(s, r, "loading chips", err, errlen);
  size_t rows = (size_t)PQntuples(r);
  cl_store_chip *chips = calloc(rows ? rows : 1, sizeof *chips);
  if (!chips) {
    PQclear(r);
    cl_err_set(err, errlen, "loading chips: out of memory");
    return CL_ENOMEM;
  }
  for (size_t i = 0; i < rows; i++) {
    const char *hex = PQgetvalue(r, (int)i, 1);
    if (parse_i64(PQgetvalue(r, (int)i, 0), &chips[i].id) != CL_OK ||
        cl_hex_decode(chips[i].pk, CL_PK_LEN, hex, strlen(hex)) != CL_OK) {
      PQclear(r);
      free(chips);
      cl_err_set(err, errlen, "loading chips: malformed row %zu", i);
      return CL_EMALFORMED;
    }
    chips[i].active = PQgetvalue(r, (int)i, 2)[0] == 't';
    target_name(&chips[i], PQgetvalue(r, (int)i, 3));
  }
  PQclear(r);
  *out = chips;
  *n = rows;
  return CL_OK;
}

/* Checks one row against what the schema would refuse, so that a bad row is
 * named precisely and no SQL runs for a batch that cannot succeed: the
 * record's own consistency (cl_measurement_check) and the ranges of the
 * columns its fields go to. Signatures are the verifier's business. */
static int check_row(const cl_store_row *row, size_t i, const uint8_t landmark[CL_PK_LEN],
                     char *err, size_t errlen) {
  const cl_measurement *m = &row->m;
  char why[160] = "";
  const char *bad = NULL;
  if (row->chip_id <= 0)
    bad = "chip id must be positive";
  else if (memcmp(m->hs.landmark, landmark, CL_PK_LEN) != 0)
    bad = "signed by a different landmark key than the batch";
  else if (cl_measurement_check(m, why, sizeof why) != CL_OK)
    bad = why;
  else if (m->rtt_ns == 0)
    bad = "rtt_ns must be positive";
  else if (m->probes[cl_measurement_fastest(m)].seq > INT64_MAX || m->rtt_ns > INT64_MAX ||
           m->measured_unix_ns > INT64_MAX || row->bound_m > INT64_MAX ||
           row->est_bound_m > INT64_MAX)
    bad = "an integer field exceeds 2^63-1";
  else if (m->probes_sent > INT32_MAX)
    bad = "probes_sent exceeds 2^31-1";
  else if (!isfinite(row->est_speed) || row->est_speed <= 0.0 || row->est_speed > CL_SPEED_C)
    bad = "est_speed must be in (0, c]";
  if (!bad) return CL_OK;
  cl_err_set(err, errlen, "measurement %zu: %s", i, bad);
  return CL_EINVAL;
}

/* Unix nanoseconds as a PostgreSQL timestamptz literal in UTC, truncated to
 * the microsecond (the column's precision); measured_at_ns keeps the rest. */
static int format_timestamp(char *out, size_t outlen, uint64_t unix_ns) {
  time_t secs = (time_t)(unix_ns / 1000000000u);
  unsigned usec = (unsigned)((unix_ns % 1000000000u) / 1000u);
  struct tm tm;
  if (!gmtime_r(&secs, &tm)) return CL_EINVAL;
  int n = snprintf(out, outlen, "%04d-%02d-%02d %02d:%02d:%02d.%06u+00", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
  return (n > 0 && (size_t)n < outlen) ? CL_OK : CL_EINVAL;
}

/* Appends "\\x<hex>" (a bytea in COPY text format) at p; returns the end. */
static char *put_bytea(char *p, const uint8_t *bytes, size_t len) {
  *p++ = '\\';
  *p++ = '\\';
  *p++ = 'x';
  cl_hex_encode(p, bytes, len);
  return p + 2 * len;
}

/* One COPY text line for a row, in the column order of insert_rows;
 * returns its length or 0 if it does not fit. */
static size_t copy_line(char *line, size_t cap, int64_t landmark_id, const cl_store_row *row,
                        int link) {
  const cl_measurement *m = &row->m;
  const cl_probe_entry *fastest = &m->probes[cl_measurement_fastest(m)];
  char ts[64];
  if (format_timestamp(ts, sizeof ts, m->measured_unix_ns) != CL_OK) return 0;
  /* Hex fields are written in place; the cap covers all of them. */
  if (cap < COPY_LINE_MAX) return 0;
  uint8_t hs[CL_HS_BLOB_LEN], probes[CL_PROBES_BLOB_MAX];
  cl_hs_blob_put(hs, &m->hs);
  size_t probes_len = cl_probes_blob_put(probes, m->probes, m->count);
  char *p = line;
  char *end = line + cap;
  p += snprintf(p, (size_t)(end - p), "%" PRId64 "\t%" PRId64 "\t%d\t%" PRIu32 "\t",
                row->chip_id, landmark_id, RECORD_PROTOCOL, m->hs.suite);
  p = put_bytea(p, fastest->nonce, CL_NONCE_LEN);
  p += snprintf(p, (size_t)(end - p), "\t%" PRIu64 "\t", fastest->seq);
  p = put_bytea(p, hs, sizeof hs);
  *p++ = '\t';
  p = put_bytea(p, probes, probes_len);
  *p++ = '\t';
  p = put_bytea(p, m->transcript_sig, CL_SIG_LEN);
  int k = link ? snprintf(p, (size_t)(end - p),
                          "\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu32 "\t%" PRIu32 "\t%s\t%" PRIu64
                          "\t",
                          m->rtt_ns, row->bound_m, m->count, m->probes_sent, ts,
                          m->measured_unix_ns)
               : snprintf(p, (size_t)(end - p),
                          "\t%" PRIu64 "\t%" PRIu64 "\t%.17g\t%" PRIu64 "\t%" PRIu32
                          "\t%" PRIu32 "\t%s\t%" PRIu64 "\t",
                          m->rtt_ns, row->bound_m, row->est_speed, row->est_bound_m, m->count,
                          m->probes_sent, ts, m->measured_unix_ns);
  if (k < 0 || k >= end - p) return 0;
  p += k;
  if (end - p < 2 * CL_SIG_LEN + 5) return 0;
  p = put_bytea(p, m->sig, CL_SIG_LEN);
  *p++ = '\n';
  return (size_t)(p - line);
}

/* Streams the rows into an open COPY. On failure the COPY is ended with an
 * error so the server discards it; the caller then reads the result. */
static int copy_rows(cl_store *s, int64_t landmark_id, const cl_store_row *rows, size_t n,
                     int link, char *err, size_t errlen) {
  char line[COPY_LINE_MAX];
  for (size_t i = 0; i < n; i++) {
    size_t len = copy_line(line, sizeof line, landmark_id, &rows[i], link);
    if (len == 0) {
      PQputCopyEnd(s->conn, "client could not format a row");
      cl_err_set(err, errlen, "measurement %zu: cannot format the row", i);
      return CL_EINVAL;
    }
    if (PQputCopyData(s->conn, line, (int)len) != 1) {
      char msg[512];
      snprintf(msg, sizeof msg, "%s", PQerrorMessage(s->conn));
      flatten(msg);
      PQputCopyEnd(s->conn, "client could not send a row");
      cl_err_set(err, errlen, "sending measurements: %s", msg);
      return CL_EDB;
    }
  }
  if (PQputCopyEnd(s->conn, NULL) != 1) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", PQerrorMessage(s->conn));
    flatten(msg);
    cl_err_set(err, errlen, "ending COPY: %s", msg);
    return CL_EDB;
  }
  return CL_OK;
}

/* Reads every result of a finished COPY; the first failure wins. */
static int copy_finish(cl_store *s, size_t n, int rc, char *err, size_t errlen) {
  PGresult *r;
  while ((r = PQgetResult(s->conn)) != NULL) {
    if (rc != CL_OK) {
      PQclear(r);
      continue;
    }
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      rc = fail(s, r, "inserting measurements", err, errlen);
      continue;
    }
    const char *count = PQcmdTuples(r);
    if (strtoull(count, NULL, 10) != (unsigned long long)n) {
      cl_err_set(err, errlen, "inserting measurements: server stored %s of %zu rows", count, n);
      rc = CL_EDB;
    }
    PQclear(r);
  }
  return rc;
}

/* Makes sure landmark_id exists and owns the key that signed the rows. */
static int check_landmark(cl_store *s, int64_t landmark_id, const uint8_t pk[CL_PK_LEN],
                          char *err, size_t errlen) {
  char sid[24];
  snprintf(sid, sizeof sid, "%" PRId64, landmark_id);
  const char *vals[1] = {sid};
  PGresult *r = PQexecParams(s->conn, "SELECT public_key FROM landmarks WHERE id = $1::bigint", 1,
                             NULL, vals, NULL, NULL, 1);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(s, r, "looking up landmark", err, errlen);
  int rc = CL_OK;
  if (PQntuples(r) == 0) {
    cl_err_set(err, errlen, "inserting measurements: no landmark with id %" PRId64, landmark_id);
    rc = CL_ENOTFOUND;
  } else if (PQgetlength(r, 0, 0) != CL_PK_LEN || memcmp(PQgetvalue(r, 0, 0), pk, CL_PK_LEN)) {
    cl_err_set(err, errlen,
              "inserting measurements: records are signed by a key other than landmark %" PRId64
              "'s",
              landmark_id);
    rc = CL_EINVAL;
  }
  PQclear(r);
  return rc;
}

/* Inserts measurement rows (link = 0) or landmark-link rows (link = 1). */
static int insert_rows(cl_store *s, int64_t landmark_id, const cl_store_row *rows, size_t n,
                       int link, char *err, size_t errlen) {
  if (!s || (n > 0 && !rows)) return CL_EINVAL;
  if (n == 0) return CL_OK;
  if (landmark_id <= 0) {
    cl_err_set(err, errlen, "landmark id %" PRId64 " is not valid", landmark_id);
    return CL_EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    int rc = check_row(&rows[i], i, rows[0].m.hs.landmark, err, errlen);
    if (rc != CL_OK) return rc;
  }
  int rc = exec_simple(s, "BEGIN", "starting the measurement transaction", err, errlen);
  if (rc != CL_OK) return rc;
  rc = check_landmark(s, landmark_id, rows[0].m.hs.landmark, err, errlen);
  if (rc == CL_OK) {
    PGresult *r = PQexec(
        s->conn,
        link ? "COPY landmark_links (to_landmark_id, from_landmark_id, protocol, suite, nonce,"
               " seq, handshake, probes, transcript_sig, rtt_ns, bound_m, probe_count,"
               " probes_sent, measured_at, measured_at_ns, landmark_sig) FROM STDIN"
             : "COPY measurements (chip_id, landmark_id, protocol, suite, nonce, seq, handshake,"
               " probes, transcript_sig, rtt_ns, bound_m, est_speed_m_s, est_bound_m,"
               " probe_count, probes_sent, measured_at, measured_at_ns, landmark_sig)"
               " FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN) {
      rc = fail(s, r, "starting COPY", err, errlen);
    } else {
      PQclear(r);
      rc = copy_rows(s, landmark_id, rows, n, link, err, errlen);
      rc = copy_finish(s, n, rc, err, errlen);
    }
  }
  if (rc == CL_OK) rc = commit(s, "committing measurements", err, errlen);
  if (rc != CL_OK) rollback(s);
  return rc;
}

int cl_store_insert_measurements(cl_store *s, int64_t landmark_id, const cl_store_row *rows,
                                 size_t n, char *err, size_t errlen) {
  return insert_rows(s, landmark_id, rows, n, 0, err, errlen);
}

int cl_store_insert_links(cl_store *s, int64_t landmark_id, const cl_store_row *rows, size_t n,
                          char *err, size_t errlen) {
  return insert_rows(s, landmark_id, rows, n, 1, err, errlen);
}

/* ---- reading records back ------------------------------------------------------ */

cl_store_cols cl_store_cols_at(int base) {
  return (cl_store_cols){.protocol = base,
                         .suite = base + 1,
                         .handshake = base + 2,
                         .probes = base + 3,
                         .transcript_sig = base + 4,
                         .landmark_sig = base + 5,
                         .rtt_ns = base + 6,
                         .probe_count = base + 7,
                         .probes_sent = base + 8,
                         .measured_at_ns = base + 9};
}

/* Field (row, col) of a binary result, exactly len bytes long: its bytes,
 * or NULL with err naming the column and what is wrong. */
static const uint8_t *binary_field(const PGresult *r, int row, int col, size_t len, char *err,
                                   size_t errlen) {
  const char *name = PQfname(r, col);
  if (!name) name = "?";
  if (PQgetisnull(r, row, col)) {
    cl_err_set(err, errlen, "column %s is NULL", name);
    return NULL;
  }
  if (PQfformat(r, col) != 1) {
    cl_err_set(err, errlen, "column %s is not in binary format", name);
    return NULL;
  }
  if ((size_t)PQgetlength(r, row, col) != len) {
    cl_err_set(err, errlen, "column %s is %d bytes, expected %zu", name, PQgetlength(r, row, col),
               len);
    return NULL;
  }
  return (const uint8_t *)PQgetvalue(r, row, col);
}

/* A binary integer column of `width` bytes (2, 4 or 8) that must lie in
 * [min, max]. */
static int int_field(const PGresult *r, int row, int col, int width, int64_t min, int64_t max,
                     int64_t *out, char *err, size_t errlen) {
  const uint8_t *p = binary_field(r, row, col, (size_t)width, err, errlen);
  if (!p) return CL_EMALFORMED;
  int64_t v = width == 2   ? (int16_t)(uint16_t)(p[0] << 8 | p[1])
              : width == 4 ? (int32_t)cl_get_be32(p)
                           : (int64_t)cl_get_be64(p);
  if (v < min || v > max) {
    cl_err_set(err, errlen, "column %s is %" PRId64 ", outside [%" PRId64 ", %" PRId64 "]",
               PQfname(r, col), v, min, max);
    return CL_EMALFORMED;
  }
  *out = v;
  return CL_OK;
}

int cl_store_row_measurement(const struct pg_result *r, int row, const cl_store_cols *cols,
                             const uint8_t landmark_pk[CL_PK_LEN], const uint8_t chip_pk[CL_PK_LEN],
                             cl_measurement *m, char *err, size_t errlen) {
  if (!r || !cols || !landmark_pk || !chip_pk || !m || row < 0 || row >= PQntuples(r))
    return CL_EINVAL;
  const int all[] = {cols->suite,          cols->handshake,    cols->probes,
                     cols->transcript_sig, cols->landmark_sig, cols->rtt_ns,
                     cols->probe_count,    cols->probes_sent,  cols->measured_at_ns};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (all[i] < 0 || all[i] >= PQnfields(r)) return CL_EINVAL;
  if (cols->protocol >= PQnfields(r)) return CL_EINVAL;
  memset(m, 0, sizeof *m);
  int64_t v = 0;
  if (cols->protocol >= 0) {
    if (int_field(r, row, cols->protocol, 2, INT16_MIN, INT16_MAX, &v, err, errlen) != CL_OK)
      return CL_EMALFORMED;
    if (v != RECORD_PROTOCOL) {
      cl_err_set(err, errlen, "column %s is %" PRId64 ": not a protocol 2 record",
                 PQfname(r, cols->protocol), v);
      return CL_EMALFORMED;
    }
  }
  if (int_field(r, row, cols->suite, 4, 0, INT32_MAX, &v, err, errlen) != CL_OK)
    return CL_EMALFORMED;
  m->hs.suite = (uint32_t)v;
  memcpy(m->hs.landmark, landmark_pk, CL_PK_LEN);
  memcpy(m->hs.chip, chip_pk, CL_PK_LEN);
  const uint8_t *p = binary_field(r, row, cols->handshake, CL_HS_BLOB_LEN, err, errlen);
  if (!p) return CL_EMALFORMED;
  cl_hs_blob_get(&m->hs, p);
  int64_t count = 0;
  if (int_field(r, row, cols->probe_count, 4, 1, CL_MAX_BURST, &count, err, errlen) != CL_OK)
    return CL_EMALFORMED;
  m->count = (uint32_t)count;
  p = binary_field(r, row, cols->probes, (size_t)count * CL_RECORD_ENTRY_LEN, err, errlen);
  if (!p) return CL_EMALFORMED;
  size_t n = 0; /* cannot fail: the length is count whole entries, count 1..CL_MAX_BURST */
  cl_probes_blob_get(m->probes, &n, p, (size_t)count * CL_RECORD_ENTRY_LEN);
  p = binary_field(r, row, cols->transcript_sig, CL_SIG_LEN, err, errlen);
  if (!p) return CL_EMALFORMED;
  memcpy(m->transcript_sig, p, CL_SIG_LEN);
  p = binary_field(r, row, cols->landmark_sig, CL_SIG_LEN, err, errlen);
  if (!p) return CL_EMALFORMED;
  memcpy(m->sig, p, CL_SIG_LEN);
  if (int_field(r, row, cols->rtt_ns, 8, 0, INT64_MAX, &v, err, errlen) != CL_OK)
    return CL_EMALFORMED;
  m->rtt_ns = (uint64_t)v;
  if (int_field(r, row, cols->probes_sent, 4, 0, INT32_MAX, &v, err, errlen) != CL_OK)
    return CL_EMALFORMED;
  m->probes_sent = (uint32_t)v;
  if (int_field(r, row, cols->measured_at_ns, 8, 0, INT64_MAX, &v, err, errlen) != CL_OK)
    return CL_EMALFORMED;
  m->measured_unix_ns = (uint64_t)v;
  return CL_OK;
}

int cl_store_load_landmarks(cl_store *s, cl_store_chip **out, size_t *n, char *err,
                            size_t errlen) {
  if (!s || !out || !n) return CL_EINVAL;
  *out = NULL;
  *n = 0;
  PGresult *r =
      PQexec(s->conn, "SELECT id, encode(public_key, 'hex'), name FROM landmarks ORDER BY id");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return fail(s, r, "loading landmarks", err, errlen);
  size_t rows = (size_t)PQntuples(r);
  cl_store_chip *l = calloc(rows ? rows : 1, sizeof *l);
  if (!l) {
    PQclear(r);
    cl_err_set(err, errlen, "loading landmarks: out of memory");
    return CL_ENOMEM;
  }
  for (size_t i = 0; i < rows; i++) {
    const char *hex = PQgetvalue(r, (int)i, 1);
    if (parse_i64(PQgetvalue(r, (int)i, 0), &l[i].id) != CL_OK ||
        cl_hex_decode(l[i].pk, CL_PK_LEN, hex, strlen(hex)) != CL_OK) {
      PQclear(r);
      free(l);
      cl_err_set(err, errlen, "loading landmarks: malformed row %zu", i);
      return CL_EMALFORMED;
    }
    l[i].active = 1;
    l[i].is_landmark = 1;
    target_name(&l[i], PQgetvalue(r, (int)i, 2));
  }
  PQclear(r);
  *out = l;
  *n = rows;
  return CL_OK;
}

/* ---- transactions ------------------------------------------------------------ */

int cl_store_begin(cl_store *s, char *err, size_t errlen) {
  if (!s) return CL_EINVAL;
  if (PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
    cl_err_set(err, errlen, "a transaction is open already");
    return CL_EINVAL;
  }
  return exec_simple(s, "BEGIN", "starting a transaction", err, errlen);
}

int cl_store_commit(cl_store *s, char *err, size_t errlen) {
  if (!s) return CL_EINVAL;
  int rc = commit(s, "committing", err, errlen);
  if (rc != CL_OK) rollback(s);
  return rc;
}

void cl_store_rollback(cl_store *s) {
  if (s) rollback(s);
}

/* ---- regions --------------------------------------------------------------------- */

int cl_store_region_put(cl_store *s, const char *code, const char *geometry_json,
                        size_t vertex_count, char *err, size_t errlen) {
  if (!s || !code || !geometry_json) return CL_EINVAL;
  if (code[0] == '\0') {
    cl_err_set(err, errlen, "region code is empty");
    return CL_EINVAL;
  }
  if (vertex_count < 3 || vertex_count > INT32_MAX) {
    cl_err_set(err, errlen, "region %s: vertex count %zu is outside [3, 2^31-1]", code,
               vertex_count);
    return CL_EINVAL;
  }
  char count[24];
  snprintf(count, sizeof count, "%zu", vertex_count);
  const char *vals[3] = {code, geometry_json, count};
  PGresult *r = PQexecParams(s->conn,
                             "INSERT INTO regions (code, geojson, vertex_count)"
                             " VALUES ($1::text, $2::jsonb, $3::integer)"
                             " ON CONFLICT (code) DO UPDATE SET geojson = EXCLUDED.geojson,"
                             " vertex_count = EXCLUDED.vertex_count, imported_at = now()",
                             3, NULL, vals, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    char what[96];
    snprintf(what, sizeof what, "storing region %.40s", code);
    return fail(s, r, what, err, errlen);
  }
  PQclear(r);
  return CL_OK;
}

int cl_store_chip_allow(cl_store *s, int64_t chip_id, const char *code, char *err,
                        size_t errlen) {
  if (!s || !code) return CL_EINVAL;
  char sid[24];
  snprintf(sid, sizeof sid, "%" PRId64, chip_id);
  const char *vals[2] = {sid, code};
  /* The region is looked up in the same statement so that a missing one is
   * told apart from a missing chip (which fails the foreign key). */
  PGresult *r = PQexecParams(s->conn,
                             "SELECT EXISTS (SELECT 1 FROM regions WHERE code = $2::text),"
                             " EXISTS (SELECT 1 FROM chips WHERE id = $1::bigint)",
                             2, NULL, vals, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
    return fail(s, r, "looking up region", err, errlen);
  int region_ok = PQgetvalue(r, 0, 0)[0] == 't', chip_ok = PQgetvalue(r, 0, 1)[0] == 't';
  PQclear(r);
  if (!region_ok) {
    cl_err_set(err, errlen, "no region with code \"%.40s\" (import it with chiploc region import)",
              code);
    return CL_ENOTFOUND;
  }
  if (!chip_ok) {
    cl_err_set(err, errlen, "no chip with id %" PRId64, chip_id);
    return CL_ENOTFOUND;
  }
  r = PQexecParams(s->conn,
                   "INSERT INTO chip_regions (chip_id, region_code) VALUES ($1::bigint, $2::text)"
                   " ON CONFLICT DO NOTHING",
                   2, NULL, vals, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) return fail(s, r, "allowing region", err, errlen);
  PQclear(r);
  return CL_OK;
}

void *cl_store_pgconn(cl_store *s) { return s->conn; }
