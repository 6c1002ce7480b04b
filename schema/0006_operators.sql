-- chiploc schema 0006: what operators read and do without SQL (`chiploc
-- status`, `chip list|show`, `landmark list`, `alerts`, `alerts ack`,
-- `measurements`, `links`): acknowledgements of alerts, the views those
-- commands read, and read access to all the views for the dashboard and
-- auditor roles. docs/SCHEMA.md, "Migration 0006", describes every column.
-- Never edit this file after it has shipped: add a new numbered file.

-- An acknowledgement: an operator has seen an open alert, and says who they
-- are and why it may stay as it is. The alert stays open (cleared_at NULL):
-- the condition still holds, and the verifier clears the alert when it
-- ends, as any other. The verifier cannot undo an acknowledgement (its
-- UPDATE grant names cleared_at and detail only); a new occurrence after a
-- clearing is a new row, not acknowledged. acked_login is the database
-- login that acknowledged (session_user), acked_by the name the operator
-- gave. Members of chiploc_admin acknowledge (they hold every right on the
-- table); the other roles cannot.
ALTER TABLE alerts ADD COLUMN acked_at timestamptz;
ALTER TABLE alerts ADD COLUMN acked_by text;
ALTER TABLE alerts ADD COLUMN ack_reason text;
ALTER TABLE alerts ADD COLUMN acked_login name;
ALTER TABLE alerts ADD CONSTRAINT alerts_ack_complete
  CHECK ((acked_at IS NULL AND acked_by IS NULL AND ack_reason IS NULL AND acked_login IS NULL)
         OR coalesce(acked_at >= raised_at AND acked_by <> '' AND ack_reason <> ''
                     AND acked_login IS NOT NULL, false));

-- The dashboard views, widened; the columns of migration 0005 stay as they
-- were and new ones come after them (CREATE OR REPLACE keeps the grants).
-- chip_status: who attested the latest verdict, when, over which window,
-- where it stands in that verifier's chain of the chip (1 for the first
-- record) and the measurements it cites. chain_position counts the chain, so
-- select it for a few chips, not for the whole fleet.
CREATE OR REPLACE VIEW chip_status AS
SELECT c.id AS chip_id, c.serial, c.operator, c.site_lat, c.site_lon, c.active,
       a.round_end,
       CASE a.consistency WHEN 0 THEN 'CONSISTENT' WHEN 1 THEN 'INSUFFICIENT'
                          WHEN 2 THEN 'INCONSISTENT' END AS consistency,
       CASE a.site_verdict WHEN 0 THEN 'UNKNOWN' WHEN 1 THEN 'SITE_CONSISTENT'
                           WHEN 2 THEN 'SITE_EXCLUDED' END AS site_verdict,
       CASE a.region_verdict WHEN 0 THEN 'UNKNOWN' WHEN 1 THEN 'INSIDE' WHEN 2 THEN 'OUTSIDE'
                             WHEN 3 THEN 'UNDETERMINED' END AS region_verdict,
       CASE WHEN a.consistency = 0 THEN a.radius_m / 1000.0 END AS radius_km,
       CASE WHEN a.consistency = 0 THEN a.centre_lat_e7 / 1e7 END AS centre_lat,
       CASE WHEN a.consistency = 0 THEN a.centre_lon_e7 / 1e7 END AS centre_lon,
       a.landmarks_used,
       (SELECT max(m.measured_at) FROM measurements m
        WHERE m.chip_id = c.id AND m.protocol = 2) AS last_seen,
       coalesce((SELECT array_agg(al.kind ORDER BY al.kind) FROM alerts al
                 WHERE al.chip_id = c.id AND al.cleared_at IS NULL), '{}') AS open_alerts,
       (SELECT v.name FROM verifiers v WHERE v.id = a.verifier_id) AS verifier_name,
       a.created_at AS attested_at,
       (a.window_ns / 1e9)::double precision AS window_s,
       (SELECT count(*) FROM attestations p WHERE p.chip_id = c.id
        AND p.verifier_id = a.verifier_id AND p.round_end_ns <= a.round_end_ns) AS chain_position,
       encode(a.hash, 'hex') AS attestation_hash,
       a.measurement_ids
FROM chips c
LEFT JOIN LATERAL (SELECT * FROM attestations a WHERE a.chip_id = c.id
                   ORDER BY a.round_end_ns DESC LIMIT 1) a ON true;

