/* Unit tests for libcommon/cfg.c: defaults, required variables, integers, ports, durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cfg.h"

#define VAR "DOZEN_TEST_CFG_VAR"

static int unset_var(void **state)
{
    (void)state;
    unsetenv(VAR);
    return 0;
}

static void set_var(const char *value)
{
    assert_int_equal(setenv(VAR, value, 1), 0);
}

static void test_str(void **state)
{
    char err[128] = "";
    const char *out = NULL;

    (void)state;
    assert_int_equal(cfg_str(VAR, "fallback", &out, err, sizeof(err)), 0);
    assert_string_equal(out, "fallback");

    set_var(""); /* empty counts as unset */
    assert_int_equal(cfg_str(VAR, "fallback", &out, err, sizeof(err)), 0);
    assert_string_equal(out, "fallback");

    set_var("postgres://x");
    assert_int_equal(cfg_str(VAR, "fallback", &out, err, sizeof(err)), 0);
    assert_string_equal(out, "postgres://x");
    assert_int_equal(cfg_str(VAR, NULL, &out, err, sizeof(err)), 0);
    assert_string_equal(out, "postgres://x");
}

static void test_str_required(void **state)
{
    char err[128] = "";
    const char *out = "untouched";

    (void)state;
    assert_int_equal(cfg_str(VAR, NULL, &out, err, sizeof(err)), -1);
    assert_string_equal(err, VAR " is required");
    assert_string_equal(out, "untouched");

    set_var("");
    err[0] = '\0';
    assert_int_equal(cfg_str(VAR, NULL, &out, err, sizeof(err)), -1);
    assert_string_equal(err, VAR " is required");

    /* errstr is optional */
    assert_int_equal(cfg_str(VAR, NULL, &out, NULL, 0), -1);
}

static void test_int_default_and_values(void **state)
{
    char err[128] = "";
    long long out = 0;

    (void)state;
    assert_int_equal(cfg_int(VAR, 42, 1, 100, &out, err, sizeof(err)), 0);
    assert_int_equal(out, 42);

    set_var("");
    assert_int_equal(cfg_int(VAR, 43, 1, 100, &out, err, sizeof(err)), 0);
    assert_int_equal(out, 43);

    set_var("7");
    assert_int_equal(cfg_int(VAR, 42, 1, 100, &out, err, sizeof(err)), 0);
    assert_int_equal(out, 7);

    set_var("-5");
    assert_int_equal(cfg_int(VAR, 0, -10, 10, &out, err, sizeof(err)), 0);
    assert_int_equal(out, -5);

    set_var("0100"); /* base 10, not octal */
    assert_int_equal(cfg_int(VAR, 0, 0, 1000, &out, err, sizeof(err)), 0);
    assert_int_equal(out, 100);

    /* the bounds themselves are allowed */
    set_var("1");
    assert_int_equal(cfg_int(VAR, 5, 1, 100, &out, err, sizeof(err)), 0);
    assert_int_equal(out, 1);
    set_var("100");
    assert_int_equal(cfg_int(VAR, 5, 1, 100, &out, err, sizeof(err)), 0);
    assert_int_equal(out, 100);
}

static void expect_not_integer(const char *value)
{
    char err[128] = "", want[128];
    long long out = 12345;

    set_var(value);
    assert_int_equal(cfg_int(VAR, 1, 0, 100, &out, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), VAR ": '%s' is not an integer", value);
    assert_string_equal(err, want);
    assert_int_equal(out, 12345); /* not written on failure */
}

static void test_int_junk(void **state)
{
    (void)state;
    expect_not_integer("abc");
    expect_not_integer("12abc");
    expect_not_integer("12 ");
    expect_not_integer(" 12");
    expect_not_integer("-");
    expect_not_integer("+");
    expect_not_integer("1.5");
    expect_not_integer("0x10");
    expect_not_integer("1e3");
    expect_not_integer(" ");
}

static void test_int_range(void **state)
{
    char err[128] = "";
    long long out = 0;

    (void)state;
    set_var("101");
    assert_int_equal(cfg_int(VAR, 5, 1, 100, &out, err, sizeof(err)), -1);
    assert_string_equal(err, VAR ": 101 is out of range 1..100");

    set_var("0");
    assert_int_equal(cfg_int(VAR, 5, 1, 100, &out, err, sizeof(err)), -1);
    assert_string_equal(err, VAR ": 0 is out of range 1..100");

    /* beyond long long: still named and quoted */
    set_var("99999999999999999999");
    assert_int_equal(cfg_int(VAR, 5, 1, 100, &out, err, sizeof(err)), -1);
    assert_string_equal(err, VAR ": '99999999999999999999' is out of range 1..100");
    set_var("-99999999999999999999");
    assert_int_equal(cfg_int(VAR, 5, 1, 100, &out, err, sizeof(err)), -1);
    assert_string_equal(err, VAR ": '-99999999999999999999' is out of range 1..100");
}

