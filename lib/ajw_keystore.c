/* ajw_keystore.c — URL → current key set, refreshed by one background thread.
 *
 * Threads: one refresh thread per source, so a hung or slow IdP (a fetch may
 * take up to its timeout, 300 s at most) never delays the first load, the
 * refreshes or the kicks of another source.
 *
 * Locks (never nested: no code path holds two of them at once):
 *  - ks->mu     the refresh threads' sleep: stop flag, kick flags, kick rate limit.
 *  - src->mu    one per source: the published hold, status, attempt counters.
 * Hold reference counts are atomic: acquire increments under src->mu (so the
 * hold cannot be unpublished and freed in between), release only decrements,
 * without a lock, so a hold may even be released after the pchild cleanup.
 * Everything else a thread touches is its source's own ("source thread only").
 *
 * Clocks: scheduling (next refresh, kick rate limit, acquire's wait) uses a
 * monotonic clock, so stepping the wall clock back or forth neither stalls
 * refreshes and kicks for the size of the step nor makes them fire early.
 * apr_time_now() (wall clock) is used only for the status timestamps. APR's
 * condition variables wait on the wall clock: a step back during a sleep
 * delays that one scheduled refresh by the step, but kicks and stop still
 * wake the thread at once.
 *
 * Lifetimes: the store and its sources live in the configuration pool
 * (created before httpd forks, copied into each child). Mutexes, condition
 * variables and the thread are made by ajw_keystore_start in a subpool of
 * pchild, after the fork, and torn down by a pre-cleanup on pchild (which runs
 * before pchild's subpools are destroyed). A published key set lives in its
 * own unmanaged pool, freed by whoever drops its last hold reference. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_general.h>
#include <apr_thread_proc.h>
#include <apr_thread_mutex.h>
#include <apr_thread_cond.h>
#include <apr_atomic.h>

#include "ajw_keystore.h"
#include "ajw_crypt.h"
#include "ajw_log.h"

#define BACKOFF_BASE    apr_time_from_sec(1)
#define BACKOFF_CAP     apr_time_from_sec(60)
#define ETAG_MAX        256

struct ajw_source_t {
    /* Configuration: written by ajw_keystore_add (config phase, one thread),
     * read-only once the refresh thread runs. */
    ajw_keystore_t *ks;
    ajw_source_conf_t conf;           /* url/ca_file copied into ks->pool */
    ajw_source_t *next;

    /* Made by ajw_keystore_start (NULL before), destroyed by the pchild cleanup. */
    apr_thread_mutex_t *mu;           /* guards the block below */
    apr_thread_cond_t *attempted;     /* broadcast when an attempt ends, and on stop */
    apr_thread_cond_t *wake;          /* used with ks->mu: signalled on kick and stop */
    apr_thread_t *thread;             /* this source's refresh thread */
    apr_pool_t *scratch;              /* per-attempt allocations (source thread only) */

    /* Guarded by mu. */
    ajw_keyhold_t *current;           /* published set; the source owns one of its refs */
    ajw_source_status_t st;
    unsigned long long attempts;      /* attempts completed since start */
    int in_flight;                    /* an attempt is running now */
    int running;                      /* the refresh thread is alive */

    /* Guarded by ks->mu. */
    int kicked;                       /* an early refresh was asked for */
    int started;                      /* an attempt was started since start */
    apr_time_t last_start;            /* monotonic start of the last attempt (kick rate limit) */

    /* Source thread only. */
    apr_time_t next_due;              /* monotonic */
    apr_uint64_t rng;                 /* jitter PRNG state */
    char etag[ETAG_MAX];              /* ETag of the published document, "" = none */
    unsigned char doc_hash[32];       /* SHA-256 of the published document */
    int has_doc_hash;
    unsigned char noted_hash[32];     /* document whose notes were last logged */
    int has_noted_hash;
};

struct ajw_keystore_t {
    /* Configuration: written during the config phase, read-only afterwards. */
    apr_pool_t *pool;
    ajw_source_t *sources;

