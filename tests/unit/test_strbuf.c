/* Unit tests for libcommon/strbuf.c: the invariants its header promises. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "strbuf.h"

static void test_empty_is_a_string(void **state)
{
    strbuf_t sb = STRBUF_INIT;

    (void)state;
    assert_string_equal(sb.buf, "");
    assert_int_equal(sb.len, 0);
    assert_int_equal(sb.alloc, 0);
    strbuf_release(&sb); /* nothing allocated: must not free the static "" */
    assert_int_equal(sb.alloc, 0);
}

static void test_adds_grow_and_stay_terminated(void **state)
{
    strbuf_t sb = STRBUF_INIT;
    int i;

    (void)state;
    for (i = 0; i < 1000; i++) {
        assert_int_equal(strbuf_addf(&sb, "%d,", i % 10), 0);
        assert_true(sb.len < sb.alloc);
        assert_int_equal(sb.buf[sb.len], '\0');
    }
    assert_int_equal(sb.len, 2000);
    assert_memory_equal(sb.buf, "0,1,2,", 6);
    assert_int_equal(strbuf_addch(&sb, 'x'), 0);
    assert_int_equal(strbuf_adds(&sb, "yz"), 0);
    assert_string_equal(sb.buf + 2000, "xyz");
    strbuf_release(&sb);
}

static void test_binary_content(void **state)
{
    strbuf_t sb = STRBUF_INIT;

    (void)state;
    assert_int_equal(strbuf_add(&sb, "a\0b", 3), 0);
    assert_int_equal(sb.len, 3);
    assert_memory_equal(sb.buf, "a\0b", 4);
    strbuf_release(&sb);
}

static void test_max_is_sticky(void **state)
{
    strbuf_t sb;

    (void)state;
    strbuf_init(&sb, 5);
    assert_int_equal(strbuf_adds(&sb, "abcd"), 0);
    assert_int_equal(strbuf_adds(&sb, "ef"), -1);
    assert_true(sb.failed);
    assert_string_equal(sb.buf, "abcd"); /* a failed add changes nothing */
    assert_int_equal(strbuf_addch(&sb, 'e'), -1); /* would fit, but the buffer failed */
    strbuf_reset(&sb);
    assert_false(sb.failed);
    assert_string_equal(sb.buf, "");
    assert_int_equal(strbuf_addf(&sb, "%s", "12345"), 0);
    assert_int_equal(strbuf_addf(&sb, "%d", 6), -1);
    assert_string_equal(sb.buf, "12345");
    strbuf_release(&sb);
    assert_int_equal(sb.max, 5);
}

static void test_detach(void **state)
{
    strbuf_t sb = STRBUF_INIT;
    size_t len = 99;
    char *s;

    (void)state;
    s = strbuf_detach(&sb, &len);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);

    assert_int_equal(strbuf_adds(&sb, "hello"), 0);
    s = strbuf_detach(&sb, &len);
    assert_string_equal(s, "hello");
    assert_int_equal(len, 5);
    assert_int_equal(sb.alloc, 0);
    assert_string_equal(sb.buf, "");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_is_a_string),
        cmocka_unit_test(test_adds_grow_and_stay_terminated),
        cmocka_unit_test(test_binary_content),
        cmocka_unit_test(test_max_is_sticky),
        cmocka_unit_test(test_detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
