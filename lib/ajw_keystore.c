/* ajw_keystore.c — URL → current key set, refreshed by one background thread.
 *
 * Threads: one refresh thread per source, so a hung or slow IdP (a fetch may
 * take up to its timeout, 300 s at most) never delays the first load, the
 * refreshes or the kicks of another source.
 *
 * Shared level (optional, ks->shared): each attempt reads the source's shared
 * copy first and fetches only when no other process fetched recently enough,
 * under a per-source lease (see ajw_keystore_set_shared). Only the source's
 * thread touches the shared store.
 *
 * Locks (pthread mutexes; never nested: no code path holds two of them at once):
 *  - ks->mu     the refresh threads' sleep: stop flag, kick flags, kick rate limit,
 *               attempts begun and whether one runs (for ajw_source_refresh_wait).
 *  - src->mu    one per source: the published hold, status, attempt counters.
 * Hold reference counts are atomic: acquire increments under src->mu (so the
 * hold cannot be unpublished and freed in between), release only decrements,
 * without a lock, so a hold may even be released after the pchild cleanup.
 * Everything else a thread touches is its source's own ("source thread only").
 *
 * Clocks: scheduling (next refresh, kick rate limit, acquire's wait) and the
 * condition-variable waits use the monotonic clock, so stepping the wall
 * clock back or forth, even during a wait, neither stalls refreshes, kicks
 * and waiting requests for the size of the step nor makes them fire early.
 * apr_time_now() (wall clock) is used for the status timestamps and the
 * shared copies' fetch times and leases, which other processes read; there
 * a step back is harmless too: this process's own fetch counts as the newest
 * (staleness runs from it on the monotonic clock), and a lease stamped in
 * the future does not rate-limit early refreshes.
 *
 * Lifetimes: the store and its sources live in the configuration pool
 * (created before httpd forks, copied into each child). Mutexes, condition
 * variables and the thread are made by ajw_keystore_start in a subpool of
 * pchild, after the fork, and torn down by a pre-cleanup on pchild (which runs
 * before pchild's subpools are destroyed). A published key set lives in its
 * own unmanaged pool, freed by whoever drops its last hold reference. */
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_general.h>
#include <apr_thread_proc.h>
#include <apr_atomic.h>

#include <sys/stat.h>

#include "ajw_keystore.h"
#include "ajw_statuslist.h"
#include "ajw_denylist.h"
#include "ajw_metrics.h"
#include "ajw_crypt.h"
#include "ajw_log.h"

#define BACKOFF_BASE    apr_time_from_sec(1)
#define BACKOFF_CAP     apr_time_from_sec(60)
#define ETAG_MAX        256
#define FUTURE_SLACK    apr_time_from_sec(60)   /* a shared copy "fetched" later is refused */
#define LEASE_POLL      (20 * 1000)             /* how often a lease loser looks again */
/* Request threads that may wait for one attempt in ajw_source_refresh_wait:
 * the one whose kick started it and the first few that came for it. */
#define ROTATION_WAITERS 4

struct ajw_source_t {
    /* Configuration: written by ajw_keystore_add (config phase, one thread),
     * read-only once the refresh thread runs. */
    ajw_keystore_t *ks;
    ajw_source_conf_t conf;           /* url/ca_file copied into ks->pool; a slot's url
                                       * is url_buf once bound (see `bound`) */
    ajw_source_t *next;
    const char *shared_name;          /* its name in the shared store: url, or for a status
                                       * list "statuslist:" url (another name space) */
    int slot;                         /* a status list slot, bound at run time */
    char *url_buf;                    /* slots: AJW_SOURCE_URL_MAX + 1 bytes (ks->pool) */
    char *shared_buf;                 /* slots: the shared name's bytes */

    /* Made by ajw_keystore_start (NULL before), destroyed by the pchild cleanup. */
    pthread_mutex_t *mu;              /* guards the block below */
    pthread_cond_t *attempted;        /* broadcast when an attempt ends, keys are published, and on stop */
    pthread_cond_t *wake;             /* used with ks->mu: signalled on kick and stop */
    apr_thread_t *thread;             /* this source's refresh thread */
    apr_pool_t *scratch;              /* per-attempt allocations (source thread only) */

    /* Guarded by mu. */
    ajw_keyhold_t *current;           /* published set; the source owns one of its refs */
    ajw_source_status_t st;           /* st.stale is computed by get_status */
    apr_time_t stale_at;              /* monotonic; keys refused from then on; 0 = never */
    int stale_logged;                 /* "stale" was logged; reset when fresh again */
    int stale_copy;                   /* nothing published, but a shared copy exists that is
                                       * older than max_stale: "stale", not "never loaded" */
    unsigned long long attempts;      /* attempts completed since start */
    int in_flight;                    /* an attempt is running now */
    int running;                      /* the refresh thread is alive */

    /* Guarded by ks->mu. */
    int bound;                        /* has a url (always but for an unbound slot); a slot's
                                       * url_buf is written once, before bound is set, and
                                       * read only by those who saw bound set */
    int kicked;                       /* an early refresh was asked for */
    int started;                      /* an attempt was started since start */
    apr_time_t last_start;            /* monotonic start of the last attempt (kick rate limit) */
    unsigned long long begun;         /* attempts started since start */
    int busy;                         /* an attempt runs now */
    unsigned long long wait_for;      /* the attempt the last refresh_wait waits for */
    unsigned waiters;                 /* ... and how many were let wait for it */

    /* Source thread only. */
    apr_time_t next_due;              /* monotonic */
    apr_uint64_t rng;                 /* jitter PRNG state */
    char etag[ETAG_MAX];              /* ETag of the published document, "" = none */
    unsigned char doc_hash[32];       /* SHA-256 of the published document */
    int has_doc_hash;
    unsigned char noted_hash[32];     /* document whose notes were last logged */
    int has_noted_hash;
    apr_time_t seen_fetched;          /* newest successful fetch server-wide known (wall) */
    apr_pool_t *docpool;              /* with a shared store: holds doc (unmanaged) */
    const char *doc;                  /* the published document's bytes (for 304 → copy) */
    size_t doc_len;
    int shared_warned;                /* a refused shared copy was logged */
    long long list_ttl, list_exp;     /* STATUS: of the published list (-1 / 0 = none) */
    int list_hint;                    /* STATUS: a list was parsed: the two above apply */
    apr_time_t deny_mtime;            /* DENYLIST: the file read last, 0 = none */
    apr_off_t deny_size;
    int put_warned;                   /* a failed shared write was logged */
};

struct ajw_keystore_t {
    /* Configuration: written during the config phase, read-only afterwards. */
    apr_pool_t *pool;
    ajw_source_t *sources;

    /* Owned by the thread that calls start/stop (httpd: child_init and the
     * pchild cleanup); the refresh threads only read fetcher. */
    apr_pool_t *rpool;                /* subpool of pchild: locks, threads */
    ajw_fetcher_t *fetcher;
    pthread_mutex_t *mu;              /* guards stop and sources' kick and attempt counters */
    int threads;                      /* refresh threads started */
    ajw_shared_t *shared;             /* set before start, read-only after; NULL = none */

    /* Guarded by mu. */
    int stop;
};

