/*
 * End-to-end test of the user-space distance simulation (tests/sim/).
 *
 * test_fleet_physics: the real landmarkd at Paris on loopback, a real
 * PostgreSQL, and fleetsim answering for 20 simulated chips (10 honest in
 * the Paris area, 5 at Frankfurt, 3 at New York, 2 going dark after 3 s).
 * From the measurements table it checks that every chip's fastest RTT is at
 * least the simulated physical round trip and at most 5 ms more, that the
 * bound at c of every Paris-area chip covers its true distance, that New
 * York is at least ~56 ms away, and that the dark chips stop being measured.
 *
 * test_rogue_landmark: an in-test landmark speaking the wire protocol itself
 * times fleetsim directly: a Frankfurt chip answers a Paris landmark no
 * sooner than the simulated round trip, with valid proofs and signatures;
 * a challenge with a bad landmark signature is still answered first, then
 * the connection is dropped with ERROR_BAD_LANDMARK.
 *
 * test_delayproxy: an echo exchange through delayproxy --delay-ms 20 takes
 * at least 40 ms, jittered chunks arrive complete and in order, and a close
 * on one side reaches the other.
 */
#define _GNU_SOURCE
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_geo.h"
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
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PARIS_LAT 48.8566
#define PARIS_LON 2.3522
#define FLEET_SEED "4242"
#define N_CHIPS 20
#define RUN_MS 9000 /* fleetsim runs this long */
#define DARK_AFTER_S 3.0
#define SLACK_NS 5000000ull /* answers may leave up to 5 ms after their simulated time */

/* The documented key derivation, computed here independently of fleetsim. */
static void expected_pk_hex(uint64_t seed, uint64_t index, char out[CL_PK_HEX_LEN + 1]) {
  static const char ctx[] = "chiploc-sim chip";
  uint8_t in[sizeof ctx - 1 + 16], sd[32];
  memcpy(in, ctx, sizeof ctx - 1);
  cl_put_be64(in + sizeof ctx - 1, seed);
  cl_put_be64(in + sizeof ctx - 1 + 8, index);
  crypto_hash_sha256(sd, in, sizeof in);
  cl_key *k = NULL;
  ck_assert_int_eq(cl_key_from_seed(&k, sd), CL_OK);
  cl_pk_to_hex(cl_key_public(k), out);
  cl_key_destroy(&k);
}

typedef struct {
  const char *mode;
  double lat, lon; /* true position */
  double extra_ms; /* mode delay */
  double dark_s;   /* mode dark */
  int paris;       /* in the Paris area: bound at c must cover the true distance */
} chip_spec;

static void fleet_spec(chip_spec spec[N_CHIPS]) {
  for (int i = 0; i < 10; i++) /* honest, Paris area, up to ~8 km from the landmark */
    spec[i] = (chip_spec){"honest", PARIS_LAT + 0.005 * i, PARIS_LON + 0.007 * i, 0, 0, 1};
  for (int i = 10; i < 15; i++) /* Frankfurt, ~480 km: declared at Paris */
    spec[i] = (chip_spec){"smuggled", 50.1109 + 0.002 * (i - 10), 8.6821, 0, 0, 0};
  spec[15] = (chip_spec){"relay", 40.7128, -74.0060, 0, 0, 0}; /* New York */
  spec[16] = (chip_spec){"relay", 40.7306, -73.9352, 0, 0, 0};
  spec[17] = (chip_spec){"delay", 40.6892, -74.0445, 10, 0, 0};
  spec[18] = (chip_spec){"dark", PARIS_LAT - 0.01, PARIS_LON, 0, DARK_AFTER_S, 1};
  spec[19] = (chip_spec){"dark", PARIS_LAT - 0.02, PARIS_LON + 0.01, 0, DARK_AFTER_S, 1};
}

typedef struct {
  long long count;
  long long min_rtt_ns;
  long long min_bound_m;
  long long last_measured_ns;
} chip_result;

