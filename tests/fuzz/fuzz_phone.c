/* fuzz_phone: the telephone number checks and mask (libcommon/phone.c) that sign-up,
 * NOTIFY_SMS_FROM and every log line with a number go through. The input is the text.
 *
 * Properties: an E.164 number is '+' and 8..15 digits; a valid number is a valid sender;
 * the mask shows at most the country code and the last four digits, only characters safe
 * to log unquoted, and always fits its buffer. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "phone.h"

static void check_mask(const char *s)
{
    char out[PHONE_MASK_MAX], small[6];
    size_t shown = 0, len;

    memset(out, 0x5a, sizeof(out));
    phone_mask(s, out, sizeof(out));
    len = strnlen(out, sizeof(out));
    FUZZ_CHECK(len < sizeof(out));
    for (size_t i = 0; i < len; i++) {
        FUZZ_CHECK(strchr("0123456789*+?.", out[i]) != NULL);
        shown += out[i] >= '0' && out[i] <= '9';
    }
    /* Three digits of country code at most, and the last four. */
    FUZZ_CHECK(shown <= 3 + 4);
    if (!phone_e164_valid(s))
        FUZZ_CHECK(shown <= 4);
    phone_mask(s, small, sizeof(small));
    FUZZ_CHECK(strnlen(small, sizeof(small)) < sizeof(small));
    phone_mask(s, small, 1);
    FUZZ_CHECK(small[0] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    size_t len = strlen(s);

    if (phone_e164_valid(s)) {
        FUZZ_CHECK(s[0] == '+' && s[1] >= '1' && s[1] <= '9');
        FUZZ_CHECK(len >= 1 + PHONE_E164_MIN_DIGITS && len <= PHONE_MAX);
        FUZZ_CHECK(strspn(s + 1, "0123456789") == len - 1);
        FUZZ_CHECK(phone_sender_valid(s));
    }
    if (phone_sender_valid(s) && !phone_e164_valid(s))
        FUZZ_CHECK(len >= 1 && len <= PHONE_SENDER_ALNUM_MAX &&
                   strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ") ==
                       len);
    check_mask(s);
    free(s);
    return 0;
}
