/* ajw_refcache.h — per-process cache of refusals that cannot change: "this
 * exact token (SHA-256 of its bytes) failed its signature check under key
 * set generation G of source S". A token sent again is refused without a
 * parse or a signature check, as long as S still holds generation G (a
 * rotation makes every entry of S unusable at once, so a token the new keys
 * verify is verified again).
 *
 * Entries are fixed-size copies (no pointer into a request, nothing sized
 * by the token), so the table's memory is capacity * sizeof(slot), whatever
 * a flood sends. Split in shards, each under its own mutex; a lookup copies
 * the entry out under the lock and keeps nothing. */
#ifndef AJW_REFCACHE_H
#define AJW_REFCACHE_H

#include <apr_pools.h>

#define AJW_REFCACHE_ITEM 82      /* kid, iss: 81 bytes (one more than a log item
                                   * shows, so it is still cut with "...") + NUL */
#define AJW_REFCACHE_TEXT 120     /* the reason text, cut to fit */

typedef struct ajw_refusal_t {
    const void *source;           /* identity of the key source that refused it */
    unsigned long long generation;/* that source's key set generation */
    int code;                     /* the reason (ajw_reason_e) */
    char alg[24];                 /* header alg, kid and iss for the log line */
    char kid[AJW_REFCACHE_ITEM];  /* "" when the token had none (see has_kid) */
    char iss[AJW_REFCACHE_ITEM];
    char text[AJW_REFCACHE_TEXT];
    unsigned char has_alg, has_kid, has_iss;
} ajw_refusal_t;

typedef struct ajw_refcache_t ajw_refcache_t;

/* A cache of up to capacity refusals in p (mutexes in p). capacity 0 →
 * *out = NULL, and get/put on NULL are a miss / a no-op. */
apr_status_t ajw_refcache_create(ajw_refcache_t **out, size_t capacity, apr_pool_t *p);

/* Fill rf: code, text, alg, kid and iss copied and cut to fit (NULL: none). */
void ajw_refusal_fill(ajw_refusal_t *rf, const void *source, unsigned long long generation,
                      int code, const char *text, const char *alg, const char *kid,
                      const char *iss);

/* Look up hash (32 bytes); on a hit *out gets a copy and 1 is returned.
 * Entries whose expiry <= now are misses (and dropped). */
int ajw_refcache_get(ajw_refcache_t *rc, const unsigned char *hash, long long now,
                     ajw_refusal_t *out);

/* Remember rf under hash until `expires` (seconds since the epoch). When the
 * hash's probe window is full, the oldest entry there is replaced: the table never grows. */
void ajw_refcache_put(ajw_refcache_t *rc, const unsigned char *hash, long long expires,
                      const ajw_refusal_t *rf);

/* Entries currently held (for tests). */
size_t ajw_refcache_count(ajw_refcache_t *rc);

#endif
