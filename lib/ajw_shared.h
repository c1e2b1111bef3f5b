/* ajw_shared.h — the shared second level under the per-process key sets:
 * each source's last good document, readable by every process of the server
 * and kept across restarts, plus a per-source fetch lease so that one process
 * fetches per refresh and the others take its result.
 *
 * An interface (like ajw_fetcher_t) so the glue can back it with httpd's
 * socache; lib/ implements it with files in a private directory
 * (ajw_shared_file_*). Whoever can write the store chooses our keys: the
 * file store refuses anything not private to the server's user. */
#ifndef AJW_SHARED_H
#define AJW_SHARED_H

#include <sys/types.h>
#include <apr_pools.h>
#include <apr_time.h>
#include <apr_errno.h>

/* One source's last good document. */
typedef struct ajw_shared_doc_t {
    const char *body;           /* the document as fetched, NUL-terminated, len bytes */
    size_t len;
    const char *etag;           /* ETag of that answer, NULL = none */
    apr_time_t fetched;         /* wall clock of the last successful fetch (200 or 304), > 0 */
    long long max_age;          /* the server's Cache-Control max-age, -1 = none */
} ajw_shared_doc_t;

typedef struct ajw_shared_t ajw_shared_t;
struct ajw_shared_t {
    /* Read the document of (url, ca_file; NULL = system store) into *doc
     * (allocations from p). APR_NOTFOUND when there is none; another error
     * with *why set when a record exists but is refused (wrong URL, too large
     * for max_len, bad owner or mode, malformed). Thread-safe. */
    apr_status_t (*get)(ajw_shared_t *self, const char *url, const char *ca_file,
                        size_t max_len, ajw_shared_doc_t *doc, const char **why, apr_pool_t *p);
    /* Replace the document of (url, ca_file), atomically for readers. */
    apr_status_t (*put)(ajw_shared_t *self, const char *url, const char *ca_file,
                        const ajw_shared_doc_t *doc, const char **why, apr_pool_t *p);
    /* Optional (NULL: no coordination, every process fetches). Take the fetch
     * lease of (url, ca_file) without blocking: APR_SUCCESS with *lease set,
     * *last = the start of the previous lease holder's fetch attempt (wall
     * clock, 0 = none) and `now` recorded as this attempt's start; APR_EBUSY
     * when another process or thread holds it; another error when leases do
     * not work (the caller then fetches uncoordinated). Released by unlease
     * or when p is cleared, and by the holder's exit. */
    apr_status_t (*lease)(ajw_shared_t *self, const char *url, const char *ca_file,
                          apr_time_t now, apr_time_t *last, void **lease, apr_pool_t *p);
    void (*unlease)(ajw_shared_t *self, void *lease);
    void *baton;
};

/* Create or check the file store's directory, at startup before any child
 * runs (httpd: post_config, as root). dir must be an absolute path. A missing
 * dir (its parent must exist) is made mode 0700 and, when running as root,
 * owned by uid:gid. Refused, with *why: dir or anything in it being a
 * symbolic link, not a directory (dir) or not a regular file (entries),
 * owned by someone other than uid or root, or writable by group or others. */
apr_status_t ajw_shared_file_check_dir(const char *dir, uid_t uid, gid_t gid,
                                       const char **why, apr_pool_t *p);

/* A file store over dir (httpd: after the check above, in post_config as
 * root or in child_init). Opens dir now (no symlink, not group/other
 * writable, owned by this process's euid or root unless euid is root; else
 * an error with *why) and holds it open until p is cleared (a descriptor
 * inherited by the children, so later path swaps do not matter). The
 * processes that use it must run as the directory's owner. One record file per source, <sha256-hex>.json, mode
 * 0600, written to a temporary file in dir, fsynced and renamed over the
 * old one; read with O_NOFOLLOW, refused unless a regular file owned by euid
 * or root and not group/other writable, at most 2 * max_len + 64 KiB, a
 * record (ajw_shared_record.h) MACed with key (AJW_SHARED_KEY_LEN bytes,
 * copied) naming the same url and ca_file. Leases: flock on
 * <sha256-hex>.lock (per open file, so they exclude threads of one process
 * too), which also holds the last attempt time. */
apr_status_t ajw_shared_file_create(ajw_shared_t **out, const char *dir,
                                    const unsigned char *key, const char **why,
                                    apr_pool_t *p);

/* Two stores as one (httpd: AuthJWKSCacheDir and AuthJWKSCacheSocache).
 * get reads both and returns the valid record fetched later (a tie: local's;
 * a record fetched more than 60 s in the future is refused, not newest);
 * a refusal by one side while the other has a valid record is logged (WARN,
 * through ajw_log) and the valid one returned; with no valid record, the
 * refusal (or APR_NOTFOUND when neither has one). put writes both and fails
 * (with *why naming the side) when either fails. lease/unlease are local's
 * (NULL when local has none). Both stores must outlive p's result. */
apr_status_t ajw_shared_pair_create(ajw_shared_t **out, ajw_shared_t *local,
                                    ajw_shared_t *remote, apr_pool_t *p);

#endif
