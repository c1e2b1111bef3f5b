/* ajw_require.c — `Require claim` / `Require scope` rules. Compiled once at
 * configuration time; afterwards only read, so evaluation needs no lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>

#include <apr_strings.h>

#include "ajw_require.h"
#include "ajw_json.h"

typedef enum { AJW_RQ_CLAIM, AJW_RQ_SCOPE } ajw_rq_kind_e;

typedef struct ajw_rq_alt_t {
    const char *member;        /* [literal] top-level claim name, or NULL */
    const char *path;          /* dotted claim path (below member, if any), or NULL */
    const char *value;         /* exact value or scope token */
    size_t value_len;
    int is_regex;
    regex_t re;                /* valid when is_regex; freed by a pool cleanup */
} ajw_rq_alt_t;

struct ajw_require_t {
    ajw_rq_kind_e kind;
    int nalts;
    ajw_rq_alt_t *alts;
    const char *text;
};

static apr_status_t regex_cleanup(void *data)
{
    regfree((regex_t *)data);
    return APR_SUCCESS;
}

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
        if (**rest == ':' || **rest == '~' || **rest == '\0')
            return APR_EINVAL;               /* "[a].:x": an empty sub-path */
    }
    else if (**rest != ':' && **rest != '~')
        return APR_EINVAL;
    return APR_SUCCESS;
}

/* Split "path:value" / "path~regex" / "[member].path:value" into alt;
 * compile the regex. */
static apr_status_t claim_alt_compile(ajw_rq_alt_t *alt, const char *arg, apr_pool_t *p,
                                      const char **why)
{
    const char *rest = arg;
    size_t plen;
    int rc;

    if (arg[0] == '[' && bracket_member(alt, arg, &rest, p) != APR_SUCCESS) {
        *why = apr_psprintf(p, "Require claim '%s': expected [claim name]:value, "
                            "[claim name]~regex or [claim name].path:value", arg);
        return APR_EINVAL;
    }
    plen = strcspn(rest, ":~");
    if (rest[plen] == '\0' || (plen == 0 && !alt->member)) {
        *why = apr_psprintf(p, "Require claim '%s': expected path:value or path~regex", arg);
        return APR_EINVAL;
    }
    alt->path = plen ? apr_pstrmemdup(p, rest, plen) : NULL;
    alt->value = rest + plen + 1;
    alt->value_len = strlen(alt->value);
    alt->is_regex = rest[plen] == '~';
    if (!alt->is_regex)
        return APR_SUCCESS;
    if (alt->value_len == 0) {
        /* An empty regex matches everything: almost surely a mistake. */
        *why = apr_psprintf(p, "Require claim '%s': empty regular expression", arg);
        return APR_EINVAL;
    }
    rc = regcomp(&alt->re, alt->value, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &alt->re, msg, sizeof(msg));
        *why = apr_psprintf(p, "Require claim '%s': bad regular expression: %s", arg, msg);
        return APR_EINVAL;
    }
    apr_pool_cleanup_register(p, &alt->re, regex_cleanup, apr_pool_cleanup_null);
    return APR_SUCCESS;
}

typedef apr_status_t alt_compile_fn(ajw_rq_alt_t *alt, const char *arg, apr_pool_t *p,
                                    const char **why);

static int scope_token_ok(const char *s)
{
    return *s != '\0' && strchr(s, ' ') == NULL;
}

static apr_status_t scope_alt_compile(ajw_rq_alt_t *alt, const char *arg, apr_pool_t *p,
                                      const char **why)
{
    if (!scope_token_ok(arg)) {
        *why = apr_psprintf(p, "Require scope: '%s' is not a scope token", arg);
        return APR_EINVAL;
    }
    alt->value = arg;
    alt->value_len = strlen(arg);
    return APR_SUCCESS;
}

/* One rule of `kind` from argv, each argument compiled by compile_alt. */
static apr_status_t rq_compile(ajw_require_t **out, ajw_rq_kind_e kind, int argc,
                               const char *const *argv, alt_compile_fn *compile_alt,
                               const char *none_given, apr_pool_t *p, const char **why)
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
        for (i = 0; i < argc && rv == APR_SUCCESS; i++)
            rv = compile_alt(&rq->alts[i], argv[i], p, why);
    }
    *out = rv == APR_SUCCESS ? rq : NULL;
    return rv;
}

apr_status_t ajw_require_claim_compile(ajw_require_t **out, int argc, const char *const *argv,
                                       apr_pool_t *p, const char **why)
{
    return rq_compile(out, AJW_RQ_CLAIM, argc, argv, claim_alt_compile,
                      "Require claim: no claim given", p, why);
}

