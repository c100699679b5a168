/* Unit tests for libcommon/form.c: decoding application/x-www-form-urlencoded
 * bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"
#include "form.h"
#include "http.h"

/* Parses text (as a body of strlen(text) bytes), failing the test on an error. */
static void parse_ok(const char *text, form_t *f)
{
    char err[256] = "";

    if (form_parse(text, strlen(text), f, err, sizeof(err)) != 0)
        fail_msg("refused '%s': %s", text, err);
}

static void expect_pair(const form_t *f, size_t i, const char *key, const char *value)
{
    if (i >= f->n)
        fail_msg("pair %zu missing (%zu pairs)", i, f->n);
    assert_string_equal(f->pairs[i].key, key);
    assert_string_equal(f->pairs[i].value, value);
}

static void test_twilio_body(void **state)
{
    form_t f;

    (void)state;
    /* as curl --data-urlencode and Python's urlencode write it */
    parse_ok("To=%2B821012341234&From=%2B15005550006&Body=Hello+world%21+%EC%95%88%EB%85%95",
             &f);
    assert_int_equal(f.n, 3);
    expect_pair(&f, 0, "To", "+821012341234");
    expect_pair(&f, 1, "From", "+15005550006");
    expect_pair(&f, 2, "Body", "Hello world! \xec\x95\x88\xeb\x85\x95");
    assert_string_equal(form_get(&f, "Body", NULL), "Hello world! 안녕");
    assert_null(form_get(&f, "body", NULL)); /* names are case-sensitive, as Twilio's */
    form_free(&f);
    assert_null(f.pairs);
    assert_int_equal(f.n, 0);
    form_free(&f); /* twice is fine */
    form_free(NULL);
}

static void test_decoding_rules(void **state)
{
    form_t f;
    size_t count = 99;

    (void)state;
    /* '+' is a space; %2B is a '+'; %26 and %3D do not split; the first '=' splits */
    parse_ok("a=1+2%2B3&b=x%26y%3Dz&c=k=v=w&d%20e=%25", &f);
    assert_int_equal(f.n, 4);
    expect_pair(&f, 0, "a", "1 2+3");
    expect_pair(&f, 1, "b", "x&y=z");
    expect_pair(&f, 2, "c", "k=v=w");
    expect_pair(&f, 3, "d e", "%");
    form_free(&f);

    /* lower- and upper-case hex; a raw '+' in a key; raw UTF-8 passes through */
    parse_ok("k+1=%e2%82%ac%E2%82%AC&raw=\xc3\xa9", &f);
    expect_pair(&f, 0, "k 1", "\xe2\x82\xac\xe2\x82\xac");
    expect_pair(&f, 1, "raw", "\xc3\xa9");
    form_free(&f);

    /* empty pairs are skipped; a key without '=' or with "=" has the empty value */
    parse_ok("&&a&b=&=v&&", &f);
    assert_int_equal(f.n, 3);
    expect_pair(&f, 0, "a", "");
    expect_pair(&f, 1, "b", "");
    expect_pair(&f, 2, "", "v");
    form_free(&f);

    /* repeated names: the first value, and how many */
    parse_ok("To=1&X=2&To=3", &f);
    assert_string_equal(form_get(&f, "To", &count), "1");
    assert_int_equal(count, 2);
    assert_null(form_get(&f, "Nope", &count));
    assert_int_equal(count, 0);
    form_free(&f);

    /* an empty body */
    parse_ok("", &f);
    assert_int_equal(f.n, 0);
    assert_null(form_get(&f, "To", NULL));
    form_free(&f);
}

static void test_length_not_nul(void **state)
{
    const char body[] = "a=1&b=2&c=3";
    form_t f;
    char err[256];

    (void)state;
    /* only the given length counts: "a=1&b" */
    assert_int_equal(form_parse(body, 5, &f, err, sizeof(err)), 0);
    assert_int_equal(f.n, 2);
    expect_pair(&f, 0, "a", "1");
    expect_pair(&f, 1, "b", "");
    form_free(&f);
    /* an escape cut short by the length is an error, even though the bytes follow */
    assert_int_equal(form_parse("a=%41", 4, &f, err, sizeof(err)), -1);
}

static void expect_bad(const char *text, size_t len)
{
    form_t f;
    char err[256] = "";

    if (form_parse(text, len, &f, err, sizeof(err)) != -1)
        fail_msg("accepted '%s'", text);
    if (strstr(err, "malformed form body") == NULL)
        fail_msg("'%s': unexpected error '%s'", text, err);
    assert_null(f.pairs);
    assert_int_equal(f.n, 0);
    form_free(&f); /* safe after a failure */
}

static void test_bad_escapes(void **state)
{
    (void)state;
    expect_bad("a=%", 3);
    expect_bad("a=%4", 4);
    expect_bad("a=%4g", 5);
    expect_bad("a=%g4", 5);
    expect_bad("a=%%41", 6);
    expect_bad("a=1&b=%00", 9);
    expect_bad("%ZZ=1", 5);
    expect_bad("a=x\0y", 5); /* a raw NUL */
}

static void test_large_body(void **state)
{
    /* HTTP_MAX_BODY bytes of "k=v&" pairs and one long value: the worst case for the
     * buffer (every pair grows by its NUL) and for the pair count */
    char *body = malloc(HTTP_MAX_BODY + 1);
    form_t f;
    char err[256];
    size_t i;

    (void)state;
    assert_non_null(body);
    for (i = 0; i + 4 <= HTTP_MAX_BODY; i += 4)
        memcpy(body + i, "k=v&", 4);
    assert_int_equal(form_parse(body, HTTP_MAX_BODY, &f, err, sizeof(err)), 0);
    assert_int_equal(f.n, HTTP_MAX_BODY / 4);
    expect_pair(&f, f.n - 1, "k", "v");
    form_free(&f);

    for (i = 0; i < HTTP_MAX_BODY; i++)
        body[i] = 'k';
    assert_int_equal(form_parse(body, HTTP_MAX_BODY, &f, err, sizeof(err)), 0);
    assert_int_equal(f.n, 1);
    assert_int_equal(strlen(f.pairs[0].key), HTTP_MAX_BODY);
    form_free(&f);

    memcpy(body, "Body=", 5);
    for (i = 5; i + 3 <= HTTP_MAX_BODY; i += 3)
        memcpy(body + i, "%41", 3);
    assert_int_equal(form_parse(body, i, &f, err, sizeof(err)), 0);
    assert_int_equal(strlen(form_get(&f, "Body", NULL)), (i - 5) / 3);
    form_free(&f);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twilio_body),
        cmocka_unit_test(test_decoding_rules),
        cmocka_unit_test(test_length_not_nul),
        cmocka_unit_test(test_bad_escapes),
        cmocka_unit_test(test_large_body),
    };

    log_init("test_sms_gateway");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
