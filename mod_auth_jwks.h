/* mod_auth_jwks.h — what the module's glue files share: the configuration
 * records (built by mod_auth_jwks_config.c), the process-wide state (set up
 * by the hooks in mod_auth_jwks.c) and the entry points of each feature
 * file. The request helpers below the features are in
 * mod_auth_jwks_request.h. Internal to the module. */
#ifndef MOD_AUTH_JWKS_H
#define MOD_AUTH_JWKS_H

#include "httpd.h"
#include "http_config.h"
#include "util_filter.h"
#include <jansson.h>
#include "ajw_types.h"
#include "ajw_keystore.h"
#include "ajw_tcache.h"

extern module AP_MODULE_DECLARE_DATA auth_jwks_module;

#define AJW_AUTH_TYPE           "jwks"
#define AJW_CLAIMS_HEADER       "X-JWT-Claims"
#define AJW_RETRY_AFTER         "10"
#define AJW_MAX_STALE_DEFAULT   86400 /* seconds: a day of IdP outage, then 503 */
#define AJW_ROTATION_WAIT_DEFAULT 2   /* seconds a request waits for keys with its new kid */
#define AJW_OUTAGE_LOG_INTERVAL 30  /* seconds between lines for one server-side cause */
/* Token cache entries per process unless AuthJWKSTokenCache says: a
 * threaded process serves many clients from one cache, while each prefork
 * child (possibly hundreds) keeps its own. ~1.3 KB per entry for a
 * 330-byte token. */
#define AJW_TOKEN_CACHE_DEFAULT_THREADED 4096
#define AJW_TOKEN_CACHE_DEFAULT_PREFORK  1024
/* Refusal cache entries per process unless AuthJWKSRefusalCache says:
 * sized like the token cache; ~400 bytes an entry, whatever the token. */
#define AJW_REFUSAL_CACHE_DEFAULT_THREADED 4096
#define AJW_REFUSAL_CACHE_DEFAULT_PREFORK  1024
/* AuthJWKSLogRefusals: full lines per client per interval, then counts. */
#define AJW_LOG_REFUSALS_FIRST    5
#define AJW_LOG_REFUSALS_INTERVAL 60  /* seconds */
#define AJW_LOG_REFUSALS_ALL      (-2)/* "all": every refusal its own line */
#define AJW_LOG_REFUSALS_CLIENTS  256 /* clients counted per process */
#define AJW_HEADER_PREFIX_DEFAULT "X-JWT-Claim-"
#define AJW_STATUS_OFF          0   /* AuthJWKSStatusList */
#define AJW_STATUS_ON           1
#define AJW_STATUS_REQUIRE      2
#define AJW_STATUS_MAX_STALE_DEFAULT 3600 /* seconds a status list stays usable unrefreshed */
#define AJW_STATUS_SLOTS        8   /* distinct status list URIs per JWKS URL (issuer) */
#define AJW_REVOKED_REFRESH     5   /* seconds between looks at an AuthJWKSRevoked file */

/* One JWKS URL as written in one section. The key source it names is
 * resolved in post_config (when every fetch setting of the section is
 * known); merged configs share this struct, so they see the source too. */
typedef struct ajw_url_t {
    const char *url;
    struct ajw_dir_conf *owner;   /* section that wrote it: fetch settings come from there */
    ajw_source_t *src;            /* set in post_config, read-only afterwards */
} ajw_url_t;

/* AuthJWKSIssuer <iss> [<url>] */
typedef struct ajw_issuer_t {
    const char *iss;
    ajw_url_t *bound;             /* NULL: any AuthJWKSURL of the location */
    const struct ajw_issuer_tpl_t *tpl; /* iss holds {tenantid}: the template; else NULL */
} ajw_issuer_t;

/* AuthJWKSRevoked <file>: read in the background by a key store source
 * (resolved in post_config, read-only afterwards). */
typedef struct ajw_revoked_t {
    const char *path;
    ajw_source_t *src;
} ajw_revoked_t;

