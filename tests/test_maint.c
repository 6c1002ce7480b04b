/*
 * Partitions under pg_partman (schema 0007) and `chiploc db maintain`, with
 * the real CLI against the throwaway PostgreSQL of the run: migrate
 * registers measurements with pg_partman and adopts its monthly
 * partitions; maintain makes the coming months' partitions, gives rows of
 * the default partition their month's partition without rewriting them,
 * and, only when asked, detaches (into chiploc_archive) or drops exactly
 * the months past the retention. A landmark's login cannot maintain; a
 * member of chiploc_admin can; a non-superuser owner is told the exact
 * commands a superuser must run for the extension.
 */
#include "testutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------ */

static char *sql_text(const char *conninfo, const char *sql) {
  char *v = tu_sql_value(conninfo, sql);
  ck_assert_msg(v != NULL, "no value: %s", sql);
  return tu_own(v);
}

static void sql_ok(const char *conninfo, const char *sql) {
  char err[512] = "";
  ck_assert_msg(tu_sql(conninfo, sql, err, sizeof err) == 0, "%s: %s", sql, err);
}

/* pg_partman's name of the partition of the UTC month `months` from now
 * (negative: ago). */
static char *part_name(const char *ci, int months) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT 'measurements_p' || to_char(date_trunc('month', (now() AT TIME ZONE 'UTC')"
           " + make_interval(months => %d)), 'YYYY_MM')",
           months);
  return sql_text(ci, sql);
}

/* Where the table `name` hangs: its parent's name, "" when it is not a
 * partition, NULL when it does not exist (in schema `schema`). */
static char *parent_of(const char *ci, const char *schema, const char *name) {
  char sql[384];
  snprintf(sql, sizeof sql,
           "SELECT coalesce((SELECT i.inhparent::regclass::text FROM pg_inherits i"
           " WHERE i.inhrelid = c.oid), '') FROM pg_class c JOIN pg_namespace n"
           " ON n.oid = c.relnamespace WHERE n.nspname = '%s' AND c.relname = '%s'",
           schema, name);
  char *v = tu_sql_value(ci, sql);
  return v ? tu_own(v) : NULL;
}

static int is_partition(const char *ci, const char *name) {
  char *p = parent_of(ci, "public", name);
  return p && strcmp(p, "measurements") == 0;
}

/* A fresh database migrated by the CLI as the superuser of the run, with
 * one landmark and one chip. */
static char *fresh(const char *name, const char *log) {
  char *ci = tu_own(tu_db_create(name));
  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", ci, NULL), 0);
  sql_ok(ci, "INSERT INTO landmarks (name, public_key, lat, lon)"
             " VALUES ('lm-paris', decode(repeat('aa', 32), 'hex'), 48.8566, 2.3522);"
             "INSERT INTO chips (public_key, serial, operator, site_lat, site_lon)"
             " VALUES (decode(repeat('bb', 32), 'hex'), 'A-0001', 'op', 48.85, 2.35)");
  return ci;
}

/* A protocol 2 row measured at now() + `offset` (a PostgreSQL interval),
 * written by the owner; the database checks no signature. Returns its id. */
static long long insert_row(const char *ci, int nonce, const char *offset) {
  char sql[1400];
  snprintf(sql, sizeof sql,
           "INSERT INTO measurements (chip_id, landmark_id, protocol, suite, nonce, seq,"
           " handshake, probes, transcript_sig, rtt_ns, bound_m, est_speed_m_s, est_bound_m,"
           " probe_count, probes_sent, measured_at, measured_at_ns, landmark_sig)"
           " SELECT c.id, l.id, 2, 1, decode(lpad(to_hex(%d), 64, '0'), 'hex'), 1,"
           " decode(repeat('01', 256), 'hex'), decode(repeat('02', 80), 'hex'),"
           " decode(repeat('03', 64), 'hex'), 1000, 150, 2e8, 100, 1, 1,"
           " now() + interval '%s', 1, decode(repeat('04', 64), 'hex')"
           " FROM chips c, landmarks l RETURNING id",
           nonce, offset);
  long long id = tu_sql_int(ci, sql);
  ck_assert_msg(id > 0, "%s", sql);
  return id;
}

