/* outbox: the transactional outbox and its relay to Kafka.
 *
 * How the relay keeps "published exactly once" across crashes:
 *
 * - One publisher per producer. The relay holds a session advisory lock keyed on the
 *   producer name on its own connection; a relay that does not hold it stands by. Losing the
 *   connection loses the lock, and the relay must take it again.
 * - A row is marked sent (with the partition and offset the broker reported) only after its
 *   delivery report said the broker acknowledged it (idempotent producer, acks=all). The
 *   mark also moves outbox_position(producer, topic, partition).next_offset past the record.
 * - A relay can die between the acknowledgement and the mark (SIGKILL, power loss), leaving
 *   records on the topic whose rows are still unsent. So before its first publishing round
 *   after taking the lock, and after any round in which a delivery failed or could not be
 *   marked, the relay reconciles: for every topic with unsent rows of its producer it reads
 *   each partition from outbox_position.next_offset (or the low watermark when there is no
 *   usable position) up to the high watermark, collects the ce_id header of each record, and
 *   marks the unsent rows whose ce_id it found. Only then does it publish. A reconciliation
 *   that cannot finish (broker or database down, time limit) is retried later; the relay
 *   never publishes on a guess.
 *
 * What this does not cover: a relay that lost its database session (and so its lock) but
 * keeps running, cut off from PostgreSQL yet not from Kafka, can still deliver the round it
 * had in flight while a new leader publishes the same rows. Fencing that needs Kafka
 * transactions; here the window is one round of at most `batch` rows. Consumers deduplicate
 * on ce_id in any case.
 *
 * Test hook: with OUTBOX_DEBUG_CRASH_AFTER_ACK=1 in the environment when the relay starts,
 * the process _exit(137)s right after a round's delivery reports came back and before the
 * rows are marked sent: the state a SIGKILL at the worst moment leaves behind. The system
 * test of the relay uses it to check that a restart publishes nothing twice. */
#include "outbox.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "kafka.h"
#include "log.h"
#include "strbuf.h"
#include "util.h"

#define DEFAULT_POLL_MS 5000
#define DEFAULT_BATCH 500
#define MAX_BATCH 100000
#define MAX_PRODUCER_LEN 64

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* The producer reports every message within message.timeout.ms (30 s by default in
 * kafka.c); past this the round gives up on the producer and starts a fresh one. */
#define DELIVERY_WAIT_MS 35000
#define STOP_FLUSH_MS 10000          /* how long a stopping relay waits for reports */
#define RECONCILE_TIMEOUT_MS 30000   /* one whole reconciliation */
#define KAFKA_QUERY_TIMEOUT_MS 5000  /* one metadata or watermark request */
#define PRUNE_INTERVAL_MS (3600LL * 1000)
#define PRUNE_RETRY_MS (60LL * 1000)
#define PRUNE_BATCH 1000             /* rows per DELETE */
#define PRUNE_MAX_BATCHES 100        /* rows per pruning pass: at most 100 000 */

/* First key of the relay's two-int advisory lock; the second is hashtext(producer). */
#define RELAY_LOCK_CLASS "1869574754"

#define NOTIFY_CHANNEL "dozen_outbox"

/* ------------------------------------------------------------------------------------ */
/* outbox_add */

/* Kafka's own rule for topic names. */
static int topic_name_ok(const char *t)
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

