/* test_jwk.c — JWK and JWKS parsing against independent fixtures generated
 * by tests/fixtures/gen_keys.py (python3-jwcrypto / python3-cryptography),
 * the RFC 7520 cookbook keys, and tables of malformed keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "ajw_b64.h"
#include "ajw_crypt.h"
#include "ajw_jwk.h"
#include "tu_vectors.h"

#define FIXTURES "tests/fixtures/jwk_fixtures.json"

static apr_pool_t *pool;
static json_t *fx;

static const json_t *fixture_jwk(const char *name)
{
    const json_t *j = json_object_get(json_object_get(fx, name), "jwk");
    assert_non_null(j);
    return j;
}

/* Parse a fixture's JWK and, when it carries a signature, verify it and a
 * tampered copy. */
static void check_good(const char *name, ajw_kty_e kty, ajw_crv_e crv, int bits)
{
    const json_t *e = json_object_get(fx, name);
    const char *alg = json_string_value(json_object_get(e, "alg"));
    const char *msg = json_string_value(json_object_get(e, "msg"));
    const char *sigb = json_string_value(json_object_get(e, "sig"));
    ajw_key_t *k = NULL;
    const char *warn = "x";
    unsigned char *m, *s;
    size_t ml, sl;
    ajw_error_t err;

    if (ajw_jwk_parse(&k, &warn, fixture_jwk(name), pool, &err) != AJW_OK)
        fail_msg("%s: %s", name, err.text);
    assert_int_equal(k->kty, kty);
    assert_int_equal(k->crv, crv);
    assert_int_equal(k->bits, bits);
    assert_non_null(k->pkey);
    assert_true(k->can_verify);
    assert_non_null(k->kid);
    assert_int_equal(k->kid_len, strlen(k->kid));
    assert_non_null(alg);
    assert_int_equal(ajw_b64url_decode(&m, &ml, msg, strlen(msg), pool), APR_SUCCESS);
    assert_int_equal(ajw_b64url_decode(&s, &sl, sigb, strlen(sigb), pool), APR_SUCCESS);
    if (ajw_crypt_verify(ajw_alg_from_name(alg, strlen(alg)), k->pkey, m, ml, s, sl, &err)
        != AJW_OK)
        fail_msg("%s: %s", name, err.text);
    s[sl / 2] ^= 1;
    assert_int_equal(ajw_crypt_verify(ajw_alg_from_name(alg, strlen(alg)), k->pkey, m, ml, s,
                                      sl, &err), AJW_R_BAD_SIGNATURE);
}

static void test_every_key_type(void **state)
{
    (void)state;
    check_good("rsa2048", AJW_KTY_RSA, AJW_CRV_NONE, 2048);
    check_good("rsa2048_ps", AJW_KTY_RSA, AJW_CRV_NONE, 2048);
    check_good("rsa3072", AJW_KTY_RSA, AJW_CRV_NONE, 3072);
    check_good("p256", AJW_KTY_EC, AJW_CRV_P256, 256);
    check_good("p384", AJW_KTY_EC, AJW_CRV_P384, 384);
    check_good("p521", AJW_KTY_EC, AJW_CRV_P521, 521);
    check_good("ed25519", AJW_KTY_OKP, AJW_CRV_ED25519, 256);
    check_good("ed448", AJW_KTY_OKP, AJW_CRV_ED448, 456);
}

static void test_x5c(void **state)
{
    (void)state;
    check_good("x5c_rsa_only", AJW_KTY_RSA, AJW_CRV_NONE, 2048);
    check_good("x5c_rsa_match", AJW_KTY_RSA, AJW_CRV_NONE, 2048);
    check_good("x5c_ec_only", AJW_KTY_EC, AJW_CRV_P256, 256);
    check_good("x5c_ec_match", AJW_KTY_EC, AJW_CRV_P256, 256);
    check_good("x5c_ed25519_only", AJW_KTY_OKP, AJW_CRV_ED25519, 256);
}

