/* kafka_reader: the assign-only reader: given partitions of a topic from an offset to the
 * high watermark taken at the start, then it stops; no group, no commits. */
#include "kafka_reader.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "util.h"

#define READER_POLL_MS 200          /* how often the read looks at *stop */
#define METADATA_TIMEOUT_MS 10000
#define WATERMARK_TIMEOUT_MS 5000

/* One partition of a reader. */
struct part {
    int32_t id;
    int64_t from;              /* where the read starts (an offset or a logical one) */
    int64_t lo, hi;            /* watermarks when the reader was made; hi -1: unknown */
    rd_kafka_resp_err_t err;   /* why they could not be read */
    int done;
};

struct kafka_reader {
    kafka_reader_opts_t opts;
    struct part *parts;        /* owned; n of them */
    size_t n;
};

rd_kafka_t *kafka_reader_client_new(const char *bootstrap, const char *client_id,
                                    char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    char rderr[512], group[128];
    int n;

    conf = kafka_conf_new(bootstrap, client_id, errstr, errstr_size);
    if (conf == NULL)
        goto done;
    /* librdkafka wants a group.id even for rd_kafka_assign(); this one never joins (no
     * subscribe) and never commits, so it leaves no trace on the cluster. */
    n = snprintf(group, sizeof(group), "%s-reader-%ld",
                 client_id != NULL && client_id[0] != '\0' ? client_id : "dozen",
                 (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(group)) {
        util_errf(errstr, errstr_size, "kafka reader: client id too long");
        goto done;
    }
    /* An offset the log no longer has: from its start (the rule of kafka_reader_opts.from). */
    if (kafka_conf_set_default(conf, "auto.offset.reset", "earliest", errstr,
                               errstr_size) != 0 ||
        kafka_conf_set_forced(conf, "group.id", group, errstr, errstr_size) != 0 ||
        kafka_conf_set_forced(conf, "enable.auto.commit", "false", errstr, errstr_size) != 0 ||
        kafka_conf_set_forced(conf, "enable.auto.offset.store", "false", errstr,
                              errstr_size) != 0 ||
        kafka_conf_set_forced(conf, "enable.partition.eof", "true", errstr, errstr_size) != 0)
        goto done;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (rk == NULL) {
        util_errf(errstr, errstr_size, "kafka reader: %s", rderr);
        goto done;
    }
    conf = NULL; /* rd_kafka_new() took it */
done:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return rk;
}

void kafka_reader_client_free(rd_kafka_t *rk)
{
    if (rk == NULL)
        return;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static int part_cmp(const void *a, const void *b)
{
    int32_t x = ((const struct part *)a)->id, y = ((const struct part *)b)->id;

    return (x > y) - (x < y);
}

/* 1 if mt has partition id. */
static int topic_has(const rd_kafka_metadata_topic_t *mt, int32_t id)
{
    for (int i = 0; i < mt->partition_cnt; i++) {
        if (mt->partitions[i].id == id)
            return 1;
    }
    return 0;
}

/* Fills r->parts from the topic's metadata mt and the options. Returns 0, or -1 with
 * errstr. */
static int parts_fill(kafka_reader_t *r, const rd_kafka_metadata_topic_t *mt, char *errstr,
                      size_t errstr_size)
{
    const kafka_reader_opts_t *o = &r->opts;
    size_t n = o->partitions != NULL ? o->npartitions : (size_t)mt->partition_cnt, i;

    r->parts = calloc(n > 0 ? n : 1, sizeof(*r->parts));
    if (r->parts == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++) {
        struct part *p = &r->parts[i];

        p->id = o->partitions != NULL ? o->partitions[i] : mt->partitions[i].id;
        if (o->partitions != NULL && !topic_has(mt, p->id)) {
            util_errf(errstr, errstr_size, "topic '%s' has no partition %d", o->topic,
                      (int)p->id);
            return -1;
        }
        p->from = o->from != NULL ? o->from[i] : o->start;
    }
    r->n = n;
    if (o->partitions == NULL && r->n > 1) /* metadata does not promise id order */
        qsort(r->parts, r->n, sizeof(*r->parts), part_cmp);
    for (i = 0; i < r->n; i++) {
        struct part *p = &r->parts[i];

        p->err = rd_kafka_query_watermark_offsets(o->rk, o->topic, p->id, &p->lo, &p->hi,
                                                  o->watermark_timeout_ms > 0 ?
                                                  o->watermark_timeout_ms :
                                                  WATERMARK_TIMEOUT_MS);
        if (p->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            p->lo = 0;
            p->hi = -1;
        }
    }
    return 0;
}

kafka_reader_t *kafka_reader_new(const kafka_reader_opts_t *opts, char *errstr,
                                 size_t errstr_size)
{
    kafka_reader_t *r = NULL, *ret = NULL;
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t *mt = NULL;
    rd_kafka_resp_err_t err;

    if (opts == NULL || opts->rk == NULL || opts->topic == NULL || opts->topic[0] == '\0' ||
        (opts->partitions != NULL && opts->npartitions == 0) || opts->idle_ms < 0) {
        util_errf(errstr, errstr_size, "kafka reader: bad options");
        goto done;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    r->opts = *opts;
    /* Every topic: asking for one by name could auto-create it. */
    err = rd_kafka_metadata(opts->rk, 1, NULL, &md, METADATA_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "cannot get metadata: %s", rd_kafka_err2str(err));
        goto done;
    }
    for (int i = 0; i < md->topic_cnt && mt == NULL; i++) {
        if (strcmp(md->topics[i].topic, opts->topic) == 0)
            mt = &md->topics[i];
    }
    if ((mt == NULL || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) &&
        opts->missing_ok) {
        ret = r; /* no partitions: nothing to read */
        r = NULL;
        goto done;
    }
    if (mt == NULL || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        util_errf(errstr, errstr_size, "topic '%s' does not exist", opts->topic);
        goto done;
    }
    if (mt->partition_cnt <= 0) {
        util_errf(errstr, errstr_size, "topic '%s' has no partitions (%s)", opts->topic,
                  rd_kafka_err2str(mt->err));
        goto done;
    }
    if (parts_fill(r, mt, errstr, errstr_size) != 0)
        goto done;
    ret = r;
    r = NULL; /* the caller's now */
done:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    kafka_reader_free(r);
    return ret;
}

int kafka_reader_set_from(kafka_reader_t *r, int32_t partition, int64_t from)
{
    size_t i;

    for (i = 0; r != NULL && i < r->n; i++) {
        if (r->parts[i].id == partition) {
            r->parts[i].from = from;
            return 0;
        }
    }
    return -1;
}

size_t kafka_reader_count(const kafka_reader_t *r)
{
    return r != NULL ? r->n : 0;
}

rd_kafka_resp_err_t kafka_reader_partition(const kafka_reader_t *r, size_t i, int32_t *id,
                                           int64_t *lo, int64_t *hi)
{
    const struct part *p = &r->parts[i];

    *id = p->id;
    *lo = p->lo;
    *hi = p->hi;
    return p->err;
}

/* Where the read of p starts: an offset outside the log (known watermarks) becomes its
 * start. */
static int64_t part_start(const struct part *p)
{
    if (p->hi >= 0 && p->from >= 0 && (p->from < p->lo || p->from > p->hi))
        return p->lo;
    return p->from;
}

/* 1 when bounded part p has nothing to read: its start is at or past its high watermark. */
static int part_empty(const struct part *p)
{
    int64_t start = part_start(p);

    if (p->hi < 0)
        return 0; /* unknown: the EOF event says */
    if (start == RD_KAFKA_OFFSET_END)
        return 1;
    if (start < 0)
        start = p->lo; /* BEGINNING (or another logical offset) */
    return start >= p->hi || p->hi <= p->lo;
}

/* Opens the read: assigns every partition that has something to read. Returns how many
 * were assigned, or -1 with errstr. */
static int assign_parts(kafka_reader_t *r, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)r->n);
    rd_kafka_resp_err_t err;
    int open = 0;

    for (size_t i = 0; i < r->n; i++) {
        struct part *p = &r->parts[i];

        p->done = !r->opts.follow && part_empty(p);
        if (p->done)
            continue;
        rd_kafka_topic_partition_list_add(list, r->opts.topic, p->id)->offset =
            part_start(p);
        open++;
    }
    if (open > 0) {
        err = rd_kafka_assign(r->opts.rk, list);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            util_errf(errstr, errstr_size, "cannot assign %s: %s", r->opts.topic,
                      rd_kafka_err2str(err));
            open = -1;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    return open;
}

static struct part *part_of(kafka_reader_t *r, int32_t id)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->parts[i].id == id)
            return &r->parts[i];
    }
    return NULL;
}

