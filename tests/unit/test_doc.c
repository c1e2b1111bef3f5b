/* test_doc.c — flat claims documents (ajw_doc): every type round trip,
 * member lookup and order, sizes, refusals, position independence, dotted
 * paths, and NULL everywhere. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <float.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "ajw_doc.h"
#include "tu_vectors.h"

static apr_pool_t *pool;

/* v's document in pool: made, its size reported and equal to the root's. */
static const ajw_val_t *doc_of(const json_t *v)
{
    size_t size = 12345;
    const ajw_val_t *d = ajw_doc_make(v, pool, &size);
    assert_non_null(d);
    assert_int_equal(size, ajw_doc_size(v));
    assert_int_equal(ajw_val_size(d), size);
    return d;
}

static const ajw_val_t *doc_text(const char *text)
{
    json_t *v = tu_json(text, 0);
    const ajw_val_t *d = doc_of(v);
    json_decref(v);                       /* the document owes nothing to the tree */
    return d;
}

/* ---- scalars ---- */

static void test_null_true_false(void **state)
{
    const ajw_val_t *d;
    json_t *v;
    (void)state;
    v = json_null();
    d = doc_of(v);
    assert_int_equal(ajw_val_type(d), AJW_V_NULL);
    assert_true(ajw_val_is_null(d));
    assert_false(ajw_val_is_boolean(d));
    assert_false(ajw_val_is_number(d));
    assert_int_equal(ajw_val_size(d), 1);
    v = json_true();
    d = doc_of(v);
    assert_int_equal(ajw_val_type(d), AJW_V_TRUE);
    assert_true(ajw_val_is_true(d));
    assert_false(ajw_val_is_false(d));
    assert_true(ajw_val_is_boolean(d));
    assert_false(ajw_val_is_null(d));
    v = json_false();
    d = doc_of(v);
    assert_int_equal(ajw_val_type(d), AJW_V_FALSE);
    assert_true(ajw_val_is_false(d));
    assert_false(ajw_val_is_true(d));
    assert_true(ajw_val_is_boolean(d));
    /* a scalar is no container and no string */
    assert_int_equal(ajw_val_count(d), 0);
    assert_null(ajw_val_first(d, NULL));
    assert_null(ajw_val_str(d));
    assert_int_equal(ajw_val_strlen(d), 0);
    assert_int_equal(ajw_val_int(d), 0);
}

static void test_integers(void **state)
{
    static const long long ints[] = { 0, 1, -1, 42, -42, 1700000000LL, 4102444800LL,
                                      9007199254740993LL, LLONG_MAX, LLONG_MIN,
                                      LLONG_MIN + 1, LLONG_MAX - 1 };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        json_t *v = json_integer((json_int_t)ints[i]);
        const ajw_val_t *d = doc_of(v);
        assert_int_equal(ajw_val_type(d), AJW_V_INT);
        assert_true(ajw_val_is_integer(d));
        assert_true(ajw_val_is_number(d));
        assert_false(ajw_val_is_real(d));
        if (ajw_val_int(d) != ints[i])
            fail_msg("integer %zu: %lld read back as %lld", i, ints[i], ajw_val_int(d));
        assert_true(ajw_val_real(d) == 0.0);   /* not a real */
        assert_int_equal(ajw_val_size(d), 9);
        json_decref(v);
    }
    /* parsed from text too, at both edges */
    assert_true(ajw_val_int(ajw_val_get(doc_text("{\"a\":9223372036854775807}"), "a"))
                == LLONG_MAX);
    assert_true(ajw_val_int(ajw_val_get(doc_text("{\"a\":-9223372036854775808}"), "a"))
                == LLONG_MIN);
}

