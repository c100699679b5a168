/* Unit tests for tools/sms-gateway/message.c: UTF-8, segments, Basic credentials, the
 * checks of a send, SIDs and dates, the Message resource, and the checks and page URIs of
 * a list. (E.164 and masking are libcommon/phone.c's: tests/unit/test_phone.c.) */
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
                 form_t *f)
{
    char perr[256];

    if (form_parse(body, strlen(body), f, perr, sizeof(perr)) != 0)
        fail_msg("test body '%s': %s", body, perr);
    return sg_send_check(f, s, code, err, err_size);
}

static void expect_refused(const char *body, int want_code, const char *want)
{
    struct sg_send s;
    form_t f;
    int code = 0;
    char err[256] = "";

    if (check(body, &s, &code, err, sizeof(err), &f) != -1)
        fail_msg("accepted: %s", body);
    form_free(&f);
    if (code != want_code)
        fail_msg("%s: code %d, want %d", body, code, want_code);
    if (strstr(err, want) == NULL)
        fail_msg("%s: error '%s' does not contain '%s'", body, err, want);
}

static void test_send_check(void **state)
{
    struct sg_send s;
    form_t f;
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
    form_free(&f);
    assert_int_equal(check("To=%2B821012341234&From=Dozen+Shop&Body=x", &s, &code, err,
                           sizeof(err), &f), 0);
    assert_string_equal(s.from, "Dozen Shop");
    form_free(&f);

    expect_refused("From=Dozen&Body=x", SG_CODE_BAD_PARAM, "'To' phone number is required");
    expect_refused("To=&From=Dozen&Body=x", SG_CODE_BAD_PARAM, "'To' phone number is required");
    expect_refused("To=+821012341234&From=Dozen&Body=x", SG_CODE_BAD_PARAM,
                   "not a valid phone number");              /* the '+' became a space */
    expect_refused("To=%2B8210&From=Dozen&Body=x", SG_CODE_BAD_PARAM, "E.164");
    expect_refused("To=01012341234&From=Dozen&Body=x", SG_CODE_BAD_PARAM, "E.164");
    expect_refused("To=%2B01012341234&From=Dozen&Body=x", SG_CODE_BAD_PARAM,
                   "the first not 0");
    expect_refused("To=%2B821012341234&To=%2B821012341235&From=Dozen&Body=x",
                   SG_CODE_BAD_PARAM, "'To' parameter is given more than once");
    expect_refused("To=%2B821012341234&Body=x", SG_CODE_BAD_PARAM,
                   "'From' phone number is required");
    expect_refused("To=%2B821012341234&From=Dozen+Doughnuts&Body=x", SG_CODE_BAD_FROM,
                   "alphanumeric sender ID");                /* 15 characters */
    expect_refused("To=%2B821012341234&From=12345&Body=x", SG_CODE_BAD_FROM, "'From'");
    expect_refused("To=%2B821012341234&From=%2B05005550006&Body=x", SG_CODE_BAD_FROM,
                   "'From'");
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
    form_free(&f);
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

static const char *str_of(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_string(v))
        fail_msg("'%s' is not a string", key);
    return json_string_value(v);
}

static void test_message_json(void **state)
{
    int64_t at = (int64_t)1709307000 * 1000;
    json_t *m;

    (void)state;
    /* as the 201 of a send shows it */
    m = sg_message_json("ACtest", "SM0123456789abcdef0123456789abcdef", "+821012341234",
                        "+15005550006", "dozen 2024-03-01: \xec\x95\x88", at, "queued", -1);
    assert_non_null(m);
    assert_string_equal(str_of(m, "sid"), "SM0123456789abcdef0123456789abcdef");
    assert_string_equal(str_of(m, "account_sid"), "ACtest");
    assert_string_equal(str_of(m, "to"), "+821012341234");
    assert_string_equal(str_of(m, "from"), "+15005550006");
    assert_string_equal(str_of(m, "body"), "dozen 2024-03-01: \xec\x95\x88");
    assert_string_equal(str_of(m, "status"), "queued");
    assert_true(json_is_null(json_object_get(m, "date_sent")));
    assert_string_equal(str_of(m, "date_created"), "Fri, 01 Mar 2024 15:30:00 +0000");
    assert_string_equal(str_of(m, "num_segments"), "1");
    assert_string_equal(str_of(m, "uri"), "/2010-04-01/Accounts/ACtest/Messages/"
                        "SM0123456789abcdef0123456789abcdef.json");
    assert_string_equal(str_of(json_object_get(m, "subresource_uris"), "media"),
                        "/2010-04-01/Accounts/ACtest/Messages/"
                        "SM0123456789abcdef0123456789abcdef/Media.json");
    assert_true(json_is_null(json_object_get(m, "error_code")));
    assert_int_equal(json_object_size(m), 20);
    json_decref(m);

    /* as the list shows it later: sent, with the date it left the queue */
    m = sg_message_json("ACtest", "SM0123456789abcdef0123456789abcdef", "+821012341234",
                        "Dozen", "x", at, "sent", at + 2000);
    assert_non_null(m);
    assert_string_equal(str_of(m, "status"), "sent");
    assert_string_equal(str_of(m, "date_created"), "Fri, 01 Mar 2024 15:30:00 +0000");
    assert_string_equal(str_of(m, "date_sent"), "Fri, 01 Mar 2024 15:30:02 +0000");
    assert_string_equal(str_of(m, "from"), "Dozen");
    assert_int_equal(json_object_size(m), 20);
    json_decref(m);
}

