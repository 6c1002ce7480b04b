/*
 * Hostile input suite: the real landmarkd (metrics endpoint on) and a real
 * chipagent with one honest chip run as separate processes against a real
 * PostgreSQL, while an in-test client speaking protocol 2 itself sends
 * every hostile input of the operations list in turn: an oversized length
 * prefix (before and after registration), a truncated frame then silence
 * before registration (handshake timeout) and a trickled, never finished
 * frame after it (idle timeout), garbage bytes, an unknown message type, an
 * envelope of another protocol version (a v1 agent's Register), messages
 * out of turn, wrong field lengths, a bad, a replayed, a late and a
 * misdirected answer, answers to probes never issued, an answer for a chip
 * not registered on the connection, unenrolled, duplicate, unusable and
 * unasked offers, and a flood of connections from one address; then the
 * attacks on the session: forged MACs, MACs under a stale session key and
 * under another landmark's session key, transcripts signed by another key,
 * over other bytes, omitting or reordering probes or replayed, a Confirm
 * replayed from an earlier connection or on the same one, a Register
 * replayed byte for byte, and unknown cipher suites.
 *
 * Each case asserts its specific reaction (Error code and text, close or
 * the session going on), that its counter moved on /metrics, that the
 * rate-limited rejection log line names its reason, and where an answer or
 * a transcript was refused, which record (if any) the database holds for
 * that burst. Throughout, the honest chip must keep being measured: no gap
 * between its full-burst measurements longer than twice the probe interval.
 * Hostile connections come from 127.0.0.2 (and the flood from 127.0.0.3),
 * so the per-address limit never touches the honest agent on 127.0.0.1.
 * At the end every stored record is re-verified offline.
 *
 * The second part runs `chiploc verify --follow --metrics` for a few rounds
 * and checks its counters against the attestations and alerts tables.
 *
 * test_second_agent: a second real chipagent with the same chip key as the
 * first registers the chip with the same landmarkd. Its verified session
 * takes the chip; the first agent is told (ERROR_CHIP_TAKEN_OVER) and logs the
 * error naming its chip, the landmark logs a warning naming the chip by
 * serial and both agents, counts it on /metrics, and the chip goes on
 * being measured through the second agent; the first does not take it
 * back (its reconnection waits for the hour's hold).
 */
#define _GNU_SOURCE
#include "cl_chipsess.h"
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
/* Above one probe cycle (1.1 s + 3 x 0.4 s) with room for a second: a case
 * that starts waiting just after a burst began waits for the next one
 * without sending a frame, and a slow sanitizer build on a loaded machine
 * must not be cut by the idle timeout meanwhile. */
#define IDLE_S 6
#define PER_ADDRESS 8
#define ROGUE_ADDR "127.0.0.2"
#define FLOOD_ADDR "127.0.0.3"

static struct {
  char *dir, *db, *lmlog;
  int port, mport;
  cl_key *b, *c, *u; /* rogue chips: B and C enrolled, U not */
  cl_key *l2;        /* another landmark's key, never added */
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

/* ---- a blocking client speaking (and breaking) protocol 2 ----------------- */

#define HC_CHIPS 2

/*
 * One connection of the rogue agent: its chips and their sessions (as
 * chipagent keeps them, on the tu_chip helpers), and how many Challenges
 * each chip has received. Every burst has exactly BURST probes (a probe put
 * off by max_pending_challenges is not one of them), so that count says
 * where in its burst a Challenge is. Not to be copied: the sessions point
 * into keys.
 */
typedef struct {
  tu_wire w;
  uint8_t landmark[CL_PK_LEN];
  size_t n;
  cl_key *chips[HC_CHIPS];
  cl_chipsess sess[HC_CHIPS];
  uint8_t keys[HC_CHIPS * CL_SESSION_KEY_LEN];
  uint64_t seen[HC_CHIPS];
} hc;

/* One Challenge as received. */
typedef struct {
  uint8_t chip[CL_PK_LEN];
  uint64_t seq;
  uint8_t nonce[CL_NONCE_LEN];
  uint64_t pos; /* its place in the burst, 0..BURST-1 */
} hc_probe;

/* Connects from the loopback address src; 0, or -1 if connect fails. */
static int hc_open(hc *h, const char *src) {
  memset(h, 0, sizeof *h);
  return tu_wire_connect(&h->w, src, W.port);
}

/* The socket only: the sessions stay (a later case answers under one). */
static void hc_close(hc *h) { tu_wire_close(&h->w); }

static size_t hc_index(const hc *h, const uint8_t chip[CL_PK_LEN]) {
  for (size_t i = 0; i < h->n; i++)
    if (memcmp(cl_key_public(h->chips[i]), chip, CL_PK_LEN) == 0) return i;
  return h->n;
}

/* Next message: 1 and *m, 0 when the landmark closed, -1 on timeout. */
static int hc_recv(hc *h, cl_msg *m, int timeout_ms) {
  int rc = tu_wire_recv(&h->w, m, timeout_ms);
  if (rc != 0) return rc == TU_WIRE_EOF ? 0 : -1;
  if (m->type == CL_MSG_CHALLENGE) {
    size_t i = hc_index(h, m->u.challenge.chip);
    if (i < h->n) h->seen[i]++;
  }
  return 1;
}

/* Everything that has arrived, read and dropped (Challenges counted). */
static void hc_drain(hc *h) {
  cl_msg m;
  while (hc_recv(h, &m, 0) == 1) {
  }
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
  ck_assert_uint_eq(tu_chip_hello(&h->w, h->landmark), CL_SUITE_ED25519_X25519);
}

static void hc_connect(hc *h) {
  ck_assert_int_eq(hc_open(h, ROGUE_ADDR), 0);
  hc_hello(h);
}

/* The chips this connection speaks for, with fresh sessions. */
static void hc_chips(hc *h, cl_key *const *keys, size_t n) {
  ck_assert(n >= 1 && n <= HC_CHIPS);
  h->n = n;
  for (size_t i = 0; i < n; i++) {
    h->chips[i] = keys[i];
    cl_chipsess_init(&h->sess[i], h->keys + i * CL_SESSION_KEY_LEN);
  }
}

/* A fresh connection whose chips all completed their handshake (Register,
 * RegisterResult, Confirm sent). */
static void hc_connect_confirmed(hc *h, cl_key *const *keys, size_t n) {
  hc_connect(h);
  hc_chips(h, keys, n);
  ck_assert_uint_eq(tu_chip_register(&h->w, h->landmark, h->chips, n, h->sess, NULL), n);
}

/* The same, and a first Challenge has come: the landmark verified a
 * Confirm, a chip is active. */
static void hc_connect_registered(hc *h, cl_key *const *keys, size_t n) {
  hc_connect_confirmed(h, keys, n);
  cl_msg m;
  for (;;) {
    ck_assert_msg(hc_recv(h, &m, 5000) == 1, "no Challenge within 5 s of the Confirm");
    if (m.type == CL_MSG_CHALLENGE) break;
    ck_assert_msg(m.type == CL_MSG_ERROR, "unexpected %s", cl_msg_type_name(m.type));
  }
}

/* A Register with the given offers, encoded into out (cap bytes; *len set)
 * and sent as it is. */
static void hc_send_offers(hc *h, uint32_t suite, const cl_chip_offer *o, size_t n, uint8_t *out,
                           size_t cap, size_t *len) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER;
  snprintf(m.u.reg.agent, sizeof m.u.reg.agent, "hostile");
  m.u.reg.suite = suite;
  m.u.reg.n = n;
  memcpy(m.u.reg.chips, o, n * sizeof *o);
  ck_assert_int_eq(cl_msg_encode(&m, out, cap, len), CL_OK);
  hc_send_raw(h, out, *len);
}

