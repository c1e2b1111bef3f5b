/* mod_auth_jwks_config.c — configuration of mod_auth_jwks: records,
 * create and merge (like httpd's own aaa modules: `_set` bits, defaults in
 * create), and the directive setters. Every value is validated here so that
 * mistakes show at `apachectl -t`, naming the directive; no network I/O. */
#include <stdarg.h>
#include <unistd.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_uri.h>
#include <apr_lib.h>
#include <apr_file_info.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"

#include "ajw_types.h"
#include "ajw_require.h"
#include "ajw_names.h"
#include "ajw_fetch.h"
#include "ajw_discovery.h"
#include "ajw_secret.h"
#include "ajw_issuer.h"
#include "mod_auth_jwks.h"
#include "mod_auth_jwks_request.h"

void *ajw_mod_create_dir_conf(apr_pool_t *p, char *dir)
{
    ajw_dir_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)dir;
    c->urls = apr_array_make(p, 1, sizeof(ajw_url_t *));
    c->issuers = apr_array_make(p, 1, sizeof(ajw_issuer_t));
    c->audiences = apr_array_make(p, 1, sizeof(const char *));
    c->required = apr_array_make(p, 1, sizeof(const char *));
    c->from = apr_array_make(p, 1, sizeof(ajw_from_t));
    c->map_headers = apr_array_make(p, 1, sizeof(ajw_claim_map_t));
    c->map_envs = apr_array_make(p, 1, sizeof(ajw_claim_map_t));
    c->tenants = apr_array_make(p, 1, sizeof(const char *));
    c->need_scopes = apr_array_make(p, 1, sizeof(const char *));
    c->user_claim = "sub";
    c->claim_prefix = "JWT_CLAIM_";
    c->header_prefix = AJW_HEADER_PREFIX_DEFAULT;
    c->algs = AJW_ALGS_DEFAULT;
    c->leeway = 60;
    c->max_token_len = AJW_MAX_TOKEN_LEN_DEFAULT;
    c->pass = PASS_ENV;
    c->forward_token = 1;
    c->refresh = apr_time_from_sec(300);
    c->min_refresh = apr_time_from_sec(30);
    c->fetch_timeout = apr_time_from_sec(10);
    c->startup_wait = apr_time_from_sec(5);
    c->max_stale = apr_time_from_sec(AJW_MAX_STALE_DEFAULT);
    c->rotation_wait = apr_time_from_sec(AJW_ROTATION_WAIT_DEFAULT);
    c->dpop_window = AJW_DPOP_WINDOW_DEFAULT;
    c->status_prefixes = apr_array_make(p, 1, sizeof(const char *));
    c->status_max_stale = apr_time_from_sec(AJW_STATUS_MAX_STALE_DEFAULT);
    return c;
}

/* Every directive-set field of ajw_dir_conf (each has its f##_set bit). */
#define DIR_FIELDS(X) \
    X(urls) X(issuers) X(audiences) X(required) X(from) X(ca_file) X(typ) X(user_claim) \
    X(claim_prefix) X(header_prefix) X(algs) X(leeway) X(max_age) X(max_token_len) X(pass) \
    X(forward_token) X(refresh) X(min_refresh) X(fetch_timeout) X(startup_wait) X(cacheable) \
    X(dpop) X(dpop_window) X(dpop_base) X(cert_bound) X(prm) X(dpop_nonce) X(max_auth_age) \
    X(tenants) X(need_scopes) X(map_headers) X(map_envs) X(max_stale) X(rotation_wait) \
    X(status_mode) X(status_prefixes) X(status_fail_open) X(status_max_stale) X(revoked) \
    X(optional) X(json_errors)

#define MERGE(f) \
    n->f = add->f##_set ? add->f : base->f; \
    n->f##_set = add->f##_set | base->f##_set;
#define ANY_SET(f) | c->f##_set

/* Does c set anything, or is it create_dir_conf's defaults throughout? */
static int dir_conf_sets_any(const ajw_dir_conf *c)
{
    return 0 DIR_FIELDS(ANY_SET);
}

/* Runs for most requests (a <Location> over the server's defaults): a side
 * that sets nothing holds only the defaults the other side starts from, so
 * the other side is the merge as it stands (configurations are read-only
 * once made). */
void *ajw_mod_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    ajw_dir_conf *base = basev, *add = addv, *n;
    if (!dir_conf_sets_any(base))
        return add;
    if (!dir_conf_sets_any(add))
        return base;
    n = apr_pcalloc(p, sizeof(*n));
    DIR_FIELDS(MERGE)
    return n;
}

void *ajw_mod_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    ajw_srv_conf *c = apr_pcalloc(p, sizeof(*c));
    (void)s;
    c->token_cache = -1;
    c->refusal_cache = -1;
    c->log_first = -1;
    c->log_interval = -1;
    c->strip = -1;
    return c;
}

/* Push prefix onto *list (made in p when NULL) unless it is there already. */
static void add_prefix(apr_pool_t *p, apr_array_header_t **list, const char *prefix)
{
    int i;
    if (!*list)
        *list = apr_array_make(p, 2, sizeof(const char *));
    for (i = 0; i < (*list)->nelts; i++)
        if (!strcasecmp(APR_ARRAY_IDX(*list, i, const char *), prefix))
            return;
    APR_ARRAY_PUSH(*list, const char *) = prefix;
}

/* A virtual host strips the claim-header prefixes of its own jwks sections
 * and of the main server's, which apply inside it too. */
