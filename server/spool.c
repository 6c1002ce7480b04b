/*
 * The outage spool of landmarkd: file layout, append, replay and compaction.
 * See spool.h for the contract and docs/SPOOL.md for the format.
 *
 * All writes go through pwrite at explicit offsets on one descriptor; the
 * struct mirrors the file's size and read offset. Appends and offset moves
 * are made durable with fdatasync before a function reports success. A new
 * file (first creation, compaction) is built under PATH.tmp, synced, locked
 * and renamed over PATH, then the directory is synced, so PATH always names
 * a complete spool.
 */
#define _GNU_SOURCE
#include "spool.h"
#include "cl_err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Records per read or write call: 449 KiB of buffer. */
#define CHUNK_RECORDS 256u

/* Header fields (docs/SPOOL.md). */
#define H_HEADER_LEN 16
#define H_RECORD_LEN 20
#define H_LANDMARK 24
#define H_CRC 56
#define H_SLOT0 64
#define SLOT_LEN 32
#define SLOT_GEN 0
#define SLOT_OFF 8
#define SLOT_CRC 28

/* Version 1 (protocol 1 records): only recognised, to refuse it or to
 * replace it when it holds nothing. Same header and slots, 368-byte
 * records. */
#define V1_MAGIC "chiploc-spool v1"
#define V1_RECORD_LEN 368u

/* Record fields (docs/SPOOL.md). */
#define R_KIND 0
#define R_CHIP_ID 4
#define R_LANDMARK 12
#define R_CHIP 44
#define R_SUITE 76
#define R_HANDSHAKE 80
#define R_COUNT (R_HANDSHAKE + CL_HS_BLOB_LEN)
#define R_PROBES (R_COUNT + 4)
#define R_TRANSCRIPT_SIG (R_PROBES + CL_PROBES_BLOB_MAX)
#define R_RTT (R_TRANSCRIPT_SIG + CL_SIG_LEN)
#define R_PROBES_SENT (R_RTT + 8)
#define R_MEASURED (R_PROBES_SENT + 4)
#define R_SIG (R_MEASURED + 8)
#define R_BOUND (R_SIG + CL_SIG_LEN)
#define R_EST_SPEED (R_BOUND + 8)
#define R_EST_BOUND (R_EST_SPEED + 8)
#define R_CRC (R_EST_BOUND + 8)

_Static_assert(R_CRC + 4 == LM_SPOOL_RECORD_LEN, "record layout");
_Static_assert(H_SLOT0 + 2 * SLOT_LEN == LM_SPOOL_HEADER_LEN, "header layout");
_Static_assert(sizeof LM_SPOOL_MAGIC - 1 == LM_SPOOL_MAGIC_LEN, "magic length");
_Static_assert(sizeof V1_MAGIC - 1 == LM_SPOOL_MAGIC_LEN, "magic length");
_Static_assert(R_COUNT == 336 && R_PROBES == 340 && R_CRC == 1792, "record layout of SPOOL.md");

struct lm_spool {
  int fd;
  char path[PATH_MAX];
  char tmp_path[PATH_MAX + 8];
  char dir[PATH_MAX];
  uint8_t pk[CL_PK_LEN];
  uint64_t max_bytes;
  uint64_t size;     /* file size: the header plus whole records */
  uint64_t read_off; /* first record not yet consumed */
  uint64_t gen;      /* generation of the newest read-offset slot */
  uint8_t *buf;      /* CHUNK_RECORDS records */
};

/* ---- checksum and layouts ------------------------------------------------ */

/* CRC-32C, reflected polynomial 0x82F63B78, four bits at a time. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x105ec76fu, 0x20bd8edeu, 0x30e349b1u, 0x417b1dbcu, 0x5125dad3u,
    0x61c69362u, 0x7198540du, 0x82f63b78u, 0x92a8fc17u, 0xa24bb5a6u, 0xb21572c9u,
    0xc38d26c4u, 0xd3d3e1abu, 0xe330a81au, 0xf36e6f75u};

uint32_t lm_spool_crc32c(const void *data, size_t len) {
  const uint8_t *p = data;
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < len; i++) {
    c ^= p[i];
    c = (c >> 4) ^ crc_nibble[c & 15u];
    c = (c >> 4) ^ crc_nibble[c & 15u];
  }
  return c ^ 0xffffffffu;
}

void lm_spool_encode(uint8_t out[LM_SPOOL_RECORD_LEN], const cl_store_row *row) {
  const cl_measurement *m = &row->m;
  memset(out, 0, LM_SPOOL_RECORD_LEN);
  out[R_KIND] = row->is_link ? 1 : 0;
  cl_put_be64(out + R_CHIP_ID, (uint64_t)row->chip_id);
  memcpy(out + R_LANDMARK, m->hs.landmark, CL_PK_LEN);
  memcpy(out + R_CHIP, m->hs.chip, CL_PK_LEN);
  cl_put_be32(out + R_SUITE, m->hs.suite);
  cl_hs_blob_put(out + R_HANDSHAKE, &m->hs);
  /* A count beyond the maximum cannot be stored; it is kept as it is, so
   * that decoding refuses the record rather than shortening it. */
  cl_put_be32(out + R_COUNT, m->count);
  cl_probes_blob_put(out + R_PROBES, m->probes, m->count);
  memcpy(out + R_TRANSCRIPT_SIG, m->transcript_sig, CL_SIG_LEN);
  cl_put_be64(out + R_RTT, m->rtt_ns);
  cl_put_be32(out + R_PROBES_SENT, m->probes_sent);
  cl_put_be64(out + R_MEASURED, m->measured_unix_ns);
  memcpy(out + R_SIG, m->sig, CL_SIG_LEN);
  cl_put_be64(out + R_BOUND, row->bound_m);
  uint64_t speed_bits;
  memcpy(&speed_bits, &row->est_speed, sizeof speed_bits);
  cl_put_be64(out + R_EST_SPEED, speed_bits);
  cl_put_be64(out + R_EST_BOUND, row->est_bound_m);
  cl_put_be32(out + R_CRC, lm_spool_crc32c(out, R_CRC));
}

