/* test_secret.c — the fleet / per-server secret: file checks (owner, mode,
 * size, kind), making the per-server key once and reading it back, and the
 * keys derived from it, checked against HKDF computed here from HMAC alone
 * (RFC 5869) and against an RFC 5869 test vector. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "ajw_secret.h"
#include "ajw_crypt.h"

#define SECRET64 "3f1c0a5e9b7d2c4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e"
#define STRANGER 12345

typedef struct env_t {
    apr_pool_t *p;
    char dir[64];
} env_t;

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof(*e));
    apr_pool_create(&e->p, NULL);
    snprintf(e->dir, sizeof(e->dir), "/tmp/ajw_secret_XXXXXX");
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

static apr_status_t rd(env_t *e, const char *path, size_t *len, const char **why)
{
    unsigned char *sec = NULL;
    return ajw_secret_read(&sec, len, path, geteuid(), why, e->p);
}

static void test_read_checks(void **state)
{
    env_t *e = *state;
    unsigned char *sec = NULL;
    const char *why = NULL, *path;
    size_t len = 0;
    char big[AJW_SECRET_MAX + 2];

    /* openssl rand -hex 32: 64 bytes of secret, the newline is not part of it. */
    path = put(e, "k", SECRET64 "\n", 65, 0600);
    assert_int_equal(ajw_secret_read(&sec, &len, path, geteuid(), &why, e->p), APR_SUCCESS);
    assert_int_equal(len, 64);
    assert_memory_equal(sec, SECRET64, 64);
    path = put(e, "k", SECRET64 " \t\r\n\n", 69, 0400);
    assert_int_equal(rd(e, path, &len, &why), APR_SUCCESS);
    assert_int_equal(len, 64);
    /* Any group or other bit: refused, naming the mode. */
    static const mode_t bad_modes[] = { 0640, 0604, 0620, 0602, 0610, 0601, 0644, 0660 };
    for (size_t i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
        path = put(e, "k", SECRET64, 64, bad_modes[i]);
        assert_int_equal(rd(e, path, &len, &why), APR_EACCES);
        assert_non_null(strstr(why, "accessible by group or others"));
        assert_null(strstr(why, SECRET64));
    }
    /* A stranger's file. */
    path = put(e, "k", SECRET64, 64, 0600);
    assert_int_equal(chown(path, STRANGER, STRANGER), 0);
    assert_int_equal(rd(e, path, &len, &why), APR_EACCES);
    assert_non_null(strstr(why, "owned by uid 12345"));
    /* Too short: 31 bytes (trailing blanks do not count). */
    path = put(e, "k", "0123456789012345678901234567890   \n", 35, 0600);
    assert_int_not_equal(rd(e, path, &len, &why), APR_SUCCESS);
    assert_non_null(strstr(why, "holds 31 bytes of secret, at least 32"));
    path = put(e, "k", "", 0, 0600);
    assert_int_not_equal(rd(e, path, &len, &why), APR_SUCCESS);
    /* Exactly 32: fine. */
    path = put(e, "k", "01234567890123456789012345678901", 32, 0600);
    assert_int_equal(rd(e, path, &len, &why), APR_SUCCESS);
    assert_int_equal(len, 32);
    /* Too large. */
    memset(big, 'a', sizeof(big));
    path = put(e, "k", big, sizeof(big), 0600);
    assert_int_not_equal(rd(e, path, &len, &why), APR_SUCCESS);
    assert_non_null(strstr(why, "too large"));
    /* Missing; a directory; /dev/null (not a regular file). */
    assert_int_not_equal(rd(e, apr_pstrcat(e->p, e->dir, "/none", NULL), &len, &why),
                         APR_SUCCESS);
    assert_non_null(strstr(why, "cannot open"));
    assert_int_not_equal(rd(e, e->dir, &len, &why), APR_SUCCESS);
    assert_non_null(strstr(why, "not a regular file"));
    assert_int_not_equal(rd(e, "/dev/null", &len, &why), APR_SUCCESS);
    assert_null(sec == NULL ? NULL : NULL);
}

