/* bench/micro.c — make bench: the library's own cost per token, in one
 * process and one thread, free of httpd and of the machine's other load:
 * parse + claims check, signature, token cache insert, token cache hit, and
 * the early rejects. Built by bench_tokens.py against the build's libajw.a.
 *
 *   micro <jwks.json> <tokens.txt>    lines "<case> <token>"; case is an alg
 *                                     (valid tokens) or expired / nokid / badsig
 * Prints "<case> <step> <microseconds>" lines: the least of 15 passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "ajw_claims.h"
#include "ajw_json.h"
#include "ajw_jwk.h"
#include "ajw_jws.h"
#include "ajw_tcache.h"

#define MAXTOK 4096
#define PASSES 15
#define NKINDS 7

typedef struct tok_t {
    char kind[16];
    char *s;
} tok_t;

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0
        && (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

/* One pass over the tokens of `kind`: the mean microseconds of each step. */
static int pass(const char *kind, tok_t *toks, int nt, const ajw_keyset_t *ks,
                const ajw_policy_t *pol, apr_pool_t *p, double st[4])
{
    const ajw_keyset_t *sets[1] = { ks };
    ajw_tcache_t *tc;
    apr_pool_t *cp, *rp;
    ajw_error_t err;
    long long tnow = (long long)time(NULL);
    int i, n = 0, valid = strcmp(kind, "expired") && strcmp(kind, "nokid")
                          && strcmp(kind, "badsig");
    memset(st, 0, 4 * sizeof(double));
    apr_pool_create(&cp, p);
    ajw_tcache_create(&tc, MAXTOK, cp);
    for (i = 0; i < nt; i++) {
        ajw_jws_t *t;
        ajw_tcache_key_t key;
        ajw_tcache_entry_t e;
        const ajw_tcache_entry_t *h;
        const ajw_val_t *claims = NULL;
        size_t len = strlen(toks[i].s), claims_size = 0;
        double t0, t1, t2, t3, t4;
        ajw_reason_e rc;
        if (strcmp(toks[i].kind, kind))
            continue;
        apr_pool_create(&rp, p);
        t0 = now_us();
        rc = ajw_jws_parse(&t, toks[i].s, len, pol, rp, &err);
        if (rc == AJW_OK) {
            /* the claims are checked (and later cached) as their document */
            claims = ajw_doc_make(t->claims, rp, &claims_size);
            rc = ajw_claims_check(claims, pol, tnow, &err);
        }
        t1 = now_us();
        if (rc == AJW_OK)
            rc = ajw_jws_verify(t, sets, 1, NULL, &err);
        t2 = now_us();
        if (valid != (rc == AJW_OK)) {
            fprintf(stderr, "%s: unexpected result: %s\n", kind, err.text);
            return -1;
        }
        if (!valid) {
            st[0] += t1 - t0;
            st[1] += t2 - t1;
            n++;
            apr_pool_destroy(rp);
            continue;
        }
        memset(&e, 0, sizeof(e));
        ajw_tcache_key(&key, toks[i].s, len);
        e.claims = claims;               /* adopt copies the document's bytes */
        e.claims_size = claims_size;
        e.kid = t->kid;
        e.alg = t->alg;
        e.token = toks[i].s;
        e.token_len = len;
        h = ajw_tcache_adopt(&e);
        ajw_tcache_put(tc, &key, tnow + 3600, h);
        ajw_tcache_release(h);
        t3 = now_us();
        ajw_tcache_key(&key, toks[i].s, len);
        if (!ajw_tcache_get(tc, &key, tnow, &h)
            || ajw_jws_check_cached(h->alg, h->typ, pol, &err) != AJW_OK
            || ajw_claims_check(h->claims, pol, tnow, &err) != AJW_OK)
            return -1;
        ajw_tcache_release(h);
        t4 = now_us();
        st[0] += t1 - t0;
        st[1] += t2 - t1;
        st[2] += t3 - t2;
        st[3] += t4 - t3;
        n++;
        apr_pool_destroy(rp);
    }
    apr_pool_destroy(cp);
    for (i = 0; i < 4 && n; i++)
        st[i] /= n;
    return n;
}

int main(int argc, char **argv)
{
    static const char *const kinds[] = { "RS256", "PS256", "ES256", "EdDSA", "expired",
                                         "nokid", "badsig" };
    static const char *const steps[] = { "parse+claims", "signature", "cache-insert",
                                         "cache-hit" };
    static tok_t toks[MAXTOK];
    double best[NKINDS][4];
    int count[NKINDS];
    apr_pool_t *p;
    ajw_keyset_t *ks;
    ajw_error_t err;
    ajw_policy_t pol;
    size_t len;
    char *jwks, *list, *line, *save = NULL;
    int nt = 0, k, s, r;
    if (argc != 3 || !(jwks = slurp(argv[1], &len))) {
        fprintf(stderr, "usage: micro <jwks.json> <tokens.txt>\n");
        return 2;
    }
    apr_initialize();
    apr_pool_create(&p, NULL);
    if (ajw_keyset_parse(&ks, jwks, len, 0, p, &err) != AJW_OK) {
        fprintf(stderr, "jwks: %s\n", err.text);
        return 1;
    }
    if (!(list = slurp(argv[2], &len)))
        return 2;
    for (line = strtok_r(list, "\n", &save); line && nt < MAXTOK;
         line = strtok_r(NULL, "\n", &save)) {
        char *sp = strchr(line, ' ');
        if (!sp || (size_t)(sp - line) >= sizeof(toks[nt].kind))
            continue;
        memcpy(toks[nt].kind, line, (size_t)(sp - line));
        toks[nt].kind[sp - line] = '\0';
        toks[nt++].s = sp + 1;
    }
    ajw_policy_init(&pol);
    pol.issuers = apr_array_make(p, 1, sizeof(const char *));
    APR_ARRAY_PUSH(pol.issuers, const char *) = "https://issuer.test";
    pol.audiences = apr_array_make(p, 1, sizeof(const char *));
    APR_ARRAY_PUSH(pol.audiences, const char *) = "api";
    /* Passes outside, cases inside: a burst of other work on the machine
     * spoils one pass of every case rather than every pass of one. */
    for (r = 0; r < PASSES; r++) {
        for (k = 0; k < NKINDS; k++) {
            double st[4];
            if ((count[k] = pass(kinds[k], toks, nt, ks, &pol, p, st)) < 0)
                return 1;
            for (s = 0; s < 4; s++)
                if (r == 0 || st[s] < best[k][s])
                    best[k][s] = st[s];
        }
    }
    for (k = 0; k < NKINDS; k++)
        for (s = 0; count[k] > 0 && s < 4; s++)
            printf("%s %s %.2f\n", kinds[k], steps[s], best[k][s]);
    return 0;
}
