/* mod_auth_jwks_request.c — what the glue files share below the features:
 * the request state, the WWW-Authenticate challenge (with the DPoP and
 * resource-metadata parts of it), step-up notes, log items and directive
 * errors. Calls lib/ and httpd only (see mod_auth_jwks_request.h). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <apr_strings.h>
#include <apr_lib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"

#include "ajw_clientlog.h"
#include "ajw_types.h"
#include "mod_auth_jwks.h"
#include "mod_auth_jwks_request.h"

APLOG_USE_MODULE(auth_jwks);

/* ------------------------------------------------------------------ */
/* Request state                                                        */

int ajw_mod_is_ours(request_rec *r)
{
    const char *t = ap_auth_type(r);
    return t && !strcasecmp(t, AJW_AUTH_TYPE);
}

ajw_dir_conf *ajw_mod_dir_conf(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &auth_jwks_module);
}

request_rec *ajw_mod_came_from(request_rec *r)
{
    return r->prev ? r->prev : r->main;
}

/* The state of the request that authenticated: r itself, or a request r
 * came from (internal redirects and subrequests inherit r->user). */
ajw_req_t *ajw_mod_req_state(request_rec *r)
{
    for (; r; r = ajw_mod_came_from(r)) {
        ajw_req_t *st = ap_get_module_config(r->request_config, &auth_jwks_module);
        if (st && st->user)
            return st;
    }
    return NULL;
}

/* A quoted-string (RFC 9110 §5.6.4) for a challenge parameter. */
const char *ajw_mod_quote(apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, 2 * strlen(s) + 3), *o = out;
    *o++ = '"';
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f)
            continue;                 /* never let a control byte into a header */
        if (ch == '"' || ch == '\\')
            *o++ = '\\';
        *o++ = (char)ch;
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

int ajw_mod_client_line(request_rec *r, const char *reason)
{
    const char *summary = NULL;
    int full = ajw_clientlog_note(ajw_mod.clientlog, ap_escape_logitem(r->pool, r->useragent_ip),
                                  reason, apr_time_now(), &summary, r->pool);
    if (summary)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s", summary);
    return full;
}

/* A token-supplied value made safe and short for a log line. */
const char *ajw_mod_log_item(apr_pool_t *p, const char *s)
{
    if (!s)
        return "-";
    if (strlen(s) > 80)
        s = apr_pstrcat(p, apr_pstrndup(p, s, 80), "...", NULL);
    return ap_escape_logitem(p, s);
}

/* ------------------------------------------------------------------ */
/* Challenges                                                           */

/* AuthJWKSJSONErrors On: the challenge's error, error_description and scope
 * as a JSON object, for the body of the refusal (json_error_filter). A
 * request without a token has no error code in its challenge (RFC 6750
 * §3.1); its body says "unauthorized". Fixed texts only, never the token. */
static void note_json_body(request_rec *r, const char *error, const char *desc,
                           const char *scope)
{
    json_t *o = json_object();
    char *txt;
    if (!o)
        return;
    if (!error) {
        error = "unauthorized";
        desc = "A token is required";
    }
    json_object_set_new(o, "error", json_string(error));
    if (desc)
        json_object_set_new(o, "error_description", json_string(desc));
    if (scope)
        json_object_set_new(o, "scope", json_string(scope));
    txt = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!txt)
        return;
    apr_table_set(r->notes, AJW_JSON_NOTE, txt);
    free(txt);
}

/* Space-separated names of the asymmetric algorithms in algs. */
static const char *alg_list(apr_pool_t *p, unsigned algs)
{
    const char *out = "";
    int a;
    for (a = AJW_ALG_RS256; a <= AJW_ALG_EDDSA; a++)
        if (algs & AJW_ALGS_DEFAULT & AJW_ALG_BIT(a))
            out = apr_pstrcat(p, out, *out ? " " : "", ajw_alg_name((ajw_alg_e)a), NULL);
    return out;
}

/* Did the client use Authorization: DPoP? Remembered in the request state
 * when the token was found: AuthJWKSForwardToken Off has taken the header
 * out by the time a challenge is made. */
static int used_dpop_scheme(request_rec *r)
{
    const ajw_req_t *st = ap_get_module_config(r->request_config, &auth_jwks_module);
    const char *v = apr_table_get(r->headers_in, "Authorization");
    if (st && st->token_dpop)
        return 1;
    if (!v)
        return 0;
    while (*v == ' ' || *v == '\t')
        v++;
    return !strncasecmp(v, "DPoP", 4) && (v[4] == ' ' || v[4] == '\t' || v[4] == '\0');
}

