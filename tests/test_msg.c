/*
 * Message codec of protocol version 2 (lib/wire/cl_msg.h). Every message
 * type round-trips, the largest ones against the frame limits; then golden
 * messages, built here by hand as protobuf bytes (tags and varints written
 * out, so that lengths the encoder never produces can be sent), are
 * corrupted one field at a time, and each corruption must give the precise
 * error code and name the field in the error text: every bytes field one
 * byte short and long, counts over their limits, BurstEnd seqs that do not
 * increase, a version 1 envelope, unknown message types. Ends with hostile
 * protobuf (bad varints, wrong wire types, lying lengths) and 100k random and
 * mutated buffers with a fixed seed, which must decode without crashing.
 */
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_msg.h"

#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- A minimal protobuf writer for hand-built messages. ---- */

typedef struct {
  uint8_t b[16384];
  size_t n;
} pb;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

static void pb_raw(pb *p, const void *d, size_t n) {
  ck_assert_uint_le(p->n + n, sizeof p->b);
  memcpy(p->b + p->n, d, n);
  p->n += n;
}
static void pb_varint(pb *p, uint64_t v) {
  do {
    uint8_t c = (uint8_t)(v & 0x7f);
    v >>= 7;
    if (v) c |= 0x80;
    pb_raw(p, &c, 1);
  } while (v);
}
static void pb_tag(pb *p, uint32_t field, int wt) { pb_varint(p, ((uint64_t)field << 3) | (unsigned)wt); }
static void pb_u64(pb *p, uint32_t field, uint64_t v) {
  pb_tag(p, field, WT_VARINT);
  pb_varint(p, v);
}
static void pb_bytes(pb *p, uint32_t field, const void *d, size_t n) {
  pb_tag(p, field, WT_LEN);
  pb_varint(p, n);
  pb_raw(p, d, n);
}
static void pb_str(pb *p, uint32_t field, const char *s) { pb_bytes(p, field, s, strlen(s)); }
static void pb_sub(pb *p, uint32_t field, const pb *sub) { pb_bytes(p, field, sub->b, sub->n); }
/* An Envelope: version, then one sub-message in field `msg` (0: none). */
static void pb_env(pb *env, uint32_t version, uint32_t msg, const pb *sub) {
  env->n = 0;
  if (version) pb_u64(env, 1, version);
  if (msg) pb_sub(env, msg, sub);
}

/* Fills n bytes with the pattern of field number `tag` (matches golden_msg). */
static void pattern(uint8_t *d, size_t n, int tag) {
  for (size_t j = 0; j < n; j++) d[j] = (uint8_t)(tag * 37 + (int)j);
}

/* ---- The golden messages, with one bytes field changed in length. ---- */

/* Envelope field numbers of the messages. */
enum {
  F_HELLO = 2,
  F_REGISTER = 3,
  F_REGRESULT = 4,
  F_CHALLENGE = 5,
  F_RESPONSE = 6,
  F_ERROR = 7,
  F_CONFIRM = 8,
  F_BURST_END = 9,
  F_TRANSCRIPT = 10,
  F_REKEY = 11,
};
/* The golden messages (Error has no bytes field; it has tests of its own). */
static const uint32_t GOLDEN[] = {F_HELLO,     F_REGISTER,  F_REGRESULT,  F_CONFIRM, F_CHALLENGE,
                                  F_RESPONSE, F_BURST_END, F_TRANSCRIPT, F_REKEY};
#define N_GOLDEN (sizeof GOLDEN / sizeof GOLDEN[0])

typedef struct {
  const char *name; /* as the decoder names it */
  uint32_t msg;     /* envelope field of its message */
  int idx;          /* which bytes field of that message (build order) */
  size_t want;
} bfield;

static const bfield BFIELDS[] = {
    {"hello.landmark_id", F_HELLO, 0, 32},
    {"register.chips.chip_id", F_REGISTER, 0, 32},
    {"register.chips.ephemeral", F_REGISTER, 1, 32},
    {"register.chips.nonce", F_REGISTER, 2, 32},
    {"register_result.results.chip_id", F_REGRESULT, 0, 32},
    {"register_result.results.ephemeral", F_REGRESULT, 1, 32},
    {"register_result.results.nonce", F_REGRESULT, 2, 32},
    {"register_result.results.signature", F_REGRESULT, 3, 64},
    {"confirm.chips.chip_id", F_CONFIRM, 0, 32},
    {"confirm.chips.signature", F_CONFIRM, 1, 64},
    {"challenge.chip_id", F_CHALLENGE, 0, 32},
    {"challenge.nonce", F_CHALLENGE, 1, 32},
    {"response.chip_id", F_RESPONSE, 0, 32},
    {"response.mac", F_RESPONSE, 1, 32},
    {"burst_end.chip_id", F_BURST_END, 0, 32},
    {"transcript.chip_id", F_TRANSCRIPT, 0, 32},
    {"transcript.signature", F_TRANSCRIPT, 1, 64},
    {"rekey.chip_id", F_REKEY, 0, 32},
};
#define N_BFIELDS (sizeof BFIELDS / sizeof BFIELDS[0])

/* Writes bytes field `field` with length `len`; an empty field is left out,
 * as a proto3 encoder does. */
static void put_bytes_len(pb *p, uint32_t field, size_t len, int tag) {
  uint8_t d[256];
  ck_assert_uint_le(len, sizeof d);
  pattern(d, len, tag);
  if (len) pb_bytes(p, field, d, len);
}

/* A packed repeated uint64 field. */
static void pb_packed(pb *p, uint32_t field, const uint64_t *v, size_t n) {
  pb inner = {.n = 0};
  for (size_t i = 0; i < n; i++) pb_varint(&inner, v[i]);
  pb_sub(p, field, &inner);
}

static const uint64_t GOLDEN_SEQS[] = {42, 44};

/*
 * Builds a golden envelope of message `msg` where bytes field number
 * `target` (an index into the message's bytes fields, -1 for none) has
 * length `tlen` instead of its right length. Fields are written in
 * field-number order, defaults left out, as the reference encoder does.
 */
