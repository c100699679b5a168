/* Unit tests for tools/sms-gateway/state.c: the admin mode, fail_next and the seeded
 * fail_rate, the kept messages and their bounds, Twilio's list, and the counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "log.h"
#include "standin_test.h"
#include "sms_gateway.h"
#include "util.h"

static const struct sg_mode defaults = { .seed = 7 };

static sg_state_t *new_state(const struct sg_mode *m)
{
    char err[256] = "";
    sg_state_t *st = state_new(m, err, sizeof(err));

    if (st == NULL)
        fail_msg("state_new: %s", err);
    return st;
}

/* One valid send to to with body; returns state_send's result. The SIDs count up (the
 * random ones of sg_sid_new are tested with message.c). */
static int send_to(sg_state_t *st, const char *to, const char *body, int64_t at_ms)
{
    static unsigned long long n;
    struct sg_send s = { to, "+15005550006", body, strlen(body), NULL, NULL };
    char sid[SG_SID_LEN + 1];

    snprintf(sid, sizeof(sid), "SM%032llx", ++n);
    return state_send(st, sid, &s, at_ms);
}

static json_int_t stat_of(sg_state_t *st, const char *key)
{
    json_t *s = state_stats(st);
    json_int_t v;

    assert_non_null(s);
    assert_int_equal(json_object_size(s), SG_NOUTCOMES + 2);   /* and the callbacks */
    v = json_integer_value(json_object_get(s, key));
    json_decref(s);
    return v;
}

/* ---------------------------------------------------------------------------------- */
/* The mode */

