/* Unit tests of the HTTP API's pure pieces: request-target parsing, query
 * and number parameters, JSON bodies, the route table, error mapping and
 * rendering, and the bearer-token check. */
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"
#include "node/api.h"
#include "node/http_parse.h"

static void test_target_splits_path_and_decodes_query(void)
{
    http_target t;
    CU_ASSERT_EQUAL_FATAL(
        http_target_parse("/v1/events?type=var.set&limit=5&subject=a%20b+c&flag", &t, NULL), MB_OK);
    CU_ASSERT_EQUAL(t.nsegs, 2);
    CU_ASSERT_STRING_EQUAL(t.segs[0], "v1");
    CU_ASSERT_STRING_EQUAL(t.segs[1], "events");
    CU_ASSERT_EQUAL(t.nquery, 4);
    CU_ASSERT_STRING_EQUAL(http_target_query(&t, "type"), "var.set");
    CU_ASSERT_STRING_EQUAL(http_target_query(&t, "limit"), "5");
    CU_ASSERT_STRING_EQUAL(http_target_query(&t, "subject"), "a b c");
    CU_ASSERT_STRING_EQUAL(http_target_query(&t, "flag"), "");
    CU_ASSERT_PTR_NULL(http_target_query(&t, "absent"));
    http_target_free(&t);
}

static void test_target_keeps_encoded_slash_inside_a_segment(void)
{
    http_target t;
    CU_ASSERT_EQUAL_FATAL(http_target_parse("//v1///config/a%2Fb/", &t, NULL), MB_OK);
    CU_ASSERT_EQUAL(t.nsegs, 3);
    CU_ASSERT_STRING_EQUAL(t.segs[2], "a/b");
    http_target_free(&t);
}

static void test_target_rejects_bad_escapes_nul_and_dot_segments(void)
{
    const char *bad[] = { "/a%",     "/a%4", "/a%zz", "/a%00b", "/a?x=%0a",
                          "/../etc", "v1/x", "/a?=v", "/a%7f" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http_target t;
        mb_error e;
        mb_error_clear(&e);
        CU_ASSERT_EQUAL(http_target_parse(bad[i], &t, &e), MB_EINVAL);
        CU_ASSERT_NOT_EQUAL(e.msg[0], '\0');
        http_target_free(&t);
    }
}

static void test_target_refuses_too_many_parts(void)
{
    char uri[HTTP_URI_MAX + 64];
    strcpy(uri, "/");
    for (int i = 0; i < HTTP_SEGS_MAX + 1; i++)
        strcat(uri, "s/");
    http_target t;
    CU_ASSERT_EQUAL(http_target_parse(uri, &t, NULL), MB_ETOOBIG);
    strcpy(uri, "/x?");
    for (int i = 0; i < HTTP_QUERY_MAX + 1; i++)
        strcat(uri, "k=v&");
    CU_ASSERT_EQUAL(http_target_parse(uri, &t, NULL), MB_ETOOBIG);
    memset(uri, 'a', sizeof(uri) - 1);
    uri[0] = '/';
    uri[sizeof(uri) - 1] = '\0';
    CU_ASSERT_EQUAL(http_target_parse(uri, &t, NULL), MB_ETOOBIG);
}

static void test_numbers_are_strict(void)
{
    uint64_t u = 0;
    int64_t i = 0;
    int b = -1;
    CU_ASSERT_EQUAL(http_parse_u64("18446744073709551615", &u), MB_OK);
    CU_ASSERT_EQUAL(u, UINT64_MAX);
    CU_ASSERT_EQUAL(http_parse_u64("18446744073709551616", &u), MB_ERANGE);
    CU_ASSERT_EQUAL(http_parse_u64("12a", &u), MB_EINVAL);
    CU_ASSERT_EQUAL(http_parse_u64(" 1", &u), MB_EINVAL);
    CU_ASSERT_EQUAL(http_parse_u64("", &u), MB_EINVAL);
    CU_ASSERT_EQUAL(http_parse_u64("-1", &u), MB_EINVAL);
    CU_ASSERT_EQUAL(http_parse_i64("-9223372036854775808", &i), MB_OK);
    CU_ASSERT_EQUAL(i, INT64_MIN);
    CU_ASSERT_EQUAL(http_parse_i64("9223372036854775808", &i), MB_ERANGE);
    CU_ASSERT_EQUAL(http_parse_i64("-", &i), MB_EINVAL);
    CU_ASSERT_EQUAL(http_parse_bool("TRUE", &b), MB_OK);
    CU_ASSERT_EQUAL(b, 1);
    CU_ASSERT_EQUAL(http_parse_bool("off", &b), MB_OK);
    CU_ASSERT_EQUAL(b, 0);
    CU_ASSERT_EQUAL(http_parse_bool("maybe", &b), MB_EINVAL);
    CU_ASSERT_EQUAL(http_parse_content_length("12345678901234567890", &u), MB_EINVAL);
    CU_ASSERT_EQUAL(http_parse_content_length("+5", &u), MB_EINVAL);
}

