/* kafka_consumer: the consumer group verdict loop: each record goes to the handler and its
 * offset is stored only once the record is dealt with (done, or handed over to `retry` or
 * `dead-letter` by kafka_handover). */
#include "kafka_consumer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "event.h"
#include "health.h"
#include "kafka.h"
#include "kafka_handover.h"
#include "log.h"
#include "metrics.h"
#include "retry.h"
#include "trace.h"
#include "topics.h"
#include "util.h"

#define CONSUMER_POLL_MS 200    /* how often the consumer loop looks at *stop */
#define SEEK_TIMEOUT_MS 5000    /* a seek is local and normally immediate */
#define RETRY_INITIAL_MS 200
#define RETRY_MAX_MS 10000
#define RETRY_IN_PLACE_MS 30000 /* a transient failure holds a partition this long at most */
#define REDELIVERY_ENSURE_MS 10000 /* how long to wait for retry.<group> to exist */
#define SESSION_TIMEOUT_MS "6000"
#define HEARTBEAT_MS "1000"

/* One partition's offset as the group last committed it for this member. */
struct committed_offset {
    char topic[256];
    int32_t partition;
    int64_t offset;
};

#define COMMITTED_MAX 256

/* What the rebalance and commit callbacks need: the opaque of a client of
 * kafka_consumer_join, freed by kafka_consumer_leave. Both callbacks are served by
 * rd_kafka_consumer_poll, so committed is written and read on the polling thread only. */
struct consumer_state {
    char group[256];
    int commit_on_revoke;
    struct committed_offset committed[COMMITTED_MAX];
    int ncommitted;
};

/* Writes "topic[p],topic[p],..." into out for the logs, cut with "..." if too long. */
static void format_partitions(const rd_kafka_topic_partition_list_t *parts, char *out,
                              size_t out_size)
{
    size_t used = 0;
    int i, n;

    out[0] = '\0';
    for (i = 0; parts != NULL && i < parts->cnt; i++) {
        n = snprintf(out + used, out_size - used, "%s%s[%d]", i > 0 ? "," : "",
                     parts->elems[i].topic, (int)parts->elems[i].partition);
        if (n < 0 || (size_t)n >= out_size - used) {
            if (out_size >= 4)
                memcpy(out + out_size - 4, "...", 4);
            return;
        }
        used += (size_t)n;
    }
}

/* Synchronously commits the stored offsets of the current assignment. Nothing stored since
 * the last commit (_NO_OFFSET) is not an error. */
static void commit_stored(rd_kafka_t *rk, const char *group, const char *why)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_warn("kafka_commit_failed group=%s reason=%s err=%s", group, why,
                 rd_kafka_err2name(err));
}

/* The committed entry of topic/partition in st, or NULL. */
static struct committed_offset *committed_find(struct consumer_state *st, const char *topic,
                                               int32_t partition)
{
    int k;

    for (k = 0; k < st->ncommitted; k++)
        if (st->committed[k].partition == partition && strcmp(st->committed[k].topic, topic) == 0)
            return &st->committed[k];
    return NULL;
}

/* Remembers what the broker acknowledged of a commit (auto-commit, or ours on revoke and at
 * shutdown), for the committed-offset gauge: the position runs ahead of it until the next
 * commit. A failed commit, or a partition without an offset, changes nothing. */
static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct consumer_state *st = opaque;
    int i;

    (void)rk;
    if (st == NULL || offsets == NULL || err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    for (i = 0; i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &offsets->elems[i];
        struct committed_offset *c;

        if (p->err != RD_KAFKA_RESP_ERR_NO_ERROR || p->offset < 0)
            continue;
        c = committed_find(st, p->topic, p->partition);
        if (c == NULL && st->ncommitted < COMMITTED_MAX) {
            c = &st->committed[st->ncommitted++];
            snprintf(c->topic, sizeof(c->topic), "%s", p->topic);
            c->partition = p->partition;
        }
        if (c != NULL)
            c->offset = p->offset;
    }
}

/* The offset last committed for topic/partition through this client (commit_cb), or -1
 * when none is known. On the polling thread only. */
