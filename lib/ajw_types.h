/* ajw_types.h — types shared by every lib/ file of mod_auth_jwks.
 *
 * lib/ never includes httpd headers. Every exported symbol carries the
 * prefix ajw_ / AJW_ (auth_jwks), because httpd modules share one symbol space.
 */
#ifndef AJW_TYPES_H
#define AJW_TYPES_H

#include <stddef.h>
#include <apr_pools.h>
#include <apr_tables.h>

/* Why a token, key or document was rejected. AJW_OK (0) means accepted.
 * The glue maps codes to HTTP answers; ajw_reason_name() gives a stable
 * lower-case name for log lines. Never renumber: tests compare codes. */
typedef enum {
    AJW_OK = 0,
    AJW_R_MALFORMED,         /* not a well-formed compact JWS / bad base64url / bad JSON */
    AJW_R_TOO_LARGE,         /* token or document over its size cap */
    AJW_R_UNSUPPORTED,       /* JWE, JSON serialization, crit, b64:false */
    AJW_R_ALG_NOT_ALLOWED,   /* alg absent, unknown, "none", HS*, or not in the allowlist */
    AJW_R_BAD_TYPE,          /* typ header does not match the required one */
    AJW_R_NO_KEY,            /* no key in the key set fits kid + alg */
    AJW_R_BAD_SIGNATURE,     /* a key fits but the signature does not verify */
    AJW_R_EXPIRED,           /* exp + leeway <= now */
    AJW_R_NOT_YET_VALID,     /* nbf - leeway > now */
    AJW_R_ISSUED_IN_FUTURE,  /* iat - leeway > now */
    AJW_R_TOO_OLD,           /* now - iat > max age */
    AJW_R_BAD_ISSUER,        /* iss missing or not configured */
    AJW_R_BAD_AUDIENCE,      /* aud missing or none configured matches */
    AJW_R_MISSING_CLAIM,     /* a required claim is absent */
    AJW_R_BAD_CLAIM,         /* a registered claim has the wrong type or range */
    AJW_R_BAD_KEY,           /* a JWK or JWKS could not be used */
    AJW_R_NO_KEYS,           /* the key store has never loaded keys for this source */
    AJW_R_KEYS_STALE,        /* keys older than their max_stale (IdP failing too long) */
    AJW_R_INTERNAL,          /* allocation or library failure: fail closed */
    AJW_R_REVOKED,           /* the token's status is not VALID, or it is on the deny-list */
    AJW_R_STATUS_UNAVAILABLE,/* its status list (or the deny-list) cannot be had: fail closed */
    AJW_R__COUNT
} ajw_reason_e;

/* A rejection: a code plus a short human text. The text names kid, alg,
 * claim names and limits, never the token, a signature or key material. */
typedef struct ajw_error_t {
    ajw_reason_e code;
    char text[200];
} ajw_error_t;

/* Set err (when not NULL) to code and a printf-style text; returns code,
 * so callers can write `return ajw_error_set(err, AJW_R_..., "...")`. */
ajw_reason_e ajw_error_set(ajw_error_t *err, ajw_reason_e code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Stable lower-case name of a reason, e.g. "expired"; "unknown" if out of range. */
const char *ajw_reason_name(ajw_reason_e code);

/* JWS algorithms we know. AJW_ALG_UNKNOWN covers every other name. HS* are
 * known only so that they can be named in a rejection; they never verify
 * with keys from a JWKS. */
typedef enum {
    AJW_ALG_UNKNOWN = 0,
    AJW_ALG_RS256, AJW_ALG_RS384, AJW_ALG_RS512,
    AJW_ALG_PS256, AJW_ALG_PS384, AJW_ALG_PS512,
    AJW_ALG_ES256, AJW_ALG_ES384, AJW_ALG_ES512,
    AJW_ALG_EDDSA,
    AJW_ALG_HS256, AJW_ALG_HS384, AJW_ALG_HS512,
    AJW_ALG_NONE,
    AJW_ALG__COUNT
} ajw_alg_e;

#define AJW_ALG_BIT(a) (1u << (unsigned)(a))
/* The default allowlist: every asymmetric algorithm. */
#define AJW_ALGS_DEFAULT \
    (AJW_ALG_BIT(AJW_ALG_RS256) | AJW_ALG_BIT(AJW_ALG_RS384) | AJW_ALG_BIT(AJW_ALG_RS512) | \
     AJW_ALG_BIT(AJW_ALG_PS256) | AJW_ALG_BIT(AJW_ALG_PS384) | AJW_ALG_BIT(AJW_ALG_PS512) | \
     AJW_ALG_BIT(AJW_ALG_ES256) | AJW_ALG_BIT(AJW_ALG_ES384) | AJW_ALG_BIT(AJW_ALG_ES512) | \
     AJW_ALG_BIT(AJW_ALG_EDDSA))

/* Exact, case-sensitive name → alg (len bytes, need not be NUL-terminated).
 * Unknown names give AJW_ALG_UNKNOWN. */
ajw_alg_e ajw_alg_from_name(const char *name, size_t len);
/* Canonical name of an alg ("RS256"); "unknown" for AJW_ALG_UNKNOWN. */
const char *ajw_alg_name(ajw_alg_e alg);

/* The n bytes at in as 2n lowercase hex digits at out (no NUL written). */
void ajw_hex_encode(char *out, const unsigned char *in, size_t n);

/* Key types and curves of a JWK. */
typedef enum { AJW_KTY_UNKNOWN = 0, AJW_KTY_RSA, AJW_KTY_EC, AJW_KTY_OKP, AJW_KTY_OCT } ajw_kty_e;
typedef enum {
    AJW_CRV_NONE = 0, AJW_CRV_P256, AJW_CRV_P384, AJW_CRV_P521, AJW_CRV_ED25519, AJW_CRV_ED448
} ajw_crv_e;

/* Limits, all overridable by the caller where a function takes them. */
#define AJW_MAX_TOKEN_LEN_DEFAULT   16384   /* bytes of a compact token */
#define AJW_MAX_JSON_DEPTH          16      /* nesting of a header, payload or JWKS */
#define AJW_MAX_JWKS_LEN_DEFAULT    (512 * 1024)
#define AJW_MAX_KEYS                256     /* keys considered in one JWKS */
#define AJW_MAX_NOKID_TRIES         8       /* keys one kid-less token may be tried against */
#define AJW_RSA_MIN_BITS            2048

/* What a token must satisfy besides its signature. Fill with
 * ajw_policy_init() then override. Arrays hold `const char *`; an empty or
 * NULL array means "no check" for issuers and audiences. */
typedef struct ajw_policy_t {
    unsigned algs;                    /* bitmask of AJW_ALG_BIT(); default AJW_ALGS_DEFAULT */
    size_t max_token_len;             /* default AJW_MAX_TOKEN_LEN_DEFAULT */
    long long leeway;                 /* seconds, default 60 */
    int require_exp;                  /* default 1 */
    apr_array_header_t *issuers;      /* exact iss values; NULL/empty = any iss (iss not required) */
    apr_array_header_t *audiences;    /* NULL/empty = aud not checked */
    const char *typ;                  /* NULL = typ not checked; else RFC 7515 §4.1.9 comparison */
    apr_array_header_t *required;     /* claim names that must be present */
    long long max_age;                /* 0 = off; else iat required and now - iat <= max_age + leeway */
} ajw_policy_t;

/* Set the defaults above; arrays NULL. */
void ajw_policy_init(ajw_policy_t *pol);

#endif
