/* test_events: the event catalog (libcommon/events.c) and consumer routes
 * (libcommon/router.c), without a broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "events.h"
#include "router.h"
#include "topics.h"

static void test_catalog_rows(void **state)
{
    (void)state;
    for (int i = 0; i < EVENT_COUNT; i++) {
        const event_spec_t *e = &events_all[i];

        assert_non_null(e->type);
        assert_true(strlen(e->type) < sizeof(((event_meta_t *)0)->type));
        /* Every event's topic is declared, and its key is one of its fields. */
        if (topics_find(e->topic) == NULL)
            fail_msg("%s: topic %s is not declared in topics.c", e->type, e->topic);
        assert_non_null(e->key);
        assert_true(e->nfields > 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(events_all[j].type, e->type);
    }
    assert_string_equal(events_all[EVENT_STOCK_REPLENISHED].topic, TOPIC_STOCK_REPLENISHED);
    assert_string_equal(events_all[EVENT_BULLETIN_REQUESTED].key, "date");
}

/* Decodes text (a JSON object literal) as event id into ev; returns the result. */
static int decode(event_id_t id, const char *text, void *ev, char *err, size_t err_size)
{
    json_t *data = json_loads(text, JSON_ALLOW_NUL, NULL);
    int ret;

    assert_non_null(data);
    ret = events_decode(id, data, ev, err, err_size);
    json_decref(data);
    return ret;
}

static void test_pack_then_decode(void **state)
{
    event_stock_replenished_t in, back;
    event_out_t out;
    char err[256];

    (void)state;
    memset(&in, 0, sizeof(in));
    memset(&back, 0, sizeof(back)); /* the struct is compared whole, unused bytes too */
    snprintf(in.sku, sizeof(in.sku), "glazed");
    in.quantity = 12;
    snprintf(in.production_order_id, sizeof(in.production_order_id),
             "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f");
    snprintf(in.factory_order_id, sizeof(in.factory_order_id), "fo-1");
    assert_int_equal(event_stock_replenished_pack(&in, &out, err, sizeof(err)), 0);
    assert_ptr_equal(out.spec, &events_all[EVENT_STOCK_REPLENISHED]);
    assert_string_equal(out.key, "glazed");
    /* The payload as it has always been written: field order kept. */
    assert_string_equal(out.text, "{\"sku\":\"glazed\",\"quantity\":12,\"production_order_id\":"
                        "\"6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f\",\"factory_order_id\":\"fo-1\"}");
    assert_int_equal(decode(EVENT_STOCK_REPLENISHED, out.text, &back, err, sizeof(err)), 0);
    assert_memory_equal(&in, &back, sizeof(in));
    event_out_clear(&out);
    assert_null(out.text);
    event_out_clear(NULL);
}

static void test_optional_fields(void **state)
{
    event_order_completed_t c;
    event_stock_depleted_t d;
    event_out_t out;
    char err[256];

    (void)state;
    memset(&c, 0, sizeof(c));
    snprintf(c.order_id, sizeof(c.order_id), "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f");
    snprintf(c.sku, sizeof(c.sku), "x");
    c.quantity = 1;
    assert_int_equal(event_order_completed_pack(&c, &out, err, sizeof(err)), 0);
    assert_null(strstr(out.text, "customer")); /* "" is left out */
    event_out_clear(&out);

    /* The factory reads depletions that carry only a SKU. */
    assert_int_equal(decode(EVENT_STOCK_DEPLETED, "{\"sku\":\"sku-1\",\"n\":1}", &d, err,
                            sizeof(err)), 0);
    assert_string_equal(d.sku, "sku-1");
    assert_int_equal(d.requested, 0);
    assert_string_equal(d.order_id, "");
}

/* Found by tests/fuzz/fuzz_event (crashers/event/optional_absent): a depletion read with
 * only its SKU (requested 0, order_id "") was packed with "requested":0 and "order_id":"",
 * which no consumer could read back. Optional fields whose absent value is not valid are
 * now left out; a valid 0 (available) is still written. */
static void test_pack_of_decoded_optional(void **state)
{
    event_stock_depleted_t d, back;
    event_out_t out;
    char err[256];

    (void)state;
    memset(&d, 0, sizeof(d)); /* compared whole, padding too */
    memset(&back, 0, sizeof(back));
    assert_int_equal(decode(EVENT_STOCK_DEPLETED, "{\"sku\":\"sku-1\"}", &d, err,
                            sizeof(err)), 0);
    assert_int_equal(event_stock_depleted_pack(&d, &out, err, sizeof(err)), 0);
    assert_string_equal(out.text, "{\"sku\":\"sku-1\",\"available\":0}");
    assert_int_equal(decode(EVENT_STOCK_DEPLETED, out.text, &back, err, sizeof(err)), 0);
    assert_memory_equal(&d, &back, sizeof(d));
    event_out_clear(&out);
}

