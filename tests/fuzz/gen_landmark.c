/*
 * Writes the seed corpus of fuzz_landmark into a directory: short agent
 * sessions against the fixed world of landmark_fixture.h. Each file is the
 * two header bytes of the target (read mode, clock step) and a stream of
 * frames: a valid registration and full bursts of valid responses, a
 * replay, a response for the wrong chip, a bad signature, a late answer,
 * refused registrations, messages not allowed in a state, the handshake and
 * idle timeouts, over-limit length prefixes and garbage. Run once by hand; the files are kept in
 * tests/fuzz/corpus/landmark/. FUZZ_LANDMARK_TRACE=1 fuzz_landmark FILE
 * shows what the target makes of one.
 *
 * Usage: fuzz_gen_landmark DIR
 */
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_msg.h"
#include "landmark_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Clock steps (see lm_fx_step_ns). */
#define STEP_200MS (0x80 | 1)
#define STEP_1S 0xC0
#define STEP_9S (0xC0 | 8)
#define STEP_64S 0xFF

static const char *g_dir;
static lm_fixture g_fx;
static uint8_t g_buf[16384];
static size_t g_len;

static void begin(uint8_t mode, uint8_t step) {
  g_buf[0] = mode;
  g_buf[1] = step;
  g_len = 2;
}

static void add_raw(const void *p, size_t n) {
  if (n > sizeof g_buf - g_len) {
    fprintf(stderr, "session too long\n");
    exit(EXIT_FAILURE);
  }
  memcpy(g_buf + g_len, p, n);
  g_len += n;
}

static void add(const cl_msg *m) {
  size_t n = 0;
  if (cl_msg_encode(m, g_buf + g_len, sizeof g_buf - g_len, &n) != CL_OK) {
    fprintf(stderr, "encode failed\n");
    exit(EXIT_FAILURE);
  }
  g_len += n;
}

static void save(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(g_buf, 1, g_len, f) != g_len || fclose(f) != 0) {
    perror(path);
    exit(EXIT_FAILURE);
  }
}

/* A Register for chips ks[0..n), each with its valid proof. */
static void add_register(const int *ks, size_t n) {
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_REGISTER;
  snprintf(m.u.reg.agent, sizeof m.u.reg.agent, "agent-1");
  m.u.reg.n = n;
  for (size_t i = 0; i < n; i++) {
    memcpy(m.u.reg.chips[i].chip, cl_key_public(g_fx.chip[ks[i]]), CL_PK_LEN);
    memcpy(m.u.reg.chips[i].proof, g_fx.proof[ks[i]], CL_SIG_LEN);
  }
  add(&m);
}

static void add_register_both(void) {
  static const int both[] = {0, 1};
  add_register(both, 2);
}

/* The valid response of chip k to its challenge j. */
static void response(cl_msg *m, int k, int j) {
  memset(m, 0, sizeof *m);
  m->type = CL_MSG_RESPONSE;
  memcpy(m->u.response.chip, g_fx.ch[k][j].chip, CL_PK_LEN);
  memcpy(m->u.response.nonce, g_fx.ch[k][j].nonce, CL_NONCE_LEN);
  memcpy(m->u.response.sig, g_fx.resp[k][j], CL_SIG_LEN);
}

static void add_response(int k, int j) {
  cl_msg m;
  response(&m, k, j);
  add(&m);
}

