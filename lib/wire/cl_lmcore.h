/*
 * The landmark's protocol core, without I/O: every agent connection's
 * state machine (Hello, Register and the session handshakes, the probe
 * cycle of each active chip, the acceptance checks of each Response, the
 * transcript after each burst, rekeys, deadlines, limits) as plain
 * functions on plain data. landmarkd's libuv shell (server/landmark.c),
 * the unit test tests/test_lmcore.c and the fuzz target
 * tests/fuzz/fuzz_landmark.c all drive this same code. docs/PROTOCOL.md is
 * the protocol (version 2).
 *
 * Events in: a connection opened (cl_lm_conn_open), bytes received with the
 * timestamp the shell took first thing in its read callback
 * (cl_lm_conn_read), the peer gone (cl_lm_conn_close), timers due
 * (cl_lm_run_timers), a worker's job back (cl_lm_work_done), a new
 * enrolled set (cl_lm_set_enrolled).
 * Actions out, through the shell's cl_lm_io: send these bytes (for a
 * challenge, the shell stamps the send time immediately before its write
 * and hands it back), close this connection, emit a signed measurement,
 * hand a job (handshake, Confirm check, transcript check and record
 * signature) to a worker. The remaining action, arming the shell's one
 * timer, is cl_lm_next_due, which the shell reads after every event it
 * passes in.
 *
 * Nothing asymmetric runs between a challenge's send and its answer's
 * acceptance: the answer check is one keyed hash under the session key.
 *
 * Time is data: `now_ns` arguments and the send timestamps are nanoseconds
 * of one monotonic clock (landmarkd: cl_clock_raw_ns, CLOCK_MONOTONIC_RAW,
 * which NTP cannot slew); wall-clock times for the signed records and all
 * randomness (nonces and ephemeral secrets included) come from cl_lm_io, so
 * a fuzzer can make a run reproducible.
 *
 * Ownership: the core owns connections and chips. After it calls io->close
 * for a connection the shell must not pass that connection in again; the
 * core frees it before the outermost call returns. Every callback may be
 * called from inside any event function; callbacks must not call back into
 * the core.
 */
#ifndef CL_LMCORE_H
#define CL_LMCORE_H

#include "cl_hist.h"
#include "cl_key.h"
#include "cl_layout.h"
#include "cl_lmrecord.h"
#include "cl_msg.h"
#include "cl_probe.h"

#include <stddef.h>
#include <stdint.h>

/* Remembered probes per chip: the replay detection window. */
#define CL_LM_PROBE_RING 8

/* What the core needs of landmarkd's configuration (cl_landmark_config
 * holds the same values with their ranges and defaults). */
typedef struct {
  uint32_t interval_s;   /* one burst per chip per interval */
  double jitter;         /* the interval is scaled by 1 +- jitter */
  uint32_t burst;        /* probes per burst, 1..CL_MAX_BURST */
  uint32_t burst_gap_ms; /* pause between probes of a burst */
  uint32_t deadline_ms;  /* response deadline */
  double speed_m_per_s;  /* speed of the estimate next to the bound at c */
  int async_signatures;  /* 1: handshake, Confirm and transcript jobs go to io->work */
  uint32_t transcript_timeout_ms; /* BurstEnd -> Transcript */
  uint32_t session_lifetime_s;    /* a session older than this is rekeyed at its next burst */
  uint32_t max_connections;
  uint32_t max_connections_per_address;
  uint32_t max_pending_challenges; /* outstanding probes per connection */
  uint32_t handshake_timeout_ms;   /* accept -> first chip active; Rekey -> verified Confirm */
  uint32_t idle_timeout_s;         /* no complete frame from a registered peer */
  uint32_t max_frame_bytes;        /* frame body limit after registration */
  /* Error replies to rejected Responses, per connection: a bucket of this
   * many, refilled at this many per second; beyond it the reply is dropped
   * (and counted), the rejection itself still counts. Must be > 0. */
  uint32_t max_error_replies_per_s;
} cl_lm_params;

/* The asymmetric work of a session, done off the event loop. */
typedef enum {
  CL_LM_WORK_HANDSHAKE, /* the landmark's half of a handshake: eph key, signature, session key */
  CL_LM_WORK_CONFIRM,   /* the chip's handshake signature of a Confirm */
  CL_LM_WORK_TRANSCRIPT /* the chip's transcript signature, then the signed record */
} cl_lm_work_kind;
#define CL_LM_WORK__COUNT 3

