/* Node-local service registry: sharded open-addressing hash tables with
 * inline short names, interned namespaces, attribute selection, and
 * waiters/watches released by register. See registry.h. */
#include "node/core/registry.h"
#include "node/core/registry_test.h"
#include "internal/clock.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define SHARD_BITS   4
#define SHARDS       (1u << SHARD_BITS)
#define INLINE_NAME  16
#define MIN_CAPACITY 64 /* 64 slots and the header fit one 4 KiB page */

/* One hash slot, 48 bytes. tag == 0 means empty; otherwise tag is the
 * upper half of the hash (forced non-zero) and tag & mask is the home slot.
 * Names up to INLINE_NAME bytes live in `name`; longer names start the
 * heap blob, which then holds the attributes as "key\0value\0" pairs. */
struct slot {
    uint32_t tag;
    uint8_t ns;
    uint8_t name_len; /* 1..255 */
    uint8_t nattrs;
    uint8_t pad_;
    uint64_t id;
    void *ptr;
    char *heap;
    char name[INLINE_NAME];
};

/* A slot array lives in its own mapping, after a header that a lock-free
 * reader uses to learn the capacity of the array it found published. */
struct table {
    size_t cap;      /* power of two */
    size_t map_size; /* bytes mapped, header included */
    char pad_[48];
    struct slot slots[];
};

#define RETIRED_MAX 48

/* Writers hold `rw` for writing and bracket every change of the slots with
 * `seq` (odd while changing). lookup reads optimistically without the lock
 * (see shard_lookup_fast); every other reader takes `rw` for reading.
 * Replaced tables are emptied with MADV_DONTNEED but stay mapped until the
 * registry is freed, so that a lock-free reader still holding the old
 * pointer reads zeros (and then sees `seq` changed) instead of faulting. */
struct shard {
    pthread_rwlock_t rw;
    _Atomic uint32_t seq;
    struct table *_Atomic pub; /* the current table, for lock-free readers */
    struct slot *slots;        /* == pub->slots; under rw */
    size_t cap;                /* == pub->cap; under rw */
    size_t count;
    size_t heap_bytes;
    size_t nretired;
    struct {
        struct table *table; /* header zeroed by MADV_DONTNEED: size kept here */
        size_t size;
    } retired[RETIRED_MAX];
} __attribute__((aligned(128)));

/* A blocked waiter (on its stack) or a pending watch (heap). */
struct pending {
    struct pending *next, *prev;
    uint8_t ns;
    uint32_t tag;
    size_t len;
    char name[NC_REG_NAME_MAX + 1];
    bool is_watch;
    /* waiter */
    pthread_cond_t cv;
    bool done;
    nc_reg_value value;
    /* watch */
    uint64_t id;
    nc_reg_watch_cb cb;
    void *arg;
    pthread_t firer;
    struct pending *fire_next;
};

struct nc_registry {
    struct shard shards[SHARDS];

    pthread_mutex_t ns_mu;
    char *ns_names[NC_REG_NAMESPACES + 1]; /* index = id */
    _Atomic unsigned nns;

    pthread_mutex_t pend_mu; /* the pending and firing lists */
    pthread_cond_t fire_cv;  /* a watch finished firing */
    struct pending pending;  /* list head (sentinel) */
    struct pending firing;   /* list head (sentinel) */
    _Atomic size_t npending;
    uint64_t next_watch_id;

    void (*test_hook)(void *arg); /* registry_test.h; NULL in production */
    void *test_hook_arg;
};

/* ---- hashing ------------------------------------------------------------------ */

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* Unaligned loads of the name's bytes. The tail of a name is assembled in
 * registers from (possibly overlapping) loads, never by copying it into a
 * zeroed stack word: a load that reads a word written by narrower stores
 * cannot be forwarded from the store buffer and waits until those stores
 * reach the cache, i.e. until every older instruction has retired. In a
 * loop of lookups that older instruction is the previous lookup's cache
 * miss, so the copy serialised consecutive lookups (about one full memory
 * latency each instead of overlapping misses). */
