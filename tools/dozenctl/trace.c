/* trace: `dozenctl trace ID`: the whole story of one order (or of the order an event id
 * belongs to, or of an SKU's orders since a time), gathered from PostgreSQL and the topics
 * and printed in time order: the order, its events and where they were published, the
 * depletion, the production order, the legacy factory's calls and the retries, the delivery,
 * stock.replenished, the stock change, the back-in-stock alerts and any dead letter.
 *
 * Rows are read as to_jsonb(row) and the known fields picked from the JSON, so that a column
 * added or renamed by a later migration does not break the command; a query that fails is
 * reported on stderr and the trace goes on without it. Secrets (callback tokens) are never
 * picked, and phone numbers only masked. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "cfg.h"
#include "db.h"
#include "dozenctl.h"
#include "events.h"
#include "kafka.h"
#include "kafka_reader.h"
#include "phone.h"
#include "retry.h"
#include "sku.h"
#include "strbuf.h"
#include "util.h"

#define TRACE_MAX_ORDERS 1000      /* orders of one SKU traced at most (--since) */
#define TRACE_MAX_STEPS 100000     /* steps kept at most: a bound on memory */
#define SCAN_IDLE_MS 30000         /* a topic scan that hears nothing for this long fails */
#define READ_TIMEOUT_MS 10000      /* reading back one record */
#define NO_TIME INT64_MAX          /* a step whose time is unknown: sorted last */

/* One line of the trace. */
struct step {
    int64_t ms;          /* when, ms since the epoch; NO_TIME when unknown */
    size_t seq;          /* the order it was found in: ties keep it (causal order) */
    const char *kind;    /* static */
    char where[200];
    json_t *fields;      /* owned */
};

/* An event of the trace that was published, to be read back from its topic. */
struct published {
    size_t step;         /* index in steps */
    char topic[RETRY_TOPIC_MAX + 1];
    int32_t partition;
    int64_t offset;
    char ce_id[EVENT_UUID_SIZE];
};

struct trace {
    PGconn *conn;
    struct session ses;
    int have_kafka;
    struct step *steps;  /* owned, n of cap */
    size_t n, cap;
    struct published *pub; /* owned, npub of pubcap */
    size_t npub, pubcap;
    json_t *seen;        /* "kind:id" -> true: what was added already (owned) */
    json_t *ce_ids;      /* ce_id -> ce_type ("" when unknown): the trace's events (owned) */
    json_t *keys;        /* record keys that belong to the trace: order and production order
                          * ids (owned) */
    json_t *skus;        /* sku -> true (owned) */
    int failed;          /* some part could not be read (said on stderr) */
};

/* --- time --------------------------------------------------------------------------- */

/* A new JSON string of ms as RFC 3339 UTC, or JSON null when unknown. */
static json_t *time_json(int64_t ms)
{
    char buf[48];

    if (ms == NO_TIME || util_rfc3339(ms, buf, sizeof(buf)) != 0)
        return json_null();
    return json_string(buf);
}

/* --- JSON helpers ------------------------------------------------------------------- */

/* The string member key of o (borrowed), or NULL when absent or not a string. */
static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The time member key of o, NO_TIME when absent or not a time. */
static int64_t jtime(const json_t *o, const char *key)
{
    const char *s = jstr(o, key);
    int64_t ms;

    return s != NULL && util_rfc3339_parse(s, &ms) == 0 ? ms : NO_TIME;
}

/* Copies src[key] into dst[as] when present and not null; a time is normalised to RFC 3339
 * UTC with milliseconds. */
static void jcopy(json_t *dst, const char *as, const json_t *src, const char *key)
{
    json_t *v = json_object_get(src, key);
    int64_t ms;

    if (v == NULL || json_is_null(v))
        return;
    if (json_is_string(v) && util_rfc3339_parse(json_string_value(v), &ms) == 0)
        json_object_set_new(dst, as, time_json(ms));
    else
        json_object_set(dst, as, v);
}

/* Sets o[key] to a new string (nothing when s is NULL). */
static void jset_str(json_t *o, const char *key, const char *s)
{
    if (s != NULL)
        json_object_set_new(o, key, json_string(s));
}

/* 1 the first time "kind:id" is seen, 0 after (and when out of memory). */
static int first_time(struct trace *t, const char *kind, const char *id)
{
    char key[512];

    snprintf(key, sizeof(key), "%s:%s", kind, id);
    if (json_object_get(t->seen, key) != NULL)
        return 0;
    return json_object_set_new(t->seen, key, json_true()) == 0;
}

/* --- steps -------------------------------------------------------------------------- */

/* Adds a step; takes ownership of fields (a new reference). Returns its index, or -1 (out
 * of memory, or TRACE_MAX_STEPS reached: said once on stderr). */
static long step_add(struct trace *t, int64_t ms, const char *kind, const char *where,
                     json_t *fields)
{
    struct step *s;

    if (fields == NULL)
        return -1;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        struct step *v;

        if (t->n >= TRACE_MAX_STEPS || (v = realloc(t->steps, cap * sizeof(*v))) == NULL) {
            if (!t->failed)
                fprintf(stderr, "dozenctl trace: too many steps, the trace is cut\n");
            t->failed = 1;
            json_decref(fields);
            return -1;
        }
        t->steps = v;
        t->cap = cap;
    }
    s = &t->steps[t->n];
    s->ms = ms;
    s->seq = t->n;
    s->kind = kind;
    snprintf(s->where, sizeof(s->where), "%s", where);
    s->fields = fields;
    return (long)t->n++;
}

