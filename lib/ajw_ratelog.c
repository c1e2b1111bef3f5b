/* ajw_ratelog.c — see ajw_ratelog.h. A small fixed table; keys are copied
 * into the limiter's pool the first time they are seen (at most max_keys). */
#include <string.h>

#include <apr_strings.h>
#include <apr_hash.h>
#include <apr_thread_mutex.h>

#include "ajw_ratelog.h"

typedef struct slot_t {
    apr_time_t last;              /* when a line was last written */
    unsigned long held;           /* lines held back since */
} slot_t;

struct ajw_ratelog_t {
    apr_thread_mutex_t *mu;       /* guards keys and every slot */
    apr_hash_t *keys;             /* const char * -> slot_t * */
    apr_pool_t *pool;             /* keys and slots, bounded by max_keys */
    apr_interval_time_t interval;
    int max_keys;
};

apr_status_t ajw_ratelog_create(ajw_ratelog_t **out, apr_interval_time_t interval,
                                int max_keys, apr_pool_t *p)
{
    ajw_ratelog_t *rl = apr_pcalloc(p, sizeof(*rl));
    apr_status_t rv = apr_thread_mutex_create(&rl->mu, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS)
        return rv;
    rl->keys = apr_hash_make(p);
    rl->pool = p;
    rl->interval = interval;
    rl->max_keys = max_keys;
    *out = rl;
    return APR_SUCCESS;
}

int ajw_ratelog_allow(ajw_ratelog_t *rl, const char *key, apr_time_t now,
                      unsigned long *suppressed)
{
    slot_t *slot;
    int allow = 1;
    *suppressed = 0;
    if (!rl)
        return 1;
    apr_thread_mutex_lock(rl->mu);
    slot = apr_hash_get(rl->keys, key, APR_HASH_KEY_STRING);
    if (!slot) {
        if ((int)apr_hash_count(rl->keys) < rl->max_keys) {
            slot = apr_pcalloc(rl->pool, sizeof(*slot));
            slot->last = now;
            apr_hash_set(rl->keys, apr_pstrdup(rl->pool, key), APR_HASH_KEY_STRING, slot);
        }
    }
    else if (now - slot->last < rl->interval) {
        slot->held++;
        allow = 0;
    }
    else {
        *suppressed = slot->held;
        slot->held = 0;
        slot->last = now;
    }
    apr_thread_mutex_unlock(rl->mu);
    return allow;
}
