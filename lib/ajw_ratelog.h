/* ajw_ratelog.h — "log once per cause and key per interval, then say how
 * many were suppressed". For refusals caused by the server side (no keys
 * loaded, keys too stale), which would otherwise write one line per request
 * for the length of an outage. Thread-safe (one mutex); per process. */
#ifndef AJW_RATELOG_H
#define AJW_RATELOG_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct ajw_ratelog_t ajw_ratelog_t;

/* A limiter in p allowing one line per key per interval; at most max_keys
 * distinct keys are tracked (beyond that, lines for new keys are allowed
 * and not counted, so a limiter never hides a cause it has no room for). */
apr_status_t ajw_ratelog_create(ajw_ratelog_t **out, apr_interval_time_t interval,
                                int max_keys, apr_pool_t *p);

/* Should a line for key be written now? 1: yes, and *suppressed gets how
 * many lines for key were held back since the last one written; 0: no (the
 * line is counted). rl NULL always says yes with *suppressed 0. */
int ajw_ratelog_allow(ajw_ratelog_t *rl, const char *key, apr_time_t now,
                      unsigned long *suppressed);

#endif