/* 1 if len bytes at p are all zero. */
static int all_zero(const uint8_t *p, size_t len) {
  uint8_t acc = 0;
  for (size_t i = 0; i < len; i++) acc |= p[i];
  return acc == 0;
}

int lm_spool_decode(const uint8_t in[LM_SPOOL_RECORD_LEN], cl_store_row *row) {
  if (cl_get_be32(in + R_CRC) != lm_spool_crc32c(in, R_CRC)) return CL_EMALFORMED;
  if (in[R_KIND] > 1 || in[1] || in[2] || in[3]) return CL_EMALFORMED;
  uint32_t count = cl_get_be32(in + R_COUNT);
  if (count < 1 || count > CL_MAX_BURST) return CL_EMALFORMED;
  size_t used = (size_t)count * CL_RECORD_ENTRY_LEN;
  if (!all_zero(in + R_PROBES + used, CL_PROBES_BLOB_MAX - used)) return CL_EMALFORMED;
  memset(row, 0, sizeof *row);
  cl_measurement *m = &row->m;
  row->is_link = in[R_KIND];
  uint64_t id = cl_get_be64(in + R_CHIP_ID);
  memcpy(&row->chip_id, &id, sizeof id); /* two's complement, as written */
  memcpy(m->hs.landmark, in + R_LANDMARK, CL_PK_LEN);
  memcpy(m->hs.chip, in + R_CHIP, CL_PK_LEN);
  m->hs.suite = cl_get_be32(in + R_SUITE);
  cl_hs_blob_get(&m->hs, in + R_HANDSHAKE);
  size_t n = 0; /* cannot fail: `used` is count whole entries, count 1..CL_MAX_BURST */
  cl_probes_blob_get(m->probes, &n, in + R_PROBES, used);
  m->count = count;
  memcpy(m->transcript_sig, in + R_TRANSCRIPT_SIG, CL_SIG_LEN);
  m->rtt_ns = cl_get_be64(in + R_RTT);
  m->probes_sent = cl_get_be32(in + R_PROBES_SENT);
  m->measured_unix_ns = cl_get_be64(in + R_MEASURED);
  memcpy(m->sig, in + R_SIG, CL_SIG_LEN);
  row->bound_m = cl_get_be64(in + R_BOUND);
  uint64_t speed_bits = cl_get_be64(in + R_EST_SPEED);
  memcpy(&row->est_speed, &speed_bits, sizeof speed_bits);
  row->est_bound_m = cl_get_be64(in + R_EST_BOUND);
  return CL_OK;
}

static void slot_encode(uint8_t s[SLOT_LEN], uint64_t gen, uint64_t off) {
  memset(s, 0, SLOT_LEN);
  cl_put_be64(s + SLOT_GEN, gen);
  cl_put_be64(s + SLOT_OFF, off);
  cl_put_be32(s + SLOT_CRC, lm_spool_crc32c(s, SLOT_CRC));
}

/* A fresh header: read offset at the first record, in slot 0. */
static void header_encode(uint8_t h[LM_SPOOL_HEADER_LEN], const uint8_t pk[CL_PK_LEN]) {
  memset(h, 0, LM_SPOOL_HEADER_LEN);
  memcpy(h, LM_SPOOL_MAGIC, LM_SPOOL_MAGIC_LEN);
  cl_put_be32(h + H_HEADER_LEN, LM_SPOOL_HEADER_LEN);
  cl_put_be32(h + H_RECORD_LEN, LM_SPOOL_RECORD_LEN);
  memcpy(h + H_LANDMARK, pk, CL_PK_LEN);
  cl_put_be32(h + H_CRC, lm_spool_crc32c(h, H_CRC));
  slot_encode(h + H_SLOT0, 1, LM_SPOOL_HEADER_LEN);
}

/* ---- small I/O helpers --------------------------------------------------- */

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t w = pwrite(fd, p, len, (off_t)off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return -1;
    }
    p += w;
    len -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
}

/* Reads exactly len bytes; -1 with errno set on error or early end of file. */
static int pread_all(int fd, void *buf, size_t len, uint64_t off) {
  uint8_t *p = buf;
  while (len > 0) {
    ssize_t r = pread(fd, p, len, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r == 0) errno = EIO;
      return -1;
    }
    p += r;
    len -= (size_t)r;
    off += (uint64_t)r;
  }
  return 0;
}

