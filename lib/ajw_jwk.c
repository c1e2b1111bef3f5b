/* ajw_jwk.c — JWK → ajw_key_t and JWKS → ajw_keyset_t.
 *
 * Only public members are read. Key material never reaches an error text or
 * a note: texts name the kid (sanitized), the member and the reason. */
#include <string.h>
#include <apr_strings.h>

#include "ajw_b64.h"
#include "ajw_crypt.h"
#include "ajw_json.h"
#include "ajw_jwk.h"

/* Longest base64url member we decode: a 16384-bit RSA modulus is 2731 chars. */
#define JWK_MAX_B64_LEN 4096
/* Longest x5c element (standard base64 of a DER certificate). */
#define JWK_MAX_X5C_LEN (96 * 1024)
/* Longest kid/alg/use we keep. */
#define JWK_MAX_NAME_LEN 1024
/* Characters of a kid shown in a note. */
#define JWK_NOTE_KID_LEN 64

/* Decode member `name` of jwk as strict base64url. Returns 0 when absent,
 * 1 when decoded, -1 (err set) when present but not a valid string. */
static int jwk_b64_member(unsigned char **out, size_t *len, const json_t *jwk,
                          const char *name, apr_pool_t *p, ajw_error_t *err)
{
    json_t *m = json_object_get(jwk, name);
    size_t slen;

    if (!m)
        return 0;
    if (!json_is_string(m) || (slen = json_string_length(m)) == 0
        || slen > JWK_MAX_B64_LEN
        || ajw_b64url_decode(out, len, json_string_value(m), slen, p) != APR_SUCCESS) {
        ajw_error_set(err, AJW_R_BAD_KEY, "member \"%s\" is not valid base64url", name);
        return -1;
    }
    return 1;
}

/* Copy optional string member `name` into the pool. Returns 0 when absent
 * (*out NULL), 1 when copied, -1 (err set) when not a string or too long. */
static int jwk_str_member(const char **out, size_t *len, const json_t *jwk,
                          const char *name, apr_pool_t *p, ajw_error_t *err)
{
    json_t *m = json_object_get(jwk, name);
    size_t l;

    *out = NULL;
    if (len)
        *len = 0;
    if (!m)
        return 0;
    if (!json_is_string(m) || (l = json_string_length(m)) > JWK_MAX_NAME_LEN) {
        ajw_error_set(err, AJW_R_BAD_KEY, "member \"%s\" is not a string", name);
        return -1;
    }
    *out = apr_pstrmemdup(p, json_string_value(m), l);
    if (len)
        *len = l;
    return 1;
}

static int str_is(const char *s, size_t len, const char *lit)
{
    return s && strlen(lit) == len && memcmp(s, lit, len) == 0;
}

static ajw_kty_e kty_from_name(const char *s, size_t len)
{
    if (str_is(s, len, "RSA"))
        return AJW_KTY_RSA;
    if (str_is(s, len, "EC"))
        return AJW_KTY_EC;
    if (str_is(s, len, "OKP"))
        return AJW_KTY_OKP;
    if (str_is(s, len, "oct"))
        return AJW_KTY_OCT;
    return AJW_KTY_UNKNOWN;
}

static ajw_crv_e crv_from_name(const char *s, size_t len)
{
    if (str_is(s, len, "P-256"))
        return AJW_CRV_P256;
    if (str_is(s, len, "P-384"))
        return AJW_CRV_P384;
    if (str_is(s, len, "P-521"))
        return AJW_CRV_P521;
    if (str_is(s, len, "Ed25519"))
        return AJW_CRV_ED25519;
    if (str_is(s, len, "Ed448"))
        return AJW_CRV_ED448;
    return AJW_CRV_NONE;
}

/* A note naming the private members present, or NULL. */
static const char *jwk_private_warning(const json_t *jwk, apr_pool_t *p)
{
    static const char *const priv[] = { "d", "p", "q", "dp", "dq", "qi", "oth", "k" };
    const char *names = NULL;
    size_t i;

    for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
        if (json_object_get(jwk, priv[i]))
            names = names ? apr_pstrcat(p, names, ",", priv[i], NULL) : priv[i];
    }
    if (!names)
        return NULL;
    return apr_psprintf(p, "private key members (%s) present in a public key set; ignored",
                        names);
}