static inline uint64_t load64(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t load32(const char *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/* Bytes p[0..n) (1 <= n <= 8) as a little-endian word, zero-extended. */
static inline uint64_t load_tail(const char *p, size_t n)
{
    if (n == 8)
        return load64(p);
    if (n >= 4) /* the two halves overlap on equal bytes */
        return load32(p) | load32(p + n - 4) << (8 * (n - 4));
    return (uint64_t)(uint8_t)p[0] | (uint64_t)(uint8_t)p[n / 2] << (8 * (n / 2)) |
           (uint64_t)(uint8_t)p[n - 1] << (8 * (n - 1));
}

/* The zero-padded inline words of a name of 1..INLINE_NAME bytes, equal to
 * slot words 4 and 5 of its entry. */
static inline void inline_words(const char *name, size_t len, uint64_t *n0, uint64_t *n1)
{
    if (len <= 8) {
        *n0 = load_tail(name, len);
        *n1 = 0;
    } else {
        *n0 = load64(name);
        *n1 = load64(name + len - 8) >> (8 * (16 - len));
    }
}

/* Hash of a short name (1..INLINE_NAME bytes) from its inline words: two
 * multiplications, no loop. */
static inline uint64_t hash_short(uint8_t ns, size_t len, uint64_t n0, uint64_t n1)
{
    const uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL;
    uint64_t h = mix(n0 ^ k0, n1 ^ k1);
    return mix(h ^ ((uint64_t)ns << 8 | len), k1 ^ 0x8ebc6af09c88c6e3ULL);
}

static uint64_t hash_name(uint8_t ns, const char *s, size_t len)
{
    if (len <= INLINE_NAME) {
        uint64_t n0, n1;
        inline_words(s, len, &n0, &n1);
        return hash_short(ns, len, n0, n1);
    }
    const uint64_t k0 = 0xa0761d6478bd642fULL, k1 = 0xe7037ed1a0b428dbULL;
    uint64_t h = mix((uint64_t)ns ^ k0, (uint64_t)len ^ k1);
    size_t i = 0;
    for (; i + 8 <= len; i += 8)
        h = mix(h ^ load64(s + i), k1);
    if (i < len)
        h = mix(h ^ load_tail(s + i, len - i), k0);
    return mix(h, k1 ^ 0x8ebc6af09c88c6e3ULL);
}

/* The length and inline words of a short name in one 16-byte load, without
 * strlen. Returns false when the name may be longer than INLINE_NAME bytes
 * or the 16 bytes from `name` would cross a page boundary: then the caller
 * takes the strlen path. Reading past the terminating NUL inside the same
 * page cannot fault (protection is per page); the bytes read beyond it are
 * masked off, so the sanitizers are told not to check this one load. */
#if defined(__SSE2__)
#include <emmintrin.h>
__attribute__((no_sanitize("address", "thread"))) static inline bool
short_name(const char *name, size_t *len, uint64_t *n0, uint64_t *n1)
{
    if (((uintptr_t)name & 4095) > 4096 - 16)
        return false;
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)name);
    unsigned zeros = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128()));
    if (zeros == 0)
        return false; /* 16 or more bytes: not short (a 16-byte name takes the slow path) */
    size_t n = (size_t)__builtin_ctz(zeros);
    uint64_t lo = (uint64_t)_mm_cvtsi128_si64(v);
    uint64_t hi = (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v));
    *len = n;
    *n0 = n >= 8 ? lo : lo & ((1ULL << (8 * n)) - 1);
    *n1 = n <= 8 ? 0 : hi & ((1ULL << (8 * (n - 8))) - 1);
    return true;
}
#else
static inline bool short_name(const char *name, size_t *len, uint64_t *n0, uint64_t *n1)
{
    (void)name, (void)len, (void)n0, (void)n1;
    return false;
}
#endif

static inline uint32_t tag_of(uint64_t h)
{
    uint32_t t = (uint32_t)(h >> 32);
    return t ? t : 1;
}

static inline struct shard *shard_of(nc_registry *reg, uint64_t h)
{
    return &reg->shards[h & (SHARDS - 1)];
}

static inline const char *slot_name(const struct slot *s)
{
    return s->name_len <= INLINE_NAME ? s->name : s->heap;
}

/* The attribute blob of a slot (after a long name), or NULL. */
static inline const char *slot_attrs(const struct slot *s)
{
    if (s->nattrs == 0)
        return NULL;
    return s->name_len <= INLINE_NAME ? s->heap : s->heap + s->name_len;
}

static size_t slot_heap_size(const struct slot *s)
{
    if (s->heap == NULL)
        return 0;
    size_t n = s->name_len > INLINE_NAME ? s->name_len : 0;
    const char *a = slot_attrs(s);
    for (unsigned i = 0; i < s->nattrs; i++) {
        size_t kl = strlen(a) + 1;
        size_t vl = strlen(a + kl) + 1;
        n += kl + vl;
        a += kl + vl;
    }
    return n;
}

/* Index of the slot holding (ns, name), or SIZE_MAX. Under the shard lock. */
static inline size_t shard_find(const struct shard *sh, uint32_t tag, uint8_t ns, const char *name,
                                size_t len)
{
    size_t mask = sh->cap - 1;
    for (size_t i = tag & mask;; i = (i + 1) & mask) {
        const struct slot *s = &sh->slots[i];
        if (s->tag == 0)
            return SIZE_MAX;
        if (s->tag == tag && s->ns == ns && s->name_len == len &&
            memcmp(slot_name(s), name, len) == 0)
            return i;
    }
}

/* Tables of 1 MiB and more are mapped 2 MiB-aligned and marked for
 * transparent huge pages: a lookup in a large table then costs one cache
 * miss instead of a cache miss plus a page-table walk. */
#define HUGE_PAGE      (2u << 20)
#define HUGE_THRESHOLD (1u << 20)

static struct table *table_alloc(size_t cap)
{
    size_t page = 4096;
    size_t size = (sizeof(struct table) + cap * sizeof(struct slot) + page - 1) & ~(page - 1);
    size_t align = size >= HUGE_THRESHOLD ? HUGE_PAGE : page;
    size_t span = size + (align > page ? align : 0);
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t a = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = a - (uintptr_t)p;
    if (head > 0)
        munmap(p, head);
    if (span - head > size)
        munmap((char *)a + size, span - head - size);
    if (align > page)
        (void)madvise((void *)a, size, MADV_HUGEPAGE); /* a hint: may be refused */
    struct table *t = (struct table *)a;               /* zero-filled by mmap */
    t->cap = cap;
    t->map_size = size;
    return t;
}

