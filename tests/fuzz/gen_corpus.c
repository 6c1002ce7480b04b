/*
 * Writes the seed corpus of fuzz_frame into a directory: one valid frame of
 * every message type, a whole session in one stream, and edge cases (zero
 * and over-limit length prefixes, a wrong version, an unknown message type,
 * a frame cut short). Each file starts with fuzz_frame's mode byte. Run once
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

int main(int argc, char **argv) {
  if (argc != 2 || sodium_init() < 0) {
    fprintf(stderr, "usage: fuzz_gen_corpus DIR\n");
    return EXIT_FAILURE;
  }
  g_dir = argv[1];
  uint8_t seed[32];
  cl_key *lk = NULL, *ck = NULL;
  memset(seed, 0x01, sizeof seed);
  cl_key_from_seed(&lk, seed);
  memset(seed, 0x02, sizeof seed);
  cl_key_from_seed(&ck, seed);
  uint8_t session[CL_NONCE_LEN];
  memset(session, 0x40, sizeof session);

  static cl_msg hello, reg, res, chal, resp, err;
  memset(&hello, 0, sizeof hello);
  hello.type = CL_MSG_HELLO;
  memcpy(hello.u.hello.landmark, cl_key_public(lk), CL_PK_LEN);
  memcpy(hello.u.hello.session_nonce, session, CL_NONCE_LEN);

  memset(&reg, 0, sizeof reg);
  reg.type = CL_MSG_REGISTER;
  strcpy(reg.u.reg.agent, "agent-1");
  reg.u.reg.n = 2;
  for (int i = 0; i < 2; i++) {
    memcpy(reg.u.reg.chips[i].chip, cl_key_public(ck), CL_PK_LEN);
    cl_register_sign(cl_key_public(lk), session, ck, reg.u.reg.chips[i].proof);
  }

  memset(&res, 0, sizeof res);
  res.type = CL_MSG_REGISTER_RESULT;
  res.u.reg_result.n = 2;
  memcpy(res.u.reg_result.r[0].chip, cl_key_public(ck), CL_PK_LEN);
  res.u.reg_result.r[0].accepted = 1;
  memcpy(res.u.reg_result.r[1].chip, cl_key_public(ck), CL_PK_LEN);
  res.u.reg_result.r[1].reason = CL_REFUSE_DUPLICATE;
  strcpy(res.u.reg_result.r[1].detail, "chip listed twice");

  memset(&chal, 0, sizeof chal);
  chal.type = CL_MSG_CHALLENGE;
  cl_challenge *ch = &chal.u.challenge;
  memcpy(ch->landmark, cl_key_public(lk), CL_PK_LEN);
  memcpy(ch->chip, cl_key_public(ck), CL_PK_LEN);
  for (int i = 0; i < CL_NONCE_LEN; i++) ch->nonce[i] = (uint8_t)i;
  ch->issued_unix_ns = 1700000000123456789ull;
  ch->seq = 42;
  cl_challenge_sign(ch, lk);

  memset(&resp, 0, sizeof resp);
  resp.type = CL_MSG_RESPONSE;
  memcpy(resp.u.response.chip, ch->chip, CL_PK_LEN);
  memcpy(resp.u.response.nonce, ch->nonce, CL_NONCE_LEN);
  cl_response_sign(ch, ck, resp.u.response.sig);

  memset(&err, 0, sizeof err);
  err.type = CL_MSG_ERROR;
  err.u.error.code = CL_ERR_REPLAY;
  strcpy(err.u.error.text, "nonce already answered");

  uint8_t buf[4096], one[1024];
  size_t n;
  n = enc(&hello, 1, buf, sizeof buf);
  write_file("hello", 0, buf, n);
  n = enc(&reg, 1, buf, sizeof buf);
  write_file("register", 1, buf, n);
  n = enc(&res, 1, buf, sizeof buf);
  write_file("register_result", 2 | (5 << 2), buf, n);
  n = enc(&chal, 1, buf, sizeof buf);
  write_file("challenge", 3, buf, n);
  n = enc(&resp, 1, buf, sizeof buf);
  write_file("response", 2 | (3 << 2), buf, n);
  n = enc(&err, 1, buf, sizeof buf);
  write_file("error", 0, buf, n);

  /* A session as the landmark reads it: Register, then two Responses. */
  n = enc(&reg, 1, buf, sizeof buf);
  n += enc(&resp, 1, buf + n, sizeof buf - n);
  n += enc(&resp, 1, buf + n, sizeof buf - n);
  write_file("session", 3 | (7 << 2), buf, n);

  /* Wrong version, then an unknown message (version only + field 8). */
  n = enc(&chal, 2, buf, sizeof buf);
  write_file("version2", 0, buf, n);
  static const uint8_t unknown[] = {0, 0, 0, 6, 0x08, 0x01, 0x42, 0x02, 0x0a, 0x00};
  write_file("unknown_msg", 0, unknown, sizeof unknown);

  /* Length prefixes: zero, one above the unregistered limit, huge. */
  static const uint8_t zero[] = {0, 0, 0, 0, 0x08, 0x01};
  write_file("zero_len", 0, zero, sizeof zero);
  uint8_t big[8];
  cl_frame_put_header(big, CL_FRAME_MAX_UNREGISTERED + 1);
  memcpy(big + 4, "\x08\x01\x2a\x00", 4);
  write_file("too_big", 1, big, sizeof big);
  static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x08};
  write_file("huge_len", 0, huge, sizeof huge);

  /* A Challenge frame cut in the middle of its body. */
  n = enc(&chal, 1, one, sizeof one);
  write_file("truncated", 3, one, n / 2);

  cl_key_destroy(&lk);
  cl_key_destroy(&ck);
  return EXIT_SUCCESS;
}
