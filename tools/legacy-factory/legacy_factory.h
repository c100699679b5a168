/* legacy-factory: a stand-in for the shop's slow, unreliable Legacy Factory API
 * (POST /api/manufactures with a CallbackUrl). Private header; prototypes grouped by
 * source file. */
#ifndef DOZEN_LEGACY_FACTORY_H
#define DOZEN_LEGACY_FACTORY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "http.h"
#include "sku.h"
#include "standin.h"
#include "util.h"

#define LF_SERVICE "legacy-factory"

#define LF_QUANTITY_MAX      100000
#define LF_DELIVER_COUNT_MAX 1000000  /* deliver_count: what the callback may say instead */
#define LF_ATTR_MAX          256      /* bytes of each string attribute */
#define LF_URL_MAX           2048
#define LF_ID_LEN            (3 + UTIL_UUID_LEN)  /* "mf-<uuid>", without the NUL */
#define LF_SCHEDULED_MAX     10000   /* orders whose callbacks are not finished yet */
#define LF_RECORDS_MAX       10000   /* calls and manufactures kept for
                                      * GET /admin/manufactures */
#define LF_DELAY_MS_MAX      600000LL

#define LF_CALLBACK_ATTEMPTS           5     /* per delivery, in all */
#define LF_CALLBACK_RETRY_MS           1000
#define LF_CALLBACK_CONNECT_TIMEOUT_MS 2000L
#define LF_CALLBACK_TIMEOUT_MS         10000L
#define LF_DELIVER_THREADS             4

/* How the callback's body is sent: the shapes real deployments of the factory use. */
enum lf_shape {
    LF_SHAPE_OBJECT = 0,  /* a JSON object, Content-Type: application/json */
    LF_SHAPE_JSON_STRING, /* a JSON string holding the object's text, application/json */
    LF_SHAPE_TEXT_PLAIN,  /* the object's text, Content-Type: text/plain */
    LF_SHAPE_COUNT
};

/* The knobs: set from the environment at start, changed by POST /admin/mode. */
struct lf_mode {
    long long fail_next;  /* answer 503 to this many more manufacture calls */
    long long reject_next; /* answer 400 (an unknown factory id) to this many more */
    long long slow_ms;    /* sleep before answering each manufacture call */
    long long delay_ms;   /* from acceptance to the first callback attempt */
    long long deliver_count; /* the count the callback says (0: the one requested) */
    int down;             /* refuse manufacture calls: close without an answer */
    int deliver_twice;    /* send each successful callback a second time */
    int count_as_string;  /* the callback's count as a string ("10") */
    int callback_shape;   /* enum lf_shape */
    char fail_skus[1024]; /* comma-separated product ids whose calls are always answered 503 */
};

struct config {
    const char *http_bind;
    int port;
    struct lf_mode mode;  /* also what POST /admin/reset returns to */
};

/* A validated POST /api/manufactures body. */
struct lf_order_in {
    char group_id[LF_ATTR_MAX + 1];    /* MessageGroupId */
    char product_id[LF_ATTR_MAX + 1];  /* MessageAttributeProductId */
    long long count;                   /* MessageAttributeProductCnt */
    char factory_id[LF_ATTR_MAX + 1];  /* MessageAttributeFactoryId */
    char requester[LF_ATTR_MAX + 1];   /* MessageAttributeRequester */
    char callback_url[LF_URL_MAX + 1]; /* CallbackUrl */
};

/* What became of one POST /api/manufactures. */
enum lf_outcome { LF_CALL_ACCEPTED, LF_CALL_UNAVAILABLE, LF_CALL_REFUSED, LF_CALL_INVALID,
                  LF_CALL_REJECTED };

/* The result of one callback attempt. */
enum lf_cb_result {
    LF_CB_DELIVERED,  /* 2xx */
    LF_CB_REJECTED,   /* 4xx: not retried */
    LF_CB_FAILED      /* connection error, timeout, anything else: retried */
};

typedef struct lf_state lf_state_t;
typedef struct lf_deliver lf_deliver_t;
struct lf_job;

/* Everything the HTTP handlers reach through their ctx. */
struct factory {
    standin_t *standin;   /* first, for the admin routes (standin.h); borrowed from state */
    struct config cfg;
    lf_state_t *state;
    lf_deliver_t *deliver;
};

/* state.c: the mode and the record of calls and orders; validation (pure functions) */

/* Validates a manufacture request (unknown fields are ignored, as a lenient legacy API
 * would): the six attributes, each required and non-empty, checked in the order of the
 * API's documentation. Returns 0 and fills out, or -1 with the factory's message in errstr
 * ("The message attribute 'X' must contain non-empty message attribute value"). */
int lf_order_parse(json_t *body, struct lf_order_in *out, char *errstr, size_t errstr_size);

/* The callback body for in, as mode says (shape, count_as_string, deliver_count): a new
 * malloc'ed NUL-terminated text in *body and its Content-Type (static) in *content_type.
 * Returns 0, or -1 when out of memory. */
int lf_callback_body(const struct lf_order_in *in, const struct lf_mode *mode, char **body,
                     const char **content_type);

