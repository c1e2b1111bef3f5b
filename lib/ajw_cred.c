/* ajw_cred.c — credential files and their shared slots (see ajw_cred.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <apr_strings.h>
#include <apr_time.h>

#include "ajw_cred.h"
#include "ajw_crypt.h"

#define SLOT_TRIES 200              /* a reader gives up after ~200 ms of changes */

/* Visible ASCII, space and tab: what an HTTP field value may hold. */
static int header_safe(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c > 0x7e)
            return 0;
    }
    return 1;
}

static const char *not_private(const struct stat *st, uid_t owner, apr_pool_t *p)
{
    if (!S_ISREG(st->st_mode))
        return "is not a regular file";
    if (st->st_uid != 0 && st->st_uid != owner)
        return apr_psprintf(p, "is owned by uid %ld, not root or uid %ld", (long)st->st_uid,
                            (long)owner);
    if (st->st_mode & 077)
        return apr_psprintf(p, "is accessible by group or others (mode %04o; chmod 600 it)",
                            (unsigned)(st->st_mode & 07777));
    return NULL;
}

/* Read at most AJW_CRED_MAX + 1 bytes of fd into buf; the count, or -1. */
static ssize_t read_all(int fd, char *buf)
{
    size_t got = 0;
    while (got <= AJW_CRED_MAX) {
        ssize_t n = read(fd, buf + got, AJW_CRED_MAX + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

apr_status_t ajw_cred_read(char **value, size_t *len, const char *path, uid_t owner,
                           const char **why, apr_pool_t *p)
{
    apr_status_t rv = APR_EGENERAL;
    char *buf = NULL;
    struct stat st;
    const char *bad;
    ssize_t got = 0;
    size_t n;
    int fd;

    *value = NULL;
    *len = 0;
    *why = NULL;
    fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) : -1;
    if (fd < 0) {
        *why = apr_psprintf(p, "cannot open %s: %s", path ? path : "(none)",
                            path ? strerror(errno) : "no path");
        return path ? APR_FROM_OS_ERROR(errno) : APR_EINVAL;
    }
    if (fstat(fd, &st) != 0) {
        rv = APR_FROM_OS_ERROR(errno);
        *why = apr_psprintf(p, "cannot examine %s: %s", path, strerror(errno));
        goto cleanup;
    }
    if ((bad = not_private(&st, owner, p)) != NULL) {
        rv = APR_EACCES;
        *why = apr_psprintf(p, "%s %s", path, bad);
        goto cleanup;
    }
    buf = apr_palloc(p, AJW_CRED_MAX + 2);
    if ((got = read_all(fd, buf)) < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        *why = apr_psprintf(p, "cannot read %s: %s", path, strerror(errno));
        goto cleanup;
    }
    n = (size_t)got;
    if (n > AJW_CRED_MAX) {
        *why = apr_psprintf(p, "%s is too large (more than %d bytes)", path, AJW_CRED_MAX);
        goto cleanup;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '
                 || buf[n - 1] == '\t'))
        n--;
    if (n == 0) {
        *why = apr_psprintf(p, "%s is empty", path);
        goto cleanup;
    }
    if (memchr(buf, '\0', n) || !header_safe(buf, n)) {
        *why = apr_psprintf(p, "%s holds a byte that cannot go into an HTTP header (a control "
                            "character, a line break inside, or non-ASCII)", path);
        goto cleanup;
    }
    buf[n] = '\0';
    *value = buf;
    *len = n;
    rv = APR_SUCCESS;
cleanup:
    close(fd);
    if (rv != APR_SUCCESS && buf)
        ajw_crypt_wipe(buf, AJW_CRED_MAX + 2);
    return rv;
}

/* A sequence lock: the writer makes seq odd, changes the value, makes it
 * even again; a reader copies the value between two reads of an equal, even
 * seq. The copy may race with the writer's memcpy (then seq tells, and the
 * copy is thrown away); the fences order the value against seq. */
void ajw_cred_slot_put(ajw_cred_slot_t *slot, const char *value, size_t len)
{
    unsigned int s = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);
    if (len > AJW_CRED_MAX)
        len = AJW_CRED_MAX;
    __atomic_store_n(&slot->seq, s + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(slot->value, value, len);
    slot->value[len] = '\0';
    __atomic_store_n(&slot->len, (unsigned int)len, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->seq, s + 2, __ATOMIC_RELEASE);
}

const char *ajw_cred_slot_get(ajw_cred_slot_t *slot, apr_pool_t *p)
{
    char *out = apr_palloc(p, AJW_CRED_MAX + 1);
    int i;
    for (i = 0; i < SLOT_TRIES; i++) {
        unsigned int s1 = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE), s2, len;
        if (!(s1 & 1)) {
            len = __atomic_load_n(&slot->len, __ATOMIC_RELAXED);
            if (len > AJW_CRED_MAX)
                len = AJW_CRED_MAX;
            memcpy(out, slot->value, len);
            out[len] = '\0';
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            s2 = __atomic_load_n(&slot->seq, __ATOMIC_RELAXED);
            if (s1 == s2)
                return len ? out : NULL;
        }
        apr_sleep(1000);
    }
    return NULL;
}
