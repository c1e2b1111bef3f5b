/* test_tcache.c — token cache: hits, expiry, capacity bound, shared
 * reference-counted entries, shards, threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A held entry (one reference, the caller's) for token tok, user sub. The
 * claims document is written into a malloc'ed buffer that is wiped and
 * freed once adopted: every later read of the entry's claims proves that
 * the entry holds its own copy. No pool: worker threads call this too. */
static const ajw_tcache_entry_t *make_entry_tok(const char *sub, unsigned long long gen,
                                                const char *tok)
{
    ajw_tcache_entry_t e;
    const ajw_tcache_entry_t *h;
    json_t *claims = json_pack("{s:s}", "sub", sub);
    size_t size = ajw_doc_size(claims);
    void *buf = size ? malloc(size) : NULL;
    memset(&e, 0, sizeof(e));
    e.token = tok;
    e.token_len = strlen(tok);
    e.kid = sub;
    e.typ = "at+jwt";
    e.claims = buf ? ajw_doc_write(claims, buf, size) : NULL;
    e.claims_size = size;
    e.source = &pool;
    e.generation = gen;
    e.alg = AJW_ALG_ES256;
    h = e.claims ? ajw_tcache_adopt(&e) : NULL;
    if (buf) {
        memset(buf, 0, size);
        free(buf);
    }
    json_decref(claims);
    return h;
}

/* The "sub" claim of a held entry, read in its document. */
static const char *sub_of(const ajw_tcache_entry_t *e)
{
    return ajw_val_get_string(e->claims, "sub", NULL);
}

/* An entry whose token is sub. */
static const ajw_tcache_entry_t *make_entry(const char *sub, unsigned long long gen)
{
    return make_entry_tok(sub, gen, sub);
}

static void test_no_kid_typ(void **state)
{
    ajw_tcache_entry_t e;
    const ajw_tcache_entry_t *h;
    (void)state;
    json_t *empty = json_object();
    memset(&e, 0, sizeof(e));
    e.claims = ajw_doc_make(empty, pool, &e.claims_size);
    json_decref(empty);
    assert_non_null(e.claims);
    h = ajw_tcache_adopt(&e);
    assert_non_null(h);
    assert_null(h->kid);
    assert_null(h->typ);
    assert_true(ajw_val_is_object(h->claims));
    assert_int_equal(ajw_val_count(h->claims), 0);
    assert_int_equal(h->claims_size, e.claims_size);
    ajw_tcache_release(h);
}

/* ajw_tcache_adopt copies the claims document: the held entry's claims are
 * another pointer with the same bytes, still readable once the source
 * document's pool is cleared (and its bytes overwritten). */
static void test_adopt_copies_claims(void **state)
{
    apr_pool_t *src;
    ajw_tcache_entry_t e;
    const ajw_tcache_entry_t *h;
    const ajw_val_t *roles, *r;
    json_t *tree;
    void *saved;
    size_t i = 0;
    (void)state;
    assert_int_equal(apr_pool_create(&src, pool), APR_SUCCESS);
    tree = json_pack("{s:s, s:I, s:[s,s], s:{s:b}}", "sub", "alice", "exp", 4102444800LL,
                     "roles", "user", "admin", "x", "y", 1);
    assert_non_null(tree);
    memset(&e, 0, sizeof(e));
    e.token = "a.b.c";
    e.token_len = 5;
    e.claims = ajw_doc_make(tree, src, &e.claims_size);
    json_decref(tree);
    assert_non_null(e.claims);
    assert_int_equal(e.claims_size, ajw_val_size(e.claims));
    saved = malloc(e.claims_size);
    assert_non_null(saved);
    memcpy(saved, e.claims, e.claims_size);
    h = ajw_tcache_adopt(&e);
    assert_non_null(h);
    assert_ptr_not_equal(h->claims, e.claims);                /* a copy ... */
    assert_int_equal(h->claims_size, e.claims_size);
    assert_memory_equal(h->claims, e.claims, e.claims_size);  /* ... of the same bytes */
    /* The source goes away: overwritten, then its pool cleared. */
    memset((void *)e.claims, 0xa5, e.claims_size);
    apr_pool_clear(src);
    assert_memory_equal(h->claims, saved, h->claims_size);
    assert_int_equal(ajw_val_size(h->claims), h->claims_size);
    assert_string_equal(ajw_val_get_string(h->claims, "sub", NULL), "alice");
    assert_int_equal(ajw_val_int(ajw_val_get(h->claims, "exp")), 4102444800LL);
    assert_true(ajw_val_is_true(ajw_val_path(h->claims, "x.y")));
    roles = ajw_val_get(h->claims, "roles");
    assert_int_equal(ajw_val_count(roles), 2);
    ajw_val_foreach(roles, r)
        assert_string_equal(ajw_val_str(r), i++ ? "admin" : "user");
    assert_int_equal(i, 2);
    ajw_tcache_release(h);
    free(saved);
    apr_pool_destroy(src);
}

