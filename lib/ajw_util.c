/* ajw_util.c — reasons, errors, algorithm names, policy defaults, logging. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ajw_types.h"
#include "ajw_log.h"

static const char *const reason_names[AJW_R__COUNT] = {
    [AJW_OK] = "ok",
    [AJW_R_MALFORMED] = "malformed",
    [AJW_R_TOO_LARGE] = "too_large",
    [AJW_R_UNSUPPORTED] = "unsupported",
    [AJW_R_ALG_NOT_ALLOWED] = "alg_not_allowed",
    [AJW_R_BAD_TYPE] = "bad_type",
    [AJW_R_NO_KEY] = "no_matching_key",
    [AJW_R_BAD_SIGNATURE] = "bad_signature",
    [AJW_R_EXPIRED] = "expired",
    [AJW_R_NOT_YET_VALID] = "not_yet_valid",
    [AJW_R_ISSUED_IN_FUTURE] = "issued_in_future",
    [AJW_R_TOO_OLD] = "too_old",
    [AJW_R_BAD_ISSUER] = "bad_issuer",
    [AJW_R_BAD_AUDIENCE] = "bad_audience",
    [AJW_R_MISSING_CLAIM] = "missing_claim",
    [AJW_R_BAD_CLAIM] = "bad_claim",
    [AJW_R_BAD_KEY] = "bad_key",
    [AJW_R_NO_KEYS] = "no_keys_loaded",
    [AJW_R_KEYS_STALE] = "keys_stale",
    [AJW_R_INTERNAL] = "internal_error",
    [AJW_R_REVOKED] = "revoked",
    [AJW_R_STATUS_UNAVAILABLE] = "status_unavailable",
};

const char *ajw_reason_name(ajw_reason_e code)
{
    if ((int)code < 0 || code >= AJW_R__COUNT || !reason_names[code])
        return "unknown";
    return reason_names[code];
}

ajw_reason_e ajw_error_set(ajw_error_t *err, ajw_reason_e code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof(err->text), fmt, ap);
        va_end(ap);
    }
    return code;
}

static const char *const alg_names[AJW_ALG__COUNT] = {
    [AJW_ALG_UNKNOWN] = "unknown",
    [AJW_ALG_RS256] = "RS256", [AJW_ALG_RS384] = "RS384", [AJW_ALG_RS512] = "RS512",
    [AJW_ALG_PS256] = "PS256", [AJW_ALG_PS384] = "PS384", [AJW_ALG_PS512] = "PS512",
    [AJW_ALG_ES256] = "ES256", [AJW_ALG_ES384] = "ES384", [AJW_ALG_ES512] = "ES512",
    [AJW_ALG_EDDSA] = "EdDSA",
    [AJW_ALG_HS256] = "HS256", [AJW_ALG_HS384] = "HS384", [AJW_ALG_HS512] = "HS512",
    [AJW_ALG_NONE] = "none",
};

ajw_alg_e ajw_alg_from_name(const char *name, size_t len)
{
    int a;
    if (!name)
        return AJW_ALG_UNKNOWN;
    for (a = AJW_ALG_UNKNOWN + 1; a < AJW_ALG__COUNT; a++) {
        if (strlen(alg_names[a]) == len && memcmp(alg_names[a], name, len) == 0)
            return (ajw_alg_e)a;
    }
    return AJW_ALG_UNKNOWN;
}

const char *ajw_alg_name(ajw_alg_e alg)
{
    if ((int)alg < 0 || alg >= AJW_ALG__COUNT)
        return "unknown";
    return alg_names[alg];
}

void ajw_hex_encode(char *out, const unsigned char *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

void ajw_policy_init(ajw_policy_t *pol)
{
    memset(pol, 0, sizeof(*pol));
    pol->algs = AJW_ALGS_DEFAULT;
    pol->max_token_len = AJW_MAX_TOKEN_LEN_DEFAULT;
    pol->leeway = 60;
    pol->require_exp = 1;
}

/* The sink is set once at configuration time, before any thread exists,
 * and only read afterwards: no lock needed. */
static ajw_log_fn *log_fn;
static void *log_baton;

void ajw_log_set(ajw_log_fn *fn, void *baton)
{
    log_fn = fn;
    log_baton = baton;
}

void ajw_log(ajw_log_level_e level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    if (!log_fn)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log_fn(log_baton, level, buf);
}
