/* Port agents: an agent whose code is an external process speaking the
 * line-delimited JSON protocol of docs/port-protocol.md on stdin/stdout.
 *
 * Threads: the agent's callbacks (on a worker) encode lines and write them
 * to the child's stdin without blocking (what does not fit is kept and
 * flushed by the port I/O thread on EPOLLOUT). The port I/O thread (one per
 * runtime, epoll) reads the child's stdout and stderr: each stdout line is
 * delivered to the agent's mailbox as an RT_SIG_PORT message and decoded
 * in the agent's turn; stderr lines go to the node log. Process exit (EOF
 * on stdout), a malformed line and a missed reply deadline crash the agent.
 *
 * A struct port is shared by the agent and the I/O thread (two
 * references); the I/O thread alone closes stdout/stderr descriptors, the
 * agent alone closes stdin. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agents/internal.h"
#include "agents/port_proto.h"

enum { PORT_EV_LINE = 1, PORT_EV_EOF = 2, PORT_EV_TOOLONG = 3 };
#define PORT_TAG_DEADLINE 0x504f5254u /* "PORT" reply deadline timer */

struct port_ref {
    struct port *p;
    int which; /* 0 stdout, 1 stderr, 2 stdin (EPOLLOUT) */
};

struct port {
    pthread_mutex_t mu;
    int refs;
    mb_agent_id agent; /* 0 once the agent let go */
    pid_t pid;
    int in_fd, out_fd, err_fd;
    char *outbuf; /* bytes not yet written to stdin */
    size_t outlen, outcap;
    /* I/O thread only: */
    char *line[2];
    size_t linelen[2], linecap[2];
    int eof[2];
    struct port_ref ref[3];
    _Atomic int want_out; /* stdin is registered for EPOLLOUT */
};

struct io_cmd {
    struct io_cmd *next;
    struct port *p;
    int add; /* 1 add, 0 remove */
};

struct rt_port_io {
    struct mb_runtime *rt;
    pthread_t th;
    int epfd;
    int wakefd;
    pthread_mutex_t mu;
    struct io_cmd *cmds;
    int stop;
};

static void port_release(struct port *p)
{
    pthread_mutex_lock(&p->mu);
    int left = --p->refs;
    pthread_mutex_unlock(&p->mu);
    if (left > 0)
        return;
    free(p->outbuf);
    free(p->line[0]);
    free(p->line[1]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* ---- I/O thread ---- */

static void io_post(struct rt_port_io *io, struct port *p, int add)
{
    struct io_cmd *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return; /* add: the port never gets events -> its deadline fires */
    c->p = p;
    c->add = add;
    pthread_mutex_lock(&io->mu);
    c->next = io->cmds;
    io->cmds = c;
    pthread_mutex_unlock(&io->mu);
    uint64_t one = 1;
    ssize_t w = write(io->wakefd, &one, sizeof(one));
    (void)w;
}

static void deliver_event(struct rt_port_io *io, struct port *p, uint32_t tag, const char *data,
                          size_t len)
{
    pthread_mutex_lock(&p->mu);
    mb_agent_id to = p->agent;
    pthread_mutex_unlock(&p->mu);
    if (to == 0)
        return;
    struct rt_msg *m = rt_msg_new(0, RT_SIG_PORT, tag, data, len);
    if (m != NULL && rt_deliver(io->rt, to, m) != 0)
        rt_msg_free(m);
}

static void handle_line(struct rt_port_io *io, struct port *p, int which, const char *s, size_t n)
{
    if (which == 0) {
        deliver_event(io, p, PORT_EV_LINE, s, n);
        return;
    }
    const mb_services *svc = rt_services(io->rt);
    if (svc->log == NULL)
        return;
    char buf[512];
    snprintf(buf, sizeof(buf), "port stderr: %.*s", (int)(n > 480 ? 480 : n), s);
    pthread_mutex_lock(&p->mu);
    mb_agent_id id = p->agent;
    pthread_mutex_unlock(&p->mu);
    svc->log(svc->impl, MB_LOG_WARN, id, buf);
}

static void io_readable(struct rt_port_io *io, struct port *p, int which)
{
    int fd = which == 0 ? p->out_fd : p->err_fd;
    char buf[65536];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            if (!p->eof[which]) {
                p->eof[which] = 1;
                epoll_ctl(io->epfd, EPOLL_CTL_DEL, fd, NULL);
                if (which == 0)
                    deliver_event(io, p, PORT_EV_EOF, NULL, 0);
            }
            return;
        }
        size_t off = 0;
        while (off < (size_t)r) {
            char *nl = memchr(buf + off, '\n', (size_t)r - off);
            size_t chunk = nl ? (size_t)(nl - (buf + off)) : (size_t)r - off;
            if (p->linelen[which] + chunk > PORT_MAX_LINE) {
                if (which == 0) {
                    deliver_event(io, p, PORT_EV_TOOLONG, NULL, 0);
                    p->eof[0] = 1;
                    epoll_ctl(io->epfd, EPOLL_CTL_DEL, fd, NULL);
                    return;
                }
                p->linelen[which] = 0; /* stderr: drop the overlong line */
            }
            if (p->linelen[which] + chunk > p->linecap[which]) {
                size_t nc = p->linecap[which] ? p->linecap[which] : 256;
                while (nc < p->linelen[which] + chunk)
                    nc *= 2;
                char *nb = realloc(p->line[which], nc);
                if (nb == NULL)
                    return;
                p->line[which] = nb;
                p->linecap[which] = nc;
            }
            if (chunk > 0)
                memcpy(p->line[which] + p->linelen[which], buf + off, chunk);
            p->linelen[which] += chunk;
            off += chunk;
            if (nl != NULL) {
                handle_line(io, p, which, p->line[which], p->linelen[which]);
                p->linelen[which] = 0;
                off++;
            }
        }
    }
}