/* The table that holds measurement `id`. */
static char *home_of(const char *ci, long long id) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT tableoid::regclass::text FROM measurements WHERE id = %lld",
           id);
  return sql_text(ci, sql);
}

static char *read_log(const char *log) {
  char *t = tu_read_file(log);
  ck_assert_ptr_nonnull(t);
  return tu_own(t);
}

/* A login member of `group`, created once per cluster. */
static void login_role(const char *name, const char *group) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "DO $$ BEGIN CREATE ROLE %s LOGIN IN ROLE %s;"
           " EXCEPTION WHEN duplicate_object THEN NULL; END $$",
           name, group);
  sql_ok(tu_pg_conninfo(), sql);
}

/* ---- tests -------------------------------------------------------------------- */

START_TEST(test_migrate_registers_partman) {
  char *dir = tu_own(tu_tmpdir("maint-config"));
  char *log = tu_fmt("%s/cli.log", dir);
  char *ci = fresh("cl_maint_config", log);
  ck_assert_str_eq(sql_text(ci, "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n"
                                " ON n.oid = e.extnamespace WHERE e.extname = 'pg_partman'"),
                   "partman");
  ck_assert_str_eq(sql_text(ci, "SELECT concat_ws(' ', control, partition_type,"
                                " partition_interval, premake, datetime_string,"
                                " infinite_time_partitions, ignore_default_data, retention)"
                                " FROM partman.part_config"
                                " WHERE parent_table = 'public.measurements'"),
                   "measured_at native 1 mon 3 YYYY_MM t t");
  /* This month and the next three, as pg_partman lists them, and the
   * default partition. */
  for (int m = 0; m <= 3; m++) {
    char *p = part_name(ci, m);
    ck_assert_msg(is_partition(ci, p), "%s is not a partition of measurements", p);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM partman.show_partitions('public.measurements')"
             " WHERE partition_tablename = '%s'",
             p);
    ck_assert_int_eq(tu_sql_int(ci, sql), 1);
  }
  ck_assert_str_eq(sql_text(ci, "SELECT partition_tablename FROM partman.show_partitions("
                                "'public.measurements', p_include_default => true) LIMIT 1"),
                   "measurements_default");
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM pg_namespace"
                                  " WHERE nspname = 'chiploc_archive'"),
                   1);
  /* Migrating again changes nothing. */
  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", ci, NULL), 0);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM partman.part_config"), 1);
  tu_release();
}
END_TEST

START_TEST(test_maintain_premakes) {
  char *dir = tu_own(tu_tmpdir("maint-premake"));
  char *log = tu_fmt("%s/cli.log", dir);
  char *ci = fresh("cl_maint_premake", log);
  char *p2 = part_name(ci, 2), *p3 = part_name(ci, 3);
  /* As if the timer had not run for two months: the last two are missing. */
  sql_ok(ci, tu_fmt("DROP TABLE %s, %s", p2, p3));
  ck_assert(!is_partition(ci, p3));
  char *out = tu_fmt("%s/maintain.log", dir);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, NULL), 0);
  char *text = read_log(out);
  ck_assert_msg(strstr(text, tu_fmt("created %s\n", p2)), "%s", text);
  ck_assert_msg(strstr(text, tu_fmt("created %s\n", p3)), "%s", text);
  ck_assert_msg(strstr(text, "archived 0, dropped 0\n"), "%s", text);
  for (int m = 0; m <= 3; m++) ck_assert(is_partition(ci, part_name(ci, m)));
  /* The next run has nothing to do. */
  char *again = tu_fmt("%s/again.log", dir);
  ck_assert_int_eq(tu_cli(again, "db", "maintain", "--db", ci, NULL), 0);
  text = read_log(again);
  ck_assert_msg(strstr(text, "created 0, archived 0, dropped 0\n") && !strstr(text, "created m"),
                "%s", text);

  /* Rows of the coming months land in their partitions; one years ahead in
   * the default partition, where maintain leaves it and warns. */
  long long next = insert_row(ci, 1, "1 month 1 day");
  long long later = insert_row(ci, 2, "2 months 1 day");
  long long far = insert_row(ci, 3, "5 years");
  char *p_next = sql_text(ci, "SELECT 'measurements_p' || to_char((now() + interval"
                              " '1 month 1 day') AT TIME ZONE 'UTC', 'YYYY_MM')");
  char *p_later = sql_text(ci, "SELECT 'measurements_p' || to_char((now() + interval"
                               " '2 months 1 day') AT TIME ZONE 'UTC', 'YYYY_MM')");
  ck_assert_str_eq(home_of(ci, next), p_next);
  ck_assert_str_eq(home_of(ci, later), p_later);
  ck_assert_str_eq(home_of(ci, far), "measurements_default");
  char *warn = tu_fmt("%s/warn.log", dir);
  ck_assert_int_eq(tu_cli(warn, "db", "maintain", "--db", ci, NULL), 0);
  text = read_log(warn);
  ck_assert_msg(strstr(text, "warning: 1 row(s) in measurements_default"), "%s", text);
  ck_assert_str_eq(home_of(ci, far), "measurements_default");
  tu_release();
}
END_TEST

