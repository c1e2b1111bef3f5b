/* ajw_zlib.c — ZLIB-format inflation with a hard output cap (ajw_zlib.h). */
#include <limits.h>
#include <string.h>
#include <zlib.h>
#include <apr_strings.h>

#include "ajw_zlib.h"

apr_status_t ajw_zlib_inflate(unsigned char **out, size_t *outlen, const unsigned char *in,
                              size_t inlen, size_t cap, const char **why, apr_pool_t *p)
{
    z_stream zs;
    unsigned char *buf;
    apr_status_t rv = APR_EINVAL;
    int zrc, inited = 0;

    *out = NULL;
    *outlen = 0;
    *why = "not a zlib stream";
    if (!in || inlen < 2 || inlen > UINT_MAX || cap > UINT_MAX - 1)
        goto cleanup;
    /* One spare byte beyond the cap: a stream that fills it is too large. */
    buf = apr_palloc(p, cap + 1);
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15) != Z_OK) {      /* 15: zlib wrapper only, no gzip, no raw */
        *why = "cannot initialise zlib";
        goto cleanup;
    }
    inited = 1;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)inlen;
    zs.next_out = buf;
    zs.avail_out = (uInt)cap + 1;
    zrc = inflate(&zs, Z_FINISH);
    if (zrc == Z_STREAM_END && zs.total_out > cap)
        zrc = Z_BUF_ERROR;
    if (zrc == Z_NEED_DICT) {
        *why = "the zlib stream needs a preset dictionary";
        goto cleanup;
    }
    if ((zrc == Z_BUF_ERROR || zrc == Z_OK) && zs.avail_out == 0) {
        *why = apr_psprintf(p, "inflates to more than %lu bytes", (unsigned long)cap);
        rv = APR_ENOSPC;
        goto cleanup;
    }
    if (zrc == Z_BUF_ERROR || zrc == Z_OK) {
        *why = "the zlib stream ends early";
        goto cleanup;
    }
    if (zrc != Z_STREAM_END) {
        *why = zrc == Z_DATA_ERROR ? "corrupt zlib data or checksum" : "zlib error";
        goto cleanup;
    }
    if (zs.avail_in != 0) {
        *why = "bytes after the end of the zlib stream";
        goto cleanup;
    }
    *out = buf;
    *outlen = (size_t)zs.total_out;
    *why = NULL;
    rv = APR_SUCCESS;
cleanup:
    if (inited)
        inflateEnd(&zs);
    return rv;
}
