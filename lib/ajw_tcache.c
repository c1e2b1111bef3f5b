/* ajw_tcache.c — fixed-capacity, sharded table of verified tokens.
 *
 * Entries are immutable once adopted and shared by reference: a hit takes
 * a reference under the shard's mutex and copies nothing. An entry is one
 * allocation (fields, kid, typ) plus its claims tree. The count is a
 * C11 atomic released with release order and freed after an acquire fence,
 * so every holder's reads of the tree happen before the free (jansson's own
 * counts would not give that: its decrement has no acquire before
 * json_delete). Only the thread that drops the last reference touches the
 * tree's jansson count, by freeing it.
 *
 * Open addressing within a shard: a token's SHA-256 picks the shard and a
 * home slot there, and it may live in any of the PROBE slots from there
 * (wrapping). A put takes a matching, empty or expired slot in that window,
 * else evicts the window's oldest entry. So every operation touches at most
 * PROBE slots of one shard, and the table never grows. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <apr_thread_mutex.h>

#include "ajw_tcache.h"
#include "ajw_crypt.h"

#define PROBE 8
/* Shards for large tables: threads holding different tokens rarely meet on
 * one mutex. Small tables keep one shard (exact capacity for tests). */
#define NSHARDS 16
#define SHARD_MIN_CAPACITY 256

typedef struct item_t {
    ajw_tcache_entry_t e;        /* first: a held entry pointer is the item's */
    atomic_uint refs;
} item_t;

typedef struct slot_t {
    unsigned char hash[32];      /* SHA-256 of the token */
    long long expires;           /* seconds since the epoch */
    unsigned long long seq;      /* insertion order, for eviction */
    item_t *item;                /* NULL: empty; else one reference of the cache */
} slot_t;

typedef struct shard_t {
    apr_thread_mutex_t *mu;      /* guards everything below */
    slot_t *slots;
    size_t capacity;
    size_t count;
    unsigned long long seq;
    long long last_now;          /* latest `now` a get was called with: the caller's clock */
} shard_t;

struct ajw_tcache_t {
    shard_t *shards;             /* immutable after create */
    size_t nshards;
};

static item_t *item_of(const ajw_tcache_entry_t *e)
{
    return (item_t *)(void *)e;  /* e is the first member */
}

/* One allocation: the item, then kid and typ with their NULs. */
const ajw_tcache_entry_t *ajw_tcache_adopt(const ajw_tcache_entry_t *e)
{
    size_t klen = e->kid ? strlen(e->kid) + 1 : 0, tlen = e->typ ? strlen(e->typ) + 1 : 0;
    size_t jlen = e->claims_json ? strlen(e->claims_json) + 1 : 0;
    item_t *it = malloc(sizeof(*it) + klen + tlen + jlen);
    char *strs;
    if (!it)
        return NULL;
    it->e = *e;
    strs = (char *)(it + 1);
    it->e.kid = e->kid ? memcpy(strs, e->kid, klen) : NULL;
    it->e.typ = e->typ ? memcpy(strs + klen, e->typ, tlen) : NULL;
    it->e.claims_json = e->claims_json ? memcpy(strs + klen + tlen, e->claims_json, jlen) : NULL;
    atomic_init(&it->refs, 1);
    return &it->e;
}

const ajw_tcache_entry_t *ajw_tcache_hold(const ajw_tcache_entry_t *e)
{
    atomic_fetch_add_explicit(&item_of(e)->refs, 1, memory_order_relaxed);
    return e;
}

void ajw_tcache_release(const ajw_tcache_entry_t *e)
{
    item_t *it;
    if (!e)
        return;
    it = item_of(e);
    if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_release) != 1)
        return;
    atomic_thread_fence(memory_order_acquire);
    json_decref(it->e.claims);
    free(it);
}

static apr_status_t release_cleanup(void *data)
{
    ajw_tcache_release(data);
    return APR_SUCCESS;
}

void ajw_tcache_release_with(const ajw_tcache_entry_t *e, apr_pool_t *p)
{
    if (e)
        apr_pool_cleanup_register(p, e, release_cleanup, apr_pool_cleanup_null);
}

int ajw_tcache_key(ajw_tcache_key_t *key, const char *token, size_t len)
{
    return token ? ajw_crypt_sha256(key->hash, token, len) : -1;
}

static apr_status_t tcache_cleanup(void *data)
{
    ajw_tcache_t *tc = data;
    size_t i, j;
    for (i = 0; i < tc->nshards; i++) {
        shard_t *sh = &tc->shards[i];
        for (j = 0; j < sh->capacity; j++) {
            ajw_tcache_release(sh->slots[j].item ? &sh->slots[j].item->e : NULL);
            sh->slots[j].item = NULL;
        }
        sh->count = 0;
    }
    return APR_SUCCESS;
}

