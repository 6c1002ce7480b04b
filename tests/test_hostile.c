/*
 * Hostile input suite: the real landmarkd (metrics endpoint on) and a real
 * chipagent with one honest chip run as separate processes against a real
 * PostgreSQL, while an in-test client sends every hostile input of the
 * operations list in turn: an oversized length prefix (before and after
 * registration), a truncated frame then silence before registration
 * (handshake timeout) and a trickled, never finished frame after it (idle
 * timeout), garbage bytes, an unknown message type, a wrong version, a
 * message out of turn, wrong field lengths, a bad chip signature, a
 * replayed, a late and a misdirected response, a random nonce, a response
 * for a chip not registered on the connection, unenrolled and badly proven
 * registrations, and a flood of connections from one address.
 *
 * Each case asserts its specific reaction (Error code and close, or the
 * session going on), that its counter moved on /metrics, and that the
 * rate-limited rejection log line names its reason. Throughout, the honest
 * chip must keep being measured: no gap between its full-burst measurements
 * longer than twice the probe interval. Hostile connections come from
 * 127.0.0.2 (and the flood from 127.0.0.3), so the per-address limit never
 * touches the honest agent on 127.0.0.1.
 *
 * The second part runs `chiploc verify --follow --metrics` for a few rounds
 * and checks its counters against the attestations and alerts tables.
 */
#define _GNU_SOURCE
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_msg.h"
#include "cl_probe.h"
#include "testutil.h"

#include <check.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTERVAL_S 1
#define BURST 3
#define DEADLINE_MS 300
#define HANDSHAKE_MS 500
#define IDLE_S 3
#define PER_ADDRESS 8
#define ROGUE_ADDR "127.0.0.2"
#define FLOOD_ADDR "127.0.0.3"

static struct {
  char *dir, *db, *lmlog;
  int port, mport;
  cl_key *b, *c, *u; /* rogue chips: B and C enrolled, U not */
} W;

static uint64_t now_ms(void) { return tu_mono_ns() / 1000000u; }

/* ---- metrics ------------------------------------------------------------- */

static char *scrape_port(int port) {
  int status = 0;
  char *body = tu_http_get(port, "/metrics", 5000, &status);
  ck_assert_msg(body != NULL && status == 200, "GET /metrics on port %d: status %d", port, status);
  return body;
}

static double metric(const char *series) {
  char *t = scrape_port(W.mport);
  double v = tu_metric(t, series);
  free(t);
  ck_assert_msg(v >= 0, "no series %s on /metrics", series);
  return v;
}

/* The snapshot is rendered once a second: wait for it to catch up. */
static void expect_metric_ge(const char *series, double want) {
  double v = -1;
  for (int i = 0; i < 60; i++) {
    if ((v = metric(series)) >= want) return;
    tu_sleep_ms(100);
  }
  ck_abort_msg("%s is %g, want >= %g", series, v, want);
}

/* The rejection's log line: `msg=rejected reason=R`, rate-limited. */
static void expect_log_reason(const char *reason) {
  char needle[96];
  snprintf(needle, sizeof needle, "msg=rejected reason=%s ", reason);
  ck_assert_msg(tu_wait_log(W.lmlog, needle, 1, 5000) == 0, "no log line \"%s\"", needle);
}

/* ---- a blocking client speaking (and breaking) the wire protocol ---------- */

typedef struct {
  tu_wire w;
  uint8_t landmark[CL_PK_LEN];
  uint8_t session_nonce[CL_NONCE_LEN];
} hc;

/* Connects from the loopback address src; 0, or -1 if connect fails. */
static int hc_open(hc *h, const char *src) {
  memset(h, 0, sizeof *h);
  return tu_wire_connect(&h->w, src, W.port);
}

static void hc_close(hc *h) { tu_wire_close(&h->w); }

/* Next message: 1 and *m, 0 when the landmark closed, -1 on timeout. */
static int hc_recv(hc *h, cl_msg *m, int timeout_ms) {
  int rc = tu_wire_recv(&h->w, m, timeout_ms);
  return rc == 0 ? 1 : rc == TU_WIRE_EOF ? 0 : -1;
}

static void hc_send_raw(hc *h, const void *data, size_t len) {
  tu_wire_send_raw(&h->w, data, len);
}

static void hc_send(hc *h, const cl_msg *m) { tu_wire_send(&h->w, m); }

/* A frame around a hand-made body. */
static void hc_send_body(hc *h, const uint8_t *body, size_t len) {
  uint8_t hdr[CL_FRAME_HDR_LEN];
  cl_frame_put_header(hdr, (uint32_t)len);
  hc_send_raw(h, hdr, sizeof hdr);
  hc_send_raw(h, body, len);
}

