/* ajw_clientlog.c — see ajw_clientlog.h. A fixed table with open
 * addressing: a client's address hashes to a home slot and lives in one of
 * the PROBE slots from there. A slot is taken over by a new client only
 * when it holds nothing unsaid (no count waiting for its summary). */
#include <stdio.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "ajw_clientlog.h"

#define PROBE 16
#define NREASONS 6                /* reasons counted by name; the rest as "other" */
#define CLIENT_MAX 48             /* an IPv6 address with a zone fits */
#define LINE_MAX_LEN 512

typedef struct reason_t {
    const char *name;             /* a static string of the caller */
    unsigned long n;
} reason_t;

typedef struct slot_t {
    char client[CLIENT_MAX];      /* "": free */
    apr_time_t start;             /* start of this client's interval */
    int logged;                   /* full lines written in it */
    unsigned long held;           /* refusals counted instead */
    unsigned long other;          /* of which with a reason beyond NREASONS */
    reason_t reasons[NREASONS];
} slot_t;

struct ajw_clientlog_t {
    apr_thread_mutex_t *mu;       /* guards slots */
    slot_t *slots;
    int nslots;
    int pending;                  /* slots with refusals held (under mu): an idle
                                   * tick of the flusher takes one lock, no scan */
    int first;
    apr_interval_time_t interval;
    /* the flusher: tmu guards stopping; cond wakes it to stop */
    apr_thread_mutex_t *tmu;
    apr_thread_cond_t *cond;
    apr_thread_t *thread;
    int stopping;
    ajw_clientlog_emit_fn *emit;
    void *baton;
};

