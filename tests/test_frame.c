/*
 * Frame assembler (lib/wire/cl_frame.h). A golden frame — a real Challenge
 * encoded by cl_msg_encode — is fed whole, byte by byte and split at every
 * point; frames back to back; the zero-copy path; and the limits: a length
 * prefix above the limit fails before any allocation, a zero length is
 * malformed, and a frame exactly at the limit passes.
 */
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_layout.h"
#include "cl_msg.h"

#include <check.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static uint8_t g_frame[512];
static size_t g_len;

/* A Challenge with fixed fields, encoded as a complete frame. */
static void make_golden(void) {
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CHALLENGE;
  memset(m.u.challenge.chip, 0x22, CL_PK_LEN);
  for (int i = 0; i < CL_NONCE_LEN; i++) m.u.challenge.nonce[i] = (uint8_t)i;
  m.u.challenge.seq = 42;
  ck_assert_int_eq(cl_msg_encode(&m, g_frame, sizeof g_frame, &g_len), CL_OK);
  ck_assert_uint_gt(g_len, CL_FRAME_HDR_LEN);
  ck_assert_uint_eq(cl_get_be32(g_frame), g_len - CL_FRAME_HDR_LEN);
}

/* Asserts that body is the golden frame's body and decodes to its Challenge. */
static void assert_golden_body(const uint8_t *body, size_t n) {
  ck_assert_uint_eq(n, g_len - CL_FRAME_HDR_LEN);
  ck_assert_mem_eq(body, g_frame + CL_FRAME_HDR_LEN, n);
  static cl_msg m;
  char err[128];
  ck_assert_int_eq(cl_msg_decode(body, n, &m, err, sizeof err), CL_OK);
  ck_assert_int_eq(m.type, CL_MSG_CHALLENGE);
  ck_assert_uint_eq(m.u.challenge.seq, 42);
  for (int i = 0; i < CL_NONCE_LEN; i++) ck_assert_uint_eq(m.u.challenge.nonce[i], i);
  for (int i = 0; i < CL_PK_LEN; i++) ck_assert_uint_eq(m.u.challenge.chip[i], 0x22);
}

/*
 * Feeds data to a through the chunk sizes in chunks[] (cycled; 0 means the
 * rest), the way a read callback would: every chunk is fed until consumed.
 * Each complete frame is checked against the golden body. Returns the
 * number of frames, or the first negative code from the assembler.
 */
static int feed_chunks(cl_frame_asm *a, const uint8_t *data, size_t len, const size_t *chunks,
                       size_t nchunks) {
  size_t off = 0, ci = 0;
  int frames = 0;
  while (off < len) {
    size_t c = chunks[ci++ % nchunks];
    if (c == 0 || c > len - off) c = len - off;
    const uint8_t *p = data + off;
    size_t left = c;
    while (left > 0) {
      size_t used = 0, flen = 0;
      const uint8_t *f = NULL;
      int rc = cl_frame_asm_feed(a, p, left, &used, &f, &flen);
      if (rc < 0) return rc;
      ck_assert_uint_le(used, left);
      if (rc == 1) {
        assert_golden_body(f, flen);
        frames++;
      } else {
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(used, left); /* 0 means everything was taken */
      }
      p += used;
      left -= used;
    }
    off += c;
  }
  return frames;
}

START_TEST(test_whole_zero_copy) {
  cl_frame_asm a;
  cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
  size_t used = 0, flen = 0;
  const uint8_t *f = NULL;
  ck_assert_int_eq(cl_frame_asm_feed(&a, g_frame, g_len, &used, &f, &flen), 1);
  ck_assert_uint_eq(used, g_len);
  /* Nothing pending and the whole frame in the input: no copy, no buffer. */
  ck_assert_ptr_eq(f, g_frame + CL_FRAME_HDR_LEN);
  ck_assert_uint_eq(a.cap, 0);
  ck_assert_ptr_null(a.buf);
  assert_golden_body(f, flen);
  ck_assert_uint_eq(a.last_len, g_len - CL_FRAME_HDR_LEN);
  /* The assembler is ready for the next frame. */
  ck_assert_int_eq(cl_frame_asm_feed(&a, g_frame, g_len, &used, &f, &flen), 1);
  ck_assert_ptr_eq(f, g_frame + CL_FRAME_HDR_LEN);
  cl_frame_asm_fini(&a);
}
END_TEST

