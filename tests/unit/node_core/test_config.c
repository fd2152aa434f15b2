/* Tests of node/core configuration: source precedence, every validation
 * error message, the file syntax, reload semantics, runtime set, the change
 * log, subscribers (ordering, exactly once, under concurrent writers),
 * waiting for a version, and the JSON renderings with secrets redacted. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "mb_test.h"
#include "node/core/config.h"

static char tmpdir[256];
static char data_dir[300];
static char cfg_path[300];

static int suite_init(void)
{
    if (mb_test_mkdtemp(tmpdir, sizeof(tmpdir), "config") != 0)
        return -1;
    snprintf(data_dir, sizeof(data_dir), "%s/data", tmpdir);
    snprintf(cfg_path, sizeof(cfg_path), "%s/mabeam.conf", tmpdir);
    return 0;
}

static int suite_clean(void)
{
    mb_test_rmtree(tmpdir);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

/* Load with the file text (NULL: no file), env list and flags; the data
 * directory is always the suite's own unless a flag or the file sets it. */
static int load(nc_config **out, const char *file_text, char **env, int argc, char **argv,
                mb_error *err)
{
    static char dd_env[400];
    snprintf(dd_env, sizeof(dd_env), "MABEAM_DATA_DIR=%s", data_dir);
    char *envv[32];
    int n = 0;
    envv[n++] = dd_env;
    for (int i = 0; env != NULL && env[i] != NULL && n < 31; i++)
        envv[n++] = env[i];
    envv[n] = NULL;
    if (file_text != NULL)
        write_file(cfg_path, file_text);
    CU_ASSERT_EQUAL_FATAL(nc_config_new(out, NULL), MB_OK);
    nc_config_sources src = {
        .file_path = file_text ? cfg_path : NULL, .envp = envv, .argc = argc, .argv = argv
    };
    mb_error_clear(err);
    return nc_config_load(*out, &src, err);
}

static char *text_of(nc_config *cfg, nc_config_id id)
{
    static char buf[512];
    nc_config_get_text(cfg, id, buf, sizeof(buf));
    return buf;
}

static void test_defaults_apply_when_no_source_sets_a_key(void)
{
    nc_config *cfg;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(load(&cfg, NULL, NULL, 0, NULL, &e), MB_OK);
    CU_ASSERT_STRING_EQUAL(text_of(cfg, NC_CFG_HTTP_ADDRESS), "127.0.0.1:7700");
    CU_ASSERT_EQUAL(nc_config_source_of(cfg, NC_CFG_HTTP_ADDRESS), NC_CS_DEFAULT);
    CU_ASSERT_EQUAL(nc_config_int(cfg, NC_CFG_NODE_ID), 1);
    CU_ASSERT_EQUAL(nc_config_duration_ms(cfg, NC_CFG_FAILURE_TIMEOUT), 600);
    CU_ASSERT_EQUAL(nc_config_duration_ms(cfg, NC_CFG_UNRESPONSIVE_TIMEOUT), 5000);
    CU_ASSERT_EQUAL(nc_config_size_bytes(cfg, NC_CFG_HTTP_MAX_BODY), 1u << 20);
    CU_ASSERT_STRING_EQUAL(nc_config_enum_name(cfg, NC_CFG_DURABILITY), "fast");
    CU_ASSERT_EQUAL(nc_config_version(cfg), 1);
    nc_config_free(cfg);
}

static void test_precedence_is_default_file_env_flag(void)
{
    const char *file = "# node config\n"
                       "node_id = 2\n"
                       "log_level = debug\n"
                       "http_address = 127.0.0.1:8000\n"
                       "agent_workers = 3\n";
    char *env[] = { "MABEAM_LOG_LEVEL=warn", "MABEAM_HTTP_ADDRESS=127.0.0.1:8001", NULL };
    char *argv[] = { "--http-address=127.0.0.1:8002", NULL };
    nc_config *cfg;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(load(&cfg, file, env, 1, argv, &e), MB_OK);
    /* file only */
    CU_ASSERT_EQUAL(nc_config_int(cfg, NC_CFG_NODE_ID), 2);
    CU_ASSERT_EQUAL(nc_config_source_of(cfg, NC_CFG_NODE_ID), NC_CS_FILE);
    /* file < env */
    CU_ASSERT_STRING_EQUAL(nc_config_enum_name(cfg, NC_CFG_LOG_LEVEL), "warn");
    CU_ASSERT_EQUAL(nc_config_source_of(cfg, NC_CFG_LOG_LEVEL), NC_CS_ENV);
    /* file < env < flag */
    CU_ASSERT_STRING_EQUAL(text_of(cfg, NC_CFG_HTTP_ADDRESS), "127.0.0.1:8002");
    CU_ASSERT_EQUAL(nc_config_source_of(cfg, NC_CFG_HTTP_ADDRESS), NC_CS_FLAG);
    /* default */
    CU_ASSERT_STRING_EQUAL(text_of(cfg, NC_CFG_MESH_ADDRESS), "127.0.0.1:7701");
    CU_ASSERT_EQUAL(nc_config_int(cfg, NC_CFG_AGENT_SPIN_US), 50);
    nc_config_free(cfg);
}

