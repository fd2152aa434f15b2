/* node/node.c: the mabeamd control loop and its lifecycle (see node.h). */
#include "node/node.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "consensus/consensus.h"
#include "node/api_mailbox.h"
#include "node/coord.h"
#include "node/node_log.h"
#include "node/proc_stats.h"
#include "node/proposals.h"
#include "node/services.h"
#include "node/cluster_ops.h"
#include "node/placement.h"
#include "node/replication.h"
#include "node/studies.h"

int64_t node_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void node_event(node *n, const char *type, const char *subject, const cJSON *payload)
{
    char *text = payload != NULL ? cJSON_PrintUnformatted(payload) : NULL;
    storage_event ev = {
        .seq = 0,
        .type = type,
        .subject = subject != NULL ? subject : "",
        .time_ms = node_wall_ms(),
        .payload = text,
        .payload_len = text != NULL ? strlen(text) : 0,
    };
    mb_error e;
    mb_error_clear(&e);
    if (node_log_append(n->store, &ev, &e) != MB_OK) {
        NC_LOGKV(n->log, NC_LOG_ERROR, "node", "cannot record node event", NC_F_STR("type", type),
                 NC_F_STR("error", e.msg));
    } else {
        nc_counter_inc(n->events_written);
        NC_LOGKV(n->log, NC_LOG_DEBUG, "node", "event", NC_F_STR("type", type),
                 NC_F_STR("subject", ev.subject), NC_F_U64("seq", ev.seq));
    }
    free(text);
}

/* ---- data directory lock ---- */

static int lock_data_dir(node *n, mb_error *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/mabeamd.lock", n->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return mb_errorf(err, errno == EACCES ? MB_EPERM : MB_EIO, "open lock file %s: %s", path,
                         strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        char pid[32] = "";
        ssize_t r = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[r > 0 ? r : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (saved == EWOULDBLOCK)
            return mb_errorf(err, MB_EBUSY,
                             "data directory %s is in use by another mabeamd (pid %s); stop it "
                             "or choose another data_dir",
                             n->data_dir, pid[0] != '\0' ? pid : "?");
        return mb_errorf(err, MB_EIO, "lock %s: %s", path, strerror(saved));
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        int saved = errno;
        close(fd);
        return mb_errorf(err, MB_EIO, "write lock file %s: %s", path, strerror(saved));
    }
    n->lock_fd = fd;
    return MB_OK;
}

/* ---- metrics ---- */

static double g_rss(void *arg)
{
    (void)arg;
    return (double)proc_rss_bytes();
}

static double g_cpu(void *arg)
{
    (void)arg;
    return proc_cpu_seconds();
}

static double g_fds(void *arg)
{
    (void)arg;
    return (double)proc_open_fds();
}

static double g_max_fds(void *arg)
{
    (void)arg;
    return (double)proc_max_fds();
}

static double g_threads(void *arg)
{
    (void)arg;
    return (double)proc_threads();
}

static double g_start(void *arg)
{
    node *n = arg;
    return (double)n->start_wall_ms / 1000.0;
}

static double g_uptime(void *arg)
{
    node *n = arg;
    return (double)(node_wall_ms() - n->start_wall_ms) / 1000.0;
}

static double g_cfg_version(void *arg)
{
    node *n = arg;
    return (double)nc_config_version(n->cfg);
}

static double g_parked(void *arg)
{
    node *n = arg;
    return n->http != NULL ? (double)http_server_parked(n->http) : 0;
}

