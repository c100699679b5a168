/* sms-gateway: a stand-in for Twilio's Messages API. Private header; prototypes grouped by
 * source file. */
#ifndef DOZEN_SMS_GATEWAY_H
#define DOZEN_SMS_GATEWAY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "form.h"
#include "http.h"
#include "phone.h"
#include "standin.h"

#define SG_SERVICE "sms-gateway"

#define SG_API_VERSION      "2010-04-01"
#define SG_SID_LEN          34          /* "SM" + 32 hex digits, without the NUL */
#define SG_BODY_MAX_CHARS   1600        /* characters (code points), as Twilio */
#define SG_ACCOUNT_SID_MAX  64
#define SG_AUTH_TOKEN_MAX   128
#define SG_MESSAGES_MAX     100000      /* messages kept for GET /messages */
#define SG_THROTTLES_MAX    1000        /* 429s kept for GET /throttles */
#define SG_RETRY_AFTER_MAX  3600        /* seconds: the retry_after knob's highest */
#define SG_TRACEPARENT_MAX  64          /* a send's traceparent kept, with its NUL (a W3C
                                         * version 00 value is 55 bytes) */
#define SG_TEXT_BYTES_MAX   (64L * 1024 * 1024) /* and at most this much From + Body text */
#define SG_SEED_MAX         9007199254740991LL  /* 2^53 - 1: exact in any JSON reader */
#define SG_PAGE_SIZE_DEFAULT 50         /* the list's PageSize, as Twilio */
#define SG_PAGE_SIZE_MAX    1000
#define SG_PAGE_MAX         1000000LL   /* the list's Page */
#define SG_DATE_LEN         10          /* "YYYY-MM-DD", without the NUL */
#define SG_URI_MAX          512         /* bytes of a list page URI, with the NUL */

/* Twilio's error codes, as its API answers them. */
#define SG_CODE_AUTH        20003       /* "Authenticate" (401) */
#define SG_CODE_INTERNAL    20500       /* "Internal Server Error" */
#define SG_CODE_BAD_PARAM   21211       /* Twilio's "Invalid 'To' Phone Number"; here also
                                         * for a missing or repeated To, From or Body, and
                                         * for any bad query parameter of the list */
#define SG_CODE_BAD_FROM    21212       /* "Invalid 'From' Number" */
#define SG_CODE_CALLBACK    21609       /* "Invalid StatusCallback" */
#define SG_CODE_TOO_MANY    20429       /* "Too Many Requests" (429) */
#define SG_CALLBACK_MAX     512         /* bytes of a StatusCallback URL */
#define SG_CODE_OPTED_OUT   21610       /* "Attempt to send to unsubscribed recipient" */
#define SG_CODE_TOO_LONG    21617       /* "The concatenated message body exceeds the 1600
                                         * character limit" */

/* The knobs: set from the environment at start, changed by POST /admin/mode. */
struct sg_mode {
    long long fail_next;  /* answer 500 to this many more sends */
    long long fail_rate;  /* 0..100: percentage of sends answered 500, drawn from the PRNG */
    long long seed;       /* the PRNG's seed; setting it restarts the sequence */
    long long slow_ms;    /* sleep before answering each send */
    int down;             /* close send connections without an answer */
    long long rate;       /* sends a second accepted (0: no limit); beyond it 429 with
                           * Retry-After, as Twilio's rate limit */
    long long retry_after; /* seconds a 429's Retry-After says (0: until the rate has room,
                            * rounded up to a second) */
    long long queue_ms;   /* a message stays "queued" (date_sent null) this long */
    long long deliver_ms; /* then "sent" this long, then "delivered" (0: stays "sent") */
    long long hang_ms;    /* after a send is accepted, the answer waits this long (a
                           * client with a shorter timeout does not know it went) */
    char opted_out[24];   /* "" or an E.164 number that replied STOP: a send to it is
                           * answered 400 with Twilio's code 21610 */
    int callback_twice;   /* post each status callback twice: Twilio's callbacks are
                           * at least once, so a receiver sees repeats */
};

struct config {
    const char *http_bind;
    int port;
    const char *account_sid;
    const char *auth_token;
    struct sg_mode mode;  /* also what POST /admin/reset returns to */
};

/* What became of one POST .../Messages.json; the names are GET /admin/stats's keys. */
enum sg_outcome {
    SG_ACCEPTED,  /* 201 */
    SG_FAILED,    /* 500: fail_next or fail_rate */
    SG_REFUSED,   /* down: closed without an answer */
    SG_REJECTED,  /* 400 or 401 */
    SG_THROTTLED  /* 429: over the rate */
};
#define SG_NOUTCOMES 5

/* A send that passed validation; the strings are borrowed from the form. */
struct sg_send {
    const char *to;
    const char *from;
    const char *body;
    size_t body_chars;    /* Unicode code points */
    const char *status_callback;  /* StatusCallback, or NULL */
    const char *traceparent;      /* the request's traceparent header, or NULL (kept and
                                   * shown by GET /messages: what the sender propagated) */
};

