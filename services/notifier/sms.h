/* sms: the notifier's client of a Twilio-compatible Messages API: one send, and the
 * question "did this message already go out?" asked after an uncertain send. */
#ifndef DOZEN_NOTIFIER_SMS_H
#define DOZEN_NOTIFIER_SMS_H

#include <stddef.h>

#define SMS_SID_MAX 64        /* bytes of a message SID kept, with the NUL */

/* Where and how to send; strings are borrowed and must outlive every client. */
typedef struct sms_config {
    const char *gateway_url;  /* "http://127.0.0.1:9103" or "https://api.twilio.com" */
    const char *account_sid;
    const char *auth_token;
    const char *from;
    long timeout_ms;          /* one request, in all */
} sms_config_t;

/* One client per thread: it owns a curl handle that keeps its connection alive. */
typedef struct sms_client sms_client_t;

/* Returns a new client the caller frees with sms_client_free, or NULL with errstr. */
sms_client_t *sms_client_new(const sms_config_t *cfg, char *errstr, size_t errstr_size);
void sms_client_free(sms_client_t *c);  /* accepts NULL */

typedef enum sms_result {
    SMS_SENT,       /* 2xx with a sid: the gateway took it */
    SMS_RETRY,      /* certainly not taken, may pass later: connection refused or could not
                     * resolve/connect, 429, 5xx */
    SMS_UNCERTAIN,  /* the request may have reached the gateway: timeout after connecting,
                     * empty reply, connection reset, a 2xx without a readable sid */
    SMS_REJECTED,   /* 4xx other than 429: sending it again cannot help (bad number,
                     * credentials) */
    SMS_THROTTLED   /* 429: certainly not taken; try again after its Retry-After */
} sms_result_t;

#define SMS_FIND_MAX 8          /* candidate SIDs sms_find reports */
#define SMS_FIND_PAGES 5        /* list pages sms_find reads at most */

/* POSTs {gateway_url}/2010-04-01/Accounts/{sid}/Messages.json with To, From, Body and,
 * when status_callback is not NULL, StatusCallback (form-encoded, HTTP Basic auth). On
 * SMS_SENT sid receives the message SID; on SMS_THROTTLED *retry_after_ms the answer's
 * Retry-After (1000 when it had none). err always says what happened in words fit for a
 * log (never the phone number): "HTTP 500: Internal Server Error (20500)", "Operation
 * timed out after 2000 milliseconds". */
sms_result_t sms_send(sms_client_t *c, const char *to, const char *body,
                      const char *status_callback, char *sid, size_t sid_size,
                      long long *retry_after_ms, char *err, size_t err_size);

/*
 * After an uncertain send: the messages the gateway holds To `to` From this client's
 * sender with exactly this Body, created at or after since_ms (ms since the epoch, to the
 * second: Twilio's date_created has no finer grain). Twilio's list is asked without a
 * DateSent filter (a queued message has no date_sent and would not be found), newest
 * first, To and From filtered, and read page after page until a message created before
 * since_ms (then the answer is complete) or SMS_FIND_PAGES pages. Returns the number of
 * SIDs written to sids (0..SMS_FIND_MAX: 0 means certainly none), or -1 with err when the
 * gateway could not tell (an error, an unreadable date, more pages than read, more
 * candidates than SMS_FIND_MAX).
 */
int sms_find(sms_client_t *c, const char *to, const char *body, long long since_ms,
             char (*sids)[SMS_SID_MAX], char *err, size_t err_size);

/* Reads a Twilio date ("Tue, 07 Jan 2025 10:11:12 +0000", RFC 2822 with a numeric zone)
 * into ms since the epoch. Returns 0, or -1. */
int sms_date_parse(const char *s, long long *ms);

#endif
