/* test_notifier_bulletin: the notifier's SMS texts always fit one 160-character message
 * and say what they should (services/notifier/bulletin.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "notifier.h"
#include "sku.h"

static void bulletin_has_the_date_and_the_four_figures(void **state)
{
    feed_figures_t f = { "2026-11-22", 10423, 6973, 3246, 204 };
    char out[4 * NOTIFIER_SMS_MAX + 1];

    (void)state;
    assert_int_equal(bulletin_text(&f, out, sizeof(out)), 0);
    assert_string_equal(out, "dozen 2026-11-22: confirmed 10423, recovered 6973, "
                             "in treatment 3246, deaths 204");
}

static void largest_figures_still_fit(void **state)
{
    feed_figures_t f = { "9999-12-31", FEED_FIGURE_MAX, FEED_FIGURE_MAX, FEED_FIGURE_MAX,
                         FEED_FIGURE_MAX };
    char out[4 * NOTIFIER_SMS_MAX + 1];

    (void)state;
    assert_int_equal(bulletin_text(&f, out, sizeof(out)), 0);
    assert_true(strlen(out) <= NOTIFIER_SMS_MAX);
    assert_non_null(strstr(out, "1000000000000000"));
}

static void a_short_buffer_is_an_error_not_a_cut_message(void **state)
{
    feed_figures_t f = { "2026-11-22", 1, 2, 3, 4 };
    char out[20];

    (void)state;
    assert_int_equal(bulletin_text(&f, out, sizeof(out)), -1);
    assert_string_equal(out, "");
}

static void every_reason_has_its_words_within_one_message(void **state)
{
    static const feed_reason_t reasons[] = {
        FEED_SOURCE_UNREACHABLE, FEED_NOT_PUBLISHED_YET, FEED_STALE_DATE, FEED_ALL_ZERO,
        FEED_INVALID_DATA, FEED_DECREASING_TOTALS
    };
    char out[4 * NOTIFIER_SMS_MAX + 1];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        const char *code = feed_reason_code(reasons[i]);

        assert_int_equal(bulletin_unavailable_text("2026-11-22", code, out, sizeof(out)), 0);
        assert_true(strlen(out) <= NOTIFIER_SMS_MAX);
        assert_non_null(strstr(out, "2026-11-22"));
        assert_non_null(strstr(out, "unavailable"));
        assert_non_null(strstr(out, feed_reason_words(code)));
    }
    assert_int_equal(bulletin_unavailable_text("2026-11-22", "not_published_yet", out,
                                               sizeof(out)), 0);
    assert_string_equal(out, "dozen 2026-11-22: today's bulletin is unavailable: today's "
                             "figures have not been published yet.");
    /* A reason the notifier does not know (from an older or newer version) still reads. */
    assert_int_equal(bulletin_unavailable_text("2026-11-22", "no_such_code", out,
                                               sizeof(out)), 0);
    assert_int_equal(bulletin_unavailable_text("2026-11-22", NULL, out, sizeof(out)), 0);
}

static void restock_alert_fits_for_the_longest_sku(void **state)
{
    char sku[SKU_MAX + 1], out[4 * NOTIFIER_SMS_MAX + 1];

    (void)state;
    memset(sku, 'x', SKU_MAX);
    sku[SKU_MAX] = '\0';
    assert_int_equal(bulletin_restock_text(sku, out, sizeof(out)), 0);
    assert_true(strlen(out) <= NOTIFIER_SMS_MAX);
    assert_int_equal(bulletin_restock_text("glazed", out, sizeof(out)), 0);
    assert_string_equal(out, "dozen: glazed is back in stock.");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bulletin_has_the_date_and_the_four_figures),
        cmocka_unit_test(largest_figures_still_fit),
        cmocka_unit_test(a_short_buffer_is_an_error_not_a_cut_message),
        cmocka_unit_test(every_reason_has_its_words_within_one_message),
        cmocka_unit_test(restock_alert_fits_for_the_longest_sku),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
