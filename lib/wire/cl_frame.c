/* Incremental assembler for length-prefixed frames. */
#include "cl_frame.h"
#include "cl_err.h"
#include "cl_layout.h"

#include <stdlib.h>
#include <string.h>

void cl_frame_asm_init(cl_frame_asm *a, size_t max) {
  memset(a, 0, sizeof *a);
  a->max = max;
}

void cl_frame_asm_set_max(cl_frame_asm *a, size_t max) { a->max = max; }

void cl_frame_asm_fini(cl_frame_asm *a) {
  free(a->buf);
  a->buf = NULL;
  a->cap = 0;
}

void cl_frame_put_header(uint8_t out[CL_FRAME_HDR_LEN], uint32_t body_len) {
  cl_put_be32(out, body_len);
}

int cl_frame_asm_feed(cl_frame_asm *a, const uint8_t *data, size_t len, size_t *consumed,
                      const uint8_t **frame, size_t *frame_len) {
  size_t off = 0;
  *consumed = 0;
  while (off < len) {
    if (a->need == 0) {
      /* Fast path: a whole header and body in the input, nothing pending. */
      if (a->hdr_have == 0 && len - off >= CL_FRAME_HDR_LEN) {
        uint32_t n = cl_get_be32(data + off);
        a->last_len = n;
        if (n == 0) return CL_EMALFORMED;
        if (n > a->max) return CL_ETOOBIG;
        if (len - off - CL_FRAME_HDR_LEN >= n) {
          *frame = data + off + CL_FRAME_HDR_LEN;
          *frame_len = n;
          *consumed = off + CL_FRAME_HDR_LEN + n;
          return 1;
        }
      }
      size_t take = CL_FRAME_HDR_LEN - a->hdr_have;
      if (take > len - off) take = len - off;
      memcpy(a->hdr + a->hdr_have, data + off, take);
      a->hdr_have += take;
      off += take;
      if (a->hdr_have < CL_FRAME_HDR_LEN) break;
      uint32_t n = cl_get_be32(a->hdr);
      a->last_len = n;
      if (n == 0) return CL_EMALFORMED;
      if (n > a->max) return CL_ETOOBIG; /* checked before any allocation */
      if (n > a->cap) {
        uint8_t *nb = realloc(a->buf, n);
        if (!nb) return CL_ENOMEM;
        a->buf = nb;
        a->cap = n;
      }
      a->need = n;
      a->have = 0;
      continue;
    }
    size_t take = a->need - a->have;
    if (take > len - off) take = len - off;
    memcpy(a->buf + a->have, data + off, take);
    a->have += take;
    off += take;
    if (a->have == a->need) {
      *frame = a->buf;
      *frame_len = a->need;
      *consumed = off;
      a->need = 0;
      a->have = 0;
      a->hdr_have = 0;
      return 1;
    }
  }
  *consumed = off;
  return 0;
}
