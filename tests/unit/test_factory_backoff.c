/* test_factory_backoff: the backoff between calls to the legacy factory (caller.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "factory.h"

static void test_doubles_from_the_initial_delay(void **state)
{
    (void)state;
    assert_int_equal(caller_backoff_ms(1000, 60000, 1), 1000);
    assert_int_equal(caller_backoff_ms(1000, 60000, 2), 2000);
    assert_int_equal(caller_backoff_ms(1000, 60000, 3), 4000);
    assert_int_equal(caller_backoff_ms(1000, 60000, 6), 32000);
}

static void test_is_capped(void **state)
{
    (void)state;
    assert_int_equal(caller_backoff_ms(1000, 60000, 7), 60000);
    assert_int_equal(caller_backoff_ms(1000, 60000, 1000000), 60000);
    assert_int_equal(caller_backoff_ms(5000, 3000, 1), 3000);
}

static void test_never_below_initial_for_odd_input(void **state)
{
    (void)state;
    assert_int_equal(caller_backoff_ms(250, 10000, 0), 250);
    assert_int_equal(caller_backoff_ms(250, 10000, -3), 250);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubles_from_the_initial_delay),
        cmocka_unit_test(test_is_capped),
        cmocka_unit_test(test_never_below_initial_for_odd_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
