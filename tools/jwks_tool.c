/* jwks-tool — check a JWKS, a JWKS URL or a token with the module's own lib/,
 * and mint test tokens.
 *
 *   jwks-tool keys FILE                      usable keys of a JWKS and why others are skipped
 *   jwks-tool verify [options] FILE TOKEN    verify a token (string, file or "-") offline
 *   jwks-tool fetch [--ca FILE] URL          what the module would get from URL
 *   jwks-tool status [options] TOKEN         a token's status reference and status
 *   jwks-tool mint [options] KEY CLAIMS      sign a TEST token with a private JWK
 *   jwks-tool help [COMMAND]                 (and COMMAND --help)
 * Exit status: 0 valid / usable, 1 rejected / unusable, 2 usage or I/O error.
 *
 * Errors go to stderr with a reason and never quote key material or a whole
 * token. Signing (mint) is done here with OpenSSL's EVP API directly: lib/
 * only verifies, and mint is a test aid, not an issuer.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <apr_uri.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "ajw_types.h"
#include "ajw_b64.h"
#include "ajw_json.h"
#include "ajw_jwk.h"
#include "ajw_jws.h"
#include "ajw_claims.h"
#include "ajw_fetch.h"
#include "ajw_statuslist.h"

#define TOKEN_MAX   (1024 * 1024)   /* bytes read for a token (the policy caps it further) */
#define CLAIMS_MAX  (256 * 1024)
#define KEY_MAX     (64 * 1024)

/* ------------------------------------------------------------------ help */

typedef struct cmd_help_t {
    const char *name;
    const char *text;
} cmd_help_t;

static const cmd_help_t HELP[] = {
    { "keys",
      "usage: jwks-tool keys FILE\n"
      "\n"
      "List the keys of the JWKS in FILE (\"-\" = stdin) that the module would use,\n"
      "one line each, and on stderr a note for every key it would skip, with why.\n"
      "Exit status: 0 at least one usable key, 1 none, 2 unreadable or not a JWKS.\n" },
    { "verify",
      "usage: jwks-tool verify [options] FILE TOKEN\n"
      "\n"
      "Verify a compact JWS against the JWKS in FILE with the module's own checks.\n"
      "TOKEN is the token itself, a file holding it, or \"-\" for stdin.\n"
      "\n"
      "  --iss ISS       accepted issuer (repeatable; default: any)\n"
      "  --aud AUD       accepted audience (repeatable; default: not checked)\n"
      "  --alg ALG       allowed algorithm (repeatable; default: every RS/PS/ES/EdDSA)\n"
      "  --typ TYP       required typ header, e.g. at+jwt\n"
      "  --require C     claim that must be present (repeatable)\n"
      "  --leeway S      clock skew in seconds (default 60)\n"
      "  --max-age S     maximum seconds since iat\n"
      "  --now T         check the claims as if the time were T (seconds since 1970)\n"
      "\n"
      "Prints \"valid: alg=... kid=...\" and the claims, or \"rejected: REASON: detail\".\n"
      "Exit status: 0 valid, 1 rejected, 2 usage or I/O error.\n" },
    { "fetch",
      "usage: jwks-tool fetch [--ca FILE] [--timeout S] URL\n"
      "\n"
      "Fetch URL the way the module does (same libcurl fetcher, same URL rules:\n"
      "https://, file:///path, http:// only to 127.0.0.0/8, ::1 or localhost;\n"
      "TLS peer and host verified, no redirects, 512 KiB cap) and show what the\n"
      "server would get: the TLS result, HTTP status, ETag, Cache-Control max-age,\n"
      "the usable keys and why the others are skipped.\n"
      "\n"
      "  --ca FILE       PEM CA bundle for https (like AuthJWKSCAFile; default: system store)\n"
      "  --timeout S     whole fetch, connect included (default 10, like AuthJWKSFetchTimeout)\n"
      "\n"
      "Proxies come from https_proxy/HTTPS_PROXY/ALL_PROXY/NO_PROXY as in httpd;\n"
      "http:// is never fetched through a proxy.\n"
      "Exit status: 0 usable keys, 1 an answer without usable keys (non-200,\n"
      "not a JWKS, every key skipped), 2 usage error or no answer (DNS, connect, TLS,\n"
      "timeout, too large).\n" },
    { "status",
      "usage: jwks-tool status [--jwks FILE] [--list FILE] [--ca FILE] [--timeout S] TOKEN\n"
      "\n"
      "Show the status reference of TOKEN (status.status_list idx and uri, Token Status\n"
      "List), read from its payload WITHOUT verifying the token (use verify for that).\n"
      "With --jwks, also the status the module would find: the Status List Token at\n"
      "uri is fetched as the module fetches it (Accept: application/statuslist+jwt,\n"
      "same URL rules, no redirects) or read from --list, verified with the keys of\n"
      "the JWKS in FILE (typ statuslist+jwt, sub equal to uri, iat, exp, bits, the\n"
      "4 MiB inflate cap), and the entry at idx is shown.\n"
      "\n"
      "  --jwks FILE     JWKS of the token's issuer: check the status\n"
      "  --list FILE     the Status List Token from FILE instead of fetching uri\n"
      "  --ca FILE       PEM CA bundle for https (like AuthJWKSCAFile)\n"
      "  --timeout S     whole fetch, connect included (default 10)\n"
      "\n"
      "The tool does not apply AuthJWKSStatusListURL: check that uri is under a prefix\n"
      "you allow before fetching it.\n"
      "Exit status: 0 a reference was shown (with --jwks: its status is VALID), 1 no\n"
      "or a malformed reference, or (with --jwks) any other status, an index beyond\n"
      "the list or a list that fails verification, 2 usage or I/O error, no answer.\n" },
    { "mint",
      "usage: jwks-tool mint [--alg ALG] [--kid KID | --no-kid] [--typ TYP] KEY CLAIMS\n"
      "\n"
      "TEST AID ONLY: sign a token for tests and demos. It checks nothing about the\n"
      "claims and keeps no secrets safe; never use it to issue real tokens.\n"
      "\n"
      "KEY is a file with a private JWK (RSA, EC P-256/P-384/P-521, OKP Ed25519/Ed448);\n"
      "CLAIMS is a file with the JSON object to sign, or \"-\" for stdin. The token\n"
      "is printed on stdout.\n"
      "\n"
      "  --alg ALG       RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA\n"
      "                  (default: the JWK's alg, else RS256 / ES256|384|512 by curve / EdDSA)\n"
      "  --kid KID       kid header (default: the JWK's kid)\n"
      "  --no-kid        no kid header\n"
      "  --typ TYP       typ header (default JWT)\n"
      "\n"
      "The token is checked against the JWK's public part with the module's verifier\n"
      "before it is printed; a key the module would refuse (e.g. RSA under 2048 bits)\n"
      "is signed with anyway, with a note on stderr.\n"
      "Exit status: 0 printed, 1 signing failed, 2 usage or I/O error.\n" },
    { "help",
      "usage: jwks-tool help [COMMAND]\n"
      "\n"
      "Describe COMMAND (keys, verify, fetch, status, mint), or list the commands.\n" },
};

