/* test_b64.c — strict base64url / base64: tables of good and bad inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "ajw_b64.h"

static apr_pool_t *pool;

typedef struct {
    const char *in;
    size_t inlen;      /* 0: strlen(in) */
    const char *out;   /* NULL: must be rejected */
    size_t outlen;
} b64case_t;

#define GOOD(i, o) { i, 0, o, sizeof(o) - 1 }
#define BAD(i) { i, 0, NULL, 0 }

static const b64case_t url_cases[] = {
    GOOD("", ""),
    GOOD("QQ", "A"),
    GOOD("QUI", "AB"),
    GOOD("QUJD", "ABC"),
    GOOD("QUJDRA", "ABCD"),
    GOOD("-_-_", "\xfb\xff\xbf"),
    GOOD("AA", "\0"),
    GOOD("AAAA", "\0\0\0"),
    GOOD("eyJhbGciOiJFUzI1NiJ9", "{\"alg\":\"ES256\"}"),
    BAD("QQ=="),         /* padding */
    BAD("QQ="),
    BAD("QUI="),
    BAD("+/+/"),         /* standard alphabet */
    BAD("QU+D"),
    BAD("QU/D"),
    BAD("QUJD RA"),      /* whitespace */
    BAD("QUJD\nRA"),
    BAD("QUJD\r\n"),
    BAD(" QQ"),
    BAD("QQ\t"),
    BAD("Q"),            /* 1 mod 4 */
    BAD("QUJDR"),
    BAD("QR"),           /* non-canonical trailing bits */
    BAD("QUJ"),          /* 'J' has low 2 bits set */
    BAD("QUK"),
    BAD("AB"),
    BAD("Q.QQ"),
    BAD("QQ\x80"),
    BAD("\xff\xfe"),
    { "QQ\0A", 4, NULL, 0 },  /* NUL byte inside */
    { "\0\0", 2, NULL, 0 },
};

static const b64case_t std_cases[] = {
    GOOD("", ""),
    GOOD("QQ==", "A"),
    GOOD("QUI=", "AB"),
    GOOD("QUJD", "ABC"),
    GOOD("+/+/", "\xfb\xff\xbf"),
    GOOD("MAMCAQE=", "\x30\x03\x02\x01\x01"),
    BAD("QQ"),           /* padding is mandatory */
    BAD("QUI"),
    BAD("QQ="),
    BAD("QQ==="),
    BAD("Q==="),
    BAD("===="),
    BAD("Q=Q="),
    BAD("QR=="),         /* non-canonical */
    BAD("QUJ="),
    BAD("-_-_"),         /* url alphabet */
    BAD("QUJD\n"),
    BAD("QU JD"),
    BAD("QUJDRA==\n"),
    { "QQ=\0", 4, NULL, 0 },
    { "QU\0D", 4, NULL, 0 },
};

static void run_cases(const b64case_t *c, size_t n, int url)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char *out = NULL;
        size_t outlen = 99, inlen = c[i].inlen ? c[i].inlen : strlen(c[i].in);
        apr_status_t rv = url ? ajw_b64url_decode(&out, &outlen, c[i].in, inlen, pool)
                              : ajw_b64std_decode(&out, &outlen, c[i].in, inlen, pool);
        if (c[i].out) {
            if (rv != APR_SUCCESS)
                fail_msg("case %zu (%s) rejected", i, c[i].in);
            assert_int_equal(outlen, c[i].outlen);
            assert_memory_equal(out, c[i].out, outlen);
            assert_int_equal(out[outlen], 0);
        }
        else if (rv == APR_SUCCESS)
            fail_msg("case %zu (%s) accepted", i, c[i].in);
    }
}

static void test_url_table(void **state)
{
    (void)state;
    run_cases(url_cases, sizeof(url_cases) / sizeof(url_cases[0]), 1);
}

static void test_std_table(void **state)
{
    (void)state;
    run_cases(std_cases, sizeof(std_cases) / sizeof(std_cases[0]), 0);
}

static void test_every_single_char(void **state)
{
    /* Of the 256 two-char inputs "Q?", only those whose unused 4 bits are
     * zero decode: Q, g, w, A-style values (multiples of 16). */
    int c, good = 0;
    (void)state;
    for (c = 0; c < 256; c++) {
        char in[2] = { 'Q', (char)c };
        unsigned char *out;
        size_t len;
        if (ajw_b64url_decode(&out, &len, in, 2, pool) == APR_SUCCESS) {
            good++;
            assert_int_equal(len, 1);
        }
    }
    assert_int_equal(good, 4); /* A, Q, g, w */
}

static void test_round_trip(void **state)
{
    unsigned char data[300];
    size_t i, len;
    (void)state;

    for (i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 37u + 11u);
    for (len = 0; len <= sizeof(data); len++) {
        char *enc = ajw_b64url_encode(data, len, pool);
        unsigned char *dec;
        size_t declen;
        assert_non_null(enc);
        assert_int_equal(strlen(enc), (len * 4 + 2) / 3);
        assert_null(strpbrk(enc, "=+/"));
        assert_int_equal(ajw_b64url_decode(&dec, &declen, enc, strlen(enc), pool), APR_SUCCESS);
        assert_int_equal(declen, len);
        if (len)
            assert_memory_equal(dec, data, len);
    }
    assert_string_equal(ajw_b64url_encode((const unsigned char *)"", 0, pool), "");
    assert_string_equal(ajw_b64url_encode((const unsigned char *)"\xfb\xff", 2, pool), "-_8");
}

static void test_null_args(void **state)
{
    unsigned char *out;
    size_t len;
    (void)state;
    assert_int_equal(ajw_b64url_decode(&out, &len, NULL, 0, pool), APR_SUCCESS);
    assert_int_equal(len, 0);
    assert_int_not_equal(ajw_b64url_decode(&out, &len, NULL, 4, pool), APR_SUCCESS);
    assert_int_not_equal(ajw_b64std_decode(&out, &len, NULL, 4, pool), APR_SUCCESS);
}

/* The tables are compiled in, never filled at run time: a thread of a fresh
 * process must not read a table another thread is still filling. Their
 * values match the alphabets, and a write to one faults (read-only data). */
static void test_tables_are_constant_data(void **state)
{
    static const char url_alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int url, c, status = 0;
    pid_t pid;
    (void)state;
    for (url = 0; url < 2; url++) {
        const unsigned char *t = ajw_b64_table(url);
        for (c = 0; c < 256; c++) {
            const char *at = c ? memchr(url_alpha, c, 62) : NULL;
            int want = at ? (int)(at - url_alpha) : 0xFF;
            if (c == (url ? '-' : '+'))
                want = 62;
            if (c == (url ? '_' : '/'))
                want = 63;
            assert_int_equal(t[c], want);
        }
    }
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        volatile unsigned char *w = (volatile unsigned char *)ajw_b64_table(1);
        signal(SIGSEGV, SIG_DFL);
        w['A'] = 0xFF;                /* must fault */
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_true(WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_are_constant_data),
        cmocka_unit_test(test_url_table),
        cmocka_unit_test(test_std_table),
        cmocka_unit_test(test_every_single_char),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_null_args),
    };
    int rc;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
