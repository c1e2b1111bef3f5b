/* Unit tests for ajw_names: which claims are exported and under which
 * names, the module's own names, the one rendering of a claim value, header
 * value encoding, and the REMOTE_USER checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "ajw_json.h"
#include "tu_vectors.h"
#include "ajw_names.h"

static apr_pool_t *pool;

/* v's flat document (in pool), as the renderers read claims. */
static const ajw_val_t *doc_of(const json_t *v)
{
    const ajw_val_t *d = ajw_doc_make(v, pool, NULL);
    assert_non_null(d);
    return d;
}

static void test_exportable_names(void **state)
{
    static const char *const good[] = { "sub", "email_verified", "a", "_", "x9", "0" };
    static const char *const bad[] = {
        "", "Email", "EMAIL", "email-verified", "Email.Verified", "realm_access.roles",
        "https://ex.com/roles", "a b", "caf\xc3\xa9", "a\n", "cognito:groups", "a=b"
    };
    char longname[AJW_CLAIM_NAME_MAX + 2];
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(ajw_claim_name_exportable(good[i]));
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (ajw_claim_name_exportable(bad[i]))
            fail_msg("'%s' exportable", bad[i]);
        assert_null(ajw_env_name(pool, "JWT_CLAIM_", bad[i]));
        assert_null(ajw_header_name(pool, "X-JWT-Claim-", bad[i]));
    }
    memset(longname, 'a', sizeof(longname));
    longname[AJW_CLAIM_NAME_MAX] = '\0';
    assert_true(ajw_claim_name_exportable(longname));
    longname[AJW_CLAIM_NAME_MAX] = 'a';
    longname[AJW_CLAIM_NAME_MAX + 1] = '\0';
    assert_false(ajw_claim_name_exportable(longname));
}

static void test_env_name(void **state)
{
    (void)state;
    assert_string_equal(ajw_env_name(pool, "JWT_CLAIM_", "email"), "JWT_CLAIM_EMAIL");
    assert_string_equal(ajw_env_name(pool, "JWT_CLAIM_", "email_verified"),
                        "JWT_CLAIM_EMAIL_VERIFIED");
    assert_string_equal(ajw_env_name(pool, "OIDC_", "r0"), "OIDC_R0");
}

static void test_header_name(void **state)
{
    (void)state;
    assert_string_equal(ajw_header_name(pool, "X-JWT-Claim-", "email_verified"),
                        "X-JWT-Claim-email-verified");
    assert_string_equal(ajw_header_name(pool, "X-JWT-Claim-", "sub"), "X-JWT-Claim-sub");
}

static void test_reserved_names(void **state)
{
    static const char *const env[] = { "JWT_CLAIMS", "JWT_ALG", "JWT_KID", "REMOTE_USER",
                                       "AUTH_TYPE" };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(env) / sizeof(env[0]); i++)
        assert_true(ajw_env_name_reserved(env[i]));
    assert_false(ajw_env_name_reserved("JWT_CLAIM_KID"));
    assert_false(ajw_env_name_reserved("jwt_kid"));
    assert_true(ajw_header_name_reserved("X-JWT-Claims"));
    assert_true(ajw_header_name_reserved("x-jwt-claims"));
    assert_false(ajw_header_name_reserved("X-JWT-Claim-claims"));

    assert_string_equal(ajw_env_prefix_shadows("JWT_"), "JWT_CLAIMS");
    assert_string_equal(ajw_env_prefix_shadows("JWT_CLAIM"), "JWT_CLAIMS");
    assert_string_equal(ajw_env_prefix_shadows("JWT_K"), "JWT_KID");
    assert_string_equal(ajw_env_prefix_shadows("REMOTE_"), "REMOTE_USER");
    assert_null(ajw_env_prefix_shadows("JWT_CLAIM_"));
    assert_null(ajw_env_prefix_shadows("JWT_CLAIMS"));    /* nothing left for a claim */
    assert_null(ajw_env_prefix_shadows("TOKEN_"));
    assert_null(ajw_env_prefix_shadows("OIDC_CLAIM_"));
    assert_null(ajw_env_prefix_shadows("jwt_"));          /* names are upper-cased */
    assert_string_equal(ajw_header_prefix_shadows("X-JWT-"), "X-JWT-Claims");
    assert_string_equal(ajw_header_prefix_shadows("x-jwt-c"), "X-JWT-Claims");
    assert_null(ajw_header_prefix_shadows("X-JWT-Claim-"));
    assert_null(ajw_header_prefix_shadows("X-Token-"));
    assert_null(ajw_header_prefix_shadows("JWT-"));
}

