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
    SMS_REJECTED    /* 4xx other than 429: sending it again cannot help (bad number,
                     * credentials) */
} sms_result_t;

/* POSTs {gateway_url}/2010-04-01/Accounts/{sid}/Messages.json with To, From, Body
 * (form-encoded, HTTP Basic auth). On SMS_SENT sid receives the message SID. err always
 * says what happened in words fit for a log (never the phone number): "HTTP 500: Internal
 * Server Error (20500)", "Operation timed out after 2000 milliseconds". */
sms_result_t sms_send(sms_client_t *c, const char *to, const char *body,
                      char *sid, size_t sid_size, char *err, size_t err_size);

/* Asks the gateway whether a message To `to` with exactly this Body was accepted on or
 * after UTC date since ("YYYY-MM-DD"): GET .../Messages.json?To=..&DateSent>=since
 * (Twilio's list; the first page of up to 1000 is read). Returns 1 (sid filled), 0 when
 * there is none, or -1 with err when the gateway could not tell. */
int sms_find(sms_client_t *c, const char *to, const char *body, const char *since,
             char *sid, size_t sid_size, char *err, size_t err_size);

#endif