static void test_mode_patch(void **state)
{
    struct sg_mode cur = defaults, out;
    json_t *p, *j;
    char err[256] = "";

    (void)state;
    p = test_obj("{\"fail_next\": 3, \"down\": true}");
    assert_int_equal(standin_mode_patch(&sg_standin, &cur, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_int_equal(out.fail_next, 3);
    assert_int_equal(out.down, 1);
    assert_int_equal(out.seed, 7);          /* untouched */
    assert_int_equal(out.fail_rate, 0);

    p = test_obj("{\"fail_rate\": 100, \"seed\": 9007199254740991, \"slow_ms\": 60000, "
                 "\"down\": false}");
    assert_int_equal(standin_mode_patch(&sg_standin, &out, p, &out, err, sizeof(err)), 0);
    json_decref(p);
    assert_int_equal(out.fail_rate, 100);
    assert_int_equal(out.seed, 9007199254740991LL);
    assert_int_equal(out.slow_ms, 60000);
    assert_int_equal(out.down, 0);
    assert_int_equal(out.fail_next, 3);

    j = standin_mode_json(&sg_standin, &out);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 12);
    assert_string_equal(json_string_value(json_object_get(j, "opted_out")), "");
    assert_int_equal(json_integer_value(json_object_get(j, "fail_next")), 3);
    assert_true(json_is_false(json_object_get(j, "callback_twice")));
    assert_int_equal(json_integer_value(json_object_get(j, "fail_rate")), 100);
    assert_true(json_is_false(json_object_get(j, "down")));
    /* what GET /admin/mode shows, POST /admin/mode takes back */
    memset(&cur, 0, sizeof(cur));
    assert_int_equal(standin_mode_patch(&sg_standin, &cur, j, &cur, err, sizeof(err)), 0);
    json_decref(j);
    assert_int_equal(cur.seed, out.seed);
    assert_int_equal(cur.slow_ms, out.slow_ms);
    assert_int_equal(cur.fail_next, 3);

    /* opted_out: a number that replied STOP (Twilio's 21610), or "" */
    p = test_obj("{\"opted_out\": \"+821055550099\"}");
    assert_int_equal(standin_mode_patch(&sg_standin, &cur, p, &cur, err, sizeof(err)), 0);
    json_decref(p);
    assert_string_equal(cur.opted_out, "+821055550099");
    p = test_obj("{\"opted_out\": \"\"}");
    assert_int_equal(standin_mode_patch(&sg_standin, &cur, p, &cur, err, sizeof(err)), 0);
    json_decref(p);
    assert_string_equal(cur.opted_out, "");
}

static void expect_patch_error(const char *text, const char *want)
{
    test_patch_error(&sg_standin, &defaults, text, want);
}

static void test_mode_patch_errors(void **state)
{
    (void)state;
    expect_patch_error("{\"fail_next\": 1, \"fail_first\": 1}", "unknown field 'fail_first'");
    expect_patch_error("{\"fail_next\": -1}", "field 'fail_next' must be between 0 and");
    expect_patch_error("{\"fail_next\": 1000000001}", "field 'fail_next' must be between");
    expect_patch_error("{\"opted_out\": \"010-1234\"}", "opted_out must be");
    expect_patch_error("{\"opted_out\": 5}", "opted_out must be");
    expect_patch_error("{\"fail_rate\": 101}", "field 'fail_rate' must be between 0 and 100");
    expect_patch_error("{\"fail_rate\": -1}", "field 'fail_rate' must be between 0 and 100");
    expect_patch_error("{\"fail_rate\": 0.5}", "field 'fail_rate' must be an integer");
    expect_patch_error("{\"seed\": -1}", "field 'seed' must be between 0 and");
    expect_patch_error("{\"seed\": 9007199254740992}", "field 'seed' must be between");
    expect_patch_error("{\"slow_ms\": 60001}", "field 'slow_ms' must be between 0 and 60000");
    expect_patch_error("{\"down\": 1}", "field 'down' must be true or false");
    expect_patch_error("{\"down\": \"true\"}", "field 'down' must be true or false");
    expect_patch_error("{\"fail_next\": 2, \"down\": null}", "field 'down'");
    expect_patch_error("[]", "must be a JSON object");
}

/* ---------------------------------------------------------------------------------- */
/* Failures */

static void test_fail_next(void **state)
{
    struct sg_mode m = defaults;
    sg_state_t *st;

    (void)state;
    m.fail_next = 2;
    st = new_state(&m);
    assert_int_equal(send_to(st, "+821012341234", "a", 1), SG_FAILED);
    standin_mode_get(state_standin(st), &m);
    assert_int_equal(m.fail_next, 1);
    assert_int_equal(send_to(st, "+821012341234", "b", 2), SG_FAILED);
    assert_int_equal(send_to(st, "+821012341234", "c", 3), SG_ACCEPTED);
    assert_int_equal(send_to(st, "+821012341234", "d", 4), SG_ACCEPTED);
    assert_int_equal(stat_of(st, "failed"), 2);
    assert_int_equal(stat_of(st, "accepted"), 2);

    /* set again by the admin API; fail_next goes before fail_rate */
    test_patch(state_standin(st), "{\"fail_next\": 1, \"fail_rate\": 0}");
    assert_int_equal(send_to(st, "+821012341234", "e", 5), SG_FAILED);
    assert_int_equal(send_to(st, "+821012341234", "f", 6), SG_ACCEPTED);

    /* a reset brings back the environment's fail_next and forgets the counts */
    standin_reset(state_standin(st));
    assert_int_equal(stat_of(st, "failed"), 0);
    assert_int_equal(send_to(st, "+821012341234", "g", 7), SG_FAILED);
    state_free(st);
    state_free(NULL);
}

/* Sends n messages and writes 'F' or 'A' per outcome into out (n + 1 bytes). */
static void pattern(sg_state_t *st, size_t n, char *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int o = send_to(st, "+821012341234", "x", (int64_t)i);

        assert_true(o == SG_FAILED || o == SG_ACCEPTED);
        out[i] = o == SG_FAILED ? 'F' : 'A';
    }
    out[n] = '\0';
}

