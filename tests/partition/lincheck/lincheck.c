/* The per-variable linearizability search (Lowe's just-in-time linearization
 * of the Wing-Gong algorithm, with a memo of visited (linearized set, state)
 * pairs), over the versioned-register model of docs/partition-testing.md. */
#include "lincheck.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Register state: the value (or never written) and its version. Versions
 * are raft indexes: increasing along the log but not contiguous. After a
 * write whose new version was not reported (outcome unknown, or no version
 * in the answer) the version is not known: `version` is then a strict lower
 * bound, and the first read reporting a version makes it known again. */
typedef struct {
    int has_value;
    int version_known;
    int64_t value;
    uint64_t version;
} lc_state;

/* Can the state's version be `v`? */
static int version_may_be(const lc_state *s, uint64_t v)
{
    return s->version_known ? s->version == v : v > s->version;
}

/* Can the state's version differ from `v`? */
static int version_may_differ(const lc_state *s, uint64_t v)
{
    return s->version_known ? s->version != v : 1;
}

/* A write of `op` taking effect on a state whose version is `floor` (known)
 * or greater than `floor` (not known): the new version is the reported one,
 * which must be greater, or else unknown and greater than `floor`. */
static int apply_write(const lc_op *op, uint64_t floor, lc_state *next)
{
    next->has_value = 1;
    next->value = op->value;
    if (op->outcome == LC_OK && op->has_version) {
        next->version_known = 1;
        next->version = op->version;
        return op->version > floor;
    }
    next->version_known = 0;
    next->version = floor;
    return 1;
}

/* Step the model: can `op` take effect in state `s`? Sets *next. Ops of
 * unknown outcome are taken to apply when they can: the search may also
 * linearize them last (their return is at +infinity), which is the same as
 * never applying. */
static int model_step(const lc_state *s, const lc_op *op, lc_state *next)
{
    *next = *s;
    switch (op->kind) {
    case LC_SET:
        return apply_write(op, s->version, next);
    case LC_CAS: {
        if (op->has_expected_version) {
            uint64_t e = op->expected_version;
            if (op->outcome == LC_FAIL)
                return version_may_differ(s, e); /* a conflict saw another state */
            if (!version_may_be(s, e))
                return op->outcome == LC_UNKNOWN; /* unknown: it may have failed */
            return apply_write(op, e, next);      /* matched: the version was e */
        }
        int match;
        if (op->expected_null)
            match = !s->has_value;
        else
            match = s->has_value && s->value == op->expected_value;
        if (op->outcome == LC_FAIL)
            return !match;
        if (!match)
            return op->outcome == LC_UNKNOWN;
        return apply_write(op, s->version, next);
    }
    case LC_INIT:
        assert(0 && "init records are not operations");
        return 0;
    case LC_GET:
        if (op->result_null ? s->has_value : !(s->has_value && s->value == op->result))
            return 0;
        if (!op->has_version)
            return 1;
        if (!version_may_be(s, op->version))
            return 0;
        next->version_known = 1; /* the read tells the version */
        next->version = op->version;
        return 1;
    }
    return 0;
}

/* Does this op constrain the history? Failed writes (not applied) and
 * failed/unknown reads observe nothing. */
static int op_relevant(const lc_op *op)
{
    if (op->kind == LC_INIT)
        return 0;
    if (op->kind == LC_GET)
        return op->outcome == LC_OK;
    if (op->kind == LC_SET)
        return op->outcome != LC_FAIL;
    return op->outcome != LC_FAIL || op->conflict;
}

/* A call or return event in the doubly linked list (index 0 = head). */
typedef struct {
    int64_t time;
    size_t op; /* local op index */
    int is_return;
    size_t match; /* call: index of its return event */
    size_t prev, next;
} lc_event;

/* Memo: open addressing over entries of (words bitset, state). */
typedef struct {
    uint64_t *keys; /* slots * stride words: bitset then state (3 words) */
    unsigned char *used;
    size_t slots;
    size_t count;
    size_t words; /* bitset words */
} lc_memo;