static void hc_hello(hc *h) {
  cl_msg m;
  ck_assert_int_eq(hc_recv(h, &m, 5000), 1);
  ck_assert_int_eq(m.type, CL_MSG_HELLO);
  memcpy(h->landmark, m.u.hello.landmark, CL_PK_LEN);
  memcpy(h->session_nonce, m.u.hello.session_nonce, CL_NONCE_LEN);
}

static void hc_connect(hc *h) {
  ck_assert_int_eq(hc_open(h, ROGUE_ADDR), 0);
  hc_hello(h);
}

/* Registers the chips and returns the RegisterResult in *res. */
static void hc_register(hc *h, cl_key *const *keys, size_t n, cl_msg *res) {
  cl_msg reg;
  memset(&reg, 0, sizeof reg);
  reg.type = CL_MSG_REGISTER;
  snprintf(reg.u.reg.agent, sizeof reg.u.reg.agent, "hostile");
  reg.u.reg.n = n;
  for (size_t i = 0; i < n; i++) {
    memcpy(reg.u.reg.chips[i].chip, cl_key_public(keys[i]), CL_PK_LEN);
    cl_register_sign(h->landmark, h->session_nonce, keys[i], reg.u.reg.chips[i].proof);
  }
  hc_send(h, &reg);
  ck_assert_int_eq(hc_recv(h, res, 5000), 1);
  ck_assert_int_eq(res->type, CL_MSG_REGISTER_RESULT);
  ck_assert_uint_eq(res->u.reg_result.n, n);
}

/* A fresh connection with chip C (and more) registered and accepted. */
static void hc_connect_registered(hc *h, cl_key *const *keys, size_t n) {
  hc_connect(h);
  cl_msg res;
  hc_register(h, keys, n, &res);
  for (size_t i = 0; i < n; i++) ck_assert_int_eq(res.u.reg_result.r[i].accepted, 1);
}

/* Waits for an Error frame, skipping challenges; returns its code and
 * copies its text. */
static cl_wire_error hc_expect_error(hc *h, char *text, size_t textlen) {
  cl_msg m;
  for (;;) {
    int rc = hc_recv(h, &m, 5000);
    ck_assert_msg(rc == 1, rc == 0 ? "closed without an Error frame" : "no Error frame in 5 s");
    if (m.type == CL_MSG_ERROR) break;
    ck_assert_msg(m.type == CL_MSG_CHALLENGE, "unexpected %s", cl_msg_type_name(m.type));
  }
  if (text) snprintf(text, textlen, "%s", m.u.error.text);
  return m.u.error.code;
}

/* The landmark closes the connection (after any frames still queued). */
static void hc_expect_closed(hc *h) {
  cl_msg m;
  int rc;
  while ((rc = hc_recv(h, &m, 5000)) == 1) {
  }
  ck_assert_msg(rc == 0, "connection still open 5 s after a closing error");
}

/* Next challenge (for `chip`, or any chip when NULL), skipping others.
 * Whatever already arrived is dropped first, so the challenge is fresh:
 * answered at once, it is inside its deadline. */
static void hc_next_challenge(hc *h, const uint8_t *chip, cl_challenge *ch) {
  cl_msg m;
  while (hc_recv(h, &m, 0) == 1) {
  }
  for (;;) {
    ck_assert_msg(hc_recv(h, &m, 10000) == 1, "no challenge within 10 s");
    if (m.type == CL_MSG_ERROR) continue;
    ck_assert_int_eq(m.type, CL_MSG_CHALLENGE);
    if (!chip || memcmp(m.u.challenge.chip, chip, CL_PK_LEN) == 0) break;
  }
  *ch = m.u.challenge;
  ck_assert_int_eq(cl_challenge_verify(ch), CL_OK);
}

static void hc_respond(hc *h, const uint8_t chip[CL_PK_LEN], const uint8_t nonce[CL_NONCE_LEN],
                       const uint8_t sig[CL_SIG_LEN]) {
  tu_wire_respond(&h->w, chip, nonce, sig);
}

/* ---- hand-made protobuf ---------------------------------------------------- */

static size_t pb_varint(uint8_t *o, uint64_t v) {
  size_t n = 0;
  do {
    o[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) o[n] |= 0x80;
    n++;
  } while (v);
  return n;
}

/* Appends field `no` as length-delimited bytes. */
static size_t pb_bytes(uint8_t *o, unsigned no, const void *data, size_t len) {
  size_t n = pb_varint(o, (uint64_t)no << 3 | 2);
  n += pb_varint(o + n, len);
  memcpy(o + n, data, len);
  return n + len;
}