/* What a document parsed into: exactly one of set, list, deny. */
typedef struct doc_t {
    ajw_keyset_t *set;
    ajw_statuslist_t *list;
    ajw_denylist_t *deny;
} doc_t;

/* SKIPPED: an early attempt found that another process fetched (or tried)
 * less than min_refresh ago, and nothing newer: nothing changes. */
typedef enum { OUTCOME_FAILED, OUTCOME_UNCHANGED, OUTCOME_NEW, OUTCOME_SKIPPED } outcome_e;

/* One attempt of the source thread (stack only). */
typedef struct attempt_t {
    int loaded;                       /* keys are published (an adoption may set it) */
    unsigned failures;                /* consecutive failures before this attempt */
    int early;                        /* started by a kick before it was due */
    outcome_e oc;
    int adopted;                      /* the result is the shared copy's, not our fetch */
    doc_t set;                        /* OUTCOME_NEW of a fetch: to publish */
    long long max_age;
    apr_time_t fetched;               /* success: when the document was fetched (wall) */
    const char *why;                  /* OUTCOME_FAILED */
    const char *body;                 /* a fetch's 200 body (NULL after a 304) */
    size_t len;
    int http_status;                  /* of our fetch; 0 when no answer came */
} attempt_t;

/* ---- configuration ------------------------------------------------------ */

void ajw_source_conf_init(ajw_source_conf_t *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->refresh = apr_time_from_sec(300);
    conf->min_refresh = apr_time_from_sec(30);
    conf->timeout = apr_time_from_sec(10);
    conf->max_size = AJW_MAX_JWKS_LEN_DEFAULT;
}

apr_status_t ajw_keystore_create(ajw_keystore_t **out, apr_pool_t *p)
{
    ajw_keystore_t *ks = apr_pcalloc(p, sizeof(*ks));
    ks->pool = p;
    *out = ks;
    return APR_SUCCESS;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Replace unset or inconsistent values by the defaults. */
static void conf_normalize(ajw_source_conf_t *c)
{
    ajw_source_conf_t d;
    ajw_source_conf_init(&d);
    if (c->refresh <= 0)
        c->refresh = d.refresh;
    if (c->min_refresh <= 0)
        c->min_refresh = d.min_refresh;
    if (c->min_refresh > c->refresh)
        c->min_refresh = c->refresh;
    if (c->timeout <= 0)
        c->timeout = d.timeout;
    if (c->max_size == 0)
        c->max_size = d.max_size;
    if (c->max_stale < 0)
        c->max_stale = 0;
    if (c->max_stale > 0 && c->max_stale < c->refresh + c->timeout)
        c->max_stale = c->refresh + c->timeout;
}

ajw_source_t *ajw_keystore_add(ajw_keystore_t *ks, const ajw_source_conf_t *conf)
{
    ajw_source_t *src;
    for (src = ks->sources; src; src = src->next) {
        if (!src->slot && src->conf.kind == conf->kind && same_str(src->conf.url, conf->url)
            && same_str(src->conf.ca_file, conf->ca_file))
            break;
    }
    if (src) {
        if (conf->refresh > 0 && conf->refresh < src->conf.refresh)
            src->conf.refresh = conf->refresh;
        if (conf->min_refresh > 0 && conf->min_refresh < src->conf.min_refresh)
            src->conf.min_refresh = conf->min_refresh;
        if (conf->max_stale > 0 && (src->conf.max_stale == 0 || conf->max_stale < src->conf.max_stale))
            src->conf.max_stale = conf->max_stale;
        conf_normalize(&src->conf);
        return src;
    }
    src = apr_pcalloc(ks->pool, sizeof(*src));
    src->ks = ks;
    src->conf = *conf;
    src->conf.url = conf->url ? apr_pstrdup(ks->pool, conf->url) : "";
    src->conf.ca_file = conf->ca_file ? apr_pstrdup(ks->pool, conf->ca_file) : NULL;
    src->shared_name = src->conf.url;
    conf_normalize(&src->conf);
    src->next = ks->sources;
    ks->sources = src;
    return src;
}

ajw_source_t *ajw_keystore_add_slot(ajw_keystore_t *ks, const ajw_source_conf_t *conf)
{
    ajw_source_t *src;
    if (conf->kind != AJW_SOURCE_STATUS || !conf->signer)
        return NULL;
    src = apr_pcalloc(ks->pool, sizeof(*src));
    src->ks = ks;
    src->conf = *conf;
    src->conf.url = "";
    src->conf.ca_file = conf->ca_file ? apr_pstrdup(ks->pool, conf->ca_file) : NULL;
    src->slot = 1;
    src->url_buf = apr_pcalloc(ks->pool, AJW_SOURCE_URL_MAX + 1);
    src->shared_buf = apr_pcalloc(ks->pool, AJW_SOURCE_URL_MAX + sizeof("statuslist:"));
    src->shared_name = src->shared_buf;
    conf_normalize(&src->conf);
    src->next = ks->sources;
    ks->sources = src;
    return src;
}

ajw_source_t *ajw_keystore_bind(ajw_source_t *const *slots, int n, const char *url, int *full)
{
    ajw_keystore_t *ks;
    ajw_source_t *found = NULL, *free_slot = NULL;
    size_t len = url ? strlen(url) : 0;
    int i;

    *full = 0;
    if (n <= 0 || len == 0 || len > AJW_SOURCE_URL_MAX || !slots[0]->ks->mu)
        return NULL;
    ks = slots[0]->ks;
    pthread_mutex_lock(ks->mu);
    for (i = 0; i < n && !found; i++) {
        ajw_source_t *src = slots[i];
        if (src->bound && !strcmp(src->url_buf, url))
            found = src;
        else if (!src->bound && !free_slot)
            free_slot = src;
    }
    if (!found && free_slot && !ks->stop) {
        found = free_slot;
        memcpy(found->url_buf, url, len + 1);
        memcpy(found->shared_buf, "statuslist:", sizeof("statuslist:") - 1);
        memcpy(found->shared_buf + sizeof("statuslist:") - 1, url, len + 1);
        found->conf.url = found->url_buf;
        found->bound = 1;
        found->kicked = 1;
        if (found->wake)
            pthread_cond_signal(found->wake);
    }
    pthread_mutex_unlock(ks->mu);
    *full = !found && !free_slot;
    return found;
}

const char *ajw_source_url(const ajw_source_t *src)
{
    return src->conf.url;
}

/* Microseconds on a clock that never jumps (scheduling only). */
static apr_time_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (apr_time_t)ts.tv_sec * APR_USEC_PER_SEC + ts.tv_nsec / 1000;
}

/* ---- locks and waits ------------------------------------------------------ */

/* pthread mutexes and condition variables, the waits timed on the monotonic
 * clock: APR's condition variables wait on the wall clock, so a step back
 * during a wait (the refresh thread's sleep, a request waiting for keys)
 * would stretch it by the size of the step. Made in rpool and destroyed
 * with it. */
static apr_status_t mutex_cleanup(void *m)
{
    pthread_mutex_destroy(m);
    return APR_SUCCESS;
}

static apr_status_t cond_cleanup(void *c)
{
    pthread_cond_destroy(c);
    return APR_SUCCESS;
}

