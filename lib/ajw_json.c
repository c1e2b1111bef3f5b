/* ajw_json.c — the jansson wrapper: strict parsing (into jansson values or
 * a flat document), pool ownership, number texts. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "ajw_json.h"

static apr_status_t json_cleanup(void *data)
{
    json_decref((json_t *)data);
    return APR_SUCCESS;
}

json_t *ajw_json_pool_own(json_t *v, apr_pool_t *p)
{
    if (v)
        apr_pool_cleanup_register(p, v, json_cleanup, apr_pool_cleanup_null);
    return v;
}

json_t *ajw_json_pool_disown(json_t *v, apr_pool_t *p)
{
    if (v)
        apr_pool_cleanup_kill(p, v, json_cleanup);
    return v;
}

/* 1 when v nests at most `left` containers deep (v itself counts as one
 * when it is an object or array). jansson already caps its own recursion
 * (2048), so this walk is bounded too, and stops early at our cap. */
static int json_depth_ok(const json_t *v, size_t left)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        if (left == 0)
            return 0;
        json_object_foreach((json_t *)v, k, m) {
            if (!json_depth_ok(m, left - 1))
                return 0;
        }
    }
    else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        if (left == 0)
            return 0;
        json_array_foreach(v, i, m) {
            if (!json_depth_ok(m, left - 1))
                return 0;
        }
    }
    return 1;
}

/* --- the strict parser ------------------------------------------------
 *
 * Every token and JWKS goes through here, so it is the request path's
 * largest cost after the signature: jansson's lexer reads a character at a
 * time through a stream layer (~90 % of a json_loadb of a token payload, the
 * tree building ~10 %). This one reads the bytes in place and builds the
 * same jansson values, accepting exactly what json_loadb with
 * JSON_REJECT_DUPLICATES accepts at the top level (an object), which the
 * differential fuzz target (tests/fuzz/fuzz_json.c) holds it to:
 *   - RFC 8259 grammar; whitespace is space, tab, CR, LF; nothing after
 *     the value but whitespace;
 *   - strings: no byte below 0x20, valid UTF-8 only (no overlong forms, no
 *     encoded surrogates, nothing above U+10FFFF), escapes \" \\ \/ \b \f
 *     \n \r \t \uXXXX with surrogate pairs joined and lone halves refused,
 *     \u0000 refused;
 *   - numbers: integers must fit a json_int_t (long long); a number with a
 *     fraction or exponent is a real and must be finite;
 *   - duplicate member names refused at every level (after unescaping);
 *   - nesting capped at max_depth while parsing (the top object is 1). */
typedef struct jp_t {
    const unsigned char *s, *end;
    const unsigned char *start;
    size_t max_depth;
    const char *why;            /* the first failure, a fixed text */
    const unsigned char *at;    /* and where */
    char *scratch;              /* unescaped strings */
    size_t scratch_len;
    int fallback;               /* a case left to jansson (a locale's decimal point) */
    unsigned char *o;           /* ajw_json_parse_doc: where the document goes on */
} jp_t;

static json_t *jp_value(jp_t *jp, size_t depth);

static json_t *jp_fail(jp_t *jp, const char *why)
{
    if (!jp->why) {
        jp->why = why;
        jp->at = jp->s;
    }
    return NULL;
}

static void jp_ws(jp_t *jp)
{
    while (jp->s < jp->end && (*jp->s == ' ' || *jp->s == '\t' || *jp->s == '\n' ||
                               *jp->s == '\r'))
        jp->s++;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at p (bounds checked by the caller): the value, or -1. */
static long hex4(const unsigned char *p)
{
    int a = hexval(p[0]), b = hexval(p[1]), c = hexval(p[2]), d = hexval(p[3]);
    if ((a | b | c | d) < 0)
        return -1;
    return ((long)a << 12) | ((long)b << 8) | ((long)c << 4) | (long)d;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes available),
 * 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)          /* overlong */
            return 0;
        if (c == 0xED && p[1] >= 0xA0)         /* UTF-16 surrogate */
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)          /* overlong */
            return 0;
        if (c == 0xF4 && p[1] >= 0x90)         /* above U+10FFFF */
            return 0;
        return 4;
    }
    return 0;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string at jp->s (on its opening quote). Unescaped bytes go to
 * jp->scratch (a string never grows when unescaped); *out and *len point at
 * them, or straight into the input when there is no escape. 0 on failure. */