typedef enum { TOKEN_FROM_HEADER, TOKEN_FROM_COOKIE, TOKEN_FROM_QUERY } ajw_from_kind_e;
/* A place a section takes tokens from. TOKEN_FROM_HEADER with name NULL is
 * `Authorization: Bearer` (and DPoP where the section takes it); with a
 * name, that header's whole value, or what follows `scheme` in it. */
typedef struct ajw_from_t {
    ajw_from_kind_e kind;
    const char *name;             /* header, cookie or query parameter name */
    const char *scheme;           /* header only: the scheme before the token, or NULL */
} ajw_from_t;

/* AuthJWKSClaimHeader / AuthJWKSClaimEnv: one claim to one fixed name. */
typedef struct ajw_claim_map_t {
    const struct ajw_claim_ref_t *ref;
    const char *claim;            /* as written, for logs */
    const char *name;             /* header or variable name */
} ajw_claim_map_t;

/* AuthJWKSResourceMetadata of one section (mod_auth_jwks_dpop.c builds it
 * in the config phase; read-only afterwards). */
typedef struct ajw_prm_t {
    const char *resource;
    apr_array_header_t *servers;      /* const char *: authorization servers */
    apr_array_header_t *scopes;       /* const char *; NULL: not given */
    const char *path;                 /* /.well-known/oauth-protected-resource[/path] */
    const char *url;                  /* the same as an absolute URL, for challenges */
    server_rec *server;               /* where it was written */
    const struct ajw_dir_conf *owner; /* section it describes (DPoP, algs, token sources) */
} ajw_prm_t;

#define PASS_ENV     1
#define PASS_HEADERS 2

typedef struct ajw_dir_conf {
    apr_array_header_t *urls;     /* ajw_url_t * */
    apr_array_header_t *issuers;  /* ajw_issuer_t */
    apr_array_header_t *audiences;/* const char * */
    apr_array_header_t *required; /* const char * */
    apr_array_header_t *from;     /* ajw_from_t */
    apr_array_header_t *map_headers; /* ajw_claim_map_t */
    apr_array_header_t *map_envs;    /* ajw_claim_map_t */
    const char *ca_file;
    const char *typ;
    const char *user_claim;
    const char *claim_prefix;
    const char *header_prefix;
    unsigned algs;
    long long leeway;
    long long max_age;
    apr_size_t max_token_len;
    int pass;
    int forward_token;
    int cacheable;                /* AuthJWKSCacheable: httpd's cache may store (after authn) */
    apr_interval_time_t refresh, min_refresh, fetch_timeout, startup_wait;
    apr_interval_time_t max_stale;    /* AuthJWKSMaxStale: a fetch setting, 0 = unbounded */
    apr_interval_time_t rotation_wait;/* AuthJWKSRotationWait */
    int optional;                 /* AuthJWKSOptional: no token = anonymous where authz allows */
    int json_errors;              /* AuthJWKSJSONErrors: JSON bodies on our 400/401/403 */

    unsigned map_headers_set:1, map_envs_set:1, cacheable_set:1,
             urls_set:1, issuers_set:1, audiences_set:1, required_set:1, from_set:1,
             ca_file_set:1, typ_set:1, user_claim_set:1, claim_prefix_set:1,
             header_prefix_set:1, algs_set:1, leeway_set:1, max_age_set:1,
             max_token_len_set:1, pass_set:1, forward_token_set:1, refresh_set:1,
             min_refresh_set:1, fetch_timeout_set:1, startup_wait_set:1, max_stale_set:1,
             rotation_wait_set:1, optional_set:1, json_errors_set:1;

    /* Sender-constrained tokens and RFC 9728 (mod_auth_jwks_dpop.c). */
    int dpop;                     /* AJW_DPOP_OFF | AJW_DPOP_ALLOW | AJW_DPOP_REQUIRE */
    long long dpop_window;        /* AuthJWKSDPoPWindow, seconds */
    long long dpop_nonce;         /* AuthJWKSDPoPNonce lifetime, seconds; 0: no server nonces */
    const char *dpop_base;        /* AuthJWKSDPoPBaseURL without trailing '/'; NULL: the vhost's */
    int cert_bound;               /* AJW_CERT_OFF | AJW_CERT_OPTIONAL | AJW_CERT_REQUIRE */
    struct ajw_prm_t *prm;        /* AuthJWKSResourceMetadata; NULL: none */
    unsigned dpop_set:1, dpop_window_set:1, dpop_base_set:1, cert_bound_set:1, prm_set:1,
             dpop_nonce_set:1;

    /* Revocation (mod_auth_jwks_revoke.c). */
    int status_mode;              /* AJW_STATUS_OFF | ON | REQUIRE */
    apr_array_header_t *status_prefixes; /* const char *: AuthJWKSStatusListURL */
    int status_fail_open;         /* AuthJWKSStatusListFail open */
    apr_interval_time_t status_max_stale; /* 0 = unbounded */
    ajw_revoked_t *revoked;       /* AuthJWKSRevoked; NULL: none */
    unsigned status_mode_set:1, status_prefixes_set:1, status_fail_open_set:1,
             status_max_stale_set:1, revoked_set:1;
    /* Step-up authentication (RFC 9470) and multi-tenant issuers. */
    long long max_auth_age;       /* AuthJWKSMaxAuthAge, seconds; 0: off */
    apr_array_header_t *tenants;  /* AuthJWKSTenant: const char * tenant ids; empty: any */
    /* Every scope the section's (not negated) Require jwt-scope / scope lines
     * name, in order, once each: the scope="..." of an insufficient_scope
     * answer, so that one challenge asks for all of them. */
    apr_array_header_t *need_scopes;
    unsigned max_auth_age_set:1, tenants_set:1, need_scopes_set:1;
} ajw_dir_conf;

