/* ajw_dpop.c — DPoP proofs (RFC 9449), htu normalisation, the replay table
 * and certificate thumbprints (RFC 8705). The proof is hostile input: it is
 * size-capped before any work, parsed by the same strict JWS code as tokens,
 * and no byte of it reaches an error text. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <apr_lib.h>
#include <apr_strings.h>

#include "ajw_b64.h"
#include "ajw_crypt.h"
#include "ajw_json.h"
#include "ajw_jwk.h"
#include "ajw_jws.h"
#include "ajw_dpop.h"

/* ------------------------------------------------------------------ */
/* Hashes and comparisons                                               */

const char *ajw_dpop_sha256_b64u(const void *data, size_t len, apr_pool_t *p)
{
    unsigned char h[32];
    if (ajw_crypt_sha256(h, data, len) != 0)
        return NULL;
    return ajw_b64url_encode(h, sizeof(h), p);
}

int ajw_dpop_ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i;
    unsigned char d = 0;
    if (alen != blen)
        return 0;
    for (i = 0; i < alen; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

const char *ajw_dpop_cert_thumbprint(const char *pem, apr_pool_t *p)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    static const char end[] = "-----END CERTIFICATE-----";
    const char *s, *e;
    char *b64, *o;
    unsigned char *der;
    size_t derlen;

    if (!pem || !(s = strstr(pem, begin)))
        return NULL;
    s += sizeof(begin) - 1;
    if (!(e = strstr(s, end)))
        return NULL;
    o = b64 = apr_palloc(p, (size_t)(e - s) + 1);
    for (; s < e; s++) {
        if (*s == '\r' || *s == '\n' || *s == ' ' || *s == '\t')
            continue;               /* PEM wraps lines; the strict decoder wants none */
        *o++ = *s;
    }
    *o = '\0';
    if (ajw_b64std_decode(&der, &derlen, b64, (size_t)(o - b64), p) != APR_SUCCESS || !derlen)
        return NULL;
    return ajw_dpop_sha256_b64u(der, derlen, p);
}

/* ------------------------------------------------------------------ */
/* htu normalisation                                                    */

static int is_unreserved(int c)
{
    return apr_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = apr_tolower(c);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Copy in[0..len) to out with percent-encodings normalised; lower-case
 * everything else when lower. Returns the bytes written or -1. out must hold
 * len bytes. Only printable ASCII other than space and '"' is allowed. */
static long pct_normalize(char *out, const char *in, size_t len, int lower)
{
    size_t i, o = 0;
    for (i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '\\')
            return -1;
        if (c == '%') {
            int hi, lo, v;
            if (i + 2 >= len)
                return -1;
            hi = hexval((unsigned char)in[i + 1]);
            lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            v = hi * 16 + lo;
            if (is_unreserved(v)) {
                out[o++] = (char)(lower ? apr_tolower(v) : v);
            }
            else {
                out[o++] = '%';
                out[o++] = (char)apr_toupper(in[i + 1]);
                out[o++] = (char)apr_toupper(in[i + 2]);
            }
            i += 2;
            continue;
        }
        out[o++] = (char)(lower ? apr_tolower(c) : c);
    }
    return (long)o;
}

/* RFC 3986 §5.2.4 remove_dot_segments, in place on a NUL-terminated path. */
static void remove_dot_segments(char *path)
{
    char *in = path, *out = path;
    while (*in) {
        if (!strncmp(in, "../", 3))
            in += 3;
        else if (!strncmp(in, "./", 2))
            in += 2;
        else if (!strncmp(in, "/./", 3))
            in += 2;
        else if (!strcmp(in, "/.")) {
            in[1] = '\0';           /* "/." → "/" */
        }
        else if (!strncmp(in, "/../", 4) || !strcmp(in, "/..")) {
            if (in[3] == '/')
                in += 3;
            else {
                in += 2;
                *in = '/';          /* "/.." → "/" */
            }
            while (out > path && *--out != '/')
                ;
            *out = '\0';
        }
        else if (!strcmp(in, ".") || !strcmp(in, ".."))
            in += strlen(in);
        else {
            do
                *out++ = *in++;
            while (*in && *in != '/');
        }
    }
    *out = '\0';
}

