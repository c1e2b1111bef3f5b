/* test_keystore.c — the key store with a fake fetcher: loading, failures,
 * generations, 304, kick rate limit, holds across swaps, stop, fork; the
 * shared level (start from the shared copy, coordination between stores and
 * processes), bounded staleness, waiting for a rotation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_atomic.h>

#include "ajw_keystore.h"
#include "ajw_log.h"

/* Real P-256 public keys (generated once with jwcrypto). */
#define KEY_A "{\"crv\":\"P-256\",\"kid\":\"key-a\",\"kty\":\"EC\"," \
    "\"x\":\"BSN7EblVGdxrU5yAWllqV0KP6qDT3K5aGKmURtvnH1Y\"," \
    "\"y\":\"_zM7kr1iHlSkfVPf7w6QlZ2cv_Vya0GSunTr8peZKGY\"}"
#define KEY_B "{\"crv\":\"P-256\",\"kid\":\"key-b\",\"kty\":\"EC\"," \
    "\"x\":\"60IobOJ-0WFTtSrt3Kw0zJx_4EPauEsMQ9R3nh1XQpM\"," \
    "\"y\":\"qbWZ7Qqs19U-Lfx8XBMkLElZWg-DWFDix6HeeEUJsls\"}"
static const char DOC_A[] = "{\"keys\":[" KEY_A "]}";
static const char DOC_B[] = "{\"keys\":[" KEY_B "]}";
static const char DOC_AB[] = "{\"keys\":[" KEY_A "," KEY_B "]}";
static const char DOC_BA[] = "{ \"keys\" : [" KEY_B ",\n" KEY_A "] }";   /* same keys */
static const char DOC_OCT[] = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"s\",\"k\":\"c2VjcmV0\"}]}";

#define URL "https://idp.example/jwks"
#define MS(n) ((apr_interval_time_t)(n) * 1000)
#define DEADLINE MS(5000)

/* ---- fake fetcher: all fields guarded by mu ---------------------------- */

typedef struct fake_t {
    pthread_mutex_t mu;
    const char *doc;          /* body of a 200 */
    const char *etag;         /* ETag of a 200, NULL = none */
    int fail;                 /* transport failure */
    int status;               /* status when not failing */
    int honor_etag;           /* 304 when If-None-Match equals etag */
    long long max_age;
    apr_interval_time_t delay;
    int hang;                 /* block until the request is cancelled (max 10 s) */
    const char *hang_url;     /* hang for this URL only (NULL = none) */
    int calls;
    int calls_304;
    char last_inm[64];
    char last_hdr[64];        /* the first extra header of the last request */
    char last_proxy[64];
    int count_fd;             /* >= 0: one byte appended per call (counts across fork) */
} fake_t;

static apr_status_t fake_fetch(ajw_fetcher_t *self, const ajw_fetch_req_t *req,
                               ajw_fetch_res_t *res, apr_pool_t *p)
{
    fake_t *f = self->baton;
    apr_interval_time_t delay;
    int fail, hang;
    memset(res, 0, sizeof(*res));
    res->max_age = -1;
    pthread_mutex_lock(&f->mu);
    f->calls++;
    if (f->count_fd >= 0 && write(f->count_fd, "x", 1) != 1)
        f->calls += 1000;         /* make the test fail loudly */
    delay = f->delay;
    fail = f->fail;
    hang = f->hang || (f->hang_url && strcmp(req->url, f->hang_url) == 0);
    snprintf(f->last_inm, sizeof(f->last_inm), "%s", req->etag ? req->etag : "");
    snprintf(f->last_hdr, sizeof(f->last_hdr), "%s",
             req->headers && req->headers[0] ? req->headers[0] : "");
    snprintf(f->last_proxy, sizeof(f->last_proxy), "%s", req->proxy ? req->proxy : "");
    if (!fail && f->honor_etag && req->etag && f->etag && strcmp(req->etag, f->etag) == 0) {
        res->status = 304;
        f->calls_304++;
    }
    else if (!fail) {
        res->status = f->status;
        res->body = apr_pstrdup(p, f->doc);
        res->len = strlen(f->doc);
        res->etag = f->etag ? apr_pstrdup(p, f->etag) : NULL;
    }
    res->max_age = f->max_age;
    pthread_mutex_unlock(&f->mu);
    if (delay)
        apr_sleep(delay);
    if (hang) {
        apr_time_t end = apr_time_now() + MS(10000);
        while (apr_time_now() < end && !(req->cancelled && req->cancelled(req->cancel_baton)))
            apr_sleep(MS(5));
        res->status = 0;
        res->error = "cancelled";
        return APR_EGENERAL;
    }
    if (fail) {
        res->error = "connection refused (fake)";
        return APR_ECONNREFUSED;
    }
    return APR_SUCCESS;
}

static fake_t fake;
static ajw_fetcher_t fake_fetcher = { fake_fetch, &fake };

static void fake_reset(const char *doc)
{
    pthread_mutex_lock(&fake.mu);
    fake.doc = doc;
    fake.etag = NULL;
    fake.fail = 0;
    fake.status = 200;
    fake.honor_etag = 0;
    fake.max_age = -1;
    fake.delay = 0;
    fake.hang = 0;
    fake.hang_url = NULL;
    fake.calls = 0;
    fake.calls_304 = 0;
    fake.last_inm[0] = '\0';
    fake.count_fd = -1;
    pthread_mutex_unlock(&fake.mu);
}

static int fake_calls(void)
{
    int n;
    pthread_mutex_lock(&fake.mu);
    n = fake.calls;
    pthread_mutex_unlock(&fake.mu);
    return n;
}

static void fake_set(const char *doc, int fail)
{
    pthread_mutex_lock(&fake.mu);
    fake.doc = doc;
    fake.fail = fail;
    pthread_mutex_unlock(&fake.mu);
}

/* ---- a wall clock the tests can step ------------------------------------------ */

/* Interposes APR's apr_time_now (the executable's definition wins) so a test
 * can step the wall clock, as NTP or a VM restore does. */
static long long clock_offset_us;  /* atomic */

apr_time_t apr_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (apr_time_t)ts.tv_sec * APR_USEC_PER_SEC + ts.tv_nsec / 1000
           + __atomic_load_n(&clock_offset_us, __ATOMIC_RELAXED);
}

static void clock_step(long long us)
{
    __atomic_store_n(&clock_offset_us, us, __ATOMIC_RELAXED);
}

/* Teardown of the tests that step the clock: back to real time even when
 * one failed half-way. */
static int clock_reset(void **state)
{
    (void)state;
    clock_step(0);
    return 0;
}

/* ---- log capture ---------------------------------------------------------- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[16384];       /* guarded by log_mu */

static void capture_log(void *baton, ajw_log_level_e level, const char *msg)
{
    size_t used;
    (void)baton;
    pthread_mutex_lock(&log_mu);
    used = strlen(log_buf);
    snprintf(log_buf + used, sizeof(log_buf) - used, "[%d] %s\n", (int)level, msg);
    pthread_mutex_unlock(&log_mu);
}

static int log_count(const char *needle)
{
    int n = 0;
    const char *at;
    pthread_mutex_lock(&log_mu);
    for (at = strstr(log_buf, needle); at; at = strstr(at + 1, needle))
        n++;
    pthread_mutex_unlock(&log_mu);
    return n;
}

/* log_count once it reaches want, or after ~2 s: a refresh thread logs a
 * load right after publishing the keys a waiting reader already got. */
static int log_count_soon(const char *needle, int want)
{
    int i, n = 0;
    for (i = 0; i < 200 && (n = log_count(needle)) < want; i++)
        apr_sleep(MS(10));
    return n;
}

static void log_clear(void)
{
    pthread_mutex_lock(&log_mu);
    log_buf[0] = '\0';
    pthread_mutex_unlock(&log_mu);
}

