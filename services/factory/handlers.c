/* handlers: the factory service's Kafka records: stock.depleted opens a production order. */
#include "factory.h"

#include <stdio.h>

#include "event.h"
#include "log.h"
#include "sku.h"

kafka_verdict_t handlers_depleted(const rd_kafka_message_t *msg, void *ctx,
                                  char *errstr, size_t errstr_size)
{
    struct factory *f = ctx;
    kafka_verdict_t verdict = KAFKA_FAIL;
    event_meta_t meta;
    json_t *data;
    const char *sku;
    PGconn *conn = NULL;

    data = event_data_read(msg, "stock.depleted", &meta, errstr, errstr_size);
    if (data == NULL)
        goto done;
    sku = json_string_value(json_object_get(data, "sku"));
    if (sku == NULL || !sku_valid(sku)) {
        snprintf(errstr, errstr_size, "field 'sku' must be " SKU_RULE);
        goto done;
    }

    conn = db_acquire(f->db, (int)f->cfg.db_wait_ms, errstr, errstr_size);
    if (conn == NULL) {
        verdict = KAFKA_RETRY;
        goto done;
    }
    switch (store_open_order(conn, meta.id, sku, meta.time, errstr, errstr_size)) {
    case 1:
        log_info("production_order_opened sku=%s depletion=%s", sku, meta.id);
        caller_kick(f->caller);
        verdict = KAFKA_DONE;
        break;
    case 0:
        log_debug("depletion_covered sku=%s depletion=%s", sku, meta.id);
        verdict = KAFKA_DONE;
        break;
    case -2:
        verdict = KAFKA_FAIL;
        break;
    default:
        verdict = KAFKA_RETRY;
        break;
    }
done:
    db_release(f->db, conn);
    json_decref(data);
    return verdict;
}
