/* ajw_refcache.c — fixed-capacity, sharded table of refusals (see the
 * header). Open addressing within a shard, as in ajw_tcache: the hash picks
 * the shard and a home slot, an entry lives in one of the PROBE slots from
 * there (wrapping), so every call touches at most PROBE slots of one shard. */
#include <string.h>

#include <apr_thread_mutex.h>

#include "ajw_refcache.h"

#define PROBE 8
#define NSHARDS 16
#define SHARD_MIN_CAPACITY 256

typedef struct slot_t {
    unsigned char hash[32];
    long long expires;            /* 0: empty */
    unsigned long long seq;       /* insertion order, for eviction */
    ajw_refusal_t rf;
} slot_t;

typedef struct shard_t {
    apr_thread_mutex_t *mu;       /* guards everything below */
    slot_t *slots;
    size_t capacity;
    size_t count;
    unsigned long long seq;
} shard_t;

struct ajw_refcache_t {
    shard_t *shards;              /* immutable after create */
    size_t nshards;
};

apr_status_t ajw_refcache_create(ajw_refcache_t **out, size_t capacity, apr_pool_t *p)
{
    ajw_refcache_t *rc;
    size_t i, n;
    apr_status_t rv;
    *out = NULL;
    if (capacity == 0)
        return APR_SUCCESS;
    n = capacity >= SHARD_MIN_CAPACITY * NSHARDS ? NSHARDS : 1;
    rc = apr_pcalloc(p, sizeof(*rc));
    rc->nshards = n;
    rc->shards = apr_pcalloc(p, sizeof(shard_t) * n);
    for (i = 0; i < n; i++) {
        shard_t *sh = &rc->shards[i];
        sh->capacity = capacity / n + (i < capacity % n);
        sh->slots = apr_pcalloc(p, sizeof(slot_t) * sh->capacity);
        if ((rv = apr_thread_mutex_create(&sh->mu, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS)
            return rv;
    }
    *out = rc;
    return APR_SUCCESS;
}

/* Copy s into a buffer of size n, cut to fit; *has says whether s was set. */
static void copy_cut(char *dst, size_t n, unsigned char *has, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    if (has)
        *has = s != NULL;
    if (len >= n)
        len = n - 1;
    if (len)
        memcpy(dst, s, len);
    dst[len] = '\0';
}

void ajw_refusal_fill(ajw_refusal_t *rf, const void *source, unsigned long long generation,
                      int code, const char *text, const char *alg, const char *kid,
                      const char *iss)
{
    memset(rf, 0, sizeof(*rf));
    rf->source = source;
    rf->generation = generation;
    rf->code = code;
    copy_cut(rf->text, sizeof(rf->text), NULL, text);
    copy_cut(rf->alg, sizeof(rf->alg), &rf->has_alg, alg);
    copy_cut(rf->kid, sizeof(rf->kid), &rf->has_kid, kid);
    copy_cut(rf->iss, sizeof(rf->iss), &rf->has_iss, iss);
}

/* The hash's shard and home slot there: bytes of a SHA-256 are uniform. */
static shard_t *shard_of(ajw_refcache_t *rc, const unsigned char *hash, size_t *home)
{
    size_t h = 0, i;
    shard_t *sh;
    for (i = 0; i < sizeof(size_t); i++)
        h = (h << 8) | hash[i];
    sh = &rc->shards[hash[31] % rc->nshards];
    *home = h % sh->capacity;
    return sh;
}

static void drop(shard_t *sh, slot_t *s)
{
    s->expires = 0;
    sh->count--;
}

int ajw_refcache_get(ajw_refcache_t *rc, const unsigned char *hash, long long now,
                     ajw_refusal_t *out)
{
    shard_t *sh;
    size_t home, i;
    int hit = 0;
    if (!rc)
        return 0;
    sh = shard_of(rc, hash, &home);
    apr_thread_mutex_lock(sh->mu);
    for (i = 0; i < PROBE && i < sh->capacity; i++) {
        slot_t *s = &sh->slots[(home + i) % sh->capacity];
        if (!s->expires || memcmp(s->hash, hash, 32))
            continue;
        if (s->expires <= now)
            drop(sh, s);
        else {
            *out = s->rf;
            hit = 1;
        }
        break;
    }
    apr_thread_mutex_unlock(sh->mu);
    return hit;
}

void ajw_refcache_put(ajw_refcache_t *rc, const unsigned char *hash, long long expires,
                      const ajw_refusal_t *rf)
{
    shard_t *sh;
    slot_t *pick = NULL;
    size_t home, i;
    if (!rc)
        return;
    sh = shard_of(rc, hash, &home);
    apr_thread_mutex_lock(sh->mu);
    for (i = 0; i < PROBE && i < sh->capacity; i++) {
        slot_t *s = &sh->slots[(home + i) % sh->capacity];
        if (s->expires && !memcmp(s->hash, hash, 32)) {
            pick = s;                 /* the same token: refresh it */
            break;
        }
        if (!pick || (pick->expires && (!s->expires || s->seq < pick->seq)))
            pick = s;                 /* the first empty slot, else the oldest */
    }
    if (!pick->expires)
        sh->count++;
    memcpy(pick->hash, hash, 32);
    pick->expires = expires;
    pick->seq = ++sh->seq;
    pick->rf = *rf;
    apr_thread_mutex_unlock(sh->mu);
}

size_t ajw_refcache_count(ajw_refcache_t *rc)
{
    size_t i, n = 0;
    if (!rc)
        return 0;
    for (i = 0; i < rc->nshards; i++) {
        apr_thread_mutex_lock(rc->shards[i].mu);
        n += rc->shards[i].count;
        apr_thread_mutex_unlock(rc->shards[i].mu);
    }
    return n;
}
