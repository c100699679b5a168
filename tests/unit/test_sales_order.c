/* test_order: validation of order requests and Idempotency-Keys (services/sales/order.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_order),
        cmocka_unit_test(test_invalid_orders),
        cmocka_unit_test(test_sku_length_limit),
        cmocka_unit_test(test_idempotency_keys),
        cmocka_unit_test(test_canonical_ignores_key_order_and_extras),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
