/*
 * A fixed-bucket histogram: plain counters, no locking, no I/O. Its owner
 * observes values on its own thread; cl_metrics renders it as Prometheus
 * text.
 */
#include "cl_hist.h"
#include "cl_err.h"

#include <string.h>

int cl_histogram_init(cl_histogram *h, const double *le, size_t n) {
  if (!h || !le || n == 0 || n > CL_HIST_MAX_BUCKETS) return CL_EINVAL;
  for (size_t i = 1; i < n; i++)
    if (!(le[i] > le[i - 1])) return CL_EINVAL;
  memset(h, 0, sizeof *h);
  memcpy(h->le, le, n * sizeof *le);
  h->n = n;
  return CL_OK;
}

void cl_histogram_observe(cl_histogram *h, double v) {
  /* Few buckets: a linear scan is as fast as a bisection here. */
  for (size_t i = 0; i < h->n; i++) {
    if (v <= h->le[i]) {
      h->count[i]++;
      break;
    }
  }
  h->total++;
  h->sum += v;
}