static int jp_string(jp_t *jp, const char **out, size_t *len)
{
    const unsigned char *p = jp->s + 1, *run;
    size_t o = 0;
    int escaped = 0;

    for (run = p; p < jp->end; ) {
        unsigned char c = *p;
        if (c == '"') {
            if (!escaped) {
                *out = (const char *)run;
                *len = (size_t)(p - run);
            }
            else {
                memcpy(jp->scratch + o, run, (size_t)(p - run));
                o += (size_t)(p - run);
                *out = jp->scratch;
                *len = o;
            }
            jp->s = p + 1;
            return 1;
        }
        if (c < 0x20) {
            jp->s = p;
            return jp_fail(jp, "control character in a string") != NULL;
        }
        if (c == '\\') {
            unsigned long cp;
            if (!escaped) {
                /* From here on the string is assembled in scratch. */
                escaped = 1;
                o = 0;
            }
            memcpy(jp->scratch + o, run, (size_t)(p - run));
            o += (size_t)(p - run);
            if (p + 1 >= jp->end)
                break;
            switch (p[1]) {
            case '"':  jp->scratch[o++] = '"';  p += 2; break;
            case '\\': jp->scratch[o++] = '\\'; p += 2; break;
            case '/':  jp->scratch[o++] = '/';  p += 2; break;
            case 'b':  jp->scratch[o++] = '\b'; p += 2; break;
            case 'f':  jp->scratch[o++] = '\f'; p += 2; break;
            case 'n':  jp->scratch[o++] = '\n'; p += 2; break;
            case 'r':  jp->scratch[o++] = '\r'; p += 2; break;
            case 't':  jp->scratch[o++] = '\t'; p += 2; break;
            case 'u': {
                long u, lo;
                if (jp->end - p < 6 || (u = hex4(p + 2)) < 0) {
                    jp->s = p;
                    return jp_fail(jp, "invalid \\u escape") != NULL;
                }
                p += 6;
                if (u >= 0xDC00 && u <= 0xDFFF) {
                    jp->s = p;
                    return jp_fail(jp, "lone low surrogate") != NULL;
                }
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (jp->end - p < 6 || p[0] != '\\' || p[1] != 'u'
                        || (lo = hex4(p + 2)) < 0xDC00 || lo > 0xDFFF) {
                        jp->s = p;
                        return jp_fail(jp, "lone high surrogate") != NULL;
                    }
                    p += 6;
                    cp = 0x10000 + (((unsigned long)u - 0xD800) << 10)
                         + ((unsigned long)lo - 0xDC00);
                }
                else
                    cp = (unsigned long)u;
                if (cp == 0) {
                    jp->s = p;
                    return jp_fail(jp, "\\u0000 in a string") != NULL;
                }
                o += put_utf8(jp->scratch + o, cp);
                break;
            }
            default:
                jp->s = p;
                return jp_fail(jp, "invalid escape") != NULL;
            }
            run = p;
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        {
            size_t n = utf8_len(p, (size_t)(jp->end - p));
            if (!n) {
                jp->s = p;
                return jp_fail(jp, "invalid UTF-8") != NULL;
            }
            p += n;
        }
    }
    jp->s = p;
    return jp_fail(jp, "unterminated string") != NULL;
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* A number at jp->s: *real says which of *iv (an integer) and *dv (a
 * real) it is; 1 on success (jp->s after it), 0 recorded. */
static int jp_num(jp_t *jp, int *real, long long *iv, double *dv)
{
    const unsigned char *p = jp->s, *b = p;
    int neg = 0;

    *real = 0;
    if (p < jp->end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= jp->end || !is_digit(*p))
        return jp_fail(jp, "invalid number") != NULL;
    if (*p == '0') {
        p++;
        if (p < jp->end && is_digit(*p))
            return jp_fail(jp, "leading zero") != NULL;
    }
    else
        while (p < jp->end && is_digit(*p))
            p++;
    if (p < jp->end && *p == '.') {
        *real = 1;
        p++;
        if (p >= jp->end || !is_digit(*p))
            return jp_fail(jp, "invalid number") != NULL;
        while (p < jp->end && is_digit(*p))
            p++;
    }
    if (p < jp->end && (*p == 'e' || *p == 'E')) {
        *real = 1;
        p++;
        if (p < jp->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= jp->end || !is_digit(*p))
            return jp_fail(jp, "invalid number") != NULL;
        while (p < jp->end && is_digit(*p))
            p++;
    }
    if (!*real) {
        /* Accumulate negatively: LLONG_MIN has no positive twin. */
        const unsigned char *d = b + neg;
        long long acc = 0;
        for (; d < p; d++) {
            int dig = *d - '0';
            if (acc < (LLONG_MIN + dig) / 10)
                return jp_fail(jp, "integer out of range") != NULL;
            acc = acc * 10 - dig;
        }
        if (!neg) {
            if (acc == LLONG_MIN)
                return jp_fail(jp, "integer out of range") != NULL;
            acc = -acc;
        }
        *iv = acc;
    }
    else {
        char buf[64], *endp;
        size_t n = (size_t)(p - b);
        if (n >= sizeof(buf)) {
            /* Long reals are rare in tokens and keys: jansson reads them. */
            jp->fallback = 1;
            return jp_fail(jp, "long real") != NULL;
        }
        memcpy(buf, b, n);
        buf[n] = '\0';
        errno = 0;
        *dv = strtod(buf, &endp);
        if (endp != buf + n) {
            jp->fallback = 1;                   /* a locale's decimal point */
            return jp_fail(jp, "real under another locale") != NULL;
        }
        if (errno == ERANGE && (*dv == HUGE_VAL || *dv == -HUGE_VAL))
            return jp_fail(jp, "real out of range") != NULL;
    }
    jp->s = p;
    return 1;
}

static json_t *jp_number(jp_t *jp)
{
    int real;
    long long iv = 0;
    double dv = 0.0;
    json_t *v;

    if (!jp_num(jp, &real, &iv, &dv))
        return NULL;
    v = real ? json_real(dv) : json_integer((json_int_t)iv);
    return v ? v : jp_fail(jp, "out of memory");
}

static json_t *jp_literal(jp_t *jp, const char *word, size_t n, json_t *v)
{
    if ((size_t)(jp->end - jp->s) < n || memcmp(jp->s, word, n) != 0)
        return jp_fail(jp, "invalid literal");
    jp->s += n;
    return v;
}

/* After '{' or '[' at jp->s: skip it and whitespace; 1 when the container
 * is closed at once (empty), 0 when members follow. */
static int jp_open(jp_t *jp, char close)
{
    jp->s++;
    jp_ws(jp);
    if (jp->s < jp->end && *jp->s == close) {
        jp->s++;
        return 1;
    }
    return 0;
}

/* After a member or element: 1 when a ',' says another follows, 0 when
 * `close` ends the container, -1 (recorded) otherwise. */
static int jp_next(jp_t *jp, char close)
{
    jp_ws(jp);
    if (jp->s < jp->end && *jp->s == ',') {
        jp->s++;
        jp_ws(jp);
        return 1;
    }
    if (jp->s < jp->end && *jp->s == close) {
        jp->s++;
        return 0;
    }
    jp_fail(jp, close == '}' ? "',' or '}' expected" : "',' or ']' expected");
    return -1;
}

static json_t *jp_object(jp_t *jp, size_t depth)
{
    json_t *obj, *v;
    const char *k;
    size_t klen;

    if (depth > jp->max_depth)
        return jp_fail(jp, "nesting too deep");
    if (!(obj = json_object()))
        return jp_fail(jp, "out of memory");
    if (jp_open(jp, '}'))
        return obj;
    for (;;) {
        char *key;
        if (jp->s >= jp->end || *jp->s != '"' || !jp_string(jp, &k, &klen)) {
            jp_fail(jp, "member name expected");
            goto fail;
        }
        /* The name must outlive the value's parse, which reuses scratch. */
        if (k == jp->scratch) {
            if (!(key = malloc(klen + 1))) {
                jp_fail(jp, "out of memory");
                goto fail;
            }
            memcpy(key, k, klen);
            key[klen] = '\0';
        }
        else
            key = NULL;
        jp_ws(jp);
        if (jp->s >= jp->end || *jp->s != ':') {
            free(key);
            jp_fail(jp, "':' expected");
            goto fail;
        }
        jp->s++;
        jp_ws(jp);
        v = jp_value(jp, depth);
        if (!v) {
            free(key);
            goto fail;
        }
        if (json_object_getn(obj, key ? key : k, klen)) {
            free(key);
            json_decref(v);
            jp_fail(jp, "duplicate member name");
            goto fail;
        }
        if (json_object_setn_new_nocheck(obj, key ? key : k, klen, v) != 0) {
            free(key);
            jp_fail(jp, "out of memory");
            goto fail;
        }
        free(key);
        switch (jp_next(jp, '}')) {
        case 1:
            continue;
        case 0:
            return obj;
        default:
            goto fail;
        }
    }
fail:
    json_decref(obj);
    return NULL;
}

static json_t *jp_array(jp_t *jp, size_t depth)
{
    json_t *arr, *v;

    if (depth > jp->max_depth)
        return jp_fail(jp, "nesting too deep");
    if (!(arr = json_array()))
        return jp_fail(jp, "out of memory");
    if (jp_open(jp, ']'))
        return arr;
    for (;;) {
        if (!(v = jp_value(jp, depth)))
            goto fail;
        if (json_array_append_new(arr, v) != 0) {
            jp_fail(jp, "out of memory");
            goto fail;
        }
        switch (jp_next(jp, ']')) {
        case 1:
            continue;
        case 0:
            return arr;
        default:
            goto fail;
        }
    }
fail:
    json_decref(arr);
    return NULL;
}

/* A value at jp->s (whitespace already skipped) inside a container at
 * depth `depth`: a nested container is depth + 1. */
static json_t *jp_value(jp_t *jp, size_t depth)
{
    const char *str;
    size_t len;
    json_t *v;

    if (jp->s >= jp->end)
        return jp_fail(jp, "value expected");
    switch (*jp->s) {
    case '{':
        return jp_object(jp, depth + 1);
    case '[':
        return jp_array(jp, depth + 1);
    case '"':
        if (!jp_string(jp, &str, &len))
            return NULL;
        v = json_stringn_nocheck(str, len);
        return v ? v : jp_fail(jp, "out of memory");
    case 't':
        return jp_literal(jp, "true", 4, json_true());
    case 'f':
        return jp_literal(jp, "false", 5, json_false());
    case 'n':
        return jp_literal(jp, "null", 4, json_null());
    default:
        if (*jp->s == '-' || is_digit(*jp->s))
            return jp_number(jp);
        return jp_fail(jp, "value expected");
    }
}

/* --- the same grammar written as a flat document (ajw_doc.h) ----------
 * Every check above applies unchanged (the lexers are shared); values go
 * straight into the document at jp->o, within AJW_DOC_BOUND of the input,
 * with no allocation per value. A duplicate name is looked for among the
 * members already written, a linear scan: an object with more than
 * DOC_MEMBERS_MAX members is left to the tree path (jp->fallback), whose
 * hash table keeps a hostile payload from costing quadratic time. */
#define DOC_MEMBERS_MAX 64

static int jd_value(jp_t *jp, size_t depth);

/* A container at jp->s opened at c (its header reserved): 1 when it is
 * empty (and closed), 0 (recorded) when too deep, -1 when values follow. */
static int jd_open(jp_t *jp, unsigned char *c, ajw_vtype_e type, char close, size_t depth)
{
    if (depth > jp->max_depth)
        return jp_fail(jp, "nesting too deep") != NULL;
    jp->o = ajw_docw_open(c, type);
    if (!jp_open(jp, close))
        return -1;
    ajw_docw_close(c, 0, jp->o);
    return 1;
}

static int jd_object(jp_t *jp, size_t depth)
{
    unsigned char *c = jp->o;
    size_t count = 0;
    const char *k;
    size_t klen;
    int empty = jd_open(jp, c, AJW_V_OBJECT, '}', depth);

    if (empty >= 0)
        return empty;
    for (;;) {
        unsigned char *member = jp->o;
        const char *name;
        if (jp->s >= jp->end || *jp->s != '"' || !jp_string(jp, &k, &klen))
            return jp_fail(jp, "member name expected") != NULL;
        if (++count > DOC_MEMBERS_MAX) {
            jp->fallback = 1;
            return jp_fail(jp, "many members") != NULL;
        }
        /* The name is copied out of scratch before the value reuses it. */
        jp->o = ajw_docw_name(member, k, klen);
        name = (const char *)member + 4;
        jp_ws(jp);
        if (jp->s >= jp->end || *jp->s != ':')
            return jp_fail(jp, "':' expected") != NULL;
        jp->s++;
        jp_ws(jp);
        if (!jd_value(jp, depth))
            return 0;
        if (ajw_docw_has(c, member, name, klen))
            return jp_fail(jp, "duplicate member name") != NULL;
        switch (jp_next(jp, '}')) {
        case 1:
            continue;
        case 0:
            ajw_docw_close(c, count, jp->o);
            return 1;
        default:
            return 0;
        }
    }
}

static int jd_array(jp_t *jp, size_t depth)
{
    unsigned char *c = jp->o;
    size_t count = 0;
    int empty = jd_open(jp, c, AJW_V_ARRAY, ']', depth);

    if (empty >= 0)
        return empty;
    for (;;) {
        if (!jd_value(jp, depth))
            return 0;
        count++;
        switch (jp_next(jp, ']')) {
        case 1:
            continue;
        case 0:
            ajw_docw_close(c, count, jp->o);
            return 1;
        default:
            return 0;
        }
    }
}

static int jd_literal(jp_t *jp, const char *word, size_t n, ajw_vtype_e type)
{
    if ((size_t)(jp->end - jp->s) < n || memcmp(jp->s, word, n) != 0)
        return jp_fail(jp, "invalid literal") != NULL;
    jp->s += n;
    jp->o = ajw_docw_literal(jp->o, type);
    return 1;
}

/* jp_value's twin: the value at jp->s written at jp->o. */
static int jd_value(jp_t *jp, size_t depth)
{
    const char *str;
    size_t len;
    int real;
    long long iv = 0;
    double dv = 0.0;

    if (jp->s >= jp->end)
        return jp_fail(jp, "value expected") != NULL;
    switch (*jp->s) {
    case '{':
        return jd_object(jp, depth + 1);
    case '[':
        return jd_array(jp, depth + 1);
    case '"':
        if (!jp_string(jp, &str, &len))
            return 0;
        jp->o = ajw_docw_string(jp->o, str, len);
        return 1;
    case 't':
        return jd_literal(jp, "true", 4, AJW_V_TRUE);
    case 'f':
        return jd_literal(jp, "false", 5, AJW_V_FALSE);
    case 'n':
        return jd_literal(jp, "null", 4, AJW_V_NULL);
    default:
        if (*jp->s != '-' && !is_digit(*jp->s))
            return jp_fail(jp, "value expected") != NULL;
        if (!jp_num(jp, &real, &iv, &dv))
            return 0;
        jp->o = real ? ajw_docw_real(jp->o, dv) : ajw_docw_int(jp->o, iv);
        return 1;
    }
}

/* 1-based line and column of position at in buf, for the error text. */
static void jp_where(const unsigned char *buf, const unsigned char *at, int *line, int *col)
{
    const unsigned char *p, *bol = buf;
    *line = 1;
    for (p = buf; p < at; p++)
        if (*p == '\n') {
            (*line)++;
            bol = p + 1;
        }
    *col = (int)(at - bol) + 1;
}

/* jansson's own parse with our rules: the reference the strict parser is
 * held to, and the path for what it leaves to jansson. */
static ajw_reason_e parse_with_jansson(json_t **out, const char *buf, size_t len,
                                       size_t max_depth, ajw_error_t *err)
{
    json_error_t jerr;
    json_t *v;

    /* Without JSON_DISABLE_EOF_CHECK jansson rejects anything but
     * whitespace after the value; JSON_DECODE_ANY is not set, so the top
     * level must be an object or array. jansson rejects "\u0000" in strings
     * unless JSON_ALLOW_NUL is given, which we never do. */
    v = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v)
        /* jerr.text names the problem (e.g. a duplicate key name) and may
         * quote a member name; it never quotes string values. Position only. */
        return ajw_error_set(err, AJW_R_MALFORMED, "JSON: invalid at line %d column %d",
                             jerr.line, jerr.column);
    if (!json_is_object(v)) {
        json_decref(v);
        return ajw_error_set(err, AJW_R_MALFORMED, "JSON: top level is not an object");
    }
    if (!json_depth_ok(v, max_depth)) {
        json_decref(v);
        return ajw_error_set(err, AJW_R_MALFORMED, "JSON: nesting deeper than %zu", max_depth);
    }
    *out = v;
    return AJW_OK;
}

