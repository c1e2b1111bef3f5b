/* ajw_fetch_curl.c — the libcurl fetcher behind ajw_fetch.h.
 *
 * One easy handle per fetch: refreshes are rare, and a fresh handle carries
 * no state (cookies, connections, previous options) from one fetch to the next.
 *
 * file:// is read here, not by curl: curl open()s the path blocking and
 * without a type check, so a FIFO (or a symlink swapped to one) would hang
 * the refresh thread forever — no timeout covers open() — and shutdown's
 * join with it. We open with O_NONBLOCK, accept regular files only and
 * read at most max_size + 1 bytes.
 *
 * Proxies: libcurl honours http_proxy / HTTPS_PROXY / ALL_PROXY / NO_PROXY
 * from httpd's environment. http:// is allowed only to loopback hosts, on the
 * grounds that the document never leaves the machine; through a proxy it
 * would, in clear text, and "127.0.0.1" would be the proxy's own loopback.
 * So http:// fetches never use a proxy (CURLOPT_NOPROXY "*"); https://
 * fetches do use a configured one (TLS is end to end through CONNECT): the
 * request's own (AuthJWKSFetchProxy), else the environment's.
 *
 * Extra headers (credentials the JWKS server demands) go to that server
 * only: redirects are never followed, and CURLHEADER_SEPARATE keeps them
 * out of the CONNECT request a proxy sees. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <apr_strings.h>

#include "ajw_fetch.h"

#define AJW_USER_AGENT   "mod_auth_jwks/0.1"
#define AJW_ETAG_MAX     1024          /* longer ETags are ignored */
#define AJW_MAX_AGE_CAP  (10LL * 365 * 24 * 3600)

/* State of one transfer; lives on the fetching thread's stack. */
typedef struct fetch_ctx_t {
    apr_pool_t *p;
    char *buf;                  /* body so far (pool memory, grows by doubling) */
    size_t len, cap;
    size_t max_size;
    int too_large;              /* the write callback refused more bytes */
    const char *etag;
    long long max_age;
    int no_store, no_cache;
    const ajw_fetch_req_t *req; /* for the cancel hook */
    int cancelled;
} fetch_ctx_t;

static int curl_ready;          /* set once before threads start (see header) */

apr_status_t ajw_curl_global_init(void)
{
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return APR_EGENERAL;
        curl_ready = 1;
    }
    return APR_SUCCESS;
}

/* Make room for n more bytes (plus a NUL) in ctx->buf. */
static int body_reserve(fetch_ctx_t *ctx, size_t n)
{
    size_t want = ctx->len + n + 1, ncap;
    char *nbuf;
    if (want <= ctx->cap)
        return 1;
    ncap = ctx->cap ? ctx->cap : 4096;
    while (ncap < want)
        ncap *= 2;
    nbuf = apr_palloc(ctx->p, ncap);
    if (!nbuf)
        return 0;
    if (ctx->len)
        memcpy(nbuf, ctx->buf, ctx->len);
    ctx->buf = nbuf;
    ctx->cap = ncap;
    return 1;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    fetch_ctx_t *ctx = ud;
    size_t n = size * nmemb;
    if (n > ctx->max_size || ctx->len > ctx->max_size - n) {
        ctx->too_large = 1;
        return 0;               /* aborts the transfer (CURLE_WRITE_ERROR) */
    }
    if (!body_reserve(ctx, n))
        return 0;
    memcpy(ctx->buf + ctx->len, data, n);
    ctx->len += n;
    ctx->buf[ctx->len] = '\0';
    return n;
}

/* Does header line [s, s+n) start with "name:" (case-insensitive)? Returns
 * the value with surrounding blanks trimmed (pool copy), else NULL. */
