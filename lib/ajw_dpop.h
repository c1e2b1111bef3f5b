/* ajw_dpop.h — sender-constrained tokens without httpd: DPoP proofs
 * (RFC 9449), the htu normalisation they are compared with, a replay table
 * that lives in memory the caller provides (shared memory in the module),
 * and certificate thumbprints for mutual-TLS-bound tokens (RFC 8705 §3). */
#ifndef AJW_DPOP_H
#define AJW_DPOP_H

#include <jansson.h>
#include <apr_pools.h>
#include "ajw_types.h"

#define AJW_DPOP_TYP         "dpop+jwt"
#define AJW_DPOP_MAX_LEN     8192    /* bytes of one proof */
#define AJW_DPOP_MAX_JTI     256     /* bytes of a proof's jti */
#define AJW_DPOP_MAX_URL     4096    /* bytes of an htu */
#define AJW_DPOP_MAX_RSA_BITS 4096   /* modulus of an RSA proof key (JWKS keys: 16384) */

/* What one request expects of its proof. */
typedef struct ajw_dpop_req_t {
    const char *method;       /* request method; htm must equal it exactly */
    const char *htu;          /* expected htu, already through ajw_dpop_htu_normalize */
    unsigned algs;            /* accepted proof algs; only asymmetric ones ever verify */
    long long now;            /* seconds since the epoch */
    long long window;         /* iat may be at most window + leeway seconds in the past */
    long long leeway;         /* ... and at most leeway seconds in the future */
    const char *token;        /* access token presented with the proof (for ath); NULL: none */
    size_t token_len;
    const char *jkt;          /* cnf.jkt of the verified access token; NULL: not checked */
} ajw_dpop_req_t;

/* A proof that passed every check. Lives in the pool given to ajw_dpop_check. */
typedef struct ajw_dpop_proof_t {
    const char *jkt;          /* RFC 7638 thumbprint of the proof's jwk */
    const char *jti;          /* for the replay check (the caller's job) */
    size_t jti_len;
    long long iat;
    const char *alg_name;
    const char *nonce;        /* the nonce claim, NULL when absent (checked by the caller) */
    size_t nonce_len;
} ajw_dpop_proof_t;

/* Check a DPoP proof of len bytes against req (RFC 9449 §4.3): a compact JWS
 * of at most AJW_DPOP_MAX_LEN bytes, typ dpop+jwt (AJW_R_BAD_TYPE), alg in
 * req->algs and asymmetric (AJW_R_ALG_NOT_ALLOWED), header jwk a public key
 * (absent, not an object, oct, or holding any private member: AJW_R_BAD_KEY),
 * the key's thumbprint equal to req->jkt when set and an RSA modulus of at
 * most AJW_DPOP_MAX_RSA_BITS (AJW_R_BAD_KEY; both before any key import or
 * signature work), the signature with that key (AJW_R_BAD_SIGNATURE), jti a
 * non-empty string of at most AJW_DPOP_MAX_JTI bytes, htm equal to
 * req->method, htu equal to req->htu after normalisation, iat a number
 * within the window (AJW_R_ISSUED_IN_FUTURE, AJW_R_TOO_OLD), ath =
 * base64url(SHA-256(token)) when req->token is set (claims:
 * AJW_R_MISSING_CLAIM / AJW_R_BAD_CLAIM). The replay check is left to the
 * caller (jti and iat are in *out). err->text never quotes the proof. */
ajw_reason_e ajw_dpop_check(ajw_dpop_proof_t **out, const char *proof, size_t len,
                            const ajw_dpop_req_t *req, apr_pool_t *p, ajw_error_t *err);

/* Normalise an absolute http(s) URL of len bytes for htu comparison (RFC 9449
 * §4.3 with RFC 3986 §6.2.2 and §6.2.3): scheme and host lower-cased, the
 * default port (80 for http, 443 for https) and an empty port dropped,
 * percent-encodings upper-cased and those of unreserved characters decoded,
 * dot segments removed, an empty path made "/", query and fragment dropped.
 * NULL for anything else: another scheme, no host, userinfo, a bad port or
 * percent-encoding, bytes outside printable ASCII, over AJW_DPOP_MAX_URL. */
const char *ajw_dpop_htu_normalize(const char *url, size_t len, apr_pool_t *p);

/* base64url(SHA-256(data)) — the ath of a token, x5t#S256 of a DER
 * certificate. NULL only if hashing fails. */
const char *ajw_dpop_sha256_b64u(const void *data, size_t len, apr_pool_t *p);

/* RFC 8705 §3.1 x5t#S256 of a PEM certificate (the first CERTIFICATE block
 * of pem): base64url(SHA-256(DER)). NULL when there is no well-formed block. */
const char *ajw_dpop_cert_thumbprint(const char *pem, apr_pool_t *p);

/* 1 when the strings are equal. Time depends on the lengths only, never on
 * where the contents differ (for thumbprints and hashes). */
int ajw_dpop_ct_equal(const char *a, size_t alen, const char *b, size_t blen);