const char *ajw_dpop_htu_normalize(const char *url, size_t len, apr_pool_t *p)
{
    const char *s, *end = url + len, *auth, *aend, *host, *hend, *port = NULL, *pathend;
    char *out, *o, *pathbuf;
    int https;
    long n, portnum = -1;

    if (!url || len == 0 || len > AJW_DPOP_MAX_URL || memchr(url, '\0', len))
        return NULL;
    if (len > 7 && !strncasecmp(url, "http://", 7)) {
        https = 0;
        auth = url + 7;
    }
    else if (len > 8 && !strncasecmp(url, "https://", 8)) {
        https = 1;
        auth = url + 8;
    }
    else
        return NULL;
    for (aend = auth; aend < end && *aend != '/' && *aend != '?' && *aend != '#'; aend++)
        if (*aend == '@')
            return NULL;            /* userinfo: never part of a resource URL */
    host = auth;
    if (host < aend && *host == '[') {
        hend = memchr(host, ']', (size_t)(aend - host));
        if (!hend)
            return NULL;
        hend++;
        if (hend < aend && *hend != ':')
            return NULL;
    }
    else {
        for (hend = host; hend < aend && *hend != ':'; hend++)
            ;
    }
    if (hend == host)
        return NULL;
    for (s = host; s < hend; s++)
        if (!(apr_isalnum(*s) || strchr("-._~[]:%", *s)))
            return NULL;
    if (hend < aend) {              /* ":port", possibly empty */
        port = hend + 1;
        if (aend - port > 5)
            return NULL;
        portnum = port < aend ? 0 : -1;
        for (s = port; s < aend; s++) {
            if (!apr_isdigit(*s))
                return NULL;
            portnum = portnum * 10 + (*s - '0');
        }
        if (portnum == 0 || portnum > 65535)
            return NULL;
    }
    if (portnum == (https ? 443 : 80))
        portnum = -1;
    for (pathend = aend; pathend < end && *pathend != '?' && *pathend != '#'; pathend++)
        ;

    out = o = apr_palloc(p, len + 16);
    memcpy(o, https ? "https://" : "http://", https ? 8 : 7);
    o += https ? 8 : 7;
    if ((n = pct_normalize(o, host, (size_t)(hend - host), 1)) < 0)
        return NULL;
    o += n;
    if (portnum > 0)
        o += sprintf(o, ":%ld", portnum);
    pathbuf = apr_palloc(p, (size_t)(pathend - aend) + 2);
    if ((n = pct_normalize(pathbuf, aend, (size_t)(pathend - aend), 0)) < 0)
        return NULL;
    pathbuf[n] = '\0';
    remove_dot_segments(pathbuf);
    if (!*pathbuf)
        *o++ = '/';
    else {
        size_t pl = strlen(pathbuf);
        memcpy(o, pathbuf, pl);
        o += pl;
    }
    *o = '\0';
    return out;
}

/* ------------------------------------------------------------------ */
/* Proofs                                                               */

/* RFC 7517/7518 private members: a proof's jwk carrying any is refused. */
static const char *private_member(const json_t *jwk)
{
    static const char *const priv[] = { "d", "p", "q", "dp", "dq", "qi", "oth", "k" };
    size_t i;
    for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
        if (json_object_get(jwk, priv[i]))
            return priv[i];
    return NULL;
}

/* Bits of the RSA modulus member n of a jwk (base64url, leading zero bytes
 * not counted), or 0 when it cannot be read: ajw_jwk_parse refuses those. */
static size_t rsa_n_bits(const json_t *jwk, apr_pool_t *p)
{
    const json_t *n = json_object_get(jwk, "n");
    unsigned char *raw;
    size_t len, i = 0, bits;
    unsigned top;
    if (!json_is_string(n) || json_string_length(n) > AJW_DPOP_MAX_LEN
        || ajw_b64url_decode(&raw, &len, json_string_value(n), json_string_length(n), p)
           != APR_SUCCESS)
        return 0;
    while (i < len && raw[i] == 0)
        i++;
    if (i == len)
        return 0;
    bits = (len - i) * 8;
    for (top = raw[i]; !(top & 0x80u); top <<= 1)
        bits--;
    return bits;
}

