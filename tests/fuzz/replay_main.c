/*
 * A main() for the libFuzzer targets of tests/fuzz without libFuzzer: every
 * file named on the command line, and every file below every directory named
 * there (in name order, dot files skipped), is read and given once to the
 * target's LLVMFuzzerTestOneInput. The test suite runs each target over its
 * seed corpus tests/fuzz/corpus/NAME/ this way, so that the ordinary build
 * and the sanitizer build replay every seed and every kept crash input
 * through the real code, with any compiler; a target that finds something
 * wrong aborts, which fails the test.
 *
 *   fuzz_frame_replay tests/fuzz/corpus/frame [more files or directories]
 *
 * Exit status: 0 when at least one input ran and none aborted; 1 when a
 * path cannot be read or no input was found (a missing corpus is an error).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static unsigned long g_inputs;

/* Reads path whole and runs it. 0, or -1 when it cannot be read. */
static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return -1;
  }
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      fprintf(stderr, "%s: out of memory\n", path);
      fclose(f);
      return -1;
    }
    len += fread(buf + len, 1, cap - len, f);
    if (len < cap) break;
    uint8_t *more = realloc(buf, cap *= 2);
    if (!more) free(buf);
    buf = more;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    fprintf(stderr, "%s: read error\n", path);
    free(buf);
    return -1;
  }
  /* An exact-size copy, so that the sanitizers see a read past the end. */
  uint8_t *data = malloc(len ? len : 1);
  if (!data) {
    free(buf);
    return -1;
  }
  memcpy(data, buf, len);
  free(buf);
  fprintf(stderr, "replay %s (%zu bytes)\n", path, len);
  LLVMFuzzerTestOneInput(data, len);
  free(data);
  g_inputs++;
  return 0;
}

static int skip_dot(const struct dirent *e) { return e->d_name[0] != '.'; }

/* A file, or every file below a directory. 0, or -1 on an unreadable path. */
static int run_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    perror(path);
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) return run_file(path);
  struct dirent **names = NULL;
  int n = scandir(path, &names, skip_dot, alphasort);
  if (n < 0) {
    perror(path);
    return -1;
  }
  int rc = 0;
  for (int i = 0; i < n; i++) {
    size_t len = strlen(path) + strlen(names[i]->d_name) + 2;
    char *child = malloc(len);
    if (!child || rc != 0) {
      rc = -1;
    } else {
      snprintf(child, len, "%s/%s", path, names[i]->d_name);
      rc = run_path(child);
    }
    free(child);
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE_OR_DIRECTORY...\n", argv[0]);
    return 1;
  }
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  for (int i = 1; i < argc; i++)
    if (run_path(argv[i]) != 0) return 1;
  if (g_inputs == 0) {
    fprintf(stderr, "%s: no input found\n", argv[0]);
    return 1;
  }
  fprintf(stderr, "%lu input(s) replayed\n", g_inputs);
  return 0;
}
