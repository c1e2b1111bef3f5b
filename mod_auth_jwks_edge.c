/* mod_auth_jwks_edge.c — the edge between the module and httpd's request
 * life cycle. A request can reach a backend without check_authn running
 * (`Require ip` granting first), have its URL copied before authentication
 * (ProxyPass nocanon, RewriteRule [P]), be re-run as an internal redirect or
 * subrequest, be told by the client which headers mod_proxy must drop
 * (Connection:), or be answered from a cache before any authentication.
 * What the module promises about tokens, claim headers and caching is kept
 * here, on every one of those paths; mod_auth_jwks.c calls in from its hooks.
 *
 * Also here: the startup walk over the configuration tree that warns about
 * permissive or ambiguous jwks sections. */
#include <string.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <grp.h>

#include <apr_strings.h>
#include <apr_uri.h>
#include <apr_lib.h>
#include <apr_atomic.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_request.h"
#include "util_filter.h"
#include "unixd.h"

#include "mod_auth_jwks.h"

APLOG_USE_MODULE(auth_jwks);

/* ------------------------------------------------------------------ */
/* Claim headers from clients                                           */

/* Header names compared case-insensitively with '-' and '_' alike, since
 * many backends (CGI, WSGI, PHP) fold both to the same variable. `whole`:
 * the name must equal prefix, not just start with it. */
static char hname_fold(char c)
{
    return c == '_' ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int hname_prefix_match(const char *name, size_t nlen, const char *prefix, int whole)
{
    size_t i;
    for (i = 0; prefix[i]; i++)
        if (i >= nlen || hname_fold(name[i]) != hname_fold(prefix[i]))
            return 0;
    return whole ? i == nlen : 1;
}

typedef struct strip_t {
    const apr_array_header_t *prefixes;
    const apr_array_header_t *exact;  /* may be NULL */
} strip_t;

/* Could a header of this name pose as one the module sets? */
static int is_claim_header(const char *name, size_t nlen, const strip_t *st)
{
    char first = nlen ? hname_fold(name[0]) : '\0';
    int i;
    /* Every header of every request passes here: the first letter rules
     * out most names before any walk. */
    if (first == 'x' && hname_prefix_match(name, nlen, AJW_CLAIMS_HEADER, 1))
        return 1;
    for (i = 0; st->prefixes && i < st->prefixes->nelts; i++) {
        const char *pre = APR_ARRAY_IDX(st->prefixes, i, const char *);
        if ((!pre[0] || hname_fold(pre[0]) == first) && hname_prefix_match(name, nlen, pre, 0))
            return 1;
    }
    for (i = 0; st->exact && i < st->exact->nelts; i++) {
        const char *ex = APR_ARRAY_IDX(st->exact, i, const char *);
        if ((!ex[0] || hname_fold(ex[0]) == first) && hname_prefix_match(name, nlen, ex, 1))
            return 1;
    }
    return 0;
}

/* Append the comma-separated items of value, trimmed, empty ones skipped. */
static void split_list(apr_pool_t *p, const char *value, apr_array_header_t *out)
{
    char *tok, *last;
    for (tok = apr_strtok(apr_pstrdup(p, value), ",", &last); tok;
         tok = apr_strtok(NULL, ",", &last)) {
        size_t len;
        while (*tok == ' ' || *tok == '\t')
            tok++;
        len = strlen(tok);
        while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
            tok[--len] = '\0';
        if (len)
            APR_ARRAY_PUSH(out, char *) = tok;
    }
}

/* The next name of a Connection value, split the way mod_proxy splits it
 * when it drops hop-by-hop headers: at commas, semicolons and any white
 * space, a double-quoted run kept inside the name. Returns the name's start
 * and its length in *len, or NULL at the end; *v moves past it. */
static const char *conn_next_name(const char **v, size_t *len)
{
    const char *p = *v, *start;
    while (*p && (*p == ',' || *p == ';' || apr_isspace(*p)))
        p++;
    if (!*p) {
        *v = p;
        return NULL;
    }
    for (start = p; *p && *p != ',' && *p != ';' && !apr_isspace(*p); ) {
        if (*p++ == '"')
            while (*p && *p++ != '"')
                ;
    }
    *len = (size_t)(p - start);
    *v = p;
    return start;
}

/* Does a Connection value name a claim header? Read in place: this runs on
 * every request that has a Connection header, and almost never matches. */
static int list_names_claim_header(const char *v, const strip_t *st)
{
    const char *name;
    size_t len;
    while ((name = conn_next_name(&v, &len)) != NULL)
        if (is_claim_header(name, len, st))
            return 1;
    return 0;
}

typedef struct conn_scan_t {
    const strip_t *st;
    apr_pool_t *p;
    int claims;                   /* a value names a claim header */
    int dropped;
    char *kept;                   /* the other names, joined with ", " */
} conn_scan_t;

static int conn_check_one(void *baton, const char *key, const char *val)
{
    conn_scan_t *cs = baton;
    (void)key;
    cs->claims |= list_names_claim_header(val, cs->st);
    return !cs->claims;
}

static int conn_keep_names(void *baton, const char *key, const char *val)
{
    conn_scan_t *cs = baton;
    const char *name;
    size_t len;
    (void)key;
    while ((name = conn_next_name(&val, &len)) != NULL) {
        char *item;
        if (is_claim_header(name, len, cs->st)) {
            cs->dropped++;
            continue;
        }
        item = apr_pstrmemdup(cs->p, name, len);
        cs->kept = cs->kept ? apr_pstrcat(cs->p, cs->kept, ", ", item, NULL) : item;
    }
    return 1;
}

/* Connection: without the names of claim headers. mod_proxy_http drops
 * every header a client lists there (in every Connection header), so
 * `Connection: X-JWT-Claims` would make the backend receive the request
 * without our verified claims. The names left are rejoined in one header. */
static void sanitize_connection(request_rec *r, const strip_t *st)
{
    conn_scan_t cs;
    memset(&cs, 0, sizeof(cs));
    cs.st = st;
    cs.p = r->pool;
    apr_table_do(conn_check_one, &cs, r->headers_in, "Connection", NULL);
    if (!cs.claims)
        return;
    apr_table_do(conn_keep_names, &cs, r->headers_in, "Connection", NULL);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "removed %d claim header name(s) from "
                  "the client's Connection header", cs.dropped);
    apr_table_unset(r->headers_in, "Connection");
    if (cs.kept)
        apr_table_setn(r->headers_in, "Connection", cs.kept);
}

