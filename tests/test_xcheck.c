/*
 * Landmark cross-check (lib/engine/cl_xcheck.h) and the CSV reader that feeds it
 * (lib/io/cl_csv.h). Hand-made positions: honest cities whose RTTs are 1.5x the
 * light minimum, landmarks that claim to be elsewhere than they are, and the
 * blame that must follow (only a landmark the links single out is blamed;
 * the others are named as suspects in groups); links at the edge of the
 * engine's allowance for the chord and the clock's rate; the blamed and
 * suspected vertices against brute force over every minimum vertex cover of
 * random graphs with a fixed seed, and the greedy fallback.
 * The CSV reader: a golden file in every accepted variant, then one defect
 * at a time with the exact message expected.
 */
#include "cl_csv.h"
#include "cl_err.h"
#include "cl_geo.h"
#include "cl_probe.h"
#include "cl_xcheck.h"
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  double lat, lon;
} city;

static const city PARIS = {"Paris", 48.8566, 2.3522};
static const city BERLIN = {"Berlin", 52.52, 13.405};
static const city MADRID = {"Madrid", 40.4168, -3.7038};
static const city ROME = {"Rome", 41.9028, 12.4964};
static const city SYDNEY = {"Sydney", -33.8688, 151.2093};
static const city TOKYO = {"Tokyo", 35.6762, 139.6503};

/* Light's round trip between two places, ms. */
static double light_ms(const city *a, const city *b) {
  return 2.0 * cl_geo_distance_m(a->lat, a->lon, b->lat, b->lon) / CL_SPEED_C * 1e3;
}

/* A world of n landmarks: declared positions and true positions. RTTs
 * follow the true positions at 1.5x the light minimum (plus 0.1 ms). */
typedef struct {
  cl_xcheck_position pos[80];
  city truth[80];
  cl_xcheck_rtt rtt[4000];
  size_t n, nrtt;
} world;

static void add_landmark(world *w, const char *name, const city *declared, const city *truth) {
  w->pos[w->n] = (cl_xcheck_position){name, declared->lat, declared->lon};
  w->truth[w->n] = *truth;
  w->n++;
}

static void all_pairs(world *w) {
  for (size_t i = 0; i < w->n; i++)
    for (size_t j = i + 1; j < w->n; j++) {
      double ms = 1.5 * light_ms(&w->truth[i], &w->truth[j]) + 0.1;
      /* Alternate directions so the order of names is exercised. */
      if ((i + j) % 2)
        w->rtt[w->nrtt] = (cl_xcheck_rtt){w->pos[i].name, w->pos[j].name, ms, w->nrtt + 2};
      else
        w->rtt[w->nrtt] = (cl_xcheck_rtt){w->pos[j].name, w->pos[i].name, ms, w->nrtt + 2};
      w->nrtt++;
    }
}

static void honest_four(world *w) {
  memset(w, 0, sizeof *w);
  add_landmark(w, "Paris", &PARIS, &PARIS);
  add_landmark(w, "Berlin", &BERLIN, &BERLIN);
  add_landmark(w, "Madrid", &MADRID, &MADRID);
  add_landmark(w, "Rome", &ROME, &ROME);
}

static int run(world *w, cl_xcheck_result *r) {
  char err[256] = "";
  int rc = cl_xcheck_run(w->pos, w->n, w->rtt, w->nrtt, CL_SPEED_C, "rtts.csv", r, err, sizeof err);
  ck_assert_msg(rc == CL_OK, "cl_xcheck_run: %d %s", rc, err);
  return rc;
}

/* Every violation has at least one end in the blame set or a group. */
static void assert_cover(const cl_xcheck_result *r) {
  for (size_t i = 0; i < r->n_violations; i++) {
    int hit = 0;
    for (size_t j = 0; j < r->n_blamed; j++)
      hit |= r->blamed[j] == r->violations[i].a || r->blamed[j] == r->violations[i].b;
    for (size_t g = 0; g < r->n_ambiguous; g++)
      for (size_t j = 0; j < r->ambiguous[g].n_members; j++)
        hit |= r->ambiguous[g].members[j] == r->violations[i].a ||
               r->ambiguous[g].members[j] == r->violations[i].b;
    ck_assert_msg(hit, "violation %zu not covered", i);
  }
}

/* Group g of r has exactly the given members, and need. */
static void assert_group(const cl_xcheck_result *r, size_t g, const size_t *members, size_t n,
                         size_t need) {
  ck_assert_uint_lt(g, r->n_ambiguous);
  ck_assert_uint_eq(r->ambiguous[g].n_members, n);
  for (size_t i = 0; i < n; i++)
    ck_assert_uint_eq(r->ambiguous[g].members[i], members[i]);
  ck_assert_uint_eq(r->ambiguous[g].need, need);
}

START_TEST(test_honest_no_violation) {
  world w;
  honest_four(&w);
  all_pairs(&w);
  cl_xcheck_result r;
  run(&w, &r);
  ck_assert_uint_eq(r.n_pairs, 6);
  ck_assert_uint_eq(r.n_violations, 0);
  ck_assert_uint_eq(r.n_blamed, 0);
  ck_assert_int_eq(r.blamed_minimal, 1);
  cl_xcheck_result_free(&r);
}
END_TEST

