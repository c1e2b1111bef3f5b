/* test_shared.c — the file-backed shared store: directory checks, atomic
 * write and read-back, hostile records refused, leases. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "ajw_shared.h"

#define URL "https://idp.example/jwks"
#define URL2 "https://other.example/jwks"
#define DOC "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"k\\u00e9\",\"x\":\"\\\"q\\\"\"}]}\n"
#define STRANGER 12345

typedef struct env_t {
    apr_pool_t *p;
    char root[64];            /* a fresh temporary directory */
    const char *dir;          /* root/store */
} env_t;

static void rm_tree(const char *path)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof(*e));
    apr_pool_create(&e->p, NULL);
    snprintf(e->root, sizeof(e->root), "/tmp/ajw_shared_XXXXXX");
    if (!mkdtemp(e->root))
        return -1;
    e->dir = apr_pstrcat(e->p, e->root, "/store", NULL);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    rm_tree(e->root);
    apr_pool_destroy(e->p);
    free(e);
    return 0;
}

static ajw_shared_t *make_store(env_t *e)
{
    ajw_shared_t *sh = NULL;
    const char *why = NULL;
    assert_int_equal(ajw_shared_file_check_dir(e->dir, geteuid(), getegid(), &why, e->p),
                     APR_SUCCESS);
    assert_int_equal(ajw_shared_file_create(&sh, e->dir, &why, e->p), APR_SUCCESS);
    return sh;
}

static void put_doc(ajw_shared_t *sh, const char *url, const char *ca, const char *body,
                    apr_time_t fetched, apr_pool_t *p)
{
    ajw_shared_doc_t d;
    const char *why = NULL;
    memset(&d, 0, sizeof(d));
    d.body = body;
    d.len = strlen(body);
    d.etag = "\"v1\"";
    d.fetched = fetched;
    d.max_age = 120;
    assert_int_equal(sh->put(sh, url, ca, &d, &why, p), APR_SUCCESS);
}

/* The one *.json file of the store (there is only one in these tests). */
static const char *record_path(env_t *e, const char *not_this)
{
    DIR *d = opendir(e->dir);
    struct dirent *de;
    const char *found = NULL;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        const char *path = apr_pstrcat(e->p, e->dir, "/", de->d_name, NULL);
        size_t n = strlen(de->d_name);
        if (n > 5 && strcmp(de->d_name + n - 5, ".json") == 0
            && (!not_this || strcmp(path, not_this) != 0))
            found = path;
    }
    closedir(d);
    assert_non_null(found);
    return found;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

/* ---- directory checks -------------------------------------------------------- */

