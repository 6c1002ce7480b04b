/* Public-key hash map: open addressing, linear probing, SipHash. */
#include "cl_pkmap.h"
#include "cl_err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint8_t key[CL_PK_LEN];
  void *value; /* NULL marks an empty slot */
} slot;

struct cl_pkmap {
  slot *slots;
  size_t cap; /* power of two */
  size_t count;
  uint8_t hkey[crypto_shorthash_KEYBYTES];
};

static size_t hash(const cl_pkmap *m, const uint8_t *key) {
  uint8_t h[crypto_shorthash_BYTES];
  crypto_shorthash(h, key, CL_PK_LEN, m->hkey);
  uint64_t v;
  memcpy(&v, h, sizeof v);
  return (size_t)v & (m->cap - 1);
}

int cl_pkmap_create(cl_pkmap **out, size_t expect) {
  cl_pkmap *m = calloc(1, sizeof *m);
  if (!m) return CL_ENOMEM;
  m->cap = 16;
  while (m->cap < expect * 2) m->cap <<= 1;
  m->slots = calloc(m->cap, sizeof *m->slots);
  if (!m->slots) {
    free(m);
    return CL_ENOMEM;
  }
  randombytes_buf(m->hkey, sizeof m->hkey);
  *out = m;
  return CL_OK;
}

void cl_pkmap_destroy(cl_pkmap **m) {
  if (!m || !*m) return;
  free((*m)->slots);
  free(*m);
  *m = NULL;
}

static slot *find(const cl_pkmap *m, const uint8_t *key) {
  for (size_t i = hash(m, key);; i = (i + 1) & (m->cap - 1)) {
    slot *s = &m->slots[i];
    if (!s->value || memcmp(s->key, key, CL_PK_LEN) == 0) return s;
  }
}

static int grow(cl_pkmap *m) {
  slot *old = m->slots;
  size_t oldcap = m->cap;
  slot *n = calloc(oldcap * 2, sizeof *n);
  if (!n) return CL_ENOMEM;
  m->slots = n;
  m->cap = oldcap * 2;
  for (size_t i = 0; i < oldcap; i++)
    if (old[i].value) *find(m, old[i].key) = old[i];
  free(old);
  return CL_OK;
}

int cl_pkmap_put(cl_pkmap *m, const uint8_t key[CL_PK_LEN], void *value, void **old) {
  if (old) *old = NULL;
  if ((m->count + 1) * 2 > m->cap && grow(m) != CL_OK) return CL_ENOMEM;
  slot *s = find(m, key);
  if (s->value) {
    if (old) *old = s->value;
  } else {
    memcpy(s->key, key, CL_PK_LEN);
    m->count++;
  }
  s->value = value;
  return CL_OK;
}

void *cl_pkmap_get(const cl_pkmap *m, const uint8_t key[CL_PK_LEN]) { return find(m, key)->value; }

void *cl_pkmap_del(cl_pkmap *m, const uint8_t key[CL_PK_LEN]) {
  slot *s = find(m, key);
  void *v = s->value;
  if (!v) return NULL;
  /* Backward-shift deletion keeps every probe chain unbroken. */
  size_t i = (size_t)(s - m->slots);
  size_t j = i;
  for (;;) {
    j = (j + 1) & (m->cap - 1);
    if (!m->slots[j].value) break;
    size_t home = hash(m, m->slots[j].key);
    /* Move j back to i unless its home lies cyclically in (i, j]. */
    int in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
    if (!in_range) {
      m->slots[i] = m->slots[j];
      i = j;
    }
  }
  m->slots[i].value = NULL;
  m->count--;
  return v;
}

size_t cl_pkmap_count(const cl_pkmap *m) { return m->count; }

void cl_pkmap_each(const cl_pkmap *m, void (*fn)(void *arg, const uint8_t *key, void *value),
                   void *arg) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].value) fn(arg, m->slots[i].key, m->slots[i].value);
}
