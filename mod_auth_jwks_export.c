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

/* How many claims map to each variable / header name (header names folded
 * to lower case). Two claims that map to one name (`email_verified` and
 * `Email-Verified`) are both withheld: a user-editable claim must never
 * overwrite one the IdP vouches for. */
static apr_hash_t *name_counts(request_rec *r, json_t *claims, int headers, const char *prefix)
{
    apr_hash_t *h = apr_hash_make(r->pool);
    const char *key;
    json_t *v;
    json_object_foreach(claims, key, v) {
        const char *n = headers ? ajw_header_name(r->pool, prefix, key)
                                : ajw_env_name(r->pool, prefix, key);
        int *cnt;
        if (headers)
            ap_str_tolower((char *)n);
        cnt = apr_hash_get(h, n, APR_HASH_KEY_STRING);
        if (!cnt) {
            cnt = apr_pcalloc(r->pool, sizeof(*cnt));
            apr_hash_set(h, n, APR_HASH_KEY_STRING, cnt);
        }
        (*cnt)++;
    }
    return h;
}

static int name_unique(apr_pool_t *p, apr_hash_t *counts, const char *name, int fold)
{
    const int *cnt;
    if (fold) {
        char *low = apr_pstrdup(p, name);
        ap_str_tolower(low);
        name = low;
    }
    cnt = apr_hash_get(counts, name, APR_HASH_KEY_STRING);
    return cnt && *cnt == 1;
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

void ajw_export_claims(request_rec *r, const ajw_dir_conf *c, json_t *claims, json_t *header)
{
    const char *key, *payload = ajw_json_dump(claims, r->pool);
    apr_hash_t *env_counts = name_counts(r, claims, 0, c->claim_prefix);
    apr_hash_t *hdr_counts = name_counts(r, claims, 1, c->header_prefix);
    json_t *v;
    json_object_foreach(claims, key, v) {
        const char *text, *en, *hn;
        if (!*key)
            continue;
        text = ajw_json_render(v, r->pool);
        en = ajw_env_name(r->pool, c->claim_prefix, key);
        hn = ajw_header_name(r->pool, c->header_prefix, key);
        if ((c->pass & PASS_ENV) && name_unique(r->pool, env_counts, en, 0))
            apr_table_set(r->subprocess_env, en, text);
        else if (c->pass & PASS_ENV)
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "claim %s not passed: another "
                          "claim maps to %s too", ajw_mod_log_item(r->pool, key), en);
        if ((c->pass & PASS_HEADERS) && name_unique(r->pool, hdr_counts, hn, 1))
            apr_table_set(r->headers_in, hn, ajw_header_value(r->pool, text));
        else if (c->pass & PASS_HEADERS)
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "claim %s not passed: another "
                          "claim maps to header %s too", ajw_mod_log_item(r->pool, key), hn);
    }
    if (c->pass & PASS_ENV) {
        const char *kid = ajw_json_get_string(header, "kid", NULL);
        apr_table_set(r->subprocess_env, "JWT_CLAIMS", payload);
        apr_table_set(r->subprocess_env, "JWT_ALG", ajw_json_get_string(header, "alg", NULL));
        if (kid)
            apr_table_set(r->subprocess_env, "JWT_KID", kid);
    }
    if (c->pass & PASS_HEADERS)
        apr_table_set(r->headers_in, AJW_CLAIMS_HEADER,
                      ajw_b64url_encode((const unsigned char *)payload, strlen(payload),
                                        r->pool));
    export_mapped(r, c->map_headers, 1, claims);
    export_mapped(r, c->map_envs, 0, claims);
}

