/* Fuzz the token path: parse → verify against a fixed key set → claims.
 *
 * Two input shapes:
 *  - anything not starting with a NUL byte is a compact token, as is;
 *  - "\0" header-JSON "\0" payload-JSON "\0" signature-bytes is encoded by
 *    the harness (base64url each part, joined with '.'), so the fuzzer can
 *    explore header rules and reach the signature code with every alg, key
 *    and signature length instead of fighting the base64url layer.
 *
 * The public keys below were generated for this harness and their private
 * halves discarded (no RFC example keys: their private keys are published),
 * so no input can carry a valid signature: a verify that succeeds is a
 * forgery and traps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "ajw_b64.h"
#include "ajw_jws.h"
#include "ajw_jwk.h"
#include "ajw_claims.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char JWKS[] =
    "{\"keys\":["
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\","
    "\"x\":\"bX6qbeD1qEUl84OjYZNevkknIRvaLclfBq5PHRyyJgo\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\","
    "\"x\":\"ve6MXsfjaBARh8z0cL61vaoC_fW_ZVJxRGumI4VvWdY\","
    "\"y\":\"isqQtBpK2nOshHvt-lgCfcmXC-E1lVBvfriVUI3RW_Y\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"ec384\","
    "\"x\":\"JTli0211d1g8mhu8BZZqCpeTSV3HdvOfKgebd2VY39qORtYh1N5N6vKlNZUXYcz0\","
    "\"y\":\"-7mmXibY3ZSt0BLvmNi_vgPJDp6FpyigvJYQd-jd5h6MbQGyPS9LeZZo4tufYQZS\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-521\",\"kid\":\"ec521\","
    "\"x\":\"AVMGUCWrR18me1ZXnKrfeSeyPH33YpiYrZgF-Z2DoRYDpOg30H5WsQTErnJuGmPCtSCbwPicXLYdlBHVkZFEnsqt\","
    "\"y\":\"AOKIs8p5hPiDteXQoo5MlTR-al1epaio3_sSXeLHL8jtnVd-7UmEPhYwitxaQjGuLJoRAhFc9mLmCi9npVjCN66w\"},"
    "{\"kty\":\"RSA\",\"kid\":\"rsa\",\"e\":\"AQAB\","
    "\"n\":\"2SFX-L1qsuV2bgnoEhCHDc41AlFSfYw2COjkVbtf743PCn2QM7COOdKflEWMeyoiiEFxFb8LAF0ba5gq9m_hw00c"
    "P2evjMfffue5kD89JG4ZQyATV2zO5vZeEmw-T7SROBw6xcY8L4SDZs4ipyHm1wHAoCDYBYAIrbEAkPbcfcI6TxvCFZeUXs"
    "nMuo8UtcO9DzAEEKtA2DpKSevK-7Zuodx3GhXGuo1Qpi80sVNSStVJipFQac7ElXJDRq0NKeAr1STUhDHvcWYcTab-TXCp"
    "6pns-Rv8wEQGZD8jepm-FPOUiUNnT5rEpQDnJLAz9BrM97dnCTSBT2f2-uPkTOZHEw\"}"
    "]}";

static apr_pool_t *root;
static ajw_keyset_t *keys;

/* Destroy every pool before LeakSanitizer's exit check: APR's allocator
 * uses mmap, which LSan does not scan, so keys held by a live pool would
 * otherwise be reported as leaked. */
static void fini(void)
{
    apr_terminate();
}

