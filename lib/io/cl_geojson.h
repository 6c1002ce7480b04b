/*
 * GeoJSON pictures of the location engine's shapes (RFC 7946): a landmark's
 * cap as a polygon that contains it, the feasible region F as the union of
 * the engine's cells, points and features. Used by `chiploc locate
 * --geojson` and `chiploc export`; pure, no I/O. Every polygon *contains*
 * what it stands for, with edges straight in longitude/latitude as RFC 7946
 * reads them (docs/LOCATE.md, "GeoJSON output").
 *
 * Ownership: every function returns a new reference (json_decref it) or
 * NULL when out of memory; cl_geojson_feature and cl_geojson_collection
 * take over the references they are given, also on failure.
 */
#ifndef CL_GEOJSON_H
#define CL_GEOJSON_H

#include "cl_geo.h"

#include <jansson.h>
#include <stddef.h>

/* Vertices of a drawn cap circle. */
#define CL_GEOJSON_CAP_VERTICES 128

/*
 * A MultiPolygon containing the geodesic cap of radius r_m metres around
 * (lat, lon) on WGS84. *outline (if not NULL) is set to how it was drawn:
 * "circle" (split at the antimeridian when it crosses it), "polar" (around
 * one pole, closed along it), "world minus antipode" (around both poles:
 * the world with a hole around the antipode outside the cap) or "world".
 */
json_t *cl_geojson_cap(double lat, double lon, double r_m, const char **outline);

/* F as a MultiPolygon of the engine's cells, horizontally adjacent cells of
 * the same latitude range merged into one rectangle; *nrects (if not NULL)
 * is the number of rectangles. */
json_t *cl_geojson_cells(const cl_geo_cell *cells, size_t n, size_t *nrects);

/* A Point geometry; coordinates are [lon, lat]. */
json_t *cl_geojson_point(double lat, double lon);

/* A Feature; geometry NULL gives a null geometry. Steals both references. */
json_t *cl_geojson_feature(json_t *geometry, json_t *props);

/* A FeatureCollection around an array of features. Steals the reference. */
json_t *cl_geojson_collection(json_t *features);

#endif
