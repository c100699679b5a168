/* Unit tests for services/factory/callback.c (the delivery callback's body in every shape
 * the legacy factory sends, the attribute rule, the capability's form), the request body of
 * services/factory/legacy.c, and util_random_hex, which mints the capabilities. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "factory.h"
#include "util.h"

static int parse(const char *text, struct delivery_in *in, char *err, size_t err_size)
{
    return callback_parse(text, strlen(text), in, err, err_size);
}

static void expect_delivery(const char *text, const char *product, long long count)
{
    struct delivery_in in;
    char err[256] = "";

    if (parse(text, &in, err, sizeof(err)) != 0)
        fail_msg("refused (%s): %s", err, text);
    assert_string_equal(in.product_id, product);
    assert_int_equal(in.count, count);
}

static void expect_refused(const char *text, const char *want)
{
    struct delivery_in in;
    char err[256] = "";

    if (parse(text, &in, err, sizeof(err)) != -1)
        fail_msg("accepted: %s", text);
    if (strstr(err, want) == NULL)
        fail_msg("%s: error '%s' does not contain '%s'", text, err, want);
}

static void test_shapes(void **state)
{
    (void)state;
    /* an object, with the other attributes that usually come back */
    expect_delivery("{\"MessageGroupId\": \"stock-arrival-group\", "
                    "\"MessageAttributeProductId\": \"CP-502101\", "
                    "\"MessageAttributeProductCnt\": 10, "
                    "\"MessageAttributeFactoryId\": \"FF-500293\", "
                    "\"MessageAttributeRequester\": \"ops-team\"}", "CP-502101", 10);
    /* the count as a string, and as an integral real */
    expect_delivery("{\"MessageAttributeProductId\": \"a\", \"MessageAttributeProductCnt\": "
                    "\"10\"}", "a", 10);
    expect_delivery("{\"MessageAttributeProductId\": \"a\", \"MessageAttributeProductCnt\": "
                    "10.0}", "a", 10);
    expect_delivery("{\"MessageAttributeProductId\": \"a\", \"MessageAttributeProductCnt\": "
                    "\"1000000\"}", "a", 1000000);
    /* a JSON string holding the object (what a text/plain sender double-encodes) */
    expect_delivery("\"{\\\"MessageAttributeProductId\\\": \\\"CP 1\\\", "
                    "\\\"MessageAttributeProductCnt\\\": \\\"7\\\"}\"", "CP 1", 7);
    expect_delivery("  {\"MessageAttributeProductCnt\": 1, \"MessageAttributeProductId\": "
                    "\"x\"}\n", "x", 1);
}

static void test_refusals(void **state)
{
    char big[400];

    (void)state;
    expect_refused("", "not JSON");
    expect_refused("MessageAttributeProductCnt=10", "not JSON");
    expect_refused("[1, 2]", "must be a JSON object");
    expect_refused("42", "must be a JSON object");
    expect_refused("\"not json inside\"", "JSON string that is not JSON");
    expect_refused("\"\\\"{}\\\"\"", "must be a JSON object"); /* encoded twice: once only */
    expect_refused("{\"MessageAttributeProductCnt\": 1}", "'MessageAttributeProductId'");
    expect_refused("{\"MessageAttributeProductId\": \"\", \"MessageAttributeProductCnt\": 1}",
                   "'MessageAttributeProductId'");
    expect_refused("{\"MessageAttributeProductId\": \" a\", \"MessageAttributeProductCnt\": 1}",
                   "'MessageAttributeProductId'");
    expect_refused("{\"MessageAttributeProductId\": 5, \"MessageAttributeProductCnt\": 1}",
                   "'MessageAttributeProductId'");
    expect_refused("{\"MessageAttributeProductId\": \"a\\u0000b\", "
                   "\"MessageAttributeProductCnt\": 1}", "not JSON");
    expect_refused("{\"MessageAttributeProductId\": \"a\\u00e9\", "
                   "\"MessageAttributeProductCnt\": 1}", "'MessageAttributeProductId'");
    expect_refused("{\"MessageAttributeProductId\": \"a\"}", "'MessageAttributeProductCnt'");
    static const char *const bad_counts[] = {
        "0", "-1", "1000001", "2.5", "\"\"", "\"ten\"", "\"-3\"", "\" 3\"", "\"3 \"",
        "\"0\"", "\"10000000\"", "\"1e3\"", "true", "null", "[3]", "{}", "1e300",
    };
    for (size_t i = 0; i < sizeof(bad_counts) / sizeof(bad_counts[0]); i++) {
        snprintf(big, sizeof(big), "{\"MessageAttributeProductId\": \"a\", "
                 "\"MessageAttributeProductCnt\": %s}", bad_counts[i]);
        expect_refused(big, "'MessageAttributeProductCnt' must be a whole number");
    }
    /* duplicate keys are ambiguous: which count was meant? */
    expect_refused("{\"MessageAttributeProductId\": \"a\", \"MessageAttributeProductCnt\": 1, "
                   "\"MessageAttributeProductCnt\": 900}", "not JSON");
}

