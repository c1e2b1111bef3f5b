/* test_statuslist.c — Token Status List: the draft's examples, the zlib
 * wrapper's cap (decompression bombs), hostile Status List Tokens (another
 * issuer's key, sub != uri, expired, wrong typ, wrong bits, bad lst), token
 * status references, the deny-list parser, and status list slots of the key
 * store (bound at run time, verified with the signer's keys, fetched with
 * the statuslist+jwt Accept header). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <cmocka.h>
#include <zlib.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/core_names.h>
#include <openssl/bn.h>

#include "ajw_statuslist.h"
#include "ajw_denylist.h"
#include "ajw_zlib.h"
#include "ajw_b64.h"
#include "ajw_json.h"
#include "ajw_keystore.h"
#include "ajw_log.h"

#define URI "https://example.com/statuslists/1"
#define NOW 1700000000LL

static apr_pool_t *pool;

/* ---- signing (tests only: lib/ never signs) --------------------------------- */

typedef struct signer_t {
    EVP_PKEY *pk;
    const char *jwks;         /* {"keys":[public JWK]} */
} signer_t;

static const char *b64_bn(const BIGNUM *bn)
{
    unsigned char buf[32];
    assert_int_equal(BN_bn2binpad(bn, buf, 32), 32);
    return ajw_b64url_encode(buf, 32, pool);
}

static void signer_make(signer_t *s, const char *kid)
{
    BIGNUM *x = NULL, *y = NULL;
    s->pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(s->pk);
    assert_true(EVP_PKEY_get_bn_param(s->pk, OSSL_PKEY_PARAM_EC_PUB_X, &x));
    assert_true(EVP_PKEY_get_bn_param(s->pk, OSSL_PKEY_PARAM_EC_PUB_Y, &y));
    s->jwks = apr_psprintf(pool, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\","
                           "\"x\":\"%s\",\"y\":\"%s\"}]}", kid, b64_bn(x), b64_bn(y));
    BN_free(x);
    BN_free(y);
}

/* A compact ES256 JWS of header and payload (JSON texts). */
static const char *sign(const signer_t *s, const char *header, const char *payload)
{
    const char *input = apr_pstrcat(pool, ajw_b64url_encode((const unsigned char *)header,
                                                            strlen(header), pool), ".",
                                    ajw_b64url_encode((const unsigned char *)payload,
                                                      strlen(payload), pool), NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80], raw[64];
    const unsigned char *dp = der;
    size_t dlen = sizeof(der);
    ECDSA_SIG *sig;
    const BIGNUM *r, *sv;
    assert_true(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, s->pk) == 1);
    assert_true(EVP_DigestSign(md, der, &dlen, (const unsigned char *)input, strlen(input)) == 1);
    EVP_MD_CTX_free(md);
    sig = d2i_ECDSA_SIG(NULL, &dp, (long)dlen);
    assert_non_null(sig);
    ECDSA_SIG_get0(sig, &r, &sv);
    BN_bn2binpad(r, raw, 32);
    BN_bn2binpad(sv, raw + 32, 32);
    ECDSA_SIG_free(sig);
    return apr_pstrcat(pool, input, ".", ajw_b64url_encode(raw, 64, pool), NULL);
}

/* base64url(zlib(bytes)) */
static const char *lst_of(const unsigned char *bytes, size_t n)
{
    uLongf clen = compressBound((uLong)n);
    unsigned char *c = apr_palloc(pool, clen);
    assert_int_equal(compress2(c, &clen, bytes, (uLong)n, 9), Z_OK);
    return ajw_b64url_encode(c, clen, pool);
}

static ajw_keyset_t *keys_of(const signer_t *s)
{
    ajw_keyset_t *ks = NULL;
    ajw_error_t err;
    assert_int_equal(ajw_keyset_parse(&ks, s->jwks, strlen(s->jwks), 0, pool, &err), AJW_OK);
    return ks;
}

static const char *list_token(const signer_t *s, const char *typ, const char *claims)
{
    const char *hdr = typ ? apr_psprintf(pool, "{\"alg\":\"ES256\",\"kid\":\"k1\",\"typ\":\"%s\"}", typ)
                          : "{\"alg\":\"ES256\",\"kid\":\"k1\"}";
    return sign(s, hdr, claims);
}

static signer_t issuer, other;

