/* tu_vectors.c — see tu_vectors.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tu_vectors.h"

const char *tu_vectors_dir(void)
{
    const char *d = getenv("AJW_VECTORS");
    return d && *d ? d : "../shared/vectors";
}

char *tu_vectors_path(const char *rel)
{
    const char *dir = tu_vectors_dir();
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", dir, rel);
    return s;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long sz;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto cleanup;
    buf = malloc((size_t)sz + 1);
    if (!buf)
        goto cleanup;
    if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        buf = NULL;
        goto cleanup;
    }
    buf[sz] = '\0';
    if (len)
        *len = (size_t)sz;
cleanup:
    fclose(f);
    return buf;
}

json_t *tu_load_json_file(const char *path)
{
    json_error_t jerr;
    json_t *v = json_load_file(path, 0, &jerr);
    if (!v)
        fprintf(stderr, "cannot load %s: %s (line %d)\n", path, jerr.text, jerr.line);
    return v;
}

json_t *tu_load_json_vector(const char *rel)
{
    char *path = tu_vectors_path(rel);
    json_t *v = path ? tu_load_json_file(path) : NULL;
    free(path);
    return v;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

unsigned char *tu_hex_decode(const char *hex, size_t *len)
{
    size_t n = strlen(hex), i;
    unsigned char *out;

    if (n % 2)
        return NULL;
    out = malloc(n / 2 + 1);
    if (!out)
        return NULL;
    for (i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (unsigned char)(hi * 16 + lo);
    }
    *len = n / 2;
    return out;
}

json_t *tu_json(const char *text, size_t flags)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY | flags, &jerr);
    if (!v) {
        fprintf(stderr, "bad test JSON %s: %s\n", text, jerr.text);
        abort();
    }
    return v;
}
