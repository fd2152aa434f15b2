/* Tests of node/core logging: level filtering (without evaluating
 * arguments), JSON lines that parse, text quoting, truncation, runtime
 * changes, files and reopen, and lines that never interleave. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"
#include "node/core/log.h"

/* A sink that keeps every line. */
struct capture {
    char *lines[64];
    size_t n;
};

static void capture_cb(void *arg, nc_log_level level, const char *line, size_t len)
{
    (void)level;
    struct capture *c = arg;
    if (c->n < 64)
        c->lines[c->n++] = strndup(line, len);
}

static void capture_free(struct capture *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->lines[i]);
    c->n = 0;
}

static nc_log *open_capture(struct capture *c, nc_log_level level, nc_log_format format)
{
    memset(c, 0, sizeof(*c));
    nc_log_options o = { .level = level, .format = format, .sink = capture_cb, .sink_arg = c };
    nc_log *log = NULL;
    CU_ASSERT_EQUAL_FATAL(nc_log_open(&log, &o, NULL), MB_OK);
    return log;
}

static int evaluated;

static int side_effect(void)
{
    evaluated++;
    return 42;
}

static void test_disabled_level_does_not_evaluate_arguments(void)
{
    struct capture c;
    nc_log *log = open_capture(&c, NC_LOG_INFO, NC_LOG_FORMAT_TEXT);
    evaluated = 0;
    NC_DEBUG(log, "test", "value %d", side_effect());
    NC_TRACE(log, "test", "value %d", side_effect());
    NC_LOGKV(log, NC_LOG_DEBUG, "test", "kv", NC_F_I64("x", side_effect()));
    CU_ASSERT_EQUAL(evaluated, 0);
    CU_ASSERT_EQUAL(c.n, 0);
    NC_INFO(log, "test", "value %d", side_effect());
    NC_LOGKV(log, NC_LOG_WARN, "test", "kv", NC_F_I64("x", side_effect()));
    CU_ASSERT_EQUAL(evaluated, 2);
    CU_ASSERT_EQUAL(c.n, 2);
    /* A NULL logger discards everything and evaluates nothing. */
    NC_ERROR((nc_log *)NULL, "test", "value %d", side_effect());
    CU_ASSERT_EQUAL(evaluated, 2);
    nc_log_close(log);
    capture_free(&c);
}

static void test_level_change_at_runtime_takes_effect(void)
{
    struct capture c;
    nc_log *log = open_capture(&c, NC_LOG_WARN, NC_LOG_FORMAT_TEXT);
    NC_INFO(log, "t", "dropped");
    CU_ASSERT_EQUAL(c.n, 0);
    nc_log_set_level(log, NC_LOG_DEBUG);
    CU_ASSERT_EQUAL(nc_log_get_level(log), NC_LOG_DEBUG);
    NC_DEBUG(log, "t", "kept");
    CU_ASSERT_EQUAL(c.n, 1);
    nc_log_set_level(log, NC_LOG_OFF);
    NC_ERROR(log, "t", "dropped too");
    CU_ASSERT_EQUAL(c.n, 1);
    nc_log_close(log);
    capture_free(&c);
}

static void test_json_line_parses_with_fields_in_order(void)
{
    struct capture c;
    nc_log *log = open_capture(&c, NC_LOG_TRACE, NC_LOG_FORMAT_JSON);
    NC_LOGKV(log, NC_LOG_WARN, "raft", "became \"leader\"\n", NC_F_U64("term", 7),
             NC_F_STR("addr", "10.0.0.1:7702"), NC_F_I64("delta", -3), NC_F_F64("ratio", 0.25),
             NC_F_BOOL("ok", true), NC_F_STR("weird", "a\tb\x01\"\\ é"), NC_F_STR("none", NULL),
             NC_F_F64("nan", 0.0 / 0.0));
    CU_ASSERT_EQUAL_FATAL(c.n, 1);
    size_t len = strlen(c.lines[0]);
    CU_ASSERT_EQUAL(c.lines[0][len - 1], '\n');
    CU_ASSERT_PTR_NULL(strchr(c.lines[0], '\n') != c.lines[0] + len - 1 ? "x" : NULL);
    cJSON *j = cJSON_Parse(c.lines[0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "level")->valuestring, "warn");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "comp")->valuestring, "raft");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "msg")->valuestring, "became \"leader\"\n");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(j, "term")->valuedouble, 7);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "addr")->valuestring, "10.0.0.1:7702");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(j, "delta")->valuedouble, -3);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(j, "ratio")->valuedouble, 0.25);
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "weird")->valuestring, "a\tb\x01\"\\ é");
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(j, "none")));
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItem(j, "nan")));
    const char *ts = cJSON_GetObjectItem(j, "ts")->valuestring;
    CU_ASSERT_EQUAL(strlen(ts), strlen("2026-11-25T21:51:28.123456Z"));
    CU_ASSERT_EQUAL(ts[strlen(ts) - 1], 'Z');
    /* Field order is call order, after the fixed fields. */
    const char *order[] = { "ts", "level", "comp", "msg", "term", "addr" };
    cJSON *it = j->child;
    for (size_t i = 0; i < 6; i++, it = it->next)
        CU_ASSERT_STRING_EQUAL(it->string, order[i]);
    cJSON_Delete(j);
    nc_log_close(log);
    capture_free(&c);
}

