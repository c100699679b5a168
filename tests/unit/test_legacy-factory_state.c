/* Unit tests for tools/legacy-factory/state.c: validation, the admin mode, and the record
 * of calls and orders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "legacy_factory.h"
#include "log.h"
#include "standin_test.h"

static const struct lf_mode defaults = { .fail_next = 2, .slow_ms = 0, .delay_ms = 5000 };

/* ---------------------------------------------------------------------------------- */
/* Helpers */

/* Runs lf_order_parse on text; returns its result and leaves the message in err. */
static int parse_order(const char *text, struct lf_order_in *in, char *err, size_t err_size)
{
    json_t *j = test_obj(text);
    int rc = lf_order_parse(j, in, err, err_size);

    json_decref(j);
    return rc;
}

static void expect_order_error(const char *text, const char *want)
{
    struct lf_order_in in;
    char err[512] = "";

    if (parse_order(text, &in, err, sizeof(err)) != -1)
        fail_msg("accepted: %s", text);
    if (strstr(err, want) == NULL)
        fail_msg("%s: error '%s' does not contain '%s'", text, err, want);
}

/* A URL "http://h/" followed by 'a's, len characters in all. */
static char *url_of_len(size_t len)
{
    char *u = malloc(len + 1);

    assert_non_null(u);
    assert_true(len >= 9);
    memcpy(u, "http://h/", 9);
    memset(u + 9, 'a', len - 9);
    u[len] = '\0';
    return u;
}

static void order_in(struct lf_order_in *in, const char *sku, long long qty)
{
    memset(in, 0, sizeof(*in));
    snprintf(in->sku, sizeof(in->sku), "%s", sku);
    in->quantity = qty;
    snprintf(in->callback_url, sizeof(in->callback_url), "http://127.0.0.1:1/cb");
}

/* The list's "production_orders" or "calls" array (borrowed from list). */
static json_t *arr(json_t *list, const char *key)
{
    json_t *a = json_object_get(list, key);

    assert_true(json_is_array(a));
    return a;
}

static const char *str_at(json_t *a, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(a, i), key));
}

