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
#include "kafka_reader.h"
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

/* What a read-back matches records against. */
struct scan {
    struct unsent_id *ids;
    int nids;
    outbox_relay_t *r;  /* whose lease the read keeps */
};

/* kafka_reader_fn: if the record carries the ce_id of an unsent row, remembers where it
 * is. Always goes on. */
static int match_record(void *ctx, const rd_kafka_message_t *msg)
{
    struct scan *sc = ctx;
    struct unsent_id key, *hit;
    char *v = kafka_header_dup(msg, "ce_id");
    size_t i;

    outbox_lease_beat(sc->r); /* a long read back must not cost the lock */
    if (v == NULL)
        return 0;
    if (util_is_uuid(v)) {
        for (i = 0; v[i] != '\0'; i++)
            key.id[i] = (char)tolower((unsigned char)v[i]);
        key.id[i] = '\0';
        hit = bsearch(&key, sc->ids, (size_t)sc->nids, sizeof(*sc->ids), cmp_unsent);
        if (hit != NULL && !hit->found) { /* a duplicate further on keeps the first */
            hit->found = 1;
            hit->partition = msg->partition;
            hit->offset = msg->offset;
        }
    }
    free(v);
    return 0;
}

/* kafka_reader_error_fn: a read that cannot see every record proves nothing. */
static int fail_on_error(void *ctx, const rd_kafka_message_t *msg)
{
    (void)ctx;
    (void)msg;
    return 1;
}

/* Reconciles one topic: see the top of this file. Adds the number of rows found to
 * *found. Returns 0, or -1 with errstr. */
static int reconcile_topic(outbox_relay_t *r, rd_kafka_t *rk, const char *topic,
                           int64_t deadline, int *found, char *errstr, size_t errstr_size)
{
    struct unsent_id *ids = NULL;
    kafka_reader_t *reader = NULL;
    kafka_reader_opts_t ro;
    struct scan sc;
    int32_t *pids = NULL;
    int64_t *ends = NULL;
    PGresult *res = NULL;
    strbuf_t sb_ids = STRBUF_INIT, sb_p = STRBUF_INIT, sb_o = STRBUF_INIT;
    strbuf_t sb_pp = STRBUF_INIT, sb_po = STRBUF_INIT;
    const char *params[5];
    int nids, i, nfound = 0, ret = -1, rc;
    size_t nparts, k;
    int64_t left = deadline - util_mono_ms();

    nids = load_unsent(r, topic, &ids, errstr, errstr_size);
    if (nids <= 0) {
        ret = nids; /* none left (0) or an error (-1) */
        goto done;
    }
    if (left <= 0 || outbox_stopping(r)) {
        snprintf(errstr, errstr_size, "reading back %s: not done in time", topic);
        goto done;
    }
    memset(&ro, 0, sizeof(ro));
    ro.rk = rk;
    ro.topic = topic;
    ro.start = RD_KAFKA_OFFSET_BEGINNING; /* no usable position: the whole partition */
    ro.missing_ok = 1;                    /* a topic that does not exist holds none of ours */
    ro.timeout_ms = (int)left;
    ro.watermark_timeout_ms = KAFKA_QUERY_TIMEOUT_MS;
    ro.stop = &r->stop;
    ro.on_error = fail_on_error;
    sc.ids = ids;
    sc.nids = nids;
    sc.r = r;
    ro.ctx = &sc;
    reader = kafka_reader_new(&ro, errstr, errstr_size);
    if (reader == NULL)
        goto done;
    nparts = kafka_reader_count(reader);
    if (nparts == 0) {
        ret = 0;
        goto done;
    }
    pids = calloc(nparts, sizeof(*pids));
    ends = calloc(nparts, sizeof(*ends));
    if (pids == NULL || ends == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (k = 0; k < nparts; k++) {
        int64_t lo;
        rd_kafka_resp_err_t err = kafka_reader_partition(reader, k, &pids[k], &lo, &ends[k]);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errstr_size, "watermarks of %s [%d]: %s", topic, (int)pids[k],
                     rd_kafka_err2str(err));
            goto done;
        }
    }

    /* Each partition from its stored position; one outside the log (retention deleted the
     * start, or the broker lost everything) is no guide, and the reader then reads all the
     * partition holds. */
    params[0] = r->producer;
    params[1] = topic;
    res = db_exec(r->pg, "relay_positions", 2, params, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    for (i = 0; i < PQntuples(res); i++) {
        long long pid, off;

        if (outbox_parse_ll(PQgetvalue(res, i, 0), 0, INT32_MAX, &pid) != 0 ||
            outbox_parse_ll(PQgetvalue(res, i, 1), 0, INT64_MAX, &off) != 0)
            continue; /* no usable position: the partition is read from its start */
        kafka_reader_set_from(reader, (int32_t)pid, (int64_t)off); /* -1: not a partition */
    }
    PQclear(res);
    res = NULL;

    rc = kafka_reader_run(reader, match_record, errstr, errstr_size);
    if (rc != 0) {
        if (rc == 1)
            snprintf(errstr, errstr_size, "reading back %s: stopped", topic);
        goto done;
    }

    /* Mark what was found and store the ends, in one transaction. */
    for (i = 0; i < nids; i++) {
        if (!ids[i].found)
            continue;
        db_array_add_text(&sb_ids, ids[i].id);
        db_array_add_int64(&sb_p, ids[i].partition);
        db_array_add_int64(&sb_o, ids[i].offset);
        nfound++;
    }
    for (k = 0; k < nparts; k++) {
        db_array_add_int64(&sb_pp, pids[k]);
        db_array_add_int64(&sb_po, ends[k]);
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
    kafka_reader_free(reader);
    strbuf_release(&sb_ids);
    strbuf_release(&sb_p);
    strbuf_release(&sb_o);
    strbuf_release(&sb_pp);
    strbuf_release(&sb_po);
    free(ends);
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
    {
        char name[128], err[256];

        snprintf(name, sizeof(name), "dozen-outbox-reconcile-%s", r->producer);
        rk = kafka_reader_client_new(r->bootstrap, name, err, sizeof(err));
        if (rk == NULL) {
            snprintf(errstr, errstr_size, "kafka reader: %s", err);
            goto done;
        }
    }
    for (i = 0; i < PQntuples(res); i++)
        if (reconcile_topic(r, rk, PQgetvalue(res, i, 0), deadline, &found, errstr,
                            errstr_size) != 0)
            goto done;
    if (found > 0)
        log_info("outbox_reconciled producer=%s found=%d", r->producer, found);
    ret = 0;
done:
    kafka_reader_client_free(rk);
    PQclear(res);
    return ret;
}