static void test_dir_created_private(void **state)
{
    env_t *e = *state;
    const char *why = NULL;
    struct stat st;
    assert_int_equal(ajw_shared_file_check_dir(e->dir, STRANGER, STRANGER, &why, e->p),
                     APR_SUCCESS);
    assert_null(why);
    assert_int_equal(lstat(e->dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(st.st_uid, STRANGER);       /* we run as root: given to the user */
    assert_int_equal(st.st_gid, STRANGER);
    /* Checking again is fine; for another user it is refused. */
    assert_int_equal(ajw_shared_file_check_dir(e->dir, STRANGER, STRANGER, &why, e->p),
                     APR_SUCCESS);
    assert_int_not_equal(ajw_shared_file_check_dir(e->dir, STRANGER + 1, 0, &why, e->p),
                         APR_SUCCESS);
    assert_non_null(strstr(why, "owned by uid 12345"));
    /* A root-owned directory is accepted. */
    assert_int_equal(chown(e->dir, 0, 0), 0);
    assert_int_equal(ajw_shared_file_check_dir(e->dir, STRANGER, STRANGER, &why, e->p),
                     APR_SUCCESS);
}

static void test_dir_refused(void **state)
{
    env_t *e = *state;
    const char *why = NULL, *link = apr_pstrcat(e->p, e->root, "/link", NULL);
    const char *file = apr_pstrcat(e->p, e->root, "/file", NULL);
    ajw_shared_t *sh = NULL;
    int fd;

    assert_int_not_equal(ajw_shared_file_check_dir("relative/dir", 0, 0, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "absolute"));
    assert_int_not_equal(ajw_shared_file_check_dir("/nonexistent-parent/x/y", 0, 0, &why, e->p),
                         APR_SUCCESS);
    /* Group or other writable. */
    assert_int_equal(mkdir(e->dir, 0700), 0);
    assert_int_equal(chmod(e->dir, 0770), 0);
    assert_int_not_equal(ajw_shared_file_check_dir(e->dir, 0, 0, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "writable by group or others"));
    assert_int_not_equal(ajw_shared_file_create(&sh, e->dir, &why, e->p), APR_SUCCESS);
    assert_int_equal(chmod(e->dir, 01777), 0);
    assert_int_not_equal(ajw_shared_file_check_dir(e->dir, 0, 0, &why, e->p), APR_SUCCESS);
    assert_int_equal(chmod(e->dir, 0700), 0);
    /* A symlink to a good directory. */
    assert_int_equal(symlink(e->dir, link), 0);
    assert_int_not_equal(ajw_shared_file_check_dir(link, 0, 0, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "symbolic link"));
    assert_int_not_equal(ajw_shared_file_create(&sh, link, &why, e->p), APR_SUCCESS);
    /* A plain file. */
    fd = open(file, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_not_equal(ajw_shared_file_check_dir(file, 0, 0, &why, e->p), APR_SUCCESS);
    /* Entries: a symlink, a stranger's file, a group-writable file. */
    assert_int_equal(ajw_shared_file_check_dir(e->dir, 0, 0, &why, e->p), APR_SUCCESS);
    assert_int_equal(symlink(file, apr_pstrcat(e->p, e->dir, "/x.json", NULL)), 0);
    assert_int_not_equal(ajw_shared_file_check_dir(e->dir, 0, 0, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "x.json is a symbolic link"));
    unlink(apr_pstrcat(e->p, e->dir, "/x.json", NULL));
    fd = open(apr_pstrcat(e->p, e->dir, "/y.json", NULL), O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fchown(fd, STRANGER, STRANGER), 0);
    assert_int_not_equal(ajw_shared_file_check_dir(e->dir, 0, 0, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "y.json is owned by uid 12345"));
    assert_int_equal(fchown(fd, 0, 0), 0);
    assert_int_equal(fchmod(fd, 0620), 0);
    assert_int_not_equal(ajw_shared_file_check_dir(e->dir, 0, 0, &why, e->p), APR_SUCCESS);
    assert_int_equal(fchmod(fd, 0600), 0);
    close(fd);
    assert_int_equal(ajw_shared_file_check_dir(e->dir, 0, 0, &why, e->p), APR_SUCCESS);
}

/* ---- records -------------------------------------------------------------------- */

static void test_roundtrip(void **state)
{
    env_t *e = *state;
    ajw_shared_t *sh = make_store(e);
    ajw_shared_doc_t d;
    const char *why = NULL, *path;
    struct stat st;

    assert_int_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_NOTFOUND);
    assert_null(why);
    put_doc(sh, URL, NULL, DOC, 1700000000123456LL, e->p);
    assert_int_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_int_equal(d.len, strlen(DOC));
    assert_memory_equal(d.body, DOC, d.len);
    assert_string_equal(d.etag, "\"v1\"");
    assert_int_equal(d.fetched, 1700000000123456LL);
    assert_int_equal(d.max_age, 120);
    path = record_path(e, NULL);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(count_entries(e->dir), 1);   /* no temporary file left behind */
    /* Replaced atomically: the new record is read, still one file. */
    put_doc(sh, URL, NULL, "{\"keys\":[]}", 1700000001000000LL, e->p);
    assert_int_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_string_equal(d.body, "{\"keys\":[]}");
    assert_int_equal(d.fetched, 1700000001000000LL);
    assert_int_equal(count_entries(e->dir), 1);
    /* The same URL with a CA file is another record. */
    assert_int_equal(sh->get(sh, URL, "/etc/ca.pem", 4096, &d, &why, e->p), APR_NOTFOUND);
    put_doc(sh, URL, "/etc/ca.pem", DOC, 1700000002000000LL, e->p);
    assert_int_equal(sh->get(sh, URL, "/etc/ca.pem", 4096, &d, &why, e->p), APR_SUCCESS);
    assert_int_equal(d.fetched, 1700000002000000LL);
    assert_int_equal(count_entries(e->dir), 2);
    /* A document larger than the reader's cap is refused. */
    assert_int_not_equal(sh->get(sh, URL, "/etc/ca.pem", 10, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(why);
}

static void write_file(const char *path, const char *text, size_t len, mode_t mode)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_NOFOLLOW, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void test_hostile_records(void **state)
{
    env_t *e = *state;
    ajw_shared_t *sh = make_store(e);
    ajw_shared_doc_t d;
    const char *why = NULL, *path, *path2, *other;
    char *big;
    size_t i;
    struct stat st;

    put_doc(sh, URL, NULL, DOC, 1700000000000000LL, e->p);
    path = record_path(e, NULL);
    /* Another URL's record under this URL's name. */
    put_doc(sh, URL2, NULL, DOC, 1700000000000000LL, e->p);
    path2 = record_path(e, path);
    assert_int_equal(rename(path2, path), 0);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "another URL"));
    assert_null(d.body);
    /* Truncated. */
    put_doc(sh, URL, NULL, DOC, 1700000000000000LL, e->p);
    assert_int_equal(lstat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "malformed"));
    /* Empty. */
    assert_int_equal(truncate(path, 0), 0);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    /* Huge (over 2 * max_len + 64 KiB): refused before it is read. */
    big = malloc(300 * 1024);
    for (i = 0; i < 300 * 1024; i++)
        big[i] = ' ';
    big[0] = '{';
    big[300 * 1024 - 1] = '}';
    write_file(path, big, 300 * 1024, 0600);
    free(big);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "bad size"));
    /* Well-formed JSON of the wrong shape. */
    write_file(path, "{\"v\":1,\"url\":\"" URL "\",\"fetched\":\"x\",\"max_age\":1,\"body\":\"{}\"}",
               strlen("{\"v\":1,\"url\":\"" URL "\",\"fetched\":\"x\",\"max_age\":1,\"body\":\"{}\"}"),
               0600);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "fetch time"));
    write_file(path, "{\"v\":1,\"v\":1}", 13, 0600);   /* duplicate member */
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    /* A good record made group-writable, or a stranger's: refused. */
    put_doc(sh, URL, NULL, DOC, 1700000000000000LL, e->p);
    assert_int_equal(chmod(path, 0660), 0);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "writable by group"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(chown(path, STRANGER, STRANGER), 0);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "owned by uid 12345"));
    assert_int_equal(chown(path, 0, 0), 0);
    assert_int_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    /* A symlink in place of the record (to a valid record elsewhere). */
    other = apr_pstrcat(e->p, e->root, "/elsewhere.json", NULL);
    assert_int_equal(rename(path, other), 0);
    assert_int_equal(symlink(other, path), 0);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "symbolic link"));
    /* put replaces the link itself, never writes through it. */
    put_doc(sh, URL, NULL, "{\"keys\":[1]}", 1700000000000001LL, e->p);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_string_equal(d.body, "{\"keys\":[1]}");
    /* A FIFO is not a record (and opening it does not block). */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkfifo(path, 0600), 0);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "not a regular file"));
}

