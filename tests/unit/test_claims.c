/* test_claims.c — NumericDate parsing and ajw_claims_check tables. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "tu_vectors.h"
#include "ajw_claims.h"

static apr_pool_t *pool;

/* The claims as the checks see them: text → jansson tree → flat document
 * (in pool). NULL when the tree cannot be a document (a string holding a
 * NUL byte, which the strict parser never lets through anyway). */
static const ajw_val_t *doc(const char *text)
{
    json_t *v = tu_json(text, JSON_ALLOW_NUL);
    const ajw_val_t *d = ajw_doc_make(v, pool, NULL);
    json_decref(v);
    return d;
}

/* ---- NumericDate ---- */

typedef struct {
    const char *claims;
    int want;
    long long value;
} nd_case_t;

static void test_numeric_date(void **state)
{
    static const nd_case_t cases[] = {
        { "{}", 0, 0 },
        { "{\"exp\":0}", 1, 0 },
        { "{\"exp\":1700000000}", 1, 1700000000LL },
        { "{\"exp\":1700000000.9}", 1, 1700000000LL },
        { "{\"exp\":0.5}", 1, 0 },
        { "{\"exp\":253402300799}", 1, 253402300799LL },
        { "{\"exp\":253402300799.5}", -1, 0 },
        { "{\"exp\":253402300800}", -1, 0 },
        { "{\"exp\":9223372036854775807}", -1, 0 },
        { "{\"exp\":1e300}", -1, 0 },
        { "{\"exp\":-1}", -1, 0 },
        { "{\"exp\":-0.5}", -1, 0 },
        { "{\"exp\":\"1700000000\"}", -1, 0 },
        { "{\"exp\":true}", -1, 0 },
        { "{\"exp\":false}", -1, 0 },
        { "{\"exp\":null}", -1, 0 },
        { "{\"exp\":[1]}", -1, 0 },
        { "{\"exp\":{}}", -1, 0 },
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const ajw_val_t *c = doc(cases[i].claims);
        long long out = -42;
        int rv;
        assert_non_null(c);
        rv = ajw_claims_numeric_date(c, "exp", &out);
        if (rv != cases[i].want)
            fail_msg("case %zu (%s): got %d want %d", i, cases[i].claims, rv, cases[i].want);
        if (rv == 1)
            assert_int_equal(out, cases[i].value);
    }
}

static void test_numeric_date_nonfinite(void **state)
{
    /* jansson holds no NaN or infinity (json_real refuses them) and its
     * parser rejects 1e400, so such values can never reach the check. */
    (void)state;
    assert_null(json_real(__builtin_inf()));
    assert_null(json_real(-__builtin_inf()));
    assert_null(json_real(__builtin_nan("")));
    assert_null(json_loads("{\"exp\":1e400}", 0, NULL));
    assert_null(json_loads("{\"exp\":99999999999999999999}", 0, NULL));
}

/* ---- time checks ---- */

typedef struct {
    const char *claims;
    long long now;
    long long leeway;
    int require_exp;
    long long max_age;
    ajw_reason_e want;
} time_case_t;

#define T0 1700000000LL

