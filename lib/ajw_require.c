/* ajw_require.c — `Require claim` / `Require scope` rules. Compiled once at
 * configuration time; afterwards only read, so evaluation needs no lock. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>

#include <apr_strings.h>

#include "ajw_require.h"
#include "ajw_json.h"

typedef enum { AJW_RQ_CLAIM, AJW_RQ_SCOPE, AJW_RQ_ACR } ajw_rq_kind_e;

typedef struct ajw_rq_alt_t {
    const char *arg;           /* the alternative as written */
    const char *member;        /* [literal] top-level claim name, or NULL */
    const char *path;          /* dotted claim path (below member, if any), or NULL */
    const char *value;         /* exact value or scope token */
    size_t value_len;
    int is_regex;
    const ajw_regex_engine_t *engine;  /* when is_regex */
    void *re;                  /* compiled by engine; lives as long as the rule's pool */
    int num_kind;              /* value as a JSON number: 0 not one, NUM_INT, NUM_REAL */
    long long num_i;           /* NUM_INT: its value */
    double num_d;              /* NUM_INT and NUM_REAL: its value as a double */
} ajw_rq_alt_t;

enum { NUM_INT = 1, NUM_REAL = 2 };

struct ajw_require_t {
    ajw_rq_kind_e kind;
    int nalts;
    ajw_rq_alt_t *alts;
    const char *text;
};

/* ------------------------------------------------------------------ */
/* POSIX ERE engine                                                     */

static apr_status_t posix_cleanup(void *data)
{
    regfree((regex_t *)data);
    return APR_SUCCESS;
}

static apr_status_t posix_compile(void **out, const char *pattern, apr_pool_t *p,
                                  const char **why)
{
    regex_t *re = apr_pcalloc(p, sizeof(*re));
    int rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128];
        regerror(rc, re, msg, sizeof(msg));
        *why = apr_pstrdup(p, msg);
        return APR_EINVAL;
    }
    apr_pool_cleanup_register(p, re, posix_cleanup, apr_pool_cleanup_null);
    *out = re;
    return APR_SUCCESS;
}

static int posix_match(const void *re, const char *text, size_t len)
{
    (void)len;
    return regexec((const regex_t *)re, text, 0, NULL, 0) == 0;
}

const ajw_regex_engine_t ajw_regex_posix = { "POSIX ERE", posix_compile, posix_match };

/* ------------------------------------------------------------------ */
/* Rules                                                                */

static ajw_require_t *rq_new(ajw_rq_kind_e kind, int argc, const char *const *argv,
                             apr_pool_t *p)
{
    ajw_require_t *rq = apr_pcalloc(p, sizeof(*rq));
    int i;

    rq->kind = kind;
    rq->nalts = argc;
    rq->alts = apr_pcalloc(p, sizeof(ajw_rq_alt_t) * (size_t)argc);
    rq->text = "";
    for (i = 0; i < argc; i++)
        rq->text = i ? apr_pstrcat(p, rq->text, " ", argv[i], NULL) : apr_pstrdup(p, argv[i]);
    return rq;
}

/* A dotted path with no empty segment ("a..b", ".a", "a." are refused). */
static int path_ok(const char *path, size_t n)
{
    size_t i;
    if (n == 0 || path[0] == '.' || path[n - 1] == '.')
        return 0;
    for (i = 1; i < n; i++)
        if (path[i] == '.' && path[i - 1] == '.')
            return 0;
    return 1;
}

