/* test_json.c — strict parsing, caps, path lookup and rendering. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "ajw_json.h"

static apr_pool_t *pool;

static ajw_reason_e parse(json_t **v, const char *s)
{
    ajw_error_t err;
    return ajw_json_parse_object(v, s, strlen(s), 4096, AJW_MAX_JSON_DEPTH, pool, &err);
}

typedef struct {
    const char *in;
    ajw_reason_e want;
} jcase_t;

static const jcase_t cases[] = {
    { "{}", AJW_OK },
    { " {\"a\":1} \n", AJW_OK },
    { "{\"a\":1,\"b\":{\"c\":[1,2,{\"d\":null}]}}", AJW_OK },
    { "{\"a\":1,\"a\":2}", AJW_R_MALFORMED },                 /* duplicate top level */
    { "{\"a\":{\"b\":1,\"b\":1}}", AJW_R_MALFORMED },         /* duplicate nested */
    { "{\"a\":[{\"x\":1,\"x\":2}]}", AJW_R_MALFORMED },       /* duplicate in array */
    { "{\"a\":1}x", AJW_R_MALFORMED },                        /* trailing garbage */
    { "{\"a\":1}{}", AJW_R_MALFORMED },
    { "{\"a\":1},", AJW_R_MALFORMED },
    { "[1,2]", AJW_R_MALFORMED },                             /* not an object */
    { "\"str\"", AJW_R_MALFORMED },
    { "42", AJW_R_MALFORMED },
    { "null", AJW_R_MALFORMED },
    { "", AJW_R_MALFORMED },
    { "{\"a\":\"x\\u0000y\"}", AJW_R_MALFORMED },             /* embedded NUL */
    { "{\"a\\u0000b\":1}", AJW_R_MALFORMED },
    { "{\"a\":1,}", AJW_R_MALFORMED },
    { "{'a':1}", AJW_R_MALFORMED },
    { "{\"a\":NaN}", AJW_R_MALFORMED },
    { "{\"a\":\"\xff\"}", AJW_R_MALFORMED },                  /* invalid UTF-8 */
    { "{\"a\":99999999999999999999999}", AJW_R_MALFORMED },   /* integer overflow */
    /* The parser's corners (each also checked against jansson below). */
    { "{\"a\":9223372036854775807,\"b\":-9223372036854775808}", AJW_OK },
    { "{\"a\":9223372036854775808}", AJW_R_MALFORMED },
    { "{\"a\":-9223372036854775809}", AJW_R_MALFORMED },
    { "{\"a\":-0,\"b\":0.5,\"c\":-1.5e-3,\"d\":2E+10,\"e\":1e-400}", AJW_OK },
    { "{\"a\":1e400}", AJW_R_MALFORMED },                   /* real overflow */
    { "{\"a\":01}", AJW_R_MALFORMED },                      /* leading zero */
    { "{\"a\":-}", AJW_R_MALFORMED },
    { "{\"a\":1.}", AJW_R_MALFORMED },
    { "{\"a\":.5}", AJW_R_MALFORMED },
    { "{\"a\":1e}", AJW_R_MALFORMED },
    { "{\"a\":+1}", AJW_R_MALFORMED },
    { "{\"a\":tru}", AJW_R_MALFORMED },
    { "{\"a\":truex}", AJW_R_MALFORMED },
    { "{\"a\":\"\\ud83d\\ude00\\u00e9\\n\\t\\/\\\\\\\"\"}", AJW_OK }, /* escapes, a pair */
    { "{\"a\":\"\\ud83d\"}", AJW_R_MALFORMED },          /* lone high surrogate */
    { "{\"a\":\"\\ude00\"}", AJW_R_MALFORMED },          /* lone low surrogate */
    { "{\"a\":\"\\ud83d\\u0041\"}", AJW_R_MALFORMED },   /* high + non-low */
    { "{\"a\":\"\\u12\"}", AJW_R_MALFORMED },
    { "{\"a\":\"\\x\"}", AJW_R_MALFORMED },
    { "{\"a\":\"tab\there\"}", AJW_R_MALFORMED },           /* raw control byte */
    { "{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", AJW_OK },  /* UTF-8 2, 3, 4 bytes */
    { "{\"a\":\"\xc0\x80\"}", AJW_R_MALFORMED },           /* overlong */
    { "{\"a\":\"\xe0\x80\xaf\"}", AJW_R_MALFORMED },
    { "{\"a\":\"\xed\xa0\x80\"}", AJW_R_MALFORMED },       /* encoded surrogate */
    { "{\"a\":\"\xf4\x90\x80\x80\"}", AJW_R_MALFORMED },   /* above U+10FFFF */
    { "{\"a\":\"\xc3\"}", AJW_R_MALFORMED },               /* truncated */
    { "{\"k\\u0041\":1,\"kA\":2}", AJW_R_MALFORMED },       /* duplicate once unescaped */
    { "{\"a\":[1,]}", AJW_R_MALFORMED },
    { "{\"a\":[,1]}", AJW_R_MALFORMED },
    { "{\"a\" 1}", AJW_R_MALFORMED },
    { "{\"a\":1 \"b\":2}", AJW_R_MALFORMED },
    { "{\"a\":\"unterminated}", AJW_R_MALFORMED },
    { "{\"a\":[]}\r\n\t ", AJW_OK },
    { "{\"a\":{}\f}", AJW_R_MALFORMED },                    /* \f is not JSON whitespace */
};

