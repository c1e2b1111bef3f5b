/* mod_auth_jwks_authz.c — the Require providers: `Require jwt-claim`,
 * `Require jwt-scope` and `Require jwt-acr` (step-up), and the short names
 * `Require claim` / `Require scope`. Rules are compiled once, at config time
 * (lib/ajw_require; regexes with httpd's ap_regex), and only evaluated per
 * request, on the claims the request verified.
 *
 * Coexistence: other modules register `claim` too (mod_auth_openidc does),
 * and httpd keeps whichever registers last, in LoadModule order. So the
 * short names are registered as a wrapper that remembers the provider it
 * replaced — at register_hooks time (a module loaded before us) and again
 * in pre_config (one loaded after us; Require lines are read after every
 * LoadModule). Each Require line is then compiled by both, and each request
 * is answered by ours on `AuthType jwks` and by the other module elsewhere,
 * exactly as when each is loaded alone. */
#include <string.h>

#include <apr_strings.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_request.h"
#include "ap_provider.h"
#include "ap_regex.h"
#include "mod_auth.h"

#include "ajw_require.h"
#include "mod_auth_jwks.h"
#include "mod_auth_jwks_request.h"

APLOG_USE_MODULE(auth_jwks);

static apr_status_t split_args(cmd_parms *cmd, const char *line, int *argc,
                               const char *const **argv)
{
    apr_array_header_t *a = apr_array_make(cmd->pool, 4, sizeof(const char *));
    const char *w;
    while (line && *(w = ap_getword_conf(cmd->pool, &line)))
        APR_ARRAY_PUSH(a, const char *) = w;
    *argc = a->nelts;
    *argv = (const char *const *)a->elts;
    return a->nelts ? APR_SUCCESS : APR_EINVAL;
}

/* `Require claim path~regex` in httpd's own dialect: PCRE through ap_regex,
 * as <LocationMatch>, RewriteRule, SetEnvIf and <If> read theirs. The
 * options are fixed, whatever RegexDefaultOptions says elsewhere, so that a
 * rule means the same in every configuration: '.' matches a newline too
 * (DOTALL) and '$' only the very end of the value (DOLLAR_ENDONLY: a value
 * with a trailing newline does not pass an anchored rule). Inline options
 * such as (?i) work as in PCRE. */
#define AJW_REGEX_CFLAGS (AP_REG_NO_DEFAULT | AP_REG_DOTALL | AP_REG_DOLLAR_ENDONLY)

static apr_status_t ap_engine_free(void *data)
{
    ap_regfree(data);
    return APR_SUCCESS;
}

/* ap_regerror's text is generic ("bad argument at offset 1"), padded with
 * spaces: trimmed here. */
static apr_status_t ap_engine_compile(void **out, const char *pattern, apr_pool_t *p,
                                      const char **why)
{
    ap_regex_t *re = apr_pcalloc(p, sizeof(*re));
    int rc = ap_regcomp(re, pattern, AJW_REGEX_CFLAGS);
    if (rc != 0) {
        char msg[160];
        size_t n;
        ap_regerror(rc, re, msg, sizeof(msg));
        for (n = strnlen(msg, sizeof(msg) - 1); n && msg[n - 1] == ' '; n--)
            ;
        *why = apr_pstrmemdup(p, msg, n);
        return APR_EINVAL;
    }
    apr_pool_cleanup_register(p, re, ap_engine_free, apr_pool_cleanup_null);
    *out = re;
    return APR_SUCCESS;
}

static int ap_engine_match(const void *re, const char *text, size_t len)
{
    return ap_regexec_len(re, text, len, 0, NULL, 0) == 0;
}

static const ajw_regex_engine_t ap_engine = { "PCRE", ap_engine_compile, ap_engine_match };

typedef apr_status_t rule_compile_fn(ajw_require_t **out, int argc, const char *const *argv,
                                     apr_pool_t *p, const char **why);

static apr_status_t claim_compile(ajw_require_t **out, int argc, const char *const *argv,
                                  apr_pool_t *p, const char **why)
{
    return ajw_require_claim_compile(out, argc, argv, &ap_engine, p, why);
}