/* A fresh offer of session s for chip k to this connection's landmark. */
static void hc_offer(hc *h, cl_chipsess *s, const cl_key *k, cl_chip_offer *o) {
  ck_assert_int_eq(
      cl_chipsess_offer(s, CL_SUITE_ED25519_X25519, h->landmark, cl_key_public(k), o), CL_OK);
}

/* The next message must be the RegisterResult of n offers. */
static void hc_register_result(hc *h, size_t n, cl_msg *res) {
  ck_assert_int_eq(hc_recv(h, res, 5000), 1);
  ck_assert_msg(res->type == CL_MSG_REGISTER_RESULT, "%s instead of RegisterResult",
                cl_msg_type_name(res->type));
  ck_assert_uint_eq(res->u.reg_result.n, n);
}

/* Waits for an Error frame, skipping Challenges and BurstEnds; returns its
 * code and copies its text. */
static cl_wire_error hc_expect_error(hc *h, char *text, size_t textlen) {
  cl_msg m;
  for (;;) {
    int rc = hc_recv(h, &m, 5000);
    ck_assert_msg(rc == 1, rc == 0 ? "closed without an Error frame" : "no Error frame in 5 s");
    if (m.type == CL_MSG_ERROR) break;
    ck_assert_msg(m.type == CL_MSG_CHALLENGE || m.type == CL_MSG_BURST_END, "unexpected %s",
                  cl_msg_type_name(m.type));
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

/* The next messages are exactly one Error (code want, text containing
 * text_has) and the close: no RegisterResult, no Challenge first. */
static void hc_expect_error_then_closed(hc *h, cl_wire_error want, const char *text_has) {
  cl_msg m;
  ck_assert_msg(hc_recv(h, &m, 5000) == 1, "no Error frame in 5 s");
  ck_assert_msg(m.type == CL_MSG_ERROR, "%s before the Error", cl_msg_type_name(m.type));
  ck_assert_msg(m.u.error.code == want, "%s (\"%s\"), want %s", cl_wire_error_name(m.u.error.code),
                m.u.error.text, cl_wire_error_name(want));
  if (text_has)
    ck_assert_msg(strstr(m.u.error.text, text_has) != NULL, "error text \"%s\", want \"%s\" in it",
                  m.u.error.text, text_has);
  int rc = hc_recv(h, &m, 5000);
  ck_assert_msg(rc == 0, rc == 1 ? "%s after the closing Error" : "still open 5 s after the Error",
                cl_msg_type_name(m.type));
}

/* The chip's next Challenge, skipping other chips' Challenges; anything
 * else fails the test. */
static void hc_next_challenge(hc *h, size_t i, hc_probe *p) {
  cl_msg m;
  for (;;) {
    ck_assert_msg(hc_recv(h, &m, 5000) == 1, "no Challenge within 5 s");
    ck_assert_msg(m.type == CL_MSG_CHALLENGE, "%s instead of a Challenge",
                  cl_msg_type_name(m.type));
    if (hc_index(h, m.u.challenge.chip) == i) break;
  }
  memcpy(p->chip, m.u.challenge.chip, CL_PK_LEN);
  p->seq = m.u.challenge.seq;
  memcpy(p->nonce, m.u.challenge.nonce, CL_NONCE_LEN);
  p->pos = (h->seen[i] - 1) % BURST;
}

/* The first probe of the chip's next burst, fresh: what had arrived is
 * dropped first, so that answered at once it is inside its deadline. */
static void hc_burst_start(hc *h, size_t i, hc_probe *p) {
  hc_drain(h);
  cl_msg m;
  for (;;) {
    /* A burst is due within an interval; the margin is for a loaded
     * machine running the sanitizer build. */
    ck_assert_msg(hc_recv(h, &m, 30000) == 1, "no Challenge within 30 s");
    if (m.type != CL_MSG_CHALLENGE || hc_index(h, m.u.challenge.chip) != i) continue;
    if ((h->seen[i] - 1) % BURST == 0) break;
  }
  memcpy(p->chip, m.u.challenge.chip, CL_PK_LEN);
  p->seq = m.u.challenge.seq;
  memcpy(p->nonce, m.u.challenge.nonce, CL_NONCE_LEN);
  p->pos = 0;
}

/* The chip's honest answer (remembered for its transcript). */
static void hc_answer(hc *h, size_t i, const hc_probe *p) {
  uint8_t mac[CL_MAC_LEN];
  ck_assert_int_eq(cl_chipsess_answer(&h->sess[i], p->seq, p->nonce, mac), CL_OK);
  tu_wire_respond(&h->w, p->chip, p->seq, mac);
}

/*
 * Plays one burst of chip i from its first probe. With bad set, the first
 * probe is answered with the MAC of session `under` (random bytes when it
 * is NULL), and the landmark's very next frame must be Error(BAD_MAC); the
 * other probes are answered honestly. seqs receives the burst's seqs, *end
 * the BurstEnd that must follow the last answer.
 */
static void play_burst(hc *h, size_t i, int bad, cl_chipsess *under, uint64_t seqs[BURST],
                       cl_msg *end) {
  hc_probe p;
  hc_burst_start(h, i, &p);
  for (int k = 0; k < BURST; k++) {
    if (k > 0) {
      hc_next_challenge(h, i, &p);
      ck_assert_uint_eq(p.pos, (uint64_t)k);
    }
    seqs[k] = p.seq;
    if (k > 0 || !bad) {
      hc_answer(h, i, &p);
      continue;
    }
    uint8_t mac[CL_MAC_LEN];
    if (under)
      ck_assert_int_eq(cl_chipsess_answer(under, p.seq, p.nonce, mac), CL_OK);
    else
      randombytes_buf(mac, sizeof mac);
    tu_wire_respond(&h->w, p.chip, p.seq, mac);
    /* The reply goes out at once; the next probe only after the burst gap. */
    cl_msg m;
    ck_assert_int_eq(hc_recv(h, &m, 5000), 1);
    ck_assert_msg(m.type == CL_MSG_ERROR, "%s instead of an Error", cl_msg_type_name(m.type));
    ck_assert_int_eq(m.u.error.code, CL_ERR_BAD_MAC);
    ck_assert_str_eq(m.u.error.text, "bad_mac");
  }
  for (;;) {
    ck_assert_msg(hc_recv(h, end, 5000) == 1, "no BurstEnd within 5 s of the last answer");
    if (end->type == CL_MSG_CHALLENGE && hc_index(h, end->u.challenge.chip) != i) continue;
    break;
  }
  ck_assert_msg(end->type == CL_MSG_BURST_END, "%s instead of the BurstEnd",
                cl_msg_type_name(end->type));
  ck_assert_uint_eq(hc_index(h, end->u.burst_end.chip), i);
}

/*
 * Sends chip i's Transcript over seqs[0..n) (entries as the chip answered
 * them) with first_seq, signed by `signer` over the chip's session; with
 * flip, one bit of the first entry's MAC is changed before signing (the
 * signature is over other bytes than the landmark's).
 */
static void hc_transcript(hc *h, size_t i, const uint64_t *seqs, size_t n, uint64_t first_seq,
                          const cl_key *signer, int flip) {
  cl_probe_entry e[CL_MAX_BURST];
  ck_assert_int_eq(cl_chipsess_transcript(&h->sess[i], seqs, n, e), CL_OK);
  if (flip) e[0].mac[5] ^= 0x10;
  cl_msg t;
  memset(&t, 0, sizeof t);
  t.type = CL_MSG_TRANSCRIPT;
  memcpy(t.u.transcript.chip, cl_key_public(h->chips[i]), CL_PK_LEN);
  t.u.transcript.first_seq = first_seq;
  ck_assert_int_eq(cl_transcript_sign(&h->sess[i].hs, e, n, signer, t.u.transcript.sig), CL_OK);
  hc_send(h, &t);
}

/* ---- the database ------------------------------------------------------------ */

/* The FROM and WHERE of the rows of chip `serial` whose fastest probe (the
 * seq column) is one of seqs[0..n). */
static char *rows_where(const char *serial, const uint64_t *seqs, size_t n) {
  char in[256] = "";
  size_t off = 0;
  for (size_t k = 0; k < n; k++)
    off += (size_t)snprintf(in + off, sizeof in - off, "%s%llu", k ? "," : "",
                            (unsigned long long)seqs[k]);
  return tu_fmt("FROM measurements m JOIN chips c ON c.id = m.chip_id WHERE c.serial = '%s' "
                "AND m.seq IN (%s)",
                serial, in);
}

static long long rows_count(const char *serial, const uint64_t *seqs, size_t n) {
  return tu_sql_int(W.db, tu_fmt("SELECT count(*) %s", rows_where(serial, seqs, n)));
}

/*
 * Waits up to 5 s for the record of chip `serial` from the burst of
 * seqs[0..n) (the row whose fastest probe is one of them) and returns its
 * entries in e[0..*count) and its probes_sent.
 */
static void stored_record(const char *serial, const uint64_t *seqs, size_t n,
                          cl_probe_entry e[CL_MAX_BURST], size_t *count, long long *sent) {
  char *q = tu_fmt("SELECT m.probes_sent || ':' || encode(m.probes, 'hex') %s",
                   rows_where(serial, seqs, n));
  char *v = NULL;
  for (int t = 0; t < 50 && !(v = tu_sql_value(W.db, q)); t++) tu_sleep_ms(100);
  ck_assert_msg(v != NULL, "no record of chip %s for the burst of seq %llu", serial,
                (unsigned long long)seqs[0]);
  char *colon = strchr(v, ':');
  ck_assert_ptr_nonnull(colon);
  *sent = strtoll(v, NULL, 10);
  size_t hexlen = strlen(colon + 1);
  uint8_t blob[CL_PROBES_BLOB_MAX];
  ck_assert_uint_le(hexlen / 2, sizeof blob);
  ck_assert_int_eq(cl_hex_decode(blob, hexlen / 2, colon + 1, hexlen), CL_OK);
  ck_assert_int_eq(cl_probes_blob_get(e, count, blob, hexlen / 2), CL_OK);
  free(v);
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

/* Appends field `no` as a varint. */
static size_t pb_uint(uint8_t *o, unsigned no, uint64_t v) {
  size_t n = pb_varint(o, (uint64_t)no << 3);
  return n + pb_varint(o + n, v);
}

/* Envelope{version, field `no` = msg}. */
static size_t pb_envelope_v(uint8_t *o, uint32_t version, unsigned no, const uint8_t *msg,
                            size_t len) {
  size_t n = pb_uint(o, 1, version);
  return n + pb_bytes(o + n, no, msg, len);
}

static size_t pb_envelope(uint8_t *o, unsigned no, const uint8_t *msg, size_t len) {
  return pb_envelope_v(o, CL_PROTOCOL_VERSION, no, msg, len);
}

/* A Register of one ChipOffer whose fields have the given lengths. */
static size_t pb_register(uint8_t *o, size_t chip_len, size_t eph_len, size_t nonce_len) {
  uint8_t offer[160], reg[200], fill[64];
  memset(fill, 0x5a, sizeof fill);
  size_t n = pb_bytes(offer, 1, cl_key_public(W.c), chip_len);
  n += pb_bytes(offer + n, 2, fill, eph_len);
  n += pb_bytes(offer + n, 3, fill, nonce_len);
  size_t r = pb_bytes(reg, 1, "x", 1);
  r += pb_uint(reg + r, 2, CL_SUITE_ED25519_X25519);
  r += pb_bytes(reg + r, 3, offer, n);
  return pb_envelope(o, 3, reg, r);
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

/* The counter moved by exactly n (nothing but the case moves it), and the
 * reason was logged. */
static void expect_counted_exactly(counter_mark c, double n, const char *log_reason) {
  expect_counted(c, n, log_reason);
  double v = metric(c.series);
  ck_assert_msg(v == c.before + n, "%s moved by %g, want %g", c.series, v - c.before, n);
}

static void case_oversized(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"too_large\"}");
  hc h;
  /* Before registration the limit is CL_FRAME_MAX_UNREGISTERED. */
  hc_connect(&h);
  uint8_t hdr[CL_FRAME_HDR_LEN];
  cl_frame_put_header(hdr, CL_FRAME_MAX_UNREGISTERED + 1);
  hc_send_raw(&h, hdr, sizeof hdr);
  hc_expect_error_then_closed(&h, CL_ERR_TOO_LARGE, "8193 above limit 8192");
  hc_close(&h);
  /* After registration the limit is max_frame_bytes (65536 here). */
  cl_key *keys[] = {W.c};
  hc_connect_registered(&h, keys, 1);
  cl_frame_put_header(hdr, 0x7fffffffu);
  hc_send_raw(&h, hdr, sizeof hdr);
  char text[256];
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_TOO_LARGE);
  ck_assert_msg(strstr(text, "above limit 65536") != NULL, "error text \"%s\"", text);
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
  hc_connect_confirmed(&h, keys, 1);
  uint64_t t0 = now_ms(); /* the Confirm was the last complete frame */
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
  ck_assert_uint_ge(h.seen[0], 1); /* the chip was active: it is the idle timeout */
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
  hc_expect_error_then_closed(&h, want, text_has);
  hc_close(&h);
}

static void case_garbage(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"malformed\"}");
  uint8_t junk[16];
  memset(junk, 0xff, sizeof junk); /* a varint that never ends */
  closing_case(junk, sizeof junk, CL_ERR_MALFORMED, "not a valid Envelope");
  /* A zero length prefix is malformed too. */
  hc h;
  hc_connect(&h);
  uint8_t zero[CL_FRAME_HDR_LEN] = {0};
  hc_send_raw(&h, zero, sizeof zero);
  hc_expect_error_then_closed(&h, CL_ERR_MALFORMED, "zero-length frame");
  hc_close(&h);
  expect_counted(c, 2, "malformed");
}

static void case_unknown_type(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"unknown_type\"}");
  uint8_t body[16];
  size_t n = pb_envelope(body, 15, (const uint8_t *)"abc", 3); /* only field 15 */
  closing_case(body, n, CL_ERR_MALFORMED, "unknown message type");
  expect_counted(c, 1, "unknown_type");
}

