/* ajw_zlib.h — the only wrapper around zlib: inflate a ZLIB-format (RFC
 * 1950) DEFLATE stream into a buffer whose size is capped before a byte is
 * produced, so a decompression bomb costs at most the cap. */
#ifndef AJW_ZLIB_H
#define AJW_ZLIB_H

#include <stddef.h>
#include <apr_pools.h>
#include <apr_errno.h>

/* Inflate the inlen bytes at in (zlib header, DEFLATE data, Adler-32
 * trailer) into *out (pool memory, *outlen bytes). At most cap bytes are
 * ever written: a stream that would inflate to more is refused
 * (APR_ENOSPC, *why "inflates to more than N bytes") without inflating the
 * rest. Other refusals (APR_EINVAL, *why a short reason): not a zlib
 * stream, a preset dictionary, corrupt data, a checksum mismatch, the
 * stream ending early, or bytes after its end. *why is static text or from p. */
apr_status_t ajw_zlib_inflate(unsigned char **out, size_t *outlen, const unsigned char *in,
                              size_t inlen, size_t cap, const char **why, apr_pool_t *p);

#endif
