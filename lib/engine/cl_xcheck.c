/*
 * Landmark cross-check (cl_xcheck.h): finds the pairs of landmarks whose
 * mutual RTT beats light for their declared positions, and the smallest set
 * of landmarks that explains every such pair. "Beats light" is judged with
 * the engine's own cap of the RTT (cl_geo_bound_m: clock rate margin, chord
 * through the Earth), not by a stricter rule of its own.
 *
 * The violation graph is explained by its minimum vertex covers, found per
 * connected component. Iterative deepening on the cover size k decides
 * whether a cover of size k exists: each step first kernelises (a vertex of
 * degree 1 is covered by taking its neighbour; a vertex of degree > k is in
 * every cover of size <= k), rejects when more than k^2 edges remain, and
 * otherwise branches on a vertex v of maximum degree: v is in the cover, or
 * all its neighbours are. Once the smallest size k* is known, each vertex v
 * is asked two more such questions: is there a cover of size k* with v in it
 * (v taken), and one without it (all its neighbours taken)? A vertex in
 * every smallest cover is blamed: the links single it out. A vertex in some
 * but not all of them is only a suspect, and is reported in a group with the
 * suspects it shares violations with, never blamed alone. Every cover found
 * along the way answers the questions for all of its vertices at once. The
 * searches have a node budget; beyond it, or beyond CL_XCHECK_MAX_EXACT, a
 * greedy cover is blamed instead and flagged.
 */
#include "cl_xcheck.h"
#include "cl_err.h"
#include "cl_geo.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Vertex cover on one connected component -------------------------- */

typedef struct {
  size_t n;
  size_t *start; /* CSR: neighbours of v are adj[start[v] .. start[v+1]) */
  size_t *adj;
  size_t *deg;  /* edges of v whose other end is not in the cover */
  size_t *deg0; /* edges of v in the whole graph */
  unsigned char *in;
  size_t edges; /* edges with neither end in the cover */
  size_t *trail;
  size_t ntrail;
  unsigned long nodes; /* search budget left */
  /* The first smallest cover found (the greedy one after a fallback). */
  unsigned char *best;
  int have_best;
  /* Per vertex: seen in / seen outside some smallest cover. */
  unsigned char *some, *avoid;
} vc_graph;

static void vc_take(vc_graph *g, size_t v) {
  g->in[v] = 1;
  for (size_t i = g->start[v]; i < g->start[v + 1]; i++) {
    size_t u = g->adj[i];
    if (!g->in[u]) {
      g->deg[u]--;
      g->edges--;
    }
  }
  g->trail[g->ntrail++] = v;
}

/* Takes vertices back out of the cover, newest first, down to mark. */
static void vc_undo(vc_graph *g, size_t mark) {
  while (g->ntrail > mark) {
    size_t v = g->trail[--g->ntrail];
    g->in[v] = 0;
    size_t d = 0;
    for (size_t i = g->start[v]; i < g->start[v + 1]; i++) {
      size_t u = g->adj[i];
      if (!g->in[u]) {
        g->deg[u]++;
        g->edges++;
        d++;
      }
    }
    g->deg[v] = d;
  }
}

/* Vertex of maximum live degree, lowest index on ties. */
static size_t vc_maxdeg(const vc_graph *g) {
  size_t best = 0, bd = 0;
  for (size_t v = 0; v < g->n; v++)
    if (!g->in[v] && g->deg[v] > bd) {
      bd = g->deg[v];
      best = v;
    }
  return best;
}

/* Notes the current cover (every vertex with in[v]), one of the smallest:
 * its members can be in a smallest cover, the others can be left out. */
static void vc_record(vc_graph *g) {
  for (size_t v = 0; v < g->n; v++) {
    if (g->in[v])
      g->some[v] = 1;
    else
      g->avoid[v] = 1;
  }
  if (!g->have_best) {
    memcpy(g->best, g->in, g->n);
    g->have_best = 1;
  }
}

