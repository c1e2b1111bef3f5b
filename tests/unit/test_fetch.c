/* test_fetch.c — the libcurl fetcher against file:// and a tiny HTTP server
 * that the test forks on 127.0.0.1 (no other network). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <curl/curl.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "ajw_fetch.h"

static const char DOC[] = "{\"keys\":[]}";

static apr_pool_t *pool;
static ajw_fetcher_t *fetcher;
static pid_t server_pid = -1;
static int server_port;

/* ---- the server (runs in a forked child; one grandchild per connection) ---- */

/* Read the request head (bounded in size and time); 0 on failure. */
static int read_head(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    struct pollfd pfd = { fd, POLLIN, 0 };
    while (len + 1 < cap) {
        ssize_t n;
        if (poll(&pfd, 1, 2000) <= 0)
            return 0;
        n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0)
            return 0;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return 1;
    }
    return 0;
}

static void send_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

static void respond(int fd, const char *head, const char *body)
{
    char buf[1024];
    snprintf(buf, sizeof(buf), "%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
             head, strlen(body));
    send_str(fd, buf);
    send_str(fd, body);
}

/* A body of n bytes, sent without Content-Length (ends at close). */
static void respond_unsized(int fd, size_t n)
{
    char chunk[4096];
    memset(chunk, 'x', sizeof(chunk));
    send_str(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    while (n > 0) {
        size_t k = n < sizeof(chunk) ? n : sizeof(chunk);
        send_all(fd, chunk, k);
        n -= k;
    }
}

static void serve_one(int fd)
{
    char req[8192], big[20001];
    if (!read_head(fd, req, sizeof(req)))
        return;
    if (strncmp(req, "GET /jwks ", 10) == 0) {
        if (!strstr(req, "\r\nUser-Agent: mod_auth_jwks/0.1\r\n"))
            respond(fd, "HTTP/1.1 400 Bad Request\r\n", "no UA");
        else if (strstr(req, "\r\nIf-None-Match: \"abc\"\r\n"))
            send_str(fd, "HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\nConnection: close\r\n\r\n");
        else
            respond(fd, "HTTP/1.1 200 OK\r\netag:  \"abc\"\r\n"
                        "cache-control: public, Max-Age=120\r\n", DOC);
    }
    else if (strncmp(req, "GET /nocache ", 13) == 0)
        respond(fd, "HTTP/1.1 200 OK\r\nCache-Control: no-cache, max-age=60\r\n", DOC);
    else if (strncmp(req, "GET /nostore ", 13) == 0)
        respond(fd, "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\n", DOC);
    else if (strncmp(req, "GET /slow ", 10) == 0) {
        sleep(4);
        respond(fd, "HTTP/1.1 200 OK\r\n", DOC);
    }
    else if (strncmp(req, "GET /big ", 9) == 0) {
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        respond(fd, "HTTP/1.1 200 OK\r\n", big);
    }
    else if (strncmp(req, "GET /bigunsized ", 16) == 0)
        respond_unsized(fd, 200000);
    else if (strncmp(req, "GET /badetag ", 13) == 0)
        respond(fd, "HTTP/1.1 200 OK\r\nETag: \"a\x01b\"\r\n"
                    "Cache-Control: max-age=99999999999999999999999\r\n", DOC);
    else if (strncmp(req, "GET /cred ", 10) == 0)   /* a Kubernetes-style issuer */
        respond(fd, strstr(req, "\r\nAuthorization: Bearer sa-token\r\n")
                    && strstr(req, "\r\nX-Extra: two words\r\n")
                    ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 401 Unauthorized\r\n",
                strstr(req, "\r\nAuthorization: Bearer sa-token\r\n") ? DOC : "no");
    else if (strncmp(req, "GET /redirect ", 14) == 0)
        respond(fd, "HTTP/1.1 302 Found\r\nLocation: /jwks\r\n", "moved");
    else
        respond(fd, "HTTP/1.1 404 Not Found\r\n", "nothing here");
}

static void server_loop(int lfd)
{
    alarm(60);                            /* never outlive a stuck test run */
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            _exit(1);
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ;
        if (fork() == 0) {
            close(lfd);
            serve_one(fd);
            close(fd);
            _exit(0);
        }
        close(fd);
    }
}

static int start_server(void)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 16) != 0
        || getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        close(lfd);
        return -1;
    }
    server_port = ntohs(sa.sin_port);
    server_pid = fork();
    if (server_pid == 0) {
        setpgid(0, 0);                    /* one group: stop_server kills it whole */
        signal(SIGPIPE, SIG_IGN);
        server_loop(lfd);
    }
    if (server_pid > 0)
        setpgid(server_pid, server_pid);  /* also here: no race with stop_server */
    close(lfd);
    return server_pid > 0 ? 0 : -1;
}