/* Flush pending stdin bytes; caller holds p->mu. Returns 0 or an errno. */
static int flush_locked(struct port *p)
{
    while (p->outlen > 0 && p->in_fd >= 0) {
        ssize_t w = send(p->in_fd, p->outbuf, p->outlen, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        memmove(p->outbuf, p->outbuf + w, p->outlen - (size_t)w);
        p->outlen -= (size_t)w;
    }
    return 0;
}

static void io_writable(struct rt_port_io *io, struct port *p)
{
    pthread_mutex_lock(&p->mu);
    int rc = flush_locked(p);
    if (p->in_fd >= 0 && (p->outlen == 0 || (rc != 0 && rc != EAGAIN)) &&
        atomic_exchange(&p->want_out, 0)) {
        epoll_ctl(io->epfd, EPOLL_CTL_DEL, p->in_fd, NULL);
    }
    pthread_mutex_unlock(&p->mu);
}

static void io_apply_cmds(struct rt_port_io *io)
{
    pthread_mutex_lock(&io->mu);
    struct io_cmd *c = io->cmds;
    io->cmds = NULL;
    pthread_mutex_unlock(&io->mu);
    struct io_cmd *rev = NULL; /* apply in posting order */
    while (c != NULL) {
        struct io_cmd *nx = c->next;
        c->next = rev;
        rev = c;
        c = nx;
    }
    while (rev != NULL) {
        struct io_cmd *nx = rev->next;
        struct port *p = rev->p;
        if (rev->add) {
            for (int i = 0; i < 2; i++) {
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &p->ref[i] };
                epoll_ctl(io->epfd, EPOLL_CTL_ADD, i == 0 ? p->out_fd : p->err_fd, &ev);
            }
        } else {
            for (int i = 0; i < 2; i++) {
                int fd = i == 0 ? p->out_fd : p->err_fd;
                if (!p->eof[i])
                    epoll_ctl(io->epfd, EPOLL_CTL_DEL, fd, NULL);
                close(fd);
            }
            port_release(p);
        }
        free(rev);
        rev = nx;
    }
}