/* A protocol-1 agent's first frame: Envelope{version 1, Register{agent,
 * ChipClaim{chip_id, proof}}}, as v1 chipagent sent it; then a version
 * from the future. Both are refused with ERROR_VERSION naming both
 * versions, and closed. */
static void case_version(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"version\"}");
  uint8_t claim[128], reg[160], env[192], proof[CL_SIG_LEN];
  randombytes_buf(proof, sizeof proof);
  size_t n = pb_bytes(claim, 1, cl_key_public(W.c), CL_PK_LEN);
  n += pb_bytes(claim + n, 2, proof, sizeof proof);
  size_t r = pb_bytes(reg, 1, "v1-agent", 8);
  r += pb_bytes(reg + r, 2, claim, n);
  size_t e = pb_envelope_v(env, 1, 3, reg, r);
  closing_case(env, e, CL_ERR_VERSION, "protocol version 1, this side speaks 2");

  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER;
  snprintf(m.u.reg.agent, sizeof m.u.reg.agent, "v3");
  m.u.reg.suite = CL_SUITE_ED25519_X25519;
  uint8_t buf[512];
  size_t len;
  ck_assert_int_eq(cl_msg_encode_version(&m, 3, buf, sizeof buf, &len), CL_OK);
  closing_case(buf + CL_FRAME_HDR_LEN, len - CL_FRAME_HDR_LEN, CL_ERR_VERSION,
               "protocol version 3, this side speaks 2");
  expect_counted(c, 2, "version");
}

