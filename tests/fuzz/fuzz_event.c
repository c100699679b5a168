/* fuzz_event: the CloudEvents reader of every consumer: event_meta_parse (the ce_* headers),
 * event_data_parse (the ce_type and a JSON object value) and events_decode (the typed
 * payload of the catalog's event of that ce_type). The input is headers and a value in
 * fuzz.h's text form ("ce_id=...\n...\n\n{json}").
 *
 * Properties: what is accepted is within its limits, and writes back unchanged (the
 * headers through event_headers_new, the payload through the event's pack). */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "event.h"
#include "events.h"
#include "fuzz.h"
#include "util.h"

/* Any of the catalog's typed structs. */
typedef union any_event {
    event_order_completed_t order_completed;
    event_order_rejected_t order_rejected;
    event_stock_depleted_t stock_depleted;
    event_stock_replenished_t stock_replenished;
    event_bulletin_requested_t bulletin_requested;
} any_event_t;

static int pack(event_id_t id, const any_event_t *ev, event_out_t *out)
{
    char err[256];

    switch (id) {
    case EVENT_ORDER_COMPLETED:
        return event_order_completed_pack(&ev->order_completed, out, err, sizeof(err));
    case EVENT_ORDER_REJECTED:
        return event_order_rejected_pack(&ev->order_rejected, out, err, sizeof(err));
    case EVENT_STOCK_DEPLETED:
        return event_stock_depleted_pack(&ev->stock_depleted, out, err, sizeof(err));
    case EVENT_STOCK_REPLENISHED:
        return event_stock_replenished_pack(&ev->stock_replenished, out, err, sizeof(err));
    case EVENT_BULLETIN_REQUESTED:
        return event_bulletin_requested_pack(&ev->bulletin_requested, out, err, sizeof(err));
    default:
        return -1;
    }
}

/* A decoded payload packs to text that decodes to the same event. */
static void check_payload(event_id_t id, const any_event_t *ev)
{
    event_out_t out1, out2;
    any_event_t again;
    json_error_t jerr;
    json_t *data;
    char err[256];

    FUZZ_CHECK(pack(id, ev, &out1) == 0);
    data = json_loads(out1.text, JSON_REJECT_DUPLICATES, &jerr);
    FUZZ_CHECK(data != NULL);
    memset(&again, 0, sizeof(again));
    FUZZ_CHECK(events_decode(id, data, &again, err, sizeof(err)) == 0);
    FUZZ_CHECK(pack(id, &again, &out2) == 0);
    FUZZ_CHECK(strcmp(out1.text, out2.text) == 0 && strcmp(out1.key, out2.key) == 0);
    json_decref(data);
    event_out_clear(&out1);
    event_out_clear(&out2);
}

/* Accepted headers are within their limits and read back the same once written. */
static void check_meta(const event_meta_t *m)
{
    rd_kafka_headers_t *hdrs;
    event_meta_t again;
    char err[256];

    FUZZ_CHECK(util_is_uuid(m->id));
    FUZZ_CHECK(m->type[0] != '\0' && m->source[0] != '\0' && m->time[0] != '\0');
    hdrs = event_headers_new(m);
    FUZZ_CHECK(hdrs != NULL);
    FUZZ_CHECK(event_meta_parse(hdrs, &again, err, sizeof(err)) == 0);
    FUZZ_CHECK(memcmp(m, &again, sizeof(again)) == 0);
    rd_kafka_headers_destroy(hdrs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *value;
    size_t value_len;
    rd_kafka_headers_t *hdrs = fuzz_headers(data, size, &value, &value_len);
    event_meta_t m;
    char err[256] = "";

    if (event_meta_parse(hdrs, &m, err, sizeof(err)) == 0) {
        check_meta(&m);
        for (int id = 0; id < EVENT_COUNT; id++) {
            json_t *obj;
            any_event_t ev;

            if (strcmp(m.type, events_all[id].type) != 0)
                continue;
            obj = event_data_parse(hdrs, value, value_len, events_all[id].type, &m, err,
                                   sizeof(err));
            if (obj == NULL) {
                FUZZ_CHECK(err[0] != '\0');
                continue;
            }
            FUZZ_CHECK(json_is_object(obj));
            if (events_decode((event_id_t)id, obj, &ev, err, sizeof(err)) == 0)
                check_payload((event_id_t)id, &ev);
            json_decref(obj);
        }
    } else {
        /* Refused: an explanation, and nothing half-filled. */
        static const event_meta_t zero;

        FUZZ_CHECK(err[0] != '\0' && memcmp(&m, &zero, sizeof(m)) == 0);
    }
    /* Every payload is tried against every event too, whatever the headers said. */
    if (value != NULL) {
        json_error_t jerr;
        json_t *obj = json_loadb((const char *)value, value_len, JSON_REJECT_DUPLICATES, &jerr);

        if (json_is_object(obj)) {
            for (int id = 0; id < EVENT_COUNT; id++) {
                any_event_t ev;

                if (events_decode((event_id_t)id, obj, &ev, err, sizeof(err)) == 0)
                    check_payload((event_id_t)id, &ev);
            }
        }
        json_decref(obj);
    }
    rd_kafka_headers_destroy(hdrs);
    return 0;
}
