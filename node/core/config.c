/* Node configuration: schema, value syntax checks, the config file parser,
 * source precedence, reload, and the configuration service (versioned
 * change log, subscribers, JSON renderings). See config.h. */
#include "node/core/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal/clock.h"
#include "node/core/telemetry.h"

/* ---- schema --------------------------------------------------------------- */

static const char *const log_levels[] = { "trace", "debug", "info", "warn", "error", NULL };
static const char *const log_formats[] = { "text", "json", NULL };
static const char *const durabilities[] = { "fast", "durable", NULL };
static const char *const bg_priorities[] = { "low", "normal", NULL };

static int validate_ipv4_address(const nc_config_key *key, const char *value, mb_error *err);
static int validate_alert_rules(const nc_config_key *key, const char *value, mb_error *err);
static int validate_nonempty(const nc_config_key *key, const char *value, mb_error *err);

#define MS_PER_S   1000LL
#define MS_PER_MIN (60 * MS_PER_S)
#define MS_PER_H   (60 * MS_PER_MIN)
#define MS_PER_DAY (24 * MS_PER_H)

static const nc_config_key schema[NC_CFG_COUNT_] = {
    [NC_CFG_NODE_ID] = { NC_CFG_NODE_ID, "node_id", NC_CT_INT, "1", false, false, 1, 65535, NULL,
                         NULL,
                         "Raft id of this node, unique in the cluster (1..65535: agent ids hold 16 "
                         "bits of node id)." },
    [NC_CFG_NODE_NAME] = { NC_CFG_NODE_NAME, "node_name", NC_CT_STRING, "", false, false, 0, 0,
                           NULL, NULL, "Human name of the node; empty means the host name." },
    [NC_CFG_DATA_DIR] = { NC_CFG_DATA_DIR, "data_dir", NC_CT_STRING, "./mabeam-data", false, false,
                          0, 0, NULL, validate_nonempty,
                          "Directory of the event log, raft log and checkpoints; must be "
                          "writable (created if missing)." },
    [NC_CFG_HTTP_ADDRESS] = { NC_CFG_HTTP_ADDRESS, "http_address", NC_CT_ADDRESS, "127.0.0.1:7700",
                              false, false, 0, 0, NULL, NULL,
                              "host:port of the HTTP API (loopback by default)." },
    [NC_CFG_MESH_ADDRESS] = { NC_CFG_MESH_ADDRESS, "mesh_address", NC_CT_ADDRESS, "127.0.0.1:7701",
                              false, false, 0, 0, NULL, NULL,
                              "host:port the NNG mesh listens on." },
    [NC_CFG_RAFT_ADDRESS] = { NC_CFG_RAFT_ADDRESS, "raft_address", NC_CT_ADDRESS, "127.0.0.1:7702",
                              false, false, 0, 0, NULL, validate_ipv4_address,
                              "IPv4:port of the raft transport (raft 0.15 takes IPv4 "
                              "literals only)." },
    [NC_CFG_SEEDS] = { NC_CFG_SEEDS, "seeds", NC_CT_ADDRESSES, "", false, false, 0, 0, NULL, NULL,
                       "Comma-separated mesh addresses of nodes to join; empty starts a new "
                       "cluster." },
    [NC_CFG_CLUSTER_SECRET] = { NC_CFG_CLUSTER_SECRET, "cluster_secret", NC_CT_STRING, "", false,
                                true, 0, 0, NULL, NULL,
                                "Shared secret that authenticates mesh peers (redacted)." },
    [NC_CFG_API_TOKEN] = { NC_CFG_API_TOKEN, "api_token", NC_CT_STRING, "", true, true, 0, 0, NULL,
                           NULL,
                           "Bearer token required by the HTTP API; empty disables auth "
                           "(redacted)." },
    [NC_CFG_LOG_LEVEL] = { NC_CFG_LOG_LEVEL, "log_level", NC_CT_ENUM, "info", true, false, 0, 0,
                           log_levels, NULL, "Lowest level written: trace|debug|info|warn|error." },
    [NC_CFG_LOG_FORMAT] = { NC_CFG_LOG_FORMAT, "log_format", NC_CT_ENUM, "text", true, false, 0, 0,
                            log_formats, NULL, "Log line format: text|json." },
    [NC_CFG_LOG_FILE] = { NC_CFG_LOG_FILE, "log_file", NC_CT_STRING, "", true, false, 0, 0, NULL,
                          NULL, "Log file (appended; reopened on reload); empty means stderr." },
    [NC_CFG_DURABILITY] = { NC_CFG_DURABILITY, "durability", NC_CT_ENUM, "fast", false, false, 0, 0,
                            durabilities, NULL,
                            "fast: no fsync per append (survives a process crash); durable: "
                            "fsync the WAL before acknowledging." },
    [NC_CFG_STORAGE_BACKGROUND] = { NC_CFG_STORAGE_BACKGROUND, "storage_background_priority",
                                    NC_CT_ENUM, "low", false, false, 0, 0, bg_priorities, NULL,
                                    "low: the event log's flushes and compactions run at nice 19 "
                                    "in the idle I/O class, behind raft's appends and the control "
                                    "loop; normal: at the daemon's own priority." },
    [NC_CFG_AGENT_WORKERS] = { NC_CFG_AGENT_WORKERS, "agent_workers", NC_CT_INT, "0", false, false,
                               0, 1024, NULL, NULL,
                               "Agent worker threads; 0 means one per CPU core." },
    [NC_CFG_AGENT_SPIN_US] = { NC_CFG_AGENT_SPIN_US, "agent_spin_us", NC_CT_INT, "50", false, false,
                               0, 1000000, NULL, NULL,
                               "Microseconds an idle agent worker spins before it sleeps; 0: it "
                               "sleeps at once (nodes that share cores with other busy threads)." },
    [NC_CFG_ALERT_RULES] = { NC_CFG_ALERT_RULES, "alert_rules", NC_CT_STRING, "", true, false, 0, 0,
                             NULL, validate_alert_rules,
                             "Alert rules 'name: metric[{l=\"v\"}][:stat] op threshold [for "
                             "duration]' separated by ';'." },
    [NC_CFG_ALERT_INTERVAL] = { NC_CFG_ALERT_INTERVAL, "alert_interval", NC_CT_DURATION, "1s", true,
                                false, 10, MS_PER_H, NULL, NULL,
                                "How often alert rules are evaluated." },
    /* failover2: detection fast by default (a node whose process is gone
     * is down after failure_timeout), slow only where the connection stays
     * open (a hung or paused process): docs/cluster.md "Failure detector" */
    [NC_CFG_HEARTBEAT_INTERVAL] = { NC_CFG_HEARTBEAT_INTERVAL, "heartbeat_interval", NC_CT_DURATION,
                                    "200ms", false, false, 1, 60 * MS_PER_S, NULL, NULL,
                                    "Interval of mesh heartbeats between nodes." },
    [NC_CFG_FAILURE_TIMEOUT] = { NC_CFG_FAILURE_TIMEOUT, "failure_timeout", NC_CT_DURATION, "600ms",
                                 false, false, 100, MS_PER_H, NULL, NULL,
                                 "Heartbeats missing this long, and no open connection, mark a "
                                 "node down; must exceed heartbeat_interval." },
    [NC_CFG_UNRESPONSIVE_TIMEOUT] = { NC_CFG_UNRESPONSIVE_TIMEOUT, "unresponsive_timeout",
                                      NC_CT_DURATION, "5s", false, false, 200, MS_PER_H, NULL, NULL,
                                      "Heartbeats missing this long mark a node down even while "
                                      "its connection stays open (hung, paused, cut off); at "
                                      "least 2 x failure_timeout." },
    [NC_CFG_ELECTION_TIMEOUT] = { NC_CFG_ELECTION_TIMEOUT, "election_timeout", NC_CT_DURATION,
                                  "500ms", false, false, 100, 60 * MS_PER_S, NULL, NULL,
                                  "Raft election timeout." },
    [NC_CFG_HTTP_MAX_BODY] = { NC_CFG_HTTP_MAX_BODY, "http_max_body", NC_CT_SIZE, "1MiB", true,
                               false, 1024, 1LL << 30, NULL, NULL,
                               "Largest HTTP request body accepted." },
    [NC_CFG_EVENT_RETENTION] = { NC_CFG_EVENT_RETENTION, "event_retention", NC_CT_DURATION, "0",
                                 true, false, 0, 3650 * MS_PER_DAY, NULL, NULL,
                                 "Events older than this may be deleted; 0 keeps everything." },
    [NC_CFG_WRITE_TIMEOUT] = { NC_CFG_WRITE_TIMEOUT, "write_timeout", NC_CT_DURATION, "5s", false,
                               false, 100, 10 * MS_PER_MIN, NULL, NULL,
                               "A replicated write (or linearizable read) not committed by then "
                               "fails with 503 MB_ENOQUORUM; retries inside it reuse the same "
                               "idempotency id." },
    [NC_CFG_MAX_VOTERS] = { NC_CFG_MAX_VOTERS, "max_voters", NC_CT_INT, "3", false, false, 1, 9,
                            NULL, NULL,
                            "Raft voters the leader promotes joining nodes to (3 or 5 usual); "
                            "further nodes are standbys." },
    [NC_CFG_CHECKPOINT_INTERVAL_MS] = { NC_CFG_CHECKPOINT_INTERVAL_MS, "checkpoint_interval_ms",
                                        NC_CT_INT, "5000", true, false, 0, 24LL * MS_PER_H, NULL,
                                        NULL,
                                        "How often every cluster agent is checkpointed into the "
                                        "replicated state (ms); 0 = only when an agent asks." },
    [NC_CFG_CHECKPOINT_MAX_BYTES] = { NC_CFG_CHECKPOINT_MAX_BYTES, "checkpoint_max_bytes",
                                      NC_CT_SIZE, "1MiB", true, false, 1, 4LL << 20, NULL, NULL,
                                      "Largest agent checkpoint replicated; a larger one is "
                                      "refused (the previous one stays)." },
    [NC_CFG_VOTER_REPLACE_AFTER] = { NC_CFG_VOTER_REPLACE_AFTER, "voter_replace_after",
                                     NC_CT_DURATION, "30s", false, false, 0, 7 * MS_PER_DAY, NULL,
                                     NULL,
                                     "A voter the failure detector has held down this long is "
                                     "demoted to standby when a live standby can take its place; "
                                     "0 never replaces." },
    [NC_CFG_SNAPSHOT_THRESHOLD] = { NC_CFG_SNAPSHOT_THRESHOLD, "snapshot_threshold", NC_CT_INT,
                                    "65536", false, false, 4, 100000000, NULL, NULL,
                                    "Raft entries applied between two snapshots of the replicated "
                                    "state." },
    [NC_CFG_SNAPSHOT_TRAILING] = { NC_CFG_SNAPSHOT_TRAILING, "snapshot_trailing", NC_CT_INT, "8192",
                                   false, false, 2, 100000000, NULL, NULL,
                                   "Raft entries kept in the log after a snapshot; a node further "
                                   "behind gets the whole snapshot (its event log then has a "
                                   "gap)." },
    [NC_CFG_SNAPSHOT_MAX_BYTES] = { NC_CFG_SNAPSHOT_MAX_BYTES, "snapshot_max_bytes", NC_CT_SIZE,
                                    "64MiB", false, false, 1LL << 20, 1LL << 40, NULL, NULL,
                                    "Raft entries of this many bytes applied since the last "
                                    "snapshot start one before snapshot_threshold; also bounds the "
                                    "trailing entries kept (large values)." },
    [NC_CFG_STUDY_EVALUATORS] = { NC_CFG_STUDY_EVALUATORS, "study_evaluators", NC_CT_INT, "4",
                                  false, false, 0, 256, NULL, NULL,
                                  "Evaluator slots of this node for study trials (threads; "
                                  "objective processes run one per busy slot)." },
    [NC_CFG_RAFT_DEFER_AIO_DESTROY] = { NC_CFG_RAFT_DEFER_AIO_DESTROY, "raft_defer_aio_destroy",
                                        NC_CT_BOOL, "true", false, false, 0, 0, NULL, NULL,
                                        "Destroy a closed raft log segment's kernel AIO context "
                                        "on a helper thread instead of the loop thread, where "
                                        "libraft 0.15 waits tens of milliseconds for it." },
};

