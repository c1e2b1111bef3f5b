/* Fuzz claim checks and Require rules over hostile payload JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <apr_general.h>
#include "ajw_json.h"
#include "ajw_claims.h"
#include "ajw_require.h"
#include "ajw_names.h"

/* The export's promise, checked on every claim: no control byte in the
 * text; a text starting with '"', '[' or '{' is JSON equal to the claim;
 * any other is a plain list whose ',' count matches the elements. */
static void check_text(const json_t *v, apr_pool_t *p)
{
    const char *t = ajw_claim_text(v, p), *s;
    size_t commas = 0;
    if (!t)
        return;
    for (s = t; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            __builtin_trap();
        commas += *s == ',';
    }
    if (t[0] == '"' || t[0] == '[' || t[0] == '{') {
        json_t *back = json_loads(t, JSON_DECODE_ANY, NULL);
        if (!back || !json_equal(back, (json_t *)v))
            __builtin_trap();
        json_decref(back);
    }
    else if (commas + 1 != (json_is_array(v) ? json_array_size(v) : 1))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static apr_pool_t *root;
static ajw_require_t *rules[3];

static void setup(void)
{
    static const char *const a0[] = { "roles:admin", "realm_access.roles:admin", "n:3", "[https://x/r].a:b" };
    static const char *const a1[] = { "email~@example\\.com$" };
    static const char *const a2[] = { "read", "write" };
    const char *why;
    apr_initialize();
    atexit(apr_terminate);   /* free pools before LSan's exit check (APR mmaps) */
    apr_pool_create(&root, NULL);
    if (ajw_require_claim_compile(&rules[0], 4, a0, &ajw_regex_posix, root, &why) != APR_SUCCESS
        || ajw_require_claim_compile(&rules[1], 1, a1, &ajw_regex_posix, root, &why) != APR_SUCCESS
        || ajw_require_scope_compile(&rules[2], 2, a2, root, &why) != APR_SUCCESS)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    json_t *claims;
    ajw_error_t err;
    ajw_policy_t pol;
    long long d;
    int i;
    if (!root)
        setup();
    apr_pool_create(&p, root);
    if (ajw_json_parse_object(&claims, (const char *)data, size, 65536, AJW_MAX_JSON_DEPTH, p,
                              &err) == AJW_OK) {
        ajw_policy_init(&pol);
        pol.audiences = apr_array_make(p, 1, sizeof(const char *));
        APR_ARRAY_PUSH(pol.audiences, const char *) = "api";
        (void)ajw_claims_check(claims, &pol, 1700000000, &err);
        (void)ajw_claims_numeric_date(claims, "exp", &d);
        for (i = 0; i < 3; i++)
            (void)ajw_require_eval(rules[i], claims);
        (void)ajw_claim_text(claims, p);
        (void)ajw_claim_json(claims, p);
        {
            const char *key;
            json_t *v;
            json_object_foreach(claims, key, v)
                check_text(v, p);
        }
        {
            const json_t *sub = json_object_get(claims, "sub");
            char why[AJW_USER_WHY_MAX];
            if (json_is_string(sub)) {
                (void)ajw_user_text_problem(json_string_value(sub), json_string_length(sub), why);
                (void)ajw_user_names_issuer(json_string_value(sub), json_string_length(sub),
                                            "https://a.example");
            }
        }
        (void)ajw_json_path(claims, "a.b.c");
    }
    apr_pool_destroy(p);
    return 0;
}
