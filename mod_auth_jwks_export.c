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

/* Where one claim's exports go: into r's tables, or as records of a
 * rendering (ajw_export_render), or both. */
typedef struct sink_t {
    request_rec *r;
    apr_array_header_t *rec;      /* rendering records, NULL when none is made */
    int apply;                    /* set r's tables */
} sink_t;

static void sink_put(sink_t *k, char kind, const char *name, const char *value)
{
    if (k->rec) {
        APR_ARRAY_PUSH(k->rec, const char *) = apr_pstrmemdup(k->r->pool, &kind, 1);
        APR_ARRAY_PUSH(k->rec, const char *) = name;
        APR_ARRAY_PUSH(k->rec, const char *) = value;
    }
    if (!k->apply)
        return;
    if (kind == 'E')
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
    if (!ajw_claim_name_exportable(key)) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "claim %s not exported under the prefix: "
                      "only names of a-z, 0-9 and _ map one to one (JWT_CLAIMS has it; "
                      "AuthJWKSClaimEnv/AuthJWKSClaimHeader [name] can pass it)",
                      ajw_mod_log_item(r->pool, key));
        return;
    }
    if (!(text = ajw_claim_text(v, r->pool)))
        return;                                  /* null: as if absent */
    if (env) {
        name = ajw_env_name(r->pool, c->claim_prefix, key);
        if (ajw_env_name_reserved(name))
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "claim %s not exported: %s is the "
                          "module's own", key, name);
        else
            sink_put(k, 'E', name, text);
    }
    if (hdr) {
        name = ajw_header_name(r->pool, c->header_prefix, key);
        if (ajw_header_name_reserved(name))
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "claim %s not exported: header %s is "
                          "the module's own", key, name);
        else
            sink_put(k, 'H', name, ajw_header_value(r->pool, text));
    }
}

/* A rendering is made for one way of exporting: these settings of c. */
static const char *render_ident(apr_pool_t *p, const ajw_dir_conf *c)
{
    return apr_psprintf(p, "%d\037%s\037%s", c->pass, c->claim_prefix ? c->claim_prefix : "",
                        c->header_prefix ? c->header_prefix : "");
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
                               const apr_array_header_t *rec, size_t *len)
{
    const char *ident = render_ident(r->pool, c);
    size_t n = strlen(ident) + 1;
    char *out, *o;
    int i;
    for (i = 0; i + 2 < rec->nelts; i += 3) {
        size_t nl = strlen(APR_ARRAY_IDX(rec, i + 1, const char *));
        size_t vl = strlen(APR_ARRAY_IDX(rec, i + 2, const char *));
        n += 1 + len_size(nl) + len_size(vl) + nl + 1 + vl + 1;
    }
    out = o = apr_palloc(r->pool, n);
    memcpy(o, ident, strlen(ident) + 1);
    o += strlen(ident) + 1;
    for (i = 0; i + 2 < rec->nelts; i += 3) {
        const char *name = APR_ARRAY_IDX(rec, i + 1, const char *);
        const char *value = APR_ARRAY_IDX(rec, i + 2, const char *);
        size_t nl = strlen(name), vl = strlen(value);
        *o++ = APR_ARRAY_IDX(rec, i, const char *)[0];
        o = len_put(len_put(o, nl), vl);
        memcpy(o, name, nl + 1);
        o += nl + 1;
        memcpy(o, value, vl + 1);
        o += vl + 1;
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

/* The module's own names: JWT_CLAIMS (the claims' JSON), JWT_ALG, JWT_KID
 * (absent when the token has no kid) and the X-JWT-Claims header. */
static void export_own(sink_t *k, const ajw_dir_conf *c, const char *payload, const char *alg,
                       const char *kid)
{
    request_rec *r = k->r;
    int env = (c->pass & PASS_ENV) != 0, hdr = (c->pass & PASS_HEADERS) != 0;
    if (env) {
        const char *kt = kid ? ajw_string_text(kid, strlen(kid), r->pool) : NULL;
        if (k->apply) {
            apr_table_set(r->subprocess_env, "JWT_CLAIMS", payload);
            apr_table_set(r->subprocess_env, "JWT_ALG", alg);
            if (kt) /* the IdP's, yet rendered like a claim: no control character */
                apr_table_setn(r->subprocess_env, "JWT_KID", kt);
            else
                apr_table_unset(r->subprocess_env, "JWT_KID");
        }
        if (k->rec) {
            APR_ARRAY_PUSH(k->rec, const char *) = "e";
            APR_ARRAY_PUSH(k->rec, const char *) = "JWT_CLAIMS";
            APR_ARRAY_PUSH(k->rec, const char *) = payload;
            APR_ARRAY_PUSH(k->rec, const char *) = "e";
            APR_ARRAY_PUSH(k->rec, const char *) = "JWT_ALG";
            APR_ARRAY_PUSH(k->rec, const char *) = alg;
            if (kt) {
                APR_ARRAY_PUSH(k->rec, const char *) = "e";
                APR_ARRAY_PUSH(k->rec, const char *) = "JWT_KID";
                APR_ARRAY_PUSH(k->rec, const char *) = kt;
            }
        }
    }
    if (hdr) {
        const char *b = ajw_b64url_encode((const unsigned char *)payload, strlen(payload),
                                          r->pool);
        if (k->apply)
            apr_table_set(r->headers_in, AJW_CLAIMS_HEADER, b);
        if (k->rec) {
            APR_ARRAY_PUSH(k->rec, const char *) = "h";
            APR_ARRAY_PUSH(k->rec, const char *) = AJW_CLAIMS_HEADER;
            APR_ARRAY_PUSH(k->rec, const char *) = b;
        }
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
    k.apply = 1;
    if (env || hdr) {
        ajw_val_foreach_member(claims, key, v)
            export_one(&k, c, env, hdr, key, v);
    }
    export_mapped(r, c->map_headers, 1, claims);
    export_mapped(r, c->map_envs, 0, claims);
    if (env || hdr)
        export_own(&k, c, ajw_claim_json(claims, r->pool), alg, kid);
}

const char *ajw_export_render(request_rec *r, const ajw_dir_conf *c, const ajw_val_t *claims,
                              const char *alg, const char *kid, size_t *len)
{
    int env = (c->pass & PASS_ENV) != 0, hdr = (c->pass & PASS_HEADERS) != 0;
    const char *key;
    const ajw_val_t *v;
    sink_t k;

    *len = 0;
    if (!claims)
        return NULL;
    k.r = r;
    k.rec = apr_array_make(r->pool, 32, sizeof(const char *));
    k.apply = 0;
    if (env || hdr) {
        ajw_val_foreach_member(claims, key, v)
            export_one(&k, c, env, hdr, key, v);
        export_own(&k, c, ajw_claim_json(claims, r->pool), alg, kid);
    }
    return render_pack(r, c, k.rec, len);
}
