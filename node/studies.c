/* node/studies.c: the studies driver (see node/studies.h, docs/studies.md).
 *
 * Optimiser duty, on the node that runs the study's optimiser agent (a
 * placed cluster agent of kind `optimiser`, placed by the raft leader when
 * the study runs and removed when it ends): an mb_optim rebuilt from the
 * replicated trials (suggest k after feeding the first `basis` finished
 * trials in the order they finished: the same calls in the same order give
 * the same optimiser), kept in step with the log, proposing TRIAL_SUGGEST
 * with the expected trial number so that pipelined suggestions never skip;
 * the time budget (STUDY_FINISH) and re-queueing trials of nodes the
 * failure detector declares down.
 *
 * Evaluators: every node places `study_evaluators` cluster agents of kind
 * `evaluator` on itself (`evaluator-<node>-<k>`); every evaluator agent
 * that runs on a node (its own, or moved there by failover) gets a slot
 * (a helper thread) that claims suggested trials (TRIAL_START with the
 * agent's id and placed generation), evaluates them and reports
 * (TRIAL_REPORT, TRIAL_FINISH). A claim race is settled by the state
 * machine (the loser gets MB_ESTATE); when the agent crashes, stops or
 * moves, the state machine re-queues its trials. */

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mabeam/optim.h>

#include "internal/clock.h"
#include "consensus/consensus.h"
#include "node/node.h"
#include "node/node_log.h"
#include "node/placement.h"
#include "node/replication.h"
#include "node/studies.h"

extern char **environ;

#define TICK_MS          100
#define STARTING_TICK_MS 5    /* while an agent placed here is being started, */
#define STARTING_MAX_MS  1000 /* for at most this long */
#define CLAIM_IDLE_MS    20   /* a follower slot idle this long takes any trial */
#define SUBMIT_RETRIES   5
#define STDERR_TAIL      240
#define LINE_MAX_BYTES   4096
#define SLOTS_MAX        256
#define DEFAULT_PYTHON   "/usr/bin/python3" /* Debian's, for python3-sklearn */
#define CANCEL_GRACE_MS  1000 /* a cancelled objective process: SIGTERM, then SIGKILL */

/* ---------------- messages from slot threads ---------------- */

typedef enum { MSG_REPORT = 1, MSG_FINISH = 2 } msg_kind;

typedef struct slot_msg {
    struct slot_msg *next;
    unsigned slot;
    msg_kind kind;
    uint64_t step;
    double value;
    consensus_trial_status status;
    char error[CONSENSUS_TRIAL_ERROR_MAX + 1];
} slot_msg;

/* What a slot thread evaluates (owned by the slot while it runs). */
typedef struct job {
    consensus_objective_kind kind;
    char *objective; /* builtin name or python script */
    char **argv;     /* command: argc + NULL */
    uint32_t argc;
    double *x;
    uint32_t n;
    char *input; /* JSON text for stdin */
    uint64_t timeout_ms;
} job;

/* A slot evaluates its trial while its claim (TRIAL_START) commits; what
 * the evaluation reports meanwhile is held until the claim is accepted,
 * and dropped (the evaluation cancelled: DRAINING) when it is refused. */
typedef enum { SLOT_IDLE = 0, SLOT_CLAIMING, SLOT_RUNNING, SLOT_DRAINING } slot_state;

typedef struct slot {
    studies *s;
    unsigned idx;
    pthread_t th;
    /* loop thread */
    slot_state state;
    char study[CONSENSUS_ID_MAX + 1];
    uint32_t number;
    uint64_t idle_since;
    int bound;           /* runs for evaluator agent `evaluator` (placed here) */
    uint64_t generation; /* that agent's placed generation */
    char evaluator[CONSENSUS_ID_MAX + 1];
    struct slot_msg *held; /* CLAIMING: results waiting for the claim */
    /* shared under s->mu */
    int has_job;
    int cancel;
    pid_t child;
    job j;
} slot;

typedef struct optrun {
    struct optrun *next;
    char id[CONSENSUS_ID_MAX + 1];
    char agent[CONSENSUS_ID_MAX + 1]; /* the optimiser agent hosted here */
    mb_optim_part *opt;               /* one optimiser, or one per partition group */
    uint32_t n_suggested; /* trials the optimiser suggested (== replicated + inflight) */
    uint32_t n_fed;       /* finished trials fed */
    uint64_t fed_index;   /* raft index of the last one fed */
    uint32_t inflight;    /* suggestions not answered yet */
    int broken;           /* out of step with the log: rebuild */
    int ctl_inflight;     /* a STUDY_FINISH / TRIAL_REQUEUE in flight */
    int exhausted;
    int mark;
} optrun;

struct studies {
    node *n;
    uv_timer_t tick;
    uv_async_t wake;
    int handles; /* open handles */
    int closing;
    unsigned pending; /* submits not answered yet */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot_msg *msgs, **msgs_tail;
    slot *slots;             /* SLOTS_MAX, the first n_slots in use */
    unsigned n_slots;        /* bound now or earlier (threads started) */
    unsigned threads;        /* started: slots[0..threads) */
    unsigned home_slots;     /* evaluator agents this node places on itself */
    int ev_busy;             /* an evaluator agent place/move/remove in flight */
    int opt_busy;            /* leader: an optimiser agent place/remove in flight */
    int orphan_busy;         /* a re-queue of a lost trial in flight */
    int starting;            /* an agent placed here has no local copy yet: tick soon */
    uint64_t starting_since; /* ... since then (a copy that does not start: back to TICK_MS) */
    struct submit *live;     /* submits not answered yet */
    optrun *runs;
    uint64_t applied_seen;
};

static void studies_maybe_free(studies *s);
static void tick_cb(uv_timer_t *t);

static void slog(studies *s, nc_log_level lvl, const char *msg, const char *k, const char *v)
{
    NC_LOGKV(s->n->log, lvl, "studies", msg, NC_F_STR(k, v));
}

/* ---------------- jobs (slot threads) ---------------- */

static void job_free(job *j)
{
    free(j->objective);
    if (j->argv != NULL)
        for (uint32_t i = 0; i < j->argc; i++)
            free(j->argv[i]);
    free(j->argv);
    free(j->x);
    free(j->input);
    memset(j, 0, sizeof(*j));
}

static void post(studies *s, const slot_msg *m)
{
    slot_msg *c = malloc(sizeof(*c));
    if (c == NULL)
        return; /* the trial stays running; a re-queue or timeout recovers it */
    *c = *m;
    c->next = NULL;
    pthread_mutex_lock(&s->mu);
    *s->msgs_tail = c;
    s->msgs_tail = &c->next;
    pthread_mutex_unlock(&s->mu);
    uv_async_send(&s->wake);
}

static void post_finish(slot *sl, consensus_trial_status st, double value, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void post_finish(slot *sl, consensus_trial_status st, double value, const char *fmt, ...)
{
    slot_msg m = { .slot = sl->idx, .kind = MSG_FINISH, .status = st, .value = value };
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m.error, sizeof(m.error), fmt, ap);
        va_end(ap);
    }
    post(sl->s, &m);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait up to ms for a cancel; 1 when cancelled. */
static int wait_cancel(slot *sl, uint64_t ms)
{
    struct timespec ts = mb_deadline_in_ms(ms); /* s->cv: CLOCK_MONOTONIC */
    pthread_mutex_lock(&sl->s->mu);
    while (!sl->cancel)
        if (pthread_cond_timedwait(&sl->s->cv, &sl->s->mu, &ts) == ETIMEDOUT)
            break;
    int c = sl->cancel;
    pthread_mutex_unlock(&sl->s->mu);
    return c;
}