/* Proof keys imported before, per process. A client keeps its DPoP key for
 * many requests, and importing it (EVP_PKEY_fromdata and OpenSSL's public
 * key check, a full scalar multiplication for P-256) costs as much as the
 * proof's signature. An entry maps the proof's protected header exactly as
 * sent (its base64url segment: a client's proofs repeat it byte for byte,
 * and its bytes fix the jwk and every member that import reads) to the
 * jwk's thumbprint and its imported key; every proof's signature is still
 * verified, so nothing a forged or replayed proof could use is remembered.
 * Direct-mapped by a hash of the text, a colliding key replaces the older;
 * one mutex, held for a compare and a reference count. Global because the
 * keys outlive any request and pool; the lock makes it safe. */
#define PROOF_KEYS 64
#define PROOF_KEY_TEXT_MAX 2400       /* a header with a 4096-bit RSA jwk: ~1 KB of base64url */
typedef struct proof_key_t {
    char *text;                   /* the header segment, malloc'd; NULL: free slot */
    char jkt[48];
    EVP_PKEY *pkey;               /* one reference of the slot's own */
    ajw_kty_e kty;
    ajw_crv_e crv;
} proof_key_t;
static proof_key_t proof_keys[PROOF_KEYS];
static pthread_mutex_t proof_keys_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned text_hash(const char *s)
{
    unsigned h = 2166136261u;     /* FNV-1a: a slot index, not a security boundary */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h % PROOF_KEYS;
}

/* The cached key for text: *pkey held by p, *jkt copied into p. 1 on a hit. */
static int proof_key_get(const char *text, const char **jkt, EVP_PKEY **pkey, ajw_kty_e *kty,
                         ajw_crv_e *crv, apr_pool_t *p)
{
    proof_key_t *e = &proof_keys[text_hash(text)];
    int hit = 0;
    pthread_mutex_lock(&proof_keys_mu);
    if (e->text && !strcmp(e->text, text) && ajw_crypt_key_share(e->pkey, p)) {
        *jkt = apr_pstrdup(p, e->jkt);
        *pkey = e->pkey;
        *kty = e->kty;
        *crv = e->crv;
        hit = 1;
    }
    pthread_mutex_unlock(&proof_keys_mu);
    return hit;
}

static void proof_key_put(const char *text, const char *jkt, EVP_PKEY *pkey, ajw_kty_e kty,
                          ajw_crv_e crv)
{
    proof_key_t *e = &proof_keys[text_hash(text)];
    char *copy;
    EVP_PKEY *old = NULL;
    char *old_text = NULL;
    if (strlen(jkt) >= sizeof(e->jkt) || !(copy = strdup(text)))
        return;
    if (!ajw_crypt_key_hold(pkey)) {
        free(copy);
        return;
    }
    pthread_mutex_lock(&proof_keys_mu);
    old = e->pkey;
    old_text = e->text;
    e->text = copy;
    e->pkey = pkey;
    strcpy(e->jkt, jkt);
    e->kty = kty;
    e->crv = crv;
    pthread_mutex_unlock(&proof_keys_mu);
    ajw_crypt_key_drop(old);
    free(old_text);
}

/* Header jwk → *jkt (its thumbprint) → the binding → a verified signature.
 * The cheap refusals come first: a jwk that is not the key the token is
 * bound to (req_jkt, NULL: not checked) or an RSA key over
 * AJW_DPOP_MAX_RSA_BITS costs no key import and no signature work. A jwk
 * seen before takes its thumbprint and imported key from proof_keys. */
