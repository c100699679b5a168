/* Unit tests for services/notifier/feed_datagokr.c and feed_request_url: the data portal's
 * XML answer (every reason code, the refusal envelope, hostile XML) and the request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "feed.h"
#include "open_data.h"

#define TODAY "2026-11-22"

#define ITEM(dt, decide, death, clear, care)                                             \
    "<item><accDefRate>1.2</accDefRate><careCnt>" care "</careCnt><clearCnt>" clear      \
    "</clearCnt><createDt>2026-11-22 09:38:52.383</createDt><deathCnt>" death            \
    "</deathCnt><decideCnt>" decide "</decideCnt><examCnt>17000</examCnt><seq>800</seq>" \
    "<stateDt>" dt "</stateDt><stateTime>00:00</stateTime></item>"
#define ANSWER(items)                                                                    \
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><response><header>"    \
    "<resultCode>00</resultCode><resultMsg>NORMAL SERVICE.</resultMsg></header><body>"   \
    "<items>" items "</items><numOfRows>10</numOfRows><pageNo>1</pageNo>"                \
    "<totalCount>2</totalCount></body></response>"
#define TODAY_ITEM ITEM("20261122", "345116", "2858", "6973", "3246")
#define YESTERDAY_ITEM ITEM("20261121", "343445", "2849", "6900", "3300")

static feed_reason_t check(const char *body, const feed_figures_t *last, feed_figures_t *out,
                           feed_figures_t *prev, int *has_prev, char *err, size_t err_size)
{
    return feed_validate_datagokr(body, strlen(body), TODAY, last, out, prev, has_prev, err,
                                  err_size);
}

static void expect(const char *body, const feed_figures_t *last, feed_reason_t want,
                   const char *words)
{
    feed_figures_t out, prev;
    int has_prev = 7;
    char err[512];
    feed_reason_t got = check(body, last, &out, &prev, &has_prev, err, sizeof(err));

    if (got != want || (words != NULL && strstr(err, words) == NULL))
        fail_msg("got %s (%s), want %s with '%s'", feed_reason_code(got), err,
                 feed_reason_code(want), words != NULL ? words : "");
    if (want != FEED_OK)
        assert_int_equal(has_prev, 0);
}

static void test_ok_newest_first_with_yesterday(void **state)
{
    feed_figures_t out, prev;
    int has_prev = 0;
    char err[256];

    (void)state;
    assert_int_equal(check(ANSWER(TODAY_ITEM YESTERDAY_ITEM), NULL, &out, &prev, &has_prev,
                           err, sizeof(err)), FEED_OK);
    assert_string_equal(out.date, TODAY);
    assert_int_equal(out.confirmed, 345116);
    assert_int_equal(out.deaths, 2858);
    assert_int_equal(out.recovered, 6973);
    assert_int_equal(out.in_treatment, 3246);
    assert_int_equal(has_prev, 1);
    assert_string_equal(prev.date, "2026-11-21");
    assert_int_equal(prev.confirmed, 343445);
    assert_int_equal(prev.deaths, 2849);
    /* the order of the items does not matter; only today's: no previous day */
    assert_int_equal(check(ANSWER(YESTERDAY_ITEM TODAY_ITEM), NULL, &out, &prev, &has_prev,
                           err, sizeof(err)), FEED_OK);
    assert_int_equal(out.confirmed, 345116);
    assert_int_equal(check(ANSWER(TODAY_ITEM), NULL, &out, &prev, &has_prev, err,
                           sizeof(err)), FEED_OK);
    assert_int_equal(has_prev, 0);
    /* whitespace and CDATA around a figure are text like any other */
    assert_int_equal(check(ANSWER(ITEM("20261122", " <![CDATA[345116]]>\n", "2858", "1", "2")),
                           NULL, &out, NULL, NULL, err, sizeof(err)), FEED_OK);
    assert_int_equal(out.confirmed, 345116);
}

