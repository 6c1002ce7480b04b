/*
 * libFuzzer target for the receive path: bytes from a peer go through the
 * frame assembler (lib/wire/cl_frame.h) in pieces, and every complete frame
 * through the message decoder (lib/wire/cl_msg.h).
 *
 * Input: the first byte chooses how the rest is cut into reads (all at once,
 * byte by byte, fixed-size pieces, or pseudo-random sizes); the rest is the
 * byte stream, frames of any of the ten messages of protocol version 2. The
 * limit starts at CL_FRAME_MAX_UNREGISTERED and is raised to CL_FRAME_MAX
 * after a Register decodes (a landmark raises it once it has answered a
 * Register and accepted a chip).
 *
 * Checked on every input, beyond the sanitizers:
 *  - each frame equals the bytes a simple reference parser finds at the
 *    same place in the stream, and errors happen exactly where the reference
 *    sees a zero or over-limit length prefix;
 *  - a message that decodes has this version and a known type, re-encodes
 *    with cl_msg_encode and decodes again to the same fields; a frame that
 *    does not decode fails with CL_EMALFORMED, CL_EVERSION or
 *    CL_EUNKNOWNMSG and a reason.
 */
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_layout.h"
#include "cl_msg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) \
  do {              \
    if (!(cond)) abort(); \
  } while (0)

/* Field-by-field equality of two decoded messages. */
static int msg_equal(const cl_msg *a, const cl_msg *b) {
  if (a->type != b->type || a->version != b->version) return 0;
  switch (a->type) {
  case CL_MSG_HELLO:
    return memcmp(a->u.hello.landmark, b->u.hello.landmark, CL_PK_LEN) == 0 &&
           a->u.hello.suite == b->u.hello.suite;
  case CL_MSG_REGISTER:
    if (strcmp(a->u.reg.agent, b->u.reg.agent) != 0 || a->u.reg.suite != b->u.reg.suite ||
        a->u.reg.n != b->u.reg.n)
      return 0;
    return memcmp(a->u.reg.chips, b->u.reg.chips, a->u.reg.n * sizeof a->u.reg.chips[0]) == 0;
  case CL_MSG_REGISTER_RESULT:
    if (a->u.reg_result.n != b->u.reg_result.n) return 0;
    for (size_t i = 0; i < a->u.reg_result.n; i++) {
      const cl_chip_result *x = &a->u.reg_result.r[i], *y = &b->u.reg_result.r[i];
      if (memcmp(x->chip, y->chip, CL_PK_LEN) != 0 || x->accepted != y->accepted ||
          x->reason != y->reason || strcmp(x->detail, y->detail) != 0)
        return 0;
      /* The landmark's half travels with an accepted chip only. */
      if (x->accepted && (memcmp(x->eph, y->eph, CL_EPH_LEN) != 0 ||
                          memcmp(x->nonce, y->nonce, CL_NONCE_LEN) != 0 ||
                          memcmp(x->sig, y->sig, CL_SIG_LEN) != 0))
        return 0;
    }
    return 1;
  case CL_MSG_CONFIRM:
    return a->u.confirm.n == b->u.confirm.n &&
           memcmp(a->u.confirm.chips, b->u.confirm.chips,
                  a->u.confirm.n * sizeof a->u.confirm.chips[0]) == 0;
  case CL_MSG_CHALLENGE:
    return memcmp(a->u.challenge.chip, b->u.challenge.chip, CL_PK_LEN) == 0 &&
           a->u.challenge.seq == b->u.challenge.seq &&
           memcmp(a->u.challenge.nonce, b->u.challenge.nonce, CL_NONCE_LEN) == 0;
  case CL_MSG_RESPONSE:
    return memcmp(a->u.response.chip, b->u.response.chip, CL_PK_LEN) == 0 &&
           a->u.response.seq == b->u.response.seq &&
           memcmp(a->u.response.mac, b->u.response.mac, CL_MAC_LEN) == 0;
  case CL_MSG_BURST_END:
    return memcmp(a->u.burst_end.chip, b->u.burst_end.chip, CL_PK_LEN) == 0 &&
           a->u.burst_end.n == b->u.burst_end.n &&
           memcmp(a->u.burst_end.seqs, b->u.burst_end.seqs,
                  a->u.burst_end.n * sizeof a->u.burst_end.seqs[0]) == 0;
  case CL_MSG_TRANSCRIPT:
    return memcmp(a->u.transcript.chip, b->u.transcript.chip, CL_PK_LEN) == 0 &&
           a->u.transcript.first_seq == b->u.transcript.first_seq &&
           memcmp(a->u.transcript.sig, b->u.transcript.sig, CL_SIG_LEN) == 0;
  case CL_MSG_REKEY: return memcmp(a->u.rekey.chip, b->u.rekey.chip, CL_PK_LEN) == 0;
  case CL_MSG_ERROR:
    return a->u.error.code == b->u.error.code && strcmp(a->u.error.text, b->u.error.text) == 0;
  }
  return 0;
}