/* Envelope{version = 1, field `no` = msg}. */
static size_t pb_envelope(uint8_t *o, unsigned no, const uint8_t *msg, size_t len) {
  o[0] = 0x08;
  o[1] = 0x01;
  return 2 + pb_bytes(o + 2, no, msg, len);
}

/* ---- the cases ------------------------------------------------------------ */

typedef struct {
  const char *series;
  double before;
} counter_mark;

static counter_mark mark(const char *series) {
  counter_mark c = {series, metric(series)};
  return c;
}

/* The counter moved by at least n, and the reason was logged. */
static void expect_counted(counter_mark c, double n, const char *log_reason) {
  expect_metric_ge(c.series, c.before + n);
  if (log_reason) expect_log_reason(log_reason);
}

static void case_oversized(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"too_large\"}");
  hc h;
  /* Before registration the limit is CL_FRAME_MAX_UNREGISTERED. */
  hc_connect(&h);
  uint8_t hdr[CL_FRAME_HDR_LEN];
  cl_frame_put_header(hdr, CL_FRAME_MAX_UNREGISTERED + 1);
  hc_send_raw(&h, hdr, sizeof hdr);
  char text[256];
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_TOO_LARGE);
  ck_assert_ptr_nonnull(strstr(text, "8193"));
  hc_expect_closed(&h);
  hc_close(&h);
  /* After registration the limit is max_frame_bytes (65536 here). */
  cl_key *keys[] = {W.c};
  hc_connect_registered(&h, keys, 1);
  cl_frame_put_header(hdr, 0x7fffffffu);
  hc_send_raw(&h, hdr, sizeof hdr);
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_TOO_LARGE);
  hc_expect_closed(&h);
  hc_close(&h);
  expect_counted(c, 2, "too_large");
}

static void case_slowloris_handshake(void) {
  counter_mark c = mark("chiploc_timeouts_total{kind=\"handshake\"}");
  hc h;
  uint64_t t0 = now_ms();
  hc_connect(&h);
  /* A frame announced as 100 bytes, 10 of them sent, then silence. */
  uint8_t part[CL_FRAME_HDR_LEN + 10];
  memset(part, 0x0a, sizeof part);
  cl_frame_put_header(part, 100);
  hc_send_raw(&h, part, sizeof part);
  char text[256];
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_LIMIT);
  uint64_t waited = now_ms() - t0;
  ck_assert_msg(waited >= HANDSHAKE_MS - 50 && waited <= HANDSHAKE_MS + 2000,
                "cut after %llu ms, handshake timeout is %d ms", (unsigned long long)waited,
                HANDSHAKE_MS);
  hc_expect_closed(&h);
  hc_close(&h);
  expect_counted(c, 1, "handshake_timeout");
}

static void case_slowloris_idle(void) {
  counter_mark c = mark("chiploc_timeouts_total{kind=\"idle\"}");
  hc h;
  cl_key *keys[] = {W.c};
  hc_connect_registered(&h, keys, 1);
  uint64_t t0 = now_ms(); /* the Register was the last complete frame */
  /* A Response announced as 200 bytes, trickled one byte at a time well
   * inside the idle timeout, never finished, challenges left unanswered:
   * only complete frames count as activity, so the idle timeout cuts it. */
  uint8_t hdr[CL_FRAME_HDR_LEN];
  cl_frame_put_header(hdr, 200);
  hc_send_raw(&h, hdr, sizeof hdr);
  int sent = 0;
  uint64_t last_byte = now_ms();
  cl_msg m;
  for (;;) {
    int rc = hc_recv(&h, &m, 100);
    ck_assert_msg(rc != 0, "closed without an Error frame");
    ck_assert_msg(now_ms() - t0 < (uint64_t)IDLE_S * 1000 + 5000, "not cut by the idle timeout");
    if (rc == 1 && m.type == CL_MSG_ERROR) break;
    if (now_ms() - last_byte >= 700 && sent < 150) {
      uint8_t b = 0x0a;
      hc_send_raw(&h, &b, 1);
      sent++;
      last_byte = now_ms();
    }
  }
  ck_assert_int_eq(m.u.error.code, CL_ERR_LIMIT);
  uint64_t waited = now_ms() - t0;
  ck_assert_msg(waited >= (uint64_t)IDLE_S * 1000 - 100, "cut after %llu ms, before the idle timeout",
                (unsigned long long)waited);
  ck_assert_int_ge(sent, 3);
  hc_expect_closed(&h);
  hc_close(&h);
  expect_counted(c, 1, "idle_timeout");
}

/* Sends one hand-made body on a fresh (unregistered) connection and expects
 * the given closing error. */