static const char OVERVIEW[] =
    "usage: jwks-tool COMMAND [options] [arguments]\n"
    "\n"
    "  keys FILE                      usable keys of a JWKS, and why others are skipped\n"
    "  verify [options] FILE TOKEN    verify a token (string, file or -) against a JWKS\n"
    "  fetch [--ca FILE] URL          what the module would get from a JWKS URL\n"
    "  status [options] TOKEN         a token's status reference (Token Status List)\n"
    "  mint [options] KEY CLAIMS      sign a test token with a private JWK (test aid only)\n"
    "  help [COMMAND]                 this text, or a command's (also: COMMAND --help)\n"
    "\n"
    "Exit status: 0 valid/usable, 1 rejected/unusable, 2 usage or I/O error.\n";

static const cmd_help_t *find_help(const char *cmd)
{
    size_t i;
    for (i = 0; i < sizeof(HELP) / sizeof(HELP[0]); i++) {
        if (!strcmp(HELP[i].name, cmd))
            return &HELP[i];
    }
    return NULL;
}

/* A usage error of cmd: the reason, then a pointer to the help. Returns 2. */
static int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "jwks-tool%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry: jwks-tool help%s%s\n", cmd ? " " : "", cmd ? cmd : "");
    return 2;
}

/* An error that is not about usage (I/O, parse, crypto): reason on stderr. */
static void fail_msg(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail_msg(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "jwks-tool %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int cmd_help(int argc, const char *const *argv)
{
    const cmd_help_t *h;
    if (argc == 0) {
        fputs(OVERVIEW, stdout);
        return 0;
    }
    if (argc > 1)
        return usage_error("help", "expects at most one COMMAND, got %d arguments", argc);
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))
        h = find_help("help");
    else if (!(h = find_help(argv[0])))
        return usage_error(NULL, "unknown command '%.40s' (commands: keys, verify, fetch, mint, help)",
                           argv[0]);
    fputs(h->text, stdout);
    return 0;
}

/* ------------------------------------------------------------------ options */

/* One command line being taken apart: options (--name VALUE or --name=VALUE)
 * anywhere before "--", the rest positional. */
typedef struct args_t {
    const char *cmd;
    int argc;
    const char *const *argv;
    int i;
    const char *pos[4];
    int npos;
    int help;
} args_t;

typedef enum { OPT_END, OPT_POS, OPT_NAMED, OPT_ERR } opt_kind_e;

/* Next item of a: OPT_NAMED with *name (and *val when want_value says the
 * option takes one), OPT_POS when a positional was stored, OPT_END, or
 * OPT_ERR after printing a usage error. want_value(name) is 1 for options
 * with a value, 0 for flags, -1 for unknown options. */
static opt_kind_e next_opt(args_t *a, int (*want_value)(const char *), const char **name,
                           const char **val, int *rc)
{
    const char *s, *eq;
    static char namebuf[64];
    int w;
    if (a->i >= a->argc)
        return OPT_END;
    s = a->argv[a->i++];
    if (!strcmp(s, "--")) {
        while (a->i < a->argc) {
            if (a->npos >= (int)(sizeof(a->pos) / sizeof(a->pos[0]))) {
                *rc = usage_error(a->cmd, "too many arguments");
                return OPT_ERR;
            }
            a->pos[a->npos++] = a->argv[a->i++];
        }
        return OPT_END;
    }
    if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
        a->help = 1;
        return OPT_NAMED;
    }
    if (strncmp(s, "--", 2) != 0 || !s[2]) {
        if (a->npos >= (int)(sizeof(a->pos) / sizeof(a->pos[0]))) {
            *rc = usage_error(a->cmd, "too many arguments");
            return OPT_ERR;
        }
        a->pos[a->npos++] = s;
        return OPT_POS;
    }
    eq = strchr(s, '=');
    if ((eq ? (size_t)(eq - s) : strlen(s)) >= sizeof(namebuf)) {
        *rc = usage_error(a->cmd, "unknown option '%.40s...'", s);
        return OPT_ERR;
    }
    apr_cpystrn(namebuf, s, eq ? (apr_size_t)(eq - s) + 1 : sizeof(namebuf));
    *name = namebuf;
    w = want_value(namebuf);
    if (w < 0) {
        *rc = usage_error(a->cmd, "unknown option '%s'", namebuf);
        return OPT_ERR;
    }
    if (!w) {
        if (eq) {
            *rc = usage_error(a->cmd, "option %s takes no value", namebuf);
            return OPT_ERR;
        }
        *val = NULL;
        return OPT_NAMED;
    }
    if (eq)
        *val = eq + 1;
    else if (a->i < a->argc)
        *val = a->argv[a->i++];
    else {
        *rc = usage_error(a->cmd, "option %s needs a value", namebuf);
        return OPT_ERR;
    }
    return OPT_NAMED;
}

/* A whole decimal number (optionally negative) in [min, max], or a usage error. */
static int opt_number(const char *cmd, const char *opt, const char *v, long long min,
                      long long max, long long *out, int *rc)
{
    char *end;
    long long n;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < min || n > max) {
        *rc = usage_error(cmd, "%s wants a whole number from %lld to %lld, not '%.40s'", opt, min,
                          max, v);
        return 0;
    }
    *out = n;
    return 1;
}

/* ------------------------------------------------------------------ files */

/* Whole file (or stdin for "-") into pool memory, at most max bytes.
 * 0 on success; otherwise -1 (cannot open/read, *why set) or -2 (too large). */
static int read_all(const char *path, size_t max, char **out, size_t *len, const char **why,
                    apr_pool_t *p)
{
    apr_file_t *f;
    char *buf = apr_palloc(p, max + 1);
    apr_size_t n, got = 0;
    apr_status_t rv;
    char eb[120];
    if (!strcmp(path, "-"))
        rv = apr_file_open_stdin(&f, p);
    else
        rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, p);
    if (rv != APR_SUCCESS) {
        *why = apr_pstrdup(p, apr_strerror(rv, eb, sizeof(eb)));
        return -1;
    }
    while (got < max + 1) {
        n = max + 1 - got;
        rv = apr_file_read(f, buf + got, &n);
        got += n;
        if (rv == APR_EOF || (rv == APR_SUCCESS && n == 0))
            break;
        if (rv != APR_SUCCESS) {
            *why = apr_pstrdup(p, apr_strerror(rv, eb, sizeof(eb)));
            apr_file_close(f);
            return -1;
        }
    }
    apr_file_close(f);
    if (got > max)
        return -2;
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

