/* Benchmark: HTTP requests per second of mabeamd's GET /v1/health.
 *
 *   bench_http_health HOST PORT CONNECTIONS SECONDS
 *
 * Each of CONNECTIONS threads keeps one HTTP/1.1 keep-alive connection and
 * sends requests one after the other for SECONDS; prints one JSON line
 * {"requests":N,"seconds":S,"rps":R,"errors":E} on stdout. Loopback only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host;
static int port;
static double seconds;
static atomic_ullong total_requests;
static atomic_ullong total_errors;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Read one response; returns 0 on a 200, -1 otherwise. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0)
            return -1;
        len += (size_t)r;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL) {
            if (len >= cap - 1)
                return -1;
            continue;
        }
        char *cl = strcasestr(buf, "Content-Length:");
        size_t body = cl != NULL && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
        size_t need = (size_t)(end + 4 - buf) + body;
        while (len < need) {
            if (need > cap - 1)
                return -1;
            r = recv(fd, buf + len, need - len, 0);
            if (r <= 0)
                return -1;
            len += (size_t)r;
        }
        return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
    }
}

static void *worker(void *arg)
{
    (void)arg;
    char req[256];
    int rl =
        snprintf(req, sizeof(req), "GET /v1/health HTTP/1.1\r\nHost: %s:%d\r\n\r\n", host, port);
    char buf[8192];
    unsigned long long n = 0, errors = 0;
    double stop = now_s() + seconds;
    int fd = dial();
    while (now_s() < stop && errors < 1000) {
        if (fd < 0) {
            errors++;
            fd = dial();
            continue;
        }
        if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) != rl || read_response(fd, buf, sizeof(buf))) {
            errors++;
            close(fd);
            fd = dial();
            continue;
        }
        n++;
    }
    if (fd >= 0)
        close(fd);
    atomic_fetch_add(&total_requests, n);
    atomic_fetch_add(&total_errors, errors);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_http_health HOST PORT CONNECTIONS SECONDS\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    int conns = atoi(argv[3]);
    seconds = atof(argv[4]);
    if (conns < 1 || conns > 256 || seconds <= 0 || seconds > 120 || port <= 0) {
        fprintf(stderr, "bench_http_health: bad arguments\n");
        return 2;
    }
    pthread_t th[256];
    double t0 = now_s();
    for (int i = 0; i < conns; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < conns; i++)
        pthread_join(th[i], NULL);
    double el = now_s() - t0;
    unsigned long long n = atomic_load(&total_requests);
    printf("{\"requests\":%llu,\"seconds\":%.3f,\"rps\":%.1f,\"errors\":%llu}\n", n, el,
           (double)n / el, (unsigned long long)atomic_load(&total_errors));
    return 0;
}