static int sync_data(int fd) {
  int r;
  do r = fdatasync(fd);
  while (r < 0 && errno == EINTR);
  return r;
}

/* Makes a rename or creation in dir durable. */
static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int r;
  do r = fsync(fd);
  while (r < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  errno = e;
  return r;
}

static void dir_of(const char *path, char *out, size_t outlen) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    snprintf(out, outlen, ".");
  else if (slash == path)
    snprintf(out, outlen, "/");
  else
    snprintf(out, outlen, "%.*s", (int)(slash - path), path);
}

/* ---- building a new file ------------------------------------------------- */

/*
 * Writes a new spool under tmp_path holding the records [from, to) of the
 * current file (none when sp->fd < 0), syncs it, locks it and renames it
 * over path; then the spool continues on the new file. On failure before
 * the rename the old file and state are untouched and the temporary file is
 * removed. Returns 0 or CL_EIO.
 */
static int replace_file(lm_spool *sp, uint64_t from, uint64_t to, char *err, size_t errlen) {
  int fd = open(sp->tmp_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    cl_err_set(err, errlen, "spool %s: cannot create %s: %s", sp->path, sp->tmp_path,
              strerror(errno));
    return CL_EIO;
  }
  /* Lock before truncating, so a second process creating the same spool
   * cannot clobber this file. */
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    cl_err_set(err, errlen, "spool %s: in use by another process", sp->tmp_path);
    close(fd);
    return CL_EIO;
  }
  uint8_t h[LM_SPOOL_HEADER_LEN];
  header_encode(h, sp->pk);
  const char *what = "write";
  int ok = ftruncate(fd, 0) == 0 && pwrite_all(fd, h, sizeof h, 0) == 0;
  uint64_t out = LM_SPOOL_HEADER_LEN;
  for (uint64_t pos = from; ok && pos < to;) {
    size_t len = (size_t)(to - pos);
    if (len > CHUNK_RECORDS * LM_SPOOL_RECORD_LEN) len = CHUNK_RECORDS * LM_SPOOL_RECORD_LEN;
    if (pread_all(sp->fd, sp->buf, len, pos) != 0) {
      what = "read";
      ok = 0;
      break;
    }
    ok = pwrite_all(fd, sp->buf, len, out) == 0;
    pos += len;
    out += len;
  }
  if (ok && fsync(fd) != 0) {
    what = "sync";
    ok = 0;
  }
  if (ok && rename(sp->tmp_path, sp->path) != 0) {
    what = "rename";
    ok = 0;
  }
  if (!ok) {
    cl_err_set(err, errlen, "spool %s: cannot %s the new file: %s", sp->path, what,
               strerror(errno));
    unlink(sp->tmp_path);
    close(fd);
    return CL_EIO;
  }
  if (sp->fd >= 0) close(sp->fd); /* releases the old file's lock */
  sp->fd = fd;
  sp->size = out;
  sp->read_off = LM_SPOOL_HEADER_LEN;
  sp->gen = 1;
  if (sync_dir(sp->dir) != 0) {
    /* The new file is complete; only the directory entry may not be on disk
     * yet. Either file is a valid spool, so nothing can be lost. */
    cl_err_set(err, errlen, "spool %s: cannot sync directory %s: %s", sp->path, sp->dir,
              strerror(errno));
    return CL_EIO;
  }
  return CL_OK;
}

/* Drops the consumed records: the live ones move into a new file. */
static int compact(lm_spool *sp, char *err, size_t errlen) {
  return replace_file(sp, sp->read_off, sp->size, err, errlen);
}

/* ---- open and close ------------------------------------------------------ */

/* Validates the header read from an existing file of this version. */
static int check_header(lm_spool *sp, const uint8_t h[LM_SPOOL_HEADER_LEN], char *err,
                        size_t errlen) {
  if (memcmp(h, LM_SPOOL_MAGIC, LM_SPOOL_MAGIC_LEN) != 0) {
    if (memcmp(h, LM_SPOOL_MAGIC, LM_SPOOL_MAGIC_LEN - 1) == 0)
      cl_err_set(err, errlen, "spool %s: unsupported version \"%.16s\" (this landmarkd reads %s)",
                sp->path, (const char *)h, LM_SPOOL_MAGIC);
    else
      cl_err_set(err, errlen, "spool %s: not a chiploc spool file (no \"%s\" header)", sp->path,
                LM_SPOOL_MAGIC);
    return CL_EVERSION;
  }
  if (cl_get_be32(h + H_CRC) != lm_spool_crc32c(h, H_CRC)) {
    cl_err_set(err, errlen, "spool %s: header checksum mismatch (damaged file)", sp->path);
    return CL_EMALFORMED;
  }
  if (cl_get_be32(h + H_HEADER_LEN) != LM_SPOOL_HEADER_LEN ||
      cl_get_be32(h + H_RECORD_LEN) != LM_SPOOL_RECORD_LEN) {
    cl_err_set(err, errlen, "spool %s: header or record length %u/%u, expected %u/%u", sp->path,
              cl_get_be32(h + H_HEADER_LEN), cl_get_be32(h + H_RECORD_LEN), LM_SPOOL_HEADER_LEN,
              LM_SPOOL_RECORD_LEN);
    return CL_EVERSION;
  }
  if (memcmp(h + H_LANDMARK, sp->pk, CL_PK_LEN) != 0) {
    char hex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(h + H_LANDMARK, hex);
    cl_err_set(err, errlen,
              "spool %s: holds records of landmark key %s, not of this landmark; move it aside "
              "(or run the landmark it belongs to)",
              sp->path, hex);
    return CL_EEXIST;
  }
  return CL_OK;
}