static void run_builtin(slot *sl, const job *j)
{
    const char *o = j->objective;
    double v = 0;
    if (strncmp(o, "sleep:", 6) == 0) {
        if (wait_cancel(sl, strtoull(o + 6, NULL, 10))) {
            post_finish(sl, CONSENSUS_TRIAL_FAILED, 0, "cancelled");
            return;
        }
        for (uint32_t i = 0; i < j->n; i++)
            v += j->x[i];
    } else if (strcmp(o, "branin") == 0) {
        v = mb_optim_testfn_eval(MB_OPTIM_BRANIN, 2, j->x);
    } else if (strcmp(o, "hartmann6") == 0) {
        v = mb_optim_testfn_eval(MB_OPTIM_HARTMANN6, 6, j->x);
    } else if (strcmp(o, "rosenbrock") == 0) {
        v = mb_optim_testfn_eval(MB_OPTIM_ROSENBROCK, j->n, j->x);
    } else if (strcmp(o, "ackley") == 0) {
        v = mb_optim_testfn_eval(MB_OPTIM_ACKLEY, j->n, j->x);
    } else if (strcmp(o, "sphere") == 0) {
        for (uint32_t i = 0; i < j->n; i++)
            v += j->x[i] * j->x[i];
    } else {
        post_finish(sl, CONSENSUS_TRIAL_FAILED, 0, "unknown builtin objective %s", o);
        return;
    }
    if (!isfinite(v))
        post_finish(sl, CONSENSUS_TRIAL_FAILED, 0, "objective value is not finite");
    else
        post_finish(sl, CONSENSUS_TRIAL_COMPLETED, v, NULL);
}

/* One stdout line of an objective process: a report, a final value, or
 * garbage. Returns 1 for a final value (*value set), 0 for a report, -1
 * for garbage. */
static int parse_line(slot *sl, const char *line, double *value)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line == '\0')
        return 0; /* blank lines are ignored */
    char *end = NULL;
    double d = strtod(line, &end);
    if (end != line) {
        while (*end == ' ' || *end == '\t' || *end == '\r')
            end++;
        if (*end == '\0' && isfinite(d)) {
            *value = d;
            return 1;
        }
    }
    cJSON *j = cJSON_Parse(line);
    if (j == NULL)
        return -1;
    int rc = -1;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "report");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "step");
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && r == NULL) {
        *value = v->valuedouble;
        rc = 1;
    } else if (cJSON_IsNumber(r) && isfinite(r->valuedouble) && cJSON_IsNumber(st) &&
               st->valuedouble >= 0 && st->valuedouble < 9007199254740992.0) {
        slot_msg m = { .slot = sl->idx,
                       .kind = MSG_REPORT,
                       .step = (uint64_t)st->valuedouble,
                       .value = r->valuedouble };
        post(sl->s, &m);
        rc = 0;
    }
    cJSON_Delete(j);
    return rc;
}

static void run_process(slot *sl, const job *j)
{
    int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
    char *pyargv[3] = { NULL, NULL, NULL };
    char *const *argv = j->argv;
    if (j->kind == CONSENSUS_OBJECTIVE_PYTHON) {
        const char *py = getenv("MABEAM_PYTHON");
        pyargv[0] = (char *)(py != NULL && py[0] ? py : DEFAULT_PYTHON);
        pyargv[1] = j->objective;
        argv = pyargv;
    }
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        post_finish(sl, CONSENSUS_TRIAL_FAILED, 0, "pipe: %s", strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawnattr_setpgroup(&at, 0);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in[0] = out[1] = err[1] = -1;
    if (rc != 0) {
        post_finish(sl, CONSENSUS_TRIAL_FAILED, 0, "cannot run %s: %s", argv[0], strerror(rc));
        goto out;
    }
    pthread_mutex_lock(&sl->s->mu);
    sl->child = pid;
    int cancelled = sl->cancel;
    pthread_mutex_unlock(&sl->s->mu);
    if (cancelled)
        kill(-pid, SIGKILL);
    /* Parameters on stdin (small: a blocking write is fine), then EOF. */
    size_t left = strlen(j->input);
    const char *p = j->input;
    while (left > 0) {
        ssize_t w = write(in[1], p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* the objective does not read its input: its business */
        p += w;
        left -= (size_t)w;
    }
    close(in[1]);
    in[1] = -1;

    char line[LINE_MAX_BYTES + 1], tail[STDERR_TAIL + 1] = "";
    size_t ll = 0, tl = 0;
    int have_value = 0, garbage = 0, timed_out = 0, open_fds = 2;
    double value = 0;
    char bad[96] = "";
    uint64_t deadline = j->timeout_ms > 0 ? mono_ms() + j->timeout_ms : 0;
    while (open_fds > 0) {
        struct pollfd pf[2] = { { .fd = out[0], .events = POLLIN },
                                { .fd = err[0], .events = POLLIN } };
        int wait = 200;
        if (deadline != 0) {
            uint64_t now = mono_ms();
            if (now >= deadline) {
                timed_out = 1;
                kill(-pid, SIGKILL);
                break;
            }
            if (deadline - now < (uint64_t)wait)
                wait = (int)(deadline - now);
        }
        pthread_mutex_lock(&sl->s->mu);
        cancelled = sl->cancel;
        pthread_mutex_unlock(&sl->s->mu);
        if (cancelled)
            break; /* stopped below: SIGTERM, then SIGKILL after a grace */
        int pr = poll(pf, 2, wait);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        char buf[1024];
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = read(out[0], buf, sizeof(buf));
            if (r <= 0) {
                pf[0].fd = -1;
                close(out[0]);
                out[0] = -1;
                open_fds--;
                if (ll > 0) { /* last line without a newline */
                    line[ll] = '\0';
                    int k = parse_line(sl, line, &value);
                    if (k < 0 && !garbage) {
                        garbage = 1;
                        snprintf(bad, sizeof(bad), "%.80s", line);
                    }
                    have_value |= k == 1;
                    ll = 0;
                }
            } else {
                for (ssize_t i = 0; i < r && !garbage; i++) {
                    if (buf[i] != '\n' && ll < LINE_MAX_BYTES) {
                        line[ll++] = buf[i];
                        continue;
                    }
                    line[ll] = '\0';
                    int k = parse_line(sl, line, &value);
                    if (k < 0) {
                        garbage = 1;
                        snprintf(bad, sizeof(bad), "%.80s", line);
                    }
                    have_value |= k == 1;
                    ll = 0;
                }
                if (garbage) {
                    kill(-pid, SIGKILL);
                    break;
                }
            }
        }
        if (err[0] >= 0 && (pf[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = read(err[0], buf, sizeof(buf));
            if (r <= 0) {
                close(err[0]);
                err[0] = -1;
                open_fds--;
            } else {
                for (ssize_t i = 0; i < r; i++) {
                    if (tl == STDERR_TAIL) {
                        memmove(tail, tail + 1, STDERR_TAIL - 1);
                        tl--;
                    }
                    tail[tl++] = buf[i] == '\n' || buf[i] == '"' ? ' ' : buf[i];
                }
                tail[tl] = '\0';
            }
        }
        if (out[0] < 0 && open_fds > 0 && err[0] < 0)
            break;
    }
    int status = 0, reaped = 0;
    if (cancelled) {
        /* Pruned, re-queued or shut down: ask the process group to stop,
         * and kill it if it is still there after the grace. */
        kill(-pid, SIGTERM);
        uint64_t until = mono_ms() + CANCEL_GRACE_MS;
        pid_t w;
        while ((w = waitpid(pid, &status, WNOHANG)) == 0 && mono_ms() < until)
            poll(NULL, 0, 5);
        if (w == pid)
            reaped = 1;
        else
            kill(-pid, SIGKILL);
    }
    while (!reaped && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&sl->s->mu);
    sl->child = 0;
    cancelled = sl->cancel;
    pthread_mutex_unlock(&sl->s->mu);
    if (cancelled)
        post_finish(sl, CONSENSUS_TRIAL_FAILED, 0, "cancelled");
    else if (timed_out)
        post_finish(sl, CONSENSUS_TRIAL_FAILED, 0, "timed out after %llu ms",
                    (unsigned long long)j->timeout_ms);
    else if (garbage)
        post_finish(sl, CONSENSUS_TRIAL_FAILED, 0, "garbage on stdout: \"%s\"", bad);
    else if (WIFSIGNALED(status))
        post_finish(sl, CONSENSUS_TRIAL_FAILED, 0, "killed by signal %d; stderr: %s",
                    WTERMSIG(status), tail);
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        post_finish(sl, CONSENSUS_TRIAL_FAILED, 0, "exit status %d; stderr: %s",
                    WEXITSTATUS(status), tail);
    else if (!have_value)
        post_finish(sl, CONSENSUS_TRIAL_FAILED, 0, "no objective value printed");
    else
        post_finish(sl, CONSENSUS_TRIAL_COMPLETED, value, NULL);
out:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
        if (err[i] >= 0)
            close(err[i]);
    }
}

static void *slot_main(void *arg)
{
    slot *sl = arg;
    studies *s = sl->s;
    pthread_setname_np(pthread_self(), "mb-study");
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!sl->has_job && !s->closing)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->closing) {
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        job j = sl->j;
        memset(&sl->j, 0, sizeof(sl->j));
        sl->has_job = 0;
        pthread_mutex_unlock(&s->mu);
        if (j.kind == CONSENSUS_OBJECTIVE_BUILTIN)
            run_builtin(sl, &j);
        else
            run_process(sl, &j);
        job_free(&j);
    }
}