static void test_text_line_quotes_values_that_need_it(void)
{
    struct capture c;
    nc_log *log = open_capture(&c, NC_LOG_INFO, NC_LOG_FORMAT_TEXT);
    NC_LOGKV(log, NC_LOG_INFO, "http", "request done", NC_F_STR("path", "/v1/vars"),
             NC_F_STR("agent", "two words"), NC_F_I64("status", 200), NC_F_STR("empty", ""));
    CU_ASSERT_EQUAL_FATAL(c.n, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.lines[0], " INFO  http: request done path=/v1/vars "
                                              "agent=\"two words\" status=200 empty=\"\"\n"));
    nc_log_close(log);
    capture_free(&c);
}

static void test_long_json_line_is_truncated_and_stays_valid(void)
{
    struct capture c;
    nc_log *log = open_capture(&c, NC_LOG_INFO, NC_LOG_FORMAT_JSON);
    size_t big = 3 * NC_LOG_LINE_MAX;
    char *s = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        s[i] = (i % 7 == 0) ? '"' : 'a'; /* escapes double the size */
    s[big] = '\0';
    NC_LOGKV(log, NC_LOG_INFO, "t", "short", NC_F_STR("big", s));
    NC_INFO(log, "t", "%s", s);
    /* A cut in the middle of a UTF-8 character must not split it. */
    for (size_t i = 0; i + 1 < big; i += 2) {
        s[i] = (char)0xc3;
        s[i + 1] = (char)0xa9;
    }
    NC_INFO(log, "t", "%s", s);
    CU_ASSERT_EQUAL_FATAL(c.n, 3);
    for (size_t i = 0; i < c.n; i++) {
        CU_ASSERT(strlen(c.lines[i]) <= NC_LOG_LINE_MAX);
        cJSON *j = cJSON_Parse(c.lines[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(j, "truncated")));
        const char *msg = cJSON_GetObjectItem(j, "msg")->valuestring;
        if (i == 2) {
            size_t ml = strlen(msg);
            CU_ASSERT(ml % 2 == 0 && ml > 1000);
        }
        cJSON_Delete(j);
    }
    CU_ASSERT_EQUAL(nc_log_truncated(log), 3);
    free(s);
    nc_log_close(log);
    capture_free(&c);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

static void test_file_destination_and_reopen(void)
{
    char dir[256], a[300], b[300];
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "log"), 0);
    snprintf(a, sizeof(a), "%s/a.log", dir);
    snprintf(b, sizeof(b), "%s/b.log", dir);
    nc_log_options o = { .level = NC_LOG_INFO, .format = NC_LOG_FORMAT_TEXT, .path = a };
    nc_log *log;
    CU_ASSERT_EQUAL_FATAL(nc_log_open(&log, &o, NULL), MB_OK);
    NC_INFO(log, "t", "first");
    CU_ASSERT_EQUAL(nc_log_reopen(log, b, NULL), MB_OK);
    nc_log_set_format(log, NC_LOG_FORMAT_JSON);
    NC_INFO(log, "t", "second");
    char *ta = slurp(a), *tb = slurp(b);
    CU_ASSERT_PTR_NOT_NULL(strstr(ta, "t: first\n"));
    CU_ASSERT_PTR_NULL(strstr(ta, "second"));
    CU_ASSERT_PTR_NOT_NULL(strstr(tb, "\"msg\":\"second\""));
    free(ta);
    free(tb);
    mb_error e;
    char bad[300];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/x.log", dir);
    CU_ASSERT_EQUAL(nc_log_reopen(log, bad, &e), MB_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, bad));
    NC_INFO(log, "t", "third"); /* still goes to b */
    tb = slurp(b);
    CU_ASSERT_PTR_NOT_NULL(strstr(tb, "third"));
    free(tb);
    nc_log_close(log);
    o.path = bad;
    CU_ASSERT_EQUAL(nc_log_open(&log, &o, &e), MB_EIO);
    mb_test_rmtree(dir);
}