static void check_bad(const json_t *jwk, const char *what)
{
    ajw_key_t *k = NULL;
    ajw_error_t err;

    err.text[0] = '\0';
    if (ajw_jwk_parse(&k, NULL, jwk, pool, &err) != AJW_R_BAD_KEY)
        fail_msg("%s accepted", what);
    assert_int_equal(err.code, AJW_R_BAD_KEY);
    assert_true(strlen(err.text) > 0);
}

static void test_rejected_fixtures(void **state)
{
    (void)state;
    check_bad(fixture_jwk("rsa1024"), "rsa1024");
    check_bad(fixture_jwk("x5c_rsa1024"), "x5c_rsa1024");
    check_bad(fixture_jwk("x5c_rsa_mismatch"), "x5c_rsa_mismatch");
    check_bad(fixture_jwk("x5c_ec_wrong_crv"), "x5c_ec_wrong_crv");
    check_bad(fixture_jwk("oct"), "oct");
}

/* A copy of fixture `name` with member `m` set to string v (NULL: removed). */
static json_t *variant(const char *name, const char *m, const char *v)
{
    json_t *j = json_deep_copy(fixture_jwk(name));
    if (v)
        json_object_set_new(j, m, json_string(v));
    else
        json_object_del(j, m);
    return j;
}

static void bad_variant(const char *name, const char *m, const char *v, const char *what)
{
    json_t *j = variant(name, m, v);
    check_bad(j, what);
    json_decref(j);
}

