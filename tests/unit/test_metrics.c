/* test_metrics.c — shared counters: layout, re-attach, URL slots, atomic
 * counting across threads and processes, Prometheus text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "ajw_metrics.h"

static apr_pool_t *pool;

/* A fresh block, as apr_shm gives it (zero-filled, page aligned). */
static void *new_block(void)
{
    void *mem = mmap(NULL, ajw_metrics_block_size(), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    return mem;
}

static void free_block(void *mem)
{
    munmap(mem, ajw_metrics_block_size());
}

static ajw_metrics_t *attach(void *mem)
{
    ajw_metrics_t *m = NULL;
    assert_int_equal(ajw_metrics_attach(&m, mem, ajw_metrics_block_size(), pool), APR_SUCCESS);
    assert_non_null(m);
    return m;
}

static int setup(void **state)
{
    (void)state;
    ajw_metrics_set_current(NULL);
    return 0;
}

static void test_attach_checks(void **state)
{
    ajw_metrics_t *m = (ajw_metrics_t *)1;
    void *mem = new_block();
    (void)state;
    assert_int_equal(ajw_metrics_attach(&m, NULL, ajw_metrics_block_size(), pool), APR_EINVAL);
    assert_null(m);
    assert_int_equal(ajw_metrics_attach(&m, mem, ajw_metrics_block_size() - 1, pool), APR_EINVAL);
    assert_int_equal(ajw_metrics_attach(&m, (char *)mem + 4, ajw_metrics_block_size() - 8, pool),
                     APR_EINVAL);
    assert_null(m);
    free_block(mem);
}

/* Counting without a current handle is a no-op (lib/ callers, unit tests). */
static void test_no_current_is_noop(void **state)
{
    (void)state;
    assert_null(ajw_metrics_current());
    ajw_metrics_accepted();
    ajw_metrics_refused(AJW_R_EXPIRED);
    ajw_metrics_cache(1);
    ajw_metrics_fetch_done("https://x.example/jwks", 200, 5);
}

static void test_counting_and_reattach(void **state)
{
    void *mem = new_block();
    ajw_metrics_t *m = attach(mem), *m2;
    ajw_metrics_totals_t t;
    unsigned i;
    (void)state;
    assert_true(ajw_metrics_was_formatted(m));
    ajw_metrics_set_current(m);
    assert_ptr_equal(ajw_metrics_current(), m);
    ajw_metrics_accepted();
    ajw_metrics_accepted();
    ajw_metrics_refused(AJW_R_EXPIRED);
    ajw_metrics_refused(AJW_MR_BAD_REQUEST);
    ajw_metrics_refused(AJW_MR_NO_TOKEN);
    ajw_metrics_refused(AJW_MR_NO_TOKEN);
    ajw_metrics_refused(AJW_OK);             /* out of range: internal_error */
    ajw_metrics_refused(AJW_MR__COUNT + 7);
    ajw_metrics_cache(1);
    ajw_metrics_cache(0);
    ajw_metrics_cache(0);
    ajw_metrics_read(m, &t);
    assert_int_equal(t.accepted, 2);
    assert_int_equal(t.refused[AJW_R_EXPIRED], 1);
    assert_int_equal(t.refused[AJW_MR_BAD_REQUEST], 1);
    assert_int_equal(t.refused[AJW_MR_NO_TOKEN], 2);
    assert_int_equal(t.refused[AJW_R_INTERNAL], 2);
    assert_int_equal(t.refused[AJW_OK], 0);
    assert_int_equal(t.cache_hits, 1);
    assert_int_equal(t.cache_misses, 2);
    assert_true(t.since > 0 && t.since <= apr_time_now());

    /* A restart attaches again: the counters are kept. */
    m2 = attach(mem);
    assert_false(ajw_metrics_was_formatted(m2));
    ajw_metrics_read(m2, &t);
    assert_int_equal(t.accepted, 2);
    assert_int_equal(t.refused[AJW_MR_NO_TOKEN], 2);

    /* A block of another layout (other version) is formatted. */
    ((unsigned *)mem)[1] ^= 0x5a5a5a5au;
    m2 = attach(mem);
    assert_true(ajw_metrics_was_formatted(m2));
    ajw_metrics_read(m2, &t);
    assert_int_equal(t.accepted, 0);
    for (i = 0; i < AJW_MR__COUNT; i++)
        assert_int_equal(t.refused[i], 0);
    ajw_metrics_set_current(NULL);
    free_block(mem);
}

static void test_fetch_done(void **state)
{
    void *mem = new_block();
    ajw_metrics_t *m = attach(mem);
    ajw_metrics_url_t u;
    const char *a = "https://a.example/jwks", *b = "http://127.0.0.1:1/jwks";
    apr_time_t t0 = apr_time_now();
    (void)state;
    assert_int_equal(ajw_metrics_add_url(m, a), APR_SUCCESS);
    assert_int_equal(ajw_metrics_add_url(m, b), APR_SUCCESS);
    assert_int_equal(ajw_metrics_add_url(m, a), APR_SUCCESS);     /* harmless twice */
    ajw_metrics_set_current(m);
    ajw_metrics_fetch_done(a, 200, 1500);
    ajw_metrics_fetch_done(a, 304, 2500);
    ajw_metrics_fetch_done(a, 304, 3500);
    ajw_metrics_fetch_done(b, 0, 10 * APR_USEC_PER_SEC);
    ajw_metrics_fetch_done(b, 500, 7);                            /* any other status: error */
    ajw_metrics_fetch_done("https://unknown.example/", 200, 1);   /* no slot: ignored */
    ajw_metrics_fetch_done(NULL, 200, 1);
    assert_int_equal(ajw_metrics_read_url(m, a, &u), 1);
    assert_int_equal(u.fetches[AJW_MF_200], 1);
    assert_int_equal(u.fetches[AJW_MF_304], 2);
    assert_int_equal(u.fetches[AJW_MF_ERROR], 0);
    assert_int_equal(u.last_status, 304);
    assert_int_equal(u.last_duration, 3500);
    assert_true(u.last_end >= t0);
    assert_int_equal(ajw_metrics_read_url(m, b, &u), 1);
    assert_int_equal(u.fetches[AJW_MF_ERROR], 2);
    assert_int_equal(u.last_status, 0);
    assert_int_equal(u.last_duration, 7);
    assert_int_equal(u.shared_refused, 0);
    ajw_metrics_shared_refused(b);
    ajw_metrics_shared_refused(b);
    ajw_metrics_shared_refused("https://unknown.example/");       /* no slot: ignored */
    assert_int_equal(ajw_metrics_read_url(m, b, &u), 1);
    assert_int_equal(u.shared_refused, 2);
    assert_int_equal(ajw_metrics_read_url(m, a, &u), 1);
    assert_int_equal(u.shared_refused, 0);
    assert_int_equal(ajw_metrics_read_url(m, "https://unknown.example/", &u), 0);
    assert_int_equal(u.fetches[AJW_MF_200], 0);

    /* Re-attached (a restart): a URL still configured keeps its counters. */
    m = attach(mem);
    assert_int_equal(ajw_metrics_add_url(m, a), APR_SUCCESS);
    assert_int_equal(ajw_metrics_read_url(m, a, &u), 1);
    assert_int_equal(u.fetches[AJW_MF_304], 2);
    assert_int_equal(ajw_metrics_read_url(m, b, &u), 0);          /* not added this time */
    ajw_metrics_set_current(NULL);
    free_block(mem);
}

static void test_url_slots(void **state)
{
    void *mem = new_block();
    ajw_metrics_t *m = attach(mem);
    ajw_metrics_url_t u;
    char long_url[AJW_METRICS_URL_MAX + 1];
    const char *first = NULL;
    int i;
    (void)state;
    memset(long_url, 'a', sizeof(long_url) - 1);
    long_url[sizeof(long_url) - 1] = '\0';
    assert_int_equal(ajw_metrics_add_url(m, long_url), APR_EINVAL);
    long_url[AJW_METRICS_URL_MAX - 1] = '\0';                     /* exactly the maximum */
    assert_int_equal(ajw_metrics_add_url(m, long_url), APR_SUCCESS);
    assert_int_equal(ajw_metrics_add_url(m, NULL), APR_EINVAL);
    assert_int_equal(ajw_metrics_add_url(NULL, "x"), APR_EINVAL);
    for (i = 1; i < AJW_METRICS_MAX_URLS; i++) {
        const char *url = apr_psprintf(pool, "https://h%d.example/jwks", i);
        if (!first)
            first = url;
        assert_int_equal(ajw_metrics_add_url(m, url), APR_SUCCESS);
    }
    assert_int_equal(ajw_metrics_add_url(m, "https://full.example/"), APR_ENOSPC);
    ajw_metrics_set_current(m);
    ajw_metrics_fetch_done(first, 200, 1);

    /* Next attachment: slots nobody claims again are reused, cleared. */
    m = attach(mem);
    ajw_metrics_set_current(m);
    assert_int_equal(ajw_metrics_add_url(m, "https://new.example/"), APR_SUCCESS);
    assert_int_equal(ajw_metrics_read_url(m, "https://new.example/", &u), 1);
    assert_int_equal(u.fetches[AJW_MF_200], 0);
    ajw_metrics_set_current(NULL);
    free_block(mem);
}

static void test_names(void **state)
{
    unsigned i, j;
    (void)state;
    assert_string_equal(ajw_metrics_refusal_name(AJW_MR_BAD_REQUEST), "bad_request");
    assert_string_equal(ajw_metrics_refusal_name(AJW_MR_NO_TOKEN), "no_token");
    assert_string_equal(ajw_metrics_refusal_name(AJW_OK), "unknown");
    assert_string_equal(ajw_metrics_refusal_name(AJW_MR__COUNT), "unknown");
    assert_string_equal(ajw_metrics_refusal_name(AJW_R_EXPIRED), "expired");
    for (i = 1; i < AJW_MR__COUNT; i++) {
        if (i < (unsigned)AJW_R__COUNT)
            assert_string_equal(ajw_metrics_refusal_name(i), ajw_reason_name((ajw_reason_e)i));
        for (j = i + 1; j < AJW_MR__COUNT; j++)
            assert_string_not_equal(ajw_metrics_refusal_name(i), ajw_metrics_refusal_name(j));
    }
}

static void test_age_stale(void **state)
{
    apr_time_t now = apr_time_from_sec(1000000);
    ajw_metrics_source_t s = { "u", 1, now - apr_time_from_sec(100), apr_time_from_sec(300) };
    (void)state;
    assert_int_equal(ajw_metrics_age(&s, now), 100);
    assert_int_equal(ajw_metrics_stale(&s, now), 0);
    s.last_success = now - apr_time_from_sec(420);
    assert_int_equal(ajw_metrics_stale(&s, now), 120);
    s.last_success = now + apr_time_from_sec(5);                  /* clock stepped back */
    assert_int_equal(ajw_metrics_age(&s, now), 0);
    s.loaded = 0;
    assert_int_equal(ajw_metrics_age(&s, now), -1);
    assert_int_equal(ajw_metrics_stale(&s, now), -1);
}

static void test_label_escape(void **state)
{
    (void)state;
    assert_string_equal(ajw_metrics_label_escape(pool, "https://a/b?c=d"), "https://a/b?c=d");
    assert_string_equal(ajw_metrics_label_escape(pool, "a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    assert_string_equal(ajw_metrics_label_escape(pool, ""), "");
    assert_string_equal(ajw_metrics_label_escape(pool, NULL), "");
}

/* Every sample line names a metric whose TYPE came before it. */
static void check_typed(const char *text)
{
    char *copy = apr_pstrdup(pool, text), *line, *last = NULL;
    const char *typed = "";
    int samples = 0;
    for (line = apr_strtok(copy, "\n", &last); line; line = apr_strtok(NULL, "\n", &last)) {
        if (!strncmp(line, "# TYPE ", 7)) {
            typed = apr_pstrndup(pool, line + 7, strcspn(line + 7, " "));
            continue;
        }
        if (line[0] == '#')
            continue;
        assert_int_equal(strncmp(line, "mod_auth_jwks_", 14), 0);
        assert_int_equal(strncmp(line, typed, strlen(typed)), 0);
        samples++;
    }
    assert_true(samples > 20);
}

static void test_prometheus(void **state)
{
    void *mem = new_block();
    ajw_metrics_t *m = attach(mem);
    apr_time_t now = apr_time_now();
    ajw_metrics_source_t srcs[2] = {
        { "https://a.example/jwks?x=\"1\"", 1, now - apr_time_from_sec(400), apr_time_from_sec(300) },
        { "http://127.0.0.1:9/none", 0, 0, apr_time_from_sec(300) },
    };
    const char *text;
    (void)state;
    assert_int_equal(ajw_metrics_add_url(m, srcs[0].url), APR_SUCCESS);
    assert_int_equal(ajw_metrics_add_url(m, srcs[1].url), APR_SUCCESS);
    ajw_metrics_set_current(m);
    ajw_metrics_accepted();
    ajw_metrics_refused(AJW_R_BAD_SIGNATURE);
    ajw_metrics_refused(AJW_MR_NO_TOKEN);
    ajw_metrics_cache(1);
    ajw_metrics_fetch_done(srcs[0].url, 200, 250000);
    ajw_metrics_fetch_done(srcs[1].url, 0, 1000);
    text = ajw_metrics_prometheus(m, srcs, 2, now, pool);
    check_typed(text);
    assert_non_null(strstr(text, "# HELP mod_auth_jwks_requests_accepted_total "));
    assert_non_null(strstr(text, "# TYPE mod_auth_jwks_requests_accepted_total counter\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_requests_accepted_total 1\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_requests_refused_total{reason=\"bad_signature\"} 1\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_requests_refused_total{reason=\"no_token\"} 1\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_requests_refused_total{reason=\"expired\"} 0\n"));
    assert_null(strstr(text, "reason=\"ok\""));
    assert_non_null(strstr(text, "\nmod_auth_jwks_token_cache_hits_total 1\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_token_cache_misses_total 0\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_jwks_fetches_total{url=\"https://a.example/jwks?x=\\\"1\\\"\",outcome=\"200\"} 1\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_jwks_fetches_total{url=\"http://127.0.0.1:9/none\",outcome=\"error\"} 1\n"));
    assert_non_null(strstr(text, "\n# TYPE mod_auth_jwks_shared_copies_refused_total counter\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_shared_copies_refused_total{url=\"http://127.0.0.1:9/none\"} 0\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_jwks_last_fetch_duration_seconds{url=\"https://a.example/jwks?x=\\\"1\\\"\"} 0.250000\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_keyset_loaded{url=\"http://127.0.0.1:9/none\"} 0\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_keyset_age_seconds{url=\"https://a.example/jwks?x=\\\"1\\\"\"} 400\n"));
    assert_non_null(strstr(text, "\nmod_auth_jwks_keyset_stale_seconds{url=\"https://a.example/jwks?x=\\\"1\\\"\"} 100\n"));
    assert_null(strstr(text, "keyset_age_seconds{url=\"http://127.0.0.1:9/none\"}"));
    assert_null(strstr(text, "\n\n"));

    /* No handle: the source gauges still come out. */
    text = ajw_metrics_prometheus(NULL, srcs, 2, now, pool);
    assert_null(strstr(text, "requests_accepted_total"));
    assert_non_null(strstr(text, "keyset_loaded{url=\"http://127.0.0.1:9/none\"} 0"));
    text = ajw_metrics_prometheus(m, NULL, 0, now, pool);
    assert_non_null(strstr(text, "requests_accepted_total 1"));
    ajw_metrics_set_current(NULL);
    free_block(mem);
}

/* Lock-free counting is exact under contention: threads and processes. */
#define THREADS 4
#define PER_THREAD 20000

static void *APR_THREAD_FUNC bump(apr_thread_t *thd, void *data)
{
    int i;
    (void)thd;
    (void)data;
    for (i = 0; i < PER_THREAD; i++) {
        ajw_metrics_accepted();
        ajw_metrics_refused(AJW_R_EXPIRED);
        ajw_metrics_cache(i & 1);
        ajw_metrics_fetch_done("https://a.example/jwks", 304, 1);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    void *mem = new_block();
    ajw_metrics_t *m = attach(mem);
    apr_thread_t *t[THREADS];
    ajw_metrics_totals_t tot;
    ajw_metrics_url_t u;
    pid_t kids[2];
    int i, status;
    apr_status_t rv;
    (void)state;
    assert_int_equal(ajw_metrics_add_url(m, "https://a.example/jwks"), APR_SUCCESS);
    ajw_metrics_set_current(m);
    /* Two forked processes (sharing the block like httpd children) with
     * THREADS threads each, plus the parent's threads. */
    for (i = 0; i < 2; i++) {
        kids[i] = fork();
        assert_true(kids[i] >= 0);
        if (kids[i] == 0) {
            apr_pool_t *cp;
            int j;
            apr_pool_create(&cp, NULL);
            for (j = 0; j < THREADS; j++)
                if (apr_thread_create(&t[j], NULL, bump, NULL, cp) != APR_SUCCESS)
                    _exit(2);
            for (j = 0; j < THREADS; j++)
                apr_thread_join(&rv, t[j]);
            _exit(0);
        }
    }
    for (i = 0; i < THREADS; i++)
        assert_int_equal(apr_thread_create(&t[i], NULL, bump, NULL, pool), APR_SUCCESS);
    for (i = 0; i < THREADS; i++)
        apr_thread_join(&rv, t[i]);
    for (i = 0; i < 2; i++) {
        assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    ajw_metrics_read(m, &tot);
    assert_int_equal(tot.accepted, 3 * THREADS * PER_THREAD);
    assert_int_equal(tot.refused[AJW_R_EXPIRED], 3 * THREADS * PER_THREAD);
    assert_int_equal(tot.cache_hits + tot.cache_misses, 3 * THREADS * PER_THREAD);
    assert_int_equal(tot.cache_hits, 3 * THREADS * PER_THREAD / 2);
    assert_int_equal(ajw_metrics_read_url(m, "https://a.example/jwks", &u), 1);
    assert_int_equal(u.fetches[AJW_MF_304], 3 * THREADS * PER_THREAD);
    ajw_metrics_set_current(NULL);
    free_block(mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_attach_checks, setup),
        cmocka_unit_test_setup(test_no_current_is_noop, setup),
        cmocka_unit_test_setup(test_counting_and_reattach, setup),
        cmocka_unit_test_setup(test_fetch_done, setup),
        cmocka_unit_test_setup(test_url_slots, setup),
        cmocka_unit_test_setup(test_names, setup),
        cmocka_unit_test_setup(test_age_stale, setup),
        cmocka_unit_test_setup(test_label_escape, setup),
        cmocka_unit_test_setup(test_prometheus, setup),
        cmocka_unit_test_setup(test_concurrent, setup),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
