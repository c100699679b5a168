/* Unit tests for libcommon/trace.c (W3C traceparent) and the log lines it marks, in both
 * LOG_FORMAT=text and LOG_FORMAT=json. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include "log.h"
#include "trace.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parse(const char *s)
{
    return trace_parse(s, strlen(s), NULL, NULL);
}

static void test_parse(void **state)
{
    char id[TRACE_ID_SIZE];
    unsigned flags = 0;

    (void)state;
    assert_int_equal(trace_parse(TP, strlen(TP), id, &flags), 0);
    assert_string_equal(id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_int_equal(flags, 1);
    /* The spec's invalid cases. */
    assert_int_equal(parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), -1);
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"), -1);
    assert_int_equal(parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), -1);
    assert_int_equal(parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"), -1);
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"), -1);
    assert_int_equal(parse("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"), -1);
    assert_int_equal(parse("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), -1);
    assert_int_equal(parse(""), -1);
    assert_int_equal(trace_parse(NULL, 0, NULL, NULL), -1);
    /* A later version may carry more after a '-'. */
    assert_int_equal(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more"), 0);
    assert_int_equal(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01more"), -1);
}

static void test_begin_continues_or_starts(void **state)
{
    char id[TRACE_ID_SIZE];

    (void)state;
    assert_null(trace_current());
    trace_begin(TP, strlen(TP));
    assert_non_null(trace_current());
    assert_int_equal(parse(trace_current()), 0);
    assert_string_equal(trace_current_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_memory_equal(trace_current(), "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
    assert_memory_not_equal(trace_current() + 36, "00f067aa0ba902b7", 16); /* our own span */
    trace_end();
    assert_null(trace_current());
    assert_null(trace_current_id());

    trace_begin("garbage", 7);
    assert_int_equal(trace_parse(trace_current(), strlen(trace_current()), id, NULL), 0);
    assert_string_not_equal(id, "4bf92f3577b34da6a3ce929d0e0e4736");
    trace_end();
    trace_begin(NULL, 0);
    assert_int_equal(parse(trace_current()), 0);
    trace_end();
}

/* Runs fn with stderr going to a pipe and returns what it wrote (static buffer). */
static const char *capture(void (*fn)(void))
{
    static char buf[8192];
    int fds[2], saved;
    ssize_t n;

    assert_int_equal(pipe(fds), 0);
    saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void log_some(void)
{
    trace_begin(TP, strlen(TP));
    log_info("order_created order_id=%s sku=%s qty=3 free words", LOG_Q("a\"b c"),
             LOG_Q("\x01x"));
    trace_end();
    log_warn("after_trace n=1");
}

static void test_text_lines_carry_trace_id(void **state)
{
    const char *out;

    (void)state;
    setenv("LOG_FORMAT", "text", 1);
    assert_int_equal(log_init("t"), 0);
    out = capture(log_some);
    assert_non_null(strstr(out, "order_created order_id=\"a\\\"b c\" sku=\"\\x01x\" qty=3 free "
                                "words trace_id=4bf92f3577b34da6a3ce929d0e0e4736\n"));
    assert_non_null(strstr(out, "after_trace n=1\n"));
}

static void test_json_lines(void **state)
{
    const char *out, *nl;
    json_t *a, *b;
    json_error_t e;

    (void)state;
    setenv("LOG_FORMAT", "json", 1);
    assert_int_equal(log_init("t"), 0);
    out = capture(log_some);
    nl = strchr(out, '\n');
    assert_non_null(nl);
    a = json_loadb(out, (size_t)(nl - out), 0, &e);
    assert_non_null(a);
    b = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &e);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(a, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(a, "svc")), "t");
    assert_string_equal(json_string_value(json_object_get(a, "event")), "order_created");
    assert_string_equal(json_string_value(json_object_get(a, "order_id")), "a\"b c");
    assert_string_equal(json_string_value(json_object_get(a, "sku")), "\\x01x");
    assert_string_equal(json_string_value(json_object_get(a, "qty")), "3");
    assert_string_equal(json_string_value(json_object_get(a, "text")), "free words");
    assert_string_equal(json_string_value(json_object_get(a, "trace_id")),
                        "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_non_null(json_object_get(a, "ts"));
    assert_null(json_object_get(b, "trace_id"));
    assert_string_equal(json_string_value(json_object_get(b, "event")), "after_trace");
    json_decref(a);
    json_decref(b);

    setenv("LOG_FORMAT", "yaml", 1);
    assert_int_equal(log_init("t"), -1);
    unsetenv("LOG_FORMAT");
    assert_int_equal(log_init("t"), 0);
}

static void log_long(void)
{
    char big[3000];

    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_info("big a=1 v=%s", big);
    log_info("raw v=\xff\x01");
}

static void test_json_long_and_raw_lines_stay_valid(void **state)
{
    const char *out, *nl;
    json_t *a, *b;
    json_error_t e;

    (void)state;
    setenv("LOG_FORMAT", "json", 1);
    assert_int_equal(log_init("t"), 0);
    out = capture(log_long);
    nl = strchr(out, '\n');
    assert_non_null(nl);
    a = json_loadb(out, (size_t)(nl - out), 0, &e);
    assert_non_null(a);
    assert_string_equal(json_string_value(json_object_get(a, "a")), "1");
    b = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &e);
    assert_non_null(b);
    /* Bytes that are not UTF-8 come out as the code points of the same numbers. */
    assert_string_equal(json_string_value(json_object_get(b, "v")), "\xc3\xbf\x01");
    json_decref(a);
    json_decref(b);
    unsetenv("LOG_FORMAT");
    log_init("t");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_begin_continues_or_starts),
        cmocka_unit_test(test_text_lines_carry_trace_id),
        cmocka_unit_test(test_json_lines),
        cmocka_unit_test(test_json_long_and_raw_lines_stay_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
