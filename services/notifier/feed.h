/* feed: the daily figures from the open-data feed: fetching them and deciding whether they
 * are fit to send, with a reason code for every way they are not. */
#ifndef DOZEN_NOTIFIER_FEED_H
#define DOZEN_NOTIFIER_FEED_H

#include <stddef.h>

#include <curl/curl.h>

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
    FEED_DECREASING_TOTALS    /* confirmed, recovered or deaths below the last stored day */
} feed_reason_t;

typedef struct feed_figures {
    char date[11];            /* "YYYY-MM-DD" */
    long long confirmed;      /* cumulative */
    long long recovered;      /* cumulative */
    long long in_treatment;
    long long deaths;         /* cumulative */
} feed_figures_t;

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

/* GETs url with curl (a handle the caller owns and reuses; its options are reset here),
 * at most timeout_ms in all, then feed_validate. Transport failures, timeouts and non-2xx
 * answers are FEED_SOURCE_UNREACHABLE with err saying which ("HTTP 503", "Timeout was
 * reached"). */
feed_reason_t feed_fetch(CURL *curl, const char *url, long timeout_ms, const char *today,
                         const feed_figures_t *last, feed_figures_t *out,
                         char *err, size_t err_size);

#endif