static ajw_tcache_key_t key_of(const char *tok, size_t len)
{
    ajw_tcache_key_t k;
    assert_int_equal(ajw_tcache_key(&k, tok, len), 0);
    return k;
}

static int get(ajw_tcache_t *tc, const char *tok, size_t len, long long now,
               const ajw_tcache_entry_t **hit)
{
    ajw_tcache_key_t k = key_of(tok, len);
    return ajw_tcache_get(tc, &k, now, hit);
}

static void put_token(ajw_tcache_t *tc, const char *tok, long long exp)
{
    const ajw_tcache_entry_t *e = make_entry(tok, 7);
    ajw_tcache_key_t k = key_of(tok, strlen(tok));
    ajw_tcache_put(tc, &k, exp, e);
    ajw_tcache_release(e);                /* the cache keeps its own reference */
}

static void test_put_get(void **state)
{
    ajw_tcache_t *tc;
    const ajw_tcache_entry_t *e, *hit, *hit2;
    ajw_tcache_key_t k = key_of("a.b.c", 5);
    (void)state;
    assert_int_equal(ajw_tcache_create(&tc, 16, pool), APR_SUCCESS);
    assert_non_null(tc);
    assert_int_equal(get(tc, "a.b.c", 5, 100, &hit), 0);
    assert_null(hit);
    e = make_entry_tok("alice", 3, "a.b.c");
    ajw_tcache_put(tc, &k, 200, e);
    assert_int_equal(ajw_tcache_count(tc), 1);
    assert_int_equal(get(tc, "a.b.c", 5, 100, &hit), 1);
    assert_ptr_equal(hit, e);             /* shared, not copied */
    assert_ptr_equal(hit->claims, e->claims);
    assert_int_equal(hit->claims_size, e->claims_size);
    assert_int_equal(ajw_val_size(hit->claims), hit->claims_size);
    assert_int_equal(hit->generation, 3);
    assert_ptr_equal(hit->source, &pool);
    assert_int_equal(hit->alg, AJW_ALG_ES256);
    assert_string_equal(sub_of(hit), "alice");   /* its source buffer is long gone */
    assert_string_equal(hit->kid, "alice");
    assert_string_equal(hit->typ, "at+jwt");
    ajw_tcache_release(hit);
    /* Only the full token matches: a prefix or a different length misses. */
    assert_int_equal(get(tc, "a.b.c", 4, 100, &hit), 0);
    assert_int_equal(get(tc, "a.b.d", 5, 100, &hit), 0);
    /* Put again replaces, no duplicate. */
    ajw_tcache_put(tc, &k, 300, e);
    assert_int_equal(ajw_tcache_count(tc), 1);
    /* An evicted entry stays valid for whoever holds it. */
    assert_int_equal(get(tc, "a.b.c", 5, 100, &hit2), 1);
    ajw_tcache_release(e);
    hit = make_entry_tok("bob", 4, "a.b.c");
    ajw_tcache_put(tc, &k, 300, hit);
    ajw_tcache_release(hit);
    assert_string_equal(sub_of(hit2), "alice");
    ajw_tcache_release(hit2);             /* the last reference: freed (ASan: no leak) */
    assert_int_equal(get(tc, "a.b.c", 5, 100, &hit), 1);
    assert_string_equal(sub_of(hit), "bob");
    ajw_tcache_release(hit);
}