int outbox_add(PGconn *conn, const char *producer, const char *topic, const char *key,
               const char *ce_type, const char *ce_source, const char *payload_json,
               char *ce_id_out, char *errstr, size_t errstr_size)
{
    event_meta_t m;
    const char *params[8];
    PGresult *res;

    if (conn == NULL || producer == NULL || producer[0] == '\0' || topic == NULL ||
        payload_json == NULL) {
        snprintf(errstr, errstr_size, "outbox_add: missing argument");
        return -1;
    }
    if (!topic_name_ok(topic)) {
        snprintf(errstr, errstr_size, "outbox_add: bad topic name '%.64s'", topic);
        return -1;
    }
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
    res = db_exec(conn, OUTBOX_STMT_NAME, 8, params, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    PQclear(res);
    if (ce_id_out != NULL)
        memcpy(ce_id_out, m.id, sizeof(m.id));
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* The relay's statements, prepared on its own connection. */

static const db_stmt_t relay_stmts[] = {
    { "relay_lock",
      "SELECT pg_try_advisory_lock(" RELAY_LOCK_CLASS ", hashtext($1))", 1 },
    { "relay_select",
      "SELECT id, topic, msg_key, ce_id, ce_type, ce_source, "
      "to_char(ce_time AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), payload "
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
    { "relay_unsent_topics",
      "SELECT DISTINCT topic FROM outbox WHERE producer = $1 AND sent_at IS NULL", 1 },
    { "relay_unsent_ids",
      "SELECT ce_id FROM outbox WHERE producer = $1 AND topic = $2 AND sent_at IS NULL", 2 },
    { "relay_positions",
      "SELECT partition, next_offset FROM outbox_position "
      "WHERE producer = $1 AND topic = $2", 2 },
    { "relay_found",
      "UPDATE outbox o SET sent_at = now(), kafka_partition = u.p, kafka_offset = u.o "
      "FROM unnest($3::uuid[], $4::int[], $5::bigint[]) AS u(ce_id, p, o) "
      "WHERE o.producer = $1 AND o.topic = $2 AND o.ce_id = u.ce_id AND o.sent_at IS NULL",
      5 },
    /* After a reconciliation read a partition to its end, that end is the position, also
     * when it is lower than the stored one (the dev broker restarts empty). */
    { "relay_set_positions",
      "INSERT INTO outbox_position (producer, topic, partition, next_offset) "
      "SELECT $1, $2, u.p, u.o FROM unnest($3::int[], $4::bigint[]) AS u(p, o) "
      "ON CONFLICT (producer, topic, partition) DO UPDATE SET next_offset = "
      "EXCLUDED.next_offset", 4 },
    { "relay_prune",
      "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE producer = $1 "
      "AND sent_at < now() - interval '7 days' ORDER BY id LIMIT $2::int)", 2 },
};
#define RELAY_NSTMTS (sizeof(relay_stmts) / sizeof(relay_stmts[0]))

/* ------------------------------------------------------------------------------------ */
/* Relay state */

enum row_state { ROW_SKIPPED = 0, ROW_INFLIGHT, ROW_ACKED, ROW_FAILED };

/* One outbox row of the round in progress; its text lives in the round's PGresult. */
struct relay_row {
    enum row_state state;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
};

struct outbox_relay {
    /* Options, copied. */
    char *conninfo;
    char *bootstrap;
    char *producer;
    int64_t poll_ms;
    int batch;
    int crash_after_ack; /* OUTBOX_DEBUG_CRASH_AFTER_ACK, see the top of this file */

    pthread_t thread;
    volatile int stop;
    int wake[2]; /* self-pipe: outbox_relay_stop() writes to wake[1] */

    pthread_mutex_t mu; /* guards the status */
    int status_ok;
    char status_err[512];

    /* The rest belongs to the relay thread. */
    PGconn *pg;        /* the leader's LISTENs and holds the advisory lock */
    rd_kafka_t *rk;    /* our producer */
    int leader;
    int need_reconcile;
    struct relay_row *rows; /* batch entries, allocated at start */
    int round_n;            /* rows the delivery callback may touch; 0 between rounds */
    int pending;            /* deliveries not yet reported */
    int64_t next_prune_ms;
    char logged_err[512];   /* last failure logged; "" while healthy */
    int standby_logged;
};

static int stopping(outbox_relay_t *r)
{
    return __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE);
}

/* Copies s into out for a quoted log value: double quotes become single quotes, control
 * characters spaces. */
static void log_value(const char *s, char *out, size_t out_size)
{
    size_t i;

    for (i = 0; s != NULL && s[i] != '\0' && i + 1 < out_size; i++) {
        unsigned char c = (unsigned char)s[i];

        out[i] = c == '"' ? '\'' : (iscntrl(c) ? ' ' : (char)c);
    }
    out[i] = '\0';
}

/* Records a failure for outbox_relay_status() and logs it when it differs from the last
 * one logged, so that a relay retrying every few seconds logs once per state change. */
static void relay_failed(outbox_relay_t *r, const char *err)
{
    char q[512];

    pthread_mutex_lock(&r->mu);
    r->status_ok = 0;
    snprintf(r->status_err, sizeof(r->status_err), "%s", err);
    pthread_mutex_unlock(&r->mu);

    if (strcmp(r->logged_err, err) != 0) {
        snprintf(r->logged_err, sizeof(r->logged_err), "%s", err);
        log_value(err, q, sizeof(q));
        log_error("outbox_relay_error producer=%s error=\"%s\"", r->producer, q);
    }
}

static void relay_healthy(outbox_relay_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->status_ok = 1;
    r->status_err[0] = '\0';
    pthread_mutex_unlock(&r->mu);

    if (r->logged_err[0] != '\0') {
        r->logged_err[0] = '\0';
        log_info("outbox_relay_recovered producer=%s", r->producer);
    }
}

/* Sleeps up to ms, returning early when the relay is told to stop. */
static void relay_sleep(outbox_relay_t *r, int64_t ms)
{
    int64_t deadline = util_mono_ms() + ms;

    while (!stopping(r)) {
        struct pollfd pfd = { r->wake[0], POLLIN, 0 };
        int64_t left = deadline - util_mono_ms();

        if (left <= 0)
            return;
        if (poll(&pfd, 1, (int)(left > 1000 ? 1000 : left)) > 0)
            return; /* only outbox_relay_stop() writes to the pipe */
    }
}

/* Parses a whole base-10 integer from the database within [min, max]. Returns 0, or -1. */
static int parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Connections */

static void pg_close(outbox_relay_t *r)
{
    PQfinish(r->pg);
    r->pg = NULL;
    if (r->leader && !stopping(r))
        log_info("outbox_relay_leadership_lost producer=%s", r->producer);
    r->leader = 0; /* the lock went with the session */
}

static int pg_open(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    char err[256];

    r->pg = db_connect(r->conninfo, relay_stmts, RELAY_NSTMTS, err, sizeof(err));
    if (r->pg == NULL) {
        snprintf(errstr, errstr_size, "database: %s", err);
        return -1;
    }
    return 0;
}

/* Starts listening for new rows. Only the leader listens: a standby would collect
 * notifications it never reads. Returns 0, or -1 with errstr. */
static int pg_listen(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    char err[256];
    PGresult *res = db_query(r->pg, "LISTEN " NOTIFY_CHANNEL, 0, NULL, NULL, err,
                             sizeof(err));

    if (res == NULL) {
        snprintf(errstr, errstr_size, "database: LISTEN: %s", err);
        return -1;
    }
    PQclear(res);
    return 0;
}

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
}

static int producer_open(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    char client_id[128], err[256];

    snprintf(client_id, sizeof(client_id), "dozen-outbox-%s", r->producer);
    r->rk = kafka_producer_new(r->bootstrap, client_id, relay_dr, r, err, sizeof(err));
    if (r->rk == NULL) {
        snprintf(errstr, errstr_size, "kafka: %s", err);
        return -1;
    }
    return 0;
}

/* Drops the producer; whatever it still had queued or in flight may or may not have been
 * written, so the next publishing round is preceded by a reconciliation. */
static void producer_close(outbox_relay_t *r, int flush_ms)
{
    r->round_n = 0;
    r->pending = 0;
    kafka_producer_close(r->rk, flush_ms);
    r->rk = NULL;
    r->need_reconcile = 1;
}

/* Returns 1 when this relay holds the producer's lock now, 0 when another one does, -1
 * with errstr on failure. The lock is held until the session ends. */
static int leader_try(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    const char *params[1] = { r->producer };
    PGresult *res;
    int got;

    res = db_exec(r->pg, "relay_lock", 1, params, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return got;
}

/* ------------------------------------------------------------------------------------ */
/* Reconciliation */

struct unsent_id {
    char id[37];
    int found;
    int32_t partition;
    int64_t offset;
};

struct part_scan {
    int32_t id;
    int64_t end;  /* high watermark when the scan started */
    int done;
};

static int cmp_unsent(const void *a, const void *b)
{
    return strcmp(((const struct unsent_id *)a)->id, ((const struct unsent_id *)b)->id);
}

/* Loads the ce_ids of this producer's unsent rows for topic, sorted. *out is a new array.
 * Returns the count, or -1 with errstr. */
static int load_unsent(outbox_relay_t *r, const char *topic, struct unsent_id **out,
                       char *errstr, size_t errstr_size)
{
    const char *params[2] = { r->producer, topic };
    PGresult *res;
    struct unsent_id *ids = NULL;
    int n, i, ret = -1;

    res = db_exec(r->pg, "relay_unsent_ids", 2, params, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    n = PQntuples(res);
    ids = calloc(n > 0 ? (size_t)n : 1, sizeof(*ids));
    if (ids == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (i = 0; i < n; i++)
        snprintf(ids[i].id, sizeof(ids[i].id), "%s", PQgetvalue(res, i, 0));
    qsort(ids, (size_t)n, sizeof(*ids), cmp_unsent);
    *out = ids;
    ids = NULL;
    ret = n;
done:
    free(ids);
    PQclear(res);
    return ret;
}

/* Creates the consumer that reads topics back: partitions are assigned by hand and nothing
 * is ever committed. librdkafka wants a group.id for assign(); it is never joined. */
static rd_kafka_t *reader_new(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    static const char *const props[][2] = {
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        { "enable.partition.eof", "true" },
        { "auto.offset.reset", "earliest" },
        { "isolation.level", "read_uncommitted" },
    };
    char name[128], err[256];
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    size_t i;

    snprintf(name, sizeof(name), "dozen-outbox-reconcile-%s", r->producer);
    conf = kafka_conf_new(r->bootstrap, name, err, sizeof(err));
    if (conf == NULL) {
        snprintf(errstr, errstr_size, "kafka: %s", err);
        goto done;
    }
    if (rd_kafka_conf_set(conf, "group.id", name, err, sizeof(err)) != RD_KAFKA_CONF_OK)
        goto conf_err;
    for (i = 0; i < sizeof(props) / sizeof(props[0]); i++)
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err)) !=
            RD_KAFKA_CONF_OK)
            goto conf_err;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL)
        goto conf_err;
    conf = NULL; /* rd_kafka_new took it */
    goto done;
conf_err:
    snprintf(errstr, errstr_size, "kafka reader: %s", err);
done:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return rk;
}