static ajw_reason_e proof_key(const char **jkt, const ajw_jws_t *t, const char *req_jkt,
                              apr_pool_t *p, ajw_error_t *err)
{
    const json_t *jwk = json_object_get(t->header, "jwk");
    const char *priv, *kty;
    ajw_key_t *key = NULL;
    EVP_PKEY *pkey;
    ajw_kty_e key_kty;
    ajw_crv_e key_crv;
    ajw_reason_e rv;
    size_t bits;
    char *text = NULL;
    const unsigned char *dot;
    ptrdiff_t hlen;
    int cached;

    if (!json_is_object(jwk))
        return ajw_error_set(err, AJW_R_BAD_KEY, "proof header has no jwk object");
    if ((priv = private_member(jwk)) != NULL)
        return ajw_error_set(err, AJW_R_BAD_KEY, "proof jwk holds the private key member %s",
                             priv);
    kty = ajw_json_get_string(jwk, "kty", NULL);
    if (kty && !strcmp(kty, "oct"))
        return ajw_error_set(err, AJW_R_BAD_KEY, "proof jwk is a symmetric (oct) key");
    if (json_object_get(jwk, "x5c"))
        return ajw_error_set(err, AJW_R_BAD_KEY, "proof jwk carries x5c (not supported)");
    dot = t->signing_input ? memchr(t->signing_input, '.', t->signing_input_len) : NULL;
    hlen = dot ? dot - t->signing_input : 0;
    if (hlen > 0 && (size_t)hlen <= PROOF_KEY_TEXT_MAX && (text = malloc((size_t)hlen + 1))) {
        memcpy(text, t->signing_input, (size_t)hlen);
        text[hlen] = '\0';
    }
    cached = text && proof_key_get(text, jkt, &pkey, &key_kty, &key_crv, p);
    if (!cached && (rv = ajw_jwk_thumbprint(jkt, jwk, p, err)) != AJW_OK)
        goto cleanup;
    if (req_jkt && !ajw_dpop_ct_equal(req_jkt, strlen(req_jkt), *jkt, strlen(*jkt))) {
        rv = ajw_error_set(err, AJW_R_BAD_KEY, "proof key is not the key the token is bound "
                           "to (cnf.jkt)");
        goto cleanup;
    }
    if (!cached) {
        if (kty && !strcmp(kty, "RSA") && (bits = rsa_n_bits(jwk, p)) > AJW_DPOP_MAX_RSA_BITS) {
            rv = ajw_error_set(err, AJW_R_BAD_KEY, "proof jwk is an RSA key of %zu bits, over "
                               "the cap of %d for proof keys", bits, AJW_DPOP_MAX_RSA_BITS);
            goto cleanup;
        }
        if ((rv = ajw_jwk_parse(&key, NULL, jwk, p, err)) != AJW_OK)
            goto cleanup;
        pkey = key->pkey;
        key_kty = key->kty;
        key_crv = key->crv;
    }
    if (!ajw_crypt_alg_fits(t->alg, key_kty, key_crv)) {
        rv = ajw_error_set(err, AJW_R_ALG_NOT_ALLOWED, "proof alg %s does not fit its jwk",
                           ajw_alg_name(t->alg));
        goto cleanup;
    }
    rv = ajw_crypt_verify(t->alg, pkey, t->signing_input, t->signing_input_len,
                          t->sig, t->sig_len, err);
    if (rv == AJW_R_BAD_SIGNATURE)
        rv = ajw_error_set(err, rv, "proof signature does not verify with its jwk");
    else if (rv == AJW_OK && !cached && text)
        proof_key_put(text, *jkt, pkey, key_kty, key_crv);   /* a key that verified a proof */
cleanup:
    free(text);
    return rv;
}

/* iat as whole seconds: an integer, or a real (fraction dropped). */
static int numeric_date(const ajw_val_t *v, long long *out)
{
    double d;
    if (ajw_val_is_integer(v)) {
        *out = (long long)ajw_val_int(v);
        return 1;
    }
    if (!ajw_val_is_real(v))
        return 0;
    d = ajw_val_real(v);
    if (!(d > -1e15 && d < 1e15))
        return 0;
    *out = (long long)d;
    return 1;
}

