/*
 * End-to-end: the real landmarkd and chipagent binaries as separate
 * processes on loopback, a real PostgreSQL, and an in-test rogue agent that
 * speaks the wire protocol itself. Checks that honest chips are measured and
 * their records verify offline, that an unenrolled chip is refused, and that
 * a bad signature, a replayed response and a late response are each rejected
 * with their own error code and counted, while the honest chip keeps being
 * measured. This landmark checks signatures on its event loop
 * (verify_threads = 0); test_hostile runs the same checks through the
 * verify threads, the default.
 */
#define _GNU_SOURCE
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_msg.h"
#include "cl_probe.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <check.h>
#include <libpq-fe.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEADLINE_MS 300

/* Strings a test allocates live until its end; gc_free releases them so the
 * sanitizer build's leak check stays meaningful. */
static void *g_gc[64];
static int g_ngc;
static char *gc(char *p) {
  ck_assert(g_ngc < 64);
  g_gc[g_ngc++] = p;
  return p;
}
static void gc_free(void) {
  while (g_ngc > 0) free(g_gc[--g_ngc]);
}

static char *keygen(const char *dir, const char *name, const char *log) {
  char *path = NULL;
  ck_assert(asprintf(&path, "%s/%s.key", dir, name) > 0);
  ck_assert_int_eq(tu_cli(log, "keygen", "--out", path, NULL),
                   0);
  return path;
}

static void pubkey_hex(const char *keyfile, char out[65]) {
  cl_key *k = NULL;
  char err[128];
  ck_assert_int_eq(cl_key_load(&k, keyfile, err, sizeof err), CL_OK);
  cl_pk_to_hex(cl_key_public(k), out);
  cl_key_destroy(&k);
}

/* ---- a minimal blocking agent speaking the wire protocol ---------------- */

typedef struct {
  int fd;
  cl_frame_asm fa;
  uint8_t buf[4096];
  size_t have, off;
} rogue;

static void rogue_connect(rogue *r, int port) {
  memset(r, 0, sizeof *r);
  r->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_msg(connect(r->fd, (struct sockaddr *)&a, sizeof a) == 0, "connect to landmarkd");
  int one = 1;
  setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  cl_frame_asm_init(&r->fa, CL_FRAME_MAX);
}

static void rogue_send(rogue *r, const cl_msg *m) {
  uint8_t buf[8192];
  size_t len;
  ck_assert_int_eq(cl_msg_encode(m, buf, sizeof buf, &len), CL_OK);
  ck_assert_int_eq(write(r->fd, buf, len), (ssize_t)len);
}

/* Reads the next message; 0 on success, -1 on timeout or close. */
static int rogue_recv(rogue *r, cl_msg *m, int timeout_ms) {
  for (;;) {
    if (r->off < r->have) {
      const uint8_t *frame;
      size_t flen, used;
      int rc = cl_frame_asm_feed(&r->fa, r->buf + r->off, r->have - r->off, &used, &frame, &flen);
      ck_assert_int_ge(rc, 0);
      r->off += used;
      if (rc == 1) {
        char err[128];
        ck_assert_int_eq(cl_msg_decode(frame, flen, m, err, sizeof err), CL_OK);
        return 0;
      }
    }
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0) return -1;
    ssize_t n = read(r->fd, r->buf, sizeof r->buf);
    if (n <= 0) return -1;
    r->have = (size_t)n;
    r->off = 0;
  }
}

static void rogue_next_challenge(rogue *r, cl_challenge *ch) {
  cl_msg m;
  for (;;) {
    ck_assert_msg(rogue_recv(r, &m, 10000) == 0, "no challenge within 10 s");
    if (m.type == CL_MSG_CHALLENGE) break;
    ck_assert_msg(m.type == CL_MSG_ERROR, "unexpected message %s", cl_msg_type_name(m.type));
  }
  *ch = m.u.challenge;
  ck_assert_int_eq(cl_challenge_verify(ch), CL_OK);
}

static void rogue_respond(rogue *r, const cl_challenge *ch, const uint8_t sig[CL_SIG_LEN]) {
  cl_msg m;
  m.type = CL_MSG_RESPONSE;
  memcpy(m.u.response.chip, ch->chip, CL_PK_LEN);
  memcpy(m.u.response.nonce, ch->nonce, CL_NONCE_LEN);
  memcpy(m.u.response.sig, sig, CL_SIG_LEN);
  rogue_send(r, &m);
}