static void test_fail_rate_seeded(void **state)
{
    struct sg_mode m = defaults;
    sg_state_t *a, *b;
    char pa[1001], pb[1001], pc[1001];
    size_t i, fails = 0;
    uint64_t s1 = 42, s2 = 42, s3 = 43;

    (void)state;
    /* the PRNG is a function of its seed */
    assert_true(sg_prng_next(&s1) == sg_prng_next(&s2));
    assert_true(sg_prng_next(&s1) == sg_prng_next(&s2));
    assert_true(sg_prng_next(&s1) != sg_prng_next(&s3));

    m.fail_rate = 30;
    m.seed = 42;
    a = new_state(&m);
    b = new_state(&m);
    pattern(a, 1000, pa);
    pattern(b, 1000, pb);
    assert_string_equal(pa, pb);                 /* same seed, same failures */
    for (i = 0; i < 1000; i++)
        fails += pa[i] == 'F';
    if (fails < 240 || fails > 360)
        fail_msg("fail_rate 30: %zu failures in 1000", fails);
    assert_int_equal(stat_of(a, "failed"), (json_int_t)fails);
    assert_int_equal(stat_of(a, "accepted"), (json_int_t)(1000 - fails));

    /* setting the seed restarts the sequence; another seed gives another one */
    test_patch(state_standin(a), "{\"seed\": 42}");
    pattern(a, 1000, pc);
    assert_string_equal(pa, pc);
    test_patch(state_standin(a), "{\"seed\": 43}");
    pattern(a, 1000, pc);
    assert_string_not_equal(pa, pc);
    /* and so does a reset, with the environment's seed */
    standin_reset(state_standin(a));
    pattern(a, 1000, pc);
    assert_string_equal(pa, pc);

    /* 0 never fails, 100 always does */
    test_patch(state_standin(b), "{\"fail_rate\": 0}");
    pattern(b, 200, pc);
    assert_null(strchr(pc, 'F'));
    test_patch(state_standin(b), "{\"fail_rate\": 100}");
    pattern(b, 200, pc);
    assert_null(strchr(pc, 'A'));
    state_free(a);
    state_free(b);
}

/* ---------------------------------------------------------------------------------- */
/* Messages and counts */

static void test_messages_listed(void **state)
{
    sg_state_t *st = new_state(&defaults);
    json_t *r, *list, *m;

    (void)state;
    assert_int_equal(send_to(st, "+821012341234", "first \xec\x95\x88", 1709307000000LL),
                     SG_ACCEPTED);
    assert_int_equal(send_to(st, "+821099998888", "second", 1709307000001LL), SG_ACCEPTED);
    assert_int_equal(send_to(st, "+821012341234", "third", 1709307000002LL), SG_ACCEPTED);
    test_patch(state_standin(st), "{\"fail_next\": 1}");
    assert_int_equal(send_to(st, "+821012341234", "failed one", 5), SG_FAILED);
    state_count(st, SG_REFUSED);
    state_count(st, SG_REJECTED);
    state_count(st, SG_REJECTED);

    r = state_messages(st, NULL);
    assert_non_null(r);
    list = json_object_get(r, "messages");
    assert_int_equal(json_array_size(list), 3);     /* only the accepted ones */
    m = json_array_get(list, 0);
    assert_int_equal(json_object_size(m), 6);
    assert_true(json_is_null(json_object_get(m, "traceparent")));   /* the send had none */
    assert_int_equal(strlen(json_string_value(json_object_get(m, "sid"))), SG_SID_LEN);
    assert_string_equal(json_string_value(json_object_get(m, "to")), "+821012341234");
    assert_string_equal(json_string_value(json_object_get(m, "from")), "+15005550006");
    assert_string_equal(json_string_value(json_object_get(m, "body")), "first 안");
    assert_string_equal(json_string_value(json_object_get(m, "at")),
                        "2024-03-01T15:30:00.000Z");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 2), "body")),
                        "third");
    json_decref(r);

    r = state_messages(st, "+821012341234");
    list = json_object_get(r, "messages");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "body")),
                        "third");
    json_decref(r);
    r = state_messages(st, "+10000000000");
    assert_int_equal(json_array_size(json_object_get(r, "messages")), 0);
    json_decref(r);

    assert_int_equal(stat_of(st, "accepted"), 3);
    assert_int_equal(stat_of(st, "failed"), 1);
    assert_int_equal(stat_of(st, "refused"), 1);
    assert_int_equal(stat_of(st, "rejected"), 2);

    standin_reset(state_standin(st));
    r = state_messages(st, NULL);
    assert_int_equal(json_array_size(json_object_get(r, "messages")), 0);
    json_decref(r);
    assert_int_equal(stat_of(st, "accepted") + stat_of(st, "failed") + stat_of(st, "refused") +
                     stat_of(st, "rejected"), 0);
    state_free(st);
}

