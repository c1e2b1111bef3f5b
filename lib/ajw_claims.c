/* ajw_claims.c — registered-claim checks (RFC 7519 §4.1). */
#include <math.h>
#include <string.h>

#include "ajw_claims.h"

/* 9999-12-31T23:59:59Z: later dates are nonsense and risk overflow in
 * `exp + leeway` arithmetic below. */
#define AJW_NUMERIC_DATE_MAX 253402300799LL

/* Values are quoted in error texts only up to this many bytes. */
#define AJW_QUOTE_MAX 64

/* date_of: a NumericDate value v as ajw_claims_numeric_date reads it. */
static int date_of(const ajw_val_t *v, long long *out)
{
    int rv = -1;

    if (!v)
        return 0;
    if (ajw_val_is_integer(v)) {
        long long i = ajw_val_int(v);
        if (i >= 0 && i <= AJW_NUMERIC_DATE_MAX) {
            *out = i;
            rv = 1;
        }
    }
    else if (ajw_val_is_real(v)) {
        double d = ajw_val_real(v);
        /* isfinite first: NaN compares false with everything. The range test
         * is done in double so the conversion below cannot overflow. */
        if (isfinite(d) && d >= 0.0 && d <= (double)AJW_NUMERIC_DATE_MAX) {
            /* d >= 0, so truncation is the floor (and needs no libm). */
            *out = (long long)d;
            rv = 1;
        }
    }
    return rv;
}

int ajw_claims_numeric_date(const ajw_val_t *claims, const char *name, long long *out)
{
    return date_of(claims ? ajw_val_get(claims, name) : NULL, out);
}

/* The registered claims the check reads, found in one walk over the
 * members (a name is unique in a document). */
typedef struct registered_t {
    const ajw_val_t *exp, *nbf, *iat, *iss, *aud;
} registered_t;

static void registered(const ajw_val_t *claims, registered_t *rg)
{
    const ajw_val_t *v;
    const char *k;

    memset(rg, 0, sizeof(*rg));
    ajw_val_foreach_member(claims, k, v) {
        if (!k[0] || !k[1] || !k[2] || k[3])
            continue;                      /* only three-letter names are read here */
        switch (k[0]) {
        case 'e': if (k[1] == 'x' && k[2] == 'p') rg->exp = v; break;
        case 'n': if (k[1] == 'b' && k[2] == 'f') rg->nbf = v; break;
        case 'i':
            if (k[1] == 'a' && k[2] == 't')
                rg->iat = v;
            else if (k[1] == 's' && k[2] == 's')
                rg->iss = v;
            break;
        case 'a': if (k[1] == 'u' && k[2] == 'd') rg->aud = v; break;
        default: break;
        }
    }
}

/* Copy (s, len) into buf for an error text: printable ASCII only (others
 * become '?', so a claim cannot forge log lines), at most AJW_QUOTE_MAX
 * bytes, "..." when cut. Returns buf. */
