/* dlq_replay: `dozenctl dlq replay`: copies matching dead records to their group's
 * retry.<group> with a fresh attempt count, each at most once (claimed and recorded in
 * dlq_replays in PostgreSQL). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "db.h"
#include "dozenctl.h"
#include "kafka.h"
#include "retry.h"
#include "util.h"

#define PRODUCER_CLOSE_MS 10000
#define REPLAYED_AT_HEADER "dozen-replayed-at"

/* Says on stderr why a record could not be replayed. */
static void report_failure(const struct dead *d, const char *why)
{
    fputs("dozenctl: cannot replay ", stderr);
    put_where(stderr, d);
    put_ce_id(stderr, d);
    fputs(": ", stderr);
    put_text(stderr, why, 1);
    fputs("\n", stderr);
}

/* Prepared on the replay's connection. A record is known by its place on dead-letter
 * (partition, offset) and its Kafka timestamp: see migrations/0005_dlq_replays.sql. */
static const db_stmt_t replay_stmts[] = {
    { "dlq_state",
      "SELECT status FROM dlq_replays "
      "WHERE dead_partition = $1 AND dead_offset = $2 AND dead_timestamp = $3", 3 },
    /* Returns a row when this run now owns the replay: a new row, or one left by a record
     * that used to sit at this place on an earlier dead-letter topic. */
    { "dlq_claim",
      "INSERT INTO dlq_replays (dead_partition, dead_offset, dead_timestamp, original_topic, "
      "original_partition, original_offset, group_id, ce_id, status) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'replaying') "
      "ON CONFLICT (dead_partition, dead_offset) DO UPDATE SET "
      "dead_timestamp = EXCLUDED.dead_timestamp, original_topic = EXCLUDED.original_topic, "
      "original_partition = EXCLUDED.original_partition, "
      "original_offset = EXCLUDED.original_offset, group_id = EXCLUDED.group_id, "
      "ce_id = EXCLUDED.ce_id, status = 'replaying', started_at = now(), replayed_at = NULL "
      "WHERE dlq_replays.dead_timestamp <> EXCLUDED.dead_timestamp "
      "RETURNING status", 8 },
    { "dlq_done",
      "UPDATE dlq_replays SET status = 'replayed', replayed_at = now() "
      "WHERE dead_partition = $1 AND dead_offset = $2 AND dead_timestamp = $3", 3 },
};

enum replay_state { STATE_NONE, STATE_REPLAYING, STATE_REPLAYED };

/* The broker's answer for one produced copy; filled by on_ack. */
struct ack {
    int done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
};

/* Delivery report (kafka_dr_fn), served by rd_kafka_poll on this thread. */
static void on_ack(void *ctx, void *msg_opaque, rd_kafka_resp_err_t err, int32_t partition,
                   int64_t offset)
{
    struct ack *a = msg_opaque;

    (void)ctx;
    if (a == NULL)
        return;
    a->err = err;
    a->partition = partition;
    a->offset = offset;
    a->done = 1;
}

struct replay_ctx {
    const struct filter *filter;
    PGconn *db;
    rd_kafka_t *producer;               /* NULL on a dry run */
    const struct rd_kafka_metadata *md; /* to tell whether retry.<group> exists */
    int dry_run;
    long long limit;                    /* 0: none */
    double interval_ms;                 /* 0: no spacing */
    double next_at;                     /* monotonic ms before which no replay starts */
    long long replayed, skipped, failed, unreadable;
    int db_lost;                        /* the connection broke: the scan was ended */
};

/* The text parameters of a record's statements (dlq_claim's order; dlq_state and dlq_done
 * use the first three). */
struct params {
    char partition[16], offset[24], timestamp[24], orig_partition[16], orig_offset[24];
    const char *v[8];
};

static void params_fill(struct params *p, const struct dead *d)
{
    snprintf(p->partition, sizeof(p->partition), "%d", (int)d->msg->partition);
    snprintf(p->offset, sizeof(p->offset), "%lld", (long long)d->msg->offset);
    snprintf(p->timestamp, sizeof(p->timestamp), "%" PRId64, d->timestamp);
    snprintf(p->orig_partition, sizeof(p->orig_partition), "%d",
             (int)d->info.original_partition);
    snprintf(p->orig_offset, sizeof(p->orig_offset), "%lld", (long long)d->info.original_offset);
    p->v[0] = p->partition;
    p->v[1] = p->offset;
    p->v[2] = p->timestamp;
    p->v[3] = d->info.original_topic;
    p->v[4] = p->orig_partition;
    p->v[5] = p->orig_offset;
    p->v[6] = d->info.group;
    p->v[7] = d->ce_id; /* NULL: SQL NULL */
}

