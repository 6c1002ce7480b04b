/*
 * libFuzzer target for the landmark's protocol core (lib/wire/cl_lmcore.c):
 * the very code landmarkd runs, driven without sockets or libuv by
 * tests/fuzz/landmark_harness.h, which describes the input layout and every
 * property checked. One or two agent connections, both paths of the
 * core's asymmetric work (handshakes, Confirm checks, transcript checks and
 * record signatures done on the spot, or through "workers" whose jobs come
 * back before the next read, some cancelled), virtual time and a
 * deterministic random source.
 *
 * FUZZ_LANDMARK_TRACE=1 in the environment prints what happens (to check
 * the seed corpus by hand).
 */
#include "landmark_harness.h"

#include <stddef.h>
#include <stdint.h>

static lh g_h;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    lh_init(&g_h);
    ready = 1;
  }
  lh_run(&g_h, data, size, 1);
  return 0;
}