/*
 * Bytes of a version 1 spool (header h, sp->size bytes) after its read
 * offset: the records not yet replayed, a torn tail included. The offset is
 * the newest valid slot's, as version 1 chose it; without one, every record
 * counts. UINT64_MAX when the header is damaged.
 */
static uint64_t v1_unreplayed(const lm_spool *sp, const uint8_t h[LM_SPOOL_HEADER_LEN]) {
  if (cl_get_be32(h + H_CRC) != lm_spool_crc32c(h, H_CRC)) return UINT64_MAX;
  uint64_t best_gen = 0, off = LM_SPOOL_HEADER_LEN;
  for (int i = 0; i < 2; i++) {
    const uint8_t *s = h + H_SLOT0 + i * SLOT_LEN;
    if (cl_get_be32(s + SLOT_CRC) != lm_spool_crc32c(s, SLOT_CRC)) continue;
    uint64_t gen = cl_get_be64(s + SLOT_GEN), o = cl_get_be64(s + SLOT_OFF);
    if (o >= LM_SPOOL_HEADER_LEN && o <= sp->size &&
        (o - LM_SPOOL_HEADER_LEN) % V1_RECORD_LEN == 0 && gen >= best_gen) {
      best_gen = gen;
      off = o;
    }
  }
  return sp->size - off;
}

/*
 * A version 1 spool holds protocol 1 records, which this landmarkd can
 * neither replay nor convert (they lack the session and the transcript of
 * protocol 2). One that holds nothing is replaced by a new spool; any other
 * is refused, untouched, with what to do.
 */
static int handle_v1(lm_spool *sp, const uint8_t h[LM_SPOOL_HEADER_LEN], lm_spool_recovery *rec,
                     char *err, size_t errlen) {
  uint64_t left = v1_unreplayed(sp, h);
  if (left == 0) {
    int rc = replace_file(sp, 0, 0, err, errlen);
    if (rc == CL_OK) rec->replaced_v1 = 1;
    return rc;
  }
  if (left == UINT64_MAX) {
    cl_err_set(err, errlen,
               "spool %s: a version 1 spool (\"%s\") with a damaged header, whose protocol 1 "
               "records this landmarkd cannot store anyway; move the file aside to start with a "
               "new spool",
               sp->path, V1_MAGIC);
    return CL_EVERSION;
  }
  cl_err_set(err, errlen,
             "spool %s: a version 1 spool (\"%s\") holding %llu protocol 1 records not yet "
             "replayed, which this landmarkd cannot store; replay them with the previous chiploc "
             "release (its landmarkd on this spool_path until msg=\"spool drained\") before the "
             "database is migrated to 0005, or move the file aside to start with a new spool "
             "(its records are then lost)",
             sp->path, V1_MAGIC, (unsigned long long)((left + V1_RECORD_LEN - 1) / V1_RECORD_LEN));
  return CL_EVERSION;
}

/* Cuts an incomplete or damaged tail; sp->size is the file's size. */
static int trim_tail(lm_spool *sp, lm_spool_recovery *rec, char *err, size_t errlen) {
  uint64_t rem = (sp->size - LM_SPOOL_HEADER_LEN) % LM_SPOOL_RECORD_LEN;
  uint64_t size = sp->size - rem;
  rec->torn_bytes = rem;
  while (size > LM_SPOOL_HEADER_LEN) {
    cl_store_row row;
    if (pread_all(sp->fd, sp->buf, LM_SPOOL_RECORD_LEN, size - LM_SPOOL_RECORD_LEN) != 0) {
      cl_err_set(err, errlen, "spool %s: cannot read: %s", sp->path, strerror(errno));
      return CL_EIO;
    }
    if (lm_spool_decode(sp->buf, &row) == CL_OK) break;
    size -= LM_SPOOL_RECORD_LEN;
    rec->torn_records++;
  }
  if (size != sp->size) {
    if (ftruncate(sp->fd, (off_t)size) != 0 || sync_data(sp->fd) != 0) {
      cl_err_set(err, errlen, "spool %s: cannot cut off a torn record: %s", sp->path,
                strerror(errno));
      return CL_EIO;
    }
    sp->size = size;
  }
  return CL_OK;
}

