/*
 * chipagent's Prometheus exposition. See agent_metrics.h; docs/METRICS.md
 * lists every series.
 */
#include "agent_metrics.h"
#include "cl_err.h"
#include "cl_msg.h"

#include <stdio.h>

/* One family with a series per landmark: value(i) of landmark i. */
static void per_landmark(cl_mtext *t, const agent *a, const char *name, const char *type,
                         const char *help, uint64_t (*value)(const agent_landmark_stats *)) {
  cl_mtext_family(t, name, type, help);
  for (size_t i = 0; i < agent_landmark_count(a); i++) {
    agent_landmark_stats ls;
    agent_get_landmark_stats(a, i, &ls);
    char q[CL_CONFIG_NAME_MAX * 2 + 1], lab[CL_CONFIG_NAME_MAX * 2 + 16];
    snprintf(lab, sizeof lab, "landmark=\"%s\"", cl_mtext_label_value(q, sizeof q, ls.name));
    cl_mtext_u64(t, name, lab, value(&ls));
  }
}

static uint64_t v_registered(const agent_landmark_stats *s) { return (uint64_t)s->registered; }
static uint64_t v_sessions(const agent_landmark_stats *s) { return s->sessions; }
static uint64_t v_answered(const agent_landmark_stats *s) { return s->answered; }
static uint64_t v_reconnects(const agent_landmark_stats *s) { return s->reconnects; }
static uint64_t v_handshakes(const agent_landmark_stats *s) { return s->handshakes; }
static uint64_t v_rekeys(const agent_landmark_stats *s) { return s->rekeys; }
static uint64_t v_transcripts(const agent_landmark_stats *s) { return s->transcripts; }

static void counter1(cl_mtext *t, const char *name, const char *help, uint64_t v) {
  cl_mtext_family(t, name, "counter", help);
  cl_mtext_u64(t, name, NULL, v);
}

int agent_metrics_render(const agent *a, const char *name, cl_mtext *t) {
  agent_stats st;
  agent_get_stats(a, &st);
  char q[CL_CONFIG_NAME_MAX * 2 + 1], lab[CL_CONFIG_NAME_MAX * 2 + 64];
  snprintf(lab, sizeof lab, "agent=\"%s\",version=\"%s\"", cl_mtext_label_value(q, sizeof q, name),
           CHIPLOC_VERSION);
  cl_mtext_family(t, "chiploc_agent_info", "gauge",
                  "Constant 1, labelled with the agent name and version.");
  cl_mtext_u64(t, "chiploc_agent_info", lab, 1);

  per_landmark(t, a, "chiploc_agent_landmark_connected", "gauge",
               "1 while a connection to the landmark is up and at least one chip's session was "
               "agreed on it, else 0.",
               v_registered);
  per_landmark(t, a, "chiploc_agent_sessions", "gauge",
               "Chips with an agreed session on the landmark's connection now.", v_sessions);
  per_landmark(t, a, "chiploc_agent_challenges_answered_total", "counter",
               "Challenges answered (Response written).", v_answered);
  per_landmark(t, a, "chiploc_agent_reconnects_total", "counter",
               "Reconnections scheduled after a close or a failed attempt.", v_reconnects);
  per_landmark(t, a, "chiploc_agent_handshakes_total", "counter",
               "Chip sessions agreed: the landmark's handshake signature checked under the "
               "pinned key (first sessions and rekeys).",
               v_handshakes);
  per_landmark(t, a, "chiploc_agent_rekeys_total", "counter",
               "Fresh offers sent on the landmark's Rekey.", v_rekeys);
  per_landmark(t, a, "chiploc_agent_transcripts_signed_total", "counter",
               "Burst transcripts signed by a chip and sent.", v_transcripts);

  cl_mtext_family(t, "chiploc_agent_answer_seconds", "histogram",
                  "Time from the read of a Challenge to the write of its Response.");
  cl_mtext_histogram(t, "chiploc_agent_answer_seconds", NULL, &st.answer_seconds);
  {
    const char *v[] = {"unknown_chip", "no_session"};
    uint64_t n[] = {st.unknown_chip, st.no_session};
    cl_mtext_family(t, "chiploc_agent_challenges_unanswered_total", "counter",
                    "Challenges not answered: for a chip this agent does not hold, or for one "
                    "without a session (refused, or between a Rekey's offer and its result).");
    for (size_t i = 0; i < 2; i++) {
      snprintf(lab, sizeof lab, "reason=\"%s\"", v[i]);
      cl_mtext_u64(t, "chiploc_agent_challenges_unanswered_total", lab, n[i]);
    }
  }
  counter1(t, "chiploc_agent_transcripts_refused_total",
           "Burst ends not signed: they name a probe the chip did not answer in this session.",
           st.transcripts_refused);
  {
    const char *v[] = {"bad_landmark_signature", "wrong_landmark_key"};
    uint64_t n[] = {st.bad_landmark_sig, st.wrong_landmark};
    cl_mtext_family(t, "chiploc_agent_landmark_refused_total", "counter",
                    "Connections dropped because the peer is not the pinned landmark: a handshake "
                    "signature that does not verify, or a Hello with another key.");
    for (size_t i = 0; i < 2; i++) {
      snprintf(lab, sizeof lab, "reason=\"%s\"", v[i]);
      cl_mtext_u64(t, "chiploc_agent_landmark_refused_total", lab, n[i]);
    }
  }
  counter1(t, "chiploc_agent_idle_timeouts_total",
           "Registered connections closed because the landmark sent nothing for idle_timeout_s.",
           st.idle_timeouts);
  cl_mtext_family(t, "chiploc_agent_errors_received_total", "counter",
                  "Error frames received from landmarks, by code.");
  for (unsigned k = 1; k < AGENT_ERROR_SLOTS; k++) {
    /* The last slot counts codes this agent does not know. */
    snprintf(lab, sizeof lab, "code=\"%s\"",
             k < AGENT_ERROR_SLOTS - 1 ? cl_wire_error_name((cl_wire_error)k) : "unknown");
    cl_mtext_u64(t, "chiploc_agent_errors_received_total", lab, st.errors[k]);
  }
  return cl_mtext_ok(t);
}

int agent_ready(const agent *a, char *why, size_t whylen) {
  size_t n = agent_landmark_count(a), up = 0;
  for (size_t i = 0; i < n; i++) {
    agent_landmark_stats ls;
    agent_get_landmark_stats(a, i, &ls);
    up += ls.registered ? 1u : 0u;
  }
  if (up > 0) return 1;
  cl_err_set(why, whylen, "registered with no landmark (0 of %zu)", n);
  return 0;
}