static void test_config_file_is_named_by_flag_or_env(void)
{
    char other[300], flag[320], env_path[320];
    snprintf(other, sizeof(other), "%s/other.conf", tmpdir);
    write_file(other, "node_id = 9\n");
    snprintf(env_path, sizeof(env_path), "MABEAM_CONFIG=%s", other);
    nc_config *cfg;
    mb_error e;
    char *env[] = { env_path, NULL };
    CU_ASSERT_EQUAL_FATAL(load(&cfg, "node_id = 5\n", env, 0, NULL, &e), MB_OK);
    CU_ASSERT_EQUAL(nc_config_int(cfg, NC_CFG_NODE_ID), 9);
    nc_config_free(cfg);
    snprintf(flag, sizeof(flag), "--config=%s", other);
    char *argv[] = { flag, "--log_level=error", NULL };
    CU_ASSERT_EQUAL_FATAL(load(&cfg, "node_id = 5\n", NULL, 2, argv, &e), MB_OK);
    CU_ASSERT_EQUAL(nc_config_int(cfg, NC_CFG_NODE_ID), 9);
    CU_ASSERT_STRING_EQUAL(nc_config_enum_name(cfg, NC_CFG_LOG_LEVEL), "error");
    nc_config_free(cfg);
}

static void test_file_syntax_quotes_comments_and_escapes(void)
{
    const char *file = "  # leading comment\n"
                       "\n"
                       "node_name = node one   # trailing comment\n"
                       "api_token = \"tok#en \\\"x\\\" \\\\\"  # quoted\n"
                       "cluster_secret=s3cr#t\r\n"
                       "seeds = 10.0.0.1:7701, 10.0.0.2:7701\n";
    nc_config *cfg;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(load(&cfg, file, NULL, 0, NULL, &e), MB_OK);
    CU_ASSERT_STRING_EQUAL(text_of(cfg, NC_CFG_NODE_NAME), "node one");
    CU_ASSERT_STRING_EQUAL(text_of(cfg, NC_CFG_API_TOKEN), "tok#en \"x\" \\");
    CU_ASSERT_STRING_EQUAL(text_of(cfg, NC_CFG_CLUSTER_SECRET), "s3cr#t");
    CU_ASSERT_STRING_EQUAL(text_of(cfg, NC_CFG_SEEDS), "10.0.0.1:7701, 10.0.0.2:7701");
    nc_config_free(cfg);
}

/* Expect load to fail with `code` and a message containing every needle. */
static void expect_error(const char *file, char **env, int argc, char **argv, int code,
                         const char *needle1, const char *needle2)
{
    nc_config *cfg;
    mb_error e;
    int rc = load(&cfg, file, env, argc, argv, &e);
    CU_ASSERT_EQUAL(rc, code);
    if (rc != code)
        fprintf(stderr, "\n  got %s: %s\n", mb_errname(rc), e.msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, needle1));
    if (needle2 != NULL)
        CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, needle2));
    if (strstr(e.msg, needle1) == NULL || (needle2 && strstr(e.msg, needle2) == NULL))
        fprintf(stderr, "\n  message was: %s\n", e.msg);
    /* All or nothing: the config still holds the defaults. */
    CU_ASSERT_EQUAL(nc_config_source_of(cfg, NC_CFG_NODE_ID), NC_CS_DEFAULT);
    nc_config_free(cfg);
}

static void test_unknown_key_errors_suggest_the_closest_key(void)
{
    expect_error("node_id = 3\nhtp_address = 1.2.3.4:5\n", NULL, 0, NULL, MB_EINVAL,
                 "line 2: unknown key 'htp_address'", "did you mean 'http_address'?");
    char *argv[] = { "--log-levl=debug", NULL };
    expect_error(NULL, NULL, 1, argv, MB_EINVAL, "flag --log-levl: unknown key",
                 "did you mean 'log_level'?");
    char *argv2[] = { "--frobnicate=1", NULL };
    expect_error(NULL, NULL, 1, argv2, MB_EINVAL, "unknown key 'frobnicate'", NULL);
    char *env[] = { "MABEAM_DATA_DIRR=/x", NULL };
    expect_error(NULL, env, 0, NULL, MB_EINVAL, "MABEAM_DATA_DIRR",
                 "did you mean MABEAM_DATA_DIR?");
    /* Unrelated MABEAM_ variables (used by the CLI, tests) are ignored. */
    nc_config *cfg;
    mb_error e;
    char *env_ok[] = { "MABEAM_URL=http://127.0.0.1:7700", "MABEAM_TEST_QUIET=1", NULL };
    CU_ASSERT_EQUAL(load(&cfg, NULL, env_ok, 0, NULL, &e), MB_OK);
    nc_config_free(cfg);
}

