/* ajw_tcache.c — fixed-capacity, sharded table of verified tokens.
 *
 * Entries are immutable once adopted and shared by reference: a hit takes
 * a reference under the shard's mutex and copies nothing. An entry is one
 * allocation: fields, claims document, kid, typ, token, rendering. The
 * count is a C11 atomic released with release order and freed after an
 * acquire fence, so every holder's reads happen before the free.
 *
 * Open addressing within a shard: a token's SHA-256 picks the shard and a
 * home slot there, and it may live in any of the PROBE slots from there
 * (wrapping). A put takes a matching, empty or expired slot in that window,
 * else evicts the window's oldest entry. So every operation touches at most
 * PROBE slots of one shard, and the table never grows. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
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

/* One allocation: the item, then the claims document, kid and typ with
 * their NULs, the token's bytes and the rendering. */
const ajw_tcache_entry_t *ajw_tcache_adopt(const ajw_tcache_entry_t *e)
{
    size_t clen = e->claims ? e->claims_size : 0;
    size_t klen = e->kid ? strlen(e->kid) + 1 : 0, tlen = e->typ ? strlen(e->typ) + 1 : 0;
    size_t nlen = e->token ? e->token_len : 0, rlen = e->render ? e->render_len : 0;
    item_t *it = malloc(sizeof(*it) + clen + klen + tlen + nlen + rlen);
    char *strs;
    if (!it)
        return NULL;
    it->e = *e;
    strs = (char *)(it + 1);
    it->e.claims = e->claims ? memcpy(strs, e->claims, clen) : NULL;
    it->e.claims_size = clen;
    strs += clen;
    it->e.kid = e->kid ? memcpy(strs, e->kid, klen) : NULL;
    it->e.typ = e->typ ? memcpy(strs + klen, e->typ, tlen) : NULL;
    it->e.token = e->token ? memcpy(strs + klen + tlen, e->token, nlen) : NULL;
    it->e.token_len = nlen;
    it->e.render = e->render ? memcpy(strs + klen + tlen + nlen, e->render, rlen) : NULL;
    it->e.render_len = rlen;
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

/* SipHash-1-3 (Aumasson and Bernstein's SipHash with one compression and
 * three finalisation rounds), 128-bit output: a keyed hash fast enough for
 * every request (a SHA-256 of a 700-byte token is ~20k instructions on
 * OpenSSL's generic path), with a key no client knows, so no client can
 * aim tokens at one slot. It only spreads the table: a hit still compares
 * the whole token. */
#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
    } while (0)

static uint64_t le64(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, sizeof(v));     /* one load */
    return v;
#else
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
#endif
}

static void siphash128(unsigned char out[16], const uint64_t k[2], const unsigned char *in,
                       size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ k[0], v1 = 0x646f72616e646f83ULL ^ k[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ k[0], v3 = 0x7465646279746573ULL ^ k[1];
    uint64_t m, b = (uint64_t)len << 56;
    const unsigned char *end = in + (len & ~(size_t)7);
    size_t left = len & 7, i;
    for (; in != end; in += 8) {
        m = le64(in);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    for (i = 0; i < left; i++)
        b |= (uint64_t)in[i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xee;
    SIPROUND; SIPROUND; SIPROUND;
    b = v0 ^ v1 ^ v2 ^ v3;
    for (i = 0; i < 8; i++)
        out[i] = (unsigned char)(b >> (8 * i));
    v1 ^= 0xdd;
    SIPROUND; SIPROUND; SIPROUND;
    b = v0 ^ v1 ^ v2 ^ v3;
    for (i = 0; i < 8; i++)
        out[8 + i] = (unsigned char)(b >> (8 * i));
}

/* The process's hash key: random, made once, read-only after. */
static uint64_t hash_key[2];
static int hash_key_ok;
static pthread_once_t hash_key_once = PTHREAD_ONCE_INIT;

static void hash_key_init(void)
{
    unsigned char rnd[16];
    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS)
        return;
    hash_key[0] = le64(rnd);
    hash_key[1] = le64(rnd + 8);
    memset(rnd, 0, sizeof(rnd));
    hash_key_ok = 1;
}

/* A 32-byte key from a 128-bit hash: shard and slot read the last bytes. */
static void spread(unsigned char out[32])
{
    int i;
    for (i = 0; i < 16; i++)
        out[16 + i] = out[15 - i];
}

#define KEY_HEAD 32
#define KEY_TAIL 64

int ajw_tcache_key(ajw_tcache_key_t *key, const char *token, size_t len)
{
    const unsigned char *t = (const unsigned char *)token;
    pthread_once(&hash_key_once, hash_key_init);
    if (!token || !hash_key_ok)
        return -1;
    key->token = token;
    key->len = len;
    key->full_made = 0;
    if (len <= 8 + KEY_HEAD + KEY_TAIL) {
        siphash128(key->hash, hash_key, t, len);     /* the whole token */
    }
    else {
        unsigned char buf[8 + KEY_HEAD + KEY_TAIL];
        uint64_t l = (uint64_t)len;
        memcpy(buf, &l, 8);
        memcpy(buf + 8, t, KEY_HEAD);
        memcpy(buf + 8 + KEY_HEAD, t + len - KEY_TAIL, KEY_TAIL);
        siphash128(key->hash, hash_key, buf, sizeof(buf));
    }
    spread(key->hash);
    return 0;
}

const unsigned char *ajw_tcache_key_digest(ajw_tcache_key_t *key)
{
    if (!key->full_made) {
        /* a second key: the digest is never the short key's hash */
        uint64_t k2[2];
        k2[0] = hash_key[0] ^ 0x5bd1e9955bd1e995ULL;
        k2[1] = hash_key[1] ^ 0x9e3779b97f4a7c15ULL;
        siphash128(key->full, k2, (const unsigned char *)key->token, key->len);
        spread(key->full);
        key->full_made = 1;
    }
    return key->full;
}

static int same_token(const slot_t *s, const ajw_tcache_key_t *key)
{
    return s->item->e.token_len == key->len && s->item->e.token
           && !memcmp(s->item->e.token, key->token, key->len);
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

/* Under sh->mu: the slot holding key's token, or NULL. */
static slot_t *find_slot(shard_t *sh, const ajw_tcache_key_t *key)
{
    size_t home = home_slot(sh, key->hash), i;
    for (i = 0; i < probe_len(sh); i++) {
        slot_t *s = &sh->slots[(home + i) % sh->capacity];
        if (s->item && memcmp(s->hash, key->hash, 32) == 0 && same_token(s, key))
            return s;
    }
    return NULL;
}

/* Under sh->mu: where to store hash — its own slot, an empty or expired one,
 * else the oldest in the window (evicted by the caller). */
static slot_t *pick_slot(shard_t *sh, const ajw_tcache_key_t *key, long long now)
{
    size_t home = home_slot(sh, key->hash), i;
    slot_t *free_slot = NULL, *oldest = NULL;
    for (i = 0; i < probe_len(sh); i++) {
        slot_t *s = &sh->slots[(home + i) % sh->capacity];
        if (s->item && memcmp(s->hash, key->hash, 32) == 0 && same_token(s, key))
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
    s = find_slot(sh, key);
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
    if (!tc || !key || !e || !e->token || e->token_len != key->len
        || memcmp(e->token, key->token, key->len))
        return;                          /* an entry only ever under its own token */
    ajw_tcache_hold(e);
    sh = shard_of(tc, key->hash);
    apr_thread_mutex_lock(sh->mu);
    s = pick_slot(sh, key, sh->last_now);
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