    /* Owned by the thread that calls start/stop (httpd: child_init and the
     * pchild cleanup); the refresh threads only read fetcher. */
    apr_pool_t *rpool;                /* subpool of pchild: locks, threads */
    ajw_fetcher_t *fetcher;
    apr_thread_mutex_t *mu;           /* guards stop and sources' kicked/started/last_start */
    int threads;                      /* refresh threads started */

    /* Guarded by mu. */
    int stop;
};

typedef enum { OUTCOME_FAILED, OUTCOME_UNCHANGED, OUTCOME_NEW } outcome_e;

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
}

ajw_source_t *ajw_keystore_add(ajw_keystore_t *ks, const ajw_source_conf_t *conf)
{
    ajw_source_t *src;
    for (src = ks->sources; src; src = src->next) {
        if (same_str(src->conf.url, conf->url) && same_str(src->conf.ca_file, conf->ca_file))
            break;
    }
    if (src) {
        if (conf->refresh > 0 && conf->refresh < src->conf.refresh)
            src->conf.refresh = conf->refresh;
        if (conf->min_refresh > 0 && conf->min_refresh < src->conf.min_refresh)
            src->conf.min_refresh = conf->min_refresh;
        conf_normalize(&src->conf);
        return src;
    }
    src = apr_pcalloc(ks->pool, sizeof(*src));
    src->ks = ks;
    src->conf = *conf;
    src->conf.url = conf->url ? apr_pstrdup(ks->pool, conf->url) : "";
    src->conf.ca_file = conf->ca_file ? apr_pstrdup(ks->pool, conf->ca_file) : NULL;
    conf_normalize(&src->conf);
    src->next = ks->sources;
    ks->sources = src;
    return src;
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

/* ---- holds ---------------------------------------------------------------- */

ajw_keyhold_t *ajw_source_acquire(ajw_source_t *src, apr_interval_time_t wait)
{
    ajw_keyhold_t *h;
    apr_time_t now, deadline;
    unsigned long long seen;

    if (!src || !src->mu)
        return NULL;
    apr_thread_mutex_lock(src->mu);
    now = mono_now();
    deadline = now + (wait > 0 ? wait : 0);
    seen = src->attempts;
    /* Wait for the first attempt, or for one already running; when an
     * attempt has failed and none is running, answer at once instead of
     * parking request threads for the whole outage. */
    while (!src->current && src->running && now < deadline && src->attempts == seen
           && (seen == 0 || src->in_flight)) {
        apr_thread_cond_timedwait(src->attempted, src->mu, deadline - now);
        now = mono_now();
    }
    h = src->current;
    if (h)
        apr_atomic_inc32(&h->refs);
    apr_thread_mutex_unlock(src->mu);
    return h;
}

void ajw_source_release(ajw_keyhold_t *hold)
{
    /* No lock: a hold that is not current any more can only lose references,
     * and the hold lives in the set's pool, so the last one frees both. */
    if (hold && apr_atomic_dec32(&hold->refs) == 0)
        ajw_keyset_free((ajw_keyset_t *)hold->set);
}

void ajw_source_get_status(ajw_source_t *src, ajw_source_status_t *st)
{
    if (!src->mu) {
        *st = src->st;
        return;
    }
    apr_thread_mutex_lock(src->mu);
    *st = src->st;
    apr_thread_mutex_unlock(src->mu);
}

void ajw_source_kick(ajw_source_t *src)
{
    ajw_keystore_t *ks;
    if (!src || !src->ks->mu)
        return;
    ks = src->ks;
    apr_thread_mutex_lock(ks->mu);
    if (!src->kicked
        && (!src->started || mono_now() - src->last_start >= src->conf.min_refresh)) {
        src->kicked = 1;
        if (src->wake)
            apr_thread_cond_signal(src->wake);
    }
    apr_thread_mutex_unlock(ks->mu);
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

/* ---- one attempt ------------------------------------------------------------ */

static int stop_requested(ajw_keystore_t *ks)
{
    int stop;
    apr_thread_mutex_lock(ks->mu);
    stop = ks->stop;
    apr_thread_mutex_unlock(ks->mu);
    return stop;
}

/* The fetch's cancel hook: shutdown interrupts a hung transfer. */
static int fetch_cancelled(void *baton)
{
    return stop_requested(baton);
}

static void log_notes(ajw_source_t *src, const ajw_keyset_t *set, const unsigned char hash[32])
{
    int i;
    if (src->has_noted_hash && memcmp(src->noted_hash, hash, 32) == 0)
        return;
    memcpy(src->noted_hash, hash, 32);
    src->has_noted_hash = 1;
    for (i = 0; set->notes && i < set->notes->nelts; i++)
        ajw_log(AJW_LOG_WARN, "JWKS %s: %s", src->conf.url, APR_ARRAY_IDX(set->notes, i, const char *));
}

/* Does set hold the keys already published? Only this source's thread
 * publishes, so the set it reads stays alive (the source holds a reference)
 * after the lock is dropped. */
static int same_as_published(ajw_source_t *src, const ajw_keyset_t *set)
{
    const ajw_keyset_t *cur;
    apr_thread_mutex_lock(src->mu);
    cur = src->current ? src->current->set : NULL;
    apr_thread_mutex_unlock(src->mu);
    return cur && ajw_keyset_same_keys(cur, set);
}

/* A 200 answer: parse it into *out (OUTCOME_NEW), or notice it is the
 * published document again (OUTCOME_UNCHANGED), or fail with *why. */
static outcome_e take_document(ajw_source_t *src, const ajw_fetch_res_t *res,
                               ajw_keyset_t **out, unsigned char hash[32], const char **why)
{
    ajw_keyset_t *set = NULL;
    ajw_error_t err;
    ajw_reason_e rc;

    if (ajw_crypt_sha256(hash, res->body, res->len) != 0) {
        *why = "cannot hash the document";
        return OUTCOME_FAILED;
    }
    if (src->has_doc_hash && memcmp(src->doc_hash, hash, 32) == 0)
        return OUTCOME_UNCHANGED;
    memset(&err, 0, sizeof(err));
    rc = ajw_keyset_parse(&set, res->body, res->len, src->conf.max_size, NULL, &err);
    if (rc != AJW_OK || !set) {
        *why = apr_psprintf(src->scratch, "invalid JWKS (%s): %s", ajw_reason_name(rc), err.text);
        return OUTCOME_FAILED;
    }
    log_notes(src, set, hash);
    if (set->keys->nelts == 0) {
        *why = apr_psprintf(src->scratch, "JWKS has no usable keys (%d skipped)",
                            set->notes ? set->notes->nelts : 0);
        ajw_keyset_free(set);
        return OUTCOME_FAILED;
    }
    if (same_as_published(src, set)) {
        /* Reordered or reformatted, same keys: keep the generation, so the
         * token cache stays warm; remember this document to skip the parse. */
        ajw_keyset_free(set);
        memcpy(src->doc_hash, hash, 32);
        src->has_doc_hash = 1;
        return OUTCOME_UNCHANGED;
    }
    *out = set;
    return OUTCOME_NEW;
}

/* Make set the current one of src; the previous one loses the source's reference. */
static void publish(ajw_source_t *src, ajw_keyset_t *set, apr_time_t now)
{
    ajw_keyhold_t *h = apr_pcalloc(set->pool, sizeof(*h)), *old;
    h->set = set;
    h->src = src;
    h->refs = 1;                      /* the source's own reference */
    apr_thread_mutex_lock(src->mu);
    old = src->current;
    src->current = h;
    h->generation = ++src->st.generation;
    src->st.loaded = 1;
    src->st.nkeys = set->keys->nelts;
    src->st.last_success = now;
    apr_thread_mutex_unlock(src->mu);
    ajw_source_release(old);
}

static void begin_attempt(ajw_source_t *src, apr_time_t now, int *loaded, unsigned *failures)
{
    apr_thread_mutex_lock(src->mu);
    src->in_flight = 1;
    src->st.last_attempt = now;
    *loaded = src->st.loaded;
    *failures = src->st.failures;
    apr_thread_mutex_unlock(src->mu);
}

/* Record the end of an attempt (why NULL = success) and wake waiters. */
static void end_attempt(ajw_source_t *src, const char *why, apr_time_t now, apr_time_t next)
{
    apr_thread_mutex_lock(src->mu);
    src->in_flight = 0;
    src->attempts++;
    if (why) {
        src->st.failures++;
        apr_cpystrn(src->st.last_error, why, sizeof(src->st.last_error));
    }
    else {
        src->st.failures = 0;
        src->st.last_error[0] = '\0';
        src->st.last_success = now;
    }
    src->st.next_attempt = next;
    apr_thread_cond_broadcast(src->attempted);
    apr_thread_mutex_unlock(src->mu);
}

/* Fetch src and classify the answer; *set gets a new key set on OUTCOME_NEW. */
static outcome_e fetch_source(ajw_keystore_t *ks, ajw_source_t *src, int loaded,
                              ajw_keyset_t **set, long long *max_age, const char **why)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    unsigned char hash[32];
    outcome_e oc;
    apr_status_t rv;

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    req.url = src->conf.url;
    req.ca_file = src->conf.ca_file;
    req.etag = (loaded && src->etag[0]) ? src->etag : NULL;
    req.timeout = src->conf.timeout;
    req.max_size = src->conf.max_size;
    req.cancelled = fetch_cancelled;
    req.cancel_baton = ks;
    rv = ks->fetcher->fetch(ks->fetcher, &req, &res, src->scratch);
    *max_age = res.max_age;
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(src->scratch, "fetch failed: %s", res.error ? res.error : "unknown error");
        return OUTCOME_FAILED;
    }
    if (res.status == 304 && req.etag)
        return OUTCOME_UNCHANGED;
    if (res.status != 200) {
        *why = apr_psprintf(src->scratch, "HTTP status %d", res.status);
        return OUTCOME_FAILED;
    }
    oc = take_document(src, &res, set, hash, why);
    if (oc == OUTCOME_FAILED)
        return oc;
    if (oc == OUTCOME_NEW) {
        memcpy(src->doc_hash, hash, 32);
        src->has_doc_hash = 1;
    }
    if (res.etag && strlen(res.etag) < sizeof(src->etag))
        apr_cpystrn(src->etag, res.etag, sizeof(src->etag));
    else
        src->etag[0] = '\0';
    return oc;
}