static int register_metrics(node *n, mb_error *err)
{
    static const char *const classes[5] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
    const nc_hist_options lat = { .unit_scale = 1e-9, .le_min_log2 = 12, .le_max_log2 = 35 };
    int rv;
    struct {
        const char *name, *help;
        nc_gauge_fn fn;
    } gauges[] = {
        { "process_resident_memory_bytes", "Resident memory size in bytes.", g_rss },
        { "process_cpu_seconds", "User and system CPU time spent, in seconds.", g_cpu },
        { "process_open_fds", "Number of open file descriptors.", g_fds },
        { "process_max_fds", "Maximum number of open file descriptors.", g_max_fds },
        { "process_threads", "Number of OS threads of the process.", g_threads },
        { "process_start_time_seconds", "Start time of the process since the epoch, in seconds.",
          g_start },
        { "mb_node_uptime_seconds", "Seconds since this mabeamd started.", g_uptime },
        { "mb_http_parked_requests", "HTTP requests parked in a long-poll.", g_parked },
        { "mb_config_version", "Version of the node's configuration (changes applied + 1).",
          g_cfg_version },
    };
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++)
        if ((rv = nc_metrics_gauge_fn(n->metrics, gauges[i].name, gauges[i].help, NULL, 0,
                                      gauges[i].fn, n, err)) != MB_OK)
            return rv;
    if ((rv = nc_metrics_counter(n->metrics, "mb_node_events_total",
                                 "Events written to the node-local log.", NULL, 0,
                                 &n->events_written, err)) != MB_OK)
        return rv;
    if ((rv = nc_metrics_counter(n->metrics, "mb_node_events_pruned_total",
                                 "Node-local events removed by event_retention.", NULL, 0,
                                 &n->events_pruned, err)) != MB_OK)
        return rv;
    if ((rv = nc_metrics_counter(n->metrics, "mb_http_handler_bugs_total",
                                 "API calls a handler or its park's expiry left without an answer "
                                 "(a bug; each is also logged).",
                                 NULL, 0, &n->http_handler_bugs, err)) != MB_OK)
        return rv;
    if ((rv = nc_metrics_hist(n->metrics, "mb_event_log_append_seconds",
                              "Time the control loop spent writing one batch of applied "
                              "commands to the event log.",
                              NULL, 0, &lat, &n->event_log_append, err)) != MB_OK)
        return rv;
    for (size_t r = 0; r <= n->router.n; r++) {
        const char *route = r < n->router.n ? n->router.routes[r]->name : "unmatched";
        for (int k = 0; k < 5; k++) {
            nc_label l[2] = { { "route", route }, { "code", classes[k] } };
            if ((rv = nc_metrics_counter(n->metrics, "mb_http_requests_total",
                                         "HTTP API requests answered, by route and status class.",
                                         l, 2, &n->http_requests[r][k], err)) != MB_OK)
                return rv;
        }
        nc_label l[1] = { { "route", route } };
        if ((rv = nc_metrics_hist(n->metrics, "mb_http_request_seconds",
                                  "HTTP API request latency from arrival to answer, by route.", l,
                                  1, &lat, &n->http_latency[r], err)) != MB_OK)
            return rv;
    }
    return MB_OK;
}

/* NNG thread or loop: count one answered request. */
static void http_observe(void *arg, const api_route *route, int status, uint64_t elapsed_ns)
{
    node *n = arg;
    size_t idx = n->router.n;
    for (size_t i = 0; route != NULL && i < n->router.n; i++)
        if (n->router.routes[i] == route) {
            idx = i;
            break;
        }
    int k = status / 100 - 1;
    if (k < 0 || k > 4)
        k = 4;
    nc_counter_inc(n->http_requests[idx][k]);
    nc_hist_record(n->http_latency[idx], elapsed_ns);
    NC_LOGKV(n->log, NC_LOG_DEBUG, "http", "request",
             NC_F_STR("route", route != NULL ? route->name : "unmatched"),
             NC_F_I64("status", status), NC_F_U64("us", elapsed_ns / 1000));
}

/* A route handler returned without answering or parking, or a park's
 * expiry callback without answering (http_bug_fn): a bug. The integration
 * tests fail on this line in any node's log. */
static void http_bug(void *arg, const api_route *route)
{
    node *n = arg;
    nc_counter_inc(n->http_handler_bugs);
    NC_LOGKV(n->log, NC_LOG_ERROR, "http",
             "internal error (bug): an API call was left without an answer or a park",
             NC_F_STR("route", route->name), NC_F_STR("pattern", route->pattern));
}

