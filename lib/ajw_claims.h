/* ajw_claims.h — registered-claim checks of a verified JWT payload (RFC 7519). */
#ifndef AJW_CLAIMS_H
#define AJW_CLAIMS_H

#include <jansson.h>
#include "ajw_doc.h"
#include "ajw_types.h"

/* Read NumericDate claim `name` from claims. Returns 0 when absent, 1 when
 * present and valid (*out = whole seconds, fractional part truncated toward
 * -inf), -1 when present but not a NumericDate: not a number, negative, NaN,
 * or beyond 253402300799 (year 9999). Never overflows. */
int ajw_claims_numeric_date(const ajw_val_t *claims, const char *name, long long *out);

/* Check claims against pol at time `now` (seconds since the epoch; the
 * caller's clock, so tests pin it). Order: exp, nbf, iat, max age, iss, aud,
 * required claims; the first failure is returned:
 *  exp required (pol->require_exp) and exp + leeway <= now → AJW_R_EXPIRED
 *  nbf - leeway > now → AJW_R_NOT_YET_VALID; iat - leeway > now → AJW_R_ISSUED_IN_FUTURE
 *  pol->max_age > 0 and (no iat or now - iat > max_age + leeway) → AJW_R_TOO_OLD
 *  pol->issuers non-empty and iss not a string equal (exactly, by length) to one → AJW_R_BAD_ISSUER
 *  pol->audiences non-empty and aud (string, or array of strings) has no
 *    element equal to one → AJW_R_BAD_AUDIENCE
 *  a claim in pol->required absent → AJW_R_MISSING_CLAIM
 *  a registered date claim (exp, nbf, iat) of the wrong type → AJW_R_BAD_CLAIM,
 *    checked before everything else (so a string exp is BAD_CLAIM, not EXPIRED)
 * A missing exp with require_exp is AJW_R_EXPIRED. Leeway is clamped to
 * [0, 253402300799]; claims not an object → AJW_R_MALFORMED. err may be NULL. */
ajw_reason_e ajw_claims_check(const ajw_val_t *claims, const ajw_policy_t *pol, long long now,
                              ajw_error_t *err);

/* Step-up (RFC 9470 §4): is the end user's authentication recent enough?
 * 1 when auth_time is a NumericDate with auth_time - leeway <= now and
 * now - auth_time <= max_age + leeway; else 0 with *why (a static text)
 * saying which: auth_time absent, not a NumericDate, in the future, or too
 * old. max_age and leeway are clamped like ajw_claims_check's. */
int ajw_claims_auth_time_ok(const ajw_val_t *claims, long long max_age, long long leeway,
                            long long now, const char **why);

#endif
