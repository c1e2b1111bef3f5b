/* Differential fuzzing of the strict JSON parser against jansson's own
 * json_loadb with the same rules (ajw_json_parse_reference): both must
 * accept or both refuse, with the same reason, and what they accept must be
 * equal values (json_equal: same members, same strings byte for byte, same
 * integers, same reals). Then the same bytes under a small depth cap.
 * One difference is wanted: jansson reads a NUL byte right after a number
 * or literal as the end of that token and goes on ({"x":2\0} parses), which
 * is not JSON; ours refuses any NUL byte outside the grammar.
 * Whatever ours accepts is also made into a flat document (ajw_doc.h), which
 * must agree with the tree value for value: types, numbers, string bytes
 * and lengths, member names and order, counts, sizes; and so must a copy of
 * it at an odd address (position independent, read without alignment).
 * Text that ajw_claim_json_is_verbatim calls its own rendering must be
 * exactly what ajw_claim_json renders of its document. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include "ajw_json.h"
#include "ajw_names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Trap unless document value v is the tree value j. */
static void same(const json_t *j, const ajw_val_t *v)
{
    const ajw_val_t *m;
    const char *name, *key;
    json_t *el;
    size_t i, n;
    double dj, dv;

    if (!j || !v || ajw_val_size(v) != ajw_doc_size(j))
        __builtin_trap();
    switch (json_typeof(j)) {
    case JSON_NULL:
        if (!ajw_val_is_null(v))
            __builtin_trap();
        break;
    case JSON_TRUE:
        if (!ajw_val_is_true(v) || !ajw_val_is_boolean(v))
            __builtin_trap();
        break;
    case JSON_FALSE:
        if (!ajw_val_is_false(v) || !ajw_val_is_boolean(v))
            __builtin_trap();
        break;
    case JSON_INTEGER:
        if (!ajw_val_is_integer(v) || ajw_val_is_real(v)
            || ajw_val_int(v) != (long long)json_integer_value(j) || ajw_val_real(v) != 0.0)
            __builtin_trap();
        break;
    case JSON_REAL:
        dj = json_real_value(j);
        dv = ajw_val_real(v);
        if (!ajw_val_is_real(v) || ajw_val_is_integer(v) || memcmp(&dj, &dv, sizeof(dj))
            || ajw_val_int(v) != 0)
            __builtin_trap();
        break;
    case JSON_STRING:
        n = json_string_length(j);
        if (!ajw_val_is_string(v) || ajw_val_strlen(v) != n || !ajw_val_str(v)
            || memcmp(ajw_val_str(v), json_string_value(j), n) || ajw_val_str(v)[n] != '\0')
            __builtin_trap();
        break;
    case JSON_ARRAY:
        if (!ajw_val_is_array(v) || ajw_val_count(v) != json_array_size(j) || ajw_val_str(v))
            __builtin_trap();
        name = "unset";
        m = ajw_val_first(v, &name);
        json_array_foreach(j, i, el) {
            if (!m || name)
                __builtin_trap();
            same(el, m);
            name = "unset";
            m = ajw_val_next(v, m, &name);
        }
        if (m)
            __builtin_trap();
        break;
    case JSON_OBJECT:
        if (!ajw_val_is_object(v) || ajw_val_count(v) != json_object_size(j) || ajw_val_str(v))
            __builtin_trap();
        m = ajw_val_first(v, &name);
        json_object_foreach((json_t *)j, key, el) {
            /* the same member, in the same place, and found by its name */
            if (!m || !name || strcmp(name, key) || ajw_val_get(v, key) != m
                || ajw_val_getn(v, key, strlen(key)) != m)
                __builtin_trap();
            same(el, m);
            m = ajw_val_next(v, m, &name);
        }
        if (m)
            __builtin_trap();
        break;
    default:
        __builtin_trap();
    }
    if (!json_is_array(j) && !json_is_object(j)
        && (ajw_val_count(v) || ajw_val_first(v, NULL)))
        __builtin_trap();
}

/* The document of tree a must agree with it, in place and as a copy. */
static void check_doc(const json_t *a, apr_pool_t *p)
{
    size_t n = ajw_doc_size(a);
    const ajw_val_t *d = ajw_doc_make(a, p, NULL), *c;
    unsigned char *buf;

    /* what the parser accepts holds no NUL in a string and is far below 2^31 */
    if (!n || !d || ajw_val_size(d) != n || !ajw_val_is_object(d))
        __builtin_trap();
    same(a, d);
    buf = apr_palloc(p, n + 1);
    if (ajw_doc_write(a, buf + 1, n - 1) || ajw_doc_write(a, buf + 1, n + 1))
        __builtin_trap();
    memcpy(buf + 1, d, n);
    c = (const ajw_val_t *)(buf + 1);
    if (memcmp(c, d, n) || ajw_val_size(c) != n)
        __builtin_trap();
    same(a, c);
    if (ajw_doc_write(a, buf + 1, n) != c || memcmp(c, d, n))
        __builtin_trap();
}

/* The parser writing a document must decide as the tree parser did (ra,
 * ea), with the same text, and write the very bytes of the tree's document. */
static void check_parse_doc(const uint8_t *data, size_t size, size_t depth, ajw_reason_e ra,
                            const json_t *a, const ajw_error_t *ea, apr_pool_t *p)
{
    const ajw_val_t *d = NULL, *want;
    size_t n = 0, wn = 0;
    ajw_error_t ed;
    ajw_reason_e rd;

    memset(&ed, 0, sizeof(ed));
    rd = ajw_json_parse_doc(&d, &n, (const char *)data, size, 1 << 20, depth, p, &ed);
    if (rd != ra)
        __builtin_trap();
    if (rd != AJW_OK) {
        if (d || n || strcmp(ed.text, ea->text))
            __builtin_trap();
        return;
    }
    want = ajw_doc_make(a, p, &wn);
    if (!d || !want || n != wn || ajw_val_size(d) != n || memcmp(d, want, n))
        __builtin_trap();
    /* text said to be its own rendering must be, byte for byte */
    if (ajw_claim_json_is_verbatim((const char *)data, size)) {
        const char *r = ajw_claim_json(d, p);
        if (strlen(r) != size || memcmp(r, data, size))
            __builtin_trap();
    }
}

static void one(const uint8_t *data, size_t size, size_t depth, apr_pool_t *p)
{
    json_t *a = NULL, *b = NULL;
    ajw_error_t ea, eb;
    ajw_reason_e ra, rb;
    memset(&ea, 0, sizeof(ea));
    memset(&eb, 0, sizeof(eb));
    ra = ajw_json_parse_object(&a, (const char *)data, size, 1 << 20, depth, p, &ea);
    rb = ajw_json_parse_reference(&b, (const char *)data, size, 1 << 20, depth, p, &eb);
    if (ra != rb && !(ra == AJW_R_MALFORMED && rb == AJW_OK && memchr(data, 0, size)))
        __builtin_trap();
    if (ra == AJW_OK && rb == AJW_OK && !json_equal(a, b))
        __builtin_trap();
    if (ra == AJW_OK)
        check_doc(a, p);
    check_parse_doc(data, size, depth, ra, a, &ea, p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static apr_pool_t *root;
    apr_pool_t *p;
    if (!root) {
        apr_initialize();
        atexit(apr_terminate);   /* free pools before LSan's exit check */
        apr_pool_create(&root, NULL);
    }
    apr_pool_create(&p, root);
    one(data, size, 0, p);
    one(data, size, 3, p);
    apr_pool_destroy(p);
    return 0;
}
