/* Levelled structured logging: line formatting (text and JSON) and the
 * serialised write of whole lines. See log.h. */
#include "node/core/log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct nc_log {
    struct nc_log_head_ head; /* first: read inline by nc_log_enabled */
    _Atomic int format;
    pthread_mutex_t mu; /* serialises writes and destination changes */
    int fd;             /* destination when sink is NULL */
    bool own_fd;        /* fd was opened by us */
    nc_log_sink_cb sink;
    void *sink_arg;
    _Atomic uint64_t dropped;
    _Atomic uint64_t truncated;
};

static const char *const level_names[] = { "trace", "debug", "info", "warn", "error", "off" };
static const char *const level_upper[] = { "TRACE", "DEBUG", "INFO ", "WARN ", "ERROR", "OFF  " };

const char *nc_log_level_name(nc_log_level level)
{
    if ((unsigned)level > NC_LOG_OFF)
        return "?";
    return level_names[level];
}

int nc_log_level_parse(const char *s, nc_log_level *out)
{
    if (s == NULL)
        return MB_EINVAL;
    for (int i = 0; i <= NC_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (nc_log_level)i;
            return MB_OK;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = NC_LOG_WARN;
        return MB_OK;
    }
    return MB_EINVAL;
}

const char *nc_log_format_name(nc_log_format format)
{
    return format == NC_LOG_FORMAT_JSON ? "json" : "text";
}

int nc_log_format_parse(const char *s, nc_log_format *out)
{
    if (s == NULL)
        return MB_EINVAL;
    if (strcasecmp(s, "text") == 0) {
        *out = NC_LOG_FORMAT_TEXT;
        return MB_OK;
    }
    if (strcasecmp(s, "json") == 0) {
        *out = NC_LOG_FORMAT_JSON;
        return MB_OK;
    }
    return MB_EINVAL;
}

static int open_log_file(const char *path, int *fd_out, mb_error *err)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return mb_errorf(err, MB_EIO, "open log file %s: %s", path, strerror(errno));
    *fd_out = fd;
    return MB_OK;
}

int nc_log_open(nc_log **out, const nc_log_options *opts, mb_error *err)
{
    nc_log_options defaults = { .level = NC_LOG_INFO, .format = NC_LOG_FORMAT_TEXT };
    if (opts == NULL)
        opts = &defaults;
    if ((unsigned)opts->level > NC_LOG_OFF)
        return mb_errorf(err, MB_EINVAL, "log level %d out of range", (int)opts->level);
    nc_log *log = calloc(1, sizeof(*log));
    if (log == NULL)
        return mb_errorf(err, MB_ENOMEM, "allocate logger");
    int rc;
    atomic_init(&log->head.level, (int)opts->level);
    atomic_init(&log->format, (int)opts->format);
    atomic_init(&log->dropped, 0);
    atomic_init(&log->truncated, 0);
    log->fd = STDERR_FILENO;
    if (opts->sink != NULL) {
        log->sink = opts->sink;
        log->sink_arg = opts->sink_arg;
    } else if (opts->path != NULL && opts->path[0] != '\0') {
        rc = open_log_file(opts->path, &log->fd, err);
        if (rc != MB_OK)
            goto err_free;
        log->own_fd = true;
    }
    if (pthread_mutex_init(&log->mu, NULL) != 0) {
        rc = mb_errorf(err, MB_ENOMEM, "init logger mutex");
        goto err_close;
    }
    *out = log;
    return MB_OK;

err_close:
    if (log->own_fd)
        close(log->fd);
err_free:
    free(log);
    return rc;
}

void nc_log_close(nc_log *log)
{
    if (log == NULL)
        return;
    if (log->own_fd)
        close(log->fd);
    pthread_mutex_destroy(&log->mu);
    free(log);
}

void nc_log_set_level(nc_log *log, nc_log_level level)
{
    assert((unsigned)level <= NC_LOG_OFF);
    if (log != NULL)
        atomic_store_explicit(&log->head.level, (int)level, memory_order_relaxed);
}

nc_log_level nc_log_get_level(nc_log *log)
{
    if (log == NULL)
        return NC_LOG_OFF;
    return (nc_log_level)atomic_load_explicit(&log->head.level, memory_order_relaxed);
}

