/* Unit tests for tools/standin/standin.c: knob-table patching (good values, wrong types,
 * out of range, unknown keys, nested objects, custom knobs), the JSON and log of a mode,
 * the hooks, the reset, and the stoppable sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "log.h"
#include "standin.h"
#include "standin_test.h"

struct inner {
    long long a;
    long long b;
};

/* A mode with every kind of knob. */
struct tmode {
    long long fail_next;
    long long slow_ms;
    int down;
    long long level;
    struct inner inner;
    char word[8];
};

/* "word": a string of 1..7 lowercase letters. */
static int patch_word(json_t *v, void *mode, char *errstr, size_t errstr_size)
{
    struct tmode *m = mode;
    const char *s = json_string_value(v);
    size_t i, n = s != NULL ? strlen(s) : 0;

    for (i = 0; i < n && s[i] >= 'a' && s[i] <= 'z'; i++)
        ;
    if (n == 0 || n >= sizeof(m->word) || i < n) {
        util_errf(errstr, errstr_size, "field 'word' must be 1 to 7 lowercase letters");
        return -1;
    }
    memcpy(m->word, s, n + 1);
    return 0;
}

static json_t *word_json(const void *mode)
{
    return json_string(((const struct tmode *)mode)->word);
}

static void word_log(const void *mode, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s", ((const struct tmode *)mode)->word);
}

static const struct standin_knob inner_knobs[] = {
    STANDIN_INT(struct inner, a, 0, 10),
    STANDIN_INT(struct inner, b, -5, 5),
    STANDIN_END
};

static const struct standin_knob knobs[] = {
    STANDIN_FAIL_NEXT(struct tmode),
    STANDIN_SLOW_MS(struct tmode),
    STANDIN_DOWN(struct tmode),
    STANDIN_INT(struct tmode, level, 1, 3),
    STANDIN_OBJECT(struct tmode, inner, inner_knobs),
    STANDIN_CUSTOM("word", patch_word, word_json, word_log),
    STANDIN_END
};

/* What the hooks saw. */
struct app {
    int patched;
    int seen_level;    /* the mode's level when patched ran: the patch is applied first */
    int forgotten;
    int seen_down;     /* the mode's down when forget ran: the defaults are back first */
    standin_t *si;
};

static void hook_patched(void *app, json_t *patch)
{
    struct app *a = app;

    a->patched++;
    a->seen_level = (int)((struct tmode *)standin_mode_locked(a->si))->level;
    assert_true(json_is_object(patch));
}

static void hook_forget(void *app)
{
    struct app *a = app;

    a->forgotten++;
    a->seen_down = ((struct tmode *)standin_mode_locked(a->si))->down;
}

static const struct standin_def def = { knobs, sizeof(struct tmode), hook_patched,
                                        hook_forget };
static const struct standin_def bare = { knobs, sizeof(struct tmode), NULL, NULL };

static const struct tmode defaults = { .fail_next = 2, .level = 1, .inner = { 4, -1 },
                                       .word = "abc" };

