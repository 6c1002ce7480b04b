-- chiploc schema 0005: measurement records of protocol version 2
-- (docs/PROTOCOL.md): a burst's accepted probes with the session they ran in,
-- the chip's transcript signature over them and the landmark's signature
-- over the whole record. Protocol 1 rows stay as they are, marked
-- protocol = 1; nobody may add new ones. docs/SCHEMA.md, "Migration 0005",
-- describes every column.
-- Never edit this file after it has shipped: add a new numbered file.

-- measurements is partitioned: ALTER TABLE on the parent changes every
-- partition, the default one included, and CREATE TABLE ... PARTITION OF or
-- (LIKE measurements INCLUDING DEFAULTS INCLUDING CONSTRAINTS) in
-- chiploc_ensure_partitions copies the columns, defaults and checks into the
-- partitions made later.
--
-- protocol: every existing row is a protocol 1 row (the constant default of
-- ADD COLUMN fills it without rewriting the table); new rows default to 2.
ALTER TABLE measurements ADD COLUMN protocol smallint NOT NULL DEFAULT 1;
ALTER TABLE measurements ALTER COLUMN protocol SET DEFAULT 2;
ALTER TABLE landmark_links ADD COLUMN protocol smallint NOT NULL DEFAULT 1;
ALTER TABLE landmark_links ALTER COLUMN protocol SET DEFAULT 2;

-- The record's own columns: the cipher suite, the handshake's session
-- fields (cl_hs_blob_put: both ephemeral keys, both nonces, both handshake
-- signatures, CL_HS_BLOB_LEN = 256 bytes), the entries
-- (cl_probes_blob_put: probe_count times seq, nonce, MAC, rtt_ns; 80 bytes
-- each) and the chip's transcript signature.
ALTER TABLE measurements ADD COLUMN suite integer;
ALTER TABLE measurements ADD COLUMN handshake bytea;
ALTER TABLE measurements ADD COLUMN probes bytea;
ALTER TABLE measurements ADD COLUMN transcript_sig bytea;
ALTER TABLE landmark_links ADD COLUMN suite integer;
ALTER TABLE landmark_links ADD COLUMN handshake bytea;
ALTER TABLE landmark_links ADD COLUMN probes bytea;
ALTER TABLE landmark_links ADD COLUMN transcript_sig bytea;

-- The challenge of protocol 1 is gone: its columns are NULL in protocol 2
-- rows.
ALTER TABLE measurements ALTER COLUMN issued_at_ns DROP NOT NULL;
ALTER TABLE measurements ALTER COLUMN challenge_sig DROP NOT NULL;
ALTER TABLE measurements ALTER COLUMN chip_sig DROP NOT NULL;
ALTER TABLE landmark_links ALTER COLUMN issued_at_ns DROP NOT NULL;
ALTER TABLE landmark_links ALTER COLUMN challenge_sig DROP NOT NULL;
ALTER TABLE landmark_links ALTER COLUMN chip_sig DROP NOT NULL;

-- Each protocol with exactly its columns. The coalesce makes a NULL test
-- fail the check rather than pass it. In protocol 2 rows probes_sent is part
-- of the signed record, so it is never NULL; nonce and seq are those of the
-- fastest probe (they keep the unique keys), landmark_sig is the record
-- signature, probe_count the number of entries.
ALTER TABLE measurements ADD CONSTRAINT measurements_protocol CHECK (protocol IN (1, 2));
ALTER TABLE measurements ADD CONSTRAINT measurements_v1_columns
  CHECK (protocol <> 1 OR (issued_at_ns IS NOT NULL AND challenge_sig IS NOT NULL
                           AND chip_sig IS NOT NULL AND suite IS NULL AND handshake IS NULL
                           AND probes IS NULL AND transcript_sig IS NULL));
ALTER TABLE measurements ADD CONSTRAINT measurements_v2_columns
  CHECK (protocol <> 2 OR coalesce(suite > 0 AND octet_length(handshake) = 256
                                   AND octet_length(transcript_sig) = 64
                                   AND probes_sent IS NOT NULL AND issued_at_ns IS NULL
                                   AND challenge_sig IS NULL AND chip_sig IS NULL, false));
ALTER TABLE measurements ADD CONSTRAINT measurements_v2_probes
  CHECK (protocol <> 2 OR coalesce(probe_count BETWEEN 1 AND 16
                                   AND octet_length(probes) = 80 * probe_count, false));
ALTER TABLE landmark_links ADD CONSTRAINT landmark_links_protocol CHECK (protocol IN (1, 2));
ALTER TABLE landmark_links ADD CONSTRAINT landmark_links_v1_columns
  CHECK (protocol <> 1 OR (issued_at_ns IS NOT NULL AND challenge_sig IS NOT NULL
                           AND chip_sig IS NOT NULL AND suite IS NULL AND handshake IS NULL
                           AND probes IS NULL AND transcript_sig IS NULL));
