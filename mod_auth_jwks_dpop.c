/* mod_auth_jwks_dpop.c — sender-constrained tokens and resource metadata:
 *   - DPoP (RFC 9449): Authorization: DPoP <token> plus one DPoP proof
 *     header, checked on every request (the token cache may hold the token's
 *     verification, never the proof's); jti remembered server-wide in a
 *     replay table in shared memory that locks itself (lib/ajw_dpop.c);
 *   - certificate-bound tokens (RFC 8705 §3): cnf.x5t#S256 against the
 *     client certificate mod_ssl saw on this connection;
 *   - protected-resource metadata (RFC 9728): the well-known document.
 * The checks themselves are in lib/ajw_dpop.c; this file is httpd glue.
 * The challenges (DPoP, algs, resource_metadata in every challenge of the
 * location) are rendered by mod_auth_jwks_request.c, from ajw_dir_conf. */
#include <stdarg.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_uri.h>
#include <apr_lib.h>
#include <apr_shm.h>
#include <apr_optional.h>

#include "httpd.h"
#include "http_config.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "http_main.h"
#include "util_mutex.h"
#include "mod_ssl.h"

#include "ajw_types.h"
#include "ajw_json.h"
#include "ajw_dpop.h"
#include "ajw_ratelog.h"
#include "ajw_secret.h"
#include "ajw_crypt.h"

#include "mod_auth_jwks.h"
#include "mod_auth_jwks_request.h"

APLOG_USE_MODULE(auth_jwks);

#define DPOP_MUTEX          "auth-jwks-dpop"
/* The store outlives the module's code across restarts (a graceful restart
 * may load a newer build): its key names the layout, so a build with
 * another layout of replay_store_t or of the table makes its own. */
#define DPOP_STORE_KEY      "auth_jwks_dpop_replay_v2"
#define DPOP_SECRET_KEY     "auth_jwks_dpop_nonce_secret"
#define REPLAY_DEFAULT      65536
#define PRM_WELL_KNOWN      "/.well-known/oauth-protected-resource"
#define PRM_HANDLER         "auth-jwks-resource-metadata"

/* The replay table. Made once in the parent (post_config) and kept in the
 * process pool, so it lives across graceful and full restarts of the same
 * parent, and every generation of children shares one table. Children
 * inherit the mapping by fork. The table locks itself (ajw_replay_add):
 * process-shared locks inside the mapping, no lock file and no system call
 * per proof, whatever `Mutex` mechanism the server defaults to. */
typedef struct replay_store_t {
    apr_shm_t *shm;
    ajw_replay_t *table;
    size_t entries;
} replay_store_t;

/* Config-phase state (single-threaded; reset in pre_config, read-only once
 * requests run). The directives that write it are not allowed in .htaccess,
 * which httpd reads per request. */
static replay_store_t *replay;
static int dpop_used;                  /* some section has AuthJWKSDPoP allow|require */
static long long replay_entries = -1;  /* AuthJWKSDPoPReplayCache; -1: default */
static apr_array_header_t *prm_all;    /* ajw_prm_t * */
/* Key of the server nonces: with AuthJWKSFleetKey, derived from it, so every
 * server of the fleet accepts every other's nonces (and across restarts);
 * else random, made once per parent process (process pool) and copied into
 * every child by fork, so all children and generations accept each other's
 * nonces and a full restart makes a new one. */
static unsigned char nonce_secret[AJW_DPOP_NONCE_SECRET];
static int nonce_ready;
/* How long a replay entry lives past its proof's iat: the largest
 * AuthJWKSDPoPWindow plus the largest AuthJWKSLeeway of the configuration.
 * A location's proofs are never accepted older than this (see check_proof),
 * so a proof accepted under a short window cannot be replayed, after its
 * entry expired, at a location with a longer one. */
static long long replay_horizon = 2 * AJW_DPOP_WINDOW_DEFAULT;
static APR_OPTIONAL_FN_TYPE(ssl_var_lookup) *ssl_lookup;

/* ------------------------------------------------------------------ */
/* Directives                                                           */

const char *ajw_dpop_set_mode(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    if (!strcasecmp(arg, "off"))
        c->dpop = AJW_DPOP_OFF;
    else if (!strcasecmp(arg, "allow"))
        c->dpop = AJW_DPOP_ALLOW;
    else if (!strcasecmp(arg, "require"))
        c->dpop = AJW_DPOP_REQUIRE;
    else
        return apr_psprintf(cmd->pool, "%s: '%s' is not off, allow or require",
                            cmd->cmd->name, arg);
    if (c->dpop != AJW_DPOP_OFF)
        dpop_used = 1;
    c->dpop_set = 1;
    return NULL;
}