const nc_config_key *nc_config_schema(void)
{
    return schema;
}

static const char *const type_names[] = { "string", "int",  "bool",    "duration",
                                          "size",   "enum", "address", "addresses" };

const char *nc_config_type_name(nc_config_type type)
{
    return (unsigned)type < sizeof(type_names) / sizeof(type_names[0]) ? type_names[type] : "?";
}

static const char *const source_names[] = { "default", "file", "env", "flag", "runtime" };

const char *nc_config_source_name(nc_config_source src)
{
    return (unsigned)src <= NC_CS_RUNTIME ? source_names[src] : "?";
}

/* Compare a key name with `s` of length n, treating '-' in s as '_'. */
static bool key_name_equal(const char *name, const char *s, size_t n)
{
    if (strlen(name) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i] == '-' ? '_' : s[i];
        if (c != name[i])
            return false;
    }
    return true;
}

static const nc_config_key *key_find_n(const char *s, size_t n)
{
    for (int i = 0; i < NC_CFG_COUNT_; i++)
        if (key_name_equal(schema[i].name, s, n))
            return &schema[i];
    return NULL;
}

const nc_config_key *nc_config_key_find(const char *name)
{
    return name == NULL ? NULL : key_find_n(name, strlen(name));
}

/* Levenshtein distance with '-' == '_' and case folded, capped at 64 chars. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            char ca = (char)tolower((unsigned char)(a[i - 1] == '-' ? '_' : a[i - 1]));
            char cb = (char)tolower((unsigned char)(b[j - 1] == '-' ? '_' : b[j - 1]));
            size_t best = prev[j - 1] + (ca == cb ? 0 : 1);
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            cur[j] = best;
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

const nc_config_key *nc_config_key_suggest(const char *name)
{
    if (name == NULL)
        return NULL;
    const nc_config_key *best = NULL;
    size_t best_d = SIZE_MAX;
    for (int i = 0; i < NC_CFG_COUNT_; i++) {
        size_t d = edit_distance(name, schema[i].name);
        if (d < best_d) {
            best_d = d;
            best = &schema[i];
        }
    }
    /* Close enough to be a typo: at most a third of the name, and <= 3. */
    size_t limit = strlen(name) / 3;
    if (limit < 1)
        limit = 1;
    if (limit > 3)
        limit = 3;
    return best_d <= limit ? best : NULL;
}

/* "unknown key 'x' (did you mean 'y'?)" */
static int unknown_key_error(mb_error *err, const char *where, const char *name)
{
    const nc_config_key *s = nc_config_key_suggest(name);
    if (s != NULL)
        return mb_errorf(err, MB_EINVAL, "%sunknown key '%.64s' (did you mean '%s'?)", where, name,
                         s->name);
    return mb_errorf(err, MB_EINVAL, "%sunknown key '%.64s'", where, name);
}

/* ---- value syntax ---------------------------------------------------------- */

/* Parse a non-negative decimal integer prefix; returns chars consumed, 0 if
 * none, and sets *overflow when it does not fit in int64. */
static size_t parse_digits(const char *s, int64_t *out, bool *overflow)
{
    size_t i = 0;
    int64_t v = 0;
    *overflow = false;
    while (s[i] >= '0' && s[i] <= '9') {
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            *overflow = true;
        else
            v = v * 10 + d;
        i++;
    }
    *out = v;
    return i;
}

int nc_config_parse_duration_ms(const char *s, int64_t *ms_out)
{
    if (s == NULL)
        return MB_EINVAL;
    int64_t v;
    bool ovf;
    size_t n = parse_digits(s, &v, &ovf);
    if (n == 0)
        return MB_EINVAL;
    if (ovf)
        return MB_ERANGE;
    const char *u = s + n;
    int64_t mult;
    if (*u == '\0') {
        if (v != 0)
            return MB_EINVAL; /* a unit is required, except for 0 */
        mult = 1;
    } else if (strcmp(u, "ms") == 0) {
        mult = 1;
    } else if (strcmp(u, "s") == 0) {
        mult = MS_PER_S;
    } else if (strcmp(u, "m") == 0) {
        mult = MS_PER_MIN;
    } else if (strcmp(u, "h") == 0) {
        mult = MS_PER_H;
    } else if (strcmp(u, "d") == 0) {
        mult = MS_PER_DAY;
    } else {
        return MB_EINVAL;
    }
    if (v > INT64_MAX / mult)
        return MB_ERANGE;
    *ms_out = v * mult;
    return MB_OK;
}