/*
 * One job for a worker thread. The core fills it and hands it to io->work,
 * which takes a copy; a worker runs cl_lm_work_run on the copy; the loop
 * hands the copy back to cl_lm_work_done, which reads the result and wipes
 * the secrets. `owner` and `ticket` are the core's: they find the chip
 * again (a chip or connection gone meanwhile makes the job orphaned).
 *
 * HANDSHAKE: in: hs (suite, identities, the chip's eph and nonce, the
 *   landmark's nonce), eph_sk (32 random bytes: the X25519 secret; the
 *   public key is derived from it, so that the core's io->random decides
 *   both, as a fuzzer needs); out: hs.landmark_eph, hs.landmark_sig, key.
 *   rc: CL_EBADSIG when the chip's eph is of small order.
 * CONFIRM: in: hs with the Confirm's chip_sig; out: rc (CL_EBADSIG: the
 *   signature does not verify).
 * TRANSCRIPT: in: hs (both signatures), burst (the probes as the landmark
 *   sent and checked them), transcript_sig, measured_unix_ns; out: m (the
 *   signed record), rc (CL_EBADSIG: the transcript signature does not
 *   verify over the landmark's own view of the burst).
 */
typedef struct {
  cl_lm_work_kind kind;
  void *owner;     /* the core's chip */
  uint64_t ticket; /* the core's number for this job */
  cl_handshake hs;
  uint8_t eph_sk[CL_EPH_SK_LEN];   /* HANDSHAKE: secret, wiped by cl_lm_work_run */
  uint8_t key[CL_SESSION_KEY_LEN]; /* HANDSHAKE: secret, wiped by cl_lm_work_done */
  cl_burst burst;                   /* TRANSCRIPT */
  uint8_t transcript_sig[CL_SIG_LEN];
  uint64_t measured_unix_ns;
  cl_measurement m; /* TRANSCRIPT: the signed record */
  int rc;           /* 0, or why the job failed */
} cl_lm_work;

/* How a probe ended, for io->probe. */
typedef struct {
  const uint8_t *chip;     /* CL_PK_LEN bytes */
  const cl_probe *probe;   /* the probe as sent (seq, nonce, times), NULL if none matched */
  const uint8_t *mac;      /* the accepted answer's MAC, else NULL */
  cl_accept_result result; /* CL_ACCEPT_OK, or why the answer was refused */
  int expired;             /* the deadline passed without an accepted answer */
  uint64_t rtt_ns;         /* for CL_ACCEPT_OK */
} cl_lm_probe_event;

typedef struct {
  /*
   * Writes one complete frame to the connection `ud` (the shell's pointer
   * given to cl_lm_conn_open). When t_sent is not NULL the frame is a
   * challenge: the shell stores its monotonic clock in *t_sent immediately
   * before the write, with nothing in between. Returns 0, or an error, on
   * which the core closes the connection: CL_ETOOBIG when the bytes the
   * connection already has queued for writing leave no room for this frame
   * (the peer does not read; counted as write_queue_overflows and logged
   * with the peer and its chips), anything else for a failed write.
   */
  int (*send)(void *ctx, void *ud, const uint8_t *buf, size_t len, uint64_t *t_sent);
  /* The core closed connection `ud`: the shell closes its socket and never
   * passes this connection in again. */
  void (*close)(void *ctx, void *ud);
  /* A burst's signed measurement, for the database writer. Returns 0, or an
   * error when it could not be queued (counted as dropped). */
  int (*measurement)(void *ctx, const cl_lm_record *rec);
  /* Takes a copy of a job for a worker (async_signatures only). Returns 0,
   * or an error: the core then does the work itself. */
  int (*work)(void *ctx, const cl_lm_work *w);
  /* n random bytes: nonces, ephemeral secrets, schedules. */
  void (*random)(void *ctx, void *buf, size_t n);
  /* Wall-clock time, ns since the Unix epoch: measurement times. */
  uint64_t (*unix_ns)(void *ctx);
  /* Optional (may be NULL): how each probe ended, for tests and tracing. */
  void (*probe)(void *ctx, const cl_lm_probe_event *e);
} cl_lm_io;

/* Counters, all monotonic since start, and two histograms. */
typedef struct {
  uint64_t conns_accepted, conns_refused_limit, conns_refused_per_address, conns_closed;
  uint64_t frames_too_large, frames_malformed, frames_unknown_type, version_mismatch,
      unexpected_msg, handshake_timeouts, idle_timeouts;
  uint64_t suite_refused;   /* Registers naming a suite this build does not know */
  uint64_t chips_registered; /* chips whose first session verified: they became active */
  uint64_t chip_takeovers; /* active chips taken from a connection by a newer verified session */
  uint64_t handshake_refused[CL_REFUSE__COUNT]; /* offers refused, by cl_refuse_reason */
  uint64_t handshakes_ok;         /* Confirms verified: a session began (rekeys included) */
  uint64_t bad_handshake_sigs;    /* Confirms whose chip signature does not verify */
  uint64_t confirms_unexpected;   /* Confirm entries for no handshake awaiting one */
  uint64_t rekeys_asked, rekeys_done, rekeys_failed; /* failed: not completed in time */
  uint64_t probes_sent, probe_timeouts, responses_accepted;
  uint64_t probes_deferred; /* a probe postponed by max_pending_challenges */
  uint64_t peer_errors;     /* Error frames received from agents */
  uint64_t error_replies_suppressed; /* Error replies over max_error_replies_per_s, not sent */
  uint64_t write_queue_overflows;    /* connections closed: io->send said CL_ETOOBIG */
  uint64_t rejected[CL_ACCEPT__COUNT]; /* by cl_accept_result (index 0 unused) */
  uint64_t rejected_not_registered; /* Responses and Transcripts for a chip not active here */
  uint64_t bursts_empty;   /* bursts without an accepted probe: no BurstEnd, no record */
  uint64_t transcripts_ok, transcripts_bad, transcript_timeouts;
  uint64_t measurements, measurements_dropped;
  uint64_t jobs_queued[CL_LM_WORK__COUNT]; /* handed to io->work, by cl_lm_work_kind */
  uint64_t jobs_orphaned; /* jobs whose chip or connection was gone, or cancelled */
  cl_histogram rtt;       /* accepted probes, seconds */
  cl_histogram lag;       /* challenge send time minus its scheduled time, seconds */
} cl_lm_stats;

