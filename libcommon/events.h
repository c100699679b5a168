/* events: the catalog of the project's events. One row per event (its topic, ce_type and
 * record key) and a typed pack/parse pair per event; producers and consumers use nothing
 * else, so a payload's schema is written once. The CloudEvents envelope is event.h. */
#ifndef DOZEN_EVENTS_H
#define DOZEN_EVENTS_H

#include <stddef.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "event.h"
#include "sku.h"

/* The business topics (topics.c declares their partitions and retention). */
#define TOPIC_ORDERS "orders"
#define TOPIC_STOCK_DEPLETED "stock.depleted"
#define TOPIC_STOCK_REPLENISHED "stock.replenished"
#define TOPIC_BULLETINS "bulletins"

#define EVENT_UUID_SIZE 37                /* a UUID with its NUL */
#define EVENT_CUSTOMER_MAX 200            /* bytes of an order's customer */
#define EVENT_FACTORY_ORDER_ID_MAX 128    /* bytes of the legacy factory's order id */
#define EVENT_KEY_MAX 128                 /* bytes of a record key, with the NUL */

/* Every event, the index of its row in events_all. */
typedef enum event_id {
    EVENT_ORDER_COMPLETED = 0,
    EVENT_ORDER_REJECTED,
    EVENT_STOCK_DEPLETED,
    EVENT_STOCK_REPLENISHED,
    EVENT_BULLETIN_REQUESTED,
    EVENT_COUNT
} event_id_t;

struct event_field; /* one payload field: name, type, limits (private to events.c) */

/* One row of the catalog. */
typedef struct event_spec {
    const char *topic;                 /* TOPIC_* */
    const char *type;                  /* ce_type: "order.completed" */
    const char *key;                   /* the payload field that is the record key */
    const struct event_field *fields;  /* the payload, in the order it is written */
    size_t nfields;
} event_spec_t;

extern const event_spec_t events_all[EVENT_COUNT];

/* An event ready for outbox_add: its row (topic, type), its key and its JSON value. */
typedef struct event_out {
    const event_spec_t *spec;          /* borrowed from events_all */
    char key[EVENT_KEY_MAX];
    char *text;                        /* owned: free it with event_out_clear */
} event_out_t;

/* Frees out->text and empties out. Accepts NULL and an emptied out. */
void event_out_clear(event_out_t *out);

/* The payloads. Strings are NUL-terminated; an optional string is "" when absent (and is
 * then left out of the payload), an optional number 0. */

typedef struct event_order_completed {
    char order_id[EVENT_UUID_SIZE];
    char sku[SKU_MAX + 1];             /* the key */
    long long quantity;
    long long remaining;               /* the level after the order */
    char customer[EVENT_CUSTOMER_MAX + 1]; /* optional */
} event_order_completed_t;

typedef struct event_order_rejected {
    char order_id[EVENT_UUID_SIZE];
    char sku[SKU_MAX + 1];             /* the key */
    long long requested;
    long long available;               /* the level the decision was taken on */
    char customer[EVENT_CUSTOMER_MAX + 1]; /* optional */
} event_order_rejected_t;

typedef struct event_stock_depleted {
    char sku[SKU_MAX + 1];             /* the key */
    long long requested;               /* optional when parsed */
    long long available;               /* optional when parsed */
    char order_id[EVENT_UUID_SIZE];    /* optional when parsed */
} event_stock_depleted_t;

typedef struct event_stock_replenished {
    char sku[SKU_MAX + 1];             /* the key */
    long long quantity;                /* 1..EVENT_DELIVERY_MAX */
    char production_order_id[EVENT_UUID_SIZE];                /* optional when parsed */
    char factory_order_id[EVENT_FACTORY_ORDER_ID_MAX + 1];    /* optional when parsed */
} event_stock_replenished_t;
#define EVENT_DELIVERY_MAX 1000000     /* largest quantity one replenishment may add */

typedef struct event_bulletin_requested {
    char date[11];                     /* the key: the local day "YYYY-MM-DD" */
    char scheduled_at[40];             /* RFC 3339; optional when parsed */
    char deadline_at[40];              /* RFC 3339; optional when parsed */
    long long deadline_ms;             /* > 0: ms since the epoch */
    char trigger[32];                  /* "schedule", "manual"; optional when parsed */
} event_bulletin_requested_t;

/* Packing: fills out with the event's row, key and JSON value (out->text is new; free it
 * with event_out_clear). Returns 0, or -1 with errstr (out of memory). Producers then call
 * outbox_add(conn, producer, out.spec->topic, out.key, out.spec->type, source, out.text...).
 *
 * Parsing: reads a record as the event: valid CloudEvents headers (into meta), the event's
 * ce_type, a JSON object value, and every field the catalog requires, of the right type and
 * within its limits. Returns 0 with ev filled, or -1 with errstr saying what is wrong (for
 * a dead letter with reason invalid_record). */

int event_order_completed_pack(const event_order_completed_t *ev, event_out_t *out,
                               char *errstr, size_t errstr_size);
int event_order_completed_parse(const rd_kafka_message_t *msg, event_meta_t *meta,
                                event_order_completed_t *ev, char *errstr, size_t errstr_size);

int event_order_rejected_pack(const event_order_rejected_t *ev, event_out_t *out,
                              char *errstr, size_t errstr_size);
int event_order_rejected_parse(const rd_kafka_message_t *msg, event_meta_t *meta,
                               event_order_rejected_t *ev, char *errstr, size_t errstr_size);

int event_stock_depleted_pack(const event_stock_depleted_t *ev, event_out_t *out,
                              char *errstr, size_t errstr_size);
int event_stock_depleted_parse(const rd_kafka_message_t *msg, event_meta_t *meta,
                               event_stock_depleted_t *ev, char *errstr, size_t errstr_size);

int event_stock_replenished_pack(const event_stock_replenished_t *ev, event_out_t *out,
                                 char *errstr, size_t errstr_size);
int event_stock_replenished_parse(const rd_kafka_message_t *msg, event_meta_t *meta,
                                  event_stock_replenished_t *ev,
                                  char *errstr, size_t errstr_size);

int event_bulletin_requested_pack(const event_bulletin_requested_t *ev, event_out_t *out,
                                  char *errstr, size_t errstr_size);
int event_bulletin_requested_parse(const rd_kafka_message_t *msg, event_meta_t *meta,
                                   event_bulletin_requested_t *ev,
                                   char *errstr, size_t errstr_size);

/* The value half of every parse: fills ev (the typed struct of event id) from data, a JSON
 * object (borrowed). Returns 0, or -1 with errstr naming the first bad field. */
int events_decode(event_id_t id, const json_t *data, void *ev, char *errstr,
                  size_t errstr_size);

#endif