static void test_times(void **state)
{
    static const time_case_t cases[] = {
        /* exp: expired when exp + leeway <= now */
        { "{\"exp\":1700000000}", T0 - 1, 0, 1, 0, AJW_OK },
        { "{\"exp\":1700000000}", T0, 0, 1, 0, AJW_R_EXPIRED },
        { "{\"exp\":1700000000}", T0 + 59, 60, 1, 0, AJW_OK },
        { "{\"exp\":1700000000}", T0 + 60, 60, 1, 0, AJW_R_EXPIRED },
        /* fractional exp is truncated: 1700000000.9 expires at ...000 */
        { "{\"exp\":1700000000.9}", T0 - 1, 0, 1, 0, AJW_OK },
        { "{\"exp\":1700000000.9}", T0, 0, 1, 0, AJW_R_EXPIRED },
        /* missing exp */
        { "{}", T0, 60, 1, 0, AJW_R_EXPIRED },
        { "{}", T0, 60, 0, 0, AJW_OK },
        { "{\"sub\":\"x\"}", T0, 60, 0, 0, AJW_OK },
        /* wrong types / ranges */
        { "{\"exp\":\"4102444800\"}", T0, 60, 1, 0, AJW_R_BAD_CLAIM },
        { "{\"exp\":\"4102444800\"}", T0, 60, 0, 0, AJW_R_BAD_CLAIM },
        { "{\"exp\":true}", T0, 60, 1, 0, AJW_R_BAD_CLAIM },
        { "{\"exp\":-5}", T0, 60, 1, 0, AJW_R_BAD_CLAIM },
        { "{\"exp\":1e300}", T0, 60, 1, 0, AJW_R_BAD_CLAIM },
        { "{\"exp\":1e20}", T0, 60, 1, 0, AJW_R_BAD_CLAIM },
        { "{\"exp\":4102444800,\"nbf\":\"x\"}", T0, 60, 1, 0, AJW_R_BAD_CLAIM },
        { "{\"exp\":4102444800,\"iat\":null}", T0, 60, 1, 0, AJW_R_BAD_CLAIM },
        { "{\"exp\":4102444800,\"iat\":-1}", T0, 60, 1, 0, AJW_R_BAD_CLAIM },
        /* nbf: not yet valid when nbf - leeway > now */
        { "{\"exp\":4102444800,\"nbf\":1700000000}", T0, 0, 1, 0, AJW_OK },
        { "{\"exp\":4102444800,\"nbf\":1700000000}", T0 - 1, 0, 1, 0, AJW_R_NOT_YET_VALID },
        { "{\"exp\":4102444800,\"nbf\":1700000060}", T0, 60, 1, 0, AJW_OK },
        { "{\"exp\":4102444800,\"nbf\":1700000061}", T0, 60, 1, 0, AJW_R_NOT_YET_VALID },
        { "{\"exp\":4102444800,\"nbf\":1700000060.5}", T0, 60, 1, 0, AJW_OK },
        /* iat in the future */
        { "{\"exp\":4102444800,\"iat\":1700000060}", T0, 60, 1, 0, AJW_OK },
        { "{\"exp\":4102444800,\"iat\":1700000061}", T0, 60, 1, 0, AJW_R_ISSUED_IN_FUTURE },
        { "{\"exp\":4102444800,\"iat\":1700000001}", T0, 0, 1, 0, AJW_R_ISSUED_IN_FUTURE },
        /* max age: too old when now - iat > max_age + leeway; iat required */
        { "{\"exp\":4102444800}", T0, 60, 1, 300, AJW_R_TOO_OLD },
        { "{\"exp\":4102444800,\"iat\":1699999640}", T0, 60, 1, 300, AJW_OK },
        { "{\"exp\":4102444800,\"iat\":1699999639}", T0, 60, 1, 300, AJW_R_TOO_OLD },
        { "{\"exp\":4102444800,\"iat\":1699999700}", T0, 0, 1, 300, AJW_OK },
        { "{\"exp\":4102444800,\"iat\":1699999699}", T0, 0, 1, 300, AJW_R_TOO_OLD },
        { "{\"exp\":4102444800,\"iat\":0}", T0, 60, 1, 9223372036854775807LL, AJW_OK },
        /* order: exp before nbf */
        { "{\"exp\":1,\"nbf\":4102444800}", T0, 0, 1, 0, AJW_R_EXPIRED },
        /* the extremes do not overflow */
        { "{\"exp\":253402300799}", T0, 9223372036854775807LL, 1, 0, AJW_OK },
        { "{\"exp\":0}", 0, 0, 1, 0, AJW_R_EXPIRED },
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ajw_policy_t pol;
        ajw_error_t err;
        const ajw_val_t *c = doc(cases[i].claims);
        ajw_reason_e rv;
        assert_non_null(c);
        ajw_policy_init(&pol);
        pol.leeway = cases[i].leeway;
        pol.require_exp = cases[i].require_exp;
        pol.max_age = cases[i].max_age;
        rv = ajw_claims_check(c, &pol, cases[i].now, &err);
        if (rv != cases[i].want)
            fail_msg("case %zu (%s now=%lld): got %s want %s (%s)", i, cases[i].claims,
                     cases[i].now, ajw_reason_name(rv), ajw_reason_name(cases[i].want),
                     err.text);
        if (rv != AJW_OK)
            assert_int_equal(err.code, rv);
    }
}

