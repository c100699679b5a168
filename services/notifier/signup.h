/* signup: SMS sign-up with double opt-in on a public page (issue 16): a number gets a code
 * by SMS and subscribes or unsubscribes only with it; a STOP reply (Twilio's inbound-message
 * webhook) or the provider's "opted out" error (21610) opts it out. No admin token here:
 * holding the number is the proof. Prototypes grouped by source file. */
#ifndef DOZEN_NOTIFIER_SIGNUP_H
#define DOZEN_NOTIFIER_SIGNUP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "form.h"
#include "http.h"

#define SIGNUP_CODE_DIGITS 6
#define SIGNUP_SALT_BYTES 16
#define SIGNUP_HASH_HEX 65          /* hex SHA-256 with the NUL */
#define SIGNUP_CLIENT_MAX 64        /* bytes of a client address, with the NUL */
#define SIGNUP_PRODUCTS_MAX 500     /* products GET /signup/products lists */
#define TWILIO_OPTED_OUT 21610      /* "Attempt to send to unsubscribed recipient" */

/* SIGNUP_* settings (signup_config_read). */
struct signup_config {
    long long code_ttl_ms;      /* SIGNUP_CODE_TTL (10m): how long a code is good for */
    long long max_attempts;     /* SIGNUP_MAX_ATTEMPTS (5): wrong codes before it is void */
    long long per_number;       /* SIGNUP_CODES_PER_NUMBER (5): codes per number per hour */
    long long per_client;       /* SIGNUP_PER_CLIENT (20): codes asked and wrong codes
                                 * per client address per hour */
    const char *webhook_url;    /* SIGNUP_WEBHOOK_URL: the URL the provider posts replies
                                 * to, as it signs it; "" (default): http://<the request's
                                 * Host><path>, right when nothing rewrites the request */
};

enum signup_purpose { SIGNUP_SUBSCRIBE = 0, SIGNUP_UNSUBSCRIBE };

/* signup.c: settings and the pure parts (unit-tested) */

/* Reads SIGNUP_* from the environment at start. Returns 0, or -1 with err naming the
 * variable and the bad value. */
int signup_config_read(struct signup_config *c, char *err, size_t err_size);

/* A new random code of SIGNUP_CODE_DIGITS digits, and a new salt (2 * SIGNUP_SALT_BYTES hex
 * digits). Return 0, or -1 when the kernel's random source failed. */
int signup_code_new(char *code, size_t code_size);
int signup_salt_new(char *salt, size_t salt_size);

/* Writes the hex SHA-256 of salt ":" code into out (SIGNUP_HASH_HEX bytes). */
void signup_code_hash(const char *salt, const char *code, char *out);

/* 1 if s is exactly SIGNUP_CODE_DIGITS ASCII digits. */
int signup_code_valid(const char *s);

/* 1 when an inbound SMS body asks to stop (Twilio's opt-out keywords: STOP, STOPALL,
 * UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT, REVOKE, STOP ALL; any case, blanks around). */
int signup_is_stop(const char *body);

/* 1 when sms_send's words for a refused send (SMS_REJECTED: "HTTP 400: <message>
 * (<code>)") carry Twilio's 21610, "the recipient opted out": the sender then opts the
 * subscriber out (signup_store_opt_out with "provider") instead of failing the delivery. */
int signup_is_opted_out_error(const char *why);

/* Twilio's X-Twilio-Signature of a webhook request: base64(HMAC-SHA1(auth_token, url
 * followed by every form parameter's name and value, sorted by name)), form borrowed.
 * Writes it into out (at least 29 bytes). Returns 0, or -1. */
int signup_twilio_signature(const char *auth_token, const char *url, const form_t *form,
                            char *out, size_t out_size);

/* 1 when a and b are equal strings, compared in time independent of where they differ. */
int signup_equal(const char *a, const char *b);

/* What a typed code meets (the stored row, if any, and the time). */
typedef enum signup_verdict {
    SIGNUP_OK = 0,       /* the right code, in time */
    SIGNUP_NO_CODE,      /* none asked for, or it expired: ask for a new one */
    SIGNUP_LOCKED,       /* too many wrong codes: this code is void, ask for a new one */
    SIGNUP_WRONG,        /* not the code; attempts left */
    SIGNUP_CLIENT_LIMITED /* signup_store_confirm only: the client is over its limit */
} signup_verdict_t;

/* Whether one more code may be sent, given the last hour's requests. */
enum signup_limit {
    SIGNUP_ALLOWED = 0,
    SIGNUP_LIMIT_NUMBER,  /* by_phone codes reached c->per_number */
    SIGNUP_LIMIT_CLIENT   /* by_client codes and wrong codes reached c->per_client */
};

/* Decides on a code request from the last hour's codes for its number (by_phone) and the
 * codes and wrong codes from its client (by_client); the number's limit wins when both
 * are reached. */
