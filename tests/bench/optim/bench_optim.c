/* Benchmark of the optimisation strategies (suite `optimise`): for a test
 * function (or an external objective command) and a strategy, run `seeds`
 * independent studies of `trials` trials and print, as one JSON line, the
 * median over seeds of the best value found and the median time one
 * suggest() call takes. The external objective is a persistent process
 * that reads one JSON object of parameters per line on stdin and answers
 * one number per line on stdout. With --groups G the dimensions are split
 * into G contiguous groups, each searched by its own optimiser of the same
 * strategy (mb_optim_part: coordinated search, sampler "S-partG"). */
#include <mabeam/optim.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct objective {
    mb_optim_testfn fn;
    size_t ndims;
    FILE *to, *from; /* external objective process */
    pid_t pid;
};

static int external_start(struct objective *ob, const char *cmd)
{
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    ob->pid = pid;
    ob->to = fdopen(in[1], "w");
    ob->from = fdopen(out[0], "r");
    return ob->to && ob->from ? 0 : -1;
}

static void external_stop(struct objective *ob)
{
    if (ob->to != NULL)
        fclose(ob->to);
    if (ob->from != NULL)
        fclose(ob->from);
    if (ob->pid > 0)
        waitpid(ob->pid, NULL, 0);
}

static int evaluate(struct objective *ob, const mb_optim_space *sp, const double *x, double *out)
{
    if (ob->to == NULL) {
        *out = mb_optim_testfn_eval(ob->fn, ob->ndims, x);
        return 0;
    }
    fputc('{', ob->to);
    for (size_t i = 0; i < mb_optim_space_ndims(sp); i++) {
        fprintf(ob->to, "%s\"%s\":", i ? "," : "", mb_optim_space_name(sp, i));
        if (mb_optim_space_type(sp, i) == MB_OPTIM_CHOICE)
            fprintf(ob->to, "\"%s\"", mb_optim_space_option(sp, i, (size_t)x[i]));
        else
            fprintf(ob->to, "%.17g", x[i]);
    }
    fputs("}\n", ob->to);
    fflush(ob->to);
    char line[256];
    if (fgets(line, sizeof(line), ob->from) == NULL)
        return -1;
    *out = strtod(line, NULL);
    return 0;
}

static const char *usage = "usage: bench_optim (--fn branin|hartmann6|rosenbrock10|ackley10 | "
                           "--external CMD --space JSON --name NAME) --strategy S [--trials N] "
                           "[--seeds K] [--seed0 S] [--sigma0 S] [--popsize P] [--independent] "
                           "[--groups G]\n";