void *ajw_mod_merge_srv_conf(apr_pool_t *p, void *basev, void *addv)
{
    ajw_srv_conf *base = basev, *add = addv, *n = apr_pcalloc(p, sizeof(*n));
    int i;
    n->token_cache = add->token_cache >= 0 ? add->token_cache : base->token_cache;
    n->refusal_cache = add->refusal_cache >= 0 ? add->refusal_cache : base->refusal_cache;
    n->log_first = add->log_first != -1 ? add->log_first : base->log_first;
    n->log_interval = add->log_interval >= 0 ? add->log_interval : base->log_interval;
    n->strip = add->strip >= 0 ? add->strip : base->strip;
    for (i = 0; base->strip_prefixes && i < base->strip_prefixes->nelts; i++)
        add_prefix(p, &n->strip_prefixes, APR_ARRAY_IDX(base->strip_prefixes, i, const char *));
    for (i = 0; add->strip_prefixes && i < add->strip_prefixes->nelts; i++)
        add_prefix(p, &n->strip_prefixes, APR_ARRAY_IDX(add->strip_prefixes, i, const char *));
    for (i = 0; base->strip_names && i < base->strip_names->nelts; i++)
        add_prefix(p, &n->strip_names, APR_ARRAY_IDX(base->strip_names, i, const char *));
    for (i = 0; add->strip_names && i < add->strip_names->nelts; i++)
        add_prefix(p, &n->strip_names, APR_ARRAY_IDX(add->strip_names, i, const char *));
    return n;
}

/* This server has a jwks section: strip `prefix` (NULL: the default) from
 * its requests as soon as they are read. */
static void note_jwks_server(cmd_parms *cmd, const char *prefix)
{
    ajw_srv_conf *sc = ap_get_module_config(cmd->server->module_config, &auth_jwks_module);
    add_prefix(cmd->pool, &sc->strip_prefixes, prefix ? prefix : AJW_HEADER_PREFIX_DEFAULT);
}

/* ------------------------------------------------------------------ */
/* Directive setters: every value is validated here, so that mistakes  */
/* show at `apachectl -t`, naming the directive.                       */

/* Whole-string decimal in [min, max]. */
static const char *parse_num(cmd_parms *cmd, const char *arg, long long min, long long max,
                             long long *out)
{
    char *end = NULL;
    apr_int64_t v;
    errno = 0;
    v = apr_strtoi64(arg, &end, 10);
    if (!*arg || errno || !end || *end || v < min || v > max)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number from %" APR_INT64_T_FMT
                            " to %" APR_INT64_T_FMT, cmd->cmd->name, arg, (apr_int64_t)min,
                            (apr_int64_t)max);
    *out = (long long)v;
    return NULL;
}

/* Check a JWKS URL with the fetcher's rules (ajw_url_problem); a file://
 * URL must also name an existing regular file now. */
static const char *check_url(cmd_parms *cmd, const char *url)
{
    const char *scheme, *path, *why = ajw_url_problem(url, &scheme, &path, cmd->pool);
    apr_finfo_t fi;
    if (why)
        return ajw_mod_dir_err(cmd, "'%s': %s", url, why);
    if (!strcasecmp(scheme, "file")
        && (apr_stat(&fi, path, APR_FINFO_TYPE, cmd->pool) != APR_SUCCESS
            || fi.filetype != APR_REG))
        return ajw_mod_dir_err(cmd, "'%s': no such file", url);
    return NULL;
}

static ajw_url_t *new_url(cmd_parms *cmd, ajw_dir_conf *c, const char *url)
{
    ajw_url_t *u = apr_pcalloc(cmd->pool, sizeof(*u));
    u->url = url;
    u->owner = c;
    APR_ARRAY_PUSH(ajw_mod.all_urls, ajw_url_t *) = u;
    return u;
}

/* A jwks section answers 403 (not 401) when an authenticated token lacks a
 * required claim: RFC 6750 insufficient_scope. mod_authz_core only does so
 * with AuthzSendForbiddenOnFailure On, so we turn that on for the section
 * through authz_core's own directive. An explicit `AuthzSendForbiddenOnFailure
 * Off` later in the section still wins. */
static const char *force_forbidden_on_failure(cmd_parms *cmd)
{
    module *mod = ap_top_module;      /* the search starts from *mod */
    const command_rec *c = ap_find_command_in_modules("AuthzSendForbiddenOnFailure", &mod);
    cmd_parms sub;
    void *mconf;
    if (!c || !mod || !cmd->path)
        return NULL;                      /* authz_core absent, or server level */
    sub = *cmd;
    sub.info = c->cmd_data;
    sub.cmd = c;
    mconf = ap_set_config_vectors(cmd->server, cmd->context, cmd->path, mod, cmd->pool);
    return c->AP_FLAG(&sub, mconf, 1);
}

static const char *set_url(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    const char *err = check_url(cmd, arg);
    if (err)
        return err;
    if (!c->urls_set) {
        c->urls = apr_array_make(cmd->pool, 2, sizeof(ajw_url_t *));
        c->urls_set = 1;
    }
    APR_ARRAY_PUSH(c->urls, ajw_url_t *) = new_url(cmd, c, arg);
    note_jwks_server(cmd, NULL);
    return force_forbidden_on_failure(cmd);
}