/* ---------------- submits ---------------- */

typedef struct submit {
    studies *s;
    struct submit *live_next; /* s->live */
    int kind;                 /* what to do with the answer */
    unsigned slot;
    char study[CONSENSUS_ID_MAX + 1];
    uint32_t number;
    int retries;
    consensus_cmd cmd; /* kept for retries (study part owned) */
    consensus_study_cmd sc;
    char ev[CONSENSUS_ID_MAX + 1]; /* SUB_CTL/SUB_ORPHAN re-queue: the claim it ends */
    char by[CONSENSUS_ID_MAX + 1];
} submit;

enum { SUB_SUGGEST = 1, SUB_START, SUB_REPORT, SUB_FINISH, SUB_CTL, SUB_ORPHAN };

static optrun *run_find(studies *s, const char *id)
{
    for (optrun *r = s->runs; r != NULL; r = r->next)
        if (strcmp(r->id, id) == 0)
            return r;
    return NULL;
}

static void submit_free(submit *sb)
{
    for (submit **pp = &sb->s->live; *pp != NULL; pp = &(*pp)->live_next)
        if (*pp == sb) {
            *pp = sb->live_next;
            break;
        }
    free(sb->sc.params);
    free(sb->sc.strategy);
    free(sb->sc.error);
    free(sb->sc.reason);
    free(sb);
}

static void submit_cb(void *arg, const consensus_result *res);

static int submit_send(submit *sb)
{
    sb->cmd.study = &sb->sc;
    sb->cmd.client_id = 0; /* a fresh idempotency id per attempt */
    int rc = repl_submit(sb->s->n->repl, &sb->cmd, 0, submit_cb, sb);
    if (rc == MB_OK)
        sb->s->pending++;
    return rc;
}

static void held_free(slot *sl)
{
    while (sl->held != NULL) {
        slot_msg *m = sl->held;
        sl->held = m->next;
        free(m);
    }
}

static void slot_cancel(slot *sl)
{
    pthread_mutex_lock(&sl->s->mu);
    sl->cancel = 1;
    if (sl->child > 0)
        kill(-sl->child, SIGTERM); /* the slot thread escalates to SIGKILL */
    pthread_cond_broadcast(&sl->s->cv);
    pthread_mutex_unlock(&sl->s->mu);
}

static void slot_release(slot *sl)
{
    held_free(sl);
    sl->state = SLOT_IDLE;
    sl->idle_since = uv_now(&sl->s->n->loop);
    sl->study[0] = '\0';
    sl->number = 0;
}

static void slot_start_job(slot *sl, const consensus_study *st, const consensus_trial *t);
static void slot_send_msg(studies *s, slot *sl, slot_msg *m);

static void submit_cb(void *arg, const consensus_result *res)
{
    submit *sb = arg;
    studies *s = sb->s;
    s->pending--;
    int retry = !s->closing && (res->code == MB_ENOQUORUM || res->code == MB_EUNKNOWN) &&
                sb->retries++ < SUBMIT_RETRIES;
    if (retry && sb->kind != SUB_SUGGEST && sb->kind != SUB_START && submit_send(sb) == MB_OK)
        return;
    optrun *r = run_find(s, sb->study);
    slot *sl = sb->kind == SUB_START ? &s->slots[sb->slot] : NULL;
    switch (sb->kind) {
    case SUB_SUGGEST:
        if (r != NULL) {
            r->inflight--;
            if (res->code != MB_OK)
                r->broken = 1;
        }
        break;
    case SUB_START:
        if (s->closing) {
            slot_release(sl);
            break;
        }
        if (res->code != MB_OK)
            slog(s, NC_LOG_DEBUG, "trial claim refused", "error", res->msg);
        if (res->code == MB_OK) {
            const consensus_study *st = consensus_sm_study_get(repl_sm(s->n->repl), sb->study);
            const consensus_trial *t = consensus_study_trial(st, sb->number);
            if (t != NULL && t->status == CONSENSUS_TRIAL_RUNNING &&
                strcmp(t->evaluator, sl->evaluator) == 0 && t->generation == sl->generation) {
                sl->state = SLOT_RUNNING;
                slot_msg *held = sl->held;
                sl->held = NULL;
                while (held != NULL) {
                    slot_msg *next = held->next;
                    slot_send_msg(s, sl, held);
                    free(held);
                    held = next;
                }
                break;
            }
        }
        /* Refused: drop what the evaluation said; cancel it if it runs. */
        int done = 0;
        for (slot_msg *m = sl->held; m != NULL; m = m->next)
            done |= m->kind == MSG_FINISH;
        held_free(sl);
        if (done) {
            slot_release(sl);
        } else {
            sl->state = SLOT_DRAINING;
            slot_cancel(sl);
        }
        break;
    case SUB_FINISH:
        if (res->code != MB_OK && res->code != MB_ECLOSED)
            slog(s, NC_LOG_DEBUG, "trial result not recorded", "error", res->msg);
        break;
    case SUB_CTL:
        if (r != NULL)
            r->ctl_inflight = 0;
        break;
    case SUB_ORPHAN:
        s->orphan_busy = 0;
        break;
    default:
        break;
    }
    submit_free(sb);
    if (s->closing)
        studies_maybe_free(s);
    else
        uv_timer_start(&s->tick, tick_cb, 0, 0);
}

static submit *submit_new(studies *s, int kind, consensus_cmd_kind ck, const char *study,
                          uint32_t number)
{
    submit *sb = calloc(1, sizeof(*sb));
    if (sb == NULL)
        return NULL;
    sb->s = s;
    sb->live_next = s->live;
    s->live = sb;
    sb->kind = kind;
    sb->cmd.kind = ck;
    snprintf(sb->study, sizeof(sb->study), "%s", study);
    sb->sc.study_id = sb->study;
    sb->number = sb->sc.number = number;
    return sb;
}

/* ---------------- loop side: results of slots ---------------- */

static void wake_cb(uv_async_t *h)
{
    studies *s = h->data;
    pthread_mutex_lock(&s->mu);
    slot_msg *m = s->msgs;
    s->msgs = NULL;
    s->msgs_tail = &s->msgs;
    pthread_mutex_unlock(&s->mu);
    while (m != NULL) {
        slot_msg *next = m->next;
        slot *sl = &s->slots[m->slot];
        if (!s->closing && sl->state == SLOT_CLAIMING) {
            m->next = NULL; /* held until the claim is answered */
            slot_msg **tail = &sl->held;
            while (*tail != NULL)
                tail = &(*tail)->next;
            *tail = m;
            m = next;
            continue;
        }
        if (sl->state == SLOT_DRAINING && m->kind == MSG_FINISH)
            slot_release(sl);
        if (!s->closing && sl->state == SLOT_RUNNING)
            slot_send_msg(s, sl, m);
        free(m);
        m = next;
    }
}

