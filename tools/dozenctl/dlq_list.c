/* dlq_list: `dozenctl dlq list`: every record of dead-letter on a line, with whether it was
 * replayed (dlq_replays in PostgreSQL, when DATABASE_URL is known). */
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

int cmd_dlq_list(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "group", required_argument, NULL, 'g' },
        { "reason", required_argument, NULL, 'r' },
        { "at", required_argument, NULL, 'a' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct filter filter = { NULL, NULL, 0, 0, 0 };
    struct replayed_set set = { NULL, 0 };
    struct list_ctx ctx;
    struct session ses = { NULL, NULL, NULL };
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
        case 'a':
            if (parse_at("list", optarg, &filter) != 0)
                return EXIT_USAGE;
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

    if (dlq_open(&ses) != 0)
        goto done;
    ctx.filter = &filter;
    ctx.replayed = list_replay_state(&set) ? &set : NULL;
    catch_signals();
    r = dlq_scan(&ses, list_record, &ctx, errstr, sizeof(errstr));
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
    session_close(&ses);
    free(set.v);
    return status;
}
