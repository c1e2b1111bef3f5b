/* ajw_discovery.c — see ajw_discovery.h. The fetcher keeps, per source URL,
 * the jwks_uri it last resolved (for the status page), under one mutex;
 * entries are made in the fetcher's pool, at most one per configured
 * discover: source, so the table is bounded by the configuration. */
#include <string.h>

#include <apr_strings.h>
#include <apr_uri.h>
#include <apr_hash.h>
#include <apr_thread_mutex.h>

#include "ajw_discovery.h"
#include "ajw_json.h"
#include "ajw_types.h"

#define AJW_METADATA_MAX  (64 * 1024)

typedef struct disc_t {
    ajw_fetcher_t self;
    ajw_fetcher_t *inner;
    apr_thread_mutex_t *mu;       /* guards resolved and pool */
    apr_hash_t *resolved;         /* source URL -> jwks_uri */
    apr_pool_t *pool;
} disc_t;

const char *ajw_discovery_check_issuer(const char *issuer, apr_pool_t *p)
{
    apr_uri_t u;
    if (apr_uri_parse(p, issuer, &u) != APR_SUCCESS || !u.scheme || strcasecmp(u.scheme, "https"))
        return "the issuer must be an https:// URL";
    if (!u.hostname || !*u.hostname)
        return "the issuer has no host";
    if (u.query || u.fragment || u.user || u.password)
        return "the issuer must have no query, fragment or credentials";
    return NULL;
}

const char *ajw_discovery_source_url(const char *issuer, apr_pool_t *p)
{
    return apr_pstrcat(p, AJW_DISCOVER_PREFIX, issuer, NULL);
}

/* The metadata URLs of issuer, in the order they are tried. */
static void metadata_urls(const char *issuer, const char **oidc, const char **rfc8414,
                          apr_pool_t *p)
{
    size_t n = strlen(issuer);
    const char *after_scheme = strstr(issuer, "://");
    const char *path = after_scheme ? strchr(after_scheme + 3, '/') : NULL;
    const char *trimmed = n && issuer[n - 1] == '/' ? apr_pstrmemdup(p, issuer, n - 1) : issuer;
    *oidc = apr_pstrcat(p, trimmed, "/.well-known/openid-configuration", NULL);
    if (!path || !strcmp(path, "/"))
        *rfc8414 = apr_pstrcat(p, trimmed, "/.well-known/oauth-authorization-server", NULL);
    else
        *rfc8414 = apr_pstrcat(p, apr_pstrmemdup(p, issuer, (size_t)(path - issuer)),
                               "/.well-known/oauth-authorization-server",
                               apr_pstrmemdup(p, path, strlen(path) - (path[strlen(path) - 1]
                                                                       == '/')), NULL);
}

/* Fetch one metadata document and take its jwks_uri; *why on failure. */
static apr_status_t read_metadata(disc_t *d, const ajw_fetch_req_t *req, const char *url,
                                  const char *issuer, const char **jwks_uri, const char **why,
                                  apr_pool_t *p)
{
    ajw_fetch_req_t mreq = *req;
    ajw_fetch_res_t mres;
    ajw_error_t err;
    json_t *doc;
    const char *iss, *ju;
    apr_status_t rv;
    memset(&mres, 0, sizeof(mres));
    mreq.url = url;
    mreq.headers = NULL;          /* credentials belong to one configured URL, not to metadata */
    mreq.etag = NULL;
    mreq.max_size = AJW_METADATA_MAX;
    rv = d->inner->fetch(d->inner, &mreq, &mres, p);
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(p, "metadata %s: %s", url, mres.error ? mres.error : "no answer");
        return rv;
    }
    if (mres.status != 200) {
        *why = apr_psprintf(p, "metadata %s: HTTP %d", url, mres.status);
        return APR_NOTFOUND;
    }
    if (ajw_json_parse_object(&doc, mres.body, mres.len, AJW_METADATA_MAX, 0, p, &err) != AJW_OK) {
        *why = apr_psprintf(p, "metadata %s: %s", url, err.text);
        return APR_EGENERAL;
    }
    iss = ajw_json_get_string(doc, "issuer", NULL);
    if (!iss || strcmp(iss, issuer)) {
        *why = apr_psprintf(p, "metadata %s names another issuer (mix-up defence: it must be "
                            "exactly %s)", url, issuer);
        return APR_EGENERAL;
    }
    ju = ajw_json_get_string(doc, "jwks_uri", NULL);
    if (!ju || ajw_discovery_check_issuer(ju, p)) {
        *why = apr_psprintf(p, "metadata %s: jwks_uri %s", url,
                            ju ? "is not a plain https:// URL" : "is missing");
        return APR_EGENERAL;
    }
    *jwks_uri = apr_pstrdup(p, ju);
    return APR_SUCCESS;
}

