-- chiploc schema 0010: verifiers that share one database's chips (a pool,
-- `chiploc verify --pool NAME`). Chips fall into 64 buckets by id (chip id
-- modulo 64); in each round a pool member claims buckets in batches, and a
-- batch's claims commit in the same transaction as its attestations, so a
-- bucket is attested by exactly one member per round, and the claims of a
-- member that dies before its commit vanish with its transaction.
-- docs/SCHEMA.md, "Migration 0010", and docs/OPERATIONS.md, "Several
-- verifiers", describe it.
-- Never edit this file after it has shipped: add a new numbered file.

CREATE TABLE verifier_claims (
  pool         text NOT NULL CHECK (pool ~ '^[A-Za-z0-9_.-]{1,64}$'),
  round_end_ns bigint NOT NULL CHECK (round_end_ns > 0),
  bucket       integer NOT NULL CHECK (bucket BETWEEN 0 AND 63),
  verifier_id  bigint NOT NULL REFERENCES verifiers (id),
  -- The member's round interval: members of one pool must agree on it.
  interval_ns  bigint NOT NULL CHECK (interval_ns > 0),
  claimed_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (pool, round_end_ns, bucket)
);
CREATE INDEX verifier_claims_verifier ON verifier_claims (verifier_id, round_end_ns);

-- A verifier's login claims buckets for the verifier it is bound to only
-- (as it writes only that verifier's attestations), at the database's time.
CREATE FUNCTION chiploc_guard_claim() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $fn$
BEGIN
  NEW.claimed_at := clock_timestamp();
  IF pg_has_role(current_user, 'chiploc_admin', 'MEMBER')
     OR pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER')
     OR EXISTS (SELECT 1 FROM verifiers v WHERE v.id = NEW.verifier_id
                AND v.db_role = current_user) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'role % may not claim chips for verifier %: see chiploc verifier bind',
    current_user, NEW.verifier_id USING ERRCODE = 'insufficient_privilege';
END
$fn$;
REVOKE ALL ON FUNCTION chiploc_guard_claim() FROM PUBLIC;
CREATE TRIGGER verifier_claims_guard BEFORE INSERT ON verifier_claims
  FOR EACH ROW EXECUTE FUNCTION chiploc_guard_claim();

REVOKE ALL ON TABLE verifier_claims FROM PUBLIC;
-- The verifier reads the claims (which buckets are taken, who the pool's
-- members are) and inserts its own; it never updates or deletes one.
GRANT SELECT ON TABLE verifier_claims TO chiploc_verifier;
GRANT INSERT (pool, round_end_ns, bucket, verifier_id, interval_ns)
  ON TABLE verifier_claims TO chiploc_verifier;
GRANT SELECT ON TABLE verifier_claims TO chiploc_auditor;
GRANT ALL ON TABLE verifier_claims TO chiploc_admin;
