/* tu_vectors.h — small helpers shared by unit tests: where the public test
 * vectors are, reading files, hex decoding. Everything returned is malloc'ed
 * (free() it); NULL means failure. Only add functions here, never change
 * published ones: several test files use them. */
#ifndef TU_VECTORS_H
#define TU_VECTORS_H

#include <stddef.h>
#include <jansson.h>

/* Directory of the shared vectors: $AJW_VECTORS, else "../shared/vectors"
 * (tests run from the repository root). Never NULL. */
const char *tu_vectors_dir(void);

/* "<vectors dir>/<rel>", malloc'ed. */
char *tu_vectors_path(const char *rel);

/* Whole file, NUL-terminated (not counted in *len; len may be NULL). */
char *tu_read_file(const char *path, size_t *len);

/* Parse a JSON file under the vectors dir (rel path) or any path (abs or
 * relative to the cwd) with jansson; NULL on error (message on stderr). */
json_t *tu_load_json_vector(const char *rel);
json_t *tu_load_json_file(const char *path);

/* Test JSON text (any value; flags are added to JSON_DECODE_ANY) as a
 * jansson tree the caller releases. Bad text is the test's own mistake:
 * the message goes to stderr and the test aborts. */
json_t *tu_json(const char *text, size_t flags);

/* Decode hex (even length, 0-9a-fA-F) to bytes; "" gives a 1-byte buffer
 * and *len 0. NULL on bad input. */
unsigned char *tu_hex_decode(const char *hex, size_t *len);

#endif