void ajw_edge_strip_claim_headers(request_rec *r, const apr_array_header_t *prefixes,
                                  const apr_array_header_t *names)
{
    const apr_array_header_t *arr = apr_table_elts(r->headers_in);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_array_header_t *found = NULL;
    strip_t st;
    int i;
    st.prefixes = prefixes;
    st.exact = names;
    /* Names first, removal after: unsetting while walking the table would
     * move the entries under the walk. */
    for (i = 0; i < arr->nelts; i++) {
        if (!e[i].key || !is_claim_header(e[i].key, strlen(e[i].key), &st))
            continue;
        if (!found)
            found = apr_array_make(r->pool, 2, sizeof(const char *));
        APR_ARRAY_PUSH(found, const char *) = e[i].key;
    }
    for (i = 0; found && i < found->nelts; i++) {
        const char *name = APR_ARRAY_IDX(found, i, const char *);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "removed client header %s",
                      ap_escape_logitem(r->pool, name));
        apr_table_unset(r->headers_in, name);
    }
    sanitize_connection(r, &st);
}

void ajw_edge_strip_section(request_rec *r, const ajw_dir_conf *c)
{
    apr_array_header_t one, *names = NULL;
    const char *p = c->header_prefix;
    int i;
    memset(&one, 0, sizeof(one));
    one.pool = r->pool;
    one.elt_size = sizeof(const char *);
    one.nelts = one.nalloc = 1;
    one.elts = (char *)&p;
    if (c->map_headers->nelts) {
        names = apr_array_make(r->pool, c->map_headers->nelts, sizeof(const char *));
        for (i = 0; i < c->map_headers->nelts; i++)
            APR_ARRAY_PUSH(names, const char *) =
                APR_ARRAY_IDX(c->map_headers, i, ajw_claim_map_t).name;
    }
    ajw_edge_strip_claim_headers(r, &one, names);
}

/* Is every name the section strips also stripped by the server's pass
 * (post_read_request): its prefix and AuthJWKSClaimHeader names each start
 * with a server prefix or equal a server name? X-JWT-Claims always is. */