static void table_unmap(struct table *t)
{
    if (t != NULL)
        munmap(t, t->map_size);
}

/* Word-wise atomic access to slots, so that lock-free readers and writers
 * never race in the C11 sense. Stores are release and loads acquire (on
 * x86-64 both are plain moves): a reader that sees any word written inside
 * a writer's bracket then also sees the odd `seq` stored before it. This
 * is the fence-free form of the seqlock (TSan does not model fences). */
typedef uint64_t __attribute__((may_alias)) u64a;
#define SLOT_WORDS (sizeof(struct slot) / sizeof(uint64_t))
_Static_assert(sizeof(struct slot) == 48, "slot layout");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "slot word 0 layout");

static inline uint64_t slot_word(const struct slot *s, size_t i)
{
    return __atomic_load_n(&((const u64a *)s)[i], __ATOMIC_ACQUIRE);
}

static void slot_store(struct slot *dst, const struct slot *src)
{
    for (size_t i = 0; i < SLOT_WORDS; i++)
        __atomic_store_n(&((u64a *)dst)[i], ((const u64a *)src)[i], __ATOMIC_RELEASE);
}

static void slot_clear(struct slot *dst)
{
    for (size_t i = 0; i < SLOT_WORDS; i++)
        __atomic_store_n(&((u64a *)dst)[i], 0, __ATOMIC_RELEASE);
}

/* Writer side of the seqlock; under the shard's write lock. */
static void shard_write_begin(struct shard *sh)
{
    uint32_t v = atomic_load_explicit(&sh->seq, memory_order_relaxed);
    atomic_store_explicit(&sh->seq, v + 1, memory_order_relaxed);
}

static void shard_write_end(struct shard *sh)
{
    uint32_t v = atomic_load_explicit(&sh->seq, memory_order_relaxed);
    atomic_store_explicit(&sh->seq, v + 1, memory_order_release);
}

static void shard_place(struct slot *slots, size_t cap, const struct slot *src)
{
    size_t mask = cap - 1;
    size_t i = src->tag & mask;
    while (slots[i].tag != 0)
        i = (i + 1) & mask;
    slot_store(&slots[i], src);
}

/* Replace the table by one of `cap` slots. Under the write lock, inside a
 * write_begin/end bracket. */
static int shard_grow(struct shard *sh, size_t cap)
{
    if (sh->nretired == RETIRED_MAX)
        return MB_ENOMEM;
    struct table *t = table_alloc(cap);
    if (t == NULL)
        return MB_ENOMEM;
    for (size_t i = 0; i < sh->cap; i++)
        if (sh->slots[i].tag != 0)
            shard_place(t->slots, cap, &sh->slots[i]);
    struct table *old = atomic_load_explicit(&sh->pub, memory_order_relaxed);
    atomic_store_explicit(&sh->pub, t, memory_order_release);
    sh->slots = t->slots;
    sh->cap = cap;
    sh->retired[sh->nretired].table = old;
    sh->retired[sh->nretired].size = old->map_size;
    sh->nretired++;
    (void)madvise(old, old->map_size, MADV_DONTNEED); /* frees the memory, keeps the range */
    return MB_OK;
}

/* Remove slot i with backward-shift deletion (no tombstones). Under the
 * write lock, inside a write_begin/end bracket. */
static void shard_remove_at(struct shard *sh, size_t i)
{
    size_t mask = sh->cap - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (sh->slots[j].tag == 0)
            break;
        size_t home = sh->slots[j].tag & mask;
        /* Slot j may move to the hole i unless its home lies cyclically
         * in (i, j]. */
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            slot_store(&sh->slots[i], &sh->slots[j]);
            i = j;
        }
    }
    slot_clear(&sh->slots[i]);
    sh->count--;
}

/* Lock-free lookup of a name of at most INLINE_NAME bytes, given as its
 * zero-padded inline words n0, n1 and the expected low 48 bits of slot
 * word 0 (tag, ns, name_len). Returns 1 (found, *out set), 0 (absent) or
 * -1 (a writer interfered: retry or take the lock). */