static const char *set_issuer(cmd_parms *cmd, void *cv, const char *iss, const char *url)
{
    ajw_dir_conf *c = cv;
    ajw_issuer_t *i;
    ajw_issuer_tpl_t *tpl = NULL;
    const char *why = NULL;
    if (!*iss)
        return ajw_mod_dir_err(cmd, "the issuer must not be empty");
    if (ajw_issuer_template_parse(&tpl, iss, cmd->pool, &why) != APR_SUCCESS)
        return ajw_mod_dir_err(cmd, "%s", why);
    if (tpl && url && !strcasecmp(url, "discover"))
        return ajw_mod_dir_err(cmd, "'%s': an issuer template cannot discover its keys (its metadata "
                       "URL would hold the placeholder): name the JWKS URL", iss);
    if (!strcmp(iss, "*")) {      /* any issuer, deliberately (quiets the startup warning) */
        if (url)
            return ajw_mod_dir_err(cmd, "'*' (any issuer) takes no URL: name the URL with AuthJWKSURL");
        if (c->issuers_set && c->issuers->nelts)
            return ajw_mod_dir_err(cmd, "'*' cannot be combined with named issuers in one section");
        c->issuers = apr_array_make(cmd->pool, 1, sizeof(ajw_issuer_t));
        c->issuers_set = 1;
        note_jwks_server(cmd, NULL);
        return force_forbidden_on_failure(cmd);
    }
    if (c->issuers_set && c->issuers->nelts == 0)
        return ajw_mod_dir_err(cmd, "'%s' cannot follow AuthJWKSIssuer * in one section", iss);
    if (url && !strcasecmp(url, "discover")) {  /* keys from the issuer's own metadata */
        why = ajw_discovery_check_issuer(iss, cmd->pool);
        if (why)
            return ajw_mod_dir_err(cmd, "%s discover: %s", iss, why);
        url = ajw_discovery_source_url(iss, cmd->pool);
    }
    else if (url) {
        const char *err = check_url(cmd, url);
        if (err)
            return err;
    }
    if (!c->issuers_set) {
        c->issuers = apr_array_make(cmd->pool, 2, sizeof(ajw_issuer_t));
        c->issuers_set = 1;
    }
    i = apr_array_push(c->issuers);
    i->iss = iss;
    i->bound = url ? new_url(cmd, c, url) : NULL;
    i->tpl = tpl;
    note_jwks_server(cmd, NULL);
    return force_forbidden_on_failure(cmd);
}

/* Push arg onto a string list that the section replaces (not appends to)
 * when it sets the directive for the first time. */
static void push_str(cmd_parms *cmd, apr_array_header_t **arr, int first, const char *arg)
{
    if (first)
        *arr = apr_array_make(cmd->pool, 2, sizeof(const char *));
    APR_ARRAY_PUSH(*arr, const char *) = arg;
}

const char ajw_aud_resource[] = "resource";

static const char *set_audience(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    if (!*arg)
        return ajw_mod_dir_err(cmd, "an audience must not be empty");
    if (!strcmp(arg, ajw_aud_resource))  /* RFC 9728 resource, resolved per request */
        arg = ajw_aud_resource;
    if (!strcmp(arg, "*")) {      /* any audience, deliberately (quiets the startup warning) */
        if (c->audiences_set && c->audiences->nelts)
            return ajw_mod_dir_err(cmd, "'*' (any audience) cannot be combined with named audiences");
        c->audiences = apr_array_make(cmd->pool, 1, sizeof(const char *));
        c->audiences_set = 1;
        return NULL;
    }
    if (c->audiences_set && c->audiences->nelts == 0)
        return ajw_mod_dir_err(cmd, "'%s' cannot be combined with '*' (any audience)", arg);
    push_str(cmd, &c->audiences, !c->audiences_set, arg);
    c->audiences_set = 1;
    return NULL;
}

/* AuthJWKSTenant <id>...: tenant ids as tokens carry them in tid. */
static const char *set_tenant(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    if (!ajw_tenant_id_ok(arg, strlen(arg)))
        return ajw_mod_dir_err(cmd, "'%s' is not a tenant id (a GUID in lower-case hex, as in the "
                       "tid claim: 72f988bf-86f1-41af-91ab-2d7cd011db47)", arg);
    push_str(cmd, &c->tenants, !c->tenants_set, arg);
    c->tenants_set = 1;
    return NULL;
}

static const char *set_required(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    if (!*arg)
        return ajw_mod_dir_err(cmd, "a claim name must not be empty");
    push_str(cmd, &c->required, !c->required_set, arg);
    c->required_set = 1;
    return NULL;
}

static const char *set_algs(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    ajw_alg_e a = ajw_alg_from_name(arg, strlen(arg));
    if (a == AJW_ALG_UNKNOWN)
        return ajw_mod_dir_err(cmd, "unknown algorithm '%s' (known: RS256 RS384 RS512 PS256 PS384 "
                       "PS512 ES256 ES384 ES512 EdDSA)", arg);
    if (!(AJW_ALG_BIT(a) & AJW_ALGS_DEFAULT))
        return ajw_mod_dir_err(cmd, "'%s' cannot verify tokens with keys from a JWKS "
                       "(none and HS* are never accepted)", arg);
    if (!c->algs_set) {
        c->algs = 0;
        c->algs_set = 1;
    }
    c->algs |= AJW_ALG_BIT(a);
    return NULL;
}

static const char *set_leeway(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    c->leeway_set = 1;
    return parse_num(cmd, arg, 0, 3600, &c->leeway);
}

static const char *set_max_age(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    c->max_age_set = 1;
    return parse_num(cmd, arg, 1, 10LL * 365 * 86400, &c->max_age);
}

/* AuthJWKSMaxAuthAge <seconds>|off */
static const char *set_max_auth_age(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    const char *err = NULL;
    if (!strcasecmp(arg, "off"))
        c->max_auth_age = 0;
    else if ((err = parse_num(cmd, arg, 1, 10LL * 365 * 86400, &c->max_auth_age)) != NULL)
        return apr_pstrcat(cmd->pool, err, ", or off", NULL);
    c->max_auth_age_set = 1;
    return NULL;
}

static const char *set_max_token(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    long long v;
    const char *err = parse_num(cmd, arg, 256, 1024 * 1024, &v);
    if (err)
        return err;
    c->max_token_len = (apr_size_t)v;
    c->max_token_len_set = 1;
    return NULL;
}