static void test_malformed_members(void **state)
{
    const json_t *p256 = fixture_jwk("p256");
    const char *y = json_string_value(json_object_get(p256, "y"));
    const char *x = json_string_value(json_object_get(p256, "x"));
    const char *n = json_string_value(json_object_get(fixture_jwk("rsa2048"), "n"));
    char *s;
    json_t *j;
    (void)state;

    /* off the curve: change one character of y (keeping canonical bits) */
    s = apr_pstrdup(pool, y);
    s[10] = s[10] == 'A' ? 'B' : 'A';
    bad_variant("p256", "y", s, "p256 off curve");
    bad_variant("p256", "x", apr_pstrndup(pool, x, 42), "p256 short x");      /* 31 bytes */
    bad_variant("p256", "x", apr_pstrcat(pool, x, "AAAA", NULL), "p256 long x");
    bad_variant("p256", "x", apr_pstrcat(pool, x, "=", NULL), "padded x");
    s = apr_pstrdup(pool, x);
    s[5] = '+';
    bad_variant("p256", "x", s, "x with +");
    s = apr_pstrdup(pool, x);
    s[5] = ' ';
    bad_variant("p256", "x", s, "x with space");
    bad_variant("p256", "x", "", "empty x");
    bad_variant("p256", "y", NULL, "missing y");
    bad_variant("p256", "crv", "P-384", "wrong crv");
    bad_variant("p256", "crv", "secp256k1", "unknown crv");
    bad_variant("p256", "crv", NULL, "missing crv");
    bad_variant("p256", "crv", "Ed25519", "EC with OKP crv");
    bad_variant("ed25519", "crv", "P-256", "OKP with EC crv");
    bad_variant("ed25519", "x", apr_pstrndup(pool, x, 42), "ed25519 short x");
    bad_variant("ed448", "crv", "Ed25519", "ed448 as ed25519");
    bad_variant("rsa2048", "e", NULL, "missing e");
    bad_variant("rsa2048", "e", "AAAB", "e with leading zero");
    bad_variant("rsa2048", "e", "AQAA", "even e");
    bad_variant("rsa2048", "e", "AQ", "e = 1");
    bad_variant("rsa2048", "e", "AQABAQAB", "6-byte e");
    bad_variant("rsa2048", "n", apr_pstrcat(pool, "AA", n, NULL), "n with leading zero");
    bad_variant("rsa2048", "n", NULL, "missing n");
    bad_variant("rsa2048", "kty", "rsa", "lower-case kty");
    bad_variant("rsa2048", "kty", "RSA ", "kty with space");
    bad_variant("rsa2048", "kty", NULL, "missing kty");
    bad_variant("rsa2048", "kty", "OKP", "RSA members under OKP");
    bad_variant("rsa2048", "kty", "foo", "unknown kty");
    bad_variant("x5c_rsa_only", "kty", "EC", "x5c RSA under kty EC");

    j = json_deep_copy(fixture_jwk("rsa2048"));
    json_object_set_new(j, "kid", json_integer(3));
    check_bad(j, "numeric kid");
    json_object_set_new(j, "kid", json_string("ok"));
    json_object_set_new(j, "key_ops", json_string("verify"));
    check_bad(j, "key_ops not an array");
    json_object_set_new(j, "key_ops", json_pack("[i]", 1));
    check_bad(j, "key_ops with a number");
    json_object_set_new(j, "key_ops", json_pack("[s]", "sign"));
    {
        ajw_key_t *k;
        ajw_error_t err;
        assert_int_equal(ajw_jwk_parse(&k, NULL, j, pool, &err), AJW_OK);
        assert_true(k->has_key_ops);
        assert_false(k->can_verify);
        json_object_set_new(j, "key_ops", json_pack("[ss]", "sign", "verify"));
        json_object_set_new(j, "alg", json_string("RS256"));
        json_object_set_new(j, "use", json_string("sig"));
        assert_int_equal(ajw_jwk_parse(&k, NULL, j, pool, &err), AJW_OK);
        assert_true(k->can_verify);
        assert_int_equal(k->alg, AJW_ALG_RS256);
        assert_string_equal(k->alg_name, "RS256");
        assert_string_equal(k->use, "sig");
        assert_string_equal(k->kid, "ok");
        json_object_set_new(j, "alg", json_string("ES521"));
        assert_int_equal(ajw_jwk_parse(&k, NULL, j, pool, &err), AJW_OK);
        assert_int_equal(k->alg, AJW_ALG_UNKNOWN);
        assert_string_equal(k->alg_name, "ES521");
    }
    json_object_set_new(j, "n", json_integer(5));
    check_bad(j, "numeric n");
    json_decref(j);

    j = json_deep_copy(fixture_jwk("x5c_rsa_only"));
    json_object_set_new(j, "x5c", json_string("abc"));
    check_bad(j, "x5c not an array");
    json_object_set_new(j, "x5c", json_array());
    check_bad(j, "x5c empty");
    json_object_set_new(j, "x5c", json_pack("[s]", "AAAA"));
    check_bad(j, "x5c garbage");
    json_decref(j);
    j = json_deep_copy(fixture_jwk("x5c_rsa_only"));
    {
        /* base64url in x5c is refused: only standard base64 */
        json_t *arr = json_object_get(j, "x5c");
        char *c = apr_pstrdup(pool, json_string_value(json_array_get(arr, 0)));
        char *q;
        for (q = c; *q; q++) {
            if (*q == '+') *q = '-';
            else if (*q == '/') *q = '_';
        }
        json_array_set_new(arr, 0, json_string(c));
        if (strcmp(c, json_string_value(json_array_get(json_object_get(fixture_jwk(
                "x5c_rsa_only"), "x5c"), 0))) != 0)
            check_bad(j, "x5c base64url");
    }
    json_decref(j);
    check_bad(json_object_get(fx, "nonexistent"), "NULL");
    j = json_array();
    check_bad(j, "array");
    json_decref(j);
}

