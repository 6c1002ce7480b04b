/* chiploc keygen / pubkey: create key files and print public keys. */
#include "chiploc_cmds.h"
#include "cl_err.h"
#include "cl_key.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

int cmd_keygen(int argc, char **argv) {
  static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *out = NULL;
  int o;
  optind = 1;
  while ((o = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
    switch (o) {
    case 'o': out = optarg; break;
    case 'h':
      printf("usage: chiploc keygen --out FILE\n"
             "Creates a new Ed25519 key file (mode 0600; never overwrites) and prints\n"
             "its public key as 64 hex characters.\n");
      return 0;
    default: return 2;
    }
  }
  if (!out || optind != argc) {
    fprintf(stderr, "usage: chiploc keygen --out FILE\n");
    return 2;
  }
  cl_key *k = NULL;
  if (cl_key_generate(&k) != CL_OK) {
    fprintf(stderr, "chiploc: out of memory\n");
    return 1;
  }
  int rc = cl_key_save(k, out);
  if (rc == CL_EEXIST) {
    fprintf(stderr, "chiploc: %s already exists; refusing to overwrite a key file\n", out);
    cl_key_destroy(&k);
    return 1;
  }
  if (rc != CL_OK) {
    fprintf(stderr, "chiploc: cannot write %s: %s\n", out, strerror(errno));
    cl_key_destroy(&k);
    return 1;
  }
  char hex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(k), hex);
  printf("%s\n", hex);
  cl_key_destroy(&k);
  return 0;
}

int cmd_pubkey(int argc, char **argv) {
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    printf("usage: chiploc pubkey FILE\nPrints the public key of a key file.\n");
    return 0;
  }
  if (argc != 2) {
    fprintf(stderr, "usage: chiploc pubkey FILE\n");
    return 2;
  }
  cl_key *k = NULL;
  char err[256];
  if (cl_key_load(&k, argv[1], err, sizeof err) != CL_OK) {
    fprintf(stderr, "chiploc: %s: %s\n", argv[1], err);
    return 1;
  }
  char hex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(cl_key_public(k), hex);
  printf("%s\n", hex);
  cl_key_destroy(&k);
  return 0;
}
