/* test_order: validation of order requests and Idempotency-Keys, and the decision on an
 * order (services/sales/order.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sales.h"

/* Parses text (a test literal) and runs order_parse on it; returns its result. */
static int parse(const char *text, order_request_t *req, char *err, size_t err_size)
{
    json_error_t jerr;
    json_t *body = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    int ret;

    assert_non_null(body);
    ret = order_parse(body, req, err, err_size);
    json_decref(body);
    return ret;
}

static void test_valid_order(void **state)
{
    order_request_t req;
    char err[256];

    (void)state;
    assert_int_equal(parse("{\"sku\":\"glazed\",\"quantity\":2}", &req, err, sizeof(err)), 0);
    assert_string_equal(req.sku, "glazed");
    assert_int_equal(req.quantity, 2);
    assert_int_equal(req.has_customer, 0);

    assert_int_equal(parse("{\"sku\":\"a.b_c-1\",\"quantity\":1000,\"customer\":\"ann\"}",
                           &req, err, sizeof(err)), 0);
    assert_int_equal(req.quantity, 1000);
    assert_int_equal(req.has_customer, 1);
    assert_string_equal(req.customer, "ann");

    assert_int_equal(parse("{\"sku\":\"x\",\"quantity\":1,\"customer\":null}", &req, err,
                           sizeof(err)), 0);
    assert_int_equal(req.has_customer, 0);
}

static void expect_error(const char *text, const char *fragment)
{
    order_request_t req;
    char err[256] = "";

    assert_int_equal(parse(text, &req, err, sizeof(err)), -1);
    if (strstr(err, fragment) == NULL)
        fail_msg("'%s': error '%s' does not mention '%s'", text, err, fragment);
}

static void test_invalid_orders(void **state)
{
    (void)state;
    expect_error("[]", "JSON object");
    expect_error("{}", "missing field 'sku'");
    expect_error("{\"sku\":\"g\"}", "missing field 'quantity'");
    expect_error("{\"sku\":1,\"quantity\":1}", "'sku' must be a string");
    expect_error("{\"sku\":\"\",\"quantity\":1}", "'sku' must be 1 to 64");
    expect_error("{\"sku\":\"a b\",\"quantity\":1}", "'sku' must be 1 to 64");
    expect_error("{\"sku\":\"a\\u0000b\",\"quantity\":1}", "'sku' must be 1 to 64");
    expect_error("{\"sku\":\"g\",\"quantity\":\"1\"}", "must be an integer");
    expect_error("{\"sku\":\"g\",\"quantity\":1.0}", "must be an integer");
    expect_error("{\"sku\":\"g\",\"quantity\":false}", "must be an integer");
    expect_error("{\"sku\":\"g\",\"quantity\":0}", "between 1 and 1000");
    expect_error("{\"sku\":\"g\",\"quantity\":1001}", "between 1 and 1000");
    expect_error("{\"sku\":\"g\",\"quantity\":-5}", "between 1 and 1000");
    expect_error("{\"sku\":\"g\",\"quantity\":1,\"customer\":[]}", "'customer' must be a string");
    expect_error("{\"sku\":\"g\",\"quantity\":1,\"customer\":\"\"}", "'customer' must be 1 to");
}

static void test_sku_length_limit(void **state)
{
    char sku[80];

    (void)state;
    memset(sku, 'a', sizeof(sku));
    sku[64] = '\0';
    assert_int_equal(sku_valid(sku), 1);
    sku[64] = 'a';
    sku[65] = '\0';
    assert_int_equal(sku_valid(sku), 0);
    assert_int_equal(sku_valid(""), 0);
    assert_int_equal(sku_valid("glazed/../x"), 0);
}

static void test_idempotency_keys(void **state)
{
    char key[300];

    (void)state;
    assert_int_equal(order_idempotency_key_valid("abc-123_XYZ:!~"), 1);
    assert_int_equal(order_idempotency_key_valid(""), 0);
    assert_int_equal(order_idempotency_key_valid("a b"), 0);
    assert_int_equal(order_idempotency_key_valid("caf\xc3\xa9"), 0);
    memset(key, 'k', sizeof(key));
    key[255] = '\0';
    assert_int_equal(order_idempotency_key_valid(key), 1);
    key[255] = 'k';
    key[256] = '\0';
    assert_int_equal(order_idempotency_key_valid(key), 0);
}

static void test_canonical_ignores_key_order_and_extras(void **state)
{
    order_request_t a, b;
    char err[256];
    char *ca, *cb;

    (void)state;
    assert_int_equal(parse("{\"quantity\":2,\"sku\":\"g\",\"note\":1}", &a, err, sizeof(err)), 0);
    assert_int_equal(parse("{\"sku\":\"g\",\"quantity\":2}", &b, err, sizeof(err)), 0);
    ca = order_canonical(&a);
    cb = order_canonical(&b);
    assert_non_null(ca);
    assert_string_equal(ca, cb);
    free(cb);
    assert_int_equal(parse("{\"sku\":\"g\",\"quantity\":3}", &b, err, sizeof(err)), 0);
    cb = order_canonical(&b);
    assert_string_not_equal(ca, cb);
    free(ca);
    free(cb);
}

