/* Differential fuzzing of the strict JSON parser against jansson's own
 * json_loadb with the same rules (ajw_json_parse_reference): both must
 * accept or both refuse, with the same reason, and what they accept must be
 * equal values (json_equal: same members, same strings byte for byte, same
 * integers, same reals). Then the same bytes under a small depth cap.
 * One difference is wanted: jansson reads a NUL byte right after a number
 * or literal as the end of that token and goes on ({"x":2\0} parses), which
 * is not JSON; ours refuses any NUL byte outside the grammar. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include "ajw_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