/* A send's traceparent header is kept as received, made printable and bounded. */
static void test_messages_keep_traceparent(void **state)
{
    static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    char sid[SG_SID_LEN + 1] = "SM00000000000000000000000000000001", odd[200];
    struct sg_send s = { "+821012341234", "+15005550006", "hi", 2, NULL, tp };
    sg_state_t *st = new_state(&defaults);
    json_t *r, *list;
    const char *v;

    (void)state;
    assert_int_equal(state_send(st, sid, &s, 1), SG_ACCEPTED);
    memset(odd, 'a', sizeof(odd) - 1);
    odd[sizeof(odd) - 1] = '\0';
    odd[3] = '"';
    odd[4] = '\x01';
    s.traceparent = odd;
    sid[SG_SID_LEN - 1] = '2';
    assert_int_equal(state_send(st, sid, &s, 2), SG_ACCEPTED);
    r = state_messages(st, NULL);
    assert_non_null(r);
    list = json_object_get(r, "messages");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0),
                                                          "traceparent")), tp);
    v = json_string_value(json_object_get(json_array_get(list, 1), "traceparent"));
    assert_non_null(v);
    assert_int_equal(strlen(v), SG_TRACEPARENT_MAX - 1);
    assert_memory_equal(v, "aaa??aaa", 8);
    json_decref(r);
    state_free(st);
}

static void test_messages_bounded_by_count(void **state)
{
    sg_state_t *st = new_state(&defaults);
    json_t *r, *list;
    char body[32];
    size_t i;

    (void)state;
    for (i = 0; i < SG_MESSAGES_MAX + 5; i++) {
        snprintf(body, sizeof(body), "m%zu", i);
        assert_int_equal(send_to(st, "+821012341234", body, (int64_t)i), SG_ACCEPTED);
    }
    r = state_messages(st, NULL);
    list = json_object_get(r, "messages");
    assert_int_equal(json_array_size(list), SG_MESSAGES_MAX);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "body")),
                        "m5");                                   /* the oldest dropped */
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(list, SG_MESSAGES_MAX - 1), "body")),
                        "m100004");
    json_decref(r);
    assert_int_equal(stat_of(st, "accepted"), SG_MESSAGES_MAX + 5); /* counts are not capped */
    state_free(st);                                              /* frees all of them */
}

static void test_messages_bounded_by_bytes(void **state)
{
    sg_state_t *st = new_state(&defaults);
    enum { BODY = 6000 };
    /* each message holds From (12) + NUL + the body + NUL */
    const size_t per = 12 + 1 + BODY + 1, fit = SG_TEXT_BYTES_MAX / per;
    char *body = malloc(BODY + 1);
    json_t *r;
    size_t i;

    (void)state;
    assert_non_null(body);
    memset(body, 'b', BODY);
    body[BODY] = '\0';
    for (i = 0; i < fit + 10; i++)
        assert_int_equal(send_to(st, "+821012341234", body, (int64_t)i), SG_ACCEPTED);
    r = state_messages(st, NULL);
    assert_int_equal(json_array_size(json_object_get(r, "messages")), fit);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r, "messages"), 0), "at")),
                        "1970-01-01T00:00:00.010Z");             /* ten dropped */
    json_decref(r);
    free(body);
    state_free(st);
}

/* state_list on q (checked from a); fails the test when it does not answer. */
static json_t *list_of(sg_state_t *st, const struct sg_list_args *a, int *more)
{
    struct sg_list_query q;
    char err[256] = "";
    json_t *list;

    if (sg_list_check(a, &q, err, sizeof(err)) != 0)
        fail_msg("sg_list_check: %s", err);
    list = state_list(st, &q, "ACtest", more);
    assert_non_null(list);
    assert_true(json_is_array(list));
    return list;
}

