/* standin_test: the helpers the stand-ins' unit tests share (tools/standin). Include after
 * <cmocka.h>. Static inline so that a test includes only what it uses without warnings. */
#ifndef DOZEN_STANDIN_TEST_H
#define DOZEN_STANDIN_TEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "standin.h"
#include "util.h"

/* Parses text (JSON) into a new reference; fails the test on bad JSON. */
static inline json_t *test_obj(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);

    if (j == NULL)
        fail_msg("bad test JSON '%s': %s", text, e.text);
    return j;
}

/* Patches si's mode with text; fails the test when the patch is refused. */
static inline void test_patch(standin_t *si, const char *text)
{
    char err[256] = "";
    json_t *p = test_obj(text);

    if (standin_patch(si, p, NULL, err, sizeof(err)) != 0)
        fail_msg("patch %s: %s", text, err);
    json_decref(p);
}

/* Fails unless standin_mode_patch refuses text on cur with an error containing want, and
 * leaves its output untouched (all or nothing). */
static inline void test_patch_error(const struct standin_def *def, const void *cur,
                                    const char *text, const char *want)
{
    unsigned char *out = malloc(def->mode_size), *before = malloc(def->mode_size);
    json_t *p = test_obj(text);
    char err[256] = "";

    assert_non_null(out);
    assert_non_null(before);
    memset(out, 0x5a, def->mode_size);
    memcpy(before, out, def->mode_size);
    if (standin_mode_patch(def, cur, p, out, err, sizeof(err)) != -1)
        fail_msg("accepted: %s", text);
    json_decref(p);
    if (strstr(err, want) == NULL)
        fail_msg("%s: error '%s' does not contain '%s'", text, err, want);
    assert_memory_equal(out, before, def->mode_size);
    free(out);
    free(before);
}

/* A sleep lasts its time until standin_stop, after which every sleep returns -1 at once.
 * Stops si. */
static inline void test_sleep_and_stop_of(standin_t *si)
{
    int64_t t0 = util_mono_ms();

    assert_int_equal(standin_sleep(si, 30), 0);
    assert_true(util_mono_ms() - t0 >= 30);
    assert_int_equal(standin_sleep(si, 0), 0);
    standin_stop(si);
    t0 = util_mono_ms();
    assert_int_equal(standin_sleep(si, 60000), -1); /* returns at once once stopping */
    assert_true(util_mono_ms() - t0 < 1000);
    assert_int_equal(standin_sleep(si, 0), -1);
}

#endif
