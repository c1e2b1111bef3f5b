/* mod_auth_jwks_request.h — what the glue files share below the features:
 * the per-request state, the WWW-Authenticate challenge (Bearer and DPoP,
 * resource_metadata), step-up notes, log items and directive errors.
 *
 * The glue calls one way: mod_auth_jwks.c (hooks, authentication) and
 * mod_auth_jwks_config.c (the directive table) call the feature files, and
 * every glue file may call this one; this file calls only lib/ and httpd.
 * `make lint` (tests/lint/glue_calls.py) fails on any call cycle. */
#ifndef MOD_AUTH_JWKS_REQUEST_H
#define MOD_AUTH_JWKS_REQUEST_H

#include "httpd.h"
#include "http_config.h"
#include "mod_auth_jwks.h"

/* 1 when r's AuthType is ours (jwks), else 0. */
int ajw_mod_is_ours(request_rec *r);
/* r's merged per-directory config of this module. */
ajw_dir_conf *ajw_mod_dir_conf(request_rec *r);
/* The request r came from: the original of an internal redirect first, then
 * the main request of a subrequest; NULL for the client's request. */
request_rec *ajw_mod_came_from(request_rec *r);

/* The state of the request that authenticated: r itself or a request r
 * came from (internal redirect, subrequest); NULL when none did. */
ajw_req_t *ajw_mod_req_state(request_rec *r);

/* Set WWW-Authenticate: the RFC 6750 Bearer challenge (realm from AuthName),
 * or, where the section has DPoP or resource metadata, the Bearer and/or
 * DPoP challenges (RFC 9449 §7.1) with algs and resource_metadata. With
 * AuthJWKSJSONErrors, also the JSON body note. error/desc/scope may be NULL. */
void ajw_mod_set_challenge(request_rec *r, const char *error, const char *desc,
                           const char *scope);

/* RFC 9470 step-up: the error code, and the auth-params (acr_values="...",
 * max_age="...") a refusal left in r->notes for the challenge, or NULL. */
#define AJW_STEP_UP_ERROR "insufficient_user_authentication"
const char *ajw_mod_step_up_params(request_rec *r);
/* Refuse an authenticated request for step-up: note the error, the
 * description and params (acr_values and/or max_age, pre-rendered) for
 * note_auth_failure, which sets the 401 challenge. desc and params must
 * live as long as r->pool. */
void ajw_mod_note_step_up(request_rec *r, const char *desc, const char *params);

/* A quoted-string (RFC 9110 §5.6.4) for a challenge parameter, from p;
 * control bytes are dropped, never let into a header. */
const char *ajw_mod_quote(apr_pool_t *p, const char *s);
/* A token-supplied value made safe and short (80 bytes) for a log line,
 * from p; "-" for NULL. */
const char *ajw_mod_log_item(apr_pool_t *p, const char *s);
/* A refusal of this client's, for its error-log line (AuthJWKSLogRefusals):
 * 1 when the full line is to be written, 0 when it is only counted, for
 * the client's summary line (written here first when one is due). reason
 * is a static string (a reason name). */
int ajw_mod_client_line(request_rec *r, const char *reason);

/* "<Directive>: <message>" from cmd->pool, so apachectl -t names what to fix. */
const char *ajw_mod_dir_err(cmd_parms *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* 1 when s is a non-empty run of letters, digits, '-', '.' and '_' (names
 * of cookies, query parameters and headers in directives), else 0. */
int ajw_mod_is_token(const char *s);

#endif