static apr_status_t mutex_make(pthread_mutex_t **out, apr_pool_t *p)
{
    pthread_mutex_t *m = apr_palloc(p, sizeof(*m));
    int rc = pthread_mutex_init(m, NULL);
    if (rc != 0)
        return APR_FROM_OS_ERROR(rc);
    apr_pool_cleanup_register(p, m, mutex_cleanup, apr_pool_cleanup_null);
    *out = m;
    return APR_SUCCESS;
}

static apr_status_t cond_make(pthread_cond_t **out, apr_pool_t *p)
{
    pthread_cond_t *c = apr_palloc(p, sizeof(*c));
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc != 0)
        return APR_FROM_OS_ERROR(rc);
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return APR_FROM_OS_ERROR(rc);
    apr_pool_cleanup_register(p, c, cond_cleanup, apr_pool_cleanup_null);
    *out = c;
    return APR_SUCCESS;
}

/* Wait on c (m held) for at most d microseconds of the monotonic clock;
 * wakeups and timeouts alike return (callers re-check). */
static void cond_wait_for(pthread_cond_t *c, pthread_mutex_t *m, apr_interval_time_t d)
{
    struct timespec ts;
    if (d < 0)
        d = 0;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(d / APR_USEC_PER_SEC);
    ts.tv_nsec += (long)(d % APR_USEC_PER_SEC) * 1000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(c, m, &ts);
}

/* ---- holds ---------------------------------------------------------------- */

/* Keys published and not older than max_stale (caller holds src->mu). */
static int usable(const ajw_source_t *src, apr_time_t mono)
{
    return src->current && !(src->stale_at && mono >= src->stale_at);
}

/* Seconds since the newest successful fetch (caller holds src->mu). */
static long long fetched_ago(const ajw_source_t *src)
{
    return src->st.fetched ? (long long)apr_time_sec(apr_time_now() - src->st.fetched) : -1;
}

static void log_stale(const ajw_source_t *src, long long ago)
{
    ajw_log(AJW_LOG_ERR, "%s of %s are stale: last successful fetch %lld s ago, more than the "
            "%lld s allowed; refusing tokens until a refresh succeeds",
            src->conf.kind == AJW_SOURCE_JWKS ? "keys" : "contents", src->conf.url, ago,
            (long long)apr_time_sec(src->conf.max_stale));
}

ajw_keyhold_t *ajw_source_acquire_ex(ajw_source_t *src, apr_interval_time_t wait,
                                     ajw_keys_state_e *state)
{
    ajw_keyhold_t *h = NULL;
    ajw_keys_state_e why = AJW_KEYS_NONE;
    apr_time_t now, deadline;
    unsigned long long seen;
    long long ago = -1;
    int first_stale = 0;

    if (!src || !src->mu)
        goto cleanup;
    pthread_mutex_lock(src->mu);
    now = mono_now();
    deadline = now + (wait > 0 ? wait : 0);
    seen = src->attempts;
    /* Wait for the first attempt, or for one already running; when an
     * attempt has failed and none is running, answer at once instead of
     * parking request threads for the whole outage. */
    while (!usable(src, now) && src->running && now < deadline && src->attempts == seen
           && (seen == 0 || src->in_flight)) {
        cond_wait_for(src->attempted, src->mu, deadline - now);
        now = mono_now();
    }
    if (usable(src, now)) {
        h = src->current;
        apr_atomic_inc32(&h->refs);
        why = AJW_KEYS_OK;
    }
    else if (src->current || src->stale_copy) {
        why = AJW_KEYS_STALE;
        first_stale = !src->stale_logged;
        src->stale_logged = 1;
        ago = fetched_ago(src);
    }
    pthread_mutex_unlock(src->mu);
    if (first_stale)
        log_stale(src, ago);
cleanup:
    if (state)
        *state = why;
    return h;
}

ajw_keyhold_t *ajw_source_acquire(ajw_source_t *src, apr_interval_time_t wait)
{
    return ajw_source_acquire_ex(src, wait, NULL);
}

void ajw_source_release(ajw_keyhold_t *hold)
{
    /* No lock: a hold that is not current any more can only lose references,
     * and the hold lives in the set's pool, so the last one frees both. */
    if (!hold || apr_atomic_dec32(&hold->refs) != 0)
        return;
    if (hold->set)
        ajw_keyset_free((ajw_keyset_t *)hold->set);
    else if (hold->list)
        ajw_statuslist_free((ajw_statuslist_t *)hold->list);
    else
        ajw_denylist_free((ajw_denylist_t *)hold->deny);
}

void ajw_source_get_status(ajw_source_t *src, ajw_source_status_t *st)
{
    if (!src->mu) {
        *st = src->st;
        st->stale = 0;
        return;
    }
    pthread_mutex_lock(src->mu);
    *st = src->st;
    st->stale = src->current && !usable(src, mono_now());
    pthread_mutex_unlock(src->mu);
}

void ajw_source_kick(ajw_source_t *src)
{
    ajw_keystore_t *ks;
    if (!src || !src->ks->mu)
        return;
    ks = src->ks;
    pthread_mutex_lock(ks->mu);
    if (!src->kicked
        && (!src->started || mono_now() - src->last_start >= src->conf.min_refresh)) {
        src->kicked = 1;
        if (src->wake)
            pthread_cond_signal(src->wake);
    }
    pthread_mutex_unlock(ks->mu);
}

ajw_refresh_e ajw_source_refresh_wait(ajw_source_t *src, unsigned long long generation,
                                      apr_interval_time_t wait)
{
    ajw_keystore_t *ks;
    unsigned long long target = 0;
    ajw_refresh_e out = AJW_REFRESH_LIMITED;
    apr_time_t now, deadline;

    if (!src || !src->mu || !src->ks->mu)
        goto cleanup;
    ks = src->ks;
    pthread_mutex_lock(src->mu);
    if (src->current && src->current->generation > generation)
        out = AJW_REFRESH_NEWER;
    pthread_mutex_unlock(src->mu);
    if (out == AJW_REFRESH_NEWER)
        goto cleanup;
    /* Which attempt will answer us: the next one when a kick is (now) pending,
     * else the running one; none when the rate limit refused and none runs.
     * Only the request whose kick was taken and the first few after it wait
     * for an attempt: forged tokens with random kids cost nothing to send,
     * and must not park request threads while a fetch hangs. */
    pthread_mutex_lock(ks->mu);
    if (!src->kicked && !ks->stop
        && (!src->started || mono_now() - src->last_start >= src->conf.min_refresh)) {
        src->kicked = 1;
        if (src->wake)
            pthread_cond_signal(src->wake);
    }
    if (src->kicked)
        target = src->begun + 1;
    else if (src->busy)
        target = src->begun;
    if (target && target != src->wait_for) {
        src->wait_for = target;
        src->waiters = 0;
    }
    if (target && src->waiters >= ROTATION_WAITERS)
        target = 0;
    else if (target)
        src->waiters++;
    pthread_mutex_unlock(ks->mu);
    if (!target)
        goto cleanup;
    pthread_mutex_lock(src->mu);
    now = mono_now();
    deadline = now + (wait > 0 ? wait : 0);
    while (src->attempts < target && src->running && now < deadline
           && !(src->current && src->current->generation > generation)) {
        cond_wait_for(src->attempted, src->mu, deadline - now);
        now = mono_now();
    }
    if (src->current && src->current->generation > generation)
        out = AJW_REFRESH_NEWER;
    else
        out = src->attempts >= target ? AJW_REFRESH_SAME : AJW_REFRESH_TIMEOUT;
    pthread_mutex_unlock(src->mu);
cleanup:
    return out;
}

