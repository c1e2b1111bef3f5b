/* ajw_jws.c — compact JWS: split, decode and police the header (no crypto),
 * then verify against candidate keys. Everything here treats the token as
 * hostile: sizes are capped before any work, and no token, signature or
 * key byte is ever copied into an error text (kid and alg are quoted only
 * sanitized and truncated). */
#include <string.h>
#include <strings.h>

#include <apr_strings.h>

#include "ajw_jws.h"
#include "ajw_b64.h"
#include "ajw_json.h"
#include "ajw_crypt.h"

/* Bytes of an attacker-chosen string (kid, alg) quoted in an error text. */
#define AJW_QUOTE_MAX 64

/* Copy s into buf, printable ASCII only (others become '?'), truncated with
 * "..." so a crafted kid cannot forge log lines. Returns buf. */
static const char *printable(char *buf, size_t bufsize, const char *s, size_t len)
{
    size_t i, n = len < AJW_QUOTE_MAX ? len : AJW_QUOTE_MAX;

    if (n > bufsize - 4)
        n = bufsize - 4;
    for (i = 0; i < n; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ? s[i] : '?';
    if (n < len) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* The three parts of a compact serialization, as offsets into the token. */
typedef struct {
    const char *part[3];
    size_t len[3];
} jws_parts_t;

static ajw_reason_e split_parts(jws_parts_t *pt, const char *token, size_t len,
                                ajw_error_t *err)
{
    const char *dots[5];
    size_t i, ndots = 0;

    for (i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (ndots < 5)
                dots[ndots] = token + i;
            ndots++;
        }
    }
    if (ndots == 4)
        return ajw_error_set(err, AJW_R_UNSUPPORTED, "token is a JWE (5 parts), not a JWS");
    if (ndots != 2)
        return ajw_error_set(err, AJW_R_MALFORMED, "token has %zu parts, a JWS has 3",
                             ndots + 1);
    pt->part[0] = token;
    pt->len[0] = (size_t)(dots[0] - token);
    pt->part[1] = dots[0] + 1;
    pt->len[1] = (size_t)(dots[1] - pt->part[1]);
    pt->part[2] = dots[1] + 1;
    pt->len[2] = (size_t)(token + len - pt->part[2]);
    if (pt->len[0] == 0)
        return ajw_error_set(err, AJW_R_MALFORMED, "token has an empty header part");
    return AJW_OK;
}

static ajw_reason_e decode_part(unsigned char **out, size_t *outlen, const char *in,
                                size_t inlen, const char *what, apr_pool_t *p,
                                ajw_error_t *err)
{
    if (ajw_b64url_decode(out, outlen, in, inlen, p) != APR_SUCCESS)
        return ajw_error_set(err, AJW_R_MALFORMED, "token %s is not valid base64url", what);
    return AJW_OK;
}

static ajw_reason_e parse_json_part(json_t **out, const unsigned char *buf, size_t len,
                                    size_t max_len, const char *what, apr_pool_t *p,
                                    ajw_error_t *err)
{
    ajw_error_t jerr;
    ajw_reason_e rv = ajw_json_parse_object(out, (const char *)buf, len, max_len,
                                            AJW_MAX_JSON_DEPTH, p, &jerr);
    if (rv != AJW_OK)
        return ajw_error_set(err, rv, "token %s: %s", what, jerr.text);
    return AJW_OK;
}

/* A known alg: asymmetric and allowed by the policy. */
static ajw_reason_e alg_allowed(ajw_alg_e alg, const ajw_policy_t *pol, ajw_error_t *err)
{
    if (alg == AJW_ALG_NONE || alg == AJW_ALG_HS256 || alg == AJW_ALG_HS384 ||
        alg == AJW_ALG_HS512)
        return ajw_error_set(err, AJW_R_ALG_NOT_ALLOWED,
                             "alg %s is never accepted (unsigned or symmetric)",
                             ajw_alg_name(alg));
    if (!(pol->algs & AJW_ALG_BIT(alg)))
        return ajw_error_set(err, AJW_R_ALG_NOT_ALLOWED, "alg %s is not in the allowed list",
                             ajw_alg_name(alg));
    return AJW_OK;
}

/* typ (NULL when absent) against the policy's expected type, if any. */
static ajw_reason_e typ_allowed(const char *typ, size_t len, const ajw_policy_t *pol,
                                ajw_error_t *err)
{
    if (pol->typ && !(typ && ajw_jws_typ_equal(typ, len, pol->typ, strlen(pol->typ))))
        return ajw_error_set(err, AJW_R_BAD_TYPE, "header typ is %s, expected %s",
                             typ ? "different" : "missing", pol->typ);
    return AJW_OK;
}

/* The header members the rules read, from a tree or a document: kind 0
 * absent, 1 a string (s, len), 2 anything else. */
typedef struct {
    int kind;
    const char *s;
    size_t len;
} hmember_t;

typedef struct {
    hmember_t alg, typ, kid;
    int crit, b64;              /* present at all */
} hview_t;

static void hmember_tree(hmember_t *m, const json_t *h, const char *name)
{
    const json_t *v = json_object_get(h, name);
    m->kind = !v ? 0 : json_is_string(v) ? 1 : 2;
    m->s = m->kind == 1 ? json_string_value(v) : NULL;
    m->len = m->kind == 1 ? json_string_length(v) : 0;
}

static void hview_tree(hview_t *h, const json_t *header)
{
    hmember_tree(&h->alg, header, "alg");
    hmember_tree(&h->typ, header, "typ");
    hmember_tree(&h->kid, header, "kid");
    h->crit = json_object_get(header, "crit") != NULL;
    h->b64 = json_object_get(header, "b64") != NULL;
}

/* One walk over a document header's members. */
static void hview_doc(hview_t *h, const ajw_val_t *header)
{
    const char *name;
    const ajw_val_t *v;
    memset(h, 0, sizeof(*h));
    ajw_val_foreach_member(header, name, v) {
        hmember_t *m = !strcmp(name, "alg") ? &h->alg : !strcmp(name, "typ") ? &h->typ
                       : !strcmp(name, "kid") ? &h->kid : NULL;
        if (m) {
            m->kind = ajw_val_is_string(v) ? 1 : 2;
            m->s = m->kind == 1 ? ajw_val_str(v) : NULL;
            m->len = m->kind == 1 ? ajw_val_strlen(v) : 0;
        }
        else if (!strcmp(name, "crit"))
            h->crit = 1;
        else if (!strcmp(name, "b64"))
            h->b64 = 1;
    }
}

/* alg: known, asymmetric, and allowed by the policy. */
static ajw_reason_e check_alg(ajw_jws_t *t, const hview_t *h, const ajw_policy_t *pol,
                              ajw_error_t *err)
{
    char q[AJW_QUOTE_MAX + 8];

    if (h->alg.kind != 1)
        return ajw_error_set(err, AJW_R_ALG_NOT_ALLOWED, "header alg is %s",
                             h->alg.kind ? "not a string" : "missing");
    t->alg_name = h->alg.s;
    t->alg = ajw_alg_from_name(h->alg.s, h->alg.len);
    if (t->alg == AJW_ALG_UNKNOWN)
        return ajw_error_set(err, AJW_R_ALG_NOT_ALLOWED, "alg '%s' is unknown",
                             printable(q, sizeof(q), h->alg.s, h->alg.len));
    return alg_allowed(t->alg, pol, err);
}

/* Lengths of a typ value once "application/" is implied (RFC 7515 §4.1.9). */
static int has_slash(const char *s, size_t len)
{
    return memchr(s, '/', len) != NULL;
}

int ajw_jws_typ_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    static const char app[] = "application/";
    const size_t applen = sizeof(app) - 1;

    /* Strip an explicit prefix when what follows has no '/', so both sides
     * are in the short form; values with another '/' are compared whole. */
    if (alen > applen && strncasecmp(a, app, applen) == 0 && !has_slash(a + applen, alen - applen)) {
        a += applen;
        alen -= applen;
    }
    if (blen > applen && strncasecmp(b, app, applen) == 0 && !has_slash(b + applen, blen - applen)) {
        b += applen;
        blen -= applen;
    }
    return alen == blen && strncasecmp(a, b, alen) == 0 && memchr(a, '\0', alen) == NULL &&
           memchr(b, '\0', blen) == NULL;
}