/* ---- the draft's examples (section 4.1) --------------------------------- */

static void test_draft_examples(void **state)
{
    /* 1-bit: statuses 1,0,0,1,1,1,0,1, 1,1,0,0,0,1,0,1 → 0xB9 0xA3 */
    static const unsigned one_bit[16] = { 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1 };
    /* 2-bit: 1,2,0,3, 0,1,0,1, 1,2,3,3 → 0xC9 0x44 0xF9 */
    static const unsigned two_bit[12] = { 1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3 };
    json_t *sl;
    unsigned bits, st;
    const unsigned char *bytes;
    size_t len, i;
    ajw_error_t err;
    (void)state;

    sl = json_pack("{s:i, s:s}", "bits", 1, "lst", "eNrbuRgAAhcBXQ");
    assert_int_equal(ajw_statuslist_decode(&bits, &bytes, &len, sl, 0, pool, &err), AJW_OK);
    assert_int_equal(bits, 1);
    assert_int_equal(len, 2);
    assert_int_equal(bytes[0], 0xb9);
    assert_int_equal(bytes[1], 0xa3);
    for (i = 0; i < 16; i++) {
        assert_int_equal(ajw_statuslist_entry(bytes, len, bits, i, &st), 0);
        assert_int_equal(st, one_bit[i]);
    }
    assert_int_equal(ajw_statuslist_entry(bytes, len, bits, 16, &st), -1);
    json_decref(sl);

    sl = json_pack("{s:i, s:s}", "bits", 2, "lst", "eNo76fITAAPfAgc");
    assert_int_equal(ajw_statuslist_decode(&bits, &bytes, &len, sl, 0, pool, &err), AJW_OK);
    assert_int_equal(bits, 2);
    assert_int_equal(len, 3);
    for (i = 0; i < 12; i++) {
        assert_int_equal(ajw_statuslist_entry(bytes, len, bits, i, &st), 0);
        assert_int_equal(st, two_bit[i]);
    }
    /* 3 bytes of 2-bit entries hold 12 entries: 12 is out of range. */
    assert_int_equal(ajw_statuslist_entry(bytes, len, bits, 12, &st), -1);
    json_decref(sl);
}

static void test_entry_widths(void **state)
{
    unsigned char b[2] = { 0xa5, 0x3c };
    unsigned st;
    (void)state;
    assert_int_equal(ajw_statuslist_entry(b, 2, 4, 0, &st), 0);
    assert_int_equal(st, 0x5);
    assert_int_equal(ajw_statuslist_entry(b, 2, 4, 1, &st), 0);
    assert_int_equal(st, 0xa);
    assert_int_equal(ajw_statuslist_entry(b, 2, 4, 3, &st), 0);
    assert_int_equal(st, 0x3);
    assert_int_equal(ajw_statuslist_entry(b, 2, 8, 1, &st), 0);
    assert_int_equal(st, 0x3c);
    assert_int_equal(ajw_statuslist_entry(b, 2, 8, 2, &st), -1);
    assert_int_equal(ajw_statuslist_entry(b, 2, 3, 0, &st), -1);
    assert_int_equal(ajw_statuslist_entry(b, 2, 1, 0xffffffffffffffffULL, &st), -1);
}

/* ---- zlib: the cap, bombs, malformed streams ----------------------------------- */

