/* Unit tests for libcommon/log.c's value quoting (log_q / log_qn). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"

static void test_plain_and_null(void **state)
{
    (void)state;
    assert_string_equal(LOG_Q("glazed"), "\"glazed\"");
    assert_string_equal(LOG_Q(""), "\"\"");
    assert_string_equal(LOG_Q(NULL), "-");
}

static void test_forged_fields_are_escaped(void **state)
{
    (void)state;
    /* A client value that tries to end the field and add one of its own. */
    assert_string_equal(LOG_Q("x\" level=error admin=\"1"),
                        "\"x\\\" level=error admin=\\\"1\"");
    assert_string_equal(LOG_Q("a\\b"), "\"a\\\\b\"");
    assert_string_equal(LOG_Q("l1\nts=forged"), "\"l1\\x0ats=forged\"");
    assert_string_equal(LOG_QN("a\0b", 3), "\"a\\x00b\"");
}

static void test_utf8_kept_invalid_escaped(void **state)
{
    (void)state;
    assert_string_equal(LOG_Q("\xea\xb8\x80\xec\x9e\x90"), "\"\xea\xb8\x80\xec\x9e\x90\"");
    assert_string_equal(LOG_Q("\xff"), "\"\\xff\"");
    assert_string_equal(LOG_Q("\xc0\xaf"), "\"\\xc0\\xaf\"");       /* overlong '/' */
    assert_string_equal(LOG_Q("\xed\xa0\x80"), "\"\\xed\\xa0\\x80\""); /* surrogate */
    assert_string_equal(LOG_Q("\xea\xb8"), "\"\\xea\\xb8\"");       /* cut sequence */
}

static void test_long_values_are_cut_whole(void **state)
{
    char in[2000];
    log_value_t v;
    size_t n;

    (void)state;
    memset(in, 'a', sizeof(in) - 1);
    in[sizeof(in) - 1] = '\0';
    v = log_q(in);
    n = strlen(v.s);
    assert_true(n < LOG_VALUE_MAX);
    assert_memory_equal(v.s + n - 4, "...\"", 4);

    /* Korean text (3 bytes a character) is never cut inside a character. */
    {
        char k[1500] = "";
        size_t i;

        for (i = 0; i < 400; i++)
            strcat(k, "\xea\xb8\x80");
        v = log_q(k);
        n = strlen(v.s);
        assert_memory_equal(v.s + n - 4, "...\"", 4);
        assert_int_equal((n - 5) % 3, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_null),
        cmocka_unit_test(test_forged_fields_are_escaped),
        cmocka_unit_test(test_utf8_kept_invalid_escaped),
        cmocka_unit_test(test_long_values_are_cut_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