/* crit, b64, typ and kid: everything in the header besides alg. */
static ajw_reason_e check_header_members(ajw_jws_t *t, const hview_t *h,
                                         const ajw_policy_t *pol, ajw_error_t *err)
{
    ajw_reason_e rv;

    /* We implement no extension, so any crit list names one we don't know. */
    if (h->crit)
        return ajw_error_set(err, AJW_R_UNSUPPORTED, "header crit is not supported");
    /* RFC 7797: even b64:true is refused, a JWT never needs the member. */
    if (h->b64)
        return ajw_error_set(err, AJW_R_UNSUPPORTED, "header b64 (RFC 7797) is not supported");
    if (h->typ.kind == 2)
        return ajw_error_set(err, AJW_R_MALFORMED, "header typ is not a string");
    rv = typ_allowed(h->typ.s, h->typ.len, pol, err);
    if (rv != AJW_OK)
        return rv;
    if (h->kid.kind == 2)
        return ajw_error_set(err, AJW_R_MALFORMED, "header kid is not a string");
    t->typ = h->typ.s;
    t->typ_len = h->typ.len;
    t->kid = h->kid.s;
    t->kid_len = h->kid.len;
    return AJW_OK;
}

ajw_reason_e ajw_jws_check_header(const json_t *header, const ajw_policy_t *pol,
                                  ajw_error_t *err)
{
    ajw_jws_t t;
    hview_t h;
    ajw_reason_e rv;
    memset(&t, 0, sizeof(t));
    hview_tree(&h, header);
    rv = check_alg(&t, &h, pol, err);
    if (rv == AJW_OK)
        rv = check_header_members(&t, &h, pol, err);
    return rv;
}

