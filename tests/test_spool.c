/*
 * The outage spool of landmarkd (server/spool.c) on its own: the record
 * layout and checksum, append and replay order, recovery from a torn tail
 * and from damaged records, the size limit, reopening after a crash at
 * each step of a replay, and version 1 spools (replaced when empty, else
 * refused). A small in-test "database" that refuses duplicate
 * rows, like the unique keys of measurements and landmark_links, checks
 * that no row is lost and that every duplicate is one the database refuses.
 * Also the two spool settings of the landmarkd config.
 */
#define _GNU_SOURCE
#include "cl_config.h"
#include "cl_err.h"
#include "spool.h"
#include "testutil.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint8_t g_pk[CL_PK_LEN];
static char *g_dir;
static char g_path[512];

static void setup(void) {
  for (int i = 0; i < CL_PK_LEN; i++) g_pk[i] = (uint8_t)(0xA0 + i);
  g_dir = tu_tmpdir("chiploc-spool");
  snprintf(g_path, sizeof g_path, "%s/landmarkd.spool", g_dir);
}

static void teardown(void) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
  ck_assert_int_eq(system(cmd), 0);
  free(g_dir);
}

/* A row whose every field derives from seq, so that order and content can
 * be checked after a round trip: 1 + seq % CL_MAX_BURST entries, the first
 * with seq << 8 (row_id gives seq back). The signatures are not real: the
 * spool does not check them. */
static cl_store_row make_row(uint64_t seq, int is_link) {
  cl_store_row r;
  memset(&r, 0, sizeof r);
  cl_measurement *m = &r.m;
  m->hs.suite = CL_SUITE_ED25519_X25519;
  memcpy(m->hs.landmark, g_pk, CL_PK_LEN);
  for (int i = 0; i < CL_PK_LEN; i++) {
    m->hs.chip[i] = (uint8_t)(seq * 7 + (uint64_t)i);
    m->hs.landmark_eph[i] = (uint8_t)(seq * 11 + (uint64_t)i);
    m->hs.chip_eph[i] = (uint8_t)(seq * 17 + (uint64_t)i);
    m->hs.landmark_nonce[i] = (uint8_t)(seq * 19 + (uint64_t)i);
    m->hs.chip_nonce[i] = (uint8_t)(seq * 23 + (uint64_t)i);
  }
  m->count = 1 + (uint32_t)(seq % CL_MAX_BURST);
  for (uint32_t k = 0; k < m->count; k++) {
    cl_probe_entry *e = &m->probes[k];
    e->seq = seq << 8 | k;
    for (int i = 0; i < CL_NONCE_LEN; i++) e->nonce[i] = (uint8_t)(seq * 13 + k + (uint64_t)i);
    for (int i = 0; i < CL_MAC_LEN; i++) e->mac[i] = (uint8_t)(seq * 29 + k * 3 + (uint64_t)i);
    e->rtt_ns = 1000000 + seq + k;
  }
  for (int i = 0; i < CL_SIG_LEN; i++) {
    m->hs.landmark_sig[i] = (uint8_t)(seq + (uint64_t)i);
    m->hs.chip_sig[i] = (uint8_t)(seq * 3 + (uint64_t)i);
    m->transcript_sig[i] = (uint8_t)(seq * 31 + (uint64_t)i);
    m->sig[i] = (uint8_t)(seq * 5 + (uint64_t)i);
  }
  m->rtt_ns = 1000000 + seq;
  m->probes_sent = m->count + 2;
  m->measured_unix_ns = 1700000000500000000ull + seq * 1000;
  r.chip_id = (int64_t)(seq % 3) + 1;
  r.bound_m = 149896 + seq;
  r.est_speed = 299792458.0 * 2.0 / 3.0;
  r.est_bound_m = 99930 + seq;
  r.is_link = is_link;
  return r;
}

/* The seq make_row made a row from. */
static uint64_t row_id(const cl_store_row *r) { return r->m.probes[0].seq >> 8; }

static lm_spool *open_ok(uint64_t max_bytes, lm_spool_recovery *rec) {
  lm_spool *sp = NULL;
  char err[512];
  int rc = lm_spool_open(&sp, g_path, g_pk, max_bytes, rec, err, sizeof err);
  ck_assert_msg(rc == CL_OK, "open: %s", err);
  return sp;
}

static void append_range(lm_spool *sp, uint64_t from, uint64_t to) {
  cl_store_row rows[64];
  ck_assert_uint_le(to - from, 64);
  for (uint64_t s = from; s < to; s++) rows[s - from] = make_row(s, 0);
  size_t k = 99;
  char err[512];
  ck_assert_int_eq(lm_spool_append(sp, rows, (size_t)(to - from), &k, err, sizeof err), CL_OK);
  ck_assert_uint_eq(k, to - from);
}

static off_t file_size(const char *path) {
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  return st.st_size;
}

/* Overwrites one byte of the file: damage, or a torn write. */
static void poke(const char *path, off_t off, uint8_t xor) {
  int fd = open(path, O_RDWR);
  ck_assert_int_ge(fd, 0);
  uint8_t b;
  ck_assert_int_eq(pread(fd, &b, 1, off), 1);
  b ^= xor;
  ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
  close(fd);
}