static void test_bad_values_are_refused_with_key_and_reason(void)
{
    expect_error("http_address = 127.0.0.1:99999\n", NULL, 0, NULL, MB_EINVAL, "key 'http_address'",
                 "bad port '99999'");
    expect_error("mesh_address = 127.0.0.1:0\n", NULL, 0, NULL, MB_EINVAL, "key 'mesh_address'",
                 "bad port '0'");
    expect_error("mesh_address = 127.0.0.1\n", NULL, 0, NULL, MB_EINVAL, "key 'mesh_address'",
                 "missing port");
    expect_error("mesh_address = ::1:80\n", NULL, 0, NULL, MB_EINVAL, "key 'mesh_address'",
                 "brackets");
    expect_error("raft_address = localhost:7702\n", NULL, 0, NULL, MB_EINVAL, "key 'raft_address'",
                 "not an IPv4 literal");
    expect_error("seeds = 10.0.0.1:1,10.0.0.2:x\n", NULL, 0, NULL, MB_EINVAL, "key 'seeds'",
                 "bad port 'x'");
    expect_error("node_id = abc\n", NULL, 0, NULL, MB_EINVAL, "key 'node_id'", "is not an integer");
    expect_error("agent_workers = 5000\n", NULL, 0, NULL, MB_ERANGE, "key 'agent_workers'",
                 "out of range (0..1024)");
    expect_error("agent_spin_us = 2000000\n", NULL, 0, NULL, MB_ERANGE, "key 'agent_spin_us'",
                 "out of range (0..1000000)");
    expect_error("node_id = 0\n", NULL, 0, NULL, MB_ERANGE, "key 'node_id'", "out of range");
    expect_error("failure_timeout = 30\n", NULL, 0, NULL, MB_EINVAL, "key 'failure_timeout'",
                 "is not a duration");
    expect_error("failure_timeout = 2h\n", NULL, 0, NULL, MB_ERANGE, "key 'failure_timeout'",
                 "out of range (100ms..1h)");
    expect_error("http_max_body = 12 parsecs\n", NULL, 0, NULL, MB_EINVAL, "key 'http_max_body'",
                 "is not a size");
    expect_error("log_level = verbose\n", NULL, 0, NULL, MB_EINVAL, "key 'log_level'",
                 "is not one of trace|debug|info|warn|error");
    expect_error("alert_rules = hot: temp >\n", NULL, 0, NULL, MB_EINVAL, "key 'alert_rules'",
                 "rule 1 (hot)");
    char *argv[] = { "--agent_workers", NULL };
    expect_error(NULL, NULL, 1, argv, MB_EINVAL, "flag --agent_workers", "needs a value");
    char *argv2[] = { "positional", NULL };
    expect_error(NULL, NULL, 1, argv2, MB_EINVAL, "argument 'positional'", "--key=value");
    char *env[] = { "MABEAM_NODE_ID=-4", NULL };
    expect_error(NULL, env, 0, NULL, MB_ERANGE, "environment MABEAM_NODE_ID", "out of range");
    expect_error("heartbeat_interval = 10s\nfailure_timeout = 5s\n", NULL, 0, NULL, MB_EINVAL,
                 "failure_timeout", "greater than heartbeat_interval");
    expect_error("failure_timeout = 3s\n", NULL, 0, NULL, MB_EINVAL, "key 'unresponsive_timeout'",
                 "at least 2 x failure_timeout");
}

static void test_file_syntax_errors_name_the_line(void)
{
    expect_error("node_id = 1\nnode_name\n", NULL, 0, NULL, MB_EINVAL, "mabeam.conf line 2",
                 "expected '='");
    expect_error("node_name = \"abc\n", NULL, 0, NULL, MB_EINVAL, "line 1",
                 "unterminated quoted value");
    expect_error("node_name = \"a\" b\n", NULL, 0, NULL, MB_EINVAL, "line 1",
                 "text after the closing quote");
    expect_error("node_name = \"a\\q\"\n", NULL, 0, NULL, MB_EINVAL, "line 1", "unknown escape");
    expect_error("node_id = 1\n\nnode_id = 2\n", NULL, 0, NULL, MB_EINVAL, "line 3",
                 "already set on line 1");
    expect_error("= 3\n", NULL, 0, NULL, MB_EINVAL, "line 1", "expected 'key = value'");
    expect_error("node_name = a\x01z\n", NULL, 0, NULL, MB_EINVAL, "key 'node_name'",
                 "control character");
}