typedef struct ajw_srv_conf {
    long long token_cache;        /* entries; -1 = not set */
    long long refusal_cache;      /* AuthJWKSRefusalCache entries; -1 = not set */
    long long log_first;          /* AuthJWKSLogRefusals: -1 not set, AJW_LOG_REFUSALS_ALL */
    long long log_interval;       /* its seconds; -1 = not set */
    /* Header prefixes of every jwks section written in this server (or, after
     * post_config, inherited from the main server): client headers that match
     * one are removed as soon as the request is read. NULL = no jwks section. */
    apr_array_header_t *strip_prefixes;   /* const char * */
    apr_array_header_t *strip_names;      /* const char *: AuthJWKSClaimHeader names */
    int strip;                    /* AuthJWKSStripClaimHeaders: -1 unset (On), 0 Off, 1 On */
    const char *cache_dir;        /* AuthJWKSCacheDir (main server only): NULL = default,
                                   * "" = off */
    struct ajw_socache_conf_t *socache; /* AuthJWKSCacheSocache (main server only): NULL = none */
    const char *fleet_key_file;   /* AuthJWKSFleetKey (main server only): NULL = none */
    const struct ajw_keys_t *fleet_keys; /* derived from it when the directive was read */
} ajw_srv_conf;

/* The user claim suffix that qualifies REMOTE_USER with the issuer. */
#define AJW_USER_AT_ISS "@iss"

/* Per-request state, kept in the request's request_config. It remembers
 * the token the request presented (so an internal redirect or subrequest
 * can authenticate again after AuthJWKSForwardToken Off took it out of the
 * shared headers) and, once verified, the user and claims. Everything lives
 * as long as that request's pool. */