static void log_outcome(ajw_source_t *src, outcome_e oc, int loaded, unsigned failures,
                        const char *why, int nkeys, apr_interval_time_t delay)
{
    const char *url = src->conf.url;
    double secs = (double)delay / (double)APR_USEC_PER_SEC;
    if (oc == OUTCOME_FAILED && !loaded)
        ajw_log(AJW_LOG_ERR, "no keys from %s: %s (attempt %u, retry in %.1f s)",
                url, why, failures + 1, secs);
    else if (oc == OUTCOME_FAILED)
        ajw_log(AJW_LOG_WARN, "refresh of %s failed: %s (%u in a row, keeping the previous "
                "keys, retry in %.1f s)", url, why, failures + 1, secs);
    else if (oc == OUTCOME_NEW && !loaded)
        ajw_log(AJW_LOG_NOTICE, "loaded %d keys from %s", nkeys, url);
    else if (oc == OUTCOME_NEW)
        ajw_log(AJW_LOG_INFO, "keys of %s changed: now %d keys", url, nkeys);
    else
        ajw_log(AJW_LOG_DEBUG, "keys of %s unchanged", url);
    if (oc != OUTCOME_FAILED && failures > 0)
        ajw_log(AJW_LOG_INFO, "refresh of %s works again after %u failures", url, failures);
}

