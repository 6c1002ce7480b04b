/*
 * Prints the worked example of docs/PROTOCOL.md §9 (protocol version 2):
 * identity keys and ephemeral keys from fixed secrets, the handshake with
 * both signed layouts, the session id and the session key, one answer MAC,
 * a burst of three probes of which two were accepted, the chip's
 * transcript, the landmark's measurement record and its storage form, and
 * every frame exactly as it goes on the wire. tests/test_layout.c asserts
 * the same bytes and that §9 shows exactly them, so the document, this
 * program and the library cannot drift apart silently.
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
#define EX_AGENT "agent-1"
#define EX_SEQ_A 42ull /* accepted, RTT EX_RTT_A */
#define EX_SEQ_B 43ull /* sent, expired: in no transcript */
#define EX_SEQ_C 44ull /* accepted, RTT EX_RTT_C, the fastest */
#define EX_RTT_A 1300000ull
#define EX_RTT_C 1234567ull
#define EX_PROBES_SENT 3u
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

/* Fills n bytes with first, first + 1, ... */
static void ramp(uint8_t *p, size_t n, uint8_t first) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(first + i);
}

static cl_msg g_msg; /* large union: kept off the stack */

static int frame(const char *label) {
  uint8_t buf[1024];
  size_t n = 0;
  if (cl_msg_encode(&g_msg, buf, sizeof buf, &n) != CL_OK) {
    fprintf(stderr, "cannot encode the %s\n", label);
    return -1;
  }
  dump(label, buf, n);
  memset(&g_msg, 0, sizeof g_msg);
  return 0;
}

