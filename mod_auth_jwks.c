/* mod_auth_jwks.c — httpd glue for JWT bearer authentication against a JWKS:
 * the module's front door.
 *
 * Everything that decides whether a token is genuine lives in lib/ (no httpd
 * headers there). The glue is split by concern, and calls run one way:
 * this file and the directive table call the feature files, every glue file
 * may call mod_auth_jwks_request.c, and that one calls only lib/ (`make lint`
 * fails on a call cycle between glue files):
 *   mod_auth_jwks.c         this file: finding and verifying the token, the
 *                           hooks, RFC 6750 answers, life cycle, the module
 *   mod_auth_jwks_config.c  configuration records, merge, every directive
 *   mod_auth_jwks_edge.c    where httpd's request life cycle meets the module:
 *                           claim-header stripping, ForwardToken Off on every
 *                           path, caches, startup checks of the config tree
 *   mod_auth_jwks_authz.c   Require jwt-claim / jwt-scope (and claim / scope)
 *   mod_auth_jwks_export.c  verified claims to the environment and headers
 *   mod_auth_jwks_dpop.c    DPoP, certificate-bound tokens, RFC 9728 metadata
 *   mod_auth_jwks_revoke.c  Token Status List and AuthJWKSRevoked
 *   mod_auth_jwks_status.c  SetHandler jwks-status
 *   mod_auth_jwks_metrics.c SetHandler jwks-metrics, server-status section
 *   mod_auth_jwks_socache.c the shared last-good copies in an httpd socache
 *   mod_auth_jwks_fetch.c   credentials and proxies of the key fetch
 *   mod_auth_jwks_request.c what the features share: request state, the
 *                           challenge, step-up notes, log items, directive errors
 *   mod_auth_jwks.h         configuration records, process-wide state, and
 *                           the entry points of each feature file
 */
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_uri.h>
#include <apr_lib.h>
#include <apr_file_info.h>
#include <apr_network_io.h>
#include <apr_hash.h>
#include <apr_date.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_provider.h"
#include "ap_mpm.h"
#include "mod_auth.h"

#include "ajw_types.h"
#include "ajw_log.h"
#include "ajw_b64.h"
#include "ajw_json.h"
#include "ajw_names.h"
#include "ajw_jwk.h"
#include "ajw_jws.h"
#include "ajw_claims.h"
#include "ajw_require.h"
#include "ajw_fetch.h"
#include "ajw_keystore.h"
#include "ajw_tcache.h"
#include "ajw_metrics.h"
#include "ajw_ratelog.h"
#include "ajw_refcache.h"
#include "ajw_clientlog.h"
#include "ajw_shared.h"
#include "ajw_discovery.h"
#include "ajw_secret.h"
#include "ajw_crypt.h"
#include "ajw_issuer.h"
#include "unixd.h"

#include "mod_auth_jwks.h"
#include "mod_auth_jwks_request.h"

ajw_mod_state_t ajw_mod;


/* ------------------------------------------------------------------ */
/* Request helpers                                                      */

/* Why a request was refused, for the log line and the client answer. */
typedef struct ajw_fail_t {
    ajw_error_t err;
    const char *kid, *alg, *iss;  /* from the (unverified) token, may be NULL */
    const ajw_source_t *src;      /* the key source that verified it (once verified) */
} ajw_fail_t;

/* This request's own state, made on first use. */
static ajw_req_t *own_state(request_rec *r)
{
    ajw_req_t *st = ap_get_module_config(r->request_config, &auth_jwks_module);
    if (!st) {
        st = apr_pcalloc(r->pool, sizeof(*st));
        ap_set_module_config(r->request_config, &auth_jwks_module, st);
    }
    return st;
}

/* AuthJWKSMaxAuthAge: checked once the token (and its proof) validated, so
 * that only a genuine token learns it must be fresher (RFC 9470 §9). */
static int auth_too_old(request_rec *r, const ajw_dir_conf *c, const ajw_val_t *claims,
                        const ajw_fail_t *f)
{
    const char *why;
    if (c->max_auth_age <= 0
        || ajw_claims_auth_time_ok(claims, c->max_auth_age, c->leeway,
                                   (long long)apr_time_sec(apr_time_now()), &why))
        return 0;
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "step-up required: %s (AuthJWKSMaxAuthAge %"
                  APR_INT64_T_FMT ", kid=%s iss=%s)", why, (apr_int64_t)c->max_auth_age,
                  ajw_mod_log_item(r->pool, f->kid),
                  ajw_mod_log_item(r->pool, f->iss));
    ajw_mod_note_step_up(r, "More recent authentication is required",
                         apr_psprintf(r->pool, "max_age=\"%" APR_INT64_T_FMT "\"",
                                      (apr_int64_t)c->max_auth_age));
    ap_note_auth_failure(r);
    return 1;
}

/* Fixed, client-safe wording per reason: the detail goes to the log only. */
static const char *reason_phrase(ajw_reason_e code)
{
    switch (code) {
    case AJW_R_MALFORMED:        return "The token is malformed";
    case AJW_R_TOO_LARGE:        return "The token is too large";
    case AJW_R_UNSUPPORTED:      return "The token uses an unsupported JOSE feature";
    case AJW_R_ALG_NOT_ALLOWED:  return "The token algorithm is not accepted";
    case AJW_R_BAD_TYPE:         return "The token type is not accepted";
    case AJW_R_NO_KEY:           return "No key matches the token";
    case AJW_R_BAD_SIGNATURE:    return "The token signature is invalid";
    case AJW_R_EXPIRED:          return "The token expired";
    case AJW_R_NOT_YET_VALID:    return "The token is not yet valid";
    case AJW_R_ISSUED_IN_FUTURE: return "The token was issued in the future";
    case AJW_R_TOO_OLD:          return "The token is too old";
    case AJW_R_BAD_ISSUER:       return "The token issuer is not accepted";
    case AJW_R_BAD_AUDIENCE:     return "The token audience is not accepted";
    case AJW_R_MISSING_CLAIM:    return "The token lacks a required claim";
    case AJW_R_BAD_CLAIM:        return "The token has an invalid claim";
    case AJW_R_REVOKED:          return "The token was revoked";
    default:                     return "The token is invalid";
    }
}

/* Turn a rejection into its log line and its HTTP answer. */
/* Server-side causes (no keys) repeat on every request of an outage: one
 * line per cause and URL per interval in each process, with a count of
 * what was held back. A client's bad tokens: its first few lines of each
 * interval in full, then counts in one summary line (AuthJWKSLogRefusals;
 * lib/ajw_clientlog.h), written before this line when it is due. */
static int refusal_logged(request_rec *r, ajw_reason_e code, unsigned long *held)
{
    const char *src = apr_table_get(r->notes, "ajw-src");
    *held = 0;
    if (code == AJW_R_INTERNAL)
        return 1;
    if (code != AJW_R_NO_KEYS && code != AJW_R_KEYS_STALE && code != AJW_R_STATUS_UNAVAILABLE)
        return ajw_mod_client_line(r, ajw_reason_name(code));
    return ajw_ratelog_allow(ajw_mod.ratelog, apr_pstrcat(r->pool, ajw_reason_name(code), " ",
                                                          src ? src : "-", NULL),
                             apr_time_now(), held);
}

static int refuse(request_rec *r, const ajw_fail_t *f)
{
    ajw_reason_e code = f->err.code;
    unsigned long held;
    ajw_metrics_refused((unsigned)code);
    if (refusal_logged(r, code, &held))
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r,
                      "token rejected: %s: %s (kid=%s alg=%s iss=%s)%s", ajw_reason_name(code),
                      ap_escape_logitem(r->pool, f->err.text), ajw_mod_log_item(r->pool, f->kid),
                      ajw_mod_log_item(r->pool, f->alg), ajw_mod_log_item(r->pool, f->iss),
                      held ? apr_psprintf(r->pool, " [%lu more like this since the last such "
                                          "line]", held) : "");
    if (code == AJW_R_NO_KEYS || code == AJW_R_KEYS_STALE || code == AJW_R_STATUS_UNAVAILABLE) {
        apr_table_setn(r->err_headers_out, "Retry-After", AJW_RETRY_AFTER);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    if (code == AJW_R_INTERNAL)
        return HTTP_INTERNAL_SERVER_ERROR;
    apr_table_setn(r->notes, "ajw-error", "invalid_token");
    apr_table_setn(r->notes, "ajw-desc", reason_phrase(code));
    ap_note_auth_failure(r);
    return HTTP_UNAUTHORIZED;
}

static int bad_request(request_rec *r, const char *why)
{
    ajw_metrics_refused(AJW_MR_BAD_REQUEST);
    if (ajw_mod_client_line(r, "invalid_request"))
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "bad bearer request: %s", why);
    ajw_mod_set_challenge(r, "invalid_request", why, NULL);
    return HTTP_BAD_REQUEST;
}