static ajw_reason_e proof_claims(ajw_dpop_proof_t *pr, const ajw_val_t *c,
                                 const ajw_dpop_req_t *req, apr_pool_t *p, ajw_error_t *err)
{
    const char *htm, *htu, *ath, *norm, *want;
    size_t htulen, athlen;

    pr->jti = ajw_val_get_string(c, "jti", &pr->jti_len);
    if (!pr->jti || pr->jti_len == 0)
        return ajw_error_set(err, AJW_R_MISSING_CLAIM, "proof jti absent, empty or not a string");
    if (pr->jti_len > AJW_DPOP_MAX_JTI)
        return ajw_error_set(err, AJW_R_BAD_CLAIM, "proof jti longer than %d bytes",
                             AJW_DPOP_MAX_JTI);
    if (!(htm = ajw_val_get_string(c, "htm", NULL)))
        return ajw_error_set(err, AJW_R_MISSING_CLAIM, "proof htm absent or not a string");
    if (strcmp(htm, req->method))
        return ajw_error_set(err, AJW_R_BAD_CLAIM, "proof htm differs from the method %s",
                             req->method);
    if (!(htu = ajw_val_get_string(c, "htu", &htulen)))
        return ajw_error_set(err, AJW_R_MISSING_CLAIM, "proof htu absent or not a string");
    norm = ajw_dpop_htu_normalize(htu, htulen, p);
    if (!norm)
        return ajw_error_set(err, AJW_R_BAD_CLAIM, "proof htu is not an http(s) URL");
    if (strcmp(norm, req->htu))
        return ajw_error_set(err, AJW_R_BAD_CLAIM, "proof htu differs from the request URL");
    if (!numeric_date(ajw_val_get(c, "iat"), &pr->iat))
        return ajw_error_set(err, AJW_R_MISSING_CLAIM, "proof iat absent or not a number");
    if (pr->iat > req->now + req->leeway)
        return ajw_error_set(err, AJW_R_ISSUED_IN_FUTURE, "proof iat is %lld s in the future",
                             pr->iat - req->now);
    if (pr->iat < req->now - req->window - req->leeway)
        return ajw_error_set(err, AJW_R_TOO_OLD, "proof iat is %lld s old (window %lld s, "
                             "leeway %lld s)", req->now - pr->iat, req->window, req->leeway);
    if (ajw_val_get(c, "nonce")
        && !(pr->nonce = ajw_val_get_string(c, "nonce", &pr->nonce_len)))
        return ajw_error_set(err, AJW_R_BAD_CLAIM, "proof nonce is not a string");
    if (req->token) {
        if (!(ath = ajw_val_get_string(c, "ath", &athlen)))
            return ajw_error_set(err, AJW_R_MISSING_CLAIM, "proof ath absent or not a string");
        if (!(want = ajw_dpop_sha256_b64u(req->token, req->token_len, p)))
            return ajw_error_set(err, AJW_R_INTERNAL, "SHA-256 failed");
        if (!ajw_dpop_ct_equal(ath, athlen, want, strlen(want)))
            return ajw_error_set(err, AJW_R_BAD_CLAIM, "proof ath is not the hash of the "
                                 "access token");
    }
    return AJW_OK;
}

ajw_reason_e ajw_dpop_check(ajw_dpop_proof_t **out, const char *proof, size_t len,
                            const ajw_dpop_req_t *req, apr_pool_t *p, ajw_error_t *err)
{
    ajw_policy_t pol;
    ajw_jws_t *t = NULL;
    ajw_dpop_proof_t *pr = apr_pcalloc(p, sizeof(*pr));
    ajw_reason_e rv;

    ajw_policy_init(&pol);
    pol.algs = req->algs & AJW_ALGS_DEFAULT;
    pol.max_token_len = AJW_DPOP_MAX_LEN;
    pol.typ = AJW_DPOP_TYP;
    if ((rv = ajw_jws_parse_ex(&t, proof, len, &pol, AJW_JWS_DOC, p, err)) != AJW_OK)
        goto cleanup;
    pr->alg_name = t->alg_name;
    if ((rv = proof_key(&pr->jkt, t, req->jkt, p, err)) != AJW_OK)
        goto cleanup;
    if ((rv = proof_claims(pr, t->doc, req, p, err)) != AJW_OK)
        goto cleanup;
    *out = pr;
cleanup:
    return rv;
}

/* ------------------------------------------------------------------ */
/* Server nonces                                                        */

#define NONCE_MAC_BYTES 16

static int nonce_mac(unsigned char mac[32], const unsigned char *secret,
                     const unsigned char when[8])
{
    return ajw_crypt_hmac_sha256(mac, secret, AJW_DPOP_NONCE_SECRET, when, 8);
}

const char *ajw_dpop_nonce_make(const unsigned char secret[AJW_DPOP_NONCE_SECRET],
                                long long now, apr_pool_t *p)
{
    unsigned char raw[8 + 32];
    uint64_t t = (uint64_t)now;
    int i;
    for (i = 7; i >= 0; i--, t >>= 8)
        raw[i] = (unsigned char)(t & 0xff);
    if (nonce_mac(raw + 8, secret, raw) != 0)
        return NULL;
    return ajw_b64url_encode(raw, 8 + NONCE_MAC_BYTES, p);
}

