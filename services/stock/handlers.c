/* handlers: the stock service's Kafka records: stock.replenished raises a level once. */
#include "stock.h"

#include <stdio.h>

#include "event.h"
#include "log.h"
#include "sku.h"

kafka_verdict_t handlers_replenished(const kafka_record_t *rec, void *ctx,
                                     kafka_outcome_t *out)
{
    char *errstr = out->error;
    size_t errstr_size = sizeof(out->error);
    struct stock *s = ctx;
    kafka_verdict_t verdict = KAFKA_FAIL;
    event_meta_t meta;
    json_t *data;
    const char *sku;
    json_int_t qty;
    PGconn *conn = NULL;
    long long level = 0;

    /* Anything wrong with the record itself can never pass: dead-letter it. */
    snprintf(out->reason, sizeof(out->reason), "invalid_record");
    data = event_data_read(rec->msg, "stock.replenished", &meta, errstr, errstr_size);
    if (data == NULL)
        goto done;
    sku = json_string_value(json_object_get(data, "sku"));
    if (sku == NULL || !sku_valid(sku)) {
        snprintf(errstr, errstr_size, "field 'sku' must be " SKU_RULE);
        goto done;
    }
    if (!json_is_integer(json_object_get(data, "quantity")) ||
        (qty = json_integer_value(json_object_get(data, "quantity"))) < 1 ||
        qty > STOCK_DELIVERY_MAX) {
        snprintf(errstr, errstr_size, "field 'quantity' must be an integer from 1 to %d",
                 STOCK_DELIVERY_MAX);
        goto done;
    }

    conn = db_acquire(s->db, (int)s->cfg.db_wait_ms, errstr, errstr_size);
    if (conn == NULL) {
        verdict = KAFKA_RETRY;
        goto done;
    }
    switch (store_replenish(conn, meta.id, sku, (long long)qty, &level, errstr,
                            errstr_size)) {
    case 1:
        log_info("stock_replenished sku=%s quantity=%lld level=%lld ce_id=%s", sku,
                 (long long)qty, level, meta.id);
        verdict = KAFKA_DONE;
        break;
    case 0:
        log_info("stock_replenish_duplicate sku=%s ce_id=%s", sku, meta.id);
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
    json_decref(data);
    return verdict;
}