static void test_port(void **state)
{
    char err[128] = "";
    int port = 0;

    (void)state;
    assert_int_equal(cfg_port(VAR, 8080, &port, err, sizeof(err)), 0);
    assert_int_equal(port, 8080);

    set_var("65535");
    assert_int_equal(cfg_port(VAR, 8080, &port, err, sizeof(err)), 0);
    assert_int_equal(port, 65535);

    set_var("70000");
    assert_int_equal(cfg_port(VAR, 8080, &port, err, sizeof(err)), -1);
    assert_string_equal(err, VAR ": 70000 is out of range 1..65535");

    set_var("0");
    assert_int_equal(cfg_port(VAR, 8080, &port, err, sizeof(err)), -1);
    assert_string_equal(err, VAR ": 0 is out of range 1..65535");

    set_var("abc");
    assert_int_equal(cfg_port(VAR, 8080, &port, err, sizeof(err)), -1);
    assert_string_equal(err, VAR ": 'abc' is not an integer");
}

static void test_parse_duration(void **state)
{
    char err[128] = "";
    long long ms = -1;

    (void)state;
    assert_int_equal(cfg_parse_duration_ms("500ms", &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(cfg_parse_duration_ms("5s", &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(cfg_parse_duration_ms("10m", &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 600000);
    assert_int_equal(cfg_parse_duration_ms("2h", &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 7200000);
    assert_int_equal(cfg_parse_duration_ms("250", &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(cfg_parse_duration_ms("0s", &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 0);
}

static void expect_bad_duration(const char *text, const char *want)
{
    char err[128] = "";
    long long ms = 777;

    assert_int_equal(cfg_parse_duration_ms(text, &ms, err, sizeof(err)), -1);
    assert_string_equal(err, want);
    assert_int_equal(ms, 777);
}

static void test_parse_duration_bad(void **state)
{
    (void)state;
    expect_bad_duration("", "empty duration");
    expect_bad_duration("5x", "'5x' has an unknown unit 'x' (use ms, s, m or h)");
    expect_bad_duration("5 s", "'5 s' has an unknown unit ' s' (use ms, s, m or h)");
    expect_bad_duration("5sec", "'5sec' has an unknown unit 'sec' (use ms, s, m or h)");
    expect_bad_duration("5S", "'5S' has an unknown unit 'S' (use ms, s, m or h)");
    expect_bad_duration("-5s", "'-5s' is negative");
    expect_bad_duration("s", "'s' is not a duration (expected e.g. 500ms, 5s, 10m, 2h)");
    expect_bad_duration(" 5s", "' 5s' is not a duration (expected e.g. 500ms, 5s, 10m, 2h)");
    expect_bad_duration("+5s", "'+5s' is not a duration (expected e.g. 500ms, 5s, 10m, 2h)");
    /* overflow in the number itself, and in the unit multiplication */
    expect_bad_duration("99999999999999999999ms", "'99999999999999999999ms' is too large");
    expect_bad_duration("9223372036854775807h", "'9223372036854775807h' is too large");
    expect_bad_duration("2562047788016h", "'2562047788016h' is too large");
}

static void test_parse_duration_limits(void **state)
{
    char err[128] = "";
    long long ms = 0;

    (void)state;
    /* LLONG_MAX / 3600000 hours is the largest that fits */
    assert_int_equal(cfg_parse_duration_ms("2562047788015h", &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 2562047788015LL * 3600000LL);
    assert_int_equal(cfg_parse_duration_ms("9223372036854775807ms", &ms, err, sizeof(err)), 0);
    assert_true(ms == 9223372036854775807LL);
}

static void test_duration_var(void **state)
{
    char err[160] = "";
    long long ms = 0;

    (void)state;
    assert_int_equal(cfg_duration_ms(VAR, "30s", 0, 3600000, &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 30000);

    set_var("");
    assert_int_equal(cfg_duration_ms(VAR, "1m", 0, 3600000, &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 60000);

    set_var("250ms");
    assert_int_equal(cfg_duration_ms(VAR, "30s", 0, 3600000, &ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 250);

    set_var("5x");
    assert_int_equal(cfg_duration_ms(VAR, "30s", 0, 3600000, &ms, err, sizeof(err)), -1);
    assert_string_equal(err, VAR ": '5x' has an unknown unit 'x' (use ms, s, m or h)");

    set_var("2h");
    assert_int_equal(cfg_duration_ms(VAR, "30s", 0, 3600000, &ms, err, sizeof(err)), -1);
    assert_string_equal(err, VAR ": '2h' is out of range 0..3600000 ms");

    set_var("50ms");
    assert_int_equal(cfg_duration_ms(VAR, "30s", 100, 3600000, &ms, err, sizeof(err)), -1);
    assert_string_equal(err, VAR ": '50ms' is out of range 100..3600000 ms");

    unsetenv(VAR);
    assert_int_equal(cfg_duration_ms(VAR, NULL, 0, 3600000, &ms, err, sizeof(err)), -1);
    assert_string_equal(err, VAR " is required");
}

/* Writes text to a new temporary file with mode and returns its path (static buffer). */
static const char *secret_file(const char *text, size_t len, mode_t mode)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/dozen-cfg-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

static void test_file_variables(void **state)
{
    const char *v = NULL, *path;
    long long n = 0;
    char err[256];

    (void)state;
    /* NAME_FILE when NAME is unset: the file's one line, without its newline. */
    path = secret_file("s3cret-token-value\n", 19, 0444);
    setenv("DOZEN_T_SECRET_FILE", path, 1);
    assert_int_equal(cfg_str("DOZEN_T_SECRET", NULL, &v, err, sizeof(err)), 0);
    assert_string_equal(v, "s3cret-token-value");
    /* Read once and kept: the file may go away. */
    unlink(path);
    assert_int_equal(cfg_str("DOZEN_T_SECRET", NULL, &v, err, sizeof(err)), 0);
    assert_string_equal(v, "s3cret-token-value");
    /* Both set: refused, naming both. */
    setenv("DOZEN_T_SECRET", "x", 1);
    assert_int_equal(cfg_str("DOZEN_T_SECRET", NULL, &v, err, sizeof(err)), -1);
    assert_string_equal(err, "DOZEN_T_SECRET and DOZEN_T_SECRET_FILE are both set: use one");
    unsetenv("DOZEN_T_SECRET");
    unsetenv("DOZEN_T_SECRET_FILE");

    /* A file others may write is refused, with its mode. */
    path = secret_file("abc", 3, 0666);
    setenv("DOZEN_T_W_FILE", path, 1);
    assert_int_equal(cfg_str("DOZEN_T_W", NULL, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "DOZEN_T_W_FILE: '"));
    assert_non_null(strstr(err, "is writable by group or others (mode 0666)"));
    unlink(path);
    unsetenv("DOZEN_T_W_FILE");

    /* Two lines, an empty file, a missing file, a directory. */
    path = secret_file("a\nb\n", 4, 0600);
    setenv("DOZEN_T_L_FILE", path, 1);
    assert_int_equal(cfg_str("DOZEN_T_L", NULL, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "must hold one line"));
    unlink(path);
    path = secret_file("\n", 1, 0600);
    setenv("DOZEN_T_L_FILE", path, 1);
    assert_int_equal(cfg_str("DOZEN_T_L", NULL, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is empty"));
    unlink(path);
    setenv("DOZEN_T_L_FILE", "/nonexistent/secret", 1);
    assert_int_equal(cfg_str("DOZEN_T_L", NULL, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot open '/nonexistent/secret'"));
    setenv("DOZEN_T_L_FILE", "/tmp", 1);
    assert_int_equal(cfg_str("DOZEN_T_L", NULL, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is not a regular file"));
    unsetenv("DOZEN_T_L_FILE");

    /* The typed readers too. */
    path = secret_file("42\r\n", 4, 0400);
    setenv("DOZEN_T_N_FILE", path, 1);
    assert_int_equal(cfg_int("DOZEN_T_N", 1, 0, 100, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 42);
    unlink(path);
    unsetenv("DOZEN_T_N_FILE");
}

static void test_error_truncated(void **state)
{
    char err[16];
    long long out = 0;

    (void)state;
    set_var("this is certainly not a number");
    assert_int_equal(cfg_int(VAR, 1, 0, 10, &out, err, sizeof(err)), -1);
    assert_int_equal(strlen(err), sizeof(err) - 1); /* cut, but terminated */
    assert_int_equal(strncmp(err, VAR, sizeof(err) - 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_str, unset_var),
        cmocka_unit_test_teardown(test_str_required, unset_var),
        cmocka_unit_test_teardown(test_int_default_and_values, unset_var),
        cmocka_unit_test_teardown(test_int_junk, unset_var),
        cmocka_unit_test_teardown(test_int_range, unset_var),
        cmocka_unit_test_teardown(test_port, unset_var),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_duration_bad),
        cmocka_unit_test(test_parse_duration_limits),
        cmocka_unit_test_teardown(test_duration_var, unset_var),
        cmocka_unit_test(test_file_variables),
        cmocka_unit_test_teardown(test_error_truncated, unset_var),
    };

    unsetenv(VAR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