START_TEST(test_one_misplaced_blamed_alone) {
  world w;
  honest_four(&w);
  /* Claims Sydney, sits in Paris: every RTT it has is impossibly short. */
  add_landmark(&w, "Liar", &SYDNEY, &PARIS);
  all_pairs(&w);
  cl_xcheck_result r;
  run(&w, &r);
  ck_assert_uint_eq(r.n_pairs, 10);
  ck_assert_uint_eq(r.n_violations, 4);
  for (size_t i = 0; i < r.n_violations; i++) {
    const cl_xcheck_violation *v = &r.violations[i];
    ck_assert_uint_eq(v->b, 4); /* a < b, and the liar is index 4 */
    ck_assert(v->rtt_ms < v->min_rtt_ms);
    ck_assert_double_eq_tol(v->deficit_ms, v->min_rtt_ms - v->rtt_ms, 1e-9);
    ck_assert(v->distance_km > 15000 && v->distance_km < 18000);
    /* min_rtt_ms is the engine's threshold: the least RTT whose cap
     * reaches the other landmark. Over 12 669 km of chord any cap covers
     * the Earth, so it is well below light's surface round trip. */
    double s = cl_geo_distance_m(w.pos[v->a].lat, w.pos[v->a].lon, w.pos[v->b].lat,
                                 w.pos[v->b].lon);
    ck_assert(cl_geo_bound_m(v->min_rtt_ms / 1e3, CL_SPEED_C) >= s);
    ck_assert(cl_geo_bound_m(nextafter(v->min_rtt_ms, 0) / 1e3, CL_SPEED_C) < s);
    ck_assert(v->min_rtt_ms < 2 * s / CL_SPEED_C * 1e3);
    if (i > 0)
      ck_assert(r.violations[i - 1].deficit_ms >= v->deficit_ms);
  }
  /* Four honest peers each contradict it: the links single it out. */
  ck_assert_uint_eq(r.n_blamed, 1);
  ck_assert_uint_eq(r.blamed[0], 4);
  ck_assert_uint_eq(r.n_ambiguous, 0);
  ck_assert_int_eq(r.blamed_minimal, 1);
  cl_xcheck_result_free(&r);
}
END_TEST

START_TEST(test_single_link_blames_nobody) {
  /* One landmark claims Sydney but sits in Paris, and only its link to
   * Berlin was measured: either end of that link may be the misplaced one,
   * so neither is blamed and both are named. */
  world w;
  memset(&w, 0, sizeof w);
  add_landmark(&w, "Berlin", &BERLIN, &BERLIN);
  add_landmark(&w, "Liar", &SYDNEY, &PARIS);
  all_pairs(&w);
  cl_xcheck_result r;
  run(&w, &r);
  ck_assert_uint_eq(r.n_violations, 1);
  ck_assert_uint_eq(r.n_blamed, 0);
  ck_assert_ptr_null(r.blamed);
  assert_group(&r, 0, (const size_t[]){0, 1}, 2, 1);
  ck_assert_uint_eq(r.n_ambiguous, 1);
  ck_assert_int_eq(r.blamed_minimal, 1);
  cl_xcheck_result_free(&r);
}
END_TEST

START_TEST(test_two_disjoint_violations) {
  /* Two impossible links that share no landmark: two groups of two. */
  world w;
  honest_four(&w);
  w.rtt[w.nrtt++] = (cl_xcheck_rtt){"Rome", "Madrid", 0.5, 2};
  w.rtt[w.nrtt++] = (cl_xcheck_rtt){"Berlin", "Paris", 0.5, 3};
  cl_xcheck_result r;
  run(&w, &r);
  ck_assert_uint_eq(r.n_violations, 2);
  ck_assert_uint_eq(r.n_blamed, 0);
  ck_assert_uint_eq(r.n_ambiguous, 2);
  assert_group(&r, 0, (const size_t[]){0, 1}, 2, 1);
  assert_group(&r, 1, (const size_t[]){2, 3}, 2, 1);
  ck_assert_int_eq(r.blamed_minimal, 1);
  cl_xcheck_result_free(&r);
}
END_TEST

START_TEST(test_triangle_alone_ambiguous) {
  /* Three landmarks, each pair impossible, nothing else measured: any two
   * explain it, so two of the three are named and none is blamed. */
  world w;
  memset(&w, 0, sizeof w);
  add_landmark(&w, "A", &SYDNEY, &PARIS);
  add_landmark(&w, "B", &TOKYO, &PARIS);
  add_landmark(&w, "C", &ROME, &PARIS);
  all_pairs(&w);
  cl_xcheck_result r;
  run(&w, &r);
  ck_assert_uint_eq(r.n_violations, 3);
  ck_assert_uint_eq(r.n_blamed, 0);
  ck_assert_uint_eq(r.n_ambiguous, 1);
  assert_group(&r, 0, (const size_t[]){0, 1, 2}, 3, 2);
  cl_xcheck_result_free(&r);
}
END_TEST

START_TEST(test_two_misplaced) {
  world w;
  honest_four(&w);
  add_landmark(&w, "FakeSydney", &SYDNEY, &BERLIN);
  add_landmark(&w, "FakeTokyo", &TOKYO, &ROME);
  all_pairs(&w);
  cl_xcheck_result r;
  run(&w, &r);
  /* 4 + 4 with the honest ones, and their own pair (Berlin-Rome RTT for a
   * Sydney-Tokyo distance). */
  ck_assert_uint_eq(r.n_violations, 9);
  ck_assert_uint_eq(r.n_blamed, 2);
  ck_assert_uint_eq(r.blamed[0], 4);
  ck_assert_uint_eq(r.blamed[1], 5);
  ck_assert_uint_eq(r.n_ambiguous, 0);
  ck_assert_int_eq(r.blamed_minimal, 1);
  assert_cover(&r);
  cl_xcheck_result_free(&r);
}
END_TEST

