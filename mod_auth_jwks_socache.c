/* mod_auth_jwks_socache.c — AuthJWKSCacheSocache: the shared last-good JWKS
 * copies in one of httpd's small-object caches (memcache, redis, shmcb, ...),
 * so that a fleet of servers shares one copy per URL.
 *
 * An ajw_shared_t over the provider: a record (lib/ajw_shared_record.h) per
 * source under the binary SHA-256 id of its URL (and CA file); the memcache
 * and redis providers store it under "auth_jwks:<64 hex digits>". Whatever
 * comes back is untrusted: size-capped, strictly decoded, and only ever a
 * document of the exact URL and CA file asked for. No leases here: the
 * per-server lease stays with AuthJWKSCacheDir (ajw_shared_pair_create).
 *
 * Life cycle: the directive looks the provider up and parses its arguments
 * (so apachectl -t catches both); post_config (as root, before the children)
 * runs the provider's init and, for providers that are not safe across
 * processes (shmcb, dbm), makes a global mutex; child_init reattaches it. */
#include <string.h>

#include <apr_strings.h>
#include <apr_global_mutex.h>
#include <apr_lib.h>

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "ap_provider.h"
#include "ap_socache.h"
#include "util_mutex.h"

#include "ajw_shared.h"
#include "ajw_shared_record.h"
#include "ajw_secret.h"

#include "mod_auth_jwks.h"

#define SOCACHE_NS        "auth_jwks"        /* the consumer name: key prefix, shm file name */
#define SOCACHE_MUTEX     "auth-jwks-socache"
#define SOCACHE_VALUE_MAX (256 * 1024)       /* bytes of one stored record (memcache: 1 MB) */
#define SOCACHE_EXPIRY    apr_time_from_sec(7 * 86400)   /* memcache: at most 30 days */

/* Written in the single-threaded config phase (directive, post_config) and
 * in child_init before any thread starts (the mutex handle); read-only after. */
struct ajw_socache_conf_t {
    const char *name;                    /* provider name */
    const ap_socache_provider_t *prov;
    ap_socache_instance_t *inst;
    apr_global_mutex_t *mutex;           /* non-NULL for AP_SOCACHE_FLAG_NOTMPSAFE providers */
    server_rec *s;                       /* main server, for the provider's own log lines */
    unsigned char key[AJW_SHARED_KEY_LEN];   /* the records' MAC key (post_config) */
};

/* ---- configuration ------------------------------------------------------------ */

static int is_provider_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!apr_islower(*s) && !apr_isdigit(*s) && *s != '_')
            return 0;
    return 1;
}

/* "a, b" — the socache providers loaded so far. */
static const char *loaded_providers(apr_pool_t *p)
{
    apr_array_header_t *names = ap_list_provider_names(p, AP_SOCACHE_PROVIDER_GROUP,
                                                       AP_SOCACHE_PROVIDER_VERSION);
    const char *out = NULL;
    int i;
    for (i = 0; names && i < names->nelts; i++) {
        const char *n = APR_ARRAY_IDX(names, i, ap_list_provider_names_t).provider_name;
        out = out ? apr_pstrcat(p, out, ", ", n, NULL) : n;
    }
    return out ? out : "none";
}

const char *ajw_socache_config(cmd_parms *cmd, const char *arg, ajw_socache_conf_t **out)
{
    const char *sep = strchr(arg, ':');
    char *name = sep ? apr_pstrmemdup(cmd->pool, arg, (apr_size_t)(sep - arg))
                     : apr_pstrdup(cmd->pool, arg);
    const char *args = sep ? sep + 1 : NULL;
    const char *err;
    ajw_socache_conf_t *c;

    *out = NULL;
    if (!strcasecmp(arg, "none"))
        return NULL;
    ap_str_tolower(name);
    if (!is_provider_name(name))
        return apr_psprintf(cmd->pool, "%s: '%s' is not <provider>[:<arguments>]",
                            cmd->cmd->name, arg);
    c = apr_pcalloc(cmd->pool, sizeof(*c));
    c->name = name;
    c->prov = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (!c->prov)
        return apr_psprintf(cmd->pool, "%s: no socache provider '%s'; load its module before "
                            "this line (LoadModule socache_%s_module modules/mod_socache_%s.so; "
                            "Debian: a2enmod socache_%s). Loaded: %s", cmd->cmd->name, name,
                            name, name, name, loaded_providers(cmd->temp_pool));
    err = c->prov->create(&c->inst, args, cmd->temp_pool, cmd->pool);
    if (err)
        return apr_psprintf(cmd->pool, "%s %s: %s", cmd->cmd->name, arg, err);
    if ((c->prov->flags & AP_SOCACHE_FLAG_NOTMPSAFE)
        && ap_mutex_register(cmd->pool, SOCACHE_MUTEX, NULL, APR_LOCK_DEFAULT, 0) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "%s %s: cannot register the mutex %s", cmd->cmd->name,
                            arg, SOCACHE_MUTEX);
    *out = c;
    return NULL;
}

