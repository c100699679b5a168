/* test_notifier_signup: the sign-up's pure parts (services/notifier/signup.c): codes and
 * their hashes, the verdict on a typed code, STOP words, Twilio's webhook signature, the
 * SKUs of a sign-up without repeats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "signup.h"

static void test_codes(void **state)
{
    char code[SIGNUP_CODE_DIGITS + 1], other[SIGNUP_CODE_DIGITS + 1];
    int differ = 0;

    (void)state;
    for (int i = 0; i < 50; i++) {
        assert_int_equal(signup_code_new(code, sizeof(code)), 0);
        assert_true(signup_code_valid(code));
        assert_int_equal(signup_code_new(other, sizeof(other)), 0);
        differ += strcmp(code, other) != 0;
    }
    assert_true(differ > 40);           /* random, not a constant */
    assert_int_equal(signup_code_new(code, 6), -1);
    assert_false(signup_code_valid("12345"));
    assert_false(signup_code_valid("1234567"));
    assert_false(signup_code_valid("12a456"));
    assert_false(signup_code_valid(""));
    assert_false(signup_code_valid(" 123456"));
}

static void test_hash(void **state)
{
    char h[SIGNUP_HASH_HEX], salt[2 * SIGNUP_SALT_BYTES + 1];

    (void)state;
    /* sha256("abc:123456"), by Python's hashlib */
    signup_code_hash("abc", "123456", h);
    assert_string_equal(h, "71f79ddc5dba7d98fd09ade46f1d21c8c1ea9965b2acc9b4ccaf41fba8dd808e");
    assert_int_equal(signup_salt_new(salt, sizeof(salt)), 0);
    assert_int_equal(strlen(salt), 2 * SIGNUP_SALT_BYTES);
}

static void test_decide(void **state)
{
    char h[SIGNUP_HASH_HEX];

    (void)state;
    signup_code_hash("s", "424242", h);
    assert_int_equal(signup_decide(1, "s", h, 0, 2000, 1000, 5, "424242"), SIGNUP_OK);
    assert_int_equal(signup_decide(1, "s", h, 4, 2000, 1000, 5, "424242"), SIGNUP_OK);
    assert_int_equal(signup_decide(1, "s", h, 0, 2000, 1000, 5, "424243"), SIGNUP_WRONG);
    /* the salt is part of the hash */
    assert_int_equal(signup_decide(1, "t", h, 0, 2000, 1000, 5, "424242"), SIGNUP_WRONG);
    /* expired: even the right code */
    assert_int_equal(signup_decide(1, "s", h, 0, 1000, 1000, 5, "424242"), SIGNUP_NO_CODE);
    assert_int_equal(signup_decide(0, "", "", 0, 0, 1000, 5, "424242"), SIGNUP_NO_CODE);
    /* out of tries: even the right code */
    assert_int_equal(signup_decide(1, "s", h, 5, 2000, 1000, 5, "424242"), SIGNUP_LOCKED);
}

static void test_limited(void **state)
{
    struct signup_config c = { .per_number = 5, .per_client = 20 };

    (void)state;
    assert_int_equal(signup_limited(0, 0, &c), SIGNUP_ALLOWED);
    assert_int_equal(signup_limited(4, 19, &c), SIGNUP_ALLOWED);
    assert_int_equal(signup_limited(5, 0, &c), SIGNUP_LIMIT_NUMBER);
    assert_int_equal(signup_limited(0, 20, &c), SIGNUP_LIMIT_CLIENT);
    /* both reached: the number's answer */
    assert_int_equal(signup_limited(9, 99, &c), SIGNUP_LIMIT_NUMBER);
}

static void test_stop_words(void **state)
{
    (void)state;
    assert_true(signup_is_stop("STOP"));
    assert_true(signup_is_stop("stop"));
    assert_true(signup_is_stop("  Stop.\n"));
    assert_true(signup_is_stop("unsubscribe"));
    assert_true(signup_is_stop("STOP ALL"));
    assert_true(signup_is_stop("quit!"));
    assert_false(signup_is_stop("don't stop"));
    assert_false(signup_is_stop("STOPP"));
    assert_false(signup_is_stop(""));
    assert_false(signup_is_stop("hello"));
}

static void test_opted_out_error(void **state)
{
    (void)state;
    assert_true(signup_is_opted_out_error(
        "HTTP 400: Attempt to send to unsubscribed recipient (21610)"));
    assert_false(signup_is_opted_out_error("HTTP 400: Invalid 'To' Phone Number (21211)"));
    assert_false(signup_is_opted_out_error("HTTP 500: Internal Server Error (21610)"));
    assert_false(signup_is_opted_out_error("HTTP 400"));
    assert_false(signup_is_opted_out_error(""));
}

