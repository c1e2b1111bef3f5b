/* mod_auth_jwks_revoke.c — revocation: the Token Status List
 * (draft-ietf-oauth-status-list) and the operator's deny-list
 * (AuthJWKSRevoked), checked after a token verified, cached or not.
 *
 * Nothing here fetches on the request path. Status lists are key store
 * sources (lib/ajw_keystore.h, AJW_SOURCE_STATUS): AJW_STATUS_SLOTS slots per
 * JWKS source, registered in post_config, each bound at run time to the
 * first uri that needs it; their refresh threads fetch, verify (with the
 * keys of that JWKS source only) and publish, and keep the shared last-good
 * copies like JWKS records (same record format and key, "statuslist:" name
 * space). A deny-list file is a source too (AJW_SOURCE_DENYLIST), looked at
 * every AJW_REVOKED_REFRESH seconds and read again when its mtime or size
 * changed.
 *
 * State: ajw_mod.status_groups and ajw_mod.all_revoked are written in the
 * config phase only; the key store locks what changes at run time. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_strings.h"
#include "apr_file_info.h"
#include "apr_file_io.h"

#include "mod_auth_jwks.h"
#include "mod_auth_jwks_request.h"
#include "ajw_statuslist.h"
#include "ajw_denylist.h"
#include "ajw_fetch.h"
#include "ajw_json.h"
#include "ajw_ratelog.h"

APLOG_USE_MODULE(auth_jwks);

/* The status list slots verified by one JWKS source. */
typedef struct ajw_status_group_t {
    const ajw_source_t *signer;
    ajw_source_t **slots;
    int n;
} ajw_status_group_t;

/* ------------------------------------------------------------------ */
/* Directives: not in .htaccess (each one widens what is fetched or     */
/* accepted, or registers a background source).                        */

const char *ajw_revoke_set_mode(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    if (!strcasecmp(arg, "off"))
        c->status_mode = AJW_STATUS_OFF;
    else if (!strcasecmp(arg, "on"))
        c->status_mode = AJW_STATUS_ON;
    else if (!strcasecmp(arg, "require"))
        c->status_mode = AJW_STATUS_REQUIRE;
    else
        return apr_psprintf(cmd->pool, "%s: '%s' is not off, on or require", cmd->cmd->name,
                            arg);
    c->status_mode_set = 1;
    if (c->status_mode != AJW_STATUS_OFF)
        ajw_mod.status_used = 1;
    return NULL;
}

/* A prefix must name a scheme we fetch (https, or http to a loopback host)
 * and end its authority with '/', so that "https://idp.example" cannot
 * also admit https://idp.example.evil/. */
const char *ajw_revoke_set_prefix(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    const char *scheme = NULL, *path = NULL, *why = ajw_url_problem(arg, &scheme, &path,
                                                                    cmd->pool);
    const char *auth = strstr(arg, "://");
    if (!why && !strcasecmp(scheme, "file"))
        why = "file:// is not a place status lists are fetched from";
    if (!why && (!auth || !strchr(auth + 3, '/')))
        why = "a prefix must hold the path after the host, at least '/' "
              "(https://idp.example/statuslists/)";
    if (why)
        return apr_psprintf(cmd->pool, "%s: '%s': %s", cmd->cmd->name, arg, why);
    if (!c->status_prefixes_set)
        c->status_prefixes = apr_array_make(cmd->pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(c->status_prefixes, const char *) = arg;
    c->status_prefixes_set = 1;
    return NULL;
}

const char *ajw_revoke_set_fail(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    if (!strcasecmp(arg, "closed"))
        c->status_fail_open = 0;
    else if (!strcasecmp(arg, "open"))
        c->status_fail_open = 1;
    else
        return apr_psprintf(cmd->pool, "%s: '%s' is not closed or open", cmd->cmd->name, arg);
    c->status_fail_open_set = 1;
    return NULL;
}

const char *ajw_revoke_set_max_stale(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    apr_int64_t v = 0;
    char *end = NULL;
    if (strcasecmp(arg, "off")) {
        errno = 0;
        v = apr_strtoi64(arg, &end, 10);
        if (!*arg || errno || !end || *end || v < 60 || v > 365LL * 86400)
            return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number from 60 to "
                                "31536000, or off", cmd->cmd->name, arg);
    }
    c->status_max_stale = apr_time_from_sec(v);
    c->status_max_stale_set = 1;
    return NULL;
}