static void test_reasons(void **state)
{
    feed_figures_t last = { "2026-11-20", 345200, 0, 0, 0 };

    (void)state;
    /* no item for today */
    expect(ANSWER(YESTERDAY_ITEM), NULL, FEED_NOT_PUBLISHED_YET, "yesterday's (2026-11-21)");
    expect(ANSWER(""), NULL, FEED_NOT_PUBLISHED_YET, "no item");
    expect("<response><header><resultCode>00</resultCode></header><body><items/>"
           "</body></response>", NULL, FEED_NOT_PUBLISHED_YET, NULL);
    expect("<response><header><resultCode>03</resultCode><resultMsg>NODATA_ERROR</resultMsg>"
           "</header></response>", NULL, FEED_NOT_PUBLISHED_YET, "NODATA_ERROR");
    /* the newest item of another day */
    expect(ANSWER(ITEM("20261112", "1", "1", "1", "1")), NULL, FEED_STALE_DATE,
           "2026-11-12, not today");
    expect(ANSWER(ITEM("20261123", "1", "1", "1", "1")), NULL, FEED_STALE_DATE, NULL);
    /* zeros */
    expect(ANSWER(ITEM("20261122", "0", "0", "0", "0")), NULL, FEED_ALL_ZERO, NULL);
    /* totals below yesterday's: the feed's own, or the last stored day */
    expect(ANSWER(ITEM("20261122", "343000", "2858", "6973", "3246") YESTERDAY_ITEM), NULL,
           FEED_DECREASING_TOTALS, "confirmed 343000 < 343445 on 2026-11-21");
    expect(ANSWER(ITEM("20261122", "345116", "2800", "6973", "3246") YESTERDAY_ITEM), NULL,
           FEED_DECREASING_TOTALS, "deaths");
    expect(ANSWER(TODAY_ITEM), &last, FEED_DECREASING_TOTALS, "345116 < 345200 on 2026-11-20");
    /* in treatment may go down */
    expect(ANSWER(TODAY_ITEM ITEM("20261121", "343445", "2849", "6900", "9999")), NULL,
           FEED_OK, NULL);
    /* unparseable */
    expect("", NULL, FEED_INVALID_DATA, "empty");
    expect("{\"date\": \"2026-11-22\"}", NULL, FEED_INVALID_DATA, "not XML");
    expect("<response><header>", NULL, FEED_INVALID_DATA, "not XML");
    expect("<other/>", NULL, FEED_INVALID_DATA, "resultCode");
    expect("<response><body/></response>", NULL, FEED_INVALID_DATA, "resultCode");
    expect(ANSWER(ITEM("2026-11-22", "1", "1", "1", "1")), NULL, FEED_INVALID_DATA, "stateDt");
    expect(ANSWER(ITEM("20261131", "1", "1", "1", "1")), NULL, FEED_INVALID_DATA, "stateDt");
    expect(ANSWER(ITEM("20261122", "-1", "1", "1", "1")), NULL, FEED_INVALID_DATA,
           "'decideCnt' is not a non-negative integer");
    expect(ANSWER(ITEM("20261122", "1.5", "1", "1", "1")), NULL, FEED_INVALID_DATA, NULL);
    expect(ANSWER(ITEM("20261122", "", "1", "1", "1")), NULL, FEED_INVALID_DATA, NULL);
    expect(ANSWER(ITEM("20261122", "1000000000000001", "1", "1", "1")), NULL,
           FEED_INVALID_DATA, "10^15");
    expect(ANSWER(ITEM("20261122", "99999999999999999999", "1", "1", "1")), NULL,
           FEED_INVALID_DATA, NULL);
    expect(ANSWER("<item><stateDt>20261122</stateDt><decideCnt>1</decideCnt></item>"), NULL,
           FEED_INVALID_DATA, "no 'deathCnt'");
    expect(ANSWER("<item><stateDt>20261122</stateDt><decideCnt>1</decideCnt><decideCnt>2"
                  "</decideCnt><deathCnt>1</deathCnt><clearCnt>1</clearCnt><careCnt>1"
                  "</careCnt></item>"), NULL, FEED_INVALID_DATA, "more than one 'decideCnt'");
    /* a bad item anywhere spoils the answer: it is not the feed we know */
    expect(ANSWER(TODAY_ITEM ITEM("2026112", "1", "1", "1", "1")), NULL, FEED_INVALID_DATA,
           "item 2");
}