typedef struct {
    const char *json;
    const char *want;     /* NULL: not exported */
} text_case_t;

static void test_claim_text(void **state)
{
    static const text_case_t cases[] = {
        /* plain lists */
        { "\"admin\"", "admin" },
        { "[\"user\",\"admin\"]", "user,admin" },
        { "[\"a\"]", "a" },
        { "[1,2.5,true,false,\"x\"]", "1,2.5,true,false,x" },
        { "3", "3" }, { "0.1", "0.1" }, { "2.0", "2.0" }, { "true", "true" },
        { "\"Jos\xc3\xa9 100%\"", "Jos\xc3\xa9 100%" },
        { "\"a b\"", "a b" },
        { "\"null\"", "null" },
        { "\"a]\"", "a]" },
        /* JSON: whatever a split at ',' would misread */
        { "\"user,admin\"", "\"user,admin\"" },
        { "[\"user,admin\"]", "[\"user,admin\"]" },
        { "[[\"user\",\"admin\"]]", "[[\"user\",\"admin\"]]" },
        { "[\"user\",[\"admin\"]]", "[\"user\",[\"admin\"]]" },
        { "[null,\"admin\"]", "[null,\"admin\"]" },
        { "\"\"", "\"\"" },
        { "[]", "[]" },
        { "[\"\"]", "[\"\"]" },
        { "{}", "{}" },
        { "{\"a\":[1,\"b,c\"],\"n\":null}", "{\"a\":[1,\"b,c\"],\"n\":null}" },
        { "\"a\\\"b\"", "\"a\\\"b\"" },
        { "\"a\\\\b\"", "\"a\\\\b\"" },
        { "\" admin\"", "\" admin\"" },
        { "\"admin \"", "\"admin \"" },
        { "\"\\u00a0admin\"", "\"\xc2\xa0" "admin\"" },
        { "\"admin\\u3000\"", "\"admin\xe3\x80\x80\"" },
        { "\"[admin]\"", "\"[admin]\"" },
        { "\"{x\"", "\"{x\"" },
        { "\"\\\"x\"", "\"\\\"x\"" },
        /* controls escaped, never raw */
        { "\"bob\\nJWT_CLAIM_ROLES=admin\"", "\"bob\\nJWT_CLAIM_ROLES=admin\"" },
        { "\"a\\r\\n\\t\\b\\fz\"", "\"a\\r\\n\\t\\b\\fz\"" },
        { "\"\\u0001\\u001f\\u007f\"", "\"\\u0001\\u001f\\u007f\"" },
        { "\"x\\u0085\\u009f\"", "\"x\\u0085\\u009f\"" },
        { "\"\\u2028\\u2029\"", "\"\\u2028\\u2029\"" },
        { "\"\\u202e\\u200e\\u200f\\u2066\\u2069\\u061c\"",
          "\"\\u202e\\u200e\\u200f\\u2066\\u2069\\u061c\"" },
        { "[\"ok\",\"a\\nb\"]", "[\"ok\",\"a\\nb\"]" },
        { "\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80" },
        /* null: as if absent */
        { "null", NULL },
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = tu_json(cases[i].json, 0);
        const char *got = ajw_claim_text(doc_of(v), pool);
        if (cases[i].want ? !got || strcmp(got, cases[i].want) : got != NULL)
            fail_msg("case %zu %s: got [%s] want [%s]", i, cases[i].json, got ? got : "(null)",
                     cases[i].want ? cases[i].want : "(null)");
        json_decref(v);
    }
    assert_null(ajw_claim_text(NULL, pool));
}

/* The documented reading: a text not starting with " [ { split at ','
 * gives back exactly the elements; no text holds a control byte. */