ajw_reason_e ajw_dpop_nonce_check(long long *age,
                                  const unsigned char secret[AJW_DPOP_NONCE_SECRET],
                                  const char *nonce, size_t len, long long now,
                                  long long lifetime, apr_pool_t *p)
{
    unsigned char mac[32], *raw = NULL;
    size_t rawlen = 0;
    uint64_t t = 0;
    int i;

    *age = 0;
    if (!nonce || len != 32 || ajw_b64url_decode(&raw, &rawlen, nonce, len, p) != APR_SUCCESS
        || rawlen != 8 + NONCE_MAC_BYTES || nonce_mac(mac, secret, raw) != 0
        || !ajw_dpop_ct_equal((const char *)mac, NONCE_MAC_BYTES, (const char *)raw + 8,
                              NONCE_MAC_BYTES))
        return AJW_R_MALFORMED;
    for (i = 0; i < 8; i++)
        t = (t << 8) | raw[i];
    if (t > (uint64_t)LLONG_MAX)
        return AJW_R_MALFORMED;
    *age = now - (long long)t;
    if ((long long)t > now + AJW_DPOP_NONCE_SKEW)
        return AJW_R_ISSUED_IN_FUTURE;
    if (*age > lifetime)
        return AJW_R_TOO_OLD;
    return AJW_OK;
}

/* ------------------------------------------------------------------ */
/* Replay table                                                         */

#define REPLAY_MAGIC 0x616a7732u      /* "ajw2": the layout with locks */
#define REPLAY_KEY_BYTES 16           /* of the 32-byte key: 128 bits against collisions */

typedef struct replay_entry_t {
    int64_t expires;                  /* 0: never used */
    uint64_t owner;                   /* proof key's tag (ajw_replay_owner) */
    unsigned char key[REPLAY_KEY_BYTES];
} replay_entry_t;

/* Buckets share REPLAY_STRIPES locks (bucket % stripes): two proofs wait
 * for each other only when their buckets share a stripe. The locks are
 * process-shared and robust pthread mutexes inside the table itself, so a
 * check costs no system call unless two proofs meet on a stripe, and a
 * process that dies holding one does not stop the others. */
#define REPLAY_STRIPES 64

struct ajw_replay_t {
    uint32_t magic;
    uint32_t pad;
    uint64_t nbuckets;
    uint64_t takeovers;               /* locks taken over from a dead holder (atomic) */
    pthread_mutex_t lock[REPLAY_STRIPES];
    replay_entry_t e[];               /* nbuckets * AJW_REPLAY_WAYS */
};

size_t ajw_replay_size(size_t entries)
{
    size_t nb = (entries + AJW_REPLAY_WAYS - 1) / AJW_REPLAY_WAYS;
    if (nb == 0)
        nb = 1;
    return sizeof(ajw_replay_t) + nb * AJW_REPLAY_WAYS * sizeof(replay_entry_t);
}

ajw_replay_t *ajw_replay_init(void *mem, size_t size)
{
    ajw_replay_t *t = mem;
    pthread_mutexattr_t a;
    size_t per = AJW_REPLAY_WAYS * sizeof(replay_entry_t);
    int i, ok;
    if (!mem || size < sizeof(ajw_replay_t) + per)
        return NULL;
    memset(mem, 0, size);
    if (pthread_mutexattr_init(&a) != 0)
        return NULL;
    ok = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) == 0
         && pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) == 0;
    for (i = 0; ok && i < REPLAY_STRIPES; i++)
        ok = pthread_mutex_init(&t->lock[i], &a) == 0;
    pthread_mutexattr_destroy(&a);
    if (!ok) {
        while (i-- > 0)
            pthread_mutex_destroy(&t->lock[i]);
        return NULL;
    }
    t->magic = REPLAY_MAGIC;
    t->nbuckets = (uint64_t)((size - sizeof(ajw_replay_t)) / per);
    return t;
}

void ajw_replay_fini(ajw_replay_t *t)
{
    int i;
    if (!t || t->magic != REPLAY_MAGIC)
        return;
    for (i = 0; i < REPLAY_STRIPES; i++)
        pthread_mutex_destroy(&t->lock[i]);
    t->magic = 0;
}

unsigned long long ajw_replay_takeovers(const ajw_replay_t *t)
{
    return t ? __atomic_load_n(&t->takeovers, __ATOMIC_RELAXED) : 0;
}

size_t ajw_replay_capacity(const ajw_replay_t *t)
{
    return t ? (size_t)t->nbuckets * AJW_REPLAY_WAYS : 0;
}

