/* Fuzz the shared last-good record decoder: its bytes come from a file any
 * bug could have left behind, or from a memcache/redis that the network can
 * reach. A decoded record must round-trip through the encoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include "ajw_shared_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static apr_pool_t *root;

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
    for (i = 0; i < 2; i++) {
        ajw_shared_doc_t doc, again;
        const char *why = NULL;
        char *text;
        size_t len;
        memset(&doc, 0, sizeof(doc));
        if (ajw_shared_record_decode(&doc, (const char *)data, size, urls[i], i ? "/ca.pem" : NULL,
                                     65536, &why, p) != APR_SUCCESS) {
            if (!why)
                __builtin_trap();         /* every refusal says why */
            continue;
        }
        if (!doc.body || doc.len == 0 || doc.len > 65536 || doc.fetched <= 0)
            __builtin_trap();
        if (ajw_shared_record_encode(&text, &len, urls[i], i ? "/ca.pem" : NULL, &doc, &why, p)
            == APR_SUCCESS) {
            memset(&again, 0, sizeof(again));
            if (ajw_shared_record_decode(&again, text, len, urls[i], i ? "/ca.pem" : NULL, 65536,
                                         &why, p) != APR_SUCCESS
                || again.len != doc.len || memcmp(again.body, doc.body, doc.len)
                || again.fetched != doc.fetched)
                __builtin_trap();
        }
    }
    apr_pool_destroy(p);
    return 0;
}
