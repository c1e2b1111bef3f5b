/* ajw_clientlog.h — bounded log lines for refused tokens, per client. In
 * each interval a client's first `first` refusals are logged one by one;
 * the rest are counted by reason, and one summary line says how many were
 * not logged: when that client's next refusal comes after the interval, or
 * when the flusher (ajw_clientlog_start) sees the interval end, or when the
 * pool goes (child exit), whichever comes first. Counts are never dropped.
 *
 * Per process, thread-safe (one mutex). At most max_clients clients are
 * tracked; a client with no room (its probe window full of clients still
 * in their interval) is not counted, and every one of its lines is written:
 * the table never hides a client it cannot count. */
#ifndef AJW_CLIENTLOG_H
#define AJW_CLIENTLOG_H

#include <apr_pools.h>
#include <apr_time.h>

typedef struct ajw_clientlog_t ajw_clientlog_t;

/* Receives one summary line (no newline); called without the table's lock. */
typedef void ajw_clientlog_emit_fn(void *baton, const char *line);

/* A table in p: `first` full lines per client per interval (>= 0), at most
 * max_clients clients (> 0). */
apr_status_t ajw_clientlog_create(ajw_clientlog_t **out, int first, apr_interval_time_t interval,
                                  int max_clients, apr_pool_t *p);

/* A refusal of client's token for `reason` (a static string: the table keeps
 * the pointer) at now. 1: write its full line; 0: counted instead. When
 * client's previous interval ended with lines held back, *summary is their
 * summary line (in rp), to write first; else NULL. cl NULL: always 1. */
int ajw_clientlog_note(ajw_clientlog_t *cl, const char *client, const char *reason,
                       apr_time_t now, const char **summary, apr_pool_t *rp);

/* Send to emit the summary of every client whose interval ended by now (all:
 * of every client with lines held back), and reset their counts. Returns
 * how many lines were sent. */
int ajw_clientlog_flush(ajw_clientlog_t *cl, apr_time_t now, int all,
                        ajw_clientlog_emit_fn *emit, void *baton);

/* Start a thread in p that flushes ended intervals about once a second;
 * when p is cleared it stops and flushes every count left (all = 1). */
apr_status_t ajw_clientlog_start(ajw_clientlog_t *cl, ajw_clientlog_emit_fn *emit, void *baton,
                                 apr_pool_t *p);

#endif