/* Waits for an Error frame (skipping challenges) and returns its code. */
static cl_wire_error rogue_expect_error(rogue *r) {
  cl_msg m;
  for (;;) {
    ck_assert_msg(rogue_recv(r, &m, 5000) == 0, "no error frame within 5 s");
    if (m.type == CL_MSG_ERROR) return m.u.error.code;
  }
}

/* Value of key=N in the last line of log containing "msg=stats". */
static long long last_stat(const char *log, const char *key) {
  char *s = tu_read_file(log);
  ck_assert(s != NULL);
  char *line = NULL;
  for (char *p = strstr(s, "msg=stats"); p; p = strstr(p + 1, "msg=stats")) line = p;
  ck_assert_msg(line != NULL, "no stats line in %s", log);
  char needle[64];
  snprintf(needle, sizeof needle, " %s=", key);
  char *eol = strchr(line, '\n');
  if (eol) *eol = '\0';
  char *v = strstr(line, needle);
  ck_assert_msg(v != NULL, "no %s in stats line", key);
  long long n = strtoll(v + strlen(needle), NULL, 10);
  free(s);
  return n;
}

START_TEST(test_honest_and_hostile) {
  ck_assert_int_ge(sodium_init(), 0);
  char *dir = gc(tu_tmpdir("chiploc-e2e"));
  char log[512], lmlog[512], aglog[512];
  snprintf(log, sizeof log, "%s/cli.log", dir);
  snprintf(lmlog, sizeof lmlog, "%s/landmarkd.log", dir);
  snprintf(aglog, sizeof aglog, "%s/chipagent.log", dir);
  char *db = gc(tu_db_create("chiploc_e2e"));

  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", db, NULL),
                   0);
  char *lkey = gc(keygen(dir, "landmark", log));
  char *akey = gc(keygen(dir, "chip-a", log));
  char *bkey = gc(keygen(dir, "chip-b", log));
  char *ukey = gc(keygen(dir, "chip-u", log));
  char lhex[65], ahex[65];
  pubkey_hex(lkey, lhex);
  pubkey_hex(akey, ahex);
  ck_assert_int_eq(tu_cli(log, "landmark", "add", "--db", db, "--name", "lm-paris", "--pubkey", lhex,
                       "--lat", "48.8566", "--lon", "2.3522", NULL),
                   0);
  ck_assert_int_eq(tu_cli(log, "chip", "enroll", "--db", db, "--pubkey-file", akey, "--serial",
                       "A-0001", "--operator", "honest-dc", "--site", "48.85,2.35", NULL),
                   0);
  ck_assert_int_eq(tu_cli(log, "chip", "enroll", "--db", db, "--pubkey-file", bkey, "--serial",
                       "B-0001", "--operator", "rogue-dc", "--site", "48.85,2.35", NULL),
                   0);

  int port = tu_free_port();
  char conf[2048];
  snprintf(conf, sizeof conf,
           "[landmark]\nname = lm-paris\nkey = %s\nlisten = 127.0.0.1:%d\nlat = 48.8566\n"
           "lon = 2.3522\n\n[database]\nconninfo = %s\nflush_interval_ms = 100\n"
           "refresh_interval_s = 1\n\n[probe]\ninterval_s = 1\njitter = 0.1\nburst = 3\n"
           "burst_gap_ms = 20\ndeadline_ms = %d\nspeed = fibre\nverify_threads = 0\n\n[limits]\n"
           "idle_timeout_s = 30\nstats_interval_s = 1\n",
           lkey, port, db, DEADLINE_MS);
  char *lconf = gc(tu_write_file(dir, "landmarkd.conf", conf));
  char *lmbin = gc(tu_bin("server/landmarkd"));
  char *lm_argv[] = {lmbin, "--config", lconf, NULL};
  pid_t lm = tu_spawn(lm_argv, lmlog);
  ck_assert_msg(tu_wait_log(lmlog, "msg=listening", 1, 20000) == 0, "landmarkd did not listen");

  snprintf(conf, sizeof conf,
           "[agent]\nname = e2e-host\nbackoff_min_ms = 50\nbackoff_max_ms = 1000\n\n"
           "[landmark.paris]\naddress = 127.0.0.1:%d\npublic_key = %s\n\n[chip.a]\nkey = %s\n",
           port, lhex, akey);
  char *aconf = gc(tu_write_file(dir, "chipagent.conf", conf));
  char *agbin = gc(tu_bin("client/chipagent"));
  char *ag_argv[] = {agbin, "--config", aconf, NULL};
  pid_t ag = tu_spawn(ag_argv, aglog);

  /* The rogue agent: chip B is enrolled, chip U is not. */
  cl_key *bk = NULL, *uk = NULL;
  char err[128];
  ck_assert_int_eq(cl_key_load(&bk, bkey, err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_key_load(&uk, ukey, err, sizeof err), CL_OK);
  rogue r;
  rogue_connect(&r, port);
  cl_msg m;
  ck_assert_int_eq(rogue_recv(&r, &m, 5000), 0);
  ck_assert_int_eq(m.type, CL_MSG_HELLO);
  uint8_t nonce[CL_NONCE_LEN];
  memcpy(nonce, m.u.hello.session_nonce, CL_NONCE_LEN);
  cl_msg reg;
  memset(&reg, 0, sizeof reg);
  reg.type = CL_MSG_REGISTER;
  snprintf(reg.u.reg.agent, sizeof reg.u.reg.agent, "rogue");
  reg.u.reg.n = 2;
  memcpy(reg.u.reg.chips[0].chip, cl_key_public(bk), CL_PK_LEN);
  cl_register_sign(m.u.hello.landmark, nonce, bk, reg.u.reg.chips[0].proof);
  memcpy(reg.u.reg.chips[1].chip, cl_key_public(uk), CL_PK_LEN);
  cl_register_sign(m.u.hello.landmark, nonce, uk, reg.u.reg.chips[1].proof);
  rogue_send(&r, &reg);
  ck_assert_int_eq(rogue_recv(&r, &m, 5000), 0);
  ck_assert_int_eq(m.type, CL_MSG_REGISTER_RESULT);
  ck_assert_int_eq(m.u.reg_result.n, 2);
  ck_assert_int_eq(m.u.reg_result.r[0].accepted, 1);
  ck_assert_int_eq(m.u.reg_result.r[1].accepted, 0);
  ck_assert_int_eq(m.u.reg_result.r[1].reason, CL_REFUSE_NOT_ENROLLED);

  cl_challenge ch;
  uint8_t sig[CL_SIG_LEN];
  /* 1: a bad signature. */
  rogue_next_challenge(&r, &ch);
  cl_response_sign(&ch, bk, sig);
  sig[7] ^= 0x01;
  rogue_respond(&r, &ch, sig);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_BAD_SIGNATURE);
  /* 2: a valid answer, then the same answer again. */
  rogue_next_challenge(&r, &ch);
  cl_response_sign(&ch, bk, sig);
  rogue_respond(&r, &ch, sig);
  rogue_respond(&r, &ch, sig);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_REPLAY);
  /* 3: a valid answer after the deadline. */
  rogue_next_challenge(&r, &ch);
  tu_sleep_ms(DEADLINE_MS + 150);
  cl_response_sign(&ch, bk, sig);
  rogue_respond(&r, &ch, sig);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_LATE);
  /* 4: an answer for a chip this connection never registered. */
  cl_challenge other = ch;
  memcpy(other.chip, cl_key_public(uk), CL_PK_LEN);
  cl_response_sign(&other, uk, sig);
  rogue_respond(&r, &other, sig);
  ck_assert_int_eq(rogue_expect_error(&r), CL_ERR_NOT_REGISTERED);

  /* Meanwhile the honest chip keeps being measured. */
  char q[256];
  snprintf(q, sizeof q,
           "SELECT count(*) FROM measurements m JOIN chips c ON c.id = m.chip_id "
           "WHERE c.serial = 'A-0001' AND m.probe_count = 3");
  long long honest = 0;
  for (int i = 0; i < 100 && (honest = tu_sql_int(db, q)) < 4; i++) tu_sleep_ms(100);
  ck_assert_msg(honest >= 4, "honest chip has %lld full-burst measurements", honest);

  close(r.fd);
  cl_frame_asm_fini(&r.fa);
  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);

  ck_assert_int_ge(last_stat(lmlog, "rejected_bad_signature"), 1);
  ck_assert_int_ge(last_stat(lmlog, "rejected_replay"), 1);
  ck_assert_int_ge(last_stat(lmlog, "rejected_late"), 1);
  ck_assert_int_ge(last_stat(lmlog, "rejected_not_registered"), 1);
  ck_assert_int_ge(last_stat(lmlog, "refused_not_enrolled"), 1);
  ck_assert_int_ge(tu_count_in_file(lmlog, "reason=bad_signature"), 1);
  /* Everything the landmark measured was written before it exited. */
  long long measured = last_stat(lmlog, "measurements");
  ck_assert_int_gt(measured, 0);
  ck_assert_int_eq(tu_count_in_file(lmlog, "rows_unwritten=0"), 1);
  long long bad = -1;
  long long rows = tu_verify_measurements(db, (uint64_t)DEADLINE_MS * 1000000ull, &bad);
  ck_assert_int_eq(rows, measured);
  ck_assert_int_eq(bad, 0);
  /* The CLI table lists the honest chip at this landmark. */
  char tlog[512];
  snprintf(tlog, sizeof tlog, "%s/table.log", dir);
  ck_assert_int_eq(tu_cli(tlog, "measurements", "--db", db, NULL),
                   0);
  ck_assert_int_ge(tu_count_in_file(tlog, "A-0001"), 1);
  ck_assert_int_ge(tu_count_in_file(tlog, "lm-paris"), 1);
  cl_key_destroy(&bk);
  cl_key_destroy(&uk);
  gc_free();
}
END_TEST