apr_status_t ajw_clientlog_create(ajw_clientlog_t **out, int first, apr_interval_time_t interval,
                                  int max_clients, apr_pool_t *p)
{
    ajw_clientlog_t *cl = apr_pcalloc(p, sizeof(*cl));
    apr_status_t rv;
    *out = NULL;
    if (max_clients <= 0 || first < 0 || interval <= 0)
        return APR_EINVAL;
    if ((rv = apr_thread_mutex_create(&cl->mu, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS)
        return rv;
    cl->slots = apr_pcalloc(p, sizeof(slot_t) * (size_t)max_clients);
    cl->nslots = max_clients;
    cl->first = first;
    cl->interval = interval;
    *out = cl;
    return APR_SUCCESS;
}

static unsigned hash_of(const char *s)
{
    unsigned h = 2166136261u;     /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static int ended(const ajw_clientlog_t *cl, const slot_t *s, apr_time_t now)
{
    return now - s->start >= cl->interval;
}

/* client's slot, else a slot made for it from a free one or one whose
 * interval ended with nothing held; NULL when there is none. Under mu. */
static slot_t *slot_for(ajw_clientlog_t *cl, const char *client, apr_time_t now)
{
    unsigned home = hash_of(client) % (unsigned)cl->nslots;
    slot_t *spare = NULL;
    int i;
    for (i = 0; i < PROBE && i < cl->nslots; i++) {
        slot_t *s = &cl->slots[(home + (unsigned)i) % (unsigned)cl->nslots];
        if (!strcmp(s->client, client))
            return s;
        if (!spare && (!s->client[0] || (ended(cl, s, now) && !s->held)))
            spare = s;
    }
    if (spare) {
        memset(spare, 0, sizeof(*spare));
        strcpy(spare->client, client);
        spare->start = now;
    }
    return spare;
}

static void count(ajw_clientlog_t *cl, slot_t *s, const char *reason)
{
    int i;
    if (s->held++ == 0)
        cl->pending++;
    for (i = 0; i < NREASONS; i++) {
        if (!s->reasons[i].name)
            s->reasons[i].name = reason;
        if (s->reasons[i].name == reason || !strcmp(s->reasons[i].name, reason)) {
            s->reasons[i].n++;
            return;
        }
    }
    s->other++;
}

/* The summary of s into buf, and s's counts reset. Under mu. */
static void summarise(ajw_clientlog_t *cl, slot_t *s, apr_time_t now, char *buf, size_t n)
{
    size_t len;
    int i;
    len = (size_t)snprintf(buf, n, "token refusals from %s: %lu more in the last %ld s not "
                           "logged one by one (", s->client, s->held,
                           (long)apr_time_sec(now - s->start + APR_USEC_PER_SEC - 1));
    for (i = 0; i < NREASONS && s->reasons[i].name && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s %lu", i ? ", " : "",
                                s->reasons[i].name, s->reasons[i].n);
    if (s->other && len < n)
        len += (size_t)snprintf(buf + len, n - len, ", other %lu", s->other);
    if (len < n)
        snprintf(buf + len, n - len, ")");
    if (s->held)
        cl->pending--;
    s->held = s->other = 0;
    memset(s->reasons, 0, sizeof(s->reasons));
}

int ajw_clientlog_note(ajw_clientlog_t *cl, const char *client, const char *reason,
                       apr_time_t now, const char **summary, apr_pool_t *rp)
{
    char line[LINE_MAX_LEN];
    slot_t *s;
    int full = 1;
    *summary = NULL;
    if (!cl || !client || !*client || strlen(client) >= CLIENT_MAX)
        return 1;
    line[0] = '\0';
    apr_thread_mutex_lock(cl->mu);
    if ((s = slot_for(cl, client, now)) != NULL) {
        if (ended(cl, s, now)) {
            if (s->held)
                summarise(cl, s, now, line, sizeof(line));
            s->start = now;
            s->logged = 0;
        }
        if (s->logged < cl->first)
            s->logged++;
        else {
            count(cl, s, reason);
            full = 0;
        }
    }
    apr_thread_mutex_unlock(cl->mu);
    if (line[0])
        *summary = apr_pstrdup(rp, line);
    return full;
}

int ajw_clientlog_flush(ajw_clientlog_t *cl, apr_time_t now, int all,
                        ajw_clientlog_emit_fn *emit, void *baton)
{
    char line[LINE_MAX_LEN];
    int i, sent = 0;
    if (!cl)
        return 0;
    apr_thread_mutex_lock(cl->mu);
    i = cl->pending;
    apr_thread_mutex_unlock(cl->mu);
    if (!i)
        return 0;
    for (i = 0; i < cl->nslots; i++) {
        line[0] = '\0';
        apr_thread_mutex_lock(cl->mu);
        if (cl->slots[i].held && (all || ended(cl, &cl->slots[i], now)))
            summarise(cl, &cl->slots[i], now, line, sizeof(line));
        apr_thread_mutex_unlock(cl->mu);
        if (line[0]) {
            emit(baton, line);
            sent++;
        }
    }
    return sent;
}

static void *APR_THREAD_FUNC flusher(apr_thread_t *th, void *data)
{
    ajw_clientlog_t *cl = data;
    apr_interval_time_t tick = cl->interval < apr_time_from_sec(1) ? cl->interval
                                                                  : apr_time_from_sec(1);
    (void)th;
    apr_thread_mutex_lock(cl->tmu);
    while (!cl->stopping) {
        apr_thread_cond_timedwait(cl->cond, cl->tmu, tick);
        if (cl->stopping)
            break;
        apr_thread_mutex_unlock(cl->tmu);
        ajw_clientlog_flush(cl, apr_time_now(), 0, cl->emit, cl->baton);
        apr_thread_mutex_lock(cl->tmu);
    }
    apr_thread_mutex_unlock(cl->tmu);
    return NULL;
}

/* A pre-cleanup: runs before p's subpools (the thread's) go. */
static apr_status_t flusher_stop(void *data)
{
    ajw_clientlog_t *cl = data;
    apr_status_t trv;
    apr_thread_mutex_lock(cl->tmu);
    cl->stopping = 1;
    apr_thread_cond_signal(cl->cond);
    apr_thread_mutex_unlock(cl->tmu);
    apr_thread_join(&trv, cl->thread);
    ajw_clientlog_flush(cl, apr_time_now(), 1, cl->emit, cl->baton);
    return APR_SUCCESS;
}

apr_status_t ajw_clientlog_start(ajw_clientlog_t *cl, ajw_clientlog_emit_fn *emit, void *baton,
                                 apr_pool_t *p)
{
    apr_status_t rv;
    cl->emit = emit;
    cl->baton = baton;
    if ((rv = apr_thread_mutex_create(&cl->tmu, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS
        || (rv = apr_thread_cond_create(&cl->cond, p)) != APR_SUCCESS
        || (rv = apr_thread_create(&cl->thread, NULL, flusher, cl, p)) != APR_SUCCESS)
        return rv;
    apr_pool_pre_cleanup_register(p, cl, flusher_stop);
    return APR_SUCCESS;
}