static char *header_value(const char *s, size_t n, const char *name, apr_pool_t *p)
{
    size_t nl = strlen(name), b, e;
    if (n <= nl || strncasecmp(s, name, nl) != 0 || s[nl] != ':')
        return NULL;
    b = nl + 1;
    e = n;
    while (b < e && (s[b] == ' ' || s[b] == '\t'))
        b++;
    while (e > b && (s[e - 1] == '\r' || s[e - 1] == '\n' || s[e - 1] == ' ' || s[e - 1] == '\t'))
        e--;
    return apr_pstrmemdup(p, s + b, e - b);
}

/* Parse the digits of a max-age value (optionally quoted); -1 when invalid. */
static long long parse_delta_seconds(const char *v)
{
    long long n = 0;
    int digits = 0;
    if (*v == '"')
        v++;
    for (; isdigit((unsigned char)*v); v++, digits++) {
        if (n < AJW_MAX_AGE_CAP)
            n = n * 10 + (*v - '0');
    }
    if (!digits || (*v && *v != '"'))
        return -1;
    return n > AJW_MAX_AGE_CAP ? AJW_MAX_AGE_CAP : n;
}

/* Cache-Control directives we use: max-age, no-cache, no-store (RFC 9111 §5.2.2). */
static void parse_cache_control(fetch_ctx_t *ctx, char *v)
{
    char *last = NULL, *tok;
    for (tok = apr_strtok(v, ",", &last); tok; tok = apr_strtok(NULL, ",", &last)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        apr_collapse_spaces(tok, tok);
        if (strncasecmp(tok, "max-age=", 8) == 0)
            ctx->max_age = parse_delta_seconds(tok + 8);
        else if (strcasecmp(tok, "no-cache") == 0)
            ctx->no_cache = 1;
        else if (strcasecmp(tok, "no-store") == 0)
            ctx->no_store = 1;
    }
}

/* An ETag we are willing to send back in If-None-Match: 1..AJW_ETAG_MAX
 * visible ASCII bytes (RFC 9110 §8.8.3 etagc, obs-text refused), so a
 * server cannot make us send control bytes (CR, LF) in a request header. */
static int etag_ok(const char *v)
{
    size_t i;
    for (i = 0; v[i]; i++) {
        if (i >= AJW_ETAG_MAX || (unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
            return 0;
    }
    return i > 0;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud)
{
    fetch_ctx_t *ctx = ud;
    size_t n = size * nitems;
    char *v;
    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a 1xx): forget what the previous one said. */
        ctx->etag = NULL;
        ctx->max_age = -1;
        ctx->no_cache = ctx->no_store = 0;
    }
    else if ((v = header_value(data, n, "ETag", ctx->p)) != NULL) {
        ctx->etag = etag_ok(v) ? v : NULL;
    }
    else if ((v = header_value(data, n, "Cache-Control", ctx->p)) != NULL) {
        parse_cache_control(ctx, v);
    }
    return n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    fetch_ctx_t *ctx = ud;
    (void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
    if (ctx->req->cancelled && ctx->req->cancelled(ctx->req->cancel_baton))
        ctx->cancelled = 1;
    return ctx->cancelled;      /* non-zero aborts (CURLE_ABORTED_BY_CALLBACK) */
}

/* Append one "Name: value" line to *hdrs unless rc already failed. */
static CURLcode add_header(struct curl_slist **hdrs, const char *line, CURLcode rc)
{
    struct curl_slist *n;
    if (rc != CURLE_OK)
        return rc;
    if (!(n = curl_slist_append(*hdrs, line)))
        return CURLE_OUT_OF_MEMORY;
    *hdrs = n;
    return CURLE_OK;
}

/* Every option of a fetch; CURLE_OK or the first option that failed. */
static CURLcode setup_handle(CURL *h, const ajw_fetch_req_t *req, fetch_ctx_t *ctx,
                             struct curl_slist **hdrs, char *errbuf)
{
    long ms = (long)(req->timeout / 1000);
    CURLcode rc = CURLE_OK;
    int i;
    if (ms <= 0)
        ms = 1;
#define SET(opt, val) do { if (rc == CURLE_OK) rc = curl_easy_setopt(h, opt, val); } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");   /* file:// is read by file_fetch */
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TIMEOUT_MS, ms);
    SET(CURLOPT_CONNECTTIMEOUT_MS, ms);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_USERAGENT, AJW_USER_AGENT);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, ctx);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, ctx);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_size);
    if (req->ca_file)
        SET(CURLOPT_CAINFO, req->ca_file);
    if (strncasecmp(req->url, "http:", 5) == 0) {
        SET(CURLOPT_NOPROXY, "*");      /* loopback only: never via a proxy (see top) */
    }
    else if (req->proxy) {              /* "" disables the environment's proxy too */
        SET(CURLOPT_PROXY, req->proxy);
        if (*req->proxy)
            SET(CURLOPT_NOPROXY, "");   /* the configured proxy for this URL, whatever NO_PROXY says */
        if (*req->proxy && req->proxy_user) {
            SET(CURLOPT_PROXYAUTH, (long)CURLAUTH_BASIC);
            SET(CURLOPT_PROXYUSERNAME, req->proxy_user);
            SET(CURLOPT_PROXYPASSWORD, req->proxy_password ? req->proxy_password : "");
        }
    }
    /* Our headers go to the server only, not in a CONNECT to the proxy. */
    SET(CURLOPT_HEADEROPT, (long)CURLHEADER_SEPARATE);
    if (req->cancelled) {
        SET(CURLOPT_XFERINFOFUNCTION, on_progress);
        SET(CURLOPT_XFERINFODATA, ctx);
        SET(CURLOPT_NOPROGRESS, 0L);
    }
    if (req->etag)
        rc = add_header(hdrs, apr_pstrcat(ctx->p, "If-None-Match: ", req->etag, NULL), rc);
    for (i = 0; req->headers && req->headers[i]; i++)
        rc = add_header(hdrs, req->headers[i], rc);
    if (req->accept)
        rc = add_header(hdrs, apr_pstrcat(ctx->p, "Accept: ", req->accept, NULL), rc);
    if (*hdrs)
        SET(CURLOPT_HTTPHEADER, *hdrs);