/* Whole decimal in [min, max]. */
static const char *num_arg(cmd_parms *cmd, const char *arg, long long min, long long max,
                           long long *out)
{
    char *end = NULL;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    if (!*arg || !end || *end || v < min || v > max)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number from %" APR_INT64_T_FMT
                            " to %" APR_INT64_T_FMT, cmd->cmd->name, arg, (apr_int64_t)min,
                            (apr_int64_t)max);
    *out = (long long)v;
    return NULL;
}

const char *ajw_dpop_set_window(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    c->dpop_window_set = 1;
    return num_arg(cmd, arg, 1, 3600, &c->dpop_window);
}

const char *ajw_dpop_set_nonce(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    c->dpop_nonce_set = 1;
    if (!strcasecmp(arg, "off")) {
        c->dpop_nonce = 0;
        return NULL;
    }
    return num_arg(cmd, arg, 2, 86400, &c->dpop_nonce);
}

const char *ajw_dpop_set_base(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    const char *n;
    size_t len;
    if (strpbrk(arg, "?#"))
        return apr_psprintf(cmd->pool, "%s: '%s' must not hold a query or fragment",
                            cmd->cmd->name, arg);
    n = ajw_dpop_htu_normalize(arg, strlen(arg), cmd->pool);
    if (!n)
        return apr_psprintf(cmd->pool, "%s: '%s' is not an absolute http:// or https:// URL "
                            "(scheme://host[:port][/prefix])", cmd->cmd->name, arg);
    len = strlen(n);
    if (n[len - 1] == '/')
        n = apr_pstrndup(cmd->pool, n, len - 1);   /* the request path brings its own '/' */
    c->dpop_base = n;
    c->dpop_base_set = 1;
    return NULL;
}

const char *ajw_dpop_set_replay_cache(cmd_parms *cmd, void *cv, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    (void)cv;
    if (err)
        return err;
    return num_arg(cmd, arg, AJW_REPLAY_WAYS, 16 * 1024 * 1024, &replay_entries);
}

const char *ajw_dpop_set_cert_bound(cmd_parms *cmd, void *cv, const char *arg)
{
    ajw_dir_conf *c = cv;
    if (!strcasecmp(arg, "off"))
        c->cert_bound = AJW_CERT_OFF;
    else if (!strcasecmp(arg, "optional"))
        c->cert_bound = AJW_CERT_OPTIONAL;
    else if (!strcasecmp(arg, "require"))
        c->cert_bound = AJW_CERT_REQUIRE;
    else
        return apr_psprintf(cmd->pool, "%s: '%s' is not off, optional or require",
                            cmd->cmd->name, arg);
    c->cert_bound_set = 1;
    return NULL;
}

/* An absolute http(s) URL with a host, no userinfo and no fragment. */
static int prm_url_ok(apr_pool_t *p, const char *s, apr_uri_t *u, int allow_query)
{
    if (apr_uri_parse(p, s, u) != APR_SUCCESS || !u->scheme || !u->hostname || !*u->hostname)
        return 0;
    if (strcasecmp(u->scheme, "https") && strcasecmp(u->scheme, "http"))
        return 0;
    return !u->user && !u->password && !u->fragment && (allow_query || !u->query);
}

