/* test_notifier_bulletin: the notifier's SMS texts: templates with named fields, the daily
 * changes, the Korean defaults, and the SMS segment budget checked at start
 * (services/notifier/bulletin.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "notifier.h"
#include "sku.h"
#include "sms_segments.h"

static const char *const vars[] = {
    "BULLETIN_TEMPLATE", "BULLETIN_RESTOCK_TEMPLATE", "BULLETIN_UNAVAILABLE_TEMPLATE",
    "BULLETIN_UNAVAILABLE_SOURCE_UNREACHABLE", "BULLETIN_UNAVAILABLE_NOT_PUBLISHED_YET",
    "BULLETIN_UNAVAILABLE_STALE_DATE", "BULLETIN_UNAVAILABLE_ALL_ZERO",
    "BULLETIN_UNAVAILABLE_INVALID_DATA", "BULLETIN_UNAVAILABLE_DECREASING_TOTALS",
    "BULLETIN_UNAVAILABLE_SOURCE_REFUSED",
};

static int clean_env(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    return 0;
}

static void texts(struct bulletin_texts *t, int segments)
{
    char err[512];

    if (bulletin_texts_read(t, segments, err, sizeof(err)) != 0)
        fail_msg("refused: %s", err);
}

static smsseg_count_t count(const char *s)
{
    smsseg_count_t c;

    assert_int_equal(smsseg_count(s, strlen(s), &c, NULL, 0), 0);
    return c;
}

static void default_bulletin_is_korean_with_the_changes(void **state)
{
    struct bulletin_texts t;
    feed_figures_t f = { "2022-03-03", 345116, 2000, 3000, 2858 };
    feed_figures_t prev = { "2022-03-02", 343445, 1900, 3100, 2849 };
    char out[NOTIFIER_BODY_MAX + 1];
    smsseg_count_t c;

    (void)state;
    texts(&t, 2);
    assert_int_equal(bulletin_text(&t, &f, &prev, out, sizeof(out)), 0);
    assert_string_equal(out, "[dozen] 3월 3일 코로나19 확진 345,116명(▲1,671), "
                             "사망 2,858명(▲9)");
    c = count(out);
    assert_int_equal(c.encoding, SMSSEG_UCS2);
    assert_true(c.segments <= 2);
    /* without a day before, the changes are unknown, not invented */
    assert_int_equal(bulletin_text(&t, &f, NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "[dozen] 3월 3일 코로나19 확진 345,116명(-), 사망 2,858명(-)");
}

static void every_field_of_a_custom_template(void **state)
{
    struct bulletin_texts t;
    feed_figures_t f = { "2026-11-22", 1234567, 6973, 3246, 204 };
    feed_figures_t prev = { "2026-11-21", 1234567, 6900, 3300, 200 };
    char out[NOTIFIER_BODY_MAX + 1];

    (void)state;
    setenv("BULLETIN_TEMPLATE", "{date} {month}/{day} c={confirmed} {confirmed_change} "
           "d={deaths} {deaths_change} r={recovered} {recovered_change} "
           "t={in_treatment} {in_treatment_change} {{x}}", 1);
    texts(&t, 4);
    assert_int_equal(bulletin_text(&t, &f, &prev, out, sizeof(out)), 0);
    assert_string_equal(out, "2026-11-22 11/22 c=1,234,567 0 d=204 ▲4 r=6,973 ▲73 "
                             "t=3,246 ▼54 {x}");
    /* a template of GSM-7 characters only: 160 per segment */
    setenv("BULLETIN_TEMPLATE", "dozen {date}: confirmed {confirmed}, deaths {deaths}", 1);
    texts(&t, 1);
    assert_int_equal(bulletin_text(&t, &f, &prev, out, sizeof(out)), 0);
    assert_string_equal(out, "dozen 2026-11-22: confirmed 1,234,567, deaths 204");
    assert_int_equal(count(out).encoding, SMSSEG_GSM7);
}

static void unknown_fields_and_braces_are_refused_by_name(void **state)
{
    static const struct {
        const char *tpl, *words;
    } bad[] = {
        { "{confirmd} today", "unknown field {confirmd}" },
        { "{reason}", "unknown field {reason}" },           /* not in the daily SMS */
        { "{confirmed", "a '{' without its '}'" },
        { "confirmed}", "a '}' without its '{'" },
        { "\xff{date}", "UTF-8" },
    };
    struct bulletin_texts t;
    char err[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("BULLETIN_TEMPLATE", bad[i].tpl, 1);
        assert_int_equal(bulletin_texts_read(&t, 2, err, sizeof(err)), -1);
        if (strstr(err, "BULLETIN_TEMPLATE") == NULL || strstr(err, bad[i].words) == NULL)
            fail_msg("'%s': %s", bad[i].tpl, err);
    }
    /* the message lists what may be used */
    setenv("BULLETIN_TEMPLATE", "{nope}", 1);
    assert_int_equal(bulletin_texts_read(&t, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "{confirmed_change}"));
    unsetenv("BULLETIN_TEMPLATE");
    setenv("BULLETIN_UNAVAILABLE_ALL_ZERO", "{date} {confirmed}", 1);
    assert_int_equal(bulletin_texts_read(&t, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "BULLETIN_UNAVAILABLE_ALL_ZERO"));
    assert_non_null(strstr(err, "{confirmed}"));
    unsetenv("BULLETIN_UNAVAILABLE_ALL_ZERO");
    setenv("BULLETIN_RESTOCK_TEMPLATE", "{sku} {date}", 1);
    assert_int_equal(bulletin_texts_read(&t, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "BULLETIN_RESTOCK_TEMPLATE"));
}

