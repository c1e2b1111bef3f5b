/* ajw_json.c — the jansson wrapper: strict parsing, pool ownership,
 * dotted-path lookup and rendering of claim values. */
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

ajw_reason_e ajw_json_parse_object(json_t **out, const char *buf, size_t len,
                                   size_t max_len, size_t max_depth,
                                   apr_pool_t *p, ajw_error_t *err)
{
    json_error_t jerr;
    json_t *v = NULL;
    ajw_reason_e rv;

    if (max_len == 0)
        max_len = AJW_MAX_JWKS_LEN_DEFAULT;
    if (max_depth == 0)
        max_depth = AJW_MAX_JSON_DEPTH;
    if (!buf && len) {
        rv = ajw_error_set(err, AJW_R_MALFORMED, "JSON: no input");
        goto cleanup;
    }
    if (len > max_len) {
        rv = ajw_error_set(err, AJW_R_TOO_LARGE, "JSON: %zu bytes over the cap of %zu",
                           len, max_len);
        goto cleanup;
    }
    /* Without JSON_DISABLE_EOF_CHECK jansson rejects anything but
     * whitespace after the value; JSON_DECODE_ANY is not set, so the top
     * level must be an object or array. jansson rejects "\u0000" in strings
     * unless JSON_ALLOW_NUL is given, which we never do. */
    v = json_loadb(buf ? buf : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        /* jerr.text names the problem (e.g. a duplicate key name) and may
         * quote a member name; it never quotes string values. Position only. */
        rv = ajw_error_set(err, AJW_R_MALFORMED, "JSON: invalid at line %d column %d",
                           jerr.line, jerr.column);
        goto cleanup;
    }
    if (!json_is_object(v)) {
        rv = ajw_error_set(err, AJW_R_MALFORMED, "JSON: top level is not an object");
        goto cleanup;
    }
    if (!json_depth_ok(v, max_depth)) {
        rv = ajw_error_set(err, AJW_R_MALFORMED, "JSON: nesting deeper than %zu", max_depth);
        goto cleanup;
    }
    *out = ajw_json_pool_own(v, p);
    v = NULL;
    rv = AJW_OK;
cleanup:
    if (v)
        json_decref(v);
    return rv;
}

json_t *ajw_json_path(const json_t *obj, const char *path)
{
    const json_t *cur = obj;
    const char *seg = path;

    /* Only ever a walk through nested objects: a member literally named
     * "a.b" must neither satisfy nor shadow the path a.b, or whoever can add
     * a custom claim could pose as a nested role ([name] syntax reaches it). */
    if (!obj || !path || !json_is_object(obj))
        return NULL;
    for (;;) {
        const char *dot = strchr(seg, '.');
        size_t slen = dot ? (size_t)(dot - seg) : strlen(seg);
        if (!json_is_object(cur))
            return NULL;
        /* json_object_getn compares the full key with its exact length, so
         * "rol" never finds "roles". */
        cur = json_object_getn(cur, seg, slen);
        if (!cur || !dot)
            return (json_t *)cur;
        seg = dot + 1;
    }
}

/* Shortest %g text that reads back as the same double, so 0.1 renders as
 * "0.1" rather than jansson's 17-digit "0.10000000000000001". */
static char *render_real(double d, apr_pool_t *p)
{
    char buf[64];
    int prec;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!strpbrk(buf, ".eEn"))
        return apr_pstrcat(p, buf, ".0", NULL);
    return apr_pstrdup(p, buf);
}

/* libc formatting: apr_psprintf does not know every length modifier. */
static char *render_int(json_int_t i, apr_pool_t *p)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%lld", (long long)i);
    return apr_pstrdup(p, buf);
}

static char *render_array(const json_t *v, apr_pool_t *p)
{
    size_t i, n = json_array_size(v);
    char **parts;
    char *s;
    size_t total = 0, o = 0;

    if (n == 0)
        return apr_pstrdup(p, "");
    parts = apr_palloc(p, n * sizeof(*parts));
    for (i = 0; i < n; i++) {
        parts[i] = ajw_json_render(json_array_get(v, i), p);
        total += strlen(parts[i]) + 1;
    }
    s = apr_palloc(p, total);
    for (i = 0; i < n; i++) {
        size_t l = strlen(parts[i]);
        if (i)
            s[o++] = ',';
        memcpy(s + o, parts[i], l);
        o += l;
    }
    s[o] = '\0';
    return s;
}

char *ajw_json_render(const json_t *v, apr_pool_t *p)
{
    if (!v)
        return apr_pstrdup(p, "");
    switch (json_typeof(v)) {
    case JSON_STRING:
        return apr_pstrmemdup(p, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return render_int(json_integer_value(v), p);
    case JSON_REAL:
        return render_real(json_real_value(v), p);
    case JSON_TRUE:
        return apr_pstrdup(p, "true");
    case JSON_FALSE:
        return apr_pstrdup(p, "false");
    case JSON_NULL:
        return apr_pstrdup(p, "");
    case JSON_ARRAY:
        return render_array(v, p);
    case JSON_OBJECT:
    default:
        return ajw_json_dump(v, p);
    }
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