/* The caps every parse starts with; AJW_OK when buf may be parsed. */
static ajw_reason_e parse_caps(const char **buf, size_t len, size_t *max_len, size_t *max_depth,
                               ajw_error_t *err)
{
    if (*max_len == 0)
        *max_len = AJW_MAX_JWKS_LEN_DEFAULT;
    if (*max_depth == 0)
        *max_depth = AJW_MAX_JSON_DEPTH;
    if (!*buf && len)
        return ajw_error_set(err, AJW_R_MALFORMED, "JSON: no input");
    if (len > *max_len)
        return ajw_error_set(err, AJW_R_TOO_LARGE, "JSON: %zu bytes over the cap of %zu",
                             len, *max_len);
    if (!*buf)
        *buf = "";
    return AJW_OK;
}

/* Run the strict parser over buf: into a tree (doc NULL; *tree gets it)
 * or, with doc (AJW_DOC_BOUND(len) bytes), into a document (*doc_end gets
 * its end). Returns 1 on success, 0 with jp->why / jp->fallback set. */
static int parse_run(jp_t *jp, const char *buf, size_t len, size_t max_depth, json_t **tree,
                     unsigned char *doc, unsigned char **doc_end)
{
    char small[512];
    json_t *v = NULL;
    int ok;

    memset(jp, 0, sizeof(*jp));
    jp->start = jp->s = (const unsigned char *)buf;
    jp->end = jp->s + len;
    jp->max_depth = max_depth;
    jp->o = doc;
    jp->scratch = len < sizeof(small) ? small : malloc(len + 1);
    if (!jp->scratch)
        return jp_fail(jp, "out of memory") != NULL;
    jp_ws(jp);
    if (jp->s >= jp->end || (*jp->s != '{' && *jp->s != '['))
        ok = jp_fail(jp, "'{' or '[' expected") != NULL;
    else if (doc)
        ok = jd_value(jp, 0);
    else
        ok = (v = jp_value(jp, 0)) != NULL;
    if (ok) {
        jp_ws(jp);
        if (jp->s != jp->end)
            ok = jp_fail(jp, "data after the value") != NULL;
    }
    if (jp->scratch != small)
        free(jp->scratch);
    jp->scratch = NULL;
    if (!ok && v)
        json_decref(v);
    if (ok && tree)
        *tree = v;
    if (ok && doc)
        *doc_end = jp->o;
    return ok;
}

