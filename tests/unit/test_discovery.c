/* Unit tests for ajw_discovery: metadata lookup order (OIDC, then RFC 8414
 * with path insertion), the exact-issuer mix-up defence, https-only
 * jwks_uri, hostile metadata, pass-through of other URLs. The inner fetcher
 * is a fake that serves documents by URL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "ajw_discovery.h"

static apr_pool_t *pool;

typedef struct doc_t {
    const char *url;
    int status;
    const char *body;
} doc_t;

typedef struct fake_t {
    const doc_t *docs;
    int ndocs;
    const char *asked[8];
    const char *etags[8];
    int nasked;
} fake_t;

static apr_status_t fake_fetch(ajw_fetcher_t *self, const ajw_fetch_req_t *req,
                               ajw_fetch_res_t *res, apr_pool_t *p)
{
    fake_t *f = self->baton;
    int i;
    memset(res, 0, sizeof(*res));
    if (f->nasked < 8) {
        f->etags[f->nasked] = req->etag;
        f->asked[f->nasked++] = apr_pstrdup(p, req->url);
    }
    for (i = 0; i < f->ndocs; i++) {
        if (!strcmp(f->docs[i].url, req->url)) {
            res->status = f->docs[i].status;
            res->body = f->docs[i].body;
            res->len = strlen(f->docs[i].body);
            res->max_age = -1;
            return APR_SUCCESS;
        }
    }
    res->status = 404;
    res->body = "";
    return APR_SUCCESS;
}

static ajw_fetcher_t *make(fake_t *fake, ajw_fetcher_t *inner)
{
    inner->fetch = fake_fetch;
    inner->baton = fake;
    return ajw_discovery_fetcher(inner, pool);
}

static apr_status_t run(ajw_fetcher_t *f, const char *url, const char *etag, ajw_fetch_res_t *res)
{
    ajw_fetch_req_t req;
    memset(&req, 0, sizeof(req));
    req.url = url;
    req.etag = etag;
    req.max_size = 4096;
    return f->fetch(f, &req, res, pool);
}

static void test_oidc_metadata_then_jwks(void **state)
{
    static const doc_t docs[] = {
        { "https://idp.test/.well-known/openid-configuration", 200,
          "{\"issuer\":\"https://idp.test\",\"jwks_uri\":\"https://keys.idp.test/jwks\"}" },
        { "https://keys.idp.test/jwks", 200, "{\"keys\":[]}" },
    };
    fake_t fake = { docs, 2, {0}, {0}, 0 };
    ajw_fetcher_t inner, *f = make(&fake, &inner);
    ajw_fetch_res_t res;
    (void)state;
    assert_int_equal(run(f, "discover:https://idp.test", "\"e1\"", &res), APR_SUCCESS);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, "{\"keys\":[]}");
    assert_int_equal(fake.nasked, 2);
    assert_null(fake.etags[0]);                   /* metadata: always read whole */
    assert_string_equal(fake.etags[1], "\"e1\""); /* the JWKS keeps If-None-Match */
    assert_string_equal(ajw_discovery_jwks_uri(f, "discover:https://idp.test", pool),
                        "https://keys.idp.test/jwks");
    assert_null(ajw_discovery_jwks_uri(f, "discover:https://other.test", pool));
}

static void test_rfc8414_path_insertion(void **state)
{
    static const doc_t docs[] = {
        { "https://as.test/.well-known/oauth-authorization-server/tenant1", 200,
          "{\"issuer\":\"https://as.test/tenant1\",\"jwks_uri\":\"https://as.test/t1/keys\"}" },
        { "https://as.test/t1/keys", 200, "{\"keys\":[1]}" },
    };
    fake_t fake = { docs, 2, {0}, {0}, 0 };
    ajw_fetcher_t inner, *f = make(&fake, &inner);
    ajw_fetch_res_t res;
    (void)state;
    assert_int_equal(run(f, "discover:https://as.test/tenant1", NULL, &res), APR_SUCCESS);
    assert_string_equal(res.body, "{\"keys\":[1]}");
    assert_string_equal(fake.asked[0], "https://as.test/tenant1/.well-known/openid-configuration");
    assert_string_equal(fake.asked[1],
                        "https://as.test/.well-known/oauth-authorization-server/tenant1");
}

