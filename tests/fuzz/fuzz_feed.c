/* fuzz_feed: the notifier's check of the open-data feed's answer (services/notifier/feed.c),
 * through its public function feed_validate, as feed_fetch calls it on a 2xx body; and the
 * date helpers. The input is the body; its first ten bytes are also tried as a date.
 *
 * Properties: FEED_OK only for today's figures, in range, not all zero, and not below the
 * last stored day; every other answer has a reason code and an explanation. */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "feed.h"
#include "fuzz.h"

#define TODAY "2026-11-22"

static void check_dates(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size < 10 ? size : 10);
    char before[11];

    if (feed_date_valid(s)) {
        FUZZ_CHECK(feed_date_before(s, before) == 0 && strlen(before) == 10);
        /* The day before a valid date is valid, but for the first day of 1970. */
        FUZZ_CHECK(feed_date_valid(before) || strcmp(s, "1970-01-01") == 0);
        FUZZ_CHECK(strcmp(before, s) < 0);
    } else {
        FUZZ_CHECK(feed_date_before(s, before) != 0);
    }
    free(s);
}

static void check(const uint8_t *data, size_t size, const feed_figures_t *last)
{
    feed_figures_t f;
    char err[256];
    feed_reason_t r;
    const char *code;

    memset(&f, 0xa5, sizeof(f));
    r = feed_validate((const char *)data, size, TODAY, last, &f, err, sizeof(err));
    code = feed_reason_code(r);
    FUZZ_CHECK(code != NULL && strlen(feed_reason_words(code)) <= 60);
    FUZZ_CHECK(r != FEED_SOURCE_UNREACHABLE); /* that one is feed_fetch's alone */
    if (r != FEED_OK) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    FUZZ_CHECK(strcmp(f.date, TODAY) == 0);
    /* ... and the answer's date is that date, not one that starts with it (jansson refuses
     * "\u0000" unless asked with JSON_ALLOW_NUL: this would catch a loader that allows it). */
    {
        json_error_t jerr;
        json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);

        FUZZ_CHECK(doc != NULL);
        FUZZ_CHECK(json_string_length(json_object_get(doc, "date")) == strlen(TODAY));
        json_decref(doc);
    }
    FUZZ_CHECK(f.confirmed >= 0 && f.confirmed <= FEED_FIGURE_MAX);
    FUZZ_CHECK(f.recovered >= 0 && f.recovered <= FEED_FIGURE_MAX);
    FUZZ_CHECK(f.in_treatment >= 0 && f.in_treatment <= FEED_FIGURE_MAX);
    FUZZ_CHECK(f.deaths >= 0 && f.deaths <= FEED_FIGURE_MAX);
    FUZZ_CHECK(f.confirmed || f.recovered || f.in_treatment || f.deaths);
    if (last != NULL)
        FUZZ_CHECK(f.confirmed >= last->confirmed && f.recovered >= last->recovered &&
                   f.deaths >= last->deaths);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const feed_figures_t last = { "2026-11-21", 10423, 9000, 1300, 123 };

    check_dates(data, size);
    check(data, size, NULL);
    check(data, size, &last);
    return 0;
}
