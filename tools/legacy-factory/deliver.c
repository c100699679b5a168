/* deliver: the legacy factory's callbacks: a time-ordered queue and a few delivery threads
 * that POST each order's result to its callback URL with libcurl, with retries. */
#include "legacy_factory.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "log.h"

/* One order's callback, from acceptance until its last attempt. */
struct lf_job {
    uint64_t seq;           /* the order's record in the state */
    uint64_t gen;           /* the generation it was queued in; deliver_cancel ends it */
    uint64_t tick;          /* queue order, so equal due times go first in, first out */
    int64_t due_ms;         /* monotonic clock */
    int attempt;            /* attempts made in the current delivery */
    int deliveries_left;    /* successful deliveries still to make: 1, or 2 (deliver_twice) */
    int delivery;           /* which delivery the attempts are for: 1, then 2 */
    char id[LF_ID_LEN + 1];
    char *url;              /* owned */
    char *body;             /* owned: what is POSTed */
    const char *content_type; /* static: "Content-Type: ..." of the body */
};

/*
 * The queue is a binary min-heap on (due_ms, tick) of at most LF_SCHEDULED_MAX jobs. Every
 * order counts against LF_SCHEDULED_MAX from its reservation until its last attempt ends:
 * reserved (between deliver_reserve and deliver_push) + queued (len) + in flight.
 */
struct lf_deliver {
    lf_state_t *state;      /* borrowed */
    pthread_mutex_t lock;
    pthread_cond_t cond;    /* CLOCK_MONOTONIC: a job was queued, or stop */
    struct lf_job **heap;   /* LF_SCHEDULED_MAX slots, owned, as are the jobs in it */
    size_t len;
    size_t reserved;
    size_t in_flight;
    size_t dropped;         /* jobs in flight when the stop came */
    uint64_t gen;
    uint64_t next_tick;
    int stopping;           /* under lock, for the threads' loop */
    atomic_int abort;       /* read by curl's progress callback without the lock */
    pthread_t threads[LF_DELIVER_THREADS];
    size_t nthreads;
};

/* ---------------------------------------------------------------------------------- */
/* Jobs and the heap */

struct lf_job *deliver_job_new(const char *id, const struct lf_order_in *in,
                               const struct lf_mode *mode)
{
    struct lf_job *job = calloc(1, sizeof(*job));
    const char *type = "application/json";

    if (job == NULL)
        return NULL;
    snprintf(job->id, sizeof(job->id), "%s", id);
    job->due_ms = util_mono_ms() + mode->delay_ms;
    job->deliveries_left = mode->deliver_twice ? 2 : 1;
    job->delivery = 1;
    job->url = strdup(in->callback_url);
    /* malloc'ed, owned by the job */
    if (lf_callback_body(in, mode, &job->body, &type) != 0)
        job->body = NULL;
    job->content_type = strcmp(type, "application/json") == 0
                        ? "Content-Type: application/json"
                        : "Content-Type: text/plain; charset=utf-8";
    if (job->url == NULL || job->body == NULL) {
        deliver_job_free(job);
        return NULL;
    }
    return job;
}

void deliver_job_free(struct lf_job *job)
{
    if (job == NULL)
        return;
    free(job->url);
    free(job->body);
    free(job);
}

static int job_before(const struct lf_job *a, const struct lf_job *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->tick < b->tick);
}

/* Adds job (ownership taken) to the heap. Lock held; there is always room (see above). */
static void heap_push(lf_deliver_t *d, struct lf_job *job)
{
    size_t i = d->len++;

    job->tick = d->next_tick++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!job_before(job, d->heap[parent]))
            break;
        d->heap[i] = d->heap[parent];
        i = parent;
    }
    d->heap[i] = job;
    /* Every waiting thread re-reads the earliest due time; there are only a few. */
    pthread_cond_broadcast(&d->cond);
}

/* Removes and returns the earliest job (owned by the caller). Lock held; len > 0. */
static struct lf_job *heap_pop(lf_deliver_t *d)
{
    struct lf_job *top = d->heap[0], *last = d->heap[--d->len];
    size_t i = 0;

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= d->len)
            break;
        if (child + 1 < d->len && job_before(d->heap[child + 1], d->heap[child]))
            child++;
        if (!job_before(d->heap[child], last))
            break;
        d->heap[i] = d->heap[child];
        i = child;
    }
    if (d->len > 0)
        d->heap[i] = last;
    return top;
}

/* ---------------------------------------------------------------------------------- */
/* One callback attempt */

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

/* Aborts a transfer in flight once deliver_stop has begun. */
static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    lf_deliver_t *d = clientp;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return atomic_load(&d->abort) ? 1 : 0;
}

