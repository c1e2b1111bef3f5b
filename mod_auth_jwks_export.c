/* mod_auth_jwks_export.c — how verified claims reach the application:
 * environment variables for CGI, SSI and mod_rewrite (AuthJWKSClaimPrefix),
 * request headers for proxied apps (AuthJWKSHeaderPrefix), and the whole
 * payload as JWT_CLAIMS / X-JWT-Claims. Only claims whose names map one to
 * one are exported under the prefixes, values are rendered as one
 * unambiguous text without control characters (lib/ajw_names), headers are
 * percent-encoded on top, and the module's own names are set last, never
 * from a claim. docs/claims.md is the application developer's view. */
#include <string.h>
#include <strings.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "ajw_b64.h"
#include "ajw_json.h"
#include "ajw_require.h"
#include "ajw_names.h"
#include "mod_auth_jwks.h"
#include "mod_auth_jwks_request.h"

APLOG_USE_MODULE(auth_jwks);

/* AuthJWKSClaimHeader / AuthJWKSClaimEnv: whatever AuthJWKSPassClaims
 * says, with the same rendering; an absent claim sets nothing (the
 * client's header of that name was removed before). */
static void export_mapped(request_rec *r, const apr_array_header_t *maps, int header,
                          const ajw_val_t *claims)
{
    int i;
    for (i = 0; i < maps->nelts; i++) {
        const ajw_claim_map_t *m = &APR_ARRAY_IDX(maps, i, ajw_claim_map_t);
        const char *text = ajw_claim_text(ajw_claim_ref_get(m->ref, claims), r->pool);
        if (!text)
            continue;
        if (header)
            apr_table_set(r->headers_in, m->name, ajw_header_value(r->pool, text));
        else
            apr_table_set(r->subprocess_env, m->name, text);
    }
}

/* One record of a rendering: what sink_put would have set. */
typedef struct rec_t {
    char kind;                    /* 'E' 'H' prefixed claims, 'e' 'h' the module's own */
    const char *name, *value;     /* the value may point into the claims document */
    size_t nlen, vlen;
} rec_t;

/* Where one claim's exports go: into r's tables, or as records of a
 * rendering (ajw_export_render), never both. */
typedef struct sink_t {
    request_rec *r;
    apr_array_header_t *rec;      /* rendering records (rec_t), NULL when r's tables are set */
} sink_t;

static void sink_put(sink_t *k, char kind, const char *name, size_t nlen, const char *value,
                     size_t vlen)
{
    if (k->rec) {
        rec_t *e = apr_array_push(k->rec);
        e->kind = kind;
        e->name = name;
        e->nlen = nlen;
        e->value = value;
        e->vlen = vlen;
    }
    else if (kind == 'E' || kind == 'e')
        apr_table_setn(k->r->subprocess_env, name, value);
    else
        apr_table_setn(k->r->headers_in, name, value);
}

/* One top-level claim under the prefixes: withheld (debug line) when its
 * name does not map one to one, or would take a name the module sets. */
static void export_one(sink_t *k, const ajw_dir_conf *c, int env, int hdr,
                       const char *key, const ajw_val_t *v)
{
    request_rec *r = k->r;
    const char *text, *name;
    size_t tlen = 0;
    if (!ajw_claim_name_exportable(key)) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "claim %s not exported under the prefix: "
                      "only names of a-z, 0-9 and _ map one to one (JWT_CLAIMS has it; "
                      "AuthJWKSClaimEnv/AuthJWKSClaimHeader [name] can pass it)",
                      ajw_mod_log_item(r->pool, key));
        return;
    }
    /* A rendering copies the texts (render_pack): a plain string claim is
     * then read where it is, in the document */
    text = k->rec ? ajw_claim_text_ref(v, r->pool, &tlen) : ajw_claim_text(v, r->pool);
    if (!text)
        return;                                  /* null: as if absent */
    if (env) {
        name = ajw_env_name(r->pool, c->claim_prefix, key);
        if (ajw_env_name_reserved(name))
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "claim %s not exported: %s is the "
                          "module's own", key, name);
        else
            sink_put(k, 'E', name, strlen(name), text, k->rec ? tlen : 0);
    }
    if (hdr) {
        name = ajw_header_name(r->pool, c->header_prefix, key);
        if (ajw_header_name_reserved(name))
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "claim %s not exported: header %s is "
                          "the module's own", key, name);
        else {
            const char *hv = ajw_header_value(r->pool, text);
            sink_put(k, 'H', name, strlen(name), hv, strlen(hv));
        }
    }
}

/* A rendering is made for one way of exporting: these settings of c. */
static const char *render_ident(apr_pool_t *p, const ajw_dir_conf *c)
{
    char pass[2] = { (char)('0' + c->pass), '\0' };   /* a few bits: one digit */
    return apr_pstrcat(p, pass, "\037", c->claim_prefix ? c->claim_prefix : "", "\037",
                       c->header_prefix ? c->header_prefix : "", NULL);
}