START_TEST(test_unregistered_landmark_is_fatal) {
  /* A landmark whose key was never added exits with a clear error. */
  char *dir = gc(tu_tmpdir("chiploc-e2e-unreg"));
  char log[512], lmlog[512];
  snprintf(log, sizeof log, "%s/cli.log", dir);
  snprintf(lmlog, sizeof lmlog, "%s/landmarkd.log", dir);
  char *db = gc(tu_db_create("chiploc_e2e_unreg"));
  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", db, NULL),
                   0);
  char *lkey = gc(keygen(dir, "landmark", log));
  char conf[2048];
  snprintf(conf, sizeof conf,
           "[landmark]\nname = ghost\nkey = %s\nlisten = 127.0.0.1:%d\nlat = 1\nlon = 2\n\n"
           "[database]\nconninfo = %s\n",
           lkey, tu_free_port(), db);
  char *lconf = gc(tu_write_file(dir, "landmarkd.conf", conf));
  char *lmbin = gc(tu_bin("server/landmarkd"));
  char *argv[] = {lmbin, "--config", lconf, NULL};
  ck_assert_int_eq(tu_run(argv, lmlog), 1);
  ck_assert_int_eq(tu_count_in_file(lmlog, "is not registered"), 1);
  gc_free();
}
END_TEST