/* Interval directives share one setter; cmd->info names the field. */
static const char *set_interval(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    long long v;
    const char *err;
    const char *which = cmd->info;
    if (!strcmp(which, "refresh")) {
        if ((err = parse_num(cmd, arg, 5, 86400, &v)) != NULL)
            return err;
        c->refresh = apr_time_from_sec(v);
        c->refresh_set = 1;
    }
    else if (!strcmp(which, "min_refresh")) {
        if ((err = parse_num(cmd, arg, 1, 86400, &v)) != NULL)
            return err;
        c->min_refresh = apr_time_from_sec(v);
        c->min_refresh_set = 1;
    }
    else if (!strcmp(which, "timeout")) {
        if ((err = parse_num(cmd, arg, 1, 300, &v)) != NULL)
            return err;
        c->fetch_timeout = apr_time_from_sec(v);
        c->fetch_timeout_set = 1;
    }
    else if (!strcmp(which, "max_stale")) {
        if (!strcasecmp(arg, "off"))
            v = 0;
        else if ((err = parse_num(cmd, arg, 60, 365LL * 86400, &v)) != NULL)
            return apr_pstrcat(cmd->pool, err, ", or off", NULL);
        c->max_stale = apr_time_from_sec(v);
        c->max_stale_set = 1;
    }
    else if (!strcmp(which, "rotation")) {
        if ((err = parse_num(cmd, arg, 0, 10, &v)) != NULL)
            return err;
        c->rotation_wait = apr_time_from_sec(v);
        c->rotation_wait_set = 1;
    }
    else {
        if ((err = parse_num(cmd, arg, 0, 60, &v)) != NULL)
            return err;
        c->startup_wait = apr_time_from_sec(v);
        c->startup_wait_set = 1;
    }
    return NULL;
}

static const char *set_typ(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    if (!*arg)
        return ajw_mod_dir_err(cmd, "the type must not be empty");
    c->typ = arg;
    c->typ_set = 1;
    return NULL;
}

static const char *set_ca_file(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    apr_finfo_t fi;
    const char *path = ap_server_root_relative(cmd->pool, arg);
    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->pool) != APR_SUCCESS
        || fi.filetype != APR_REG)
        return ajw_mod_dir_err(cmd, "CA file '%s' does not exist or is not a file", arg);
    c->ca_file = path;
    c->ca_file_set = 1;
    return NULL;
}

static const char *set_user_claim(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    size_t len = strlen(arg), slen = strlen(AJW_USER_AT_ISS);
    if (!*arg || (len == slen && !strcmp(arg, AJW_USER_AT_ISS)))
        return ajw_mod_dir_err(cmd, "the claim name must not be empty");
    c->user_claim = arg;
    c->user_claim_set = 1;
    return NULL;
}

/* The first word of a prefix (up to the first '_' or '-'), case-insensitive,
 * must be one of these: an allow-list, since no deny-list of the variables
 * and headers that programs act on (ALL_PROXY, HTTPS_PROXY, JDK_JAVA_OPTIONS,
 * LD_PRELOAD, X-Forwarded-For, ...) can ever be complete. */
static const char *const prefix_words[] = { "JWT", "OIDC", "CLAIM", "CLAIMS", "TOKEN", NULL };

static int first_word_allowed(const char *s, char sep)
{
    const char *end = strchr(s, sep);
    size_t n = end ? (size_t)(end - s) : strlen(s);
    int i;
    for (i = 0; prefix_words[i]; i++)
        if (strlen(prefix_words[i]) == n && !strncasecmp(s, prefix_words[i], n))
            return 1;
    return 0;
}

/* Environment variable prefix: letters, digits and '_', ending in '_', its
 * first word one of prefix_words (JWT_CLAIM_, OIDC_CLAIM_, CLAIM_, ...). */
static const char *set_claim_prefix(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    const char *s;
    size_t len = strlen(arg);
    if (len < 4 || !apr_isalpha(arg[0]) || arg[len - 1] != '_')
        return ajw_mod_dir_err(cmd, "'%s' must start with a letter, end with '_' and have at least "
                       "4 characters", arg);
    for (s = arg; *s; s++)
        if (!apr_isalnum(*s) && *s != '_')
            return ajw_mod_dir_err(cmd, "'%s' may hold only letters, digits and '_'", arg);
    if (!first_word_allowed(arg, '_'))
        return ajw_mod_dir_err(cmd, "'%s' could let a claim name a variable that programs act on "
                       "(ALL_PROXY, LD_PRELOAD, ...): the prefix must start with JWT_, OIDC_, "
                       "CLAIM_, CLAIMS_ or TOKEN_", arg);
    if ((s = ajw_env_prefix_shadows(arg)))
        return ajw_mod_dir_err(cmd, "'%s' would let a claim set %s, which the module sets itself: "
                       "choose a longer prefix (JWT_CLAIM_ is the default)", arg, s);
    c->claim_prefix = arg;
    c->claim_prefix_set = 1;
    return NULL;
}

/* Header prefix: letters, digits and '-', ending in '-', its first word
 * (after an optional X-) one of prefix_words: X-JWT-Claim-, X-OIDC-, ... */
static const char *set_header_prefix(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    const char *s, *word = arg;
    size_t len = strlen(arg);
    if (len < 4 || arg[len - 1] != '-' || !apr_isalpha(arg[0]))
        return ajw_mod_dir_err(cmd, "'%s' must start with a letter, end with '-' and have at least "
                       "4 characters", arg);
    for (s = arg; *s; s++)
        if (!apr_isalnum(*s) && *s != '-')
            return ajw_mod_dir_err(cmd, "'%s' may hold only letters, digits and '-'", arg);
    if (!strncasecmp(word, "X-", 2))
        word += 2;
    if (!first_word_allowed(word, '-'))
        return ajw_mod_dir_err(cmd, "'%s' could let a claim pose as a header that means something "
                       "else (X-Forwarded-User, Remote-User, ...): the prefix must start with "
                       "JWT-, OIDC-, Claim-, Claims- or Token- (optionally after X-)", arg);
    if ((s = ajw_header_prefix_shadows(arg)))
        return ajw_mod_dir_err(cmd, "'%s' would let a claim set the header %s, which the module sets "
                       "itself: choose a longer prefix (X-JWT-Claim- is the default)", arg, s);
    c->header_prefix = arg;
    c->header_prefix_set = 1;
    note_jwks_server(cmd, arg);
    return NULL;
}

