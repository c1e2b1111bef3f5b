/* Unit tests for ajw_clientlog (fake time): the first lines of a client in
 * full, then counts by reason in one summary line, written on the next
 * refusal after the interval or by a flush; clients apart; a full table
 * writes every line; the flusher thread flushes what is left at the end. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "ajw_clientlog.h"

static apr_pool_t *pool;

typedef struct sink_t {
    int n;
    char last[600];
    char all[4096];
} sink_t;

static void sink(void *baton, const char *line)
{
    sink_t *s = baton;
    s->n++;
    apr_cpystrn(s->last, line, sizeof(s->last));
    if (strlen(s->all) + strlen(line) + 2 < sizeof(s->all)) {
        strcat(s->all, line);
        strcat(s->all, "\n");
    }
}

#define SEC(n) apr_time_from_sec(n)

static void test_first_then_summary(void **state)
{
    ajw_clientlog_t *cl;
    const char *sum;
    apr_time_t t0 = SEC(1000);
    int i, full = 0;
    (void)state;
    assert_int_equal(ajw_clientlog_create(&cl, 5, SEC(60), 16, pool), APR_SUCCESS);
    for (i = 0; i < 50; i++) {
        full += ajw_clientlog_note(cl, "127.0.0.1", i % 2 ? "bad_signature" : "no_matching_key",
                                   t0 + i, &sum, pool);
        assert_null(sum);
    }
    assert_int_equal(full, 5);
    /* still in the interval */
    assert_false(ajw_clientlog_note(cl, "127.0.0.1", "expired", t0 + SEC(59), &sum, pool));
    assert_null(sum);
    /* the next one after it: the summary of the 46 held, and a full line again */
    assert_true(ajw_clientlog_note(cl, "127.0.0.1", "expired", t0 + SEC(61), &sum, pool));
    assert_non_null(sum);
    assert_string_equal(sum, "token refusals from 127.0.0.1: 46 more in the last 61 s not "
                             "logged one by one (bad_signature 23, no_matching_key 22, expired 1)");
    /* a new interval: four more full lines, then counted */
    for (i = 0; i < 4; i++)
        assert_true(ajw_clientlog_note(cl, "127.0.0.1", "expired", t0 + SEC(62), &sum, pool));
    assert_false(ajw_clientlog_note(cl, "127.0.0.1", "expired", t0 + SEC(62), &sum, pool));
}

static void test_clients_apart_and_flush(void **state)
{
    ajw_clientlog_t *cl;
    const char *sum;
    sink_t s;
    apr_time_t t0 = SEC(5000);
    int i;
    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(ajw_clientlog_create(&cl, 2, SEC(10), 16, pool), APR_SUCCESS);
    for (i = 0; i < 7; i++)
        ajw_clientlog_note(cl, "127.0.0.1", "bad_signature", t0, &sum, pool);
    for (i = 0; i < 3; i++)
        ajw_clientlog_note(cl, "127.0.0.2", "expired", t0 + SEC(5), &sum, pool);
    /* nothing due yet */
    assert_int_equal(ajw_clientlog_flush(cl, t0 + SEC(9), 0, sink, &s), 0);
    /* the first client's interval ended; the second's not yet */
    assert_int_equal(ajw_clientlog_flush(cl, t0 + SEC(10), 0, sink, &s), 1);
    assert_string_equal(s.last, "token refusals from 127.0.0.1: 5 more in the last 10 s not "
                                "logged one by one (bad_signature 5)");
    /* flushed counts are not said twice */
    assert_true(ajw_clientlog_note(cl, "127.0.0.1", "bad_signature", t0 + SEC(11), &sum, pool));
    assert_null(sum);
    assert_int_equal(ajw_clientlog_flush(cl, t0 + SEC(15), 0, sink, &s), 1);
    assert_string_equal(s.last, "token refusals from 127.0.0.2: 1 more in the last 10 s not "
                                "logged one by one (expired 1)");
    /* all: whatever is held, interval or not */
    for (i = 0; i < 3; i++)
        ajw_clientlog_note(cl, "127.0.0.1", "no_matching_key", t0 + SEC(12), &sum, pool);
    assert_int_equal(ajw_clientlog_flush(cl, t0 + SEC(13), 1, sink, &s), 1);
    assert_string_equal(s.last, "token refusals from 127.0.0.1: 2 more in the last 2 s not "
                                "logged one by one (no_matching_key 2)");
    assert_int_equal(ajw_clientlog_flush(cl, t0 + SEC(13), 1, sink, &s), 0);
}

static void test_many_reasons(void **state)
{
    static const char *names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    ajw_clientlog_t *cl;
    const char *sum;
    sink_t s;
    int i;
    (void)state;
    memset(&s, 0, sizeof(s));
    assert_int_equal(ajw_clientlog_create(&cl, 0, SEC(10), 4, pool), APR_SUCCESS);
    for (i = 0; i < 8; i++)
        assert_false(ajw_clientlog_note(cl, "::1", names[i], SEC(1), &sum, pool));
    assert_int_equal(ajw_clientlog_flush(cl, SEC(11), 0, sink, &s), 1);
    assert_string_equal(s.last, "token refusals from ::1: 8 more in the last 10 s not logged "
                                "one by one (a 1, b 1, c 1, d 1, e 1, f 1, other 2)");
}