static void test_reals(void **state)
{
    static const double reals[] = { 0.0, -0.0, 0.1, -1.5, 2.0, 1e300, -1e-300, 5e-324,
                                    DBL_MAX, -DBL_MAX, DBL_MIN, 1700000000.9,
                                    0.30000000000000004 };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
        json_t *v = json_real(reals[i]);
        const ajw_val_t *d;
        double back;
        assert_non_null(v);
        d = doc_of(v);
        assert_int_equal(ajw_val_type(d), AJW_V_REAL);
        assert_true(ajw_val_is_real(d));
        assert_true(ajw_val_is_number(d));
        assert_false(ajw_val_is_integer(d));
        back = ajw_val_real(d);
        /* bit for bit: -0.0 stays -0.0 */
        if (memcmp(&back, &reals[i], sizeof(back)))
            fail_msg("real %zu: %.17g read back as %.17g", i, reals[i], back);
        assert_int_equal(ajw_val_int(d), 0);   /* not an integer */
        assert_int_equal(ajw_val_size(d), 9);
        json_decref(v);
    }
    /* "1.0" stays a real, "1" an integer */
    assert_true(ajw_val_is_real(ajw_val_get(doc_text("{\"a\":1.0,\"b\":1}"), "a")));
    assert_true(ajw_val_is_integer(ajw_val_get(doc_text("{\"a\":1.0,\"b\":1}"), "b")));
}

static void test_strings(void **state)
{
    static const struct { const char *s; size_t len; } strs[] = {
        { "", 0 },
        { "a", 1 },
        { "admin", 5 },
        { "Jos\xc3\xa9", 5 },                              /* 2-byte UTF-8 */
        { "\xe2\x80\xae" "admin\xe3\x80\x80", 11 },         /* 3-byte */
        { "\xf0\x9f\x98\x80", 4 },                          /* 4-byte */
        { "a\nb\t\"\\/", 7 },
        { "with, comma and . dot", 21 },
    };
    size_t i;
    char big[5000];
    json_t *v;
    const ajw_val_t *d;
    (void)state;
    for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        assert_int_equal(strlen(strs[i].s), strs[i].len);
        v = json_stringn(strs[i].s, strs[i].len);
        assert_non_null(v);
        d = doc_of(v);
        assert_int_equal(ajw_val_type(d), AJW_V_STRING);
        assert_true(ajw_val_is_string(d));
        assert_int_equal(ajw_val_strlen(d), strs[i].len);
        assert_non_null(ajw_val_str(d));
        assert_memory_equal(ajw_val_str(d), strs[i].s, strs[i].len + 1);  /* NUL-terminated */
        assert_int_equal(ajw_val_size(d), 1 + 4 + strs[i].len + 1);
        assert_int_equal(ajw_val_count(d), 0);
        assert_int_equal(ajw_val_int(d), 0);
        json_decref(v);
    }
    /* the same from JSON escapes */
    d = doc_text("\"\\u00e9\\ud83d\\ude00\"");
    assert_string_equal(ajw_val_str(d), "\xc3\xa9\xf0\x9f\x98\x80");
    assert_int_equal(ajw_val_strlen(d), 6);
    /* a long one */
    memset(big, 'x', sizeof(big));
    v = json_stringn(big, sizeof(big));
    d = doc_of(v);
    assert_int_equal(ajw_val_strlen(d), sizeof(big));
    assert_memory_equal(ajw_val_str(d), big, sizeof(big));
    assert_int_equal(ajw_val_str(d)[sizeof(big)], '\0');
    json_decref(v);
}

/* ---- containers ---- */

static void test_arrays(void **state)
{
    const ajw_val_t *d, *e, *inner;
    const char *name;
    size_t n = 0;
    (void)state;
    d = doc_text("[]");
    assert_true(ajw_val_is_array(d));
    assert_int_equal(ajw_val_count(d), 0);
    name = "unset";
    assert_null(ajw_val_first(d, &name));
    assert_null(name);
    ajw_val_foreach(d, e)
        n++;
    assert_int_equal(n, 0);

    d = doc_text("[null,true,false,-7,2.5,\"s\",[],{},[1,[2]],{\"k\":\"v\"}]");
    assert_true(ajw_val_is_array(d));
    assert_int_equal(ajw_val_count(d), 10);
    name = "unset";
    e = ajw_val_first(d, &name);
    assert_null(name);                     /* an array's elements have no name */
    assert_true(ajw_val_is_null(e));
    e = ajw_val_next(d, e, &name);
    assert_null(name);
    assert_true(ajw_val_is_true(e));
    e = ajw_val_next(d, e, NULL);
    assert_true(ajw_val_is_false(e));
    e = ajw_val_next(d, e, NULL);
    assert_int_equal(ajw_val_int(e), -7);
    e = ajw_val_next(d, e, NULL);
    assert_true(ajw_val_real(e) == 2.5);
    e = ajw_val_next(d, e, NULL);
    assert_string_equal(ajw_val_str(e), "s");
    e = ajw_val_next(d, e, NULL);
    assert_true(ajw_val_is_array(e));
    assert_int_equal(ajw_val_count(e), 0);
    e = ajw_val_next(d, e, NULL);
    assert_true(ajw_val_is_object(e));
    assert_int_equal(ajw_val_count(e), 0);
    e = ajw_val_next(d, e, NULL);
    assert_true(ajw_val_is_array(e));
    assert_int_equal(ajw_val_count(e), 2);
    inner = ajw_val_next(e, ajw_val_first(e, NULL), NULL);
    assert_true(ajw_val_is_array(inner));
    assert_int_equal(ajw_val_int(ajw_val_first(inner, NULL)), 2);
    assert_null(ajw_val_next(e, inner, NULL));
    e = ajw_val_next(d, e, NULL);
    assert_true(ajw_val_is_object(e));
    assert_string_equal(ajw_val_get_string(e, "k", NULL), "v");
    assert_null(ajw_val_next(d, e, NULL));          /* the end */
    /* an array is no object: no member lookup */
    assert_null(ajw_val_get(d, "0"));
    assert_null(ajw_val_get(doc_text("[\"roles\"]"), "roles"));
    n = 0;
    ajw_val_foreach(d, e)
        n++;
    assert_int_equal(n, 10);
}

