/* test_issuer.c — multi-tenant issuer templates and tenant ids. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "ajw_issuer.h"

static apr_pool_t *pool;

#define TID  "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define TID2 "9188040d-6c67-4c5b-b112-36a304b66dad"
#define ENTRA "https://login.microsoftonline.com/{tenantid}/v2.0"

static void test_parse(void **state)
{
    static const struct { const char *iss; const char *prefix, *suffix; } good[] = {
        { ENTRA, "https://login.microsoftonline.com/", "/v2.0" },
        { "https://sts.windows.net/{tenantid}/", "https://sts.windows.net/", "/" },
        { "https://h.example/a/b/{tenantid}", "https://h.example/a/b/", "" },
        { "http://127.0.0.1:8080/{tenantid}/x", "http://127.0.0.1:8080/", "/x" },
    };
    static const char *const literal[] = { "https://a.example", "https://h/{tenant-id}/v2.0",
                                           "https://h/{tenant}/", "x" };
    static const struct { const char *iss, *why; } bad[] = {
        { "https://h/{tenantid}/{tenantid}", "one" },
        { "https://{tenantid}.ciamlogin.com/{tenantid}/v2.0", "one" },
        { "https://{tenantid}.ciamlogin.com/v2.0", "whole path segment" },
        { "https://h/x{tenantid}/v2.0", "whole path segment" },
        { "https://h/{tenantid}x/v2.0", "whole path segment" },
        { "https://h/{tenantid}.v2", "whole path segment" },
        { "{tenantid}", "whole path segment" },
        { "urn:x:{tenantid}", "whole path segment" },
        { "https:///{tenantid}", "whole path segment" },
        { "https://h/{tenantid}?x=1", "query" },
        { "https://h/{tenantid}#f", "query" },
        { "https://h/{TenantId}/v2.0", "lower case" },
        { "https://h/{TENANTID}/v2.0", "lower case" },
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        ajw_issuer_tpl_t *t = NULL;
        const char *why = NULL;
        assert_int_equal(ajw_issuer_template_parse(&t, good[i].iss, pool, &why), APR_SUCCESS);
        assert_non_null(t);
        assert_string_equal(t->prefix, good[i].prefix);
        assert_string_equal(t->suffix, good[i].suffix);
        assert_int_equal(t->prefix_len, strlen(good[i].prefix));
        assert_int_equal(t->suffix_len, strlen(good[i].suffix));
    }
    for (i = 0; i < sizeof(literal) / sizeof(literal[0]); i++) {
        ajw_issuer_tpl_t *t = (ajw_issuer_tpl_t *)1;
        const char *why = NULL;
        assert_int_equal(ajw_issuer_template_parse(&t, literal[i], pool, &why), APR_SUCCESS);
        assert_null(t);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ajw_issuer_tpl_t *t = NULL;
        const char *why = NULL;
        if (ajw_issuer_template_parse(&t, bad[i].iss, pool, &why) == APR_SUCCESS)
            fail_msg("template '%s' accepted", bad[i].iss);
        assert_null(t);
        if (!why || !strstr(why, bad[i].why))
            fail_msg("template '%s': %s", bad[i].iss, why ? why : "(no reason)");
    }
}

static void test_tenant_id(void **state)
{
    static const char *const good[] = { TID, TID2, "00000000-0000-0000-0000-000000000000" };
    static const char *const bad[] = {
        "", "72F988BF-86F1-41AF-91AB-2D7CD011DB47", "72f988bf86f141af91ab2d7cd011db47",
        "{72f988bf-86f1-41af-91ab-2d7cd011db47}", "72f988bf-86f1-41af-91ab-2d7cd011db4",
        "72f988bf-86f1-41af-91ab-2d7cd011db477", "72f988bf-86f1-41af-91ab/2d7cd011db47",
        "72f988bf-86f1-41af-91ab@2d7cd011db47", "72f988bf-86f1-41af-91ab-2d7cd011db4g",
        "72f988bf-86f1-41af-91ab-2d7cd011db.7", "72f988bf-86f1-41af-91ab-2d7cd011db%2",
        "72f988bf-86f141af-91ab--2d7cd011db47", "common", "organizations",
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(ajw_tenant_id_ok(good[i], strlen(good[i])));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ajw_tenant_id_ok(bad[i], strlen(bad[i])))
            fail_msg("tenant id '%s' accepted", bad[i]);
    assert_false(ajw_tenant_id_ok(NULL, 0));
    assert_false(ajw_tenant_id_ok(TID "\0", AJW_TENANT_ID_LEN + 1));
}

static void test_tenant_of(void **state)
{
    static const struct { const char *claims; int ok; const char *why; } cases[] = {
        { "{\"tid\":\"" TID "\"}", 1, NULL },
        { "{}", 0, "absent" },
        { "{\"tid\":null}", 0, "not a tenant id" },
        { "{\"tid\":1}", 0, "not a tenant id" },
        { "{\"tid\":[\"" TID "\"]}", 0, "not a tenant id" },
        { "{\"tid\":\"" TID "/x\"}", 0, "not a tenant id" },
        { "{\"tid\":\"72f988bf-86f1-41af-91ab-2d7cd011db4\\u0000\"}", 0, "not a tenant id" },
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *tree = json_loads(cases[i].claims, JSON_ALLOW_NUL, &jerr);
        const ajw_val_t *c;
        const char *why = NULL, *tid;
        if (!tree)
            fail_msg("bad test JSON %s", cases[i].claims);
        c = ajw_doc_make(tree, pool, NULL);
        if (!c) {
            /* A string holding a NUL byte has no document (the strict parser
             * refuses \u0000 before): still no tenant, and a reason. */
            assert_int_equal(ajw_doc_size(tree), 0);
            assert_false(cases[i].ok);
            tid = ajw_tenant_of(c, &why);
            if (tid != NULL || !why)
                fail_msg("case %zu (%s): %s without a document", i, cases[i].claims,
                         tid ? tid : "NULL");
            json_decref(tree);
            continue;
        }
        tid = ajw_tenant_of(c, &why);
        if (cases[i].ok ? !tid || strcmp(tid, TID) : tid != NULL || !strstr(why, cases[i].why))
            fail_msg("case %zu (%s): %s / %s", i, cases[i].claims, tid ? tid : "NULL",
                     why ? why : "NULL");
        json_decref(tree);
    }
    assert_null(ajw_tenant_of(NULL, &(const char *){ NULL }));
}

