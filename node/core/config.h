/* node/core configuration: the typed key schema of a node, loading from
 * defaults / file / environment / flags, validation, reload, and the
 * configuration service (get, runtime set, versioned change log with
 * subscribers, JSON rendering with secrets redacted).
 *
 * Precedence, lowest to highest:
 *   built-in default < config file < environment MABEAM_<KEY> < flag --key=value
 * A runtime nc_config_set() overrides all of them until the next reload,
 * which recomputes every value from the four sources.
 *
 * Config file format (docs/node-services.md has the full text):
 *   # comment            (also after a value, when preceded by whitespace)
 *   key = value          (whitespace around key and value is ignored)
 *   key = "quoted value"  (C escapes \" \\ \n \t; needed for a value with " #")
 * Keys are the schema names (lower-case, '_'); flags accept '-' for '_'
 * (--http-address=... == --http_address=...); bool flags may omit the value
 * (--x means --x=true). The flag --config=PATH (or env MABEAM_CONFIG) names
 * the config file and overrides nc_config_sources.file_path.
 *
 * Value syntax per type:
 *   string    any text (no NUL)
 *   int       decimal, optional sign, within the key's [min,max]
 *   bool      true/false/yes/no/on/off/1/0 (case-insensitive)
 *   duration  integer + unit: ms, s, m, h, d ("1500ms", "30s"); "0" allowed;
 *             stored as milliseconds
 *   size      integer + optional unit: B, K/KB/KiB, M/MB/MiB, G/GB/GiB
 *             (all powers of 1024); stored as bytes
 *   enum      one of the key's listed names; stored as the index
 *   address   host:port, host = IPv4 literal, [IPv6] or DNS name, port
 *             1..65535 (raft_address: IPv4 literal only, raft 0.15 limit)
 *   addresses comma-separated list of addresses (may be empty)
 *
 * Thread-safety: every function may be called from any thread. Readers take
 * a read lock; writers (set, reload) are serialised and deliver their
 * changes to subscribers in version order before returning. */
#ifndef NC_CONFIG_H
#define NC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mabeam/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every key of the schema: X(ID, "name"). IDs are NC_CFG_<ID>. The table
 * with types, defaults, limits and descriptions is in config.c and printed
 * by nc_config_schema_json(); docs/node-services.md lists it. */
#define NC_CONFIG_KEYS(X)                                                                          \
    X(NODE_ID, "node_id")                                /* int 1..2^53, raft id */                \
    X(NODE_NAME, "node_name")                            /* string, "" = host name */              \
    X(DATA_DIR, "data_dir")                              /* string, must be writable */            \
    X(HTTP_ADDRESS, "http_address")                      /* address, 127.0.0.1:7700 */             \
    X(MESH_ADDRESS, "mesh_address")                      /* address, 127.0.0.1:7701 */             \
    X(RAFT_ADDRESS, "raft_address")                      /* IPv4 address, 127.0.0.1:7702 */        \
    X(SEEDS, "seeds")                                    /* addresses (mesh) of peers */           \
    X(CLUSTER_SECRET, "cluster_secret")                  /* string, secret */                      \
    X(API_TOKEN, "api_token")                            /* string, secret, reloadable */          \
    X(LOG_LEVEL, "log_level")                            /* enum, reloadable */                    \
    X(LOG_FORMAT, "log_format")                          /* enum text|json, reloadable */          \
    X(LOG_FILE, "log_file")                              /* string, "" = stderr, reloadable */     \
    X(DURABILITY, "durability")                          /* enum fast|durable */                   \
    X(STORAGE_BACKGROUND, "storage_background_priority") /* enum low|normal */                     \
    X(AGENT_WORKERS, "agent_workers")                    /* int 0..1024, 0 = cores */              \
    X(AGENT_SPIN_US, "agent_spin_us")                    /* int 0..1000000, 0 = no spin */         \
    X(ALERT_RULES, "alert_rules")                   /* string, telemetry.h syntax, reloadable */   \
    X(ALERT_INTERVAL, "alert_interval")             /* duration, reloadable */                     \
    X(HEARTBEAT_INTERVAL, "heartbeat_interval")     /* duration, mesh heartbeats */                \
    X(FAILURE_TIMEOUT, "failure_timeout")           /* duration, node declared down */             \
    X(UNRESPONSIVE_TIMEOUT, "unresponsive_timeout") /* duration, down while connected */           \
    X(ELECTION_TIMEOUT, "election_timeout")         /* duration, raft */                           \
    X(HTTP_MAX_BODY, "http_max_body")               /* size, reloadable */                         \
    X(EVENT_RETENTION, "event_retention")           /* duration, 0 = keep all, reloadable */       \
    X(WRITE_TIMEOUT, "write_timeout")               /* duration, replicated write deadline */      \
    X(MAX_VOTERS, "max_voters")                     /* int 1..9, raft voters (rest standby) */     \
    X(CHECKPOINT_INTERVAL_MS, "checkpoint_interval_ms") /* int ms, 0 = off, reloadable */          \
    X(CHECKPOINT_MAX_BYTES, "checkpoint_max_bytes")     /* size, reloadable */                     \
    X(VOTER_REPLACE_AFTER, "voter_replace_after")       /* duration, dead voter -> standby swap */ \
    X(SNAPSHOT_THRESHOLD, "snapshot_threshold")         /* int, raft entries between snapshots */  \
    X(SNAPSHOT_TRAILING, "snapshot_trailing")   /* int, raft entries kept after a snapshot */      \
    X(SNAPSHOT_MAX_BYTES, "snapshot_max_bytes") /* size, raft log bytes that start a snapshot */   \
    X(STUDY_EVALUATORS, "study_evaluators")     /* int 0..256, study evaluator slots */            \
    X(RAFT_DEFER_AIO_DESTROY, "raft_defer_aio_destroy") /* bool, io_destroy off the loop thread */