/* Is s exactly a JSON number (RFC 8259 §6)? */
static int json_number_text(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return 0;
    if (*s == '.') {
        if (!(*++s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

/* An expected value written as a JSON number is compared with number
 * claims by value: remember it as an integer when it is one (no fraction,
 * no exponent, in range), and as a double in any case. */
static void expected_number(ajw_rq_alt_t *alt)
{
    char *end;
    if (!json_number_text(alt->value))
        return;
    alt->num_d = strtod(alt->value, &end);
    if (!isfinite(alt->num_d))
        return;
    alt->num_kind = NUM_REAL;
    if (!strpbrk(alt->value, ".eE")) {
        errno = 0;
        alt->num_i = strtoll(alt->value, &end, 10);
        if (errno == 0 && *end == '\0')
            alt->num_kind = NUM_INT;
    }
}

/* "[literal name]" at the start of arg: the member name, taken as written
 * (it may hold ':', '~' and '.', as namespaced claims such as
 * "https://example.com/roles" do). *rest points past it and an optional '.'. */
static apr_status_t bracket_member(ajw_rq_alt_t *alt, const char *arg, const char **rest,
                                   apr_pool_t *p)
{
    const char *close = strchr(arg + 1, ']');
    if (!close || close == arg + 1)
        return APR_EINVAL;
    alt->member = apr_pstrmemdup(p, arg + 1, (size_t)(close - arg - 1));
    *rest = close + 1;
    if (**rest == '.') {
        (*rest)++;
        if (!path_ok(*rest, strcspn(*rest, ":~")))
            return APR_EINVAL;               /* "[a].:x", "[a]..b:x": an empty segment */
    }
    else if (**rest != ':' && **rest != '~')
        return APR_EINVAL;
    return APR_SUCCESS;
}

/* Split "path:value" / "path~regex" / "[member].path:value" into alt;
 * compile the regex with engine. */
static apr_status_t claim_alt_compile(ajw_rq_alt_t *alt, const char *arg,
                                      const ajw_regex_engine_t *engine, apr_pool_t *p,
                                      const char **why)
{
    const char *rest = arg, *msg = NULL;
    size_t plen;

    if (arg[0] == '[' && bracket_member(alt, arg, &rest, p) != APR_SUCCESS) {
        *why = apr_psprintf(p, "Require claim '%s': expected [claim name]:value, "
                            "[claim name]~regex or [claim name].path:value (no empty "
                            "path segment)", arg);
        return APR_EINVAL;
    }
    plen = strcspn(rest, ":~");
    if (rest[plen] == '\0' || (plen == 0 && !alt->member)) {
        *why = apr_psprintf(p, "Require claim '%s': expected path:value or path~regex", arg);
        return APR_EINVAL;
    }
    if (plen && !alt->member && !path_ok(rest, plen)) {
        *why = apr_psprintf(p, "Require claim '%s': the path '%.*s' has an empty segment "
                            "(write a.b.c, or [name] for a claim whose name holds '.')", arg,
                            (int)plen, rest);
        return APR_EINVAL;
    }
    alt->path = plen ? apr_pstrmemdup(p, rest, plen) : NULL;
    alt->value = rest + plen + 1;
    alt->value_len = strlen(alt->value);
    alt->is_regex = rest[plen] == '~';
    if (!alt->is_regex) {
        expected_number(alt);
        return APR_SUCCESS;
    }
    if (alt->value_len == 0) {
        /* An empty regex matches everything: almost surely a mistake. */
        *why = apr_psprintf(p, "Require claim '%s': empty regular expression", arg);
        return APR_EINVAL;
    }
    if (!engine) {
        *why = apr_psprintf(p, "Require claim '%s': regular expressions are not available "
                            "here", arg);
        return APR_EINVAL;
    }
    if (engine->compile(&alt->re, alt->value, p, &msg) != APR_SUCCESS) {
        *why = apr_psprintf(p, "Require claim '%s': bad regular expression (%s): %s", arg,
                            engine->name, msg ? msg : "does not compile");
        return APR_EINVAL;
    }
    alt->engine = engine;
    return APR_SUCCESS;
}

typedef apr_status_t alt_compile_fn(ajw_rq_alt_t *alt, const char *arg,
                                    const ajw_regex_engine_t *engine, apr_pool_t *p,
                                    const char **why);

static int scope_token_ok(const char *s)
{
    return *s != '\0' && strchr(s, ' ') == NULL;
}

static apr_status_t scope_alt_compile(ajw_rq_alt_t *alt, const char *arg,
                                      const ajw_regex_engine_t *engine, apr_pool_t *p,
                                      const char **why)
{
    (void)engine;
    if (!scope_token_ok(arg)) {
        *why = apr_psprintf(p, "Require scope: '%s' is not a scope token", arg);
        return APR_EINVAL;
    }
    alt->value = arg;
    alt->value_len = strlen(arg);
    return APR_SUCCESS;
}

/* An RFC 6749 NQCHAR run (%x21 / %x23-5B / %x5D-7E), non-empty. */
static int nqchar_token_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

static apr_status_t acr_alt_compile(ajw_rq_alt_t *alt, const char *arg,
                                    const ajw_regex_engine_t *engine, apr_pool_t *p,
                                    const char **why)
{
    (void)engine;
    if (!nqchar_token_ok(arg)) {
        *why = apr_psprintf(p, "Require jwt-acr: '%s' is not an acr value (printable ASCII "
                            "without space, '\"' or '\\')", arg);
        return APR_EINVAL;
    }
    alt->value = arg;
    alt->value_len = strlen(arg);
    return APR_SUCCESS;
}

/* One rule of `kind` from argv, each argument compiled by compile_alt. */
static apr_status_t rq_compile(ajw_require_t **out, ajw_rq_kind_e kind, int argc,
                               const char *const *argv, alt_compile_fn *compile_alt,
                               const ajw_regex_engine_t *engine, const char *none_given,
                               apr_pool_t *p, const char **why)
{
    ajw_require_t *rq = NULL;
    apr_status_t rv = APR_SUCCESS;
    int i;

    *why = NULL;
    if (argc <= 0) {
        *why = none_given;
        rv = APR_EINVAL;
    }
    else {
        rq = rq_new(kind, argc, argv, p);
        for (i = 0; i < argc && rv == APR_SUCCESS; i++) {
            rq->alts[i].arg = argv[i];
            rv = compile_alt(&rq->alts[i], argv[i], engine, p, why);
        }
    }
    *out = rv == APR_SUCCESS ? rq : NULL;
    return rv;
}

apr_status_t ajw_require_claim_compile(ajw_require_t **out, int argc, const char *const *argv,
                                       const ajw_regex_engine_t *re, apr_pool_t *p,
                                       const char **why)
{
    return rq_compile(out, AJW_RQ_CLAIM, argc, argv, claim_alt_compile, re,
                      "Require claim: no claim given", p, why);
}

apr_status_t ajw_require_scope_compile(ajw_require_t **out, int argc, const char *const *argv,
                                       apr_pool_t *p, const char **why)
{
    return rq_compile(out, AJW_RQ_SCOPE, argc, argv, scope_alt_compile, NULL,
                      "Require scope: no scope given", p, why);
}

apr_status_t ajw_require_acr_compile(ajw_require_t **out, int argc, const char *const *argv,
                                     apr_pool_t *p, const char **why)
{
    return rq_compile(out, AJW_RQ_ACR, argc, argv, acr_alt_compile, NULL,
                      "Require jwt-acr: no acr value given", p, why);
}

/* Does text (len bytes, NUL-terminated) satisfy alt? */
static int text_matches(const ajw_rq_alt_t *alt, const char *text, size_t len)
{
    if (!alt->is_regex)
        return alt->value_len == len && memcmp(alt->value, text, len) == 0;
    /* A string with an embedded NUL never matches: whatever the engine, no
     * part of a value can hide behind a NUL. */
    if (strlen(text) != len)
        return 0;
    return alt->engine->match(alt->re, text, len) == 1;
}

/* A number claim against a numeric expected value: equal as numbers, and
 * exactly (an integer and a real are equal only when the real is that
 * integer, so no large integer rounds onto another). */
static int number_equals(const ajw_rq_alt_t *alt, const ajw_val_t *v)
{
    if (ajw_val_is_integer(v)) {
        long long i = (long long)ajw_val_int(v);
        if (alt->num_kind == NUM_INT)
            return i == alt->num_i;
        /* 2^63 as a double: beyond it no long long is equal. */
        return alt->num_d >= -9223372036854775808.0 && alt->num_d < 9223372036854775808.0 &&
               alt->num_d == (double)(long long)alt->num_d && (long long)alt->num_d == i;
    }
    if (alt->num_kind == NUM_INT) {
        double d = ajw_val_real(v);
        return d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
               d == (double)(long long)d && (long long)d == alt->num_i;
    }
    return ajw_val_real(v) == alt->num_d;
}

/* A scalar claim value against alt: strings as is; booleans as the text
 * true/false; numbers by value against an exact numeric value, and by the
 * text the export shows (ajw_json_number_text) against a regex; anything
 * else never matches. */
static int scalar_matches(const ajw_rq_alt_t *alt, const ajw_val_t *v)
{
    char buf[AJW_NUMBER_TEXT_MAX];
    size_t n;

    if (ajw_val_is_string(v))
        return text_matches(alt, ajw_val_str(v), ajw_val_strlen(v));
    if (ajw_val_is_true(v))
        return text_matches(alt, "true", 4);
    if (ajw_val_is_false(v))
        return text_matches(alt, "false", 5);
    if (!ajw_val_is_number(v))
        return 0;
    if (!alt->is_regex)
        return alt->num_kind && number_equals(alt, v);
    n = ajw_val_number_text(v, buf);
    return n > 0 && text_matches(alt, buf, n);
}

/* The claim value alt names: [member] first, then the dotted path below it. */
static const ajw_val_t *alt_lookup(const ajw_rq_alt_t *alt, const ajw_val_t *claims)
{
    const ajw_val_t *base = claims;
    if (alt->member) {
        base = ajw_val_get(claims, alt->member);
        if (!alt->path || !ajw_val_is_object(base))
            return alt->path ? NULL : base;
    }
    return ajw_val_path(base, alt->path);
}

static int claim_alt_matches(const ajw_rq_alt_t *alt, const ajw_val_t *claims)
{
    const ajw_val_t *v = alt_lookup(alt, claims);
    const ajw_val_t *el;

    if (!ajw_val_is_array(v))
        return v ? scalar_matches(alt, v) : 0;
    ajw_val_foreach(v, el) {
        if (scalar_matches(alt, el))
            return 1;
    }
    return 0;
}

/* Is token (tlen bytes) one of the space-delimited words of s? */
static int in_space_list(const char *s, size_t len, const char *token, size_t tlen)
{
    size_t i = 0, start;

    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (i > start && i - start == tlen && memcmp(s + start, token, tlen) == 0)
            return 1;
    }
    return 0;
}

static int scope_in_claim(const ajw_val_t *v, const ajw_rq_alt_t *alt, int allow_array)
{
    const ajw_val_t *el;

    if (ajw_val_is_string(v))
        return in_space_list(ajw_val_str(v), ajw_val_strlen(v), alt->value,
                             alt->value_len);
    if (allow_array && ajw_val_is_array(v)) {
        ajw_val_foreach(v, el) {
            if (ajw_val_is_string(el) && ajw_val_strlen(el) == alt->value_len &&
                memcmp(ajw_val_str(el), alt->value, alt->value_len) == 0)
                return 1;
        }
    }
    return 0;
}

/* acr is one string (OpenID Connect Core §2); anything else never matches. */
static int acr_alt_matches(const ajw_rq_alt_t *alt, const ajw_val_t *claims)
{
    const ajw_val_t *v = ajw_val_get(claims, "acr");
    return ajw_val_is_string(v) && ajw_val_strlen(v) == alt->value_len
           && memcmp(ajw_val_str(v), alt->value, alt->value_len) == 0;
}

static int scope_alt_matches(const ajw_rq_alt_t *alt, const ajw_val_t *claims)
{
    return scope_in_claim(ajw_val_get(claims, "scope"), alt, 0) ||
           scope_in_claim(ajw_val_get(claims, "scp"), alt, 1);
}

int ajw_require_eval(const ajw_require_t *rq, const ajw_val_t *claims)
{
    int i;

    if (!rq || !ajw_val_is_object(claims))
        return 0;
    for (i = 0; i < rq->nalts; i++) {
        const ajw_rq_alt_t *alt = &rq->alts[i];
        if (rq->kind == AJW_RQ_CLAIM ? claim_alt_matches(alt, claims)
            : rq->kind == AJW_RQ_ACR ? acr_alt_matches(alt, claims)
            : scope_alt_matches(alt, claims))
            return 1;
    }
    return 0;
}

const char *ajw_require_warning(const ajw_require_t *rq, apr_pool_t *p)
{
    int i;
    if (!rq || rq->kind != AJW_RQ_CLAIM)
        return NULL;
    for (i = 0; i < rq->nalts; i++) {
        const ajw_rq_alt_t *alt = &rq->alts[i];
        if (!alt->is_regex && alt->value_len == 0)
            return apr_psprintf(p, "Require claim '%s': the expected value is empty, so only "
                                "a claim equal to \"\" (or an array holding one) matches",
                                alt->arg);
    }
    return NULL;
}

const char *ajw_require_text(const ajw_require_t *rq)
{
    return rq ? rq->text : "";
}

/* ------------------------------------------------------------------ */
/* Claim references (AuthJWKSClaimHeader / AuthJWKSClaimEnv)            */

struct ajw_claim_ref_t {
    const char *member;        /* [literal] top-level name, or NULL */
    const char *path;          /* dotted path (below member, if any), or NULL */
};

apr_status_t ajw_claim_ref_compile(ajw_claim_ref_t **out, const char *text, apr_pool_t *p,
                                   const char **why)
{
    ajw_claim_ref_t *ref = apr_pcalloc(p, sizeof(*ref));
    const char *rest = text;
    if (text[0] == '[') {
        const char *close = strchr(text + 1, ']');
        if (!close || close == text + 1 || (close[1] && close[1] != '.'))
            goto bad;
        ref->member = apr_pstrmemdup(p, text + 1, (size_t)(close - text - 1));
        rest = close[1] ? close + 2 : NULL;
    }
    if (rest) {
        if (!path_ok(rest, strlen(rest)))
            goto bad;
        ref->path = rest;
    }
    *out = ref;
    return APR_SUCCESS;
bad:
    *why = apr_psprintf(p, "claim '%s': expected a.b.c, [name] or [name].a.b", text);
    return APR_EINVAL;
}

const ajw_val_t *ajw_claim_ref_get(const ajw_claim_ref_t *ref, const ajw_val_t *claims)
{
    const ajw_val_t *base = claims;
    if (!ref || !ajw_val_is_object(claims))
        return NULL;
    if (ref->member) {
        base = ajw_val_get(claims, ref->member);
        if (!ref->path)
            return base;
        if (!ajw_val_is_object(base))
            return NULL;
    }
    return ajw_val_path(base, ref->path);
}
