/*
 * Hash map from a 32-byte public key to a pointer: the landmark's enrolled
 * set and its live chips. Open addressing with linear probing and
 * backward-shift deletion; keys are hashed with SipHash under a random
 * per-map key, so a peer cannot aim collisions at it.
 */
#ifndef CL_PKMAP_H
#define CL_PKMAP_H

#include "cl_key.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cl_pkmap cl_pkmap;

/* Creates an empty map sized for about `expect` entries. CL_ENOMEM. */
int cl_pkmap_create(cl_pkmap **out, size_t expect);
void cl_pkmap_destroy(cl_pkmap **m);
/* Inserts or replaces. *old (may be NULL) receives the replaced value or
 * NULL. Returns 0 or CL_ENOMEM. value must not be NULL. */
int cl_pkmap_put(cl_pkmap *m, const uint8_t key[CL_PK_LEN], void *value, void **old);
/* Returns the value or NULL. */
void *cl_pkmap_get(const cl_pkmap *m, const uint8_t key[CL_PK_LEN]);
/* Removes the key; returns its value or NULL if absent. */
void *cl_pkmap_del(cl_pkmap *m, const uint8_t key[CL_PK_LEN]);
size_t cl_pkmap_count(const cl_pkmap *m);
/* Calls fn for every entry (the map must not change during the walk). */
void cl_pkmap_each(const cl_pkmap *m, void (*fn)(void *arg, const uint8_t *key, void *value),
                   void *arg);

#endif
