/* legacy: one call to the legacy factory's POST /production-orders, with libcurl under
 * connect and total timeouts. Retries are not made here: a failed call makes the
 * stock.depleted handler hand its record to the retry topic. */
#include "factory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define ANSWER_MAX (64 * 1024)  /* the factory's answer is small; more is an error */

struct answer {
    char *data;
    size_t len;
    int too_big;
};

static size_t answer_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct answer *a = userdata;
    size_t n = size * nmemb;
    char *grown;

    if (a->len + n > ANSWER_MAX) {
        a->too_big = 1;
        return 0; /* makes curl fail the transfer */
    }
    grown = realloc(a->data, a->len + n + 1);
    if (grown == NULL)
        return 0;
    a->data = grown;
    memcpy(a->data + a->len, ptr, n);
    a->len += n;
    a->data[a->len] = '\0';
    return n;
}

int legacy_call(const struct config *cfg, CURL *curl, const struct claim *c, char *fo_id,
                size_t fo_size, char *err, size_t err_size)
{
    struct curl_slist *headers = NULL;
    struct answer ans = { 0 };
    char url[1024], callback[1024];
    json_t *body = NULL, *reply = NULL;
    char *text = NULL;
    const char *id;
    long status = 0;
    CURLcode rc;
    int ret = -1;

    if (snprintf(url, sizeof(url), "%s/production-orders", cfg->legacy_url) >= (int)sizeof(url) ||
        snprintf(callback, sizeof(callback), "%s/deliveries?po=%s&token=%s", cfg->callback_url,
                 c->id, c->token) >= (int)sizeof(callback)) {
        snprintf(err, err_size, "URL too long");
        goto done;
    }
    body = json_pack("{s:s, s:i, s:s}", "sku", c->sku, "quantity", c->quantity,
                     "callback_url", callback);
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (text == NULL || headers == NULL) {
        snprintf(err, err_size, "out of memory");
        goto done;
    }

    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)cfg->call_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, answer_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &ans);
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        snprintf(err, err_size, "%s", ans.too_big ? "answer larger than 64 KiB"
                                                  : curl_easy_strerror(rc));
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 400 && status < 500) {
        snprintf(err, err_size, "HTTP %ld: the factory refused the order", status);
        ret = -2;
        goto done;
    }
    if (status < 200 || status > 299) {
        snprintf(err, err_size, "HTTP %ld", status);
        goto done;
    }
    reply = ans.data != NULL ? json_loads(ans.data, 0, NULL) : NULL;
    id = json_string_value(json_object_get(reply, "factory_order_id"));
    if (id == NULL || id[0] == '\0' || strlen(id) > FACTORY_ORDER_ID_MAX) {
        snprintf(err, err_size, "HTTP %ld without a usable factory_order_id", status);
        goto done;
    }
    snprintf(fo_id, fo_size, "%s", id);
    ret = 0;
done:
    curl_slist_free_all(headers);
    json_decref(body);
    json_decref(reply);
    free(text);
    free(ans.data);
    return ret;
}
