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

/* A valid request body with field key set to value (a JSON text; NULL: left out). */
static char *request_with(const char *key, const char *value)
{
    static const char *const keys[] = { "MessageGroupId", "MessageAttributeProductId",
                                        "MessageAttributeProductCnt",
                                        "MessageAttributeFactoryId",
                                        "MessageAttributeRequester", "CallbackUrl" };
    static const char *const values[] = { "\"stock-arrival-group\"", "\"CP-502101\"", "10",
                                          "\"FF-500293\"", "\"ops-team\"",
                                          "\"https://shop.example/deliveries/1?token=ab\"" };
    char *out = malloc(4096);
    size_t used = 0, i;

    assert_non_null(out);
    used += (size_t)snprintf(out, 4096, "{");
    for (i = 0; i < 6; i++) {
        const char *v = strcmp(keys[i], key) == 0 ? value : values[i];

        if (v == NULL)
            continue;
        used += (size_t)snprintf(out + used, 4096 - used, "%s\"%s\": %s",
                                 used > 1 ? ", " : "", keys[i], v);
    }
    snprintf(out + used, 4096 - used, "}");
    return out;
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

static void order_in(struct lf_order_in *in, const char *product, long long count)
{
    memset(in, 0, sizeof(*in));
    snprintf(in->product_id, sizeof(in->product_id), "%s", product);
    snprintf(in->group_id, sizeof(in->group_id), "g");
    snprintf(in->factory_id, sizeof(in->factory_id), "FF-1");
    snprintf(in->requester, sizeof(in->requester), "ops");
    in->count = count;
    snprintf(in->callback_url, sizeof(in->callback_url), "http://127.0.0.1:1/cb");
}

/* The list's "manufactures" or "calls" array (borrowed from list). */
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
    char err[512] = "", *text = request_with("ignored", NULL);

    (void)state;
    assert_int_equal(parse_order(text, &in, err, sizeof(err)), 0);
    free(text);
    assert_string_equal(in.group_id, "stock-arrival-group");
    assert_string_equal(in.product_id, "CP-502101");
    assert_int_equal(in.count, 10);
    assert_string_equal(in.factory_id, "FF-500293");
    assert_string_equal(in.requester, "ops-team");
    assert_string_equal(in.callback_url, "https://shop.example/deliveries/1?token=ab");
}

static void test_order_parse_errors(void **state)
{
    static const char *const attrs[] = { "MessageGroupId", "MessageAttributeProductId",
                                         "MessageAttributeProductCnt",
                                         "MessageAttributeFactoryId",
                                         "MessageAttributeRequester" };
    char want[160], *text;
    size_t i;

    (void)state;
    /* Each attribute missing, empty or null: the factory's message names it. */
    for (i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        snprintf(want, sizeof(want), "The message attribute '%s' must contain non-empty "
                 "message attribute value", attrs[i]);
        text = request_with(attrs[i], NULL);
        expect_order_error(text, want);
        free(text);
        text = request_with(attrs[i], "\"\"");
        expect_order_error(text, want);
        free(text);
        text = request_with(attrs[i], "null");
        expect_order_error(text, want);
        free(text);
    }
    text = request_with("CallbackUrl", NULL);
    expect_order_error(text, "'CallbackUrl' must contain a non-empty value");
    free(text);
    text = request_with("CallbackUrl", "\"ftp://h/\"");
    expect_order_error(text, "'CallbackUrl' must be an http:// or https:// URL");
    free(text);
    text = request_with("MessageAttributeProductCnt", "0");
    expect_order_error(text, "between 1 and 100000");
    free(text);
    text = request_with("MessageAttributeProductCnt", "100001");
    expect_order_error(text, "between 1 and 100000");
    free(text);
    text = request_with("MessageAttributeProductCnt", "\"10\"");
    expect_order_error(text, "'MessageAttributeProductCnt' must be an integer");
    free(text);
    text = request_with("MessageAttributeFactoryId", "7");
    expect_order_error(text, "'MessageAttributeFactoryId' must contain non-empty");
    free(text);
    expect_order_error("[]", "must be a JSON object");
}

/* The callback body in every shape, with the count requested or another, as a number or a
 * string. */