/* key_ops: absent → can verify; else an array of strings that must
 * contain "verify". */
static ajw_reason_e jwk_key_ops(ajw_key_t *k, const json_t *jwk, ajw_error_t *err)
{
    json_t *ops = json_object_get(jwk, "key_ops"), *op;
    size_t i;

    k->has_key_ops = ops != NULL;
    k->can_verify = ops == NULL;
    if (!ops)
        return AJW_OK;
    if (!json_is_array(ops))
        return ajw_error_set(err, AJW_R_BAD_KEY, "key_ops is not an array");
    json_array_foreach(ops, i, op) {
        if (!json_is_string(op))
            return ajw_error_set(err, AJW_R_BAD_KEY, "key_ops holds a non-string");
        if (str_is(json_string_value(op), json_string_length(op), "verify"))
            k->can_verify = 1;
    }
    return AJW_OK;
}

/* Key from the JWK's own members (n/e, x/y, x). *present is 0 when none of
 * them is there (then only x5c can give the key). */
static ajw_reason_e jwk_members_key(EVP_PKEY **out, int *present, ajw_kty_e kty,
                                    ajw_crv_e crv, const json_t *jwk, apr_pool_t *p,
                                    ajw_error_t *err)
{
    unsigned char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    int ha, hb;

    *present = 0;
    ha = jwk_b64_member(&a, &alen, jwk, kty == AJW_KTY_RSA ? "n" : "x", p, err);
    if (ha < 0)
        return AJW_R_BAD_KEY;
    hb = kty == AJW_KTY_OKP ? 0 : jwk_b64_member(&b, &blen, jwk, kty == AJW_KTY_RSA ? "e" : "y",
                                                 p, err);
    if (hb < 0)
        return AJW_R_BAD_KEY;
    if (!ha && !hb)
        return AJW_OK;
    *present = 1;
    if (!ha || (kty != AJW_KTY_OKP && !hb))
        return ajw_error_set(err, AJW_R_BAD_KEY, "%s key: a public member is missing",
                             kty == AJW_KTY_RSA ? "RSA" : kty == AJW_KTY_EC ? "EC" : "OKP");
    if (kty == AJW_KTY_RSA)
        return ajw_crypt_rsa_key(out, a, alen, b, blen, p, err);
    if (kty == AJW_KTY_EC)
        return ajw_crypt_ec_key(out, crv, a, alen, b, blen, p, err);
    return ajw_crypt_okp_key(out, crv, a, alen, p, err);
}

/* Key of the first x5c certificate. *present is 0 when x5c is absent. */
static ajw_reason_e jwk_x5c_key(EVP_PKEY **out, int *present, ajw_kty_e kty, ajw_crv_e crv,
                                const json_t *jwk, apr_pool_t *p, ajw_error_t *err)
{
    json_t *x5c = json_object_get(jwk, "x5c"), *first;
    unsigned char *der;
    size_t derlen, slen;
    ajw_kty_e ckty;
    ajw_crv_e ccrv;
    int bits;
    ajw_reason_e rv;

    *present = x5c != NULL;
    if (!x5c)
        return AJW_OK;
    if (!json_is_array(x5c) || !(first = json_array_get(x5c, 0)) || !json_is_string(first))
        return ajw_error_set(err, AJW_R_BAD_KEY, "x5c is not a non-empty array of strings");
    slen = json_string_length(first);
    if (slen > JWK_MAX_X5C_LEN
        || ajw_b64std_decode(&der, &derlen, json_string_value(first), slen, p) != APR_SUCCESS)
        return ajw_error_set(err, AJW_R_BAD_KEY, "x5c[0] is not valid base64");
    if ((rv = ajw_crypt_cert_key(out, &ckty, &ccrv, &bits, der, derlen, p, err)) != AJW_OK)
        return rv;
    if (ckty != kty || (kty != AJW_KTY_RSA && ccrv != crv))
        return ajw_error_set(err, AJW_R_BAD_KEY, "x5c certificate key does not match kty/crv");
    return AJW_OK;
}

