/* node/core logging: levelled, structured log lines (JSON lines or a human
 * format) written to stderr, a file, or a sink callback.
 *
 * Cheap when off: the NC_LOG* macros test the level (one relaxed atomic
 * load) before any argument is evaluated or formatted. Thread-safe: a line
 * is formatted on the caller's stack and written with one write under a
 * mutex, so lines from different threads never interleave. The level, the
 * format and the destination can be changed at runtime (config reload).
 *
 * A NULL `nc_log *` is valid everywhere and discards everything, so modules
 * and tests that do not care about logs can pass NULL.
 *
 * Line formats (fields in call order, after the fixed ones):
 *   JSON:  {"ts":"2026-11-25T21:51:28.123456Z","level":"info",
 *           "comp":"raft","msg":"became leader","term":5,"addr":"10.0.0.1:7702"}
 *   text:  2026-11-25T21:51:28.123456Z INFO  raft: became leader term=5 addr=10.0.0.1:7702
 * Text values containing spaces, '"' or '=' are double-quoted with C escapes.
 * A line longer than NC_LOG_LINE_MAX bytes is truncated; a JSON line stays
 * valid JSON ("msg" or the last field is cut and "truncated":true is added). */
#ifndef NC_LOG_H
#define NC_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mabeam/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nc_log_level {
    NC_LOG_TRACE = 0,
    NC_LOG_DEBUG = 1,
    NC_LOG_INFO = 2,
    NC_LOG_WARN = 3,
    NC_LOG_ERROR = 4,
    NC_LOG_OFF = 5, /* as a threshold: log nothing */
} nc_log_level;

typedef enum nc_log_format {
    NC_LOG_FORMAT_TEXT = 0, /* human: timestamp LEVEL comp: msg k=v ... */
    NC_LOG_FORMAT_JSON = 1, /* one JSON object per line */
} nc_log_format;

/* Longest line written, newline included. */
#define NC_LOG_LINE_MAX 8192

/* Receives every finished line (newline included, not NUL-terminated
 * beyond `len`); called under the logger's mutex, so calls never overlap.
 * Must not call back into the same logger. */
typedef void (*nc_log_sink_cb)(void *arg, nc_log_level level, const char *line, size_t len);

typedef struct nc_log_options {
    nc_log_level level;   /* threshold: lines below it are dropped */
    nc_log_format format; /* text or JSON lines */
    /* Destination, first that applies: sink (if not NULL), the file at
     * `path` (opened for append, created 0640; borrowed during the call),
     * else stderr. */
    nc_log_sink_cb sink;
    void *sink_arg;
    const char *path;
} nc_log_options;

typedef struct nc_log nc_log;

/* The part of nc_log the level check reads inline. Not for direct use. */
struct nc_log_head_ {
    _Atomic int level;
};

/* Create a logger. `opts` is borrowed; NULL means info, text, stderr.
 * On success *out is owned by the caller (free with nc_log_close).
 * Errors: MB_EIO if the file cannot be opened, MB_ENOMEM. */
int nc_log_open(nc_log **out, const nc_log_options *opts, mb_error *err);

/* Flush and free a logger (closes its file). NULL is a no-op. No other
 * thread may use the logger during or after the call. */
void nc_log_close(nc_log *log);

/* True if a line at `level` would be written. NULL log: false. */
static inline bool nc_log_enabled(nc_log *log, nc_log_level level)
{
    return log != NULL && (int)level >= atomic_load_explicit(&((struct nc_log_head_ *)log)->level,
                                                             memory_order_relaxed);
}

/* Runtime changes (thread-safe; take effect for the next line). */
void nc_log_set_level(nc_log *log, nc_log_level level);
nc_log_level nc_log_get_level(nc_log *log);
void nc_log_set_format(nc_log *log, nc_log_format format);
/* Switch the destination to the file at `path` (borrowed), or to stderr if
 * `path` is NULL or "". Reopening the same path after an external rotation
 * is the intended use. On error the old destination stays. Errors: MB_EIO.
 * Not allowed on a logger created with a sink (MB_ESTATE). */
int nc_log_reopen(nc_log *log, const char *path, mb_error *err);