apr_status_t ajw_require_scope_compile(ajw_require_t **out, int argc, const char *const *argv,
                                       apr_pool_t *p, const char **why)
{
    return rq_compile(out, AJW_RQ_SCOPE, argc, argv, scope_alt_compile,
                      "Require scope: no scope given", p, why);
}

/* Does text (len bytes, NUL-terminated) satisfy alt? */
static int text_matches(const ajw_rq_alt_t *alt, const char *text, size_t len)
{
    if (!alt->is_regex)
        return alt->value_len == len && memcmp(alt->value, text, len) == 0;
    /* regexec stops at a NUL; a string with an embedded NUL never matches. */
    if (strlen(text) != len)
        return 0;
    return regexec(&alt->re, text, 0, NULL, 0) == 0;
}

/* A scalar claim value against alt: strings as is, numbers and booleans by
 * their JSON text; anything else never matches. */
static int scalar_matches(const ajw_rq_alt_t *alt, const json_t *v)
{
    char buf[32];
    char *dumped;
    int m = 0;

    if (json_is_string(v))
        m = text_matches(alt, json_string_value(v), json_string_length(v));
    else if (json_is_integer(v)) {
        int n = snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        m = text_matches(alt, buf, (size_t)n);
    }
    else if (json_is_true(v))
        m = text_matches(alt, "true", 4);
    else if (json_is_false(v))
        m = text_matches(alt, "false", 5);
    else if (json_is_real(v)) {
        /* jansson's own rendering, so the operator writes what the token has. */
        dumped = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (dumped)
            m = text_matches(alt, dumped, strlen(dumped));
        free(dumped);
    }
    return m;
}

/* The claim value alt names: [member] first, then the dotted path below it. */
static const json_t *alt_lookup(const ajw_rq_alt_t *alt, const json_t *claims)
{
    const json_t *base = claims;
    if (alt->member) {
        base = json_object_get(claims, alt->member);
        if (!alt->path || !json_is_object(base))
            return alt->path ? NULL : base;
    }
    return ajw_json_path(base, alt->path);
}

static int claim_alt_matches(const ajw_rq_alt_t *alt, const json_t *claims)
{
    const json_t *v = alt_lookup(alt, claims);
    const json_t *el;
    size_t i;

    if (!json_is_array(v))
        return v ? scalar_matches(alt, v) : 0;
    json_array_foreach(v, i, el) {
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

static int scope_in_claim(const json_t *v, const ajw_rq_alt_t *alt, int allow_array)
{
    const json_t *el;
    size_t i;

    if (json_is_string(v))
        return in_space_list(json_string_value(v), json_string_length(v), alt->value,
                             alt->value_len);
    if (allow_array && json_is_array(v)) {
        json_array_foreach(v, i, el) {
            if (json_is_string(el) && json_string_length(el) == alt->value_len &&
                memcmp(json_string_value(el), alt->value, alt->value_len) == 0)
                return 1;
        }
    }
    return 0;
}

static int scope_alt_matches(const ajw_rq_alt_t *alt, const json_t *claims)
{
    return scope_in_claim(json_object_get(claims, "scope"), alt, 0) ||
           scope_in_claim(json_object_get(claims, "scp"), alt, 1);
}

int ajw_require_eval(const ajw_require_t *rq, const json_t *claims)
{
    int i;

    if (!rq || !json_is_object(claims))
        return 0;
    for (i = 0; i < rq->nalts; i++) {
        const ajw_rq_alt_t *alt = &rq->alts[i];
        if (rq->kind == AJW_RQ_CLAIM ? claim_alt_matches(alt, claims)
                                     : scope_alt_matches(alt, claims))
            return 1;
    }
    return 0;
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

static int path_ok(const char *path)
{
    size_t n = strlen(path);
    return n && path[0] != '.' && path[n - 1] != '.' && !strstr(path, "..");
}

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
        if (!path_ok(rest))
            goto bad;
        ref->path = rest;
    }
    *out = ref;
    return APR_SUCCESS;
bad:
    *why = apr_psprintf(p, "claim '%s': expected a.b.c, [name] or [name].a.b", text);
    return APR_EINVAL;
}

const json_t *ajw_claim_ref_get(const ajw_claim_ref_t *ref, const json_t *claims)
{
    const json_t *base = claims;
    if (!ref || !json_is_object(claims))
        return NULL;
    if (ref->member) {
        base = json_object_get(claims, ref->member);
        if (!ref->path)
            return base;
        if (!json_is_object(base))
            return NULL;
    }
    return ajw_json_path(base, ref->path);
}