static void build_golden(pb *env, uint32_t msg, int target, size_t tlen) {
  pb sub = {.n = 0}, inner = {.n = 0};
#define LEN(i, w) (target == (i) ? tlen : (size_t)(w))
  switch (msg) {
  case F_HELLO:
    put_bytes_len(&sub, 1, LEN(0, 32), 1);
    pb_u64(&sub, 2, 1);
    break;
  case F_REGISTER:
    pb_str(&sub, 1, "agent-1");
    pb_u64(&sub, 2, 1);
    put_bytes_len(&inner, 1, LEN(0, 32), 1);
    put_bytes_len(&inner, 2, LEN(1, 32), 2);
    put_bytes_len(&inner, 3, LEN(2, 32), 3);
    pb_sub(&sub, 3, &inner);
    break;
  case F_REGRESULT:
    put_bytes_len(&inner, 1, LEN(0, 32), 1);
    pb_u64(&inner, 2, 1);
    pb_str(&inner, 4, "ok");
    put_bytes_len(&inner, 5, LEN(1, 32), 5);
    put_bytes_len(&inner, 6, LEN(2, 32), 6);
    put_bytes_len(&inner, 7, LEN(3, 64), 7);
    pb_sub(&sub, 1, &inner);
    break;
  case F_CONFIRM:
    put_bytes_len(&inner, 1, LEN(0, 32), 1);
    put_bytes_len(&inner, 2, LEN(1, 64), 2);
    pb_sub(&sub, 1, &inner);
    break;
  case F_CHALLENGE:
    put_bytes_len(&sub, 1, LEN(0, 32), 1);
    pb_u64(&sub, 2, 42);
    put_bytes_len(&sub, 3, LEN(1, 32), 3);
    break;
  case F_RESPONSE:
    put_bytes_len(&sub, 1, LEN(0, 32), 1);
    pb_u64(&sub, 2, 42);
    put_bytes_len(&sub, 3, LEN(1, 32), 3);
    break;
  case F_BURST_END:
    put_bytes_len(&sub, 1, LEN(0, 32), 1);
    pb_packed(&sub, 2, GOLDEN_SEQS, 2);
    break;
  case F_TRANSCRIPT:
    put_bytes_len(&sub, 1, LEN(0, 32), 1);
    pb_u64(&sub, 2, 42);
    put_bytes_len(&sub, 3, LEN(1, 64), 3);
    break;
  case F_REKEY:
    put_bytes_len(&sub, 1, LEN(0, 32), 1);
    break;
  default:
    ck_abort_msg("bad msg %u", msg);
  }
#undef LEN
  pb_env(env, CL_PROTOCOL_VERSION, msg, &sub);
}

/* The cl_msg that build_golden(msg, -1) describes. */
static void golden_msg(uint32_t msg, cl_msg *m) {
  memset(m, 0, sizeof *m);
  switch (msg) {
  case F_HELLO:
    m->type = CL_MSG_HELLO;
    pattern(m->u.hello.landmark, 32, 1);
    m->u.hello.suite = 1;
    break;
  case F_REGISTER:
    m->type = CL_MSG_REGISTER;
    strcpy(m->u.reg.agent, "agent-1");
    m->u.reg.suite = 1;
    m->u.reg.n = 1;
    pattern(m->u.reg.chips[0].chip, 32, 1);
    pattern(m->u.reg.chips[0].eph, 32, 2);
    pattern(m->u.reg.chips[0].nonce, 32, 3);
    break;
  case F_REGRESULT: {
    m->type = CL_MSG_REGISTER_RESULT;
    m->u.reg_result.n = 1;
    cl_chip_result *r = &m->u.reg_result.r[0];
    pattern(r->chip, 32, 1);
    r->accepted = 1;
    strcpy(r->detail, "ok");
    pattern(r->eph, 32, 5);
    pattern(r->nonce, 32, 6);
    pattern(r->sig, 64, 7);
    break;
  }
  case F_CONFIRM:
    m->type = CL_MSG_CONFIRM;
    m->u.confirm.n = 1;
    pattern(m->u.confirm.chips[0].chip, 32, 1);
    pattern(m->u.confirm.chips[0].sig, 64, 2);
    break;
  case F_CHALLENGE:
    m->type = CL_MSG_CHALLENGE;
    pattern(m->u.challenge.chip, 32, 1);
    m->u.challenge.seq = 42;
    pattern(m->u.challenge.nonce, 32, 3);
    break;
  case F_RESPONSE:
    m->type = CL_MSG_RESPONSE;
    pattern(m->u.response.chip, 32, 1);
    m->u.response.seq = 42;
    pattern(m->u.response.mac, 32, 3);
    break;
  case F_BURST_END:
    m->type = CL_MSG_BURST_END;
    pattern(m->u.burst_end.chip, 32, 1);
    m->u.burst_end.n = 2;
    m->u.burst_end.seqs[0] = GOLDEN_SEQS[0];
    m->u.burst_end.seqs[1] = GOLDEN_SEQS[1];
    break;
  case F_TRANSCRIPT:
    m->type = CL_MSG_TRANSCRIPT;
    pattern(m->u.transcript.chip, 32, 1);
    m->u.transcript.first_seq = 42;
    pattern(m->u.transcript.sig, 64, 3);
    break;
  case F_REKEY:
    m->type = CL_MSG_REKEY;
    pattern(m->u.rekey.chip, 32, 1);
    break;
  default:
    ck_abort_msg("bad msg %u", msg);
  }
}

/* Compares the fields of two messages of the same type. */
static void assert_msg_eq(const cl_msg *a, const cl_msg *b) {
  ck_assert_int_eq(a->type, b->type);
  switch (a->type) {
  case CL_MSG_HELLO:
    ck_assert_mem_eq(a->u.hello.landmark, b->u.hello.landmark, CL_PK_LEN);
    ck_assert_uint_eq(a->u.hello.suite, b->u.hello.suite);
    break;
  case CL_MSG_REGISTER:
    ck_assert_str_eq(a->u.reg.agent, b->u.reg.agent);
    ck_assert_uint_eq(a->u.reg.suite, b->u.reg.suite);
    ck_assert_uint_eq(a->u.reg.n, b->u.reg.n);
    for (size_t i = 0; i < a->u.reg.n; i++) {
      ck_assert_mem_eq(a->u.reg.chips[i].chip, b->u.reg.chips[i].chip, CL_PK_LEN);
      ck_assert_mem_eq(a->u.reg.chips[i].eph, b->u.reg.chips[i].eph, CL_EPH_LEN);
      ck_assert_mem_eq(a->u.reg.chips[i].nonce, b->u.reg.chips[i].nonce, CL_NONCE_LEN);
    }
    break;
  case CL_MSG_REGISTER_RESULT:
    ck_assert_uint_eq(a->u.reg_result.n, b->u.reg_result.n);
    for (size_t i = 0; i < a->u.reg_result.n; i++) {
      const cl_chip_result *x = &a->u.reg_result.r[i], *y = &b->u.reg_result.r[i];
      ck_assert_mem_eq(x->chip, y->chip, CL_PK_LEN);
      ck_assert_int_eq(x->accepted, y->accepted);
      ck_assert_int_eq(x->reason, y->reason);
      ck_assert_str_eq(x->detail, y->detail);
      if (x->accepted) {
        ck_assert_mem_eq(x->eph, y->eph, CL_EPH_LEN);
        ck_assert_mem_eq(x->nonce, y->nonce, CL_NONCE_LEN);
        ck_assert_mem_eq(x->sig, y->sig, CL_SIG_LEN);
      }
    }
    break;
  case CL_MSG_CONFIRM:
    ck_assert_uint_eq(a->u.confirm.n, b->u.confirm.n);
    for (size_t i = 0; i < a->u.confirm.n; i++) {
      ck_assert_mem_eq(a->u.confirm.chips[i].chip, b->u.confirm.chips[i].chip, CL_PK_LEN);
      ck_assert_mem_eq(a->u.confirm.chips[i].sig, b->u.confirm.chips[i].sig, CL_SIG_LEN);
    }
    break;
  case CL_MSG_CHALLENGE:
    ck_assert_mem_eq(a->u.challenge.chip, b->u.challenge.chip, CL_PK_LEN);
    ck_assert_uint_eq(a->u.challenge.seq, b->u.challenge.seq);
    ck_assert_mem_eq(a->u.challenge.nonce, b->u.challenge.nonce, CL_NONCE_LEN);
    break;
  case CL_MSG_RESPONSE:
    ck_assert_mem_eq(a->u.response.chip, b->u.response.chip, CL_PK_LEN);
    ck_assert_uint_eq(a->u.response.seq, b->u.response.seq);
    ck_assert_mem_eq(a->u.response.mac, b->u.response.mac, CL_MAC_LEN);
    break;
  case CL_MSG_BURST_END:
    ck_assert_mem_eq(a->u.burst_end.chip, b->u.burst_end.chip, CL_PK_LEN);
    ck_assert_uint_eq(a->u.burst_end.n, b->u.burst_end.n);
    for (size_t i = 0; i < a->u.burst_end.n; i++)
      ck_assert_uint_eq(a->u.burst_end.seqs[i], b->u.burst_end.seqs[i]);
    break;
  case CL_MSG_TRANSCRIPT:
    ck_assert_mem_eq(a->u.transcript.chip, b->u.transcript.chip, CL_PK_LEN);
    ck_assert_uint_eq(a->u.transcript.first_seq, b->u.transcript.first_seq);
    ck_assert_mem_eq(a->u.transcript.sig, b->u.transcript.sig, CL_SIG_LEN);
    break;
  case CL_MSG_REKEY:
    ck_assert_mem_eq(a->u.rekey.chip, b->u.rekey.chip, CL_PK_LEN);
    break;
  case CL_MSG_ERROR:
    ck_assert_int_eq(a->u.error.code, b->u.error.code);
    ck_assert_str_eq(a->u.error.text, b->u.error.text);
    break;
  default:
    ck_abort_msg("bad type %d", (int)a->type);
  }
}