int nc_config_parse_size(const char *s, uint64_t *bytes_out)
{
    if (s == NULL)
        return MB_EINVAL;
    int64_t v;
    bool ovf;
    size_t n = parse_digits(s, &v, &ovf);
    if (n == 0)
        return MB_EINVAL;
    if (ovf)
        return MB_ERANGE;
    const char *u = s + n;
    static const struct {
        const char *name;
        int shift;
    } units[] = { { "", 0 },     { "B", 0 },   { "K", 10 },   { "KB", 10 }, { "KiB", 10 },
                  { "M", 20 },   { "MB", 20 }, { "MiB", 20 }, { "G", 30 },  { "GB", 30 },
                  { "GiB", 30 }, { "T", 40 },  { "TB", 40 },  { "TiB", 40 } };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(u, units[i].name) == 0) {
            if ((uint64_t)v > (UINT64_MAX >> units[i].shift))
                return MB_ERANGE;
            *bytes_out = (uint64_t)v << units[i].shift;
            return MB_OK;
        }
    }
    return MB_EINVAL;
}

static bool host_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

int nc_config_parse_address(const char *s, char *host, size_t host_size, uint16_t *port,
                            mb_error *err)
{
    if (s == NULL || *s == '\0')
        return mb_errorf(err, MB_EINVAL, "empty address (want host:port)");
    const char *host_begin, *host_end, *colon;
    if (s[0] == '[') {
        host_begin = s + 1;
        host_end = strchr(host_begin, ']');
        if (host_end == NULL)
            return mb_errorf(err, MB_EINVAL, "address '%.128s': missing ']'", s);
        if (host_end[1] != ':')
            return mb_errorf(err, MB_EINVAL, "address '%.128s': missing port (want [ipv6]:port)",
                             s);
        colon = host_end + 1;
        char tmp[INET6_ADDRSTRLEN + 1];
        size_t hl = (size_t)(host_end - host_begin);
        struct in6_addr a6;
        if (hl == 0 || hl >= sizeof(tmp))
            return mb_errorf(err, MB_EINVAL, "address '%.128s': bad IPv6 host", s);
        memcpy(tmp, host_begin, hl);
        tmp[hl] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return mb_errorf(err, MB_EINVAL, "address '%.128s': bad IPv6 host", s);
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return mb_errorf(err, MB_EINVAL, "address '%.128s': missing port (want host:port)", s);
        host_begin = s;
        host_end = colon;
        if (host_end == host_begin)
            return mb_errorf(err, MB_EINVAL, "address '%.128s': missing host (want host:port)", s);
        for (const char *p = host_begin; p < host_end; p++) {
            if (*p == ':')
                return mb_errorf(err, MB_EINVAL,
                                 "address '%.128s': IPv6 hosts need brackets ([::1]:port)", s);
            if (!host_char_ok(*p))
                return mb_errorf(err, MB_EINVAL, "address '%.128s': bad character in host", s);
        }
    }
    const char *ps = colon + 1;
    int64_t pv;
    bool ovf;
    size_t pn = parse_digits(ps, &pv, &ovf);
    if (pn == 0 || ps[pn] != '\0' || ovf || pv < 1 || pv > 65535)
        return mb_errorf(err, MB_EINVAL, "bad port '%.32s' in address '%.128s' (must be 1..65535)",
                         ps, s);
    size_t hl = (size_t)(host_end - host_begin);
    if (host != NULL) {
        if (hl >= host_size)
            return mb_errorf(err, MB_ETOOBIG, "address '%.128s': host too long", s);
        memcpy(host, host_begin, hl);
        host[hl] = '\0';
    }
    if (port != NULL)
        *port = (uint16_t)pv;
    return MB_OK;
}

static int validate_ipv4_address(const nc_config_key *key, const char *value, mb_error *err)
{
    char host[256];
    struct in_addr a;
    int rc = nc_config_parse_address(value, host, sizeof(host), NULL, NULL);
    if (rc != MB_OK || inet_pton(AF_INET, host, &a) != 1)
        return mb_errorf(err, MB_EINVAL,
                         "key '%s': '%.128s' is not an IPv4 literal address (raft 0.15 "
                         "cannot resolve host names)",
                         key->name, value);
    return MB_OK;
}

static int validate_alert_rules(const nc_config_key *key, const char *value, mb_error *err)
{
    mb_error e;
    mb_error_clear(&e);
    int rc = nc_alerts_parse_check(value, &e);
    if (rc != MB_OK)
        return mb_errorf(err, rc, "key '%s': %s", key->name, e.msg);
    return MB_OK;
}

static int validate_nonempty(const nc_config_key *key, const char *value, mb_error *err)
{
    if (value[0] == '\0')
        return mb_errorf(err, MB_EINVAL, "key '%s': must not be empty", key->name);
    return MB_OK;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static void fmt_limit(const nc_config_key *key, int64_t v, char *buf, size_t size)
{
    if (key->type == NC_CT_DURATION) {
        if (v != 0 && v % MS_PER_H == 0)
            snprintf(buf, size, "%lldh", (long long)(v / MS_PER_H));
        else if (v != 0 && v % MS_PER_S == 0)
            snprintf(buf, size, "%llds", (long long)(v / MS_PER_S));
        else
            snprintf(buf, size, "%lldms", (long long)v);
    } else if (key->type == NC_CT_SIZE && v != 0 && v % (1 << 20) == 0) {
        snprintf(buf, size, "%lldMiB", (long long)(v >> 20));
    } else {
        snprintf(buf, size, "%lld", (long long)v);
    }
}

static int range_error(const nc_config_key *key, const char *value, mb_error *err)
{
    char lo[32], hi[32];
    fmt_limit(key, key->min, lo, sizeof(lo));
    fmt_limit(key, key->max, hi, sizeof(hi));
    return mb_errorf(err, MB_ERANGE, "key '%s': %.64s is out of range (%s..%s)", key->name, value,
                     lo, hi);
}

/* Check `value` for `key`; on success store the number (int types) in
 * *num_out and, for enums, the canonical name in *canon (static). */
static int check_value(const nc_config_key *key, const char *value, int64_t *num_out,
                       const char **canon, mb_error *err)
{
    int64_t num = 0;
    if (canon != NULL)
        *canon = NULL;
    for (const char *p = value; *p; p++) {
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return mb_errorf(err, MB_EINVAL, "key '%s': control character in value", key->name);
    }
    if (strlen(value) > 4096)
        return mb_errorf(err, MB_EINVAL, "key '%s': value longer than 4096 bytes", key->name);
    switch (key->type) {
    case NC_CT_STRING:
        break;
    case NC_CT_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (value[0] == '\0' || *end != '\0' || isspace((unsigned char)value[0]))
            return mb_errorf(err, MB_EINVAL, "key '%s': '%.64s' is not an integer", key->name,
                             value);
        if (errno == ERANGE || v < key->min || v > key->max)
            return range_error(key, value, err);
        num = v;
        break;
    }
    case NC_CT_BOOL: {
        bool b;
        if (!parse_bool(value, &b))
            return mb_errorf(err, MB_EINVAL,
                             "key '%s': '%.64s' is not a boolean (true/false/yes/no/on/off/1/0)",
                             key->name, value);
        num = b;
        break;
    }
    case NC_CT_DURATION: {
        int rc = nc_config_parse_duration_ms(value, &num);
        if (rc == MB_EINVAL)
            return mb_errorf(err, MB_EINVAL,
                             "key '%s': '%.64s' is not a duration (e.g. 500ms, 30s, 5m, 1h, 2d)",
                             key->name, value);
        if (rc != MB_OK || num < key->min || num > key->max)
            return range_error(key, value, err);
        break;
    }
    case NC_CT_SIZE: {
        uint64_t b;
        int rc = nc_config_parse_size(value, &b);
        if (rc == MB_EINVAL)
            return mb_errorf(err, MB_EINVAL,
                             "key '%s': '%.64s' is not a size (e.g. 4096, 64KiB, 16MiB, 1GiB)",
                             key->name, value);
        if (rc != MB_OK || b > (uint64_t)key->max || (int64_t)b < key->min)
            return range_error(key, value, err);
        num = (int64_t)b;
        break;
    }
    case NC_CT_ENUM: {
        int i;
        for (i = 0; key->enum_names[i] != NULL; i++)
            if (strcasecmp(value, key->enum_names[i]) == 0)
                break;
        if (key->enum_names[i] == NULL) {
            char list[256] = "";
            size_t len = 0;
            for (int j = 0; key->enum_names[j] != NULL && len < sizeof(list); j++)
                len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", j ? "|" : "",
                                        key->enum_names[j]);
            return mb_errorf(err, MB_EINVAL, "key '%s': '%.64s' is not one of %s", key->name, value,
                             list);
        }
        num = i;
        if (canon != NULL)
            *canon = key->enum_names[i];
        break;
    }
    case NC_CT_ADDRESS: {
        mb_error e;
        mb_error_clear(&e);
        if (nc_config_parse_address(value, NULL, 0, NULL, &e) != MB_OK)
            return mb_errorf(err, MB_EINVAL, "key '%s': %s", key->name, e.msg);
        break;
    }
    case NC_CT_ADDRESSES: {
        const char *p = value;
        while (*p) {
            while (*p == ' ' || *p == '\t')
                p++;
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            char one[300];
            if (n >= sizeof(one))
                return mb_errorf(err, MB_EINVAL, "key '%s': address too long", key->name);
            memcpy(one, p, n);
            one[n] = '\0';
            mb_error ae;
            mb_error_clear(&ae);
            if (nc_config_parse_address(one, NULL, 0, NULL, &ae) != MB_OK)
                return mb_errorf(err, MB_EINVAL, "key '%s': %s", key->name, ae.msg);
            if (e == NULL)
                break;
            p = e + 1;
            if (*p == '\0')
                return mb_errorf(err, MB_EINVAL, "key '%s': trailing ',' in address list",
                                 key->name);
        }
        break;
    }
    default:
        assert(0 && "unknown config type");
        return mb_errorf(err, MB_EINTERNAL, "key '%s': unknown type", key->name);
    }
    if (key->validate != NULL) {
        int rc = key->validate(key, value, err);
        if (rc != MB_OK)
            return rc;
    }
    if (num_out != NULL)
        *num_out = num;
    return MB_OK;
}