/* The key itself: from members, from x5c, or both (then they must agree). */
static ajw_reason_e jwk_pkey(EVP_PKEY **out, ajw_kty_e kty, ajw_crv_e crv, const json_t *jwk,
                             apr_pool_t *p, ajw_error_t *err)
{
    EVP_PKEY *mk = NULL, *ck = NULL;
    int has_m, has_c;
    ajw_reason_e rv;

    if ((rv = jwk_members_key(&mk, &has_m, kty, crv, jwk, p, err)) != AJW_OK)
        return rv;
    if ((rv = jwk_x5c_key(&ck, &has_c, kty, crv, jwk, p, err)) != AJW_OK)
        return rv;
    if (!has_m && !has_c)
        return ajw_error_set(err, AJW_R_BAD_KEY, "no public key members and no x5c");
    if (has_m && has_c && !ajw_crypt_key_equal(mk, ck))
        return ajw_error_set(err, AJW_R_BAD_KEY, "x5c certificate key differs from the JWK");
    *out = has_m ? mk : ck;
    return AJW_OK;
}

/* kty and crv; crv must fit kty. */
static ajw_reason_e jwk_type(ajw_kty_e *kty, ajw_crv_e *crv, const json_t *jwk, apr_pool_t *p,
                             ajw_error_t *err)
{
    const char *s;
    size_t len;

    if (jwk_str_member(&s, &len, jwk, "kty", p, err) <= 0)
        return ajw_error_set(err, AJW_R_BAD_KEY, "kty missing or not a string");
    *kty = kty_from_name(s, len);
    *crv = AJW_CRV_NONE;
    if (*kty == AJW_KTY_UNKNOWN)
        return ajw_error_set(err, AJW_R_BAD_KEY, "unsupported kty");
    if (*kty == AJW_KTY_OCT)
        return ajw_error_set(err, AJW_R_BAD_KEY, "oct keys are never used");
    if (*kty == AJW_KTY_RSA)
        return AJW_OK;
    if (jwk_str_member(&s, &len, jwk, "crv", p, err) <= 0)
        return ajw_error_set(err, AJW_R_BAD_KEY, "crv missing or not a string");
    *crv = crv_from_name(s, len);
    if (*kty == AJW_KTY_EC && (*crv == AJW_CRV_NONE || *crv >= AJW_CRV_ED25519))
        return ajw_error_set(err, AJW_R_BAD_KEY, "unsupported EC crv");
    if (*kty == AJW_KTY_OKP && *crv != AJW_CRV_ED25519 && *crv != AJW_CRV_ED448)
        return ajw_error_set(err, AJW_R_BAD_KEY, "unsupported OKP crv");
    return AJW_OK;
}

ajw_reason_e ajw_jwk_parse(ajw_key_t **out, const char **warn, const json_t *jwk,
                           apr_pool_t *p, ajw_error_t *err)
{
    ajw_key_t *k;
    ajw_reason_e rv;
    size_t alen;

    if (warn)
        *warn = NULL;
    if (!json_is_object(jwk))
        return ajw_error_set(err, AJW_R_BAD_KEY, "JWK is not an object");
    k = apr_pcalloc(p, sizeof(*k));
    if ((rv = jwk_type(&k->kty, &k->crv, jwk, p, err)) != AJW_OK)
        return rv;
    if (jwk_str_member(&k->kid, &k->kid_len, jwk, "kid", p, err) < 0
        || jwk_str_member(&k->alg_name, &alen, jwk, "alg", p, err) < 0
        || jwk_str_member(&k->use, NULL, jwk, "use", p, err) < 0)
        return AJW_R_BAD_KEY;
    k->alg = k->alg_name ? ajw_alg_from_name(k->alg_name, alen) : AJW_ALG_UNKNOWN;
    if ((rv = jwk_key_ops(k, jwk, err)) != AJW_OK)
        return rv;
    if ((rv = jwk_pkey(&k->pkey, k->kty, k->crv, jwk, p, err)) != AJW_OK)
        return rv;
    k->bits = ajw_crypt_key_bits(k->pkey);
    if (warn)
        *warn = jwk_private_warning(jwk, p);
    *out = k;
    return AJW_OK;
}