static void test_objects(void **state)
{
    const ajw_val_t *d, *e, *m;
    const char *name;
    size_t n = 0, len = 99;
    (void)state;
    d = doc_text("{}");
    assert_true(ajw_val_is_object(d));
    assert_int_equal(ajw_val_count(d), 0);
    assert_null(ajw_val_first(d, &name));
    assert_null(ajw_val_get(d, ""));
    assert_null(ajw_val_get(d, "a"));
    ajw_val_foreach_member(d, name, e)
        n++;
    assert_int_equal(n, 0);

    d = doc_text("{\"sub\":\"alice\",\"realm_access\":{\"roles\":[\"user\",\"admin\"],"
                 "\"x\":{\"y\":{\"z\":1}}},\"e\":{},\"\":\"empty name\","
                 "\"caf\\u00e9\":true,\"n\":null}");
    assert_int_equal(ajw_val_count(d), 6);
    assert_string_equal(ajw_val_get_string(d, "sub", &len), "alice");
    assert_int_equal(len, 5);
    assert_null(ajw_val_get_string(d, "realm_access", &len));     /* not a string */
    assert_null(ajw_val_get_string(d, "nope", NULL));
    m = ajw_val_get(d, "realm_access");
    assert_true(ajw_val_is_object(m));
    assert_int_equal(ajw_val_count(m), 2);
    e = ajw_val_get(m, "roles");
    assert_true(ajw_val_is_array(e));
    assert_int_equal(ajw_val_count(e), 2);
    assert_string_equal(ajw_val_str(ajw_val_first(e, NULL)), "user");
    assert_int_equal(ajw_val_int(ajw_val_get(ajw_val_get(ajw_val_get(m, "x"), "y"), "z")), 1);
    assert_true(ajw_val_is_object(ajw_val_get(d, "e")));
    assert_int_equal(ajw_val_count(ajw_val_get(d, "e")), 0);
    assert_string_equal(ajw_val_get_string(d, "", NULL), "empty name");
    assert_true(ajw_val_is_true(ajw_val_get(d, "caf\xc3\xa9")));
    assert_true(ajw_val_is_null(ajw_val_get(d, "n")));          /* present, null ... */
    assert_null(ajw_val_get(d, "m"));                           /* ... is not absent */
}

/* Lookups: whole names only, never a prefix nor an extension; getn reads
 * exactly n bytes of the name. */