static void test_inflate_cap_and_bombs(void **state)
{
    size_t big = 64u * 1024u * 1024u, olen = 0;
    unsigned char *zeros = calloc(1, big), *out = NULL;
    uLongf clen = compressBound((uLong)big);
    unsigned char *c = malloc(clen);
    const char *why = NULL;
    unsigned char gz[] = { 0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    unsigned char *junk;
    (void)state;
    assert_non_null(zeros);
    assert_int_equal(compress2(c, &clen, zeros, (uLong)big, 9), Z_OK);
    free(zeros);
    /* 64 MiB of zeros in ~64 KiB: refused at the cap, nothing more allocated. */
    assert_int_equal(ajw_zlib_inflate(&out, &olen, c, clen, 1024 * 1024, &why, pool), APR_ENOSPC);
    assert_non_null(strstr(why, "more than 1048576"));
    assert_null(out);
    /* exactly at the cap is fine */
    assert_int_equal(ajw_zlib_inflate(&out, &olen, c, clen, big, &why, pool), APR_SUCCESS);
    assert_int_equal(olen, big);
    /* truncated stream */
    assert_int_equal(ajw_zlib_inflate(&out, &olen, c, clen / 2, big, &why, pool), APR_EINVAL);
    /* trailing garbage */
    junk = malloc(clen + 1);
    memcpy(junk, c, clen);
    junk[clen] = 'x';
    assert_int_equal(ajw_zlib_inflate(&out, &olen, junk, clen + 1, big, &why, pool), APR_EINVAL);
    /* checksum */
    junk[clen - 1] ^= 1;
    assert_int_equal(ajw_zlib_inflate(&out, &olen, junk, clen, big, &why, pool), APR_EINVAL);
    free(junk);
    free(c);
    /* gzip, and bytes that are no zlib at all */
    assert_int_equal(ajw_zlib_inflate(&out, &olen, gz, sizeof(gz), 100, &why, pool), APR_EINVAL);
    assert_int_equal(ajw_zlib_inflate(&out, &olen, (const unsigned char *)"hello", 5, 100, &why,
                                      pool), APR_EINVAL);
    assert_int_equal(ajw_zlib_inflate(&out, &olen, (const unsigned char *)"x", 1, 100, &why,
                                      pool), APR_EINVAL);
}

static void test_decode_hostile(void **state)
{
    static const struct { const char *json; ajw_reason_e want; } cases[] = {
        { "{\"bits\":3,\"lst\":\"eNrbuRgAAhcBXQ\"}", AJW_R_BAD_CLAIM },
        { "{\"bits\":0,\"lst\":\"eNrbuRgAAhcBXQ\"}", AJW_R_BAD_CLAIM },
        { "{\"bits\":16,\"lst\":\"eNrbuRgAAhcBXQ\"}", AJW_R_BAD_CLAIM },
        { "{\"bits\":\"1\",\"lst\":\"eNrbuRgAAhcBXQ\"}", AJW_R_BAD_CLAIM },
        { "{\"bits\":1.5,\"lst\":\"eNrbuRgAAhcBXQ\"}", AJW_R_BAD_CLAIM },
        { "{\"lst\":\"eNrbuRgAAhcBXQ\"}", AJW_R_BAD_CLAIM },
        { "{\"bits\":1}", AJW_R_MALFORMED },
        { "{\"bits\":1,\"lst\":7}", AJW_R_MALFORMED },
        { "{\"bits\":1,\"lst\":\"eNrbuRgAAhcBXQ==\"}", AJW_R_MALFORMED },   /* padding */
        { "{\"bits\":1,\"lst\":\"eNrbuRgAAhcB+Q\"}", AJW_R_MALFORMED },     /* base64, not url */
        { "{\"bits\":1,\"lst\":\"aGVsbG8\"}", AJW_R_MALFORMED },            /* not zlib */
        { "{\"bits\":1,\"lst\":\"\"}", AJW_R_MALFORMED },
        { "{\"bits\":1,\"lst\":\"eJwDAAAAAAE\"}", AJW_R_MALFORMED },        /* inflates to nothing */
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *sl = json_loads(cases[i].json, 0, NULL);
        unsigned bits;
        const unsigned char *bytes;
        size_t len;
        ajw_error_t err;
        assert_non_null(sl);
        if (ajw_statuslist_decode(&bits, &bytes, &len, sl, 0, pool, &err) != cases[i].want)
            fail_msg("case %zu (%s): %s", i, cases[i].json, err.text);
        json_decref(sl);
    }
}

static void test_decode_bomb_capped(void **state)
{
    size_t n = 8u * 1024u * 1024u;
    unsigned char *zeros = calloc(1, n), *bytes_unused = NULL;
    const char *lst;
    json_t *sl;
    unsigned bits;
    const unsigned char *bytes;
    size_t len;
    ajw_error_t err;
    (void)state;
    (void)bytes_unused;
    lst = lst_of(zeros, n);
    free(zeros);
    sl = json_pack("{s:i, s:s}", "bits", 1, "lst", lst);
    assert_int_equal(ajw_statuslist_decode(&bits, &bytes, &len, sl, 0, pool, &err),
                     AJW_R_TOO_LARGE);            /* over the 4 MiB default */
    assert_int_equal(ajw_statuslist_decode(&bits, &bytes, &len, sl, 64, pool, &err),
                     AJW_R_TOO_LARGE);
    assert_int_equal(ajw_statuslist_decode(&bits, &bytes, &len, sl, n, pool, &err), AJW_OK);
    json_decref(sl);
}

/* ---- references ------------------------------------------------------------ */

static void test_status_ref(void **state)
{
    static const struct { const char *json; int want; } cases[] = {
        { "{\"sub\":\"x\"}", 0 },
        { "{\"status\":{\"other\":{}}}", 0 },
        { "{\"status\":{\"status_list\":{\"idx\":0,\"uri\":\"" URI "\"}}}", 1 },
        { "{\"status\":{\"status_list\":{\"idx\":9007199254740991,\"uri\":\"" URI "\"}}}", 1 },
        { "{\"status\":{\"status_list\":{\"idx\":9007199254740992,\"uri\":\"" URI "\"}}}", -1 },
        { "{\"status\":{\"status_list\":{\"idx\":-1,\"uri\":\"" URI "\"}}}", -1 },
        { "{\"status\":{\"status_list\":{\"idx\":1.0,\"uri\":\"" URI "\"}}}", -1 },
        { "{\"status\":{\"status_list\":{\"idx\":\"1\",\"uri\":\"" URI "\"}}}", -1 },
        { "{\"status\":{\"status_list\":{\"uri\":\"" URI "\"}}}", -1 },
        { "{\"status\":{\"status_list\":{\"idx\":1}}}", -1 },
        { "{\"status\":{\"status_list\":{\"idx\":1,\"uri\":\"\"}}}", -1 },
        { "{\"status\":{\"status_list\":{\"idx\":1,\"uri\":\"https://a/\\n\"}}}", -1 },
        { "{\"status\":{\"status_list\":{\"idx\":1,\"uri\":\"https://a/\\u0000b\"}}}", -1 },
        { "{\"status\":{\"status_list\":[]}}", -1 },
        { "{\"status\":\"revoked\"}", -1 },
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *tree = json_loads(cases[i].json, JSON_ALLOW_NUL, NULL);
        const ajw_val_t *c;
        unsigned long long idx;
        const char *uri = NULL;
        ajw_error_t err;
        int rv;
        assert_non_null(tree);
        c = ajw_doc_make(tree, pool, NULL);
        if (!c) {
            /* Only a string holding a NUL byte has no document (the strict
             * parser refuses \u0000 before); no claims, never a reference. */
            assert_int_equal(ajw_doc_size(tree), 0);
            assert_int_equal(cases[i].want, -1);
            assert_int_not_equal(ajw_status_ref(c, &idx, &uri, &err), 1);
            json_decref(tree);
            continue;
        }
        rv = ajw_status_ref(c, &idx, &uri, &err);
        if (rv != cases[i].want)
            fail_msg("case %zu: %s", i, cases[i].json);
        if (rv == 1)
            assert_string_equal(uri, URI);
        json_decref(tree);
    }
}

/* ---- Status List Tokens --------------------------------------------------- */

static const char *claims_with(const char *sub, long long iat, const char *extra, const char *sl)
{
    return apr_psprintf(pool, "{\"sub\":\"%s\",\"iat\":%" APR_INT64_T_FMT
                        "%s,\"status_list\":%s}", sub, (apr_int64_t)iat, extra, sl);
}

#define SL_1BIT "{\"bits\":1,\"lst\":\"eNrbuRgAAhcBXQ\"}"

static ajw_reason_e parse(const char *jwt, const ajw_keyset_t *keys, ajw_statuslist_t **out,
                          ajw_error_t *err)
{
    return ajw_statuslist_parse(out, jwt, strlen(jwt), URI, keys, 0, NOW, 60, 0, 0, pool, err);
}

static void test_token_good(void **state)
{
    ajw_statuslist_t *l = NULL;
    ajw_error_t err;
    unsigned st;
    const char *jwt = list_token(&issuer, "statuslist+jwt",
                                 claims_with(URI, NOW - 10, ",\"exp\":1700086400,\"ttl\":43200",
                                             SL_1BIT));
    (void)state;
    assert_int_equal(parse(jwt, keys_of(&issuer), &l, &err), AJW_OK);
    assert_int_equal(l->bits, 1);
    assert_int_equal(l->ttl, 43200);
    assert_int_equal(l->exp, 1700086400LL);
    assert_string_equal(l->kid, "k1");
    assert_int_equal(ajw_statuslist_get(l, 0, &st), 0);
    assert_int_equal(st, 1);
    assert_int_equal(ajw_statuslist_get(l, 1, &st), 0);
    assert_int_equal(st, 0);
    assert_int_equal(ajw_statuslist_get(l, 16, &st), -1);
    assert_int_equal(ajw_statuslist_refresh_hint(l, NOW), 43200);
    assert_int_equal(ajw_statuslist_refresh_hint(l, 1700086400LL - 100), 100);
    /* the media type form of typ and a trailing newline (a served file) */
    jwt = apr_pstrcat(pool, list_token(&issuer, "application/statuslist+jwt",
                                       claims_with(URI, NOW, "", SL_1BIT)), "\n", NULL);
    assert_int_equal(parse(jwt, keys_of(&issuer), &l, &err), AJW_OK);
    assert_int_equal(l->ttl, -1);
    assert_int_equal(l->exp, 0);
    assert_int_equal(ajw_statuslist_refresh_hint(l, NOW), -1);
}

static void test_token_hostile(void **state)
{
    ajw_statuslist_t *l = NULL;
    ajw_error_t err;
    ajw_keyset_t *keys = keys_of(&issuer);
    const char *good = claims_with(URI, NOW, "", SL_1BIT);
    const char *jwt;
    size_t n = 8u * 1024u * 1024u;
    unsigned char *zeros;
    (void)state;

    /* another issuer's key (same kid): the signature does not verify */
    jwt = list_token(&other, "statuslist+jwt", good);
    assert_int_equal(parse(jwt, keys, &l, &err), AJW_R_BAD_SIGNATURE);
    /* a kid the issuer does not have */
    jwt = sign(&issuer, "{\"alg\":\"ES256\",\"kid\":\"nope\",\"typ\":\"statuslist+jwt\"}", good);
    assert_int_equal(parse(jwt, keys, &l, &err), AJW_R_NO_KEY);
    /* typ: wrong, absent */
    assert_int_equal(parse(list_token(&issuer, "JWT", good), keys, &l, &err), AJW_R_BAD_TYPE);
    assert_int_equal(parse(list_token(&issuer, NULL, good), keys, &l, &err), AJW_R_BAD_TYPE);
    /* sub */
    assert_int_equal(parse(list_token(&issuer, "statuslist+jwt",
                                      claims_with(URI "0", NOW, "", SL_1BIT)), keys, &l, &err),
                     AJW_R_BAD_CLAIM);
    assert_int_equal(parse(list_token(&issuer, "statuslist+jwt",
                                      "{\"iat\":1700000000,\"status_list\":" SL_1BIT "}"),
                           keys, &l, &err), AJW_R_BAD_CLAIM);
    /* iat: absent, in the future */
    assert_int_equal(parse(list_token(&issuer, "statuslist+jwt",
                                      "{\"sub\":\"" URI "\",\"status_list\":" SL_1BIT "}"),
                           keys, &l, &err), AJW_R_MISSING_CLAIM);
    assert_int_equal(parse(list_token(&issuer, "statuslist+jwt",
                                      claims_with(URI, NOW + 3600, "", SL_1BIT)), keys, &l, &err),
                     AJW_R_ISSUED_IN_FUTURE);
    /* exp passed */
    assert_int_equal(parse(list_token(&issuer, "statuslist+jwt",
                                      claims_with(URI, NOW - 7200, ",\"exp\":1699996400", SL_1BIT)),
                           keys, &l, &err), AJW_R_EXPIRED);
    /* ttl */
    assert_int_equal(parse(list_token(&issuer, "statuslist+jwt",
                                      claims_with(URI, NOW, ",\"ttl\":-5", SL_1BIT)),
                           keys, &l, &err), AJW_R_BAD_CLAIM);
    /* bits, lst, status_list */
    assert_int_equal(parse(list_token(&issuer, "statuslist+jwt",
                                      claims_with(URI, NOW, "", "{\"bits\":3,\"lst\":\"eNrbuRgAAhcBXQ\"}")),
                           keys, &l, &err), AJW_R_BAD_CLAIM);
    assert_int_equal(parse(list_token(&issuer, "statuslist+jwt",
                                      claims_with(URI, NOW, "", "{\"bits\":1,\"lst\":\"%%%\"}")),
                           keys, &l, &err), AJW_R_MALFORMED);
    assert_int_equal(parse(list_token(&issuer, "statuslist+jwt",
                                      "{\"sub\":\"" URI "\",\"iat\":1700000000}"),
                           keys, &l, &err), AJW_R_MISSING_CLAIM);
    /* a bomb: 8 MiB of zeros, over the 4 MiB cap */
    zeros = calloc(1, n);
    jwt = list_token(&issuer, "statuslist+jwt",
                     claims_with(URI, NOW, "", apr_psprintf(pool, "{\"bits\":1,\"lst\":\"%s\"}",
                                                             lst_of(zeros, n))));
    free(zeros);
    assert_int_equal(parse(jwt, keys, &l, &err), AJW_R_TOO_LARGE);
    /* a token over the JWT cap */
    assert_int_equal(ajw_statuslist_parse(&l, jwt, strlen(jwt), URI, keys, 0, NOW, 60, 100, 0,
                                          pool, &err), AJW_R_TOO_LARGE);
    /* alg not allowed */
    jwt = list_token(&issuer, "statuslist+jwt", good);
    assert_int_equal(ajw_statuslist_parse(&l, jwt, strlen(jwt), URI, keys,
                                          AJW_ALG_BIT(AJW_ALG_RS256), NOW, 60, 0, 0, pool, &err),
                     AJW_R_ALG_NOT_ALLOWED);
    /* not a JWS */
    assert_int_equal(parse("not.a.jwt", keys, &l, &err), AJW_R_MALFORMED);
}

/* ---- deny-list ---------------------------------------------------------------- */

static void test_denylist(void **state)
{
    const char *text = "# revoked after the incident\n"
                       "jti:abc-123\n"
                       "  sub:alice  \r\n"
                       "\n"
                       "kid:old key\n"
                       "jti:abc-123\n";
    ajw_denylist_t *d = NULL;
    const char *why = NULL;
    static const char *const bad[] = { "jti\n", "jti:\n", "xyz:1\n", "JTI:1\n", "sub alice\n",
                                       "jti:a\nkid:b\nnonsense\n" };
    size_t i;
    (void)state;
    assert_int_equal(ajw_denylist_parse(&d, text, strlen(text), pool, &why, pool), APR_SUCCESS);
    assert_int_equal(d->count, 3);
    assert_true(ajw_denylist_has(d, "jti", "abc-123", 7));
    assert_true(ajw_denylist_has(d, "sub", "alice", 5));
    assert_true(ajw_denylist_has(d, "kid", "old key", 7));
    assert_false(ajw_denylist_has(d, "sub", "abc-123", 7));
    assert_false(ajw_denylist_has(d, "jti", "abc-12", 6));
    assert_false(ajw_denylist_has(d, "jti", "ABC-123", 7));
    assert_false(ajw_denylist_has(NULL, "jti", "abc-123", 7));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ajw_denylist_parse(&d, bad[i], strlen(bad[i]), pool, &why, pool),
                         APR_EINVAL);
        assert_non_null(why);
    }
    assert_non_null(strstr(why, "line 3"));
    assert_int_equal(ajw_denylist_parse(&d, "", 0, pool, &why, pool), APR_SUCCESS);
    assert_int_equal(d->count, 0);
}

