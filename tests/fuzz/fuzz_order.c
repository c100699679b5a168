/* fuzz_order: the sales order body parser, as POST /orders runs it: http_body_object (the
 * JSON text), order_parse (the fields), then what a valid request goes on to
 * (order_canonical, order_decide for each fact). The input is the request body; its first
 * line is also tried as an Idempotency-Key. */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "http.h"
#include "sales.h"

static void check_key(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    char *key = fuzz_cstr(data, nl != NULL ? (size_t)(nl - data) : size);
    size_t len = strlen(key);

    if (order_idempotency_key_valid(key))
        FUZZ_CHECK(len >= 1 && len <= IDEMPOTENCY_KEY_MAX && fuzz_printable(key, len) &&
                   strchr(key, ' ') == NULL);
    free(key);
}

/* A valid request, through the decision for each fact: every answer has a status, and a
 * body or an error text. */
static void decide_all(const order_request_t *req)
{
    static const order_fact_t facts[] = { ORDER_TAKEN, ORDER_SHORT, ORDER_SKU_UNKNOWN,
                                          ORDER_KEY_REUSED };

    for (size_t i = 0; i < sizeof(facts) / sizeof(facts[0]); i++) {
        order_facts_t f = { .fact = facts[i], .level = 7 };
        order_outcome_t out;
        char err[256] = "";

        snprintf(f.order_id, sizeof(f.order_id), "%s", "0b7e4c2a-5d1f-4a8e-9c3b-2f6d8e1a4b5c");
        FUZZ_CHECK(order_decide(req, &f, &out, err, sizeof(err)) == 0);
        FUZZ_CHECK(out.status >= 200 && out.status <= 499);
        FUZZ_CHECK(out.body != NULL || out.error[0] != '\0');
        order_outcome_clear(&out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_cstr(data, size); /* the server's bodies are NUL-terminated */
    http_request_t req;
    http_response_t res;
    order_request_t order;
    json_t *obj;
    char err[256] = "";

    check_key(data, size);
    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    req.method = "POST";
    req.path = "/orders";
    req.body = body;
    req.body_len = size;
    obj = http_body_object(&req, &res);
    if (obj == NULL) {
        /* A refused body always has a 400 answer with a JSON error. */
        FUZZ_CHECK(res.status == 400 && json_is_object(res.body));
        json_decref(res.body);
        free(body);
        return 0;
    }
    if (order_parse(obj, &order, err, sizeof(err)) == 0) {
        char *canon = order_canonical(&order);

        FUZZ_CHECK(sku_valid(order.sku));
        FUZZ_CHECK(order.quantity >= 1 && order.quantity <= ORDER_QUANTITY_MAX);
        FUZZ_CHECK(!order.has_customer ||
                   (order.customer[0] != '\0' && strlen(order.customer) <= CUSTOMER_MAX));
        /* The canonical text parses back to the same request. */
        FUZZ_CHECK(canon != NULL);
        {
            json_error_t jerr;
            json_t *again = json_loads(canon, JSON_REJECT_DUPLICATES, &jerr);
            order_request_t order2;
            char *canon2;

            FUZZ_CHECK(again != NULL);
            FUZZ_CHECK(order_parse(again, &order2, err, sizeof(err)) == 0);
            canon2 = order_canonical(&order2);
            FUZZ_CHECK(canon2 != NULL && strcmp(canon, canon2) == 0);
            free(canon2);
            json_decref(again);
        }
        free(canon);
        decide_all(&order);
    } else {
        FUZZ_CHECK(err[0] != '\0');
    }
    json_decref(obj);
    free(body);
    return 0;
}
