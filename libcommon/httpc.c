/* httpc: one outbound HTTP request over libcurl. Contract in httpc.h. */
#include "httpc.h"
#include "trace.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------- */
/* Text for errors */

void httpc_printable(char *text)
{
    size_t i;

    for (i = 0; text != NULL && text[i] != '\0'; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            text[i] = '?';
    }
}

void httpc_errf(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(err, err_size, fmt, ap) < 0)
        err[0] = '\0';
    va_end(ap);
    httpc_printable(err);
}

/* ---------------------------------------------------------------------------------- */
/* Forms */

int httpc_form_add(strbuf_t *form, const char *key, const char *value)
{
    char *esc = NULL;   /* owned; curl_free */
    int ret = -1;

    /* the handle argument of curl_easy_escape is unused since curl 7.82 */
    esc = curl_easy_escape(NULL, value != NULL ? value : "", 0);
    if (esc == NULL) {
        form->failed = 1;
        goto done;
    }
    if (form->len > 0)
        strbuf_addch(form, '&');
    strbuf_adds(form, key);
    strbuf_addch(form, '=');
    strbuf_adds(form, esc);
    ret = form->failed ? -1 : 0;
done:
    curl_free(esc);
    return ret;
}

/* ---------------------------------------------------------------------------------- */
/* One request */

/* curl's write callback: keeps the bytes in the strbuf, or stops the transfer (returns
 * less than it was given) once there would be more than its max. */
struct sink {
    strbuf_t *body;
    int too_long;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct sink *s = userdata;
    size_t n = size * nmemb;   /* size is always 1 */

    if (n > s->body->max - s->body->len) {
        s->too_long = 1;
        return 0;
    }
    if (strbuf_add(s->body, ptr, n) != 0)
        return 0;               /* CURLE_WRITE_ERROR, too_long not set: out of memory */
    return n;
}

/* Sets every option of req on curl. Returns CURLE_OK or the first failure. */
static CURLcode set_options(CURL *curl, const httpc_request_t *req, struct curl_slist *headers,
                            char *cerr, struct sink *sink)
{
    CURLcode rc;

#define SET(opt, val) do { if ((rc = curl_easy_setopt(curl, opt, val)) != CURLE_OK) \
                               return rc; } while (0)
    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_NOSIGNAL, 1L);              /* required with threads */
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TIMEOUT_MS, req->timeout_ms);
    if (req->connect_timeout_ms > 0)
        SET(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    if (req->user_agent != NULL)
        SET(CURLOPT_USERAGENT, req->user_agent);
    if (req->username != NULL) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_USERNAME, req->username);
        SET(CURLOPT_PASSWORD, req->password != NULL ? req->password : "");
    }
    if (headers != NULL)
        SET(CURLOPT_HTTPHEADER, headers);
    SET(CURLOPT_ERRORBUFFER, cerr);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, sink);
    if (req->body != NULL) {
        SET(CURLOPT_POSTFIELDS, req->body);
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    } else {
        SET(CURLOPT_HTTPGET, 1L);
    }
    if (req->method != NULL && strcmp(req->method, req->body != NULL ? "POST" : "GET") != 0)
        SET(CURLOPT_CUSTOMREQUEST, req->method);
#undef SET
    return CURLE_OK;
}

int httpc_request(CURL *curl, const httpc_request_t *req, strbuf_t *body,
                  httpc_result_t *res, char *errstr, size_t errstr_size)
{
    struct curl_slist *headers = NULL, *h;   /* owned */
    struct sink sink = { body, 0 };
    char cerr[CURL_ERROR_SIZE];
    curl_off_t pretransfer = 0, retry_after = 0;
    size_t i;
    int ret = -1;

    cerr[0] = '\0';
    memset(res, 0, sizeof(*res));
    res->rc = CURLE_FAILED_INIT;
    httpc_errf(errstr, errstr_size, "%s", "");
    if (curl == NULL || req == NULL || req->url == NULL || req->timeout_ms <= 0 ||
        body == NULL || body->max == 0) {
        httpc_errf(errstr, errstr_size, "no curl handle, URL, timeout or body limit");
        return -1;              /* nothing set on the handle */
    }
    strbuf_reset(body);
    curl_easy_reset(curl);      /* keeps the live connection, forgets the last options */
    /* The thread's trace goes on to the system called (W3C Trace Context). */
    if (trace_current() != NULL) {
        char tp[16 + TRACE_PARENT_SIZE];

        snprintf(tp, sizeof(tp), "traceparent: %s", trace_current());
        if ((h = curl_slist_append(headers, tp)) == NULL) {
            res->rc = CURLE_OUT_OF_MEMORY;
            httpc_errf(errstr, errstr_size, "cannot set up the request: out of memory");
            goto done;
        }
        headers = h;
    }
    for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++) {
        if ((h = curl_slist_append(headers, req->headers[i])) == NULL) {
            res->rc = CURLE_OUT_OF_MEMORY;
            httpc_errf(errstr, errstr_size, "cannot set up the request: out of memory");
            goto done;
        }
        headers = h;
    }
    res->rc = set_options(curl, req, headers, cerr, &sink);
    if (res->rc != CURLE_OK) {
        httpc_errf(errstr, errstr_size, "cannot set up the request: %s",
                   curl_easy_strerror(res->rc));
        goto done;
    }

    res->rc = curl_easy_perform(curl);
    if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &res->status) != CURLE_OK)
        res->status = 0;
    /* Pre-transfer time is set once the connection is up and the request about to go
     * (a reused connection too); 0 means nothing was sent. */
    if (curl_easy_getinfo(curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer) != CURLE_OK)
        pretransfer = 1;        /* unknown: assume it was sent */
    res->sent = res->rc == CURLE_OK || res->status != 0 || pretransfer > 0;
    res->too_long = sink.too_long;
    if (curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &retry_after) != CURLE_OK ||
        retry_after < 0)
        retry_after = 0;
    res->retry_after_s = retry_after > 86400 ? 86400 : (long)retry_after;
    /* only a body cut by our own limit still counts as an answer */
    if (res->rc == CURLE_OK || (res->rc == CURLE_WRITE_ERROR && sink.too_long)) {
        ret = 0;
        goto done;
    }
    if (res->rc == CURLE_WRITE_ERROR && body->failed)
        httpc_errf(errstr, errstr_size, "out of memory for the answer");
    else
        httpc_errf(errstr, errstr_size, "%s",
                   cerr[0] != '\0' ? cerr : curl_easy_strerror(res->rc));
done:
    /* nothing of this call (cerr, sink, headers, the body) may outlive it in the handle;
     * setting an option to NULL cannot fail */
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(headers);
    return ret;
}