/* AuthJWKSResourceMetadata <resource> <authorization server>... [scopes=a,b] */
const char *ajw_dpop_set_prm(cmd_parms *cmd, void *cv, int argc, char *const argv[])
{
    ajw_dir_conf *c = cv;
    ajw_prm_t *m;
    apr_uri_t u;
    int i, nserv = argc;
    const char *path;

    if (argc > 1 && !strncmp(argv[argc - 1], "scopes=", 7))
        nserv--;
    if (nserv < 2)
        return apr_psprintf(cmd->pool, "%s: needs a resource URL and at least one "
                            "authorization server", cmd->cmd->name);
    m = apr_pcalloc(cmd->pool, sizeof(*m));
    if (!prm_url_ok(cmd->pool, argv[0], &u, 0))
        return apr_psprintf(cmd->pool, "%s: resource '%s' must be an absolute http(s) URL "
                            "without userinfo, query or fragment", cmd->cmd->name, argv[0]);
    m->resource = argv[0];
    /* RFC 9728 §3.1: the well-known segment goes between host and path; a
     * path of just "/" adds nothing. */
    path = (u.path && strcmp(u.path, "/")) ? u.path : "";
    m->path = apr_pstrcat(cmd->pool, PRM_WELL_KNOWN, path, NULL);
    m->url = apr_pstrcat(cmd->pool, apr_uri_unparse(cmd->pool, &u, APR_URI_UNP_OMITPATHINFO),
                         m->path, NULL);
    m->servers = apr_array_make(cmd->pool, nserv, sizeof(const char *));
    for (i = 1; i < nserv; i++) {
        apr_uri_t a;
        if (!prm_url_ok(cmd->pool, argv[i], &a, 0))
            return apr_psprintf(cmd->pool, "%s: authorization server '%s' must be an absolute "
                                "http(s) URL (its issuer identifier)", cmd->cmd->name, argv[i]);
        APR_ARRAY_PUSH(m->servers, const char *) = argv[i];
    }
    if (nserv < argc) {
        char *list = apr_pstrdup(cmd->pool, argv[argc - 1] + 7), *tok, *last = NULL;
        m->scopes = apr_array_make(cmd->pool, 4, sizeof(const char *));
        for (tok = apr_strtok(list, ",", &last); tok; tok = apr_strtok(NULL, ",", &last)) {
            const char *s;
            for (s = tok; *s; s++)
                if ((unsigned char)*s <= 0x20 || *s == '"' || *s == '\\' || *s == 0x7f)
                    return apr_psprintf(cmd->pool, "%s: scope '%s' is not a scope token "
                                        "(RFC 6749 §3.3)", cmd->cmd->name, tok);
            APR_ARRAY_PUSH(m->scopes, const char *) = tok;
        }
        if (m->scopes->nelts == 0)
            return apr_psprintf(cmd->pool, "%s: scopes= lists no scope", cmd->cmd->name);
    }
    for (i = 0; prm_all && i < prm_all->nelts; i++) {
        const ajw_prm_t *o = APR_ARRAY_IDX(prm_all, i, const ajw_prm_t *);
        if (o->server == cmd->server && !strcmp(o->path, m->path))
            return apr_psprintf(cmd->pool, "%s: another section of this server already "
                                "publishes %s", cmd->cmd->name, m->path);
    }
    m->server = cmd->server;
    m->owner = c;
    if (!prm_all)
        prm_all = apr_array_make(cmd->pool, 4, sizeof(ajw_prm_t *));
    APR_ARRAY_PUSH(prm_all, ajw_prm_t *) = m;
    c->prm = m;
    c->prm_set = 1;
    return NULL;
}

const char *ajw_dpop_prm_resource(const ajw_dir_conf *c)
{
    return c && c->prm ? c->prm->resource : NULL;
}

/* ------------------------------------------------------------------ */
/* Refusals                                                             */

/* 401 with `error` on the challenge; the log line carries what went wrong. */
static int refuse(request_rec *r, const char *error, const char *desc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(request_rec *r, const char *error, const char *desc, const char *fmt, ...)
{
    va_list ap;
    const char *why;
    va_start(ap, fmt);
    why = apr_pvsprintf(r->pool, fmt, ap);
    va_end(ap);
    if (ajw_mod_client_line(r, error))
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "%s", why);
    apr_table_setn(r->notes, "ajw-error", error);
    apr_table_setn(r->notes, "ajw-desc", desc);
    ap_note_auth_failure(r);
    return HTTP_UNAUTHORIZED;
}


/* ------------------------------------------------------------------ */
/* DPoP                                                                 */

/* The request the client sent: proofs name its method and URL, also when
 * r is an internal redirect or a subrequest of it. */
static request_rec *client_request(request_rec *r)
{
    while (r->prev || r->main)
        r = r->prev ? r->prev : r->main;
    return r;
}

/* The htu this request must carry: AuthJWKSDPoPBaseURL + path when set,
 * else scheme (https under mod_ssl) :// ServerName : (ServerName's port or
 * the port the connection came in on) + path. The Host header is never
 * trusted for it. NULL if no URL can be built. */
static const char *expected_htu(request_rec *r, const ajw_dir_conf *c, request_rec *top)
{
    const char *path = top->parsed_uri.path && *top->parsed_uri.path ? top->parsed_uri.path : "/";
    const char *url, *host;
    apr_port_t port;
    if (c->dpop_base)
        url = apr_pstrcat(r->pool, c->dpop_base, path, NULL);
    else {
        host = top->server->server_hostname;
        if (!host)
            return NULL;
        if (strchr(host, ':') && host[0] != '[')
            host = apr_pstrcat(r->pool, "[", host, "]", NULL);
        port = top->server->port ? top->server->port
               : (top->connection->local_addr ? top->connection->local_addr->port : 0);
        url = apr_psprintf(r->pool, "%s://%s:%u%s", ap_http_scheme(top), host,
                           (unsigned)port, path);
    }
    return ajw_dpop_htu_normalize(url, strlen(url), r->pool);
}

