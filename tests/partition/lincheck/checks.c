/* The suite's further checks: lost acknowledged writes, checkpoint version
 * monotonicity, agreement of the nodes' cluster event logs. */
#include "flatjson.h"
#include "lincheck.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lost writes ---- */

typedef struct {
    size_t op;
    int64_t complete;  /* INT64_MAX when unknown */
    int64_t last_seen; /* latest completion of an ok get that read its value */
} lw_write;

typedef struct {
    int64_t value;
    int64_t last_seen;
} lw_obs;

static const lc_history *lw_hist;

static int lw_by_var_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(lw_hist->ops[x].var, lw_hist->ops[y].var);
    return c ? c : (x < y ? -1 : x > y);
}

static int lw_obs_cmp(const void *a, const void *b)
{
    const lw_obs *x = a, *y = b;
    return x->value < y->value ? -1 : x->value > y->value;
}

static int lw_complete_cmp(const void *a, const void *b)
{
    const lw_write *x = a, *y = b;
    return x->complete < y->complete ? -1 : x->complete > y->complete;
}

static int64_t lw_last_seen(const lw_obs *obs, size_t n, int64_t value)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (obs[mid].value < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && obs[lo].value == value ? obs[lo].last_seen : INT64_MIN;
}

int lc_check_lost_writes(const lc_history *h, size_t **lost, size_t *lost_len)
{
    int rc = -1;
    size_t *idx = malloc((h->len + 1) * sizeof *idx);
    lw_obs *obs = malloc((h->len + 1) * sizeof *obs);
    lw_write *w = malloc((h->len + 1) * sizeof *w);
    int64_t *suffix = malloc((h->len + 1) * sizeof *suffix);
    size_t *out = NULL, nout = 0;
    *lost = NULL;
    *lost_len = 0;
    if (idx == NULL || obs == NULL || w == NULL || suffix == NULL)
        goto done;
    for (size_t i = 0; i < h->len; i++)
        idx[i] = i;
    lw_hist = h;
    qsort(idx, h->len, sizeof *idx, lw_by_var_cmp);
    lw_hist = NULL;
    for (size_t i = 0; i < h->len;) {
        size_t j = i, nobs = 0, nw = 0;
        while (j < h->len && strcmp(h->ops[idx[j]].var, h->ops[idx[i]].var) == 0)
            j++;
        for (size_t k = i; k < j; k++) {
            const lc_op *op = &h->ops[idx[k]];
            if (op->kind == LC_GET && op->outcome == LC_OK && !op->result_null)
                obs[nobs++] = (lw_obs){ op->result, op->complete_ns };
        }
        qsort(obs, nobs, sizeof *obs, lw_obs_cmp);
        size_t m = 0; /* merge equal values, keep the latest observation */
        for (size_t k = 0; k < nobs; k++) {
            if (m > 0 && obs[m - 1].value == obs[k].value) {
                if (obs[k].last_seen > obs[m - 1].last_seen)
                    obs[m - 1].last_seen = obs[k].last_seen;
            } else {
                obs[m++] = obs[k];
            }
        }
        nobs = m;
        for (size_t k = i; k < j; k++) {
            const lc_op *op = &h->ops[idx[k]];
            if (op->kind == LC_GET || op->kind == LC_INIT || op->outcome == LC_FAIL)
                continue;
            w[nw++] = (lw_write){ idx[k], op->complete_ns, lw_last_seen(obs, nobs, op->value) };
        }
        qsort(w, nw, sizeof *w, lw_complete_cmp);
        /* suffix[k] = latest observation among writes k..nw-1 */
        int64_t best = INT64_MIN;
        for (size_t k = nw; k-- > 0;) {
            if (w[k].last_seen > best)
                best = w[k].last_seen;
            suffix[k] = best;
        }
        for (size_t k = 0; k < nw; k++) {
            const lc_op *op = &h->ops[w[k].op];
            if (op->outcome != LC_OK || w[k].last_seen != INT64_MIN)
                continue;
            /* Writes not completed before op was invoked: complete > invoke. */
            size_t lo = 0, hi = nw;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (w[mid].complete <= op->invoke_ns)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo < nw && suffix[lo] > op->complete_ns)
                continue; /* superseded by a later write that was observed */
            size_t *grown = realloc(out, (nout + 1) * sizeof *out);
            if (grown == NULL)
                goto done;
            out = grown;
            out[nout++] = w[k].op;
        }
        i = j;
    }
    *lost = out;
    *lost_len = nout;
    out = NULL;
    rc = 0;
done:
    free(out);
    free(idx);
    free(obs);
    free(w);
    free(suffix);
    return rc;
}