static cl_msg g_in, g_out; /* large: kept off the stack */
static uint8_t g_frame[CL_FRAME_MAX + CL_FRAME_HDR_LEN];
static char g_err[256];

static int decode_pb(const pb *p) {
  memset(&g_out, 0xA5, sizeof g_out);
  return cl_msg_decode(p->b, p->n, &g_out, g_err, sizeof g_err);
}

/* Encodes g_in, checks the frame header, decodes the body into g_out;
 * returns the body length. */
static size_t round_trip(void) {
  size_t n = 0;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_OK);
  ck_assert_uint_gt(n, CL_FRAME_HDR_LEN);
  ck_assert_uint_eq(cl_get_be32(g_frame), n - CL_FRAME_HDR_LEN);
  memset(&g_out, 0xA5, sizeof g_out);
  ck_assert_int_eq(cl_msg_decode(g_frame + CL_FRAME_HDR_LEN, n - CL_FRAME_HDR_LEN, &g_out, g_err,
                                 sizeof g_err),
                   CL_OK);
  ck_assert_str_eq(g_err, "");
  ck_assert_uint_eq(g_out.version, CL_PROTOCOL_VERSION);
  assert_msg_eq(&g_in, &g_out);
  return n - CL_FRAME_HDR_LEN;
}

/* ---- Round trips. ---- */

START_TEST(test_round_trip_every_message) {
  for (size_t i = 0; i < N_GOLDEN; i++) {
    golden_msg(GOLDEN[i], &g_in);
    round_trip();
    /* All-zero keys, nonces and signatures still have their full length on
     * the wire (a RegisterResult's only when accepted). */
    cl_msg_type t = g_in.type;
    size_t n = g_in.u.reg.n;
    memset(&g_in.u, 0, sizeof g_in.u);
    g_in.u.reg.n = t == CL_MSG_REGISTER ? n : 0;
    if (t == CL_MSG_CONFIRM) g_in.u.confirm.n = 1;
    if (t == CL_MSG_BURST_END) g_in.u.burst_end.n = 1;
    round_trip();
  }
  /* The extreme integers. */
  golden_msg(F_CHALLENGE, &g_in);
  g_in.u.challenge.seq = UINT64_MAX;
  round_trip();
  golden_msg(F_RESPONSE, &g_in);
  g_in.u.response.seq = 0;
  round_trip();
  golden_msg(F_TRANSCRIPT, &g_in);
  g_in.u.transcript.first_seq = UINT64_MAX;
  round_trip();
  golden_msg(F_HELLO, &g_in);
  g_in.u.hello.suite = UINT32_MAX; /* the decoder passes any suite on */
  round_trip();
  golden_msg(F_REGISTER, &g_in);
  g_in.u.reg.suite = 0;
  round_trip();
}
END_TEST

START_TEST(test_round_trip_register_sizes) {
  memset(&g_in, 0, sizeof g_in);
  g_in.type = CL_MSG_REGISTER;
  round_trip(); /* no agent name, no suite, no chips */
  /* The largest Register: 64 offers and a 64-byte name. It must fit in
   * the limit that applies before registration. */
  memset(g_in.u.reg.agent, 'a', CL_MAX_AGENT_NAME);
  g_in.u.reg.agent[CL_MAX_AGENT_NAME] = '\0';
  g_in.u.reg.suite = 1;
  g_in.u.reg.n = CL_MAX_CHIPS_PER_REGISTER;
  for (int i = 0; i < CL_MAX_CHIPS_PER_REGISTER; i++) {
    pattern(g_in.u.reg.chips[i].chip, 32, i);
    pattern(g_in.u.reg.chips[i].eph, 32, i + 100);
    pattern(g_in.u.reg.chips[i].nonce, 32, i + 200);
  }
  ck_assert_uint_eq(round_trip(), 6729); /* docs/PROTOCOL.md §3 */
  ck_assert_uint_le(6729, CL_FRAME_MAX_UNREGISTERED);
  /* One offer costs 104 bytes: a rekey Register for one chip fits the
   * smallest max_frame_bytes (1024). */
  g_in.u.reg.n = 1;
  ck_assert_uint_le(round_trip(), 1024 - 104);
}
END_TEST

START_TEST(test_round_trip_register_result) {
  memset(&g_in, 0, sizeof g_in);
  g_in.type = CL_MSG_REGISTER_RESULT;
  round_trip();
  /* Accepted and refused results mixed: a refused one carries no
   * handshake half, and decodes with zeros there. */
  g_in.u.reg_result.n = CL_MAX_CHIPS_PER_REGISTER;
  for (int i = 0; i < CL_MAX_CHIPS_PER_REGISTER; i++) {
    cl_chip_result *r = &g_in.u.reg_result.r[i];
    pattern(r->chip, 32, i);
    r->accepted = i % 2;
    r->reason = r->accepted ? CL_REFUSE_NONE : (cl_refuse_reason)(1 + i % 5);
    memset(r->detail, 'd', CL_MAX_DETAIL);
    r->detail[i % 3 ? 0 : CL_MAX_DETAIL] = '\0';
    if (r->accepted) {
      pattern(r->eph, 32, i + 50);
      pattern(r->nonce, 32, i + 60);
      pattern(r->sig, 64, i + 70);
    }
  }
  round_trip();
  for (int i = 0; i < CL_MAX_CHIPS_PER_REGISTER; i += 2) {
    const cl_chip_result *r = &g_out.u.reg_result.r[i];
    static const uint8_t zero[CL_SIG_LEN];
    ck_assert_mem_eq(r->eph, zero, CL_EPH_LEN);
    ck_assert_mem_eq(r->nonce, zero, CL_NONCE_LEN);
    ck_assert_mem_eq(r->sig, zero, CL_SIG_LEN);
  }
  /* The largest RegisterResult (64 accepted results, 96-byte details) is
   * above the unregistered limit but within CL_FRAME_MAX: an agent reads
   * it with the CL_FRAME_MAX limit. */
  for (int i = 0; i < CL_MAX_CHIPS_PER_REGISTER; i++) {
    cl_chip_result *r = &g_in.u.reg_result.r[i];
    r->accepted = 1;
    r->reason = CL_REFUSE_NONE;
    memset(r->detail, 'd', CL_MAX_DETAIL);
    r->detail[CL_MAX_DETAIL] = '\0';
  }
  size_t n = round_trip();
  ck_assert_uint_eq(n, 17350); /* docs/PROTOCOL.md §3 */
  ck_assert_uint_gt(n, CL_FRAME_MAX_UNREGISTERED);
  ck_assert_uint_le(n, CL_FRAME_MAX);
}
END_TEST