#undef SET
    return rc;
}

/* s with every byte outside printable ASCII as '?', cut to 160 bytes: curl's
 * error buffer can quote what a server sent, and it goes to the error log. */
static const char *log_safe(const char *s, apr_pool_t *p)
{
    char *out = apr_pstrndup(p, s, 160), *c;
    for (c = out; *c; c++) {
        if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
            *c = '?';
    }
    return out;
}

/* A short reason for a failed transfer: never the body. */
static const char *fetch_error(const ajw_fetch_req_t *req, const fetch_ctx_t *ctx,
                               CURLcode rc, const char *errbuf, apr_pool_t *p)
{
    if (ctx->cancelled)
        return "cancelled";
    if (ctx->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return apr_psprintf(p, "document larger than %" APR_SIZE_T_FMT " bytes", req->max_size);
    if (errbuf[0])
        return log_safe(apr_psprintf(p, "%s: %s", curl_easy_strerror(rc), errbuf), p);
    return curl_easy_strerror(rc);
}

/* The local path of a file URL (file:///p, file://localhost/p or file:/p, %XX
 * decoded as curl does), or NULL when it names no absolute local path. */
static const char *file_path(const char *url, apr_pool_t *p)
{
    const char *s = url + 5;            /* after "file:" */
    char *dec;
    int dlen = 0;
    const char *path;
    if (s[0] == '/' && s[1] == '/') {
        s += 2;
        if (strncasecmp(s, "localhost/", 10) == 0)
            s += 9;
    }
    if (*s != '/' || strlen(s) > 4096)
        return NULL;
    dec = curl_easy_unescape(NULL, s, (int)strlen(s), &dlen);
    if (!dec)
        return NULL;
    path = (dlen > 0 && memchr(dec, '\0', (size_t)dlen) == NULL)
           ? apr_pstrmemdup(p, dec, (size_t)dlen) : NULL;
    curl_free(dec);
    return path;
}

/* Read a regular file of at most req->max_size bytes, never blocking on a
 * FIFO or device; res as for HTTP (status 200, no ETag, no max-age). */
static apr_status_t file_fetch(const ajw_fetch_req_t *req, ajw_fetch_res_t *res, apr_pool_t *p)
{
    const char *path = file_path(req->url, p);
    struct stat sb;
    char *buf;
    size_t len = 0;
    int fd;
    if (!path || req->max_size > ((size_t)1 << 30)) {
        res->error = path ? "size cap too large" : "file URL names no absolute local path";
        return APR_EINVAL;
    }
    fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        char eb[120];
        res->error = apr_psprintf(p, "cannot open the file: %s", apr_strerror(errno, eb, sizeof(eb)));
        return APR_EGENERAL;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        res->error = "not a regular file";
        return APR_EGENERAL;
    }
    /* st_size may be 0 (procfs) or stale: read to EOF, one byte over the cap. */
    buf = apr_palloc(p, req->max_size + 2);
    for (;;) {
        ssize_t n;
        if (req->cancelled && req->cancelled(req->cancel_baton)) {
            close(fd);
            res->error = "cancelled";
            return APR_EGENERAL;
        }
        n = read(fd, buf + len, req->max_size + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            char eb[120];
            close(fd);
            res->error = apr_psprintf(p, "cannot read the file: %s", apr_strerror(errno, eb, sizeof(eb)));
            return APR_EGENERAL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > req->max_size) {
            close(fd);
            res->error = apr_psprintf(p, "document larger than %" APR_SIZE_T_FMT " bytes",
                                      req->max_size);
            return APR_EGENERAL;
        }
    }
    close(fd);
    buf[len] = '\0';
    res->status = 200;
    res->body = buf;
    res->len = len;
    return APR_SUCCESS;
}