int ajw_edge_section_covered(const ajw_srv_conf *sc, const ajw_dir_conf *c)
{
    strip_t st;
    int i;
    if (!sc->strip_prefixes || sc->strip == 0)
        return 0;
    st.prefixes = sc->strip_prefixes;
    st.exact = sc->strip_names;
    if (!c->header_prefix || !is_claim_header(c->header_prefix, strlen(c->header_prefix), &st))
        return 0;
    for (i = 0; i < c->map_headers->nelts; i++) {
        const char *n = APR_ARRAY_IDX(c->map_headers, i, ajw_claim_map_t).name;
        if (!is_claim_header(n, strlen(n), &st))
            return 0;
    }
    return 1;
}

apr_uint64_t ajw_edge_headers_fp(const apr_table_t *t)
{
    const apr_array_header_t *arr = apr_table_elts(t);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    apr_uint64_t fp = (apr_uint64_t)(apr_uintptr_t)e * 31u + (apr_uint64_t)arr->nelts;
    int i;
    for (i = 0; i < arr->nelts; i++)
        fp = (fp ^ (apr_uint64_t)(apr_uintptr_t)e[i].key) * 1099511628211ULL;
    return fp;
}

/* ------------------------------------------------------------------ */
/* AuthJWKSForwardToken Off                                             */

static int is_item(const char *item, size_t len, const char *name, size_t nlen)
{
    return len >= nlen && !memcmp(item, name, nlen) && (len == nlen || item[nlen] == '=');
}

/* `list` split at `sep` without the items named `name` (name=... or bare
 * name), rejoined with `join`; NULL when nothing is left. *removed counts
 * the items taken out. */
static char *without_item(apr_pool_t *p, const char *list, char sep, const char *join,
                          const char *name, int *removed)
{
    char *out = NULL;
    size_t nlen = strlen(name);
    while (list && *list) {
        const char *end = strchr(list, sep);
        size_t len = end ? (size_t)(end - list) : strlen(list);
        while (len && (*list == ' ' || *list == '\t')) {
            list++;
            len--;
        }
        if (len && is_item(list, len, name, nlen)) {
            (*removed)++;
        }
        else if (len) {
            char *item = apr_pstrmemdup(p, list, len);
            out = out ? apr_pstrcat(p, out, join, item, NULL) : item;
        }
        list = end ? end + 1 : NULL;
    }
    return out;
}

/* A URI (path?query, or proxy:scheme://host/path?query) without the query
 * parameter `name`; the same pointer when it has none. */
static const char *uri_without_param(apr_pool_t *p, const char *uri, const char *name)
{
    const char *q = uri ? strchr(uri, '?') : NULL;
    const char *frag;
    char *rest, *query;
    int removed = 0;
    if (!q)
        return uri;
    frag = strchr(q, '#');
    query = frag ? apr_pstrmemdup(p, q + 1, (size_t)(frag - q - 1)) : apr_pstrdup(p, q + 1);
    rest = without_item(p, query, '&', "&", name, &removed);
    if (!removed)
        return uri;
    return apr_pstrcat(p, apr_pstrmemdup(p, uri, (size_t)(q - uri)), rest ? "?" : "",
                       rest ? rest : "", frag ? frag : "", NULL);
}

/* "METHOD target PROTOCOL" with the parameter taken out of the target. */
static const char *request_line_without_param(apr_pool_t *p, const char *line, const char *name)
{
    const char *t = line ? strchr(line, ' ') : NULL, *end;
    const char *target, *clean;
    if (!t)
        return line;
    t++;
    end = strrchr(t, ' ');
    if (!end)
        end = t + strlen(t);
    target = apr_pstrmemdup(p, t, (size_t)(end - t));
    clean = uri_without_param(p, target, name);
    if (clean == target)
        return line;
    return apr_pstrcat(p, apr_pstrmemdup(p, line, (size_t)(t - line)), clean, end, NULL);
}

/* The query token out of r and every request it came from: the access log
 * writes the first request's line (%r), CGI's REQUEST_URI is rebuilt from
 * the request line, and a proxy: filename was copied from the URL before
 * authentication by ProxyPass nocanon or RewriteRule [P]. Each request's
 * strings come from its own pool (a subrequest's dies before its main). */