static int64_t committed_of(rd_kafka_t *rk, const char *topic, int32_t partition)
{
    struct consumer_state *st = rd_kafka_opaque(rk);
    const struct committed_offset *c = st != NULL ? committed_find(st, topic, partition) : NULL;

    return c != NULL ? c->offset : -1;
}

/* Applies the group's decision. For the eager protocol the whole assignment is replaced;
 * for the cooperative one only the partitions in parts are added or removed. Before
 * partitions go, what has been processed is committed so that their next owner starts
 * right after it (unless they were lost: another member may own them already). */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    const struct consumer_state *st = opaque;
    const char *proto = rd_kafka_rebalance_protocol(rk);
    int cooperative = proto != NULL && strcmp(proto, "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
    char list[512];

    format_partitions(parts, list, sizeof(list));
    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        log_info("kafka_partitions_assigned group=%s protocol=%s partitions=%s", st->group,
                 proto != NULL ? proto : "-", list[0] != '\0' ? list : "-");
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
        health_consumer_assigned(st->group);
        break;

    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS: {
        int lost = rd_kafka_assignment_lost(rk);

        log_info("kafka_partitions_revoked group=%s protocol=%s lost=%d partitions=%s",
                 st->group, proto != NULL ? proto : "-", lost, list[0] != '\0' ? list : "-");
        if (lost)
            health_consumer_lost(st->group);
        if (!lost && st->commit_on_revoke)
            commit_stored(rk, st->group, "revoke");
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, NULL);
        break;
    }

    default:
        log_error("kafka_rebalance_error group=%s err=%s", st->group, rd_kafka_err2name(err));
        health_consumer_lost(st->group);
        aerr = rd_kafka_assign(rk, NULL); /* resynchronise, as librdkafka asks */
        break;
    }

    if (error != NULL) {
        log_error("kafka_assign_failed group=%s err=\"%s\"", st->group,
                  rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (aerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_error("kafka_assign_failed group=%s err=%s", st->group, rd_kafka_err2name(aerr));
    }
}

/* Marks msg processed: its offset + 1 is what the next auto-commit (or the commit on
 * revoke/shutdown) writes. It fails only if the partition was taken away meanwhile; its new
 * owner then handles the record again, which consumers dedupe by ce_id. */
static void store_offset(rd_kafka_t *rk, const char *group, const rd_kafka_message_t *msg)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp;
    rd_kafka_resp_err_t err;

    tp = rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(msg->rkt),
                                           msg->partition);
    tp->offset = msg->offset + 1;
    err = rd_kafka_offsets_store(rk, list);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        err = tp->err;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("kafka_offset_store_failed group=%s topic=%s partition=%d offset=%lld err=%s",
                 group, rd_kafka_topic_name(msg->rkt), (int)msg->partition,
                 (long long)msg->offset, rd_kafka_err2name(err));
    rd_kafka_topic_partition_list_destroy(list);
}

/* Rewinds msg's partition to msg, so the next poll returns msg again and nothing after it
 * (prefetched messages of the partition are dropped by the seek). A seek that times out is
 * tried again after backoff_ms: going on without it could store a later offset and skip
 * msg. A partition that is no longer assigned needs no seek: its next owner starts from
 * the committed offset, which is at or before msg. */