static void test_load_or_make(void **state)
{
    env_t *e = *state;
    unsigned char *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    const char *why = NULL, *path = apr_pstrcat(e->p, e->dir, "/server.key", NULL);
    struct stat st;
    int made = 0;

    assert_int_equal(chmod(e->dir, 0755), 0);
    assert_int_equal(ajw_secret_load_or_make(&a, &alen, &made, path, geteuid(), &why, e->p),
                     APR_SUCCESS);
    assert_true(made);
    assert_int_equal(alen, 2 * AJW_SECRET_MIN);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    /* Kept: the second start reads the same secret. */
    assert_int_equal(ajw_secret_load_or_make(&b, &blen, &made, path, geteuid(), &why, e->p),
                     APR_SUCCESS);
    assert_false(made);
    assert_int_equal(blen, alen);
    assert_memory_equal(a, b, alen);
    /* A key file made readable by others is refused, not replaced. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_not_equal(ajw_secret_load_or_make(&b, &blen, &made, path, geteuid(), &why, e->p),
                         APR_SUCCESS);
    assert_non_null(strstr(why, "accessible by group or others"));
    assert_int_equal(chmod(path, 0600), 0);
    /* A directory others can write cannot guard a key file. */
    assert_int_equal(chmod(e->dir, 0777), 0);
    assert_int_not_equal(ajw_secret_load_or_make(&b, &blen, &made, path, geteuid(), &why, e->p),
                         APR_SUCCESS);
    assert_non_null(strstr(why, "writable by group or others"));
    assert_int_equal(chmod(e->dir, 0700), 0);
    /* Relative paths are refused. */
    assert_int_not_equal(ajw_secret_load_or_make(&b, &blen, &made, "server.key", geteuid(), &why,
                                                 e->p), APR_SUCCESS);
}

/* HKDF-SHA-256 for one block (L <= 32) from HMAC alone. */
static void hkdf1(unsigned char out[32], const char *salt, const void *ikm, size_t ikmlen,
                  const char *info)
{
    unsigned char prk[32], buf[256];
    unsigned int n = 0;
    size_t il = strlen(info);
    assert_non_null(HMAC(EVP_sha256(), salt, (int)strlen(salt), ikm, ikmlen, prk, &n));
    memcpy(buf, info, il);
    buf[il] = 1;
    assert_non_null(HMAC(EVP_sha256(), prk, 32, buf, il + 1, out, &n));
}

static void test_derive(void **state)
{
    static const unsigned char okm3[42] = {
        0x8d, 0xa4, 0xe7, 0x75, 0xa5, 0x63, 0xc1, 0x8f, 0x71, 0x5f, 0x80, 0x2a, 0x06, 0x3c,
        0x5a, 0x31, 0xb8, 0xa1, 0x1f, 0x5c, 0x5e, 0xe1, 0x87, 0x9e, 0xc3, 0x45, 0x4e, 0x5f,
        0x3c, 0x73, 0x8d, 0x2d, 0x9d, 0x20, 0x13, 0x95, 0xfa, 0xa4, 0xb6, 0x1a, 0x96, 0xc8 };
    unsigned char ikm[22], ikm2[64], out[42], want[32];
    ajw_keys_t k, k2;
    (void)state;
    /* RFC 5869 test case 3 (empty salt and info). */
    memset(ikm, 0x0b, sizeof(ikm));
    assert_int_equal(ajw_crypt_hkdf_sha256(out, sizeof(out), ikm, sizeof(ikm), "", ""), 0);
    assert_memory_equal(out, okm3, sizeof(okm3));
    /* Our labels, each key different, each as computed here. */
    assert_int_equal(ajw_keys_derive(&k, (const unsigned char *)SECRET64, 64), 0);
    hkdf1(want, "mod_auth_jwks", SECRET64, 64, "shared record v2");
    assert_memory_equal(k.record, want, 32);
    hkdf1(want, "mod_auth_jwks", SECRET64, 64, "dpop nonce v1");
    assert_memory_equal(k.nonce, want, 32);
    hkdf1(want, "mod_auth_jwks", SECRET64, 64, "dpop jti v1");
    assert_memory_equal(k.jti, want, 32);
    assert_memory_not_equal(k.record, k.nonce, 32);
    /* One byte of secret changes every key. */
    memcpy(ikm2, SECRET64, 64);
    ikm2[63] ^= 1;
    assert_int_equal(ajw_keys_derive(&k2, ikm2, 64), 0);
    assert_memory_not_equal(k.record, k2.record, 32);
    /* Too short a secret: refused, keys wiped. */
    memset(&k2, 0xaa, sizeof(k2));
    assert_int_equal(ajw_keys_derive(&k2, (const unsigned char *)SECRET64, 31), -1);
    memset(want, 0, sizeof(want));
    assert_memory_equal(k2.record, want, 32);
    /* Constant-time equality says the truth. */
    assert_true(ajw_crypt_equal("abc", "abc", 3));
    assert_false(ajw_crypt_equal("abc", "abd", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_or_make, setup, teardown),
        cmocka_unit_test(test_derive),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
