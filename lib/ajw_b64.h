/* ajw_b64.h — strict base64url (RFC 4648 §5 as used by RFC 7515 §2) and
 * standard base64 (for x5c certificates). */
#ifndef AJW_B64_H
#define AJW_B64_H

#include <apr_pools.h>
#include <apr_errno.h>

/* Decode base64url: alphabet A-Z a-z 0-9 - _ only; no padding, no
 * whitespace; a length of 1 mod 4 and non-zero unused trailing bits are
 * rejected (APR_EINVAL). On success *out is pool memory with a NUL after
 * the *outlen bytes (not counted). An empty input decodes to length 0. */
apr_status_t ajw_b64url_decode(unsigned char **out, size_t *outlen,
                               const char *in, size_t inlen, apr_pool_t *p);

/* Encode bytes as unpadded base64url; the result is a NUL-terminated pool string. */
char *ajw_b64url_encode(const unsigned char *in, size_t len, apr_pool_t *p);

/* Decode standard base64 (A-Z a-z 0-9 + /) with mandatory '=' padding to a
 * multiple of 4, no whitespace, canonical trailing bits (APR_EINVAL otherwise). */
apr_status_t ajw_b64std_decode(unsigned char **out, size_t *outlen,
                               const char *in, size_t inlen, apr_pool_t *p);

/* The decoding table of the url (url != 0) or standard alphabet: each byte's
 * value, 0xFF outside the alphabet. Constant data (read-only memory), safe
 * to read from any thread with no initialisation. */
const unsigned char *ajw_b64_table(int url);

#endif
