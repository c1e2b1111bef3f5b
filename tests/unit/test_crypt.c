/* test_crypt.c — ajw_crypt against the Wycheproof primitive vectors plus
 * tables of keys our policy must refuse.
 *
 * Policy for Wycheproof "acceptable" results: they are neither required to
 * verify nor to fail; we count accepted and rejected separately and never
 * fail on them. "valid" must verify, "invalid" must not. */
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

#include "ajw_crypt.h"
#include "tu_vectors.h"

static apr_pool_t *pool;

typedef struct {
    const char *file;
    ajw_alg_e alg;
    int all_invalid; /* DER-encoded ECDSA: JWS accepts raw r||s only */
} vfile_t;

typedef struct {
    unsigned agreed, disagreed, acc_ok, acc_rej, policy_refused;
} vcount_t;

/* Hex to big-endian integer without leading zero bytes; malloc'ed. */
static unsigned char *hex_uint(const char *hex, size_t *len)
{
    unsigned char *b = tu_hex_decode(hex, len);
    size_t skip = 0;

    if (!b)
        return NULL;
    while (skip < *len && b[skip] == 0)
        skip++;
    memmove(b, b + skip, *len - skip);
    *len -= skip;
    return b;
}

static size_t field_bytes(ajw_alg_e alg)
{
    return alg == AJW_ALG_ES256 ? 32 : alg == AJW_ALG_ES384 ? 48 : 66;
}

static ajw_crv_e alg_crv(ajw_alg_e alg)
{
    return alg == AJW_ALG_ES256 ? AJW_CRV_P256 : alg == AJW_ALG_ES384 ? AJW_CRV_P384 : AJW_CRV_P521;
}

/* Coordinate left-padded to the field size; NULL when it does not fit. */
static unsigned char *hex_coord(const char *hex, size_t fb)
{
    size_t len;
    unsigned char *v = hex_uint(hex, &len), *out = NULL;

    if (v && len <= fb && (out = calloc(1, fb)) != NULL)
        memcpy(out + fb - len, v, len);
    free(v);
    return out;
}

static EVP_PKEY *group_key(const json_t *group, ajw_alg_e alg)
{
    const json_t *pk = json_object_get(group, "publicKey");
    EVP_PKEY *k = NULL;
    ajw_error_t err;

    if (alg == AJW_ALG_RS256 || alg == AJW_ALG_PS256) {
        size_t nl, el;
        unsigned char *n = hex_uint(json_string_value(json_object_get(pk, "modulus")), &nl);
        unsigned char *e = hex_uint(json_string_value(json_object_get(pk, "publicExponent")), &el);
        if (n && e && ajw_crypt_rsa_key(&k, n, nl, e, el, pool, &err) != AJW_OK)
            k = NULL;
        free(n);
        free(e);
    }
    else if (alg == AJW_ALG_EDDSA) {
        size_t xl;
        unsigned char *x = tu_hex_decode(json_string_value(json_object_get(pk, "pk")), &xl);
        if (x && ajw_crypt_okp_key(&k, AJW_CRV_ED25519, x, xl, pool, &err) != AJW_OK)
            k = NULL;
        free(x);
    }
    else {
        size_t fb = field_bytes(alg);
        unsigned char *x = hex_coord(json_string_value(json_object_get(pk, "wx")), fb);
        unsigned char *y = hex_coord(json_string_value(json_object_get(pk, "wy")), fb);
        if (x && y && ajw_crypt_ec_key(&k, alg_crv(alg), x, fb, y, fb, pool, &err) != AJW_OK)
            k = NULL;
        free(x);
        free(y);
    }
    return k;
}

static void vec_test(vcount_t *c, const vfile_t *vf, EVP_PKEY *k, const json_t *t)
{
    const char *result = json_string_value(json_object_get(t, "result"));
    size_t ml = 0, sl = 0;
    unsigned char *msg = tu_hex_decode(json_string_value(json_object_get(t, "msg")), &ml);
    unsigned char *sig = tu_hex_decode(json_string_value(json_object_get(t, "sig")), &sl);
    ajw_error_t err;
    int ok = 0;

    assert_non_null(msg);
    assert_non_null(sig);
    if (k)
        ok = ajw_crypt_verify(vf->alg, k, msg, ml, sig, sl, &err) == AJW_OK;
    if (!k)
        c->policy_refused++;
    if (vf->all_invalid || strcmp(result, "invalid") == 0) {
        if (ok) {
            c->disagreed++;
            printf("  tcId %lld: %s but verified\n",
                   (long long)json_integer_value(json_object_get(t, "tcId")), result);
        }
        else
            c->agreed++;
    }
    else if (strcmp(result, "valid") == 0) {
        if (ok)
            c->agreed++;
        else if (k) {
            c->disagreed++;
            printf("  tcId %lld: valid but rejected (%s)\n",
                   (long long)json_integer_value(json_object_get(t, "tcId")), err.text);
        }
    }
    else if (ok)
        c->acc_ok++;
    else
        c->acc_rej++;
    free(msg);
    free(sig);
}

