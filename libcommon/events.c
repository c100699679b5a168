/* events: the catalog of the project's events, and their pack/parse pairs written once over
 * a table of payload fields. */
#include "events.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum field_kind { FIELD_STRING, FIELD_INTEGER };

#define FIELD_OPTIONAL 1   /* parse: may be absent (then "" or 0) */
#define FIELD_OMIT_EMPTY 2 /* pack: left out of the payload when "" (as is every optional
                            * field whose absent value "" or 0 is not valid: see pack) */

/* One payload field: where it lives in the typed struct and what a valid value is. */
struct event_field {
    const char *name;
    enum field_kind kind;
    int flags;
    size_t offset;                /* in the typed struct */
    size_t size;                  /* FIELD_STRING: the buffer, with the NUL */
    long long min, max;           /* FIELD_INTEGER: the range */
    int (*valid)(const char *);   /* FIELD_STRING: the rule, NULL: any 1..size-1 bytes */
    const char *rule;             /* the rule in words, for errors ("1 to 64 ...") */
};

#define STR(type, member, flags, valid, rule)                                             \
    { #member, FIELD_STRING, flags, offsetof(type, member),                               \
      sizeof(((type *)0)->member), 0, 0, valid, rule }
#define INT(type, member, flags, min, max)                                                \
    { #member, FIELD_INTEGER, flags, offsetof(type, member), 0, min, max, NULL, NULL }

static int uuid_valid(const char *s)
{
    return util_is_uuid(s);
}

#define SKU_FIELD(type) STR(type, sku, 0, sku_valid, SKU_RULE)
#define CUSTOMER_FIELD(type)                                                              \
    STR(type, customer, FIELD_OPTIONAL | FIELD_OMIT_EMPTY, NULL, NULL)

static const struct event_field order_completed_fields[] = {
    STR(event_order_completed_t, order_id, 0, uuid_valid, "a UUID"),
    SKU_FIELD(event_order_completed_t),
    INT(event_order_completed_t, quantity, 0, 1, INT_MAX),
    INT(event_order_completed_t, remaining, 0, 0, LLONG_MAX),
    CUSTOMER_FIELD(event_order_completed_t),
};

static const struct event_field order_rejected_fields[] = {
    STR(event_order_rejected_t, order_id, 0, uuid_valid, "a UUID"),
    SKU_FIELD(event_order_rejected_t),
    INT(event_order_rejected_t, requested, 0, 1, INT_MAX),
    INT(event_order_rejected_t, available, 0, 0, LLONG_MAX),
    CUSTOMER_FIELD(event_order_rejected_t),
};

/* The factory reads only the SKU (and the envelope): the rest is optional when parsed. */
static const struct event_field stock_depleted_fields[] = {
    SKU_FIELD(event_stock_depleted_t),
    INT(event_stock_depleted_t, requested, FIELD_OPTIONAL, 1, INT_MAX),
    INT(event_stock_depleted_t, available, FIELD_OPTIONAL, 0, LLONG_MAX),
    STR(event_stock_depleted_t, order_id, FIELD_OPTIONAL, uuid_valid, "a UUID"),
};

static const struct event_field stock_replenished_fields[] = {
    SKU_FIELD(event_stock_replenished_t),
    INT(event_stock_replenished_t, quantity, 0, 1, EVENT_DELIVERY_MAX),
    STR(event_stock_replenished_t, production_order_id, FIELD_OPTIONAL, NULL, NULL),
    STR(event_stock_replenished_t, factory_order_id, FIELD_OPTIONAL | FIELD_OMIT_EMPTY, NULL,
        NULL),
};

/* The date's calendar check is the notifier's (feed_date_valid). */
static const struct event_field bulletin_requested_fields[] = {
    STR(event_bulletin_requested_t, date, 0, NULL, NULL),
    STR(event_bulletin_requested_t, scheduled_at, FIELD_OPTIONAL, NULL, NULL),
    STR(event_bulletin_requested_t, deadline_at, FIELD_OPTIONAL, NULL, NULL),
    INT(event_bulletin_requested_t, deadline_ms, 0, 1, LLONG_MAX),
    STR(event_bulletin_requested_t, trigger, FIELD_OPTIONAL, NULL, NULL),
};

#define FIELDS(a) a, sizeof(a) / sizeof(a[0])

/* The catalog. */
const event_spec_t events_all[EVENT_COUNT] = {
    [EVENT_ORDER_COMPLETED] = { TOPIC_ORDERS, "order.completed", "sku",
                                FIELDS(order_completed_fields) },
    [EVENT_ORDER_REJECTED] = { TOPIC_ORDERS, "order.rejected", "sku",
                               FIELDS(order_rejected_fields) },
    [EVENT_STOCK_DEPLETED] = { TOPIC_STOCK_DEPLETED, "stock.depleted", "sku",
                               FIELDS(stock_depleted_fields) },
    [EVENT_STOCK_REPLENISHED] = { TOPIC_STOCK_REPLENISHED, "stock.replenished", "sku",
                                  FIELDS(stock_replenished_fields) },
    /* A day's bulletin run, keyed by the local date, so that a run that must wait for the
     * feed is retried through the retry service like any record. */
    [EVENT_BULLETIN_REQUESTED] = { TOPIC_BULLETINS, "bulletin.requested", "date",
                                   FIELDS(bulletin_requested_fields) },
};

void event_out_clear(event_out_t *out)
{
    if (out == NULL)
        return;
    free(out->text);
    memset(out, 0, sizeof(*out));
}

/* Packs ev (the typed struct of id) into out; see the header. */
static int pack(event_id_t id, const void *ev, event_out_t *out, char *errstr,
                size_t errstr_size)
{
    const event_spec_t *spec = &events_all[id];
    const char *base = ev;
    json_t *data = json_object();
    int ret = -1;

    memset(out, 0, sizeof(*out));
    out->spec = spec;
    for (size_t i = 0; data != NULL && i < spec->nfields; i++) {
        const struct event_field *f = &spec->fields[i];
        const char *s = base + f->offset;
        json_t *v; /* new reference, stolen by json_object_set_new */

        /* An optional field that holds what decode_field gives for an absent one ("" or
         * 0), when that value is not valid itself, is left out: written, it would make the
         * event unreadable to every consumer. */
        if (f->kind == FIELD_INTEGER) {
            long long n = *(const long long *)(const void *)(base + f->offset);

            if ((f->flags & FIELD_OPTIONAL) && n == 0 && (f->min > 0 || f->max < 0))
                continue;
            v = json_integer(n);
        } else {
            if ((f->flags & (FIELD_OMIT_EMPTY | FIELD_OPTIONAL)) && s[0] == '\0')
                continue;
            v = json_string(s);
            if (strcmp(f->name, spec->key) == 0)
                snprintf(out->key, sizeof(out->key), "%s", s);
        }
        if (v == NULL || json_object_set_new(data, f->name, v) != 0)
            goto done;
    }
    if (data == NULL || (out->text = json_dumps(data, JSON_COMPACT)) == NULL)
        goto done;
    ret = 0;
done:
    json_decref(data);
    if (ret != 0) {
        event_out_clear(out);
        util_errf(errstr, errstr_size, "out of memory building %s", spec->type);
    }
    return ret;
}

/* Reads one field of data into its place in the struct at base. Returns 0 or -1. */
static int decode_field(const struct event_field *f, const json_t *data, char *base,
                        char *errstr, size_t errstr_size)
{
    const json_t *v = json_object_get(data, f->name); /* borrowed */

    if (v == NULL && (f->flags & FIELD_OPTIONAL))
        return 0;
    if (f->kind == FIELD_INTEGER) {
        json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;

        if (!json_is_integer(v) || n < f->min || n > f->max) {
            util_errf(errstr, errstr_size, "field '%s' must be an integer from %lld to %lld",
                      f->name, f->min, f->max);
            return -1;
        }
        *(long long *)(void *)(base + f->offset) = (long long)n;
        return 0;
    }
    /* json_string_length counts bytes and sees embedded NULs that strlen would not. */
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) >= f->size ||
        json_string_length(v) != strlen(json_string_value(v)) ||
        (f->valid != NULL && !f->valid(json_string_value(v)))) {
        if (f->rule != NULL)
            util_errf(errstr, errstr_size, "field '%s' must be %s", f->name, f->rule);
        else
            util_errf(errstr, errstr_size, "field '%s' must be a string of 1 to %zu bytes",
                      f->name, f->size - 1);
        return -1;
    }
    memcpy(base + f->offset, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int events_decode(event_id_t id, const json_t *data, void *ev, char *errstr,
                  size_t errstr_size)
{
    const event_spec_t *spec;
    size_t i, size = 0;

    if ((unsigned)id >= EVENT_COUNT || ev == NULL || !json_is_object(data)) {
        util_errf(errstr, errstr_size, "value is not a JSON object");
        return -1;
    }
    spec = &events_all[id];
    /* The struct ends with its last field at the latest: clear what the table covers. */
    for (i = 0; i < spec->nfields; i++) {
        const struct event_field *f = &spec->fields[i];
        size_t end = f->offset + (f->kind == FIELD_STRING ? f->size : sizeof(long long));

        if (end > size)
            size = end;
    }
    memset(ev, 0, size);
    for (i = 0; i < spec->nfields; i++) {
        if (decode_field(&spec->fields[i], data, ev, errstr, errstr_size) != 0) {
            memset(ev, 0, size); /* never half a result */
            return -1;
        }
    }
    return 0;
}

/* Parses msg as event id; see the header. */
static int parse(event_id_t id, const rd_kafka_message_t *msg, event_meta_t *meta, void *ev,
                 char *errstr, size_t errstr_size)
{
    json_t *data; /* new reference */
    int ret;

    data = event_data_read(msg, events_all[id].type, meta, errstr, errstr_size);
    if (data == NULL)
        return -1;
    ret = events_decode(id, data, ev, errstr, errstr_size);
    json_decref(data);
    return ret;
}

/* The typed pair of one event: thin wrappers, so the compiler checks the struct. */
#define EVENT_PAIR(name, id)                                                              \
    int event_##name##_pack(const event_##name##_t *ev, event_out_t *out, char *errstr,   \
                            size_t errstr_size)                                           \
    {                                                                                     \
        return pack(id, ev, out, errstr, errstr_size);                                    \
    }                                                                                     \
    int event_##name##_parse(const rd_kafka_message_t *msg, event_meta_t *meta,           \
                             event_##name##_t *ev, char *errstr, size_t errstr_size)      \
    {                                                                                     \
        return parse(id, msg, meta, ev, errstr, errstr_size);                             \
    }

EVENT_PAIR(order_completed, EVENT_ORDER_COMPLETED)
EVENT_PAIR(order_rejected, EVENT_ORDER_REJECTED)
EVENT_PAIR(stock_depleted, EVENT_STOCK_DEPLETED)
EVENT_PAIR(stock_replenished, EVENT_STOCK_REPLENISHED)
EVENT_PAIR(bulletin_requested, EVENT_BULLETIN_REQUESTED)
