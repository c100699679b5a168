/* Unit tests for services/notifier/feed.c: reason codes and words, dates, the validation
 * of a document (every reason, in the agreed order), and feed_fetch against an HTTP server
 * started in the test (libcommon's, on a free port of 127.0.0.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "feed.h"
#include "http_stub.h"
#include "log.h"
#include "util.h"

#define TODAY     "2026-11-22"
#define YESTERDAY "2026-11-21"

/* ---------------------------------------------------------------------------------- */
/* Reason codes and words */

static void test_reason_codes_and_words(void **state)
{
    static const struct {
        feed_reason_t r;
        const char *code;
        const char *words;
    } all[] = {
        { FEED_SOURCE_UNREACHABLE, "source_unreachable", "the data source could not be reached" },
        { FEED_NOT_PUBLISHED_YET, "not_published_yet",
          "today's figures have not been published yet" },
        { FEED_STALE_DATE, "stale_date", "the source published figures for the wrong date" },
        { FEED_ALL_ZERO, "all_zero", "the source published only zeros" },
        { FEED_INVALID_DATA, "invalid_data", "the source published invalid figures" },
        { FEED_DECREASING_TOTALS, "decreasing_totals", "the source's totals went down" },
        { FEED_SOURCE_REFUSED, "source_refused", "the data source refused our request" },
    };
    static const char *const unknown[] = {
        "ok", "", "SOURCE_UNREACHABLE", "source_unreachable ", "expired", "stale",
    };
    const char *fallback = "the figures could not be checked";
    size_t i;

    (void)state;
    assert_string_equal(feed_reason_code(FEED_OK), "ok");
    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_string_equal(feed_reason_code(all[i].r), all[i].code);
        assert_string_equal(feed_reason_words(all[i].code), all[i].words);
        /* the unavailable SMS must stay within 160 characters */
        assert_true(strlen(feed_reason_words(all[i].code)) <= 60);
    }
    assert_string_equal(feed_reason_code((feed_reason_t)99), "unknown");
    for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
        assert_string_equal(feed_reason_words(unknown[i]), fallback);
    assert_string_equal(feed_reason_words(NULL), fallback);
    assert_true(strlen(fallback) <= 60);
}

/* ---------------------------------------------------------------------------------- */
/* Dates */