static void test_expiry(void **state)
{
    ajw_tcache_t *tc;
    const ajw_tcache_entry_t *hit;
    (void)state;
    assert_int_equal(ajw_tcache_create(&tc, 8, pool), APR_SUCCESS);
    put_token(tc, "tok", 1000);
    assert_int_equal(get(tc, "tok", 3, 999, &hit), 1);
    ajw_tcache_release(hit);
    /* expiry <= now is a miss, and the entry is dropped. */
    assert_int_equal(get(tc, "tok", 3, 1000, &hit), 0);
    assert_int_equal(ajw_tcache_count(tc), 0);
    assert_int_equal(get(tc, "tok", 3, 500, &hit), 0);
}

static void test_capacity_bound(void **state)
{
    ajw_tcache_t *tc;
    const ajw_tcache_entry_t *hit;
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
    assert_int_equal(get(tc, "token-999", 9, 100, &hit), 1);
    ajw_tcache_release(hit);
    for (i = 0; i < 1000; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        if (get(tc, tok, strlen(tok), 100, &hit)) {
            hits++;
            ajw_tcache_release(hit);
        }
    }
    assert_int_equal(hits, 10);
}

static void test_sharded_bound(void **state)
{
    ajw_tcache_t *tc;
    const ajw_tcache_entry_t *hit;
    char tok[32];
    int i, hits = 0;
    (void)state;
    /* Large enough for shards: the bound holds over all of them. */
    assert_int_equal(ajw_tcache_create(&tc, 1000, pool), APR_SUCCESS);
    for (i = 0; i < 5000; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        put_token(tc, tok, 5000);
    }
    assert_true(ajw_tcache_count(tc) <= 1000);
    assert_true(ajw_tcache_count(tc) >= 900);
    for (i = 0; i < 5000; i++) {
        snprintf(tok, sizeof(tok), "token-%d", i);
        if (get(tc, tok, strlen(tok), 100, &hit)) {
            hits++;
            ajw_tcache_release(hit);
        }
    }
    assert_int_equal((size_t)hits, ajw_tcache_count(tc));
}

static void test_capacity_one(void **state)
{
    ajw_tcache_t *tc;
    const ajw_tcache_entry_t *hit;
    (void)state;
    /* Capacity 1: the one slot is replaced whatever happens. */
    assert_int_equal(ajw_tcache_create(&tc, 1, pool), APR_SUCCESS);
    put_token(tc, "one", 100);
    put_token(tc, "two", 100);
    assert_int_equal(ajw_tcache_count(tc), 1);
    assert_int_equal(get(tc, "one", 3, 50, &hit), 0);
    assert_int_equal(get(tc, "two", 3, 50, &hit), 1);
    ajw_tcache_release(hit);
}

/* Tokens that share the bytes the short key reads (length, first 32, last
 * 64) but differ in the middle: one hash, and still never each other's
 * entry; their full digests differ. */
static void test_same_head_and_tail(void **state)
{
    ajw_tcache_t *tc;
    const ajw_tcache_entry_t *e, *hit;
    char a[301], b[301];
    ajw_tcache_key_t ka, kb;
    (void)state;
    memset(a, 'A', 300);
    a[300] = '\0';
    memcpy(b, a, sizeof(a));
    b[150] = 'B';
    ka = key_of(a, 300);
    kb = key_of(b, 300);
    assert_memory_equal(ka.hash, kb.hash, 32);
    assert_memory_not_equal(ajw_tcache_key_digest(&ka), ajw_tcache_key_digest(&kb), 32);
    assert_int_equal(ajw_tcache_create(&tc, 16, pool), APR_SUCCESS);
    e = make_entry_tok("alice", 1, a);
    ajw_tcache_put(tc, &ka, 100, e);
    ajw_tcache_release(e);
    assert_int_equal(get(tc, b, 300, 10, &hit), 0);          /* b is not a */
    assert_int_equal(get(tc, a, 300, 10, &hit), 1);
    ajw_tcache_release(hit);
    e = make_entry_tok("bob", 1, b);
    ajw_tcache_put(tc, &kb, 100, e);                          /* beside a, not over it */
    ajw_tcache_release(e);
    assert_int_equal(ajw_tcache_count(tc), 2);
    assert_int_equal(get(tc, b, 300, 10, &hit), 1);
    assert_string_equal(sub_of(hit), "bob");
    ajw_tcache_release(hit);
}