/* ---- status list slots in the key store -------------------------------------- */

#define JWKS_URL "https://idp.example/jwks"

typedef struct sfake_t {
    pthread_mutex_t mu;
    const char *jwks;
    const char *list;         /* served at every other URL */
    int list_calls;
    char last_accept[64];
    char last_url[256];
} sfake_t;
static sfake_t sf = { PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0, "", "" };

static apr_status_t sfake_fetch(ajw_fetcher_t *self, const ajw_fetch_req_t *req,
                                ajw_fetch_res_t *res, apr_pool_t *p)
{
    (void)self;
    memset(res, 0, sizeof(*res));
    res->max_age = -1;
    res->status = 200;
    pthread_mutex_lock(&sf.mu);
    if (!strcmp(req->url, JWKS_URL))
        res->body = apr_pstrdup(p, sf.jwks);
    else {
        sf.list_calls++;
        snprintf(sf.last_accept, sizeof(sf.last_accept), "%s", req->accept ? req->accept : "");
        snprintf(sf.last_url, sizeof(sf.last_url), "%s", req->url);
        res->body = apr_pstrdup(p, sf.list);
    }
    pthread_mutex_unlock(&sf.mu);
    res->len = strlen(res->body);
    return APR_SUCCESS;
}
static ajw_fetcher_t sfetcher = { sfake_fetch, NULL };

