/*
 * Loads allowed regions from GeoJSON (RFC 7946) with jansson: a
 * FeatureCollection, a single Feature, or a bare Polygon/MultiPolygon
 * geometry (code "REGION"). A Feature's geometry may also be a
 * GeometryCollection of Polygons and MultiPolygons (one nested collection
 * deep), as maritime border sets ship them. Features sharing a code become
 * one region.
 *
 * All or nothing: the whole document is checked first (structure, property,
 * coordinates, rings) and regions are built only when it is clean, so the
 * first problem in file order is the one reported, as
 *   feature 12 (code "FRA"): geometry.coordinates[0][3]: expected [lon, lat] numbers
 * Regions of a set are sorted by code, so lookups are binary searches.
 */
#include "cl_region_geojson.h"
#include "cl_err.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Largest GeoJSON file the loader reads. */
#define MAX_FILE_BYTES ((size_t)1 << 30)
/* Code used for a bare geometry. */
#define BARE_CODE "REGION"

/* One feature to turn into (part of) a region. */
typedef struct {
  size_t index; /* position in the file */
  const char *code;
  json_t *geometry;
  int bare; /* a bare geometry: messages carry no feature prefix */
} feature_ref;

/* Parse state shared by the checking and the building pass. */
typedef struct {
  char prefix[160]; /* "feature 3 (code \"X\"): " or "" for a bare geometry */
  char *err;
  size_t errlen;
  /* "geometry.geometries[3]: " while a collection member is walked, else
   * "": rings and polygons are numbered within their member. */
  char member[136];
  double *buf; /* one ring as lon, lat pairs */
  size_t bufcap;
} walker;