typedef struct hdr_count_t {
    int n;
    const char *value;
} hdr_count_t;

static int count_header(void *baton, const char *key, const char *val)
{
    hdr_count_t *hc = baton;
    (void)key;
    hc->n++;
    hc->value = val;
    return 1;
}

/* Was this proof (jti) already accepted for the request r came from? An
 * internal redirect or subrequest sees the same headers again. */
static int accepted_before(request_rec *r, const char *jti)
{
    for (r = r->prev ? r->prev : r->main; r; r = r->prev ? r->prev : r->main) {
        const char *seen = apr_table_get(r->notes, "ajw-dpop-jti");
        if (seen && !strcmp(seen, jti))
            return 1;
    }
    return 0;
}

/* With AuthJWKSFleetKey and a cache shared over the network
 * (AuthJWKSCacheSocache memcache:/redis:), the fleet: one entry per proof
 * under an id only holders of the fleet key can compute (an HMAC of the
 * replay key), so the cache's other users can neither predict nor
 * enumerate them. NULL when proofs are remembered per server only. */
static ajw_socache_conf_t *fleet_replay(request_rec *r, const ajw_keys_t **keys)
{
    ajw_srv_conf *msc = ap_get_module_config(ap_server_conf->module_config, &auth_jwks_module);
    (void)r;
    *keys = msc->fleet_keys;
    return msc->fleet_keys && ajw_socache_is_remote(msc->socache) ? msc->socache : NULL;
}

/* The fleet's memory of the proof (see fleet_replay), after the server's own
 * table took it as new. Not one atomic step: between the look-up and the
 * store (one round trip to the cache) another server can take the same
 * proof as new too. A cache that cannot answer refuses (503): the operator
 * asked for fleet-wide replay protection, and we do not quietly drop it. */
static int fleet_replay_check(request_rec *r, const unsigned char key[32],
                              const ajw_dpop_proof_t *pr)
{
    const ajw_keys_t *keys = NULL;
    ajw_socache_conf_t *sc = fleet_replay(r, &keys);
    unsigned char id[1 + 32];
    apr_time_t t0 = apr_time_now();
    apr_status_t rv;
    int seen = 0;
    if (!sc)
        return OK;
    id[0] = 'J';
    if (ajw_crypt_hmac_sha256(id + 1, keys->jti, AJW_KEY_LEN, key, 32) != 0)
        return HTTP_INTERNAL_SERVER_ERROR;
    rv = ajw_socache_mark(sc, id, sizeof(id),
                          apr_time_from_sec(pr->iat + replay_horizon + 1), &seen, r->pool);
    if (rv != APR_SUCCESS) {
        unsigned long held = 0;
        if (ajw_ratelog_allow(ajw_mod.ratelog, "dpop-fleet-replay", apr_time_now(), &held))
            ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, "DPoP fleet replay check: socache %s "
                          "cannot be read or written; refusing DPoP requests (503)%s",
                          ajw_socache_name(sc), held ? apr_psprintf(r->pool,
                          " [%lu more like this since the last such line]", held) : "");
        apr_table_setn(r->err_headers_out, "Retry-After", AJW_RETRY_AFTER);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "DPoP fleet replay check: %s in %"
                  APR_TIME_T_FMT " us", seen ? "seen" : "new", apr_time_now() - t0);
    if (seen)
        return refuse(r, "invalid_dpop_proof", "The DPoP proof was used before",
                      "DPoP proof rejected: replay: jti seen before within the window by a "
                      "server of the fleet (alg=%s)", ajw_mod_log_item(r->pool, pr->alg_name));
    return OK;
}

