/* ajw_names.h — how a claim becomes a variable or header name, and how its
 * value is made safe for a header: the rules that decide what a token can
 * make an application see, kept apart from httpd so they are tested alone. */
#ifndef AJW_NAMES_H
#define AJW_NAMES_H

#include <apr_pools.h>

/* prefix + claim, the claim part uppercased and every byte but A-Z0-9 as
 * '_' (JWT_CLAIM_ + "email-verified" → JWT_CLAIM_EMAIL_VERIFIED). */
char *ajw_env_name(apr_pool_t *p, const char *prefix, const char *claim);

/* prefix + claim, every byte of the claim part but A-Za-z0-9- as '-'
 * (X-JWT-Claim- + "https://x/r" → X-JWT-Claim-https---x-r). */
char *ajw_header_name(apr_pool_t *p, const char *prefix, const char *claim);

/* A header value: printable ASCII kept, '%' and every other byte (controls,
 * DEL, non-ASCII) as %XX, so a claim can never split a header or smuggle
 * bytes to the backend. */
char *ajw_header_value(apr_pool_t *p, const char *v);

#endif