/* ---- iss / aud / required ---- */

static apr_array_header_t *list(const char *first, ...)
{
    apr_array_header_t *a = apr_array_make(pool, 4, sizeof(const char *));
    const char *s;
    va_list ap;
    va_start(ap, first);
    for (s = first; s; s = va_arg(ap, const char *))
        APR_ARRAY_PUSH(a, const char *) = s;
    va_end(ap);
    return a;
}

typedef struct {
    const char *claims;
    ajw_reason_e want;
} simple_case_t;

static void run_simple(const ajw_policy_t *pol, const simple_case_t *cases, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        ajw_error_t err;
        json_t *tree = tu_json(cases[i].claims, JSON_ALLOW_NUL);
        const ajw_val_t *c = ajw_doc_make(tree, pool, NULL);
        ajw_reason_e rv;
        memset(&err, 0, sizeof(err));
        if (!c) {
            /* Only a string holding a NUL byte has no document (the strict
             * parser refuses \u0000, so no verified token holds one); such
             * claims must still be refused, never match by a prefix. */
            assert_int_equal(ajw_doc_size(tree), 0);
            assert_int_not_equal(cases[i].want, AJW_OK);
        }
        rv = ajw_claims_check(c, pol, T0, &err);
        if (c ? rv != cases[i].want : rv == AJW_OK)
            fail_msg("case %zu (%s): got %s want %s (%s)", i, cases[i].claims,
                     ajw_reason_name(rv), ajw_reason_name(cases[i].want), err.text);
        json_decref(tree);
    }
}

static void test_iss(void **state)
{
    static const simple_case_t cases[] = {
        { "{\"exp\":4102444800,\"iss\":\"https://a.example\"}", AJW_OK },
        { "{\"exp\":4102444800,\"iss\":\"https://b.example\"}", AJW_OK },
        { "{\"exp\":4102444800,\"iss\":\"https://a.example/\"}", AJW_R_BAD_ISSUER },
        { "{\"exp\":4102444800,\"iss\":\"https://a.exampl\"}", AJW_R_BAD_ISSUER },
        { "{\"exp\":4102444800,\"iss\":\"HTTPS://A.EXAMPLE\"}", AJW_R_BAD_ISSUER },
        { "{\"exp\":4102444800,\"iss\":\"\"}", AJW_R_BAD_ISSUER },
        { "{\"exp\":4102444800}", AJW_R_BAD_ISSUER },
        { "{\"exp\":4102444800,\"iss\":[\"https://a.example\"]}", AJW_R_BAD_ISSUER },
        { "{\"exp\":4102444800,\"iss\":null}", AJW_R_BAD_ISSUER },
        /* an embedded NUL must not make a prefix match */
        { "{\"exp\":4102444800,\"iss\":\"https://a.example\\u0000x\"}", AJW_R_BAD_ISSUER },
    };
    ajw_policy_t pol;
    (void)state;
    ajw_policy_init(&pol);
    pol.issuers = list("https://a.example", "https://b.example", NULL);
    run_simple(&pol, cases, sizeof(cases) / sizeof(cases[0]));
    /* no issuers configured: anything goes, missing included */
    pol.issuers = list(NULL);
    run_simple(&pol, (const simple_case_t[]){ { "{\"exp\":4102444800}", AJW_OK },
                                               { "{\"exp\":4102444800,\"iss\":1}", AJW_OK } },
               2);
}