static void expect_reject(event_id_t id, const char *text, const char *want)
{
    event_stock_replenished_t ev; /* big enough for the events used below */
    char err[256] = "";

    assert_int_equal(decode(id, text, &ev, err, sizeof(err)), -1);
    if (strcmp(err, want) != 0)
        fail_msg("'%s': error '%s', expected '%s'", text, err, want);
}

static void test_decode_rejects(void **state)
{
    (void)state;
    /* The texts the handlers gave before the catalog. */
    expect_reject(EVENT_STOCK_REPLENISHED, "{\"quantity\":1}", "field 'sku' must be " SKU_RULE);
    expect_reject(EVENT_STOCK_REPLENISHED, "{\"sku\":\"a b\",\"quantity\":1}",
                  "field 'sku' must be " SKU_RULE);
    expect_reject(EVENT_STOCK_REPLENISHED, "{\"sku\":\"a\\u0000b\",\"quantity\":1}",
                  "field 'sku' must be " SKU_RULE);
    expect_reject(EVENT_STOCK_REPLENISHED, "{\"sku\":\"a\"}",
                  "field 'quantity' must be an integer from 1 to 1000000");
    expect_reject(EVENT_STOCK_REPLENISHED, "{\"sku\":\"a\",\"quantity\":1000001}",
                  "field 'quantity' must be an integer from 1 to 1000000");
    expect_reject(EVENT_STOCK_REPLENISHED, "{\"sku\":\"a\",\"quantity\":\"3\"}",
                  "field 'quantity' must be an integer from 1 to 1000000");
    expect_reject(EVENT_STOCK_DEPLETED, "{\"sku\":7}", "field 'sku' must be " SKU_RULE);
    expect_reject(EVENT_STOCK_DEPLETED, "{\"sku\":\"a\",\"order_id\":\"x\"}",
                  "field 'order_id' must be a UUID");
    expect_reject(EVENT_BULLETIN_REQUESTED, "{\"date\":\"2026-11-22\"}",
                  "field 'deadline_ms' must be an integer from 1 to 9223372036854775807");
    expect_reject(EVENT_BULLETIN_REQUESTED, "{\"date\":\"2026-11-22-too-long\","
                  "\"deadline_ms\":5}", "field 'date' must be a string of 1 to 10 bytes");
}

static kafka_verdict_t handler_a(const kafka_record_t *rec, void *ctx, kafka_outcome_t *out)
{
    (void)rec, (void)ctx, (void)out;
    return KAFKA_DONE;
}

static void test_router_bind(void **state)
{
    static const router_route_t routes[] = {
        { EVENT_BULLETIN_REQUESTED, handler_a },
        { EVENT_STOCK_REPLENISHED, handler_a },
        { EVENT_ORDER_COMPLETED, handler_a },
        { EVENT_ORDER_REJECTED, handler_a },   /* the same topic: listed once */
    };
    static const router_route_t twice[] = {
        { EVENT_STOCK_REPLENISHED, handler_a },
        { EVENT_STOCK_REPLENISHED, handler_a },
    };
    static const router_route_t bad[] = { { EVENT_COUNT, handler_a } };
    kafka_consumer_opts_t opts;
    router_t r;
    char err[256];
    int ctx;

    (void)state;
    memset(&opts, 0, sizeof(opts));
    assert_int_equal(router_bind(&r, routes, 4, &ctx, &opts, err, sizeof(err)), 0);
    assert_int_equal(opts.ntopics, 3);
    assert_string_equal(opts.topics[0], TOPIC_BULLETINS);
    assert_string_equal(opts.topics[1], TOPIC_STOCK_REPLENISHED);
    assert_string_equal(opts.topics[2], TOPIC_ORDERS);
    assert_ptr_equal(opts.handler, router_dispatch);
    assert_ptr_equal(opts.ctx, &r);
    assert_ptr_equal(r.ctx, &ctx);

    assert_int_equal(router_bind(&r, twice, 2, &ctx, &opts, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "two routes for stock.replenished"));
    assert_int_equal(router_bind(&r, bad, 1, &ctx, &opts, err, sizeof(err)), -1);
    assert_int_equal(router_bind(&r, routes, 0, &ctx, &opts, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog_rows),
        cmocka_unit_test(test_pack_then_decode),
        cmocka_unit_test(test_optional_fields),
        cmocka_unit_test(test_pack_of_decoded_optional),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_router_bind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
