/* Unit tests for tools/open-data/state.c: the admin mode, publish_after, the answer to each
 * GET /daily with a pinned date, and the record of requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"
#include "standin_test.h"
#include "open_data.h"
#include "util.h"

static const struct od_mode defaults = {
    .kind = OD_OK,
    .figures = { 10423, 6973, 3246, 204 },
    .date = "2024-03-01",
};

/* 2024-03-01T15:30:00Z in milliseconds */
#define NOW_MS ((int64_t)1709307000 * 1000)

/* Fails unless a and b hold the same values (compared field by field: padding differs). */
static void assert_mode_equal(const struct od_mode *a, const struct od_mode *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->publish_after, b->publish_after);
    assert_int_equal(a->slow_ms, b->slow_ms);
    assert_int_equal(a->figures.confirmed, b->figures.confirmed);
    assert_int_equal(a->figures.recovered, b->figures.recovered);
    assert_int_equal(a->figures.in_treatment, b->figures.in_treatment);
    assert_int_equal(a->figures.deaths, b->figures.deaths);
    assert_string_equal(a->date, b->date);
}

/* ---------------------------------------------------------------------------------- */
/* The mode */

static void test_mode_patch_subset(void **state)
{
    struct od_mode cur = defaults, out;
    json_t *p;
    char err[256] = "";

    (void)state;
    p = test_obj("{\"mode\": \"wrong_date\", \"figures\": {\"deaths\": 0, \"confirmed\": 5}}");
    assert_int_equal(standin_mode_patch(&od_standin, &cur, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_int_equal(out.kind, OD_WRONG_DATE);
    assert_int_equal(out.figures.confirmed, 5);
    assert_int_equal(out.figures.deaths, 0);
    assert_int_equal(out.figures.recovered, 6973);        /* untouched */
    assert_int_equal(out.figures.in_treatment, 3246);
    assert_string_equal(out.date, "2024-03-01");
    assert_int_equal(out.publish_after, 0);

    p = test_obj("{\"publish_after\": 2, \"slow_ms\": 60000, \"date\": null, \"mode\": \"ok\", "
                 "\"figures\": {\"recovered\": 1000000000000, \"in_treatment\": 7}}");
    /* in place */
    assert_int_equal(standin_mode_patch(&od_standin, &out, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_int_equal(out.publish_after, 2);
    assert_int_equal(out.slow_ms, 60000);
    assert_string_equal(out.date, "");
    assert_int_equal(out.kind, OD_OK);
    assert_int_equal(out.figures.recovered, 1000000000000LL);
    assert_int_equal(out.figures.in_treatment, 7);
    assert_int_equal(out.figures.confirmed, 5);

    p = test_obj("{\"date\": \"2000-02-29\", \"figures\": {}}");
    assert_int_equal(standin_mode_patch(&od_standin, &out, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_string_equal(out.date, "2000-02-29");

    p = test_obj("{}");
    cur = out;
    assert_int_equal(standin_mode_patch(&od_standin, &cur, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_mode_equal(&cur, &out);
}

static void expect_patch_error(const char *text, const char *want)
{
    test_patch_error(&od_standin, &defaults, text, want);
}

static void test_mode_patch_errors(void **state)
{
    (void)state;
    expect_patch_error("{\"mode\": \"ok\", \"bogus\": 1}", "unknown field 'bogus'");
    expect_patch_error("{\"mode\": \"OK\"}", "field 'mode' must be one of ok, ");
    expect_patch_error("{\"mode\": 1}", "field 'mode' must be one of");
    expect_patch_error("{\"mode\": null}", "field 'mode' must be one of");
    expect_patch_error("{\"publish_after\": -1}", "field 'publish_after' must be between 0");
    expect_patch_error("{\"publish_after\": \"2\"}", "field 'publish_after' must be an integer");
    expect_patch_error("{\"publish_after\": 1000000001}", "must be between 0 and 1000000000");
    expect_patch_error("{\"slow_ms\": 60001}", "field 'slow_ms' must be between 0 and 60000");
    expect_patch_error("{\"slow_ms\": 1.0}", "field 'slow_ms' must be an integer");
    expect_patch_error("{\"figures\": [1]}", "field 'figures' must be an object");
    expect_patch_error("{\"figures\": {\"confirmed\": 1, \"cured\": 2}}",
                       "unknown field 'figures.cured'");
    expect_patch_error("{\"figures\": {\"deaths\": -1}}", "field 'figures.deaths' must be");
    expect_patch_error("{\"figures\": {\"recovered\": 1000000000001}}",
                       "field 'figures.recovered' must be between 0 and 1000000000000");
    expect_patch_error("{\"figures\": {\"in_treatment\": \"5\"}}",
                       "field 'figures.in_treatment' must be an integer");
    expect_patch_error("{\"date\": \"2023-02-29\"}", "field 'date' must be a date");
    expect_patch_error("{\"date\": \"\"}", "field 'date' must be a date");
    expect_patch_error("{\"date\": 20240301}", "field 'date' must be a date");
    expect_patch_error("[]", "must be a JSON object");
}

static void test_mode_json(void **state)
{
    struct od_mode m = defaults;
    json_t *j, *f;
    struct od_mode back;
    char err[256];

    (void)state;
    m.kind = OD_DECREASING;
    m.publish_after = 3;
    m.slow_ms = 250;
    j = standin_mode_json(&od_standin, &m);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 5);
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "decreasing");
    assert_int_equal(json_integer_value(json_object_get(j, "publish_after")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "slow_ms")), 250);
    assert_string_equal(json_string_value(json_object_get(j, "date")), "2024-03-01");
    f = json_object_get(j, "figures");
    assert_int_equal(json_object_size(f), 4);
    assert_int_equal(json_integer_value(json_object_get(f, "in_treatment")), 3246);
    /* what GET /admin/mode shows, POST /admin/mode takes back */
    memset(&back, 0, sizeof(back));
    assert_int_equal(standin_mode_patch(&od_standin, &back, j, &back, err, sizeof(err)), 0);
    assert_mode_equal(&back, &m);
    json_decref(j);

    m.date[0] = '\0';
    j = standin_mode_json(&od_standin, &m);
    assert_true(json_is_null(json_object_get(j, "date")));
    json_decref(j);
}

/* ---------------------------------------------------------------------------------- */
/* The answers */

static od_state_t *new_state(const struct od_mode *m)
{
    char err[256] = "";
    od_state_t *st = state_new(m, err, sizeof(err));

    if (st == NULL)
        fail_msg("state_new: %s", err);
    return st;
}

static void expect_answer(od_state_t *st, enum od_kind served, int status, const char *date)
{
    struct od_answer a;

    assert_int_equal(state_daily(st, NOW_MS, &a), 0);
    if (a.served != served)
        fail_msg("served %s, want %s", od_kind_name(a.served), od_kind_name(served));
    assert_int_equal(a.status, status);
    assert_string_equal(a.date, date);
}

static void test_daily_modes(void **state)
{
    od_state_t *st = new_state(&defaults);
    struct od_answer a;

    (void)state;
    expect_answer(st, OD_OK, 200, "2024-03-01");
    test_patch(state_standin(st), "{\"mode\": \"not_published\"}");
    expect_answer(st, OD_NOT_PUBLISHED, 200, "2024-02-29");
    test_patch(state_standin(st), "{\"mode\": \"wrong_date\"}");
    expect_answer(st, OD_WRONG_DATE, 200, "2024-02-20");
    test_patch(state_standin(st), "{\"mode\": \"all_zero\"}");
    expect_answer(st, OD_ALL_ZERO, 200, "2024-03-01");
    test_patch(state_standin(st), "{\"mode\": \"decreasing\"}");
    expect_answer(st, OD_DECREASING, 200, "2024-03-01");
    test_patch(state_standin(st), "{\"mode\": \"down\"}");
    expect_answer(st, OD_DOWN, 503, "");

    /* invalid answers are numbered, so that they take turns */
    test_patch(state_standin(st), "{\"mode\": \"invalid\"}");
    assert_int_equal(state_daily(st, NOW_MS, &a), 0);
    assert_int_equal(a.invalid_seq, 0);
    assert_int_equal(state_daily(st, NOW_MS, &a), 0);
    assert_int_equal(a.invalid_seq, 1);

    /* the figures served are those of the moment */
    test_patch(state_standin(st), "{\"mode\": \"ok\", \"figures\": {\"confirmed\": 20000}}");
    assert_int_equal(state_daily(st, NOW_MS, &a), 0);
    assert_int_equal(a.figures.confirmed, 20000);
    assert_int_equal(a.figures.deaths, 204);

    /* unpinned: the clock in the process's zone */
    assert_int_equal(setenv("TZ", "KST-9", 1), 0);
    tzset();
    test_patch(state_standin(st), "{\"date\": null}");
    expect_answer(st, OD_OK, 200, "2024-03-02");
    test_patch(state_standin(st), "{\"mode\": \"not_published\"}");
    expect_answer(st, OD_NOT_PUBLISHED, 200, "2024-03-01");

    /* a reset forgets the mode and the numbering */
    standin_reset(state_standin(st));
    expect_answer(st, OD_OK, 200, "2024-03-01");
    test_patch(state_standin(st), "{\"mode\": \"invalid\"}");
    assert_int_equal(state_daily(st, NOW_MS, &a), 0);
    assert_int_equal(a.invalid_seq, 0);
    state_free(st);
    state_free(NULL);
}

static void test_publish_after(void **state)
{
    struct od_mode m = defaults;
    od_state_t *st;

    (void)state;
    /* "publishes on the 3rd request" */
    m.publish_after = 2;
    st = new_state(&m);
    expect_answer(st, OD_NOT_PUBLISHED, 200, "2024-02-29");
    standin_mode_get(state_standin(st), &m);
    assert_int_equal(m.publish_after, 1);
    expect_answer(st, OD_NOT_PUBLISHED, 200, "2024-02-29");
    expect_answer(st, OD_OK, 200, "2024-03-01");
    expect_answer(st, OD_OK, 200, "2024-03-01");
    standin_mode_get(state_standin(st), &m);
    assert_int_equal(m.publish_after, 0);

    /* set again by the admin API, it counts from then, and goes before any mode */
    test_patch(state_standin(st), "{\"publish_after\": 1, \"mode\": \"down\"}");
    expect_answer(st, OD_NOT_PUBLISHED, 200, "2024-02-29");
    expect_answer(st, OD_DOWN, 503, "");
    test_patch(state_standin(st), "{\"publish_after\": 1, \"mode\": \"all_zero\"}");
    expect_answer(st, OD_NOT_PUBLISHED, 200, "2024-02-29");
    expect_answer(st, OD_ALL_ZERO, 200, "2024-03-01");

    /* a reset starts the count from the environment's value again */
    standin_reset(state_standin(st));
    expect_answer(st, OD_NOT_PUBLISHED, 200, "2024-02-29");
    expect_answer(st, OD_NOT_PUBLISHED, 200, "2024-02-29");
    expect_answer(st, OD_OK, 200, "2024-03-01");
    state_free(st);
}

static void test_patch_all_or_nothing(void **state)
{
    od_state_t *st = new_state(&defaults);
    struct od_mode m;
    char err[256] = "";
    json_t *p;

    (void)state;
    p = test_obj("{\"mode\": \"down\", \"figures\": {\"confirmed\": 1, \"nope\": 2}}");
    assert_int_equal(standin_patch(state_standin(st), p, &m, err, sizeof(err)), -1);
    json_decref(p);
    assert_non_null(strstr(err, "figures.nope"));
    assert_int_equal(m.kind, OD_OK);            /* reported unchanged */
    assert_int_equal(m.figures.confirmed, 10423);
    expect_answer(st, OD_OK, 200, "2024-03-01");
    state_free(st);
}

/* ---------------------------------------------------------------------------------- */
/* The record */

static void test_requests_recorded(void **state)
{
    od_state_t *st = new_state(&defaults);
    json_t *r, *list;

    (void)state;
    expect_answer(st, OD_OK, 200, "2024-03-01");
    test_patch(state_standin(st), "{\"mode\": \"down\"}");
    expect_answer(st, OD_DOWN, 503, "");
    test_patch(state_standin(st), "{\"mode\": \"wrong_date\"}");
    expect_answer(st, OD_WRONG_DATE, 200, "2024-02-20");

    r = state_requests(st);
    assert_non_null(r);
    list = json_object_get(r, "requests");
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "served")),
                        "ok");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "status")),
                     200);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "at")),
                        "2024-03-01T15:30:00.000Z");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "served")),
                        "down");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 1), "status")),
                     503);
    assert_true(json_is_null(json_object_get(json_array_get(list, 1), "date")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 2), "date")),
                        "2024-02-20");
    json_decref(r);

    standin_reset(state_standin(st));
    r = state_requests(st);
    assert_int_equal(json_array_size(json_object_get(r, "requests")), 0);
    json_decref(r);
    state_free(st);
}

