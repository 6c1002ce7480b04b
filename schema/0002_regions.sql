-- chiploc schema 0002: allowed regions (GeoJSON MultiPolygons imported by
-- `chiploc region import`) and the regions each chip may run in.
-- Applied once by cl_store_migrate inside a transaction.
-- Never edit this file after it has shipped: add a new numbered file.

-- One row per region code (e.g. an ISO 3166-1 alpha-3 country code). The
-- geometry is the whole region as one RFC 7946 MultiPolygon in
-- longitude/latitude degrees, closed rings, polygons split at the
-- antimeridian; docs/REGIONS.md gives the semantics.
CREATE TABLE regions (
  -- No separators: attestations sign the codes joined by ','.
  code         text PRIMARY KEY CHECK (code <> '' AND code !~ '[,{}"\\[:space:]]'),
  name         text,
  -- coalesce: on a non-object the tests are NULL, which a CHECK lets pass.
  geojson      jsonb NOT NULL CHECK (coalesce(geojson ->> 'type' = 'MultiPolygon'
                                              AND jsonb_typeof(geojson -> 'coordinates') = 'array',
                                              false)),
  vertex_count integer NOT NULL CHECK (vertex_count >= 3),
  imported_at  timestamptz NOT NULL DEFAULT now()
);

-- The regions a chip is allowed in: its verdict is INSIDE only if its
-- feasible region lies within their union. A region in use cannot be
-- deleted; a chip's rows go with the chip.
CREATE TABLE chip_regions (
  chip_id     bigint NOT NULL REFERENCES chips (id) ON DELETE CASCADE,
  region_code text NOT NULL REFERENCES regions (code) ON UPDATE CASCADE,
  PRIMARY KEY (chip_id, region_code)
);

CREATE INDEX chip_regions_region ON chip_regions (region_code);

REVOKE ALL ON TABLE regions, chip_regions FROM PUBLIC;

GRANT SELECT ON TABLE regions, chip_regions TO chiploc_landmark;
GRANT ALL ON TABLE regions, chip_regions TO chiploc_admin;
