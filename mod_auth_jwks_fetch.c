/* mod_auth_jwks_fetch.c — what a key fetch needs besides its URL: a request
 * header the JWKS server demands (AuthJWKSFetchHeader: a Kubernetes issuer's
 * /openid/v1/jwks wants a service-account token) and an outbound proxy per
 * URL (AuthJWKSFetchProxy), with the proxy's credentials.
 *
 * Credentials live in files only root may read (lib/ajw_cred.h). The
 * directive reads its file once, so that apachectl -t fails on a bad one;
 * post_config (root, before any child) reads every file into a slot of
 * shared memory the children inherit; the monitor hook, which httpd runs
 * in its parent (root) about every ten seconds, reads them again and
 * publishes a changed value (projected tokens rotate); each refresh thread
 * takes the current value right before its fetch. A value is never logged:
 * log lines name the URL, the header and the file. */
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_uri.h>
#include <apr_lib.h>
#include <apr_shm.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "mpm_common.h"

#include "ajw_fetch.h"
#include "ajw_cred.h"
#include "ajw_crypt.h"
#include "mod_auth_jwks.h"
#include "mod_auth_jwks_request.h"

APLOG_USE_MODULE(auth_jwks);

/* One credential file and its slot. path and why: parent only. */
typedef struct fx_cred_t {
    const char *path;
    const char *what;             /* "AuthJWKSFetchHeader <url> <name>", for log lines */
    ajw_cred_slot_t *slot;        /* in shared memory; set in post_config */
    char why[256];                /* the last problem logged (parent), "" when none; a copy:
                                   * the monitor's pool is gone by the next tick */
} fx_cred_t;

typedef struct fx_header_t {
    const char *url;
    const char *name;
    const char *scheme;           /* NULL: the file's value alone */
    fx_cred_t *cred;
} fx_header_t;

typedef struct fx_proxy_t {
    const char *url;              /* NULL: every https:// URL not named by another line */
    const char *proxy;            /* "" = none (not even the environment's) */
    fx_cred_t *cred;              /* "user:password", NULL = none */
} fx_proxy_t;

/* What applies to one URL: the baton of ajw_fetchx_prepare. */
typedef struct fx_url_t {
    apr_array_header_t *headers;  /* const fx_header_t * */
    const fx_proxy_t *proxy;      /* NULL: the environment's */
} fx_url_t;

/* Written only in the single-threaded config phase and post_config (the
 * slots' contents: by the parent's monitor hook after that, the only
 * writer); the children's refresh threads read the slots. */
static struct {
    apr_array_header_t *headers;  /* fx_header_t */
    apr_array_header_t *proxies;  /* fx_proxy_t */
    apr_array_header_t *creds;    /* fx_cred_t * */
} fx;

void ajw_fetchx_pre_config(apr_pool_t *pconf)
{
    fx.headers = apr_array_make(pconf, 2, sizeof(fx_header_t));
    fx.proxies = apr_array_make(pconf, 2, sizeof(fx_proxy_t));
    fx.creds = apr_array_make(pconf, 2, sizeof(fx_cred_t *));
}

/* ------------------------------------------------------------------ */
/* Directives                                                           */

/* Headers the fetch sets itself or that frame or route the request. */
static const char *const fetch_header_denied[] = {
    "Host", "Content-Length", "Content-Type", "Transfer-Encoding", "Connection", "Keep-Alive",
    "TE", "Trailer", "Upgrade", "Expect", "If-None-Match", "User-Agent", "Proxy-Authorization",
    "Proxy-Connection", NULL
};

/* A credential file given to a directive: readable now (this is root at
 * startup and at apachectl -t), private, fit for a header. `need_colon`: a
 * proxy's user:password. The value read is wiped at once. */
