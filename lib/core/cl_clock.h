/*
 * The clock that times probes. landmarkd takes both timestamps of a probe's
 * round trip (the send stamp right before the challenge's write and the
 * receive stamp first thing in the read callback), and every `now` it gives
 * the protocol core, from this one clock, so that RTTs, deadlines and
 * timers are in one time domain.
 *
 * It is CLOCK_MONOTONIC_RAW: the hardware counter scaled by a factor fixed
 * at boot. CLOCK_MONOTONIC (uv_hrtime) runs at a rate NTP may slew by up to
 * 500 ppm, so whoever steers the landmark's NTP could stretch or shrink
 * every RTT it measures; the raw clock is out of NTP's reach. What remains
 * is the oscillator's own error against true time, which the location
 * engine allows for.
 */
#ifndef CL_CLOCK_H
#define CL_CLOCK_H

#include <stdint.h>

/* Nanoseconds of CLOCK_MONOTONIC_RAW (an arbitrary origin; never goes
 * back). Cheap enough for every event (a vDSO call on Linux). */
uint64_t cl_clock_raw_ns(void);
/* Nanoseconds since the Unix epoch (CLOCK_REALTIME): the time written in
 * records and logs, never used to time a probe. */
uint64_t cl_clock_unix_ns(void);

#endif