/* --- finding the token ------------------------------------------- */

/* b64token (RFC 6750 §2.1): 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
 * A table: every byte of every token passes through here. */
#define B64TOK_ALNUM(x) (((x) >= 'A' && (x) <= 'Z') || ((x) >= 'a' && (x) <= 'z') \
                         || ((x) >= '0' && (x) <= '9'))
#define B64TOK(x) (B64TOK_ALNUM(x) || (x) == '-' || (x) == '.' || (x) == '_' || (x) == '~' \
                   || (x) == '+' || (x) == '/')
#define B64TOK_ROW(h) B64TOK((h) + 0), B64TOK((h) + 1), B64TOK((h) + 2), B64TOK((h) + 3), \
    B64TOK((h) + 4), B64TOK((h) + 5), B64TOK((h) + 6), B64TOK((h) + 7), B64TOK((h) + 8), \
    B64TOK((h) + 9), B64TOK((h) + 10), B64TOK((h) + 11), B64TOK((h) + 12), B64TOK((h) + 13), \
    B64TOK((h) + 14), B64TOK((h) + 15)
static const unsigned char b64token_table[256] = {
    B64TOK_ROW(0), B64TOK_ROW(16), B64TOK_ROW(32), B64TOK_ROW(48),
    B64TOK_ROW(64), B64TOK_ROW(80), B64TOK_ROW(96), B64TOK_ROW(112)
    /* bytes 128..255: 0 */
};

static int is_b64token(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i + 4 <= len && (b64token_table[u[i]] & b64token_table[u[i + 1]]
                            & b64token_table[u[i + 2]] & b64token_table[u[i + 3]]))
        i += 4;
    while (i < len && b64token_table[u[i]])
        i++;
    if (i == 0)
        return 0;
    while (i < len && s[i] == '=')
        i++;
    return i == len;
}

typedef struct token_find_t {
    const char *token;
    size_t len;
    int count;                  /* places a token was found */
    const char *bad;            /* why the request is malformed, or NULL */
    const char *unchecked;      /* a header token's characters are not checked yet: what
                                 * the request is if they are not a b64token, else NULL */
    int dpop;                   /* Authorization: DPoP (AuthJWKSDPoP allow|require) */
    const char *where;          /* header (NULL: Authorization), cookie or query parameter */
    ajw_from_kind_e kind;
} token_find_t;

/* The token text at tok (blanks already skipped) of a header source. */
static void header_token(token_find_t *tf, const char *tok, const char *where)
{
    size_t len = strlen(tok);
    while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
        len--;
    tf->count++;
    tf->where = where;
    if (len == 0)
        tf->bad = "empty bearer token";
    else                        /* checked by token_charset_ok, unless the cache knows it */
        tf->unchecked = where ? "malformed token header (several tokens or stray characters)"
                              : "malformed Authorization header (several tokens or stray "
                                "characters)";
    tf->token = tok;
    tf->len = len;
}

/* Does v start with the auth scheme s, then a blank or the end? */
static int has_scheme(const char *v, const char *s, size_t n)
{
    return !strncasecmp(v, s, n) && (v[n] == ' ' || v[n] == '\t' || v[n] == '\0');
}

static const char *skip_blanks(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    return v;
}

/* Authorization: Bearer <b64token>. Other schemes are not ours: no token.
 * httpd joins repeated headers with ", ", which fails the b64token check. */
static void from_header(request_rec *r, token_find_t *tf, int dpop)
{
    const char *v = apr_table_get(r->headers_in, "Authorization");
    if (!v)
        return;
    v = skip_blanks(v);
    if (dpop && has_scheme(v, "DPoP", 4))
        tf->dpop = 1;             /* RFC 9449 §7.1: same b64token syntax, 4-letter scheme */
    else if (!has_scheme(v, "Bearer", 6))
        return;
    header_token(tf, skip_blanks(v + (tf->dpop ? 4 : 6)), NULL);
}

static int count_entry(void *baton, const char *key, const char *val)
{
    (void)key;
    (void)val;
    (*(int *)baton)++;
    return 1;
}

/* AuthJWKSTokenFrom header=<Name>[:<scheme>]: the whole value, or what
 * follows the scheme (another scheme is not ours: no token). A header
 * present more than once is a token given twice, whatever its values. */
static void from_named_header(request_rec *r, token_find_t *tf, const ajw_from_t *f)
{
    const char *v = apr_table_get(r->headers_in, f->name);
    int n = 0;
    if (!v)
        return;
    apr_table_do(count_entry, &n, r->headers_in, f->name, NULL);
    v = skip_blanks(v);
    if (f->scheme) {
        size_t sl = strlen(f->scheme);
        if (!has_scheme(v, f->scheme, sl))
            return;
        v = skip_blanks(v + sl);
    }
    header_token(tf, v, f->name);
    if (n > 1)
        tf->count = tf->count + n - 1;
}

typedef struct cookie_scan_t {
    const char *name;
    token_find_t *tf;
    apr_pool_t *p;
} cookie_scan_t;

static int scan_cookie_header(void *baton, const char *key, const char *val)
{
    cookie_scan_t *cs = baton;
    size_t nlen = strlen(cs->name);
    (void)key;
    while (val && *val) {
        const char *end = strchr(val, ';');
        size_t plen = end ? (size_t)(end - val) : strlen(val);
        while (plen && (*val == ' ' || *val == '\t')) {
            val++;
            plen--;
        }
        if (plen > nlen && val[nlen] == '=' && memcmp(val, cs->name, nlen) == 0) {
            const char *v = val + nlen + 1;
            size_t vlen = plen - nlen - 1;
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            cs->tf->count++;
            cs->tf->token = apr_pstrmemdup(cs->p, v, vlen);
            cs->tf->len = vlen;
            cs->tf->where = cs->name;
            if (vlen == 0)
                cs->tf->bad = "empty token in cookie";
            else if (!is_b64token(v, vlen))
                cs->tf->bad = "malformed token in cookie";
        }
        val = end ? end + 1 : NULL;
    }
    return 1;
}

static void from_cookie(request_rec *r, const char *name, token_find_t *tf)
{
    cookie_scan_t cs = { name, tf, r->pool };
    apr_table_do(scan_cookie_header, &cs, r->headers_in, "Cookie", NULL);
}

static void from_query(request_rec *r, const char *name, token_find_t *tf)
{
    const char *s = r->args;
    size_t nlen = strlen(name);
    while (s && *s) {
        const char *end = strchr(s, '&');
        size_t plen = end ? (size_t)(end - s) : strlen(s);
        if (plen > nlen && s[nlen] == '=' && memcmp(s, name, nlen) == 0) {
            /* A JWS needs no escapes: anything but b64token is malformed, and
             * not decoding means a %00 can never cut the token short. */
            tf->count++;
            tf->token = apr_pstrmemdup(r->pool, s + nlen + 1, plen - nlen - 1);
            tf->len = plen - nlen - 1;
            tf->where = name;
            if (!is_b64token(tf->token, tf->len))
                tf->bad = "malformed token in query";
        }
        else if (plen == nlen && memcmp(s, name, nlen) == 0) {
            tf->count++;
            tf->bad = "empty token in query";
        }
        s = end ? end + 1 : NULL;
    }
}

static void find_token(request_rec *r, const ajw_dir_conf *c, token_find_t *tf)
{
    int i;
    memset(tf, 0, sizeof(*tf));
    if (c->from->nelts == 0) {
        from_header(r, tf, c->dpop != AJW_DPOP_OFF);
    }
    for (i = 0; i < c->from->nelts; i++) {
        const ajw_from_t *f = &APR_ARRAY_IDX(c->from, i, ajw_from_t);
        int before = tf->count;
        if (f->kind == TOKEN_FROM_HEADER && !f->name)
            from_header(r, tf, c->dpop != AJW_DPOP_OFF);
        else if (f->kind == TOKEN_FROM_HEADER)
            from_named_header(r, tf, f);
        else if (f->kind == TOKEN_FROM_COOKIE)
            from_cookie(r, f->name, tf);
        else
            from_query(r, f->name, tf);
        if (tf->count > before)
            tf->kind = f->kind;
    }
    if (tf->count > 1)
        tf->bad = "token given more than once";
}

/* --- verifying ---------------------------------------------------- */

/* c's audiences, with AuthJWKSAudience resource made the resource of the
 * section's metadata (compared exactly, like any audience). Without
 * metadata (the startup check refuses that) it matches nothing. */