static int log_has(const char *needle)
{
    int found;
    pthread_mutex_lock(&log_mu);
    found = strstr(log_buf, needle) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}

/* ---- fixture ----------------------------------------------------------------- */

typedef struct env_t {
    apr_pool_t *p;        /* configuration pool */
    apr_pool_t *pchild;   /* per-process pool: owns the thread */
    ajw_keystore_t *ks;
    ajw_source_t *src;
} env_t;

static void env_conf(ajw_source_conf_t *c, long refresh_ms, long min_ms)
{
    ajw_source_conf_init(c);
    c->url = URL;
    c->refresh = MS(refresh_ms);
    c->min_refresh = MS(min_ms);
    c->timeout = MS(1000);
}

static void env_start(env_t *e, long refresh_ms, long min_ms)
{
    ajw_source_conf_t c;
    memset(e, 0, sizeof(*e));
    assert_int_equal(apr_pool_create(&e->p, NULL), APR_SUCCESS);
    assert_int_equal(apr_pool_create(&e->pchild, e->p), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&e->ks, e->p), APR_SUCCESS);
    env_conf(&c, refresh_ms, min_ms);
    e->src = ajw_keystore_add(e->ks, &c);
    assert_non_null(e->src);
    assert_int_equal(ajw_keystore_start(e->ks, &fake_fetcher, e->pchild), APR_SUCCESS);
}

static void env_end(env_t *e)
{
    apr_pool_destroy(e->pchild);   /* pre-cleanup stops and joins */
    apr_pool_destroy(e->p);
}

static ajw_source_status_t status_of(ajw_source_t *src)
{
    ajw_source_status_t st;
    ajw_source_get_status(src, &st);
    return st;
}

/* Poll until the source's generation reaches gen (bounded). */
static int wait_generation(ajw_source_t *src, unsigned long long gen)
{
    apr_time_t end = apr_time_now() + DEADLINE;
    while (apr_time_now() < end) {
        if (status_of(src).generation >= gen)
            return 1;
        apr_sleep(MS(5));
    }
    return 0;
}

static int wait_calls(int n)
{
    apr_time_t end = apr_time_now() + DEADLINE;
    while (apr_time_now() < end) {
        if (fake_calls() >= n)
            return 1;
        apr_sleep(MS(5));
    }
    return 0;
}

static int wait_failures(ajw_source_t *src, unsigned n)
{
    apr_time_t end = apr_time_now() + DEADLINE;
    while (apr_time_now() < end) {
        if (status_of(src).failures >= n)
            return 1;
        apr_sleep(MS(5));
    }
    return 0;
}

static const char *first_kid(const ajw_keyhold_t *h)
{
    return APR_ARRAY_IDX(h->set->keys, 0, ajw_key_t *)->kid;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_first_load(void **state)
{
    env_t e;
    ajw_keyhold_t *h;
    ajw_source_status_t st;
    (void)state;
    fake_reset(DOC_AB);
    env_start(&e, 10000, 1000);
    h = ajw_source_acquire(e.src, DEADLINE);
    assert_non_null(h);
    assert_int_equal(h->set->keys->nelts, 2);
    assert_int_equal(h->generation, 1);
    st = status_of(e.src);
    assert_true(st.loaded);
    assert_int_equal(st.nkeys, 2);
    assert_int_equal(st.failures, 0);
    assert_string_equal(st.last_error, "");
    assert_true(st.last_success > 0);
    assert_true(st.next_attempt > st.last_attempt);
    assert_string_equal(ajw_source_url(e.src), URL);
    ajw_source_release(h);
    assert_true(log_has("loaded 2 keys from " URL));
    /* Never key material in the log. */
    assert_false(log_has("BSN7EblVGdxrU5yAWllqV0KP6qDT3K5aGKmURtvnH1Y"));
    env_end(&e);
}

/* prepare runs on the refresh thread before every fetch: what it puts in the
 * request (a credential that rotates, a proxy) reaches the fetcher, fresh
 * each time. (No cmocka assert off the test's thread: a flag instead.) */
static volatile apr_uint32_t prepared, wrong_baton;

static void count_prepare(void *baton, ajw_fetch_req_t *req, apr_pool_t *p)
{
    const char **h = apr_pcalloc(p, 2 * sizeof(char *));
    if (strcmp((const char *)baton, "baton"))
        apr_atomic_inc32(&wrong_baton);
    h[0] = apr_psprintf(p, "X-Call: %u", apr_atomic_inc32(&prepared) + 1);
    req->headers = h;
    req->proxy = "http://proxy.test:3128";
}

static void test_prepare_before_each_fetch(void **state)
{
    env_t e;
    ajw_source_conf_t c;
    (void)state;
    fake_reset(DOC_AB);
    apr_atomic_set32(&prepared, 0);
    apr_atomic_set32(&wrong_baton, 0);
    memset(&e, 0, sizeof(e));
    assert_int_equal(apr_pool_create(&e.p, NULL), APR_SUCCESS);
    assert_int_equal(apr_pool_create(&e.pchild, e.p), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&e.ks, e.p), APR_SUCCESS);
    env_conf(&c, 60000, 50);
    c.prepare = count_prepare;
    c.prepare_baton = "baton";
    e.src = ajw_keystore_add(e.ks, &c);
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_SUCCESS);
    assert_true(wait_generation(e.src, 1));
    apr_sleep(MS(100));
    ajw_source_kick(e.src);
    assert_true(wait_calls(2));
    apr_sleep(MS(50));
    pthread_mutex_lock(&fake.mu);
    assert_string_equal(fake.last_hdr, "X-Call: 2");
    assert_string_equal(fake.last_proxy, "http://proxy.test:3128");
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(apr_atomic_read32(&prepared), 2);
    assert_int_equal(apr_atomic_read32(&wrong_baton), 0);
    env_end(&e);
}

static void test_acquire_bounded_when_failing(void **state)
{
    env_t e;
    apr_time_t t0, took;
    ajw_source_status_t st;
    (void)state;
    fake_reset(DOC_A);
    fake_set(DOC_A, 1);
    env_start(&e, 10000, 1000);
    t0 = apr_time_now();
    assert_null(ajw_source_acquire(e.src, MS(300)));
    took = apr_time_now() - t0;
    assert_true(took < MS(3000));
    assert_true(wait_failures(e.src, 1));
    st = status_of(e.src);
    assert_false(st.loaded);
    assert_non_null(strstr(st.last_error, "connection refused"));
    /* An attempt failed and none is running: no waiting at all now. */
    t0 = apr_time_now();
    assert_null(ajw_source_acquire(e.src, MS(2000)));
    assert_true(apr_time_now() - t0 < MS(1500));
    /* First-load backoff: about 1 s (±20%) after the first failure. */
    st = status_of(e.src);
    assert_true(st.next_attempt - st.last_attempt >= MS(790));
    assert_true(st.next_attempt - st.last_attempt <= MS(1300));
    assert_true(log_has("no keys from " URL));
    env_end(&e);
}

static void test_acquire_without_start(void **state)
{
    apr_pool_t *p;
    ajw_keystore_t *ks;
    ajw_source_conf_t c;
    ajw_source_t *src;
    ajw_source_status_t st;
    (void)state;
    assert_int_equal(apr_pool_create(&p, NULL), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&ks, p), APR_SUCCESS);
    env_conf(&c, 1000, 100);
    src = ajw_keystore_add(ks, &c);
    assert_null(ajw_source_acquire(src, MS(100)));
    ajw_source_kick(src);                 /* harmless before start */
    ajw_source_get_status(src, &st);
    assert_false(st.loaded);
    ajw_keystore_stop(ks);                /* harmless, never started */
    assert_null(ajw_source_acquire(NULL, 0));
    ajw_source_release(NULL);
    apr_pool_destroy(p);
}