/* The bodies of a list, joined by ',' into out. */
static const char *bodies(json_t *list, char *out, size_t out_size)
{
    size_t i, len = 0;

    out[0] = '\0';
    for (i = 0; i < json_array_size(list); i++) {
        const char *b = json_string_value(json_object_get(json_array_get(list, i), "body"));

        len += (size_t)snprintf(out + len, out_size - len, "%s%s", i > 0 ? "," : "",
                                b != NULL ? b : "?");
        assert_true(len < out_size);
    }
    return out;
}

static void test_twilio_list(void **state)
{
    const int64_t day = 86400000, d0 = (int64_t)1709251200 * 1000; /* 2024-03-01T00:00Z */
    sg_state_t *st = new_state(&defaults);
    struct sg_list_args a;
    json_t *list, *m;
    char b[256], token[64];
    int more = -1;

    (void)state;
    /* a1..a4 to one number over three UTC days, b1 to another; one failed send */
    assert_int_equal(send_to(st, "+821012341234", "a1", d0 - 1), SG_ACCEPTED); /* 02-29 */
    assert_int_equal(send_to(st, "+821012341234", "a2", d0), SG_ACCEPTED);     /* 03-01 */
    assert_int_equal(send_to(st, "+821099998888", "b1", d0 + 5), SG_ACCEPTED);
    assert_int_equal(send_to(st, "+821012341234", "a3", d0 + day - 1), SG_ACCEPTED);
    test_patch(state_standin(st), "{\"fail_next\": 1}");
    assert_int_equal(send_to(st, "+821012341234", "failed", d0 + day), SG_FAILED);
    assert_int_equal(send_to(st, "+821012341234", "a4", d0 + day), SG_ACCEPTED); /* 03-02 */

    /* everything, newest first, as Twilio's Message resources */
    memset(&a, 0, sizeof(a));
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "a4,a3,b1,a2,a1");
    assert_int_equal(more, 0);
    m = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(m, "to")), "+821012341234");
    assert_string_equal(json_string_value(json_object_get(m, "from")), "+15005550006");
    assert_string_equal(json_string_value(json_object_get(m, "status")), "sent");
    assert_string_equal(json_string_value(json_object_get(m, "date_sent")),
                        "Sat, 02 Mar 2024 00:00:00 +0000");
    assert_string_equal(json_string_value(json_object_get(m, "account_sid")), "ACtest");
    assert_int_equal(strlen(json_string_value(json_object_get(m, "sid"))), SG_SID_LEN);
    json_decref(list);

    /* To, and the notifier's question: To and DateSent>= */
    a.to = "+821012341234";
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "a4,a3,a2,a1");
    json_decref(list);
    a.date_sent_ge = "2024-03-01";
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "a4,a3,a2");
    json_decref(list);
    a.date_sent_ge = "2024-03-02";
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "a4");
    json_decref(list);
    a.date_sent_ge = "2024-03-03";
    list = list_of(st, &a, &more);
    assert_int_equal(json_array_size(list), 0);
    assert_int_equal(more, 0);
    json_decref(list);
    a.date_sent_ge = NULL;
    a.date_sent_le = "2024-03-01";
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "a3,a2,a1");
    json_decref(list);
    a.date_sent_le = NULL;
    a.date_sent = "2024-03-01";
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "a3,a2");
    json_decref(list);
    a.to = "+821099998888";
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "b1");
    json_decref(list);
    a.to = "+10000000000";
    a.date_sent = NULL;
    list = list_of(st, &a, &more);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);

    /* pages: by number, and after a token (the last SID of the page before) */
    memset(&a, 0, sizeof(a));
    a.page_size = "2";
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "a4,a3");
    assert_int_equal(more, 1);
    snprintf(token, sizeof(token), "PA%s",
             json_string_value(json_object_get(json_array_get(list, 1), "sid")));
    json_decref(list);
    a.page = "1";
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "b1,a2");
    assert_int_equal(more, 1);
    json_decref(list);
    a.page = "2";
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "a1");
    assert_int_equal(more, 0);
    json_decref(list);
    a.page = "3";
    list = list_of(st, &a, &more);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    a.page = "1";
    a.page_token = token;             /* the token decides; "Page" is only echoed */
    /* a newer one does not shift it */
    assert_int_equal(send_to(st, "+821012341234", "a5", d0 + day), SG_ACCEPTED);
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "b1,a2");
    assert_int_equal(more, 1);
    json_decref(list);
    a.page_size = "1000";
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "b1,a2,a1");
    assert_int_equal(more, 0);
    json_decref(list);
    /* a token whose message is gone (or never was): every older one went before it */
    a.page_token = "PASM0000000000000000000000000000ffff";
    list = list_of(st, &a, &more);
    assert_int_equal(json_array_size(list), 0);
    assert_int_equal(more, 0);
    json_decref(list);

    /* a reset forgets them */
    standin_reset(state_standin(st));
    memset(&a, 0, sizeof(a));
    list = list_of(st, &a, &more);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    state_free(st);
}

