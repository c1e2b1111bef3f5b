/* ajw_tcache.c — fixed-capacity table of verified tokens.
 *
 * The table keeps private deep copies of header and claims and hands out
 * fresh deep copies: no json_t is ever shared between threads. jansson's
 * reference counts are atomic, but its decrement is a release without an
 * acquire before json_delete, so cross-thread sharing is a data race under
 * the C memory model (ThreadSanitizer reports it). A copy of a few small
 * objects is far cheaper than the signature check the cache saves.
 *
 * Open addressing over `capacity` slots: a token's SHA-256 picks a home
 * slot, and it may live in any of the PROBE slots from there (wrapping).
 * A put takes a matching, empty or expired slot in that window, else evicts
 * the window's oldest entry. So every operation touches at most PROBE slots
 * and the table never grows. */
#include <string.h>

#include <apr_thread_mutex.h>

#include "ajw_tcache.h"
#include "ajw_crypt.h"

#define PROBE 8

typedef struct slot_t {
    int used;
    unsigned char hash[32];      /* SHA-256 of the token */
    long long expires;           /* seconds since the epoch */
    unsigned long long seq;      /* insertion order, for eviction */
    ajw_tcache_entry_t e;        /* e.header/e.claims: the cache's private copies */
} slot_t;

struct ajw_tcache_t {
    apr_thread_mutex_t *mu;      /* guards everything below */
    slot_t *slots;               /* capacity slots, from the pool given to create */
    size_t capacity;
    size_t count;
    unsigned long long seq;
    long long last_now;          /* latest `now` a get was called with: the caller's clock */
};

/* Drop a slot's copies; the caller holds mu (or is the pool cleanup). */
static void slot_clear(slot_t *s)
{
    if (!s->used)
        return;
    json_decref(s->e.header);
    json_decref(s->e.claims);
    memset(s, 0, sizeof(*s));
}

/* A private copy of v (NULL stays NULL); 0 when the copy failed. */
static int copy_json(json_t **out, const json_t *v)
{
    *out = v ? json_deep_copy(v) : NULL;
    return !v || *out;
}

/* dst = src with private copies of header and claims; 0 on failure. */
static int entry_copy(ajw_tcache_entry_t *dst, const ajw_tcache_entry_t *src)
{
    *dst = *src;
    dst->header = dst->claims = NULL;
    if (copy_json(&dst->header, src->header) && copy_json(&dst->claims, src->claims))
        return 1;
    json_decref(dst->header);
    json_decref(dst->claims);
    dst->header = dst->claims = NULL;
    return 0;
}

static apr_status_t tcache_cleanup(void *data)
{
    ajw_tcache_t *tc = data;
    size_t i;
    for (i = 0; i < tc->capacity; i++)
        slot_clear(&tc->slots[i]);
    tc->count = 0;
    return APR_SUCCESS;
}

apr_status_t ajw_tcache_create(ajw_tcache_t **out, size_t capacity, apr_pool_t *p)
{
    ajw_tcache_t *tc;
    apr_status_t rv;
    *out = NULL;
    if (capacity == 0)
        return APR_SUCCESS;
    tc = apr_pcalloc(p, sizeof(*tc));
    tc->slots = apr_pcalloc(p, capacity * sizeof(slot_t));
    tc->capacity = capacity;
    rv = apr_thread_mutex_create(&tc->mu, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS)
        return rv;
    /* Registered after the mutex: runs before the mutex is destroyed. */
    apr_pool_cleanup_register(p, tc, tcache_cleanup, apr_pool_cleanup_null);
    *out = tc;
    return APR_SUCCESS;
}

static size_t home_slot(const ajw_tcache_t *tc, const unsigned char hash[32])
{
    unsigned long long h = 0;
    int i;
    for (i = 0; i < 8; i++)
        h = (h << 8) | hash[i];
    return (size_t)(h % tc->capacity);
}

static size_t probe_len(const ajw_tcache_t *tc)
{
    return tc->capacity < PROBE ? tc->capacity : PROBE;
}

/* Under mu: the slot holding hash, or NULL. */
static slot_t *find_slot(ajw_tcache_t *tc, const unsigned char hash[32])
{
    size_t home = home_slot(tc, hash), i;
    for (i = 0; i < probe_len(tc); i++) {
        slot_t *s = &tc->slots[(home + i) % tc->capacity];
        if (s->used && memcmp(s->hash, hash, 32) == 0)
            return s;
    }
    return NULL;
}

/* Under mu: where to store hash — its own slot, an empty or expired one,
 * else the oldest in the window (evicted by the caller). */
static slot_t *pick_slot(ajw_tcache_t *tc, const unsigned char hash[32], long long now)
{
    size_t home = home_slot(tc, hash), i;
    slot_t *free_slot = NULL, *oldest = NULL;
    for (i = 0; i < probe_len(tc); i++) {
        slot_t *s = &tc->slots[(home + i) % tc->capacity];
        if (s->used && memcmp(s->hash, hash, 32) == 0)
            return s;
        if (!free_slot && (!s->used || s->expires <= now))
            free_slot = s;
        if (s->used && (!oldest || s->seq < oldest->seq))
            oldest = s;
    }
    return free_slot ? free_slot : oldest;
}

static void drop_slot(ajw_tcache_t *tc, slot_t *s)
{
    if (s->used)
        tc->count--;
    slot_clear(s);
}

int ajw_tcache_get(ajw_tcache_t *tc, const char *token, size_t len, long long now,
                   ajw_tcache_entry_t *hit)
{
    unsigned char hash[32];
    slot_t *s;
    int found = 0;
    if (!tc || !token || ajw_crypt_sha256(hash, token, len) != 0)
        return 0;
    apr_thread_mutex_lock(tc->mu);
    if (now > tc->last_now)
        tc->last_now = now;
    s = find_slot(tc, hash);
    if (s && s->expires <= now) {
        drop_slot(tc, s);
    }
    else if (s) {
        found = entry_copy(hit, &s->e);
    }
    apr_thread_mutex_unlock(tc->mu);
    return found;
}

void ajw_tcache_put(ajw_tcache_t *tc, const char *token, size_t len, long long expires,
                    const ajw_tcache_entry_t *entry)
{
    unsigned char hash[32];
    ajw_tcache_entry_t copy;
    slot_t *s, old;
    if (!tc || !token || !entry || ajw_crypt_sha256(hash, token, len) != 0)
        return;
    if (!entry_copy(&copy, entry))          /* outside the lock */
        return;
    copy.kid[sizeof(copy.kid) - 1] = '\0';
    apr_thread_mutex_lock(tc->mu);
    s = pick_slot(tc, hash, tc->last_now);
    old = *s;                               /* the evicted copies, freed after unlock */
    if (s->used)
        tc->count--;
    s->used = 1;
    memcpy(s->hash, hash, 32);
    s->expires = expires;
    s->seq = ++tc->seq;
    s->e = copy;
    tc->count++;
    apr_thread_mutex_unlock(tc->mu);
    slot_clear(&old);
}

size_t ajw_tcache_count(ajw_tcache_t *tc)
{
    size_t n;
    if (!tc)
        return 0;
    apr_thread_mutex_lock(tc->mu);
    n = tc->count;
    apr_thread_mutex_unlock(tc->mu);
    return n;
}