/* read_all with the reason printed for cmd; 0 on success, else 2. */
static int read_input(const char *cmd, const char *what, const char *path, size_t max,
                      char **out, size_t *len, apr_pool_t *p)
{
    const char *why = "";
    int r = read_all(path, max, out, len, &why, p);
    const char *name = strcmp(path, "-") ? path : "stdin";
    if (r == -1)
        fail_msg(cmd, "cannot read %s %.200s: %s", what, name, why);
    else if (r == -2)
        fail_msg(cmd, "%s %.200s is larger than %lu bytes", what, name, (unsigned long)max);
    return r ? 2 : 0;
}

/* ------------------------------------------------------------------ keys */

static const char *kty_name(ajw_kty_e k)
{
    switch (k) {
    case AJW_KTY_RSA: return "RSA";
    case AJW_KTY_EC:  return "EC";
    case AJW_KTY_OKP: return "OKP";
    default:          return "?";
    }
}

static const char *crv_name(ajw_crv_e c)
{
    switch (c) {
    case AJW_CRV_P256:    return "P-256";
    case AJW_CRV_P384:    return "P-384";
    case AJW_CRV_P521:    return "P-521";
    case AJW_CRV_ED25519: return "Ed25519";
    case AJW_CRV_ED448:   return "Ed448";
    default:              return "-";
    }
}

static void print_key(const ajw_key_t *k)
{
    printf("kid=%s kty=%s crv=%s bits=%d alg=%s use=%s verify=%s\n",
           k->kid ? k->kid : "-", kty_name(k->kty), crv_name(k->crv), k->bits,
           k->alg_name ? k->alg_name : "-", k->use ? k->use : "-", k->can_verify ? "yes" : "no");
}

/* Parse a JWKS document; NULL after printing the reason. */
static ajw_keyset_t *parse_keys(const char *cmd, const char *name, const char *doc, size_t len,
                                apr_pool_t *p)
{
    ajw_keyset_t *ks = NULL;
    ajw_error_t err;
    if (ajw_keyset_parse(&ks, doc, len, AJW_MAX_JWKS_LEN_DEFAULT, p, &err) != AJW_OK) {
        fail_msg(cmd, "%.200s: not a usable JWKS: %s: %s", name, ajw_reason_name(err.code),
                 err.text);
        return NULL;
    }
    return ks;
}

static ajw_keyset_t *load_keys(const char *cmd, const char *path, apr_pool_t *p)
{
    char *doc;
    size_t len;
    ajw_keyset_t *ks;
    int i;
    if (read_input(cmd, "JWKS file", path, AJW_MAX_JWKS_LEN_DEFAULT, &doc, &len, p))
        return NULL;
    if (!(ks = parse_keys(cmd, path, doc, len, p)))
        return NULL;
    for (i = 0; i < ks->notes->nelts; i++)
        fprintf(stderr, "note: %s\n", APR_ARRAY_IDX(ks->notes, i, const char *));
    return ks;
}

static int no_options(const char *name)
{
    (void)name;
    return -1;
}

static int cmd_keys(int argc, const char *const *argv, apr_pool_t *p)
{
    args_t a = { "keys", argc, argv, 0, { NULL }, 0, 0 };
    const char *name, *val;
    ajw_keyset_t *ks;
    opt_kind_e k;
    int i, rc = 2;
    while ((k = next_opt(&a, no_options, &name, &val, &rc)) != OPT_END) {
        if (k == OPT_ERR)
            return rc;
    }
    if (a.help)
        return cmd_help(1, &a.cmd);
    if (a.npos != 1)
        return usage_error("keys", "expects one JWKS FILE, got %d arguments", a.npos);
    if (!(ks = load_keys("keys", a.pos[0], p)))
        return 2;
    for (i = 0; i < ks->keys->nelts; i++)
        print_key(APR_ARRAY_IDX(ks->keys, i, const ajw_key_t *));
    printf("%d usable key(s)\n", ks->keys->nelts);
    return ks->keys->nelts ? 0 : 1;
}

/* ------------------------------------------------------------------ verify */

static void push(apr_array_header_t **a, const char *v, apr_pool_t *p)
{
    if (!*a)
        *a = apr_array_make(p, 2, sizeof(const char *));
    APR_ARRAY_PUSH(*a, const char *) = v;
}

static int verify_opt(const char *name)
{
    static const char *const with_value[] = {
        "--iss", "--aud", "--alg", "--typ", "--require", "--leeway", "--max-age", "--now", NULL
    };
    int i;
    for (i = 0; with_value[i]; i++) {
        if (!strcmp(name, with_value[i]))
            return 1;
    }
    return -1;
}

/* An asymmetric algorithm name, or a usage error. */
static int parse_alg(const char *cmd, const char *v, ajw_alg_e *out, int *rc)
{
    ajw_alg_e alg = ajw_alg_from_name(v, strlen(v));
    if (!(AJW_ALG_BIT(alg) & AJW_ALGS_DEFAULT)) {
        *rc = usage_error(cmd, "--alg '%.20s' is not one of RS256 RS384 RS512 PS256 PS384 PS512 "
                          "ES256 ES384 ES512 EdDSA%s", v,
                          alg == AJW_ALG_UNKNOWN ? "" : " (none and HS* never verify with a JWKS)");
        return 0;
    }
    *out = alg;
    return 1;
}

static int verify_apply_opt(const char *o, const char *v, ajw_policy_t *pol, long long *now,
                            unsigned *algs, int *rc, apr_pool_t *p)
{
    ajw_alg_e alg;
    if (!strcmp(o, "--iss")) push(&pol->issuers, v, p);
    else if (!strcmp(o, "--aud")) push(&pol->audiences, v, p);
    else if (!strcmp(o, "--require")) push(&pol->required, v, p);
    else if (!strcmp(o, "--typ")) pol->typ = v;
    else if (!strcmp(o, "--leeway"))
        return opt_number("verify", o, v, 0, 3600, &pol->leeway, rc);
    else if (!strcmp(o, "--max-age"))
        return opt_number("verify", o, v, 0, 10LL * 365 * 86400, &pol->max_age, rc);
    else if (!strcmp(o, "--now"))
        return opt_number("verify", o, v, 0, 253402300799LL, now, rc);
    else if (!strcmp(o, "--alg")) {
        if (!parse_alg("verify", v, &alg, rc))
            return 0;
        *algs |= AJW_ALG_BIT(alg);
    }
    return 1;
}

/* Does s look like a compact JWS/JWE (base64url parts joined by dots)? */
static int looks_like_token(const char *s)
{
    int dots = 0;
    for (; *s; s++) {
        if (*s == '.')
            dots++;
        else if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
            return 0;
    }
    return dots == 2 || dots == 4;
}

