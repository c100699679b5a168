/* fuzz_feed_datagokr: the notifier's check of the data portal's XML answer
 * (services/notifier/feed_datagokr.c), through its public function feed_validate_datagokr,
 * as feed_fetch calls it. The input is the body.
 *
 * Properties: FEED_OK only for today's figures, in range, not all zero, not below the
 * feed's own day before nor the last stored day; every other answer has a reason and an
 * explanation. libxml2 must not hang on entities (the parser loads no DTD). */
#include <stdint.h>
#include <string.h>

#include "feed.h"
#include "fuzz.h"

#define TODAY "2026-11-22"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    feed_global_init();
    return 0;
}

static void check_range(const feed_figures_t *f)
{
    FUZZ_CHECK(f->confirmed >= 0 && f->confirmed <= FEED_FIGURE_MAX);
    FUZZ_CHECK(f->recovered >= 0 && f->recovered <= FEED_FIGURE_MAX);
    FUZZ_CHECK(f->in_treatment >= 0 && f->in_treatment <= FEED_FIGURE_MAX);
    FUZZ_CHECK(f->deaths >= 0 && f->deaths <= FEED_FIGURE_MAX);
}

static void check(const uint8_t *data, size_t size, const feed_figures_t *last)
{
    feed_figures_t f, prev;
    int has_prev = -1;
    char err[256];
    feed_reason_t r;

    memset(&f, 0xa5, sizeof(f));
    memset(&prev, 0xa5, sizeof(prev));
    r = feed_validate_datagokr((const char *)data, size, TODAY, last, &f, &prev, &has_prev,
                               err, sizeof(err));
    FUZZ_CHECK(feed_reason_code(r) != NULL);
    if (r != FEED_OK) {
        FUZZ_CHECK(err[0] != '\0');
        return;
    }
    FUZZ_CHECK(strcmp(f.date, TODAY) == 0);
    check_range(&f);
    FUZZ_CHECK(f.confirmed || f.recovered || f.in_treatment || f.deaths);
    if (last != NULL)
        FUZZ_CHECK(f.confirmed >= last->confirmed && f.recovered >= last->recovered &&
                   f.deaths >= last->deaths);
    FUZZ_CHECK(has_prev == 0 || has_prev == 1);
    if (has_prev) {
        check_range(&prev);
        FUZZ_CHECK(strcmp(prev.date, "2026-11-21") == 0);
        FUZZ_CHECK(f.confirmed >= prev.confirmed && f.recovered >= prev.recovered &&
                   f.deaths >= prev.deaths);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const feed_figures_t last = { "2026-11-21", 343445, 6900, 3300, 2849 };

    check(data, size, NULL);
    check(data, size, &last);
    return 0;
}
