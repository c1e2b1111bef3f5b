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
#include "ajw_secret.h"

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

apr_status_t ajw_cred_read(char **value, size_t *len, const char *path, uid_t owner,
                           const char **why, apr_pool_t *p)
{
    char *buf = NULL;
    size_t n = 0;
    apr_status_t rv = ajw_secret_read_private(&buf, &n, path, owner, AJW_CRED_MAX, why, p);

    *value = NULL;
    *len = 0;
    if (rv != APR_SUCCESS)
        return rv;
    if (n == 0) {
        *why = apr_psprintf(p, "%s is empty", path);
        return APR_EGENERAL;
    }
    if (memchr(buf, '\0', n) || !header_safe(buf, n)) {
        *why = apr_psprintf(p, "%s holds a byte that cannot go into an HTTP header (a control "
                            "character, a line break inside, or non-ASCII)", path);
        ajw_crypt_wipe(buf, n);
        return APR_EGENERAL;
    }
    *value = buf;
    *len = n;
    return APR_SUCCESS;
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
