/* mod_auth_jwks_metrics.c — server-wide counters (lib/ajw_metrics.c) in
 * shared memory, shown three ways: SetHandler jwks-metrics (Prometheus text
 * format), a section of mod_status's server-status page (also ?auto), and
 * the "metrics" members of jwks-status?json (mod_auth_jwks_status.c).
 *
 * Where the counters live: one anonymous apr_shm segment, made by the parent
 * in post_config before it forks, in the *process* pool (which outlives
 * every configuration cycle) and found again through that pool's userdata
 * on each reload. So every child of every generation adds into the same
 * numbers with apr_atomic (no lock on the request path), children that
 * exit (MaxConnectionsPerChild, idle reaping) take nothing with them, and
 * graceful and plain restarts keep the counts; only stopping httpd resets
 * them. Chosen over the alternatives because it needs nothing else loaded:
 * ap_slotmem needs mod_slotmem_shm in the configuration and gives per-slot
 * records we would have to sum; socache is a key/value store with a lock
 * per access, not a place for atomic counters. */
#include <string.h>

#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_shm.h>
#include <apr_optional.h>
#include <apr_optional_hooks.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_main.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_status.h"

#include "ajw_json.h"
#include "ajw_keystore.h"
#include "ajw_metrics.h"
#include "mod_auth_jwks.h"

APLOG_USE_MODULE(auth_jwks);

#define SHM_KEY "mod_auth_jwks:metrics-shm"

/* The segment: from the process pool's userdata (a restart), else new.
 * NULL when none can be made. A segment too small for this code's layout
 * (an upgraded module under a restart) is replaced, counters lost. */
static void *shared_block(server_rec *s, size_t need)
{
    apr_pool_t *pp = s->process->pool;
    apr_shm_t *shm = NULL;
    apr_status_t rv;
    void *mem = NULL;

    apr_pool_userdata_get((void **)&shm, SHM_KEY, pp);
    if (shm && apr_shm_size_get(shm) < need)
        shm = NULL;
    if (!shm) {
        rv = apr_shm_create(&shm, need, NULL, pp);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, "metrics off: cannot create an "
                         "anonymous shared memory segment of %" APR_SIZE_T_FMT " bytes", need);
            goto cleanup;
        }
        apr_pool_userdata_set(shm, SHM_KEY, apr_pool_cleanup_null, pp);
    }
    mem = apr_shm_baseaddr_get(shm);
cleanup:
    return mem;
}

int ajw_mod_metrics_post_config(apr_pool_t *pconf, server_rec *s)
{
    ajw_metrics_t *m = NULL;
    size_t need = ajw_metrics_block_size();
    void *mem = shared_block(s, need);
    int i;

    ajw_metrics_set_current(NULL);
    if (!mem || ajw_metrics_attach(&m, mem, need, pconf) != APR_SUCCESS)
        goto cleanup;
    for (i = 0; i < ajw_mod.all_urls->nelts; i++) {
        const char *url = APR_ARRAY_IDX(ajw_mod.all_urls, i, ajw_url_t *)->url;
        apr_status_t rv = ajw_metrics_add_url(m, url);
        if (rv != APR_SUCCESS && ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "JWKS fetches of %s are not counted "
                         "in the metrics (%s)", url, rv == APR_ENOSPC
                         ? "more than " APR_STRINGIFY(AJW_METRICS_MAX_URLS) " URLs"
                         : "URL too long");
    }
    ajw_metrics_set_current(m);
cleanup:
    return OK;
}

/* ---- this process's view of the key sources ----------------------------------- */

/* One entry per distinct URL, in configuration order; refresh is the
 * shortest of the sections naming it (as the key store does). */
static int sources_view(apr_pool_t *p, ajw_metrics_source_t **out)
{
    apr_hash_t *seen = apr_hash_make(p);
    ajw_metrics_source_t *v;
    int i, n = 0, total = ajw_mod.all_urls ? ajw_mod.all_urls->nelts : 0;

    v = apr_pcalloc(p, sizeof(*v) * (size_t)(total > 0 ? total : 1));
    for (i = 0; i < total; i++) {
        const ajw_url_t *u = APR_ARRAY_IDX(ajw_mod.all_urls, i, ajw_url_t *);
        ajw_metrics_source_t *e;
        ajw_source_status_t st;
        if (!u->src)
            continue;
        e = apr_hash_get(seen, u->url, APR_HASH_KEY_STRING);
        if (e) {
            if (u->owner->refresh < e->refresh)
                e->refresh = u->owner->refresh;
            continue;
        }
        e = &v[n++];
        ajw_source_get_status(u->src, &st);
        e->url = u->url;
        e->loaded = st.loaded;
        /* newest fetch server-wide (shared copy included), else this process's */
        e->last_success = st.fetched ? st.fetched : st.last_success;
        e->refresh = u->owner->refresh;
        apr_hash_set(seen, u->url, APR_HASH_KEY_STRING, e);
    }
    *out = v;
    return n;
}