static void seek_back(rd_kafka_t *rk, const char *group, const rd_kafka_message_t *msg,
                      int64_t backoff_ms, const volatile int *stop)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp;

    tp = rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(msg->rkt),
                                           msg->partition);
    for (;;) {
        rd_kafka_error_t *error;
        rd_kafka_resp_err_t err;

        tp->offset = msg->offset;
        tp->err = RD_KAFKA_RESP_ERR_NO_ERROR;
        error = rd_kafka_seek_partitions(rk, list, SEEK_TIMEOUT_MS);
        if (error != NULL) {
            err = rd_kafka_error_code(error);
            rd_kafka_error_destroy(error);
        } else {
            err = tp->err;
        }
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR__STATE ||
            err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
            break;
        log_error("kafka_seek_failed group=%s topic=%s partition=%d offset=%lld err=%s",
                  group, tp->topic, (int)tp->partition, (long long)msg->offset,
                  rd_kafka_err2name(err));
        if (*stop)
            break;
        util_sleep_ms(backoff_ms, stop);
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* Logs an error the consumer reported instead of a record. Reaching the end of a
 * partition is not one. */
void kafka_consumer_log_error(const char *group, const rd_kafka_message_t *msg)
{
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    log_error("kafka_consume_error group=%s topic=%s partition=%d err=%s detail=%s",
              group, msg->rkt != NULL ? rd_kafka_topic_name(msg->rkt) : "-",
              (int)msg->partition, rd_kafka_err2name(msg->err),
              LOG_Q(rd_kafka_message_errstr(msg)));
}

/* The state of one consumer loop that the record dispatch needs. */
/* One partition's lag series (created when the partition is first assigned here). */
struct lag_series {
    char topic[256];
    int32_t partition;
    int assigned;          /* still assigned here at the last update */
    metric_t *lag, *position, *committed;
};

#define LAG_SERIES_MAX 256
#define LAG_EVERY_MS 2000

struct loop {
    const kafka_consumer_opts_t *opts;
    retry_policy_t policy;
    kafka_handover_t *handover;  /* hands records over to retry and dead-letter */
    char redelivery[256];        /* retry.<group> */
    struct lag_series lags[LAG_SERIES_MAX];
    int nlags;
    int64_t next_lag_ms;
    /* The record being retried in place (KAFKA_RETRY) and since when, so that a transient
     * failure holds a partition for at most in_place_ms before the record moves on to
     * `retry`. */
    int stuck;
    int32_t stuck_partition;
    int64_t stuck_offset;
    char stuck_topic[256];
    int64_t stuck_since_ms;
    int64_t in_place_ms;
};

/* How long msg has been retried in place: 0 on its first transient failure (which starts
 * the clock). */
static int64_t stuck_for(struct loop *L, const rd_kafka_message_t *msg)
{
    const char *topic = rd_kafka_topic_name(msg->rkt);
    int64_t now = util_mono_ms();

    if (L->stuck && L->stuck_partition == msg->partition && L->stuck_offset == msg->offset &&
        strcmp(L->stuck_topic, topic) == 0)
        return now - L->stuck_since_ms;
    L->stuck = 1;
    L->stuck_partition = msg->partition;
    L->stuck_offset = msg->offset;
    snprintf(L->stuck_topic, sizeof(L->stuck_topic), "%s", topic);
    L->stuck_since_ms = now;
    return 0;
}

/* Counts one record's outcome and, for records that reached the handler, its time. */
static void count_record(struct loop *L, const char *topic, const char *verdict,
                         int64_t handler_us)
{
    char labels[600];

    if (L->opts->metrics == NULL)
        return;
    snprintf(labels, sizeof(labels), "group=%s,topic=%s,verdict=%s", L->opts->group, topic,
             verdict);
    metric_inc(metrics_counter(L->opts->metrics, "dozen_consumer_records_total",
                               "Records a consumer group member dealt with, by topic (the "
                               "original topic for redeliveries) and verdict.", labels));
    if (handler_us >= 0) {
        snprintf(labels, sizeof(labels), "group=%s,topic=%s", L->opts->group, topic);
        metric_observe(metrics_histogram(L->opts->metrics, "dozen_consumer_processing_seconds",
                                         "Time a record handler took.", labels,
                                         metrics_latency_buckets, metrics_latency_nbuckets),
                       (double)handler_us / 1e6);
    }
}

/* Sets the lag, position and committed-offset gauges of the partitions assigned here, from
 * the consumer's own position, the high watermark its fetches last saw and the last commit
 * the broker acknowledged (none of them asks the broker). A partition no longer assigned
 * here shows lag 0: its new owner reports it. */
static void update_lag(struct loop *L, rd_kafka_t *rk)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    int i, k;

    if (L->opts->metrics == NULL || util_mono_ms() < L->next_lag_ms)
        return;
    L->next_lag_ms = util_mono_ms() + LAG_EVERY_MS;
    if (rd_kafka_assignment(rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || parts == NULL)
        return;
    rd_kafka_position(rk, parts);
    for (k = 0; k < L->nlags; k++)
        L->lags[k].assigned = 0;
    for (i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t lo, hi, committed;
        struct lag_series *ls = NULL;

        for (k = 0; k < L->nlags && ls == NULL; k++)
            if (L->lags[k].partition == p->partition && strcmp(L->lags[k].topic, p->topic) == 0)
                ls = &L->lags[k];
        if (ls == NULL && L->nlags < LAG_SERIES_MAX) {
            char labels[600];

            ls = &L->lags[L->nlags++];
            snprintf(ls->topic, sizeof(ls->topic), "%s", p->topic);
            ls->partition = p->partition;
            snprintf(labels, sizeof(labels), "group=%s,topic=%s,partition=%d", L->opts->group,
                     p->topic, (int)p->partition);
            ls->lag = metrics_gauge(L->opts->metrics, "dozen_consumer_lag_records",
                                    "High watermark minus the consumer's position, per "
                                    "partition assigned to this member.", labels);
            ls->position = metrics_gauge(L->opts->metrics, "dozen_consumer_position",
                                         "The next offset this member will read, per "
                                         "partition assigned to it.", labels);
        }
        if (ls == NULL)
            continue;
        ls->assigned = 1;
        if (p->offset < 0 ||
            rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
            continue;
        metric_set(ls->position, (double)p->offset);
        metric_set(ls->lag, (double)(hi > p->offset ? hi - p->offset : 0));
        /* Set with the position, so that a scrape never sees it ahead. No series before the
         * first commit this member saw: 0 would be a false offset. */
        if ((committed = committed_of(rk, p->topic, p->partition)) >= 0) {
            if (ls->committed == NULL) {
                char labels[600];

                snprintf(labels, sizeof(labels), "group=%s,topic=%s,partition=%d",
                         L->opts->group, p->topic, (int)p->partition);
                ls->committed = metrics_gauge(L->opts->metrics,
                                              "dozen_consumer_committed_offset",
                                              "The offset the group last committed through "
                                              "this member, per partition assigned to it "
                                              "(the position runs ahead of it until the "
                                              "next commit).", labels);
            }
            metric_set(ls->committed, (double)committed);
        }
    }
    /* Zeroed only once gone, so that a scrape never sees a live partition at 0 for a moment. */
    for (k = 0; k < L->nlags; k++)
        if (!L->lags[k].assigned)
            metric_set(L->lags[k].lag, 0);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Begins the span of one record: in the trace of its per-hop traceparent header, else of its
 * ce_traceparent, else a new one (trace.h). */
static void trace_record(const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *hdrs = NULL; /* borrowed from msg */
    const void *val = NULL;
    size_t size = 0;

    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        (rd_kafka_header_get_last(hdrs, "traceparent", &val, &size) !=
             RD_KAFKA_RESP_ERR_NO_ERROR &&
         rd_kafka_header_get_last(hdrs, "ce_traceparent", &val, &size) !=
             RD_KAFKA_RESP_ERR_NO_ERROR))
        val = NULL;
    trace_begin(val, val != NULL ? size : 0);
}

/* Deals with one record. Returns 0 when its offset may be stored (done, handed over), or -1
 * when it must be tried again in place (errstr says why). */
static int dispatch(struct loop *L, const rd_kafka_message_t *msg, char *errstr,
                    size_t errstr_size)
{
    const kafka_consumer_opts_t *opts = L->opts;
    retry_info_t info;
    kafka_record_t rec;
    kafka_outcome_t out;
    event_meta_t meta;
    kafka_verdict_t verdict;
    char err[512];
    int64_t t0;
    int redelivery = strcmp(rd_kafka_topic_name(msg->rkt), L->redelivery) == 0;

    memset(&info, 0, sizeof(info));
    memset(&rec, 0, sizeof(rec));
    memset(&out, 0, sizeof(out));
    rec.msg = msg;
    rec.topic = rd_kafka_topic_name(msg->rkt);
    rec.last_reason = "";
    if (redelivery) {
        if (retry_info_read(msg, &info, err, sizeof(err)) != 0 ||
            strcmp(info.group, opts->group) != 0) {
            if (info.group[0] != '\0' && strcmp(info.group, opts->group) != 0)
                snprintf(err, sizeof(err), "redelivery for group '%s'", info.group);
            memset(&info, 0, sizeof(info));
            kafka_handover_provenance(&info, msg);
            count_record(L, rec.topic, "invalid", -1);
            return kafka_handover_dead_letter(L->handover, msg, &info, RETRY_REASON_INVALID_RECORD,
                                              err);
        }
        rec.topic = info.original_topic;
        rec.attempt = info.attempt;
        rec.expired = info.expired[0] != '\0' ? info.expired : NULL;
        rec.deadline_ms = info.deadline_ms;
        rec.last_reason = info.reason;
    } else {
        kafka_handover_provenance(&info, msg);
    }
    if (event_meta_read(msg, &meta, err, sizeof(err)) != 0) {
        count_record(L, rec.topic, "invalid", -1);
        return kafka_handover_dead_letter(L->handover, msg, &info, RETRY_REASON_INVALID_RECORD,
                                              err);
    }

    /* A failure of the handler's is classified here, once, from the database's own
     * verdict on the last statement that failed (db_error_last). */
    db_error_reset();
    t0 = util_mono_us();
    verdict = opts->handler(&rec, opts->ctx, &out);
    out.reason[sizeof(out.reason) - 1] = '\0';
    out.error[sizeof(out.error) - 1] = '\0';
    if (verdict != KAFKA_DONE && verdict != KAFKA_RETRY_LATER && verdict != KAFKA_FAIL) {
        db_error_t dberr;
        int data = db_error_last(&dberr) &&
                   db_error_classify(dberr.sqlstate, dberr.constraint) == DB_ERROR_DATA;

        if (data) {
            /* The database refuses this record's data, and always will. */
            verdict = KAFKA_FAIL;
            snprintf(out.reason, sizeof(out.reason), "%s", RETRY_REASON_INVALID_RECORD);
            snprintf(out.error, sizeof(out.error), "%s", dberr.message);
        } else if (rec.expired == NULL && stuck_for(L, msg) >= L->in_place_ms) {
            /* Transient, but for too long: the partition moves on, the record waits on
             * `retry` (and, past its attempts, in dead-letter). Not a final notice: its
             * copy is in dead-letter already, and its effect (closing an order, telling
             * subscribers) would be lost; it waits in place for the database. */
            log_warn("record_retry_in_place_exhausted group=%s topic=%s partition=%d "
                     "offset=%lld in_place_ms=%lld error=%s", opts->group,
                     rd_kafka_topic_name(msg->rkt), (int)msg->partition,
                     (long long)msg->offset, (long long)L->in_place_ms, LOG_Q(out.error));
            verdict = KAFKA_RETRY_LATER;
            if (out.reason[0] == '\0')
                snprintf(out.reason, sizeof(out.reason), "transient_error");
            out.delay_ms = 0;
            out.deadline_ms = 0;
            out.max_attempts = 0;
        }
    }
    count_record(L, rec.topic, verdict == KAFKA_DONE ? "done" :
                 verdict == KAFKA_RETRY_LATER ? "retry_later" :
                 verdict == KAFKA_FAIL ? "dead_letter" : "retry", util_mono_us() - t0);
    switch (verdict) {
    case KAFKA_DONE:
        return 0;
    case KAFKA_RETRY_LATER:
        if (rec.expired == NULL) {
            info.attempt = rec.attempt + 1;
            info.max_attempts = out.max_attempts > 0 ? out.max_attempts
                                                : L->policy.max_attempts;
            info.not_before_ms = util_now_ms() +
                (out.delay_ms > 0 ? out.delay_ms : retry_policy_delay(&L->policy, info.attempt));
            info.deadline_ms = out.deadline_ms > 0 ? out.deadline_ms : info.deadline_ms;
            snprintf(info.group, sizeof(info.group), "%s", opts->group);
            snprintf(info.reason, sizeof(info.reason), "%s",
                     out.reason[0] != '\0' ? out.reason : "retry");
            info.last_reason[0] = '\0';
            info.expired[0] = '\0';
            retry_set_error(&info, out.error);
            return kafka_handover_retry(L->handover, msg, &info, errstr, errstr_size);
        }
        /* A final notice cannot be retried: it goes where the record already is. */
        /* fall through */
    case KAFKA_FAIL:
        if (kafka_handover_dead_letter(L->handover, msg, &info,
                                       out.reason[0] != '\0' ? out.reason : "failed",
                        out.error) != 0) {
            util_errf(errstr, errstr_size, "hand-over to dead-letter failed");
            return -1;
        }
        return 0;
    case KAFKA_RETRY:
    default: /* an unknown verdict must not skip the record */
        util_errf(errstr, errstr_size, "%s", out.error[0] != '\0' ? out.error : out.reason);
        return -1;
    }
}

int kafka_consumer_run(const kafka_consumer_opts_t *opts, const volatile int *stop,
                       char *errstr, size_t errstr_size)
{
    int ret = -1;
    rd_kafka_t *rk = NULL;
    const char **topics = NULL;
    kafka_consumer_join_t join;
    struct loop L;
    int64_t initial_ms, max_ms, backoff_ms;
    size_t i;

    memset(&L, 0, sizeof(L));

    if (opts == NULL || stop == NULL || opts->group == NULL || opts->group[0] == '\0' ||
        opts->topics == NULL || opts->ntopics == 0 || opts->ntopics > INT_MAX ||
        opts->handler == NULL ||
        opts->retry_initial_ms < 0 || opts->retry_max_ms < 0 || opts->retry_in_place_ms < 0) {
        util_errf(errstr, errstr_size, "kafka consumer: bad options");
        goto done;
    }
    for (i = 0; i < opts->ntopics; i++) {
        if (opts->topics[i] == NULL || opts->topics[i][0] == '\0') {
            util_errf(errstr, errstr_size, "kafka consumer: empty topic name");
            goto done;
        }
    }
    initial_ms = opts->retry_initial_ms > 0 ? opts->retry_initial_ms : RETRY_INITIAL_MS;
    max_ms = opts->retry_max_ms > 0 ? opts->retry_max_ms : RETRY_MAX_MS;
    if (max_ms < initial_ms)
        max_ms = initial_ms;
    backoff_ms = initial_ms;
    L.opts = opts;
    L.in_place_ms = opts->retry_in_place_ms > 0 ? opts->retry_in_place_ms : RETRY_IN_PLACE_MS;
    if (opts->policy != NULL) {
        L.policy = *opts->policy;
    } else {
        L.policy.exponential = 1;
        L.policy.initial_ms = 1000;
        L.policy.factor = 2.0;
        L.policy.max_ms = 60000;
        L.policy.max_attempts = 8;
    }
    if (retry_redelivery_topic(opts->group, L.redelivery, sizeof(L.redelivery)) != 0) {
        util_errf(errstr, errstr_size, "kafka consumer: group name too long");
        goto done;
    }
    L.handover = kafka_handover_new(opts->bootstrap, opts->client_id != NULL ? opts->client_id
                                                                             : opts->group,
                                    opts->group, errstr, errstr_size);
    if (L.handover == NULL)
        goto done;

    topics = calloc(opts->ntopics + 1, sizeof(*topics));
    if (topics == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (i = 0; i < opts->ntopics; i++)
        topics[i] = opts->topics[i];
    topics[opts->ntopics] = L.redelivery;
    memset(&join, 0, sizeof(join));
    join.bootstrap = opts->bootstrap;
    join.client_id = opts->client_id != NULL ? opts->client_id : opts->group;
    join.group = opts->group;
    join.topics = topics;
    join.ntopics = opts->ntopics + 1;
    /* Offsets are stored by us after the handler's effect is committed, and librdkafka
     * commits only stored offsets: at-least-once, never at-most-once. */
    join.auto_commit = 1;
    join.ensure_redelivery = 1;
    join.instance_id = opts->instance_id;
    rk = kafka_consumer_join(&join, errstr, errstr_size);
    if (rk == NULL)
        goto done;
    log_info("kafka_consumer_started group=%s topics=%zu", opts->group, opts->ntopics);

    while (!*stop) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, CONSUMER_POLL_MS);
        char herr[512];

        update_lag(&L, rk);
        if (msg == NULL)
            continue;
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            int fatal = msg->err == RD_KAFKA_RESP_ERR__FATAL;

            kafka_consumer_log_error(opts->group, msg);
            rd_kafka_message_destroy(msg);
            if (fatal && kafka_consumer_rejoin(&rk, &join, stop) != 0)
                break; /* stopped while joining again */
            continue;
        }

        herr[0] = '\0';
        int handled;

        trace_record(msg);
        handled = dispatch(&L, msg, herr, sizeof(herr));
        trace_end();
        if (handled == 0) {
            store_offset(rk, opts->group, msg);
            backoff_ms = initial_ms;
            L.stuck = 0;
        } else {
            log_warn("record_retry group=%s topic=%s partition=%d offset=%lld backoff_ms=%lld "
                     "error=%s", opts->group, rd_kafka_topic_name(msg->rkt),
                     (int)msg->partition, (long long)msg->offset, (long long)backoff_ms,
                     LOG_Q(herr));
            seek_back(rk, opts->group, msg, backoff_ms, stop);
            util_sleep_ms(backoff_ms, stop);
            backoff_ms = backoff_ms > max_ms / 2 ? max_ms : backoff_ms * 2;
        }
        rd_kafka_message_destroy(msg);
    }
    ret = 0;

done:
    if (rk != NULL) {
        if (ret == 0)
            commit_stored(rk, opts->group, "shutdown");
        kafka_consumer_leave(rk);
        if (ret == 0)
            log_info("kafka_consumer_stopped group=%s", opts->group);
    }
    free(topics);
    kafka_handover_free(L.handover);
    return ret;
}

