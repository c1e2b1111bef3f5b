/* ajw_doc.c — flat, immutable JSON documents (see ajw_doc.h). */
#include <stdint.h>
#include <string.h>

#include "ajw_doc.h"

#define DOC_MAX ((size_t)1 << 31)
#define HDR 9                       /* tag, u32 count, u32 body length */

typedef const unsigned char *cur_t;

static uint32_t rd32(cur_t p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void wr32(unsigned char *p, size_t v)
{
    uint32_t u = (uint32_t)v;
    memcpy(p, &u, 4);
}

/* --- writing ------------------------------------------------------------ */

/* Bytes v takes; 0 when it cannot be written (a NUL inside a string, or
 * beyond DOC_MAX: every partial sum stays below 2^32 because each part is
 * checked against DOC_MAX before it is added). */
static size_t need(const json_t *v)
{
    size_t n = 0, part, i;
    const char *k;
    json_t *m;

    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_TRUE:
    case JSON_FALSE:
        return 1;
    case JSON_INTEGER:
    case JSON_REAL:
        return 9;
    case JSON_STRING:
        n = json_string_length(v);
        if (n >= DOC_MAX || memchr(json_string_value(v), '\0', n))
            return 0;
        return 1 + 4 + n + 1;
    case JSON_ARRAY:
        n = HDR;
        json_array_foreach(v, i, m) {
            if (!(part = need(m)) || (n += part) >= DOC_MAX)
                return 0;
        }
        return n;
    case JSON_OBJECT:
        n = HDR;
        json_object_foreach((json_t *)v, k, m) {
            size_t kl = strlen(k);
            if (kl >= DOC_MAX || !(part = need(m)) || (n += 4 + kl + 1 + part) >= DOC_MAX)
                return 0;
        }
        return n;
    default:
        return 0;
    }
}

/* Write v at o (need(v) bytes, checked by the caller); returns the end. */
static unsigned char *put(const json_t *v, unsigned char *o)
{
    unsigned char *body;
    size_t i;
    const char *k;
    json_t *m;

    switch (json_typeof(v)) {
    case JSON_NULL:
        return ajw_docw_literal(o, AJW_V_NULL);
    case JSON_TRUE:
        return ajw_docw_literal(o, AJW_V_TRUE);
    case JSON_FALSE:
        return ajw_docw_literal(o, AJW_V_FALSE);
    case JSON_INTEGER:
        return ajw_docw_int(o, (long long)json_integer_value(v));
    case JSON_REAL:
        return ajw_docw_real(o, json_real_value(v));
    case JSON_STRING:
        return ajw_docw_string(o, json_string_value(v), json_string_length(v));
    case JSON_ARRAY:
        body = ajw_docw_open(o, AJW_V_ARRAY);
        json_array_foreach(v, i, m)
            body = put(m, body);
        ajw_docw_close(o, json_array_size(v), body);
        return body;
    case JSON_OBJECT:
    default:
        body = ajw_docw_open(o, AJW_V_OBJECT);
        json_object_foreach((json_t *)v, k, m)
            body = put(m, ajw_docw_name(body, k, strlen(k)));
        ajw_docw_close(o, json_object_size(v), body);
        return body;
    }
}

size_t ajw_doc_size(const json_t *v)
{
    return v ? need(v) : 0;
}

const ajw_val_t *ajw_doc_write(const json_t *v, void *buf, size_t size)
{
    if (!buf || !size || ajw_doc_size(v) != size)
        return NULL;
    put(v, buf);
    return buf;
}

const ajw_val_t *ajw_doc_make(const json_t *v, apr_pool_t *p, size_t *size)
{
    size_t n = ajw_doc_size(v);
    void *buf;

    if (size)
        *size = n;
    if (!n)
        return NULL;
    buf = apr_palloc(p, n);
    put(v, buf);
    return buf;
}

/* --- writing in place ----------------------------------------------------- */

unsigned char *ajw_docw_literal(unsigned char *o, ajw_vtype_e type)
{
    *o = (unsigned char)type;
    return o + 1;
}

unsigned char *ajw_docw_int(unsigned char *o, long long v)
{
    *o = 'i';
    memcpy(o + 1, &v, 8);
    return o + 9;
}

unsigned char *ajw_docw_real(unsigned char *o, double v)
{
    *o = 'r';
    memcpy(o + 1, &v, 8);
    return o + 9;
}

unsigned char *ajw_docw_string(unsigned char *o, const char *s, size_t n)
{
    *o = 's';
    wr32(o + 1, n);
    memcpy(o + 5, s, n);
    o[5 + n] = '\0';
    return o + 6 + n;
}

unsigned char *ajw_docw_open(unsigned char *o, ajw_vtype_e type)
{
    *o = (unsigned char)type;
    wr32(o + 1, 0);
    wr32(o + 5, 0);
    return o + HDR;
}

unsigned char *ajw_docw_name(unsigned char *o, const char *name, size_t n)
{
    wr32(o, n);
    memcpy(o + 4, name, n);
    o[4 + n] = '\0';
    return o + 4 + n + 1;
}