apr_status_t ajw_tcache_create(ajw_tcache_t **out, size_t capacity, apr_pool_t *p)
{
    ajw_tcache_t *tc;
    apr_status_t rv = APR_SUCCESS;
    size_t i;
    *out = NULL;
    if (capacity == 0)
        return APR_SUCCESS;
    tc = apr_pcalloc(p, sizeof(*tc));
    tc->nshards = capacity >= SHARD_MIN_CAPACITY ? NSHARDS : 1;
    tc->shards = apr_pcalloc(p, tc->nshards * sizeof(shard_t));
    for (i = 0; i < tc->nshards && rv == APR_SUCCESS; i++) {
        shard_t *sh = &tc->shards[i];
        sh->capacity = capacity / tc->nshards + (i < capacity % tc->nshards);
        sh->slots = apr_pcalloc(p, sh->capacity * sizeof(slot_t));
        rv = apr_thread_mutex_create(&sh->mu, APR_THREAD_MUTEX_DEFAULT, p);
    }
    if (rv != APR_SUCCESS)
        return rv;
    /* Registered after the mutexes: runs before they are destroyed. */
    apr_pool_cleanup_register(p, tc, tcache_cleanup, apr_pool_cleanup_null);
    *out = tc;
    return APR_SUCCESS;
}

static shard_t *shard_of(const ajw_tcache_t *tc, const unsigned char hash[32])
{
    return &tc->shards[hash[31] % tc->nshards];
}

static size_t home_slot(const shard_t *sh, const unsigned char hash[32])
{
    unsigned long long h = 0;
    int i;
    for (i = 0; i < 8; i++)
        h = (h << 8) | hash[i];
    return (size_t)(h % sh->capacity);
}

static size_t probe_len(const shard_t *sh)
{
    return sh->capacity < PROBE ? sh->capacity : PROBE;
}

/* Under sh->mu: the slot holding hash, or NULL. */
static slot_t *find_slot(shard_t *sh, const unsigned char hash[32])
{
    size_t home = home_slot(sh, hash), i;
    for (i = 0; i < probe_len(sh); i++) {
        slot_t *s = &sh->slots[(home + i) % sh->capacity];
        if (s->item && memcmp(s->hash, hash, 32) == 0)
            return s;
    }
    return NULL;
}

/* Under sh->mu: where to store hash — its own slot, an empty or expired one,
 * else the oldest in the window (evicted by the caller). */
static slot_t *pick_slot(shard_t *sh, const unsigned char hash[32], long long now)
{
    size_t home = home_slot(sh, hash), i;
    slot_t *free_slot = NULL, *oldest = NULL;
    for (i = 0; i < probe_len(sh); i++) {
        slot_t *s = &sh->slots[(home + i) % sh->capacity];
        if (s->item && memcmp(s->hash, hash, 32) == 0)
            return s;
        if (!free_slot && (!s->item || s->expires <= now))
            free_slot = s;
        if (s->item && (!oldest || s->seq < oldest->seq))
            oldest = s;
    }
    return free_slot ? free_slot : oldest;
}

int ajw_tcache_get(ajw_tcache_t *tc, const ajw_tcache_key_t *key, long long now,
                   const ajw_tcache_entry_t **hit)
{
    shard_t *sh;
    slot_t *s;
    item_t *dropped = NULL;
    int found = 0;
    *hit = NULL;
    if (!tc || !key)
        return 0;
    sh = shard_of(tc, key->hash);
    apr_thread_mutex_lock(sh->mu);
    if (now > sh->last_now)
        sh->last_now = now;
    s = find_slot(sh, key->hash);
    if (s && s->expires <= now) {
        dropped = s->item;               /* released after unlock */
        s->item = NULL;
        sh->count--;
    }
    else if (s) {
        *hit = ajw_tcache_hold(&s->item->e);
        found = 1;
    }
    apr_thread_mutex_unlock(sh->mu);
    ajw_tcache_release(dropped ? &dropped->e : NULL);
    return found;
}

void ajw_tcache_put(ajw_tcache_t *tc, const ajw_tcache_key_t *key, long long expires,
                    const ajw_tcache_entry_t *e)
{
    shard_t *sh;
    slot_t *s;
    item_t *old;
    if (!tc || !key || !e)
        return;
    ajw_tcache_hold(e);
    sh = shard_of(tc, key->hash);
    apr_thread_mutex_lock(sh->mu);
    s = pick_slot(sh, key->hash, sh->last_now);
    old = s->item;                       /* the evicted reference, released after unlock */
    if (!old)
        sh->count++;
    memcpy(s->hash, key->hash, 32);
    s->expires = expires;
    s->seq = ++sh->seq;
    s->item = item_of(e);
    apr_thread_mutex_unlock(sh->mu);
    ajw_tcache_release(old ? &old->e : NULL);
}

size_t ajw_tcache_count(ajw_tcache_t *tc)
{
    size_t i, n = 0;
    if (!tc)
        return 0;
    for (i = 0; i < tc->nshards; i++) {
        apr_thread_mutex_lock(tc->shards[i].mu);
        n += tc->shards[i].count;
        apr_thread_mutex_unlock(tc->shards[i].mu);
    }
    return n;
}
