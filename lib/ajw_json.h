/* ajw_json.h — the only wrapper around jansson: strict parsing with caps,
 * pool-owned values, number texts. */
#ifndef AJW_JSON_H
#define AJW_JSON_H

#include <jansson.h>
#include <apr_pools.h>
#include "ajw_types.h"
#include "ajw_doc.h"

/* Parse len bytes (not NUL-terminated necessarily) as one JSON *object*:
 * duplicate member names rejected at every level, nesting deeper than
 * max_depth rejected, trailing bytes rejected, embedded NUL in strings
 * rejected. On success *out holds a reference released by a cleanup on p.
 * On failure returns AJW_R_MALFORMED (or AJW_R_TOO_LARGE when len > max_len)
 * with a short text in err (never the input bytes). max_len 0 means
 * AJW_MAX_JWKS_LEN_DEFAULT, max_depth 0 means AJW_MAX_JSON_DEPTH; the top-level
 * object itself is depth 1. Trailing whitespace is allowed (JSON grammar). */
ajw_reason_e ajw_json_parse_object(json_t **out, const char *buf, size_t len,
                                   size_t max_len, size_t max_depth,
                                   apr_pool_t *p, ajw_error_t *err);

/* The same contract, the object written as a flat document (ajw_doc.h)
 * into p instead of a tree: *out its root, *size its length. The same
 * inputs are accepted and refused, with the same texts. */
ajw_reason_e ajw_json_parse_doc(const ajw_val_t **out, size_t *size, const char *buf,
                                size_t len, size_t max_len, size_t max_depth,
                                apr_pool_t *p, ajw_error_t *err);

/* The same contract, parsed by jansson's json_loadb itself: the reference
 * ajw_json_parse_object is held to (tests and the differential fuzz target);
 * texts of failures may differ, outcomes and values must not. */
ajw_reason_e ajw_json_parse_reference(json_t **out, const char *buf, size_t len,
                                      size_t max_len, size_t max_depth,
                                      apr_pool_t *p, ajw_error_t *err);

/* Tie one reference of v to p: json_decref(v) runs when p is cleared. Returns v. */
json_t *ajw_json_pool_own(json_t *v, apr_pool_t *p);

/* Undo one ajw_json_pool_own(v, p) (or the ownership ajw_json_parse_object
 * gave p): the reference becomes the caller's. Returns v. */
json_t *ajw_json_pool_disown(json_t *v, apr_pool_t *p);

/* Room for any number's text below, its NUL included. */
#define AJW_NUMBER_TEXT_MAX 40

/* The text of a JSON number, as claims are exported and compared: an
 * integer in decimal ("-42"); a real in the shortest %g form that reads
 * back as the same double, with ".0" added to a whole one ("0.1", "2.0",
 * "1e+300"). Writes buf (NUL-terminated) and returns the length; 0 (and
 * "") when v is not a number. */
size_t ajw_val_number_text(const ajw_val_t *v, char buf[AJW_NUMBER_TEXT_MAX]);

/* Compact JSON serialization of any value, as a pool string. */
char *ajw_json_dump(const json_t *v, apr_pool_t *p);

/* Read a JSON string member: returns its value (borrowed) or NULL when the
 * member is absent or not a string. *len, when not NULL, gets the length. */
const char *ajw_json_get_string(const json_t *obj, const char *name, size_t *len);

#endif
