/*
 * Length-prefixed frames: a 4-byte big-endian length, then that many bytes
 * (one serialised Envelope). The assembler takes bytes as they arrive, in
 * pieces of any size, and hands out whole frames. The length prefix is
 * checked against the current maximum before anything is allocated, so a
 * peer cannot make us allocate more than `max` bytes per connection.
 */
#ifndef CL_FRAME_H
#define CL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define CL_FRAME_HDR_LEN 4
/* Largest frame any peer may send once it has registered. */
#define CL_FRAME_MAX 65536u
/* Largest frame accepted before a peer has registered (Hello/Register). */
#define CL_FRAME_MAX_UNREGISTERED 8192u

typedef struct {
  uint8_t hdr[CL_FRAME_HDR_LEN];
  size_t hdr_have;
  uint8_t *buf; /* body being assembled, capacity cap */
  size_t cap;
  size_t need; /* body length announced by the header; 0 while reading it */
  size_t have;
  size_t max;       /* current limit on the body length */
  uint32_t last_len; /* last length prefix seen (for error reports) */
} cl_frame_asm;

void cl_frame_asm_init(cl_frame_asm *a, size_t max);
/* Tightens or loosens the limit; applies from the next header. */
void cl_frame_asm_set_max(cl_frame_asm *a, size_t max);
void cl_frame_asm_fini(cl_frame_asm *a);

/*
 * Consumes bytes from data[0..len). Returns:
 *   1  a frame is complete: *frame and *frame_len describe it (valid until the
 *      next call), *consumed says how many input bytes were used;
 *   0  all input consumed, no complete frame yet;
 *   CL_ETOOBIG   the length prefix exceeds the limit (a->last_len has it);
 *   CL_EMALFORMED a zero length prefix;
 *   CL_ENOMEM.
 * After an error the assembler must not be fed again (close the peer).
 * When a whole frame lies inside `data` and nothing is pending, *frame
 * points into `data` (no copy).
 */
int cl_frame_asm_feed(cl_frame_asm *a, const uint8_t *data, size_t len, size_t *consumed,
                      const uint8_t **frame, size_t *frame_len);

/* Writes the 4-byte header for a body of body_len bytes. */
void cl_frame_put_header(uint8_t out[CL_FRAME_HDR_LEN], uint32_t body_len);

#endif