static void test_level_and_format_names_parse(void)
{
    nc_log_level l;
    nc_log_format f;
    CU_ASSERT_EQUAL(nc_log_level_parse("DEBUG", &l), MB_OK);
    CU_ASSERT_EQUAL(l, NC_LOG_DEBUG);
    CU_ASSERT_EQUAL(nc_log_level_parse("warning", &l), MB_OK);
    CU_ASSERT_EQUAL(l, NC_LOG_WARN);
    CU_ASSERT_EQUAL(nc_log_level_parse("verbose", &l), MB_EINVAL);
    CU_ASSERT_STRING_EQUAL(nc_log_level_name(NC_LOG_ERROR), "error");
    CU_ASSERT_EQUAL(nc_log_format_parse("json", &f), MB_OK);
    CU_ASSERT_EQUAL(f, NC_LOG_FORMAT_JSON);
    CU_ASSERT_EQUAL(nc_log_format_parse("xml", &f), MB_EINVAL);
}

#define WRITERS          4
#define LINES_PER_WRITER 2000

struct writer_arg {
    nc_log *log;
    int id;
};

static void *writer_main(void *p)
{
    struct writer_arg *w = p;
    char pad[200];
    memset(pad, 'a' + w->id, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < LINES_PER_WRITER; i++)
        NC_LOGKV(w->log, NC_LOG_INFO, "w", "line", NC_F_I64("writer", w->id), NC_F_I64("i", i),
                 NC_F_STR("pad", pad));
    return NULL;
}

static void test_concurrent_lines_never_interleave(void)
{
    char dir[256], path[300];
    CU_ASSERT_EQUAL_FATAL(mb_test_mkdtemp(dir, sizeof(dir), "log"), 0);
    snprintf(path, sizeof(path), "%s/c.log", dir);
    nc_log_options o = { .level = NC_LOG_INFO, .format = NC_LOG_FORMAT_JSON, .path = path };
    nc_log *log;
    CU_ASSERT_EQUAL_FATAL(nc_log_open(&log, &o, NULL), MB_OK);
    pthread_t t[WRITERS];
    struct writer_arg args[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        args[i] = (struct writer_arg){ log, i };
        pthread_create(&t[i], NULL, writer_main, &args[i]);
    }
    for (int i = 0; i < WRITERS; i++)
        pthread_join(t[i], NULL);
    nc_log_close(log);
    char *text = slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    int next[WRITERS] = { 0 };
    int lines = 0, bad = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lines++;
        cJSON *j = cJSON_Parse(line);
        if (j == NULL) {
            bad++;
            continue;
        }
        int w = (int)cJSON_GetObjectItem(j, "writer")->valuedouble;
        int i = (int)cJSON_GetObjectItem(j, "i")->valuedouble;
        const char *pad = cJSON_GetObjectItem(j, "pad")->valuestring;
        if (w < 0 || w >= WRITERS || i != next[w] || strlen(pad) != 199 || pad[0] != 'a' + w)
            bad++;
        else
            next[w]++;
        cJSON_Delete(j);
    }
    CU_ASSERT_EQUAL(lines, WRITERS * LINES_PER_WRITER);
    CU_ASSERT_EQUAL(bad, 0);
    free(text);
    mb_test_rmtree(dir);
}

static CU_TestInfo log_tests[] = {
    { "disabled_level_does_not_evaluate_arguments",
      test_disabled_level_does_not_evaluate_arguments },
    { "level_change_at_runtime_takes_effect", test_level_change_at_runtime_takes_effect },
    { "json_line_parses_with_fields_in_order", test_json_line_parses_with_fields_in_order },
    { "text_line_quotes_values_that_need_it", test_text_line_quotes_values_that_need_it },
    { "long_json_line_is_truncated_and_stays_valid",
      test_long_json_line_is_truncated_and_stays_valid },
    { "file_destination_and_reopen", test_file_destination_and_reopen },
    { "level_and_format_names_parse", test_level_and_format_names_parse },
    { "concurrent_lines_never_interleave", test_concurrent_lines_never_interleave },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "log", NULL, NULL, NULL, NULL, log_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