/* The file is read now too, so that a mistake shows at apachectl -t. */
const char *ajw_revoke_set_file(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    const char *path = ap_server_root_relative(cmd->pool, arg), *why = NULL;
    ajw_denylist_t *d = NULL;
    ajw_revoked_t *rv;
    apr_finfo_t fi;
    char *buf = NULL;
    apr_size_t len = 0;
    apr_file_t *f = NULL;

    if (!path)
        return apr_psprintf(cmd->pool, "%s: '%s': not a valid path", cmd->cmd->name, arg);
    if (apr_stat(&fi, path, APR_FINFO_TYPE | APR_FINFO_SIZE, cmd->pool) != APR_SUCCESS
        || fi.filetype != APR_REG)
        return apr_psprintf(cmd->pool, "%s: '%s': no such file", cmd->cmd->name, path);
    if (fi.size > (apr_off_t)AJW_DENYLIST_MAX_BYTES)
        return apr_psprintf(cmd->pool, "%s: '%s': over 8 MiB", cmd->cmd->name, path);
    len = (apr_size_t)fi.size;
    buf = apr_palloc(cmd->temp_pool, len + 1);
    if (apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, cmd->temp_pool)
        != APR_SUCCESS
        || (len && apr_file_read_full(f, buf, len, &len) != APR_SUCCESS))
        return apr_psprintf(cmd->pool, "%s: '%s': cannot be read", cmd->cmd->name, path);
    apr_file_close(f);
    if (ajw_denylist_parse(&d, buf, len, cmd->temp_pool, &why, cmd->temp_pool) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "%s: '%s': %s", cmd->cmd->name, path, why);
    rv = apr_pcalloc(cmd->pool, sizeof(*rv));
    rv->path = path;
    c->revoked = rv;
    c->revoked_set = 1;
    APR_ARRAY_PUSH(ajw_mod.all_revoked, ajw_revoked_t *) = rv;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* post_config                                                          */

static ajw_status_group_t *group_of(const ajw_source_t *signer)
{
    int i;
    for (i = 0; ajw_mod.status_groups && i < ajw_mod.status_groups->nelts; i++) {
        ajw_status_group_t *g = APR_ARRAY_IDX(ajw_mod.status_groups, i, ajw_status_group_t *);
        if (g->signer == signer)
            return g;
    }
    return NULL;
}

/* AJW_STATUS_SLOTS slots verified by u's source, fetched with the fetch
 * settings of the section that wrote u. */
static int add_group(const ajw_url_t *u, apr_pool_t *pconf, server_rec *s)
{
    ajw_status_group_t *g = apr_pcalloc(pconf, sizeof(*g));
    ajw_source_conf_t sc;
    int i;
    ajw_source_conf_init(&sc);
    sc.kind = AJW_SOURCE_STATUS;
    sc.signer = u->src;
    sc.ca_file = u->owner->ca_file;
    sc.refresh = u->owner->refresh;
    sc.min_refresh = u->owner->min_refresh;
    sc.timeout = u->owner->fetch_timeout;
    sc.max_size = AJW_STATUSLIST_MAX_JWT_DEFAULT;
    sc.algs = u->owner->algs;
    g->signer = u->src;
    g->n = AJW_STATUS_SLOTS;
    g->slots = apr_pcalloc(pconf, sizeof(*g->slots) * AJW_STATUS_SLOTS);
    for (i = 0; i < g->n; i++) {
        if (!(g->slots[i] = ajw_keystore_add_slot(ajw_mod.ks, &sc))) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "cannot register status list slots for "
                         "%s", u->url);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    APR_ARRAY_PUSH(ajw_mod.status_groups, ajw_status_group_t *) = g;
    return OK;
}