static size_t memo_stride(const lc_memo *m)
{
    return m->words + 3;
}

static uint64_t memo_hash(const uint64_t *key, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= key[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

static int memo_grow(lc_memo *m)
{
    size_t stride = memo_stride(m);
    size_t slots = m->slots ? m->slots * 2 : 1024;
    uint64_t *keys = calloc(slots * stride, sizeof *keys);
    unsigned char *used = calloc(slots, 1);
    if (keys == NULL || used == NULL) {
        free(keys);
        free(used);
        return -1;
    }
    for (size_t i = 0; i < m->slots; i++) {
        if (!m->used[i])
            continue;
        const uint64_t *k = m->keys + i * stride;
        size_t j = memo_hash(k, stride) & (slots - 1);
        while (used[j])
            j = (j + 1) & (slots - 1);
        used[j] = 1;
        memcpy(keys + j * stride, k, stride * sizeof *k);
    }
    free(m->keys);
    free(m->used);
    m->keys = keys;
    m->used = used;
    m->slots = slots;
    return 0;
}

/* Insert key; returns 1 if inserted, 0 if already present, -1 on OOM. */
static int memo_insert(lc_memo *m, const uint64_t *key)
{
    size_t stride = memo_stride(m);
    if ((m->count + 1) * 2 > m->slots && memo_grow(m) != 0)
        return -1;
    size_t j = memo_hash(key, stride) & (m->slots - 1);
    while (m->used[j]) {
        if (memcmp(m->keys + j * stride, key, stride * sizeof *key) == 0)
            return 0;
        j = (j + 1) & (m->slots - 1);
    }
    m->used[j] = 1;
    memcpy(m->keys + j * stride, key, stride * sizeof *key);
    m->count++;
    return 1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int event_cmp(const void *a, const void *b)
{
    const lc_event *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    /* Equal times: calls first, so touching intervals count as concurrent. */
    if (x->is_return != y->is_return)
        return x->is_return ? 1 : -1;
    return x->op < y->op ? -1 : (x->op > y->op ? 1 : 0);
}

static void lift(lc_event *ev, size_t call)
{
    size_t ret = ev[call].match;
    ev[ev[call].prev].next = ev[call].next;
    if (ev[call].next)
        ev[ev[call].next].prev = ev[call].prev;
    ev[ev[ret].prev].next = ev[ret].next;
    if (ev[ret].next)
        ev[ev[ret].next].prev = ev[ret].prev;
}

static void unlift(lc_event *ev, size_t call)
{
    size_t ret = ev[call].match;
    ev[ev[ret].prev].next = ret;
    if (ev[ret].next)
        ev[ev[ret].next].prev = ret;
    ev[ev[call].prev].next = call;
    if (ev[call].next)
        ev[ev[call].next].prev = call;
}

typedef struct {
    size_t call; /* event index */
    lc_state state;
} lc_frame;

/* Search one variable. `ops` maps local index -> history index. */
static int check_var(const lc_history *h, const size_t *ops, size_t n, const lc_limits *lim,
                     lc_var_result *r)
{
    int rc = -1;
    size_t words = (n + 63) / 64 + 1;
    lc_event *ev = calloc(2 * n + 1, sizeof *ev);
    lc_frame *stack = calloc(n + 1, sizeof *stack);
    size_t *best = calloc(n + 1, sizeof *best);
    uint64_t *key = calloc(words + 3, sizeof *key);
    lc_memo memo = { .words = words };
    if (ev == NULL || stack == NULL || best == NULL || key == NULL)
        goto out;

    /* Events 1..2n sorted by time; event 0 is the list head. */
    for (size_t i = 0; i < n; i++) {
        const lc_op *op = &h->ops[ops[i]];
        ev[1 + 2 * i] = (lc_event){ .time = op->invoke_ns, .op = i };
        ev[2 + 2 * i] = (lc_event){ .time = op->complete_ns, .op = i, .is_return = 1 };
    }
    qsort(ev + 1, 2 * n, sizeof *ev, event_cmp);
    {
        size_t *ret_at = malloc((n + 1) * sizeof *ret_at);
        if (ret_at == NULL)
            goto out;
        for (size_t i = 1; i <= 2 * n; i++)
            if (ev[i].is_return)
                ret_at[ev[i].op] = i;
        for (size_t i = 1; i <= 2 * n; i++) {
            if (!ev[i].is_return)
                ev[i].match = ret_at[ev[i].op];
            ev[i].prev = i - 1;
            ev[i].next = i < 2 * n ? i + 1 : 0;
        }
        free(ret_at);
    }
    ev[0].next = n ? 1 : 0;

    lc_state state = { .version_known = 1 };
    for (size_t i = 0; i < h->len; i++) { /* the variable's first init record */
        const lc_op *o = &h->ops[i];
        if (o->kind == LC_INIT && strcmp(o->var, h->ops[ops[0]].var) == 0) {
            state = (lc_state){ .has_value = !o->result_null,
                                .version_known = 1,
                                .value = o->result_null ? 0 : o->result,
                                .version = o->version };
            break;
        }
    }
    uint64_t *linearized = key; /* first `words` words of the key */
    size_t depth = 0, best_len = 0;
    size_t blocked = (size_t)-1;
    double start = now_ms();
    unsigned long long iter = 0;
    size_t entry = ev[0].next;
    r->verdict = LC_LINEARIZABLE;

    while (ev[0].next != 0) {
        if ((++iter & 1023) == 0) {
            if ((lim->budget_ms > 0 && now_ms() - start > (double)lim->budget_ms) ||
                (lim->max_memo_bytes > 0 &&
                 memo.slots * (memo_stride(&memo) * 8 + 1) > lim->max_memo_bytes)) {
                r->verdict = LC_BUDGET;
                break;
            }
        }
        assert(entry != 0);
        if (!ev[entry].is_return) {
            const lc_op *op = &h->ops[ops[ev[entry].op]];
            lc_state next;
            if (model_step(&state, op, &next)) {
                size_t bit = ev[entry].op;
                linearized[bit / 64] |= 1ull << (bit % 64);
                key[words] = (uint64_t)next.has_value | (uint64_t)next.version_known << 1;
                key[words + 1] = (uint64_t)next.value;
                key[words + 2] = next.version;
                int ins = memo_insert(&memo, key);
                if (ins < 0) {
                    r->verdict = LC_BUDGET;
                    break;
                }
                if (ins == 1) {
                    stack[depth++] = (lc_frame){ .call = entry, .state = state };
                    state = next;
                    lift(ev, entry);
                    entry = ev[0].next;
                    continue;
                }
                linearized[bit / 64] &= ~(1ull << (bit % 64));
            }
            entry = ev[entry].next;
        } else {
            /* A return whose call is not linearized yet: backtrack. */
            if (depth > best_len || blocked == (size_t)-1) {
                best_len = depth;
                blocked = ev[entry].op;
                for (size_t i = 0; i < depth; i++)
                    best[i] = ev[stack[i].call].op;
            }
            if (depth == 0) {
                r->verdict = LC_VIOLATION;
                break;
            }
            lc_frame f = stack[--depth];
            size_t bit = ev[f.call].op;
            linearized[bit / 64] &= ~(1ull << (bit % 64));
            state = f.state;
            unlift(ev, f.call);
            entry = ev[f.call].next;
        }
    }

    r->ops_checked = n;
    r->elapsed_ms = now_ms() - start;
    if (r->verdict == LC_VIOLATION) {
        /* Window: the blocked op, ops overlapping it, the prefix's tail. */
        const lc_op *b = &h->ops[ops[blocked]];
        r->prefix_len = best_len;
        r->blocked_op = ops[blocked];
        r->window = malloc((n + 1) * sizeof *r->window);
        if (r->window == NULL)
            goto out;
        r->window[r->window_len++] = ops[blocked];
        size_t tail = best_len > 5 ? best_len - 5 : 0;
        for (size_t i = tail; i < best_len; i++)
            r->window[r->window_len++] = ops[best[i]];
        for (size_t i = 0; i < n && r->window_len < 32; i++) {
            const lc_op *o = &h->ops[ops[i]];
            int dup = 0;
            for (size_t k = 0; k < r->window_len; k++)
                dup |= r->window[k] == ops[i];
            if (!dup && o->invoke_ns <= b->complete_ns && o->complete_ns >= b->invoke_ns)
                r->window[r->window_len++] = ops[i];
        }
    }
    rc = 0;
out:
    free(ev);
    free(stack);
    free(best);
    free(key);
    free(memo.keys);
    free(memo.used);
    return rc;
}

void lc_var_result_close(lc_var_result *r)
{
    free(r->window);
    r->window = NULL;
    r->window_len = 0;
}

static const lc_history *sort_hist;

static int idx_by_var_cmp(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(sort_hist->ops[x].var, sort_hist->ops[y].var);
    if (c != 0)
        return c;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static int result_by_var_cmp(const void *a, const void *b)
{
    return strcmp(((const lc_var_result *)a)->var, ((const lc_var_result *)b)->var);
}

/* A write that may have applied: set or cas not definitely failed. */
static int may_write(const lc_op *op)
{
    return (op->kind == LC_SET || op->kind == LC_CAS) && op->outcome != LC_FAIL;
}

typedef struct {
    int64_t value;
    size_t op;
} lc_written;

static int written_cmp(const void *a, const void *b)
{
    const lc_written *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return x->op < y->op ? -1 : (x->op > y->op ? 1 : 0);
}

/* An unknown-outcome write whose value an ok read returned did take effect,
 * before that read returned: give it the earliest such return as its
 * completion, so the search need not keep it pending to the end. Only for a
 * value written once in the variable's history (the workload writes unique
 * values); reads returning before the write was invoked are left to the
 * search (they are violations). Works on `ops` (a copy), indices `idx`. */
static int tighten_observed_writes(lc_op *ops, const size_t *idx, size_t n)
{
    lc_written *w = malloc((n + 1) * sizeof *w);
    size_t nw = 0;
    if (w == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (may_write(&ops[idx[i]]))
            w[nw++] = (lc_written){ ops[idx[i]].value, idx[i] };
    qsort(w, nw, sizeof *w, written_cmp);
    for (size_t i = 0; i < n; i++) {
        const lc_op *g = &ops[idx[i]];
        if (g->kind != LC_GET || g->outcome != LC_OK || g->result_null)
            continue;
        size_t lo = 0, hi = nw;
        while (lo < hi) { /* first entry with value >= result */
            size_t mid = lo + (hi - lo) / 2;
            if (w[mid].value < g->result)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo >= nw || w[lo].value != g->result || (lo + 1 < nw && w[lo + 1].value == g->result))
            continue; /* not written, or written twice */
        lc_op *wr = &ops[w[lo].op];
        if (wr->outcome == LC_UNKNOWN && g->complete_ns >= wr->invoke_ns &&
            g->complete_ns < wr->complete_ns)
            wr->complete_ns = g->complete_ns;
    }
    free(w);
    return 0;
}

/* Check one variable (indices `idx`, `n` of them, into `w`). Unknown writes
 * nobody observed are first left out (a linearization where they never took
 * effect is a valid one); only if that fails is the search redone with
 * them, which can cost far more. */
static int check_var_two_pass(const lc_history *w, const size_t *idx, size_t n,
                              const lc_limits *limits, lc_var_result *r)
{
    size_t *reduced = malloc((n + 1) * sizeof *reduced);
    size_t m = 0;
    if (reduced == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const lc_op *op = &w->ops[idx[i]];
        if (!(may_write(op) && op->outcome == LC_UNKNOWN && op->complete_ns == INT64_MAX))
            reduced[m++] = idx[i];
    }
    if (m < n && m > 0) {
        char var[LC_VAR_MAX];
        memcpy(var, r->var, LC_VAR_MAX);
        if (check_var(w, reduced, m, limits, r) != 0) {
            free(reduced);
            return -1;
        }
        if (r->verdict == LC_LINEARIZABLE) {
            r->ops_checked = n;
            free(reduced);
            return 0;
        }
        lc_var_result first = *r;
        memset(r, 0, sizeof *r);
        memcpy(r->var, var, LC_VAR_MAX);
        free(reduced);
        int rc = check_var(w, idx, n, limits, r);
        r->elapsed_ms += first.elapsed_ms;
        if (rc == 0 && r->verdict == LC_BUDGET && first.verdict == LC_VIOLATION) {
            /* Keep the first pass's counterexample as a lead. */
            lc_var_result_close(r);
            r->blocked_op = first.blocked_op;
            r->window = first.window;
            r->window_len = first.window_len;
            r->prefix_len = first.prefix_len;
            r->violation_without_unknown_writes = 1;
            return 0;
        }
        lc_var_result_close(&first);
        return rc;
    }
    free(reduced);
    return check_var(w, idx, n, limits, r);
}

int lc_check(const lc_history *h, const lc_limits *limits, lc_var_result **results, size_t *count)
{
    size_t *idx = malloc((h->len + 1) * sizeof *idx);
    lc_var_result *res = NULL;
    size_t nres = 0, nidx = 0;
    /* A working copy: tightening changes completion times. */
    lc_history w = { .ops = malloc((h->len + 1) * sizeof *h->ops), .len = h->len, .cap = h->len };
    if (idx == NULL || w.ops == NULL) {
        free(idx);
        free(w.ops);
        return -1;
    }
    if (h->len > 0)
        memcpy(w.ops, h->ops, h->len * sizeof *h->ops);
    for (size_t i = 0; i < h->len; i++)
        if (op_relevant(&h->ops[i]))
            idx[nidx++] = i;
    /* qsort has no context argument: the history is passed via a static,
     * which is fine for this single-threaded tool. */
    sort_hist = h;
    qsort(idx, nidx, sizeof *idx, idx_by_var_cmp);
    sort_hist = NULL;

    /* Variables with no relevant ops still get a (trivial) result. */
    size_t nvars = 0;
    for (size_t i = 0; i < h->len; i++)
        nvars++;
    res = calloc(nvars + 1, sizeof *res);
    if (res == NULL)
        goto fail;
    for (size_t i = 0; i < nidx;) {
        size_t j = i;
        while (j < nidx && strcmp(h->ops[idx[j]].var, h->ops[idx[i]].var) == 0)
            j++;
        lc_var_result *r = &res[nres++];
        memcpy(r->var, h->ops[idx[i]].var, LC_VAR_MAX);
        if (limits->plain ? check_var(&w, idx + i, j - i, limits, r) != 0
                          : (tighten_observed_writes(w.ops, idx + i, j - i) != 0 ||
                             check_var_two_pass(&w, idx + i, j - i, limits, r) != 0))
            goto fail;
        i = j;
    }
    for (size_t i = 0; i < h->len; i++) {
        int seen = 0;
        for (size_t k = 0; k < nres && !seen; k++)
            seen = strcmp(res[k].var, h->ops[i].var) == 0;
        if (!seen) {
            lc_var_result *r = &res[nres++];
            memcpy(r->var, h->ops[i].var, LC_VAR_MAX);
            r->verdict = LC_LINEARIZABLE;
        }
    }
    free(idx);
    free(w.ops);
    qsort(res, nres, sizeof *res, result_by_var_cmp);
    *results = res;
    *count = nres;
    return 0;
fail:
    for (size_t k = 0; k < nres; k++)
        lc_var_result_close(&res[k]);
    free(res);
    free(idx);
    free(w.ops);
    return -1;
}