int kafka_instance_id_valid(const char *s)
{
    size_t i;

    if (s == NULL || s[0] == '\0')
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];

        if (i >= KAFKA_INSTANCE_ID_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

rd_kafka_t *kafka_consumer_join(const kafka_consumer_join_t *j, char *errstr,
                                size_t errstr_size)
{
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL, *ret = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    struct consumer_state *st = NULL;
    rd_kafka_resp_err_t err;
    char rderr[512];
    size_t i;

    if (j->group == NULL || j->group[0] == '\0' || j->ntopics == 0 || j->ntopics > INT_MAX) {
        util_errf(errstr, errstr_size, "kafka consumer: bad options");
        goto done;
    }
    for (i = 0; i < j->ntopics; i++) {
        if (j->topics[i] == NULL || j->topics[i][0] == '\0') {
            util_errf(errstr, errstr_size, "kafka consumer: empty topic name");
            goto done;
        }
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    snprintf(st->group, sizeof(st->group), "%s", j->group);
    st->commit_on_revoke = j->auto_commit;
    conf = kafka_conf_new(j->bootstrap, j->client_id, errstr, errstr_size);
    if (conf == NULL)
        goto done;
    /* A new group reads what was written before it existed. */
    if (kafka_conf_set_default(conf, "auto.offset.reset", "earliest", errstr, errstr_size) != 0)
        goto done;
    /* A member that died holds its partitions until its session expires: 6 s, the
     * smallest session a broker allows by default (group.min.session.timeout.ms), instead
     * of librdkafka's 45 s, with heartbeats often enough for it. */
    if (kafka_conf_set_default(conf, "session.timeout.ms", SESSION_TIMEOUT_MS, errstr,
                               errstr_size) != 0 ||
        kafka_conf_set_default(conf, "heartbeat.interval.ms", HEARTBEAT_MS, errstr,
                               errstr_size) != 0)
        goto done;
    if (j->instance_id != NULL && j->instance_id[0] != '\0') {
        char gid[KAFKA_INSTANCE_ID_MAX + 256];

        if (!kafka_instance_id_valid(j->instance_id)) {
            util_errf(errstr, errstr_size, "kafka consumer: bad instance id");
            goto done;
        }
        snprintf(gid, sizeof(gid), "%.200s-%s",
                 j->client_id != NULL ? j->client_id : j->group, j->instance_id);
        if (kafka_conf_set_default(conf, "group.instance.id", gid, errstr, errstr_size) != 0)
            goto done;
    }
    for (i = 0; i < j->ndefaults; i++) {
        if (kafka_conf_set_default(conf, j->defaults[i][0], j->defaults[i][1], errstr,
                                   errstr_size) != 0)
            goto done;
    }
    /* Only offsets stored by the loop are ever committed. */
    if (kafka_conf_set_forced(conf, "group.id", j->group, errstr, errstr_size) != 0 ||
        kafka_conf_set_forced(conf, "enable.auto.commit", j->auto_commit ? "true" : "false",
                              errstr, errstr_size) != 0 ||
        kafka_conf_set_forced(conf, "enable.auto.offset.store", "false", errstr,
                              errstr_size) != 0)
        goto done;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    rd_kafka_conf_set_opaque(conf, st);

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (rk == NULL) {
        util_errf(errstr, errstr_size, "kafka consumer: %s", rderr);
        goto done;
    }
    conf = NULL; /* rd_kafka_new() took it */
    st = NULL;   /* freed by kafka_consumer_leave() through the handle's opaque */
    health_consumer_created(j->group); /* not ready until the first assignment */
    /* Rebalances and errors are then served by rd_kafka_consumer_poll(). */
    rd_kafka_poll_set_consumer(rk);
    /* Redeliveries follow from the group: its retry.<group> is made to exist whatever the
     * group is called. Without it the records of this group that fail are dead-lettered
     * by the retry service (unknown_group), which is no reason not to consume. */
    if (j->ensure_redelivery &&
        topics_ensure_redelivery(j->bootstrap, j->group, REDELIVERY_ENSURE_MS, rderr,
                                 sizeof(rderr)) != 0)
        log_error("kafka_redelivery_topic_missing group=%s error=%s", j->group, LOG_Q(rderr));
    subs = rd_kafka_topic_partition_list_new((int)j->ntopics);
    for (i = 0; i < j->ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, j->topics[i], RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(rk, subs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "kafka consumer subscribe: %s", rd_kafka_err2str(err));
        goto done;
    }
    ret = rk;
    rk = NULL; /* the caller's now */
done:
    if (subs != NULL)
        rd_kafka_topic_partition_list_destroy(subs);
    kafka_consumer_leave(rk);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    free(st);
    return ret;
}

int kafka_consumer_rejoin(rd_kafka_t **rk, const kafka_consumer_join_t *j,
                          const volatile int *stop)
{
    char reason[512] = "", err[512];

    if (*rk != NULL) {
        rd_kafka_fatal_error(*rk, reason, sizeof(reason));
        log_error("kafka_consumer_fatal group=%s error=%s action=rejoin", j->group,
                  LOG_Q(reason));
        kafka_consumer_leave(*rk);
        *rk = NULL;
    }
    while (!*stop) {
        if ((*rk = kafka_consumer_join(j, err, sizeof(err))) != NULL) {
            log_info("kafka_consumer_rejoined group=%s", j->group);
            return 0;
        }
        log_error("kafka_consumer_rejoin_failed group=%s error=%s", j->group, LOG_Q(err));
        util_sleep_ms(1000, stop);
    }
    return -1;
}

void kafka_consumer_leave(rd_kafka_t *rk)
{
    struct consumer_state *st;
    rd_kafka_resp_err_t err;

    if (rk == NULL)
        return;
    st = rd_kafka_opaque(rk);
    /* Revokes the assignment (the rebalance callback commits again when the group
     * auto-commits) and leaves the group, so the partitions move to another member at once. */
    err = rd_kafka_consumer_close(rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("kafka_consumer_close_failed group=%s err=%s", st != NULL ? st->group : "-",
                 rd_kafka_err2name(err));
    rd_kafka_destroy(rk);
    if (st != NULL)
        health_consumer_closed(st->group);
    free(st);
}
