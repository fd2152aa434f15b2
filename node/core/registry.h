/* node/core registry: service discovery inside one node.
 *
 * Maps (namespace, name) to a value (a uint64 id and a void pointer) plus a
 * few key=value attributes. Namespaces are interned to small ids so that
 * production and test names never collide and lookups stay cheap. Besides
 * register / lookup / unregister it offers waiting for a name (a blocking
 * wait with a deadline for threads, a one-shot watch callback for an event
 * loop) and selection by attributes (entries having all given key=value
 * pairs, or all given keys with any value: "capabilities").
 *
 * Implementation: sharded open-addressing hash tables (linear probing,
 * backward-shift deletion) with one rwlock per shard; short names are
 * stored inline in the slot. Thread-safe: every function may be called from
 * any thread. The registry never dereferences `ptr`: the caller owns what
 * it points to and must keep it valid while it is registered. */
#ifndef NC_REGISTRY_H
#define NC_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mabeam/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits, refused with MB_EINVAL when exceeded. */
#define NC_REG_NAME_MAX   255 /* bytes of a name (not empty, no NUL) */
#define NC_REG_NS_MAX     64  /* bytes of a namespace name */
#define NC_REG_NAMESPACES 255 /* namespaces per registry */
#define NC_REG_ATTRS_MAX  16  /* attributes per entry */
#define NC_REG_ATTR_MAX   255 /* bytes of an attribute key or value */

typedef struct nc_registry nc_registry;

/* An interned namespace (0 is never a valid id). */
typedef uint32_t nc_reg_ns;

/* The registered value. */
typedef struct nc_reg_value {
    uint64_t id;
    void *ptr;
} nc_reg_value;

/* One attribute. In register/select the strings are borrowed for the
 * duration of the call. In select a NULL value means "has this key". */
typedef struct nc_reg_attr {
    const char *key;
    const char *value;
} nc_reg_attr;

/* Create an empty registry, owned by the caller (nc_registry_free).
 * `expected_entries` pre-sizes the tables (0 = small). Errors: MB_ENOMEM. */
int nc_registry_new(nc_registry **out, size_t expected_entries, mb_error *err);

/* Free the registry. No thread may be inside a call (in particular no
 * waiter may be blocked) and no watch may be pending: pending watches are
 * dropped without being called. NULL is a no-op. */
void nc_registry_free(nc_registry *reg);

/* Intern `name` (1..NC_REG_NS_MAX bytes) and return its id; the same name
 * always gives the same id. Errors: MB_EINVAL, MB_EFULL (too many), MB_ENOMEM. */
int nc_registry_namespace(nc_registry *reg, const char *name, nc_reg_ns *ns_out, mb_error *err);

/* Register `name` in `ns` with `value` and `nattrs` attributes (keys must be
 * distinct). Wakes the waiters and fires the watches of that name before
 * returning. All arguments are borrowed during the call.
 * Errors: MB_EEXIST (name taken; the registry is unchanged), MB_EINVAL
 * (bad namespace, name, or attributes), MB_ENOMEM. */
int nc_registry_register(nc_registry *reg, nc_reg_ns ns, const char *name,
                         const nc_reg_value *value, const nc_reg_attr *attrs, size_t nattrs,
                         mb_error *err);

/* Look `name` up; on success copy its value to *out (may be NULL to test
 * presence). Errors: MB_ENOTFOUND, MB_EINVAL (bad namespace). */
int nc_registry_lookup(nc_registry *reg, nc_reg_ns ns, const char *name, nc_reg_value *out);

/* Copy the value of attribute `key` of entry `name` into buf.
 * Errors: MB_ENOTFOUND (no entry or no such attribute), MB_ETOOBIG. */
int nc_registry_attr(nc_registry *reg, nc_reg_ns ns, const char *name, const char *key, char *buf,
                     size_t size);

/* Remove `name`; its last value is copied to *old_out if not NULL.
 * Errors: MB_ENOTFOUND. */
int nc_registry_unregister(nc_registry *reg, nc_reg_ns ns, const char *name, nc_reg_value *old_out);

/* Block until `name` is registered or `timeout_ms` passes (< 0: forever);
 * returns at once if it already is. On success *out (may be NULL) is the
 * value it had when it was registered. Errors: MB_ETIMEDOUT, MB_EINVAL. */
int nc_registry_wait(nc_registry *reg, nc_reg_ns ns, const char *name, int64_t timeout_ms,
                     nc_reg_value *out);

/* One-shot watch for an event loop. `cb` is called exactly once, with the
 * value, when `name` is registered: synchronously inside nc_registry_watch
 * if it already is, else on the thread that registers it (after the entry
 * is visible, with no registry lock held). The callback may use the
 * registry (lookup, register, unregister), but not watch_cancel its own
 * watch. A typical loop callback pushes to a queue and calls uv_async_send.
 * `arg` is borrowed until the callback has returned or the watch is
 * cancelled. *id_out (may be NULL) identifies the watch.
 * Errors: MB_EINVAL, MB_ENOMEM (then cb is never called). */
typedef void (*nc_reg_watch_cb)(void *arg, nc_reg_ns ns, const char *name,
                                const nc_reg_value *value);
int nc_registry_watch(nc_registry *reg, nc_reg_ns ns, const char *name, nc_reg_watch_cb cb,
                      void *arg, uint64_t *id_out);

/* Cancel a pending watch (e.g. on the loop's own timeout). MB_OK: the
 * callback will never run. MB_ENOTFOUND: it has already run, or is running
 * on another thread, in which case this waits for it to return. */
int nc_registry_watch_cancel(nc_registry *reg, uint64_t id);

/* Call `cb` for every entry of `ns` that has all `n` attributes of
 * `all_of` (a NULL value matches any value of that key; n == 0 matches
 * every entry). `cb` runs under a shard read lock: it must not call the
 * registry; `name` and the attribute pointers are valid only during the
 * call. Returning non-zero from cb stops the walk. Returns the number of
 * matching entries visited. Cost: a scan of the namespace's entries. */
typedef int (*nc_reg_select_cb)(void *arg, const char *name, const nc_reg_value *value);
size_t nc_registry_select(nc_registry *reg, nc_reg_ns ns, const nc_reg_attr *all_of, size_t n,
                          nc_reg_select_cb cb, void *arg);

/* Number of entries in `ns` (0 for all namespaces). */
size_t nc_registry_count(nc_registry *reg, nc_reg_ns ns);

typedef struct nc_registry_stats {
    size_t entries;
    size_t slots;       /* hash slots allocated, all shards */
    size_t bytes_table; /* slot arrays */
    size_t bytes_heap;  /* out-of-line names and attributes */
    size_t pending;     /* blocked waiters plus pending watches */
} nc_registry_stats;
void nc_registry_stats_get(nc_registry *reg, nc_registry_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* NC_REGISTRY_H */