/* Remember the proof server-wide. OK, or the status of a refusal. */
static int replay_check(request_rec *r, const ajw_dpop_proof_t *pr, long long now)
{
    unsigned char key[32];
    unsigned long long owner = ajw_replay_owner(pr->jkt);
    ajw_replay_e rc;
    if (!replay || !replay->table) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "DPoP replay cache unavailable; refusing");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!owner || ajw_replay_key(key, pr->jkt, pr->jti, pr->jti_len) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "DPoP replay cache: cannot hash the proof's "
                      "key and jti; refusing");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* Kept until the proof's iat falls out of the window: after that the
     * iat check refuses it anyway. */
    rc = ajw_replay_add(replay->table, key, owner, pr->iat + replay_horizon + 1, now);
    if (rc == AJW_REPLAY_LOCK_FAILED) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "DPoP replay cache: lock failed; refusing");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (rc == AJW_REPLAY_SEEN)
        return refuse(r, "invalid_dpop_proof", "The DPoP proof was used before",
                      "DPoP proof rejected: replay: jti seen before within the window "
                      "(alg=%s)", ajw_mod_log_item(r->pool, pr->alg_name));
    if (rc == AJW_REPLAY_NEW_EVICTED)
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "DPoP replay cache: this proof key "
                      "holds its share of a bucket; its own oldest entry there gave way");
    if (rc == AJW_REPLAY_FULL) {
        unsigned long held = 0;
        if (ajw_ratelog_allow(ajw_mod.ratelog, "dpop-replay-full", apr_time_now(), &held))
            ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "DPoP replay cache full (%"
                          APR_SIZE_T_FMT " entries, all within their window); raise "
                          "AuthJWKSDPoPReplayCache. Refusing (503)%s",
                          ajw_replay_capacity(replay->table), held ? apr_psprintf(r->pool,
                          " [%lu more like this since the last such line]", held) : "");
        apr_table_setn(r->err_headers_out, "Retry-After", AJW_RETRY_AFTER);
        return HTTP_SERVICE_UNAVAILABLE;
    }
    return fleet_replay_check(r, key, pr);
}

/* Send a fresh nonce with this response (RFC 9449 §8). */
static void offer_nonce(request_rec *r, long long now)
{
    const char *n = ajw_dpop_nonce_make(nonce_secret, now, r->pool);
    if (n)
        apr_table_setn(r->err_headers_out, "DPoP-Nonce", n);
}

/* AuthJWKSDPoPNonce: the proof must carry a nonce of ours that has not
 * expired; otherwise 401 use_dpop_nonce with a fresh one. Expected once per
 * client and nonce lifetime, so logged at info, not error. */
static int check_nonce(request_rec *r, const ajw_dir_conf *c, const ajw_dpop_proof_t *pr,
                       long long now)
{
    long long age = 0;
    ajw_reason_e rc = AJW_R_MISSING_CLAIM;
    if (!nonce_ready) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "DPoP nonce key unavailable; refusing");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (pr->nonce)
        rc = ajw_dpop_nonce_check(&age, nonce_secret, pr->nonce, pr->nonce_len, now,
                                  c->dpop_nonce, r->pool);
    if (rc == AJW_OK) {
        if (age > c->dpop_nonce / 2)
            offer_nonce(r, now);      /* the next one, before this one expires (§8.2) */
        return OK;
    }
    offer_nonce(r, now);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "DPoP proof needs a new nonce: %s",
                  rc == AJW_R_MISSING_CLAIM ? "no nonce claim"
                  : rc == AJW_R_TOO_OLD ? "nonce expired"
                  : rc == AJW_R_ISSUED_IN_FUTURE ? "nonce from the future"
                  : "nonce not issued by this server (or before a full restart)");
    apr_table_setn(r->notes, "ajw-error", "use_dpop_nonce");
    apr_table_setn(r->notes, "ajw-desc", "Resource server requires nonce in DPoP proof");
    ap_note_auth_failure(r);
    return HTTP_UNAUTHORIZED;
}

static int check_proof(request_rec *r, const ajw_dir_conf *c, const char *token, size_t len,
                       const char *jkt)
{
    request_rec *top = client_request(r);
    hdr_count_t hc = { 0, NULL };
    ajw_dpop_req_t rq;
    ajw_dpop_proof_t *pr = NULL;
    ajw_error_t err;
    ajw_reason_e rc;
    const char *htu;
    int st;
    static const char desc[] = "The DPoP proof is invalid";

    apr_table_do(count_header, &hc, r->headers_in, "DPoP", NULL);
    if (hc.n == 0)
        return refuse(r, "invalid_dpop_proof", desc, "DPoP proof rejected: no DPoP header");
    if (hc.n > 1 || strchr(hc.value, ','))
        return refuse(r, "invalid_dpop_proof", desc, "DPoP proof rejected: more than one "
                      "DPoP header");
    htu = expected_htu(r, c, top);
    if (!htu) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "DPoP: cannot build this request's URL "
                      "(set AuthJWKSDPoPBaseURL)");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    memset(&rq, 0, sizeof(rq));
    rq.method = top->method;
    rq.htu = htu;
    rq.algs = c->algs;
    rq.now = (long long)apr_time_sec(apr_time_now());
    /* iat no older than window + leeway, and never older than the horizon
     * replay entries live for (a leeway set in .htaccess may exceed it). */
    rq.leeway = c->leeway;
    rq.window = (c->dpop_window + c->leeway < replay_horizon ? c->dpop_window + c->leeway
                 : replay_horizon) - c->leeway;
    rq.token = token;
    rq.token_len = len;
    rq.jkt = jkt;
    memset(&err, 0, sizeof(err));
    rc = ajw_dpop_check(&pr, hc.value, strlen(hc.value), &rq, r->pool, &err);
    if (rc == AJW_R_INTERNAL)
        return HTTP_INTERNAL_SERVER_ERROR;
    if (rc != AJW_OK)
        return refuse(r, "invalid_dpop_proof", desc, "DPoP proof rejected: %s: %s "
                      "(htm=%s htu=%s)", ajw_reason_name(rc), ap_escape_logitem(r->pool, err.text),
                      ajw_mod_log_item(r->pool, top->method), ajw_mod_log_item(r->pool, htu));
    if (c->dpop_nonce > 0 && (st = check_nonce(r, c, pr, rq.now)) != OK)
        return st;
    if (!accepted_before(r, pr->jti)) {
        st = replay_check(r, pr, rq.now);
        if (st != OK)
            return st;
    }
    apr_table_setn(r->notes, "ajw-dpop-jti", apr_pstrmemdup(r->pool, pr->jti, pr->jti_len));
    return OK;
}