/* ---- checkpoint versions ---- */

typedef struct {
    int64_t node;
    char name[FJ_STR_MAX];
    int64_t version;
    int64_t t_ns;
    size_t line;
} cp_obs;

static int cp_cmp(const void *a, const void *b)
{
    const cp_obs *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    if (x->t_ns != y->t_ns)
        return x->t_ns < y->t_ns ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

int lc_check_checkpoints(const char *text, size_t len, char *msg, size_t msg_size)
{
    cp_obs *v = NULL;
    size_t n = 0, cap = 0, pos = 0, line = 0;
    int rc = -1;
    msg[0] = '\0';
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - start) : len - pos;
        pos += l + (nl ? 1 : 0);
        line++;
        size_t k = 0;
        while (k < l && (start[k] == ' ' || start[k] == '\t' || start[k] == '\r'))
            k++;
        if (k == l)
            continue;
        fj_object o;
        char why[160];
        if (fj_parse(start, l, &o, why, sizeof why) != 0) {
            snprintf(msg, msg_size, "line %zu: %s", line, why);
            goto out;
        }
        const fj_member *node = fj_get(&o, "node"), *name = fj_get(&o, "name"),
                        *ver = fj_get(&o, "version"), *t = fj_get(&o, "t_ns");
        if (node == NULL || node->type != FJ_INT || name == NULL || name->type != FJ_STRING ||
            ver == NULL || ver->type != FJ_INT || t == NULL || t->type != FJ_INT) {
            snprintf(msg, msg_size, "line %zu: need integer node, version, t_ns and string name",
                     line);
            goto out;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            cp_obs *g = realloc(v, ncap * sizeof *g);
            if (g == NULL) {
                snprintf(msg, msg_size, "out of memory");
                goto out;
            }
            v = g;
            cap = ncap;
        }
        cp_obs *c = &v[n++];
        c->node = node->num;
        memcpy(c->name, name->str, sizeof c->name);
        c->version = ver->num;
        c->t_ns = t->num;
        c->line = line;
    }
    if (n > 0)
        qsort(v, n, sizeof *v, cp_cmp);
    rc = 0;
    for (size_t i = 1; i < n; i++) {
        if (v[i].node == v[i - 1].node && strcmp(v[i].name, v[i - 1].name) == 0 &&
            v[i].version < v[i - 1].version) {
            snprintf(msg, msg_size,
                     "node %lld checkpoint \"%s\": version %lld (line %zu) after %lld (line %zu)",
                     (long long)v[i].node, v[i].name, (long long)v[i].version, v[i].line,
                     (long long)v[i - 1].version, v[i - 1].line);
            rc = 1;
            break;
        }
    }
out:
    free(v);
    return rc;
}

/* ---- event logs ---- */

typedef struct {
    cJSON **pages;
    size_t npages;
    cJSON **events; /* borrowed from pages */
    double *seqs;
    size_t n;
} ev_log;

static void ev_log_close(ev_log *l)
{
    for (size_t i = 0; i < l->npages; i++)
        cJSON_Delete(l->pages[i]);
    free(l->pages);
    free(l->events);
    free(l->seqs);
    memset(l, 0, sizeof *l);
}

static int ev_log_load(const char *text, size_t len, size_t node, ev_log *l, char *msg,
                       size_t msg_size)
{
    size_t pos = 0, cap = 0;
    for (;;) {
        while (pos < len &&
               (text[pos] == ' ' || text[pos] == '\n' || text[pos] == '\r' || text[pos] == '\t'))
            pos++;
        if (pos >= len)
            return 0;
        const char *end = NULL;
        cJSON *page = cJSON_ParseWithLengthOpts(text + pos, len - pos, &end, 0);
        if (page == NULL || end == NULL || end <= text + pos) {
            cJSON_Delete(page);
            snprintf(msg, msg_size, "node %zu: malformed JSON page at byte %zu", node, pos);
            return -1;
        }
        pos = (size_t)(end - text);
        cJSON **pg = realloc(l->pages, (l->npages + 1) * sizeof *pg);
        if (pg == NULL) {
            cJSON_Delete(page);
            snprintf(msg, msg_size, "out of memory");
            return -1;
        }
        l->pages = pg;
        l->pages[l->npages++] = page;
        cJSON *events = cJSON_GetObjectItemCaseSensitive(page, "events");
        if (!cJSON_IsArray(events)) {
            snprintf(msg, msg_size, "node %zu: page without an \"events\" array", node);
            return -1;
        }
        cJSON *e;
        cJSON_ArrayForEach(e, events)
        {
            cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "seq");
            if (!cJSON_IsNumber(seq)) {
                snprintf(msg, msg_size, "node %zu: event without a numeric \"seq\"", node);
                return -1;
            }
            if (l->n == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                cJSON **ne = realloc(l->events, ncap * sizeof *ne);
                if (ne == NULL) {
                    snprintf(msg, msg_size, "out of memory");
                    return -1;
                }
                l->events = ne;
                double *ns = realloc(l->seqs, ncap * sizeof *ns);
                if (ns == NULL) {
                    snprintf(msg, msg_size, "out of memory");
                    return -1;
                }
                l->seqs = ns;
                cap = ncap;
            }
            if (l->n > 0 && !(seq->valuedouble > l->seqs[l->n - 1])) {
                snprintf(msg, msg_size, "node %zu: seq %.0f after %.0f (not increasing)", node,
                         seq->valuedouble, l->seqs[l->n - 1]);
                return 1;
            }
            /* When a node wrote the event is its own business (local clock
             * at apply time): not part of what must agree. */
            cJSON_DeleteItemFromObjectCaseSensitive(e, "time_ms");
            cJSON_DeleteItemFromObjectCaseSensitive(e, "time");
            l->events[l->n] = e;
            l->seqs[l->n++] = seq->valuedouble;
        }
    }
}