/* Every case, parsed by jansson itself (the reference): the same outcome,
 * and equal values where both accept. */
static void test_table_agrees_with_jansson(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *a = NULL, *b = NULL;
        ajw_error_t ea, eb;
        ajw_reason_e ra = ajw_json_parse_object(&a, cases[i].in, strlen(cases[i].in), 4096,
                                                AJW_MAX_JSON_DEPTH, pool, &ea);
        ajw_reason_e rb = ajw_json_parse_reference(&b, cases[i].in, strlen(cases[i].in), 4096,
                                                   AJW_MAX_JSON_DEPTH, pool, &eb);
        if (ra != rb)
            fail_msg("case %zu %s: ours %d, jansson %d", i, cases[i].in, ra, rb);
        if (ra == AJW_OK && !json_equal(a, b))
            fail_msg("case %zu %s: values differ", i, cases[i].in);
    }
}

/* Where jansson is lax, ours is not: a NUL byte right after a number or
 * literal ends that token for jansson, which then goes on. */
static void test_stricter_than_jansson_on_nul(void **state)
{
    static const char buf[] = "{\"x\":2\0}";
    json_t *v = NULL;
    ajw_error_t err;
    (void)state;
    assert_int_equal(ajw_json_parse_object(&v, buf, sizeof(buf) - 1, 100, 4, pool, &err),
                     AJW_R_MALFORMED);
}

/* A long string with escapes (the scratch buffer on the heap, not the
 * stack), and the unescaped value exactly right. */
static void test_long_escaped_string(void **state)
{
    char *in = apr_palloc(pool, 4000);
    json_t *v = NULL;
    ajw_error_t err;
    size_t i, o = 0;
    const char *got;
    (void)state;
    o += (size_t)sprintf(in, "{\"k\":\"");
    for (i = 0; i < 500; i++)
        o += (size_t)sprintf(in + o, "a\\u00e9");
    o += (size_t)sprintf(in + o, "\"}");
    assert_int_equal(ajw_json_parse_object(&v, in, o, 8192, 4, pool, &err), AJW_OK);
    got = json_string_value(json_object_get(v, "k"));
    assert_non_null(got);
    assert_int_equal(strlen(got), 1500);
    assert_memory_equal(got, "a\xc3\xa9" "a\xc3\xa9", 6);
}

/* The document parser decides every case as the tree parser does, with
 * the same text, and writes the tree's document byte for byte. */