static const char *add_cred(cmd_parms *cmd, const char *arg, const char *what, int need_colon,
                            fx_cred_t **out)
{
    const char *path = ap_server_root_relative(cmd->pool, arg), *why = NULL;
    char *value = NULL;
    size_t len = 0;
    int colon;
    fx_cred_t *c;
    if (!path)
        return ajw_mod_dir_err(cmd, "invalid path '%s'", arg);
    if (ajw_cred_read(&value, &len, path, geteuid(), &why, cmd->temp_pool) != APR_SUCCESS)
        return ajw_mod_dir_err(cmd, "%s", why);
    colon = memchr(value, ':', len) != NULL;
    ajw_crypt_wipe(value, len);
    if (need_colon && !colon)
        return ajw_mod_dir_err(cmd, "%s must hold user:password", path);
    c = apr_pcalloc(cmd->pool, sizeof(*c));
    c->path = path;
    c->what = what;
    APR_ARRAY_PUSH(fx.creds, fx_cred_t *) = c;
    *out = c;
    return NULL;
}

/* An http(s) JWKS URL, as AuthJWKSURL takes it. */
static const char *check_fetch_url(cmd_parms *cmd, const char *url)
{
    const char *scheme, *path, *why = ajw_url_problem(url, &scheme, &path, cmd->temp_pool);
    if (why)
        return ajw_mod_dir_err(cmd, "'%s': %s", url, why);
    if (strcasecmp(scheme, "https") && strcasecmp(scheme, "http"))
        return ajw_mod_dir_err(cmd, "'%s': only http(s) URLs are fetched over the network", url);
    return NULL;
}

/* AuthJWKSFetchHeader <url> <Header-Name> [<scheme>] <file> */
const char *ajw_fetchx_set_header(cmd_parms *cmd, void *cv, int argc, char *const argv[])
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    fx_header_t h;
    int i;
    (void)cv;
    if (err)
        return err;
    if (argc != 3 && argc != 4)
        return ajw_mod_dir_err(cmd, "takes <JWKS URL> <Header-Name> [<scheme>] <file>");
    if ((err = check_fetch_url(cmd, argv[0])) != NULL)
        return err;
    memset(&h, 0, sizeof(h));
    h.url = argv[0];
    h.name = argv[1];
    h.scheme = argc == 4 ? argv[2] : NULL;
    if (!ajw_mod_is_token(h.name) || (h.scheme && !ajw_mod_is_token(h.scheme)))
        return ajw_mod_dir_err(cmd, "'%s%s%s' is not a header name [and scheme] (letters, digits, '-', "
                      "'.', '_')", h.name, h.scheme ? " " : "", h.scheme ? h.scheme : "");
    for (i = 0; fetch_header_denied[i]; i++)
        if (!strcasecmp(h.name, fetch_header_denied[i]))
            return ajw_mod_dir_err(cmd, "the fetch sets or needs '%s' itself", h.name);
    for (i = 0; i < fx.headers->nelts; i++) {
        const fx_header_t *o = &APR_ARRAY_IDX(fx.headers, i, fx_header_t);
        if (!strcmp(o->url, h.url) && !strcasecmp(o->name, h.name))
            return ajw_mod_dir_err(cmd, "%s %s is set twice", h.url, h.name);
    }
    if ((err = add_cred(cmd, argv[argc - 1], apr_psprintf(cmd->pool, "AuthJWKSFetchHeader %s %s",
                                                          h.url, h.name), 0, &h.cred)) != NULL)
        return err;
    *(fx_header_t *)apr_array_push(fx.headers) = h;
    return NULL;
}

/* http(s)://host[:port][/] and nothing else (credentials come from a file). */
static const char *check_proxy_url(cmd_parms *cmd, const char *proxy)
{
    apr_uri_t u;
    if (apr_uri_parse(cmd->temp_pool, proxy, &u) != APR_SUCCESS || !u.scheme || !u.hostname
        || !*u.hostname || (strcasecmp(u.scheme, "http") && strcasecmp(u.scheme, "https")))
        return ajw_mod_dir_err(cmd, "'%s' is not an http:// or https:// proxy URL (or none)", proxy);
    if (u.user || u.password)
        return ajw_mod_dir_err(cmd, "'%s': give the proxy's credentials in a file, not in the URL",
                      proxy);
    if ((u.path && strcmp(u.path, "/") && *u.path) || u.query || u.fragment)
        return ajw_mod_dir_err(cmd, "'%s': a proxy URL has no path, query or fragment", proxy);
    return NULL;
}

