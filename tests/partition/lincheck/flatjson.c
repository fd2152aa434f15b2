/* Strict flat-JSON-object parser used for history and observation lines. */
#include "flatjson.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *p;
    const char *end;
    int depth;
} fj_cursor;

static void fj_ws(fj_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

/* Read a string into out (truncation is an error). */
static int fj_string(fj_cursor *c, char *out, size_t out_size)
{
    size_t n = 0;
    if (c->p >= c->end || *c->p != '"')
        return -1;
    c->p++;
    while (c->p < c->end) {
        char ch = *c->p++;
        if (ch == '"') {
            if (out != NULL)
                out[n] = '\0';
            return 0;
        }
        if ((unsigned char)ch < 0x20)
            return -1;
        if (ch == '\\') {
            if (c->p >= c->end)
                return -1;
            char esc = *c->p++;
            switch (esc) {
            case '"':
                ch = '"';
                break;
            case '\\':
                ch = '\\';
                break;
            case '/':
                ch = '/';
                break;
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case 'u':
                /* Only needed for skipped values; keep a placeholder. */
                for (int i = 0; i < 4; i++) {
                    if (c->p >= c->end)
                        return -1;
                    char h = *c->p++;
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
                          (h >= 'A' && h <= 'F')))
                        return -1;
                }
                ch = '?';
                break;
            default:
                return -1;
            }
        }
        if (out != NULL) {
            if (n + 1 >= out_size)
                return -1;
            out[n++] = ch;
        }
    }
    return -1;
}

/* A JSON number; sets *is_int and *num when it is an integer in int64 range. */
static int fj_number(fj_cursor *c, int *is_int, int64_t *num)
{
    int neg = 0;
    uint64_t mag = 0;
    int overflow = 0, digits = 0;
    *is_int = 1;
    if (c->p < c->end && *c->p == '-') {
        neg = 1;
        c->p++;
    }
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return -1;
    if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9')
        return -1;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p - '0');
        if (mag > (UINT64_MAX - d) / 10)
            overflow = 1;
        else
            mag = mag * 10 + d;
        c->p++;
        digits++;
    }
    if (c->p < c->end && *c->p == '.') {
        *is_int = 0;
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return -1;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        *is_int = 0;
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9')
            return -1;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
            c->p++;
    }
    if (digits == 0)
        return -1;
    if (overflow || (!neg && mag > (uint64_t)INT64_MAX) || (neg && mag > (uint64_t)INT64_MAX + 1u))
        *is_int = 0;
    else if (*is_int)
        *num = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

static int fj_literal(fj_cursor *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return -1;
    c->p += n;
    return 0;
}

/* Skip any JSON value (bounded nesting depth). */
static int fj_skip_value(fj_cursor *c)
{
    fj_ws(c);
    if (c->p >= c->end)
        return -1;
    char ch = *c->p;
    if (ch == '"')
        return fj_string(c, NULL, 0);
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        if (++c->depth > 64)
            return -1;
        c->p++;
        fj_ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            c->depth--;
            return 0;
        }
        for (;;) {
            if (ch == '{') {
                fj_ws(c);
                if (fj_string(c, NULL, 0) != 0)
                    return -1;
                fj_ws(c);
                if (c->p >= c->end || *c->p != ':')
                    return -1;
                c->p++;
            }
            if (fj_skip_value(c) != 0)
                return -1;
            fj_ws(c);
            if (c->p >= c->end)
                return -1;
            if (*c->p == ',') {
                c->p++;
                continue;
            }
            if (*c->p == close) {
                c->p++;
                c->depth--;
                return 0;
            }
            return -1;
        }
    }
    if (ch == 't')
        return fj_literal(c, "true");
    if (ch == 'f')
        return fj_literal(c, "false");
    if (ch == 'n')
        return fj_literal(c, "null");
    int is_int;
    int64_t num;
    return fj_number(c, &is_int, &num);
}

static int fj_fail(char *err, size_t err_size, const char *why, const fj_cursor *c,
                   const char *start)
{
    snprintf(err, err_size, "%s at byte %ld", why, (long)(c->p - start));
    return -1;
}

int fj_parse(const char *text, size_t len, fj_object *obj, char *err, size_t err_size)
{
    fj_cursor c = { text, text + len, 0 };
    obj->count = 0;
    fj_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        return fj_fail(err, err_size, "expected '{'", &c, text);
    c.p++;
    fj_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
        goto trailer;
    }
    for (;;) {
        fj_member m;
        memset(&m, 0, sizeof m);
        fj_ws(&c);
        if (fj_string(&c, m.key, sizeof m.key) != 0)
            return fj_fail(err, err_size, "bad or too long member name", &c, text);
        fj_ws(&c);
        if (c.p >= c.end || *c.p != ':')
            return fj_fail(err, err_size, "expected ':'", &c, text);
        c.p++;
        fj_ws(&c);
        if (c.p >= c.end)
            return fj_fail(err, err_size, "missing value", &c, text);
        if (*c.p == '"') {
            m.type = FJ_STRING;
            if (fj_string(&c, m.str, sizeof m.str) != 0)
                return fj_fail(err, err_size, "bad or too long string", &c, text);
        } else if (*c.p == 'n') {
            m.type = FJ_NULL;
            if (fj_literal(&c, "null") != 0)
                return fj_fail(err, err_size, "bad literal", &c, text);
        } else if (*c.p == 't' || *c.p == 'f') {
            m.type = FJ_BOOL;
            m.num = *c.p == 't';
            if (fj_literal(&c, m.num ? "true" : "false") != 0)
                return fj_fail(err, err_size, "bad literal", &c, text);
        } else if (*c.p == '-' || (*c.p >= '0' && *c.p <= '9')) {
            int is_int;
            if (fj_number(&c, &is_int, &m.num) != 0)
                return fj_fail(err, err_size, "bad number", &c, text);
            m.type = is_int ? FJ_INT : FJ_OTHER;
        } else {
            m.type = FJ_OTHER;
            if (fj_skip_value(&c) != 0)
                return fj_fail(err, err_size, "bad value", &c, text);
        }
        if (fj_get(obj, m.key) != NULL)
            return fj_fail(err, err_size, "duplicate member", &c, text);
        if (obj->count >= FJ_MAX_MEMBERS)
            return fj_fail(err, err_size, "too many members", &c, text);
        obj->members[obj->count++] = m;
        fj_ws(&c);
        if (c.p >= c.end)
            return fj_fail(err, err_size, "unterminated object", &c, text);
        if (*c.p == ',') {
            c.p++;
            continue;
        }
        if (*c.p == '}') {
            c.p++;
            break;
        }
        return fj_fail(err, err_size, "expected ',' or '}'", &c, text);
    }
trailer:
    fj_ws(&c);
    if (c.p != c.end)
        return fj_fail(err, err_size, "trailing bytes after object", &c, text);
    return 0;
}

const fj_member *fj_get(const fj_object *obj, const char *key)
{
    for (size_t i = 0; i < obj->count; i++)
        if (strcmp(obj->members[i].key, key) == 0)
            return &obj->members[i];
    return NULL;
}