static void test_slots(void **state)
{
    apr_pool_t *p, *pchild;
    ajw_keystore_t *ks;
    ajw_source_conf_t c;
    ajw_source_t *jw, *slots[2], *s;
    ajw_keyhold_t *h;
    unsigned st;
    int full = 0;
    long long now = (long long)apr_time_sec(apr_time_now());
    (void)state;

    sf.jwks = issuer.jwks;
    sf.list = list_token(&issuer, "statuslist+jwt",
                         claims_with(URI, now, ",\"ttl\":600", SL_1BIT));
    assert_int_equal(apr_pool_create(&p, NULL), APR_SUCCESS);
    assert_int_equal(apr_pool_create(&pchild, p), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&ks, p), APR_SUCCESS);
    ajw_source_conf_init(&c);
    c.url = JWKS_URL;
    jw = ajw_keystore_add(ks, &c);
    ajw_source_conf_init(&c);
    c.kind = AJW_SOURCE_STATUS;
    assert_null(ajw_keystore_add_slot(ks, &c));          /* no signer */
    c.signer = jw;
    c.max_size = AJW_STATUSLIST_MAX_JWT_DEFAULT;
    slots[0] = ajw_keystore_add_slot(ks, &c);
    slots[1] = ajw_keystore_add_slot(ks, &c);
    assert_non_null(slots[0]);
    assert_true(slots[0] != slots[1]);
    /* before start: nothing bound, nothing fetched */
    assert_null(ajw_keystore_bind(slots, 2, URI, &full));
    assert_int_equal(ajw_keystore_start(ks, &sfetcher, pchild), APR_SUCCESS);
    assert_null(ajw_source_acquire(slots[0], 0));         /* unbound: at once */

    s = ajw_keystore_bind(slots, 2, URI, &full);
    assert_non_null(s);
    assert_string_equal(ajw_source_url(s), URI);
    assert_true(ajw_keystore_bind(slots, 2, URI, &full) == s);
    h = ajw_source_acquire(s, apr_time_from_sec(5));
    assert_non_null(h);
    assert_null(h->set);
    assert_non_null(h->list);
    assert_int_equal(ajw_statuslist_get(h->list, 0, &st), 0);
    assert_int_equal(st, 1);
    ajw_source_release(h);
    pthread_mutex_lock(&sf.mu);
    assert_string_equal(sf.last_accept, AJW_STATUSLIST_MEDIA_TYPE);
    assert_string_equal(sf.last_url, URI);
    pthread_mutex_unlock(&sf.mu);

    /* the second slot takes a second uri; a third finds them full */
    assert_non_null(ajw_keystore_bind(slots, 2, URI "/2", &full));
    assert_null(ajw_keystore_bind(slots, 2, URI "/3", &full));
    assert_int_equal(full, 1);
    /* a list whose sub is another uri never publishes */
    h = ajw_source_acquire(ajw_keystore_bind(slots, 2, URI "/2", &full), apr_time_from_sec(2));
    assert_null(h);
    apr_pool_destroy(pchild);
    apr_pool_destroy(p);
}