/* ---- scheduling ------------------------------------------------------------ */

/* xorshift64*: jitter only, never security. */
static apr_uint64_t rng_next(ajw_source_t *src)
{
    apr_uint64_t x = src->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    src->rng = x;
    return x * 2685821657736338717ULL;
}

static void rng_seed(ajw_source_t *src)
{
    apr_uint64_t seed = 0;
    if (apr_generate_random_bytes((unsigned char *)&seed, sizeof(seed)) != APR_SUCCESS)
        seed = (apr_uint64_t)apr_time_now() ^ ((apr_uint64_t)getpid() << 32)
               ^ (apr_uint64_t)(apr_uintptr_t)src;
    src->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

/* Delay after `failures` consecutive failures: 1 s, 2 s, 4 s, ... capped at
 * min(refresh, 60 s), then ±20% jitter. */
static apr_interval_time_t backoff_delay(ajw_source_t *src, const ajw_source_conf_t *c,
                                         unsigned failures)
{
    apr_interval_time_t cap = c->refresh < BACKOFF_CAP ? c->refresh : BACKOFF_CAP;
    apr_interval_time_t d = BACKOFF_BASE;
    unsigned i;
    for (i = 1; i < failures && d < cap; i++)
        d *= 2;
    if (d > cap)
        d = cap;
    return d / 100 * (apr_interval_time_t)(80 + rng_next(src) % 41);
}

/* Delay after a success: refresh, or the server's max-age within
 * [min_refresh, refresh]. */
static apr_interval_time_t steady_delay(const ajw_source_conf_t *c, long long max_age)
{
    apr_interval_time_t d;
    if (max_age < 0 || max_age >= apr_time_sec(c->refresh) + 1)
        return c->refresh;
    d = apr_time_from_sec(max_age);
    if (d < c->min_refresh)
        d = c->min_refresh;
    return d > c->refresh ? c->refresh : d;
}

/* Delay from a document's fetch time to its next refresh: the steady delay
 * plus 0-10% jitter, so the processes sharing a copy do not all come due at
 * once (the first one fetches, the others take its copy). */
static apr_interval_time_t jittered(ajw_source_t *src, apr_interval_time_t d)
{
    return d + (apr_interval_time_t)((apr_uint64_t)(d / 1000) * (rng_next(src) % 101) / 1000);
}

/* ---- one attempt ------------------------------------------------------------ */

static int stop_requested(ajw_keystore_t *ks)
{
    int stop;
    pthread_mutex_lock(ks->mu);
    stop = ks->stop;
    pthread_mutex_unlock(ks->mu);
    return stop;
}

/* The fetch's cancel hook: shutdown interrupts a hung transfer. */
static int fetch_cancelled(void *baton)
{
    return stop_requested(baton);
}

static void log_notes(ajw_source_t *src, const ajw_keyset_t *set, const unsigned char hash[32],
                      ajw_log_level_e level)
{
    int i;
    if (src->has_noted_hash && memcmp(src->noted_hash, hash, 32) == 0)
        return;
    memcpy(src->noted_hash, hash, 32);
    src->has_noted_hash = 1;
    for (i = 0; set->notes && i < set->notes->nelts; i++)
        ajw_log(level, "JWKS %s: %s", src->conf.url, APR_ARRAY_IDX(set->notes, i, const char *));
}

/* Does set hold the keys already published? Only this source's thread
 * publishes, so the set it reads stays alive (the source holds a reference)
 * after the lock is dropped. */
static int same_as_published(ajw_source_t *src, const ajw_keyset_t *set)
{
    const ajw_keyset_t *cur;
    pthread_mutex_lock(src->mu);
    cur = src->current ? src->current->set : NULL;
    pthread_mutex_unlock(src->mu);
    return cur && ajw_keyset_same_keys(cur, set);
}

/* Remember the published document: its hash (to skip parsing it again) and,
 * with a shared store, its bytes (a 304 rewrites the shared copy with them). */
static void set_doc(ajw_source_t *src, const unsigned char hash[32], const char *body, size_t len)
{
    apr_pool_t *old = src->docpool;
    memcpy(src->doc_hash, hash, 32);
    src->has_doc_hash = 1;
    if (!src->ks->shared)
        return;
    src->docpool = NULL;
    src->doc = NULL;
    src->doc_len = 0;
    if (apr_pool_create_unmanaged_ex(&src->docpool, NULL, NULL) == APR_SUCCESS) {
        src->doc = apr_pstrmemdup(src->docpool, body, len);
        src->doc_len = len;
    }
    if (old)
        apr_pool_destroy(old);
}

/* A JWKS into out->set (see take_document). */
static outcome_e take_jwks(ajw_source_t *src, const char *body, size_t len,
                           const unsigned char hash[32], doc_t *out, const char **why,
                           ajw_log_level_e note_level)
{
    ajw_keyset_t *set = NULL;
    ajw_error_t err;
    ajw_reason_e rc;

    memset(&err, 0, sizeof(err));
    rc = ajw_keyset_parse(&set, body, len, src->conf.max_size, NULL, &err);
    if (rc != AJW_OK || !set) {
        *why = apr_psprintf(src->scratch, "invalid JWKS (%s): %s", ajw_reason_name(rc), err.text);
        return OUTCOME_FAILED;
    }
    log_notes(src, set, hash, note_level);
    if (set->keys->nelts == 0) {
        *why = apr_psprintf(src->scratch, "JWKS has no usable keys (%d skipped)",
                            set->notes ? set->notes->nelts : 0);
        ajw_keyset_free(set);
        return OUTCOME_FAILED;
    }
    set_doc(src, hash, body, len);
    if (same_as_published(src, set)) {
        /* Reordered or reformatted, same keys: keep the generation, so the
         * token cache stays warm. */
        ajw_keyset_free(set);
        return OUTCOME_UNCHANGED;
    }
    out->set = set;
    return OUTCOME_NEW;
}

/* A Status List Token into out->list, verified with the signer's current
 * keys (waiting up to the fetch timeout for their first load). A list
 * signed by a key the signer does not hold kicks the signer (rate-limited):
 * the issuer may have rotated; the retry comes with the backoff. */
#define STATUS_LEEWAY 60
static outcome_e take_status(ajw_source_t *src, const char *body, size_t len,
                             const unsigned char hash[32], doc_t *out, const char **why)
{
    ajw_keyhold_t *h = ajw_source_acquire(src->conf.signer, src->conf.timeout);
    ajw_statuslist_t *l = NULL;
    ajw_error_t err;
    ajw_reason_e rc;

    if (!h) {
        *why = apr_psprintf(src->scratch, "no keys of %s to verify it with",
                            ajw_source_url(src->conf.signer));
        return OUTCOME_FAILED;
    }
    memset(&err, 0, sizeof(err));
    rc = ajw_statuslist_parse(&l, body, len, src->conf.url, h->set, src->conf.algs,
                              (long long)apr_time_sec(apr_time_now()), STATUS_LEEWAY,
                              src->conf.max_size, AJW_STATUSLIST_MAX_BYTES_DEFAULT, NULL, &err);
    ajw_source_release(h);
    if (rc == AJW_R_NO_KEY)
        ajw_source_kick(src->conf.signer);
    if (rc != AJW_OK) {
        *why = apr_psprintf(src->scratch, "invalid status list (%s): %s", ajw_reason_name(rc),
                            err.text);
        return OUTCOME_FAILED;
    }
    src->list_ttl = l->ttl;
    src->list_exp = l->exp;
    src->list_hint = 1;
    set_doc(src, hash, body, len);
    out->list = l;
    return OUTCOME_NEW;
}

/* A deny-list file into out->deny. */
static outcome_e take_deny(ajw_source_t *src, const char *body, size_t len,
                           const unsigned char hash[32], doc_t *out, const char **why)
{
    ajw_denylist_t *d = NULL;
    const char *bad = NULL;
    if (ajw_denylist_parse(&d, body, len, NULL, &bad, src->scratch) != APR_SUCCESS) {
        *why = apr_psprintf(src->scratch, "invalid deny-list: %s", bad);
        return OUTCOME_FAILED;
    }
    set_doc(src, hash, body, len);
    out->deny = d;
    return OUTCOME_NEW;
}

/* A 200 answer (or the shared copy): parse it into *out (OUTCOME_NEW), or
 * notice it holds the published document again (OUTCOME_UNCHANGED), or fail
 * with *why. Remembers the document unless it failed. Skipped-key notes at
 * note_level, once per document. */
static outcome_e take_document(ajw_source_t *src, const char *body, size_t len,
                               doc_t *out, const char **why, ajw_log_level_e note_level)
{
    unsigned char hash[32];

    memset(out, 0, sizeof(*out));
    if (ajw_crypt_sha256(hash, body, len) != 0) {
        *why = "cannot hash the document";
        return OUTCOME_FAILED;
    }
    if (src->has_doc_hash && memcmp(src->doc_hash, hash, 32) == 0)
        return OUTCOME_UNCHANGED;
    switch (src->conf.kind) {
    case AJW_SOURCE_STATUS:
        return take_status(src, body, len, hash, out, why);
    case AJW_SOURCE_DENYLIST:
        return take_deny(src, body, len, hash, out, why);
    default:
        return take_jwks(src, body, len, hash, out, why, note_level);
    }
}

/* What a published document counts: keys, list entries or deny-list entries. */
static int doc_count(const doc_t *d)
{
    if (d->set)
        return d->set->keys->nelts;
    if (d->list)
        return d->list->len > (size_t)(0x7fffffff / 8) ? 0x7fffffff
                                                       : (int)(d->list->len * 8 / d->list->bits);
    return d->deny ? d->deny->count : 0;
}

/* The refresh hint of a published status list (max-age seconds, -1 none),
 * else the server's max_age. */
static long long doc_max_age(const ajw_source_t *src, long long max_age)
{
    long long now, hint;
    if (src->conf.kind != AJW_SOURCE_STATUS || !src->list_hint)
        return max_age;
    now = (long long)apr_time_sec(apr_time_now());
    hint = src->list_ttl;
    if (src->list_exp > 0) {
        long long left = src->list_exp > now ? src->list_exp - now : 0;
        if (hint < 0 || left < hint)
            hint = left;
    }
    return hint >= 0 ? hint : max_age;
}

/* Note the newest successful fetch server-wide and when keys go stale.
 * own: this process fetched just now. That is the newest fetch whatever the
 * wall clock says (after a step back it reads earlier than the last one
 * seen), and its keys go stale max_stale from now on the monotonic clock.
 * A shared copy's fetch time is another process's wall clock: taken when
 * newer than what is known, and it never brings stale_at closer. */
static void set_fetched(ajw_source_t *src, apr_time_t fetched, int own)
{
    apr_time_t now = apr_time_now(), at = 0;
    if (!own && fetched <= src->seen_fetched)
        return;
    src->seen_fetched = fetched;
    if (src->conf.max_stale > 0)
        at = mono_now() - (!own && now > fetched ? now - fetched : 0) + src->conf.max_stale;
    pthread_mutex_lock(src->mu);
    src->st.fetched = fetched;
    if (!at || at > src->stale_at)
        src->stale_at = at;
    pthread_mutex_unlock(src->mu);
}

/* Make set the current one of src; the previous one loses the source's reference. */
static void publish(ajw_source_t *src, doc_t *set, apr_time_t now, int from_shared)
{
    apr_pool_t *pool = set->set ? set->set->pool : set->list ? set->list->pool : set->deny->pool;
    ajw_keyhold_t *h = apr_pcalloc(pool, sizeof(*h)), *old;
    h->set = set->set;
    h->list = set->list;
    h->deny = set->deny;
    h->src = src;
    h->refs = 1;                      /* the source's own reference */
    pthread_mutex_lock(src->mu);
    old = src->current;
    src->current = h;
    h->generation = ++src->st.generation;
    src->st.loaded = 1;
    src->st.nkeys = doc_count(set);
    src->st.last_success = now;
    src->st.from_shared = from_shared;
    if (from_shared)                  /* a fetch may follow: waiters for keys need not wait */
        pthread_cond_broadcast(src->attempted);
    pthread_mutex_unlock(src->mu);
    ajw_source_release(old);
}

static void begin_attempt(ajw_source_t *src, apr_time_t now, attempt_t *a)
{
    pthread_mutex_lock(src->mu);
    src->in_flight = 1;
    src->st.last_attempt = now;
    a->loaded = src->st.loaded;
    a->failures = src->st.failures;
    pthread_mutex_unlock(src->mu);
}

/* Record the end of an attempt and wake waiters; log staleness changes. */
static void end_attempt(ajw_source_t *src, const attempt_t *a, apr_time_t now, apr_time_t next)
{
    int became_stale = 0, fresh_again = 0;
    long long ago;
    pthread_mutex_lock(src->mu);
    src->in_flight = 0;
    src->attempts++;
    if (a->oc == OUTCOME_FAILED) {
        src->st.failures++;
        apr_cpystrn(src->st.last_error, a->why, sizeof(src->st.last_error));
    }
    else if (a->oc != OUTCOME_SKIPPED) {
        src->st.failures = 0;
        src->st.last_error[0] = '\0';
        src->st.last_success = now;
    }
    src->st.next_attempt = next;
    if (src->current && !usable(src, mono_now()))
        became_stale = !src->stale_logged;
    else if (src->stale_logged)
        fresh_again = 1;
    if (became_stale || fresh_again)
        src->stale_logged = became_stale;
    ago = fetched_ago(src);
    pthread_cond_broadcast(src->attempted);
    pthread_mutex_unlock(src->mu);
    if (became_stale)
        log_stale(src, ago);
    if (fresh_again)
        ajw_log(AJW_LOG_INFO, "keys of %s are fresh again", src->conf.url);
}

/* A deny-list file whose mtime and size are those of the one published:
 * nothing to read. Else remembers them (taken before the read, so a change
 * during the read is seen next time). */
static int deny_unchanged(ajw_source_t *src, const attempt_t *a)
{
    struct stat sb;
    apr_time_t mtime;
    const char *path = src->conf.url;
    if (!strncmp(path, "file://", 7))
        path += 7;
    if (stat(path, &sb) != 0)
        return 0;                 /* the read reports why */
    mtime = (apr_time_t)sb.st_mtim.tv_sec * APR_USEC_PER_SEC + sb.st_mtim.tv_nsec / 1000;
    if (a->loaded && mtime == src->deny_mtime && (apr_off_t)sb.st_size == src->deny_size)
        return 1;
    src->deny_mtime = mtime;
    src->deny_size = (apr_off_t)sb.st_size;
    return 0;
}

/* Fetch src and classify the answer into a. */
static void fetch_once(ajw_keystore_t *ks, ajw_source_t *src, attempt_t *a)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    apr_status_t rv;

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    a->adopted = 0;
    if (src->conf.kind == AJW_SOURCE_DENYLIST && deny_unchanged(src, a)) {
        a->fetched = apr_time_now();
        a->http_status = 304;
        a->oc = OUTCOME_UNCHANGED;
        return;
    }
    if (src->conf.kind == AJW_SOURCE_STATUS)
        req.accept = AJW_STATUSLIST_MEDIA_TYPE;
    req.url = src->conf.url;
    req.ca_file = src->conf.ca_file;
    req.etag = (a->loaded && src->etag[0]) ? src->etag : NULL;
    req.timeout = src->conf.timeout;
    req.max_size = src->conf.max_size;
    req.cancelled = fetch_cancelled;
    req.cancel_baton = ks;
    if (src->conf.prepare)
        src->conf.prepare(src->conf.prepare_baton, &req, src->scratch);
    rv = ks->fetcher->fetch(ks->fetcher, &req, &res, src->scratch);
    a->max_age = res.max_age;
    a->fetched = apr_time_now();
    a->http_status = rv == APR_SUCCESS ? res.status : 0;
    if (rv != APR_SUCCESS) {
        a->why = apr_psprintf(src->scratch, "fetch failed: %s", res.error ? res.error : "unknown error");
        a->oc = OUTCOME_FAILED;
        return;
    }
    if (res.status == 304 && req.etag) {
        a->oc = OUTCOME_UNCHANGED;
        a->max_age = doc_max_age(src, a->max_age);
        return;
    }
    if (res.status != 200) {
        a->why = apr_psprintf(src->scratch, "HTTP status %d", res.status);
        a->oc = OUTCOME_FAILED;
        return;
    }
    a->oc = take_document(src, res.body, res.len, &a->set, &a->why, AJW_LOG_WARN);
    if (a->oc == OUTCOME_FAILED) {
        src->deny_mtime = 0;      /* a refused deny-list is read again at the next attempt */
        return;
    }
    a->max_age = doc_max_age(src, a->max_age);
    a->body = res.body;
    a->len = res.len;
    if (res.etag && strlen(res.etag) < sizeof(src->etag))
        apr_cpystrn(src->etag, res.etag, sizeof(src->etag));
    else
        src->etag[0] = '\0';
}

