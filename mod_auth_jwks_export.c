/* mod_auth_jwks_export.c — how verified claims reach the application:
 * environment variables for CGI, SSI and mod_rewrite (AuthJWKSClaimPrefix),
 * request headers for proxied apps (AuthJWKSHeaderPrefix), and the whole
 * payload as JWT_CLAIMS / X-JWT-Claims. Only claims whose names map one to
 * one are exported under the prefixes, values are rendered as one
 * unambiguous text without control characters (lib/ajw_names), headers are
 * percent-encoded on top, and the module's own names are set last, never
 * from a claim. docs/claims.md is the application developer's view. */
#include <string.h>

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
                          json_t *claims)
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

/* One top-level claim under the prefixes: withheld (debug line) when its
 * name does not map one to one, or would take a name the module sets. */
static void export_one(request_rec *r, const ajw_dir_conf *c, int env, int hdr,
                       const char *key, const json_t *v)
{
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
            apr_table_setn(r->subprocess_env, name, text);
    }
    if (hdr) {
        name = ajw_header_name(r->pool, c->header_prefix, key);
        if (ajw_header_name_reserved(name))
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "claim %s not exported: header %s is "
                          "the module's own", key, name);
        else
            apr_table_setn(r->headers_in, name, ajw_header_value(r->pool, text));
    }
}

/* Mapped names first, the module's own last: whatever a claim or a mapping
 * set, JWT_CLAIMS, JWT_ALG, JWT_KID and X-JWT-Claims are the module's (and
 * JWT_KID is absent when the token has no kid). */
void ajw_export_claims(request_rec *r, const ajw_dir_conf *c, json_t *claims,
                       const char *claims_json, const char *alg, const char *kid)
{
    int env = (c->pass & PASS_ENV) != 0, hdr = (c->pass & PASS_HEADERS) != 0;
    const char *key, *payload;
    json_t *v;

    if (env || hdr) {
        json_object_foreach(claims, key, v)
            export_one(r, c, env, hdr, key, v);
    }
    export_mapped(r, c->map_headers, 1, claims);
    export_mapped(r, c->map_envs, 0, claims);
    if (!env && !hdr)
        return;
    payload = claims_json ? claims_json : ajw_claim_json(claims, r->pool);
    if (env) {
        apr_table_set(r->subprocess_env, "JWT_CLAIMS", payload);
        apr_table_set(r->subprocess_env, "JWT_ALG", alg);
        if (kid)   /* the IdP's, yet rendered like a claim: no control character */
            apr_table_setn(r->subprocess_env, "JWT_KID", ajw_string_text(kid, strlen(kid),
                                                                         r->pool));
        else
            apr_table_unset(r->subprocess_env, "JWT_KID");
    }
    if (hdr)
        apr_table_set(r->headers_in, AJW_CLAIMS_HEADER,
                      ajw_b64url_encode((const unsigned char *)payload, strlen(payload),
                                        r->pool));
}