static void stop_server(void)
{
    if (server_pid > 0) {
        kill(-server_pid, SIGKILL);       /* the server and its connection children */
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
}

/* ---- helpers ---------------------------------------------------------------- */

static void req_init(ajw_fetch_req_t *req, const char *url)
{
    memset(req, 0, sizeof(*req));
    req->url = url;
    req->timeout = apr_time_from_sec(5);
    req->max_size = 10000;
}

static const char *http_url(const char *path)
{
    return apr_psprintf(pool, "http://127.0.0.1:%d%s", server_port, path);
}

/* A temp file holding content; returns its path (pool string). */
static const char *temp_file(const char *content)
{
    char tmpl[] = "/tmp/ajw_fetch_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    send_all(fd, content, strlen(content));
    close(fd);
    return apr_pstrdup(pool, tmpl);
}

/* ---- file:// ------------------------------------------------------------------- */

static void test_file_ok(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    const char *path = temp_file(DOC);
    (void)state;
    req_init(&req, apr_pstrcat(pool, "file://", path, NULL));
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.len, strlen(DOC));
    assert_string_equal(res.body, DOC);
    assert_null(res.error);
    assert_null(res.etag);
    assert_int_equal(res.max_age, -1);
    unlink(path);
}

static void test_file_too_large(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    const char *path = temp_file(DOC);
    (void)state;
    req_init(&req, apr_pstrcat(pool, "file://", path, NULL));
    req.max_size = 5;
    assert_int_not_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_non_null(res.error);
    assert_string_equal(res.error, "document larger than 5 bytes");
    unlink(path);
}

static void test_file_missing(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    (void)state;
    req_init(&req, "file:///nonexistent/ajw/jwks.json");
    assert_int_not_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_non_null(res.error);
    assert_int_equal(res.status, 0);
}

/* A FIFO must not hang the fetch (curl blocks in open() forever, beyond any
 * timeout); a device is not a key document either. Run in a child with an
 * alarm so that a hang fails the test instead of stalling it. */
static void test_file_not_regular(void **state)
{
    char dir[] = "/tmp/ajw_fifo_XXXXXX";
    const char *fifo;
    pid_t pid;
    int wst = 0;
    (void)state;
    assert_non_null(mkdtemp(dir));
    fifo = apr_pstrcat(pool, dir, "/jwks.json", NULL);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ajw_fetch_req_t req;
        ajw_fetch_res_t res;
        int ok;
        alarm(3);
        req_init(&req, apr_pstrcat(pool, "file://", fifo, NULL));
        ok = fetcher->fetch(fetcher, &req, &res, pool) != APR_SUCCESS && res.error
             && strstr(res.error, "not a regular file");
        req_init(&req, "file:///dev/zero");
        ok = ok && fetcher->fetch(fetcher, &req, &res, pool) != APR_SUCCESS && res.error
             && strstr(res.error, "not a regular file");
        _exit(ok ? 0 : 3);
    }
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    unlink(fifo);
    rmdir(dir);
    assert_true(WIFEXITED(wst));
    assert_int_equal(WEXITSTATUS(wst), 0);
}

/* file://localhost/path and file:/path name the same local file. */
static void test_file_url_forms(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    const char *path = temp_file(DOC);
    (void)state;
    req_init(&req, apr_pstrcat(pool, "file://localhost", path, NULL));
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_string_equal(res.body, DOC);
    req_init(&req, apr_pstrcat(pool, "file:", path, NULL));
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_string_equal(res.body, DOC);
    req_init(&req, "file://otherhost/etc/passwd");
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_EINVAL);
    unlink(path);
}

/* A loopback http:// fetch never goes through a proxy from the environment. */
static void test_http_ignores_proxy_env(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    apr_status_t rv;
    (void)state;
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
    req_init(&req, http_url("/jwks"));
    rv = fetcher->fetch(fetcher, &req, &res, pool);
    unsetenv("http_proxy");
    unsetenv("ALL_PROXY");
    assert_int_equal(rv, APR_SUCCESS);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, DOC);
}

/* An ETag with control bytes is never echoed back; an absurd max-age is capped. */
static void test_http_bad_etag_huge_max_age(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    (void)state;
    req_init(&req, http_url("/badetag"));
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.status, 200);
    assert_null(res.etag);
    assert_true(res.max_age > 0);
    assert_true(res.max_age <= 10LL * 365 * 24 * 3600);
}

static void test_protocol_refused(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    (void)state;
    req_init(&req, "ftp://127.0.0.1:1/jwks");
    assert_int_not_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_non_null(res.error);
    assert_non_null(strstr(res.error, "nsupported protocol"));
    req_init(&req, "gopher://127.0.0.1:1/jwks");
    assert_int_not_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    req.url = NULL;
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_EINVAL);
}

/* ---- http:// ------------------------------------------------------------------- */

static void test_http_ok_etag_max_age(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    (void)state;
    req_init(&req, http_url("/jwks"));
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, DOC);
    assert_int_equal(res.len, strlen(DOC));
    assert_non_null(res.etag);
    assert_string_equal(res.etag, "\"abc\"");
    assert_int_equal(res.max_age, 120);
}

static void test_http_not_modified(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    (void)state;
    req_init(&req, http_url("/jwks"));
    req.etag = "\"abc\"";
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.status, 304);
    assert_int_equal(res.len, 0);
    assert_string_equal(res.etag, "\"abc\"");
    req.etag = "\"other\"";
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.status, 200);
}