/* The kid of a JWK for a note: at most JWK_NOTE_KID_LEN printable ASCII
 * characters (others become '?'), so a key set cannot forge log lines. */
static const char *note_kid(const json_t *jwk, apr_pool_t *p)
{
    json_t *m = json_is_object(jwk) ? json_object_get(jwk, "kid") : NULL;
    const char *s;
    size_t len, i;
    char *o;

    if (!json_is_string(m))
        return "-";
    s = json_string_value(m);
    len = json_string_length(m);
    if (len > JWK_NOTE_KID_LEN)
        len = JWK_NOTE_KID_LEN;
    o = apr_pstrmemdup(p, s, len);
    for (i = 0; i < len; i++) {
        if (o[i] < 0x20 || o[i] > 0x7e)
            o[i] = '?';
    }
    return o;
}

static void keyset_add(ajw_keyset_t *ks, const json_t *jwk, size_t idx)
{
    ajw_error_t kerr;
    ajw_key_t *k = NULL;
    const char *warn = NULL;

    kerr.text[0] = '\0';
    if (ajw_jwk_parse(&k, &warn, jwk, ks->pool, &kerr) != AJW_OK) {
        APR_ARRAY_PUSH(ks->notes, const char *) =
            apr_psprintf(ks->pool, "key %" APR_SIZE_T_FMT " (kid=%s): skipped: %s", idx,
                         note_kid(jwk, ks->pool), kerr.text);
        return;
    }
    if (warn)
        APR_ARRAY_PUSH(ks->notes, const char *) =
            apr_psprintf(ks->pool, "key %" APR_SIZE_T_FMT " (kid=%s): warning: %s", idx,
                         note_kid(jwk, ks->pool), warn);
    APR_ARRAY_PUSH(ks->keys, ajw_key_t *) = k;
}

/* Fill ks from a parsed document. */
static ajw_reason_e keyset_fill(ajw_keyset_t *ks, const json_t *doc, ajw_error_t *err)
{
    json_t *keys = json_object_get(doc, "keys");
    size_t i, n;

    if (!json_is_array(keys))
        return ajw_error_set(err, AJW_R_BAD_KEY, "JWKS has no \"keys\" array");
    n = json_array_size(keys);
    for (i = 0; i < n && i < AJW_MAX_KEYS; i++)
        keyset_add(ks, json_array_get(keys, i), i);
    if (n > AJW_MAX_KEYS)
        APR_ARRAY_PUSH(ks->notes, const char *) =
            apr_psprintf(ks->pool, "%" APR_SIZE_T_FMT " keys over the cap of %d ignored",
                         n - AJW_MAX_KEYS, AJW_MAX_KEYS);
    return AJW_OK;
}

ajw_reason_e ajw_keyset_parse(ajw_keyset_t **out, const char *buf, size_t len, size_t max_len,
                              apr_pool_t *parent, ajw_error_t *err)
{
    apr_pool_t *pool = NULL, *tmp = NULL;
    ajw_keyset_t *ks;
    json_t *doc = NULL;
    ajw_reason_e rv;

    /* An unmanaged pool has no parent to outlive, so a background thread
     * can free a retired set while others keep their own. */
    if ((parent ? apr_pool_create_ex(&pool, parent, NULL, NULL)
                : apr_pool_create_unmanaged_ex(&pool, NULL, NULL)) != APR_SUCCESS) {
        pool = NULL;
        rv = ajw_error_set(err, AJW_R_INTERNAL, "JWKS: cannot create a pool");
        goto cleanup;
    }
    if (apr_pool_create(&tmp, pool) != APR_SUCCESS) {
        tmp = NULL;
        rv = ajw_error_set(err, AJW_R_INTERNAL, "JWKS: cannot create a pool");
        goto cleanup;
    }
    ks = apr_pcalloc(pool, sizeof(*ks));
    ks->pool = pool;
    ks->keys = apr_array_make(pool, 8, sizeof(ajw_key_t *));
    ks->notes = apr_array_make(pool, 4, sizeof(const char *));
    /* The document lives in tmp: keys copy what they keep. */
    rv = ajw_json_parse_object(&doc, buf, len, max_len ? max_len : AJW_MAX_JWKS_LEN_DEFAULT,
                               AJW_MAX_JSON_DEPTH, tmp, err);
    if (rv == AJW_OK)
        rv = keyset_fill(ks, doc, err);
    if (rv == AJW_OK) {
        *out = ks;
        pool = NULL;
    }
cleanup:
    if (tmp)
        apr_pool_destroy(tmp);
    if (pool)
        apr_pool_destroy(pool);
    return rv;
}