START_TEST(test_maintain_adopts_default_rows) {
  /* A row of a month without a partition waits in the default partition;
   * maintain moves it into a partition of its month, unchanged: same id,
   * same insert time and login (an insert through the partition would
   * have reassigned them). */
  char *dir = tu_own(tu_tmpdir("maint-adopt"));
  char *log = tu_fmt("%s/cli.log", dir);
  char *ci = fresh("cl_maint_adopt", log);
  long long id = insert_row(ci, 7, "-14 months");
  ck_assert_str_eq(home_of(ci, id), "measurements_default");
  char *before = sql_text(
      ci, tu_fmt("SELECT inserted_at || ' ' || inserted_by FROM measurements WHERE id = %lld", id));
  char *old = part_name(ci, -14);
  char *out = tu_fmt("%s/maintain.log", dir);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, NULL), 0);
  char *text = read_log(out);
  ck_assert_msg(strstr(text, tu_fmt("created %s\n", old)), "%s", text);
  ck_assert_str_eq(home_of(ci, id), old);
  ck_assert_str_eq(sql_text(ci, tu_fmt("SELECT inserted_at || ' ' || inserted_by"
                                       " FROM measurements WHERE id = %lld", id)),
                   before);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM measurements_default"), 0);
  tu_release();
}
END_TEST