static void segment_budget_is_checked_with_the_largest_figures(void **state)
{
    struct bulletin_texts t;
    char err[512], big[512];
    size_t i;

    (void)state;
    /* the Korean default is UCS-2: two segments hold it at 10^15, one does not */
    assert_int_equal(bulletin_texts_read(&t, 2, err, sizeof(err)), 0);
    assert_int_equal(bulletin_texts_read(&t, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "BULLETIN_TEMPLATE"));
    assert_non_null(strstr(err, "UCS-2"));
    assert_non_null(strstr(err, "SMS_MAX_SEGMENTS=1"));
    /* 60 Korean characters and one figure: 61 + 21 > 70 with the largest figures */
    setenv("BULLETIN_TEMPLATE", "가가가가가가가가가가가가가가가가가가가가가가가가가가가가가가"
           "가가가가가가가가가가가가가가가가가가가가가가가가가가가가가가{confirmed}", 1);
    assert_int_equal(bulletin_texts_read(&t, 1, err, sizeof(err)), -1);
    assert_int_equal(bulletin_texts_read(&t, 2, err, sizeof(err)), 0);
    /* the same length in GSM-7 fits one segment */
    setenv("BULLETIN_TEMPLATE", "dozen dozen dozen dozen dozen dozen dozen dozen dozen dozen"
           " {confirmed}", 1);
    assert_int_equal(bulletin_texts_read(&t, 1, err, sizeof(err)), 0);
    unsetenv("BULLETIN_TEMPLATE");
    /* every unavailable notice is held to the budget too */
    for (i = 0; i < 130; i++)
        memcpy(big + 3 * i, "가", 3);
    snprintf(big + 3 * 130, sizeof(big) - 3 * 130, "{date}");
    setenv("BULLETIN_UNAVAILABLE_TEMPLATE", big, 1);   /* 130 + 10 > 134: three */
    assert_int_equal(bulletin_texts_read(&t, 2, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "BULLETIN_UNAVAILABLE_TEMPLATE"));
    assert_int_equal(bulletin_texts_read(&t, 3, err, sizeof(err)), 0);
}

static void a_short_buffer_is_an_error_not_a_cut_message(void **state)
{
    struct bulletin_texts t;
    feed_figures_t f = { "2026-11-22", 10423, 6973, 3246, 204 };
    char out[16];

    (void)state;
    texts(&t, 2);
    assert_int_equal(bulletin_text(&t, &f, NULL, out, sizeof(out)), -1);
    assert_string_equal(out, "");
}

static void every_reason_has_its_own_notice(void **state)
{
    static const char *const codes[] = {
        "source_unreachable", "not_published_yet", "stale_date", "all_zero", "invalid_data",
        "decreasing_totals", "source_refused",
    };
    struct bulletin_texts t;
    char out[NOTIFIER_BODY_MAX + 1], first[NOTIFIER_BODY_MAX + 1] = "";
    size_t i;

    (void)state;
    texts(&t, 2);
    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        assert_int_equal(bulletin_unavailable_text(&t, "2026-11-22", codes[i], out,
                                                   sizeof(out)), 0);
        assert_non_null(strstr(out, "11월 22일"));
        assert_non_null(strstr(out, bulletin_reason_words(codes[i])));
        assert_true(count(out).segments <= 2);
        assert_string_not_equal(out, first);
        snprintf(first, sizeof(first), "%s", out);
    }
    /* an unknown reason (an older or newer version's) gets the generic notice */
    assert_int_equal(bulletin_unavailable_text(&t, "2026-11-22", "no_such_code", out,
                                               sizeof(out)), 0);
    assert_non_null(strstr(out, bulletin_reason_words(NULL)));
    assert_int_equal(bulletin_unavailable_text(&t, "2026-11-22", NULL, out, sizeof(out)), 0);
    /* overridden per reason */
    setenv("BULLETIN_UNAVAILABLE_STALE_DATE", "dozen {date}: stale ({reason})", 1);
    texts(&t, 2);
    assert_int_equal(bulletin_unavailable_text(&t, "2026-11-22", "stale_date", out,
                                               sizeof(out)), 0);
    assert_string_equal(out, "dozen 2026-11-22: stale (발표된 자료의 날짜가 맞지 않습니다)");
}

static void restock_alert_fits_for_the_longest_sku(void **state)
{
    struct bulletin_texts t;
    char sku[SKU_MAX + 1], out[NOTIFIER_BODY_MAX + 1];

    (void)state;
    texts(&t, 2);
    memset(sku, 'x', SKU_MAX);
    sku[SKU_MAX] = '\0';
    assert_int_equal(bulletin_restock_text(&t, sku, out, sizeof(out)), 0);
    /* one SMS segment, even for the longest SKU */
    assert_int_equal(count(out).segments, 1);
    assert_int_equal(bulletin_restock_text(&t, "glazed", out, sizeof(out)), 0);
    assert_string_equal(out, "dozen: glazed is back in stock.");
    assert_int_equal(bulletin_restock_text(&t, "bad sku", out, sizeof(out)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(default_bulletin_is_korean_with_the_changes, clean_env),
        cmocka_unit_test_setup(every_field_of_a_custom_template, clean_env),
        cmocka_unit_test_setup(unknown_fields_and_braces_are_refused_by_name, clean_env),
        cmocka_unit_test_setup(segment_budget_is_checked_with_the_largest_figures, clean_env),
        cmocka_unit_test_setup(a_short_buffer_is_an_error_not_a_cut_message, clean_env),
        cmocka_unit_test_setup(every_reason_has_its_own_notice, clean_env),
        cmocka_unit_test_setup(restock_alert_fits_for_the_longest_sku, clean_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