/* The failure jp recorded, as ajw_json_parse_object reports it. */
static ajw_reason_e parse_failed(const jp_t *jp, size_t max_depth, ajw_error_t *err)
{
    int line, col;
    if (!strcmp(jp->why, "nesting too deep"))
        return ajw_error_set(err, AJW_R_MALFORMED, "JSON: nesting deeper than %zu", max_depth);
    if (!strcmp(jp->why, "out of memory"))
        return ajw_error_set(err, AJW_R_INTERNAL, "JSON: out of memory");
    jp_where(jp->start, jp->at, &line, &col);
    return ajw_error_set(err, AJW_R_MALFORMED, "JSON: invalid at line %d column %d (%s)",
                         line, col, jp->why);
}

static ajw_reason_e parse_checked(json_t **out, const char *buf, size_t len, size_t max_len,
                                  size_t max_depth, int reference, ajw_error_t *err)
{
    jp_t jp;
    json_t *v = NULL;
    ajw_reason_e rv;

    *out = NULL;
    if ((rv = parse_caps(&buf, len, &max_len, &max_depth, err)) != AJW_OK)
        return rv;
    if (reference)
        return parse_with_jansson(out, buf, len, max_depth, err);
    if (!parse_run(&jp, buf, len, max_depth, &v, NULL, NULL))
        return jp.fallback ? parse_with_jansson(out, buf, len, max_depth, err)
                           : parse_failed(&jp, max_depth, err);
    if (!json_is_object(v)) {
        json_decref(v);
        return ajw_error_set(err, AJW_R_MALFORMED, "JSON: top level is not an object");
    }
    *out = v;
    return AJW_OK;
}

