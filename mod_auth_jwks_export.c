/* mod_auth_jwks_export.c — how verified claims reach the application:
 * environment variables for CGI, SSI and mod_rewrite (AuthJWKSClaimPrefix),
 * request headers for proxied apps (AuthJWKSHeaderPrefix), and the whole
 * payload as JWT_CLAIMS / X-JWT-Claims. Names are folded so that a claim can
 * only ever name a variable or header under the prefix, values are encoded
 * so that a claim can never split a header, and two claims that fold to one
 * name are both withheld. */
#include <string.h>

#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_hash.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"

#include "ajw_b64.h"
#include "ajw_json.h"
#include "ajw_require.h"
#include "ajw_names.h"
#include "mod_auth_jwks.h"

APLOG_USE_MODULE(auth_jwks);

/* One claim on its way out: its rendering and the names it would take. */
typedef struct {
    const char *text;
    const char *env;            /* NULL unless claims go to the environment */
    const char *hdr;            /* NULL unless they go to headers */
    const char *hdr_folded;     /* hdr in lower case, for the collision check */
    int env_ok, hdr_ok;         /* its name is taken by no other claim */
} out_claim_t;

static const char *name_of(const out_claim_t *o, int headers)
{
    return headers ? o->hdr_folded : o->env;
}

/* Set env_ok / hdr_ok: a claim whose name another claim maps to as well
 * (`email_verified` and `Email-Verified`) is withheld with that other: a
 * user-editable claim must never overwrite one the IdP vouches for. Header
 * names are compared folded. A few claims are compared pairwise (cheaper
 * than a hash for a typical token's dozen); many go through a hash. */
static void mark_unique(apr_pool_t *p, out_claim_t *outs, int n, int headers)
{
    int i, j;
    if (n <= 24) {
        for (i = 0; i < n; i++) {
            int ok = 1;
            for (j = 0; j < n && ok; j++)
                ok = j == i || strcmp(name_of(&outs[i], headers), name_of(&outs[j], headers));
            *(headers ? &outs[i].hdr_ok : &outs[i].env_ok) = ok;
        }
    }
    else {
        apr_hash_t *h = apr_hash_make(p);
        for (i = 0; i < n; i++) {
            const char *name = name_of(&outs[i], headers);
            int *cnt = apr_hash_get(h, name, APR_HASH_KEY_STRING);
            if (!cnt) {
                cnt = apr_pcalloc(p, sizeof(*cnt));
                apr_hash_set(h, name, APR_HASH_KEY_STRING, cnt);
            }
            (*cnt)++;
        }
        for (i = 0; i < n; i++)
            *(headers ? &outs[i].hdr_ok : &outs[i].env_ok)
                = *(int *)apr_hash_get(h, name_of(&outs[i], headers), APR_HASH_KEY_STRING) == 1;
    }
}

/* AuthJWKSClaimHeader / AuthJWKSClaimEnv: whatever AuthJWKSPassClaims
 * says, with the same rendering; an absent claim sets nothing (the
 * client's header of that name was removed before). */
static void export_mapped(request_rec *r, const apr_array_header_t *maps, int header,
                          json_t *claims)
{
    int i;
    for (i = 0; i < maps->nelts; i++) {
        const ajw_claim_map_t *m = &APR_ARRAY_IDX(maps, i, ajw_claim_map_t);
        const json_t *v = ajw_claim_ref_get(m->ref, claims);
        const char *text;
        if (!v || json_is_null(v))
            continue;
        text = ajw_json_render(v, r->pool);
        if (header)
            apr_table_set(r->headers_in, m->name, ajw_header_value(r->pool, text));
        else
            apr_table_set(r->subprocess_env, m->name, text);
    }
}

void ajw_export_claims(request_rec *r, const ajw_dir_conf *c, json_t *claims,
                       const char *claims_json, const char *alg, const char *kid)
{
    int env = (c->pass & PASS_ENV) != 0, hdr = (c->pass & PASS_HEADERS) != 0;
    out_claim_t *outs;
    const char *key, *payload;
    json_t *v;
    int n = 0, i;

    if (env || hdr) {
        /* Names and renderings once; collisions judged over all of them. */
        outs = apr_palloc(r->pool, sizeof(*outs) * (json_object_size(claims) + 1));
        json_object_foreach(claims, key, v) {
            out_claim_t *o = &outs[n];
            char *folded;
            if (!*key)
                continue;
            o->text = ajw_json_render(v, r->pool);
            o->env = env ? ajw_env_name(r->pool, c->claim_prefix, key) : NULL;
            o->hdr = o->hdr_folded = NULL;
            if (hdr) {
                o->hdr = ajw_header_name(r->pool, c->header_prefix, key);
                o->hdr_folded = folded = apr_pstrdup(r->pool, o->hdr);
                ap_str_tolower(folded);
            }
            n++;
        }
        if (env)
            mark_unique(r->pool, outs, n, 0);
        if (hdr)
            mark_unique(r->pool, outs, n, 1);
        i = 0;
        /* Names and texts are this request's pool strings: set, not copied. */
        json_object_foreach(claims, key, v) {
            const out_claim_t *o = &outs[i];
            if (!*key)
                continue;
            i++;
            if (env && o->env_ok)
                apr_table_setn(r->subprocess_env, o->env, o->text);
            else if (env)
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "claim %s not passed: another "
                              "claim maps to %s too", ajw_mod_log_item(r->pool, key), o->env);
            if (hdr && o->hdr_ok)
                apr_table_setn(r->headers_in, o->hdr, ajw_header_value(r->pool, o->text));
            else if (hdr)
                ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "claim %s not passed: another "
                              "claim maps to header %s too", ajw_mod_log_item(r->pool, key),
                              o->hdr);
        }
        payload = claims_json ? claims_json : ajw_json_dump(claims, r->pool);
        if (env) {
            apr_table_set(r->subprocess_env, "JWT_CLAIMS", payload);
            apr_table_set(r->subprocess_env, "JWT_ALG", alg);
            if (kid)
                apr_table_set(r->subprocess_env, "JWT_KID", kid);
        }
        if (hdr)
            apr_table_set(r->headers_in, AJW_CLAIMS_HEADER,
                          ajw_b64url_encode((const unsigned char *)payload, strlen(payload),
                                            r->pool));
    }
    export_mapped(r, c->map_headers, 1, claims);
    export_mapped(r, c->map_envs, 0, claims);
}
