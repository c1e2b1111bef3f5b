/* ajw_tcache.h — per-process cache of verified tokens, keyed by the
 * SHA-256 of the whole token, so a repeated token skips signature checks.
 * Claims are re-checked by the caller on every hit (exp, nbf, policy); the
 * cache only remembers "this exact token verified with key set generation G
 * of source S". One mutex guards the table; entries are small and the
 * critical sections are a hash probe and a copy. */
#ifndef AJW_TCACHE_H
#define AJW_TCACHE_H

#include <jansson.h>
#include <apr_pools.h>
#include "ajw_types.h"

typedef struct ajw_tcache_t ajw_tcache_t;

typedef struct ajw_tcache_entry_t {
    json_t *header;               /* on get: a new deep copy the caller must release */
    json_t *claims;               /* likewise (values are copied in and out, never shared
                                   * between threads: jansson's refcounts are not enough) */
    const void *source;           /* identity of the key source that verified it */
    unsigned long long generation;/* that source's key set generation */
    ajw_alg_e alg;
    char kid[128];                /* "" when none or too long */
} ajw_tcache_entry_t;

/* Cache of up to capacity entries in p (mutex created in p). capacity 0 →
 * *out = NULL and every call below is a no-op / miss on NULL. */
apr_status_t ajw_tcache_create(ajw_tcache_t **out, size_t capacity, apr_pool_t *p);

/* Look up token; on a hit fills *hit (with new json references) and returns
 * 1. Entries whose expiry <= now are misses (and dropped). */
int ajw_tcache_get(ajw_tcache_t *tc, const char *token, size_t len, long long now,
                   ajw_tcache_entry_t *hit);

/* Remember token until `expires` (seconds since epoch). Keeps its own deep
 * copies of entry->header/claims (the caller keeps its references). When the
 * token's probe window is full, an expired entry (by the latest `now` seen by
 * get) or else the oldest is replaced. */
void ajw_tcache_put(ajw_tcache_t *tc, const char *token, size_t len, long long expires,
                    const ajw_tcache_entry_t *entry);

/* Entries currently held (for tests and status). */
size_t ajw_tcache_count(ajw_tcache_t *tc);

#endif