static const char *set_pass(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    if (!strcasecmp(arg, "none"))
        c->pass = 0;
    else if (!strcasecmp(arg, "env"))
        c->pass = PASS_ENV;
    else if (!strcasecmp(arg, "headers"))
        c->pass = PASS_HEADERS;
    else if (!strcasecmp(arg, "both"))
        c->pass = PASS_ENV | PASS_HEADERS;
    else
        return ajw_mod_dir_err(cmd, "'%s' is not one of none, env, headers, both", arg);
    c->pass_set = 1;
    return NULL;
}

static const char *set_forward(cmd_parms *cmd, void *cv, int flag)
{
    ajw_dir_conf *c = cv;
    (void)cmd;
    c->forward_token = flag;
    c->forward_token_set = 1;
    return NULL;
}

/* Headers a claim must never be mapped to: HTTP framing and routing, what
 * proxies set themselves, and credentials. */
static const char *const map_header_denied[] = {
    "Authorization", "Proxy-Authorization", "Cookie", "Host", "Connection", "Keep-Alive",
    "Transfer-Encoding", "TE", "Trailer", "Upgrade", "Content-Length", "Content-Type",
    "Content-Encoding", "Expect", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host",
    "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Server", "Via", "Max-Forwards",
    "Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
    "If-Range", "Cache-Control", "Pragma", "DPoP", AJW_CLAIMS_HEADER, NULL
};

/* Variables a claim must never be mapped to: CGI's own meta-variables,
 * request headers (HTTP_*), and what loaders, shells and interpreters act
 * on. Prefixes, compared case-sensitively as the environment is. */
static const char *const map_env_denied[] = {
    "HTTP_", "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_PORT", "REMOTE_USER", "REMOTE_IDENT",
    "AUTH_TYPE", "CONTENT_", "GATEWAY_INTERFACE", "PATH", "QUERY_STRING", "REQUEST_",
    "SCRIPT_", "SERVER_", "DOCUMENT_", "CONTEXT_", "HTTPS", "SSL_", "UNIQUE_ID", "REDIRECT_",
    "LD_", "DYLD_", "IFS", "ENV", "BASH", "SHELL", "HOME", "TMP", "TEMP", "PYTHON", "PERL",
    "RUBY", "NODE_", "JAVA_", "JDK_", "_JAVA", "PHP", "LUA_", "GIT_", "GCONV", "MALLOC",
    "LOCPATH", "NLSPATH", "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN", "LC_", "LANG",
    "TZ", "OPENSSL_", "CURL_", "SSLKEYLOGFILE", "ALL_PROXY", "NO_PROXY", "JWT_CLAIMS",
    "JWT_ALG", "JWT_KID", NULL
};

static int denied(const char *const *list, const char *name, int prefix, int nocase)
{
    int i;
    for (i = 0; list[i]; i++) {
        size_t n = strlen(list[i]);
        if (prefix ? (nocase ? !strncasecmp(name, list[i], n) : !strncmp(name, list[i], n))
                   : !strcasecmp(name, list[i]))
            return 1;
    }
    return 0;
}

/* AuthJWKSClaimHeader <claim> <Header-Name> / AuthJWKSClaimEnv <claim> <VAR>:
 * cmd->info is "header" or "env". A section's first mapping of a kind
 * replaces the list it inherited. */
static const char *set_claim_map(cmd_parms *cmd, void *cv, const char *claim, const char *name)
{
    ajw_dir_conf *c = cv;
    int header = !strcmp(cmd->info, "header");
    ajw_claim_ref_t *ref;
    ajw_claim_map_t *m;
    const char *why = NULL, *s;
    size_t len = strlen(name);
    if (ajw_claim_ref_compile(&ref, claim, cmd->pool, &why) != APR_SUCCESS)
        return ajw_mod_dir_err(cmd, "%s", why);
    for (s = name; *s; s++)
        if (!(apr_isalnum(*s) || *s == (header ? '-' : '_')))
            break;
    if (!len || *s || !apr_isalpha(name[0]))
        return ajw_mod_dir_err(cmd, header ? "'%s' is not a header name (a letter, then letters, "
                       "digits and '-')" : "'%s' is not a variable name (a letter, then "
                       "letters, digits and '_')", name);
    if (header ? (denied(map_header_denied, name, 0, 1) || !strncasecmp(name, "Sec-", 4)
                  || !strncasecmp(name, "Proxy-", 6))
               : (denied(map_env_denied, name, 1, 0) || !strncmp(name, c->claim_prefix,
                                                               strlen(c->claim_prefix))))
        return ajw_mod_dir_err(cmd, "a claim must not set %s '%s'", header ? "the header" : "the "
                       "variable", name);
    if (header ? !c->map_headers_set : !c->map_envs_set) {
        apr_array_header_t *fresh = apr_array_make(cmd->pool, 2, sizeof(ajw_claim_map_t));
        if (header) {
            c->map_headers = fresh;
            c->map_headers_set = 1;
        }
        else {
            c->map_envs = fresh;
            c->map_envs_set = 1;
        }
    }
    m = apr_array_push(header ? c->map_headers : c->map_envs);
    m->ref = ref;
    m->claim = claim;
    m->name = name;
    if (header) {
        ajw_srv_conf *sc = ap_get_module_config(cmd->server->module_config, &auth_jwks_module);
        add_prefix(cmd->pool, &sc->strip_names, name);
    }
    return NULL;
}