static void test_refused(void **state)
{
    (void)state;
    expect("<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg>"
           "<returnAuthMsg>SERVICE_KEY_IS_NOT_REGISTERED_ERROR</returnAuthMsg>"
           "<returnReasonCode>30</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>",
           NULL, FEED_SOURCE_REFUSED,
           "SERVICE_KEY_IS_NOT_REGISTERED_ERROR (reason code 30): SERVICE ERROR");
    expect("<OpenAPI_ServiceResponse/>", NULL, FEED_SOURCE_REFUSED, "no returnAuthMsg");
    /* the portal's words are outside text: made printable */
    expect("<OpenAPI_ServiceResponse><cmmMsgHeader><returnAuthMsg>a\"b\\c\xed\x99\x95"
           "</returnAuthMsg></cmmMsgHeader></OpenAPI_ServiceResponse>", NULL,
           FEED_SOURCE_REFUSED, "a?b?c???");
    /* resultCode in the normal envelope */
    expect("<response><header><resultCode>22</resultCode><resultMsg>LIMITED_NUMBER_OF_SERVICE"
           "_REQUESTS_EXCEEDS_ERROR</resultMsg></header></response>", NULL, FEED_SOURCE_REFUSED,
           "resultCode 22: LIMITED");
    expect("<response><header><resultCode>99</resultCode></header></response>", NULL,
           FEED_SOURCE_UNREACHABLE, "resultCode 99");
}

static void test_hostile_xml(void **state)
{
    (void)state;
    /* an external entity is never read, a document type is refused */
    expect("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
           "<response><header><resultCode>&x;</resultCode></header></response>", NULL,
           FEED_INVALID_DATA, "document type");
    expect("<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b "
           "\"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>"
           "<response><header><resultCode>&c;</resultCode></header></response>", NULL,
           FEED_INVALID_DATA, NULL);
    expect("<!DOCTYPE response SYSTEM \"http://127.0.0.1:1/x.dtd\"><response/>", NULL,
           FEED_INVALID_DATA, "document type");
    /* a length beyond FEED_BODY_MAX is not parsed */
    {
        static char big[FEED_BODY_MAX + 100];
        feed_figures_t out;
        char err[256];

        memset(big, ' ', sizeof(big));
        assert_int_equal(feed_validate_datagokr(big, sizeof(big), TODAY, NULL, &out, NULL,
                                                NULL, err, sizeof(err)), FEED_INVALID_DATA);
        /* a NUL inside is not XML either */
        assert_int_equal(feed_validate_datagokr("<response>\0</response>", 22, TODAY, NULL,
                                                &out, NULL, NULL, err, sizeof(err)),
                         FEED_INVALID_DATA);
    }
}

static void test_request_url(void **state)
{
    feed_source_t src = { "http://127.0.0.1:9102/getCovid19InfStateJson",
                          FEED_FORMAT_DATAGOKR, "ab+c/d==" };
    strbuf_t url;
    char err[128];

    (void)state;
    strbuf_init(&url, 4096);
    assert_int_equal(feed_request_url(&src, "2026-03-01", &url, err, sizeof(err)), 0);
    assert_string_equal(url.buf, "http://127.0.0.1:9102/getCovid19InfStateJson?serviceKey="
                                 "ab%2Bc%2Fd%3D%3D&pageNo=1&numOfRows=10&startCreateDt=20260228"
                                 "&endCreateDt=20260301");
    /* the portal's "encoding" key goes as it is */
    src.key = "ab%2Bc%2Fd%3D%3D";
    src.url = "https://apis.data.go.kr/x?a=b";
    assert_int_equal(feed_request_url(&src, "2026-01-01", &url, err, sizeof(err)), 0);
    assert_string_equal(url.buf, "https://apis.data.go.kr/x?a=b&serviceKey=ab%2Bc%2Fd%3D%3D"
                                 "&pageNo=1&numOfRows=10&startCreateDt=20251231"
                                 "&endCreateDt=20260101");
    /* the JSON feed: the URL as it is */
    src.format = FEED_FORMAT_DOZEN_JSON;
    src.url = "http://127.0.0.1:9102/daily";
    assert_int_equal(feed_request_url(&src, "2026-01-01", &url, err, sizeof(err)), 0);
    assert_string_equal(url.buf, "http://127.0.0.1:9102/daily");
    assert_int_equal(feed_request_url(&src, "2026-02-30", &url, err, sizeof(err)), -1);
    strbuf_release(&url);
}