static int step_cmp(const void *a, const void *b)
{
    const struct step *x = a, *y = b;

    if (x->ms != y->ms)
        return x->ms < y->ms ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* --- PostgreSQL --------------------------------------------------------------------- */

/* Runs sql; on failure says on stderr that `what` is unavailable and returns NULL. */
static PGresult *query(struct trace *t, const char *what, const char *sql, int n,
                       const char *const *params)
{
    char errstr[512];
    PGresult *res = db_query(t->conn, sql, n, params, NULL, errstr, sizeof(errstr));

    if (res == NULL) {
        fprintf(stderr, "dozenctl trace: %s unavailable: %s\n", what, errstr);
        t->failed = 1;
    }
    return res;
}

/* Column col of row i parsed as JSON (a new reference), or NULL. */
static json_t *row_json(const PGresult *res, int i, int col)
{
    if (PQgetisnull(res, i, col))
        return NULL;
    return json_loads(PQgetvalue(res, i, col), JSON_DECODE_ANY, NULL);
}

static void trace_production_order(struct trace *t, json_t *po, int covered);
static void trace_depletion(struct trace *t, const char *ce_id, const char *sku, int64_t at);
static void trace_events_about(struct trace *t, const char *id, const char *field);

/* Adds the step of one outbox row (o borrowed) and remembers where it was published.
 * Returns its parsed payload (a new reference; may be NULL), or NULL when the event was
 * traced already. */
static json_t *add_event(struct trace *t, const json_t *o)
{
    const char *ce_id = jstr(o, "ce_id"), *type = jstr(o, "ce_type"), *topic = jstr(o, "topic");
    json_t *f, *payload, *jp = json_object_get(o, "kafka_partition"),
           *joff = json_object_get(o, "kafka_offset");
    int64_t created = jtime(o, "created_at"), sent = jtime(o, "sent_at");
    char where[200];
    long idx;

    if (ce_id == NULL || !first_time(t, "event", ce_id))
        return NULL;
    json_object_set_new(t->ce_ids, ce_id, json_string(type != NULL ? type : ""));
    payload = jstr(o, "payload") != NULL ? json_loads(jstr(o, "payload"), 0, NULL) : NULL;
    f = json_object();
    jset_str(f, "ce_type", type);
    jset_str(f, "ce_id", ce_id);
    jcopy(f, "producer", o, "producer");
    jcopy(f, "topic", o, "topic");
    jcopy(f, "key", o, "msg_key");
    jcopy(f, "partition", o, "kafka_partition");
    jcopy(f, "offset", o, "kafka_offset");
    jcopy(f, "committed_at", o, "created_at");
    jcopy(f, "sent_at", o, "sent_at");
    if (created != NO_TIME && sent != NO_TIME)
        json_object_set_new(f, "publish_delay_ms", json_integer(sent - created));
    jcopy(f, "traceparent", o, "traceparent");
    if (json_is_object(payload))
        json_object_set(f, "data", payload);
    if (json_is_integer(jp) && json_is_integer(joff))
        snprintf(where, sizeof(where), "%s[%lld]@%lld", topic ? topic : "?",
                 (long long)json_integer_value(jp), (long long)json_integer_value(joff));
    else
        snprintf(where, sizeof(where), "%s (not sent)", topic ? topic : "?");
    idx = step_add(t, created, "event", where, f);
    if (idx >= 0 && topic != NULL && json_is_integer(jp) && json_is_integer(joff) &&
        strlen(topic) <= RETRY_TOPIC_MAX) {
        if (t->npub == t->pubcap) {
            size_t cap = t->pubcap ? t->pubcap * 2 : 16;
            struct published *v = realloc(t->pub, cap * sizeof(*v));

            if (v == NULL)
                return payload;
            t->pub = v;
            t->pubcap = cap;
        }
        t->pub[t->npub].step = (size_t)idx;
        snprintf(t->pub[t->npub].topic, sizeof(t->pub[t->npub].topic), "%s", topic);
        t->pub[t->npub].partition = (int32_t)json_integer_value(jp);
        t->pub[t->npub].offset = (int64_t)json_integer_value(joff);
        snprintf(t->pub[t->npub].ce_id, sizeof(t->pub[t->npub].ce_id), "%s", ce_id);
        t->npub++;
    }
    return payload;
}

/* Follows an event of the trace: a depletion to its production order, a replenishment to
 * its alerts. o is the outbox row, payload its data (both borrowed; payload may be NULL). */
static void follow_event(struct trace *t, const json_t *o, const json_t *payload)
{
    const char *type = jstr(o, "ce_type"), *ce_id = jstr(o, "ce_id");
    const char *sku = jstr(payload, "sku");

    if (type == NULL || ce_id == NULL)
        return;
    if (sku != NULL)
        json_object_set_new(t->skus, sku, json_true());
    if (strcmp(type, events_all[EVENT_STOCK_DEPLETED].type) == 0 && sku != NULL)
        trace_depletion(t, ce_id, sku, jtime(o, "created_at"));
}

/* Every outbox event whose payload's field is id (an order id, a production order id). */
static void trace_events_about(struct trace *t, const char *id, const char *field)
{
    const char *p[1] = { id };
    PGresult *res = query(t, "outbox events",
                          "SELECT to_jsonb(o)::text FROM outbox o WHERE strpos(o.payload, $1) > 0 "
                          "ORDER BY o.id", 1, p);

    for (int i = 0; res != NULL && i < PQntuples(res); i++) {
        json_t *o = row_json(res, i, 0), *payload;
        const char *v;
        json_t *data;

        if (o == NULL)
            continue;
        data = jstr(o, "payload") ? json_loads(jstr(o, "payload"), 0, NULL) : NULL;
        v = jstr(data, field);
        if (v != NULL && strcmp(v, id) == 0) {
            payload = add_event(t, o);
            if (payload != NULL)
                follow_event(t, o, payload);
            json_decref(payload);
        }
        json_decref(data);
        json_decref(o);
    }
    PQclear(res);
}

/* The order row and everything that follows from it. Returns 1 if the order exists. */
static int trace_order(struct trace *t, const char *id)
{
    const char *p[1] = { id };
    PGresult *res;
    json_t *o, *f;
    const char *sku;

    if (!first_time(t, "order", id))
        return 1;
    res = query(t, "the order", "SELECT to_jsonb(o)::text FROM orders o WHERE o.id = $1::uuid",
                1, p);
    if (res == NULL || PQntuples(res) == 0 || (o = row_json(res, 0, 0)) == NULL) {
        PQclear(res);
        return 0;
    }
    PQclear(res);
    sku = jstr(o, "sku");
    f = json_object();
    jset_str(f, "order_id", id);
    jcopy(f, "sku", o, "sku");
    jcopy(f, "quantity", o, "quantity");
    jcopy(f, "status", o, "status");
    jcopy(f, "remaining", o, "remaining");
    jcopy(f, "available", o, "available");
    step_add(t, jtime(o, "created_at"), "order", "sales", f);
    json_object_set_new(t->keys, id, json_true());
    if (sku != NULL)
        json_object_set_new(t->skus, sku, json_true());
    trace_events_about(t, id, "order_id");
    json_decref(o);
    return 1;
}

/* The production order(s) a depletion opened, or the one that covered it. */
static void trace_depletion(struct trace *t, const char *ce_id, const char *sku, int64_t at)
{
    const char *p[1] = { ce_id };
    PGresult *res;
    int found = 0;
    char when[48];

    res = query(t, "production orders",
                "SELECT to_jsonb(p)::text FROM production_orders p "
                "WHERE p.depletion_ce_id = $1::uuid ORDER BY p.created_at", 1, p);
    for (int i = 0; res != NULL && i < PQntuples(res); i++) {
        json_t *po = row_json(res, i, 0);

        if (po != NULL) {
            trace_production_order(t, po, 0);
            found = 1;
        }
        json_decref(po);
    }
    PQclear(res);
    if (found || at == NO_TIME || util_rfc3339(at, when, sizeof(when)) != 0)
        return;
    /* No order names this depletion: the SKU's order that was open when the factory
     * handled it (or, not handled yet, when it happened) and not delivered before it
     * happened covered it (or a later depletion took the order over). */
    {
        const char *q[3] = { sku, when, ce_id };

        res = query(t, "production orders",
                    "SELECT to_jsonb(p)::text FROM production_orders p WHERE p.sku = $1 "
                    "AND p.created_at <= COALESCE((SELECT e.processed_at FROM "
                    "processed_events e WHERE e.consumer = 'factory' AND e.ce_id = $3::uuid), "
                    "$2::timestamptz) AND (p.delivered_at IS NULL OR "
                    "p.delivered_at >= $2::timestamptz) ORDER BY p.created_at DESC LIMIT 1",
                    3, q);
        if (res != NULL && PQntuples(res) == 1) {
            json_t *po = row_json(res, 0, 0);

            if (po != NULL)
                trace_production_order(t, po, 1);
            json_decref(po);
        }
        PQclear(res);
    }
}

/* Each call made to the legacy factory for production order id: one row of
 * production_order_tokens per call (0007), whose token hash is never read. A failed call's
 * reason is on its record on `retry`; the accepted one is the order's requested_at. */
static void trace_calls(struct trace *t, const char *id)
{
    const char *p[1] = { id };
    PGresult *res = query(t, "legacy calls",
                          "SELECT (to_jsonb(c) - 'token_sha256')::text FROM "
                          "production_order_tokens c WHERE c.production_order_id = $1::uuid "
                          "ORDER BY c.created_at", 1, p);

    for (int i = 0; res != NULL && i < PQntuples(res); i++) {
        json_t *c = row_json(res, i, 0), *f;

        if (c == NULL)
            continue;
        f = json_object();
        jset_str(f, "production_order_id", id);
        jset_str(f, "outcome", "sent");
        json_object_set_new(f, "call", json_integer(i + 1));
        step_add(t, jtime(c, "created_at"), "legacy_call", "factory -> legacy factory", f);
        json_decref(c);
    }
    PQclear(res);
}

/* A production order (po borrowed), its legacy call, delivery and replenishment. */
static void trace_production_order(struct trace *t, json_t *po, int covered)
{
    const char *id = jstr(po, "id"), *status = jstr(po, "status");
    const char *fo = jstr(po, "factory_order_id");
    json_t *f;
    int64_t requested = jtime(po, "requested_at"), delivered = jtime(po, "delivered_at");

    if (id == NULL || !first_time(t, "production_order", id))
        return;
    json_object_set_new(t->keys, id, json_true());
    f = json_object();
    jset_str(f, "production_order_id", id);
    jcopy(f, "sku", po, "sku");
    jcopy(f, "quantity", po, "quantity");
    jcopy(f, "status", po, "status");
    jcopy(f, "attempts", po, "attempts");
    jcopy(f, "last_error", po, "last_error");
    jcopy(f, "depletion_ce_id", po, "depletion_ce_id");
    if (status != NULL && strcmp(status, "pending") == 0)
        jcopy(f, "next_attempt_at", po, "next_attempt_at");
    if (covered)
        json_object_set_new(f, "covered", json_true());
    jcopy(f, "factory_id", po, "factory_id");
    jcopy(f, "factory_product_id", po, "factory_product_id");
    jcopy(f, "traceparent", po, "traceparent");
    step_add(t, jtime(po, "created_at"), "production_order", "factory", f);
    trace_calls(t, id);

    if (requested != NO_TIME) {
        f = json_object();
        jset_str(f, "production_order_id", id);
        jset_str(f, "outcome", "accepted");
        jset_str(f, "factory_order_id", fo);
        jcopy(f, "attempts", po, "attempts");
        step_add(t, requested, "legacy_call", "factory -> legacy factory", f);
    }
    if (status != NULL && strcmp(status, "failed") == 0) {
        f = json_object();
        jset_str(f, "production_order_id", id);
        jcopy(f, "last_error", po, "last_error");
        jcopy(f, "attempts", po, "attempts");
        step_add(t, jtime(po, "next_attempt_at"), "given_up", "factory", f);
    }
    if (delivered != NO_TIME) {
        f = json_object();
        jset_str(f, "production_order_id", id);
        jset_str(f, "factory_order_id", fo);
        jcopy(f, "quantity", po, "delivered_quantity");
        step_add(t, delivered, "delivery", "legacy factory -> factory", f);
    }
    trace_events_about(t, id, "production_order_id");
}

/* The SMS alerts a replenishment made (deliveries keyed restock:<ce_id>). */
static void trace_alerts(struct trace *t, const char *ce_id)
{
    char key[64];
    const char *p[1] = { key };
    PGresult *res;

    snprintf(key, sizeof(key), "restock:%s", ce_id);
    res = query(t, "back-in-stock alerts",
                "SELECT to_jsonb(d)::text, (SELECT s.phone FROM subscribers s "
                "WHERE s.id = d.subscriber_id) FROM deliveries d WHERE d.message_key = $1 "
                "ORDER BY d.id", 1, p);
    for (int i = 0; res != NULL && i < PQntuples(res); i++) {
        json_t *d = row_json(res, i, 0), *f, *id;
        char masked[PHONE_MASK_MAX], idtext[32];

        if (d == NULL)
            continue;
        id = json_object_get(d, "id");
        snprintf(idtext, sizeof(idtext), "%lld", (long long)json_integer_value(id));
        if (first_time(t, "alert", idtext)) {
            f = json_object();
            jcopy(f, "delivery_id", d, "id");
            if (!PQgetisnull(res, i, 1)) {
                phone_mask(PQgetvalue(res, i, 1), masked, sizeof(masked));
                jset_str(f, "to", masked);
            }
            jcopy(f, "status", d, "status");
            jcopy(f, "attempts", d, "attempts");
            jcopy(f, "uncertain", d, "uncertain");
            jcopy(f, "last_error", d, "last_error");
            jcopy(f, "sent_at", d, "sent_at");
            jcopy(f, "gateway_sid", d, "gateway_sid");
            jset_str(f, "message_key", key);
            step_add(t, jtime(d, "created_at"), "alert", "notifier", f);
        }
        json_decref(d);
    }
    PQclear(res);
}

/* The trace's ce_ids as a PostgreSQL uuid[] literal in sb. Returns 0, or -1. */
static int ce_id_array(struct trace *t, strbuf_t *sb)
{
    const char *ce;
    json_t *v;

    json_object_foreach(t->ce_ids, ce, v) {
        if (util_is_uuid(ce))
            db_array_add_text(sb, ce);
    }
    return db_array_finish(sb);
}

/* Sets f's level_now to the SKU's stock level today (nothing when unknown). */
static void level_now(struct trace *t, json_t *f, const char *sku)
{
    const char *p[1] = { sku };
    PGresult *res;

    if (sku == NULL)
        return;
    res = query(t, "the stock level", "SELECT quantity FROM inventory WHERE sku = $1", 1, p);
    if (res != NULL && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        json_object_set_new(f, "level_now", json_integer(strtoll(PQgetvalue(res, 0, 0),
                                                                 NULL, 10)));
    PQclear(res);
}

/* Who consumed the trace's events (processed_events), the stock change, the alerts, and
 * the retries still waiting (retry_pending). */
static void trace_consumers(struct trace *t)
{
    strbuf_t sb = STRBUF_INIT;
    const char *p[1];
    PGresult *res;
    const char *ce;
    json_t *v;

    if (ce_id_array(t, &sb) != 0)
        goto done;
    p[0] = sb.buf;
    res = query(t, "processed events",
                "SELECT to_jsonb(e)::text FROM processed_events e "
                "WHERE e.ce_id = ANY($1::uuid[]) ORDER BY e.processed_at", 1, p);
    for (int i = 0; res != NULL && i < PQntuples(res); i++) {
        json_t *e = row_json(res, i, 0), *f;
        const char *consumer = jstr(e, "consumer"), *id = jstr(e, "ce_id"), *type;
        char key[160];

        if (consumer == NULL || id == NULL) {
            json_decref(e);
            continue;
        }
        snprintf(key, sizeof(key), "%s/%s", consumer, id);
        type = jstr(t->ce_ids, id);
        if (first_time(t, "consumed", key)) {
            const char *kind = "consumed";

            f = json_object();
            jset_str(f, "consumer", consumer);
            jset_str(f, "ce_id", id);
            if (type != NULL && type[0] != '\0')
                jset_str(f, "ce_type", type);
            if (strcmp(consumer, "stock") == 0 && type != NULL &&
                strcmp(type, events_all[EVENT_STOCK_REPLENISHED].type) == 0) {
                /* The stock change: the event's quantity, and today's level. */
                size_t s;

                kind = "stock_change";
                for (s = 0; s < t->n; s++) {
                    json_t *sf = t->steps[s].fields;
                    const char *sce = jstr(sf, "ce_id");

                    if (strcmp(t->steps[s].kind, "event") == 0 && sce != NULL &&
                        strcmp(sce, id) == 0) {
                        json_t *data = json_object_get(sf, "data");

                        jcopy(f, "sku", data, "sku");
                        jcopy(f, "added", data, "quantity");
                        level_now(t, f, jstr(data, "sku"));
                        break;
                    }
                }
            }
            step_add(t, jtime(e, "processed_at"), kind, consumer, f);
        }
        json_decref(e);
    }
    PQclear(res);

    res = query(t, "pending retries",
                "SELECT (to_jsonb(r) - 'msg_key' - 'msg_value' - 'headers')::text "
                "FROM retry_pending r WHERE r.ce_id = ANY($1::uuid[]) ORDER BY r.id", 1, p);
    for (int i = 0; res != NULL && i < PQntuples(res); i++) {
        json_t *r = row_json(res, i, 0), *f, *due;
        char idtext[32];

        if (r == NULL)
            continue;
        snprintf(idtext, sizeof(idtext), "%lld",
                 (long long)json_integer_value(json_object_get(r, "id")));
        if (first_time(t, "retry_waiting", idtext)) {
            f = json_object();
            jcopy(f, "group", r, "group_id");
            jcopy(f, "ce_id", r, "ce_id");
            jcopy(f, "attempt", r, "attempt");
            jcopy(f, "max_attempts", r, "max_attempts");
            jcopy(f, "reason", r, "reason");
            jcopy(f, "error", r, "error");
            due = json_object_get(r, "due_at");
            if (json_is_integer(due))
                json_object_set_new(f, "due_at", time_json(json_integer_value(due)));
            step_add(t, jtime(r, "created_at"), "retry_waiting", "retry", f);
        }
        json_decref(r);
    }
    PQclear(res);

    json_object_foreach(t->ce_ids, ce, v) {
        if (strcmp(json_string_value(v), events_all[EVENT_STOCK_REPLENISHED].type) == 0)
            trace_alerts(t, ce);
    }
done:
    strbuf_release(&sb);
}

/* --- Kafka -------------------------------------------------------------------------- */

struct readback {
    int64_t offset;
    int found;
    int64_t timestamp;
    char *ce_id;        /* owned */
};

static int readback_record(void *ctx, const rd_kafka_message_t *msg)
{
    struct readback *rb = ctx;
    rd_kafka_timestamp_type_t tstype;

    if (msg->offset == rb->offset) {
        rb->found = 1;
        rb->timestamp = rd_kafka_message_timestamp(msg, &tstype);
        rb->ce_id = kafka_header_dup(msg, "ce_id");
    }
    return 1; /* one record is all we want */
}

/* Reads each published event back from its topic at its partition and offset: the record's
 * own timestamp, and whether it is the same event (its ce_id). */
static void read_back(struct trace *t)
{
    for (size_t i = 0; i < t->npub; i++) {
        struct published *pb = &t->pub[i];
        json_t *f = t->steps[pb->step].fields;
        kafka_reader_opts_t opts = { 0 };
        kafka_reader_t *r;
        struct readback rb = { pb->offset, 0, -1, NULL };
        char errstr[512];

        opts.rk = t->ses.rk;
        opts.topic = pb->topic;
        opts.partitions = &pb->partition;
        opts.npartitions = 1;
        opts.from = &pb->offset;
        opts.timeout_ms = READ_TIMEOUT_MS;
        opts.idle_ms = READ_TIMEOUT_MS;
        opts.stop = &stop_requested;
        opts.on_error = print_consume_error;
        opts.ctx = &rb;
        r = kafka_reader_new(&opts, errstr, sizeof(errstr));
        if (r == NULL || kafka_reader_run(r, readback_record, errstr, sizeof(errstr)) < 0) {
            fprintf(stderr, "dozenctl trace: %s [%d] offset %lld: %s\n", pb->topic,
                    (int)pb->partition, (long long)pb->offset, errstr);
            json_object_set_new(f, "on_topic", json_string("unreadable"));
        } else if (!rb.found) {
            json_object_set_new(f, "on_topic", json_string("gone"));
        } else if (rb.ce_id == NULL || strcmp(rb.ce_id, pb->ce_id) != 0) {
            /* A topic made anew reuses offsets: what is there now is another record. */
            json_object_set_new(f, "on_topic", json_string("other record"));
        } else {
            json_object_set_new(f, "on_topic", json_string("yes"));
            if (rb.timestamp >= 0)
                json_object_set_new(f, "record_timestamp", time_json(rb.timestamp));
        }
        free(rb.ce_id);
        kafka_reader_free(r);
    }
}

/* What a scan of `retry` or `dead-letter` looks for and where it puts what it finds. */
struct scan {
    struct trace *t;
    const char *kind;      /* "retry" or "dead_letter" */
    const char *topic;
    int64_t from_ms, to_ms; /* the trace's span, for records matched by SKU alone */
};

/* 1 if the record belongs to the trace: its ce_id is one of the trace's events, or its key
 * is one of the trace's ids, or (a record without a ce_id) its key is one of the trace's
 * SKUs and it was written within the trace's span. */
static int scan_match(const struct scan *s, const rd_kafka_message_t *msg, const char *ce_id)
{
    char key[EVENT_KEY_MAX];
    rd_kafka_timestamp_type_t tstype;
    int64_t ts;

    if (ce_id != NULL && json_object_get(s->t->ce_ids, ce_id) != NULL)
        return 1;
    if (msg->key == NULL || msg->key_len == 0 || msg->key_len >= sizeof(key))
        return 0;
    memcpy(key, msg->key, msg->key_len);
    key[msg->key_len] = '\0';
    if (strlen(key) != msg->key_len)
        return 0;
    if (json_object_get(s->t->keys, key) != NULL)
        return 1;
    if (ce_id != NULL || json_object_get(s->t->skus, key) == NULL)
        return 0;
    ts = rd_kafka_message_timestamp(msg, &tstype);
    return ts >= s->from_ms && ts <= s->to_ms;
}

static int scan_record(void *ctx, const rd_kafka_message_t *msg)
{
    struct scan *s = ctx;
    char *ce_id = kafka_header_dup(msg, "ce_id");
    char where[200], id[300], why[256];
    retry_info_t info;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts;
    json_t *f;

    if (!scan_match(s, msg, ce_id))
        goto done;
    snprintf(where, sizeof(where), "%s[%d]@%lld", s->topic, (int)msg->partition,
             (long long)msg->offset);
    snprintf(id, sizeof(id), "%s", where);
    if (!first_time(s->t, s->kind, id))
        goto done;
    f = json_object();
    jset_str(f, "ce_id", ce_id);
    if (retry_info_read(msg, &info, why, sizeof(why)) == 0) {
        char orig[300];

        json_object_set_new(f, "group", json_string(info.group));
        json_object_set_new(f, "attempt", json_integer(info.attempt));
        json_object_set_new(f, "reason", json_string(info.reason));
        if (info.last_reason[0] != '\0')
            json_object_set_new(f, "last_reason", json_string(info.last_reason));
        if (info.error[0] != '\0')
            json_object_set_new(f, "error", json_string(info.error));
        snprintf(orig, sizeof(orig), "%s/%d/%lld", info.original_topic,
                 (int)info.original_partition, (long long)info.original_offset);
        json_object_set_new(f, "original", json_string(orig));
        json_object_set_new(f, "first_failed_at", time_json(info.first_failed_at_ms));
        if (strcmp(s->kind, "retry") == 0)
            json_object_set_new(f, "not_before", time_json(info.not_before_ms));
    } else {
        json_object_set_new(f, "headers", json_string(why));
    }
    ts = rd_kafka_message_timestamp(msg, &tstype);
    step_add(s->t, ts >= 0 ? ts : NO_TIME, s->kind, where, f);
done:
    free(ce_id);
    return 0;
}

/* Reads topic from the beginning to its end, adding the records that belong to the trace. */
static void scan_topic(struct trace *t, const char *topic, const char *kind)
{
    kafka_reader_opts_t opts = { 0 };
    kafka_reader_t *r;
    struct scan s = { t, kind, topic, INT64_MIN, INT64_MIN };
    char errstr[512];
    int rc;

    for (size_t i = 0; i < t->n; i++) {
        if (t->steps[i].ms == NO_TIME)
            continue;
        if (s.from_ms == INT64_MIN || t->steps[i].ms < s.from_ms)
            s.from_ms = t->steps[i].ms;
        if (s.to_ms == INT64_MIN || t->steps[i].ms > s.to_ms)
            s.to_ms = t->steps[i].ms;
    }
    opts.rk = t->ses.rk;
    opts.topic = topic;
    opts.start = RD_KAFKA_OFFSET_BEGINNING;
    opts.idle_ms = SCAN_IDLE_MS;
    opts.missing_ok = 1;
    opts.stop = &stop_requested;
    opts.on_error = print_consume_error;
    opts.ctx = &s;
    r = kafka_reader_new(&opts, errstr, sizeof(errstr));
    rc = r == NULL ? -1 : kafka_reader_run(r, scan_record, errstr, sizeof(errstr));
    if (rc != 0) {
        fprintf(stderr, "dozenctl trace: %s: %s\n", topic,
                rc > 0 ? "interrupted, the scan is incomplete" : errstr);
        t->failed = 1;
    }
    kafka_reader_free(r);
}

/* --- finding where to start --------------------------------------------------------- */

/* An event id: the order it belongs to, else the event and what follows from it. Returns 1
 * if the outbox knows it. */
static int trace_ce_id(struct trace *t, const char *ce_id)
{
    const char *p[1] = { ce_id };
    PGresult *res = query(t, "the event", "SELECT to_jsonb(o)::text FROM outbox o "
                          "WHERE o.ce_id = $1::uuid", 1, p);
    json_t *o = NULL, *data = NULL, *payload;
    const char *order, *po;
    int ret = 0;

    if (res == NULL || PQntuples(res) == 0 || (o = row_json(res, 0, 0)) == NULL)
        goto done;
    ret = 1;
    data = jstr(o, "payload") ? json_loads(jstr(o, "payload"), 0, NULL) : NULL;
    order = jstr(data, "order_id");
    po = jstr(data, "production_order_id");
    if (order != NULL && util_is_uuid(order) && trace_order(t, order))
        goto done;
    if (po != NULL && util_is_uuid(po)) {
        /* A replenishment: back to the depletion that opened its production order. */
        const char *q[1] = { po };
        PGresult *pr = query(t, "production orders", "SELECT p.depletion_ce_id::text FROM "
                             "production_orders p WHERE p.id = $1::uuid", 1, q);

        if (pr != NULL && PQntuples(pr) == 1 && !PQgetisnull(pr, 0, 0)) {
            char dep[EVENT_UUID_SIZE];

            snprintf(dep, sizeof(dep), "%s", PQgetvalue(pr, 0, 0));
            PQclear(pr);
            if (strcmp(dep, ce_id) != 0 && trace_ce_id(t, dep))
                goto done;
        } else {
            PQclear(pr);
        }
    }
    payload = add_event(t, o);
    if (payload != NULL)
        follow_event(t, o, payload);
    json_decref(payload);
    if (po != NULL && util_is_uuid(po)) {
        const char *q[1] = { po };
        PGresult *pr = query(t, "production orders", "SELECT to_jsonb(p)::text FROM "
                             "production_orders p WHERE p.id = $1::uuid", 1, q);
        json_t *row = pr != NULL && PQntuples(pr) == 1 ? row_json(pr, 0, 0) : NULL;

        if (row != NULL)
            trace_production_order(t, row, 0);
        json_decref(row);
        PQclear(pr);
    }
done:
    json_decref(data);
    json_decref(o);
    PQclear(res);
    return ret;
}

/* A production order id: from the depletion that opened it. Returns 1 if it exists. */
static int trace_po_id(struct trace *t, const char *id)
{
    const char *p[1] = { id };
    PGresult *res = query(t, "production orders", "SELECT to_jsonb(p)::text FROM "
                          "production_orders p WHERE p.id = $1::uuid", 1, p);
    json_t *po = res != NULL && PQntuples(res) == 1 ? row_json(res, 0, 0) : NULL;
    const char *dep = jstr(po, "depletion_ce_id");
    int ret = po != NULL;

    if (po != NULL && !(dep != NULL && trace_ce_id(t, dep)))
        trace_production_order(t, po, 0);
    json_decref(po);
    PQclear(res);
    return ret;
}

/* An SKU since a time: each of its orders, and its events and production orders of the
 * span that no order led to. Returns 1 if the SKU exists. */
static int trace_sku(struct trace *t, const char *sku, const char *since)
{
    const char *p[2] = { sku, since };
    char limit[16];
    const char *q[3] = { sku, since, limit };
    PGresult *res;
    int rows;

    res = query(t, "the SKU", "SELECT 1 FROM inventory WHERE sku = $1", 1, p);
    rows = res != NULL ? PQntuples(res) : 0;
    PQclear(res);
    if (rows == 0)
        return 0;
    json_object_set_new(t->skus, sku, json_true());
    snprintf(limit, sizeof(limit), "%d", TRACE_MAX_ORDERS + 1);
    res = query(t, "orders", "SELECT o.id::text FROM orders o WHERE o.sku = $1 AND "
                "o.created_at >= $2::timestamptz ORDER BY o.created_at LIMIT $3::int", 3, q);
    for (int i = 0; res != NULL && i < PQntuples(res); i++) {
        if (i == TRACE_MAX_ORDERS) {
            fprintf(stderr, "dozenctl trace: more than %d orders of %s since %s: the first "
                    "%d are traced\n", TRACE_MAX_ORDERS, sku, since, TRACE_MAX_ORDERS);
            t->failed = 1;
            break;
        }
        trace_order(t, PQgetvalue(res, i, 0));
    }
    PQclear(res);
    res = query(t, "outbox events", "SELECT o.ce_id::text FROM outbox o WHERE o.msg_key = $1 "
                "AND o.created_at >= $2::timestamptz ORDER BY o.id LIMIT $3::int", 3, q);
    for (int i = 0; res != NULL && i < PQntuples(res) && i < TRACE_MAX_ORDERS; i++) {
        if (json_object_get(t->ce_ids, PQgetvalue(res, i, 0)) == NULL)
            trace_ce_id(t, PQgetvalue(res, i, 0));
    }
    PQclear(res);
    res = query(t, "production orders", "SELECT p.id::text FROM production_orders p "
                "WHERE p.sku = $1 AND p.created_at >= $2::timestamptz ORDER BY p.created_at "
                "LIMIT $3::int", 3, q);
    for (int i = 0; res != NULL && i < PQntuples(res) && i < TRACE_MAX_ORDERS; i++)
        trace_po_id(t, PQgetvalue(res, i, 0));
    PQclear(res);
    return 1;
}

/* --- output ------------------------------------------------------------------------- */

/* Writes a value for a key=value line: strings quoted when they need it, null as "-". */
static void put_value(FILE *out, const json_t *v)
{
    const char *s;

    if (json_is_string(v)) {
        s = json_string_value(v);
        if (s[0] == '\0' || strpbrk(s, " \"\\=") != NULL) {
            fputc('"', out);
            put_text(out, s, 1);
            fputc('"', out);
        } else {
            put_text(out, s, 0);
        }
    } else if (json_is_null(v) || v == NULL) {
        fputs("-", out);
    } else {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

        put_text(out, text != NULL ? text : "?", 0);
        free(text);
    }
}

static void print_step(FILE *out, const struct step *s)
{
    char when[48];
    const char *k;
    json_t *v;

    if (s->ms == NO_TIME || util_rfc3339(s->ms, when, sizeof(when)) != 0)
        snprintf(when, sizeof(when), "?");
    fprintf(out, "%-24s %-16s %-28s", when, s->kind, s->where);
    json_object_foreach(s->fields, k, v) {
        /* A published event's topic, partition and offset are in the where column. */
        if (strcmp(s->kind, "event") == 0 && json_is_integer(json_object_get(s->fields,
                                                                             "offset")) &&
            (strcmp(k, "topic") == 0 || strcmp(k, "partition") == 0 ||
             strcmp(k, "offset") == 0))
            continue;
        if (strcmp(k, "data") == 0 && json_is_object(v)) {
            const char *dk;
            json_t *dv;

            json_object_foreach(v, dk, dv) {
                fprintf(out, " data.%s=", dk);
                put_value(out, dv);
            }
            continue;
        }
        fprintf(out, " %s=", k);
        put_value(out, v);
    }
    fputc('\n', out);
}

static json_t *step_json(const struct step *s)
{
    return json_pack("{s:o, s:s, s:s, s:O}", "time", time_json(s->ms), "kind", s->kind,
                     "where", s->where, "fields", s->fields);
}

/* --- the command -------------------------------------------------------------------- */

/* Parses --since: a duration back from now (cfg_parse_duration_ms: "90s", "10m", "2h") or
 * an RFC 3339 time. Writes the time as RFC 3339 into out. Returns 0, or -1 after saying why. */
static int parse_since(const char *s, char *out, size_t out_size)
{
    long long ms;
    int64_t at;
    char errstr[128];

    if (util_rfc3339_parse(s, &at) == 0 || (s[0] >= '0' && s[0] <= '9' &&
                                 cfg_parse_duration_ms(s, &ms, errstr, sizeof(errstr)) == 0 &&
                                 (at = util_now_ms() - ms, 1))) {
        if (util_rfc3339(at, out, out_size) == 0)
            return 0;
    }
    fprintf(stderr, "dozenctl trace: --since: '%s' is neither a duration (like 90s, 10m, 2h) "
            "nor an RFC 3339 time (like 2026-12-04T01:00:00Z)\n", s);
    return -1;
}

static void trace_free(struct trace *t)
{
    for (size_t i = 0; i < t->n; i++)
        json_decref(t->steps[i].fields);
    free(t->steps);
    free(t->pub);
    json_decref(t->seen);
    json_decref(t->ce_ids);
    json_decref(t->keys);
    json_decref(t->skus);
    if (t->conn != NULL)
        PQfinish(t->conn);
    session_close(&t->ses);
}

int cmd_trace(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "since", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct trace t;
    const char *id, *since_arg = NULL;
    char since[48], errstr[512];
    char *url = NULL;
    int as_json = 0, opt, status = 1, known = 0;

    memset(&t, 0, sizeof(t));
    optind = 0; /* a fresh scan of this sub-command's arguments */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            since_arg = optarg;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "dozenctl trace: %s '%s'\n",
                    opt == ':' ? "option needs a value:" : "bad option",
                    optind > 0 ? argv[optind - 1] : "?");
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "dozenctl trace: expected one ORDER_ID, ce_id, or SKU with --since\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    id = argv[optind];
    if (since_arg != NULL) {
        if (!sku_valid(id)) {
            fprintf(stderr, "dozenctl trace: '%s' is not an SKU (" SKU_RULE ")\n", id);
            return EXIT_USAGE;
        }
        if (parse_since(since_arg, since, sizeof(since)) != 0)
            return EXIT_USAGE;
    } else if (!util_is_uuid(id)) {
        fprintf(stderr, "dozenctl trace: '%s' is not an order id or ce_id (a UUID); "
                "an SKU needs --since\n", id);
        return EXIT_USAGE;
    }

    t.seen = json_object();
    t.ce_ids = json_object();
    t.keys = json_object();
    t.skus = json_object();
    if (t.seen == NULL || t.ce_ids == NULL || t.keys == NULL || t.skus == NULL) {
        fprintf(stderr, "dozenctl trace: out of memory\n");
        goto done;
    }
    url = find_setting("DATABASE_URL", errstr, sizeof(errstr));
    if (url == NULL) {
        fprintf(stderr, "dozenctl trace: %s\n", errstr);
        goto done;
    }
    t.conn = db_connect(url, NULL, 0, errstr, sizeof(errstr));
    if (t.conn == NULL) {
        fprintf(stderr, "dozenctl trace: %s\n", errstr);
        goto done;
    }
    {
        PGresult *res = db_query(t.conn, "SET TimeZone = 'UTC'", 0, NULL, NULL, errstr,
                                 sizeof(errstr));
        PQclear(res);
    }
    catch_signals();

    if (since_arg != NULL) {
        known = trace_sku(&t, id, since);
    } else {
        char lower[EVENT_UUID_SIZE];

        for (size_t i = 0; i < sizeof(lower) - 1; i++)
            lower[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] - 'A' + 'a' : id[i]);
        lower[sizeof(lower) - 1] = '\0';
        known = trace_order(&t, lower) || trace_ce_id(&t, lower) || trace_po_id(&t, lower);
        if (!known) {
            /* An event the outbox no longer has (or never had): its consumers, retries
             * and dead letters may still know it. */
            json_object_set_new(t.ce_ids, lower, json_string(""));
        }
    }
    trace_consumers(&t);

    {
        char kerr[512];
        char *bootstrap = find_setting("KAFKA_BOOTSTRAP", kerr, sizeof(kerr));

        if (bootstrap == NULL) {
            fprintf(stderr, "dozenctl trace: topics not read (records, retries, dead "
                    "letters): %s\n", kerr);
            t.failed = 1;
        } else {
            free(bootstrap);
            t.have_kafka = session_open(&t.ses, 0) == 0;
            if (!t.have_kafka)
                t.failed = 1;
        }
    }
    if (t.have_kafka) {
        read_back(&t);
        scan_topic(&t, RETRY_TOPIC, "retry");
        scan_topic(&t, RETRY_DEAD_LETTER_TOPIC, "dead_letter");
    }
    if (!known && t.n == 0) {
        if (since_arg != NULL)
            fprintf(stderr, "dozenctl trace: unknown SKU '%s'\n", id);
        else
            fprintf(stderr, "dozenctl trace: '%s' is no order, event or production order "
                    "that dozen knows\n", id);
        goto done;
    }

    if (t.n > 1) /* qsort wants a real array, even of none */
        qsort(t.steps, t.n, sizeof(*t.steps), step_cmp);
    if (as_json) {
        json_t *arr = json_array();
        char *text;

        for (size_t i = 0; arr != NULL && i < t.n; i++)
            json_array_append_new(arr, step_json(&t.steps[i]));
        text = arr != NULL ? json_dumps(arr, JSON_INDENT(2)) : NULL;
        json_decref(arr);
        if (text == NULL) {
            fprintf(stderr, "dozenctl trace: out of memory\n");
            goto done;
        }
        puts(text);
        free(text);
    } else {
        for (size_t i = 0; i < t.n; i++)
            print_step(stdout, &t.steps[i]);
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "dozenctl trace: cannot write the trace: %s\n", strerror(errno));
        goto done;
    }
    status = stop_requested ? EXIT_INTERRUPTED : 0;
done:
    free(url);
    trace_free(&t);
    return status;
}
