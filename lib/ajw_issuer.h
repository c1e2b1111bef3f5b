/* ajw_issuer.h — multi-tenant issuer templates: one configured issuer such as
 * "https://login.microsoftonline.com/{tenantid}/v2.0" that stands for every
 * tenant's issuer, the token's own "tid" claim choosing which. */
#ifndef AJW_ISSUER_H
#define AJW_ISSUER_H

#include <jansson.h>
#include "ajw_doc.h"
#include <apr_pools.h>

#define AJW_TENANT_PLACEHOLDER "{tenantid}"
#define AJW_TENANT_ID_LEN      36      /* 8-4-4-4-12 hex digits */

/* A parsed template: the text before and after the placeholder. */
typedef struct ajw_issuer_tpl_t {
    const char *prefix, *suffix;
    size_t prefix_len, suffix_len;
} ajw_issuer_tpl_t;

/* Parse a configured issuer. Without "{tenantid}" (any case) it is a
 * literal: APR_SUCCESS with *out = NULL. With it, *out is the template (pool
 * p) when the issuer is an absolute http(s) URL with no query or fragment
 * and exactly one placeholder, written in lower case, that is a whole path
 * segment ("https://h/{tenantid}/v2.0", "https://h/t/{tenantid}"); anything
 * else (two placeholders, one in the host, "x{tenantid}", "{TenantId}")
 * fails with *why, a pool string. */
apr_status_t ajw_issuer_template_parse(ajw_issuer_tpl_t **out, const char *iss, apr_pool_t *p,
                                       const char **why);

/* 1 when s (len bytes) is a tenant id: a GUID of lower-case hex digits,
 * 8-4-4-4-12 (so it holds no '/', '@', '.', '%' or space, and has one
 * spelling only). */
int ajw_tenant_id_ok(const char *s, size_t len);

/* The token's tenant: its "tid" claim when that is a string and a tenant id
 * (borrowed from claims), else NULL with *why (a static text) saying why. */
const char *ajw_tenant_of(const ajw_val_t *claims, const char **why);

/* 1 when iss (iss_len bytes) is exactly t's prefix, then tid, then its
 * suffix; else 0. tid must already satisfy ajw_tenant_id_ok. */
int ajw_issuer_template_match(const ajw_issuer_tpl_t *t, const char *iss, size_t iss_len,
                              const char *tid);

#endif