static void test_disabled(void **state)
{
    ajw_tcache_t *tc = (ajw_tcache_t *)&tc;
    const ajw_tcache_entry_t *e, *hit;
    ajw_tcache_key_t k = key_of("t", 1);
    (void)state;
    assert_int_equal(ajw_tcache_create(&tc, 0, pool), APR_SUCCESS);
    assert_null(tc);
    e = make_entry("x", 1);
    ajw_tcache_put(NULL, &k, 100, e);
    assert_int_equal(ajw_tcache_get(NULL, &k, 10, &hit), 0);
    assert_int_equal(ajw_tcache_count(NULL), 0);
    ajw_tcache_release(e);
    ajw_tcache_release(NULL);
}

static void test_release_with_pool(void **state)
{
    apr_pool_t *p;
    const ajw_tcache_entry_t *e = make_entry("carol", 1);
    (void)state;
    assert_int_equal(apr_pool_create(&p, pool), APR_SUCCESS);
    ajw_tcache_release_with(ajw_tcache_hold(e), p);
    ajw_tcache_release(e);
    assert_string_equal(sub_of(e), "carol");
    apr_pool_destroy(p);                   /* the last reference (ASan: no leak) */
}

static void test_cleanup_releases(void **state)
{
    apr_pool_t *p;
    ajw_tcache_t *tc;
    const ajw_tcache_entry_t *e;
    ajw_tcache_key_t k1 = key_of("t1", 2), k2 = key_of("t2", 2);
    (void)state;
    assert_int_equal(apr_pool_create(&p, NULL), APR_SUCCESS);
    assert_int_equal(ajw_tcache_create(&tc, 4, p), APR_SUCCESS);
    e = make_entry_tok("bob", 1, "t1");
    ajw_tcache_put(tc, &k1, 100, e);
    ajw_tcache_put(tc, &k2, 100, e);      /* refused: e holds another token than k2's */
    assert_int_equal(ajw_tcache_count(tc), 1);
    ajw_tcache_release(e);
    e = make_entry_tok("bob", 1, "t2");
    ajw_tcache_put(tc, &k2, 100, e);
    assert_int_equal(ajw_tcache_count(tc), 2);
    ajw_tcache_release(e);
    apr_pool_destroy(p);                   /* frees the cache's references (ASan: no leak) */
}

#define NTHREADS 4
#define ITERS 5000

static void *worker(void *arg)
{
    ajw_tcache_t *tc = arg;
    const ajw_tcache_entry_t *hit;
    char tok[32];
    unsigned seed = (unsigned)(uintptr_t)&hit;
    int i;
    for (i = 0; i < ITERS; i++) {
        seed = seed * 1103515245u + 12345u;
        snprintf(tok, sizeof(tok), "tok-%u", (seed >> 8) % 64);
        if (get(tc, tok, strlen(tok), 100, &hit)) {
            const char *sub = sub_of(hit);
            if (!sub || strcmp(sub, tok) != 0)
                return (void *)1;
            ajw_tcache_release(hit);
        }
        else {
            put_token(tc, tok, 1000);
        }
    }
    return NULL;
}

static void run_threads(size_t capacity)
{
    ajw_tcache_t *tc;
    pthread_t th[NTHREADS];
    void *ret;
    int i;
    assert_int_equal(ajw_tcache_create(&tc, capacity, pool), APR_SUCCESS);
    for (i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, tc), 0);
    for (i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_null(ret);
    }
    assert_true(ajw_tcache_count(tc) <= capacity);
}

static void test_threads(void **state)
{
    (void)state;
    run_threads(32);                      /* one shard, constant eviction */
    run_threads(300);                     /* sharded */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_kid_typ, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt_copies_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sharded_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_capacity_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_head_and_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_with_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_releases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
