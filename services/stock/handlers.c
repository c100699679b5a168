/* handlers: the stock service's Kafka records: stock.replenished raises a level once. */
#include "stock.h"

#include <stdio.h>

#include "events.h"
#include "log.h"

static kafka_verdict_t replenished(const kafka_record_t *rec, void *ctx,
                                   kafka_outcome_t *out)
{
    char *errstr = out->error;
    size_t errstr_size = sizeof(out->error);
    struct stock *s = ctx;
    kafka_verdict_t verdict = KAFKA_FAIL;
    event_meta_t meta;
    event_stock_replenished_t ev;
    PGconn *conn = NULL;
    long long level = 0;

    /* Anything wrong with the record itself can never pass: dead-letter it. */
    snprintf(out->reason, sizeof(out->reason), "invalid_record");
    if (event_stock_replenished_parse(rec->msg, &meta, &ev, errstr, errstr_size) != 0)
        goto done;

    conn = db_acquire(s->db, (int)s->cfg.db_wait_ms, errstr, errstr_size);
    if (conn == NULL) {
        verdict = KAFKA_RETRY;
        goto done;
    }
    switch (store_replenish(conn, meta.id, ev.sku, ev.quantity, &level, errstr,
                            errstr_size)) {
    case 1:
        log_info("stock_replenished sku=%s quantity=%lld level=%lld ce_id=%s", ev.sku,
                 ev.quantity, level, meta.id);
        verdict = KAFKA_DONE;
        break;
    case 0:
        log_info("stock_replenish_duplicate sku=%s ce_id=%s", ev.sku, meta.id);
        verdict = KAFKA_DONE;
        break;
    case -2:
        snprintf(out->reason, sizeof(out->reason), "cannot_apply");
        verdict = KAFKA_FAIL;
        break;
    default:
        verdict = KAFKA_RETRY;
        break;
    }
done:
    db_release(s->db, conn);
    return verdict;
}

const router_route_t handlers_routes[] = {
    { EVENT_STOCK_REPLENISHED, replenished },
};
const size_t handlers_nroutes = sizeof(handlers_routes) / sizeof(handlers_routes[0]);