static off_t record_off(uint64_t i) {
  return (off_t)(LM_SPOOL_HEADER_LEN + i * LM_SPOOL_RECORD_LEN);
}

/* ---- an in-test database with a unique key on seq ------------------------ */

#define DB_MAX 4096
typedef struct {
  int stored[DB_MAX]; /* times a row was stored: must end at 0 or 1 */
  int refused;        /* inserts refused as duplicates */
} fake_db;

static void db_insert(fake_db *db, const cl_store_row *r) {
  cl_store_row want = make_row(row_id(r), r->is_link);
  ck_assert_mem_eq(r, &want, sizeof want); /* content survived the file */
  ck_assert_uint_lt(row_id(r), DB_MAX);
  if (db->stored[row_id(r)])
    db->refused++;
  else
    db->stored[row_id(r)] = 1;
}

/* Replays the spool into db in batches of `batch`, as the writer does:
 * peek, insert, consume; compacts when empty. Returns rows read. */
static size_t drain(lm_spool *sp, fake_db *db, size_t batch, uint64_t *expect_next) {
  cl_store_row rows[64];
  size_t total = 0;
  char err[512];
  for (;;) {
    size_t n, skipped;
    ck_assert_int_eq(lm_spool_peek(sp, rows, batch, &n, &skipped, err, sizeof err), CL_OK);
    if (n == 0 && skipped == 0) break;
    for (size_t i = 0; i < n; i++) {
      if (expect_next) {
        ck_assert_uint_eq(row_id(&rows[i]), *expect_next); /* oldest first */
        (*expect_next)++;
      }
      db_insert(db, &rows[i]);
    }
    total += n;
    ck_assert_int_eq(lm_spool_consume(sp, n + skipped, err, sizeof err), CL_OK);
  }
  ck_assert_uint_eq(lm_spool_rows(sp), 0);
  ck_assert_int_eq(lm_spool_compact(sp, err, sizeof err), CL_OK);
  ck_assert_uint_eq(lm_spool_bytes(sp), LM_SPOOL_HEADER_LEN);
  return total;
}

/* ---- layout -------------------------------------------------------------- */

START_TEST(crc_check_value) {
  /* The standard check value of CRC-32C. */
  ck_assert_uint_eq(lm_spool_crc32c("123456789", 9), 0xE3069283u);
  ck_assert_uint_eq(lm_spool_crc32c("", 0), 0);
}
END_TEST