/* AuthJWKSFetchProxy <JWKS URL>|* <proxy URL>|none [<credentials file>] */
const char *ajw_fetchx_set_proxy(cmd_parms *cmd, void *cv, const char *which,
                                 const char *proxy, const char *file)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    fx_proxy_t px;
    int i;
    (void)cv;
    if (err)
        return err;
    memset(&px, 0, sizeof(px));
    if (strcmp(which, "*")) {
        if ((err = check_fetch_url(cmd, which)) != NULL)
            return err;
        if (strncasecmp(which, "https:", 6))
            return ajw_mod_dir_err(cmd, "'%s': http:// JWKS URLs (loopback) are never fetched through "
                          "a proxy", which);
        px.url = which;
    }
    if (!strcasecmp(proxy, "none")) {
        if (file)
            return ajw_mod_dir_err(cmd, "'none' takes no credentials file");
        px.proxy = "";
    }
    else if ((err = check_proxy_url(cmd, proxy)) != NULL)
        return err;
    else
        px.proxy = proxy;
    for (i = 0; i < fx.proxies->nelts; i++) {
        const fx_proxy_t *o = &APR_ARRAY_IDX(fx.proxies, i, fx_proxy_t);
        if (o->url ? px.url && !strcmp(o->url, px.url) : !px.url)
            return ajw_mod_dir_err(cmd, "'%s' is given a proxy twice", which);
    }
    if (file && (err = add_cred(cmd, file, apr_psprintf(cmd->pool, "AuthJWKSFetchProxy %s",
                                                        which), 1, &px.cred)) != NULL)
        return err;
    *(fx_proxy_t *)apr_array_push(fx.proxies) = px;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Startup, the parent's re-reads, and the refresh threads             */

int ajw_fetchx_check(server_rec *s)
{
    int i, j, errors = 0;
    for (i = 0; fx.headers && i < fx.headers->nelts + fx.proxies->nelts; i++) {
        const char *url = i < fx.headers->nelts ? APR_ARRAY_IDX(fx.headers, i, fx_header_t).url
            : APR_ARRAY_IDX(fx.proxies, i - fx.headers->nelts, fx_proxy_t).url;
        int found = 0;
        for (j = 0; url && j < ajw_mod.all_urls->nelts && !found; j++)
            found = !strcmp(APR_ARRAY_IDX(ajw_mod.all_urls, j, ajw_url_t *)->url, url);
        if (url && !found) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_ERR, 0, s, "%s %s: no AuthJWKSURL "
                         "or AuthJWKSIssuer names this URL (written exactly the same)",
                         i < fx.headers->nelts ? "AuthJWKSFetchHeader" : "AuthJWKSFetchProxy",
                         url);
            errors++;
        }
    }
    return errors;
}

/* Read c's file and publish it when it changed (parent, as root). At
 * startup a failure is an error; later the last value stays published and
 * the problem is logged once until it changes. */
static apr_status_t refresh_cred(fx_cred_t *c, server_rec *s, int startup, apr_pool_t *p)
{
    char *value = NULL;
    size_t len = 0;
    const char *why = NULL;
    if (ajw_cred_read(&value, &len, c->path, geteuid(), &why, p) != APR_SUCCESS) {
        if (startup || strncmp(c->why, why, sizeof(c->why) - 1)) {
            ap_log_error(APLOG_MARK, startup ? APLOG_CRIT : APLOG_WARNING, 0, s, "%s: %s%s",
                         c->what, why, startup ? "" : "; the last value read stays in use");
            apr_cpystrn(c->why, why, sizeof(c->why));
        }
        return APR_EGENERAL;
    }
    if (c->why[0] && !startup)
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "%s: %s is readable again", c->what,
                     c->path);
    c->why[0] = '\0';
    if (len != c->slot->len || memcmp(value, c->slot->value, len)) {
        ajw_cred_slot_put(c->slot, value, len);
        if (!startup)
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "%s: %s changed; the next fetches use "
                         "the new value", c->what, c->path);
    }
    ajw_crypt_wipe(value, len);
    return APR_SUCCESS;
}