/* One network fetch, counted for the server's metrics (only here: taking the
 * shared copy is not a fetch). An answer that did not give usable keys
 * counts as an error. */
static void fetch_source(ajw_keystore_t *ks, ajw_source_t *src, attempt_t *a)
{
    apr_time_t t0 = apr_time_now();
    a->http_status = 0;
    fetch_once(ks, src, a);
    ajw_metrics_fetch_done(src->conf.url, a->oc == OUTCOME_FAILED ? 0 : a->http_status,
                           a->fetched - t0);
}

/* ---- the shared level ---------------------------------------------------------- */

/* Read the shared copy into *rec; 0 when there is none usable (refusals WARN
 * once until a good read). A copy older than max_stale is not usable. */
static int shared_read(ajw_keystore_t *ks, ajw_source_t *src, ajw_shared_doc_t *rec)
{
    const char *why = NULL;
    apr_time_t now = apr_time_now();
    apr_status_t rv = ks->shared->get(ks->shared, src->shared_name, src->conf.ca_file,
                                      src->conf.max_size, rec, &why, src->scratch);
    if (rv == APR_SUCCESS && rec->fetched > now + FUTURE_SLACK) {
        rv = APR_EGENERAL;
        why = "its fetch time is in the future";
    }
    if (rv != APR_SUCCESS && rv != APR_NOTFOUND)
        ajw_metrics_shared_refused(src->conf.url);
    if (rv != APR_SUCCESS && rv != APR_NOTFOUND && !src->shared_warned) {
        ajw_log(AJW_LOG_WARN, "shared copy of %s refused: %s", src->conf.url,
                why ? why : "unknown error");
        src->shared_warned = 1;
    }
    if (rv != APR_SUCCESS)
        return 0;
    src->shared_warned = 0;
    if (src->conf.max_stale == 0 || now - rec->fetched < src->conf.max_stale)
        return 1;
    pthread_mutex_lock(src->mu);   /* too old to use: say "stale", with its age */
    src->stale_copy = 1;
    if (rec->fetched > src->st.fetched)
        src->st.fetched = rec->fetched;
    pthread_mutex_unlock(src->mu);
    return 0;
}