static void test_keys_kept_after_failures(void **state)
{
    env_t e;
    ajw_keyhold_t *h;
    ajw_source_status_t st;
    (void)state;
    fake_reset(DOC_A);
    env_start(&e, 30, 10);
    h = ajw_source_acquire(e.src, DEADLINE);
    assert_non_null(h);
    ajw_source_release(h);
    fake_set(DOC_A, 1);
    assert_true(wait_failures(e.src, 3));
    h = ajw_source_acquire(e.src, 0);
    assert_non_null(h);
    assert_string_equal(first_kid(h), "key-a");
    assert_int_equal(h->generation, 1);
    ajw_source_release(h);
    st = status_of(e.src);
    assert_true(st.loaded);
    assert_int_equal(st.nkeys, 1);
    assert_true(st.last_error[0] != '\0');
    assert_true(log_has("refresh of " URL " failed"));
    /* A document with no usable key is a failure too: keys kept. */
    fake_set(DOC_OCT, 0);
    st = status_of(e.src);
    assert_true(wait_failures(e.src, st.failures + 2));
    st = status_of(e.src);
    assert_non_null(strstr(st.last_error, "no usable keys"));
    assert_int_equal(st.generation, 1);
    h = ajw_source_acquire(e.src, 0);
    assert_non_null(h);
    assert_string_equal(first_kid(h), "key-a");
    ajw_source_release(h);
    /* Recovery resets the failure count. */
    fake_set(DOC_B, 0);
    assert_true(wait_generation(e.src, 2));
    assert_true(wait_calls(fake_calls() + 1));
    st = status_of(e.src);
    assert_int_equal(st.failures, 0);
    env_end(&e);
}

static void test_zero_keys_first_load_fails(void **state)
{
    env_t e;
    ajw_source_status_t st;
    (void)state;
    fake_reset(DOC_OCT);
    env_start(&e, 10000, 1000);
    assert_null(ajw_source_acquire(e.src, DEADLINE));
    assert_true(wait_failures(e.src, 1));
    st = status_of(e.src);
    assert_false(st.loaded);
    assert_non_null(strstr(st.last_error, "no usable keys"));
    env_end(&e);
}

static void test_generation_on_change_only(void **state)
{
    env_t e;
    ajw_keyhold_t *h;
    int calls;
    (void)state;
    fake_reset(DOC_A);
    env_start(&e, 20, 10);
    assert_true(wait_generation(e.src, 1));
    fake_set(DOC_B, 0);
    assert_true(wait_generation(e.src, 2));
    h = ajw_source_acquire(e.src, 0);
    assert_non_null(h);
    assert_string_equal(first_kid(h), "key-b");
    assert_int_equal(h->generation, 2);
    ajw_source_release(h);
    /* The same document again and again: no new generation. */
    calls = fake_calls();
    assert_true(wait_calls(calls + 4));
    assert_int_equal(status_of(e.src).generation, 2);
    assert_true(log_has("keys of " URL " changed"));
    env_end(&e);
}

/* A document that only reorders or reformats the same keys keeps the
 * generation (and so the token cache); a real change still bumps it. */
static void test_same_keys_new_document(void **state)
{
    env_t e;
    int calls;
    (void)state;
    fake_reset(DOC_AB);
    env_start(&e, 20, 10);
    assert_true(wait_generation(e.src, 1));
    fake_set(DOC_BA, 0);
    calls = fake_calls();
    assert_true(wait_calls(calls + 4));
    assert_int_equal(status_of(e.src).generation, 1);
    assert_int_equal(status_of(e.src).nkeys, 2);
    fake_set(DOC_B, 0);
    assert_true(wait_generation(e.src, 2));
    assert_int_equal(status_of(e.src).nkeys, 1);
    env_end(&e);
}

static void test_not_modified_keeps_set(void **state)
{
    env_t e;
    ajw_keyhold_t *h;
    int n304;
    (void)state;
    fake_reset(DOC_A);
    pthread_mutex_lock(&fake.mu);
    fake.etag = "\"v1\"";
    fake.honor_etag = 1;
    pthread_mutex_unlock(&fake.mu);
    env_start(&e, 20, 10);
    assert_true(wait_generation(e.src, 1));
    assert_true(wait_calls(4));
    pthread_mutex_lock(&fake.mu);
    n304 = fake.calls_304;
    assert_string_equal(fake.last_inm, "\"v1\"");
    pthread_mutex_unlock(&fake.mu);
    assert_true(n304 >= 2);
    h = ajw_source_acquire(e.src, 0);
    assert_non_null(h);
    assert_int_equal(h->generation, 1);
    assert_string_equal(first_kid(h), "key-a");
    ajw_source_release(h);
    assert_int_equal(status_of(e.src).failures, 0);
    env_end(&e);
}

static void test_kick_rate_limited(void **state)
{
    env_t e;
    int i, calls;
    (void)state;
    fake_reset(DOC_A);
    env_start(&e, 60000, 400);
    assert_true(wait_generation(e.src, 1));
    assert_int_equal(fake_calls(), 1);
    /* Within min_refresh of the first fetch: every kick ignored. */
    for (i = 0; i < 1000; i++)
        ajw_source_kick(e.src);
    apr_sleep(MS(50));
    calls = fake_calls();
    assert_true(calls <= 2);
    /* After min_refresh: a flood of kicks makes one fetch. */
    apr_sleep(MS(450));
    calls = fake_calls();
    for (i = 0; i < 1000; i++)
        ajw_source_kick(e.src);
    assert_true(wait_calls(calls + 1));
    apr_sleep(MS(100));
    for (i = 0; i < 1000; i++)
        ajw_source_kick(e.src);
    apr_sleep(MS(50));
    assert_true(fake_calls() <= calls + 2);
    env_end(&e);
}

static void test_max_age_clamped_to_min_refresh(void **state)
{
    env_t e;
    (void)state;
    fake_reset(DOC_A);
    pthread_mutex_lock(&fake.mu);
    fake.max_age = 0;                  /* no-cache: refresh as early as allowed */
    pthread_mutex_unlock(&fake.mu);
    env_start(&e, 60000, 20);
    /* With the 60 s refresh only one fetch would happen. */
    assert_true(wait_calls(4));
    assert_int_equal(status_of(e.src).generation, 1);
    env_end(&e);
}

static void test_hold_survives_swap(void **state)
{
    env_t e;
    ajw_keyhold_t *old, *cur;
    (void)state;
    fake_reset(DOC_A);
    env_start(&e, 20, 10);
    old = ajw_source_acquire(e.src, DEADLINE);
    assert_non_null(old);
    fake_set(DOC_B, 0);
    assert_true(wait_generation(e.src, 2));
    cur = ajw_source_acquire(e.src, 0);
    assert_non_null(cur);
    assert_ptr_not_equal(old, cur);
    /* The old set is still intact (ASan would flag a use after free). */
    assert_string_equal(first_kid(old), "key-a");
    assert_non_null(APR_ARRAY_IDX(old->set->keys, 0, ajw_key_t *)->pkey);
    assert_string_equal(first_kid(cur), "key-b");
    ajw_source_release(old);               /* frees the old set (ASan: no leak) */
    ajw_source_release(cur);
    env_end(&e);
}

static void test_stop_is_prompt(void **state)
{
    env_t e;
    apr_time_t t0;
    ajw_keyhold_t *h;
    (void)state;
    fake_reset(DOC_A);
    env_start(&e, 60000, 1000);
    assert_true(wait_generation(e.src, 1));
    t0 = apr_time_now();                   /* the thread sleeps for 60 s */
    ajw_keystore_stop(e.ks);
    assert_true(apr_time_now() - t0 < MS(1000));
    ajw_keystore_stop(e.ks);               /* idempotent */
    h = ajw_source_acquire(e.src, MS(100)); /* keys stay readable */
    assert_non_null(h);
    ajw_source_release(h);
    env_end(&e);

    /* Stop during a slow fetch waits for that fetch only. */
    fake_reset(DOC_A);
    pthread_mutex_lock(&fake.mu);
    fake.delay = MS(200);
    pthread_mutex_unlock(&fake.mu);
    env_start(&e, 60000, 1000);
    assert_true(wait_calls(1));
    t0 = apr_time_now();
    env_end(&e);
    assert_true(apr_time_now() - t0 < MS(2000));

    /* A hung fetch is cancelled by stop. */
    fake_reset(DOC_A);
    pthread_mutex_lock(&fake.mu);
    fake.hang = 1;
    pthread_mutex_unlock(&fake.mu);
    env_start(&e, 60000, 1000);
    assert_true(wait_calls(1));
    t0 = apr_time_now();
    ajw_keystore_stop(e.ks);
    assert_true(apr_time_now() - t0 < MS(2000));
    assert_null(ajw_source_acquire(e.src, MS(100)));
    env_end(&e);
}