int nc_config_check_value(const nc_config_key *key, const char *value, mb_error *err)
{
    if (key == NULL || value == NULL)
        return mb_errorf(err, MB_EINVAL, "no key or no value");
    return check_value(key, value, NULL, NULL, err);
}

/* ---- config file text ------------------------------------------------------ */

#define KEY_TEXT_MAX   64
#define VALUE_TEXT_MAX 4096

int nc_config_parse_text(const char *text, size_t len, nc_config_entry_cb entry_cb, void *arg,
                         mb_error *err)
{
    int rc = MB_OK;
    char *value = malloc(VALUE_TEXT_MAX + 1);
    if (value == NULL)
        return mb_errorf(err, MB_ENOMEM, "allocate config value buffer");
    size_t pos = 0;
    int line = 0;
    while (pos < len) {
        line++;
        size_t eol = pos;
        while (eol < len && text[eol] != '\n')
            eol++;
        size_t end = eol;
        if (end > pos && text[end - 1] == '\r')
            end--;
        const char *s = text + pos;
        size_t n = end - pos;
        pos = eol < len ? eol + 1 : eol;
        if (memchr(s, '\0', n) != NULL) {
            rc = mb_errorf(err, MB_EINVAL, "line %d: NUL byte", line);
            goto out;
        }
        size_t i = 0;
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == n || s[i] == '#')
            continue;
        size_t k0 = i;
        while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.'))
            i++;
        size_t klen = i - k0;
        if (klen == 0) {
            rc = mb_errorf(err, MB_EINVAL, "line %d: expected 'key = value'", line);
            goto out;
        }
        if (klen > KEY_TEXT_MAX) {
            rc = mb_errorf(err, MB_EINVAL, "line %d: key longer than %d bytes", line, KEY_TEXT_MAX);
            goto out;
        }
        char key[KEY_TEXT_MAX + 1];
        memcpy(key, s + k0, klen);
        key[klen] = '\0';
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == n || s[i] != '=') {
            rc = mb_errorf(err, MB_EINVAL, "line %d: expected '=' after key '%s'", line, key);
            goto out;
        }
        i++;
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        size_t vlen = 0;
        if (i < n && s[i] == '"') {
            i++;
            bool closed = false;
            while (i < n) {
                char c = s[i++];
                if (c == '"') {
                    closed = true;
                    break;
                }
                if (c == '\\') {
                    if (i == n)
                        break;
                    char e = s[i++];
                    switch (e) {
                    case '"':
                    case '\\':
                        c = e;
                        break;
                    case 'n':
                        c = '\n';
                        break;
                    case 't':
                        c = '\t';
                        break;
                    default:
                        rc = mb_errorf(err, MB_EINVAL, "line %d: unknown escape '\\%c'", line,
                                       isprint((unsigned char)e) ? e : '?');
                        goto out;
                    }
                }
                if (vlen == VALUE_TEXT_MAX) {
                    rc = mb_errorf(err, MB_EINVAL, "line %d: value longer than %d bytes", line,
                                   VALUE_TEXT_MAX);
                    goto out;
                }
                value[vlen++] = c;
            }
            if (!closed) {
                rc = mb_errorf(err, MB_EINVAL, "line %d: unterminated quoted value", line);
                goto out;
            }
            while (i < n && (s[i] == ' ' || s[i] == '\t'))
                i++;
            if (i < n && s[i] != '#') {
                rc = mb_errorf(err, MB_EINVAL, "line %d: text after the closing quote", line);
                goto out;
            }
        } else {
            size_t v0 = i, v1 = i;
            while (v1 < n) {
                if (s[v1] == '#' && v1 > v0 && (s[v1 - 1] == ' ' || s[v1 - 1] == '\t'))
                    break;
                v1++;
            }
            while (v1 > v0 && (s[v1 - 1] == ' ' || s[v1 - 1] == '\t'))
                v1--;
            vlen = v1 - v0;
            if (vlen > VALUE_TEXT_MAX) {
                rc = mb_errorf(err, MB_EINVAL, "line %d: value longer than %d bytes", line,
                               VALUE_TEXT_MAX);
                goto out;
            }
            memcpy(value, s + v0, vlen);
        }
        value[vlen] = '\0';
        rc = entry_cb(arg, line, key, value, err);
        if (rc != MB_OK)
            goto out;
    }
out:
    free(value);
    return rc;
}

/* ---- values and the configuration object ---------------------------------- */

struct value {
    char *text; /* owned */
    int64_t num;
    nc_config_source src;
};

struct stored_change {
    uint64_t version;
    nc_config_id id;
    char *old_value; /* owned */
    char *new_value; /* owned */
    nc_config_source src;
};

struct subscriber {
    uint64_t id;
    nc_config_change_cb cb;
    void *arg;
};

struct nc_config {
    pthread_rwlock_t rw; /* vals, version, change log */
    struct value vals[NC_CFG_COUNT_];
    _Atomic uint64_t version;
    struct stored_change log[NC_CONFIG_LOG_KEEP]; /* ring */
    size_t log_start, log_n;

    pthread_mutex_t writer; /* serialises set/reload and the delivery of changes */
    struct subscriber *subs;
    size_t nsubs, subs_cap;
    uint64_t next_sub_id;

    pthread_mutex_t wait_mu; /* nc_config_wait */
    pthread_cond_t wait_cv;

    /* Sources of nc_config_load, for reload (owned copies). */
    char *file_path;
    char **envp;
    char **argv;
    int argc;
};

/* Set while this thread delivers changes of a config (re-entry guard). */
static _Thread_local nc_config *delivering;

static void values_free(struct value *v)
{
    for (int i = 0; i < NC_CFG_COUNT_; i++) {
        free(v[i].text);
        v[i].text = NULL;
    }
}