typedef struct ajw_req_t {
    const char *user;         /* r->user we set; NULL until authenticated */
    const ajw_val_t *claims;  /* the verified claims' document (ajw_doc.h) */
    const char *render;       /* the token-cache entry's ajw_export_render block, or NULL */
    size_t render_len;
    const char *alg;          /* the verified token's header alg and kid (NULL when none) */
    const char *kid;
    int scope_challenge;      /* we put an insufficient_scope challenge in err_headers_out */
    const char *token;        /* the token presented, NULL when none */
    size_t token_len;
    ajw_from_kind_e token_kind;
    const char *token_where;  /* header (NULL: Authorization), cookie or query parameter name */
    int token_dpop;           /* it came as Authorization: DPoP */
    /* What header_parser found before it took the token out of the request
     * (AuthJWKSForwardToken Off: a refusal before authentication must not
     * leave it in the logs); check_authn reads it from here. NULL: none. */
    struct token_find_t *early;
    /* The last strip of client claim headers: the fingerprint of headers_in
     * right after it (ajw_edge_headers_fp), and what it covered (the
     * server's names, or a section's dir conf); strip_by NULL: none yet. */
    apr_uint64_t strip_fp;
    const void *strip_by;
} ajw_req_t;

/* Process-wide state. Written only in the single-threaded config phase
 * (pre_config/directives/post_config) or in child_init before any request
 * thread runs; request threads only read the pointers. The key store and
 * token cache carry their own locks for what changes at run time. */
typedef struct ajw_mod_state_t {
    ajw_keystore_t *ks;           /* in pconf; sources added in post_config */
    apr_array_header_t *all_urls; /* ajw_url_t *, every URL of every section */
    ajw_tcache_t *tcache;         /* in pchild, created in child_init */
    struct ajw_ratelog_t *ratelog;/* in pchild: server-side refusals, one line per interval */
    struct ajw_refcache_t *refcache;   /* in pchild: bad signatures seen (NULL: off) */
    struct ajw_clientlog_t *clientlog; /* in pchild: client refusals, per-client summaries
                                        * (NULL: every refusal its own line) */
    ajw_fetcher_t *fetcher;       /* in pchild: curl behind OIDC/RFC 8414 discovery */
    /* The keys that authenticate shared copies (set in post_config, as root,
     * before any child; read-only after): the fleet key's, else the
     * per-server key's. NULL until then or when there are no JWKS URLs. */
    const struct ajw_keys_t *keys;
    /* Revocation (config phase, read-only after post_config): whether any
     * section turned status lists on; the status list slots of each JWKS
     * source (struct ajw_status_group_t *); every AuthJWKSRevoked. */
    int status_used;
    apr_array_header_t *status_groups;
    apr_array_header_t *all_revoked;  /* ajw_revoked_t * */
} ajw_mod_state_t;

extern ajw_mod_state_t ajw_mod;

/* AuthJWKSAudience resource: this entry of ajw_dir_conf.audiences (compared
 * by address) stands for the section's AuthJWKSResourceMetadata resource. */
extern const char ajw_aud_resource[];

/* Verified claims to the environment and/or request headers as c says
 * (mod_auth_jwks_export.c), with the token's alg and kid (NULL when none)
 * as JWT_ALG / JWT_KID. render (may be NULL) is an ajw_export_render block
 * for these claims: used when it was made under c's settings. All live as
 * long as r->pool. */
void ajw_export_claims(request_rec *r, const ajw_dir_conf *c, const ajw_val_t *claims,
                       const char *alg, const char *kid, const char *render,
                       size_t render_len);

/* What ajw_export_claims sets for these claims under c's settings (pass,
 * prefixes; not the mappings, which are made on each request), rendered
 * once into one block of r->pool (*len bytes) for a token-cache entry to
 * keep: a hit with the same settings replays it instead of rendering every
 * claim again. payload (payload_len bytes; may be NULL) is the JSON text
 * claims were parsed from: JWT_CLAIMS is that text itself when it is what
 * the rendering would be (ajw_claim_json_is_verbatim). NULL when claims is
 * NULL. Sets nothing in r. */
const char *ajw_export_render(request_rec *r, const ajw_dir_conf *c, const ajw_val_t *claims,
                              const char *payload, size_t payload_len, const char *alg,
                              const char *kid, size_t *len);

