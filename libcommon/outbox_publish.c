/* outbox_publish: one publishing round of the relay. Up to `batch` unsent rows are handed
 * to an idempotent producer, their delivery reports awaited, and the acknowledged rows marked
 * sent with the partition and offset the broker reported. Runs on the relay thread only; see
 * the top of outbox_relay.c for why a row is marked only after its acknowledgement. */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "outbox_int.h"
#include "trace.h"
#include "strbuf.h"
#include "util.h"

#define WARM_MS 2000

/* The producer reports every message within message.timeout.ms (30 s by default in
 * kafka.c); past this the round gives up on the producer and starts a fresh one. */
#define DELIVERY_WAIT_MS 35000
#define STOP_FLUSH_MS 10000          /* how long a stopping relay waits for reports */

const db_stmt_t outbox_publish_stmts[OUTBOX_PUBLISH_NSTMTS] = {
    { "relay_select",
      "SELECT id, topic, msg_key, ce_id, ce_type, ce_source, "
      "to_char(ce_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), payload, "
      "(extract(epoch FROM created_at) * 1000)::bigint, traceparent "
      "FROM outbox WHERE producer = $1 AND sent_at IS NULL ORDER BY id LIMIT $2::int", 2 },
    /* Marks the acknowledged rows of a round and, when $5 is true (every delivery of the
     * round succeeded), moves the positions past them. After a failed delivery the
     * positions stay: the failed record may still have been written below the others, and
     * the reconciliation that follows must read from before it. */
    { "relay_mark",
      "WITH m AS ("
      " UPDATE outbox o SET sent_at = now(), kafka_partition = u.p, kafka_offset = u.o"
      " FROM unnest($2::bigint[], $3::int[], $4::bigint[]) AS u(id, p, o)"
      " WHERE o.id = u.id AND o.producer = $1 AND o.sent_at IS NULL"
      " RETURNING o.topic, o.kafka_partition, o.kafka_offset) "
      "INSERT INTO outbox_position AS op (producer, topic, partition, next_offset) "
      "SELECT $1, topic, kafka_partition, max(kafka_offset) + 1 FROM m "
      "WHERE $5::boolean AND kafka_offset IS NOT NULL GROUP BY topic, kafka_partition "
      "ON CONFLICT (producer, topic, partition) "
      "DO UPDATE SET next_offset = GREATEST(op.next_offset, EXCLUDED.next_offset)", 5 },
};

/* ------------------------------------------------------------------------------------ */
/* The producer */

/* A delivery report. Reports of messages that no longer belong to a round (the producer
 * was dropped after a timed-out round) find round_n == 0 and are ignored. */
static void relay_dr(void *ctx, void *msg_opaque, rd_kafka_resp_err_t err, int32_t partition,
                     int64_t offset)
{
    outbox_relay_t *r = ctx;
    uintptr_t i = (uintptr_t)msg_opaque;
    struct relay_row *row;

    if (i == 0 || i > (uintptr_t)r->round_n)
        return;
    row = &r->rows[i - 1];
    if (row->state != ROW_INFLIGHT)
        return;
    row->state = err == RD_KAFKA_RESP_ERR_NO_ERROR ? ROW_ACKED : ROW_FAILED;
    row->err = err;
    row->partition = partition;
    row->offset = offset;
    r->pending--;
    if (row->state == ROW_ACKED) {
        metric_inc(r->m_published);
        if (row->created_ms > 0)
            metric_observe(r->m_latency, (double)(util_now_ms() - row->created_ms) / 1000.0);
    } else {
        metric_inc(r->m_errors);
    }
}

/* The first round after a start used to wait about a second for the producer's first
 * leader lookup (events committed in that second reached Kafka 30-940 ms late): the
 * metadata is fetched when the producer is made. */
int outbox_producer_open(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    char client_id[128], err[256];

    snprintf(client_id, sizeof(client_id), "dozen-outbox-%s", r->producer);
    r->rk = kafka_producer_new(r->bootstrap, client_id, relay_dr, r, err, sizeof(err));
    if (r->rk == NULL) {
        snprintf(errstr, errstr_size, "kafka: %s", err);
        return -1;
    }
    kafka_producer_warm(r->rk, WARM_MS);
    return 0;
}

void outbox_producer_close(outbox_relay_t *r, int flush_ms)
{
    r->round_n = 0;
    r->pending = 0;
    kafka_producer_close(r->rk, flush_ms);
    r->rk = NULL;
    r->need_reconcile = 1;
}

/* ------------------------------------------------------------------------------------ */
/* A round */