static void test_full_table_logs_everything(void **state)
{
    ajw_clientlog_t *cl;
    const char *sum;
    char ip[32];
    int i;
    (void)state;
    assert_int_equal(ajw_clientlog_create(&cl, 1, SEC(60), 2, pool), APR_SUCCESS);
    assert_true(ajw_clientlog_note(cl, "10.0.0.1", "expired", SEC(1), &sum, pool));
    assert_false(ajw_clientlog_note(cl, "10.0.0.1", "expired", SEC(1), &sum, pool));
    assert_true(ajw_clientlog_note(cl, "10.0.0.2", "expired", SEC(1), &sum, pool));
    assert_false(ajw_clientlog_note(cl, "10.0.0.2", "expired", SEC(1), &sum, pool));
    /* no room for a third client while both hold counts: every line written */
    for (i = 0; i < 5; i++)
        assert_true(ajw_clientlog_note(cl, "10.0.0.3", "expired", SEC(2), &sum, pool));
    /* a slot whose interval ended with nothing held is taken over */
    assert_int_equal(ajw_clientlog_create(&cl, 1, SEC(60), 2, pool), APR_SUCCESS);
    for (i = 0; i < 2; i++) {
        apr_snprintf(ip, sizeof(ip), "10.0.1.%d", i);
        assert_true(ajw_clientlog_note(cl, ip, "expired", SEC(1), &sum, pool));
    }
    assert_true(ajw_clientlog_note(cl, "10.0.1.9", "expired", SEC(61), &sum, pool));
    assert_false(ajw_clientlog_note(cl, "10.0.1.9", "expired", SEC(61), &sum, pool));
    /* odd clients are never hidden */
    assert_true(ajw_clientlog_note(cl, "", "expired", SEC(61), &sum, pool));
    memset(ip, 'x', sizeof(ip) - 1);
    ip[sizeof(ip) - 1] = '\0';
    assert_true(ajw_clientlog_note(cl, apr_pstrcat(pool, ip, ip, NULL), "expired", SEC(61),
                                   &sum, pool));
    assert_true(ajw_clientlog_note(NULL, "10.0.0.1", "expired", SEC(61), &sum, pool));
    assert_null(sum);
}

static void test_bad_args(void **state)
{
    ajw_clientlog_t *cl;
    (void)state;
    assert_int_not_equal(ajw_clientlog_create(&cl, 5, SEC(60), 0, pool), APR_SUCCESS);
    assert_int_not_equal(ajw_clientlog_create(&cl, -1, SEC(60), 4, pool), APR_SUCCESS);
    assert_int_not_equal(ajw_clientlog_create(&cl, 5, 0, 4, pool), APR_SUCCESS);
    assert_int_equal(ajw_clientlog_flush(NULL, 0, 1, sink, NULL), 0);
}

/* The flusher thread: counts left when the pool goes are written then. */
static void test_flusher_at_exit(void **state)
{
    ajw_clientlog_t *cl;
    apr_pool_t *p;
    const char *sum;
    sink_t s;
    int i;
    (void)state;
    memset(&s, 0, sizeof(s));
    apr_pool_create(&p, pool);
    assert_int_equal(ajw_clientlog_create(&cl, 1, SEC(3600), 8, p), APR_SUCCESS);
    assert_int_equal(ajw_clientlog_start(cl, sink, &s, p), APR_SUCCESS);
    for (i = 0; i < 4; i++)
        ajw_clientlog_note(cl, "127.0.0.1", "bad_signature", apr_time_now(), &sum, p);
    apr_pool_destroy(p);
    assert_int_equal(s.n, 1);
    assert_non_null(strstr(s.last, "token refusals from 127.0.0.1: 3 more in the last "));
    assert_non_null(strstr(s.last, "(bad_signature 3)"));
}

/* The flusher thread writes an ended interval without a further refusal. */
static void test_flusher_on_time(void **state)
{
    ajw_clientlog_t *cl;
    apr_pool_t *p;
    const char *sum;
    sink_t s;
    int i;
    (void)state;
    memset(&s, 0, sizeof(s));
    apr_pool_create(&p, pool);
    assert_int_equal(ajw_clientlog_create(&cl, 0, apr_time_from_msec(200), 8, p), APR_SUCCESS);
    assert_int_equal(ajw_clientlog_start(cl, sink, &s, p), APR_SUCCESS);
    ajw_clientlog_note(cl, "127.0.0.1", "expired", apr_time_now(), &sum, p);
    for (i = 0; i < 50 && !s.n; i++)
        apr_sleep(apr_time_from_msec(20));
    assert_int_equal(s.n, 1);
    apr_pool_destroy(p);
    assert_int_equal(s.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_then_summary),
        cmocka_unit_test(test_clients_apart_and_flush),
        cmocka_unit_test(test_many_reasons),
        cmocka_unit_test(test_full_table_logs_everything),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_flusher_at_exit),
        cmocka_unit_test(test_flusher_on_time),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
