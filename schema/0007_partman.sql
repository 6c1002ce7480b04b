-- chiploc schema 0007: the monthly partitions of measurements are managed by
-- pg_partman 4.x (docs/SCHEMA.md, "Partitions"): it makes the coming months'
-- partitions ahead of time and detaches the months past a retention, and
-- `chiploc db maintain` runs it (docs/OPERATIONS.md, "Partitions and
-- retention"). The existing partitions are adopted under pg_partman's names,
-- measurements_pYYYY_MM; the default partition stays, so a row of a month
-- without a partition is never refused.
-- Never edit this file after it has shipped: add a new numbered file.

-- pg_partman must be installed in schema partman. Only a superuser may
-- create it; a migration run by a superuser does, anyone else gets the
-- commands a superuser must run, for this database and this login.
DO $partman$
DECLARE
  su boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
  available text := (SELECT default_version FROM pg_available_extensions WHERE name = 'pg_partman');
  ext_schema name;
  ext_version text;
  grants text := format('GRANT ALL ON SCHEMA partman TO %1$I; '
                        'GRANT ALL ON ALL TABLES IN SCHEMA partman TO %1$I;', current_user);
BEGIN
  SELECT n.nspname, e.extversion INTO ext_schema, ext_version
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
  WHERE e.extname = 'pg_partman';
  IF ext_schema IS NULL THEN
    IF available IS NULL THEN
      RAISE EXCEPTION 'migration 0007: the database server has no pg_partman extension'
        USING DETAIL = format('install it on the database host (Debian: apt-get install '
                              'postgresql-%s-partman), then run chiploc db migrate again',
                              current_setting('server_version_num')::int / 10000);
    END IF;
    IF NOT su THEN
      RAISE EXCEPTION 'migration 0007: extension pg_partman is not installed in database %',
        current_database()
        USING DETAIL = format('as a superuser, run: psql -d %I -c ''CREATE SCHEMA partman; '
                              'CREATE EXTENSION pg_partman SCHEMA partman; %s'' and then '
                              'chiploc db migrate again', current_database(), grants);
    END IF;
    IF available NOT LIKE '4.%' THEN
      RAISE EXCEPTION 'migration 0007: pg_partman % is available; chiploc needs version 4', available;
    END IF;
    CREATE SCHEMA IF NOT EXISTS partman;
    CREATE EXTENSION pg_partman SCHEMA partman;
  ELSIF ext_schema <> 'partman' THEN
    RAISE EXCEPTION 'migration 0007: pg_partman is installed in schema %, chiploc needs it in '
                    'schema partman', ext_schema;
  ELSIF ext_version NOT LIKE '4.%' THEN
    RAISE EXCEPTION 'migration 0007: pg_partman % is installed; chiploc needs version 4',
      ext_version;
  ELSIF NOT su AND NOT (has_schema_privilege('partman', 'USAGE, CREATE')
                        AND has_table_privilege('partman.part_config',
                                                'SELECT, INSERT, UPDATE, DELETE')
                        AND has_table_privilege('partman.part_config_sub',
                                                'SELECT, INSERT, UPDATE, DELETE')) THEN
    RAISE EXCEPTION 'migration 0007: role % may not use pg_partman''s tables in schema partman',
      current_user
      USING DETAIL = format('as a superuser, run: psql -d %I -c ''%s'' and then chiploc db '
                            'migrate again', current_database(), grants);
  END IF;
END
$partman$;

-- Months past a retention are detached into this schema (`chiploc db
-- maintain --retain-months`), out of every chiploc role's reach, until the
-- owner has archived them (pg_dump) and dropped them.
CREATE SCHEMA chiploc_archive;
REVOKE ALL ON SCHEMA chiploc_archive FROM PUBLIC;

-- What retention removed, so that `chiploc audit` tells measurements retired
-- on purpose from deleted ones (docs/SCHEMA.md, "Retention record"): one row
-- per partition detached or dropped, written by chiploc_maintain in the
-- transaction that removes it. No role may write these tables; the owner
-- writes them through chiploc_maintain only.
CREATE TABLE measurement_retention (
  id          bigserial PRIMARY KEY,
  partition   text NOT NULL,         -- its name in schema public (and chiploc_archive)
  range_start timestamptz NOT NULL,  -- its bounds: measured_at in [range_start, range_end)
  range_end   timestamptz NOT NULL,
  action      text NOT NULL CHECK (action IN ('archived', 'dropped')),
  done_at     timestamptz NOT NULL DEFAULT now(),
  done_by     text NOT NULL DEFAULT session_user,  -- the login that ran chiploc_maintain
  CHECK (range_start < range_end)
);
-- The rows of a removed partition cited by attestations whose window (with
-- the audit's second of slack) reaches past the partition's bounds: while
-- the neighbouring month is live, such a window is not inside the removed
-- ranges, and the audit finds its citations here instead.
CREATE TABLE measurement_retention_cited (
  retention_id   bigint NOT NULL REFERENCES measurement_retention (id) ON DELETE CASCADE,
  attestation_id bigint NOT NULL,
  measurement_id bigint NOT NULL,
  landmark_sig   bytea NOT NULL CHECK (octet_length(landmark_sig) = 64),
  PRIMARY KEY (attestation_id, measurement_id, retention_id)
);
REVOKE ALL ON TABLE measurement_retention, measurement_retention_cited FROM PUBLIC;
REVOKE ALL ON SEQUENCE measurement_retention_id_seq FROM PUBLIC;
GRANT SELECT ON TABLE measurement_retention, measurement_retention_cited
  TO chiploc_auditor, chiploc_verifier, chiploc_admin;

-- Creates the partition of the UTC month starting at `lo` (pg_partman's name
-- and bounds), unless it exists; returns 1 if it created it. Rows of that
-- month waiting in the default partition are moved into it: the partition
-- is built beside the table and filled before it is attached, so that the
-- rows keep their ids, insert times and protocol (an insert into an
-- attached partition would run chiploc_guard_signed_row, cloned onto every
-- partition, which reassigns them and refuses protocol 1 rows; this is why
-- pg_partman's partition_data_time is not used).
CREATE FUNCTION chiploc_partition_month(lo timestamptz) RETURNS integer
LANGUAGE plpgsql
SET search_path = public, pg_temp
SET TimeZone = 'UTC'
AS $fn$
DECLARE
  hi   timestamptz := lo + interval '1 month';
  part text := 'measurements_p' || to_char(lo, 'YYYY_MM');
BEGIN
  IF lo IS NULL OR lo <> date_trunc('month', lo) THEN
    RAISE EXCEPTION 'chiploc_partition_month: % is not the start of a UTC month', lo
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF to_regclass(format('public.%I', part)) IS NOT NULL THEN
    RETURN 0;
  END IF;
  IF EXISTS (SELECT 1 FROM measurements_default WHERE measured_at >= lo AND measured_at < hi) THEN
    -- The same table pg_partman's create_partition_time makes.
    EXECUTE format('CREATE TABLE public.%I (LIKE measurements INCLUDING DEFAULTS'
                   ' INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS)', part);
    EXECUTE format('WITH moved AS (DELETE FROM measurements_default
                      WHERE measured_at >= $1 AND measured_at < $2 RETURNING *)
                    INSERT INTO public.%I SELECT * FROM moved', part)
      USING lo, hi;
    EXECUTE format('ALTER TABLE measurements ATTACH PARTITION public.%I'
                   ' FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
  ELSE
    PERFORM partman.create_partition_time('public.measurements', ARRAY[lo], false);
  END IF;
  RETURN 1;
END
$fn$;
REVOKE ALL ON FUNCTION chiploc_partition_month(timestamptz) FROM PUBLIC;

-- Adopt the existing partitions: pg_partman finds a partition's month by
-- the suffix of its name, so measurements_yYYYYmMM becomes
-- measurements_pYYYY_MM. Every partition but the default must be one UTC
-- month (a database whose partitions were changed by hand is refused, not
-- guessed at).
DO $adopt$
DECLARE
  p     record;
  lo    timestamptz;
  hi    timestamptz;
  m     timestamptz;
BEGIN
  PERFORM set_config('TimeZone', 'UTC', true);
  FOR p IN SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'measurements'::regclass
             AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT' LOOP
    lo := (regexp_match(p.bound, $re$FROM \('([^']+)'\) TO$re$))[1]::timestamptz;
    hi := (regexp_match(p.bound, $re$TO \('([^']+)'\)$re$))[1]::timestamptz;
    IF lo IS NULL OR hi IS NULL OR lo <> date_trunc('month', lo)
       OR hi <> lo + interval '1 month' THEN
      RAISE EXCEPTION 'migration 0007: partition % of measurements is not one UTC month (%)',
        p.relname, p.bound;
    END IF;
    IF p.relname <> 'measurements_p' || to_char(lo, 'YYYY_MM') THEN
      EXECUTE format('ALTER TABLE public.%I RENAME TO %I', p.relname,
                     'measurements_p' || to_char(lo, 'YYYY_MM'));
    END IF;
  END LOOP;
  -- Rows waiting in the default partition for any month up to pg_partman's
  -- premake get their partition, so that none of the partitions
  -- create_parent makes below conflicts with them. Rows further ahead stay
  -- in the default partition.
  FOR m IN SELECT DISTINCT date_trunc('month', measured_at) FROM measurements_default
           WHERE measured_at < date_trunc('month', now()) + interval '6 months' ORDER BY 1 LOOP
    PERFORM chiploc_partition_month(m);
  END LOOP;
  -- create_parent makes a default partition of its own: keep ours (its
  -- rows, its grants) by setting it aside meanwhile.
  ALTER TABLE measurements DETACH PARTITION measurements_default;
  ALTER TABLE measurements_default RENAME TO measurements_default_0007;
  PERFORM partman.create_parent(p_parent_table := 'public.measurements',
                                p_control := 'measured_at',
                                p_type := 'native',
                                p_interval := 'monthly',
                                p_premake := 3,
                                p_start_partition := date_trunc('month', now())::text,
                                p_jobmon := false);
  -- (It makes none when every partition it would make exists already.)
  IF to_regclass('public.measurements_default') IS NOT NULL THEN
    ALTER TABLE measurements DETACH PARTITION measurements_default;
    DROP TABLE measurements_default;
  END IF;
  ALTER TABLE measurements_default_0007 RENAME TO measurements_default;
  ALTER TABLE measurements ATTACH PARTITION measurements_default DEFAULT;
END
$adopt$;

-- Partitions are made ahead of the current month, not of the newest row
-- (measurements may stop for a while), and rows in the default partition
-- (a landmark clock years ahead) do not move the premake window: their
-- month is left alone rather than made the newest partition.
UPDATE partman.part_config
SET infinite_time_partitions = true, ignore_default_data = true
WHERE parent_table = 'public.measurements';

-- The partitions of the current month and the next months_ahead months, as
-- before, under pg_partman's names; `chiploc db migrate` calls it. Rows of
-- those months waiting in the default partition move into them.
CREATE OR REPLACE FUNCTION chiploc_ensure_partitions(months_ahead integer) RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
SET TimeZone = 'UTC'
AS $fn$
DECLARE
  created integer := 0;
BEGIN
  IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 240 THEN
    RAISE EXCEPTION 'months_ahead must be in [0, 240], got %', months_ahead
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- The one lock of everything that makes or removes partitions.
  PERFORM pg_advisory_xact_lock(hashtext('chiploc_ensure_partitions'));
  FOR i IN 0 .. months_ahead LOOP
    created := created + chiploc_partition_month(date_trunc('month', now())
                                                 + make_interval(months => i));
  END LOOP;
  RETURN created;
END
$fn$;

-- Step 3 of chiploc_maintain: pg_partman detaches (or drops) every partition
-- whose month ended more than retain_months ago (drop_partition_time's rule),
-- and measurement_retention records each one in the same transaction. The
-- record is made from the partitions while they are still attached (their
-- bounds, and the rows that attestations reaching past their bounds cite);
-- the records of partitions pg_partman kept are removed again. Returns the
-- ids of the records of this run.
CREATE FUNCTION chiploc_retire_months(retain_months integer, drop_expired boolean)
RETURNS bigint[]
LANGUAGE plpgsql
SET search_path = public, pg_temp
SET TimeZone = 'UTC'
AS $fn$
DECLARE
  p   record;
  rid bigint;
  ids bigint[] := '{}';
BEGIN
  FOR p IN SELECT c.relname::text AS name, b.lo, b.hi,
                  (extract(epoch FROM b.lo) * 1000000000)::bigint AS lo_ns,
                  (extract(epoch FROM b.hi) * 1000000000)::bigint AS hi_ns
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           CROSS JOIN LATERAL (SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                                    $re$FROM \('([^']+)'\) TO$re$))[1]::timestamptz AS lo,
                                      (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                                    $re$TO \('([^']+)'\)$re$))[1]::timestamptz AS hi) b
           WHERE i.inhparent = 'measurements'::regclass
             AND b.hi < now() - make_interval(months => retain_months)
           ORDER BY b.lo LOOP
    INSERT INTO measurement_retention (partition, range_start, range_end, action)
    VALUES (p.name, p.lo, p.hi, CASE WHEN drop_expired THEN 'dropped' ELSE 'archived' END)
    RETURNING id INTO rid;
    ids := ids || rid;
    -- The attestations whose window, widened by the audit's second of slack
    -- (and a microsecond for to_timestamp), starts before the partition or
    -- ends at or after its end, found per chip through
    -- attestations_chip_round: a verifier's window is at most 86400 s.
    -- Version 2 records cite by signature, version 1 by id.
    EXECUTE format($q$
      INSERT INTO measurement_retention_cited (retention_id, attestation_id, measurement_id,
                                               landmark_sig)
      SELECT DISTINCT $1, a.id, m.id, m.landmark_sig
      FROM chips c
      CROSS JOIN LATERAL (
        SELECT a.* FROM attestations a WHERE a.chip_id = c.id
        AND ((a.round_end_ns BETWEEN $2 - 1000001000 AND $2 + 86401000000000
              AND a.round_end_ns::numeric - a.window_ns < $2 + 1000001000)
             OR a.round_end_ns BETWEEN $3 - 1000001000 AND $3 + 86401000000000)) a
      JOIN public.%I m ON m.chip_id = a.chip_id
        AND m.measured_at > to_timestamp((a.round_end_ns - a.window_ns) / 1e9) - interval '1 second'
        AND m.measured_at <= to_timestamp(a.round_end_ns / 1e9) + interval '1 second'
        AND m.measured_at_ns > a.round_end_ns - a.window_ns AND m.measured_at_ns <= a.round_end_ns
        AND CASE WHEN a.layout_version = 2 THEN m.landmark_sig = ANY (a.measurement_sigs)
                 ELSE m.id = ANY (a.measurement_ids) END
      $q$, p.name) USING rid, p.lo_ns, p.hi_ns;
  END LOOP;
  PERFORM partman.drop_partition_time('public.measurements',
                                      make_interval(months => retain_months),
                                      p_keep_table := NOT drop_expired,
                                      p_retention_schema := CASE WHEN drop_expired THEN NULL
                                                                 ELSE 'chiploc_archive' END);
  DELETE FROM measurement_retention r
  WHERE r.id = ANY (ids) AND EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c
                                     ON c.oid = i.inhrelid
                                     WHERE i.inhparent = 'measurements'::regclass
                                       AND c.relname = r.partition);
  UPDATE measurement_retention r
  SET action = CASE WHEN to_regclass(format('chiploc_archive.%I', r.partition)) IS NULL
                    THEN 'dropped' ELSE 'archived' END
  WHERE r.id = ANY (ids);
  RETURN ARRAY(SELECT r.id FROM measurement_retention r WHERE r.id = ANY (ids));
END
$fn$;
REVOKE ALL ON FUNCTION chiploc_retire_months(integer, boolean) FROM PUBLIC;

-- `chiploc db maintain`: one row per change (created, archived, dropped),
-- in that order, and one 'default' row when rows are left in the default
-- partition (rows_left, with the newest one's time in detail).
--  1. Rows waiting in the default partition for a month up to the premake
--     window get their partition (chiploc_partition_month).
--  2. pg_partman makes the partitions of the coming months (premake).
--  3. With retain_months, every partition whose month ended more than
--     retain_months months ago is detached: moved into schema
--     chiploc_archive, or dropped when drop_expired, and recorded in
--     measurement_retention (chiploc_retire_months). Nothing else is
--     removed, and nothing at all without retain_months.
CREATE FUNCTION chiploc_maintain(retain_months integer, drop_expired boolean)
RETURNS TABLE (action text, partition text, rows_left bigint, detail text)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
SET TimeZone = 'UTC'
AS $fn$
DECLARE
  before  text[];
  after   text[];
  v_premake integer;
  horizon timestamptz;
  m       timestamptz;
  retired bigint[] := '{}';
BEGIN
  IF retain_months IS NOT NULL AND (retain_months < 1 OR retain_months > 1200) THEN
    RAISE EXCEPTION 'retain_months must be in [1, 1200], got %', retain_months
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('chiploc_ensure_partitions'));
  SELECT c.premake INTO v_premake FROM partman.part_config c
  WHERE c.parent_table = 'public.measurements';
  IF v_premake IS NULL THEN
    RAISE EXCEPTION 'public.measurements is not in partman.part_config (migration 0007)';
  END IF;
  horizon := date_trunc('month', now()) + make_interval(months => v_premake + 1);
  before := ARRAY(SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                  WHERE i.inhparent = 'measurements'::regclass);
  FOR m IN SELECT DISTINCT date_trunc('month', d.measured_at) FROM measurements_default d
           WHERE d.measured_at < horizon ORDER BY 1 LOOP
    PERFORM chiploc_partition_month(m);
  END LOOP;
  PERFORM partman.run_maintenance('public.measurements', p_jobmon := false);
  IF retain_months IS NOT NULL THEN
    retired := chiploc_retire_months(retain_months, drop_expired);
  END IF;
  after := ARRAY(SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'measurements'::regclass);
  RETURN QUERY
    SELECT 'created', a, NULL::bigint, NULL::text FROM unnest(after) a
    WHERE a <> ALL (before) ORDER BY a;
  -- What went, from its record: a partition made for the default's rows in
  -- step 1 may go in step 3 of the same run.
  RETURN QUERY
    SELECT r.action,
           CASE WHEN r.action = 'archived' THEN 'chiploc_archive.' || r.partition
                ELSE r.partition END,
           NULL::bigint, NULL::text
    FROM measurement_retention r WHERE r.id = ANY (retired) ORDER BY 1 DESC, r.partition;
  RETURN QUERY
    SELECT 'default', 'measurements_default', count(*), max(d.measured_at)::text
    FROM measurements_default d HAVING count(*) > 0;
END
$fn$;
REVOKE ALL ON FUNCTION chiploc_maintain(integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chiploc_maintain(integer, boolean) TO chiploc_admin;