static int values_defaults(struct value *v, mb_error *err)
{
    for (int i = 0; i < NC_CFG_COUNT_; i++) {
        const char *canon = NULL;
        int rc = check_value(&schema[i], schema[i].default_value, &v[i].num, &canon, err);
        assert(rc == MB_OK && "built-in default fails its own validation");
        (void)rc;
        v[i].text = strdup(canon ? canon : schema[i].default_value);
        v[i].src = NC_CS_DEFAULT;
        if (v[i].text == NULL) {
            values_free(v);
            return mb_errorf(err, MB_ENOMEM, "allocate config defaults");
        }
    }
    return MB_OK;
}

/* Replace v's value after checking it; `where` prefixes error messages. */
static int value_put(struct value *v, const nc_config_key *key, const char *text,
                     nc_config_source src, const char *where, mb_error *err)
{
    int64_t num;
    const char *canon;
    mb_error e;
    mb_error_clear(&e);
    int rc = check_value(key, text, &num, &canon, &e);
    if (rc != MB_OK)
        return mb_errorf(err, rc, "%s%s", where, e.msg);
    char *copy = strdup(canon ? canon : text);
    if (copy == NULL)
        return mb_errorf(err, MB_ENOMEM, "%scopy value of '%s'", where, key->name);
    free(v->text);
    v->text = copy;
    v->num = num;
    v->src = src;
    return MB_OK;
}

/* Checks between keys, on a complete candidate. */
static int values_cross_check(const struct value *v, mb_error *err)
{
    if (v[NC_CFG_FAILURE_TIMEOUT].num <= v[NC_CFG_HEARTBEAT_INTERVAL].num)
        return mb_errorf(err, MB_EINVAL,
                         "key 'failure_timeout' (%s) must be greater than heartbeat_interval (%s)",
                         v[NC_CFG_FAILURE_TIMEOUT].text, v[NC_CFG_HEARTBEAT_INTERVAL].text);
    if (v[NC_CFG_UNRESPONSIVE_TIMEOUT].num < 2 * v[NC_CFG_FAILURE_TIMEOUT].num)
        return mb_errorf(
            err, MB_EINVAL,
            "key 'unresponsive_timeout' (%s) must be at least 2 x failure_timeout (%s)",
            v[NC_CFG_UNRESPONSIVE_TIMEOUT].text, v[NC_CFG_FAILURE_TIMEOUT].text);
    return MB_OK;
}

int nc_config_new(nc_config **out, mb_error *err)
{
    nc_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return mb_errorf(err, MB_ENOMEM, "allocate config");
    int rc = values_defaults(cfg->vals, err);
    if (rc != MB_OK)
        goto err_free;
    atomic_init(&cfg->version, 1);
    cfg->next_sub_id = 1;
    if (pthread_rwlock_init(&cfg->rw, NULL) != 0)
        goto err_values;
    if (pthread_mutex_init(&cfg->writer, NULL) != 0)
        goto err_rw;
    if (pthread_mutex_init(&cfg->wait_mu, NULL) != 0)
        goto err_writer;
    if (mb_cond_init_monotonic(&cfg->wait_cv) != 0)
        goto err_wait_mu;
    *out = cfg;
    return MB_OK;

err_wait_mu:
    pthread_mutex_destroy(&cfg->wait_mu);
err_writer:
    pthread_mutex_destroy(&cfg->writer);
err_rw:
    pthread_rwlock_destroy(&cfg->rw);
err_values:
    values_free(cfg->vals);
    rc = mb_errorf(err, MB_ENOMEM, "initialise config locks");
err_free:
    free(cfg);
    return rc;
}

static void strv_free(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

static char **strv_dup(char *const *v, int n_or_neg)
{
    size_t n = 0;
    if (n_or_neg >= 0)
        n = (size_t)n_or_neg;
    else if (v != NULL)
        while (v[n] != NULL)
            n++;
    char **copy = calloc(n + 1, sizeof(char *));
    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        copy[i] = strdup(v[i] ? v[i] : "");
        if (copy[i] == NULL) {
            strv_free(copy);
            return NULL;
        }
    }
    return copy;
}

void nc_config_free(nc_config *cfg)
{
    if (cfg == NULL)
        return;
    values_free(cfg->vals);
    for (size_t i = 0; i < cfg->log_n; i++) {
        struct stored_change *c = &cfg->log[(cfg->log_start + i) % NC_CONFIG_LOG_KEEP];
        free(c->old_value);
        free(c->new_value);
    }
    free(cfg->subs);
    free(cfg->file_path);
    strv_free(cfg->envp);
    strv_free(cfg->argv);
    pthread_cond_destroy(&cfg->wait_cv);
    pthread_mutex_destroy(&cfg->wait_mu);
    pthread_mutex_destroy(&cfg->writer);
    pthread_rwlock_destroy(&cfg->rw);
    free(cfg);
}

/* ---- computing a candidate from the sources -------------------------------- */

struct file_ctx {
    struct value *vals;
    const char *path;
    int seen_line[NC_CFG_COUNT_];
};

static int file_entry_cb(void *arg, int line, const char *key, const char *value, mb_error *err)
{
    struct file_ctx *fc = arg;
    char where[300];
    snprintf(where, sizeof(where), "%.200s line %d: ", fc->path, line);
    const nc_config_key *k = nc_config_key_find(key);
    if (k == NULL || strchr(key, '-') != NULL)
        return unknown_key_error(err, where, key);
    if (fc->seen_line[k->id] != 0)
        return mb_errorf(err, MB_EINVAL, "%skey '%s' already set on line %d", where, k->name,
                         fc->seen_line[k->id]);
    fc->seen_line[k->id] = line;
    return value_put(&fc->vals[k->id], k, value, NC_CS_FILE, where, err);
}

static int read_file(const char *path, char **text_out, size_t *len_out, mb_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return mb_errorf(err, MB_EIO, "config file %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int rc = MB_OK;
    if (buf == NULL) {
        rc = mb_errorf(err, MB_ENOMEM, "read config file %s", path);
        goto out;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= (1u << 20)) {
                rc = mb_errorf(err, MB_ETOOBIG, "config file %s: larger than 1 MiB", path);
                goto out;
            }
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL) {
                rc = mb_errorf(err, MB_ENOMEM, "read config file %s", path);
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f))
                rc = mb_errorf(err, MB_EIO, "read config file %s: %s", path, strerror(errno));
            break;
        }
    }
out:
    fclose(f);
    if (rc != MB_OK) {
        free(buf);
        return rc;
    }
    *text_out = buf;
    *len_out = len;
    return MB_OK;
}

/* The name of a flag argument (after "--", up to '='). */
static bool flag_split(const char *arg, const char **name, size_t *name_len, const char **value)
{
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
        return false;
    *name = arg + 2;
    const char *eq = strchr(*name, '=');
    *name_len = eq ? (size_t)(eq - *name) : strlen(*name);
    *value = eq ? eq + 1 : NULL;
    return true;
}

/* Which config file to read: --config flag > MABEAM_CONFIG > file_path. */
static const char *choose_file(const char *file_path, char *const *envp, int argc,
                               char *const *argv)
{
    const char *chosen = (file_path != NULL && file_path[0] != '\0') ? file_path : NULL;
    if (envp != NULL)
        for (char *const *e = envp; *e; e++)
            if (strncmp(*e, "MABEAM_CONFIG=", 14) == 0 && (*e)[14] != '\0')
                chosen = *e + 14;
    for (int i = 0; i < argc; i++) {
        const char *name, *value;
        size_t nl;
        if (strcmp(argv[i], "--") == 0)
            break;
        if (flag_split(argv[i], &name, &nl, &value) && nl == 6 && strncmp(name, "config", 6) == 0)
            chosen = value != NULL ? value : (i + 1 < argc ? argv[i + 1] : NULL);
    }
    return chosen;
}

