/* consumer: reads `retry` in batches and makes each record durable in PostgreSQL before its
 * offset is committed.
 *
 * This loop is the retry service's own rather than libcommon's kafka_consumer_run (its
 * group member, rebalance handling and thread are libcommon's: kafka_consumer_join,
 * kafka_consumer_spawn): a batch is stored in one transaction and its offsets are committed
 * synchronously right after (enable.auto.commit=false), so an offset is never committed for
 * a record that is not in retry_pending (or, for an invalid record, not yet acknowledged on
 * dead-letter). A crash
 * between the commit in PostgreSQL and the one in Kafka reads the batch again; the unique
 * key on the record's place on `retry` stores it once. */
#include "retry_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"
#include "util.h"

#define POLL_MS 200
#define STORE_BACKOFF_INITIAL_MS 200
#define STORE_BACKOFF_MAX_MS 10000

/* The read-ahead of the consumer (see consumer_new): records and KiB of record values. */
#define READ_AHEAD_MSGS 10000
#define READ_AHEAD_KBYTES "1024"

struct consumer {
    struct retry *r;
    kafka_consumer_t *thread;     /* runs consumer_run */
    const volatile int *stop;     /* the thread's stop flag, set when consumer_run starts */
    int outstanding;        /* dead-letter reports still expected (this thread only) */
    char read_ahead[16];          /* the join's queued.min.messages (consumer_join_opts) */
    const char *defaults[2][2];   /* the join's defaults, pointing at read_ahead */
};

/* Reads one record into row: valid, or marked invalid with the reason. */
static void read_record(const rd_kafka_message_t *msg, store_row_t *row)
{
    rd_kafka_headers_t *hdrs = NULL;
    char err[RETRY_ERROR_MAX - 64]; /* room for the prefix below */

    memset(row, 0, sizeof(*row));
    row->retry_partition = msg->partition;
    row->retry_offset = msg->offset;
    row->retry_timestamp = rd_kafka_message_timestamp(msg, NULL);
    row->key = msg->key;
    row->key_len = msg->key_len;
    row->value = msg->payload;
    row->value_len = msg->len;
    /* No headers at all (NOENT) leaves hdrs NULL: every header is then "missing". */
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        hdrs = NULL;
    if (record_parse(hdrs, &row->rec, err, sizeof(err)) != 0 ||
        record_headers_encode(hdrs, &row->headers, &row->headers_len, err,
                              sizeof(err)) != 0) {
        row->invalid = 1;
        snprintf(row->invalid_error, sizeof(row->invalid_error),
                 "retry record %s[%d]@%lld: %s", RETRY_TOPIC, (int)msg->partition,
                 (long long)msg->offset, err);
    }
}

/* Sends the invalid records of the batch (or, with refused, those PostgreSQL refused) to
 * dead-letter and waits until the broker has
 * them all; a failed delivery is tried again after a pause, unless the record can never be
 * produced (too large): that one is logged with its place on `retry` and left there, so
 * that one record cannot stop the consumer. Returns 0, or -1 when asked to stop before
 * every one was dealt with. */