/* Takes every neighbour of v still outside the cover; returns how many. */
static size_t vc_take_neighbours(vc_graph *g, size_t v) {
  size_t d = 0;
  for (size_t i = g->start[v]; i < g->start[v + 1]; i++) {
    size_t u = g->adj[i];
    if (!g->in[u]) {
      vc_take(g, u);
      d++;
    }
  }
  return d;
}

/*
 * Is there a cover of at most k more vertices? Kernelises, then branches.
 * Records the cover it finds. Returns 1 (yes), 0 (no) or -1 (budget spent).
 * The graph is left as it was found.
 */
static int vc_decide(vc_graph *g, long k) {
  if (g->nodes == 0)
    return -1;
  g->nodes--;
  size_t mark = g->ntrail;
  int r = 0;
  for (int changed = 1; changed;) {
    changed = 0;
    for (size_t v = 0; v < g->n; v++) {
      if (g->in[v] || g->deg[v] == 0)
        continue;
      size_t take;
      if ((long)g->deg[v] > k) {
        take = v; /* in every cover of size <= k */
      } else if (g->deg[v] == 1) {
        /* Some smallest cover takes the neighbour instead of v. */
        take = v;
        for (size_t i = g->start[v]; i < g->start[v + 1]; i++)
          if (!g->in[g->adj[i]])
            take = g->adj[i];
      } else {
        continue;
      }
      if (k == 0)
        goto out;
      vc_take(g, take);
      k--;
      changed = 1;
    }
  }
  if (g->edges == 0) {
    vc_record(g);
    r = 1;
    goto out;
  }
  /* Every vertex now has degree <= k, so k vertices cover at most k^2 edges. */
  if (k <= 0 || g->edges > (size_t)k * (size_t)k)
    goto out;
  size_t v = vc_maxdeg(g);
  size_t m2 = g->ntrail;
  vc_take(g, v);
  r = vc_decide(g, k - 1);
  vc_undo(g, m2);
  if (r != 0)
    goto out;
  if ((long)g->deg[v] <= k) {
    size_t d = vc_take_neighbours(g, v);
    r = vc_decide(g, k - (long)d);
    vc_undo(g, m2);
  }
out:
  vc_undo(g, mark);
  return r;
}

/* Greedy cover: repeatedly the vertex of most uncovered edges (ties: more
 * edges in all, then lower index), then members whose neighbours are all in the
 * cover are dropped again. Leaves the result in best. */
static void vc_greedy(vc_graph *g) {
  while (g->edges > 0) {
    size_t best = 0, bd = 0;
    for (size_t v = 0; v < g->n; v++) {
      if (g->in[v] || g->deg[v] == 0)
        continue;
      if (g->deg[v] > bd || (g->deg[v] == bd && g->deg0[v] > g->deg0[best])) {
        bd = g->deg[v];
        best = v;
      }
    }
    vc_take(g, best);
  }
  memcpy(g->best, g->in, g->n);
  vc_undo(g, 0);
  for (size_t v = g->n; v-- > 0;) {
    if (!g->best[v])
      continue;
    int redundant = 1;
    for (size_t i = g->start[v]; i < g->start[v + 1] && redundant; i++)
      if (!g->best[g->adj[i]])
        redundant = 0;
    if (redundant)
      g->best[v] = 0;
  }
  g->have_best = 1;
}

/* Size of a maximal matching: a lower bound on any cover. */
static size_t vc_matching_bound(const vc_graph *g) {
  unsigned char *used = calloc(g->n, 1);
  if (!used)
    return 0;
  size_t m = 0;
  for (size_t v = 0; v < g->n; v++) {
    if (used[v])
      continue;
    for (size_t i = g->start[v]; i < g->start[v + 1]; i++) {
      size_t u = g->adj[i];
      if (!used[u]) {
        used[u] = used[v] = 1;
        m++;
        break;
      }
    }
  }
  free(used);
  return m;
}

/* Vertex classes in a component's result. */
enum { VC_CLEAR, VC_BLAMED, VC_SUSPECT };