static void test_iss_error_text_truncated(void **state)
{
    ajw_policy_t pol;
    ajw_error_t err;
    char claims[600];
    char longiss[400];
    const ajw_val_t *c;
    (void)state;
    memset(longiss, 'A', sizeof(longiss) - 1);
    longiss[sizeof(longiss) - 1] = '\0';
    snprintf(claims, sizeof(claims), "{\"exp\":4102444800,\"iss\":\"%s\"}", longiss);
    ajw_policy_init(&pol);
    pol.issuers = list("https://a.example", NULL);
    c = doc(claims);
    assert_non_null(c);
    assert_int_equal(ajw_claims_check(c, &pol, T0, &err), AJW_R_BAD_ISSUER);
    assert_non_null(strstr(err.text, "..."));
    assert_null(strstr(err.text, longiss + 300)); /* at most ~64 chars quoted */
    /* control characters never reach the text */
    c = doc("{\"exp\":4102444800,\"iss\":\"a\\nb\\u001bc\"}");
    assert_int_equal(ajw_claims_check(c, &pol, T0, &err), AJW_R_BAD_ISSUER);
    assert_non_null(strstr(err.text, "'a?b?c'"));
}

static void test_aud(void **state)
{
    static const simple_case_t cases[] = {
        { "{\"exp\":4102444800,\"aud\":\"api\"}", AJW_OK },
        { "{\"exp\":4102444800,\"aud\":\"api2\"}", AJW_OK },
        { "{\"exp\":4102444800,\"aud\":\"ap\"}", AJW_R_BAD_AUDIENCE },
        { "{\"exp\":4102444800,\"aud\":\"apix\"}", AJW_R_BAD_AUDIENCE },
        { "{\"exp\":4102444800,\"aud\":[\"x\",\"api\"]}", AJW_OK },
        { "{\"exp\":4102444800,\"aud\":[\"x\",\"y\"]}", AJW_R_BAD_AUDIENCE },
        { "{\"exp\":4102444800,\"aud\":[]}", AJW_R_BAD_AUDIENCE },
        { "{\"exp\":4102444800,\"aud\":[1,null,true,{\"api\":1},[\"api\"]]}",
          AJW_R_BAD_AUDIENCE },
        { "{\"exp\":4102444800,\"aud\":[1,\"api\"]}", AJW_OK },
        { "{\"exp\":4102444800,\"aud\":{\"api\":\"api\"}}", AJW_R_BAD_AUDIENCE },
        { "{\"exp\":4102444800,\"aud\":1}", AJW_R_BAD_AUDIENCE },
        { "{\"exp\":4102444800}", AJW_R_BAD_AUDIENCE },
    };
    ajw_policy_t pol;
    (void)state;
    ajw_policy_init(&pol);
    pol.audiences = list("api", "api2", NULL);
    run_simple(&pol, cases, sizeof(cases) / sizeof(cases[0]));
    pol.audiences = NULL;
    run_simple(&pol, (const simple_case_t[]){ { "{\"exp\":4102444800,\"aud\":[]}", AJW_OK } },
               1);
}