static apr_array_header_t *audiences_of(request_rec *r, const ajw_dir_conf *c)
{
    apr_array_header_t *out;
    int i, has = 0;
    for (i = 0; i < c->audiences->nelts; i++)
        has |= APR_ARRAY_IDX(c->audiences, i, const char *) == ajw_aud_resource;
    if (!has)
        return c->audiences;
    out = apr_array_copy(r->pool, c->audiences);
    for (i = 0; i < out->nelts; i++)
        if (APR_ARRAY_IDX(out, i, const char *) == ajw_aud_resource)
            APR_ARRAY_IDX(out, i, const char *) = ajw_dpop_prm_resource(c);
    return out;
}

/* The policy of c for lib/. Arrays are shared with the config (read-only). */
static void build_policy(request_rec *r, const ajw_dir_conf *c, ajw_policy_t *pol)
{
    int i;
    ajw_policy_init(pol);
    pol->algs = c->algs;
    pol->max_token_len = c->max_token_len;
    pol->leeway = c->leeway;
    pol->typ = c->typ;
    pol->max_age = c->max_age;
    pol->audiences = audiences_of(r, c);
    pol->required = c->required;
    /* Templates add no literal: pick_sources adds the one issuer a template
     * stands for in a given token. A NULL entry keeps the list non-empty
     * (never "any issuer") and matches nothing. */
    if (c->issuers->nelts) {
        pol->issuers = apr_array_make(r->pool, c->issuers->nelts + 1, sizeof(const char *));
        for (i = 0; i < c->issuers->nelts; i++) {
            const ajw_issuer_t *is = &APR_ARRAY_IDX(c->issuers, i, ajw_issuer_t);
            APR_ARRAY_PUSH(pol->issuers, const char *) = is->tpl ? NULL : is->iss;
        }
    }
}

/* Does iss (unverified) name c's issuer `is`? A template matches only the
 * issuer it makes with the token's own tid; *tid_why says why none when the
 * token has no usable tid. */
static int issuer_matches(const ajw_issuer_t *is, const char *iss, const ajw_val_t *claims,
                          const char **tid_why)
{
    const char *tid;
    if (!is->tpl)
        return !strcmp(is->iss, iss);
    if (!(tid = ajw_tenant_of(claims, tid_why)))
        return 0;
    return ajw_issuer_template_match(is->tpl, iss, strlen(iss), tid);
}

/* AuthJWKSTenant: the token's tid must be listed. */
static ajw_reason_e tenant_allowed(const ajw_dir_conf *c, const ajw_val_t *claims,
                                   ajw_error_t *err)
{
    const char *why, *tid;
    int i;
    if (!c->tenants->nelts)
        return AJW_OK;
    if (!(tid = ajw_tenant_of(claims, &why)))
        return ajw_error_set(err, AJW_R_BAD_ISSUER, "%s (AuthJWKSTenant is set)", why);
    for (i = 0; i < c->tenants->nelts; i++)
        if (!strcmp(APR_ARRAY_IDX(c->tenants, i, const char *), tid))
            return AJW_OK;
    return ajw_error_set(err, AJW_R_BAD_ISSUER, "tenant %s is not an accepted tenant", tid);
}

/* The key sources allowed to sign a token that claims `iss` under c. With
 * AuthJWKSIssuer, iss must be listed (exact match), or be what a template
 * makes with the token's tid (then that iss joins pol's issuers); an issuer
 * bound to a URL is verified with that URL's keys only, an unbound one with
 * every AuthJWKSURL of the location. The iss and tid are unverified here:
 * they only choose whose keys to try, and the signature then proves them. */
static ajw_reason_e pick_sources(request_rec *r, const ajw_dir_conf *c, const char *iss,
                                 const ajw_val_t *claims, ajw_policy_t *pol,
                                 apr_array_header_t **out, ajw_error_t *err)
{
    apr_array_header_t *srcs = apr_array_make(r->pool, 2, sizeof(ajw_source_t *));
    const ajw_issuer_t *match = NULL;
    const char *tid_why = NULL;
    ajw_reason_e rc;
    int i;
    *out = srcs;
    if ((rc = tenant_allowed(c, claims, err)) != AJW_OK)
        return rc;
    for (i = 0; iss && i < c->issuers->nelts && !match; i++) {
        if (issuer_matches(&APR_ARRAY_IDX(c->issuers, i, ajw_issuer_t), iss, claims, &tid_why))
            match = &APR_ARRAY_IDX(c->issuers, i, ajw_issuer_t);
    }
    if (c->issuers->nelts && !match)
        return ajw_error_set(err, AJW_R_BAD_ISSUER, "%s", !iss ? "iss claim absent"
                             : tid_why ? apr_pstrcat(r->pool, "iss is not an accepted issuer "
                                                     "(issuer template: ", tid_why, ")", NULL)
                             : "iss is not an accepted issuer");
    if (match && match->tpl && pol->issuers)
        APR_ARRAY_PUSH(pol->issuers, const char *) = iss;
    if (match && match->bound) {
        if (!match->bound->src)
            return ajw_error_set(err, AJW_R_INTERNAL, "key source not initialised");
        APR_ARRAY_PUSH(srcs, ajw_source_t *) = match->bound->src;
        return AJW_OK;
    }
    for (i = 0; i < c->urls->nelts; i++) {
        ajw_source_t *src = APR_ARRAY_IDX(c->urls, i, ajw_url_t *)->src;
        if (!src)
            return ajw_error_set(err, AJW_R_INTERNAL, "key source not initialised");
        APR_ARRAY_PUSH(srcs, ajw_source_t *) = src;
    }
    if (srcs->nelts == 0)
        return ajw_error_set(err, AJW_R_INTERNAL, "no AuthJWKSURL configured for this "
                             "location or issuer");
    return AJW_OK;
}

/* Is a cached verification still good here: made with keys of a source this
 * location trusts for that issuer (iss: the entry's), and of the source's
 * current key set? */
static int cache_entry_usable(request_rec *r, const ajw_dir_conf *c,
                              const ajw_tcache_entry_t *hit, const char *iss, ajw_policy_t *pol)
{
    apr_array_header_t *srcs;
    ajw_error_t err;
    int i;
    if (pick_sources(r, c, iss, hit->claims, pol, &srcs, &err) != AJW_OK)
        return 0;
    for (i = 0; i < srcs->nelts; i++) {
        ajw_source_t *src = APR_ARRAY_IDX(srcs, i, ajw_source_t *);
        if ((const void *)src == hit->source) {
            ajw_keyhold_t *h = ajw_source_acquire(src, 0);
            int same = h && h->generation == hit->generation;
            if (h)
                ajw_source_release(h);
            return same;
        }
    }
    return 0;
}

/* One pass over the sources: verify with each one's current keys, one at a
 * time so that we know which one vouched. gens[i] gets the generation seen
 * for source i (0: none held); unloaded and stale count the sources without
 * usable keys and first_bad names the first. Holds are released here. */
typedef struct sig_pass_t {
    int loaded, unloaded, stale;
    ajw_source_t *first_bad;
    unsigned long long *gens;
} sig_pass_t;

static ajw_reason_e verify_pass(const ajw_jws_t *t, apr_array_header_t *srcs,
                                apr_interval_time_t wait, ajw_tcache_entry_t *ent,
                                sig_pass_t *sp, ajw_error_t *err)
{
    ajw_reason_e rc = AJW_R_NO_KEY, one;
    ajw_error_t e1;
    int i;
    sp->loaded = sp->unloaded = sp->stale = 0;
    sp->first_bad = NULL;
    for (i = 0; i < srcs->nelts && rc != AJW_OK; i++) {
        ajw_source_t *src = APR_ARRAY_IDX(srcs, i, ajw_source_t *);
        ajw_keys_state_e state;
        ajw_keyhold_t *h = ajw_source_acquire_ex(src, wait, &state);
        const ajw_keyset_t *set;
        sp->gens[i] = 0;
        if (!h) {
            if (!sp->first_bad)
                sp->first_bad = src;
            sp->unloaded += state != AJW_KEYS_STALE;
            sp->stale += state == AJW_KEYS_STALE;
            wait = 0;                 /* spent once per request, not per source */
            continue;
        }
        sp->loaded++;
        sp->gens[i] = h->generation;
        set = h->set;
        one = ajw_jws_verify(t, &set, 1, NULL, &e1);
        if (one == AJW_OK || one == AJW_R_BAD_SIGNATURE) {   /* the refusal cache's too */
            ent->source = src;
            ent->generation = h->generation;
        }
        ajw_source_release(h);
        if (one == AJW_OK || one == AJW_R_BAD_SIGNATURE || one == AJW_R_INTERNAL) {
            rc = one;
            *err = e1;
        }
    }
    return rc;
}

/* A kid no held key set knows: the IdP may have just rotated. Ask each
 * source for a refresh and wait (up to AuthJWKSRotationWait, shared by all
 * sources) for the one that serves it; 1 when any source published newer
 * keys. Rate-limited by the key store, which lets only the request whose
 * kick started a fetch and the first few after it wait: a flood of random
 * kids neither fetches nor parks workers, even while a fetch hangs. */
