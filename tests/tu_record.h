/*
 * Genuine protocol-2 measurement records for the tests, made the way a
 * landmark and a chip make one in a session (docs/PROTOCOL.md): a handshake
 * with fresh ephemeral keys and nonces signed by both identities, the
 * session key each side derives, one answer MAC per probe under it, the
 * chip's transcript signature and the landmark's record signature. The
 * "chip" may be a landmark's key (a landmark link). Without Check, so that
 * the benchmarks can use it as well as the tests.
 */
#ifndef TU_RECORD_H
#define TU_RECORD_H

#include "cl_key.h"
#include "cl_layout.h"

#include <stdint.h>

/*
 * Fills *m with a record of `count` probes (1..CL_MAX_BURST) measured by
 * `landmark` of `chip` at measured_unix_ns: seqs first_seq, first_seq + 1,
 * ..., fresh random nonces, probe i answered in rtt_ns[i] ns; rtt_ns is the
 * smallest of them, probes_sent = count. Every signature verifies
 * (cl_measurement_verify). Returns 0, CL_EINVAL (a count out of range or a
 * zero RTT) or what a layout function returned.
 */
int tu_record(cl_measurement *m, const cl_key *landmark, const cl_key *chip, uint64_t first_seq,
              uint32_t count, const uint64_t *rtt_ns, uint64_t measured_unix_ns);

/*
 * The usual case: three probes at random seqs whose fastest, the second,
 * took rtt_ns (the others 2 us and 5 us longer).
 */
int tu_record_rtt(cl_measurement *m, const cl_key *landmark, const cl_key *chip, uint64_t rtt_ns,
                  uint64_t measured_unix_ns);

#endif