-- landmark_health: the landmark's lifecycle (schema 0004) and its links of
-- the last hour (as the probing landmark): the newest, how many, to how many
-- peers. Protocol 2 rows only, as for measurements.
CREATE OR REPLACE VIEW landmark_health AS
SELECT l.id AS landmark_id, l.name, l.lat, l.lon,
       s.last_probe, s.measurements_1h, s.answer_rate_1h, s.median_rtt_us_1h,
       coalesce((SELECT array_agg(al.kind ORDER BY al.kind) FROM alerts al
                 WHERE al.landmark_id = l.id AND al.cleared_at IS NULL), '{}') AS open_alerts,
       l.retired_at, l.retire_kind,
       k.last_link, k.links_1h, k.peers_1h
FROM landmarks l
LEFT JOIN LATERAL (
  SELECT max(m.measured_at) AS last_probe, count(*) AS measurements_1h,
         sum(m.probe_count)::double precision / nullif(sum(m.probes_sent), 0) AS answer_rate_1h,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY m.rtt_ns) / 1000.0 AS median_rtt_us_1h
  FROM measurements m
  WHERE m.landmark_id = l.id AND m.protocol = 2
    AND m.measured_at > now() - interval '1 hour') s ON true
LEFT JOIN LATERAL (
  SELECT max(x.measured_at) AS last_link, count(*) AS links_1h,
         count(DISTINCT x.to_landmark_id) AS peers_1h
  FROM landmark_links x
  WHERE x.from_landmark_id = l.id AND x.protocol = 2
    AND x.measured_at > now() - interval '1 hour') k ON true;

-- open_alerts: the verifier an alert is about, and its acknowledgement.
CREATE OR REPLACE VIEW open_alerts AS
SELECT al.id, al.kind, al.raised_at, c.serial AS chip_serial, l.name AS landmark_name,
       al.detail, v.name AS verifier_name, al.acked_at, al.acked_by, al.ack_reason
FROM alerts al
LEFT JOIN chips c ON c.id = al.chip_id
LEFT JOIN landmarks l ON l.id = al.landmark_id
LEFT JOIN verifiers v ON v.id = al.verifier_id
WHERE al.cleared_at IS NULL;

-- Every alert, cleared ones included, with the name of its subject and its
-- state: 'open', 'acked' (open and acknowledged) or 'cleared'.
CREATE VIEW alert_log AS
SELECT al.id, al.kind,
       CASE WHEN al.cleared_at IS NOT NULL THEN 'cleared'
            WHEN al.acked_at IS NOT NULL THEN 'acked' ELSE 'open' END AS state,
       al.raised_at, al.cleared_at, c.serial AS chip_serial, l.name AS landmark_name,
       v.name AS verifier_name, al.detail, al.acked_at, al.acked_by, al.ack_reason,
       al.acked_login
FROM alerts al
LEFT JOIN chips c ON c.id = al.chip_id
LEFT JOIN landmarks l ON l.id = al.landmark_id
LEFT JOIN verifiers v ON v.id = al.verifier_id;

-- The protocol 2 measurements and links by name, without their signed
-- blobs: what an operator reads. Rows are as stored: the verifier believes
-- only those whose signatures it checked (chip_status.measurement_ids names
-- the ones the latest attestation used). Filter on measured_at.
CREATE VIEW measurement_log AS
SELECT m.id, m.measured_at, c.serial AS chip_serial, l.name AS landmark_name, m.rtt_ns,
       m.bound_m, m.est_speed_m_s, m.est_bound_m, m.probe_count, m.probes_sent, m.inserted_at
FROM measurements m
JOIN chips c ON c.id = m.chip_id
JOIN landmarks l ON l.id = m.landmark_id
WHERE m.protocol = 2;

CREATE VIEW link_log AS
SELECT x.id, x.measured_at, f.name AS from_landmark, t.name AS to_landmark, x.rtt_ns, x.bound_m,
       x.probe_count, x.probes_sent, x.inserted_at
FROM landmark_links x
JOIN landmarks f ON f.id = x.from_landmark_id
JOIN landmarks t ON t.id = x.to_landmark_id
WHERE x.protocol = 2;

REVOKE ALL ON TABLE alert_log, measurement_log, link_log FROM PUBLIC;
GRANT SELECT ON TABLE alert_log, measurement_log, link_log
  TO chiploc_dashboard, chiploc_auditor, chiploc_admin;
-- The auditor reads the tables already; the views give it the same answers
-- the dashboard gets, by name.
GRANT SELECT ON TABLE chip_status, landmark_health, open_alerts TO chiploc_auditor;
