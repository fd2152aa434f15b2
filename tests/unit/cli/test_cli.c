/* Unit tests of the mabeam CLI's pure pieces: global and subcommand option
 * parsing, addresses, query building, the HTTP response parser and the
 * subcommand table. */
#include <string.h>

#include "mb_test.h"
#include "node/cli/cli.h"

static int globals(int argc, char **argv, const char *env_addr, const char *env_token, cli_ctx *ctx,
                   int *first)
{
    int help, version;
    mb_error e;
    mb_error_clear(&e);
    return cli_parse_globals(argc, argv, env_addr, env_token, ctx, first, &help, &version, &e);
}

static void test_globals_flags_override_environment(void)
{
    cli_ctx ctx;
    int first;
    char *argv[] = { "mabeam", "--addr", "10.1.2.3:9000", "--token=abc",
                     "--json", "status", "--json" };
    CU_ASSERT_EQUAL(globals(7, argv, "127.0.0.5:1", "envtok", &ctx, &first), CLI_OK);
    CU_ASSERT_STRING_EQUAL(ctx.host, "10.1.2.3");
    CU_ASSERT_STRING_EQUAL(ctx.port, "9000");
    CU_ASSERT_STRING_EQUAL(ctx.token, "abc");
    CU_ASSERT_EQUAL(ctx.json, 1);
    CU_ASSERT_EQUAL(first, 5);
}

static void test_globals_default_from_environment_then_builtin(void)
{
    cli_ctx ctx;
    int first;
    char *argv[] = { "mabeam", "status" };
    CU_ASSERT_EQUAL(globals(2, argv, "http://node1:7800/", "t", &ctx, &first), CLI_OK);
    CU_ASSERT_STRING_EQUAL(ctx.host, "node1");
    CU_ASSERT_STRING_EQUAL(ctx.port, "7800");
    CU_ASSERT_STRING_EQUAL(ctx.token, "t");
    CU_ASSERT_EQUAL(globals(2, argv, NULL, "", &ctx, &first), CLI_OK);
    CU_ASSERT_STRING_EQUAL(ctx.host, "127.0.0.1");
    CU_ASSERT_STRING_EQUAL(ctx.port, "7700");
    CU_ASSERT_PTR_NULL(ctx.token);
    CU_ASSERT_EQUAL(first, 1);
}

static void test_globals_usage_errors(void)
{
    cli_ctx ctx;
    int first;
    char *a1[] = { "mabeam", "--addr" };
    CU_ASSERT_EQUAL(globals(2, a1, NULL, NULL, &ctx, &first), CLI_USAGE);
    char *a2[] = { "mabeam", "--bogus", "status" };
    CU_ASSERT_EQUAL(globals(3, a2, NULL, NULL, &ctx, &first), CLI_USAGE);
    char *a3[] = { "mabeam", "--addr=host:99999x", "status" };
    CU_ASSERT_EQUAL(globals(3, a3, NULL, NULL, &ctx, &first), CLI_USAGE);
    char *a4[] = { "mabeam", "status" };
    CU_ASSERT_EQUAL(globals(2, a4, "h:", NULL, &ctx, &first), CLI_USAGE);
}