/* Per-chip aggregates over the measurements table, by serial sim-NN. */
static void fetch_results(const char *conninfo, chip_result res[N_CHIPS]) {
  PGconn *c = PQconnectdb(conninfo);
  ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, "SELECT c.serial, count(m.rtt_ns), coalesce(min(m.rtt_ns), -1), "
                          "coalesce(min(m.bound_m), -1), coalesce(max(m.measured_at_ns), -1) "
                          "FROM chips c LEFT JOIN measurements m ON m.chip_id = c.id "
                          "GROUP BY c.serial");
  ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
  ck_assert_int_eq(PQntuples(r), N_CHIPS);
  for (int i = 0; i < PQntuples(r); i++) {
    int idx = -1;
    ck_assert_int_eq(sscanf(PQgetvalue(r, i, 0), "sim-%d", &idx), 1);
    ck_assert(idx >= 0 && idx < N_CHIPS);
    res[idx].count = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    res[idx].min_rtt_ns = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    res[idx].min_bound_m = strtoll(PQgetvalue(r, i, 3), NULL, 10);
    res[idx].last_measured_ns = strtoll(PQgetvalue(r, i, 4), NULL, 10);
  }
  PQclear(r);
  PQfinish(c);
}

START_TEST(test_fleet_physics) {
  char *dir = tu_own(tu_tmpdir("chiploc-sim"));
  char *log = tu_fmt("%s/cli.log", dir), *lmlog = tu_fmt("%s/landmarkd.log", dir);
  char *simlog = tu_fmt("%s/fleetsim.log", dir), *keyscsv = tu_fmt("%s/keys.csv", dir);
  char *db = tu_own(tu_db_create("chiploc_sim"));
  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", db, NULL), 0);

  /* The landmark. */
  char *lkey = tu_keygen(dir, "landmark", log);
  char *lhex = tu_key_hex(lkey);
  ck_assert_int_eq(tu_cli(log, "landmark", "add", "--db", db, "--name", "lm-paris", "--pubkey",
                           lhex, "--lat", "48.8566", "--lon", "2.3522", NULL),
                   0);

  /* The chips' public keys from `fleetsim keys`, checked against the
   * documented derivation, and enrolled at their declared sites: the
   * smuggled and relayed chips are declared at Paris. */
  char *simbin = tu_own(tu_bin("tests/sim/fleetsim"));
  char *keys_argv[] = {simbin, "keys", "--seed", FLEET_SEED, "--count", "20", NULL};
  ck_assert_int_eq(tu_run(keys_argv, keyscsv), 0);
  char *keys = tu_own(tu_read_file(keyscsv));
  chip_spec spec[N_CHIPS];
  fleet_spec(spec);
  char *line = keys;
  for (int i = 0; i < N_CHIPS; i++) {
    unsigned idx = 0;
    char hex[CL_PK_HEX_LEN + 1], want[CL_PK_HEX_LEN + 1];
    ck_assert_msg(sscanf(line, "%u,%64s", &idx, hex) == 2, "keys line %d: %.80s", i, line);
    ck_assert_int_eq(idx, i);
    expected_pk_hex(4242, (uint64_t)i, want);
    ck_assert_str_eq(hex, want);
    int declared_paris =
        strcmp(spec[i].mode, "smuggled") == 0 || strcmp(spec[i].mode, "relay") == 0;
    char serial[16], site[64];
    snprintf(serial, sizeof serial, "sim-%02d", i);
    snprintf(site, sizeof site, "%.6f,%.6f", declared_paris ? PARIS_LAT : spec[i].lat,
             declared_paris ? PARIS_LON : spec[i].lon);
    ck_assert_int_eq(tu_cli(log, "chip", "enroll", "--db", db, "--pubkey", hex, "--serial", serial,
                             "--operator", "sim-operator", "--site", site, NULL),
                     0);
    line = strchr(line, '\n');
    ck_assert(line != NULL);
    line++;
  }
  ck_assert_int_eq(*line, '\0');

  /* The fleet and landmark files. */
  size_t cap = 4096, len = 0;
  char *fleet = tu_own(malloc(cap));
  len += (size_t)snprintf(fleet + len, cap - len,
                          "index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s\n");
  for (int i = 0; i < N_CHIPS; i++)
    len += (size_t)snprintf(fleet + len, cap - len, "%d,%.6f,%.6f,%s,%g,%g\n", i, spec[i].lat,
                            spec[i].lon, spec[i].mode, spec[i].extra_ms, spec[i].dark_s);
  ck_assert(len < cap);
  char *fleetcsv = tu_own(tu_write_file(dir, "fleet.csv", fleet));
  int port = tu_free_port();
  char *lmcsv = tu_own(tu_write_file(
      dir, "landmarks.csv",
      tu_fmt("name,address,public_key,lat,lon\nlm-paris,127.0.0.1:%d,%s,48.8566,2.3522\n", port,
          lhex)));

  tu_landmark_opts lo = tu_landmark_defaults();
  lo.key = lkey;
  lo.port = port;
  lo.conninfo = db;
  lo.burst_gap_ms = 50;
  lo.deadline_ms = 1000;
  lo.speed = "fibre";
  pid_t lm = tu_landmarkd_start(tu_landmark_conf(dir, &lo), lmlog);

  char *sim_argv[] = {simbin,   "run",      "--fleet", fleetcsv, "--landmarks", lmcsv,
                      "--seed", FLEET_SEED, "--speed", "fibre",  NULL};
  uint64_t t0 = tu_mono_ns();
  pid_t sim = tu_spawn(sim_argv, simlog);
  ck_assert_msg(tu_wait_log(simlog, "msg=started", 1, 20000) == 0, "fleetsim did not start");
  uint64_t elapsed_ms = (tu_mono_ns() - t0) / 1000000u;
  if (elapsed_ms < RUN_MS) tu_sleep_ms((int)(RUN_MS - elapsed_ms));
  ck_assert_int_eq(tu_stop(sim, SIGTERM, 10000), 0);
  tu_sleep_ms(300); /* let the last batch reach the database */
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);

  /* The simulator itself saw nothing wrong. */
  ck_assert_int_eq(tu_last_stat(simlog, "refused"), 0);
  ck_assert_int_eq(tu_last_stat(simlog, "bad_landmark_sig"), 0);
  ck_assert_int_eq(tu_last_stat(simlog, "unknown_chip"), 0);
  ck_assert_int_ge(tu_last_stat(simlog, "dark_ignored"), 1);
  ck_assert_int_ge(tu_last_stat(simlog, "answered"), 3 * N_CHIPS);

  chip_result res[N_CHIPS];
  memset(res, 0, sizeof res);
  fetch_results(db, res);
  long long live_last_min = -1;
  for (int i = 0; i < N_CHIPS; i++) {
    const chip_spec *sp = &spec[i];
    const chip_result *r = &res[i];
    ck_assert_msg(r->count >= 1, "chip %d (%s) was never measured", i, sp->mode);
    double d = cl_geo_distance_m(sp->lat, sp->lon, PARIS_LAT, PARIS_LON);
    double physical_ns = 2.0 * d / CL_SPEED_FIBRE * 1e9 + sp->extra_ms * 1e6;
    printf("chip %2d %-8s %9.0f m  simulated %10.0f ns  min rtt %10lld ns  bound@c %8lld m  "
           "records %lld\n",
           i, sp->mode, d, physical_ns, r->min_rtt_ns, r->min_bound_m, r->count);
    ck_assert_msg((double)r->min_rtt_ns >= floor(physical_ns),
                  "chip %d (%s, %.0f m): min rtt %lld ns below the simulated %.0f ns", i, sp->mode,
                  d, r->min_rtt_ns, physical_ns);
    ck_assert_msg(
        (double)r->min_rtt_ns <= physical_ns + (double)SLACK_NS,
        "chip %d (%s, %.0f m): min rtt %lld ns more than 5 ms above the simulated %.0f ns", i,
        sp->mode, d, r->min_rtt_ns, physical_ns);
    if (sp->paris)
      ck_assert_msg((double)r->min_bound_m >= d, "chip %d: bound %lld m below its distance %.0f m",
                    i, r->min_bound_m, d);
    if (sp->lon < -70) ck_assert_int_ge(r->min_rtt_ns, 56000000);
    if (strcmp(sp->mode, "dark") != 0) {
      ck_assert_msg(r->count >= 3, "chip %d (%s) has only %lld measurements", i, sp->mode,
                    r->count);
      if (live_last_min < 0 || r->last_measured_ns < live_last_min)
        live_last_min = r->last_measured_ns;
    }
  }
  /* Dark chips: measured before going dark, then no more. */
  for (int i = 18; i < 20; i++)
    ck_assert_msg(res[i].last_measured_ns <= live_last_min - 2000000000ll,
                  "dark chip %d last measured %lld ns, live chips' earliest last %lld ns", i,
                  res[i].last_measured_ns, live_last_min);
  tu_release();
}
END_TEST