static void test_missing_file_and_unwritable_data_dir_are_refused(void)
{
    nc_config *cfg;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(nc_config_new(&cfg, NULL), MB_OK);
    char missing[300];
    snprintf(missing, sizeof(missing), "%s/nope.conf", tmpdir);
    nc_config_sources src = { .file_path = missing };
    CU_ASSERT_EQUAL(nc_config_load(cfg, &src, &e), MB_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "nope.conf"));

    /* A data_dir under a regular file cannot be created (works as root). */
    char blocker[300], flag[400];
    snprintf(blocker, sizeof(blocker), "%s/blocker", tmpdir);
    write_file(blocker, "x");
    snprintf(flag, sizeof(flag), "--data_dir=%s/sub", blocker);
    char *argv[] = { flag, NULL };
    nc_config_sources src2 = { .argc = 1, .argv = argv };
    CU_ASSERT_EQUAL(nc_config_load(cfg, &src2, &e), MB_EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "key 'data_dir'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "blocker/sub"));
    nc_config_free(cfg);

    /* A writable one is created and left without the probe file. */
    char fresh[300], flag2[400];
    snprintf(fresh, sizeof(fresh), "%s/fresh/a/b", tmpdir);
    snprintf(flag2, sizeof(flag2), "--data_dir=%s", fresh);
    char *argv3[] = { flag2, NULL };
    CU_ASSERT_EQUAL_FATAL(nc_config_new(&cfg, NULL), MB_OK);
    nc_config_sources src3 = { .argc = 1, .argv = argv3 };
    CU_ASSERT_EQUAL(nc_config_load(cfg, &src3, &e), MB_OK);
    char probe[400];
    snprintf(probe, sizeof(probe), "%s/.mabeam-probe-%ld", fresh, (long)getpid());
    CU_ASSERT_EQUAL(access(fresh, W_OK), 0);
    CU_ASSERT_NOT_EQUAL(access(probe, F_OK), 0);
    nc_config_free(cfg);
}

static void test_reload_applies_reloadable_keys_and_reports_ignored_ones(void)
{
    nc_config *cfg;
    mb_error e;
    char *env[] = { NULL };
    CU_ASSERT_EQUAL_FATAL(load(&cfg,
                               "log_level = info\nhttp_address = 127.0.0.1:8000\n"
                               "node_id = 4\n",
                               env, 0, NULL, &e),
                          MB_OK);
    uint64_t v0 = nc_config_version(cfg);
    write_file(cfg_path, "log_level = debug\nhttp_address = 127.0.0.1:9000\nnode_id = 4\n"
                         "api_token = abc\n");
    nc_config_reload_report rep;
    char dd_env[400];
    snprintf(dd_env, sizeof(dd_env), "MABEAM_DATA_DIR=%s", data_dir);
    char *env2[] = { dd_env, "MABEAM_LOG_FORMAT=json", NULL };
    CU_ASSERT_EQUAL_FATAL(nc_config_reload(cfg, env2, &rep, &e), MB_OK);
    CU_ASSERT_EQUAL(rep.n_applied, 3); /* log_level, api_token, log_format (env re-read) */
    bool saw_level = false, saw_token = false, saw_format = false;
    for (size_t i = 0; i < rep.n_applied; i++) {
        saw_level |= rep.applied[i]->id == NC_CFG_LOG_LEVEL;
        saw_token |= rep.applied[i]->id == NC_CFG_API_TOKEN;
        saw_format |= rep.applied[i]->id == NC_CFG_LOG_FORMAT;
    }
    CU_ASSERT_TRUE(saw_level && saw_token && saw_format);
    CU_ASSERT_EQUAL(rep.n_ignored, 1);
    CU_ASSERT_EQUAL(rep.ignored[0]->id, NC_CFG_HTTP_ADDRESS);
    CU_ASSERT_STRING_EQUAL(nc_config_enum_name(cfg, NC_CFG_LOG_LEVEL), "debug");
    CU_ASSERT_STRING_EQUAL(nc_config_enum_name(cfg, NC_CFG_LOG_FORMAT), "json");
    CU_ASSERT_STRING_EQUAL(text_of(cfg, NC_CFG_HTTP_ADDRESS), "127.0.0.1:8000");
    CU_ASSERT_EQUAL(nc_config_version(cfg), v0 + 3);

    /* A bad file leaves everything as it was. */
    write_file(cfg_path, "log_level = error\nlog_format = yaml\n");
    CU_ASSERT_EQUAL(nc_config_reload(cfg, env2, &rep, &e), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "key 'log_format'"));
    CU_ASSERT_STRING_EQUAL(nc_config_enum_name(cfg, NC_CFG_LOG_LEVEL), "debug");
    CU_ASSERT_EQUAL(nc_config_version(cfg), v0 + 3);

    /* A runtime set lasts until the next reload recomputes the value. */
    write_file(cfg_path, "log_level = debug\nhttp_address = 127.0.0.1:8000\nnode_id = 4\n"
                         "api_token = abc\n");
    CU_ASSERT_EQUAL(nc_config_set(cfg, "log_level", "trace", &e), MB_OK);
    CU_ASSERT_EQUAL(nc_config_reload(cfg, env2, &rep, &e), MB_OK);
    CU_ASSERT_EQUAL(rep.n_applied, 1);
    CU_ASSERT_EQUAL(rep.n_ignored, 0);
    CU_ASSERT_STRING_EQUAL(nc_config_enum_name(cfg, NC_CFG_LOG_LEVEL), "debug");
    nc_config_free(cfg);
}

