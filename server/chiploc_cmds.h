/*
 * Subcommands of the chiploc CLI. Each takes the arguments after its own
 * name (argv[0] is the subcommand name) and returns the process exit code:
 * 0 success, 1 runtime failure (database, file), 2 usage error.
 */
#ifndef CHIPLOC_CMDS_H
#define CHIPLOC_CMDS_H

int cmd_keygen(int argc, char **argv);
int cmd_pubkey(int argc, char **argv);
int cmd_db(int argc, char **argv);           /* db migrate --db CONNINFO */
int cmd_db_maintain(int argc, char **argv);  /* db maintain [--retain-months N [--drop]] */
int cmd_landmark(int argc, char **argv);     /* landmark add ... */
int cmd_chip(int argc, char **argv);         /* chip enroll ... */
int cmd_measurements(int argc, char **argv); /* measurements [--since DUR] [--chip S] [--json] */
int cmd_status(int argc, char **argv);       /* status [--stale DUR] [--json] */
int cmd_chip_list(int argc, char **argv);    /* chip list [--operator O] [--verdict V] [--json] */
int cmd_chip_show(int argc, char **argv);    /* chip show SERIAL [--window DUR] [--json] */
int cmd_landmark_list(int argc, char **argv); /* landmark list [--stale DUR] [--json] */
int cmd_alerts(int argc, char **argv);       /* alerts [...] [--json]; alerts ack ID --by --reason */
int cmd_links(int argc, char **argv);        /* links [--since DUR] [--json] */
int cmd_region(int argc, char **argv);       /* region import FILE --code-property NAME */
int cmd_locate(int argc, char **argv);       /* locate --landmarks FILE ... */
int cmd_landmarks(int argc, char **argv);    /* landmarks check --positions F --rtts F */
int cmd_verifier(int argc, char **argv);     /* verifier add --name N --pubkey HEX */
int cmd_verify(int argc, char **argv);       /* verify --key FILE [--follow] ... */
int cmd_audit(int argc, char **argv);        /* audit [--json]: 4 when it finds problems */
int cmd_export(int argc, char **argv);       /* export --out FILE.geojson: landmarks, chip regions */
int cmd_attestation(int argc, char **argv);  /* attestation export SERIAL --key F | check FILE */
int cmd_dashboard(int argc, char **argv);    /* dashboard [--listen HOST:PORT]: the web dashboard */

#endif