/* Publish the shared copy rec when it holds other keys; fill a as an
 * adoption. Returns 0 when the copy does not parse (WARN once). */
static int adopt(ajw_source_t *src, const ajw_shared_doc_t *rec, attempt_t *a)
{
    doc_t set;
    const char *why = NULL;
    apr_time_t now = apr_time_now();
    long long ago = (long long)apr_time_sec(now > rec->fetched ? now - rec->fetched : 0);
    outcome_e oc = take_document(src, rec->body, rec->len, &set, &why, AJW_LOG_DEBUG);
    int n = doc_count(&set);

    if (oc == OUTCOME_FAILED) {
        ajw_metrics_shared_refused(src->conf.url);
        if (!src->shared_warned)
            ajw_log(AJW_LOG_WARN, "shared copy of %s refused: %s", src->conf.url, why);
        src->shared_warned = 1;
        return 0;
    }
    if (oc == OUTCOME_NEW) {
        publish(src, &set, now, 1);
        if (!a->loaded)
            ajw_log(AJW_LOG_INFO, "loaded %d %s from %s (shared copy, fetched %lld s ago)",
                    n, set.set ? "keys" : "entries", src->conf.url, ago);
        else
            ajw_log(AJW_LOG_DEBUG, "%s of %s changed (shared copy, fetched %lld s ago): "
                    "now %d", set.set ? "keys" : "contents", src->conf.url, ago, n);
        a->loaded = 1;
    }
    if (rec->etag && strlen(rec->etag) < sizeof(src->etag))
        apr_cpystrn(src->etag, rec->etag, sizeof(src->etag));
    else
        src->etag[0] = '\0';
    set_fetched(src, rec->fetched, 0);
    a->oc = (a->oc == OUTCOME_NEW || oc == OUTCOME_NEW) ? OUTCOME_NEW : OUTCOME_UNCHANGED;
    a->adopted = 1;
    a->fetched = rec->fetched;
    a->max_age = doc_max_age(src, rec->max_age);
    return 1;
}

