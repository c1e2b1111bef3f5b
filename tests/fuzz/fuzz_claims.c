/* Fuzz claim checks and Require rules over hostile payload JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_strings.h>
#include "ajw_json.h"
#include "ajw_claims.h"
#include "ajw_require.h"
#include "ajw_names.h"
#include "ajw_issuer.h"

/* The export's promise, checked on every claim: no control byte in the
 * text; a text starting with '"', '[' or '{' is JSON equal to the claim;
 * any other is a plain list whose ',' count matches the elements. dv is
 * the claim in the document (what is rendered), v the same claim in the
 * parsed tree (what it must equal). */
static void check_text(const ajw_val_t *dv, const json_t *v, apr_pool_t *p)
{
    const char *t = ajw_claim_text(dv, p), *s;
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
static ajw_require_t *rules[4];
static ajw_issuer_tpl_t *tpl;

static void setup(void)
{
    static const char *const a0[] = { "roles:admin", "realm_access.roles:admin", "n:3", "[https://x/r].a:b" };
    static const char *const a1[] = { "email~@example\\.com$" };
    static const char *const a2[] = { "read", "write" };
    static const char *const a3[] = { "gold", "urn:x:silver" };
    const char *why;
    apr_initialize();
    atexit(apr_terminate);   /* free pools before LSan's exit check (APR mmaps) */
    apr_pool_create(&root, NULL);
    if (ajw_require_claim_compile(&rules[0], 4, a0, &ajw_regex_posix, root, &why) != APR_SUCCESS
        || ajw_require_claim_compile(&rules[1], 1, a1, &ajw_regex_posix, root, &why) != APR_SUCCESS
        || ajw_require_scope_compile(&rules[2], 2, a2, root, &why) != APR_SUCCESS
        || ajw_require_acr_compile(&rules[3], 2, a3, root, &why) != APR_SUCCESS
        || ajw_issuer_template_parse(&tpl, "https://login.example/{tenantid}/v2.0", root,
                                     &why) != APR_SUCCESS || !tpl)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    json_t *claims;
    const ajw_val_t *doc;
    ajw_error_t err;
    ajw_policy_t pol;
    long long d;
    const char *tid_why;
    int i;
    if (!root)
        setup();
    apr_pool_create(&p, root);
    if (ajw_json_parse_object(&claims, (const char *)data, size, 65536, AJW_MAX_JSON_DEPTH, p,
                              &err) == AJW_OK) {
        /* What the parser accepts always has a document (no NUL in a
         * string, far below 2^31 bytes); the checks read that. */
        doc = ajw_doc_make(claims, p, NULL);
        if (!doc || !ajw_val_is_object(doc))
            __builtin_trap();
        ajw_policy_init(&pol);
        pol.audiences = apr_array_make(p, 1, sizeof(const char *));
        APR_ARRAY_PUSH(pol.audiences, const char *) = "api";
        (void)ajw_claims_check(doc, &pol, 1700000000, &err);
        (void)ajw_claims_numeric_date(doc, "exp", &d);
        for (i = 0; i < 4; i++)
            (void)ajw_require_eval(rules[i], doc);
        (void)ajw_claims_auth_time_ok(doc, 300, 60, 1700000000, &tid_why);
        {
            /* A tenant id is a GUID and nothing else; a template makes from
             * it exactly one issuer, and never matches more than that. */
            const char *tid = ajw_tenant_of(doc, &tid_why);
            size_t iss_len = 0;
            const char *iss = ajw_val_get_string(doc, "iss", &iss_len);
            if (tid && !ajw_tenant_id_ok(tid, strlen(tid)))
                __builtin_trap();
            if (iss && tid
                && ajw_issuer_template_match(tpl, iss, iss_len, tid)
                && strcmp(iss, apr_pstrcat(p, "https://login.example/", tid, "/v2.0", NULL)))
                __builtin_trap();
        }
        (void)ajw_claim_text(doc, p);
        (void)ajw_claim_json(doc, p);
        {
            const char *key;
            const ajw_val_t *v;
            ajw_val_foreach_member(doc, key, v)
                check_text(v, json_object_get(claims, key), p);
        }
        {
            size_t sub_len = 0;
            const char *sub = ajw_val_get_string(doc, "sub", &sub_len);
            char why[AJW_USER_WHY_MAX];
            if (sub) {
                (void)ajw_user_text_problem(sub, sub_len, why);
                (void)ajw_user_names_issuer(sub, sub_len, "https://a.example");
            }
        }
        (void)ajw_val_path(doc, "a.b.c");
    }
    apr_pool_destroy(p);
    return 0;
}