static void test_set_validates_and_refuses_non_reloadable_keys(void)
{
    nc_config *cfg;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(load(&cfg, NULL, NULL, 0, NULL, &e), MB_OK);
    uint64_t v0 = nc_config_version(cfg);
    CU_ASSERT_EQUAL(nc_config_set(cfg, "http_address", "127.0.0.1:1", &e), MB_EPERM);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "not reloadable"));
    CU_ASSERT_EQUAL(nc_config_set(cfg, "log_level", "loud", &e), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "key 'log_level'"));
    CU_ASSERT_EQUAL(nc_config_set(cfg, "alert_interval", "1y", &e), MB_EINVAL);
    CU_ASSERT_EQUAL(nc_config_set(cfg, "log_levle", "debug", &e), MB_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "did you mean 'log_level'"));
    CU_ASSERT_EQUAL(nc_config_version(cfg), v0);
    CU_ASSERT_EQUAL(nc_config_set(cfg, "log_level", "INFO", &e), MB_OK); /* same value */
    CU_ASSERT_EQUAL(nc_config_version(cfg), v0);
    CU_ASSERT_EQUAL(nc_config_set(cfg, "log-level", "warn", &e), MB_OK);
    CU_ASSERT_EQUAL(nc_config_version(cfg), v0 + 1);
    CU_ASSERT_EQUAL(nc_config_source_of(cfg, NC_CFG_LOG_LEVEL), NC_CS_RUNTIME);
    CU_ASSERT_EQUAL(nc_config_set(cfg, "http_max_body", "2MiB", &e), MB_OK);
    CU_ASSERT_EQUAL(nc_config_size_bytes(cfg, NC_CFG_HTTP_MAX_BODY), 2u << 20);
    nc_config_free(cfg);
}

struct recorder {
    pthread_mutex_t mu;
    uint64_t versions[4096];
    char keys[4096][32];
    size_t n;
    nc_config *cfg;
    int busy_rc;
};

static void record_cb(void *arg, const nc_config_change *ch)
{
    struct recorder *r = arg;
    pthread_mutex_lock(&r->mu);
    if (r->n < 4096) {
        r->versions[r->n] = ch->version;
        snprintf(r->keys[r->n], sizeof(r->keys[0]), "%s", ch->key->name);
        r->n++;
    }
    pthread_mutex_unlock(&r->mu);
    if (r->cfg != NULL) {
        r->busy_rc = nc_config_set(r->cfg, "log_level", "error", NULL);
        /* Reading from a callback is allowed. */
        CU_ASSERT_EQUAL(nc_config_version(r->cfg), ch->version);
    }
}