/* ---- alerts ---- */

static void alert_cb(void *arg, const nc_alert_event *ev)
{
    node *n = arg;
    int raise = ev->kind == NC_ALERT_RAISE;
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "rule", ev->rule);
    cJSON_AddStringToObject(p, "series", ev->series);
    cJSON_AddStringToObject(p, "expr", ev->expr);
    cJSON_AddNumberToObject(p, "value", ev->value);
    cJSON_AddNumberToObject(p, "threshold", ev->threshold);
    node_event(n, raise ? "alert.raised" : "alert.cleared", ev->rule, p);
    cJSON_Delete(p);
    NC_LOGKV(n->log, raise ? NC_LOG_WARN : NC_LOG_INFO, "alert",
             raise ? "alert raised" : "alert cleared", NC_F_STR("rule", ev->rule),
             NC_F_STR("series", ev->series), NC_F_F64("value", ev->value),
             NC_F_F64("threshold", ev->threshold));
}

static uint64_t alert_every_ms(node *n)
{
    int64_t every = nc_config_duration_ms(n->cfg, NC_CFG_ALERT_INTERVAL);
    return every <= 0 ? 1000 : (uint64_t)every;
}

static void alert_timer_cb(uv_timer_t *t)
{
    node *n = t->data;
    /* idle: one-shot on the interval's grid (woken with the other timers) */
    uv_timer_start(&n->alert_timer, alert_timer_cb, node_aligned_delay(&n->loop, alert_every_ms(n)),
                   0);
    nc_alerts_tick(n->alerts, (int64_t)uv_now(&n->loop));
}

static void alert_timer_restart(node *n)
{
    uv_timer_start(&n->alert_timer, alert_timer_cb, node_aligned_delay(&n->loop, alert_every_ms(n)),
                   0);
}

/* ---- retention of the node-local log ---- */

static void retention_cb(uv_timer_t *t)
{
    node *n = t->data;
    int64_t keep_ms = nc_config_duration_ms(n->cfg, NC_CFG_EVENT_RETENTION);
    if (keep_ms <= 0)
        return;
    uint64_t removed = 0;
    mb_error e;
    mb_error_clear(&e);
    if (storage_local_prune_before_time(n->store, node_wall_ms() - keep_ms, &removed, &e) !=
        MB_OK) {
        NC_LOGKV(n->log, NC_LOG_ERROR, "node", "event retention failed", NC_F_STR("error", e.msg));
        return;
    }
    if (removed > 0) {
        nc_counter_add(n->events_pruned, removed);
        NC_LOGKV(n->log, NC_LOG_DEBUG, "node", "old node events removed",
                 NC_F_U64("removed", removed), NC_F_I64("retention_ms", keep_ms));
    }
}

/* Prune every retention/2, between 100 ms and one minute. */
static void retention_restart(node *n)
{
    int64_t keep_ms = nc_config_duration_ms(n->cfg, NC_CFG_EVENT_RETENTION);
    uv_timer_stop(&n->retention_timer);
    if (keep_ms <= 0)
        return;
    int64_t every = keep_ms / 2;
    every = every < 100 ? 100 : every > 60000 ? 60000 : every;
    uv_timer_start(&n->retention_timer, retention_cb, 0, (uint64_t)every);
}

/* ---- configuration changes ---- */

/* Subscriber: runs on the thread that changed the config (always the loop:
 * runtime sets and reloads are both made there). Applies the effect of
 * reloadable keys; events and watchers follow in node_config_changed. */