/* Send a report or the result of a RUNNING slot's trial. */
static void slot_send_msg(studies *s, slot *sl, slot_msg *m)
{
    submit *sb =
        submit_new(s, m->kind == MSG_REPORT ? SUB_REPORT : SUB_FINISH,
                   m->kind == MSG_REPORT ? CONSENSUS_CMD_TRIAL_REPORT : CONSENSUS_CMD_TRIAL_FINISH,
                   sl->study, sl->number);
    if (sb != NULL) {
        sb->slot = sl->idx;
        sb->cmd.by = sl->evaluator;
        sb->sc.evaluator = sl->evaluator;
        sb->sc.generation = sl->generation;
        sb->sc.step = m->step;
        sb->sc.value = m->value;
        sb->sc.status = m->status;
        if (m->kind == MSG_FINISH && m->status == CONSENSUS_TRIAL_FAILED)
            sb->sc.error = strdup(m->error[0] ? m->error : "failed");
    }
    if (sb != NULL && submit_send(sb) != MB_OK)
        submit_free(sb);
    /* The slot is free as soon as its result is on its way (the submit
     * retries on its own): the next claim overlaps it. */
    if (m->kind == MSG_FINISH)
        slot_release(sl);
}

static void slot_start_job(slot *sl, const consensus_study *st, const consensus_trial *t)
{
    studies *s = sl->s;
    job j = { .kind = st->def.objective_kind, .timeout_ms = st->def.trial_timeout_ms };
    int ok = 1;
    j.objective = st->def.objective != NULL ? strdup(st->def.objective) : NULL;
    j.n = st->def.n_params;
    j.x = malloc(j.n * sizeof(double));
    if (j.x == NULL || (st->def.objective != NULL && j.objective == NULL))
        ok = 0;
    else
        memcpy(j.x, t->params, j.n * sizeof(double));
    if (ok && st->def.argc > 0) {
        j.argv = calloc(st->def.argc + 1, sizeof(char *));
        ok = j.argv != NULL;
        for (uint32_t i = 0; ok && i < st->def.argc; i++, j.argc++)
            ok = (j.argv[i] = strdup(st->def.argv[i])) != NULL;
    }
    cJSON *in = cJSON_CreateObject(), *p = NULL;
    if (ok && in != NULL && cJSON_AddStringToObject(in, "study", st->def.id) &&
        cJSON_AddNumberToObject(in, "trial", t->number) &&
        (p = cJSON_AddObjectToObject(in, "params")) != NULL) {
        for (uint32_t i = 0; ok && i < st->def.n_params; i++)
            ok =
                cJSON_AddItemToObject(p, st->def.params[i].name,
                                      consensus_study_param_json(&st->def.params[i], t->params[i]));
        char *text = ok ? cJSON_PrintUnformatted(in) : NULL;
        if (text != NULL) {
            j.input = malloc(strlen(text) + 2);
            if (j.input != NULL)
                sprintf(j.input, "%s\n", text);
            cJSON_free(text);
        }
    }
    cJSON_Delete(in);
    if (!ok || j.input == NULL) {
        job_free(&j);
        slot_msg m = { .slot = sl->idx,
                       .kind = MSG_FINISH,
                       .status = CONSENSUS_TRIAL_FAILED,
                       .error = "out of memory preparing the trial" };
        post(s, &m);
        return;
    }
    pthread_mutex_lock(&s->mu);
    sl->j = j;
    sl->has_job = 1;
    sl->cancel = 0;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---------------- evaluators: claim suggested trials ---------------- */

static int trial_claimed_here(const studies *s, const char *study, uint32_t number)
{
    for (unsigned i = 0; i < s->n_slots; i++)
        if (s->slots[i].state != SLOT_IDLE && s->slots[i].number == number &&
            strcmp(s->slots[i].study, study) == 0)
            return 1;
    return 0;
}

/* This node's rank among the up nodes and their count (for spreading). */
static void node_rank(const consensus_sm *sm, uint64_t self, unsigned *rank, unsigned *count)
{
    *rank = 0;
    *count = 0;
    for (size_t i = 0; i < consensus_sm_node_count(sm); i++) {
        const consensus_node *nd = consensus_sm_node_at(sm, i);
        if (nd->status != CONSENSUS_NODE_UP)
            continue;
        if (nd->id == self)
            *rank = *count;
        (*count)++;
    }
    if (*count == 0)
        *count = 1;
}

static void claim_trials(studies *s, const consensus_sm *sm)
{
    uint64_t self = repl_node_id(s->n->repl);
    const consensus_node *me = consensus_sm_node_get(sm, self);
    if (me == NULL || me->status != CONSENSUS_NODE_UP)
        return;
    unsigned rank, count;
    node_rank(sm, self, &rank, &count);
    uint64_t now = uv_now(&s->n->loop);
    for (unsigned k = 0; k < s->n_slots; k++) {
        slot *sl = &s->slots[k];
        if (sl->state != SLOT_IDLE || !sl->bound)
            continue;
        int any = now - sl->idle_since >= CLAIM_IDLE_MS;
        int leader = repl_is_leader(s->n->repl);
        const consensus_study *pick = NULL;
        const consensus_trial *pt = NULL;
        for (size_t i = 0; i < consensus_sm_study_count(sm) && pick == NULL; i++) {
            const consensus_study *st = consensus_sm_study_at(sm, i);
            /* As applied here: a claim the log would refuse is not sent. */
            if (st->status != CONSENSUS_STUDY_RUNNING || st->n_pending == st->n_running ||
                st->n_running >= st->def.parallelism)
                continue;
            for (uint32_t n = 0; n < st->n_trials; n++) {
                const consensus_trial *t = st->trials[n];
                if (t->status != CONSENSUS_TRIAL_SUGGESTED ||
                    trial_claimed_here(s, st->def.id, t->number))
                    continue;
                /* The leader applies suggestions first and takes what its
                 * slots can; a follower's slot takes any trial too (a lost
                 * race is refused by the state machine), except that right
                 * after a trial of its own it leaves other ranks' trials to
                 * the leader for a moment. */
                if (!any && !leader && t->requeues == 0 && t->number % count != rank)
                    continue;
                pick = st;
                pt = t;
                break;
            }
        }
        if (pick == NULL)
            return;
        submit *sb = submit_new(s, SUB_START, CONSENSUS_CMD_TRIAL_START, pick->def.id, pt->number);
        if (sb == NULL)
            return;
        sb->slot = k;
        sb->cmd.by = sl->evaluator;
        sb->sc.evaluator = sl->evaluator;
        sb->sc.generation = sl->generation;
        sb->sc.node = self;
        snprintf(sl->study, sizeof(sl->study), "%s", pick->def.id);
        sl->number = pt->number;
        sl->state = SLOT_CLAIMING;
        if (submit_send(sb) != MB_OK) {
            submit_free(sb);
            slot_release(sl);
            return;
        }
        slot_start_job(sl, pick, pt); /* evaluate while the claim commits */
    }
}

/* Cancel slots whose trial is no longer theirs (re-queued, stopped). */
static void cancel_stale(studies *s, const consensus_sm *sm)
{
    for (unsigned k = 0; k < s->n_slots; k++) {
        slot *sl = &s->slots[k];
        if (sl->state != SLOT_RUNNING)
            continue;
        const consensus_trial *t =
            consensus_study_trial(consensus_sm_study_get(sm, sl->study), sl->number);
        if (t != NULL && t->status == CONSENSUS_TRIAL_RUNNING && t->evaluator != NULL &&
            strcmp(t->evaluator, sl->evaluator) == 0 && t->generation == sl->generation)
            continue;
        slot_cancel(sl); /* pruned, re-queued or the study stopped */
    }
}

/* ---------------- optimisers (the optimiser agent's host) ---------------- */

static int build_space(const consensus_study *st, mb_optim_space **out, mb_error *err)
{
    mb_optim_space *sp = NULL;
    int rc = mb_optim_space_new(&sp, err);
    static const char *const bools[] = { "false", "true" };
    for (uint32_t i = 0; rc == MB_OK && i < st->def.n_params; i++) {
        const consensus_study_param *p = &st->def.params[i];
        const mb_var_spec *s = &p->spec;
        switch (s->type) {
        case MB_VT_FLOAT:
            rc = mb_optim_space_add_float(sp, p->name, s->min, s->max, s->log_scale, err);
            break;
        case MB_VT_PROBABILITY:
            rc = mb_optim_space_add_float(sp, p->name, 0, 1, 0, err);
            break;
        case MB_VT_INT:
            rc = mb_optim_space_add_int(sp, p->name, s->imin, s->imax, s->step > 0 ? s->step : 1,
                                        s->log_scale, err);
            break;
        case MB_VT_CHOICE:
            rc = mb_optim_space_add_choice(sp, p->name, (const char *const *)s->options,
                                           s->n_options, err);
            break;
        case MB_VT_BOOL:
            rc = mb_optim_space_add_choice(sp, p->name, bools, 2, err);
            break;
        default:
            rc = mb_errorf(err, MB_EINVAL, "parameter %s cannot be searched", p->name);
        }
    }
    if (rc != MB_OK) {
        mb_optim_space_free(sp);
        return rc;
    }
    *out = sp;
    return MB_OK;
}

static int optim_for(const consensus_study *st, mb_optim_part **out, mb_error *err)
{
    mb_optim_strategy strat;
    int rc = mb_optim_strategy_parse(st->def.strategy, &strat, err);
    if (rc != MB_OK)
        return rc;
    mb_optim_config cfg;
    mb_optim_config_default(&cfg, strat);
    cfg.seed = st->def.seed;
    cfg.maximize = st->def.maximize;
    cfg.max_trials = st->def.max_trials > 0 ? st->def.max_trials : CONSENSUS_STUDY_MAX_TRIALS;
    if (st->def.bandit != NULL && strcmp(st->def.bandit, "thompson") == 0)
        cfg.portfolio.algorithm = MB_OPTIM_BANDIT_THOMPSON;
    mb_optim_space *sp = NULL;
    if ((rc = build_space(st, &sp, err)) != MB_OK)
        return rc;
    /* A partition: one optimiser per group, in lockstep (studyfeat). */
    uint32_t groups[CONSENSUS_STUDY_MAX_PARAMS];
    for (uint32_t i = 0; i < st->def.n_params; i++)
        groups[i] = st->def.params[i].group;
    /* A grid is one optimiser: studies created before partitioned search
     * existed may combine the two. */
    rc = mb_optim_part_new(sp, &cfg, groups, strat == MB_OPTIM_GRID ? 1 : st->def.n_groups, out,
                           err);
    mb_optim_space_free(sp);
    return rc;
}

static int cmp_finished(const void *a, const void *b)
{
    const consensus_trial *x = *(const consensus_trial *const *)a;
    const consensus_trial *y = *(const consensus_trial *const *)b;
    return x->finished < y->finished ? -1 : x->finished > y->finished;
}

static void feed_one(optrun *r, const consensus_trial *t)
{
    mb_error e;
    if (t->status == CONSENSUS_TRIAL_COMPLETED) {
        mb_optim_part_complete(r->opt, t->number - 1, t->value, &e);
    } else if (t->status == CONSENSUS_TRIAL_PRUNED) {
        /* Pruned (by the state machine's pruner): the optimiser ranks it
         * by its learning curve. */
        for (uint32_t i = 0; i < t->n_reports; i++)
            mb_optim_part_report(r->opt, t->number - 1, t->report_steps[i], t->report_values[i],
                                 &e);
        mb_optim_part_prune(r->opt, t->number - 1, &e);
    } else {
        mb_optim_part_fail(r->opt, t->number - 1, &e);
    }
    r->n_fed++;
    r->fed_index = t->finished;
}

/* Finished trials not fed yet, in the order they finished (*out malloc'd). */
static size_t unfed(const consensus_study *st, uint64_t after, const consensus_trial ***out)
{
    const consensus_trial **v = malloc((st->n_trials + 1) * sizeof(*v));
    size_t k = 0;
    *out = v;
    if (v == NULL)
        return 0;
    for (uint32_t i = 0; i < st->n_trials; i++)
        if (st->trials[i]->finished > after)
            v[k++] = st->trials[i];
    qsort(v, k, sizeof(*v), cmp_finished);
    return k;
}

/* Rebuild the optimiser from the replicated trials. */
static int run_rebuild(studies *s, optrun *r, const consensus_study *st)
{
    mb_error e;
    mb_optim_part_free(r->opt);
    r->opt = NULL;
    r->n_suggested = r->n_fed = 0;
    r->fed_index = 0;
    r->broken = 0;
    r->exhausted = 0;
    if (optim_for(st, &r->opt, &e) != MB_OK) {
        slog(s, NC_LOG_ERROR, "cannot build the optimiser of a study", "error", e.msg);
        return MB_EINVAL;
    }
    const consensus_trial **fin = NULL;
    size_t nf = unfed(st, 0, &fin), j = 0;
    if (fin == NULL)
        return MB_ENOMEM;
    int diverged = 0;
    for (uint32_t k = 0; k < st->n_trials; k++) {
        const consensus_trial *t = st->trials[k];
        while (r->n_fed < t->basis && j < nf && fin[j]->number <= k)
            feed_one(r, fin[j++]);
        double x[MB_OPTIM_MAX_DIMS];
        uint64_t id;
        if (mb_optim_part_suggest(r->opt, &id, x, &e) != MB_OK || id != k) {
            diverged = 1;
            break;
        }
        if (memcmp(x, t->params, st->def.n_params * sizeof(double)) != 0)
            diverged = 1;
        r->n_suggested = k + 1;
    }
    while (j < nf && fin[j]->number <= r->n_suggested)
        feed_one(r, fin[j++]);
    free(fin);
    if (diverged)
        slog(s, NC_LOG_WARN, "optimiser replay differs from the recorded trials", "study",
             st->def.id);
    return MB_OK;
}

/* A control command of the optimiser duty; a re-queue names the claim it
 * ends (`ev`, `gen`; NULL = any). */
static void ctl_submit(studies *s, optrun *r, consensus_cmd_kind kind, uint32_t number,
                       const char *reason, const char *ev, uint64_t gen)
{
    submit *sb = submit_new(s, SUB_CTL, kind, r->id, number);
    if (sb == NULL)
        return;
    sb->sc.reason = strdup(reason);
    snprintf(sb->by, sizeof(sb->by), "%s", r->agent);
    sb->cmd.by = sb->by;
    if (ev != NULL) {
        snprintf(sb->ev, sizeof(sb->ev), "%s", ev);
        sb->sc.evaluator = sb->ev;
        sb->sc.generation = gen;
    }
    r->ctl_inflight = 1;
    if (sb->sc.reason == NULL || submit_send(sb) != MB_OK) {
        r->ctl_inflight = 0;
        submit_free(sb);
    }
}

static void drive_study(studies *s, const consensus_study *st, const consensus_agent *agent)
{
    optrun *r = run_find(s, st->def.id);
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return;
        snprintf(r->id, sizeof(r->id), "%s", st->def.id);
        r->broken = 1; /* built from the replicated trials on first use */
        r->next = s->runs;
        s->runs = r;
        NC_LOGKV(s->n->log, NC_LOG_INFO, "studies", "optimiser agent runs here: rebuilding",
                 NC_F_STR("study", st->def.id), NC_F_STR("agent", agent->id),
                 NC_F_U64("generation", agent->generation), NC_F_U64("trials", st->n_trials));
    }
    snprintf(r->agent, sizeof(r->agent), "%s", agent->id);
    r->mark = 1;
    if (r->ctl_inflight)
        return;
    /* Time budget. */
    if (st->def.deadline_ms > 0 && node_wall_ms() >= st->def.deadline_ms) {
        ctl_submit(s, r, CONSENSUS_CMD_STUDY_FINISH, 0, "time budget used up", NULL, 0);
        return;
    }
    /* Trials of nodes the failure detector declares down. */
    for (uint32_t i = 0; i < st->n_trials; i++) {
        const consensus_trial *t = st->trials[i];
        if (t->status == CONSENSUS_TRIAL_RUNNING &&
            repl_peer_status(s->n->repl, t->node) == 2 /* CLUSTER_PEER_DOWN */) {
            char why[96];
            snprintf(why, sizeof(why), "evaluator node %llu is down", (unsigned long long)t->node);
            ctl_submit(s, r, CONSENSUS_CMD_TRIAL_REQUEUE, t->number, why, t->evaluator,
                       t->generation);
            return;
        }
    }
    if (r->inflight > 0 && r->broken)
        return; /* wait for the answers, then rebuild */
    /* Answers of our suggestions may lag their local apply: between the
     * two, n_trials <= n_suggested <= n_trials + inflight still holds. */
    if (r->n_suggested < st->n_trials || r->n_suggested > st->n_trials + r->inflight)
        r->broken = 1;
    if (r->broken && r->inflight == 0 && run_rebuild(s, r, st) != MB_OK)
        return;
    if (r->opt == NULL)
        return;
    /* Feed what finished since. */
    const consensus_trial **fin = NULL;
    size_t nf = unfed(st, r->fed_index, &fin);
    for (size_t j = 0; j < nf; j++)
        feed_one(r, fin[j]);
    free(fin);
    uint32_t budget = st->def.max_trials > 0 ? st->def.max_trials : CONSENSUS_STUDY_MAX_TRIALS;
    /* Up to `parallelism` trials wait suggested, so that a free evaluator
     * takes one at once (the suggestion is off the critical path). */
    while (!r->exhausted && st->n_pending - st->n_running + r->inflight < st->def.parallelism &&
           r->n_suggested < budget) {
        double x[MB_OPTIM_MAX_DIMS];
        uint64_t id;
        mb_error e;
        int rc = mb_optim_part_suggest(r->opt, &id, x, &e);
        if (rc == MB_ERANGE) {
            r->exhausted = 1;
            break;
        }
        if (rc != MB_OK) {
            slog(s, NC_LOG_ERROR, "optimiser cannot suggest", "error", e.msg);
            r->broken = 1;
            return;
        }
        submit *sb =
            submit_new(s, SUB_SUGGEST, CONSENSUS_CMD_TRIAL_SUGGEST, st->def.id, (uint32_t)id + 1);
        if (sb != NULL) {
            sb->sc.params = malloc(st->def.n_params * sizeof(double));
            sb->sc.strategy =
                strdup(mb_optim_strategy_name(mb_optim_part_trial_strategy(r->opt, id)));
            sb->sc.basis = r->n_fed;
            sb->sc.n_params = st->def.n_params;
            snprintf(sb->by, sizeof(sb->by), "%s", r->agent);
            sb->cmd.by = sb->by;
        }
        if (sb == NULL || sb->sc.params == NULL || sb->sc.strategy == NULL) {
            if (sb != NULL)
                submit_free(sb);
            r->broken = 1;
            return;
        }
        memcpy(sb->sc.params, x, st->def.n_params * sizeof(double));
        r->n_suggested++;
        if (submit_send(sb) != MB_OK) {
            submit_free(sb);
            r->broken = 1;
            return;
        }
        r->inflight++;
    }
    /* A grid used up: nothing more to suggest. */
    if (r->exhausted && st->n_pending == 0 && r->inflight == 0)
        ctl_submit(s, r, CONSENSUS_CMD_STUDY_FINISH, 0, "search space exhausted", NULL, 0);
}

