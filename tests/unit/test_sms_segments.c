/* Unit tests for libcommon/sms_segments.c: GSM-7 versus UCS-2 and the parts of each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sms_segments.h"

static smsseg_count_t count(const char *s)
{
    smsseg_count_t c;
    char err[128];

    if (smsseg_count(s, strlen(s), &c, err, sizeof(err)) != 0)
        fail_msg("refused '%s': %s", s, err);
    return c;
}

/* A text of n copies of the UTF-8 character ch. */
static char *repeat(const char *ch, size_t n, char *buf, size_t size)
{
    size_t len = strlen(ch), i;

    assert_true(n * len < size);
    for (i = 0; i < n; i++)
        memcpy(buf + i * len, ch, len);
    buf[n * len] = '\0';
    return buf;
}

static void test_gsm_limits(void **state)
{
    static char buf[4096];
    smsseg_count_t c;

    (void)state;
    c = count("");
    assert_int_equal(c.encoding, SMSSEG_GSM7);
    assert_int_equal(c.segments, 1);
    c = count(repeat("a", 160, buf, sizeof(buf)));
    assert_int_equal(c.encoding, SMSSEG_GSM7);
    assert_int_equal(c.units, 160);
    assert_int_equal(c.segments, 1);
    assert_int_equal(count(repeat("a", 161, buf, sizeof(buf))).segments, 2);
    assert_int_equal(count(repeat("a", 306, buf, sizeof(buf))).segments, 2);
    assert_int_equal(count(repeat("a", 307, buf, sizeof(buf))).segments, 3);
    /* the default alphabet outside ASCII: one septet each, still GSM-7 */
    c = count(repeat("\xc3\xa9", 160, buf, sizeof(buf)));   /* é */
    assert_int_equal(c.encoding, SMSSEG_GSM7);
    assert_int_equal(c.characters, 160);
    assert_int_equal(c.segments, 1);
    c = count("\xce\x94\xc2\xa3\xc2\xa5\xc3\x9f@$_\r\n");   /* Δ £ ¥ ß */
    assert_int_equal(c.encoding, SMSSEG_GSM7);
    assert_int_equal(c.units, 9);
}

static void test_gsm_extension(void **state)
{
    static char buf[4096], tail[256];
    smsseg_count_t c;

    (void)state;
    /* the extension table: ESC + code, two septets each */
    c = count("{}[]~|^\\\xe2\x82\xac");   /* ... € */
    assert_int_equal(c.encoding, SMSSEG_GSM7);
    assert_int_equal(c.characters, 9);
    assert_int_equal(c.units, 18);
    c = count(repeat("\xe2\x82\xac", 80, buf, sizeof(buf)));
    assert_int_equal(c.units, 160);
    assert_int_equal(c.segments, 1);
    c = count(repeat("\xe2\x82\xac", 81, buf, sizeof(buf)));
    assert_int_equal(c.segments, 2);
    /* 152 'a' then '[': the pair does not fit the first part's last septet */
    repeat("a", 152, buf, sizeof(buf));
    strcat(buf, "[");
    strcat(buf, repeat("a", 8, tail, sizeof(tail)));
    c = count(buf);
    assert_int_equal(c.units, 162);
    assert_int_equal(c.segments, 2);
    repeat("a", 152, buf, sizeof(buf));
    strcat(buf, "[");
    strcat(buf, repeat("a", 152, tail, sizeof(tail)));
    c = count(buf);   /* 152 | 2 + 151 | 1: three, where 306 septets would fit two */
    assert_int_equal(c.units, 306);
    assert_int_equal(c.segments, 3);
}

static void test_ucs2(void **state)
{
    static char buf[4096];
    smsseg_count_t c;

    (void)state;
    /* one character outside GSM-7 makes the whole text UCS-2 */
    c = count("confirmed 345,116 \xe2\x96\xb2" "1,671");   /* ▲ */
    assert_int_equal(c.encoding, SMSSEG_UCS2);
    assert_int_equal(c.units, 24);
    c = count("`");   /* the backtick is not in the default alphabet */
    assert_int_equal(c.encoding, SMSSEG_UCS2);
    /* Korean: 70 in one, 67 per part beyond */
    c = count(repeat("\xed\x99\x95", 70, buf, sizeof(buf)));   /* 확 */
    assert_int_equal(c.encoding, SMSSEG_UCS2);
    assert_int_equal(c.characters, 70);
    assert_int_equal(c.units, 70);
    assert_int_equal(c.segments, 1);
    assert_int_equal(count(repeat("\xed\x99\x95", 71, buf, sizeof(buf))).segments, 2);
    assert_int_equal(count(repeat("\xed\x99\x95", 134, buf, sizeof(buf))).segments, 2);
    assert_int_equal(count(repeat("\xed\x99\x95", 135, buf, sizeof(buf))).segments, 3);
    /* outside the BMP: two code units, never split */
    c = count(repeat("\xf0\x9f\x98\x80", 35, buf, sizeof(buf)));   /* U+1F600 */
    assert_int_equal(c.units, 70);
    assert_int_equal(c.segments, 1);
    repeat("\xed\x99\x95", 66, buf, sizeof(buf));
    strcat(buf, "\xf0\x9f\x98\x80");
    strcat(buf, "\xed\x99\x95\xed\x99\x95\xed\x99\x95");
    c = count(buf);   /* 66 | 2 + 3 */
    assert_int_equal(c.units, 71);
    assert_int_equal(c.segments, 2);
    assert_string_equal(smsseg_encoding_name(SMSSEG_UCS2), "UCS-2");
    assert_string_equal(smsseg_encoding_name(SMSSEG_GSM7), "GSM-7");
}

static void test_invalid_utf8(void **state)
{
    static const char *const bad[] = {
        "\xff", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "ab\xe2\x82", "\x80",
    };
    smsseg_count_t c;
    char err[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (smsseg_count(bad[i], strlen(bad[i]), &c, err, sizeof(err)) != -1)
            fail_msg("accepted bad UTF-8 #%zu", i);
        assert_non_null(strstr(err, "UTF-8"));
    }
    /* an embedded NUL */
    assert_int_equal(smsseg_count("a\0b", 3, &c, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gsm_limits),
        cmocka_unit_test(test_gsm_extension),
        cmocka_unit_test(test_ucs2),
        cmocka_unit_test(test_invalid_utf8),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