/* A failed statement: counts the record as failed and ends the scan if the connection is
 * gone (every other record would fail the same way). Returns what the record handler
 * returns. */
static int db_failed(struct replay_ctx *c, const struct dead *d, const char *what,
                     const char *errstr)
{
    char why[640];

    util_errf(why, sizeof(why), "%s: %s", what, errstr);
    report_failure(d, why);
    c->failed++;
    if (PQstatus(c->db) == CONNECTION_BAD) {
        c->db_lost = 1;
        return 1;
    }
    return 0;
}

/* Reads the replay state of d. Returns 0 with *state, or -1 with errstr. */
static int state_get(PGconn *db, const struct params *p, enum replay_state *state,
                     char *errstr, size_t errstr_size)
{
    PGresult *res = db_exec(db, "dlq_state", 3, p->v, NULL, errstr, errstr_size);

    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0)
        *state = STATE_NONE;
    else if (strcmp(PQgetvalue(res, 0, 0), "replayed") == 0)
        *state = STATE_REPLAYED;
    else
        *state = STATE_REPLAYING;
    PQclear(res);
    return 0;
}

/* Reads d's replay state into *state and counts d as skipped when it was replayed already.
 * Returns 1 when d is dealt with (skipped, or the state could not be read: then *ret is
 * what the record handler returns), 0 to go on. */
static int state_check(struct replay_ctx *c, const struct dead *d, const struct params *p,
                       enum replay_state *state, int *ret)
{
    char errstr[512];

    if (state_get(c->db, p, state, errstr, sizeof(errstr)) != 0) {
        *ret = db_failed(c, d, "reading dlq_replays", errstr);
        return 1;
    }
    if (*state == STATE_REPLAYED) {
        c->skipped++;
        return 1;
    }
    return 0;
}

/* Waits until the next replay may start (--rate), or until stop_requested. */
static void rate_wait(struct replay_ctx *c)
{
    double now = (double)util_mono_ms();

    if (c->interval_ms > 0 && c->next_at > now)
        util_sleep_ms((int64_t)(c->next_at - now + 0.999), &stop_requested);
}

/* Produces the replay copy of d to topic and waits for the broker's acknowledgement (at
 * most message.timeout.ms, 30 s unless KAFKA_MESSAGE_TIMEOUT_MS says otherwise). Returns 0
 * with *ack filled, or -1 with errstr. The key and value go byte for byte, a null key or
 * value stays null: that is why this calls rd_kafka_producev, not kafka_produce (which takes
 * a C-string key). */
static int produce_copy(struct replay_ctx *c, const struct dead *d, const char *topic,
                        struct ack *ack, char *errstr, size_t errstr_size)
{
    const rd_kafka_message_t *msg = d->msg;
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_resp_err_t err;
    retry_info_t info = d->info;
    char now_ms[24];
    int64_t now = util_now_ms();
    int ret = -1;