/* Revocation (mod_auth_jwks_revoke.c): Token Status List and AuthJWKSRevoked. */
/* Directive setters. */
const char *ajw_revoke_set_mode(cmd_parms *cmd, void *cv, const char *arg);
const char *ajw_revoke_set_prefix(cmd_parms *cmd, void *cv, const char *arg);
const char *ajw_revoke_set_fail(cmd_parms *cmd, void *cv, const char *arg);
const char *ajw_revoke_set_max_stale(cmd_parms *cmd, void *cv, const char *arg);
const char *ajw_revoke_set_file(cmd_parms *cmd, void *cv, const char *arg);
#define AJW_REVOKE_CMDS \
    AP_INIT_TAKE1("AuthJWKSStatusList", ajw_revoke_set_mode, NULL, RSRC_CONF | ACCESS_CONF, \
                  "off | on | require: check tokens against their Token Status List " \
                  "(require: refuse tokens without one) (default off)"), \
    AP_INIT_ITERATE("AuthJWKSStatusListURL", ajw_revoke_set_prefix, NULL, \
                    RSRC_CONF | ACCESS_CONF, "URL prefixes a token's status list may be " \
                    "fetched from; any other uri is refused and never fetched"), \
    AP_INIT_TAKE1("AuthJWKSStatusListFail", ajw_revoke_set_fail, NULL, RSRC_CONF | ACCESS_CONF, \
                  "closed | open: a status list that cannot be had refuses the token (503) " \
                  "or lets it through with a warning (default closed)"), \
    AP_INIT_TAKE1("AuthJWKSStatusListMaxStale", ajw_revoke_set_max_stale, NULL, \
                  RSRC_CONF | ACCESS_CONF, "seconds a status list stays usable after its " \
                  "last successful fetch (default 3600, off = forever)"), \
    AP_INIT_TAKE1("AuthJWKSRevoked", ajw_revoke_set_file, NULL, RSRC_CONF | ACCESS_CONF, \
                  "file of revoked tokens: jti:<value>, sub:<value> or kid:<value>, one a " \
                  "line; read again in the background when it changes")
/* Register the status list slots of every JWKS source (when a section
 * turned status lists on) and the deny-list sources; after the JWKS URLs,
 * before the shared store is set. OK or an HTTP error (logged). */
int ajw_revoke_post_config(server_rec *s, apr_pool_t *pconf);
/* Is the verified token (claims, header kid, verified by signer's keys)
 * revoked under c? AJW_OK, or AJW_R_REVOKED (401), AJW_R_BAD_CLAIM /
 * AJW_R_MISSING_CLAIM (401: a malformed or absent reference, a uri outside
 * AuthJWKSStatusListURL, an index beyond the list), AJW_R_STATUS_UNAVAILABLE
 * (503, fail closed) with err set and r->notes "ajw-src" naming the list.
 * Never does network I/O; the first request naming a list waits up to
 * AuthJWKSRotationWait for its first fetch. Cached tokens pass here too. */
ajw_reason_e ajw_revoke_check(request_rec *r, const ajw_dir_conf *c, const ajw_val_t *claims,
                              const char *kid, const ajw_source_t *signer, ajw_error_t *err);

/* SetHandler jwks-status (mod_auth_jwks_status.c). */
int ajw_status_handler(request_rec *r);

/* Sender-constrained tokens: DPoP (RFC 9449), certificate-bound tokens
 * (RFC 8705 §3), and protected-resource metadata (RFC 9728), in
 * mod_auth_jwks_dpop.c. */
#define AJW_DPOP_OFF         0
#define AJW_DPOP_ALLOW       1
#define AJW_DPOP_REQUIRE     2
#define AJW_DPOP_WINDOW_DEFAULT 60
#define AJW_CERT_OFF         0
#define AJW_CERT_OPTIONAL    1
#define AJW_CERT_REQUIRE     2
/* After the access token verified: the DPoP proof (when the request used the
 * DPoP scheme) or the refusal of a bound token sent as a bearer token, and the
 * client certificate binding. OK, or the HTTP status of a refusal (logged,
 * challenge noted). dpop_scheme: the token came as Authorization: DPoP. */
int ajw_dpop_check_request(request_rec *r, const ajw_dir_conf *c, int dpop_scheme,
                           const char *token, size_t len, const ajw_val_t *claims);