static void test_addresses_with_ipv6_and_default_port(void)
{
    cli_ctx ctx;
    CU_ASSERT_EQUAL(cli_set_addr(&ctx, "[::1]:7701", NULL), MB_OK);
    CU_ASSERT_STRING_EQUAL(ctx.host, "::1");
    CU_ASSERT_STRING_EQUAL(ctx.port, "7701");
    CU_ASSERT_EQUAL(cli_set_addr(&ctx, "localhost", NULL), MB_OK);
    CU_ASSERT_STRING_EQUAL(ctx.port, "7700");
    CU_ASSERT_EQUAL(cli_set_addr(&ctx, "[::1", NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(cli_set_addr(&ctx, "", NULL), MB_EINVAL);
}

static void test_subcommand_options_values_flags_and_positionals(void)
{
    const char *limit = NULL, *all = NULL, *type = NULL;
    const cli_opt opts[] = { { "limit", 1, &limit }, { "all", 0, &all }, { "type", 1, &type } };
    const char *pos[2];
    size_t npos;
    int help;
    mb_error e;
    char *argv[] = { "events", "--limit", "5", "x", "--all", "--type=a.b", "--", "--y" };
    CU_ASSERT_EQUAL(cli_parse_opts(8, argv, opts, 3, pos, 2, &npos, &help, &e), CLI_OK);
    CU_ASSERT_STRING_EQUAL(limit, "5");
    CU_ASSERT_STRING_EQUAL(all, "1");
    CU_ASSERT_STRING_EQUAL(type, "a.b");
    CU_ASSERT_EQUAL(npos, 2);
    CU_ASSERT_STRING_EQUAL(pos[0], "x");
    CU_ASSERT_STRING_EQUAL(pos[1], "--y");
    CU_ASSERT_EQUAL(help, 0);

    char *bad1[] = { "events", "--limit" };
    CU_ASSERT_EQUAL(cli_parse_opts(2, bad1, opts, 3, pos, 2, &npos, &help, &e), CLI_USAGE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "needs a value"));
    char *bad2[] = { "events", "--nope" };
    CU_ASSERT_EQUAL(cli_parse_opts(2, bad2, opts, 3, pos, 2, &npos, &help, &e), CLI_USAGE);
    char *bad3[] = { "events", "--all=yes" };
    CU_ASSERT_EQUAL(cli_parse_opts(2, bad3, opts, 3, pos, 2, &npos, &help, &e), CLI_USAGE);
    char *bad4[] = { "events", "a", "b", "c" };
    CU_ASSERT_EQUAL(cli_parse_opts(4, bad4, opts, 3, pos, 2, &npos, &help, &e), CLI_USAGE);
    char *h[] = { "events", "-h" };
    CU_ASSERT_EQUAL(cli_parse_opts(2, h, opts, 3, pos, 2, &npos, &help, &e), CLI_OK);
    CU_ASSERT_EQUAL(help, 1);
}

static void test_query_builder_percent_encodes_values(void)
{
    char buf[64] = "/v1/events";
    CU_ASSERT_EQUAL(cli_query_add(buf, sizeof(buf), "type", "config.changed"), MB_OK);
    CU_ASSERT_EQUAL(cli_query_add(buf, sizeof(buf), "subject", "a b&c"), MB_OK);
    CU_ASSERT_STRING_EQUAL(buf, "/v1/events?type=config.changed&subject=a%20b%26c");
    char small[16] = "/v1/events";
    CU_ASSERT_EQUAL(cli_query_add(small, sizeof(small), "type", "x"), MB_ETOOBIG);
    CU_ASSERT_STRING_EQUAL(small, "/v1/events");
}

static void test_response_parser_content_length_and_chunked(void)
{
    char r1[] = "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                "Content-Length: 2\r\n\r\n{}garbage";
    int st;
    size_t off, len;
    CU_ASSERT_EQUAL(cli_http_parse_response(r1, strlen(r1), &st, &off, &len), MB_OK);
    CU_ASSERT_EQUAL(st, 404);
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT_EQUAL(memcmp(r1 + off, "{}", 2), 0);

    char r2[] =
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    CU_ASSERT_EQUAL(cli_http_parse_response(r2, strlen(r2), &st, &off, &len), MB_OK);
    CU_ASSERT_EQUAL(len, 5);
    CU_ASSERT_EQUAL(memcmp(r2 + off, "abcde", 5), 0);

    char r3[] = "HTTP/1.0 200 OK\n\nuntil close";
    CU_ASSERT_EQUAL(cli_http_parse_response(r3, strlen(r3), &st, &off, &len), MB_OK);
    CU_ASSERT_EQUAL(len, strlen("until close"));
}

static void test_response_parser_rejects_garbage(void)
{
    const char *bad[] = {
        "",
        "HTTP/1.1 200 OK\r\n",                                             /* no end of headers */
        "SMTP 220 hello\r\n\r\n",                                          /* not HTTP */
        "HTTP/1.1 2x0 OK\r\n\r\n",                                         /* bad status */
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",              /* truncated */
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",                   /* negative */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffff\r\nab", /* chunk too long */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",     /* bad chunk size */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[256];
        size_t n = strlen(bad[i]);
        memcpy(buf, bad[i], n + 1);
        int st;
        size_t off, len;
        CU_ASSERT_EQUAL(cli_http_parse_response(buf, n, &st, &off, &len), MB_EPROTO);
    }
}

static void test_command_table_has_the_foundation_commands_with_help(void)
{
    const char *want[] = { "status", "events", "config", "metrics" };
    for (size_t i = 0; i < 4; i++) {
        const cli_cmd *c = cli_command_find(want[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_PTR_NOT_NULL(c->help);
        CU_ASSERT_PTR_NOT_NULL(c->run);
    }
    CU_ASSERT_PTR_NULL(cli_command_find("nope"));
}

static void test_subcommands_refuse_bad_usage_with_exit_2(void)
{
    cli_ctx ctx = { .out = stdout, .err = fopen("/dev/null", "w") };
    cli_set_addr(&ctx, "127.0.0.1:1", NULL);
    char *a1[] = { "config" };
    CU_ASSERT_EQUAL(cli_command_find("config")->run(&ctx, 1, a1), CLI_USAGE);
    char *a2[] = { "config", "set", "log_level" };
    CU_ASSERT_EQUAL(cli_command_find("config")->run(&ctx, 3, a2), CLI_USAGE);
    char *a3[] = { "config", "watch", "--count", "0" };
    CU_ASSERT_EQUAL(cli_command_find("config")->run(&ctx, 4, a3), CLI_USAGE);
    char *a4[] = { "events", "--limit" };
    CU_ASSERT_EQUAL(cli_command_find("events")->run(&ctx, 2, a4), CLI_USAGE);
    char *a5[] = { "status", "extra" };
    CU_ASSERT_EQUAL(cli_command_find("status")->run(&ctx, 2, a5), CLI_USAGE);
    /* Well-formed but nobody listens on port 1: an error, not usage. */
    char *a6[] = { "status" };
    CU_ASSERT_EQUAL(cli_command_find("status")->run(&ctx, 1, a6), CLI_ERROR);
    fclose(ctx.err);
}

static void test_times_as_ms_durations_ago_and_rfc3339(void)
{
    int64_t ms = 0;
    const int64_t now = 1795644542000; /* 2026-11-25T22:09:02Z */
    CU_ASSERT_EQUAL(cli_parse_time("1795644542000", now, &ms), MB_OK);
    CU_ASSERT_EQUAL(ms, 1795644542000);
    CU_ASSERT_EQUAL(cli_parse_time("10m", now, &ms), MB_OK);
    CU_ASSERT_EQUAL(ms, now - 600000);
    CU_ASSERT_EQUAL(cli_parse_time("500ms", now, &ms), MB_OK);
    CU_ASSERT_EQUAL(ms, now - 500);
    CU_ASSERT_EQUAL(cli_parse_time("1d", now, &ms), MB_OK);
    CU_ASSERT_EQUAL(ms, now - 86400000);
    CU_ASSERT_EQUAL(cli_parse_time("2026-11-25T22:09:02Z", now, &ms), MB_OK);
    CU_ASSERT_EQUAL(ms, now);
    CU_ASSERT_EQUAL(cli_parse_time("2026-11-25T22:09:02.25Z", now, &ms), MB_OK);
    CU_ASSERT_EQUAL(ms, now + 250);
    CU_ASSERT_EQUAL(cli_parse_time("2026-11-25T23:09:02+01:00", now, &ms), MB_OK);
    CU_ASSERT_EQUAL(ms, now);
    CU_ASSERT_EQUAL(cli_parse_time("1970-01-01T00:00:00Z", now, &ms), MB_OK);
    CU_ASSERT_EQUAL(ms, 0);
    CU_ASSERT_EQUAL(cli_parse_time("2000-02-29T00:00:00Z", now, &ms), MB_OK);
    CU_ASSERT_EQUAL(ms, 951782400000);
    const char *bad[] = { "",
                          "10x",
                          "m",
                          "2026-13-01T00:00:00Z",
                          "2026-11-25T22:09:02",
                          "2026-11-25T22:09:02Zjunk",
                          "2026-11-25",
                          "2026-11-25T22:09:02.Z" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CU_ASSERT_EQUAL(cli_parse_time(bad[i], now, &ms), MB_EINVAL);
}

static CU_TestInfo args_tests[] = {
    { "times_as_ms_durations_ago_and_rfc3339", test_times_as_ms_durations_ago_and_rfc3339 },
    { "globals_flags_override_environment", test_globals_flags_override_environment },
    { "globals_default_from_environment_then_builtin",
      test_globals_default_from_environment_then_builtin },
    { "globals_usage_errors", test_globals_usage_errors },
    { "addresses_with_ipv6_and_default_port", test_addresses_with_ipv6_and_default_port },
    { "subcommand_options_values_flags_and_positionals",
      test_subcommand_options_values_flags_and_positionals },
    { "query_builder_percent_encodes_values", test_query_builder_percent_encodes_values },
    { "command_table_has_the_foundation_commands_with_help",
      test_command_table_has_the_foundation_commands_with_help },
    { "subcommands_refuse_bad_usage_with_exit_2", test_subcommands_refuse_bad_usage_with_exit_2 },
    CU_TEST_INFO_NULL,
};

static CU_TestInfo http_tests[] = {
    { "response_parser_content_length_and_chunked",
      test_response_parser_content_length_and_chunked },
    { "response_parser_rejects_garbage", test_response_parser_rejects_garbage },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "args", NULL, NULL, NULL, NULL, args_tests },
    { "http", NULL, NULL, NULL, NULL, http_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