static int dead_letter_invalid(struct consumer *c, rd_kafka_t *dlq,
                               rd_kafka_message_t **msgs, const store_row_t *rows, size_t n,
                               int refused)
{
    deliver_status_t *st = calloc(n, sizeof(*st));
    int64_t backoff = STORE_BACKOFF_INITIAL_MS;
    int ret = -1, left;

    if (st == NULL) {
        log_error("retry_dead_letter_failed error=\"out of memory\"");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        st[i].err = (refused ? rows[i].refused : rows[i].invalid) ? RD_KAFKA_RESP_ERR__FAIL
                                                                  : RD_KAFKA_RESP_ERR_NO_ERROR;
    for (;;) {
        for (size_t i = 0; i < n; i++) {
            rd_kafka_headers_t *in = NULL, *hdrs;
            char err[512];

            if (st[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                continue;
            if (rd_kafka_message_headers(msgs[i], &in) != RD_KAFKA_RESP_ERR_NO_ERROR)
                in = NULL;
            hdrs = record_invalid_headers(in, c->r->cfg.group, RETRY_TOPIC,
                                          rows[i].retry_partition, rows[i].retry_offset,
                                          rows[i].invalid_error, util_now_ms(), err,
                                          sizeof(err));
            if (hdrs == NULL ||
                deliver_produce(dlq, &c->outstanding, RETRY_DEAD_LETTER_TOPIC, msgs[i]->key,
                                msgs[i]->key_len, msgs[i]->payload, msgs[i]->len, hdrs,
                                &st[i], err, sizeof(err)) != 0) {
                if (hdrs != NULL)
                    rd_kafka_headers_destroy(hdrs);
                if (hdrs == NULL)
                    st[i].err = RD_KAFKA_RESP_ERR__FAIL;
            }
        }
        deliver_wait(dlq, &c->outstanding);
        left = 0;
        for (size_t i = 0; i < n; i++) {
            if (st[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                continue;
            if (deliver_permanent(st[i].err)) {
                log_error("retry_record_dropped partition=%d offset=%lld err=%s "
                          "reason=\"invalid, and cannot be written to dead-letter\"",
                          (int)rows[i].retry_partition, (long long)rows[i].retry_offset,
                          rd_kafka_err2name(st[i].err));
                st[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
                continue;
            }
            left++;
            log_error("retry_dead_letter_failed partition=%d offset=%lld err=%s",
                      (int)rows[i].retry_partition, (long long)rows[i].retry_offset,
                      rd_kafka_err2name(st[i].err));
        }
        if (left == 0) {
            ret = 0;
            break;
        }
        if (*c->stop)
            break;
        util_sleep_ms(backoff, c->stop);
        backoff = backoff * 2 > STORE_BACKOFF_MAX_MS ? STORE_BACKOFF_MAX_MS : backoff * 2;
    }
    free(st);
    return ret;
}

/* Stores the batch, trying again after a pause while PostgreSQL fails transiently (down,
 * restarting, a migration missing). Returns 0; 1 at once when the database refuses the data
 * of a row (db_error_classify: DB_ERROR_DATA; nothing kept), which no retry would change;
 * or -1 when asked to stop first. */
static int store_rows(struct consumer *c, const store_row_t *rows, size_t n,
                      size_t *inserted, int64_t *earliest_due, char *err, size_t err_size)
{
    const struct config *cfg = &c->r->cfg;
    int64_t backoff = STORE_BACKOFF_INITIAL_MS;
    char state[6];
    db_error_t dberr;

    for (;;) {
        PGconn *conn;
        int rc = -1;

        db_error_reset();
        conn = db_acquire(c->r->db, (int)cfg->db_wait_ms, err, err_size);
        if (conn != NULL)
            rc = store_batch(conn, rows, n, cfg->group, inserted, earliest_due, state, err,
                             err_size);
        db_release(c->r->db, conn);
        if (rc == 0)
            return 0;
        if (conn != NULL && db_error_last(&dberr) &&
            db_error_classify(dberr.sqlstate, dberr.constraint) == DB_ERROR_DATA)
            return 1;
        log_error("retry_store_failed records=%zu retry_in_ms=%lld error=%s", n,
                  (long long)backoff, LOG_Q(err));
        if (*c->stop)
            return -1;
        util_sleep_ms(backoff, c->stop);
        backoff = backoff * 2 > STORE_BACKOFF_MAX_MS ? STORE_BACKOFF_MAX_MS : backoff * 2;
    }
}

/* The batch held a row whose data PostgreSQL refuses: stores the rows one by one to find
 * each such row, marks it refused (with the database's message) and sends it to
 * dead-letter. What is stored meanwhile is stored again, once, with the batch (ON CONFLICT
 * DO NOTHING). Returns 0, or -1 when asked to stop first. */
static int refuse_rows(struct consumer *c, rd_kafka_t *dlq, rd_kafka_message_t **msgs,
                       store_row_t *rows, size_t n)
{
    size_t refused = 0, ins;
    int64_t due;
    char err[RETRY_ERROR_MAX - 96]; /* room for the prefix below */

    for (size_t i = 0; i < n; i++) {
        int rc;

        if (rows[i].invalid || rows[i].refused)
            continue;
        rc = store_rows(c, &rows[i], 1, &ins, &due, err, sizeof(err));
        if (rc < 0)
            return -1;
        if (rc == 1) {
            rows[i].refused = 1;
            refused++;
            snprintf(rows[i].invalid_error, sizeof(rows[i].invalid_error),
                     "retry record %s[%d]@%lld refused by the database: %s", RETRY_TOPIC,
                     (int)rows[i].retry_partition, (long long)rows[i].retry_offset, err);
            log_warn("retry_record_refused partition=%d offset=%lld ce_id=%s error=%s",
                     (int)rows[i].retry_partition, (long long)rows[i].retry_offset,
                     rows[i].rec.ce_id[0] != '\0' ? rows[i].rec.ce_id : "-", LOG_Q(err));
        }
    }
    return refused > 0 ? dead_letter_invalid(c, dlq, msgs, rows, n, 1) : 0;
}

/* Commits, synchronously, the offset after the last record of each partition in rows. A
 * failure (the partition moved to another member meanwhile) is logged: the next owner
 * reads those records again and the unique key stores them once. */
static void commit_offsets(rd_kafka_t *rk, const char *group, const store_row_t *rows,
                           size_t n)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(4);
    rd_kafka_resp_err_t err;

    for (size_t i = 0; i < n; i++) {
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, RETRY_TOPIC, rows[i].retry_partition);

        if (tp == NULL)
            tp = rd_kafka_topic_partition_list_add(list, RETRY_TOPIC, rows[i].retry_partition);
        if (rows[i].retry_offset + 1 > tp->offset)
            tp->offset = rows[i].retry_offset + 1;
    }
    if (list->cnt > 0) {
        err = rd_kafka_commit(rk, list, 0);
        for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++)
            err = list->elems[i].err;
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            log_warn("kafka_commit_failed group=%s err=%s", group, rd_kafka_err2name(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* Handles one batch: dead letters first, then the rows, then the offsets. */
static void handle_batch(struct consumer *c, rd_kafka_t *rk, rd_kafka_t *dlq,
                         rd_kafka_message_t **msgs, store_row_t *rows, size_t n)
{
    size_t invalid = 0, inserted = 0, i;
    int64_t earliest = INT64_MAX;

    for (i = 0; i < n; i++) {
        read_record(msgs[i], &rows[i]);
        if (rows[i].invalid) {
            invalid++;
            log_warn("retry_record_invalid partition=%d offset=%lld ce_id=%s error=%s",
                     (int)rows[i].retry_partition, (long long)rows[i].retry_offset,
                     rows[i].rec.ce_id[0] != '\0' ? rows[i].rec.ce_id : "-", LOG_Q(rows[i].invalid_error));
        }
    }
    if (invalid > 0 && dead_letter_invalid(c, dlq, msgs, rows, n, 0) != 0)
        goto done; /* stopping: nothing committed, the batch is read again on restart */
    for (;;) {
        char err[512];
        int rc = store_rows(c, rows, n, &inserted, &earliest, err, sizeof(err));

        if (rc < 0)
            goto done;
        if (rc == 0)
            break;
        /* A row refused for its data cannot block the partition: find it, dead-letter it,
         * store the rest. */
        if (refuse_rows(c, dlq, msgs, rows, n) != 0)
            goto done;
    }
    commit_offsets(rk, c->r->cfg.group, rows, n);
    for (i = 0; i < n; i++) {
        if (!rows[i].invalid && !rows[i].refused)
            log_debug("retry_stored group=%s ce_id=%s attempt=%d partition=%d offset=%lld",
                      rows[i].rec.info.group,
                      rows[i].rec.ce_id[0] != '\0' ? rows[i].rec.ce_id : "-",
                      (int)rows[i].rec.info.attempt, (int)rows[i].retry_partition,
                      (long long)rows[i].retry_offset);
    }
    log_debug("retry_batch_stored records=%zu new=%zu invalid=%zu", n, inserted, invalid);
    if (inserted > 0)
        scheduler_kick(c->r->scheduler, earliest);
done:
    for (i = 0; i < n; i++) {
        free(rows[i].headers);
        rows[i].headers = NULL;
    }
}

/* How the member of `retry`'s group is made (at start, and again after a fatal error):
 * j points into c, which outlives it. kafka_consumer_join subscribes it to `retry`. */
static void consumer_join_opts(struct consumer *c, kafka_consumer_join_t *j)
{
    const struct config *cfg = &c->r->cfg;
    static const char *const topics[] = { RETRY_TOPIC };

    /* A bounded read-ahead, so that what waits on `retry` waits on the broker, not here.
     * librdkafka's defaults prefetch up to 100,000 records a partition (queued.min.messages)
     * and 64 MiB (queued.max.messages.kbytes, which counts record values only: not keys,
     * headers, nor the few hundred bytes librdkafka keeps per record), so a burst or a
     * backlog was held in this process: 100,000 retry records of ~550 bytes took ~60 MiB
     * (docs/bench.md). The count is what bounds small records, the KiB large values
     * (fetch.max.bytes follows the KiB, and stays at least message.max.bytes). Not smaller:
     * librdkafka 2.0.2 fetches again only when its broker thread next wakes, up to a second
     * after the queue fell under the mark (fetch.queue.backoff.ms came in 2.1), so the
     * read-ahead must hold about a second of storing, or intake and with it lateness
     * suffer: with 1,000, some 1,700 records a second were stored instead of 17,000. The
     * operator's KAFKA_QUEUED_MIN_MESSAGES and KAFKA_QUEUED_MAX_MESSAGES_KBYTES still win. */
    snprintf(c->read_ahead, sizeof(c->read_ahead), "%d",
             2 * cfg->batch > READ_AHEAD_MSGS ? 2 * cfg->batch : READ_AHEAD_MSGS);
    c->defaults[0][0] = "queued.min.messages";
    c->defaults[0][1] = c->read_ahead;
    c->defaults[1][0] = "queued.max.messages.kbytes";
    c->defaults[1][1] = READ_AHEAD_KBYTES;
    memset(j, 0, sizeof(*j));
    j->bootstrap = cfg->kafka_bootstrap;
    j->client_id = RETRY_SERVICE;
    j->group = cfg->group;
    j->topics = topics;
    j->ntopics = 1;
    /* Offsets are committed by hand, after the rows are durable (nothing to commit on
     * revoke: every batch is committed before the next poll). */
    j->auto_commit = 0;
    j->defaults = (const char *const (*)[2])c->defaults;
    j->ndefaults = 2;
    j->instance_id = cfg->svc.instance_id;
}

/* The loop: returns 0 after a clean stop, or -1 with errstr when a client could not be
 * created. */
static int consumer_run(void *ctx, const volatile int *stop, char *errstr,
                        size_t errstr_size)
{
    struct consumer *c = ctx;
    const struct config *cfg = &c->r->cfg;
    size_t cap = (size_t)cfg->batch;
    rd_kafka_message_t **msgs = calloc(cap, sizeof(*msgs));
    store_row_t *rows = calloc(cap, sizeof(*rows));
    rd_kafka_t *rk = NULL, *dlq = NULL;
    kafka_consumer_join_t join;
    int ret = -1;

    c->stop = stop;
    if (msgs == NULL || rows == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    dlq = kafka_producer_new(cfg->kafka_bootstrap, RETRY_SERVICE "-dead-letter",
                             deliver_report, &c->outstanding, errstr, errstr_size);
    if (dlq == NULL)
        goto done;
    consumer_join_opts(c, &join);
    rk = kafka_consumer_join(&join, errstr, errstr_size);
    if (rk == NULL)
        goto done;
    log_info("kafka_consumer_started group=%s topic=%s batch=%zu", cfg->group, RETRY_TOPIC,
             cap);

    while (!*c->stop) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, POLL_MS);
        size_t good = 0;
        int fatal = 0;

        /* Whatever is already fetched joins the batch, up to its size. */
        while (msg != NULL) {
            if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fatal = fatal || msg->err == RD_KAFKA_RESP_ERR__FATAL;
                kafka_consumer_log_error(cfg->group, msg);
                rd_kafka_message_destroy(msg);
            } else {
                msgs[good++] = msg;
            }
            if (good == cap)
                break;
            msg = rd_kafka_consumer_poll(rk, 0);
        }
        if (good > 0 && !fatal)
            handle_batch(c, rk, dlq, msgs, rows, good); /* a fenced member cannot commit */
        for (size_t i = 0; i < good; i++)
            rd_kafka_message_destroy(msgs[i]);
        if (fatal && kafka_consumer_rejoin(&rk, &join, c->stop) != 0)
            break;
    }
    ret = 0;
done:
    if (rk != NULL) {
        kafka_consumer_leave(rk);
        log_info("kafka_consumer_stopped group=%s", cfg->group);
    }
    kafka_producer_close(dlq, 10000);
    free(msgs);
    free(rows);
    return ret;
}

struct consumer *consumer_start(struct retry *r, char *errstr, size_t errstr_size)
{
    struct consumer *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->r = r;
    c->thread = kafka_consumer_spawn(consumer_run, c, r->cfg.group, errstr, errstr_size);
    if (c->thread == NULL) {
        free(c);
        return NULL;
    }
    return c;
}

int consumer_failed(struct consumer *c)
{
    return c != NULL && kafka_consumer_failed(c->thread);
}

void consumer_stop(struct consumer *c)
{
    if (c == NULL)
        return;
    kafka_consumer_stop(c->thread);
    free(c);
}
