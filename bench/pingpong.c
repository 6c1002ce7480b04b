/*
 * Baseline for landmark RTT timing: a plain TCP ping-pong over loopback with
 * blocking sockets, no event loop and no cryptography. The numbers it prints
 * are the floor that landmarkd's measured RTTs on the same machine should be
 * compared with (as a ratio, in the same run).
 *
 *   pingpong [--count N] [--size BYTES] [--port P] [--mac] [--epoll]
 *
 * The process forks an echo server (child) and acts as the client: both
 * ends set TCP_NODELAY. Each round trip writes one request the size of an
 * encoded Challenge frame and reads one reply the size of an encoded
 * Response frame (sizes computed with cl_msg_encode, contents the real
 * frames); --size sets both to BYTES instead. The time of each round trip
 * is taken with CLOCK_MONOTONIC immediately before the write and after the
 * last byte of the reply is read. With --epoll both ends wait in
 * epoll_wait for their socket to become readable before each read, as an
 * event loop (libuv, landmarkd, chipagent) does, instead of blocking in
 * read(). 100 untimed round trips warm up first.
 * Prints one line: min_us=… median_us=… p90_us=… count=N (µs, 3 decimals;
 * median and p90 by the nearest-rank method).
 */
#include "cl_err.h"
#include "cl_frame.h"
#include "cl_msg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 100
#define MAX_SIZE (1u << 20)

static void die(const char *what) {
  fprintf(stderr, "pingpong: %s: %s\n", what, strerror(errno));
  exit(EXIT_FAILURE);
}

static void usage(void) {
  fprintf(stderr, "usage: pingpong [--count N] [--size BYTES] [--port P] [--mac] [--epoll]\n");
  exit(2);
}

/* Parses a decimal option value within [min, max] or exits. */
static unsigned long parse_num(const char *opt, const char *text, unsigned long min,
                               unsigned long max) {
  char *end = NULL;
  errno = 0;
  unsigned long v = strtoul(text ? text : "", &end, 10);
  if (!text || errno || end == text || *end != '\0' || text[0] == '-' || v < min || v > max) {
    fprintf(stderr, "pingpong: %s must be an integer in [%lu, %lu]\n", opt, min, max);
    exit(2);
  }
  return v;
}

static void write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("write");
    }
    p += w;
    n -= (size_t)w;
  }
}

/* Reads exactly n bytes; returns 0 on a clean EOF before the first byte. */
static int read_all(int fd, uint8_t *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read");
    }
    if (r == 0) {
      if (got == 0) return 0;
      errno = EPROTO;
      die("short read");
    }
    got += (size_t)r;
  }
  return 1;
}

/* With epoll set, the epoll instance fd is registered with (readable);
 * -1 otherwise. */
static int epoll_for(int fd, int use) {
  if (!use) return -1;
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  return ep;
}

/* Waits until the socket of ep is readable (no-op without epoll). */
static void wait_readable(int ep) {
  if (ep < 0) return;
  struct epoll_event ev;
  while (epoll_wait(ep, &ev, 1, -1) < 0)
    if (errno != EINTR) die("epoll_wait");
}

static void set_nodelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) die("TCP_NODELAY");
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n), p in (0, 1]. */
static uint64_t percentile(const uint64_t *v, size_t n, double p) {
  size_t rank = (size_t)((double)n * p);
  if ((double)rank < (double)n * p) rank++;
  if (rank < 1) rank = 1;
  return v[rank - 1];
}

/* Fills req and resp with a real Challenge and Response frame (protocol 2)
 * and returns their sizes. The field values are typical: a sequence number
 * in the millions (varint lengths depend on it). */
static void real_frames(uint8_t *req, size_t *req_len, uint8_t *resp, size_t *resp_len) {
  static cl_msg m;
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_CHALLENGE;
  memset(m.u.challenge.chip, 0x22, CL_PK_LEN);
  m.u.challenge.seq = 1000000;
  memset(m.u.challenge.nonce, 0x33, CL_NONCE_LEN);
  if (cl_msg_encode(&m, req, 512, req_len) != CL_OK) die("encode challenge");
  memset(&m, 0, sizeof m);
  m.type = CL_MSG_RESPONSE;
  memset(m.u.response.chip, 0x22, CL_PK_LEN);
  m.u.response.seq = 1000000;
  memset(m.u.response.mac, 0x55, CL_MAC_LEN);
  if (cl_msg_encode(&m, resp, 512, resp_len) != CL_OK) die("encode response");
}