static void add_error(cl_wire_error code, const char *text) {
  cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_ERROR;
  m.u.error.code = code;
  snprintf(m.u.error.text, sizeof m.u.error.text, "%s", text);
  add(&m);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fuzz_gen_landmark DIR\n");
    return EXIT_FAILURE;
  }
  g_dir = argv[1];
  lm_fx_init(&g_fx);
  cl_msg m;
  uint8_t hdr[CL_FRAME_HDR_LEN];

  /* Registration of both active chips, nothing more. */
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  add_register_both();
  save("register");

  /* A full burst of both chips, answered in the order the probes go out
   * with 200 ms between reads: every response is accepted and each chip
   * finishes its burst with a measurement. */
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  add_register_both();
  for (int j = 0; j < LM_FX_BURST; j++) {
    add_response(0, j);
    add_response(1, j);
  }
  save("session");

  /* The same stream cut into pseudo-random reads. */
  g_buf[0] = LM_FX_MODE_RANDOM | (9 << 2);
  save("session_random_reads");

  /* One chip; its first answer twice: the second is a replay. */
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  add_register_both();
  add_response(0, 0);
  add_response(0, 0);
  save("replay");

  /* Chip 1 answers with the nonce issued to chip 0. */
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  add_register_both();
  response(&m, 0, 0);
  memcpy(m.u.response.chip, g_fx.ch[1][0].chip, CL_PK_LEN);
  memcpy(m.u.response.sig, g_fx.resp[1][0], CL_SIG_LEN);
  add(&m);
  add_response(1, 0);
  save("wrong_chip");

  /* A corrupted signature uses the probe up; the next one goes out. */
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  add_register_both();
  response(&m, 0, 0);
  m.u.response.sig[5] ^= 0x20;
  add(&m);
  add_response(0, 0);
  add_response(1, 0);
  add_response(0, 1);
  save("bad_signature");

  /* One second between reads: the first probe expires before the answer
   * is read. */
  begin(LM_FX_MODE_FRAMES, STEP_1S);
  add_register_both();
  add_response(0, 0);
  add_response(0, 1);
  save("late");

  /* A response for a chip that is not registered here, then a good one. */
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  {
    static const int one[] = {0};
    add_register(one, 1);
  }
  add_response(1, 0);
  add_response(0, 0);
  save("not_registered");

  /* A response for a nonce never issued. */
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  add_register_both();
  add_response(0, LM_FX_CHALLENGES - 1);
  save("unknown_nonce");

  /* Nothing acceptable: a bad proof, a duplicate, an inactive and an
   * unknown chip. The landmark closes the connection. */
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  {
    static const int refused[] = {0, 0, LM_FX_INACTIVE, LM_FX_UNKNOWN};
    static cl_msg r;
    memset(&r, 0, sizeof r);
    r.type = CL_MSG_REGISTER;
    snprintf(r.u.reg.agent, sizeof r.u.reg.agent, "agent \"2\"\n");
    r.u.reg.n = 4;
    for (int i = 0; i < 4; i++) {
      memcpy(r.u.reg.chips[i].chip, cl_key_public(g_fx.chip[refused[i]]), CL_PK_LEN);
      memcpy(r.u.reg.chips[i].proof, g_fx.proof[refused[i]], CL_SIG_LEN);
    }
    r.u.reg.chips[0].proof[0] ^= 1;
    add(&r);
  }
  add_response(0, 0);
  save("register_refused");

  /* An Error is allowed before and after Register; a second Register is
   * not. */
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  add_error(CL_ERR_BAD_LANDMARK, "landmark key \x01 mismatch");
  add_register_both();
  add_error(CL_ERR_LATE, "late");
  add_response(0, 0);
  add_register_both();
  add_response(1, 0);
  save("error_and_register_twice");

  /* A Response before Register. */
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  add_response(0, 0);
  add_register_both();
  save("response_before_register");

  /* An agent sending a Hello. */
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_HELLO;
  memcpy(m.u.hello.landmark, cl_key_public(g_fx.landmark), CL_PK_LEN);
  memcpy(m.u.hello.session_nonce, g_fx.session, CL_NONCE_LEN);
  add(&m);
  save("hello_from_agent");

  /* Registered, then a frame that never completes, 9 s per byte: the
   * idle timeout closes the connection. */
  begin(LM_FX_MODE_FRAMES, STEP_9S);
  add_register_both();
  cl_frame_put_header(hdr, 100);
  add_raw(hdr, sizeof hdr);
  add_raw("\x08\x01\x2a\x62\x0a\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 16);
  add_raw("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 16);
  add_raw("\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 10);
  save("idle_timeout");

  /* Register arriving after the handshake deadline. */
  begin(LM_FX_MODE_FRAMES, STEP_64S);
  add_register_both();
  save("handshake_timeout");

  /* Length prefixes: just over the limit before Register, then after. */
  begin(LM_FX_MODE_BYTES, 0);
  cl_frame_put_header(hdr, CL_FRAME_MAX_UNREGISTERED + 1);
  add_raw(hdr, sizeof hdr);
  add_raw("\x08\x01", 2);
  save("oversized_prefix");
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  add_register_both();
  add_response(0, 0);
  cl_frame_put_header(hdr, CL_FRAME_MAX + 1);
  add_raw(hdr, sizeof hdr);
  add_raw("\x08\x01", 2);
  save("oversized_after_register");

  /* A zero length prefix, and bytes that are no Envelope. */
  begin(LM_FX_MODE_FIXED | (2 << 2), STEP_200MS);
  add_raw("\0\0\0\0\x08\x01", 6);
  save("zero_prefix");
  begin(LM_FX_MODE_FRAMES, STEP_200MS);
  add_register_both();
  add_raw("\0\0\0\x07garbage", 11);
  save("garbage_after_register");

  lm_fx_fini(&g_fx);
  return EXIT_SUCCESS;
}
