-- chiploc schema 0004: what the database can refuse on its own, and what the
-- verifier needs to believe only signed evidence (docs/THREAT_MODEL.md,
-- "Database tampering"). The database cannot check Ed25519 signatures; it
-- refuses what it can (a landmark's login writing rows in another landmark's
-- name, client-chosen ids and insert times) and the verifier checks every
-- signature before it uses a row.
-- Never edit this file after it has shipped: add a new numbered file.

-- The login role allowed to write this landmark's measurements and links
-- (`chiploc landmark bind`; one role may be bound to the old and the new
-- entry of a key rotation), and the landmark's lifecycle: after retired_at
-- its key no longer counts. 'retired' ignores rows the landmark signed as
-- measured after that time; 'revoked' (a key that may be stolen, which can
-- sign any time it likes) also ignores rows the database received after it.
ALTER TABLE landmarks ADD COLUMN db_role name;
ALTER TABLE landmarks ADD COLUMN retired_at timestamptz;
ALTER TABLE landmarks ADD COLUMN retire_kind text
  CHECK (retire_kind IN ('retired', 'revoked'));
ALTER TABLE landmarks ADD CONSTRAINT landmarks_retired_kind
  CHECK ((retired_at IS NULL) = (retire_kind IS NULL) AND (retired_at IS NULL OR isfinite(retired_at)));

-- The login role allowed to write this verifier's attestations
-- (`chiploc verifier bind`).
ALTER TABLE verifiers ADD COLUMN db_role name;

-- On clusters created before PostgreSQL 15 every role may create objects in
-- schema public, e.g. a function that an unqualified call in a chiploc query
-- would pick over the built-in one. Nobody but the owner may.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Who inserted each row (the database login, set by the guard below).
ALTER TABLE measurements ADD COLUMN inserted_by name;
ALTER TABLE landmark_links ADD COLUMN inserted_by name;

-- Assigns id, inserted_at and inserted_by whatever the client sent, and
-- refuses a row whose landmark (the measuring landmark of a measurement, the
-- probing landmark of a link) is not bound to the inserting login. Members
-- of chiploc_admin and the tables' owner are not limited to one landmark.
-- inserted_at is the time of the row's insertion (clock_timestamp), not of
-- its transaction's start, which the writer chooses. Nobody may add rows of
-- a landmark whose key is revoked, once the revocation is in effect.
CREATE FUNCTION chiploc_guard_signed_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $fn$
DECLARE
  lm bigint;
BEGIN
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
     OR pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
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

CREATE TRIGGER measurements_guard BEFORE INSERT ON measurements
  FOR EACH ROW EXECUTE FUNCTION chiploc_guard_signed_row('measurements');
CREATE TRIGGER landmark_links_guard BEFORE INSERT ON landmark_links
  FOR EACH ROW EXECUTE FUNCTION chiploc_guard_signed_row('links');

-- A landmark names every column but the ones the database assigns.
REVOKE INSERT ON TABLE measurements, landmark_links FROM chiploc_landmark;
GRANT INSERT (chip_id, landmark_id, nonce, seq, issued_at_ns, challenge_sig, chip_sig, rtt_ns,
              bound_m, est_speed_m_s, est_bound_m, probe_count, probes_sent, measured_at,
              measured_at_ns, landmark_sig)
  ON TABLE measurements TO chiploc_landmark;
GRANT INSERT (from_landmark_id, to_landmark_id, nonce, seq, issued_at_ns, challenge_sig, chip_sig,
              rtt_ns, bound_m, probe_count, probes_sent, measured_at, measured_at_ns,
              landmark_sig)
  ON TABLE landmark_links TO chiploc_landmark;

-- Attestations, layout 2 (docs/ATTESTATION.md): the evidence is cited by the
-- landmark signatures of the measurements used (measurement_ids stays, for
-- reading, and proves nothing), and the digests of the declared site, of the
-- used landmarks' keys and positions and of the allowed regions' geometry are
-- signed, so that editing any of them afterwards is caught by the audit.
ALTER TABLE attestations ADD COLUMN layout_version smallint NOT NULL DEFAULT 1
  CHECK (layout_version IN (1, 2));
