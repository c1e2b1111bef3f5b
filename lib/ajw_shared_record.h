/* ajw_shared_record.h — the record every shared store keeps per source: how
 * it is named and how it is written and read back.
 *
 * A record is a MAC line and a compact JSON object J:
 *   "AJW2 " <64 hex digits of HMAC-SHA-256(key, J)> "\n" J
 *   J = {"v":2,"url":...,["ca_file":...,]"fetched":<usec>,"max_age":<s|-1>,
 *        ["etag":...,]"body":<the document as a string>}
 * named by the SHA-256 of "url" or "url\nca_file". The key is the record
 * key of the fleet or per-server secret (ajw_secret.h): whoever can write a
 * store but not read that secret cannot make a record we take. Whatever a
 * store hands back is untrusted (a file someone replaced, a remote cache
 * someone wrote to): the MAC is checked, in constant time, before a byte of
 * J is parsed; decoding is strict, size-capped, and only ever yields a
 * document for the exact url and ca_file asked for. */
#ifndef AJW_SHARED_RECORD_H
#define AJW_SHARED_RECORD_H

#include <apr_pools.h>
#include <apr_errno.h>

#include "ajw_shared.h"

#define AJW_SHARED_RECORD_VERSION 2
#define AJW_SHARED_KEY_LEN        32     /* bytes of the MAC key */
#define AJW_SHARED_ID_LEN         32     /* bytes of the binary id */
#define AJW_SHARED_ETAG_MAX       255

/* The binary id of (url, ca_file; NULL = system store): SHA-256 of url, or
 * of url "\n" ca_file. APR_EGENERAL when hashing fails. */
apr_status_t ajw_shared_record_id(unsigned char id[AJW_SHARED_ID_LEN], const char *url,
                                  const char *ca_file, apr_pool_t *p);

/* "<64 lowercase hex digits of the id><suffix>" from p; NULL when hashing
 * fails. The file store's names; the socache ids are the binary form. */
const char *ajw_shared_record_name(const char *url, const char *ca_file, const char *suffix,
                                   apr_pool_t *p);

/* The largest encoded record a reader accepts for documents of at most
 * max_len bytes (JSON escaping can double a document): 2 * max_len + 64 KiB. */
size_t ajw_shared_record_cap(size_t max_len);

/* Encode doc as the record of (url, ca_file), MACed with key, into *out
 * (NUL-terminated, *len bytes, from p). APR_EINVAL with *why for a doc no reader would take:
 * no body, fetched <= 0, max_age < -1, an ETag over 255 bytes, a body that
 * is not UTF-8. */
apr_status_t ajw_shared_record_encode(char **out, size_t *len,
                                      const unsigned char key[AJW_SHARED_KEY_LEN],
                                      const char *url, const char *ca_file,
                                      const ajw_shared_doc_t *doc, const char **why,
                                      apr_pool_t *p);

/* Decode len bytes of buf (need not be NUL-terminated) as the record of
 * (url, ca_file) MACed with key into *doc (copies from p). APR_EGENERAL with
 * *why (a short reason, no path, no key material) and *doc zeroed when the
 * bytes are over ajw_shared_record_cap(max_len); have no MAC line ("record
 * without a MAC ...": an earlier version's record, or a planted one); have a
 * MAC that does not verify under key ("record MAC does not verify ..."); or
 * when J is not one strict JSON object (duplicate members refused), is of
 * another version, url or ca_file, or holds a bad fetch time, max_age or
 * ETag, an empty body or one over max_len. */
apr_status_t ajw_shared_record_decode(ajw_shared_doc_t *doc, const char *buf, size_t len,
                                      const unsigned char key[AJW_SHARED_KEY_LEN],
                                      const char *url, const char *ca_file, size_t max_len,
                                      const char **why, apr_pool_t *p);

#endif