static void test_same_url_same_source(void **state)
{
    apr_pool_t *p;
    ajw_keystore_t *ks;
    ajw_source_conf_t c;
    ajw_source_t *a, *b, *other, *with_ca;
    (void)state;
    assert_int_equal(apr_pool_create(&p, NULL), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&ks, p), APR_SUCCESS);
    env_conf(&c, 1000, 100);
    a = ajw_keystore_add(ks, &c);
    c.refresh = MS(500);
    c.url = apr_pstrdup(p, URL);           /* equal text, different pointer */
    b = ajw_keystore_add(ks, &c);
    assert_ptr_equal(a, b);
    c.url = "https://other.example/jwks";
    other = ajw_keystore_add(ks, &c);
    assert_ptr_not_equal(a, other);
    c.url = URL;
    c.ca_file = "/etc/ssl/ca.pem";
    with_ca = ajw_keystore_add(ks, &c);
    assert_ptr_not_equal(a, with_ca);
    apr_pool_destroy(p);
}

/* httpd builds the configuration in the parent and starts threads in each
 * child: create/add before fork, start after. */
static void test_fork_after_config(void **state)
{
    apr_pool_t *p, *pchild;
    ajw_keystore_t *ks;
    ajw_source_conf_t c;
    ajw_source_t *src;
    pid_t pid;
    int wst = 0;
    (void)state;
    fake_reset(DOC_A);
    assert_int_equal(apr_pool_create(&p, NULL), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&ks, p), APR_SUCCESS);
    env_conf(&c, 1000, 100);
    src = ajw_keystore_add(ks, &c);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ajw_keyhold_t *h;
        int ok;
        apr_pool_create(&pchild, p);
        ok = ajw_keystore_start(ks, &fake_fetcher, pchild) == APR_SUCCESS;
        h = ok ? ajw_source_acquire(src, DEADLINE) : NULL;
        ok = h && h->set->keys->nelts == 1;
        ajw_source_release(h);
        apr_pool_destroy(pchild);
        apr_pool_destroy(p);
        apr_terminate();
        _exit(ok ? 0 : 3);
    }
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst));
    assert_int_equal(WEXITSTATUS(wst), 0);
    /* The parent has no thread and no keys. */
    assert_false(status_of(src).loaded);
    apr_pool_destroy(p);
}

static void test_restart_after_cleanup(void **state)
{
    env_t e;
    ajw_keyhold_t *h;
    (void)state;
    fake_reset(DOC_A);
    env_start(&e, 10000, 1000);
    assert_true(wait_generation(e.src, 1));
    apr_pool_destroy(e.pchild);
    assert_int_equal(apr_pool_create(&e.pchild, e.p), APR_SUCCESS);
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_SUCCESS);
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_EINVAL);
    h = ajw_source_acquire(e.src, DEADLINE);
    assert_non_null(h);
    assert_int_equal(h->generation, 1);
    ajw_source_release(h);
    env_end(&e);
}

/* One hung IdP must not hold back another source's first load. */
static void test_hung_source_does_not_block_others(void **state)
{
    apr_pool_t *p, *pchild;
    ajw_keystore_t *ks;
    ajw_source_conf_t c;
    ajw_source_t *good, *hung;
    ajw_keyhold_t *h;
    apr_time_t t0;
    (void)state;
    fake_reset(DOC_A);
    pthread_mutex_lock(&fake.mu);
    fake.hang_url = "https://hung.example/jwks";
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(apr_pool_create(&p, NULL), APR_SUCCESS);
    assert_int_equal(apr_pool_create(&pchild, p), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&ks, p), APR_SUCCESS);
    env_conf(&c, 60000, 1000);
    good = ajw_keystore_add(ks, &c);
    c.url = "https://hung.example/jwks";
    hung = ajw_keystore_add(ks, &c);
    assert_int_equal(ajw_keystore_start(ks, &fake_fetcher, pchild), APR_SUCCESS);
    t0 = apr_time_now();
    h = ajw_source_acquire(good, MS(2000));
    assert_non_null(h);
    assert_true(apr_time_now() - t0 < MS(1000));
    ajw_source_release(h);
    assert_false(status_of(hung).loaded);
    t0 = apr_time_now();
    apr_pool_destroy(pchild);              /* cancels the hung fetch */
    assert_true(apr_time_now() - t0 < MS(3000));
    apr_pool_destroy(p);
}

/* Stepping the wall clock back (NTP, VM restore) must not stall refreshes
 * or kicks for the size of the step. */
static void test_clock_step_back(void **state)
{
    env_t e;
    int calls;
    (void)state;
    fake_reset(DOC_A);
    env_start(&e, 40, 20);
    assert_true(wait_generation(e.src, 1));
    clock_step(-86400LL * APR_USEC_PER_SEC);
    calls = fake_calls();
    assert_true(wait_calls(calls + 3));
    clock_step(0);
    env_end(&e);

    /* A kick right after a step back is not rate-limited by the step. */
    fake_reset(DOC_A);
    env_start(&e, 60000, 100);
    assert_true(wait_generation(e.src, 1));
    apr_sleep(MS(150));
    clock_step(-86400LL * APR_USEC_PER_SEC);
    calls = fake_calls();
    ajw_source_kick(e.src);
    assert_true(wait_calls(calls + 1));
    clock_step(0);
    env_end(&e);
}

/* A hold released after the pchild cleanup (which destroys the locks) keeps
 * its set readable and frees it (ASan: no use after free, no leak). */
static void test_release_after_cleanup(void **state)
{
    env_t e;
    ajw_keyhold_t *h;
    (void)state;
    fake_reset(DOC_A);
    env_start(&e, 10000, 1000);
    h = ajw_source_acquire(e.src, DEADLINE);
    assert_non_null(h);
    apr_pool_destroy(e.pchild);
    assert_string_equal(first_kid(h), "key-a");
    ajw_source_release(h);
    apr_pool_destroy(e.p);
}

/* ---- the shared level ------------------------------------------------------------ */

typedef struct shdir_t {
    char root[64];
    const char *dir;
    ajw_shared_t *sh;
} shdir_t;

/* The records' key of the server under test, and an attacker's. */
static const unsigned char SHKEY[32] = "keystore-test-record-key-0123456";
static const unsigned char EVILKEY[32] = "keystore-test-attacker-key-01234";

static void shdir_make(shdir_t *d, apr_pool_t *p)
{
    const char *why = NULL;
    snprintf(d->root, sizeof(d->root), "/tmp/ajw_ks_XXXXXX");
    assert_non_null(mkdtemp(d->root));
    d->dir = apr_pstrcat(p, d->root, "/shared", NULL);
    assert_int_equal(ajw_shared_file_check_dir(d->dir, geteuid(), getegid(), &why, p), APR_SUCCESS);
    assert_int_equal(ajw_shared_file_create(&d->sh, d->dir, SHKEY, &why, p), APR_SUCCESS);
}

static void shdir_remove(shdir_t *d)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->root);
    assert_int_equal(system(cmd), 0);
}