static int rotation_refreshed(const ajw_dir_conf *c, apr_array_header_t *srcs,
                              const sig_pass_t *sp)
{
    apr_time_t deadline = apr_time_now() + c->rotation_wait;
    int i, newer = 0;
    for (i = 0; i < srcs->nelts; i++) {
        ajw_source_t *src = APR_ARRAY_IDX(srcs, i, ajw_source_t *);
        apr_interval_time_t left = deadline - apr_time_now();
        if (!sp->gens[i] || c->rotation_wait <= 0) {
            ajw_source_kick(src);
            continue;
        }
        newer |= ajw_source_refresh_wait(src, sp->gens[i], left > 0 ? left : 0)
                 == AJW_REFRESH_NEWER;
    }
    return newer;
}

/* Verify the signature against the sources. A kid unknown to every loaded
 * set waits for the refresh it triggers (seamless rotation) and is tried
 * once more; sources with no usable keys make it a 503, never a 401. */
static ajw_reason_e verify_signature(request_rec *r, const ajw_dir_conf *c, const ajw_jws_t *t,
                                     apr_array_header_t *srcs, ajw_tcache_entry_t *ent,
                                     ajw_error_t *err)
{
    ajw_reason_e rc;
    sig_pass_t sp;
    sp.gens = apr_pcalloc(r->pool, sizeof(*sp.gens) * (size_t)srcs->nelts);
    ajw_error_set(err, AJW_R_NO_KEY, "no key with kid=%s fits alg %s",
                  t->kid ? ajw_mod_log_item(r->pool, t->kid) : "(none)", ajw_alg_name(t->alg));
    rc = verify_pass(t, srcs, c->startup_wait, ent, &sp, err);
    if (rc == AJW_R_NO_KEY && rotation_refreshed(c, srcs, &sp)) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "kid=%s: verifying again with keys "
                      "refreshed for it", t->kid ? ajw_mod_log_item(r->pool, t->kid) : "(none)");
        rc = verify_pass(t, srcs, 0, ent, &sp, err);
    }
    if (rc == AJW_R_NO_KEY && sp.first_bad) {
        ajw_source_status_t st;
        const char *url = ajw_source_url(sp.first_bad);
        ajw_source_get_status(sp.first_bad, &st);
        apr_table_setn(r->notes, "ajw-src", url);
        if (sp.unloaded)
            rc = ajw_error_set(err, AJW_R_NO_KEYS, "keys from %d of %d JWKS URL(s) never "
                               "loaded; %s: %s", sp.unloaded + sp.stale,
                               sp.loaded + sp.unloaded + sp.stale, url,
                               st.last_error[0] ? st.last_error : "no answer yet");
        else
            rc = ajw_error_set(err, AJW_R_KEYS_STALE, "keys of %s are stale: last successful "
                               "fetch %" APR_TIME_T_FMT " s ago, more than AuthJWKSMaxStale; %s",
                               url, st.fetched ? apr_time_sec(apr_time_now() - st.fetched)
                                               : (apr_time_t)-1,
                               st.last_error[0] ? st.last_error : "refresh failing");
    }
    return rc;
}

/* Fold src into *one: 0 when that makes two sources (or src is not set up). */
static int one_source(ajw_source_t **one, ajw_source_t *src)
{
    if (!src || (*one && *one != src))
        return 0;
    *one = src;
    return 1;
}

/* The one key source c verifies every token with, whatever its iss (what
 * pick_sources can choose); NULL when there can be several (an issuer
 * bound to another URL, two URLs). */
static ajw_source_t *sole_source(const ajw_dir_conf *c)
{
    ajw_source_t *one = NULL;
    int i, unbound = !c->issuers->nelts;
    for (i = 0; i < c->issuers->nelts; i++) {
        const ajw_issuer_t *is = &APR_ARRAY_IDX(c->issuers, i, ajw_issuer_t);
        if (!is->bound)
            unbound = 1;
        else if (!one_source(&one, is->bound->src))
            return NULL;
    }
    if (unbound && !c->urls->nelts)
        return NULL;
    for (i = 0; unbound && i < c->urls->nelts; i++)
        if (!one_source(&one, APR_ARRAY_IDX(c->urls, i, ajw_url_t *)->src))
            return NULL;
    return one;
}

/* A bad signature this process found for this exact token (key) with the
 * keys c verifies with now: refused again with no parse and no signature
 * check. Only where c has one source for every token: with several, which
 * keys a token meets depends on its iss, and such a location pays a full
 * check each time. A bad signature cannot change while the source holds the
 * same key set generation. The header and claims are not checked again,
 * so where a full check would have stopped earlier at a rule of this
 * location (alg, typ, iss, aud, max age, a leeway smaller than another
 * location's), the answer is bad_signature instead: a refusal either way,
 * never an accept. Never "expired": an entry ends at the token's exp. */
static int refusal_cached(request_rec *r, const ajw_dir_conf *c, ajw_tcache_key_t *key,
                          long long now, ajw_fail_t *f)
{
    ajw_source_t *src;
    ajw_keyhold_t *h;
    ajw_refusal_t rf;
    int same;
    if (!ajw_mod.refcache || !(src = sole_source(c))
        || !ajw_refcache_get(ajw_mod.refcache, ajw_tcache_key_digest(key), now, &rf)
        || rf.source != src)
        return 0;
    h = ajw_source_acquire(src, 0);
    same = h && h->generation == rf.generation;
    if (h)
        ajw_source_release(h);
    if (!same)
        return 0;
    f->kid = rf.has_kid ? apr_pstrdup(r->pool, rf.kid) : NULL;
    f->alg = rf.has_alg ? apr_pstrdup(r->pool, rf.alg) : NULL;
    f->iss = rf.has_iss ? apr_pstrdup(r->pool, rf.iss) : NULL;
    ajw_error_set(&f->err, (ajw_reason_e)rf.code, "%s", rf.text);
    if (APLOGrdebug(r))
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "refusal cache: the signature of this token "
                      "was found bad before with the same keys (kid=%s)",
                      ajw_mod_log_item(r->pool, f->kid));
    return 1;
}

/* Remember the bad signature of t (one source tried: ent names it), until
 * the token's exp and for 300 s at most. */
static void refusal_remember(ajw_tcache_key_t *key, const ajw_val_t *claims,
                             const ajw_tcache_entry_t *ent, const ajw_fail_t *f, long long now)
{
    ajw_refusal_t rf;
    long long exp;
    if (ajw_claims_numeric_date(claims, "exp", &exp) != 1 || exp > now + 300)
        exp = now + 300;
    ajw_refusal_fill(&rf, ent->source, ent->generation, f->err.code, f->err.text, f->alg,
                     f->kid, f->iss);
    ajw_refcache_put(ajw_mod.refcache, ajw_tcache_key_digest(key), exp, &rf);
}

/* Verify tok under c: token cache first, then the full path. On success
 * the claims and header live as long as r->pool; they may be shared with the
 * token cache and other requests, so they are read only. Claims are checked
 * before the signature: an expired or misaddressed token costs no signature
 * check and no key refresh (it is refused all the same, with its reason). */
/* The token cache's key of tok and, on a hit, the held entry (released
 * with r->pool); 0 when tok cannot be cached (no cache, too long). */
typedef struct lookup_t {
    int keyed;
    ajw_tcache_key_t key;
    const ajw_tcache_entry_t *held;
} lookup_t;

static void cache_lookup(request_rec *r, const ajw_dir_conf *c, const char *tok, size_t len,
                         long long now, lookup_t *lk)
{
    lk->held = NULL;
    lk->keyed = ajw_mod.tcache && len <= c->max_token_len
                && ajw_tcache_key(&lk->key, tok, len) == 0;
    if (lk->keyed && ajw_tcache_get(ajw_mod.tcache, &lk->key, now, &lk->held))
        ajw_tcache_release_with(lk->held, r->pool);
}

