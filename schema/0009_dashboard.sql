-- chiploc schema 0009: the views `chiploc dashboard` reads beyond those of
-- 0003 and 0006: every attestation with what it is checked against (verdict
-- history and chain re-verification), the allowed regions of each chip and
-- the regions' shapes (the map's base layer). Like the other views they run
-- with their owner's rights, so the dashboard role reads them without any
-- grant on a table. docs/SCHEMA.md, "Migration 0009", describes every column.
-- Never edit this file after it has shipped: add a new numbered file.

-- Every attestation, by chip serial and verifier name: the verdicts as text
-- (as in chip_status) for people, and every column the signed layout is
-- rebuilt from (docs/ATTESTATION.md) with the keys it names, so that a
-- reader of the views alone can check each record's signature under the
-- verifier's key and each prev_hash against the hash of the record before
-- it. Keys of rows that are gone (a landmark, a measurement) read as NULL:
-- the record can then not be rebuilt, which is what the checker must see.
-- Filter on chip_serial.
CREATE VIEW attestation_log AS
SELECT a.id, c.serial AS chip_serial, v.name AS verifier_name, a.round_end,
       CASE a.consistency WHEN 0 THEN 'CONSISTENT' WHEN 1 THEN 'INSUFFICIENT'
                          WHEN 2 THEN 'INCONSISTENT' END AS consistency,
       CASE a.site_verdict WHEN 0 THEN 'UNKNOWN' WHEN 1 THEN 'SITE_CONSISTENT'
                           WHEN 2 THEN 'SITE_EXCLUDED' END AS site_verdict,
       CASE a.region_verdict WHEN 0 THEN 'UNKNOWN' WHEN 1 THEN 'INSIDE' WHEN 2 THEN 'OUTSIDE'
                             WHEN 3 THEN 'UNDETERMINED' END AS region_verdict,
       CASE WHEN a.consistency = 0 THEN a.radius_m / 1000.0 END AS radius_km,
       CASE WHEN a.consistency = 0 THEN a.centre_lat_e7 / 1e7 END AS centre_lat,
       CASE WHEN a.consistency = 0 THEN a.centre_lon_e7 / 1e7 END AS centre_lon,
       a.landmarks_used, a.created_at AS attested_at,
       -- The signed layout's fields, as the table holds them.
       a.chip_id, a.verifier_id, c.public_key AS chip_public_key,
       v.public_key AS verifier_public_key, a.layout_version, a.round_end_ns, a.window_ns,
       a.prev_hash, a.consistency AS consistency_code, a.site_verdict AS site_code,
       a.region_verdict AS region_code, a.speed_m_s, a.centre_lat_e7, a.centre_lon_e7,
       a.radius_m, a.site_landmark_id IS NOT NULL AS has_site_landmark,
       sl.public_key AS site_landmark_public_key, a.site_margin_m, a.allowed_regions,
       -- The excluded landmarks' keys, in id order; NULL for an id that
       -- names no landmark.
       ARRAY(SELECT l.public_key FROM unnest(a.excluded_landmark_ids) WITH ORDINALITY e(id, o)
             LEFT JOIN landmarks l ON l.id = e.id ORDER BY e.o) AS excluded_landmark_keys,
       a.measurement_ids,
       -- Layout 1 signs the landmark signatures of the measurements it
       -- names: one per id, in id order, NULL for an id that names no row.
       -- Layout 2 carries them itself (measurement_sigs).
       CASE WHEN a.layout_version = 1 THEN
         ARRAY(SELECT m.landmark_sig FROM unnest(a.measurement_ids) WITH ORDINALITY u(id, o)
               LEFT JOIN measurements m ON m.id = u.id ORDER BY u.o) END AS measurement_id_sigs,
       a.measurement_sigs, a.site_digest, a.landmarks_digest, a.regions_digest,
       a.hash, a.signature
FROM attestations a
JOIN chips c ON c.id = a.chip_id
JOIN verifiers v ON v.id = a.verifier_id
LEFT JOIN landmarks sl ON sl.id = a.site_landmark_id;

-- The regions each chip is allowed in (chip_regions), by serial.
CREATE VIEW chip_allowed AS
SELECT c.serial AS chip_serial, cr.region_code AS code
FROM chip_regions cr
JOIN chips c ON c.id = cr.chip_id;

-- The regions imported with `chiploc region import`: code, name and the
-- MultiPolygon as stored (RFC 7946, longitude/latitude).
CREATE VIEW region_shapes AS
SELECT r.code, r.name, r.geojson, r.vertex_count, r.imported_at
FROM regions r;

REVOKE ALL ON TABLE attestation_log, chip_allowed, region_shapes FROM PUBLIC;
GRANT SELECT ON TABLE attestation_log, chip_allowed, region_shapes
  TO chiploc_dashboard, chiploc_auditor, chiploc_admin;
