/* ajw_metrics.c — shared counters (layout, atomic updates) and their
 * Prometheus text exposition. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "ajw_metrics.h"

#define BLOCK_MAGIC   0x4d574a41u    /* "AJWM" */
#define BLOCK_VERSION 1u

/* One URL's numbers. `url` and `claimed` are written only in the
 * configuration phase (by the one process that configures); the rest with
 * apr_atomic from any process. */
typedef struct url_slot_t {
    volatile apr_uint64_t fetches[AJW_MF__COUNT];
    volatile apr_uint64_t last_duration;     /* microseconds */
    volatile apr_uint64_t last_end;          /* microseconds since the epoch */
    volatile apr_uint64_t shared_refused;    /* shared copies refused (MAC, format, time) */
    volatile apr_uint32_t last_status;
    apr_uint32_t claimed;                    /* attachment that last claimed it; 0 = free */
    char url[AJW_METRICS_URL_MAX];
} url_slot_t;

/* The shared block. Every counter is 64 bits (a 32-bit one wraps within
 * days at a few thousand requests a second) and 8-byte aligned. */
typedef struct block_t {
    apr_uint32_t magic;
    apr_uint32_t layout;                     /* see layout_id() */
    apr_uint64_t since;                      /* microseconds since the epoch */
    apr_uint32_t attaches;                   /* configuration phase only */
    apr_uint32_t pad;
    volatile apr_uint64_t accepted;
    volatile apr_uint64_t refused[AJW_MR__COUNT];
    volatile apr_uint64_t cache_hits;
    volatile apr_uint64_t cache_misses;
    url_slot_t urls[AJW_METRICS_MAX_URLS];
} block_t;

/* Process-local. `slots` (url → url_slot_t *) is filled in the
 * configuration phase and only read afterwards, so readers need no lock. */
struct ajw_metrics_t {
    block_t *b;
    apr_hash_t *slots;
    apr_pool_t *p;
    apr_uint32_t me;
    int formatted;
};

/* The handle counting uses. Set only in the configuration phase, before any
 * thread exists (like the log sink in ajw_util.c), read afterwards: no lock. */
static ajw_metrics_t *current;

/* Changes whenever the block's layout does, so that code of another version
 * (a module upgraded under a graceful restart) formats the block afresh
 * instead of misreading it. */
static apr_uint32_t layout_id(void)
{
    return (apr_uint32_t)(BLOCK_VERSION << 24) ^ (apr_uint32_t)sizeof(block_t)
           ^ (apr_uint32_t)(AJW_MR__COUNT << 16);
}

size_t ajw_metrics_block_size(void)
{
    return sizeof(block_t);
}

apr_status_t ajw_metrics_attach(ajw_metrics_t **out, void *mem, size_t size, apr_pool_t *p)
{
    ajw_metrics_t *m;
    block_t *b = mem;
    apr_status_t rv = APR_SUCCESS;

    *out = NULL;
    if (!b || size < sizeof(block_t) || ((apr_uintptr_t)mem & 7u)) {
        rv = APR_EINVAL;
        goto cleanup;
    }
    m = apr_pcalloc(p, sizeof(*m));
    m->b = b;
    m->p = p;
    m->slots = apr_hash_make(p);
    if (b->magic != BLOCK_MAGIC || b->layout != layout_id()) {
        memset(b, 0, sizeof(*b));
        b->magic = BLOCK_MAGIC;
        b->layout = layout_id();
        b->since = (apr_uint64_t)apr_time_now();
        m->formatted = 1;
    }
    m->me = ++b->attaches;
    if (m->me == 0)                          /* 0 means "free": skip it on wrap */
        m->me = ++b->attaches;
    *out = m;
cleanup:
    return rv;
}

int ajw_metrics_was_formatted(const ajw_metrics_t *m)
{
    return m ? m->formatted : 0;
}

static void clear_slot(url_slot_t *s, const char *url, apr_uint32_t me)
{
    int i;
    for (i = 0; i < AJW_MF__COUNT; i++)
        apr_atomic_set64(&s->fetches[i], 0);
    apr_atomic_set64(&s->last_duration, 0);
    apr_atomic_set64(&s->last_end, 0);
    apr_atomic_set32(&s->last_status, 0);
    apr_cpystrn(s->url, url, sizeof(s->url));
    s->claimed = me;
}

