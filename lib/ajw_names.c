/* ajw_names.c — see ajw_names.h. Byte tests are ASCII-only on purpose: a
 * locale must never widen what counts as a letter. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <apr_strings.h>

#include "ajw_json.h"
#include "ajw_names.h"

/* ------------------------------------------------------------------ */
/* Names                                                                */

static int name_byte_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

int ajw_claim_name_exportable(const char *claim)
{
    size_t n = 0;
    for (; claim[n]; n++)
        if (!name_byte_ok(claim[n]) || n >= AJW_CLAIM_NAME_MAX)
            return 0;
    return n > 0;
}

/* prefix + claim mapped for a variable (a-z upper-cased) or a header ('_'
 * as '-'), checked and copied in one pass; NULL when not exportable. */
static char *mapped_name(apr_pool_t *p, const char *prefix, const char *claim, int header)
{
    size_t pl = strlen(prefix), n, i;
    char *out;
    for (n = 0; claim[n]; n++)
        if (!name_byte_ok(claim[n]) || n >= AJW_CLAIM_NAME_MAX)
            return NULL;
    if (n == 0)
        return NULL;
    out = apr_palloc(p, pl + n + 1);
    memcpy(out, prefix, pl);
    for (i = 0; i < n; i++) {
        char c = claim[i];
        if (header)
            c = c == '_' ? '-' : c;
        else if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        out[pl + i] = c;
    }
    out[pl + n] = '\0';
    return out;
}

char *ajw_env_name(apr_pool_t *p, const char *prefix, const char *claim)
{
    return mapped_name(p, prefix, claim, 0);
}

char *ajw_header_name(apr_pool_t *p, const char *prefix, const char *claim)
{
    return mapped_name(p, prefix, claim, 1);
}

/* Every name the module (or httpd, from r->user) sets from the token. */
static const char *const env_reserved[] = {
    "JWT_CLAIMS", "JWT_ALG", "JWT_KID", "REMOTE_USER", "AUTH_TYPE", NULL
};
static const char *const header_reserved[] = { "X-JWT-Claims", NULL };

int ajw_env_name_reserved(const char *name)
{
    int i;
    for (i = 0; env_reserved[i]; i++)
        if (!strcmp(name, env_reserved[i]))
            return 1;
    return 0;
}

int ajw_header_name_reserved(const char *name)
{
    int i;
    for (i = 0; header_reserved[i]; i++)
        if (!strcasecmp(name, header_reserved[i]))
            return 1;
    return 0;
}

/* Could an exportable claim spell rest, once mapped? Upper-case letters,
 * digits and '_' for variables; letters, digits and '-' for headers. */
static int rest_mappable(const char *rest, int header)
{
    if (!*rest)
        return 0;
    for (; *rest; rest++) {
        char c = *rest;
        int ok = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (header ? ((c >= 'a' && c <= 'z') || c == '-') : c == '_');
        if (!ok)
            return 0;
    }
    return 1;
}

static const char *prefix_shadows(const char *const *list, const char *prefix, int header)
{
    size_t n = strlen(prefix);
    int i;
    for (i = 0; list[i]; i++) {
        int starts = header ? !strncasecmp(list[i], prefix, n) : !strncmp(list[i], prefix, n);
        if (starts && strlen(list[i]) > n && rest_mappable(list[i] + n, header))
            return list[i];
    }
    return NULL;
}

const char *ajw_env_prefix_shadows(const char *prefix)
{
    return prefix_shadows(env_reserved, prefix, 0);
}

const char *ajw_header_prefix_shadows(const char *prefix)
{
    return prefix_shadows(header_reserved, prefix, 1);
}

/* ------------------------------------------------------------------ */
/* Characters                                                           */

#define BAD_UTF8 0xFFFFFFFFu

