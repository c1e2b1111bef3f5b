/* ajw_jws.h — compact JWS: split and parse (no crypto), then verify the
 * signature against candidate keys from one or more key sets. */
#ifndef AJW_JWS_H
#define AJW_JWS_H

#include <jansson.h>
#include <apr_pools.h>
#include "ajw_types.h"
#include "ajw_jwk.h"
#include "ajw_doc.h"

/* A parsed, not yet verified, token. All fields live in the pool given to
 * ajw_jws_parse; header and claims are released by that pool's cleanup. */
typedef struct ajw_jws_t {
    json_t *header;              /* protected header object; NULL under AJW_JWS_DOC_ALL */
    json_t *claims;              /* payload object (JWT claims); NULL when parsed as a document */
    const ajw_val_t *doc;        /* AJW_JWS_DOC: the payload object as a flat document */
    size_t doc_size;
    ajw_alg_e alg;
    const char *alg_name;        /* header "alg" as written (for logs) */
    const char *kid;             /* header "kid" or NULL */
    size_t kid_len;
    const char *typ;             /* header "typ" or NULL */
    size_t typ_len;
    const char *iss;             /* claims "iss" when a string, else NULL (UNVERIFIED until ajw_jws_verify) */
    const unsigned char *signing_input;  /* "b64(header).b64(payload)" */
    size_t signing_input_len;
    unsigned char *sig;
    size_t sig_len;
    const unsigned char *payload;        /* decoded payload bytes (NUL after payload_len) */
    size_t payload_len;
} ajw_jws_t;

/* Split and parse a compact JWS of len bytes under pol:
 *  - len > pol->max_token_len → AJW_R_TOO_LARGE
 *  - five parts (JWE) or a JSON serialization → AJW_R_UNSUPPORTED
 *  - not exactly three non-empty-header parts, bad base64url, header or
 *    payload not a JSON object, duplicate members → AJW_R_MALFORMED
 *  - alg missing/not a string/unknown/none/HS*, or not in pol->algs → AJW_R_ALG_NOT_ALLOWED
 *  - crit present (we understand no extension), b64 present → AJW_R_UNSUPPORTED
 *  - pol->typ set and header typ differs (case-insensitive, "application/"
 *    prefix optional on either side, RFC 7515 §4.1.9) → AJW_R_BAD_TYPE
 *  - kid or typ present but not a string, or an empty signature → AJW_R_MALFORMED
 *    (checked after alg, so an unsecured "alg":"none" token is named as such)
 * pol->max_token_len 0 means AJW_MAX_TOKEN_LEN_DEFAULT. Error texts quote
 * alg/kid only sanitized (printable ASCII, at most 64 bytes).
 * jku, x5u, jwk and x5c header members are ignored. No crypto is done here. */
ajw_reason_e ajw_jws_parse(ajw_jws_t **out, const char *token, size_t len,
                           const ajw_policy_t *pol, apr_pool_t *p, ajw_error_t *err);

/* ajw_jws_parse with a choice for the payload: require_object_payload 0
 * accepts any payload bytes (claims is then NULL and iss NULL), for tests of
 * the signature layer on RFC/Wycheproof vectors whose payloads are not JWT
 * claims; AJW_JWS_DOC parses the payload object (same rules) into t->doc,
 * a flat document (ajw_doc.h), and leaves t->claims NULL: what a verified
 * access token's claims are read from. AJW_JWS_DOC_ALL does the same and
 * reads the header from a document too, leaving t->header NULL (alg, kid
 * and typ are in t): for a caller that needs no other header member.
 * Every header rule above applies unchanged, with the same error texts. */
#define AJW_JWS_DOC 2
#define AJW_JWS_DOC_ALL 3
ajw_reason_e ajw_jws_parse_ex(ajw_jws_t **out, const char *token, size_t len,
                              const ajw_policy_t *pol, int require_object_payload,
                              apr_pool_t *p, ajw_error_t *err);

/* RFC 7515 §4.1.9 media type comparison: case-insensitive, a value without
 * '/' is read as "application/" + value. 1 when equal. */
int ajw_jws_typ_equal(const char *a, size_t alen, const char *b, size_t blen);

/* The header rules of ajw_jws_parse (alg policy, crit, b64, typ, kid type)
 * applied to an already parsed header, e.g. one remembered by the token
 * cache, under another location's policy. */
ajw_reason_e ajw_jws_check_header(const json_t *header, const ajw_policy_t *pol,
                                  ajw_error_t *err);

/* The same rules for what a cached token kept of its header: alg (parsed
 * once, so known) against the policy's list, typ (NULL when absent)
 * against its expected type. crit and b64 never pass parsing, and kid was
 * a string. Same reasons and texts as ajw_jws_check_header. */
ajw_reason_e ajw_jws_check_cached(ajw_alg_e alg, const char *typ, const ajw_policy_t *pol,
                                  ajw_error_t *err);

/* Does key k qualify for token t? kid exact when the token has one (a key
 * without kid does not match a token with kid); alg fits kty/crv; JWK alg
 * (when present) equals the token's; use (when present) is "sig"; key_ops
 * (when present) contains "verify". */
int ajw_jws_key_fits(const ajw_jws_t *t, const ajw_key_t *k);

/* Verify t's signature against every fitting key in sets[0..nsets-1], in
 * order, until one verifies. A token without kid is tried against at most
 * the first AJW_MAX_NOKID_TRIES fitting keys (of all sets together), so a
 * forged kid-less token costs a bounded number of signature checks.
 * *used (when not NULL) gets the key that did.
 * AJW_R_NO_KEY when no key fits; AJW_R_BAD_SIGNATURE when keys fit but none
 * verified. */
ajw_reason_e ajw_jws_verify(const ajw_jws_t *t, const ajw_keyset_t *const *sets, int nsets,
                            const ajw_key_t **used, ajw_error_t *err);

#endif
