/* fuzz_sms_date: the one parser of the SMS provider's answers that is a function of its
 * own (services/notifier/sms.c): sms_date_parse, which reads each listed message's
 * date_created when sms_find decides whether an uncertain send already went out. The rest
 * of those answers is read with jansson inside sms_send and sms_find. The input is the
 * date text.
 *
 * Properties: an accepted date is exactly the 31 characters of "Tue, 07 Jan 2025 10:11:12
 * +0000", to the whole second, and written back in UTC (gmtime) reads back to the same
 * instant. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "sms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size), again[64];
    long long ms = 0, ms2 = 0;

    if (sms_date_parse(s, &ms) == 0) {
        time_t t = (time_t)(ms / 1000);
        struct tm tm;

        FUZZ_CHECK(strlen(s) == 31);
        FUZZ_CHECK(ms % 1000 == 0);
        /* 1970-01-01 00:00:00 +2359 is the earliest */
        FUZZ_CHECK(ms >= -(23 * 3600LL + 59 * 60) * 1000);
        FUZZ_CHECK(gmtime_r(&t, &tm) != NULL);
        if (tm.tm_year + 1900 >= 1970 && tm.tm_year + 1900 <= 9999) {
            FUZZ_CHECK(strftime(again, sizeof(again), "%a, %d %b %Y %H:%M:%S +0000", &tm) ==
                       31);
            FUZZ_CHECK(sms_date_parse(again, &ms2) == 0 && ms2 == ms);
        }
    } else {
        FUZZ_CHECK(ms == 0); /* untouched */
    }
    free(s);
    return 0;
}