/* "\0" hdr "\0" payload "\0" sig → compact token; NULL when not that shape. */
static const char *structured(const uint8_t *data, size_t size, size_t *len, apr_pool_t *p)
{
    const uint8_t *part[3];
    size_t plen[3];
    const uint8_t *s = data + 1, *end = data + size;
    int i;
    char *tok;
    if (size == 0 || data[0] != 0)
        return NULL;
    for (i = 0; i < 3; i++) {
        const uint8_t *z = i < 2 ? memchr(s, 0, (size_t)(end - s)) : NULL;
        if (i < 2 && !z)
            return NULL;
        part[i] = s;
        plen[i] = (size_t)((i < 2 ? z : end) - s);
        s = i < 2 ? z + 1 : end;
    }
    tok = apr_pstrcat(p, ajw_b64url_encode(part[0], plen[0], p), ".",
                      ajw_b64url_encode(part[1], plen[1], p), ".",
                      ajw_b64url_encode(part[2], plen[2], p), NULL);
    *len = strlen(tok);
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    ajw_policy_t pol;
    ajw_jws_t *t = NULL, *td = NULL, *ta = NULL;
    ajw_error_t err, errd, erra;
    ajw_reason_e rc, rd, ra;
    const char *tok;
    size_t len = size;
    if (!root) {
        apr_initialize();
        atexit(fini);
        apr_pool_create(&root, NULL);
        if (ajw_keyset_parse(&keys, JWKS, sizeof(JWKS) - 1, 16384, root, &err) != AJW_OK
            || keys->keys->nelts != 5)
            __builtin_trap();
    }
    apr_pool_create(&p, root);
    ajw_policy_init(&pol);
    tok = structured(data, size, &len, p);
    if (!tok)
        tok = (const char *)data;
    rc = ajw_jws_parse(&t, tok, len, &pol, p, &err);
    /* The request path parses the claims straight into a document: the same
     * outcome, the same text, and the tree's document byte for byte. */
    rd = ajw_jws_parse_ex(&td, tok, len, &pol, AJW_JWS_DOC, p, &errd);
    if (rd != rc || (rc != AJW_OK && strcmp(err.text, errd.text)))
        __builtin_trap();
    if (rc == AJW_OK) {
        size_t n = 0;
        const ajw_val_t *want = ajw_doc_make(t->claims, p, &n);
        if (td->claims || !td->doc || !want || td->doc_size != n || memcmp(td->doc, want, n)
            || (t->iss == NULL) != (td->iss == NULL) || (t->iss && strcmp(t->iss, td->iss)))
            __builtin_trap();
    }
    /* And with the header read from a document as well (access tokens):
     * the same outcome and text, the same alg, kid and typ. */
    ra = ajw_jws_parse_ex(&ta, tok, len, &pol, AJW_JWS_DOC_ALL, p, &erra);
    if (ra != rc || (rc != AJW_OK && strcmp(err.text, erra.text)))
        __builtin_trap();
    if (rc == AJW_OK) {
        if (ta->header || ta->alg != t->alg || strcmp(ta->alg_name, t->alg_name)
            || ta->kid_len != t->kid_len || (ta->kid == NULL) != (t->kid == NULL)
            || (t->kid && memcmp(ta->kid, t->kid, t->kid_len))
            || ta->typ_len != t->typ_len || (ta->typ == NULL) != (t->typ == NULL)
            || (t->typ && memcmp(ta->typ, t->typ, t->typ_len))
            || ta->doc_size != td->doc_size || memcmp(ta->doc, td->doc, td->doc_size))
            __builtin_trap();
    }
    if (rc == AJW_OK) {
        const ajw_keyset_t *sets[2] = { keys, keys };
        const ajw_key_t *used = NULL;
        /* No fuzzer can forge these signatures: reaching OK is a bug. */
        if (ajw_jws_verify(t, sets, 2, &used, &err) == AJW_OK)
            __builtin_trap();
        (void)ajw_jws_check_header(t->header, &pol, &err);
        /* The claims as the checks read them: the parsed tree's document
         * (the parser lets no string with a NUL through, so there is one). */
        {
            const ajw_val_t *claims = ajw_doc_make(t->claims, p, NULL);
            if (!claims)
                __builtin_trap();
            (void)ajw_claims_check(claims, &pol, 1700000000, &err);
        }
        /* What a token-cache hit re-checks from the entry's fields must
         * decide as the full header check does, under another policy too. */
        {
            ajw_policy_t other;
            const json_t *typ = json_object_get(t->header, "typ");
            const char *tv = json_is_string(typ) ? json_string_value(typ) : NULL;
            ajw_policy_init(&other);
            other.algs = AJW_ALG_BIT(AJW_ALG_ES256) | AJW_ALG_BIT(AJW_ALG_RS256);
            other.typ = size & 1 ? "at+jwt" : "JWT";
            if (ajw_jws_check_cached(t->alg, tv, &other, &err)
                != ajw_jws_check_header(t->header, &other, &err))
                __builtin_trap();
        }
    }
    apr_pool_destroy(p);
    return 0;
}
