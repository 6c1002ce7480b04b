/*
 * A timer queue without a clock: a binary min-heap of entries that their
 * owners embed, ordered by due time (nanoseconds on any monotonic clock the
 * owner chooses) and, for equal times, by the order they were armed. The
 * landmark's protocol core keeps every chip's and connection's timer here,
 * so that its I/O shell needs one real timer for all of them, and a fuzzer
 * or a test can drive time as data.
 *
 * Memory: the heap grows only in cl_tq_reserve, so arming never allocates
 * and never fails once room for every entry that can be armed at once has
 * been reserved.
 */
#ifndef CL_TQ_H
#define CL_TQ_H

#include <stddef.h>
#include <stdint.h>

/* One timer, embedded in its owner; zero-initialised means "not armed". */
typedef struct {
  uint64_t due_ns;
  uint64_t order; /* arming order, for ties and for cl_tq_pop_due's limit */
  size_t pos;     /* 1 + index in the heap; 0 when not armed */
} cl_tq_entry;

typedef struct {
  cl_tq_entry **heap;
  size_t n, cap;
  uint64_t next_order;
} cl_tq;

void cl_tq_init(cl_tq *q);
/* Frees the heap; entries still armed are simply forgotten. */
void cl_tq_fini(cl_tq *q);
/* Makes room for n armed entries in all. 0 or CL_ENOMEM (the queue is
 * unchanged). */
int cl_tq_reserve(cl_tq *q, size_t n);
/* Arms e for due_ns, or moves it there if it is armed already. The caller
 * must have reserved room: arming one entry more than reserved aborts. */
void cl_tq_arm(cl_tq *q, cl_tq_entry *e, uint64_t due_ns);
/* Disarms e; nothing happens if it is not armed. */
void cl_tq_stop(cl_tq *q, cl_tq_entry *e);
static inline int cl_tq_armed(const cl_tq_entry *e) { return e->pos != 0; }
/* Due time of the earliest entry, or UINT64_MAX when none is armed. */
uint64_t cl_tq_next_due(const cl_tq *q);
/* The value to pass as `before` to cl_tq_pop_due: entries armed from now
 * on are not popped by that pass. */
static inline uint64_t cl_tq_mark(const cl_tq *q) { return q->next_order; }
/*
 * Disarms and returns the earliest entry if it is due (due_ns <= now_ns) and
 * was armed before the mark `before`; NULL otherwise. A pass that pops
 * until NULL therefore never runs an entry that its own callbacks re-armed
 * for "now", so it always ends.
 */
cl_tq_entry *cl_tq_pop_due(cl_tq *q, uint64_t now_ns, uint64_t before);
/* Armed entries. */
static inline size_t cl_tq_count(const cl_tq *q) { return q->n; }

#endif