/* Child: accept one connection and answer each request with the reply. With
 * mac set, the server first computes the answer MAC over the request's
 * bytes, as a chip does (cl_answer_mac: one keyed BLAKE2b), so that the
 * baseline carries the same unavoidable cost inside its window as the
 * landmark's measurement. */
static void serve(int lfd, size_t req_len, const uint8_t *reply, size_t reply_len, int mac,
                  int use_epoll) {
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0) die("accept");
  close(lfd);
  set_nodelay(fd);
  int ep = epoll_for(fd, use_epoll);
  uint8_t *buf = malloc(req_len);
  if (!buf) die("malloc");
  uint8_t key[CL_SESSION_KEY_LEN], ids[2 * CL_PK_LEN], nonce[CL_NONCE_LEN], out[CL_MAC_LEN];
  randombytes_buf(key, sizeof key);
  memset(ids, 0x11, sizeof ids);
  memset(nonce, 0, sizeof nonce);
  uint64_t seq = 0;
  for (;;) {
    wait_readable(ep);
    if (!read_all(fd, buf, req_len)) break;
    if (mac) {
      memcpy(nonce, buf, req_len < sizeof nonce ? req_len : sizeof nonce);
      cl_answer_mac(key, CL_SUITE_ED25519_X25519, ids, ids + CL_PK_LEN, ++seq, nonce, out);
    }
    write_all(fd, reply, reply_len);
  }
  free(buf);
  if (ep >= 0) close(ep);
  close(fd);
  _exit(EXIT_SUCCESS);
}

int main(int argc, char **argv) {
  unsigned long count = 10000, size = 0, port = 0;
  int mac = 0, use_epoll = 0;
  if (sodium_init() < 0) die("sodium_init");
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--mac") == 0) {
      mac = 1;
      continue;
    }
    if (strcmp(argv[i], "--epoll") == 0) {
      use_epoll = 1;
      continue;
    }
    if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
      count = parse_num("--count", argv[++i], 1, 100000000ul);
    else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc)
      size = parse_num("--size", argv[++i], 1, MAX_SIZE);
    else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
      port = parse_num("--port", argv[++i], 0, 65535);
    else
      usage();
  }
  signal(SIGPIPE, SIG_IGN);

  uint8_t ch_frame[512], resp_frame[512];
  size_t req_len = 0, reply_len = 0;
  real_frames(ch_frame, &req_len, resp_frame, &reply_len);
  if (size) req_len = reply_len = size;
  uint8_t *req = calloc(1, req_len), *reply = calloc(1, reply_len);
  uint64_t *rtt = malloc(count * sizeof *rtt);
  if (!req || !reply || !rtt) die("malloc");
  memcpy(req, ch_frame, req_len < sizeof ch_frame ? req_len : sizeof ch_frame);
  memcpy(reply, resp_frame, reply_len < sizeof resp_frame ? reply_len : sizeof resp_frame);

  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons((uint16_t)port);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
  if (listen(lfd, 1) != 0) die("listen");
  socklen_t alen = sizeof addr;
  if (getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0) die("getsockname");

  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) serve(lfd, req_len, reply, reply_len, mac, use_epoll);
  close(lfd);

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
  set_nodelay(fd);
  int ep = epoll_for(fd, use_epoll);
  uint8_t *in = malloc(reply_len);
  if (!in) die("malloc");
  for (unsigned long i = 0; i < WARMUP + count; i++) {
    uint64_t t0 = now_ns();
    write_all(fd, req, req_len);
    wait_readable(ep);
    if (!read_all(fd, in, reply_len)) {
      errno = ECONNRESET;
      die("server closed");
    }
    uint64_t t1 = now_ns();
    if (i >= WARMUP) rtt[i - WARMUP] = t1 - t0;
  }
  if (ep >= 0) close(ep);
  close(fd);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) die("waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "pingpong: server exited abnormally\n");
    return EXIT_FAILURE;
  }

  qsort(rtt, count, sizeof *rtt, cmp_u64);
  printf("min_us=%.3f median_us=%.3f p90_us=%.3f count=%lu request_bytes=%zu reply_bytes=%zu\n",
         (double)rtt[0] / 1e3, (double)percentile(rtt, count, 0.5) / 1e3,
         (double)percentile(rtt, count, 0.9) / 1e3, count, req_len, reply_len);
  free(rtt);
  free(req);
  free(reply);
  free(in);
  return EXIT_SUCCESS;
}