/* The resource of the section's AuthJWKSResourceMetadata, or NULL. */
const char *ajw_dpop_prm_resource(const ajw_dir_conf *c);
/* Hooks: replay cache (shared memory, global mutex), mod_ssl lookup, the
 * /.well-known/oauth-protected-resource handler. */
void ajw_dpop_register_hooks(apr_pool_t *p);
const char *ajw_dpop_set_mode(cmd_parms *cmd, void *cv, const char *arg);
const char *ajw_dpop_set_window(cmd_parms *cmd, void *cv, const char *arg);
const char *ajw_dpop_set_nonce(cmd_parms *cmd, void *cv, const char *arg);
const char *ajw_dpop_set_base(cmd_parms *cmd, void *cv, const char *arg);
const char *ajw_dpop_set_replay_cache(cmd_parms *cmd, void *cv, const char *arg);
const char *ajw_dpop_set_cert_bound(cmd_parms *cmd, void *cv, const char *arg);
const char *ajw_dpop_set_prm(cmd_parms *cmd, void *cv, int argc, char *const argv[]);
#define AJW_DPOP_CMDS \
    AP_INIT_TAKE1("AuthJWKSDPoP", ajw_dpop_set_mode, NULL, RSRC_CONF | ACCESS_CONF, \
                  "off | allow | require: DPoP-bound tokens (RFC 9449) (default off)"), \
    AP_INIT_TAKE1("AuthJWKSDPoPWindow", ajw_dpop_set_window, NULL, RSRC_CONF | ACCESS_CONF, \
                  "seconds a DPoP proof's iat may lie in the past, plus AuthJWKSLeeway " \
                  "(default 60)"), \
    AP_INIT_TAKE1("AuthJWKSDPoPNonce", ajw_dpop_set_nonce, NULL, OR_AUTHCFG, \
                  "off | <seconds>: require server nonces (RFC 9449 §8) valid that long " \
                  "(default off)"), \
    AP_INIT_TAKE1("AuthJWKSDPoPBaseURL", ajw_dpop_set_base, NULL, RSRC_CONF | ACCESS_CONF, \
                  "external scheme://host[:port][/prefix] the proofs' htu are compared " \
                  "with (default: the request's scheme, ServerName and port)"), \
    AP_INIT_TAKE1("AuthJWKSDPoPReplayCache", ajw_dpop_set_replay_cache, NULL, RSRC_CONF, \
                  "DPoP proofs (jti) remembered server-wide (default 65536)"), \
    AP_INIT_TAKE1("AuthJWKSCertBound", ajw_dpop_set_cert_bound, NULL, OR_AUTHCFG, \
                  "off | optional | require: certificate-bound tokens (RFC 8705) " \
                  "(default off)"), \
    AP_INIT_TAKE_ARGV("AuthJWKSResourceMetadata", ajw_dpop_set_prm, NULL, \
                      RSRC_CONF | ACCESS_CONF, "<resource> <authorization server>... " \
                      "[scopes=a,b]: serve RFC 9728 metadata and name it in challenges")

/* Metrics (mod_auth_jwks_metrics.c; counters in lib/ajw_metrics.h). */
/* Attach the server-wide counters (shared memory kept in the process pool
 * across restarts) and give every URL of ajw_mod.all_urls its slot. Call at
 * the end of post_config. Always OK: without shared memory, metrics are off. */
int ajw_mod_metrics_post_config(apr_pool_t *pconf, server_rec *s);
/* SetHandler jwks-metrics and mod_status's status_hook. */
void ajw_mod_metrics_register(apr_pool_t *p);
/* The server-wide counters as a new JSON object. */
json_t *ajw_mod_metrics_json(void);
/* One URL's fetch counters and key-set age/staleness as a new JSON object. */
json_t *ajw_mod_metrics_url_json(const char *url, int loaded, apr_time_t last_success,
                                 apr_interval_time_t refresh);