static void test_private_members_warn(void **state)
{
    ajw_key_t *k;
    const char *warn = NULL;
    ajw_error_t err;
    const json_t *j = fixture_jwk("rsa2048_private");
    const char *d = json_string_value(json_object_get(j, "d"));
    (void)state;

    assert_int_equal(ajw_jwk_parse(&k, &warn, j, pool, &err), AJW_OK);
    assert_non_null(warn);
    assert_non_null(strstr(warn, "private"));
    assert_null(strstr(warn, apr_pstrndup(pool, d, 8)));
    assert_int_equal(ajw_jwk_parse(&k, &warn, fixture_jwk("p256_private"), pool, &err), AJW_OK);
    assert_non_null(warn);
    assert_int_equal(ajw_jwk_parse(&k, &warn, fixture_jwk("p256"), pool, &err), AJW_OK);
    assert_null(warn);
    check_good("rsa2048_private", AJW_KTY_RSA, AJW_CRV_NONE, 2048);
}

static ajw_reason_e cookbook(const char *file, ajw_key_t **k, const char **warn)
{
    char rel[128];
    json_t *j;
    ajw_error_t err;
    ajw_reason_e rv;

    snprintf(rel, sizeof(rel), "jose-cookbook/jwk/%s", file);
    j = tu_load_json_vector(rel);
    assert_non_null(j);
    rv = ajw_jwk_parse(k, warn, j, pool, &err);
    json_decref(j);
    return rv;
}

static void test_cookbook(void **state)
{
    ajw_key_t *k;
    const char *warn;
    (void)state;

    assert_int_equal(cookbook("3_1.ec_public_key.json", &k, &warn), AJW_OK);
    assert_int_equal(k->crv, AJW_CRV_P521);
    assert_string_equal(k->kid, "bilbo.baggins@hobbiton.example");
    assert_string_equal(k->use, "sig");
    assert_null(warn);
    assert_int_equal(cookbook("3_2.ec_private_key.json", &k, &warn), AJW_OK);
    assert_non_null(warn);
    assert_int_equal(cookbook("3_3.rsa_public_key.json", &k, &warn), AJW_OK);
    assert_int_equal(k->kty, AJW_KTY_RSA);
    assert_int_equal(k->bits, 2048);
    assert_null(warn);
    assert_int_equal(cookbook("3_4.rsa_private_key.json", &k, &warn), AJW_OK);
    assert_non_null(warn);
    assert_int_equal(cookbook("3_5.symmetric_key_mac_computation.json", &k, &warn),
                     AJW_R_BAD_KEY);
    assert_int_equal(cookbook("3_6.symmetric_key_encryption.json", &k, &warn), AJW_R_BAD_KEY);
}

/* ---- key sets ---- */

static ajw_reason_e keyset_from(ajw_keyset_t **ks, json_t *doc, apr_pool_t *parent,
                                ajw_error_t *err)
{
    char *s = json_dumps(doc, JSON_COMPACT);
    ajw_reason_e rv = ajw_keyset_parse(ks, s, strlen(s), 0, parent, err);
    free(s);
    json_decref(doc);
    return rv;
}

static int notes_contain(const ajw_keyset_t *ks, const char *needle)
{
    int i;
    for (i = 0; i < ks->notes->nelts; i++) {
        if (strstr(APR_ARRAY_IDX(ks->notes, i, const char *), needle))
            return 1;
    }
    return 0;
}