/* ---- a landmark written in the test ---------------------------------------- */

/* Sends a challenge for chip and returns the Response and its RTT in ns. */
static uint64_t probe_once(tu_wire *w, const cl_key *lk, const uint8_t chip[CL_PK_LEN],
                           uint64_t seq, int corrupt, cl_challenge *ch, cl_msg *resp) {
  memset(ch, 0, sizeof *ch);
  memcpy(ch->landmark, cl_key_public(lk), CL_PK_LEN);
  memcpy(ch->chip, chip, CL_PK_LEN);
  randombytes_buf(ch->nonce, CL_NONCE_LEN);
  ch->issued_unix_ns = 1700000000000000000ull + seq;
  ch->seq = seq;
  cl_challenge_sign(ch, lk);
  if (corrupt) ch->sig[5] ^= 0x40;
  cl_msg m;
  m.type = CL_MSG_CHALLENGE;
  m.u.challenge = *ch;
  uint64_t t0 = tu_mono_ns();
  tu_wire_send(w, &m);
  ck_assert_msg(tu_wire_recv(w, resp, 5000) == 0, "no answer to challenge %llu",
                (unsigned long long)seq);
  uint64_t rtt = tu_mono_ns() - t0;
  ck_assert_int_eq(resp->type, CL_MSG_RESPONSE);
  ck_assert_int_eq(memcmp(resp->u.response.nonce, ch->nonce, CL_NONCE_LEN), 0);
  return rtt;
}