static void test_get_names(void **state)
{
    const ajw_val_t *d = doc_text("{\"roles\":[\"a\"],\"rol\":\"short\",\"role\":1,"
                                  "\"a.b\":\"dotted\",\"a\":{\"b\":\"nested\"}}");
    const ajw_val_t *s = doc_text("{\"roles\":1}");
    (void)state;
    assert_true(ajw_val_is_array(ajw_val_get(d, "roles")));
    assert_string_equal(ajw_val_get_string(d, "rol", NULL), "short");
    assert_int_equal(ajw_val_int(ajw_val_get(d, "role")), 1);
    assert_null(ajw_val_get(d, "roless"));
    assert_null(ajw_val_get(d, "ro"));
    assert_null(ajw_val_get(d, "Roles"));
    assert_null(ajw_val_get(d, ""));
    /* "rol" is not found in an object holding only "roles", nor the reverse */
    assert_null(ajw_val_get(s, "rol"));
    assert_null(ajw_val_get(s, "roles "));
    assert_null(ajw_val_get(doc_text("{\"rol\":1}"), "roles"));
    /* getn: n bytes, no NUL needed */
    assert_ptr_equal(ajw_val_getn(d, "rolesXYZ", 5), ajw_val_get(d, "roles"));
    assert_ptr_equal(ajw_val_getn(d, "rolesXYZ", 3), ajw_val_get(d, "rol"));
    assert_ptr_equal(ajw_val_getn(d, "rolesXYZ", 4), ajw_val_get(d, "role"));
    assert_null(ajw_val_getn(d, "rolesXYZ", 6));
    assert_null(ajw_val_getn(d, "rolesXYZ", 2));
    assert_null(ajw_val_getn(d, "roles", 0));
    assert_null(ajw_val_getn(d, "rol\0es", 6));
    /* a member named "a.b" is found by its name; get never walks a path */
    assert_string_equal(ajw_val_get_string(d, "a.b", NULL), "dotted");
    assert_string_equal(ajw_val_str(ajw_val_get(ajw_val_get(d, "a"), "b")), "nested");
    /* not an object: nothing */
    assert_null(ajw_val_get(ajw_val_get(d, "rol"), "rol"));
    assert_null(ajw_val_get(ajw_val_get(d, "role"), "x"));
    assert_null(ajw_val_getn(ajw_val_get(d, "roles"), "a", 1));
    assert_null(ajw_val_get_string(ajw_val_get(d, "roles"), "a", NULL));
    assert_null(ajw_val_get(d, NULL));
    assert_null(ajw_val_getn(d, NULL, 3));
}

/* Members come back in the source's order, names and values paired. */
static void test_member_order(void **state)
{
    static const char *const names[] = { "zeta", "alpha", "mid", "", "a.b", "Alpha", "b",
                                         "\xc3\xa9t\xc3\xa9", "0", "aa" };
    json_t *v = json_object();
    const ajw_val_t *d, *m;
    const char *name, *key;
    json_t *jm;
    size_t i = 0, n = sizeof(names) / sizeof(names[0]);
    (void)state;
    for (i = 0; i < n; i++)
        assert_int_equal(json_object_set_new(v, names[i], json_integer((json_int_t)i)), 0);
    d = doc_of(v);
    assert_int_equal(ajw_val_count(d), n);
    i = 0;
    ajw_val_foreach_member(d, name, m) {
        assert_true(i < n);
        assert_non_null(name);
        assert_string_equal(name, names[i]);
        assert_int_equal(ajw_val_int(m), (long long)i);
        assert_ptr_equal(ajw_val_get(d, names[i]), m);
        i++;
    }
    assert_int_equal(i, n);
    /* and in jansson's own iteration order */
    m = ajw_val_first(d, &name);
    json_object_foreach(v, key, jm) {
        assert_non_null(m);
        assert_string_equal(name, key);
        assert_int_equal(ajw_val_int(m), (long long)json_integer_value(jm));
        m = ajw_val_next(d, m, &name);
    }
    assert_null(m);
    json_decref(v);
    /* a parsed text keeps its order too */
    d = doc_text("{\"c\":1,\"a\":2,\"b\":{\"y\":3,\"x\":4}}");
    m = ajw_val_first(d, &name);
    assert_string_equal(name, "c");
    m = ajw_val_next(d, m, &name);
    assert_string_equal(name, "a");
    m = ajw_val_next(d, m, &name);
    assert_string_equal(name, "b");
    assert_null(ajw_val_next(d, m, &name));
    m = ajw_val_first(m, &name);
    assert_string_equal(name, "y");
    assert_int_equal(ajw_val_int(m), 3);
}

