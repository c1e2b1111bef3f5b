/* ajw_names.h — what a token can make an application see: which claims
 * become variables and headers and under which names, the one text a claim
 * value is rendered as, the names the module keeps for itself, and which
 * user names are fit for REMOTE_USER. Kept apart from httpd so the rules are
 * tested alone; docs/claims.md describes them for application developers. */
#ifndef AJW_NAMES_H
#define AJW_NAMES_H

#include <jansson.h>
#include "ajw_doc.h"
#include <apr_pools.h>

/* Longest claim name exported under a prefix. */
#define AJW_CLAIM_NAME_MAX 128

/* 1 when a top-level claim is exported under the prefixes: its name is 1 to
 * AJW_CLAIM_NAME_MAX bytes of a-z, 0-9 and '_' (every registered JWT and
 * OIDC claim is). Only for those does a variable or header name lead back
 * to exactly one claim; any other name (upper case, '-', '.', ':', '/',
 * non-ASCII) would share its variable with a look-alike. */
int ajw_claim_name_exportable(const char *claim);

/* prefix + claim in upper case (JWT_CLAIM_ + "email_verified" →
 * JWT_CLAIM_EMAIL_VERIFIED), or NULL when the claim is not exportable. */
char *ajw_env_name(apr_pool_t *p, const char *prefix, const char *claim);

/* prefix + claim with '_' as '-' (X-JWT-Claim- + "email_verified" →
 * X-JWT-Claim-email-verified), or NULL when the claim is not exportable. */
char *ajw_header_name(apr_pool_t *p, const char *prefix, const char *claim);

/* 1 when name is a variable the module or httpd sets from the verified
 * token itself (JWT_CLAIMS, JWT_ALG, JWT_KID, REMOTE_USER, AUTH_TYPE):
 * compared exactly, as the environment is. */
int ajw_env_name_reserved(const char *name);

/* 1 when name is a header the module sets itself (X-JWT-Claims), compared
 * case-insensitively as header names are. */
int ajw_header_name_reserved(const char *name);

/* The reserved variable (header) an exportable claim would take under
 * prefix, or NULL when none can: "JWT_" → "JWT_CLAIMS" (a claim "claims"),
 * "X-JWT-" → "X-JWT-Claims". For refusing such a prefix at config time. */
const char *ajw_env_prefix_shadows(const char *prefix);
const char *ajw_header_prefix_shadows(const char *prefix);

/* The text of a claim value in a variable or header (before the header's
 * percent-encoding); NULL for JSON null, which is exported as if absent.
 *  - A plain list: a string, number or boolean, or a non-empty array of
 *    them, each element plain, joined by ",". A string is plain when it is
 *    non-empty, holds no ',', '"', '\\' and no character ajw_user_text_problem
 *    would name, has no leading or trailing whitespace, and does not start
 *    with '[' or '{'. Numbers as ajw_json_number_text, booleans true/false.
 *  - Otherwise compact JSON of the whole value, which then starts with '"',
 *    '[' or '{': "user,admin" → "\"user,admin\"", [] → "[]", "" → "\"\"",
 *    ["a",["b"]] → "[\"a\",[\"b\"]]". Inside its strings, '"', '\\', every
 *    C0 control, DEL, C1 control, U+2028, U+2029 and bidi control is
 *    escaped (\n, \u0085, \u202e, ...); other UTF-8 is kept as is.
 * So the text never holds a control character, and splitting a text that
 * does not start with '"', '[' or '{' at ',' yields exactly the elements. */
char *ajw_claim_text(const ajw_val_t *v, apr_pool_t *p);

/* ajw_claim_text, for a caller that copies the text before v's document
 * goes: a string claim that is plain comes back as v's own bytes (no copy),
 * anything else is rendered into p. *len is the text's length; NULL (and
 * *len untouched) for NULL, null or absent. */
const char *ajw_claim_text_ref(const ajw_val_t *v, apr_pool_t *p, size_t *len);

/* The text of a string (n bytes of UTF-8) as ajw_claim_text renders a
 * string claim: itself when plain, else a JSON string ("a,b" → "\"a,b\"").
 * For values the module sets from the token that are not claims (JWT_KID). */
char *ajw_string_text(const char *s, size_t n, apr_pool_t *p);

/* Compact JSON of any value with the escaping described above (JWT_CLAIMS,
 * X-JWT-Claims); "" when v is NULL. Object members in their stored order. */
char *ajw_claim_json(const ajw_val_t *v, apr_pool_t *p);

/* Is s (n bytes that ajw_json_parse_doc accepted) already, byte for byte,
 * what ajw_claim_json renders of the value parsed from it? 1 when it holds
 * no white space outside strings, no real number, no "-0", and its strings
 * only printable ASCII without escapes (the compact JSON most issuers
 * write): the caller may then use s itself. 0 says nothing either way. */
int ajw_claim_json_is_verbatim(const char *s, size_t n);

/* A header value: printable ASCII kept, '%' and every other byte (controls,
 * DEL, non-ASCII) as %XX, so a claim can never split a header or smuggle
 * bytes to the backend. */
char *ajw_header_value(apr_pool_t *p, const char *v);

/* Room for the reason below, its NUL included. */
#define AJW_USER_WHY_MAX 64

/* Is s (n bytes of UTF-8) fit to be REMOTE_USER? NULL when it is; else why
 * (written into why): empty or over 1024 bytes, invalid UTF-8, a C0 or C1
 * control or DEL ("holds U+0085, a control character"), U+2028 / U+2029,
 * a bidi control (U+061C, U+200E/F, U+202A-202E, U+2066-2069), or leading or
 * trailing whitespace (any Unicode White_Space character). */
const char *ajw_user_text_problem(const char *s, size_t n, char why[AJW_USER_WHY_MAX]);

/* 1 when user (n bytes) holds '@' directly followed by iss (a NUL-terminated
 * non-empty issuer): "alice@https://a.example" names the issuer
 * https://a.example. */
int ajw_user_names_issuer(const char *user, size_t n, const char *iss);

/* 1 when user (n bytes) holds '@' directly followed by "http://" or
 * "https://" (any case): an issuer's shape, whether or not a section names
 * that issuer ("alice@https://a.example"). */
int ajw_user_names_url(const char *user, size_t n);

#endif