static int candidate_build(struct value *vals, const char *file_path, char *const *envp, int argc,
                           char *const *argv, mb_error *err)
{
    int rc = values_defaults(vals, err);
    if (rc != MB_OK)
        return rc;

    const char *path = choose_file(file_path, envp, argc, argv);
    if (path != NULL) {
        char *text = NULL;
        size_t len = 0;
        rc = read_file(path, &text, &len, err);
        if (rc != MB_OK)
            goto err_values;
        struct file_ctx fc = { .vals = vals, .path = path };
        mb_error pe;
        mb_error_clear(&pe);
        rc = nc_config_parse_text(text, len, file_entry_cb, &fc, &pe);
        free(text);
        if (rc != MB_OK) {
            /* Syntax errors come back as "line N: ..."; add the path. */
            if (strncmp(pe.msg, "line ", 5) == 0)
                mb_errorf(err, rc, "%.200s %s", path, pe.msg);
            else
                mb_errorf(err, rc, "%s", pe.msg);
            goto err_values;
        }
    }

    if (envp != NULL) {
        for (char *const *e = envp; *e; e++) {
            if (strncmp(*e, "MABEAM_", 7) != 0)
                continue;
            const char *name = *e + 7;
            const char *eq = strchr(name, '=');
            if (eq == NULL || eq == name)
                continue;
            size_t nl = (size_t)(eq - name);
            char lower[KEY_TEXT_MAX + 1];
            if (nl > KEY_TEXT_MAX)
                continue;
            for (size_t i = 0; i < nl; i++)
                lower[i] = (char)tolower((unsigned char)name[i]);
            lower[nl] = '\0';
            if (strcmp(lower, "config") == 0)
                continue;
            const nc_config_key *k = nc_config_key_find(lower);
            char where[128];
            snprintf(where, sizeof(where), "environment MABEAM_%.64s: ", lower);
            for (char *w = where + 19; *w && *w != ':'; w++)
                *w = (char)toupper((unsigned char)*w);
            if (k == NULL) {
                /* Other tools share the MABEAM_ prefix (the CLI, tests):
                 * only a near miss of a key is an error. */
                const nc_config_key *s = nc_config_key_suggest(lower);
                if (s != NULL && nl > 3) {
                    char up[KEY_TEXT_MAX + 1];
                    size_t sl = strlen(s->name);
                    for (size_t i = 0; i <= sl; i++)
                        up[i] = (char)toupper((unsigned char)s->name[i]);
                    rc = mb_errorf(err, MB_EINVAL, "%sunknown key '%s' (did you mean MABEAM_%s?)",
                                   where, lower, up);
                    goto err_values;
                }
                continue;
            }
            rc = value_put(&vals[k->id], k, eq + 1, NC_CS_ENV, where, err);
            if (rc != MB_OK)
                goto err_values;
        }
    }

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0)
            break;
        const char *name, *value;
        size_t nl;
        if (!flag_split(arg, &name, &nl, &value)) {
            rc = mb_errorf(err, MB_EINVAL, "argument '%.64s': expected --key=value", arg);
            goto err_values;
        }
        if (nl == 6 && strncmp(name, "config", 6) == 0) {
            if (value == NULL)
                i++; /* --config PATH */
            continue;
        }
        char fname[KEY_TEXT_MAX + 1];
        snprintf(fname, sizeof(fname), "%.*s", (int)(nl > KEY_TEXT_MAX ? KEY_TEXT_MAX : nl), name);
        char where[128];
        snprintf(where, sizeof(where), "flag --%s: ", fname);
        const nc_config_key *k = key_find_n(name, nl);
        if (k == NULL) {
            rc = unknown_key_error(err, where, fname);
            goto err_values;
        }
        if (value == NULL) {
            if (k->type != NC_CT_BOOL) {
                rc = mb_errorf(err, MB_EINVAL, "%skey '%s' needs a value (--%s=VALUE)", where,
                               k->name, fname);
                goto err_values;
            }
            value = "true";
        }
        rc = value_put(&vals[k->id], k, value, NC_CS_FLAG, where, err);
        if (rc != MB_OK)
            goto err_values;
    }

    rc = values_cross_check(vals, err);
    if (rc != MB_OK)
        goto err_values;
    return MB_OK;

err_values:
    values_free(vals);
    return rc;
}

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(tmp))
        return ENAMETOOLONG;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return errno;
    return 0;
}

static int check_data_dir(const char *dir, mb_error *err)
{
    int e = mkdir_p(dir);
    if (e != 0)
        return mb_errorf(err, MB_EPERM, "key 'data_dir': cannot create '%.200s': %s", dir,
                         strerror(e));
    char probe[PATH_MAX];
    if (snprintf(probe, sizeof(probe), "%s/.mabeam-probe-%ld", dir, (long)getpid()) >=
        (int)sizeof(probe))
        return mb_errorf(err, MB_EINVAL, "key 'data_dir': path too long");
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return mb_errorf(err, MB_EPERM, "key 'data_dir': '%.200s' is not writable: %s", dir,
                         strerror(errno));
    ssize_t w = write(fd, "x", 1);
    int werr = errno;
    close(fd);
    unlink(probe);
    if (w != 1)
        return mb_errorf(err, MB_EPERM, "key 'data_dir': '%.200s' is not writable: %s", dir,
                         strerror(werr));
    return MB_OK;
}

int nc_config_load(nc_config *cfg, const nc_config_sources *src, mb_error *err)
{
    nc_config_sources none = { 0 };
    if (src == NULL)
        src = &none;
    if (src->argc < 0 || (src->argc > 0 && src->argv == NULL))
        return mb_errorf(err, MB_EINVAL, "bad flag vector");
    struct value cand[NC_CFG_COUNT_];
    memset(cand, 0, sizeof(cand));
    int rc = candidate_build(cand, src->file_path, src->envp, src->argc, src->argv, err);
    if (rc != MB_OK)
        return rc;
    rc = check_data_dir(cand[NC_CFG_DATA_DIR].text, err);
    if (rc != MB_OK)
        goto err_cand;

    char *path = NULL;
    char **envp = NULL, **argv = NULL;
    if (src->file_path != NULL && (path = strdup(src->file_path)) == NULL)
        goto err_nomem;
    if (src->envp != NULL && (envp = strv_dup(src->envp, -1)) == NULL)
        goto err_nomem;
    if ((argv = strv_dup(src->argv, src->argc)) == NULL)
        goto err_nomem;

    pthread_mutex_lock(&cfg->writer);
    pthread_rwlock_wrlock(&cfg->rw);
    values_free(cfg->vals);
    memcpy(cfg->vals, cand, sizeof(cand));
    free(cfg->file_path);
    strv_free(cfg->envp);
    strv_free(cfg->argv);
    cfg->file_path = path;
    cfg->envp = envp;
    cfg->argv = argv;
    cfg->argc = src->argc;
    pthread_rwlock_unlock(&cfg->rw);
    pthread_mutex_unlock(&cfg->writer);
    return MB_OK;

err_nomem:
    free(path);
    strv_free(envp);
    strv_free(argv);
    rc = mb_errorf(err, MB_ENOMEM, "copy config sources");
err_cand:
    values_free(cand);
    return rc;
}

/* ---- applying changes -------------------------------------------------------- */

static bool value_differs(const nc_config_key *k, const struct value *a, const struct value *b)
{
    switch (k->type) {
    case NC_CT_INT:
    case NC_CT_BOOL:
    case NC_CT_DURATION:
    case NC_CT_SIZE:
    case NC_CT_ENUM:
        return a->num != b->num;
    default:
        return strcmp(a->text, b->text) != 0;
    }
}

/* Under cfg->writer and the write lock: apply one key, record the change.
 * `nv` is consumed (its text moves into cfg). Returns MB_ENOMEM with nothing
 * changed if the log copies cannot be made. */
static int apply_locked(nc_config *cfg, nc_config_id id, struct value *nv)
{
    struct value *cur = &cfg->vals[id];
    char *old_copy = strdup(cur->text);
    char *new_copy = strdup(nv->text);
    if (old_copy == NULL || new_copy == NULL) {
        free(old_copy);
        free(new_copy);
        return MB_ENOMEM;
    }
    free(cur->text);
    *cur = *nv;
    nv->text = NULL;
    uint64_t version = atomic_load(&cfg->version) + 1;
    atomic_store(&cfg->version, version);
    if (cfg->log_n == NC_CONFIG_LOG_KEEP) {
        struct stored_change *oldest = &cfg->log[cfg->log_start];
        free(oldest->old_value);
        free(oldest->new_value);
        cfg->log_start = (cfg->log_start + 1) % NC_CONFIG_LOG_KEEP;
        cfg->log_n--;
    }
    struct stored_change *c = &cfg->log[(cfg->log_start + cfg->log_n) % NC_CONFIG_LOG_KEEP];
    c->version = version;
    c->id = id;
    c->old_value = old_copy;
    c->new_value = new_copy;
    c->src = cur->src;
    cfg->log_n++;
    return MB_OK;
}