static void shared_put(ajw_shared_t *sh, const char *doc, apr_time_t fetched, apr_pool_t *p)
{
    ajw_shared_doc_t d;
    const char *why = NULL;
    memset(&d, 0, sizeof(d));
    d.body = doc;
    d.len = strlen(doc);
    d.fetched = fetched;
    d.max_age = -1;
    assert_int_equal(sh->put(sh, URL, NULL, &d, &why, p), APR_SUCCESS);
}

static int shared_get(ajw_shared_t *sh, ajw_shared_doc_t *d, apr_pool_t *p)
{
    const char *why = NULL;
    return sh->get(sh, URL, NULL, AJW_MAX_JWKS_LEN_DEFAULT, d, &why, p) == APR_SUCCESS;
}

/* A store over a shared directory, not yet started. */
static void env_shared(env_t *e, ajw_shared_t *sh, long refresh_ms, long min_ms)
{
    ajw_source_conf_t c;
    memset(e, 0, sizeof(*e));
    assert_int_equal(apr_pool_create(&e->p, NULL), APR_SUCCESS);
    assert_int_equal(apr_pool_create(&e->pchild, e->p), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&e->ks, e->p), APR_SUCCESS);
    env_conf(&c, refresh_ms, min_ms);
    e->src = ajw_keystore_add(e->ks, &c);
    assert_int_equal(ajw_keystore_set_shared(e->ks, sh), APR_SUCCESS);
}

/* Waits are timed on the monotonic clock. Here the wall clock reads an hour
 * ahead of the one the kernel times wall-clock waits on, as it does for a
 * wait begun just before NTP steps the clock back an hour: a wait timed on
 * the wall clock would last the hour (before: the refresh thread slept it,
 * and a request waiting for keys could too). */
static void test_clock_step_during_wait(void **state)
{
    env_t e;
    ajw_keyhold_t *h;
    apr_time_t t0;
    int calls;
    (void)state;
    fake_reset(DOC_A);
    env_start(&e, 50, 20);
    assert_true(wait_generation(e.src, 1));
    clock_step(3600LL * APR_USEC_PER_SEC);
    calls = fake_calls();
    assert_true(wait_calls(calls + 3));   /* the refresh thread's sleeps still end */
    /* a request waiting for a refresh that publishes nothing new: bounded */
    fake_set(DOC_A, 1);
    h = ajw_source_acquire(e.src, 0);
    assert_non_null(h);
    t0 = apr_time_now();
    assert_int_not_equal(ajw_source_refresh_wait(e.src, h->generation, MS(300)),
                         AJW_REFRESH_NEWER);
    assert_true(apr_time_now() - t0 < MS(2000));
    ajw_source_release(h);
    clock_step(0);
    env_end(&e);
}

/* The wall clock steps back an hour while refreshes keep succeeding: their
 * fetch times read earlier than the last one seen, yet each is the newest
 * fetch, so AuthJWKSMaxStale never runs out (before: every token 503
 * keys_stale once max_stale passed). */
static void test_clock_step_back_keys_stay_fresh(void **state)
{
    env_t e;
    ajw_source_conf_t c;
    ajw_keyhold_t *h;
    ajw_keys_state_e why;
    apr_time_t end;
    int calls;
    (void)state;
    log_clear();
    fake_reset(DOC_A);
    memset(&e, 0, sizeof(e));
    assert_int_equal(apr_pool_create(&e.p, NULL), APR_SUCCESS);
    assert_int_equal(apr_pool_create(&e.pchild, e.p), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&e.ks, e.p), APR_SUCCESS);
    env_conf(&c, 100, 50);
    c.timeout = MS(100);
    c.max_stale = MS(400);
    e.src = ajw_keystore_add(e.ks, &c);
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_SUCCESS);
    h = ajw_source_acquire(e.src, DEADLINE);
    assert_non_null(h);
    ajw_source_release(h);
    clock_step(-3600LL * APR_USEC_PER_SEC);
    calls = fake_calls();
    end = apr_time_now() + MS(1200);   /* three times max_stale, refreshes every ~100 ms */
    while (apr_time_now() < end) {
        h = ajw_source_acquire_ex(e.src, 0, &why);
        assert_non_null(h);
        assert_int_equal(why, AJW_KEYS_OK);
        ajw_source_release(h);
        apr_sleep(MS(20));
    }
    assert_true(fake_calls() >= calls + 5);
    assert_false(status_of(e.src).stale);
    assert_int_equal(log_count("are stale"), 0);
    /* the status tells the fetch time on the clock as it reads now */
    assert_true(status_of(e.src).fetched <= apr_time_now());
    clock_step(0);
    env_end(&e);
}

/* A step back after the lease was stamped: the lease's last attempt reads
 * as "in the future", which must not rate-limit early refreshes (before:
 * every kick of the server was skipped until the clock caught up). */
static void test_clock_step_back_lease_does_not_block_kicks(void **state)
{
    env_t e;
    shdir_t d;
    ajw_keyhold_t *h;
    int calls;
    (void)state;
    log_clear();
    fake_reset(DOC_A);
    env_shared(&e, NULL, 60000, 50);
    shdir_make(&d, e.p);
    assert_int_equal(ajw_keystore_set_shared(e.ks, d.sh), APR_SUCCESS);
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_SUCCESS);
    h = ajw_source_acquire(e.src, DEADLINE);
    assert_non_null(h);
    ajw_source_release(h);
    assert_true(wait_calls(1));
    apr_sleep(MS(100));                 /* past min_refresh on every clock */
    clock_step(-3600LL * APR_USEC_PER_SEC);
    calls = fake_calls();
    fake_set(DOC_B, 0);
    ajw_source_kick(e.src);
    assert_true(wait_calls(calls + 1));
    assert_true(wait_generation(e.src, 2));
    h = ajw_source_acquire(e.src, 0);
    assert_non_null(h);
    assert_string_equal(first_kid(h), "key-b");
    ajw_source_release(h);
    clock_step(0);
    env_end(&e);
    shdir_remove(&d);
}

/* A child starting while the IdP is down starts from the shared copy, at
 * once, and schedules its refresh from the copy's fetch time. */
static void test_start_from_shared_copy(void **state)
{
    apr_pool_t *p;
    shdir_t d;
    env_t e;
    ajw_keyhold_t *h;
    ajw_source_status_t st;
    apr_time_t t0, fetched;
    (void)state;
    log_clear();
    apr_pool_create(&p, NULL);
    shdir_make(&d, p);
    fetched = apr_time_now() - apr_time_from_sec(2);
    shared_put(d.sh, DOC_AB, fetched, p);
    fake_reset(DOC_A);
    fake_set(DOC_A, 1);                          /* the IdP is down */
    env_shared(&e, d.sh, 60000, 1000);
    t0 = apr_time_now();
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_SUCCESS);
    assert_int_equal(ajw_keystore_set_shared(e.ks, d.sh), APR_EINVAL);  /* after start */
    h = ajw_source_acquire(e.src, DEADLINE);
    assert_non_null(h);
    assert_true(apr_time_now() - t0 < MS(1000));
    assert_int_equal(h->set->keys->nelts, 2);
    ajw_source_release(h);
    apr_sleep(MS(100));
    assert_int_equal(fake_calls(), 0);           /* fresh copy: no fetch at all */
    st = status_of(e.src);
    assert_true(st.from_shared);
    assert_int_equal(st.fetched, fetched);
    assert_int_equal(st.failures, 0);
    /* Next refresh: 60 s (+0-10%) after the copy's fetch, not after now. */
    assert_true(st.next_attempt >= fetched + MS(60000) - MS(50));
    assert_true(st.next_attempt <= fetched + MS(66000) + MS(50));
    assert_true(log_has("[6] loaded 2 keys from " URL " (shared copy, fetched 2 s ago)"));
    env_end(&e);

    /* An old copy (older than refresh) is published at once too, then fetched. */
    log_clear();
    shared_put(d.sh, DOC_A, apr_time_now() - apr_time_from_sec(600), p);
    fake_reset(DOC_B);
    pthread_mutex_lock(&fake.mu);
    fake.delay = MS(300);
    pthread_mutex_unlock(&fake.mu);
    env_shared(&e, d.sh, 60000, 1000);
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_SUCCESS);
    t0 = apr_time_now();
    h = ajw_source_acquire(e.src, DEADLINE);
    assert_non_null(h);
    assert_true(apr_time_now() - t0 < MS(250));  /* before the fetch ends */
    assert_string_equal(first_kid(h), "key-a");
    ajw_source_release(h);
    assert_true(wait_generation(e.src, 2));      /* the fetch brought key-b */
    h = ajw_source_acquire(e.src, 0);
    assert_string_equal(first_kid(h), "key-b");
    ajw_source_release(h);
    assert_int_equal(fake_calls(), 1);
    assert_true(log_has("[6] keys of " URL " changed: now 1 keys"));
    env_end(&e);
    apr_pool_destroy(p);
    shdir_remove(&d);
}