typedef enum nc_config_id {
#define NC_CFG_ENUM_(id, name) NC_CFG_##id,
    NC_CONFIG_KEYS(NC_CFG_ENUM_)
#undef NC_CFG_ENUM_
        NC_CFG_COUNT_
} nc_config_id;

typedef enum nc_config_type {
    NC_CT_STRING = 0,
    NC_CT_INT = 1,
    NC_CT_BOOL = 2,
    NC_CT_DURATION = 3, /* milliseconds */
    NC_CT_SIZE = 4,     /* bytes */
    NC_CT_ENUM = 5,     /* index into enum_names */
    NC_CT_ADDRESS = 6,
    NC_CT_ADDRESSES = 7,
} nc_config_type;

/* Where the current value of a key came from. */
typedef enum nc_config_source {
    NC_CS_DEFAULT = 0,
    NC_CS_FILE = 1,
    NC_CS_ENV = 2,
    NC_CS_FLAG = 3,
    NC_CS_RUNTIME = 4, /* nc_config_set */
} nc_config_source;

/* One key of the schema (static, read-only; pointers live forever). */
typedef struct nc_config_key {
    nc_config_id id;
    const char *name;
    nc_config_type type;
    const char *default_value;     /* in the key's text syntax */
    bool reloadable;               /* may change without a restart */
    bool secret;                   /* redacted in every rendering */
    int64_t min, max;              /* NC_CT_INT/DURATION/SIZE limits */
    const char *const *enum_names; /* NC_CT_ENUM: NULL-terminated */
    /* Extra check after the type check (e.g. alert rule syntax, IPv4 only);
     * NULL if none. Returns 0 or an mb_err with a message in err. */
    int (*validate)(const struct nc_config_key *key, const char *value, mb_error *err);
    const char *description;
} nc_config_key;

/* The schema: all NC_CFG_COUNT_ keys, indexed by nc_config_id. */
const nc_config_key *nc_config_schema(void);
/* The key called `name` ('-' accepted for '_'), or NULL. */
const nc_config_key *nc_config_key_find(const char *name);
/* The known key closest to `name` by edit distance, or NULL if none is
 * close (used for "did you mean" messages). */
const nc_config_key *nc_config_key_suggest(const char *name);

/* Check `value` against a key's type, limits and extra validation, without
 * any side effect (the data_dir probe is done by nc_config_load only).
 * Errors: MB_EINVAL (bad syntax or type), MB_ERANGE (outside limits),
 * each with a message that names the key. */
int nc_config_check_value(const nc_config_key *key, const char *value, mb_error *err);