/* Messages out of turn, each closing its connection: a Response and a
 * Confirm before any Register, a Response after the RegisterResult but
 * before the Confirm, and a Challenge (the landmark's message) from a
 * registered agent. */
static void case_unexpected(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"unexpected\"}");
  uint8_t z[CL_MAC_LEN] = {1};
  hc h;
  hc_connect(&h);
  tu_wire_respond(&h.w, cl_key_public(W.c), 1, z);
  hc_expect_error_then_closed(&h, CL_ERR_UNEXPECTED, "response not allowed before Register");
  hc_close(&h);

  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CONFIRM;
  m.u.confirm.n = 1;
  memcpy(m.u.confirm.chips[0].chip, cl_key_public(W.c), CL_PK_LEN);
  randombytes_buf(m.u.confirm.chips[0].sig, CL_SIG_LEN);
  hc_connect(&h);
  hc_send(&h, &m);
  hc_expect_error_then_closed(&h, CL_ERR_UNEXPECTED, "confirm not allowed before Register");
  hc_close(&h);

  hc_connect(&h);
  cl_key *keys[] = {W.c};
  hc_chips(&h, keys, 1);
  cl_chip_offer o;
  hc_offer(&h, &h.sess[0], W.c, &o);
  uint8_t buf[512];
  size_t len;
  hc_send_offers(&h, CL_SUITE_ED25519_X25519, &o, 1, buf, sizeof buf, &len);
  hc_register_result(&h, 1, &m);
  ck_assert_int_eq(m.u.reg_result.r[0].accepted, 1);
  tu_wire_respond(&h.w, cl_key_public(W.c), 1, z);
  hc_expect_error_then_closed(&h, CL_ERR_UNEXPECTED,
                              "response not allowed before a chip's Confirm verified");
  hc_close(&h);

  hc_connect_registered(&h, keys, 1);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CHALLENGE;
  memcpy(m.u.challenge.chip, cl_key_public(W.c), CL_PK_LEN);
  m.u.challenge.seq = 1;
  hc_send(&h, &m);
  char text[256];
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_UNEXPECTED);
  ck_assert_msg(strstr(text, "challenge not allowed after registration"), "error text \"%s\"",
                text);
  hc_expect_closed(&h);
  hc_close(&h);
  expect_counted(c, 4, "unexpected");
}

/* Fields of the wrong length, each in the state its message belongs to;
 * the error names the field and the length. */
static void case_wrong_lengths(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"malformed\"}");
  uint8_t env[512], msg[200], zeros[64] = {0};
  size_t e = pb_register(env, 31, CL_EPH_LEN, CL_NONCE_LEN);
  closing_case(env, e, CL_ERR_MALFORMED, "register.chips.chip_id has 31 bytes, want 32");
  e = pb_register(env, CL_PK_LEN, 31, CL_NONCE_LEN);
  closing_case(env, e, CL_ERR_MALFORMED, "register.chips.ephemeral has 31 bytes, want 32");

  /* A Confirm with a 63-byte signature, after the RegisterResult. */
  hc h;
  hc_connect(&h);
  cl_key *keys[] = {W.c};
  hc_chips(&h, keys, 1);
  cl_chip_offer o;
  hc_offer(&h, &h.sess[0], W.c, &o);
  size_t len;
  hc_send_offers(&h, CL_SUITE_ED25519_X25519, &o, 1, env, sizeof env, &len);
  cl_msg res;
  hc_register_result(&h, 1, &res);
  ck_assert_int_eq(res.u.reg_result.r[0].accepted, 1);
  uint8_t cc[128];
  size_t n = pb_bytes(cc, 1, cl_key_public(W.c), CL_PK_LEN);
  n += pb_bytes(cc + n, 2, zeros, 63);
  size_t k = pb_bytes(msg, 1, cc, n);
  e = pb_envelope(env, 8, msg, k);
  hc_send_body(&h, env, e);
  hc_expect_error_then_closed(&h, CL_ERR_MALFORMED,
                              "confirm.chips.signature has 63 bytes, want 64");
  hc_close(&h);

  /* A Response with a 31-byte MAC and a Transcript with a 63-byte
   * signature, on registered connections. */
  hc_connect_registered(&h, keys, 1);
  n = pb_bytes(msg, 1, cl_key_public(W.c), CL_PK_LEN);
  n += pb_uint(msg + n, 2, 7);
  n += pb_bytes(msg + n, 3, zeros, 31);
  e = pb_envelope(env, 6, msg, n);
  hc_send_body(&h, env, e);
  char text[256];
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_MALFORMED);
  ck_assert_msg(strstr(text, "response.mac has 31 bytes") != NULL, "error text \"%s\"", text);
  hc_expect_closed(&h);
  hc_close(&h);
  hc_connect_registered(&h, keys, 1);
  n = pb_bytes(msg, 1, cl_key_public(W.c), CL_PK_LEN);
  n += pb_uint(msg + n, 2, 7);
  n += pb_bytes(msg + n, 3, zeros, 63);
  e = pb_envelope(env, 10, msg, n);
  hc_send_body(&h, env, e);
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_MALFORMED);
  ck_assert_msg(strstr(text, "transcript.signature has 63 bytes") != NULL, "error text \"%s\"",
                text);
  hc_expect_closed(&h);
  hc_close(&h);
  expect_counted(c, 5, "malformed");
}

/* A MAC with one bit changed, a replayed answer, a late answer, and an
 * answer and a transcript for a chip not registered here, on one
 * registered connection that stays open through all of them. */
static void case_response_checks(void) {
  counter_mark bad = mark("chiploc_responses_rejected_total{reason=\"bad_mac\"}");
  counter_mark rep = mark("chiploc_responses_rejected_total{reason=\"replay\"}");
  counter_mark late = mark("chiploc_responses_rejected_total{reason=\"late\"}");
  counter_mark unreg = mark("chiploc_responses_rejected_total{reason=\"not_registered\"}");
  counter_mark ok = mark("chiploc_responses_accepted_total");
  hc h;
  cl_key *keys[] = {W.c};
  hc_connect_registered(&h, keys, 1);
  hc_probe p;
  uint8_t mac[CL_MAC_LEN];
  char text[256];

  hc_burst_start(&h, 0, &p);
  ck_assert_int_eq(cl_chipsess_answer(&h.sess[0], p.seq, p.nonce, mac), CL_OK);
  mac[7] ^= 0x01;
  tu_wire_respond(&h.w, p.chip, p.seq, mac);
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_BAD_MAC);
  ck_assert_str_eq(text, "bad_mac");
  expect_counted(bad, 1, "bad_mac");

  hc_burst_start(&h, 0, &p);
  ck_assert_int_eq(cl_chipsess_answer(&h.sess[0], p.seq, p.nonce, mac), CL_OK);
  tu_wire_respond(&h.w, p.chip, p.seq, mac);
  tu_wire_respond(&h.w, p.chip, p.seq, mac);
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_REPLAY);
  ck_assert_str_eq(text, "replay");
  expect_counted(rep, 1, "replay");
  expect_counted(ok, 1, NULL);

  hc_burst_start(&h, 0, &p);
  tu_sleep_ms(DEADLINE_MS + 150);
  ck_assert_int_eq(cl_chipsess_answer(&h.sess[0], p.seq, p.nonce, mac), CL_OK);
  tu_wire_respond(&h.w, p.chip, p.seq, mac);
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_LATE);
  ck_assert_str_eq(text, "late");
  expect_counted(late, 1, "late");

  /* Chip U has no session here (it is not even enrolled). */
  tu_wire_respond(&h.w, cl_key_public(W.u), p.seq, mac);
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_NOT_REGISTERED);
  cl_msg t;
  memset(&t, 0, sizeof t);
  t.type = CL_MSG_TRANSCRIPT;
  memcpy(t.u.transcript.chip, cl_key_public(W.u), CL_PK_LEN);
  t.u.transcript.first_seq = p.seq;
  hc_send(&h, &t);
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_NOT_REGISTERED);
  expect_counted(unreg, 2, "not_registered");

  /* None of these closed the session: challenges keep coming. */
  hc_burst_start(&h, 0, &p);
  hc_close(&h);
}

