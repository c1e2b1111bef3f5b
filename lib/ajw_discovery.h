/* ajw_discovery.h — OpenID Connect Discovery / RFC 8414 metadata in front of
 * a JWKS fetch, as a fetcher that wraps another one (ajw_fetch.h), so the key
 * store needs no change: a key source whose URL is
 *     discover:<issuer>
 * is fetched by reading the issuer's metadata, requiring its "issuer" to
 * equal <issuer> exactly (mix-up defence) and its "jwks_uri" to be https,
 * then fetching that jwks_uri (with the caller's If-None-Match, CA file,
 * timeout and size cap). The metadata is read again at every refresh, so a
 * moved jwks_uri is followed in the background like a key change.
 * Where the metadata is looked for, in order:
 *     <issuer>/.well-known/openid-configuration            (OIDC Discovery)
 *     https://host/.well-known/oauth-authorization-server[/path]  (RFC 8414 §3.1)
 * Any other URL is passed to the inner fetcher unchanged. */
#ifndef AJW_DISCOVERY_H
#define AJW_DISCOVERY_H

#include <apr_pools.h>
#include "ajw_fetch.h"

#define AJW_DISCOVER_PREFIX "discover:"

/* Is issuer usable for discovery (https, a host, no query, fragment or
 * credentials)? NULL when it is, else a short reason (static text). */
const char *ajw_discovery_check_issuer(const char *issuer, apr_pool_t *p);

/* The source URL that stands for issuer's discovered JWKS (pool string). */
const char *ajw_discovery_source_url(const char *issuer, apr_pool_t *p);

/* A fetcher in p that resolves discover: URLs as above and hands every
 * fetch to inner (which must be thread-safe; so is the result). */
ajw_fetcher_t *ajw_discovery_fetcher(ajw_fetcher_t *inner, apr_pool_t *p);

/* The jwks_uri most recently resolved for source_url (copied into p), or
 * NULL when none was yet. Thread-safe. */
const char *ajw_discovery_jwks_uri(ajw_fetcher_t *f, const char *source_url, apr_pool_t *p);

#endif
