/* outbox_reconcile: finding what a crashed relay published but did not mark sent.
 *
 * A relay can die between the broker's acknowledgement and the mark (SIGKILL, power loss),
 * leaving records on the topic whose rows are still unsent. So before its first publishing
 * round after taking the lock, and after any round in which a delivery failed or could not
 * be marked, the relay reconciles: for every topic with unsent rows of its producer it reads
 * each partition from outbox_position.next_offset (or the low watermark when there is no
 * usable position) up to the high watermark, collects the ce_id header of each record, and
 * marks the unsent rows whose ce_id it found. Only then does it publish. A reconciliation
 * that cannot finish (broker or database down, time limit) is retried later; the relay
 * never publishes on a guess. Runs on the relay thread, on r->pg. */
#include "outbox.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"
#include "outbox_int.h"
#include "strbuf.h"
#include "util.h"

#define RECONCILE_TIMEOUT_MS 30000   /* one whole reconciliation */
#define KAFKA_QUERY_TIMEOUT_MS 5000  /* one metadata or watermark request */

const db_stmt_t outbox_reconcile_stmts[OUTBOX_RECONCILE_NSTMTS] = {
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
};

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

        if (outbox_stopping(r)) {
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

        if (outbox_parse_ll(PQgetvalue(res, i, 0), 0, INT32_MAX, &pid) != 0 ||
            outbox_parse_ll(PQgetvalue(res, i, 1), 0, INT64_MAX, &off) != 0)
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

        if (util_mono_ms() >= deadline || outbox_stopping(r)) {
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

int outbox_reconcile(outbox_relay_t *r, char *errstr, size_t errstr_size)
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
