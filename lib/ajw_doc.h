/* ajw_doc.h — a verified token's claims as one flat, immutable block of
 * bytes, read in place.
 *
 * A jansson tree costs a malloc per value, per member and per hash table
 * (~2.4 KB for nine claims); the token cache keeps the claims of thousands
 * of tokens for as long as they live, and every reader only ever looks
 * them up. A document is the same JSON value written once into one buffer
 * (~1.1 bytes per byte of compact JSON): position independent (it may be
 * copied with memcpy), never modified, so any number of threads read it
 * without a lock.
 *
 * Layout (private to ajw_doc.c; multi-byte fields are host order, read
 * with memcpy): a value is a tag byte then its body —
 *   'n' 't' 'f'   null, true, false: nothing
 *   'i'           a long long;  'r' a double
 *   's'           u32 length, the bytes, a NUL (strings never hold NUL)
 *   'a'           u32 count, u32 body length, the elements
 *   'o'           u32 count, u32 body length, the members, each
 *                 u32 name length, the name, a NUL, the value
 * Member order is the source's; names are unique (the parser refuses
 * duplicates). */
#ifndef AJW_DOC_H
#define AJW_DOC_H

#include <stddef.h>
#include <jansson.h>
#include <apr_pools.h>

/* A value inside a document: never defined, only pointed to. NULL stands
 * for "absent" everywhere below, and every reader accepts it. */
typedef struct ajw_val_t ajw_val_t;

typedef enum {
    AJW_V_NONE = 0,          /* NULL: absent */
    AJW_V_NULL = 'n', AJW_V_TRUE = 't', AJW_V_FALSE = 'f',
    AJW_V_INT = 'i', AJW_V_REAL = 'r', AJW_V_STRING = 's',
    AJW_V_ARRAY = 'a', AJW_V_OBJECT = 'o'
} ajw_vtype_e;

/* The bytes a document of v takes; 0 when v is NULL, holds a string with a
 * NUL byte, or would exceed 2^31 bytes. */
size_t ajw_doc_size(const json_t *v);

/* Write v's document into buf (exactly ajw_doc_size(v) bytes, size) and
 * return its root; NULL when size is not that. */
const ajw_val_t *ajw_doc_write(const json_t *v, void *buf, size_t size);

/* v's document in p (*size, when not NULL, gets its length). NULL when
 * ajw_doc_size(v) is 0. */
const ajw_val_t *ajw_doc_make(const json_t *v, apr_pool_t *p, size_t *size);

/* --- writing in place, for a parser (ajw_json_parse_doc) -------------
 * A document of a JSON text of len bytes takes at most AJW_DOC_BOUND(len)
 * bytes (a one-digit number, the costliest byte, takes 9). Each writer
 * puts one item at o and returns the position after it; a container is
 * opened (its header reserved), filled with values (an object's each after
 * its name) and closed with its count. The caller keeps within the bound
 * and gives strings without NUL bytes. */
#define AJW_DOC_BOUND(len) (9 * (size_t)(len) + 9)
unsigned char *ajw_docw_literal(unsigned char *o, ajw_vtype_e type);   /* null, true, false */
unsigned char *ajw_docw_int(unsigned char *o, long long v);
unsigned char *ajw_docw_real(unsigned char *o, double v);
unsigned char *ajw_docw_string(unsigned char *o, const char *s, size_t n);
unsigned char *ajw_docw_open(unsigned char *o, ajw_vtype_e type);      /* array, object */
unsigned char *ajw_docw_name(unsigned char *o, const char *name, size_t n);
/* Close the container opened at c, its values ending at end. */
void ajw_docw_close(unsigned char *c, size_t count, const unsigned char *end);
/* Does the object opened at c hold a member `name` (n bytes) among the
 * ones before `end` (the start of the member being written)? */
int ajw_docw_has(unsigned char *c, const unsigned char *end, const char *name, size_t n);

/* The bytes v takes in its document (a root: the whole document). 0 for NULL. */
size_t ajw_val_size(const ajw_val_t *v);

/* v's type; AJW_V_NONE for NULL. */
ajw_vtype_e ajw_val_type(const ajw_val_t *v);

#define ajw_val_is_string(v)  (ajw_val_type(v) == AJW_V_STRING)
#define ajw_val_is_object(v)  (ajw_val_type(v) == AJW_V_OBJECT)
#define ajw_val_is_array(v)   (ajw_val_type(v) == AJW_V_ARRAY)
#define ajw_val_is_integer(v) (ajw_val_type(v) == AJW_V_INT)
#define ajw_val_is_real(v)    (ajw_val_type(v) == AJW_V_REAL)
#define ajw_val_is_number(v)  (ajw_val_is_integer(v) || ajw_val_is_real(v))
#define ajw_val_is_true(v)    (ajw_val_type(v) == AJW_V_TRUE)
#define ajw_val_is_false(v)   (ajw_val_type(v) == AJW_V_FALSE)
#define ajw_val_is_boolean(v) (ajw_val_is_true(v) || ajw_val_is_false(v))
#define ajw_val_is_null(v)    (ajw_val_type(v) == AJW_V_NULL)

/* Member `name` of object obj (name NUL-terminated, or n bytes); NULL when
 * obj is not an object or has no such member. */
const ajw_val_t *ajw_val_get(const ajw_val_t *obj, const char *name);
const ajw_val_t *ajw_val_getn(const ajw_val_t *obj, const char *name, size_t n);

/* A string member's value (NUL-terminated, inside the document), *len its
 * length when len is not NULL; NULL when absent or not a string. */
const char *ajw_val_get_string(const ajw_val_t *obj, const char *name, size_t *len);

/* Elements of an array, members of an object; 0 for anything else. */
size_t ajw_val_count(const ajw_val_t *v);

/* Walk a container c: its first value, then the one after v; NULL at the
 * end or when c is not an array or object. For an object, *name (when name
 * is not NULL) gets the member's name; for an array, NULL. */
const ajw_val_t *ajw_val_first(const ajw_val_t *c, const char **name);
const ajw_val_t *ajw_val_next(const ajw_val_t *c, const ajw_val_t *v, const char **name);

#define ajw_val_foreach(c, v) \
    for ((v) = ajw_val_first((c), NULL); (v); (v) = ajw_val_next((c), (v), NULL))
#define ajw_val_foreach_member(c, name, v) \
    for ((v) = ajw_val_first((c), &(name)); (v); (v) = ajw_val_next((c), (v), &(name)))

/* A string's bytes (NUL-terminated) and length; NULL / 0 when v is not a string. */
const char *ajw_val_str(const ajw_val_t *v);
size_t ajw_val_strlen(const ajw_val_t *v);

/* An integer's value, a real's value; 0 when v is not one. */
long long ajw_val_int(const ajw_val_t *v);
double ajw_val_real(const ajw_val_t *v);

/* Look up a dotted path ("realm_access.roles") through nested objects only,
 * as ajw_json_path does: a segment never matches a prefix of a member name,
 * a member whose own name holds '.' is never matched by a dotted path. */
const ajw_val_t *ajw_val_path(const ajw_val_t *obj, const char *path);

#endif
