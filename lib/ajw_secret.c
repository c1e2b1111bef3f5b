/* ajw_secret.c — reading, making and deriving from the module's secret (see
 * ajw_secret.h). No state: every function works on its arguments only. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <apr_strings.h>
#include <apr_general.h>

#include "ajw_secret.h"
#include "ajw_crypt.h"
#include "ajw_types.h"

#define HKDF_SALT "mod_auth_jwks"

typedef struct wipe_t {
    unsigned char *buf;
    size_t len;
} wipe_t;

static apr_status_t wipe_cleanup(void *data)
{
    wipe_t *w = data;
    ajw_crypt_wipe(w->buf, w->len);
    return APR_SUCCESS;
}

/* A buffer of len bytes from p, wiped when p is cleared. */
static unsigned char *secret_buf(size_t len, apr_pool_t *p)
{
    wipe_t *w = apr_palloc(p, sizeof(*w));
    w->buf = apr_pcalloc(p, len);
    w->len = len;
    apr_pool_cleanup_register(p, w, wipe_cleanup, apr_pool_cleanup_null);
    return w->buf;
}

/* Why a file or directory with this stat must not hold or guard a secret
 * (NULL when it may). */
static const char *not_private(const struct stat *st, int dir, uid_t owner, apr_pool_t *p)
{
    if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
        return dir ? "is not a directory" : "is not a regular file";
    if (st->st_uid != 0 && st->st_uid != owner)
        return apr_psprintf(p, "is owned by uid %ld, not root or uid %ld", (long)st->st_uid,
                            (long)owner);
    if (dir && (st->st_mode & (S_IWGRP | S_IWOTH)))
        return apr_psprintf(p, "is writable by group or others (mode %04o)",
                            (unsigned)(st->st_mode & 07777));
    if (!dir && (st->st_mode & 077))
        return apr_psprintf(p, "is accessible by group or others (mode %04o; chmod 600 it)",
                            (unsigned)(st->st_mode & 07777));
    return NULL;
}

