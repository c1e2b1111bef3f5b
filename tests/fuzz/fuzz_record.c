/* Fuzz the shared last-good record decoder: its bytes come from a file any
 * bug could have left behind, or from a memcache/redis that the network can
 * reach. The input is decoded as it is (the MAC line must refuse it) and,
 * so that the JSON decoder behind the MAC is reached too, once more behind
 * a MAC line made with the reader's key. A decoded record must round-trip
 * through the encoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include "ajw_shared_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static apr_pool_t *root;
static const unsigned char key[AJW_SHARED_KEY_LEN] = "fuzz-record-key-fuzz-record-key!";

/* data behind a valid MAC line for key; NULL when HMAC fails. */
static char *wrap(const uint8_t *data, size_t size, size_t *len, apr_pool_t *p)
{
    unsigned char mac[32];
    unsigned int mlen = 0;
    char *out = apr_palloc(p, 70 + size);
    int i;
    if (!HMAC(EVP_sha256(), key, sizeof(key), data, size, mac, &mlen) || mlen != 32)
        return NULL;
    memcpy(out, "AJW2 ", 5);
    for (i = 0; i < 32; i++) {
        out[5 + 2 * i] = "0123456789abcdef"[mac[i] >> 4];
        out[6 + 2 * i] = "0123456789abcdef"[mac[i] & 15];
    }
    out[69] = '\n';
    memcpy(out + 70, data, size);
    *len = 70 + size;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const urls[] = { "https://idp.test/jwks", "http://127.0.0.1:1/j" };
    apr_pool_t *p;
    int i;
    if (!root) {
        apr_initialize();
        atexit(apr_terminate);
        apr_pool_create(&root, NULL);
    }
    apr_pool_create(&p, root);
    for (i = 0; i < 4; i++) {
        const char *in = (const char *)data;
        size_t inlen = size;
        ajw_shared_doc_t doc, again;
        const char *why = NULL;
        char *text;
        size_t len;
        if (i >= 2 && !(in = wrap(data, size, &inlen, p)))
            __builtin_trap();
        memset(&doc, 0, sizeof(doc));
        if (ajw_shared_record_decode(&doc, in, inlen, key, urls[i & 1], (i & 1) ? "/ca.pem" : NULL,
                                     65536, &why, p) != APR_SUCCESS) {
            if (!why)
                __builtin_trap();         /* every refusal says why */
            continue;
        }
        if (!doc.body || doc.len == 0 || doc.len > 65536 || doc.fetched <= 0)
            __builtin_trap();
        if (i < 2)
            __builtin_trap();             /* no MAC made without the key verifies */
        if (ajw_shared_record_encode(&text, &len, key, urls[i & 1], (i & 1) ? "/ca.pem" : NULL,
                                     &doc, &why, p) == APR_SUCCESS) {
            memset(&again, 0, sizeof(again));
            if (ajw_shared_record_decode(&again, text, len, key, urls[i & 1],
                                         (i & 1) ? "/ca.pem" : NULL, 65536, &why, p) != APR_SUCCESS
                || again.len != doc.len || memcmp(again.body, doc.body, doc.len)
                || again.fetched != doc.fetched)
                __builtin_trap();
        }
    }
    apr_pool_destroy(p);
    return 0;
}
