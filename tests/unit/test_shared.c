/* test_shared.c — the shared store: the record format (naming, encoding,
 * hostile records refused), the file-backed store (directory checks, atomic
 * write and read-back, leases) and the local + remote pair. */
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
#include <openssl/hmac.h>
#include <openssl/evp.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "ajw_shared.h"
#include "ajw_shared_record.h"

#define URL "https://idp.example/jwks"
#define URL2 "https://other.example/jwks"
#define DOC "{\"keys\":[{\"kty\":\"EC\",\"kid\":\"k\\u00e9\",\"x\":\"\\\"q\\\"\"}]}\n"
#define STRANGER 12345

/* The records' MAC key of these tests, and another one. */
static const unsigned char KEY[AJW_SHARED_KEY_LEN] = "0123456789abcdef0123456789abcdef";
static const unsigned char KEY2[AJW_SHARED_KEY_LEN] = "0123456789abcdef0123456789abcdeF";

/* "AJW2 <hex HMAC-SHA-256 of json under key>\n" json, computed here with
 * OpenSSL directly (not through the code under test). */
static const char *mac_wrap(const char *json, const unsigned char *key, apr_pool_t *p)
{
    unsigned char mac[32];
    unsigned int mlen = 0;
    char hex[65];
    int i;
    assert_non_null(HMAC(EVP_sha256(), key, AJW_SHARED_KEY_LEN, (const unsigned char *)json,
                         strlen(json), mac, &mlen));
    assert_int_equal(mlen, 32);
    for (i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    return apr_pstrcat(p, "AJW2 ", hex, "\n", json, NULL);
}

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
    assert_int_equal(ajw_shared_file_create(&sh, e->dir, KEY, &why, e->p), APR_SUCCESS);
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
    assert_int_not_equal(ajw_shared_file_create(&sh, e->dir, KEY, &why, e->p), APR_SUCCESS);
    assert_int_equal(chmod(e->dir, 01777), 0);
    assert_int_not_equal(ajw_shared_file_check_dir(e->dir, 0, 0, &why, e->p), APR_SUCCESS);
    assert_int_equal(chmod(e->dir, 0700), 0);
    /* A symlink to a good directory. */
    assert_int_equal(symlink(e->dir, link), 0);
    assert_int_not_equal(ajw_shared_file_check_dir(link, 0, 0, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "symbolic link"));
    assert_int_not_equal(ajw_shared_file_create(&sh, link, KEY, &why, e->p), APR_SUCCESS);
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
    assert_non_null(strstr(why, "record MAC does not verify"));
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
    assert_non_null(strstr(why, "has a bad size (307200 bytes)"));
    /* Well-formed JSON of the wrong shape, behind a valid MAC. */
    other = mac_wrap("{\"v\":2,\"url\":\"" URL "\",\"fetched\":\"x\",\"max_age\":1,"
                     "\"body\":\"{}\"}", KEY, e->p);
    write_file(path, other, strlen(other), 0600);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "fetch time"));
    other = mac_wrap("{\"v\":2,\"v\":2}", KEY, e->p);   /* duplicate member */
    write_file(path, other, strlen(other), 0600);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "malformed"));
    /* The same JSON without the MAC line (a v1 record): refused. */
    write_file(path, "{\"v\":1,\"url\":\"" URL "\",\"fetched\":1,\"max_age\":1,\"body\":\"{}\"}",
               strlen("{\"v\":1,\"url\":\"" URL "\",\"fetched\":1,\"max_age\":1,\"body\":\"{}\"}"),
               0600);
    assert_int_not_equal(sh->get(sh, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "record without a MAC"));
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

    assert_int_equal(ajw_shared_file_create(&sh2, e->dir, KEY, &why, e->p), APR_SUCCESS);
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

/* ---- the record format ---------------------------------------------------------- */