apr_status_t ajw_metrics_add_url(ajw_metrics_t *m, const char *url)
{
    url_slot_t *hit = NULL, *free_slot = NULL, *unclaimed = NULL;
    apr_status_t rv = APR_SUCCESS;
    int i;

    if (!m || !url || strlen(url) >= AJW_METRICS_URL_MAX) {
        rv = APR_EINVAL;
        goto cleanup;
    }
    for (i = 0; i < AJW_METRICS_MAX_URLS && !hit; i++) {
        url_slot_t *s = &m->b->urls[i];
        if (s->url[0] && !strcmp(s->url, url))
            hit = s;
        else if (!s->url[0] && !free_slot)
            free_slot = s;
        else if (s->url[0] && s->claimed != m->me && !unclaimed)
            unclaimed = s;
    }
    if (hit)
        hit->claimed = m->me;                /* counters kept */
    else if ((hit = free_slot ? free_slot : unclaimed) != NULL)
        clear_slot(hit, url, m->me);
    else {
        rv = APR_ENOSPC;
        goto cleanup;
    }
    apr_hash_set(m->slots, apr_pstrdup(m->p, url), APR_HASH_KEY_STRING, hit);
cleanup:
    return rv;
}

void ajw_metrics_set_current(ajw_metrics_t *m)
{
    current = m;
}

ajw_metrics_t *ajw_metrics_current(void)
{
    return current;
}

void ajw_metrics_accepted(void)
{
    if (current)
        apr_atomic_inc64(&current->b->accepted);
}

void ajw_metrics_refused(unsigned why)
{
    if (!current)
        return;
    if (why == (unsigned)AJW_OK || why >= AJW_MR__COUNT)
        why = (unsigned)AJW_R_INTERNAL;
    apr_atomic_inc64(&current->b->refused[why]);
}

void ajw_metrics_cache(int hit)
{
    if (current)
        apr_atomic_inc64(hit ? &current->b->cache_hits : &current->b->cache_misses);
}

static url_slot_t *slot_of(const ajw_metrics_t *m, const char *url)
{
    if (!m || !url)
        return NULL;
    return apr_hash_get(m->slots, url, APR_HASH_KEY_STRING);
}

void ajw_metrics_fetch_done(const char *url, int http_status, apr_interval_time_t duration)
{
    url_slot_t *s = slot_of(current, url);
    ajw_metrics_fetch_e oc = http_status == 200 ? AJW_MF_200
                           : http_status == 304 ? AJW_MF_304 : AJW_MF_ERROR;
    if (!s)
        return;
    apr_atomic_inc64(&s->fetches[oc]);
    apr_atomic_set64(&s->last_duration, (apr_uint64_t)(duration > 0 ? duration : 0));
    apr_atomic_set64(&s->last_end, (apr_uint64_t)apr_time_now());
    apr_atomic_set32(&s->last_status, oc == AJW_MF_ERROR ? 0u : (apr_uint32_t)http_status);
}

void ajw_metrics_shared_refused(const char *url)
{
    url_slot_t *s = slot_of(current, url);
    if (s)
        apr_atomic_inc64(&s->shared_refused);
}

void ajw_metrics_read(const ajw_metrics_t *m, ajw_metrics_totals_t *out)
{
    unsigned i;
    memset(out, 0, sizeof(*out));
    if (!m)
        return;
    out->since = (apr_time_t)m->b->since;
    out->accepted = apr_atomic_read64(&m->b->accepted);
    for (i = 0; i < AJW_MR__COUNT; i++)
        out->refused[i] = apr_atomic_read64(&m->b->refused[i]);
    out->cache_hits = apr_atomic_read64(&m->b->cache_hits);
    out->cache_misses = apr_atomic_read64(&m->b->cache_misses);
}