/* Answers to probes never issued to the chip they name: another chip's
 * probe (answered under the naming chip's own session), then a seq never
 * sent, on a connection with two chips; with max_pending_challenges = 1
 * their probes also queue up behind each other. */
static void case_unknown_probes(void) {
  counter_mark unknown = mark("chiploc_responses_rejected_total{reason=\"unknown_probe\"}");
  counter_mark deferred = mark("chiploc_probes_deferred_total");
  hc h;
  cl_key *keys[] = {W.b, W.c};
  hc_connect_registered(&h, keys, 2);
  uint64_t t0 = now_ms();
  hc_probe p;
  cl_msg m;
  hc_drain(&h);
  for (;;) {
    ck_assert_msg(hc_recv(&h, &m, 10000) == 1, "no Challenge within 10 s");
    if (m.type == CL_MSG_CHALLENGE) break;
  }
  p.seq = m.u.challenge.seq;
  memcpy(p.nonce, m.u.challenge.nonce, CL_NONCE_LEN);
  size_t to = hc_index(&h, m.u.challenge.chip), other = 1 - to;
  uint8_t mac[CL_MAC_LEN];
  ck_assert_int_eq(cl_chipsess_answer(&h.sess[other], p.seq, p.nonce, mac), CL_OK);
  tu_wire_respond(&h.w, cl_key_public(h.chips[other]), p.seq, mac);
  char text[256];
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_UNKNOWN_PROBE);
  ck_assert_str_eq(text, "unknown_probe");

  uint64_t never = p.seq + 1000000;
  ck_assert_int_eq(cl_chipsess_answer(&h.sess[other], never, p.nonce, mac), CL_OK);
  tu_wire_respond(&h.w, cl_key_public(h.chips[other]), never, mac);
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_UNKNOWN_PROBE);
  expect_counted(unknown, 2, "unknown_probe");

  /* Leave both chips' probes unanswered for a few seconds. */
  while (now_ms() - t0 < 3000) hc_recv(&h, &m, 200);
  expect_counted(deferred, 1, NULL);
  hc_close(&h);
}

/* Offers the landmark refuses: a chip not enrolled, a chip offered twice,
 * an ephemeral key of small order, and after registration an offer for a
 * chip the landmark did not ask to rekey. */
static void case_registrations(void) {
  counter_mark ne = mark("chiploc_registrations_refused_total{reason=\"not_enrolled\"}");
  counter_mark dup = mark("chiploc_registrations_refused_total{reason=\"duplicate\"}");
  counter_mark bp = mark("chiploc_registrations_refused_total{reason=\"bad_proof\"}");
  counter_mark na = mark("chiploc_registrations_refused_total{reason=\"not_asked\"}");
  hc h;
  cl_msg res;
  cl_key *u[] = {W.u};
  hc_connect(&h);
  hc_chips(&h, u, 1);
  ck_assert_uint_eq(tu_chip_register(&h.w, h.landmark, h.chips, 1, h.sess, &res), 0);
  ck_assert_int_eq(res.u.reg_result.r[0].reason, CL_REFUSE_NOT_ENROLLED);
  hc_expect_closed(&h); /* nothing accepted: nothing to measure */
  hc_close(&h);
  expect_counted(ne, 1, "not_enrolled");

  /* Chip B twice in one Register: the first offer stands, the second is
   * refused. */
  cl_key *bb[] = {W.b};
  hc_connect(&h);
  hc_chips(&h, bb, 1);
  cl_chipsess extra;
  uint8_t extra_key[CL_SESSION_KEY_LEN];
  cl_chipsess_init(&extra, extra_key);
  cl_chip_offer o[2];
  hc_offer(&h, &h.sess[0], W.b, &o[0]);
  hc_offer(&h, &extra, W.b, &o[1]);
  uint8_t buf[1024];
  size_t len;
  hc_send_offers(&h, CL_SUITE_ED25519_X25519, o, 2, buf, sizeof buf, &len);
  hc_register_result(&h, 2, &res);
  ck_assert_int_eq(res.u.reg_result.r[0].accepted, 1);
  ck_assert_int_eq(res.u.reg_result.r[1].accepted, 0);
  ck_assert_int_eq(res.u.reg_result.r[1].reason, CL_REFUSE_DUPLICATE);
  hc_close(&h);
  expect_counted(dup, 1, "duplicate");

  /* An enrolled chip whose ephemeral key is a point of order 8: no session
   * key can come of it. */
  static const uint8_t small_order[CL_EPH_LEN] = {
      0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3,
      0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32,
      0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00};
  hc_connect(&h);
  hc_chips(&h, bb, 1);
  hc_offer(&h, &h.sess[0], W.b, &o[0]);
  memcpy(o[0].eph, small_order, CL_EPH_LEN);
  hc_send_offers(&h, CL_SUITE_ED25519_X25519, o, 1, buf, sizeof buf, &len);
  hc_register_result(&h, 1, &res);
  ck_assert_int_eq(res.u.reg_result.r[0].accepted, 0);
  ck_assert_int_eq(res.u.reg_result.r[0].reason, CL_REFUSE_BAD_PROOF);
  hc_expect_closed(&h);
  hc_close(&h);
  expect_counted(bp, 1, "bad_proof");

  /* A rekey offer nobody asked for: refused, and the session it would
   * have replaced goes on (the next burst is answered under it). */
  cl_key *cc[] = {W.c};
  hc_connect_registered(&h, cc, 1);
  hc_offer(&h, &extra, W.c, &o[0]);
  hc_send_offers(&h, CL_SUITE_ED25519_X25519, o, 1, buf, sizeof buf, &len);
  for (;;) {
    ck_assert_msg(hc_recv(&h, &res, 5000) == 1, "no RegisterResult");
    if (res.type == CL_MSG_REGISTER_RESULT) break;
    ck_assert_msg(res.type == CL_MSG_CHALLENGE || res.type == CL_MSG_BURST_END, "unexpected %s",
                  cl_msg_type_name(res.type));
  }
  ck_assert_int_eq(res.u.reg_result.n, 1);
  ck_assert_int_eq(res.u.reg_result.r[0].accepted, 0);
  ck_assert_int_eq(res.u.reg_result.r[0].reason, CL_REFUSE_NOT_ASKED);
  uint64_t seqs[BURST];
  play_burst(&h, 0, 0, NULL, seqs, &res);
  ck_assert_uint_eq(res.u.burst_end.n, BURST);
  hc_close(&h);
  cl_chipsess_end(&extra);
  expect_counted(na, 1, "not_asked");
}