static void test_claim_text_split(void **state)
{
    static const char *const arrays[] = {
        "[\"a\",\"b\",\"c\"]", "[\"a,b\",\"c\"]", "[\",\"]", "[\"\",\"\"]", "[\"a\",null]",
        "[\" a\",\"b \"]", "[\"[a\",\"b\"]", "[1,\"1\",true]", "[\"\\n\",\"x\"]",
    };
    size_t i, j;
    (void)state;
    for (i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
        json_t *v = tu_json(arrays[i], 0), *el;
        const char *t = ajw_claim_text(doc_of(v), pool), *s;
        for (s = t; *s; s++)
            assert_false((unsigned char)*s < 0x20 || *s == 0x7f);
        if (t[0] == '"' || t[0] == '[' || t[0] == '{') {
            json_t *back = tu_json(t, 0);
            assert_true(json_equal(back, v));
            json_decref(back);
        }
        else {
            s = t;
            json_array_foreach(v, j, el) {
                size_t n = strcspn(s, ",");
                char *d = json_is_string(el) ? NULL : json_dumps(el, JSON_ENCODE_ANY);
                const char *want = d ? d : json_string_value(el);
                assert_int_equal(n, strlen(want));
                assert_memory_equal(s, want, n);
                free(d);
                s += n + (s[n] == ',');
            }
            assert_int_equal(*s, '\0');
        }
        json_decref(v);
    }
}

static void test_claim_json(void **state)
{
    json_t *v = tu_json("{\"sub\":\"a\\nb\",\"r\":0.1,\"i\":-3,\"a\":[true,null,{}],\"u\":\"\\u2028\"}", 0);
    (void)state;
    assert_string_equal(ajw_claim_json(doc_of(v), pool),
                        "{\"sub\":\"a\\nb\",\"r\":0.1,\"i\":-3,\"a\":[true,null,{}],"
                        "\"u\":\"\\u2028\"}");
    assert_string_equal(ajw_claim_json(NULL, pool), "");
    json_decref(v);
    v = json_object();
    json_object_set_new(v, "k\x7f", json_string("v"));
    assert_string_equal(ajw_claim_json(doc_of(v), pool), "{\"k\\u007f\":\"v\"}");
    json_decref(v);
    /* a string jansson was told not to check: bad bytes become U+FFFD */
    v = json_stringn_nocheck("a\xff" "b", 3);
    assert_string_equal(ajw_claim_json(doc_of(v), pool), "\"a\\ufffdb\"");
    assert_string_equal(ajw_claim_text(doc_of(v), pool), "\"a\\ufffdb\"");
    json_decref(v);
}

/* Text said to be its own rendering is, byte for byte; text that is not
 * (white space, reals, escapes, non-ASCII, "-0") is said not to be. */