START_TEST(record_layout) {
  cl_store_row r = make_row(0x0102030405060702ull, 1); /* three entries */
  r.chip_id = -2;
  ck_assert_uint_eq(r.m.count, 3);
  uint8_t rec[LM_SPOOL_RECORD_LEN];
  lm_spool_encode(rec, &r);
  /* Explicit big-endian fields at documented offsets (docs/SPOOL.md). */
  ck_assert_uint_eq(rec[0], 1);
  ck_assert_uint_eq(rec[1] | rec[2] | rec[3], 0);
  static const uint8_t minus2[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
  ck_assert_mem_eq(rec + 4, minus2, 8);
  ck_assert_mem_eq(rec + 12, g_pk, CL_PK_LEN);
  ck_assert_mem_eq(rec + 44, r.m.hs.chip, CL_PK_LEN);
  ck_assert_uint_eq(cl_get_be32(rec + 76), CL_SUITE_ED25519_X25519);
  uint8_t hs[CL_HS_BLOB_LEN];
  cl_hs_blob_put(hs, &r.m.hs);
  ck_assert_mem_eq(rec + 80, hs, CL_HS_BLOB_LEN);
  ck_assert_mem_eq(rec + 80, r.m.hs.landmark_eph, CL_EPH_LEN);
  ck_assert_uint_eq(cl_get_be32(rec + 336), 3);
  /* Entries from 340, 80 bytes each: seq, nonce, MAC, rtt_ns. */
  static const uint8_t seq_be[8] = {2, 3, 4, 5, 6, 7, 2, 0};
  ck_assert_mem_eq(rec + 340, seq_be, 8);
  ck_assert_mem_eq(rec + 340 + 80 + 8, r.m.probes[1].nonce, CL_NONCE_LEN);
  ck_assert_mem_eq(rec + 340 + 160 + 40, r.m.probes[2].mac, CL_MAC_LEN);
  ck_assert_uint_eq(cl_get_be64(rec + 340 + 160 + 72), r.m.probes[2].rtt_ns);
  for (size_t i = 340 + 3 * 80; i < 1620; i++) ck_assert_uint_eq(rec[i], 0);
  ck_assert_mem_eq(rec + 1620, r.m.transcript_sig, CL_SIG_LEN);
  ck_assert_uint_eq(cl_get_be64(rec + 1684), r.m.rtt_ns);
  ck_assert_uint_eq(cl_get_be32(rec + 1692), 5);
  ck_assert_uint_eq(cl_get_be64(rec + 1696), r.m.measured_unix_ns);
  ck_assert_mem_eq(rec + 1704, r.m.sig, CL_SIG_LEN);
  ck_assert_uint_eq(cl_get_be64(rec + 1768), r.bound_m);
  ck_assert_uint_eq(cl_get_be64(rec + 1776), 0x41A7D34B0D555555ull); /* 2/3 c as binary64 */
  ck_assert_uint_eq(cl_get_be64(rec + 1784), r.est_bound_m);
  ck_assert_uint_eq(cl_get_be32(rec + 1792), lm_spool_crc32c(rec, 1792));
  ck_assert_uint_eq(LM_SPOOL_RECORD_LEN, 1796);
  cl_store_row back;
  ck_assert_int_eq(lm_spool_decode(rec, &back), CL_OK);
  ck_assert_mem_eq(&back, &r, sizeof r);
  /* A full burst fills the entries to the transcript signature. */
  r = make_row(15, 0);
  ck_assert_uint_eq(r.m.count, CL_MAX_BURST);
  lm_spool_encode(rec, &r);
  ck_assert_uint_eq(cl_get_be64(rec + 340 + 15 * 80 + 72), r.m.probes[15].rtt_ns);
  ck_assert_int_eq(lm_spool_decode(rec, &back), CL_OK);
  ck_assert_mem_eq(&back, &r, sizeof r);
}
END_TEST

/* Sets the record's checksum after a change, so that only the change is
 * judged. */
static void reseal(uint8_t rec[LM_SPOOL_RECORD_LEN]) {
  cl_put_be32(rec + 1792, lm_spool_crc32c(rec, 1792));
}

START_TEST(record_damage_detected) {
  cl_store_row r = make_row(42, 0), back;
  uint8_t rec[LM_SPOOL_RECORD_LEN];
  lm_spool_encode(rec, &r);
  /* Any single flipped bit, checksum bytes included, is caught. */
  for (size_t i = 0; i < LM_SPOOL_RECORD_LEN; i++) {
    for (int bit = 0; bit < 8; bit++) {
      rec[i] ^= (uint8_t)(1u << bit);
      ck_assert_int_eq(lm_spool_decode(rec, &back), CL_EMALFORMED);
      rec[i] ^= (uint8_t)(1u << bit);
    }
  }
  ck_assert_int_eq(lm_spool_decode(rec, &back), CL_OK);
  /* Fields out of range with a correct checksum are refused too: an
   * unknown kind, a count outside 1..16, bytes after the last entry. */
  uint8_t bad[LM_SPOOL_RECORD_LEN];
  memcpy(bad, rec, sizeof bad);
  bad[0] = 2;
  reseal(bad);
  ck_assert_int_eq(lm_spool_decode(bad, &back), CL_EMALFORMED);
  static const uint32_t counts[] = {0, CL_MAX_BURST + 1, 0xffffffffu};
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
    memcpy(bad, rec, sizeof bad);
    cl_put_be32(bad + 336, counts[i]);
    reseal(bad);
    ck_assert_int_eq(lm_spool_decode(bad, &back), CL_EMALFORMED);
  }
  ck_assert_uint_eq(r.m.count, 11);
  memcpy(bad, rec, sizeof bad);
  bad[340 + 11 * 80] = 1;
  reseal(bad);
  ck_assert_int_eq(lm_spool_decode(bad, &back), CL_EMALFORMED);
  memcpy(bad, rec, sizeof bad);
  bad[1619] = 1;
  reseal(bad);
  ck_assert_int_eq(lm_spool_decode(bad, &back), CL_EMALFORMED);
  /* One entry fewer is a valid record of ten. */
  memcpy(bad, rec, sizeof bad);
  cl_put_be32(bad + 336, 10);
  memset(bad + 340 + 10 * 80, 0, 80);
  reseal(bad);
  ck_assert_int_eq(lm_spool_decode(bad, &back), CL_OK);
  ck_assert_uint_eq(back.m.count, 10);
  /* A zeroed record (space allocated, data never written) is damage. */
  memset(rec, 0, sizeof rec);
  ck_assert_int_eq(lm_spool_decode(rec, &back), CL_EMALFORMED);
}
END_TEST

/* ---- append and replay --------------------------------------------------- */