void ajw_docw_close(unsigned char *c, size_t count, const unsigned char *end)
{
    wr32(c + 1, count);
    wr32(c + 5, (size_t)(end - (c + HDR)));
}

int ajw_docw_has(unsigned char *c, const unsigned char *end, const char *name, size_t n)
{
    wr32(c + 5, (size_t)(end - (c + HDR)));    /* the members so far */
    return ajw_val_getn((const ajw_val_t *)c, name, n) != NULL;
}

/* --- reading ------------------------------------------------------------ */

/* The bytes of the value at p (not NULL). */
static inline size_t vsize(cur_t p)
{
    switch (*p) {
    case 's':
        return 6 + (size_t)rd32(p + 1);
    case 'a':
    case 'o':
        return HDR + (size_t)rd32(p + 5);
    case 'i':
    case 'r':
        return 9;
    default:
        return 1;
    }
}

size_t ajw_val_size(const ajw_val_t *v)
{
    return v ? vsize((cur_t)v) : 0;
}

ajw_vtype_e ajw_val_type(const ajw_val_t *v)
{
    return v ? (ajw_vtype_e)*(cur_t)v : AJW_V_NONE;
}

size_t ajw_val_count(const ajw_val_t *v)
{
    cur_t p = (cur_t)v;
    return p && (*p == 'a' || *p == 'o') ? rd32(p + 1) : 0;
}

/* The value at q inside container c (a member's name first in an object),
 * or NULL when q is c's end. */
static const ajw_val_t *at(cur_t c, cur_t q, const char **name)
{
    if (q >= c + HDR + rd32(c + 5)) {
        if (name)
            *name = NULL;
        return NULL;
    }
    if (*c == 'a') {
        if (name)
            *name = NULL;
        return (const ajw_val_t *)q;
    }
    if (name)
        *name = (const char *)q + 4;
    return (const ajw_val_t *)(q + 4 + rd32(q) + 1);
}

const ajw_val_t *ajw_val_first(const ajw_val_t *c, const char **name)
{
    cur_t p = (cur_t)c;
    if (!p || (*p != 'a' && *p != 'o')) {
        if (name)
            *name = NULL;
        return NULL;
    }
    return at(p, p + HDR, name);
}

const ajw_val_t *ajw_val_next(const ajw_val_t *c, const ajw_val_t *v, const char **name)
{
    if (!c || !v)
        return NULL;
    return at((cur_t)c, (cur_t)v + vsize((cur_t)v), name);
}

const ajw_val_t *ajw_val_getn(const ajw_val_t *obj, const char *name, size_t n)
{
    cur_t p = (cur_t)obj, q, end;
    if (!p || *p != 'o' || !name)
        return NULL;
    end = p + HDR + rd32(p + 5);
    /* Most names differ in length or first byte: memcmp runs for the rest. */
    for (q = p + HDR; q < end; ) {
        size_t kl = rd32(q);
        cur_t val = q + 4 + kl + 1;
        if (kl == n && (n == 0 || (q[4] == (unsigned char)name[0]
                                   && memcmp(q + 5, name + 1, n - 1) == 0)))
            return (const ajw_val_t *)val;
        q = val + vsize(val);
    }
    return NULL;
}

const ajw_val_t *ajw_val_get(const ajw_val_t *obj, const char *name)
{
    return name ? ajw_val_getn(obj, name, strlen(name)) : NULL;
}

const char *ajw_val_str(const ajw_val_t *v)
{
    cur_t p = (cur_t)v;
    return p && *p == 's' ? (const char *)p + 5 : NULL;
}

size_t ajw_val_strlen(const ajw_val_t *v)
{
    cur_t p = (cur_t)v;
    return p && *p == 's' ? rd32(p + 1) : 0;
}

const char *ajw_val_get_string(const ajw_val_t *obj, const char *name, size_t *len)
{
    const ajw_val_t *m = ajw_val_get(obj, name);
    if (!ajw_val_is_string(m))
        return NULL;
    if (len)
        *len = ajw_val_strlen(m);
    return ajw_val_str(m);
}

long long ajw_val_int(const ajw_val_t *v)
{
    long long i = 0;
    cur_t p = (cur_t)v;
    if (p && *p == 'i')
        memcpy(&i, p + 1, 8);
    return i;
}

double ajw_val_real(const ajw_val_t *v)
{
    double d = 0.0;
    cur_t p = (cur_t)v;
    if (p && *p == 'r')
        memcpy(&d, p + 1, 8);
    return d;
}

const ajw_val_t *ajw_val_path(const ajw_val_t *obj, const char *path)
{
    const ajw_val_t *cur = obj;
    const char *seg = path;

    /* Only ever a walk through nested objects: a member literally named
     * "a.b" must neither satisfy nor shadow the path a.b, or whoever can add
     * a custom claim could pose as a nested role ([name] syntax reaches it).
     * getn compares whole names by length, so "rol" never finds "roles". */
    if (!path || !ajw_val_is_object(obj))
        return NULL;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t slen = dot ? (size_t)(dot - seg) : strlen(seg);
        if (!ajw_val_is_object(cur))
            return NULL;
        cur = ajw_val_getn(cur, seg, slen);
        if (!cur || !dot)
            return cur;
        seg = dot + 1;
    }
}
