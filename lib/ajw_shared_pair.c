/* ajw_shared_pair.c — a local store (files: per-server, with leases) and a
 * remote one (a fleet's socache) seen as one ajw_shared_t. The pair itself
 * holds no mutable state: two read-only pointers. */
#include <string.h>

#include <apr_strings.h>

#include "ajw_shared.h"
#include "ajw_log.h"

/* As the key store: a record "fetched" later than this is refused, so a
 * bogus far-future time cannot make one side always look newer. */
#define FUTURE_SLACK apr_time_from_sec(60)

typedef struct pair_t {
    ajw_shared_t *local;
    ajw_shared_t *remote;
} pair_t;

static int refused(apr_status_t rv)
{
    return rv != APR_SUCCESS && rv != APR_NOTFOUND;
}

/* A record from the future is a refusal like any other. */
static apr_status_t check_time(apr_status_t rv, const ajw_shared_doc_t *d, const char **why,
                               apr_time_t now)
{
    if (rv == APR_SUCCESS && d->fetched > now + FUTURE_SLACK) {
        *why = "its fetch time is in the future";
        return APR_EGENERAL;
    }
    return rv;
}

static apr_status_t pair_get(ajw_shared_t *self, const char *url, const char *ca_file,
                             size_t max_len, ajw_shared_doc_t *doc, const char **why,
                             apr_pool_t *p)
{
    pair_t *pr = self->baton;
    ajw_shared_doc_t ld, rd;
    const char *lwhy = NULL, *rwhy = NULL;
    apr_status_t lrv = pr->local->get(pr->local, url, ca_file, max_len, &ld, &lwhy, p);
    apr_status_t rrv = pr->remote->get(pr->remote, url, ca_file, max_len, &rd, &rwhy, p);
    apr_time_t now = apr_time_now();
    apr_status_t rv;

    lrv = check_time(lrv, &ld, &lwhy, now);
    rrv = check_time(rrv, &rd, &rwhy, now);
    memset(doc, 0, sizeof(*doc));
    *why = NULL;
    if (lrv == APR_SUCCESS && rrv == APR_SUCCESS) {
        *doc = rd.fetched > ld.fetched ? rd : ld;
        rv = APR_SUCCESS;
    }
    else if (lrv == APR_SUCCESS || rrv == APR_SUCCESS) {
        /* One side refused or has nothing: a refusal is news even though the
         * other side's copy serves (the keystore only hears of failures). */
        if (refused(lrv) || refused(rrv))
            ajw_log(AJW_LOG_WARN, "shared copy of %s refused: %s (the %s copy is used)", url,
                    refused(lrv) ? (lwhy ? lwhy : "unknown error") : (rwhy ? rwhy : "unknown error"),
                    lrv == APR_SUCCESS ? "local" : "remote");
        *doc = lrv == APR_SUCCESS ? ld : rd;
        rv = APR_SUCCESS;
    }
    else if (refused(lrv) && refused(rrv)) {
        *why = apr_psprintf(p, "%s; %s", lwhy ? lwhy : "unknown error",
                            rwhy ? rwhy : "unknown error");
        rv = lrv;
    }
    else if (refused(lrv) || refused(rrv)) {
        *why = refused(lrv) ? lwhy : rwhy;
        rv = refused(lrv) ? lrv : rrv;
    }
    else
        rv = APR_NOTFOUND;
    return rv;
}

static apr_status_t pair_put(ajw_shared_t *self, const char *url, const char *ca_file,
                             const ajw_shared_doc_t *doc, const char **why, apr_pool_t *p)
{
    pair_t *pr = self->baton;
    const char *lwhy = NULL, *rwhy = NULL;
    apr_status_t lrv = pr->local->put(pr->local, url, ca_file, doc, &lwhy, p);
    apr_status_t rrv = pr->remote->put(pr->remote, url, ca_file, doc, &rwhy, p);

    *why = NULL;
    if (lrv != APR_SUCCESS && rrv != APR_SUCCESS)
        *why = apr_psprintf(p, "%s; %s", lwhy ? lwhy : "unknown error",
                            rwhy ? rwhy : "unknown error");
    else if (lrv != APR_SUCCESS)
        *why = lwhy;
    else if (rrv != APR_SUCCESS)
        *why = rwhy;
    return lrv != APR_SUCCESS ? lrv : rrv;
}

static apr_status_t pair_lease(ajw_shared_t *self, const char *url, const char *ca_file,
                               apr_time_t now, apr_time_t *last, void **lease, apr_pool_t *p)
{
    pair_t *pr = self->baton;
    return pr->local->lease(pr->local, url, ca_file, now, last, lease, p);
}

static void pair_unlease(ajw_shared_t *self, void *lease)
{
    pair_t *pr = self->baton;
    pr->local->unlease(pr->local, lease);
}

apr_status_t ajw_shared_pair_create(ajw_shared_t **out, ajw_shared_t *local,
                                    ajw_shared_t *remote, apr_pool_t *p)
{
    ajw_shared_t *sh;
    pair_t *pr;

    if (!local || !remote)
        return APR_EINVAL;
    pr = apr_pcalloc(p, sizeof(*pr));
    pr->local = local;
    pr->remote = remote;
    sh = apr_pcalloc(p, sizeof(*sh));
    sh->get = pair_get;
    sh->put = pair_put;
    if (local->lease && local->unlease) {
        sh->lease = pair_lease;
        sh->unlease = pair_unlease;
    }
    sh->baton = pr;
    *out = sh;
    return APR_SUCCESS;
}
