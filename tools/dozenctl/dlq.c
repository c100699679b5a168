/* dlq: `dozenctl dlq list` and `dozenctl dlq replay`: the records of dead-letter, and their
 * replay to the owning group's retry.<group>, each at most once (recorded in PostgreSQL). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
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

#define SCAN_IDLE_MS 30000        /* neither a record nor the end for this long: give up */
#define WATERMARK_TIMEOUT_MS 5000
#define PRODUCER_CLOSE_MS 10000
#define RATE_MIN 0.001            /* records per second: one every 1000 s at the slowest */
#define RATE_MAX 1000000.0
#define REPLAYED_AT_HEADER "dozen-replayed-at"
#define UNREADABLE "?"            /* group and reason of a record with unreadable headers */

/* Which dead records a command is about. */
struct filter {
    const char *group;   /* NULL: any */
    const char *reason;  /* NULL: any; "?" selects the records with unreadable headers */
};

/* One record of dead-letter as the commands see it. */
struct dead {
    const rd_kafka_message_t *msg;  /* borrowed */
    int readable;                   /* the dozen-* headers are all there and valid */
    retry_info_t info;              /* filled when readable */
    char why[256];                  /* when not readable: what is wrong with them */
    char *ce_id;                    /* owned; NULL when absent */
    int64_t timestamp;              /* the Kafka timestamp, -1 when the record has none */
};

/* Fills d from msg (borrowed for as long as d is used). Free with dead_clear. */
static void dead_read(struct dead *d, const rd_kafka_message_t *msg)
{
    rd_kafka_timestamp_type_t tstype;
    int r;

    memset(d, 0, sizeof(*d));
    d->msg = msg;
    r = retry_info_read(msg, &d->info, d->why, sizeof(d->why));
    d->readable = r == 0;
    if (r == 1) {
        snprintf(d->why, sizeof(d->why), "no dozen-* headers");
    } else if (r < 0) {
        rd_kafka_headers_t *hdrs = NULL;
        const char *missing;

        /* A missing header is what `dlq list` names first, in its own words. */
        if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
            hdrs = NULL;
        missing = retry_info_first_missing(hdrs);
        if (missing != NULL)
            snprintf(d->why, sizeof(d->why), "header %s is missing", missing);
    }
    /* NULL when absent, and also when out of memory: then shown as absent. */
    d->ce_id = kafka_header_dup(msg, "ce_id");
    d->timestamp = rd_kafka_message_timestamp(msg, &tstype);
}

static void dead_clear(struct dead *d)
{
    free(d->ce_id);
    d->ce_id = NULL;
}

static int filter_match(const struct filter *f, const struct dead *d)
{
    const char *group = d->readable ? d->info.group : UNREADABLE;
    const char *reason = d->readable ? d->info.reason : UNREADABLE;

    return (f->group == NULL || strcmp(f->group, group) == 0) &&
           (f->reason == NULL || strcmp(f->reason, reason) == 0);
}

/* Writes s so that a key=value line stays one line a machine can split: inside quotes '"'
 * and '\' are escaped with '\'; control bytes (and, outside quotes, space, '"' and '\')
 * are written as \xHH. Other bytes, UTF-8 included, pass unchanged. */
static void put_text(FILE *out, const char *s, int quoted)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (quoted && (c == '"' || c == '\\')) {
            fputc('\\', out);
            fputc(c, out);
        } else if (c < 0x20 || c == 0x7f || (!quoted && (c == ' ' || c == '"' || c == '\\'))) {
            fprintf(out, "\\x%02x", c);
        } else {
            fputc(c, out);
        }
    }
}

/* "partition=P offset=O original=T/P/O group=G" of a readable record. */
static void put_where(FILE *out, const struct dead *d)
{
    fprintf(out, "partition=%d offset=%lld original=", (int)d->msg->partition,
            (long long)d->msg->offset);
    put_text(out, d->info.original_topic, 0);
    fprintf(out, "/%d/%lld group=", (int)d->info.original_partition,
            (long long)d->info.original_offset);
    put_text(out, d->info.group, 0);
}

static void put_ce_id(FILE *out, const struct dead *d)
{
    fputs(" ce_id=", out);
    if (d->ce_id != NULL && d->ce_id[0] != '\0')
        put_text(out, d->ce_id, 0);
    else
        fputs("-", out);
}