/* The facts of an order of req; level as the database reported it. */
static order_facts_t facts_of(order_fact_t fact, long long level)
{
    order_facts_t f;

    memset(&f, 0, sizeof(f));
    f.fact = fact;
    snprintf(f.order_id, sizeof(f.order_id), "%s", "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f");
    f.level = level;
    return f;
}

/* Event i of out parsed back: a new reference. */
static json_t *event_value(const order_outcome_t *out, size_t i)
{
    json_t *v = json_loads(out->events[i].text, 0, NULL);

    assert_non_null(v);
    return v;
}

static void test_decide_taken(void **state)
{
    order_request_t req = { .sku = "glazed", .quantity = 3, .customer = "ann",
                            .has_customer = 1 };
    order_facts_t f = facts_of(ORDER_TAKEN, 7);
    order_outcome_t out;
    char err[256];
    json_t *v;

    (void)state;
    assert_int_equal(order_decide(&req, &f, &out, err, sizeof(err)), 0);
    assert_int_equal(out.status, 201);
    assert_string_equal(out.state, "completed");
    assert_string_equal(json_string_value(json_object_get(out.body, "status")), "completed");
    assert_int_equal(json_integer_value(json_object_get(out.body, "remaining")), 7);
    assert_int_equal(out.nevents, 1);
    assert_string_equal(out.events[0].spec->type, "order.completed");
    assert_string_equal(out.events[0].spec->topic, TOPIC_ORDERS);
    assert_string_equal(out.events[0].key, "glazed");
    v = event_value(&out, 0);
    assert_string_equal(json_string_value(json_object_get(v, "order_id")), f.order_id);
    assert_int_equal(json_integer_value(json_object_get(v, "quantity")), 3);
    assert_int_equal(json_integer_value(json_object_get(v, "remaining")), 7);
    assert_string_equal(json_string_value(json_object_get(v, "customer")), "ann");
    json_decref(v);
    order_outcome_clear(&out);
    assert_null(out.body);
}

static void test_decide_short(void **state)
{
    order_request_t req = { .sku = "glazed", .quantity = 5 };
    order_facts_t f = facts_of(ORDER_SHORT, 2);
    order_outcome_t out;
    char err[256];
    json_t *v;

    (void)state;
    assert_int_equal(order_decide(&req, &f, &out, err, sizeof(err)), 0);
    assert_int_equal(out.status, 409);
    assert_string_equal(out.state, "out_of_stock");
    assert_int_equal(json_integer_value(json_object_get(out.body, "available")), 2);
    assert_int_equal(json_integer_value(json_object_get(out.body, "requested")), 5);
    assert_true(json_is_true(json_object_get(out.body, "restock_requested")));
    assert_int_equal(out.nevents, 2);
    assert_string_equal(out.events[0].spec->type, "order.rejected");
    assert_string_equal(out.events[1].spec->type, "stock.depleted");
    assert_string_equal(out.events[1].spec->topic, TOPIC_STOCK_DEPLETED);
    assert_string_equal(out.events[1].key, "glazed");
    v = event_value(&out, 0);
    assert_null(json_object_get(v, "customer")); /* no customer: left out */
    assert_int_equal(json_integer_value(json_object_get(v, "available")), 2);
    json_decref(v);
    v = event_value(&out, 1);
    assert_int_equal(json_integer_value(json_object_get(v, "requested")), 5);
    assert_string_equal(json_string_value(json_object_get(v, "order_id")), f.order_id);
    json_decref(v);
    order_outcome_clear(&out);
}

static void test_decide_refusals(void **state)
{
    order_request_t req = { .sku = "no-such-doughnut", .quantity = 1 };
    order_facts_t f = facts_of(ORDER_SKU_UNKNOWN, 0);
    order_outcome_t out;
    char err[256];

    (void)state;
    assert_int_equal(order_decide(&req, &f, &out, err, sizeof(err)), 0);
    assert_int_equal(out.status, 404);
    assert_null(out.state);
    assert_null(out.body);
    assert_int_equal(out.nevents, 0);
    assert_non_null(strstr(out.error, "no-such-doughnut"));
    order_outcome_clear(&out);

    f = facts_of(ORDER_KEY_REUSED, 0);
    assert_int_equal(order_decide(&req, &f, &out, err, sizeof(err)), 0);
    assert_int_equal(out.status, 422);
    assert_null(out.state);
    assert_int_equal(out.nevents, 0);
    assert_non_null(strstr(out.error, "Idempotency-Key"));
    order_outcome_clear(&out);
    order_outcome_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_order),
        cmocka_unit_test(test_invalid_orders),
        cmocka_unit_test(test_sku_length_limit),
        cmocka_unit_test(test_idempotency_keys),
        cmocka_unit_test(test_canonical_ignores_key_order_and_extras),
        cmocka_unit_test(test_decide_taken),
        cmocka_unit_test(test_decide_short),
        cmocka_unit_test(test_decide_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
