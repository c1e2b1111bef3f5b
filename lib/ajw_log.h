/* ajw_log.h — lib/ reports through one callback that the glue installs.
 *
 * Rejections are values (ajw_error_t), not log lines; this is for the
 * background work (key refresh) that has nobody to return to. */
#ifndef AJW_LOG_H
#define AJW_LOG_H

typedef enum { AJW_LOG_ERR = 3, AJW_LOG_WARN = 4, AJW_LOG_NOTICE = 5, AJW_LOG_INFO = 6, AJW_LOG_DEBUG = 7 } ajw_log_level_e;

typedef void ajw_log_fn(void *baton, ajw_log_level_e level, const char *msg);

/* Install the sink (NULL = discard). Call before any thread starts
 * (httpd: post_config); the pointer is then only read, so no lock. */
void ajw_log_set(ajw_log_fn *fn, void *baton);

/* Format and send a line to the sink. Never pass token or key bytes. */
void ajw_log(ajw_log_level_e level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