/* Partition ids of topic from the broker's metadata. *out is a new array. Returns the
 * count (0 when the topic does not exist: nothing was published to it), or -1 with errstr. */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int32_t **out,
                            char *errstr, size_t errstr_size)
{
    rd_kafka_topic_t *rkt = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int32_t *ids = NULL;
    int i, n, ret = -1;

    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL) {
        snprintf(errstr, errstr_size, "topic %s: %s", topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        goto done;
    }
    err = rd_kafka_metadata(rk, 0, rkt, &md, KAFKA_QUERY_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "metadata of %s: %s", topic, rd_kafka_err2str(err));
        goto done;
    }
    if (md->topic_cnt != 1) {
        snprintf(errstr, errstr_size, "metadata of %s: no answer for the topic", topic);
        goto done;
    }
    if (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        *out = NULL;
        ret = 0;
        goto done;
    }
    if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "metadata of %s: %s", topic,
                 rd_kafka_err2str(md->topics[0].err));
        goto done;
    }
    n = md->topics[0].partition_cnt;
    ids = calloc(n > 0 ? (size_t)n : 1, sizeof(*ids));
    if (ids == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (i = 0; i < n; i++)
        ids[i] = md->topics[0].partitions[i].id;
    *out = ids;
    ids = NULL;
    ret = n;
done:
    free(ids);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    return ret;
}

