/* legacy: one call to the legacy factory's POST /production-orders, with libcurl under
 * connect and total timeouts. Retries are not made here: a failed call makes the
 * stock.depleted handler hand its record to the retry topic. */
#include "factory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpc.h"
#include "strbuf.h"

#define ANSWER_MAX (64 * 1024)  /* the factory's answer is small; more is an error */

int legacy_call(const struct config *cfg, CURL *curl, const struct claim *c, char *fo_id,
                size_t fo_size, char *err, size_t err_size)
{
    static const char *const headers[] = { "Content-Type: application/json", NULL };
    httpc_request_t req = { .headers = headers };
    httpc_result_t res;
    strbuf_t ans;           /* owned */
    char url[1024], callback[1024];
    json_t *body = NULL, *reply = NULL;
    char *text = NULL;
    const char *id;
    int ret = -1;

    strbuf_init(&ans, ANSWER_MAX);
    if (snprintf(url, sizeof(url), "%s/production-orders", cfg->legacy_url) >= (int)sizeof(url) ||
        snprintf(callback, sizeof(callback), "%s/deliveries?po=%s&token=%s", cfg->callback_url,
                 c->id, c->token) >= (int)sizeof(callback)) {
        snprintf(err, err_size, "URL too long");
        goto done;
    }
    body = json_pack("{s:s, s:i, s:s}", "sku", c->sku, "quantity", c->quantity,
                     "callback_url", callback);
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (text == NULL) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }

    req.url = url;
    req.body = text;
    req.body_len = strlen(text);
    req.connect_timeout_ms = (long)cfg->connect_timeout_ms;
    req.timeout_ms = (long)cfg->call_timeout_ms;
    if (httpc_request(curl, &req, &ans, &res, err, err_size) != 0)
        goto done;
    if (res.too_long) {
        snprintf(err, err_size, "answer larger than 64 KiB");
        goto done;
    }
    if (res.status >= 400 && res.status < 500) {
        snprintf(err, err_size, "HTTP %ld: the factory refused the order", res.status);
        ret = -2;
        goto done;
    }
    if (res.status < 200 || res.status > 299) {
        snprintf(err, err_size, "HTTP %ld", res.status);
        goto done;
    }
    reply = json_loadb(ans.buf, ans.len, 0, NULL);
    id = json_string_value(json_object_get(reply, "factory_order_id"));
    if (id == NULL || id[0] == '\0' || strlen(id) > FACTORY_ORDER_ID_MAX) {
        snprintf(err, err_size, "HTTP %ld without a usable factory_order_id", res.status);
        goto done;
    }
    snprintf(fo_id, fo_size, "%s", id);
    ret = 0;
done:
    json_decref(body);
    json_decref(reply);
    free(text);
    strbuf_release(&ans);
    return ret;
}