ajw_reason_e ajw_json_parse_doc(const ajw_val_t **out, size_t *size, const char *buf,
                                size_t len, size_t max_len, size_t max_depth,
                                apr_pool_t *p, ajw_error_t *err)
{
    jp_t jp;
    json_t *v = NULL;
    unsigned char *doc, *end = NULL;
    ajw_reason_e rv;

    *out = NULL;
    *size = 0;
    if ((rv = parse_caps(&buf, len, &max_len, &max_depth, err)) != AJW_OK)
        return rv;
    if (len > ((size_t)1 << 27))              /* a document's lengths are 32-bit */
        return ajw_error_set(err, AJW_R_TOO_LARGE, "JSON: %zu bytes over the cap of %zu",
                             len, (size_t)1 << 27);
    doc = apr_palloc(p, AJW_DOC_BOUND(len));
    if (!parse_run(&jp, buf, len, max_depth, NULL, doc, &end)) {
        if (!jp.fallback)
            return parse_failed(&jp, max_depth, err);
        /* What the document writer leaves (a long real, many members):
         * the tree path, then its document. */
        if ((rv = parse_checked(&v, buf, len, max_len, max_depth, 0, err)) != AJW_OK)
            return rv;
        *out = ajw_doc_make(v, p, size);
        json_decref(v);
        return *out ? AJW_OK : ajw_error_set(err, AJW_R_MALFORMED, "JSON: no document");
    }
    if (!ajw_val_is_object((const ajw_val_t *)doc))
        return ajw_error_set(err, AJW_R_MALFORMED, "JSON: top level is not an object");
    *out = (const ajw_val_t *)doc;
    *size = (size_t)(end - doc);
    return AJW_OK;
}