static void test_subscriber_gets_each_change_once_in_order(void)
{
    nc_config *cfg;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(load(&cfg, NULL, NULL, 0, NULL, &e), MB_OK);
    struct recorder *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&b->mu, NULL);
    a->cfg = cfg;
    uint64_t ida, idb;
    CU_ASSERT_EQUAL(nc_config_subscribe(cfg, record_cb, a, &ida), MB_OK);
    uint64_t v0 = nc_config_version(cfg);
    CU_ASSERT_EQUAL(nc_config_set(cfg, "log_level", "debug", &e), MB_OK);
    CU_ASSERT_EQUAL(nc_config_subscribe(cfg, record_cb, b, &idb), MB_OK);
    CU_ASSERT_EQUAL(nc_config_set(cfg, "log_format", "json", &e), MB_OK);
    CU_ASSERT_EQUAL(nc_config_set(cfg, "log_format", "json", &e), MB_OK); /* no change */
    CU_ASSERT_EQUAL(nc_config_unsubscribe(cfg, ida), MB_OK);
    CU_ASSERT_EQUAL(nc_config_unsubscribe(cfg, ida), MB_ENOTFOUND);
    CU_ASSERT_EQUAL(nc_config_set(cfg, "log_level", "warn", &e), MB_OK);
    CU_ASSERT_EQUAL_FATAL(a->n, 2);
    CU_ASSERT_EQUAL(a->versions[0], v0 + 1);
    CU_ASSERT_STRING_EQUAL(a->keys[0], "log_level");
    CU_ASSERT_EQUAL(a->versions[1], v0 + 2);
    CU_ASSERT_STRING_EQUAL(a->keys[1], "log_format");
    CU_ASSERT_EQUAL(a->busy_rc, MB_EBUSY); /* set from a callback is refused */
    CU_ASSERT_EQUAL_FATAL(b->n, 2);
    CU_ASSERT_EQUAL(b->versions[0], v0 + 2);
    CU_ASSERT_EQUAL(b->versions[1], v0 + 3);
    nc_config_unsubscribe(cfg, idb);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&b->mu);
    free(a);
    free(b);
    nc_config_free(cfg);
}

#define SETTERS         4
#define SETS_PER_SETTER 300

struct setter_arg {
    nc_config *cfg;
    int id;
};

static void *setter_main(void *p)
{
    struct setter_arg *s = p;
    static const char *const levels[] = { "trace", "debug", "info", "warn", "error" };
    char ms[32];
    for (int i = 0; i < SETS_PER_SETTER; i++) {
        if (s->id % 2 == 0) {
            nc_config_set(s->cfg, "log_level", levels[(i + s->id) % 5], NULL);
        } else {
            snprintf(ms, sizeof(ms), "%dms", 10 + (i % 50) * 2 + s->id);
            nc_config_set(s->cfg, "alert_interval", ms, NULL);
        }
    }
    return NULL;
}

static void test_concurrent_setters_deliver_consecutive_versions(void)
{
    nc_config *cfg;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(load(&cfg, NULL, NULL, 0, NULL, &e), MB_OK);
    struct recorder *r[2];
    uint64_t ids[2];
    for (int i = 0; i < 2; i++) {
        r[i] = calloc(1, sizeof(*r[i]));
        pthread_mutex_init(&r[i]->mu, NULL);
        CU_ASSERT_EQUAL(nc_config_subscribe(cfg, record_cb, r[i], &ids[i]), MB_OK);
    }
    uint64_t v0 = nc_config_version(cfg);
    pthread_t t[SETTERS];
    struct setter_arg args[SETTERS];
    for (int i = 0; i < SETTERS; i++) {
        args[i] = (struct setter_arg){ cfg, i };
        pthread_create(&t[i], NULL, setter_main, &args[i]);
    }
    for (int i = 0; i < SETTERS; i++)
        pthread_join(t[i], NULL);
    uint64_t v1 = nc_config_version(cfg);
    CU_ASSERT(v1 > v0 + 100);
    for (int k = 0; k < 2; k++) {
        CU_ASSERT_EQUAL(r[k]->n, v1 - v0);
        for (size_t i = 0; i < r[k]->n; i++)
            if (r[k]->versions[i] != v0 + 1 + i) {
                CU_FAIL("gap or repeat in the delivered versions");
                break;
            }
        nc_config_unsubscribe(cfg, ids[k]);
        pthread_mutex_destroy(&r[k]->mu);
        free(r[k]);
    }
    nc_config_free(cfg);
}