int ajw_socache_is_remote(const ajw_socache_conf_t *c)
{
    return c && strcmp(c->name, "shmcb") != 0 && strcmp(c->name, "shmht") != 0
           && strcmp(c->name, "dbm") != 0;
}

const char *ajw_socache_name(const ajw_socache_conf_t *c)
{
    return c ? c->name : "none";
}

/* ---- the store ------------------------------------------------------------------- */

static apr_status_t lock(ajw_socache_conf_t *c)
{
    return c->mutex ? apr_global_mutex_lock(c->mutex) : APR_SUCCESS;
}

static void unlock(ajw_socache_conf_t *c)
{
    if (c->mutex)
        apr_global_mutex_unlock(c->mutex);
}

/* "socache memcache, key auth_jwks:<hex>" for log lines (the hex is the
 * record id, as memcache and redis spell their keys). */
static const char *where(ajw_socache_conf_t *c, const char *url, const char *ca_file,
                         apr_pool_t *p)
{
    const char *hex = ajw_shared_record_name(url, ca_file, "", p);
    return apr_psprintf(p, "socache %s, key " SOCACHE_NS ":%s", c->name, hex ? hex : "?");
}

static apr_status_t sc_get(ajw_shared_t *self, const char *url, const char *ca_file,
                           size_t max_len, ajw_shared_doc_t *doc, const char **why,
                           apr_pool_t *p)
{
    ajw_socache_conf_t *c = self->baton;
    unsigned char id[AJW_SHARED_ID_LEN];
    size_t cap = ajw_shared_record_cap(max_len);
    unsigned int len;
    unsigned char *buf;
    const char *bad = NULL;
    char ebuf[120];
    apr_status_t rv;

    memset(doc, 0, sizeof(*doc));
    *why = NULL;
    if (cap > SOCACHE_VALUE_MAX)
        cap = SOCACHE_VALUE_MAX;
    rv = ajw_shared_record_id(id, url, ca_file, p);
    if (rv != APR_SUCCESS) {
        *why = "cannot name the record";
        goto cleanup;
    }
    buf = apr_palloc(p, cap + 1);
    len = (unsigned int)cap + 1;      /* one byte more: a value filling it is over the cap */
    rv = lock(c);
    if (rv == APR_SUCCESS) {
        rv = c->prov->retrieve(c->inst, c->s, id, AJW_SHARED_ID_LEN, buf, &len, p);
        unlock(c);
    }
    if (rv == APR_NOTFOUND)
        goto cleanup;
    if (rv == APR_ENOMEM || rv == APR_ENOSPC || (rv == APR_SUCCESS && len > cap)) {
        rv = APR_EGENERAL;
        *why = apr_psprintf(p, "%s: value over the cap of %" APR_SIZE_T_FMT " bytes",
                            where(c, url, ca_file, p), (apr_size_t)cap);
        goto cleanup;
    }
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(p, "%s: cannot read: %s", where(c, url, ca_file, p),
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
        goto cleanup;
    }
    rv = ajw_shared_record_decode(doc, (const char *)buf, len, c->key, url, ca_file, max_len,
                                  &bad, p);
    if (rv != APR_SUCCESS)
        *why = apr_psprintf(p, "%s: %s", where(c, url, ca_file, p), bad);
cleanup:
    return rv;
}