/* ---- SetHandler jwks-metrics --------------------------------------------------- */

static int metrics_handler(request_rec *r)
{
    ajw_metrics_source_t *srcs;
    int n;
    if (!r->handler || strcmp(r->handler, "jwks-metrics"))
        return DECLINED;
    ap_allow_methods(r, REPLACE_ALLOW, "GET", NULL);
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    n = sources_view(r->pool, &srcs);
    ap_rputs(ajw_metrics_prometheus(ajw_metrics_current(), srcs, n, apr_time_now(), r->pool), r);
    return OK;
}

/* ---- mod_status ---------------------------------------------------------------- */

static apr_uint64_t refused_total(const ajw_metrics_totals_t *t)
{
    apr_uint64_t sum = 0;
    unsigned i;
    for (i = 1; i < AJW_MR__COUNT; i++)
        sum += t->refused[i];
    return sum;
}

static void status_auto(request_rec *r, const ajw_metrics_totals_t *t,
                        const ajw_metrics_source_t *srcs, int n, apr_time_t now)
{
    unsigned i;
    int k;
    ap_rprintf(r, "AuthJWKSRequestsAccepted: %" APR_UINT64_T_FMT "\n"
               "AuthJWKSRequestsRefused: %" APR_UINT64_T_FMT "\n", t->accepted, refused_total(t));
    for (i = 1; i < AJW_MR__COUNT; i++)
        ap_rprintf(r, "AuthJWKSRefused_%s: %" APR_UINT64_T_FMT "\n",
                   ajw_metrics_refusal_name(i), t->refused[i]);
    ap_rprintf(r, "AuthJWKSTokenCacheHits: %" APR_UINT64_T_FMT "\n"
               "AuthJWKSTokenCacheMisses: %" APR_UINT64_T_FMT "\nAuthJWKSSources: %d\n",
               t->cache_hits, t->cache_misses, n);
    for (k = 0; k < n; k++) {
        ajw_metrics_url_t u;
        ajw_metrics_read_url(ajw_metrics_current(), srcs[k].url, &u);
        ap_rprintf(r, "AuthJWKSSource%dURL: %s\nAuthJWKSSource%dLoaded: %d\n"
                   "AuthJWKSSource%dAgeSeconds: %" APR_INT64_T_FMT "\n"
                   "AuthJWKSSource%dStaleSeconds: %" APR_INT64_T_FMT "\n"
                   "AuthJWKSSource%dFetches200: %" APR_UINT64_T_FMT "\n"
                   "AuthJWKSSource%dFetches304: %" APR_UINT64_T_FMT "\n"
                   "AuthJWKSSource%dFetchErrors: %" APR_UINT64_T_FMT "\n"
                   "AuthJWKSSource%dLastFetchSeconds: %.6f\n",
                   k + 1, srcs[k].url, k + 1, srcs[k].loaded ? 1 : 0,
                   k + 1, (apr_int64_t)ajw_metrics_age(&srcs[k], now),
                   k + 1, (apr_int64_t)ajw_metrics_stale(&srcs[k], now),
                   k + 1, u.fetches[AJW_MF_200], k + 1, u.fetches[AJW_MF_304],
                   k + 1, u.fetches[AJW_MF_ERROR],
                   k + 1, (double)u.last_duration / (double)APR_USEC_PER_SEC);
    }
}