int main(int argc, char **argv)
{
    const char *fn = NULL, *ext = NULL, *space_json = NULL, *name = NULL, *strategy = "tpe";
    unsigned trials = 100, seeds = 10, popsize = 0, seed0 = 0, ngroups = 1;
    double sigma0 = 0;
    int univariate = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--independent") == 0) {
            univariate = 1;
            continue;
        }
        if (v == NULL) {
            fputs(usage, stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--fn") == 0)
            fn = v;
        else if (strcmp(a, "--external") == 0)
            ext = v;
        else if (strcmp(a, "--space") == 0)
            space_json = v;
        else if (strcmp(a, "--name") == 0)
            name = v;
        else if (strcmp(a, "--strategy") == 0)
            strategy = v;
        else if (strcmp(a, "--trials") == 0)
            trials = (unsigned)atoi(v);
        else if (strcmp(a, "--seeds") == 0)
            seeds = (unsigned)atoi(v);
        else if (strcmp(a, "--sigma0") == 0)
            sigma0 = atof(v);
        else if (strcmp(a, "--seed0") == 0)
            seed0 = (unsigned)atoi(v);
        else if (strcmp(a, "--popsize") == 0)
            popsize = (unsigned)atoi(v);
        else if (strcmp(a, "--groups") == 0)
            ngroups = (unsigned)atoi(v);
        else {
            fputs(usage, stderr);
            return 2;
        }
    }
    struct objective ob = { 0 };
    mb_optim_space *sp = NULL;
    mb_error err;
    if (fn != NULL) {
        name = fn;
        if (strcmp(fn, "branin") == 0)
            ob.fn = MB_OPTIM_BRANIN, ob.ndims = 2;
        else if (strcmp(fn, "hartmann6") == 0)
            ob.fn = MB_OPTIM_HARTMANN6, ob.ndims = 6;
        else if (strcmp(fn, "rosenbrock10") == 0)
            ob.fn = MB_OPTIM_ROSENBROCK, ob.ndims = 10;
        else if (strcmp(fn, "ackley10") == 0)
            ob.fn = MB_OPTIM_ACKLEY, ob.ndims = 10;
        else {
            fputs(usage, stderr);
            return 2;
        }
        if (mb_optim_testfn_space(ob.fn, ob.ndims, &sp, &err) != MB_OK) {
            fprintf(stderr, "bench_optim: %s\n", err.msg);
            return 1;
        }
    } else if (ext != NULL && space_json != NULL && name != NULL) {
        if (mb_optim_space_from_json(space_json, strlen(space_json), &sp, &err) != MB_OK) {
            fprintf(stderr, "bench_optim: space: %s\n", err.msg);
            return 1;
        }
        signal(SIGPIPE, SIG_IGN);
        if (external_start(&ob, ext) != 0) {
            fprintf(stderr, "bench_optim: cannot start '%s'\n", ext);
            return 1;
        }
    } else {
        fputs(usage, stderr);
        return 2;
    }
    mb_optim_config cfg;
    mb_optim_strategy st = MB_OPTIM_RANDOM;
    if (mb_optim_strategy_parse(strategy, &st, &err) != MB_OK) {
        fprintf(stderr, "bench_optim: %s\n", err.msg);
        return 2;
    }
    double *best = calloc(seeds, sizeof(double));
    double *sug = calloc((size_t)seeds * trials, sizeof(double));
    size_t nsug = 0;
    double x[MB_OPTIM_MAX_DIMS];
    int status = 0;
    double t_start = now_s();
    for (unsigned s = 0; s < seeds && status == 0; s++) {
        mb_optim_config_default(&cfg, st);
        cfg.seed = seed0 + s;
        cfg.max_trials = trials;
        cfg.cmaes.sigma0 = sigma0;
        cfg.cmaes.popsize = popsize;
        if (univariate)
            cfg.tpe.multivariate = 0;
        size_t nd = mb_optim_space_ndims(sp);
        uint32_t groups[MB_OPTIM_MAX_DIMS];
        for (size_t d = 0; d < nd; d++)
            groups[d] = ngroups > 0 ? (uint32_t)(d * ngroups / nd) : 0;
        mb_optim_part *o;
        best[s] = INFINITY;
        if (mb_optim_part_new(sp, &cfg, groups, ngroups, &o, &err) != MB_OK) {
            fprintf(stderr, "bench_optim: %s\n", err.msg);
            status = 1;
            break;
        }
        for (unsigned t = 0; t < trials; t++) {
            uint64_t id;
            double y, t0 = now_s();
            if (mb_optim_part_suggest(o, &id, x, &err) != MB_OK) {
                fprintf(stderr, "bench_optim: suggest: %s\n", err.msg);
                status = 1;
                break;
            }
            sug[nsug++] = now_s() - t0;
            if (evaluate(&ob, sp, x, &y) != 0) {
                fprintf(stderr, "bench_optim: objective failed\n");
                status = 1;
                break;
            }
            mb_optim_part_complete(o, id, y, NULL);
            if (y < best[s])
                best[s] = y;
        }
        mb_optim_part_free(o);
    }
    double wall = now_s() - t_start;
    if (status == 0) {
        char part[32] = "";
        if (ngroups > 1)
            snprintf(part, sizeof(part), "-part%u", ngroups);
        double med = median(best, seeds);
        double mean_sug = 0;
        for (size_t i = 0; i < nsug; i++)
            mean_sug += sug[i];
        mean_sug /= (double)nsug;
        printf("{\"suite\":\"optimise\",\"system\":\"mabeam\",\"problem\":\"%s\",\"sampler\":\"%s%"
               "s%s\","
               "\"groups\":%u,\"trials\":%u,\"seeds\":%u,\"best_median\":%.17g,\"best_min\":%.17g,"
               "\"best_max\":%.17g,\"suggest_ms_mean\":%.6g,\"suggest_ms_median\":%.6g,"
               "\"wall_s\":%.3f}\n",
               name, strategy, univariate ? "-independent" : "", part, ngroups, trials, seeds, med,
               best[0], best[seeds - 1], mean_sug * 1e3, median(sug, nsug) * 1e3, wall);
    }
    free(best);
    free(sug);
    external_stop(&ob);
    mb_optim_space_free(sp);
    return status;
}