int ajw_metrics_read_url(const ajw_metrics_t *m, const char *url, ajw_metrics_url_t *out)
{
    url_slot_t *s = slot_of(m, url);
    int i;
    memset(out, 0, sizeof(*out));
    if (!s)
        return 0;
    for (i = 0; i < AJW_MF__COUNT; i++)
        out->fetches[i] = apr_atomic_read64(&s->fetches[i]);
    out->last_status = (int)apr_atomic_read32(&s->last_status);
    out->last_duration = (apr_interval_time_t)apr_atomic_read64(&s->last_duration);
    out->last_end = (apr_time_t)apr_atomic_read64(&s->last_end);
    out->shared_refused = apr_atomic_read64(&s->shared_refused);
    return 1;
}

const char *ajw_metrics_refusal_name(unsigned why)
{
    if (why == AJW_MR_BAD_REQUEST)
        return "bad_request";
    if (why == AJW_MR_NO_TOKEN)
        return "no_token";
    if (why == (unsigned)AJW_OK || why >= (unsigned)AJW_R__COUNT)
        return "unknown";
    return ajw_reason_name((ajw_reason_e)why);
}

long long ajw_metrics_age(const ajw_metrics_source_t *s, apr_time_t now)
{
    if (!s->loaded || !s->last_success)
        return -1;
    return now > s->last_success ? (long long)apr_time_sec(now - s->last_success) : 0;
}

long long ajw_metrics_stale(const ajw_metrics_source_t *s, apr_time_t now)
{
    long long age = ajw_metrics_age(s, now), period = (long long)apr_time_sec(s->refresh);
    if (age < 0)
        return -1;
    return age > period ? age - period : 0;
}

const char *ajw_metrics_label_escape(apr_pool_t *p, const char *s)
{
    char *out, *o;
    if (!s)
        return "";
    out = o = apr_palloc(p, 2 * strlen(s) + 1);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') {
            *o++ = '\\';
            *o++ = *s;
        }
        else if (*s == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        }
        else
            *o++ = *s;
    }
    *o = '\0';
    return out;
}

/* ---- the exposition --------------------------------------------------------- */

typedef struct expo_t {
    apr_array_header_t *parts;               /* const char * */
    apr_pool_t *p;
} expo_t;