    /* A fresh start for the owner: the next failure is attempt 1, and a deadline that
     * already passed would make the retry service give up on it at once. */
    info.attempt = 0;
    snprintf(info.reason, sizeof(info.reason), "replay");
    info.expired[0] = '\0';
    info.deadline_ms = 0;
    info.not_before_ms = now;
    snprintf(now_ms, sizeof(now_ms), "%" PRId64, now);
    hdrs = retry_headers_build(msg, &info, REPLAYED_AT_HEADER, now_ms);
    if (hdrs == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    memset(ack, 0, sizeof(*ack));
    for (;;) {
        err = rd_kafka_producev(c->producer, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY(msg->key, msg->key_len),
                                RD_KAFKA_V_VALUE(msg->payload, msg->len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(ack),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(c->producer, 100); /* cannot last: one record in flight at a time */
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "produce to %s: %s", topic, rd_kafka_err2str(err));
        goto done; /* librdkafka left the headers to us */
    }
    hdrs = NULL; /* librdkafka owns them now */
    while (!ack->done)
        rd_kafka_poll(c->producer, 100);
    if (ack->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "%s did not take the copy: %s", topic,
                  rd_kafka_err2str(ack->err));
        goto done;
    }
    ret = 0;
done:
    if (hdrs != NULL)
        rd_kafka_headers_destroy(hdrs);
    return ret;
}

/* The replay protocol for one record of dead-letter (a kafka_reader_fn): the matching records
 * whose copy the broker has not acknowledged yet are claimed in dlq_replays ('replaying'),
 * copied to retry.<group>, and marked 'replayed' after the acknowledgement. */
static int replay_record(void *vctx, const rd_kafka_message_t *msg)
{
    struct replay_ctx *c = vctx;
    struct dead d;
    struct params p;
    struct ack ack;
    enum replay_state state;
    PGresult *res = NULL;
    char topic[sizeof(d.info.group) + 16], errstr[512];
    int ret = 0, claimed;

    dead_read(&d, msg);
    if (!d.readable) {
        c->unreadable++;
        goto done;
    }
    if (!filter_match(c->filter, &d))
        goto done;
    if (c->limit > 0 && c->replayed + c->failed >= c->limit) {
        ret = 1;
        goto done;
    }
    if (retry_redelivery_topic(d.info.group, topic, sizeof(topic)) != 0 ||
        metadata_topic(c->md, topic) == NULL) {
        util_errf(errstr, sizeof(errstr), "topic retry.%s does not exist (unknown group?)",
                  d.info.group);
        report_failure(&d, errstr);
        c->failed++;
        goto done;
    }
    params_fill(&p, &d);
    if (state_check(c, &d, &p, &state, &ret))
        goto done;
    if (c->dry_run) {
        fputs("would replay ", stdout);
        put_where(stdout, &d);
        fputs(" reason=", stdout);
        put_text(stdout, d.info.reason, 0);
        put_ce_id(stdout, &d);
        fputs(" to=", stdout);
        put_text(stdout, topic, 0);
        fputs("\n", stdout);
        fflush(stdout);
        c->replayed++;
        goto done;
    }

    rate_wait(c);
    if (stop_requested) {
        ret = 1;
        goto done;
    }
    c->next_at = (double)util_mono_ms() + c->interval_ms;

    res = db_exec(c->db, "dlq_claim", 8, p.v, NULL, errstr, sizeof(errstr));
    if (res == NULL) {
        ret = db_failed(c, &d, "claiming in dlq_replays", errstr);
        goto done;
    }
    claimed = PQntuples(res) == 1;
    if (!claimed) {
        /* The row is there already: replayed by a run that ended meanwhile, or left
         * 'replaying' by a run that died before the broker's answer (or that runs now):
         * then it is replayed again, a duplicate being harmless and a loss not. */
        if (state_check(c, &d, &p, &state, &ret))
            goto done;
        if (state == STATE_NONE) {
            report_failure(&d, "its dlq_replays row changed under this run; try again");
            c->failed++;
            goto done;
        }
    }

    if (produce_copy(c, &d, topic, &ack, errstr, sizeof(errstr)) != 0) {
        /* The row stays 'replaying': the next run tries again. */
        report_failure(&d, errstr);
        c->failed++;
        goto done;
    }
    PQclear(res);
    res = db_exec(c->db, "dlq_done", 3, p.v, NULL, errstr, sizeof(errstr));
    if (res == NULL || strcmp(PQcmdTuples(res), "1") != 0) {
        char why[640];

        util_errf(why, sizeof(why), "copied to %s [%d] at offset %lld but not recorded as "
                 "replayed (the next run replays it again): %s", topic, (int)ack.partition,
                 (long long)ack.offset, res == NULL ? errstr : "its dlq_replays row is gone");
        if (res == NULL) {
            ret = db_failed(c, &d, "recording the replay", why);
        } else {
            report_failure(&d, why);
            c->failed++;
        }
        goto done;
    }
    fputs("replayed ", stdout);
    put_where(stdout, &d);
    put_ce_id(stdout, &d);
    fputs(" to=", stdout);
    put_text(stdout, topic, 0);
    printf("/%d/%lld\n", (int)ack.partition, (long long)ack.offset);
    fflush(stdout); /* one line per record as it happens */
    c->replayed++;
done:
    PQclear(res);
    dead_clear(&d);
    return ret;
}

int cmd_dlq_replay(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "group", required_argument, NULL, 'g' },
        { "reason", required_argument, NULL, 'r' },
        { "at", required_argument, NULL, 'a' },
        { "limit", required_argument, NULL, 'l' },
        { "rate", required_argument, NULL, 'R' },
        { "dry-run", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct filter filter = { NULL, NULL, 0, 0, 0 };
    struct replay_ctx ctx;
    struct session ses = { NULL, NULL, NULL };
    char *db_url = NULL;
    double rate = 0;
    char errstr[512];
    int status = 1, opt, r;

    memset(&ctx, 0, sizeof(ctx));
    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'g':
            if (parse_name("replay", "group", optarg) != 0)
                return EXIT_USAGE;
            filter.group = optarg;
            break;
        case 'a':
            if (parse_at("replay", optarg, &filter) != 0)
                return EXIT_USAGE;
            break;
        case 'r':
            if (parse_name("replay", "reason", optarg) != 0)
                return EXIT_USAGE;
            filter.reason = optarg;
            break;
        case 'l':
            if (parse_count("replay", optarg, &ctx.limit) != 0)
                return EXIT_USAGE;
            break;
        case 'R':
            if (parse_rate("replay", optarg, &rate) != 0)
                return EXIT_USAGE;
            break;
        case 'n':
            ctx.dry_run = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            bad_option("replay", opt, argv);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dozenctl dlq replay: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }
    ctx.filter = &filter;
    ctx.interval_ms = rate > 0 ? 1000.0 / rate : 0;

