/* kafka: librdkafka set-up written once: configuration, the idempotent producer and the
 * consumer loop that commits an offset only after the record's effect is committed. */
#include "kafka.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "retry.h"
#include "util.h"

#define ENV_PREFIX "KAFKA_"
#define ENV_PREFIX_LEN (sizeof(ENV_PREFIX) - 1)

#define PRODUCE_BLOCK_MS 10000  /* kafka_produce waits this long for room in the queue */
#define CONSUMER_POLL_MS 200    /* how often the consumer loop looks at *stop */
#define SEEK_TIMEOUT_MS 5000    /* a seek is local and normally immediate */
#define RETRY_INITIAL_MS 200
#define RETRY_MAX_MS 10000
#define HANDOVER_TIMEOUT_MS 30000 /* a hand-over to retry/dead-letter waits this long */

/* What the producer's delivery report callback needs; owned by the producer handle (its
 * opaque) and freed by kafka_producer_close(). */
struct producer_ctx {
    kafka_dr_fn dr;
    void *ctx;
};

/* What the rebalance callback needs; lives on kafka_consumer_run()'s stack. */
struct consumer_state {
    const char *group;
};

/* Copies in to out for a quoted log value: double quotes become single quotes and control
 * characters spaces, so a value can never break the key=value line. Cuts to fit. */
static void log_quote(const char *in, char *out, size_t out_size)
{
    size_t i;

    if (out_size == 0)
        return;
    for (i = 0; in != NULL && in[i] != '\0' && i + 1 < out_size; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = c == '"' ? '\'' : (iscntrl(c) ? ' ' : (char)c);
    }
    out[i] = '\0';
}

/* librdkafka's own log lines, routed into our log module (called from its threads). */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char msg[1024];
    enum log_level lvl;

    log_quote(buf, msg, sizeof(msg));
    if (level <= 3)
        lvl = LOG_LEVEL_ERROR;
    else if (level == 4)
        lvl = LOG_LEVEL_WARN;
    else if (level <= 6)
        lvl = LOG_LEVEL_INFO;
    else
        lvl = LOG_LEVEL_DEBUG;
    log_msg(lvl, "rdkafka client=%s fac=%s msg=\"%s\"", rd_kafka_name(rk),
            fac != NULL ? fac : "-", msg);
}

/* Writes the environment variable that sets prop into out: "linger.ms" -> "KAFKA_LINGER_MS".
 * Returns 0, or -1 if out is too small. */
static int env_name_for(const char *prop, char *out, size_t out_size)
{
    size_t plen = strlen(prop), i;

    if (ENV_PREFIX_LEN + plen + 1 > out_size)
        return -1;
    memcpy(out, ENV_PREFIX, ENV_PREFIX_LEN);
    for (i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)prop[i];
        out[ENV_PREFIX_LEN + i] = c == '.' ? '_' : (char)toupper(c);
    }
    out[ENV_PREFIX_LEN + plen] = '\0';
    return 0;
}