static ajw_reason_e doc_agrees(const char *in, size_t len, size_t depth)
{
    json_t *t = NULL;
    const ajw_val_t *d = NULL, *want;
    size_t n = 0, wn = 0;
    ajw_error_t et, ed;
    ajw_reason_e rt, rd;
    memset(&et, 0, sizeof(et));
    memset(&ed, 0, sizeof(ed));
    rt = ajw_json_parse_object(&t, in, len, 1 << 20, depth, pool, &et);
    rd = ajw_json_parse_doc(&d, &n, in, len, 1 << 20, depth, pool, &ed);
    assert_int_equal(rd, rt);
    if (rt != AJW_OK) {
        assert_null(d);
        assert_string_equal(ed.text, et.text);
        return rd;
    }
    want = ajw_doc_make(t, pool, &wn);
    assert_non_null(d);
    assert_int_equal(n, wn);
    assert_memory_equal(d, want, n);
    return rd;
}

static ajw_reason_e doc_agrees_s(const char *in, size_t depth)
{
    return doc_agrees(in, strlen(in), depth);
}

static void test_parse_doc(void **state)
{
    char big[4096], *o;
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        doc_agrees(cases[i].in, strlen(cases[i].in), AJW_MAX_JSON_DEPTH);
    assert_int_equal(doc_agrees_s("{\"a\":{\"b\":{}}}", 2), AJW_R_MALFORMED);   /* too deep */
    assert_int_equal(doc_agrees_s("{\"a\":{\"b\":{}}}", 3), AJW_OK);
    assert_int_equal(doc_agrees_s("{\"r\":1.000000000000000000000000000000000000000000000000"
                                  "00000000000001}", 0), AJW_OK);           /* a long real */
    assert_int_equal(doc_agrees_s("{\"a\\u0062\":1,\"ab\":2}", 0),
                     AJW_R_MALFORMED);                                  /* escaped duplicate */
    doc_agrees_s("{\"s\":\"\\u00e9\\n\",\"t\":[true,false,null,-0,1e3]}", 0);
    /* More members than the document writer scans for duplicates: the
     * tree path decides, the result is the same document. */
    for (i = 0, o = big; i < 100; i++)
        o += sprintf(o, "%s\"k%zu\":%zu", i ? "," : "{", i, i);
    strcpy(o, "}");
    assert_int_equal(doc_agrees(big, strlen(big), 0), AJW_OK);
    big[strlen(big) - 1] = '\0';
    strcat(big, ",\"k7\":1}");                                     /* a duplicate past 64 */
    assert_int_equal(doc_agrees(big, strlen(big), 0), AJW_R_MALFORMED);
}

static void test_table(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = NULL;
        ajw_reason_e rv = parse(&v, cases[i].in);
        if (rv != cases[i].want)
            fail_msg("case %zu %s: got %d want %d", i, cases[i].in, rv, cases[i].want);
    }
}

static void test_nul_byte_in_buffer(void **state)
{
    static const char buf[] = "{\"a\":1}\0{}";
    json_t *v;
    ajw_error_t err;
    (void)state;
    assert_int_equal(ajw_json_parse_object(&v, buf, sizeof(buf) - 1, 100, 4, pool, &err),
                     AJW_R_MALFORMED);
    assert_int_equal(ajw_json_parse_object(&v, buf, 7, 100, 4, pool, &err), AJW_OK);
}

/* n nested objects: {"a":{"a":...{}}} */
static char *nested(size_t n)
{
    char *s = apr_palloc(pool, n * 6 + 3), *o = s;
    size_t i;
    for (i = 0; i + 1 < n; i++) {
        memcpy(o, "{\"a\":", 5);
        o += 5;
    }
    *o++ = '{';
    *o++ = '}';
    for (i = 0; i + 1 < n; i++)
        *o++ = '}';
    *o = '\0';
    return s;
}