    db_url = find_setting("DATABASE_URL", errstr, sizeof(errstr));
    if (db_url == NULL) {
        fprintf(stderr, "dozenctl dlq replay: %s; replay records in PostgreSQL which dead "
                "letters it replayed, so that each is replayed at most once\n", errstr);
        goto done;
    }
    ctx.db = db_connect(db_url, replay_stmts, sizeof(replay_stmts) / sizeof(replay_stmts[0]),
                        errstr, sizeof(errstr));
    if (ctx.db == NULL) {
        fprintf(stderr, "dozenctl: PostgreSQL: %s%s\n", errstr,
                strstr(errstr, "dlq_replays") != NULL ?
                " (are the migrations applied? bin/dozen-migrate)" : "");
        goto done;
    }

    if (dlq_open(&ses) != 0)
        goto done;
    ctx.md = ses.md;
    if (!ctx.dry_run) {
        ctx.producer = kafka_producer_new(ses.bootstrap, "dozenctl", on_ack, NULL, errstr,
                                          sizeof(errstr));
        if (ctx.producer == NULL) {
            fprintf(stderr, "dozenctl: %s\n", errstr);
            goto done;
        }
    }

    catch_signals();
    r = dlq_scan(&ses, replay_record, &ctx, errstr, sizeof(errstr));
    if (r < 0)
        fprintf(stderr, "dozenctl: %s\n", errstr);
    if (ctx.db_lost)
        fprintf(stderr, "dozenctl: lost the PostgreSQL connection: stopped\n");
    if (r > 0)
        fprintf(stderr, "dozenctl: interrupted: stopped between two records\n");
    if (ctx.unreadable > 0 && filter.group == NULL && filter.reason == NULL)
        fprintf(stderr, "dozenctl: %lld record%s without readable dozen-* headers cannot be "
                "replayed (dozenctl dlq list --reason '?' shows them)\n", ctx.unreadable,
                ctx.unreadable == 1 ? "" : "s");
    printf("%s %lld, skipped %lld (already replayed), failed %lld\n",
           ctx.dry_run ? "dry run: would replay" : "replayed", ctx.replayed, ctx.skipped,
           ctx.failed);
    if (fflush(stdout) != 0)
        goto done;
    if (r < 0 || ctx.failed > 0 || ctx.db_lost)
        goto done;
    status = r > 0 ? EXIT_INTERRUPTED : 0;
done:
    /* Every copy was acknowledged before its record was left: nothing is left to flush. */
    kafka_producer_close(ctx.producer, PRODUCER_CLOSE_MS);
    session_close(&ses);
    if (ctx.db != NULL)
        PQfinish(ctx.db);
    free(db_url);
    return status;
}