static void test_match(void **state)
{
    static const struct { const char *iss; const char *tid; int want; } cases[] = {
        { "https://login.microsoftonline.com/" TID "/v2.0", TID, 1 },
        { "https://login.microsoftonline.com/" TID2 "/v2.0", TID, 0 },   /* another tenant */
        { "https://login.microsoftonline.com/" TID "/v2.0", TID2, 0 },
        { "https://login.microsoftonline.com/" TID "/v2.0/", TID, 0 },
        { "https://login.microsoftonline.com/" TID "/v2", TID, 0 },
        { "https://login.microsoftonline.com/" TID, TID, 0 },
        { "https://login.microsoftonline.com/{tenantid}/v2.0", TID, 0 },
        { "https://login.microsoftonline.com//v2.0", TID, 0 },
        { "https://LOGIN.microsoftonline.com/" TID "/v2.0", TID, 0 },
        { "https://evil.example/" TID "/v2.0", TID, 0 },
        { "", TID, 0 },
    };
    ajw_issuer_tpl_t *t = NULL;
    const char *why = NULL;
    size_t i;
    (void)state;
    assert_int_equal(ajw_issuer_template_parse(&t, ENTRA, pool, &why), APR_SUCCESS);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (ajw_issuer_template_match(t, cases[i].iss, strlen(cases[i].iss), cases[i].tid)
            != cases[i].want)
            fail_msg("match case %zu: %s with %s", i, cases[i].iss, cases[i].tid);
    /* a NUL inside the token's iss is never matched past */
    assert_false(ajw_issuer_template_match(t, "https://login.microsoftonline.com/" TID "\0v2.0",
                                           sizeof("https://login.microsoftonline.com/" TID "/v2.0") - 1,
                                           TID));
    assert_false(ajw_issuer_template_match(NULL, "x", 1, TID));
    assert_false(ajw_issuer_template_match(t, NULL, 0, TID));
    assert_false(ajw_issuer_template_match(t, "x", 1, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_tenant_id),
        cmocka_unit_test(test_tenant_of),
        cmocka_unit_test(test_match),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
