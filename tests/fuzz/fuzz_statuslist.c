/* Fuzz the Token Status List decoding: the input as a status_list object
 * ({"bits":..,"lst":..}) and as a token's claims (status reference), the raw
 * bytes as a zlib stream, and as an AuthJWKSRevoked file. Whatever is
 * accepted must respect the inflate cap, and every entry lookup must stay
 * inside the array (ASan checks the reads). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include "ajw_statuslist.h"
#include "ajw_denylist.h"
#include "ajw_zlib.h"
#include "ajw_json.h"

#define CAP 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *root;
    apr_pool_t *p;
    json_t *obj = NULL;
    ajw_error_t err;
    unsigned bits, st;
    const unsigned char *bytes;
    unsigned char *out;
    size_t len, i;
    unsigned long long idx;
    const char *uri, *why;
    ajw_denylist_t *d = NULL;

    if (!root) {
        apr_initialize();
        atexit(apr_terminate);   /* free pools before LSan's exit check */
        apr_pool_create(&root, NULL);
    }
    apr_pool_create(&p, root);
    if (ajw_json_parse_object(&obj, (const char *)data, size, 0, 0, p, &err) == AJW_OK) {
        if (ajw_statuslist_decode(&bits, &bytes, &len, obj, CAP, p, &err) == AJW_OK) {
            if (len == 0 || len > CAP || (bits != 1 && bits != 2 && bits != 4 && bits != 8))
                __builtin_trap();
            for (i = 0; i < 8 && i < (size_t)len * 8u / bits; i++) {
                unsigned long long k = (unsigned long long)len * 8u / bits - 1u - i;
                if (ajw_statuslist_entry(bytes, len, bits, k, &st) != 0 || st >= (1u << bits))
                    __builtin_trap();
            }
            if (ajw_statuslist_entry(bytes, len, bits, (unsigned long long)len * 8u / bits, &st)
                != -1)
                __builtin_trap();
        }
        {
            /* The reference is read in the claims' document. */
            const ajw_val_t *doc = ajw_doc_make(obj, p, NULL);
            if (!doc)
                __builtin_trap();
            if (ajw_status_ref(doc, &idx, &uri, &err) == 1
                && (idx > AJW_STATUSLIST_IDX_MAX || !uri || !*uri))
                __builtin_trap();
        }
    }
    if (ajw_zlib_inflate(&out, &len, data, size, CAP, &why, p) == APR_SUCCESS && len > CAP)
        __builtin_trap();
    if (ajw_denylist_parse(&d, (const char *)data, size, p, &why, p) == APR_SUCCESS
        && d->count < 0)
        __builtin_trap();
    apr_pool_destroy(p);
    return 0;
}
