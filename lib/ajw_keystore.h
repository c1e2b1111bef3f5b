/* ajw_keystore.h — per-process key cache: URL → current key set, filled
 * and refreshed in the background by one thread per source (so a slow or
 * hung IdP never delays another source's loads, refreshes or kicks).
 *
 * Sharing: request threads only *read* a published key set through a hold
 * (ajw_source_acquire / ajw_source_release); a source's refresh thread is
 * its only writer. Each source has one small mutex guarding `current` and
 * its status; hold reference counts are atomic; a replaced key set is freed
 * when its last hold is released. Sources are added only during
 * configuration, before ajw_keystore_start, so the list needs no lock; a
 * status list slot is added then too, and only its url is set at run time
 * (ajw_keystore_bind, under the store's lock, once).
 * A source is a JWKS, a Token Status List (verified with the keys of a JWKS
 * source of the same store) or a local deny-list file (ajw_source_kind_e).
 * Scheduling and every wait use a monotonic clock: wall-clock steps stall
 * no refresh, kick or waiting request, and do not make keys stale. */
#ifndef AJW_KEYSTORE_H
#define AJW_KEYSTORE_H

#include <apr_pools.h>
#include <apr_time.h>
#include "ajw_jwk.h"
#include "ajw_fetch.h"
#include "ajw_shared.h"

typedef struct ajw_keystore_t ajw_keystore_t;
typedef struct ajw_source_t ajw_source_t;
struct ajw_statuslist_t;
struct ajw_denylist_t;

/* What a source fetches and publishes. Every kind shares the machinery
 * below (one thread each, backoff, max_stale, the shared copies, leases). */
typedef enum {
    AJW_SOURCE_JWKS = 0,              /* a JWKS → ajw_keyset_t (hold->set) */
    AJW_SOURCE_STATUS,                /* a Status List Token → ajw_statuslist_t (hold->list),
                                       * verified with the keys of conf.signer; a slot whose
                                       * url is bound at run time (ajw_keystore_bind) */
    AJW_SOURCE_DENYLIST               /* a local file:// deny-list → ajw_denylist_t (hold->deny);
                                       * read again only when its mtime or size changes;
                                       * never in the shared store */
} ajw_source_kind_e;

typedef struct ajw_source_conf_t {
    const char *url;
    const char *ca_file;              /* NULL = system trust store */
    apr_interval_time_t refresh;      /* steady-state period, default 300 s */
    apr_interval_time_t min_refresh;  /* floor between early (unknown kid) refetches, default 30 s */
    apr_interval_time_t timeout;      /* one fetch, default 10 s */
    size_t max_size;                  /* default AJW_MAX_JWKS_LEN_DEFAULT */
    apr_interval_time_t max_stale;    /* 0 (default) = unbounded. Else keys whose last
                                       * successful fetch server-wide (this process's or
                                       * the shared copy's) is older are refused
                                       * (AJW_KEYS_STALE); raised to refresh + timeout
                                       * when smaller. */
    ajw_source_kind_e kind;           /* default AJW_SOURCE_JWKS */
    ajw_source_t *signer;             /* STATUS: the JWKS source whose keys sign the lists */
    unsigned algs;                    /* STATUS: algorithms a list may use, 0 = AJW_ALGS_DEFAULT */
    /* Called by the refresh thread before each fetch (NULL = never), to add
     * what changes between fetches (credentials that rotate) or is set per
     * URL (proxy): it may set req->headers, proxy, proxy_user and
     * proxy_password, allocating from p (cleared after the fetch). */
    void (*prepare)(void *baton, ajw_fetch_req_t *req, apr_pool_t *p);
    void *prepare_baton;
} ajw_source_conf_t;

/* A read-only view of a published key set, valid until released. */
typedef struct ajw_keyhold_t {
    const ajw_keyset_t *set;          /* JWKS sources; NULL for the other kinds */
    const struct ajw_statuslist_t *list;   /* STATUS sources, else NULL */
    const struct ajw_denylist_t *deny;     /* DENYLIST sources, else NULL */
    unsigned long long generation;    /* increases each time new keys are published */
    ajw_source_t *src;
    volatile apr_uint32_t refs;       /* atomic (apr_atomic_*): the source's + each holder's */
} ajw_keyhold_t;