static void remember(disc_t *d, const char *source, const char *jwks_uri)
{
    const char *old;
    apr_thread_mutex_lock(d->mu);
    old = apr_hash_get(d->resolved, source, APR_HASH_KEY_STRING);
    if (!old || strcmp(old, jwks_uri))   /* grows only when the IdP moves its keys */
        apr_hash_set(d->resolved, apr_pstrdup(d->pool, source), APR_HASH_KEY_STRING,
                     apr_pstrdup(d->pool, jwks_uri));
    apr_thread_mutex_unlock(d->mu);
}

static apr_status_t disc_fetch(ajw_fetcher_t *self, const ajw_fetch_req_t *req,
                               ajw_fetch_res_t *res, apr_pool_t *p)
{
    disc_t *d = self->baton;
    const char *issuer, *oidc, *rfc, *jwks_uri = NULL, *why = NULL, *why2 = NULL;
    ajw_fetch_req_t jreq;
    apr_status_t rv;
    if (strncmp(req->url, AJW_DISCOVER_PREFIX, strlen(AJW_DISCOVER_PREFIX)))
        return d->inner->fetch(d->inner, req, res, p);
    issuer = req->url + strlen(AJW_DISCOVER_PREFIX);
    metadata_urls(issuer, &oidc, &rfc, p);
    rv = read_metadata(d, req, oidc, issuer, &jwks_uri, &why, p);
    if (rv == APR_NOTFOUND)           /* no OIDC document: try RFC 8414's */
        rv = read_metadata(d, req, rfc, issuer, &jwks_uri, &why2, p);
    if (rv != APR_SUCCESS) {
        memset(res, 0, sizeof(*res));
        res->error = why2 ? apr_pstrcat(p, why, "; ", why2, NULL) : why;
        return rv == APR_NOTFOUND ? APR_EGENERAL : rv;
    }
    remember(d, req->url, jwks_uri);
    jreq = *req;
    jreq.url = jwks_uri;
    jreq.headers = NULL;          /* nor to a jwks_uri the metadata names (any host) */
    return d->inner->fetch(d->inner, &jreq, res, p);
}

ajw_fetcher_t *ajw_discovery_fetcher(ajw_fetcher_t *inner, apr_pool_t *p)
{
    disc_t *d = apr_pcalloc(p, sizeof(*d));
    if (apr_thread_mutex_create(&d->mu, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS)
        return NULL;
    d->inner = inner;
    d->resolved = apr_hash_make(p);
    d->pool = p;
    d->self.fetch = disc_fetch;
    d->self.baton = d;
    return &d->self;
}

const char *ajw_discovery_jwks_uri(ajw_fetcher_t *f, const char *source_url, apr_pool_t *p)
{
    disc_t *d;
    const char *u;
    if (!f || f->fetch != disc_fetch)
        return NULL;
    d = f->baton;
    apr_thread_mutex_lock(d->mu);
    u = apr_hash_get(d->resolved, source_url, APR_HASH_KEY_STRING);
    u = u ? apr_pstrdup(p, u) : NULL;
    apr_thread_mutex_unlock(d->mu);
    return u;
}
