/* fuzz_cron: the schedule parsers: cron_parse (NOTIFY_CRON), cron_parse_deadline
 * (NOTIFY_DEADLINE) and cfg_parse_duration_ms (every *_MS / duration setting), then what an
 * accepted schedule is used for: cron_next and cron_deadline_at in two zones (UTC and one
 * with daylight saving). The input is the text, given to all three parsers.
 *
 * Properties: an accepted expression sets only bits within each field's range, and its
 * next run is a later whole minute; a refused one leaves the result untouched and says
 * why; an accepted duration is not negative and reads back the same written in ms. */
#include <stdint.h>
#include <string.h>

#include "cfg.h"
#include "cron.h"
#include "fuzz.h"

#define AFTER_MS INT64_C(1795000000000) /* 2026-11-18 */

static cron_zone_t *zones[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char *const names[2] = { "UTC", "America/New_York" };
    char err[256];

    (void)argc;
    (void)argv;
    /* Opened once and kept (reachable, so not a leak): the targets read no file per run. */
    for (int i = 0; i < 2; i++) {
        zones[i] = cron_zone_open(names[i], err, sizeof(err));
        if (zones[i] == NULL) {
            fprintf(stderr, "fuzz_cron: %s\n", err);
            abort();
        }
    }
    return 0;
}

static void check_cron(const char *text)
{
    cron_t c, untouched;
    char err[512] = "";

    memset(&c, 0x5a, sizeof(c));
    untouched = c;
    if (cron_parse(text, &c, err, sizeof(err)) != 0) {
        FUZZ_CHECK(err[0] != '\0' && memcmp(&c, &untouched, sizeof(c)) == 0);
        return;
    }
    FUZZ_CHECK(c.minutes != 0 && (c.minutes >> 60) == 0);
    FUZZ_CHECK(c.hours != 0 && (c.hours >> 24) == 0);
    FUZZ_CHECK(c.days != 0 && (c.days & 1) == 0);
    FUZZ_CHECK(c.months != 0 && (c.months & 1) == 0 && (c.months >> 13) == 0);
    FUZZ_CHECK(c.weekdays != 0 && (c.weekdays >> 7) == 0);
    for (int i = 0; i < 2; i++) {
        int64_t next = 0, deadline = 0;
        cron_deadline_t dl = { CRON_DEADLINE_AFTER, 0, 0, 80 * 60 * 1000 };

        if (cron_next(&c, zones[i], AFTER_MS, &next, err, sizeof(err)) != 0) {
            FUZZ_CHECK(err[0] != '\0');
            continue;
        }
        FUZZ_CHECK(next > AFTER_MS && next % 60000 == 0);
        FUZZ_CHECK(cron_deadline_at(&dl, zones[i], next, &deadline, err, sizeof(err)) == 0);
        FUZZ_CHECK(deadline == next + dl.after_ms);
    }
}

static void check_deadline(const char *text)
{
    cron_deadline_t d, untouched;
    char err[512] = "";
    int64_t at = 0;

    memset(&d, 0x5a, sizeof(d));
    untouched = d;
    if (cron_parse_deadline(text, &d, err, sizeof(err)) != 0) {
        FUZZ_CHECK(err[0] != '\0' && memcmp(&d, &untouched, sizeof(d)) == 0);
        return;
    }
    if (d.kind == CRON_DEADLINE_CLOCK)
        FUZZ_CHECK(d.hour >= 0 && d.hour <= 23 && d.minute >= 0 && d.minute <= 59);
    else
        FUZZ_CHECK(d.kind == CRON_DEADLINE_AFTER && d.after_ms > 0);
    for (int i = 0; i < 2; i++) {
        /* Either a later instant or a reason (a clock time before the run). */
        if (cron_deadline_at(&d, zones[i], AFTER_MS, &at, err, sizeof(err)) == 0)
            FUZZ_CHECK(at > AFTER_MS);
        else
            FUZZ_CHECK(err[0] != '\0');
    }
}

static void check_duration(const char *text)
{
    long long ms = -1, again = -1;
    char err[512] = "", buf[32];

    if (cfg_parse_duration_ms(text, &ms, err, sizeof(err)) != 0) {
        FUZZ_CHECK(err[0] != '\0' && ms == -1);
        return;
    }
    FUZZ_CHECK(ms >= 0);
    snprintf(buf, sizeof(buf), "%lldms", ms);
    FUZZ_CHECK(cfg_parse_duration_ms(buf, &again, err, sizeof(err)) == 0 && again == ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);

    check_cron(text);
    check_deadline(text);
    check_duration(text);
    free(text);
    return 0;
}