static void test_required(void **state)
{
    static const simple_case_t cases[] = {
        { "{\"exp\":4102444800,\"sub\":\"a\",\"jti\":\"b\"}", AJW_OK },
        { "{\"exp\":4102444800,\"sub\":null,\"jti\":0}", AJW_OK },
        { "{\"exp\":4102444800,\"sub\":\"a\"}", AJW_R_MISSING_CLAIM },
        { "{\"exp\":4102444800,\"subject\":\"a\",\"jti\":\"b\"}", AJW_R_MISSING_CLAIM },
        { "{\"exp\":4102444800,\"su\":\"a\",\"jti\":\"b\"}", AJW_R_MISSING_CLAIM },
    };
    ajw_policy_t pol;
    (void)state;
    ajw_policy_init(&pol);
    pol.required = list("sub", "jti", NULL);
    run_simple(&pol, cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_order_and_not_object(void **state)
{
    ajw_policy_t pol;
    ajw_error_t err;
    const ajw_val_t *c;
    (void)state;
    ajw_policy_init(&pol);
    pol.issuers = list("i", NULL);
    pol.audiences = list("a", NULL);
    pol.required = list("sub", NULL);
    /* iss is checked before aud, aud before required */
    c = doc("{\"exp\":4102444800,\"iss\":\"x\",\"aud\":\"x\"}");
    assert_int_equal(ajw_claims_check(c, &pol, T0, &err), AJW_R_BAD_ISSUER);
    c = doc("{\"exp\":4102444800,\"iss\":\"i\",\"aud\":\"x\"}");
    assert_int_equal(ajw_claims_check(c, &pol, T0, &err), AJW_R_BAD_AUDIENCE);
    assert_non_null(strstr(err.text, "'x'"));
    c = doc("{\"exp\":4102444800,\"iss\":\"i\",\"aud\":\"a\"}");
    assert_int_equal(ajw_claims_check(c, &pol, T0, &err), AJW_R_MISSING_CLAIM);
    assert_non_null(strstr(err.text, "sub"));
    c = doc("{\"exp\":4102444800,\"iss\":\"i\",\"aud\":\"a\",\"sub\":\"s\"}");
    assert_int_equal(ajw_claims_check(c, &pol, T0, &err), AJW_OK);
    assert_int_equal(ajw_claims_check(c, &pol, T0, NULL), AJW_OK);
    c = doc("[1]");
    assert_non_null(c);
    assert_int_not_equal(ajw_claims_check(c, &pol, T0, &err), AJW_OK);
    /* no document at all (NULL) is not an object either */
    assert_int_not_equal(ajw_claims_check(NULL, &pol, T0, &err), AJW_OK);
}

/* Step-up: auth_time against a maximum age, with leeway both ways. */
static void test_auth_time(void **state)
{
    static const struct { const char *claims; long long max_age, leeway; int want;
                          const char *why; } cases[] = {
        { "{\"auth_time\":1000}", 300, 0, 1, NULL },
        { "{\"auth_time\":700}", 300, 0, 1, NULL },          /* exactly max_age ago */
        { "{\"auth_time\":699}", 300, 0, 0, "older" },
        { "{\"auth_time\":690}", 300, 10, 1, NULL },          /* leeway */
        { "{\"auth_time\":689}", 300, 10, 0, "older" },
        { "{\"auth_time\":699.9}", 300, 0, 0, "older" },      /* truncated toward the past */
        { "{}", 300, 60, 0, "absent" },
        { "{\"auth_time\":null}", 300, 60, 0, "NumericDate" },
        { "{\"auth_time\":\"1000\"}", 300, 60, 0, "NumericDate" },
        { "{\"auth_time\":-1}", 300, 60, 0, "NumericDate" },
        { "{\"auth_time\":1e300}", 300, 60, 0, "NumericDate" },
        { "{\"auth_time\":1060}", 300, 60, 1, NULL },         /* future within leeway */
        { "{\"auth_time\":1061}", 300, 60, 0, "future" },
        { "{\"auth_time\":0}", 9223372036854775807LL, 9223372036854775807LL, 1, NULL },
        { "{\"auth_time\":253402300799}", 0, 0, 0, "future" },
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const ajw_val_t *c = doc(cases[i].claims);
        const char *why = "unset";
        int got;
        assert_non_null(c);
        got = ajw_claims_auth_time_ok(c, cases[i].max_age, cases[i].leeway, 1000, &why);
        if (got != cases[i].want || (cases[i].why ? !why || !strstr(why, cases[i].why) : !!why))
            fail_msg("auth_time case %zu (%s): got %d (%s)", i, cases[i].claims, got,
                     why ? why : "NULL");
    }
    assert_int_equal(ajw_claims_auth_time_ok(NULL, 300, 0, 1000, &(const char *){ NULL }), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numeric_date),
        cmocka_unit_test(test_numeric_date_nonfinite),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_iss),
        cmocka_unit_test(test_iss_error_text_truncated),
        cmocka_unit_test(test_aud),
        cmocka_unit_test(test_required),
        cmocka_unit_test(test_order_and_not_object),
        cmocka_unit_test(test_auth_time),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