static int fail(walker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the feature prefix and the message into err; CL_EMALFORMED. The
 * message follows only a prefix that fitted whole, so a cut message never
 * reads as if it belonged to another feature. */
static int fail(walker *w, const char *fmt, ...) {
  cl_err_set(w->err, w->errlen, "%s", w->prefix);
  size_t n = strlen(w->prefix);
  if (w->err && n < w->errlen) {
    va_list ap;
    va_start(ap, fmt);
    cl_err_vset(w->err + n, w->errlen - n, fmt, ap);
    va_end(ap);
  }
  return CL_EMALFORMED;
}

/* A code as it may appear in a message: printable, at most 40 bytes. */
static void printable_code(char *out, size_t outlen, const char *code) {
  size_t k = 0;
  for (const char *p = code; *p && k + 4 < outlen && k < 40; p++)
    out[k++] = ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"') ? '?' : *p;
  if (*code && strlen(code) > k) {
    out[k++] = '.';
    out[k++] = '.';
  }
  out[k] = '\0';
}

static void set_prefix(walker *w, size_t index, const char *code) {
  if (code) {
    char c[48];
    printable_code(c, sizeof c, code);
    snprintf(w->prefix, sizeof w->prefix, "feature %zu (code \"%s\"): ", index, c);
  } else {
    snprintf(w->prefix, sizeof w->prefix, "feature %zu: ", index);
  }
}

/* Number of distinct points among n, capped at 3. */
static size_t distinct_upto3(const double *p, size_t n) {
  if (n == 0) return 0;
  size_t i = 1;
  while (i < n && p[2 * i] == p[0] && p[2 * i + 1] == p[1]) i++;
  if (i >= n) return 1;
  const double *second = &p[2 * i];
  for (i++; i < n; i++) {
    const double *q = &p[2 * i];
    if ((q[0] != p[0] || q[1] != p[1]) && (q[0] != second[0] || q[1] != second[1])) return 3;
  }
  return 2;
}

/*
 * Reads ring `ring` (a JSON array at `path`) into w->buf and checks it.
 * With reg == NULL it only checks; otherwise it adds the ring to reg as
 * polygon `polygon`. polygon_in_geometry numbers the polygon for messages.
 */
static int walk_ring(walker *w, json_t *ring, const char *path, size_t ri,
                     size_t polygon_in_geometry, cl_region *reg, int polygon) {
  if (!json_is_array(ring)) return fail(w, "%s[%zu]: expected an array of positions", path, ri);
  size_t n = json_array_size(ring);
  if (n > SIZE_MAX / 2 / sizeof(double)) return fail(w, "%s[%zu]: too many positions", path, ri);
  if (2 * n > w->bufcap) {
    size_t cap = w->bufcap ? w->bufcap : 64;
    while (cap < 2 * n) cap *= 2;
    double *nb = realloc(w->buf, cap * sizeof *nb);
    if (!nb) {
      cl_err_set(w->err, w->errlen, "out of memory");
      return CL_ENOMEM;
    }
    w->buf = nb;
    w->bufcap = cap;
  }
  for (size_t v = 0; v < n; v++) {
    json_t *pos = json_array_get(ring, v);
    size_t np = json_is_array(pos) ? json_array_size(pos) : 0;
    int ok = np >= 2;
    for (size_t k = 0; ok && k < np; k++) ok = json_is_number(json_array_get(pos, k));
    if (!ok) return fail(w, "%s[%zu][%zu]: expected [lon, lat] numbers", path, ri, v);
    double lon = json_number_value(json_array_get(pos, 0));
    double lat = json_number_value(json_array_get(pos, 1));
    if (!(lon >= -180.0 && lon <= 180.0))
      return fail(w, "%s[%zu][%zu]: longitude %g out of range [-180, 180]", path, ri, v, lon);
    if (!(lat >= -90.0 && lat <= 90.0))
      return fail(w, "%s[%zu][%zu]: latitude %g out of range [-90, 90]", path, ri, v, lat);
    w->buf[2 * v] = lon;
    w->buf[2 * v + 1] = lat;
  }
  size_t d = distinct_upto3(w->buf, n);
  if (d < 3)
    return fail(w, "%sring %zu of polygon %zu has %zu distinct point%s, need 3", w->member, ri,
                polygon_in_geometry, d, d == 1 ? "" : "s");
  if (!reg) return CL_OK;
  int rc = cl_region_add_ring(reg, polygon, w->buf, n);
  if (rc == CL_ETOOBIG) return fail(w, "the region has more vertices than one region may hold");
  if (rc != CL_OK) {
    if (rc == CL_ENOMEM) cl_err_set(w->err, w->errlen, "out of memory");
    else fail(w, "%sring %zu of polygon %zu was refused", w->member, ri, polygon_in_geometry);
    return rc;
  }
  return CL_OK;
}

/* One polygon: an array of rings, the first the outer one. */
static int walk_polygon(walker *w, json_t *poly, const char *path, size_t polygon_in_geometry,
                        cl_region *reg, int polygon) {
  if (!json_is_array(poly)) return fail(w, "%s: expected an array of rings", path);
  if (json_array_size(poly) == 0)
    return fail(w, "%s: polygon %zu has no rings", path, polygon_in_geometry);
  for (size_t ri = 0; ri < json_array_size(poly); ri++) {
    int rc = walk_ring(w, json_array_get(poly, ri), path, ri, polygon_in_geometry, reg, polygon);
    if (rc != CL_OK) return rc;
  }
  return CL_OK;
}

/* How deep GeometryCollections may nest: a Feature's collection, and one
 * collection inside it (RFC 7946 section 3.1.8 discourages nesting). */
#define MAX_COLLECTION_DEPTH 2

/*
 * Checks a Polygon or MultiPolygon geometry object at `gpath` ("geometry",
 * or "geometry.geometries[3]" for a member of a collection), or adds its
 * polygons to reg numbered from *next_polygon on (which it advances).
 */
static int walk_polygons(walker *w, json_t *g, const char *type, const char *gpath,
                         cl_region *reg, int *next_polygon) {
  int multi = strcmp(type, "MultiPolygon") == 0;
  json_t *coords = json_object_get(g, "coordinates");
  char path[160];
  snprintf(path, sizeof path, "%s.coordinates", gpath);
  if (!json_is_array(coords))
    return fail(w, "%s: expected an array of %s", path, multi ? "polygons" : "rings");
  if (!multi) {
    int rc = walk_polygon(w, coords, path, 0, reg, *next_polygon);
    if (rc == CL_OK) (*next_polygon)++;
    return rc;
  }
  if (json_array_size(coords) == 0) return fail(w, "%s: no polygons", path);
  for (size_t p = 0; p < json_array_size(coords); p++) {
    char ppath[192];
    snprintf(ppath, sizeof ppath, "%s[%zu]", path, p);
    int rc = walk_polygon(w, json_array_get(coords, p), ppath, p, reg, *next_polygon);
    if (rc != CL_OK) return rc;
    (*next_polygon)++;
  }
  return CL_OK;
}

/*
 * The members of a GeometryCollection at `gpath`, depth levels deep
 * (1 for a Feature's geometry). `label` numbers the collection for messages
 * ("" for the Feature's own, "3." for its member 3). Members are walked in
 * order, so the polygons get the numbers the same polygons would have in
 * one MultiPolygon and the region, and its digest, do not depend on the
 * container.
 */
static int walk_collection(walker *w, json_t *g, const char *gpath, const char *label, int depth,
                           cl_region *reg, int *next_polygon) {
  json_t *members = json_object_get(g, "geometries");
  if (!json_is_array(members))
    return fail(w, "%s.geometries: expected an array of geometries", gpath);
  if (json_array_size(members) == 0)
    return fail(w, "%s is an empty GeometryCollection (a region needs a shape)", gpath);
  for (size_t m = 0; m < json_array_size(members); m++) {
    json_t *mg = json_array_get(members, m);
    char mpath[128], mlabel[48];
    snprintf(mpath, sizeof mpath, "%s.geometries[%zu]", gpath, m);
    snprintf(mlabel, sizeof mlabel, "%s%zu", label, m);
    if (!json_is_object(mg)) return fail(w, "%s: expected a geometry object", mpath);
    const char *type = json_string_value(json_object_get(mg, "type"));
    if (!type) return fail(w, "%s.type missing or not a string", mpath);
    int rc;
    if (strcmp(type, "Polygon") == 0 || strcmp(type, "MultiPolygon") == 0) {
      snprintf(w->member, sizeof w->member, "%s: ", mpath);
      rc = walk_polygons(w, mg, type, mpath, reg, next_polygon);
      w->member[0] = '\0';
    } else if (strcmp(type, "GeometryCollection") == 0) {
      if (depth >= MAX_COLLECTION_DEPTH)
        return fail(w,
                    "GeometryCollection member %s is a GeometryCollection nested %d deep; "
                    "at most %d levels are accepted",
                    mlabel, depth + 1, MAX_COLLECTION_DEPTH);
      char sublabel[56];
      snprintf(sublabel, sizeof sublabel, "%s.", mlabel);
      rc = walk_collection(w, mg, mpath, sublabel, depth + 1, reg, next_polygon);
    } else {
      return fail(w,
                  "GeometryCollection member %s is a%s %.40s; only Polygon and MultiPolygon "
                  "members are accepted",
                  mlabel, type[0] && strchr("AEIOU", type[0]) ? "n" : "", type);
    }
    if (rc != CL_OK) return rc;
  }
  return CL_OK;
}

/*
 * Checks a geometry object, or adds its polygons to reg numbered from
 * *next_polygon on (which it advances). A GeometryCollection contributes
 * the polygons of its members.
 */
static int walk_geometry(walker *w, json_t *g, cl_region *reg, int *next_polygon) {
  if (!json_is_object(g)) return fail(w, "geometry: expected an object");
  const char *type = json_string_value(json_object_get(g, "type"));
  if (!type) return fail(w, "geometry.type missing or not a string");
  if (strcmp(type, "Polygon") == 0 || strcmp(type, "MultiPolygon") == 0)
    return walk_polygons(w, g, type, "geometry", reg, next_polygon);
  if (strcmp(type, "GeometryCollection") == 0)
    return walk_collection(w, g, "geometry", "", 1, reg, next_polygon);
  return fail(w,
              "unsupported geometry type \"%.40s\" (Polygon, MultiPolygon, or a "
              "GeometryCollection of them)",
              type);
}

/* Checks one Feature and fills ref: its code and geometry. */
static int read_feature(walker *w, json_t *f, size_t index, const char *code_property,
                        feature_ref *ref) {
  set_prefix(w, index, NULL);
  if (!json_is_object(f)) return fail(w, "expected a Feature object");
  const char *type = json_string_value(json_object_get(f, "type"));
  if (!type || strcmp(type, "Feature") != 0)
    return fail(w, "type is %s%.40s%s, expected \"Feature\"", type ? "\"" : "",
                type ? type : "missing or not a string", type ? "\"" : "");
  json_t *props = json_object_get(f, "properties");
  const char *code = json_string_value(json_object_get(props, code_property));
  if (!code) return fail(w, "property \"%.40s\" missing or not a string", code_property);
  if (code[0] == '\0') return fail(w, "property \"%.40s\" is empty", code_property);
  set_prefix(w, index, code);
  json_t *g = json_object_get(f, "geometry");
  if (!g || json_is_null(g)) return fail(w, "geometry is null (a region needs a shape)");
  int dummy = 0;
  int rc = walk_geometry(w, g, NULL, &dummy);
  if (rc != CL_OK) return rc;
  *ref = (feature_ref){.index = index, .code = code, .geometry = g};
  return CL_OK;
}

static int cmp_ref(const void *a, const void *b) {
  const feature_ref *x = a, *y = b;
  int c = strcmp(x->code, y->code);
  if (c) return c;
  return (x->index > y->index) - (x->index < y->index);
}

/* Collects the features of the document; a bare geometry is one pseudo
 * feature with code BARE_CODE. *refs is malloc'd. */
static int collect(walker *w, json_t *root, const char *code_property, feature_ref **refs,
                   size_t *n) {
  *refs = NULL;
  *n = 0;
  if (!json_is_object(root)) return fail(w, "top level: expected a GeoJSON object");
  const char *type = json_string_value(json_object_get(root, "type"));
  if (!type) return fail(w, "top level: \"type\" missing or not a string");
  if (strcmp(type, "Polygon") == 0 || strcmp(type, "MultiPolygon") == 0) {
    int dummy = 0;
    int rc = walk_geometry(w, root, NULL, &dummy);
    if (rc != CL_OK) return rc;
    *refs = malloc(sizeof **refs);
    if (!*refs) return CL_ENOMEM;
    (*refs)[0] = (feature_ref){.index = 0, .code = BARE_CODE, .geometry = root, .bare = 1};
    *n = 1;
    return CL_OK;
  }
  json_t *features;
  int single = strcmp(type, "Feature") == 0;
  if (single) {
    features = root;
  } else if (strcmp(type, "FeatureCollection") == 0) {
    features = json_object_get(root, "features");
    if (!json_is_array(features))
      return fail(w, "top level: \"features\" missing or not an array");
    if (json_array_size(features) == 0) return fail(w, "the FeatureCollection has no features");
  } else {
    return fail(w, "unsupported GeoJSON type \"%.40s\" (FeatureCollection, Feature, Polygon or "
                   "MultiPolygon)",
                type);
  }
  size_t count = single ? 1 : json_array_size(features);
  feature_ref *r = calloc(count, sizeof *r);
  if (!r) return CL_ENOMEM;
  for (size_t i = 0; i < count; i++) {
    json_t *f = single ? root : json_array_get(features, i);
    int rc = read_feature(w, f, i, code_property, &r[i]);
    if (rc != CL_OK) {
      free(r);
      return rc;
    }
  }
  *refs = r;
  *n = count;
  return CL_OK;
}

/* Builds one region per code from refs sorted by code. */
static int build(walker *w, feature_ref *refs, size_t n, cl_region_set *out) {
  size_t groups = 0;
  for (size_t i = 0; i < n; i++)
    if (i == 0 || strcmp(refs[i - 1].code, refs[i].code) != 0) groups++;
  out->regions = calloc(groups, sizeof *out->regions);
  if (!out->regions) return CL_ENOMEM;
  int rc = CL_OK;
  int next_polygon = 0;
  for (size_t i = 0; i < n && rc == CL_OK; i++) {
    if (i == 0 || strcmp(refs[i - 1].code, refs[i].code) != 0) {
      rc = cl_region_create(&out->regions[out->n], refs[i].code);
      if (rc != CL_OK) break;
      out->n++;
      next_polygon = 0;
    }
    cl_region *reg = out->regions[out->n - 1];
    if (refs[i].bare)
      w->prefix[0] = '\0';
    else
      set_prefix(w, refs[i].index, refs[i].code);
    rc = walk_geometry(w, refs[i].geometry, reg, &next_polygon);
    if (rc == CL_OK && (i + 1 == n || strcmp(refs[i + 1].code, refs[i].code) != 0)) {
      rc = cl_region_finish(reg);
      if (rc != CL_OK)
        cl_err_set(w->err, w->errlen, "region \"%.40s\": out of memory", refs[i].code);
    }
  }
  return rc;
}

int cl_region_set_parse_geojson(cl_region_set *out, const char *text, size_t len,
                                const char *code_property, char *err, size_t errlen) {
  if (!out) return CL_EINVAL;
  out->regions = NULL;
  out->n = 0;
  if (!text || !code_property || !code_property[0]) {
    cl_err_set(err, errlen, "no GeoJSON text or no code property");
    return CL_EINVAL;
  }
  json_error_t jerr;
  json_t *root = json_loadb(text, len, 0, &jerr);
  if (!root) {
    cl_err_set(err, errlen, "JSON syntax error at line %d, column %d: %s", jerr.line, jerr.column,
              jerr.text);
    return CL_EMALFORMED;
  }
  walker w = {.err = err, .errlen = errlen};
  feature_ref *refs = NULL;
  size_t n = 0;
  int rc = collect(&w, root, code_property, &refs, &n);
  if (rc == CL_OK) {
    qsort(refs, n, sizeof *refs, cmp_ref);
    rc = build(&w, refs, n, out);
  }
  if (rc == CL_ENOMEM && err && errlen && !err[0]) cl_err_set(err, errlen, "out of memory");
  if (rc != CL_OK) cl_region_set_free(out);
  free(refs);
  free(w.buf);
  json_decref(root);
  return rc;
}

int cl_region_set_load_geojson(cl_region_set *out, const char *path, const char *code_property,
                               char *err, size_t errlen) {
  if (!out) return CL_EINVAL;
  out->regions = NULL;
  out->n = 0;
  if (!path) return CL_EINVAL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    cl_err_set(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return CL_EIO;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    cl_err_set(err, errlen, "%s: not a regular file", path);
    fclose(f);
    return CL_EIO;
  }
  if ((uintmax_t)st.st_size > MAX_FILE_BYTES) {
    cl_err_set(err, errlen, "%s: %jd bytes, more than the %zu a region file may have", path,
              (intmax_t)st.st_size, MAX_FILE_BYTES);
    fclose(f);
    return CL_ETOOBIG;
  }
  size_t size = (size_t)st.st_size;
  char *text = malloc(size ? size : 1);
  if (!text) {
    fclose(f);
    cl_err_set(err, errlen, "%s: out of memory", path);
    return CL_ENOMEM;
  }
  size_t got = fread(text, 1, size, f);
  int read_err = ferror(f);
  fclose(f);
  if (got != size || read_err) {
    cl_err_set(err, errlen, "cannot read %s", path);
    free(text);
    return CL_EIO;
  }
  int rc = cl_region_set_parse_geojson(out, text, size, code_property, err, errlen);
  free(text);
  return rc;
}
