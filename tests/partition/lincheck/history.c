/* History lines (JSON) to lc_op records, defensively. */
#include "flatjson.h"
#include "lincheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lc_history_init(lc_history *h)
{
    memset(h, 0, sizeof *h);
}

void lc_history_close(lc_history *h)
{
    free(h->ops);
    memset(h, 0, sizeof *h);
}

int lc_history_add(lc_history *h, const lc_op *op)
{
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        lc_op *ops = realloc(h->ops, cap * sizeof *ops);
        if (ops == NULL)
            return -1;
        h->ops = ops;
        h->cap = cap;
    }
    h->ops[h->len++] = *op;
    return 0;
}

static int want_int(const fj_object *o, const char *key, int64_t *out, int required, char *err,
                    size_t err_size)
{
    const fj_member *m = fj_get(o, key);
    if (m == NULL || m->type == FJ_NULL) {
        if (required) {
            snprintf(err, err_size, "missing integer \"%s\"", key);
            return -1;
        }
        return 1;
    }
    if (m->type != FJ_INT) {
        snprintf(err, err_size, "\"%s\" is not a 64-bit integer", key);
        return -1;
    }
    *out = m->num;
    return 0;
}

int lc_parse_line(const char *text, size_t len, lc_op *op, char *err, size_t err_size)
{
    fj_object o;
    int64_t n = 0;
    int rc;
    memset(op, 0, sizeof *op);
    if (fj_parse(text, len, &o, err, err_size) != 0)
        return -1;

    const fj_member *m = fj_get(&o, "op");
    if (m == NULL || m->type != FJ_STRING) {
        snprintf(err, err_size, "missing string \"op\"");
        return -1;
    }
    if (strcmp(m->str, "set") == 0)
        op->kind = LC_SET;
    else if (strcmp(m->str, "cas") == 0)
        op->kind = LC_CAS;
    else if (strcmp(m->str, "get") == 0)
        op->kind = LC_GET;
    else if (strcmp(m->str, "init") == 0)
        op->kind = LC_INIT;
    else {
        snprintf(err, err_size, "unknown op \"%s\"", m->str);
        return -1;
    }

    m = fj_get(&o, "var");
    if (m == NULL || m->type != FJ_STRING || m->str[0] == '\0' || strlen(m->str) >= LC_VAR_MAX) {
        snprintf(err, err_size, "\"var\" must be a non-empty string under %d bytes", LC_VAR_MAX);
        return -1;
    }
    memcpy(op->var, m->str, strlen(m->str) + 1);

    if (op->kind == LC_INIT) {
        m = fj_get(&o, "value");
        if (m == NULL || (m->type != FJ_NULL && m->type != FJ_INT)) {
            snprintf(err, err_size, "init needs \"value\" (integer or null)");
            return -1;
        }
        op->result_null = m->type == FJ_NULL;
        op->result = m->type == FJ_INT ? m->num : 0;
        rc = want_int(&o, "version", &n, 0, err, err_size);
        if (rc < 0)
            return -1;
        if (rc == 0 && n < 0) {
            snprintf(err, err_size, "\"version\" must not be negative");
            return -1;
        }
        op->has_version = 1;
        op->version = rc == 0 ? (uint64_t)n : 0;
        op->outcome = LC_OK;
        op->complete_ns = 0;
        return 0;
    }

    m = fj_get(&o, "outcome");
    if (m == NULL || m->type != FJ_STRING) {
        snprintf(err, err_size, "missing string \"outcome\"");
        return -1;
    }
    if (strcmp(m->str, "ok") == 0)
        op->outcome = LC_OK;
    else if (strcmp(m->str, "fail") == 0)
        op->outcome = LC_FAIL;
    else if (strcmp(m->str, "unknown") == 0)
        op->outcome = LC_UNKNOWN;
    else {
        snprintf(err, err_size, "unknown outcome \"%s\"", m->str);
        return -1;
    }

    if (want_int(&o, "process", &n, 1, err, err_size) != 0)
        return -1;
    if (n < 0 || n > 1000000) {
        snprintf(err, err_size, "\"process\" out of range");
        return -1;
    }
    op->process = (int)n;
    if (want_int(&o, "invoke_ns", &op->invoke_ns, 1, err, err_size) != 0)
        return -1;
    if (op->outcome == LC_UNKNOWN) {
        op->complete_ns = INT64_MAX; /* may take effect at any later time */
    } else {
        if (want_int(&o, "complete_ns", &op->complete_ns, 1, err, err_size) != 0)
            return -1;
    }
    if (op->invoke_ns < 0 || op->invoke_ns == INT64_MAX ||
        (op->outcome != LC_UNKNOWN && op->complete_ns < op->invoke_ns)) {
        snprintf(err, err_size, "need 0 <= invoke_ns <= complete_ns");
        return -1;
    }

    if (op->kind != LC_GET) {
        if (want_int(&o, "value", &op->value, 1, err, err_size) != 0)
            return -1;
    }
    rc = want_int(&o, "version", &n, 0, err, err_size);
    if (rc < 0)
        return -1;
    if (rc == 0 && op->outcome == LC_OK) {
        if (n < 0) {
            snprintf(err, err_size, "\"version\" must not be negative");
            return -1;
        }
        op->has_version = 1;
        op->version = (uint64_t)n;
    }

    if (op->kind == LC_CAS) {
        rc = want_int(&o, "expected_version", &n, 0, err, err_size);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            if (n < 0) {
                snprintf(err, err_size, "\"expected_version\" must not be negative");
                return -1;
            }
            op->has_expected_version = 1;
            op->expected_version = (uint64_t)n;
        }
        m = fj_get(&o, "expected");
        if (m != NULL) {
            if (m->type == FJ_NULL) {
                op->expected_null = 1;
            } else if (m->type == FJ_INT) {
                op->expected_value = m->num;
            } else {
                snprintf(err, err_size, "\"expected\" must be an integer or null");
                return -1;
            }
            op->has_expected_value = 1;
        }
        if (op->has_expected_value == op->has_expected_version) {
            snprintf(err, err_size, "cas needs exactly one of \"expected\", \"expected_version\"");
            return -1;
        }
        if (op->outcome == LC_FAIL) {
            m = fj_get(&o, "error");
            op->conflict = m == NULL || m->type == FJ_NULL ||
                           (m->type == FJ_STRING && strcmp(m->str, "MB_ECONFLICT") == 0);
        }
    }

    if (op->kind == LC_GET && op->outcome == LC_OK) {
        m = fj_get(&o, "result");
        if (m == NULL) {
            snprintf(err, err_size, "ok get needs \"result\" (integer or null)");
            return -1;
        }
        if (m->type == FJ_NULL)
            op->result_null = 1;
        else if (m->type == FJ_INT)
            op->result = m->num;
        else {
            snprintf(err, err_size, "\"result\" must be an integer or null");
            return -1;
        }
    }
    return 0;
}

int lc_parse_history(const char *text, size_t len, lc_history *h, char *err, size_t err_size)
{
    size_t line = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        line++;
        size_t k = 0;
        while (k < n && (start[k] == ' ' || start[k] == '\t' || start[k] == '\r'))
            k++;
        if (k == n)
            continue;
        lc_op op;
        char why[200];
        if (lc_parse_line(start, n, &op, why, sizeof why) != 0) {
            snprintf(err, err_size, "line %zu: %s", line, why);
            return -1;
        }
        op.line = line;
        if (lc_history_add(h, &op) != 0) {
            snprintf(err, err_size, "line %zu: out of memory", line);
            return -1;
        }
    }
    return 0;
}