START_TEST(test_round_trip_confirm_burst_end) {
  memset(&g_in, 0, sizeof g_in);
  g_in.type = CL_MSG_CONFIRM;
  round_trip();
  g_in.u.confirm.n = CL_MAX_CHIPS_PER_REGISTER;
  for (int i = 0; i < CL_MAX_CHIPS_PER_REGISTER; i++) {
    pattern(g_in.u.confirm.chips[i].chip, 32, i);
    pattern(g_in.u.confirm.chips[i].sig, 64, i + 9);
  }
  /* The largest Confirm also fits before registration. */
  ck_assert_uint_eq(round_trip(), 6533); /* docs/PROTOCOL.md §3 */
  ck_assert_uint_le(6533, CL_FRAME_MAX_UNREGISTERED);

  memset(&g_in, 0, sizeof g_in);
  g_in.type = CL_MSG_BURST_END;
  g_in.u.burst_end.n = CL_MAX_BURST;
  for (int i = 0; i < CL_MAX_BURST; i++) g_in.u.burst_end.seqs[i] = UINT64_MAX - CL_MAX_BURST + i;
  round_trip();
  g_in.u.burst_end.n = 1;
  g_in.u.burst_end.seqs[0] = 0;
  round_trip();
}
END_TEST

START_TEST(test_round_trip_error) {
  for (int code = CL_ERR_NONE; code <= CL_ERR_CHIP_TAKEN_OVER; code++) {
    memset(&g_in, 0, sizeof g_in);
    g_in.type = CL_MSG_ERROR;
    g_in.u.error.code = (cl_wire_error)code;
    snprintf(g_in.u.error.text, sizeof g_in.u.error.text, "code %d: %s", code,
             cl_wire_error_name((cl_wire_error)code));
    round_trip();
  }
  g_in.u.error.text[0] = '\0';
  round_trip();
  memset(g_in.u.error.text, 'x', CL_MAX_ERROR_TEXT);
  g_in.u.error.text[CL_MAX_ERROR_TEXT] = '\0';
  round_trip();
}
END_TEST

START_TEST(test_hand_built_equals_encoder) {
  /* The hand-built golden bytes are exactly what the library encodes, so
   * the corruption tests below start from a real frame. */
  for (size_t i = 0; i < N_GOLDEN; i++) {
    pb env;
    build_golden(&env, GOLDEN[i], -1, 0);
    golden_msg(GOLDEN[i], &g_in);
    size_t n = 0;
    ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_OK);
    ck_assert_uint_eq(n - CL_FRAME_HDR_LEN, env.n);
    ck_assert_mem_eq(g_frame + CL_FRAME_HDR_LEN, env.b, env.n);
    ck_assert_int_eq(decode_pb(&env), CL_OK);
    assert_msg_eq(&g_in, &g_out);
  }
}
END_TEST

/* ---- One field at a time. ---- */

START_TEST(test_bytes_field_lengths) {
  for (size_t f = 0; f < N_BFIELDS; f++) {
    const bfield *bf = &BFIELDS[f];
    const size_t lens[] = {bf->want - 1, bf->want + 1, 0, 1, bf->want * 2};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
      pb env;
      build_golden(&env, bf->msg, bf->idx, lens[k]);
      int rc = decode_pb(&env);
      ck_assert_msg(rc == CL_EMALFORMED, "%s with %zu bytes: rc %d", bf->name, lens[k], rc);
      char want[160];
      snprintf(want, sizeof want, "field %s has %zu bytes, want %zu", bf->name, lens[k], bf->want);
      ck_assert_str_eq(g_err, want);
    }
    /* The right length decodes. */
    pb env;
    build_golden(&env, bf->msg, bf->idx, bf->want);
    ck_assert_int_eq(decode_pb(&env), CL_OK);
  }
}
END_TEST