static void test_http_cache_control_variants(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    (void)state;
    req_init(&req, http_url("/nocache"));
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.max_age, 0);
    assert_null(res.etag);
    req_init(&req, http_url("/nostore"));
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.max_age, -1);
}

static void test_http_timeout(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    apr_time_t t0 = apr_time_now();
    (void)state;
    req_init(&req, http_url("/slow"));
    req.timeout = apr_time_from_msec(300);
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_TIMEUP);
    assert_true(apr_time_now() - t0 < apr_time_from_sec(2));
    assert_non_null(res.error);
    assert_non_null(strstr(res.error, "imeout"));
}

static apr_time_t cancel_at;

static int cancel_after(void *baton)
{
    (void)baton;
    return apr_time_now() >= cancel_at;
}

static void test_http_cancel(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    apr_time_t t0 = apr_time_now();
    (void)state;
    req_init(&req, http_url("/slow"));
    req.cancelled = cancel_after;
    cancel_at = t0 + apr_time_from_msec(200);
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_EGENERAL);
    assert_true(apr_time_now() - t0 < apr_time_from_msec(2500));
    assert_string_equal(res.error, "cancelled");
    /* A hook that never fires changes nothing. */
    req_init(&req, http_url("/jwks"));
    cancel_at = t0 + apr_time_from_sec(3600);
    req.cancelled = cancel_after;
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.status, 200);
}

static void test_http_too_large(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    (void)state;
    req_init(&req, http_url("/big"));          /* Content-Length says too much */
    assert_int_not_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_string_equal(res.error, "document larger than 10000 bytes");
    req_init(&req, http_url("/bigunsized"));   /* no length: the write callback stops it */
    assert_int_not_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_string_equal(res.error, "document larger than 10000 bytes");
    req_init(&req, http_url("/big"));          /* exactly at the cap is fine */
    req.max_size = 20000;
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.len, 20000);
}

static void test_http_redirect_not_followed(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    (void)state;
    req_init(&req, http_url("/redirect"));
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.status, 302);
    assert_string_equal(res.body, "moved");
}

/* Extra headers (AuthJWKSFetchHeader) go with the request, after If-None-Match. */
static void test_http_extra_headers(void **state)
{
    static const char *const hdrs[] = { "Authorization: Bearer sa-token", "X-Extra: two words",
                                        NULL };
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    (void)state;
    req_init(&req, http_url("/cred"));
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.status, 401);
    req.headers = hdrs;
    req.etag = "\"abc\"";
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body, DOC);
}

/* A proxy named by the request (AuthJWKSFetchProxy) is not used for http://
 * (loopback only): the proxy here is a closed port, the fetch still works. */
static void test_http_ignores_configured_proxy(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    (void)state;
    req_init(&req, http_url("/jwks"));
    req.proxy = "http://127.0.0.1:1";
    req.proxy_user = "u";
    req.proxy_password = "p";
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.status, 200);
}

static void test_http_not_found_and_refused(void **state)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    int fd;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    (void)state;
    req_init(&req, http_url("/missing"));
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_SUCCESS);
    assert_int_equal(res.status, 404);
    /* A port nobody listens on (bound, never listened). */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    req_init(&req, apr_psprintf(pool, "http://127.0.0.1:%d/jwks", ntohs(sa.sin_port)));
    assert_int_equal(fetcher->fetch(fetcher, &req, &res, pool), APR_EGENERAL);
    assert_non_null(res.error);
    assert_int_equal(res.status, 0);
    close(fd);
}

static int group_setup(void **state)
{
    (void)state;
    if (apr_pool_create(&pool, NULL) != APR_SUCCESS)
        return -1;
    if (ajw_curl_global_init() != APR_SUCCESS || ajw_curl_global_init() != APR_SUCCESS)
        return -1;
    fetcher = ajw_curl_fetcher(pool);
    return start_server();
}

static int group_teardown(void **state)
{
    (void)state;
    stop_server();
    apr_pool_destroy(pool);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_ok),
        cmocka_unit_test(test_file_too_large),
        cmocka_unit_test(test_file_missing),
        cmocka_unit_test(test_file_not_regular),
        cmocka_unit_test(test_file_url_forms),
        cmocka_unit_test(test_http_ignores_proxy_env),
        cmocka_unit_test(test_http_bad_etag_huge_max_age),
        cmocka_unit_test(test_protocol_refused),
        cmocka_unit_test(test_http_ok_etag_max_age),
        cmocka_unit_test(test_http_not_modified),
        cmocka_unit_test(test_http_cache_control_variants),
        cmocka_unit_test(test_http_timeout),
        cmocka_unit_test(test_http_cancel),
        cmocka_unit_test(test_http_too_large),
        cmocka_unit_test(test_http_redirect_not_followed),
        cmocka_unit_test(test_http_extra_headers),
        cmocka_unit_test(test_http_ignores_configured_proxy),
        cmocka_unit_test(test_http_not_found_and_refused),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    apr_terminate();
    curl_global_cleanup();
    return rc;
}
