/* Unit tests for ajw_ratelog: one line per key per interval, counts of what
 * was held back, bounded table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "ajw_ratelog.h"

static apr_pool_t *pool;

static void test_once_per_interval(void **state)
{
    ajw_ratelog_t *rl;
    unsigned long held = 99;
    apr_time_t t0 = apr_time_from_sec(1000);
    int i;
    (void)state;
    assert_int_equal(ajw_ratelog_create(&rl, apr_time_from_sec(30), 8, pool), APR_SUCCESS);
    assert_true(ajw_ratelog_allow(rl, "no_keys http://a", t0, &held));
    assert_int_equal(held, 0);
    for (i = 0; i < 500; i++)
        assert_false(ajw_ratelog_allow(rl, "no_keys http://a", t0 + apr_time_from_sec(1), &held));
    /* another key is independent */
    assert_true(ajw_ratelog_allow(rl, "no_keys http://b", t0 + apr_time_from_sec(1), &held));
    assert_int_equal(held, 0);
    /* just before the interval: still held */
    assert_false(ajw_ratelog_allow(rl, "no_keys http://a", t0 + apr_time_from_sec(30) - 1, &held));
    assert_true(ajw_ratelog_allow(rl, "no_keys http://a", t0 + apr_time_from_sec(30), &held));
    assert_int_equal(held, 501);
    assert_false(ajw_ratelog_allow(rl, "no_keys http://a", t0 + apr_time_from_sec(31), &held));
}

static void test_table_full_allows(void **state)
{
    ajw_ratelog_t *rl;
    unsigned long held;
    (void)state;
    assert_int_equal(ajw_ratelog_create(&rl, apr_time_from_sec(30), 1, pool), APR_SUCCESS);
    assert_true(ajw_ratelog_allow(rl, "a", 1, &held));
    assert_false(ajw_ratelog_allow(rl, "a", 2, &held));
    /* no room to track "b": never hidden */
    assert_true(ajw_ratelog_allow(rl, "b", 2, &held));
    assert_true(ajw_ratelog_allow(rl, "b", 3, &held));
    assert_true(ajw_ratelog_allow(NULL, "x", 3, &held));
    assert_int_equal(held, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_once_per_interval),
        cmocka_unit_test(test_table_full_allows),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