static void refresh_source(ajw_keystore_t *ks, ajw_source_t *src)
{
    ajw_keyset_t *set = NULL;
    const char *why = NULL;
    long long max_age = -1;
    apr_interval_time_t delay;
    apr_time_t now = apr_time_now();    /* wall clock: status only */
    unsigned failures;
    int loaded, nkeys = 0;
    outcome_e oc;

    begin_attempt(src, now, &loaded, &failures);
    oc = fetch_source(ks, src, loaded, &set, &max_age, &why);
    now = apr_time_now();
    if (oc == OUTCOME_NEW) {
        nkeys = set->keys->nelts;
        publish(src, set, now);
    }
    delay = (oc == OUTCOME_FAILED) ? backoff_delay(src, &src->conf, failures + 1)
                                   : steady_delay(&src->conf, max_age);
    src->next_due = mono_now() + delay;
    /* A transfer cut short by shutdown is not worth an error line. */
    if (oc != OUTCOME_FAILED || !stop_requested(ks))
        log_outcome(src, oc, loaded, failures, why, nkeys, delay);
    end_attempt(src, oc == OUTCOME_FAILED ? why : NULL, now, now + delay);
}

/* ---- the thread ------------------------------------------------------------ */

/* One source's thread: sleep until due, kicked or stopped; fetch; repeat. */
static void *APR_THREAD_FUNC refresh_main(apr_thread_t *thd, void *data)
{
    ajw_source_t *src = data;
    ajw_keystore_t *ks = src->ks;
    apr_time_t now;
    (void)thd;
    apr_thread_mutex_lock(ks->mu);
    while (!ks->stop) {
        now = mono_now();
        if (src->kicked || now >= src->next_due) {
            src->kicked = 0;
            src->started = 1;
            src->last_start = now;
            apr_thread_mutex_unlock(ks->mu);
            refresh_source(ks, src);
            apr_pool_clear(src->scratch);
            apr_thread_mutex_lock(ks->mu);
        }
        else {
            /* Spurious wakeups and timeouts both just re-check. */
            apr_interval_time_t d = src->next_due - now;
            apr_thread_cond_timedwait(src->wake, ks->mu, d < 1000 ? 1000 : d);
        }
    }
    apr_thread_mutex_unlock(ks->mu);
    return NULL;
}