/* Record what the answer said in res. */
static void fill_result(ajw_fetch_res_t *res, CURL *h, const ajw_fetch_req_t *req,
                        fetch_ctx_t *ctx)
{
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    (void)req;
    res->status = (int)code;
    res->body = ctx->buf ? ctx->buf : "";
    res->len = ctx->len;
    res->etag = ctx->etag;
    if (ctx->no_store)
        res->max_age = -1;
    else if (ctx->no_cache)
        res->max_age = 0;
    else
        res->max_age = ctx->max_age;
}

static apr_status_t curl_fetch(ajw_fetcher_t *self, const ajw_fetch_req_t *req,
                               ajw_fetch_res_t *res, apr_pool_t *p)
{
    fetch_ctx_t ctx;
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE];
    apr_status_t rv = APR_SUCCESS;
    CURLcode rc;
    CURL *h;

    (void)self;
    memset(res, 0, sizeof(*res));
    res->max_age = -1;
    memset(&ctx, 0, sizeof(ctx));
    ctx.p = p;
    ctx.max_size = req->max_size;
    ctx.max_age = -1;
    ctx.req = req;
    errbuf[0] = '\0';

    if (!req->url) {
        res->error = "no URL";
        return APR_EINVAL;
    }
    if (strncasecmp(req->url, "file:", 5) == 0)
        return file_fetch(req, res, p);
    h = curl_easy_init();
    if (!h) {
        res->error = "curl_easy_init failed";
        return APR_ENOMEM;
    }
    rc = setup_handle(h, req, &ctx, &hdrs, errbuf);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        fill_result(res, h, req, &ctx);
    }
    else {
        res->error = fetch_error(req, &ctx, rc, errbuf, p);
        rv = (rc == CURLE_OPERATION_TIMEDOUT) ? APR_TIMEUP : APR_EGENERAL;
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rv;
}

ajw_fetcher_t *ajw_curl_fetcher(apr_pool_t *p)
{
    ajw_fetcher_t *f = apr_pcalloc(p, sizeof(*f));
    (void)ajw_curl_global_init();   /* normally done already; idempotent */
    f->fetch = curl_fetch;
    f->baton = NULL;
    return f;
}
