/*
 * Writes the seed corpus of fuzz_frame into a directory: one valid frame of
 * every message of protocol version 2 (with real keys, handshake
 * signatures, MACs and a transcript signature, so that the values are the
 * ones peers send), a session as the landmark reads it in one stream, and
 * edge cases (a frame of a version-1 peer, a version-2 layout naming version
 * 1, an unknown message type, zero and over-limit length prefixes, a frame
 * cut short). Each file starts with fuzz_frame's mode byte. Everything is
 * derived from fixed seeds: the output is the same on every run. Run once
 * by hand; the files are kept in tests/fuzz/corpus/frame/.
 *
 * Usage: fuzz_gen_corpus DIR
 */
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_msg.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *g_dir;

static void write_file(const char *name, uint8_t mode, const uint8_t *p, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fputc(mode, f) == EOF || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
    perror(path);
    exit(EXIT_FAILURE);
  }
}

static size_t enc(const cl_msg *m, uint32_t version, uint8_t *out, size_t cap) {
  size_t n = 0;
  if (cl_msg_encode_version(m, version, out, cap, &n) != CL_OK) {
    fprintf(stderr, "encode failed\n");
    exit(EXIT_FAILURE);
  }
  return n;
}

static void must(int rc, const char *what) {
  if (rc != CL_OK) {
    fprintf(stderr, "%s failed: %d\n", what, rc);
    exit(EXIT_FAILURE);
  }
}

/* ---- a version-1 Challenge, encoded by hand (that encoder is gone) ------- */

static size_t pb_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    uint8_t b = v & 0x7f;
    v >>= 7;
    p[n++] = b | (v ? 0x80 : 0);
  } while (v);
  return n;
}

static size_t pb_bytes(uint8_t *p, unsigned field, const uint8_t *data, size_t len) {
  size_t n = pb_varint(p, (uint64_t)field << 3 | 2);
  n += pb_varint(p + n, len);
  memcpy(p + n, data, len);
  return n + len;
}

static size_t pb_uint(uint8_t *p, unsigned field, uint64_t v) {
  size_t n = pb_varint(p, (uint64_t)field << 3);
  return n + pb_varint(p + n, v);
}

/* Envelope{version 1, challenge (field 5) {landmark_id 1, chip_id 2, nonce
 * 3, issued_unix_ns 4, seq 5, signature 6}}: chip_id where version 2 has
 * the uint64 seq, so the version-2 parser refuses the message itself and
 * only the version tells the peer what is wrong. */
static size_t v1_challenge(uint8_t *out, const uint8_t *landmark, const uint8_t *chip) {
  uint8_t body[256], nonce[CL_NONCE_LEN], sig[CL_SIG_LEN];
  memset(nonce, 0x5c, sizeof nonce);
  memset(sig, 0x6d, sizeof sig);
  size_t b = pb_bytes(body, 1, landmark, CL_PK_LEN);
  b += pb_bytes(body + b, 2, chip, CL_PK_LEN);
  b += pb_bytes(body + b, 3, nonce, CL_NONCE_LEN);
  b += pb_uint(body + b, 4, 1700000000123456789ull);
  b += pb_uint(body + b, 5, 42);
  b += pb_bytes(body + b, 6, sig, CL_SIG_LEN);
  size_t n = CL_FRAME_HDR_LEN;
  n += pb_uint(out + n, 1, 1);
  n += pb_bytes(out + n, 5, body, b);
  cl_frame_put_header(out, (uint32_t)(n - CL_FRAME_HDR_LEN));
  return n;
}