/* The token from an argument: "-" = stdin, an existing file, or the token
 * itself. 0 on success, else 2 after printing why (never the argument when
 * it could be a token). */
static int token_arg(const char *arg, char **tok, size_t *len, apr_pool_t *p)
{
    apr_finfo_t fi;
    if (!strcmp(arg, "-"))
        return read_input("verify", "token from", "-", TOKEN_MAX, tok, len, p);
    if (apr_stat(&fi, arg, APR_FINFO_TYPE, p) == APR_SUCCESS)
        return read_input("verify", "token file", arg, TOKEN_MAX, tok, len, p);
    if (looks_like_token(arg)) {
        *tok = apr_pstrdup(p, arg);
        *len = strlen(arg);
        return 0;
    }
    if (strlen(arg) > 40 && !strchr(arg, '/'))
        fail_msg("verify", "TOKEN (%lu bytes) is neither a compact JWS "
                 "(base64url header.payload.signature) nor a readable file",
                 (unsigned long)strlen(arg));
    else
        fail_msg("verify", "TOKEN '%s' is neither a readable file nor a compact JWS "
                 "(header.payload.signature)", arg);
    return 2;
}

static int cmd_verify(int argc, const char *const *argv, apr_pool_t *p)
{
    args_t a = { "verify", argc, argv, 0, { NULL }, 0, 0 };
    ajw_policy_t pol;
    ajw_error_t err;
    ajw_jws_t *t = NULL;
    ajw_keyset_t *ks;
    const ajw_keyset_t *sets[1];
    const ajw_key_t *used = NULL;
    long long now = (long long)apr_time_sec(apr_time_now());
    unsigned algs = 0;
    const char *name, *val;
    char *tok;
    size_t len;
    ajw_reason_e r;
    opt_kind_e k;
    int rc = 2;

    ajw_policy_init(&pol);
    while ((k = next_opt(&a, verify_opt, &name, &val, &rc)) != OPT_END) {
        if (k == OPT_ERR)
            return rc;
        if (k == OPT_NAMED && !a.help && !verify_apply_opt(name, val, &pol, &now, &algs, &rc, p))
            return rc;
    }
    if (a.help)
        return cmd_help(1, &a.cmd);
    if (a.npos != 2)
        return usage_error("verify", "expects a JWKS FILE and a TOKEN (the token, a file or -), "
                           "got %d argument%s", a.npos, a.npos == 1 ? "" : "s");
    if (algs)
        pol.algs = algs;
    if (!(ks = load_keys("verify", a.pos[0], p)))
        return 2;
    if (token_arg(a.pos[1], &tok, &len, p))
        return 2;
    while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
        tok[--len] = '\0';
    sets[0] = ks;
    r = ajw_jws_parse(&t, tok, len, &pol, p, &err);
    if (r == AJW_OK)
        r = ajw_jws_verify(t, sets, 1, &used, &err);
    if (r == AJW_OK)   /* the claims as the module checks them: their flat document */
        r = ajw_claims_check(ajw_doc_make(t->claims, p, NULL), &pol, now, &err);
    if (r != AJW_OK) {
        printf("rejected: %s: %s\n", ajw_reason_name(r), err.text);
        return 1;
    }
    printf("valid: alg=%s kid=%s\n%s\n", ajw_alg_name(t->alg), used && used->kid ? used->kid : "-",
           ajw_json_dump(t->claims, p));
    return 0;
}

/* ------------------------------------------------------------------ fetch */

static int fetch_opt(const char *name)
{
    return (!strcmp(name, "--ca") || !strcmp(name, "--timeout")) ? 1 : -1;
}

static void print_fetch_answer(const ajw_fetch_res_t *res, const char *scheme, const char *ca)
{
    if (!strcasecmp(scheme, "https"))
        printf("tls: ok (peer certificate and host name verified against %s)\n",
               ca ? ca : "the system trust store");
    else if (!strcasecmp(scheme, "http"))
        printf("tls: none (plain http to a loopback host)\n");
    else
        printf("tls: none (local file)\n");
    printf("status: %d\n", res->status);
    printf("etag: %s\n", res->etag ? res->etag : "none");
    if (res->max_age > 0)
        printf("cache-control max-age: %lld s (the refresh interval is shortened to this, "
               "never below AuthJWKSMinRefreshInterval)\n", res->max_age);
    else if (res->max_age == 0)
        printf("cache-control max-age: 0 / no-cache (refresh as early as "
               "AuthJWKSMinRefreshInterval allows)\n");
    else
        printf("cache-control max-age: none (AuthJWKSRefreshInterval applies)\n");
    printf("body: %lu bytes\n", (unsigned long)res->len);
}

static int cmd_fetch(int argc, const char *const *argv, apr_pool_t *p)
{
    args_t a = { "fetch", argc, argv, 0, { NULL }, 0, 0 };
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    ajw_fetcher_t *f;
    ajw_keyset_t *ks;
    const char *name, *val, *ca = NULL, *why, *scheme = "", *path = NULL;
    long long timeout = 10;
    apr_finfo_t fi;
    apr_status_t rv;
    opt_kind_e k;
    int i, rc = 2;

    while ((k = next_opt(&a, fetch_opt, &name, &val, &rc)) != OPT_END) {
        if (k == OPT_ERR)
            return rc;
        if (k != OPT_NAMED || a.help)
            continue;
        if (!strcmp(name, "--ca"))
            ca = val;
        else if (!opt_number("fetch", name, val, 1, 300, &timeout, &rc))
            return rc;
    }
    if (a.help)
        return cmd_help(1, &a.cmd);
    if (a.npos != 1)
        return usage_error("fetch", "expects one URL, got %d arguments", a.npos);
    if ((why = ajw_url_problem(a.pos[0], &scheme, &path, p)) != NULL) {
        fail_msg("fetch", "the module would refuse this URL: %s", why);
        return 2;
    }
    if (ca && (apr_stat(&fi, ca, APR_FINFO_TYPE, p) != APR_SUCCESS || fi.filetype != APR_REG)) {
        fail_msg("fetch", "--ca %.200s: no such file", ca);
        return 2;
    }
    memset(&req, 0, sizeof(req));
    req.url = a.pos[0];
    req.ca_file = ca;
    req.timeout = apr_time_from_sec(timeout);
    req.max_size = AJW_MAX_JWKS_LEN_DEFAULT;
    if (ajw_curl_global_init() != APR_SUCCESS) {
        fail_msg("fetch", "libcurl initialisation failed");
        return 2;
    }
    f = ajw_curl_fetcher(p);
    printf("url: %s\n", req.url);
    rv = f->fetch(f, &req, &res, p);
    if (rv != APR_SUCCESS) {
        const char *e = res.error ? res.error : "unknown error";
        if (!strcasecmp(scheme, "https") && (strstr(e, "SSL") || strstr(e, "TLS")
                                             || strstr(e, "certificate")))
            printf("tls: failed\n");
        fail_msg("fetch", "no answer: %s%s", e,
                 rv == APR_TIMEUP ? " (--timeout to wait longer)" : "");
        return 2;
    }
    print_fetch_answer(&res, scheme, ca);
    if (res.status != 200) {
        printf("result: HTTP %d is not a JWKS: the module would keep its last good keys "
               "and retry with backoff\n", res.status);
        return 1;
    }
    if (!(ks = parse_keys("fetch", "the document", res.body, res.len, p))) {
        printf("result: not a JWKS: the module would keep its last good keys\n");
        return 1;
    }
    for (i = 0; i < ks->keys->nelts; i++)
        print_key(APR_ARRAY_IDX(ks->keys, i, const ajw_key_t *));
    for (i = 0; i < ks->notes->nelts; i++)
        printf("note: %s\n", APR_ARRAY_IDX(ks->notes, i, const char *));
    printf("%d usable key(s)\n", ks->keys->nelts);
    return ks->keys->nelts ? 0 : 1;
}