static void add(expo_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(expo_t *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    APR_ARRAY_PUSH(e->parts, const char *) = apr_pvsprintf(e->p, fmt, ap);
    va_end(ap);
}

#define PFX "mod_auth_jwks_"

static void head(expo_t *e, const char *name, const char *type, const char *help)
{
    add(e, "# HELP " PFX "%s %s\n# TYPE " PFX "%s %s\n", name, help, name, type);
}

static void counter(expo_t *e, const char *name, const char *help, apr_uint64_t v)
{
    head(e, name, "counter", help);
    add(e, PFX "%s %" APR_UINT64_T_FMT "\n", name, v);
}

static void totals(expo_t *e, const ajw_metrics_t *m)
{
    ajw_metrics_totals_t t;
    unsigned i;
    ajw_metrics_read(m, &t);
    counter(e, "requests_accepted_total", "Authentications that accepted a token.", t.accepted);
    head(e, "requests_refused_total", "counter", "Authentications refused, by reason (the "
         "reason names of the error log, plus bad_request and no_token).");
    for (i = 1; i < AJW_MR__COUNT; i++)
        add(e, PFX "requests_refused_total{reason=\"%s\"} %" APR_UINT64_T_FMT "\n",
            ajw_metrics_refusal_name(i), t.refused[i]);
    counter(e, "token_cache_hits_total", "Tokens answered from the verified-token cache.",
            t.cache_hits);
    counter(e, "token_cache_misses_total", "Tokens verified in full (not in the cache, or "
            "cached with keys since replaced).", t.cache_misses);
    head(e, "counters_start_time_seconds", "gauge", "When these counters started from zero "
         "(Unix time).");
    add(e, PFX "counters_start_time_seconds %" APR_INT64_T_FMT "\n", apr_time_sec(t.since));
}

static const char *const fetch_outcome[AJW_MF__COUNT] = { "200", "304", "error" };

static void fetches(expo_t *e, const ajw_metrics_t *m, const ajw_metrics_source_t *srcs, int n,
                    const char **labels)
{
    ajw_metrics_url_t u;
    int i, f;
    head(e, "jwks_fetches_total", "counter", "JWKS fetches by outcome: 200, 304 (not "
         "modified) or error (no answer, another status, or an unusable document).");
    for (i = 0; i < n; i++) {
        ajw_metrics_read_url(m, srcs[i].url, &u);
        for (f = 0; f < AJW_MF__COUNT; f++)
            add(e, PFX "jwks_fetches_total{url=\"%s\",outcome=\"%s\"} %" APR_UINT64_T_FMT "\n",
                labels[i], fetch_outcome[f], u.fetches[f]);
    }
    head(e, "shared_copies_refused_total", "counter", "Shared last-good copies of this URL "
         "refused (a MAC that does not verify, no MAC, another URL, malformed, or from the "
         "future): planted, altered, or written with another key.");
    for (i = 0; i < n; i++) {
        ajw_metrics_read_url(m, srcs[i].url, &u);
        add(e, PFX "shared_copies_refused_total{url=\"%s\"} %" APR_UINT64_T_FMT "\n",
            labels[i], u.shared_refused);
    }
    head(e, "jwks_last_fetch_duration_seconds", "gauge", "How long the last JWKS fetch took.");
    for (i = 0; i < n; i++)
        if (ajw_metrics_read_url(m, srcs[i].url, &u) && u.last_end)
            add(e, PFX "jwks_last_fetch_duration_seconds{url=\"%s\"} %.6f\n", labels[i],
                (double)u.last_duration / (double)APR_USEC_PER_SEC);
    head(e, "jwks_last_fetch_timestamp_seconds", "gauge", "When the last JWKS fetch ended "
         "(Unix time).");
    for (i = 0; i < n; i++)
        if (ajw_metrics_read_url(m, srcs[i].url, &u) && u.last_end)
            add(e, PFX "jwks_last_fetch_timestamp_seconds{url=\"%s\"} %" APR_INT64_T_FMT "\n",
                labels[i], apr_time_sec(u.last_end));
}

static void gauges(expo_t *e, const ajw_metrics_source_t *srcs, int n, apr_time_t now,
                   const char **labels)
{
    int i;
    head(e, "keyset_loaded", "gauge", "1 when the serving process has keys from this URL.");
    for (i = 0; i < n; i++)
        add(e, PFX "keyset_loaded{url=\"%s\"} %d\n", labels[i], srcs[i].loaded ? 1 : 0);
    head(e, "keyset_age_seconds", "gauge", "Seconds since the newest successful fetch of "
         "this URL's keys that the serving process knows of.");
    for (i = 0; i < n; i++)
        if (ajw_metrics_age(&srcs[i], now) >= 0)
            add(e, PFX "keyset_age_seconds{url=\"%s\"} %" APR_INT64_T_FMT "\n", labels[i],
                (apr_int64_t)ajw_metrics_age(&srcs[i], now));
    head(e, "keyset_stale_seconds", "gauge", "Seconds the key set is past its refresh period "
         "(0 while refreshes succeed).");
    for (i = 0; i < n; i++)
        if (ajw_metrics_stale(&srcs[i], now) >= 0)
            add(e, PFX "keyset_stale_seconds{url=\"%s\"} %" APR_INT64_T_FMT "\n", labels[i],
                (apr_int64_t)ajw_metrics_stale(&srcs[i], now));
}

const char *ajw_metrics_prometheus(const ajw_metrics_t *m, const ajw_metrics_source_t *srcs,
                                   int n, apr_time_t now, apr_pool_t *p)
{
    expo_t e;
    const char **labels = apr_pcalloc(p, sizeof(*labels) * (size_t)(n > 0 ? n : 1));
    int i;
    e.p = p;
    e.parts = apr_array_make(p, 64, sizeof(const char *));
    for (i = 0; i < n; i++)
        labels[i] = ajw_metrics_label_escape(p, srcs[i].url);
    if (m)
        totals(&e, m);
    fetches(&e, m, srcs, n, labels);
    gauges(&e, srcs, n, now, labels);
    return apr_array_pstrcat(p, e.parts, '\0');
}