static void test_put_refuses_bad_input(void **state)
{
    env_t *e = *state;
    ajw_shared_t *sh = make_store(e);
    ajw_shared_doc_t d;
    const char *why = NULL;
    memset(&d, 0, sizeof(d));
    d.body = "\xff\xfe not utf-8";
    d.len = strlen(d.body);
    d.fetched = 1;
    assert_int_not_equal(sh->put(sh, URL, NULL, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(why);
    d.body = "";
    d.len = 0;
    assert_int_not_equal(sh->put(sh, URL, NULL, &d, &why, e->p), APR_SUCCESS);
    assert_int_equal(count_entries(e->dir), 0);
}

/* ---- leases ------------------------------------------------------------------- */

static void test_lease(void **state)
{
    env_t *e = *state;
    ajw_shared_t *sh = make_store(e), *sh2 = NULL;
    const char *why = NULL;
    void *a = NULL, *b = NULL;
    apr_time_t last = -1;
    apr_pool_t *sub;

    assert_int_equal(ajw_shared_file_create(&sh2, e->dir, &why, e->p), APR_SUCCESS);
    assert_int_equal(sh->lease(sh, URL, NULL, 1000, &last, &a, e->p), APR_SUCCESS);
    assert_non_null(a);
    assert_int_equal(last, 0);
    /* Held: another store (or the same one) in this process is refused. */
    assert_int_equal(sh2->lease(sh2, URL, NULL, 2000, &last, &b, e->p), APR_EBUSY);
    assert_null(b);
    assert_int_equal(sh->lease(sh, URL, NULL, 2000, &last, &b, e->p), APR_EBUSY);
    /* Another URL is independent. */
    assert_int_equal(sh2->lease(sh2, URL2, NULL, 2000, &last, &b, e->p), APR_SUCCESS);
    sh2->unlease(sh2, b);
    sh->unlease(sh, a);
    assert_int_equal(sh2->lease(sh2, URL, NULL, 3000, &last, &b, e->p), APR_SUCCESS);
    assert_int_equal(last, 1000);                 /* the previous attempt's start */
    sh2->unlease(sh2, b);
    /* Clearing the pool releases a lease too. */
    apr_pool_create(&sub, e->p);
    assert_int_equal(sh->lease(sh, URL, NULL, 4000, &last, &a, sub), APR_SUCCESS);
    assert_int_equal(last, 3000);
    apr_pool_destroy(sub);
    assert_int_equal(sh2->lease(sh2, URL, NULL, 5000, &last, &b, e->p), APR_SUCCESS);
    assert_int_equal(last, 4000);
    sh2->unlease(sh2, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dir_created_private, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_refuses_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
    };
    int rc;
    apr_initialize();
    if (geteuid() != 0) {
        printf("test_shared: needs root (ownership checks); skipped\n");
        apr_terminate();
        return 0;
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
