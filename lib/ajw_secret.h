/* ajw_secret.h — the secret that authenticates what the module shares
 * outside one process: a fleet key file (AuthJWKSFleetKey) read by httpd's
 * parent before it drops privileges, or a per-server key file the parent
 * makes for itself; and the keys derived from it, one per job.
 *
 * Whoever can read the secret can forge shared JWKS copies and DPoP nonces,
 * so a secret file must be private to the user that starts httpd (root):
 * owned by it (or root) and without any group/other permission bit. The
 * children never read it from disk; they inherit the derived keys by fork.
 * Nothing here logs or returns key material in a message. */
#ifndef AJW_SECRET_H
#define AJW_SECRET_H

#include <sys/types.h>
#include <apr_pools.h>
#include <apr_errno.h>

#define AJW_SECRET_MIN      32      /* bytes of secret at least */
#define AJW_SECRET_MAX      4096    /* bytes of a secret file at most */
#define AJW_KEY_LEN         32      /* bytes of each derived key */

/* The derived keys: HKDF-SHA-256 of the secret, salt "mod_auth_jwks", one
 * info label per job, so a key serves exactly one purpose. */
typedef struct ajw_keys_t {
    unsigned char record[AJW_KEY_LEN];  /* info "shared record v2": MAC of shared records */
    unsigned char nonce[AJW_KEY_LEN];   /* info "dpop nonce v1": DPoP server nonces */
    unsigned char jti[AJW_KEY_LEN];     /* info "dpop jti v1": ids of fleet replay entries */
} ajw_keys_t;

/* Read a file only its owner may read: at most max bytes of path into
 * *buf (NUL-terminated, *len bytes, from p and wiped when p is cleared;
 * trailing spaces, tabs, CR and LF are not part of it; *len may be 0).
 * Refused with *why (a short text naming the problem, never the content)
 * when the file cannot be opened, is not a regular file (symbolic links are
 * followed: the file they reach is checked), is owned by neither root nor
 * `owner`, has any group or other permission bit, or is larger than max. */
apr_status_t ajw_secret_read_private(char **buf, size_t *len, const char *path, uid_t owner,
                                     size_t max, const char **why, apr_pool_t *p);

/* Read the secret file at path into *secret (*len bytes, from p; trailing
 * spaces, tabs, CR and LF are not part of it). Refused with *why (a short
 * text naming the problem, never the content) when the file cannot be
 * opened, is not a regular file, is owned by neither root nor `owner`,
 * has any group or other permission bit, is larger than AJW_SECRET_MAX or
 * holds fewer than AJW_SECRET_MIN bytes of secret. */
apr_status_t ajw_secret_read(unsigned char **secret, size_t *len, const char *path,
                             uid_t owner, const char **why, apr_pool_t *p);

/* Read the per-server secret at path, or make it (AJW_SECRET_MIN random
 * bytes, hex, written mode 0600 to a temporary file in the same directory
 * and renamed into place, so a reader never sees half a file) when there is
 * none. The directory must be owned by root or `owner` and not writable by
 * group or others (someone else who can write there could swap the file);
 * the file must pass ajw_secret_read's checks. *made says whether it was
 * made now. Errors with *why. */
apr_status_t ajw_secret_load_or_make(unsigned char **secret, size_t *len, int *made,
                                     const char *path, uid_t owner, const char **why,
                                     apr_pool_t *p);

/* Derive every key of *keys from len bytes of secret. 0 on success; on
 * failure *keys is wiped and -1 returned. */
int ajw_keys_derive(ajw_keys_t *keys, const unsigned char *secret, size_t len);

#endif
