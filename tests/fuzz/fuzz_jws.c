/* Fuzz the token path: parse → verify against a fixed key set → claims. */
#include <stdint.h>
#include <string.h>
#include <apr_general.h>
#include "ajw_jws.h"
#include "ajw_jwk.h"
#include "ajw_claims.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One Ed25519 and one P-256 public key (RFC 8037 A.2, RFC 7515 A.3). */
static const char JWKS[] =
    "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"ed\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";

static apr_pool_t *root;
static ajw_keyset_t *keys;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    ajw_policy_t pol;
    ajw_jws_t *t = NULL;
    ajw_error_t err;
    if (!root) {
        apr_initialize();
        apr_pool_create(&root, NULL);
        if (ajw_keyset_parse(&keys, JWKS, sizeof(JWKS) - 1, 4096, root, &err) != AJW_OK)
            __builtin_trap();
    }
    apr_pool_create(&p, root);
    ajw_policy_init(&pol);
    if (ajw_jws_parse(&t, (const char *)data, size, &pol, p, &err) == AJW_OK) {
        const ajw_keyset_t *sets[1] = { keys };
        /* No fuzzer can forge these signatures: reaching OK is a bug. */
        if (ajw_jws_verify(t, sets, 1, NULL, &err) == AJW_OK)
            __builtin_trap();
        (void)ajw_claims_check(t->claims, &pol, 1700000000, &err);
    }
    apr_pool_destroy(p);
    return 0;
}
