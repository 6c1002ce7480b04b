/*
 * The JSON of the operators' tables (cl_status.h), as `chiploc status`,
 * `chip list`, `chip show`, `landmark list`, `alerts`, `measurements` and
 * `links` print it with --json, for the other commands that serve the same
 * documents (`chiploc dashboard`). Keys are the view columns' names; cells
 * are typed by their column (numbers, booleans, arrays of alert kinds or
 * region codes, null for SQL NULL). Every function returns a new reference,
 * or NULL when out of memory.
 */
#ifndef CHIPLOC_STATUS_H
#define CHIPLOC_STATUS_H

#include "cl_status.h"

#include <jansson.h>
#include <stdint.h>

/* Row i of t as an object keyed by the column names. */
json_t *chiploc_row_json(const cl_status_rows *t, size_t i);
/* Every row of t, in order. */
json_t *chiploc_rows_json(const cl_status_rows *t);
/* The document of `chiploc status --json`: chips, landmarks (stale after
 * stale_s seconds), alerts, last_round. */
json_t *chiploc_status_json(const cl_status_summary *s, int64_t stale_s);

#endif