START_TEST(test_byte_by_byte) {
  cl_frame_asm a;
  cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
  for (size_t i = 0; i < g_len; i++) {
    size_t used = 99, flen = 0;
    const uint8_t *f = NULL;
    int rc = cl_frame_asm_feed(&a, g_frame + i, 1, &used, &f, &flen);
    ck_assert_uint_eq(used, 1);
    if (i + 1 < g_len) {
      ck_assert_int_eq(rc, 0);
    } else {
      ck_assert_int_eq(rc, 1);
      ck_assert_ptr_eq(f, a.buf); /* assembled in the assembler's buffer */
      assert_golden_body(f, flen);
    }
  }
  ck_assert_uint_eq(a.cap, g_len - CL_FRAME_HDR_LEN);
  ck_assert_uint_eq(a.hdr_have, 0);
  ck_assert_uint_eq(a.need, 0);
  cl_frame_asm_fini(&a);
  ck_assert_ptr_null(a.buf);
  ck_assert_uint_eq(a.cap, 0);
  cl_frame_asm_fini(&a); /* a second fini is harmless */
}
END_TEST

START_TEST(test_every_split_point) {
  for (size_t k = 1; k < g_len; k++) {
    cl_frame_asm a;
    cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
    size_t used = 0, flen = 0;
    const uint8_t *f = NULL;
    ck_assert_int_eq(cl_frame_asm_feed(&a, g_frame, k, &used, &f, &flen), 0);
    ck_assert_uint_eq(used, k);
    ck_assert_int_eq(cl_frame_asm_feed(&a, g_frame + k, g_len - k, &used, &f, &flen), 1);
    ck_assert_uint_eq(used, g_len - k);
    assert_golden_body(f, flen);
    cl_frame_asm_fini(&a);
  }
}
END_TEST

START_TEST(test_three_pieces) {
  /* Every pair of split points: header and body cut anywhere. */
  for (size_t i = 1; i < g_len; i += 3) {
    for (size_t j = i + 1; j < g_len; j += 5) {
      cl_frame_asm a;
      cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
      size_t chunks[] = {i, j - i, 0};
      ck_assert_int_eq(feed_chunks(&a, g_frame, g_len, chunks, 3), 1);
      cl_frame_asm_fini(&a);
    }
  }
}
END_TEST

START_TEST(test_back_to_back) {
  uint8_t two[1024];
  memcpy(two, g_frame, g_len);
  memcpy(two + g_len, g_frame, g_len);
  size_t total = 2 * g_len;

  cl_frame_asm a;
  cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
  size_t used = 0, flen = 0;
  const uint8_t *f = NULL;
  /* One buffer: the first call returns frame 1 and leaves the rest. */
  ck_assert_int_eq(cl_frame_asm_feed(&a, two, total, &used, &f, &flen), 1);
  ck_assert_uint_eq(used, g_len);
  ck_assert_ptr_eq(f, two + CL_FRAME_HDR_LEN);
  assert_golden_body(f, flen);
  ck_assert_int_eq(cl_frame_asm_feed(&a, two + used, total - used, &used, &f, &flen), 1);
  ck_assert_uint_eq(used, g_len);
  ck_assert_ptr_eq(f, two + g_len + CL_FRAME_HDR_LEN);
  assert_golden_body(f, flen);
  ck_assert_uint_eq(a.cap, 0);
  cl_frame_asm_fini(&a);

  /* Two frames cut at every point, and fed in several chunk patterns. */
  for (size_t k = 1; k < total; k++) {
    cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
    size_t chunks[] = {k, 0};
    ck_assert_int_eq(feed_chunks(&a, two, total, chunks, 2), 2);
    cl_frame_asm_fini(&a);
  }
  /* The last two cut one byte before and after the first frame's end. */
  const size_t patterns[][4] = {{1, 1, 1, 1},    {3, 7, 2, 5},
                                {4, 4, 4, 4},    {5, 200, 1, 64},
                                {g_len - 1, 2, g_len, 1}, {g_len + 1, 0, 0, 0}};
  for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
    cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
    ck_assert_int_eq(feed_chunks(&a, two, total, patterns[p], 4), 2);
    cl_frame_asm_fini(&a);
  }
}
END_TEST

