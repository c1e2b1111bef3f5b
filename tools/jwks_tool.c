/* jwks-tool — check a JWKS or a token offline with the module's own lib/.
 *
 *   jwks-tool keys FILE                     list usable keys and skipped ones
 *   jwks-tool verify [options] FILE TOKEN   verify TOKEN ("-" = stdin) against FILE
 *     --iss ISS      accepted issuer (repeatable)      --aud AUD   audience (repeatable)
 *     --alg ALG      allowed algorithm (repeatable)    --typ TYP   required typ
 *     --leeway S     clock skew (default 60)           --now T     pin the clock
 *     --require C    required claim (repeatable)       --max-age S maximum age since iat
 * Exit status: 0 valid / listed, 1 rejected, 2 usage or I/O error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "ajw_types.h"
#include "ajw_json.h"
#include "ajw_jwk.h"
#include "ajw_jws.h"
#include "ajw_claims.h"

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

/* Whole file (or stdin for "-") into pool memory, at most max bytes. */
static int read_all(const char *path, size_t max, char **out, size_t *len, apr_pool_t *p)
{
    apr_file_t *f;
    char *buf = apr_palloc(p, max + 1);
    apr_size_t n = max + 1, got = 0;
    apr_status_t rv;
    if (!strcmp(path, "-"))
        rv = apr_file_open_stdin(&f, p);
    else
        rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, p);
    if (rv != APR_SUCCESS)
        return -1;
    while (got < max + 1) {
        n = max + 1 - got;
        if (apr_file_read(f, buf + got, &n) != APR_SUCCESS || n == 0)
            break;
        got += n;
    }
    apr_file_close(f);
    if (got > max)
        return -2;
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

static ajw_keyset_t *load_keys(const char *path, apr_pool_t *p)
{
    char *doc;
    size_t len;
    ajw_keyset_t *ks = NULL;
    ajw_error_t err;
    int i;
    if (read_all(path, AJW_MAX_JWKS_LEN_DEFAULT, &doc, &len, p) != 0) {
        fprintf(stderr, "jwks-tool: cannot read %s (missing or over %d bytes)\n", path,
                AJW_MAX_JWKS_LEN_DEFAULT);
        return NULL;
    }
    if (ajw_keyset_parse(&ks, doc, len, AJW_MAX_JWKS_LEN_DEFAULT, p, &err) != AJW_OK) {
        fprintf(stderr, "jwks-tool: %s: %s: %s\n", path, ajw_reason_name(err.code), err.text);
        return NULL;
    }
    for (i = 0; i < ks->notes->nelts; i++)
        fprintf(stderr, "note: %s\n", APR_ARRAY_IDX(ks->notes, i, const char *));
    return ks;
}

static int cmd_keys(const char *path, apr_pool_t *p)
{
    ajw_keyset_t *ks = load_keys(path, p);
    int i;
    if (!ks)
        return 2;
    for (i = 0; i < ks->keys->nelts; i++) {
        const ajw_key_t *k = APR_ARRAY_IDX(ks->keys, i, const ajw_key_t *);
        printf("kid=%s kty=%s crv=%s bits=%d alg=%s use=%s verify=%s\n",
               k->kid ? k->kid : "-", kty_name(k->kty), crv_name(k->crv), k->bits,
               k->alg_name ? k->alg_name : "-", k->use ? k->use : "-",
               k->can_verify ? "yes" : "no");
    }
    printf("%d usable key(s)\n", ks->keys->nelts);
    return ks->keys->nelts ? 0 : 1;
}

static void push(apr_array_header_t **a, const char *v, apr_pool_t *p)
{
    if (!*a)
        *a = apr_array_make(p, 2, sizeof(const char *));
    APR_ARRAY_PUSH(*a, const char *) = v;
}

static int usage(void)
{
    fprintf(stderr, "usage: jwks-tool keys FILE\n"
                    "       jwks-tool verify [--iss I] [--aud A] [--alg ALG] [--typ T]\n"
                    "                        [--leeway S] [--now T] [--require C] [--max-age S]\n"
                    "                        FILE TOKEN|-\n");
    return 2;
}

static int cmd_verify(int argc, const char *const *argv, apr_pool_t *p)
{
    ajw_policy_t pol;
    ajw_error_t err;
    ajw_jws_t *t = NULL;
    ajw_keyset_t *ks;
    const ajw_keyset_t *sets[1];
    const ajw_key_t *used = NULL;
    long long now = (long long)apr_time_sec(apr_time_now());
    unsigned algs = 0;
    char *tok;
    size_t len;
    ajw_reason_e rc;
    int i;

    ajw_policy_init(&pol);
    for (i = 0; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--iss")) push(&pol.issuers, v, p);
        else if (!strcmp(o, "--aud")) push(&pol.audiences, v, p);
        else if (!strcmp(o, "--require")) push(&pol.required, v, p);
        else if (!strcmp(o, "--typ")) pol.typ = v;
        else if (!strcmp(o, "--leeway")) pol.leeway = atoll(v);
        else if (!strcmp(o, "--max-age")) pol.max_age = atoll(v);
        else if (!strcmp(o, "--now")) now = atoll(v);
        else if (!strcmp(o, "--alg")) {
            ajw_alg_e a = ajw_alg_from_name(v, strlen(v));
            if (!(AJW_ALG_BIT(a) & AJW_ALGS_DEFAULT))
                return usage();
            algs |= AJW_ALG_BIT(a);
        }
        else
            return usage();
    }
    if (algs)
        pol.algs = algs;
    if (argc - i != 2)
        return usage();
    if (!(ks = load_keys(argv[i], p)))
        return 2;
    if (read_all(argv[i + 1], 1024 * 1024, &tok, &len, p) != 0)
        return usage();
    while (len && (tok[len - 1] == '\n' || tok[len - 1] == '\r' || tok[len - 1] == ' '))
        tok[--len] = '\0';
    sets[0] = ks;
    rc = ajw_jws_parse(&t, tok, len, &pol, p, &err);
    if (rc == AJW_OK)
        rc = ajw_jws_verify(t, sets, 1, &used, &err);
    if (rc == AJW_OK)
        rc = ajw_claims_check(t->claims, &pol, now, &err);
    if (rc != AJW_OK) {
        printf("rejected: %s: %s\n", ajw_reason_name(rc), err.text);
        return 1;
    }
    printf("valid: alg=%s kid=%s\n%s\n", ajw_alg_name(t->alg), used && used->kid ? used->kid : "-",
           ajw_json_dump(t->claims, p));
    return 0;
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *p;
    int rc;
    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS)
        return 2;
    apr_pool_create(&p, NULL);
    if (argc == 3 && !strcmp(argv[1], "keys"))
        rc = cmd_keys(argv[2], p);
    else if (argc >= 4 && !strcmp(argv[1], "verify"))
        rc = cmd_verify(argc - 2, argv + 2, p);
    else
        rc = usage();
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