START_TEST(test_triangle_needs_two) {
  /* Three landmarks that all claim the same far-apart places and all sit in
   * one city: every pair is impossible, and no single one explains it. */
  world w;
  memset(&w, 0, sizeof w);
  add_landmark(&w, "A", &SYDNEY, &PARIS);
  add_landmark(&w, "B", &TOKYO, &PARIS);
  add_landmark(&w, "C", &ROME, &PARIS);
  add_landmark(&w, "D", &BERLIN, &BERLIN); /* honest */
  all_pairs(&w);
  cl_xcheck_result r;
  run(&w, &r);
  assert_cover(&r);
  ck_assert_uint_eq(r.n_blamed, 2);
  ck_assert_int_eq(r.blamed_minimal, 1);
  /* A and B also violate with D (a Paris-Berlin RTT for Sydney/Tokyo to
   * Berlin); C-D is possible (Rome-Berlin is shorter than Paris-Berlin). The
   * only cover of two is {A, B}: both are singled out. */
  ck_assert_uint_eq(r.n_violations, 5);
  ck_assert_uint_eq(r.blamed[0], 0);
  ck_assert_uint_eq(r.blamed[1], 1);
  ck_assert_uint_eq(r.n_ambiguous, 0);
  cl_xcheck_result_free(&r);
}
END_TEST

START_TEST(test_min_per_pair_and_self_pairs) {
  world w;
  honest_four(&w);
  all_pairs(&w);
  /* Self-pairs are ignored, however small. */
  w.rtt[w.nrtt++] = (cl_xcheck_rtt){"Paris", "Paris", 0.001, 100};
  /* A second, impossible RTT for Rome-Berlin in the other direction wins. */
  w.rtt[w.nrtt++] = (cl_xcheck_rtt){"Rome", "Berlin", 1.0, 101};
  cl_xcheck_result r;
  run(&w, &r);
  ck_assert_uint_eq(r.n_pairs, 6);
  ck_assert_uint_eq(r.n_violations, 1);
  ck_assert_uint_eq(r.violations[0].a, 1);
  ck_assert_uint_eq(r.violations[0].b, 3);
  ck_assert_double_eq(r.violations[0].rtt_ms, 1.0);
  ck_assert_uint_eq(r.violations[0].line, 101);
  /* One link: Berlin or Rome, the links cannot say which. */
  ck_assert_uint_eq(r.n_blamed, 0);
  ck_assert_uint_eq(r.n_ambiguous, 1);
  assert_group(&r, 0, (const size_t[]){1, 3}, 2, 1);
  cl_xcheck_result_free(&r);
}
END_TEST

START_TEST(test_speed_matters) {
  /* At 1.5x the light minimum every pair is fine at c but too fast for
   * 2/3 c; a violation is only a proof at c. */
  world w;
  honest_four(&w);
  all_pairs(&w);
  cl_xcheck_result r;
  char err[256];
  ck_assert_int_eq(
      cl_xcheck_run(w.pos, w.n, w.rtt, w.nrtt, CL_SPEED_FIBRE * 0.9, NULL, &r, err, sizeof err),
      CL_OK);
  ck_assert_uint_eq(r.n_violations, 6);
  /* K4 needs three, any three: nobody singled out. */
  ck_assert_uint_eq(r.n_blamed, 0);
  assert_group(&r, 0, (const size_t[]){0, 1, 2, 3}, 4, 3);
  assert_cover(&r);
  cl_xcheck_result_free(&r);
}
END_TEST

/*
 * The RTT, in ms, at which a link between a and b stops being faster than
 * light, worked out here independently of the engine: the signal may take
 * the chord, at least 2R sin(s / 2R) long with R = b^2/a (a geodesic is
 * never bent more than a circle of that radius), and the landmark's clock
 * may run slow by CL_CLOCK_RATE_MARGIN. Below 12 669 km of chord only.
 */
static double edge_ms(const city *a, const city *b) {
  const double wa = 6378137.0, wf = 1 / 298.257223563, wb = wa * (1 - wf), R = wb * wb / wa;
  double s = cl_geo_distance_m(a->lat, a->lon, b->lat, b->lon);
  double chord = 2 * R * sin(s / (2 * R));
  return 2 * chord / (CL_SPEED_C * (1 + CL_CLOCK_RATE_MARGIN)) * 1e3;
}

/* Runs the cross-check on the two landmarks a and b with one RTT. */
static void run_pair(const city *a, const city *b, double rtt_ms, cl_xcheck_result *r) {
  world w;
  memset(&w, 0, sizeof w);
  add_landmark(&w, a->name, a, a);
  add_landmark(&w, b->name, b, b);
  w.rtt[w.nrtt++] = (cl_xcheck_rtt){a->name, b->name, rtt_ms, 2};
  run(&w, r);
  ck_assert_uint_eq(r->n_pairs, 1);
}