START_TEST(append_replay_order) {
  lm_spool_recovery rec;
  lm_spool *sp = open_ok(1 << 20, &rec);
  ck_assert_int_eq(rec.created, 1);
  ck_assert_uint_eq(lm_spool_rows(sp), 0);
  ck_assert_uint_eq(lm_spool_bytes(sp), LM_SPOOL_HEADER_LEN);
  ck_assert_int_eq(file_size(g_path), LM_SPOOL_HEADER_LEN);
  struct stat st;
  ck_assert_int_eq(stat(g_path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  append_range(sp, 0, 3);
  append_range(sp, 3, 10);
  ck_assert_uint_eq(lm_spool_rows(sp), 10);
  /* Appended means on disk: the file has grown by whole records. */
  ck_assert_int_eq(file_size(g_path), record_off(10));
  /* Peeking does not consume. */
  cl_store_row rows[8];
  size_t n, skipped;
  char err[256];
  ck_assert_int_eq(lm_spool_peek(sp, rows, 4, &n, &skipped, err, sizeof err), CL_OK);
  ck_assert_uint_eq(n, 4);
  ck_assert_uint_eq(skipped, 0);
  ck_assert_int_eq(lm_spool_peek(sp, rows, 4, &n, &skipped, err, sizeof err), CL_OK);
  ck_assert_uint_eq(row_id(&rows[0]), 0);
  ck_assert_uint_eq(lm_spool_rows(sp), 10);
  ck_assert_int_eq(lm_spool_consume(sp, 11, err, sizeof err), CL_EINVAL);
  fake_db db;
  memset(&db, 0, sizeof db);
  uint64_t next = 0;
  ck_assert_uint_eq(drain(sp, &db, 4, &next), 10);
  ck_assert_uint_eq(next, 10);
  ck_assert_int_eq(db.refused, 0);
  ck_assert_int_eq(file_size(g_path), LM_SPOOL_HEADER_LEN);
  lm_spool_close(&sp);
  ck_assert_ptr_null(sp);
}
END_TEST

START_TEST(peek_keeps_one_kind) {
  lm_spool *sp = open_ok(1 << 20, NULL);
  cl_store_row rows[6];
  for (int i = 0; i < 6; i++) rows[i] = make_row((uint64_t)i, i == 2 || i == 3);
  size_t k, n, skipped;
  char err[256];
  ck_assert_int_eq(lm_spool_append(sp, rows, 6, &k, err, sizeof err), CL_OK);
  cl_store_row out[8];
  size_t want[] = {2, 2, 2};
  int kind[] = {0, 1, 0};
  for (int b = 0; b < 3; b++) {
    ck_assert_int_eq(lm_spool_peek(sp, out, 8, &n, &skipped, err, sizeof err), CL_OK);
    ck_assert_uint_eq(n, want[b]);
    for (size_t i = 0; i < n; i++) ck_assert_int_eq(out[i].is_link, kind[b]);
    ck_assert_int_eq(lm_spool_consume(sp, n, err, sizeof err), CL_OK);
  }
  ck_assert_uint_eq(lm_spool_rows(sp), 0);
  lm_spool_close(&sp);
}
END_TEST

START_TEST(reopen_keeps_offset) {
  lm_spool *sp = open_ok(1 << 20, NULL);
  append_range(sp, 0, 10);
  char err[256];
  ck_assert_int_eq(lm_spool_consume(sp, 3, err, sizeof err), CL_OK);
  ck_assert_int_eq(lm_spool_consume(sp, 2, err, sizeof err), CL_OK);
  lm_spool_close(&sp);
  lm_spool_recovery rec;
  sp = open_ok(1 << 20, &rec);
  ck_assert_int_eq(rec.created, 0);
  ck_assert_int_eq(rec.offset_reset, 0);
  ck_assert_uint_eq(lm_spool_rows(sp), 5);
  fake_db db;
  memset(&db, 0, sizeof db);
  uint64_t next = 5;
  ck_assert_uint_eq(drain(sp, &db, 3, &next), 5);
  lm_spool_close(&sp);
}
END_TEST

/* ---- crashes -------------------------------------------------------------- */

START_TEST(torn_partial_record_dropped) {
  lm_spool *sp = open_ok(1 << 20, NULL);
  append_range(sp, 0, 5);
  lm_spool_close(&sp);
  /* Power loss in the middle of the fifth record. */
  ck_assert_int_eq(truncate(g_path, record_off(5) - 100), 0);
  lm_spool_recovery rec;
  sp = open_ok(1 << 20, &rec);
  ck_assert_uint_eq(rec.torn_bytes, LM_SPOOL_RECORD_LEN - 100);
  ck_assert_uint_eq(rec.torn_records, 0);
  ck_assert_uint_eq(lm_spool_rows(sp), 4);
  ck_assert_int_eq(file_size(g_path), record_off(4));
  /* Appends continue on a record boundary. */
  append_range(sp, 4, 6);
  fake_db db;
  memset(&db, 0, sizeof db);
  uint64_t next = 0;
  ck_assert_uint_eq(drain(sp, &db, 64, &next), 6);
  lm_spool_close(&sp);
}
END_TEST

START_TEST(torn_complete_record_dropped) {
  lm_spool *sp = open_ok(1 << 20, NULL);
  append_range(sp, 0, 5);
  lm_spool_close(&sp);
  /* The last two records reached the disk as garbage and as zeros. */
  poke(g_path, record_off(3) + 200, 0x55);
  int fd = open(g_path, O_RDWR);
  uint8_t zero[LM_SPOOL_RECORD_LEN] = {0};
  ck_assert_int_eq(pwrite(fd, zero, sizeof zero, record_off(4)), (ssize_t)sizeof zero);
  close(fd);
  lm_spool_recovery rec;
  sp = open_ok(1 << 20, &rec);
  ck_assert_uint_eq(rec.torn_bytes, 0);
  ck_assert_uint_eq(rec.torn_records, 2);
  ck_assert_uint_eq(lm_spool_rows(sp), 3);
  lm_spool_close(&sp);
}
END_TEST

START_TEST(damaged_record_skipped) {
  lm_spool *sp = open_ok(1 << 20, NULL);
  append_range(sp, 0, 6);
  lm_spool_close(&sp);
  poke(g_path, record_off(2) + 340, 0x01); /* first entry's seq of record 2 */
  sp = open_ok(1 << 20, NULL);
  ck_assert_uint_eq(lm_spool_rows(sp), 6); /* not the tail: kept until replay */
  cl_store_row rows[8];
  size_t n, skipped;
  char err[256];
  ck_assert_int_eq(lm_spool_peek(sp, rows, 8, &n, &skipped, err, sizeof err), CL_OK);
  ck_assert_uint_eq(n, 2); /* stops before the damaged record */
  ck_assert_uint_eq(skipped, 0);
  ck_assert_int_eq(lm_spool_consume(sp, n, err, sizeof err), CL_OK);
  ck_assert_int_eq(lm_spool_peek(sp, rows, 8, &n, &skipped, err, sizeof err), CL_OK);
  ck_assert_uint_eq(skipped, 1);
  ck_assert_uint_eq(n, 3);
  ck_assert_uint_eq(row_id(&rows[0]), 3);
  ck_assert_int_eq(lm_spool_consume(sp, n + skipped, err, sizeof err), CL_OK);
  ck_assert_uint_eq(lm_spool_rows(sp), 0);
  lm_spool_close(&sp);
}
END_TEST

/*
 * A crash after rows were committed to the database but before the consume
 * reached the disk, then one after the consume but before the compaction:
 * every row ends in the database exactly once; the only duplicates offered
 * are the rows of the unconsumed batch, which the database refuses.
 */
START_TEST(crash_during_replay) {
  fake_db db;
  memset(&db, 0, sizeof db);
  lm_spool *sp = open_ok(1 << 20, NULL);
  append_range(sp, 0, 12);
  cl_store_row rows[8];
  size_t n, skipped;
  char err[256];
  /* Batch 1 stored and consumed. */
  ck_assert_int_eq(lm_spool_peek(sp, rows, 4, &n, &skipped, err, sizeof err), CL_OK);
  for (size_t i = 0; i < n; i++) db_insert(&db, &rows[i]);
  ck_assert_int_eq(lm_spool_consume(sp, n, err, sizeof err), CL_OK);
  /* Batch 2 stored, then the crash: no consume. */
  ck_assert_int_eq(lm_spool_peek(sp, rows, 4, &n, &skipped, err, sizeof err), CL_OK);
  ck_assert_uint_eq(row_id(&rows[0]), 4);
  for (size_t i = 0; i < n; i++) db_insert(&db, &rows[i]);
  lm_spool_close(&sp);

  sp = open_ok(1 << 20, NULL);
  ck_assert_uint_eq(lm_spool_rows(sp), 8);
  uint64_t next = 4;
  ck_assert_uint_eq(drain(sp, &db, 4, &next), 8);
  ck_assert_int_eq(db.refused, 4); /* exactly batch 2, refused by the unique key */
  lm_spool_close(&sp);

  /* Consumed to the end, then a crash before the compaction. */
  sp = open_ok(1 << 20, NULL);
  append_range(sp, 12, 15);
  ck_assert_int_eq(lm_spool_peek(sp, rows, 8, &n, &skipped, err, sizeof err), CL_OK);
  for (size_t i = 0; i < n; i++) db_insert(&db, &rows[i]);
  ck_assert_int_eq(lm_spool_consume(sp, n, err, sizeof err), CL_OK);
  lm_spool_close(&sp);
  sp = open_ok(1 << 20, NULL);
  ck_assert_uint_eq(lm_spool_rows(sp), 0);
  append_range(sp, 15, 17); /* the file goes on after the consumed records */
  next = 15;
  ck_assert_uint_eq(drain(sp, &db, 4, &next), 2);
  lm_spool_close(&sp);

  for (int s = 0; s < 17; s++) ck_assert_int_eq(db.stored[s], 1);
  ck_assert_int_eq(db.refused, 4);
}
END_TEST

START_TEST(offset_slots) {
  lm_spool *sp = open_ok(1 << 20, NULL);
  append_range(sp, 0, 9);
  char err[256];
  ck_assert_int_eq(lm_spool_consume(sp, 2, err, sizeof err), CL_OK); /* gen 2: slot 0 */
  ck_assert_int_eq(lm_spool_consume(sp, 3, err, sizeof err), CL_OK); /* gen 3: slot 1 */
  lm_spool_close(&sp);
  /* A torn write of the newest slot: the older one is used, so only the
   * last consumed batch comes back. */
  poke(g_path, 64 + 32 + 9, 0x40);
  lm_spool_recovery rec;
  sp = open_ok(1 << 20, &rec);
  ck_assert_int_eq(rec.offset_reset, 0);
  ck_assert_uint_eq(lm_spool_rows(sp), 7);
  /* The next consume outranks the damaged slot and replaces it. */
  ck_assert_int_eq(lm_spool_consume(sp, 1, err, sizeof err), CL_OK);
  lm_spool_close(&sp);
  sp = open_ok(1 << 20, &rec);
  ck_assert_uint_eq(lm_spool_rows(sp), 6);
  lm_spool_close(&sp);
  /* Both slots damaged: replay starts over (the database refuses repeats). */
  poke(g_path, 64 + 3, 0x01);
  poke(g_path, 96 + 3, 0x01);
  sp = open_ok(1 << 20, &rec);
  ck_assert_int_eq(rec.offset_reset, 1);
  ck_assert_uint_eq(lm_spool_rows(sp), 9);
  lm_spool_close(&sp);
}
END_TEST

START_TEST(stale_compaction_file_removed) {
  lm_spool *sp = open_ok(1 << 20, NULL);
  append_range(sp, 0, 3);
  lm_spool_close(&sp);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", g_path);
  free(tu_write_file(g_dir, "landmarkd.spool.tmp", "half a compaction"));
  lm_spool_recovery rec;
  sp = open_ok(1 << 20, &rec);
  ck_assert_int_eq(rec.stale_tmp, 1);
  ck_assert_int_ne(access(tmp, F_OK), 0);
  ck_assert_uint_eq(lm_spool_rows(sp), 3);
  lm_spool_close(&sp);
}
END_TEST

/* ---- limits and refusals -------------------------------------------------- */

START_TEST(size_limit) {
  uint64_t max = LM_SPOOL_HEADER_LEN + 3 * LM_SPOOL_RECORD_LEN + 100;
  lm_spool *sp = open_ok(max, NULL);
  cl_store_row rows[5];
  for (int i = 0; i < 5; i++) rows[i] = make_row((uint64_t)i, 0);
  size_t k;
  char err[256];
  ck_assert_int_eq(lm_spool_append(sp, rows, 5, &k, err, sizeof err), CL_OK);
  ck_assert_uint_eq(k, 3);
  ck_assert_uint_le(lm_spool_bytes(sp), max);
  ck_assert_int_eq(lm_spool_append(sp, rows + 3, 2, &k, err, sizeof err), CL_OK);
  ck_assert_uint_eq(k, 0); /* full: refused, nothing written */
  ck_assert_int_eq(file_size(g_path), record_off(3));
  /* Consumed records are compacted away to make room. */
  ck_assert_int_eq(lm_spool_consume(sp, 2, err, sizeof err), CL_OK);
  ck_assert_int_eq(lm_spool_append(sp, rows + 3, 2, &k, err, sizeof err), CL_OK);
  ck_assert_uint_eq(k, 2);
  ck_assert_uint_eq(lm_spool_rows(sp), 3);
  ck_assert_int_eq(file_size(g_path), record_off(3));
  fake_db db;
  memset(&db, 0, sizeof db);
  uint64_t next = 2;
  ck_assert_uint_eq(drain(sp, &db, 8, &next), 3);
  lm_spool_close(&sp);
  ck_assert_int_eq(lm_spool_open(&sp, g_path, g_pk, LM_SPOOL_HEADER_LEN + 1, NULL, err,
                                 sizeof err),
                   CL_EINVAL);
}
END_TEST

START_TEST(refusals) {
  char err[512];
  lm_spool *sp = open_ok(1 << 20, NULL);
  append_range(sp, 0, 2);
  /* Another key's row is refused whole. */
  cl_store_row bad[2] = {make_row(2, 0), make_row(3, 0)};
  bad[1].m.hs.landmark[0] ^= 1;
  size_t k;
  ck_assert_int_eq(lm_spool_append(sp, bad, 2, &k, err, sizeof err), CL_EINVAL);
  ck_assert_uint_eq(k, 0);
  ck_assert_uint_eq(lm_spool_rows(sp), 2);
  /* So is a row whose probe count no record can hold. */
  bad[1] = make_row(3, 0);
  bad[1].m.count = CL_MAX_BURST + 1;
  ck_assert_int_eq(lm_spool_append(sp, bad, 2, &k, err, sizeof err), CL_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "row 1 has 17 probes"));
  bad[1].m.count = 0;
  ck_assert_int_eq(lm_spool_append(sp, bad, 2, &k, err, sizeof err), CL_EINVAL);
  ck_assert_uint_eq(k, 0);
  ck_assert_uint_eq(lm_spool_rows(sp), 2);
  /* A second owner is refused while the first holds the spool. */
  lm_spool *other = NULL;
  ck_assert_int_eq(lm_spool_open(&other, g_path, g_pk, 1 << 20, NULL, err, sizeof err), CL_EIO);
  ck_assert_ptr_nonnull(strstr(err, "in use"));
  lm_spool_close(&sp);
  off_t size = file_size(g_path);

  /* A spool of another landmark. */
  uint8_t pk2[CL_PK_LEN];
  memcpy(pk2, g_pk, CL_PK_LEN);
  pk2[5] ^= 0x80;
  ck_assert_int_eq(lm_spool_open(&sp, g_path, pk2, 1 << 20, NULL, err, sizeof err), CL_EEXIST);
  ck_assert_ptr_nonnull(strstr(err, "move it aside"));
  /* A damaged header. */
  poke(g_path, 30, 0x04);
  ck_assert_int_eq(lm_spool_open(&sp, g_path, g_pk, 1 << 20, NULL, err, sizeof err),
                   CL_EMALFORMED);
  poke(g_path, 30, 0x04);
  /* Another version, and not a spool at all. */
  poke(g_path, 15, '2' ^ '3');
  ck_assert_int_eq(lm_spool_open(&sp, g_path, g_pk, 1 << 20, NULL, err, sizeof err),
                   CL_EVERSION);
  ck_assert_ptr_nonnull(strstr(err, "unsupported version"));
  poke(g_path, 0, 'c' ^ 'X');
  ck_assert_int_eq(lm_spool_open(&sp, g_path, g_pk, 1 << 20, NULL, err, sizeof err),
                   CL_EVERSION);
  ck_assert_ptr_nonnull(strstr(err, "not a chiploc spool"));
  ck_assert_ptr_null(sp);
  /* None of this changed the file. */
  ck_assert_int_eq(file_size(g_path), size);
  poke(g_path, 0, 'c' ^ 'X');
  poke(g_path, 15, '2' ^ '3');
  sp = open_ok(1 << 20, NULL);
  ck_assert_uint_eq(lm_spool_rows(sp), 2);
  lm_spool_close(&sp);

  /* Files shorter than a header: a cut spool, and something else. */
  char *cut = tu_write_file(g_dir, "cut.spool", "chiploc-spool v2\x00\x00");
  ck_assert_int_eq(lm_spool_open(&sp, cut, g_pk, 1 << 20, NULL, err, sizeof err), CL_EMALFORMED);
  free(cut);
  char *notes = tu_write_file(g_dir, "notes.txt", "shopping list\n");
  ck_assert_int_eq(lm_spool_open(&sp, notes, g_pk, 1 << 20, NULL, err, sizeof err), CL_EVERSION);
  ck_assert_ptr_nonnull(strstr(err, "not a chiploc spool"));
  ck_assert_int_eq(file_size(notes), 14);
  free(notes);

  /* A directory that does not exist. */
  char missing[600];
  snprintf(missing, sizeof missing, "%s/no/such/dir/x.spool", g_dir);
  ck_assert_int_eq(lm_spool_open(&sp, missing, g_pk, 1 << 20, NULL, err, sizeof err), CL_EIO);
  ck_assert_ptr_nonnull(strstr(err, "cannot create"));
}
END_TEST

/* ---- version 1 spools --------------------------------------------------- */

/*
 * Writes a version 1 spool at path as the previous release left it (the
 * layout of docs/SPOOL.md before version 2): the header with read-offset
 * slot 0 = (1, 128) and, when consumed_gen2 >= 0, slot 1 = (2, 128 + 368 *
 * consumed_gen2); then `records` records of 368 bytes.
 */
static void write_v1(const char *path, const uint8_t pk[CL_PK_LEN], int records,
                     int consumed_gen2) {
  uint8_t h[128];
  memset(h, 0, sizeof h);
  memcpy(h, "chiploc-spool v1", 16);
  cl_put_be32(h + 16, 128);
  cl_put_be32(h + 20, 368);
  memcpy(h + 24, pk, CL_PK_LEN);
  cl_put_be32(h + 56, lm_spool_crc32c(h, 56));
  cl_put_be64(h + 64, 1);
  cl_put_be64(h + 64 + 8, 128);
  cl_put_be32(h + 64 + 28, lm_spool_crc32c(h + 64, 28));
  if (consumed_gen2 >= 0) {
    cl_put_be64(h + 96, 2);
    cl_put_be64(h + 96 + 8, 128 + 368 * (uint64_t)consumed_gen2);
    cl_put_be32(h + 96 + 28, lm_spool_crc32c(h + 96, 28));
  }
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(h, 1, sizeof h, f), sizeof h);
  uint8_t rec[368];
  for (int i = 0; i < records; i++) {
    memset(rec, 0x5a + i, sizeof rec);
    cl_put_be32(rec + 364, lm_spool_crc32c(rec, 364));
    ck_assert_uint_eq(fwrite(rec, 1, sizeof rec, f), sizeof rec);
  }
  ck_assert_int_eq(fclose(f), 0);
}