int main(int argc, char **argv) {
  if (argc != 2 || sodium_init() < 0) {
    fprintf(stderr, "usage: fuzz_gen_corpus DIR\n");
    return EXIT_FAILURE;
  }
  g_dir = argv[1];
  uint8_t seed[32];
  cl_key *lk = NULL, *ck = NULL, *ck2 = NULL;
  memset(seed, 0x01, sizeof seed);
  must(cl_key_from_seed(&lk, seed), "landmark key");
  memset(seed, 0x02, sizeof seed);
  must(cl_key_from_seed(&ck, seed), "chip key");
  memset(seed, 0x03, sizeof seed);
  must(cl_key_from_seed(&ck2, seed), "second chip key");

  /* One session: both halves of the handshake from fixed secrets. */
  uint8_t lsk[CL_EPH_SK_LEN], csk[CL_EPH_SK_LEN], key[CL_SESSION_KEY_LEN];
  memset(lsk, 0x11, sizeof lsk);
  memset(csk, 0x22, sizeof csk);
  cl_handshake hs;
  memset(&hs, 0, sizeof hs);
  hs.suite = CL_SUITE_ED25519_X25519;
  memcpy(hs.landmark, cl_key_public(lk), CL_PK_LEN);
  memcpy(hs.chip, cl_key_public(ck), CL_PK_LEN);
  if (crypto_scalarmult_base(hs.landmark_eph, lsk) != 0 ||
      crypto_scalarmult_base(hs.chip_eph, csk) != 0)
    must(CL_EINVAL, "ephemeral keys");
  memset(hs.landmark_nonce, 0x33, CL_NONCE_LEN);
  memset(hs.chip_nonce, 0x44, CL_NONCE_LEN);
  must(cl_hs_sign_landmark(&hs, lk), "landmark handshake signature");
  must(cl_hs_sign_chip(&hs, ck), "chip handshake signature");
  must(cl_session_key(&hs, CL_SIDE_CHIP, csk, key), "session key");

  static cl_msg hello, reg, res, conf, chal, resp, bend, tr, rekey, err;
  memset(&hello, 0, sizeof hello);
  hello.type = CL_MSG_HELLO;
  memcpy(hello.u.hello.landmark, cl_key_public(lk), CL_PK_LEN);
  hello.u.hello.suite = CL_SUITE_ED25519_X25519;

  /* The offer of the session's chip, and a second chip's. */
  memset(&reg, 0, sizeof reg);
  reg.type = CL_MSG_REGISTER;
  strcpy(reg.u.reg.agent, "agent-1");
  reg.u.reg.suite = CL_SUITE_ED25519_X25519;
  reg.u.reg.n = 2;
  memcpy(reg.u.reg.chips[0].chip, hs.chip, CL_PK_LEN);
  memcpy(reg.u.reg.chips[0].eph, hs.chip_eph, CL_EPH_LEN);
  memcpy(reg.u.reg.chips[0].nonce, hs.chip_nonce, CL_NONCE_LEN);
  memcpy(reg.u.reg.chips[1].chip, cl_key_public(ck2), CL_PK_LEN);
  memset(csk, 0x55, sizeof csk);
  if (crypto_scalarmult_base(reg.u.reg.chips[1].eph, csk) != 0) must(CL_EINVAL, "second eph");
  memset(reg.u.reg.chips[1].nonce, 0x66, CL_NONCE_LEN);

  /* The first accepted with the landmark's half, the second refused. */
  memset(&res, 0, sizeof res);
  res.type = CL_MSG_REGISTER_RESULT;
  res.u.reg_result.n = 2;
  cl_chip_result *r = &res.u.reg_result.r[0];
  memcpy(r->chip, hs.chip, CL_PK_LEN);
  r->accepted = 1;
  memcpy(r->eph, hs.landmark_eph, CL_EPH_LEN);
  memcpy(r->nonce, hs.landmark_nonce, CL_NONCE_LEN);
  memcpy(r->sig, hs.landmark_sig, CL_SIG_LEN);
  r = &res.u.reg_result.r[1];
  memcpy(r->chip, cl_key_public(ck2), CL_PK_LEN);
  r->reason = CL_REFUSE_NOT_ENROLLED;
  strcpy(r->detail, "not_enrolled");

  memset(&conf, 0, sizeof conf);
  conf.type = CL_MSG_CONFIRM;
  conf.u.confirm.n = 1;
  memcpy(conf.u.confirm.chips[0].chip, hs.chip, CL_PK_LEN);
  memcpy(conf.u.confirm.chips[0].sig, hs.chip_sig, CL_SIG_LEN);

  memset(&chal, 0, sizeof chal);
  chal.type = CL_MSG_CHALLENGE;
  memcpy(chal.u.challenge.chip, hs.chip, CL_PK_LEN);
  chal.u.challenge.seq = 42;
  for (int i = 0; i < CL_NONCE_LEN; i++) chal.u.challenge.nonce[i] = (uint8_t)i;

  memset(&resp, 0, sizeof resp);
  resp.type = CL_MSG_RESPONSE;
  memcpy(resp.u.response.chip, hs.chip, CL_PK_LEN);
  resp.u.response.seq = 42;
  cl_answer_mac(key, hs.suite, hs.landmark, hs.chip, 42, chal.u.challenge.nonce,
                resp.u.response.mac);

  /* A burst of one answered probe, and the chip's transcript of it. */
  memset(&bend, 0, sizeof bend);
  bend.type = CL_MSG_BURST_END;
  memcpy(bend.u.burst_end.chip, hs.chip, CL_PK_LEN);
  bend.u.burst_end.n = 1;
  bend.u.burst_end.seqs[0] = 42;
  cl_probe_entry e;
  memset(&e, 0, sizeof e);
  e.seq = 42;
  memcpy(e.nonce, chal.u.challenge.nonce, CL_NONCE_LEN);
  memcpy(e.mac, resp.u.response.mac, CL_MAC_LEN);
  memset(&tr, 0, sizeof tr);
  tr.type = CL_MSG_TRANSCRIPT;
  memcpy(tr.u.transcript.chip, hs.chip, CL_PK_LEN);
  tr.u.transcript.first_seq = 42;
  must(cl_transcript_sign(&hs, &e, 1, ck, tr.u.transcript.sig), "transcript signature");

  memset(&rekey, 0, sizeof rekey);
  rekey.type = CL_MSG_REKEY;
  memcpy(rekey.u.rekey.chip, hs.chip, CL_PK_LEN);

  memset(&err, 0, sizeof err);
  err.type = CL_MSG_ERROR;
  err.u.error.code = CL_ERR_BAD_MAC;
  strcpy(err.u.error.text, "bad_mac");

  uint8_t buf[8192], one[1024];
  size_t n;
  n = enc(&hello, CL_PROTOCOL_VERSION, buf, sizeof buf);
  write_file("hello", 0, buf, n);
  n = enc(&reg, CL_PROTOCOL_VERSION, buf, sizeof buf);
  write_file("register", 1, buf, n);
  n = enc(&res, CL_PROTOCOL_VERSION, buf, sizeof buf);
  write_file("register_result", 2 | (5 << 2), buf, n);
  n = enc(&conf, CL_PROTOCOL_VERSION, buf, sizeof buf);
  write_file("confirm", 3, buf, n);
  n = enc(&chal, CL_PROTOCOL_VERSION, buf, sizeof buf);
  write_file("challenge", 3, buf, n);
  n = enc(&resp, CL_PROTOCOL_VERSION, buf, sizeof buf);
  write_file("response", 2 | (3 << 2), buf, n);
  n = enc(&bend, CL_PROTOCOL_VERSION, buf, sizeof buf);
  write_file("burst_end", 0, buf, n);
  n = enc(&tr, CL_PROTOCOL_VERSION, buf, sizeof buf);
  write_file("transcript", 1, buf, n);
  n = enc(&rekey, CL_PROTOCOL_VERSION, buf, sizeof buf);
  write_file("rekey", 0, buf, n);
  n = enc(&err, CL_PROTOCOL_VERSION, buf, sizeof buf);
  write_file("error", 0, buf, n);

  /* A session as the landmark reads it: Register, Confirm, two Responses
   * (the second a replay), the Transcript. */
  n = enc(&reg, CL_PROTOCOL_VERSION, buf, sizeof buf);
  n += enc(&conf, CL_PROTOCOL_VERSION, buf + n, sizeof buf - n);
  n += enc(&resp, CL_PROTOCOL_VERSION, buf + n, sizeof buf - n);
  n += enc(&resp, CL_PROTOCOL_VERSION, buf + n, sizeof buf - n);
  n += enc(&tr, CL_PROTOCOL_VERSION, buf + n, sizeof buf - n);
  write_file("session", 3 | (7 << 2), buf, n);

  /* Other versions: a version-1 peer's Challenge, and this version's
   * Challenge naming version 1. Then an unknown message (version 2,
   * envelope field 12, empty). */
  n = v1_challenge(buf, cl_key_public(lk), hs.chip);
  write_file("version1_peer", 0, buf, n);
  n = enc(&chal, 1, buf, sizeof buf);
  write_file("version1", 0, buf, n);
  static const uint8_t unknown[] = {0, 0, 0, 4, 0x08, 0x02, 0x62, 0x00};
  write_file("unknown_msg", 0, unknown, sizeof unknown);

  /* Length prefixes: zero, one above the unregistered limit, huge. */
  static const uint8_t zero[] = {0, 0, 0, 0, 0x08, 0x02};
  write_file("zero_len", 0, zero, sizeof zero);
  uint8_t big[8];
  cl_frame_put_header(big, CL_FRAME_MAX_UNREGISTERED + 1);
  memcpy(big + 4, "\x08\x02\x2a\x00", 4);
  write_file("too_big", 1, big, sizeof big);
  static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x08};
  write_file("huge_len", 0, huge, sizeof huge);

  /* A RegisterResult frame cut in the middle of its body. */
  n = enc(&res, CL_PROTOCOL_VERSION, one, sizeof one);
  write_file("truncated", 3, one, n / 2);

  cl_key_destroy(&lk);
  cl_key_destroy(&ck);
  cl_key_destroy(&ck2);
  return EXIT_SUCCESS;
}