/* The shortest refresh period of the sections naming src (0: none). */
apr_interval_time_t ajw_mod_metrics_refresh_of(const ajw_source_t *src);

/* What a key fetch needs besides its URL (mod_auth_jwks_fetch.c):
 * AuthJWKSFetchHeader (a header whose value comes from a root-only file)
 * and AuthJWKSFetchProxy (an outbound proxy per URL, its credentials from
 * such a file). The parent reads the files (post_config, then its monitor
 * hook about every ten seconds) into shared memory; refresh threads take
 * the current values before each fetch. */
void ajw_fetchx_pre_config(apr_pool_t *pconf);
/* The number of directives naming a URL that no AuthJWKSURL or
 * AuthJWKSIssuer names (each logged); call once every URL is known. */
int ajw_fetchx_check(server_rec *s);
/* Shared memory for the credentials, filled as root; OK or !OK (logged). */
int ajw_fetchx_post_config(apr_pool_t *pconf, server_rec *s);
void ajw_fetchx_register_hooks(apr_pool_t *p);
/* The prepare baton of url (ajw_source_conf_t), NULL when nothing applies. */
void *ajw_fetchx_baton(const char *url, apr_pool_t *pconf);
/* ajw_source_conf_t.prepare: headers and proxy for one fetch. */
void ajw_fetchx_prepare(void *baton, ajw_fetch_req_t *req, apr_pool_t *p);
const char *ajw_fetchx_set_header(cmd_parms *cmd, void *cv, int argc, char *const argv[]);
const char *ajw_fetchx_set_proxy(cmd_parms *cmd, void *cv, const char *which,
                                 const char *proxy, const char *file);
#define AJW_FETCHX_CMDS \
    AP_INIT_TAKE_ARGV("AuthJWKSFetchHeader", ajw_fetchx_set_header, NULL, RSRC_CONF, \
                      "<JWKS URL> <Header-Name> [<scheme>] <file>: send this header with " \
                      "every fetch of the URL, its value read from a file only root may read " \
                      "(re-read when it changes; server config only)"), \
    AP_INIT_TAKE23("AuthJWKSFetchProxy", ajw_fetchx_set_proxy, NULL, RSRC_CONF, \
                   "<https JWKS URL>|* <http(s)://proxy:port>|none [<user:password file>]: " \
                   "the outbound proxy of that URL, or of every https URL (server config " \
                   "only; default: https_proxy from httpd's environment)")

/* Require providers (mod_auth_jwks_authz.c): jwt-claim, jwt-scope, and the
 * short names claim/scope shared with another module that registers them. */
void ajw_authz_register(apr_pool_t *p);
/* Take the short names back from a module loaded after this one. */
void ajw_authz_pre_config(apr_pool_t *pconf);

/* The httpd edge (mod_auth_jwks_edge.c): what keeps tokens and claim
 * headers where they belong on every path a request can take. */

/* Drop client headers whose name starts with one of `prefixes` or equals
 * one of `names` (const char *; NULL = none; '-' and '_' alike,
 * case-insensitive) or is X-JWT-Claims, and take those names out of
 * Connection so mod_proxy cannot be told to drop ours. */
void ajw_edge_strip_claim_headers(request_rec *r, const apr_array_header_t *prefixes,
                                  const apr_array_header_t *names);
/* The same with the prefix and mapped header names of a section. */
void ajw_edge_strip_section(request_rec *r, const ajw_dir_conf *c);
/* Does the server-wide pass of post_read_request already strip every name
 * the section c strips? */
int ajw_edge_section_covered(const ajw_srv_conf *sc, const ajw_dir_conf *c);
/* A fingerprint of a table's entries (their count, storage and name
 * pointers): unchanged means no entry was added, renamed or removed, so a
 * strip done at that fingerprint still holds. */
apr_uint64_t ajw_edge_headers_fp(const apr_table_t *t);
/* Remove the token from every place c takes tokens from: the Authorization
 * header (Bearer only), a header named by AuthJWKSTokenFrom header=<Name>
 * (with its scheme, when one is named), the cookie, and the query parameter wherever httpd
 * keeps the URL (args, unparsed_uri, the request line of r and of the
 * requests before it, a proxy: filename). Idempotent. */