START_TEST(test_retention) {
  char *dir = tu_own(tu_tmpdir("maint-retain"));
  char *log = tu_fmt("%s/cli.log", dir);
  char *ci = fresh("cl_maint_retain", log);
  long long old_id = insert_row(ci, 1, "-14 months");
  long long mid_id = insert_row(ci, 2, "-11 months");
  long long now_id = insert_row(ci, 3, "0 seconds");
  char *p_old = part_name(ci, -14), *p_mid = part_name(ci, -11), *p_now = part_name(ci, 0);
  char *out = tu_fmt("%s/adopt.log", dir);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, NULL), 0);
  ck_assert(is_partition(ci, p_old));
  ck_assert(is_partition(ci, p_mid));
  long long parts = tu_sql_int(ci, "SELECT count(*) FROM partman.show_partitions("
                                   "'public.measurements')");

  /* Keep 12 months: the month of 14 months ago ended more than 12 months
   * ago and is detached into chiploc_archive with its row; the month of 11
   * months ago and every younger one stay. */
  out = tu_fmt("%s/retain12.log", dir);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, "--retain-months", "12", NULL), 0);
  char *text = read_log(out);
  ck_assert_msg(strstr(text, tu_fmt("archived chiploc_archive.%s\n", p_old)), "%s", text);
  ck_assert_msg(strstr(text, "created 0, archived 1, dropped 0\n"), "%s", text);
  ck_assert_msg(strstr(text, "1 table(s) wait in schema chiploc_archive"), "%s", text);
  ck_assert_ptr_null(parent_of(ci, "public", p_old));
  ck_assert_str_eq(parent_of(ci, "chiploc_archive", p_old), "");
  ck_assert_int_eq(tu_sql_int(ci, tu_fmt("SELECT count(*) FROM chiploc_archive.%s WHERE id = %lld",
                                         p_old, old_id)),
                   1);
  ck_assert(is_partition(ci, p_mid));
  ck_assert(is_partition(ci, p_now));
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM partman.show_partitions("
                                  "'public.measurements')"),
                   parts - 1);
  ck_assert_int_eq(tu_sql_int(ci, tu_fmt("SELECT count(*) FROM measurements WHERE id IN"
                                         " (%lld, %lld, %lld)", old_id, mid_id, now_id)),
                   2);

  /* Keep 10 months and drop: the month of 11 months ago goes, rows and
   * all; the archived table and the younger months stay. */
  out = tu_fmt("%s/drop10.log", dir);
  ck_assert_int_eq(
      tu_cli(out, "db", "maintain", "--db", ci, "--retain-months", "10", "--drop", NULL), 0);
  text = read_log(out);
  ck_assert_msg(strstr(text, tu_fmt("dropped %s\n", p_mid)), "%s", text);
  ck_assert_msg(strstr(text, "created 0, archived 0, dropped 1\n"), "%s", text);
  ck_assert_ptr_null(parent_of(ci, "public", p_mid));
  ck_assert_ptr_null(parent_of(ci, "chiploc_archive", p_mid));
  ck_assert_str_eq(parent_of(ci, "chiploc_archive", p_old), "");
  ck_assert(is_partition(ci, p_now));
  ck_assert_str_eq(home_of(ci, now_id), p_now);
  for (int m = 0; m <= 3; m++) ck_assert(is_partition(ci, part_name(ci, m)));

  /* Each removal is recorded, with the partition's bounds, for the audit. */
  char *want = tu_fmt("%s archived %s dropped", p_old, p_mid);
  ck_assert_str_eq(sql_text(ci, "SELECT string_agg(partition || ' ' || action, ' ' ORDER BY id)"
                                " FROM measurement_retention"),
                   want);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM measurement_retention WHERE"
                                  " range_end = range_start + interval '1 month' AND"
                                  " 'measurements_p' || to_char(range_start AT TIME ZONE 'UTC',"
                                  " 'YYYY_MM') = partition AND done_by = session_user"),
                   2);

  /* A month adopted from the default partition and past the retention goes
   * in the same run, and is reported. */
  long long older = insert_row(ci, 4, "-20 months");
  char *p_older = part_name(ci, -20);
  ck_assert_str_eq(home_of(ci, older), "measurements_default");
  out = tu_fmt("%s/adopt_drop.log", dir);
  ck_assert_int_eq(
      tu_cli(out, "db", "maintain", "--db", ci, "--retain-months", "10", "--drop", NULL), 0);
  text = read_log(out);
  ck_assert_msg(strstr(text, tu_fmt("dropped %s\n", p_older)), "%s", text);
  ck_assert_msg(strstr(text, "created 0, archived 0, dropped 1\n"), "%s", text);
  ck_assert_int_eq(tu_sql_int(ci, tu_fmt("SELECT count(*) FROM measurement_retention"
                                         " WHERE partition = '%s' AND action = 'dropped'",
                                         p_older)),
                   1);

  /* Bad values are usage errors, before any connection. */
  out = tu_fmt("%s/usage.log", dir);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, "--retain-months", "0", NULL), 2);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, "--retain-months", "1201", NULL), 2);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, "--retain-months", "x", NULL), 2);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, "--drop", NULL), 2);
  text = read_log(out);
  ck_assert_msg(strstr(text, "--retain-months 0: must be a whole number of months, 1 to 1200"),
                "%s", text);
  ck_assert_msg(strstr(text, "--drop needs --retain-months"), "%s", text);
  ck_assert(is_partition(ci, p_now));
  tu_release();
}
END_TEST