/* Marks p done (once); returns how many partitions are still open. */
static int part_end(struct part *p, int open)
{
    if (p == NULL || p->done)
        return open;
    p->done = 1;
    return open - 1;
}

int kafka_reader_run(kafka_reader_t *r, kafka_reader_fn fn, char *errstr,
                     size_t errstr_size)
{
    const kafka_reader_opts_t *o = &r->opts;
    int64_t idle_until, deadline = util_mono_ms() + o->timeout_ms;
    int ret = -1, open;

    if (r->n == 0)
        return 0;
    open = assign_parts(r, errstr, errstr_size);
    if (open < 0)
        return -1;
    idle_until = util_mono_ms() + o->idle_ms;
    while (o->follow || open > 0) {
        rd_kafka_message_t *msg;
        struct part *p;
        int stop_now = 0;

        if (o->stop != NULL && *o->stop) {
            ret = 1;
            goto done;
        }
        if (o->timeout_ms > 0 && util_mono_ms() >= deadline) {
            util_errf(errstr, errstr_size, "%s: not read to the end within %d s", o->topic,
                      o->timeout_ms / 1000);
            goto done;
        }
        msg = rd_kafka_consumer_poll(o->rk, READER_POLL_MS);
        if (msg == NULL) {
            if (o->idle_ms > 0 && util_mono_ms() > idle_until) {
                util_errf(errstr, errstr_size, "%s: neither a record nor the end for %d s "
                          "(is the broker up?)", o->topic, o->idle_ms / 1000);
                goto done;
            }
            continue;
        }
        p = part_of(r, msg->partition);
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!o->follow)
                open = part_end(p, open);
        } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            int give_up = 0;

            if (o->on_error != NULL)
                give_up = o->on_error(o->ctx, msg) != 0;
            else
                log_warn("kafka_reader_error topic=%s partition=%d err=%s detail=%s",
                         o->topic, (int)msg->partition, rd_kafka_err2name(msg->err),
                         LOG_Q(rd_kafka_message_errstr(msg)));
            if (give_up || msg->err == RD_KAFKA_RESP_ERR__FATAL) {
                if (give_up)
                    util_errf(errstr, errstr_size, "%s [%d]: %s", o->topic,
                              (int)msg->partition, rd_kafka_message_errstr(msg));
                else
                    util_errf(errstr, errstr_size, "fatal consumer error");
                rd_kafka_message_destroy(msg);
                goto done;
            }
        } else if (p != NULL && (o->follow || !p->done)) {
            stop_now = fn(o->ctx, msg) != 0;
            if (!o->follow && p->hi >= 0 && msg->offset >= p->hi - 1)
                open = part_end(p, open);
            idle_until = util_mono_ms() + o->idle_ms;
        }
        rd_kafka_message_destroy(msg);
        if (stop_now) {
            ret = o->stop != NULL && *o->stop ? 1 : 0; /* fn saw the stop, or had enough */
            goto done;
        }
    }
    ret = 0;
done:
    rd_kafka_assign(o->rk, NULL);
    return ret;
}

void kafka_reader_free(kafka_reader_t *r)
{
    if (r == NULL)
        return;
    free(r->parts);
    free(r);
}