/* Sets one property; -1 with errstr naming the property if librdkafka refuses it. */
static int conf_set(rd_kafka_conf_t *conf, const char *prop, const char *value,
                    char *errstr, size_t errstr_size)
{
    char rderr[512];

    if (rd_kafka_conf_set(conf, prop, value, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        util_errf(errstr, errstr_size, "%s: %s", prop, rderr);
        return -1;
    }
    return 0;
}

/* Sets a default of ours unless the operator chose a value through KAFKA_<PROP>. */
static int conf_set_default(rd_kafka_conf_t *conf, const char *prop, const char *value,
                            char *errstr, size_t errstr_size)
{
    char var[256];

    if (env_name_for(prop, var, sizeof(var)) == 0 && getenv(var) != NULL)
        return 0;
    return conf_set(conf, prop, value, errstr, errstr_size);
}

/* Sets a property the guarantees of this module depend on, whatever the environment says
 * (an operator cannot turn off idempotence or offset-after-effect by accident). */
static int conf_set_forced(rd_kafka_conf_t *conf, const char *prop, const char *value,
                           char *errstr, size_t errstr_size)
{
    char var[256];
    const char *env = NULL;

    if (env_name_for(prop, var, sizeof(var)) == 0)
        env = getenv(var);
    if (env != NULL && strcmp(env, value) != 0)
        log_warn("kafka_conf_overridden var=%s property=%s value=%s reason=\"required by "
                 "dozen\"", var, prop, value);
    return conf_set(conf, prop, value, errstr, errstr_size);
}

/* Applies every KAFKA_<NAME> variable but KAFKA_BOOTSTRAP as the property <name>. Values
 * are never logged: they may be passwords. */
static int conf_apply_env(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
    char **ep;

    for (ep = environ; ep != NULL && *ep != NULL; ep++) {
        const char *var = *ep;
        const char *eq = strchr(var, '=');
        char name[256], prop[256], rderr[512];
        size_t nlen, plen, i;
        rd_kafka_conf_res_t res;

        if (eq == NULL || strncmp(var, ENV_PREFIX, ENV_PREFIX_LEN) != 0)
            continue;
        nlen = (size_t)(eq - var);
        if (nlen >= sizeof(name)) {
            log_warn("kafka_conf_env_skipped var=%.64s... reason=\"name too long\"", var);
            continue;
        }
        memcpy(name, var, nlen);
        name[nlen] = '\0';
        if (strcmp(name, "KAFKA_BOOTSTRAP") == 0)
            continue;
        plen = nlen - ENV_PREFIX_LEN;
        if (plen == 0) {
            log_warn("kafka_conf_env_skipped var=%s reason=\"no property name\"", name);
            continue;
        }
        for (i = 0; i < plen; i++) {
            unsigned char c = (unsigned char)name[ENV_PREFIX_LEN + i];
            prop[i] = c == '_' ? '.' : (char)tolower(c);
        }
        prop[plen] = '\0';

        res = rd_kafka_conf_set(conf, prop, eq + 1, rderr, sizeof(rderr));
        if (res == RD_KAFKA_CONF_UNKNOWN) {
            /* Kafka's own tooling reads KAFKA_HEAP_OPTS and the like from the same
             * environment: not ours, not an error. */
            log_warn("kafka_conf_env_skipped var=%s property=%s reason=\"not a librdkafka "
                     "property\"", name, prop);
            continue;
        }
        if (res != RD_KAFKA_CONF_OK) {
            util_errf(errstr, errstr_size, "%s: %s", name, rderr);
            return -1;
        }
        log_debug("kafka_conf_env var=%s property=%s", name, prop);
    }
    return 0;
}

rd_kafka_conf_t *kafka_conf_new(const char *bootstrap, const char *client_id,
                                char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_conf_t *ret = NULL;

    if (bootstrap == NULL || bootstrap[0] == '\0') {
        util_errf(errstr, errstr_size, "kafka: no bootstrap servers given");
        goto done;
    }
    if (client_id == NULL || client_id[0] == '\0')
        client_id = "dozen";

    conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", bootstrap, errstr, errstr_size) != 0 ||
        conf_set(conf, "client.id", client_id, errstr, errstr_size) != 0)
        goto done;
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    if (conf_apply_env(conf, errstr, errstr_size) != 0)
        goto done;

    ret = conf;
    conf = NULL; /* the caller owns it now */
done:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return ret;
}

/* Delivery report: hands the caller's per-message opaque back with the outcome. Runs in
 * rd_kafka_poll()/rd_kafka_flush() on the caller's thread. */
static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    const struct producer_ctx *pc = opaque;

    (void)rk;
    if (pc == NULL || pc->dr == NULL)
        return;
    pc->dr(pc->ctx, msg->_private, msg->err, msg->partition, msg->offset);
}