static void *io_main(void *arg)
{
    struct rt_port_io *io = arg;
    struct epoll_event evs[64];
    pthread_setname_np(pthread_self(), "mb-port-io");
    for (;;) {
        int n = epoll_wait(io->epfd, evs, 64, -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t v;
                ssize_t r = read(io->wakefd, &v, sizeof(v));
                (void)r;
                continue;
            }
            struct port_ref *ref = evs[i].data.ptr;
            if (ref->which == 2)
                io_writable(io, ref->p);
            else
                io_readable(io, ref->p, ref->which);
        }
        /* Removals only between batches: no event above refers to a freed
         * port. */
        io_apply_cmds(io);
        pthread_mutex_lock(&io->mu);
        int stop = io->stop;
        pthread_mutex_unlock(&io->mu);
        if (stop)
            break;
    }
    return NULL;
}

int rt_port_io_start(struct mb_runtime *rt, struct rt_port_io **out)
{
    struct rt_port_io *io = calloc(1, sizeof(*io));
    if (io == NULL)
        return MB_ENOMEM;
    io->rt = rt;
    pthread_mutex_init(&io->mu, NULL);
    io->epfd = epoll_create1(EPOLL_CLOEXEC);
    io->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (io->epfd < 0 || io->wakefd < 0)
        goto fail;
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, io->wakefd, &ev) != 0)
        goto fail;
    if (pthread_create(&io->th, NULL, io_main, io) != 0)
        goto fail;
    *out = io;
    return 0;
fail:
    if (io->epfd >= 0)
        close(io->epfd);
    if (io->wakefd >= 0)
        close(io->wakefd);
    pthread_mutex_destroy(&io->mu);
    free(io);
    return MB_EIO;
}

void rt_port_io_stop(struct rt_port_io *io)
{
    if (io == NULL)
        return;
    pthread_mutex_lock(&io->mu);
    io->stop = 1;
    pthread_mutex_unlock(&io->mu);
    uint64_t one = 1;
    ssize_t w = write(io->wakefd, &one, sizeof(one));
    (void)w;
    pthread_join(io->th, NULL);
    io_apply_cmds(io); /* removals posted by the last agents */
    close(io->epfd);
    close(io->wakefd);
    pthread_mutex_destroy(&io->mu);
    free(io);
}

/* ---- the port kind ---- */

struct port_cfg {
    char **argv;
    size_t argc;
    char *user_config;
    uint64_t mem_bytes; /* 0 = no limit */
    uint64_t cpu_s;     /* 0 = no limit */
    uint64_t reply_ms;
};

struct port_agent {
    struct port *p;
    struct port_cfg cfg;
    void *ckpt;
    size_t ckpt_len;
    uint64_t seq;
    uint64_t await_ready; /* seq of the init line awaiting "ready", 0 = none */
};

static void cfg_free(struct port_cfg *c)
{
    for (size_t i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->user_config);
    memset(c, 0, sizeof(*c));
}

