/* ajw_jwk.h — JWK → usable public key, JWKS → immutable key set. */
#ifndef AJW_JWK_H
#define AJW_JWK_H

#include <openssl/evp.h>
#include <jansson.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include "ajw_types.h"

/* One usable verification key. Immutable once built; lives in its key set's pool. */
typedef struct ajw_key_t {
    const char *kid;        /* NULL when the JWK has none */
    size_t kid_len;
    ajw_kty_e kty;
    ajw_crv_e crv;          /* AJW_CRV_NONE for RSA */
    const char *alg_name;   /* JWK "alg" as written, NULL when absent */
    ajw_alg_e alg;          /* parsed JWK "alg"; AJW_ALG_UNKNOWN when absent or unknown */
    const char *use;        /* JWK "use", NULL when absent */
    int has_key_ops;        /* key_ops present */
    int can_verify;         /* key_ops absent, or contains "verify" */
    int bits;
    EVP_PKEY *pkey;
} ajw_key_t;

/* A parsed JWKS: usable keys plus a note for each key skipped or warned
 * about. Immutable after ajw_keyset_parse returns; safe to read from many
 * threads. Everything lives in `pool`. */
typedef struct ajw_keyset_t {
    apr_pool_t *pool;
    apr_array_header_t *keys;    /* ajw_key_t * */
    apr_array_header_t *notes;   /* const char *: "key 2 (kid=abc): skipped: oct keys are never used" */
} ajw_keyset_t;

/* Build a key from one JWK object. RSA (n,e), EC (crv,x,y), OKP (crv,x),
 * x5c (first certificate; when n/e or x/y are present too they must equal
 * the certificate's key). oct → AJW_R_BAD_KEY. Private members (d, p, q,
 * dp, dq, qi, oth, k) are ignored and *warn is set to a note (else NULL).
 * An x5c element is standard base64 (not base64url). */
ajw_reason_e ajw_jwk_parse(ajw_key_t **out, const char **warn, const json_t *jwk,
                           apr_pool_t *p, ajw_error_t *err);

/* Parse a JWKS document (len bytes, at most max_len) into a new key set
 * whose pool is created as a child of `parent` (NULL: an unmanaged pool the
 * caller destroys with ajw_keyset_free). The document must be an object with
 * a "keys" array (else AJW_R_BAD_KEY / AJW_R_MALFORMED); bad keys are skipped
 * with a note. A document whose keys are all skipped still succeeds with zero
 * keys. At most AJW_MAX_KEYS keys are considered; more is a note. */
ajw_reason_e ajw_keyset_parse(ajw_keyset_t **out, const char *buf, size_t len, size_t max_len,
                              apr_pool_t *parent, ajw_error_t *err);

/* 1 when a and b hold the same usable keys, in any order: same count, and
 * every key of a has one in b with equal kid, kty, crv, alg, use, key_ops
 * verdict and public key. Lets a refresh that only reorders or reformats a
 * JWKS keep the published set (and the token cache) as it is. */
int ajw_keyset_same_keys(const ajw_keyset_t *a, const ajw_keyset_t *b);

/* Destroy a key set and its pool (NULL is fine). */
void ajw_keyset_free(ajw_keyset_t *ks);

/* RFC 7638 thumbprint: base64url(SHA-256) of the required members of the
 * JWK's kty (RSA: e kty n; EC: crv kty x y; OKP: crv kty x), which must be
 * strings, as JSON in lexicographic order without whitespace. *out is a pool
 * string. AJW_R_BAD_KEY for another kty or a missing/non-string member. */
ajw_reason_e ajw_jwk_thumbprint(const char **out, const json_t *jwk, apr_pool_t *p,
                                ajw_error_t *err);

#endif