static void test_callback_body(void **state)
{
    struct lf_order_in in;
    struct lf_mode m = defaults;
    const char *type = NULL;
    char *body = NULL;
    json_t *j, *inner;

    (void)state;
    order_in(&in, "CP-1", 12);
    assert_int_equal(lf_callback_body(&in, &m, &body, &type), 0);
    assert_string_equal(type, "application/json");
    j = test_obj(body);
    assert_string_equal(json_string_value(json_object_get(j, "MessageAttributeProductId")),
                        "CP-1");
    assert_int_equal(json_integer_value(json_object_get(j, "MessageAttributeProductCnt")), 12);
    assert_string_equal(json_string_value(json_object_get(j, "MessageAttributeFactoryId")),
                        "FF-1");
    assert_null(json_object_get(j, "CallbackUrl")); /* the capability does not come back */
    json_decref(j);
    free(body);

    m.callback_shape = LF_SHAPE_JSON_STRING;
    m.count_as_string = 1;
    m.deliver_count = 7;
    assert_int_equal(lf_callback_body(&in, &m, &body, &type), 0);
    assert_string_equal(type, "application/json");
    j = json_loads(body, JSON_DECODE_ANY, NULL);
    assert_true(json_is_string(j));
    inner = test_obj(json_string_value(j));
    assert_string_equal(json_string_value(json_object_get(inner, "MessageAttributeProductCnt")),
                        "7");
    json_decref(inner);
    json_decref(j);
    free(body);

    m.callback_shape = LF_SHAPE_TEXT_PLAIN;
    m.count_as_string = 0;
    assert_int_equal(lf_callback_body(&in, &m, &body, &type), 0);
    assert_non_null(strstr(type, "text/plain"));
    j = test_obj(body);
    assert_int_equal(json_integer_value(json_object_get(j, "MessageAttributeProductCnt")), 7);
    json_decref(j);
    free(body);

    assert_int_equal(lf_shape_parse("json_string"), LF_SHAPE_JSON_STRING);
    assert_int_equal(lf_shape_parse("xml"), -1);
    assert_int_equal(lf_shape_parse(NULL), -1);
    assert_string_equal(lf_shape_name(LF_SHAPE_TEXT_PLAIN), "text_plain");
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
    expect_patch_error("{\"callback_shape\": \"xml\"}", "field 'callback_shape' must be");
    expect_patch_error("{\"callback_shape\": 1}", "field 'callback_shape' must be");
    expect_patch_error("{\"deliver_count\": 1000001}", "between 0 and 1000000");
    expect_patch_error("{\"count_as_string\": 1}", "must be true or false");
    expect_patch_error("{\"reject_next\": -1}", "field 'reject_next' must be between");
}

static void test_mode_json(void **state)
{
    struct lf_mode m = { .fail_next = 3, .slow_ms = 250, .delay_ms = 1000, .down = 1 };
    json_t *j = standin_mode_json(&lf_standin, &m);

    (void)state;
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 10);
    assert_string_equal(json_string_value(json_object_get(j, "callback_shape")), "object");
    assert_true(json_is_false(json_object_get(j, "count_as_string")));
    assert_int_equal(json_integer_value(json_object_get(j, "deliver_count")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "reject_next")), 0);
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
    b = test_obj("{\"MessageAttributeProductId\": \"choc\", \"MessageAttributeProductCnt\": 3}");
    state_record_call(st, b, LF_CALL_UNAVAILABLE);
    json_decref(b);
    b = test_obj("{\"MessageAttributeProductId\": 5, \"MessageAttributeProductCnt\": \"x\"}");
    state_record_call(st, b, LF_CALL_INVALID);
    json_decref(b);
    state_record_call(st, NULL, LF_CALL_REFUSED);

    list = state_list(st, NULL);
    assert_non_null(list);
    calls = arr(list, "calls");
    assert_int_equal(json_array_size(calls), 3);
    assert_int_equal(json_array_size(arr(list, "manufactures")), 0);
    assert_string_equal(str_at(calls, 0, "product_id"), "choc");
    assert_int_equal(int_at(calls, 0, "count"), 3);
    assert_string_equal(str_at(calls, 0, "outcome"), "unavailable");
    assert_true(json_is_null(json_object_get(json_array_get(calls, 1), "product_id")));
    assert_true(json_is_null(json_object_get(json_array_get(calls, 1), "count")));
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
    orders = arr(list, "manufactures");
    calls = arr(list, "calls");
    assert_int_equal(json_array_size(orders), 3);
    assert_int_equal(json_array_size(calls), 3);
    assert_string_equal(str_at(orders, 0, "manufacture_id"), "fo-a");
    assert_string_equal(str_at(orders, 0, "status"), "delivered");
    assert_int_equal(int_at(orders, 0, "callback_attempts"), 4);
    assert_int_equal(int_at(orders, 0, "deliveries"), 1);
    assert_string_equal(str_at(orders, 0, "callback_url"), "http://127.0.0.1:1/cb");
    assert_string_equal(str_at(orders, 1, "status"), "callback_failed");
    assert_int_equal(int_at(orders, 1, "deliveries"), 0);
    assert_string_equal(str_at(orders, 2, "status"), "delivering");
    assert_int_equal(int_at(orders, 2, "callback_attempts"), 1);
    assert_string_equal(str_at(calls, 2, "outcome"), "accepted");
    assert_int_equal(int_at(calls, 2, "count"), 2);
    json_decref(list);

    /* the last failure gives up */
    state_order_attempt(st, c);
    state_order_result(st, c, LF_CB_FAILED, 1);
    list = state_list(st, "two");
    orders = arr(list, "manufactures");
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
    orders = arr(list, "manufactures");
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
    orders = arr(list, "manufactures");
    calls = arr(list, "calls");
    assert_int_equal(json_array_size(orders), LF_RECORDS_MAX);
    assert_int_equal(json_array_size(calls), LF_RECORDS_MAX);
    assert_string_equal(str_at(orders, 0, "manufacture_id"), "fo-3");
    assert_int_equal(int_at(orders, 0, "callback_attempts"), 1);
    assert_string_equal(str_at(orders, 0, "status"), "delivering");
    assert_int_equal(int_at(calls, 0, "count"), 4);
    assert_string_equal(str_at(orders, LF_RECORDS_MAX - 1, "status"), "delivered");
    assert_string_equal(str_at(orders, LF_RECORDS_MAX - 1, "manufacture_id"), "fo-10002");
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
        cmocka_unit_test(test_callback_body),
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