static struct part_scan *find_part(struct part_scan *parts, int n, int32_t id)
{
    int i;

    if (id >= 0 && id < n && parts[id].id == id)
        return &parts[id];
    for (i = 0; i < n; i++)
        if (parts[i].id == id)
            return &parts[i];
    return NULL;
}

/* Looks at one record read back: if it carries the ce_id of an unsent row, remembers
 * where it is. */
static void match_record(const rd_kafka_message_t *msg, struct unsent_id *ids, int nids)
{
    struct unsent_id key, *hit;
    char *v = kafka_header_dup(msg, "ce_id");
    size_t i;

    if (v == NULL)
        return;
    if (util_is_uuid(v)) {
        for (i = 0; v[i] != '\0'; i++)
            key.id[i] = (char)tolower((unsigned char)v[i]);
        key.id[i] = '\0';
        hit = bsearch(&key, ids, (size_t)nids, sizeof(*ids), cmp_unsent);
        if (hit != NULL && !hit->found) { /* a duplicate further on keeps the first */
            hit->found = 1;
            hit->partition = msg->partition;
            hit->offset = msg->offset;
        }
    }
    free(v);
}

/* Reads the given partitions of topic from their start offsets to their ends and matches
 * every record against ids. Returns 0 when every partition was read to its end, or -1 with
 * errstr (deadline, stop, read error). */
static int read_back(outbox_relay_t *r, rd_kafka_t *rk, const char *topic,
                     rd_kafka_topic_partition_list_t *assign, struct part_scan *parts,
                     int nparts, struct unsent_id *ids, int nids, int64_t deadline,
                     char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t err;
    int left = 0, i, ret = -1;

    for (i = 0; i < nparts; i++)
        left += !parts[i].done;
    err = rd_kafka_assign(rk, assign);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "reading back %s: assign: %s", topic,
                 rd_kafka_err2str(err));
        return -1;
    }
    while (left > 0) {
        rd_kafka_message_t *msg;
        struct part_scan *p;

        if (stopping(r)) {
            snprintf(errstr, errstr_size, "reading back %s: stopped", topic);
            goto done;
        }
        if (util_mono_ms() >= deadline) {
            snprintf(errstr, errstr_size, "reading back %s: not done within %d s", topic,
                     RECONCILE_TIMEOUT_MS / 1000);
            goto done;
        }
        msg = rd_kafka_consumer_poll(rk, 200);
        if (msg == NULL)
            continue;
        p = msg->rkt != NULL && strcmp(rd_kafka_topic_name(msg->rkt), topic) == 0
                ? find_part(parts, nparts, msg->partition)
                : NULL;
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (p != NULL && !p->done && msg->offset < p->end)
                match_record(msg, ids, nids);
            if (p != NULL && !p->done && msg->offset + 1 >= p->end) {
                p->done = 1;
                left--;
            }
        } else if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* Control records or compaction can leave the end without a record on it. */
            if (p != NULL && !p->done && msg->offset >= p->end) {
                p->done = 1;
                left--;
            }
        } else {
            snprintf(errstr, errstr_size, "reading back %s [%d]: %s", topic,
                     (int)msg->partition, rd_kafka_message_errstr(msg));
            rd_kafka_message_destroy(msg);
            goto done;
        }
        rd_kafka_message_destroy(msg);
    }
    ret = 0;