/* Does rendering (len bytes) start with c's ident? Compared in place. */
static const char *render_body(const char *render, size_t len, const ajw_dir_conf *c)
{
    const char *p = render, *end = render + len;
    const char *cp = c->claim_prefix ? c->claim_prefix : "";
    const char *hp = c->header_prefix ? c->header_prefix : "";
    size_t n;
    if (!render || len < 2 || *p != '0' + c->pass || p[1] != '\037')
        return NULL;
    p += 2;
    n = strlen(cp);
    if ((size_t)(end - p) < n + 1 || memcmp(p, cp, n) || p[n] != '\037')
        return NULL;
    p += n + 1;
    n = strlen(hp);
    if ((size_t)(end - p) < n + 1 || memcmp(p, hp, n) || p[n] != '\0')
        return NULL;
    return p + n + 1;
}

/* A record's lengths are written in 7-bit groups, low first, the high bit
 * saying another group follows: one byte for anything under 128 (nearly
 * every name and value), so a record costs its bytes and three more. */
static size_t len_size(size_t n)
{
    size_t k = 1;
    while (n >= 0x80) {
        n >>= 7;
        k++;
    }
    return k;
}

static char *len_put(char *o, size_t n)
{
    while (n >= 0x80) {
        *o++ = (char)(0x80 | (n & 0x7f));
        n >>= 7;
    }
    *o++ = (char)n;
    return o;
}

