/* mb-lincheck: command-line front end of the partition suite's checkers.
 *   mb-lincheck check [--budget-ms N] [--max-memo-mb N] HISTORY.jsonl
 *   mb-lincheck lost-writes HISTORY.jsonl
 *   mb-lincheck checkpoints OBSERVATIONS.jsonl
 *   mb-lincheck events NODE0.json NODE1.json ...
 * Prints one verdict JSON object on stdout. Exit status: 0 all good,
 * 1 violation, 2 undecided (budget exhausted), 3 bad usage or input. */
#include "lincheck.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_GOOD = 0, EXIT_VIOLATION = 1, EXIT_UNDECIDED = 2, EXIT_INPUT = 3 };

/* Read a whole file into a malloc'd buffer (caller frees). NULL on error. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (f == NULL) {
        fprintf(stderr, "mb-lincheck: open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *g = realloc(buf, ncap + 1);
            if (g == NULL)
                goto fail;
            buf = g;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                goto fail;
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    fprintf(stderr, "mb-lincheck: read %s failed\n", path);
    fclose(f);
    free(buf);
    return NULL;
}

static int print_json(cJSON *root)
{
    char *s = cJSON_PrintUnformatted(root);
    if (s == NULL)
        return -1;
    printf("%s\n", s);
    cJSON_free(s);
    return 0;
}

/* Integers as exact JSON numbers (a double would round nanoseconds). */
static void add_int(cJSON *o, const char *key, long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    cJSON_AddRawToObject(o, key, buf);
}

static cJSON *op_json(const lc_op *op)
{
    static const char *kinds[] = { "set", "cas", "get", "init" };
    static const char *outcomes[] = { "ok", "fail", "unknown" };
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    add_int(o, "line", (long long)op->line);
    cJSON_AddNumberToObject(o, "process", op->process);
    cJSON_AddStringToObject(o, "op", kinds[op->kind]);
    cJSON_AddStringToObject(o, "var", op->var);
    if (op->kind != LC_GET)
        add_int(o, "value", (long long)op->value);
    if (op->kind == LC_CAS) {
        if (op->has_expected_version)
            add_int(o, "expected_version", (long long)op->expected_version);
        else if (op->expected_null)
            cJSON_AddNullToObject(o, "expected");
        else
            add_int(o, "expected", (long long)op->expected_value);
    }
    if (op->kind == LC_GET && op->outcome == LC_OK) {
        if (op->result_null)
            cJSON_AddNullToObject(o, "result");
        else
            add_int(o, "result", (long long)op->result);
    }
    if (op->has_version)
        add_int(o, "version", (long long)op->version);
    add_int(o, "invoke_ns", (long long)op->invoke_ns);
    if (op->complete_ns == INT64_MAX)
        cJSON_AddNullToObject(o, "complete_ns");
    else
        add_int(o, "complete_ns", (long long)op->complete_ns);
    cJSON_AddStringToObject(o, "outcome", outcomes[op->outcome]);
    return o;
}

static int load_history(const char *path, lc_history *h)
{
    size_t len;
    char err[256];
    char *text = read_file(path, &len);
    if (text == NULL)
        return -1;
    int rc = lc_parse_history(text, len, h, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "mb-lincheck: %s: %s\n", path, err);
    free(text);
    return rc;
}