static ajw_reason_e verify(request_rec *r, const ajw_dir_conf *c, const char *tok, size_t len,
                           lookup_t *lk, long long now, const ajw_val_t **claims,
                           const char **render, size_t *render_len, ajw_fail_t *f)
{
    ajw_policy_t pol;
    ajw_tcache_entry_t ent;
    const ajw_tcache_entry_t *held = lk->held;
    ajw_tcache_key_t *key = &lk->key;
    ajw_jws_t *t = NULL;
    const ajw_val_t *doc;
    apr_array_header_t *srcs;
    ajw_reason_e rc;
    long long exp;
    int keyed = lk->keyed;

    build_policy(r, c, &pol);
    if (held) {
        f->kid = held->kid;
        f->alg = ajw_alg_name(held->alg);
        f->iss = ajw_val_get_string(held->claims, "iss", NULL);
        f->src = held->source;
        if (cache_entry_usable(r, c, held, f->iss, &pol)) {
            ajw_metrics_cache(1);
            rc = ajw_jws_check_cached(held->alg, held->typ, &pol, &f->err);
            if (rc == AJW_OK)
                rc = ajw_claims_check(held->claims, &pol, now, &f->err);
            *claims = held->claims;
            *render = held->render;
            *render_len = held->render_len;
            return rc;
        }
    }

    ajw_metrics_cache(0);
    if (keyed && refusal_cached(r, c, key, now, f))
        return f->err.code;
    /* The claims are parsed straight into a flat document (ajw_doc.h),
     * which every reader reads and the token cache keeps as it is. */
    rc = ajw_jws_parse_ex(&t, tok, len, &pol, AJW_JWS_DOC_ALL, r->pool, &f->err);
    if (rc != AJW_OK)
        return rc;
    f->kid = t->kid;
    f->alg = t->alg_name;
    f->iss = t->iss;
    memset(&ent, 0, sizeof(ent));
    doc = t->doc;
    ent.claims_size = t->doc_size;
    if ((rc = pick_sources(r, c, t->iss, doc, &pol, &srcs, &f->err)) != AJW_OK)
        return rc;
    if ((rc = ajw_claims_check(doc, &pol, now, &f->err)) != AJW_OK)
        return rc;
    if ((rc = verify_signature(r, c, t, srcs, &ent, &f->err)) != AJW_OK) {
        if (rc == AJW_R_BAD_SIGNATURE && keyed && srcs->nelts == 1 && ent.source)
            refusal_remember(key, doc, &ent, f, now);
        return rc;
    }
    f->src = ent.source;

    *claims = doc;
    *render = NULL;
    *render_len = 0;
    if (!keyed)
        return AJW_OK;
    /* The shared entry copies the document, the rendering and the token
     * into one block; the request then reads the entry's copies. */
    ent.claims = doc;
    ent.kid = t->kid;
    ent.typ = t->typ;
    ent.alg = t->alg;
    ent.render = ajw_export_render(r, c, doc, (const char *)t->payload, t->payload_len,
                                   t->alg_name, t->kid, &ent.render_len);
    ent.token = tok;
    ent.token_len = len;
    if (!(held = ajw_tcache_adopt(&ent)))
        return AJW_OK;
    ajw_tcache_release_with(held, r->pool);
    *claims = held->claims;
    *render = held->render;
    *render_len = held->render_len;
    if (ajw_claims_numeric_date(doc, "exp", &exp) != 1)
        exp = now + 300;
    ajw_tcache_put(ajw_mod.tcache, key, exp + pol.leeway, held);
    return AJW_OK;
}

/* Does user (n bytes) hold '@' followed by an issuer this section accepts,
 * the token's own, or any http(s) URL (sections that accept any issuer)? Then "<user>@<iss>" could be read as another issuer's
 * user by whoever splits at the first '@'. */
static int user_names_issuer(const ajw_dir_conf *c, const char *user, size_t n, const char *iss)
{
    int i;
    if (ajw_user_names_url(user, n) || ajw_user_names_issuer(user, n, iss))
        return 1;
    for (i = 0; i < c->issuers->nelts; i++)
        if (ajw_user_names_issuer(user, n, APR_ARRAY_IDX(c->issuers, i, ajw_issuer_t).iss))
            return 1;
    return 0;
}

/* r->user from the user claim: a string, or a number as JSON text; with
 * AuthJWKSUserClaim <claim>@iss, "<value>@<iss>", since a subject is unique
 * only within its issuer. A string unfit for REMOTE_USER (ajw_names) is
 * refused, not cleaned; with @iss, so is an iss holding '@' (the last '@'
 * then always splits user from issuer) and a user naming an issuer after
 * an '@'. Returns NULL with f->err set when there is no usable user. */
static const char *user_of(request_rec *r, const ajw_dir_conf *c, const ajw_val_t *claims,
                           ajw_fail_t *f)
{
    size_t clen = strlen(c->user_claim), slen = strlen(AJW_USER_AT_ISS);
    int at_iss = clen > slen && !strcmp(c->user_claim + clen - slen, AJW_USER_AT_ISS);
    const char *name = apr_pstrmemdup(r->pool, c->user_claim, at_iss ? clen - slen : clen);
    const ajw_val_t *v = ajw_val_get(claims, name);
    char num[AJW_NUMBER_TEXT_MAX], why[AJW_USER_WHY_MAX];
    const char *u, *iss, *bad;
    size_t ulen;

    if (!v || !(ajw_val_is_string(v) || ajw_val_is_number(v))) {
        ajw_error_set(&f->err, AJW_R_MISSING_CLAIM, "user claim %s absent or not a string or "
                      "number", ajw_mod_log_item(r->pool, name));
        return NULL;
    }
    if (ajw_val_is_string(v)) {
        u = ajw_val_str(v);
        ulen = ajw_val_strlen(v);
    }
    else {
        ulen = ajw_val_number_text(v, num);
        u = num;
    }
    if ((bad = ajw_user_text_problem(u, ulen, why))) {
        ajw_error_set(&f->err, AJW_R_BAD_CLAIM, "user claim %s %s",
                      ajw_mod_log_item(r->pool, name), bad);
        return NULL;
    }
    if (!at_iss)
        return apr_pstrmemdup(r->pool, u, ulen);
    iss = ajw_val_get_string(claims, "iss", NULL);
    if (!iss || ajw_user_text_problem(iss, strlen(iss), why) || strchr(iss, '@')) {
        ajw_error_set(&f->err, AJW_R_BAD_CLAIM, "user claim %s: no iss fit to qualify it (a "
                      "string without '@' or control characters)", c->user_claim);
        return NULL;
    }
    if (user_names_issuer(c, u, ulen, iss)) {
        ajw_error_set(&f->err, AJW_R_BAD_CLAIM, "user claim %s names an issuer after an '@'",
                      ajw_mod_log_item(r->pool, name));
        return NULL;
    }
    u = apr_pstrcat(r->pool, apr_pstrmemdup(r->pool, u, ulen), "@", iss, NULL);
    if (strlen(u) > 2048) {
        ajw_error_set(&f->err, AJW_R_BAD_CLAIM, "user claim %s with its iss is over 2048 bytes",
                      c->user_claim);
        return NULL;
    }
    return u;
}

/* ------------------------------------------------------------------ */
/* Hooks                                                                */

/* As soon as the request is read, before translate_name, <If>, SetEnvIf
 * or any other module: on a virtual host with jwks sections, client
 * headers that could pose as verified claims are removed. */
static int post_read_request(request_rec *r)
{
    ajw_srv_conf *sc = ap_get_module_config(r->server->module_config, &auth_jwks_module);
    if (sc->strip_prefixes && sc->strip != 0) {
        ajw_req_t *st;
        ajw_edge_strip_claim_headers(r, sc->strip_prefixes, sc->strip_names);
        st = own_state(r);
        st->strip_fp = ajw_edge_headers_fp(r->headers_in);
        st->strip_by = sc;
    }
    return DECLINED;
}

/* The section's strip of client claim headers, done once per request: a
 * pass is skipped when headers_in has not changed since the last one and
 * that one covered the section's names (the server's pass covers every
 * section of the vhost unless .htaccess adds names). Header_parser strips
 * for the section, check_authn again only if something changed the
 * headers in between (another module may have added one). */
static void strip_section(request_rec *r, const ajw_dir_conf *c)
{
    ajw_req_t *st = ap_get_module_config(r->request_config, &auth_jwks_module);
    if (st && st->strip_by && st->strip_fp == ajw_edge_headers_fp(r->headers_in)) {
        if (st->strip_by == (const void *)c)
            return;
        if (st->strip_by == ap_get_module_config(r->server->module_config, &auth_jwks_module)
            && ajw_edge_section_covered(st->strip_by, c)) {
            st->strip_by = c;         /* covered: the next check is a compare */
            return;
        }
    }
    ajw_edge_strip_section(r, c);
    st = own_state(r);
    st->strip_fp = ajw_edge_headers_fp(r->headers_in);
    st->strip_by = c;
}

/* Per section (its own header prefix); also on internal redirects, whose
 * headers_in is the original's: fixups exports the verified claims again.
 * With AuthJWKSForwardToken Off the token leaves the request here, as soon
 * as the section is known: an access check (`Require ip` in a RequireAll)
 * may refuse before authentication runs, and the access log's %r must not
 * show a query token then. check_authn takes it from the request state. */
