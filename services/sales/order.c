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