START_TEST(test_rogue_landmark) {
  char *dir = tu_own(tu_tmpdir("chiploc-sim-rogue"));
  char *simlog = tu_fmt("%s/fleetsim.log", dir);
  uint8_t seed[32];
  memset(seed, 0x5a, sizeof seed);
  cl_key *lk = NULL;
  ck_assert_int_eq(cl_key_from_seed(&lk, seed), CL_OK);
  char lhex[CL_PK_HEX_LEN + 1], chex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(lk), lhex);
  expected_pk_hex(4242, 7, chex);
  uint8_t chip[CL_PK_LEN];
  ck_assert_int_eq(cl_pk_from_hex(chex, chip), CL_OK);

  int lport = 0;
  int lfd = tu_listen_local(&lport);
  /* One chip at Frankfurt, no jitter; the landmark at Paris. */
  char *fleetcsv = tu_own(tu_write_file(
      dir, "fleet.csv",
      "index,true_lat,true_lon,mode,extra_delay_ms,dark_after_s\n7,50.1109,8.6821,honest,0,0\n"));
  char *lmcsv = tu_own(tu_write_file(dir, "landmarks.csv",
                                  tu_fmt("name,address,public_key,lat,lon\n"
                                      "rogue,127.0.0.1:%d,%s,48.8566,2.3522\n",
                                      lport, lhex)));
  char *simbin = tu_own(tu_bin("tests/sim/fleetsim"));
  char *sim_argv[] = {simbin,        "run",    "--fleet",  fleetcsv,      "--landmarks",
                      lmcsv,         "--seed", FLEET_SEED, "--jitter-ms", "0",
                      "--log-level", "debug",  NULL};
  pid_t sim = tu_spawn(sim_argv, simlog);
  tu_wire w;
  ck_assert_msg(tu_wire_accept(&w, lfd, 10000) == 0, "fleetsim did not connect");

  /* Handshake: the proof must verify over this session's nonce. */
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_HELLO;
  memcpy(m.u.hello.landmark, cl_key_public(lk), CL_PK_LEN);
  randombytes_buf(m.u.hello.session_nonce, CL_NONCE_LEN);
  uint8_t session[CL_NONCE_LEN];
  memcpy(session, m.u.hello.session_nonce, CL_NONCE_LEN);
  tu_wire_send(&w, &m);
  ck_assert_int_eq(tu_wire_recv(&w, &m, 5000), 0);
  ck_assert_int_eq(m.type, CL_MSG_REGISTER);
  ck_assert_int_eq(m.u.reg.n, 1);
  ck_assert_int_eq(memcmp(m.u.reg.chips[0].chip, chip, CL_PK_LEN), 0);
  ck_assert_int_eq(cl_register_verify(cl_key_public(lk), session, chip, m.u.reg.chips[0].proof),
                   CL_OK);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER_RESULT;
  m.u.reg_result.n = 1;
  memcpy(m.u.reg_result.r[0].chip, chip, CL_PK_LEN);
  m.u.reg_result.r[0].accepted = 1;
  tu_wire_send(&w, &m);

  /* Valid challenges: answered with a valid signature, never before the
   * simulated round trip, and not much after it. */
  double physical_ns =
      2.0 * cl_geo_distance_m(50.1109, 8.6821, PARIS_LAT, PARIS_LON) / CL_SPEED_FIBRE * 1e9;
  cl_challenge ch;
  cl_msg resp;
  for (uint64_t seq = 1; seq <= 5; seq++) {
    uint64_t rtt = probe_once(&w, lk, chip, seq, 0, &ch, &resp);
    ck_assert_int_eq(cl_response_verify(&ch, resp.u.response.sig), CL_OK);
    ck_assert_msg((double)rtt >= physical_ns, "rtt %llu ns below the simulated %.0f ns",
                  (unsigned long long)rtt, physical_ns);
    ck_assert_msg((double)rtt <= physical_ns + (double)SLACK_NS, "rtt %llu ns, simulated %.0f ns",
                  (unsigned long long)rtt, physical_ns);
  }
  /* A bad landmark signature: answered first, then the connection is dropped. */
  probe_once(&w, lk, chip, 6, 1, &ch, &resp);
  ck_assert_int_eq(tu_wire_recv(&w, &m, 5000), 0);
  ck_assert_int_eq(m.type, CL_MSG_ERROR);
  ck_assert_int_eq(m.u.error.code, CL_ERR_BAD_LANDMARK);
  ck_assert_int_lt(tu_wire_recv(&w, &m, 5000), 0); /* closed (or silent) */
  tu_wire_close(&w);
  /* It reconnects on its own. */
  struct pollfd pl = {.fd = lfd, .events = POLLIN};
  ck_assert_msg(poll(&pl, 1, 10000) == 1, "fleetsim did not reconnect");
  ck_assert_int_eq(tu_stop(sim, SIGTERM, 10000), 0);
  close(lfd);
  ck_assert_int_eq(tu_last_stat(simlog, "bad_landmark_sig"), 1);
  ck_assert_int_eq(tu_last_stat(simlog, "answered"), 6);
  cl_key_destroy(&lk);
  tu_release();
}
END_TEST