done:
    rd_kafka_assign(rk, NULL);
    return ret;
}

/* Reconciles one topic: see the top of this file. Adds the number of rows found to
 * *found. Returns 0, or -1 with errstr. */
static int reconcile_topic(outbox_relay_t *r, rd_kafka_t *rk, const char *topic,
                           int64_t deadline, int *found, char *errstr, size_t errstr_size)
{
    struct unsent_id *ids = NULL;
    int32_t *pids = NULL;
    struct part_scan *parts = NULL;
    int64_t *stored = NULL;
    rd_kafka_topic_partition_list_t *assign = NULL;
    PGresult *res = NULL;
    strbuf_t sb_ids = STRBUF_INIT, sb_p = STRBUF_INIT, sb_o = STRBUF_INIT;
    strbuf_t sb_pp = STRBUF_INIT, sb_po = STRBUF_INIT;
    const char *params[5];
    int nids, nparts, i, nfound = 0, ret = -1;

    nids = load_unsent(r, topic, &ids, errstr, errstr_size);
    if (nids <= 0) {
        ret = nids; /* none left (0) or an error (-1) */
        goto done;
    }
    nparts = topic_partitions(rk, topic, &pids, errstr, errstr_size);
    if (nparts <= 0) {
        ret = nparts; /* a topic that does not exist holds none of ours */
        goto done;
    }
    parts = calloc((size_t)nparts, sizeof(*parts));
    stored = calloc((size_t)nparts, sizeof(*stored));
    assign = rd_kafka_topic_partition_list_new(nparts);
    if (parts == NULL || stored == NULL || assign == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (i = 0; i < nparts; i++) {
        parts[i].id = pids[i];
        stored[i] = -1;
    }

    params[0] = r->producer;
    params[1] = topic;
    res = db_exec(r->pg, "relay_positions", 2, params, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    for (i = 0; i < PQntuples(res); i++) {
        long long pid, off;
        struct part_scan *p;

        if (parse_ll(PQgetvalue(res, i, 0), 0, INT32_MAX, &pid) != 0 ||
            parse_ll(PQgetvalue(res, i, 1), 0, INT64_MAX, &off) != 0)
            continue; /* no usable position: the partition is read from its start */
        p = find_part(parts, nparts, (int32_t)pid);
        if (p != NULL)
            stored[p - parts] = off;
    }
    PQclear(res);
    res = NULL;

    for (i = 0; i < nparts; i++) {
        int64_t lo, hi, start;
        rd_kafka_resp_err_t err;

        if (util_mono_ms() >= deadline || stopping(r)) {
            snprintf(errstr, errstr_size, "reading back %s: not done in time", topic);
            goto done;
        }
        err = rd_kafka_query_watermark_offsets(rk, topic, parts[i].id, &lo, &hi,
                                               KAFKA_QUERY_TIMEOUT_MS);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errstr_size, "watermarks of %s [%d]: %s", topic,
                     (int)parts[i].id, rd_kafka_err2str(err));
            goto done;
        }
        /* A stored position outside the log (retention deleted the start, or the broker
         * lost everything) is no guide: read all the partition holds. */
        start = stored[i] >= lo && stored[i] <= hi ? stored[i] : lo;
        parts[i].end = hi;
        if (start >= hi) {
            parts[i].done = 1;
            continue;
        }
        rd_kafka_topic_partition_list_add(assign, topic, parts[i].id)->offset = start;
    }
    if (assign->cnt > 0 &&
        read_back(r, rk, topic, assign, parts, nparts, ids, nids, deadline, errstr,
                  errstr_size) != 0)
        goto done;

    /* Mark what was found and store the ends, in one transaction. */
    for (i = 0; i < nids; i++) {
        if (!ids[i].found)
            continue;
        db_array_add_text(&sb_ids, ids[i].id);
        db_array_add_int64(&sb_p, ids[i].partition);
        db_array_add_int64(&sb_o, ids[i].offset);
        nfound++;
    }
    for (i = 0; i < nparts; i++) {
        db_array_add_int64(&sb_pp, parts[i].id);
        db_array_add_int64(&sb_po, parts[i].end);
    }
    if (db_array_finish(&sb_ids) != 0 || db_array_finish(&sb_p) != 0 ||
        db_array_finish(&sb_o) != 0 || db_array_finish(&sb_pp) != 0 ||
        db_array_finish(&sb_po) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }

    if (db_begin(r->pg, errstr, errstr_size) != 0)
        goto done;
    if (nfound > 0) {
        params[2] = sb_ids.buf;
        params[3] = sb_p.buf;
        params[4] = sb_o.buf;
        res = db_exec(r->pg, "relay_found", 5, params, NULL, errstr, errstr_size);
        if (res == NULL)
            goto done;
        PQclear(res);
        res = NULL;
    }
    params[2] = sb_pp.buf;
    params[3] = sb_po.buf;
    res = db_exec(r->pg, "relay_set_positions", 4, params, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    if (db_commit(r->pg, errstr, errstr_size) != 0)
        goto done;
    *found += nfound;
    ret = 0;
done:
    db_rollback(r->pg); /* ends the transaction if a step above failed */
    PQclear(res);
    if (assign != NULL)
        rd_kafka_topic_partition_list_destroy(assign);
    strbuf_release(&sb_ids);
    strbuf_release(&sb_p);
    strbuf_release(&sb_o);
    strbuf_release(&sb_pp);
    strbuf_release(&sb_po);
    free(stored);
    free(parts);
    free(pids);
    free(ids);
    return ret;
}

/* Finds records that reached the topics but whose rows are not marked sent, and marks
 * them. Blocks for at most RECONCILE_TIMEOUT_MS plus one Kafka request. Returns 0, or -1
 * with errstr. */
static int reconcile(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    const char *params[1] = { r->producer };
    PGresult *res = NULL;
    rd_kafka_t *rk = NULL;
    int64_t deadline = util_mono_ms() + RECONCILE_TIMEOUT_MS;
    int i, found = 0, ret = -1;

    res = db_exec(r->pg, "relay_unsent_topics", 1, params, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    if (PQntuples(res) == 0) {
        ret = 0;
        goto done;
    }
    rk = reader_new(r, errstr, errstr_size);
    if (rk == NULL)
        goto done;
    for (i = 0; i < PQntuples(res); i++)
        if (reconcile_topic(r, rk, PQgetvalue(res, i, 0), deadline, &found, errstr,
                            errstr_size) != 0)
            goto done;
    if (found > 0)
        log_info("outbox_reconciled producer=%s found=%d", r->producer, found);
    ret = 0;
done:
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    PQclear(res);
    return ret;
}

/* ------------------------------------------------------------------------------------ */
/* Publishing */

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

        if (stopping(r)) {
            if (stop_deadline == 0)
                stop_deadline = now + STOP_FLUSH_MS;
            if (now >= stop_deadline)
                return;
        }
        if (now >= deadline)
            return;
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

/* One publishing round: up to `batch` unsent rows in id order are produced, their
 * delivery reports awaited, and the acknowledged ones marked. Returns the number of rows
 * the round looked at, or -1 with errstr when any of them failed (the others are marked). */
static int publish_round(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    char batch[16], err[256];
    const char *params[2] = { r->producer, batch };
    PGresult *res;
    rd_kafka_resp_err_t ferr;
    int n, i, acked = 0, all_ok = 1, ret = -1;

    errstr[0] = '\0';
    snprintf(batch, sizeof(batch), "%d", r->batch);
    res = db_exec(r->pg, "relay_select", 2, params, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
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

        if (stopping(r))
            break; /* the rest stays for the next start */
        if (key_blocked(res, r->rows, i, key)) {
            r->rows[i].state = ROW_SKIPPED;
            all_ok = 0;
            continue;
        }
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
        all_ok = 0;
        if (errstr[0] == '\0')
            snprintf(errstr, errstr_size, "%d deliveries not reported within %d s",
                     r->pending, (stopping(r) ? STOP_FLUSH_MS : DELIVERY_WAIT_MS) / 1000);
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
        producer_close(r, 0); /* late reports must not reach a later round */
    else if (r->rk != NULL &&
             (ferr = rd_kafka_fatal_error(r->rk, err, sizeof(err))) != 0) {
        log_error("outbox_relay_producer_fatal producer=%s error=%s", r->producer,
                  rd_kafka_err2name(ferr));
        producer_close(r, 0);
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

/* ------------------------------------------------------------------------------------ */
/* The relay thread */

/* Deletes rows sent more than 7 days ago, in batches, at most PRUNE_MAX_BATCHES of them. */
static void prune(outbox_relay_t *r)
{
    char limit[16], err[256], q[256];
    const char *params[2] = { r->producer, limit };
    int i;
    long long total = 0;

    snprintf(limit, sizeof(limit), "%d", PRUNE_BATCH);
    for (i = 0; i < PRUNE_MAX_BATCHES && !stopping(r); i++) {
        PGresult *res = db_exec(r->pg, "relay_prune", 2, params, NULL, err, sizeof(err));
        long long n;

        if (res == NULL) {
            log_value(err, q, sizeof(q));
            log_warn("outbox_prune_failed producer=%s error=\"%s\"", r->producer, q);
            r->next_prune_ms = util_mono_ms() + PRUNE_RETRY_MS;
            return;
        }
        if (parse_ll(PQcmdTuples(res), 0, PRUNE_BATCH, &n) != 0)
            n = 0;
        PQclear(res);
        total += n;
        if (n < PRUNE_BATCH)
            break;
    }
    if (total > 0)
        log_info("outbox_pruned producer=%s count=%lld", r->producer, total);
    r->next_prune_ms = util_mono_ms() + PRUNE_INTERVAL_MS;
}

/* Waits up to poll_ms for a notification naming our producer, or for stop. */
static void await_notify(outbox_relay_t *r)
{
    int64_t deadline = util_mono_ms() + r->poll_ms;

    for (;;) {
        struct pollfd pfd[2];
        PGnotify *nt;
        int ours = 0;
        int64_t left;

        /* Notifications may have arrived with the last query's results already. */
        while ((nt = PQnotifies(r->pg)) != NULL) {
            if (nt->extra != NULL && strcmp(nt->extra, r->producer) == 0)
                ours = 1;
            PQfreemem(nt);
        }
        left = deadline - util_mono_ms();
        if (ours || left <= 0 || stopping(r))
            return;
        pfd[0].fd = PQsocket(r->pg);
        pfd[0].events = POLLIN;
        pfd[0].revents = 0;
        pfd[1].fd = r->wake[0];
        pfd[1].events = POLLIN;
        pfd[1].revents = 0;
        if (pfd[0].fd < 0)
            return;
        if (poll(pfd, 2, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
            return;
        if (pfd[1].revents != 0)
            return;
        if (pfd[0].revents != 0 && PQconsumeInput(r->pg) == 0)
            return; /* the connection broke: the next query says so */
    }
}

enum step { STEP_FAILED, STEP_STANDBY, STEP_IDLE, STEP_BUSY };

/* One pass of the relay loop: (re)connect, lead, reconcile, prune, publish. */
static enum step relay_step(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    int n;

    if (r->pg == NULL && pg_open(r, errstr, errstr_size) != 0)
        return STEP_FAILED;
    if (!r->leader) {
        n = leader_try(r, errstr, errstr_size);
        if (n < 0)
            return STEP_FAILED;
        if (n == 0) {
            if (!r->standby_logged)
                log_info("outbox_relay_standby producer=%s reason=\"another relay holds "
                         "the lock\"", r->producer);
            r->standby_logged = 1;
            return STEP_STANDBY;
        }
        /* LISTEN before the first SELECT, so that no row committed after it goes
         * unnoticed. If LISTEN fails, the lock goes with the connection. */
        if (pg_listen(r, errstr, errstr_size) != 0) {
            pg_close(r);
            return STEP_FAILED;
        }
        r->leader = 1;
        r->standby_logged = 0;
        r->need_reconcile = 1;
        log_info("outbox_relay_leader producer=%s", r->producer);
    }
    /* Only the leader needs a producer; a new one always starts with a reconciliation
     * (producer_close and a new leadership both ask for one). */
    if (r->rk == NULL && producer_open(r, errstr, errstr_size) != 0)
        return STEP_FAILED;
    if (r->need_reconcile) {
        if (reconcile(r, errstr, errstr_size) != 0)
            return STEP_FAILED;
        r->need_reconcile = 0;
    }
    if (util_mono_ms() >= r->next_prune_ms)
        prune(r);
    n = publish_round(r, errstr, errstr_size);
    if (n < 0)
        return STEP_FAILED;
    return n >= r->batch ? STEP_BUSY : STEP_IDLE;
}

static void *relay_main(void *arg)
{
    outbox_relay_t *r = arg;
    int64_t backoff = BACKOFF_MIN_MS;

    log_info("outbox_relay_started producer=%s batch=%d poll_ms=%" PRId64, r->producer,
             r->batch, r->poll_ms);
    r->next_prune_ms = util_mono_ms(); /* prune once at start */
    while (!stopping(r)) {
        char err[512];
        enum step st = relay_step(r, err, sizeof(err));

        switch (st) {
        case STEP_FAILED:
            relay_failed(r, err);
            if (r->pg != NULL && PQstatus(r->pg) != CONNECTION_OK)
                pg_close(r);
            relay_sleep(r, backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            break;
        case STEP_STANDBY:
            relay_healthy(r);
            backoff = BACKOFF_MIN_MS;
            relay_sleep(r, r->poll_ms);
            break;
        case STEP_IDLE:
            relay_healthy(r);
            backoff = BACKOFF_MIN_MS;
            await_notify(r);
            break;
        case STEP_BUSY:
            relay_healthy(r);
            backoff = BACKOFF_MIN_MS;
            break;
        }
    }

    /* Every round ended with its reports in (or gave up on them): nothing is in flight. */
    r->round_n = 0;
    kafka_producer_close(r->rk, 1000);
    r->rk = NULL;
    pg_close(r);
    log_info("outbox_relay_stopped producer=%s", r->producer);
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Life cycle */

static void relay_free(outbox_relay_t *r)
{
    if (r == NULL)
        return;
    if (r->wake[0] >= 0)
        close(r->wake[0]);
    if (r->wake[1] >= 0)
        close(r->wake[1]);
    pthread_mutex_destroy(&r->mu);
    free(r->rows);
    free(r->conninfo);
    free(r->bootstrap);
    free(r->producer);
    free(r);
}

outbox_relay_t *outbox_relay_start(const outbox_relay_opts_t *opts,
                                   char *errstr, size_t errstr_size)
{
    outbox_relay_t *r = NULL, *ret = NULL;
    PQconninfoOption *ci;
    const char *crash;
    char *perr = NULL;
    int rc;

    if (opts == NULL || opts->conninfo == NULL || opts->bootstrap == NULL ||
        opts->bootstrap[0] == '\0' || opts->producer == NULL) {
        snprintf(errstr, errstr_size, "outbox relay: conninfo, bootstrap and producer are "
                 "required");
        goto done;
    }
    if (opts->producer[0] == '\0' || strlen(opts->producer) > MAX_PRODUCER_LEN) {
        snprintf(errstr, errstr_size, "outbox relay: producer name must have 1 to %d bytes",
                 MAX_PRODUCER_LEN);
        goto done;
    }
    if (opts->poll_ms < 0 || opts->poll_ms > 24LL * 3600 * 1000) {
        snprintf(errstr, errstr_size, "outbox relay: poll interval %" PRId64 " ms out of "
                 "range", opts->poll_ms);
        goto done;
    }
    if (opts->batch < 0 || opts->batch > MAX_BATCH) {
        snprintf(errstr, errstr_size, "outbox relay: batch %d out of range 1..%d",
                 opts->batch, MAX_BATCH);
        goto done;
    }
    ci = PQconninfoParse(opts->conninfo, &perr);
    if (ci == NULL) {
        snprintf(errstr, errstr_size, "outbox relay: bad connection string");
        PQfreemem(perr);
        goto done;
    }
    PQconninfoFree(ci);

    r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto oom;
    r->wake[0] = r->wake[1] = -1;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        r = NULL;
        goto oom;
    }
    r->poll_ms = opts->poll_ms > 0 ? opts->poll_ms : DEFAULT_POLL_MS;
    r->batch = opts->batch > 0 ? opts->batch : DEFAULT_BATCH;
    r->conninfo = strdup(opts->conninfo);
    r->bootstrap = strdup(opts->bootstrap);
    r->producer = strdup(opts->producer);
    r->rows = calloc((size_t)r->batch, sizeof(*r->rows));
    if (r->conninfo == NULL || r->bootstrap == NULL || r->producer == NULL || r->rows == NULL)
        goto oom;
    crash = getenv("OUTBOX_DEBUG_CRASH_AFTER_ACK");
    r->crash_after_ack = crash != NULL && strcmp(crash, "1") == 0;
    if (r->crash_after_ack)
        log_warn("outbox_debug_crash_armed producer=%s", r->producer);
    snprintf(r->status_err, sizeof(r->status_err), "relay starting");
    if (pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(errstr, errstr_size, "outbox relay: pipe: %s", strerror(errno));
        goto done;
    }
    rc = pthread_create(&r->thread, NULL, relay_main, r);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "outbox relay: thread: %s", strerror(rc));
        goto done;
    }
    ret = r;
    r = NULL; /* the caller owns it; outbox_relay_stop() frees it */
    goto done;
oom:
    snprintf(errstr, errstr_size, "outbox relay: out of memory");
done:
    relay_free(r);
    return ret;
}

void outbox_relay_stop(outbox_relay_t *relay)
{
    ssize_t n;

    if (relay == NULL)
        return;
    __atomic_store_n(&relay->stop, 1, __ATOMIC_RELEASE);
    do
        n = write(relay->wake[1], "x", 1);
    while (n < 0 && errno == EINTR);
    pthread_join(relay->thread, NULL);
    relay_free(relay);
}

int outbox_relay_status(outbox_relay_t *relay, char *errstr, size_t errstr_size)
{
    int ok;

    if (relay == NULL) {
        snprintf(errstr, errstr_size, "outbox relay not running");
        return -1;
    }
    pthread_mutex_lock(&relay->mu);
    ok = relay->status_ok;
    if (!ok)
        snprintf(errstr, errstr_size, "outbox relay: %s", relay->status_err);
    pthread_mutex_unlock(&relay->mu);
    return ok ? 0 : -1;
}
