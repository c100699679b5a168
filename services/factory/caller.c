/* caller: calls the legacy factory for due production orders, on a few worker threads.
 *
 * Orders live in PostgreSQL, not in memory: a worker claims one (a lease in the row), calls
 * the factory with libcurl under connect and total timeouts, and records the answer. A
 * failure (refused, timeout, 5xx, a bad answer) sets the next attempt after an exponential
 * backoff, so one SKU's failures never hold up another SKU, a partition or the consumer. */
#include "factory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "log.h"
#include "util.h"

#define IDLE_WAIT_MS 500        /* how often an idle worker looks for due orders */
#define ANSWER_MAX (64 * 1024)  /* the factory's answer is small; more is an error */

struct caller {
    struct factory *f;
    pthread_t *threads;
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int kicks;
    volatile int stop;
};

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

long long caller_backoff_ms(long long initial_ms, long long max_ms, int failed_attempts)
{
    long long d = initial_ms;

    for (int i = 1; i < failed_attempts && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}

/* Calls POST {legacy}/production-orders for claim c. Returns 0 with the factory's order id
 * in fo_id, or -1 with a short reason in err. */
static int call_factory(struct caller *cl, CURL *curl, const struct claim *c, char *fo_id,
                        size_t fo_size, char *err, size_t err_size)
{
    const struct config *cfg = &cl->f->cfg;
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

/* Waits until kicked, stopped or IDLE_WAIT_MS passed. */
static void idle_wait(struct caller *cl)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += (long)IDLE_WAIT_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&cl->mu);
    while (cl->kicks == 0 && !cl->stop) {
        if (pthread_cond_timedwait(&cl->cond, &cl->mu, &until) == ETIMEDOUT)
            break;
    }
    if (cl->kicks > 0)
        cl->kicks--;
    pthread_mutex_unlock(&cl->mu);
}

/* One round: claim a due order, call the factory, record the outcome. Returns 1 when an
 * order was handled (look again at once), 0 when nothing was due or the database failed. */
static int work_once(struct caller *cl, CURL *curl)
{
    struct factory *f = cl->f;
    const struct config *cfg = &f->cfg;
    struct claim c;
    char err[512], dberr[512], fo_id[FACTORY_ORDER_ID_MAX + 1];
    long long lease = cfg->connect_timeout_ms + cfg->call_timeout_ms + 5000, retry_ms;
    PGconn *conn;
    int got, rec;

    conn = db_acquire(f->db, (int)cfg->db_wait_ms, dberr, sizeof(dberr));
    if (conn == NULL) {
        log_warn("factory_claim_failed error=\"%s\"", dberr);
        return 0;
    }
    got = store_claim(conn, lease, cfg->delivery_timeout_ms, &c, dberr, sizeof(dberr));
    db_release(f->db, conn);
    if (got <= 0) {
        if (got < 0)
            log_warn("factory_claim_failed error=\"%s\"", dberr);
        return 0;
    }

    if (call_factory(cl, curl, &c, fo_id, sizeof(fo_id), err, sizeof(err)) == 0) {
        log_info("factory_order_placed production_order_id=%s sku=%s quantity=%d attempt=%d "
                 "factory_order_id=%s", c.id, c.sku, c.quantity, c.attempt, fo_id);
        retry_ms = -1;
    } else {
        retry_ms = caller_backoff_ms(cfg->retry_initial_ms, cfg->retry_max_ms, c.attempt);
        log_warn("factory_call_failed production_order_id=%s sku=%s attempt=%d error=\"%s\" "
                 "retry_in_ms=%lld", c.id, c.sku, c.attempt, err, retry_ms);
    }

    /* If this write is lost, the lease runs out and the order is called again: at worst a
     * second factory order, whose delivery the production order accepts only once. */
    conn = db_acquire(f->db, (int)cfg->db_wait_ms, dberr, sizeof(dberr));
    rec = conn == NULL ? -1
          : retry_ms < 0 ? store_requested(conn, c.id, fo_id, dberr, sizeof(dberr))
                         : store_call_failed(conn, c.id, err, retry_ms, dberr, sizeof(dberr));
    db_release(f->db, conn);
    if (rec != 0)
        log_error("factory_record_failed production_order_id=%s error=\"%s\"", c.id, dberr);
    return 1;
}

static void *worker(void *arg)
{
    struct caller *cl = arg;
    CURL *curl = curl_easy_init();

    if (curl == NULL) {
        log_error("factory_worker_failed error=\"curl_easy_init\"");
        return NULL;
    }
    while (!cl->stop) {
        if (!work_once(cl, curl))
            idle_wait(cl);
    }
    curl_easy_cleanup(curl);
    return NULL;
}

struct caller *caller_start(struct factory *f, char *errstr, size_t errstr_size)
{
    struct caller *cl = calloc(1, sizeof(*cl));
    pthread_condattr_t attr;
    int err;

    if (cl == NULL || (cl->threads = calloc((size_t)f->cfg.workers, sizeof(pthread_t))) == NULL) {
        free(cl);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    cl->f = f;
    pthread_mutex_init(&cl->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cl->cond, &attr);
    pthread_condattr_destroy(&attr);
    for (cl->nthreads = 0; cl->nthreads < f->cfg.workers; cl->nthreads++) {
        err = pthread_create(&cl->threads[cl->nthreads], NULL, worker, cl);
        if (err != 0) {
            snprintf(errstr, errstr_size, "pthread_create: %s", strerror(err));
            caller_stop(cl);
            return NULL;
        }
    }
    return cl;
}

void caller_kick(struct caller *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->kicks = c->nthreads;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

void caller_stop(struct caller *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->nthreads; i++)
        pthread_join(c->threads[i], NULL);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c->threads);
    free(c);
}