static void closing_case(const uint8_t *body, size_t len, cl_wire_error want, const char *text_has) {
  hc h;
  hc_connect(&h);
  hc_send_body(&h, body, len);
  char text[256];
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), want);
  if (text_has) ck_assert_msg(strstr(text, text_has) != NULL, "error text \"%s\"", text);
  hc_expect_closed(&h);
  hc_close(&h);
}

static void case_garbage(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"malformed\"}");
  uint8_t junk[16];
  memset(junk, 0xff, sizeof junk); /* a varint that never ends */
  closing_case(junk, sizeof junk, CL_ERR_MALFORMED, NULL);
  /* A zero length prefix is malformed too. */
  hc h;
  hc_connect(&h);
  uint8_t zero[CL_FRAME_HDR_LEN] = {0};
  hc_send_raw(&h, zero, sizeof zero);
  ck_assert_int_eq(hc_expect_error(&h, NULL, 0), CL_ERR_MALFORMED);
  hc_expect_closed(&h);
  hc_close(&h);
  expect_counted(c, 2, "malformed");
}

static void case_unknown_type(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"unknown_type\"}");
  uint8_t body[16];
  size_t n = pb_envelope(body, 15, (const uint8_t *)"abc", 3); /* only field 15 */
  closing_case(body, n, CL_ERR_MALFORMED, NULL);
  expect_counted(c, 1, "unknown_type");
}

static void case_version(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"version\"}");
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER;
  snprintf(m.u.reg.agent, sizeof m.u.reg.agent, "v2");
  uint8_t buf[512];
  size_t len;
  ck_assert_int_eq(cl_msg_encode_version(&m, 2, buf, sizeof buf, &len), CL_OK);
  closing_case(buf + CL_FRAME_HDR_LEN, len - CL_FRAME_HDR_LEN, CL_ERR_VERSION, "version 2");
  expect_counted(c, 1, "version");
}

static void case_unexpected(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"unexpected\"}");
  /* A well-formed Response before any Register. */
  hc h;
  hc_connect(&h);
  uint8_t z[CL_SIG_LEN] = {1};
  hc_respond(&h, cl_key_public(W.c), z, z);
  ck_assert_int_eq(hc_expect_error(&h, NULL, 0), CL_ERR_UNEXPECTED);
  hc_expect_closed(&h);
  hc_close(&h);
  expect_counted(c, 1, "unexpected");
}

static void case_wrong_lengths(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"malformed\"}");
  uint8_t claim[128], reg[160], env[192];
  uint8_t zeros[64] = {0};
  /* Register with a 31-byte chip_id. */
  size_t n = pb_bytes(claim, 1, cl_key_public(W.c), 31);
  n += pb_bytes(claim + n, 2, zeros, 64);
  size_t r = pb_bytes(reg, 1, "x", 1);
  r += pb_bytes(reg + r, 2, claim, n);
  size_t e = pb_envelope(env, 3, reg, r);
  closing_case(env, e, CL_ERR_MALFORMED, "31");
  /* Response with a 63-byte signature, on a registered connection. */
  hc h;
  cl_key *keys[] = {W.c};
  hc_connect_registered(&h, keys, 1);
  uint8_t resp[160];
  n = pb_bytes(resp, 1, cl_key_public(W.c), 32);
  n += pb_bytes(resp + n, 2, zeros, 32);
  n += pb_bytes(resp + n, 3, zeros, 63);
  e = pb_envelope(env, 6, resp, n);
  hc_send_body(&h, env, e);
  char text[256];
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_MALFORMED);
  ck_assert_msg(strstr(text, "63") != NULL, "error text \"%s\"", text);
  hc_expect_closed(&h);
  hc_close(&h);
  expect_counted(c, 2, "malformed");
}

/* Bad signature, replay, late answer and a chip not registered here, on one
 * registered connection that stays open through all of them. */
