/* ajw_fetch.h — how key documents are fetched: an interface (so unit tests
 * can swap in a fake) and its one real implementation over libcurl. */
#ifndef AJW_FETCH_H
#define AJW_FETCH_H

#include <apr_pools.h>
#include <apr_time.h>
#include <apr_errno.h>

typedef struct ajw_fetch_req_t {
    const char *url;            /* https://, http:// or file:// */
    const char *ca_file;        /* PEM bundle for https, NULL = system store */
    const char *etag;           /* send If-None-Match when not NULL */
    const char *accept;         /* send this Accept header when not NULL */
    apr_interval_time_t timeout;/* whole transfer, connect included */
    size_t max_size;            /* body bytes; more is an error, transfer aborted */
    /* Optional (NULL = never): polled during the transfer, which is aborted
     * ("cancelled") when it returns non-zero. Lets shutdown interrupt a hung fetch. */
    int (*cancelled)(void *baton);
    void *cancel_baton;
    /* Extra request headers, "Name: value" each, NULL-terminated (NULL =
     * none): credentials the JWKS server demands. Sent to url's host only —
     * never to a proxy (CONNECT), never after a redirect (none are
     * followed) — and never logged. */
    const char *const *headers;
    /* The proxy of an https:// fetch: NULL = as httpd's environment says
     * (https_proxy, NO_PROXY, ...), "" = none, else an http(s)://host:port
     * proxy URL. Ignored for http:// (loopback, never through a proxy). */
    const char *proxy;
    const char *proxy_user;     /* Basic credentials for that proxy, NULL = none */
    const char *proxy_password;
} ajw_fetch_req_t;

typedef struct ajw_fetch_res_t {
    int status;                 /* HTTP status; 200 for a file read; 0 when no answer */
    const char *body;           /* pool memory, NUL-terminated, len bytes */
    size_t len;
    const char *etag;           /* ETag response header or NULL */
    long long max_age;          /* Cache-Control max-age seconds, -1 when absent or no-store
                                 * (no freshness hint: the caller's default applies); 0 for
                                 * no-cache (refresh as early as the caller allows) */
    const char *error;          /* on failure: a short reason (timeout, TLS, too large, ...) */
} ajw_fetch_res_t;

typedef struct ajw_fetcher_t ajw_fetcher_t;
/* Fetch req into res (allocations from p). APR_SUCCESS when an answer came
 * (any status, 304 included); an error status with res->error set when not
 * (curl fetcher: APR_TIMEUP for a timeout, APR_EGENERAL otherwise, too large included).
 * Called by the key store from several refresh threads at once (one per
 * source): must be thread-safe; never follows redirects. */
typedef apr_status_t ajw_fetch_fn(ajw_fetcher_t *self, const ajw_fetch_req_t *req,
                                  ajw_fetch_res_t *res, apr_pool_t *p);
struct ajw_fetcher_t {
    ajw_fetch_fn *fetch;
    void *baton;
};

/* 127.0.0.0/8 as a dotted quad, ::1 or localhost: the only hosts plain
 * http:// may be fetched from (never through a proxy). */
int ajw_url_host_is_loopback(const char *host);

/* Is url one the module fetches? NULL when it is (*scheme and *path then
 * point into p), else why not (static text): https with a host; http only
 * to a loopback host; file with an absolute local path; no credentials. */
const char *ajw_url_problem(const char *url, const char **scheme, const char **path,
                            apr_pool_t *p);

/* Process-wide libcurl setup; call once before any thread uses curl
 * (httpd: child_init, or post_config). Idempotent. */
apr_status_t ajw_curl_global_init(void);

/* A fetcher backed by libcurl: protocols limited to http, https and file,
 * TLS peer and host verified, no redirects, size and time capped,
 * ETag/If-None-Match and Cache-Control max-age understood, extra headers
 * and a proxy as the request says. */
ajw_fetcher_t *ajw_curl_fetcher(apr_pool_t *p);

#endif
