/* fuzz_http_path: how the HTTP server (libcommon/http.c) reads a request target: cut at
 * '?' or '#' (the query is libmicrohttpd's), http_path_split (percent-decoding, segments)
 * and http_path_match against the services' route patterns, and http_safe_string on what a
 * handler puts in an error answer. The input is the request target as sent.
 *
 * Properties: split segments hold no '/' and no NUL and fit the buffer; a match fills
 * one non-empty parameter per "{..}" segment; the error text is valid JSON. */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "http_int.h"

/* Every route pattern of the services and stand-ins, and a few made-up ones. */
static const char *const patterns[] = {
    "/", "/healthz", "/livez", "/readyz", "/metrics", "/products", "/orders", "/orders/{id}",
    "/inventory", "/inventory/{sku}", "/production-orders", "/production-orders/{id}",
    "/deliveries/{id}", "/subscribers", "/subscribers/{id}", "/subscribers/{id}/skus/{sku}",
    "/bulletins/run", "/bulletins/{date}", "/sms/status/{id}", "/signup", "/signup/confirm",
    "/unsubscribe", "/unsubscribe/confirm", "/sms/inbound", "/stats", "/admin/mode",
    "/admin/stats", "/api/dlq", "/api/dlq/replay", "/messages", "/daily",
    "/2010-04-01/Accounts/{sid}/Messages.json",
    "/{a}/{b}/{c}/{d}", "/a/{x}/", "/{x}/{y}/{z}/{w}/{v}",
};

static size_t count_params(const char *pattern)
{
    size_t n = 0;

    for (const char *p = strchr(pattern, '{'); p != NULL; p = strchr(p + 1, '{'))
        n++;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *target = fuzz_cstr(data, size);
    char *raw, *buf, *seg[HTTP_MAX_SEGMENTS];
    size_t nseg = 0, len;
    enum http_split_result r;

    /* As on_uri does: the path is what comes before the query or fragment. */
    raw = strndup(target, strcspn(target, "?#"));
    FUZZ_CHECK(raw != NULL);
    len = strlen(raw);
    if (raw[0] != '/') { /* the server answers 404 before splitting */
        free(raw);
        free(target);
        return 0;
    }
    buf = malloc(len + 1);
    FUZZ_CHECK(buf != NULL);
    r = http_path_split(raw, buf, seg, &nseg);
    FUZZ_CHECK(r == HTTP_SPLIT_OK || r == HTTP_SPLIT_TOO_MANY || r == HTTP_SPLIT_BAD);
    if (r == HTTP_SPLIT_OK) {
        FUZZ_CHECK(nseg >= 1 && nseg <= HTTP_MAX_SEGMENTS);
        for (size_t i = 0; i < nseg; i++) {
            FUZZ_CHECK(seg[i] >= buf && seg[i] + strlen(seg[i]) <= buf + len);
            FUZZ_CHECK(strchr(seg[i], '/') == NULL);
        }
        for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
            const char *params[HTTP_MAX_PARAMS];
            int nparams = -1;

            if (!http_path_match(patterns[p], seg, nseg, params, &nparams))
                continue;
            FUZZ_CHECK(nparams >= 0 && (size_t)nparams == count_params(patterns[p]));
            for (int i = 0; i < nparams; i++) {
                json_t *s = http_safe_string(params[i]); /* as in "unknown sku '%s'" */

                FUZZ_CHECK(params[i][0] != '\0');
                FUZZ_CHECK(s != NULL && json_is_string(s));
                json_decref(s);
            }
        }
    }
    fuzz_check_error_body(raw); /* error texts may quote the path */
    free(buf);
    free(raw);
    free(target);
    return 0;
}