static apr_status_t sc_put(ajw_shared_t *self, const char *url, const char *ca_file,
                           const ajw_shared_doc_t *doc, const char **why, apr_pool_t *p)
{
    ajw_socache_conf_t *c = self->baton;
    unsigned char id[AJW_SHARED_ID_LEN];
    char *text = NULL;
    size_t len = 0;
    char ebuf[120];
    apr_status_t rv;

    *why = NULL;
    rv = ajw_shared_record_id(id, url, ca_file, p);
    if (rv != APR_SUCCESS) {
        *why = "cannot name the record";
        goto cleanup;
    }
    rv = ajw_shared_record_encode(&text, &len, c->key, url, ca_file, doc, why, p);
    if (rv != APR_SUCCESS)
        goto cleanup;
    if (len > SOCACHE_VALUE_MAX) {
        rv = APR_ENOSPC;
        *why = apr_psprintf(p, "%s: a record of %" APR_SIZE_T_FMT " bytes is over the cap of "
                            "%d bytes; not stored", where(c, url, ca_file, p), (apr_size_t)len,
                            SOCACHE_VALUE_MAX);
        goto cleanup;
    }
    rv = lock(c);
    if (rv == APR_SUCCESS) {
        rv = c->prov->store(c->inst, c->s, id, AJW_SHARED_ID_LEN,
                            apr_time_now() + SOCACHE_EXPIRY, (unsigned char *)text,
                            (unsigned int)len, p);
        unlock(c);
    }
    if (rv != APR_SUCCESS)
        *why = apr_psprintf(p, "%s: cannot store %" APR_SIZE_T_FMT " bytes: %s",
                            where(c, url, ca_file, p), (apr_size_t)len,
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
cleanup:
    return rv;
}

/* ---- fleet-wide "seen" marks (DPoP replay) ------------------------------------ */

apr_status_t ajw_socache_mark(ajw_socache_conf_t *c, const unsigned char *id, size_t idlen,
                              apr_time_t expiry, int *seen, apr_pool_t *p)
{
    unsigned char val[8];
    unsigned int len = sizeof(val);
    apr_status_t rv;

    *seen = 0;
    if ((rv = lock(c)) != APR_SUCCESS)
        return rv;
    rv = c->prov->retrieve(c->inst, c->s, id, (unsigned int)idlen, val, &len, p);
    if (rv == APR_SUCCESS || rv == APR_ENOSPC || rv == APR_ENOMEM) {
        *seen = 1;                    /* any value under the id: someone marked it */
        rv = APR_SUCCESS;
    }
    else if (rv == APR_NOTFOUND)
        rv = c->prov->store(c->inst, c->s, id, (unsigned int)idlen, expiry,
                            (unsigned char *)"1", 1, p);
    unlock(c);
    return rv;
}

/* ---- life cycle ------------------------------------------------------------------ */

static apr_status_t destroy_instance(void *data)
{
    ajw_socache_conf_t *c = data;
    c->prov->destroy(c->inst, c->s);
    return APR_SUCCESS;
}

apr_status_t ajw_socache_post_config(ajw_shared_t **out, ajw_socache_conf_t *c,
                                     const ajw_keys_t *keys, server_rec *s,
                                     apr_pool_t *pconf, const char **why)
{
    struct ap_socache_hints hints;
    ajw_shared_t *sh;
    apr_status_t rv = APR_SUCCESS;
    char ebuf[120];

    *out = NULL;
    *why = NULL;
    c->s = s;
    memcpy(c->key, keys->record, AJW_SHARED_KEY_LEN);
    if (c->prov->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        rv = ap_global_mutex_create(&c->mutex, NULL, SOCACHE_MUTEX, NULL, s, pconf, 0);
        if (rv != APR_SUCCESS) {
            *why = apr_psprintf(pconf, "cannot create the %s mutex (needed by the %s "
                                "provider): %s", SOCACHE_MUTEX, c->name,
                                apr_strerror(rv, ebuf, sizeof(ebuf)));
            goto cleanup;
        }
    }
    memset(&hints, 0, sizeof(hints));
    hints.avg_id_len = AJW_SHARED_ID_LEN;
    hints.avg_obj_size = 16 * 1024;
    hints.expiry_interval = apr_time_from_sec(600);
    rv = c->prov->init(c->inst, SOCACHE_NS, &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        *why = apr_psprintf(pconf, "the %s provider could not start: %s", c->name,
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
        goto cleanup;
    }
    apr_pool_cleanup_register(pconf, c, destroy_instance, apr_pool_cleanup_null);
    sh = apr_pcalloc(pconf, sizeof(*sh));
    sh->get = sc_get;
    sh->put = sc_put;
    sh->baton = c;
    *out = sh;
cleanup:
    return rv;
}

void ajw_socache_child_init(ajw_socache_conf_t *c, apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv;
    if (!c || !c->mutex)
        return;
    rv = apr_global_mutex_child_init(&c->mutex, apr_global_mutex_lockfile(c->mutex), pchild);
    if (rv != APR_SUCCESS)
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, "AuthJWKSCacheSocache %s: cannot attach "
                     "the %s mutex in this child", c->name, SOCACHE_MUTEX);
}
