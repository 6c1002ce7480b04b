/*
 * Ingestion benchmark: measurements persisted per second by landmarkd's
 * batch writer (server/writer.c, the code landmarkd runs, with the config
 * defaults of a landmarkd.conf that sets only what is required) against one
 * raw COPY of the same rows into the same table, in the same run.
 *
 * Setup: migrates the database, registers one landmark and --chips chips,
 * and builds --rows protocol 2 records before anything is timed: one
 * session per chip (a handshake signed by both keys and its session key),
 * and per record a burst of five answered probes with their MACs, the
 * chip's transcript signature and the landmark's record signature, as
 * landmarkd makes them. A warm-up pass
 * pushes them through the writer; the stored rows are then read back with
 * COPY TO STDOUT, which gives the byte-exact COPY text of those very rows
 * for the raw baseline.
 *
 * Each round times both, in alternating order, on an emptied table:
 *   writer: from the first lm_writer_push until lm_writer_get_stats counts
 *           every row as written (the writer is connected beforehand);
 *   copy:   one COPY ... FROM STDIN of the prepared text, one transaction.
 * After each pass the table must hold exactly --rows rows: nothing lost,
 * nothing twice. Prints one line per pass and a summary of medians as
 * key=value pairs for bench/ingest.sh.
 *
 * A benchmark, not a daemon: it uses libpq directly for its own set-up and
 * the baseline, which are not part of the product.
 */
#include "cl_config.h"
#include "cl_err.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_log.h"
#include "cl_probe.h"
#include "cl_store.h"
#include "tu_conf.h"
#include "writer.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MAX_CHIPS 1000
#define MAX_ROWS 200000u /* below the writer's in-memory queue cap (server/writer.c) */
#define MAX_ROUNDS 99
#define BURST 5 /* probes per record: landmarkd's default burst, all answered */

/* The columns the writer's COPY fills, in its order. */
#define COLUMNS                                                                                \
  "chip_id, landmark_id, protocol, suite, nonce, seq, handshake, probes, transcript_sig,"     \
  " rtt_ns, bound_m, est_speed_m_s, est_bound_m, probe_count, probes_sent, measured_at,"       \
  " measured_at_ns, landmark_sig"

typedef struct {
  const char *db;
  const char *dir;
  size_t rows;
  size_t chips;
  int rounds;
  unsigned batch_size; /* 0: landmarkd's default */
  const char *only;    /* "writer" or "copy": time one side only (for profiling) */
} options;