static const char *set_cacheable(cmd_parms *cmd, void *cv, int flag)
{
    ajw_dir_conf *c = cv;
    (void)cmd;
    c->cacheable = flag;
    c->cacheable_set = 1;
    return NULL;
}

/* Headers a token must never be taken from: hop-by-hop headers (a proxy
 * drops or rewrites them), framing and routing, other credentials with
 * their own rules (cookies are cookie=<name>), and the module's own. */
static const char *const from_header_denied[] = {
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
    "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Host",
    "Content-Length", "Content-Type", "Content-Encoding", "Cookie", "Expect", "DPoP",
    AJW_CLAIMS_HEADER, NULL
};

/* An RFC 9110 token of letters, digits and "-._" (header names, schemes). */
static int is_simple_token(const char *s, size_t n)
{
    size_t i;
    if (!n)
        return 0;
    for (i = 0; i < n; i++)
        if (!apr_isalnum(s[i]) && !strchr("-._", s[i]))
            return 0;
    return 1;
}

/* header=<Name>[:<Scheme>] into f; an error text or NULL. */
static const char *parse_from_header(cmd_parms *cmd, const ajw_dir_conf *c, const char *arg,
                                     ajw_from_t *f)
{
    const char *spec = arg + 7, *colon = strchr(spec, ':');
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    char *name = apr_pstrmemdup(cmd->pool, spec, nlen);
    if (!is_simple_token(name, nlen) || (colon && !is_simple_token(colon + 1, strlen(colon + 1))))
        return ajw_mod_dir_err(cmd, "'%s' is not header=<Header-Name> or header=<Header-Name>:<scheme> "
                       "(letters, digits, '-', '.', '_')", arg);
    if (denied(from_header_denied, name, 0, 1)
        || !strncasecmp(name, AJW_HEADER_PREFIX_DEFAULT, strlen(AJW_HEADER_PREFIX_DEFAULT))
        || !strncasecmp(name, c->header_prefix, strlen(c->header_prefix)))
        return ajw_mod_dir_err(cmd, "a token cannot come from the header '%s' (hop-by-hop, framing, "
                       "another credential, or a claim header the module removes)", name);
    f->kind = TOKEN_FROM_HEADER;
    f->name = name;
    f->scheme = colon ? colon + 1 : NULL;
    return NULL;
}

/* Would a and b take the same token? Plain `header` is Authorization with
 * the scheme Bearer; a header's whole value overlaps any scheme in it. */
static int same_from(const ajw_from_t *a, const ajw_from_t *b)
{
    const char *sa, *sb;
    if (a->kind != b->kind)
        return 0;
    if (a->kind != TOKEN_FROM_HEADER)
        return !strcmp(a->name, b->name);
    if (strcasecmp(a->name ? a->name : "Authorization", b->name ? b->name : "Authorization"))
        return 0;
    sa = a->name ? a->scheme : "Bearer";
    sb = b->name ? b->scheme : "Bearer";
    return !sa || !sb || !strcasecmp(sa, sb);
}

static const char *set_from(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    ajw_from_t f;
    int i;
    memset(&f, 0, sizeof(f));
    if (!strcasecmp(arg, "header")) {
        f.kind = TOKEN_FROM_HEADER;
    }
    else if (!strncasecmp(arg, "header=", 7)) {
        const char *err = parse_from_header(cmd, c, arg, &f);
        if (err)
            return err;
    }
    else if (!strncasecmp(arg, "cookie=", 7) && ajw_mod_is_token(arg + 7)) {
        f.kind = TOKEN_FROM_COOKIE;
        f.name = arg + 7;
    }
    else if (!strncasecmp(arg, "query=", 6) && ajw_mod_is_token(arg + 6)) {
        f.kind = TOKEN_FROM_QUERY;
        f.name = arg + 6;
    }
    else
        return ajw_mod_dir_err(cmd, "'%s' is not header, header=<Header-Name>[:<scheme>], "
                       "cookie=<name> or query=<name>", arg);
    if (!c->from_set) {
        c->from = apr_array_make(cmd->pool, 2, sizeof(ajw_from_t));
        c->from_set = 1;
    }
    for (i = 0; i < c->from->nelts; i++)
        if (same_from(&APR_ARRAY_IDX(c->from, i, ajw_from_t), &f))
            return ajw_mod_dir_err(cmd, "'%s' is listed twice (or overlaps another header source)", arg);
    *(ajw_from_t *)apr_array_push(c->from) = f;
    return NULL;
}

static const char *set_optional(cmd_parms *cmd, void *cv, int flag)
{
    ajw_dir_conf *c = cv;
    (void)cmd;
    c->optional = flag;
    c->optional_set = 1;
    return NULL;
}

static const char *set_json_errors(cmd_parms *cmd, void *cv, int flag)
{
    ajw_dir_conf *c = cv;
    (void)cmd;
    c->json_errors = flag;
    c->json_errors_set = 1;
    return NULL;
}

static const char *set_token_cache(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_srv_conf *sc = ap_get_module_config(cmd->server->module_config, &auth_jwks_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)cv;
    if (err)
        return err;
    return parse_num(cmd, arg, 0, 1000000, &sc->token_cache);
}

static const char *set_refusal_cache(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_srv_conf *sc = ap_get_module_config(cmd->server->module_config, &auth_jwks_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)cv;
    if (err)
        return err;
    return parse_num(cmd, arg, 0, 1000000, &sc->refusal_cache);
}