static void test_count(void **state)
{
    static const struct { const char *json; size_t count; } cases[] = {
        { "[]", 0 }, { "{}", 0 }, { "[1]", 1 }, { "[[1,2,3]]", 1 }, { "[1,2,3]", 3 },
        { "{\"a\":[1,2,3],\"b\":{}}", 2 }, { "\"abc\"", 0 }, { "3", 0 }, { "null", 0 },
        { "true", 0 }, { "1.5", 0 },
    };
    json_t *big = json_array();
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (ajw_val_count(doc_text(cases[i].json)) != cases[i].count)
            fail_msg("count of %s", cases[i].json);
    for (i = 0; i < 1000; i++)
        json_array_append_new(big, json_integer((json_int_t)i));
    assert_int_equal(ajw_val_count(doc_of(big)), 1000);
    json_decref(big);
}

/* ---- sizes and writing ---- */

static void test_sizes(void **state)
{
    static const char *const texts[] = {
        "null", "true", "0", "1.5", "\"\"", "\"abc\"", "[]", "{}", "[1,\"a\",[],{}]",
        "{\"sub\":\"alice\",\"exp\":4102444800,\"roles\":[\"a\",\"b\"],\"x\":{\"y\":null}}",
    };
    size_t i;
    (void)state;
    assert_int_equal(ajw_doc_size(NULL), 0);
    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        json_t *v = tu_json(texts[i], 0);
        size_t n = ajw_doc_size(v);
        const ajw_val_t *d = doc_of(v);             /* checks val_size(root) == doc_size */
        assert_true(n > 0);
        assert_int_equal(ajw_val_size(d), n);
        json_decref(v);
    }
    /* the documented layout's sizes */
    assert_int_equal(ajw_val_size(doc_text("[]")), 9);
    assert_int_equal(ajw_val_size(doc_text("{}")), 9);
    assert_int_equal(ajw_val_size(doc_text("{\"ab\":\"xyz\"}")), 9 + 4 + 2 + 1 + 1 + 4 + 3 + 1);
    assert_int_equal(ajw_val_size(doc_text("[true,1]")), 9 + 1 + 9);
}

static void test_write(void **state)
{
    json_t *v = tu_json("{\"sub\":\"alice\",\"roles\":[\"a\",\"b\"],\"n\":-3}", 0);
    size_t n = ajw_doc_size(v);
    unsigned char *buf = malloc(n + 8);
    const ajw_val_t *d;
    (void)state;
    assert_non_null(buf);
    memset(buf, 0x5a, n + 8);
    /* a size that is not the document's is refused, and nothing is written */
    assert_null(ajw_doc_write(v, buf, n - 1));
    assert_null(ajw_doc_write(v, buf, n + 1));
    assert_null(ajw_doc_write(v, buf, 0));
    assert_null(ajw_doc_write(v, buf, n * 2));
    assert_null(ajw_doc_write(v, NULL, n));
    assert_null(ajw_doc_write(NULL, buf, n));
    assert_null(ajw_doc_write(NULL, buf, 0));
    for (size_t i = 0; i < n + 8; i++)
        assert_int_equal(buf[i], 0x5a);
    d = ajw_doc_write(v, buf, n);
    assert_ptr_equal(d, buf);
    assert_int_equal(ajw_val_size(d), n);
    assert_int_equal(buf[n], 0x5a);                 /* not one byte past */
    assert_string_equal(ajw_val_get_string(d, "sub", NULL), "alice");
    assert_int_equal(ajw_val_int(ajw_val_get(d, "n")), -3);
    /* the same bytes as ajw_doc_make's */
    assert_memory_equal(buf, doc_of(v), n);
    free(buf);
    json_decref(v);
}

/* A string holding a NUL byte cannot be a document (strings are
 * NUL-terminated in place and compared as C strings by some readers). */
static void test_embedded_nul(void **state)
{
    json_t *s = json_stringn("ab\0cd", 5), *o, *a;
    size_t size = 777;
    unsigned char buf[64];
    (void)state;
    assert_non_null(s);
    assert_int_equal(json_string_length(s), 5);
    assert_int_equal(ajw_doc_size(s), 0);
    assert_null(ajw_doc_make(s, pool, &size));
    assert_int_equal(size, 0);
    assert_null(ajw_doc_write(s, buf, 0));
    assert_null(ajw_doc_write(s, buf, 1 + 4 + 5 + 1));
    /* anywhere inside: a member's value, an array element, deep down */
    o = json_pack("{s:s, s:O}", "sub", "alice", "bad", s);
    assert_non_null(o);
    assert_int_equal(ajw_doc_size(o), 0);
    assert_null(ajw_doc_make(o, pool, NULL));
    a = json_pack("[i, {s:[O]}]", 1, "x", s);
    assert_non_null(a);
    assert_int_equal(ajw_doc_size(a), 0);
    assert_null(ajw_doc_make(a, pool, &size));
    assert_int_equal(size, 0);
    /* a trailing NUL counts too */
    json_decref(s);
    s = json_stringn("abc\0", 4);
    assert_int_equal(ajw_doc_size(s), 0);
    json_decref(s);
    json_decref(o);
    json_decref(a);
}

