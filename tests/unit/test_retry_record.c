/* test_retry_record: what the retry service adds to the retry contract
 * (services/retry/record.c): a record on `retry` read with its ce_id, the original headers'
 * encoding, the headers written on the way out and the give-up rule. The contract itself
 * (libcommon/retry.c) is tested in test_retry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "retry_service.h"
#include "util.h"

#include "retry_fixture.h"

/* The contract's checks are tested on retry_info_parse (test_retry); here what the service
 * adds: the ce_id, known even for an invalid record, attempts from 1. */
static void test_parse_valid(void **state)
{
    rd_kafka_headers_t *h = valid_headers();
    retry_record_t r;
    char err[256];

    (void)state;
    assert_int_equal(record_parse(h, &r, err, sizeof(err)), 0);
    assert_string_equal(r.info.original_topic, "stock.depleted");
    assert_int_equal(r.info.attempt, 2);
    assert_true(r.info.deadline_ms == RETRY_NO_DEADLINE);
    assert_string_equal(r.info.error, "HTTP 503");
    assert_string_equal(r.ce_id, CE_ID);
    rd_kafka_headers_destroy(h);
}

/* Sets name to value (NULL: removed) on valid headers and expects an error with fragment. */
static void expect_invalid(const char *name, const char *value, size_t len,
                           const char *fragment)
{
    rd_kafka_headers_t *h = valid_headers();
    retry_record_t r;
    char err[256] = "";

    set_header(h, name, value, len);
    assert_int_equal(record_parse(h, &r, err, sizeof(err)), -1);
    if (strstr(err, fragment) == NULL)
        fail_msg("%s: error '%s' does not mention '%s'", name, err, fragment);
    assert_string_equal(r.ce_id, CE_ID); /* known even for an invalid record */
    rd_kafka_headers_destroy(h);
}

static void test_parse_invalid(void **state)
{
    retry_record_t r;
    char err[256];

    (void)state;
    expect_invalid("dozen-group", NULL, 0, "missing header 'dozen-group'");
    expect_invalid("dozen-attempt", "0", 1, "'dozen-attempt': '0' is not an integer from 1");
    expect_invalid("dozen-group", "a b", 3, "'dozen-group': 'a b' must be 1 to 200");

    /* No headers at all. */
    assert_int_equal(record_parse(NULL, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "missing header 'dozen-original-topic'"));
    assert_string_equal(r.ce_id, "");
}

static void test_error_is_cut_and_printable(void **state)
{
    rd_kafka_headers_t *h = valid_headers();
    char text[2000];
    retry_record_t r;
    char err[256];

    (void)state;
    memset(text, 'e', sizeof(text));
    text[0] = '\n';
    text[1] = '"';
    set_header(h, "dozen-error", text, sizeof(text));
    assert_int_equal(record_parse(h, &r, err, sizeof(err)), 0);
    assert_int_equal(strlen(r.info.error), RETRY_ERROR_MAX);
    assert_int_equal(r.info.error[0], '?');
    assert_int_equal(r.info.error[1], '"');
    rd_kafka_headers_destroy(h);
}

static void test_due_and_decide(void **state)
{
    retry_record_t r;

    (void)state;
    memset(&r, 0, sizeof(r));
    assert_true(record_due_at(1000, RETRY_NO_DEADLINE) == 1000);
    assert_true(record_due_at(1000, 5000) == 1000);
    assert_true(record_due_at(9000, 5000) == 5000);

    r.info.attempt = 3;
    r.info.max_attempts = 3;
    r.info.not_before_ms = 1000;
    r.info.deadline_ms = RETRY_NO_DEADLINE;
    assert_int_equal(record_decide(&r, 1000), RETRY_REDELIVER);
    r.info.attempt = 4;
    assert_int_equal(record_decide(&r, 1000), RETRY_GIVE_UP_MAX_ATTEMPTS);
    r.info.max_attempts = 0;
    r.info.attempt = 1;
    assert_int_equal(record_decide(&r, 1000), RETRY_GIVE_UP_MAX_ATTEMPTS);

    r.info.max_attempts = 5;
    r.info.deadline_ms = 5000;
    assert_int_equal(record_decide(&r, 1000), RETRY_REDELIVER);
    assert_int_equal(record_decide(&r, 4999), RETRY_REDELIVER);  /* postponed, still in time */
    assert_int_equal(record_decide(&r, 5000), RETRY_GIVE_UP_DEADLINE);
    r.info.not_before_ms = 6000;                                      /* would come too late */
    assert_int_equal(record_decide(&r, 5000), RETRY_GIVE_UP_DEADLINE);
    r.info.attempt = 6;                                          /* attempts are checked first */
    assert_int_equal(record_decide(&r, 5000), RETRY_GIVE_UP_MAX_ATTEMPTS);

    assert_string_equal(record_action_reason(RETRY_GIVE_UP_MAX_ATTEMPTS), "max_attempts");
    assert_string_equal(record_action_reason(RETRY_GIVE_UP_DEADLINE), "deadline_exceeded");
    assert_null(record_action_reason(RETRY_REDELIVER));
}