/* Names: "trace", "debug", "info", "warn", "error", "off" and
 * "text", "json". Parsing is case-insensitive; "warning" is accepted.
 * Parsers return MB_EINVAL for anything else. */
const char *nc_log_level_name(nc_log_level level);
int nc_log_level_parse(const char *s, nc_log_level *out);
const char *nc_log_format_name(nc_log_format format);
int nc_log_format_parse(const char *s, nc_log_format *out);

/* A structured field. Strings are borrowed for the duration of the call. */
typedef enum nc_log_ftype {
    NC_LOG_F_STR = 0,
    NC_LOG_F_I64 = 1,
    NC_LOG_F_U64 = 2,
    NC_LOG_F_F64 = 3,
    NC_LOG_F_BOOL = 4,
} nc_log_ftype;

typedef struct nc_log_field {
    const char *key;
    nc_log_ftype type;
    union {
        const char *s; /* NULL is written as null / (null) */
        int64_t i;
        uint64_t u;
        double f; /* NaN/Inf are written as null in JSON */
        bool b;
    } v;
} nc_log_field;

#define NC_F_STR(k, val)  ((nc_log_field){ .key = (k), .type = NC_LOG_F_STR, .v.s = (val) })
#define NC_F_I64(k, val)  ((nc_log_field){ .key = (k), .type = NC_LOG_F_I64, .v.i = (val) })
#define NC_F_U64(k, val)  ((nc_log_field){ .key = (k), .type = NC_LOG_F_U64, .v.u = (val) })
#define NC_F_F64(k, val)  ((nc_log_field){ .key = (k), .type = NC_LOG_F_F64, .v.f = (val) })
#define NC_F_BOOL(k, val) ((nc_log_field){ .key = (k), .type = NC_LOG_F_BOOL, .v.b = (val) })

/* Write one line unconditionally (callers normally use the macros, which
 * check the level first). `component` names the module ("raft", "http");
 * `fields` (may be NULL when nfields is 0) and all strings are borrowed.
 * `fmt` is a printf format for the message. Never fails: I/O errors are
 * counted (nc_log_dropped) and the line is lost. */
void nc_log_write(nc_log *log, nc_log_level level, const char *component,
                  const nc_log_field *fields, size_t nfields, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Lines lost to write errors or truncated since the logger was opened. */
uint64_t nc_log_dropped(nc_log *log);
uint64_t nc_log_truncated(nc_log *log);

/* NC_LOG(log, level, component, fmt, ...): printf-style message.
 * Arguments are evaluated only if the level is enabled. */
#define NC_LOG(log, level, component, ...)                                                         \
    do {                                                                                           \
        nc_log *nc_log_l_ = (log);                                                                 \
        if (nc_log_enabled(nc_log_l_, (level)))                                                    \
            nc_log_write(nc_log_l_, (level), (component), NULL, 0, __VA_ARGS__);                   \
    } while (0)

/* NC_LOGKV(log, level, component, msg, NC_F_...(k, v), ...): a constant
 * message plus structured fields (at least one). Field arguments are
 * evaluated only if the level is enabled. */
#define NC_LOGKV(log, level, component, msg, ...)                                                  \
    do {                                                                                           \
        nc_log *nc_log_l_ = (log);                                                                 \
        if (nc_log_enabled(nc_log_l_, (level))) {                                                  \
            const nc_log_field nc_log_f_[] = { __VA_ARGS__ };                                      \
            nc_log_write(nc_log_l_, (level), (component), nc_log_f_,                               \
                         sizeof(nc_log_f_) / sizeof(nc_log_f_[0]), "%s", (msg));                   \
        }                                                                                          \
    } while (0)

#define NC_TRACE(log, comp, ...) NC_LOG(log, NC_LOG_TRACE, comp, __VA_ARGS__)
#define NC_DEBUG(log, comp, ...) NC_LOG(log, NC_LOG_DEBUG, comp, __VA_ARGS__)
#define NC_INFO(log, comp, ...)  NC_LOG(log, NC_LOG_INFO, comp, __VA_ARGS__)
#define NC_WARN(log, comp, ...)  NC_LOG(log, NC_LOG_WARN, comp, __VA_ARGS__)
#define NC_ERROR(log, comp, ...) NC_LOG(log, NC_LOG_ERROR, comp, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* NC_LOG_H */