static void test_keyset_mixed(void **state)
{
    ajw_keyset_t *ks = NULL;
    ajw_error_t err;
    json_t *keys = json_array();
    const char *d = json_string_value(json_object_get(fixture_jwk("rsa2048_private"), "d"));
    const char *n1024 = json_string_value(json_object_get(fixture_jwk("rsa1024"), "n"));
    int i;
    (void)state;

    json_array_append(keys, (json_t *)fixture_jwk("rsa2048"));
    json_array_append(keys, (json_t *)fixture_jwk("oct"));
    json_array_append(keys, (json_t *)fixture_jwk("p256"));
    json_array_append(keys, (json_t *)fixture_jwk("rsa1024"));
    json_array_append(keys, (json_t *)fixture_jwk("rsa2048_private"));
    json_array_append_new(keys, json_pack("{s:s,s:s}", "kty", "foo", "kid", "odd\nkid"));
    json_array_append_new(keys, json_string("not an object"));
    json_array_append(keys, (json_t *)fixture_jwk("ed448"));
    assert_int_equal(keyset_from(&ks, json_pack("{s:o}", "keys", keys), NULL, &err), AJW_OK);
    assert_int_equal(ks->keys->nelts, 4);
    assert_string_equal(APR_ARRAY_IDX(ks->keys, 0, ajw_key_t *)->kid, "rsa2048");
    assert_string_equal(APR_ARRAY_IDX(ks->keys, 3, ajw_key_t *)->kid, "ed448");
    assert_int_equal(ks->notes->nelts, 5);
    assert_true(notes_contain(ks, "key 1 (kid="));
    assert_true(notes_contain(ks, "oct keys are never used"));
    assert_true(notes_contain(ks, "key 3 (kid=rsa1024): skipped"));
    assert_true(notes_contain(ks, "key 4 (kid=rsa2048-priv): warning"));
    assert_true(notes_contain(ks, "kid=odd?kid"));
    assert_true(notes_contain(ks, "key 6 (kid=-)"));
    for (i = 0; i < ks->notes->nelts; i++) {
        const char *note = APR_ARRAY_IDX(ks->notes, i, const char *);
        assert_null(strstr(note, apr_pstrndup(pool, d, 8)));
        assert_null(strstr(note, apr_pstrndup(pool, n1024, 8)));
        assert_null(strchr(note, '\n'));
    }
    ajw_keyset_free(ks);
    ajw_keyset_free(NULL);
}

static void test_keyset_with_parent(void **state)
{
    apr_pool_t *parent;
    ajw_keyset_t *ks = NULL;
    ajw_error_t err;
    (void)state;

    apr_pool_create(&parent, pool);
    assert_int_equal(keyset_from(&ks, json_pack("{s:[O,O]}", "keys", fixture_jwk("p384"),
                                                fixture_jwk("x5c_rsa_match")), parent, &err),
                     AJW_OK);
    assert_int_equal(ks->keys->nelts, 2);
    assert_int_equal(ks->notes->nelts, 0);
    apr_pool_destroy(parent); /* frees the set too */
}

static void test_keyset_bad_documents(void **state)
{
    static const struct { const char *doc; ajw_reason_e want; } cases[] = {
        { "{}", AJW_R_BAD_KEY },
        { "{\"keys\":{}}", AJW_R_BAD_KEY },
        { "{\"keys\":\"x\"}", AJW_R_BAD_KEY },
        { "{\"keys\":null}", AJW_R_BAD_KEY },
        { "{\"Keys\":[]}", AJW_R_BAD_KEY },
        { "[]", AJW_R_MALFORMED },
        { "{\"keys\":[]", AJW_R_MALFORMED },
        { "{\"keys\":[],\"keys\":[]}", AJW_R_MALFORMED },
        { "{\"keys\":[]} x", AJW_R_MALFORMED },
        { "", AJW_R_MALFORMED },
    };
    ajw_keyset_t *ks;
    ajw_error_t err;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ks = NULL;
        if (ajw_keyset_parse(&ks, cases[i].doc, strlen(cases[i].doc), 0, NULL, &err)
            != cases[i].want)
            fail_msg("case %zu (%s)", i, cases[i].doc);
        assert_null(ks);
    }
    assert_int_equal(ajw_keyset_parse(&ks, "{\"keys\":[]}", 11, 11, pool, &err), AJW_OK);
    assert_int_equal(ks->keys->nelts, 0);
    ajw_keyset_free(ks);
    ks = NULL;
    assert_int_equal(ajw_keyset_parse(&ks, "{\"keys\":[]}", 11, 10, pool, &err),
                     AJW_R_TOO_LARGE);
    assert_null(ks);
}