static void scrub_query(request_rec *r, const char *name)
{
    request_rec *q;
    int removed = 0;
    for (q = r; q; q = q->prev ? q->prev : q->main) {
        char *args = without_item(q->pool, q->args, '&', "&", name, &removed);
        if (removed) {
            q->args = args;
            q->parsed_uri.query = args;
            removed = 0;
        }
        q->unparsed_uri = (char *)uri_without_param(q->pool, q->unparsed_uri, name);
        q->the_request = (char *)request_line_without_param(q->pool, q->the_request, name);
        if (q->filename && !strncmp(q->filename, "proxy:", 6))
            q->filename = (char *)uri_without_param(q->pool, q->filename, name);
    }
}

typedef struct cookie_join_t {
    apr_pool_t *p;
    const char *all;
} cookie_join_t;

static int join_cookies(void *baton, const char *key, const char *val)
{
    cookie_join_t *cj = baton;
    (void)key;
    cj->all = cj->all ? apr_pstrcat(cj->p, cj->all, "; ", val, NULL) : val;
    return 1;
}

static void scrub_cookie(request_rec *r, const char *name)
{
    cookie_join_t cj = { r->pool, NULL };
    char *rest;
    int removed = 0;
    apr_table_do(join_cookies, &cj, r->headers_in, "Cookie", NULL);
    rest = without_item(r->pool, cj.all, ';', "; ", name, &removed);
    if (!removed)
        return;
    apr_table_unset(r->headers_in, "Cookie");
    if (rest)
        apr_table_setn(r->headers_in, "Cookie", rest);
}

static int is_scheme(const char *v, const char *scheme)
{
    size_t n = strlen(scheme);
    return !strncasecmp(v, scheme, n) && (v[n] == ' ' || v[n] == '\t' || v[n] == '\0');
}

/* Authorization: Bearer ... (and DPoP ... where the section takes DPoP);
 * another scheme is not a token of ours. */
static void scrub_header(request_rec *r, const ajw_dir_conf *c)
{
    const char *v = apr_table_get(r->headers_in, "Authorization");
    if (!v)
        return;
    while (*v == ' ' || *v == '\t')
        v++;
    if (is_scheme(v, "Bearer") || (c->dpop != AJW_DPOP_OFF && is_scheme(v, "DPoP")))
        apr_table_unset(r->headers_in, "Authorization");
}

/* AuthJWKSTokenFrom header=<Name>[:<scheme>]: the header (every copy of
 * it), unless it holds another scheme, which is not a token of ours. */
static void scrub_named_header(request_rec *r, const ajw_from_t *f)
{
    const char *v = apr_table_get(r->headers_in, f->name);
    if (!v)
        return;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!f->scheme || is_scheme(v, f->scheme))
        apr_table_unset(r->headers_in, f->name);
}

void ajw_edge_scrub_token(request_rec *r, const ajw_dir_conf *c)
{
    int i;
    if (c->from->nelts == 0)
        scrub_header(r, c);
    for (i = 0; i < c->from->nelts; i++) {
        const ajw_from_t *f = &APR_ARRAY_IDX(c->from, i, ajw_from_t);
        if (f->kind == TOKEN_FROM_HEADER && f->name)
            scrub_named_header(r, f);
        else if (f->kind == TOKEN_FROM_HEADER)
            scrub_header(r, c);
        else if (f->kind == TOKEN_FROM_COOKIE)
            scrub_cookie(r, f->name);
        else
            scrub_query(r, f->name);
    }
}

int ajw_edge_token_in_proxy_url(request_rec *r, const char *token, size_t len)
{
    return token && len && r->filename && !strncmp(r->filename, "proxy:", 6)
           && memmem(r->filename, strlen(r->filename), token, len) != NULL;
}

/* ------------------------------------------------------------------ */
/* Caches                                                               */

/* Logged once per process: the same misconfiguration would otherwise be
 * reported on every request. */
static volatile apr_uint32_t quick_warned;

/* With CacheQuickHandler On, mod_cache arms its save filter in the quick
 * handler, before authentication, and would answer later requests from the
 * cache without any: its filter is already in place when fixups run. */
static int quick_cache_armed(request_rec *r)
{
    ap_filter_t *f;
    for (f = r->output_filters; f; f = f->next)
        if (f->frec && f->frec->name && !strncasecmp(f->frec->name, "cache_save", 10))
            return 1;
    return 0;
}