/* ------------------------------------------------------------------ */
/* Certificate-bound tokens                                             */

/* x5t#S256 of the client certificate of r's connection, NULL when none. */
static const char *client_cert_x5t(request_rec *r)
{
    const char *pem;
    if (!ssl_lookup)
        return NULL;
    pem = ssl_lookup(r->pool, r->server, r->connection, r, (char *)"SSL_CLIENT_CERT");
    if (!pem || !*pem)
        return NULL;
    return ajw_dpop_cert_thumbprint(pem, r->pool);
}

static int check_cert(request_rec *r, const ajw_dir_conf *c, const char *x5t)
{
    static const char desc[] = "The token is bound to a client certificate this connection "
                               "did not present";
    const char *have;
    if (!x5t) {
        if (c->cert_bound == AJW_CERT_REQUIRE)
            return refuse(r, "invalid_token", "The token is not bound to a client certificate",
                          "token rejected: cert binding: AuthJWKSCertBound require and the "
                          "token has no cnf.x5t#S256");
        return OK;
    }
    have = client_cert_x5t(r);
    if (!have)
        return refuse(r, "invalid_token", desc, "token rejected: cert binding: the token has "
                      "cnf.x5t#S256 and the connection presented no client certificate%s",
                      ssl_lookup ? "" : " (mod_ssl not loaded)");
    if (!ajw_dpop_ct_equal(have, strlen(have), x5t, strlen(x5t)))
        return refuse(r, "invalid_token", desc, "token rejected: cert binding: cnf.x5t#S256 "
                      "does not match the client certificate (its x5t#S256 is %s)", have);
    return OK;
}

/* ------------------------------------------------------------------ */
/* After the token verified                                             */

int ajw_dpop_check_request(request_rec *r, const ajw_dir_conf *c, int dpop_scheme,
                           const char *token, size_t len, const ajw_val_t *claims)
{
    const ajw_val_t *cnf, *v;
    const char *jkt = NULL, *x5t = NULL;
    int st;
    if (c->dpop == AJW_DPOP_OFF && c->cert_bound == AJW_CERT_OFF)
        return OK;
    cnf = ajw_val_get(claims, "cnf");
    if (cnf && !ajw_val_is_object(cnf))
        return refuse(r, "invalid_token", "The token has an invalid claim",
                      "token rejected: binding: cnf claim is not an object");
    if (cnf && (v = ajw_val_get(cnf, "jkt")) != NULL) {
        if (!ajw_val_is_string(v) || ajw_val_strlen(v) == 0)
            return refuse(r, "invalid_token", "The token has an invalid claim",
                          "token rejected: binding: cnf.jkt is not a non-empty string");
        jkt = ajw_val_str(v);
    }
    if (cnf && (v = ajw_val_get(cnf, "x5t#S256")) != NULL) {
        if (!ajw_val_is_string(v) || ajw_val_strlen(v) == 0)
            return refuse(r, "invalid_token", "The token has an invalid claim",
                          "token rejected: binding: cnf.x5t#S256 is not a non-empty string");
        x5t = ajw_val_str(v);
    }
    if (c->dpop != AJW_DPOP_OFF) {
        if (dpop_scheme && !jkt)
            return refuse(r, "invalid_token", "The token is not DPoP-bound",
                          "token rejected: DPoP: token sent with the DPoP scheme has no "
                          "cnf.jkt");
        if (dpop_scheme && (st = check_proof(r, c, token, len, jkt)) != OK)
            return st;
        if (!dpop_scheme && jkt)
            return refuse(r, "invalid_token", "The token is DPoP-bound and needs a DPoP proof",
                          "token rejected: DPoP: DPoP-bound token (cnf.jkt) presented as a "
                          "bearer token");
        if (!dpop_scheme && c->dpop == AJW_DPOP_REQUIRE)
            return refuse(r, "invalid_token", "A DPoP-bound token is required",
                          "token rejected: DPoP: AuthJWKSDPoP require and the token came as a "
                          "bearer token");
    }
    if (c->cert_bound != AJW_CERT_OFF && (st = check_cert(r, c, x5t)) != OK)
        return st;
    return OK;
}