static void drop_runs(studies *s, int unmarked_only)
{
    optrun **pp = &s->runs;
    while (*pp != NULL) {
        optrun *r = *pp;
        if ((!unmarked_only || !r->mark) && r->inflight == 0 && !r->ctl_inflight) {
            *pp = r->next;
            mb_optim_part_free(r->opt);
            free(r);
            continue;
        }
        r->mark = 0;
        pp = &r->next;
    }
}

/* ---------------- the studies' cluster agents (piece "studyagents") ---------------- */

#define OPTIMISER_KIND "optimiser"
#define EVALUATOR_KIND "evaluator"

static int agent_id_char_ok(char c)
{
    return (unsigned char)c > ' ' && (unsigned char)c < 0x7f && c != '"' && c != '\\';
}

void studies_optimiser_name(const char *study_id, char *out, size_t size)
{
    static const char prefix[] = "optimiser-";
    size_t len = strlen(study_id);
    int ok = len + sizeof(prefix) - 1 <= CONSENSUS_ID_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = agent_id_char_ok(study_id[i]);
    if (ok) {
        snprintf(out, size, "%s%s", prefix, study_id);
        return;
    }
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *c = study_id; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    snprintf(out, size, "%s%016llx", prefix, (unsigned long long)h);
}

static int agent_live(const consensus_agent *a)
{
    return a->status == CONSENSUS_AGENT_PLACED || a->status == CONSENSUS_AGENT_RUNNING;
}

