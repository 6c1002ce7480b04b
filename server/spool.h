/*
 * landmarkd's outage spool: a bounded local file that holds signed
 * measurement rows while PostgreSQL is unreachable, so that rows the landmark
 * accepted survive an outage (and a restart during it) and are replayed,
 * oldest first, when the database returns.
 *
 * Pure file I/O: no SQL, no logging, no threads. One process owns a spool at
 * a time (an exclusive flock); its owner calls it from one thread.
 *
 * The file is a versioned header followed by fixed-size records in an
 * explicit big-endian layout, each with a CRC-32C; a record has room for
 * the largest measurement record (CL_MAX_BURST probes), so that every
 * record starts at a multiple of the record length and one damaged record
 * never hides the ones after it. docs/SPOOL.md is the normative
 * description of the format and must change together with this module. In
 * short:
 *   - append: records are written at the end and fdatasync'd before
 *     lm_spool_append returns, so the caller may then drop its copies;
 *   - replay: lm_spool_peek reads from the read offset without moving it;
 *     once the rows are committed elsewhere, lm_spool_consume moves the
 *     offset durably (one of two checksummed slots in the header, written
 *     alternately, then fdatasync'd);
 *   - compaction: lm_spool_compact (the owner calls it once every record
 *     is consumed; an append that needs the space of consumed records does
 *     it too) copies the live records into a new file that atomically
 *     replaces the old one (write, fsync, rename, fsync of the directory).
 * A crash at any point loses no appended record. It may make records that
 * were already consumed come back (the consume did not reach the disk);
 * the database refuses those as duplicates, which the writer counts as
 * stored, so replay is idempotent.
 */
#ifndef LM_SPOOL_H
#define LM_SPOOL_H

#include "cl_store.h"

#include <stddef.h>
#include <stdint.h>

#define LM_SPOOL_MAGIC "chiploc-spool v2" /* 16 bytes, no NUL in the file */
#define LM_SPOOL_MAGIC_LEN 16
#define LM_SPOOL_HEADER_LEN 128
#define LM_SPOOL_RECORD_LEN 1796

typedef struct lm_spool lm_spool;

/* What lm_spool_open found and repaired; for the owner's log. */
typedef struct {
  int created;           /* no spool existed (or it was empty): a new one was made */
  uint64_t torn_bytes;   /* bytes of an incomplete last record, cut off */
  uint64_t torn_records; /* complete last records with a bad checksum, cut off */
  int offset_reset;      /* no valid read-offset slot: replay starts at the first record */
  int stale_tmp;         /* an unfinished compaction file was removed */
  int replaced_v1;       /* a version 1 spool holding nothing was replaced by a new one */
} lm_spool_recovery;

/*
 * Opens the spool at path, creating it (mode 0600) if it does not exist, and
 * locks it. Every record of the spool is signed by landmark_pk; a spool made
 * by another landmark is refused. With landmark_pk NULL, the spool of
 * whichever key its header names is opened (lm_spool_key); it must exist
 * (CL_ENOTFOUND when the file is missing or empty) and be of this version. max_bytes bounds the file size (header
 * included); it must hold the header and one record. A torn tail (power
 * loss during an append) is cut off and reported in *rec (may be NULL).
 * A version 1 spool (protocol 1 records) that holds no record left to
 * replay is replaced by a new spool (rec->replaced_v1); one that does is
 * refused with CL_EVERSION, err naming the file and what to do.
 * Returns 0, or: CL_EINVAL (bad argument), CL_EIO (cannot create, read,
 * write or lock; err says which), CL_EVERSION (not a chiploc spool, or
 * another version), CL_EMALFORMED (damaged or partial header), CL_EEXIST (the spool
 * belongs to another landmark key). On error nothing on disk was changed
 * except a stale compaction file, and *out is NULL.
 */
int lm_spool_open(lm_spool **out, const char *path, const uint8_t landmark_pk[CL_PK_LEN],
                  uint64_t max_bytes, lm_spool_recovery *rec, char *err, size_t errlen);
/* Closes the file and frees the spool; sets *sp to NULL. Nothing is lost:
 * unconsumed records stay for the next open. */
void lm_spool_close(lm_spool **sp);

/*
 * Spools of a replaced key. When a landmark's key is rotated, a spool that
 * holds no record left to replay is simply re-made for the new key
 * (lm_spool_rekey); one that does is renamed beside it, to PATH.<the first
 * LM_SPOOL_ASIDE_HEX hex digits of its key> (lm_spool_aside_path,
 * lm_spool_move), so that the new key starts with a new spool while the
 * old records wait to be replayed under the key that signed them. Such
 * files are found again with lm_spool_find_aside and deleted with
 * lm_spool_remove once replayed. docs/SPOOL.md, "Key rotation".
 */
#define LM_SPOOL_ASIDE_HEX 16

/* Makes the spool, which must hold no record left to replay, a new empty
 * spool of landmark_pk (atomically, like a compaction). Returns 0,
 * CL_EINVAL (records are left), or CL_EIO. */
int lm_spool_rekey(lm_spool *sp, const uint8_t landmark_pk[CL_PK_LEN], char *err,
                   size_t errlen);