void ajw_edge_no_cache(request_rec *r, const ajw_dir_conf *c)
{
    if (!c->cacheable) {
        r->no_cache = 1;
        return;
    }
    if (!quick_cache_armed(r))
        return;
    r->no_cache = 1;
    if (apr_atomic_cas32(&quick_warned, 1, 0) == 0)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "AuthJWKSCacheable On is ignored "
                      "while mod_cache runs as a quick handler (it would answer before "
                      "authentication): set CacheQuickHandler Off to cache jwks locations");
}

/* Comma-separated header tokens of `name` from both response tables. */
static apr_array_header_t *header_tokens(request_rec *r, const char *name)
{
    apr_array_header_t *out = apr_array_make(r->pool, 4, sizeof(char *));
    apr_table_t *tabs[2];
    int t;
    tabs[0] = r->err_headers_out;
    tabs[1] = r->headers_out;
    for (t = 0; t < 2; t++) {
        const apr_array_header_t *arr = apr_table_elts(tabs[t]);
        const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
        int i;
        for (i = 0; i < arr->nelts; i++)
            if (e[i].key && !strcasecmp(e[i].key, name))
                split_list(r->pool, e[i].val, out);
    }
    return out;
}

static int has_token(const apr_array_header_t *toks, const char *name)
{
    int i;
    for (i = 0; i < toks->nelts; i++)
        if (!strcasecmp(APR_ARRAY_IDX(toks, i, char *), name))
            return 1;
    return 0;
}

/* Replace header `name` in both response tables by the tokens joined with ", ". */
static void set_tokens(request_rec *r, const char *name, const apr_array_header_t *toks)
{
    const char *v = NULL;
    int i;
    for (i = 0; i < toks->nelts; i++)
        v = v ? apr_pstrcat(r->pool, v, ", ", APR_ARRAY_IDX(toks, i, char *), NULL)
              : APR_ARRAY_IDX(toks, i, char *);
    apr_table_unset(r->err_headers_out, name);
    apr_table_unset(r->headers_out, name);
    if (v)
        apr_table_setn(r->headers_out, name, v);
}

/* Cache-Control: private, unless no-store already says more; `public` and
 * `s-maxage` (which speak to shared caches) go. */
static void mark_private(request_rec *r)
{
    apr_array_header_t *cc = header_tokens(r, "Cache-Control");
    apr_array_header_t *keep;
    int i;
    if (has_token(cc, "no-store"))
        return;
    keep = apr_array_make(r->pool, cc->nelts + 1, sizeof(char *));
    for (i = 0; i < cc->nelts; i++) {
        char *t = APR_ARRAY_IDX(cc, i, char *);
        if (strcasecmp(t, "public") && strncasecmp(t, "s-maxage", 8))
            APR_ARRAY_PUSH(keep, char *) = t;
    }
    if (!has_token(cc, "private"))
        APR_ARRAY_PUSH(keep, char *) = "private";
    set_tokens(r, "Cache-Control", keep);
}

/* Vary: the request headers the answer depended on (Authorization or the
 * named header for a header token, Cookie for a cookie token), so no cache
 * shares it. */
static void add_vary(request_rec *r, const ajw_dir_conf *c)
{
    apr_array_header_t *v = header_tokens(r, "Vary");
    int i, want_auth = c->from->nelts == 0, want_cookie = 0;
    if (has_token(v, "*"))
        return;
    for (i = 0; i < c->from->nelts; i++) {
        const ajw_from_t *f = &APR_ARRAY_IDX(c->from, i, ajw_from_t);
        want_auth |= f->kind == TOKEN_FROM_HEADER && !f->name;
        want_cookie |= f->kind == TOKEN_FROM_COOKIE;
        if (f->kind == TOKEN_FROM_HEADER && f->name && !has_token(v, f->name))
            APR_ARRAY_PUSH(v, char *) = (char *)f->name;
    }
    if (want_auth && !has_token(v, "Authorization"))
        APR_ARRAY_PUSH(v, char *) = "Authorization";
    if (want_cookie && !has_token(v, "Cookie"))
        APR_ARRAY_PUSH(v, char *) = "Cookie";
    set_tokens(r, "Vary", v);
}

/* Runs once, on the first brigade, before the headers go out (and before
 * mod_cache's save filter, which then sees what outside caches will see). */