static ajw_reason_e parse_header(ajw_jws_t *t, const jws_parts_t *pt, size_t max_len,
                                 int mode, const ajw_policy_t *pol, apr_pool_t *p,
                                 ajw_error_t *err)
{
    unsigned char *buf;
    size_t len;
    hview_t h;
    ajw_reason_e rv = decode_part(&buf, &len, pt->part[0], pt->len[0], "header", p, err);

    if (rv != AJW_OK)
        return rv;
    if (mode == AJW_JWS_DOC_ALL) {
        const ajw_val_t *d;
        size_t n;
        ajw_error_t jerr;
        rv = ajw_json_parse_doc(&d, &n, (const char *)buf, len, max_len, AJW_MAX_JSON_DEPTH, p,
                                &jerr);
        if (rv != AJW_OK)
            return ajw_error_set(err, rv, "token header: %s", jerr.text);
        hview_doc(&h, d);
    }
    else {
        rv = parse_json_part(&t->header, buf, len, max_len, "header", p, err);
        if (rv != AJW_OK)
            return rv;
        hview_tree(&h, t->header);
    }
    rv = check_alg(t, &h, pol, err);
    if (rv == AJW_OK)
        rv = check_header_members(t, &h, pol, err);
    return rv;
}

static ajw_reason_e parse_payload(ajw_jws_t *t, const jws_parts_t *pt, size_t max_len,
                                  int require_object, apr_pool_t *p, ajw_error_t *err)
{
    unsigned char *buf;
    size_t len;
    const json_t *iss;
    ajw_reason_e rv = decode_part(&buf, &len, pt->part[1], pt->len[1], "payload", p, err);

    if (rv != AJW_OK)
        return rv;
    t->payload = buf;
    t->payload_len = len;
    if (!require_object)
        return AJW_OK;
    if (require_object == AJW_JWS_DOC || require_object == AJW_JWS_DOC_ALL) {
        ajw_error_t jerr;
        rv = ajw_json_parse_doc(&t->doc, &t->doc_size, (const char *)buf, len, max_len,
                                AJW_MAX_JSON_DEPTH, p, &jerr);
        if (rv != AJW_OK)
            return ajw_error_set(err, rv, "token payload: %s", jerr.text);
        t->iss = ajw_val_get_string(t->doc, "iss", NULL);
        return AJW_OK;
    }
    rv = parse_json_part(&t->claims, buf, len, max_len, "payload", p, err);
    if (rv == AJW_OK) {
        iss = json_object_get(t->claims, "iss");
        t->iss = json_is_string(iss) ? json_string_value(iss) : NULL;
    }
    return rv;
}

ajw_reason_e ajw_jws_parse_ex(ajw_jws_t **out, const char *token, size_t len,
                              const ajw_policy_t *pol, int require_object_payload,
                              apr_pool_t *p, ajw_error_t *err)
{
    size_t max_len = pol->max_token_len ? pol->max_token_len : AJW_MAX_TOKEN_LEN_DEFAULT;
    ajw_jws_t *t = NULL;
    jws_parts_t pt = { { NULL, NULL, NULL }, { 0, 0, 0 } };
    ajw_reason_e rv;

    *out = NULL;
    if (len > max_len) {
        rv = ajw_error_set(err, AJW_R_TOO_LARGE, "token of %zu bytes exceeds %zu", len, max_len);
        goto cleanup;
    }
    if (len > 0 && token[0] == '{') {
        rv = ajw_error_set(err, AJW_R_UNSUPPORTED, "JWS JSON serialization is not supported");
        goto cleanup;
    }
    rv = split_parts(&pt, token, len, err);
    if (rv != AJW_OK)
        goto cleanup;
    t = apr_pcalloc(p, sizeof(*t));
    rv = parse_header(t, &pt, max_len, require_object_payload, pol, p, err);
    if (rv == AJW_OK)
        rv = parse_payload(t, &pt, max_len, require_object_payload, p, err);
    /* Checked after the header so that an unsecured token ("alg":"none",
     * empty signature) is reported by its alg. */
    if (rv == AJW_OK && pt.len[2] == 0)
        rv = ajw_error_set(err, AJW_R_MALFORMED, "token has an empty signature part");
    if (rv == AJW_OK)
        rv = decode_part(&t->sig, &t->sig_len, pt.part[2], pt.len[2], "signature", p, err);
    if (rv == AJW_OK) {
        t->signing_input = (const unsigned char *)apr_pstrmemdup(
            p, token, pt.len[0] + 1 + pt.len[1]);
        t->signing_input_len = pt.len[0] + 1 + pt.len[1];
    }
cleanup:
    if (rv == AJW_OK)
        *out = t;
    return rv;
}