/* Writes PATH.<hex prefix of landmark_pk> into out. */
void lm_spool_aside_path(const char *path, const uint8_t landmark_pk[CL_PK_LEN], char *out,
                         size_t outlen);
/* Renames the open spool to new_path, in the same directory, and syncs the
 * directory; the spool stays open and locked under its new name. Returns 0,
 * CL_EEXIST (new_path exists: nothing was renamed), CL_EINVAL, or CL_EIO. */
int lm_spool_move(lm_spool *sp, const char *new_path, char *err, size_t errlen);
/* Deletes the spool's file, which must hold no record left to replay, and
 * closes it (*sp becomes NULL unless CL_EINVAL). Returns 0, CL_EINVAL
 * (records are left: nothing was done), or CL_EIO (the file may still be
 * there, holding nothing). */
int lm_spool_remove(lm_spool **sp, char *err, size_t errlen);
/* The files beside path named as lm_spool_aside_path names them: *names
 * (malloc'd paths, free with lm_spool_free_names) and *n. Returns 0,
 * CL_EIO (the directory cannot be read) or CL_ENOMEM. */
int lm_spool_find_aside(const char *path, char ***names, size_t *n, char *err, size_t errlen);
void lm_spool_free_names(char ***names, size_t n);

/*
 * Appends rows in order and fdatasyncs them. *appended receives how many of
 * the leading rows were stored durably: all n, or fewer when the size limit
 * was reached (consumed records are compacted away first to make room).
 * Returns 0 (check *appended), CL_EINVAL (a row signed by another key, or
 * with a probe count outside 1..CL_MAX_BURST; none was written), or CL_EIO
 * (write or sync failed: *appended is 0 and the file is cut back to its
 * previous size when possible).
 */
int lm_spool_append(lm_spool *sp, const cl_store_row *rows, size_t n, size_t *appended,
                    char *err, size_t errlen);

/*
 * Reads rows from the read offset without consuming them. Leading records
 * that fail their checksum are skipped and counted in *skipped; then up to
 * max consecutive good records of one kind (all chip measurements or all
 * landmark links, like rows[0]) are decoded into rows, *n of them. Reading
 * stops before a damaged record or a record of the other kind. The rows
 * span *skipped + *n records: pass that to lm_spool_consume once they are
 * settled. *n and *skipped are 0 when the spool is empty. Returns 0 or
 * CL_EIO.
 */
int lm_spool_peek(lm_spool *sp, cl_store_row *rows, size_t max, size_t *n, size_t *skipped,
                  char *err, size_t errlen);

/*
 * Marks the next `records` records as replayed: moves the read offset and
 * syncs it. Returns 0, CL_EINVAL (more records than are left), or CL_EIO
 * (the offset did not move).
 */
int lm_spool_consume(lm_spool *sp, size_t records, char *err, size_t errlen);

/*
 * Drops the consumed records: the live ones are copied into a new file that
 * replaces the spool atomically (when none is left, the new file is just a
 * header). Nothing to do when no record is consumed. Returns 0 or CL_EIO;
 * after a failure the spool is still consistent (the old file or the new).
 */
int lm_spool_compact(lm_spool *sp, char *err, size_t errlen);

/* Records not yet consumed. */
uint64_t lm_spool_rows(const lm_spool *sp);
/* Size of the file in bytes, header and consumed records included. */
uint64_t lm_spool_bytes(const lm_spool *sp);
/* The size limit given to lm_spool_open. */
uint64_t lm_spool_max_bytes(const lm_spool *sp);
/* The path given to lm_spool_open (or lm_spool_move). */
const char *lm_spool_path(const lm_spool *sp);
/* The landmark key that signed every record of the spool. */
const uint8_t *lm_spool_key(const lm_spool *sp);

/*
 * For landmarkd --check-config: whether this process (its effective user)
 * can run a landmark on the spool at path: its directory lets it create
 * files, and the spool, if it exists, is a regular file it owns and may
 * read and write. Changes nothing. out receives the finding (on failure,
 * what is wrong). Returns 0, CL_EAGAIN (all of that, and a running process
 * holds the spool's lock: a landmarkd is running on it), CL_EPERM (a
 * permission or ownership problem), CL_EIO (no such directory, not a
 * regular file) or CL_EINVAL.
 */
int lm_spool_check(const char *path, const uint8_t landmark_pk[CL_PK_LEN], char *out,
                   size_t outlen);

/* ---- the record layout, for tests and tools ----------------------------- */

/* CRC-32C (Castagnoli) of len bytes, as stored in records and the header. */
uint32_t lm_spool_crc32c(const void *data, size_t len);
/* Writes the record of one row, checksum included. */
void lm_spool_encode(uint8_t out[LM_SPOOL_RECORD_LEN], const cl_store_row *row);
/* Decodes one record. Returns 0, or CL_EMALFORMED if the checksum does not
 * match or a field is out of its range (kind, reserved bytes, a probe count
 * outside 1..CL_MAX_BURST, non-zero bytes after the last entry). */
int lm_spool_decode(const uint8_t in[LM_SPOOL_RECORD_LEN], cl_store_row *row);

#endif