apr_status_t ajw_edge_private_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    const ajw_dir_conf *c = ap_get_module_config(r->per_dir_config, &auth_jwks_module);
    /* Most answers have neither header yet: set them without splitting lists. */
    if (!apr_table_get(r->headers_out, "Cache-Control")
        && !apr_table_get(r->err_headers_out, "Cache-Control"))
        apr_table_setn(r->headers_out, "Cache-Control", "private");
    else
        mark_private(r);
    if (c->from->nelts == 0 && !apr_table_get(r->headers_out, "Vary")
        && !apr_table_get(r->err_headers_out, "Vary"))
        apr_table_setn(r->headers_out, "Vary", "Authorization");
    else
        add_vary(r, c);
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

/* ------------------------------------------------------------------ */
/* Startup checks over the configuration tree                          */

/* What a walk up from one section finds: the nearest setting of each
 * directive that matters, as written. */
typedef struct sect_view_t {
    int has_source;               /* AuthJWKSURL, or AuthJWKSIssuer <iss> <url> */
    int has_issuer, issuers;      /* issuers: lines in the nearest level that has any */
    int has_audience;
    int aud_resource;             /* the nearest AuthJWKSAudience names "resource" */
    int has_prm;                  /* AuthJWKSResourceMetadata applies */
    const char *user_claim;
    const char *status_mode;      /* AuthJWKSStatusList nearest the section, NULL: none */
    int has_status_prefix;        /* AuthJWKSStatusListURL in or around it */
} sect_view_t;

/* Does an AuthJWKSAudience line name the keyword "resource"? */
static int names_resource(apr_pool_t *p, const ap_directive_t *d)
{
    const char *args = d->args, *w;
    while (args && *(w = ap_getword_conf(p, &args)))
        if (!strcmp(w, "resource"))
            return 1;
    return 0;
}

static int is_section(const ap_directive_t *d)
{
    return d->directive[0] == '<' && d->first_child;
}

/* The first argument of a directive line, unquoted (a section's without
 * the closing '>'). */
static const char *first_arg(apr_pool_t *p, const ap_directive_t *d)
{
    const char *args = d->args;
    char *w = args ? ap_getword_conf(p, &args) : apr_pstrdup(p, "");
    size_t n = strlen(w);
    if (d->directive[0] == '<' && n && w[n - 1] == '>')
        w[n - 1] = '\0';
    return w;
}

static void view_level(apr_pool_t *p, const ap_directive_t *first, sect_view_t *v)
{
    const ap_directive_t *d;
    int issuers = 0, level_aud = 0;
    for (d = first; d; d = d->next) {
        if (!strcasecmp(d->directive, "AuthJWKSIssuer")) {
            const char *args = d->args;
            /* a template ({tenantid}) is one issuer per tenant: several */
            issuers += strstr(ap_getword_conf(p, &args), "{tenantid}") ? 2 : 1;
            v->has_source |= *ap_getword_conf(p, &args) != '\0';
        }
        else if (!strcasecmp(d->directive, "AuthJWKSURL"))
            v->has_source = 1;
        else if (!strcasecmp(d->directive, "AuthJWKSAudience") && !v->has_audience)
            level_aud |= 1 | (names_resource(p, d) << 1);
        else if (!strcasecmp(d->directive, "AuthJWKSResourceMetadata"))
            v->has_prm = 1;
        else if (!strcasecmp(d->directive, "AuthJWKSUserClaim") && !v->user_claim)
            v->user_claim = first_arg(p, d);
        else if (!strcasecmp(d->directive, "AuthJWKSStatusList") && !v->status_mode)
            v->status_mode = first_arg(p, d);
        else if (!strcasecmp(d->directive, "AuthJWKSStatusListURL"))
            v->has_status_prefix = 1;
    }
    if (issuers && !v->has_issuer) {
        v->has_issuer = 1;
        v->issuers = issuers;
    }
    if (level_aud && !v->has_audience) {   /* a level's lines together replace the outer's */
        v->has_audience = 1;
        v->aud_resource = (level_aud & 2) != 0;
    }
}

/* Sections of the same kind in `first`'s list whose path is a prefix of
 * this one's (<Location /> for <Location /api>) also apply: look in them. */