/* Decode one UTF-8 sequence at s (n > 0 bytes left) into *cp; returns its
 * length. An invalid or overlong sequence yields BAD_UTF8 and length 1. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len, i;
    uint32_t c = s[0], min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2; c &= 0x1F; min = 0x80;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3; c &= 0x0F; min = 0x800;
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        len = 4; c &= 0x07; min = 0x10000;
    }
    else {
        *cp = BAD_UTF8;
        return 1;
    }
    if (len > n) {
        *cp = BAD_UTF8;
        return 1;
    }
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = BAD_UTF8;
            return 1;
        }
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        *cp = BAD_UTF8;
        return 1;
    }
    *cp = c;
    return len;
}

static int is_control(uint32_t c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0x9F);
}

static int is_line_sep(uint32_t c)
{
    return c == 0x2028 || c == 0x2029;
}

static int is_bidi(uint32_t c)
{
    return c == 0x061C || c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) ||
           (c >= 0x2066 && c <= 0x2069);
}

/* Characters that end a line for some reader, or reorder what is shown. */
static int is_unsafe(uint32_t c)
{
    return c == BAD_UTF8 || is_control(c) || is_line_sep(c) || is_bidi(c);
}

/* Unicode White_Space, as Python's strip() and many trims see it. */
static int is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* ------------------------------------------------------------------ */
/* Rendering                                                            */

typedef struct {
    char *s;
    size_t len, cap;
    apr_pool_t *p;
} out_t;

/* Room for n more bytes and the final NUL: the buffer at least doubles, so
 * a rendering grows a few times, not once a piece. */
static void grow(out_t *o, size_t n)
{
    size_t cap = o->cap ? o->cap : 64;
    char *grown;
    while (cap < o->len + n + 1)
        cap *= 2;
    grown = apr_palloc(o->p, cap);
    if (o->len)
        memcpy(grown, o->s, o->len);
    o->s = grown;
    o->cap = cap;
}

/* The NUL is written once, by done(): a rendering is a hundred pieces. */
static inline void put(out_t *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap)
        grow(o, n);
    memcpy(o->s + o->len, s, n);
    o->len += n;
}

static inline void put1(out_t *o, char c)
{
    if (o->len + 2 > o->cap)
        grow(o, 1);
    o->s[o->len++] = c;
}

static char *done(out_t *o)
{
    if (!o->s)
        grow(o, 0);
    o->s[o->len] = '\0';
    return o->s;
}

static void put_json_string(out_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;

    put1(o, '"');
    while (i < n) {
        uint32_t c;
        size_t len;
        char esc[7];
        if (u[i] >= 0x20 && u[i] < 0x7f && u[i] != '"' && u[i] != '\\') {
            run++;                  /* printable ASCII, the common case: as is */
            i++;
            continue;
        }
        len = utf8_next(u + i, n - i, &c);
        const char *e = NULL;
        if (c == '"')
            e = "\\\"";
        else if (c == '\\')
            e = "\\\\";
        else if (c == '\n')
            e = "\\n";
        else if (c == '\r')
            e = "\\r";
        else if (c == '\t')
            e = "\\t";
        else if (c == '\b')
            e = "\\b";
        else if (c == '\f')
            e = "\\f";
        else if (is_unsafe(c)) {
            if (c == BAD_UTF8)
                c = 0xFFFD;
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = hex[(c >> 12) & 15];
            esc[3] = hex[(c >> 8) & 15];
            esc[4] = hex[(c >> 4) & 15];
            esc[5] = hex[c & 15];
            esc[6] = '\0';
            e = esc;
        }
        if (e) {
            put(o, s + i - run, run);
            put(o, e, strlen(e));
            run = 0;
        }
        else
            run += len;
        i += len;
    }
    put(o, s + i - run, run);
    put1(o, '"');
}