int ajw_fetchx_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_shm_t *shm;
    ajw_cred_slot_t *slots;
    apr_status_t rv;
    int i;
    if (!fx.creds || fx.creds->nelts == 0)
        return OK;
    rv = apr_shm_create(&shm, sizeof(ajw_cred_slot_t) * (apr_size_t)fx.creds->nelts, NULL,
                        pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "no shared memory for the key fetch's "
                     "credentials");
        return !OK;
    }
    slots = apr_shm_baseaddr_get(shm);
    memset(slots, 0, sizeof(ajw_cred_slot_t) * (apr_size_t)fx.creds->nelts);
    for (i = 0; i < fx.creds->nelts; i++) {
        fx_cred_t *c = APR_ARRAY_IDX(fx.creds, i, fx_cred_t *);
        c->slot = &slots[i];
        c->why[0] = '\0';
        if (refresh_cred(c, s, 1, pconf) != APR_SUCCESS)
            return !OK;
    }
    return OK;
}

/* httpd's parent runs this about every ten seconds (ap_wait_or_timeout);
 * p is its configuration pool, so allocations go to a pool of our own. */
static int fx_monitor(apr_pool_t *p, server_rec *s)
{
    apr_pool_t *tmp;
    int i;
    if (!fx.creds || fx.creds->nelts == 0 || !APR_ARRAY_IDX(fx.creds, 0, fx_cred_t *)->slot)
        return DECLINED;
    if (apr_pool_create(&tmp, p) != APR_SUCCESS)
        return DECLINED;
    for (i = 0; i < fx.creds->nelts; i++)
        refresh_cred(APR_ARRAY_IDX(fx.creds, i, fx_cred_t *), s, 0, tmp);
    apr_pool_destroy(tmp);
    return DECLINED;
}

void ajw_fetchx_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_monitor(fx_monitor, NULL, NULL, APR_HOOK_MIDDLE);
}

void *ajw_fetchx_baton(const char *url, apr_pool_t *pconf)
{
    fx_url_t *b = apr_pcalloc(pconf, sizeof(*b));
    int i;
    b->headers = apr_array_make(pconf, 1, sizeof(const fx_header_t *));
    for (i = 0; fx.headers && i < fx.headers->nelts; i++)
        if (!strcmp(APR_ARRAY_IDX(fx.headers, i, fx_header_t).url, url))
            APR_ARRAY_PUSH(b->headers, const fx_header_t *) =
                &APR_ARRAY_IDX(fx.headers, i, fx_header_t);
    for (i = 0; fx.proxies && i < fx.proxies->nelts; i++) {
        const fx_proxy_t *px = &APR_ARRAY_IDX(fx.proxies, i, fx_proxy_t);
        if (px->url ? !strcmp(px->url, url) : !b->proxy)
            b->proxy = px;            /* a line naming the URL wins over '*' */
    }
    return b->headers->nelts || b->proxy ? b : NULL;
}

void ajw_fetchx_prepare(void *baton, ajw_fetch_req_t *req, apr_pool_t *p)
{
    const fx_url_t *b = baton;
    const char **lines = apr_pcalloc(p, sizeof(char *) * (size_t)(b->headers->nelts + 1));
    int i, n = 0;
    for (i = 0; i < b->headers->nelts; i++) {
        const fx_header_t *h = APR_ARRAY_IDX(b->headers, i, const fx_header_t *);
        const char *v = ajw_cred_slot_get(h->cred->slot, p);
        if (v)                        /* none: fetched without it, the server refuses */
            lines[n++] = apr_pstrcat(p, h->name, ": ", h->scheme ? h->scheme : "",
                                     h->scheme ? " " : "", v, NULL);
    }
    req->headers = n ? lines : NULL;
    if (!b->proxy)
        return;
    req->proxy = b->proxy->proxy;
    if (b->proxy->cred) {
        const char *v = ajw_cred_slot_get(b->proxy->cred->slot, p), *colon;
        if (v && (colon = strchr(v, ':')) != NULL) {
            req->proxy_user = apr_pstrmemdup(p, v, (apr_size_t)(colon - v));
            req->proxy_password = colon + 1;
        }
    }
}