static void test_headers_round_trip(void **state)
{
    rd_kafka_headers_t *in = rd_kafka_headers_new(8), *out;
    unsigned char *buf = NULL;
    size_t len = 0, i;
    const char *name, *v;
    const void *val;
    size_t size;
    char err[256];

    (void)state;
    assert_int_equal(rd_kafka_header_add(in, "ce_id", -1, CE_ID, -1), 0);
    assert_int_equal(rd_kafka_header_add(in, "dozen-attempt", -1, "1", -1), 0);  /* dropped */
    assert_int_equal(rd_kafka_header_add(in, "bin", -1, "a\0\xff", 3), 0);
    assert_int_equal(rd_kafka_header_add(in, "null", -1, NULL, 0), 0);
    assert_int_equal(rd_kafka_header_add(in, "empty", -1, "", 0), 0);
    assert_int_equal(rd_kafka_header_add(in, "bin", -1, "second", -1), 0);

    assert_int_equal(record_headers_encode(in, &buf, &len, err, sizeof(err)), 0);
    assert_int_equal(buf[0], 1);
    out = record_headers_decode(buf, len, err, sizeof(err));
    assert_non_null(out);
    assert_int_equal(rd_kafka_header_cnt(out), 5);
    {
        static const char *const names[] = { "ce_id", "bin", "null", "empty", "bin" };
        for (i = 0; rd_kafka_header_get_all(out, i, &name, &val, &size) == 0; i++)
            assert_string_equal(name, names[i]);
        assert_int_equal(i, 5);
    }
    assert_int_equal(rd_kafka_header_get(out, 0, "bin", &val, &size), 0);
    assert_int_equal(size, 3);
    assert_memory_equal(val, "a\0\xff", 3);
    assert_int_equal(rd_kafka_header_get(out, 0, "null", &val, &size), 0);
    assert_null(val);
    assert_int_equal(get(out, "dozen-attempt", &v), -1);

    /* Every prefix is either a shorter list (cut between headers) or refused; none is
     * read past its end (valgrind and ASan check that). */
    for (i = 0; i < len; i++) {
        rd_kafka_headers_t *cut = record_headers_decode(buf, i, err, sizeof(err));

        if (cut != NULL) {
            assert_true(rd_kafka_header_cnt(cut) < 5);
            rd_kafka_headers_destroy(cut);
        }
    }
    assert_null(record_headers_decode(buf, 0, err, sizeof(err)));
    assert_null(record_headers_decode(buf, len - 1, err, sizeof(err)));
    assert_non_null(strstr(err, "truncated or corrupt"));
    buf[0] = 2;
    assert_null(record_headers_decode(buf, len, err, sizeof(err)));
    assert_non_null(strstr(err, "unknown encoding"));

    free(buf);
    rd_kafka_headers_destroy(out);
    rd_kafka_headers_destroy(in);

    /* No headers: just the version byte, which decodes to none. */
    assert_int_equal(record_headers_encode(NULL, &buf, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 1);
    out = record_headers_decode(buf, len, err, sizeof(err));
    assert_non_null(out);
    assert_int_equal(rd_kafka_header_cnt(out), 0);
    rd_kafka_headers_destroy(out);
    free(buf);
}

/* Parses the valid headers, adds the outgoing ones of kind out to an empty list and checks
 * a few values. */
static void test_outgoing_headers(void **state)
{
    rd_kafka_headers_t *h = valid_headers(), *out;
    retry_record_t r;
    const char *v;
    char err[256];

    (void)state;
    set_header(h, "dozen-deadline", "1700000005000", 13);
    assert_int_equal(record_parse(h, &r, err, sizeof(err)), 0);

    out = rd_kafka_headers_new(16);
    assert_int_equal(record_headers_add(out, &r, OUT_REDELIVERY, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(get(out, "dozen-attempt", &v), 1);
    assert_memory_equal(v, "2", 1);
    assert_int_equal(get(out, "dozen-deadline", &v), 13);
    assert_int_equal(get(out, "dozen-reason", &v), (ssize_t)strlen("factory_unavailable"));
    assert_int_equal(get(out, "dozen-expired", &v), -1);
    assert_int_equal(get(out, "dozen-last-reason", &v), -1);
    assert_int_equal(rd_kafka_header_cnt(out), 11);
    rd_kafka_headers_destroy(out);

    out = rd_kafka_headers_new(16);
    assert_int_equal(record_headers_add(out, &r, OUT_NOTICE, "max_attempts", NULL, err,
                                        sizeof(err)), 0);
    assert_int_equal(get(out, "dozen-expired", &v), 12);
    assert_memory_equal(v, "max_attempts", 12);
    assert_int_equal(get(out, "dozen-reason", &v), (ssize_t)strlen("factory_unavailable"));
    rd_kafka_headers_destroy(out);

    out = rd_kafka_headers_new(16);
    assert_int_equal(record_headers_add(out, &r, OUT_DEAD_LETTER, "deadline_exceeded",
                                        "replaced\n", err, sizeof(err)), 0);
    assert_int_equal(get(out, "dozen-reason", &v), 17);
    assert_memory_equal(v, "deadline_exceeded", 17);
    assert_int_equal(get(out, "dozen-last-reason", &v), (ssize_t)strlen("factory_unavailable"));
    assert_int_equal(get(out, "dozen-error", &v), 9);
    assert_memory_equal(v, "replaced?", 9);
    assert_int_equal(get(out, "dozen-expired", &v), -1);
    rd_kafka_headers_destroy(out);

    /* A give-up without its reason is a bug, not a record. */
    out = rd_kafka_headers_new(4);
    assert_int_equal(record_headers_add(out, &r, OUT_NOTICE, NULL, NULL, err, sizeof(err)), -1);
    rd_kafka_headers_destroy(out);
    rd_kafka_headers_destroy(h);
}

static void test_invalid_record_headers(void **state)
{
    rd_kafka_headers_t *in = valid_headers(), *out;
    const char *v;
    char err[256];

    (void)state;
    out = record_invalid_headers(in, "retry", "retry", 2, 77, "bad \"thing\"", 1234, err,
                                 sizeof(err));
    assert_non_null(out);
    assert_int_equal(get(out, "ce_id", &v), UTIL_UUID_LEN);
    assert_int_equal(get(out, "dozen-reason", &v), 14);
    assert_memory_equal(v, "invalid_record", 14);
    assert_int_equal(get(out, "dozen-original-offset", &v), 2);
    assert_memory_equal(v, "77", 2);
    assert_int_equal(get(out, "dozen-error", &v), 11);
    assert_int_equal(get(out, "dozen-attempt", &v), -1); /* the record's dozen-* are gone */
    /* ce_id, content-type, then 4 provenance headers, reason, error, first-failed-at */
    assert_int_equal(rd_kafka_header_cnt(out), 9);
    rd_kafka_headers_destroy(out);
    rd_kafka_headers_destroy(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_error_is_cut_and_printable),
        cmocka_unit_test(test_due_and_decide),
        cmocka_unit_test(test_headers_round_trip),
        cmocka_unit_test(test_outgoing_headers),
        cmocka_unit_test(test_invalid_record_headers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