/* One line of `dlq list`. replayed is "yes", "no" or "-". */
static void print_dead(const struct dead *d, const char *replayed)
{
    char when[48];

    if (d->readable) {
        put_where(stdout, d);
        printf(" attempts=%d reason=", d->info.attempt);
        put_text(stdout, d->info.reason, 0);
        fputs(" error=\"", stdout);
        put_text(stdout, d->info.error, 1);
        if (util_rfc3339(d->info.first_failed_at_ms, when, sizeof(when)) != 0)
            snprintf(when, sizeof(when), "?");
        printf("\" first_failed_at=%s", when);
    } else {
        printf("partition=%d offset=%lld original=? group=? attempts=? reason=? error=\"",
               (int)d->msg->partition, (long long)d->msg->offset);
        put_text(stdout, d->why, 1);
        fputs("\" first_failed_at=?", stdout);
    }
    put_ce_id(stdout, d);
    printf(" replayed=%s\n", replayed);
}

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

/* SIGINT/SIGTERM set stop_requested; the handler is reset after the first signal, so that
 * a second Ctrl-C ends the program at once. */
static void catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Called for each record of dead-letter: returns 0 to go on, 1 to end the scan. */
typedef int (*record_fn)(void *ctx, const rd_kafka_message_t *msg);

/* Where the scan of one partition ends. */
struct part_end {
    int64_t hi;   /* its high watermark when the scan began; -1: unknown, the EOF event says */
    int done;
};

/* Reads dead-letter (mt) with the plain consumer rk (made with eof set) from the beginning to
 * its end, every partition at once, and calls fn for each record (in order within a
 * partition; partitions interleave). The end of a partition is its last record when the scan
 * began (its high watermark: records added meanwhile are left for the next run), or the
 * partition-EOF event, whichever comes first: the event covers a log that ends with records
 * a consumer never sees (transaction markers) and a watermark that cannot be read. Blocks
 * while fn does. Returns 0 at the end (or when fn ended the scan), 1 when stop_requested cut
 * it short, -1 with errstr when reading failed (a fatal error, or nothing heard for
 * SCAN_IDLE_MS). */
static int scan_dead_letter(rd_kafka_t *rk, const rd_kafka_metadata_topic_t *mt, record_fn fn,
                            void *ctx, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *assignment = NULL;
    struct part_end *ends = NULL;  /* indexed by partition id */
    int32_t max_id = -1;
    int64_t idle_until;
    rd_kafka_resp_err_t err;
    int ret = -1, open = 0, i;

    if (mt->partition_cnt <= 0) {
        util_errf(errstr, errstr_size, "topic %s has no partitions", RETRY_DEAD_LETTER_TOPIC);
        goto done;
    }
    for (i = 0; i < mt->partition_cnt; i++) {
        if (mt->partitions[i].id < 0) {
            util_errf(errstr, errstr_size, "%s: bad partition id %d", RETRY_DEAD_LETTER_TOPIC,
                      (int)mt->partitions[i].id);
            goto done;
        }
        if (mt->partitions[i].id > max_id)
            max_id = mt->partitions[i].id;
    }
    ends = calloc((size_t)max_id + 1, sizeof(*ends));
    assignment = rd_kafka_topic_partition_list_new(mt->partition_cnt);
    if (ends == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (i = 0; i < mt->partition_cnt; i++) {
        int32_t id = mt->partitions[i].id;
        int64_t lo = 0, hi = -1;

        if (rd_kafka_query_watermark_offsets(rk, RETRY_DEAD_LETTER_TOPIC, id, &lo, &hi,
                                             WATERMARK_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
            hi = -1;
        ends[id].hi = hi;
        if (hi >= 0 && hi <= lo) {
            ends[id].done = 1; /* empty */
            continue;
        }
        rd_kafka_topic_partition_list_add(assignment, RETRY_DEAD_LETTER_TOPIC, id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        open++;
    }
    if (open == 0) {
        ret = 0;
        goto done;
    }
    err = rd_kafka_assign(rk, assignment);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "cannot assign %s: %s", RETRY_DEAD_LETTER_TOPIC,
                  rd_kafka_err2str(err));
        goto done;
    }

    idle_until = util_mono_ms() + SCAN_IDLE_MS;
    while (open > 0) {
        rd_kafka_message_t *msg;
        struct part_end *end;
        int r = 0;

        if (stop_requested) {
            ret = 1;
            goto done;
        }
        msg = rd_kafka_consumer_poll(rk, POLL_MS);
        if (msg == NULL) {
            if (util_mono_ms() > idle_until) {
                util_errf(errstr, errstr_size, "%s: neither a record nor the end for %d s "
                          "(is the broker up?)", RETRY_DEAD_LETTER_TOPIC, SCAN_IDLE_MS / 1000);
                goto done;
            }
            continue;
        }
        end = msg->partition >= 0 && msg->partition <= max_id ? &ends[msg->partition] : NULL;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (end != NULL && !end->done) {
                end->done = 1;
                open--;
            }
        } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "dozenctl: %s [%d]: %s\n", RETRY_DEAD_LETTER_TOPIC,
                    (int)msg->partition, rd_kafka_message_errstr(msg));
            if (msg->err == RD_KAFKA_RESP_ERR__FATAL) {
                util_errf(errstr, errstr_size, "fatal consumer error");
                rd_kafka_message_destroy(msg);
                goto done;
            }
        } else if (end != NULL && !end->done) {
            r = fn(ctx, msg);
            if (end->hi >= 0 && msg->offset >= end->hi - 1) {
                end->done = 1;
                open--;
            }
            idle_until = util_mono_ms() + SCAN_IDLE_MS;
        }
        rd_kafka_message_destroy(msg);
        if (r != 0) {
            ret = stop_requested ? 1 : 0; /* fn saw the stop, or had enough */
            goto done;
        }
    }
    ret = 0;
