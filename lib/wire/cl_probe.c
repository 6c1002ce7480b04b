/* Acceptance checks for responses and burst reduction. Pure functions. */
#include "cl_probe.h"
#include "cl_err.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *cl_accept_result_name(cl_accept_result r) {
  static const char *names[] = {"ok", "unknown_nonce", "wrong_chip", "replay", "late",
                                "bad_signature"};
  if ((unsigned)r < CL_ACCEPT__COUNT) return names[r];
  return "unknown";
}

cl_accept_result cl_probe_check(const cl_probe *probe, const uint8_t resp_chip[CL_PK_LEN],
                                const uint8_t resp_nonce[CL_NONCE_LEN], uint64_t recv_ns,
                                uint64_t *rtt_ns) {
  /* Test 1: the nonce is one this landmark issued (and still remembers). */
  int issued = probe != NULL && probe->state != CL_PROBE_FREE &&
               memcmp(probe->ch.nonce, resp_nonce, CL_NONCE_LEN) == 0;
  if (!issued) return CL_ACCEPT_UNKNOWN_NONCE;
  /* Test 2: it was issued to the chip that claims to answer. */
  if (memcmp(probe->ch.chip, resp_chip, CL_PK_LEN) != 0) return CL_ACCEPT_WRONG_CHIP;
  /* Test 3: it has not been answered before (nor is an answer being checked). */
  if (probe->state == CL_PROBE_ANSWERED || probe->state == CL_PROBE_VERIFYING)
    return CL_ACCEPT_REPLAY;
  /* Test 4: it arrived before the deadline (an expired probe is late too). */
  if (probe->state == CL_PROBE_EXPIRED || recv_ns > probe->deadline_ns ||
      recv_ns < probe->sent_ns)
    return CL_ACCEPT_LATE;
  *rtt_ns = recv_ns - probe->sent_ns;
  return CL_ACCEPT_OK;
}

cl_accept_result cl_probe_accept(const cl_probe *probe, const uint8_t resp_chip[CL_PK_LEN],
                                 const uint8_t resp_nonce[CL_NONCE_LEN],
                                 const uint8_t sig[CL_SIG_LEN], uint64_t recv_ns,
                                 uint64_t *rtt_ns) {
  uint64_t rtt = 0;
  cl_accept_result r = cl_probe_check(probe, resp_chip, resp_nonce, recv_ns, &rtt);
  if (r != CL_ACCEPT_OK) return r;
  /* Test 5: the chip's signature over the response layout verifies under the
   * enrolled key (the challenge carries the chip key the landmark chose). */
  if (cl_response_verify(&probe->ch, sig) != CL_OK) return CL_ACCEPT_BAD_SIGNATURE;
  *rtt_ns = rtt;
  return CL_ACCEPT_OK;
}

void cl_burst_reset(cl_burst *b) { memset(b, 0, sizeof *b); }

void cl_burst_add(cl_burst *b, const cl_challenge *ch, const uint8_t sig[CL_SIG_LEN],
                  uint64_t rtt_ns) {
  if (b->accepted == 0 || rtt_ns < b->min_rtt_ns) {
    b->min_rtt_ns = rtt_ns;
    b->min_ch = *ch;
    memcpy(b->min_sig, sig, CL_SIG_LEN);
  }
  b->accepted++;
}

void cl_burst_to_measurement(const cl_burst *b, uint64_t measured_unix_ns, cl_measurement *m) {
  memset(m, 0, sizeof *m);
  m->ch = b->min_ch;
  memcpy(m->chip_sig, b->min_sig, CL_SIG_LEN);
  m->rtt_ns = b->min_rtt_ns;
  m->probe_count = b->accepted;
  m->measured_unix_ns = measured_unix_ns;
}

uint64_t cl_bound_m(uint64_t rtt_ns, double speed_m_per_s) {
  /* Long double keeps the product exact enough for rtt up to hours. */
  long double r = (long double)speed_m_per_s * (long double)rtt_ns / 2e9L;
  return (uint64_t)ceill(r);
}

int cl_speed_parse(const char *text, double *out) {
  if (!text) return CL_EINVAL;
  if (strcasecmp(text, "c") == 0) {
    *out = CL_SPEED_C;
    return CL_OK;
  }
  if (strcasecmp(text, "fibre") == 0 || strcasecmp(text, "fiber") == 0) {
    *out = CL_SPEED_FIBRE;
    return CL_OK;
  }
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || end == text || *end != '\0' || !(v > 0) || v > CL_SPEED_C) return CL_EINVAL;
  *out = v;
  return CL_OK;
}
