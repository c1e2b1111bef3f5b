/* ajw_statuslist.c — Token Status List references, tokens and bit arrays. */
#include <stdio.h>
#include <string.h>
#include <math.h>
#include <apr_strings.h>

#include "ajw_statuslist.h"
#include "ajw_b64.h"
#include "ajw_json.h"
#include "ajw_jws.h"
#include "ajw_claims.h"
#include "ajw_zlib.h"

/* A JSON integer in [0, max]. */
static int whole_in(const ajw_val_t *v, unsigned long long max, unsigned long long *out)
{
    long long i;
    if (!ajw_val_is_integer(v))
        return 0;
    i = ajw_val_int(v);
    if (i < 0 || (unsigned long long)i > max)
        return 0;
    *out = (unsigned long long)i;
    return 1;
}

static int has_control(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    }
    return 0;
}

int ajw_status_ref(const ajw_val_t *claims, unsigned long long *idx, const char **uri,
                   ajw_error_t *err)
{
    const ajw_val_t *st = ajw_val_get(claims, "status"), *sl;
    const char *u;
    size_t ulen = 0;

    *idx = 0;
    *uri = NULL;
    if (!st)
        return 0;
    if (!ajw_val_is_object(st)) {
        ajw_error_set(err, AJW_R_BAD_CLAIM, "status claim is not an object");
        return -1;
    }
    if (!(sl = ajw_val_get(st, "status_list")))
        return 0;
    if (!ajw_val_is_object(sl)) {
        ajw_error_set(err, AJW_R_BAD_CLAIM, "status.status_list is not an object");
        return -1;
    }
    if (!whole_in(ajw_val_get(sl, "idx"), AJW_STATUSLIST_IDX_MAX, idx)) {
        ajw_error_set(err, AJW_R_BAD_CLAIM, "status.status_list.idx is not a non-negative "
                      "integer");
        return -1;
    }
    u = ajw_val_get_string(sl, "uri", &ulen);
    if (!u || ulen == 0 || ulen > AJW_STATUSLIST_URI_MAX || strlen(u) != ulen
        || has_control(u, ulen)) {
        ajw_error_set(err, AJW_R_BAD_CLAIM, "status.status_list.uri is not a string of 1 to %d "
                      "printable bytes", AJW_STATUSLIST_URI_MAX);
        return -1;
    }
    *uri = u;
    return 1;
}

ajw_reason_e ajw_statuslist_decode(unsigned *bits, const unsigned char **bytes, size_t *len,
                                   const json_t *status_list, size_t max_bytes,
                                   apr_pool_t *p, ajw_error_t *err)
{
    unsigned long long b = 0;
    const char *lst, *why = NULL;
    size_t lst_len = 0, clen = 0, olen = 0;
    unsigned char *comp = NULL, *out = NULL;
    apr_status_t rv;

    *bits = 0;
    *bytes = NULL;
    *len = 0;
    if (max_bytes == 0)
        max_bytes = AJW_STATUSLIST_MAX_BYTES_DEFAULT;
    if (!json_is_object(status_list))
        return ajw_error_set(err, AJW_R_MALFORMED, "status_list is not an object");
    b = json_is_integer(json_object_get(status_list, "bits"))
        ? (unsigned long long)json_integer_value(json_object_get(status_list, "bits")) : 0;
    if (b != 1 && b != 2 && b != 4 && b != 8)
        return ajw_error_set(err, AJW_R_BAD_CLAIM, "status_list.bits is not 1, 2, 4 or 8");
    if (!(lst = ajw_json_get_string(status_list, "lst", &lst_len)))
        return ajw_error_set(err, AJW_R_MALFORMED, "status_list.lst absent or not a string");
    if (ajw_b64url_decode(&comp, &clen, lst, lst_len, p) != APR_SUCCESS)
        return ajw_error_set(err, AJW_R_MALFORMED, "status_list.lst is not base64url");
    rv = ajw_zlib_inflate(&out, &olen, comp, clen, max_bytes, &why, p);
    if (rv == APR_ENOSPC)
        return ajw_error_set(err, AJW_R_TOO_LARGE, "status_list.lst %s", why);
    if (rv != APR_SUCCESS)
        return ajw_error_set(err, AJW_R_MALFORMED, "status_list.lst: %s", why);
    if (olen == 0)
        return ajw_error_set(err, AJW_R_MALFORMED, "status_list.lst is empty");
    *bits = (unsigned)b;
    *bytes = out;
    *len = olen;
    return AJW_OK;
}

int ajw_statuslist_entry(const unsigned char *bytes, size_t len, unsigned bits,
                         unsigned long long idx, unsigned *status)
{
    unsigned long long per_byte, byte;
    unsigned shift;
    *status = 0;
    if (!bytes || (bits != 1 && bits != 2 && bits != 4 && bits != 8))
        return -1;
    per_byte = 8u / bits;
    byte = idx / per_byte;
    if (byte >= (unsigned long long)len)
        return -1;
    shift = (unsigned)(idx % per_byte) * bits;
    *status = (unsigned)(bytes[byte] >> shift) & ((1u << bits) - 1u);
    return 0;
}

int ajw_statuslist_get(const ajw_statuslist_t *l, unsigned long long idx, unsigned *status)
{
    if (!l) {
        *status = 0;
        return -1;
    }
    return ajw_statuslist_entry(l->bytes, l->len, l->bits, idx, status);
}

/* The claims of a verified Status List Token into l (read as a document,
 * the list itself from the tree). */