/* ------------------------------------------------------------------ */
/* RFC 9728 protected-resource metadata                                 */

/* The metadata published at r's path: the virtual host's own first, then
 * the main server's (its sections apply in every virtual host). */
static const ajw_prm_t *prm_for(request_rec *r)
{
    const ajw_prm_t *main_m = NULL;
    int i;
    for (i = 0; prm_all && i < prm_all->nelts; i++) {
        const ajw_prm_t *m = APR_ARRAY_IDX(prm_all, i, const ajw_prm_t *);
        if (strcmp(m->path, r->uri))
            continue;
        if (m->server == r->server)
            return m;
        if (!m->server->is_virtual && !main_m)
            main_m = m;
    }
    return main_m;
}

/* The well-known URLs of registered resources go to our handler, with no
 * file system mapping (like mod_proxy). <Location> sections still apply. */
static int prm_translate(request_rec *r)
{
    if (!prm_all || !r->uri || strncmp(r->uri, PRM_WELL_KNOWN, sizeof(PRM_WELL_KNOWN) - 1)
        || !prm_for(r))
        return DECLINED;
    r->handler = PRM_HANDLER;
    r->filename = apr_pstrcat(r->pool, PRM_HANDLER ":", r->uri, NULL);
    return OK;
}

static int prm_map_to_storage(request_rec *r)
{
    return r->handler && !strcmp(r->handler, PRM_HANDLER) ? OK : DECLINED;
}

static json_t *str_array(const apr_array_header_t *a)
{
    json_t *arr = json_array();
    int i;
    for (i = 0; a && i < a->nelts; i++)
        json_array_append_new(arr, json_string(APR_ARRAY_IDX(a, i, const char *)));
    return arr;
}

static int prm_handler(request_rec *r)
{
    const ajw_prm_t *m;
    const ajw_dir_conf *o;
    json_t *doc, *methods, *algs;
    const char *body;
    int a, i, header = 0, query = 0;

    if (!r->handler || strcmp(r->handler, PRM_HANDLER))
        return DECLINED;
    if (!(m = prm_for(r)))
        return HTTP_NOT_FOUND;
    r->allowed = (AP_METHOD_BIT << M_GET);
    ap_allow_methods(r, REPLACE_ALLOW, "GET", NULL);   /* the Allow of a 405 */
    if (r->method_number != M_GET)
        return HTTP_METHOD_NOT_ALLOWED;
    o = m->owner;
    doc = ajw_json_pool_own(json_object(), r->pool);
    json_object_set_new(doc, "resource", json_string(m->resource));
    json_object_set_new(doc, "authorization_servers", str_array(m->servers));
    methods = json_array();
    if (!o->from || o->from->nelts == 0)
        header = 1;
    for (i = 0; o->from && i < o->from->nelts; i++) {
        ajw_from_kind_e k = APR_ARRAY_IDX(o->from, i, ajw_from_t).kind;
        header |= k == TOKEN_FROM_HEADER;
        query |= k == TOKEN_FROM_QUERY;
    }
    if (header)
        json_array_append_new(methods, json_string("header"));
    if (query)
        json_array_append_new(methods, json_string("query"));
    json_object_set_new(doc, "bearer_methods_supported", methods);
    if (m->scopes)
        json_object_set_new(doc, "scopes_supported", str_array(m->scopes));
    if (o->dpop != AJW_DPOP_OFF) {
        algs = json_array();
        for (a = AJW_ALG_RS256; a <= AJW_ALG_EDDSA; a++)
            if (o->algs & AJW_ALGS_DEFAULT & AJW_ALG_BIT(a))
                json_array_append_new(algs, json_string(ajw_alg_name((ajw_alg_e)a)));
        json_object_set_new(doc, "dpop_signing_alg_values_supported", algs);
        if (o->dpop == AJW_DPOP_REQUIRE)
            json_object_set_new(doc, "dpop_bound_access_tokens_required", json_true());
    }
    if (o->cert_bound == AJW_CERT_REQUIRE)
        json_object_set_new(doc, "tls_client_certificate_bound_access_tokens", json_true());
    body = ajw_json_dump(doc, r->pool);
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "max-age=300");
    ap_set_content_length(r, (apr_off_t)strlen(body));
    if (!r->header_only)
        ap_rputs(body, r);
    return OK;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

