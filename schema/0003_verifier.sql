-- chiploc schema 0003: the verifier's records (signed, hash-chained
-- attestations), alerts, landmark-to-landmark links, dashboard views and the
-- verifier and dashboard roles. docs/ATTESTATION.md gives the signed layout;
-- the integer columns marked "signed" hold exactly the values it covers.
-- Never edit this file after it has shipped: add a new numbered file.

CREATE TABLE verifiers (
  id         bigserial PRIMARY KEY,
  name       text NOT NULL UNIQUE,
  public_key bytea NOT NULL UNIQUE CHECK (octet_length(public_key) = 32),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Informational, not signed: how many probes the landmark sent in the burst
-- (probe_count is how many were answered in time), for answer rates.
ALTER TABLE measurements ADD COLUMN probes_sent integer CHECK (probes_sent IS NULL OR probes_sent >= probe_count);

CREATE TABLE attestations (
  id                    bigserial PRIMARY KEY,
  chip_id               bigint NOT NULL REFERENCES chips (id),
  verifier_id           bigint NOT NULL REFERENCES verifiers (id),
  round_end_ns          bigint NOT NULL,  -- signed
  round_end             timestamptz NOT NULL,
  window_ns             bigint NOT NULL CHECK (window_ns > 0),  -- signed
  consistency           smallint NOT NULL CHECK (consistency BETWEEN 0 AND 2),  -- signed
  site_verdict          smallint NOT NULL CHECK (site_verdict BETWEEN 0 AND 2),  -- signed
  region_verdict        smallint NOT NULL CHECK (region_verdict BETWEEN 0 AND 3),  -- signed
  speed_m_s             bigint NOT NULL CHECK (speed_m_s > 0),  -- signed
  centre_lat_e7         integer NOT NULL,  -- signed
  centre_lon_e7         integer NOT NULL,  -- signed
  radius_m              bigint NOT NULL CHECK (radius_m >= 0),  -- signed
  site_landmark_id      bigint REFERENCES landmarks (id),  -- its key is signed
  site_margin_m         bigint NOT NULL DEFAULT 0,  -- signed
  allowed_regions       text[] NOT NULL DEFAULT '{}',  -- signed as a digest
  excluded_landmark_ids bigint[] NOT NULL DEFAULT '{}',  -- keys signed as a digest
  landmarks_used        integer NOT NULL,
  measurement_ids       bigint[] NOT NULL,  -- landmark signatures signed as a digest
  prev_hash             bytea NOT NULL CHECK (octet_length(prev_hash) = 32),  -- signed
  hash                  bytea NOT NULL UNIQUE CHECK (octet_length(hash) = 32),
  signature             bytea NOT NULL CHECK (octet_length(signature) = 64),
  created_at            timestamptz NOT NULL DEFAULT now(),
  UNIQUE (chip_id, verifier_id, round_end_ns)
);
CREATE INDEX attestations_chip_round ON attestations (chip_id, round_end_ns DESC);

CREATE TABLE alerts (
  id          bigserial PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('chip_dark', 'chip_moved', 'site_excluded',
                                            'outside_region', 'inconsistent',
                                            'landmark_misplaced')),
  chip_id     bigint REFERENCES chips (id),
  landmark_id bigint REFERENCES landmarks (id),
  raised_at   timestamptz NOT NULL DEFAULT now(),
  cleared_at  timestamptz CHECK (cleared_at IS NULL OR cleared_at >= raised_at),
  detail      text NOT NULL DEFAULT '',
  attestation_id bigint REFERENCES attestations (id),
  CHECK (chip_id IS NOT NULL OR landmark_id IS NOT NULL)
);
-- At most one open alert of a kind per subject.
CREATE UNIQUE INDEX alerts_one_open ON alerts (kind, coalesce(chip_id, 0), coalesce(landmark_id, 0))
  WHERE cleared_at IS NULL;