/* POSTs job's body to its URL with curl (a handle of the calling thread, reused so that
 * connections are kept; NULL when none could be made). Blocks up to
 * LF_CALLBACK_TIMEOUT_MS. Returns the result; *status is the HTTP status or 0, and errstr
 * says what failed. */
static enum lf_cb_result post_callback(lf_deliver_t *d, CURL *curl, const struct lf_job *job,
                                       long *status, char *errstr, size_t errstr_size)
{
    char curl_err[CURL_ERROR_SIZE];
    struct curl_slist *hdrs = NULL, *tmp;
    enum lf_cb_result ret = LF_CB_FAILED;
    CURLcode rc;

    *status = 0;
    errstr[0] = '\0';
    if (curl == NULL) {
        util_errf(errstr, errstr_size, "no curl handle");
        goto done;
    }
    tmp = curl_slist_append(hdrs, job->content_type);
    if (tmp == NULL)
        goto oom;
    hdrs = tmp;
    tmp = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    if (tmp == NULL)
        goto oom;
    hdrs = tmp;
    curl_err[0] = '\0';
    if (curl_easy_setopt(curl, CURLOPT_URL, job->url) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
        util_errf(errstr, errstr_size, "curl refused the URL");
        goto done;
    }
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* required with threads */
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, job->body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(job->body));
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, LF_SERVICE);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, LF_CALLBACK_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, LF_CALLBACK_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, d);

    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        util_errf(errstr, errstr_size, "%s", curl_err[0] != '\0' ? curl_err
                                                                 : curl_easy_strerror(rc));
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    if (*status >= 200 && *status <= 299)
        ret = LF_CB_DELIVERED;
    else if (*status >= 400 && *status <= 499)
        ret = LF_CB_REJECTED;
    else
        util_errf(errstr, errstr_size, "HTTP status %ld", *status);
    goto done;
oom:
    util_errf(errstr, errstr_size, "out of memory");
done:
    /* The handle must not keep pointers to what is freed after this; a reset keeps its
     * open connections for the next callback. */
    if (curl != NULL)
        curl_easy_reset(curl);
    curl_slist_free_all(hdrs);
    return ret;
}

/* Makes one attempt for job, records and logs it, and decides what comes next: returns 1
 * with job->due_ms set when the job must be queued again, 0 when it is finished. */
static int attempt(lf_deliver_t *d, CURL *curl, struct lf_job *job)
{
    char err[CURL_ERROR_SIZE + 64];
    enum lf_cb_result r;
    long status;
    int last;

    job->attempt++;
    state_order_attempt(d->state, job->seq);
    r = post_callback(d, curl, job, &status, err, sizeof(err));
    last = r != LF_CB_FAILED || job->attempt >= LF_CALLBACK_ATTEMPTS;
    state_order_result(d->state, job->seq, r, last);

    switch (r) {
    case LF_CB_DELIVERED:
        job->deliveries_left--;
        log_info("callback_attempt manufacture_id=%s delivery=%d attempt=%d "
                 "outcome=delivered status=%ld next=%s", job->id, job->delivery, job->attempt,
                 status, job->deliveries_left > 0 ? "deliver_again" : "done");
        if (job->deliveries_left > 0) {
            job->delivery++;
            job->attempt = 0;
            job->due_ms = util_mono_ms();
            return 1;
        }
        return 0;
    case LF_CB_REJECTED:
        log_warn("callback_attempt manufacture_id=%s delivery=%d attempt=%d "
                 "outcome=rejected status=%ld next=give_up", job->id, job->delivery,
                 job->attempt, status);
        return 0;
    case LF_CB_FAILED:
        break;
    }
    log_warn("callback_attempt manufacture_id=%s delivery=%d attempt=%d outcome=failed "
             "status=%ld error=%s next=%s", job->id, job->delivery, job->attempt, status,
             LOG_Q(err), atomic_load(&d->abort) ? "drop" : last ? "give_up" : "retry");
    if (last)
        return 0;
    job->due_ms = util_mono_ms() + LF_CALLBACK_RETRY_MS;
    return 1;
}

/* ---------------------------------------------------------------------------------- */
/* The delivery threads */