/* Under cfg->writer, without the rw lock: deliver the changes with
 * versions in (from, to] to every subscriber, then wake waiters. The log
 * entries cannot be evicted meanwhile: only writers append. */
static void deliver_locked(nc_config *cfg, uint64_t from, uint64_t to)
{
    if (to <= from)
        return;
    delivering = cfg;
    for (uint64_t v = from + 1; v <= to; v++) {
        size_t first_version_index = 0;
        /* Find v in the ring: versions are consecutive. */
        uint64_t oldest = cfg->log[cfg->log_start].version;
        assert(v >= oldest && v - oldest < cfg->log_n);
        first_version_index = (cfg->log_start + (size_t)(v - oldest)) % NC_CONFIG_LOG_KEEP;
        const struct stored_change *sc = &cfg->log[first_version_index];
        nc_config_change ch = { .version = sc->version,
                                .key = &schema[sc->id],
                                .old_value = sc->old_value,
                                .new_value = sc->new_value,
                                .source = sc->src };
        for (size_t i = 0; i < cfg->nsubs; i++)
            cfg->subs[i].cb(cfg->subs[i].arg, &ch);
    }
    delivering = NULL;
    pthread_mutex_lock(&cfg->wait_mu);
    pthread_cond_broadcast(&cfg->wait_cv);
    pthread_mutex_unlock(&cfg->wait_mu);
}

int nc_config_set(nc_config *cfg, const char *key, const char *value, mb_error *err)
{
    if (delivering == cfg)
        return mb_errorf(err, MB_EBUSY, "config set from inside a config subscriber");
    if (key == NULL || value == NULL)
        return mb_errorf(err, MB_EINVAL, "config set: no key or no value");
    const nc_config_key *k = nc_config_key_find(key);
    if (k == NULL)
        return unknown_key_error(err, "", key);
    if (!k->reloadable)
        return mb_errorf(err, MB_EPERM, "key '%s' is not reloadable: restart the node to change it",
                         k->name);
    struct value nv = { 0 };
    int rc = value_put(&nv, k, value, NC_CS_RUNTIME, "", err);
    if (rc != MB_OK)
        return rc;

    pthread_mutex_lock(&cfg->writer);
    pthread_rwlock_wrlock(&cfg->rw);
    uint64_t before = atomic_load(&cfg->version);
    struct value saved = cfg->vals[k->id];
    cfg->vals[k->id] = nv; /* cross-check the candidate in place */
    rc = values_cross_check(cfg->vals, err);
    cfg->vals[k->id] = saved;
    if (rc == MB_OK && value_differs(k, &saved, &nv)) {
        rc = apply_locked(cfg, k->id, &nv);
        if (rc != MB_OK)
            mb_errorf(err, rc, "record change of '%s'", k->name);
    }
    uint64_t after = atomic_load(&cfg->version);
    pthread_rwlock_unlock(&cfg->rw);
    free(nv.text);
    if (rc == MB_OK)
        deliver_locked(cfg, before, after);
    pthread_mutex_unlock(&cfg->writer);
    return rc;
}

int nc_config_reload(nc_config *cfg, char *const *envp, nc_config_reload_report *report,
                     mb_error *err)
{
    if (delivering == cfg)
        return mb_errorf(err, MB_EBUSY, "config reload from inside a config subscriber");
    nc_config_reload_report local;
    if (report == NULL)
        report = &local;
    memset(report, 0, sizeof(*report));

    pthread_mutex_lock(&cfg->writer);
    /* The sources are only changed under `writer`, which we hold. */
    struct value cand[NC_CFG_COUNT_];
    memset(cand, 0, sizeof(cand));
    int rc = candidate_build(cand, cfg->file_path, envp != NULL ? envp : cfg->envp, cfg->argc,
                             cfg->argv, err);
    if (rc != MB_OK) {
        pthread_mutex_unlock(&cfg->writer);
        return rc;
    }
    pthread_rwlock_wrlock(&cfg->rw);
    uint64_t before = atomic_load(&cfg->version);
    for (int i = 0; i < NC_CFG_COUNT_; i++) {
        const nc_config_key *k = &schema[i];
        if (!value_differs(k, &cfg->vals[i], &cand[i])) {
            cfg->vals[i].src = cand[i].src;
            continue;
        }
        if (!k->reloadable) {
            report->ignored[report->n_ignored++] = k;
            continue;
        }
        rc = apply_locked(cfg, k->id, &cand[i]);
        if (rc != MB_OK) {
            mb_errorf(err, rc, "record change of '%s'", k->name);
            break; /* earlier keys stay applied and are delivered */
        }
        report->applied[report->n_applied++] = k;
    }
    uint64_t after = atomic_load(&cfg->version);
    pthread_rwlock_unlock(&cfg->rw);
    values_free(cand);
    deliver_locked(cfg, before, after);
    pthread_mutex_unlock(&cfg->writer);
    return rc;
}

/* ---- reads -------------------------------------------------------------------- */

int64_t nc_config_int(nc_config *cfg, nc_config_id id)
{
    assert((unsigned)id < NC_CFG_COUNT_);
    assert(schema[id].type == NC_CT_INT || schema[id].type == NC_CT_BOOL ||
           schema[id].type == NC_CT_DURATION || schema[id].type == NC_CT_SIZE ||
           schema[id].type == NC_CT_ENUM);
    pthread_rwlock_rdlock(&cfg->rw);
    int64_t v = cfg->vals[id].num;
    pthread_rwlock_unlock(&cfg->rw);
    return v;
}

bool nc_config_bool(nc_config *cfg, nc_config_id id)
{
    assert(schema[id].type == NC_CT_BOOL);
    return nc_config_int(cfg, id) != 0;
}

int64_t nc_config_duration_ms(nc_config *cfg, nc_config_id id)
{
    assert(schema[id].type == NC_CT_DURATION);
    return nc_config_int(cfg, id);
}

uint64_t nc_config_size_bytes(nc_config *cfg, nc_config_id id)
{
    assert(schema[id].type == NC_CT_SIZE);
    return (uint64_t)nc_config_int(cfg, id);
}

const char *nc_config_enum_name(nc_config *cfg, nc_config_id id)
{
    assert(schema[id].type == NC_CT_ENUM);
    return schema[id].enum_names[nc_config_int(cfg, id)];
}

int nc_config_get_text(nc_config *cfg, nc_config_id id, char *buf, size_t size)
{
    assert((unsigned)id < NC_CFG_COUNT_ && buf != NULL && size > 0);
    pthread_rwlock_rdlock(&cfg->rw);
    size_t n = strlen(cfg->vals[id].text);
    int rc = n < size ? MB_OK : MB_ETOOBIG;
    size_t c = n < size ? n : size - 1;
    memcpy(buf, cfg->vals[id].text, c);
    buf[c] = '\0';
    pthread_rwlock_unlock(&cfg->rw);
    return rc;
}

char *nc_config_dup_text(nc_config *cfg, nc_config_id id)
{
    assert((unsigned)id < NC_CFG_COUNT_);
    pthread_rwlock_rdlock(&cfg->rw);
    char *s = strdup(cfg->vals[id].text);
    pthread_rwlock_unlock(&cfg->rw);
    return s;
}

nc_config_source nc_config_source_of(nc_config *cfg, nc_config_id id)
{
    assert((unsigned)id < NC_CFG_COUNT_);
    pthread_rwlock_rdlock(&cfg->rw);
    nc_config_source s = cfg->vals[id].src;
    pthread_rwlock_unlock(&cfg->rw);
    return s;
}

uint64_t nc_config_version(nc_config *cfg)
{
    return atomic_load(&cfg->version);
}

/* ---- subscribers, change log, wait --------------------------------------------- */

