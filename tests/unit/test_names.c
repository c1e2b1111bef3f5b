/* Unit tests for ajw_names: claim names to variables and headers, header
 * value encoding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "ajw_names.h"

static apr_pool_t *pool;

static void test_env_name(void **state)
{
    (void)state;
    assert_string_equal(ajw_env_name(pool, "JWT_CLAIM_", "email"), "JWT_CLAIM_EMAIL");
    assert_string_equal(ajw_env_name(pool, "JWT_CLAIM_", "email-verified"),
                        "JWT_CLAIM_EMAIL_VERIFIED");
    assert_string_equal(ajw_env_name(pool, "OIDC_CLAIM_", "https://ex.com/r0"),
                        "OIDC_CLAIM_HTTPS___EX_COM_R0");
    /* non-ASCII bytes never pass as letters, whatever the locale */
    assert_string_equal(ajw_env_name(pool, "JWT_", "caf\xc3\xa9"), "JWT_CAF__");
    assert_string_equal(ajw_env_name(pool, "JWT_", "a=b;c d\n"), "JWT_A_B_C_D_");
    assert_string_equal(ajw_env_name(pool, "JWT_", ""), "JWT_");
}

static void test_header_name(void **state)
{
    (void)state;
    assert_string_equal(ajw_header_name(pool, "X-JWT-Claim-", "email_verified"),
                        "X-JWT-Claim-email-verified");
    assert_string_equal(ajw_header_name(pool, "X-JWT-Claim-", "https://x/r"),
                        "X-JWT-Claim-https---x-r");
    assert_string_equal(ajw_header_name(pool, "X-JWT-Claim-", "a:b\r\nX-Evil"),
                        "X-JWT-Claim-a-b--X-Evil");
    assert_string_equal(ajw_header_name(pool, "X-JWT-Claim-", "\xc3\xa9"), "X-JWT-Claim---");
}

static void test_header_value(void **state)
{
    (void)state;
    assert_string_equal(ajw_header_value(pool, "plain value, ok"), "plain value, ok");
    assert_string_equal(ajw_header_value(pool, "a\r\nX-Evil: 1"), "a%0D%0AX-Evil: 1");
    assert_string_equal(ajw_header_value(pool, "100%"), "100%25");
    assert_string_equal(ajw_header_value(pool, "Jos\xc3\xa9"), "Jos%C3%A9");
    assert_string_equal(ajw_header_value(pool, "\x7f\x01\t"), "%7F%01%09");
    assert_string_equal(ajw_header_value(pool, ""), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_name),
        cmocka_unit_test(test_header_name),
        cmocka_unit_test(test_header_value),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