/* Copies a column into an event field. Returns 0, or -1 if it is empty or too long. */
static int copy_col(char *dst, size_t dst_size, const char *src)
{
    int n = snprintf(dst, dst_size, "%s", src);

    return n > 0 && (size_t)n < dst_size ? 0 : -1;
}

/* Returns 1 if an earlier row of this round with the same key could not be handed to the
 * producer: the row then waits for the next round rather than overtake it. */
static int key_blocked(PGresult *res, const struct relay_row *rows, int upto, const char *key)
{
    int i;

    if (key == NULL)
        return 0;
    for (i = 0; i < upto; i++)
        if ((rows[i].state == ROW_FAILED || rows[i].state == ROW_SKIPPED) &&
            !PQgetisnull(res, i, 2) && strcmp(PQgetvalue(res, i, 2), key) == 0)
            return 1;
    return 0;
}

/* Hands row i of res to the producer. Returns 0, or -1 with errstr. */
static int produce_row(outbox_relay_t *r, PGresult *res, int i, char *errstr,
                       size_t errstr_size)
{
    event_meta_t m;
    rd_kafka_headers_t *hdrs;
    const char *topic = PQgetvalue(res, i, 1);
    const char *key = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
    const char *payload = PQgetvalue(res, i, 7);

    memset(&m, 0, sizeof(m));
    if (copy_col(m.id, sizeof(m.id), PQgetvalue(res, i, 3)) != 0 ||
        copy_col(m.type, sizeof(m.type), PQgetvalue(res, i, 4)) != 0 ||
        copy_col(m.source, sizeof(m.source), PQgetvalue(res, i, 5)) != 0 ||
        copy_col(m.time, sizeof(m.time), PQgetvalue(res, i, 6)) != 0) {
        snprintf(errstr, errstr_size, "outbox row %s: a ce_* column is empty or too long",
                 PQgetvalue(res, i, 0));
        return -1;
    }
    /* A traceparent that is missing or not one is left off: the event still goes out. */
    if (!PQgetisnull(res, i, 9) &&
        trace_parse(PQgetvalue(res, i, 9), (size_t)PQgetlength(res, i, 9), NULL, NULL) == 0)
        copy_col(m.traceparent, sizeof(m.traceparent), PQgetvalue(res, i, 9));
    hdrs = event_headers_new(&m);
    if (hdrs == NULL) {
        snprintf(errstr, errstr_size, "out of memory for headers");
        return -1;
    }
    if (kafka_produce(r->rk, topic, key, payload, (size_t)PQgetlength(res, i, 7), hdrs,
                      (void *)(uintptr_t)(i + 1), errstr, errstr_size) != 0) {
        rd_kafka_headers_destroy(hdrs); /* still ours after a failure */
        return -1;
    }
    return 0;
}

/* Waits until every delivery of the round is reported, DELIVERY_WAIT_MS at most, or
 * STOP_FLUSH_MS once the relay is told to stop. */
static void await_reports(outbox_relay_t *r)
{
    int64_t deadline = util_mono_ms() + DELIVERY_WAIT_MS;
    int64_t stop_deadline = 0;

    while (r->pending > 0) {
        int64_t now = util_mono_ms();

        if (outbox_stopping(r)) {
            if (stop_deadline == 0)
                stop_deadline = now + STOP_FLUSH_MS;
            if (now >= stop_deadline)
                return;
        }
        if (now >= deadline)
            return;
        outbox_lease_beat(r);
        rd_kafka_flush(r->rk, 100); /* sends at once and serves the reports */
    }
}

/* Writes the round's acknowledged rows as sent. all_ok says whether positions may move.
 * Returns 0, or -1 with errstr. */