static void test_record_names(void **state)
{
    env_t *e = *state;
    unsigned char id[AJW_SHARED_ID_LEN], id2[AJW_SHARED_ID_LEN];
    /* SHA-256 of the URL, or of URL "\n" CA file. */
    assert_string_equal(ajw_shared_record_name(URL, NULL, ".json", e->p),
                        "3fec90cf462c0ddc41ea898aa492d2c3cfe76c175db0de41653d981f83fb99e4.json");
    assert_string_equal(ajw_shared_record_name(URL, "/etc/ca.pem", "", e->p),
                        "223bdd7a892dd19a5924fc2f04a13662aeb50a18a2bfea3fbe746793e6847522");
    assert_int_equal(ajw_shared_record_id(id, URL, NULL, e->p), APR_SUCCESS);
    assert_int_equal(id[0], 0x3f);
    assert_int_equal(id[31], 0xe4);
    assert_int_equal(ajw_shared_record_id(id2, URL2, NULL, e->p), APR_SUCCESS);
    assert_memory_not_equal(id, id2, sizeof(id));
    assert_int_equal(ajw_shared_record_cap(1000), 2000 + 64 * 1024);
    assert_int_equal(ajw_shared_record_cap((size_t)-1), (size_t)-1);   /* no overflow */
}

static ajw_shared_doc_t sample_doc(void)
{
    ajw_shared_doc_t d;
    memset(&d, 0, sizeof(d));
    d.body = DOC;
    d.len = strlen(DOC);
    d.etag = "W/\"e1\"";
    d.fetched = 1700000000123456LL;
    d.max_age = -1;
    return d;
}

static void test_record_roundtrip(void **state)
{
    env_t *e = *state;
    ajw_shared_doc_t d = sample_doc(), back;
    const char *why = NULL;
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(ajw_shared_record_encode(&text, &len, KEY, URL, "/etc/ca.pem", &d, &why, e->p),
                     APR_SUCCESS);
    assert_int_equal(strlen(text), len);
    assert_int_equal(ajw_shared_record_decode(&back, text, len, KEY, URL, "/etc/ca.pem", 4096, &why,
                                              e->p), APR_SUCCESS);
    assert_int_equal(back.len, d.len);
    assert_memory_equal(back.body, DOC, d.len);
    assert_string_equal(back.etag, d.etag);
    assert_int_equal(back.fetched, d.fetched);
    assert_int_equal(back.max_age, -1);
    /* Without ETag; decoding needs no NUL terminator. */
    d.etag = NULL;
    assert_int_equal(ajw_shared_record_encode(&text, &len, KEY, URL, NULL, &d, &why, e->p), APR_SUCCESS);
    text = apr_pmemdup(e->p, text, len);          /* followed by whatever: decode stops at len */
    assert_int_equal(ajw_shared_record_decode(&back, text, len, KEY, URL, NULL, 4096, &why, e->p),
                     APR_SUCCESS);
    assert_null(back.etag);
    /* The exact URL and CA file only. */
    assert_int_not_equal(ajw_shared_record_decode(&back, text, len, KEY, URL2, NULL, 4096, &why, e->p),
                         APR_SUCCESS);
    assert_non_null(strstr(why, "another URL"));
    assert_null(back.body);
    assert_int_not_equal(ajw_shared_record_decode(&back, text, len, KEY, URL, "/etc/ca.pem", 4096,
                                                  &why, e->p), APR_SUCCESS);
    assert_non_null(strstr(why, "another CA file"));
    /* A prefix of the URL is another URL. */
    assert_int_not_equal(ajw_shared_record_decode(&back, text, len, KEY, "https://idp.example/jwk",
                                                  NULL, 4096, &why, e->p), APR_SUCCESS);
    /* Too large for the reader. */
    assert_int_not_equal(ajw_shared_record_decode(&back, text, len, KEY, URL, NULL, 8, &why, e->p),
                         APR_SUCCESS);
    assert_non_null(strstr(why, "too large"));
}