static void case_response_checks(void) {
  counter_mark bad = mark("chiploc_responses_rejected_total{reason=\"bad_signature\"}");
  counter_mark rep = mark("chiploc_responses_rejected_total{reason=\"replay\"}");
  counter_mark late = mark("chiploc_responses_rejected_total{reason=\"late\"}");
  counter_mark unreg = mark("chiploc_responses_rejected_total{reason=\"not_registered\"}");
  counter_mark ok = mark("chiploc_responses_accepted_total");
  hc h;
  cl_key *keys[] = {W.c};
  hc_connect_registered(&h, keys, 1);
  cl_challenge ch;
  uint8_t sig[CL_SIG_LEN];

  hc_next_challenge(&h, cl_key_public(W.c), &ch);
  cl_response_sign(&ch, W.c, sig);
  sig[7] ^= 0x01;
  hc_respond(&h, ch.chip, ch.nonce, sig);
  ck_assert_int_eq(hc_expect_error(&h, NULL, 0), CL_ERR_BAD_SIGNATURE);
  expect_counted(bad, 1, "bad_signature");

  hc_next_challenge(&h, cl_key_public(W.c), &ch);
  cl_response_sign(&ch, W.c, sig);
  hc_respond(&h, ch.chip, ch.nonce, sig);
  hc_respond(&h, ch.chip, ch.nonce, sig);
  ck_assert_int_eq(hc_expect_error(&h, NULL, 0), CL_ERR_REPLAY);
  expect_counted(rep, 1, "replay");
  expect_counted(ok, 1, NULL);

  hc_next_challenge(&h, cl_key_public(W.c), &ch);
  tu_sleep_ms(DEADLINE_MS + 150);
  cl_response_sign(&ch, W.c, sig);
  hc_respond(&h, ch.chip, ch.nonce, sig);
  ck_assert_int_eq(hc_expect_error(&h, NULL, 0), CL_ERR_LATE);
  expect_counted(late, 1, "late");

  cl_challenge other = ch;
  memcpy(other.chip, cl_key_public(W.u), CL_PK_LEN);
  cl_response_sign(&other, W.u, sig);
  hc_respond(&h, other.chip, other.nonce, sig);
  ck_assert_int_eq(hc_expect_error(&h, NULL, 0), CL_ERR_NOT_REGISTERED);
  expect_counted(unreg, 1, "not_registered");

  /* None of these closed the session: challenges keep coming. */
  hc_next_challenge(&h, cl_key_public(W.c), &ch);
  hc_close(&h);
}

/* Another chip's nonce, then a nonce never issued, on a connection with
 * two chips; with max_pending_challenges = 1 their probes also queue up
 * behind each other. */
static void case_nonces(void) {
  counter_mark wrong = mark("chiploc_responses_rejected_total{reason=\"wrong_chip\"}");
  counter_mark unknown = mark("chiploc_responses_rejected_total{reason=\"unknown_nonce\"}");
  counter_mark deferred = mark("chiploc_probes_deferred_total");
  hc h;
  cl_key *keys[] = {W.b, W.c};
  hc_connect_registered(&h, keys, 2);
  uint64_t t0 = now_ms();
  cl_challenge ch;
  uint8_t sig[CL_SIG_LEN];
  hc_next_challenge(&h, NULL, &ch);
  int to_b = memcmp(ch.chip, cl_key_public(W.b), CL_PK_LEN) == 0;
  cl_key *other = to_b ? W.c : W.b;
  /* Claim the other chip answered, with a valid signature of its own. */
  cl_challenge mine = ch;
  memcpy(mine.chip, cl_key_public(other), CL_PK_LEN);
  cl_response_sign(&mine, other, sig);
  hc_respond(&h, mine.chip, mine.nonce, sig);
  ck_assert_int_eq(hc_expect_error(&h, NULL, 0), CL_ERR_UNKNOWN_NONCE);
  expect_counted(wrong, 1, "wrong_chip");

  randombytes_buf(mine.nonce, CL_NONCE_LEN);
  cl_response_sign(&mine, other, sig);
  hc_respond(&h, mine.chip, mine.nonce, sig);
  ck_assert_int_eq(hc_expect_error(&h, NULL, 0), CL_ERR_UNKNOWN_NONCE);
  expect_counted(unknown, 1, "unknown_nonce");

  /* Leave both chips' probes unanswered for a few seconds. */
  cl_msg m;
  while (now_ms() - t0 < 3000) hc_recv(&h, &m, 200);
  expect_counted(deferred, 1, NULL);
  hc_close(&h);
}

static void case_registrations(void) {
  counter_mark ne = mark("chiploc_registrations_refused_total{reason=\"not_enrolled\"}");
  counter_mark bp = mark("chiploc_registrations_refused_total{reason=\"bad_proof\"}");
  hc h;
  cl_msg res;
  cl_key *keys[] = {W.u};
  hc_connect(&h);
  hc_register(&h, keys, 1, &res);
  ck_assert_int_eq(res.u.reg_result.r[0].accepted, 0);
  ck_assert_int_eq(res.u.reg_result.r[0].reason, CL_REFUSE_NOT_ENROLLED);
  hc_expect_closed(&h); /* nothing accepted: nothing to measure */
  hc_close(&h);
  expect_counted(ne, 1, "not_enrolled");

  /* An enrolled chip whose proof is over another session's nonce. */
  hc_connect(&h);
  h.session_nonce[0] ^= 1;
  cl_key *b[] = {W.b};
  hc_register(&h, b, 1, &res);
  ck_assert_int_eq(res.u.reg_result.r[0].accepted, 0);
  ck_assert_int_eq(res.u.reg_result.r[0].reason, CL_REFUSE_BAD_PROOF);
  hc_expect_closed(&h);
  hc_close(&h);
  expect_counted(bp, 1, "bad_proof");
}

