/* Unit tests for tools/sms-gateway/message.c: E.164, masking, UTF-8, segments, Basic
 * credentials, the checks of a send, SIDs and dates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"
#include "sms_gateway.h"

static void test_e164(void **state)
{
    static const char *const good[] = {
        "+12345678", "+821012341234", "+123456789012345", "+15005550006", "+01234567",
    };
    static const char *const bad[] = {
        "", "+", "+1234567", "+1234567890123456", "821012341234", "+82 10 1234 1234",
        "+82-10-1234-1234", " +821012341234", "+821012341234 ", "++821012341234",
        "+82101234123a", "+８21012341234", "+821012341234\n",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!sg_e164_valid(good[i]))
            fail_msg("refused: %s", good[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sg_e164_valid(bad[i]))
            fail_msg("accepted: '%s'", bad[i]);
    }
    assert_false(sg_e164_valid(NULL));
}

static void expect_mask(const char *in, const char *want)
{
    char out[SG_MASK_MAX];

    sg_phone_mask(in, out, sizeof(out));
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
    char out[SG_MASK_MAX], small[6];

    (void)state;
    expect_mask("+821012341234", "+82******1234");   /* Korea: two-digit code */
    expect_mask("+15005550006", "+1******0006");     /* NANP: one digit */
    expect_mask("+79161234567", "+7******4567");
    expect_mask("+85291234567", "+852****4567");     /* Hong Kong: three digits */
    expect_mask("+4915112345678", "+49*******5678");
    /* too short to show the country code and still hide four digits */
    expect_mask("+12345678", "+****5678");
    expect_mask("+852123456", "+*****3456");
    /* not E.164: every digit but the last four hidden, anything odd a '?' */
    expect_mask("01012341234", "*******1234");
    expect_mask(" 821012341234", "?********1234");
    expect_mask("+82 10-1234\"5678", "+**?**?****?5678");
    expect_mask("1234", "1234");
    expect_mask("", "");
    expect_mask(NULL, "");
    /* long input is cut */
    expect_mask("+8210123412341234123412341234", "+***********************...");

    /* never more than four digits of a subscriber number, whatever the input */
    sg_phone_mask("+821099998888", out, sizeof(out));
    assert_int_equal(digits_in(out), 2 + 4);
    assert_null(strstr(out, "9999"));

    /* a small buffer is never overrun */
    sg_phone_mask("+821012341234", small, sizeof(small));
    assert_string_equal(small, "+82**");
    sg_phone_mask("+821012341234", out, 0); /* nothing written, no crash */
}

static void expect_chars(const char *s, long want)
{
    size_t n = 0;
    int rc = sg_utf8_chars(s, &n);

    if (want < 0) {
        if (rc != -1)
            fail_msg("accepted invalid UTF-8 (%zu chars)", n);
        return;
    }
    if (rc != 0)
        fail_msg("refused valid UTF-8 '%s'", s);
    assert_int_equal(n, (size_t)want);
}

static void test_utf8(void **state)
{
    (void)state;
    expect_chars("", 0);
    expect_chars("hello", 5);
    expect_chars("\xc3\xa9t\xc3\xa9", 3);                 /* été */
    expect_chars("\xec\x95\x88\xeb\x85\x95", 2);          /* 안녕 */
    expect_chars("\xf0\x9f\x8d\xa9", 1);                  /* U+1F369 doughnut */
    expect_chars("\xf4\x8f\xbf\xbf", 1);                  /* U+10FFFF */
    expect_chars("\x80", -1);                             /* lone continuation */
    expect_chars("\xc3", -1);                             /* cut short */
    expect_chars("\xc3(", -1);
    expect_chars("\xc0\xaf", -1);                         /* overlong '/' */
    expect_chars("\xe0\x80\xaf", -1);                     /* overlong, 3 bytes */
    expect_chars("\xf0\x80\x80\xaf", -1);                 /* overlong, 4 bytes */
    expect_chars("\xed\xa0\x80", -1);                     /* surrogate U+D800 */
    expect_chars("\xf4\x90\x80\x80", -1);                 /* above U+10FFFF */
    expect_chars("\xf5\x80\x80\x80", -1);
    expect_chars("\xff", -1);
}

static void test_segments(void **state)
{
    char *b = malloc(SG_BODY_MAX_CHARS * 3 + 1);
    size_t i;

    (void)state;
    assert_non_null(b);
    memset(b, 'a', 160);
    b[160] = '\0';
    assert_int_equal(sg_segments(b, 160), 1);
    b[160] = 'a';
    b[161] = '\0';
    assert_int_equal(sg_segments(b, 161), 2);
    memset(b, 'a', 306);
    b[306] = '\0';
    assert_int_equal(sg_segments(b, 306), 2);
    b[306] = 'a';
    b[307] = '\0';
    assert_int_equal(sg_segments(b, 307), 3);
    /* UCS-2: 70, then 67 a part */
    for (i = 0; i < 70; i++)
        memcpy(b + 3 * i, "\xec\x95\x88", 3);
    b[3 * 70] = '\0';
    assert_int_equal(sg_segments(b, 70), 1);
    memcpy(b + 3 * 70, "a", 2);
    assert_int_equal(sg_segments(b, 71), 2);
    assert_int_equal(sg_segments("\xec\x95\x88", 1), 1);
    free(b);
}

