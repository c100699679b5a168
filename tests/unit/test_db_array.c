/* Unit tests for the array parameters of libcommon/db.c: the literal text PostgreSQL's
 * array parser reads back as the same elements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "db.h"

static void test_empty_array(void **state)
{
    strbuf_t sb = STRBUF_INIT;

    (void)state;
    assert_int_equal(db_array_finish(&sb), 0);
    assert_string_equal(sb.buf, "{}");
    strbuf_release(&sb);
}

static void test_int64_elements(void **state)
{
    strbuf_t sb = STRBUF_INIT;

    (void)state;
    assert_int_equal(db_array_add_int64(&sb, 1), 0);
    assert_int_equal(db_array_add_int64(&sb, -42), 0);
    assert_int_equal(db_array_add_int64(&sb, INT64_MAX), 0);
    assert_int_equal(db_array_add_int64(&sb, INT64_MIN), 0);
    assert_int_equal(db_array_finish(&sb), 0);
    assert_string_equal(sb.buf, "{1,-42,9223372036854775807,-9223372036854775808}");
    strbuf_release(&sb);
}

static void test_one_element(void **state)
{
    strbuf_t sb = STRBUF_INIT;

    (void)state;
    assert_int_equal(db_array_add_int64(&sb, 7), 0);
    assert_int_equal(db_array_finish(&sb), 0);
    assert_string_equal(sb.buf, "{7}");
    strbuf_release(&sb);
}

static void test_null_elements(void **state)
{
    strbuf_t sb = STRBUF_INIT;

    (void)state;
    assert_int_equal(db_array_add_null(&sb), 0);
    assert_int_equal(db_array_add_int64(&sb, 5), 0);
    assert_int_equal(db_array_add_text(&sb, NULL), 0);
    assert_int_equal(db_array_finish(&sb), 0);
    assert_string_equal(sb.buf, "{NULL,5,NULL}");
    strbuf_release(&sb);
}

/* The word NULL and the empty string are values, not SQL NULL: they stay quoted. */
static void test_text_that_looks_special(void **state)
{
    strbuf_t sb = STRBUF_INIT;

    (void)state;
    assert_int_equal(db_array_add_text(&sb, "NULL"), 0);
    assert_int_equal(db_array_add_text(&sb, ""), 0);
    assert_int_equal(db_array_add_text(&sb, " padded "), 0);
    assert_int_equal(db_array_finish(&sb), 0);
    assert_string_equal(sb.buf, "{\"NULL\",\"\",\" padded \"}");
    strbuf_release(&sb);
}

static void test_text_quoting(void **state)
{
    strbuf_t sb = STRBUF_INIT;

    (void)state;
    assert_int_equal(db_array_add_text(&sb, "a,b"), 0);
    assert_int_equal(db_array_add_text(&sb, "{x}"), 0);
    assert_int_equal(db_array_add_text(&sb, "say \"hi\""), 0);
    assert_int_equal(db_array_add_text(&sb, "back\\slash"), 0);
    assert_int_equal(db_array_add_text(&sb, "\\\""), 0);
    assert_int_equal(db_array_add_text(&sb, "\""), 0);
    assert_int_equal(db_array_add_text(&sb, "tab\tnewline\n"), 0);
    assert_int_equal(db_array_finish(&sb), 0);
    assert_string_equal(sb.buf,
                        "{\"a,b\",\"{x}\",\"say \\\"hi\\\"\",\"back\\\\slash\","
                        "\"\\\\\\\"\",\"\\\"\",\"tab\tnewline\n\"}");
    strbuf_release(&sb);
}

static void test_uuid_as_text(void **state)
{
    strbuf_t sb = STRBUF_INIT;

    (void)state;
    assert_int_equal(db_array_add_text(&sb, "0b7d3c1e-8f7a-4c3b-9a51-2f4e6d8c0a19"), 0);
    assert_int_equal(db_array_add_text(&sb, "5f0c1e2d-3b4a-4e6f-8a9b-0c1d2e3f4a5b"), 0);
    assert_int_equal(db_array_finish(&sb), 0);
    assert_string_equal(sb.buf, "{\"0b7d3c1e-8f7a-4c3b-9a51-2f4e6d8c0a19\","
                                "\"5f0c1e2d-3b4a-4e6f-8a9b-0c1d2e3f4a5b\"}");
    strbuf_release(&sb);
}

/* A buffer that hits its limit fails the whole array, checked once at the end. */
static void test_failure_is_reported_by_finish(void **state)
{
    strbuf_t sb;
    int i;

    (void)state;
    strbuf_init(&sb, 16);
    for (i = 0; i < 10; i++)
        (void)db_array_add_int64(&sb, 1000 + i);
    assert_true(sb.failed);
    assert_int_equal(db_array_finish(&sb), -1);
    assert_true(sb.len <= 16);
    strbuf_release(&sb);

    strbuf_init(&sb, 1); /* not even the closing brace fits after "{" */
    assert_int_equal(db_array_finish(&sb), -1);
    strbuf_release(&sb);
}

/* After strbuf_reset the same buffer builds the next array. */
static void test_reuse_after_reset(void **state)
{
    strbuf_t sb = STRBUF_INIT;

    (void)state;
    assert_int_equal(db_array_add_text(&sb, "one"), 0);
    assert_int_equal(db_array_finish(&sb), 0);
    strbuf_reset(&sb);
    assert_int_equal(db_array_add_int64(&sb, 2), 0);
    assert_int_equal(db_array_finish(&sb), 0);
    assert_string_equal(sb.buf, "{2}");
    strbuf_release(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_array),
        cmocka_unit_test(test_int64_elements),
        cmocka_unit_test(test_one_element),
        cmocka_unit_test(test_null_elements),
        cmocka_unit_test(test_text_that_looks_special),
        cmocka_unit_test(test_text_quoting),
        cmocka_unit_test(test_uuid_as_text),
        cmocka_unit_test(test_failure_is_reported_by_finish),
        cmocka_unit_test(test_reuse_after_reset),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