int ajw_revoke_post_config(server_rec *s, apr_pool_t *pconf)
{
    int i;
    ajw_mod.status_groups = apr_array_make(pconf, 2, sizeof(ajw_status_group_t *));
    for (i = 0; ajw_mod.status_used && i < ajw_mod.all_urls->nelts; i++) {
        const ajw_url_t *u = APR_ARRAY_IDX(ajw_mod.all_urls, i, ajw_url_t *);
        if (u->src && !group_of(u->src) && add_group(u, pconf, s) != OK)
            return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (i = 0; i < ajw_mod.all_revoked->nelts; i++) {
        ajw_revoked_t *rv = APR_ARRAY_IDX(ajw_mod.all_revoked, i, ajw_revoked_t *);
        ajw_source_conf_t sc;
        ajw_source_conf_init(&sc);
        sc.kind = AJW_SOURCE_DENYLIST;
        sc.url = apr_pstrcat(pconf, "file://", rv->path, NULL);
        sc.refresh = apr_time_from_sec(AJW_REVOKED_REFRESH);
        sc.min_refresh = apr_time_from_sec(1);
        sc.timeout = apr_time_from_sec(5);
        sc.max_size = AJW_DENYLIST_MAX_BYTES;
        if (!(rv->src = ajw_keystore_add(ajw_mod.ks, &sc))) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "cannot register AuthJWKSRevoked %s",
                         rv->path);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    return OK;
}

/* ------------------------------------------------------------------ */
/* The request path                                                     */

/* The deny-list of c, if any: AJW_OK, AJW_R_REVOKED, or (its file never
 * read) AJW_R_STATUS_UNAVAILABLE. */
static ajw_reason_e deny_check(request_rec *r, const ajw_dir_conf *c, const ajw_val_t *claims,
                               const char *kid, ajw_error_t *err)
{
    static const char *const kinds[] = { "jti", "sub" };
    ajw_keys_state_e state;
    ajw_keyhold_t *h;
    const char *hit = NULL, *v;
    size_t n = 0;
    int i;

    if (!c->revoked)
        return AJW_OK;
    h = c->revoked->src ? ajw_source_acquire_ex(c->revoked->src, c->startup_wait, &state) : NULL;
    if (!h || !h->deny) {
        ajw_source_status_t st;
        memset(&st, 0, sizeof(st));
        if (c->revoked->src)
            ajw_source_get_status(c->revoked->src, &st);
        ajw_source_release(h);
        apr_table_setn(r->notes, "ajw-src", c->revoked->path);
        return ajw_error_set(err, AJW_R_STATUS_UNAVAILABLE, "AuthJWKSRevoked %s not loaded: %s",
                             c->revoked->path, st.last_error[0] ? st.last_error : "not read yet");
    }
    for (i = 0; i < 2 && !hit; i++) {
        if ((v = ajw_val_get_string(claims, kinds[i], &n)) && ajw_denylist_has(h->deny, kinds[i],
                                                                                  v, n))
            hit = kinds[i];
    }
    if (!hit && kid && ajw_denylist_has(h->deny, "kid", kid, strlen(kid)))
        hit = "kid";
    ajw_source_release(h);
    if (hit)
        return ajw_error_set(err, AJW_R_REVOKED, "token revoked (its %s is on the deny-list "
                             "%s)", hit, c->revoked->path);
    return AJW_OK;
}

/* Is uri one c lets us fetch? Under an AuthJWKSStatusListURL prefix, a URL
 * the fetcher takes (https, or http to a loopback host; no credentials),
 * printable ASCII, and no dot segment or escape that a client library might
 * resolve to somewhere outside the prefix. */
static int uri_allowed(const ajw_dir_conf *c, const char *uri, apr_pool_t *p)
{
    const char *scheme = NULL, *path = NULL, *s;
    size_t n = strlen(uri);
    int i;
    for (s = uri; *s; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '\\' || *s == '#')
            return 0;
    }
    if (strstr(uri, "/../") || strstr(uri, "/./") || (n >= 3 && !strcmp(uri + n - 3, "/.."))
        || (n >= 2 && !strcmp(uri + n - 2, "/.")) || strcasestr(uri, "%2e")
        || strcasestr(uri, "%2f") || strcasestr(uri, "%5c"))
        return 0;
    if (ajw_url_problem(uri, &scheme, &path, p) || !strcasecmp(scheme, "file"))
        return 0;
    for (i = 0; i < c->status_prefixes->nelts; i++) {
        const char *pre = APR_ARRAY_IDX(c->status_prefixes, i, const char *);
        if (!strncmp(uri, pre, strlen(pre)))
            return 1;
    }
    return 0;
}

/* A status list that cannot be had: refuse (closed), or let the token
 * through with a warning, one line per list per interval (open). */
