/* combine: concurrent orders applied together (flat combining), at two levels.
 *
 * Per SKU: orders of a SKU are placed one batch at a time in this process. An order whose
 * SKU has no batch is its batch's first. Orders that arrive while a batch of their SKU
 * runs queue up; when it ends, the first of them takes the whole queue (up to
 * COMBINE_BATCH_MAX) as the next batch, in arrival order. So the window adapts to the
 * load by itself: it is as long as the batch before. A SKU's slot exists only while some
 * order of it is here, so the table holds at most as many slots as there are request
 * threads.
 *
 * Across SKUs: at most `statements` statements run at once. A batch that finds fewer
 * running is placed at once (no delay under low load); otherwise it queues, orders of its
 * SKU that arrive meanwhile join it, and when a statement ends the batches queued
 * meanwhile go together in the next one (store_place_group), up to COMBINE_GROUP_MAX
 * orders. Since a SKU has one batch at a time, the SKUs of a statement are distinct. Each
 * order's answer is the one it would have had alone (store_place_batch,
 * store_place_group). */
#include "sales.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 256

enum waiter_state { W_QUEUED, W_LEAD, W_DONE };

struct waiter {
    store_batch_order_t order;
    enum waiter_state state;
    pthread_cond_t cv;
    struct waiter *next;
};

struct group_item;

struct slot {
    char sku[SKU_MAX + 1];
    struct waiter *head, *tail; /* queued behind the batch in progress */
    struct group_item *open;    /* its batch while that waits for a statement: an order
                                 * that arrives then joins it */
    struct slot *next;          /* in its bucket */
};

/* A SKU's batch at the second level: its leader's, on that leader's stack. */
struct group_item {
    struct waiter **batch;  /* room for COMBINE_BATCH_MAX */
    size_t n;
    pthread_cond_t *cv;   /* its leader's */
    struct slot *slot;
    enum waiter_state state;
    struct group_item *next;
    /* when W_LEAD: the statement's batches, this one first */
    struct group_item *members[COMBINE_GROUP_MAX];
    size_t nmembers;
};

struct combine {
    pthread_mutex_t mu;
    struct slot *buckets[NBUCKETS];
    int statements_max;       /* statements of several SKUs at once; 0: no second level */
    int statements;           /* running now */
    struct group_item *ghead, *gtail; /* batches waiting for a statement */
    metric_t *m_batch; /* dozen_orders_batch_size, NULL without metrics */
    metric_t *m_skus;  /* dozen_orders_statement_skus */
};

static const double batch_buckets[] = { 1, 2, 4, 8, 16, 32, 64 };

