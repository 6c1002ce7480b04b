/* Acceptance checks for responses and burst reduction. Pure functions. */
#include "cl_probe.h"
#include "cl_err.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *cl_accept_result_name(cl_accept_result r) {
  static const char *names[] = {"ok", "unknown_probe", "replay", "late", "bad_mac"};
  _Static_assert(sizeof names / sizeof names[0] == CL_ACCEPT__COUNT, "a name per result");
  if ((unsigned)r < CL_ACCEPT__COUNT) return names[r];
  return "unknown";
}

cl_accept_result cl_probe_check(const cl_probe *probe, uint64_t recv_ns, uint64_t *rtt_ns) {
  /* Check 1: the probe is one this landmark issued to this chip and still remembers. */
  if (probe == NULL || probe->state == CL_PROBE_FREE) return CL_ACCEPT_UNKNOWN_PROBE;
  /* Check 2: it has not been answered before. */
  if (probe->state == CL_PROBE_ANSWERED) return CL_ACCEPT_REPLAY;
  /* Check 3: it arrived before the deadline (an expired probe is late too). */
  if (probe->state == CL_PROBE_EXPIRED || recv_ns > probe->deadline_ns ||
      recv_ns < probe->sent_ns)
    return CL_ACCEPT_LATE;
  *rtt_ns = recv_ns - probe->sent_ns;
  return CL_ACCEPT_OK;
}

cl_accept_result cl_probe_accept(const cl_probe *probe, const uint8_t key[CL_SESSION_KEY_LEN],
                                 uint32_t suite, const uint8_t landmark[CL_PK_LEN],
                                 const uint8_t chip[CL_PK_LEN], const uint8_t mac[CL_MAC_LEN],
                                 uint64_t recv_ns, uint64_t *rtt_ns) {
  uint64_t rtt = 0;
  cl_accept_result r = cl_probe_check(probe, recv_ns, &rtt);
  if (r != CL_ACCEPT_OK) return r;
  /* Check 4: the MAC over the answer layout verifies under the session key. */
  if (cl_answer_check(key, suite, landmark, chip, probe->seq, probe->nonce, mac) != CL_OK)
    return CL_ACCEPT_BAD_MAC;
  *rtt_ns = rtt;
  return CL_ACCEPT_OK;
}

void cl_burst_reset(cl_burst *b) { memset(b, 0, sizeof *b); }

void cl_burst_add(cl_burst *b, uint64_t seq, const uint8_t nonce[CL_NONCE_LEN],
                  const uint8_t mac[CL_MAC_LEN], uint64_t rtt_ns) {
  if (b->accepted >= CL_MAX_BURST) return;
  cl_probe_entry *e = &b->e[b->accepted++];
  e->seq = seq;
  memcpy(e->nonce, nonce, CL_NONCE_LEN);
  memcpy(e->mac, mac, CL_MAC_LEN);
  e->rtt_ns = rtt_ns;
}

uint64_t cl_burst_min_rtt(const cl_burst *b) {
  uint64_t min = UINT64_MAX;
  for (uint32_t i = 0; i < b->accepted; i++)
    if (b->e[i].rtt_ns < min) min = b->e[i].rtt_ns;
  return min;
}

void cl_burst_to_measurement(const cl_burst *b, const cl_handshake *hs,
                             const uint8_t transcript_sig[CL_SIG_LEN], uint64_t measured_unix_ns,
                             cl_measurement *m) {
  memset(m, 0, sizeof *m);
  m->hs = *hs;
  m->count = b->accepted;
  memcpy(m->probes, b->e, sizeof b->e[0] * b->accepted);
  memcpy(m->transcript_sig, transcript_sig, CL_SIG_LEN);
  m->rtt_ns = cl_burst_min_rtt(b);
  m->probes_sent = b->sent > b->accepted ? b->sent : b->accepted;
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