/* After a successful fetch of ours: write the shared copy. */
static void shared_write(ajw_keystore_t *ks, ajw_source_t *src, const attempt_t *a)
{
    ajw_shared_doc_t rec;
    const char *why = NULL;
    memset(&rec, 0, sizeof(rec));
    rec.body = a->body ? a->body : src->doc;
    rec.len = a->body ? a->len : src->doc_len;
    rec.etag = src->etag[0] ? src->etag : NULL;
    rec.fetched = a->fetched;
    rec.max_age = a->max_age;
    if (!rec.body)
        return;
    if (ks->shared->put(ks->shared, src->shared_name, src->conf.ca_file, &rec, &why, src->scratch)
        == APR_SUCCESS) {
        src->put_warned = 0;
        return;
    }
    if (!src->put_warned)
        ajw_log(AJW_LOG_WARN, "cannot write the shared copy of %s: %s", src->conf.url,
                why ? why : "unknown error");
    src->put_warned = 1;
}

/* The lease is held elsewhere: wait (bounded) until it is free. Returns the
 * lease status then (APR_EBUSY: still held at the deadline; APR_EINTR: stop). */
static apr_status_t lease_wait(ajw_keystore_t *ks, ajw_source_t *src, apr_time_t *last,
                               void **lease)
{
    apr_time_t deadline = mono_now() + src->conf.timeout + apr_time_from_sec(1);
    apr_status_t rv = APR_EBUSY;
    while (rv == APR_EBUSY && mono_now() < deadline) {
        apr_sleep(LEASE_POLL);
        if (stop_requested(ks))
            return APR_EINTR;
        rv = ks->shared->lease(ks->shared, src->shared_name, src->conf.ca_file, apr_time_now(),
                               last, lease, src->scratch);
    }
    return rv;
}

/* An attempt with a shared store: take a newer shared copy, and fetch only
 * when no other process did so recently enough (see ajw_keystore_set_shared). */
static void shared_attempt(ajw_keystore_t *ks, ajw_source_t *src, attempt_t *a)
{
    ajw_shared_t *sh = ks->shared;
    ajw_shared_doc_t rec;
    apr_time_t known = src->seen_fetched, last = 0, now = apr_time_now();
    apr_interval_time_t window;
    apr_status_t rv = APR_ENOTIMPL;
    void *lease = NULL;
    int have = shared_read(ks, src, &rec);

    if (have && (rec.fetched > known || !a->loaded))
        have = adopt(src, &rec, a);
    if (have) {
        window = a->early ? src->conf.min_refresh : steady_delay(&src->conf, rec.max_age);
        if (now - rec.fetched < window && (a->early || rec.fetched > known)) {
            if (!a->adopted)
                a->oc = OUTCOME_SKIPPED;  /* an early attempt, and we hold that copy already */
            goto cleanup;             /* fresh: nothing to fetch */
        }
    }
    if (sh->lease)
        rv = sh->lease(sh, src->shared_name, src->conf.ca_file, now, &last, &lease, src->scratch);
    if (rv == APR_EBUSY) {
        /* Another process fetches: wait for it and take its copy. */
        rv = lease_wait(ks, src, &last, &lease);
        if (rv == APR_EINTR) {
            a->oc = OUTCOME_FAILED;
            a->why = "cancelled";
            goto cleanup;
        }
        if (shared_read(ks, src, &rec) && rec.fetched > src->seen_fetched && adopt(src, &rec, a))
            goto cleanup;
    }
    now = apr_time_now();
    if (rv == APR_SUCCESS && a->early && last > 0 && last <= now
        && now - last < src->conf.min_refresh) {
        /* Some process tried less than min_refresh ago: kicks are limited per
         * server. A lease stamped in the future (the wall clock stepped back
         * since) says nothing about when: it must not hold off every early
         * refresh of the server for the size of the step. */
        if (!a->adopted)
            a->oc = OUTCOME_SKIPPED;
        goto cleanup;
    }
    fetch_source(ks, src, a);
    if (a->oc != OUTCOME_FAILED) {
        shared_write(ks, src, a);
        set_fetched(src, a->fetched, 1);
    }
cleanup:
    if (lease)
        sh->unlease(sh, lease);
}

static void log_outcome(ajw_source_t *src, const attempt_t *a, int nkeys,
                        apr_interval_time_t delay)
{
    const char *url = src->conf.url;
    int jwks = src->conf.kind == AJW_SOURCE_JWKS;
    const char *what = jwks ? "keys" : src->conf.kind == AJW_SOURCE_STATUS ? "status list"
                                                                         : "deny-list";
    double secs = (double)delay / (double)APR_USEC_PER_SEC;
    if (a->oc == OUTCOME_SKIPPED)
        ajw_log(AJW_LOG_DEBUG, "early refresh of %s skipped: another process tried less than "
                "%lld s ago", url, (long long)apr_time_sec(src->conf.min_refresh));
    else if (a->adopted)
        ajw_log(AJW_LOG_DEBUG, "%s of %s taken from the shared copy%s", what, url,
                a->failures ? " after failures" : "");
    else if (a->oc == OUTCOME_FAILED && !a->loaded)
        ajw_log(AJW_LOG_ERR, "no %s from %s: %s (attempt %u, retry in %.1f s)",
                what, url, a->why, a->failures + 1, secs);
    else if (a->oc == OUTCOME_FAILED)
        ajw_log(AJW_LOG_WARN, "refresh of %s failed: %s (%u in a row, keeping the previous "
                "%s, retry in %.1f s)", url, a->why, a->failures + 1, what, secs);
    else if (a->oc == OUTCOME_NEW && !a->loaded)
        ajw_log(AJW_LOG_NOTICE, "loaded %d %s from %s", nkeys, jwks ? "keys" : "entries", url);
    else if (a->oc == OUTCOME_NEW)
        ajw_log(AJW_LOG_INFO, "%s of %s changed: now %d %s", jwks ? "keys" : what, url, nkeys,
                jwks ? "keys" : "entries");
    else
        ajw_log(AJW_LOG_DEBUG, "%s of %s unchanged", what, url);
    if (!a->adopted && (a->oc == OUTCOME_NEW || a->oc == OUTCOME_UNCHANGED) && a->failures > 0)
        ajw_log(AJW_LOG_INFO, "refresh of %s works again after %u failures", url, a->failures);
}

static void refresh_source(ajw_keystore_t *ks, ajw_source_t *src, int early)
{
    attempt_t a;
    apr_interval_time_t delay = 0;
    apr_time_t now = apr_time_now();    /* wall clock: status and shared copies only */
    apr_time_t next;
    int nkeys = 0;

    memset(&a, 0, sizeof(a));
    a.max_age = -1;
    a.early = early;
    a.oc = OUTCOME_UNCHANGED;
    begin_attempt(src, now, &a);
    if (ks->shared && src->conf.kind != AJW_SOURCE_DENYLIST)
        shared_attempt(ks, src, &a);
    else
        fetch_source(ks, src, &a);
    now = apr_time_now();
    if (a.oc == OUTCOME_NEW && (a.set.set || a.set.list || a.set.deny)) {
        nkeys = doc_count(&a.set);
        publish(src, &a.set, now, 0);
    }
    if (a.oc == OUTCOME_FAILED) {
        delay = backoff_delay(src, &src->conf, a.failures + 1);
        src->next_due = mono_now() + delay;
    }
    else if (a.oc != OUTCOME_SKIPPED) {
        if (!ks->shared || src->conf.kind == AJW_SOURCE_DENYLIST)
            set_fetched(src, a.fetched, 1);
        /* Counted from the document's fetch, which may be another process's. */
        delay = jittered(src, steady_delay(&src->conf, a.max_age)) - (now - a.fetched);
        if (delay < 0)
            delay = 0;
        src->next_due = mono_now() + delay;
    }
    else
        delay = src->next_due - mono_now();
    next = now + delay;
    /* A transfer cut short by shutdown is not worth an error line. */
    if (a.oc != OUTCOME_FAILED || !stop_requested(ks))
        log_outcome(src, &a, nkeys, delay);
    end_attempt(src, &a, now, next);
}