/*
 * Solves one component in g (fully built): cls[v] receives VC_BLAMED for a
 * vertex in every smallest cover, VC_SUSPECT for one in some but not all,
 * VC_CLEAR for one in none; g->best holds one smallest cover. Returns 1 if
 * proven, 0 if the greedy cover had to be used (its members VC_BLAMED).
 */
static int vc_solve(vc_graph *g, size_t max_exact, unsigned char *cls) {
  size_t lb = vc_matching_bound(g);
  long kstar = -1;
  int ok = 0;
  if (lb <= max_exact) {
    g->nodes = CL_XCHECK_MAX_NODES;
    for (size_t k = lb; k <= max_exact; k++) {
      int r = vc_decide(g, (long)k);
      if (r < 0)
        break;
      if (r == 1) {
        kstar = (long)k;
        break;
      }
    }
  }
  if (kstar >= 0) {
    g->nodes = CL_XCHECK_MAX_NODES;
    ok = 1;
    for (size_t v = 0; v < g->n && ok; v++) {
      size_t mark = g->ntrail;
      int r = 1;
      if (!g->some[v]) {
        /* kstar >= 1: the component has an edge. */
        vc_take(g, v);
        r = vc_decide(g, kstar - 1);
        vc_undo(g, mark);
      }
      /* More than k* neighbours cannot all be in a cover of size k*. */
      if (r == 1 && !g->avoid[v] && (long)g->deg0[v] <= kstar) {
        size_t d = vc_take_neighbours(g, v);
        r = vc_decide(g, kstar - (long)d);
        vc_undo(g, mark);
      }
      ok = r >= 0;
    }
  }
  if (!ok) {
    g->have_best = 0;
    vc_greedy(g);
    for (size_t v = 0; v < g->n; v++)
      cls[v] = g->best[v] ? VC_BLAMED : VC_CLEAR;
    return 0;
  }
  for (size_t v = 0; v < g->n; v++)
    cls[v] = !g->some[v] ? VC_CLEAR : g->avoid[v] ? VC_SUSPECT : VC_BLAMED;
  return 1;
}

typedef struct {
  size_t u, v;
} edge;

static int cmp_edge(const void *a, const void *b) {
  const edge *x = a, *y = b;
  if (x->u != y->u)
    return x->u < y->u ? -1 : 1;
  return x->v < y->v ? -1 : x->v > y->v;
}

