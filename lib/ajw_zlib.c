/* ajw_zlib.c — ZLIB-format inflation with a hard output cap (ajw_zlib.h).
 *
 * The output grows in a malloc'ed buffer (doubling, never past cap + 1
 * bytes: one spare byte tells "more than cap" from "exactly cap") and is
 * copied into the pool at its real size, so a small list does not keep a
 * cap-sized block alive for as long as it is published. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <apr_strings.h>

#include "ajw_zlib.h"

#define FIRST_CHUNK 4096

/* Grow *buf (of *size bytes, *used of them written) towards limit: 0, or -1
 * when it is already at limit or memory runs out. */
static int grow(unsigned char **buf, size_t *size, size_t limit)
{
    size_t n = *size > limit / 2 ? limit : *size * 2;
    unsigned char *b;
    if (*size >= limit || !(b = realloc(*buf, n)))
        return -1;
    *buf = b;
    *size = n;
    return 0;
}

apr_status_t ajw_zlib_inflate(unsigned char **out, size_t *outlen, const unsigned char *in,
                              size_t inlen, size_t cap, const char **why, apr_pool_t *p)
{
    z_stream zs;
    unsigned char *buf = NULL;
    size_t size, limit;
    apr_status_t rv = APR_EINVAL;
    int zrc = Z_OK, inited = 0;

    *out = NULL;
    *outlen = 0;
    *why = "not a zlib stream";
    if (!in || inlen < 2 || inlen > UINT_MAX || cap > UINT_MAX - 1)
        goto cleanup;
    limit = cap + 1;
    size = limit < FIRST_CHUNK ? limit : FIRST_CHUNK;
    if (!(buf = malloc(size))) {
        *why = "out of memory";
        goto cleanup;
    }
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15) != Z_OK) {      /* 15: zlib wrapper only, no gzip, no raw */
        *why = "cannot initialise zlib";
        goto cleanup;
    }
    inited = 1;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)inlen;
    zs.next_out = buf;
    zs.avail_out = (uInt)size;
    while ((zrc = inflate(&zs, Z_NO_FLUSH)) == Z_OK || zrc == Z_BUF_ERROR) {
        if (zs.avail_out == 0) {
            if (grow(&buf, &size, limit) != 0) {
                if (size < limit) {
                    *why = "out of memory";
                    goto cleanup;
                }
                *why = apr_psprintf(p, "inflates to more than %lu bytes", (unsigned long)cap);
                rv = APR_ENOSPC;
                goto cleanup;
            }
            zs.next_out = buf + zs.total_out;
            zs.avail_out = (uInt)(size - zs.total_out);
        }
        else if (zs.avail_in == 0 || zrc == Z_BUF_ERROR) {
            *why = "the zlib stream ends early";
            goto cleanup;
        }
    }
    if (zrc == Z_NEED_DICT) {
        *why = "the zlib stream needs a preset dictionary";
        goto cleanup;
    }
    if (zrc != Z_STREAM_END) {
        *why = zrc == Z_DATA_ERROR ? "corrupt zlib data or checksum" : "zlib error";
        goto cleanup;
    }
    if (zs.total_out > cap) {
        *why = apr_psprintf(p, "inflates to more than %lu bytes", (unsigned long)cap);
        rv = APR_ENOSPC;
        goto cleanup;
    }
    if (zs.avail_in != 0) {
        *why = "bytes after the end of the zlib stream";
        goto cleanup;
    }
    *outlen = (size_t)zs.total_out;
    *out = apr_pmemdup(p, buf, *outlen ? *outlen : 1);
    *why = NULL;
    rv = APR_SUCCESS;
cleanup:
    if (inited)
        inflateEnd(&zs);
    free(buf);
    return rv;
}