static void test_date_valid(void **state)
{
    static const char *const good[] = {
        "1970-01-01", "2026-11-22", "2024-02-29", "2000-02-29", "2026-01-31", "2026-04-30",
        "2026-12-31", "9999-12-31",
    };
    static const char *const bad[] = {
        "", "2026-11-2", "2026-1-22", "26-11-22", "2026/11/22", "2026-11-22 ", " 2026-11-22",
        "2026-11-22T00:00:00Z", "2026-00-10", "2026-13-01", "2026-11-00", "2026-11-31",
        "2026-02-29", "2100-02-29", "1900-02-29", "2026-04-31", "2026-06-31", "2026-09-31",
        "2026-01-32", "1969-12-31", "0000-01-01", "2026-1a-22", "2026--11-2", "+026-11-22",
        "20261-11-22",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!feed_date_valid(good[i]))
            fail_msg("refused %s", good[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (feed_date_valid(bad[i]))
            fail_msg("accepted '%s'", bad[i]);
    }
    assert_false(feed_date_valid(NULL));
}

static void expect_before(const char *date, const char *want)
{
    char out[11];

    memset(out, 'X', sizeof(out));
    if (feed_date_before(date, out) != 0)
        fail_msg("feed_date_before(%s) failed", date);
    if (strcmp(out, want) != 0)
        fail_msg("the day before %s: got %s, want %s", date, out, want);
}

static void test_date_before(void **state)
{
    char out[11] = "unchanged";

    (void)state;
    expect_before(TODAY, YESTERDAY);
    expect_before("2026-11-01", "2026-10-31");
    expect_before("2026-10-01", "2026-09-30");
    expect_before("2026-05-01", "2026-04-30");
    expect_before("2026-01-01", "2025-12-31");       /* the year changes */
    expect_before("2024-03-01", "2024-02-29");       /* leap year */
    expect_before("2023-03-01", "2023-02-28");
    expect_before("2000-03-01", "2000-02-29");       /* divisible by 400: leap */
    expect_before("2100-03-01", "2100-02-28");       /* by 100 only: not */
    expect_before("2024-02-29", "2024-02-28");
    expect_before("2024-12-31", "2024-12-30");
    expect_before("1970-01-01", "1969-12-31");
    expect_before("9999-12-31", "9999-12-30");

    assert_int_equal(feed_date_before("2026-02-29", out), -1);
    assert_int_equal(feed_date_before("2026-11-22x", out), -1);
    assert_int_equal(feed_date_before("", out), -1);
    assert_int_equal(feed_date_before(NULL, out), -1);
    assert_string_equal(out, "unchanged");
}

/* ---------------------------------------------------------------------------------- */
/* Validation */

static const feed_figures_t last_day = { YESTERDAY, 10423, 6973, 3246, 204 };

/* feed_validate on the NUL-terminated body; fails the test unless it gives want and an err
 * containing want_err (when not NULL). */
static void expect_reason(const char *body, const feed_figures_t *last, feed_reason_t want,
                          const char *want_err)
{
    feed_figures_t out;
    char err[256];
    feed_reason_t r;

    memset(&out, 0x5a, sizeof(out));
    memset(err, 'X', sizeof(err));
    r = feed_validate(body, strlen(body), TODAY, last, &out, err, sizeof(err));
    if (r != want)
        fail_msg("%s: got %s (%s), want %s", body, feed_reason_code(r), err,
                 feed_reason_code(want));
    if (memchr(err, '\0', sizeof(err)) == NULL)
        fail_msg("%s: err is not terminated", body);
    if (want_err != NULL && strstr(err, want_err) == NULL)
        fail_msg("%s: err '%s' does not contain '%s'", body, err, want_err);
    if (want == FEED_OK && err[0] != '\0')
        fail_msg("%s: err '%s' on success", body, err);
}

#define DOC(date, rest) "{\"date\": \"" date "\"" rest "}"
#define FIGS ", \"confirmed\": 10523, \"recovered\": 7000, \"in_treatment\": 3300, " \
             "\"deaths\": 205"

static void test_validate_ok(void **state)
{
    const char *doc = DOC(TODAY, FIGS ", \"source\": \"extra fields are ignored\"");
    feed_figures_t out;
    char err[64] = "X";

    (void)state;
    memset(&out, 0, sizeof(out));
    assert_int_equal(feed_validate(doc, strlen(doc), TODAY, &last_day, &out, err,
                                   sizeof(err)), FEED_OK);
    assert_string_equal(err, "");
    assert_string_equal(out.date, TODAY);
    assert_int_equal(out.confirmed, 10523);
    assert_int_equal(out.recovered, 7000);
    assert_int_equal(out.in_treatment, 3300);
    assert_int_equal(out.deaths, 205);

    /* without a last day; equal totals; in_treatment may go down (it is not cumulative) */
    expect_reason(doc, NULL, FEED_OK, NULL);
    expect_reason(DOC(TODAY, ", \"confirmed\": 10423, \"recovered\": 6973, "
                             "\"in_treatment\": 0, \"deaths\": 204"), &last_day, FEED_OK, NULL);
    /* one non-zero figure is not all zero; the largest allowed figure */
    expect_reason(DOC(TODAY, ", \"confirmed\": 0, \"recovered\": 0, \"in_treatment\": 0, "
                             "\"deaths\": 1"), NULL, FEED_OK, NULL);
    expect_reason(DOC(TODAY, ", \"confirmed\": 1000000000000000, \"recovered\": 0, "
                             "\"in_treatment\": 0, \"deaths\": 0"), NULL, FEED_OK, NULL);
    /* whitespace and key order do not matter */
    expect_reason("\n { \"deaths\":205,\"in_treatment\":3300,\"recovered\":7000,"
                  "\"confirmed\":10523,\"date\":\"" TODAY "\" } \n", &last_day, FEED_OK, NULL);

    /* out may be NULL, err may be NULL */
    assert_int_equal(feed_validate(doc, strlen(doc), TODAY, NULL, NULL, NULL, 0), FEED_OK);
}

static void test_validate_not_json(void **state)
{
    (void)state;
    expect_reason("", NULL, FEED_INVALID_DATA, "empty answer");
    expect_reason("<html>503</html>", NULL, FEED_INVALID_DATA, "not JSON");
    expect_reason(DOC(TODAY, FIGS) "x", NULL, FEED_INVALID_DATA, "not JSON");
    expect_reason("{\"date\": \"" TODAY "\"", NULL, FEED_INVALID_DATA, "not JSON");
    expect_reason("[" DOC(TODAY, FIGS) "]", NULL, FEED_INVALID_DATA, "not a JSON object");
    expect_reason("null", NULL, FEED_INVALID_DATA, "not a JSON object");
    expect_reason("\"" TODAY "\"", NULL, FEED_INVALID_DATA, "not a JSON object");
    expect_reason("10423", NULL, FEED_INVALID_DATA, "not a JSON object");
    /* duplicated keys are ambiguous: refused */
    expect_reason(DOC(TODAY, FIGS ", \"deaths\": 300"), NULL, FEED_INVALID_DATA, "not JSON");
    /* an integer beyond 64 bits does not even parse */
    expect_reason(DOC(TODAY, ", \"confirmed\": 99999999999999999999, \"recovered\": 1, "
                             "\"in_treatment\": 1, \"deaths\": 1"), NULL, FEED_INVALID_DATA,
                  "not JSON");
    /* the parser's message quotes the source: never raw bytes in err */
    {
        const char *bad = "{\"date\": \x01\xff}";
        char err[256];
        size_t i;

        assert_int_equal(feed_validate(bad, strlen(bad), TODAY, NULL, NULL, err, sizeof(err)),
                         FEED_INVALID_DATA);
        for (i = 0; err[i] != '\0'; i++) {
            if (err[i] < 0x20 || err[i] > 0x7e || err[i] == '"' || err[i] == '\\')
                fail_msg("unsafe byte 0x%02x in err '%s'", (unsigned char)err[i], err);
        }
    }
}

static void test_validate_date(void **state)
{
    (void)state;
    expect_reason("{\"confirmed\": 10523, \"recovered\": 7000, \"in_treatment\": 3300, "
                  "\"deaths\": 205}", NULL, FEED_INVALID_DATA, "field 'date' is missing");
    expect_reason("{\"date\": 20261122" FIGS "}", NULL, FEED_INVALID_DATA,
                  "field 'date' is not a date");
    expect_reason("{\"date\": null" FIGS "}", NULL, FEED_INVALID_DATA, "'date'");
    expect_reason(DOC("2026-11-31", FIGS), NULL, FEED_INVALID_DATA, "'date'");
    expect_reason(DOC("2026-11-22T09:00:00+09:00", FIGS), NULL, FEED_INVALID_DATA, "'date'");
    expect_reason(DOC("22/11/2026", FIGS), NULL, FEED_INVALID_DATA, "'date'");
    expect_reason(DOC("", FIGS), NULL, FEED_INVALID_DATA, "'date'");

    expect_reason(DOC(YESTERDAY, FIGS), NULL, FEED_NOT_PUBLISHED_YET,
                  "date " YESTERDAY " is yesterday");
    expect_reason(DOC("2026-11-12", FIGS), NULL, FEED_STALE_DATE,
                  "date 2026-11-12 is not today (" TODAY ")");
    expect_reason(DOC("2026-11-20", FIGS), NULL, FEED_STALE_DATE, "2026-11-20");
    expect_reason(DOC("2026-11-23", FIGS), NULL, FEED_STALE_DATE, "2026-11-23"); /* ahead */
    expect_reason(DOC("2025-11-22", FIGS), NULL, FEED_STALE_DATE, "2025-11-22");

    /* yesterday across a month, a year and a leap day */
    {
        const char *doc = DOC("2025-12-31", FIGS);
        const char *leap = DOC("2024-02-29", FIGS);

        assert_int_equal(feed_validate(doc, strlen(doc), "2026-01-01", NULL, NULL, NULL, 0),
                         FEED_NOT_PUBLISHED_YET);
        assert_int_equal(feed_validate(leap, strlen(leap), "2024-03-01", NULL, NULL, NULL, 0),
                         FEED_NOT_PUBLISHED_YET);
        assert_int_equal(feed_validate(leap, strlen(leap), "2024-02-29", NULL, NULL, NULL, 0),
                         FEED_OK);
    }
}

static void test_validate_figures(void **state)
{
    static const char *const names[] = { "confirmed", "recovered", "in_treatment", "deaths" };
    static const char *const bad_values[] = {
        "-1", "10423.0", "1e4", "1.5", "\"10423\"", "true", "null", "[1]", "{}",
        "1000000000000001", "-9223372036854775808",
    };
    char doc[512], want[64];
    size_t i, j;

    (void)state;
    for (i = 0; i < 4; i++) {
        /* missing */
        snprintf(doc, sizeof(doc), "{\"date\": \"" TODAY "\"");
        for (j = 0; j < 4; j++) {
            if (j != i)
                snprintf(doc + strlen(doc), sizeof(doc) - strlen(doc), ", \"%s\": 5",
                         names[j]);
        }
        snprintf(doc + strlen(doc), sizeof(doc) - strlen(doc), "}");
        snprintf(want, sizeof(want), "field '%s' is missing", names[i]);
        expect_reason(doc, NULL, FEED_INVALID_DATA, want);
        /* bad values */
        for (j = 0; j < sizeof(bad_values) / sizeof(bad_values[0]); j++) {
            size_t k;

            snprintf(doc, sizeof(doc), "{\"date\": \"" TODAY "\"");
            for (k = 0; k < 4; k++)
                snprintf(doc + strlen(doc), sizeof(doc) - strlen(doc), ", \"%s\": %s",
                         names[k], k == i ? bad_values[j] : "5");
            snprintf(doc + strlen(doc), sizeof(doc) - strlen(doc), "}");
            snprintf(want, sizeof(want), "field '%s'", names[i]);
            expect_reason(doc, NULL, FEED_INVALID_DATA, want);
        }
    }
    expect_reason(DOC(TODAY, ", \"confirmed\": -1, \"recovered\": 1, \"in_treatment\": 1, "
                             "\"deaths\": 1"), NULL, FEED_INVALID_DATA,
                  "field 'confirmed' is negative (-1)");
    expect_reason(DOC(TODAY, ", \"confirmed\": 1, \"recovered\": 1.0, \"in_treatment\": 1, "
                             "\"deaths\": 1"), NULL, FEED_INVALID_DATA,
                  "field 'recovered' is not an integer");
    expect_reason(DOC(TODAY, ", \"confirmed\": 1, \"recovered\": 1, \"in_treatment\": 1, "
                             "\"deaths\": 1000000000000001"), NULL, FEED_INVALID_DATA,
                  "field 'deaths' is above 10^15");

    expect_reason(DOC(TODAY, ", \"confirmed\": 0, \"recovered\": 0, \"in_treatment\": 0, "
                             "\"deaths\": 0"), NULL, FEED_ALL_ZERO, "all four figures are 0");
}

static void test_validate_decreasing(void **state)
{
    (void)state;
    expect_reason(DOC(TODAY, ", \"confirmed\": 10323, \"recovered\": 6973, "
                             "\"in_treatment\": 3246, \"deaths\": 204"), &last_day,
                  FEED_DECREASING_TOTALS, "confirmed 10323 < 10423 on " YESTERDAY);
    expect_reason(DOC(TODAY, ", \"confirmed\": 10423, \"recovered\": 6972, "
                             "\"in_treatment\": 3246, \"deaths\": 204"), &last_day,
                  FEED_DECREASING_TOTALS, "recovered 6972 < 6973 on " YESTERDAY);
    expect_reason(DOC(TODAY, ", \"confirmed\": 10423, \"recovered\": 6973, "
                             "\"in_treatment\": 3246, \"deaths\": 203"), &last_day,
                  FEED_DECREASING_TOTALS, "deaths 203 < 204 on " YESTERDAY);
    /* the same figures without a last day pass */
    expect_reason(DOC(TODAY, ", \"confirmed\": 10323, \"recovered\": 6973, "
                             "\"in_treatment\": 3246, \"deaths\": 204"), NULL, FEED_OK, NULL);
}

/* One document wrong in several ways gets the reason of the first check in the agreed
 * order: JSON object, date valid, yesterday / other date, the four fields, all zero,
 * decreasing. */
static void test_validate_order(void **state)
{
    (void)state;
    /* a bad date beats missing fields */
    expect_reason("{\"date\": \"2026-13-01\"}", &last_day, FEED_INVALID_DATA, "'date'");
    /* yesterday beats missing, bad, zero and decreasing figures */
    expect_reason(DOC(YESTERDAY, ""), &last_day, FEED_NOT_PUBLISHED_YET, "yesterday");
    expect_reason(DOC(YESTERDAY, ", \"confirmed\": -5"), &last_day, FEED_NOT_PUBLISHED_YET,
                  NULL);
    expect_reason(DOC(YESTERDAY, ", \"confirmed\": 0, \"recovered\": 0, \"in_treatment\": 0, "
                                 "\"deaths\": 0"), &last_day, FEED_NOT_PUBLISHED_YET, NULL);
    /* another date beats them too */
    expect_reason(DOC("2026-11-02", ", \"confirmed\": \"x\""), &last_day, FEED_STALE_DATE,
                  NULL);
    expect_reason(DOC("2026-11-02", ", \"confirmed\": 1, \"recovered\": 1, "
                                    "\"in_treatment\": 1, \"deaths\": 1"), &last_day,
                  FEED_STALE_DATE, NULL);
    /* fields are checked in order: confirmed's problem first */
    expect_reason(DOC(TODAY, ", \"confirmed\": -1, \"recovered\": 1.5"), NULL,
                  FEED_INVALID_DATA, "'confirmed'");
    /* a bad field beats all zero */
    expect_reason(DOC(TODAY, ", \"confirmed\": 0, \"recovered\": 0, \"in_treatment\": 0, "
                             "\"deaths\": -0.0"), NULL, FEED_INVALID_DATA, "'deaths'");
    /* all zero beats decreasing */
    expect_reason(DOC(TODAY, ", \"confirmed\": 0, \"recovered\": 0, \"in_treatment\": 0, "
                             "\"deaths\": 0"), &last_day, FEED_ALL_ZERO, NULL);
    /* decreasing: confirmed is named first */
    expect_reason(DOC(TODAY, ", \"confirmed\": 1, \"recovered\": 1, \"in_treatment\": 1, "
                             "\"deaths\": 1"), &last_day, FEED_DECREASING_TOTALS,
                  "confirmed 1 < 10423");
}

static void test_validate_buffers(void **state)
{
    /* len counts, not the NUL: the document ends before the trailing garbage */
    const char *doc = DOC(TODAY, FIGS) "garbage";
    size_t len = strlen(doc) - strlen("garbage");
    feed_figures_t out;
    char small[8], err[128];

    (void)state;
    assert_int_equal(feed_validate(doc, len, TODAY, NULL, &out, err, sizeof(err)), FEED_OK);
    assert_int_equal(out.deaths, 205);
    assert_int_equal(feed_validate(doc, len + 1, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_INVALID_DATA);
    /* a small err is cut, never overrun */
    memset(small, 'X', sizeof(small));
    assert_int_equal(feed_validate(doc, len, YESTERDAY "x", NULL, &out, small,
                                   sizeof(small) - 1), FEED_INVALID_DATA);
    assert_int_equal(small[sizeof(small) - 1], 'X');
    assert_int_equal(strlen(small), sizeof(small) - 2);
    /* a bad "today" is the caller's bug: refused, not a crash */
    assert_int_equal(feed_validate(doc, len, "today", NULL, &out, err, sizeof(err)),
                     FEED_INVALID_DATA);
    assert_non_null(strstr(err, "today"));
    assert_int_equal(feed_validate(NULL, 0, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_INVALID_DATA);
}

/* ---------------------------------------------------------------------------------- */
/* feed_fetch against a server in this process */

/* feed_fetch of a dozen-json source at url. */
static feed_reason_t fetch_json(CURL *curl, const char *url, long timeout_ms,
                                const char *today, const feed_figures_t *last,
                                feed_figures_t *out, char *err, size_t err_size)
{
    feed_source_t src = { url, FEED_FORMAT_DOZEN_JSON, NULL };
    feed_figures_t prev;
    int has_prev = 7;
    feed_reason_t r = feed_fetch(curl, &src, timeout_ms, today, last, out, &prev, &has_prev,
                                 err, err_size);

    assert_int_equal(has_prev, 0);   /* the JSON feed has no previous day */
    return r;
}

static const http_route_t routes[] = {
    { "GET", "/daily", stub_handler },
};

static int start_server(void **state)
{
    (void)state;
    return stub_start(routes, 1);
}

static int stop_server(void **state)
{
    (void)state;
    stub_stop();
    return 0;
}

static const char good_doc[] = DOC(TODAY, FIGS);

static void test_fetch_ok_and_reasons(void **state)
{
    CURL *curl = curl_easy_init();
    feed_figures_t out;
    char u[128], err[256];

    (void)state;
    assert_non_null(curl);
    stub_set(200, good_doc, 0, 0, NULL);
    memset(&out, 0, sizeof(out));
    assert_int_equal(fetch_json(curl, stub_url("/daily", u, sizeof(u)), 5000, TODAY, &last_day,
                                &out, err, sizeof(err)), FEED_OK);
    assert_string_equal(out.date, TODAY);
    assert_int_equal(out.confirmed, 10523);
    assert_int_equal(out.deaths, 205);

    /* the same handle again: the document is validated as feed_validate does */
    stub_set(200, DOC(YESTERDAY, FIGS), 0, 0, NULL);
    assert_int_equal(fetch_json(curl, u, 5000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_NOT_PUBLISHED_YET);
    assert_string_equal(err, "date " YESTERDAY " is yesterday");
    stub_set(200, DOC(TODAY, ", \"confirmed\": 0, \"recovered\": 0, "
                              "\"in_treatment\": 0, \"deaths\": 0"), 0, 0, NULL);
    assert_int_equal(fetch_json(curl, u, 5000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_ALL_ZERO);
    stub_set(200, DOC(TODAY, ", \"confirmed\": 10323, \"recovered\": 6973, "
                              "\"in_treatment\": 3246, \"deaths\": 204"), 0, 0, NULL);
    assert_int_equal(fetch_json(curl, u, 5000, TODAY, &last_day, &out, err, sizeof(err)),
                     FEED_DECREASING_TOTALS);
    stub_set(200, "[1, 2]", 0, 0, NULL);
    assert_int_equal(fetch_json(curl, u, 5000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_INVALID_DATA);
    /* any 2xx is an answer */
    stub_set(203, good_doc, 0, 0, NULL);
    assert_int_equal(fetch_json(curl, u, 5000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_OK);
    curl_easy_cleanup(curl);
}

static void test_fetch_http_errors(void **state)
{
    CURL *curl = curl_easy_init();
    feed_figures_t out;
    char u[128], target[128], err[256];

    (void)state;
    assert_non_null(curl);
    /* non-2xx: unreachable, whatever the body says */
    stub_set(503, good_doc, 0, 0, NULL);
    assert_int_equal(fetch_json(curl, stub_url("/daily", u, sizeof(u)), 5000, TODAY, NULL, &out,
                                err, sizeof(err)), FEED_SOURCE_UNREACHABLE);
    assert_string_equal(err, "HTTP 503");
    stub_set(500, good_doc, 0, 0, NULL);
    assert_int_equal(fetch_json(curl, u, 5000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_SOURCE_UNREACHABLE);
    assert_string_equal(err, "HTTP 500");
    assert_int_equal(fetch_json(curl, stub_url("/nope", u, sizeof(u)), 5000, TODAY, NULL, &out,
                                err, sizeof(err)), FEED_SOURCE_UNREACHABLE);
    assert_string_equal(err, "HTTP 404");

    /* a redirect is not followed, even to a good document */
    stub_set(302, good_doc, 0, 0, stub_url("/daily", target, sizeof(target)));
    assert_int_equal(fetch_json(curl, stub_url("/daily", u, sizeof(u)), 5000, TODAY, NULL, &out,
                                err, sizeof(err)), FEED_SOURCE_UNREACHABLE);
    assert_string_equal(err, "HTTP 302");

    /* a body over FEED_BODY_MAX: the transfer is stopped, and it is invalid */
    stub_set(200, good_doc, FEED_BODY_MAX, 0, NULL);
    assert_int_equal(fetch_json(curl, u, 5000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_INVALID_DATA);
    assert_non_null(strstr(err, "longer than 65536 bytes"));
    /* just under it is fine */
    stub_set(200, good_doc, FEED_BODY_MAX - 200, 0, NULL);
    assert_int_equal(fetch_json(curl, u, 5000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_OK);
    /* a big error body is still the HTTP error */
    stub_set(503, good_doc, 2 * FEED_BODY_MAX, 0, NULL);
    assert_int_equal(fetch_json(curl, u, 5000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_SOURCE_UNREACHABLE);
    assert_string_equal(err, "HTTP 503");
    curl_easy_cleanup(curl);
}

static void test_fetch_transport_errors(void **state)
{
    CURL *curl = curl_easy_init();
    feed_figures_t out;
    char u[128], err[256];
    int64_t t0;

    (void)state;
    assert_non_null(curl);
    /* a timeout: the whole request is bounded */
    stub_set(200, good_doc, 0, 1500, NULL);
    t0 = util_mono_ms();
    assert_int_equal(fetch_json(curl, stub_url("/daily", u, sizeof(u)), 200, TODAY, NULL, &out,
                                err, sizeof(err)), FEED_SOURCE_UNREACHABLE);
    assert_true(util_mono_ms() - t0 < 1200);
    assert_non_null(strstr(err, "timed out"));

    /* refused: a port that was just given up */
    assert_int_equal(stub_refused_url("/daily", u, sizeof(u)), 0);
    assert_int_equal(fetch_json(curl, u, 2000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_SOURCE_UNREACHABLE);
    assert_true(strstr(err, "onnect") != NULL);

    /* only http and https */
    assert_int_equal(fetch_json(curl, "file:///etc/hostname", 2000, TODAY, NULL, &out, err,
                                sizeof(err)), FEED_SOURCE_UNREACHABLE);
    assert_non_null(strstr(err, "rotocol"));
    assert_int_equal(fetch_json(curl, "ftp://127.0.0.1/daily", 2000, TODAY, NULL, &out, err,
                                sizeof(err)), FEED_SOURCE_UNREACHABLE);
    assert_non_null(strstr(err, "rotocol"));
    assert_int_equal(fetch_json(curl, "not a url", 2000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_SOURCE_UNREACHABLE);

    /* the caller's mistakes */
    assert_int_equal(fetch_json(NULL, stub_url("/daily", u, sizeof(u)), 2000, TODAY, NULL, &out,
                                err, sizeof(err)), FEED_SOURCE_UNREACHABLE);
    assert_int_equal(fetch_json(curl, NULL, 2000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_SOURCE_UNREACHABLE);
    assert_int_equal(fetch_json(curl, u, 0, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_SOURCE_UNREACHABLE);

    /* and the handle still works after all that */
    stub_set(200, good_doc, 0, 0, NULL);
    assert_int_equal(fetch_json(curl, u, 5000, TODAY, NULL, &out, err, sizeof(err)),
                     FEED_OK);
    curl_easy_cleanup(curl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reason_codes_and_words),
        cmocka_unit_test(test_date_valid),
        cmocka_unit_test(test_date_before),
        cmocka_unit_test(test_validate_ok),
        cmocka_unit_test(test_validate_not_json),
        cmocka_unit_test(test_validate_date),
        cmocka_unit_test(test_validate_figures),
        cmocka_unit_test(test_validate_decreasing),
        cmocka_unit_test(test_validate_order),
        cmocka_unit_test(test_validate_buffers),
    };
    const struct CMUnitTest fetch_tests[] = {
        cmocka_unit_test(test_fetch_ok_and_reasons),
        cmocka_unit_test(test_fetch_http_errors),
        cmocka_unit_test(test_fetch_transport_errors),
    };
    int failed;

    setenv("LOG_LEVEL", "error", 0);    /* the test server's request lines are noise */
    log_init("test_notifier_feed");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests_name("feed", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("feed_fetch", fetch_tests, start_server,
                                          stop_server);
    curl_global_cleanup();
    return failed;
}