static int header_parser(request_rec *r)
{
    ajw_dir_conf *c;
    token_find_t tf;
    if (!ajw_mod_is_ours(r))
        return DECLINED;
    c = ajw_mod_dir_conf(r);
    strip_section(r, c);
    if (c->forward_token)
        return DECLINED;
    find_token(r, c, &tf);
    if (tf.count) {
        ajw_req_t *st = own_state(r);
        st->early = apr_pmemdup(r->pool, &tf, sizeof(tf));
        st->token_dpop = tf.dpop;     /* the challenge's scheme, once the header is gone */
    }
    ajw_edge_scrub_token(r, c);
    return DECLINED;
}

/* May c take a token from where it came? */
static int source_allowed(const ajw_dir_conf *c, ajw_from_kind_e kind, const char *where)
{
    int i;
    if (c->from->nelts == 0)
        return kind == TOKEN_FROM_HEADER && !where;
    for (i = 0; i < c->from->nelts; i++) {
        const ajw_from_t *f = &APR_ARRAY_IDX(c->from, i, ajw_from_t);
        if (f->kind != kind)
            continue;
        if (kind == TOKEN_FROM_HEADER ? (!f->name && !where)
                                        || (f->name && where && !strcasecmp(f->name, where))
                                      : !strcmp(f->name, where))
            return 1;
    }
    return 0;
}

/* The token a request before r presented (internal redirect, subrequest):
 * AuthJWKSForwardToken Off took it out of the headers or URL they share. */
static void token_from_chain(request_rec *r, const ajw_dir_conf *c, token_find_t *tf)
{
    request_rec *q;
    for (q = ajw_mod_came_from(r); q; q = ajw_mod_came_from(q)) {
        const ajw_req_t *st = ap_get_module_config(q->request_config, &auth_jwks_module);
        if (st && st->token) {
            if (!source_allowed(c, st->token_kind, st->token_where))
                return;
            tf->token = st->token;
            tf->len = st->token_len;
            tf->kind = st->token_kind;
            tf->where = st->token_where;
            tf->dpop = st->token_dpop;
            tf->count = 1;
            return;
        }
    }
}

static int authenticate(request_rec *r)
{
    ajw_dir_conf *c;
    token_find_t tf;
    ajw_fail_t f;
    const ajw_val_t *claims = NULL;
    const char *render = NULL;
    size_t render_len = 0;
    lookup_t lk;
    long long now;
    ajw_req_t *st;
    const char *user;
    int rc;

    if (!ajw_mod_is_ours(r))
        return DECLINED;
    c = ajw_mod_dir_conf(r);
    strip_section(r, c);              /* again if other modules changed the headers */
    st = ap_get_module_config(r->request_config, &auth_jwks_module);
    if (st && st->early)              /* taken out by header_parser: what the client sent */
        tf = *st->early;
    else
        find_token(r, c, &tf);
    if (tf.count == 0)
        token_from_chain(r, c, &tf);
    if (!c->forward_token)            /* whatever the outcome: a refused token is a real one */
        ajw_edge_scrub_token(r, c);
    if (tf.bad)
        return bad_request(r, tf.bad);
    if (tf.count == 0) {
        ajw_metrics_refused(AJW_MR_NO_TOKEN);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "no bearer token in request");
        ap_note_auth_failure(r);
        return HTTP_UNAUTHORIZED;
    }
    /* A cached token is byte for byte one that passed every check, its
     * characters too: only a token the cache does not know is scanned. */
    now = (long long)apr_time_sec(apr_time_now());
    cache_lookup(r, c, tf.token, tf.len, now, &lk);
    if (tf.unchecked && !lk.held && !is_b64token(tf.token, tf.len))
        return bad_request(r, tf.unchecked);
    st = own_state(r);
    st->token = tf.token;
    st->token_len = tf.len;
    st->token_kind = tf.kind;
    st->token_where = tf.where;
    st->token_dpop = tf.dpop;

    memset(&f, 0, sizeof(f));
    if (verify(r, c, tf.token, tf.len, &lk, now, &claims, &render, &render_len, &f) != AJW_OK)
        return refuse(r, &f);
    /* Cached or not: a revocation since it was cached applies. */
    if (ajw_revoke_check(r, c, claims, f.kid, f.src, &f.err) != AJW_OK)
        return refuse(r, &f);
    if (!(user = user_of(r, c, claims, &f)))
        return refuse(r, &f);

    if ((rc = ajw_dpop_check_request(r, c, tf.dpop, tf.token, tf.len, claims)) != OK)
        return rc;
    if (auth_too_old(r, c, claims, &f))
        return HTTP_UNAUTHORIZED;
    r->user = (char *)user;
    r->ap_auth_type = (char *)ap_auth_type(r);   /* AUTH_TYPE for CGI, as mod_auth_basic does */
    st->user = user;
    st->claims = claims;
    st->render = render;
    st->render_len = render_len;
    st->alg = f.alg;
    st->kid = f.kid;
    ajw_export_claims(r, c, claims, f.alg, f.kid, render, render_len);
    if (APLOGrdebug(r))           /* the items are escaped only when the line is written */
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "token accepted: user=%s kid=%s alg=%s iss=%s",
                      ajw_mod_log_item(r->pool, user), ajw_mod_log_item(r->pool, f.kid),
                      ajw_mod_log_item(r->pool, f.alg), ajw_mod_log_item(r->pool, f.iss));
    ajw_metrics_accepted();
    return OK;
}

/* AuthJWKSOptional On. Where authorization grants without a user (`Require
 * all granted`), httpd skips authentication; a request that presents a
 * token (anywhere the section takes one, well-formed or not) is then made
 * to authenticate all the same, so a bad token is refused and a good one
 * sets the user and claims. Without a token the request goes on anonymous;
 * where authorization needs a user, httpd authenticates anyway and the
 * missing token is a 401 as without the directive. */
static int force_authn(request_rec *r)
{
    ajw_dir_conf *c;
    ajw_req_t *st;
    token_find_t tf;
    if (!ajw_mod_is_ours(r))
        return DECLINED;
    c = ajw_mod_dir_conf(r);
    if (!c->optional)
        return DECLINED;
    st = ap_get_module_config(r->request_config, &auth_jwks_module);
    if (st && st->early)              /* taken out by header_parser (ForwardToken Off) */
        tf = *st->early;
    else
        find_token(r, c, &tf);
    if (tf.count == 0)
        token_from_chain(r, c, &tf);
    if (tf.count == 0) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "no token: anonymous (AuthJWKSOptional)");
        return DECLINED;
    }
    return OK;
}

/* WWW-Authenticate for a 401 on a jwks location; the error, if any, was
 * left in r->notes by whoever refused. */
static int note_auth_failure(request_rec *r, const char *auth_type)
{
    const char *error, *scope;
    const ajw_dir_conf *c;
    if (strcasecmp(auth_type, AJW_AUTH_TYPE))
        return DECLINED;
    if (ajw_mod_step_up_params(r)) {  /* a 401 after a valid token: step-up, whatever else failed */
        ajw_mod_set_challenge(r, AJW_STEP_UP_ERROR, apr_table_get(r->notes, "ajw-step-up-desc"),
                              NULL);
        return OK;
    }
    error = apr_table_get(r->notes, "ajw-error");
    scope = apr_table_get(r->notes, "ajw-scope");
    c = ajw_mod_dir_conf(r);
    /* No token yet: name the scopes the section's rules need (RFC 6750 §3),
     * so that a client (MCP's scope selection) asks for them at once. */
    if (!error && !scope && c && c->need_scopes->nelts)
        scope = apr_array_pstrcat(r->pool, c->need_scopes, ' ');
    ajw_mod_set_challenge(r, error, apr_table_get(r->notes, "ajw-desc"), scope);
    return OK;
}

/* AuthJWKSForwardToken Off on every path: authentication may not have run
 * (`Require ip` granted first) or may have run after the URL was copied
 * (ProxyPass nocanon, RewriteRule [P] in server context). Take the token
 * out again; if it is still in the proxied URL (copied into the path), the
 * request must not go out. */
static int enforce_no_forward(request_rec *r, const ajw_dir_conf *c)
{
    token_find_t tf;
    const ajw_req_t *st;
    find_token(r, c, &tf);
    ajw_edge_scrub_token(r, c);
    st = ap_get_module_config(r->request_config, &auth_jwks_module);
    if (!ajw_edge_token_in_proxy_url(r, tf.token, tf.len)
        && !(st && ajw_edge_token_in_proxy_url(r, st->token, st->token_len))
        && !(st && st->early && ajw_edge_token_in_proxy_url(r, st->early->token,
                                                            st->early->len)))
        return DECLINED;
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "AuthJWKSForwardToken Off: the proxied URL "
                  "still holds the token (copied before authentication, e.g. into the path by "
                  "RewriteRule [P]); refusing the request");
    return HTTP_INTERNAL_SERVER_ERROR;
}