/* The local copy of cluster agent `name` runs on this node. */
static int local_copy_runs(studies *s, const char *name)
{
    mb_agent_id id;
    return s->n->placement != NULL && placement_local_id(s->n->placement, name, &id) == MB_OK;
}

/* Study `st`'s optimiser agent when this node runs it (placed here, live
 * and its local copy running), else NULL. */
static const consensus_agent *optimiser_here(studies *s, const consensus_sm *sm,
                                             const consensus_study *st)
{
    char name[CONSENSUS_ID_MAX + 1];
    studies_optimiser_name(st->def.id, name, sizeof(name));
    const consensus_agent *a = consensus_sm_agent_get(sm, name);
    if (a == NULL || a->node != repl_node_id(s->n->repl) || !agent_live(a) ||
        strcmp(a->kind, OPTIMISER_KIND) != 0)
        return NULL;
    if (!local_copy_runs(s, name)) {
        s->starting = 1; /* placement starts it within a few ms */
        return NULL;
    }
    return a;
}

static void agent_op_cb(void *arg, const consensus_result *res, int *busy, const char *what)
{
    studies *s = arg;
    s->pending--;
    *busy = 0;
    if (res->code != MB_OK && !s->closing)
        NC_LOGKV(s->n->log, NC_LOG_DEBUG, "studies", what, NC_F_STR("code", mb_errname(res->code)),
                 NC_F_STR("error", res->msg));
    if (s->closing)
        studies_maybe_free(s);
    else
        uv_timer_start(&s->tick, tick_cb, 0, 0);
}

static void optimiser_op_cb(void *arg, const consensus_result *res)
{
    studies *s = arg;
    agent_op_cb(arg, res, &s->opt_busy, "optimiser agent change not applied");
}

static void evaluator_op_cb(void *arg, const consensus_result *res)
{
    studies *s = arg;
    agent_op_cb(arg, res, &s->ev_busy, "evaluator agent change not applied");
}

static int agent_op(studies *s, consensus_cmd *cmd, repl_submit_cb cb, int *busy)
{
    cmd->by = "studies";
    if (repl_submit(s->n->repl, cmd, 0, cb, s) != MB_OK)
        return 0;
    s->pending++;
    *busy = 1;
    return 1;
}

/* Leader: every running study has its optimiser agent (placed `any`, the
 * least loaded live node); an optimiser agent whose study ended, was
 * stopped or is unknown is removed. One change in flight. */