static void test_attr_rule(void **state)
{
    char s[FACTORY_ATTR_MAX + 2];

    (void)state;
    assert_true(callback_attr_valid("FF-500293"));
    assert_true(callback_attr_valid("ops team"));
    assert_true(callback_attr_valid("x"));
    assert_false(callback_attr_valid(NULL));
    assert_false(callback_attr_valid(""));
    assert_false(callback_attr_valid(" x"));
    assert_false(callback_attr_valid("x "));
    assert_false(callback_attr_valid("a\tb"));
    assert_false(callback_attr_valid("a\x7f"));
    assert_false(callback_attr_valid("caf\xc3\xa9"));
    memset(s, 'a', FACTORY_ATTR_MAX);
    s[FACTORY_ATTR_MAX] = '\0';
    assert_true(callback_attr_valid(s));
    s[FACTORY_ATTR_MAX] = 'a';
    s[FACTORY_ATTR_MAX + 1] = '\0';
    assert_false(callback_attr_valid(s));
}

static void test_token_form_and_minting(void **state)
{
    char a[FACTORY_TOKEN_LEN + 1], b[FACTORY_TOKEN_LEN + 1], odd[8];

    (void)state;
    assert_int_equal(util_random_hex(a, FACTORY_TOKEN_BYTES), 0);
    assert_int_equal(util_random_hex(b, FACTORY_TOKEN_BYTES), 0);
    assert_int_equal(strlen(a), FACTORY_TOKEN_LEN);
    assert_true(callback_token_form(a));
    assert_true(callback_token_form(b));
    assert_string_not_equal(a, b);
    assert_int_equal(util_random_hex(odd, 3), 0);
    assert_int_equal(strlen(odd), 6);

    assert_false(callback_token_form(NULL));
    assert_false(callback_token_form(""));
    a[FACTORY_TOKEN_LEN - 1] = '\0';
    assert_false(callback_token_form(a)); /* one short */
    a[FACTORY_TOKEN_LEN - 1] = 'A';
    assert_false(callback_token_form(a)); /* upper case */
    a[FACTORY_TOKEN_LEN - 1] = 'g';
    assert_false(callback_token_form(a));
}

static void test_request_body(void **state)
{
    struct config cfg;
    struct claim c;
    json_t *body;
    char err[256] = "", url[512];
    static char longbase[2100];

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    cfg.callback_url = "https://shop.example";
    cfg.group_id = "stock-arrival-group";
    cfg.requester = "ops-team";
    memset(&c, 0, sizeof(c));
    snprintf(c.id, sizeof(c.id), "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f");
    snprintf(c.sku, sizeof(c.sku), "glazed");
    snprintf(c.factory_id, sizeof(c.factory_id), "FF-500293");
    snprintf(c.product_id, sizeof(c.product_id), "CP-502101");
    assert_int_equal(util_random_hex(c.token, FACTORY_TOKEN_BYTES), 0);
    c.quantity = 10;

    body = legacy_request(&cfg, &c, err, sizeof(err));
    assert_non_null(body);
    assert_int_equal(json_object_size(body), 6);
    assert_string_equal(json_string_value(json_object_get(body, "MessageGroupId")),
                        "stock-arrival-group");
    assert_string_equal(json_string_value(json_object_get(body, "MessageAttributeProductId")),
                        "CP-502101");
    assert_int_equal(json_integer_value(json_object_get(body, "MessageAttributeProductCnt")), 10);
    assert_string_equal(json_string_value(json_object_get(body, "MessageAttributeFactoryId")),
                        "FF-500293");
    assert_string_equal(json_string_value(json_object_get(body, "MessageAttributeRequester")),
                        "ops-team");
    snprintf(url, sizeof(url), "https://shop.example/deliveries/%s?token=%s", c.id, c.token);
    assert_string_equal(json_string_value(json_object_get(body, "CallbackUrl")), url);
    json_decref(body);

    memset(longbase, 'a', sizeof(longbase) - 1);
    cfg.callback_url = longbase;
    assert_null(legacy_request(&cfg, &c, err, sizeof(err)));
    assert_non_null(strstr(err, "callback URL longer than"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_attr_rule),
        cmocka_unit_test(test_token_form_and_minting),
        cmocka_unit_test(test_request_body),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