/* ------------------------------------------------------------------ status */

static int status_opt(const char *name)
{
    return (!strcmp(name, "--jwks") || !strcmp(name, "--list") || !strcmp(name, "--ca")
            || !strcmp(name, "--timeout")) ? 1 : -1;
}

/* The Status List Token at uri, fetched like the module does: 0, or 2 after
 * saying why. */
static int fetch_list(const char *uri, const char *ca, long long timeout, char **doc,
                      size_t *len, apr_pool_t *p)
{
    ajw_fetch_req_t req;
    ajw_fetch_res_t res;
    ajw_fetcher_t *f;
    const char *why, *scheme = "", *path = NULL;
    if ((why = ajw_url_problem(uri, &scheme, &path, p)) != NULL || !strcasecmp(scheme, "file")) {
        fail_msg("status", "the module would not fetch this uri: %s",
                 why ? why : "file:// is not a place status lists are fetched from");
        return 2;
    }
    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    req.url = uri;
    req.ca_file = ca;
    req.accept = AJW_STATUSLIST_MEDIA_TYPE;
    req.timeout = apr_time_from_sec(timeout);
    req.max_size = AJW_STATUSLIST_MAX_JWT_DEFAULT;
    if (ajw_curl_global_init() != APR_SUCCESS || !(f = ajw_curl_fetcher(p))) {
        fail_msg("status", "libcurl initialisation failed");
        return 2;
    }
    if (f->fetch(f, &req, &res, p) != APR_SUCCESS) {
        fail_msg("status", "no answer from the status list: %s",
                 res.error ? res.error : "unknown error");
        return 2;
    }
    if (res.status != 200) {
        fail_msg("status", "the status list answered HTTP %d", res.status);
        return 2;
    }
    *doc = (char *)res.body;
    *len = res.len;
    return 0;
}

static int cmd_status(int argc, const char *const *argv, apr_pool_t *p)
{
    args_t a = { "status", argc, argv, 0, { NULL }, 0, 0 };
    const char *name, *val, *jwks = NULL, *list = NULL, *ca = NULL, *uri = NULL;
    long long timeout = 10;
    unsigned long long idx = 0;
    char *tok = NULL, *doc = NULL, nbuf[24];
    size_t len = 0, dlen = 0;
    ajw_policy_t pol;
    ajw_error_t err;
    ajw_jws_t *t = NULL;
    ajw_keyset_t *ks;
    ajw_statuslist_t *l = NULL;
    ajw_reason_e r;
    unsigned st = 0;
    opt_kind_e k;
    int rc = 2, ref;

    while ((k = next_opt(&a, status_opt, &name, &val, &rc)) != OPT_END) {
        if (k == OPT_ERR)
            return rc;
        if (k != OPT_NAMED || a.help)
            continue;
        if (!strcmp(name, "--jwks"))
            jwks = val;
        else if (!strcmp(name, "--list"))
            list = val;
        else if (!strcmp(name, "--ca"))
            ca = val;
        else if (!opt_number("status", name, val, 1, 300, &timeout, &rc))
            return rc;
    }
    if (a.help)
        return cmd_help(1, &a.cmd);
    if (a.npos != 1)
        return usage_error("status", "expects one TOKEN, got %d arguments", a.npos);
    if (token_arg(a.pos[0], &tok, &len, p))
        return 2;
    ajw_policy_init(&pol);
    pol.max_token_len = TOKEN_MAX;
    if ((r = ajw_jws_parse(&t, tok, len, &pol, p, &err)) != AJW_OK) {
        printf("token: not readable: %s: %s\n", ajw_reason_name(r), err.text);
        return 1;
    }
    ref = ajw_status_ref(ajw_doc_make(t->claims, p, NULL), &idx, &uri, &err);
    if (ref < 0) {
        printf("reference: malformed: %s\n", err.text);
        return 1;
    }
    if (ref == 0) {
        printf("reference: none (no status.status_list claim)\n");
        return 1;
    }
    printf("reference: idx=%llu uri=%s\n", idx, uri);
    if (!jwks) {
        printf("status: not checked (give --jwks FILE of the issuer's keys)\n");
        return 0;
    }
    if (!(ks = load_keys("status", jwks, p)))
        return 2;
    if (list ? read_input("status", "status list file", list, AJW_STATUSLIST_MAX_JWT_DEFAULT,
                          &doc, &dlen, p)
             : fetch_list(uri, ca, timeout, &doc, &dlen, p))
        return 2;
    r = ajw_statuslist_parse(&l, doc, dlen, uri, ks, 0, (long long)apr_time_sec(apr_time_now()),
                             60, 0, 0, p, &err);
    if (r != AJW_OK) {
        printf("status: unknown: the status list is refused: %s: %s\n", ajw_reason_name(r),
               err.text);
        return 1;
    }
    printf("list: bits=%u entries=%llu iat=%lld exp=%lld ttl=%lld\n", l->bits,
           (unsigned long long)l->len * 8u / l->bits, l->iat, l->exp, l->ttl);
    if (ajw_statuslist_get(l, idx, &st) != 0) {
        printf("status: refused: idx %llu is beyond the list\n", idx);
        return 1;
    }
    printf("status: %s (%u)\n", ajw_statuslist_status_name(st, nbuf), st);
    return st == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ mint */

/* Everything OpenSSL allocates for one mint, freed in one place. */
typedef struct mint_ctx_t {
    EVP_PKEY *pkey;
    OSSL_PARAM_BLD *bld;
    OSSL_PARAM *params;
    EVP_PKEY_CTX *pctx;
    BIGNUM *bn[8];
    int nbn;
} mint_ctx_t;

static void mint_ctx_free(mint_ctx_t *m)
{
    int i;
    EVP_PKEY_free(m->pkey);
    OSSL_PARAM_free(m->params);
    OSSL_PARAM_BLD_free(m->bld);
    EVP_PKEY_CTX_free(m->pctx);
    for (i = 0; i < m->nbn; i++)
        BN_clear_free(m->bn[i]);
    ERR_clear_error();
}

/* Decode the base64url JWK member `name` (required or not). 1 on success or
 * when absent and optional (*out NULL); 0 after setting *why. */
static int jwk_bytes(const json_t *jwk, const char *name, int required, unsigned char **out,
                     size_t *outlen, const char **why, apr_pool_t *p)
{
    size_t len;
    const char *s = ajw_json_get_string(jwk, name, &len);
    *out = NULL;
    *outlen = 0;
    if (!s) {
        if (required)
            *why = apr_psprintf(p, "the JWK has no \"%s\" member%s", name,
                                !strcmp(name, "d") ? " (mint needs a private JWK)" : "");
        return !required;
    }
    if (ajw_b64url_decode(out, outlen, s, len, p) != APR_SUCCESS || !*outlen) {
        *why = apr_psprintf(p, "the JWK member \"%s\" is not valid base64url", name);
        return 0;
    }
    return 1;
}

/* Push JWK member `name` as a BIGNUM parameter `param`. */
static int push_bn(mint_ctx_t *m, const json_t *jwk, const char *name, const char *param,
                   int required, const char **why, apr_pool_t *p)
{
    unsigned char *b;
    size_t len;
    BIGNUM *bn;
    if (!jwk_bytes(jwk, name, required, &b, &len, why, p))
        return 0;
    if (!b)
        return 1;
    bn = BN_bin2bn(b, (int)len, NULL);
    OPENSSL_cleanse(b, len);
    if (!bn || m->nbn >= (int)(sizeof(m->bn) / sizeof(m->bn[0]))) {
        BN_free(bn);
        *why = "out of memory";
        return 0;
    }
    m->bn[m->nbn++] = bn;
    if (!OSSL_PARAM_BLD_push_BN(m->bld, param, bn)) {
        *why = "OpenSSL parameter setup failed";
        return 0;
    }
    return 1;
}

/* EVP_PKEY of `type` from the parameters pushed so far. */
static int key_fromdata(mint_ctx_t *m, const char *type, const char **why)
{
    if (!(m->params = OSSL_PARAM_BLD_to_param(m->bld))
        || !(m->pctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL))
        || EVP_PKEY_fromdata_init(m->pctx) != 1) {
        *why = "OpenSSL key setup failed";
        return 0;
    }
    if (EVP_PKEY_fromdata(m->pctx, &m->pkey, EVP_PKEY_KEYPAIR, m->params) != 1 || !m->pkey) {
        *why = !strcmp(type, "RSA") ? "OpenSSL refused the RSA private key"
                                    : "OpenSSL refused the EC private key";
        return 0;
    }
    return 1;
}