static void test_depth(void **state)
{
    json_t *v;
    ajw_error_t err;
    char *s;
    (void)state;
    s = nested(16);
    assert_int_equal(ajw_json_parse_object(&v, s, strlen(s), 4096, 16, pool, &err), AJW_OK);
    s = nested(17);
    assert_int_equal(ajw_json_parse_object(&v, s, strlen(s), 4096, 16, pool, &err),
                     AJW_R_MALFORMED);
    assert_non_null(strstr(err.text, "16"));
    s = "{\"a\":[[[1]]]}";  /* depth 4 */
    assert_int_equal(ajw_json_parse_object(&v, s, strlen(s), 4096, 4, pool, &err), AJW_OK);
    assert_int_equal(ajw_json_parse_object(&v, s, strlen(s), 4096, 3, pool, &err),
                     AJW_R_MALFORMED);
    s = nested(3000);  /* beyond jansson's own limit: still just malformed */
    assert_int_equal(ajw_json_parse_object(&v, s, strlen(s), 100000, 16, pool, &err),
                     AJW_R_MALFORMED);
}

static void test_size_cap(void **state)
{
    const char *s = "{\"a\":\"0123456789\"}";
    json_t *v;
    ajw_error_t err;
    (void)state;
    assert_int_equal(ajw_json_parse_object(&v, s, strlen(s), strlen(s), 16, pool, &err), AJW_OK);
    assert_int_equal(ajw_json_parse_object(&v, s, strlen(s), strlen(s) - 1, 16, pool, &err),
                     AJW_R_TOO_LARGE);
    assert_null(strstr(err.text, "0123456789"));
}

static void test_error_text_has_no_input(void **state)
{
    const char *s = "{\"secret\":\"hunter2\",\"secret\":\"hunter2\"}";
    json_t *v;
    ajw_error_t err;
    (void)state;
    assert_int_equal(ajw_json_parse_object(&v, s, strlen(s), 4096, 16, pool, &err),
                     AJW_R_MALFORMED);
    assert_null(strstr(err.text, "hunter2"));
}

static void test_path(void **state)
{
    json_t *v = NULL;
    const ajw_val_t *d, *r;
    (void)state;
    assert_int_equal(parse(&v, "{\"realm_access\":{\"roles\":[\"a\",\"b\"]},"
                               "\"a.b\":\"dotted\",\"a\":{\"b\":\"nested\",\"bc\":1},"
                               "\"x\":{\"y\":{\"z\":true}},\"s\":\"str\"}"),
                     AJW_OK);
    d = ajw_doc_make(v, pool, NULL);
    assert_non_null(d);
    r = ajw_val_path(d, "realm_access.roles");
    assert_true(ajw_val_is_array(r));
    assert_int_equal(ajw_val_count(r), 2);
    /* a literal "a.b" member never answers for the nested path a.b */
    assert_string_equal(ajw_val_str(ajw_val_path(d, "a.b")), "nested");
    assert_true(ajw_val_is_true(ajw_val_path(d, "x.y.z")));
    assert_true(ajw_val_is_object(ajw_val_path(d, "x.y")));
    assert_null(ajw_val_path(d, "realm_access.role"));   /* prefix */
    assert_null(ajw_val_path(d, "realm_acces.roles"));
    assert_null(ajw_val_path(d, "realm_access.roles.x"));
    assert_null(ajw_val_path(d, "realm"));
    assert_null(ajw_val_path(d, "s.x"));
    assert_null(ajw_val_path(d, "x.y.z.w"));
    assert_null(ajw_val_path(d, "x..y"));
    assert_null(ajw_val_path(d, ".x"));
    assert_null(ajw_val_path(d, "x."));
    assert_null(ajw_val_path(d, ""));
    assert_null(ajw_val_path(NULL, "x"));
    assert_null(ajw_val_path(d, NULL));
    assert_true(ajw_val_is_integer(ajw_val_path(d, "a.bc")));
    assert_int_equal(ajw_val_int(ajw_val_path(d, "a.bc")), 1);
}

/* The issue-6 confusion: a literal dotted member must neither grant nor
 * shadow the nested value. */