START_TEST(v1_spool_refused_or_replaced) {
  char err[1024];
  lm_spool *sp = NULL;
  /* Records left to replay: refused, the file untouched, the message naming
   * the file, how much it holds and both ways out. */
  write_v1(g_path, g_pk, 3, 1);
  char *before = tu_read_file(g_path);
  off_t size = file_size(g_path);
  ck_assert_int_eq(size, 128 + 3 * 368);
  ck_assert_int_eq(lm_spool_open(&sp, g_path, g_pk, 1 << 20, NULL, err, sizeof err),
                   CL_EVERSION);
  ck_assert_ptr_null(sp);
  ck_assert_msg(strstr(err, g_path) && strstr(err, "version 1 spool") &&
                    strstr(err, "2 protocol 1 records not yet replayed") &&
                    strstr(err, "previous chiploc release") && strstr(err, "move the file aside"),
                "%s", err);
  ck_assert_int_eq(file_size(g_path), size);
  char *after = tu_read_file(g_path);
  ck_assert_mem_eq(after, before, (size_t)size);
  free(after);
  free(before);
  /* No valid slot: every record counts. A torn tail counts as well. */
  write_v1(g_path, g_pk, 2, -1);
  poke(g_path, 64 + 3, 0x01);
  ck_assert_int_eq(lm_spool_open(&sp, g_path, g_pk, 1 << 20, NULL, err, sizeof err),
                   CL_EVERSION);
  ck_assert_msg(strstr(err, "2 protocol 1 records"), "%s", err);
  write_v1(g_path, g_pk, 2, 2);
  ck_assert_int_eq(truncate(g_path, 128 + 2 * 368 + 10), 0);
  ck_assert_int_eq(lm_spool_open(&sp, g_path, g_pk, 1 << 20, NULL, err, sizeof err),
                   CL_EVERSION);
  ck_assert_msg(strstr(err, "1 protocol 1 records"), "%s", err);
  /* A damaged header: nothing can be known, so nothing is replaced. */
  write_v1(g_path, g_pk, 0, -1);
  poke(g_path, 30, 0x04);
  ck_assert_int_eq(lm_spool_open(&sp, g_path, g_pk, 1 << 20, NULL, err, sizeof err),
                   CL_EVERSION);
  ck_assert_msg(strstr(err, "version 1 spool") && strstr(err, "damaged header") &&
                    strstr(err, "move the file aside"),
                "%s", err);
  ck_assert_int_eq(file_size(g_path), 128);

  /* Every record replayed (drained, or consumed to the end and not yet
   * compacted): replaced by a new spool, which then works as any other. */
  for (int records = 0; records <= 2; records += 2) {
    write_v1(g_path, g_pk, records, records);
    lm_spool_recovery rec;
    sp = open_ok(1 << 20, &rec);
    ck_assert_int_eq(rec.replaced_v1, 1);
    ck_assert_uint_eq(lm_spool_rows(sp), 0);
    ck_assert_int_eq(file_size(g_path), LM_SPOOL_HEADER_LEN);
    append_range(sp, 0, 2);
    lm_spool_close(&sp);
    char *text = tu_read_file(g_path);
    ck_assert_mem_eq(text, "chiploc-spool v2", 16);
    free(text);
    sp = open_ok(1 << 20, &rec);
    ck_assert_int_eq(rec.replaced_v1, 0);
    ck_assert_uint_eq(lm_spool_rows(sp), 2);
    lm_spool_close(&sp);
  }
  /* It holds nothing, so whose it was does not matter. */
  uint8_t pk2[CL_PK_LEN];
  memcpy(pk2, g_pk, CL_PK_LEN);
  pk2[0] ^= 1;
  write_v1(g_path, pk2, 0, -1);
  lm_spool_recovery rec;
  sp = open_ok(1 << 20, &rec);
  ck_assert_int_eq(rec.replaced_v1, 1);
  lm_spool_close(&sp);
}
END_TEST