static int shard_lookup_fast(nc_registry *reg, struct shard *sh, uint32_t tag, uint64_t key48,
                             uint64_t n0, uint64_t n1, nc_reg_value *out)
{
    uint32_t s1 = atomic_load_explicit(&sh->seq, memory_order_acquire);
    if (s1 & 1)
        return -1;
    struct table *t = atomic_load_explicit(&sh->pub, memory_order_acquire);
    size_t cap = __atomic_load_n(&t->cap, __ATOMIC_RELAXED); /* 0 once retired */
    if (cap == 0)
        return -1;
    if (__builtin_expect(reg->test_hook != NULL, 0))
        reg->test_hook(reg->test_hook_arg);
    size_t mask = cap - 1;
    int found = 0;
    uint64_t id = 0, ptr = 0;
    size_t i = tag & mask;
    for (size_t n = 0; n < cap; n++, i = (i + 1) & mask) {
        const struct slot *s = &t->slots[i];
        uint64_t w0 = slot_word(s, 0);
        if ((uint32_t)w0 == 0)
            break;
        if ((w0 & 0xFFFFFFFFFFFFULL) == key48 && slot_word(s, 4) == n0 && slot_word(s, 5) == n1) {
            id = slot_word(s, 1);
            ptr = slot_word(s, 2);
            found = 1;
            break;
        }
    }
    /* The acquire loads above keep this load after them. */
    if (atomic_load_explicit(&sh->seq, memory_order_relaxed) != s1)
        return -1;
    if (found && out != NULL) {
        out->id = id;
        out->ptr = (void *)(uintptr_t)ptr;
    }
    return found;
}

/* ---- lifecycle and namespaces ---------------------------------------------------- */

static size_t capacity_for(size_t entries)
{
    size_t cap = MIN_CAPACITY;
    while (cap * 3 / 4 < entries)
        cap *= 2;
    return cap;
}

int nc_registry_new(nc_registry **out, size_t expected_entries, mb_error *err)
{
    nc_registry *reg = aligned_alloc(128, sizeof(*reg));
    if (reg == NULL)
        return mb_errorf(err, MB_ENOMEM, "allocate registry");
    memset(reg, 0, sizeof(*reg));
    size_t per_shard = capacity_for(expected_entries / SHARDS + 1);
    size_t inited = 0;
    int rc = MB_OK;
    for (; inited < SHARDS; inited++) {
        struct shard *sh = &reg->shards[inited];
        struct table *t = table_alloc(per_shard);
        if (t == NULL || pthread_rwlock_init(&sh->rw, NULL) != 0) {
            table_unmap(t);
            rc = mb_errorf(err, MB_ENOMEM, "allocate registry tables");
            goto err_shards;
        }
        atomic_init(&sh->seq, 0);
        atomic_init(&sh->pub, t);
        sh->slots = t->slots;
        sh->cap = per_shard;
    }
    if (pthread_mutex_init(&reg->ns_mu, NULL) != 0)
        goto err_locks;
    if (pthread_mutex_init(&reg->pend_mu, NULL) != 0)
        goto err_ns_mu;
    if (pthread_cond_init(&reg->fire_cv, NULL) != 0)
        goto err_pend_mu;
    reg->pending.next = reg->pending.prev = &reg->pending;
    reg->firing.next = reg->firing.prev = &reg->firing;
    reg->next_watch_id = 1;
    atomic_init(&reg->nns, 0);
    atomic_init(&reg->npending, 0);
    *out = reg;
    return MB_OK;

err_pend_mu:
    pthread_mutex_destroy(&reg->pend_mu);
err_ns_mu:
    pthread_mutex_destroy(&reg->ns_mu);
err_locks:
    rc = mb_errorf(err, MB_ENOMEM, "initialise registry locks");
err_shards:
    while (inited-- > 0) {
        table_unmap(atomic_load(&reg->shards[inited].pub));
        pthread_rwlock_destroy(&reg->shards[inited].rw);
    }
    free(reg);
    return rc;
}

void nc_registry_free(nc_registry *reg)
{
    if (reg == NULL)
        return;
    for (unsigned k = 0; k < SHARDS; k++) {
        struct shard *sh = &reg->shards[k];
        for (size_t i = 0; i < sh->cap; i++)
            free(sh->slots[i].heap);
        table_unmap(atomic_load(&sh->pub));
        for (size_t i = 0; i < sh->nretired; i++)
            munmap(sh->retired[i].table, sh->retired[i].size);
        pthread_rwlock_destroy(&sh->rw);
    }
    assert(reg->firing.next == &reg->firing);
    struct pending *p = reg->pending.next;
    while (p != &reg->pending) {
        struct pending *next = p->next;
        assert(p->is_watch && "registry freed while a thread waits in it");
        free(p);
        p = next;
    }
    for (unsigned i = 1; i <= NC_REG_NAMESPACES; i++)
        free(reg->ns_names[i]);
    pthread_cond_destroy(&reg->fire_cv);
    pthread_mutex_destroy(&reg->pend_mu);
    pthread_mutex_destroy(&reg->ns_mu);
    free(reg);
}

int nc_registry_namespace(nc_registry *reg, const char *name, nc_reg_ns *ns_out, mb_error *err)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > NC_REG_NS_MAX)
        return mb_errorf(err, MB_EINVAL, "namespace name must be 1..%d bytes", NC_REG_NS_MAX);
    int rc = MB_OK;
    pthread_mutex_lock(&reg->ns_mu);
    unsigned n = atomic_load(&reg->nns);
    for (unsigned i = 1; i <= n; i++) {
        if (strcmp(reg->ns_names[i], name) == 0) {
            *ns_out = i;
            goto out;
        }
    }
    if (n == NC_REG_NAMESPACES) {
        rc = mb_errorf(err, MB_EFULL, "more than %d namespaces", NC_REG_NAMESPACES);
        goto out;
    }
    reg->ns_names[n + 1] = strdup(name);
    if (reg->ns_names[n + 1] == NULL) {
        rc = mb_errorf(err, MB_ENOMEM, "intern namespace");
        goto out;
    }
    atomic_store(&reg->nns, n + 1);
    *ns_out = n + 1;