static void test_change_log_serves_watchers_from_a_version(void)
{
    nc_config *cfg;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(load(&cfg, NULL, NULL, 0, NULL, &e), MB_OK);
    uint64_t v0 = nc_config_version(cfg);
    nc_config_change_list list;
    CU_ASSERT_EQUAL(nc_config_changes_since(cfg, v0, &list), MB_OK);
    CU_ASSERT_EQUAL(list.n, 0);
    nc_config_change_list_free(&list);
    nc_config_set(cfg, "log_level", "debug", NULL);
    nc_config_set(cfg, "api_token", "hunter2", NULL);
    nc_config_set(cfg, "log_level", "warn", NULL);
    CU_ASSERT_EQUAL_FATAL(nc_config_changes_since(cfg, v0 + 1, &list), MB_OK);
    CU_ASSERT_EQUAL_FATAL(list.n, 2);
    CU_ASSERT_EQUAL(list.changes[0].version, v0 + 2);
    CU_ASSERT_STRING_EQUAL(list.changes[0].key->name, "api_token");
    CU_ASSERT_STRING_EQUAL(list.changes[0].new_value, "hunter2");
    CU_ASSERT_STRING_EQUAL(list.changes[1].old_value, "debug");
    CU_ASSERT_STRING_EQUAL(list.changes[1].new_value, "warn");
    CU_ASSERT_EQUAL(list.version, v0 + 3);
    nc_config_change_list_free(&list);

    char *json = NULL;
    CU_ASSERT_EQUAL_FATAL(nc_config_changes_json(cfg, v0, &json), MB_OK);
    CU_ASSERT_PTR_NULL(strstr(json, "hunter2"));
    cJSON *j = cJSON_Parse(json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    cJSON *ch = cJSON_GetObjectItem(j, "changes");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(ch), 3);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(ch, 1), "new")->valuestring,
                           "<redacted>");
    cJSON_Delete(j);
    free(json);

    /* The future and the forgotten past both ask for a resync. */
    CU_ASSERT_EQUAL(nc_config_changes_since(cfg, v0 + 10, &list), MB_ERANGE);
    for (int i = 0; i < NC_CONFIG_LOG_KEEP + 5; i++)
        nc_config_set(cfg, "log_level", i % 2 ? "debug" : "info", NULL);
    CU_ASSERT_EQUAL(nc_config_changes_since(cfg, v0, &list), MB_ERANGE);
    uint64_t v = nc_config_version(cfg);
    CU_ASSERT_EQUAL(nc_config_changes_since(cfg, v - NC_CONFIG_LOG_KEEP, &list), MB_OK);
    CU_ASSERT_EQUAL(list.n, NC_CONFIG_LOG_KEEP);
    nc_config_change_list_free(&list);
    nc_config_free(cfg);
}

struct waiter_arg {
    nc_config *cfg;
    uint64_t since;
    int rc;
    _Atomic int started;
};

static void *waiter_main(void *p)
{
    struct waiter_arg *w = p;
    atomic_store(&w->started, 1);
    w->rc = nc_config_wait(w->cfg, w->since, 10000);
    return NULL;
}

static void test_wait_is_released_by_a_change_and_times_out_without_one(void)
{
    nc_config *cfg;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(load(&cfg, NULL, NULL, 0, NULL, &e), MB_OK);
    uint64_t v0 = nc_config_version(cfg);
    long long t0 = mb_test_now_ms();
    CU_ASSERT_EQUAL(nc_config_wait(cfg, v0, 30), MB_ETIMEDOUT);
    CU_ASSERT(mb_test_now_ms() - t0 >= 29);
    CU_ASSERT_EQUAL(nc_config_wait(cfg, v0 - 1, 30), MB_OK); /* already newer */

    struct waiter_arg w = { .cfg = cfg, .since = v0, .rc = -1 };
    atomic_init(&w.started, 0);
    pthread_t t;
    pthread_create(&t, NULL, waiter_main, &w);
    CU_ASSERT_TRUE(MB_WAIT_UNTIL(atomic_load(&w.started), 5000));
    CU_ASSERT_EQUAL(nc_config_set(cfg, "log_level", "debug", &e), MB_OK);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(w.rc, MB_OK);
    nc_config_free(cfg);
}

static void test_json_rendering_is_typed_and_redacts_secrets(void)
{
    char *env[] = { "MABEAM_CLUSTER_SECRET=topsecret", NULL };
    char *argv[] = { "--api-token=tok123", "--node-id=7", NULL };
    nc_config *cfg;
    mb_error e;
    CU_ASSERT_EQUAL_FATAL(load(&cfg, NULL, env, 2, argv, &e), MB_OK);
    char *json = nc_config_to_json(cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(json);
    CU_ASSERT_PTR_NULL(strstr(json, "topsecret"));
    CU_ASSERT_PTR_NULL(strstr(json, "tok123"));
    cJSON *j = cJSON_Parse(json);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    cJSON *vals = cJSON_GetObjectItem(j, "values");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(vals, "node_id")->valuedouble, 7);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(vals, "api_token")->valuestring, "<redacted>");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(vals, "cluster_secret")->valuestring, "<redacted>");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(vals, "http_address")->valuestring,
                           "127.0.0.1:7700");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "sources"), "api_token")->valuestring, "flag");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(j, "version")->valuedouble, 1);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(vals), NC_CFG_COUNT_);
    cJSON_Delete(j);
    free(json);

    char *schema = nc_config_schema_json();
    j = cJSON_Parse(schema);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(j), NC_CFG_COUNT_);
    cJSON *first = cJSON_GetArrayItem(j, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(first, "name")->valuestring, "node_id");
    cJSON_Delete(j);
    free(schema);
    nc_config_free(cfg);
}