void nc_log_set_format(nc_log *log, nc_log_format format)
{
    if (log != NULL)
        atomic_store_explicit(&log->format, (int)format, memory_order_relaxed);
}

int nc_log_reopen(nc_log *log, const char *path, mb_error *err)
{
    if (log == NULL)
        return MB_OK;
    if (log->sink != NULL)
        return mb_errorf(err, MB_ESTATE, "logger writes to a sink: cannot reopen a file");
    int fd = STDERR_FILENO;
    bool own = false;
    if (path != NULL && path[0] != '\0') {
        int rc = open_log_file(path, &fd, err);
        if (rc != MB_OK)
            return rc;
        own = true;
    }
    pthread_mutex_lock(&log->mu);
    int old_fd = log->fd;
    bool old_own = log->own_fd;
    log->fd = fd;
    log->own_fd = own;
    pthread_mutex_unlock(&log->mu);
    if (old_own)
        close(old_fd);
    return MB_OK;
}

uint64_t nc_log_dropped(nc_log *log)
{
    return log == NULL ? 0 : atomic_load(&log->dropped);
}

uint64_t nc_log_truncated(nc_log *log)
{
    return log == NULL ? 0 : atomic_load(&log->truncated);
}

/* ---- line buffer ----------------------------------------------------------
 * `cap` excludes room reserved for the line's closing bytes, so that a
 * truncated line can still be closed properly. */
#define LINE_RESERVE 32

struct line {
    char buf[NC_LOG_LINE_MAX];
    size_t len;
    size_t cap;
    bool full;
};