static void put_json(out_t *o, const ajw_val_t *v)
{
    char num[AJW_NUMBER_TEXT_MAX];
    const char *key;
    const ajw_val_t *el;
    size_t i, n;

    switch (ajw_val_type(v)) {
    case AJW_V_STRING:
        put_json_string(o, ajw_val_str(v), ajw_val_strlen(v));
        break;
    case AJW_V_INT:
    case AJW_V_REAL:
        n = ajw_val_number_text(v, num);
        put(o, num, n);
        break;
    case AJW_V_TRUE:
        put(o, "true", 4);
        break;
    case AJW_V_FALSE:
        put(o, "false", 5);
        break;
    case AJW_V_ARRAY:
        put1(o, '[');
        i = 0;
        ajw_val_foreach(v, el) {
            if (i++)
                put1(o, ',');
            put_json(o, el);
        }
        put1(o, ']');
        break;
    case AJW_V_OBJECT:
        put1(o, '{');
        i = 0;
        ajw_val_foreach_member(v, key, el) {
            if (i++)
                put1(o, ',');
            put_json_string(o, key, strlen(key));
            put1(o, ':');
            put_json(o, el);
        }
        put1(o, '}');
        break;
    case AJW_V_NULL:
    default:
        put(o, "null", 4);
        break;
    }
}

/* May string s (n bytes) stand for itself in a plain list? */
static int plain_string(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    uint32_t c = 0;

    if (n == 0 || s[0] == '"' || s[0] == '[' || s[0] == '{')
        return 0;
    while (i < n) {
        size_t len;
        if (u[i] > 0x20 && u[i] < 0x7f) {   /* printable ASCII but the space: no decoding */
            if (u[i] == ',' || u[i] == '"' || u[i] == '\\')
                return 0;
            c = u[i++];
            continue;
        }
        len = utf8_next(u + i, n - i, &c);
        if (c == ',' || c == '"' || c == '\\' || is_unsafe(c) || (i == 0 && is_space(c)))
            return 0;
        i += len;
    }
    return !is_space(c);       /* c is the last character */
}

static int plain_scalar(const ajw_val_t *v)
{
    if (ajw_val_is_string(v))
        return plain_string(ajw_val_str(v), ajw_val_strlen(v));
    return ajw_val_is_number(v) || ajw_val_is_boolean(v);
}

static void put_plain(out_t *o, const ajw_val_t *v)
{
    char num[AJW_NUMBER_TEXT_MAX];
    size_t n;
    if (ajw_val_is_string(v))
        put(o, ajw_val_str(v), ajw_val_strlen(v));
    else if (ajw_val_is_number(v)) {
        n = ajw_val_number_text(v, num);
        put(o, num, n);
    }
    else
        put(o, ajw_val_is_true(v) ? "true" : "false", ajw_val_is_true(v) ? 4 : 5);
}

static int plain_list(const ajw_val_t *v)
{
    const ajw_val_t *el;
    if (!ajw_val_is_array(v))
        return plain_scalar(v);
    if (ajw_val_count(v) == 0)
        return 0;
    ajw_val_foreach(v, el) {
        if (!plain_scalar(el))
            return 0;
    }
    return 1;
}

/* A plain list of more than one element, or anything not plain, is
 * rendered into o; a plain scalar is left to the caller (returns 0). */
static int claim_text_render(out_t *o, const ajw_val_t *v)
{
    const ajw_val_t *el;
    size_t i;
    if (!plain_list(v)) {
        put_json(o, v);
        return 1;
    }
    if (!ajw_val_is_array(v))
        return 0;
    i = 0;
    ajw_val_foreach(v, el) {
        if (i++)
            put1(o, ',');
        put_plain(o, el);
    }
    return 1;
}

char *ajw_claim_text(const ajw_val_t *v, apr_pool_t *p)
{
    out_t o = { NULL, 0, 0, p };
    if (!v || ajw_val_is_null(v))
        return NULL;
    if (!claim_text_render(&o, v))
        put_plain(&o, v);
    return done(&o);
}

const char *ajw_claim_text_ref(const ajw_val_t *v, apr_pool_t *p, size_t *len)
{
    out_t o = { NULL, 0, 0, p };
    if (!v || ajw_val_is_null(v))
        return NULL;
    if (!claim_text_render(&o, v)) {
        if (ajw_val_is_string(v)) {           /* itself, where it is */
            *len = ajw_val_strlen(v);
            return ajw_val_str(v);
        }
        put_plain(&o, v);
    }
    *len = o.len;
    return done(&o);
}

