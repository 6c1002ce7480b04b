-- chiploc schema 0001: landmarks, chips, time-partitioned signed measurements,
-- and the two base roles. Applied once by cl_store_migrate inside a
-- transaction, which also records it in chiploc_schema_migrations.
-- Never edit this file after it has shipped: add a new numbered file.
-- Migration files contain no BEGIN/COMMIT of their own.

CREATE TABLE landmarks (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL UNIQUE CHECK (name <> ''),
  public_key  bytea NOT NULL UNIQUE CHECK (octet_length(public_key) = 32),
  lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
  lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chips (
  id          bigserial PRIMARY KEY,
  public_key  bytea NOT NULL UNIQUE CHECK (octet_length(public_key) = 32),
  serial      text NOT NULL UNIQUE CHECK (serial <> ''),
  operator    text NOT NULL CHECK (operator <> ''),
  site_lat    double precision NOT NULL CHECK (site_lat BETWEEN -90 AND 90),
  site_lon    double precision NOT NULL CHECK (site_lon BETWEEN -180 AND 180),
  active      boolean NOT NULL DEFAULT true,
  enrolled_at timestamptz NOT NULL DEFAULT now()
);

-- One row per probe burst: the fastest accepted probe, signed by the landmark
-- over the fixed measurement layout (docs/PROTOCOL.md). The chip and landmark
-- public keys of that layout are chips.public_key and landmarks.public_key.
-- Integer columns hold the exact unsigned values of the layout; values above
-- 2^63-1 are refused by the writer.
CREATE TABLE measurements (
  id             bigserial NOT NULL,
  chip_id        bigint NOT NULL REFERENCES chips (id),
  landmark_id    bigint NOT NULL REFERENCES landmarks (id),
  nonce          bytea NOT NULL CHECK (octet_length(nonce) = 32),
  seq            bigint NOT NULL CHECK (seq >= 0),
  issued_at_ns   bigint NOT NULL CHECK (issued_at_ns >= 0),
  challenge_sig  bytea NOT NULL CHECK (octet_length(challenge_sig) = 64),
  chip_sig       bytea NOT NULL CHECK (octet_length(chip_sig) = 64),
  rtt_ns         bigint NOT NULL CHECK (rtt_ns > 0),
  bound_m        bigint NOT NULL CHECK (bound_m >= 0),
  est_speed_m_s  double precision NOT NULL CHECK (est_speed_m_s > 0 AND est_speed_m_s <= 299792458),
  est_bound_m    bigint NOT NULL CHECK (est_bound_m >= 0),
  probe_count    integer NOT NULL CHECK (probe_count > 0),
  measured_at    timestamptz NOT NULL,
  measured_at_ns bigint NOT NULL CHECK (measured_at_ns >= 0),
  landmark_sig   bytea NOT NULL CHECK (octet_length(landmark_sig) = 64),
  inserted_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, measured_at),
  UNIQUE (landmark_id, nonce, measured_at)
) PARTITION BY RANGE (measured_at);

CREATE INDEX measurements_chip_time ON measurements (chip_id, measured_at);

-- Rows outside every monthly partition land here, so an insert never fails
-- for want of a partition.
CREATE TABLE measurements_default PARTITION OF measurements DEFAULT;

-- Creates the monthly partitions measurements_yYYYYmMM (UTC months) for the
-- current month and the next months_ahead months, if missing. Rows already
-- sitting in the default partition for such a month are moved into the new
-- partition. Idempotent; returns how many partitions it created.
CREATE FUNCTION chiploc_ensure_partitions(months_ahead integer) RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $fn$
DECLARE
  first_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
  lo          date;
  hi          date;
  part        text;
  lo_ts       timestamptz;
  hi_ts       timestamptz;
  created     integer := 0;
BEGIN
  IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 240 THEN
    RAISE EXCEPTION 'months_ahead must be in [0, 240], got %', months_ahead
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- Two callers at once would race on the same partition names.
  PERFORM pg_advisory_xact_lock(hashtext('chiploc_ensure_partitions'));
  FOR i IN 0 .. months_ahead LOOP
    lo := (first_month + make_interval(months => i))::date;
    hi := (lo + interval '1 month')::date;
    part := 'measurements_y' || to_char(lo, 'YYYY') || 'm' || to_char(lo, 'MM');
    CONTINUE WHEN to_regclass(format('public.%I', part)) IS NOT NULL;
    lo_ts := lo::timestamp AT TIME ZONE 'UTC';
    hi_ts := hi::timestamp AT TIME ZONE 'UTC';
    IF EXISTS (SELECT 1 FROM measurements_default
               WHERE measured_at >= lo_ts AND measured_at < hi_ts) THEN
      -- Attaching a range the default partition already holds rows for would
      -- fail, so build the partition beside it and move those rows over.
      EXECUTE format('CREATE TABLE public.%I'
                     ' (LIKE measurements INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
      EXECUTE format('WITH moved AS (DELETE FROM measurements_default
                        WHERE measured_at >= $1 AND measured_at < $2 RETURNING *)
                      INSERT INTO public.%I SELECT * FROM moved', part)
        USING lo_ts, hi_ts;
      EXECUTE format('ALTER TABLE measurements ATTACH PARTITION public.%I'
                     ' FOR VALUES FROM (%L) TO (%L)', part, lo_ts, hi_ts);
    ELSE
      EXECUTE format('CREATE TABLE public.%I PARTITION OF measurements'
                     ' FOR VALUES FROM (%L) TO (%L)', part, lo_ts, hi_ts);
    END IF;
    created := created + 1;
  END LOOP;
  RETURN created;
END
$fn$;

-- Roles are cluster-wide: several chiploc databases may share them, and two
-- migrations in different databases may run at once.
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chiploc_landmark') THEN
    BEGIN
      CREATE ROLE chiploc_landmark NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chiploc_admin') THEN
    BEGIN
      CREATE ROLE chiploc_admin NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
END
$roles$;

REVOKE ALL ON TABLE landmarks, chips, measurements, measurements_default FROM PUBLIC;
REVOKE ALL ON SEQUENCE landmarks_id_seq, chips_id_seq, measurements_id_seq FROM PUBLIC;
REVOKE ALL ON FUNCTION chiploc_ensure_partitions(integer) FROM PUBLIC;

-- A landmark reads who is enrolled and appends measurements; nothing else.
GRANT SELECT ON TABLE chips, landmarks TO chiploc_landmark;
GRANT INSERT ON TABLE measurements TO chiploc_landmark;
GRANT USAGE ON SEQUENCE measurements_id_seq TO chiploc_landmark;

GRANT ALL ON TABLE landmarks, chips, measurements TO chiploc_admin;
GRANT ALL ON SEQUENCE landmarks_id_seq, chips_id_seq, measurements_id_seq TO chiploc_admin;
GRANT EXECUTE ON FUNCTION chiploc_ensure_partitions(integer) TO chiploc_admin;