/* A deny-list source reads its file through the fetcher only when the
 * file's mtime or size changed. */
static int deny_reads;
static apr_status_t file_fetch(ajw_fetcher_t *self, const ajw_fetch_req_t *req,
                               ajw_fetch_res_t *res, apr_pool_t *p)
{
    FILE *f = fopen(req->url + 7, "rb");
    char buf[4096];
    size_t n;
    (void)self;
    memset(res, 0, sizeof(*res));
    res->max_age = -1;
    __atomic_add_fetch(&deny_reads, 1, __ATOMIC_SEQ_CST);
    if (!f) {
        res->error = "cannot open";
        return APR_ENOENT;
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    res->status = 200;
    res->body = apr_pstrmemdup(p, buf, n);
    res->len = n;
    return APR_SUCCESS;
}
static ajw_fetcher_t file_fetcher = { file_fetch, NULL };

static int reads(void)
{
    return __atomic_load_n(&deny_reads, __ATOMIC_SEQ_CST);
}

static void test_deny_source_reads_on_change(void **state)
{
    char path[] = "/tmp/ajw-deny-XXXXXX";
    int fd = mkstemp(path);
    apr_pool_t *p, *pchild;
    ajw_keystore_t *ks;
    ajw_source_conf_t c;
    ajw_source_t *src;
    ajw_keyhold_t *h;
    apr_time_t end;
    FILE *f;
    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "jti:a\n", 6), 6);
    close(fd);
    assert_int_equal(apr_pool_create(&p, NULL), APR_SUCCESS);
    assert_int_equal(apr_pool_create(&pchild, p), APR_SUCCESS);
    assert_int_equal(ajw_keystore_create(&ks, p), APR_SUCCESS);
    ajw_source_conf_init(&c);
    c.kind = AJW_SOURCE_DENYLIST;
    c.url = apr_pstrcat(p, "file://", path, NULL);
    c.refresh = apr_time_from_msec(100);
    c.min_refresh = apr_time_from_msec(100);
    src = ajw_keystore_add(ks, &c);
    /* the same path as a JWKS URL is another source */
    ajw_source_conf_init(&c);
    c.url = apr_pstrcat(p, "file://", path, NULL);
    assert_true(ajw_keystore_add(ks, &c) != src);
    __atomic_store_n(&deny_reads, 0, __ATOMIC_SEQ_CST);
    /* start only the deny-list: a store of its own */
    assert_int_equal(ajw_keystore_create(&ks, p), APR_SUCCESS);
    ajw_source_conf_init(&c);
    c.kind = AJW_SOURCE_DENYLIST;
    c.url = apr_pstrcat(p, "file://", path, NULL);
    c.refresh = apr_time_from_msec(100);
    c.min_refresh = apr_time_from_msec(100);
    src = ajw_keystore_add(ks, &c);
    assert_int_equal(ajw_keystore_start(ks, &file_fetcher, pchild), APR_SUCCESS);
    h = ajw_source_acquire(src, apr_time_from_sec(5));
    assert_non_null(h);
    assert_non_null(h->deny);
    assert_true(ajw_denylist_has(h->deny, "jti", "a", 1));
    assert_false(ajw_denylist_has(h->deny, "sub", "b", 1));
    ajw_source_release(h);
    apr_sleep(apr_time_from_msec(800));            /* ~8 looks, the file unchanged */
    assert_int_equal(reads(), 1);
    f = fopen(path, "a");
    fputs("sub:b\n", f);
    fclose(f);
    end = apr_time_now() + apr_time_from_sec(5);
    do {
        apr_sleep(apr_time_from_msec(50));
        h = ajw_source_acquire(src, 0);
        if (h && ajw_denylist_has(h->deny, "sub", "b", 1)) {
            ajw_source_release(h);
            break;
        }
        ajw_source_release(h);
    } while (apr_time_now() < end);
    assert_true(apr_time_now() < end);
    assert_int_equal(reads(), 2);
    /* a bad line: the previous list stays */
    f = fopen(path, "a");
    fputs("nonsense\n", f);
    fclose(f);
    apr_sleep(apr_time_from_msec(500));
    h = ajw_source_acquire(src, 0);
    assert_non_null(h);
    assert_true(ajw_denylist_has(h->deny, "sub", "b", 1));
    ajw_source_release(h);
    apr_pool_destroy(pchild);
    apr_pool_destroy(p);
    unlink(path);
}

static void quiet(void *baton, ajw_log_level_e level, const char *msg)
{
    (void)baton;
    (void)level;
    (void)msg;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draft_examples),
        cmocka_unit_test(test_entry_widths),
        cmocka_unit_test(test_inflate_cap_and_bombs),
        cmocka_unit_test(test_decode_hostile),
        cmocka_unit_test(test_decode_bomb_capped),
        cmocka_unit_test(test_status_ref),
        cmocka_unit_test(test_token_good),
        cmocka_unit_test(test_token_hostile),
        cmocka_unit_test(test_denylist),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_deny_source_reads_on_change),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    ajw_log_set(quiet, NULL);
    signer_make(&issuer, "k1");
    signer_make(&other, "k1");
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    EVP_PKEY_free(issuer.pk);
    EVP_PKEY_free(other.pk);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