/* Compile a Require line once, at config time; lib's reason names the rule. */
static const char *parse_rule(cmd_parms *cmd, const char *line, const void **parsed,
                              rule_compile_fn *compile, const char *usage)
{
    int argc;
    const char *const *argv;
    const char *why = NULL;
    ajw_require_t *rq;
    if (split_args(cmd, line, &argc, &argv) != APR_SUCCESS)
        return usage;
    if (compile(&rq, argc, argv, cmd->pool, &why) != APR_SUCCESS)
        return why ? why : usage;
    if ((why = ajw_require_warning(rq, cmd->temp_pool)))
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server, "%s (%s line %d)", why,
                     cmd->directive ? cmd->directive->filename : "?",
                     cmd->directive ? cmd->directive->line_num : 0);
    *parsed = rq;
    return NULL;
}

static const char *parse_claim_rule(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_rule(cmd, line, parsed, claim_compile,
                      "Require claim: give at least one <claim>:<value> or <claim>~<regex>");
}

/* Is the Require line being read "Require not ..."? */
static int negated(const cmd_parms *cmd)
{
    const char *args = cmd->directive ? cmd->directive->args : NULL;
    return args && !strncasecmp(args, "not", 3) && (args[3] == ' ' || args[3] == '\t');
}

/* Add the scopes of rq to those the Require line's section needs (its
 * ajw_dir_conf, found through the section's config vector: a Require
 * provider is not handed it). Negated rules name scopes to lack, not to
 * ask for. */
static void note_needed_scopes(cmd_parms *cmd, const ajw_require_t *rq)
{
    ajw_dir_conf *c;
    char *list, *tok, *last = NULL;
    int i;
    if (negated(cmd) || !cmd->context)
        return;
    c = ap_set_config_vectors(cmd->server, cmd->context, cmd->path, &auth_jwks_module,
                              cmd->pool);
    if (!c->need_scopes_set) {
        c->need_scopes = apr_array_make(cmd->pool, 4, sizeof(const char *));
        c->need_scopes_set = 1;
    }
    list = apr_pstrdup(cmd->pool, ajw_require_text(rq));
    for (tok = apr_strtok(list, " ", &last); tok; tok = apr_strtok(NULL, " ", &last)) {
        for (i = 0; i < c->need_scopes->nelts; i++)
            if (!strcmp(APR_ARRAY_IDX(c->need_scopes, i, const char *), tok))
                break;
        if (i == c->need_scopes->nelts)
            APR_ARRAY_PUSH(c->need_scopes, const char *) = tok;
    }
}

static const char *parse_scope_rule(cmd_parms *cmd, const char *line, const void **parsed)
{
    const char *err = parse_rule(cmd, line, parsed, ajw_require_scope_compile,
                                 "Require scope: give at least one scope");
    if (!err)
        note_needed_scopes(cmd, *parsed);
    return err;
}

/* scope="..." of an insufficient_scope answer: every scope the section
 * needs (MCP: one challenge names them all), else the failed rule's. */
static const char *needed_scopes(request_rec *r, const ajw_require_t *rq)
{
    const ajw_dir_conf *c = ap_get_module_config(r->per_dir_config, &auth_jwks_module);
    if (!c || !c->need_scopes->nelts)
        return ajw_require_text(rq);
    return apr_array_pstrcat(r->pool, c->need_scopes, ' ');
}

/* Require jwt-acr (RFC 9470 step-up). An unmet rule must answer 401 with
 * insufficient_user_authentication, not 403: mod_authz_core answers 401 (and
 * runs note_auth_failure, which sets our challenge) when the outcome is
 * AUTHZ_DENIED_NO_USER after authentication, and that outcome also wins
 * over a plain denial of a sibling under <RequireAny>. Negated, "no user"
 * would still be a 401, so `Require not jwt-acr` is refused. */
static const char *parse_acr_rule(cmd_parms *cmd, const char *line, const void **parsed)
{
    if (negated(cmd))
        return "Require not jwt-acr: a step-up rule cannot be negated (list the acr values "
               "to accept instead)";
    return parse_rule(cmd, line, parsed, ajw_require_acr_compile,
                      "Require jwt-acr: give at least one acr value");
}

