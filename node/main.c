/* node/main.c: mabeamd — load the configuration (defaults < file <
 * environment < flags), open the logger, run the node until SIGTERM/SIGINT.
 * Exit status: 0 clean stop, 1 runtime failure (data directory in use,
 * address in use, storage error), 2 usage or configuration error. */
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>

#include "cluster/closer.h"
#include "node/node.h"

extern char **environ;

#ifdef __SANITIZE_THREAD__
/* TSan builds only: RocksDB is not built with TSan, and its background
 * threads publish memtable entries through atomics TSan cannot see; races
 * inside librocksdb are suppressed, the daemon's own code stays checked. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    /* libstdc++: only RocksDB uses it here (its background threads copy
     * strings out of blocks the opener filled); the stacks stop there.
     * epoll_ctl: raft 0.15 closes a segment writer's eventfd before it
     * stops the uv_poll on it (UvWriterClose), a thread-pool open of raft
     * gets the fd number back, and libuv's epoll_ctl on the stale watcher
     * is reported against that open (tests/unit/consensus/test_raft.c). */
    return "race:librocksdb.so\ncalled_from_lib:librocksdb.so\nrace:libstdc++.so\n"
           "race:epoll_ctl\n";
}
#endif

static void usage(FILE *out)
{
    fprintf(out, "usage: mabeamd [--config=PATH] [--KEY=VALUE ...]\n"
                 "       mabeamd --check-config [--config=PATH] [--KEY=VALUE ...]\n"
                 "       mabeamd --help | --version\n"
                 "\n"
                 "Runs one MABEAM node. Every configuration key can be given, lowest\n"
                 "precedence first, as a built-in default, in the config file\n"
                 "(--config=PATH or MABEAM_CONFIG), as environment variable MABEAM_<KEY>\n"
                 "(upper case), or as flag --KEY=VALUE ('-' and '_' are the same).\n"
                 "SIGHUP reloads the reloadable keys; SIGTERM or SIGINT stops the node.\n"
                 "--check-config validates the configuration (exit 0, or 2 with the\n"
                 "error) and prints the cluster settings, without starting anything.\n"
                 "\n"
                 "keys (default; * = reloadable):\n");
    const nc_config_key *keys = nc_config_schema();
    for (int i = 0; i < NC_CFG_COUNT_; i++)
        fprintf(out, "  %-20s %c %-22s %s\n", keys[i].name, keys[i].reloadable ? '*' : ' ',
                keys[i].secret ? "(secret)" : keys[i].default_value,
                keys[i].description != NULL ? keys[i].description : "");
    fprintf(out, "\nSee docs/operations.md for details.\n");
}

static int open_logger(nc_config *cfg, nc_log **out, mb_error *err)
{
    nc_log_options lo = { 0 };
    char path[4096];
    if (nc_log_level_parse(nc_config_enum_name(cfg, NC_CFG_LOG_LEVEL), &lo.level) != MB_OK)
        lo.level = NC_LOG_INFO;
    if (nc_log_format_parse(nc_config_enum_name(cfg, NC_CFG_LOG_FORMAT), &lo.format) != MB_OK)
        lo.format = NC_LOG_FORMAT_TEXT;
    nc_config_get_text(cfg, NC_CFG_LOG_FILE, path, sizeof(path));
    lo.path = path[0] != '\0' ? path : NULL;
    return nc_log_open(out, &lo, err);
}

/* --check-config: the checks node_open would make on the cluster keys
 * beyond the schema's own, then a summary. Returns the exit status. */
static int check_config(nc_config *cfg)
{
    char seeds[4096], secret[512], mesh[300], raft[300], http[300];
    nc_config_get_text(cfg, NC_CFG_SEEDS, seeds, sizeof(seeds));
    nc_config_get_text(cfg, NC_CFG_CLUSTER_SECRET, secret, sizeof(secret));
    nc_config_get_text(cfg, NC_CFG_MESH_ADDRESS, mesh, sizeof(mesh));
    nc_config_get_text(cfg, NC_CFG_RAFT_ADDRESS, raft, sizeof(raft));
    nc_config_get_text(cfg, NC_CFG_HTTP_ADDRESS, http, sizeof(http));
    size_t slen = strlen(secret);
    memset(secret, 0, sizeof(secret));
    if (seeds[0] != '\0' && slen == 0) {
        fprintf(stderr, "mabeamd: configuration error: cluster_secret is required with seeds\n");
        return 2;
    }
    if (slen != 0 && slen < 16) {
        fprintf(stderr, "mabeamd: configuration error: cluster_secret must have at least 16 "
                        "characters\n");
        return 2;
    }
    printf("configuration OK: node_id=%lld http=%s mesh=%s raft=%s mode=%s%s%s\n",
           (long long)nc_config_int(cfg, NC_CFG_NODE_ID), http, mesh, raft,
           seeds[0] != '\0' ? "join" : "bootstrap", seeds[0] != '\0' ? " seeds=" : "", seeds);
    return 0;
}

