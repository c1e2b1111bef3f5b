/* test_cred.c — credential files for the key fetch (owner, mode, size,
 * content fit for a header, symlinks followed, never echoed in a reason) and
 * the shared slot: a reader always gets a whole value, one written before or
 * during its read, while a writer keeps changing it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "ajw_cred.h"

#define STRANGER 12345
#define TOKEN "eyJhbGciOiJSUzI1NiJ9.payload-part.signature-part"

typedef struct env_t {
    apr_pool_t *p;
    char dir[64];
} env_t;

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof(*e));
    apr_pool_create(&e->p, NULL);
    snprintf(e->dir, sizeof(e->dir), "/tmp/ajw_cred_XXXXXX");
    if (!mkdtemp(e->dir))
        return -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
    apr_pool_destroy(e->p);
    free(e);
    return 0;
}

static const char *put(env_t *e, const char *name, const char *text, size_t len, mode_t mode)
{
    const char *path = apr_pstrcat(e->p, e->dir, "/", name, NULL);
    int fd;
    unlink(path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static apr_status_t rd(env_t *e, const char *path, char **v, size_t *len, const char **why)
{
    return ajw_cred_read(v, len, path, geteuid(), why, e->p);
}

static void test_read(void **state)
{
    env_t *e = *state;
    static const mode_t bad_modes[] = { 0640, 0604, 0620, 0602, 0610, 0601, 0644 };
    static const char *const bad_texts[] = { "a\nb", "a\rb", "tok\x01", "caf\xc3\xa9", "\n\n" };
    const char *why = NULL, *path, *link;
    char *v = NULL, big[AJW_CRED_MAX + 2];
    size_t len = 0, i;

    path = put(e, "t", TOKEN "\n", strlen(TOKEN) + 1, 0600);
    assert_int_equal(rd(e, path, &v, &len, &why), APR_SUCCESS);
    assert_int_equal(len, strlen(TOKEN));
    assert_string_equal(v, TOKEN);
    /* Short values are fine (an API key); inner spaces too ("user:pass word"). */
    path = put(e, "t", "k y \t\r\n", 7, 0400);
    assert_int_equal(rd(e, path, &v, &len, &why), APR_SUCCESS);
    assert_string_equal(v, "k y");
    for (i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
        path = put(e, "t", TOKEN, strlen(TOKEN), bad_modes[i]);
        assert_int_equal(rd(e, path, &v, &len, &why), APR_EACCES);
        assert_non_null(strstr(why, "accessible by group or others"));
        assert_null(strstr(why, "payload-part"));
        assert_null(v);
    }
    path = put(e, "t", TOKEN, strlen(TOKEN), 0600);
    assert_int_equal(chown(path, STRANGER, STRANGER), 0);
    assert_int_equal(rd(e, path, &v, &len, &why), APR_EACCES);
    assert_non_null(strstr(why, "owned by uid 12345"));
    for (i = 0; i < sizeof(bad_texts) / sizeof(bad_texts[0]); i++) {
        path = put(e, "t", bad_texts[i], strlen(bad_texts[i]), 0600);
        assert_int_not_equal(rd(e, path, &v, &len, &why), APR_SUCCESS);
        assert_null(strstr(why, bad_texts[i]));
    }
    path = put(e, "t", "a\0b", 3, 0600);
    assert_int_not_equal(rd(e, path, &v, &len, &why), APR_SUCCESS);
    memset(big, 'a', sizeof(big));
    path = put(e, "t", big, AJW_CRED_MAX, 0600);
    assert_int_equal(rd(e, path, &v, &len, &why), APR_SUCCESS);
    assert_int_equal(len, AJW_CRED_MAX);
    path = put(e, "t", big, AJW_CRED_MAX + 1, 0600);
    assert_int_not_equal(rd(e, path, &v, &len, &why), APR_SUCCESS);
    assert_non_null(strstr(why, "too large"));
    /* A projected token is a symlink swapped by its writer: followed. */
    path = put(e, "t", TOKEN, strlen(TOKEN), 0600);
    link = apr_pstrcat(e->p, e->dir, "/link", NULL);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(rd(e, link, &v, &len, &why), APR_SUCCESS);
    assert_string_equal(v, TOKEN);
    assert_int_not_equal(rd(e, apr_pstrcat(e->p, e->dir, "/none", NULL), &v, &len, &why),
                         APR_SUCCESS);
    assert_int_not_equal(rd(e, e->dir, &v, &len, &why), APR_SUCCESS);
    assert_int_not_equal(rd(e, NULL, &v, &len, &why), APR_SUCCESS);
}

static void test_slot_basics(void **state)
{
    ajw_cred_slot_t *s = calloc(1, sizeof(*s));
    apr_pool_t *p;
    (void)state;
    apr_pool_create(&p, NULL);
    assert_null(ajw_cred_slot_get(s, p));             /* zeroed: empty */
    ajw_cred_slot_put(s, "first", 5);
    assert_string_equal(ajw_cred_slot_get(s, p), "first");
    ajw_cred_slot_put(s, "2nd", 3);
    assert_string_equal(ajw_cred_slot_get(s, p), "2nd");
    assert_int_equal(s->seq % 2, 0);
    apr_pool_destroy(p);
    free(s);
}

#define LONGV "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct race_t {
    ajw_cred_slot_t *slot;
    volatile int stop;
} race_t;

static void *writer(void *arg)
{
    race_t *r = arg;
    unsigned long n = 0;
    while (!r->stop) {
        if (n++ % 2)
            ajw_cred_slot_put(r->slot, "short", 5);
        else
            ajw_cred_slot_put(r->slot, LONGV, strlen(LONGV));
    }
    return NULL;
}

/* Each read is one of the two values, whole: never a mix or a cut. */
static void test_slot_race(void **state)
{
    race_t r;
    pthread_t t;
    apr_pool_t *p;
    int i, got = 0;
    (void)state;
    apr_pool_create(&p, NULL);
    r.slot = calloc(1, sizeof(*r.slot));
    r.stop = 0;
    ajw_cred_slot_put(r.slot, "short", 5);
    assert_int_equal(pthread_create(&t, NULL, writer, &r), 0);
    for (i = 0; i < 5000; i++) {
        const char *v = ajw_cred_slot_get(r.slot, p);
        if (!v)
            continue;                 /* gave up under a writer that never pauses */
        got++;
        assert_true(!strcmp(v, "short") || !strcmp(v, LONGV));
        if (i % 1000 == 0)
            apr_pool_clear(p);
    }
    r.stop = 1;
    pthread_join(t, NULL);
    assert_true(got > 0);
    free(r.slot);
    apr_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read, setup, teardown),
        cmocka_unit_test(test_slot_basics),
        cmocka_unit_test(test_slot_race),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