static int cfg_parse(mb_ctx *ctx, const char *config, struct port_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->reply_ms = rt_config(ctx->rt)->port_reply_ms;
    cJSON *root = cJSON_Parse(config ? config : "");
    int rc = MB_EINVAL;
    if (root == NULL || !cJSON_IsObject(root))
        goto out;
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(root, "cmd");
    if (!cJSON_IsArray(cmd) || cJSON_GetArraySize(cmd) < 1 || cJSON_GetArraySize(cmd) > 64)
        goto out;
    c->argv = calloc((size_t)cJSON_GetArraySize(cmd) + 1, sizeof(char *));
    if (c->argv == NULL) {
        rc = MB_ENOMEM;
        goto out;
    }
    const cJSON *a;
    cJSON_ArrayForEach(a, cmd)
    {
        if (!cJSON_IsString(a) || a->valuestring[0] == '\0')
            goto out;
        c->argv[c->argc] = strdup(a->valuestring);
        if (c->argv[c->argc] == NULL) {
            rc = MB_ENOMEM;
            goto out;
        }
        c->argc++;
    }
    const cJSON *uc = cJSON_GetObjectItemCaseSensitive(root, "config");
    if (uc != NULL) {
        if (cJSON_IsString(uc))
            c->user_config = strdup(uc->valuestring);
        else
            c->user_config = cJSON_PrintUnformatted(uc);
        if (c->user_config == NULL) {
            rc = MB_ENOMEM;
            goto out;
        }
    }
    struct {
        const char *key;
        double max;
        uint64_t *dst;
        uint64_t mul;
    } nums[] = { { "mem_mb", 1e7, &c->mem_bytes, 1024 * 1024 },
                 { "cpu_s", 1e9, &c->cpu_s, 1 },
                 { "reply_ms", 1e9, &c->reply_ms, 1 } };
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, nums[i].key);
        if (v == NULL)
            continue;
        if (!cJSON_IsNumber(v) || isnan(v->valuedouble) || v->valuedouble < 1 ||
            v->valuedouble > nums[i].max)
            goto out;
        *nums[i].dst = (uint64_t)v->valuedouble * nums[i].mul;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc != 0) {
        mb_log(ctx, MB_LOG_ERROR,
               "port: config must be {\"cmd\":[program, args...], \"config\":..., \"mem_mb\":n, "
               "\"cpu_s\":n, \"reply_ms\":n}");
        cfg_free(c);
    }
    return rc;
}

/* Start the process; on success *out holds a port with two references. */
static int port_spawn_process(mb_ctx *ctx, const struct port_cfg *c, struct port **out)
{
    int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, exe[2] = { -1, -1 };
    int rc = MB_EIO;
    /* stdin is a socket so that writes can use MSG_NOSIGNAL: a dead
     * process must not SIGPIPE the node. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 ||
        pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 || pipe2(exe, O_CLOEXEC) != 0)
        goto fail;
    struct rlimit mem = { (rlim_t)c->mem_bytes, (rlim_t)c->mem_bytes };
    struct rlimit cpu = { (rlim_t)c->cpu_s, (rlim_t)c->cpu_s + 1 };
    pid_t pid = fork();
    if (pid < 0)
        goto fail;
    if (pid == 0) {
        /* Child: only async-signal-safe calls until exec. */
        dup2(in[0], 0);
        dup2(outp[1], 1);
        dup2(errp[1], 2);
        if (c->mem_bytes > 0)
            setrlimit(RLIMIT_AS, &mem);
        if (c->cpu_s > 0)
            setrlimit(RLIMIT_CPU, &cpu);
        execvp(c->argv[0], c->argv);
        int e = errno;
        ssize_t w = write(exe[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    close(errp[1]);
    close(exe[1]);
    in[0] = outp[1] = errp[1] = exe[1] = -1;
    int e = 0;
    ssize_t r;
    do {
        r = read(exe[0], &e, sizeof(e));
    } while (r < 0 && errno == EINTR);
    close(exe[0]);
    exe[0] = -1;
    if (r == (ssize_t)sizeof(e)) {
        waitpid(pid, NULL, 0);
        mb_log(ctx, MB_LOG_ERROR, "port: cannot run %s: %s", c->argv[0], strerror(e));
        rc = e == ENOENT ? MB_ENOTFOUND : MB_EPERM;
        goto fail;
    }
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    fcntl(outp[0], F_SETFL, O_NONBLOCK);
    fcntl(errp[0], F_SETFL, O_NONBLOCK);
    struct port *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        rc = MB_ENOMEM;
        goto fail;
    }
    pthread_mutex_init(&p->mu, NULL);
    p->refs = 2;
    p->agent = mb_self(ctx);
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = outp[0];
    p->err_fd = errp[0];
    for (int i = 0; i < 3; i++)
        p->ref[i] = (struct port_ref){ p, i };
    *out = p;
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
        if (exe[i] >= 0)
            close(exe[i]);
    }
    return rc;
}

