/* The single MABEAM error enum and its string table.
 *
 * Every function of the project that can fail returns an mb_err: 0 is
 * success, anything else is one of the codes below. Errors of foreign
 * libraries (RocksDB's errptr strings, NNG's nng_err, libuv's negative
 * errno, raft's codes) are converted at the module boundary into one of
 * these codes plus, where the caller passed one, an mb_error message that
 * says what was being done ("open event log at /x: ...").
 *
 * Header-only so that every module, including storage/ at the bottom of the
 * dependency graph, can use it without linking anything. */
#ifndef MABEAM_ERROR_H
#define MABEAM_ERROR_H

#include <stdarg.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X-macro: code name, value, short description. Values are stable: they
 * appear in the HTTP API ("code") and in logs; append new codes at the end. */
#define MB_ERR_LIST(X)                                                                             \
    X(MB_OK, 0, "success")                                                                         \
    X(MB_ENOMEM, 1, "out of memory")                                                               \
    X(MB_EINVAL, 2, "invalid argument")                                                            \
    X(MB_ENOTFOUND, 3, "not found")                                                                \
    X(MB_EEXIST, 4, "already exists")                                                              \
    X(MB_EIO, 5, "I/O error")                                                                      \
    X(MB_ECORRUPT, 6, "corrupt or foreign data")                                                   \
    X(MB_EBUSY, 7, "resource busy")                                                                \
    X(MB_ETIMEDOUT, 8, "timed out")                                                                \
    X(MB_ENOQUORUM, 9, "no quorum")                                                                \
    X(MB_ENOTLEADER, 10, "not the leader")                                                         \
    X(MB_ECONFLICT, 11, "version conflict")                                                        \
    X(MB_EPERM, 12, "permission denied")                                                           \
    X(MB_EUNAVAIL, 13, "service unavailable")                                                      \
    X(MB_ECLOSED, 14, "closed or shutting down")                                                   \
    X(MB_EFULL, 15, "queue or mailbox full")                                                       \
    X(MB_ENOSPC, 16, "no space left")                                                              \
    X(MB_EPROTO, 17, "protocol error")                                                             \
    X(MB_EUNKNOWN, 18, "outcome unknown (retry with the same id)")                                 \
    X(MB_ETOOBIG, 19, "too large")                                                                 \
    X(MB_ENOTSUP, 20, "not supported")                                                             \
    X(MB_ECONSTRAINT, 21, "value violates a constraint")                                           \
    X(MB_ENOAGENT, 22, "no such agent")                                                            \
    X(MB_ECRASH, 23, "agent crashed")                                                              \
    X(MB_EAUTH, 24, "authentication failed")                                                       \
    X(MB_ERANGE, 25, "out of range")                                                               \
    X(MB_ESTATE, 26, "operation not allowed in the current state")                                 \
    X(MB_EINTERNAL, 27, "internal error")

typedef enum mb_err {
#define MB_ERR_ENUM_(name, value, text) name = value,
    MB_ERR_LIST(MB_ERR_ENUM_)
#undef MB_ERR_ENUM_
        MB_ERR_COUNT_
} mb_err;

/* Short English description of a code; never NULL. */
static inline const char *mb_strerror(int code)
{
    switch (code) {
#define MB_ERR_CASE_(name, value, text)                                                            \
    case value:                                                                                    \
        return text;
        MB_ERR_LIST(MB_ERR_CASE_)
#undef MB_ERR_CASE_
    default:
        return "unknown error";
    }
}

/* Symbolic name of a code ("MB_ENOTFOUND"); never NULL. */
static inline const char *mb_errname(int code)
{
    switch (code) {
#define MB_ERR_NAME_(name, value, text)                                                            \
    case value:                                                                                    \
        return #name;
        MB_ERR_LIST(MB_ERR_NAME_)
#undef MB_ERR_NAME_
    default:
        return "MB_E?";
    }
}

/* A code with a human message saying what failed. Callers own the struct
 * (usually on the stack); functions that take an `mb_error *` accept NULL
 * when the caller does not want the message. */
typedef struct mb_error {
    int code;
    char msg[256];
} mb_error;

/* Record `code` and a printf-style message in `err` (if not NULL) and return
 * `code`, so that `return mb_errorf(err, MB_EIO, "open %s: %s", p, e);` works. */
static inline int mb_errorf(mb_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int mb_errorf(mb_error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Reset an error holder to success with an empty message. */
static inline void mb_error_clear(mb_error *err)
{
    if (err != NULL) {
        err->code = MB_OK;
        err->msg[0] = '\0';
    }
}

#ifdef __cplusplus
}
#endif

#endif /* MABEAM_ERROR_H */
