/* httpc: one outbound HTTP request over libcurl (bounded answer, timeouts, errstr), and the
 * one rule that makes an outside text safe for an error message. */
#ifndef DOZEN_HTTPC_H
#define DOZEN_HTTPC_H

#include <stddef.h>

#include <curl/curl.h>

#include "strbuf.h"

/* One request. Every pointer is borrowed for the call only. */
typedef struct httpc_request {
    const char *method;           /* NULL: GET without a body, POST with one; else sent
                                   * as is ("PUT", "DELETE", ...) */
    const char *url;              /* http:// or https:// only; redirects are not followed */
    const char *const *headers;   /* NULL, or "Name: value" lines ending with a NULL;
                                   * "Name:" removes a header curl would add ("Expect:") */
    const char *body;             /* NULL: none; else body_len bytes (a form from
                                   * httpc_form_add goes as x-www-form-urlencoded) */
    size_t body_len;
    const char *username;         /* non-NULL: HTTP Basic auth with password */
    const char *password;
    const char *user_agent;       /* NULL: no User-Agent header */
    long connect_timeout_ms;      /* 0: only timeout_ms bounds the connect */
    long timeout_ms;              /* the whole request; must be > 0 */
} httpc_request_t;

/* What a request gave. */
typedef struct httpc_result {
    CURLcode rc;                  /* the transfer's code; CURLE_OK when an answer came */
    long status;                  /* the answer's status; 0 when none came */
    int too_long;                 /* the answer's body went over the buffer's max: the
                                   * transfer was stopped, the status is still the answer's */
    int sent;                     /* 0 only when the request certainly never left: set-up,
                                   * name lookup or connect failed or timed out */
    long retry_after_s;           /* the answer's Retry-After in seconds (an HTTP date made
                                   * relative), 0 when it has none */
} httpc_result_t;

/*
 * Runs req on curl (the caller's handle, reused so that its connection stays alive; its
 * options are reset first and nothing of this call stays in it). The answer's body goes
 * into body (emptied first; body->max must be set, it bounds what is kept). Blocks at most
 * req->timeout_ms. Fills *res in every case.
 * Returns 0 when an answer came: any status, and res->too_long when its body was cut (body
 * then holds less than body->max bytes). Returns -1 when no complete answer came (bad
 * arguments, set-up failed, refused, timeout, reset, out of memory): errstr says why in
 * curl's words, made safe by httpc_printable ("Operation timed out after 200 milliseconds
 * with 0 bytes received", "Empty reply from server"); res->rc and res->sent tell more.
 */
int httpc_request(CURL *curl, const httpc_request_t *req, strbuf_t *body,
                  httpc_result_t *res, char *errstr, size_t errstr_size);

/* Appends "key=<value escaped>" to form (key is ours and goes as is), after a '&' unless
 * form is empty; every byte of value but letters, digits and "-._~" is %-escaped ('+' is
 * %2B, ' ' is %20; NULL is ""). For a POST body or a URL's query. Returns 0, or -1 with
 * form->failed set (out of memory, or over form->max). */
int httpc_form_add(strbuf_t *form, const char *key, const char *value);

/* The one rule for text from elsewhere in an error message: replaces, in text (changed in
 * place, NUL-terminated), every byte that is not printable ASCII, every '"' and every '\\'
 * by '?', so that it is safe in a log line, a JSON string and a database column. */
void httpc_printable(char *text);

/* Formats err like util_errf (err may be NULL or err_size 0), then httpc_printable. */
void httpc_errf(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