/* ---- the config settings -------------------------------------------------- */

START_TEST(config_settings) {
  char err[512];
  cl_landmark_config *c = malloc(sizeof *c);
  const char *base = "[landmark]\nname = x\nkey = k.key\nlat = 1\nlon = 2\n[database]\n"
                     "conninfo = dbname=x\n";
  char text[512];
  /* Default: beside the config file, named after it. */
  char *path = tu_write_file(g_dir, "fra-1.conf", base);
  ck_assert_msg(cl_landmark_config_load(path, c, err, sizeof err) == CL_OK, "%s", err);
  char want[600];
  char *real = realpath(g_dir, NULL);
  snprintf(want, sizeof want, "%s/fra-1.spool", real);
  ck_assert_str_eq(c->spool_path, want);
  ck_assert_uint_eq(c->spool_max_mb, 256);
  free(path);
  /* A relative path is taken relative to the config file's directory. */
  snprintf(text, sizeof text, "%sspool_path = state/lm.spool\nspool_max_mb = 1\n", base);
  path = tu_write_file(g_dir, "b.conf", text);
  ck_assert_msg(cl_landmark_config_load(path, c, err, sizeof err) == CL_OK, "%s", err);
  snprintf(want, sizeof want, "%s/state/lm.spool", real);
  ck_assert_str_eq(c->spool_path, want);
  ck_assert_uint_eq(c->spool_max_mb, 1);
  free(path);
  /* Out of range. */
  snprintf(text, sizeof text, "%sspool_max_mb = 0\n", base);
  path = tu_write_file(g_dir, "c.conf", text);
  ck_assert_int_eq(cl_landmark_config_load(path, c, err, sizeof err), CL_EMALFORMED);
  ck_assert_ptr_nonnull(strstr(err, "c.conf:8: [database] spool_max_mb = 0: must be an integer in "
                                    "[1, 100000]"));
  free(path);
  snprintf(text, sizeof text, "%sspool_path =\n", base);
  path = tu_write_file(g_dir, "d.conf", text);
  ck_assert_int_eq(cl_landmark_config_load(path, c, err, sizeof err), CL_EMALFORMED);
  ck_assert_ptr_nonnull(strstr(err, "spool_path"));
  free(path);
  free(real);
  free(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("spool");
  TCase *tc = tcase_create("spool");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, crc_check_value);
  tcase_add_test(tc, record_layout);
  tcase_add_test(tc, record_damage_detected);
  tcase_add_test(tc, append_replay_order);
  tcase_add_test(tc, peek_keeps_one_kind);
  tcase_add_test(tc, reopen_keeps_offset);
  tcase_add_test(tc, torn_partial_record_dropped);
  tcase_add_test(tc, torn_complete_record_dropped);
  tcase_add_test(tc, damaged_record_skipped);
  tcase_add_test(tc, crash_during_replay);
  tcase_add_test(tc, offset_slots);
  tcase_add_test(tc, stale_compaction_file_removed);
  tcase_add_test(tc, size_limit);
  tcase_add_test(tc, refusals);
  tcase_add_test(tc, v1_spool_refused_or_replaced);
  tcase_add_test(tc, config_settings);
  suite_add_tcase(s, tc);
  return tu_run_suite(s);
}