typedef struct ajw_source_status_t {
    int loaded;                       /* keys were published at least once */
    int nkeys;                        /* keys; list entries (STATUS); entries (DENYLIST) */
    unsigned long long generation;
    apr_time_t last_success;          /* 0 = never */
    apr_time_t last_attempt;
    apr_time_t next_attempt;
    unsigned failures;                /* consecutive */
    char last_error[200];             /* empty when the last attempt succeeded */
    apr_time_t fetched;               /* newest successful fetch server-wide (this process's
                                       * or the shared copy's), wall clock; 0 = never */
    int stale;                        /* keys loaded but older than max_stale: refused */
    int from_shared;                  /* the published keys were taken from the shared copy */
} ajw_source_status_t;

/* Why ajw_source_acquire_ex gave no keys. */
typedef enum {
    AJW_KEYS_OK = 0,                  /* a hold was returned */
    AJW_KEYS_NONE,                    /* never loaded (or not started): 503 */
    AJW_KEYS_STALE                    /* loaded, but older than max_stale: 503 */
} ajw_keys_state_e;

/* What ajw_source_refresh_wait saw. */
typedef enum {
    AJW_REFRESH_NEWER = 0,            /* keys newer than the caller's are published: re-acquire */
    AJW_REFRESH_SAME,                 /* a refresh ended, no newer keys */
    AJW_REFRESH_LIMITED,              /* no wait: the rate limit refused and nothing is in
                                       * flight, or enough callers wait for the attempt */
    AJW_REFRESH_TIMEOUT               /* the refresh did not end within the wait */
} ajw_refresh_e;

/* Fill conf with defaults (url and ca_file NULL). */
void ajw_source_conf_init(ajw_source_conf_t *conf);

/* New, empty, not started store in p (config phase). */
apr_status_t ajw_keystore_create(ajw_keystore_t **out, apr_pool_t *p);

/* Register a source (config phase only; not thread-safe). The same kind,
 * url and ca_file give the same source back; the shorter refresh and min_refresh
 * win (timeout and max_size: the first registration's), and the smallest
 * non-zero max_stale. Values <= 0 take the defaults (max_stale: 0, unbounded);
 * min_refresh is capped at refresh. No locks or threads are made
 * here, so the store may be created before a fork and started after it. */
ajw_source_t *ajw_keystore_add(ajw_keystore_t *ks, const ajw_source_conf_t *conf);

/* Register a status list slot (config phase only; conf->kind must be
 * AJW_SOURCE_STATUS with conf->signer set; conf->url is ignored). A slot is
 * never shared with another registration, starts unbound (its thread
 * sleeps, acquire gives NULL at once) and is bound to one uri at run time by
 * ajw_keystore_bind. NULL when conf is not a status conf. */
ajw_source_t *ajw_keystore_add_slot(ajw_keystore_t *ks, const ajw_source_conf_t *conf);

/* The slot of slots[0..n-1] bound to url, or else a free one bound to it
 * now (its first fetch starts at once); for request threads after start.
 * NULL when every slot is bound to another url (*full = 1), or before start,
 * or for a url over AJW_SOURCE_URL_MAX bytes (*full = 0). A slot stays bound
 * until the store stops. The caller checks that url may be fetched: bind
 * trusts it. One lock (the store's), no I/O. Its shared copy is named
 * "statuslist:" url, so it can never be taken for a JWKS record. */
#define AJW_SOURCE_URL_MAX 1024
ajw_source_t *ajw_keystore_bind(ajw_source_t *const *slots, int n, const char *url, int *full);

/* Put the shared second level under the store (NULL = none, the default:
 * every process fetches for itself, as before). Call before start, in the
 * config phase or child_init; sh must live as long as the store. With it:
 *  - each attempt first reads the shared copy. A copy newer than what this
 *    process knows (and within max_stale) is published at once, without
 *    network I/O (so a child starting while the IdP is down has keys). If it
 *    was fetched within the refresh period (max-age bounded as above) — for
 *    an early (kicked) attempt: within min_refresh — nothing is fetched and
 *    the next refresh is due relative to the copy's fetch time;
 *  - otherwise the process takes the source's lease and fetches; a process
 *    that finds the lease held waits (polling every 20 ms, at most timeout +
 *    1 s) for the holder, then takes its copy if newer (else fetches itself).
 *    An early attempt is dropped when the lease's last attempt (any
 *    process's) started less than min_refresh ago: kicks are rate-limited
 *    per server, not per process;
 *  - every successful fetch (200, or 304 with the kept body) writes the copy.
 * Logs: a refused shared copy WARN and a failed write WARN (once until it
 * works again); taking the copy INFO at first load ("loaded N keys from URL
 * (shared copy, fetched S s ago)"), DEBUG otherwise; fetch outcomes as below,
 * only in the process that fetched. Returns APR_EINVAL after start. */