/* "<scheme> realm=..., error=..., ..." with the parameters that are set. */
static const char *challenge(request_rec *r, const char *scheme, const char *error,
                             const char *desc, const char *scope, const char *algs,
                             const char *rm)
{
    const char *realm = ap_auth_name(r), *v = scheme, *sep = " ";
    apr_pool_t *p = r->pool;
    if (realm) {
        v = apr_pstrcat(p, v, sep, "realm=", ajw_mod_quote(p, realm), NULL);
        sep = ", ";
    }
    if (error) {
        v = apr_pstrcat(p, v, sep, "error=", ajw_mod_quote(p, error), NULL);
        sep = ", ";
        if (desc)
            v = apr_pstrcat(p, v, sep, "error_description=", ajw_mod_quote(p, desc), NULL);
        if (!strcmp(error, AJW_STEP_UP_ERROR) && ajw_mod_step_up_params(r))
            v = apr_pstrcat(p, v, sep, ajw_mod_step_up_params(r), NULL);
    }
    if (scope) {
        v = apr_pstrcat(p, v, sep, "scope=", ajw_mod_quote(p, scope), NULL);
        sep = ", ";
    }
    if (algs) {
        v = apr_pstrcat(p, v, sep, "algs=", ajw_mod_quote(p, algs), NULL);
        sep = ", ";
    }
    if (rm)
        v = apr_pstrcat(p, v, sep, "resource_metadata=", ajw_mod_quote(p, rm), NULL);
    return v;
}

/* Where the section has DPoP or resource metadata: its challenges, and 1;
 * else 0 and the caller sets the plain Bearer challenge. */
static int dpop_challenge(request_rec *r, const char *error, const char *desc,
                          const char *scope)
{
    const ajw_dir_conf *c = ajw_mod_dir_conf(r);
    const char *rm, *bearer = NULL, *dpop = NULL;
    int on_dpop;
    if (!c || (c->dpop == AJW_DPOP_OFF && !c->prm))
        return 0;
    rm = c->prm ? c->prm->url : NULL;
    /* The error belongs to the scheme the client used (RFC 9449 §7.1). */
    on_dpop = c->dpop == AJW_DPOP_REQUIRE
              || (c->dpop != AJW_DPOP_OFF && (used_dpop_scheme(r)
                  || (error && (!strcmp(error, "invalid_dpop_proof")
                                || !strcmp(error, "use_dpop_nonce")))));
    if (c->dpop != AJW_DPOP_REQUIRE)
        bearer = on_dpop ? challenge(r, "Bearer", NULL, NULL, NULL, NULL, rm)
                         : challenge(r, "Bearer", error, desc, scope, NULL, rm);
    if (c->dpop != AJW_DPOP_OFF) {
        const char *algs = alg_list(r->pool, c->algs);
        dpop = on_dpop ? challenge(r, "DPoP", error, desc, scope, algs, rm)
                       : challenge(r, "DPoP", NULL, NULL, NULL, algs, rm);
    }
    apr_table_unset(r->err_headers_out, "WWW-Authenticate");
    if (bearer)
        apr_table_addn(r->err_headers_out, "WWW-Authenticate", bearer);
    if (dpop)
        apr_table_addn(r->err_headers_out, "WWW-Authenticate", dpop);
    return 1;
}

void ajw_mod_set_challenge(request_rec *r, const char *error, const char *desc,
                           const char *scope)
{
    const char *realm = ap_auth_name(r);
    const char *v = "Bearer";
    const char *sep = " ";
    if (ajw_mod_is_ours(r) && ajw_mod_dir_conf(r)->json_errors)
        note_json_body(r, error, desc, scope);
    if (dpop_challenge(r, error, desc, scope))
        return;                   /* DPoP and/or resource metadata: both schemes built there */
    if (realm) {
        v = apr_pstrcat(r->pool, v, sep, "realm=", ajw_mod_quote(r->pool, realm), NULL);
        sep = ", ";
    }
    if (error) {
        v = apr_pstrcat(r->pool, v, sep, "error=", ajw_mod_quote(r->pool, error), NULL);
        sep = ", ";
    }
    if (desc)
        v = apr_pstrcat(r->pool, v, sep, "error_description=", ajw_mod_quote(r->pool, desc), NULL);
    if (scope)
        v = apr_pstrcat(r->pool, v, sep, "scope=", ajw_mod_quote(r->pool, scope), NULL);
    if (error && !strcmp(error, AJW_STEP_UP_ERROR) && ajw_mod_step_up_params(r))
        v = apr_pstrcat(r->pool, v, ", ", ajw_mod_step_up_params(r), NULL);
    apr_table_setn(r->err_headers_out, "WWW-Authenticate", v);
}

const char *ajw_mod_step_up_params(request_rec *r)
{
    return apr_table_get(r->notes, "ajw-step-up");
}

void ajw_mod_note_step_up(request_rec *r, const char *desc, const char *params)
{
    apr_table_setn(r->notes, "ajw-error", AJW_STEP_UP_ERROR);
    apr_table_setn(r->notes, "ajw-desc", desc);
    apr_table_setn(r->notes, "ajw-step-up-desc", desc);
    apr_table_setn(r->notes, "ajw-step-up", params);
    apr_table_unset(r->notes, "ajw-scope");
}

/* ------------------------------------------------------------------ */
/* Directive helpers                                                    */

const char *ajw_mod_dir_err(cmd_parms *cmd, const char *fmt, ...)
{
    va_list ap;
    const char *msg;
    va_start(ap, fmt);
    msg = apr_pvsprintf(cmd->pool, fmt, ap);
    va_end(ap);
    return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, msg);
}

int ajw_mod_is_token(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!apr_isalnum(*s) && !strchr("-_.", *s))
            return 0;
    return 1;
}
