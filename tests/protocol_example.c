/*
 * Prints the worked example of docs/PROTOCOL.md: keys derived from fixed
 * seeds, one challenge with its signed layouts and signatures, the register
 * proof, a measurement record, and the Challenge and Response frames exactly
 * as they go on the wire. tests/test_layout.c asserts the same bytes, so the
 * document, this program and the library cannot drift apart silently.
 *
 * Usage: protocol_example   (no arguments; output is stable across runs)
 */
#include "cl_err.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_msg.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The inputs of the example; test_layout.c uses the same values. */
#define EX_ISSUED_UNIX_NS 1700000000123456789ull
#define EX_SEQ 42ull
#define EX_RTT_NS 1234567ull
#define EX_PROBE_COUNT 5u
#define EX_MEASURED_UNIX_NS 1700000060000000000ull

/* Prints `label (n bytes):` and the bytes as hex, 32 bytes per line. */
static void dump(const char *label, const uint8_t *p, size_t n) {
  printf("%s (%zu bytes):\n", label, n);
  for (size_t i = 0; i < n; i += 32) {
    size_t k = n - i < 32 ? n - i : 32;
    char line[65];
    cl_hex_encode(line, p + i, k);
    printf("  %s\n", line);
  }
}

int main(void) {
  if (sodium_init() < 0) {
    fprintf(stderr, "sodium_init failed\n");
    return EXIT_FAILURE;
  }
  uint8_t lseed[32], cseed[32], session[CL_NONCE_LEN];
  memset(lseed, 0x01, sizeof lseed);
  memset(cseed, 0x02, sizeof cseed);
  for (int i = 0; i < CL_NONCE_LEN; i++) session[i] = (uint8_t)(0x40 + i);
  cl_key *lk = NULL, *ck = NULL;
  if (cl_key_from_seed(&lk, lseed) != CL_OK || cl_key_from_seed(&ck, cseed) != CL_OK) {
    fprintf(stderr, "cannot derive keys\n");
    return EXIT_FAILURE;
  }

  dump("landmark seed", lseed, 32);
  dump("landmark public key", cl_key_public(lk), CL_PK_LEN);
  dump("chip seed", cseed, 32);
  dump("chip public key", cl_key_public(ck), CL_PK_LEN);

  cl_challenge ch;
  memset(&ch, 0, sizeof ch);
  memcpy(ch.landmark, cl_key_public(lk), CL_PK_LEN);
  memcpy(ch.chip, cl_key_public(ck), CL_PK_LEN);
  for (int i = 0; i < CL_NONCE_LEN; i++) ch.nonce[i] = (uint8_t)i;
  ch.issued_unix_ns = EX_ISSUED_UNIX_NS;
  ch.seq = EX_SEQ;
  cl_challenge_sign(&ch, lk);
  dump("challenge nonce", ch.nonce, CL_NONCE_LEN);
  printf("challenge issued_unix_ns: %llu\n", (unsigned long long)ch.issued_unix_ns);
  printf("challenge seq: %llu\n", (unsigned long long)ch.seq);

  uint8_t chl[CL_CHALLENGE_LAYOUT_LEN];
  dump("challenge layout", chl, cl_layout_challenge(chl, &ch));
  dump("challenge signature (landmark key)", ch.sig, CL_SIG_LEN);

  uint8_t rl[CL_RESPONSE_LAYOUT_LEN], rsig[CL_SIG_LEN];
  dump("response layout", rl, cl_layout_response(rl, &ch));
  cl_response_sign(&ch, ck, rsig);
  dump("response signature (chip key)", rsig, CL_SIG_LEN);

  uint8_t gl[CL_REGISTER_LAYOUT_LEN], gsig[CL_SIG_LEN];
  dump("session nonce", session, CL_NONCE_LEN);
  dump("register layout", gl, cl_layout_register(gl, ch.landmark, session, ch.chip));
  cl_register_sign(ch.landmark, session, ck, gsig);
  dump("register proof (chip key)", gsig, CL_SIG_LEN);

  cl_measurement m;
  memset(&m, 0, sizeof m);
  m.ch = ch;
  memcpy(m.chip_sig, rsig, CL_SIG_LEN);
  m.rtt_ns = EX_RTT_NS;
  m.probe_count = EX_PROBE_COUNT;
  m.measured_unix_ns = EX_MEASURED_UNIX_NS;
  cl_measurement_sign(&m, lk);
  uint8_t ml[CL_MEASUREMENT_LAYOUT_LEN];
  dump("measurement layout", ml, cl_layout_measurement(ml, &m));
  dump("measurement signature (landmark key)", m.sig, CL_SIG_LEN);

  static cl_msg msg; /* large union: keep it off the stack */
  uint8_t frame[512];
  size_t flen = 0;
  memset(&msg, 0, sizeof msg);
  msg.type = CL_MSG_CHALLENGE;
  msg.u.challenge = ch;
  if (cl_msg_encode(&msg, frame, sizeof frame, &flen) != CL_OK) return EXIT_FAILURE;
  dump("Challenge frame", frame, flen);

  memset(&msg, 0, sizeof msg);
  msg.type = CL_MSG_RESPONSE;
  memcpy(msg.u.response.chip, ch.chip, CL_PK_LEN);
  memcpy(msg.u.response.nonce, ch.nonce, CL_NONCE_LEN);
  memcpy(msg.u.response.sig, rsig, CL_SIG_LEN);
  if (cl_msg_encode(&msg, frame, sizeof frame, &flen) != CL_OK) return EXIT_FAILURE;
  dump("Response frame", frame, flen);

  memset(&msg, 0, sizeof msg);
  msg.type = CL_MSG_HELLO;
  memcpy(msg.u.hello.landmark, ch.landmark, CL_PK_LEN);
  memcpy(msg.u.hello.session_nonce, session, CL_NONCE_LEN);
  if (cl_msg_encode(&msg, frame, sizeof frame, &flen) != CL_OK) return EXIT_FAILURE;
  dump("Hello frame", frame, flen);

  memset(&msg, 0, sizeof msg);
  msg.type = CL_MSG_REGISTER;
  snprintf(msg.u.reg.agent, sizeof msg.u.reg.agent, "agent-1");
  msg.u.reg.n = 1;
  memcpy(msg.u.reg.chips[0].chip, ch.chip, CL_PK_LEN);
  memcpy(msg.u.reg.chips[0].proof, gsig, CL_SIG_LEN);
  if (cl_msg_encode(&msg, frame, sizeof frame, &flen) != CL_OK) return EXIT_FAILURE;
  dump("Register frame", frame, flen);

  cl_key_destroy(&lk);
  cl_key_destroy(&ck);
  return EXIT_SUCCESS;
}