ALTER TABLE landmark_links ADD CONSTRAINT landmark_links_v2_columns
  CHECK (protocol <> 2 OR coalesce(suite > 0 AND octet_length(handshake) = 256
                                   AND octet_length(transcript_sig) = 64
                                   AND probes_sent IS NOT NULL AND issued_at_ns IS NULL
                                   AND challenge_sig IS NULL AND chip_sig IS NULL, false));
ALTER TABLE landmark_links ADD CONSTRAINT landmark_links_v2_probes
  CHECK (protocol <> 2 OR coalesce(probe_count BETWEEN 1 AND 16
                                   AND octet_length(probes) = 80 * probe_count, false));

-- The guard of migration 0004, unchanged but for one refusal: protocol 1
-- rows, whoever inserts them. This release can neither make nor verify
-- them; the ones stored before this migration stay.
CREATE OR REPLACE FUNCTION chiploc_guard_signed_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $fn$
DECLARE
  lm bigint;
BEGIN
  IF NEW.protocol IS DISTINCT FROM 2 THEN
    RAISE EXCEPTION 'protocol % % are refused: since migration 0005 this database stores '
                    'protocol 2 records only', coalesce(NEW.protocol::text, 'NULL'), TG_ARGV[0]
      USING ERRCODE = 'check_violation',
            HINT = 'upgrade the landmark to a release that speaks protocol 2';
  END IF;
  IF TG_ARGV[0] = 'links' THEN
    NEW.id := nextval('landmark_links_id_seq');
    lm := NEW.from_landmark_id;
  ELSE
    NEW.id := nextval('measurements_id_seq');
    lm := NEW.landmark_id;
  END IF;
  NEW.inserted_at := clock_timestamp();
  NEW.inserted_by := current_user;
  IF EXISTS (SELECT 1 FROM landmarks l WHERE l.id = lm AND l.retire_kind = 'revoked'
             AND l.retired_at <= NEW.inserted_at) THEN
    RAISE EXCEPTION 'landmark % is revoked: its % are refused', lm, TG_ARGV[0]
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF pg_has_role(current_user, 'chiploc_admin', 'MEMBER')
     OR pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID),
                    'MEMBER') THEN
    RETURN NEW;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM landmarks l WHERE l.id = lm AND l.db_role = current_user) THEN
    RAISE EXCEPTION 'role % may not write % of landmark %: it is bound to %', current_user,
      TG_ARGV[0], lm,
      coalesce((SELECT string_agg('landmark ' || l.id || ' (' || l.name || ')', ', ' ORDER BY l.id)
                FROM landmarks l WHERE l.db_role = current_user),
               'no landmark (see chiploc landmark bind)')
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION chiploc_guard_signed_row() FROM PUBLIC;

-- A landmark names the columns of a protocol 2 row and no other: revoking
-- INSERT on the table revokes the column grants of migration 0004 too.
REVOKE INSERT ON TABLE measurements, landmark_links FROM chiploc_landmark;
GRANT INSERT (chip_id, landmark_id, protocol, suite, nonce, seq, handshake, probes,
              transcript_sig, rtt_ns, bound_m, est_speed_m_s, est_bound_m, probe_count,
              probes_sent, measured_at, measured_at_ns, landmark_sig)
  ON TABLE measurements TO chiploc_landmark;
GRANT INSERT (from_landmark_id, to_landmark_id, protocol, suite, nonce, seq, handshake, probes,
              transcript_sig, rtt_ns, bound_m, probe_count, probes_sent, measured_at,
              measured_at_ns, landmark_sig)
  ON TABLE landmark_links TO chiploc_landmark;

-- The dashboard views count protocol 2 rows only: the rows this release
-- can verify. Same columns as in migration 0003 (CREATE OR REPLACE keeps
-- the grants).
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
                 WHERE al.chip_id = c.id AND al.cleared_at IS NULL), '{}') AS open_alerts
FROM chips c
LEFT JOIN LATERAL (SELECT * FROM attestations a WHERE a.chip_id = c.id
                   ORDER BY a.round_end_ns DESC LIMIT 1) a ON true;

CREATE OR REPLACE VIEW landmark_health AS
SELECT l.id AS landmark_id, l.name, l.lat, l.lon,
       s.last_probe, s.measurements_1h, s.answer_rate_1h, s.median_rtt_us_1h,
       coalesce((SELECT array_agg(al.kind ORDER BY al.kind) FROM alerts al
                 WHERE al.landmark_id = l.id AND al.cleared_at IS NULL), '{}') AS open_alerts
FROM landmarks l
LEFT JOIN LATERAL (
  SELECT max(m.measured_at) AS last_probe, count(*) AS measurements_1h,
         sum(m.probe_count)::double precision / nullif(sum(m.probes_sent), 0) AS answer_rate_1h,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY m.rtt_ns) / 1000.0 AS median_rtt_us_1h
  FROM measurements m
  WHERE m.landmark_id = l.id AND m.protocol = 2
    AND m.measured_at > now() - interval '1 hour') s ON true;
