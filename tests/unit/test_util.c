/* test_util.c — reasons, errors, algorithm names, policy defaults, log sink. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include <apr_general.h>

#include "ajw_types.h"
#include "ajw_log.h"

static void test_reason_names(void **state)
{
    int c;
    (void)state;
    assert_string_equal(ajw_reason_name(AJW_OK), "ok");
    assert_string_equal(ajw_reason_name(AJW_R_EXPIRED), "expired");
    assert_string_equal(ajw_reason_name(AJW_R_NO_KEY), "no_matching_key");
    assert_string_equal(ajw_reason_name(AJW_R__COUNT), "unknown");
    assert_string_equal(ajw_reason_name((ajw_reason_e)-1), "unknown");
    /* Every code has its own name: logs and tests rely on them. */
    for (c = 0; c < AJW_R__COUNT; c++) {
        int d;
        assert_string_not_equal(ajw_reason_name((ajw_reason_e)c), "unknown");
        for (d = c + 1; d < AJW_R__COUNT; d++)
            assert_string_not_equal(ajw_reason_name((ajw_reason_e)c),
                                    ajw_reason_name((ajw_reason_e)d));
    }
}

static void test_error_set(void **state)
{
    ajw_error_t err;
    char big[600];
    (void)state;
    assert_int_equal(ajw_error_set(&err, AJW_R_BAD_ISSUER, "iss %s", "x"), AJW_R_BAD_ISSUER);
    assert_int_equal(err.code, AJW_R_BAD_ISSUER);
    assert_string_equal(err.text, "iss x");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ajw_error_set(&err, AJW_R_MALFORMED, "%s", big);        /* truncated, terminated */
    assert_int_equal(strlen(err.text), sizeof(err.text) - 1);
    assert_int_equal(ajw_error_set(NULL, AJW_R_EXPIRED, "no sink"), AJW_R_EXPIRED);
}

static void test_alg_names(void **state)
{
    int a;
    (void)state;
    for (a = AJW_ALG_UNKNOWN + 1; a < AJW_ALG__COUNT; a++) {
        const char *n = ajw_alg_name((ajw_alg_e)a);
        assert_int_equal(ajw_alg_from_name(n, strlen(n)), a);
    }
    /* Exact and case-sensitive, by length: no prefix or case folding. */
    assert_int_equal(ajw_alg_from_name("rs256", 5), AJW_ALG_UNKNOWN);
    assert_int_equal(ajw_alg_from_name("RS25", 4), AJW_ALG_UNKNOWN);
    assert_int_equal(ajw_alg_from_name("RS2566", 6), AJW_ALG_UNKNOWN);
    assert_int_equal(ajw_alg_from_name("RS256\0x", 7), AJW_ALG_UNKNOWN);
    assert_int_equal(ajw_alg_from_name("EDDSA", 5), AJW_ALG_UNKNOWN);
    assert_int_equal(ajw_alg_from_name(NULL, 0), AJW_ALG_UNKNOWN);
    assert_string_equal(ajw_alg_name(AJW_ALG__COUNT), "unknown");
}

static void test_policy_defaults(void **state)
{
    ajw_policy_t pol;
    (void)state;
    ajw_policy_init(&pol);
    assert_int_equal(pol.algs, AJW_ALGS_DEFAULT);
    assert_false(pol.algs & AJW_ALG_BIT(AJW_ALG_NONE));
    assert_false(pol.algs & AJW_ALG_BIT(AJW_ALG_HS256));
    assert_int_equal(pol.max_token_len, AJW_MAX_TOKEN_LEN_DEFAULT);
    assert_int_equal(pol.leeway, 60);
    assert_int_equal(pol.require_exp, 1);
    assert_null(pol.issuers);
    assert_null(pol.typ);
}

static char last_msg[600];
static int last_level, calls;

static void sink(void *baton, ajw_log_level_e level, const char *msg)
{
    (void)baton;
    last_level = (int)level;
    calls++;
    strncpy(last_msg, msg, sizeof(last_msg) - 1);
}

static void test_log_sink(void **state)
{
    (void)state;
    ajw_log_set(NULL, NULL);
    ajw_log(AJW_LOG_ERR, "dropped %d", 1);          /* no sink: nothing happens */
    assert_int_equal(calls, 0);
    ajw_log_set(sink, NULL);
    ajw_log(AJW_LOG_WARN, "fetch of %s failed", "https://x");
    assert_int_equal(calls, 1);
    assert_int_equal(last_level, AJW_LOG_WARN);
    assert_string_equal(last_msg, "fetch of https://x failed");
    ajw_log_set(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test(test_error_set),
        cmocka_unit_test(test_alg_names),
        cmocka_unit_test(test_policy_defaults),
        cmocka_unit_test(test_log_sink),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
