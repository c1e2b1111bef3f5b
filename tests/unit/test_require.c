/* test_require.c — `Require claim` and `Require scope` rules. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "tu_vectors.h"
#include "ajw_require.h"

static apr_pool_t *pool;

/* The claims as rules read them: text → jansson tree → flat document (in
 * pool). */
static const ajw_val_t *doc(const char *text)
{
    json_t *v = tu_json(text, 0);
    const ajw_val_t *d = ajw_doc_make(v, pool, NULL);
    json_decref(v);
    if (!d)
        fail_msg("no document for test JSON %s", text);
    return d;
}

typedef struct {
    const char *rule;   /* one alternative */
    const char *claims;
    int want;
} rq_case_t;

static void run_claim_cases(const rq_case_t *cases, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        ajw_require_t *rq = NULL;
        const char *why = NULL;
        const char *argv[1];
        const ajw_val_t *c = doc(cases[i].claims);
        int got;
        argv[0] = cases[i].rule;
        if (ajw_require_claim_compile(&rq, 1, argv, &ajw_regex_posix, pool, &why) != APR_SUCCESS)
            fail_msg("case %zu: compile '%s' failed: %s", i, cases[i].rule, why);
        got = ajw_require_eval(rq, c);
        if (got != cases[i].want)
            fail_msg("case %zu: '%s' on %s: got %d want %d", i, cases[i].rule, cases[i].claims,
                     got, cases[i].want);
    }
}