/* ---- the delay proxy ------------------------------------------------------- */

/* Reads exactly n bytes within timeout_ms; returns 0 or -1. */
static int read_exact(int fd, uint8_t *buf, size_t n, int timeout_ms) {
  size_t have = 0;
  uint64_t end = tu_mono_ns() + (uint64_t)timeout_ms * 1000000u;
  while (have < n) {
    uint64_t now = tu_mono_ns();
    if (now >= end) return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, (int)((end - now) / 1000000u) + 1) <= 0) continue;
    ssize_t r = read(fd, buf + have, n - have);
    if (r <= 0) return -1;
    have += (size_t)r;
  }
  return 0;
}

static int tcp_connect_local(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect to port %d", port);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

START_TEST(test_delayproxy) {
  char *dir = tu_own(tu_tmpdir("chiploc-proxy"));
  char *plog = tu_fmt("%s/delayproxy.log", dir);
  /* The "server" side: a listening socket this test answers on itself. */
  int sport = 0;
  int lfd = tu_listen_local(&sport);
  int pport = tu_free_port();
  char *bin = tu_own(tu_bin("tests/sim/delayproxy"));
  char *listen_at = tu_fmt("127.0.0.1:%d", pport),
       *connect_to = tu_fmt("127.0.0.1:%d", sport);
  char *argv[] = {bin,          "--listen", listen_at,     "--connect", connect_to,
                  "--delay-ms", "20",       "--jitter-ms", "5",         NULL};
  pid_t px = tu_spawn(argv, plog);
  ck_assert_msg(tu_wait_log(plog, "msg=listening", 1, 10000) == 0, "delayproxy did not listen");

  int cfd = tcp_connect_local(pport);
  struct pollfd pl = {.fd = lfd, .events = POLLIN};
  ck_assert_msg(poll(&pl, 1, 5000) == 1, "the proxy did not connect upstream");
  int sfd = accept(lfd, NULL, NULL);
  ck_assert(sfd >= 0);

  /* One echo round trip: two delayed legs. */
  uint8_t buf[64];
  uint64_t t0 = tu_mono_ns();
  ck_assert_int_eq(write(cfd, "ping", 4), 4);
  ck_assert_int_eq(read_exact(sfd, buf, 4, 5000), 0);
  uint64_t t1 = tu_mono_ns();
  ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
  ck_assert_int_eq(write(sfd, "pong", 4), 4);
  ck_assert_int_eq(read_exact(cfd, buf, 4, 5000), 0);
  uint64_t t2 = tu_mono_ns();
  ck_assert_int_eq(memcmp(buf, "pong", 4), 0);
  ck_assert_msg(t1 - t0 >= 20000000ull, "one way took %llu ns", (unsigned long long)(t1 - t0));
  ck_assert_msg(t2 - t0 >= 40000000ull, "round trip took %llu ns", (unsigned long long)(t2 - t0));
  ck_assert_msg(t2 - t0 < 1000000000ull, "round trip took %llu ns", (unsigned long long)(t2 - t0));

  /* Many small chunks, each jittered: bytes still arrive complete and in order. */
  enum { CHUNKS = 200, CHUNK = 100 };
  uint8_t *sent = (uint8_t *)tu_own(malloc(CHUNKS * CHUNK));
  uint8_t *got = (uint8_t *)tu_own(malloc(CHUNKS * CHUNK));
  for (int i = 0; i < CHUNKS * CHUNK; i++) sent[i] = (uint8_t)(i * 7 + i / 251);
  for (int i = 0; i < CHUNKS; i++) {
    ck_assert_int_eq(write(cfd, sent + i * CHUNK, CHUNK), CHUNK);
    usleep(300);
  }
  ck_assert_int_eq(read_exact(sfd, got, CHUNKS * CHUNK, 10000), 0);
  ck_assert_int_eq(memcmp(sent, got, CHUNKS * CHUNK), 0);

  /* Closing the client closes the upstream side, after the delay. */
  close(cfd);
  struct pollfd ps = {.fd = sfd, .events = POLLIN};
  ck_assert_msg(poll(&ps, 1, 5000) == 1, "upstream side not closed");
  ck_assert_int_eq(read(sfd, buf, sizeof buf), 0);
  close(sfd);
  close(lfd);
  ck_assert_int_eq(tu_stop(px, SIGTERM, 5000), 0);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  Suite *s = suite_create("sim");
  TCase *tc = tcase_create("processes");
  tcase_set_timeout(tc, 180);
  tcase_add_test(tc, test_delayproxy);
  tcase_add_test(tc, test_rogue_landmark);
  tcase_add_test(tc, test_fleet_physics);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
