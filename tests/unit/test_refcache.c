/* Unit tests for ajw_refcache: hits copy the refusal out, entries expire,
 * the table is bounded and replaces the oldest entry, strings are cut. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>

#include <apr_strings.h>

#include "ajw_crypt.h"
#include "ajw_refcache.h"

static apr_pool_t *pool;
static const int src_a = 1, src_b = 2;   /* two source identities */

/* h = SHA-256 of "token <n>", as the module keys a token. */
static void hash_of(unsigned char h[32], unsigned n)
{
    char tok[32];
    apr_snprintf(tok, sizeof(tok), "token %u", n);
    assert_int_equal(ajw_crypt_sha256(h, tok, strlen(tok)), 0);
}

static void test_hit_and_expiry(void **state)
{
    ajw_refcache_t *rc;
    ajw_refusal_t rf, got;
    unsigned char h[32], other[32];
    (void)state;
    assert_int_equal(ajw_refcache_create(&rc, 16, pool), APR_SUCCESS);
    hash_of(h, 1);
    hash_of(other, 2);
    ajw_refusal_fill(&rf, &src_a, 7, 6, "alg RS256: signature does not verify", "RS256", "k1",
                     "https://idp");
    assert_false(ajw_refcache_get(rc, h, 100, &got));
    ajw_refcache_put(rc, h, 200, &rf);
    assert_int_equal(ajw_refcache_count(rc), 1);
    assert_true(ajw_refcache_get(rc, h, 199, &got));
    assert_ptr_equal(got.source, &src_a);
    assert_int_equal(got.generation, 7);
    assert_int_equal(got.code, 6);
    assert_string_equal(got.text, "alg RS256: signature does not verify");
    assert_string_equal(got.kid, "k1");
    assert_string_equal(got.iss, "https://idp");
    assert_string_equal(got.alg, "RS256");
    assert_true(got.has_kid && got.has_iss && got.has_alg);
    assert_false(ajw_refcache_get(rc, other, 150, &got));
    /* expired at 200: a miss, and dropped */
    assert_false(ajw_refcache_get(rc, h, 200, &got));
    assert_int_equal(ajw_refcache_count(rc), 0);
    /* the same token again replaces its own entry */
    ajw_refcache_put(rc, h, 300, &rf);
    ajw_refusal_fill(&rf, &src_b, 8, 6, "x", NULL, NULL, NULL);
    ajw_refcache_put(rc, h, 300, &rf);
    assert_int_equal(ajw_refcache_count(rc), 1);
    assert_true(ajw_refcache_get(rc, h, 250, &got));
    assert_ptr_equal(got.source, &src_b);
    assert_false(got.has_kid || got.has_iss || got.has_alg);
    assert_string_equal(got.kid, "");
}

static void test_cut_to_fit(void **state)
{
    ajw_refusal_t rf;
    char kid[300];
    (void)state;
    memset(kid, 'k', sizeof(kid) - 1);
    kid[sizeof(kid) - 1] = '\0';
    ajw_refusal_fill(&rf, &src_a, 1, 6, kid, kid, kid, kid);
    assert_int_equal(strlen(rf.kid), AJW_REFCACHE_ITEM - 1);
    assert_int_equal(strlen(rf.iss), AJW_REFCACHE_ITEM - 1);
    assert_int_equal(strlen(rf.text), AJW_REFCACHE_TEXT - 1);
    assert_int_equal(strlen(rf.alg), sizeof(rf.alg) - 1);
    /* one more byte than a log item shows: still cut there with "..." */
    assert_true(AJW_REFCACHE_ITEM - 1 > 80);
}

static void test_bounded(void **state)
{
    ajw_refcache_t *rc;
    ajw_refusal_t rf, got;
    unsigned char h[32];
    unsigned i, hits = 0;
    (void)state;
    assert_int_equal(ajw_refcache_create(&rc, 8, pool), APR_SUCCESS);
    ajw_refusal_fill(&rf, &src_a, 1, 6, "bad", "RS256", "k", NULL);
    for (i = 0; i < 1000; i++) {
        hash_of(h, i);
        ajw_refcache_put(rc, h, 10000, &rf);
        assert_true(ajw_refcache_count(rc) <= 8);
    }
    assert_int_equal(ajw_refcache_count(rc), 8);
    /* the newest survive */
    hash_of(h, 999);
    assert_true(ajw_refcache_get(rc, h, 1, &got));
    for (i = 0; i < 1000; i++) {
        hash_of(h, i);
        hits += (unsigned)ajw_refcache_get(rc, h, 1, &got);
    }
    assert_int_equal(hits, 8);
}

static void test_sharded_large(void **state)
{
    ajw_refcache_t *rc;
    ajw_refusal_t rf, got;
    unsigned char h[32];
    unsigned i, hits = 0;
    (void)state;
    assert_int_equal(ajw_refcache_create(&rc, 8192, pool), APR_SUCCESS);
    ajw_refusal_fill(&rf, &src_a, 1, 6, "bad", "ES256", "k", NULL);
    for (i = 0; i < 4000; i++) {
        hash_of(h, i);
        ajw_refcache_put(rc, h, 10000, &rf);
    }
    for (i = 0; i < 4000; i++) {
        hash_of(h, i);
        hits += (unsigned)ajw_refcache_get(rc, h, 1, &got);
    }
    assert_true(hits > 3900);        /* a few may meet a full probe window */
    assert_true(ajw_refcache_count(rc) <= 8192);
}

static void test_off(void **state)
{
    ajw_refcache_t *rc = (ajw_refcache_t *)1;
    ajw_refusal_t rf, got;
    unsigned char h[32] = {0};
    (void)state;
    assert_int_equal(ajw_refcache_create(&rc, 0, pool), APR_SUCCESS);
    assert_null(rc);
    ajw_refusal_fill(&rf, &src_a, 1, 6, "bad", NULL, NULL, NULL);
    ajw_refcache_put(NULL, h, 10, &rf);
    assert_false(ajw_refcache_get(NULL, h, 1, &got));
    assert_int_equal(ajw_refcache_count(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_expiry),
        cmocka_unit_test(test_cut_to_fit),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_sharded_large),
        cmocka_unit_test(test_off),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