/* ---- the thread ------------------------------------------------------------ */

/* One source's thread: sleep until due, kicked or stopped; fetch; repeat. */
static void *APR_THREAD_FUNC refresh_main(apr_thread_t *thd, void *data)
{
    ajw_source_t *src = data;
    ajw_keystore_t *ks = src->ks;
    apr_time_t now;
    (void)thd;
    pthread_mutex_lock(ks->mu);
    while (!ks->stop) {
        now = mono_now();
        if (!src->bound) {
            /* An unbound slot sleeps until ajw_keystore_bind (or stop) wakes it. */
            cond_wait_for(src->wake, ks->mu, apr_time_from_sec(3600));
        }
        else if (src->kicked || now >= src->next_due) {
            int early = now < src->next_due;
            src->kicked = 0;
            src->started = 1;
            src->last_start = now;
            src->begun++;
            src->busy = 1;
            pthread_mutex_unlock(ks->mu);
            refresh_source(ks, src, early);
            apr_pool_clear(src->scratch);
            pthread_mutex_lock(ks->mu);
            src->busy = 0;
        }
        else {
            /* Spurious wakeups and timeouts both just re-check. */
            apr_interval_time_t d = src->next_due - now;
            cond_wait_for(src->wake, ks->mu, d < 1000 ? 1000 : d);
        }
    }
    pthread_mutex_unlock(ks->mu);
    return NULL;
}

/* ---- start / stop -------------------------------------------------------------- */

static void set_running(ajw_source_t *src, int running)
{
    pthread_mutex_lock(src->mu);
    src->running = running;
    pthread_cond_broadcast(src->attempted);
    pthread_mutex_unlock(src->mu);
}

void ajw_keystore_stop(ajw_keystore_t *ks)
{
    ajw_source_t *src;
    apr_status_t trv;
    if (!ks || !ks->threads)
        return;
    pthread_mutex_lock(ks->mu);
    ks->stop = 1;
    for (src = ks->sources; src; src = src->next) {
        if (src->wake)
            pthread_cond_broadcast(src->wake);
    }
    pthread_mutex_unlock(ks->mu);
    for (src = ks->sources; src; src = src->next) {
        if (src->thread)
            apr_thread_join(&trv, src->thread);
        src->thread = NULL;
    }
    ks->threads = 0;
    for (src = ks->sources; src; src = src->next) {
        if (src->mu)
            set_running(src, 0);
    }
}

/* pchild pre-cleanup: stop, drop the published sets, forget the locks. A
 * hold still taken keeps its set alive until released (release needs no lock). */
static apr_status_t keystore_cleanup(void *data)
{
    ajw_keystore_t *ks = data;
    ajw_source_t *src;
    ajw_keyhold_t *h;
    ajw_keystore_stop(ks);
    for (src = ks->sources; src; src = src->next) {
        if (!src->mu)
            continue;           /* start failed before this source got its lock */
        pthread_mutex_lock(src->mu);
        h = src->current;
        src->current = NULL;
        pthread_mutex_unlock(src->mu);
        ajw_source_release(h);
        src->mu = NULL;
        src->attempted = NULL;
        src->wake = NULL;
        if (src->scratch)
            apr_pool_destroy(src->scratch);
        src->scratch = NULL;
        if (src->docpool)
            apr_pool_destroy(src->docpool);
        src->docpool = NULL;
        src->doc = NULL;
    }
    ks->mu = NULL;
    if (ks->rpool)
        apr_pool_destroy(ks->rpool);
    ks->rpool = NULL;
    return APR_SUCCESS;
}

/* Locks and per-process state of every source (after fork, before the thread). */
static apr_status_t init_runtime(ajw_keystore_t *ks)
{
    apr_status_t rv;
    ajw_source_t *src;
    rv = mutex_make(&ks->mu, ks->rpool);
    for (src = ks->sources; src && rv == APR_SUCCESS; src = src->next) {
        src->thread = NULL;
        rv = mutex_make(&src->mu, ks->rpool);
        if (rv == APR_SUCCESS)
            rv = cond_make(&src->attempted, ks->rpool);
        if (rv == APR_SUCCESS)
            rv = cond_make(&src->wake, ks->rpool);
        if (rv == APR_SUCCESS)
            rv = apr_pool_create_unmanaged_ex(&src->scratch, NULL, NULL);
        src->current = NULL;
        memset(&src->st, 0, sizeof(src->st));
        src->attempts = 0;
        src->in_flight = 0;
        src->running = 1;
        src->kicked = 0;
        src->bound = !src->slot;
        if (src->slot) {
            src->url_buf[0] = '\0';
            src->shared_buf[0] = '\0';
            src->conf.url = src->url_buf;
        }
        src->list_hint = 0;
        src->deny_mtime = 0;
        src->deny_size = 0;
        src->started = 0;
        src->last_start = 0;
        src->begun = 0;
        src->busy = 0;
        src->wait_for = 0;
        src->waiters = 0;
        src->next_due = 0;
        src->etag[0] = '\0';
        src->has_doc_hash = src->has_noted_hash = 0;
        src->stale_at = 0;
        src->stale_logged = 0;
        src->seen_fetched = 0;
        src->docpool = NULL;
        src->doc = NULL;
        src->doc_len = 0;
        src->shared_warned = src->put_warned = 0;
        rng_seed(src);
    }
    ks->stop = 0;
    ks->threads = 0;
    return rv;
}

apr_status_t ajw_keystore_set_shared(ajw_keystore_t *ks, ajw_shared_t *sh)
{
    if (ks->rpool)
        return APR_EINVAL;
    ks->shared = sh;
    return APR_SUCCESS;
}

apr_status_t ajw_keystore_start(ajw_keystore_t *ks, ajw_fetcher_t *f, apr_pool_t *pchild)
{
    ajw_source_t *src;
    apr_status_t rv;
    if (ks->rpool || !f)
        return APR_EINVAL;
    rv = apr_pool_create(&ks->rpool, pchild);
    if (rv != APR_SUCCESS)
        return rv;
    ks->fetcher = f;
    apr_pool_pre_cleanup_register(pchild, ks, keystore_cleanup);
    rv = init_runtime(ks);
    for (src = ks->sources; src && rv == APR_SUCCESS; src = src->next) {
        rv = apr_thread_create(&src->thread, NULL, refresh_main, src, ks->rpool);
        if (rv == APR_SUCCESS)
            ks->threads++;
        else
            src->thread = NULL;
    }
    if (rv != APR_SUCCESS) {
        /* All or nothing: the sources that did start stop again (acquire → NULL). */
        ajw_keystore_stop(ks);
        for (src = ks->sources; src; src = src->next) {
            if (src->mu)
                set_running(src, 0);
        }
        ajw_log(AJW_LOG_ERR, "cannot start the key refresh threads (status %d)", rv);
    }
    return rv;
}