START_TEST(test_chord_and_clock_allowance) {
  /* A link is blamed only when it beats the engine's cap of its RTT
   * (cl_geo_bound_m), not light along the surface. Paris-Tokyo (9 735 km)
   * has a chord 930 km (9.6 %) shorter than the geodesic; Paris-Berlin
   * (880 km) a chord 0.7 km shorter, and a clock margin of 0.2 km. */
  const city *pairs[2][2] = {{&PARIS, &TOKYO}, {&PARIS, &BERLIN}};
  for (int k = 0; k < 2; k++) {
    const city *a = pairs[k][0], *b = pairs[k][1];
    double edge = edge_ms(a, b), light = light_ms(a, b);
    ck_assert(edge < light);
    cl_xcheck_result r;
    /* Faster than light along the surface, slower than along the chord
     * with the clock margin: 2 s / c would blame it, the engine's caps
     * accept it. */
    run_pair(a, b, (edge + light) / 2, &r);
    ck_assert_uint_eq(r.n_violations, 0);
    ck_assert_uint_eq(r.n_blamed, 0);
    cl_xcheck_result_free(&r);
    /* Just inside the allowance: not blamed. */
    run_pair(a, b, edge * (1 + 1e-9), &r);
    ck_assert_msg(r.n_violations == 0, "%s-%s: %.9f ms blamed", a->name, b->name,
                  edge * (1 + 1e-9));
    ck_assert_uint_eq(r.n_blamed, 0);
    cl_xcheck_result_free(&r);
    /* Just beyond it: a violation, with the threshold reported; one link
     * names both ends and blames neither. */
    run_pair(a, b, edge * (1 - 1e-9), &r);
    ck_assert_uint_eq(r.n_violations, 1);
    ck_assert_uint_eq(r.n_blamed, 0);
    assert_group(&r, 0, (const size_t[]){0, 1}, 2, 1);
    ck_assert_double_eq_tol(r.violations[0].min_rtt_ms, edge, edge * 1e-12);
    ck_assert(r.violations[0].deficit_ms > 0);
    ck_assert_double_eq_tol(r.violations[0].deficit_ms, edge * 1e-9, edge * 1e-11);
    cl_xcheck_result_free(&r);
  }
}
END_TEST

START_TEST(test_unknown_name) {
  world w;
  honest_four(&w);
  all_pairs(&w);
  w.rtt[2].b = "Lisbon";
  w.rtt[2].line = 7;
  cl_xcheck_result r;
  char err[256] = "";
  ck_assert_int_eq(
      cl_xcheck_run(w.pos, w.n, w.rtt, w.nrtt, CL_SPEED_C, "rtts.csv", &r, err, sizeof err),
      CL_ENOTFOUND);
  ck_assert_str_eq(err,
                   "rtts.csv:7: unknown landmark \"Lisbon\" in column b (not in the positions)");
  ck_assert_ptr_null(r.violations);
  ck_assert_ptr_null(r.blamed);
  ck_assert_ptr_null(r.ambiguous);
}
END_TEST

START_TEST(test_bad_arguments) {
  world w;
  honest_four(&w);
  all_pairs(&w);
  cl_xcheck_result r;
  char err[256] = "";
  w.pos[3].name = "Paris";
  ck_assert_int_eq(cl_xcheck_run(w.pos, w.n, w.rtt, w.nrtt, CL_SPEED_C, NULL, &r, err, sizeof err),
                   CL_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "duplicate"));
  honest_four(&w);
  all_pairs(&w);
  w.rtt[0].rtt_ms = -1;
  ck_assert_int_eq(cl_xcheck_run(w.pos, w.n, w.rtt, w.nrtt, CL_SPEED_C, NULL, &r, err, sizeof err),
                   CL_EINVAL);
  ck_assert_int_eq(cl_xcheck_run(w.pos, w.n, w.rtt, w.nrtt, 0, NULL, &r, err, sizeof err),
                   CL_EINVAL);
  w.rtt[0].rtt_ms = 5;
  w.pos[0].lat = 91;
  ck_assert_int_eq(cl_xcheck_run(w.pos, w.n, w.rtt, w.nrtt, CL_SPEED_C, NULL, &r, err, sizeof err),
                   CL_EINVAL);
  /* Nothing at all is fine. */
  ck_assert_int_eq(cl_xcheck_run(NULL, 0, NULL, 0, CL_SPEED_C, NULL, &r, err, sizeof err), CL_OK);
  ck_assert_uint_eq(r.n_pairs, 0);
  cl_xcheck_result_free(&r);
}
END_TEST

START_TEST(test_greedy_fallback_flagged) {
  /* A chain of 64 landmarks along the equator in which every neighbouring
   * pair is impossibly fast: the smallest cover has 32 members, more than
   * the exact search takes on. */
  world w;
  memset(&w, 0, sizeof w);
  static char names[64][8];
  for (int i = 0; i < 64; i++) {
    snprintf(names[i], sizeof names[i], "L%02d", i);
    city c = {names[i], 0.0, -160.0 + 5.0 * i};
    add_landmark(&w, names[i], &c, &c);
  }
  for (int i = 0; i + 1 < 64; i++)
    w.rtt[w.nrtt++] = (cl_xcheck_rtt){names[i], names[i + 1], 0.01, (size_t)i + 2};
  cl_xcheck_result r;
  run(&w, &r);
  ck_assert_uint_eq(r.n_violations, 63);
  ck_assert_int_eq(r.blamed_minimal, 0);
  ck_assert_uint_ge(r.n_blamed, 32);
  assert_cover(&r);
  cl_xcheck_result_free(&r);
}
END_TEST

/* ---- Vertex cover against brute force ---------------------------------- */

static unsigned long long g_rng = 0x9E3779B97F4A7C15ull;
static unsigned rnd(unsigned n) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (unsigned)(g_rng % n);
}