static void config_change_cb(void *arg, const nc_config_change *ch)
{
    node *n = arg;
    mb_error e;
    mb_error_clear(&e);
    switch (ch->key->id) {
    case NC_CFG_LOG_LEVEL: {
        nc_log_level lvl;
        if (nc_log_level_parse(ch->new_value, &lvl) == MB_OK)
            nc_log_set_level(n->log, lvl);
        break;
    }
    case NC_CFG_LOG_FORMAT: {
        nc_log_format f;
        if (nc_log_format_parse(ch->new_value, &f) == MB_OK)
            nc_log_set_format(n->log, f);
        break;
    }
    case NC_CFG_LOG_FILE:
        if (nc_log_reopen(n->log, ch->new_value, &e) != MB_OK)
            NC_LOGKV(n->log, NC_LOG_ERROR, "config", "cannot switch log file",
                     NC_F_STR("error", e.msg));
        break;
    case NC_CFG_API_TOKEN:
        if (n->http != NULL)
            http_server_set_token(n->http, ch->new_value);
        break;
    case NC_CFG_HTTP_MAX_BODY:
        if (n->http != NULL)
            http_server_set_body_limit(n->http, nc_config_size_bytes(n->cfg, NC_CFG_HTTP_MAX_BODY));
        break;
    case NC_CFG_ALERT_RULES:
        if (nc_alerts_set_rules(n->alerts, ch->new_value, (int64_t)uv_now(&n->loop), &e) != MB_OK)
            NC_LOGKV(n->log, NC_LOG_ERROR, "config", "cannot apply alert rules",
                     NC_F_STR("error", e.msg));
        break;
    case NC_CFG_ALERT_INTERVAL:
        alert_timer_restart(n);
        break;
    case NC_CFG_EVENT_RETENTION:
        retention_restart(n);
        break;
    default:
        break;
    }
}

void node_config_changed(node *n)
{
    nc_config_change_list list;
    if (nc_config_changes_since(n->cfg, n->cfg_seen_version, &list) == MB_OK) {
        for (size_t i = 0; i < list.n; i++) {
            const nc_config_change *ch = &list.changes[i];
            cJSON *p = cJSON_CreateObject();
            int secret = ch->key->secret;
            cJSON_AddNumberToObject(p, "version", (double)ch->version);
            cJSON_AddStringToObject(p, "old", secret ? "<redacted>" : ch->old_value);
            cJSON_AddStringToObject(p, "new", secret ? "<redacted>" : ch->new_value);
            cJSON_AddStringToObject(p, "source", nc_config_source_name(ch->source));
            node_event(n, "config.changed", ch->key->name, p);
            cJSON_Delete(p);
            NC_LOGKV(n->log, NC_LOG_INFO, "config", "configuration changed",
                     NC_F_STR("key", ch->key->name), NC_F_U64("version", ch->version),
                     NC_F_STR("new", secret ? "<redacted>" : ch->new_value),
                     NC_F_STR("source", nc_config_source_name(ch->source)));
        }
        n->cfg_seen_version = list.version;
        nc_config_change_list_free(&list);
    } else {
        n->cfg_seen_version = nc_config_version(n->cfg);
    }
    api_config_notify_watchers(n);
}

/* ---- signals ---- */

static void sighup_cb(uv_signal_t *s, int signum)
{
    node *n = s->data;
    (void)signum;
    nc_config_reload_report rep;
    mb_error e;
    mb_error_clear(&e);
    NC_INFO(n->log, "config", "SIGHUP: reloading configuration");
    /* Reopen the log file too (after an external rotation). */
    char path[4096];
    if (nc_config_get_text(n->cfg, NC_CFG_LOG_FILE, path, sizeof(path)) == MB_OK &&
        path[0] != '\0' && nc_log_reopen(n->log, path, &e) != MB_OK)
        NC_LOGKV(n->log, NC_LOG_ERROR, "config", "cannot reopen log file",
                 NC_F_STR("error", e.msg));
    mb_error_clear(&e);
    if (nc_config_reload(n->cfg, NULL, &rep, &e) != MB_OK) {
        NC_LOGKV(n->log, NC_LOG_ERROR, "config", "reload failed; configuration unchanged",
                 NC_F_STR("error", e.msg));
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "error", e.msg);
        node_event(n, "config.reload_failed", "", p);
        cJSON_Delete(p);
        return;
    }
    for (size_t i = 0; i < rep.n_ignored; i++)
        NC_LOGKV(n->log, NC_LOG_WARN, "config",
                 "changed key is not reloadable; restart the node to apply it",
                 NC_F_STR("key", rep.ignored[i]->name));
    NC_LOGKV(n->log, NC_LOG_INFO, "config", "reload done", NC_F_U64("applied", rep.n_applied),
             NC_F_U64("ignored", rep.n_ignored));
    node_config_changed(n);
}