/* The name of a shape ("object", "json_string", "text_plain"), and back (-1: none). */
const char *lf_shape_name(int shape);
int lf_shape_parse(const char *name);

/* Returns 1 if url is an absolute http:// or https:// URL with a host, at most LF_URL_MAX
 * characters of printable ASCII without quotes or backslashes (so it can be logged as is). */
int lf_callback_url_valid(const char *url);

/* The mode's knobs (fail_next, reject_next, slow_ms, down, deliver_twice, delay_ms,
 * callback_shape, count_as_string, deliver_count, fail_skus: an array of product ids) for
 * standin_mode_patch, standin_mode_json and the admin routes. */
extern const struct standin_def lf_standin;

/* Sets m->fail_skus from a comma-separated list ("" for none). Returns 0, or -1 with errstr
 * naming a bad SKU or saying the list is too long. */
int lf_mode_set_fail_skus(struct lf_mode *m, const char *list, char *errstr,
                          size_t errstr_size);

/* 1 if calls for sku are always answered 503 (fail_skus), else 0. */
int lf_mode_fails_sku(const struct lf_mode *m, const char *sku);

const char *lf_outcome_name(enum lf_outcome o);

/* Allocates the state with mode = defaults; its standin (the lock, the stop flag, the mode:
 * standin_sleep, standin_patch, ...) is state_standin's. standin_reset also forgets every
 * recorded call and order. Returns NULL with errstr on failure. */
lf_state_t *state_new(const struct lf_mode *defaults, char *errstr, size_t errstr_size);

/* Frees the state and its standin. Accepts NULL. */
void state_free(lf_state_t *st);

/* The state's standin, owned by the state. */
standin_t *state_standin(lf_state_t *st);

/* For each manufacture call after its slow_ms sleep: returns 1 when this call must be
 * answered 503 (fail_next was above 0 and is decremented), else 0. Copies the mode at that
 * moment into now. */
int state_gate(lf_state_t *st, struct lf_mode *now);

/* For a valid call: returns 1 when it must be refused with a 400 (reject_next was above 0
 * and is decremented), else 0. */
int state_reject_gate(lf_state_t *st);

/* Records a call that did not become an order; product id and count are taken from body
 * when it has them in a valid form (body is borrowed and may be NULL). */
void state_record_call(lf_state_t *st, json_t *body, enum lf_outcome outcome);

/* Records an accepted order (status "scheduled") and its call. Returns 0 and the order's
 * sequence number in *seq, or -1 when out of memory (nothing is recorded then). */
int state_order_add(lf_state_t *st, const struct lf_order_in *in, const char *id,
                    uint64_t *seq);

/* A callback attempt for order seq starts: counts it; "scheduled" becomes "delivering".
 * An order no longer recorded (reset, or pushed out by newer ones) is ignored. */
void state_order_attempt(lf_state_t *st, uint64_t seq);

/* The result of an attempt; last says no attempt follows in this delivery. A delivered
 * callback makes the order "delivered"; a rejection or a last failure makes an order that
 * was never delivered "callback_failed". */
void state_order_result(lf_state_t *st, uint64_t seq, enum lf_cb_result r, int last);

/* {"manufactures": [...], "calls": [...]}, oldest first, only those of product_id when it
 * is not NULL. Returns a new reference, or NULL when out of memory. */
json_t *state_list(lf_state_t *st, const char *product_id);

/* deliver.c: the time-ordered callback queue and its delivery threads */

/* Starts LF_DELIVER_THREADS delivery threads that report to st (borrowed, must outlive
 * the deliverer). curl_global_init must have been called. NULL with errstr on failure. */
lf_deliver_t *deliver_start(lf_state_t *st, char *errstr, size_t errstr_size);

/* Stops the threads (an attempt in flight is aborted), drops the callbacks not yet made
 * (logged with their number) and frees everything. Accepts NULL. */
void deliver_stop(lf_deliver_t *d);

/* A callback job for order id: POST the callback body (lf_callback_body, as mode says)
 * to the CallbackUrl mode->delay_ms from now, once or (deliver_twice) two times. Returns a
 * new job owned by the caller (deliver_job_free or deliver_push), or NULL when out of
 * memory. */
struct lf_job *deliver_job_new(const char *id, const struct lf_order_in *in,
                               const struct lf_mode *mode);

void deliver_job_free(struct lf_job *job);

/* Reserves room for one job: returns 0 and the current generation in *gen, or -1 when
 * LF_SCHEDULED_MAX orders are scheduled already. A reservation ends with deliver_push or
 * deliver_release. */
int deliver_reserve(lf_deliver_t *d, uint64_t *gen);

void deliver_release(lf_deliver_t *d);

/* Queues job (ownership taken) for order seq, using a reservation made under gen. A job of
 * a generation cancelled since is freed at once. */
void deliver_push(lf_deliver_t *d, uint64_t gen, uint64_t seq, struct lf_job *job);

/* Drops every callback not yet made and starts a new generation, so that attempts in
 * flight are not repeated. Returns how many orders were dropped. */
size_t deliver_cancel(lf_deliver_t *d);

/* api.c: HTTP routes */

extern const http_route_t api_routes[];
extern const size_t api_nroutes;

#endif