START_TEST(test_refused_result_carries_no_handshake) {
  /* A refused result with any part of a handshake is malformed: the
   * landmark made no session for it. */
  static const struct {
    uint32_t field;
    size_t len;
    const char *name;
  } parts[] = {{5, 32, "ephemeral"}, {6, 32, "nonce"}, {7, 64, "signature"}, {7, 1, "signature"}};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    pb inner = {.n = 0}, sub = {.n = 0}, env;
    put_bytes_len(&inner, 1, 32, 1);
    pb_u64(&inner, 3, CL_REFUSE_NOT_ENROLLED);
    put_bytes_len(&inner, parts[i].field, parts[i].len, 9);
    pb_sub(&sub, 1, &inner);
    pb_env(&env, CL_PROTOCOL_VERSION, F_REGRESULT, &sub);
    ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
    char want[120];
    snprintf(want, sizeof want, "field register_result.results.%s has %zu bytes, want 0",
             parts[i].name, parts[i].len);
    ck_assert_str_eq(g_err, want);
  }
  /* Without them it decodes, with the reason and detail. */
  pb inner = {.n = 0}, sub = {.n = 0}, env;
  put_bytes_len(&inner, 1, 32, 1);
  pb_u64(&inner, 3, CL_REFUSE_NOT_ASKED);
  pb_str(&inner, 4, "no rekey asked");
  pb_sub(&sub, 1, &inner);
  pb_env(&env, CL_PROTOCOL_VERSION, F_REGRESULT, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_int_eq(g_out.u.reg_result.r[0].accepted, 0);
  ck_assert_int_eq(g_out.u.reg_result.r[0].reason, CL_REFUSE_NOT_ASKED);
  ck_assert_str_eq(g_out.u.reg_result.r[0].detail, "no rekey asked");
  /* A reason this version does not know is passed on (the agent treats it
   * as a refusal). */
  inner.n = 0;
  sub.n = 0;
  put_bytes_len(&inner, 1, 32, 1);
  pb_u64(&inner, 3, 77);
  pb_sub(&sub, 1, &inner);
  pb_env(&env, CL_PROTOCOL_VERSION, F_REGRESULT, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_int_eq(g_out.u.reg_result.r[0].reason, 77);
}
END_TEST

START_TEST(test_later_entry_bad) {
  /* The 3rd offer of a Register has a short nonce: the whole message fails. */
  pb sub = {.n = 0};
  pb_str(&sub, 1, "agent");
  pb_u64(&sub, 2, 1);
  for (int i = 0; i < 4; i++) {
    pb offer = {.n = 0};
    put_bytes_len(&offer, 1, 32, 1);
    put_bytes_len(&offer, 2, 32, 2);
    put_bytes_len(&offer, 3, i == 2 ? 31 : 32, 3);
    pb_sub(&sub, 3, &offer);
  }
  pb env;
  pb_env(&env, CL_PROTOCOL_VERSION, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field register.chips.nonce has 31 bytes, want 32");
  /* The 2nd entry of a Confirm has a long signature. */
  sub.n = 0;
  for (int i = 0; i < 3; i++) {
    pb c = {.n = 0};
    put_bytes_len(&c, 1, 32, 1);
    put_bytes_len(&c, 2, i == 1 ? 65 : 64, 2);
    pb_sub(&sub, 1, &c);
  }
  pb_env(&env, CL_PROTOCOL_VERSION, F_CONFIRM, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field confirm.chips.signature has 65 bytes, want 64");
}
END_TEST

START_TEST(test_burst_end_seqs) {
  pb sub, env;
  uint64_t seqs[CL_MAX_BURST + 1];
  for (int i = 0; i <= CL_MAX_BURST; i++) seqs[i] = 100 + 3 * (uint64_t)i;
  /* 16 increasing seqs pass, 17 are too many. */
  sub.n = 0;
  put_bytes_len(&sub, 1, 32, 1);
  pb_packed(&sub, 2, seqs, CL_MAX_BURST);
  pb_env(&env, CL_PROTOCOL_VERSION, F_BURST_END, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_uint_eq(g_out.u.burst_end.n, CL_MAX_BURST);
  ck_assert_uint_eq(g_out.u.burst_end.seqs[CL_MAX_BURST - 1], seqs[CL_MAX_BURST - 1]);
  sub.n = 0;
  put_bytes_len(&sub, 1, 32, 1);
  pb_packed(&sub, 2, seqs, CL_MAX_BURST + 1);
  pb_env(&env, CL_PROTOCOL_VERSION, F_BURST_END, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field burst_end.seqs has 17 entries, more than 16");
  /* None at all. */
  sub.n = 0;
  put_bytes_len(&sub, 1, 32, 1);
  pb_env(&env, CL_PROTOCOL_VERSION, F_BURST_END, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field burst_end.seqs is empty");
  /* Equal or decreasing neighbours, anywhere. */
  static const uint64_t bad[][3] = {{5, 5, 6}, {5, 4, 6}, {5, 6, 6}, {UINT64_MAX, 0, 1}};
  static const size_t at[] = {1, 1, 2, 1};
  for (size_t i = 0; i < 4; i++) {
    sub.n = 0;
    put_bytes_len(&sub, 1, 32, 1);
    pb_packed(&sub, 2, bad[i], 3);
    pb_env(&env, CL_PROTOCOL_VERSION, F_BURST_END, &sub);
    ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
    char want[100];
    snprintf(want, sizeof want, "field burst_end.seqs is not strictly increasing at entry %zu",
             at[i]);
    ck_assert_str_eq(g_err, want);
  }
  /* The unpacked encoding of a repeated field is accepted too. */
  sub.n = 0;
  put_bytes_len(&sub, 1, 32, 1);
  pb_u64(&sub, 2, 42);
  pb_u64(&sub, 2, 44);
  pb_env(&env, CL_PROTOCOL_VERSION, F_BURST_END, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  golden_msg(F_BURST_END, &g_in);
  assert_msg_eq(&g_in, &g_out);
  /* The encoder refuses more than CL_MAX_BURST. */
  g_in.u.burst_end.n = CL_MAX_BURST + 1;
  size_t n = 0;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_EINVAL);
}
END_TEST

START_TEST(test_version) {
  /* A version 1 envelope around an otherwise valid version 2 message. */
  golden_msg(F_CHALLENGE, &g_in);
  size_t n = 0;
  ck_assert_int_eq(cl_msg_encode_version(&g_in, 1, g_frame, sizeof g_frame, &n), CL_OK);
  memset(&g_out, 0, sizeof g_out);
  ck_assert_int_eq(cl_msg_decode(g_frame + 4, n - 4, &g_out, g_err, sizeof g_err), CL_EVERSION);
  ck_assert_uint_eq(g_out.version, 1);
  ck_assert_str_eq(g_err, "protocol version 1, this side speaks 2");

  /* What a version 1 agent sends first: its Register (field 3: agent name,
   * then ChipClaims of chip_id and a 64-byte proof in field 2). The version
   * is checked before the message, so it is a version error, not a
   * malformed Register. */
  pb env, sub = {.n = 0}, claim = {.n = 0};
  pb_str(&sub, 1, "agent-v1");
  put_bytes_len(&claim, 1, 32, 1);
  put_bytes_len(&claim, 2, 64, 2);
  pb_sub(&sub, 2, &claim);
  pb_env(&env, 1, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EVERSION);
  ck_assert_uint_eq(g_out.version, 1);
  ck_assert_str_eq(g_err, "protocol version 1, this side speaks 2");
  /* A version 1 landmark's Hello (landmark_id, session_nonce) and a version
   * 1 Response (chip_id, nonce, signature): field 2 is bytes there, an
   * integer here, so their messages would not parse; the version still
   * decides. */
  sub.n = 0;
  put_bytes_len(&sub, 1, 32, 1);
  put_bytes_len(&sub, 2, 32, 2);
  pb_env(&env, 1, F_HELLO, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EVERSION);
  ck_assert_str_eq(g_err, "protocol version 1, this side speaks 2");
  put_bytes_len(&sub, 3, 64, 3);
  pb_env(&env, 1, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EVERSION);
  /* The same messages in a version 2 envelope are malformed. */
  pb_env(&env, 2, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* Of two version fields the last counts, as protobuf has it. */
  build_golden(&env, F_CHALLENGE, -1, 0);
  pb_u64(&env, 1, 1);
  ck_assert_int_eq(decode_pb(&env), CL_EVERSION);
  ck_assert_uint_eq(g_out.version, 1);
  pb two = {.n = 0};
  pb_u64(&two, 1, 1);
  build_golden(&env, F_CHALLENGE, -1, 0);
  pb_raw(&two, env.b, env.n);
  ck_assert_int_eq(decode_pb(&two), CL_OK);

  /* No version field at all is version 0. */
  build_golden(&env, F_CHALLENGE, -1, 0);
  pb env0;
  ck_assert_uint_eq(env.b[0], 0x08);
  ck_assert_uint_eq(env.b[1], 0x02);
  env0.n = 0;
  pb_raw(&env0, env.b + 2, env.n - 2); /* drop "08 02" */
  ck_assert_int_eq(decode_pb(&env0), CL_EVERSION);
  ck_assert_uint_eq(g_out.version, 0);
  ck_assert_str_eq(g_err, "protocol version 0, this side speaks 2");

  /* A later version, and the largest. */
  pb_env(&env, 3, 0, NULL);
  ck_assert_int_eq(decode_pb(&env), CL_EVERSION);
  ck_assert_uint_eq(g_out.version, 3);
  pb_env(&env, 0xffffffffu, 0, NULL);
  ck_assert_int_eq(decode_pb(&env), CL_EVERSION);
  ck_assert_uint_eq(g_out.version, 0xffffffffu);

  /* An Error frame of version 1 (what a version 1 landmark answers a
   * version 2 agent) is a version error too, but its code and text sit at
   * the same field numbers in both versions. */
  sub.n = 0;
  pb_u64(&sub, 1, CL_ERR_VERSION);
  pb_str(&sub, 2, "protocol version 2, this side speaks 1");
  pb_env(&env, 1, F_ERROR, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EVERSION);
}
END_TEST

START_TEST(test_unknown_message) {
  pb env, sub = {.n = 0};
  /* Version only: no message set. */
  pb_env(&env, CL_PROTOCOL_VERSION, 0, NULL);
  ck_assert_int_eq(decode_pb(&env), CL_EUNKNOWNMSG);
  ck_assert_str_eq(g_err, "unknown message type (envelope field 0)");
  /* An envelope field this version does not know, as a message, a varint,
   * a fixed32 and with the largest field number. */
  put_bytes_len(&sub, 1, 32, 1);
  pb_env(&env, CL_PROTOCOL_VERSION, 12, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EUNKNOWNMSG);
  pb_env(&env, CL_PROTOCOL_VERSION, 0, NULL);
  pb_u64(&env, 15, 7);
  ck_assert_int_eq(decode_pb(&env), CL_EUNKNOWNMSG);
  pb_env(&env, CL_PROTOCOL_VERSION, 0, NULL);
  pb_tag(&env, 1000, WT_I32);
  pb_raw(&env, "\x01\x02\x03\x04", 4);
  ck_assert_int_eq(decode_pb(&env), CL_EUNKNOWNMSG);
  pb_env(&env, CL_PROTOCOL_VERSION, 0, NULL);
  pb_bytes(&env, (1u << 29) - 1, "x", 1);
  ck_assert_int_eq(decode_pb(&env), CL_EUNKNOWNMSG);
  /* An unknown field next to a known message is ignored. */
  build_golden(&env, F_RESPONSE, -1, 0);
  pb_bytes(&env, 12, "future", 6);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_int_eq(g_out.type, CL_MSG_RESPONSE);
}
END_TEST

START_TEST(test_unknown_field_inside_message) {
  /* Unknown fields inside a known message are skipped (forward
   * compatibility); the known fields must still be right. */
  pb env, sub = {.n = 0};
  put_bytes_len(&sub, 1, 32, 1);
  pb_u64(&sub, 9, 12345);
  pb_u64(&sub, 2, 42);
  pb_bytes(&sub, 100, "zzz", 3);
  put_bytes_len(&sub, 3, 32, 3);
  pb_env(&env, CL_PROTOCOL_VERSION, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  golden_msg(F_RESPONSE, &g_in);
  assert_msg_eq(&g_in, &g_out);
}
END_TEST

START_TEST(test_truncated) {
  golden_msg(F_REGISTER, &g_in);
  size_t n = 0;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_OK);
  const uint8_t *body = g_frame + CL_FRAME_HDR_LEN;
  size_t blen = n - CL_FRAME_HDR_LEN;
  for (size_t k = 1; k < blen; k++) {
    int rc = cl_msg_decode(body, k, &g_out, g_err, sizeof g_err);
    if (k == 2) {
      /* Exactly "08 02": a valid Envelope with no message. */
      ck_assert_int_eq(rc, CL_EUNKNOWNMSG);
    } else {
      ck_assert_msg(rc == CL_EMALFORMED, "cut at %zu: rc %d", k, rc);
      char want[80];
      snprintf(want, sizeof want, "frame of %zu bytes is not a valid Envelope", k);
      ck_assert_str_eq(g_err, want);
    }
  }
  /* A bytes field that claims more than its message holds. */
  pb env, sub = {.n = 0};
  pb_tag(&sub, 3, WT_LEN);
  pb_varint(&sub, 32);
  uint8_t d[20] = {0};
  pb_raw(&sub, d, sizeof d);
  pb_env(&env, CL_PROTOCOL_VERSION, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* A sub-message that claims more than the envelope holds. */
  env.n = 0;
  pb_u64(&env, 1, CL_PROTOCOL_VERSION);
  pb_tag(&env, F_RESPONSE, WT_LEN);
  pb_varint(&env, 200);
  pb_raw(&env, d, sizeof d);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
}
END_TEST

/* Appends `count` copies of entry as repeated field `field` to sub. */
static void repeat(pb *sub, uint32_t field, const pb *entry, int count) {
  for (int i = 0; i < count; i++) pb_sub(sub, field, entry);
}

START_TEST(test_too_many_entries) {
  pb sub, env, offer = {.n = 0}, res = {.n = 0}, conf = {.n = 0};
  put_bytes_len(&offer, 1, 32, 1);
  put_bytes_len(&offer, 2, 32, 2);
  put_bytes_len(&offer, 3, 32, 3);
  /* 64 offers pass, 65 fail. */
  sub.n = 0;
  pb_str(&sub, 1, "agent");
  repeat(&sub, 3, &offer, CL_MAX_CHIPS_PER_REGISTER);
  pb_env(&env, CL_PROTOCOL_VERSION, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_uint_eq(g_out.u.reg.n, 64);
  repeat(&sub, 3, &offer, 1);
  pb_env(&env, CL_PROTOCOL_VERSION, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field register.chips has 65 entries, more than 64");
  /* Results (refused ones, the smallest). */
  put_bytes_len(&res, 1, 32, 1);
  sub.n = 0;
  repeat(&sub, 1, &res, 65);
  pb_env(&env, CL_PROTOCOL_VERSION, F_REGRESULT, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field register_result.results has 65 entries, more than 64");
  /* Confirms. */
  put_bytes_len(&conf, 1, 32, 1);
  put_bytes_len(&conf, 2, 64, 2);
  sub.n = 0;
  repeat(&sub, 1, &conf, 64);
  pb_env(&env, CL_PROTOCOL_VERSION, F_CONFIRM, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  repeat(&sub, 1, &conf, 1);
  pb_env(&env, CL_PROTOCOL_VERSION, F_CONFIRM, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field confirm.chips has 65 entries, more than 64");
  /* The encoder refuses a struct with too many entries. */
  size_t n = 0;
  memset(&g_in, 0, sizeof g_in);
  g_in.type = CL_MSG_REGISTER;
  g_in.u.reg.n = CL_MAX_CHIPS_PER_REGISTER + 1;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_EINVAL);
  g_in.type = CL_MSG_REGISTER_RESULT;
  g_in.u.reg_result.n = CL_MAX_CHIPS_PER_REGISTER + 1;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_EINVAL);
  g_in.type = CL_MSG_CONFIRM;
  g_in.u.confirm.n = CL_MAX_CHIPS_PER_REGISTER + 1;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_EINVAL);
}
END_TEST

START_TEST(test_string_lengths) {
  char name[200];
  pb sub, env, offer = {.n = 0};
  put_bytes_len(&offer, 1, 32, 1);
  put_bytes_len(&offer, 2, 32, 2);
  put_bytes_len(&offer, 3, 32, 3);
  /* Agent name: 64 bytes pass, 65 fail. */
  memset(name, 'n', sizeof name);
  name[CL_MAX_AGENT_NAME] = '\0';
  sub.n = 0;
  pb_str(&sub, 1, name);
  pb_sub(&sub, 3, &offer);
  pb_env(&env, CL_PROTOCOL_VERSION, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_str_eq(g_out.u.reg.agent, name);
  name[CL_MAX_AGENT_NAME] = 'n';
  name[CL_MAX_AGENT_NAME + 1] = '\0';
  sub.n = 0;
  pb_str(&sub, 1, name);
  pb_sub(&sub, 3, &offer);
  pb_env(&env, CL_PROTOCOL_VERSION, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field register.agent is 65 bytes long, too long");
  name[CL_MAX_AGENT_NAME + 1] = 'n';
  name[150] = '\0';
  sub.n = 0;
  pb_str(&sub, 1, name);
  pb_env(&env, CL_PROTOCOL_VERSION, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field register.agent is 150 bytes long, too long");

  /* Chip result detail: 96 pass, 97 fail. */
  memset(name, 'd', sizeof name);
  for (size_t len = CL_MAX_DETAIL; len <= CL_MAX_DETAIL + 1; len++) {
    name[len] = '\0';
    pb res = {.n = 0};
    put_bytes_len(&res, 1, 32, 1);
    pb_str(&res, 4, name);
    sub.n = 0;
    pb_sub(&sub, 1, &res);
    pb_env(&env, CL_PROTOCOL_VERSION, F_REGRESULT, &sub);
    if (len == CL_MAX_DETAIL) {
      ck_assert_int_eq(decode_pb(&env), CL_OK);
      ck_assert_str_eq(g_out.u.reg_result.r[0].detail, name);
    } else {
      ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
      ck_assert_str_eq(g_err, "field register_result.results.detail is 97 bytes long, too long");
    }
    name[len] = 'd';
  }
}
END_TEST

START_TEST(test_error_text_truncated) {
  /* Error text from a peer is informative: longer text is cut, not refused. */
  char text[1000];
  memset(text, 'e', sizeof text);
  text[sizeof text - 1] = '\0';
  text[0] = 'S';
  pb sub = {.n = 0}, env;
  pb_u64(&sub, 1, CL_ERR_REPLAY);
  pb_str(&sub, 2, text);
  pb_env(&env, CL_PROTOCOL_VERSION, F_ERROR, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_int_eq(g_out.type, CL_MSG_ERROR);
  ck_assert_int_eq(g_out.u.error.code, CL_ERR_REPLAY);
  ck_assert_uint_eq(strlen(g_out.u.error.text), CL_MAX_ERROR_TEXT);
  ck_assert_int_eq(strncmp(g_out.u.error.text, text, CL_MAX_ERROR_TEXT), 0);

  /* An error code this version does not know is passed through. */
  sub.n = 0;
  pb_u64(&sub, 1, 99);
  pb_env(&env, CL_PROTOCOL_VERSION, F_ERROR, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_int_eq(g_out.u.error.code, 99);
  ck_assert_str_eq(g_out.u.error.text, "");
  ck_assert_str_eq(cl_wire_error_name(g_out.u.error.code), "unknown");

  /* cl_msg_encode_error truncates on the sending side too. */
  size_t n = 0;
  ck_assert_int_eq(cl_msg_encode_error(CL_ERR_LATE, text, g_frame, sizeof g_frame, &n), CL_OK);
  ck_assert_int_eq(cl_msg_decode(g_frame + 4, n - 4, &g_out, g_err, sizeof g_err), CL_OK);
  ck_assert_int_eq(g_out.u.error.code, CL_ERR_LATE);
  ck_assert_uint_eq(strlen(g_out.u.error.text), CL_MAX_ERROR_TEXT);
  ck_assert_int_eq(cl_msg_encode_error(CL_ERR_MALFORMED, NULL, g_frame, sizeof g_frame, &n), CL_OK);
  ck_assert_int_eq(cl_msg_decode(g_frame + 4, n - 4, &g_out, g_err, sizeof g_err), CL_OK);
  ck_assert_str_eq(g_out.u.error.text, "");
}
END_TEST

START_TEST(test_hostile_protobuf) {
  pb env, sub = {.n = 0};
  /* A varint of 11 bytes. */
  env.n = 0;
  pb_raw(&env, "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* A varint that never ends. */
  env.n = 0;
  pb_raw(&env, "\x08\xff\xff\xff", 4);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* Field number 0. */
  env.n = 0;
  pb_raw(&env, "\x00\x01", 2);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* Wire types 6 and 7 do not exist; groups are not part of proto3. */
  static const uint8_t bad_wt[][2] = {{0x0e, 0x00}, {0x0f, 0x00}, {0x0b, 0x00}, {0x0c, 0x00}};
  for (size_t i = 0; i < 4; i++) {
    env.n = 0;
    pb_u64(&env, 1, CL_PROTOCOL_VERSION);
    pb_raw(&env, bad_wt[i], 2);
    ck_assert_msg(decode_pb(&env) == CL_EMALFORMED, "wire type %d", bad_wt[i][0] & 7);
  }
  /* A known bytes field sent as a varint, and the message as a varint. */
  sub.n = 0;
  put_bytes_len(&sub, 1, 32, 1);
  pb_u64(&sub, 3, 5);
  pb_env(&env, CL_PROTOCOL_VERSION, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  env.n = 0;
  pb_u64(&env, 1, CL_PROTOCOL_VERSION);
  pb_u64(&env, F_CHALLENGE, 1);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* The version sent as a length-delimited field. */
  env.n = 0;
  pb_bytes(&env, 1, "\x02", 1);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* A length of 2^32 - 1 and of 2^63 for a bytes field. */
  env.n = 0;
  pb_u64(&env, 1, CL_PROTOCOL_VERSION);
  pb_tag(&env, F_HELLO, WT_LEN);
  pb_varint(&env, 0xffffffffu);
  pb_raw(&env, "\x0a\x20", 2);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  env.n = 0;
  pb_u64(&env, 1, CL_PROTOCOL_VERSION);
  pb_tag(&env, F_HELLO, WT_LEN);
  pb_varint(&env, 1ull << 63);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* A packed seqs field whose last varint is cut. */
  sub.n = 0;
  put_bytes_len(&sub, 1, 32, 1);
  pb_bytes(&sub, 2, "\x2a\xff", 2);
  pb_env(&env, CL_PROTOCOL_VERSION, F_BURST_END, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* Deeply nested unknown groups of length-delimited fields. */
  pb deep = {.n = 0};
  for (int i = 0; i < 200; i++) {
    pb outer = {.n = 0};
    pb_sub(&outer, 9, &deep);
    deep = outer;
  }
  pb_env(&env, CL_PROTOCOL_VERSION, F_CHALLENGE, &deep);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED); /* fields missing */
  ck_assert_str_eq(g_err, "field challenge.chip_id has 0 bytes, want 32");
}
END_TEST

START_TEST(test_duplicate_fields) {
  /* Protobuf semantics: a repeated scalar field takes its last value, and
   * of two oneof members the last one wins. */
  pb env, sub;
  build_golden(&env, F_HELLO, -1, 0);
  build_golden(&sub, F_RESPONSE, -1, 0); /* a whole envelope, appended */
  pb_raw(&env, sub.b, sub.n);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_int_eq(g_out.type, CL_MSG_RESPONSE);
  /* A second MAC inside one Response replaces the first. */
  uint8_t other[32];
  memset(other, 0xEE, sizeof other);
  sub.n = 0;
  put_bytes_len(&sub, 1, 32, 1);
  pb_u64(&sub, 2, 42);
  put_bytes_len(&sub, 3, 32, 3);
  pb_bytes(&sub, 3, other, 32);
  pb_env(&env, CL_PROTOCOL_VERSION, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_mem_eq(g_out.u.response.mac, other, 32);
  /* A second Response in the same envelope replaces the first as a whole
   * (protobuf-c does not merge oneof members), so a partial second copy
   * cannot patch a field of the first: it is judged on its own. */
  build_golden(&env, F_RESPONSE, -1, 0);
  sub.n = 0;
  pb_bytes(&sub, 3, other, 32);
  pb_sub(&env, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field response.chip_id has 0 bytes, want 32");
}
END_TEST

START_TEST(test_encode_limits) {
  golden_msg(F_TRANSCRIPT, &g_in);
  size_t n = 0, full = 0;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &full), CL_OK);
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, full, &n), CL_OK);
  ck_assert_uint_eq(n, full);
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, full - 1, &n), CL_ETOOBIG);
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, 0, &n), CL_ETOOBIG);
  g_in.type = (cl_msg_type)0;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_EINVAL);
  g_in.type = (cl_msg_type)99;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_EINVAL);
}
END_TEST

START_TEST(test_no_err_buffer) {
  pb env;
  build_golden(&env, F_CHALLENGE, 1, 5);
  ck_assert_int_eq(cl_msg_decode(env.b, env.n, &g_out, NULL, 0), CL_EMALFORMED);
  char one[1] = {'x'};
  ck_assert_int_eq(cl_msg_decode(env.b, env.n, &g_out, one, sizeof one), CL_EMALFORMED);
  ck_assert_int_eq(one[0], '\0');
  char small[8];
  ck_assert_int_eq(cl_msg_decode(env.b, env.n, &g_out, small, sizeof small), CL_EMALFORMED);
  ck_assert_str_eq(small, "field c");
}
END_TEST

START_TEST(test_names) {
  static const char *types[] = {"hello",    "register",  "register_result", "challenge",
                                "response", "error",     "confirm",         "burst_end",
                                "transcript", "rekey"};
  for (int i = CL_MSG_HELLO; i <= CL_MSG_REKEY; i++)
    ck_assert_str_eq(cl_msg_type_name((cl_msg_type)i), types[i - 1]);
  ck_assert_str_eq(cl_msg_type_name((cl_msg_type)77), "unknown");
  static const char *errs[] = {"none",          "version",        "malformed",    "too_large",
                               "unexpected",    "unknown_probe",  "replay",       "late",
                               "bad_mac",       "not_registered", "bad_landmark", "limit",
                               "suite",         "bad_handshake",  "bad_transcript",
                               "chip_taken_over"};
  for (int i = 0; i <= CL_ERR_CHIP_TAKEN_OVER; i++)
    ck_assert_str_eq(cl_wire_error_name((cl_wire_error)i), errs[i]);
  ck_assert_str_eq(cl_wire_error_name((cl_wire_error)16), "unknown");
  ck_assert_str_eq(cl_wire_error_name((cl_wire_error)-1), "unknown");
  static const char *refs[] = {"none",      "not_enrolled", "bad_proof",
                               "duplicate", "inactive",     "not_asked"};
  for (int i = 0; i < CL_REFUSE__COUNT; i++)
    ck_assert_str_eq(cl_refuse_reason_name((cl_refuse_reason)i), refs[i]);
  ck_assert_str_eq(cl_refuse_reason_name((cl_refuse_reason)CL_REFUSE__COUNT), "unknown");
}
END_TEST

/* ---- Random bytes. ---- */

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}

/* Decodes buf; if it decodes, re-encoding must succeed and decode equal. */
static void decode_any(const uint8_t *buf, size_t len) {
  static cl_msg a, b;
  static uint8_t frame[CL_FRAME_MAX + CL_FRAME_HDR_LEN];
  char err[256];
  int rc = cl_msg_decode(buf, len, &a, err, sizeof err);
  ck_assert(rc == CL_OK || rc == CL_EMALFORMED || rc == CL_EVERSION || rc == CL_EUNKNOWNMSG);
  ck_assert_uint_lt(strlen(err), sizeof err);
  if (rc != CL_OK) {
    ck_assert_uint_gt(strlen(err), 0);
    return;
  }
  size_t n = 0;
  ck_assert_int_eq(cl_msg_encode(&a, frame, sizeof frame, &n), CL_OK);
  ck_assert_int_eq(cl_msg_decode(frame + 4, n - 4, &b, err, sizeof err), CL_OK);
  assert_msg_eq(&a, &b);
}

START_TEST(test_random_bytes) {
  static uint8_t buf[512];
  for (int i = 0; i < 100000; i++) {
    size_t len = rnd() % sizeof buf;
    for (size_t j = 0; j < len; j++) buf[j] = (uint8_t)rnd();
    /* Start some buffers with a valid version field to get past it. */
    if (len >= 2 && i % 2) {
      buf[0] = 0x08;
      buf[1] = CL_PROTOCOL_VERSION;
    }
    decode_any(buf, len);
  }
}
END_TEST

START_TEST(test_mutated_golden) {
  /* Golden messages of every type with 1..4 random byte changes. */
  static pb golden[N_GOLDEN];
  for (size_t i = 0; i < N_GOLDEN; i++) build_golden(&golden[i], GOLDEN[i], -1, 0);
  int ok = 0;
  static pb m;
  for (int i = 0; i < 100000; i++) {
    m = golden[rnd() % N_GOLDEN];
    int changes = 1 + (int)(rnd() % 4);
    for (int c = 0; c < changes; c++) {
      size_t at = rnd() % m.n;
      switch (rnd() % 3) {
      case 0: m.b[at] = (uint8_t)rnd(); break;
      case 1: m.b[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
      default: m.n = at + 1; break; /* truncate */
      }
    }
    memset(&g_out, 0, sizeof g_out);
    decode_any(m.b, m.n);
    if (cl_msg_decode(m.b, m.n, &g_out, NULL, 0) == CL_OK) ok++;
  }
  /* Changes inside the payload bytes keep the message valid, so some must
   * decode; most must not. */
  ck_assert_int_gt(ok, 1000);
  ck_assert_int_lt(ok, 90000);
}
END_TEST

static Suite *msg_suite(void) {
  Suite *s = suite_create("msg");
  TCase *tc = tcase_create("codec");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_round_trip_every_message);
  tcase_add_test(tc, test_round_trip_register_sizes);
  tcase_add_test(tc, test_round_trip_register_result);
  tcase_add_test(tc, test_round_trip_confirm_burst_end);
  tcase_add_test(tc, test_round_trip_error);
  tcase_add_test(tc, test_hand_built_equals_encoder);
  tcase_add_test(tc, test_bytes_field_lengths);
  tcase_add_test(tc, test_refused_result_carries_no_handshake);
  tcase_add_test(tc, test_later_entry_bad);
  tcase_add_test(tc, test_burst_end_seqs);
  tcase_add_test(tc, test_version);
  tcase_add_test(tc, test_unknown_message);
  tcase_add_test(tc, test_unknown_field_inside_message);
  tcase_add_test(tc, test_truncated);
  tcase_add_test(tc, test_too_many_entries);
  tcase_add_test(tc, test_string_lengths);
  tcase_add_test(tc, test_error_text_truncated);
  tcase_add_test(tc, test_hostile_protobuf);
  tcase_add_test(tc, test_duplicate_fields);
  tcase_add_test(tc, test_encode_limits);
  tcase_add_test(tc, test_no_err_buffer);
  tcase_add_test(tc, test_names);
  suite_add_tcase(s, tc);

  TCase *tr = tcase_create("random");
  tcase_set_timeout(tr, 300);
  tcase_add_test(tr, test_random_bytes);
  tcase_add_test(tr, test_mutated_golden);
  suite_add_tcase(s, tr);
  return s;
}

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  SRunner *sr = srunner_create(msg_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
