/* Fuzz DPoP: htu normalisation (must be idempotent and never grow the URL
 * past its bound), proof checking, server nonces, PEM certificate thumbprints. The first
 * byte picks the target. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include "ajw_dpop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static apr_pool_t *root;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    const char *in = (const char *)data + 1;
    size_t len = size ? size - 1 : 0;
    if (!root) {
        apr_initialize();
        atexit(apr_terminate);
        apr_pool_create(&root, NULL);
    }
    if (size == 0)
        return 0;
    apr_pool_create(&p, root);
    switch (data[0] % 4) {
    case 0: {
        const char *n = ajw_dpop_htu_normalize(in, len, p), *n2;
        if (n) {
            n2 = ajw_dpop_htu_normalize(n, strlen(n), p);
            if (!n2 || strcmp(n, n2))
                __builtin_trap();               /* normalisation must be idempotent */
        }
        break;
    }
    case 1: {
        ajw_dpop_req_t rq;
        ajw_dpop_proof_t *pr = NULL;
        ajw_error_t err;
        memset(&rq, 0, sizeof(rq));
        rq.method = "GET";
        rq.htu = "https://api.example.com/r";
        rq.algs = AJW_ALGS_DEFAULT;
        rq.now = 1700000000;
        rq.window = 60;
        rq.leeway = 5;
        rq.token = "t";
        rq.token_len = 1;
        if (ajw_dpop_check(&pr, in, len, &rq, p, &err) == AJW_OK)
            __builtin_trap();                   /* no fuzzed proof can carry a valid signature */
        break;
    }
    case 2: {
        static const unsigned char secret[AJW_DPOP_NONCE_SECRET] = { 1, 2, 3 };
        long long age;
        /* an accepted nonce is exactly the one we would have made at its time */
        if (ajw_dpop_nonce_check(&age, secret, in, len, 1700000000, 300, p) == AJW_OK
            && strncmp(ajw_dpop_nonce_make(secret, 1700000000 - age, p), in, len) != 0)
            __builtin_trap();
        break;
    }
    default: {
        char *pem = apr_palloc(p, len + 1);
        memcpy(pem, in, len);
        pem[len] = '\0';
        (void)ajw_dpop_cert_thumbprint(pem, p);
        break;
    }
    }
    apr_pool_destroy(p);
    return 0;
}