/* Queue a line for the process (takes `line`). */
static int port_write(mb_ctx *ctx, struct port *p, char *line)
{
    if (line == NULL)
        return MB_ENOMEM;
    size_t n = strlen(line);
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    if (p->in_fd < 0) {
        rc = MB_ECLOSED;
    } else if (p->outlen + n > 64u * 1024 * 1024) {
        rc = MB_EFULL; /* the process stopped reading */
    } else {
        if (p->outlen + n > p->outcap) {
            size_t nc = p->outcap ? p->outcap : 4096;
            while (nc < p->outlen + n)
                nc *= 2;
            char *nb = realloc(p->outbuf, nc);
            if (nb == NULL) {
                rc = MB_ENOMEM;
                goto out;
            }
            p->outbuf = nb;
            p->outcap = nc;
        }
        memcpy(p->outbuf + p->outlen, line, n);
        p->outlen += n;
        int e = flush_locked(p);
        if (e == EAGAIN && !atomic_exchange(&p->want_out, 1)) {
            struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = &p->ref[2] };
            epoll_ctl(rt_port_io_of(ctx->rt)->epfd, EPOLL_CTL_ADD, p->in_fd, &ev);
        } else if (e != 0 && e != EAGAIN) {
            rc = MB_ECLOSED; /* EPIPE: the process is gone; EOF will follow */
        }
    }
out:
    pthread_mutex_unlock(&p->mu);
    free(line);
    return rc;
}

/* Stop the process and let go of the port. Waits briefly for a graceful
 * exit when `graceful`, then kills. */