static json_int_t int_at(json_t *a, size_t i, const char *key)
{
    json_t *v = json_object_get(json_array_get(a, i), key);

    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* ---------------------------------------------------------------------------------- */
/* Validation */

static void test_order_parse_ok(void **state)
{
    struct lf_order_in in;
    char err[512] = "";

    (void)state;
    assert_int_equal(parse_order("{\"sku\": \"choc.glazed_2-x\", \"quantity\": 100000, "
                                 "\"callback_url\": \"https://factory-cb.local:8082/cb?x=1\", "
                                 "\"ignored\": [1]}", &in, err, sizeof(err)), 0);
    assert_string_equal(in.sku, "choc.glazed_2-x");
    assert_int_equal(in.quantity, 100000);
    assert_string_equal(in.callback_url, "https://factory-cb.local:8082/cb?x=1");

    assert_int_equal(parse_order("{\"sku\": \"a\", \"quantity\": 1, "
                                 "\"callback_url\": \"HTTP://127.0.0.1/\"}",
                                 &in, err, sizeof(err)), 0);
    assert_int_equal(in.quantity, 1);
}

static void test_order_parse_errors(void **state)
{
    char *long_sku = malloc(SKU_MAX + 2 + 64);

    (void)state;
    assert_non_null(long_sku);
    expect_order_error("{\"quantity\": 1, \"callback_url\": \"http://h/\"}",
                       "missing field 'sku'");
    expect_order_error("{\"sku\": 5, \"quantity\": 1, \"callback_url\": \"http://h/\"}",
                       "field 'sku' must be");
    expect_order_error("{\"sku\": \"\", \"quantity\": 1, \"callback_url\": \"http://h/\"}",
                       "field 'sku' must be");
    expect_order_error("{\"sku\": \"a b\", \"quantity\": 1, \"callback_url\": \"http://h/\"}",
                       "field 'sku' must be");
    snprintf(long_sku, SKU_MAX + 2 + 64, "{\"sku\": \"%065d\", \"quantity\": 1, "
             "\"callback_url\": \"http://h/\"}", 7);
    expect_order_error(long_sku, "field 'sku' must be");
    expect_order_error("{\"sku\": \"a\", \"callback_url\": \"http://h/\"}",
                       "missing field 'quantity'");
    expect_order_error("{\"sku\": \"a\", \"quantity\": 0, \"callback_url\": \"http://h/\"}",
                       "between 1 and 100000");
    expect_order_error("{\"sku\": \"a\", \"quantity\": 100001, \"callback_url\": \"http://h/\"}",
                       "between 1 and 100000");
    expect_order_error("{\"sku\": \"a\", \"quantity\": -3, \"callback_url\": \"http://h/\"}",
                       "between 1 and 100000");
    expect_order_error("{\"sku\": \"a\", \"quantity\": 2.0, \"callback_url\": \"http://h/\"}",
                       "field 'quantity' must be an integer");
    expect_order_error("{\"sku\": \"a\", \"quantity\": \"2\", \"callback_url\": \"http://h/\"}",
                       "field 'quantity' must be an integer");
    expect_order_error("{\"sku\": \"a\", \"quantity\": 1}", "missing field 'callback_url'");
    expect_order_error("{\"sku\": \"a\", \"quantity\": 1, \"callback_url\": null}",
                       "field 'callback_url' must be");
    expect_order_error("{\"sku\": \"a\", \"quantity\": 1, \"callback_url\": \"ftp://h/\"}",
                       "field 'callback_url' must be");
    free(long_sku);
}

static void test_callback_url(void **state)
{
    static const char *const good[] = {
        "http://h", "http://127.0.0.1:8082/factory/callback", "https://example.com/a?b=c#d",
        "HTTPS://Example.COM/", "http://[::1]:9000/cb",
    };
    static const char *const bad[] = {
        "", "http://", "https://", "http:///path", "ftp://h/", "file:///etc/passwd",
        "h/path", "//h/path", "http://h/a b", "http://h/\"q\"", "http://h/a\\b",
        "http://h/\x01", "http://h/\xc3\xa9", " http://h/", "javascript:alert(1)",
        "http://h:99999/",
    };
    char *u;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!lf_callback_url_valid(good[i]))
            fail_msg("refused: %s", good[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (lf_callback_url_valid(bad[i]))
            fail_msg("accepted: %s", bad[i]);
    }
    assert_false(lf_callback_url_valid(NULL));

    u = url_of_len(LF_URL_MAX);
    assert_true(lf_callback_url_valid(u));
    free(u);
    u = url_of_len(LF_URL_MAX + 1);
    assert_false(lf_callback_url_valid(u));
    free(u);
}

/* ---------------------------------------------------------------------------------- */
/* The admin mode */

static void test_mode_patch_subset(void **state)
{
    struct lf_mode cur = defaults, out;
    json_t *p;
    char err[256] = "";

    (void)state;
    p = test_obj("{\"slow_ms\": 60000, \"down\": true}");
    assert_int_equal(standin_mode_patch(&lf_standin, &cur, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_int_equal(out.slow_ms, 60000);
    assert_int_equal(out.down, 1);
    assert_int_equal(out.fail_next, defaults.fail_next); /* untouched */
    assert_int_equal(out.delay_ms, defaults.delay_ms);
    assert_int_equal(out.deliver_twice, 0);

    p = test_obj("{\"fail_next\": 0, \"delay_ms\": 600000, \"deliver_twice\": true, "
                 "\"down\": false}");
    /* in place */
    assert_int_equal(standin_mode_patch(&lf_standin, &out, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_int_equal(out.fail_next, 0);
    assert_int_equal(out.delay_ms, 600000);
    assert_int_equal(out.deliver_twice, 1);
    assert_int_equal(out.down, 0);
    assert_int_equal(out.slow_ms, 60000);

    p = test_obj("{}");
    cur = out;
    assert_int_equal(standin_mode_patch(&lf_standin, &cur, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_memory_equal(&cur, &out, sizeof(cur));
}

static void expect_patch_error(const char *text, const char *want)
{
    test_patch_error(&lf_standin, &defaults, text, want);
}

static void test_mode_patch_errors(void **state)
{
    (void)state;
    expect_patch_error("{\"fail_next\": 1, \"bogus\": 1}", "unknown field 'bogus'");
    expect_patch_error("{\"fail_next\": -1}", "field 'fail_next' must be between 0 and");
    expect_patch_error("{\"fail_next\": 1000000001}", "field 'fail_next' must be between");
    expect_patch_error("{\"fail_next\": 1.5}", "field 'fail_next' must be an integer");
    expect_patch_error("{\"slow_ms\": 60001}", "field 'slow_ms' must be between 0 and 60000");
    expect_patch_error("{\"slow_ms\": \"10\"}", "field 'slow_ms' must be an integer");
    expect_patch_error("{\"delay_ms\": 600001}", "between 0 and 600000");
    expect_patch_error("{\"delay_ms\": null}", "field 'delay_ms' must be an integer");
    expect_patch_error("{\"down\": 1}", "field 'down' must be true or false");
    expect_patch_error("{\"deliver_twice\": \"true\"}", "must be true or false");
    expect_patch_error("{\"slow_ms\": 5, \"down\": 0}", "field 'down'");
    expect_patch_error("[]", "must be a JSON object");
}

static void test_mode_json(void **state)
{
    struct lf_mode m = { .fail_next = 3, .slow_ms = 250, .delay_ms = 1000, .down = 1 };
    json_t *j = standin_mode_json(&lf_standin, &m);

    (void)state;
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 6);
    assert_int_equal(json_array_size(json_object_get(j, "fail_skus")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "fail_next")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "slow_ms")), 250);
    assert_int_equal(json_integer_value(json_object_get(j, "delay_ms")), 1000);
    assert_true(json_is_true(json_object_get(j, "down")));
    assert_true(json_is_false(json_object_get(j, "deliver_twice")));
    json_decref(j);
}

/* ---------------------------------------------------------------------------------- */
/* The state */

static void test_gate_and_patch(void **state)
{
    char err[256] = "";
    struct lf_mode m;
    lf_state_t *st = state_new(&defaults, err, sizeof(err));
    json_t *p;

    (void)state;
    assert_non_null(st);
    assert_int_equal(state_gate(st, &m), 1);   /* fail_next 2 from the defaults */
    assert_int_equal(m.fail_next, 1);
    assert_int_equal(state_gate(st, &m), 1);
    assert_int_equal(m.fail_next, 0);
    assert_int_equal(state_gate(st, &m), 0);
    assert_int_equal(state_gate(st, &m), 0);

    p = test_obj("{\"fail_next\": 1, \"deliver_twice\": true}");
    assert_int_equal(standin_patch(state_standin(st), p, &m, err, sizeof(err)), 0);
    json_decref(p);
    assert_int_equal(m.fail_next, 1);
    p = test_obj("{\"deliver_twice\": false, \"nope\": 1}");
    assert_int_equal(standin_patch(state_standin(st), p, &m, err, sizeof(err)), -1);
    json_decref(p);
    assert_int_equal(m.deliver_twice, 1); /* unchanged, and reported as such */
    assert_int_equal(state_gate(st, &m), 1);

    standin_reset(state_standin(st));
    standin_mode_get(state_standin(st), &m);
    assert_memory_equal(&m, &defaults, sizeof(m));
    state_free(st);
    state_free(NULL);
}

static void test_sleep_and_stop(void **state)
{
    char err[256] = "";
    lf_state_t *st = state_new(&defaults, err, sizeof(err));

    (void)state;
    assert_non_null(st);
    test_sleep_and_stop_of(state_standin(st));
    state_free(st);
}

static void test_calls_recorded(void **state)
{
    char err[256] = "";
    lf_state_t *st = state_new(&defaults, err, sizeof(err));
    json_t *b, *list, *calls;

    (void)state;
    assert_non_null(st);
    b = test_obj("{\"sku\": \"choc\", \"quantity\": 3}");
    state_record_call(st, b, LF_CALL_UNAVAILABLE);
    json_decref(b);
    b = test_obj("{\"sku\": \"bad sku\", \"quantity\": \"x\"}");
    state_record_call(st, b, LF_CALL_INVALID);
    json_decref(b);
    state_record_call(st, NULL, LF_CALL_REFUSED);

    list = state_list(st, NULL);
    assert_non_null(list);
    calls = arr(list, "calls");
    assert_int_equal(json_array_size(calls), 3);
    assert_int_equal(json_array_size(arr(list, "production_orders")), 0);
    assert_string_equal(str_at(calls, 0, "sku"), "choc");
    assert_int_equal(int_at(calls, 0, "quantity"), 3);
    assert_string_equal(str_at(calls, 0, "outcome"), "unavailable");
    assert_true(json_is_null(json_object_get(json_array_get(calls, 1), "sku")));
    assert_true(json_is_null(json_object_get(json_array_get(calls, 1), "quantity")));
    assert_string_equal(str_at(calls, 1, "outcome"), "invalid");
    assert_string_equal(str_at(calls, 2, "outcome"), "refused");
    /* "2026-11-22T01:40:31.123Z" */
    assert_int_equal(strlen(str_at(calls, 0, "at")), 24);
    json_decref(list);

    list = state_list(st, "choc");
    assert_int_equal(json_array_size(arr(list, "calls")), 1);
    json_decref(list);
    state_free(st);
}

static void test_order_lifecycle(void **state)
{
    char err[256] = "";
    lf_state_t *st = state_new(&defaults, err, sizeof(err));
    struct lf_order_in in;
    uint64_t a, b, c;
    json_t *list, *orders, *calls;

    (void)state;
    assert_non_null(st);
    order_in(&in, "one", 1);
    assert_int_equal(state_order_add(st, &in, "fo-a", &a), 0);
    order_in(&in, "two", 2);
    assert_int_equal(state_order_add(st, &in, "fo-b", &b), 0);
    assert_int_equal(state_order_add(st, &in, "fo-c", &c), 0);
    assert_true(b == a + 1 && c == b + 1);

    /* a: failed twice, then delivered; then a second delivery (deliver_twice) fails */
    state_order_attempt(st, a);
    state_order_result(st, a, LF_CB_FAILED, 0);
    state_order_attempt(st, a);
    state_order_result(st, a, LF_CB_FAILED, 0);
    state_order_attempt(st, a);
    state_order_result(st, a, LF_CB_DELIVERED, 1);
    state_order_attempt(st, a);
    state_order_result(st, a, LF_CB_REJECTED, 1);
    /* b: rejected at once; c: one failure so far */
    state_order_attempt(st, b);
    state_order_result(st, b, LF_CB_REJECTED, 1);
    state_order_attempt(st, c);
    state_order_result(st, c, LF_CB_FAILED, 0);

    list = state_list(st, NULL);
    orders = arr(list, "production_orders");
    calls = arr(list, "calls");
    assert_int_equal(json_array_size(orders), 3);
    assert_int_equal(json_array_size(calls), 3);
    assert_string_equal(str_at(orders, 0, "factory_order_id"), "fo-a");
    assert_string_equal(str_at(orders, 0, "status"), "delivered");
    assert_int_equal(int_at(orders, 0, "callback_attempts"), 4);
    assert_int_equal(int_at(orders, 0, "deliveries"), 1);
    assert_string_equal(str_at(orders, 0, "callback_url"), "http://127.0.0.1:1/cb");
    assert_string_equal(str_at(orders, 1, "status"), "callback_failed");
    assert_int_equal(int_at(orders, 1, "deliveries"), 0);
    assert_string_equal(str_at(orders, 2, "status"), "delivering");
    assert_int_equal(int_at(orders, 2, "callback_attempts"), 1);
    assert_string_equal(str_at(calls, 2, "outcome"), "accepted");
    assert_int_equal(int_at(calls, 2, "quantity"), 2);
    json_decref(list);

    /* the last failure gives up */
    state_order_attempt(st, c);
    state_order_result(st, c, LF_CB_FAILED, 1);
    list = state_list(st, "two");
    orders = arr(list, "production_orders");
    assert_int_equal(json_array_size(orders), 2);
    assert_string_equal(str_at(orders, 1, "status"), "callback_failed");
    assert_int_equal(int_at(orders, 1, "callback_attempts"), 2);
    json_decref(list);

    /* a reset forgets everything; a late report on an old order is ignored, and new
     * orders get new numbers */
    standin_reset(state_standin(st));
    state_order_attempt(st, a);
    state_order_result(st, a, LF_CB_DELIVERED, 1);
    assert_int_equal(state_order_add(st, &in, "fo-d", &a), 0);
    assert_true(a > c);
    state_order_result(st, c, LF_CB_DELIVERED, 1);
    list = state_list(st, NULL);
    orders = arr(list, "production_orders");
    assert_int_equal(json_array_size(orders), 1);
    assert_string_equal(str_at(orders, 0, "status"), "scheduled");
    assert_int_equal(int_at(orders, 0, "deliveries"), 0);
    assert_int_equal(json_array_size(arr(list, "calls")), 1);
    json_decref(list);
    state_free(st);
}

static void test_records_bounded(void **state)
{
    char err[256] = "";
    lf_state_t *st = state_new(&defaults, err, sizeof(err));
    struct lf_order_in in;
    uint64_t first = 0, seq = 0;
    char id[32];
    json_t *list, *orders, *calls;
    size_t i, n = LF_RECORDS_MAX + 3;

    (void)state;
    assert_non_null(st);
    for (i = 0; i < n; i++) {
        order_in(&in, "bulk", (long long)i + 1);
        snprintf(id, sizeof(id), "fo-%zu", i);
        assert_int_equal(state_order_add(st, &in, id, &seq), 0);
        if (i == 0)
            first = seq;
    }
    /* the first three are gone: reports about them are ignored */
    state_order_attempt(st, first);
    state_order_result(st, first, LF_CB_DELIVERED, 1);
    /* the newest is still found */
    state_order_attempt(st, seq);
    state_order_result(st, seq, LF_CB_DELIVERED, 1);
    /* and so is the oldest kept */
    state_order_attempt(st, first + 3);

    list = state_list(st, NULL);
    assert_non_null(list);
    orders = arr(list, "production_orders");
    calls = arr(list, "calls");
    assert_int_equal(json_array_size(orders), LF_RECORDS_MAX);
    assert_int_equal(json_array_size(calls), LF_RECORDS_MAX);
    assert_string_equal(str_at(orders, 0, "factory_order_id"), "fo-3");
    assert_int_equal(int_at(orders, 0, "callback_attempts"), 1);
    assert_string_equal(str_at(orders, 0, "status"), "delivering");
    assert_int_equal(int_at(calls, 0, "quantity"), 4);
    assert_string_equal(str_at(orders, LF_RECORDS_MAX - 1, "status"), "delivered");
    assert_string_equal(str_at(orders, LF_RECORDS_MAX - 1, "factory_order_id"), "fo-10002");
    json_decref(list);
    state_free(st);
}

static void test_fail_skus(void **state)
{
    struct lf_mode m = defaults, out;
    json_t *p;
    char err[256];

    (void)state;
    assert_int_equal(lf_mode_set_fail_skus(&m, "glazed,old-fashioned", err, sizeof(err)), 0);
    assert_int_equal(lf_mode_fails_sku(&m, "glazed"), 1);
    assert_int_equal(lf_mode_fails_sku(&m, "old-fashioned"), 1);
    assert_int_equal(lf_mode_fails_sku(&m, "old"), 0);
    assert_int_equal(lf_mode_fails_sku(&m, "glaze"), 0);
    assert_int_equal(lf_mode_fails_sku(&m, ""), 0);
    assert_int_equal(lf_mode_set_fail_skus(&m, "ok,not ok", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not ok"));

    p = json_loads("{\"fail_skus\": [\"a\", \"b\"]}", 0, NULL);
    assert_int_equal(standin_mode_patch(&lf_standin, &m, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_int_equal(lf_mode_fails_sku(&out, "b"), 1);
    assert_int_equal(lf_mode_fails_sku(&out, "glazed"), 0);
    p = json_loads("{\"fail_skus\": [1]}", 0, NULL);
    assert_int_equal(standin_mode_patch(&lf_standin, &m, p, &out, err, sizeof(err)), -1);
    json_decref(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_skus),
        cmocka_unit_test(test_order_parse_ok),
        cmocka_unit_test(test_order_parse_errors),
        cmocka_unit_test(test_callback_url),
        cmocka_unit_test(test_mode_patch_subset),
        cmocka_unit_test(test_mode_patch_errors),
        cmocka_unit_test(test_mode_json),
        cmocka_unit_test(test_gate_and_patch),
        cmocka_unit_test(test_sleep_and_stop),
        cmocka_unit_test(test_calls_recorded),
        cmocka_unit_test(test_order_lifecycle),
        cmocka_unit_test(test_records_bounded),
    };

    log_init("test_legacy_factory");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