/* The MAC line: checked before the JSON, under the reader's key only. */
static void test_record_mac(void **state)
{
    env_t *e = *state;
    ajw_shared_doc_t d = sample_doc(), back;
    const char *why = NULL, *json, *rec;
    char *text = NULL, *t2;
    size_t len = 0, i;

    assert_int_equal(ajw_shared_record_encode(&text, &len, KEY, URL, NULL, &d, &why, e->p),
                     APR_SUCCESS);
    /* The format: our own MAC over the JSON after the line. */
    assert_true(len > 70 && !strncmp(text, "AJW2 ", 5) && text[69] == '\n');
    json = text + 70;
    assert_string_equal(mac_wrap(json, KEY, e->p), text);
    assert_non_null(strstr(json, "\"v\":2"));
    /* Another key: refused, whatever the content. */
    assert_int_equal(ajw_shared_record_decode(&back, text, len, KEY2, URL, NULL, 4096, &why, e->p),
                     APR_EGENERAL);
    assert_non_null(strstr(why, "record MAC does not verify"));
    assert_null(back.body);
    /* The JSON alone (a v1 record, or one planted without the key). */
    assert_int_equal(ajw_shared_record_decode(&back, json, strlen(json), KEY, URL, NULL, 4096,
                                              &why, e->p), APR_EGENERAL);
    assert_non_null(strstr(why, "record without a MAC"));
    /* Every single-byte change anywhere in the record is refused. */
    for (i = 0; i < len; i++) {
        t2 = apr_pmemdup(e->p, text, len);
        t2[i] = (char)(t2[i] == 'a' ? 'b' : 'a');
        if (ajw_shared_record_decode(&back, t2, len, KEY, URL, NULL, 4096, &why, e->p)
            == APR_SUCCESS)
            fail_msg("byte %zu changed, record accepted", i);
    }
    /* Upper-case hex, a short line, a missing newline: no MAC line. */
    t2 = apr_pmemdup(e->p, text, len);
    for (i = 5; i < 69; i++)
        if (t2[i] >= 'a' && t2[i] <= 'f')
            t2[i] = (char)(t2[i] - 'a' + 'A');
    assert_int_equal(ajw_shared_record_decode(&back, t2, len, KEY, URL, NULL, 4096, &why, e->p),
                     APR_EGENERAL);
    assert_int_equal(ajw_shared_record_decode(&back, text, 69, KEY, URL, NULL, 4096, &why, e->p),
                     APR_EGENERAL);
    assert_non_null(strstr(why, "record without a MAC"));
    t2 = apr_pmemdup(e->p, text, len);
    t2[69] = ' ';
    assert_int_equal(ajw_shared_record_decode(&back, t2, len, KEY, URL, NULL, 4096, &why, e->p),
                     APR_EGENERAL);
    /* Valid MAC, trailing bytes after the JSON: the MAC covers them (refused). */
    t2 = apr_pstrcat(e->p, text, " ", NULL);
    assert_int_equal(ajw_shared_record_decode(&back, t2, len + 1, KEY, URL, NULL, 4096, &why,
                                              e->p), APR_EGENERAL);
    /* A record made by someone holding the key is taken, with its content. */
    rec = mac_wrap("{\"v\":2,\"url\":\"" URL "\",\"fetched\":5,\"max_age\":7,"
                   "\"body\":\"{}\"}", KEY, e->p);
    assert_int_equal(ajw_shared_record_decode(&back, rec, strlen(rec), KEY, URL, NULL, 4096, &why,
                                              e->p), APR_SUCCESS);
    assert_int_equal(back.fetched, 5);
    assert_int_equal(back.max_age, 7);
}