/* Picks the newest slot whose offset is valid for the trimmed file. */
static void choose_offset(lm_spool *sp, const uint8_t h[LM_SPOOL_HEADER_LEN],
                          lm_spool_recovery *rec) {
  uint64_t best_gen = 0, best_off = 0, max_gen = 0;
  for (int i = 0; i < 2; i++) {
    const uint8_t *s = h + H_SLOT0 + i * SLOT_LEN;
    if (cl_get_be32(s + SLOT_CRC) != lm_spool_crc32c(s, SLOT_CRC)) continue;
    uint64_t gen = cl_get_be64(s + SLOT_GEN), off = cl_get_be64(s + SLOT_OFF);
    if (gen > max_gen) max_gen = gen;
    int valid = off >= LM_SPOOL_HEADER_LEN && off <= sp->size &&
                (off - LM_SPOOL_HEADER_LEN) % LM_SPOOL_RECORD_LEN == 0;
    if (valid && gen >= best_gen) {
      best_gen = gen;
      best_off = off;
    }
  }
  if (best_off == 0) {
    /* Replaying from the start is safe: the database refuses rows it has. */
    rec->offset_reset = 1;
    best_off = LM_SPOOL_HEADER_LEN;
  }
  sp->read_off = best_off;
  sp->gen = max_gen; /* the next slot written outranks every slot on disk */
}

int lm_spool_open(lm_spool **out, const char *path, const uint8_t landmark_pk[CL_PK_LEN],
                  uint64_t max_bytes, lm_spool_recovery *rec, char *err, size_t errlen) {
  lm_spool_recovery dummy;
  if (!rec) rec = &dummy;
  memset(rec, 0, sizeof *rec);
  if (!out || !path || !*path || max_bytes < LM_SPOOL_HEADER_LEN + LM_SPOOL_RECORD_LEN) {
    cl_err_set(err, errlen, "spool: bad argument");
    return CL_EINVAL;
  }
  *out = NULL;
  lm_spool *sp = calloc(1, sizeof *sp);
  if (!sp) return CL_ENOMEM;
  sp->fd = -1;
  sp->buf = malloc((size_t)CHUNK_RECORDS * LM_SPOOL_RECORD_LEN);
  if (!sp->buf) {
    free(sp);
    return CL_ENOMEM;
  }
  int rc = CL_OK;
  if ((size_t)snprintf(sp->path, sizeof sp->path, "%s", path) >= sizeof sp->path) {
    cl_err_set(err, errlen, "spool: path too long");
    rc = CL_EINVAL;
    goto fail;
  }
  snprintf(sp->tmp_path, sizeof sp->tmp_path, "%s.tmp", path);
  dir_of(path, sp->dir, sizeof sp->dir);
  if (landmark_pk) memcpy(sp->pk, landmark_pk, CL_PK_LEN);
  sp->max_bytes = max_bytes;

  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0 && (errno != ENOENT || !landmark_pk)) {
    cl_err_set(err, errlen, "spool %s: cannot open: %s", path, strerror(errno));
    rc = errno == ENOENT ? CL_ENOTFOUND : CL_EIO;
    goto fail;
  }
  if (fd >= 0) {
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      cl_err_set(err, errlen, "spool %s: in use by another process (flock: %s)", path,
                strerror(errno));
      close(fd);
      rc = CL_EIO;
      goto fail;
    }
    sp->fd = fd;
    struct stat st;
    if (fstat(fd, &st) != 0) {
      cl_err_set(err, errlen, "spool %s: cannot stat: %s", path, strerror(errno));
      rc = CL_EIO;
      goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
      cl_err_set(err, errlen, "spool %s: not a regular file", path);
      rc = CL_EIO;
      goto fail;
    }
    sp->size = (uint64_t)st.st_size;
    /* We hold the spool: a PATH.tmp is a compaction a crash interrupted.
     * PATH is complete, so the leftover is dropped. */
    if (unlink(sp->tmp_path) == 0) rec->stale_tmp = 1;
  }
  if (!landmark_pk && sp->size < LM_SPOOL_HEADER_LEN) {
    /* Without a key there is nothing to make a new spool for. */
    cl_err_set(err, errlen, "spool %s: %llu bytes, no spool header", path,
               (unsigned long long)sp->size);
    rc = sp->size == 0 ? CL_ENOTFOUND : CL_EMALFORMED;
    goto fail;
  }
  if (sp->fd < 0 || sp->size == 0) {
    /* No spool yet (an empty file holds nothing either): make one. */
    rc = replace_file(sp, 0, 0, err, errlen);
    if (rc != CL_OK) goto fail;
    rec->created = 1;
    *out = sp;
    return CL_OK;
  }
  uint8_t h[LM_SPOOL_HEADER_LEN];
  if (sp->size < LM_SPOOL_HEADER_LEN) {
    /* We never leave a partial header (new files are renamed into place
     * complete): this is someone else's file, or damage. */
    size_t have = (size_t)sp->size < LM_SPOOL_MAGIC_LEN ? (size_t)sp->size : LM_SPOOL_MAGIC_LEN;
    int ours = pread_all(sp->fd, h, have, 0) == 0 && memcmp(h, LM_SPOOL_MAGIC, have) == 0;
    cl_err_set(err, errlen, "spool %s: %llu bytes, %s", path, (unsigned long long)sp->size,
              ours ? "shorter than a spool header (damaged file)" : "not a chiploc spool file");
    rc = ours ? CL_EMALFORMED : CL_EVERSION;
    goto fail;
  }
  if (pread_all(sp->fd, h, sizeof h, 0) != 0) {
    cl_err_set(err, errlen, "spool %s: cannot read the header: %s", path, strerror(errno));
    rc = CL_EIO;
    goto fail;
  }
  if (!landmark_pk) memcpy(sp->pk, h + H_LANDMARK, CL_PK_LEN); /* whoever it belongs to */
  if (memcmp(h, V1_MAGIC, LM_SPOOL_MAGIC_LEN) == 0) {
    if (!landmark_pk) {
      cl_err_set(err, errlen, "spool %s: a version 1 spool, which this landmarkd cannot replay",
                 path);
      rc = CL_EVERSION;
      goto fail;
    }
    if ((rc = handle_v1(sp, h, rec, err, errlen)) != CL_OK) goto fail;
    *out = sp;
    return CL_OK;
  }
  if ((rc = check_header(sp, h, err, errlen)) != CL_OK) goto fail;
  if ((rc = trim_tail(sp, rec, err, errlen)) != CL_OK) goto fail;
  choose_offset(sp, h, rec);
  *out = sp;
  return CL_OK;
