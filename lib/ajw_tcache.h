/* ajw_tcache.h — per-process cache of verified tokens, keyed by the
 * SHA-256 of the whole token, so a repeated token skips signature checks.
 * Claims are re-checked by the caller on every hit (exp, nbf, policy); the
 * cache only remembers "this exact token verified with key set generation G
 * of source S", with what a hit reads of its header and claims.
 *
 * Ownership: a verified token is an immutable, reference-counted entry
 * (ajw_tcache_adopt), one allocation holding the entry, the token, the
 * claims as a flat document (ajw_doc.h) and the rendering. The cache holds
 * one reference per slot, and each request that uses it holds one more;
 * everything inside is shared read-only by every holder and freed with the
 * last reference, so a hit copies nothing. An entry keeps no header tree
 * (alg, kid and typ only) and no claims tree: a jansson tree of nine
 * claims alone costs ~2.4 KB, their document ~0.3 KB. The table is split in
 * shards, each under its own mutex, whose critical sections are a hash
 * probe and a reference count increment. */
#ifndef AJW_TCACHE_H
#define AJW_TCACHE_H

#include "ajw_doc.h"
#include <apr_pools.h>
#include "ajw_types.h"

typedef struct ajw_tcache_t ajw_tcache_t;

typedef struct ajw_tcache_entry_t {
    const ajw_val_t *claims;      /* the claims document (root), claims_size bytes; in a
                                   * held entry: its copy, immutable, shared, read only */
    size_t claims_size;
    const char *kid;              /* header kid, NULL when none; in a held entry: its copy */
    const char *typ;              /* header typ, NULL when none; likewise. alg, kid and typ
                                   * are all a cached token needs of its header: crit and
                                   * b64 never pass parsing, other members are not used */
    const void *source;           /* identity of the key source that verified it */
    unsigned long long generation;/* that source's key set generation */
    ajw_alg_e alg;
    const char *render;           /* opaque bytes the caller rendered once for every hit
                                   * (the glue: what it exports), NULL when none; in a
                                   * held entry: its copy */
    size_t render_len;
    const char *token;            /* the token's bytes: set by ajw_tcache_put (a held entry
                                   * stored under a key keeps that key's token) */
    size_t token_len;
} ajw_tcache_entry_t;

/* The cache key of a token: a keyed hash (SipHash-1-3 with a random
 * per-process key, so no client can aim tokens at one slot) of its length,
 * its first 32 and its last 64 bytes — the signature, which only the
 * issuer can make: every token the cache holds verified, so no two of them
 * share those bytes by a client's choice — and the token itself, which a
 * hit must match byte for byte: a hash collision can never hand one token
 * another's verification. The caller keeps token[0..len) alive while it
 * uses the key. full is a keyed hash of every byte, made on demand
 * (ajw_tcache_key_digest) for the refusal cache, which holds tokens that
 * did not verify and compares hashes only. */
typedef struct ajw_tcache_key_t {
    unsigned char hash[32];
    const char *token;
    size_t len;
    unsigned char full[32];
    int full_made;
} ajw_tcache_key_t;

/* Cache of up to capacity entries in p (mutexes created in p). capacity 0 →
 * *out = NULL and every call below is a no-op / miss on NULL. */
apr_status_t ajw_tcache_create(ajw_tcache_t **out, size_t capacity, apr_pool_t *p);

/* The keyed hash of every byte of key's token (32 bytes, made once). */
const unsigned char *ajw_tcache_key_digest(ajw_tcache_key_t *key);

/* key = the cache key of token[0..len) (the token is referenced, not
 * copied). 0 on success, -1 when token is NULL or the process has no hash
 * key (no random bytes). */
int ajw_tcache_key(ajw_tcache_key_t *key, const char *token, size_t len);

/* A new held entry (one reference, the caller's) with e's fields and its
 * own copies of e->kid, e->typ, e->claims[0..claims_size),
 * e->render[0..render_len) and e->token[0..token_len). NULL when out of
 * memory. */
const ajw_tcache_entry_t *ajw_tcache_adopt(const ajw_tcache_entry_t *e);

/* Another reference to a held entry; returns e. */
const ajw_tcache_entry_t *ajw_tcache_hold(const ajw_tcache_entry_t *e);

/* Drop one reference; the last frees the entry and its claims. NULL is a no-op. */
void ajw_tcache_release(const ajw_tcache_entry_t *e);

/* Drop one reference of e when p is cleared (a request's hold). */
void ajw_tcache_release_with(const ajw_tcache_entry_t *e, apr_pool_t *p);

/* Look up key; on a hit *hit is a held entry (the caller releases it) and 1
 * is returned. Entries whose expiry <= now are misses (and dropped). */
int ajw_tcache_get(ajw_tcache_t *tc, const ajw_tcache_key_t *key, long long now,
                   const ajw_tcache_entry_t **hit);

/* Remember the held entry e under key until `expires` (seconds since the
 * epoch); the cache takes its own reference (the caller keeps its). e must
 * hold key's token (adopted with e->token = key->token): a hit compares it. When the
 * key's probe window is full, an expired entry (by the latest `now` seen by
 * get) or else the oldest is replaced. */
void ajw_tcache_put(ajw_tcache_t *tc, const ajw_tcache_key_t *key, long long expires,
                    const ajw_tcache_entry_t *e);

/* Entries currently held (for tests and status). */
size_t ajw_tcache_count(ajw_tcache_t *tc);

#endif