typedef struct cl_lm cl_lm;
typedef struct cl_lm_conn cl_lm_conn;

/* Creates the core. key (the landmark identity), params and io are
 * borrowed and must outlive it. 0, CL_EINVAL (a missing callback, burst
 * not in 1..CL_MAX_BURST, or a zero limit, timeout or lifetime) or
 * CL_ENOMEM. */
int cl_lm_create(cl_lm **out, const cl_lm_params *params, const cl_key *key, const cl_lm_io *io,
                 void *ctx);
/* Frees the core and every connection and chip left (without calling io),
 * those whose jobs are still out included: hand every job back first. */
void cl_lm_destroy(cl_lm **lm);

/*
 * Replaces the enrolled set (takes ownership of targets, malloc'd). Active
 * chips no longer enrolled and active are dropped from their connections;
 * the others take the ids of the new set. A chip whose first handshake is
 * under way is checked against the set when its Confirm verifies. Log lines
 * about a chip name it `chip=` by the target's name (its serial) when it
 * has one, else by its key's first 8 bytes in hex, and always add those hex
 * digits as `chip_key=`.
 */
void cl_lm_set_enrolled(cl_lm *lm, cl_lm_target *targets, size_t n, uint64_t now_ns);

/*
 * The key under which a peer's IP address counts against
 * max_connections_per_address, from the address's bytes in network order:
 * len 4 (IPv4) or 16 (IPv6). An IPv6 address counts by its /64 prefix, the
 * block one subscriber or host is normally given (so one holder of a /64
 * cannot spread over 2^64 addresses); an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d, from a dual-stack listener) counts as the IPv4 address.
 * Returns 0, or CL_EINVAL for another length.
 */
int cl_lm_addr_key(const uint8_t *ip, size_t len, uint8_t key[CL_PK_LEN]);

/*
 * A connection was accepted. ud is the shell's handle for io callbacks;
 * addr_key (CL_PK_LEN bytes from cl_lm_addr_key, may be NULL) identifies
 * the peer's address for the per-address limit; peer is its printable
 * address for logs. Sends the
 * Hello, or refuses the connection with an Error when a limit is reached.
 * Returns the connection, or NULL when it was refused or failed (io->close
 * was called then).
 */
cl_lm_conn *cl_lm_conn_open(cl_lm *lm, void *ud, const uint8_t *addr_key, const char *peer,
                            uint64_t now_ns);
/* Bytes from the connection's peer, received at t_recv (monotonic ns taken
 * first thing in the shell's read callback). */
void cl_lm_conn_read(cl_lm *lm, cl_lm_conn *c, const uint8_t *data, size_t n, uint64_t t_recv);
/* The peer closed the connection or the socket failed: the core forgets it
 * (io->close is still called, once, as for any close). */
void cl_lm_conn_close(cl_lm *lm, cl_lm_conn *c, uint64_t now_ns);
/* Closes every connection (io->close for each): for shutdown. */
void cl_lm_close_all(cl_lm *lm, uint64_t now_ns);

/* Monotonic time of the earliest timer, UINT64_MAX when none: the shell
 * arms its timer for it after every event. */
uint64_t cl_lm_next_due(const cl_lm *lm);
/* Runs every timer due at now_ns. */
void cl_lm_run_timers(cl_lm *lm, uint64_t now_ns);

/* Does a job (on a worker thread; touches nothing but w and reads the
 * landmark key). */
void cl_lm_work_run(cl_lm_work *w, const cl_key *landmark);
/*
 * A job handed out by io->work is back; status is not 0 when it was
 * cancelled without running. Wipes the job's secrets. Every job handed out
 * must come back, once, before cl_lm_destroy.
 */
void cl_lm_work_done(cl_lm *lm, cl_lm_work *w, int status, uint64_t now_ns);

const cl_lm_stats *cl_lm_get_stats(const cl_lm *lm);
/* Open connections, and chips registered on them. */
size_t cl_lm_conn_count(const cl_lm *lm);
size_t cl_lm_live_count(const cl_lm *lm);
/* The connection's state, for tests: 1 once a chip is active on it. */
int cl_lm_conn_registered(const cl_lm_conn *c);

#endif