static void view_siblings(apr_pool_t *p, const ap_directive_t *first,
                          const ap_directive_t *sec, sect_view_t *v)
{
    const ap_directive_t *d;
    const char *path = first_arg(p, sec);
    for (d = first; d; d = d->next) {
        const char *other;
        if (d == sec || !is_section(d) || strcasecmp(d->directive, sec->directive))
            continue;
        other = first_arg(p, d);
        if (*other && !strncmp(path, other, strlen(other)))
            view_level(p, d->first_child, v);
    }
}

static int says_jwks(apr_pool_t *p, const ap_directive_t *first)
{
    const ap_directive_t *d;
    for (d = first; d; d = d->next)
        if (!strcasecmp(d->directive, "AuthType") && !strcasecmp(first_arg(p, d), AJW_AUTH_TYPE))
            return 1;
    return 0;
}

/* Is there a key source anywhere below first (sections included)? */
static int any_source(apr_pool_t *p, const ap_directive_t *first, int into_vhosts)
{
    const ap_directive_t *d;
    for (d = first; d; d = d->next) {
        if (!strcasecmp(d->directive, "AuthJWKSURL"))
            return 1;
        if (!strcasecmp(d->directive, "AuthJWKSIssuer")) {
            const char *args = d->args;
            ap_getword_conf(p, &args);
            if (*ap_getword_conf(p, &args))
                return 1;
        }
        if (d->first_child && (into_vhosts || strcasecmp(d->directive, "<VirtualHost"))
            && any_source(p, d->first_child, into_vhosts))
            return 1;
    }
    return 0;
}

/* The <VirtualHost> a section is in, or NULL for the main server. */
static const ap_directive_t *vhost_of(const ap_directive_t *d)
{
    for (d = d->parent; d; d = d->parent)
        if (!strcasecmp(d->directive, "<VirtualHost"))
            return d;
    return NULL;
}

/* Returns 1 when the section can never work: no key source in its host. */
static int check_one(server_rec *s, apr_pool_t *p, const ap_directive_t *sec, int warn)
{
    sect_view_t v;
    const ap_directive_t *up;
    const char *where;
    size_t ulen;
    memset(&v, 0, sizeof(v));
    view_level(p, sec->first_child, &v);
    view_siblings(p, sec->parent ? sec->parent->first_child : ap_conftree, sec, &v);
    if (sec->parent)                  /* the main server's sections apply in vhosts too */
        view_siblings(p, ap_conftree, sec, &v);
    for (up = sec->parent; up; up = up->parent)
        view_level(p, up->first_child, &v);
    view_level(p, ap_conftree, &v);
    where = apr_psprintf(p, "%s %s> (%s:%d)", sec->directive, first_arg(p, sec),
                         sec->filename, sec->line_num);
    if (!v.has_source) {
        const ap_directive_t *vh = vhost_of(sec);
        if (!any_source(p, ap_conftree, 0) && !(vh && any_source(p, vh->first_child, 1))) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_ERR, 0, s, "%s: AuthType jwks "
                         "without a key source: no AuthJWKSURL (or AuthJWKSIssuer <iss> <url>) "
                         "applies here, so every token would be refused", where);
            return 1;
        }
        if (warn)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s: AuthType jwks with no "
                         "AuthJWKSURL in or around the section; if none applies at run time, "
                         "every request answers 500", where);
    }
    if (v.aud_resource && !v.has_prm) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_ERR, 0, s, "%s: AuthJWKSAudience "
                     "resource without AuthJWKSResourceMetadata: no resource to compare the "
                     "token's aud with, so every token would be refused", where);
        return 1;
    }
    if (!warn)
        return 0;
    if (!v.has_issuer)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s: no AuthJWKSIssuer: tokens of any "
                     "issuer that the URL's keys sign are accepted; name the issuer, or write "
                     "AuthJWKSIssuer * to accept any deliberately", where);
    if (!v.has_audience)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s: no AuthJWKSAudience: tokens meant "
                     "for any audience (other APIs, ID tokens) are accepted; name this API's "
                     "audience, or write AuthJWKSAudience * to accept any deliberately", where);
    if (v.status_mode && strcasecmp(v.status_mode, "off") && !v.has_status_prefix)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s: AuthJWKSStatusList %s without "
                     "AuthJWKSStatusListURL: every token that names a status list is refused; "
                     "name the prefixes its lists may be fetched from", where, v.status_mode);
    ulen = v.user_claim ? strlen(v.user_claim) : 0;
    if (v.issuers > 1
        && !(ulen > 4 && !strcmp(v.user_claim + ulen - 4, AJW_USER_AT_ISS)))
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "%s: several issuers share a bare "
                     "AuthJWKSUserClaim %s: the same user name from two issuers is one user; "
                     "write AuthJWKSUserClaim %s@iss", where, v.user_claim ? v.user_claim : "sub",
                     v.user_claim ? v.user_claim : "sub");
    return 0;
}

