/*
 * Landmark cross-check: landmarks time each other too, and a pair whose RTT
 * is below the physical minimum for their declared positions proves that at
 * least one of the two is not where it claims (or its clock or network path
 * is broken). A pair (a, b) violates physics when
 *     s(a, b) > cl_geo_bound_m(rtt, v),
 * s the WGS84 geodesic distance and v the speed (default c, the only speed
 * that makes a violation a proof): when even the cap the engine would draw
 * for that RTT, with the clock's rate margin and a signal path through the
 * Earth's chord allowed for (cl_geo.h), cannot reach the other landmark. A
 * rule any tighter, such as rtt < 2 s / v, would blame honest landmarks for
 * links the engine itself accepts. The smallest explanations of the
 * violations are the minimum vertex covers of the violation graph. A landmark
 * is blamed only when it is in every one of them: the links single it out (a
 * landmark that violates links with several honest peers). When they do not
 * (a single violated link a-b: either end explains it), the landmarks that
 * could be the culprits are named as a group and none of them is blamed.
 * Pure: no I/O.
 */
#ifndef CL_XCHECK_H
#define CL_XCHECK_H

#include <stddef.h>

/* Largest cover (per connected group of violations) searched exactly;
 * beyond it a greedy cover is blamed and flagged as not proven minimal. */
#define CL_XCHECK_MAX_EXACT 30
/* Search-tree nodes allowed per group before the exact search gives up. */
#define CL_XCHECK_MAX_NODES 4000000ul

typedef struct {
  const char *name;
  double lat, lon; /* degrees */
} cl_xcheck_position;

typedef struct {
  const char *a, *b; /* landmark names; order does not matter */
  double rtt_ms;
  size_t line; /* source line for messages; 0 if none */
} cl_xcheck_rtt;

typedef struct {
  size_t a, b;        /* indices into the positions, a < b */
  double rtt_ms;      /* the smallest RTT given for the pair */
  double min_rtt_ms;  /* the least RTT whose cl_geo_bound_m reaches s: the
                       * fastest physics allows (below 2 s / v) */
  double distance_km; /* s */
  double deficit_ms;  /* min_rtt_ms - rtt_ms (> 0) */
  size_t line;        /* line of the row that gave rtt_ms */
} cl_xcheck_violation;

/* Suspects that the violations cannot tell apart: every smallest
 * explanation takes exactly need of the members, and each member is in some
 * of these explanations and not in others. */
typedef struct {
  size_t *members; /* position (vertex) indices, increasing; at least 2 */
  size_t n_members;
  size_t need; /* >= 1, < n_members */
} cl_xcheck_group;

typedef struct {
  size_t n_pairs; /* distinct unordered pairs with at least one RTT */
  /* Violations sorted by decreasing deficit (ties: a, then b). */
  cl_xcheck_violation *violations;
  size_t n_violations;
  /* The landmarks to blame, as position indices in increasing order: those
   * in every minimum vertex cover of the violation graph. */
  size_t *blamed;
  size_t n_blamed;
  /* The other landmarks of the minimum covers, in groups (a group per set of
   * suspects linked by violations no blamed landmark explains), ordered by
   * their first member. Blamed and grouped landmarks are disjoint. */
  cl_xcheck_group *ambiguous;
  size_t n_ambiguous;
  /* 0: some connected group of violations was too large for the exact
   * search; its landmarks in blamed are a greedy cover, not singled out. */
  int blamed_minimal;
} cl_xcheck_result;

/*
 * Checks every pair given in rtts against the positions at speed
 * speed_m_per_s. Rows with a == b are ignored; rows for the same unordered
 * pair are reduced to their minimum RTT. source names the RTT input in
 * messages (may be NULL). Returns 0; CL_ENOTFOUND for a name that is not a
 * position (err: `SOURCE:LINE: unknown landmark "X" in column a`);
 * CL_EINVAL for bad arguments, a non-positive or non-finite RTT, bad
 * coordinates or duplicate position names; CL_ENOMEM. On success the caller
 * frees *out with cl_xcheck_result_free.
 */
int cl_xcheck_run(const cl_xcheck_position *pos, size_t npos, const cl_xcheck_rtt *rtts,
                  size_t nrtt, double speed_m_per_s, const char *source, cl_xcheck_result *out,
                  char *err, size_t errlen);
void cl_xcheck_result_free(cl_xcheck_result *r);

typedef struct {
  size_t *blamed; /* vertices in every minimum cover, increasing (NULL when none) */
  size_t n_blamed;
  cl_xcheck_group *groups; /* the other members of minimum covers */
  size_t n_groups;
  int minimal; /* 0: some component fell back to a greedy cover */
} cl_xcheck_blame;

/*
 * Minimum vertex covers of the graph on vertices 0..n-1 with the given edges
 * (self-loops and repeated edges allowed and harmless): the vertices in
 * every minimum cover, and the groups of those in some but not all, as for
 * cl_xcheck_result. Each connected component is solved exactly
 * (kernelisation, then a bounded search tree with iterative deepening on the
 * cover size) when its cover has at most max_exact vertices and the searches
 * stay within CL_XCHECK_MAX_NODES nodes each; otherwise a greedy cover (by
 * maximum degree) goes into blamed, the component has no groups, and
 * minimal is set to 0. Returns 0, CL_EINVAL or CL_ENOMEM; on success the
 * caller frees *out with cl_xcheck_blame_free.
 */
int cl_xcheck_cover(size_t n, const size_t (*edges)[2], size_t n_edges, size_t max_exact,
                    cl_xcheck_blame *out);
void cl_xcheck_blame_free(cl_xcheck_blame *b);

#endif