static void test_claim_exact(void **state)
{
    static const rq_case_t cases[] = {
        { "role:admin", "{\"role\":\"admin\"}", 1 },
        { "role:adm", "{\"role\":\"admin\"}", 0 },
        { "role:admin", "{\"role\":\"adm\"}", 0 },
        { "role:admin", "{\"role\":\"Admin\"}", 0 },
        { "role:admin", "{\"role\":\"admin \"}", 0 },
        { "role:admin", "{\"roles\":\"admin\"}", 0 },
        { "roles:admin", "{\"role\":\"admin\"}", 0 },
        { "role:admin", "{\"rol\":\"admin\"}", 0 },
        { "role:admin", "{}", 0 },
        { "role:", "{\"role\":\"\"}", 1 },
        { "role:", "{\"role\":\"x\"}", 0 },
        /* value may contain ':' and '~' after the first separator */
        { "uri:urn:a:b", "{\"uri\":\"urn:a:b\"}", 1 },
        { "uri:a~b", "{\"uri\":\"a~b\"}", 1 },
        /* objects and null never match */
        { "role:null", "{\"role\":null}", 0 },
        { "role:", "{\"role\":null}", 0 },
        { "role:{}", "{\"role\":{}}", 0 },
        { "role:{\"a\":1}", "{\"role\":{\"a\":1}}", 0 },
    };
    (void)state;
    run_claim_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_claim_arrays(void **state)
{
    static const rq_case_t cases[] = {
        { "roles:admin", "{\"roles\":[\"user\",\"admin\"]}", 1 },
        { "roles:adm", "{\"roles\":[\"user\",\"admin\"]}", 0 },
        { "roles:admin", "{\"roles\":[]}", 0 },
        { "roles:admin", "{\"roles\":[[\"admin\"]]}", 0 },
        { "roles:admin", "{\"roles\":[{\"admin\":1}]}", 0 },
        { "roles:3", "{\"roles\":[1,2,3]}", 1 },
        { "roles:true", "{\"roles\":[false,true]}", 1 },
        { "roles~^adm", "{\"roles\":[\"user\",\"admin\"]}", 1 },
        { "roles~^adm$", "{\"roles\":[\"user\",\"admin\"]}", 0 },
    };
    (void)state;
    run_claim_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_claim_numbers_booleans(void **state)
{
    static const rq_case_t cases[] = {
        { "level:3", "{\"level\":3}", 1 },
        { "level:3", "{\"level\":33}", 0 },
        { "level:3", "{\"level\":\"3\"}", 1 },
        { "level:3", "{\"level\":[3]}", 1 },
        { "level:3", "{\"level\":[[3]]}", 0 },
        { "level:3", "{\"level\":{\"l\":3}}", 0 },
        { "level:3", "{\"level\":\"3.0\"}", 0 },
        { "level:3", "{\"level\":true}", 0 },
        /* numbers compare as numbers: by value, exactly */
        { "level:03", "{\"level\":3}", 0 },        /* not a JSON number: text only */
        { "level:3.0", "{\"level\":3}", 1 },
        { "level:3", "{\"level\":3.0}", 1 },
        { "level:3e0", "{\"level\":3}", 1 },
        { "level:1", "{\"level\":1.0}", 1 },
        { "level:3", "{\"level\":3.5}", 0 },
        { "level:-7", "{\"level\":-7}", 1 },
        { "level:-0", "{\"level\":0}", 1 },
        { "level:9223372036854775807", "{\"level\":9223372036854775807}", 1 },
        { "level:9223372036854775806", "{\"level\":9223372036854775807}", 0 },
        { "level:-9223372036854775808", "{\"level\":-9223372036854775808}", 1 },
        { "level:9007199254740993", "{\"level\":9007199254740992}", 0 },
        { "level:9007199254740992.0", "{\"level\":9007199254740993}", 0 },
        { "level:9223372036854775808", "{\"level\":9223372036854775807}", 0 },
        { "level:1e400", "{\"level\":1}", 0 },
        { "level:1.5", "{\"level\":1.5}", 1 },
        { "level:1.5", "{\"level\":1.50}", 1 },
        { "level:1.50", "{\"level\":1.5}", 1 },
        { "score:0.1", "{\"score\":0.1}", 1 },
        { "score:0.1", "{\"score\":\"0.1\"}", 1 },
        { "score:0.1", "{\"score\":1e-1}", 1 },
        { "score:0.1", "{\"score\":0.10000000000000002}", 0 },
        { "score:0.10", "{\"score\":\"0.1\"}", 0 },  /* strings stay text */
        { "score~^0\\.1$", "{\"score\":0.1}", 1 },   /* regex: the export's text */
        { "score~^0\\.1$", "{\"score\":1e-1}", 1 },
        { "level~^3\\.0$", "{\"level\":3.0}", 1 },
        { "level:x", "{\"level\":3}", 0 },
        { "level:", "{\"level\":3}", 0 },
        { "level:", "{\"level\":\"\"}", 1 },
        { "ok:true", "{\"ok\":true}", 1 },
        { "ok:true", "{\"ok\":false}", 0 },
        { "ok:false", "{\"ok\":false}", 1 },
        { "ok:tru", "{\"ok\":true}", 0 },
        { "ok:true", "{\"ok\":\"true\"}", 1 },
        { "ok~^t", "{\"ok\":true}", 1 },
        { "level~^[0-9]+$", "{\"level\":42}", 1 },
    };
    (void)state;
    run_claim_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_claim_nested(void **state)
{
    static const rq_case_t cases[] = {
        { "realm_access.roles:admin", "{\"realm_access\":{\"roles\":[\"admin\"]}}", 1 },
        { "realm_access.roles:admin", "{\"realm_access\":{\"role\":[\"admin\"]}}", 0 },
        { "realm_access.role:admin", "{\"realm_access\":{\"roles\":[\"admin\"]}}", 0 },
        { "realm.roles:admin", "{\"realm_access\":{\"roles\":[\"admin\"]}}", 0 },
        { "realm_access.roles:admin", "{\"realm_access\":[{\"roles\":\"admin\"}]}", 0 },
        { "a.b.c:x", "{\"a\":{\"b\":{\"c\":\"x\"}}}", 1 },
        { "a.b.c:x", "{\"a\":{\"b\":{\"c\":\"y\"}}}", 0 },
        { "a.b:x", "{\"a\":{\"b\":{\"c\":\"x\"}}}", 0 },
        { "a.b.c.d:x", "{\"a\":{\"b\":{\"c\":\"x\"}}}", 0 },
        /* a dotted path walks nested objects only: a literal member named
         * "realm_access.roles" neither grants nor blocks (issue 6) */
        { "https://ex.com/role:admin", "{\"https://ex.com/role\":\"admin\"}", 0 },
        { "ex.com/role:admin", "{\"ex.com/role\":\"admin\"}", 0 },
        { "[ex.com/role]:admin", "{\"ex.com/role\":\"admin\"}", 1 },
        { "realm_access.roles:admin",
          "{\"realm_access\":{\"roles\":[\"user\"]},\"realm_access.roles\":\"admin\"}", 0 },
        { "realm_access.roles:admin",
          "{\"realm_access\":{\"roles\":[\"admin\"]},\"realm_access.roles\":\"user\"}", 1 },
        { "[realm_access.roles]:admin",
          "{\"realm_access\":{\"roles\":[\"user\"]},\"realm_access.roles\":\"admin\"}", 1 },
        { "[realm_access.roles]:admin",
          "{\"realm_access\":{\"roles\":[\"admin\"]},\"realm_access.roles\":\"user\"}", 0 },
    };
    (void)state;
    run_claim_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_claim_regex(void **state)
{
    static const rq_case_t cases[] = {
        { "email~@example\\.com$", "{\"email\":\"a@example.com\"}", 1 },
        { "email~@example\\.com$", "{\"email\":\"a@example.com.evil\"}", 0 },
        { "email~example", "{\"email\":\"a@example.com\"}", 1 },
        { "email~^(a|b)@", "{\"email\":\"b@x\"}", 1 },
        { "email~^(a|b)@", "{\"email\":\"c@x\"}", 0 },
        { "email~x", "{\"emails\":\"x\"}", 0 },
        { "email~x", "{\"email\":null}", 0 },
        { "email~.", "{\"email\":{\"a\":\"x\"}}", 0 },
    };
    (void)state;
    run_claim_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_claim_alternatives_and_text(void **state)
{
    const char *argv[] = { "role:admin", "group~^ops-", "level:5" };
    ajw_require_t *rq;
    const char *why;
    const ajw_val_t *c;
    (void)state;
    assert_int_equal(ajw_require_claim_compile(&rq, 3, argv, &ajw_regex_posix, pool, &why),
                     APR_SUCCESS);
    assert_string_equal(ajw_require_text(rq), "role:admin group~^ops- level:5");
    c = doc("{\"role\":\"user\",\"group\":\"ops-west\"}");
    assert_int_equal(ajw_require_eval(rq, c), 1);
    c = doc("{\"role\":\"user\",\"group\":\"dev\",\"level\":5}");
    assert_int_equal(ajw_require_eval(rq, c), 1);
    c = doc("{\"role\":\"user\",\"group\":\"dev\",\"level\":4}");
    assert_int_equal(ajw_require_eval(rq, c), 0);
    c = doc("[\"role\"]");
    assert_int_equal(ajw_require_eval(rq, c), 0);
    assert_int_equal(ajw_require_eval(NULL, NULL), 0);
}

static void test_claim_compile_errors(void **state)
{
    static const char *const bad[] = {
        "role", "", ":admin", "~admin", "role~(", "role~[a-", "role~", "role~a{2,1}",
        "realm_access..roles:admin", "realm_access.:admin", ".roles:admin", "a.b.~x",
        "..:x",
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ajw_require_t *rq = (ajw_require_t *)&rq;
        const char *why = NULL;
        const char *argv[2] = { "ok:1", bad[i] };
        if (ajw_require_claim_compile(&rq, 2, argv, &ajw_regex_posix, pool, &why) == APR_SUCCESS)
            fail_msg("'%s' compiled", bad[i]);
        assert_null(rq);
        assert_non_null(why);
        assert_non_null(strstr(why, bad[i]));
    }
    {
        ajw_require_t *rq;
        const char *why = NULL;
        assert_int_not_equal(ajw_require_claim_compile(&rq, 0, NULL, &ajw_regex_posix, pool,
                                                       &why), APR_SUCCESS);
        assert_non_null(why);
        assert_int_not_equal(ajw_require_scope_compile(&rq, 0, NULL, pool, &why), APR_SUCCESS);
        assert_non_null(why);
    }
}

typedef struct {
    const char *claims;
    int want;
} scope_case_t;

/* [literal] member names: namespaced claims hold ':' '.' and '~'. */
static void test_claim_bracket_member(void **state)
{
    static const rq_case_t cases[] = {
        { "[https://example.com/roles]:admin",
          "{\"https://example.com/roles\":[\"user\",\"admin\"]}", 1 },
        { "[https://example.com/roles]:admin",
          "{\"https://example.com/roles\":[\"user\"]}", 0 },
        /* the literal name is exact: no prefix, no dotted reading */
        { "[https://example.com/role]:admin",
          "{\"https://example.com/roles\":\"admin\"}", 0 },
        { "[a.b]:x", "{\"a\":{\"b\":\"x\"}}", 0 },
        { "[a.b]:x", "{\"a.b\":\"x\"}", 1 },
        /* a dotted path below the literal member */
        { "[https://x/app].roles:admin",
          "{\"https://x/app\":{\"roles\":[\"admin\"]}}", 1 },
        { "[https://x/app].roles:admin", "{\"https://x/app\":\"roles\"}", 0 },
        { "[https://x/app].roles:admin", "{}", 0 },
        { "[ns:email]~@example\\.com$", "{\"ns:email\":\"a@example.com\"}", 1 },
        { "[ns:email]~@example\\.com$", "{\"ns:email\":\"a@example.org\"}", 0 },
        { "[k]:a:b", "{\"k\":\"a:b\"}", 1 },
    };
    (void)state;
    run_claim_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_claim_bracket_errors(void **state)
{
    static const char *const bad[] = {
        "[unclosed:admin", "[]:admin", "[a]admin", "[a].:x", "[a].", "[a]", "[a].",
        "[a]..b:x", "[a].b.:x", "[a].b..c~x", "[a]..:x"
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ajw_require_t *rq = (ajw_require_t *)1;
        const char *why = NULL;
        const char *argv[1] = { bad[i] };
        if (ajw_require_claim_compile(&rq, 1, argv, &ajw_regex_posix, pool, &why) == APR_SUCCESS)
            fail_msg("'%s' compiled but must not", bad[i]);
        assert_null(rq);
        assert_non_null(why);
        assert_non_null(strstr(why, bad[i]));
    }
}

/* A rule that compiles but matches only "" is worth a warning; the split
 * is at the first ':' or '~', whatever follows. */
static void test_claim_warning_and_split(void **state)
{
    static const rq_case_t cases[] = {
        { "custom:is_admin:true", "{\"custom\":\"is_admin:true\"}", 1 },
        { "custom:is_admin:true", "{\"custom:is_admin\":true}", 0 },
        { "[custom:is_admin]:true", "{\"custom:is_admin\":true}", 1 },
        { "a:b~c", "{\"a\":\"b~c\"}", 1 },
    };
    ajw_require_t *rq;
    const char *why = NULL, *w;
    const char *argv[2] = { "roles:admin", "roles:" };
    (void)state;
    run_claim_cases(cases, sizeof(cases) / sizeof(cases[0]));
    assert_int_equal(ajw_require_claim_compile(&rq, 2, argv, &ajw_regex_posix, pool, &why),
                     APR_SUCCESS);
    w = ajw_require_warning(rq, pool);
    assert_non_null(w);
    assert_non_null(strstr(w, "'roles:'"));
    assert_non_null(strstr(w, "empty"));
    assert_int_equal(ajw_require_claim_compile(&rq, 1, argv, &ajw_regex_posix, pool, &why),
                     APR_SUCCESS);
    assert_null(ajw_require_warning(rq, pool));
    argv[0] = "[x]:";
    assert_int_equal(ajw_require_claim_compile(&rq, 1, argv, &ajw_regex_posix, pool, &why),
                     APR_SUCCESS);
    assert_non_null(ajw_require_warning(rq, pool));
    argv[0] = "read";
    assert_int_equal(ajw_require_scope_compile(&rq, 1, argv, pool, &why), APR_SUCCESS);
    assert_null(ajw_require_warning(rq, pool));
    assert_null(ajw_require_warning(NULL, pool));
}

static void test_scope(void **state)
{
    static const scope_case_t cases[] = {
        { "{\"scope\":\"read write\"}", 1 },
        { "{\"scope\":\"write\"}", 1 },
        { "{\"scope\":\"  write  \"}", 1 },
        { "{\"scope\":\"read\"}", 0 },
        { "{\"scope\":\"writer\"}", 0 },
        { "{\"scope\":\"wri\"}", 0 },
        { "{\"scope\":\"write:all\"}", 0 },
        { "{\"scope\":\"\"}", 0 },
        { "{\"scope\":[\"write\"]}", 0 },     /* scope is a string by RFC 8693 */
        { "{\"scp\":[\"read\",\"write\"]}", 1 },
        { "{\"scp\":[\"read\",\"writes\"]}", 0 },
        { "{\"scp\":[\"read write\"]}", 0 },
        { "{\"scp\":\"read write\"}", 1 },
        { "{\"scp\":\"writ\"}", 0 },
        { "{\"scp\":[1,null,{\"write\":1}]}", 0 },
        { "{\"scp\":[]}", 0 },
        { "{\"scopes\":\"write\"}", 0 },
        { "{\"sc\":\"write\"}", 0 },
        { "{\"scope\":\"read\",\"scp\":[\"admin\"]}", 1 },
        { "{}", 0 },
    };
    const char *argv[] = { "write", "admin" };
    ajw_require_t *rq;
    const char *why;
    size_t i;
    (void)state;
    assert_int_equal(ajw_require_scope_compile(&rq, 2, argv, pool, &why), APR_SUCCESS);
    assert_string_equal(ajw_require_text(rq), "write admin");
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const ajw_val_t *c = doc(cases[i].claims);
        int got = ajw_require_eval(rq, c);
        if (got != cases[i].want)
            fail_msg("scope case %zu (%s): got %d want %d", i, cases[i].claims, got,
                     cases[i].want);
    }
}

static void test_scope_compile_errors(void **state)
{
    static const char *const bad[] = { "", "a b", " " };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ajw_require_t *rq;
        const char *why = NULL;
        const char *argv[2] = { "ok", bad[i] };
        assert_int_not_equal(ajw_require_scope_compile(&rq, 2, argv, pool, &why), APR_SUCCESS);
        assert_null(rq);
        assert_non_null(why);
    }
}

/* A test double engine: compiles any pattern but "(", matches a text equal
 * to the pattern, and records what it was given. */
static int double_calls;
static size_t double_last_len;

static apr_status_t double_compile(void **out, const char *pattern, apr_pool_t *p,
                                   const char **why)
{
    if (!strcmp(pattern, "(")) {
        *why = "missing )";
        return APR_EINVAL;
    }
    *out = apr_pstrdup(p, pattern);
    return APR_SUCCESS;
}

static int double_match(const void *re, const char *text, size_t len)
{
    double_calls++;
    double_last_len = len;
    return !strcmp((const char *)re, text);
}

static const ajw_regex_engine_t double_engine = { "double", double_compile, double_match };

/* The regex dialect is the caller's: its compile decides what is valid, its
 * match decides, and both see exactly the rule's pattern and the value. */
static void test_regex_engine(void **state)
{
    const char *argv[] = { "email~\\d+", "n~3" }, *bad[] = { "email~(" };
    const char *why = NULL;
    ajw_require_t *rq;
    json_t *c;
    const ajw_val_t *d;
    (void)state;
    assert_int_equal(ajw_require_claim_compile(&rq, 2, argv, &double_engine, pool, &why),
                     APR_SUCCESS);
    c = json_pack("{s:s}", "email", "\\d+");
    d = ajw_doc_make(c, pool, NULL);
    assert_non_null(d);
    assert_int_equal(ajw_require_eval(rq, d), 1);
    assert_int_equal(double_last_len, 3);
    json_decref(c);
    c = json_pack("{s:s, s:i}", "email", "123", "n", 3);
    d = ajw_doc_make(c, pool, NULL);
    assert_non_null(d);
    assert_int_equal(ajw_require_eval(rq, d), 1);     /* n~3 on the number's text */
    json_decref(c);
    /* A NUL-holding value has no document at all (the parser refuses \u0000
     * before), so it can never reach the engine: no claims, no match. */
    c = json_pack("{s:s#}", "email", "\\d+\0x", (size_t)5);
    d = ajw_doc_make(c, pool, NULL);
    assert_null(d);
    assert_int_equal(ajw_doc_size(c), 0);
    double_calls = 0;
    assert_int_equal(ajw_require_eval(rq, d), 0);     /* never handed a NUL-holding value */
    assert_int_equal(double_calls, 0);
    json_decref(c);
    assert_int_not_equal(ajw_require_claim_compile(&rq, 1, bad, &double_engine, pool, &why),
                         APR_SUCCESS);
    assert_non_null(strstr(why, "Require claim 'email~('"));
    assert_non_null(strstr(why, "(double): missing )"));
    assert_int_not_equal(ajw_require_claim_compile(&rq, 1, argv, NULL, pool, &why),
                         APR_SUCCESS);
    assert_non_null(strstr(why, "not available"));
    argv[0] = "email:x";
    assert_int_equal(ajw_require_claim_compile(&rq, 1, argv, NULL, pool, &why), APR_SUCCESS);
}

/* Require jwt-acr: exact string match on acr, any listed value, no ranking. */
static void test_acr(void **state)
{
    static const scope_case_t cases[] = {
        { "{\"acr\":\"gold\"}", 1 },
        { "{\"acr\":\"urn:mace:incommon:iap:silver\"}", 1 },
        { "{\"acr\":\"Gold\"}", 0 },
        { "{\"acr\":\"gold \"}", 0 },
        { "{\"acr\":\"gol\"}", 0 },
        { "{\"acr\":\"gold silver\"}", 0 },
        { "{\"acr\":\"bronze\"}", 0 },
        { "{\"acr\":[\"gold\"]}", 0 },
        { "{\"acr\":1}", 0 },
        { "{\"acr\":null}", 0 },
        { "{\"acr\":\"gold\\u0000\"}", 0 },
        { "{\"amr\":[\"gold\"]}", 0 },
        { "{}", 0 },
    };
    static const char *const bad[] = { "", "a b", "a\"b", "a\\b", "caf\xc3\xa9", "a\tb" };
    const char *argv[] = { "gold", "urn:mace:incommon:iap:silver" };
    ajw_require_t *rq;
    const char *why;
    size_t i;
    (void)state;
    assert_int_equal(ajw_require_acr_compile(&rq, 2, argv, pool, &why), APR_SUCCESS);
    assert_string_equal(ajw_require_text(rq), "gold urn:mace:incommon:iap:silver");
    assert_null(ajw_require_warning(rq, pool));
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *tree = json_loads(cases[i].claims, JSON_ALLOW_NUL, &jerr);
        const ajw_val_t *c;
        int got;
        if (!tree)
            fail_msg("bad test JSON %s", cases[i].claims);
        c = ajw_doc_make(tree, pool, NULL);
        /* only a string holding a NUL byte has no document; it never matches */
        if (!c && (ajw_doc_size(tree) != 0 || cases[i].want))
            fail_msg("acr case %zu (%s): no document", i, cases[i].claims);
        got = ajw_require_eval(rq, c);
        if (got != cases[i].want)
            fail_msg("acr case %zu (%s): got %d want %d", i, cases[i].claims, got, cases[i].want);
        json_decref(tree);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *a2[2] = { "ok", bad[i] };
        why = NULL;
        assert_int_not_equal(ajw_require_acr_compile(&rq, 2, a2, pool, &why), APR_SUCCESS);
        assert_null(rq);
        assert_non_null(strstr(why, "jwt-acr"));
    }
    assert_int_not_equal(ajw_require_acr_compile(&rq, 0, NULL, pool, &why), APR_SUCCESS);
}

/* Compiled regexes are freed with their pool (ASan's leak check proves it). */
static void test_regex_pool_cleanup(void **state)
{
    apr_pool_t *sub;
    const char *argv[] = { "a~^x+$", "b~y" };
    ajw_require_t *rq;
    const char *why;
    (void)state;
    apr_pool_create(&sub, pool);
    assert_int_equal(ajw_require_claim_compile(&rq, 2, argv, &ajw_regex_posix, sub, &why),
                     APR_SUCCESS);
    apr_pool_destroy(sub);
}

static void test_claim_ref(void **state)
{
    static const struct { const char *ref, *claims, *want; } cases[] = {
        { "email", "{\"email\":\"a@x\"}", "a@x" },
        { "realm_access.roles", "{\"realm_access\":{\"roles\":\"r\"},\"realm_access.roles\":\"x\"}", "r" },
        { "[realm_access.roles]", "{\"realm_access\":{\"roles\":\"r\"},\"realm_access.roles\":\"x\"}", "x" },
        { "[https://ex.com/e]", "{\"https://ex.com/e\":\"e1\"}", "e1" },
        { "[https://ex.com/o].a", "{\"https://ex.com/o\":{\"a\":\"deep\"}}", "deep" },
        { "[o].a", "{\"o\":\"str\"}", NULL },
        { "a.b", "{\"a\":{\"bc\":\"no\"}}", NULL },
        { "missing", "{}", NULL },
    };
    static const char *bad[] = { "", ".a", "a.", "a..b", "[", "[]", "[a", "[a]b", "[a].", "[a]..b" };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ajw_claim_ref_t *ref = NULL;
        const char *why = NULL;
        const ajw_val_t *claims = doc(cases[i].claims);
        const ajw_val_t *v;
        if (ajw_claim_ref_compile(&ref, cases[i].ref, pool, &why) != APR_SUCCESS)
            fail_msg("case %zu: %s", i, why);
        v = ajw_claim_ref_get(ref, claims);
        if (!cases[i].want)
            assert_null(v);
        else
            assert_string_equal(ajw_val_str(v), cases[i].want);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ajw_claim_ref_t *ref = NULL;
        const char *why = NULL;
        if (ajw_claim_ref_compile(&ref, bad[i], pool, &why) == APR_SUCCESS)
            fail_msg("'%s' compiled", bad[i]);
        assert_non_null(strstr(why, "claim '"));
    }
    {
        const ajw_val_t *empty = doc("{}");
        assert_null(ajw_claim_ref_get(NULL, empty));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_exact),
        cmocka_unit_test(test_claim_arrays),
        cmocka_unit_test(test_claim_numbers_booleans),
        cmocka_unit_test(test_claim_nested),
        cmocka_unit_test(test_claim_regex),
        cmocka_unit_test(test_claim_alternatives_and_text),
        cmocka_unit_test(test_claim_compile_errors),
        cmocka_unit_test(test_claim_bracket_member),
        cmocka_unit_test(test_claim_bracket_errors),
        cmocka_unit_test(test_claim_warning_and_split),
        cmocka_unit_test(test_scope),
        cmocka_unit_test(test_scope_compile_errors),
        cmocka_unit_test(test_acr),
        cmocka_unit_test(test_regex_engine),
        cmocka_unit_test(test_regex_pool_cleanup),
        cmocka_unit_test(test_claim_ref),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