START_TEST(test_partial_then_fast_path) {
  /* Half a frame pending, then the rest together with a whole second frame:
   * the first comes from the buffer, the second zero-copy. */
  uint8_t rest[1024];
  size_t half = g_len / 2;
  memcpy(rest, g_frame + half, g_len - half);
  memcpy(rest + (g_len - half), g_frame, g_len);
  size_t rlen = (g_len - half) + g_len;

  cl_frame_asm a;
  cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
  size_t used = 0, flen = 0;
  const uint8_t *f = NULL;
  ck_assert_int_eq(cl_frame_asm_feed(&a, g_frame, half, &used, &f, &flen), 0);
  ck_assert_int_eq(cl_frame_asm_feed(&a, rest, rlen, &used, &f, &flen), 1);
  ck_assert_uint_eq(used, g_len - half);
  ck_assert_ptr_eq(f, a.buf);
  assert_golden_body(f, flen);
  ck_assert_int_eq(cl_frame_asm_feed(&a, rest + used, rlen - used, &used, &f, &flen), 1);
  ck_assert_ptr_eq(f, rest + (g_len - half) + CL_FRAME_HDR_LEN);
  assert_golden_body(f, flen);
  cl_frame_asm_fini(&a);
}
END_TEST

START_TEST(test_empty_input) {
  cl_frame_asm a;
  cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
  size_t used = 7, flen = 0;
  const uint8_t *f = NULL;
  ck_assert_int_eq(cl_frame_asm_feed(&a, g_frame, 0, &used, &f, &flen), 0);
  ck_assert_uint_eq(used, 0);
  ck_assert_ptr_null(f);
  cl_frame_asm_fini(&a);
}
END_TEST

/* Feeds a bare 4-byte header, whole (fast path needs >= 4 bytes, so add one
 * body byte) or one byte at a time (slow path); returns the result. */
static int feed_header(cl_frame_asm *a, uint32_t n, int byte_by_byte) {
  uint8_t h[CL_FRAME_HDR_LEN + 1];
  cl_frame_put_header(h, n);
  h[4] = 0x08;
  size_t used = 0, flen = 0;
  const uint8_t *f = NULL;
  if (!byte_by_byte) return cl_frame_asm_feed(a, h, sizeof h, &used, &f, &flen);
  int rc = 0;
  for (size_t i = 0; i < CL_FRAME_HDR_LEN && rc == 0; i++)
    rc = cl_frame_asm_feed(a, h + i, 1, &used, &f, &flen);
  return rc;
}

START_TEST(test_too_big_before_allocation) {
  static const uint32_t sizes[] = {CL_FRAME_MAX_UNREGISTERED + 1, CL_FRAME_MAX, CL_FRAME_MAX + 1,
                                   0x7fffffffu, 0xffffffffu};
  for (int mode = 0; mode < 2; mode++) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      cl_frame_asm a;
      cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
      ck_assert_int_eq(feed_header(&a, sizes[i], mode), CL_ETOOBIG);
      ck_assert_uint_eq(a.last_len, sizes[i]);
      ck_assert_uint_eq(a.cap, 0); /* nothing was allocated */
      ck_assert_ptr_null(a.buf);
      cl_frame_asm_fini(&a);
    }
  }
  /* After a small frame was buffered, a big header does not grow the buffer. */
  cl_frame_asm a;
  cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
  size_t chunks[] = {1};
  ck_assert_int_eq(feed_chunks(&a, g_frame, g_len, chunks, 1), 1);
  size_t cap = a.cap;
  ck_assert_int_eq(feed_header(&a, CL_FRAME_MAX_UNREGISTERED + 1, 1), CL_ETOOBIG);
  ck_assert_uint_eq(a.cap, cap);
  cl_frame_asm_fini(&a);
}
END_TEST