START_TEST(test_cover_brute_force) {
  for (int trial = 0; trial < 400; trial++) {
    size_t n = 2 + rnd(11);
    size_t edges[40][2], m = 0;
    size_t want = rnd(40);
    while (m < want) {
      edges[m][0] = rnd((unsigned)n);
      edges[m][1] = rnd((unsigned)n);
      m++;
    }
    unsigned adjm[16] = {0}; /* adjacency bitmasks without repeats */
    for (size_t i = 0; i < m; i++) {
      size_t a = edges[i][0], b = edges[i][1];
      if (a == b)
        continue;
      adjm[a] |= 1u << b;
      adjm[b] |= 1u << a;
    }
    /* Brute force: every minimum cover; blamed = in all of them, suspects
     * = in some but not all. */
    static unsigned covers[1u << 13];
    size_t ncov = 0;
    int best_size = 99;
    for (unsigned mask = 0; mask < (1u << n); mask++) {
      int ok = 1;
      for (size_t v = 0; v < n && ok; v++)
        if (!(mask >> v & 1) && (adjm[v] & ~mask))
          ok = 0;
      if (!ok)
        continue;
      int size = __builtin_popcount(mask);
      if (size < best_size) {
        best_size = size;
        ncov = 0;
      }
      if (size == best_size)
        covers[ncov++] = mask;
    }
    unsigned all = ~0u, any = 0;
    for (size_t i = 0; i < ncov; i++) {
      all &= covers[i];
      any |= covers[i];
    }
    cl_xcheck_blame b;
    ck_assert_int_eq(
        cl_xcheck_cover(n, (const size_t(*)[2])edges, m, CL_XCHECK_MAX_EXACT, &b), CL_OK);
    ck_assert_int_eq(b.minimal, 1);
    unsigned got = 0;
    for (size_t i = 0; i < b.n_blamed; i++) {
      if (i > 0)
        ck_assert_uint_gt(b.blamed[i], b.blamed[i - 1]);
      got |= 1u << b.blamed[i];
    }
    ck_assert_msg(got == all, "trial %d: n=%zu m=%zu blamed %#x want %#x", trial, n, m, got, all);
    unsigned sus = 0;
    for (size_t g = 0; g < b.n_groups; g++) {
      const cl_xcheck_group *gr = &b.groups[g];
      ck_assert_uint_ge(gr->n_members, 2);
      ck_assert_uint_ge(gr->need, 1);
      ck_assert_uint_lt(gr->need, gr->n_members);
      if (g > 0)
        ck_assert_uint_gt(gr->members[0], b.groups[g - 1].members[0]);
      unsigned gm = 0;
      for (size_t i = 0; i < gr->n_members; i++) {
        if (i > 0)
          ck_assert_uint_gt(gr->members[i], gr->members[i - 1]);
        gm |= 1u << gr->members[i];
      }
      ck_assert_msg(!(sus & gm), "trial %d: groups overlap", trial);
      sus |= gm;
      /* Every smallest explanation takes exactly need of the group. */
      for (size_t i = 0; i < ncov; i++)
        ck_assert_msg((size_t)__builtin_popcount(covers[i] & gm) == gr->need,
                      "trial %d: group %zu: cover %#x takes %d, need %zu", trial, g, covers[i],
                      __builtin_popcount(covers[i] & gm), gr->need);
    }
    ck_assert_msg(sus == (any & ~all), "trial %d: suspects %#x want %#x", trial, sus, any & ~all);
    cl_xcheck_blame_free(&b);
  }
}
END_TEST

/* Runs cl_xcheck_cover and checks blamed and the groups' members against
 * strings: blamed "0,2", groups "1,3/4,5" with needs in need[]. */
static void expect_blame(size_t n, const size_t (*edges)[2], size_t m, const char *blamed,
                         const char *groups, const size_t *need) {
  cl_xcheck_blame b;
  ck_assert_int_eq(cl_xcheck_cover(n, edges, m, CL_XCHECK_MAX_EXACT, &b), CL_OK);
  ck_assert_int_eq(b.minimal, 1);
  char got[128] = "";
  size_t k = 0;
  for (size_t i = 0; i < b.n_blamed; i++)
    k += (size_t)snprintf(got + k, sizeof got - k, "%s%zu", i ? "," : "", b.blamed[i]);
  ck_assert_str_eq(got, blamed);
  k = 0;
  got[0] = '\0';
  for (size_t g = 0; g < b.n_groups; g++) {
    for (size_t i = 0; i < b.groups[g].n_members; i++)
      k += (size_t)snprintf(got + k, sizeof got - k, "%s%zu", i ? "," : g ? "/" : "",
                            b.groups[g].members[i]);
    ck_assert_uint_eq(b.groups[g].need, need[g]);
  }
  ck_assert_str_eq(got, groups);
  cl_xcheck_blame_free(&b);
}

