/* ajw_crypt.h — the only file that talks to OpenSSL (EVP API of OpenSSL 3).
 * Every EVP_PKEY made here is freed by a cleanup on the pool given. */
#ifndef AJW_CRYPT_H
#define AJW_CRYPT_H

#include <openssl/evp.h>
#include <apr_pools.h>
#include "ajw_types.h"

/* RSA public key from big-endian n and e. Rejects n < AJW_RSA_MIN_BITS,
 * leading zero bytes making n shorter than claimed, e even, e < 3 or e
 * longer than 4 bytes, and moduli with the ROCA fingerprint (AJW_R_BAD_KEY). */
ajw_reason_e ajw_crypt_rsa_key(EVP_PKEY **out, const unsigned char *n, size_t nlen,
                               const unsigned char *e, size_t elen,
                               apr_pool_t *p, ajw_error_t *err);

/* EC public key on crv (P-256/384/521) from x, y of exactly the field size;
 * the point must be on the curve and not the identity. */
ajw_reason_e ajw_crypt_ec_key(EVP_PKEY **out, ajw_crv_e crv,
                              const unsigned char *x, size_t xlen,
                              const unsigned char *y, size_t ylen,
                              apr_pool_t *p, ajw_error_t *err);

/* OKP public key (Ed25519: 32 bytes, Ed448: 57 bytes). */
ajw_reason_e ajw_crypt_okp_key(EVP_PKEY **out, ajw_crv_e crv,
                               const unsigned char *x, size_t xlen,
                               apr_pool_t *p, ajw_error_t *err);

/* Public key of a DER X.509 certificate (the first x5c element). *kty and
 * *crv describe what was found; *bits the key size. */
ajw_reason_e ajw_crypt_cert_key(EVP_PKEY **out, ajw_kty_e *kty, ajw_crv_e *crv, int *bits,
                                const unsigned char *der, size_t len,
                                apr_pool_t *p, ajw_error_t *err);

/* 1 when both public keys are equal, else 0. */
int ajw_crypt_key_equal(const EVP_PKEY *a, const EVP_PKEY *b);

/* Bits of a key (RSA modulus, EC field). */
int ajw_crypt_key_bits(const EVP_PKEY *k);

/* Does alg belong to a key of this kty/crv? (RS*, PS* → RSA; ES256 → P-256,
 * ES384 → P-384, ES512 → P-521; EdDSA → Ed25519/Ed448; others never.) */
int ajw_crypt_alg_fits(ajw_alg_e alg, ajw_kty_e kty, ajw_crv_e crv);

/* Another reference to key k, dropped when p is cleared; returns k. For a
 * key kept beyond the pool that imported it (the DPoP proof-key cache). */
EVP_PKEY *ajw_crypt_key_share(EVP_PKEY *k, apr_pool_t *p);

/* A reference of k's that no pool owns: taken by ajw_crypt_key_hold,
 * given back by ajw_crypt_key_drop (NULL is a no-op). */
EVP_PKEY *ajw_crypt_key_hold(EVP_PKEY *k);
void ajw_crypt_key_drop(EVP_PKEY *k);

/* Verify sig over input with key under alg. ES*: sig must be raw r||s of
 * exactly 2 × field bytes (DER rejected); it is converted to DER here.
 * PS*: salt length = hash length, MGF1 with the same hash. EdDSA: pure.
 * Returns AJW_OK, AJW_R_BAD_SIGNATURE, AJW_R_ALG_NOT_ALLOWED (alg not
 * asymmetric / does not fit key) or AJW_R_INTERNAL. Thread-safe: each
 * calling thread keeps up to 8 verify contexts of recent (key, alg) pairs,
 * each holding a reference on its key (so a freed key set's EVP_PKEYs live
 * until evicted or the thread exits). */
ajw_reason_e ajw_crypt_verify(ajw_alg_e alg, EVP_PKEY *key,
                              const unsigned char *input, size_t inlen,
                              const unsigned char *sig, size_t siglen,
                              ajw_error_t *err);

/* SHA-256 of data into out[32]. Returns 0 on success. */
int ajw_crypt_sha256(unsigned char out[32], const void *data, size_t len);

/* HMAC-SHA-256 of data under key into out[32]. Returns 0 on success. */
int ajw_crypt_hmac_sha256(unsigned char out[32], const void *key, size_t keylen,
                          const void *data, size_t len);

/* HKDF-SHA-256 (RFC 5869) of ikm with salt and info (text labels) into
 * out[outlen]. Returns 0 on success; on failure out is wiped. */
int ajw_crypt_hkdf_sha256(unsigned char *out, size_t outlen, const void *ikm, size_t ikmlen,
                          const char *salt, const char *info);

/* 1 when the len bytes at a and b are equal, else 0; the time taken does not
 * depend on where they differ (for MACs). */
int ajw_crypt_equal(const void *a, const void *b, size_t len);

/* Overwrite len bytes at p with zeros in a way the compiler keeps (secrets). */
void ajw_crypt_wipe(void *p, size_t len);

#endif
