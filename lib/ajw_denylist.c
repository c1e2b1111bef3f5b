/* ajw_denylist.c — the AuthJWKSRevoked file (ajw_denylist.h). */
#include <string.h>
#include <apr_strings.h>

#include "ajw_denylist.h"

#define KEY_MAX (4 + AJW_DENYLIST_VALUE_MAX)

/* One line (n bytes, no newline) into d; NULL or why it is refused. */
static const char *take_line(ajw_denylist_t *d, const char *s, size_t n)
{
    const char *colon;
    size_t klen;
    while (n > 0 && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || s[0] == '#')
        return NULL;
    colon = memchr(s, ':', n);
    klen = colon ? (size_t)(colon - s) : 0;
    if (klen != 3 || (memcmp(s, "jti", 3) && memcmp(s, "sub", 3) && memcmp(s, "kid", 3)))
        return "not an entry (jti:<value>, sub:<value> or kid:<value>)";
    if (n - 4 == 0)
        return "an empty value";
    if (n - 4 > AJW_DENYLIST_VALUE_MAX)
        return "a value over 1024 bytes";
    if (memchr(s, '\0', n))
        return "a NUL byte";
    if (!apr_hash_get(d->entries, s, (apr_ssize_t)n)) {
        apr_hash_set(d->entries, apr_pstrmemdup(d->pool, s, n), (apr_ssize_t)n, "");
        d->count++;
    }
    return NULL;
}

apr_status_t ajw_denylist_parse(ajw_denylist_t **out, const char *buf, size_t len,
                                apr_pool_t *parent, const char **why, apr_pool_t *p)
{
    ajw_denylist_t *d = NULL;
    apr_pool_t *dp = NULL;
    const char *s = buf, *end = buf + len, *nl, *bad = NULL;
    unsigned long line = 0;
    apr_status_t rv = APR_EINVAL;

    *out = NULL;
    *why = NULL;
    if (len > AJW_DENYLIST_MAX_BYTES) {
        *why = "the file is over 8 MiB";
        goto cleanup;
    }
    rv = parent ? apr_pool_create(&dp, parent) : apr_pool_create_unmanaged_ex(&dp, NULL, NULL);
    if (rv != APR_SUCCESS) {
        dp = NULL;
        *why = "out of memory";
        goto cleanup;
    }
    d = apr_pcalloc(dp, sizeof(*d));
    d->pool = dp;
    d->entries = apr_hash_make(dp);
    while (s < end && !bad) {
        nl = memchr(s, '\n', (size_t)(end - s));
        line++;
        bad = take_line(d, s, (size_t)((nl ? nl : end) - s));
        s = nl ? nl + 1 : end;
    }
    if (bad) {
        *why = apr_psprintf(p, "line %lu: %s", line, bad);
        rv = APR_EINVAL;
        goto cleanup;
    }
    rv = APR_SUCCESS;
cleanup:
    if (rv == APR_SUCCESS)
        *out = d;
    else if (dp)
        apr_pool_destroy(dp);
    return rv;
}

int ajw_denylist_has(const ajw_denylist_t *d, const char *kind, const char *value, size_t len)
{
    char key[KEY_MAX];
    if (!d || !value || !kind || strlen(kind) != 3 || len == 0 || len > AJW_DENYLIST_VALUE_MAX)
        return 0;
    memcpy(key, kind, 3);
    key[3] = ':';
    memcpy(key + 4, value, len);
    return apr_hash_get(d->entries, key, (apr_ssize_t)(len + 4)) != NULL;
}

void ajw_denylist_free(ajw_denylist_t *d)
{
    if (d && d->pool)
        apr_pool_destroy(d->pool);
}
