/* ajw_url.c — which JWKS URLs the module will fetch (see ajw_fetch.h).
 * One rule for the module's directives and for jwks-tool. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <apr_uri.h>
#include <apr_lib.h>

#include "ajw_fetch.h"

int ajw_url_host_is_loopback(const char *host)
{
    int parts = 0;
    const char *s = host;
    if (!host)
        return 0;
    if (!strcasecmp(host, "localhost") || !strcmp(host, "::1") || !strcmp(host, "[::1]"))
        return 1;
    if (strncmp(host, "127.", 4) != 0)
        return 0;
    /* 127.0.0.0/8 written as a dotted quad, and nothing else. */
    while (*s) {
        const char *d = s;
        while (apr_isdigit(*s))
            s++;
        if (s == d || s - d > 3 || atoi(d) > 255)
            return 0;
        parts++;
        if (*s == '.')
            s++;
        else if (*s)
            return 0;
    }
    return parts == 4;
}

const char *ajw_url_problem(const char *url, const char **scheme, const char **path,
                            apr_pool_t *p)
{
    apr_uri_t u;
    if (apr_uri_parse(p, url, &u) != APR_SUCCESS || !u.scheme)
        return "not an absolute URL";
    *scheme = u.scheme;
    *path = u.path;
    if (u.user || u.password)
        return "credentials in the URL are not supported (they would end up in logs)";
    if (!strcasecmp(u.scheme, "https"))
        return (u.hostname && *u.hostname) ? NULL : "no host";
    if (!strcasecmp(u.scheme, "http"))
        return ajw_url_host_is_loopback(u.hostname) ? NULL
               : "http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); "
                 "use https://";
    if (!strcasecmp(u.scheme, "file")) {
        if (u.hostname && *u.hostname && strcasecmp(u.hostname, "localhost"))
            return "file:// URLs name a local path (file:///path)";
        return (u.path && u.path[0] == '/') ? NULL : "no absolute path";
    }
    return "the scheme must be https://, file:// or (loopback only) http://";
}
