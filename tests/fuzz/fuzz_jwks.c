/* Fuzz the JWKS parser with hostile documents. */
#include <stdint.h>
#include <stdlib.h>
#include <apr_general.h>
#include "ajw_jwk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    ajw_keyset_t *ks = NULL;
    ajw_error_t err;
    if (!init) {
        apr_initialize();
        atexit(apr_terminate);   /* free pools before LSan's exit check */
        init = 1;
    }
    if (ajw_keyset_parse(&ks, (const char *)data, size, AJW_MAX_JWKS_LEN_DEFAULT, NULL, &err)
        == AJW_OK)
        ajw_keyset_free(ks);
    return 0;
}