/* Every successful fetch (200, 304) writes the copy; a refused copy is
 * logged once and the source fetches as usual. */
static void test_fetch_writes_shared_copy(void **state)
{
    apr_pool_t *p;
    shdir_t d;
    env_t e;
    ajw_shared_doc_t rec;
    apr_time_t first;
    const char *why = NULL;
    (void)state;
    log_clear();
    apr_pool_create(&p, NULL);
    shdir_make(&d, p);
    fake_reset(DOC_A);
    pthread_mutex_lock(&fake.mu);
    fake.etag = "\"v1\"";
    fake.honor_etag = 1;
    fake.max_age = 0;                            /* refresh every min_refresh */
    pthread_mutex_unlock(&fake.mu);
    env_shared(&e, d.sh, 60000, 100);
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_SUCCESS);
    assert_true(wait_generation(e.src, 1));
    assert_true(shared_get(d.sh, &rec, p));
    assert_string_equal(rec.body, DOC_A);
    assert_string_equal(rec.etag, "\"v1\"");
    assert_int_equal(rec.max_age, 0);
    first = rec.fetched;
    /* The next refresh gets a 304: the copy keeps the body, with a new time. */
    assert_true(wait_calls(3));
    apr_sleep(MS(20));
    assert_true(shared_get(d.sh, &rec, p));
    assert_string_equal(rec.body, DOC_A);
    assert_true(rec.fetched > first);
    pthread_mutex_lock(&fake.mu);
    assert_true(fake.calls_304 >= 1);
    pthread_mutex_unlock(&fake.mu);
    env_end(&e);

    /* Another URL's record under ours: refused (WARN once), fetched as usual. */
    assert_int_equal(d.sh->put(d.sh, "https://evil.example/jwks", NULL, &rec, &why, p), APR_SUCCESS);
    {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "cd '%s' && for f in *.json; do "
                 "grep -q evil \"$f\" && cp \"$f\" keep.tmp; done; "
                 "for f in *.json; do grep -q evil \"$f\" || mv keep.tmp \"$f\"; done", d.dir);
        assert_int_equal(system(cmd), 0);
    }
    fake_reset(DOC_B);
    env_shared(&e, d.sh, 60000, 1000);
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_SUCCESS);
    assert_true(wait_generation(e.src, 1));
    assert_int_equal(fake_calls(), 1);
    assert_true(log_has("shared copy of " URL " refused"));
    assert_true(log_has("another URL"));
    {
        ajw_keyhold_t *h = ajw_source_acquire(e.src, 0);
        assert_string_equal(first_kid(h), "key-b");
        ajw_source_release(h);
    }
    env_end(&e);
    apr_pool_destroy(p);
    shdir_remove(&d);
}

/* A newer record written with another key (someone who can write the
 * directory but not read our key): never adopted, whatever its fetch time;
 * the source fetches and the record is rewritten with our key. */
static void test_shared_forged_record(void **state)
{
    apr_pool_t *p;
    shdir_t d;
    env_t e;
    ajw_shared_t *evil = NULL;
    ajw_shared_doc_t rec;
    const char *why = NULL;
    ajw_keyhold_t *h;
    (void)state;
    log_clear();
    apr_pool_create(&p, NULL);
    shdir_make(&d, p);
    assert_int_equal(ajw_shared_file_create(&evil, d.dir, EVILKEY, &why, p), APR_SUCCESS);
    memset(&rec, 0, sizeof(rec));
    rec.body = DOC_B;
    rec.len = strlen(DOC_B);
    rec.fetched = apr_time_now() + apr_time_from_sec(30);   /* "newer" than anything */
    rec.max_age = 86400;
    assert_int_equal(evil->put(evil, URL, NULL, &rec, &why, p), APR_SUCCESS);
    fake_reset(DOC_A);
    env_shared(&e, d.sh, 60000, 1000);
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_SUCCESS);
    assert_true(wait_generation(e.src, 1));
    assert_int_equal(fake_calls(), 1);
    assert_true(log_has("shared copy of " URL " refused"));
    assert_true(log_has("record MAC does not verify"));
    h = ajw_source_acquire(e.src, 0);
    assert_string_equal(first_kid(h), "key-a");
    ajw_source_release(h);
    env_end(&e);
    /* Rewritten with our key: ours reads it, the attacker's key does not. */
    assert_true(shared_get(d.sh, &rec, p));
    assert_string_equal(rec.body, DOC_A);
    assert_int_not_equal(evil->get(evil, URL, NULL, 1 << 20, &rec, &why, p), APR_SUCCESS);
    apr_pool_destroy(p);
    shdir_remove(&d);
}

/* ---- bounded staleness -------------------------------------------------------------- */

static void test_max_stale(void **state)
{
    env_t e;
    ajw_source_conf_t c;
    ajw_keyhold_t *h;
    ajw_keys_state_e ks_state;
    apr_time_t end;
    int i;
    (void)state;
    log_clear();
    fake_reset(DOC_A);
    memset(&e, 0, sizeof(e));
    assert_int_equal(apr_pool_create(&e.p, NULL), APR_SUCCESS);
    assert_int_equal(apr_pool_create(&e.pchild, e.p), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&e.ks, e.p), APR_SUCCESS);
    ajw_source_conf_init(&c);
    assert_int_equal(c.max_stale, 0);            /* unbounded by default */
    c.url = URL;
    c.refresh = MS(100);
    c.min_refresh = MS(50);
    c.timeout = MS(100);
    c.max_stale = MS(50);                        /* raised to refresh + timeout */
    e.src = ajw_keystore_add(e.ks, &c);
    c.max_stale = MS(400);
    assert_ptr_equal(ajw_keystore_add(e.ks, &c), e.src);
    assert_null(ajw_source_acquire_ex(e.src, 0, &ks_state));
    assert_int_equal(ks_state, AJW_KEYS_NONE);  /* not started */
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_SUCCESS);
    h = ajw_source_acquire_ex(e.src, DEADLINE, &ks_state);
    assert_non_null(h);
    assert_int_equal(ks_state, AJW_KEYS_OK);
    ajw_source_release(h);
    /* The IdP goes away: after max_stale (200 ms here) the keys are refused. */
    fake_set(DOC_A, 1);
    end = apr_time_now() + DEADLINE;
    do {
        apr_sleep(MS(10));
        h = ajw_source_acquire_ex(e.src, 0, &ks_state);
        ajw_source_release(h);
    } while (h && apr_time_now() < end);
    assert_null(h);
    assert_int_equal(ks_state, AJW_KEYS_STALE);
    assert_null(ajw_source_acquire(e.src, 0)); /* the old call refuses them too */
    assert_true(status_of(e.src).stale);
    assert_true(status_of(e.src).loaded);
    for (i = 0; i < 100; i++)
        assert_null(ajw_source_acquire_ex(e.src, 0, &ks_state));
    apr_sleep(MS(300));                          /* a few failed attempts more */
    assert_int_equal(log_count("are stale"), 1); /* logged once, not per request */
    assert_true(log_has("[3] keys of " URL " are stale: last successful fetch"));
    /* The IdP is back: usable again, logged once. */
    fake_set(DOC_A, 0);
    end = apr_time_now() + DEADLINE;
    while (!(h = ajw_source_acquire_ex(e.src, 0, &ks_state)) && apr_time_now() < end)
        apr_sleep(MS(10));
    assert_non_null(h);
    assert_int_equal(ks_state, AJW_KEYS_OK);
    ajw_source_release(h);
    assert_false(status_of(e.src).stale);
    assert_true(log_has("[6] keys of " URL " are fresh again"));
    env_end(&e);
}