ajw_reason_e ajw_json_parse_object(json_t **out, const char *buf, size_t len,
                                   size_t max_len, size_t max_depth,
                                   apr_pool_t *p, ajw_error_t *err)
{
    json_t *v = NULL;
    ajw_reason_e rv = parse_checked(&v, buf, len, max_len, max_depth, 0, err);
    if (rv == AJW_OK)
        *out = ajw_json_pool_own(v, p);
    return rv;
}

ajw_reason_e ajw_json_parse_reference(json_t **out, const char *buf, size_t len,
                                      size_t max_len, size_t max_depth,
                                      apr_pool_t *p, ajw_error_t *err)
{
    json_t *v = NULL;
    ajw_reason_e rv = parse_checked(&v, buf, len, max_len, max_depth, 1, err);
    if (rv == AJW_OK)
        *out = ajw_json_pool_own(v, p);
    return rv;
}

/* Shortest %g text that reads back as the same double, so 0.1 renders as
 * "0.1" rather than jansson's 17-digit "0.10000000000000001"; a whole
 * number keeps a ".0" so that it still reads as a real. */
static size_t real_text(double d, char *buf, size_t size)
{
    int prec, n = 0;

    for (prec = 1; prec <= 17; prec++) {
        n = snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (n > 0 && (size_t)n + 2 < size && !strpbrk(buf, ".eEn")) {
        memcpy(buf + n, ".0", 3);
        n += 2;
    }
    return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* As "%lld" would, without the formatter (claims like exp/iat are exported
 * on every request). */
static size_t int_text(json_int_t i, char *buf, size_t size)
{
    char tmp[24], *e = tmp + sizeof(tmp), *d = e;
    unsigned long long m = i < 0 ? 0ULL - (unsigned long long)i : (unsigned long long)i;
    size_t n;

    do {
        *--d = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (i < 0)
        *--d = '-';
    n = (size_t)(e - d);
    if (n >= size)
        return 0;
    memcpy(buf, d, n);
    buf[n] = '\0';
    return n;
}

size_t ajw_val_number_text(const ajw_val_t *v, char buf[AJW_NUMBER_TEXT_MAX])
{
    if (ajw_val_is_integer(v))
        return int_text(ajw_val_int(v), buf, AJW_NUMBER_TEXT_MAX);
    if (ajw_val_is_real(v))
        return real_text(ajw_val_real(v), buf, AJW_NUMBER_TEXT_MAX);
    buf[0] = '\0';
    return 0;
}

char *ajw_json_dump(const json_t *v, apr_pool_t *p)
{
    char *s, *copy;

    if (!v)
        return apr_pstrdup(p, "");
    s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        return apr_pstrdup(p, "");
    copy = apr_pstrdup(p, s);
    free(s);
    return copy;
}

const char *ajw_json_get_string(const json_t *obj, const char *name, size_t *len)
{
    json_t *m;

    if (!obj || !name || !json_is_object(obj))
        return NULL;
    m = json_object_get(obj, name);
    if (!json_is_string(m))
        return NULL;
    if (len)
        *len = json_string_length(m);
    return json_string_value(m);
}
