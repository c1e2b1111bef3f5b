/* test_tcache.c — token cache: hits, expiry, capacity bound, references, threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include <apr_general.h>

#include "ajw_tcache.h"

static apr_pool_t *pool;

static int setup(void **state)
{
    (void)state;
    return apr_pool_create(&pool, NULL) == APR_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    apr_pool_destroy(pool);
    return 0;
}

static void make_entry(ajw_tcache_entry_t *e, const char *sub, unsigned long long gen)
{
    memset(e, 0, sizeof(*e));
    e->header = json_pack("{s:s}", "alg", "ES256");
    e->claims = json_pack("{s:s}", "sub", sub);
    e->source = &pool;
    e->generation = gen;
    e->alg = AJW_ALG_ES256;
    snprintf(e->kid, sizeof(e->kid), "kid-%s", sub);
}

static void drop_entry(ajw_tcache_entry_t *e)
{
    json_decref(e->header);
    json_decref(e->claims);
}

static void put_token(ajw_tcache_t *tc, const char *tok, long long exp)
{
    ajw_tcache_entry_t e;
    make_entry(&e, tok, 7);
    ajw_tcache_put(tc, tok, strlen(tok), exp, &e);
    drop_entry(&e);                       /* the cache keeps its own references */
}

static void test_put_get(void **state)
{
    ajw_tcache_t *tc;
    ajw_tcache_entry_t e, hit;
    (void)state;
    assert_int_equal(ajw_tcache_create(&tc, 16, pool), APR_SUCCESS);
    assert_non_null(tc);
    assert_int_equal(ajw_tcache_get(tc, "a.b.c", 5, 100, &hit), 0);
    make_entry(&e, "alice", 3);
    ajw_tcache_put(tc, "a.b.c", 5, 200, &e);
    assert_int_equal(e.claims->refcount, 1);  /* the cache keeps a copy */
    assert_int_equal(ajw_tcache_count(tc), 1);
    assert_int_equal(ajw_tcache_get(tc, "a.b.c", 5, 100, &hit), 1);
    assert_ptr_not_equal(hit.claims, e.claims);  /* the caller gets its own copy */
    assert_true(json_equal(hit.claims, e.claims));
    assert_true(json_equal(hit.header, e.header));
    assert_int_equal(hit.claims->refcount, 1);
    assert_int_equal(hit.generation, 3);
    assert_ptr_equal(hit.source, &pool);
    assert_int_equal(hit.alg, AJW_ALG_ES256);
    assert_string_equal(hit.kid, "kid-alice");
    assert_string_equal(json_string_value(json_object_get(hit.claims, "sub")), "alice");
    drop_entry(&hit);
    /* Only the full token matches: a prefix or a different length misses. */
    assert_int_equal(ajw_tcache_get(tc, "a.b.c", 4, 100, &hit), 0);
    assert_int_equal(ajw_tcache_get(tc, "a.b.d", 5, 100, &hit), 0);
    /* Put again replaces, no duplicate. */
    ajw_tcache_put(tc, "a.b.c", 5, 300, &e);
    assert_int_equal(ajw_tcache_count(tc), 1);
    drop_entry(&e);                        /* the cache's copies go at pool cleanup */
}

static void test_expiry(void **state)
{
    ajw_tcache_t *tc;
    ajw_tcache_entry_t hit;
    (void)state;
    assert_int_equal(ajw_tcache_create(&tc, 8, pool), APR_SUCCESS);
    put_token(tc, "tok", 1000);
    assert_int_equal(ajw_tcache_get(tc, "tok", 3, 999, &hit), 1);
    drop_entry(&hit);
    /* expiry <= now is a miss, and the entry is dropped. */
    assert_int_equal(ajw_tcache_get(tc, "tok", 3, 1000, &hit), 0);
    assert_int_equal(ajw_tcache_count(tc), 0);
    assert_int_equal(ajw_tcache_get(tc, "tok", 3, 500, &hit), 0);
}