static void sigstop_cb(uv_signal_t *s, int signum)
{
    node *n = s->data;
    NC_LOGKV(n->log, NC_LOG_INFO, "node", "signal received; shutting down",
             NC_F_STR("signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"));
    node_stop(n);
}

/* ---- lifecycle ---- */

static void write_addr_file(node *n)
{
    char tmp[4300];
    snprintf(n->addr_file, sizeof(n->addr_file), "%s/http.addr", n->data_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", n->addr_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f, "%s\n", n->http_addr);
    if (fclose(f) == 0)
        (void)rename(tmp, n->addr_file);
}

int node_open(node *n, nc_config *cfg, nc_log *log, mb_error *err)
{
    int rv;
    memset(n, 0, sizeof(*n));
    n->lock_fd = -1;
    n->cfg = cfg;
    n->log = log;
    n->start_wall_ms = node_wall_ms();
    if ((rv = uv_loop_init(&n->loop)) != 0)
        return mb_errorf(err, MB_EIO, "init event loop: %s", uv_strerror(rv));
    n->start_mono_ms = uv_now(&n->loop);
    signal(SIGPIPE, SIG_IGN);

    nc_config_get_text(cfg, NC_CFG_DATA_DIR, n->data_dir, sizeof(n->data_dir));
    n->node_id = (uint64_t)nc_config_int(cfg, NC_CFG_NODE_ID);
    nc_config_get_text(cfg, NC_CFG_NODE_NAME, n->node_name, sizeof(n->node_name));
    if (n->node_name[0] == '\0' && gethostname(n->node_name, sizeof(n->node_name) - 1) != 0)
        snprintf(n->node_name, sizeof(n->node_name), "node-%llu", (unsigned long long)n->node_id);
    n->cfg_seen_version = nc_config_version(cfg);

    if ((rv = lock_data_dir(n, err)) != MB_OK)
        return rv;

    char db[4200];
    snprintf(db, sizeof(db), "%s/db", n->data_dir);
    storage_options so = {
        .path = db,
        .durability = nc_config_int(cfg, NC_CFG_DURABILITY) == 1 ? STORAGE_DURABLE : STORAGE_FAST,
        .block_cache_bytes = 0,
        .background =
            nc_config_int(cfg, NC_CFG_STORAGE_BACKGROUND) == 1 ? STORAGE_BG_NORMAL : STORAGE_BG_LOW,
    };
    if ((rv = storage_open(&so, &n->store, err)) != MB_OK)
        return rv;

    api_register_all(&n->router);
    if ((rv = nc_metrics_new(&n->metrics, err)) != MB_OK)
        return rv;
    if ((rv = register_metrics(n, err)) != MB_OK)
        return rv;
    if ((rv = nc_alerts_new(&n->alerts, n->metrics, alert_cb, n, err)) != MB_OK)
        return rv;
    char *rules = nc_config_dup_text(cfg, NC_CFG_ALERT_RULES);
    if (rules == NULL)
        return mb_errorf(err, MB_ENOMEM, "out of memory");
    rv = nc_alerts_set_rules(n->alerts, rules, (int64_t)uv_now(&n->loop), err);
    free(rules);
    if (rv != MB_OK)
        return rv;

    /* The agent runtime before the HTTP server: API handlers use it. */
    if ((rv = node_services_start(n, err)) != MB_OK)
        return rv;
    /* proposals piece: vote requests and agents' votes/proposals (its ops
     * join the cluster ops table in node_cluster_open). */
    if ((rv = node_proposals_start(n, err)) != MB_OK)
        return rv;

    char listen[300];
    nc_config_get_text(cfg, NC_CFG_HTTP_ADDRESS, listen, sizeof(listen));
    http_server_opts ho = {
        .listen = listen,
        .body_limit_bytes = (size_t)nc_config_size_bytes(cfg, NC_CFG_HTTP_MAX_BODY),
        .router = &n->router,
        .loop = &n->loop,
        .node = n,
        .observe = http_observe,
        .observe_arg = n,
        .bug = http_bug,
        .bug_arg = n,
    };
    if ((rv = http_server_start(&ho, &n->http, err)) != MB_OK)
        return rv;
    char *token = nc_config_dup_text(cfg, NC_CFG_API_TOKEN);
    if (token == NULL)
        return mb_errorf(err, MB_ENOMEM, "out of memory");
    rv = http_server_set_token(n->http, token);
    memset(token, 0, strlen(token));
    free(token);
    if (rv != MB_OK)
        return mb_errorf(err, rv, "set API token: out of memory");
    {
        char host[256];
        uint16_t port;
        if (nc_config_parse_address(listen, host, sizeof(host), &port, NULL) != MB_OK)
            snprintf(host, sizeof(host), "127.0.0.1");
        snprintf(n->http_addr, sizeof(n->http_addr), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host,
                 http_server_port(n->http));
    }

    if ((rv = nc_config_subscribe(cfg, config_change_cb, n, &n->cfg_sub_id)) != MB_OK)
        return mb_errorf(err, rv, "subscribe to configuration changes");
    n->cfg_subscribed = 1;

    uv_signal_init(&n->loop, &n->sig_term);
    uv_signal_init(&n->loop, &n->sig_int);
    uv_signal_init(&n->loop, &n->sig_hup);
    uv_timer_init(&n->loop, &n->alert_timer);
    uv_timer_init(&n->loop, &n->retention_timer);
    n->handles_open = 1;
    n->sig_term.data = n->sig_int.data = n->sig_hup.data = n->alert_timer.data = n;
    n->retention_timer.data = n;
    uv_signal_start(&n->sig_term, sigstop_cb, SIGTERM);
    uv_signal_start(&n->sig_int, sigstop_cb, SIGINT);
    uv_signal_start(&n->sig_hup, sighup_cb, SIGHUP);
    alert_timer_restart(n);
    retention_restart(n);

    if ((rv = repl_open(n, err)) != MB_OK)
        return rv;
    if ((rv = studies_open(n, (unsigned)nc_config_int(cfg, NC_CFG_STUDY_EVALUATORS), err)) != MB_OK)
        return rv;                                /* piece "studies" */
    if ((rv = node_coord_start(n, err)) != MB_OK) /* piece: agents/coord */
        return rv;
    {
        /* Not fatal (out of memory only): agents then get MB_EUNAVAIL. */
        mb_error ce;
        mb_error_clear(&ce);
        if (node_cluster_open(n, &ce) != MB_OK)
            NC_LOGKV(n->log, NC_LOG_ERROR, "node", "cluster services for agents not started",
                     NC_F_STR("error", ce.msg));
    }
    if ((rv = placement_open(n, err)) != MB_OK) /* placement: cluster agents */
        return rv;

    write_addr_file(n);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "pid", (double)getpid());
    cJSON_AddStringToObject(p, "version", MABEAMD_VERSION);
    cJSON_AddStringToObject(p, "http", n->http_addr);
    cJSON_AddStringToObject(p, "node_name", n->node_name);
    node_event(n, "node.started", n->node_name, p);
    cJSON_Delete(p);
    NC_LOGKV(n->log, NC_LOG_INFO, "node", "mabeamd started", NC_F_STR("http", n->http_addr),
             NC_F_STR("data_dir", n->data_dir), NC_F_I64("pid", (int64_t)getpid()),
             NC_F_STR("version", MABEAMD_VERSION));
    return MB_OK;
}