static void test_json_body_must_be_one_object(void)
{
    cJSON *j = NULL;
    mb_error e;
    const char ok[] = " {\"value\": 3} \n";
    CU_ASSERT_EQUAL(http_json_object_parse(ok, strlen(ok), &j, &e), MB_OK);
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(j, "value"));
    cJSON_Delete(j);
    const char *bad[] = { "{\"value\": 3", "[1]", "3", "{} {}", "{\"a\":}", "" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mb_error_clear(&e);
        CU_ASSERT_EQUAL(http_json_object_parse(bad[i], strlen(bad[i]), &j, &e), MB_EINVAL);
        CU_ASSERT_PTR_NULL(j);
        CU_ASSERT_NOT_EQUAL(e.msg[0], '\0');
    }
    /* Not NUL-terminated: the parser must stop at len. */
    char unterminated[4] = { '{', '}', 'x', 'x' };
    CU_ASSERT_EQUAL(http_json_object_parse(unterminated, 2, &j, NULL), MB_OK);
    cJSON_Delete(j);
}

static void h_dummy(struct node *n, api_call *c)
{
    (void)n;
    (void)c;
}

static const api_route routes_a[] = {
    { "GET", "/v1/config", h_dummy, 0, "config" },
    { "GET", "/v1/config/{key}", h_dummy, 0, "config_get" },
    { "PUT", "/v1/config/{key}", h_dummy, API_BODY, "config_set" },
};
static const api_route routes_b[] = {
    { "GET", "/v1/health", h_dummy, API_NO_AUTH, "health" },
    { "GET", "/v1/config/watch", h_dummy, 0, "config_watch" },
};

static api_match_result match(const api_router *r, const char *method, const char *uri,
                              const api_route **route, const char **vals, size_t *nvals,
                              char *allow)
{
    http_target t;
    CU_ASSERT_EQUAL_FATAL(http_target_parse(uri, &t, NULL), MB_OK);
    api_match_result m = api_router_match(r, method, &t, route, vals, nvals, allow);
    if (m == API_MATCH && *nvals > 0) {
        static char keep[64];
        snprintf(keep, sizeof(keep), "%s", vals[0]);
        vals[0] = keep;
    }
    http_target_free(&t);
    return m;
}

static void test_router_matches_tables_from_several_modules(void)
{
    api_router r = { 0 };
    api_router_add(&r, routes_b, 2);
    api_router_add(&r, routes_a, 3);
    const api_route *route = NULL;
    const char *vals[HTTP_PARAMS_MAX];
    size_t nv = 0;
    char allow[HTTP_ALLOW_MAX];
    CU_ASSERT_EQUAL(match(&r, "GET", "/v1/health", &route, vals, &nv, allow), API_MATCH);
    CU_ASSERT_STRING_EQUAL(route->name, "health");
    CU_ASSERT_EQUAL(match(&r, "HEAD", "/v1/health", &route, vals, &nv, allow), API_MATCH);
    CU_ASSERT_EQUAL(match(&r, "PUT", "/v1/config/log_level?x=1", &route, vals, &nv, allow),
                    API_MATCH);
    CU_ASSERT_STRING_EQUAL(route->name, "config_set");
    CU_ASSERT_EQUAL(nv, 1);
    CU_ASSERT_STRING_EQUAL(vals[0], "log_level");
    /* The literal route registered first wins over the {key} pattern. */
    CU_ASSERT_EQUAL(match(&r, "GET", "/v1/config/watch", &route, vals, &nv, allow), API_MATCH);
    CU_ASSERT_STRING_EQUAL(route->name, "config_watch");
}