/* The query parameters of a list (GET .../Messages.json) as given; NULL when absent. */
struct sg_list_args {
    const char *to;             /* "To" */
    const char *from;           /* "From" */
    const char *date_sent;      /* "DateSent" */
    const char *date_sent_ge;   /* "DateSent>" (from "DateSent>=...") */
    const char *date_sent_le;   /* "DateSent<" (from "DateSent<=...") */
    const char *page_size;      /* "PageSize" */
    const char *page;           /* "Page" */
    const char *page_token;     /* "PageToken" */
};

/* A list request, checked. The strings are "" when the parameter was absent. */
struct sg_list_query {
    char to[PHONE_MAX + 1];                /* only messages to this number */
    char from[PHONE_MAX + 1];              /* only messages from this sender */
    char date_sent[SG_DATE_LEN + 1];       /* the three date filters as given */
    char date_sent_ge[SG_DATE_LEN + 1];
    char date_sent_le[SG_DATE_LEN + 1];
    int64_t from_day, until_day;           /* UTC days since the epoch the filters leave,
                                            * both ends included (INT64_MIN/MAX: open) */
    long long page_size;                   /* 1..SG_PAGE_SIZE_MAX */
    long long page;                        /* 0..SG_PAGE_MAX */
    char after_sid[SG_SID_LEN + 1];        /* PageToken "PA<sid>": the page starts after
                                            * this message; "" from the newest */
};

typedef struct sg_state sg_state_t;

/* Everything the HTTP handlers reach through their ctx. */
struct gateway {
    standin_t *standin;   /* first, for the admin routes (standin.h); borrowed from state */
    struct config cfg;
    sg_state_t *state;
};

/* message.c: checks of a send and of its credentials (pure functions) */

/* Counts the code points of s, which must be UTF-8 (no overlong forms, surrogates or
 * values above U+10FFFF). Returns 0 and *nchars, or -1 for invalid UTF-8. */
int sg_utf8_chars(const char *s, size_t *nchars);

/* The number of SMS segments a body needs: GSM-7 when it is all printable ASCII (160 in
 * one, 153 a part when split), else UCS-2 (70, 67 a part). An approximation: Twilio also
 * counts a few non-ASCII GSM characters and the extension table. */
int sg_segments(const char *body, size_t body_chars);

/* Decodes an "Authorization: Basic <base64 of user:password>" header into user and pass
 * (NUL-terminated; the user must not contain ':'). Returns 0, or -1 when the header is
 * absent, not Basic, not valid base64, has no ':', holds a NUL or a control character,
 * or does not fit. */
int sg_basic_auth_parse(const char *header, char *user, size_t user_size, char *pass,
                        size_t pass_size);

/* Validates To, From and Body of a form. Returns 0 and fills out (borrowing from form), or
 * -1 with Twilio's error *code and a message for the client in errstr. */
int sg_send_check(const form_t *form, struct sg_send *out, int *code, char *errstr,
                  size_t errstr_size);

/* Writes a new message SID, "SM" and 32 random hex digits, into out (SG_SID_LEN + 1
 * bytes). Returns 0, or -1 if the kernel's random source failed. */
int sg_sid_new(char *out);

/* Formats ms-since-epoch as Twilio's dates are ("Tue, 07 Jan 2025 10:11:12 +0000"). Returns
 * 0, or -1 when out (at least 32 bytes) is too small. */
int sg_rfc2822(int64_t epoch_ms, char *out, size_t out_size);

/* Twilio's Message resource of a message created at at_ms (the strings are copied), with
 * status ("queued", "sent", "delivered") and date_sent sent_ms (null when below 0: a
 * queued message has none). A new reference, or NULL when out of memory. */
json_t *sg_message_json(const char *account_sid, const char *sid, const char *to,
                        const char *from, const char *body, int64_t at_ms,
                        const char *status, int64_t sent_ms);

/* Returns 1 if url is fit for a StatusCallback: http:// or https://, at most
 * SG_CALLBACK_MAX bytes of printable ASCII without spaces. */
int sg_callback_ok(const char *url);

/* Reads s, exactly "YYYY-MM-DD" and a real date of years 1970..9999, into the days since
 * 1970-01-01. Returns 0, or -1. */
int sg_date_days(const char *s, int64_t *days);

/* The UTC day (days since 1970-01-01) of ms-since-epoch. */
int64_t sg_day_of_ms(int64_t epoch_ms);

/* Checks the query parameters of a list: To E.164 (a leading space, an unescaped '+'
 * decoded, counts as the '+'), the dates YYYY-MM-DD, PageSize 1..SG_PAGE_SIZE_MAX (default
 * SG_PAGE_SIZE_DEFAULT), Page 0..SG_PAGE_MAX, PageToken "PA" and a message SID. Returns 0
 * and fills out, or -1 with a message for the client in errstr. */
int sg_list_check(const struct sg_list_args *a, struct sg_list_query *out, char *errstr,
                  size_t errstr_size);

/* Writes the URI of page `page` of the list q asks for into out (SG_URI_MAX bytes), as
 * Twilio writes them: "/2010-04-01/Accounts/{account}/Messages.json?To=%2B8210...&
 * DateSent%3E=...&PageSize=50&Page=1&PageToken=PASM..."; the PageToken only when after_sid
 * is neither NULL nor "". Returns 0, or -1 when it does not fit. */