rd_kafka_t *kafka_producer_new(const char *bootstrap, const char *client_id,
                               kafka_dr_fn dr, void *ctx, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = NULL;
    struct producer_ctx *pc = NULL;
    rd_kafka_t *rk = NULL;
    char rderr[512];

    conf = kafka_conf_new(bootstrap, client_id, errstr, errstr_size);
    if (conf == NULL)
        goto done;
    /* Small batches for latency; a bounded delivery time so a broker that is down turns
     * into a delivery report the caller can act on. Both can be tuned through KAFKA_*. */
    if (conf_set_default(conf, "linger.ms", "5", errstr, errstr_size) != 0 ||
        conf_set_default(conf, "message.timeout.ms", "30000", errstr, errstr_size) != 0)
        goto done;
    /* No duplicates and no reordering on retries, and acknowledged by all in-sync
     * replicas: the outbox marks a row sent only on such an acknowledgement. */
    if (conf_set_forced(conf, "enable.idempotence", "true", errstr, errstr_size) != 0 ||
        conf_set_forced(conf, "acks", "all", errstr, errstr_size) != 0)
        goto done;

    pc = calloc(1, sizeof(*pc));
    if (pc == NULL) {
        util_errf(errstr, errstr_size, "kafka: out of memory");
        goto done;
    }
    pc->dr = dr;
    pc->ctx = ctx;
    rd_kafka_conf_set_dr_msg_cb(conf, producer_dr_cb);
    rd_kafka_conf_set_opaque(conf, pc);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (rk == NULL) {
        util_errf(errstr, errstr_size, "kafka producer: %s", rderr);
        goto done;
    }
    conf = NULL; /* rd_kafka_new() took it */
    pc = NULL;   /* freed by kafka_producer_close() through the handle's opaque */
done:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    free(pc);
    return rk;
}

