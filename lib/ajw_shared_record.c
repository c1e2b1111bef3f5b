/* ajw_shared_record.c — naming, encoding and strict decoding of shared
 * records (see ajw_shared_record.h). No state: every function works on its
 * arguments only. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <apr_strings.h>

#include "ajw_shared_record.h"
#include "ajw_json.h"
#include "ajw_crypt.h"
#include "ajw_types.h"

#define RECORD_SLACK   (64 * 1024)
#define MAC_TAG        "AJW2 "
#define MAC_TAG_LEN    (sizeof(MAC_TAG) - 1)
#define MAC_HEX_LEN    64
#define MAC_LINE_LEN   (MAC_TAG_LEN + MAC_HEX_LEN + 1)     /* with its "\n" */
#define RECORD_DEPTH   4

apr_status_t ajw_shared_record_id(unsigned char id[AJW_SHARED_ID_LEN], const char *url,
                                  const char *ca_file, apr_pool_t *p)
{
    const char *s = ca_file ? apr_pstrcat(p, url, "\n", ca_file, NULL) : url;
    return ajw_crypt_sha256(id, s, strlen(s)) == 0 ? APR_SUCCESS : APR_EGENERAL;
}

const char *ajw_shared_record_name(const char *url, const char *ca_file, const char *suffix,
                                   apr_pool_t *p)
{
    unsigned char id[AJW_SHARED_ID_LEN];
    char name[2 * AJW_SHARED_ID_LEN + 1];
    if (ajw_shared_record_id(id, url, ca_file, p) != APR_SUCCESS)
        return NULL;
    ajw_hex_encode(name, id, AJW_SHARED_ID_LEN);
    name[2 * AJW_SHARED_ID_LEN] = '\0';
    return apr_pstrcat(p, name, suffix, NULL);
}