/* AuthJWKSLogRefusals <first>|all [<seconds>] */
static const char *set_log_refusals(cmd_parms *cmd, void *cv, const char *first,
                                    const char *secs)
{
    ajw_srv_conf *sc = ap_get_module_config(cmd->server->module_config, &auth_jwks_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)cv;
    if (err)
        return err;
    if (!strcasecmp(first, "all")) {
        if (secs)
            return ajw_mod_dir_err(cmd, "'all' takes no interval");
        sc->log_first = AJW_LOG_REFUSALS_ALL;
        return NULL;
    }
    if ((err = parse_num(cmd, first, 0, 1000000, &sc->log_first)) != NULL)
        return err;
    return secs ? parse_num(cmd, secs, 1, 86400, &sc->log_interval) : NULL;
}

static const char *set_cache_dir(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_srv_conf *sc = ap_get_module_config(cmd->server->module_config, &auth_jwks_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)cv;
    if (err)
        return err;
    if (!strcasecmp(arg, "off"))
        sc->cache_dir = "";
    else if (!(sc->cache_dir = ap_server_root_relative(cmd->pool, arg)))
        return ajw_mod_dir_err(cmd, "invalid path '%s'", arg);
    return NULL;
}

static const char *set_cache_socache(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_srv_conf *sc = ap_get_module_config(cmd->server->module_config, &auth_jwks_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)cv;
    return err ? err : ajw_socache_config(cmd, arg, &sc->socache);
}

/* AuthJWKSFleetKey: read here, in httpd's parent as the user that starts it
 * (root), before any child exists; apachectl -t reads it too. Only the
 * derived keys are kept (in the configuration pool); the secret is wiped
 * with the temporary pool. */
static const char *set_fleet_key(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_srv_conf *sc = ap_get_module_config(cmd->server->module_config, &auth_jwks_module);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    const char *path, *why = NULL;
    unsigned char *secret = NULL;
    size_t len = 0;
    ajw_keys_t *keys;
    (void)cv;
    if (err)
        return err;
    if (!(path = ap_server_root_relative(cmd->temp_pool, arg)))
        return ajw_mod_dir_err(cmd, "invalid path '%s'", arg);
    if (ajw_secret_read(&secret, &len, path, geteuid(), &why, cmd->temp_pool) != APR_SUCCESS)
        return ajw_mod_dir_err(cmd, "%s", why);
    keys = apr_palloc(cmd->pool, sizeof(*keys));
    if (ajw_keys_derive(keys, secret, len) != 0)
        return ajw_mod_dir_err(cmd, "%s: cannot derive keys from it", path);
    sc->fleet_key_file = apr_pstrdup(cmd->pool, path);
    sc->fleet_keys = keys;
    return NULL;
}

static const char *set_strip(cmd_parms *cmd, void *cv, int flag)
{
    ajw_srv_conf *sc = ap_get_module_config(cmd->server->module_config, &auth_jwks_module);
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_CONTEXT);
    (void)cv;
    if (err)
        return err;
    sc->strip = flag;
    return NULL;
}

/* Directives that name key sources or fetch settings are RSRC_CONF |
 * ACCESS_CONF: key sources are resolved once per configuration (post_config)
 * and fetched by the child's refresh threads, which .htaccess files, read per
 * request, cannot take part in. */