ALTER TABLE attestations ADD COLUMN measurement_sigs bytea[];
ALTER TABLE attestations ADD COLUMN site_digest bytea CHECK (octet_length(site_digest) = 32);
ALTER TABLE attestations ADD COLUMN landmarks_digest bytea
  CHECK (octet_length(landmarks_digest) = 32);
ALTER TABLE attestations ADD COLUMN regions_digest bytea CHECK (octet_length(regions_digest) = 32);
ALTER TABLE attestations ADD CONSTRAINT attestations_v2_complete
  CHECK (layout_version = 1 OR (measurement_sigs IS NOT NULL AND site_digest IS NOT NULL
                                AND landmarks_digest IS NOT NULL AND regions_digest IS NOT NULL));

-- A verifier's login writes attestations of the verifier it is bound to
-- only (another verifier's chain is not its to extend), at the database's
-- time.
CREATE FUNCTION chiploc_guard_attestation() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $fn$
BEGIN
  NEW.created_at := clock_timestamp();
  IF pg_has_role(current_user, 'chiploc_admin', 'MEMBER')
     OR pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER')
     OR EXISTS (SELECT 1 FROM verifiers v WHERE v.id = NEW.verifier_id
                AND v.db_role = current_user) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'role % may not write attestations of verifier %: see chiploc verifier bind',
    current_user, NEW.verifier_id USING ERRCODE = 'insufficient_privilege';
END
$fn$;
REVOKE ALL ON FUNCTION chiploc_guard_attestation() FROM PUBLIC;
CREATE TRIGGER attestations_guard BEFORE INSERT ON attestations
  FOR EACH ROW EXECUTE FUNCTION chiploc_guard_attestation();

-- The verifier names every column but the id and created_at.
REVOKE INSERT ON TABLE attestations, alerts FROM chiploc_verifier;
GRANT INSERT (chip_id, verifier_id, round_end_ns, round_end, window_ns, consistency,
              site_verdict, region_verdict, speed_m_s, centre_lat_e7, centre_lon_e7, radius_m,
              site_landmark_id, site_margin_m, allowed_regions, excluded_landmark_ids,
              landmarks_used, measurement_ids, prev_hash, hash, signature, layout_version,
              measurement_sigs, site_digest, landmarks_digest, regions_digest)
  ON TABLE attestations TO chiploc_verifier;

-- Alerts about evidence: rows naming a landmark that the verifier refused
-- (landmark_bad_records), and a verifier whose clock runs ahead of the
-- database's (verifier_clock).
ALTER TABLE alerts ADD COLUMN verifier_id bigint REFERENCES verifiers (id);
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check
  CHECK (kind IN ('chip_dark', 'chip_moved', 'site_excluded', 'outside_region', 'inconsistent',
                  'landmark_misplaced', 'landmark_bad_records', 'verifier_clock'));
-- The old subject rule (a chip or a landmark) has a generated name; find it
-- by its definition, and keep the cleared_at rule beside it.
DO $subject$
DECLARE
  c name;
BEGIN
  SELECT conname INTO c FROM pg_constraint
  WHERE conrelid = 'alerts'::regclass AND contype = 'c'
    AND pg_get_constraintdef(oid) = 'CHECK (((chip_id IS NOT NULL) OR (landmark_id IS NOT NULL)))';
  IF c IS NULL THEN
    RAISE EXCEPTION 'migration 0004: the subject check of table alerts was not found';
  END IF;
  EXECUTE format('ALTER TABLE alerts DROP CONSTRAINT %I', c);
END
$subject$;
ALTER TABLE alerts ADD CONSTRAINT alerts_subject_check
  CHECK (chip_id IS NOT NULL OR landmark_id IS NOT NULL OR verifier_id IS NOT NULL);
DROP INDEX alerts_one_open;
CREATE UNIQUE INDEX alerts_one_open
  ON alerts (kind, coalesce(chip_id, 0), coalesce(landmark_id, 0), coalesce(verifier_id, 0))
  WHERE cleared_at IS NULL;
GRANT INSERT (kind, chip_id, landmark_id, verifier_id, detail, attestation_id)
  ON TABLE alerts TO chiploc_verifier;