apr_status_t ajw_secret_read_private(char **out, size_t *len, const char *path, uid_t owner,
                                     size_t max, const char **why, apr_pool_t *p)
{
    apr_status_t rv = APR_EGENERAL;
    unsigned char *buf = NULL;
    size_t got = 0;
    struct stat st;
    const char *bad;
    ssize_t n;
    int fd = -1;

    *out = NULL;
    *len = 0;
    *why = NULL;
    fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) : -1;
    if (fd < 0) {
        rv = path ? APR_FROM_OS_ERROR(errno) : APR_EINVAL;
        *why = apr_psprintf(p, "cannot open %s: %s", path ? path : "(none)",
                            path ? strerror(errno) : "no path");
        goto cleanup;
    }
    if (fstat(fd, &st) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        *why = apr_psprintf(p, "cannot examine %s: %s", path, strerror(errno));
        goto cleanup;
    }
    if ((bad = not_private(&st, 0, owner, p)) != NULL) {
        rv = APR_EACCES;
        *why = apr_psprintf(p, "%s %s", path, bad);
        goto cleanup;
    }
    if ((apr_uint64_t)st.st_size > (apr_uint64_t)max) {
        *why = apr_psprintf(p, "%s is too large (%" APR_INT64_T_FMT " bytes, at most %"
                            APR_SIZE_T_FMT ")", path, (apr_int64_t)st.st_size, (apr_size_t)max);
        goto cleanup;
    }
    buf = secret_buf(max + 2, p);
    while (got <= max) {
        n = read(fd, buf + got, max + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rv = APR_FROM_OS_ERROR(errno);
            *why = apr_psprintf(p, "cannot read %s: %s", path, strerror(errno));
            goto cleanup;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    if (got > max) {
        *why = apr_psprintf(p, "%s is too large (more than %" APR_SIZE_T_FMT " bytes)", path,
                            (apr_size_t)max);
        goto cleanup;
    }
    while (got && (buf[got - 1] == '\n' || buf[got - 1] == '\r' || buf[got - 1] == ' '
                   || buf[got - 1] == '\t'))
        got--;
    buf[got] = '\0';
    *out = (char *)buf;
    *len = got;
    rv = APR_SUCCESS;
cleanup:
    if (fd >= 0)
        close(fd);
    if (rv != APR_SUCCESS && buf)
        ajw_crypt_wipe(buf, max + 2);
    return rv;
}

apr_status_t ajw_secret_read(unsigned char **secret, size_t *len, const char *path,
                             uid_t owner, const char **why, apr_pool_t *p)
{
    char *buf = NULL;
    apr_status_t rv = ajw_secret_read_private(&buf, len, path, owner, AJW_SECRET_MAX, why, p);
    *secret = NULL;
    if (rv != APR_SUCCESS)
        return rv;
    if (*len < AJW_SECRET_MIN) {
        *why = apr_psprintf(p, "%s holds %" APR_SIZE_T_FMT " bytes of secret, at least %d are "
                            "needed (make one with: openssl rand -hex 32 > %s)", path,
                            (apr_size_t)*len, AJW_SECRET_MIN, path);
        ajw_crypt_wipe(buf, *len);
        *len = 0;
        return APR_EGENERAL;
    }
    *secret = (unsigned char *)buf;
    return APR_SUCCESS;
}

/* Write a new secret to path through a temporary file in its directory. */
static apr_status_t make_secret(const char *path, const char **why, apr_pool_t *p)
{
    unsigned char rnd[AJW_SECRET_MIN];
    char text[2 * AJW_SECRET_MIN + 1];
    const char *tmp = apr_psprintf(p, "%s.tmp.%ld", path, (long)getpid());
    apr_status_t rv = APR_SUCCESS;
    int fd = -1;

    if ((rv = apr_generate_random_bytes(rnd, sizeof(rnd))) != APR_SUCCESS) {
        *why = "no random bytes for a new key";
        goto cleanup;
    }
    ajw_hex_encode(text, rnd, sizeof(rnd));
    text[2 * sizeof(rnd)] = '\n';
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0
        || write(fd, text, sizeof(text)) != (ssize_t)sizeof(text)
        || fchmod(fd, 0600) != 0 || fsync(fd) != 0) {
        rv = APR_FROM_OS_ERROR(errno ? errno : EIO);
        *why = apr_psprintf(p, "cannot write %s: %s", tmp, strerror(errno ? errno : EIO));
        goto cleanup;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        *why = apr_psprintf(p, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        goto cleanup;
    }
    tmp = NULL;
cleanup:
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
    ajw_crypt_wipe(rnd, sizeof(rnd));
    ajw_crypt_wipe(text, sizeof(text));
    return rv;
}

apr_status_t ajw_secret_load_or_make(unsigned char **secret, size_t *len, int *made,
                                     const char *path, uid_t owner, const char **why,
                                     apr_pool_t *p)
{
    apr_status_t rv;
    struct stat st;
    const char *bad;
    char *dir;

    *secret = NULL;
    *len = 0;
    *made = 0;
    *why = NULL;
    if (!path || path[0] != '/') {
        *why = "the key file needs an absolute path";
        return APR_EINVAL;
    }
    dir = dirname(apr_pstrdup(p, path));
    if (stat(dir, &st) != 0) {
        *why = apr_psprintf(p, "cannot examine %s: %s", dir, strerror(errno));
        return APR_FROM_OS_ERROR(errno);
    }
    if ((bad = not_private(&st, 1, owner, p)) != NULL) {
        *why = apr_psprintf(p, "%s %s, so it cannot guard a key file", dir, bad);
        return APR_EACCES;
    }
    if (lstat(path, &st) != 0 && errno == ENOENT) {
        if ((rv = make_secret(path, why, p)) != APR_SUCCESS)
            return rv;
        *made = 1;
    }
    return ajw_secret_read(secret, len, path, owner, why, p);
}

int ajw_keys_derive(ajw_keys_t *keys, const unsigned char *secret, size_t len)
{
    if (!secret || len < AJW_SECRET_MIN
        || ajw_crypt_hkdf_sha256(keys->record, AJW_KEY_LEN, secret, len, HKDF_SALT,
                                 "shared record v2") != 0
        || ajw_crypt_hkdf_sha256(keys->nonce, AJW_KEY_LEN, secret, len, HKDF_SALT,
                                 "dpop nonce v1") != 0
        || ajw_crypt_hkdf_sha256(keys->jti, AJW_KEY_LEN, secret, len, HKDF_SALT,
                                 "dpop jti v1") != 0) {
        ajw_crypt_wipe(keys, sizeof(*keys));
        return -1;
    }
    return 0;
}