START_TEST(test_zero_length) {
  for (int mode = 0; mode < 2; mode++) {
    cl_frame_asm a;
    cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
    ck_assert_int_eq(feed_header(&a, 0, mode), CL_EMALFORMED);
    ck_assert_uint_eq(a.last_len, 0);
    ck_assert_uint_eq(a.cap, 0);
    cl_frame_asm_fini(&a);
  }
  /* A zero length right after a good frame, in the same buffer. */
  uint8_t buf[600];
  memcpy(buf, g_frame, g_len);
  memset(buf + g_len, 0, 8);
  cl_frame_asm a;
  cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
  size_t used = 0, flen = 0;
  const uint8_t *f = NULL;
  ck_assert_int_eq(cl_frame_asm_feed(&a, buf, g_len + 8, &used, &f, &flen), 1);
  ck_assert_int_eq(cl_frame_asm_feed(&a, buf + used, g_len + 8 - used, &used, &f, &flen),
                   CL_EMALFORMED);
  cl_frame_asm_fini(&a);
}
END_TEST

/* Builds a frame with a body of n bytes (content irrelevant to the
 * assembler) and feeds it whole or in 1000-byte chunks. Returns the result
 * of the last call; on success checks the body. */
static int feed_sized(cl_frame_asm *a, uint32_t n, int chunked, int *zero_copy) {
  uint8_t *buf = malloc(CL_FRAME_HDR_LEN + (size_t)n);
  ck_assert_ptr_nonnull(buf);
  cl_frame_put_header(buf, n);
  for (uint32_t i = 0; i < n; i++) buf[CL_FRAME_HDR_LEN + i] = (uint8_t)(i * 7 + 1);
  size_t total = CL_FRAME_HDR_LEN + (size_t)n, off = 0;
  int rc = 0;
  *zero_copy = 0;
  while (off < total && rc == 0) {
    size_t c = chunked ? 1000 : total;
    if (c > total - off) c = total - off;
    size_t used = 0, flen = 0;
    const uint8_t *f = NULL;
    rc = cl_frame_asm_feed(a, buf + off, c, &used, &f, &flen);
    off += used;
    if (rc == 1) {
      ck_assert_uint_eq(flen, n);
      ck_assert_mem_eq(f, buf + CL_FRAME_HDR_LEN, n);
      *zero_copy = (f == buf + CL_FRAME_HDR_LEN);
      ck_assert_uint_eq(off, total);
    }
  }
  free(buf);
  return rc;
}

START_TEST(test_limits) {
  cl_frame_asm a;
  int zc = 0;
  for (int chunked = 0; chunked < 2; chunked++) {
    /* Before registration: 8192 passes, 8193 does not. */
    cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
    ck_assert_int_eq(feed_sized(&a, CL_FRAME_MAX_UNREGISTERED, chunked, &zc), 1);
    ck_assert_int_eq(zc, !chunked);
    ck_assert_uint_eq(a.cap, chunked ? CL_FRAME_MAX_UNREGISTERED : 0);
    ck_assert_int_eq(feed_sized(&a, CL_FRAME_MAX_UNREGISTERED + 1, chunked, &zc), CL_ETOOBIG);
    cl_frame_asm_fini(&a);

    /* After cl_frame_asm_set_max(CL_FRAME_MAX): 65536 passes, 65537 not. */
    cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
    ck_assert_int_eq(feed_sized(&a, 100, chunked, &zc), 1);
    cl_frame_asm_set_max(&a, CL_FRAME_MAX);
    ck_assert_int_eq(feed_sized(&a, CL_FRAME_MAX_UNREGISTERED + 1, chunked, &zc), 1);
    ck_assert_int_eq(feed_sized(&a, CL_FRAME_MAX, chunked, &zc), 1);
    ck_assert_uint_le(a.cap, CL_FRAME_MAX);
    ck_assert_int_eq(feed_sized(&a, CL_FRAME_MAX + 1, chunked, &zc), CL_ETOOBIG);
    ck_assert_uint_eq(a.last_len, CL_FRAME_MAX + 1);
    cl_frame_asm_fini(&a);
  }
  ck_assert_uint_eq(CL_FRAME_MAX, 65536);
  ck_assert_uint_eq(CL_FRAME_MAX_UNREGISTERED, 8192);
}
END_TEST

