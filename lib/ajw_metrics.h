/* ajw_metrics.h — counters of authentication outcomes, token-cache lookups
 * and JWKS fetches, shared by every process of a server.
 *
 * The counters live in one block of memory the caller provides (httpd: an
 * anonymous shared memory segment made by the parent before it forks, so
 * every child adds into the same numbers). This file knows nothing of how
 * the block was made; it only lays it out and updates it with apr_atomic
 * (no lock anywhere: an update is one atomic add).
 *
 * Ownership: the block belongs to whoever made it and must outlive every
 * handle attached to it. A handle (ajw_metrics_t) is process-local: it maps
 * URLs to their slots in the block and is built in the single-threaded
 * configuration phase, read-only afterwards.
 *
 * The process-wide handle (ajw_metrics_set_current) is what the counting
 * functions below use; with none set they do nothing, so lib/ code (the key
 * store) may call them unconditionally and unit tests need no setup. */
#ifndef AJW_METRICS_H
#define AJW_METRICS_H

#include <apr_pools.h>
#include <apr_time.h>
#include <apr_errno.h>
#include "ajw_types.h"

/* Why a request was refused: every ajw_reason_e except AJW_OK, plus these
 * two that happen before a token is looked at. */
#define AJW_MR_BAD_REQUEST  ((unsigned)AJW_R__COUNT)        /* 400 invalid_request */
#define AJW_MR_NO_TOKEN     ((unsigned)AJW_R__COUNT + 1u)   /* 401 without a token */
#define AJW_MR__COUNT       ((unsigned)AJW_R__COUNT + 2u)

#define AJW_METRICS_MAX_URLS 64      /* per-URL slots in one block */
#define AJW_METRICS_URL_MAX  1024    /* bytes of a URL with a slot (NUL included) */

/* JWKS fetch outcomes. */
typedef enum { AJW_MF_200 = 0, AJW_MF_304, AJW_MF_ERROR, AJW_MF__COUNT } ajw_metrics_fetch_e;

typedef struct ajw_metrics_t ajw_metrics_t;

/* Bytes the block must have. */
size_t ajw_metrics_block_size(void);

/* Attach to mem (size bytes, 8-byte aligned, zero-filled when new). A block
 * that does not hold this layout (new, or written by another version of the
 * code) is formatted: counters 0, creation time now. A block that does is
 * kept as it is — counters survive re-attaching (httpd: a restart). *out is
 * allocated in p. APR_EINVAL when mem is NULL or smaller than the block. */
apr_status_t ajw_metrics_attach(ajw_metrics_t **out, void *mem, size_t size, apr_pool_t *p);

/* 1 when attach had to format the block (its counters started at 0). */
int ajw_metrics_was_formatted(const ajw_metrics_t *m);

/* Give url a slot (configuration phase only, one process at a time). A slot
 * that already holds url is taken back with its counters; otherwise a free
 * slot, else a slot no url of this attachment claimed (it is cleared).
 * Adding the same url twice is harmless. APR_EINVAL when url is longer than
 * AJW_METRICS_URL_MAX - 1 bytes, APR_ENOSPC when every slot is claimed: that
 * URL's fetches are then not counted. */
apr_status_t ajw_metrics_add_url(ajw_metrics_t *m, const char *url);

/* The handle the counting functions use (NULL: none; they do nothing). Set
 * in the configuration phase, before any thread exists. */
void ajw_metrics_set_current(ajw_metrics_t *m);
ajw_metrics_t *ajw_metrics_current(void);

/* Counting: one atomic add each, safe from any thread of any process that
 * shares the block. A `why` out of range is counted as AJW_R_INTERNAL. */
void ajw_metrics_accepted(void);
void ajw_metrics_refused(unsigned why);
void ajw_metrics_cache(int hit);

/* One JWKS fetch of url ended. http_status: 200 or 304 for those answers,
 * 0 (or anything else) for a failure — no answer, another status, or a
 * document that could not be used; duration: the fetch's wall time.
 * Also records the status, duration and end time as the URL's last fetch.
 * A url without a slot is ignored. Thread-safe, lock-free, no allocation.
 * Meant for the key store's refresh threads: once per real fetch (network
 * or file read), in the process that fetched; never for a document taken
 * from the shared copy. */
void ajw_metrics_fetch_done(const char *url, int http_status, apr_interval_time_t duration);

/* A shared last-good copy of url was refused (by the key store, each time it
 * reads one it does not take: bad or missing MAC, another URL, malformed,
 * fetched in the future). Same rules as ajw_metrics_fetch_done. */
void ajw_metrics_shared_refused(const char *url);

/* Read the counters (each value is read atomically; the set is not one
 * snapshot). */
typedef struct ajw_metrics_totals_t {
    apr_time_t since;                         /* when the block was formatted */
    apr_uint64_t accepted;
    apr_uint64_t refused[AJW_MR__COUNT];      /* index: ajw_reason_e / AJW_MR_*; [AJW_OK] is 0 */
    apr_uint64_t cache_hits, cache_misses;
} ajw_metrics_totals_t;
void ajw_metrics_read(const ajw_metrics_t *m, ajw_metrics_totals_t *out);

typedef struct ajw_metrics_url_t {
    apr_uint64_t fetches[AJW_MF__COUNT];
    int last_status;                          /* of the last fetch; 0 failure or none */
    apr_interval_time_t last_duration;        /* 0 when none */
    apr_time_t last_end;                      /* 0 when none */
    apr_uint64_t shared_refused;              /* ajw_metrics_shared_refused calls */
} ajw_metrics_url_t;
/* The counters of url; 0 (and *out zeroed) when url has no slot. */
int ajw_metrics_read_url(const ajw_metrics_t *m, const char *url, ajw_metrics_url_t *out);

/* Stable label of a refusal: ajw_reason_name() for reasons, "bad_request",
 * "no_token"; "unknown" for AJW_OK or out of range. */
const char *ajw_metrics_refusal_name(unsigned why);

/* What a key source looks like now, for the gauges (the caller's view). */
typedef struct ajw_metrics_source_t {
    const char *url;
    int loaded;                               /* keys published at least once */
    apr_time_t last_success;                  /* newest successful fetch known; 0 = never */
    apr_interval_time_t refresh;              /* steady-state refresh period */
} ajw_metrics_source_t;

/* Key-set age in seconds (now - last_success), -1 when never loaded; and
 * how far past its refresh period that is (0 while fresh, -1 never loaded). */
long long ajw_metrics_age(const ajw_metrics_source_t *s, apr_time_t now);
long long ajw_metrics_stale(const ajw_metrics_source_t *s, apr_time_t now);

/* A label value escaped for the Prometheus text format (\ " and newline),
 * in p. */
const char *ajw_metrics_label_escape(apr_pool_t *p, const char *s);

/* The whole exposition (Prometheus text format 0.0.4) of m and the sources
 * srcs[0..n) (may be NULL when n is 0), in p. Metric names start with
 * "mod_auth_jwks_"; every metric has HELP and TYPE lines. m NULL: sources only. */
const char *ajw_metrics_prometheus(const ajw_metrics_t *m, const ajw_metrics_source_t *srcs,
                                   int n, apr_time_t now, apr_pool_t *p);

#endif