/* After authentication and authorization, before the handler, on every
 * request (internal redirects and subrequests included):
 * - take back a challenge a failed Require alternative left for an error
 *   response that did not happen;
 * - on jwks sections: keep the answer out of httpd's caches, enforce
 *   AuthJWKSForwardToken Off, and when r inherited its user from the
 *   request it came from (same-config redirect or subrequest: httpd skips
 *   authentication), export that request's verified claims again, since
 *   header_parser removed them and the environment was renamed REDIRECT_*. */
static int fixups(request_rec *r)
{
    ajw_req_t *st = ap_get_module_config(r->request_config, &auth_jwks_module);
    ajw_req_t *from;
    ajw_dir_conf *c;
    int rc;
    if (st && st->scope_challenge) {
        apr_table_unset(r->err_headers_out, "WWW-Authenticate");
        apr_table_unset(r->notes, AJW_JSON_NOTE);
        st->scope_challenge = 0;
    }
    if (!ajw_mod_is_ours(r)) {
        if (ajw_mod_req_state(r))             /* came from a jwks request: still not shareable */
            r->no_cache = 1;
        return DECLINED;
    }
    c = ajw_mod_dir_conf(r);
    ajw_edge_no_cache(r, c);
    if (!c->forward_token && (rc = enforce_no_forward(r, c)) != DECLINED)
        return rc;
    if (r->user && !(st && st->user) && (from = ajw_mod_req_state(r))
        && !strcmp(from->user, r->user)) {
        ajw_edge_strip_section(r, c);
        ajw_export_claims(r, c, from->claims, from->alg, from->kid, from->render,
                          from->render_len);
        st = own_state(r);
        st->user = from->user;
        st->claims = from->claims;
        st->render = from->render;
        st->render_len = from->render_len;
        st->alg = from->alg;
        st->kid = from->kid;
    }
    return DECLINED;
}

/* Responses of jwks sections (and of requests that came from one) tell
 * caches outside httpd that they are private to the token's holder. */
static void insert_filter(request_rec *r)
{
    if (ajw_mod_is_ours(r) || ajw_mod_req_state(r))
        ap_add_output_filter(AJW_CACHE_FILTER, NULL, r, r->connection);
}

/* httpd's own error answer (ap_send_error_response) to a refusal of ours:
 * with AuthJWKSJSONErrors On, its body becomes the JSON of the challenge.
 * Only 400, 401 and 403, and only when this module set the challenge: a
 * backend's own 401 is not an error answer of httpd's and never passes here. */
static void insert_error_filter(request_rec *r)
{
    insert_filter(r);
    if ((r->status == HTTP_BAD_REQUEST || r->status == HTTP_UNAUTHORIZED
         || r->status == HTTP_FORBIDDEN) && apr_table_get(r->notes, AJW_JSON_NOTE))
        ap_add_output_filter(AJW_JSON_FILTER, NULL, r, r->connection);
}

/* Replaces whatever body httpd made (its HTML page, an ErrorDocument text)
 * by the JSON noted for the refusal; a HEAD answer keeps no body. Runs
 * until the end of the answer: the body may come in several brigades. */
static apr_status_t json_error_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    const char *json = apr_table_get(r->notes, AJW_JSON_NOTE);
    int first = f->ctx == NULL;
    apr_bucket *b, *next;
    if (!json) {
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    f->ctx = r;
    if (first) {
        ap_set_content_type(r, "application/json");
        apr_table_unset(r->headers_out, "Content-Length");
    }
    for (b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb); b = next) {
        next = APR_BUCKET_NEXT(b);
        if (!APR_BUCKET_IS_METADATA(b))
            apr_bucket_delete(b);
    }
    if (first && !r->header_only)
        APR_BRIGADE_INSERT_HEAD(bb, apr_bucket_pool_create(json, strlen(json), r->pool,
                                                           f->c->bucket_alloc));
    return ap_pass_brigade(f->next, bb);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

/* lib/ logs (key refresh) through this; the baton is the main server. */
static void log_sink(void *baton, ajw_log_level_e level, const char *msg)
{
    ap_log_error(APLOG_MARK, (int)level, 0, (server_rec *)baton, "%s", msg);
}

static int pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    ajw_authz_pre_config(pconf);
    ajw_fetchx_pre_config(pconf);
    ajw_mod.all_urls = apr_array_make(pconf, 4, sizeof(ajw_url_t *));
    ajw_mod.all_revoked = apr_array_make(pconf, 1, sizeof(ajw_revoked_t *));
    ajw_mod.status_groups = NULL;
    ajw_mod.status_used = 0;
    ajw_mod.tcache = NULL;
    ajw_mod.ratelog = NULL;
    ajw_mod.refcache = NULL;
    ajw_mod.clientlog = NULL;
    ajw_mod.fetcher = NULL;
    ajw_mod.keys = NULL;
    return ajw_keystore_create(&ajw_mod.ks, pconf) == APR_SUCCESS ? OK : !OK;
}

/* The per-server key, when there is no AuthJWKSFleetKey: a secret in
 * <path>, made by the parent (root) on first start and kept across full
 * restarts, beside a directory only root can write, so that the server's
 * user (a CGI, a PHP pool) can neither read nor swap it. When that cannot
 * be had, a secret held in memory by the parent process (kept across
 * graceful restarts, not a full one). NULL only when no key can be made. */
#define EPHEMERAL_KEYS "auth_jwks_ephemeral_keys"
static const ajw_keys_t *server_keys(const char *path, apr_pool_t *pconf, apr_pool_t *ptemp,
                                     server_rec *s)
{
    apr_pool_t *pp = s->process->pool;
    unsigned char *secret = NULL, rnd[AJW_SECRET_MIN];
    ajw_keys_t *keys = apr_palloc(pconf, sizeof(*keys));
    const char *why = NULL;
    void *data = NULL;
    size_t len = 0;
    int made = 0;

    if (ajw_secret_load_or_make(&secret, &len, &made, path, geteuid(), &why, ptemp)
        == APR_SUCCESS && ajw_keys_derive(keys, secret, len) == 0) {
        ap_log_error(APLOG_MARK, made ? APLOG_NOTICE : APLOG_DEBUG, 0, s, "shared JWKS copies "
                     "are authenticated with the per-server key %s%s", path,
                     made ? " (made now)" : "");
        return keys;
    }
    apr_pool_userdata_get(&data, EPHEMERAL_KEYS, pp);
    if (!data) {
        if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS)
            return NULL;
        data = apr_palloc(pp, sizeof(ajw_keys_t));
        if (ajw_keys_derive(data, rnd, sizeof(rnd)) != 0)
            return NULL;
        ajw_crypt_wipe(rnd, sizeof(rnd));
        apr_pool_userdata_set(data, EPHEMERAL_KEYS, apr_pool_cleanup_null, pp);
    }
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "per-server key %s: %s; shared JWKS "
                     "copies are authenticated with a key held in memory instead, so they do "
                     "not survive a full restart (AuthJWKSFleetKey names a key file)", path,
                     why ? why : "cannot derive keys");
    return data;
}

/* The shared last-good copies (AuthJWKSCacheDir, AuthJWKSCacheSocache):
 * made or checked here, as root before the children start, and owned by
 * the httpd user. Every record is authenticated with the fleet key or the
 * per-server key (ajw_mod.keys), so whoever can write the directory or the
 * cache without that key cannot choose our keys; a directory anyone else
 * can write stops the server all the same. */
