/* feed: the daily figures from the open-data feed: fetching them and deciding whether they
 * are fit to send, with a reason code for every way they are not. */
#ifndef DOZEN_NOTIFIER_FEED_H
#define DOZEN_NOTIFIER_FEED_H

#include <stddef.h>

#include <curl/curl.h>

#include "strbuf.h"

#define FEED_BODY_MAX (64 * 1024)    /* a longer answer is invalid_data */
#define FEED_FIGURE_MAX 1000000000000000LL /* 10^15: larger is invalid_data */

typedef enum feed_reason {
    FEED_OK = 0,
    FEED_SOURCE_UNREACHABLE,  /* refused, timeout, non-2xx */
    FEED_NOT_PUBLISHED_YET,   /* the date is the day before today */
    FEED_STALE_DATE,          /* any other date that is not today */
    FEED_ALL_ZERO,            /* all four figures are 0 */
    FEED_INVALID_DATA,        /* not a JSON object (also a 2xx body over FEED_BODY_MAX);
                               * date missing or not YYYY-MM-DD; a figure missing,
                               * negative, not an integer or above FEED_FIGURE_MAX */
    FEED_DECREASING_TOTALS,   /* confirmed, recovered or deaths below the day before's
                               * (the feed's own item for it, else the last stored day) */
    FEED_SOURCE_REFUSED       /* the source refused our request (datagokr: a service key
                               * not registered, expired, over its quota ...) */
} feed_reason_t;

/* What the source speaks (BULLETIN_SOURCE_FORMAT). */
typedef enum feed_format {
    FEED_FORMAT_DOZEN_JSON = 0,   /* "dozen-json": {"date", "confirmed", ...} */
    FEED_FORMAT_DATAGOKR          /* "datagokr-covid19": the public data portal's
                                   * getCovid19InfStateJson (XML, despite the name) */
} feed_format_t;

/* One source of figures. Borrowed pointers. */
typedef struct feed_source {
    const char *url;              /* as configured: never holds the key */
    feed_format_t format;
    const char *key;              /* datagokr's serviceKey, a secret; NULL or "": none */
} feed_source_t;

typedef struct feed_figures {
    char date[11];            /* "YYYY-MM-DD" */
    long long confirmed;      /* cumulative */
    long long recovered;      /* cumulative */
    long long in_treatment;
    long long deaths;         /* cumulative */
} feed_figures_t;

/* "dozen-json" or "datagokr-covid19"; and back (0, or -1 for any other name). */
const char *feed_format_name(feed_format_t f);
int feed_format_parse(const char *name, feed_format_t *out);

/* Before any thread: libxml2's global state (xmlInitParser). feed_global_cleanup after the
 * last thread. */
void feed_global_init(void);
void feed_global_cleanup(void);

/* The reason's code as the API and the retry headers show it: "source_unreachable", ...;
 * "ok" for FEED_OK. */
const char *feed_reason_code(feed_reason_t r);

/* Words for people, for the "unavailable today" SMS: code is a reason code (from the
 * database or a retry header); an unknown or NULL code gives "the figures could not be
 * checked". Never longer than 60 characters. */
const char *feed_reason_words(const char *code);

/* Writes the day before date ("YYYY-MM-DD", a valid Gregorian date) into out. Returns 0,
 * or -1 if date is not a valid date. */
int feed_date_before(const char *date, char out[11]);

/* Returns 1 if s is exactly "YYYY-MM-DD" and a real Gregorian date (years 1970..9999). */
int feed_date_valid(const char *s);

/* Decides whether body (len bytes, not necessarily NUL-terminated) is a valid document for
 * today ("YYYY-MM-DD"), in the order: JSON object; "date" present and valid; date equal to
 * the day before today (FEED_NOT_PUBLISHED_YET) or otherwise not today (FEED_STALE_DATE);
 * the four figures; all zero; and, when last is not NULL (the last stored day's figures),
 * a cumulative figure below last's. Returns FEED_OK and fills *out, or the reason with a
 * short explanation for people in err ("date 2026-11-21 is yesterday", "field 'deaths' is
 * missing", "confirmed 10323 < 10423 on 2026-11-21"). Pure: no I/O. */
feed_reason_t feed_validate(const char *body, size_t len, const char *today,
                            const feed_figures_t *last, feed_figures_t *out,
                            char *err, size_t err_size);

/* Decides whether body (len bytes) is a datagokr-covid19 answer fit for today
 * ("YYYY-MM-DD"), parsed with libxml2 (no network, no DTD, no entities). In order: an
 * OpenAPI_ServiceResponse envelope is FEED_SOURCE_REFUSED with the portal's returnAuthMsg
 * and returnReasonCode in err; not XML or no response/header/resultCode is
 * FEED_INVALID_DATA; resultCode not "00" maps as the portal's codes say (03 no data:
 * FEED_NOT_PUBLISHED_YET; 10..33 refused: FEED_SOURCE_REFUSED; else
 * FEED_SOURCE_UNREACHABLE); an item's stateDt, decideCnt, deathCnt, clearCnt or careCnt
 * missing, repeated or not a number is FEED_INVALID_DATA; the newest item (the latest
 * stateDt, the first of them in document order) missing or yesterday's is
 * FEED_NOT_PUBLISHED_YET, any other day but today FEED_STALE_DATE; then all zero, and a
 * cumulative figure below the feed's own item for yesterday or below last (may be NULL).
 * Returns FEED_OK with *out and, when prev is not NULL, *prev = the feed's item for
 * yesterday with *has_prev = 1 (else 0). Pure: no I/O. */
feed_reason_t feed_validate_datagokr(const char *body, size_t len, const char *today,
                                     const feed_figures_t *last, feed_figures_t *out,
                                     feed_figures_t *prev, int *has_prev,
                                     char *err, size_t err_size);

/* The URL feed_fetch GETs for src and today: src->url as is for dozen-json; for datagokr
 * src->url + "?serviceKey=<key, %-escaped unless it holds a '%' already (the portal's
 * "encoding" key)>&pageNo=1&numOfRows=10&startCreateDt=<yesterday>&endCreateDt=<today>"
 * (YYYYMMDD; '&' instead of '?' when src->url has a query). The result holds the secret:
 * never log it. Returns 0 with url filled (the caller releases it), or -1 with err. */
int feed_request_url(const feed_source_t *src, const char *today, strbuf_t *url,
                     char *err, size_t err_size);

/* GETs src's URL (feed_request_url) with curl (a handle the caller owns and reuses; its
 * options are reset here), at most timeout_ms in all, then validates the answer as
 * src->format says. Transport failures, timeouts and non-2xx answers are
 * FEED_SOURCE_UNREACHABLE with err saying which ("HTTP 503", "Timeout was reached"), but a
 * datagokr refusal envelope is FEED_SOURCE_REFUSED whatever the status. prev and has_prev
 * as feed_validate_datagokr (dozen-json never has a previous day: *has_prev = 0). err never
 * holds the key. */
feed_reason_t feed_fetch(CURL *curl, const feed_source_t *src, long timeout_ms,
                         const char *today, const feed_figures_t *last, feed_figures_t *out,
                         feed_figures_t *prev, int *has_prev, char *err, size_t err_size);

#endif