static const char *len_get(const char *p, size_t *n)
{
    unsigned shift = 0;
    size_t v = 0;
    unsigned char b;
    do {
        b = (unsigned char)*p++;
        v |= (size_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    *n = v;
    return p;
}

/* The prefixed claims and the module's own names in one block of r->pool:
 * ident NUL, then records of kind (1 byte), the name's and the value's
 * lengths (len_put), name NUL, value NUL. */
static const char *render_pack(request_rec *r, const ajw_dir_conf *c,
                               const apr_array_header_t *recs, size_t *len)
{
    const char *ident = render_ident(r->pool, c);
    size_t il = strlen(ident) + 1, n = il;
    const rec_t *e = (const rec_t *)recs->elts;
    char *out, *o;
    int i;
    for (i = 0; i < recs->nelts; i++)
        n += 1 + len_size(e[i].nlen) + len_size(e[i].vlen) + e[i].nlen + 1 + e[i].vlen + 1;
    out = o = apr_palloc(r->pool, n);
    memcpy(o, ident, il);
    o += il;
    for (i = 0; i < recs->nelts; i++) {
        *o++ = e[i].kind;
        o = len_put(len_put(o, e[i].nlen), e[i].vlen);
        memcpy(o, e[i].name, e[i].nlen);
        o += e[i].nlen;
        *o++ = '\0';
        memcpy(o, e[i].value, e[i].vlen);
        o += e[i].vlen;
        *o++ = '\0';
    }
    *len = n;
    return out;
}

/* Does t hold a key starting with prefix (case-insensitively)? */
static int any_key_with_prefix(const apr_table_t *t, const char *prefix)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    size_t n = strlen(prefix);
    int i, first = apr_tolower(*prefix);
    for (i = 0; i < arr->nelts; i++)
        if (e[i].key && apr_tolower(e[i].key[0]) == first && !strncasecmp(e[i].key, prefix, n))
            return 1;
    return 0;
}

/* Replay a rendering's records into r: 'E'/'H' prefixed claims before the
 * mappings, and with own = 1 'e'/'h' the module's own names after them.
 * The prefixed names of one rendering are distinct; when r has no name
 * under the prefix yet (the common case: the client's were stripped),
 * they are appended, not set: apr_table_setn compares every key sharing
 * the first four letters ("JWT_"), which for a dozen claims is a hundred
 * string compares a request. */
static void render_apply(request_rec *r, const ajw_dir_conf *c, const char *p,
                         const char *end, int own)
{
    int env_add = 0, hdr_add = 0;
    if (!own) {
        env_add = c->claim_prefix && !any_key_with_prefix(r->subprocess_env, c->claim_prefix);
        hdr_add = c->header_prefix && !any_key_with_prefix(r->headers_in, c->header_prefix);
    }
    while (p < end) {
        char kind = *p++;
        const char *name, *value;
        size_t nl, vl;
        name = len_get(len_get(p, &nl), &vl);
        value = name + nl + 1;
        p = value + vl + 1;
        if (own ? kind == 'e' : kind == 'E') {
            if (env_add)
                apr_table_addn(r->subprocess_env, name, value);
            else
                apr_table_setn(r->subprocess_env, name, value);
        }
        else if (own ? kind == 'h' : kind == 'H') {
            if (hdr_add)
                apr_table_addn(r->headers_in, name, value);
            else
                apr_table_setn(r->headers_in, name, value);
        }
    }
}

/* The module's own names: JWT_CLAIMS (the claims' JSON, plen bytes),
 * JWT_ALG, JWT_KID (absent when the token has no kid) and the X-JWT-Claims
 * header. */
static void export_own(sink_t *k, const ajw_dir_conf *c, const char *payload, size_t plen,
                       const char *alg, const char *kid)
{
    request_rec *r = k->r;
    int env = (c->pass & PASS_ENV) != 0, hdr = (c->pass & PASS_HEADERS) != 0;
    if (env) {
        /* the IdP's, yet rendered like a claim: no control character */
        const char *kt = kid ? ajw_string_text(kid, strlen(kid), r->pool) : NULL;
        if (!k->rec) {                 /* set, not added: a mapping may have taken them */
            apr_table_set(r->subprocess_env, "JWT_CLAIMS", payload);
            apr_table_set(r->subprocess_env, "JWT_ALG", alg);
            if (kt)
                apr_table_setn(r->subprocess_env, "JWT_KID", kt);
            else
                apr_table_unset(r->subprocess_env, "JWT_KID");
        }
        else {
            sink_put(k, 'e', "JWT_CLAIMS", 10, payload, plen);
            sink_put(k, 'e', "JWT_ALG", 7, alg, strlen(alg));
            if (kt)
                sink_put(k, 'e', "JWT_KID", 7, kt, strlen(kt));
        }
    }
    if (hdr) {
        const char *b = ajw_b64url_encode((const unsigned char *)payload, plen, r->pool);
        if (!k->rec)
            apr_table_set(r->headers_in, AJW_CLAIMS_HEADER, b);
        else
            sink_put(k, 'h', AJW_CLAIMS_HEADER, strlen(AJW_CLAIMS_HEADER), b, strlen(b));
    }
}

/* Mapped names first, the module's own last: whatever a claim or a mapping
 * set, JWT_CLAIMS, JWT_ALG, JWT_KID and X-JWT-Claims are the module's (and
 * JWT_KID is absent when the token has no kid). */
void ajw_export_claims(request_rec *r, const ajw_dir_conf *c, const ajw_val_t *claims,
                       const char *alg, const char *kid, const char *render,
                       size_t render_len)
{
    int env = (c->pass & PASS_ENV) != 0, hdr = (c->pass & PASS_HEADERS) != 0;
    const char *key, *body = render_body(render, render_len, c);
    const ajw_val_t *v;
    sink_t k;

    if (body) {                   /* rendered before, for these settings: replay */
        /* The module's own names first, while the tables are short: no
         * claim and no mapping can take them (ajw_names, the directives). */
        if (env && !kid)
            apr_table_unset(r->subprocess_env, "JWT_KID");
        render_apply(r, c, body, render + render_len, 1);
        render_apply(r, c, body, render + render_len, 0);
        export_mapped(r, c->map_headers, 1, claims);
        export_mapped(r, c->map_envs, 0, claims);
        return;
    }
    k.r = r;
    k.rec = NULL;
    if (env || hdr) {
        ajw_val_foreach_member(claims, key, v)
            export_one(&k, c, env, hdr, key, v);
    }
    export_mapped(r, c->map_headers, 1, claims);
    export_mapped(r, c->map_envs, 0, claims);
    if (env || hdr) {
        const char *json = ajw_claim_json(claims, r->pool);
        export_own(&k, c, json, strlen(json), alg, kid);
    }
}

const char *ajw_export_render(request_rec *r, const ajw_dir_conf *c, const ajw_val_t *claims,
                              const char *payload, size_t payload_len, const char *alg,
                              const char *kid, size_t *len)
{
    int env = (c->pass & PASS_ENV) != 0, hdr = (c->pass & PASS_HEADERS) != 0;
    const char *key;
    const ajw_val_t *v;
    sink_t k;

    *len = 0;
    if (!claims)
        return NULL;
    k.r = r;
    k.rec = apr_array_make(r->pool, 16, sizeof(rec_t));
    if (env || hdr) {
        const char *json = payload;
        size_t jlen = payload_len;
        ajw_val_foreach_member(claims, key, v)
            export_one(&k, c, env, hdr, key, v);
        /* compact JSON as most issuers write it is its own rendering */
        if (!payload || !ajw_claim_json_is_verbatim(payload, payload_len)) {
            json = ajw_claim_json(claims, r->pool);
            jlen = strlen(json);
        }
        export_own(&k, c, json, jlen, alg, kid);
    }
    return render_pack(r, c, k.rec, len);
}