fail:
  if (sp->fd >= 0) close(sp->fd);
  free(sp->buf);
  free(sp);
  return rc;
}

int lm_spool_rekey(lm_spool *sp, const uint8_t landmark_pk[CL_PK_LEN], char *err,
                   size_t errlen) {
  if (!sp || !landmark_pk) return CL_EINVAL;
  if (lm_spool_rows(sp) > 0) {
    cl_err_set(err, errlen, "spool %s: %llu records left to replay", sp->path,
               (unsigned long long)lm_spool_rows(sp));
    return CL_EINVAL;
  }
  uint8_t old[CL_PK_LEN];
  memcpy(old, sp->pk, CL_PK_LEN);
  memcpy(sp->pk, landmark_pk, CL_PK_LEN);
  int old_fd = sp->fd;
  int rc = replace_file(sp, 0, 0, err, errlen);
  /* A failure before the rename leaves the old file (and descriptor), with
   * the old key; after it, the new file is in place. */
  if (sp->fd == old_fd) memcpy(sp->pk, old, CL_PK_LEN);
  return rc;
}

void lm_spool_aside_path(const char *path, const uint8_t landmark_pk[CL_PK_LEN], char *out,
                         size_t outlen) {
  char hex[CL_PK_HEX_LEN + 1];
  cl_pk_to_hex(landmark_pk, hex);
  snprintf(out, outlen, "%s.%.*s", path, LM_SPOOL_ASIDE_HEX, hex);
}

int lm_spool_move(lm_spool *sp, const char *new_path, char *err, size_t errlen) {
  if (!sp || !new_path || strlen(new_path) >= sizeof sp->path) return CL_EINVAL;
  char dir[PATH_MAX];
  dir_of(new_path, dir, sizeof dir);
  if (strcmp(dir, sp->dir) != 0) {
    cl_err_set(err, errlen, "spool %s: %s is in another directory", sp->path, new_path);
    return CL_EINVAL;
  }
  /* Never over another file: that could be a spool with rows of its own. */
  if (renameat2(AT_FDCWD, sp->path, AT_FDCWD, new_path, RENAME_NOREPLACE) != 0) {
    int e = errno;
    cl_err_set(err, errlen, "spool %s: cannot rename it to %s: %s", sp->path, new_path,
               strerror(e));
    return e == EEXIST ? CL_EEXIST : CL_EIO;
  }
  snprintf(sp->path, sizeof sp->path, "%s", new_path);
  snprintf(sp->tmp_path, sizeof sp->tmp_path, "%s.tmp", new_path);
  if (sync_dir(sp->dir) != 0) {
    cl_err_set(err, errlen, "spool %s: cannot sync directory %s: %s", sp->path, sp->dir,
               strerror(errno));
    return CL_EIO;
  }
  return CL_OK;
}

int lm_spool_remove(lm_spool **psp, char *err, size_t errlen) {
  if (!psp || !*psp) return CL_EINVAL;
  lm_spool *sp = *psp;
  if (lm_spool_rows(sp) > 0) {
    cl_err_set(err, errlen, "spool %s: %llu records left to replay", sp->path,
               (unsigned long long)lm_spool_rows(sp));
    return CL_EINVAL;
  }
  /* Unlinked while still locked, so nobody opens it in between. A file
   * left behind holds nothing: the next open finds it empty. */
  int rc = CL_OK;
  if (unlink(sp->path) != 0) {
    cl_err_set(err, errlen, "spool %s: cannot remove: %s", sp->path, strerror(errno));
    rc = CL_EIO;
  } else if (sync_dir(sp->dir) != 0) {
    cl_err_set(err, errlen, "spool %s: removed, but cannot sync directory %s: %s", sp->path,
               sp->dir, strerror(errno));
    rc = CL_EIO;
  }
  lm_spool_close(psp);
  return rc;
}

