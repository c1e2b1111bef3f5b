/* ajw_require.h — `Require claim` and `Require scope` rules: compiled once
 * at config time, evaluated per request against verified claims. */
#ifndef AJW_REQUIRE_H
#define AJW_REQUIRE_H

#include <jansson.h>
#include "ajw_doc.h"
#include <apr_pools.h>

typedef struct ajw_require_t ajw_require_t;

/* The regular-expression dialect of `path~regex`, chosen by the caller so
 * that lib/ needs no httpd: the module passes httpd's ap_regex (PCRE, the
 * dialect of every other httpd directive); tests and tools may pass
 * ajw_regex_posix or a double. */
typedef struct ajw_regex_engine_t {
    const char *name;             /* for messages: "PCRE", "POSIX ERE" */
    /* Compile pattern into *out, valid as long as p (the engine registers
     * whatever cleanup it needs on p). Non-zero status and *why (pool string,
     * without the pattern) on failure. */
    apr_status_t (*compile)(void **out, const char *pattern, apr_pool_t *p, const char **why);
    /* 1 when text (len bytes, NUL-terminated, no NUL inside) matches re
     * anywhere, else 0. Called by many request threads at once on one
     * compiled re: must be reentrant. */
    int (*match)(const void *re, const char *text, size_t len);
} ajw_regex_engine_t;

/* POSIX extended regular expressions (regcomp/regexec, REG_EXTENDED). */
extern const ajw_regex_engine_t ajw_regex_posix;

/* Compile `Require claim` arguments. Each argv[i] is one alternative:
 *   "path:value"  exact; path may be dotted for nested objects
 *   "path~regex"  a regex of `re`'s dialect (compiled now, once), unanchored
 *                 unless written with ^ and $; with re NULL, refused
 *   "[name]:value", "[name]~regex", "[name].path:value"
 *                 name taken literally as one top-level claim (for namespaced
 *                 claims like "https://example.com/roles", which hold ':' and '.')
 * Otherwise the first ':' or '~' splits (path may not contain either; the
 * value may: "a:b:c" is path "a", value "b:c"). An empty path, an empty
 * path segment ("a..b", ".a", "a.", "[n]..a"), an unclosed '[' or an
 * invalid regex fails with *why set (pool string naming the argument).
 * Matching, per value found (an array matches when any element does;
 * objects and null never match):
 *   string         byte for byte (or by the regex)
 *   true / false   as the text "true" / "false"
 *   number         exact: by value, when the expected value is a JSON number
 *                  (level:3 matches 3 and 3.0; score:0.1 matches 0.1), never
 *                  otherwise; regex: on its export text (ajw_json_number_text). */
apr_status_t ajw_require_claim_compile(ajw_require_t **out, int argc, const char *const *argv,
                                       const ajw_regex_engine_t *re, apr_pool_t *p,
                                       const char **why);

/* Compile `Require scope s1 s2 ...`: any listed scope present in the
 * "scope" claim (space-delimited string) or the "scp" claim (array of strings,
 * or a space-delimited string). Scope tokens must be non-empty, no spaces. */
apr_status_t ajw_require_scope_compile(ajw_require_t **out, int argc, const char *const *argv,
                                       apr_pool_t *p, const char **why);

/* Compile `Require jwt-acr v1 v2 ...` (step-up, RFC 9470): granted when the
 * "acr" claim is a string equal, byte for byte, to any listed value (no
 * ranking, RFC 9470 §2). Each value must be a non-empty run of the
 * characters RFC 6749 allows in a scope token (%x21 / %x23-5B / %x5D-7E:
 * printable ASCII but space, '"' and '\'), so that the list can be sent
 * back as acr_values="v1 v2" unchanged; anything else fails with *why. */
apr_status_t ajw_require_acr_compile(ajw_require_t **out, int argc, const char *const *argv,
                                     apr_pool_t *p, const char **why);

/* 1 when any alternative of rq matches claims, else 0. Thread-safe (the
 * compiled rule is read-only; the engine's match is reentrant). */
int ajw_require_eval(const ajw_require_t *rq, const ajw_val_t *claims);

/* A note for the operator when a rule compiles but likely does not mean
 * what it says (an exact alternative with an empty value matches only ""),
 * else NULL. Pool string naming the alternative. */
const char *ajw_require_warning(const ajw_require_t *rq, apr_pool_t *p);

/* The rule as the operator wrote it, alternatives joined by " " (for logs,
 * the scope="..." parameter of an RFC 6750 challenge, and the acr_values
 * of an RFC 9470 one). */
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
const ajw_val_t *ajw_claim_ref_get(const ajw_claim_ref_t *ref, const ajw_val_t *claims);

#endif
