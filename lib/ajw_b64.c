/* ajw_b64.c — strict base64url / base64 codecs.
 *
 * A verifier must not accept two spellings of the same bytes: every byte
 * outside the alphabet, any padding where none belongs, and non-zero unused
 * trailing bits are errors rather than being skipped. */
#include <string.h>
#include <apr_strings.h>

#include "ajw_b64.h"

#define B64_BAD 0xFF

static const char url_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of c in the url (url=1) or standard alphabet, or B64_BAD. */
static unsigned b64_value(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (unsigned)(c - 'a') + 26u;
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0') + 52u;
    if (c == (url ? '-' : '+'))
        return 62u;
    if (c == (url ? '_' : '/'))
        return 63u;
    return B64_BAD;
}

/* Decode inlen alphabet characters (no padding). Rejects a length of 1 mod 4
 * and set unused bits in the last character. */
static apr_status_t b64_decode_core(unsigned char **out, size_t *outlen, const char *in,
                                    size_t inlen, int url, apr_pool_t *p)
{
    size_t full = inlen / 4, rest = inlen % 4, i, o = 0;
    unsigned char *buf;
    unsigned acc = 0, bits = 0;

    if (rest == 1)
        return APR_EINVAL;
    if (inlen > ((size_t)-1 / 3) - 4)
        return APR_EINVAL;
    buf = apr_palloc(p, full * 3 + (rest ? rest - 1 : 0) + 1);
    if (!buf)
        return APR_ENOMEM;
    for (i = 0; i < inlen; i++) {
        unsigned v = b64_value((unsigned char)in[i], url);
        if (v == B64_BAD)
            return APR_EINVAL;
        acc = ((acc << 6) | v) & 0xFFFFu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)((acc >> bits) & 0xFFu);
        }
    }
    /* Leftover bits (2 or 4) must be zero: otherwise "QR" and "QQ" would
     * both decode to "A". */
    if (bits && (acc & ((1u << bits) - 1u)) != 0)
        return APR_EINVAL;
    buf[o] = '\0';
    *out = buf;
    *outlen = o;
    return APR_SUCCESS;
}

apr_status_t ajw_b64url_decode(unsigned char **out, size_t *outlen,
                               const char *in, size_t inlen, apr_pool_t *p)
{
    if (!out || !outlen || (!in && inlen))
        return APR_EINVAL;
    return b64_decode_core(out, outlen, in ? in : "", inlen, 1, p);
}

apr_status_t ajw_b64std_decode(unsigned char **out, size_t *outlen,
                               const char *in, size_t inlen, apr_pool_t *p)
{
    size_t pad = 0, i;

    if (!out || !outlen || (!in && inlen))
        return APR_EINVAL;
    if (inlen % 4 != 0)
        return APR_EINVAL;
    if (inlen >= 1 && in[inlen - 1] == '=')
        pad++;
    if (inlen >= 2 && in[inlen - 2] == '=')
        pad++;
    if (pad == 2 && in[inlen - 1] != '=')
        return APR_EINVAL;
    /* '=' anywhere else is caught by the alphabet check below. */
    for (i = 0; i + pad < inlen; i++) {
        if (in[i] == '=')
            return APR_EINVAL;
    }
    return b64_decode_core(out, outlen, in ? in : "", inlen - pad, 0, p);
}

char *ajw_b64url_encode(const unsigned char *in, size_t len, apr_pool_t *p)
{
    size_t i, o = 0;
    char *s;

    if (len > ((size_t)-1 / 4) * 3 - 3)
        return NULL;
    s = apr_palloc(p, (len + 2) / 3 * 4 + 1);
    if (!s)
        return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        unsigned v = ((unsigned)in[i] << 16) | ((unsigned)in[i + 1] << 8) | in[i + 2];
        s[o++] = url_alpha[(v >> 18) & 63u];
        s[o++] = url_alpha[(v >> 12) & 63u];
        s[o++] = url_alpha[(v >> 6) & 63u];
        s[o++] = url_alpha[v & 63u];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        s[o++] = url_alpha[(v >> 18) & 63u];
        s[o++] = url_alpha[(v >> 12) & 63u];
    }
    else if (len - i == 2) {
        unsigned v = ((unsigned)in[i] << 16) | ((unsigned)in[i + 1] << 8);
        s[o++] = url_alpha[(v >> 18) & 63u];
        s[o++] = url_alpha[(v >> 12) & 63u];
        s[o++] = url_alpha[(v >> 6) & 63u];
    }
    s[o] = '\0';
    return s;
}