static void status_html(request_rec *r, const ajw_metrics_totals_t *t,
                        const ajw_metrics_source_t *srcs, int n, apr_time_t now)
{
    unsigned i;
    int k;
    ap_rprintf(r, "<hr />\n<h2>mod_auth_jwks</h2>\n<dl><dt>Tokens accepted: %" APR_UINT64_T_FMT
               "</dt>\n<dt>Refused: %" APR_UINT64_T_FMT "</dt>\n", t->accepted, refused_total(t));
    for (i = 1; i < AJW_MR__COUNT; i++)
        if (t->refused[i])
            ap_rprintf(r, "<dd>%s: %" APR_UINT64_T_FMT "</dd>\n", ajw_metrics_refusal_name(i),
                       t->refused[i]);
    ap_rprintf(r, "<dt>Token cache: %" APR_UINT64_T_FMT " hits, %" APR_UINT64_T_FMT
               " misses</dt></dl>\n", t->cache_hits, t->cache_misses);
    if (n == 0)
        return;
    ap_rputs("<table border=\"0\"><tr><th>JWKS URL</th><th>loaded</th><th>age (s)</th>"
             "<th>stale (s)</th><th>fetches 200</th><th>304</th><th>errors</th>"
             "<th>last fetch (s)</th></tr>\n", r);
    for (k = 0; k < n; k++) {
        ajw_metrics_url_t u;
        ajw_metrics_read_url(ajw_metrics_current(), srcs[k].url, &u);
        ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%" APR_INT64_T_FMT "</td><td>%"
                   APR_INT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                   "</td><td>%" APR_UINT64_T_FMT "</td><td>%.3f</td></tr>\n",
                   ap_escape_html(r->pool, srcs[k].url), srcs[k].loaded ? "yes" : "no",
                   (apr_int64_t)ajw_metrics_age(&srcs[k], now),
                   (apr_int64_t)ajw_metrics_stale(&srcs[k], now),
                   u.fetches[AJW_MF_200], u.fetches[AJW_MF_304], u.fetches[AJW_MF_ERROR],
                   (double)u.last_duration / (double)APR_USEC_PER_SEC);
    }
    ap_rputs("</table>\n", r);
}

/* mod_status's optional hook: runs only when mod_status is loaded. */
static int status_hook(request_rec *r, int flags)
{
    ajw_metrics_totals_t t;
    ajw_metrics_source_t *srcs;
    int n = sources_view(r->pool, &srcs);
    apr_time_t now = apr_time_now();
    ajw_metrics_read(ajw_metrics_current(), &t);
    if (flags & AP_STATUS_SHORT)
        status_auto(r, &t, srcs, n, now);
    else
        status_html(r, &t, srcs, n, now);
    return OK;
}

/* ---- jwks-status?json ------------------------------------------------------------ */

json_t *ajw_mod_metrics_json(void)
{
    ajw_metrics_totals_t t;
    json_t *o, *refused = json_object();
    unsigned i;
    ajw_metrics_read(ajw_metrics_current(), &t);
    for (i = 1; i < AJW_MR__COUNT; i++)
        json_object_set_new(refused, ajw_metrics_refusal_name(i),
                            json_integer((json_int_t)t.refused[i]));
    o = json_pack("{s:b, s:I, s:I, s:o, s:I, s:I}",
                  "shared", ajw_metrics_current() != NULL,
                  "since", (json_int_t)apr_time_sec(t.since),
                  "requests_accepted", (json_int_t)t.accepted,
                  "requests_refused", refused,
                  "token_cache_hits", (json_int_t)t.cache_hits,
                  "token_cache_misses", (json_int_t)t.cache_misses);
    return o;
}

json_t *ajw_mod_metrics_url_json(const char *url, int loaded, apr_time_t last_success,
                                 apr_interval_time_t refresh)
{
    ajw_metrics_source_t s;
    ajw_metrics_url_t u;
    apr_time_t now = apr_time_now();
    long long age, stale;
    s.url = url;
    s.loaded = loaded;
    s.last_success = last_success;
    s.refresh = refresh;
    age = ajw_metrics_age(&s, now);
    stale = ajw_metrics_stale(&s, now);
    ajw_metrics_read_url(ajw_metrics_current(), url, &u);
    return json_pack("{s:{s:I, s:I, s:I}, s:I, s:f, s:I, s:o, s:o}",
                     "fetches", "200", (json_int_t)u.fetches[AJW_MF_200],
                     "304", (json_int_t)u.fetches[AJW_MF_304],
                     "error", (json_int_t)u.fetches[AJW_MF_ERROR],
                     "shared_refused", (json_int_t)u.shared_refused,
                     "last_fetch_duration", (double)u.last_duration / (double)APR_USEC_PER_SEC,
                     "last_fetch", (json_int_t)apr_time_sec(u.last_end),
                     "age", age >= 0 ? json_integer((json_int_t)age) : json_null(),
                     "stale", stale >= 0 ? json_integer((json_int_t)stale) : json_null());
}

apr_interval_time_t ajw_mod_metrics_refresh_of(const ajw_source_t *src)
{
    apr_interval_time_t best = 0;
    int i;
    for (i = 0; ajw_mod.all_urls && i < ajw_mod.all_urls->nelts; i++) {
        const ajw_url_t *u = APR_ARRAY_IDX(ajw_mod.all_urls, i, ajw_url_t *);
        if (u->src == src && (best == 0 || u->owner->refresh < best))
            best = u->owner->refresh;
    }
    return best;
}

void ajw_mod_metrics_register(apr_pool_t *p)
{
    (void)p;
    ap_hook_handler(metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}