START_TEST(test_cover_blame_sets) {
  /* One edge: either end explains it; both named, neither blamed. */
  const size_t one[1][2] = {{5, 3}};
  expect_blame(6, one, 1, "", "3,5", (const size_t[]){1});
  /* A star: the centre is in the only smallest cover. */
  const size_t star[3][2] = {{0, 1}, {0, 2}, {3, 0}};
  expect_blame(4, star, 3, "0", "", NULL);
  /* The star and a link between two leaves: the centre and one of them. */
  const size_t star2[4][2] = {{0, 1}, {0, 2}, {3, 0}, {1, 2}};
  expect_blame(4, star2, 4, "0", "1,2", (const size_t[]){1});
  /* Path 0-1-2-3: {1,2}, {0,2} and {1,3}: two of the four. */
  const size_t path[3][2] = {{0, 1}, {1, 2}, {2, 3}};
  expect_blame(4, path, 3, "", "0,1,2,3", (const size_t[]){2});
  /* A bare triangle: two of the three. */
  const size_t tri[3][2] = {{2, 1}, {0, 2}, {1, 0}};
  expect_blame(3, tri, 3, "", "0,1,2", (const size_t[]){2});
  /* Two disjoint edges: two groups, in order of their first member. */
  const size_t two[2][2] = {{4, 5}, {1, 2}};
  expect_blame(6, two, 2, "", "1,2/4,5", (const size_t[]){1, 1});
  /* A blamed vertex splits what is left: 0 is in every cover of 3, and
   * the edges 1-2 and 3-4 are apart once 0 explains its own. */
  const size_t split[7][2] = {{0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}, {1, 2}, {3, 4}};
  expect_blame(6, split, 7, "0", "1,2/3,4", (const size_t[]){1, 1});
  /* No edges: nothing, proven. */
  cl_xcheck_blame b;
  ck_assert_int_eq(cl_xcheck_cover(3, NULL, 0, CL_XCHECK_MAX_EXACT, &b), CL_OK);
  ck_assert_uint_eq(b.n_blamed, 0);
  ck_assert_ptr_null(b.blamed);
  ck_assert_uint_eq(b.n_groups, 0);
  ck_assert_int_eq(b.minimal, 1);
  cl_xcheck_blame_free(&b);
  /* Out-of-range vertex. */
  const size_t bad[1][2] = {{0, 9}};
  ck_assert_int_eq(cl_xcheck_cover(3, bad, 1, CL_XCHECK_MAX_EXACT, &b), CL_EINVAL);
}
END_TEST

START_TEST(test_cover_limit_per_component) {
  /* Three disjoint triangles need 6, but each alone needs 2: a limit of 2
   * still proves them all (three groups, nobody blamed). A limit of 1 does
   * not: the greedy cover is blamed, flagged. */
  const size_t tri[9][2] = {{0, 1}, {1, 2}, {2, 0}, {3, 4}, {4, 5}, {5, 3}, {6, 7}, {7, 8}, {8, 6}};
  cl_xcheck_blame b;
  ck_assert_int_eq(cl_xcheck_cover(9, tri, 9, 2, &b), CL_OK);
  ck_assert_int_eq(b.minimal, 1);
  ck_assert_uint_eq(b.n_blamed, 0);
  ck_assert_uint_eq(b.n_groups, 3);
  for (size_t g = 0; g < 3; g++) {
    ck_assert_uint_eq(b.groups[g].n_members, 3);
    ck_assert_uint_eq(b.groups[g].members[0], 3 * g);
    ck_assert_uint_eq(b.groups[g].need, 2);
  }
  cl_xcheck_blame_free(&b);
  ck_assert_int_eq(cl_xcheck_cover(9, tri, 9, 1, &b), CL_OK);
  ck_assert_int_eq(b.minimal, 0);
  ck_assert_uint_eq(b.n_blamed, 6); /* greedy still finds a cover */
  ck_assert_uint_eq(b.n_groups, 0);
  cl_xcheck_blame_free(&b);
}
END_TEST

START_TEST(test_cover_large_component_fast) {
  /* A cycle of 40 with 20 chords between opposite parities: bipartite with
   * a perfect matching, so the smallest cover has exactly 20 members (the
   * even or the odd vertices), found and classified by the exact search
   * well within its budget: nobody blamed, 20 of the 40 named. */
  size_t edges[60][2];
  for (size_t i = 0; i < 40; i++) {
    edges[i][0] = i;
    edges[i][1] = (i + 1) % 40;
  }
  for (size_t i = 0; i < 20; i++) {
    edges[40 + i][0] = i;
    edges[40 + i][1] = (i + 21) % 40;
  }
  cl_xcheck_blame b;
  ck_assert_int_eq(
      cl_xcheck_cover(40, (const size_t(*)[2])edges, 60, CL_XCHECK_MAX_EXACT, &b), CL_OK);
  ck_assert_int_eq(b.minimal, 1);
  ck_assert_uint_eq(b.n_blamed, 0);
  ck_assert_uint_eq(b.n_groups, 1);
  ck_assert_uint_eq(b.groups[0].n_members, 40);
  ck_assert_uint_eq(b.groups[0].need, 20);
  cl_xcheck_blame_free(&b);
}
END_TEST

/* ---- CSV --------------------------------------------------------------------- */

static char *g_dir;

static void csv_setup(void) { g_dir = tu_tmpdir("chiploc-csv"); }
static void csv_teardown(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  ck_assert_int_eq(system(cmd), 0);
  free(g_dir);
}