static void test_record_hostile(void **state)
{
    static const struct { const char *text, *why; } bad[] = {
        { "", "bad size" },
        { "[]", "malformed" },
        { "\"x\"", "malformed" },
        { "{\"v\":2", "malformed" },
        { "{\"v\":2,\"v\":2}", "malformed" },                    /* duplicate member */
        { "{} {}", "malformed" },                                 /* trailing data */
        { "{\"v\":3,\"url\":\"" URL "\",\"fetched\":1,\"max_age\":1,\"body\":\"{}\"}", "version" },
        { "{\"v\":1,\"url\":\"" URL "\",\"fetched\":1,\"max_age\":1,\"body\":\"{}\"}", "version" },
        { "{\"v\":\"1\",\"url\":\"" URL "\",\"fetched\":1,\"max_age\":1,\"body\":\"{}\"}", "version" },
        { "{\"v\":2,\"fetched\":1,\"max_age\":1,\"body\":\"{}\"}", "another URL" },
        { "{\"v\":2,\"url\":1,\"fetched\":1,\"max_age\":1,\"body\":\"{}\"}", "another URL" },
        { "{\"v\":2,\"url\":\"" URL "\\u0000x\",\"fetched\":1,\"max_age\":1,\"body\":\"{}\"}",
          "malformed" },                                        /* NUL never decoded */
        { "{\"v\":2,\"url\":\"" URL "\",\"ca_file\":\"/x\",\"fetched\":1,\"max_age\":1,"
          "\"body\":\"{}\"}", "another CA file" },
        { "{\"v\":2,\"url\":\"" URL "\",\"ca_file\":null,\"fetched\":1,\"max_age\":1,"
          "\"body\":\"{}\"}", "another CA file" },
        { "{\"v\":2,\"url\":\"" URL "\",\"fetched\":0,\"max_age\":1,\"body\":\"{}\"}", "fetch time" },
        { "{\"v\":2,\"url\":\"" URL "\",\"fetched\":1.5,\"max_age\":1,\"body\":\"{}\"}", "fetch time" },
        { "{\"v\":2,\"url\":\"" URL "\",\"fetched\":1,\"max_age\":-2,\"body\":\"{}\"}", "max_age" },
        { "{\"v\":2,\"url\":\"" URL "\",\"fetched\":1,\"body\":\"{}\"}", "max_age" },
        { "{\"v\":2,\"url\":\"" URL "\",\"fetched\":1,\"max_age\":1,\"etag\":1,\"body\":\"{}\"}",
          "etag" },
        { "{\"v\":2,\"url\":\"" URL "\",\"fetched\":1,\"max_age\":1,\"body\":\"\"}", "no document" },
        { "{\"v\":2,\"url\":\"" URL "\",\"fetched\":1,\"max_age\":1,\"body\":{}}", "no document" },
        { "{\"v\":2,\"url\":\"" URL "\",\"fetched\":1,\"max_age\":1}", "no document" },
        { "{\"v\":2,\"url\":\"" URL "\",\"fetched\":1,\"max_age\":1,\"x\":[[[[1]]]],"
          "\"body\":\"{}\"}", "malformed" },                    /* nested too deep */
    };
    env_t *e = *state;
    ajw_shared_doc_t d;
    const char *why;
    char *big, *etag;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *rec = i ? mac_wrap(bad[i].text, KEY, e->p) : bad[i].text;
        why = NULL;
        assert_int_equal(ajw_shared_record_decode(&d, rec, strlen(rec), KEY, URL, NULL, 4096,
                                                  &why, e->p), APR_EGENERAL);
        assert_non_null(why);
        if (!strstr(why, bad[i].why))
            fail_msg("case %zu: '%s' does not say '%s'", i, why, bad[i].why);
        assert_null(d.body);
    }
    /* NULL buffer; over the cap (2 * 10 + 64 KiB) before any parsing. */
    assert_int_equal(ajw_shared_record_decode(&d, NULL, 5, KEY, URL, NULL, 10, &why, e->p),
                     APR_EGENERAL);
    big = apr_palloc(e->p, 70 * 1024);
    memset(big, ' ', 70 * 1024);
    big[0] = '{';
    big[70 * 1024 - 1] = '}';
    assert_int_equal(ajw_shared_record_decode(&d, big, 70 * 1024, KEY, URL, NULL, 10, &why, e->p),
                     APR_EGENERAL);
    assert_string_equal(why, "bad size (71680 bytes, at most 65556)");
    /* An ETag over 255 bytes. */
    etag = apr_palloc(e->p, 300);
    memset(etag, 'e', 299);
    etag[299] = '\0';
    big = apr_psprintf(e->p, "{\"v\":2,\"url\":\"%s\",\"fetched\":1,\"max_age\":1,\"etag\":\"%s\","
                       "\"body\":\"{}\"}", URL, etag);
    big = (char *)mac_wrap(big, KEY, e->p);
    assert_int_equal(ajw_shared_record_decode(&d, big, strlen(big), KEY, URL, NULL, 4096, &why, e->p),
                     APR_EGENERAL);
    assert_non_null(strstr(why, "etag"));
}