static int cmp_size(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_group(const void *a, const void *b) {
  const cl_xcheck_group *x = a, *y = b;
  return x->members[0] < y->members[0] ? -1 : x->members[0] > y->members[0];
}

void cl_xcheck_blame_free(cl_xcheck_blame *b) {
  if (!b)
    return;
  free(b->blamed);
  for (size_t i = 0; i < b->n_groups; i++)
    free(b->groups[i].members);
  free(b->groups);
  *b = (cl_xcheck_blame){0};
}

/*
 * Adds to out the suspect groups of the solved component g (global indices
 * comp): the suspects linked through violations that no blamed vertex
 * explains. Every smallest cover is the blamed vertices plus a smallest cover
 * of each such group's violations, so g->best counts how many of a group
 * every smallest explanation takes. queue and mark have room for g->n.
 */
static int add_groups(const vc_graph *g, const unsigned char *cls, const size_t *comp,
                      size_t *queue, unsigned char *mark, cl_xcheck_blame *out) {
  memset(mark, 0, g->n);
  for (size_t s = 0; s < g->n; s++) {
    if (cls[s] != VC_SUSPECT || mark[s])
      continue;
    size_t nq = 0, head = 0, nmem = 0, need = 0;
    queue[nq++] = s;
    mark[s] = 1;
    while (head < nq) {
      size_t v = queue[head++];
      nmem += cls[v] == VC_SUSPECT;
      need += g->best[v];
      for (size_t i = g->start[v]; i < g->start[v + 1]; i++) {
        size_t u = g->adj[i];
        if (!mark[u] && cls[u] != VC_BLAMED) {
          mark[u] = 1;
          queue[nq++] = u;
        }
      }
    }
    cl_xcheck_group *ng = realloc(out->groups, (out->n_groups + 1) * sizeof *ng);
    if (!ng)
      return CL_ENOMEM;
    out->groups = ng;
    size_t *mem = malloc(nmem * sizeof *mem);
    if (!mem)
      return CL_ENOMEM;
    /* The queue holds local indices; members go out in increasing order. */
    size_t k = 0;
    for (size_t v = 0; v < g->n; v++)
      if (mark[v] == 1 && cls[v] == VC_SUSPECT) {
        mem[k++] = comp[v];
        mark[v] = 2;
      }
    for (size_t i = 0; i < nq; i++)
      mark[queue[i]] = 2;
    out->groups[out->n_groups++] = (cl_xcheck_group){mem, nmem, need};
  }
  return CL_OK;
}

int cl_xcheck_cover(size_t n, const size_t (*edges)[2], size_t n_edges, size_t max_exact,
                    cl_xcheck_blame *res) {
  if (!res || (n_edges && !edges))
    return CL_EINVAL;
  *res = (cl_xcheck_blame){0};
  res->minimal = 1;
  /* Normalise: u < v, no self-loops, no repeats. */
  edge *e = malloc((n_edges ? n_edges : 1) * sizeof *e);
  if (!e)
    return CL_ENOMEM;
  size_t m = 0;
  for (size_t i = 0; i < n_edges; i++) {
    size_t a = edges[i][0], b = edges[i][1];
    if (a >= n || b >= n) {
      free(e);
      return CL_EINVAL;
    }
    if (a == b)
      continue;
    e[m++] = a < b ? (edge){a, b} : (edge){b, a};
  }
  qsort(e, m, sizeof *e, cmp_edge);
  size_t w = 0;
  for (size_t i = 0; i < m; i++)
    if (w == 0 || cmp_edge(&e[i], &e[w - 1]) != 0)
      e[w++] = e[i];
  m = w;

  int rc = CL_ENOMEM;
  size_t *start = calloc(n + 1, sizeof *start);
  size_t *adj = malloc((2 * m + 1) * sizeof *adj);
  size_t *comp = malloc((n + 1) * sizeof *comp);   /* vertices of one component */
  size_t *local = malloc((n + 1) * sizeof *local); /* global -> local index */
  size_t *queue = malloc((n + 1) * sizeof *queue);
  unsigned char *seen = calloc(n + 1, 1);
  unsigned char *cls = malloc(n + 1);
  unsigned char *mark = malloc(n + 1);
  size_t *out = malloc((n + 1) * sizeof *out);
  size_t nout = 0;
  vc_graph g = {0};
  if (!start || !adj || !comp || !local || !queue || !seen || !cls || !mark || !out)
    goto done;
  for (size_t i = 0; i < m; i++) {
    start[e[i].u + 1]++;
    start[e[i].v + 1]++;
  }
  for (size_t v = 0; v < n; v++)
    start[v + 1] += start[v];
  {
    size_t *fill = malloc((n + 1) * sizeof *fill);
    if (!fill)
      goto done;
    memcpy(fill, start, n * sizeof *fill);
    for (size_t i = 0; i < m; i++) {
      adj[fill[e[i].u]++] = e[i].v;
      adj[fill[e[i].v]++] = e[i].u;
    }
    free(fill);
  }

  for (size_t s = 0; s < n; s++) {
    if (seen[s] || start[s + 1] == start[s])
      continue;
    /* Collect the component of s (breadth first, comp doubles as the queue). */
    size_t nc = 0, head = 0;
    comp[nc++] = s;
    seen[s] = 1;
    while (head < nc) {
      size_t v = comp[head++];
      for (size_t i = start[v]; i < start[v + 1]; i++)
        if (!seen[adj[i]]) {
          seen[adj[i]] = 1;
          comp[nc++] = adj[i];
        }
    }
    /* Local indices follow global order, and so do the groups' members. */
    qsort(comp, nc, sizeof *comp, cmp_size);
    size_t ne2 = 0;
    for (size_t i = 0; i < nc; i++) {
      local[comp[i]] = i;
      ne2 += start[comp[i] + 1] - start[comp[i]];
    }
    g = (vc_graph){.n = nc};
    g.start = malloc((nc + 1) * sizeof *g.start);
    g.adj = malloc(ne2 * sizeof *g.adj);
    g.deg = malloc(nc * sizeof *g.deg);
    g.deg0 = malloc(nc * sizeof *g.deg0);
    g.in = calloc(nc, 1);
    g.best = calloc(nc, 1);
    g.some = calloc(nc, 1);
    g.avoid = calloc(nc, 1);
    g.trail = malloc(nc * sizeof *g.trail);
    if (!g.start || !g.adj || !g.deg || !g.deg0 || !g.in || !g.best || !g.some || !g.avoid ||
        !g.trail)
      goto done;
    size_t k = 0;
    for (size_t i = 0; i < nc; i++) {
      size_t v = comp[i];
      g.start[i] = k;
      for (size_t j = start[v]; j < start[v + 1]; j++)
        g.adj[k++] = local[adj[j]];
      g.deg[i] = g.deg0[i] = start[v + 1] - start[v];
    }
    g.start[nc] = k;
    g.edges = ne2 / 2;
    if (!vc_solve(&g, max_exact, cls))
      res->minimal = 0;
    for (size_t i = 0; i < nc; i++)
      if (cls[i] == VC_BLAMED)
        out[nout++] = comp[i];
    if (add_groups(&g, cls, comp, queue, mark, res) != CL_OK)
      goto done;
    free(g.start);
    free(g.adj);
    free(g.deg);
    free(g.deg0);
    free(g.in);
    free(g.best);
    free(g.some);
    free(g.avoid);
    free(g.trail);
    g = (vc_graph){0};
  }
  qsort(out, nout, sizeof *out, cmp_size);
  if (res->n_groups > 1)
    qsort(res->groups, res->n_groups, sizeof *res->groups, cmp_group);
  rc = CL_OK;
done:
  free(g.start);
  free(g.adj);
  free(g.deg);
  free(g.deg0);
  free(g.in);
  free(g.best);
  free(g.some);
  free(g.avoid);
  free(g.trail);
  free(e);
  free(start);
  free(adj);
  free(comp);
  free(local);
  free(queue);
  free(seen);
  free(cls);
  free(mark);
  if (rc == CL_OK && nout > 0) {
    res->blamed = out;
    res->n_blamed = nout;
  } else {
    free(out);
  }
  if (rc != CL_OK)
    cl_xcheck_blame_free(res);
  return rc;
}

/* ---- The cross-check ------------------------------------------------------ */

typedef struct {
  const char *name;
  size_t idx;
} name_idx;

static int cmp_name_idx(const void *a, const void *b) {
  return strcmp(((const name_idx *)a)->name, ((const name_idx *)b)->name);
}

typedef struct {
  size_t lo, hi;
  double rtt_ms;
  size_t line;
} pair_rtt;

static int cmp_pair_rtt(const void *a, const void *b) {
  const pair_rtt *x = a, *y = b;
  if (x->lo != y->lo)
    return x->lo < y->lo ? -1 : 1;
  if (x->hi != y->hi)
    return x->hi < y->hi ? -1 : 1;
  if (x->rtt_ms != y->rtt_ms)
    return x->rtt_ms < y->rtt_ms ? -1 : 1;
  return x->line < y->line ? -1 : x->line > y->line;
}

static int cmp_violation(const void *a, const void *b) {
  const cl_xcheck_violation *x = a, *y = b;
  if (x->deficit_ms != y->deficit_ms)
    return x->deficit_ms > y->deficit_ms ? -1 : 1;
  if (x->a != y->a)
    return x->a < y->a ? -1 : 1;
  return x->b < y->b ? -1 : x->b > y->b;
}

/*
 * The cap radius, in metres, that the engine draws for an RTT of rtt_ms
 * milliseconds at speed v: cl_geo_bound_m, which allows for the landmark
 * clock's rate margin and for a signal taking the chord through the Earth.
 * A link is faster than light only when the declared distance exceeds it;
 * anything stricter would blame a landmark for a link that the engine's own
 * caps accept. The test and min_rtt_ms both go through this one function, so
 * the threshold that is reported is the one that decided.
 */
static double bound_of_ms(double rtt_ms, double v) { return cl_geo_bound_m(rtt_ms / 1e3, v); }

/*
 * The shortest RTT, in ms, that the engine allows between two points s > 0
 * metres apart at speed v: the least r with bound_of_ms(r, v) >= s, found by
 * bisection (the bound does not decrease with the RTT). It is not re-derived
 * in closed form so that it can never drift from cl_geo_bound_m. 2 s / v
 * brackets it from above: that RTT's path is s (1 + CL_CLOCK_RATE_MARGIN),
 * and a cap is never smaller than its path. Every RTT below the result is a
 * violation, every RTT at or above it is not.
 */
static double min_rtt_ms(double s, double v) {
  double lo = 0.0, hi = 2.0 * s / v * 1e3; /* bound(lo) < s <= bound(hi) */
  assert(s > 0 && bound_of_ms(hi, v) >= s);
  for (int i = 0; i < 1100; i++) { /* ends far sooner: adjacent doubles */
    double mid = lo + (hi - lo) / 2.0;
    if (!(mid > lo && mid < hi))
      break;
    if (bound_of_ms(mid, v) < s)
      lo = mid;
    else
      hi = mid;
  }
  return hi;
}

/* Index of name among the sorted positions, or -1. */
static long find_name(const name_idx *sorted, size_t n, const char *name) {
  name_idx key = {name, 0};
  const name_idx *hit = bsearch(&key, sorted, n, sizeof *sorted, cmp_name_idx);
  return hit ? (long)hit->idx : -1;
}

void cl_xcheck_result_free(cl_xcheck_result *r) {
  if (!r)
    return;
  free(r->violations);
  free(r->blamed);
  for (size_t i = 0; i < r->n_ambiguous; i++)
    free(r->ambiguous[i].members);
  free(r->ambiguous);
  *r = (cl_xcheck_result){0};
}

int cl_xcheck_run(const cl_xcheck_position *pos, size_t npos, const cl_xcheck_rtt *rtts,
                  size_t nrtt, double speed_m_per_s, const char *source, cl_xcheck_result *out,
                  char *err, size_t errlen) {
  if (!out || (npos && !pos) || (nrtt && !rtts) || !(speed_m_per_s > 0) || !isfinite(speed_m_per_s))
    return CL_EINVAL;
  *out = (cl_xcheck_result){0};
  out->blamed_minimal = 1;
  const char *src = source ? source : "rtts";
  for (size_t i = 0; i < npos; i++) {
    if (!pos[i].name || !pos[i].name[0] || !isfinite(pos[i].lat) || !isfinite(pos[i].lon) ||
        fabs(pos[i].lat) > 90 || fabs(pos[i].lon) > 180) {
      cl_err_set(err, errlen, "position %zu: missing name or bad coordinates", i + 1);
      return CL_EINVAL;
    }
  }
  name_idx *sorted = malloc((npos ? npos : 1) * sizeof *sorted);
  pair_rtt *pairs = malloc((nrtt ? nrtt : 1) * sizeof *pairs);
  cl_xcheck_violation *viol = NULL;
  size_t(*edges)[2] = NULL;
  int rc = CL_ENOMEM;
  if (!sorted || !pairs)
    goto done;
  for (size_t i = 0; i < npos; i++)
    sorted[i] = (name_idx){pos[i].name, i};
  qsort(sorted, npos, sizeof *sorted, cmp_name_idx);
  for (size_t i = 1; i < npos; i++) {
    if (strcmp(sorted[i].name, sorted[i - 1].name) == 0) {
      cl_err_set(err, errlen, "duplicate position name \"%s\"", sorted[i].name);
      rc = CL_EINVAL;
      goto done;
    }
  }

  size_t np = 0;
  for (size_t i = 0; i < nrtt; i++) {
    const cl_xcheck_rtt *r = &rtts[i];
    size_t line = r->line ? r->line : i + 1;
    const char *names[2] = {r->a, r->b};
    long idx[2];
    for (int j = 0; j < 2; j++) {
      idx[j] = names[j] ? find_name(sorted, npos, names[j]) : -1;
      if (idx[j] < 0) {
        cl_err_set(err, errlen,
                   "%s:%zu: unknown landmark \"%s\" in column %s (not in the positions)", src,
                   line, names[j] ? names[j] : "", j == 0 ? "a" : "b");
        rc = CL_ENOTFOUND;
        goto done;
      }
    }
    if (!(r->rtt_ms > 0) || !isfinite(r->rtt_ms)) {
      cl_err_set(err, errlen, "%s:%zu: column rtt_ms: %g is not a positive finite number", src,
                 line, r->rtt_ms);
      rc = CL_EINVAL;
      goto done;
    }
    if (idx[0] == idx[1])
      continue;
    size_t a = (size_t)idx[0], b = (size_t)idx[1];
    pairs[np++] = (pair_rtt){a < b ? a : b, a < b ? b : a, r->rtt_ms, line};
  }
  qsort(pairs, np, sizeof *pairs, cmp_pair_rtt);

  size_t nv = 0, cap = 0;
  for (size_t i = 0; i < np; i++) {
    /* Sorted by RTT within a pair: the first row of each pair is its minimum. */
    if (i > 0 && pairs[i].lo == pairs[i - 1].lo && pairs[i].hi == pairs[i - 1].hi)
      continue;
    out->n_pairs++;
    const cl_xcheck_position *p = &pos[pairs[i].lo], *q = &pos[pairs[i].hi];
    double s = cl_geo_distance_m(p->lat, p->lon, q->lat, q->lon);
    if (!(s > bound_of_ms(pairs[i].rtt_ms, speed_m_per_s)))
      continue;
    double min_ms = min_rtt_ms(s, speed_m_per_s);
    assert(pairs[i].rtt_ms < min_ms);
    if (nv == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      cl_xcheck_violation *nvv = realloc(viol, ncap * sizeof *nvv);
      if (!nvv)
        goto done;
      viol = nvv;
      cap = ncap;
    }
    viol[nv++] = (cl_xcheck_violation){.a = pairs[i].lo,
                                       .b = pairs[i].hi,
                                       .rtt_ms = pairs[i].rtt_ms,
                                       .min_rtt_ms = min_ms,
                                       .distance_km = s / 1e3,
                                       .deficit_ms = min_ms - pairs[i].rtt_ms,
                                       .line = pairs[i].line};
  }
  if (nv > 0) {
    qsort(viol, nv, sizeof *viol, cmp_violation);
    edges = malloc(nv * sizeof *edges);
    if (!edges)
      goto done;
    for (size_t i = 0; i < nv; i++) {
      edges[i][0] = viol[i].a;
      edges[i][1] = viol[i].b;
    }
    cl_xcheck_blame b;
    rc = cl_xcheck_cover(npos, (const size_t(*)[2])edges, nv, CL_XCHECK_MAX_EXACT, &b);
    if (rc < 0)
      goto done;
    out->blamed = b.blamed;
    out->n_blamed = b.n_blamed;
    out->ambiguous = b.groups;
    out->n_ambiguous = b.n_groups;
    out->blamed_minimal = b.minimal;
  }
  out->violations = viol;
  out->n_violations = nv;
  viol = NULL;
  rc = CL_OK;
done:
  free(sorted);
  free(pairs);
  free(viol);
  free(edges);
  if (rc < 0)
    cl_xcheck_result_free(out);
  return rc;
}