static void case_flood(void) {
  /* Every earlier hostile connection is gone (closed, or cut by the
   * handshake timeout): only the honest agent is connected. */
  for (int i = 0; i < 100 && metric("chiploc_connections") > 1; i++) tu_sleep_ms(100);
  ck_assert_double_eq(metric("chiploc_connections"), 1);
  counter_mark c = mark("chiploc_connections_refused_total{reason=\"per_address\"}");
  enum { N = PER_ADDRESS + 4 };
  hc h[N];
  /* All connects first (well inside the handshake timeout), then read. */
  for (int i = 0; i < N; i++) ck_assert_int_eq(hc_open(&h[i], FLOOD_ADDR), 0);
  int hellos = 0, limits = 0;
  for (int i = 0; i < N; i++) {
    cl_msg m;
    ck_assert_int_eq(hc_recv(&h[i], &m, 5000), 1);
    if (m.type == CL_MSG_HELLO) {
      hellos++;
      continue;
    }
    ck_assert_int_eq(m.type, CL_MSG_ERROR);
    ck_assert_int_eq(m.u.error.code, CL_ERR_LIMIT);
    hc_expect_closed(&h[i]);
    limits++;
  }
  ck_assert_int_eq(hellos, PER_ADDRESS);
  ck_assert_int_eq(limits, N - PER_ADDRESS);
  for (int i = 0; i < N; i++) hc_close(&h[i]);
  expect_counted(c, N - PER_ADDRESS, "per_address_limit");
  /* Closed connections give their slots back. */
  for (int i = 0; i < 100 && metric("chiploc_connections") > 1; i++) tu_sleep_ms(100);
  hc one;
  ck_assert_int_eq(hc_open(&one, FLOOD_ADDR), 0);
  hc_hello(&one);
  hc_close(&one);
}

/* ---- the honest chip ------------------------------------------------------- */

/* Full-burst measurements of chip A measured in [from_ns, to_ns]: asserts
 * that they cover the span with no gap above twice the probe interval. */
static void expect_continuous(uint64_t from_ns, uint64_t to_ns) {
  char q[512];
  snprintf(q, sizeof q,
           "SELECT coalesce(string_agg(m.measured_at_ns::text, ' ' ORDER BY m.measured_at_ns), '') "
           "FROM measurements m JOIN chips c ON c.id = m.chip_id "
           "WHERE c.serial = 'A-0001' AND m.probe_count = %d AND m.measured_at_ns BETWEEN %llu "
           "AND %llu",
           BURST, (unsigned long long)from_ns, (unsigned long long)to_ns);
  char *list = tu_sql_value(W.db, q);
  ck_assert_ptr_nonnull(list);
  const uint64_t max_gap = 2ull * INTERVAL_S * 1000000000ull;
  uint64_t prev = from_ns;
  size_t n = 0;
  for (char *p = list; *p;) {
    char *end;
    uint64_t t = strtoull(p, &end, 10);
    ck_assert_msg(t - prev <= max_gap, "honest chip: no full-burst measurement for %.2f s",
                  (double)(t - prev) / 1e9);
    prev = t;
    n++;
    p = end;
    while (*p == ' ') p++;
  }
  ck_assert_msg(to_ns - prev <= max_gap, "honest chip: last measurement %.2f s before the end",
                (double)(to_ns - prev) / 1e9);
  ck_assert_uint_ge(n, 3);
  free(list);
}

/* ---- the verifier ------------------------------------------------------------ */

