/*
 * chiploc: the command-line tool of treaty bodies and operators. Wiring only:
 * it dispatches to the subcommands in chiploc_keys.c and chiploc_db.c.
 * Exit codes: 0 success, 1 runtime failure, 2 usage error.
 */
#include "chiploc_cmds.h"
#include "cl_log.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
  fprintf(f,
          "usage: chiploc COMMAND [ARGS]\n"
          "\n"
          "keys:\n"
          "  keygen --out FILE               create an Ed25519 key file (mode 0600) and print\n"
          "                                  its public key\n"
          "  pubkey FILE                     print the public key of a key file\n"
          "database (--db CONNINFO, or the CHIPLOC_DB environment variable):\n"
          "  db migrate                      apply missing schema migrations\n"
          "  db maintain [--retain-months N] [--claims-days N]\n"
          "                                  make the coming months' partitions; detach old\n"
          "                                  ones; delete old verifier pool claims\n"
          "  landmark add --name N --pubkey HEX --lat LAT --lon LON\n"
          "  chip enroll --pubkey HEX --serial S --operator O --site LAT,LON [--allowed CODE,...]\n"
          "  status [--json]                 the fleet at a glance: verdicts, landmarks, alerts\n"
          "  chip list [--operator O] [--verdict V] [--json]\n"
          "                                  chips with their latest verdicts\n"
          "  chip show SERIAL [--json]       one chip: verdicts, round trips per landmark, alerts\n"
          "  landmark list [--json]          landmarks: state, recent measurements and links\n"
          "  alerts [--chip S] [--kind K] [--all|--since DURATION] [--json]\n"
          "                                  open alerts (and recently cleared ones)\n"
          "  alerts ack ID --by WHO --reason TEXT\n"
          "                                  acknowledge an open alert\n"
          "  measurements [--since DURATION] [--chip S] [--json]\n"
          "                                  fastest round trips per chip and landmark\n"
          "  links [--since DURATION] [--json]\n"
          "                                  fastest round trips between landmarks\n"
          "  region import FILE.geojson --code-property NAME\n"
          "                                  load allowed regions (polygons) into the database\n"
          "  verifier add --name N --pubkey HEX\n"
          "                                  register a verifier key\n"
          "  verify --key FILE [--window S] [--interval S] [--follow]\n"
          "                                  attest every chip for the current round\n"
          "  audit [--json]                  re-verify all signed records and chains\n"
          "  export --out FILE.geojson       landmarks, chip regions and sites as GeoJSON\n"
          "  attestation export SERIAL --key VERIFIER_KEYFILE [--round-end UNIX_S|--latest]\n"
          "                     [--out FILE|-]\n"
          "                                  one chip's verified attestation as a signed JWS\n"
          "  dashboard [--listen HOST:PORT] [--assets DIR]\n"
          "                                  serve the read-only web dashboard (map, chips,\n"
          "                                  alerts) and its JSON/GeoJSON API\n"
          "offline:\n"
          "  locate --landmarks FILE.csv [--speed c|fibre|M_PER_S] [--site LAT,LON]\n"
          "         [--regions FILE.geojson --allowed CODE[,CODE...]] [--json] [--geojson OUT]\n"
          "                                  feasible region and verdicts for one chip\n"
          "  landmarks check --positions FILE.csv --rtts FILE.csv [--json]\n"
          "                                  flag landmark pairs faster than light\n"
          "  attestation check FILE|- --verifier-key HEX [--json]\n"
          "                                  verify an exported attestation (JWS)\n"
          "\n"
          "  chiploc COMMAND --help          help for one command\n"
          "  chiploc --version\n");
}

int main(int argc, char **argv) {
  cl_log_set_prog("chiploc");
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0) {
    printf("chiploc %s\n", CHIPLOC_VERSION);
    return 0;
  }
  if (sodium_init() < 0) {
    fprintf(stderr, "chiploc: libsodium failed to initialise\n");
    return 1;
  }
  static const struct {
    const char *name;
    int (*fn)(int, char **);
  } cmds[] = {{"keygen", cmd_keygen},     {"pubkey", cmd_pubkey}, {"db", cmd_db},
              {"landmark", cmd_landmark}, {"chip", cmd_chip},     {"measurements", cmd_measurements},
              {"region", cmd_region},     {"locate", cmd_locate}, {"landmarks", cmd_landmarks},
              {"verifier", cmd_verifier}, {"verify", cmd_verify},
              {"audit", cmd_audit},       {"export", cmd_export},
              {"attestation", cmd_attestation},
              {"dashboard", cmd_dashboard},
              {"status", cmd_status},     {"alerts", cmd_alerts}, {"links", cmd_links}};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(cmd, cmds[i].name) == 0) return cmds[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "chiploc: unknown command '%s' (try chiploc --help)\n", cmd);
  return 2;
}
