/* test_retry: the backoff policy and the dozen-error limit (libcommon/retry.c). The headers
 * themselves are tested through the consumer loop in test_kafka. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "retry.h"

static void unset_all(void)
{
    unsetenv("RETRY_BACKOFF");
    unsetenv("RETRY_INITIAL");
    unsetenv("RETRY_FACTOR");
    unsetenv("RETRY_MAX");
    unsetenv("RETRY_MAX_ATTEMPTS");
}

static void test_defaults_are_1s_x2_60s_8(void **state)
{
    retry_policy_t p;
    char err[256];

    (void)state;
    unset_all();
    assert_int_equal(retry_policy_from_env(&p, err, sizeof(err)), 0);
    assert_int_equal(p.exponential, 1);
    assert_int_equal(p.max_attempts, 8);
    assert_int_equal(retry_policy_delay(&p, 1), 1000);
    assert_int_equal(retry_policy_delay(&p, 2), 2000);
    assert_int_equal(retry_policy_delay(&p, 4), 8000);
    assert_int_equal(retry_policy_delay(&p, 6), 32000);
    assert_int_equal(retry_policy_delay(&p, 7), 60000);
    assert_int_equal(retry_policy_delay(&p, 1000), 60000);
}

static void test_fixed_and_factor(void **state)
{
    retry_policy_t p;
    char err[256];

    (void)state;
    setenv("RETRY_BACKOFF", "fixed", 1);
    setenv("RETRY_INITIAL", "10m", 1);
    setenv("RETRY_MAX", "1h", 1);
    assert_int_equal(retry_policy_from_env(&p, err, sizeof(err)), 0);
    assert_int_equal(retry_policy_delay(&p, 1), 600000);
    assert_int_equal(retry_policy_delay(&p, 9), 600000);
    setenv("RETRY_BACKOFF", "exponential", 1);
    setenv("RETRY_INITIAL", "100ms", 1);
    setenv("RETRY_FACTOR", "1.5", 1);
    assert_int_equal(retry_policy_from_env(&p, err, sizeof(err)), 0);
    assert_int_equal(retry_policy_delay(&p, 3), 225);
    unset_all();
}

static void expect_env_error(const char *name, const char *value)
{
    retry_policy_t p;
    char err[256] = "";

    unset_all();
    setenv(name, value, 1);
    assert_int_equal(retry_policy_from_env(&p, err, sizeof(err)), -1);
    if (strstr(err, name) == NULL)
        fail_msg("%s=%s: error '%s' does not name the variable", name, value, err);
    unset_all();
}

static void test_bad_settings_name_the_variable(void **state)
{
    (void)state;
    expect_env_error("RETRY_BACKOFF", "linear");
    expect_env_error("RETRY_FACTOR", "0.5");
    expect_env_error("RETRY_FACTOR", "two");
    expect_env_error("RETRY_INITIAL", "soon");
    expect_env_error("RETRY_MAX_ATTEMPTS", "-1");
    {
        retry_policy_t p;
        char err[256] = "";

        setenv("RETRY_INITIAL", "2m", 1);
        setenv("RETRY_MAX", "1m", 1);
        assert_int_equal(retry_policy_from_env(&p, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "RETRY_MAX"));
        unset_all();
    }
}

static void test_error_is_cut_at_512_bytes_on_a_character(void **state)
{
    retry_info_t info;
    char text[700];

    (void)state;
    memset(text, 'a', sizeof(text));
    text[sizeof(text) - 1] = '\0';
    retry_set_error(&info, text);
    assert_int_equal(strlen(info.error), RETRY_ERROR_MAX);
    /* A two-byte character straddling the limit is dropped whole. */
    text[RETRY_ERROR_MAX - 1] = (char)0xc3;
    text[RETRY_ERROR_MAX] = (char)0xa9;
    retry_set_error(&info, text);
    assert_int_equal(strlen(info.error), RETRY_ERROR_MAX - 1);
    retry_set_error(&info, NULL);
    assert_string_equal(info.error, "");
}

static void test_redelivery_topic(void **state)
{
    char buf[16];

    (void)state;
    assert_int_equal(retry_redelivery_topic("factory", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "retry.factory");
    assert_int_equal(retry_redelivery_topic("a-very-long-group", buf, sizeof(buf)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_1s_x2_60s_8),
        cmocka_unit_test(test_fixed_and_factor),
        cmocka_unit_test(test_bad_settings_name_the_variable),
        cmocka_unit_test(test_error_is_cut_at_512_bytes_on_a_character),
        cmocka_unit_test(test_redelivery_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
