/* ajw_names.c — see ajw_names.h. Byte tests are ASCII-only on purpose: a
 * locale must never widen what counts as a letter. */
#include <string.h>

#include <apr_strings.h>

#include "ajw_names.h"

static int ascii_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

char *ajw_env_name(apr_pool_t *p, const char *prefix, const char *claim)
{
    char *n = apr_pstrcat(p, prefix, claim, NULL), *s;
    for (s = n + strlen(prefix); *s; s++)
        *s = !ascii_alnum(*s) ? '_' : (*s >= 'a' && *s <= 'z') ? (char)(*s - 'a' + 'A') : *s;
    return n;
}

char *ajw_header_name(apr_pool_t *p, const char *prefix, const char *claim)
{
    char *n = apr_pstrcat(p, prefix, claim, NULL), *s;
    for (s = n + strlen(prefix); *s; s++)
        if (!ascii_alnum(*s) && *s != '-')
            *s = '-';
    return n;
}

char *ajw_header_value(apr_pool_t *p, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, 3 * strlen(v) + 1), *o = out;
    for (; *v; v++) {
        unsigned char ch = (unsigned char)*v;
        if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
            *o++ = (char)ch;
        }
        else {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        }
    }
    *o = '\0';
    return out;
}