/*
 * One burst of chip C on a registered connection whose first probe is
 * answered with a MAC that is not the session's (under `under`, or random
 * bytes): ERROR_BAD_MAC for it, bad_mac counted once, the other probes
 * accepted. The BurstEnd names only those, and the record stored from the
 * burst (the chip signs its transcript honestly) holds exactly them: the
 * refused answer is in no record.
 */
static void bad_mac_burst(hc *h, cl_chipsess *under) {
  counter_mark bad = mark("chiploc_responses_rejected_total{reason=\"bad_mac\"}");
  counter_mark ok = mark("chiploc_transcripts_total{result=\"ok\"}");
  uint64_t seqs[BURST];
  cl_msg end;
  play_burst(h, 0, 1, under, seqs, &end);
  ck_assert_uint_eq(end.u.burst_end.n, BURST - 1);
  for (int k = 1; k < BURST; k++) ck_assert_uint_eq(end.u.burst_end.seqs[k - 1], seqs[k]);
  hc_transcript(h, 0, end.u.burst_end.seqs, end.u.burst_end.n, end.u.burst_end.seqs[0],
                h->chips[0], 0);
  expect_counted_exactly(bad, 1, "bad_mac");
  expect_counted(ok, 1, NULL);
  cl_probe_entry e[CL_MAX_BURST];
  size_t count = 0;
  long long sent = 0;
  stored_record("C-0001", seqs, BURST, e, &count, &sent);
  ck_assert_uint_eq(count, BURST - 1);
  ck_assert_int_eq(sent, BURST);
  for (size_t k = 0; k < count; k++) ck_assert_uint_eq(e[k].seq, seqs[k + 1]);
}

/* Random bytes as the MAC. */
static void case_forged_mac(void) {
  hc h;
  cl_key *keys[] = {W.c};
  hc_connect_registered(&h, keys, 1);
  bad_mac_burst(&h, NULL);
  hc_close(&h);
}

/* The chip's genuine MAC under its previous session, from an earlier
 * connection: that session's answers were accepted while it lasted. */
static void case_stale_session_mac(void) {
  hc old, h;
  cl_key *keys[] = {W.c};
  hc_connect_registered(&old, keys, 1);
  uint64_t seqs[BURST];
  cl_msg end;
  play_burst(&old, 0, 0, NULL, seqs, &end);
  ck_assert_uint_eq(end.u.burst_end.n, BURST);
  hc_close(&old);
  hc_connect_registered(&h, keys, 1);
  ck_assert_int_eq(old.sess[0].state, CL_CHIPSESS_ESTABLISHED);
  ck_assert(sodium_memcmp(old.keys, h.keys, CL_SESSION_KEY_LEN) != 0);
  bad_mac_burst(&h, &old.sess[0]);
  hc_close(&h);
  cl_chipsess_end(&old.sess[0]);
}

/* The chip's genuine MAC under its session with another landmark: the test
 * plays that landmark's half of a handshake with a key landmarkd does not
 * hold, and both halves agree on the session key. */
static void case_foreign_landmark_mac(void) {
  cl_chipsess s2;
  uint8_t k2[CL_SESSION_KEY_LEN];
  cl_chipsess_init(&s2, k2);
  cl_chip_offer o;
  ck_assert_int_eq(cl_chipsess_offer(&s2, CL_SUITE_ED25519_X25519, cl_key_public(W.l2),
                                     cl_key_public(W.c), &o),
                   CL_OK);
  cl_handshake hs;
  memset(&hs, 0, sizeof hs);
  hs.suite = CL_SUITE_ED25519_X25519;
  memcpy(hs.landmark, cl_key_public(W.l2), CL_PK_LEN);
  memcpy(hs.chip, o.chip, CL_PK_LEN);
  memcpy(hs.chip_eph, o.eph, CL_EPH_LEN);
  memcpy(hs.chip_nonce, o.nonce, CL_NONCE_LEN);
  uint8_t esk[CL_EPH_SK_LEN], lk[CL_SESSION_KEY_LEN];
  cl_eph_generate(hs.landmark_eph, esk);
  randombytes_buf(hs.landmark_nonce, CL_NONCE_LEN);
  ck_assert_int_eq(cl_hs_sign_landmark(&hs, W.l2), CL_OK);
  ck_assert_int_eq(cl_session_key(&hs, CL_SIDE_LANDMARK, esk, lk), CL_OK);
  sodium_memzero(esk, sizeof esk);
  cl_chip_result r;
  memset(&r, 0, sizeof r);
  memcpy(r.chip, hs.chip, CL_PK_LEN);
  r.accepted = 1;
  memcpy(r.eph, hs.landmark_eph, CL_EPH_LEN);
  memcpy(r.nonce, hs.landmark_nonce, CL_NONCE_LEN);
  memcpy(r.sig, hs.landmark_sig, CL_SIG_LEN);
  cl_handshake mine;
  ck_assert_int_eq(cl_chipsess_accept(&s2, &r, &mine), CL_OK);
  ck_assert(sodium_memcmp(lk, k2, CL_SESSION_KEY_LEN) == 0);
  sodium_memzero(lk, sizeof lk);

  hc h;
  cl_key *keys[] = {W.c};
  hc_connect_registered(&h, keys, 1);
  bad_mac_burst(&h, &s2);
  hc_close(&h);
  cl_chipsess_end(&s2);
}

/*
 * Transcripts that do not match the landmark's record of the burst, one
 * burst each, every probe accepted: signed by another chip's key; by the
 * chip over other bytes (a MAC bit changed); omitting the middle probe;
 * omitting the first (its first_seq is then not the burst's); reordering
 * two probes. Each gets ERROR_BAD_TRANSCRIPT naming the chip, the session
 * goes on, and no record is stored from the burst. Then an honest burst
 * and transcript is stored (the writer is first in, first out: by then
 * any record of the refused bursts would be in too), and the same
 * Transcript sent again finds no burst awaiting one.
 */
static void case_bad_transcripts(void) {
  counter_mark bad = mark("chiploc_transcripts_total{result=\"bad\"}");
  counter_mark ok = mark("chiploc_transcripts_total{result=\"ok\"}");
  enum { WRONG_KEY, OTHER_BYTES, OMIT_MIDDLE, OMIT_FIRST, REORDER, CASES };
  hc h;
  cl_key *keys[] = {W.c};
  hc_connect_registered(&h, keys, 1);
  char hex[CL_PK_HEX_LEN + 1], text[256];
  cl_pk_to_hex(cl_key_public(W.c), hex);
  hex[16] = '\0';
  uint64_t refused[CASES][BURST];
  cl_msg end;
  for (int k = 0; k < CASES; k++) {
    uint64_t *s = refused[k];
    play_burst(&h, 0, 0, NULL, s, &end);
    ck_assert_uint_eq(end.u.burst_end.n, BURST);
    const char *want = "transcript signature does not verify";
    switch (k) {
    case WRONG_KEY: hc_transcript(&h, 0, s, BURST, s[0], W.b, 0); break;
    case OTHER_BYTES: hc_transcript(&h, 0, s, BURST, s[0], W.c, 1); break;
    case OMIT_MIDDLE: {
      uint64_t two[] = {s[0], s[2]};
      hc_transcript(&h, 0, two, 2, s[0], W.c, 0);
      break;
    }
    case OMIT_FIRST: {
      hc_transcript(&h, 0, s + 1, BURST - 1, s[1], W.c, 0);
      want = tu_fmt("transcript first_seq %llu, the burst begins at %llu",
                    (unsigned long long)s[1], (unsigned long long)s[0]);
      break;
    }
    case REORDER: {
      uint64_t swapped[] = {s[0], s[2], s[1]};
      hc_transcript(&h, 0, swapped, BURST, s[0], W.c, 0);
      break;
    }
    }
    ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_BAD_TRANSCRIPT);
    ck_assert_msg(strncmp(text, "chip ", 5) == 0 && strncmp(text + 5, hex, 16) == 0 &&
                      strstr(text, want) != NULL,
                  "case %d: error text \"%s\", want chip %s and \"%s\"", k, text, hex, want);
  }
  expect_counted_exactly(bad, CASES, "bad_transcript");

  uint64_t good[BURST];
  play_burst(&h, 0, 0, NULL, good, &end);
  hc_transcript(&h, 0, good, BURST, good[0], W.c, 0);
  cl_probe_entry e[CL_MAX_BURST];
  size_t count = 0;
  long long sent = 0;
  stored_record("C-0001", good, BURST, e, &count, &sent);
  ck_assert_uint_eq(count, BURST);
  for (int k = 0; k < CASES; k++)
    ck_assert_msg(rows_count("C-0001", refused[k], BURST) == 0,
                  "a record of the burst whose transcript was refused (case %d)", k);
  expect_counted(ok, 1, NULL);

  hc_transcript(&h, 0, good, BURST, good[0], W.c, 0);
  ck_assert_int_eq(hc_expect_error(&h, text, sizeof text), CL_ERR_BAD_TRANSCRIPT);
  ck_assert_msg(strstr(text, "no burst awaits a transcript") != NULL, "error text \"%s\"", text);
  expect_counted_exactly(bad, CASES + 1, NULL);
  ck_assert_int_eq(rows_count("C-0001", good, BURST), 1);
  hc_close(&h);
}