/* Parse config file text. Calls `entry_cb` for every `key = value` line
 * with the 1-based line number and the unquoted value (both strings valid
 * only during the call); a non-zero return from entry_cb stops the parse
 * and is returned. Syntax errors return MB_EINVAL with "line N: ...".
 * Does not look keys up: the caller does. `text` need not be
 * NUL-terminated; a NUL byte in it is a syntax error. Defensive: this is
 * the decoder of outside input that the config fuzz target drives. */
typedef int (*nc_config_entry_cb)(void *arg, int line, const char *key, const char *value,
                                  mb_error *err);
int nc_config_parse_text(const char *text, size_t len, nc_config_entry_cb entry_cb, void *arg,
                         mb_error *err);

typedef struct nc_config nc_config;

/* Where nc_config_load reads from. Everything is borrowed during the call
 * and copied (file path, env, flags) for later reloads. */
typedef struct nc_config_sources {
    const char *file_path; /* NULL or "": no file (unless --config/MABEAM_CONFIG) */
    char *const *envp;     /* NULL-terminated "NAME=value" list, e.g. environ; NULL: none */
    int argc;              /* flags only: do not include the program name */
    char *const *argv;     /* "--key=value"; "--" ends the flags */
} nc_config_sources;

/* A new configuration holding the built-in defaults (version 1). Owned by
 * the caller; free with nc_config_free. Errors: MB_ENOMEM. */
int nc_config_new(nc_config **out, mb_error *err);
void nc_config_free(nc_config *cfg);

/* Load defaults < file < env < flags into `cfg`, validate every value and
 * check that data_dir is writable (created with mode 0700 if missing, then a
 * probe file is created and removed). All or nothing: on error `cfg` is
 * unchanged. Meant to be called once at start-up, before subscribers exist
 * (it records no changes; the version stays 1).
 * Errors (message names the key and, for the file, the line):
 *   MB_EINVAL   unknown key ("unknown key 'htp_address' (did you mean
 *               'http_address'?)"), bad value for the type, bad port
 *   MB_ERANGE   number outside the key's limits
 *   MB_EIO      config file unreadable
 *   MB_EPERM    data_dir not writable */
int nc_config_load(nc_config *cfg, const nc_config_sources *src, mb_error *err);

/* What a reload did. Key pointers refer to the static schema. */
typedef struct nc_config_reload_report {
    size_t n_applied; /* reloadable keys whose value changed */
    const nc_config_key *applied[NC_CFG_COUNT_];
    size_t n_ignored; /* non-reloadable keys that changed: NOT applied */
    const nc_config_key *ignored[NC_CFG_COUNT_];
} nc_config_reload_report;

/* Re-read the file and the environment (`envp`, or the one given to
 * nc_config_load if NULL) with the flags of nc_config_load, validate
 * everything, then apply the reloadable keys that changed (one change
 * record and version each) and list the non-reloadable ones that changed
 * and were ignored. All or nothing on a validation error. `report` may be
 * NULL. Errors as nc_config_load; MB_EBUSY if called from a subscriber. */
int nc_config_reload(nc_config *cfg, char *const *envp, nc_config_reload_report *report,
                     mb_error *err);

/* Runtime set of one reloadable key (the HTTP `config set`). The value is
 * validated like a loaded one; setting the current value is a no-op that
 * records no change. Errors: MB_EINVAL (unknown key, bad value), MB_ERANGE,
 * MB_EPERM (key not reloadable: "restart the node to change it"),
 * MB_EBUSY (called from a subscriber callback). */
int nc_config_set(nc_config *cfg, const char *key, const char *value, mb_error *err);

/* Typed reads. `id` must have a matching type (asserted: a bug otherwise).
 * nc_config_int works for INT, BOOL (0/1), DURATION (ms), SIZE (bytes) and
 * ENUM (index). */
int64_t nc_config_int(nc_config *cfg, nc_config_id id);
bool nc_config_bool(nc_config *cfg, nc_config_id id);
int64_t nc_config_duration_ms(nc_config *cfg, nc_config_id id);
uint64_t nc_config_size_bytes(nc_config *cfg, nc_config_id id);
/* The enum value's name (static string). */
const char *nc_config_enum_name(nc_config *cfg, nc_config_id id);
/* Copy any key's current text value (all types) into buf (NUL-terminated).
 * Errors: MB_ETOOBIG if it does not fit (buf holds a truncated copy). */
int nc_config_get_text(nc_config *cfg, nc_config_id id, char *buf, size_t size);
/* A malloc'd copy of the text value (caller frees), or NULL if out of
 * memory. */