static void test_record_encode_refuses(void **state)
{
    env_t *e = *state;
    ajw_shared_doc_t d = sample_doc();
    const char *why = NULL;
    char *text = (char *)"x", *etag;
    size_t len = 7;

    d.fetched = 0;
    assert_int_equal(ajw_shared_record_encode(&text, &len, KEY, URL, NULL, &d, &why, e->p), APR_EINVAL);
    assert_null(text);
    assert_int_equal(len, 0);
    assert_non_null(why);
    d = sample_doc();
    d.max_age = -2;
    assert_int_equal(ajw_shared_record_encode(&text, &len, KEY, URL, NULL, &d, &why, e->p), APR_EINVAL);
    d = sample_doc();
    etag = apr_palloc(e->p, 300);
    memset(etag, 'e', 299);
    etag[299] = '\0';
    d.etag = etag;
    assert_int_equal(ajw_shared_record_encode(&text, &len, KEY, URL, NULL, &d, &why, e->p), APR_EINVAL);
    d = sample_doc();
    d.body = "\xff\xfe";
    d.len = 2;
    assert_int_equal(ajw_shared_record_encode(&text, &len, KEY, URL, NULL, &d, &why, e->p), APR_EINVAL);
    assert_non_null(strstr(why, "UTF-8"));
    d = sample_doc();
    assert_int_equal(ajw_shared_record_encode(&text, &len, KEY, "https://x/\xff", NULL, &d, &why, e->p),
                     APR_EINVAL);
}

/* ---- the pair --------------------------------------------------------------------- */

/* A store in memory: one encoded record (or a raw hostile value), through
 * the same codec as the real stores. */
typedef struct mem_store_t {
    char *value;
    size_t len;
    int puts, fail_put;
} mem_store_t;

static apr_status_t mem_get(ajw_shared_t *self, const char *url, const char *ca_file,
                            size_t max_len, ajw_shared_doc_t *doc, const char **why,
                            apr_pool_t *p)
{
    mem_store_t *m = self->baton;
    memset(doc, 0, sizeof(*doc));
    *why = NULL;
    if (!m->value)
        return APR_NOTFOUND;
    return ajw_shared_record_decode(doc, m->value, m->len, KEY, url, ca_file, max_len, why, p);
}

static apr_status_t mem_put(ajw_shared_t *self, const char *url, const char *ca_file,
                            const ajw_shared_doc_t *doc, const char **why, apr_pool_t *p)
{
    mem_store_t *m = self->baton;
    m->puts++;
    if (m->fail_put) {
        *why = "mem: full";
        return APR_ENOSPC;
    }
    return ajw_shared_record_encode(&m->value, &m->len, KEY, url, ca_file, doc, why, p);
}

static ajw_shared_t *mem_store(mem_store_t *m, apr_pool_t *p)
{
    ajw_shared_t *sh = apr_pcalloc(p, sizeof(*sh));
    sh->get = mem_get;
    sh->put = mem_put;
    sh->baton = m;
    return sh;
}

static void mem_set(mem_store_t *m, const char *url, apr_time_t fetched, const char *body,
                    apr_pool_t *p)
{
    ajw_shared_doc_t d = sample_doc();
    const char *why = NULL;
    d.fetched = fetched;
    d.body = body;
    d.len = strlen(body);
    assert_int_equal(ajw_shared_record_encode(&m->value, &m->len, KEY, url, NULL, &d, &why, p),
                     APR_SUCCESS);
}

