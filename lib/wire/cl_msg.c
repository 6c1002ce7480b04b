/*
 * Codec between frame bodies (serialised protobuf Envelopes) and cl_msg.
 * Decoding validates every length so the rest of the code handles only
 * fixed-size arrays; encoding fills protobuf-c structs that point into the
 * caller's cl_msg, so no heap is used on the encode path.
 */
#include "cl_msg.h"
#include "cl_err.h"
#include "cl_frame.h"
#include "chiploc.pb-c.h"

#include <stdio.h>
#include <string.h>

static int fail(char *err, size_t errlen, int code, const char *fmt, const char *field,
                size_t got) {
  cl_err_set(err, errlen, fmt, field, got);
  return code;
}

/* Copies a bytes field of exactly `want` bytes. */
static int take_bytes(uint8_t *dst, const ProtobufCBinaryData *src, size_t want, const char *field,
                      char *err, size_t errlen) {
  if (src->len != want) {
    cl_err_set(err, errlen, "field %s has %zu bytes, want %zu", field, src->len, want);
    return CL_EMALFORMED;
  }
  memcpy(dst, src->data, want);
  return CL_OK;
}

static int take_string(char *dst, size_t max, const char *src, const char *field, char *err,
                       size_t errlen) {
  size_t n = src ? strlen(src) : 0;
  if (n > max) return fail(err, errlen, CL_EMALFORMED, "field %s is %zu bytes long, too long", field, n);
  memcpy(dst, src ? src : "", n);
  dst[n] = '\0';
  return CL_OK;
}

static int decode_env(const Chiploc__V1__Envelope *e, cl_msg *out, char *err, size_t errlen) {
  int rc = CL_OK;
  switch (e->msg_case) {
  case CHIPLOC__V1__ENVELOPE__MSG_HELLO:
    out->type = CL_MSG_HELLO;
    if ((rc = take_bytes(out->u.hello.landmark, &e->hello->landmark_id, CL_PK_LEN,
                         "hello.landmark_id", err, errlen)))
      return rc;
    return take_bytes(out->u.hello.session_nonce, &e->hello->session_nonce, CL_NONCE_LEN,
                      "hello.session_nonce", err, errlen);
  case CHIPLOC__V1__ENVELOPE__MSG_REGISTER: {
    const Chiploc__V1__Register *r = e->register_;
    out->type = CL_MSG_REGISTER;
    if ((rc = take_string(out->u.reg.agent, CL_MAX_AGENT_NAME, r->agent, "register.agent", err,
                          errlen)))
      return rc;
    if (r->n_chips > CL_MAX_CHIPS_PER_REGISTER)
      return fail(err, errlen, CL_EMALFORMED, "field %s has %zu entries, more than 64",
                  "register.chips", r->n_chips);
    out->u.reg.n = r->n_chips;
    for (size_t i = 0; i < r->n_chips; i++) {
      if ((rc = take_bytes(out->u.reg.chips[i].chip, &r->chips[i]->chip_id, CL_PK_LEN,
                           "register.chips.chip_id", err, errlen)) ||
          (rc = take_bytes(out->u.reg.chips[i].proof, &r->chips[i]->proof, CL_SIG_LEN,
                           "register.chips.proof", err, errlen)))
        return rc;
    }
    return CL_OK;
  }
  case CHIPLOC__V1__ENVELOPE__MSG_REGISTER_RESULT: {
    const Chiploc__V1__RegisterResult *r = e->register_result;
    out->type = CL_MSG_REGISTER_RESULT;
    if (r->n_results > CL_MAX_CHIPS_PER_REGISTER)
      return fail(err, errlen, CL_EMALFORMED, "field %s has %zu entries, more than 64",
                  "register_result.results", r->n_results);
    out->u.reg_result.n = r->n_results;
    for (size_t i = 0; i < r->n_results; i++) {
      cl_chip_result *cr = &out->u.reg_result.r[i];
      if ((rc = take_bytes(cr->chip, &r->results[i]->chip_id, CL_PK_LEN,
                           "register_result.results.chip_id", err, errlen)) ||
          (rc = take_string(cr->detail, CL_MAX_DETAIL, r->results[i]->detail,
                            "register_result.results.detail", err, errlen)))
        return rc;
      cr->accepted = r->results[i]->accepted ? 1 : 0;
      cr->reason = (cl_refuse_reason)r->results[i]->reason;
    }
    return CL_OK;
  }
  case CHIPLOC__V1__ENVELOPE__MSG_CHALLENGE: {
    const Chiploc__V1__Challenge *c = e->challenge;
    cl_challenge *ch = &out->u.challenge;
    out->type = CL_MSG_CHALLENGE;
    if ((rc = take_bytes(ch->landmark, &c->landmark_id, CL_PK_LEN, "challenge.landmark_id", err,
                         errlen)) ||
        (rc = take_bytes(ch->chip, &c->chip_id, CL_PK_LEN, "challenge.chip_id", err, errlen)) ||
        (rc = take_bytes(ch->nonce, &c->nonce, CL_NONCE_LEN, "challenge.nonce", err, errlen)) ||
        (rc = take_bytes(ch->sig, &c->signature, CL_SIG_LEN, "challenge.signature", err, errlen)))
      return rc;
    ch->issued_unix_ns = c->issued_unix_ns;
    ch->seq = c->seq;
    return CL_OK;
  }
  case CHIPLOC__V1__ENVELOPE__MSG_RESPONSE: {
    const Chiploc__V1__Response *r = e->response;
    out->type = CL_MSG_RESPONSE;
    if ((rc = take_bytes(out->u.response.chip, &r->chip_id, CL_PK_LEN, "response.chip_id", err,
                         errlen)) ||
        (rc = take_bytes(out->u.response.nonce, &r->nonce, CL_NONCE_LEN, "response.nonce", err,
                         errlen)))
      return rc;
    return take_bytes(out->u.response.sig, &r->signature, CL_SIG_LEN, "response.signature", err,
                      errlen);
  }
  case CHIPLOC__V1__ENVELOPE__MSG_ERROR:
    out->type = CL_MSG_ERROR;
    out->u.error.code = (cl_wire_error)e->error->code;
    /* Error text from a peer is informative: truncate instead of rejecting. */
    snprintf(out->u.error.text, sizeof out->u.error.text, "%s",
             e->error->text ? e->error->text : "");
    return CL_OK;
  default:
    cl_err_set(err, errlen, "unknown message type (envelope field %d)", (int)e->msg_case);
    return CL_EUNKNOWNMSG;
  }
}

