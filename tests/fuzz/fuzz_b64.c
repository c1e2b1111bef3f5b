/* Fuzz the strict base64url decoder: whatever it accepts must re-encode to
 * exactly the input (canonical), and every encoding must decode back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include "ajw_b64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *root;
    apr_pool_t *p;
    unsigned char *out;
    size_t outlen;
    char *enc;
    if (!root) {
        apr_initialize();
        atexit(apr_terminate);   /* free pools before LSan's exit check */
        apr_pool_create(&root, NULL);
    }
    apr_pool_create(&p, root);
    if (ajw_b64url_decode(&out, &outlen, (const char *)data, size, p) == APR_SUCCESS) {
        enc = ajw_b64url_encode(out, outlen, p);
        if (strlen(enc) != size || memcmp(enc, data, size) != 0)
            __builtin_trap();
    }
    enc = ajw_b64url_encode(data, size, p);
    if (ajw_b64url_decode(&out, &outlen, enc, strlen(enc), p) != APR_SUCCESS
        || outlen != size || (size && memcmp(out, data, size) != 0))
        __builtin_trap();
    (void)ajw_b64std_decode(&out, &outlen, (const char *)data, size, p);
    apr_pool_destroy(p);
    return 0;
}
