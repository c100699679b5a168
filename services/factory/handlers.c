/* handlers: the factory service's Kafka records: a stock.depleted event leads to at most one
 * call to the legacy factory per SKU; a failed call is handed to the retry topic. */
#include "factory.h"

#include <stdio.h>
#include <string.h>

#include "events.h"
#include "log.h"
#include "util.h"

/* The retry service gave up on a depletion: close its order so the SKU can be ordered again
 * by a later depletion (or by a replay of this one). */
static kafka_verdict_t give_up(struct factory *f, const kafka_record_t *rec,
                               const event_meta_t *meta, kafka_outcome_t *out)
{
    PGconn *conn = db_acquire(f->db, (int)f->cfg.db_wait_ms, out->error, sizeof(out->error));
    char why[160];
    int n;

    if (conn == NULL)
        return KAFKA_RETRY;
    snprintf(why, sizeof(why), "given up: %s after %d attempts (%s)", rec->expired,
             rec->attempt, rec->last_reason);
    n = store_give_up(conn, meta->id, why, out->error, sizeof(out->error));
    db_release(f->db, conn);
    if (n < 0)
        return KAFKA_RETRY;
    log_error("production_order_given_up depletion=%s reason=%s orders_closed=%d", meta->id,
              rec->expired, n);
    return KAFKA_DONE;
}

static kafka_verdict_t depleted(const kafka_record_t *rec, void *ctx, kafka_outcome_t *out)
{
    struct factory *f = ctx;
    kafka_verdict_t verdict = KAFKA_FAIL;
    event_meta_t meta;
    event_stock_depleted_t ev;
    const char *sku = ev.sku;
    PGconn *conn = NULL;
    struct claim c;
    char err[512];
    int64_t t0;
    int called;

    if (event_stock_depleted_parse(rec->msg, &meta, &ev, out->error, sizeof(out->error)) != 0) {
        snprintf(out->reason, sizeof(out->reason), "invalid_record");
        goto done;
    }
    if (rec->expired != NULL) {
        verdict = give_up(f, rec, &meta, out);
        goto done;
    }

    conn = db_acquire(f->db, (int)f->cfg.db_wait_ms, out->error, sizeof(out->error));
    if (conn == NULL) {
        verdict = KAFKA_RETRY;
        goto done;
    }
    switch (store_plan(conn, meta.id, sku, meta.time, f->cfg.delivery_timeout_ms,
                       f->cfg.factory_id, &c, out->error, sizeof(out->error))) {
    case PLAN_COVERED:
        log_debug("depletion_covered sku=%s depletion=%s", sku, meta.id);
        verdict = KAFKA_DONE;
        goto done;
    case PLAN_UNKNOWN:
        snprintf(out->reason, sizeof(out->reason), "unknown_sku");
        verdict = KAFKA_FAIL;
        goto done;
    case PLAN_FAILED:
        verdict = KAFKA_RETRY;
        goto done;
    case PLAN_CALL:
        break;
    }
    /* No connection is held during the call: it may take FACTORY_TIMEOUT. */
    db_release(f->db, conn);
    conn = NULL;

    t0 = util_mono_us();
    called = legacy_call(&f->cfg, f->curl, &c, err, sizeof(err));
    factory_metrics_legacy_call(f->metrics, called, util_mono_us() - t0);
    conn = db_acquire(f->db, (int)f->cfg.db_wait_ms, out->error, sizeof(out->error));
    if (conn == NULL) {
        /* The order stays pending; handling the depletion again calls again, and the
         * callback accepts one delivery per production order whatever happens. */
        verdict = KAFKA_RETRY;
        goto done;
    }
    if (called == 0) {
        if (store_requested(conn, c.id, meta.id, out->error, sizeof(out->error)) != 0) {
            verdict = KAFKA_RETRY;
            goto done;
        }
        log_info("factory_order_placed production_order_id=%s sku=%s quantity=%d attempt=%d "
                 "factory_id=%s product_id=%s", c.id, sku, c.quantity, rec->attempt + 1,
                 LOG_Q(c.factory_id), LOG_Q(c.product_id));
        verdict = KAFKA_DONE;
        goto done;
    }
    /* A refusal (4xx) is for good: the order is closed as failed (a later depletion, or a
     * replay of this one from dead-letter once the product's settings are fixed, opens it
     * again) and the depletion goes to dead-letter with the factory's words. */
    if ((called == -2 ? store_rejected(conn, c.id, err, out->error, sizeof(out->error))
                      : store_call_failed(conn, c.id, err, out->error, sizeof(out->error))) != 0)
        log_error("factory_record_failed production_order_id=%s error=%s", c.id,
                  LOG_Q(out->error));
    log_warn("factory_call_failed production_order_id=%s sku=%s attempt=%d error=%s", c.id,
             sku, rec->attempt + 1, LOG_Q(err));
    snprintf(out->error, sizeof(out->error), "%s", err);
    if (called == -2) {
        snprintf(out->reason, sizeof(out->reason), "factory_rejected");
        verdict = KAFKA_FAIL;
    } else {
        snprintf(out->reason, sizeof(out->reason), "factory_unavailable");
        if (rec->deadline_ms == 0 && f->cfg.retry_deadline_ms > 0)
            out->deadline_ms = util_now_ms() + f->cfg.retry_deadline_ms;
        verdict = KAFKA_RETRY_LATER;
    }
done:
    db_release(f->db, conn);
    return verdict;
}

const router_route_t handlers_routes[] = {
    { EVENT_STOCK_DEPLETED, depleted },
};
const size_t handlers_nroutes = sizeof(handlers_routes) / sizeof(handlers_routes[0]);