int nc_config_subscribe(nc_config *cfg, nc_config_change_cb cb, void *arg, uint64_t *id_out)
{
    assert(cb != NULL);
    if (delivering == cfg)
        return MB_EBUSY;
    pthread_mutex_lock(&cfg->writer);
    if (cfg->nsubs == cfg->subs_cap) {
        size_t cap = cfg->subs_cap ? cfg->subs_cap * 2 : 4;
        struct subscriber *ns = realloc(cfg->subs, cap * sizeof(*ns));
        if (ns == NULL) {
            pthread_mutex_unlock(&cfg->writer);
            return MB_ENOMEM;
        }
        cfg->subs = ns;
        cfg->subs_cap = cap;
    }
    uint64_t id = cfg->next_sub_id++;
    cfg->subs[cfg->nsubs++] = (struct subscriber){ .id = id, .cb = cb, .arg = arg };
    pthread_mutex_unlock(&cfg->writer);
    if (id_out != NULL)
        *id_out = id;
    return MB_OK;
}

int nc_config_unsubscribe(nc_config *cfg, uint64_t id)
{
    if (delivering == cfg)
        return MB_EBUSY;
    int rc = MB_ENOTFOUND;
    pthread_mutex_lock(&cfg->writer);
    for (size_t i = 0; i < cfg->nsubs; i++) {
        if (cfg->subs[i].id == id) {
            memmove(&cfg->subs[i], &cfg->subs[i + 1], (cfg->nsubs - i - 1) * sizeof(cfg->subs[0]));
            cfg->nsubs--;
            rc = MB_OK;
            break;
        }
    }
    pthread_mutex_unlock(&cfg->writer);
    return rc;
}

void nc_config_change_list_free(nc_config_change_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->n; i++) {
        free((char *)list->changes[i].old_value);
        free((char *)list->changes[i].new_value);
    }
    free(list->changes);
    list->changes = NULL;
    list->n = 0;
}

int nc_config_changes_since(nc_config *cfg, uint64_t since, nc_config_change_list *out)
{
    memset(out, 0, sizeof(*out));
    int rc = MB_OK;
    pthread_rwlock_rdlock(&cfg->rw);
    uint64_t version = atomic_load(&cfg->version);
    out->version = version;
    /* Retained changes cover versions (version - log_n, version]. */
    uint64_t oldest_known = version - cfg->log_n;
    if (since > version || since < oldest_known) {
        rc = MB_ERANGE;
        goto out;
    }
    size_t n = (size_t)(version - since);
    if (n == 0)
        goto out;
    out->changes = calloc(n, sizeof(*out->changes));
    if (out->changes == NULL) {
        rc = MB_ENOMEM;
        goto out;
    }
    size_t skip = cfg->log_n - n;
    for (size_t i = 0; i < n; i++) {
        const struct stored_change *sc =
            &cfg->log[(cfg->log_start + skip + i) % NC_CONFIG_LOG_KEEP];
        nc_config_change *c = &out->changes[i];
        c->version = sc->version;
        c->key = &schema[sc->id];
        c->source = sc->src;
        c->old_value = strdup(sc->old_value);
        c->new_value = strdup(sc->new_value);
        out->n = i + 1;
        if (c->old_value == NULL || c->new_value == NULL) {
            rc = MB_ENOMEM;
            break;
        }
    }
out:
    pthread_rwlock_unlock(&cfg->rw);
    if (rc != MB_OK)
        nc_config_change_list_free(out);
    return rc;
}

int nc_config_wait(nc_config *cfg, uint64_t since, int64_t timeout_ms)
{
    struct timespec deadline = mb_deadline_in_ms(timeout_ms > 0 ? (uint64_t)timeout_ms : 0);
    int rc = MB_OK;
    pthread_mutex_lock(&cfg->wait_mu);
    while (atomic_load(&cfg->version) <= since) {
        if (pthread_cond_timedwait(&cfg->wait_cv, &cfg->wait_mu, &deadline) == ETIMEDOUT) {
            rc = atomic_load(&cfg->version) > since ? MB_OK : MB_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&cfg->wait_mu);
    return rc;
}

/* ---- JSON ------------------------------------------------------------------------ */

static const char *render_text(const nc_config_key *k, const char *text)
{
    if (k->secret)
        return text[0] == '\0' ? "" : "<redacted>";
    return text;
}

static cJSON *value_json(const nc_config_key *k, const struct value *v)
{
    if (k->type == NC_CT_INT)
        return cJSON_CreateNumber((double)v->num);
    if (k->type == NC_CT_BOOL)
        return cJSON_CreateBool(v->num != 0);
    return cJSON_CreateString(render_text(k, v->text));
}

static char *json_print_free(cJSON *root)
{
    char *s = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

char *nc_config_to_json(nc_config *cfg)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *values = cJSON_CreateObject();
    cJSON *sources = cJSON_CreateObject();
    if (root == NULL || values == NULL || sources == NULL) {
        cJSON_Delete(values);
        cJSON_Delete(sources);
        cJSON_Delete(root);
        return NULL;
    }
    pthread_rwlock_rdlock(&cfg->rw);
    cJSON_AddNumberToObject(root, "version", (double)atomic_load(&cfg->version));
    for (int i = 0; i < NC_CFG_COUNT_; i++) {
        cJSON_AddItemToObject(values, schema[i].name, value_json(&schema[i], &cfg->vals[i]));
        cJSON_AddStringToObject(sources, schema[i].name, nc_config_source_name(cfg->vals[i].src));
    }
    pthread_rwlock_unlock(&cfg->rw);
    cJSON_AddItemToObject(root, "values", values);
    cJSON_AddItemToObject(root, "sources", sources);
    return json_print_free(root);
}

int nc_config_changes_json(nc_config *cfg, uint64_t since, char **json_out)
{
    nc_config_change_list list;
    int rc = nc_config_changes_since(cfg, since, &list);
    if (rc != MB_OK)
        return rc;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    if (root == NULL || arr == NULL) {
        cJSON_Delete(arr);
        cJSON_Delete(root);
        nc_config_change_list_free(&list);
        return MB_ENOMEM;
    }
    cJSON_AddNumberToObject(root, "version", (double)list.version);
    for (size_t i = 0; i < list.n; i++) {
        const nc_config_change *c = &list.changes[i];
        cJSON *o = cJSON_CreateObject();
        if (o == NULL)
            break;
        cJSON_AddNumberToObject(o, "version", (double)c->version);
        cJSON_AddStringToObject(o, "key", c->key->name);
        cJSON_AddStringToObject(o, "old", render_text(c->key, c->old_value));
        cJSON_AddStringToObject(o, "new", render_text(c->key, c->new_value));
        cJSON_AddStringToObject(o, "source", nc_config_source_name(c->source));
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddItemToObject(root, "changes", arr);
    nc_config_change_list_free(&list);
    *json_out = json_print_free(root);
    return *json_out != NULL ? MB_OK : MB_ENOMEM;
}

char *nc_config_schema_json(void)
{
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL)
        return NULL;
    for (int i = 0; i < NC_CFG_COUNT_; i++) {
        const nc_config_key *k = &schema[i];
        cJSON *o = cJSON_CreateObject();
        if (o == NULL)
            break;
        cJSON_AddStringToObject(o, "name", k->name);
        cJSON_AddStringToObject(o, "type", nc_config_type_name(k->type));
        cJSON_AddStringToObject(o, "default", k->default_value);
        cJSON_AddBoolToObject(o, "reloadable", k->reloadable);
        cJSON_AddBoolToObject(o, "secret", k->secret);
        cJSON_AddStringToObject(o, "description", k->description);
        if (k->type == NC_CT_INT || k->type == NC_CT_DURATION || k->type == NC_CT_SIZE) {
            cJSON_AddNumberToObject(o, "min", (double)k->min);
            cJSON_AddNumberToObject(o, "max", (double)k->max);
        }
        if (k->type == NC_CT_ENUM) {
            cJSON *vals = cJSON_AddArrayToObject(o, "values");
            for (int j = 0; vals != NULL && k->enum_names[j] != NULL; j++)
                cJSON_AddItemToArray(vals, cJSON_CreateString(k->enum_names[j]));
        }
        cJSON_AddItemToArray(arr, o);
    }
    return json_print_free(arr);
}