int kafka_produce(rd_kafka_t *rk, const char *topic, const char *key,
                  const char *value, size_t value_len, rd_kafka_headers_t *hdrs,
                  void *msg_opaque, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t err;
    int64_t deadline;
    size_t key_len = key != NULL ? strlen(key) : 0;

    if (rk == NULL || topic == NULL || topic[0] == '\0' || (value == NULL && value_len > 0)) {
        util_errf(errstr, errstr_size, "kafka_produce: bad arguments");
        return -1;
    }

    deadline = util_mono_ms() + PRODUCE_BLOCK_MS;
    for (;;) {
        /* On failure librdkafka leaves hdrs to us (the caller keeps them). */
        err = rd_kafka_producev(rk,
                                RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY(key, key_len),
                                RD_KAFKA_V_VALUE((void *)value, value_len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_HEADERS(hdrs),
                                RD_KAFKA_V_OPAQUE(msg_opaque),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || util_mono_ms() >= deadline)
            break;
        /* Serving delivery reports is what frees room in the queue. */
        rd_kafka_poll(rk, 100);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "kafka_produce %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

void kafka_producer_close(rd_kafka_t *rk, int timeout_ms)
{
    struct producer_ctx *pc;
    rd_kafka_resp_err_t err;

    if (rk == NULL)
        return;
    pc = rd_kafka_opaque(rk);
    err = rd_kafka_flush(rk, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("kafka_producer_flush_incomplete client=%s undelivered=%d err=%s",
                 rd_kafka_name(rk), rd_kafka_outq_len(rk), rd_kafka_err2name(err));
    rd_kafka_destroy(rk);
    free(pc);
}

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
        break;

    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS: {
        int lost = rd_kafka_assignment_lost(rk);

        log_info("kafka_partitions_revoked group=%s protocol=%s lost=%d partitions=%s",
                 st->group, proto != NULL ? proto : "-", lost, list[0] != '\0' ? list : "-");
        if (!lost)
            commit_stored(rk, st->group, "revoke");
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, NULL);
        break;
    }

    default:
        log_error("kafka_rebalance_error group=%s err=%s", st->group, rd_kafka_err2name(err));
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
static void log_consume_error(const char *group, const rd_kafka_message_t *msg)
{
    char detail[512];

    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    log_quote(rd_kafka_message_errstr(msg), detail, sizeof(detail));
    log_error("kafka_consume_error group=%s topic=%s partition=%d err=%s detail=\"%s\"",
              group, msg->rkt != NULL ? rd_kafka_topic_name(msg->rkt) : "-",
              (int)msg->partition, rd_kafka_err2name(msg->err), detail);
}

/* The state of one consumer loop that the record dispatch needs. */
struct loop {
    const kafka_consumer_opts_t *opts;
    retry_policy_t policy;
    rd_kafka_t *producer;        /* hands records over to retry and dead-letter */
    char redelivery[256];        /* retry.<group> */
};

/* The delivery report of one hand-over. */
struct handover_ack {
    volatile int done;
    rd_kafka_resp_err_t err;
};

static void handover_dr(void *ctx, void *msg_opaque, rd_kafka_resp_err_t err,
                        int32_t partition, int64_t offset)
{
    struct handover_ack *ack = msg_opaque;

    (void)ctx;
    (void)partition;
    (void)offset;
    ack->err = err;
    ack->done = 1;
}

/* Produces a copy of msg (key, value, its non-dozen headers and info's dozen-* headers) to
 * topic and waits for the broker's acknowledgement. Returns 0 when acknowledged. */
static int handover(struct loop *L, const rd_kafka_message_t *msg, const char *topic,
                    const retry_info_t *info, char *errstr, size_t errstr_size)
{
    struct handover_ack ack = { 0, RD_KAFKA_RESP_ERR_NO_ERROR };
    rd_kafka_headers_t *hdrs = retry_headers_build(msg, info, NULL, NULL);
    char key[1024];
    const char *k = NULL;
    int64_t deadline = util_mono_ms() + HANDOVER_TIMEOUT_MS;

    if (hdrs == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (msg->key != NULL && msg->key_len < sizeof(key) &&
        memchr(msg->key, '\0', msg->key_len) == NULL) {
        memcpy(key, msg->key, msg->key_len);
        key[msg->key_len] = '\0';
        k = key;
    }
    if (kafka_produce(L->producer, topic, k, msg->payload, msg->len, hdrs, &ack, errstr,
                      errstr_size) != 0) {
        rd_kafka_headers_destroy(hdrs);
        return -1;
    }
    while (!ack.done && util_mono_ms() < deadline)
        rd_kafka_poll(L->producer, 100);
    if (!ack.done) {
        util_errf(errstr, errstr_size, "%s did not acknowledge within %d ms", topic,
                  HANDOVER_TIMEOUT_MS);
        /* The message may still be delivered later; ack lives on this stack frame, so wait
         * for the report before returning (bounded by message.timeout.ms). */
        while (!ack.done)
            rd_kafka_poll(L->producer, 100);
    }
    if (ack.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "%s: %s", topic, rd_kafka_err2str(ack.err));
        return -1;
    }
    return 0;
}

/* Fills the provenance of a first failure: the record's own topic, partition and offset. */
static void provenance_here(retry_info_t *info, const rd_kafka_message_t *msg)
{
    snprintf(info->original_topic, sizeof(info->original_topic), "%s",
             rd_kafka_topic_name(msg->rkt));
    info->original_partition = msg->partition;
    info->original_offset = msg->offset;
    info->first_failed_at_ms = util_now_ms();
}

/* Sends msg to dead-letter with reason and error. Returns 0 when acknowledged. */
static int dead_letter(struct loop *L, const rd_kafka_message_t *msg, retry_info_t *info,
                       const char *reason, const char *error)
{
    char err[512], quoted[512];

    snprintf(info->group, sizeof(info->group), "%s", L->opts->group);
    snprintf(info->reason, sizeof(info->reason), "%s", reason);
    info->expired[0] = '\0';
    retry_set_error(info, error);
    if (info->not_before_ms == 0)
        info->not_before_ms = util_now_ms();
    if (handover(L, msg, RETRY_DEAD_LETTER_TOPIC, info, err, sizeof(err)) != 0) {
        log_quote(err, quoted, sizeof(quoted));
        log_error("dead_letter_failed group=%s topic=%s partition=%d offset=%lld error=\"%s\"",
                  L->opts->group, rd_kafka_topic_name(msg->rkt), (int)msg->partition,
                  (long long)msg->offset, quoted);
        return -1;
    }
    log_quote(error, quoted, sizeof(quoted));
    log_error("record_dead_lettered group=%s topic=%s partition=%d offset=%lld reason=%s "
              "attempt=%d error=\"%s\"", L->opts->group, info->original_topic,
              (int)info->original_partition, (long long)info->original_offset, reason,
              info->attempt, quoted);
    return 0;
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
    char err[512], quoted[512];
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
            provenance_here(&info, msg);
            return dead_letter(L, msg, &info, "invalid_record", err);
        }
        rec.topic = info.original_topic;
        rec.attempt = info.attempt;
        rec.expired = info.expired[0] != '\0' ? info.expired : NULL;
        rec.deadline_ms = info.deadline_ms;
        rec.last_reason = info.reason;
    } else {
        provenance_here(&info, msg);
    }
    if (event_meta_read(msg, &meta, err, sizeof(err)) != 0)
        return dead_letter(L, msg, &info, "invalid_record", err);

    verdict = opts->handler(&rec, opts->ctx, &out);
    out.reason[sizeof(out.reason) - 1] = '\0';
    out.error[sizeof(out.error) - 1] = '\0';
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
            if (handover(L, msg, RETRY_TOPIC, &info, err, sizeof(err)) != 0) {
                util_errf(errstr, errstr_size, "hand-over to retry failed: %s", err);
                return -1;
            }
            log_quote(out.error, quoted, sizeof(quoted));
            log_warn("record_retry_later group=%s topic=%s partition=%d offset=%lld attempt=%d "
                     "reason=%s not_before=%lld error=\"%s\"", opts->group, info.original_topic,
                     (int)info.original_partition, (long long)info.original_offset,
                     info.attempt, info.reason, (long long)info.not_before_ms, quoted);
            return 0;
        }
        /* A final notice cannot be retried: it goes where the record already is. */
        /* fall through */
    case KAFKA_FAIL:
        if (dead_letter(L, msg, &info, out.reason[0] != '\0' ? out.reason : "failed",
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
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    struct consumer_state st;
    struct loop L;
    int64_t initial_ms, max_ms, backoff_ms;
    rd_kafka_resp_err_t err;
    char rderr[512];
    size_t i;

    memset(&L, 0, sizeof(L));

    if (opts == NULL || stop == NULL || opts->group == NULL || opts->group[0] == '\0' ||
        opts->topics == NULL || opts->ntopics == 0 || opts->ntopics > INT_MAX ||
        opts->handler == NULL ||
        opts->retry_initial_ms < 0 || opts->retry_max_ms < 0) {
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
    st.group = opts->group;
    L.opts = opts;
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
    L.producer = kafka_producer_new(opts->bootstrap, opts->client_id != NULL ? opts->client_id
                                                                             : opts->group,
                                    handover_dr, NULL, errstr, errstr_size);
    if (L.producer == NULL)
        goto done;

    conf = kafka_conf_new(opts->bootstrap, opts->client_id != NULL ? opts->client_id
                                                                   : opts->group,
                          errstr, errstr_size);
    if (conf == NULL)
        goto done;
    /* A new group reads what was written before it existed. */
    if (conf_set_default(conf, "auto.offset.reset", "earliest", errstr, errstr_size) != 0)
        goto done;
    /* Offsets are stored by us after the handler's effect is committed, and librdkafka
     * commits only stored offsets: at-least-once, never at-most-once. */
    if (conf_set_forced(conf, "group.id", opts->group, errstr, errstr_size) != 0 ||
        conf_set_forced(conf, "enable.auto.commit", "true", errstr, errstr_size) != 0 ||
        conf_set_forced(conf, "enable.auto.offset.store", "false", errstr, errstr_size) != 0)
        goto done;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, &st);

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (rk == NULL) {
        util_errf(errstr, errstr_size, "kafka consumer: %s", rderr);
        goto done;
    }
    conf = NULL; /* rd_kafka_new() took it */
    /* Rebalances and errors are then served by rd_kafka_consumer_poll(). */
    rd_kafka_poll_set_consumer(rk);

    subs = rd_kafka_topic_partition_list_new((int)opts->ntopics + 1);
    for (i = 0; i < opts->ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, opts->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(subs, L.redelivery, RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(rk, subs);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "kafka consumer subscribe: %s", rd_kafka_err2str(err));
        goto done;
    }
    log_info("kafka_consumer_started group=%s topics=%zu", opts->group, opts->ntopics);

    while (!*stop) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, CONSUMER_POLL_MS);
        char herr[512], quoted[512];

        if (msg == NULL)
            continue;
        if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_consume_error(opts->group, msg);
            if (msg->err == RD_KAFKA_RESP_ERR__FATAL)
                util_sleep_ms(1000, stop); /* every poll would say the same */
            rd_kafka_message_destroy(msg);
            continue;
        }

        herr[0] = '\0';
        if (dispatch(&L, msg, herr, sizeof(herr)) == 0) {
            store_offset(rk, opts->group, msg);
            backoff_ms = initial_ms;
        } else {
            log_quote(herr, quoted, sizeof(quoted));
            log_warn("record_retry group=%s topic=%s partition=%d offset=%lld backoff_ms=%lld "
                     "error=\"%s\"", opts->group, rd_kafka_topic_name(msg->rkt),
                     (int)msg->partition, (long long)msg->offset, (long long)backoff_ms,
                     quoted);
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
        /* Revokes the assignment (the rebalance callback commits again) and leaves the
         * group, so the partitions move to another member at once. */
        err = rd_kafka_consumer_close(rk);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            log_warn("kafka_consumer_close_failed group=%s err=%s", opts->group,
                     rd_kafka_err2name(err));
        rd_kafka_destroy(rk);
        if (ret == 0)
            log_info("kafka_consumer_stopped group=%s", opts->group);
    }
    if (subs != NULL)
        rd_kafka_topic_partition_list_destroy(subs);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    kafka_producer_close(L.producer, 5000);
    return ret;
}