static int rsa_private(mint_ctx_t *m, const json_t *jwk, const char **why, apr_pool_t *p)
{
    static const char *const crt[][2] = {
        { "p", OSSL_PKEY_PARAM_RSA_FACTOR1 }, { "q", OSSL_PKEY_PARAM_RSA_FACTOR2 },
        { "dp", OSSL_PKEY_PARAM_RSA_EXPONENT1 }, { "dq", OSSL_PKEY_PARAM_RSA_EXPONENT2 },
        { "qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1 },
    };
    size_t i;
    int have = 0;
    if (!push_bn(m, jwk, "n", OSSL_PKEY_PARAM_RSA_N, 1, why, p)
        || !push_bn(m, jwk, "e", OSSL_PKEY_PARAM_RSA_E, 1, why, p)
        || !push_bn(m, jwk, "d", OSSL_PKEY_PARAM_RSA_D, 1, why, p))
        return 0;
    for (i = 0; i < sizeof(crt) / sizeof(crt[0]); i++)
        have += ajw_json_get_string(jwk, crt[i][0], NULL) != NULL;
    if (have == 5) {        /* all CRT members or none: OpenSSL wants the full set */
        for (i = 0; i < sizeof(crt) / sizeof(crt[0]); i++) {
            if (!push_bn(m, jwk, crt[i][0], crt[i][1], 1, why, p))
                return 0;
        }
    }
    return key_fromdata(m, "RSA", why);
}

static int ec_private(mint_ctx_t *m, const json_t *jwk, const char *crv, const char **why,
                      apr_pool_t *p)
{
    const char *group = !strcmp(crv, "P-256") ? "prime256v1"
                        : !strcmp(crv, "P-384") ? "secp384r1" : "secp521r1";
    size_t fb = !strcmp(crv, "P-256") ? 32 : !strcmp(crv, "P-384") ? 48 : 66;
    unsigned char *x, *y, *pub;
    size_t xl, yl;
    if (!jwk_bytes(jwk, "x", 1, &x, &xl, why, p) || !jwk_bytes(jwk, "y", 1, &y, &yl, why, p))
        return 0;
    if (xl != fb || yl != fb) {
        *why = apr_psprintf(p, "the JWK's x and y must be %lu bytes each for %s",
                            (unsigned long)fb, crv);
        return 0;
    }
    pub = apr_palloc(p, 1 + 2 * fb);
    pub[0] = 0x04;
    memcpy(pub + 1, x, fb);
    memcpy(pub + 1 + fb, y, fb);
    if (!OSSL_PARAM_BLD_push_utf8_string(m->bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0)
        || !OSSL_PARAM_BLD_push_octet_string(m->bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * fb)) {
        *why = "OpenSSL parameter setup failed";
        return 0;
    }
    if (!push_bn(m, jwk, "d", OSSL_PKEY_PARAM_PRIV_KEY, 1, why, p))
        return 0;
    return key_fromdata(m, "EC", why);
}

static int okp_private(mint_ctx_t *m, const json_t *jwk, const char *crv, const char **why,
                       apr_pool_t *p)
{
    int type = !strcmp(crv, "Ed25519") ? EVP_PKEY_ED25519 : EVP_PKEY_ED448;
    size_t want = type == EVP_PKEY_ED25519 ? 32 : 57;
    unsigned char *d;
    size_t dl;
    if (!jwk_bytes(jwk, "d", 1, &d, &dl, why, p))
        return 0;
    if (dl != want) {
        OPENSSL_cleanse(d, dl);
        *why = apr_psprintf(p, "the JWK's d must be %lu bytes for %s", (unsigned long)want, crv);
        return 0;
    }
    m->pkey = EVP_PKEY_new_raw_private_key(type, NULL, d, dl);
    OPENSSL_cleanse(d, dl);
    if (!m->pkey) {
        *why = "OpenSSL refused the OKP private key";
        return 0;
    }
    return 1;
}

/* The private key of a JWK into m->pkey, its algorithm family checked
 * against alg (AJW_ALG_UNKNOWN: pick the default for the key into *alg). */
static int jwk_private(mint_ctx_t *m, const json_t *jwk, ajw_alg_e *alg, const char **why,
                       apr_pool_t *p)
{
    const char *kty = ajw_json_get_string(jwk, "kty", NULL);
    const char *crv = ajw_json_get_string(jwk, "crv", NULL);
    ajw_alg_e def;
    int ok;
    if (!kty) {
        *why = "the JWK has no kty";
        return 0;
    }
    if (!(m->bld = OSSL_PARAM_BLD_new())) {
        *why = "out of memory";
        return 0;
    }
    if (!strcmp(kty, "RSA")) {
        def = AJW_ALG_RS256;
        ok = rsa_private(m, jwk, why, p);
    }
    else if (!strcmp(kty, "EC") && crv
             && (!strcmp(crv, "P-256") || !strcmp(crv, "P-384") || !strcmp(crv, "P-521"))) {
        def = crv[2] == '2' ? AJW_ALG_ES256 : crv[2] == '3' ? AJW_ALG_ES384 : AJW_ALG_ES512;
        ok = ec_private(m, jwk, crv, why, p);
    }
    else if (!strcmp(kty, "OKP") && crv && (!strcmp(crv, "Ed25519") || !strcmp(crv, "Ed448"))) {
        def = AJW_ALG_EDDSA;
        ok = okp_private(m, jwk, crv, why, p);
    }
    else {
        *why = apr_psprintf(p, "unsupported key type kty=%.10s%s%.10s (RSA, EC P-256/384/521, "
                            "OKP Ed25519/Ed448)", kty, crv ? " crv=" : "", crv ? crv : "");
        return 0;
    }
    if (!ok)
        return 0;
    if (*alg == AJW_ALG_UNKNOWN)
        *alg = def;
    else if ((def == AJW_ALG_RS256) != (*alg >= AJW_ALG_RS256 && *alg <= AJW_ALG_PS512)
             || (def != AJW_ALG_RS256 && *alg != def)) {
        *why = apr_psprintf(p, "--alg %s does not fit this %s key (use %s%s)", ajw_alg_name(*alg),
                            kty, ajw_alg_name(def), def == AJW_ALG_RS256 ? " or RS*/PS*" : "");
        return 0;
    }
    return 1;
}

static const EVP_MD *alg_md(ajw_alg_e alg)
{
    switch (alg) {
    case AJW_ALG_RS256: case AJW_ALG_PS256: case AJW_ALG_ES256: return EVP_sha256();
    case AJW_ALG_RS384: case AJW_ALG_PS384: case AJW_ALG_ES384: return EVP_sha384();
    case AJW_ALG_RS512: case AJW_ALG_PS512: case AJW_ALG_ES512: return EVP_sha512();
    default: return NULL;      /* EdDSA: the signature hashes internally */
    }
}

/* DER ECDSA signature → raw r||s, each left-padded to fb bytes (RFC 7518 §3.4). */
static int ecdsa_raw(unsigned char *der, size_t derlen, size_t fb, unsigned char **out,
                     size_t *outlen, apr_pool_t *p)
{
    const unsigned char *q = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &q, (long)derlen);
    const BIGNUM *r, *s;
    unsigned char *raw;
    int ok = 0;
    if (!es)
        return 0;
    ECDSA_SIG_get0(es, &r, &s);
    raw = apr_palloc(p, 2 * fb);
    if (BN_bn2binpad(r, raw, (int)fb) == (int)fb && BN_bn2binpad(s, raw + fb, (int)fb) == (int)fb) {
        *out = raw;
        *outlen = 2 * fb;
        ok = 1;
    }
    ECDSA_SIG_free(es);
    return ok;
}