static int mark_sent(outbox_relay_t *r, PGresult *res, int n, int all_ok, char *errstr,
                     size_t errstr_size)
{
    strbuf_t ids = STRBUF_INIT, ps = STRBUF_INIT, os = STRBUF_INIT;
    const char *params[5];
    PGresult *mres = NULL;
    int i, k = 0, ret = -1;

    for (i = 0; i < n; i++) {
        if (r->rows[i].state != ROW_ACKED)
            continue;
        db_array_add_text(&ids, PQgetvalue(res, i, 0));
        db_array_add_int64(&ps, r->rows[i].partition);
        if (r->rows[i].offset >= 0)
            db_array_add_int64(&os, r->rows[i].offset);
        else
            db_array_add_null(&os); /* acks=0 would give no offset */
        k++;
    }
    if (k == 0) {
        ret = 0;
        goto done;
    }
    if (db_array_finish(&ids) != 0 || db_array_finish(&ps) != 0 ||
        db_array_finish(&os) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    params[0] = r->producer;
    params[1] = ids.buf;
    params[2] = ps.buf;
    params[3] = os.buf;
    params[4] = all_ok ? "true" : "false";
    mres = db_exec(r->pg, "relay_mark", 5, params, NULL, errstr, errstr_size);
    if (mres == NULL)
        goto done;
    log_debug("outbox_published producer=%s count=%d", r->producer, k);
    ret = 0;
done:
    PQclear(mres);
    strbuf_release(&ids);
    strbuf_release(&ps);
    strbuf_release(&os);
    return ret;
}

int outbox_publish_round(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    char batch[16], err[256];
    const char *params[2] = { r->producer, batch };
    PGresult *res;
    rd_kafka_resp_err_t ferr;
    int n, i, acked = 0, all_ok = 1, ret = -1;
    long long created;
    int64_t selected_at;

    errstr[0] = '\0';
    snprintf(batch, sizeof(batch), "%d", r->batch);
    res = db_exec(r->pg, "relay_select", 2, params, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    selected_at = util_mono_ms();
    n = PQntuples(res);
    if (n == 0) {
        PQclear(res);
        return 0;
    }

    memset(r->rows, 0, (size_t)n * sizeof(*r->rows));
    r->pending = 0;
    r->round_n = n;
    for (i = 0; i < n; i++) {
        const char *key = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);

        if (outbox_stopping(r))
            break; /* the rest stays for the next start */
        if (util_mono_ms() - selected_at >= r->lease_ms / 2) {
            /* Paused (or starved) since the SELECT: the lease may have run out and a new
             * leader may be publishing these rows. The rest waits for the next round,
             * which starts with a statement that tells whether the session lives. */
            all_ok = 0;
            if (errstr[0] == '\0')
                snprintf(errstr, errstr_size, "round cut short: %lld ms since its SELECT, "
                         "the lease may have run out",
                         (long long)(util_mono_ms() - selected_at));
            break;
        }
        if (key_blocked(res, r->rows, i, key)) {
            r->rows[i].state = ROW_SKIPPED;
            all_ok = 0;
            continue;
        }
        if (outbox_parse_ll(PQgetvalue(res, i, 8), 1, INT64_MAX, &created) == 0)
            r->rows[i].created_ms = (int64_t)created;
        r->rows[i].state = ROW_INFLIGHT; /* before producing: a report may come at once */
        r->pending++;
        if (produce_row(r, res, i, err, sizeof(err)) != 0) {
            r->rows[i].state = ROW_FAILED;
            r->pending--;
            all_ok = 0;
            if (errstr[0] == '\0')
                snprintf(errstr, errstr_size, "%s", err);
        }
        rd_kafka_poll(r->rk, 0);
    }
    await_reports(r);

    for (i = 0; i < n; i++) {
        if (r->rows[i].state == ROW_ACKED) {
            acked++;
        } else if (r->rows[i].state == ROW_FAILED && r->rows[i].err != 0) {
            all_ok = 0;
            if (errstr[0] == '\0')
                snprintf(errstr, errstr_size, "delivery to %s failed: %s",
                         PQgetvalue(res, i, 1), rd_kafka_err2str(r->rows[i].err));
        }
    }
    if (r->pending > 0) {
        metric_add(r->m_errors, r->pending);
        all_ok = 0;
        if (errstr[0] == '\0')
            snprintf(errstr, errstr_size, "%d deliveries not reported within %d s",
                     r->pending, (outbox_stopping(r) ? STOP_FLUSH_MS : DELIVERY_WAIT_MS) / 1000);
    }

    if (r->crash_after_ack && acked > 0) {
        log_warn("outbox_debug_crash producer=%s acked=%d", r->producer, acked);
        _exit(137);
    }

    /* Everything acknowledged is marked, also in a round that failed elsewhere. */
    if (mark_sent(r, res, n, all_ok && r->pending == 0, err, sizeof(err)) != 0) {
        all_ok = 0;
        snprintf(errstr, errstr_size, "marking %d rows sent: %s", acked, err);
    }
    r->round_n = 0;
    if (r->pending > 0)
        outbox_producer_close(r, 0); /* late reports must not reach a later round */
    else if (r->rk != NULL &&
             (ferr = rd_kafka_fatal_error(r->rk, err, sizeof(err))) != 0) {
        log_error("outbox_relay_producer_fatal producer=%s error=%s", r->producer,
                  rd_kafka_err2name(ferr));
        outbox_producer_close(r, 0);
        all_ok = 0;
        if (errstr[0] == '\0')
            snprintf(errstr, errstr_size, "producer fatal error: %s", err);
    }
    if (!all_ok) {
        r->need_reconcile = 1;
        if (errstr[0] == '\0')
            snprintf(errstr, errstr_size, "round incomplete");
        goto done;
    }
    ret = n;
done:
    PQclear(res);
    return ret;
}