static const char *quote(char buf[AJW_QUOTE_MAX + 4], const char *s, size_t len)
{
    size_t i, n = len > AJW_QUOTE_MAX ? AJW_QUOTE_MAX : len;

    for (i = 0; i < n; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'') ? s[i] : '?';
    if (n < len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static ajw_reason_e check_date_types(const registered_t *rg, ajw_error_t *err)
{
    const ajw_val_t *const vals[] = { rg->exp, rg->nbf, rg->iat };
    static const char *const names[] = { "exp", "nbf", "iat" };
    long long dummy;
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (date_of(vals[i], &dummy) < 0)
            return ajw_error_set(err, AJW_R_BAD_CLAIM,
                                 "claim %s is not a valid NumericDate", names[i]);
    }
    return AJW_OK;
}

/* exp, nbf, iat and max age. Dates are at most ~2.5e11 and leeway is
 * clamped to the same range, so the sums cannot overflow. */
static ajw_reason_e check_times(const registered_t *rg, const ajw_policy_t *pol, long long now,
                                ajw_error_t *err)
{
    long long leeway = pol->leeway, exp, nbf, iat;
    int has_exp, has_iat;

    if (leeway < 0)
        leeway = 0;
    if (leeway > AJW_NUMERIC_DATE_MAX)
        leeway = AJW_NUMERIC_DATE_MAX;
    has_exp = date_of(rg->exp, &exp);
    if (!has_exp && pol->require_exp)
        return ajw_error_set(err, AJW_R_EXPIRED, "claim exp is missing");
    if (has_exp && exp + leeway <= now)
        return ajw_error_set(err, AJW_R_EXPIRED, "token expired at %lld (now %lld, leeway %lld)",
                             exp, now, leeway);
    if (date_of(rg->nbf, &nbf) == 1 && nbf - leeway > now)
        return ajw_error_set(err, AJW_R_NOT_YET_VALID,
                             "token not valid before %lld (now %lld, leeway %lld)",
                             nbf, now, leeway);
    has_iat = date_of(rg->iat, &iat);
    if (has_iat && iat - leeway > now)
        return ajw_error_set(err, AJW_R_ISSUED_IN_FUTURE,
                             "token issued in the future at %lld (now %lld, leeway %lld)",
                             iat, now, leeway);
    if (pol->max_age > 0) {
        if (!has_iat)
            return ajw_error_set(err, AJW_R_TOO_OLD, "claim iat is missing (max age set)");
        /* Both terms are clamped to ~2.5e11, so the sum cannot overflow. */
        long long max_age = pol->max_age > AJW_NUMERIC_DATE_MAX ? AJW_NUMERIC_DATE_MAX
                                                                 : pol->max_age;
        if (now > iat + max_age + leeway)
            return ajw_error_set(err, AJW_R_TOO_OLD, "token issued at %lld is older than %lld s",
                                 iat, max_age);
    }
    return AJW_OK;
}

/* 1 when (s, len) equals one of the `const char *` in list. */
static int in_list(const apr_array_header_t *list, const char *s, size_t len)
{
    int i;
    for (i = 0; i < list->nelts; i++) {
        const char *want = APR_ARRAY_IDX(list, i, const char *);
        if (want && strlen(want) == len && memcmp(want, s, len) == 0)
            return 1;
    }
    return 0;
}

static ajw_reason_e check_iss(const registered_t *rg, const ajw_policy_t *pol, ajw_error_t *err)
{
    const ajw_val_t *iss = rg->iss;
    char q[AJW_QUOTE_MAX + 4];

    if (!pol->issuers || pol->issuers->nelts == 0)
        return AJW_OK;
    if (!ajw_val_is_string(iss))
        return ajw_error_set(err, AJW_R_BAD_ISSUER, "claim iss is missing or not a string");
    if (!in_list(pol->issuers, ajw_val_str(iss), ajw_val_strlen(iss)))
        return ajw_error_set(err, AJW_R_BAD_ISSUER, "issuer '%s' is not accepted",
                             quote(q, ajw_val_str(iss), ajw_val_strlen(iss)));
    return AJW_OK;
}

static int aud_matches(const ajw_val_t *aud, const apr_array_header_t *audiences)
{
    const ajw_val_t *el;

    if (ajw_val_is_string(aud))
        return in_list(audiences, ajw_val_str(aud), ajw_val_strlen(aud));
    if (ajw_val_is_array(aud)) {
        ajw_val_foreach(aud, el) {
            if (ajw_val_is_string(el) &&
                in_list(audiences, ajw_val_str(el), ajw_val_strlen(el)))
                return 1;
        }
    }
    return 0;
}

static ajw_reason_e check_aud(const registered_t *rg, const ajw_policy_t *pol, ajw_error_t *err)
{
    const ajw_val_t *aud = rg->aud;
    char q[AJW_QUOTE_MAX + 4];

    if (!pol->audiences || pol->audiences->nelts == 0)
        return AJW_OK;
    if (!aud)
        return ajw_error_set(err, AJW_R_BAD_AUDIENCE, "claim aud is missing");
    if (aud_matches(aud, pol->audiences))
        return AJW_OK;
    if (ajw_val_is_string(aud))
        return ajw_error_set(err, AJW_R_BAD_AUDIENCE, "audience '%s' is not accepted",
                             quote(q, ajw_val_str(aud), ajw_val_strlen(aud)));
    return ajw_error_set(err, AJW_R_BAD_AUDIENCE, "no accepted audience in claim aud");
}

static ajw_reason_e check_required(const ajw_val_t *claims, const ajw_policy_t *pol,
                                   ajw_error_t *err)
{
    int i;

    if (!pol->required)
        return AJW_OK;
    for (i = 0; i < pol->required->nelts; i++) {
        const char *name = APR_ARRAY_IDX(pol->required, i, const char *);
        char q[AJW_QUOTE_MAX + 4];
        if (name && !ajw_val_get(claims, name))
            return ajw_error_set(err, AJW_R_MISSING_CLAIM, "required claim %s is missing",
                                 quote(q, name, strlen(name)));
    }
    return AJW_OK;
}

ajw_reason_e ajw_claims_check(const ajw_val_t *claims, const ajw_policy_t *pol, long long now,
                              ajw_error_t *err)
{
    registered_t rg;
    ajw_reason_e rv;

    if (!ajw_val_is_object(claims))
        return ajw_error_set(err, AJW_R_MALFORMED, "claims are not a JSON object");
    registered(claims, &rg);
    rv = check_date_types(&rg, err);
    if (rv == AJW_OK)
        rv = check_times(&rg, pol, now, err);
    if (rv == AJW_OK)
        rv = check_iss(&rg, pol, err);
    if (rv == AJW_OK)
        rv = check_aud(&rg, pol, err);
    if (rv == AJW_OK)
        rv = check_required(claims, pol, err);
    if (rv == AJW_OK && err) {
        err->code = AJW_OK;
        err->text[0] = '\0';
    }
    return rv;
}

int ajw_claims_auth_time_ok(const ajw_val_t *claims, long long max_age, long long leeway,
                            long long now, const char **why)
{
    long long at;
    int has = ajw_val_is_object(claims) ? ajw_claims_numeric_date(claims, "auth_time", &at) : 0;

    leeway = leeway < 0 ? 0 : leeway > AJW_NUMERIC_DATE_MAX ? AJW_NUMERIC_DATE_MAX : leeway;
    max_age = max_age < 0 ? 0 : max_age > AJW_NUMERIC_DATE_MAX ? AJW_NUMERIC_DATE_MAX : max_age;
    *why = has == 0 ? "auth_time is absent" : has < 0 ? "auth_time is not a NumericDate" : NULL;
    if (!*why && at - leeway > now)
        *why = "auth_time is in the future";
    else if (!*why && now > at + max_age + leeway)
        *why = "the authentication (auth_time) is older than the maximum age";
    return *why == NULL;
}
