/*
 * Message codec (lib/wire/cl_msg.h). Every message type round-trips; then golden
 * messages, built here by hand as protobuf bytes (tags and varints written
 * out, so that lengths the encoder never produces can be sent), are
 * corrupted one field at a time, and each corruption must give the precise
 * error code and name the field in the error text. Ends with hostile
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

/* Fills n bytes with the pattern of field number `tag` (matches fill_msg). */
static void pattern(uint8_t *d, size_t n, int tag) {
  for (size_t j = 0; j < n; j++) d[j] = (uint8_t)(tag * 37 + (int)j);
}

/* ---- The golden messages, with one bytes field changed in length. ---- */

/* Envelope field numbers of the messages. */
enum { F_HELLO = 2, F_REGISTER = 3, F_REGRESULT = 4, F_CHALLENGE = 5, F_RESPONSE = 6, F_ERROR = 7 };

typedef struct {
  const char *name; /* as the decoder names it */
  uint32_t msg;     /* envelope field of its message */
  int idx;          /* which bytes field of that message (build order) */
  size_t want;
} bfield;

static const bfield BFIELDS[] = {
    {"hello.landmark_id", F_HELLO, 0, 32},
    {"hello.session_nonce", F_HELLO, 1, 32},
    {"register.chips.chip_id", F_REGISTER, 0, 32},
    {"register.chips.proof", F_REGISTER, 1, 64},
    {"register_result.results.chip_id", F_REGRESULT, 0, 32},
    {"challenge.landmark_id", F_CHALLENGE, 0, 32},
    {"challenge.chip_id", F_CHALLENGE, 1, 32},
    {"challenge.nonce", F_CHALLENGE, 2, 32},
    {"challenge.signature", F_CHALLENGE, 3, 64},
    {"response.chip_id", F_RESPONSE, 0, 32},
    {"response.nonce", F_RESPONSE, 1, 32},
    {"response.signature", F_RESPONSE, 2, 64},
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

/*
 * Builds a golden envelope of message `msg` where bytes field number
 * `target` (an index into the message's bytes fields, -1 for none) has
 * length `tlen` instead of its right length.
 */
static void build_golden(pb *env, uint32_t msg, int target, size_t tlen) {
  pb sub = {.n = 0}, inner = {.n = 0};
#define LEN(i, w) (target == (i) ? tlen : (size_t)(w))
  switch (msg) {
  case F_HELLO:
    put_bytes_len(&sub, 1, LEN(0, 32), 1);
    put_bytes_len(&sub, 2, LEN(1, 32), 2);
    break;
  case F_REGISTER:
    pb_str(&sub, 1, "agent-1");
    put_bytes_len(&inner, 1, LEN(0, 32), 1);
    put_bytes_len(&inner, 2, LEN(1, 64), 2);
    pb_sub(&sub, 2, &inner);
    break;
  case F_REGRESULT:
    put_bytes_len(&inner, 1, LEN(0, 32), 1);
    pb_u64(&inner, 2, 1);
    pb_u64(&inner, 3, 3);
    pb_str(&inner, 4, "dup");
    pb_sub(&sub, 1, &inner);
    break;
  case F_CHALLENGE:
    put_bytes_len(&sub, 1, LEN(0, 32), 1);
    put_bytes_len(&sub, 2, LEN(1, 32), 2);
    put_bytes_len(&sub, 3, LEN(2, 32), 3);
    pb_u64(&sub, 4, 1700000000123456789ull);
    pb_u64(&sub, 5, 42);
    put_bytes_len(&sub, 6, LEN(3, 64), 6);
    break;
  case F_RESPONSE:
    put_bytes_len(&sub, 1, LEN(0, 32), 1);
    put_bytes_len(&sub, 2, LEN(1, 32), 2);
    put_bytes_len(&sub, 3, LEN(2, 64), 3);
    break;
  default:
    ck_abort_msg("bad msg %u", msg);
  }
#undef LEN
  pb_env(env, 1, msg, &sub);
}

/* The cl_msg that build_golden(msg, -1) describes. */
static void golden_msg(uint32_t msg, cl_msg *m) {
  memset(m, 0, sizeof *m);
  switch (msg) {
  case F_HELLO:
    m->type = CL_MSG_HELLO;
    pattern(m->u.hello.landmark, 32, 1);
    pattern(m->u.hello.session_nonce, 32, 2);
    break;
  case F_REGISTER:
    m->type = CL_MSG_REGISTER;
    strcpy(m->u.reg.agent, "agent-1");
    m->u.reg.n = 1;
    pattern(m->u.reg.chips[0].chip, 32, 1);
    pattern(m->u.reg.chips[0].proof, 64, 2);
    break;
  case F_REGRESULT:
    m->type = CL_MSG_REGISTER_RESULT;
    m->u.reg_result.n = 1;
    pattern(m->u.reg_result.r[0].chip, 32, 1);
    m->u.reg_result.r[0].accepted = 1;
    m->u.reg_result.r[0].reason = CL_REFUSE_DUPLICATE;
    strcpy(m->u.reg_result.r[0].detail, "dup");
    break;
  case F_CHALLENGE:
    m->type = CL_MSG_CHALLENGE;
    pattern(m->u.challenge.landmark, 32, 1);
    pattern(m->u.challenge.chip, 32, 2);
    pattern(m->u.challenge.nonce, 32, 3);
    m->u.challenge.issued_unix_ns = 1700000000123456789ull;
    m->u.challenge.seq = 42;
    pattern(m->u.challenge.sig, 64, 6);
    break;
  case F_RESPONSE:
    m->type = CL_MSG_RESPONSE;
    pattern(m->u.response.chip, 32, 1);
    pattern(m->u.response.nonce, 32, 2);
    pattern(m->u.response.sig, 64, 3);
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
    ck_assert_mem_eq(a->u.hello.session_nonce, b->u.hello.session_nonce, CL_NONCE_LEN);
    break;
  case CL_MSG_REGISTER:
    ck_assert_str_eq(a->u.reg.agent, b->u.reg.agent);
    ck_assert_uint_eq(a->u.reg.n, b->u.reg.n);
    for (size_t i = 0; i < a->u.reg.n; i++) {
      ck_assert_mem_eq(a->u.reg.chips[i].chip, b->u.reg.chips[i].chip, CL_PK_LEN);
      ck_assert_mem_eq(a->u.reg.chips[i].proof, b->u.reg.chips[i].proof, CL_SIG_LEN);
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
    }
    break;
  case CL_MSG_CHALLENGE:
    ck_assert_mem_eq(a->u.challenge.landmark, b->u.challenge.landmark, CL_PK_LEN);
    ck_assert_mem_eq(a->u.challenge.chip, b->u.challenge.chip, CL_PK_LEN);
    ck_assert_mem_eq(a->u.challenge.nonce, b->u.challenge.nonce, CL_NONCE_LEN);
    ck_assert_uint_eq(a->u.challenge.issued_unix_ns, b->u.challenge.issued_unix_ns);
    ck_assert_uint_eq(a->u.challenge.seq, b->u.challenge.seq);
    ck_assert_mem_eq(a->u.challenge.sig, b->u.challenge.sig, CL_SIG_LEN);
    break;
  case CL_MSG_RESPONSE:
    ck_assert_mem_eq(a->u.response.chip, b->u.response.chip, CL_PK_LEN);
    ck_assert_mem_eq(a->u.response.nonce, b->u.response.nonce, CL_NONCE_LEN);
    ck_assert_mem_eq(a->u.response.sig, b->u.response.sig, CL_SIG_LEN);
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

/* Encodes g_in, checks the frame header, decodes the body into g_out. */
static void round_trip(void) {
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
}

/* ---- Round trips. ---- */

START_TEST(test_round_trip_hello_challenge_response) {
  golden_msg(F_HELLO, &g_in);
  round_trip();
  golden_msg(F_CHALLENGE, &g_in);
  round_trip();
  g_in.u.challenge.issued_unix_ns = 0;
  g_in.u.challenge.seq = UINT64_MAX;
  round_trip();
  golden_msg(F_RESPONSE, &g_in);
  round_trip();
  /* All-zero keys and nonces still have their full length on the wire. */
  memset(&g_in, 0, sizeof g_in);
  g_in.type = CL_MSG_RESPONSE;
  round_trip();
  g_in.type = CL_MSG_CHALLENGE;
  round_trip();
}
END_TEST

START_TEST(test_round_trip_register) {
  memset(&g_in, 0, sizeof g_in);
  g_in.type = CL_MSG_REGISTER;
  round_trip(); /* no agent name, no chips */
  golden_msg(F_REGISTER, &g_in);
  round_trip();
  /* The largest Register: 64 chips and a 64-byte name. It must fit in the
   * limit that applies before registration. */
  memset(g_in.u.reg.agent, 'a', CL_MAX_AGENT_NAME);
  g_in.u.reg.agent[CL_MAX_AGENT_NAME] = '\0';
  g_in.u.reg.n = CL_MAX_CHIPS_PER_REGISTER;
  for (int i = 0; i < CL_MAX_CHIPS_PER_REGISTER; i++) {
    pattern(g_in.u.reg.chips[i].chip, 32, i);
    pattern(g_in.u.reg.chips[i].proof, 64, i + 100);
  }
  round_trip();
  ck_assert_uint_le(cl_get_be32(g_frame), CL_FRAME_MAX_UNREGISTERED);
}
END_TEST

START_TEST(test_round_trip_register_result) {
  memset(&g_in, 0, sizeof g_in);
  g_in.type = CL_MSG_REGISTER_RESULT;
  round_trip();
  golden_msg(F_REGRESULT, &g_in);
  round_trip();
  g_in.u.reg_result.n = CL_MAX_CHIPS_PER_REGISTER;
  for (int i = 0; i < CL_MAX_CHIPS_PER_REGISTER; i++) {
    cl_chip_result *r = &g_in.u.reg_result.r[i];
    pattern(r->chip, 32, i);
    r->accepted = i % 2;
    r->reason = (cl_refuse_reason)(i % 5);
    memset(r->detail, 'd', CL_MAX_DETAIL);
    r->detail[i % 2 ? 0 : CL_MAX_DETAIL] = '\0';
  }
  round_trip();
  /* The largest RegisterResult (64 results, 96-byte details) is above the
   * unregistered limit but within CL_FRAME_MAX: an agent must read it with
   * the CL_FRAME_MAX limit. */
  for (int i = 0; i < CL_MAX_CHIPS_PER_REGISTER; i++) {
    memset(g_in.u.reg_result.r[i].detail, 'd', CL_MAX_DETAIL);
    g_in.u.reg_result.r[i].detail[CL_MAX_DETAIL] = '\0';
  }
  round_trip();
  ck_assert_uint_gt(cl_get_be32(g_frame), CL_FRAME_MAX_UNREGISTERED);
  ck_assert_uint_le(cl_get_be32(g_frame), CL_FRAME_MAX);
}
END_TEST

START_TEST(test_round_trip_error) {
  for (int code = CL_ERR_NONE; code <= CL_ERR_LIMIT; code++) {
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
  static const uint32_t msgs[] = {F_HELLO, F_REGISTER, F_REGRESULT, F_CHALLENGE, F_RESPONSE};
  for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
    pb env;
    build_golden(&env, msgs[i], -1, 0);
    golden_msg(msgs[i], &g_in);
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

START_TEST(test_second_chip_bad) {
  /* The 3rd claim of a Register has a short proof: the whole message fails. */
  pb sub = {.n = 0};
  pb_str(&sub, 1, "agent");
  for (int i = 0; i < 4; i++) {
    pb claim = {.n = 0};
    put_bytes_len(&claim, 1, 32, 1);
    put_bytes_len(&claim, 2, i == 2 ? 63 : 64, 2);
    pb_sub(&sub, 2, &claim);
  }
  pb env;
  pb_env(&env, 1, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field register.chips.proof has 63 bytes, want 64");
}
END_TEST

START_TEST(test_version) {
  /* Version 2 with an otherwise valid Challenge. */
  golden_msg(F_CHALLENGE, &g_in);
  size_t n = 0;
  ck_assert_int_eq(cl_msg_encode_version(&g_in, 2, g_frame, sizeof g_frame, &n), CL_OK);
  memset(&g_out, 0, sizeof g_out);
  ck_assert_int_eq(cl_msg_decode(g_frame + 4, n - 4, &g_out, g_err, sizeof g_err), CL_EVERSION);
  ck_assert_uint_eq(g_out.version, 2);
  ck_assert_ptr_nonnull(strstr(g_err, "version 2"));
  ck_assert_str_eq(g_err, "protocol version 2, this side speaks 1");

  /* The version is checked before the message: version 2 with a broken
   * Challenge is still a version error. */
  pb env, sub = {.n = 0};
  put_bytes_len(&sub, 3, 5, 3);
  pb_env(&env, 2, F_CHALLENGE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EVERSION);
  ck_assert_uint_eq(g_out.version, 2);

  /* No version field at all is version 0. */
  build_golden(&env, F_CHALLENGE, -1, 0);
  pb env0;
  ck_assert_uint_eq(env.b[0], 0x08);
  env0.n = 0;
  pb_raw(&env0, env.b + 2, env.n - 2); /* drop "08 01" */
  ck_assert_int_eq(decode_pb(&env0), CL_EVERSION);
  ck_assert_uint_eq(g_out.version, 0);
  ck_assert_str_eq(g_err, "protocol version 0, this side speaks 1");

  /* The largest version. */
  pb_env(&env, 0xffffffffu, 0, NULL);
  ck_assert_int_eq(decode_pb(&env), CL_EVERSION);
  ck_assert_uint_eq(g_out.version, 0xffffffffu);
}
END_TEST

START_TEST(test_unknown_message) {
  pb env, sub = {.n = 0};
  /* Version only: no message set. */
  pb_env(&env, 1, 0, NULL);
  ck_assert_int_eq(decode_pb(&env), CL_EUNKNOWNMSG);
  ck_assert_ptr_nonnull(strstr(g_err, "unknown message type"));
  /* An envelope field this version does not know, as a message, a varint,
   * a fixed32 and with the largest field number. */
  put_bytes_len(&sub, 1, 32, 1);
  pb_env(&env, 1, 8, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EUNKNOWNMSG);
  pb_env(&env, 1, 0, NULL);
  pb_u64(&env, 15, 7);
  ck_assert_int_eq(decode_pb(&env), CL_EUNKNOWNMSG);
  pb_env(&env, 1, 0, NULL);
  pb_tag(&env, 1000, WT_I32);
  pb_raw(&env, "\x01\x02\x03\x04", 4);
  ck_assert_int_eq(decode_pb(&env), CL_EUNKNOWNMSG);
  pb_env(&env, 1, 0, NULL);
  pb_bytes(&env, (1u << 29) - 1, "x", 1);
  ck_assert_int_eq(decode_pb(&env), CL_EUNKNOWNMSG);
  /* An unknown field next to a known message is ignored. */
  build_golden(&env, F_RESPONSE, -1, 0);
  pb_bytes(&env, 9, "future", 6);
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
  put_bytes_len(&sub, 2, 32, 2);
  pb_bytes(&sub, 100, "zzz", 3);
  put_bytes_len(&sub, 3, 64, 3);
  pb_env(&env, 1, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  golden_msg(F_RESPONSE, &g_in);
  assert_msg_eq(&g_in, &g_out);
}
END_TEST

START_TEST(test_truncated) {
  golden_msg(F_CHALLENGE, &g_in);
  size_t n = 0;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_OK);
  const uint8_t *body = g_frame + CL_FRAME_HDR_LEN;
  size_t blen = n - CL_FRAME_HDR_LEN;
  for (size_t k = 1; k < blen; k++) {
    int rc = cl_msg_decode(body, k, &g_out, g_err, sizeof g_err);
    if (k == 2) {
      /* Exactly "08 01": a valid Envelope with no message. */
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
  pb_env(&env, 1, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* A sub-message that claims more than the envelope holds. */
  env.n = 0;
  pb_u64(&env, 1, 1);
  pb_tag(&env, F_RESPONSE, WT_LEN);
  pb_varint(&env, 200);
  pb_raw(&env, d, sizeof d);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
}
END_TEST

START_TEST(test_too_many_chips) {
  pb sub = {.n = 0}, env;
  pb_str(&sub, 1, "agent");
  pb claim = {.n = 0};
  put_bytes_len(&claim, 1, 32, 1);
  put_bytes_len(&claim, 2, 64, 2);
  for (int i = 0; i < CL_MAX_CHIPS_PER_REGISTER; i++) pb_sub(&sub, 2, &claim);
  pb_env(&env, 1, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_uint_eq(g_out.u.reg.n, 64);
  pb_sub(&sub, 2, &claim); /* the 65th */
  pb_env(&env, 1, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field register.chips has 65 entries, more than 64");
  /* Same for results. */
  sub.n = 0;
  pb res = {.n = 0};
  put_bytes_len(&res, 1, 32, 1);
  for (int i = 0; i < 65; i++) pb_sub(&sub, 1, &res);
  pb_env(&env, 1, F_REGRESULT, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field register_result.results has 65 entries, more than 64");
  /* The encoder refuses a struct with too many entries. */
  memset(&g_in, 0, sizeof g_in);
  g_in.type = CL_MSG_REGISTER;
  g_in.u.reg.n = CL_MAX_CHIPS_PER_REGISTER + 1;
  size_t n = 0;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_EINVAL);
  g_in.type = CL_MSG_REGISTER_RESULT;
  g_in.u.reg_result.n = CL_MAX_CHIPS_PER_REGISTER + 1;
  ck_assert_int_eq(cl_msg_encode(&g_in, g_frame, sizeof g_frame, &n), CL_EINVAL);
}
END_TEST

START_TEST(test_string_lengths) {
  char name[200];
  pb sub, env, claim = {.n = 0};
  put_bytes_len(&claim, 1, 32, 1);
  put_bytes_len(&claim, 2, 64, 2);
  /* Agent name: 64 bytes pass, 65 fail. */
  memset(name, 'n', sizeof name);
  name[CL_MAX_AGENT_NAME] = '\0';
  sub.n = 0;
  pb_str(&sub, 1, name);
  pb_sub(&sub, 2, &claim);
  pb_env(&env, 1, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_str_eq(g_out.u.reg.agent, name);
  name[CL_MAX_AGENT_NAME] = 'n';
  name[CL_MAX_AGENT_NAME + 1] = '\0';
  sub.n = 0;
  pb_str(&sub, 1, name);
  pb_sub(&sub, 2, &claim);
  pb_env(&env, 1, F_REGISTER, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field register.agent is 65 bytes long, too long");
  name[CL_MAX_AGENT_NAME + 1] = 'n';
  name[150] = '\0';
  sub.n = 0;
  pb_str(&sub, 1, name);
  pb_env(&env, 1, F_REGISTER, &sub);
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
    pb_env(&env, 1, F_REGRESULT, &sub);
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
  pb_env(&env, 1, F_ERROR, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_int_eq(g_out.type, CL_MSG_ERROR);
  ck_assert_int_eq(g_out.u.error.code, CL_ERR_REPLAY);
  ck_assert_uint_eq(strlen(g_out.u.error.text), CL_MAX_ERROR_TEXT);
  ck_assert_int_eq(strncmp(g_out.u.error.text, text, CL_MAX_ERROR_TEXT), 0);

  /* An error code this version does not know is passed through. */
  sub.n = 0;
  pb_u64(&sub, 1, 99);
  pb_env(&env, 1, F_ERROR, &sub);
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
    pb_u64(&env, 1, 1);
    pb_raw(&env, bad_wt[i], 2);
    ck_assert_msg(decode_pb(&env) == CL_EMALFORMED, "wire type %d", bad_wt[i][0] & 7);
  }
  /* A known bytes field sent as a varint, and the message as a varint. */
  sub.n = 0;
  put_bytes_len(&sub, 1, 32, 1);
  pb_u64(&sub, 2, 5);
  put_bytes_len(&sub, 3, 64, 3);
  pb_env(&env, 1, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  env.n = 0;
  pb_u64(&env, 1, 1);
  pb_u64(&env, F_CHALLENGE, 1);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* The version sent as a length-delimited field. */
  env.n = 0;
  pb_bytes(&env, 1, "\x01", 1);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* A length of 2^32 - 1 and of 2^63 for a bytes field. */
  env.n = 0;
  pb_u64(&env, 1, 1);
  pb_tag(&env, F_HELLO, WT_LEN);
  pb_varint(&env, 0xffffffffu);
  pb_raw(&env, "\x0a\x20", 2);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  env.n = 0;
  pb_u64(&env, 1, 1);
  pb_tag(&env, F_HELLO, WT_LEN);
  pb_varint(&env, 1ull << 63);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  /* Deeply nested unknown groups of length-delimited fields. */
  pb deep = {.n = 0};
  for (int i = 0; i < 200; i++) {
    pb outer = {.n = 0};
    pb_sub(&outer, 9, &deep);
    deep = outer;
  }
  pb_env(&env, 1, F_CHALLENGE, &deep);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED); /* fields missing */
  ck_assert_str_eq(g_err, "field challenge.landmark_id has 0 bytes, want 32");
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
  /* A second nonce inside one Response replaces the first. */
  uint8_t other[32];
  memset(other, 0xEE, sizeof other);
  sub.n = 0;
  put_bytes_len(&sub, 1, 32, 1);
  put_bytes_len(&sub, 2, 32, 2);
  put_bytes_len(&sub, 3, 64, 3);
  pb_bytes(&sub, 2, other, 32);
  pb_env(&env, 1, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_OK);
  ck_assert_mem_eq(g_out.u.response.nonce, other, 32);
  /* A second Response in the same envelope replaces the first as a whole
   * (protobuf-c does not merge oneof members), so a partial second copy
   * cannot patch a field of the first: it is judged on its own. */
  build_golden(&env, F_RESPONSE, -1, 0);
  sub.n = 0;
  pb_bytes(&sub, 2, other, 32);
  pb_sub(&env, F_RESPONSE, &sub);
  ck_assert_int_eq(decode_pb(&env), CL_EMALFORMED);
  ck_assert_str_eq(g_err, "field response.chip_id has 0 bytes, want 32");
}
END_TEST

START_TEST(test_encode_limits) {
  golden_msg(F_CHALLENGE, &g_in);
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
  build_golden(&env, F_CHALLENGE, 2, 5);
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
  ck_assert_str_eq(cl_msg_type_name(CL_MSG_HELLO), "hello");
  ck_assert_str_eq(cl_msg_type_name(CL_MSG_REGISTER), "register");
  ck_assert_str_eq(cl_msg_type_name(CL_MSG_REGISTER_RESULT), "register_result");
  ck_assert_str_eq(cl_msg_type_name(CL_MSG_CHALLENGE), "challenge");
  ck_assert_str_eq(cl_msg_type_name(CL_MSG_RESPONSE), "response");
  ck_assert_str_eq(cl_msg_type_name(CL_MSG_ERROR), "error");
  ck_assert_str_eq(cl_msg_type_name((cl_msg_type)77), "unknown");
  static const char *errs[] = {"none",          "version",        "malformed",    "too_large",
                               "unexpected",    "unknown_nonce",  "replay",       "late",
                               "bad_signature", "not_registered", "bad_landmark", "limit"};
  for (int i = 0; i <= CL_ERR_LIMIT; i++)
    ck_assert_str_eq(cl_wire_error_name((cl_wire_error)i), errs[i]);
  ck_assert_str_eq(cl_wire_error_name((cl_wire_error)12), "unknown");
  ck_assert_str_eq(cl_wire_error_name((cl_wire_error)-1), "unknown");
  static const char *refs[] = {"none", "not_enrolled", "bad_proof", "duplicate", "inactive"};
  for (int i = 0; i <= CL_REFUSE_INACTIVE; i++)
    ck_assert_str_eq(cl_refuse_reason_name((cl_refuse_reason)i), refs[i]);
  ck_assert_str_eq(cl_refuse_reason_name((cl_refuse_reason)5), "unknown");
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
      buf[1] = 0x01;
    }
    decode_any(buf, len);
  }
}
END_TEST

START_TEST(test_mutated_golden) {
  /* Golden messages of every type with 1..4 random byte changes. */
  static const uint32_t msgs[] = {F_HELLO, F_REGISTER, F_REGRESULT, F_CHALLENGE, F_RESPONSE};
  pb golden[5];
  for (int i = 0; i < 5; i++) build_golden(&golden[i], msgs[i], -1, 0);
  int ok = 0;
  for (int i = 0; i < 100000; i++) {
    pb m = golden[rnd() % 5];
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
  tcase_add_test(tc, test_round_trip_hello_challenge_response);
  tcase_add_test(tc, test_round_trip_register);
  tcase_add_test(tc, test_round_trip_register_result);
  tcase_add_test(tc, test_round_trip_error);
  tcase_add_test(tc, test_hand_built_equals_encoder);
  tcase_add_test(tc, test_bytes_field_lengths);
  tcase_add_test(tc, test_second_chip_bad);
  tcase_add_test(tc, test_version);
  tcase_add_test(tc, test_unknown_message);
  tcase_add_test(tc, test_unknown_field_inside_message);
  tcase_add_test(tc, test_truncated);
  tcase_add_test(tc, test_too_many_chips);
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