static ajw_reason_e unavailable(request_rec *r, const ajw_dir_conf *c, const char *uri,
                                const char *why, ajw_error_t *err)
{
    unsigned long held = 0;
    if (!c->status_fail_open) {
        apr_table_setn(r->notes, "ajw-src", uri);
        return ajw_error_set(err, AJW_R_STATUS_UNAVAILABLE, "status list %s unavailable: %s",
                             ajw_mod_log_item(r->pool, uri), why);
    }
    if (ajw_ratelog_allow(ajw_mod.ratelog, apr_pstrcat(r->pool, "status-open ", uri, NULL),
                          apr_time_now(), &held))
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "status list %s unavailable: %s; token "
                      "accepted (AuthJWKSStatusListFail open)%s", ajw_mod_log_item(r->pool, uri),
                      why, held ? apr_psprintf(r->pool, " [%lu more like this since the last "
                                               "such line]", held) : "");
    return AJW_OK;
}

static ajw_reason_e status_check(request_rec *r, const ajw_dir_conf *c, const ajw_val_t *claims,
                                 const ajw_source_t *signer, ajw_error_t *err)
{
    unsigned long long idx = 0, entries;
    const char *uri = NULL;
    ajw_status_group_t *g;
    ajw_source_t *slot;
    ajw_source_status_t st;
    ajw_keys_state_e state;
    ajw_keyhold_t *h;
    apr_time_t now = apr_time_now();
    unsigned status = 0;
    int ref, full = 0, out_of_range;

    ref = ajw_status_ref(claims, &idx, &uri, err);
    if (ref < 0)
        return err->code;
    if (ref == 0)
        return c->status_mode == AJW_STATUS_REQUIRE
               ? ajw_error_set(err, AJW_R_MISSING_CLAIM, "no status list reference "
                               "(AuthJWKSStatusList require)")
               : AJW_OK;
    if (!uri_allowed(c, uri, r->pool))
        return ajw_error_set(err, AJW_R_BAD_CLAIM, "status list uri %s is not under an "
                             "AuthJWKSStatusListURL prefix: refused, not fetched",
                             ajw_mod_log_item(r->pool, uri));
    if (!(g = group_of(signer)))
        return ajw_error_set(err, AJW_R_INTERNAL, "no status list slots for the key source "
                             "that verified the token");
    if (!(slot = ajw_keystore_bind(g->slots, g->n, uri, &full)))
        return unavailable(r, c, uri, full ? apr_psprintf(r->pool, "more than %d status lists "
                                                          "for the JWKS %s", AJW_STATUS_SLOTS,
                                                          ajw_source_url(signer))
                                           : "the refresh threads do not run", err);
    h = ajw_source_acquire_ex(slot, c->rotation_wait, &state);
    ajw_source_get_status(slot, &st);
    if (!h)
        return unavailable(r, c, uri, st.last_error[0] ? st.last_error
                                      : state == AJW_KEYS_STALE ? "stale" : "not fetched yet",
                           err);
    if (h->list->exp > 0 && h->list->exp <= (long long)apr_time_sec(now)) {
        ajw_source_release(h);
        return unavailable(r, c, uri, apr_psprintf(r->pool, "the list expired; %s",
                                                   st.last_error[0] ? st.last_error
                                                                    : "no newer list yet"), err);
    }
    if (c->status_max_stale > 0 && st.fetched > 0 && now - st.fetched > c->status_max_stale) {
        ajw_source_release(h);
        return unavailable(r, c, uri, apr_psprintf(r->pool, "last fetched %" APR_TIME_T_FMT
                                                   " s ago, more than AuthJWKSStatusListMaxStale;"
                                                   " %s", apr_time_sec(now - st.fetched),
                                                   st.last_error[0] ? st.last_error : "-"), err);
    }
    out_of_range = ajw_statuslist_get(h->list, idx, &status) != 0;
    entries = (unsigned long long)h->list->len * 8u / h->list->bits;
    ajw_source_release(h);
    if (out_of_range)
        return ajw_error_set(err, AJW_R_BAD_CLAIM, "status index %llu is beyond the %llu entries "
                             "of %s", idx, entries, ajw_mod_log_item(r->pool, uri));
    if (status != 0)
        return ajw_error_set(err, AJW_R_REVOKED, "token revoked (status %u) by %s", status,
                             ajw_mod_log_item(r->pool, uri));
    return AJW_OK;
}

ajw_reason_e ajw_revoke_check(request_rec *r, const ajw_dir_conf *c, const ajw_val_t *claims,
                              const char *kid, const ajw_source_t *signer, ajw_error_t *err)
{
    ajw_reason_e rc = deny_check(r, c, claims, kid, err);
    if (rc == AJW_OK && c->status_mode != AJW_STATUS_OFF)
        rc = status_check(r, c, claims, signer, err);
    return rc;
}