static void test_patch_good(void **state)
{
    struct tmode cur = defaults, out;
    char err[256] = "";
    json_t *p;

    (void)state;
    p = test_obj("{\"fail_next\": 1000000000, \"slow_ms\": 0, \"down\": true, \"level\": 3, "
                 "\"inner\": {\"b\": 5}, \"word\": \"zz\"}");
    assert_int_equal(standin_mode_patch(&def, &cur, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_int_equal(out.fail_next, 1000000000);
    assert_int_equal(out.slow_ms, 0);
    assert_int_equal(out.down, 1);
    assert_int_equal(out.level, 3);
    assert_int_equal(out.inner.a, 4);                /* untouched */
    assert_int_equal(out.inner.b, 5);
    assert_string_equal(out.word, "zz");
    assert_int_equal(cur.level, 1);                  /* cur is not changed */

    /* in place; the edges of the ranges */
    p = test_obj("{\"slow_ms\": 60000, \"down\": false, \"inner\": {\"a\": 0, \"b\": -5}}");
    assert_int_equal(standin_mode_patch(&def, &out, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_int_equal(out.slow_ms, 60000);
    assert_int_equal(out.down, 0);
    assert_int_equal(out.inner.a, 0);
    assert_int_equal(out.inner.b, -5);

    p = test_obj("{}");
    cur = out;
    assert_int_equal(standin_mode_patch(&def, &cur, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_memory_equal(&cur, &out, sizeof(cur));
}

static void expect_error(const char *text, const char *want)
{
    test_patch_error(&def, &defaults, text, want);
}

/* The messages are the stand-ins' of before the framework: system tests may read them. */
static void test_patch_errors(void **state)
{
    (void)state;
    /* wrong types */
    expect_error("{\"fail_next\": 1.5}", "field 'fail_next' must be an integer");
    expect_error("{\"slow_ms\": \"10\"}", "field 'slow_ms' must be an integer");
    expect_error("{\"level\": null}", "field 'level' must be an integer");
    expect_error("{\"down\": 1}", "field 'down' must be true or false");
    expect_error("{\"down\": \"true\"}", "field 'down' must be true or false");
    expect_error("{\"inner\": [1]}", "field 'inner' must be an object");
    expect_error("{\"inner\": {\"a\": \"1\"}}", "field 'inner.a' must be an integer");
    expect_error("{\"word\": 7}", "field 'word' must be 1 to 7 lowercase letters");
    expect_error("[]", "request body must be a JSON object");
    /* out of range */
    expect_error("{\"fail_next\": -1}", "field 'fail_next' must be between 0 and 1000000000");
    expect_error("{\"fail_next\": 1000000001}", "field 'fail_next' must be between 0 and");
    expect_error("{\"slow_ms\": 60001}", "field 'slow_ms' must be between 0 and 60000");
    expect_error("{\"level\": 0}", "field 'level' must be between 1 and 3");
    expect_error("{\"level\": 4}", "field 'level' must be between 1 and 3");
    expect_error("{\"inner\": {\"b\": -6}}", "field 'inner.b' must be between -5 and 5");
    expect_error("{\"word\": \"toolongword\"}", "field 'word' must be 1 to 7");
    /* unknown keys, with the known ones listed in table order */
    expect_error("{\"bogus\": 1}", "unknown field 'bogus' (known: fail_next, slow_ms, down, "
                 "level, inner, word)");
    expect_error("{\"inner\": {\"c\": 1}}", "unknown field 'inner.c' (known: a, b)");
    expect_error("{\"Fail_next\": 1}", "unknown field 'Fail_next'");
    /* all or nothing: a good key before a bad one changes nothing */
    expect_error("{\"level\": 2, \"down\": 0}", "field 'down'");
    expect_error("{\"inner\": {\"a\": 1, \"b\": 9}}", "field 'inner.b'");
}

static void test_unknown_key_is_cut(void **state)
{
    struct tmode out;
    char key[200], text[256], want[80], err[512] = "";
    json_t *p;

    (void)state;
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    snprintf(text, sizeof(text), "{\"%s\": 1}", key);
    p = test_obj(text);
    assert_int_equal(standin_mode_patch(&def, &defaults, p, &out, err, sizeof(err)), -1);
    json_decref(p);
    /* 64 characters of the client's name, no more */
    snprintf(want, sizeof(want), "'%.64s'", key);
    assert_non_null(strstr(err, want));
}

static void test_mode_json(void **state)
{
    struct tmode m = defaults, back;
    json_t *j, *in;
    char err[256] = "";
    const char *key;
    const char *const order[] = { "fail_next", "slow_ms", "down", "level", "inner", "word" };
    size_t i = 0;
    json_t *v;

    (void)state;
    m.down = 1;
    j = standin_mode_json(&def, &m);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 6);
    json_object_foreach(j, key, v) {                 /* in table order */
        assert_true(i < 6);
        assert_string_equal(key, order[i]);
        i++;
    }
    assert_int_equal(json_integer_value(json_object_get(j, "fail_next")), 2);
    assert_true(json_is_true(json_object_get(j, "down")));
    in = json_object_get(j, "inner");
    assert_int_equal(json_object_size(in), 2);
    assert_int_equal(json_integer_value(json_object_get(in, "b")), -1);
    assert_string_equal(json_string_value(json_object_get(j, "word")), "abc");
    /* what GET /admin/mode shows, POST /admin/mode takes back */
    memset(&back, 0, sizeof(back));
    assert_int_equal(standin_mode_patch(&def, &back, j, &back, err, sizeof(err)), 0);
    assert_memory_equal(&back, &m, sizeof(m));
    json_decref(j);

    standin_log_mode(&def, "test_mode", &m);       /* does not crash; read by eye */
}

static void test_state_patch_reset_hooks(void **state)
{
    struct app a = { 0, 0, 0, 0, NULL };
    char err[256] = "";
    struct tmode m;
    json_t *p;

    (void)state;
    a.si = standin_new(&def, &defaults, &a, err, sizeof(err));
    assert_non_null(a.si);
    standin_mode_get(a.si, &m);
    assert_memory_equal(&m, &defaults, sizeof(m));

    test_patch(a.si, "{\"level\": 2, \"down\": true}");
    assert_int_equal(a.patched, 1);
    assert_int_equal(a.seen_level, 2);
    standin_mode_get(a.si, &m);
    assert_int_equal(m.level, 2);
    assert_int_equal(m.down, 1);

    /* a refused patch: no hook, the mode reported unchanged */
    p = test_obj("{\"level\": 3, \"nope\": 1}");
    memset(&m, 0, sizeof(m));
    assert_int_equal(standin_patch(a.si, p, &m, err, sizeof(err)), -1);
    json_decref(p);
    assert_non_null(strstr(err, "unknown field 'nope'"));
    assert_int_equal(a.patched, 1);
    assert_int_equal(m.level, 2);

    /* the lock holder may change the mode */
    standin_lock(a.si);
    ((struct tmode *)standin_mode_locked(a.si))->fail_next = 0;
    standin_unlock(a.si);
    standin_mode_get(a.si, &m);
    assert_int_equal(m.fail_next, 0);

    standin_reset(a.si);
    assert_int_equal(a.forgotten, 1);
    assert_int_equal(a.seen_down, 0);
    standin_mode_get(a.si, &m);
    assert_memory_equal(&m, &defaults, sizeof(m));
    standin_free(a.si);
    standin_free(NULL);

    /* without hooks */
    a.si = standin_new(&bare, &defaults, NULL, err, sizeof(err));
    assert_non_null(a.si);
    test_patch(a.si, "{\"level\": 3}");
    standin_reset(a.si);
    standin_mode_get(a.si, &m);
    assert_int_equal(m.level, 1);
    standin_free(a.si);
}

static void test_sleep_and_stop(void **state)
{
    char err[256] = "";
    standin_t *si = standin_new(&bare, &defaults, NULL, err, sizeof(err));

    (void)state;
    assert_non_null(si);
    test_sleep_and_stop_of(si);
    standin_free(si);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patch_good),
        cmocka_unit_test(test_patch_errors),
        cmocka_unit_test(test_unknown_key_is_cut),
        cmocka_unit_test(test_mode_json),
        cmocka_unit_test(test_state_patch_reset_hooks),
        cmocka_unit_test(test_sleep_and_stop),
    };

    log_init("test_standin");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