START_TEST(test_cli_errors) {
  char *dir = gc(tu_tmpdir("chiploc-e2e-cli"));
  char log[512];
  snprintf(log, sizeof log, "%s/cli.log", dir);
  char *key = gc(keygen(dir, "k", log));
  /* keygen refuses to overwrite. */
  ck_assert_int_eq(tu_cli(log, "keygen", "--out", key, NULL),
                   1);
  ck_assert_int_eq(tu_count_in_file(log, "refusing to overwrite"), 1);
  /* pubkey prints the same key keygen printed. */
  char hex[65];
  pubkey_hex(key, hex);
  ck_assert_int_eq(tu_cli(log, "pubkey", key, NULL),
                   0);
  ck_assert_int_eq(tu_count_in_file(log, hex), 2);
  /* Bad coordinates and keys are named. */
  ck_assert_int_eq(tu_cli(log, "landmark", "add", "--db", "dbname=none", "--name", "x", "--pubkey",
                       hex, "--lat", "91", "--lon", "0", NULL),
                   2);
  ck_assert_int_ge(tu_count_in_file(log, "--lat 91"), 1);
  ck_assert_int_eq(tu_cli(log, "chip", "enroll", "--db", "dbname=none", "--pubkey", "abc", "--serial",
                       "s", "--operator", "o", "--site", "1,2", NULL),
                   2);
  ck_assert_int_ge(tu_count_in_file(log, "--pubkey"), 1);
  ck_assert_int_eq(tu_cli(log, "frobnicate", NULL),
                   2);
  /* Config errors name the file and line. */
  char *bad = gc(tu_write_file(dir, "bad.conf", "[landmark]\nname = x\n[probe]\nburst = 0\n"));
  char *lmbin = gc(tu_bin("server/landmarkd"));
  char *argv[] = {lmbin, "--config", bad, NULL};
  char lmlog[512];
  snprintf(lmlog, sizeof lmlog, "%s/lm.log", dir);
  ck_assert_int_eq(tu_run(argv, lmlog), 2);
  ck_assert_int_ge(tu_count_in_file(lmlog, "bad.conf:4"), 1);
  gc_free();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("e2e");
  TCase *tc = tcase_create("processes");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_honest_and_hostile);
  tcase_add_test(tc, test_unregistered_landmark_is_fatal);
  tcase_add_test(tc, test_cli_errors);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
