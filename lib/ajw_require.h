/* ajw_require.h — `Require claim` and `Require scope` rules: compiled once
 * at config time, evaluated per request against verified claims. */
#ifndef AJW_REQUIRE_H
#define AJW_REQUIRE_H

#include <jansson.h>
#include <apr_pools.h>

typedef struct ajw_require_t ajw_require_t;

/* Compile `Require claim` arguments. Each argv[i] is one alternative:
 *   "path:value"  exact, byte-for-byte; path may be dotted for nested objects
 *   "path~regex"  POSIX extended regex, unanchored unless written with ^$
 *   "[name]:value", "[name]~regex", "[name].path:value"
 *                 name taken literally as one top-level claim (for namespaced
 *                 claims like "https://example.com/roles", which hold ':' and '.')
 * Otherwise the first ':' or '~' splits (path may not contain either); an
 * empty path, an unclosed '[' or an invalid regex fails with *why set (pool
 * string naming the argument).
 * A string claim is compared as is; number/true/false by their JSON text;
 * an array matches when any element does; objects and null never match. */
apr_status_t ajw_require_claim_compile(ajw_require_t **out, int argc, const char *const *argv,
                                       apr_pool_t *p, const char **why);

/* Compile `Require scope s1 s2 ...`: any listed scope present in the
 * "scope" claim (space-delimited string) or the "scp" claim (array of strings,
 * or a space-delimited string). Scope tokens must be non-empty, no spaces. */
apr_status_t ajw_require_scope_compile(ajw_require_t **out, int argc, const char *const *argv,
                                       apr_pool_t *p, const char **why);

/* 1 when any alternative of rq matches claims, else 0. Thread-safe (the
 * compiled rule is read-only; regexec is reentrant). */
int ajw_require_eval(const ajw_require_t *rq, const json_t *claims);

/* The rule as the operator wrote it, alternatives joined by " " (for logs
 * and for the scope="..." parameter of an RFC 6750 challenge). */
const char *ajw_require_text(const ajw_require_t *rq);

/* A reference to one claim value, as AuthJWKSClaimHeader/Env name it:
 * "a.b.c" walks nested objects (never a member literally named "a.b"),
 * "[name]" is a top-level member taken literally (for namespaced claims
 * such as "https://example.com/email"), "[name].a.b" walks below it. */
typedef struct ajw_claim_ref_t ajw_claim_ref_t;

/* Compile text into *out (pool p). An empty text, an empty path segment
 * ("a..b", ".a", "a."), an unclosed or empty "[...]" or anything after
 * "]" but ".path" fails with *why set (pool string naming the text). */
apr_status_t ajw_claim_ref_compile(ajw_claim_ref_t **out, const char *text, apr_pool_t *p,
                                   const char **why);

/* The referenced value in claims (borrowed), or NULL when absent. */
const json_t *ajw_claim_ref_get(const ajw_claim_ref_t *ref, const json_t *claims);

#endif