static void test_pair(void **state)
{
    env_t *e = *state;
    mem_store_t lm, rm;
    ajw_shared_t *local, *remote, *pair = NULL, *nolease = NULL;
    ajw_shared_doc_t d = sample_doc();
    const char *why = NULL;
    apr_time_t last = 0;
    void *lease = NULL;

    memset(&lm, 0, sizeof(lm));
    memset(&rm, 0, sizeof(rm));
    local = make_store(e);
    remote = mem_store(&rm, e->p);
    assert_int_equal(ajw_shared_pair_create(&pair, local, NULL, e->p), APR_EINVAL);
    assert_int_equal(ajw_shared_pair_create(&pair, local, remote, e->p), APR_SUCCESS);
    /* Neither has one. */
    assert_int_equal(pair->get(pair, URL, NULL, 4096, &d, &why, e->p), APR_NOTFOUND);
    /* Only the remote (another server of the fleet wrote it). */
    mem_set(&rm, URL, 1700000000000000LL, "{\"keys\":[\"remote\"]}", e->p);
    assert_int_equal(pair->get(pair, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_string_equal(d.body, "{\"keys\":[\"remote\"]}");
    /* put writes both; then the newer of the two wins, either way round. */
    d = sample_doc();
    d.fetched = 1700000001000000LL;
    assert_int_equal(pair->put(pair, URL, NULL, &d, &why, e->p), APR_SUCCESS);
    assert_int_equal(rm.puts, 1);
    assert_int_equal(local->get(local, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_int_equal(d.fetched, 1700000001000000LL);
    mem_set(&rm, URL, 1700000002000000LL, "{\"keys\":[\"newer\"]}", e->p);
    assert_int_equal(pair->get(pair, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_string_equal(d.body, "{\"keys\":[\"newer\"]}");
    mem_set(&rm, URL, 1600000000000000LL, "{\"keys\":[\"older\"]}", e->p);
    assert_int_equal(pair->get(pair, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_int_equal(d.fetched, 1700000001000000LL);
    /* A poisoned remote (another URL's record, however new) never wins. */
    mem_set(&rm, URL2, 1800000000000000LL, "{\"keys\":[\"evil\"]}", e->p);
    assert_int_equal(pair->get(pair, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_int_equal(d.fetched, 1700000001000000LL);
    assert_memory_equal(d.body, DOC, d.len);
    rm.value = (char *)"garbage";
    rm.len = 7;
    assert_int_equal(pair->get(pair, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_int_equal(d.fetched, 1700000001000000LL);
    /* Nor does a record claiming a fetch in the future. */
    mem_set(&rm, URL, apr_time_now() + apr_time_from_sec(3600), "{\"keys\":[\"future\"]}", e->p);
    assert_int_equal(pair->get(pair, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_int_equal(d.fetched, 1700000001000000LL);
    rm.value = (char *)"garbage";
    rm.len = 7;
    /* With nothing valid locally, the refusal comes back. */
    assert_int_equal(pair->get(pair, URL2, NULL, 4096, &d, &why, e->p), APR_EGENERAL);
    assert_non_null(strstr(why, "record without a MAC"));
    assert_null(d.body);
    /* A failed remote write is reported; the local write still happened. */
    rm.fail_put = 1;
    d = sample_doc();
    d.fetched = 1700000003000000LL;
    assert_int_equal(pair->put(pair, URL, NULL, &d, &why, e->p), APR_ENOSPC);
    assert_string_equal(why, "mem: full");
    assert_int_equal(local->get(local, URL, NULL, 4096, &d, &why, e->p), APR_SUCCESS);
    assert_int_equal(d.fetched, 1700000003000000LL);
    /* Leases are the local store's; a local store without them gives none. */
    assert_non_null(pair->lease);
    assert_int_equal(pair->lease(pair, URL, NULL, 1000, &last, &lease, e->p), APR_SUCCESS);
    assert_int_equal(local->lease(local, URL, NULL, 2000, &last, &lease, e->p), APR_EBUSY);
    pair->unlease(pair, lease);
    assert_int_equal(ajw_shared_pair_create(&nolease, mem_store(&lm, e->p), remote, e->p),
                     APR_SUCCESS);
    assert_null(nolease->lease);
    assert_null(nolease->unlease);
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
        cmocka_unit_test_setup_teardown(test_record_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_mac, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_encode_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pair, setup, teardown),
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