/* The Confirm of session s as the frame it is on the wire. */
static void confirm_frame(const cl_chipsess *s, uint8_t *out, size_t cap, size_t *len) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CONFIRM;
  m.u.confirm.n = 1;
  memcpy(m.u.confirm.chips[0].chip, s->hs.chip, CL_PK_LEN);
  memcpy(m.u.confirm.chips[0].sig, s->hs.chip_sig, CL_SIG_LEN);
  ck_assert_int_eq(cl_msg_encode(&m, out, cap, len), CL_OK);
}

/*
 * Replayed handshakes. A complete handshake of chip C is captured (the
 * Register, the RegisterResult and the Confirm frames) on a first
 * connection, and proven good: the chip is probed there, and its Confirm
 * sent again on that connection is refused (ERROR_NOT_REGISTERED: no
 * handshake of the chip awaits one, an Error that does not make an agent
 * close) without ending the session. Then, on new connections: a fresh Register (the chip's own)
 * followed by the captured Confirm; the captured Register byte for byte,
 * which the landmark answers with a fresh ephemeral key and nonce, followed
 * by the captured Confirm. Either Confirm is over another handshake:
 * ERROR_BAD_HANDSHAKE naming the chip, the chip is dropped before any
 * Challenge, and the connection, with no chip left, closes.
 */
static void case_replayed_handshake(void) {
  counter_mark badhs = mark("chiploc_handshake_bad_signatures_total");
  counter_mark unexp = mark("chiploc_confirms_unexpected_total");
  char hex[CL_PK_HEX_LEN + 1], text[256];
  cl_pk_to_hex(cl_key_public(W.c), hex);
  hex[16] = '\0';
  cl_key *keys[] = {W.c};

  hc a;
  hc_connect(&a);
  hc_chips(&a, keys, 1);
  cl_chip_offer o;
  hc_offer(&a, &a.sess[0], W.c, &o);
  uint8_t reg1[512], conf1[512];
  size_t reg1_len, conf1_len;
  hc_send_offers(&a, CL_SUITE_ED25519_X25519, &o, 1, reg1, sizeof reg1, &reg1_len);
  cl_msg res1;
  hc_register_result(&a, 1, &res1);
  ck_assert_int_eq(tu_chip_handle(&a.w, a.chips, 1, a.sess, &res1, NULL), 1);
  ck_assert_int_eq(a.sess[0].state, CL_CHIPSESS_ESTABLISHED);
  confirm_frame(&a.sess[0], conf1, sizeof conf1, &conf1_len);
  hc_probe p;
  hc_next_challenge(&a, 0, &p);
  hc_send_raw(&a, conf1, conf1_len);
  ck_assert_int_eq(hc_expect_error(&a, text, sizeof text), CL_ERR_NOT_REGISTERED);
  ck_assert_msg(strstr(text, hex) && strstr(text, "no handshake awaits a Confirm"),
                "error text \"%s\"", text);
  uint64_t seqs[BURST];
  cl_msg end;
  play_burst(&a, 0, 0, NULL, seqs, &end);
  ck_assert_uint_eq(end.u.burst_end.n, BURST);
  expect_counted_exactly(unexp, 1, "unexpected_confirm");
  hc_close(&a);

  char *want = tu_fmt("chip %s: handshake signature does not verify", hex);
  hc h;
  hc_connect(&h);
  hc_chips(&h, keys, 1);
  hc_offer(&h, &h.sess[0], W.c, &o);
  uint8_t buf[512];
  size_t len;
  hc_send_offers(&h, CL_SUITE_ED25519_X25519, &o, 1, buf, sizeof buf, &len);
  cl_msg res;
  hc_register_result(&h, 1, &res);
  ck_assert_int_eq(res.u.reg_result.r[0].accepted, 1);
  hc_send_raw(&h, conf1, conf1_len);
  hc_expect_error_then_closed(&h, CL_ERR_BAD_HANDSHAKE, want);
  hc_close(&h);

  hc_connect(&h);
  hc_send_raw(&h, reg1, reg1_len);
  hc_register_result(&h, 1, &res);
  const cl_chip_result *r1 = &res1.u.reg_result.r[0], *r2 = &res.u.reg_result.r[0];
  ck_assert_int_eq(r2->accepted, 1);
  ck_assert(memcmp(r1->eph, r2->eph, CL_EPH_LEN) != 0);
  ck_assert(memcmp(r1->nonce, r2->nonce, CL_NONCE_LEN) != 0);
  hc_send_raw(&h, conf1, conf1_len);
  hc_expect_error_then_closed(&h, CL_ERR_BAD_HANDSHAKE, want);
  hc_close(&h);
  expect_counted_exactly(badhs, 2, "bad_handshake");
  cl_chipsess_end(&a.sess[0]);
}

/* A Register naming a suite this landmark does not implement (a made-up
 * one, and the reserved P-256 one): ERROR_SUITE naming the suite and the
 * landmark's own, and the close, without a RegisterResult. */
static void case_unknown_suite(void) {
  counter_mark c = mark("chiploc_frames_rejected_total{reason=\"suite\"}");
  static const uint32_t suites[] = {7, CL_SUITE_P256_RESERVED};
  cl_key *keys[] = {W.c};
  for (size_t k = 0; k < sizeof suites / sizeof suites[0]; k++) {
    hc h;
    hc_connect(&h);
    hc_chips(&h, keys, 1);
    cl_chip_offer o;
    hc_offer(&h, &h.sess[0], W.c, &o);
    uint8_t buf[512];
    size_t len;
    hc_send_offers(&h, suites[k], &o, 1, buf, sizeof buf, &len);
    hc_expect_error_then_closed(
        &h, CL_ERR_SUITE,
        tu_fmt("cipher suite %u is unknown; this landmark speaks 1 (ed25519-x25519-blake2b)",
               suites[k]));
    hc_close(&h);
    cl_chipsess_end(&h.sess[0]);
  }
  expect_counted_exactly(c, 2, "suite");
}