char *nc_config_dup_text(nc_config *cfg, nc_config_id id);
/* Where the current value came from. */
nc_config_source nc_config_source_of(nc_config *cfg, nc_config_id id);
const char *nc_config_source_name(nc_config_source src);

/* Current version: 1 after nc_config_new/load, +1 per applied change. */
uint64_t nc_config_version(nc_config *cfg);

/* One applied change. In a callback every pointer is borrowed for the
 * duration of the call; in a change list it is owned by the list. Values
 * are the real (unredacted) values; renderings redact secrets. */
typedef struct nc_config_change {
    uint64_t version; /* version after this change */
    const nc_config_key *key;
    const char *old_value;
    const char *new_value;
    nc_config_source source;
} nc_config_change;

/* Subscribers: `cb` is called exactly once per change, in version order,
 * on the thread that made the change (inside nc_config_set/reload, after the
 * new value is readable, without the read lock held). A callback may read
 * the config; it must not set or reload it (MB_EBUSY) or unsubscribe. */
typedef void (*nc_config_change_cb)(void *arg, const nc_config_change *change);

/* Register a subscriber; it gets every change made after the call.
 * *id_out identifies it for unsubscribe. `arg` is borrowed until
 * unsubscribe returns. Errors: MB_ENOMEM. */
int nc_config_subscribe(nc_config *cfg, nc_config_change_cb cb, void *arg, uint64_t *id_out);
/* Remove a subscriber; after the return its callback is not running and
 * never runs again. Errors: MB_ENOTFOUND. */
int nc_config_unsubscribe(nc_config *cfg, uint64_t id);

/* The change log (for `config watch` from a version). The last
 * NC_CONFIG_LOG_KEEP changes are kept. */
#define NC_CONFIG_LOG_KEEP 256

typedef struct nc_config_change_list {
    size_t n;
    nc_config_change *changes; /* owned by the list */
    uint64_t version;          /* config version when the list was taken */
} nc_config_change_list;

/* Every change with version > `since`, oldest first (possibly none).
 * Errors: MB_ERANGE if changes after `since` were already dropped from the
 * log or `since` is in the future: the watcher must re-read the whole
 * config (nc_config_to_json gives its version) and watch from there;
 * MB_ENOMEM. On success free the list with nc_config_change_list_free. */
int nc_config_changes_since(nc_config *cfg, uint64_t since, nc_config_change_list *out);
void nc_config_change_list_free(nc_config_change_list *list);

/* Block until the version is > `since` or `timeout_ms` passes (for a
 * long-poll on a thread that may block). Returns MB_OK or MB_ETIMEDOUT. */
int nc_config_wait(nc_config *cfg, uint64_t since, int64_t timeout_ms);

/* Renderings (malloc'd NUL-terminated JSON; caller frees; NULL if out of
 * memory). Secret values are "<redacted>" when set and "" when empty.
 *   nc_config_to_json:   {"version":N,"values":{"key":value,...},
 *                         "sources":{"key":"default|file|env|flag|runtime"}}
 *                         (int/bool as JSON numbers/booleans, others as strings)
 *   nc_config_changes_json: {"version":N,"changes":[{"version":v,"key":k,
 *                         "old":..,"new":..,"source":..},...]}
 *                         or MB_ERANGE as nc_config_changes_since
 *   nc_config_schema_json: [{"name":..,"type":..,"default":..,"reloadable":..,
 *                         "secret":..,"description":..,("min","max","values")},...] */
char *nc_config_to_json(nc_config *cfg);
int nc_config_changes_json(nc_config *cfg, uint64_t since, char **json_out);
char *nc_config_schema_json(void);

const char *nc_config_type_name(nc_config_type type);

/* Parse "host:port" into its parts (host without brackets). Returns
 * MB_EINVAL with a message ("bad port ...") otherwise. `host` gets at most
 * host_size-1 bytes (MB_ETOOBIG if longer). */
int nc_config_parse_address(const char *s, char *host, size_t host_size, uint16_t *port,
                            mb_error *err);
/* Parse a duration / size text as the schema does. MB_EINVAL or MB_ERANGE. */
int nc_config_parse_duration_ms(const char *s, int64_t *ms_out);
int nc_config_parse_size(const char *s, uint64_t *bytes_out);

#ifdef __cplusplus
}
#endif

#endif /* NC_CONFIG_H */
