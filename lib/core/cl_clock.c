/*
 * The probes' clock, CLOCK_MONOTONIC_RAW: see cl_clock.h for why not
 * CLOCK_MONOTONIC.
 */
#include "cl_clock.h"

#include <stdlib.h>
#include <time.h>

uint64_t cl_clock_raw_ns(void) {
  struct timespec ts;
  /* Linux has had this clock since 2.6.28. Without it no probe can be
   * timed soundly, and a made-up time would be worse than stopping. */
  if (clock_gettime(CLOCK_MONOTONIC_RAW, &ts) != 0) abort();
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t cl_clock_unix_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
