/* The kind table: built-in kinds, kinds registered by the program and kinds
 * loaded from shared objects (dlopen). Registering a higher version of a
 * known kind makes it current; agents move to it at their next turn
 * (runtime.c, try_upgrade). Old versions stay loaded until the runtime
 * stops, since agents that failed to upgrade keep running them. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents/internal.h"

pthread_rwlock_t *rt_kinds_lock(struct mb_runtime *rt);
struct rt_kind **rt_kinds_head(struct mb_runtime *rt);
int rt_kinds_add_lib(struct mb_runtime *rt, void *handle);
void rt_kinds_free_libs(struct mb_runtime *rt, void (*close_fn)(void *));

static int kind_valid(const mb_agent_kind *k, mb_error *err)
{
    if (k == NULL)
        return mb_errorf(err, MB_EINVAL, "kind table is NULL");
    if (k->abi != MB_AGENT_ABI)
        return mb_errorf(err, MB_ENOTSUP, "kind ABI %u, this runtime speaks %u", k->abi,
                         MB_AGENT_ABI);
    if (k->name == NULL || k->name[0] == '\0' || strlen(k->name) >= 64)
        return mb_errorf(err, MB_EINVAL, "kind name must be 1..63 characters");
    if (k->handle == NULL)
        return mb_errorf(err, MB_EINVAL, "kind '%s' has no handle callback", k->name);
    return 0;
}

static int kind_add(struct mb_runtime *rt, const mb_agent_kind *k, const char *path, mb_error *err)
{
    int rc = kind_valid(k, err);
    if (rc != 0)
        return rc;
    pthread_rwlock_wrlock(rt_kinds_lock(rt));
    struct rt_kind *e = *rt_kinds_head(rt);
    while (e != NULL && strcmp(e->name, k->name) != 0)
        e = e->next;
    if (e != NULL) {
        const mb_agent_kind *cur = atomic_load(&e->current);
        if (k->version <= cur->version) {
            pthread_rwlock_unlock(rt_kinds_lock(rt));
            return mb_errorf(err, MB_EEXIST, "kind '%s' version %u already loaded (have %u)",
                             k->name, k->version, cur->version);
        }
        snprintf(e->path, sizeof(e->path), "%s", path ? path : "");
        atomic_store_explicit(&e->current, k, memory_order_release);
        pthread_rwlock_unlock(rt_kinds_lock(rt));
        return 0;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        pthread_rwlock_unlock(rt_kinds_lock(rt));
        return mb_errorf(err, MB_ENOMEM, "register kind '%s': out of memory", k->name);
    }
    snprintf(e->name, sizeof(e->name), "%s", k->name);
    snprintf(e->path, sizeof(e->path), "%s", path ? path : "");
    atomic_store(&e->current, k);
    e->next = *rt_kinds_head(rt);
    *rt_kinds_head(rt) = e;
    pthread_rwlock_unlock(rt_kinds_lock(rt));
    return 0;
}

int rt_kinds_init(struct mb_runtime *rt)
{
    const mb_agent_kind *builtin[] = {
        &mb_kind_echo, &mb_kind_counter, &mb_kind_crasher,   &mb_kind_supervisor, &mb_kind_pool,
        &mb_kind_port, &mb_kind_voter,   &mb_kind_optimiser, &mb_kind_evaluator
    };
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        int rc = kind_add(rt, builtin[i], NULL, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void lib_close(void *h)
{
    dlclose(h);
}

void rt_kinds_close(struct mb_runtime *rt)
{
    struct rt_kind *e = *rt_kinds_head(rt);
    while (e != NULL) {
        struct rt_kind *nx = e->next;
        free(e);
        e = nx;
    }
    *rt_kinds_head(rt) = NULL;
    rt_kinds_free_libs(rt, lib_close);
    pthread_rwlock_destroy(rt_kinds_lock(rt));
}

struct rt_kind *rt_kind_find(struct mb_runtime *rt, const char *name)
{
    pthread_rwlock_rdlock(rt_kinds_lock(rt));
    struct rt_kind *e = *rt_kinds_head(rt);
    while (e != NULL && strcmp(e->name, name) != 0)
        e = e->next;
    pthread_rwlock_unlock(rt_kinds_lock(rt));
    return e;
}

int mb_runtime_kind_register(mb_runtime *rt, const mb_agent_kind *kind, mb_error *err)
{
    return kind_add(rt, kind, NULL, err);
}

int mb_runtime_kind_load(mb_runtime *rt, const char *path, mb_error *err)
{
    if (path == NULL || path[0] == '\0')
        return mb_errorf(err, MB_EINVAL, "load kind: no path");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *e = dlerror();
        return mb_errorf(err, MB_ENOTFOUND, "load kind %s: %s", path, e ? e : "dlopen failed");
    }
    mb_agent_kind_fn fn;
    void *sym = dlsym(h, MB_AGENT_KIND_SYMBOL);
    if (sym == NULL) {
        dlclose(h);
        return mb_errorf(err, MB_EINVAL, "load kind %s: no symbol %s", path, MB_AGENT_KIND_SYMBOL);
    }
    memcpy(&fn, &sym, sizeof(fn));
    const mb_agent_kind *k = fn();
    mb_error sub;
    mb_error_clear(&sub);
    int rc = kind_add(rt, k, path, &sub);
    if (rc != 0) {
        dlclose(h);
        return mb_errorf(err, rc, "load kind %s: %s", path, sub.msg);
    }
    pthread_rwlock_wrlock(rt_kinds_lock(rt));
    rc = rt_kinds_add_lib(rt, h);
    pthread_rwlock_unlock(rt_kinds_lock(rt));
    if (rc != 0) {
        /* The kind is current and must stay mapped: keep the handle
         * leaked rather than unmapping live code. */
        return mb_errorf(err, rc, "load kind %s: out of memory (library stays loaded)", path);
    }
    return 0;
}

size_t mb_runtime_kind_list(mb_runtime *rt, mb_kind_info *out, size_t max)
{
    size_t n = 0;
    pthread_rwlock_rdlock(rt_kinds_lock(rt));
    for (struct rt_kind *e = *rt_kinds_head(rt); e != NULL; e = e->next) {
        if (n < max && out != NULL) {
            const mb_agent_kind *k = atomic_load(&e->current);
            memset(&out[n], 0, sizeof(out[n]));
            snprintf(out[n].name, sizeof(out[n].name), "%s", e->name);
            out[n].version = k->version;
            snprintf(out[n].path, sizeof(out[n].path), "%s", e->path);
            out[n].agents = atomic_load_explicit(&e->agents, memory_order_relaxed);
        }
        n++;
    }
    pthread_rwlock_unlock(rt_kinds_lock(rt));
    return n;
}
