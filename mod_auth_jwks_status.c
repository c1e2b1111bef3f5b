/* mod_auth_jwks_status.c — SetHandler jwks-status: what the serving
 * process knows about each JWKS URL, as text or (?json) JSON.
 *
 * ?json is an array with one object per URL (each with a "metrics" object:
 * that URL's fetch counters and key-set age); ?json=2 is an object,
 * {"process": <pid>, "sources": <that array>, "metrics": <the server-wide
 * counters>}. The array form stays as it was for existing consumers. */
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_date.h>

#include "httpd.h"
#include "http_config.h"
#include "http_protocol.h"
#include "http_request.h"

#include "ajw_json.h"
#include "ajw_keystore.h"
#include "ajw_discovery.h"
#include "mod_auth_jwks.h"

static const char *fmt_time(request_rec *r, apr_time_t t)
{
    char *buf;
    if (!t)
        return "never";
    buf = apr_palloc(r->pool, APR_RFC822_DATE_LEN);
    apr_rfc822_date(buf, t);
    return buf;
}

/* Errors come from libcurl, OpenSSL and the network: keep them printable ASCII. */
static void ascii_only(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

int ajw_status_handler(request_rec *r)
{
    apr_hash_t *seen;
    const char *jwks_uri;
    int i, as_json, v2;
    json_t *arr;
    if (!r->handler || strcmp(r->handler, "jwks-status"))
        return DECLINED;
    ap_allow_methods(r, REPLACE_ALLOW, "GET", NULL);
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    v2 = r->args && !strcmp(r->args, "json=2");
    as_json = v2 || (r->args && !strcmp(r->args, "json"));
    ap_set_content_type(r, as_json ? "application/json" : "text/plain; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    seen = apr_hash_make(r->pool);
    arr = ajw_json_pool_own(json_array(), r->pool);
    if (!as_json)
        ap_rprintf(r, "mod_auth_jwks key sources in process %" APR_PID_T_FMT "\n",
                   getpid());
    for (i = 0; ajw_mod.all_urls && i < ajw_mod.all_urls->nelts; i++) {
        ajw_source_t *src = APR_ARRAY_IDX(ajw_mod.all_urls, i, ajw_url_t *)->src;
        ajw_source_status_t st;
        if (!src || apr_hash_get(seen, &src, sizeof(src)))
            continue;
        apr_hash_set(seen, apr_pmemdup(r->pool, &src, sizeof(src)), sizeof(src), src);
        ajw_source_get_status(src, &st);
        ascii_only(st.last_error);
        jwks_uri = ajw_discovery_jwks_uri(ajw_mod.fetcher, ajw_source_url(src), r->pool);
        if (as_json) {
            json_t *o = json_pack("{s:s, s:b, s:i, s:I, s:I, s:I, s:I, s:i, s:s, s:o}",
                "url", ajw_source_url(src), "loaded", st.loaded, "keys", st.nkeys,
                "generation", (json_int_t)st.generation,
                "last_success", (json_int_t)apr_time_sec(st.last_success),
                "last_attempt", (json_int_t)apr_time_sec(st.last_attempt),
                "next_attempt", (json_int_t)apr_time_sec(st.next_attempt),
                "failures", (int)st.failures, "last_error", st.last_error,
                "metrics", ajw_mod_metrics_url_json(ajw_source_url(src), st.loaded,
                                                    st.fetched ? st.fetched : st.last_success,
                                                    ajw_mod_metrics_refresh_of(src)));
            if (o) {
                json_object_set_new(o, "fetched",
                                    json_integer((json_int_t)apr_time_sec(st.fetched)));
                json_object_set_new(o, "stale", json_boolean(st.stale));
                json_object_set_new(o, "from_shared", json_boolean(st.from_shared));
                json_object_set_new(o, "jwks_uri", jwks_uri ? json_string(jwks_uri) : json_null());
                json_array_append_new(arr, o);
            }
            continue;
        }
        ap_rprintf(r, "\n%s\n  state:        %s, %d key(s), generation %" APR_UINT64_T_FMT "\n"
                   "  last success: %s\n  last attempt: %s\n  next attempt: %s\n"
                   "  failures:     %u in a row%s%s\n",
                   ajw_source_url(src),
                   st.loaded ? "loaded" : "NOT LOADED", st.nkeys, (apr_uint64_t)st.generation,
                   fmt_time(r, st.last_success), fmt_time(r, st.last_attempt),
                   fmt_time(r, st.next_attempt), st.failures,
                   st.last_error[0] ? ", last error: " : "", st.last_error);
        ap_rprintf(r, "  fetched:      %s (newest success of any process)%s%s\n",
                   fmt_time(r, st.fetched), st.from_shared ? ", keys from the shared copy" : "",
                   st.stale ? ", STALE (older than AuthJWKSMaxStale): refused" : "");
        if (jwks_uri)
            ap_rprintf(r, "  jwks_uri:     %s (from the issuer's metadata)\n", jwks_uri);
    }
    if (v2)
        arr = ajw_json_pool_own(json_pack("{s:I, s:O, s:o}", "process", (json_int_t)getpid(),
                                          "sources", arr, "metrics", ajw_mod_metrics_json()),
                                r->pool);
    if (as_json)
        ap_rputs(ajw_json_dump(arr, r->pool), r);
    return OK;
}

