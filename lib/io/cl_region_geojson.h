/*
 * Loading allowed regions from GeoJSON (RFC 7946) with jansson: the I/O side
 * of cl_region. The regions themselves and their tests are pure
 * (cl_region.h).
 */
#ifndef CL_REGION_GEOJSON_H
#define CL_REGION_GEOJSON_H

#include "cl_region.h"

#include <stddef.h>

/*
 * A set of regions loaded from a GeoJSON FeatureCollection (Polygon and
 * MultiPolygon geometries, or GeometryCollections of them nested at most
 * one collection deep; features with the same code are merged into one
 * region). code_property names the feature property holding the code.
 * Errors: CL_EIO (file), CL_EMALFORMED (JSON or GeoJSON structure) with err
 * naming the feature index, its code if known, and the problem.
 */
int cl_region_set_load_geojson(cl_region_set *out, const char *path, const char *code_property,
                               char *err, size_t errlen);
/* Parses GeoJSON text already in memory (same rules). */
int cl_region_set_parse_geojson(cl_region_set *out, const char *text, size_t len,
                                const char *code_property, char *err, size_t errlen);

#endif