static void test_path_literal_dotted_member(void **state)
{
    json_t *v = NULL;
    const ajw_val_t *d;
    (void)state;
    assert_int_equal(parse(&v, "{\"realm_access\":{\"roles\":[\"user\"]},"
                               "\"realm_access.roles\":\"admin\",\"only.literal\":1}"),
                     AJW_OK);
    d = ajw_doc_make(v, pool, NULL);
    assert_non_null(d);
    assert_true(ajw_val_is_array(ajw_val_path(d, "realm_access.roles")));
    assert_null(ajw_val_path(d, "only.literal"));
}

/* A value's document (in pool), for the number texts below. */
static const ajw_val_t *doc_of(const json_t *v)
{
    const ajw_val_t *d = ajw_doc_make(v, pool, NULL);
    assert_non_null(d);
    return d;
}

/* Number texts as the export shows them and regexes see them. */
static void test_number_text(void **state)
{
    static const struct { const char *json; const char *want; } nums[] = {
        { "-42", "-42" }, { "1.5", "1.5" }, { "0.1", "0.1" }, { "2.0", "2.0" },
        { "1e300", "1e+300" }, { "1e-1", "0.1" }, { "0.30000000000000004", "0.30000000000000004" },
        { "-0.0", "-0.0" }, { "123456789012.5", "123456789012.5" }, { "1e22", "1e+22" },
        { "5e-324", "5e-324" }, { "1.7976931348623157e308", "1.7976931348623157e+308" },
    };
    char buf[AJW_NUMBER_TEXT_MAX];
    size_t i;
    json_t *s = json_string("3");
    (void)state;
    for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        json_t *n = json_loads(nums[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(n);
        assert_int_equal(ajw_val_number_text(doc_of(n), buf), strlen(nums[i].want));
        assert_string_equal(buf, nums[i].want);
        json_decref(n);
    }
    assert_int_equal(ajw_val_number_text(doc_of(s), buf), 0);
    assert_string_equal(buf, "");
    assert_int_equal(ajw_val_number_text(NULL, buf), 0);
    json_decref(s);
}

/* Integers render as "%lld" does, at the edges too. */
static void test_render_integers(void **state)
{
    static const json_int_t ints[] = { 0, 1, -1, 9, 10, -10, 1700000000, 99999999999LL,
                                      INT64_MAX, INT64_MIN, INT64_MIN + 1 };
    size_t i;
    char buf[AJW_NUMBER_TEXT_MAX];
    (void)state;
    for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        char want[32];
        json_t *n = json_integer(ints[i]);
        snprintf(want, sizeof(want), "%lld", (long long)ints[i]);
        ajw_val_number_text(doc_of(n), buf);
        assert_string_equal(buf, want);
        json_decref(n);
    }
}

static void test_get_string(void **state)
{
    json_t *v = NULL;
    size_t len = 0;
    (void)state;
    assert_int_equal(parse(&v, "{\"kid\":\"abc\",\"n\":1}"), AJW_OK);
    assert_string_equal(ajw_json_get_string(v, "kid", &len), "abc");
    assert_int_equal(len, 3);
    assert_null(ajw_json_get_string(v, "n", &len));
    assert_null(ajw_json_get_string(v, "ki", NULL));
    assert_null(ajw_json_get_string(NULL, "kid", NULL));
}

static void test_pool_own(void **state)
{
    apr_pool_t *sub;
    json_t *v = json_object();
    (void)state;
    apr_pool_create(&sub, pool);
    json_incref(v);
    assert_ptr_equal(ajw_json_pool_own(v, sub), v);
    apr_pool_destroy(sub);
    assert_int_equal(v->refcount, 1);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_parse_doc),
        cmocka_unit_test(test_table_agrees_with_jansson),
        cmocka_unit_test(test_stricter_than_jansson_on_nul),
        cmocka_unit_test(test_long_escaped_string),
        cmocka_unit_test(test_nul_byte_in_buffer),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_size_cap),
        cmocka_unit_test(test_error_text_has_no_input),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_path_literal_dotted_member),
        cmocka_unit_test(test_number_text),
        cmocka_unit_test(test_render_integers),
        cmocka_unit_test(test_get_string),
        cmocka_unit_test(test_pool_own),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