START_TEST(test_set_max_applies_from_next_header) {
  cl_frame_asm a;
  cl_frame_asm_init(&a, CL_FRAME_MAX);
  /* A 5000-byte frame whose header was read under the loose limit still
   * completes after the limit is tightened mid-body. */
  uint32_t n = 5000;
  uint8_t *buf = calloc(1, CL_FRAME_HDR_LEN + n);
  ck_assert_ptr_nonnull(buf);
  cl_frame_put_header(buf, n);
  size_t used = 0, flen = 0;
  const uint8_t *f = NULL;
  ck_assert_int_eq(cl_frame_asm_feed(&a, buf, 100, &used, &f, &flen), 0);
  cl_frame_asm_set_max(&a, 1000);
  ck_assert_int_eq(cl_frame_asm_feed(&a, buf + 100, CL_FRAME_HDR_LEN + n - 100, &used, &f, &flen),
                   1);
  ck_assert_uint_eq(flen, n);
  /* The next header is held to the new limit. */
  ck_assert_int_eq(cl_frame_asm_feed(&a, buf, CL_FRAME_HDR_LEN + n, &used, &f, &flen),
                   CL_ETOOBIG);
  ck_assert_uint_eq(a.last_len, n);
  free(buf);
  cl_frame_asm_fini(&a);
}
END_TEST

START_TEST(test_put_header) {
  uint8_t h[CL_FRAME_HDR_LEN];
  cl_frame_put_header(h, 0x01020304u);
  ck_assert_uint_eq(h[0], 1);
  ck_assert_uint_eq(h[1], 2);
  ck_assert_uint_eq(h[2], 3);
  ck_assert_uint_eq(h[3], 4);
  cl_frame_put_header(h, 189);
  const uint8_t want[4] = {0, 0, 0, 0xbd};
  ck_assert_mem_eq(h, want, 4);
}
END_TEST

START_TEST(test_random_chunking) {
  /* Eight frames fed in random chunk sizes (fixed seed), 200 rounds. */
  uint8_t stream[8 * 256];
  size_t total = 0;
  for (int i = 0; i < 8; i++) {
    memcpy(stream + total, g_frame, g_len);
    total += g_len;
  }
  uint32_t x = 12345;
  for (int round = 0; round < 200; round++) {
    size_t chunks[16];
    for (int i = 0; i < 16; i++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      chunks[i] = 1 + x % 400;
    }
    cl_frame_asm a;
    cl_frame_asm_init(&a, CL_FRAME_MAX_UNREGISTERED);
    ck_assert_int_eq(feed_chunks(&a, stream, total, chunks, 16), 8);
    ck_assert_uint_eq(a.hdr_have, 0);
    ck_assert_uint_eq(a.need, 0);
    cl_frame_asm_fini(&a);
  }
}
END_TEST

static Suite *frame_suite(void) {
  Suite *s = suite_create("frame");
  TCase *tc = tcase_create("assembler");
  tcase_add_unchecked_fixture(tc, make_golden, NULL);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_whole_zero_copy);
  tcase_add_test(tc, test_byte_by_byte);
  tcase_add_test(tc, test_every_split_point);
  tcase_add_test(tc, test_three_pieces);
  tcase_add_test(tc, test_back_to_back);
  tcase_add_test(tc, test_partial_then_fast_path);
  tcase_add_test(tc, test_empty_input);
  tcase_add_test(tc, test_too_big_before_allocation);
  tcase_add_test(tc, test_zero_length);
  tcase_add_test(tc, test_limits);
  tcase_add_test(tc, test_set_max_applies_from_next_header);
  tcase_add_test(tc, test_put_header);
  tcase_add_test(tc, test_random_chunking);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (sodium_init() < 0) return EXIT_FAILURE;
  SRunner *sr = srunner_create(frame_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