static void test_capacity_bound(void **state)
{
    ajw_tcache_t *tc;
    ajw_tcache_entry_t hit;
    char tok[32];
    int i, hits = 0;
    (void)state;
    assert_int_equal(ajw_tcache_create(&tc, 10, pool), APR_SUCCESS);
    for (i = 0; i < 1000; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        put_token(tc, tok, 5000);
        assert_true(ajw_tcache_count(tc) <= 10);
    }
    assert_int_equal(ajw_tcache_count(tc), 10);
    /* The newest entry is always there (it was just placed). */
    assert_int_equal(ajw_tcache_get(tc, "token-999", 9, 100, &hit), 1);
    drop_entry(&hit);
    for (i = 0; i < 1000; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        if (ajw_tcache_get(tc, tok, strlen(tok), 100, &hit)) {
            hits++;
            drop_entry(&hit);
        }
    }
    assert_int_equal(hits, 10);
}

static void test_capacity_one(void **state)
{
    ajw_tcache_t *tc;
    ajw_tcache_entry_t hit;
    (void)state;
    /* Capacity 1: the one slot is replaced whatever happens. */
    assert_int_equal(ajw_tcache_create(&tc, 1, pool), APR_SUCCESS);
    put_token(tc, "one", 100);
    put_token(tc, "two", 100);
    assert_int_equal(ajw_tcache_count(tc), 1);
    assert_int_equal(ajw_tcache_get(tc, "one", 3, 50, &hit), 0);
    assert_int_equal(ajw_tcache_get(tc, "two", 3, 50, &hit), 1);
    drop_entry(&hit);
}

static void test_disabled(void **state)
{
    ajw_tcache_t *tc = (ajw_tcache_t *)&tc;
    ajw_tcache_entry_t e, hit;
    (void)state;
    assert_int_equal(ajw_tcache_create(&tc, 0, pool), APR_SUCCESS);
    assert_null(tc);
    make_entry(&e, "x", 1);
    ajw_tcache_put(NULL, "t", 1, 100, &e);
    assert_int_equal(e.claims->refcount, 1);
    assert_int_equal(ajw_tcache_get(NULL, "t", 1, 10, &hit), 0);
    assert_int_equal(ajw_tcache_count(NULL), 0);
    drop_entry(&e);
}

static void test_cleanup_releases(void **state)
{
    apr_pool_t *p;
    ajw_tcache_t *tc;
    ajw_tcache_entry_t e;
    (void)state;
    assert_int_equal(apr_pool_create(&p, NULL), APR_SUCCESS);
    assert_int_equal(ajw_tcache_create(&tc, 4, p), APR_SUCCESS);
    make_entry(&e, "bob", 1);
    ajw_tcache_put(tc, "t1", 2, 100, &e);
    ajw_tcache_put(tc, "t2", 2, 100, &e);
    assert_int_equal(ajw_tcache_count(tc), 2);
    drop_entry(&e);
    apr_pool_destroy(p);                   /* frees the cache's copies (ASan: no leak) */
}

#define NTHREADS 4
#define ITERS 5000

static void *worker(void *arg)
{
    ajw_tcache_t *tc = arg;
    ajw_tcache_entry_t hit;
    char tok[32];
    unsigned seed = (unsigned)(uintptr_t)&hit;
    int i;
    for (i = 0; i < ITERS; i++) {
        seed = seed * 1103515245u + 12345u;
        snprintf(tok, sizeof(tok), "tok-%u", (seed >> 8) % 64);
        if (ajw_tcache_get(tc, tok, strlen(tok), 100, &hit)) {
            if (strncmp(json_string_value(json_object_get(hit.claims, "sub")), tok,
                        strlen(tok)) != 0)
                return (void *)1;
            drop_entry(&hit);
        }
        else {
            put_token(tc, tok, 1000);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    ajw_tcache_t *tc;
    pthread_t th[NTHREADS];
    void *ret;
    int i;
    (void)state;
    assert_int_equal(ajw_tcache_create(&tc, 32, pool), APR_SUCCESS);
    for (i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, tc), 0);
    for (i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_null(ret);
    }
    assert_true(ajw_tcache_count(tc) <= 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