static void test_twilio_signature(void **state)
{
    /* Twilio's own example (its "Webhooks security" page): token 12345, the fields in
     * another order than sorted */
    static const char body[] = "To=%2B18005551212&CallSid=CA1234567890ABCDE&From=%2B12349013030"
                               "&Digits=1234&Caller=%2B12349013030";
    const char *url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    form_t f = { 0 }, empty = { 0 };
    char sig[64], err[128];

    (void)state;
    assert_int_equal(form_parse(body, strlen(body), &f, err, sizeof(err)), 0);
    assert_int_equal(signup_twilio_signature("12345", url, &f, sig, sizeof(sig)), 0);
    assert_string_equal(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    assert_int_equal(signup_twilio_signature("12346", url, &f, sig, sizeof(sig)), 0);
    assert_string_not_equal(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    assert_int_equal(signup_twilio_signature("k", "u", &empty, sig, 10), -1);
    form_free(&f);
    assert_true(signup_equal("abc", "abc"));
    assert_false(signup_equal("abc", "abd"));
    assert_false(signup_equal("abc", "abcd"));
    assert_false(signup_equal("", "a"));
}

/* The sort is stable (pairs of one name keep their body order, as Twilio's helpers sort)
 * and does not care how the body was ordered, over thousands of pairs too (it was an
 * insertion sort: 16 KiB of pairs in reverse order cost 0.4 s of CPU a request). */
static void test_twilio_signature_order(void **state)
{
    static char sorted[40000], reversed[40000];
    form_t a = { 0 }, b = { 0 };
    char s1[64], s2[64], err[128];
    size_t ls = 0, lr = 0;

    (void)state;
    assert_int_equal(form_parse("b=1&a=2&a=1", 11, &a, err, sizeof(err)), 0);
    assert_int_equal(form_parse("a=2&a=1&b=1", 11, &b, err, sizeof(err)), 0);
    assert_int_equal(signup_twilio_signature("k", "u", &a, s1, sizeof(s1)), 0);
    assert_int_equal(signup_twilio_signature("k", "u", &b, s2, sizeof(s2)), 0);
    assert_string_equal(s1, s2);
    form_free(&a);
    form_free(&b);
    assert_int_equal(form_parse("a=1&a=2&b=1", 11, &a, err, sizeof(err)), 0);
    assert_int_equal(signup_twilio_signature("k", "u", &a, s1, sizeof(s1)), 0);
    assert_string_not_equal(s1, s2);
    form_free(&a);

    for (int i = 0; i < 4000; i++) {
        ls += (size_t)snprintf(sorted + ls, sizeof(sorted) - ls, "%s%04d=%d", i ? "&" : "",
                               i, i % 7);
        lr += (size_t)snprintf(reversed + lr, sizeof(reversed) - lr, "%s%04d=%d",
                               i ? "&" : "", 3999 - i, (3999 - i) % 7);
    }
    assert_int_equal(form_parse(sorted, ls, &a, err, sizeof(err)), 0);
    assert_int_equal(form_parse(reversed, lr, &b, err, sizeof(err)), 0);
    assert_int_equal(signup_twilio_signature("k", "u", &a, s1, sizeof(s1)), 0);
    assert_int_equal(signup_twilio_signature("k", "u", &b, s2, sizeof(s2)), 0);
    assert_string_equal(s1, s2);
    form_free(&a);
    form_free(&b);
}

static void test_skus_unique(void **state)
{
    json_t *in = json_pack("[s,s,s,s,s]", "glazed", "chocolate", "glazed", "Glazed",
                           "chocolate");
    json_t *out, *empty = json_array(), *none;
    char *text;

    (void)state;
    out = signup_skus_unique(in);
    assert_non_null(out);
    text = json_dumps(out, JSON_COMPACT);
    /* the first of each, in the order given; SKUs are case-sensitive */
    assert_string_equal(text, "[\"glazed\",\"chocolate\",\"Glazed\"]");
    assert_int_equal(json_array_size(in), 5);   /* the input is left as it was */
    free(text);
    none = signup_skus_unique(empty);
    assert_non_null(none);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    json_decref(empty);
    json_decref(out);
    json_decref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_limited),
        cmocka_unit_test(test_stop_words),
        cmocka_unit_test(test_opted_out_error),
        cmocka_unit_test(test_twilio_signature),
        cmocka_unit_test(test_twilio_signature_order),
        cmocka_unit_test(test_skus_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