static void ensure_optimisers(studies *s, const consensus_sm *sm)
{
    if (s->opt_busy || s->n->placement == NULL)
        return;
    char name[CONSENSUS_ID_MAX + 1];
    for (size_t i = 0; i < consensus_sm_study_count(sm); i++) {
        const consensus_study *st = consensus_sm_study_at(sm, i);
        if (st->status != CONSENSUS_STUDY_RUNNING)
            continue;
        studies_optimiser_name(st->def.id, name, sizeof(name));
        if (consensus_sm_agent_get(sm, name) != NULL)
            continue;
        uint64_t target = 0;
        mb_error e;
        if (placement_choose(s->n->placement, sm, PLACEMENT_ANY, 0, NULL, &target, &e) != MB_OK)
            return;
        cJSON *cfg = cJSON_CreateObject();
        char *text = NULL;
        if (cfg != NULL && cJSON_AddStringToObject(cfg, "study", st->def.id) != NULL)
            text = cJSON_PrintUnformatted(cfg);
        cJSON_Delete(cfg);
        if (text == NULL)
            return;
        consensus_cmd cmd = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                              .agent_id = name,
                              .agent_kind = OPTIMISER_KIND,
                              .agent_config = text,
                              .agent_node = target };
        if (agent_op(s, &cmd, optimiser_op_cb, &s->opt_busy))
            NC_LOGKV(s->n->log, NC_LOG_INFO, "studies", "placing the optimiser agent of a study",
                     NC_F_STR("study", st->def.id), NC_F_STR("agent", name),
                     NC_F_U64("node", target));
        cJSON_free(text);
        return;
    }
    for (size_t i = 0; i < consensus_sm_agent_count(sm); i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        if (strcmp(a->kind, OPTIMISER_KIND) != 0)
            continue;
        cJSON *cfg = a->config != NULL ? cJSON_Parse(a->config) : NULL;
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(cfg, "study");
        const consensus_study *st =
            cJSON_IsString(sid) ? consensus_sm_study_get(sm, sid->valuestring) : NULL;
        int ended = st == NULL || st->status != CONSENSUS_STUDY_RUNNING;
        cJSON_Delete(cfg);
        if (!ended)
            continue;
        consensus_cmd cmd = { .kind = CONSENSUS_CMD_AGENT_REMOVE, .agent_id = a->id };
        agent_op(s, &cmd, optimiser_op_cb, &s->opt_busy);
        return;
    }
}

/* No trial runs on evaluator agent `name`. */
static int evaluator_idle(const consensus_sm *sm, const char *name)
{
    for (size_t i = 0; i < consensus_sm_study_count(sm); i++) {
        const consensus_study *st = consensus_sm_study_at(sm, i);
        if (st->n_running == 0)
            continue;
        for (uint32_t k = 0; k < st->n_trials; k++) {
            const consensus_trial *t = st->trials[k];
            if (t->status == CONSENSUS_TRIAL_RUNNING && t->evaluator != NULL &&
                strcmp(t->evaluator, name) == 0)
                return 0;
        }
    }
    return 1;
}

/* This node's own evaluator agents `evaluator-<node>-<k>`, k = 1..
 * home_slots: placed here when missing, moved back here when failover
 * moved them away and they are idle, removed beyond home_slots (a smaller
 * study_evaluators after a restart) when idle. One change in flight. */
static void ensure_evaluators(studies *s, const consensus_sm *sm)
{
    uint64_t self = repl_node_id(s->n->repl);
    const consensus_node *me = consensus_sm_node_get(sm, self);
    if (s->ev_busy || me == NULL || me->status != CONSENSUS_NODE_UP)
        return;
    char name[CONSENSUS_ID_MAX + 1];
    for (unsigned k = 1; k <= s->home_slots; k++) {
        snprintf(name, sizeof(name), "evaluator-%llu-%u", (unsigned long long)self, k);
        const consensus_agent *a = consensus_sm_agent_get(sm, name);
        if (a == NULL) {
            char cfg[64];
            snprintf(cfg, sizeof(cfg), "{\"home\":%llu,\"slot\":%u}", (unsigned long long)self, k);
            consensus_cmd cmd = { .kind = CONSENSUS_CMD_AGENT_PLACE,
                                  .agent_id = name,
                                  .agent_kind = EVALUATOR_KIND,
                                  .agent_config = cfg,
                                  .agent_node = self };
            agent_op(s, &cmd, evaluator_op_cb, &s->ev_busy);
            return;
        }
        if (a->node != self && a->status != CONSENSUS_AGENT_STOPPED &&
            strcmp(a->kind, EVALUATOR_KIND) == 0 && evaluator_idle(sm, name)) {
            consensus_cmd cmd = { .kind = CONSENSUS_CMD_AGENT_REASSIGN,
                                  .agent_id = name,
                                  .agent_node = self,
                                  .has_expected = 1,
                                  .expected = a->generation };
            if (agent_op(s, &cmd, evaluator_op_cb, &s->ev_busy))
                NC_LOGKV(s->n->log, NC_LOG_INFO, "studies", "moving an evaluator agent home",
                         NC_F_STR("agent", name), NC_F_U64("from", a->node));
            return;
        }
    }
    for (size_t i = 0; i < consensus_sm_agent_count(sm); i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        unsigned long long home;
        unsigned k;
        int used = 0;
        if (strcmp(a->kind, EVALUATOR_KIND) != 0 ||
            sscanf(a->id, "evaluator-%llu-%u%n", &home, &k, &used) != 2 || a->id[used] != '\0' ||
            home != self || k <= s->home_slots || !evaluator_idle(sm, a->id))
            continue;
        consensus_cmd cmd = { .kind = CONSENSUS_CMD_AGENT_REMOVE, .agent_id = a->id };
        agent_op(s, &cmd, evaluator_op_cb, &s->ev_busy);
        return;
    }
}

static int slot_thread_start(studies *s, unsigned idx)
{
    slot *sl = &s->slots[idx];
    sl->s = s;
    sl->idx = idx;
    if (pthread_create(&sl->th, NULL, slot_main, sl) != 0)
        return MB_EIO;
    s->threads++;
    return MB_OK;
}

/* Slots follow the evaluator agents that run here: a slot whose agent is
 * gone, moved, crashed or of another generation is unbound (its running
 * evaluation is cancelled by cancel_stale once the state machine re-queued
 * the trial); every live evaluator agent whose local copy runs here gets
 * a free slot (a new helper thread when none is free). */
static void bind_slots(studies *s, const consensus_sm *sm)
{
    uint64_t self = repl_node_id(s->n->repl);
    for (unsigned k = 0; k < s->n_slots; k++) {
        slot *sl = &s->slots[k];
        if (!sl->bound)
            continue;
        const consensus_agent *a = consensus_sm_agent_get(sm, sl->evaluator);
        if (a != NULL && a->node == self && a->generation == sl->generation && agent_live(a) &&
            local_copy_runs(s, sl->evaluator))
            continue;
        sl->bound = 0;
        slog(s, NC_LOG_INFO, "evaluator agent left this node's slot", "agent", sl->evaluator);
    }
    for (size_t i = 0; i < consensus_sm_agent_count(sm); i++) {
        const consensus_agent *a = consensus_sm_agent_at(sm, i);
        if (a->node != self || !agent_live(a) || strcmp(a->kind, EVALUATOR_KIND) != 0)
            continue;
        if (!local_copy_runs(s, a->id)) {
            s->starting = 1; /* placement starts it within a few ms */
            continue;
        }
        unsigned k, free_k = s->n_slots;
        for (k = 0; k < s->n_slots; k++) {
            const slot *sl = &s->slots[k];
            if (sl->bound && strcmp(sl->evaluator, a->id) == 0)
                break;
            if (free_k == s->n_slots && !sl->bound && sl->state == SLOT_IDLE)
                free_k = k;
        }
        if (k < s->n_slots)
            continue; /* bound already */
        if (free_k == s->n_slots) {
            if (s->n_slots == SLOTS_MAX)
                return;
            if (slot_thread_start(s, s->n_slots) != MB_OK) {
                slog(s, NC_LOG_ERROR, "cannot start an evaluator thread", "agent", a->id);
                return;
            }
            s->n_slots++;
        }
        slot *sl = &s->slots[free_k];
        snprintf(sl->evaluator, sizeof(sl->evaluator), "%s", a->id);
        sl->generation = a->generation;
        sl->bound = 1;
        sl->idle_since = uv_now(&s->n->loop);
        NC_LOGKV(s->n->log, NC_LOG_DEBUG, "studies", "evaluator agent runs here",
                 NC_F_STR("agent", a->id), NC_F_U64("generation", a->generation),
                 NC_F_U64("slot", free_k + 1));
    }
}