/* A document is position independent: copied anywhere (at an odd address
 * too) it reads the same, with its source gone. */
static void test_copy(void **state)
{
    apr_pool_t *src;
    json_t *v = tu_json("{\"sub\":\"alice\",\"exp\":4102444800,\"r\":0.25,"
                     "\"realm_access\":{\"roles\":[\"user\",\"admin\"]},\"t\":true,"
                     "\"e\":[],\"o\":{},\"n\":null,\"u\":\"\\u00e9\"}", 0);
    size_t size = 0, i;
    const ajw_val_t *d, *c, *m;
    unsigned char *buf;
    const char *name;
    static const char *const order[] = { "sub", "exp", "r", "realm_access", "t", "e", "o",
                                         "n", "u" };
    (void)state;
    assert_int_equal(apr_pool_create(&src, pool), APR_SUCCESS);
    d = ajw_doc_make(v, src, &size);
    json_decref(v);
    assert_non_null(d);
    buf = malloc(size + 3);
    assert_non_null(buf);
    memcpy(buf + 3, d, size);
    c = (const ajw_val_t *)(buf + 3);
    memset((void *)d, 0xee, size);        /* the source is overwritten ... */
    apr_pool_destroy(src);                /* ... and gone */
    assert_int_equal(ajw_val_size(c), size);
    assert_int_equal(ajw_val_count(c), 9);
    assert_string_equal(ajw_val_get_string(c, "sub", NULL), "alice");
    assert_true(ajw_val_int(ajw_val_get(c, "exp")) == 4102444800LL);
    assert_true(ajw_val_real(ajw_val_get(c, "r")) == 0.25);
    assert_true(ajw_val_is_true(ajw_val_get(c, "t")));
    assert_true(ajw_val_is_null(ajw_val_get(c, "n")));
    assert_string_equal(ajw_val_get_string(c, "u", NULL), "\xc3\xa9");
    m = ajw_val_path(c, "realm_access.roles");
    assert_int_equal(ajw_val_count(m), 2);
    assert_string_equal(ajw_val_str(ajw_val_next(m, ajw_val_first(m, NULL), NULL)), "admin");
    i = 0;
    ajw_val_foreach_member(c, name, m) {
        assert_true(i < 9);
        assert_string_equal(name, order[i]);
        i++;
    }
    assert_int_equal(i, 9);
    /* pointers handed out lie inside the copy */
    m = ajw_val_get(c, "sub");
    assert_true((const unsigned char *)m > buf + 3
                && (const unsigned char *)m < buf + 3 + size);
    free(buf);
}

/* ---- dotted paths ---- */