static authz_status acr_unmet(request_rec *r, const ajw_require_t *rq, const ajw_req_t *st)
{
    const ajw_dir_conf *c = ap_get_module_config(r->per_dir_config, &auth_jwks_module);
    const char *acr = ajw_val_str(ajw_val_get(st->claims, "acr"));
    const char *params = apr_pstrcat(r->pool, "acr_values=", ajw_mod_quote(r->pool,
                                     ajw_require_text(rq)), NULL);
    if (c && c->max_auth_age > 0)
        params = apr_psprintf(r->pool, "%s, max_age=\"%" APR_INT64_T_FMT "\"", params,
                              (apr_int64_t)c->max_auth_age);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "Require jwt-acr %s: not met by user %s "
                  "(acr %s): step-up required", ajw_mod_log_item(r->pool, ajw_require_text(rq)),
                  ajw_mod_log_item(r->pool, r->user),
                  acr ? ajw_mod_log_item(r->pool, acr) : "absent or not a string");
    ajw_mod_note_step_up(r, "A different authentication level is required", params);
    return AUTHZ_DENIED_NO_USER;
}

enum { RULE_CLAIM, RULE_SCOPE, RULE_ACR };

static authz_status check_rule(request_rec *r, const ajw_require_t *rq, int kind)
{
    static const char *const names[] = { "claim", "scope", "jwt-acr" };
    int is_scope = kind == RULE_SCOPE;
    ajw_req_t *st;
    if (!r->user)
        return AUTHZ_DENIED_NO_USER;
    st = ajw_mod_req_state(r);
    if (!st || strcmp(st->user, r->user) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "Require %s needs AuthType jwks "
                      "(user %s was not authenticated by a token)", names[kind],
                      ajw_mod_log_item(r->pool, r->user));
        return AUTHZ_DENIED;
    }
    if (ajw_require_eval(rq, st->claims))
        return AUTHZ_GRANTED;
    if (kind == RULE_ACR)
        return acr_unmet(r, rq, st);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "Require %s %s: not met by user %s",
                  is_scope ? "scope" : "claim", ajw_mod_log_item(r->pool, ajw_require_text(rq)),
                  ajw_mod_log_item(r->pool, r->user));
    apr_table_setn(r->notes, "ajw-error", "insufficient_scope");
    apr_table_setn(r->notes, "ajw-desc", is_scope ? "The token lacks a required scope"
                                                  : "The token lacks a required claim");
    if (is_scope)
        apr_table_setn(r->notes, "ajw-scope", needed_scopes(r, rq));
    ajw_mod_set_challenge(r, "insufficient_scope", apr_table_get(r->notes, "ajw-desc"),
                          is_scope ? apr_table_get(r->notes, "ajw-scope") : NULL);
    st->scope_challenge = 1;
    return AUTHZ_DENIED;
}

static authz_status check_claim(request_rec *r, const char *args, const void *parsed)
{
    (void)args;
    return check_rule(r, parsed, RULE_CLAIM);
}

static authz_status check_scope(request_rec *r, const char *args, const void *parsed)
{
    (void)args;
    return check_rule(r, parsed, RULE_SCOPE);
}

static authz_status check_acr(request_rec *r, const char *args, const void *parsed)
{
    (void)args;
    return check_rule(r, parsed, RULE_ACR);
}

/* Require jwt-claim / jwt-scope / jwt-acr: ours alone, whatever else is loaded. */
static const authz_provider jwt_claim_provider = { check_claim, parse_claim_rule };
static const authz_provider jwt_scope_provider = { check_scope, parse_scope_rule };
static const authz_provider jwt_acr_provider = { check_acr, parse_acr_rule };

/* ------------------------------------------------------------------ */
/* The shared short names                                               */

/* One short name (claim, scope) and the provider it displaced, if any.
 * Written only in register_hooks and pre_config (single-threaded config
 * phase, reset on every (re)load of the module); read-only afterwards. */
typedef struct shared_name_t {
    const char *name;
    int is_scope;
    const authz_provider *other;
    const authz_provider *wrapper;
} shared_name_t;

