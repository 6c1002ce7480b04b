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
  if (want > 0) memcpy(dst, src->data, want); /* an empty field's data is NULL */
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

#define TOO_MANY(field, got, max)                                                         \
  do {                                                                                    \
    cl_err_set(err, errlen, "field %s has %zu entries, more than %d", field, (size_t)(got), \
               (int)(max));                                                               \
    return CL_EMALFORMED;                                                                 \
  } while (0)

static int decode_env(const Chiploc__V2__Envelope *e, cl_msg *out, char *err, size_t errlen) {
  int rc = CL_OK;
  switch (e->msg_case) {
  case CHIPLOC__V2__ENVELOPE__MSG_HELLO:
    out->type = CL_MSG_HELLO;
    out->u.hello.suite = e->hello->suite;
    return take_bytes(out->u.hello.landmark, &e->hello->landmark_id, CL_PK_LEN,
                      "hello.landmark_id", err, errlen);
  case CHIPLOC__V2__ENVELOPE__MSG_REGISTER: {
    const Chiploc__V2__Register *r = e->register_;
    out->type = CL_MSG_REGISTER;
    out->u.reg.suite = r->suite;
    if ((rc = take_string(out->u.reg.agent, CL_MAX_AGENT_NAME, r->agent, "register.agent", err,
                          errlen)))
      return rc;
    if (r->n_chips > CL_MAX_CHIPS_PER_REGISTER)
      TOO_MANY("register.chips", r->n_chips, CL_MAX_CHIPS_PER_REGISTER);
    out->u.reg.n = r->n_chips;
    for (size_t i = 0; i < r->n_chips; i++) {
      cl_chip_offer *o = &out->u.reg.chips[i];
      if ((rc = take_bytes(o->chip, &r->chips[i]->chip_id, CL_PK_LEN, "register.chips.chip_id",
                           err, errlen)) ||
          (rc = take_bytes(o->eph, &r->chips[i]->ephemeral, CL_EPH_LEN,
                           "register.chips.ephemeral", err, errlen)) ||
          (rc = take_bytes(o->nonce, &r->chips[i]->nonce, CL_NONCE_LEN, "register.chips.nonce",
                           err, errlen)))
        return rc;
    }
    return CL_OK;
  }
  case CHIPLOC__V2__ENVELOPE__MSG_REGISTER_RESULT: {
    const Chiploc__V2__RegisterResult *r = e->register_result;
    out->type = CL_MSG_REGISTER_RESULT;
    if (r->n_results > CL_MAX_CHIPS_PER_REGISTER)
      TOO_MANY("register_result.results", r->n_results, CL_MAX_CHIPS_PER_REGISTER);
    out->u.reg_result.n = r->n_results;
    for (size_t i = 0; i < r->n_results; i++) {
      const Chiploc__V2__ChipResult *pr = r->results[i];
      cl_chip_result *cr = &out->u.reg_result.r[i];
      memset(cr, 0, sizeof *cr);
      cr->accepted = pr->accepted ? 1 : 0;
      cr->reason = (cl_refuse_reason)pr->reason;
      if ((rc = take_bytes(cr->chip, &pr->chip_id, CL_PK_LEN, "register_result.results.chip_id",
                           err, errlen)) ||
          (rc = take_string(cr->detail, CL_MAX_DETAIL, pr->detail,
                            "register_result.results.detail", err, errlen)))
        return rc;
      /* An accepted chip carries the landmark's half of the handshake; a
       * refused one carries none. */
      size_t want_eph = cr->accepted ? CL_EPH_LEN : 0, want_nonce = cr->accepted ? CL_NONCE_LEN : 0,
             want_sig = cr->accepted ? CL_SIG_LEN : 0;
      if ((rc = take_bytes(cr->eph, &pr->ephemeral, want_eph, "register_result.results.ephemeral",
                           err, errlen)) ||
          (rc = take_bytes(cr->nonce, &pr->nonce, want_nonce, "register_result.results.nonce", err,
                           errlen)) ||
          (rc = take_bytes(cr->sig, &pr->signature, want_sig, "register_result.results.signature",
                           err, errlen)))
        return rc;
    }
    return CL_OK;
  }
  case CHIPLOC__V2__ENVELOPE__MSG_CONFIRM: {
    const Chiploc__V2__Confirm *c = e->confirm;
    out->type = CL_MSG_CONFIRM;
    if (c->n_chips > CL_MAX_CHIPS_PER_REGISTER)
      TOO_MANY("confirm.chips", c->n_chips, CL_MAX_CHIPS_PER_REGISTER);
    out->u.confirm.n = c->n_chips;
    for (size_t i = 0; i < c->n_chips; i++) {
      if ((rc = take_bytes(out->u.confirm.chips[i].chip, &c->chips[i]->chip_id, CL_PK_LEN,
                           "confirm.chips.chip_id", err, errlen)) ||
          (rc = take_bytes(out->u.confirm.chips[i].sig, &c->chips[i]->signature, CL_SIG_LEN,
                           "confirm.chips.signature", err, errlen)))
        return rc;
    }
    return CL_OK;
  }
  case CHIPLOC__V2__ENVELOPE__MSG_CHALLENGE: {
    const Chiploc__V2__Challenge *c = e->challenge;
    out->type = CL_MSG_CHALLENGE;
    out->u.challenge.seq = c->seq;
    if ((rc = take_bytes(out->u.challenge.chip, &c->chip_id, CL_PK_LEN, "challenge.chip_id", err,
                         errlen)))
      return rc;
    return take_bytes(out->u.challenge.nonce, &c->nonce, CL_NONCE_LEN, "challenge.nonce", err,
                      errlen);
  }
  case CHIPLOC__V2__ENVELOPE__MSG_RESPONSE: {
    const Chiploc__V2__Response *r = e->response;
    out->type = CL_MSG_RESPONSE;
    out->u.response.seq = r->seq;
    if ((rc = take_bytes(out->u.response.chip, &r->chip_id, CL_PK_LEN, "response.chip_id", err,
                         errlen)))
      return rc;
    return take_bytes(out->u.response.mac, &r->mac, CL_MAC_LEN, "response.mac", err, errlen);
  }
  case CHIPLOC__V2__ENVELOPE__MSG_BURST_END: {
    const Chiploc__V2__BurstEnd *b = e->burst_end;
    out->type = CL_MSG_BURST_END;
    if ((rc = take_bytes(out->u.burst_end.chip, &b->chip_id, CL_PK_LEN, "burst_end.chip_id", err,
                         errlen)))
      return rc;
    if (b->n_seqs > CL_MAX_BURST) TOO_MANY("burst_end.seqs", b->n_seqs, CL_MAX_BURST);
    if (b->n_seqs == 0) {
      cl_err_set(err, errlen, "field burst_end.seqs is empty");
      return CL_EMALFORMED;
    }
    out->u.burst_end.n = b->n_seqs;
    for (size_t i = 0; i < b->n_seqs; i++) {
      if (i > 0 && b->seqs[i] <= b->seqs[i - 1]) {
        cl_err_set(err, errlen, "field burst_end.seqs is not strictly increasing at entry %zu",
                   i);
        return CL_EMALFORMED;
      }
      out->u.burst_end.seqs[i] = b->seqs[i];
    }
    return CL_OK;
  }
  case CHIPLOC__V2__ENVELOPE__MSG_TRANSCRIPT: {
    const Chiploc__V2__Transcript *t = e->transcript;
    out->type = CL_MSG_TRANSCRIPT;
    out->u.transcript.first_seq = t->first_seq;
    if ((rc = take_bytes(out->u.transcript.chip, &t->chip_id, CL_PK_LEN, "transcript.chip_id",
                         err, errlen)))
      return rc;
    return take_bytes(out->u.transcript.sig, &t->signature, CL_SIG_LEN, "transcript.signature",
                      err, errlen);
  }
  case CHIPLOC__V2__ENVELOPE__MSG_REKEY:
    out->type = CL_MSG_REKEY;
    return take_bytes(out->u.rekey.chip, &e->rekey->chip_id, CL_PK_LEN, "rekey.chip_id", err,
                      errlen);
  case CHIPLOC__V2__ENVELOPE__MSG_ERROR:
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

/* Reads one varint at *i; 0 when it is cut or longer than 10 bytes. */
static int peek_varint(const uint8_t *p, size_t len, size_t *i, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 70 && *i < len; shift += 7) {
    uint8_t c = p[(*i)++];
    *v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return 1;
  }
  return 0;
}

/*
 * The envelope's version, read before its message is parsed: the messages
 * of another version may use field numbers this version's parser refuses
 * (a bytes field where this version has an integer), and such a peer must
 * still be told that the versions differ. Returns the last value of field
 * 1 (0 when absent), or -1 when the top level is not well-formed protobuf
 * (the full parse then reports it).
 */
static int64_t peek_version(const uint8_t *p, size_t len) {
  uint32_t version = 0;
  size_t i = 0;
  while (i < len) {
    uint64_t tag, v;
    if (!peek_varint(p, len, &i, &tag) || (tag >> 3) == 0) return -1;
    switch (tag & 7) {
    case 0:
      if (!peek_varint(p, len, &i, &v)) return -1;
      if ((tag >> 3) == 1) version = (uint32_t)v;
      continue;
    case 1: v = 8; break;
    case 2:
      if (!peek_varint(p, len, &i, &v)) return -1;
      break;
    case 5: v = 4; break;
    default: return -1;
    }
    if ((tag >> 3) == 1 || v > len - i) return -1;
    i += (size_t)v;
  }
  return version;
}

int cl_msg_decode(const uint8_t *body, size_t len, cl_msg *out, char *err, size_t errlen) {
  if (err && errlen) err[0] = '\0';
  int64_t peeked = peek_version(body, len);
  if (peeked >= 0 && peeked != CL_PROTOCOL_VERSION) {
    out->version = (uint32_t)peeked;
    cl_err_set(err, errlen, "protocol version %u, this side speaks %u", out->version,
               CL_PROTOCOL_VERSION);
    return CL_EVERSION;
  }
  Chiploc__V2__Envelope *e = chiploc__v2__envelope__unpack(NULL, len, body);
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
  chiploc__v2__envelope__free_unpacked(e, NULL);
  return rc;
}

#define BIN(p, n) ((ProtobufCBinaryData){.len = (n), .data = (uint8_t *)(p)})

static int pack_env(Chiploc__V2__Envelope *env, uint8_t *out, size_t cap, size_t *outlen) {
  size_t n = chiploc__v2__envelope__get_packed_size(env);
  if (n > CL_FRAME_MAX || n + CL_FRAME_HDR_LEN > cap) return CL_ETOOBIG;
  cl_frame_put_header(out, (uint32_t)n);
  size_t w = chiploc__v2__envelope__pack(env, out + CL_FRAME_HDR_LEN);
  if (w != n) return CL_EINVAL;
  *outlen = n + CL_FRAME_HDR_LEN;
  return CL_OK;
}

int cl_msg_encode_version(const cl_msg *m, uint32_t version, uint8_t *out, size_t cap,
                          size_t *outlen) {
  Chiploc__V2__Envelope env = CHIPLOC__V2__ENVELOPE__INIT;
  env.version = version;
  switch (m->type) {
  case CL_MSG_HELLO: {
    Chiploc__V2__Hello h = CHIPLOC__V2__HELLO__INIT;
    h.landmark_id = BIN(m->u.hello.landmark, CL_PK_LEN);
    h.suite = m->u.hello.suite;
    env.msg_case = CHIPLOC__V2__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_REGISTER: {
    if (m->u.reg.n > CL_MAX_CHIPS_PER_REGISTER) return CL_EINVAL;
    Chiploc__V2__Register r = CHIPLOC__V2__REGISTER__INIT;
    Chiploc__V2__ChipOffer offers[CL_MAX_CHIPS_PER_REGISTER];
    Chiploc__V2__ChipOffer *ptrs[CL_MAX_CHIPS_PER_REGISTER];
    for (size_t i = 0; i < m->u.reg.n; i++) {
      chiploc__v2__chip_offer__init(&offers[i]);
      offers[i].chip_id = BIN(m->u.reg.chips[i].chip, CL_PK_LEN);
      offers[i].ephemeral = BIN(m->u.reg.chips[i].eph, CL_EPH_LEN);
      offers[i].nonce = BIN(m->u.reg.chips[i].nonce, CL_NONCE_LEN);
      ptrs[i] = &offers[i];
    }
    r.agent = (char *)m->u.reg.agent;
    r.suite = m->u.reg.suite;
    r.n_chips = m->u.reg.n;
    r.chips = ptrs;
    env.msg_case = CHIPLOC__V2__ENVELOPE__MSG_REGISTER;
    env.register_ = &r;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_REGISTER_RESULT: {
    if (m->u.reg_result.n > CL_MAX_CHIPS_PER_REGISTER) return CL_EINVAL;
    Chiploc__V2__RegisterResult r = CHIPLOC__V2__REGISTER_RESULT__INIT;
    Chiploc__V2__ChipResult res[CL_MAX_CHIPS_PER_REGISTER];
    Chiploc__V2__ChipResult *ptrs[CL_MAX_CHIPS_PER_REGISTER];
    for (size_t i = 0; i < m->u.reg_result.n; i++) {
      const cl_chip_result *cr = &m->u.reg_result.r[i];
      chiploc__v2__chip_result__init(&res[i]);
      res[i].chip_id = BIN(cr->chip, CL_PK_LEN);
      res[i].accepted = cr->accepted ? 1 : 0;
      res[i].reason = (Chiploc__V2__RefuseReason)cr->reason;
      res[i].detail = (char *)cr->detail;
      if (cr->accepted) {
        res[i].ephemeral = BIN(cr->eph, CL_EPH_LEN);
        res[i].nonce = BIN(cr->nonce, CL_NONCE_LEN);
        res[i].signature = BIN(cr->sig, CL_SIG_LEN);
      }
      ptrs[i] = &res[i];
    }
    r.n_results = m->u.reg_result.n;
    r.results = ptrs;
    env.msg_case = CHIPLOC__V2__ENVELOPE__MSG_REGISTER_RESULT;
    env.register_result = &r;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_CONFIRM: {
    if (m->u.confirm.n > CL_MAX_CHIPS_PER_REGISTER) return CL_EINVAL;
    Chiploc__V2__Confirm c = CHIPLOC__V2__CONFIRM__INIT;
    Chiploc__V2__ChipConfirm cc[CL_MAX_CHIPS_PER_REGISTER];
    Chiploc__V2__ChipConfirm *ptrs[CL_MAX_CHIPS_PER_REGISTER];
    for (size_t i = 0; i < m->u.confirm.n; i++) {
      chiploc__v2__chip_confirm__init(&cc[i]);
      cc[i].chip_id = BIN(m->u.confirm.chips[i].chip, CL_PK_LEN);
      cc[i].signature = BIN(m->u.confirm.chips[i].sig, CL_SIG_LEN);
      ptrs[i] = &cc[i];
    }
    c.n_chips = m->u.confirm.n;
    c.chips = ptrs;
    env.msg_case = CHIPLOC__V2__ENVELOPE__MSG_CONFIRM;
    env.confirm = &c;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_CHALLENGE: {
    Chiploc__V2__Challenge c = CHIPLOC__V2__CHALLENGE__INIT;
    c.chip_id = BIN(m->u.challenge.chip, CL_PK_LEN);
    c.seq = m->u.challenge.seq;
    c.nonce = BIN(m->u.challenge.nonce, CL_NONCE_LEN);
    env.msg_case = CHIPLOC__V2__ENVELOPE__MSG_CHALLENGE;
    env.challenge = &c;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_RESPONSE: {
    Chiploc__V2__Response r = CHIPLOC__V2__RESPONSE__INIT;
    r.chip_id = BIN(m->u.response.chip, CL_PK_LEN);
    r.seq = m->u.response.seq;
    r.mac = BIN(m->u.response.mac, CL_MAC_LEN);
    env.msg_case = CHIPLOC__V2__ENVELOPE__MSG_RESPONSE;
    env.response = &r;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_BURST_END: {
    if (m->u.burst_end.n > CL_MAX_BURST) return CL_EINVAL;
    Chiploc__V2__BurstEnd b = CHIPLOC__V2__BURST_END__INIT;
    b.chip_id = BIN(m->u.burst_end.chip, CL_PK_LEN);
    b.n_seqs = m->u.burst_end.n;
    b.seqs = (uint64_t *)m->u.burst_end.seqs;
    env.msg_case = CHIPLOC__V2__ENVELOPE__MSG_BURST_END;
    env.burst_end = &b;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_TRANSCRIPT: {
    Chiploc__V2__Transcript t = CHIPLOC__V2__TRANSCRIPT__INIT;
    t.chip_id = BIN(m->u.transcript.chip, CL_PK_LEN);
    t.first_seq = m->u.transcript.first_seq;
    t.signature = BIN(m->u.transcript.sig, CL_SIG_LEN);
    env.msg_case = CHIPLOC__V2__ENVELOPE__MSG_TRANSCRIPT;
    env.transcript = &t;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_REKEY: {
    Chiploc__V2__Rekey k = CHIPLOC__V2__REKEY__INIT;
    k.chip_id = BIN(m->u.rekey.chip, CL_PK_LEN);
    env.msg_case = CHIPLOC__V2__ENVELOPE__MSG_REKEY;
    env.rekey = &k;
    return pack_env(&env, out, cap, outlen);
  }
  case CL_MSG_ERROR: {
    Chiploc__V2__Error er = CHIPLOC__V2__ERROR__INIT;
    er.code = (Chiploc__V2__ErrorCode)m->u.error.code;
    er.text = (char *)m->u.error.text;
    env.msg_case = CHIPLOC__V2__ENVELOPE__MSG_ERROR;
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
  static const char *names[] = {"none",          "version",        "malformed",    "too_large",
                                "unexpected",    "unknown_probe",  "replay",       "late",
                                "bad_mac",       "not_registered", "bad_landmark", "limit",
                                "suite",         "bad_handshake",  "bad_transcript",
                                "chip_taken_over"};
  if ((unsigned)code < sizeof names / sizeof names[0]) return names[code];
  return "unknown";
}

const char *cl_refuse_reason_name(cl_refuse_reason r) {
  static const char *names[] = {"none",     "not_enrolled", "bad_proof",
                                "duplicate", "inactive",     "not_asked"};
  if ((unsigned)r < sizeof names / sizeof names[0]) return names[r];
  return "unknown";
}

const char *cl_msg_type_name(cl_msg_type t) {
  static const char *names[] = {"?",         "hello",    "register", "register_result",
                                "challenge", "response", "error",    "confirm",
                                "burst_end", "transcript", "rekey"};
  if ((unsigned)t < sizeof names / sizeof names[0]) return names[t];
  return "unknown";
}