done:
    if (assignment != NULL)
        rd_kafka_topic_partition_list_destroy(assignment);
    free(ends);
    return ret;
}

/* Reads a non-empty option value for --group/--reason. Returns 0, or -1 after saying why. */
static int parse_name(const char *cmd, const char *opt, const char *s)
{
    if (s[0] == '\0') {
        fprintf(stderr, "dozenctl dlq %s: --%s: must not be empty\n", cmd, opt);
        return -1;
    }
    return 0;
}

/* Parses --limit: decimal digits only, 1..LLONG_MAX. Returns 0, or -1 after saying why. */
static int parse_count(const char *cmd, const char *s, long long *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = s[0] >= '0' && s[0] <= '9' ? strtoll(s, &end, 10) : 0;
    if (end == NULL || errno != 0 || *end != '\0' || v < 1) {
        fprintf(stderr, "dozenctl dlq %s: --limit: '%s' is not a positive integer\n", cmd, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Parses --rate: "N" or "N/s", N a decimal number (digits, at most one '.') from RATE_MIN to
 * RATE_MAX records per second. Returns 0, or -1 after saying why. */
static int parse_rate(const char *cmd, const char *s, double *out)
{
    char num[32];
    size_t len = strlen(s), i;
    int dots = 0, digits = 0;
    char *end = NULL;
    double v;

    if (len >= 2 && strcmp(s + len - 2, "/s") == 0)
        len -= 2;
    for (i = 0; i < len; i++) {
        if (s[i] == '.')
            dots++;
        else if (s[i] >= '0' && s[i] <= '9')
            digits++;
        else
            break;
    }
    if (i != len || digits == 0 || dots > 1 || len >= sizeof(num)) {
        fprintf(stderr, "dozenctl dlq %s: --rate: '%s' is not a number of records per second "
                "(like 5/s or 0.5)\n", cmd, s);
        return -1;
    }
    memcpy(num, s, len);
    num[len] = '\0';
    errno = 0;
    v = strtod(num, &end);
    if (errno != 0 || *end != '\0' || v < RATE_MIN || v > RATE_MAX) {
        fprintf(stderr, "dozenctl dlq %s: --rate: '%s' must be from %g to %g per second\n",
                cmd, s, RATE_MIN, RATE_MAX);
        return -1;
    }
    *out = v;
    return 0;
}

/* Says that an option is bad (getopt's '?' or ':'). */
static void bad_option(const char *cmd, int opt, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";

    if (opt == ':')
        fprintf(stderr, "dozenctl dlq %s: option '%s' needs a value\n", cmd, arg);
    else
        fprintf(stderr, "dozenctl dlq %s: bad option '%s'\n", cmd, arg);
    usage(stderr);
}

/* ---------------------------------------------------------------------------------------
 * dlq list */

/* Where replayed dead records are: (partition, offset, timestamp) of each 'replayed' row of
 * dlq_replays, sorted by partition and offset. */
struct replayed_pos {
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
};

struct replayed_set {
    struct replayed_pos *v;  /* owned */
    size_t n;
};

static int parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Loads every replayed position into set (which the caller frees with free(set->v)).
 * Returns 0, or -1 with errstr. */
static int replayed_load(PGconn *conn, struct replayed_set *set, char *errstr,
                         size_t errstr_size)
{
    PGresult *res = NULL;
    int ret = -1, i, rows;

    set->v = NULL;
    set->n = 0;
    res = db_query(conn, "SELECT dead_partition, dead_offset, dead_timestamp FROM dlq_replays "
                   "WHERE status = 'replayed' ORDER BY dead_partition, dead_offset",
                   0, NULL, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    rows = PQntuples(res);
    if (rows > 0) {
        set->v = calloc((size_t)rows, sizeof(*set->v));
        if (set->v == NULL) {
            util_errf(errstr, errstr_size, "out of memory");
            goto done;
        }
    }
    for (i = 0; i < rows; i++) {
        int64_t p;

        if (parse_i64(PQgetvalue(res, i, 0), &p) != 0 || p < 0 || p > INT32_MAX ||
            parse_i64(PQgetvalue(res, i, 1), &set->v[i].offset) != 0 ||
            parse_i64(PQgetvalue(res, i, 2), &set->v[i].timestamp) != 0) {
            util_errf(errstr, errstr_size, "dlq_replays: unexpected row %d", i);
            goto done;
        }
        set->v[i].partition = (int32_t)p;
    }
    set->n = (size_t)rows;
    ret = 0;
done:
    if (ret != 0) {
        free(set->v);
        set->v = NULL;
        set->n = 0;
    }
    PQclear(res);
    return ret;
}

static int pos_cmp(const void *a, const void *b)
{
    const struct replayed_pos *x = a, *y = b;

    if (x->partition != y->partition)
        return (x->partition > y->partition) - (x->partition < y->partition);
    return (x->offset > y->offset) - (x->offset < y->offset);
}

/* 1 if the record d was replayed (the row of its position is about this very record). */
static int replayed_has(const struct replayed_set *set, const struct dead *d)
{
    struct replayed_pos key = { d->msg->partition, d->msg->offset, 0 };
    const struct replayed_pos *hit;

    if (set->n == 0)
        return 0;
    hit = bsearch(&key, set->v, set->n, sizeof(*set->v), pos_cmp);
    return hit != NULL && hit->timestamp == d->timestamp;
}

struct list_ctx {
    const struct filter *filter;
    const struct replayed_set *replayed;  /* NULL when unknown */
};

static int list_record(void *vctx, const rd_kafka_message_t *msg)
{
    struct list_ctx *c = vctx;
    struct dead d;

    dead_read(&d, msg);
    if (filter_match(c->filter, &d))
        print_dead(&d, c->replayed == NULL ? "-" : replayed_has(c->replayed, &d) ? "yes" : "no");
    dead_clear(&d);
    return 0;
}

/* Reads which dead records were replayed, for `dlq list`. Returns 1 with *set filled when
 * DATABASE_URL is known and the table could be read, else 0 (after a warning on stderr when
 * DATABASE_URL is known but the table could not be read). */
static int list_replay_state(struct replayed_set *set)
{
    char *url = NULL;
    PGconn *conn = NULL;
    char errstr[512];
    int ret = 0;

    url = find_setting("DATABASE_URL", errstr, sizeof(errstr));
    if (url == NULL)
        goto done; /* not configured: the column shows '-' */
    conn = db_connect(url, NULL, 0, errstr, sizeof(errstr));
    if (conn == NULL || replayed_load(conn, set, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "dozenctl: which records were replayed is unknown (shown as "
                "replayed=-): %s\n", errstr);
        goto done;
    }
    ret = 1;
done:
    if (conn != NULL)
        PQfinish(conn);
    free(url);
    return ret;
}

/* `dozenctl dlq list [--group G] [--reason R]`. */
static int cmd_dlq_list(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "group", required_argument, NULL, 'g' },
        { "reason", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct filter filter = { NULL, NULL };
    struct replayed_set set = { NULL, 0 };
    struct list_ctx ctx;
    char *bootstrap = NULL;
    rd_kafka_t *rk = NULL;
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t *mt;
    char errstr[512];
    int status = 1, opt, r;

    optind = 0; /* a fresh scan of this sub-command's arguments */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'g':
            if (parse_name("list", "group", optarg) != 0)
                return EXIT_USAGE;
            filter.group = optarg;
            break;
        case 'r':
            if (parse_name("list", "reason", optarg) != 0)
                return EXIT_USAGE;
            filter.reason = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            bad_option("list", opt, argv);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dozenctl dlq list: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }

    bootstrap = find_setting("KAFKA_BOOTSTRAP", errstr, sizeof(errstr));
    if (bootstrap == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    ctx.filter = &filter;
    ctx.replayed = list_replay_state(&set) ? &set : NULL;

    rk = client_new(bootstrap, 1, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    md = metadata_get(rk, bootstrap, errstr, sizeof(errstr));
    if (md == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    mt = metadata_topic(md, RETRY_DEAD_LETTER_TOPIC);
    if (mt == NULL || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        fprintf(stderr, "dozenctl: topic '%s' does not exist (dozenctl topics --create)\n",
                RETRY_DEAD_LETTER_TOPIC);
        goto done;
    }

    catch_signals();
    r = scan_dead_letter(rk, mt, list_record, &ctx, errstr, sizeof(errstr));
    if (fflush(stdout) != 0) {
        fprintf(stderr, "dozenctl: cannot write the list: %s\n", strerror(errno));
        goto done;
    }
    if (r < 0) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    if (r > 0) {
        fprintf(stderr, "dozenctl: interrupted: the list is incomplete\n");
        status = EXIT_INTERRUPTED;
        goto done;
    }
    status = 0;
done:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    free(set.v);
    free(bootstrap);
    return status;
}

/* ---------------------------------------------------------------------------------------
 * dlq replay */

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

/* The replay protocol for one record of dead-letter (a record_fn): the matching records
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
    if (state_get(c->db, &p, &state, errstr, sizeof(errstr)) != 0) {
        ret = db_failed(c, &d, "reading dlq_replays", errstr);
        goto done;
    }
    if (state == STATE_REPLAYED) {
        c->skipped++;
        goto done;
    }
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
        if (state_get(c->db, &p, &state, errstr, sizeof(errstr)) != 0) {
            ret = db_failed(c, &d, "reading dlq_replays", errstr);
            goto done;
        }
        if (state == STATE_REPLAYED) {
            c->skipped++;
            goto done;
        }
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

/* `dozenctl dlq replay [--group G] [--reason R] [--limit N] [--rate N/s] [--dry-run]`. */
static int cmd_dlq_replay(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "group", required_argument, NULL, 'g' },
        { "reason", required_argument, NULL, 'r' },
        { "limit", required_argument, NULL, 'l' },
        { "rate", required_argument, NULL, 'R' },
        { "dry-run", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct filter filter = { NULL, NULL };
    struct replay_ctx ctx;
    char *bootstrap = NULL, *db_url = NULL;
    rd_kafka_t *rk = NULL;
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t *mt;
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
    bootstrap = find_setting("KAFKA_BOOTSTRAP", errstr, sizeof(errstr));
    if (bootstrap == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
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

    rk = client_new(bootstrap, 1, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    md = metadata_get(rk, bootstrap, errstr, sizeof(errstr));
    if (md == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    mt = metadata_topic(md, RETRY_DEAD_LETTER_TOPIC);
    if (mt == NULL || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        fprintf(stderr, "dozenctl: topic '%s' does not exist (dozenctl topics --create)\n",
                RETRY_DEAD_LETTER_TOPIC);
        goto done;
    }
    ctx.md = md;
    if (!ctx.dry_run) {
        ctx.producer = kafka_producer_new(bootstrap, "dozenctl", on_ack, NULL, errstr,
                                          sizeof(errstr));
        if (ctx.producer == NULL) {
            fprintf(stderr, "dozenctl: %s\n", errstr);
            goto done;
        }
    }

    catch_signals();
    r = scan_dead_letter(rk, mt, replay_record, &ctx, errstr, sizeof(errstr));
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
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    if (ctx.db != NULL)
        PQfinish(ctx.db);
    free(bootstrap);
    free(db_url);
    return status;
}

int cmd_dlq(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : NULL;

    if (sub == NULL) {
        fprintf(stderr, "dozenctl dlq: expected 'list' or 'replay'\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        usage(stdout);
        return 0;
    }
    /* Each sub-command gets its own argv: argv[0] is its name. */
    if (strcmp(sub, "list") == 0)
        return cmd_dlq_list(argc - 1, argv + 1);
    if (strcmp(sub, "replay") == 0)
        return cmd_dlq_replay(argc - 1, argv + 1);
    fprintf(stderr, "dozenctl dlq: unknown command '%s' (expected 'list' or 'replay')\n", sub);
    usage(stderr);
    return EXIT_USAGE;
}