/* Is event `e` a state.restore marker covering sequence `seq` (a snapshot
 * install replaced the state up to its applied_index, so the events of the
 * entries up to there were never written on that node)? */
static int restore_covers(const cJSON *e, double seq)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "state.restore") != 0)
        return 0;
    if (seq < 0)
        return 1;
    const cJSON *payload = cJSON_GetObjectItemCaseSensitive(e, "payload");
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(payload, "applied_index");
    return cJSON_IsNumber(idx) && seq < (idx->valuedouble + 1) * (double)LC_SEQ_PER_ENTRY;
}

int lc_check_event_logs(const char *const *texts, const size_t *lens, size_t n, char *msg,
                        size_t msg_size, size_t *snapshot_gaps)
{
    int rc = 0;
    size_t gaps = 0;
    ev_log *logs = calloc(n + 1, sizeof *logs);
    msg[0] = '\0';
    *snapshot_gaps = 0;
    if (logs == NULL) {
        snprintf(msg, msg_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = ev_log_load(texts[i], lens[i], i, &logs[i], msg, msg_size);
    for (size_t i = 0; i < n && rc == 0; i++) {
        for (size_t j = i + 1; j < n && rc == 0; j++) {
            size_t a = 0, b = 0;
            while (a < logs[i].n && b < logs[j].n) {
                /* A seq one node lacks while it holds later ones is a hole
                 * (a lagging node only lacks a tail), unless it is the other
                 * node's own restore marker, or a snapshot install on this
                 * node explains it (documented: docs/variables.md). */
                if (logs[i].seqs[a] < logs[j].seqs[b]) {
                    if (restore_covers(logs[i].events[a], -1)) {
                        a++;
                    } else if (restore_covers(logs[j].events[b], logs[i].seqs[a])) {
                        gaps++;
                        a++;
                    } else {
                        snprintf(msg, msg_size, "node %zu lacks seq %.0f that node %zu has", j,
                                 logs[i].seqs[a], i);
                        rc = 1;
                        break;
                    }
                } else if (logs[i].seqs[a] > logs[j].seqs[b]) {
                    if (restore_covers(logs[j].events[b], -1)) {
                        b++;
                    } else if (restore_covers(logs[i].events[a], logs[j].seqs[b])) {
                        gaps++;
                        b++;
                    } else {
                        snprintf(msg, msg_size, "node %zu lacks seq %.0f that node %zu has", i,
                                 logs[j].seqs[b], j);
                        rc = 1;
                        break;
                    }
                } else {
                    if (!cJSON_Compare(logs[i].events[a], logs[j].events[b], 1)) {
                        snprintf(msg, msg_size, "seq %.0f differs between node %zu and node %zu",
                                 logs[i].seqs[a], i, j);
                        rc = 1;
                        break;
                    }
                    a++;
                    b++;
                }
            }
        }
    }
    if (rc == 0 && gaps > 0)
        snprintf(msg, msg_size,
                 "%zu events missing on a node where a snapshot install replaced the state "
                 "(state.restore marker; a documented gap, not a divergence)",
                 gaps);
    *snapshot_gaps = gaps;
    for (size_t i = 0; i < n; i++)
        ev_log_close(&logs[i]);
    free(logs);
    return rc;
}