static void test_router_tells_404_from_405_with_allow(void)
{
    api_router r = { 0 };
    api_router_add(&r, routes_a, 3);
    const api_route *route = NULL;
    const char *vals[HTTP_PARAMS_MAX];
    size_t nv = 0;
    char allow[HTTP_ALLOW_MAX];
    CU_ASSERT_EQUAL(match(&r, "GET", "/v1/nothing", &route, vals, &nv, allow), API_NO_ROUTE);
    CU_ASSERT_EQUAL(match(&r, "GET", "/v1/config/a/b", &route, vals, &nv, allow), API_NO_ROUTE);
    CU_ASSERT_EQUAL(match(&r, "DELETE", "/v1/config/k", &route, vals, &nv, allow), API_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "GET, HEAD, PUT");
    CU_ASSERT_EQUAL(match(&r, "POST", "/v1/config", &route, vals, &nv, allow), API_BAD_METHOD);
    CU_ASSERT_STRING_EQUAL(allow, "GET, HEAD");
}

static void test_every_error_code_maps_to_an_http_error_status(void)
{
    CU_ASSERT_EQUAL(http_status_for_err(MB_OK), 200);
    CU_ASSERT_EQUAL(http_status_for_err(MB_EINVAL), 400);
    CU_ASSERT_EQUAL(http_status_for_err(MB_ENOTFOUND), 404);
    CU_ASSERT_EQUAL(http_status_for_err(MB_EAUTH), 401);
    CU_ASSERT_EQUAL(http_status_for_err(MB_ETOOBIG), 413);
    CU_ASSERT_EQUAL(http_status_for_err(MB_ECONFLICT), 409);
    CU_ASSERT_EQUAL(http_status_for_err(MB_ENOQUORUM), 503);
    for (int code = 1; code < MB_ERR_COUNT_; code++) {
        int st = http_status_for_err(code);
        CU_ASSERT(st >= 400 && st <= 599);
        CU_ASSERT_PTR_NOT_NULL(http_reason(st));
    }
}

static void test_error_json_has_code_name_and_escaped_message(void)
{
    char *j = http_error_json(MB_ENOTFOUND, "no key \"x\"\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    cJSON *root = cJSON_Parse(j);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    cJSON *e = cJSON_GetObjectItem(root, "error");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(e, "code")->valuestring, "MB_ENOTFOUND");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(e, "message")->valuestring, "no key \"x\"\n");
    cJSON_Delete(root);
    free(j);
    j = http_error_json(MB_EIO, NULL);
    CU_ASSERT_PTR_NOT_NULL(strstr(j, "I/O error"));
    free(j);
}

static void test_bearer_check_accepts_only_the_exact_token(void)
{
    CU_ASSERT_TRUE(http_bearer_ok("Bearer s3cret", "s3cret"));
    CU_ASSERT_TRUE(http_bearer_ok("bearer s3cret", "s3cret"));
    CU_ASSERT_FALSE(http_bearer_ok("Bearer s3cre", "s3cret"));
    CU_ASSERT_FALSE(http_bearer_ok("Bearer s3cretX", "s3cret"));
    CU_ASSERT_FALSE(http_bearer_ok("Bearer S3cret", "s3cret"));
    CU_ASSERT_FALSE(http_bearer_ok("Basic s3cret", "s3cret"));
    CU_ASSERT_FALSE(http_bearer_ok("Bearer ", "s3cret"));
    CU_ASSERT_FALSE(http_bearer_ok(NULL, "s3cret"));
    CU_ASSERT_FALSE(http_bearer_ok("Bearer ", ""));
}

static CU_TestInfo parse_tests[] = {
    { "target_splits_path_and_decodes_query", test_target_splits_path_and_decodes_query },
    { "target_keeps_encoded_slash_inside_a_segment",
      test_target_keeps_encoded_slash_inside_a_segment },
    { "target_rejects_bad_escapes_nul_and_dot_segments",
      test_target_rejects_bad_escapes_nul_and_dot_segments },
    { "target_refuses_too_many_parts", test_target_refuses_too_many_parts },
    { "numbers_are_strict", test_numbers_are_strict },
    { "json_body_must_be_one_object", test_json_body_must_be_one_object },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo route_tests[] = {
    { "router_matches_tables_from_several_modules",
      test_router_matches_tables_from_several_modules },
    { "router_tells_404_from_405_with_allow", test_router_tells_404_from_405_with_allow },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo error_tests[] = {
    { "every_error_code_maps_to_an_http_error_status",
      test_every_error_code_maps_to_an_http_error_status },
    { "error_json_has_code_name_and_escaped_message",
      test_error_json_has_code_name_and_escaped_message },
    { "bearer_check_accepts_only_the_exact_token", test_bearer_check_accepts_only_the_exact_token },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "parse", NULL, NULL, NULL, NULL, parse_tests },
    { "route", NULL, NULL, NULL, NULL, route_tests },
    { "errors", NULL, NULL, NULL, NULL, error_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