static void test_sleep_and_stop(void **state)
{
    sg_state_t *st = new_state(&defaults);

    (void)state;
    test_sleep_and_stop_of(state_standin(st));
    state_free(st);
}

static void test_outcome_names(void **state)
{
    (void)state;
    assert_string_equal(sg_outcome_name(SG_ACCEPTED), "accepted");
    assert_string_equal(sg_outcome_name(SG_FAILED), "failed");
    assert_string_equal(sg_outcome_name(SG_REFUSED), "refused");
    assert_string_equal(sg_outcome_name(SG_REJECTED), "rejected");
    assert_string_equal(sg_outcome_name((enum sg_outcome)9), "unknown");
}

/* ---------------------------------------------------------------------------------- */
/* Twilio's behaviour: queued, then sent, then delivered; the rate; status callbacks */

static void test_queued_not_dated(void **state)
{
    const int64_t now = util_now_ms();
    sg_state_t *st = new_state(&defaults);
    struct sg_list_args a;
    struct sg_send s = { "+821012341234", "+15005550006", "late", 4, NULL, NULL };
    json_t *list, *m;
    char day[16], b[64];
    int more;
    time_t t = (time_t)(now / 1000);
    struct tm tm;

    (void)state;
    gmtime_r(&t, &tm);
    strftime(day, sizeof(day), "%Y-%m-%d", &tm);
    /* one message queued for an hour, one that left the queue at once */
    test_patch(state_standin(st), "{\"queue_ms\": 3600000}");
    assert_int_equal(state_send(st, "SM00000000000000000000000000000001", &s, now),
                     SG_ACCEPTED);
    test_patch(state_standin(st), "{\"queue_ms\": 0, \"deliver_ms\": 3600000}");
    s.body = "early";
    assert_int_equal(state_send(st, "SM00000000000000000000000000000002", &s, now),
                     SG_ACCEPTED);

    /* without a date filter both are there, the queued one without date_sent */
    memset(&a, 0, sizeof(a));
    a.to = "+821012341234";
    a.from = "+15005550006";
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "early,late");
    m = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(m, "status")), "queued");
    assert_true(json_is_null(json_object_get(m, "date_sent")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0),
                                                          "status")), "sent");
    json_decref(list);
    /* DateSent>= today: the queued one is not found, as on Twilio */
    a.date_sent_ge = day;
    list = list_of(st, &a, &more);
    assert_string_equal(bodies(list, b, sizeof(b)), "early");
    json_decref(list);
    /* another sender's messages are not listed under From */
    a.date_sent_ge = NULL;
    a.from = "Dozen";
    list = list_of(st, &a, &more);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    state_free(st);
}