static void test_path(void **state)
{
    const ajw_val_t *d = doc_text("{\"realm_access\":{\"roles\":[\"a\",\"b\"]},"
                                  "\"a.b\":\"dotted\",\"a\":{\"b\":\"nested\",\"bc\":1},"
                                  "\"x\":{\"y\":{\"z\":true}},\"s\":\"str\","
                                  "\"only.literal\":1,\"n\":null}");
    const ajw_val_t *r;
    (void)state;
    r = ajw_val_path(d, "realm_access.roles");
    assert_true(ajw_val_is_array(r));
    assert_int_equal(ajw_val_count(r), 2);
    assert_ptr_equal(r, ajw_val_get(ajw_val_get(d, "realm_access"), "roles"));
    /* a literal "a.b" member never answers for the nested path a.b */
    assert_string_equal(ajw_val_str(ajw_val_path(d, "a.b")), "nested");
    assert_null(ajw_val_path(d, "only.literal"));
    assert_true(ajw_val_is_true(ajw_val_path(d, "x.y.z")));
    assert_true(ajw_val_is_object(ajw_val_path(d, "x.y")));
    assert_int_equal(ajw_val_int(ajw_val_path(d, "a.bc")), 1);
    /* a path without a dot is a plain member */
    assert_ptr_equal(ajw_val_path(d, "s"), ajw_val_get(d, "s"));
    assert_true(ajw_val_is_null(ajw_val_path(d, "n")));
    /* prefixes, misspellings, too deep, empty segments */
    assert_null(ajw_val_path(d, "realm_access.role"));
    assert_null(ajw_val_path(d, "realm_acces.roles"));
    assert_null(ajw_val_path(d, "realm"));
    assert_null(ajw_val_path(d, "a.b.c"));
    assert_null(ajw_val_path(d, "x.y.z.w"));
    assert_null(ajw_val_path(d, "x..y"));
    assert_null(ajw_val_path(d, ".x"));
    assert_null(ajw_val_path(d, "x."));
    assert_null(ajw_val_path(d, ""));
    /* a non-object in the middle stops the walk */
    assert_null(ajw_val_path(d, "realm_access.roles.x"));
    assert_null(ajw_val_path(d, "realm_access.roles.0"));
    assert_null(ajw_val_path(d, "s.x"));
    assert_null(ajw_val_path(d, "n.x"));
    assert_null(ajw_val_path(d, "a.bc.d"));
    /* the root must be an object */
    assert_null(ajw_val_path(doc_text("[{\"a\":1}]"), "a"));
    assert_null(ajw_val_path(doc_text("\"a\""), "a"));
    assert_null(ajw_val_path(NULL, "x"));
    assert_null(ajw_val_path(d, NULL));
}

/* ---- NULL: absent, accepted everywhere ---- */

static void test_null_everywhere(void **state)
{
    const char *name = "unset";
    size_t len = 5, size = 5;
    const ajw_val_t *v;
    size_t n = 0;
    (void)state;
    assert_int_equal(ajw_doc_size(NULL), 0);
    assert_null(ajw_doc_make(NULL, pool, &size));
    assert_int_equal(size, 0);
    assert_null(ajw_doc_make(NULL, pool, NULL));
    assert_null(ajw_doc_write(NULL, &n, sizeof(n)));
    assert_int_equal(ajw_val_size(NULL), 0);
    assert_int_equal(ajw_val_type(NULL), AJW_V_NONE);
    assert_false(ajw_val_is_string(NULL));
    assert_false(ajw_val_is_object(NULL));
    assert_false(ajw_val_is_array(NULL));
    assert_false(ajw_val_is_integer(NULL));
    assert_false(ajw_val_is_real(NULL));
    assert_false(ajw_val_is_number(NULL));
    assert_false(ajw_val_is_true(NULL));
    assert_false(ajw_val_is_false(NULL));
    assert_false(ajw_val_is_boolean(NULL));
    assert_false(ajw_val_is_null(NULL));
    assert_null(ajw_val_get(NULL, "a"));
    assert_null(ajw_val_get(NULL, NULL));
    assert_null(ajw_val_getn(NULL, "a", 1));
    assert_null(ajw_val_get_string(NULL, "a", &len));
    assert_null(ajw_val_get_string(NULL, "a", NULL));
    assert_int_equal(ajw_val_count(NULL), 0);
    assert_null(ajw_val_first(NULL, &name));
    assert_null(name);
    assert_null(ajw_val_first(NULL, NULL));
    assert_null(ajw_val_next(NULL, NULL, NULL));
    assert_null(ajw_val_next(NULL, NULL, &name));
    v = doc_text("[1]");
    assert_null(ajw_val_next(v, NULL, NULL));
    assert_null(ajw_val_next(NULL, ajw_val_first(v, NULL), NULL));
    assert_null(ajw_val_str(NULL));
    assert_int_equal(ajw_val_strlen(NULL), 0);
    assert_int_equal(ajw_val_int(NULL), 0);
    assert_true(ajw_val_real(NULL) == 0.0);
    assert_null(ajw_val_path(NULL, "a.b"));
    assert_null(ajw_val_path(NULL, NULL));
    ajw_val_foreach(NULL, v)
        n++;
    ajw_val_foreach_member(NULL, name, v)
        n++;
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_true_false),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_reals),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_objects),
        cmocka_unit_test(test_get_names),
        cmocka_unit_test(test_member_order),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_write),
        cmocka_unit_test(test_embedded_nul),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_null_everywhere),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