static void check_verifier(const char *log) {
  char *vkey = tu_keygen(W.dir, "verifier", log);
  char *hex = tu_key_hex(vkey);
  ck_assert_int_eq(tu_cli(log, "verifier", "add", "--db", W.db, "--name", "v-hostile", "--pubkey", hex,
                       NULL),
                   0);
  int vport = tu_free_port();
  char maddr[64], vlog[512];
  snprintf(maddr, sizeof maddr, "127.0.0.1:%d", vport);
  snprintf(vlog, sizeof vlog, "%s/verifier.log", W.dir);
  char *bin = tu_bin("server/chiploc");
  char *argv[] = {bin,        "verify", "--db",   W.db,     "--key",           vkey,
                  "--follow", "--interval", "2",  "--settle", "0",          "--window",
                  "30",       "--min-landmarks", "1", "--metrics", maddr,     NULL};
  pid_t v = tu_spawn(argv, vlog);
  ck_assert_msg(tu_wait_log(vlog, "msg=\"serving metrics\"", 1, 10000) == 0,
                "verifier did not serve metrics");
  double rounds = 0;
  for (int i = 0; i < 200 && rounds < 2; i++) {
    char *t = scrape_port(vport);
    rounds = tu_metric(t, "chiploc_verifier_rounds_total");
    free(t);
    if (rounds < 2) tu_sleep_ms(100);
  }
  ck_assert_msg(rounds >= 2, "verifier rounds_total = %g after 20 s", rounds);

  /* Compare with the tables between two scrapes of the same round count. */
  static const char *cons[] = {"consistent", "insufficient", "inconsistent"};
  static const char *site[] = {"none", "site_consistent", "site_excluded"};
  static const char *reg[] = {"none", "inside", "outside", "undetermined"};
  int matched = 0;
  for (int attempt = 0; attempt < 20 && !matched; attempt++) {
    char *t1 = scrape_port(vport);
    long long counts[3][3][4];
    memset(counts, 0, sizeof counts);
    char q[256];
    long long total = 0;
    for (int c = 0; c < 3; c++)
      for (int s = 0; s < 3; s++)
        for (int r = 0; r < 4; r++) {
          snprintf(q, sizeof q,
                   "SELECT count(*) FROM attestations WHERE consistency = %d AND site_verdict = %d "
                   "AND region_verdict = %d",
                   c, s, r);
          counts[c][s][r] = tu_sql_int(W.db, q);
          total += counts[c][s][r];
        }
    long long open_alerts = tu_sql_int(W.db, "SELECT count(*) FROM alerts WHERE cleared_at IS NULL");
    char *t2 = scrape_port(vport);
    if (tu_metric(t1, "chiploc_verifier_rounds_total") ==
        tu_metric(t2, "chiploc_verifier_rounds_total")) {
      matched = 1;
      ck_assert_int_gt(total, 0);
      for (int c = 0; c < 3; c++)
        for (int s = 0; s < 3; s++)
          for (int r = 0; r < 4; r++) {
            char series[160];
            snprintf(series, sizeof series,
                     "chiploc_attestations_total{consistency=\"%s\",site=\"%s\",region=\"%s\"}",
                     cons[c], site[s], reg[r]);
            ck_assert_msg(tu_metric(t1, series) == (double)counts[c][s][r], "%s = %g, table has %lld",
                          series, tu_metric(t1, series), counts[c][s][r]);
          }
      static const char *kinds[] = {"chip_dark",      "chip_moved",   "site_excluded",
                                    "outside_region", "inconsistent", "landmark_misplaced"};
      double alerts = 0;
      for (int i = 0; i < 6; i++) {
        char series[96];
        snprintf(series, sizeof series, "chiploc_open_alerts{kind=\"%s\"}", kinds[i]);
        double a = tu_metric(t1, series);
        ck_assert_msg(a >= 0, "no %s", series);
        alerts += a;
      }
      ck_assert_double_eq(alerts, (double)open_alerts);
      ck_assert_double_gt(tu_metric(t1, "chiploc_verifier_round_seconds_count"), 1);
    }
    free(t1);
    free(t2);
  }
  ck_assert_msg(matched, "verifier metrics never stable between two scrapes");
  ck_assert_int_eq(tu_stop(v, SIGTERM, 10000), 0);
  free(bin);
}

/* ---- the run ------------------------------------------------------------------- */