static void test_value_parsers(void)
{
    int64_t ms;
    uint64_t b;
    CU_ASSERT_EQUAL(nc_config_parse_duration_ms("1500ms", &ms), MB_OK);
    CU_ASSERT_EQUAL(ms, 1500);
    CU_ASSERT_EQUAL(nc_config_parse_duration_ms("2d", &ms), MB_OK);
    CU_ASSERT_EQUAL(ms, 2LL * 86400 * 1000);
    CU_ASSERT_EQUAL(nc_config_parse_duration_ms("0", &ms), MB_OK);
    CU_ASSERT_EQUAL(nc_config_parse_duration_ms("5", &ms), MB_EINVAL);
    CU_ASSERT_EQUAL(nc_config_parse_duration_ms("-5s", &ms), MB_EINVAL);
    CU_ASSERT_EQUAL(nc_config_parse_duration_ms("99999999999999999999s", &ms), MB_ERANGE);
    CU_ASSERT_EQUAL(nc_config_parse_size("64KiB", &b), MB_OK);
    CU_ASSERT_EQUAL(b, 65536);
    CU_ASSERT_EQUAL(nc_config_parse_size("3g", &b), MB_OK);
    CU_ASSERT_EQUAL(b, 3ULL << 30);
    CU_ASSERT_EQUAL(nc_config_parse_size("17179869184TiB", &b), MB_ERANGE);
    char host[64];
    uint16_t port;
    CU_ASSERT_EQUAL(nc_config_parse_address("[::1]:7700", host, sizeof(host), &port, NULL), MB_OK);
    CU_ASSERT_STRING_EQUAL(host, "::1");
    CU_ASSERT_EQUAL(port, 7700);
    CU_ASSERT_EQUAL(nc_config_parse_address("node-1.local:80", host, sizeof(host), &port, NULL),
                    MB_OK);
    CU_ASSERT_STRING_EQUAL(host, "node-1.local");
    CU_ASSERT_EQUAL(nc_config_parse_address(":80", host, sizeof(host), &port, NULL), MB_EINVAL);
    CU_ASSERT_EQUAL(nc_config_parse_address("a b:80", host, sizeof(host), &port, NULL), MB_EINVAL);
    CU_ASSERT_PTR_EQUAL(nc_config_key_suggest("http_adress"),
                        &nc_config_schema()[NC_CFG_HTTP_ADDRESS]);
    CU_ASSERT_PTR_NULL(nc_config_key_suggest("zzzzzzzz"));
}

static CU_TestInfo config_tests[] = {
    { "defaults_apply_when_no_source_sets_a_key", test_defaults_apply_when_no_source_sets_a_key },
    { "precedence_is_default_file_env_flag", test_precedence_is_default_file_env_flag },
    { "config_file_is_named_by_flag_or_env", test_config_file_is_named_by_flag_or_env },
    { "file_syntax_quotes_comments_and_escapes", test_file_syntax_quotes_comments_and_escapes },
    { "unknown_key_errors_suggest_the_closest_key",
      test_unknown_key_errors_suggest_the_closest_key },
    { "bad_values_are_refused_with_key_and_reason",
      test_bad_values_are_refused_with_key_and_reason },
    { "file_syntax_errors_name_the_line", test_file_syntax_errors_name_the_line },
    { "missing_file_and_unwritable_data_dir_are_refused",
      test_missing_file_and_unwritable_data_dir_are_refused },
    { "reload_applies_reloadable_keys_and_reports_ignored_ones",
      test_reload_applies_reloadable_keys_and_reports_ignored_ones },
    { "set_validates_and_refuses_non_reloadable_keys",
      test_set_validates_and_refuses_non_reloadable_keys },
    { "subscriber_gets_each_change_once_in_order", test_subscriber_gets_each_change_once_in_order },
    { "concurrent_setters_deliver_consecutive_versions",
      test_concurrent_setters_deliver_consecutive_versions },
    { "change_log_serves_watchers_from_a_version", test_change_log_serves_watchers_from_a_version },
    { "wait_is_released_by_a_change_and_times_out_without_one",
      test_wait_is_released_by_a_change_and_times_out_without_one },
    { "json_rendering_is_typed_and_redacts_secrets",
      test_json_rendering_is_typed_and_redacts_secrets },
    { "value_parsers", test_value_parsers },
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    { "config", suite_init, suite_clean, NULL, NULL, config_tests },
    CU_SUITE_INFO_NULL,
};

int main(int argc, char **argv)
{
    return mb_test_run(argc, argv, suites);
}