START_TEST(test_csv_golden_variants) {
  /* BOM, CRLF, columns in another order, an extra column, quoted names with
   * a comma, an escaped quote and a line break, a blank line, no final line
   * end. */
  const char *text = "\xef\xbb\xbf"
                     "rtt_ms,note,lon,name,lat\r\n"
                     "12.5,x,2.3522,\"Paris, FR\",48.8566\r\n"
                     "\r\n"
                     "8,,13.405,\"Ber\"\"lin\",52.52\r\n"
                     "3.25,\"multi\r\nline\",-3.7038,Madrid,40.4168";
  char *path = tu_write_file(g_dir, "landmarks.csv", text);
  cl_csv_landmark *lm = NULL;
  size_t n = 0;
  char err[256] = "";
  ck_assert_msg(cl_csv_load_landmarks(path, &lm, &n, err, sizeof err) == CL_OK, "%s", err);
  ck_assert_uint_eq(n, 3);
  ck_assert_str_eq(lm[0].name, "Paris, FR");
  ck_assert_double_eq(lm[0].lat, 48.8566);
  ck_assert_double_eq(lm[0].lon, 2.3522);
  ck_assert_double_eq(lm[0].rtt_ms, 12.5);
  ck_assert_uint_eq(lm[0].line, 2);
  ck_assert_str_eq(lm[1].name, "Ber\"lin");
  ck_assert_uint_eq(lm[1].line, 4);
  ck_assert_str_eq(lm[2].name, "Madrid");
  ck_assert_uint_eq(lm[2].line, 5);
  cl_csv_landmarks_free(&lm, n);
  ck_assert_ptr_null(lm);
  free(path);

  path = tu_write_file(g_dir, "positions.csv", "name,lat,lon\nA,-90,-180\nB,90,180\n");
  cl_csv_position *pos = NULL;
  ck_assert_int_eq(cl_csv_load_positions(path, &pos, &n, err, sizeof err), CL_OK);
  ck_assert_uint_eq(n, 2);
  ck_assert_double_eq(pos[1].lon, 180);
  cl_csv_positions_free(&pos, n);
  free(path);

  path = tu_write_file(g_dir, "rtts.csv", "a,b,rtt_ms\nA,B,1e1\nB,A,0.5\nA,A,0.01\n");
  cl_csv_rtt *rt = NULL;
  ck_assert_int_eq(cl_csv_load_rtts(path, &rt, &n, err, sizeof err), CL_OK);
  ck_assert_uint_eq(n, 3);
  ck_assert_str_eq(rt[1].a, "B");
  ck_assert_double_eq(rt[0].rtt_ms, 10);
  ck_assert_uint_eq(rt[2].line, 4);
  cl_csv_rtts_free(&rt, n);
  free(path);
}
END_TEST

/* Loads text as a landmark file and expects CL_EMALFORMED with a message
 * ending in want (the path before it is the temp dir's). */
static void expect_landmarks_error(const char *text, int code, const char *want) {
  char *path = tu_write_file(g_dir, "landmarks.csv", text);
  cl_csv_landmark *lm = NULL;
  size_t n = 7;
  char err[512] = "";
  ck_assert_int_eq(cl_csv_load_landmarks(path, &lm, &n, err, sizeof err), code);
  ck_assert_ptr_null(lm);
  ck_assert_uint_eq(n, 0);
  const char *slash = strrchr(path, '/');
  char full[600];
  snprintf(full, sizeof full, "%s%s", slash + 1, want);
  const char *at = strstr(err, slash + 1);
  ck_assert_msg(at && strcmp(at, full) == 0, "got '%s', want '%s'", err, full);
  free(path);
}

#define HDR "name,lat,lon,rtt_ms\n"
#define ROWS "A,1,2,3\nB,4,5,6\n"

START_TEST(test_csv_errors) {
  expect_landmarks_error(HDR ROWS "C,1,2,abc\n", CL_EMALFORMED,
                         ":4: column rtt_ms: \"abc\" is not a number");
  expect_landmarks_error(HDR ROWS "C,91,2,3\n", CL_EMALFORMED,
                         ":4: column lat: \"91\" is out of range [-90, 90]");
  expect_landmarks_error(HDR ROWS "C,1,-180.5,3\n", CL_EMALFORMED,
                         ":4: column lon: \"-180.5\" is out of range [-180, 180]");
  expect_landmarks_error(HDR ROWS "C,1,2,0\n", CL_EMALFORMED,
                         ":4: column rtt_ms: \"0\" is out of range (0, 1e+09]");
  expect_landmarks_error(HDR ROWS "C,1,2,-1\n", CL_EMALFORMED,
                         ":4: column rtt_ms: \"-1\" is out of range (0, 1e+09]");
  expect_landmarks_error(HDR ROWS "C,nan,2,3\n", CL_EMALFORMED,
                         ":4: column lat: \"nan\" is not a finite number");
  expect_landmarks_error(HDR ROWS "C,1,inf,3\n", CL_EMALFORMED,
                         ":4: column lon: \"inf\" is not a finite number");
  expect_landmarks_error(HDR ROWS "C,1,2, 3\n", CL_EMALFORMED,
                         ":4: column rtt_ms: \" 3\" is not a number");
  expect_landmarks_error(HDR ROWS "C,1,2,3ms\n", CL_EMALFORMED,
                         ":4: column rtt_ms: \"3ms\" is not a number");
  expect_landmarks_error(HDR ROWS "C,,2,3\n", CL_EMALFORMED,
                         ":4: column lat: \"\" is not a number");
  expect_landmarks_error(HDR ROWS ",1,2,3\n", CL_EMALFORMED, ":4: column name: empty name");
  expect_landmarks_error(HDR ROWS "A,1,2,3\n", CL_EMALFORMED,
                         ":4: column name: duplicate landmark name \"A\" (first on line 2)");
  expect_landmarks_error(HDR ROWS "C,1,2\n", CL_EMALFORMED, ":4: 3 fields, but the header has 4");
  expect_landmarks_error(HDR ROWS "C,1,2,3,4\n", CL_EMALFORMED,
                         ":4: 5 fields, but the header has 4");
  expect_landmarks_error("name,lat,lon\n" ROWS, CL_EMALFORMED, ":1: header: missing column rtt_ms");
  expect_landmarks_error("name,latitude,longitude,rtt\n", CL_EMALFORMED,
                         ":1: header: missing columns lat, lon, rtt_ms");
  expect_landmarks_error("name,lat,lon,rtt_ms,lat\n", CL_EMALFORMED,
                         ":1: header: column \"lat\" appears twice");
  expect_landmarks_error("", CL_EMALFORMED, ": empty file: a header row is required");
  expect_landmarks_error(HDR "\"A,1,2,3\n", CL_EMALFORMED,
                         ":2: quoted field not closed before the end of the file");
  expect_landmarks_error(HDR "\"A\"x,1,2,3\n", CL_EMALFORMED,
                         ":2: field 1: characters after the closing quote");
  expect_landmarks_error(HDR "A\"B,1,2,3\n", CL_EMALFORMED,
                         ":2: field 1: quote inside an unquoted field");
  expect_landmarks_error(HDR "A,1,2,3\rB,1,2,3\n", CL_EMALFORMED,
                         ":2: carriage return not followed by a line feed");
}
END_TEST