static void port_close(mb_ctx *ctx, struct port *p, int graceful)
{
    pthread_mutex_lock(&p->mu);
    p->agent = 0;
    if (p->in_fd >= 0) {
        if (atomic_exchange(&p->want_out, 0))
            epoll_ctl(rt_port_io_of(ctx->rt)->epfd, EPOLL_CTL_DEL, p->in_fd, NULL);
        close(p->in_fd); /* EOF on its stdin */
        p->in_fd = -1;
    }
    pthread_mutex_unlock(&p->mu);
    int done = 0;
    if (graceful) {
        /* Bounded wait (100 ms) for the process to leave on its own. */
        for (int i = 0; i < 100 && !done; i++) {
            if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
                done = 1;
                break;
            }
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    if (!done) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    io_post(rt_port_io_of(ctx->rt), p, 0);
    port_release(p);
}

static void pa_free(struct port_agent *pa)
{
    cfg_free(&pa->cfg);
    free(pa->ckpt);
    free(pa);
}

static int port_start(mb_ctx *ctx, const char *config, const void *ckpt, size_t ckpt_len,
                      void **state)
{
    struct port_agent *pa = calloc(1, sizeof(*pa));
    if (pa == NULL)
        return MB_ENOMEM;
    int rc = cfg_parse(ctx, config, &pa->cfg);
    if (rc != 0)
        goto fail;
    rc = port_spawn_process(ctx, &pa->cfg, &pa->p);
    if (rc != 0)
        goto fail;
    rt_set_os_pid(ctx, pa->p->pid);
    io_post(rt_port_io_of(ctx->rt), pa->p, 1);
    if (ckpt != NULL) {
        pa->ckpt = malloc(ckpt_len ? ckpt_len : 1);
        if (pa->ckpt == NULL) {
            rc = MB_ENOMEM;
            goto fail_port;
        }
        memcpy(pa->ckpt, ckpt, ckpt_len);
        pa->ckpt_len = ckpt_len;
    }
    rc =
        port_write(ctx, pa->p, port_encode_init(mb_self(ctx), pa->cfg.user_config, ckpt, ckpt_len));
    if (rc != 0 && rc != MB_ECLOSED) /* closed: the EOF that follows crashes it */
        goto fail_port;
    pa->await_ready = ++pa->seq;
    rc = mb_send_after(ctx, pa->cfg.reply_ms, PORT_TAG_DEADLINE, &pa->await_ready,
                       sizeof(pa->await_ready), NULL);
    if (rc != 0)
        goto fail_port;
    *state = pa;
    return 0;
fail_port:
    port_close(ctx, pa->p, 0);
fail:
    pa_free(pa);
    return rc;
}

static int port_init(mb_ctx *ctx, const char *config, void **state)
{
    return port_start(ctx, config, NULL, 0, state);
}

static int port_restore(mb_ctx *ctx, const char *config, const void *blob, size_t len, void **state)
{
    return port_start(ctx, config, blob, len, state);
}

static int port_handle(mb_ctx *ctx, void *state, const mb_msg *msg)
{
    struct port_agent *pa = state;
    if (msg->type == MB_MSG_TIMER && msg->tag == PORT_TAG_DEADLINE &&
        msg->len == sizeof(uint64_t)) {
        uint64_t seq;
        memcpy(&seq, msg->data, sizeof(seq));
        if (pa->await_ready == seq) {
            rt_crash(ctx, MB_ETIMEDOUT, "port process missed its reply deadline (%llu ms)",
                     (unsigned long long)pa->cfg.reply_ms);
        }
        return 0;
    }
    const void *data = msg->data;
    size_t len = msg->len;
    mb_exit_info *x = NULL;
    char detail[160];
    if (msg->type == MB_MSG_DOWN || msg->type == MB_MSG_EXIT) {
        x = (mb_exit_info *)msg->data;
        snprintf(detail, sizeof(detail), "{\"id\":\"%llx\",\"reason\":\"%s\"}",
                 (unsigned long long)x->id, mb_exit_reason_name(x->reason));
        data = detail;
        len = strlen(detail);
    }
    int rc = port_write(ctx, pa->p, port_encode_message(msg->from, msg->type, msg->tag, data, len));
    return rc == MB_ECLOSED ? 0 : rc; /* a dead process shows up as EOF */
}

static int port_var_changed(mb_ctx *ctx, void *state, const char *name, const mb_value *value,
                            uint64_t version)
{
    struct port_agent *pa = state;
    int rc = port_write(ctx, pa->p, port_encode_variable(name, value, version));
    return rc == MB_ECLOSED ? 0 : rc;
}

static int port_vote(mb_ctx *ctx, void *state, const mb_proposal *p)
{
    struct port_agent *pa = state;
    int rc = port_write(ctx, pa->p, port_encode_vote(p));
    return rc == MB_ECLOSED ? 0 : rc;
}

static int port_checkpoint(mb_ctx *ctx, void *state, void **blob, size_t *len)
{
    (void)ctx;
    struct port_agent *pa = state;
    *blob = NULL;
    *len = 0;
    if (pa->ckpt == NULL)
        return 0;
    *blob = malloc(pa->ckpt_len ? pa->ckpt_len : 1);
    if (*blob == NULL)
        return MB_ENOMEM;
    memcpy(*blob, pa->ckpt, pa->ckpt_len);
    *len = pa->ckpt_len;
    return 0;
}

static void port_terminate(mb_ctx *ctx, void *state, int reason)
{
    struct port_agent *pa = state;
    if (pa == NULL)
        return;
    if (reason == MB_EXIT_NORMAL || reason == MB_EXIT_SHUTDOWN)
        port_write(ctx, pa->p, port_encode_simple("stop"));
    port_close(ctx, pa->p, reason == MB_EXIT_NORMAL || reason == MB_EXIT_SHUTDOWN);
    pa_free(pa);
}

/* The protocol's JSON gives a number as a float and an array as an
 * embedding; the variable's own type decides what they mean, as it does for
 * the HTTP API: an integral number for an int variable, a number for a
 * probability, an array for a distribution. Any other mismatch is left to
 * the node's validation, which names it. */
static void port_value_retype(mb_ctx *ctx, const char *name, mb_value *v)
{
    if (v->type != MB_VT_FLOAT && v->type != MB_VT_EMBEDDING)
        return; /* bool, choice: nothing to refine, no copy of the variable to make */
    mb_value cur;
    uint64_t version;
    if (mb_var_get(ctx, name, &cur, &version) != MB_OK)
        return; /* unknown here: the write or proposal says so */
    mb_vtype want = cur.type;
    mb_value_free(&cur);
    if (v->type == MB_VT_FLOAT && want == MB_VT_INT && v->u.f == floor(v->u.f) &&
        fabs(v->u.f) <= 9007199254740992.0) {
        int64_t i = (int64_t)v->u.f;
        v->type = MB_VT_INT;
        v->u.i = i;
    } else if (v->type == MB_VT_FLOAT && want == MB_VT_PROBABILITY) {
        v->type = MB_VT_PROBABILITY;
    } else if (v->type == MB_VT_EMBEDDING && want == MB_VT_DISTRIBUTION) {
        v->type = MB_VT_DISTRIBUTION;
    }
}

void rt_port_event(mb_ctx *ctx, void *state, uint32_t tag, const void *data, size_t len)
{
    struct port_agent *pa = state;
    if (tag == PORT_EV_EOF) {
        rt_crash(ctx, MB_ECRASH, "port process exited (stdout closed)");
        return;
    }
    if (tag == PORT_EV_TOOLONG) {
        rt_crash(ctx, MB_EPROTO, "port process wrote a line over %u bytes", PORT_MAX_LINE);
        return;
    }
    port_cmd c;
    mb_error err;
    int rc = port_decode_line(data, len, &c, &err);
    if (rc != 0) {
        rt_crash(ctx, rc, "port: %s", err.msg);
        return;
    }
    switch (c.type) {
    case PORT_CMD_READY:
        pa->await_ready = 0;
        break;
    case PORT_CMD_SEND:
        rc = mb_send(ctx, c.to, c.tag, c.data, c.len);
        if (rc != 0)
            mb_log(ctx, MB_LOG_WARN, "port: send to %llx: %s", (unsigned long long)c.to,
                   mb_strerror(rc));
        break;
    case PORT_CMD_LOG:
        mb_log(ctx, c.level, "%s", c.text);
        break;
    case PORT_CMD_CHECKPOINT:
        free(pa->ckpt);
        pa->ckpt = c.data;
        pa->ckpt_len = c.len;
        c.data = NULL;
        mb_request_checkpoint(ctx);
        break;
    case PORT_CMD_VOTE:
        rc = mb_vote(ctx, c.proposal, c.accept);
        if (rc != 0)
            mb_log(ctx, MB_LOG_WARN, "port: vote: %s", mb_strerror(rc));
        break;
    case PORT_CMD_SET:
        port_value_retype(ctx, c.text, &c.value);
        rc = mb_var_set(ctx, c.text, &c.value);
        if (rc != 0)
            mb_log(ctx, MB_LOG_WARN, "port: set %s: %s", c.text, mb_strerror(rc));
        break;
    case PORT_CMD_PROPOSE: {
        /* Answered at once: the proposal's id, or why there is none (the
         * outcome comes later, as for any agent: the variable's change). */
        uint64_t id = 0;
        port_value_retype(ctx, c.text, &c.value);
        rc = mb_propose(ctx, c.text, &c.value, &id);
        char msg[192];
        if (rc != 0)
            snprintf(msg, sizeof(msg), "propose %s: %s", c.text, mb_strerror(rc));
        rc = port_write(ctx, pa->p, port_encode_proposed(c.ref, id, rc, rc != 0 ? msg : NULL));
        if (rc != 0 && rc != MB_ECLOSED)
            mb_log(ctx, MB_LOG_WARN, "port: answering propose %s: %s", c.text, mb_strerror(rc));
        break;
    }
    case PORT_CMD_STOP:
        mb_stop_self(ctx);
        break;
    case PORT_CMD_ERROR:
        rt_crash(ctx, MB_ECRASH, "port agent error: %s", c.text);
        break;
    default:
        break;
    }
    port_cmd_free(&c);
}

const mb_agent_kind mb_kind_port = {
    .abi = MB_AGENT_ABI,
    .name = "port",
    .version = 1,
    .init = port_init,
    .handle = port_handle,
    .var_changed = port_var_changed,
    .vote = port_vote,
    .checkpoint = port_checkpoint,
    .restore = port_restore,
    .terminate = port_terminate, /* also on kill: the process must go (SIGKILL) */
};