/* Sign input with key under alg; the JWS signature bytes into *sig. */
static int jws_sign(EVP_PKEY *key, ajw_alg_e alg, const char *input, size_t len,
                    unsigned char **sig, size_t *siglen, apr_pool_t *p)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *buf = NULL;
    size_t n = 0;
    int ok = 0;
    if (!mctx || EVP_DigestSignInit(mctx, &pctx, alg_md(alg), NULL, key) != 1)
        goto cleanup;
    if (alg >= AJW_ALG_PS256 && alg <= AJW_ALG_PS512
        && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1
            || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, alg_md(alg)) != 1))
        goto cleanup;
    if (EVP_DigestSign(mctx, NULL, &n, (const unsigned char *)input, len) != 1)
        goto cleanup;
    buf = apr_palloc(p, n);
    if (EVP_DigestSign(mctx, buf, &n, (const unsigned char *)input, len) != 1)
        goto cleanup;
    if (alg >= AJW_ALG_ES256 && alg <= AJW_ALG_ES512) {
        size_t fb = alg == AJW_ALG_ES256 ? 32 : alg == AJW_ALG_ES384 ? 48 : 66;
        ok = ecdsa_raw(buf, n, fb, sig, siglen, p);
    }
    else {
        *sig = buf;
        *siglen = n;
        ok = 1;
    }
cleanup:
    EVP_MD_CTX_free(mctx);
    ERR_clear_error();
    return ok;
}

/* Check the minted token with the module's verifier and the JWK's public
 * part. 0 ok; 1 signature does not verify (key mismatch: error); -1 the
 * module would not use the key (a note only). */
static int self_check(const char *jwk_text, size_t jwk_len, const char *tok, const char **why,
                      apr_pool_t *p)
{
    ajw_keyset_t *ks = NULL;
    const ajw_keyset_t *sets[1];
    ajw_policy_t pol;
    ajw_error_t err;
    ajw_jws_t *t = NULL;
    const char *doc = apr_pstrcat(p, "{\"keys\":[", apr_pstrmemdup(p, jwk_text, jwk_len), "]}",
                                  NULL);
    ajw_policy_init(&pol);
    pol.require_exp = 0;
    if (ajw_keyset_parse(&ks, doc, strlen(doc), AJW_MAX_JWKS_LEN_DEFAULT, p, &err) != AJW_OK
        || ks->keys->nelts == 0) {
        /* the last note names why the key was skipped (an earlier one may
         * only say that the private members were ignored) */
        *why = ks && ks->notes->nelts
               ? APR_ARRAY_IDX(ks->notes, ks->notes->nelts - 1, const char *)
               : apr_pstrdup(p, err.text);
        return -1;
    }
    sets[0] = ks;
    if (ajw_jws_parse(&t, tok, strlen(tok), &pol, p, &err) != AJW_OK
        || ajw_jws_verify(t, sets, 1, NULL, &err) != AJW_OK) {
        *why = apr_psprintf(p, "%s: %s", ajw_reason_name(err.code), err.text);
        return err.code == AJW_R_BAD_SIGNATURE ? 1 : -1;
    }
    return 0;
}