static void test_claim_json_verbatim(void **state)
{
    static const struct {
        const char *text;
        int verbatim;
    } cases[] = {
        { "{\"sub\":\"u-1\",\"exp\":1764990000,\"n\":-5,\"z\":0,\"t\":true,\"f\":false}", 1 },
        { "{\"a\":[1,\"x y\",null,{\"e\":\"e1\"}],\"o\":{},\"l\":[]}", 1 },
        { "{\"url\":\"https://idp.example/a/b\",\"s\":\"true 1e5 -0 .5\"}", 1 },
        { "{}", 1 },
        { "{\"a\":1 }", 0 },
        { "{ \"a\":1}", 0 },
        { "{\"a\":\n1}", 0 },
        { "{\"a\":1.5}", 0 },
        { "{\"a\":1.0}", 0 },
        { "{\"a\":1e5}", 0 },
        { "{\"a\":1E5}", 0 },
        { "{\"a\":2e-1}", 0 },
        { "{\"a\":-0}", 0 },
        { "{\"a\":[-0]}", 0 },
        { "{\"a\":\"\\/\"}", 0 },
        { "{\"a\":\"\\u0041\"}", 0 },
        { "{\"a\":\"caf\xc3\xa9\"}", 0 },
        { "{\"a\\n\":1}", 0 },
        { "{\"a\":\"\x7f\"}", 0 },
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i].text;
        const ajw_val_t *d = NULL;
        size_t n = 0;
        ajw_error_t e;
        int v = ajw_claim_json_is_verbatim(t, strlen(t));
        if (v != cases[i].verbatim)
            fail_msg("case %zu %s: verbatim %d", i, t, v);
        if (ajw_json_parse_doc(&d, &n, t, strlen(t), 1 << 16, 16, pool, &e) != AJW_OK)
            fail_msg("case %zu %s: does not parse: %s", i, t, e.text);
        if (v)        /* when not, the rendering may or may not differ ("1.5") */
            assert_string_equal(ajw_claim_json(d, pool), t);
    }
    /* past 64 members the parser goes the tree way: the order, and so the
     * verbatim text, must hold there too */
    {
        char *big = apr_pstrdup(pool, "{");
        const ajw_val_t *d = NULL;
        size_t n = 0;
        ajw_error_t e;
        for (i = 0; i < 100; i++)
            big = apr_psprintf(pool, "%s%s\"c%" APR_SIZE_T_FMT "\":%" APR_SIZE_T_FMT, big,
                               i ? "," : "", (i * 37) % 100, i);
        big = apr_pstrcat(pool, big, "}", NULL);
        assert_true(ajw_claim_json_is_verbatim(big, strlen(big)));
        if (ajw_json_parse_doc(&d, &n, big, strlen(big), 1 << 16, 16, pool, &e) != AJW_OK)
            fail_msg("100 members do not parse: %s", e.text);
        assert_string_equal(ajw_claim_json(d, pool), big);
    }
}

/* The reference variant: a plain string claim is the document's own bytes,
 * anything else the text ajw_claim_text renders. */
static void test_claim_text_ref(void **state)
{
    static const char *const texts[] = { "\"plain\"", "\"a,b\"", "[\"a\",\"b\"]", "7", "true",
                                         "{\"x\":1}", "\"\"", "[\"only\"]" };
    size_t i, len = 99;
    (void)state;
    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        json_t *j = tu_json(texts[i], 0);
        const ajw_val_t *v = doc_of(j);
        const char *r = ajw_claim_text_ref(v, pool, &len);
        assert_non_null(r);
        assert_string_equal(r, ajw_claim_text(v, pool));
        assert_int_equal(len, strlen(r));
        if (i == 0)
            assert_ptr_equal(r, ajw_val_str(v));
        json_decref(j);
    }
    len = 99;
    assert_null(ajw_claim_text_ref(NULL, pool, &len));
    assert_int_equal(len, 99);
}

static void test_header_value(void **state)
{
    (void)state;
    assert_string_equal(ajw_header_value(pool, "plain value, ok"), "plain value, ok");
    assert_string_equal(ajw_header_value(pool, "a\r\nX-Evil: 1"), "a%0D%0AX-Evil: 1");
    assert_string_equal(ajw_header_value(pool, "100%"), "100%25");
    assert_string_equal(ajw_header_value(pool, "Jos\xc3\xa9"), "Jos%C3%A9");
    assert_string_equal(ajw_header_value(pool, "\x7f\x01\t"), "%7F%01%09");
    assert_string_equal(ajw_header_value(pool, ""), "");
}