-- Landmarks probe each other like chips; the fastest probe of each burst is
-- kept here, signed the same way as a chip measurement (the peer landmark's
-- key plays the chip's part).
CREATE TABLE landmark_links (
  id             bigserial PRIMARY KEY,
  from_landmark_id bigint NOT NULL REFERENCES landmarks (id),
  to_landmark_id   bigint NOT NULL REFERENCES landmarks (id),
  nonce          bytea NOT NULL CHECK (octet_length(nonce) = 32),
  seq            bigint NOT NULL CHECK (seq >= 0),
  issued_at_ns   bigint NOT NULL CHECK (issued_at_ns >= 0),
  challenge_sig  bytea NOT NULL CHECK (octet_length(challenge_sig) = 64),
  chip_sig       bytea NOT NULL CHECK (octet_length(chip_sig) = 64),
  rtt_ns         bigint NOT NULL CHECK (rtt_ns > 0),
  bound_m        bigint NOT NULL CHECK (bound_m >= 0),
  probe_count    integer NOT NULL CHECK (probe_count > 0),
  probes_sent    integer CHECK (probes_sent IS NULL OR probes_sent >= probe_count),
  measured_at    timestamptz NOT NULL,
  measured_at_ns bigint NOT NULL CHECK (measured_at_ns >= 0),
  landmark_sig   bytea NOT NULL CHECK (octet_length(landmark_sig) = 64),
  inserted_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (from_landmark_id, nonce),
  CHECK (from_landmark_id <> to_landmark_id)
);
CREATE INDEX landmark_links_pair ON landmark_links (from_landmark_id, to_landmark_id, measured_at DESC);

-- Dashboard views. They run with their owner's rights, so the dashboard role
-- reads them without any grant on the tables underneath.
CREATE VIEW chip_status AS
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
       (SELECT max(m.measured_at) FROM measurements m WHERE m.chip_id = c.id) AS last_seen,
       coalesce((SELECT array_agg(al.kind ORDER BY al.kind) FROM alerts al
                 WHERE al.chip_id = c.id AND al.cleared_at IS NULL), '{}') AS open_alerts
FROM chips c
LEFT JOIN LATERAL (SELECT * FROM attestations a WHERE a.chip_id = c.id
                   ORDER BY a.round_end_ns DESC LIMIT 1) a ON true;

CREATE VIEW landmark_health AS
SELECT l.id AS landmark_id, l.name, l.lat, l.lon,
       s.last_probe, s.measurements_1h, s.answer_rate_1h, s.median_rtt_us_1h,
       coalesce((SELECT array_agg(al.kind ORDER BY al.kind) FROM alerts al
                 WHERE al.landmark_id = l.id AND al.cleared_at IS NULL), '{}') AS open_alerts
FROM landmarks l
LEFT JOIN LATERAL (
  SELECT max(m.measured_at) AS last_probe, count(*) AS measurements_1h,
         sum(m.probe_count) FILTER (WHERE m.probes_sent IS NOT NULL)::double precision
           / nullif(sum(m.probes_sent), 0) AS answer_rate_1h,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY m.rtt_ns) / 1000.0 AS median_rtt_us_1h
  FROM measurements m
  WHERE m.landmark_id = l.id AND m.measured_at > now() - interval '1 hour') s ON true;

CREATE VIEW open_alerts AS
SELECT al.id, al.kind, al.raised_at, c.serial AS chip_serial, l.name AS landmark_name,
       al.detail
FROM alerts al
LEFT JOIN chips c ON c.id = al.chip_id
LEFT JOIN landmarks l ON l.id = al.landmark_id
WHERE al.cleared_at IS NULL;

DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chiploc_verifier') THEN
    BEGIN
      CREATE ROLE chiploc_verifier NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chiploc_auditor') THEN
    BEGIN
      CREATE ROLE chiploc_auditor NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chiploc_dashboard') THEN
    BEGIN
      CREATE ROLE chiploc_dashboard NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
END
$roles$;

REVOKE ALL ON TABLE verifiers, attestations, alerts, landmark_links, chip_status,
  landmark_health, open_alerts FROM PUBLIC;
REVOKE ALL ON SEQUENCE verifiers_id_seq, attestations_id_seq, alerts_id_seq,
  landmark_links_id_seq FROM PUBLIC;

GRANT INSERT ON TABLE landmark_links TO chiploc_landmark;
GRANT USAGE ON SEQUENCE landmark_links_id_seq TO chiploc_landmark;

GRANT SELECT ON TABLE chips, landmarks, measurements, regions, chip_regions, verifiers,
  attestations, alerts, landmark_links TO chiploc_verifier;
GRANT INSERT ON TABLE attestations, alerts TO chiploc_verifier;
GRANT UPDATE (cleared_at, detail) ON TABLE alerts TO chiploc_verifier;
GRANT USAGE ON SEQUENCE attestations_id_seq, alerts_id_seq TO chiploc_verifier;

GRANT SELECT ON TABLE chip_status, landmark_health, open_alerts TO chiploc_dashboard;

-- An outside party can run `chiploc audit` with read access only.
GRANT SELECT ON TABLE landmarks, chips, measurements, regions, chip_regions, verifiers,
  attestations, alerts, landmark_links TO chiploc_auditor;

GRANT ALL ON TABLE verifiers, attestations, alerts, landmark_links TO chiploc_admin;
GRANT ALL ON SEQUENCE verifiers_id_seq, attestations_id_seq, alerts_id_seq,
  landmark_links_id_seq TO chiploc_admin;
GRANT SELECT ON TABLE chip_status, landmark_health, open_alerts TO chiploc_admin;
