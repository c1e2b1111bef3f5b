/* ajw_statuslist.h — Token Status List (draft-ietf-oauth-status-list): the
 * status reference a token carries, the Status List Token that answers it
 * (a JWT of type statuslist+jwt), and the compressed bit array inside.
 *
 * A referenced token holds
 *   "status": {"status_list": {"idx": N, "uri": "https://.../statuslists/1"}}
 * and the Status List Token at uri holds
 *   {"sub": uri, "iat": ..., ["exp": ...,] ["ttl": ...,]
 *    "status_list": {"bits": 1|2|4|8, "lst": base64url(zlib(bytes))}}
 * where entry i is the bits-wide field starting at bit i * bits of the byte
 * array, bits numbered from the least significant bit of each byte.
 * Status 0 is VALID; anything else (1 INVALID, 2 SUSPENDED, others) is not.
 *
 * Hostile lists: lst is inflated into a buffer capped before inflation
 * (max_bytes, AJW_STATUSLIST_MAX_BYTES_DEFAULT unless the caller says), so
 * a decompression bomb costs at most that much memory and time. */
#ifndef AJW_STATUSLIST_H
#define AJW_STATUSLIST_H

#include <jansson.h>
#include "ajw_doc.h"
#include <apr_pools.h>
#include "ajw_types.h"
#include "ajw_jwk.h"

#define AJW_STATUSLIST_TYP               "statuslist+jwt"
#define AJW_STATUSLIST_MEDIA_TYPE        "application/statuslist+jwt"
/* Inflated bytes of one list: 4 MiB = 32 Mi one-bit entries. */
#define AJW_STATUSLIST_MAX_BYTES_DEFAULT (4u * 1024u * 1024u)
/* Bytes of one Status List Token (the compact JWT as fetched). */
#define AJW_STATUSLIST_MAX_JWT_DEFAULT   (2u * 1024u * 1024u)
/* Longest uri a reference may name (longer ones are refused, never fetched). */
#define AJW_STATUSLIST_URI_MAX           1024
/* Largest idx accepted in a reference (2^53 - 1: exact in any JSON reader). */
#define AJW_STATUSLIST_IDX_MAX           9007199254740991ULL

/* A verified Status List Token. Everything lives in pool. */
typedef struct ajw_statuslist_t {
    apr_pool_t *pool;             /* owns the list; unmanaged when made with parent NULL */
    const char *uri;              /* its sub, equal to the uri it was fetched for */
    unsigned bits;                /* 1, 2, 4 or 8 */
    const unsigned char *bytes;   /* the inflated array */
    size_t len;
    long long iat;                /* seconds since the epoch */
    long long exp;                /* 0 = none */
    long long ttl;                /* seconds, -1 = none */
    const char *kid;              /* kid of the key that signed it, NULL when none */
} ajw_statuslist_t;

/* The status reference of a token's claims: 0 when there is no "status"
 * claim or it has no "status_list" member (the token names no list); 1 with
 * *idx and *uri (borrowed from claims) set; -1 with err (AJW_R_BAD_CLAIM)
 * when a reference is present but malformed: status or status_list not an
 * object, idx not an integer in [0, AJW_STATUSLIST_IDX_MAX], uri not a
 * non-empty string of at most AJW_STATUSLIST_URI_MAX bytes without controls. */
int ajw_status_ref(const ajw_val_t *claims, unsigned long long *idx, const char **uri,
                   ajw_error_t *err);

/* Decode a status_list object ({"bits": ..., "lst": ...}; other members are
 * ignored) into *bits and the inflated array (*bytes, *len, from p). Refused
 * with err: bits absent or not 1, 2, 4 or 8 (AJW_R_BAD_CLAIM); lst absent,
 * not a string, not strict base64url, not a zlib stream, or empty once
 * inflated (AJW_R_MALFORMED); more than max_bytes once inflated
 * (AJW_R_TOO_LARGE, nothing beyond the cap is inflated). max_bytes 0 means
 * AJW_STATUSLIST_MAX_BYTES_DEFAULT. */
ajw_reason_e ajw_statuslist_decode(unsigned *bits, const unsigned char **bytes, size_t *len,
                                   const json_t *status_list, size_t max_bytes,
                                   apr_pool_t *p, ajw_error_t *err);

/* Entry idx of an array of len bytes of bits-wide entries into *status:
 * 0 on success, -1 when idx is beyond the array (the caller refuses). */
int ajw_statuslist_entry(const unsigned char *bytes, size_t len, unsigned bits,
                         unsigned long long idx, unsigned *status);

/* ajw_statuslist_entry on a verified list. */
int ajw_statuslist_get(const ajw_statuslist_t *l, unsigned long long idx, unsigned *status);

/* Parse and verify the Status List Token jwt (len bytes) fetched for uri:
 * compact JWS, typ statuslist+jwt (AJW_R_BAD_TYPE otherwise), alg in algs
 * (0: AJW_ALGS_DEFAULT), signed by a key of keys (AJW_R_NO_KEY /
 * AJW_R_BAD_SIGNATURE: a list signed by another issuer's key fails here);
 * sub a string equal to uri (AJW_R_BAD_CLAIM); iat a numeric date not after
 * now + leeway (AJW_R_MISSING_CLAIM / AJW_R_ISSUED_IN_FUTURE); exp, when
 * present, after now - leeway (AJW_R_EXPIRED); ttl, when present, a
 * non-negative integer; status_list as ajw_statuslist_decode. jwt over
 * max_jwt bytes: AJW_R_TOO_LARGE (0: AJW_STATUSLIST_MAX_JWT_DEFAULT).
 * On success *out is a new list whose pool is a child of parent (NULL: an
 * unmanaged pool; free it with ajw_statuslist_free). Texts name the claim
 * and reason, never list bytes or key material. */
ajw_reason_e ajw_statuslist_parse(ajw_statuslist_t **out, const char *jwt, size_t len,
                                  const char *uri, const ajw_keyset_t *keys, unsigned algs,
                                  long long now, long long leeway, size_t max_jwt,
                                  size_t max_bytes, apr_pool_t *parent, ajw_error_t *err);

/* Seconds until the list should be fetched again: ttl when present, capped
 * by the time left before exp when present; -1 when it says neither. */
long long ajw_statuslist_refresh_hint(const ajw_statuslist_t *l, long long now);

/* Destroy a list and its pool (NULL is fine). */
void ajw_statuslist_free(ajw_statuslist_t *l);

/* The name of a status value for logs: "VALID", "INVALID", "SUSPENDED", or
 * "status N" text in buf. */
const char *ajw_statuslist_status_name(unsigned status, char buf[24]);

#endif