static void test_user_text(void **state)
{
    static const struct { const char *s; const char *why; } cases[] = {
        { "alice", NULL }, { "alice@example.com", NULL }, { "Jos\xc3\xa9 M", NULL },
        { "12345", NULL }, { "a b", NULL },
        { "", "is empty" },
        { " alice", "has leading or trailing whitespace" },
        { "alice ", "has leading or trailing whitespace" },
        { "alice\xc2\xa0", "has leading or trailing whitespace" },
        { "\xe3\x80\x80" "alice", "has leading or trailing whitespace" },
        { "\xe2\x80\x8a" "alice", "has leading or trailing whitespace" },
        { "ali\nce", "holds U+000A, a control character" },
        { "ali\x7f" "ce", "holds U+007F, a control character" },
        { "ali\xc2\x85" "ce", "holds U+0085, a control character" },
        { "alice\xc2\x85", "holds U+0085, a control character" },
        { "ali\xe2\x80\xa8" "ce", "holds U+2028, a line or paragraph separator" },
        { "ali\xe2\x80\xa9" "ce", "holds U+2029, a line or paragraph separator" },
        { "\xe2\x80\xae" "admin", "holds U+202E, a bidi control" },
        { "ad\xe2\x80\x8e" "min", "holds U+200E, a bidi control" },
        { "ad\xe2\x80\x8f" "min", "holds U+200F, a bidi control" },
        { "ad\xe2\x81\xa6" "min", "holds U+2066, a bidi control" },
        { "ad\xe2\x81\xa9" "min", "holds U+2069, a bidi control" },
        { "ad\xd8\x9c" "min", "holds U+061C, a bidi control" },
        { "a\xff", "is not valid UTF-8" },
        { "a\xc0\x80", "is not valid UTF-8" },
        { "a\xed\xa0\x80", "is not valid UTF-8" },
        { "a\xe2\x80", "is not valid UTF-8" },
    };
    char why[AJW_USER_WHY_MAX], big[1026];
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = ajw_user_text_problem(cases[i].s, strlen(cases[i].s), why);
        if (cases[i].why ? !got || strcmp(got, cases[i].why) : got != NULL)
            fail_msg("case %zu: got [%s] want [%s]", i, got ? got : "(null)",
                     cases[i].why ? cases[i].why : "(null)");
    }
    memset(big, 'a', sizeof(big));
    assert_null(ajw_user_text_problem(big, 1024, why));
    assert_string_equal(ajw_user_text_problem(big, 1025, why), "is over 1024 bytes");
}

static void test_user_names_issuer(void **state)
{
    static const char u1[] = "alice@https://a.example";
    (void)state;
    assert_true(ajw_user_names_issuer(u1, strlen(u1), "https://a.example"));
    assert_true(ajw_user_names_issuer("x@https://a.example/more", 24, "https://a.example"));
    assert_false(ajw_user_names_issuer(u1, strlen(u1), "https://b.example"));
    assert_false(ajw_user_names_issuer("alice@example.com", 17, "https://a.example"));
    assert_false(ajw_user_names_issuer("https://a.example", 17, "https://a.example"));
    assert_false(ajw_user_names_issuer("a@", 2, "x"));
    assert_false(ajw_user_names_issuer("a@x", 3, ""));
    /* the length bounds the search: no read past n */
    assert_false(ajw_user_names_issuer("a@xy", 3, "xy"));
}

static void test_user_names_url(void **state)
{
    static const char *const yes[] = { "alice@https://a.example", "a@http://x", "a@HTTPS://x",
                                       "a@b@https://", "@http://" };
    static const char *const no[] = { "alice@example.com", "https://a.example", "a@https:/",
                                      "a@ftp://x", "a@http:", "alice" };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(ajw_user_names_url(yes[i], strlen(yes[i])));
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_false(ajw_user_names_url(no[i], strlen(no[i])));
    /* the length bounds the search */
    assert_false(ajw_user_names_url("a@https://x", 8));
}

static void test_string_text(void **state)
{
    (void)state;
    assert_string_equal(ajw_string_text("key-1", 5, pool), "key-1");
    assert_string_equal(ajw_string_text("a,b", 3, pool), "\"a,b\"");
    assert_string_equal(ajw_string_text("k\nJWT_ALG=none", 14, pool), "\"k\\nJWT_ALG=none\"");
    assert_string_equal(ajw_string_text("", 0, pool), "\"\"");
    assert_string_equal(ajw_string_text("ab", 1, pool), "a");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exportable_names),
        cmocka_unit_test(test_env_name),
        cmocka_unit_test(test_header_name),
        cmocka_unit_test(test_reserved_names),
        cmocka_unit_test(test_claim_text),
        cmocka_unit_test(test_claim_text_split),
        cmocka_unit_test(test_claim_json),
        cmocka_unit_test(test_claim_json_verbatim),
        cmocka_unit_test(test_claim_text_ref),
        cmocka_unit_test(test_header_value),
        cmocka_unit_test(test_user_text),
        cmocka_unit_test(test_user_names_issuer),
        cmocka_unit_test(test_user_names_url),
        cmocka_unit_test(test_string_text),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
