/* A strict parser for flat JSON objects (one history or observation line):
 * string, exact 64-bit integer, null and boolean members; nested objects and
 * arrays are skipped. Exact integers matter: nanosecond timestamps do not fit
 * a double. Internal to the lincheck tool. */
#ifndef MB_LINCHECK_FLATJSON_H
#define MB_LINCHECK_FLATJSON_H

#include <stddef.h>
#include <stdint.h>

#define FJ_MAX_MEMBERS 32
#define FJ_STR_MAX     128

typedef enum { FJ_STRING, FJ_INT, FJ_NULL, FJ_BOOL, FJ_OTHER } fj_type;

typedef struct {
    char key[FJ_STR_MAX];
    fj_type type;
    char str[FJ_STR_MAX]; /* FJ_STRING */
    int64_t num;          /* FJ_INT, FJ_BOOL (0/1) */
} fj_member;

typedef struct {
    fj_member members[FJ_MAX_MEMBERS];
    size_t count;
} fj_object;

/* Parse `len` bytes of `text` (not retained; need not be NUL-terminated) as
 * one flat object, surrounding whitespace allowed. Returns 0, or -1 with a
 * reason in `err` (`err_size` bytes). */
int fj_parse(const char *text, size_t len, fj_object *obj, char *err, size_t err_size);

/* The member named `key`, or NULL. The pointer is into `obj`. */
const fj_member *fj_get(const fj_object *obj, const char *key);

#endif