/* --- server nonces (RFC 9449 §8) ------------------------------------
 * Stateless: a nonce is base64url(8-byte big-endian issue time || the first
 * 16 bytes of HMAC-SHA-256(secret, those 8 bytes)), so every process holding
 * the secret can check one without shared state. */
#define AJW_DPOP_NONCE_SECRET 32
#define AJW_DPOP_NONCE_SKEW   5      /* seconds a nonce's time may lie ahead */

/* A nonce for time now, as a pool string; NULL if HMAC fails. */
const char *ajw_dpop_nonce_make(const unsigned char secret[AJW_DPOP_NONCE_SECRET],
                                long long now, apr_pool_t *p);

/* Check nonce (len bytes) against secret: AJW_OK when it is one of ours and
 * was made in [now - lifetime, now + AJW_DPOP_NONCE_SKEW]; *age gets now
 * minus its time. AJW_R_MALFORMED (not ours: wrong size, bad MAC),
 * AJW_R_TOO_OLD, AJW_R_ISSUED_IN_FUTURE. The MAC is compared in constant time. */
ajw_reason_e ajw_dpop_nonce_check(long long *age,
                                  const unsigned char secret[AJW_DPOP_NONCE_SECRET],
                                  const char *nonce, size_t len, long long now,
                                  long long lifetime, apr_pool_t *p);

/* --- replay table ---------------------------------------------------
 * A fixed-size set of (key, owner, expiry) held in caller memory, e.g.
 * shared memory mapped by every child process. It locks itself: buckets
 * share a few dozen process-shared, robust mutexes kept in the table, so
 * ajw_replay_add is safe from any thread of any process that maps it and
 * costs no system call unless two proofs meet on one lock. Entries
 * are kept in buckets of AJW_REPLAY_WAYS; an expired entry is reused. One
 * proof key (its owner tag) holds at most AJW_REPLAY_PER_KEY live entries of
 * a bucket, so one client choosing its jti values fills at most that share
 * of the table: past it, and in a bucket full of live entries, its own
 * oldest entry there gives way (only its own older proofs lose replay
 * protection); a bucket full of other keys' live entries is reported as
 * such (the caller fails closed). */
#define AJW_REPLAY_WAYS 8
#define AJW_REPLAY_PER_KEY 3

typedef struct ajw_replay_t ajw_replay_t;

typedef enum {
    AJW_REPLAY_NEW = 0,       /* stored */
    AJW_REPLAY_SEEN,          /* a live entry holds the key: a replay */
    AJW_REPLAY_FULL,          /* no room in its bucket; nothing stored */
    AJW_REPLAY_NEW_EVICTED,   /* stored in place of the owner's own oldest live entry */
    AJW_REPLAY_LOCK_FAILED    /* its lock could not be taken; nothing stored */
} ajw_replay_e;

/* Bytes needed for at least `entries` entries (at least one bucket). */
size_t ajw_replay_size(size_t entries);

/* Format size bytes at mem (aligned for 8-byte integers) as an empty table,
 * its locks made process-shared: once, in the process that maps the memory,
 * before any other process or thread uses it. NULL when size is too small
 * for one bucket or the locks cannot be made. */
ajw_replay_t *ajw_replay_init(void *mem, size_t size);

/* Destroy the table's locks (a table no process uses any more; on Linux
 * they hold no kernel resource, so a table that is simply unmapped at exit
 * needs no call). */
void ajw_replay_fini(ajw_replay_t *t);

/* The replay key of a proof: SHA-256 over jkt, a NUL and jti, so that one
 * client's jti values never collide with another's. 0 on success. */
int ajw_replay_key(unsigned char key[32], const char *jkt, const char *jti, size_t jti_len);

/* The owner tag of a proof key, never 0 (0 on failure): the first 8 bytes
 * of its thumbprint when jkt is one (43 characters of base64url, the
 * SHA-256 they stand for), else the first 8 bytes of SHA-256(jkt). */
unsigned long long ajw_replay_owner(const char *jkt);

/* Remember key of `owner` until `expires` (seconds). AJW_REPLAY_SEEN when a
 * live entry (expires > now) holds it already. Otherwise stored: in a free
 * or expired entry of its bucket while the owner holds fewer than
 * AJW_REPLAY_PER_KEY live entries there (AJW_REPLAY_NEW), else in place of
 * the owner's live entry there that expires first (AJW_REPLAY_NEW_EVICTED);
 * AJW_REPLAY_FULL when the bucket is full of other owners' live entries;
 * AJW_REPLAY_LOCK_FAILED when the bucket's lock cannot be taken (the caller
 * fails closed). A lock whose holder died is taken over (robust). */
ajw_replay_e ajw_replay_add(ajw_replay_t *t, const unsigned char key[32],
                            unsigned long long owner, long long expires, long long now);

/* Capacity in entries. */
size_t ajw_replay_capacity(const ajw_replay_t *t);

/* How many times a lock was taken over from a process that died holding it. */
unsigned long long ajw_replay_takeovers(const ajw_replay_t *t);

#endif
