/* ajw_denylist.h — the operator's deny-list of tokens (AuthJWKSRevoked): a
 * text file of entries, one a line:
 *   jti:<value>    refuse tokens whose jti claim is <value>
 *   sub:<value>    refuse tokens whose sub claim is <value>
 *   kid:<value>    refuse tokens signed with the key <value> (header kid)
 * The value is every byte after the first ':' up to the end of the line (a
 * trailing CR and trailing blanks are dropped; it is compared exactly, case
 * included). Blank lines and lines starting with '#' are ignored. Anything
 * else refuses the whole file (the caller keeps the previous list). */
#ifndef AJW_DENYLIST_H
#define AJW_DENYLIST_H

#include <apr_pools.h>
#include <apr_hash.h>
#include <apr_errno.h>

#define AJW_DENYLIST_MAX_BYTES  (8u * 1024u * 1024u)   /* of the file */
#define AJW_DENYLIST_VALUE_MAX  1024                  /* bytes of one value */

typedef struct ajw_denylist_t {
    apr_pool_t *pool;             /* owns the list; unmanaged when made with parent NULL */
    apr_hash_t *entries;          /* "jti:v", "sub:v", "kid:v" → non-NULL; read-only once made */
    int count;                    /* distinct entries */
} ajw_denylist_t;

/* Parse len bytes of buf into *out, a new list whose pool is a child of
 * parent (NULL: unmanaged, free with ajw_denylist_free). APR_EINVAL with
 * *why (static or from p, naming the line number, never a value) for a
 * line that is not an entry, an empty or over-long value, a NUL byte, or
 * len over AJW_DENYLIST_MAX_BYTES. An empty file is an empty list. */
apr_status_t ajw_denylist_parse(ajw_denylist_t **out, const char *buf, size_t len,
                                apr_pool_t *parent, const char **why, apr_pool_t *p);

/* 1 when the list holds kind ("jti", "sub" or "kid") with value (len
 * bytes); 0 otherwise, and for a NULL list or value. Thread-safe on a
 * published list (lookups only). */
int ajw_denylist_has(const ajw_denylist_t *d, const char *kind, const char *value, size_t len);

/* Destroy a list and its pool (NULL is fine). */
void ajw_denylist_free(ajw_denylist_t *d);

#endif
