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

/* Value of each byte in the url (tables[1]) or standard (tables[0])
 * alphabet, B64_BAD elsewhere: one load per character on the request path
 * (every token's three parts are decoded before anything else is known).
 * Built by the compiler, so they are constant data: request threads of a
 * fresh process read them with no first-use initialisation to race with. */
#define B64V(x, c62, c63) (unsigned char) \
    ((x) >= 'A' && (x) <= 'Z' ? (x) - 'A' : (x) >= 'a' && (x) <= 'z' ? (x) - 'a' + 26 \
     : (x) >= '0' && (x) <= '9' ? (x) - '0' + 52 : (x) == (c62) ? 62 : (x) == (c63) ? 63 \
     : B64_BAD)
#define B64V4(x, a, b) B64V((x), a, b), B64V((x) + 1, a, b), B64V((x) + 2, a, b), \
    B64V((x) + 3, a, b)
#define B64V16(x, a, b) B64V4((x), a, b), B64V4((x) + 4, a, b), B64V4((x) + 8, a, b), \
    B64V4((x) + 12, a, b)
#define B64V64(x, a, b) B64V16((x), a, b), B64V16((x) + 16, a, b), B64V16((x) + 32, a, b), \
    B64V16((x) + 48, a, b)
#define B64TABLE(a, b) { B64V64(0, a, b), B64V64(64, a, b), B64V64(128, a, b), \
    B64V64(192, a, b) }

static const unsigned char tables[2][256] = { B64TABLE('+', '/'), B64TABLE('-', '_') };

static const unsigned char *table_for(int url)
{
    return tables[url ? 1 : 0];
}

const unsigned char *ajw_b64_table(int url)
{
    return table_for(url);
}

/* Decode inlen alphabet characters (no padding). Rejects a length of 1 mod 4
 * and set unused bits in the last character. */
static apr_status_t b64_decode_core(unsigned char **out, size_t *outlen, const char *in,
                                    size_t inlen, int url, apr_pool_t *p)
{
    const unsigned char *t = table_for(url), *s = (const unsigned char *)in;
    size_t full = inlen / 4, rest = inlen % 4, i, o = 0;
    unsigned char *buf;
    unsigned v, a, b, c, d;

    if (rest == 1)
        return APR_EINVAL;
    if (inlen > ((size_t)-1 / 3) - 4)
        return APR_EINVAL;
    buf = apr_palloc(p, full * 3 + (rest ? rest - 1 : 0) + 1);
    if (!buf)
        return APR_ENOMEM;
    for (i = 0; i < full; i++, s += 4) {
        a = t[s[0]];
        b = t[s[1]];
        c = t[s[2]];
        d = t[s[3]];
        if ((a | b | c | d) & 0xC0u)          /* B64_BAD has the top bits set */
            return APR_EINVAL;
        v = (a << 18) | (b << 12) | (c << 6) | d;
        buf[o++] = (unsigned char)(v >> 16);
        buf[o++] = (unsigned char)(v >> 8);
        buf[o++] = (unsigned char)v;
    }
    if (rest) {
        a = t[s[0]];
        b = t[s[1]];
        c = rest == 3 ? t[s[2]] : 0;
        if ((a | b | c) & 0xC0u)
            return APR_EINVAL;
        /* Leftover bits (4 after two characters, 2 after three) must be
         * zero: otherwise "QR" and "QQ" would both decode to "A". */
        if (rest == 2 ? (b & 0x0Fu) : (c & 0x03u))
            return APR_EINVAL;
        v = (a << 18) | (b << 12) | (c << 6);
        buf[o++] = (unsigned char)(v >> 16);
        if (rest == 3)
            buf[o++] = (unsigned char)(v >> 8);
    }
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