out:
    pthread_mutex_unlock(&reg->ns_mu);
    return rc;
}

static inline bool ns_ok(nc_registry *reg, nc_reg_ns ns)
{
    return ns >= 1 && ns <= atomic_load_explicit(&reg->nns, memory_order_acquire);
}

static inline bool name_ok(const char *name, size_t *len)
{
    if (name == NULL)
        return false;
    *len = strlen(name);
    return *len >= 1 && *len <= NC_REG_NAME_MAX;
}

/* ---- register / lookup / unregister ----------------------------------------------- */

static void fire_pending(nc_registry *reg, uint8_t ns, uint32_t tag, const char *name, size_t len,
                         const nc_reg_value *value);

int nc_registry_register(nc_registry *reg, nc_reg_ns ns, const char *name,
                         const nc_reg_value *value, const nc_reg_attr *attrs, size_t nattrs,
                         mb_error *err)
{
    size_t len;
    if (!ns_ok(reg, ns))
        return mb_errorf(err, MB_EINVAL, "register: unknown namespace %u", (unsigned)ns);
    if (!name_ok(name, &len))
        return mb_errorf(err, MB_EINVAL, "register: name must be 1..%d bytes", NC_REG_NAME_MAX);
    if (value == NULL)
        return mb_errorf(err, MB_EINVAL, "register %s: no value", name);
    if (nattrs > NC_REG_ATTRS_MAX || (nattrs > 0 && attrs == NULL))
        return mb_errorf(err, MB_EINVAL, "register %s: at most %d attributes", name,
                         NC_REG_ATTRS_MAX);
    size_t blob = len > INLINE_NAME ? len : 0;
    for (size_t i = 0; i < nattrs; i++) {
        size_t kl = attrs[i].key ? strlen(attrs[i].key) : 0;
        size_t vl = attrs[i].value ? strlen(attrs[i].value) : SIZE_MAX;
        if (kl == 0 || kl > NC_REG_ATTR_MAX || vl > NC_REG_ATTR_MAX)
            return mb_errorf(err, MB_EINVAL,
                             "register %s: attribute %zu needs a key and a value of 0..%d bytes",
                             name, i, NC_REG_ATTR_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(attrs[i].key, attrs[j].key) == 0)
                return mb_errorf(err, MB_EINVAL, "register %s: attribute '%s' twice", name,
                                 attrs[i].key);
        blob += kl + 1 + vl + 1;
    }

    struct slot s;
    memset(&s, 0, sizeof(s));
    uint64_t h = hash_name((uint8_t)ns, name, len);
    s.tag = tag_of(h);
    s.ns = (uint8_t)ns;
    s.name_len = (uint8_t)len;
    s.nattrs = (uint8_t)nattrs;
    s.id = value->id;
    s.ptr = value->ptr;
    if (blob > 0) {
        s.heap = malloc(blob);
        if (s.heap == NULL)
            return mb_errorf(err, MB_ENOMEM, "register %s", name);
        char *p = s.heap;
        if (len > INLINE_NAME) {
            memcpy(p, name, len);
            p += len;
        }
        for (size_t i = 0; i < nattrs; i++) {
            size_t kl = strlen(attrs[i].key) + 1, vl = strlen(attrs[i].value) + 1;
            memcpy(p, attrs[i].key, kl);
            memcpy(p + kl, attrs[i].value, vl);
            p += kl + vl;
        }
    }
    if (len <= INLINE_NAME)
        memcpy(s.name, name, len);

    struct shard *sh = shard_of(reg, h);
    pthread_rwlock_wrlock(&sh->rw);
    if (shard_find(sh, s.tag, s.ns, name, len) != SIZE_MAX) {
        pthread_rwlock_unlock(&sh->rw);
        free(s.heap);
        return mb_errorf(err, MB_EEXIST, "register %s: name already registered", name);
    }
    shard_write_begin(sh);
    if ((sh->count + 1) > sh->cap * 3 / 4 && shard_grow(sh, sh->cap * 2) != MB_OK) {
        shard_write_end(sh);
        pthread_rwlock_unlock(&sh->rw);
        free(s.heap);
        return mb_errorf(err, MB_ENOMEM, "register %s: grow table", name);
    }
    shard_place(sh->slots, sh->cap, &s);
    shard_write_end(sh);
    sh->count++;
    sh->heap_bytes += blob;
    pthread_rwlock_unlock(&sh->rw);

    /* Pairs with the seq_cst increment in wait/watch (see fire_pending). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&reg->npending, memory_order_relaxed) != 0)
        fire_pending(reg, s.ns, s.tag, name, len, value);
    return MB_OK;
}

/* A lookup by the general path: a few lock-free attempts (for names of
 * up to INLINE_NAME bytes), then the shard's read lock. nc_registry_lookup
 * tail-calls it for everything but the common case; it is kept out of line
 * and recomputes what it needs so that the common path stays a small leaf
 * (fewer instructions, loads and stores per lookup let the CPU keep more
 * lookups' cache misses in flight at once). */
__attribute__((noinline)) static int lookup_slow(nc_registry *reg, nc_reg_ns ns, const char *name,
                                                 nc_reg_value *out)
{
    size_t len = strlen(name);
    if (len == 0 || len > NC_REG_NAME_MAX)
        return MB_EINVAL;
    uint64_t h = hash_name((uint8_t)ns, name, len);
    struct shard *sh = shard_of(reg, h);
    if (len <= INLINE_NAME) {
        uint64_t n0, n1;
        inline_words(name, len, &n0, &n1);
        uint64_t key48 = tag_of(h) | (uint64_t)ns << 32 | (uint64_t)len << 40;
        for (int attempt = 0; attempt < 4; attempt++) {
            int r = shard_lookup_fast(reg, sh, tag_of(h), key48, n0, n1, out);
            if (r >= 0)
                return r ? MB_OK : MB_ENOTFOUND;
        }
    }
    pthread_rwlock_rdlock(&sh->rw);
    size_t i = shard_find(sh, tag_of(h), (uint8_t)ns, name, len);
    if (i != SIZE_MAX && out != NULL) {
        out->id = sh->slots[i].id;
        out->ptr = sh->slots[i].ptr;
    }
    pthread_rwlock_unlock(&sh->rw);
    return i == SIZE_MAX ? MB_ENOTFOUND : MB_OK;
}

int nc_registry_lookup(nc_registry *reg, nc_reg_ns ns, const char *name, nc_reg_value *out)
{
    size_t len;
    uint64_t n0, n1;
    if (name == NULL || !ns_ok(reg, ns))
        return MB_EINVAL;
    if (!short_name(name, &len, &n0, &n1))
        return lookup_slow(reg, ns, name, out);
    if (len == 0)
        return MB_EINVAL;
    uint64_t h = hash_short((uint8_t)ns, len, n0, n1);
    uint64_t key48 = tag_of(h) | (uint64_t)ns << 32 | (uint64_t)len << 40;
    /* The common case inline: the name sits in its home slot, or the home
     * slot is empty. A longer probe sequence continues from the values
     * computed here; a writer in the way, a retired table and the test
     * hook go to lookup_slow. */
    struct shard *sh = shard_of(reg, h);
    uint32_t s1 = atomic_load_explicit(&sh->seq, memory_order_acquire);
    struct table *t = atomic_load_explicit(&sh->pub, memory_order_acquire);
    size_t cap = __atomic_load_n(&t->cap, __ATOMIC_RELAXED); /* 0 once retired */
    if (__builtin_expect((s1 & 1) == 0 && cap != 0 && reg->test_hook == NULL, 1)) {
        const struct slot *s = &t->slots[tag_of(h) & (cap - 1)];
        uint64_t w0 = slot_word(s, 0);
        if ((w0 & 0xFFFFFFFFFFFFULL) == key48 && slot_word(s, 4) == n0 && slot_word(s, 5) == n1) {
            uint64_t id = slot_word(s, 1), ptr = slot_word(s, 2);
            /* The acquire loads above keep this load after them. */
            if (atomic_load_explicit(&sh->seq, memory_order_relaxed) == s1) {
                if (out != NULL) {
                    out->id = id;
                    out->ptr = (void *)(uintptr_t)ptr;
                }
                return MB_OK;
            }
        } else if ((uint32_t)w0 == 0) {
            if (atomic_load_explicit(&sh->seq, memory_order_relaxed) == s1)
                return MB_ENOTFOUND;
        } else {
            int r = shard_lookup_fast(reg, sh, tag_of(h), key48, n0, n1, out);
            if (r >= 0)
                return r ? MB_OK : MB_ENOTFOUND;
        }
    }
    return lookup_slow(reg, ns, name, out);
}

int nc_registry_attr(nc_registry *reg, nc_reg_ns ns, const char *name, const char *key, char *buf,
                     size_t size)
{
    size_t len;
    if (!ns_ok(reg, ns) || !name_ok(name, &len) || key == NULL || buf == NULL || size == 0)
        return MB_EINVAL;
    uint64_t h = hash_name((uint8_t)ns, name, len);
    struct shard *sh = shard_of(reg, h);
    int rc = MB_ENOTFOUND;
    pthread_rwlock_rdlock(&sh->rw);
    size_t i = shard_find(sh, tag_of(h), (uint8_t)ns, name, len);
    if (i != SIZE_MAX) {
        const struct slot *s = &sh->slots[i];
        const char *a = slot_attrs(s);
        for (unsigned k = 0; k < s->nattrs; k++) {
            size_t kl = strlen(a) + 1;
            const char *v = a + kl;
            size_t vl = strlen(v);
            if (strcmp(a, key) == 0) {
                size_t c = vl < size ? vl : size - 1;
                memcpy(buf, v, c);
                buf[c] = '\0';
                rc = vl < size ? MB_OK : MB_ETOOBIG;
                break;
            }
            a = v + vl + 1;
        }
    }
    pthread_rwlock_unlock(&sh->rw);
    return rc;
}

int nc_registry_unregister(nc_registry *reg, nc_reg_ns ns, const char *name, nc_reg_value *old_out)
{
    size_t len;
    if (!ns_ok(reg, ns) || !name_ok(name, &len))
        return MB_EINVAL;
    uint64_t h = hash_name((uint8_t)ns, name, len);
    struct shard *sh = shard_of(reg, h);
    pthread_rwlock_wrlock(&sh->rw);
    size_t i = shard_find(sh, tag_of(h), (uint8_t)ns, name, len);
    if (i == SIZE_MAX) {
        pthread_rwlock_unlock(&sh->rw);
        return MB_ENOTFOUND;
    }
    struct slot *s = &sh->slots[i];
    if (old_out != NULL) {
        old_out->id = s->id;
        old_out->ptr = s->ptr;
    }
    sh->heap_bytes -= slot_heap_size(s);
    char *heap = s->heap;
    shard_write_begin(sh);
    shard_remove_at(sh, i);
    shard_write_end(sh);
    free(heap);
    pthread_rwlock_unlock(&sh->rw);
    return MB_OK;
}

/* ---- waiting and watching ------------------------------------------------------------ */

static void list_add(struct pending *head, struct pending *p)
{
    p->prev = head->prev;
    p->next = head;
    head->prev->next = p;
    head->prev = p;
}

static void list_del(struct pending *p)
{
    p->prev->next = p->next;
    p->next->prev = p->prev;
    p->next = p->prev = p;
}

/* Release waiters and fire watches of (ns, name). Called by register after
 * the entry is visible. Watch callbacks run without pend_mu held. */
static void fire_pending(nc_registry *reg, uint8_t ns, uint32_t tag, const char *name, size_t len,
                         const nc_reg_value *value)
{
    struct pending *to_fire = NULL, **tail = &to_fire;
    pthread_mutex_lock(&reg->pend_mu);
    struct pending *p = reg->pending.next;
    while (p != &reg->pending) {
        struct pending *next = p->next;
        if (p->ns == ns && p->tag == tag && p->len == len && memcmp(p->name, name, len) == 0) {
            list_del(p);
            atomic_fetch_sub(&reg->npending, 1);
            if (p->is_watch) {
                p->firer = pthread_self();
                list_add(&reg->firing, p);
                p->fire_next = NULL;
                *tail = p;
                tail = &p->fire_next;
            } else {
                p->value = *value;
                p->done = true;
                pthread_cond_signal(&p->cv);
            }
        }
        p = next;
    }
    pthread_mutex_unlock(&reg->pend_mu);
    while (to_fire != NULL) {
        struct pending *w = to_fire;
        to_fire = w->fire_next;
        w->cb(w->arg, ns, w->name, value);
        pthread_mutex_lock(&reg->pend_mu);
        list_del(w);
        pthread_cond_broadcast(&reg->fire_cv);
        pthread_mutex_unlock(&reg->pend_mu);
        free(w);
    }
}

int nc_registry_wait(nc_registry *reg, nc_reg_ns ns, const char *name, int64_t timeout_ms,
                     nc_reg_value *out)
{
    size_t len;
    if (!ns_ok(reg, ns) || !name_ok(name, &len))
        return MB_EINVAL;
    struct pending w;
    memset(&w, 0, sizeof(w));
    w.ns = (uint8_t)ns;
    w.tag = tag_of(hash_name(w.ns, name, len));
    w.len = len;
    memcpy(w.name, name, len);
    if (mb_cond_init_monotonic(&w.cv) != 0)
        return MB_ENOMEM;

    int rc = MB_OK;
    pthread_mutex_lock(&reg->pend_mu);
    atomic_fetch_add(&reg->npending, 1);
    /* Dekker with register: it stores the entry, fences, reads npending; we
     * bump npending, fence, read the entry. One of us sees the other. */
    atomic_thread_fence(memory_order_seq_cst);
    nc_reg_value v;
    if (nc_registry_lookup(reg, ns, name, &v) == MB_OK) {
        atomic_fetch_sub(&reg->npending, 1);
        if (out != NULL)
            *out = v;
        goto out;
    }
    list_add(&reg->pending, &w);
    struct timespec deadline = mb_deadline_in_ms(timeout_ms >= 0 ? (uint64_t)timeout_ms : 0);
    while (!w.done) {
        int e = timeout_ms >= 0 ? pthread_cond_timedwait(&w.cv, &reg->pend_mu, &deadline)
                                : pthread_cond_wait(&w.cv, &reg->pend_mu);
        if (e == ETIMEDOUT && !w.done) {
            list_del(&w);
            atomic_fetch_sub(&reg->npending, 1);
            rc = MB_ETIMEDOUT;
            break;
        }
    }
    if (w.done && out != NULL)
        *out = w.value;
out:
    pthread_mutex_unlock(&reg->pend_mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}

int nc_registry_watch(nc_registry *reg, nc_reg_ns ns, const char *name, nc_reg_watch_cb cb,
                      void *arg, uint64_t *id_out)
{
    size_t len;
    if (!ns_ok(reg, ns) || !name_ok(name, &len) || cb == NULL)
        return MB_EINVAL;
    struct pending *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return MB_ENOMEM;
    w->ns = (uint8_t)ns;
    w->tag = tag_of(hash_name(w->ns, name, len));
    w->len = len;
    memcpy(w->name, name, len);
    w->is_watch = true;
    w->cb = cb;
    w->arg = arg;

    pthread_mutex_lock(&reg->pend_mu);
    w->id = reg->next_watch_id++;
    if (id_out != NULL)
        *id_out = w->id;
    atomic_fetch_add(&reg->npending, 1);
    /* Dekker with register: it stores the entry, fences, reads npending; we
     * bump npending, fence, read the entry. One of us sees the other. */
    atomic_thread_fence(memory_order_seq_cst);
    nc_reg_value v;
    if (nc_registry_lookup(reg, ns, name, &v) == MB_OK) {
        atomic_fetch_sub(&reg->npending, 1);
        pthread_mutex_unlock(&reg->pend_mu);
        cb(arg, ns, w->name, &v);
        free(w);
        return MB_OK;
    }
    list_add(&reg->pending, w);
    pthread_mutex_unlock(&reg->pend_mu);
    return MB_OK;
}

int nc_registry_watch_cancel(nc_registry *reg, uint64_t id)
{
    int rc = MB_ENOTFOUND;
    pthread_mutex_lock(&reg->pend_mu);
    for (struct pending *p = reg->pending.next; p != &reg->pending; p = p->next) {
        if (p->is_watch && p->id == id) {
            list_del(p);
            atomic_fetch_sub(&reg->npending, 1);
            free(p);
            rc = MB_OK;
            goto out;
        }
    }
    for (;;) {
        struct pending *p;
        for (p = reg->firing.next; p != &reg->firing; p = p->next)
            if (p->id == id)
                break;
        if (p == &reg->firing || pthread_equal(p->firer, pthread_self()))
            break;
        pthread_cond_wait(&reg->fire_cv, &reg->pend_mu);
    }
out:
    pthread_mutex_unlock(&reg->pend_mu);
    return rc;
}

/* ---- selection and statistics --------------------------------------------------------- */

static bool slot_has_attrs(const struct slot *s, const nc_reg_attr *all_of, size_t n)
{
    for (size_t q = 0; q < n; q++) {
        const char *a = slot_attrs(s);
        bool found = false;
        for (unsigned k = 0; k < s->nattrs && !found; k++) {
            size_t kl = strlen(a) + 1;
            const char *v = a + kl;
            if (strcmp(a, all_of[q].key) == 0)
                found = all_of[q].value == NULL || strcmp(v, all_of[q].value) == 0;
            a = v + strlen(v) + 1;
        }
        if (!found)
            return false;
    }
    return true;
}

size_t nc_registry_select(nc_registry *reg, nc_reg_ns ns, const nc_reg_attr *all_of, size_t n,
                          nc_reg_select_cb cb, void *arg)
{
    if (!ns_ok(reg, ns) || (n > 0 && all_of == NULL))
        return 0;
    for (size_t q = 0; q < n; q++)
        if (all_of[q].key == NULL)
            return 0;
    size_t matched = 0;
    bool stop = false;
    char name[NC_REG_NAME_MAX + 1];
    for (unsigned k = 0; k < SHARDS && !stop; k++) {
        struct shard *sh = &reg->shards[k];
        pthread_rwlock_rdlock(&sh->rw);
        for (size_t i = 0; i < sh->cap && !stop; i++) {
            const struct slot *s = &sh->slots[i];
            if (s->tag == 0 || s->ns != ns || !slot_has_attrs(s, all_of, n))
                continue;
            matched++;
            if (cb != NULL) {
                memcpy(name, slot_name(s), s->name_len);
                name[s->name_len] = '\0';
                nc_reg_value v = { s->id, s->ptr };
                stop = cb(arg, name, &v) != 0;
            }
        }
        pthread_rwlock_unlock(&sh->rw);
    }
    return matched;
}

size_t nc_registry_count(nc_registry *reg, nc_reg_ns ns)
{
    size_t n = 0;
    for (unsigned k = 0; k < SHARDS; k++) {
        struct shard *sh = &reg->shards[k];
        pthread_rwlock_rdlock(&sh->rw);
        if (ns == 0) {
            n += sh->count;
        } else {
            for (size_t i = 0; i < sh->cap; i++)
                n += sh->slots[i].tag != 0 && sh->slots[i].ns == ns;
        }
        pthread_rwlock_unlock(&sh->rw);
    }
    return n;
}

void nc_registry_stats_get(nc_registry *reg, nc_registry_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned k = 0; k < SHARDS; k++) {
        struct shard *sh = &reg->shards[k];
        pthread_rwlock_rdlock(&sh->rw);
        out->entries += sh->count;
        out->slots += sh->cap;
        out->bytes_table += sh->cap * sizeof(struct slot);
        out->bytes_heap += sh->heap_bytes;
        pthread_rwlock_unlock(&sh->rw);
    }
    out->pending = atomic_load(&reg->npending);
}

void nc_registry_set_test_hook_(nc_registry *reg, void (*hook)(void *arg), void *arg)
{
    reg->test_hook = hook;
    reg->test_hook_arg = arg;
}