void node_run(node *n)
{
    uv_run(&n->loop, UV_RUN_DEFAULT);
}

static void handle_closed_cb(uv_handle_t *h)
{
    (void)h;
}

void node_stop(node *n)
{
    if (n->stopping)
        return;
    n->stopping = 1;
    if (n->http != NULL) {
        http_server_close(n->http);
        n->http = NULL;
    }
    /* After the HTTP server (its parked calls are answered): leadership
     * transfer, raft close, mesh close; completes while node_close runs
     * the loop. */
    studies_close(n->studies);     /* piece "studies": before its writes are refused */
    placement_close(n->placement); /* before replication: it submits through it */
    node_coord_stop(n);            /* piece: agents/coord */
    repl_close(n->repl);
    /* After repl_close (its MB_ECLOSED results reach agents' writes),
     * before the agents stop. */
    node_cluster_close(n->cluster);
    if (n->addr_file[0] != '\0')
        unlink(n->addr_file);
    /* Agents end before storage closes; their last events are written. */
    node_services_stop(n->services);
    node_proposals_stop(n->proposals); /* proposals piece: after the agents */
    api_mailbox_close(n);              /* after the agents: reply agents use it */
    if (n->cfg_subscribed) {
        nc_config_unsubscribe(n->cfg, n->cfg_sub_id);
        n->cfg_subscribed = 0;
    }
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "uptime_s", (double)(node_wall_ms() - n->start_wall_ms) / 1000.0);
    node_event(n, "node.stopped", n->node_name, p);
    cJSON_Delete(p);
    if (n->handles_open) {
        uv_close((uv_handle_t *)&n->sig_term, handle_closed_cb);
        uv_close((uv_handle_t *)&n->sig_int, handle_closed_cb);
        uv_close((uv_handle_t *)&n->sig_hup, handle_closed_cb);
        uv_close((uv_handle_t *)&n->alert_timer, handle_closed_cb);
        uv_close((uv_handle_t *)&n->retention_timer, handle_closed_cb);
        n->handles_open = 0;
    }
    NC_INFO(n->log, "node", "mabeamd stopped");
}