static void test_throttle(void **state)
{
    sg_state_t *st = new_state(&defaults);
    int64_t t = 1000000;
    int i, passed = 0;
    json_t *list, *last;    /* list owned, last borrowed from it */

    (void)state;
    assert_int_equal(state_throttle(st, t), 0);   /* no rate: never */
    test_patch(state_standin(st), "{\"rate\": 2}");
    /* 10 sends at once: one, and one more in the slack; then 429 with Retry-After 1 */
    for (i = 0; i < 10; i++) {
        long long w = state_throttle(st, t);

        if (w == 0)
            passed++;
        else
            assert_int_equal(w, 1);
    }
    assert_int_equal(passed, 2);
    assert_int_equal(stat_of(st, "throttled"), 8);
    /* at the rate (every 500 ms), every one passes */
    for (i = 1; i <= 20; i++)
        assert_int_equal(state_throttle(st, t + 500 + i * 500), 0);
    /* a Retry-After of the knob's, whatever the rate would say; each 429 kept */
    test_patch(state_standin(st), "{\"retry_after\": 3}");
    t += 500 + 20 * 500;
    assert_int_equal(state_throttle(st, t), 0);
    assert_int_equal(state_throttle(st, t), 3);
    list = state_throttles(st);
    assert_int_equal(json_array_size(json_object_get(list, "throttles")), 9);
    last = json_array_get(json_object_get(list, "throttles"), 8);
    assert_int_equal(json_integer_value(json_object_get(last, "retry_after")), 3);
    assert_int_equal(json_integer_value(json_object_get(
        json_array_get(json_object_get(list, "throttles"), 0), "retry_after")), 1);
    assert_non_null(json_string_value(json_object_get(last, "at")));
    json_decref(list);
    state_free(st);
}

static void test_callbacks_due(void **state)
{
    sg_state_t *st = new_state(&defaults);
    struct sg_send s = { "+821012341234", "+15005550006", "hi", 2,
                         "http://127.0.0.1:1/sms/status/1?token=x", NULL };
    struct sg_send plain = { "+821012341234", "+15005550006", "no callback", 11, NULL, NULL };
    struct sg_callback due[4];
    int64_t t = 5000000;

    (void)state;
    test_patch(state_standin(st), "{\"queue_ms\": 1000, \"deliver_ms\": 1000}");
    assert_int_equal(state_send(st, "SM00000000000000000000000000000001", &s, t), SG_ACCEPTED);
    assert_int_equal(state_send(st, "SM00000000000000000000000000000002", &plain, t),
                     SG_ACCEPTED);
    assert_int_equal(state_callbacks_due(st, t + 999, due, 4), 0);      /* still queued */
    assert_int_equal(state_callbacks_due(st, t + 1000, due, 4), 1);
    assert_string_equal(due[0].status, "sent");
    assert_string_equal(due[0].sid, "SM00000000000000000000000000000001");
    assert_string_equal(due[0].url, "http://127.0.0.1:1/sms/status/1?token=x");
    assert_string_equal(due[0].from, "+15005550006");
    assert_int_equal(due[0].twice, 0);
    assert_int_equal(state_callbacks_due(st, t + 1500, due, 4), 0);     /* posted once */
    test_patch(state_standin(st), "{\"callback_twice\": true}");
    assert_int_equal(state_callbacks_due(st, t + 5000, due, 4), 1);
    assert_string_equal(due[0].status, "delivered");
    assert_int_equal(due[0].twice, 1);                /* the knob as it was when taken */
    assert_int_equal(state_callbacks_due(st, t + 9000, due, 4), 0);     /* the last one */
    state_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_patch),
        cmocka_unit_test(test_mode_patch_errors),
        cmocka_unit_test(test_fail_next),
        cmocka_unit_test(test_fail_rate_seeded),
        cmocka_unit_test(test_messages_listed),
        cmocka_unit_test(test_messages_keep_traceparent),
        cmocka_unit_test(test_messages_bounded_by_count),
        cmocka_unit_test(test_messages_bounded_by_bytes),
        cmocka_unit_test(test_twilio_list),
        cmocka_unit_test(test_sleep_and_stop),
        cmocka_unit_test(test_outcome_names),
        cmocka_unit_test(test_queued_not_dated),
        cmocka_unit_test(test_throttle),
        cmocka_unit_test(test_callbacks_due),
    };

    log_init("test_sms_gateway");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
