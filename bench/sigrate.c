/*
 * libsodium's own Ed25519 rates on this machine, one thread: detached
 * signatures and verifications per CPU-second (the thread's own CPU time,
 * so other load on the machine does not lower it) over a message the size
 * of the measurement layout of a burst of five probes
 * (CL_MEASUREMENT_LAYOUT_LEN(5) bytes, what the verifier checks most). The
 * baseline of bench/landmark.sh's and bench/verifier.sh's throughput figures.
 *
 *   sigrate [--seconds S]    (default 2 per operation)
 *
 * Prints one line: `sign_per_s=... verify_per_s=... sign_us=... verify_us=...`
 * (per CPU-second and CPU microseconds per operation).
 */
#include "cl_layout.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of this thread: on a shared machine the rate per CPU-second is
 * what compares with a process's CPU use, whatever else runs. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  double seconds = 2.0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      char *end = NULL;
      seconds = strtod(argv[++i], &end);
      if (!end || *end || !(seconds > 0) || seconds > 600) {
        fprintf(stderr, "sigrate: --seconds %s: want a number in (0, 600]\n", argv[i]);
        return 2;
      }
    } else if (strcmp(argv[i], "--help") == 0) {
      printf("usage: sigrate [--seconds S]\n");
      return 0;
    } else {
      fprintf(stderr, "sigrate: unknown argument %s (try --help)\n", argv[i]);
      return 2;
    }
  }
  if (sodium_init() < 0) return 1;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  unsigned char msg[CL_MEASUREMENT_LAYOUT_LEN(5)], sig[crypto_sign_BYTES];
  randombytes_buf(msg, sizeof msg);

  /* Signing: a fresh message byte each time, so nothing is cached. */
  unsigned long n_sign = 0;
  double t0 = now_s(), t1 = t0;
  while (t1 - t0 < seconds) {
    for (int k = 0; k < 64; k++, n_sign++) {
      msg[0] = (unsigned char)n_sign;
      crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
    }
    t1 = now_s();
  }
  double sign_rate = (double)n_sign / (t1 - t0);

  crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
  unsigned long n_verify = 0, failed = 0;
  t0 = now_s();
  t1 = t0;
  while (t1 - t0 < seconds) {
    for (int k = 0; k < 64; k++, n_verify++)
      if (crypto_sign_verify_detached(sig, msg, sizeof msg, pk) != 0) failed++;
    t1 = now_s();
  }
  double verify_rate = (double)n_verify / (t1 - t0);
  if (failed) {
    fprintf(stderr, "sigrate: %lu verifications failed\n", failed);
    return 1;
  }
  printf("sign_per_s=%.0f verify_per_s=%.0f sign_us=%.2f verify_us=%.2f\n", sign_rate, verify_rate,
         1e6 / sign_rate, 1e6 / verify_rate);
  return 0;
}