static int cmd_check(int argc, char **argv)
{
    lc_limits lim = { .budget_ms = 60000, .max_memo_bytes = (size_t)1024 << 20 };
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--budget-ms") == 0 && i + 1 < argc)
            lim.budget_ms = strtoll(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--max-memo-mb") == 0 && i + 1 < argc)
            lim.max_memo_bytes = (size_t)strtoull(argv[++i], NULL, 10) << 20;
        else if (path == NULL && argv[i][0] != '-')
            path = argv[i];
        else {
            fprintf(stderr, "mb-lincheck check: bad argument %s\n", argv[i]);
            return EXIT_INPUT;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "mb-lincheck check: need a history file\n");
        return EXIT_INPUT;
    }
    lc_history h;
    lc_history_init(&h);
    if (load_history(path, &h) != 0) {
        lc_history_close(&h);
        return EXIT_INPUT;
    }
    lc_var_result *res = NULL;
    size_t n = 0;
    int status = EXIT_INPUT;
    if (lc_check(&h, &lim, &res, &n) != 0) {
        fprintf(stderr, "mb-lincheck: out of memory\n");
        goto out;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *vars = cJSON_AddArrayToObject(root, "variables");
    int any_violation = 0, any_budget = 0;
    for (size_t i = 0; i < n; i++) {
        cJSON *v = cJSON_CreateObject();
        cJSON_AddStringToObject(v, "var", res[i].var);
        const char *verdict = res[i].verdict == LC_LINEARIZABLE ? "yes"
                              : res[i].verdict == LC_VIOLATION  ? "no"
                                                                : "unknown (budget exhausted)";
        cJSON_AddStringToObject(v, "linearizable", verdict);
        cJSON_AddNumberToObject(v, "ops_checked", (double)res[i].ops_checked);
        cJSON_AddNumberToObject(v, "time_ms", res[i].elapsed_ms);
        if (res[i].verdict == LC_VIOLATION || res[i].violation_without_unknown_writes) {
            if (res[i].verdict == LC_VIOLATION)
                any_violation = 1;
            cJSON *cx = cJSON_AddObjectToObject(
                v, res[i].verdict == LC_VIOLATION
                       ? "counterexample"
                       : "counterexample_if_unobserved_unknown_writes_never_applied");
            cJSON_AddNumberToObject(cx, "linearized_prefix_ops", (double)res[i].prefix_len);
            cJSON_AddItemToObject(cx, "cannot_complete", op_json(&h.ops[res[i].blocked_op]));
            cJSON *win = cJSON_AddArrayToObject(cx, "window");
            for (size_t k = 0; k < res[i].window_len; k++)
                cJSON_AddItemToArray(win, op_json(&h.ops[res[i].window[k]]));
        }
        if (res[i].verdict == LC_BUDGET)
            any_budget = 1;
        cJSON_AddItemToArray(vars, v);
    }
    cJSON_AddNumberToObject(root, "ops", (double)h.len);
    cJSON_AddStringToObject(root, "linearizable",
                            any_violation ? "no"
                            : any_budget  ? "unknown (budget exhausted)"
                                          : "yes");
    print_json(root);
    cJSON_Delete(root);
    status = any_violation ? EXIT_VIOLATION : any_budget ? EXIT_UNDECIDED : EXIT_GOOD;
out:
    for (size_t i = 0; i < n; i++)
        lc_var_result_close(&res[i]);
    free(res);
    lc_history_close(&h);
    return status;
}

static int cmd_lost_writes(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "mb-lincheck lost-writes: need one history file\n");
        return EXIT_INPUT;
    }
    lc_history h;
    lc_history_init(&h);
    if (load_history(argv[0], &h) != 0) {
        lc_history_close(&h);
        return EXIT_INPUT;
    }
    size_t *lost = NULL, nlost = 0;
    if (lc_check_lost_writes(&h, &lost, &nlost) != 0) {
        lc_history_close(&h);
        fprintf(stderr, "mb-lincheck: out of memory\n");
        return EXIT_INPUT;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "check", "lost-writes");
    cJSON_AddBoolToObject(root, "ok", nlost == 0);
    cJSON_AddNumberToObject(root, "lost_count", (double)nlost);
    cJSON *arr = cJSON_AddArrayToObject(root, "lost");
    for (size_t i = 0; i < nlost && i < 50; i++)
        cJSON_AddItemToArray(arr, op_json(&h.ops[lost[i]]));
    print_json(root);
    cJSON_Delete(root);
    free(lost);
    lc_history_close(&h);
    return nlost ? EXIT_VIOLATION : EXIT_GOOD;
}

static int report(const char *check, int rc, const char *msg)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "check", check);
    cJSON_AddBoolToObject(root, "ok", rc == 0);
    if (msg[0] != '\0')
        cJSON_AddStringToObject(root, rc < 0 ? "error" : "detail", msg);
    print_json(root);
    cJSON_Delete(root);
    return rc == 0 ? EXIT_GOOD : rc > 0 ? EXIT_VIOLATION : EXIT_INPUT;
}

static int cmd_checkpoints(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "mb-lincheck checkpoints: need one observations file\n");
        return EXIT_INPUT;
    }
    size_t len;
    char msg[512];
    char *text = read_file(argv[0], &len);
    if (text == NULL)
        return EXIT_INPUT;
    int rc = lc_check_checkpoints(text, len, msg, sizeof msg);
    free(text);
    return report("checkpoints", rc, msg);
}

static int cmd_events(int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "mb-lincheck events: need one dump per node\n");
        return EXIT_INPUT;
    }
    char **texts = calloc((size_t)argc, sizeof *texts);
    size_t *lens = calloc((size_t)argc, sizeof *lens);
    int status = EXIT_INPUT;
    char msg[512];
    if (texts == NULL || lens == NULL)
        goto out;
    for (int i = 0; i < argc; i++)
        if ((texts[i] = read_file(argv[i], &lens[i])) == NULL)
            goto out;
    size_t gaps = 0;
    int rc =
        lc_check_event_logs((const char *const *)texts, lens, (size_t)argc, msg, sizeof msg, &gaps);
    if (rc == 0 && gaps > 0) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "check", "events");
        cJSON_AddBoolToObject(root, "ok", 1);
        cJSON_AddNumberToObject(root, "snapshot_gaps", (double)gaps);
        cJSON_AddStringToObject(root, "detail", msg);
        print_json(root);
        cJSON_Delete(root);
        status = EXIT_GOOD;
    } else {
        status = report("events", rc, msg);
    }
out:
    for (int i = 0; texts != NULL && i < argc; i++)
        free(texts[i]);
    free(texts);
    free(lens);
    return status;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "lost-writes") == 0)
        return cmd_lost_writes(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "checkpoints") == 0)
        return cmd_checkpoints(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "events") == 0)
        return cmd_events(argc - 2, argv + 2);
    fprintf(stderr, "usage: mb-lincheck check [--budget-ms N] [--max-memo-mb N] HISTORY\n"
                    "       mb-lincheck lost-writes HISTORY\n"
                    "       mb-lincheck checkpoints OBSERVATIONS\n"
                    "       mb-lincheck events NODE_DUMP...\n");
    return EXIT_INPUT;
}