static void put_mem(struct line *l, const char *s, size_t n)
{
    if (l->full)
        return;
    if (n > l->cap - l->len) {
        n = l->cap - l->len;
        l->full = true;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void put_str(struct line *l, const char *s)
{
    put_mem(l, s, strlen(s));
}

static void put_char(struct line *l, char c)
{
    put_mem(l, &c, 1);
}

static void put_fmt(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put_fmt(struct line *l, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        put_mem(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A JSON string body (no quotes). Escapes control characters, '"' and '\';
 * bytes >= 0x80 are copied (the caller's text is expected to be UTF-8). An
 * escape sequence is never cut in half when the line fills up. */
static void put_json_escaped(struct line *l, const char *s, size_t n)
{
    if (l->full)
        return;
    size_t start = l->len;
    for (size_t i = 0; i < n && !l->full; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        size_t elen;
        switch (c) {
        case '"':
            memcpy(esc, "\\\"", elen = 2);
            break;
        case '\\':
            memcpy(esc, "\\\\", elen = 2);
            break;
        case '\n':
            memcpy(esc, "\\n", elen = 2);
            break;
        case '\r':
            memcpy(esc, "\\r", elen = 2);
            break;
        case '\t':
            memcpy(esc, "\\t", elen = 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                elen = 6;
            } else {
                esc[0] = (char)c;
                elen = 1;
            }
        }
        if (elen > l->cap - l->len) {
            l->full = true;
            break;
        }
        put_mem(l, esc, elen);
    }
    if (l->full) {
        /* Never leave half a UTF-8 sequence: drop the last character. */
        size_t k = l->len;
        while (k > start && ((unsigned char)l->buf[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > start && (unsigned char)l->buf[k - 1] >= 0xC0)
            l->len = k - 1;
    }
}

static bool text_needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == '"' || c == '=' || c == 0x7f)
            return true;
    }
    return false;
}

static void put_text_value(struct line *l, const char *s)
{
    if (!text_needs_quotes(s)) {
        put_str(l, s);
        return;
    }
    put_char(l, '"');
    put_json_escaped(l, s, strlen(s)); /* the same C-style escapes */
    put_char(l, '"');
}

static void put_timestamp(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    put_fmt(l, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
            tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

static void put_field_value(struct line *l, const nc_log_field *f, bool json)
{
    switch (f->type) {
    case NC_LOG_F_STR:
        if (f->v.s == NULL) {
            put_str(l, json ? "null" : "(null)");
        } else if (json) {
            put_char(l, '"');
            put_json_escaped(l, f->v.s, strlen(f->v.s));
            put_char(l, '"');
        } else {
            put_text_value(l, f->v.s);
        }
        break;
    case NC_LOG_F_I64:
        put_fmt(l, "%lld", (long long)f->v.i);
        break;
    case NC_LOG_F_U64:
        put_fmt(l, "%llu", (unsigned long long)f->v.u);
        break;
    case NC_LOG_F_F64:
        if (json && !isfinite(f->v.f))
            put_str(l, "null");
        else
            put_fmt(l, "%.17g", f->v.f);
        break;
    case NC_LOG_F_BOOL:
        put_str(l, f->v.b ? "true" : "false");
        break;
    default:
        put_str(l, json ? "null" : "?");
    }
}

static void format_line(struct line *l, nc_log_format format, nc_log_level level,
                        const char *component, const nc_log_field *fields, size_t nfields,
                        const char *msg, size_t msg_len)
{
    bool json = format == NC_LOG_FORMAT_JSON;
    if (component == NULL)
        component = "-";
    /* Bounded so that only the message and the fields can fill the line. */
    char comp[64];
    snprintf(comp, sizeof(comp), "%s", component);
    component = comp;
    if (json) {
        put_str(l, "{\"ts\":\"");
        put_timestamp(l);
        put_str(l, "\",\"level\":\"");
        put_str(l, nc_log_level_name(level));
        put_str(l, "\",\"comp\":\"");
        put_json_escaped(l, component, strlen(component));
        put_str(l, "\",\"msg\":\"");
        put_json_escaped(l, msg, msg_len);
        bool msg_cut = l->full;
        put_char(l, '"');
        for (size_t i = 0; i < nfields && !l->full; i++) {
            size_t mark = l->len;
            put_str(l, ",\"");
            put_json_escaped(l, fields[i].key ? fields[i].key : "?",
                             strlen(fields[i].key ? fields[i].key : "?"));
            put_str(l, "\":");
            put_field_value(l, &fields[i], true);
            if (l->full)
                l->len = mark; /* drop the incomplete field: stay valid JSON */
        }
        if (l->full) {
            if (msg_cut) /* close the "msg" string */
                l->buf[l->len++] = '"';
            static const char tail[] = ",\"truncated\":true";
            memcpy(l->buf + l->len, tail, sizeof(tail) - 1);
            l->len += sizeof(tail) - 1;
        }
        l->buf[l->len++] = '}';
    } else {
        put_timestamp(l);
        put_char(l, ' ');
        put_str(l, level_upper[level]);
        put_char(l, ' ');
        put_str(l, component);
        put_str(l, ": ");
        put_mem(l, msg, msg_len);
        for (size_t i = 0; i < nfields; i++) {
            put_char(l, ' ');
            put_str(l, fields[i].key ? fields[i].key : "?");
            put_char(l, '=');
            put_field_value(l, &fields[i], false);
        }
        if (l->full) {
            static const char tail[] = " [truncated]";
            memcpy(l->buf + l->len, tail, sizeof(tail) - 1);
            l->len += sizeof(tail) - 1;
        }
    }
    l->buf[l->len++] = '\n';
}

static void write_all(nc_log *log, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(log->fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            atomic_fetch_add(&log->dropped, 1);
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

void nc_log_write(nc_log *log, nc_log_level level, const char *component,
                  const nc_log_field *fields, size_t nfields, const char *fmt, ...)
{
    if (log == NULL || (unsigned)level >= NC_LOG_OFF)
        return;
    assert(nfields == 0 || fields != NULL);
    struct line l;
    l.len = 0;
    l.cap = sizeof(l.buf) - LINE_RESERVE;
    l.full = false;

    /* The message is formatted first into its own buffer: its escaping
     * depends on the format. */
    char msg[NC_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t msg_len = n < 0 ? 0 : ((size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);

    nc_log_format format = (nc_log_format)atomic_load_explicit(&log->format, memory_order_relaxed);
    format_line(&l, format, level, component, fields, nfields, msg, msg_len);
    if (l.full || n >= (int)sizeof(msg))
        atomic_fetch_add(&log->truncated, 1);

    pthread_mutex_lock(&log->mu);
    if (log->sink != NULL)
        log->sink(log->sink_arg, level, l.buf, l.len);
    else
        write_all(log, l.buf, l.len);
    pthread_mutex_unlock(&log->mu);
}