static void test_keyset_cap(void **state)
{
    ajw_keyset_t *ks = NULL;
    ajw_error_t err;
    json_t *keys = json_array();
    int i;
    (void)state;

    for (i = 0; i < AJW_MAX_KEYS + 3; i++)
        json_array_append(keys, (json_t *)fixture_jwk("ed25519"));
    assert_int_equal(keyset_from(&ks, json_pack("{s:o}", "keys", keys), NULL, &err), AJW_OK);
    assert_int_equal(ks->keys->nelts, AJW_MAX_KEYS);
    assert_true(notes_contain(ks, "3 keys over the cap of 256"));
    ajw_keyset_free(ks);
}

/* Same keys in another order or layout are "the same"; any difference in
 * kid, use, alg, public key or count is not. */
static void test_keyset_same_keys(void **state)
{
#define KA "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"a\"," \
    "\"x\":\"BSN7EblVGdxrU5yAWllqV0KP6qDT3K5aGKmURtvnH1Y\"," \
    "\"y\":\"_zM7kr1iHlSkfVPf7w6QlZ2cv_Vya0GSunTr8peZKGY\""
#define KB "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"b\"," \
    "\"x\":\"60IobOJ-0WFTtSrt3Kw0zJx_4EPauEsMQ9R3nh1XQpM\"," \
    "\"y\":\"qbWZ7Qqs19U-Lfx8XBMkLElZWg-DWFDix6HeeEUJsls\""
    static const struct { const char *doc; int same; } cases[] = {
        { "{\"keys\":[" KA "}," KB "}]}", 1 },
        { "{ \"keys\": [ " KB "} ,\n " KA "} ] }", 1 },         /* reordered, reformatted */
        { "{\"keys\":[" KA "}]}", 0 },                          /* fewer keys */
        { "{\"keys\":[" KA ",\"use\":\"sig\"}," KB "}]}", 0 },  /* use added */
        { "{\"keys\":[" KA ",\"alg\":\"ES256\"}," KB "}]}", 0 },/* alg added */
        { "{\"keys\":[" KA "}," KA "}]}", 0 },                  /* b's key gone */
    };
    const char *kb_as_a = "{\"keys\":[" KA "},{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"b\","
        "\"x\":\"BSN7EblVGdxrU5yAWllqV0KP6qDT3K5aGKmURtvnH1Y\","
        "\"y\":\"_zM7kr1iHlSkfVPf7w6QlZ2cv_Vya0GSunTr8peZKGY\"}]}";   /* kid b, a's key */
    ajw_keyset_t *base, *other;
    ajw_error_t err;
    size_t i;
    (void)state;
    assert_int_equal(ajw_keyset_parse(&base, cases[0].doc, strlen(cases[0].doc), 0, pool, &err),
                     AJW_OK);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ajw_keyset_parse(&other, cases[i].doc, strlen(cases[i].doc), 0, pool,
                                          &err), AJW_OK);
        if (ajw_keyset_same_keys(base, other) != cases[i].same
            || ajw_keyset_same_keys(other, base) != cases[i].same)
            fail_msg("case %zu: same_keys should be %d", i, cases[i].same);
    }
    assert_int_equal(ajw_keyset_parse(&other, kb_as_a, strlen(kb_as_a), 0, pool, &err), AJW_OK);
    assert_false(ajw_keyset_same_keys(base, other));
    assert_false(ajw_keyset_same_keys(base, NULL));
#undef KA
#undef KB
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_type),
        cmocka_unit_test(test_x5c),
        cmocka_unit_test(test_rejected_fixtures),
        cmocka_unit_test(test_malformed_members),
        cmocka_unit_test(test_private_members_warn),
        cmocka_unit_test(test_cookbook),
        cmocka_unit_test(test_keyset_mixed),
        cmocka_unit_test(test_keyset_with_parent),
        cmocka_unit_test(test_keyset_bad_documents),
        cmocka_unit_test(test_keyset_cap),
        cmocka_unit_test(test_keyset_same_keys),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    fx = tu_load_json_file(FIXTURES);
    if (!fx) {
        fprintf(stderr, "run from the repository root (%s)\n", FIXTURES);
        return 1;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(fx);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