/* "Basic " + base64(text) */
static void basic(const char *b64, char *out, size_t out_size)
{
    snprintf(out, out_size, "Basic %s", b64);
}

static void test_basic_auth(void **state)
{
    char user[SG_ACCOUNT_SID_MAX + 1], pass[SG_AUTH_TOKEN_MAX + 1], h[512];
    char big[401];

    (void)state;
    basic("QUN0ZXN0OnRlc3QtdG9rZW4=", h, sizeof(h));         /* ACtest:test-token */
    assert_int_equal(sg_basic_auth_parse(h, user, sizeof(user), pass, sizeof(pass)), 0);
    assert_string_equal(user, "ACtest");
    assert_string_equal(pass, "test-token");

    /* the scheme in any case, extra spaces; a ':' in the password is kept */
    assert_int_equal(sg_basic_auth_parse("basic   QUM6YTpi  ", user, sizeof(user), pass,
                                         sizeof(pass)), 0);                  /* AC:a:b */
    assert_string_equal(user, "AC");
    assert_string_equal(pass, "a:b");
    assert_int_equal(sg_basic_auth_parse("Basic QUM6", user, sizeof(user), pass,
                                         sizeof(pass)), 0);                  /* AC: */
    assert_string_equal(pass, "");
    assert_int_equal(sg_basic_auth_parse("Basic OnA=", user, sizeof(user), pass,
                                         sizeof(pass)), 0);                  /* :p */
    assert_string_equal(user, "");
    assert_string_equal(pass, "p");

    assert_int_equal(sg_basic_auth_parse(NULL, user, sizeof(user), pass, sizeof(pass)), -1);
    assert_int_equal(sg_basic_auth_parse("", user, sizeof(user), pass, sizeof(pass)), -1);
    assert_int_equal(sg_basic_auth_parse("Bearer QUM6YQ==", user, sizeof(user), pass,
                                         sizeof(pass)), -1);
    assert_int_equal(sg_basic_auth_parse("Basic", user, sizeof(user), pass, sizeof(pass)),
                     -1);
    assert_int_equal(sg_basic_auth_parse("Basic ", user, sizeof(user), pass, sizeof(pass)),
                     -1);
    /* no ':' ("ACtest") */
    assert_int_equal(sg_basic_auth_parse("Basic QUN0ZXN0", user, sizeof(user), pass,
                                         sizeof(pass)), -1);
    /* not base64: bad characters, missing padding, padding inside */
    assert_int_equal(sg_basic_auth_parse("Basic QUM6YQ", user, sizeof(user), pass,
                                         sizeof(pass)), -1);
    assert_int_equal(sg_basic_auth_parse("Basic QUM6Y*==", user, sizeof(user), pass,
                                         sizeof(pass)), -1);
    assert_int_equal(sg_basic_auth_parse("Basic QU=6YQ==", user, sizeof(user), pass,
                                         sizeof(pass)), -1);
    assert_int_equal(sg_basic_auth_parse("Basic QUM6 YQ==", user, sizeof(user), pass,
                                         sizeof(pass)), -1);
    /* a NUL or a control character inside ("AC:a\0b", "AC:a\nb") */
    assert_int_equal(sg_basic_auth_parse("Basic QUM6YQBi", user, sizeof(user), pass,
                                         sizeof(pass)), -1);
    assert_int_equal(sg_basic_auth_parse("Basic QUM6YQpi", user, sizeof(user), pass,
                                         sizeof(pass)), -1);
    /* does not fit: a user longer than the buffer ("ABCDEFGH:x" into 8 bytes) */
    assert_int_equal(sg_basic_auth_parse("Basic QUJDREVGR0g6eA==", user, 8, pass,
                                         sizeof(pass)), -1);
    /* far too long to be ours */
    memset(big, 'Q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    basic(big, h, sizeof(h));
    assert_int_equal(sg_basic_auth_parse(h, user, sizeof(user), pass, sizeof(pass)), -1);
}

/* Runs sg_send_check on a form body. Returns its result; code and err are set on -1. */
static int check(const char *body, struct sg_send *s, int *code, char *err, size_t err_size,
                 sg_form_t *f)
{
    char perr[256];

    if (sg_form_parse(body, strlen(body), f, perr, sizeof(perr)) != 0)
        fail_msg("test body '%s': %s", body, perr);
    return sg_send_check(f, s, code, err, err_size);
}

static void expect_refused(const char *body, int want_code, const char *want)
{
    struct sg_send s;
    sg_form_t f;
    int code = 0;
    char err[256] = "";

    if (check(body, &s, &code, err, sizeof(err), &f) != -1)
        fail_msg("accepted: %s", body);
    sg_form_free(&f);
    if (code != want_code)
        fail_msg("%s: code %d, want %d", body, code, want_code);
    if (strstr(err, want) == NULL)
        fail_msg("%s: error '%s' does not contain '%s'", body, err, want);
}

static void test_send_check(void **state)
{
    struct sg_send s;
    sg_form_t f;
    int code = 0;
    char err[256] = "", *body;
    size_t i, len;

    (void)state;
    assert_int_equal(check("To=%2B821012341234&From=%2B15005550006&Body=Hi+%F0%9F%8D%A9"
                           "&StatusCallback=http%3A%2F%2Fx", &s, &code, err, sizeof(err), &f),
                     0);
    assert_string_equal(s.to, "+821012341234");
    assert_string_equal(s.from, "+15005550006");
    assert_string_equal(s.body, "Hi \xf0\x9f\x8d\xa9");
    assert_int_equal(s.body_chars, 4);
    sg_form_free(&f);
    assert_int_equal(check("To=%2B821012341234&From=Dozen+Shop&Body=x", &s, &code, err,
                           sizeof(err), &f), 0);
    assert_string_equal(s.from, "Dozen Shop");
    sg_form_free(&f);

    expect_refused("From=Dozen&Body=x", SG_CODE_BAD_PARAM, "'To' phone number is required");
    expect_refused("To=&From=Dozen&Body=x", SG_CODE_BAD_PARAM, "'To' phone number is required");
    expect_refused("To=+821012341234&From=Dozen&Body=x", SG_CODE_BAD_PARAM,
                   "not a valid phone number");              /* the '+' became a space */
    expect_refused("To=%2B8210&From=Dozen&Body=x", SG_CODE_BAD_PARAM, "E.164");
    expect_refused("To=01012341234&From=Dozen&Body=x", SG_CODE_BAD_PARAM, "E.164");
    expect_refused("To=%2B821012341234&To=%2B821012341235&From=Dozen&Body=x",
                   SG_CODE_BAD_PARAM, "'To' parameter is given more than once");
    expect_refused("To=%2B821012341234&Body=x", SG_CODE_BAD_PARAM,
                   "'From' phone number is required");
    expect_refused("To=%2B821012341234&From=Dozen+Doughnuts&Body=x", SG_CODE_BAD_FROM,
                   "alphanumeric sender ID");                /* 15 characters */
    expect_refused("To=%2B821012341234&From=12345&Body=x", SG_CODE_BAD_FROM, "'From'");
    expect_refused("To=%2B821012341234&From=Doz%22en&Body=x", SG_CODE_BAD_FROM, "'From'");
    expect_refused("To=%2B821012341234&From=a&From=b&Body=x", SG_CODE_BAD_FROM,
                   "more than once");
    expect_refused("To=%2B821012341234&From=Dozen", SG_CODE_BAD_PARAM,
                   "message body is required");
    expect_refused("To=%2B821012341234&From=Dozen&Body=", SG_CODE_BAD_PARAM,
                   "message body is required");
    expect_refused("To=%2B821012341234&From=Dozen&Body=%C3%28", SG_CODE_BAD_PARAM,
                   "not valid UTF-8");

    /* 1600 characters pass, also when they take more bytes; 1601 do not */
    body = malloc(64 + 9 * SG_BODY_MAX_CHARS);
    assert_non_null(body);
    len = (size_t)snprintf(body, 64, "To=%%2B821012341234&From=Dozen&Body=");
    for (i = 0; i < SG_BODY_MAX_CHARS; i++, len += 9)
        memcpy(body + len, "%EC%95%88", 9);
    memcpy(body + len, "\0\0", 2);
    assert_int_equal(check(body, &s, &code, err, sizeof(err), &f), 0);
    assert_int_equal(s.body_chars, SG_BODY_MAX_CHARS);
    sg_form_free(&f);
    body[len] = 'a';   /* one more character */
    expect_refused(body, SG_CODE_TOO_LONG, "exceeds the 1600 character limit");
    free(body);
}

static void test_sid_and_date(void **state)
{
    char a[SG_SID_LEN + 1], b[SG_SID_LEN + 1], d[40];
    size_t i;

    (void)state;
    assert_int_equal(sg_sid_new(a), 0);
    assert_int_equal(sg_sid_new(b), 0);
    assert_int_equal(strlen(a), 34);
    assert_memory_equal(a, "SM", 2);
    for (i = 2; i < SG_SID_LEN; i++) {
        if (strchr("0123456789abcdef", a[i]) == NULL)
            fail_msg("not lower-case hex: %s", a);
    }
    assert_string_not_equal(a, b);

    assert_int_equal(sg_rfc2822((int64_t)1709307000 * 1000 + 999, d, sizeof(d)), 0);
    assert_string_equal(d, "Fri, 01 Mar 2024 15:30:00 +0000");
    assert_int_equal(sg_rfc2822(0, d, 10), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_e164),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_basic_auth),
        cmocka_unit_test(test_send_check),
        cmocka_unit_test(test_sid_and_date),
    };

    log_init("test_sms_gateway");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