char *kafka_header_dup(const rd_kafka_message_t *msg, const char *name)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t size = 0;
    char *out;

    if (msg == NULL || name == NULL)
        return NULL;
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    if (rd_kafka_header_get_last(hdrs, name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    if (val == NULL) /* a header with a null value carries nothing: treated as absent */
        return NULL;
    out = malloc(size + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, val, size);
    out[size] = '\0'; /* Kafka header values are not NUL-terminated */
    return out;
}

struct kafka_consumer {
    const kafka_consumer_opts_t *opts;
    pthread_t thread;
    volatile int stop;
    volatile int failed;
};

static void *consumer_thread(void *arg)
{
    kafka_consumer_t *c = arg;
    char err[512];

    if (kafka_consumer_run(c->opts, &c->stop, err, sizeof(err)) != 0) {
        log_error("kafka_consumer_failed group=%s error=\"%s\"", c->opts->group, err);
        c->failed = 1;
    }
    return NULL;
}

kafka_consumer_t *kafka_consumer_start(const kafka_consumer_opts_t *opts,
                                       char *errstr, size_t errstr_size)
{
    kafka_consumer_t *c = calloc(1, sizeof(*c));
    int err;

    if (c == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->opts = opts;
    err = pthread_create(&c->thread, NULL, consumer_thread, c);
    if (err != 0) {
        util_errf(errstr, errstr_size, "pthread_create: %s", strerror(err));
        free(c);
        return NULL;
    }
    return c;
}

int kafka_consumer_failed(kafka_consumer_t *c)
{
    return c != NULL && c->failed;
}

void kafka_consumer_stop(kafka_consumer_t *c)
{
    if (c == NULL)
        return;
    c->stop = 1;
    pthread_join(c->thread, NULL);
    free(c);
}