/* A claim of this process on (study, number): a busy slot or a write. */
static int trial_held_here(const studies *s, const char *study, uint32_t number)
{
    if (trial_claimed_here(s, study, number))
        return 1;
    for (const submit *sb = s->live; sb != NULL; sb = sb->live_next)
        if (sb->number == number && strcmp(sb->study, study) == 0)
            return 1;
    return 0;
}

/* A trial that runs, in the log, on an evaluator agent this node runs now
 * (same generation) but that no slot of this process evaluates was lost:
 * the process restarted before its node was declared down, or a claim's
 * answer timed out after it committed. Re-queue it (naming the claim, so
 * that a lagging view cannot end a later one). One in flight. */
static void requeue_orphans(studies *s, const consensus_sm *sm)
{
    if (s->orphan_busy)
        return;
    for (size_t i = 0; i < consensus_sm_study_count(sm); i++) {
        const consensus_study *st = consensus_sm_study_at(sm, i);
        for (uint32_t n = 0; st->n_running > 0 && n < st->n_trials; n++) {
            const consensus_trial *t = st->trials[n];
            if (t->status != CONSENSUS_TRIAL_RUNNING || t->evaluator == NULL)
                continue;
            int ours = 0;
            for (unsigned k = 0; k < s->n_slots && !ours; k++)
                ours = s->slots[k].bound && s->slots[k].generation == t->generation &&
                       strcmp(s->slots[k].evaluator, t->evaluator) == 0;
            if (!ours || trial_held_here(s, st->def.id, t->number))
                continue;
            submit *sb =
                submit_new(s, SUB_ORPHAN, CONSENSUS_CMD_TRIAL_REQUEUE, st->def.id, t->number);
            if (sb == NULL)
                return;
            snprintf(sb->ev, sizeof(sb->ev), "%s", t->evaluator);
            sb->sc.evaluator = sb->ev;
            sb->sc.generation = t->generation;
            sb->sc.reason = strdup("its evaluator lost it (the node restarted)");
            sb->cmd.by = sb->ev;
            if (sb->sc.reason == NULL || submit_send(sb) != MB_OK) {
                submit_free(sb);
                return;
            }
            s->orphan_busy = 1;
            slog(s, NC_LOG_WARN, "re-queueing a trial this node's evaluator lost", "study",
                 st->def.id);
            return;
        }
    }
}

static void tick_cb(uv_timer_t *t)
{
    studies *s = t->data;
    if (s->closing || s->n->repl == NULL)
        return;
    const consensus_sm *sm = repl_sm(s->n->repl);
    if (sm == NULL)
        return;
    s->starting = 0;
    cancel_stale(s, sm);
    bind_slots(s, sm);
    if (repl_is_leader(s->n->repl))
        ensure_optimisers(s, sm);
    ensure_evaluators(s, sm);
    /* The optimiser duty of the studies whose optimiser agent runs here. */
    for (size_t i = 0; i < consensus_sm_study_count(sm); i++) {
        const consensus_study *st = consensus_sm_study_at(sm, i);
        const consensus_agent *a =
            st->status == CONSENSUS_STUDY_RUNNING ? optimiser_here(s, sm, st) : NULL;
        if (a != NULL)
            drive_study(s, st, a);
    }
    drop_runs(s, 1);
    requeue_orphans(s, sm);
    claim_trials(s, sm);
    /* A new optimiser or evaluator agent here starts its work as soon as
     * placement has started its local copy. */
    uint64_t now = uv_now(&s->n->loop);
    if (!s->starting)
        s->starting_since = 0;
    else if (s->starting_since == 0)
        s->starting_since = now;
    int soon = s->starting && now - s->starting_since < STARTING_MAX_MS;
    uv_timer_start(&s->tick, tick_cb,
                   soon ? STARTING_TICK_MS : node_aligned_delay(&s->n->loop, TICK_MS), 0);
}

/* ---------------- lifecycle ---------------- */

void studies_notify(node *n)
{
    studies *s = n->studies;
    if (s != NULL && !s->closing)
        uv_timer_start(&s->tick, tick_cb, 0, 0);
    api_studies_notify(n);
}

void studies_local_json(const studies *s, cJSON *obj)
{
    unsigned busy = 0;
    for (unsigned i = 0; s != NULL && i < s->n_slots; i++)
        busy += s->slots[i].state != SLOT_IDLE;
    unsigned bound = 0;
    for (unsigned i = 0; s != NULL && i < s->n_slots; i++)
        bound += s->slots[i].bound;
    static const char *const names[] = { "idle", "claiming", "running", "draining" };
    cJSON *e = cJSON_AddObjectToObject(obj, "evaluators");
    if (e != NULL) {
        cJSON_AddNumberToObject(e, "slots", bound);
        cJSON_AddNumberToObject(e, "busy", busy);
        cJSON_AddNumberToObject(e, "home_agents", s != NULL ? s->home_slots : 0);
        cJSON *a = cJSON_AddArrayToObject(e, "slot_states");
        for (unsigned i = 0; a != NULL && s != NULL && i < s->n_slots; i++) {
            const slot *sl = &s->slots[i];
            if (!sl->bound && sl->state == SLOT_IDLE)
                continue;
            char buf[2 * CONSENSUS_ID_MAX + 48];
            snprintf(buf, sizeof(buf), "%s %s %s %u", sl->bound ? sl->evaluator : "(unbound)",
                     names[sl->state], sl->study, sl->number);
            cJSON_AddItemToArray(a, cJSON_CreateString(buf));
        }
    }
}

int studies_open(node *n, unsigned slots, mb_error *err)
{
    if (slots > SLOTS_MAX)
        slots = SLOTS_MAX;
    studies *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return mb_errorf(err, MB_ENOMEM, "studies: out of memory");
    s->n = n;
    s->msgs_tail = &s->msgs;
    s->home_slots = slots;
    pthread_mutex_init(&s->mu, NULL);
    mb_cond_init_monotonic(&s->cv); /* its timed waits must not follow wall-clock steps */
    uv_timer_init(&n->loop, &s->tick);
    uv_async_init(&n->loop, &s->wake, wake_cb);
    s->tick.data = s->wake.data = s;
    s->handles = 2;
    /* Slots (and their threads) are bound to the evaluator agents that run
     * here as they appear: this node's own and those failover moves in. */
    if ((s->slots = calloc(SLOTS_MAX, sizeof(*s->slots))) == NULL) {
        studies_close(s);
        return mb_errorf(err, MB_ENOMEM, "studies: out of memory");
    }
    n->studies = s;
    uv_timer_start(&s->tick, tick_cb, TICK_MS, 0);
    return MB_OK;
}

static void handle_closed_cb(uv_handle_t *h)
{
    studies *s = h->data;
    s->handles--;
    studies_maybe_free(s);
}

static void studies_maybe_free(studies *s)
{
    if (s->handles > 0 || s->pending > 0)
        return;
    for (unsigned i = 0; i < s->n_slots; i++) {
        job_free(&s->slots[i].j);
        held_free(&s->slots[i]);
    }
    free(s->slots);
    slot_msg *m = s->msgs;
    while (m != NULL) {
        slot_msg *next = m->next;
        free(m);
        m = next;
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

void studies_close(studies *s)
{
    if (s == NULL || s->closing)
        return;
    if (s->n->studies == s)
        s->n->studies = NULL;
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    for (unsigned i = 0; i < s->n_slots; i++) {
        s->slots[i].cancel = 1;
        if (s->slots[i].child > 0)
            kill(-s->slots[i].child, SIGKILL);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (unsigned i = 0; i < s->threads; i++)
        pthread_join(s->slots[i].th, NULL);
    s->threads = 0;
    while (s->runs != NULL) {
        optrun *r = s->runs;
        s->runs = r->next;
        mb_optim_part_free(r->opt);
        free(r);
    }
    uv_close((uv_handle_t *)&s->tick, handle_closed_cb);
    uv_close((uv_handle_t *)&s->wake, handle_closed_cb);
}