static void test_requests_bounded(void **state)
{
    od_state_t *st = new_state(&defaults);
    struct od_answer a;
    json_t *r, *list;
    size_t i;

    (void)state;
    test_patch(state_standin(st), "{\"mode\": \"down\"}");
    for (i = 0; i < 3; i++)
        assert_int_equal(state_daily(st, NOW_MS, &a), 0);
    test_patch(state_standin(st), "{\"mode\": \"ok\"}");
    for (i = 0; i < OD_RECORDS_MAX; i++)
        assert_int_equal(state_daily(st, NOW_MS + (int64_t)i, &a), 0);
    r = state_requests(st);
    list = json_object_get(r, "requests");
    assert_int_equal(json_array_size(list), OD_RECORDS_MAX);
    /* the three "down" ones, the oldest, are gone */
    for (i = 0; i < OD_RECORDS_MAX; i++) {
        const char *s = json_string_value(json_object_get(json_array_get(list, i), "served"));

        if (s == NULL || strcmp(s, "ok") != 0)
            fail_msg("request %zu served %s", i, s != NULL ? s : "(null)");
    }
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(list, OD_RECORDS_MAX - 1), "at")),
                        "2024-03-01T15:30:09.999Z");
    json_decref(r);
    state_free(st);
}

static void test_sleep_and_stop(void **state)
{
    od_state_t *st = new_state(&defaults);

    (void)state;
    test_sleep_and_stop_of(state_standin(st));
    state_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_patch_subset),
        cmocka_unit_test(test_mode_patch_errors),
        cmocka_unit_test(test_mode_json),
        cmocka_unit_test(test_daily_modes),
        cmocka_unit_test(test_publish_after),
        cmocka_unit_test(test_patch_all_or_nothing),
        cmocka_unit_test(test_requests_recorded),
        cmocka_unit_test(test_requests_bounded),
        cmocka_unit_test(test_sleep_and_stop),
    };

    log_init("test_open_data");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