const command_rec ajw_mod_cmds[] = {
    AP_INIT_TAKE1("AuthJWKSURL", set_url, NULL, RSRC_CONF | ACCESS_CONF,
                  "URL of a JWKS (https://, file:///, or loopback http://); may repeat"),
    AP_INIT_TAKE12("AuthJWKSIssuer", set_issuer, NULL, RSRC_CONF | ACCESS_CONF,
                   "accepted iss value, optionally bound to the JWKS URL that signs for it "
                   "(or to 'discover': the jwks_uri of its OIDC / RFC 8414 metadata); "
                   "{tenantid} as a path segment stands for the token's tid"),
    AP_INIT_ITERATE("AuthJWKSTenant", set_tenant, NULL, OR_AUTHCFG,
                    "tenant ids (tid) accepted; a token of any other tenant, or without tid, "
                    "is refused (default: any tenant)"),
    AP_INIT_ITERATE("AuthJWKSAudience", set_audience, NULL, OR_AUTHCFG,
                    "accepted aud values (any one must be in the token); 'resource': the "
                    "resource of the section's AuthJWKSResourceMetadata"),
    AP_INIT_ITERATE("AuthJWKSAlgorithms", set_algs, NULL, OR_AUTHCFG,
                    "allowed JWS algorithms"),
    AP_INIT_TAKE1("AuthJWKSLeeway", set_leeway, NULL, OR_AUTHCFG,
                  "clock skew allowed for exp/nbf/iat, seconds (default 60)"),
    AP_INIT_ITERATE("AuthJWKSRequireClaim", set_required, NULL, OR_AUTHCFG,
                    "claims that must be present"),
    AP_INIT_TAKE1("AuthJWKSTokenType", set_typ, NULL, OR_AUTHCFG,
                  "required typ header, e.g. at+jwt"),
    AP_INIT_TAKE1("AuthJWKSMaxTokenAge", set_max_age, NULL, OR_AUTHCFG,
                  "maximum seconds since iat (iat then required)"),
    AP_INIT_TAKE1("AuthJWKSMaxAuthAge", set_max_auth_age, NULL, OR_AUTHCFG,
                  "maximum seconds since the user authenticated (auth_time), else a 401 "
                  "step-up challenge with max_age (RFC 9470; default off)"),
    AP_INIT_TAKE1("AuthJWKSMaxTokenSize", set_max_token, NULL, OR_AUTHCFG,
                  "maximum token length in bytes (default 16384)"),
    AP_INIT_ITERATE("AuthJWKSTokenFrom", set_from, NULL, OR_AUTHCFG,
                    "where tokens come from: header (Authorization: Bearer), "
                    "header=<Header-Name>[:<scheme>], cookie=<name>, query=<name>"),
    AP_INIT_FLAG("AuthJWKSOptional", set_optional, NULL, OR_AUTHCFG,
                 "On: a request without a token goes on anonymous where authorization allows "
                 "it (Require all granted); a token that is present is verified and refused "
                 "when bad (default Off)"),
    AP_INIT_FLAG("AuthJWKSJSONErrors", set_json_errors, NULL, OR_AUTHCFG,
                 "On: the module's 400/401/403 answers carry a JSON body (application/json) "
                 "with the challenge's error and error_description (default Off)"),
    AP_INIT_TAKE1("AuthJWKSUserClaim", set_user_claim, NULL, OR_AUTHCFG,
                  "claim that becomes REMOTE_USER (default sub; <claim>@iss adds @<iss>)"),
    AP_INIT_TAKE1("AuthJWKSPassClaims", set_pass, NULL, OR_AUTHCFG,
                  "none | env | headers | both (default env)"),
    AP_INIT_TAKE1("AuthJWKSClaimPrefix", set_claim_prefix, NULL, RSRC_CONF | ACCESS_CONF,
                  "environment variable prefix for claims (default JWT_CLAIM_)"),
    AP_INIT_TAKE1("AuthJWKSHeaderPrefix", set_header_prefix, NULL, RSRC_CONF | ACCESS_CONF,
                  "request header prefix for claims (default X-JWT-Claim-)"),
    AP_INIT_TAKE2("AuthJWKSClaimHeader", set_claim_map, "header", RSRC_CONF | ACCESS_CONF,
                  "<claim> <Header-Name>: pass one claim to the backend under a fixed header"),
    AP_INIT_TAKE2("AuthJWKSClaimEnv", set_claim_map, "env", RSRC_CONF | ACCESS_CONF,
                  "<claim> <VARIABLE>: pass one claim to CGI under a fixed variable"),
    AP_INIT_FLAG("AuthJWKSCacheable", set_cacheable, NULL, OR_AUTHCFG,
                 "let httpd's cache store answers (only after authentication; default Off)"),
    AP_INIT_FLAG("AuthJWKSForwardToken", set_forward, NULL, OR_AUTHCFG,
                 "pass the Authorization header on to the backend (default On)"),
    AP_INIT_TAKE1("AuthJWKSCAFile", set_ca_file, NULL, RSRC_CONF | ACCESS_CONF,
                  "PEM CA bundle for https:// JWKS URLs of this section"),
    AP_INIT_TAKE1("AuthJWKSRefreshInterval", set_interval, "refresh", RSRC_CONF | ACCESS_CONF,
                  "seconds between JWKS refreshes (default 300)"),
    AP_INIT_TAKE1("AuthJWKSMinRefreshInterval", set_interval, "min_refresh",
                  RSRC_CONF | ACCESS_CONF,
                  "minimum seconds between early refreshes on an unknown kid (default 30)"),
    AP_INIT_TAKE1("AuthJWKSFetchTimeout", set_interval, "timeout", RSRC_CONF | ACCESS_CONF,
                  "seconds one JWKS fetch may take (default 10)"),
    AP_INIT_TAKE1("AuthJWKSMaxStale", set_interval, "max_stale", RSRC_CONF | ACCESS_CONF,
                  "seconds keys stay usable after the last successful fetch while the IdP "
                  "fails (default 86400, off = forever)"),
    AP_INIT_TAKE1("AuthJWKSRotationWait", set_interval, "rotation", OR_AUTHCFG,
                  "seconds a token with an unknown kid waits for the refresh it triggers "
                  "(default 2, 0 = no wait)"),
    AP_INIT_TAKE1("AuthJWKSCacheDir", set_cache_dir, NULL, RSRC_CONF,
                  "directory of the shared last-good JWKS copies (default: "
                  "<DefaultRuntimeDir>/auth_jwks; off = none)"),
    AP_INIT_TAKE1("AuthJWKSCacheSocache", set_cache_socache, NULL, RSRC_CONF,
                  "httpd socache provider[:args] that also keeps the last-good JWKS copies, "
                  "shared by a fleet (e.g. memcache:host:port, redis:host:port; default none)"),
    AP_INIT_TAKE1("AuthJWKSFleetKey", set_fleet_key, NULL, RSRC_CONF,
                  "file with the fleet's secret (at least 32 bytes, e.g. openssl rand -hex 32; "
                  "owned by root, mode 0600): authenticates the shared JWKS copies and DPoP "
                  "nonces and replay marks across the servers of a fleet (default none: a "
                  "per-server key)"),
    AP_INIT_TAKE1("AuthJWKSStartupWait", set_interval, "startup", OR_AUTHCFG,
                  "seconds a request waits for the first key load before 503 (default 5)"),
    AP_INIT_FLAG("AuthJWKSStripClaimHeaders", set_strip, NULL, RSRC_CONF,
                 "remove client headers that look like claim headers as soon as a request "
                 "is read, on hosts with jwks sections (default On)"),
    AP_INIT_TAKE1("AuthJWKSTokenCache", set_token_cache, NULL, RSRC_CONF,
                  "verified tokens remembered per process (default 1024, 0 = off)"),
    AP_INIT_TAKE1("AuthJWKSRefusalCache", set_refusal_cache, NULL, RSRC_CONF,
                  "bad signatures remembered per process, so a forged token sent again "
                  "costs no signature check (default 4096 threaded, 1024 prefork; 0 = off)"),
    AP_INIT_TAKE12("AuthJWKSLogRefusals", set_log_refusals, NULL, RSRC_CONF,
                   "refusals logged one by one per client per interval, the rest counted in "
                   "one summary line: <first> [<seconds>] (default 5 60), or all"),
    AJW_DPOP_CMDS,
    AJW_REVOKE_CMDS,
    AJW_FETCHX_CMDS,
    {NULL}
};