int lm_spool_find_aside(const char *path, char ***names, size_t *n, char *err, size_t errlen) {
  if (!path || !names || !n) return CL_EINVAL;
  *names = NULL;
  *n = 0;
  char dir[PATH_MAX];
  dir_of(path, dir, sizeof dir);
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t blen = strlen(base);
  DIR *d = opendir(dir);
  if (!d) {
    cl_err_set(err, errlen, "spool %s: cannot read directory %s: %s", path, dir, strerror(errno));
    return CL_EIO;
  }
  int rc = CL_OK;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *nm = e->d_name;
    if (strncmp(nm, base, blen) != 0 || nm[blen] != '.' ||
        strlen(nm + blen + 1) != LM_SPOOL_ASIDE_HEX ||
        strspn(nm + blen + 1, "0123456789abcdef") != LM_SPOOL_ASIDE_HEX)
      continue;
    char **grown = realloc(*names, (*n + 1) * sizeof *grown);
    char *full = NULL;
    if (grown) *names = grown;
    if (!grown || asprintf(&full, "%s/%s", dir, nm) < 0) {
      rc = CL_ENOMEM;
      break;
    }
    (*names)[(*n)++] = full;
  }
  closedir(d);
  if (rc != CL_OK) {
    lm_spool_free_names(names, *n);
    *n = 0;
  }
  return rc;
}

void lm_spool_free_names(char ***names, size_t n) {
  if (!names || !*names) return;
  for (size_t i = 0; i < n; i++) free((*names)[i]);
  free(*names);
  *names = NULL;
}

int lm_spool_check(const char *path, const uint8_t landmark_pk[CL_PK_LEN], char *out,
                   size_t outlen) {
  if (!path || !*path || !landmark_pk) return CL_EINVAL;
  char dir[PATH_MAX];
  dir_of(path, dir, sizeof dir);
  struct stat st;
  if (stat(dir, &st) != 0) {
    cl_err_set(out, outlen, "directory %s: %s", dir, strerror(errno));
    return CL_EIO;
  }
  if (!S_ISDIR(st.st_mode)) {
    cl_err_set(out, outlen, "%s is not a directory", dir);
    return CL_EIO;
  }
  /* The effective ids: those landmarkd runs with (runuser -u ...). */
  if (faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) != 0) {
    cl_err_set(out, outlen, "directory %s: this user (uid %u) cannot create files in it: %s", dir,
               (unsigned)geteuid(), strerror(errno));
    return CL_EPERM;
  }
  if (stat(path, &st) != 0) {
    if (errno != ENOENT) {
      cl_err_set(out, outlen, "cannot stat: %s", strerror(errno));
      return CL_EIO;
    }
    cl_err_set(out, outlen, "directory %s writable; no spool yet (made at start)", dir);
    return CL_OK;
  }
  if (!S_ISREG(st.st_mode)) {
    cl_err_set(out, outlen, "not a regular file");
    return CL_EIO;
  }
  if (st.st_uid != geteuid()) {
    cl_err_set(out, outlen, "owned by uid %u, not by this user (uid %u): chown it", (unsigned)st.st_uid,
               (unsigned)geteuid());
    return CL_EPERM;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || faccessat(AT_FDCWD, path, R_OK | W_OK, AT_EACCESS) != 0) {
    cl_err_set(out, outlen, "not readable and writable by this user: %s", strerror(errno));
    if (fd >= 0) close(fd);
    return CL_EPERM;
  }
  /* A landmarkd holds an exclusive lock while it runs. */
  int in_use = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  uint8_t h[LM_SPOOL_HEADER_LEN];
  char whose[200] = "";
  if (st.st_size >= LM_SPOOL_HEADER_LEN && pread_all(fd, h, sizeof h, 0) == 0 &&
      memcmp(h, LM_SPOOL_MAGIC, LM_SPOOL_MAGIC_LEN) == 0 &&
      cl_get_be32(h + H_CRC) == lm_spool_crc32c(h, H_CRC) &&
      memcmp(h + H_LANDMARK, landmark_pk, CL_PK_LEN) != 0) {
    char hex[CL_PK_HEX_LEN + 1];
    cl_pk_to_hex(h + H_LANDMARK, hex);
    snprintf(whose, sizeof whose,
             "; written under another landmark key (%.16s...): re-made for this key at start "
             "if empty, else set aside and replayed under that key",
             hex);
  }
  close(fd);
  cl_err_set(out, outlen, "directory writable; %lld bytes, owned by this user, readable%s%s",
             (long long)st.st_size, whose, in_use ? "; in use by a running landmarkd" : "");
  return in_use ? CL_EAGAIN : CL_OK;
}

void lm_spool_close(lm_spool **psp) {
  if (!psp || !*psp) return;
  lm_spool *sp = *psp;
  if (sp->fd >= 0) close(sp->fd);
  free(sp->buf);
  free(sp);
  *psp = NULL;
}

/* ---- append, peek, consume ----------------------------------------------- */