enum signup_limit signup_limited(long long by_phone, long long by_client,
                                 const struct signup_config *c);

/* Decides on code given the stored salt and hash (has_row 0: none), its wrong attempts so
 * far, its expiry and now (ms since the epoch), and max_attempts. */
signup_verdict_t signup_decide(int has_row, const char *salt, const char *hash, long long attempts,
                               int64_t expires_ms, int64_t now_ms, long long max_attempts,
                               const char *code);

/* The SKUs of a sign-up without repeats, in the order first given: a new array (the
 * caller's reference; its elements are shared with skus, which stays the caller's), or
 * NULL when out of memory. skus is an array of strings (api_subscriber_fields checked it,
 * NOTIFIER_SKUS_MAX at most, so the quadratic scan is cheap). A repeated SKU is not an
 * error: it asks for the same alert twice, and one alert is what it gets. */
json_t *signup_skus_unique(json_t *skus);

/* signup_store.c: SQL (db_query: not prepared, since these run a few times a minute) */

typedef struct signup_code_row {
    char salt[2 * SIGNUP_SALT_BYTES + 1];
    char hash[SIGNUP_HASH_HEX];
    long long attempts;
    int64_t expires_ms;
} signup_code_row_t;

/* In one transaction: takes the advisory locks of phone and of client, counts their last
 * hour's requests (*by_phone, *by_client) and, when signup_limited allows, replaces the
 * code of (phone, purpose) with a new one (salt, hash, expiring ttl_ms from now, name and
 * skus, a JSON array text, for a subscription), counts the request for the limits and
 * forgets requests older than a day. Parallel requests for one number or from one client
 * are thus counted one after the other. Returns SIGNUP_ALLOWED (stored: send the code),
 * SIGNUP_LIMIT_NUMBER or SIGNUP_LIMIT_CLIENT (nothing stored), or -1 with errstr. Blocks
 * while another request for the same number or client is between its count and commit. */
int signup_store_code_put(PGconn *conn, const char *phone, enum signup_purpose purpose,
                          const char *salt, const char *hash, long long ttl_ms,
                          const char *name, const char *skus, const char *client,
                          const struct signup_config *lim, long long *by_phone,
                          long long *by_client, char *errstr, size_t errstr_size);

/* Checks code for (phone, purpose) in one transaction, with client's advisory lock and
 * the code's row locked. SIGNUP_CLIENT_LIMITED when client's requests of the last hour
 * reached lim->per_client (nothing checked or counted); on SIGNUP_OK
 * the code is used up and the subscription made (or merged into the active one: *out is
 * the subscriber, masked) or ended (*out {"status": "unsubscribed"}); on SIGNUP_WRONG the
 * attempt is counted (*left: attempts left) and counted for client; SIGNUP_NO_CODE and
 * SIGNUP_LOCKED forget the row. Returns the verdict, or -1 with errstr. */
int signup_store_confirm(PGconn *conn, const char *phone, enum signup_purpose purpose,
                         const char *code, long long max_attempts, const char *client,
                         const struct signup_config *lim, json_t **out, long long *left,
                         char *errstr, size_t errstr_size);

/* The products a person may ask alerts for: {"products": [{"sku": ...}, ...]} from the
 * shared `inventory` table, by SKU, at most SIGNUP_PRODUCTS_MAX (a new reference), or NULL
 * with errstr. */
json_t *signup_store_products(PGconn *conn, char *errstr, size_t errstr_size);

/* The SKUs of skus_text (a JSON array of strings) that are not in `inventory`, sorted:
 * *unknown is a new array (empty when every one exists). Returns 0, or -1 with errstr. */
int signup_store_unknown_skus(PGconn *conn, const char *skus_text, json_t **unknown,
                              char *errstr, size_t errstr_size);

/* Opts out the active subscriber of phone (by: "page", "stop" or "provider") and cancels
 * its open deliveries, in one transaction. Returns 1 when one was active, 0 when none,
 * -1 with errstr. For the STOP webhook, and for the sender on Twilio's 21610. */
/* The same inside the caller's transaction (the sender's, which holds the subscriber's row
 * lock): no BEGIN or COMMIT of its own. */
int signup_store_opt_out_in(PGconn *conn, const char *phone, const char *by,
                            char *errstr, size_t errstr_size);
int signup_store_opt_out(PGconn *conn, const char *phone, const char *by,
                         char *errstr, size_t errstr_size);

/* signup_api.c: the public routes (registered in api.c) */

void signup_post_code(const http_request_t *req, http_response_t *res, void *ctx);
void signup_post_confirm(const http_request_t *req, http_response_t *res, void *ctx);
void signup_post_inbound(const http_request_t *req, http_response_t *res, void *ctx);
void signup_get_products(const http_request_t *req, http_response_t *res, void *ctx);
void signup_get_page(const http_request_t *req, http_response_t *res, void *ctx);

#endif