ajw_reason_e ajw_jws_parse(ajw_jws_t **out, const char *token, size_t len,
                           const ajw_policy_t *pol, apr_pool_t *p, ajw_error_t *err)
{
    return ajw_jws_parse_ex(out, token, len, pol, 1, p, err);
}

ajw_reason_e ajw_jws_check_cached(ajw_alg_e alg, const char *typ, const ajw_policy_t *pol,
                                  ajw_error_t *err)
{
    ajw_reason_e rv = alg_allowed(alg, pol, err);
    if (rv == AJW_OK)
        rv = typ_allowed(typ, typ ? strlen(typ) : 0, pol, err);
    return rv;
}

int ajw_jws_key_fits(const ajw_jws_t *t, const ajw_key_t *k)
{
    if (t->kid && !(k->kid && k->kid_len == t->kid_len && memcmp(k->kid, t->kid, t->kid_len) == 0))
        return 0;
    if (!ajw_crypt_alg_fits(t->alg, k->kty, k->crv))
        return 0;
    /* A JWK that names its alg is bound to it (RFC 7517 §4.4). */
    if (k->alg_name && k->alg != t->alg)
        return 0;
    if (k->use && strcmp(k->use, "sig") != 0)
        return 0;
    return k->can_verify;
}

ajw_reason_e ajw_jws_verify(const ajw_jws_t *t, const ajw_keyset_t *const *sets, int nsets,
                            const ajw_key_t **used, ajw_error_t *err)
{
    char q[AJW_QUOTE_MAX + 8];
    const char *kid;
    ajw_reason_e rv = AJW_R_NO_KEY;
    int s, i, tried = 0, internal = 0, capped = 0;

    if (used)
        *used = NULL;
    for (s = 0; s < nsets && rv != AJW_OK && !capped; s++) {
        const apr_array_header_t *keys = sets[s] ? sets[s]->keys : NULL;
        for (i = 0; keys && i < keys->nelts && rv != AJW_OK; i++) {
            const ajw_key_t *k = APR_ARRAY_IDX(keys, i, const ajw_key_t *);
            ajw_error_t cerr;
            if (!ajw_jws_key_fits(t, k))
                continue;
            /* A kid-less token costs one signature check per compatible key:
             * bounded, or each forged token could cost AJW_MAX_KEYS RSA verifies. */
            if (!t->kid && tried >= AJW_MAX_NOKID_TRIES) {
                capped = 1;
                break;
            }
            tried++;
            rv = ajw_crypt_verify(t->alg, k->pkey, t->signing_input, t->signing_input_len,
                                  t->sig, t->sig_len, &cerr);
            internal |= rv == AJW_R_INTERNAL;
            if (rv == AJW_OK && used)
                *used = k;
        }
    }
    if (rv == AJW_OK) {
        if (err) {
            err->code = AJW_OK;
            err->text[0] = '\0';
        }
        return rv;
    }
    kid = t->kid ? printable(q, sizeof(q), t->kid, t->kid_len) : NULL;   /* for the text */
    if (tried == 0)
        rv = ajw_error_set(err, AJW_R_NO_KEY, "no key fits kid %s%s%s and alg %s",
                           kid ? "'" : "(none)", kid ? kid : "", kid ? "'" : "",
                           ajw_alg_name(t->alg));
    else
        rv = ajw_error_set(err, internal ? AJW_R_INTERNAL : AJW_R_BAD_SIGNATURE,
                           "signature %s with %d key(s)%s for kid %s%s%s, alg %s",
                           internal ? "check failed" : "did not verify", tried,
                           capped ? " (no kid: only the first ones are tried)" : "",
                           kid ? "'" : "(none)", kid ? kid : "", kid ? "'" : "",
                           ajw_alg_name(t->alg));
    return rv;
}
