/*
 * Configuration files of landmarkd and chipagent: INI files read with inih.
 * Every numeric setting has a minimum, maximum and default in one table in
 * cl_config.c; an error names the file, the line, the key and the allowed
 * range. Relative paths in a config file are resolved against the directory
 * of that file.
 */
#ifndef CL_CONFIG_H
#define CL_CONFIG_H

#include "cl_key.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define CL_CONFIG_MAX_LANDMARKS 64
#define CL_CONFIG_MAX_CHIPS 64
#define CL_CONFIG_NAME_MAX 64
#define CL_CONFIG_HOST_MAX 256
#define CL_CONFIG_CONNINFO_MAX 1024

typedef struct {
  /* [landmark] */
  char name[CL_CONFIG_NAME_MAX + 1];   /* required */
  char key_path[PATH_MAX];             /* required: identity key file */
  char listen_host[CL_CONFIG_HOST_MAX]; /* listen = HOST:PORT, default 0.0.0.0:7400 */
  int listen_port;
  double lat, lon; /* required, degrees, WGS84 */
  /* [database] */
  char conninfo[CL_CONFIG_CONNINFO_MAX]; /* required, libpq conninfo */
  uint32_t batch_size;                   /* rows per COPY, default 500 */
  uint32_t flush_interval_ms;            /* longest a row waits, default 1000 */
  uint32_t refresh_interval_s;           /* enrolled-chip refresh, default 30 */
  char spool_path[PATH_MAX]; /* outage spool; default: beside the config file, named after it
                                with .spool for its extension (landmarkd.conf: landmarkd.spool) */
  uint32_t spool_max_mb;     /* size limit of the spool file in MiB, default 256 */
  /* [probe] */
  uint32_t interval_s;   /* one burst per chip per interval, default 60 */
  double jitter;         /* interval is scaled by 1 +- jitter, default 0.1 */
  uint32_t burst;        /* probes per burst, 1..CL_MAX_BURST, default 5 */
  uint32_t burst_gap_ms; /* pause between probes of a burst, default 100 */
  uint32_t deadline_ms;  /* response deadline, default 1000 */
  double speed_m_per_s;  /* speed = c | fibre | m/s, default c */
  char speed_text[32];
  uint32_t verify_threads; /* threads for handshakes, Confirm and transcript checks and record
                              signatures, default 2; 0: on the loop */
  uint32_t transcript_timeout_ms; /* BurstEnd -> Transcript, default 10000 */
  uint32_t session_lifetime_s;    /* rekey a session this old at its next burst, default 3600 */
  /* [limits] */
  uint32_t max_connections;      /* default 20000 */
  uint32_t handshake_timeout_ms; /* accept -> a chip's session verified (and a Rekey -> its
                                    Confirm verified), default 10000 */
  uint32_t idle_timeout_s;       /* no complete frame from a peer for this long, default 300 */
  uint32_t stats_interval_s;     /* period of the stats log line, default 60 */
  uint32_t max_connections_per_address; /* connections from one IP address, default 64 */
  uint32_t max_pending_challenges;      /* outstanding probes per connection, default 64 */
  uint32_t max_frame_bytes; /* frame body limit after registration, default CL_FRAME_MAX; the
                               limit before registration is CL_FRAME_MAX_UNREGISTERED, fixed */
  uint32_t max_write_queue_bytes;   /* bytes queued for writing per connection, default 262144;
                                       reading pauses above a quarter of it */
  uint32_t max_error_replies_per_s; /* Error replies to rejected Responses per connection and
                                       second, default 10 */
  /* [metrics] listen = HOST:PORT (numeric IP); empty host: no metrics endpoint */
  char metrics_host[CL_CONFIG_HOST_MAX];
  int metrics_port;
} cl_landmark_config;

typedef struct {
  char name[CL_CONFIG_NAME_MAX + 1];
  char host[CL_CONFIG_HOST_MAX];
  int port;
  uint8_t pk[CL_PK_LEN]; /* pinned landmark public key */
} cl_agent_landmark;

typedef struct {
  char name[CL_CONFIG_NAME_MAX + 1];
  char key_path[PATH_MAX];
} cl_agent_chip;

typedef struct {
  /* [agent] */
  char name[CL_CONFIG_NAME_MAX + 1]; /* default: the host name */
  uint32_t backoff_min_ms;            /* first reconnect delay, default 500 */
  uint32_t backoff_max_ms;            /* cap of the exponential backoff, default 30000 */
  uint32_t idle_timeout_s; /* no complete frame from a registered landmark for this long:
                              reconnect, default 300 */
  /* [metrics] listen = HOST:PORT (numeric IP); empty host: no metrics endpoint */
  char metrics_host[CL_CONFIG_HOST_MAX];
  int metrics_port;
  /* [landmark.NAME] sections: address = HOST:PORT, public_key = 64 hex */
  size_t n_landmarks;
  cl_agent_landmark landmarks[CL_CONFIG_MAX_LANDMARKS];
  /* [chip.NAME] sections: key = PATH */
  size_t n_chips;
  cl_agent_chip chips[CL_CONFIG_MAX_CHIPS];
} cl_agent_config;

/*
 * Load and validate. Returns 0, or CL_EIO (cannot open), CL_EMALFORMED
 * (syntax, unknown key, bad value, out of range, missing required key, or a
 * rule between settings: landmarkd's [limits] idle_timeout_s must exceed one
 * probe cycle); err receives "FILE:LINE: message" (LINE omitted for missing
 * keys and for the idle timeout rule, whose settings may all be defaults).
 */
int cl_landmark_config_load(const char *path, cl_landmark_config *out, char *err, size_t errlen);
/* The settings whose values differ between two loaded landmarkd configs
 * (landmarkd's SIGHUP): writes them into out as "[section] key" separated
 * by ", " (cut to outlen - 1 bytes) and returns how many there are. */
size_t cl_landmark_config_diff(const cl_landmark_config *a, const cl_landmark_config *b,
                               char *out, size_t outlen);
int cl_agent_config_load(const char *path, cl_agent_config *out, char *err, size_t errlen);

/* Parses "HOST:PORT" or "[V6]:PORT". Returns 0 or CL_EMALFORMED. */
int cl_parse_hostport(const char *text, char *host, size_t hostlen, int *port);

#endif
