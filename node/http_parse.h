/* node/http_parse.h: pure helpers of the HTTP API — request-target parsing
 * (path segments and query string, percent-decoded), number/flag parameter
 * parsing, Content-Length and JSON body checks, bearer-token comparison in
 * constant time, mb_err -> HTTP status mapping and the JSON error body.
 *
 * Nothing here does I/O or touches node state, so it runs on NNG's threads
 * and in the fuzz target (tests/fuzz/http_parse). Every input is untrusted:
 * malformed input is an MB_EINVAL/MB_ETOOBIG error, never a crash. */
#ifndef MB_NODE_HTTP_PARSE_H
#define MB_NODE_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <mabeam/error.h>

#define HTTP_URI_MAX    8192 /* longest request target accepted */
#define HTTP_SEGS_MAX   16   /* path segments */
#define HTTP_QUERY_MAX  32   /* query parameters */
#define HTTP_PARAMS_MAX 4    /* {name} placeholders in one route pattern */
#define HTTP_ALLOW_MAX  64   /* bytes of an Allow header value */

typedef struct http_kv {
    const char *key; /* points into http_target.buf */
    const char *val; /* "" for "?flag" */
} http_kv;

/* A parsed request target "/a/b%20c?x=1&y". Owns one buffer. */
typedef struct http_target {
    char *buf;
    const char *segs[HTTP_SEGS_MAX]; /* decoded segments, no empty ones */
    size_t nsegs;
    http_kv query[HTTP_QUERY_MAX];
    size_t nquery;
} http_target;

/* Parse `uri` (NUL-terminated, origin form "/path?query") into *t. Path
 * segments are split on '/' before percent-decoding (so "%2F" stays inside
 * a segment); '+' in the query decodes to a space. Fails with MB_EINVAL
 * (bad escape, NUL byte, control character, not starting with '/', "..")
 * or MB_ETOOBIG (too long, too many segments or parameters). On success the
 * caller owns *t and releases it with http_target_free(); on failure *t is
 * left empty (freeing it is harmless). */
int http_target_parse(const char *uri, http_target *t, mb_error *err);
void http_target_free(http_target *t);

/* Value of the first query parameter named `key`, or NULL. Borrowed from t. */
const char *http_target_query(const http_target *t, const char *key);

/* Strict number parsing: decimal digits only (a leading '-' for i64), no
 * spaces, no overflow. Return 0 or MB_EINVAL/MB_ERANGE. */
int http_parse_u64(const char *s, uint64_t *out);
int http_parse_i64(const char *s, int64_t *out);
/* "1"/"true"/"yes"/"on" and "0"/"false"/"no"/"off". */
int http_parse_bool(const char *s, int *out);

/* Content-Length header value: digits only, at most 19 of them. */
int http_parse_content_length(const char *s, uint64_t *out);

/* Parse a JSON request body that must be one object. On success *out is
 * owned by the caller (cJSON_Delete). MB_EINVAL with a message saying where
 * the JSON broke, or that it is not an object. */
int http_json_object_parse(const void *body, size_t len, cJSON **out, mb_error *err);

/* raft-perf (HTTP server on the loop): the parts of an HTTP/1.x request
 * head that the server uses. String pointers point into the buffer given
 * to http_request_head_parse (NULL when the header is absent). */
typedef struct http_request_head {
    char method[16];
    const char *uri;
    int http10; /* HTTP/1.0 (else HTTP/1.1) */
    const char *content_length, *transfer_encoding, *authorization, *expect, *connection;
    int dup_length; /* Content-Length given more than once */
} http_request_head;

/* Length of the request head at the start of `buf` (`len` bytes),
 * including the CRLF CRLF that ends it; 0 when it is not complete yet. */
size_t http_request_head_end(const char *buf, size_t len);

/* Parse a complete request head of `len` bytes (as measured by
 * http_request_head_end) in `buf`, which is modified in place (NULs end
 * the pieces) and must stay alive while *out is used. Request line
 * "METHOD SP target SP HTTP/1.1|HTTP/1.0", then "Name: value" lines
 * (names case-insensitive, surrounding blanks trimmed). MB_EINVAL when
 * malformed; never reads outside buf[0..len). */
int http_request_head_parse(char *buf, size_t len, http_request_head *out);

/* Match a route pattern ("/v1/config/{key}") against parsed segments. On a
 * match returns 1 and stores the values of the {placeholders}, in order,
 * into vals (borrowed from t); *nvals gets their count. */
int http_pattern_match(const char *pattern, const http_target *t, const char **vals, size_t *nvals);

/* Check an Authorization header against the configured token. Returns 1 if
 * the header is exactly "Bearer <token>" (scheme case-insensitive), 0
 * otherwise. The comparison of the token takes the same time whatever the
 * position of the first difference. `header` may be NULL. */
int http_bearer_ok(const char *header, const char *token);

/* HTTP status for an mb_err code (MB_ENOTFOUND -> 404, ...). */
int http_status_for_err(int code);

/* Reason phrase for a status ("Not Found"); never NULL. */
const char *http_reason(int status);

/* Render {"error":{"code":"MB_E...","message":"..."}}. Returns a malloc'd
 * NUL-terminated string owned by the caller, or NULL when out of memory. */
char *http_error_json(int code, const char *message);

#endif /* MB_NODE_HTTP_PARSE_H */