/* A shared copy older than max_stale is not used at start. */
static void test_stale_shared_copy_not_used(void **state)
{
    apr_pool_t *p;
    shdir_t d;
    env_t e;
    ajw_source_conf_t c;
    ajw_keys_state_e ks_state;
    (void)state;
    apr_pool_create(&p, NULL);
    shdir_make(&d, p);
    shared_put(d.sh, DOC_A, apr_time_now() - apr_time_from_sec(3600), p);
    fake_reset(DOC_A);
    fake_set(DOC_A, 1);
    memset(&e, 0, sizeof(e));
    assert_int_equal(apr_pool_create(&e.p, NULL), APR_SUCCESS);
    assert_int_equal(apr_pool_create(&e.pchild, e.p), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&e.ks, e.p), APR_SUCCESS);
    env_conf(&c, 60000, 1000);
    c.max_stale = apr_time_from_sec(600);
    e.src = ajw_keystore_add(e.ks, &c);
    assert_int_equal(ajw_keystore_set_shared(e.ks, d.sh), APR_SUCCESS);
    assert_int_equal(ajw_keystore_start(e.ks, &fake_fetcher, e.pchild), APR_SUCCESS);
    assert_null(ajw_source_acquire_ex(e.src, DEADLINE, &ks_state));
    assert_int_equal(ks_state, AJW_KEYS_STALE);
    assert_true(wait_failures(e.src, 1));
    assert_false(status_of(e.src).loaded);
    env_end(&e);
    apr_pool_destroy(p);
    shdir_remove(&d);
}

/* ---- rotation ---------------------------------------------------------------------- */

typedef struct waiter_t {
    ajw_source_t *src;
    unsigned long long gen;
    apr_interval_time_t wait;     /* 0: DEADLINE */
    ajw_refresh_e out;
    apr_interval_time_t took;
} waiter_t;

static void *waiter_main(void *arg)
{
    waiter_t *w = arg;
    apr_time_t t0 = apr_time_now();
    w->out = ajw_source_refresh_wait(w->src, w->gen, w->wait ? w->wait : DEADLINE);
    w->took = apr_time_now() - t0;
    return NULL;
}

/* The IdP hangs during an early refresh and a flood of tokens with random
 * kids arrives: only the request whose kick started the fetch and the first
 * few after it wait; every other returns at once (before: each one waited
 * the whole rotation wait, parking request threads). */
static void test_rotation_wait_flood_during_hung_fetch(void **state)
{
    env_t e;
    pthread_t th[24];
    waiter_t w[24];
    int i, round, waited;
    (void)state;
    fake_reset(DOC_A);
    env_start(&e, 60000, 100);
    assert_true(wait_generation(e.src, 1));
    apr_sleep(MS(150));                 /* past min_refresh: the next kick is taken */
    pthread_mutex_lock(&fake.mu);
    fake.hang = 1;
    pthread_mutex_unlock(&fake.mu);
    /* Twice: the second flood comes while the fetch still hangs, after
     * min_refresh (a new kick is taken, queued behind it): again a few wait. */
    for (round = 0; round < 2; round++) {
        memset(w, 0, sizeof(w));
        for (i = 0; i < 24; i++) {
            w[i].src = e.src;
            w[i].gen = 1;
            w[i].wait = MS(1500);
            assert_int_equal(pthread_create(&th[i], NULL, waiter_main, &w[i]), 0);
        }
        for (waited = i = 0; i < 24; i++) {
            pthread_join(th[i], NULL);
            if (w[i].took >= MS(1000)) {
                waited++;
                assert_int_equal(w[i].out, AJW_REFRESH_TIMEOUT);
            }
            else {
                assert_int_equal(w[i].out, AJW_REFRESH_LIMITED);
                assert_true(w[i].took < MS(500));
            }
        }
        assert_true(waited >= 1);
        assert_true(waited <= 4);
    }
    env_end(&e);                        /* stop cancels the hung fetch */
}