/* Decodes one frame body; on success checks the re-encode round trip.
 * Returns the decoded type, or 0. */
static int handle_frame(const uint8_t *body, size_t len) {
  static cl_msg m, m2;
  static uint8_t out[CL_FRAME_MAX + CL_FRAME_HDR_LEN];
  char err[160];
  memset(err, 'X', sizeof err);
  int rc = cl_msg_decode(body, len, &m, err, sizeof err);
  CHECK(memchr(err, '\0', sizeof err) != NULL);
  if (rc != CL_OK) {
    CHECK(rc == CL_EMALFORMED || rc == CL_EVERSION || rc == CL_EUNKNOWNMSG);
    CHECK(err[0] != '\0');
    return 0;
  }
  CHECK(m.version == CL_PROTOCOL_VERSION);
  CHECK(m.type >= CL_MSG_HELLO && m.type <= CL_MSG_REKEY);
  size_t n = 0;
  CHECK(cl_msg_encode(&m, out, sizeof out, &n) == CL_OK);
  CHECK(n > CL_FRAME_HDR_LEN && cl_get_be32(out) == n - CL_FRAME_HDR_LEN);
  CHECK(cl_msg_decode(out + CL_FRAME_HDR_LEN, n - CL_FRAME_HDR_LEN, &m2, err, sizeof err) == CL_OK);
  CHECK(msg_equal(&m, &m2));
  return (int)m.type;
}

/* Size of the next read, from the mode byte. */
static size_t next_chunk(uint8_t mode, uint32_t *rng, size_t left) {
  size_t c;
  switch (mode & 3) {
  case 0: c = left; break;
  case 1: c = 1; break;
  case 2: c = (size_t)(mode >> 2) + 1; break;
  default:
    *rng ^= *rng << 13;
    *rng ^= *rng >> 17;
    *rng ^= *rng << 5;
    c = 1 + *rng % 300;
    break;
  }
  return c < left ? c : left;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  data++;
  size--;

  cl_frame_asm a;
  cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
  size_t ref = 0; /* reference parser: start of the next frame */
  size_t ref_max = CL_FRAME_MAX_UNREGISTERED;
  uint32_t rng = 0x9E3779B9u ^ mode;
  size_t off = 0;
  int failed = 0;

  while (off < size && !failed) {
    size_t c = next_chunk(mode, &rng, size - off);
    const uint8_t *p = data + off;
    size_t left = c;
    while (left > 0) {
      size_t used = 0, flen = 0;
      const uint8_t *f = NULL;
      int rc = cl_frame_asm_feed(&a, p, left, &used, &f, &flen);
      CHECK(used <= left);
      if (rc < 0) {
        /* The reference must see the same bad header, within what was fed. */
        CHECK(ref + CL_FRAME_HDR_LEN <= (size_t)(p - data) + left);
        uint32_t n = cl_get_be32(data + ref);
        CHECK(a.last_len == n);
        if (n == 0)
          CHECK(rc == CL_EMALFORMED);
        else
          CHECK(rc == CL_ETOOBIG && n > ref_max);
        failed = 1;
        break;
      }
      if (rc == 1) {
        CHECK(ref + CL_FRAME_HDR_LEN <= size);
        uint32_t n = cl_get_be32(data + ref);
        CHECK(n > 0 && n <= ref_max);
        CHECK(flen == n && ref + CL_FRAME_HDR_LEN + n <= size);
        CHECK(memcmp(f, data + ref + CL_FRAME_HDR_LEN, n) == 0);
        /* The frame ends exactly where this call stopped reading. */
        CHECK((size_t)(p - data) + used == ref + CL_FRAME_HDR_LEN + n);
        ref += CL_FRAME_HDR_LEN + n;
        if (handle_frame(f, flen) == CL_MSG_REGISTER) {
          cl_frame_asm_set_max(&a, CL_FRAME_MAX);
          ref_max = CL_FRAME_MAX;
        }
      } else {
        CHECK(rc == 0 && used == left);
      }
      p += used;
      left -= used;
    }
    off += c;
  }
  if (!failed && ref < size) {
    /* Leftover bytes must be an incomplete frame with an acceptable header. */
    size_t rest = size - ref;
    if (rest >= CL_FRAME_HDR_LEN) {
      uint32_t n = cl_get_be32(data + ref);
      CHECK(n > 0 && n <= ref_max && rest < CL_FRAME_HDR_LEN + (size_t)n);
    }
  }
  CHECK(a.cap <= CL_FRAME_MAX);
  cl_frame_asm_fini(&a);
  return 0;
}