/* A fatal signal prints a backtrace to stderr (the node log when it goes
 * there) before the default action, so a crash in the field or in CI leaves
 * something to debug. Sanitizer builds keep their own, better, reports. */
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
static void fatal_signal_cb(int sig)
{
    static const char msg[] = "mabeamd: fatal signal; backtrace:\n";
    void *frames[64];
    int n = backtrace(frames, 64);
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
        /* nothing more can be done here */
    }
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_fatal_signal_handlers(void)
{
    void *warmup[1];
    backtrace(warmup, 1); /* loads libgcc now, not inside the handler */
    /* An alternate stack, so a stack overflow of the main thread still
     * prints its backtrace (the process ends right after, so it is never
     * freed). */
    static char altstack[64 * 1024];
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0 };
    int onstack = sigaltstack(&ss, NULL) == 0;
    const int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = fatal_signal_cb;
        sa.sa_flags = onstack ? SA_ONSTACK : 0;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}
#else
static void install_fatal_signal_handlers(void)
{
}
#endif

int main(int argc, char **argv)
{
    nc_config *cfg = NULL;
    nc_log *log = NULL;
    mb_error e;
    int status = 0;
    int check_only = 0;
    mb_error_clear(&e);
    install_fatal_signal_handlers();

    /* --check-config is not a configuration key: take it out of argv. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--check-config") == 0) {
            check_only = 1;
            memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
            argc--;
            i--;
        }
    }

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("mabeamd %s\n", MABEAMD_VERSION);
            return 0;
        }
        if (strncmp(argv[i], "--", 2) != 0) {
            fprintf(stderr,
                    "mabeamd: unexpected argument '%s' (flags are --key=value; see "
                    "--help)\n",
                    argv[i]);
            return 2;
        }
    }

    if (nc_config_new(&cfg, &e) != MB_OK) {
        fprintf(stderr, "mabeamd: %s\n", e.msg);
        return 1;
    }
    nc_config_sources src = {
        .file_path = NULL,
        .envp = environ,
        .argc = argc - 1,
        .argv = argv + 1,
    };
    if (nc_config_load(cfg, &src, &e) != MB_OK) {
        fprintf(stderr, "mabeamd: configuration error: %s\n", e.msg);
        nc_config_free(cfg);
        return 2;
    }
    if (check_only) {
        status = check_config(cfg);
        nc_config_free(cfg);
        nng_fini();
        return status;
    }
    if (open_logger(cfg, &log, &e) != MB_OK) {
        fprintf(stderr, "mabeamd: configuration error: log_file: %s\n", e.msg);
        nc_config_free(cfg);
        return 2;
    }

    node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        fprintf(stderr, "mabeamd: out of memory\n");
        status = 1;
        goto out;
    }
    if (node_open(n, cfg, log, &e) != MB_OK) {
        NC_LOGKV(log, NC_LOG_ERROR, "node", "cannot start", NC_F_STR("error", e.msg),
                 NC_F_STR("code", mb_errname(e.code)));
        if (nc_config_source_of(cfg, NC_CFG_LOG_FILE) != NC_CS_DEFAULT)
            fprintf(stderr, "mabeamd: cannot start: %s\n", e.msg); /* log is elsewhere */
        node_close(n);
        status = 1;
        goto out;
    }
    node_run(n);
    if (node_close(n) != 0) {
        NC_ERROR(log, "node", "event loop closed with handles still open");
        status = 1;
    }
out:
    free(n);
    /* nng_fini waits for every socket: one whose close hung in libnng
     * (cluster/closer.h) would hold the exit forever. */
    int nng_stuck = sock_closer_stuck() != 0;
    if (nng_stuck)
        NC_ERROR(log, "node", "a mesh socket close hung in libnng: exiting without nng_fini");
    nc_log_close(log);
    nc_config_free(cfg);
    if (!nng_stuck)
        nng_fini();
    return status;
}