int sg_list_uri(const char *account_sid, const struct sg_list_query *q, long long page,
                const char *after_sid, char *out, size_t out_size);

/* state.c: the mode, the failure decision, the messages and the counts */

/* The next number of a SplitMix64 sequence whose state is *s. */
uint64_t sg_prng_next(uint64_t *s);

/* The mode's knobs (fail_next, fail_rate, seed, down, slow_ms) for standin_mode_patch,
 * standin_mode_json and the admin routes; a "seed" patched restarts the PRNG. */
extern const struct standin_def sg_standin;

const char *sg_outcome_name(enum sg_outcome o);

/* Allocates the state with mode = defaults; its standin (the lock, the stop flag, the mode:
 * standin_sleep, standin_patch, ...) is state_standin's. standin_reset also restarts the
 * PRNG from the defaults' seed and forgets every message and count. Returns NULL with
 * errstr on failure. */
sg_state_t *state_new(const struct sg_mode *defaults, char *errstr, size_t errstr_size);

/* Frees the state, its standin and every message. Accepts NULL. */
void state_free(sg_state_t *st);

/* The state's standin, owned by the state. */
standin_t *state_standin(sg_state_t *st);

/* Counts an outcome that state_send does not see (refused, rejected). */
void state_count(sg_state_t *st, enum sg_outcome o);

/*
 * The end of a valid send, in one short critical section: fail_next (above 0: decremented)
 * or, failing that, a draw against fail_rate makes it SG_FAILED; else the message is kept
 * (the oldest dropped beyond SG_MESSAGES_MAX or SG_TEXT_BYTES_MAX) and it is SG_ACCEPTED.
 * The outcome is counted. Returns the outcome, or -1 when out of memory (nothing counted
 * or kept). The strings are copied.
 */
int state_send(sg_state_t *st, const char *sid, const struct sg_send *s, int64_t at_ms);

/* {"messages": [{"sid", "to", "from", "body", "at", "traceparent"}]}, oldest first, only
 * those to to when it is not NULL; traceparent is the send's header (at most
 * SG_TRACEPARENT_MAX - 1 bytes of it, anything but printable ASCII as '?') or null.
 * Returns a new reference, or NULL when out of memory. */
json_t *state_messages(sg_state_t *st, const char *to);

/*
 * Twilio's list: the accepted messages that q's To and dates match, newest first, as
 * sg_message_json(listed) for account_sid shows them. One page: q->page_size messages,
 * after skipping q->page * q->page_size matches or, with a q->after_sid, those older than
 * that message (none when it is no longer kept: every older one went before it). *more is
 * set to 1 when further matches follow the page, else 0. Returns a new array, or NULL
 * when out of memory.
 */
json_t *state_list(sg_state_t *st, const struct sg_list_query *q, const char *account_sid,
                   int *more);

/* {"accepted", "failed", "refused", "rejected", "throttled"}: a new reference, or NULL. */
json_t *state_stats(sg_state_t *st);

/* The rate: one send at now_ms, against mode.rate (a generic cell rate: one send every
 * 1/rate s, with one interval of slack). Returns 0 when it may go (the slot is taken), or
 * the seconds (1 or more) the client should wait: Retry-After (mode.retry_after when set).
 * Counts SG_THROTTLED and keeps the time and the Retry-After (GET /throttles) then. The
 * rate itself does not follow Retry-After: a client that comes back sooner may pass. */
long long state_throttle(sg_state_t *st, int64_t now_ms);

/* {"throttles": [{"at", "retry_after"}]}, oldest first: the last SG_THROTTLES_MAX 429s.
 * Returns a new reference, or NULL when out of memory. */
json_t *state_throttles(sg_state_t *st);

/* A status callback to post. */
struct sg_callback {
    char sid[SG_SID_LEN + 1];
    char to[PHONE_MAX + 1];
    char from[PHONE_MAX + 1];
    char status[16];
    char url[SG_CALLBACK_MAX + 1];
    int stage;              /* 1: sent, 2: delivered */
    int twice;              /* the callback_twice knob when it was taken: post it twice */
};

/* Up to max callbacks due at now_ms (a message with a StatusCallback whose status moved
 * past the last one posted), each marked posted. Returns how many were written to out. */
size_t state_callbacks_due(sg_state_t *st, int64_t now_ms, struct sg_callback *out,
                           size_t max);
/* Counts a callback posted (ok != 0) or not. */
void state_callback_count(sg_state_t *st, int ok);

/* callback.c: the thread that POSTs status callbacks */

struct sg_callbacks;
/* Starts the thread. NULL with errstr on failure. */
struct sg_callbacks *callbacks_start(sg_state_t *st, const char *account_sid,
                                     char *errstr, size_t errstr_size);
/* Joins the thread (after standin_stop) and frees it. Accepts NULL. */
void callbacks_stop(struct sg_callbacks *cb);

/* api.c: HTTP routes */

extern const http_route_t api_routes[];
extern const size_t api_nroutes;

#endif