int lm_spool_append(lm_spool *sp, const cl_store_row *rows, size_t n, size_t *appended,
                    char *err, size_t errlen) {
  if (!sp || !appended || (n > 0 && !rows)) return CL_EINVAL;
  *appended = 0;
  for (size_t i = 0; i < n; i++) {
    if (memcmp(rows[i].m.hs.landmark, sp->pk, CL_PK_LEN) != 0) {
      cl_err_set(err, errlen, "spool %s: row %zu is signed by another landmark key", sp->path, i);
      return CL_EINVAL;
    }
    if (rows[i].m.count < 1 || rows[i].m.count > CL_MAX_BURST) {
      cl_err_set(err, errlen, "spool %s: row %zu has %u probes, outside 1..%d", sp->path, i,
                 rows[i].m.count, CL_MAX_BURST);
      return CL_EINVAL;
    }
  }
  uint64_t room = sp->size < sp->max_bytes ? (sp->max_bytes - sp->size) / LM_SPOOL_RECORD_LEN : 0;
  if (room < n && sp->read_off > LM_SPOOL_HEADER_LEN) {
    int rc = compact(sp, err, errlen);
    if (rc != CL_OK) return rc;
    room = sp->size < sp->max_bytes ? (sp->max_bytes - sp->size) / LM_SPOOL_RECORD_LEN : 0;
  }
  size_t k = room < n ? (size_t)room : n;
  if (k == 0) return CL_OK;
  uint64_t start = sp->size, pos = start;
  for (size_t i = 0; i < k;) {
    size_t c = k - i < CHUNK_RECORDS ? k - i : CHUNK_RECORDS;
    for (size_t j = 0; j < c; j++)
      lm_spool_encode(sp->buf + j * LM_SPOOL_RECORD_LEN, &rows[i + j]);
    if (pwrite_all(sp->fd, sp->buf, c * LM_SPOOL_RECORD_LEN, pos) != 0) goto fail;
    pos += c * LM_SPOOL_RECORD_LEN;
    i += c;
  }
  if (sync_data(sp->fd) != 0) goto fail;
  sp->size = pos;
  *appended = k;
  return CL_OK;
fail:
  cl_err_set(err, errlen, "spool %s: cannot append %zu records: %s", sp->path, k, strerror(errno));
  /* The caller keeps the rows; records it might append again must not be
   * left behind half-written. If this fails too, the next open cuts the
   * damaged tail off. */
  if (ftruncate(sp->fd, (off_t)start) == 0) (void)sync_data(sp->fd);
  return CL_EIO;
}

int lm_spool_peek(lm_spool *sp, cl_store_row *rows, size_t max, size_t *n, size_t *skipped,
                  char *err, size_t errlen) {
  if (!sp || !n || !skipped || (max > 0 && !rows)) return CL_EINVAL;
  *n = 0;
  *skipped = 0;
  uint64_t pos = sp->read_off;
  int kind = -1;
  while (*n < max && pos < sp->size) {
    uint64_t left = (sp->size - pos) / LM_SPOOL_RECORD_LEN;
    size_t c = left < CHUNK_RECORDS ? (size_t)left : CHUNK_RECORDS;
    if (*n > 0 && c > max - *n) c = max - *n;
    if (pread_all(sp->fd, sp->buf, c * LM_SPOOL_RECORD_LEN, pos) != 0) {
      cl_err_set(err, errlen, "spool %s: cannot read: %s", sp->path, strerror(errno));
      return CL_EIO;
    }
    for (size_t j = 0; j < c; j++, pos += LM_SPOOL_RECORD_LEN) {
      cl_store_row *r = &rows[*n];
      int ok = lm_spool_decode(sp->buf + j * LM_SPOOL_RECORD_LEN, r) == CL_OK &&
               memcmp(r->m.hs.landmark, sp->pk, CL_PK_LEN) == 0;
      if (!ok) {
        if (*n > 0) return CL_OK; /* the next peek reports it */
        (*skipped)++;
        continue;
      }
      if (kind < 0) kind = r->is_link;
      if (r->is_link != kind) return CL_OK;
      if (++*n == max) return CL_OK;
    }
  }
  return CL_OK;
}

int lm_spool_consume(lm_spool *sp, size_t records, char *err, size_t errlen) {
  if (!sp) return CL_EINVAL;
  if (records > lm_spool_rows(sp)) {
    cl_err_set(err, errlen, "spool %s: consuming %zu records, %llu left", sp->path, records,
              (unsigned long long)lm_spool_rows(sp));
    return CL_EINVAL;
  }
  if (records == 0) return CL_OK;
  uint64_t off = sp->read_off + (uint64_t)records * LM_SPOOL_RECORD_LEN;
  uint64_t gen = sp->gen + 1;
  uint8_t s[SLOT_LEN];
  slot_encode(s, gen, off);
  /* Slots alternate, so a torn slot write leaves the previous offset in the
   * other slot intact. */
  if (pwrite_all(sp->fd, s, sizeof s, H_SLOT0 + (gen & 1u) * SLOT_LEN) != 0 ||
      sync_data(sp->fd) != 0) {
    cl_err_set(err, errlen, "spool %s: cannot save the read offset: %s", sp->path,
              strerror(errno));
    return CL_EIO;
  }
  sp->read_off = off;
  sp->gen = gen;
  return CL_OK;
}

int lm_spool_compact(lm_spool *sp, char *err, size_t errlen) {
  if (!sp) return CL_EINVAL;
  if (sp->read_off == LM_SPOOL_HEADER_LEN) return CL_OK;
  return compact(sp, err, errlen);
}

uint64_t lm_spool_rows(const lm_spool *sp) {
  return (sp->size - sp->read_off) / LM_SPOOL_RECORD_LEN;
}

uint64_t lm_spool_bytes(const lm_spool *sp) { return sp->size; }

uint64_t lm_spool_max_bytes(const lm_spool *sp) { return sp->max_bytes; }

const char *lm_spool_path(const lm_spool *sp) { return sp->path; }

const uint8_t *lm_spool_key(const lm_spool *sp) { return sp->pk; }