void ajw_keyset_free(ajw_keyset_t *ks)
{
    if (ks && ks->pool)
        apr_pool_destroy(ks->pool);
}

static int same_opt_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static int same_key(const ajw_key_t *a, const ajw_key_t *b)
{
    if (a->kty != b->kty || a->crv != b->crv || a->alg != b->alg
        || a->has_key_ops != b->has_key_ops || a->can_verify != b->can_verify)
        return 0;
    if ((a->kid == NULL) != (b->kid == NULL)
        || (a->kid && (a->kid_len != b->kid_len || memcmp(a->kid, b->kid, a->kid_len) != 0)))
        return 0;
    if (!same_opt_str(a->alg_name, b->alg_name) || !same_opt_str(a->use, b->use))
        return 0;
    return ajw_crypt_key_equal(a->pkey, b->pkey);
}

int ajw_keyset_same_keys(const ajw_keyset_t *a, const ajw_keyset_t *b)
{
    unsigned char used[AJW_MAX_KEYS];
    int i, j, n;
    if (!a || !b || a->keys->nelts != b->keys->nelts || a->keys->nelts > AJW_MAX_KEYS)
        return 0;
    n = a->keys->nelts;
    memset(used, 0, sizeof(used));
    /* One-to-one matching; greedy is exact because key equality is an
     * equivalence. At most AJW_MAX_KEYS^2 compares, in the background only. */
    for (i = 0; i < n; i++) {
        const ajw_key_t *ka = APR_ARRAY_IDX(a->keys, i, const ajw_key_t *);
        for (j = 0; j < n; j++) {
            if (!used[j] && same_key(ka, APR_ARRAY_IDX(b->keys, j, const ajw_key_t *))) {
                used[j] = 1;
                break;
            }
        }
        if (j == n)
            return 0;
    }
    return 1;
}

ajw_reason_e ajw_jwk_thumbprint(const char **out, const json_t *jwk, apr_pool_t *p,
                                ajw_error_t *err)
{
    static const char *const rsa[] = { "e", "kty", "n", NULL };
    static const char *const ec[] = { "crv", "kty", "x", "y", NULL };
    static const char *const okp[] = { "crv", "kty", "x", NULL };
    const char *const *names;
    const char *kty = ajw_json_get_string(jwk, "kty", NULL);
    json_t *req = NULL;
    char *text = NULL;
    unsigned char hash[32];
    ajw_reason_e rv = AJW_R_BAD_KEY;

    if (!kty)
        return ajw_error_set(err, AJW_R_BAD_KEY, "JWK has no kty string");
    names = !strcmp(kty, "RSA") ? rsa : !strcmp(kty, "EC") ? ec : !strcmp(kty, "OKP") ? okp : NULL;
    if (!names)
        return ajw_error_set(err, AJW_R_BAD_KEY, "no thumbprint for this kty");
    req = json_object();
    for (; req && *names; names++) {
        const json_t *v = json_object_get(jwk, *names);
        if (!json_is_string(v)) {
            ajw_error_set(err, AJW_R_BAD_KEY, "JWK member %s absent or not a string", *names);
            goto cleanup;
        }
        json_object_set_new(req, *names, json_stringn(json_string_value(v), json_string_length(v)));
    }
    /* Members hold base64url or names, so jansson's compact, key-sorted form
     * is the RFC 7638 serialization (nothing needs escaping). */
    text = req ? json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (!text || ajw_crypt_sha256(hash, text, strlen(text)) != 0) {
        rv = ajw_error_set(err, AJW_R_INTERNAL, "thumbprint: out of memory or hash failure");
        goto cleanup;
    }
    *out = ajw_b64url_encode(hash, sizeof(hash), p);
    rv = AJW_OK;
cleanup:
    free(text);
    json_decref(req);
    return rv;
}