int node_close(node *n)
{
    if (!n->stopping) {
        /* A failed node_open: close what was opened without an event. */
        n->stopping = 1;
        if (n->http != NULL) {
            http_server_close(n->http);
            n->http = NULL;
        }
        if (n->cfg_subscribed)
            nc_config_unsubscribe(n->cfg, n->cfg_sub_id);
        node_coord_stop(n); /* piece: agents/coord */
        node_services_stop(n->services);
        studies_close(n->studies);
        node_proposals_stop(n->proposals);
        api_mailbox_close(n);
        if (n->handles_open) {
            uv_close((uv_handle_t *)&n->sig_term, handle_closed_cb);
            uv_close((uv_handle_t *)&n->sig_int, handle_closed_cb);
            uv_close((uv_handle_t *)&n->sig_hup, handle_closed_cb);
            uv_close((uv_handle_t *)&n->alert_timer, handle_closed_cb);
            uv_close((uv_handle_t *)&n->retention_timer, handle_closed_cb);
        }
    }
    /* Let close callbacks run (HTTP wake handle, parked timers). */
    uv_run(&n->loop, UV_RUN_DEFAULT);
    consensus_raft_free(n->raft_spent); /* raft's I/O is done now */
    n->raft_spent = NULL;
    nc_alerts_free(n->alerts);
    n->alerts = NULL;
    nc_metrics_free(n->metrics);
    n->metrics = NULL;
    storage_close(n->store);
    n->store = NULL;
    if (n->lock_fd >= 0) {
        close(n->lock_fd);
        n->lock_fd = -1;
    }
    return uv_loop_close(&n->loop);
}