int cl_msg_decode(const uint8_t *body, size_t len, cl_msg *out, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  Chiploc__V1__Envelope *e = chiploc__v1__envelope__unpack(NULL, len, body);
  if (!e) {
    cl_err_set(err, errlen, "frame of %zu bytes is not a valid Envelope", len);
    return CL_EMALFORMED;
  }
  out->version = e->version;
  int rc;
  if (e->version != CL_PROTOCOL_VERSION) {
    cl_err_set(err, errlen, "protocol version %u, this side speaks %u", e->version,
               CL_PROTOCOL_VERSION);
    rc = CL_EVERSION;
  } else {
    rc = decode_env(e, out, err, errlen);
  }
  chiploc__v1__envelope__free_unpacked(e, NULL);
  return rc;
}

#define BIN(p, n) ((ProtobufCBinaryData){.len = (n), .data = (uint8_t *)(p)})

static int pack_env(Chiploc__V1__Envelope *env, uint8_t *out, size_t cap, size_t *outlen) {
  size_t n = chiploc__v1__envelope__get_packed_size(env);
  if (n > CL_FRAME_MAX || n + CL_FRAME_HDR_LEN > cap) return CL_ETOOBIG;
  cl_frame_put_header(out, (uint32_t)n);
  size_t w = chiploc__v1__envelope__pack(env, out + CL_FRAME_HDR_LEN);
  if (w != n) return CL_EINVAL;
  *outlen = n + CL_FRAME_HDR_LEN;
  return CL_OK;
}