static void die(const char *what, const char *detail) {
  fprintf(stderr, "ingest: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static double now_s(void) { return (double)uv_hrtime() / 1e9; }

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Runs one statement that returns no rows; dies on failure. */
static void exec_ok(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) die(sql, PQerrorMessage(c));
  PQclear(r);
}

static long long count_rows(PGconn *c) {
  PGresult *r = PQexec(c, "SELECT count(*), count(DISTINCT nonce) FROM measurements");
  if (PQresultStatus(r) != PGRES_TUPLES_OK) die("counting rows", PQerrorMessage(c));
  long long n = atoll(PQgetvalue(r, 0, 0)), distinct = atoll(PQgetvalue(r, 0, 1));
  PQclear(r);
  if (n != distinct) die("duplicate rows in the table", NULL);
  return n;
}

/* Empties the table and settles the server so that a checkpoint from the
 * previous pass does not land in the next one. */
static void reset_table(PGconn *c) {
  exec_ok(c, "TRUNCATE measurements");
  exec_ok(c, "CHECKPOINT");
}

/* ---- rows ---------------------------------------------------------------- */

/* A chip's session with the landmark: the handshake both signed and the
 * session key (the chip derives the same one). */
typedef struct {
  cl_handshake hs;
  uint8_t key[CL_SESSION_KEY_LEN];
} session;

static void open_session(session *s, const cl_key *lm, const cl_key *chip) {
  memset(s, 0, sizeof *s);
  s->hs.suite = CL_SUITE_ED25519_X25519;
  memcpy(s->hs.landmark, cl_key_public(lm), CL_PK_LEN);
  memcpy(s->hs.chip, cl_key_public(chip), CL_PK_LEN);
  uint8_t lm_sk[CL_EPH_SK_LEN], chip_sk[CL_EPH_SK_LEN];
  cl_eph_generate(s->hs.landmark_eph, lm_sk);
  cl_eph_generate(s->hs.chip_eph, chip_sk);
  sodium_memzero(chip_sk, sizeof chip_sk); /* the chip's half of the key is not needed here */
  randombytes_buf(s->hs.landmark_nonce, CL_NONCE_LEN);
  randombytes_buf(s->hs.chip_nonce, CL_NONCE_LEN);
  int rc = cl_hs_sign_landmark(&s->hs, lm);
  if (rc == CL_OK) rc = cl_hs_sign_chip(&s->hs, chip);
  if (rc == CL_OK) rc = cl_session_key(&s->hs, CL_SIDE_LANDMARK, lm_sk, s->key);
  sodium_memzero(lm_sk, sizeof lm_sk);
  if (rc != CL_OK) die("handshake", cl_strerror(rc));
}

/* Builds n records spread over the chips, BURST probes each, like the
 * landmark does at the end of a burst. */
static cl_store_row *make_rows(size_t n, const cl_key *lm, cl_key **chips, const int64_t *ids,
                               size_t nchips) {
  cl_store_row *rows = calloc(n, sizeof *rows);
  session *sess = calloc(nchips, sizeof *sess);
  if (!rows || !sess) die("out of memory", NULL);
  for (size_t c = 0; c < nchips; c++) open_session(&sess[c], lm, chips[c]);
  uint64_t base = realtime_ns() - (uint64_t)n * 1000u;
  for (size_t i = 0; i < n; i++) {
    cl_store_row *row = &rows[i];
    size_t c = i % nchips;
    cl_measurement *m = &row->m;
    m->hs = sess[c].hs;
    m->count = BURST;
    for (uint32_t k = 0; k < BURST; k++) {
      cl_probe_entry *e = &m->probes[k];
      e->seq = (uint64_t)(i / nchips) * BURST + k;
      randombytes_buf(e->nonce, CL_NONCE_LEN);
      cl_answer_mac(sess[c].key, m->hs.suite, m->hs.landmark, m->hs.chip, e->seq, e->nonce,
                    e->mac);
      e->rtt_ns = 50000u + randombytes_uniform(50000000u);
    }
    m->rtt_ns = m->probes[cl_measurement_fastest(m)].rtt_ns;
    m->probes_sent = BURST;
    m->measured_unix_ns = base + (uint64_t)i * 1000u + m->rtt_ns;
    if (cl_transcript_sign(&m->hs, m->probes, m->count, chips[c], m->transcript_sig) != CL_OK ||
        cl_measurement_sign(m, lm) != CL_OK)
      die("signing a record", NULL);
    row->chip_id = ids[c];
    row->bound_m = cl_bound_m(m->rtt_ns, CL_SPEED_C);
    row->est_speed = CL_SPEED_C;
    row->est_bound_m = row->bound_m;
  }
  for (size_t c = 0; c < nchips; c++) sodium_memzero(sess[c].key, CL_SESSION_KEY_LEN);
  free(sess);
  return rows;
}

/* ---- the writer pass ----------------------------------------------------- */

typedef struct {
  int connected;
  int fatal;
  int stopped;
} writer_events;

static void on_chips(void *arg, cl_store_chip *chips, size_t n) {
  (void)n;
  ((writer_events *)arg)->connected = 1;
  free(chips);
}

static void on_fatal(void *arg, const char *why) {
  ((writer_events *)arg)->fatal = 1;
  fprintf(stderr, "ingest: writer: %s\n", why);
}

static void on_stopped(void *arg) { ((writer_events *)arg)->stopped = 1; }

typedef struct {
  double seconds;
  uint64_t batches;
} writer_result;

/* Starts a writer, waits until it has connected (its first enrolled-set
 * refresh arrives), then times pushing every row until all are written. */
static writer_result writer_pass(const cl_landmark_config *cfg, const uint8_t pk[CL_PK_LEN],
                                 const cl_store_row *rows, size_t n) {
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0) die("uv_loop_init", NULL);
  writer_events ev = {0};
  lm_writer_callbacks cb = {.on_chips = on_chips, .on_fatal = on_fatal, .arg = &ev};
  lm_writer *w = NULL;
  char err[512];
  int rc = lm_writer_create(&w, &loop, cfg, pk, cb, err, sizeof err);
  if (rc != CL_OK) die("lm_writer_create", err);
  while (!ev.connected && !ev.fatal) uv_run(&loop, UV_RUN_ONCE);
  if (ev.fatal) die("the writer could not start", NULL);

  double t0 = now_s();
  for (size_t i = 0; i < n; i++)
    if (lm_writer_push(w, &rows[i]) != CL_OK) die("lm_writer_push refused a row", NULL);
  lm_writer_stats st;
  for (;;) {
    lm_writer_get_stats(w, &st);
    if (st.rows_written + st.rows_rejected + st.rows_spooled >= n) break;
    uv_sleep(1);
  }
  double t1 = now_s();
  if (st.rows_rejected || st.rows_spooled || st.rows_dropped)
    fprintf(stderr, "ingest: writer: rejected=%" PRIu64 " spooled=%" PRIu64 " dropped=%" PRIu64 "\n",
            st.rows_rejected, st.rows_spooled, st.rows_dropped);
  if (st.rows_written != n) die("the writer did not write every row", NULL);

  lm_writer_stop(w, 10000, on_stopped, &ev);
  while (!ev.stopped) uv_run(&loop, UV_RUN_ONCE);
  lm_writer_destroy(&w);
  if (uv_loop_close(&loop) != 0) die("uv_loop_close: handles left open", NULL);
  return (writer_result){.seconds = t1 - t0, .batches = st.batches};
}

