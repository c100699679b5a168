/* outbox: the writer. outbox_add() puts one event into the outbox table inside the caller's
 * transaction; the relay (outbox_relay.c) publishes it. */
#include "outbox.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "event.h"
#include "outbox_int.h"

int outbox_topic_name_ok(const char *t)
{
    size_t i, len = strlen(t);

    if (len == 0 || len > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];

        if (!isalnum(c) && c != '.' && c != '_' && c != '-')
            return 0;
    }
    return 1;
}

int outbox_add_check(const char *producer, const char *topic, const char *payload_json,
                     char *errstr, size_t errstr_size)
{
    if (producer == NULL || producer[0] == '\0' || topic == NULL || payload_json == NULL) {
        snprintf(errstr, errstr_size, "outbox_add: missing argument");
        return -1;
    }
    if (!outbox_topic_name_ok(topic)) {
        snprintf(errstr, errstr_size, "outbox_add: bad topic name '%.64s'", topic);
        return -1;
    }
    return 0;
}

/* The producer whose rows outbox_add() wrote in this thread's open transaction ("" when
 * none): db_commit (through outbox_txn_end) wakes its relay. */
static __thread char tl_pending[OUTBOX_PRODUCER_MAX + 1];

void outbox_txn_end(int committed)
{
    if (tl_pending[0] == '\0')
        return;
    if (committed)
        outbox_wake(tl_pending);
    tl_pending[0] = '\0';
}

int outbox_add(PGconn *conn, const char *producer, const char *topic, const char *key,
               const char *ce_type, const char *ce_source, const char *payload_json,
               char *ce_id_out, char *errstr, size_t errstr_size)
{
    event_meta_t m;
    const char *params[9];
    PGresult *res;

    if (conn == NULL) {
        snprintf(errstr, errstr_size, "outbox_add: missing argument");
        return -1;
    }
    if (outbox_add_check(producer, topic, payload_json, errstr, errstr_size) != 0)
        return -1;
    if (event_meta_new(&m, ce_type, ce_source, errstr, errstr_size) != 0)
        return -1;

    params[0] = producer;
    params[1] = topic;
    params[2] = key; /* NULL: a record without key */
    params[3] = m.id;
    params[4] = m.type;
    params[5] = m.source;
    params[6] = m.time;
    params[7] = payload_json;
    params[8] = m.traceparent[0] != '\0' ? m.traceparent : NULL;
    res = db_exec(conn, OUTBOX_STMT_NAME, 9, params, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    PQclear(res);
    snprintf(tl_pending, sizeof(tl_pending), "%s", producer);
    if (ce_id_out != NULL)
        memcpy(ce_id_out, m.id, sizeof(m.id));
    return 0;
}
