/* callback: the SMS gateway's status callbacks: a thread that POSTs each message's status
 * changes (sent, then delivered) to the StatusCallback URL of its send, as Twilio does. */
#include "sms_gateway.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "httpc.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"

#define CB_BATCH      32        /* callbacks taken at a time */
#define CB_POLL_MS    50        /* how often the statuses are looked at */
#define CB_TIMEOUT_MS 5000      /* one POST */

struct sg_callbacks {
    sg_state_t *st;             /* borrowed */
    const char *account_sid;    /* borrowed */
    pthread_t thread;
};

/* POSTs one callback: Twilio's form (MessageSid, SmsSid, MessageStatus, SmsStatus,
 * AccountSid, From, To, ApiVersion). Returns 1 when a 2xx came. */
static int post_one(CURL *curl, const char *account_sid, const struct sg_callback *c)
{
    strbuf_t form = STRBUF_INIT, body;
    httpc_request_t req = { 0 };
    httpc_result_t res;
    char err[CURL_ERROR_SIZE];
    int ok = 0;

    strbuf_init(&body, 4096);
    httpc_form_add(&form, "MessageSid", c->sid);
    httpc_form_add(&form, "SmsSid", c->sid);
    httpc_form_add(&form, "AccountSid", account_sid);
    httpc_form_add(&form, "From", c->from);
    httpc_form_add(&form, "To", c->to);
    httpc_form_add(&form, "MessageStatus", c->status);
    httpc_form_add(&form, "SmsStatus", c->status);
    if (httpc_form_add(&form, "ApiVersion", SG_API_VERSION) != 0)
        goto done;
    req.url = c->url;
    req.body = form.buf;
    req.body_len = form.len;
    req.timeout_ms = CB_TIMEOUT_MS;
    req.user_agent = "TwilioProxy/1.1 (dozen sms-gateway)";
    if (httpc_request(curl, &req, &body, &res, err, sizeof(err)) != 0) {
        log_info("sms_callback outcome=failed sid=%s status=%s error=%s", c->sid, c->status,
                 LOG_Q(err));
        goto done;
    }
    ok = res.status >= 200 && res.status <= 299;
    log_info("sms_callback outcome=%s sid=%s status=%s http_status=%ld",
             ok ? "posted" : "refused", c->sid, c->status, res.status);
done:
    strbuf_release(&form);
    strbuf_release(&body);
    return ok;
}

static void *callbacks_main(void *arg)
{
    struct sg_callbacks *cb = arg;
    standin_t *si = state_standin(cb->st);
    struct sg_callback *due = calloc(CB_BATCH, sizeof(*due));
    CURL *curl = curl_easy_init();
    size_t n, i;

    if (due == NULL || curl == NULL) {
        log_error("callbacks_not_started error=\"out of memory\"");
        goto done;
    }
    while (standin_sleep(si, CB_POLL_MS) == 0) {
        do {
            n = state_callbacks_due(cb->st, util_now_ms(), due, CB_BATCH);
            for (i = 0; i < n; i++) {
                state_callback_count(cb->st, post_one(curl, cb->account_sid, &due[i]));
                if (due[i].twice)
                    state_callback_count(cb->st, post_one(curl, cb->account_sid, &due[i]));
            }
        } while (n == CB_BATCH && standin_sleep(si, 0) == 0);
    }
done:
    if (curl != NULL)
        curl_easy_cleanup(curl);
    free(due);
    return NULL;
}

struct sg_callbacks *callbacks_start(sg_state_t *st, const char *account_sid,
                                     char *errstr, size_t errstr_size)
{
    struct sg_callbacks *cb = calloc(1, sizeof(*cb));
    int rc;

    if (cb == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    cb->st = st;
    cb->account_sid = account_sid;
    if ((rc = pthread_create(&cb->thread, NULL, callbacks_main, cb)) != 0) {
        util_errf(errstr, errstr_size, "pthread_create: %s", strerror(rc));
        free(cb);
        return NULL;
    }
    return cb;
}

void callbacks_stop(struct sg_callbacks *cb)
{
    if (cb == NULL)
        return;
    /* standin_stop (called first) ends its sleeps; a POST in flight ends within its
     * timeout */
    pthread_join(cb->thread, NULL);
    free(cb);
}