/* ---- the raw COPY -------------------------------------------------------- */

typedef struct {
  char *buf;
  size_t len, cap;
} text;

/* Reads the stored rows back as COPY text, in insertion order. */
static text dump_rows(PGconn *c) {
  PGresult *r = PQexec(c, "COPY (SELECT " COLUMNS " FROM measurements ORDER BY id) TO STDOUT");
  if (PQresultStatus(r) != PGRES_COPY_OUT) die("COPY TO STDOUT", PQerrorMessage(c));
  PQclear(r);
  text t = {0};
  char *line;
  int len;
  while ((len = PQgetCopyData(c, &line, 0)) > 0) {
    if (t.len + (size_t)len > t.cap) {
      t.cap = t.cap ? t.cap * 2 : 1u << 20;
      while (t.cap < t.len + (size_t)len) t.cap *= 2;
      t.buf = realloc(t.buf, t.cap);
      if (!t.buf) die("out of memory", NULL);
    }
    memcpy(t.buf + t.len, line, (size_t)len);
    t.len += (size_t)len;
    PQfreemem(line);
  }
  if (len != -1) die("COPY TO STDOUT", PQerrorMessage(c));
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK) die("COPY TO STDOUT", PQerrorMessage(c));
    PQclear(r);
  }
  return t;
}

/* Times one COPY FROM STDIN of the text, in chunks of 64 KiB. */
static double copy_pass(PGconn *c, const text *t) {
  double t0 = now_s();
  PGresult *r = PQexec(c, "COPY measurements (" COLUMNS ") FROM STDIN");
  if (PQresultStatus(r) != PGRES_COPY_IN) die("COPY FROM STDIN", PQerrorMessage(c));
  PQclear(r);
  for (size_t off = 0; off < t->len;) {
    size_t k = t->len - off < 65536 ? t->len - off : 65536;
    if (PQputCopyData(c, t->buf + off, (int)k) != 1) die("PQputCopyData", PQerrorMessage(c));
    off += k;
  }
  if (PQputCopyEnd(c, NULL) != 1) die("PQputCopyEnd", PQerrorMessage(c));
  while ((r = PQgetResult(c)) != NULL) {
    if (PQresultStatus(r) != PGRES_COMMAND_OK) die("COPY FROM STDIN", PQerrorMessage(c));
    PQclear(r);
  }
  return now_s() - t0;
}