int main(void) {
  if (sodium_init() < 0) {
    fprintf(stderr, "sodium_init failed\n");
    return EXIT_FAILURE;
  }
  uint8_t lseed[32], cseed[32], lsk[CL_EPH_SK_LEN], csk[CL_EPH_SK_LEN];
  memset(lseed, 0x01, sizeof lseed);
  memset(cseed, 0x02, sizeof cseed);
  memset(lsk, 0x03, sizeof lsk);
  memset(csk, 0x04, sizeof csk);
  cl_key *lk = NULL, *ck = NULL;
  if (cl_key_from_seed(&lk, lseed) != CL_OK || cl_key_from_seed(&ck, cseed) != CL_OK) {
    fprintf(stderr, "cannot derive keys\n");
    return EXIT_FAILURE;
  }
  dump("landmark seed", lseed, 32);
  dump("landmark public key", cl_key_public(lk), CL_PK_LEN);
  dump("chip seed", cseed, 32);
  dump("chip public key", cl_key_public(ck), CL_PK_LEN);

  cl_handshake hs;
  memset(&hs, 0, sizeof hs);
  hs.suite = CL_SUITE_ED25519_X25519;
  memcpy(hs.landmark, cl_key_public(lk), CL_PK_LEN);
  memcpy(hs.chip, cl_key_public(ck), CL_PK_LEN);
  crypto_scalarmult_base(hs.landmark_eph, lsk);
  crypto_scalarmult_base(hs.chip_eph, csk);
  ramp(hs.landmark_nonce, CL_NONCE_LEN, 0xa0);
  ramp(hs.chip_nonce, CL_NONCE_LEN, 0xc0);
  dump("landmark ephemeral secret", lsk, sizeof lsk);
  dump("landmark ephemeral public", hs.landmark_eph, CL_EPH_LEN);
  dump("chip ephemeral secret", csk, sizeof csk);
  dump("chip ephemeral public", hs.chip_eph, CL_EPH_LEN);
  dump("landmark nonce", hs.landmark_nonce, CL_NONCE_LEN);
  dump("chip nonce", hs.chip_nonce, CL_NONCE_LEN);

  g_msg.type = CL_MSG_HELLO;
  memcpy(g_msg.u.hello.landmark, hs.landmark, CL_PK_LEN);
  g_msg.u.hello.suite = hs.suite;
  if (frame("Hello frame")) return EXIT_FAILURE;

  g_msg.type = CL_MSG_REGISTER;
  snprintf(g_msg.u.reg.agent, sizeof g_msg.u.reg.agent, "%s", EX_AGENT);
  g_msg.u.reg.suite = hs.suite;
  g_msg.u.reg.n = 1;
  memcpy(g_msg.u.reg.chips[0].chip, hs.chip, CL_PK_LEN);
  memcpy(g_msg.u.reg.chips[0].eph, hs.chip_eph, CL_EPH_LEN);
  memcpy(g_msg.u.reg.chips[0].nonce, hs.chip_nonce, CL_NONCE_LEN);
  if (frame("Register frame")) return EXIT_FAILURE;

  uint8_t hl[CL_HS_LANDMARK_LAYOUT_LEN], hc[CL_HS_CHIP_LAYOUT_LEN];
  dump("landmark handshake layout", hl, cl_layout_hs_landmark(hl, &hs));
  if (cl_hs_sign_landmark(&hs, lk) != CL_OK) return EXIT_FAILURE;
  dump("landmark handshake signature (landmark key)", hs.landmark_sig, CL_SIG_LEN);

  g_msg.type = CL_MSG_REGISTER_RESULT;
  g_msg.u.reg_result.n = 1;
  cl_chip_result *r = &g_msg.u.reg_result.r[0];
  memcpy(r->chip, hs.chip, CL_PK_LEN);
  r->accepted = 1;
  memcpy(r->eph, hs.landmark_eph, CL_EPH_LEN);
  memcpy(r->nonce, hs.landmark_nonce, CL_NONCE_LEN);
  memcpy(r->sig, hs.landmark_sig, CL_SIG_LEN);
  if (frame("RegisterResult frame")) return EXIT_FAILURE;

  dump("chip handshake layout", hc, cl_layout_hs_chip(hc, &hs));
  if (cl_hs_sign_chip(&hs, ck) != CL_OK) return EXIT_FAILURE;
  dump("chip handshake signature (chip key)", hs.chip_sig, CL_SIG_LEN);

  g_msg.type = CL_MSG_CONFIRM;
  g_msg.u.confirm.n = 1;
  memcpy(g_msg.u.confirm.chips[0].chip, hs.chip, CL_PK_LEN);
  memcpy(g_msg.u.confirm.chips[0].sig, hs.chip_sig, CL_SIG_LEN);
  if (frame("Confirm frame")) return EXIT_FAILURE;

  uint8_t sid[CL_SESSION_ID_LEN], kl[CL_SESSION_KEY_LEN], kc[CL_SESSION_KEY_LEN];
  if (cl_session_id(&hs, sid) != CL_OK) return EXIT_FAILURE;
  dump("session id", sid, sizeof sid);
  if (cl_session_key(&hs, CL_SIDE_LANDMARK, lsk, kl) != CL_OK ||
      cl_session_key(&hs, CL_SIDE_CHIP, csk, kc) != CL_OK || memcmp(kl, kc, sizeof kl) != 0) {
    fprintf(stderr, "the two sides derive different session keys\n");
    return EXIT_FAILURE;
  }
  dump("session key", kl, sizeof kl);

  cl_probe_entry e[2];
  memset(e, 0, sizeof e);
  e[0].seq = EX_SEQ_A;
  ramp(e[0].nonce, CL_NONCE_LEN, 0x00);
  e[0].rtt_ns = EX_RTT_A;
  e[1].seq = EX_SEQ_C;
  ramp(e[1].nonce, CL_NONCE_LEN, 0x40);
  e[1].rtt_ns = EX_RTT_C;
  uint8_t nonce_b[CL_NONCE_LEN];
  ramp(nonce_b, sizeof nonce_b, 0x20);
  dump("probe nonce, seq 42", e[0].nonce, CL_NONCE_LEN);
  dump("probe nonce, seq 43", nonce_b, CL_NONCE_LEN);
  dump("probe nonce, seq 44", e[1].nonce, CL_NONCE_LEN);

  uint8_t al[CL_ANSWER_LAYOUT_LEN];
  dump("answer layout, seq 42", al,
       cl_layout_answer(al, hs.suite, hs.landmark, hs.chip, e[0].seq, e[0].nonce));
  for (int i = 0; i < 2; i++)
    cl_answer_mac(kc, hs.suite, hs.landmark, hs.chip, e[i].seq, e[i].nonce, e[i].mac);
  dump("answer MAC, seq 42 (session key)", e[0].mac, CL_MAC_LEN);
  dump("answer MAC, seq 44 (session key)", e[1].mac, CL_MAC_LEN);

  g_msg.type = CL_MSG_CHALLENGE;
  memcpy(g_msg.u.challenge.chip, hs.chip, CL_PK_LEN);
  g_msg.u.challenge.seq = e[0].seq;
  memcpy(g_msg.u.challenge.nonce, e[0].nonce, CL_NONCE_LEN);
  if (frame("Challenge frame, seq 42")) return EXIT_FAILURE;

  g_msg.type = CL_MSG_RESPONSE;
  memcpy(g_msg.u.response.chip, hs.chip, CL_PK_LEN);
  g_msg.u.response.seq = e[0].seq;
  memcpy(g_msg.u.response.mac, e[0].mac, CL_MAC_LEN);
  if (frame("Response frame, seq 42")) return EXIT_FAILURE;

  g_msg.type = CL_MSG_BURST_END;
  memcpy(g_msg.u.burst_end.chip, hs.chip, CL_PK_LEN);
  g_msg.u.burst_end.n = 2;
  g_msg.u.burst_end.seqs[0] = e[0].seq;
  g_msg.u.burst_end.seqs[1] = e[1].seq;
  if (frame("BurstEnd frame")) return EXIT_FAILURE;

  uint8_t tl[CL_TRANSCRIPT_LAYOUT_MAX], tsig[CL_SIG_LEN];
  dump("transcript layout", tl, cl_layout_transcript(tl, &hs, e, 2));
  if (cl_transcript_sign(&hs, e, 2, ck, tsig) != CL_OK) return EXIT_FAILURE;
  dump("transcript signature (chip key)", tsig, CL_SIG_LEN);

  g_msg.type = CL_MSG_TRANSCRIPT;
  memcpy(g_msg.u.transcript.chip, hs.chip, CL_PK_LEN);
  g_msg.u.transcript.first_seq = e[0].seq;
  memcpy(g_msg.u.transcript.sig, tsig, CL_SIG_LEN);
  if (frame("Transcript frame")) return EXIT_FAILURE;

  static cl_measurement m;
  memset(&m, 0, sizeof m);
  m.hs = hs;
  m.count = 2;
  memcpy(m.probes, e, sizeof e);
  memcpy(m.transcript_sig, tsig, CL_SIG_LEN);
  m.rtt_ns = EX_RTT_C;
  m.probes_sent = EX_PROBES_SENT;
  m.measured_unix_ns = EX_MEASURED_UNIX_NS;
  if (cl_measurement_sign(&m, lk) != CL_OK || cl_measurement_verify(&m) != CL_OK) {
    fprintf(stderr, "the measurement record does not verify\n");
    return EXIT_FAILURE;
  }
  uint8_t ml[CL_MEASUREMENT_LAYOUT_MAX];
  dump("measurement layout", ml, cl_layout_measurement(ml, &m));
  dump("measurement signature (landmark key)", m.sig, CL_SIG_LEN);

  uint8_t hb[CL_HS_BLOB_LEN], pbl[CL_PROBES_BLOB_MAX];
  cl_hs_blob_put(hb, &hs);
  dump("handshake blob", hb, sizeof hb);
  dump("probes blob", pbl, cl_probes_blob_put(pbl, e, 2));

  g_msg.type = CL_MSG_REKEY;
  memcpy(g_msg.u.rekey.chip, hs.chip, CL_PK_LEN);
  if (frame("Rekey frame")) return EXIT_FAILURE;

  uint8_t eb[256];
  size_t en = 0;
  if (cl_msg_encode_error(CL_ERR_VERSION, "protocol version 1, this side speaks 2", eb, sizeof eb,
                          &en) != CL_OK)
    return EXIT_FAILURE;
  dump("Error frame to a version 1 peer", eb, en);

  sodium_memzero(kl, sizeof kl);
  sodium_memzero(kc, sizeof kc);
  cl_key_destroy(&lk);
  cl_key_destroy(&ck);
  return EXIT_SUCCESS;
}
