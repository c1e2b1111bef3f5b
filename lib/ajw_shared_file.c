/* ajw_shared_file.c — the shared store as files in a private directory.
 *
 * Every operation goes through a descriptor of the directory opened once
 * (openat & co), so replacing the directory's path by a symbolic link after
 * the startup check changes nothing. Records are replaced by rename, so a
 * reader sees the old or the new file, never a partial one. Nothing here is
 * shared between threads except the read-only store (the descriptor). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <apr_strings.h>
#include <apr_general.h>

#include "ajw_shared.h"
#include "ajw_shared_record.h"
#include "ajw_crypt.h"

#define STAMP_LEN        24           /* the lock file: decimal microseconds, padded */

typedef struct file_store_t {
    int dirfd;                        /* read-only after create */
    const char *dir;
    unsigned char key[AJW_SHARED_KEY_LEN];   /* the records' MAC key; read-only */
} file_store_t;

typedef struct file_lease_t {
    int fd;
    apr_pool_t *pool;
} file_lease_t;

/* ---- checks ------------------------------------------------------------------ */

/* Why st must not be trusted (NULL when it may): a symlink, the wrong kind,
 * a stranger's, or writable by group/other. */
static const char *untrusted(const struct stat *st, int want_dir, uid_t uid, apr_pool_t *p)
{
    if (S_ISLNK(st->st_mode))
        return "is a symbolic link";
    if (want_dir && !S_ISDIR(st->st_mode))
        return "is not a directory";
    if (!want_dir && !S_ISREG(st->st_mode))
        return "is not a regular file";
    if (st->st_uid != uid && st->st_uid != 0)
        return apr_psprintf(p, "is owned by uid %ld, not %ld or root", (long)st->st_uid, (long)uid);
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return apr_psprintf(p, "is writable by group or others (mode %04o)",
                            (unsigned)(st->st_mode & 07777));
    return NULL;
}

