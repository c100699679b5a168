/* Unit tests for libcommon/phone.c: the E.164 check and the masked form of a number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "phone.h"

static void test_e164(void **state)
{
    static const char *const good[] = {
        "+12345678", "+821012341234", "+123456789012345", "+15005550006", "+91234567",
    };
    static const char *const bad[] = {
        "", "+", "+1234567", "+1234567890123456", "821012341234", "+82 10 1234 1234",
        "+82-10-1234-1234", " +821012341234", "+821012341234 ", "++821012341234",
        "+82101234123a", "+\xef\xbc\x98" "21012341234", "+821012341234\n",
        /* the first digit of a country code is never 0 */
        "+01234567", "+0821012341234", "+012345678901234",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!phone_e164_valid(good[i]))
            fail_msg("refused: %s", good[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (phone_e164_valid(bad[i]))
            fail_msg("accepted: '%s'", bad[i]);
    }
    assert_false(phone_e164_valid(NULL));
    /* the bounds are the header's */
    assert_int_equal(PHONE_E164_MIN_DIGITS, 8);
    assert_int_equal(PHONE_E164_MAX_DIGITS, 15);
    assert_int_equal(PHONE_MAX, (int)strlen("+123456789012345"));
}

/* Senders: an E.164 number, or 1..11 letters, digits and spaces with a letter. */
static void test_sender(void **state)
{
    (void)state;
    assert_true(phone_sender_valid("+15005550006"));
    assert_true(phone_sender_valid("dozen"));
    assert_true(phone_sender_valid("Dozen Shop1"));       /* 11 characters */
    assert_false(phone_sender_valid("Dozen Shop12"));     /* 12 */
    assert_false(phone_sender_valid("12345"));            /* no letter, not E.164 */
    assert_false(phone_sender_valid(""));
    assert_false(phone_sender_valid("dozen!"));
    assert_false(phone_sender_valid("+0123456789"));      /* E.164 never starts with 0 */
}

static void expect_mask(const char *in, const char *want)
{
    char out[PHONE_MASK_MAX];

    phone_mask(in, out, sizeof(out));
    if (strcmp(out, want) != 0)
        fail_msg("mask '%s': got '%s', want '%s'", in, out, want);
}

/* Returns how many digits s shows. */
static size_t digits_in(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s >= '0' && *s <= '9';
    return n;
}

static void test_mask(void **state)
{
    char out[PHONE_MASK_MAX], small[6];

    (void)state;
    expect_mask("+821012341234", "+82******1234");   /* Korea: two-digit code */
    expect_mask("+15005550006", "+1******0006");     /* NANP: one digit */
    expect_mask("+79161234567", "+7******4567");
    expect_mask("+85291234567", "+852****4567");     /* Hong Kong: three digits */
    expect_mask("+4915112345678", "+49*******5678");
    /* too short to show the country code and still hide four digits */
    expect_mask("+12345678", "+****5678");
    expect_mask("+852123456", "+*****3456");
    /* not E.164 (a leading 0 included): every digit but the last four hidden, anything
     * odd a '?' */
    expect_mask("+01012341234", "+*******1234");
    expect_mask("01012341234", "*******1234");
    expect_mask(" 821012341234", "?********1234");
    expect_mask("+82 10-1234\"5678", "+**?**?****?5678");
    expect_mask("1234", "1234");
    expect_mask("", "");
    expect_mask(NULL, "");
    /* long input is cut */
    expect_mask("+8210123412341234123412341234", "+***********************...");

    /* never more than four digits of a subscriber number, whatever the input */
    phone_mask("+821099998888", out, sizeof(out));
    assert_int_equal(digits_in(out), 2 + 4);
    assert_null(strstr(out, "9999"));

    /* the longest output fits PHONE_MASK_MAX */
    phone_mask("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12"
               "\x13\x14\x15\x16\x17\x18\x19\x1a", out, sizeof(out));
    assert_string_equal(out, "????????????????????????...");

    /* a small buffer is never overrun */
    memset(small, 'X', sizeof(small));
    phone_mask("+821012341234", small, sizeof(small));
    assert_string_equal(small, "+82**");
    phone_mask("+821012341234", out, 0); /* nothing written, no crash */
    phone_mask("+821012341234", NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e164),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_sender),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
