/* ajw_cred.h — credentials for the key fetch: the value of a request header
 * the JWKS server demands (AuthJWKSFetchHeader) and the user and password
 * of an outbound proxy (AuthJWKSFetchProxy).
 *
 * They live in files only root may read. httpd's children run as the httpd
 * user and cannot read such a file, so httpd's parent (root) reads it: at
 * startup and again every few seconds (tokens projected into a file rotate),
 * and publishes the value in shared memory, one slot per file, which the
 * children's refresh threads read before each fetch. One writer (the
 * parent), many readers (every child): a sequence counter tells a reader
 * whether it saw a whole value.
 *
 * Nothing here logs or returns a credential in a message. */
#ifndef AJW_CRED_H
#define AJW_CRED_H

#include <sys/types.h>
#include <apr_pools.h>
#include <apr_errno.h>

#define AJW_CRED_MAX 8192           /* bytes of a credential file at most */

/* Read the credential file at path into *value (NUL-terminated, *len bytes,
 * from p; trailing spaces, tabs, CR and LF are not part of it). Refused with
 * *why (names the problem, never the content) when the file cannot be
 * opened, is not a regular file, is owned by neither root nor `owner`, has
 * any group or other permission bit, is larger than AJW_CRED_MAX, is empty,
 * or holds a byte that may not be in an HTTP header value (anything but
 * visible ASCII, space and tab). Symbolic links are followed (projected
 * tokens are links swapped by their writer); the file they reach is checked. */
apr_status_t ajw_cred_read(char **value, size_t *len, const char *path, uid_t owner,
                           const char **why, apr_pool_t *p);

/* One credential in memory shared by processes: written by one process
 * only, read by any. Zeroed memory is an empty slot. */
typedef struct ajw_cred_slot_t {
    unsigned int seq;               /* odd while the writer changes the value */
    unsigned int len;
    char value[AJW_CRED_MAX + 1];
} ajw_cred_slot_t;

/* Publish len bytes of value (at most AJW_CRED_MAX) in the slot. One
 * writer at a time: the caller guarantees it. */
void ajw_cred_slot_put(ajw_cred_slot_t *slot, const char *value, size_t len);

/* A copy of the slot's value in p, or NULL when it is empty or no whole
 * copy could be taken (the writer kept changing it). Safe in any process
 * and thread, concurrently with the writer. */
const char *ajw_cred_slot_get(ajw_cred_slot_t *slot, apr_pool_t *p);

#endif