static int mint_opt(const char *name)
{
    if (!strcmp(name, "--alg") || !strcmp(name, "--kid") || !strcmp(name, "--typ"))
        return 1;
    return !strcmp(name, "--no-kid") ? 0 : -1;
}

/* The protected header, compact JSON, as base64url. */
static const char *mint_header(ajw_alg_e alg, const char *kid, const char *typ, apr_pool_t *p)
{
    json_t *h = ajw_json_pool_own(json_object(), p);
    json_object_set_new(h, "alg", json_string(ajw_alg_name(alg)));
    if (typ && *typ)
        json_object_set_new(h, "typ", json_string(typ));
    if (kid)
        json_object_set_new(h, "kid", json_string(kid));
    {
        const char *s = ajw_json_dump(h, p);
        return ajw_b64url_encode((const unsigned char *)s, strlen(s), p);
    }
}

static int cmd_mint(int argc, const char *const *argv, apr_pool_t *p)
{
    args_t a = { "mint", argc, argv, 0, { NULL }, 0, 0 };
    mint_ctx_t m;
    ajw_alg_e alg = AJW_ALG_UNKNOWN;
    ajw_error_t err;
    json_t *jwk, *claims;
    const char *name, *val, *kid = NULL, *typ = "JWT", *why = "", *jwk_alg, *input;
    char *key_text, *claims_text;
    size_t key_len, claims_len, siglen = 0;
    unsigned char *sig = NULL;
    int no_kid = 0, kid_set = 0, rc = 2, chk;
    opt_kind_e k;

    while ((k = next_opt(&a, mint_opt, &name, &val, &rc)) != OPT_END) {
        if (k == OPT_ERR)
            return rc;
        if (k != OPT_NAMED || a.help)
            continue;
        if (!strcmp(name, "--alg") && !parse_alg("mint", val, &alg, &rc))
            return rc;
        if (!strcmp(name, "--kid")) {
            kid = val;
            kid_set = 1;
        }
        else if (!strcmp(name, "--typ"))
            typ = val;
        else if (!strcmp(name, "--no-kid"))
            no_kid = 1;
    }
    if (a.help)
        return cmd_help(1, &a.cmd);
    if (no_kid && kid_set)
        return usage_error("mint", "--kid and --no-kid exclude each other");
    if (a.npos != 2)
        return usage_error("mint", "expects a private JWK file KEY and a CLAIMS file (or -), "
                           "got %d argument%s", a.npos, a.npos == 1 ? "" : "s");
    if (!strcmp(a.pos[0], "-") && !strcmp(a.pos[1], "-"))
        return usage_error("mint", "KEY and CLAIMS cannot both come from stdin");
    if (read_input("mint", "key file", a.pos[0], KEY_MAX, &key_text, &key_len, p)
        || read_input("mint", "claims file", a.pos[1], CLAIMS_MAX, &claims_text, &claims_len, p))
        return 2;
    if (ajw_json_parse_object(&jwk, key_text, key_len, KEY_MAX, 0, p, &err) != AJW_OK) {
        fail_msg("mint", "key file %.200s: not a JWK (JSON object): %s", a.pos[0], err.text);
        return 2;
    }
    if (json_object_get(jwk, "keys")) {
        fail_msg("mint", "key file %.200s holds a JWKS; give one private JWK", a.pos[0]);
        return 2;
    }
    if (ajw_json_parse_object(&claims, claims_text, claims_len, CLAIMS_MAX, 0, p, &err) != AJW_OK) {
        fail_msg("mint", "claims %.200s: not a JSON object: %s",
                 strcmp(a.pos[1], "-") ? a.pos[1] : "from stdin", err.text);
        return 2;
    }
    jwk_alg = ajw_json_get_string(jwk, "alg", NULL);
    if (alg == AJW_ALG_UNKNOWN && jwk_alg) {
        alg = ajw_alg_from_name(jwk_alg, strlen(jwk_alg));
        if (!(AJW_ALG_BIT(alg) & AJW_ALGS_DEFAULT)) {
            fail_msg("mint", "the JWK's alg '%.20s' is not a JWS algorithm mint supports; "
                     "give --alg", jwk_alg);
            return 2;
        }
    }
    if (!kid_set && !no_kid)
        kid = ajw_json_get_string(jwk, "kid", NULL);
    memset(&m, 0, sizeof(m));
    if (!jwk_private(&m, jwk, &alg, &why, p)) {
        mint_ctx_free(&m);
        fail_msg("mint", "key file %.200s: %s", a.pos[0], why);
        return 2;
    }
    input = apr_pstrcat(p, mint_header(alg, no_kid ? NULL : kid, typ, p), ".",
                        ajw_b64url_encode((const unsigned char *)ajw_json_dump(claims, p),
                                          strlen(ajw_json_dump(claims, p)), p), NULL);
    if (!jws_sign(m.pkey, alg, input, strlen(input), &sig, &siglen, p)) {
        mint_ctx_free(&m);
        fail_msg("mint", "signing with %s failed", ajw_alg_name(alg));
        return 1;
    }
    mint_ctx_free(&m);
    input = apr_pstrcat(p, input, ".", ajw_b64url_encode(sig, siglen, p), NULL);
    chk = self_check(key_text, key_len, input, &why, p);
    if (chk > 0) {
        fail_msg("mint", "the token does not verify with the JWK's public members (%s): "
                 "do d and the public members belong to one key?", why);
        return 1;
    }
    if (chk < 0)
        fprintf(stderr, "note: the module would refuse this token: %s\n", why);
    printf("%s\n", input);
    return 0;
}

/* ------------------------------------------------------------------ main */

typedef int cmd_fn(int argc, const char *const *argv, apr_pool_t *p);

static int dispatch(int argc, const char *const *argv, apr_pool_t *p)
{
    static const struct { const char *name; cmd_fn *fn; } cmds[] = {
        { "keys", cmd_keys }, { "verify", cmd_verify }, { "fetch", cmd_fetch },
        { "mint", cmd_mint }, { "status", cmd_status },
    };
    size_t i;
    if (argc < 2) {
        fputs(OVERVIEW, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return cmd_help(argc - 2, argv + 2);
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 2, argv + 2, p);
    }
    return usage_error(NULL, "unknown command '%.40s' (commands: keys, verify, fetch, status, "
                       "mint, help)", argv[1]);
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    int rc;
    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        fprintf(stderr, "jwks-tool: APR initialisation failed\n");
        return 2;
    }
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        fprintf(stderr, "jwks-tool: out of memory\n");
        return 2;
    }
    rc = dispatch(argc, argv, p);
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