/* ---- set-up -------------------------------------------------------------- */

static void parse_args(int argc, char **argv, options *o) {
  *o = (options){.rows = 200000, .chips = 64, .rounds = 5};
  /* Every option takes a value: they come in pairs. */
  for (int i = 1; i < argc; i += 2) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) die("missing value for", a);
    if (!strcmp(a, "--db"))
      o->db = v;
    else if (!strcmp(a, "--dir"))
      o->dir = v;
    else if (!strcmp(a, "--rows"))
      o->rows = strtoul(v, NULL, 10);
    else if (!strcmp(a, "--chips"))
      o->chips = strtoul(v, NULL, 10);
    else if (!strcmp(a, "--rounds"))
      o->rounds = atoi(v);
    else if (!strcmp(a, "--batch-size"))
      o->batch_size = (unsigned)strtoul(v, NULL, 10);
    else if (!strcmp(a, "--only"))
      o->only = v;
    else
      die("unknown option", a);
  }
  if (!o->db || !o->dir)
    die("usage: ingest --db CONNINFO --dir WORKDIR [--rows N] [--chips N] [--rounds N]"
        " [--batch-size N] [--only writer|copy]",
        NULL);
  if (o->rows < 1 || o->rows > MAX_ROWS) die("--rows must be 1 ... 200000", NULL);
  if (o->chips < 1 || o->chips > MAX_CHIPS) die("--chips must be 1 ... 1000", NULL);
  if (o->rounds < 1 || o->rounds > MAX_ROUNDS) die("--rounds must be 1 ... 99", NULL);
}

/* Writes a landmarkd.conf that sets only the required keys (and the spool
 * path inside the work directory) and loads it, so that every other
 * setting is landmarkd's default. */
static void load_config(const options *o, const cl_key *lm, cl_landmark_config *cfg) {
  char key_path[PATH_MAX], spool[PATH_MAX];
  snprintf(key_path, sizeof key_path, "%s/ingest-lm.key", o->dir);
  snprintf(spool, sizeof spool, "%s/ingest.spool", o->dir);
  unlink(key_path);
  unlink(spool);
  if (cl_key_save(lm, key_path) != CL_OK) die("cannot write", key_path);
  tu_landmark_opts lo = {.file = "ingest.conf", .name = "ingest", .key = key_path, .lat = 0,
                         .lon = 0, .conninfo = o->db, .spool_path = spool,
                         .batch_size = (int)o->batch_size}; /* 0: not written */
  char *conf_path = tu_conf_landmark_write(o->dir, &lo);
  if (!conf_path) die("cannot write the config in", o->dir);
  char err[512];
  if (cl_landmark_config_load(conf_path, cfg, err, sizeof err) != CL_OK) die(conf_path, err);
  free(conf_path);
}

