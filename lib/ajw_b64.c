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
 * (every token's three parts are decoded before anything else is known). */
static unsigned char tables[2][256];
static int tables_ready;

static void fill_table(unsigned char *t, char c62, char c63)
{
    unsigned v;
    memset(t, B64_BAD, 256);
    for (v = 0; v < 26; v++) {
        t['A' + v] = (unsigned char)v;
        t['a' + v] = (unsigned char)(v + 26u);
    }
    for (v = 0; v < 10; v++)
        t['0' + v] = (unsigned char)(v + 52u);
    t[(unsigned char)c62] = 62;
    t[(unsigned char)c63] = 63;
}

/* The tables are constant once filled; filling them twice at once writes
 * the same bytes, so a racing first use is harmless. */
static const unsigned char *table_for(int url)
{
    if (!__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE)) {
        fill_table(tables[0], '+', '/');
        fill_table(tables[1], '-', '_');
        __atomic_store_n(&tables_ready, 1, __ATOMIC_RELEASE);
    }
    return tables[url ? 1 : 0];
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