static void test_refusals(void **state)
{
    static const struct { const char *meta, *want; } cases[] = {
        { "{\"issuer\":\"https://evil.test\",\"jwks_uri\":\"https://idp.test/j\"}", "mix-up" },
        { "{\"issuer\":\"https://idp.test/\",\"jwks_uri\":\"https://idp.test/j\"}", "mix-up" },
        { "{\"jwks_uri\":\"https://idp.test/j\"}", "mix-up" },
        { "{\"issuer\":\"https://idp.test\",\"jwks_uri\":\"http://idp.test/j\"}", "not a plain" },
        { "{\"issuer\":\"https://idp.test\",\"jwks_uri\":\"https://u:p@idp.test/j\"}", "not a plain" },
        { "{\"issuer\":\"https://idp.test\"}", "missing" },
        { "{\"issuer\":\"https://idp.test\",\"issuer\":\"https://idp.test\"}", "metadata" },
        { "[1,2]", "metadata" },
        { "not json", "metadata" },
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        doc_t docs[1] = { { "https://idp.test/.well-known/openid-configuration", 200,
                            cases[i].meta } };
        fake_t fake = { docs, 1, {0}, {0}, 0 };
        ajw_fetcher_t inner, *f = make(&fake, &inner);
        ajw_fetch_res_t res;
        if (run(f, "discover:https://idp.test", NULL, &res) == APR_SUCCESS)
            fail_msg("case %zu accepted", i);
        assert_non_null(res.error);
        if (!strstr(res.error, cases[i].want))
            fail_msg("case %zu: '%s' lacks '%s'", i, res.error, cases[i].want);
        assert_int_equal(fake.nasked, 1);         /* the JWKS is never fetched */
    }
}

static void test_no_metadata_anywhere(void **state)
{
    fake_t fake = { NULL, 0, {0}, {0}, 0 };
    ajw_fetcher_t inner, *f = make(&fake, &inner);
    ajw_fetch_res_t res;
    (void)state;
    assert_int_not_equal(run(f, "discover:https://idp.test", NULL, &res), APR_SUCCESS);
    assert_non_null(strstr(res.error, "HTTP 404"));
    assert_int_equal(fake.nasked, 2);
}

static void test_pass_through_and_issuer_check(void **state)
{
    static const doc_t docs[] = { { "https://plain.test/jwks", 200, "{\"keys\":[]}" } };
    fake_t fake = { docs, 1, {0}, {0}, 0 };
    ajw_fetcher_t inner, *f = make(&fake, &inner);
    ajw_fetch_res_t res;
    (void)state;
    assert_int_equal(run(f, "https://plain.test/jwks", NULL, &res), APR_SUCCESS);
    assert_int_equal(fake.nasked, 1);
    assert_null(ajw_discovery_check_issuer("https://idp.test", pool));
    assert_null(ajw_discovery_check_issuer("https://idp.test/realms/x", pool));
    assert_non_null(ajw_discovery_check_issuer("http://idp.test", pool));
    assert_non_null(ajw_discovery_check_issuer("https://idp.test/?a=b", pool));
    assert_non_null(ajw_discovery_check_issuer("https://", pool));
    assert_non_null(ajw_discovery_check_issuer("idp.test", pool));
    assert_string_equal(ajw_discovery_source_url("https://i", pool), "discover:https://i");
    assert_null(ajw_discovery_jwks_uri(&inner, "x", pool));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oidc_metadata_then_jwks),
        cmocka_unit_test(test_rfc8414_path_insertion),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_no_metadata_anywhere),
        cmocka_unit_test(test_pass_through_and_issuer_check),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