START_TEST(test_csv_missing_file) {
  cl_csv_landmark *lm = NULL;
  size_t n = 0;
  char err[256] = "";
  ck_assert_int_eq(cl_csv_load_landmarks("/nonexistent/landmarks.csv", &lm, &n, err, sizeof err),
                   CL_EIO);
  ck_assert_str_eq(err, "/nonexistent/landmarks.csv: No such file or directory");
}
END_TEST

START_TEST(test_csv_generic_reader) {
  /* The WonderProxy export: trailing unnamed columns, one named "11". */
  const char *text = "id,name,latitude,,,11\n1,Melbourne,-37.7833,,,\n";
  cl_csv *c = NULL;
  char err[256] = "";
  ck_assert_int_eq(cl_csv_open_mem(&c, "servers.csv", text, strlen(text), err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_csv_column(c, "latitude"), 2);
  ck_assert_int_eq(cl_csv_column(c, "11"), 5);
  ck_assert_int_eq(cl_csv_column(c, ""), CL_ENOTFOUND);
  ck_assert_int_eq(cl_csv_column(c, "Name"), CL_ENOTFOUND);
  ck_assert_int_eq(cl_csv_next(c, err, sizeof err), 1);
  ck_assert_str_eq(cl_csv_field(c, 1), "Melbourne");
  ck_assert_str_eq(cl_csv_field(c, 5), "");
  ck_assert_ptr_null(cl_csv_field(c, 6));
  ck_assert_uint_eq(cl_csv_line(c), 2);
  double v = 0;
  ck_assert_int_eq(cl_csv_number(c, 2, -90, 90, 0, &v, err, sizeof err), CL_OK);
  ck_assert_double_eq(v, -37.7833);
  ck_assert_int_eq(cl_csv_next(c, err, sizeof err), 0);
  ck_assert_int_eq(cl_csv_next(c, err, sizeof err), 0);
  cl_csv_close(&c);
  ck_assert_ptr_null(c);
  /* A NUL byte is refused with its line. */
  ck_assert_int_eq(cl_csv_open_mem(&c, "x.csv", "a\n\0", 3, err, sizeof err), CL_EMALFORMED);
  ck_assert_str_eq(err, "x.csv:2: NUL byte in the input");
  /* A trailing comma at the very end is one more (empty) field. */
  ck_assert_int_eq(cl_csv_open_mem(&c, "y.csv", "a,b\n1,", 6, err, sizeof err), CL_OK);
  ck_assert_int_eq(cl_csv_next(c, err, sizeof err), 1);
  ck_assert_uint_eq(cl_csv_nfields(c), 2);
  ck_assert_str_eq(cl_csv_field(c, 1), "");
  cl_csv_close(&c);
}
END_TEST

static Suite *xcheck_suite(void) {
  Suite *s = suite_create("xcheck");
  TCase *tx = tcase_create("crosscheck");
  tcase_set_timeout(tx, 60);
  tcase_add_test(tx, test_honest_no_violation);
  tcase_add_test(tx, test_one_misplaced_blamed_alone);
  tcase_add_test(tx, test_single_link_blames_nobody);
  tcase_add_test(tx, test_two_disjoint_violations);
  tcase_add_test(tx, test_triangle_alone_ambiguous);
  tcase_add_test(tx, test_two_misplaced);
  tcase_add_test(tx, test_triangle_needs_two);
  tcase_add_test(tx, test_min_per_pair_and_self_pairs);
  tcase_add_test(tx, test_speed_matters);
  tcase_add_test(tx, test_chord_and_clock_allowance);
  tcase_add_test(tx, test_unknown_name);
  tcase_add_test(tx, test_bad_arguments);
  tcase_add_test(tx, test_greedy_fallback_flagged);
  suite_add_tcase(s, tx);

  TCase *tv = tcase_create("cover");
  tcase_set_timeout(tv, 120);
  tcase_add_test(tv, test_cover_brute_force);
  tcase_add_test(tv, test_cover_blame_sets);
  tcase_add_test(tv, test_cover_limit_per_component);
  tcase_add_test(tv, test_cover_large_component_fast);
  suite_add_tcase(s, tv);

  TCase *tc = tcase_create("csv");
  tcase_add_checked_fixture(tc, csv_setup, csv_teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_csv_golden_variants);
  tcase_add_test(tc, test_csv_errors);
  tcase_add_test(tc, test_csv_missing_file);
  tcase_add_test(tc, test_csv_generic_reader);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(xcheck_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