int cl_msg_encode_version(const cl_msg *m, uint32_t version, uint8_t *out, size_t cap,
                          size_t *outlen) {
  Chiploc__V1__Envelope env = CHIPLOC__V1__ENVELOPE__INIT;
  env.version = version;
  switch (m->type) {
  case CL_MSG_HELLO: {
    Chiploc__V1__Hello h = CHIPLOC__V1__HELLO__INIT;
    h.landmark_id = BIN(m->u.hello.landmark, CL_PK_LEN);
    h.session_nonce = BIN(m->u.hello.session_nonce, CL_NONCE_LEN);
    env.msg_case = CHIPLOC__V1__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_REGISTER: {
    if (m->u.reg.n > CL_MAX_CHIPS_PER_REGISTER) return CL_EINVAL;
    Chiploc__V1__Register r = CHIPLOC__V1__REGISTER__INIT;
    Chiploc__V1__ChipClaim claims[CL_MAX_CHIPS_PER_REGISTER];
    Chiploc__V1__ChipClaim *ptrs[CL_MAX_CHIPS_PER_REGISTER];
    for (size_t i = 0; i < m->u.reg.n; i++) {
      chiploc__v1__chip_claim__init(&claims[i]);
      claims[i].chip_id = BIN(m->u.reg.chips[i].chip, CL_PK_LEN);
      claims[i].proof = BIN(m->u.reg.chips[i].proof, CL_SIG_LEN);
      ptrs[i] = &claims[i];
    }
    r.agent = (char *)m->u.reg.agent;
    r.n_chips = m->u.reg.n;
    r.chips = ptrs;
    env.msg_case = CHIPLOC__V1__ENVELOPE__MSG_REGISTER;
    env.register_ = &r;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_REGISTER_RESULT: {
    if (m->u.reg_result.n > CL_MAX_CHIPS_PER_REGISTER) return CL_EINVAL;
    Chiploc__V1__RegisterResult r = CHIPLOC__V1__REGISTER_RESULT__INIT;
    Chiploc__V1__ChipResult res[CL_MAX_CHIPS_PER_REGISTER];
    Chiploc__V1__ChipResult *ptrs[CL_MAX_CHIPS_PER_REGISTER];
    for (size_t i = 0; i < m->u.reg_result.n; i++) {
      const cl_chip_result *cr = &m->u.reg_result.r[i];
      chiploc__v1__chip_result__init(&res[i]);
      res[i].chip_id = BIN(cr->chip, CL_PK_LEN);
      res[i].accepted = cr->accepted ? 1 : 0;
      res[i].reason = (Chiploc__V1__RefuseReason)cr->reason;
      res[i].detail = (char *)cr->detail;
      ptrs[i] = &res[i];
    }
    r.n_results = m->u.reg_result.n;
    r.results = ptrs;
    env.msg_case = CHIPLOC__V1__ENVELOPE__MSG_REGISTER_RESULT;
    env.register_result = &r;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_CHALLENGE: {
    const cl_challenge *ch = &m->u.challenge;
    Chiploc__V1__Challenge c = CHIPLOC__V1__CHALLENGE__INIT;
    c.landmark_id = BIN(ch->landmark, CL_PK_LEN);
    c.chip_id = BIN(ch->chip, CL_PK_LEN);
    c.nonce = BIN(ch->nonce, CL_NONCE_LEN);
    c.issued_unix_ns = ch->issued_unix_ns;
    c.seq = ch->seq;
    c.signature = BIN(ch->sig, CL_SIG_LEN);
    env.msg_case = CHIPLOC__V1__ENVELOPE__MSG_CHALLENGE;
    env.challenge = &c;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_RESPONSE: {
    Chiploc__V1__Response r = CHIPLOC__V1__RESPONSE__INIT;
    r.chip_id = BIN(m->u.response.chip, CL_PK_LEN);
    r.nonce = BIN(m->u.response.nonce, CL_NONCE_LEN);
    r.signature = BIN(m->u.response.sig, CL_SIG_LEN);
    env.msg_case = CHIPLOC__V1__ENVELOPE__MSG_RESPONSE;
    env.response = &r;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_ERROR: {
    Chiploc__V1__Error er = CHIPLOC__V1__ERROR__INIT;
    er.code = (Chiploc__V1__ErrorCode)m->u.error.code;
    er.text = (char *)m->u.error.text;
    env.msg_case = CHIPLOC__V1__ENVELOPE__MSG_ERROR;
    env.error = &er;
    return pack_env(&env, out, cap, outlen);
  }
  }
  return CL_EINVAL;
}

int cl_msg_encode(const cl_msg *msg, uint8_t *out, size_t cap, size_t *outlen) {
  return cl_msg_encode_version(msg, CL_PROTOCOL_VERSION, out, cap, outlen);
}

int cl_msg_encode_error(cl_wire_error code, const char *text, uint8_t *out, size_t cap,
                        size_t *outlen) {
  cl_msg m;
  m.type = CL_MSG_ERROR;
  m.u.error.code = code;
  snprintf(m.u.error.text, sizeof m.u.error.text, "%s", text ? text : "");
  return cl_msg_encode(&m, out, cap, outlen);
}

const char *cl_wire_error_name(cl_wire_error code) {
  static const char *names[] = {"none",          "version",     "malformed",   "too_large",
                                "unexpected",    "unknown_nonce", "replay",    "late",
                                "bad_signature", "not_registered", "bad_landmark", "limit"};
  if ((unsigned)code < sizeof names / sizeof names[0]) return names[code];
  return "unknown";
}

const char *cl_refuse_reason_name(cl_refuse_reason r) {
  static const char *names[] = {"none", "not_enrolled", "bad_proof", "duplicate", "inactive"};
  if ((unsigned)r < sizeof names / sizeof names[0]) return names[r];
  return "unknown";
}

const char *cl_msg_type_name(cl_msg_type t) {
  static const char *names[] = {"?", "hello", "register", "register_result",
                                "challenge", "response", "error"};
  if ((unsigned)t < sizeof names / sizeof names[0]) return names[t];
  return "unknown";
}
