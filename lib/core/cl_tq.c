/*
 * Timer queue: an array-based binary min-heap of embedded entries, each
 * knowing its own position so that re-arming and stopping are O(log n)
 * without a search. See cl_tq.h.
 */
#include "cl_tq.h"
#include "cl_err.h"

#include <assert.h>
#include <stdlib.h>

/* a runs before b: earlier due time, then earlier arming. */
static int before(const cl_tq_entry *a, const cl_tq_entry *b) {
  if (a->due_ns != b->due_ns) return a->due_ns < b->due_ns;
  return a->order < b->order;
}

static void place(cl_tq *q, size_t i, cl_tq_entry *e) {
  q->heap[i] = e;
  e->pos = i + 1;
}

static void sift_up(cl_tq *q, size_t i) {
  cl_tq_entry *e = q->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(e, q->heap[parent])) break;
    place(q, i, q->heap[parent]);
    i = parent;
  }
  place(q, i, e);
}

static void sift_down(cl_tq *q, size_t i) {
  cl_tq_entry *e = q->heap[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= q->n) break;
    if (child + 1 < q->n && before(q->heap[child + 1], q->heap[child])) child++;
    if (!before(q->heap[child], e)) break;
    place(q, i, q->heap[child]);
    i = child;
  }
  place(q, i, e);
}

void cl_tq_init(cl_tq *q) {
  q->heap = NULL;
  q->n = q->cap = 0;
  q->next_order = 1;
}

void cl_tq_fini(cl_tq *q) {
  for (size_t i = 0; i < q->n; i++) q->heap[i]->pos = 0;
  free(q->heap);
  q->heap = NULL;
  q->n = q->cap = 0;
}

int cl_tq_reserve(cl_tq *q, size_t n) {
  if (n <= q->cap) return CL_OK;
  size_t cap = q->cap ? q->cap : 64;
  while (cap < n) cap *= 2;
  cl_tq_entry **h = realloc(q->heap, cap * sizeof *h);
  if (!h) return CL_ENOMEM;
  q->heap = h;
  q->cap = cap;
  return CL_OK;
}

/* Removes the entry at index i and restores the heap. */
static void remove_at(cl_tq *q, size_t i) {
  cl_tq_entry *e = q->heap[i];
  e->pos = 0;
  q->n--;
  if (i == q->n) return;
  place(q, i, q->heap[q->n]);
  /* The moved entry may belong above or below its new place. */
  if (i > 0 && before(q->heap[i], q->heap[(i - 1) / 2]))
    sift_up(q, i);
  else
    sift_down(q, i);
}

void cl_tq_arm(cl_tq *q, cl_tq_entry *e, uint64_t due_ns) {
  if (e->pos) remove_at(q, e->pos - 1);
  /* A caller that arms more entries than it reserved room for is broken:
   * stop rather than write past the heap. */
  if (q->n >= q->cap) abort();
  e->due_ns = due_ns;
  e->order = q->next_order++;
  place(q, q->n++, e);
  sift_up(q, q->n - 1);
}

void cl_tq_stop(cl_tq *q, cl_tq_entry *e) {
  if (!e->pos) return;
  assert(e->pos <= q->n && q->heap[e->pos - 1] == e);
  remove_at(q, e->pos - 1);
}

uint64_t cl_tq_next_due(const cl_tq *q) { return q->n ? q->heap[0]->due_ns : UINT64_MAX; }

cl_tq_entry *cl_tq_pop_due(cl_tq *q, uint64_t now_ns, uint64_t before_order) {
  if (q->n == 0) return NULL;
  cl_tq_entry *e = q->heap[0];
  if (e->due_ns > now_ns || e->order >= before_order) return NULL;
  remove_at(q, 0);
  return e;
}