combine_t *combine_new(metrics_t *metrics, int statements)
{
    combine_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->statements_max = statements > 0 ? statements : 0;
    if (metrics != NULL) {
        c->m_batch = metrics_histogram(metrics, "dozen_orders_batch_size",
                                       "Orders without an Idempotency-Key placed together "
                                       "in one statement (1: alone).", NULL, batch_buckets,
                                       sizeof(batch_buckets) / sizeof(batch_buckets[0]));
        c->m_skus = metrics_histogram(metrics, "dozen_orders_statement_skus",
                                      "SKUs whose orders one statement placed (1: one SKU).",
                                      NULL, batch_buckets,
                                      sizeof(batch_buckets) / sizeof(batch_buckets[0]));
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void combine_free(combine_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < NBUCKETS; i++)
        while (c->buckets[i] != NULL) {
            struct slot *s = c->buckets[i];

            c->buckets[i] = s->next;
            free(s);
        }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static size_t bucket_of(const char *sku)
{
    size_t h = 5381;

    for (const unsigned char *p = (const unsigned char *)sku; *p; p++)
        h = h * 33 + *p;
    return h % NBUCKETS;
}

/* With c->mu held: the slot of sku, or NULL. *link is where it hangs. */
static struct slot *slot_find(combine_t *c, const char *sku, struct slot ***link)
{
    struct slot **l = &c->buckets[bucket_of(sku)];

    for (; *l != NULL; l = &(*l)->next)
        if (strcmp((*l)->sku, sku) == 0)
            break;
    *link = l;
    return *l;
}

/* Runs the batches of items (one SKU each, distinct SKUs, at most COMBINE_GROUP_MAX orders
 * in all, or one batch of up to COMBINE_BATCH_MAX) on a connection of their own: one
 * statement when it can. */
static void run_batches(combine_t *c, db_pool_t *pool, int wait_ms,
                        struct group_item *const *items, size_t nitems)
{
    store_batch_order_t orders[COMBINE_BATCH_MAX > COMBINE_GROUP_MAX ? COMBINE_BATCH_MAX
                                                                     : COMBINE_GROUP_MAX];
    char err[256];
    size_t n = 0;
    PGconn *conn = db_acquire(pool, wait_ms, err, sizeof(err));

    metric_observe(c->m_skus, (double)nitems);
    for (size_t k = 0; k < nitems; k++) {
        metric_observe(c->m_batch, (double)items[k]->n);
        for (size_t i = 0; i < items[k]->n; i++)
            orders[n++] = items[k]->batch[i]->order;
    }
    if (conn == NULL) {
        for (size_t i = 0; i < n; i++) {
            orders[i].ret = -1;
            snprintf(orders[i].err, sizeof(orders[i].err), "%s", err);
            order_outcome_clear(orders[i].out);
        }
    } else {
        if (nitems == 1)
            store_place_batch(conn, orders, n);
        else
            store_place_group(conn, orders, n);
        db_release(pool, conn);
    }
    n = 0;
    for (size_t k = 0; k < nitems; k++)
        for (size_t i = 0; i < items[k]->n; i++)
            items[k]->batch[i]->order = orders[n++];
}

/* With c->mu held and batches queued: the first of them leads the next statement, with
 * the ones after it that fit. */
static void group_form(combine_t *c)
{
    struct group_item *lead = c->ghead;
    size_t total = 0;

    lead->nmembers = 0;
    while (c->ghead != NULL && lead->nmembers < COMBINE_GROUP_MAX &&
           (lead->nmembers == 0 || total + c->ghead->n <= COMBINE_GROUP_MAX)) {
        struct group_item *g = c->ghead;

        c->ghead = g->next;
        if (g->slot->open == g)
            g->slot->open = NULL; /* sealed: later orders of its SKU wait for the next */
        lead->members[lead->nmembers++] = g;
        total += g->n;
    }
    if (c->ghead == NULL)
        c->gtail = NULL;
    lead->state = W_LEAD;
    pthread_cond_signal(lead->cv);
}

static int all_fast(struct waiter *const *batch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!batch[i]->order.fast)
            return 0;
    return 1;
}

/* With c->mu held, which it drops while the statement runs: places a SKU's batch (me),
 * alone or with other SKUs' batches. While it waits for a statement, orders of its SKU
 * may join it. */
static void place_batch(combine_t *c, db_pool_t *pool, int wait_ms, struct group_item *me)
{
    me->state = W_QUEUED;
    if (c->statements_max == 0 || !all_fast(me->batch, me->n)) {
        pthread_mutex_unlock(&c->mu);
        run_batches(c, pool, wait_ms, &me, 1);
        pthread_mutex_lock(&c->mu);
        return;
    }
    if (c->gtail != NULL)
        c->gtail->next = me;
    else
        c->ghead = me;
    c->gtail = me;
    me->slot->open = me;
    if (c->statements < c->statements_max) {
        c->statements++; /* the queue was empty: we lead, alone */
        group_form(c);
    }
    while (me->state == W_QUEUED)
        pthread_cond_wait(me->cv, &c->mu);
    if (me->state != W_LEAD)
        return; /* placed by the statement we were in */

    pthread_mutex_unlock(&c->mu);
    run_batches(c, pool, wait_ms, me->members, me->nmembers);
    pthread_mutex_lock(&c->mu);
    for (size_t k = 1; k < me->nmembers; k++) {
        me->members[k]->state = W_DONE;
        pthread_cond_signal(me->members[k]->cv);
    }
    if (c->ghead != NULL)
        group_form(c); /* the statement passes on to the batches that queued meanwhile */
    else
        c->statements--;
}

int combine_place(combine_t *c, db_pool_t *pool, int wait_ms, const order_request_t *req,
                  order_outcome_t *out, char *errstr, size_t errstr_size)
{
    struct waiter me, *batch[COMBINE_BATCH_MAX];
    struct group_item item;
    struct slot *s, **link;
    size_t n = 0;

    memset(&me, 0, sizeof(me));
    me.order.req = req;
    me.order.out = out;
    memset(out, 0, sizeof(*out));
    if (store_prepare_order(&me.order, errstr, errstr_size) != 0)
        return -1;
    if (pthread_cond_init(&me.cv, NULL) != 0) {
        order_outcome_clear(out);
        snprintf(errstr, errstr_size, "out of resources");
        return -1;
    }

    pthread_mutex_lock(&c->mu);
    s = slot_find(c, req->sku, &link);
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            pthread_mutex_unlock(&c->mu);
            pthread_cond_destroy(&me.cv);
            order_outcome_clear(out);
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
        snprintf(s->sku, sizeof(s->sku), "%s", req->sku);
        *link = s;
        me.state = W_LEAD; /* no batch runs: placed at once, alone */
        batch[n++] = &me;
    } else if (me.order.fast && s->open != NULL && s->head == NULL &&
               s->open->n < COMBINE_BATCH_MAX) {
        /* Its batch waits for a statement and nobody waits behind it: join, as its last. */
        s->open->batch[s->open->n++] = &me;
        me.state = W_QUEUED;
        while (me.state == W_QUEUED)
            pthread_cond_wait(&me.cv, &c->mu);
    } else {
        /* A batch of this SKU runs: wait for it, then either the first in the queue
         * (which places the queue) or placed by that first one. */
        if (s->tail != NULL)
            s->tail->next = &me;
        else
            s->head = &me;
        s->tail = &me;
        me.state = W_QUEUED;
        while (me.state == W_QUEUED)
            pthread_cond_wait(&me.cv, &c->mu);
        if (me.state == W_LEAD) {
            s = slot_find(c, req->sku, &link); /* still there: it has us queued */
            while (s->head != NULL && n < COMBINE_BATCH_MAX) {
                batch[n++] = s->head;
                s->head = s->head->next;
            }
            if (s->head == NULL)
                s->tail = NULL;
        }
    }

    if (me.state == W_LEAD) {
        memset(&item, 0, sizeof(item));
        item.batch = batch;
        item.n = n;
        item.cv = &me.cv;
        item.slot = s;
        place_batch(c, pool, wait_ms, &item);
        for (size_t i = 1; i < item.n; i++) {
            batch[i]->state = W_DONE;
            pthread_cond_signal(&batch[i]->cv);
        }
        s = slot_find(c, req->sku, &link);
        if (s->head != NULL) {
            s->head->state = W_LEAD; /* the next batch: the queue, first one leading */
            pthread_cond_signal(&s->head->cv);
        } else {
            *link = s->next;
            free(s);
        }
    }
    pthread_mutex_unlock(&c->mu);
    pthread_cond_destroy(&me.cv);
    if (me.order.ret != 0)
        snprintf(errstr, errstr_size, "%s", me.order.err);
    return me.order.ret;
}