void ajw_edge_scrub_token(request_rec *r, const ajw_dir_conf *c);
/* 1 when the token text of len bytes is still in a proxy: r->filename. */
int ajw_edge_token_in_proxy_url(request_rec *r, const char *token, size_t len);
/* Keep the response out of httpd's caches unless c allows caching after
 * authentication (then only when no quick-handler cache armed itself). */
void ajw_edge_no_cache(request_rec *r, const ajw_dir_conf *c);
/* AuthJWKSJSONErrors: the r->notes key holding a refusal's JSON body, and
 * the output filter that puts it in httpd's error answer. */
#define AJW_JSON_NOTE "ajw-json"
#define AJW_JSON_FILTER "AUTH_JWKS_JSON_ERROR"
/* Output filter name that marks responses private for outside caches. */
#define AJW_CACHE_FILTER "AUTH_JWKS_PRIVATE"
apr_status_t ajw_edge_private_filter(ap_filter_t *f, apr_bucket_brigade *bb);

/* Startup checks over the configuration tree (mod_auth_jwks_edge.c).
 * Returns the number of errors: jwks sections that no key source can
 * reach. With warn, also warns about sections that accept any issuer or
 * audience without saying so, mix issuers under a bare user claim, or may
 * lack a key source; and about file:// JWKS the httpd user cannot read. */
int ajw_edge_check_config(server_rec *s, apr_pool_t *p, int warn);

/* Directive table and config constructors (mod_auth_jwks_config.c). */
extern const command_rec ajw_mod_cmds[];
void *ajw_mod_create_dir_conf(apr_pool_t *p, char *dir);
void *ajw_mod_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
void *ajw_mod_create_srv_conf(apr_pool_t *p, server_rec *s);
void *ajw_mod_merge_srv_conf(apr_pool_t *p, void *basev, void *addv);

/* AuthJWKSCacheSocache (mod_auth_jwks_socache.c): the shared last-good
 * copies in an httpd socache provider. ajw_socache_config parses the
 * directive's <provider>[:<args>] ("none": *out = NULL) — the provider's
 * module must be loaded before the line — and returns an error text or NULL.
 * ajw_socache_post_config starts the provider (and, for providers not safe
 * across processes, a global mutex) in post_config and gives the store
 * (no leases) or an error with *why; ajw_socache_child_init reattaches the
 * mutex in each child. */
typedef struct ajw_socache_conf_t ajw_socache_conf_t;
const char *ajw_socache_config(cmd_parms *cmd, const char *arg, ajw_socache_conf_t **out);
/* 1 when the provider keeps values outside this server (memcache, redis,
 * anything but shmcb, shmht and dbm): readable and writable by whoever
 * reaches it, so only with AuthJWKSFleetKey. */
int ajw_socache_is_remote(const ajw_socache_conf_t *c);
/* The provider's name as configured ("memcache"). */
const char *ajw_socache_name(const ajw_socache_conf_t *c);
/* The record MAC key is keys->record (copied). */
apr_status_t ajw_socache_post_config(struct ajw_shared_t **out, ajw_socache_conf_t *c,
                                     const struct ajw_keys_t *keys,
                                     server_rec *s, apr_pool_t *pconf, const char **why);
void ajw_socache_child_init(ajw_socache_conf_t *c, apr_pool_t *pchild, server_rec *s);
/* Mark id (idlen bytes) as seen until expiry, fleet-wide: *seen = 1 when it
 * was marked already (by any server), else it is marked now. A lookup and a
 * store, not one atomic step: two servers marking one id within a round
 * trip of each other can both see it as new. An error when the cache cannot
 * be read or written (the caller refuses). */
apr_status_t ajw_socache_mark(ajw_socache_conf_t *c, const unsigned char *id, size_t idlen,
                              apr_time_t expiry, int *seen, apr_pool_t *p);

#endif