START_TEST(test_maintain_rights) {
  char *dir = tu_own(tu_tmpdir("maint-rights"));
  char *log = tu_fmt("%s/cli.log", dir);
  char *ci = fresh("cl_maint_rights", log);
  login_role("maint_lm", "chiploc_landmark");
  login_role("maint_auditor", "chiploc_auditor");
  login_role("maint_admin", "chiploc_admin");
  char *p3 = part_name(ci, 3);
  sql_ok(ci, tu_fmt("DROP TABLE %s", p3));
  insert_row(ci, 1, "-20 months");

  /* The landmark's and the auditor's logins are refused, and nothing
   * changes: neither the missing month nor the row of the default. */
  const char *refused[] = {"maint_lm", "maint_auditor"};
  for (size_t i = 0; i < 2; i++) {
    char *as = tu_own(tu_conninfo_as(ci, refused[i]));
    char *out = tu_fmt("%s/%s.log", dir, refused[i]);
    ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", as, "--retain-months", "1", "--drop",
                            NULL),
                     1);
    char *text = read_log(out);
    ck_assert_msg(strstr(text, "permission denied for function chiploc_maintain") &&
                      strstr(text, "run it as the database owner or a member of chiploc_admin"),
                  "%s", text);
    /* Nor can they go round it through pg_partman. */
    char err[512] = "";
    ck_assert_int_ne(tu_sql(as, "SELECT partman.run_maintenance('public.measurements')", err,
                            sizeof err),
                     0);
    ck_assert_int_ne(tu_sql(as, "SELECT partman.drop_partition_time('public.measurements',"
                                " '1 month', p_keep_table => false)",
                            err, sizeof err),
                     0);
    ck_assert_msg(strstr(err, "permission denied"), "%s", err);
  }
  ck_assert(!is_partition(ci, p3));
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM measurements_default"), 1);

  /* A member of chiploc_admin may. */
  char *adm = tu_own(tu_conninfo_as(ci, "maint_admin"));
  char *out = tu_fmt("%s/admin.log", dir);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", adm, NULL), 0);
  ck_assert(is_partition(ci, p3));
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM measurements_default"), 0);
  tu_release();
}
END_TEST

/* A claim of pool p1, bucket `bucket`, for the round that ended `age` (a
 * PostgreSQL interval) ago, by the owner. */
static void insert_claim(const char *ci, int bucket, const char *age) {
  sql_ok(ci, tu_fmt("INSERT INTO verifier_claims (pool, round_end_ns, bucket, verifier_id,"
                    " interval_ns) SELECT 'p1', (extract(epoch FROM now() - interval '%s')"
                    " * 1e9)::bigint, %d, v.id, 60000000000 FROM verifiers v",
                    age, bucket));
}

START_TEST(test_claims_retention) {
  char *dir = tu_own(tu_tmpdir("maint-claims"));
  char *log = tu_fmt("%s/cli.log", dir);
  char *ci = fresh("cl_maint_claims", log);
  sql_ok(ci, "INSERT INTO verifiers (name, public_key)"
             " VALUES ('v1', decode(repeat('cc', 32), 'hex'))");
  insert_claim(ci, 0, "8 days");
  insert_claim(ci, 1, "6 days");
  insert_claim(ci, 2, "1 minute");

  /* The default keeps 7 days: the claim of 8 days ago goes. */
  char *out = tu_fmt("%s/default.log", dir);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, NULL), 0);
  char *text = read_log(out);
  ck_assert_msg(strstr(text, "maintain: deleted 1 verifier claim(s) of rounds that ended more"
                             " than 7 day(s) ago\n"),
                "%s", text);
  ck_assert_str_eq(sql_text(ci, "SELECT string_agg(bucket::text, ',' ORDER BY bucket)"
                                " FROM verifier_claims"),
                   "1,2");

  /* 0 keeps every claim, and says nothing of them. */
  insert_claim(ci, 3, "30 days");
  out = tu_fmt("%s/keep.log", dir);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, "--claims-days", "0", NULL), 0);
  text = read_log(out);
  ck_assert_msg(!strstr(text, "verifier claim"), "%s", text);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM verifier_claims"), 3);

  /* 5 days: the claims of 30 and 6 days ago go, the newest stays. */
  out = tu_fmt("%s/five.log", dir);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, "--claims-days", "5", NULL), 0);
  text = read_log(out);
  ck_assert_msg(strstr(text, "maintain: deleted 2 verifier claim(s) of rounds that ended more"
                             " than 5 day(s) ago\n"),
                "%s", text);
  ck_assert_str_eq(sql_text(ci, "SELECT string_agg(bucket::text, ',') FROM verifier_claims"),
                   "2");

  /* A member of chiploc_admin may delete them too. */
  login_role("maint_admin", "chiploc_admin");
  insert_claim(ci, 4, "10 days");
  char *adm = tu_own(tu_conninfo_as(ci, "maint_admin"));
  out = tu_fmt("%s/admin.log", dir);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", adm, NULL), 0);
  ck_assert_int_eq(tu_sql_int(ci, "SELECT count(*) FROM verifier_claims"), 1);

  const char *bad[] = {"-1", "x", "36501", "+3", ""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    out = tu_fmt("%s/bad%zu.log", dir, i);
    ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", ci, "--claims-days", bad[i], NULL), 2);
    ck_assert_msg(strstr(read_log(out), "--claims-days"), "%s", read_log(out));
  }
  tu_release();
}
END_TEST

