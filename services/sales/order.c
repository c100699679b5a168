/* order: validation of order requests. Pure functions, unit-tested. */
#include "sales.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int order_idempotency_key_valid(const char *key)
{
    size_t n = 0;

    for (const char *p = key; *p; p++, n++) {
        unsigned char c = (unsigned char)*p;
        if (n >= IDEMPOTENCY_KEY_MAX || c < 0x21 || c > 0x7e)
            return 0;
    }
    return n > 0;
}

int order_parse(const json_t *body, order_request_t *req, char *errstr, size_t errstr_size)
{
    const json_t *sku, *qty, *customer;
    json_int_t q;
    size_t len;

    memset(req, 0, sizeof(*req));
    if (!json_is_object(body)) {
        snprintf(errstr, errstr_size, "request body must be a JSON object");
        return -1;
    }

    sku = json_object_get(body, "sku");
    if (sku == NULL) {
        snprintf(errstr, errstr_size, "missing field 'sku'");
        return -1;
    }
    if (!json_is_string(sku)) {
        snprintf(errstr, errstr_size, "field 'sku' must be a string");
        return -1;
    }
    /* json_string_length counts bytes and sees embedded NULs that strlen would not. */
    len = json_string_length(sku);
    if (len != strlen(json_string_value(sku)) || !sku_valid(json_string_value(sku))) {
        snprintf(errstr, errstr_size, "field 'sku' must be " SKU_RULE);
        return -1;
    }
    memcpy(req->sku, json_string_value(sku), len + 1);

    qty = json_object_get(body, "quantity");
    if (qty == NULL) {
        snprintf(errstr, errstr_size, "missing field 'quantity'");
        return -1;
    }
    if (!json_is_integer(qty)) {
        snprintf(errstr, errstr_size, "field 'quantity' must be an integer");
        return -1;
    }
    q = json_integer_value(qty);
    if (q < 1 || q > ORDER_QUANTITY_MAX) {
        snprintf(errstr, errstr_size, "field 'quantity' must be between 1 and %d",
                 ORDER_QUANTITY_MAX);
        return -1;
    }
    req->quantity = (int)q;

    customer = json_object_get(body, "customer");
    if (customer != NULL && !json_is_null(customer)) {
        if (!json_is_string(customer)) {
            snprintf(errstr, errstr_size, "field 'customer' must be a string");
            return -1;
        }
        len = json_string_length(customer);
        if (len == 0 || len > CUSTOMER_MAX || len != strlen(json_string_value(customer))) {
            snprintf(errstr, errstr_size,
                     "field 'customer' must be 1 to %d bytes without NUL characters",
                     CUSTOMER_MAX);
            return -1;
        }
        memcpy(req->customer, json_string_value(customer), len + 1);
        req->has_customer = 1;
    }
    return 0;
}

char *order_canonical(const order_request_t *req)
{
    json_t *o;
    char *text;

    o = json_pack("{s:s, s:i, s:s*}", "sku", req->sku, "quantity", req->quantity,
                  "customer", req->has_customer ? req->customer : NULL);
    if (o == NULL)
        return NULL;
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return text;
}

void order_outcome_clear(order_outcome_t *out)
{
    if (out == NULL)
        return;
    json_decref(out->body);
    for (size_t i = 0; i < out->nevents; i++)
        event_out_clear(&out->events[i]);
    memset(out, 0, sizeof(*out));
}

/* An order that took its quantity: 201 and order.completed. */
static int decide_taken(const order_request_t *req, const order_facts_t *facts,
                        order_outcome_t *out, char *errstr, size_t errstr_size)
{
    event_order_completed_t ev;

    memset(&ev, 0, sizeof(ev));
    snprintf(ev.order_id, sizeof(ev.order_id), "%s", facts->order_id);
    snprintf(ev.sku, sizeof(ev.sku), "%s", req->sku);
    ev.quantity = req->quantity;
    ev.remaining = facts->level;
    if (req->has_customer)
        snprintf(ev.customer, sizeof(ev.customer), "%s", req->customer);
    out->status = 201;
    out->state = "completed";
    out->body = json_pack("{s:s, s:s, s:s, s:i, s:I}", "order_id", facts->order_id,
                          "status", "completed", "sku", req->sku, "quantity", req->quantity,
                          "remaining", (json_int_t)facts->level);
    if (event_order_completed_pack(&ev, &out->events[out->nevents], errstr, errstr_size) != 0)
        return -1;
    out->nevents++;
    return 0;
}

/* An order the level could not cover: 409, order.rejected, and stock.depleted for the
 * factory (the answer says a restock was requested). */
static int decide_short(const order_request_t *req, const order_facts_t *facts,
                        order_outcome_t *out, char *errstr, size_t errstr_size)
{
    event_order_rejected_t rej;
    event_stock_depleted_t dep;

    memset(&rej, 0, sizeof(rej));
    snprintf(rej.order_id, sizeof(rej.order_id), "%s", facts->order_id);
    snprintf(rej.sku, sizeof(rej.sku), "%s", req->sku);
    rej.requested = req->quantity;
    rej.available = facts->level;
    if (req->has_customer)
        snprintf(rej.customer, sizeof(rej.customer), "%s", req->customer);
    memset(&dep, 0, sizeof(dep));
    snprintf(dep.sku, sizeof(dep.sku), "%s", req->sku);
    dep.requested = req->quantity;
    dep.available = facts->level;
    snprintf(dep.order_id, sizeof(dep.order_id), "%s", facts->order_id);

    out->status = 409;
    out->state = "out_of_stock";
    out->body = json_pack("{s:s, s:s, s:s, s:i, s:I, s:b}", "order_id", facts->order_id,
                          "status", "out_of_stock", "sku", req->sku,
                          "requested", req->quantity, "available", (json_int_t)facts->level,
                          "restock_requested", 1);
    if (event_order_rejected_pack(&rej, &out->events[out->nevents], errstr, errstr_size) != 0)
        return -1;
    out->nevents++;
    if (event_stock_depleted_pack(&dep, &out->events[out->nevents], errstr, errstr_size) != 0)
        return -1;
    out->nevents++;
    return 0;
}

int order_decide(const order_request_t *req, const order_facts_t *facts,
                 order_outcome_t *out, char *errstr, size_t errstr_size)
{
    int ret = 0;

    memset(out, 0, sizeof(*out));
    switch (facts->fact) {
    case ORDER_TAKEN:
        ret = decide_taken(req, facts, out, errstr, errstr_size);
        break;
    case ORDER_SHORT:
        ret = decide_short(req, facts, out, errstr, errstr_size);
        break;
    case ORDER_SKU_UNKNOWN:
        out->status = 404;
        snprintf(out->error, sizeof(out->error), "unknown sku '%s'", req->sku);
        return 0;
    case ORDER_KEY_REUSED:
        out->status = 422;
        snprintf(out->error, sizeof(out->error),
                 "Idempotency-Key was already used with a different request");
        return 0;
    }
    if (ret == 0 && out->body == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        ret = -1;
    }
    if (ret != 0)
        order_outcome_clear(out);
    return ret;
}