static void mono_timespec(int64_t ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

/* Waits for the earliest job to fall due, takes it, attempts it outside the lock, and puts
 * it back when it has to be tried again, until deliver_stop. */
static void *deliver_main(void *arg)
{
    lf_deliver_t *d = arg;
    CURL *curl = curl_easy_init(); /* owned by this thread */

    if (curl == NULL)
        log_error("callback_curl_init_failed"); /* every attempt then fails, and says so */
    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        struct lf_job *job;
        struct timespec ts;
        int64_t now = util_mono_ms();
        int again;

        if (d->len == 0) {
            pthread_cond_wait(&d->cond, &d->lock);
            continue;
        }
        if (d->heap[0]->due_ms > now) {
            mono_timespec(d->heap[0]->due_ms, &ts);
            pthread_cond_timedwait(&d->cond, &d->lock, &ts);
            continue;
        }
        job = heap_pop(d);
        d->in_flight++;
        pthread_mutex_unlock(&d->lock);

        again = attempt(d, curl, job);

        pthread_mutex_lock(&d->lock);
        d->in_flight--;
        if (d->stopping) {
            d->dropped++;
            deliver_job_free(job);
        } else if (again && job->gen == d->gen) {
            heap_push(d, job);
        } else {
            deliver_job_free(job); /* finished, or cancelled by a reset meanwhile */
        }
    }
    pthread_mutex_unlock(&d->lock);
    curl_easy_cleanup(curl);
    return NULL;
}

lf_deliver_t *deliver_start(lf_state_t *st, char *errstr, size_t errstr_size)
{
    lf_deliver_t *d = NULL, *ret = NULL;
    int lock_ready = 0, cond_ready = 0, err;

    d = calloc(1, sizeof(*d));
    if (d == NULL || (d->heap = calloc(LF_SCHEDULED_MAX, sizeof(*d->heap))) == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    d->state = st;
    d->gen = 1;
    atomic_init(&d->abort, 0);
    if (pthread_mutex_init(&d->lock, NULL) != 0) {
        util_errf(errstr, errstr_size, "cannot create a mutex");
        goto done;
    }
    lock_ready = 1;
    if (util_cond_init_monotonic(&d->cond) != 0) {
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        goto done;
    }
    cond_ready = 1;
    for (d->nthreads = 0; d->nthreads < LF_DELIVER_THREADS; d->nthreads++) {
        err = pthread_create(&d->threads[d->nthreads], NULL, deliver_main, d);
        if (err != 0) {
            util_errf(errstr, errstr_size, "cannot start a delivery thread: %s",
                      strerror(err));
            goto done;
        }
    }
    ret = d;
    d = NULL; /* ownership passed to the caller */
done:
    if (d != NULL) {
        if (d->nthreads > 0) { /* stops and frees the threads started so far */
            deliver_stop(d);
        } else {
            if (cond_ready)
                pthread_cond_destroy(&d->cond);
            if (lock_ready)
                pthread_mutex_destroy(&d->lock);
            free(d->heap);
            free(d);
        }
    }
    return ret;
}

void deliver_stop(lf_deliver_t *d)
{
    size_t i, pending;

    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = 1;
    atomic_store(&d->abort, 1);
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->lock);
    for (i = 0; i < d->nthreads; i++)
        pthread_join(d->threads[i], NULL);

    /* No thread is left: no lock needed. */
    pending = d->len + d->dropped;
    for (i = 0; i < d->len; i++)
        deliver_job_free(d->heap[i]);
    if (pending > 0)
        log_warn("callbacks_dropped count=%zu reason=shutdown", pending);
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
    free(d->heap);
    free(d);
}

int deliver_reserve(lf_deliver_t *d, uint64_t *gen)
{
    int ret = -1;

    pthread_mutex_lock(&d->lock);
    if (d->reserved + d->len + d->in_flight < LF_SCHEDULED_MAX) {
        d->reserved++;
        *gen = d->gen;
        ret = 0;
    }
    pthread_mutex_unlock(&d->lock);
    return ret;
}

void deliver_release(lf_deliver_t *d)
{
    pthread_mutex_lock(&d->lock);
    d->reserved--;
    pthread_mutex_unlock(&d->lock);
}

void deliver_push(lf_deliver_t *d, uint64_t gen, uint64_t seq, struct lf_job *job)
{
    pthread_mutex_lock(&d->lock);
    d->reserved--;
    job->seq = seq;
    job->gen = gen;
    if (gen == d->gen && !d->stopping) {
        heap_push(d, job);
        job = NULL; /* owned by the heap */
    }
    pthread_mutex_unlock(&d->lock);
    deliver_job_free(job);
}

size_t deliver_cancel(lf_deliver_t *d)
{
    size_t i, n;

    pthread_mutex_lock(&d->lock);
    n = d->len;
    for (i = 0; i < d->len; i++)
        deliver_job_free(d->heap[i]);
    d->len = 0;
    d->gen++;
    pthread_mutex_unlock(&d->lock);
    return n;
}