static void test_formats(void **state)
{
    feed_format_t f;

    (void)state;
    assert_int_equal(feed_format_parse("datagokr-covid19", &f), 0);
    assert_int_equal(f, FEED_FORMAT_DATAGOKR);
    assert_int_equal(feed_format_parse("dozen-json", &f), 0);
    assert_int_equal(f, FEED_FORMAT_DOZEN_JSON);
    assert_int_equal(feed_format_parse("xml", &f), -1);
    assert_int_equal(feed_format_parse(NULL, &f), -1);
    assert_string_equal(feed_format_name(FEED_FORMAT_DATAGOKR), "datagokr-covid19");
    assert_string_equal(feed_reason_code(FEED_SOURCE_REFUSED), "source_refused");
}

/* The stand-in's XML (tools/open-data) read by the notifier: both sides of one contract. */
static feed_reason_t standin(enum od_kind kind, uint64_t seq, feed_figures_t *out,
                             feed_figures_t *prev, int *has_prev, char *err, size_t err_size)
{
    struct od_answer a;
    strbuf_t body;
    feed_reason_t r;

    memset(&a, 0, sizeof(a));
    a.served = kind;
    a.status = 200;
    a.invalid_seq = seq;
    a.figures = (struct od_figures){ 345116, 300000, 42258, 2858 };
    snprintf(a.date, sizeof(a.date), "%s", kind == OD_NOT_PUBLISHED ? "2026-11-21"
                                           : kind == OD_WRONG_DATE ? "2026-11-12" : TODAY);
    strbuf_init(&body, 0);
    assert_int_equal(od_daily_xml(&a, &body), 0);
    r = feed_validate_datagokr(body.buf, body.len, TODAY, NULL, out, prev, has_prev, err,
                               err_size);
    strbuf_release(&body);
    return r;
}

static void test_the_standin_speaks_the_same_contract(void **state)
{
    static const struct {
        enum od_kind kind;
        feed_reason_t want;
    } modes[] = {
        { OD_OK, FEED_OK }, { OD_NOT_PUBLISHED, FEED_NOT_PUBLISHED_YET },
        { OD_WRONG_DATE, FEED_STALE_DATE }, { OD_ALL_ZERO, FEED_ALL_ZERO },
        { OD_DECREASING, FEED_DECREASING_TOTALS }, { OD_REFUSED, FEED_SOURCE_REFUSED },
    };
    feed_figures_t out, prev;
    int has_prev = 0;
    char err[256];
    size_t i;
    uint64_t seq;

    (void)state;
    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        feed_reason_t got = standin(modes[i].kind, 0, &out, &prev, &has_prev, err,
                                    sizeof(err));

        if (got != modes[i].want)
            fail_msg("mode %s: %s (%s)", od_kind_name(modes[i].kind), feed_reason_code(got),
                     err);
    }
    for (seq = 0; seq < 4; seq++)
        assert_int_equal(standin(OD_INVALID, seq, &out, NULL, NULL, err, sizeof(err)),
                         FEED_INVALID_DATA);
    assert_int_equal(standin(OD_OK, 0, &out, &prev, &has_prev, err, sizeof(err)), FEED_OK);
    assert_int_equal(out.confirmed, 345116);
    assert_int_equal(has_prev, 1);
    assert_int_equal(out.confirmed - prev.confirmed, OD_DAILY_CONFIRMED);
    assert_int_equal(out.deaths - prev.deaths, OD_DAILY_DEATHS);
    assert_int_equal(out.recovered - prev.recovered, OD_DAILY_RECOVERED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_newest_first_with_yesterday),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_hostile_xml),
        cmocka_unit_test(test_request_url),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_the_standin_speaks_the_same_contract),
    };
    int failed;

    feed_global_init();
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    feed_global_cleanup();
    return failed;
}