static void test_date_days(void **state)
{
    static const char *const bad[] = {
        "", "2024-3-01", "2024-03-1", "2024/03/01", "24-03-01", "2024-03-01 ", " 2024-03-01",
        "2024-00-01", "2024-13-01", "2024-01-00", "2024-01-32", "2023-02-29", "1900-02-29",
        "2024-04-31", "1969-12-31", "2024-0a-01", "+024-03-01", "20240-03-01",
    };
    int64_t d = -1;
    size_t i;

    (void)state;
    assert_int_equal(sg_date_days("1970-01-01", &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(sg_date_days("1970-01-02", &d), 0);
    assert_int_equal(d, 1);
    assert_int_equal(sg_date_days("2024-03-01", &d), 0);
    assert_int_equal(d, 1709251200 / 86400);
    assert_int_equal(sg_date_days("2024-02-29", &d), 0);     /* leap year */
    assert_int_equal(d, 1709251200 / 86400 - 1);
    assert_int_equal(sg_date_days("2000-02-29", &d), 0);     /* divisible by 400 */
    assert_int_equal(d, 951782400 / 86400);
    assert_int_equal(sg_date_days("2026-12-31", &d), 0);
    assert_int_equal(d + 1, 1798761600 / 86400);             /* 2027-01-01 */
    assert_int_equal(sg_date_days("9999-12-31", &d), 0);
    assert_int_equal(d, 2932896);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sg_date_days(bad[i], &d) == 0)
            fail_msg("accepted '%s'", bad[i]);
    }
    assert_int_equal(sg_date_days(NULL, &d), -1);

    assert_int_equal(sg_day_of_ms(0), 0);
    assert_int_equal(sg_day_of_ms(86399999), 0);
    assert_int_equal(sg_day_of_ms(86400000), 1);
    assert_int_equal(sg_day_of_ms((int64_t)1709251200 * 1000 - 1), 1709251200 / 86400 - 1);
    assert_int_equal(sg_day_of_ms(-1), -1);                  /* floor, not toward 0 */
}

/* Runs sg_list_check; fails the test unless it returns want. */
static void list_check(const struct sg_list_args *a, struct sg_list_query *q, int want,
                       const char *want_err)
{
    char err[256] = "";
    int rc = sg_list_check(a, q, err, sizeof(err));

    if (rc != want)
        fail_msg("sg_list_check gave %d (%s), want %d", rc, err, want);
    if (want_err != NULL && strstr(err, want_err) == NULL)
        fail_msg("error '%s' does not contain '%s'", err, want_err);
}