static int dpop_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)plog;
    (void)ptemp;
    dpop_used = 0;
    replay_entries = -1;
    prm_all = NULL;
    /* The replay table no longer takes a global mutex (it locks itself);
     * the type stays registered so that a `Mutex ... auth-jwks-dpop` line
     * written for an earlier version still parses. */
    return ap_mutex_register(pconf, DPOP_MUTEX, NULL, APR_LOCK_DEFAULT, 0) == APR_SUCCESS
           ? OK : !OK;
}

/* The largest value of directive `name` anywhere in the configuration tree
 * (values were validated by their setters), or dflt when larger. */
static long long conf_max(apr_pool_t *p, const ap_directive_t *d, const char *name,
                          long long dflt)
{
    long long best = dflt, v;
    for (; d; d = d->next) {
        if (d->args && !strcasecmp(d->directive, name)) {
            const char *a = d->args;
            v = (long long)apr_atoi64(ap_getword_conf(p, &a));
            if (v > best)
                best = v;
        }
        if (d->first_child && (v = conf_max(p, d->first_child, name, dflt)) > best)
            best = v;
    }
    return best;
}

/* Make the replay store once per parent process (kept in the process pool). */
static int dpop_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                            server_rec *s)
{
    apr_pool_t *pp = s->process->pool;
    void *data = NULL;
    size_t entries = replay_entries > 0 ? (size_t)replay_entries : REPLAY_DEFAULT;
    size_t size = ajw_replay_size(entries);
    ajw_srv_conf *msc;
    replay_store_t *st;
    apr_status_t rv;
    (void)pconf;
    (void)plog;
    ssl_lookup = APR_RETRIEVE_OPTIONAL_FN(ssl_var_lookup);
    replay_horizon = conf_max(ptemp, ap_conftree, "AuthJWKSDPoPWindow", AJW_DPOP_WINDOW_DEFAULT)
                     + conf_max(ptemp, ap_conftree, "AuthJWKSLeeway", 60);
    msc = ap_get_module_config(s->module_config, &auth_jwks_module);
    if (msc->fleet_keys) {            /* every server of the fleet makes and takes the same */
        memcpy(nonce_secret, msc->fleet_keys->nonce, AJW_DPOP_NONCE_SECRET);
        nonce_ready = 1;
    }
    else
        apr_pool_userdata_get(&data, DPOP_SECRET_KEY, pp);
    if (!data && dpop_used && !msc->fleet_keys) {
        data = apr_palloc(pp, AJW_DPOP_NONCE_SECRET);
        if ((rv = apr_generate_random_bytes(data, AJW_DPOP_NONCE_SECRET)) != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "DPoP: no random bytes for the nonce key");
            return !OK;
        }
        apr_pool_userdata_set(data, DPOP_SECRET_KEY, apr_pool_cleanup_null, pp);
    }
    if (data) {
        memcpy(nonce_secret, data, AJW_DPOP_NONCE_SECRET);
        nonce_ready = 1;
    }
    data = NULL;
    apr_pool_userdata_get(&data, DPOP_STORE_KEY, pp);
    replay = data;
    if (replay) {
        if (replay->entries != entries)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "AuthJWKSDPoPReplayCache changed "
                         "to %" APR_SIZE_T_FMT "; the running table keeps %" APR_SIZE_T_FMT
                         " entries until a full stop and start", entries, replay->entries);
        return OK;
    }
    if (!dpop_used)
        return OK;
    st = apr_pcalloc(pp, sizeof(*st));
    if ((rv = apr_shm_create(&st->shm, size, NULL, pp)) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "DPoP replay cache: cannot create %"
                     APR_SIZE_T_FMT " bytes of shared memory", size);
        return !OK;
    }
    st->table = ajw_replay_init(apr_shm_baseaddr_get(st->shm), apr_shm_size_get(st->shm));
    if (!st->table) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, "DPoP replay cache: cannot make its "
                     "process-shared locks");
        return !OK;
    }
    /* No cleanup of ours on the process pool: the module's code may be
     * unloaded before that pool is; the locks hold no kernel resource. */
    st->entries = entries;
    apr_pool_userdata_set(st, DPOP_STORE_KEY, apr_pool_cleanup_null, pp);
    replay = st;
    return OK;
}

void ajw_dpop_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(dpop_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(dpop_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(prm_translate, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_map_to_storage(prm_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_handler(prm_handler, NULL, NULL, APR_HOOK_MIDDLE);
}