size_t ajw_shared_record_cap(size_t max_len)
{
    if (max_len > (((size_t)-1) - RECORD_SLACK) / 2)
        return (size_t)-1;
    return 2 * max_len + RECORD_SLACK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

apr_status_t ajw_shared_record_encode(char **out, size_t *len,
                                      const unsigned char key[AJW_SHARED_KEY_LEN],
                                      const char *url, const char *ca_file,
                                      const ajw_shared_doc_t *doc, const char **why,
                                      apr_pool_t *p)
{
    apr_status_t rv = APR_EINVAL;
    json_t *o = NULL, *body = NULL;
    unsigned char mac[32];
    char *text = NULL, *rec;
    size_t tlen;

    *out = NULL;
    *len = 0;
    *why = NULL;
    if (!url || !doc->body || !doc->len || doc->fetched <= 0 || doc->max_age < -1
        || (doc->etag && strlen(doc->etag) > AJW_SHARED_ETAG_MAX)) {
        *why = "bad record";
        goto cleanup;
    }
    o = json_object();
    body = json_stringn(doc->body, doc->len);
    if (!o || !body) {
        *why = "the document cannot be stored (not UTF-8 text?)";
        goto cleanup;
    }
    if (json_object_set_new(o, "v", json_integer(AJW_SHARED_RECORD_VERSION))
        || json_object_set_new(o, "url", json_string(url))
        || (ca_file && json_object_set_new(o, "ca_file", json_string(ca_file)))
        || json_object_set_new(o, "fetched", json_integer((json_int_t)doc->fetched))
        || json_object_set_new(o, "max_age", json_integer((json_int_t)doc->max_age))
        || (doc->etag && json_object_set_new(o, "etag", json_string(doc->etag)))
        || json_object_set(o, "body", body)) {
        *why = "the record cannot be built (URL, CA file or ETag not UTF-8?)";
        goto cleanup;
    }
    text = json_dumps(o, JSON_COMPACT);
    if (!text) {
        *why = "the record cannot be serialised";
        goto cleanup;
    }
    tlen = strlen(text);
    if (ajw_crypt_hmac_sha256(mac, key, AJW_SHARED_KEY_LEN, text, tlen) != 0) {
        *why = "the record cannot be authenticated (HMAC failed)";
        goto cleanup;
    }
    rec = apr_palloc(p, MAC_LINE_LEN + tlen + 1);
    memcpy(rec, MAC_TAG, MAC_TAG_LEN);
    ajw_hex_encode(rec + MAC_TAG_LEN, mac, sizeof(mac));
    rec[MAC_LINE_LEN - 1] = '\n';
    memcpy(rec + MAC_LINE_LEN, text, tlen + 1);
    *len = MAC_LINE_LEN + tlen;
    *out = rec;
    rv = APR_SUCCESS;
cleanup:
    free(text);
    json_decref(body);
    json_decref(o);
    return rv;
}

static int same_opt_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Fill doc from a parsed record of url/ca_file, or say why not. */
static const char *record_to_doc(const json_t *o, const char *url, const char *ca_file,
                                 size_t max_len, ajw_shared_doc_t *doc, apr_pool_t *p)
{
    const json_t *v = json_object_get(o, "v");
    const json_t *fetched = json_object_get(o, "fetched");
    const json_t *max_age = json_object_get(o, "max_age");
    const json_t *etag = json_object_get(o, "etag");
    const json_t *body = json_object_get(o, "body");
    const char *rurl = ajw_json_get_string(o, "url", NULL);
    const json_t *rca = json_object_get(o, "ca_file");

    if (!json_is_integer(v) || json_integer_value(v) != AJW_SHARED_RECORD_VERSION)
        return "unknown record version";
    if (!rurl || strcmp(rurl, url) != 0)
        return "record of another URL";
    if ((rca && !json_is_string(rca)) || !same_opt_str(rca ? json_string_value(rca) : NULL, ca_file))
        return "record of another CA file";
    if (!json_is_integer(fetched) || json_integer_value(fetched) <= 0)
        return "bad fetch time";
    if (!json_is_integer(max_age) || json_integer_value(max_age) < -1)
        return "bad max_age";
    if (etag && (!json_is_string(etag) || json_string_length(etag) > AJW_SHARED_ETAG_MAX))
        return "bad etag";
    if (!json_is_string(body) || json_string_length(body) == 0)
        return "no document";
    if (json_string_length(body) > max_len)
        return "document too large";
    doc->len = json_string_length(body);
    doc->body = apr_pstrmemdup(p, json_string_value(body), doc->len);
    doc->etag = etag ? apr_pstrdup(p, json_string_value(etag)) : NULL;
    doc->fetched = (apr_time_t)json_integer_value(fetched);
    doc->max_age = (long long)json_integer_value(max_age);
    return NULL;
}

/* The MAC line of buf checked under key: NULL when it verifies, else why not.
 * Every byte after the line is covered; nothing of it is looked at here. */
static const char *check_mac(const char *buf, size_t len, const unsigned char *key)
{
    unsigned char want[32], got[32];
    int hi, lo, bad = 0;
    size_t i;

    if (len < MAC_LINE_LEN || memcmp(buf, MAC_TAG, MAC_TAG_LEN) != 0)
        return "record without a MAC (an earlier version's, or planted; refused until the "
               "next fetch rewrites it)";
    for (i = 0; i < sizeof(got); i++) {
        hi = hexval(buf[MAC_TAG_LEN + 2 * i]);
        lo = hexval(buf[MAC_TAG_LEN + 2 * i + 1]);
        bad |= hi < 0 || lo < 0;
        got[i] = (unsigned char)(((hi & 15) << 4) | (lo & 15));
    }
    if (bad || buf[MAC_LINE_LEN - 1] != '\n')
        return "record without a MAC (malformed MAC line)";
    if (ajw_crypt_hmac_sha256(want, key, AJW_SHARED_KEY_LEN, buf + MAC_LINE_LEN,
                              len - MAC_LINE_LEN) != 0)
        return "record MAC cannot be computed";
    if (!ajw_crypt_equal(want, got, sizeof(want)))
        return "record MAC does not verify (written with another key, or altered)";
    return NULL;
}

apr_status_t ajw_shared_record_decode(ajw_shared_doc_t *doc, const char *buf, size_t len,
                                      const unsigned char key[AJW_SHARED_KEY_LEN],
                                      const char *url, const char *ca_file, size_t max_len,
                                      const char **why, apr_pool_t *p)
{
    apr_status_t rv = APR_EGENERAL;
    size_t cap = ajw_shared_record_cap(max_len);
    json_t *o = NULL;
    ajw_error_t err;

    memset(doc, 0, sizeof(*doc));
    *why = NULL;
    if (!buf || len == 0 || len > cap) {
        *why = apr_psprintf(p, "bad size (%" APR_SIZE_T_FMT " bytes, at most %" APR_SIZE_T_FMT ")",
                            (apr_size_t)len, (apr_size_t)cap);
        goto cleanup;
    }
    if ((*why = check_mac(buf, len, key)) != NULL)
        goto cleanup;
    buf += MAC_LINE_LEN;
    len -= MAC_LINE_LEN;
    memset(&err, 0, sizeof(err));
    if (ajw_json_parse_object(&o, buf, len, cap, RECORD_DEPTH, p, &err) != AJW_OK) {
        *why = apr_psprintf(p, "malformed record: %s", err.text);
        goto cleanup;
    }
    *why = record_to_doc(o, url, ca_file, max_len, doc, p);
    if (*why) {
        memset(doc, 0, sizeof(*doc));
        goto cleanup;
    }
    rv = APR_SUCCESS;
cleanup:
    return rv;
}
