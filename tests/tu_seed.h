/*
 * The dashboard's world, seeded into an empty database with genuine signed
 * records and the real verifier, for tests/test_dashboard_api.c and the
 * browser test (through the tests/dashboard_seed tool). Without Check.
 *
 * Five landmarks: lm-par (Paris), lm-fra (Frankfurt), lm-lon (London)
 * measure; lm-quiet (Berlin) is silent; lm-old (Lille) is retired. Four
 * regions: FRA and DEU (boxes around France and Germany), GBR (Britain) and
 * EDGE (a box whose western edge runs through Paris). Chips, each measured
 * by all three measuring landmarks a minute or two before the seeding
 * (round trips of Paris, Frankfurt and London as from Paris) unless said:
 *
 *   S-PARIS     op-a  site Paris, allowed FRA    CONSISTENT SITE_CONSISTENT INSIDE
 *   S-SMUGGLED  op-b  site Tokyo, allowed FRA    SITE_EXCLUDED (alert site_excluded)
 *   S-OUTSIDE   op-b  site Paris, allowed DEU    OUTSIDE (alert outside_region)
 *   S-EDGE      op-a  site Paris, allowed EDGE   UNDETERMINED
 *   S-FEW       op-a  site Paris, lm-par only    INSUFFICIENT
 *   TU_SEED_HOSTILE_SERIAL (operator TU_SEED_HOSTILE_OPERATOR), as S-PARIS
 *   S-OFF       op-a  as S-PARIS, deactivated before the rounds: never attested
 *   S-LATE      op-c  site Paris, enrolled after the rounds: never attested
 *
 * plus landmark links among the measuring landmarks. The real `chiploc
 * verify` (verifier v-dash) attests TU_SEED_ROUNDS rounds, 10 s apart, so
 * every attested chip's chain has that many records.
 */
#ifndef TU_SEED_H
#define TU_SEED_H

#include <stddef.h>

#define TU_SEED_HOSTILE_SERIAL "<script>alert(1)</script>"
#define TU_SEED_HOSTILE_OPERATOR "\"><img src=x onerror=alert(2)>"
#define TU_SEED_VERIFIER "v-dash"
#define TU_SEED_ROUNDS 3
#define TU_SEED_CHIPS 8
#define TU_SEED_LANDMARKS 5

/*
 * Seeds the empty database at conninfo (migrating it first) as above.
 * chiploc is the path of the built chiploc binary; dir a directory for the
 * verifier's key and the commands' output (dir/seed.log). Returns 0, or -1
 * with err saying which step failed.
 */
int tu_seed_dashboard(const char *conninfo, const char *chiploc, const char *dir, char *err,
                      size_t errlen);

#endif