static ajw_reason_e check_claims(ajw_statuslist_t *l, const json_t *tree, const char *uri,
                                 long long now, long long leeway, size_t max_bytes,
                                 ajw_error_t *err)
{
    const char *sub;
    size_t sub_len = 0;
    unsigned long long ttl = 0;
    const ajw_val_t *claims = ajw_doc_make(tree, l->pool, NULL), *v;
    int r;

    sub = ajw_val_get_string(claims, "sub", &sub_len);
    if (!sub || sub_len != strlen(uri) || memcmp(sub, uri, sub_len) != 0)
        return ajw_error_set(err, AJW_R_BAD_CLAIM, "sub %s the uri it was fetched from",
                             sub ? "differs from" : "absent: it must name");
    r = ajw_claims_numeric_date(claims, "iat", &l->iat);
    if (r == 0)
        return ajw_error_set(err, AJW_R_MISSING_CLAIM, "iat absent");
    if (r < 0)
        return ajw_error_set(err, AJW_R_BAD_CLAIM, "iat is not a NumericDate");
    if (l->iat - leeway > now)
        return ajw_error_set(err, AJW_R_ISSUED_IN_FUTURE, "iat is %lld s in the future",
                             l->iat - now);
    r = ajw_claims_numeric_date(claims, "exp", &l->exp);
    if (r < 0)
        return ajw_error_set(err, AJW_R_BAD_CLAIM, "exp is not a NumericDate");
    if (r == 0)
        l->exp = 0;
    else if (l->exp + leeway <= now)
        return ajw_error_set(err, AJW_R_EXPIRED, "the list expired %lld s ago", now - l->exp);
    l->ttl = -1;
    if ((v = ajw_val_get(claims, "ttl"))) {
        if (!whole_in(v, 253402300799ULL, &ttl))
            return ajw_error_set(err, AJW_R_BAD_CLAIM, "ttl is not a non-negative integer");
        l->ttl = (long long)ttl;
    }
    if (!ajw_val_get(claims, "status_list"))
        return ajw_error_set(err, AJW_R_MISSING_CLAIM, "status_list absent");
    return ajw_statuslist_decode(&l->bits, &l->bytes, &l->len,
                                 json_object_get(tree, "status_list"), max_bytes, l->pool, err);
}

ajw_reason_e ajw_statuslist_parse(ajw_statuslist_t **out, const char *jwt, size_t len,
                                  const char *uri, const ajw_keyset_t *keys, unsigned algs,
                                  long long now, long long leeway, size_t max_jwt,
                                  size_t max_bytes, apr_pool_t *parent, ajw_error_t *err)
{
    ajw_statuslist_t *l = NULL;
    apr_pool_t *p = NULL;
    ajw_policy_t pol;
    ajw_jws_t *t = NULL;
    const ajw_key_t *used = NULL;
    ajw_reason_e rc;

    *out = NULL;
    if (max_jwt == 0)
        max_jwt = AJW_STATUSLIST_MAX_JWT_DEFAULT;
    if (!uri || !keys) {
        rc = ajw_error_set(err, AJW_R_INTERNAL, "no uri or no keys to verify the list with");
        goto cleanup;
    }
    if ((parent ? apr_pool_create(&p, parent) : apr_pool_create_unmanaged_ex(&p, NULL, NULL))
        != APR_SUCCESS) {
        p = NULL;
        rc = ajw_error_set(err, AJW_R_INTERNAL, "out of memory");
        goto cleanup;
    }
    ajw_policy_init(&pol);
    pol.algs = algs ? algs : AJW_ALGS_DEFAULT;
    pol.typ = AJW_STATUSLIST_TYP;
    pol.max_token_len = max_jwt;
    while (len > 0 && (jwt[len - 1] == '\n' || jwt[len - 1] == '\r' || jwt[len - 1] == ' '))
        len--;                    /* a served file may end with a newline */
    if ((rc = ajw_jws_parse(&t, jwt, len, &pol, p, err)) != AJW_OK)
        goto cleanup;
    if (!ajw_json_get_string(t->header, "typ", NULL)) {
        rc = ajw_error_set(err, AJW_R_BAD_TYPE, "typ header absent: a status list token is "
                           "of type " AJW_STATUSLIST_TYP);
        goto cleanup;
    }
    if ((rc = ajw_jws_verify(t, &keys, 1, &used, err)) != AJW_OK)
        goto cleanup;
    l = apr_pcalloc(p, sizeof(*l));
    l->pool = p;
    l->uri = apr_pstrdup(p, uri);
    l->kid = t->kid ? apr_pstrmemdup(p, t->kid, t->kid_len) : NULL;
    rc = check_claims(l, t->claims, uri, now, leeway, max_bytes, err);
cleanup:
    if (rc == AJW_OK)
        *out = l;
    else if (p)
        apr_pool_destroy(p);
    return rc;
}

long long ajw_statuslist_refresh_hint(const ajw_statuslist_t *l, long long now)
{
    long long hint = l->ttl;
    if (l->exp > 0) {
        long long left = l->exp > now ? l->exp - now : 0;
        if (hint < 0 || left < hint)
            hint = left;
    }
    return hint;
}

void ajw_statuslist_free(ajw_statuslist_t *l)
{
    if (l && l->pool)
        apr_pool_destroy(l->pool);
}

const char *ajw_statuslist_status_name(unsigned status, char buf[24])
{
    switch (status) {
    case 0: return "VALID";
    case 1: return "INVALID";
    case 2: return "SUSPENDED";
    default:
        snprintf(buf, 24, "status %u", status);
        return buf;
    }
}