apr_status_t ajw_keystore_set_shared(ajw_keystore_t *ks, ajw_shared_t *sh);

/* Start one refresh thread per source with fetcher f (which must allow
 * concurrent calls); every source's first load starts at once. All or
 * nothing: if a thread cannot be made, none runs. Registers a cleanup on
 * pchild that stops and joins the threads. Call once per process, after
 * fork (httpd: child_init).
 * Schedule: after a success, `refresh`, or the server's Cache-Control
 * max-age clamped to [min_refresh, refresh] (no-cache → min_refresh,
 * no-store → refresh), counted from the document's fetch time, plus 0-10%
 * jitter. After n consecutive failures: 1 s, 2 s, 4 s, ...
 * capped at min(refresh, 60 s), ±20% jitter; the previous keys stay
 * published. A 200 whose body is byte-identical to the published document,
 * or a 304, keeps the set and its generation. A document that does not
 * parse or has no usable key is a failure.
 * Logs (ajw_log): first load NOTICE "loaded N keys from URL" ("N entries"
 * for status lists and deny-lists); key change
 * INFO; recovery after failures INFO; failure ERR while nothing was ever
 * loaded, WARN after; skipped-key notes WARN once per new document;
 * unchanged DEBUG; keys becoming stale (max_stale) ERR "keys of URL are
 * stale: ..." once, fresh again INFO. Returns APR_EINVAL when already started.
 * The pchild cleanup also drops the source's references to the published
 * sets; a hold still taken keeps its set alive and may be released later
 * (release takes no lock). After it, start may be called again. */
apr_status_t ajw_keystore_start(ajw_keystore_t *ks, ajw_fetcher_t *f, apr_pool_t *pchild);

/* Stop and join the threads (idempotent; also run by the pchild cleanup).
 * An in-flight fetch is cancelled through ajw_fetch_req_t.cancelled (the
 * curl fetcher notices within about a second). Published keys stay readable. */
void ajw_keystore_stop(ajw_keystore_t *ks);

/* Hold the current key set of src. When none was ever loaded, wait up to
 * `wait` for the first load; returns NULL if there is still none. Never
 * does network I/O. Release every non-NULL hold.
 * The wait ends early when the attempt it waited for fails; and when an
 * attempt already failed and none is running (the IdP is down, a retry is
 * scheduled) it returns NULL at once, so request threads do not pile up
 * during an outage. Before start, or after stop: NULL at once when empty. */
ajw_keyhold_t *ajw_source_acquire(ajw_source_t *src, apr_interval_time_t wait);
void ajw_source_release(ajw_keyhold_t *hold);

/* ajw_source_acquire, also telling why there is no hold: *state (may be
 * NULL) is AJW_KEYS_OK with a hold, else AJW_KEYS_NONE (never loaded) or
 * AJW_KEYS_STALE (older than max_stale; waits only for an attempt already
 * running). Both acquire functions refuse stale keys. */
ajw_keyhold_t *ajw_source_acquire_ex(ajw_source_t *src, apr_interval_time_t wait,
                                     ajw_keys_state_e *state);

/* Ask for an early refresh (a token named an unknown kid). Rate-limited:
 * ignored when the last fetch of src started less than min_refresh ago.
 * Cheap (one lock, no I/O); a no-op before start. A kick during a fetch of
 * src is remembered (when allowed by the limit) and runs right after it. */
void ajw_source_kick(ajw_source_t *src);

/* For a request thread whose token names a kid that its hold (of
 * `generation`) lacks. Returns NEWER at once when newer keys are already
 * published. Else kicks (rate-limited as above); when that kick was taken or
 * an attempt is running, waits up to `wait` for the attempt that serves it
 * to end (concurrent callers wait for the same one) and says whether newer
 * keys were published (NEWER: release, re-acquire, verify again). Only the
 * first few callers (4 per process, the one whose kick was taken among
 * them) wait for any one attempt; the others, and a kick refused by the rate
 * limit with nothing in flight, return LIMITED at once, so a flood of random
 * kids costs neither fetches nor parked threads, even while a fetch hangs.
 * No I/O. */
ajw_refresh_e ajw_source_refresh_wait(ajw_source_t *src, unsigned long long generation,
                                      apr_interval_time_t wait);

const char *ajw_source_url(const ajw_source_t *src);
void ajw_source_get_status(ajw_source_t *src, ajw_source_status_t *st);

#endif
