/*
 * What a landmark measures: the probe targets it loads from the database
 * and the record it emits per burst. Plain data shared by the landmark's
 * protocol core (cl_lmcore), which fills them, and the store (cl_store),
 * which reads and writes them, so that neither depends on the other.
 */
#ifndef CL_LMRECORD_H
#define CL_LMRECORD_H

#include "cl_layout.h"

#include <stdint.h>

/* Longest name a target carries for log lines; a longer one is left out
 * (empty) and the logs name the target by its key instead. */
#define CL_LM_NAME_MAX 64

/* A probe target: an enrolled chip or, with is_landmark, a peer landmark. */
typedef struct {
  uint8_t pk[CL_PK_LEN];
  int64_t id; /* chips.id, or landmarks.id for a peer landmark */
  int active;
  int is_landmark; /* a peer landmark: its bursts go to landmark_links */
  char name[CL_LM_NAME_MAX + 1]; /* chips.serial or landmarks.name, or "" */
} cl_lm_target;

/* One burst's result: the signed measurement and what is derived from it. */
typedef struct {
  cl_measurement m;   /* signed record */
  int64_t chip_id;    /* chips.id (landmarks.id when is_link) */
  uint64_t bound_m;   /* at c */
  double est_speed;   /* landmark's configured speed, m/s */
  uint64_t est_bound_m;
  uint32_t probes_sent; /* probes of the burst, answered or not; 0: unknown */
  int is_link;          /* chip_id is a peer landmark's id: goes to landmark_links */
} cl_lm_record;

#endif
