/* legacy: one call to the shop's Legacy Factory API, POST /api/manufactures, with libcurl
 * under connect and total timeouts. Retries are not made here: a failed call makes the
 * stock.depleted handler hand its record to the retry topic. */
#include "factory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpc.h"
#include "strbuf.h"
#include "util.h"

#define ANSWER_MAX (64 * 1024)  /* the factory's answer is small; more is an error */
#define CALLBACK_URL_MAX 2048
#define MESSAGE_MAX 300         /* of the factory's "message" kept in an error */

json_t *legacy_request(const struct config *cfg, const struct claim *c, char *err,
                       size_t err_size)
{
    char callback[CALLBACK_URL_MAX];
    int n;
    json_t *body;

    /* FACTORY_CALLBACK_URL has no trailing '/' (cfg_url), the id is a UUID and the token
     * hex: nothing here needs escaping. */
    n = snprintf(callback, sizeof(callback), "%s/deliveries/%s?token=%s", cfg->callback_url,
                 c->id, c->token);
    if (n < 0 || (size_t)n >= sizeof(callback)) {
        util_errf(err, err_size, "callback URL longer than %d bytes", CALLBACK_URL_MAX - 1);
        return NULL;
    }
    body = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}",
                     "MessageGroupId", cfg->group_id,
                     "MessageAttributeProductId", c->product_id,
                     "MessageAttributeProductCnt", c->quantity,
                     "MessageAttributeFactoryId", c->factory_id,
                     "MessageAttributeRequester", cfg->requester,
                     "CallbackUrl", callback);
    if (body == NULL)
        util_errf(err, err_size, "out of memory");
    return body;
}

/* How many bytes of the factory's {"message": ...} (valid UTF-8 without NULs: jansson
 * checks both) to keep: at most MESSAGE_MAX, never cutting a UTF-8 character, so that
 * the text stays valid for PostgreSQL and the dead-letter headers. *msg is borrowed from
 * reply, "(no message)" when there is none. */
static int refusal_message(json_t *reply, const char **msg)
{
    const char *m = json_string_value(json_object_get(reply, "message"));
    size_t n;

    if (m == NULL || m[0] == '\0') {
        *msg = "(no message)";
        return (int)strlen(*msg);
    }
    *msg = m;
    n = strlen(m);
    if (n <= MESSAGE_MAX)
        return (int)n;
    n = MESSAGE_MAX;
    while (n > 0 && ((unsigned char)m[n] & 0xc0) == 0x80)
        n--; /* m[n] continues a character: cut before the character's first byte */
    return (int)n;
}

int legacy_call(const struct config *cfg, CURL *curl, const struct claim *c,
                char *err, size_t err_size)
{
    static const char *const headers[] = { "Content-Type: application/json", NULL };
    httpc_request_t req = { .headers = headers };
    httpc_result_t res;
    strbuf_t ans;           /* owned */
    char url[1024];
    json_t *body = NULL, *reply = NULL;
    char *text = NULL;
    int ret = -1;

    strbuf_init(&ans, ANSWER_MAX);
    if (snprintf(url, sizeof(url), "%s/api/manufactures", cfg->legacy_url) >= (int)sizeof(url)) {
        util_errf(err, err_size, "URL too long");
        goto done;
    }
    if ((body = legacy_request(cfg, c, err, err_size)) == NULL)
        goto done;
    if ((text = json_dumps(body, JSON_COMPACT)) == NULL) {
        util_errf(err, err_size, "out of memory");
        goto done;
    }

    req.url = url;
    req.body = text;
    req.body_len = strlen(text);
    req.connect_timeout_ms = (long)cfg->connect_timeout_ms;
    req.timeout_ms = (long)cfg->call_timeout_ms;
    if (httpc_request(curl, &req, &ans, &res, err, err_size) != 0)
        goto done;
    if (res.status >= 400 && res.status < 500) {
        /* A permanent refusal whatever the body; its message says which attribute. */
        const char *msg;
        int len;

        reply = res.too_long ? NULL : json_loadb(ans.buf, ans.len, 0, NULL);
        len = refusal_message(reply, &msg);
        util_errf(err, err_size, "HTTP %ld from the legacy factory: %.*s", res.status, len, msg);
        ret = -2;
        goto done;
    }
    if (res.status < 200 || res.status > 299) {
        util_errf(err, err_size, "HTTP %ld", res.status);
        goto done;
    }
    /* Accepted. The body ("a small JSON") carries nothing this service needs: the factory
     * answers through the callback URL, which says which order it is about. */
    ret = 0;
done:
    json_decref(body);
    json_decref(reply);
    free(text);
    strbuf_release(&ans);
    return ret;
}