static void run_file(void **state)
{
    const vfile_t *vf = *state;
    char rel[256];
    json_t *doc, *groups, *g, *tests, *t;
    size_t gi, ti;
    vcount_t c = { 0, 0, 0, 0, 0 };

    snprintf(rel, sizeof(rel), "wycheproof/%s", vf->file);
    doc = tu_load_json_vector(rel);
    assert_non_null(doc);
    groups = json_object_get(doc, "testGroups");
    assert_true(json_array_size(groups) > 0);
    json_array_foreach(groups, gi, g) {
        EVP_PKEY *k = group_key(g, vf->alg);
        tests = json_object_get(g, "tests");
        json_array_foreach(tests, ti, t)
            vec_test(&c, vf, k, t);
    }
    printf("wycheproof %s: %u agreed, %u disagreed, %u acceptable(%u accepted|%u rejected)"
           ", %u refused by key policy\n",
           vf->file, c.agreed, c.disagreed, c.acc_ok + c.acc_rej, c.acc_ok, c.acc_rej,
           c.policy_refused);
    json_decref(doc);
    assert_int_equal(c.disagreed, 0);
    assert_true(c.agreed > 0);
}

static const vfile_t files[] = {
    { "ecdsa_secp256r1_sha256_p1363_test.json", AJW_ALG_ES256, 0 },
    { "ecdsa_secp384r1_sha384_p1363_test.json", AJW_ALG_ES384, 0 },
    { "ecdsa_secp521r1_sha512_p1363_test.json", AJW_ALG_ES512, 0 },
    { "ecdsa_secp256r1_sha256_test.json", AJW_ALG_ES256, 1 },
    { "rsa_signature_2048_sha256_test.json", AJW_ALG_RS256, 0 },
    { "rsa_pss_2048_sha256_mgf1_32_test.json", AJW_ALG_PS256, 0 },
    { "ed25519_test.json", AJW_ALG_EDDSA, 0 },
};

/* ---- key construction: refusals ---- */

static unsigned char rsa_n[512];

static void fill_modulus(unsigned char *n, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++)
        n[i] = (unsigned char)(0xA5u ^ (i * 7u));
    n[0] |= 0x80;
    n[len - 1] |= 1;
}