/* A Require line compiled by both providers: ours or why ours refused it,
 * and the other's (it saw the same line). */
typedef struct shared_rule_t {
    const ajw_require_t *ours;
    const char *ours_err;
    const void *other_parsed;
    const char *other_err;
} shared_rule_t;

static shared_name_t shared_claim = { "claim", 0, NULL, NULL };
static shared_name_t shared_scope = { "scope", 1, NULL, NULL };

/* With no other provider, a line we refuse is a config error as always;
 * with one, it may be meant for the other module: keep both verdicts and
 * fail only when neither could compile it. */
static const char *parse_shared(const shared_name_t *sn, cmd_parms *cmd, const char *line,
                                const void **parsed)
{
    shared_rule_t *sr = apr_pcalloc(cmd->pool, sizeof(*sr));
    const void *ours = NULL;
    sr->ours_err = sn->is_scope ? parse_scope_rule(cmd, line, &ours)
                                : parse_claim_rule(cmd, line, &ours);
    sr->ours = ours;
    if (!sn->other)
        return sr->ours_err ? sr->ours_err : (*parsed = sr, NULL);
    if (sn->other->parse_require_line)
        sr->other_err = sn->other->parse_require_line(cmd, line, &sr->other_parsed);
    if (sr->ours_err && sr->other_err)
        return sr->ours_err;
    *parsed = sr;
    return NULL;
}

static authz_status check_shared(const shared_name_t *sn, request_rec *r, const char *args,
                                 const void *parsed)
{
    const shared_rule_t *sr = parsed;
    if (ajw_mod_is_ours(r) || !sn->other) {
        if (sr->ours)
            return check_rule(r, sr->ours, sn->is_scope ? RULE_SCOPE : RULE_CLAIM);
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s", sr->ours_err);
        return AUTHZ_DENIED;
    }
    if (sr->other_err) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "Require %s: %s", sn->name, sr->other_err);
        return AUTHZ_DENIED;
    }
    return sn->other->check_authorization(r, args, sr->other_parsed);
}

static const char *parse_shared_claim(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_shared(&shared_claim, cmd, line, parsed);
}

static const char *parse_shared_scope(cmd_parms *cmd, const char *line, const void **parsed)
{
    return parse_shared(&shared_scope, cmd, line, parsed);
}

static authz_status check_shared_claim(request_rec *r, const char *args, const void *parsed)
{
    return check_shared(&shared_claim, r, args, parsed);
}

static authz_status check_shared_scope(request_rec *r, const char *args, const void *parsed)
{
    return check_shared(&shared_scope, r, args, parsed);
}

static const authz_provider claim_wrapper = { check_shared_claim, parse_shared_claim };
static const authz_provider scope_wrapper = { check_shared_scope, parse_shared_scope };

/* Take over sn's name, remembering whoever holds it now (if not us). */
static void take_name(apr_pool_t *p, shared_name_t *sn)
{
    const authz_provider *cur = ap_lookup_provider(AUTHZ_PROVIDER_GROUP, sn->name,
                                                   AUTHZ_PROVIDER_VERSION);
    if (cur == sn->wrapper)
        return;
    if (cur)
        sn->other = cur;
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, sn->name, AUTHZ_PROVIDER_VERSION,
                              sn->wrapper, AP_AUTH_INTERNAL_PER_CONF);
}

void ajw_authz_register(apr_pool_t *p)
{
    shared_claim.other = shared_scope.other = NULL;
    shared_claim.wrapper = &claim_wrapper;
    shared_scope.wrapper = &scope_wrapper;
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "jwt-claim", AUTHZ_PROVIDER_VERSION,
                              &jwt_claim_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "jwt-scope", AUTHZ_PROVIDER_VERSION,
                              &jwt_scope_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "jwt-acr", AUTHZ_PROVIDER_VERSION,
                              &jwt_acr_provider, AP_AUTH_INTERNAL_PER_CONF);
    take_name(p, &shared_claim);
    take_name(p, &shared_scope);
}

void ajw_authz_pre_config(apr_pool_t *pconf)
{
    take_name(pconf, &shared_claim);
    take_name(pconf, &shared_scope);
}