START_TEST(test_hostile_inputs) {
  W.dir = tu_own(tu_tmpdir("chiploc-hostile"));
  char *log = tu_fmt("%s/cli.log", W.dir), *aglog = tu_fmt("%s/chipagent.log", W.dir);
  W.lmlog = tu_fmt("%s/landmarkd.log", W.dir);
  W.db = tu_own(tu_db_create("chiploc_hostile"));
  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", W.db, NULL), 0);
  char *lkey = tu_keygen(W.dir, "landmark", log);
  char *akey = tu_keygen(W.dir, "chip-a", log);
  char *bkey = tu_keygen(W.dir, "chip-b", log);
  char *ckey = tu_keygen(W.dir, "chip-c", log);
  char *ukey = tu_keygen(W.dir, "chip-u", log);
  char *lhex = tu_key_hex(lkey);
  ck_assert_int_eq(tu_cli(log, "landmark", "add", "--db", W.db, "--name", "lm-paris", "--pubkey", lhex,
                       "--lat", "48.8566", "--lon", "2.3522", NULL),
                   0);
  const char *serials[] = {"A-0001", "B-0001", "C-0001"};
  char *keys[] = {akey, bkey, ckey};
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(tu_cli(log, "chip", "enroll", "--db", W.db, "--pubkey-file", keys[i], "--serial",
                         serials[i], "--operator", "dc", "--site", "48.85,2.35", NULL),
                     0);
  W.b = tu_key_load(bkey);
  W.c = tu_key_load(ckey);
  W.u = tu_key_load(ukey);

  W.port = tu_free_port();
  W.mport = tu_free_port();
  tu_landmark_opts lo = tu_landmark_defaults();
  lo.key = lkey;
  lo.port = W.port;
  lo.conninfo = W.db;
  lo.interval_s = INTERVAL_S;
  lo.burst = BURST;
  lo.deadline_ms = DEADLINE_MS;
  lo.handshake_timeout_ms = HANDSHAKE_MS;
  lo.idle_timeout_s = IDLE_S;
  lo.max_connections_per_address = PER_ADDRESS;
  lo.max_pending_challenges = 1;
  lo.metrics_port = W.mport;
  pid_t lm = tu_landmarkd_start(tu_landmark_conf(W.dir, &lo), W.lmlog);
  tu_agent_opts ao = {.name = "honest-host", .backoff_min_ms = 50, .backoff_max_ms = 1000,
                      .landmarks = {{"paris", W.port, lhex}}, .chips = {{"a", akey}}};
  pid_t ag = tu_chipagent_start(tu_agent_conf(W.dir, &ao), aglog, NULL);

  /* The honest chip is measured before the first hostile byte. */
  const char *q_full = "SELECT count(*) FROM measurements m JOIN chips c ON c.id = m.chip_id "
                       "WHERE c.serial = 'A-0001' AND m.probe_count = 3";
  long long honest = 0;
  for (int i = 0; i < 200 && (honest = tu_sql_int(W.db, q_full)) < 1; i++) tu_sleep_ms(100);
  ck_assert_msg(honest >= 1, "honest chip not measured");
  uint64_t t_start = tu_unix_ns();
  double rtt_count0 = metric("chiploc_rtt_seconds_count");
  double probes0 = metric("chiploc_probes_sent_total");

  case_oversized();
  case_slowloris_handshake();
  case_slowloris_idle();
  case_garbage();
  case_unknown_type();
  case_version();
  case_unexpected();
  case_wrong_lengths();
  case_response_checks();
  case_nonces();
  case_registrations();
  case_flood();

  /* The honest chip was measured all along, and the counters show it. */
  uint64_t t_end = tu_unix_ns();
  tu_sleep_ms(1500); /* the writer flushes every 100 ms */
  expect_continuous(t_start, t_end);
  ck_assert_double_gt(metric("chiploc_rtt_seconds_count"), rtt_count0);
  ck_assert_double_gt(metric("chiploc_probes_sent_total"), probes0);
  ck_assert_double_gt(metric("chiploc_measurements_total"), 0);
  ck_assert_double_gt(metric("chiploc_db_rows_written_total"), 0);
  ck_assert_double_gt(metric("chiploc_db_batch_seconds_count"), 0);
  /* Challenges were signed and answers checked on the verify threads (the
   * default), and the
   * probe lag histogram counts the challenges sent. */
  ck_assert_double_gt(metric("chiploc_verify_queued_total"), 0);
  ck_assert_double_gt(metric("chiploc_sign_queued_total"), 0);
  ck_assert_double_gt(metric("chiploc_probe_lag_seconds_count"), 0);
  ck_assert_double_ge(metric("chiploc_db_queue_depth"), 0);
  ck_assert_double_ge(metric("chiploc_spool_bytes"), 0);
  char *text = scrape_port(W.mport);
  ck_assert_ptr_nonnull(strstr(text, "# TYPE chiploc_rtt_seconds histogram\n"));
  ck_assert_ptr_nonnull(strstr(text, "chiploc_rtt_seconds_bucket{le=\"1e-05\"} "));
  ck_assert_ptr_nonnull(strstr(text, "chiploc_rtt_seconds_bucket{le=\"+Inf\"} "));
  free(text);
  /* The honest agent (the only peer on 127.0.0.1) never had to reconnect. */
  ck_assert_int_eq(tu_count_in_file(W.lmlog, "msg=\"connection accepted\" peer=127.0.0.1:"), 1);

  check_verifier(log);

  ck_assert_int_eq(tu_stop(ag, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);
  ck_assert_int_ge(tu_count_in_file(W.lmlog, "conns_refused_per_address="), 1);
  cl_key_destroy(&W.b);
  cl_key_destroy(&W.c);
  cl_key_destroy(&W.u);
  tu_release();
}
END_TEST

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  signal(SIGPIPE, SIG_IGN);
  Suite *s = suite_create("hostile");
  TCase *tc = tcase_create("processes");
  tcase_set_timeout(tc, 280);
  tcase_add_test(tc, test_hostile_inputs);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