int ajw_replay_key(unsigned char key[32], const char *jkt, const char *jti, size_t jti_len)
{
    size_t klen = strlen(jkt);
    unsigned char buf[128 + AJW_DPOP_MAX_JTI];
    if (klen > 127 || jti_len > AJW_DPOP_MAX_JTI)
        return -1;
    memcpy(buf, jkt, klen);
    buf[klen] = 0;
    memcpy(buf + klen + 1, jti, jti_len);
    return ajw_crypt_sha256(key, buf, klen + 1 + jti_len);
}

unsigned long long ajw_replay_owner(const char *jkt)
{
    const unsigned char *b64 = ajw_b64_table(1);
    unsigned char h[32];
    unsigned long long tag = 0;
    int i;
    if (!jkt)
        return 0;
    /* A thumbprint (43 characters of base64url) already is a SHA-256: its
     * first 8 bytes, read from its first 11 characters, are the tag. */
    if (strlen(jkt) == 43) {
        for (i = 0; i < 11 && b64[(unsigned char)jkt[i]] < 64; i++)
            tag = i < 10 ? (tag << 6) | b64[(unsigned char)jkt[i]]
                         : (tag << 4) | (unsigned)(b64[(unsigned char)jkt[i]] >> 2);
        if (i == 11)
            return tag ? tag : 1;
        tag = 0;
    }
    if (ajw_crypt_sha256(h, jkt, strlen(jkt)) != 0)
        return 0;
    for (i = 0; i < 8; i++)
        tag = (tag << 8) | h[i];
    return tag ? tag : 1;
}

/* The bucket's work, its stripe held. */
static ajw_replay_e replay_add_locked(replay_entry_t *b, const unsigned char key[32],
                                      uint64_t owner, long long expires, long long now)
{
    replay_entry_t *free_e = NULL, *own_oldest = NULL;
    int i, own = 0;
    for (i = 0; i < AJW_REPLAY_WAYS; i++) {
        if (b[i].expires > now) {
            if (!memcmp(b[i].key, key, REPLAY_KEY_BYTES))
                return AJW_REPLAY_SEEN;
            if (b[i].owner == owner) {
                own++;
                if (!own_oldest || b[i].expires < own_oldest->expires)
                    own_oldest = &b[i];
            }
        }
        else if (!free_e)
            free_e = &b[i];
    }
    /* A key past its share, or in a full bucket, gives up its own oldest
     * entry: what one client floods costs only its own replay protection. */
    if (own_oldest && (own >= AJW_REPLAY_PER_KEY || !free_e)) {
        free_e = own_oldest;
        memcpy(free_e->key, key, REPLAY_KEY_BYTES);
        free_e->owner = owner;
        free_e->expires = expires > 0 ? expires : 1;
        return AJW_REPLAY_NEW_EVICTED;
    }
    if (!free_e)
        return AJW_REPLAY_FULL;
    memcpy(free_e->key, key, REPLAY_KEY_BYTES);
    free_e->owner = owner;
    free_e->expires = expires > 0 ? expires : 1;
    return AJW_REPLAY_NEW;
}

ajw_replay_e ajw_replay_add(ajw_replay_t *t, const unsigned char key[32],
                            unsigned long long owner, long long expires, long long now)
{
    uint64_t h = 0, bucket;
    pthread_mutex_t *m;
    ajw_replay_e rc;
    int i, lr;
    for (i = 0; i < 8; i++)           /* bucket from bytes the stored part does not hold */
        h = (h << 8) | key[REPLAY_KEY_BYTES + i];
    bucket = h % t->nbuckets;
    m = &t->lock[bucket % REPLAY_STRIPES];
    lr = pthread_mutex_lock(m);
    /* Its holder died: the bucket's entries are whole or torn. A torn one
     * holds a key no proof hashes to, or has expired; either way no live
     * entry was lost but the one being written. The stripe goes on. */
    if (lr == EOWNERDEAD) {
        lr = pthread_mutex_consistent(m);
        __atomic_fetch_add(&t->takeovers, 1, __ATOMIC_RELAXED);
    }
    if (lr != 0)
        return AJW_REPLAY_LOCK_FAILED;
    rc = replay_add_locked(&t->e[bucket * AJW_REPLAY_WAYS], key, owner, expires, now);
    pthread_mutex_unlock(m);
    return rc;
}