static void test_rotation_wait(void **state)
{
    env_t e;
    ajw_keyhold_t *h;
    apr_time_t t0;
    pthread_t th[4];
    waiter_t w[4];
    int i, calls;
    (void)state;
    fake_reset(DOC_A);
    env_start(&e, 60000, 500);
    assert_true(wait_generation(e.src, 1));
    /* Within min_refresh of the first fetch, nothing in flight: at once. */
    t0 = apr_time_now();
    assert_int_equal(ajw_source_refresh_wait(e.src, 1, DEADLINE), AJW_REFRESH_LIMITED);
    assert_true(apr_time_now() - t0 < MS(50));
    assert_int_equal(fake_calls(), 1);
    /* The IdP rotated; a token with the new kid arrives: four request threads
     * wait for the same refetch, which takes 150 ms. */
    apr_sleep(MS(550));
    fake_set(DOC_AB, 0);
    pthread_mutex_lock(&fake.mu);
    fake.delay = MS(150);
    pthread_mutex_unlock(&fake.mu);
    calls = fake_calls();
    t0 = apr_time_now();
    for (i = 0; i < 4; i++) {
        w[i].src = e.src;
        w[i].gen = 1;
        assert_int_equal(pthread_create(&th[i], NULL, waiter_main, &w[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].out, AJW_REFRESH_NEWER);
    }
    assert_true(apr_time_now() - t0 >= MS(140));
    assert_true(apr_time_now() - t0 < MS(2000));
    assert_int_equal(fake_calls(), calls + 1);
    h = ajw_source_acquire(e.src, 0);
    assert_int_equal(h->set->keys->nelts, 2);
    assert_int_equal(h->generation, 2);
    ajw_source_release(h);
    /* An older generation than the current one: NEWER at once, no kick. */
    t0 = apr_time_now();
    assert_int_equal(ajw_source_refresh_wait(e.src, 1, DEADLINE), AJW_REFRESH_NEWER);
    assert_true(apr_time_now() - t0 < MS(50));
    /* A flood of random kids right after (the refetch has ended): no
     * waiting, no fetch. */
    apr_sleep(MS(50));
    t0 = apr_time_now();
    for (i = 0; i < 1000; i++)
        assert_int_equal(ajw_source_refresh_wait(e.src, 2, DEADLINE), AJW_REFRESH_LIMITED);
    assert_true(apr_time_now() - t0 < MS(100));
    assert_int_equal(fake_calls(), calls + 1);
    /* After min_refresh, the same keys: SAME. A too-short wait: TIMEOUT. */
    apr_sleep(MS(550));
    assert_int_equal(ajw_source_refresh_wait(e.src, 2, DEADLINE), AJW_REFRESH_SAME);
    apr_sleep(MS(550));
    assert_int_equal(ajw_source_refresh_wait(e.src, 2, MS(20)), AJW_REFRESH_TIMEOUT);
    env_end(&e);
    /* Not started: nothing to wait for. */
    assert_int_equal(ajw_source_refresh_wait(NULL, 0, DEADLINE), AJW_REFRESH_LIMITED);
}

/* ---- one fetch per server ------------------------------------------------------------ */

/* Two stores in one process over one directory: one fetch between them at
 * start, one per refresh period after, and a kick in one is served by the
 * other's recent fetch without network I/O. */
static void test_two_stores_one_fetch(void **state)
{
    apr_pool_t *p;
    shdir_t d;
    env_t a, b;
    ajw_shared_t *sh2 = NULL;
    ajw_keyhold_t *h;
    const char *why = NULL;
    int calls, i;
    (void)state;
    log_clear();
    apr_pool_create(&p, NULL);
    shdir_make(&d, p);
    assert_int_equal(ajw_shared_file_create(&sh2, d.dir, SHKEY, &why, p), APR_SUCCESS);
    fake_reset(DOC_A);
    pthread_mutex_lock(&fake.mu);
    fake.delay = MS(200);                        /* both start while it runs */
    pthread_mutex_unlock(&fake.mu);
    env_shared(&a, d.sh, 400, 200);
    env_shared(&b, sh2, 400, 200);
    assert_int_equal(ajw_keystore_start(a.ks, &fake_fetcher, a.pchild), APR_SUCCESS);
    assert_int_equal(ajw_keystore_start(b.ks, &fake_fetcher, b.pchild), APR_SUCCESS);
    h = ajw_source_acquire(a.src, DEADLINE);
    assert_non_null(h);
    ajw_source_release(h);
    h = ajw_source_acquire(b.src, DEADLINE);
    assert_non_null(h);
    ajw_source_release(h);
    assert_int_equal(fake_calls(), 1);
    assert_int_equal(log_count_soon("[5] loaded 1 keys from " URL, 1), 1);  /* the fetcher */
    if (log_count_soon("[6] loaded 1 keys from " URL " (shared copy", 1) != 1)
        fprintf(stderr, "%s", log_buf);
    assert_int_equal(log_count("[6] loaded 1 keys from " URL " (shared copy"), 1);
    /* Steady state: about one fetch per 400 ms period, not two. */
    calls = fake_calls();
    apr_sleep(MS(2000));
    i = fake_calls() - calls;
    assert_true(i >= 2);                        /* 5 expected; a loaded machine runs late */
    assert_true(i <= 6);
    env_end(&a);
    env_end(&b);

    /* Kicks are limited per server: the IdP rotates, store a refetches for
     * an unknown kid; store b, kicked right after, takes a's copy. */
    fake_reset(DOC_A);
    env_shared(&a, d.sh, 60000, 300);
    env_shared(&b, sh2, 60000, 300);
    assert_int_equal(ajw_keystore_start(a.ks, &fake_fetcher, a.pchild), APR_SUCCESS);
    assert_true(wait_generation(a.src, 1));
    assert_int_equal(ajw_keystore_start(b.ks, &fake_fetcher, b.pchild), APR_SUCCESS);
    assert_true(wait_generation(b.src, 1));
    assert_true(fake_calls() <= 1);              /* 0: the copy left by the test above */
    apr_sleep(MS(350));
    fake_set(DOC_B, 0);
    calls = fake_calls();
    assert_int_equal(ajw_source_refresh_wait(a.src, 1, DEADLINE), AJW_REFRESH_NEWER);
    assert_int_equal(fake_calls(), calls + 1);
    assert_int_equal(ajw_source_refresh_wait(b.src, 1, DEADLINE), AJW_REFRESH_NEWER);
    assert_int_equal(fake_calls(), calls + 1);   /* b fetched nothing */
    h = ajw_source_acquire(b.src, 0);
    assert_string_equal(first_kid(h), "key-b");
    ajw_source_release(h);
    assert_true(status_of(b.src).from_shared);
    assert_int_equal(log_count("keys of " URL " changed: now"), 1);  /* only the fetcher */
    env_end(&a);
    env_end(&b);
    apr_pool_destroy(p);
    shdir_remove(&d);
}

/* Forked children (prefork) sharing a directory: one fetch between them. */
static void test_forked_children_one_fetch(void **state)
{
    apr_pool_t *p;
    shdir_t d;
    ajw_keystore_t *ks;
    ajw_source_conf_t c;
    ajw_source_t *src;
    const char *count = NULL;
    pid_t pids[4];
    struct stat st;
    int i, wst = 0;
    (void)state;
    apr_pool_create(&p, NULL);
    shdir_make(&d, p);
    count = apr_pstrcat(p, d.root, "/calls", NULL);
    fake_reset(DOC_A);
    pthread_mutex_lock(&fake.mu);
    fake.delay = MS(300);
    fake.count_fd = open(count, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    assert_true(fake.count_fd >= 0);
    pthread_mutex_unlock(&fake.mu);
    assert_int_equal(ajw_keystore_create(&ks, p), APR_SUCCESS);
    env_conf(&c, 60000, 1000);
    src = ajw_keystore_add(ks, &c);
    assert_int_equal(ajw_keystore_set_shared(ks, d.sh), APR_SUCCESS);
    for (i = 0; i < 4; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            apr_pool_t *pchild;
            ajw_keyhold_t *h;
            int ok;
            apr_pool_create(&pchild, p);
            ok = ajw_keystore_start(ks, &fake_fetcher, pchild) == APR_SUCCESS;
            h = ok ? ajw_source_acquire(src, DEADLINE) : NULL;
            ok = h && h->set->keys->nelts == 1;
            ajw_source_release(h);
            apr_pool_destroy(pchild);
            _exit(ok ? 0 : 3);
        }
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(waitpid(pids[i], &wst, 0), pids[i]);
        assert_true(WIFEXITED(wst));
        assert_int_equal(WEXITSTATUS(wst), 0);
    }
    assert_int_equal(stat(count, &st), 0);
    assert_int_equal(st.st_size, 1);             /* one fetch for four processes */
    close(fake.count_fd);
    fake.count_fd = -1;
    apr_pool_destroy(p);
    shdir_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_load),
        cmocka_unit_test(test_prepare_before_each_fetch),
        cmocka_unit_test(test_acquire_bounded_when_failing),
        cmocka_unit_test(test_acquire_without_start),
        cmocka_unit_test(test_keys_kept_after_failures),
        cmocka_unit_test(test_zero_keys_first_load_fails),
        cmocka_unit_test(test_generation_on_change_only),
        cmocka_unit_test(test_same_keys_new_document),
        cmocka_unit_test(test_not_modified_keeps_set),
        cmocka_unit_test(test_kick_rate_limited),
        cmocka_unit_test(test_max_age_clamped_to_min_refresh),
        cmocka_unit_test(test_hold_survives_swap),
        cmocka_unit_test(test_stop_is_prompt),
        cmocka_unit_test(test_same_url_same_source),
        cmocka_unit_test(test_fork_after_config),
        cmocka_unit_test(test_restart_after_cleanup),
        cmocka_unit_test(test_hung_source_does_not_block_others),
        cmocka_unit_test(test_clock_step_back),
        cmocka_unit_test(test_release_after_cleanup),
        cmocka_unit_test_teardown(test_clock_step_during_wait, clock_reset),
        cmocka_unit_test_teardown(test_clock_step_back_keys_stay_fresh, clock_reset),
        cmocka_unit_test_teardown(test_clock_step_back_lease_does_not_block_kicks, clock_reset),
        cmocka_unit_test(test_start_from_shared_copy),
        cmocka_unit_test(test_fetch_writes_shared_copy),
        cmocka_unit_test(test_shared_forged_record),
        cmocka_unit_test(test_max_stale),
        cmocka_unit_test(test_stale_shared_copy_not_used),
        cmocka_unit_test(test_rotation_wait),
        cmocka_unit_test(test_rotation_wait_flood_during_hung_fetch),
        cmocka_unit_test(test_two_stores_one_fetch),
        cmocka_unit_test(test_forked_children_one_fetch),
    };
    int rc;
    pthread_mutex_init(&fake.mu, NULL);
    fake.count_fd = -1;
    apr_initialize();
    ajw_log_set(capture_log, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    pthread_mutex_destroy(&fake.mu);
    return rc;
}
