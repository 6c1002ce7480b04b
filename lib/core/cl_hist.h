/*
 * A fixed-bucket histogram (Prometheus semantics: upper bounds, a +Inf
 * bucket, sum and count). Pure counters that its owner updates on its own
 * thread; cl_metrics renders them.
 */
#ifndef CL_HIST_H
#define CL_HIST_H

#include <stddef.h>
#include <stdint.h>

#define CL_HIST_MAX_BUCKETS 24

typedef struct {
  size_t n;                            /* finite upper bounds in le[] */
  double le[CL_HIST_MAX_BUCKETS];      /* strictly ascending */
  uint64_t count[CL_HIST_MAX_BUCKETS]; /* observations in (le[i-1], le[i]], not cumulative */
  uint64_t total;                      /* every observation, +Inf bucket included */
  double sum;
} cl_histogram;

/* Copies n ascending bounds. Returns 0, or CL_EINVAL when n is 0 or above
 * CL_HIST_MAX_BUCKETS or the bounds are not strictly ascending. */
int cl_histogram_init(cl_histogram *h, const double *le, size_t n);
/* Counts v in the first bucket whose bound is >= v (or only in +Inf). */
void cl_histogram_observe(cl_histogram *h, double v);

#endif