/* ---- start / stop -------------------------------------------------------------- */

static void set_running(ajw_source_t *src, int running)
{
    apr_thread_mutex_lock(src->mu);
    src->running = running;
    apr_thread_cond_broadcast(src->attempted);
    apr_thread_mutex_unlock(src->mu);
}

void ajw_keystore_stop(ajw_keystore_t *ks)
{
    ajw_source_t *src;
    apr_status_t trv;
    if (!ks || !ks->threads)
        return;
    apr_thread_mutex_lock(ks->mu);
    ks->stop = 1;
    for (src = ks->sources; src; src = src->next) {
        if (src->wake)
            apr_thread_cond_broadcast(src->wake);
    }
    apr_thread_mutex_unlock(ks->mu);
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
        apr_thread_mutex_lock(src->mu);
        h = src->current;
        src->current = NULL;
        apr_thread_mutex_unlock(src->mu);
        ajw_source_release(h);
        src->mu = NULL;
        src->attempted = NULL;
        src->wake = NULL;
        if (src->scratch)
            apr_pool_destroy(src->scratch);
        src->scratch = NULL;
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
    rv = apr_thread_mutex_create(&ks->mu, APR_THREAD_MUTEX_DEFAULT, ks->rpool);
    for (src = ks->sources; src && rv == APR_SUCCESS; src = src->next) {
        src->thread = NULL;
        rv = apr_thread_mutex_create(&src->mu, APR_THREAD_MUTEX_DEFAULT, ks->rpool);
        if (rv == APR_SUCCESS)
            rv = apr_thread_cond_create(&src->attempted, ks->rpool);
        if (rv == APR_SUCCESS)
            rv = apr_thread_cond_create(&src->wake, ks->rpool);
        if (rv == APR_SUCCESS)
            rv = apr_pool_create_unmanaged_ex(&src->scratch, NULL, NULL);
        src->current = NULL;
        memset(&src->st, 0, sizeof(src->st));
        src->attempts = 0;
        src->in_flight = 0;
        src->running = 1;
        src->kicked = 0;
        src->started = 0;
        src->last_start = 0;
        src->next_due = 0;
        src->etag[0] = '\0';
        src->has_doc_hash = src->has_noted_hash = 0;
        rng_seed(src);
    }
    ks->stop = 0;
    ks->threads = 0;
    return rv;
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