/* Every entry of dir (held open as dfd) must be trustworthy. */
static apr_status_t check_entries(int dfd, const char *dir, uid_t uid, const char **why,
                                  apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;
    struct dirent *de;
    struct stat st;
    const char *bad;
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;

    if (!d) {
        rv = APR_FROM_OS_ERROR(errno);
        *why = apr_psprintf(p, "cannot list %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto cleanup;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;                 /* gone meanwhile */
        bad = untrusted(&st, 0, uid, p);
        if (bad) {
            rv = APR_EACCES;
            *why = apr_psprintf(p, "%s/%s %s", dir, de->d_name, bad);
            break;
        }
    }
    closedir(d);
cleanup:
    return rv;
}

apr_status_t ajw_shared_file_check_dir(const char *dir, uid_t uid, gid_t gid,
                                       const char **why, apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;
    struct stat st;
    const char *bad;
    int dfd = -1;

    *why = NULL;
    if (!dir || dir[0] != '/') {
        *why = "the shared key directory must be an absolute path";
        rv = APR_EINVAL;
        goto cleanup;
    }
    if (lstat(dir, &st) != 0 && errno == ENOENT) {
        if (mkdir(dir, 0700) != 0) {
            rv = APR_FROM_OS_ERROR(errno);
            *why = apr_psprintf(p, "cannot create %s: %s", dir, strerror(errno));
            goto cleanup;
        }
        if (geteuid() == 0 && lchown(dir, uid, gid) != 0) {
            rv = APR_FROM_OS_ERROR(errno);
            *why = apr_psprintf(p, "cannot give %s to uid %ld: %s", dir, (long)uid, strerror(errno));
            goto cleanup;
        }
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        *why = errno == ELOOP || errno == ENOTDIR
             ? apr_psprintf(p, "%s is a symbolic link or not a directory", dir)
             : apr_psprintf(p, "cannot open %s: %s", dir, strerror(errno));
        goto cleanup;
    }
    if (fstat(dfd, &st) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        *why = apr_psprintf(p, "cannot stat %s: %s", dir, strerror(errno));
        goto cleanup;
    }
    bad = untrusted(&st, 1, uid, p);
    if (bad) {
        rv = APR_EACCES;
        *why = apr_psprintf(p, "%s %s", dir, bad);
        goto cleanup;
    }
    rv = check_entries(dfd, dir, uid, why, p);
cleanup:
    if (dfd >= 0)
        close(dfd);
    return rv;
}

/* ---- opening ------------------------------------------------------------------- */

/* Open name in the store for reading or writing, refusing what we must not trust. */
static int open_trusted(file_store_t *fs, const char *name, int flags, const char **why,
                        struct stat *st, apr_pool_t *p)
{
    const char *bad;
    int fd = openat(fs->dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (fd < 0) {
        if (errno == ELOOP)
            *why = apr_psprintf(p, "%s/%s is a symbolic link", fs->dir, name);
        else if (errno != ENOENT)
            *why = apr_psprintf(p, "cannot open %s/%s: %s", fs->dir, name, strerror(errno));
        return -1;
    }
    if (fstat(fd, st) != 0)
        bad = "cannot be examined";
    else
        bad = untrusted(st, 0, geteuid(), p);
    if (bad) {
        *why = apr_psprintf(p, "%s/%s %s", fs->dir, name, bad);
        close(fd);
        errno = EACCES;
        return -1;
    }
    return fd;
}

/* ---- get ------------------------------------------------------------------------ */

static apr_status_t read_all(int fd, char *buf, size_t len)
{
    size_t got = 0;
    ssize_t n;
    while (got < len) {
        n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return APR_EGENERAL;
        got += (size_t)n;
    }
    return APR_SUCCESS;
}

static apr_status_t file_get(ajw_shared_t *self, const char *url, const char *ca_file,
                             size_t max_len, ajw_shared_doc_t *doc, const char **why,
                             apr_pool_t *p)
{
    file_store_t *fs = self->baton;
    apr_status_t rv = APR_SUCCESS;
    size_t cap = ajw_shared_record_cap(max_len);
    const char *name = ajw_shared_record_name(url, ca_file, ".json", p);
    const char *bad = NULL;
    struct stat st;
    char *buf;
    int fd = -1;

    memset(doc, 0, sizeof(*doc));
    *why = NULL;
    fd = name ? open_trusted(fs, name, O_RDONLY, why, &st, p) : -1;
    if (fd < 0) {
        rv = (*why || !name) ? APR_EACCES : APR_NOTFOUND;
        if (!name)
            *why = "cannot name the record";
        goto cleanup;
    }
    if (st.st_size <= 0 || (apr_uint64_t)st.st_size > cap) {
        rv = APR_EGENERAL;
        *why = apr_psprintf(p, "%s/%s has a bad size (%" APR_INT64_T_FMT " bytes)", fs->dir,
                            name, (apr_int64_t)st.st_size);
        goto cleanup;
    }
    buf = apr_palloc(p, (apr_size_t)st.st_size + 1);
    if (read_all(fd, buf, (size_t)st.st_size) != APR_SUCCESS) {
        rv = APR_EGENERAL;
        *why = apr_psprintf(p, "%s/%s: short read", fs->dir, name);
        goto cleanup;
    }
    buf[st.st_size] = '\0';
    rv = ajw_shared_record_decode(doc, buf, (size_t)st.st_size, fs->key, url, ca_file, max_len,
                                  &bad, p);
    if (rv != APR_SUCCESS)
        *why = apr_psprintf(p, "%s/%s: %s", fs->dir, name, bad);
cleanup:
    if (fd >= 0)
        close(fd);
    return rv;
}

/* ---- put ------------------------------------------------------------------------ */

static apr_status_t write_all(int fd, const char *buf, size_t len)
{
    size_t done = 0;
    ssize_t n;
    while (done < len) {
        n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return APR_FROM_OS_ERROR(errno ? errno : EIO);
        done += (size_t)n;
    }
    return APR_SUCCESS;
}

static apr_status_t file_put(ajw_shared_t *self, const char *url, const char *ca_file,
                             const ajw_shared_doc_t *doc, const char **why, apr_pool_t *p)
{
    file_store_t *fs = self->baton;
    apr_status_t rv = APR_SUCCESS;
    const char *name = ajw_shared_record_name(url, ca_file, ".json", p);
    const char *tmp = NULL;
    unsigned char rnd[8];
    char *text = NULL;
    size_t len = 0;
    int fd = -1;

    *why = NULL;
    if (!name) {
        rv = APR_EINVAL;
        *why = "cannot name the record";
        goto cleanup;
    }
    rv = ajw_shared_record_encode(&text, &len, fs->key, url, ca_file, doc, why, p);
    if (rv != APR_SUCCESS)
        goto cleanup;
    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS)
        memset(rnd, 0, sizeof(rnd));
    tmp = apr_psprintf(p, "%s.tmp.%ld.%02x%02x%02x%02x%02x%02x", name, (long)getpid(),
                       rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    fd = openat(fs->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        *why = apr_psprintf(p, "cannot create %s/%s: %s", fs->dir, tmp, strerror(errno));
        tmp = NULL;
        goto cleanup;
    }
    rv = write_all(fd, text, len);
    if (rv == APR_SUCCESS && fchmod(fd, 0600) != 0)
        rv = APR_FROM_OS_ERROR(errno);
    if (rv == APR_SUCCESS && fsync(fd) != 0)
        rv = APR_FROM_OS_ERROR(errno);
    if (close(fd) != 0 && rv == APR_SUCCESS)
        rv = APR_FROM_OS_ERROR(errno);
    fd = -1;
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(p, "cannot write %s/%s: %s", fs->dir, tmp, strerror(errno));
        goto cleanup;
    }
    if (renameat(fs->dirfd, tmp, fs->dirfd, name) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        *why = apr_psprintf(p, "cannot rename to %s/%s: %s", fs->dir, name, strerror(errno));
        goto cleanup;
    }
    tmp = NULL;
    fsync(fs->dirfd);                 /* the rename itself survives a crash */
cleanup:
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlinkat(fs->dirfd, tmp, 0);
    return rv;
}

/* ---- leases -------------------------------------------------------------------- */

static apr_status_t lease_cleanup(void *data)
{
    file_lease_t *l = data;
    if (l->fd >= 0)
        close(l->fd);             /* drops the flock */
    l->fd = -1;
    return APR_SUCCESS;
}

static apr_status_t file_lease(ajw_shared_t *self, const char *url, const char *ca_file,
                               apr_time_t now, apr_time_t *last, void **lease, apr_pool_t *p)
{
    file_store_t *fs = self->baton;
    apr_status_t rv = APR_SUCCESS;
    const char *name = ajw_shared_record_name(url, ca_file, ".lock", p);
    const char *why = NULL;
    char stamp[STAMP_LEN + 1];
    struct stat st;
    file_lease_t *l;
    ssize_t n;
    int fd;

    *lease = NULL;
    *last = 0;
    fd = name ? open_trusted(fs, name, O_RDWR | O_CREAT, &why, &st, p) : -1;
    if (fd < 0) {
        rv = APR_EACCES;
        goto cleanup;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rv = (errno == EWOULDBLOCK) ? APR_EBUSY : APR_FROM_OS_ERROR(errno);
        close(fd);
        goto cleanup;
    }
    l = apr_pcalloc(p, sizeof(*l));
    l->fd = fd;
    l->pool = p;
    apr_pool_cleanup_register(p, l, lease_cleanup, apr_pool_cleanup_null);
    n = pread(fd, stamp, STAMP_LEN, 0);
    if (n > 0) {
        stamp[n] = '\0';
        *last = (apr_time_t)apr_atoi64(stamp);
        if (*last < 0)
            *last = 0;
    }
    snprintf(stamp, sizeof(stamp), "%*lld\n", STAMP_LEN - 1, (long long)now);
    if (pwrite(fd, stamp, STAMP_LEN, 0) != STAMP_LEN)
        *last = 0;                    /* best effort: the lease holds anyway */
    *lease = l;
cleanup:
    return rv;
}

static void file_unlease(ajw_shared_t *self, void *lease)
{
    file_lease_t *l = lease;
    (void)self;
    if (l)
        apr_pool_cleanup_run(l->pool, l, lease_cleanup);
}

/* ---- create ------------------------------------------------------------------- */

static apr_status_t store_cleanup(void *data)
{
    file_store_t *fs = data;
    if (fs->dirfd >= 0)
        close(fs->dirfd);
    fs->dirfd = -1;
    ajw_crypt_wipe(fs->key, sizeof(fs->key));
    return APR_SUCCESS;
}

apr_status_t ajw_shared_file_create(ajw_shared_t **out, const char *dir,
                                    const unsigned char *key, const char **why,
                                    apr_pool_t *p)
{
    apr_status_t rv = APR_SUCCESS;
    ajw_shared_t *sh;
    file_store_t *fs;
    struct stat st;
    const char *bad;

    *why = NULL;
    fs = apr_pcalloc(p, sizeof(*fs));
    fs->dir = apr_pstrdup(p, dir ? dir : "");
    memcpy(fs->key, key, AJW_SHARED_KEY_LEN);
    fs->dirfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (fs->dirfd < 0) {
        rv = dir ? APR_FROM_OS_ERROR(errno) : APR_EINVAL;
        *why = apr_psprintf(p, "cannot open the shared key directory %s: %s", fs->dir,
                            errno == ELOOP ? "a symbolic link" : strerror(errno));
        goto cleanup;
    }
    apr_pool_cleanup_register(p, fs, store_cleanup, apr_pool_cleanup_null);
    /* As root (httpd's parent, after ajw_shared_file_check_dir) the owner is
     * the server's user; otherwise it must be us or root. */
    bad = fstat(fs->dirfd, &st) != 0 ? "cannot be examined"
        : untrusted(&st, 1, geteuid() == 0 ? st.st_uid : geteuid(), p);
    if (bad) {
        rv = APR_EACCES;
        *why = apr_psprintf(p, "%s %s", fs->dir, bad);
        goto cleanup;
    }
    sh = apr_pcalloc(p, sizeof(*sh));
    sh->get = file_get;
    sh->put = file_put;
    sh->lease = file_lease;
    sh->unlease = file_unlease;
    sh->baton = fs;
    *out = sh;
cleanup:
    return rv;
}