int main(int argc, char **argv) {
  options o;
  parse_args(argc, argv, &o);
  if (sodium_init() < 0) die("sodium_init failed", NULL);
  cl_log_set_prog("ingest");
  cl_log_set_level(CL_LOG_WARN);

  cl_store *s = NULL;
  char err[512];
  if (cl_store_connect(&s, o.db, err, sizeof err) != CL_OK) die("connect", err);
  int applied = 0;
  if (cl_store_migrate(s, &applied, err, sizeof err) != CL_OK) die("migrate", err);
  cl_key *lm = NULL;
  if (cl_key_generate(&lm) != CL_OK) die("keygen", NULL);
  int64_t lm_id;
  if (cl_store_landmark_add(s, "ingest", cl_key_public(lm), 0, 0, &lm_id, err, sizeof err) !=
      CL_OK)
    die("landmark add", err);
  cl_key **chips = calloc(o.chips, sizeof *chips);
  int64_t *ids = calloc(o.chips, sizeof *ids);
  if (!chips || !ids) die("out of memory", NULL);
  for (size_t i = 0; i < o.chips; i++) {
    char serial[32];
    snprintf(serial, sizeof serial, "INGEST-%zu", i);
    if (cl_key_generate(&chips[i]) != CL_OK) die("keygen", NULL);
    if (cl_store_chip_enroll(s, cl_key_public(chips[i]), serial, "bench", 0, 0, &ids[i], err,
                             sizeof err) != CL_OK)
      die("chip enroll", err);
  }
  cl_store_destroy(&s);

  cl_landmark_config cfg;
  load_config(&o, lm, &cfg);
  PGconn *c = PQconnectdb(o.db);
  if (PQstatus(c) != CONNECTION_OK) die("connect", PQerrorMessage(c));

  double t = now_s();
  cl_store_row *rows = make_rows(o.rows, lm, chips, ids, o.chips);
  printf("setup rows=%zu chips=%zu sign_s=%.2f batch_size=%u flush_interval_ms=%u\n", o.rows,
         o.chips, now_s() - t, cfg.batch_size, cfg.flush_interval_ms);

  /* Warm-up through the writer; its stored rows become the COPY text. */
  reset_table(c);
  writer_result wu = writer_pass(&cfg, cl_key_public(lm), rows, o.rows);
  if (count_rows(c) != (long long)o.rows) die("warm-up: row count differs", NULL);
  text dump = dump_rows(c);
  printf("warmup writer_s=%.3f copy_text_bytes=%zu\n", wu.seconds, dump.len);
  fflush(stdout);

  double wr[MAX_ROUNDS], cp[MAX_ROUNDS], ratio[MAX_ROUNDS];
  for (int r = 0; r < o.rounds; r++) {
    double ws = NAN, cs = NAN;
    uint64_t batches = 0;
    for (int k = 0; k < 2; k++) {
      int writer_now = (k == 0) == (r % 2 == 0); /* alternate which goes first */
      if (o.only && strcmp(o.only, writer_now ? "writer" : "copy") != 0) continue;
      reset_table(c);
      if (writer_now) {
        writer_result res = writer_pass(&cfg, cl_key_public(lm), rows, o.rows);
        ws = res.seconds;
        batches = res.batches;
      } else {
        cs = copy_pass(c, &dump);
      }
      if (count_rows(c) != (long long)o.rows)
        die(writer_now ? "writer: row count differs" : "copy: row count differs", NULL);
    }
    wr[r] = (double)o.rows / ws;
    cp[r] = (double)o.rows / cs;
    ratio[r] = wr[r] / cp[r];
    printf("round %d first=%s writer_s=%.3f writer_rows_s=%.0f batches=%" PRIu64
           " copy_s=%.3f copy_rows_s=%.0f ratio=%.3f\n",
           r + 1, r % 2 == 0 ? "writer" : "copy", ws, wr[r], batches, cs, cp[r], ratio[r]);
    fflush(stdout);
  }
  double mw = median(wr, o.rounds), mc = median(cp, o.rounds), mr = median(ratio, o.rounds);
  printf("summary rows=%zu rounds=%d writer_rows_s=%.0f copy_rows_s=%.0f ratio=%.3f "
         "paired_ratio=%.3f\n",
         o.rows, o.rounds, mw, mc, mw / mc, mr);

  reset_table(c);
  PQfinish(c);
  free(dump.buf);
  free(rows);
  for (size_t i = 0; i < o.chips; i++) cl_key_destroy(&chips[i]);
  free(chips);
  free(ids);
  cl_key_destroy(&lm);
  return 0;
}