static void case_flood(void) {
  /* Every earlier hostile connection is gone (closed, or cut by the
   * handshake timeout): only the honest agent is connected. */
  for (int i = 0; i < 100 && metric("chiploc_connections") > 1; i++) tu_sleep_ms(100);
  ck_assert_double_eq(metric("chiploc_connections"), 1);
  ck_assert_double_eq(metric("chiploc_chips_live"), 1);
  counter_mark c = mark("chiploc_connections_refused_total{reason=\"per_address\"}");
  enum { N = PER_ADDRESS + 4 };
  static hc h[N];
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
  char *l2key = tu_keygen(W.dir, "landmark-2", log);
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
  W.l2 = tu_key_load(l2key);

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
  case_unknown_probes();
  case_registrations();
  case_forged_mac();
  case_stale_session_mac();
  case_foreign_landmark_mac();
  case_bad_transcripts();
  case_replayed_handshake();
  case_unknown_suite();
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
  /* Handshakes, Confirms and transcripts were done on the verify threads
   * (the default), and the probe lag histogram counts the challenges sent. */
  ck_assert_double_gt(metric("chiploc_jobs_queued_total{kind=\"handshake\"}"), 0);
  ck_assert_double_gt(metric("chiploc_jobs_queued_total{kind=\"confirm\"}"), 0);
  ck_assert_double_gt(metric("chiploc_jobs_queued_total{kind=\"transcript\"}"), 0);
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
  /* Everything measured was written, and every record re-verifies offline:
   * the rogue chip's records hold only the answers the landmark accepted. */
  long long measured = tu_last_stat(W.lmlog, "measurements");
  ck_assert_int_gt(measured, 0);
  long long bad = -1;
  ck_assert_int_eq(tu_verify_measurements(W.db, (uint64_t)DEADLINE_MS * 1000000ull, &bad),
                   measured);
  ck_assert_int_eq(bad, 0);
  cl_key_destroy(&W.b);
  cl_key_destroy(&W.c);
  cl_key_destroy(&W.u);
  cl_key_destroy(&W.l2);
  tu_release();
}
END_TEST

/* The first line of the file holding needle and and_needle, owned; the test
 * fails when there is none. */
static char *log_line(const char *path, const char *needle, const char *and_needle) {
  char *text = tu_read_file(path);
  ck_assert_msg(text != NULL, "no log %s", path);
  char *found = NULL;
  for (char *line = text; line && *line && !found;) {
    char *eol = strchr(line, '\n');
    if (eol) *eol = '\0';
    if (strstr(line, needle) && strstr(line, and_needle)) found = strdup(line);
    line = eol ? eol + 1 : NULL;
  }
  free(text);
  ck_assert_msg(found != NULL, "no line with %s and %s in %s", needle, and_needle, path);
  return tu_own(found);
}

START_TEST(test_second_agent) {
  W.dir = tu_own(tu_tmpdir("chiploc-second-agent"));
  char *log = tu_fmt("%s/cli.log", W.dir);
  char *aglog1 = tu_fmt("%s/agent1.log", W.dir), *aglog2 = tu_fmt("%s/agent2.log", W.dir);
  W.lmlog = tu_fmt("%s/landmarkd.log", W.dir);
  W.db = tu_own(tu_db_create("chiploc_second_agent"));
  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", W.db, NULL), 0);
  char *lkey = tu_keygen(W.dir, "landmark", log);
  char *ckey = tu_keygen(W.dir, "chip", log);
  char *lhex = tu_key_hex(lkey);
  ck_assert_int_eq(tu_cli(log, "landmark", "add", "--db", W.db, "--name", "lm-paris", "--pubkey",
                          lhex, "--site", "48.8566,2.3522", NULL),
                   0);
  ck_assert_int_eq(tu_cli(log, "chip", "enroll", "--db", W.db, "--pubkey-file", ckey, "--serial",
                          "SN-TWIN", "--operator", "dc", "--site", "48.85,2.35", NULL),
                   0);
  char *chex = tu_fmt("%.16s", tu_key_hex(ckey));
  W.port = tu_free_port();
  W.mport = tu_free_port();
  tu_landmark_opts lo = tu_landmark_defaults();
  lo.key = lkey;
  lo.port = W.port;
  lo.conninfo = W.db;
  lo.metrics_port = W.mport;
  pid_t lm = tu_landmarkd_start(tu_landmark_conf(W.dir, &lo), W.lmlog);
  tu_agent_opts a1 = {.file = "agent1.conf", .name = "first-host", .backoff_min_ms = 50,
                      .backoff_max_ms = 500, .landmarks = {{"paris", W.port, lhex}},
                      .chips = {{"twin", ckey}}};
  pid_t ag1 = tu_chipagent_start(tu_agent_conf(W.dir, &a1), aglog1, NULL);
  const char *q = "SELECT count(*) FROM measurements m JOIN chips c ON c.id = m.chip_id "
                  "WHERE c.serial = 'SN-TWIN'";
  long long n = 0;
  for (int i = 0; i < 200 && (n = tu_sql_int(W.db, q)) < 1; i++) tu_sleep_ms(100);
  ck_assert_msg(n >= 1, "the chip was not measured through the first agent");

  tu_agent_opts a2 = a1;
  a2.file = "agent2.conf";
  a2.name = "second-host";
  a2.chips[0].name = "same-chip";
  pid_t ag2 = tu_chipagent_start(tu_agent_conf(W.dir, &a2), aglog2, NULL);
  const char *taken = "msg=\"chip taken over by another connection\"";
  ck_assert_msg(tu_wait_log(aglog1, taken, 1, 20000) == 0,
                "the first agent did not log the takeover");
  char *line = log_line(aglog1, taken, " level=error ");
  ck_assert_ptr_nonnull(strstr(line, tu_fmt(" chip=twin chip_key=%s ", chex)));
  ck_assert_ptr_nonnull(strstr(line, " landmark=paris "));
  line = log_line(W.lmlog, taken, " level=warn ");
  ck_assert_ptr_nonnull(strstr(line, tu_fmt(" chip=SN-TWIN chip_key=%s ", chex)));
  ck_assert_ptr_nonnull(strstr(line, " old_agent=\"first-host\" "));
  ck_assert_ptr_nonnull(strstr(line, " agent=\"second-host\" "));
  expect_metric_ge("chiploc_chip_takeovers_total", 1);
  /* The chip is measured through the second agent, and stays there: the
   * first agent, whose only chip it was, waits out the hold. */
  ck_assert_int_eq(tu_wait_log(aglog2, "msg=registered", 1, 10000), 0);
  long long before = tu_sql_int(W.db, q);
  for (int i = 0; i < 100 && (n = tu_sql_int(W.db, q)) <= before; i++) tu_sleep_ms(100);
  ck_assert_msg(n > before, "the chip was not measured through the second agent");
  tu_sleep_ms(2000);
  ck_assert_int_eq(tu_count_in_file(W.lmlog, taken), 1);
  ck_assert_double_eq(metric("chiploc_chip_takeovers_total"), 1);
  line = log_line(aglog1, "msg=\"reconnect scheduled\"", " landmark=paris ");
  ck_assert_int_ge(tu_line_value(line, "delay_ms"), 3000000);
  ck_assert_int_eq(tu_stop(ag1, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(ag2, SIGTERM, 10000), 0);
  ck_assert_int_eq(tu_stop(lm, SIGTERM, 15000), 0);
  /* The stats line counts it too. */
  ck_assert_int_eq(tu_last_stat(W.lmlog, "chip_takeovers"), 1);
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
  TCase *twin = tcase_create("second agent");
  tcase_set_timeout(twin, 120);
  tcase_add_test(twin, test_second_agent);
  suite_add_tcase(s, twin);
  return tu_run_suite(s);
}