static void test_list_check(void **state)
{
    struct sg_list_args a;
    struct sg_list_query q;
    int64_t d22, d20, d25;

    (void)state;
    assert_int_equal(sg_date_days("2026-11-22", &d22), 0);
    assert_int_equal(sg_date_days("2026-11-20", &d20), 0);
    assert_int_equal(sg_date_days("2026-11-25", &d25), 0);

    /* nothing given: everything, the default page */
    memset(&a, 0, sizeof(a));
    list_check(&a, &q, 0, NULL);
    assert_string_equal(q.to, "");
    assert_true(q.from_day == INT64_MIN);
    assert_true(q.until_day == INT64_MAX);
    assert_int_equal(q.page_size, SG_PAGE_SIZE_DEFAULT);
    assert_int_equal(q.page, 0);
    assert_string_equal(q.after_sid, "");

    /* what the notifier asks; the '+' decoded as a space is read as '+' */
    a.to = " 821012341234";
    a.date_sent_ge = "2026-11-22";
    a.page_size = "1000";
    list_check(&a, &q, 0, NULL);
    assert_string_equal(q.to, "+821012341234");
    assert_string_equal(q.date_sent_ge, "2026-11-22");
    assert_true(q.from_day == d22);
    assert_true(q.until_day == INT64_MAX);
    assert_int_equal(q.page_size, 1000);

    /* the filters narrow each other */
    memset(&a, 0, sizeof(a));
    a.to = "+821012341234";
    a.date_sent_ge = "2026-11-20";
    a.date_sent_le = "2026-11-25";
    list_check(&a, &q, 0, NULL);
    assert_true(q.from_day == d20 && q.until_day == d25);
    a.date_sent = "2026-11-22";
    list_check(&a, &q, 0, NULL);
    assert_true(q.from_day == d22 && q.until_day == d22);
    assert_string_equal(q.date_sent, "2026-11-22");
    a.date_sent = "2026-11-26";                /* outside: an empty range, not an error */
    list_check(&a, &q, 0, NULL);
    assert_true(q.from_day > q.until_day);

    /* the page */
    memset(&a, 0, sizeof(a));
    a.page_size = "1";
    a.page = "1000000";
    a.page_token = "PASM0123456789abcdef0123456789abcdef";
    list_check(&a, &q, 0, NULL);
    assert_int_equal(q.page_size, 1);
    assert_int_equal(q.page, SG_PAGE_MAX);
    assert_string_equal(q.after_sid, "SM0123456789abcdef0123456789abcdef");

    /* refused */
    memset(&a, 0, sizeof(a));
    a.to = "821012341234";
    list_check(&a, &q, -1, "'To' query parameter must be an E.164 number");
    a.to = "+01012341234";
    list_check(&a, &q, -1, "'To'");
    a.to = "";
    list_check(&a, &q, -1, "'To'");
    a.to = "+8210123412341234123412341234";
    list_check(&a, &q, -1, "'To'");
    a.to = NULL;
    a.date_sent_ge = "2026-11-31";
    list_check(&a, &q, -1, "'DateSent>=' query parameter must be a date YYYY-MM-DD");
    a.date_sent_ge = NULL;
    a.date_sent_le = "22-11-2026";
    list_check(&a, &q, -1, "'DateSent<='");
    a.date_sent_le = NULL;
    a.date_sent = "";
    list_check(&a, &q, -1, "'DateSent'");
    a.date_sent = NULL;
    a.page_size = "0";
    list_check(&a, &q, -1, "'PageSize' query parameter must be an integer from 1 to 1000");
    a.page_size = "1001";
    list_check(&a, &q, -1, "'PageSize'");
    a.page_size = "-1";
    list_check(&a, &q, -1, "'PageSize'");
    a.page_size = "+5";
    list_check(&a, &q, -1, "'PageSize'");
    a.page_size = "5 ";
    list_check(&a, &q, -1, "'PageSize'");
    a.page_size = "99999999999999999999";
    list_check(&a, &q, -1, "'PageSize'");
    a.page_size = NULL;
    a.page = "1000001";
    list_check(&a, &q, -1, "'Page' query parameter");
    a.page = "x";
    list_check(&a, &q, -1, "'Page'");
    a.page = NULL;
    a.page_token = "SM0123456789abcdef0123456789abcdef";
    list_check(&a, &q, -1, "'PageToken'");
    a.page_token = "PASM0123456789ABCDEF0123456789abcdef";
    list_check(&a, &q, -1, "'PageToken'");
    a.page_token = "PASM0123456789abcdef0123456789abcde";
    list_check(&a, &q, -1, "'PageToken'");
    a.page_token = "PA";
    list_check(&a, &q, -1, "'PageToken'");
}

static void test_list_uri(void **state)
{
    struct sg_list_args a;
    struct sg_list_query q;
    char uri[SG_URI_MAX], small[40];

    (void)state;
    memset(&a, 0, sizeof(a));
    list_check(&a, &q, 0, NULL);
    assert_int_equal(sg_list_uri("ACtest", &q, 0, NULL, uri, sizeof(uri)), 0);
    assert_string_equal(uri, "/2010-04-01/Accounts/ACtest/Messages.json?PageSize=50&Page=0");

    a.to = "+821012341234";
    a.date_sent = "2026-11-22";
    a.date_sent_ge = "2026-11-20";
    a.date_sent_le = "2026-11-25";
    a.page_size = "2";
    list_check(&a, &q, 0, NULL);
    assert_int_equal(sg_list_uri("ACtest", &q, 3, "SM0123456789abcdef0123456789abcdef", uri,
                                 sizeof(uri)), 0);
    assert_string_equal(uri, "/2010-04-01/Accounts/ACtest/Messages.json?To=%2B821012341234"
                        "&DateSent=2026-11-22&DateSent%3E=2026-11-20&DateSent%3C=2026-11-25"
                        "&PageSize=2&Page=3&PageToken=PASM0123456789abcdef0123456789abcdef");
    assert_int_equal(sg_list_uri("ACtest", &q, 0, "", uri, sizeof(uri)), 0);
    assert_null(strstr(uri, "PageToken"));
    /* does not fit: -1, and never more than the buffer */
    memset(small, 'X', sizeof(small));
    assert_int_equal(sg_list_uri("ACtest", &q, 0, NULL, small, sizeof(small) - 1), -1);
    assert_int_equal(small[sizeof(small) - 1], 'X');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_basic_auth),
        cmocka_unit_test(test_send_check),
        cmocka_unit_test(test_sid_and_date),
        cmocka_unit_test(test_message_json),
        cmocka_unit_test(test_date_days),
        cmocka_unit_test(test_list_check),
        cmocka_unit_test(test_list_uri),
    };

    log_init("test_sms_gateway");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
