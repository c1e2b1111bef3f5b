/* ajw_issuer.c — multi-tenant issuer templates. The token's tid is
 * unverified until the signature is checked; what makes it safe is that the
 * template only ever expands to one exact issuer per token, and the tid must
 * be a GUID, so it cannot reach into another path segment or host. */
#include <string.h>
#include <strings.h>

#include <apr_strings.h>

#include "ajw_issuer.h"

#define PH     AJW_TENANT_PLACEHOLDER
#define PH_LEN (sizeof(PH) - 1)

/* The first case-insensitive occurrence of the placeholder in s, or NULL. */
static const char *find_placeholder(const char *s)
{
    for (; *s; s++)
        if (!strncasecmp(s, PH, PH_LEN))
            return s;
    return NULL;
}

/* Where the path of an absolute http(s) URL starts ('/' after the host),
 * or NULL when s is not one. */
static const char *path_start(const char *s)
{
    const char *host;
    if (!strncasecmp(s, "https://", 8))
        host = s + 8;
    else if (!strncasecmp(s, "http://", 7))
        host = s + 7;
    else
        return NULL;
    if (*host == '/' || *host == '\0')
        return NULL;
    return strchr(host, '/');
}

apr_status_t ajw_issuer_template_parse(ajw_issuer_tpl_t **out, const char *iss, apr_pool_t *p,
                                       const char **why)
{
    const char *at = find_placeholder(iss), *path, *after;
    ajw_issuer_tpl_t *t;
    *out = NULL;
    if (!at)
        return APR_SUCCESS;
    after = at + PH_LEN;
    if (strncmp(at, PH, PH_LEN)) {
        *why = apr_psprintf(p, "'%s': write the tenant placeholder as " PH " (lower case)", iss);
        return APR_EINVAL;
    }
    if (find_placeholder(after)) {
        *why = apr_psprintf(p, "'%s': an issuer template holds one " PH " only", iss);
        return APR_EINVAL;
    }
    if (strpbrk(iss, "?#")) {
        *why = apr_psprintf(p, "'%s': an issuer template has no query or fragment", iss);
        return APR_EINVAL;
    }
    path = path_start(iss);
    if (!path || at <= path || at[-1] != '/' || (*after != '/' && *after != '\0')) {
        *why = apr_psprintf(p, "'%s': " PH " must be a whole path segment of an http(s) "
                            "issuer URL (https://host/" PH "/...)", iss);
        return APR_EINVAL;
    }
    t = apr_pcalloc(p, sizeof(*t));
    t->prefix = apr_pstrmemdup(p, iss, (size_t)(at - iss));
    t->prefix_len = (size_t)(at - iss);
    t->suffix = apr_pstrdup(p, after);
    t->suffix_len = strlen(after);
    *out = t;
    return APR_SUCCESS;
}

static int lower_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

int ajw_tenant_id_ok(const char *s, size_t len)
{
    size_t i;
    if (!s || len != AJW_TENANT_ID_LEN)
        return 0;
    for (i = 0; i < len; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !lower_hex(s[i]))
            return 0;
    }
    return 1;
}

const char *ajw_tenant_of(const ajw_val_t *claims, const char **why)
{
    const ajw_val_t *tid = ajw_val_is_object(claims) ? ajw_val_get(claims, "tid") : NULL;
    if (!tid) {
        *why = "tid claim absent";
        return NULL;
    }
    if (!ajw_val_is_string(tid) || !ajw_tenant_id_ok(ajw_val_str(tid),
                                                  ajw_val_strlen(tid))) {
        *why = "tid claim is not a tenant id (a GUID in lower-case hex)";
        return NULL;
    }
    *why = NULL;
    return ajw_val_str(tid);
}

int ajw_issuer_template_match(const ajw_issuer_tpl_t *t, const char *iss, size_t iss_len,
                              const char *tid)
{
    size_t tlen = tid ? strlen(tid) : 0;
    if (!t || !iss || !tid || iss_len != t->prefix_len + tlen + t->suffix_len)
        return 0;
    return !memcmp(iss, t->prefix, t->prefix_len)
           && !memcmp(iss + t->prefix_len, tid, tlen)
           && !memcmp(iss + t->prefix_len + tlen, t->suffix, t->suffix_len);
}