static void test_rsa_refusals(void **state)
{
    static const unsigned char e65537[] = { 1, 0, 1 }, e3[] = { 3 }, e1[] = { 1 },
        e_even[] = { 1, 0, 0 }, e_long[] = { 1, 0, 0, 0, 1 }, e_lead0[] = { 0, 1, 0, 1 };
    EVP_PKEY *k = NULL;
    ajw_error_t err;
    (void)state;

    fill_modulus(rsa_n, 256);
    assert_int_equal(ajw_crypt_rsa_key(&k, rsa_n, 256, e65537, 3, pool, &err), AJW_OK);
    assert_int_equal(ajw_crypt_key_bits(k), 2048);
    assert_int_equal(ajw_crypt_rsa_key(&k, rsa_n, 256, e3, 1, pool, &err), AJW_OK);
    /* 1024 and 2040 bits */
    fill_modulus(rsa_n, 128);
    assert_int_equal(ajw_crypt_rsa_key(&k, rsa_n, 128, e65537, 3, pool, &err), AJW_R_BAD_KEY);
    fill_modulus(rsa_n, 256);
    rsa_n[0] = 0x7f;
    assert_int_equal(ajw_crypt_rsa_key(&k, rsa_n, 256, e65537, 3, pool, &err), AJW_R_BAD_KEY);
    /* leading zero byte */
    fill_modulus(rsa_n + 1, 256);
    rsa_n[0] = 0;
    assert_int_equal(ajw_crypt_rsa_key(&k, rsa_n, 257, e65537, 3, pool, &err), AJW_R_BAD_KEY);
    fill_modulus(rsa_n, 256);
    assert_int_equal(ajw_crypt_rsa_key(&k, rsa_n, 256, e1, 1, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_rsa_key(&k, rsa_n, 256, e_even, 3, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_rsa_key(&k, rsa_n, 256, e_long, 5, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_rsa_key(&k, rsa_n, 256, e_lead0, 4, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_rsa_key(&k, rsa_n, 256, e65537, 0, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_rsa_key(&k, rsa_n, 0, e65537, 3, pool, &err), AJW_R_BAD_KEY);
}

static void test_ec_refusals(void **state)
{
    unsigned char x[66], y[66];
    EVP_PKEY *k = NULL;
    ajw_error_t err;
    (void)state;

    memset(x, 0x11, sizeof(x));
    memset(y, 0x22, sizeof(y));
    /* (0x11.., 0x22..) is not on P-256 */
    assert_int_equal(ajw_crypt_ec_key(&k, AJW_CRV_P256, x, 32, y, 32, pool, &err), AJW_R_BAD_KEY);
    /* wrong lengths */
    assert_int_equal(ajw_crypt_ec_key(&k, AJW_CRV_P256, x, 31, y, 32, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_ec_key(&k, AJW_CRV_P256, x, 33, y, 33, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_ec_key(&k, AJW_CRV_P384, x, 32, y, 32, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_ec_key(&k, AJW_CRV_ED25519, x, 32, y, 32, pool, &err),
                     AJW_R_BAD_KEY);
    /* identity cannot be written uncompressed; (0,0) is not on the curve */
    memset(x, 0, sizeof(x));
    memset(y, 0, sizeof(y));
    assert_int_equal(ajw_crypt_ec_key(&k, AJW_CRV_P256, x, 32, y, 32, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_ec_key(&k, AJW_CRV_P521, x, 66, y, 66, pool, &err), AJW_R_BAD_KEY);
}

/* The P-256 generator G is on the curve: a valid key. */
static const char gx[] = "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296";
static const char gy[] = "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

static void test_ec_generator_and_verify_rules(void **state)
{
    size_t xl, yl;
    unsigned char *x = tu_hex_decode(gx, &xl), *y = tu_hex_decode(gy, &yl);
    unsigned char sig[72];
    EVP_PKEY *k = NULL, *k2 = NULL, *ed = NULL;
    ajw_error_t err;
    (void)state;

    assert_int_equal(ajw_crypt_ec_key(&k, AJW_CRV_P256, x, xl, y, yl, pool, &err), AJW_OK);
    assert_int_equal(ajw_crypt_key_bits(k), 256);
    assert_int_equal(ajw_crypt_ec_key(&k2, AJW_CRV_P256, x, xl, y, yl, pool, &err), AJW_OK);
    assert_int_equal(ajw_crypt_key_equal(k, k2), 1);
    /* one bit of y changed: off the curve */
    y[31] ^= 1;
    assert_int_equal(ajw_crypt_ec_key(&k2, AJW_CRV_P256, x, xl, y, yl, pool, &err), AJW_R_BAD_KEY);
    memset(sig, 1, sizeof(sig));
    /* wrong alg for the key */
    assert_int_equal(ajw_crypt_verify(AJW_ALG_ES384, k, sig, 3, sig, 96, &err),
                     AJW_R_ALG_NOT_ALLOWED);
    assert_int_equal(ajw_crypt_verify(AJW_ALG_RS256, k, sig, 3, sig, 64, &err),
                     AJW_R_ALG_NOT_ALLOWED);
    assert_int_equal(ajw_crypt_verify(AJW_ALG_HS256, k, sig, 3, sig, 64, &err),
                     AJW_R_ALG_NOT_ALLOWED);
    assert_int_equal(ajw_crypt_verify(AJW_ALG_NONE, k, sig, 3, sig, 0, &err),
                     AJW_R_ALG_NOT_ALLOWED);
    /* lengths other than 64 */
    assert_int_equal(ajw_crypt_verify(AJW_ALG_ES256, k, sig, 3, sig, 63, &err),
                     AJW_R_BAD_SIGNATURE);
    assert_int_equal(ajw_crypt_verify(AJW_ALG_ES256, k, sig, 3, sig, 72, &err),
                     AJW_R_BAD_SIGNATURE);
    assert_int_equal(ajw_crypt_verify(AJW_ALG_ES256, k, sig, 3, sig, 0, &err),
                     AJW_R_BAD_SIGNATURE);
    assert_int_equal(ajw_crypt_verify(AJW_ALG_ES256, k, sig, 3, sig, 64, &err),
                     AJW_R_BAD_SIGNATURE);
    /* Ed key */
    assert_int_equal(ajw_crypt_okp_key(&ed, AJW_CRV_ED25519, x, 32, pool, &err), AJW_OK);
    assert_int_equal(ajw_crypt_key_equal(k, ed), 0);
    assert_int_equal(ajw_crypt_verify(AJW_ALG_ES256, ed, sig, 3, sig, 64, &err),
                     AJW_R_ALG_NOT_ALLOWED);
    assert_int_equal(ajw_crypt_verify(AJW_ALG_EDDSA, ed, sig, 3, sig, 64, &err),
                     AJW_R_BAD_SIGNATURE);
    assert_int_equal(ajw_crypt_verify(AJW_ALG_EDDSA, ed, sig, 3, sig, 63, &err),
                     AJW_R_BAD_SIGNATURE);
    assert_int_equal(ajw_crypt_verify(AJW_ALG_EDDSA, NULL, sig, 3, sig, 64, &err),
                     AJW_R_ALG_NOT_ALLOWED);
    free(x);
    free(y);
}

static void test_okp_refusals(void **state)
{
    unsigned char x[64];
    EVP_PKEY *k = NULL;
    ajw_error_t err;
    (void)state;

    memset(x, 0x42, sizeof(x));
    assert_int_equal(ajw_crypt_okp_key(&k, AJW_CRV_ED25519, x, 31, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_okp_key(&k, AJW_CRV_ED25519, x, 33, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_okp_key(&k, AJW_CRV_ED448, x, 32, pool, &err), AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_okp_key(&k, AJW_CRV_ED448, x, 57, pool, &err), AJW_OK);
    assert_int_equal(ajw_crypt_key_bits(k), 456);
    assert_int_equal(ajw_crypt_okp_key(&k, AJW_CRV_P256, x, 32, pool, &err), AJW_R_BAD_KEY);
}

static void test_alg_fits(void **state)
{
    (void)state;
    assert_true(ajw_crypt_alg_fits(AJW_ALG_RS256, AJW_KTY_RSA, AJW_CRV_NONE));
    assert_true(ajw_crypt_alg_fits(AJW_ALG_PS512, AJW_KTY_RSA, AJW_CRV_NONE));
    assert_true(ajw_crypt_alg_fits(AJW_ALG_ES256, AJW_KTY_EC, AJW_CRV_P256));
    assert_false(ajw_crypt_alg_fits(AJW_ALG_ES256, AJW_KTY_EC, AJW_CRV_P384));
    assert_true(ajw_crypt_alg_fits(AJW_ALG_ES384, AJW_KTY_EC, AJW_CRV_P384));
    assert_true(ajw_crypt_alg_fits(AJW_ALG_ES512, AJW_KTY_EC, AJW_CRV_P521));
    assert_false(ajw_crypt_alg_fits(AJW_ALG_ES512, AJW_KTY_RSA, AJW_CRV_NONE));
    assert_true(ajw_crypt_alg_fits(AJW_ALG_EDDSA, AJW_KTY_OKP, AJW_CRV_ED25519));
    assert_true(ajw_crypt_alg_fits(AJW_ALG_EDDSA, AJW_KTY_OKP, AJW_CRV_ED448));
    assert_false(ajw_crypt_alg_fits(AJW_ALG_EDDSA, AJW_KTY_EC, AJW_CRV_P256));
    assert_false(ajw_crypt_alg_fits(AJW_ALG_HS256, AJW_KTY_OCT, AJW_CRV_NONE));
    assert_false(ajw_crypt_alg_fits(AJW_ALG_NONE, AJW_KTY_RSA, AJW_CRV_NONE));
    assert_false(ajw_crypt_alg_fits(AJW_ALG_UNKNOWN, AJW_KTY_RSA, AJW_CRV_NONE));
}

static void test_sha256(void **state)
{
    static const unsigned char abc_hash[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
        0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
        0xf2, 0x00, 0x15, 0xad };
    unsigned char out[32];
    (void)state;
    assert_int_equal(ajw_crypt_sha256(out, "abc", 3), 0);
    assert_memory_equal(out, abc_hash, 32);
    assert_int_equal(ajw_crypt_sha256(out, NULL, 0), 0);
    assert_int_equal(out[0], 0xe3);
}

static void test_cert_garbage(void **state)
{
    static const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
    EVP_PKEY *k = NULL;
    ajw_kty_e kty;
    ajw_crv_e crv;
    int bits;
    ajw_error_t err;
    (void)state;
    assert_int_equal(ajw_crypt_cert_key(&k, &kty, &crv, &bits, junk, sizeof(junk), pool, &err),
                     AJW_R_BAD_KEY);
    assert_int_equal(ajw_crypt_cert_key(&k, &kty, &crv, &bits, junk, 0, pool, &err),
                     AJW_R_BAD_KEY);
}

int main(void)
{
    struct CMUnitTest tests[16];
    size_t i, n = 0;
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct CMUnitTest t = { files[i].file, run_file, NULL, NULL, (void *)&files[i] };
        tests[n++] = t;
    }
    {
        const struct CMUnitTest more[] = {
            cmocka_unit_test(test_rsa_refusals),
            cmocka_unit_test(test_ec_refusals),
            cmocka_unit_test(test_ec_generator_and_verify_rules),
            cmocka_unit_test(test_okp_refusals),
            cmocka_unit_test(test_alg_fits),
            cmocka_unit_test(test_sha256),
            cmocka_unit_test(test_cert_garbage),
        };
        for (i = 0; i < sizeof(more) / sizeof(more[0]); i++)
            tests[n++] = more[i];
    }
    rc = _cmocka_run_group_tests("crypt", tests, n, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