START_TEST(test_migrate_without_superuser) {
  /* An owner that is no superuser cannot create the extension: migrate
   * stops at 0007 with the commands for a superuser, which then work. */
  char *dir = tu_own(tu_tmpdir("maint-owner"));
  char *log = tu_fmt("%s/cli.log", dir);
  sql_ok(tu_pg_conninfo(), "DO $$ BEGIN CREATE ROLE maint_owner LOGIN CREATEROLE;"
                           " EXCEPTION WHEN duplicate_object THEN NULL; END $$");
  char *su = tu_own(tu_db_create("cl_maint_owner"));
  sql_ok(tu_pg_conninfo(), "ALTER DATABASE cl_maint_owner OWNER TO maint_owner");
  char *owner = tu_own(tu_conninfo_as(su, "maint_owner"));
  ck_assert_int_eq(tu_cli(log, "db", "migrate", "--db", owner, NULL), 1);
  char *text = read_log(log);
  const char *fix = "CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman;"
                    " GRANT ALL ON SCHEMA partman TO maint_owner;"
                    " GRANT ALL ON ALL TABLES IN SCHEMA partman TO maint_owner;";
  ck_assert_msg(strstr(text, "migration 0007_partman.sql: migration 0007: extension pg_partman"
                             " is not installed in database cl_maint_owner") &&
                    strstr(text, tu_fmt("psql -d cl_maint_owner -c '%s'", fix)),
                "%s", text);
  ck_assert_int_eq(tu_sql_int(su, "SELECT count(*) FROM chiploc_schema_migrations"
                                  " WHERE name = '0007_partman.sql'"),
                   0);
  /* The extension without the grants is not enough: the owner is told
   * the grants. */
  sql_ok(su, "CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman");
  char *grants = tu_fmt("%s/grants.log", dir);
  ck_assert_int_eq(tu_cli(grants, "db", "migrate", "--db", owner, NULL), 1);
  text = read_log(grants);
  const char *grant = "GRANT ALL ON SCHEMA partman TO maint_owner;"
                      " GRANT ALL ON ALL TABLES IN SCHEMA partman TO maint_owner;";
  ck_assert_msg(strstr(text, "role maint_owner may not use pg_partman's tables in schema"
                             " partman") &&
                    strstr(text, tu_fmt("psql -d cl_maint_owner -c '%s'", grant)),
                "%s", text);
  sql_ok(su, grant);
  char *again = tu_fmt("%s/again.log", dir);
  ck_assert_int_eq(tu_cli(again, "db", "migrate", "--db", owner, NULL), 0);
  ck_assert(is_partition(su, part_name(su, 3)));
  sql_ok(su, tu_fmt("DROP TABLE %s", part_name(su, 3)));
  char *out = tu_fmt("%s/maintain.log", dir);
  ck_assert_int_eq(tu_cli(out, "db", "maintain", "--db", owner, NULL), 0);
  ck_assert(is_partition(su, part_name(su, 3)));
  tu_release();
}
END_TEST

int main(void) {
  Suite *s = suite_create("maint");
  TCase *tc = tcase_create("maint");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_migrate_registers_partman);
  tcase_add_test(tc, test_maintain_premakes);
  tcase_add_test(tc, test_maintain_adopts_default_rows);
  tcase_add_test(tc, test_retention);
  tcase_add_test(tc, test_maintain_rights);
  tcase_add_test(tc, test_migrate_without_superuser);
  tcase_add_test(tc, test_claims_retention);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