char *ajw_string_text(const char *s, size_t n, apr_pool_t *p)
{
    out_t o = { NULL, 0, 0, p };
    if (plain_string(s, n))
        return apr_pstrmemdup(p, s, n);
    put_json_string(&o, s, n);
    return done(&o);
}

char *ajw_claim_json(const ajw_val_t *v, apr_pool_t *p)
{
    /* The document's size is near the text's (a string is 4 bytes of
     * length for 2 quotes, a member 5 for 3): one buffer, seldom grown. */
    out_t o = { NULL, 0, 0, p };
    if (!v)
        return apr_pstrdup(p, "");
    grow(&o, ajw_val_size(v) + 32);
    put_json(&o, v);
    return done(&o);
}

/* Bytes a string may hold and still be written back as they are: printable
 * ASCII but '"' and '\\'. Built by the compiler: constant, no first use. */
#define VB(c) ((c) >= 0x20 && (c) <= 0x7e && (c) != '"' && (c) != '\\')
#define VB4(c) VB(c), VB((c) + 1), VB((c) + 2), VB((c) + 3)
#define VB16(c) VB4(c), VB4((c) + 4), VB4((c) + 8), VB4((c) + 12)
#define VB64(c) VB16(c), VB16((c) + 16), VB16((c) + 32), VB16((c) + 48)
static const unsigned char verbatim_byte[256] = { VB64(0), VB64(64), VB64(128), VB64(192) };

int ajw_claim_json_is_verbatim(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s, *end = u + n;
    unsigned char prev = 0;
    while (u < end) {
        unsigned char c = *u++;
        if (c == '"') {                       /* a string: printable ASCII, no escape */
            while (u < end && verbatim_byte[*u])
                u++;
            if (u == end || *u != '"')
                return 0;
            u++;
            prev = '"';
            continue;
        }
        /* Outside strings: no white space, no fraction or exponent (a real
         * is written back in its shortest form), no "-0" (written "0"). An
         * 'e' after a digit is an exponent; in true and false it follows a
         * letter. */
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '.' || c == 'E'
            || c == '+' || (c == 'e' && prev >= '0' && prev <= '9')
            || (c == '0' && prev == '-'))
            return 0;
        prev = c;
    }
    return 1;
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

/* ------------------------------------------------------------------ */
/* User names                                                           */

const char *ajw_user_text_problem(const char *s, size_t n, char why[AJW_USER_WHY_MAX])
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    uint32_t c = 0, first = 0;

    if (n == 0)
        return strcpy(why, "is empty");
    if (n > 1024)
        return strcpy(why, "is over 1024 bytes");
    while (i < n) {
        size_t len = utf8_next(u + i, n - i, &c);
        if (c == BAD_UTF8)
            return strcpy(why, "is not valid UTF-8");
        if (is_unsafe(c)) {
            snprintf(why, AJW_USER_WHY_MAX, "holds U+%04X, %s", (unsigned)c,
                     is_control(c) ? "a control character" : is_bidi(c) ? "a bidi control"
                                                          : "a line or paragraph separator");
            return why;
        }
        if (i == 0)
            first = c;
        i += len;
    }
    if (is_space(first) || is_space(c))
        return strcpy(why, "has leading or trailing whitespace");
    return NULL;
}

int ajw_user_names_issuer(const char *user, size_t n, const char *iss)
{
    size_t ilen = strlen(iss), i;
    if (!ilen)
        return 0;
    for (i = 0; i + ilen < n; i++)
        if (user[i] == '@' && !memcmp(user + i + 1, iss, ilen))
            return 1;
    return 0;
}

int ajw_user_names_url(const char *user, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (user[i] != '@')
            continue;
        if ((n - i - 1 >= 7 && !strncasecmp(user + i + 1, "http://", 7)) ||
            (n - i - 1 >= 8 && !strncasecmp(user + i + 1, "https://", 8)))
            return 1;
    }
    return 0;
}