static int setup_shared(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    ajw_srv_conf *sc = ap_get_module_config(s->module_config, &auth_jwks_module);
    const char *dir = sc->cache_dir, *why = NULL;
    ajw_shared_t *sh = NULL, *remote = NULL;
    if (!dir)
        dir = ap_runtime_dir_relative(pconf, "auth_jwks");
    if (*dir && ajw_shared_file_check_dir(dir, ap_unixd_config.user_id,
                                          ap_unixd_config.group_id, &why, ptemp) != APR_SUCCESS) {
        if (sc->cache_dir) {
            ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s, "AuthJWKSCacheDir %s: %s",
                         dir, why ? why : "unusable");
            return !OK;
        }
        /* A default the operator did not choose (DefaultRuntimeDir may not
         * exist yet: Debian's apache2ctl makes /var/run/apache2) must not
         * stop the server: run as with AuthJWKSCacheDir off. Said once, on
         * the reading that opens the error log. */
        if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "AuthJWKSCacheDir not set and the "
                         "default %s is unusable (%s): running without the shared copies of "
                         "JWKS documents (each process fetches and keeps its own); set "
                         "AuthJWKSCacheDir to a directory, or to off", dir,
                         why ? why : "unusable");
        dir = "";
    }
    if (!*dir && !sc->socache)        /* nothing shared: no key needed */
        return OK;
    ajw_mod.keys = sc->fleet_keys ? sc->fleet_keys
                 : server_keys(*dir ? apr_pstrcat(ptemp, dir, ".key", NULL)
                                    : ap_runtime_dir_relative(ptemp, "auth_jwks.key"),
                               pconf, ptemp, s);
    if (!ajw_mod.keys) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s, "no key for the shared JWKS "
                     "copies (no random bytes)");
        return !OK;
    }
    if (sc->socache && ajw_socache_post_config(&remote, sc->socache, ajw_mod.keys, s, pconf,
                                               &why) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s, "AuthJWKSCacheSocache: %s",
                     why ? why : "unusable");
        return !OK;
    }
    if (*dir && ajw_shared_file_create(&sh, dir, ajw_mod.keys->record, &why, pconf)
                != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s, "AuthJWKSCacheDir %s: %s",
                     dir, why ? why : "unusable");
        return !OK;
    }
    if (!sh)                          /* no directory: the socache alone, no leases */
        return ajw_keystore_set_shared(ajw_mod.ks, remote) != APR_SUCCESS ? !OK : OK;
    if (remote && ajw_shared_pair_create(&sh, sh, remote, pconf) != APR_SUCCESS)
        return !OK;
    if (ajw_keystore_set_shared(ajw_mod.ks, sh) != APR_SUCCESS)
        return !OK;
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "shared JWKS copies in %s", dir);
    return OK;
}

/* Resolve every URL to its key source, with the fetch settings of the
 * section that named it. No network I/O here: fetching starts per child. */
static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    int i;
    (void)pconf;
    (void)plog;
    ajw_log_set(log_sink, s);
    /* Warnings once the error log is open: httpd reads its configuration
     * twice at startup, so not on the first reading. */
    if (ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG)
        ajw_edge_check_config(s, ptemp, 1);
    if (ajw_curl_global_init() != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "libcurl initialisation failed");
        return !OK;
    }
    if (ajw_fetchx_check(s) || ajw_fetchx_post_config(pconf, s) != OK)
        return HTTP_INTERNAL_SERVER_ERROR;
    for (i = 0; i < ajw_mod.all_urls->nelts; i++) {
        ajw_url_t *u = APR_ARRAY_IDX(ajw_mod.all_urls, i, ajw_url_t *);
        ajw_source_conf_t sc;
        ajw_source_conf_init(&sc);
        sc.url = u->url;
        sc.ca_file = u->owner->ca_file;
        sc.refresh = u->owner->refresh;
        sc.min_refresh = u->owner->min_refresh;
        sc.timeout = u->owner->fetch_timeout;
        sc.max_stale = u->owner->max_stale;
        if ((sc.prepare_baton = ajw_fetchx_baton(u->url, pconf)) != NULL)
            sc.prepare = ajw_fetchx_prepare;
        u->src = ajw_keystore_add(ajw_mod.ks, &sc);
        if (!u->src) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "cannot register JWKS URL %s", u->url);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (ajw_revoke_post_config(s, pconf) != OK)
        return HTTP_INTERNAL_SERVER_ERROR;
    if (ajw_mod.all_urls->nelts && setup_shared(pconf, ptemp, s) != OK)
        return HTTP_INTERNAL_SERVER_ERROR;
    return ajw_mod_metrics_post_config(pconf, s);
}

/* After the configuration is read, before logs open; apachectl -t runs it
 * too (and no post_config: there it warns as well). An error fails both. */
static int check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    ajw_srv_conf *sc = ap_get_module_config(s->module_config, &auth_jwks_module);
    int warn = ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST;
    (void)pconf;
    (void)plog;
    if (ajw_socache_is_remote(sc->socache) && !sc->fleet_keys) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_EMERG, 0, s, "AuthJWKSCacheSocache %s "
                     "needs AuthJWKSFleetKey: whoever reaches a cache shared over the network "
                     "could otherwise choose the keys every server accepts",
                     ajw_socache_name(sc->socache));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (ajw_fetchx_check(s))
        return HTTP_INTERNAL_SERVER_ERROR;
    return ajw_edge_check_config(s, ptemp, warn) ? HTTP_INTERNAL_SERVER_ERROR : OK;
}

/* Summary lines of client refusals from the flusher (no request): the
 * baton is the main server. */
static void clientlog_sink(void *baton, const char *line)
{
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, (server_rec *)baton, "%s", line);
}

/* The refusal cache and the per-client log summaries of this process. */
static void refusals_child_init(apr_pool_t *pchild, server_rec *s, int threaded)
{
    ajw_srv_conf *sc = ap_get_module_config(s->module_config, &auth_jwks_module);
    long long size = sc->refusal_cache;
    long long first = sc->log_first == -1 ? AJW_LOG_REFUSALS_FIRST : sc->log_first;
    long long secs = sc->log_interval < 0 ? AJW_LOG_REFUSALS_INTERVAL : sc->log_interval;
    if (size < 0)
        size = threaded ? AJW_REFUSAL_CACHE_DEFAULT_THREADED : AJW_REFUSAL_CACHE_DEFAULT_PREFORK;
    if (ajw_refcache_create(&ajw_mod.refcache, (size_t)size, pchild) != APR_SUCCESS)
        ajw_mod.refcache = NULL;      /* then every refusal is checked in full */
    ajw_mod.clientlog = NULL;
    if (first == AJW_LOG_REFUSALS_ALL)
        return;
    if (ajw_clientlog_create(&ajw_mod.clientlog, (int)first, apr_time_from_sec(secs),
                             AJW_LOG_REFUSALS_CLIENTS, pchild) != APR_SUCCESS
        || ajw_clientlog_start(ajw_mod.clientlog, clientlog_sink, s, pchild) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "refusals are logged one by one: the "
                     "per-client summaries could not be set up");
        ajw_mod.clientlog = NULL;
    }
}

static void child_init(apr_pool_t *pchild, server_rec *s)
{
    ajw_srv_conf *sc = ap_get_module_config(s->module_config, &auth_jwks_module);
    long long size = sc->token_cache;
    int threaded = AP_MPMQ_NOT_SUPPORTED;
    apr_status_t rv;
    threaded = ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded) == APR_SUCCESS
               && threaded != AP_MPMQ_NOT_SUPPORTED;
    if (size < 0)
        size = threaded ? AJW_TOKEN_CACHE_DEFAULT_THREADED : AJW_TOKEN_CACHE_DEFAULT_PREFORK;
    refusals_child_init(pchild, s, threaded);
    if (ajw_ratelog_create(&ajw_mod.ratelog, apr_time_from_sec(AJW_OUTAGE_LOG_INTERVAL), 64,
                           pchild) != APR_SUCCESS)
        ajw_mod.ratelog = NULL;       /* then every refusal is logged */
    if (ajw_tcache_create(&ajw_mod.tcache, (size_t)size, pchild) != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "token cache not created; verifying every "
                     "request");
    else
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, "token cache: %" APR_INT64_T_FMT
                     " entries in this process%s", (apr_int64_t)size,
                     sc->token_cache >= 0 ? "" : " (default for this MPM)");
    if (ajw_mod.all_urls->nelts == 0)
        return;
    ajw_socache_child_init(sc->socache, pchild, s);
    ajw_mod.fetcher = ajw_discovery_fetcher(ajw_curl_fetcher(pchild), pchild);
    rv = ajw_mod.fetcher ? ajw_keystore_start(ajw_mod.ks, ajw_mod.fetcher, pchild) : APR_ENOMEM;
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "could not start the JWKS refresh threads; "
                     "tokens will be refused (503)");
}

static void register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_read_request(post_read_request, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_header_parser(header_parser, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_check_authn(authenticate, NULL, NULL, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_force_authn(force_authn, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_note_auth_failure(note_auth_failure, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_fixups(fixups, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_insert_filter(insert_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_register_output_filter(AJW_JSON_FILTER, json_error_filter, NULL, AP_FTYPE_CONTENT_SET);
    ap_register_output_filter(AJW_CACHE_FILTER, ajw_edge_private_filter, NULL,
                              AP_FTYPE_CONTENT_SET - 2);
    ap_hook_handler(ajw_status_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ajw_mod_metrics_register(p);
    ajw_dpop_register_hooks(p);
    ajw_fetchx_register_hooks(p);
    ajw_authz_register(p);
}

AP_DECLARE_MODULE(auth_jwks) = {
    STANDARD20_MODULE_STUFF,
    ajw_mod_create_dir_conf,
    ajw_mod_merge_dir_conf,
    ajw_mod_create_srv_conf,
    ajw_mod_merge_srv_conf,
    ajw_mod_cmds,
    register_hooks,
    AP_MODULE_FLAG_NONE
};