static int walk(server_rec *s, apr_pool_t *p, const ap_directive_t *first, int warn)
{
    const ap_directive_t *d;
    int errors = 0;
    for (d = first; d; d = d->next) {
        if (!is_section(d))
            continue;
        if (strcasecmp(d->directive, "<VirtualHost") && says_jwks(p, d->first_child))
            errors += check_one(s, p, d, warn);
        errors += walk(s, p, d->first_child, warn);
    }
    return errors;
}

/* May the httpd user (uid, gid and its supplementary groups) do `want`
 * (a mask of the owner bits R/W/X) on path? Root may do anything. */
static int user_may(const char *path, mode_t want)
{
    struct stat st;
    uid_t uid = ap_unixd_config.user_id;
    gid_t groups[64];
    int n = 64, i, in_group = 0;
    if (uid == 0)
        return 1;
    if (stat(path, &st) != 0)
        return 0;
    if (st.st_uid == uid)
        return (st.st_mode & want) == want;
    if (ap_unixd_config.user_name
        && getgrouplist(ap_unixd_config.user_name, ap_unixd_config.group_id, groups, &n) < 0)
        n = 0;
    in_group = st.st_gid == ap_unixd_config.group_id;
    for (i = 0; i < n && !in_group; i++)
        in_group = st.st_gid == groups[i];
    if (in_group)
        return (st.st_mode & (want >> 3)) == (want >> 3);
    return (st.st_mode & (want >> 6)) == (want >> 6);
}

/* A file:// JWKS the httpd user cannot read only fails in the children,
 * at run time (503): say so at startup. Every directory on the way must
 * be searchable too. */
static void check_file_urls(server_rec *s, apr_pool_t *p)
{
    int i;
    for (i = 0; ajw_mod.all_urls && i < ajw_mod.all_urls->nelts; i++) {
        const char *url = APR_ARRAY_IDX(ajw_mod.all_urls, i, ajw_url_t *)->url;
        apr_uri_t u;
        char *dir, *slash;
        int ok;
        if (strncasecmp(url, "file:", 5) || apr_uri_parse(p, url, &u) != APR_SUCCESS || !u.path)
            continue;
        ok = user_may(u.path, S_IRUSR);
        for (dir = apr_pstrdup(p, u.path); ok && (slash = strrchr(dir, '/')) != NULL; ) {
            *slash = '\0';
            ok = user_may(*dir ? dir : "/", S_IXUSR);
        }
        if (!ok)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "AuthJWKSURL %s: the httpd user "
                         "(%s) cannot read this file (or search a directory on its path); its "
                         "keys will not load", url, ap_unixd_config.user_name ?
                         ap_unixd_config.user_name : "?");
    }
}

/* The same for AuthJWKSRevoked files: one the httpd user cannot read
 * answers 503 for every token of its sections. */
static void check_revoked_files(server_rec *s, apr_pool_t *p)
{
    int i;
    for (i = 0; ajw_mod.all_revoked && i < ajw_mod.all_revoked->nelts; i++) {
        const char *path = APR_ARRAY_IDX(ajw_mod.all_revoked, i, ajw_revoked_t *)->path;
        char *dir, *slash;
        int ok = user_may(path, S_IRUSR);
        for (dir = apr_pstrdup(p, path); ok && (slash = strrchr(dir, '/')) != NULL; ) {
            *slash = '\0';
            ok = user_may(*dir ? dir : "/", S_IXUSR);
        }
        if (!ok)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "AuthJWKSRevoked %s: the httpd user "
                         "(%s) cannot read this file (or search a directory on its path); its "
                         "sections will answer 503", path, ap_unixd_config.user_name ?
                         ap_unixd_config.user_name : "?");
    }
}

int ajw_edge_check_config(server_rec *s, apr_pool_t *p, int warn)
{
    if (warn) {
        check_file_urls(s, p);
        check_revoked_files(s, p);
    }
    return walk(s, p, ap_conftree, warn);
}
