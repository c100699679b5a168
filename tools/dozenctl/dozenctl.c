/* dozenctl: operator tool for the project's Kafka topics (overview, tail, dead letters). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "dozenctl.h"
#include "kafka.h"
#include "kafka_reader.h"
#include "log.h"
#include "topics.h"
#include "util.h"

#define CREATE_TIMEOUT_MS 60000

volatile sig_atomic_t stop_requested;

void usage(FILE *out)
{
    fprintf(out,
            "usage: dozenctl [--help] COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  topics [--create]\n"
            "              every topic with its partitions, replication factor, retention.ms,\n"
            "              cleanup.policy and per-partition end offsets (partition:offset);\n"
            "              declared topics that are absent are listed as MISSING. --create\n"
            "              first creates the missing declared topics (existing ones are left\n"
            "              as they are)\n"
            "  tail TOPIC [--from-beginning] [--max N] [--exit]\n"
            "              print the records of TOPIC, one line each, from the end (or the\n"
            "              beginning); stop after N records, at the end of every partition\n"
            "              (--exit), or on Ctrl-C. No consumer group, nothing committed.\n"
            "  groups [GROUP] [--max-lag N] [--json]\n"
            "              each consumer group (or GROUP) with its state, members and their\n"
            "              assignment, and per partition the committed offset, end offset\n"
            "              and lag. On a broker without ListGroups/DescribeGroups (the dev\n"
            "              broker) the groups dozen declares, with the partitions each\n"
            "              service's /metrics says it consumes. Exit 1 when --max-lag N is\n"
            "              given and a partition lags more than N records\n"
            "  trace ORDER_ID|CE_ID [--json], trace SKU --since DURATION|RFC3339 [--json]\n"
            "              one order's whole story in time order, one line per step (time,\n"
            "              what, where, details): the order, its events (topic, partition,\n"
            "              offset, delay after commit), the depletion, the production order,\n"
            "              the legacy calls and retries, the delivery, stock.replenished, the\n"
            "              stock change, the alerts and any dead letter; an SKU: each of its\n"
            "              orders since then. --json: an array of {time, kind, where, fields}.\n"
            "              Needs $DATABASE_URL. Exit 1 when the id is unknown\n"
            "  dlq list [--group G] [--reason R] [--at P:O]\n"
            "              every record of dead-letter, one line each: where it came from,\n"
            "              its group, attempts, reason, error, first failure, ce_id and\n"
            "              whether it was replayed (replayed=- without $DATABASE_URL);\n"
            "              records with unreadable dozen-* headers show reason=?\n"
            "  dlq replay [--group G] [--reason R] [--at P:O] [--limit N] [--rate N/s] [--dry-run]\n"
            "              copies each matching dead record not replayed yet to its group's\n"
            "              retry.<group> with a fresh attempt count; each is replayed at most\n"
            "              once (recorded in PostgreSQL: $DATABASE_URL is required). --limit\n"
            "              stops after N records, --rate spaces them, --dry-run only prints\n"
            "              what would be replayed. Exit 1 if any failed, 130 on Ctrl-C.\n"
            "              --at P:O (list and replay): only the record at that partition\n"
            "              and offset of dead-letter\n"
            "  web [--port N]\n"
            "              the operations console on http://127.0.0.1:N/ (8090): topics,\n"
            "              groups and lag, outbox backlog, retries, dead letters with a\n"
            "              replay button (needs $ADMIN_TOKEN), the latest bulletins, a trace\n"
            "\n"
            "The broker is $KAFKA_BOOTSTRAP, else the KAFKA_BOOTSTRAP line of ./" ENV_FILE
            ",\nelse of " ENV_FILE " next to the program's directory (<bin>/../" ENV_FILE ").\n"
            "Other KAFKA_* variables pass through as librdkafka properties\n"
            "(KAFKA_SECURITY_PROTOCOL=ssl sets security.protocol).\n"
            "DATABASE_URL (dlq, trace) is found the same way.\n");
}

void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Looks for NAME=VALUE (optionally after "export ", VALUE optionally quoted) in a
 * shell-style env file; the last such line wins, as it would in a shell. Returns 1 and
 * *out (a new string the caller frees), 0 if the file or the line is absent, -1 with errstr
 * if the file cannot be read. */
static int env_file_value(const char *path, const char *name, char **out, char *errstr,
                          size_t errstr_size)
{
    size_t name_len = strlen(name);
    int ret = -1;
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    char *found = NULL;
    ssize_t n;

    *out = NULL;
    f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT || errno == ENOTDIR) {
            ret = 0;
        } else {
            util_errf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        }
        goto done;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        char *p = line, *end = line + n;
        size_t len;

        while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' ||
                           end[-1] == '\t'))
            *--end = '\0';
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
            p += 6;
            while (*p == ' ' || *p == '\t')
                p++;
        }
        if (strncmp(p, name, name_len) != 0 || p[name_len] != '=')
            continue;
        p += name_len + 1;
        len = strlen(p);
        if (len >= 2 && (p[0] == '"' || p[0] == '\'') && p[len - 1] == p[0]) {
            p++;
            len -= 2;
        }
        free(found);
        found = len > 0 ? strndup(p, len) : NULL;
        if (len > 0 && found == NULL) {
            util_errf(errstr, errstr_size, "out of memory");
            goto done;
        }
    }
    if (ferror(f)) {
        util_errf(errstr, errstr_size, "%s: read error", path);
        goto done;
    }
    if (found != NULL) {
        *out = found;
        found = NULL; /* the caller owns it now */
        ret = 1;
    } else {
        ret = 0;
    }
done:
    free(found);
    free(line);
    if (f != NULL)
        fclose(f);
    return ret;
}

char *find_setting(const char *name, char *errstr, size_t errstr_size)
{
    const char *env = getenv(name);
    char exe[PATH_MAX], path[PATH_MAX + 32] = "<dir of the program>/../" ENV_FILE;
    char *out = NULL;
    char *slash;
    ssize_t len;
    int r, n;

    if (env != NULL && env[0] != '\0') {
        out = strdup(env);
        if (out == NULL)
            util_errf(errstr, errstr_size, "out of memory");
        return out;
    }
    r = env_file_value(ENV_FILE, name, &out, errstr, errstr_size);
    if (r != 0)
        return r > 0 ? out : NULL;

    len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len > 0) {
        exe[len] = '\0';
        slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            n = snprintf(path, sizeof(path), "%s/../" ENV_FILE, exe);
            if (n > 0 && (size_t)n < sizeof(path)) {
                r = env_file_value(path, name, &out, errstr, errstr_size);
                if (r != 0)
                    return r > 0 ? out : NULL;
            } else {
                snprintf(path, sizeof(path), "<dir of the program>/../" ENV_FILE);
            }
        }
    }
    util_errf(errstr, errstr_size,
            "%s is not set and neither ./" ENV_FILE " nor %s defines it "
            "(is the stack up?)", name, path);
    return NULL;
}

void catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int print_consume_error(void *ctx, const rd_kafka_message_t *msg)
{
    (void)ctx;
    fprintf(stderr, "dozenctl: %s [%d]: %s\n",
            msg->rkt != NULL ? rd_kafka_topic_name(msg->rkt) : "-", (int)msg->partition,
            rd_kafka_message_errstr(msg));
    return 0;
}

int session_open(struct session *s, int create_topics)
{
    rd_kafka_resp_err_t err;
    char errstr[512];

    memset(s, 0, sizeof(*s));
    s->bootstrap = find_setting("KAFKA_BOOTSTRAP", errstr, sizeof(errstr));
    if (s->bootstrap == NULL)
        goto fail;
    if (create_topics && topics_ensure(s->bootstrap, NULL, CREATE_TIMEOUT_MS, errstr,
                                       sizeof(errstr)) != 0)
        goto fail;
    s->rk = kafka_reader_client_new(s->bootstrap, "dozenctl", errstr, sizeof(errstr));
    if (s->rk == NULL)
        goto fail;
    /* Every topic: asking for one by name could auto-create it. */
    err = rd_kafka_metadata(s->rk, 1, NULL, &s->md, METADATA_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        s->md = NULL;
        util_errf(errstr, sizeof(errstr), "cannot get metadata from %s: %s", s->bootstrap,
                  rd_kafka_err2str(err));
        goto fail;
    }
    return 0;
fail:
    fprintf(stderr, "dozenctl: %s\n", errstr);
    session_close(s);
    return -1;
}

void session_close(struct session *s)
{
    if (s->md != NULL)
        rd_kafka_metadata_destroy(s->md);
    kafka_reader_client_free(s->rk);
    free(s->bootstrap);
    memset(s, 0, sizeof(*s));
}

const rd_kafka_metadata_topic_t *metadata_topic(const struct rd_kafka_metadata *md,
                                                const char *name)
{
    int i;

    for (i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, name) == 0)
            return &md->topics[i];
    }
    return NULL;
}

/* One line of `dozenctl topics`: a topic of the cluster (mt) or a declared one that is
 * missing (mt NULL). */
struct topic_row {
    const char *name;
    const rd_kafka_metadata_topic_t *mt;
    topic_config_t config;  /* live retention and cleanup policy; "" when unknown */
};

static int topic_row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct topic_row *)a)->name, ((const struct topic_row *)b)->name);
}

/* Prints one topic's line. Returns 0, or -1 if an end offset could not be read (the line
 * shows '?' for it and the error goes to stderr). */
static int print_topic(rd_kafka_t *rk, const struct topic_row *row)
{
    const rd_kafka_metadata_topic_t *mt = row->mt;
    const topic_spec_t *spec = topics_find(row->name);
    kafka_reader_opts_t opts = { 0 };
    kafka_reader_t *reader;
    char errstr[512];
    size_t i;
    int ret = 0;

    if (mt == NULL) {
        printf("%s MISSING\n", row->name);
        return 0;
    }
    printf("%s partitions=%d", row->name, mt->partition_cnt);
    if (spec != NULL && spec->partitions != mt->partition_cnt)
        printf(" expected_partitions=%d", spec->partitions);
    printf(" replication=%d retention.ms=%s cleanup.policy=%s",
           mt->partition_cnt > 0 ? mt->partitions[0].replica_cnt : 0,
           row->config.retention_ms[0] ? row->config.retention_ms : "?",
           row->config.cleanup_policy[0] ? row->config.cleanup_policy : "?");
    if (mt->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        printf(" error=%s", rd_kafka_err2name(mt->err));

    printf(" end_offsets=");
    if (mt->partition_cnt == 0) {
        printf("-\n");
        return 0;
    }
    opts.rk = rk;
    opts.topic = row->name;
    reader = kafka_reader_new(&opts, errstr, sizeof(errstr));
    if (reader == NULL) {
        printf("?\n");
        fprintf(stderr, "dozenctl: %s: end offsets: %s\n", row->name, errstr);
        return -1;
    }
    for (i = 0; i < kafka_reader_count(reader); i++) {
        int32_t id;
        int64_t lo, hi;
        rd_kafka_resp_err_t err = kafka_reader_partition(reader, i, &id, &lo, &hi);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            printf("%s%d:?", i > 0 ? "," : "", (int)id);
            fprintf(stderr, "dozenctl: %s [%d]: end offset: %s\n", row->name, (int)id,
                    rd_kafka_err2str(err));
            ret = -1;
        } else {
            printf("%s%d:%lld", i > 0 ? "," : "", (int)id, (long long)hi);
        }
    }
    printf("\n");
    kafka_reader_free(reader);
    return ret;
}

/* Fills each existing row's live configuration with one DescribeConfigs request.
 * Returns 0, or -1 with errstr (the dev broker does not implement DescribeConfigs). */
static int describe_rows(rd_kafka_t *rk, struct topic_row *rows, size_t nrows,
                         char *errstr, size_t errstr_size)
{
    const char **names = NULL;
    topic_config_t *configs = NULL;
    size_t n = 0, i;
    int ret = -1;

    names = calloc(nrows + 1, sizeof(*names));
    configs = calloc(nrows + 1, sizeof(*configs));
    if (names == NULL || configs == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (i = 0; i < nrows; i++) {
        if (rows[i].mt != NULL)
            names[n++] = rows[i].name;
    }
    if (topics_describe(rk, names, n, configs, METADATA_TIMEOUT_MS, errstr, errstr_size) != 0)
        goto done;
    for (i = 0, n = 0; i < nrows; i++) {
        if (rows[i].mt != NULL)
            rows[i].config = configs[n++];
    }
    ret = 0;
done:
    free(names);
    free(configs);
    return ret;
}

/* `dozenctl topics`: the cluster's topics (internal "__" ones left out) and the declared
 * topics it lacks, sorted by name. */
static int cmd_topics(int argc, char **argv)
{
    int status = 1, create = 0;
    struct session ses = { NULL, NULL, NULL };
    const struct rd_kafka_metadata *md;
    struct topic_row *rows = NULL;
    size_t nrows = 0, t;
    char errstr[512];
    int i;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--create") == 0) {
        create = 1;
    } else if (argc > 1) {
        fprintf(stderr, "dozenctl topics: unexpected argument '%s'\n", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }

    if (session_open(&ses, create) != 0)
        goto done;
    md = ses.md;

    rows = calloc((size_t)md->topic_cnt + topics_count, sizeof(*rows));
    if (rows == NULL) {
        fprintf(stderr, "dozenctl: out of memory\n");
        goto done;
    }
    for (i = 0; i < md->topic_cnt; i++) {
        if (strncmp(md->topics[i].topic, "__", 2) == 0)
            continue;
        rows[nrows].name = md->topics[i].topic;
        rows[nrows].mt = &md->topics[i];
        nrows++;
    }
    for (t = 0; t < topics_count; t++) {
        if (metadata_topic(md, topics_all[t].name) == NULL) {
            rows[nrows].name = topics_all[t].name;
            rows[nrows].mt = NULL;
            nrows++;
        }
    }
    if (nrows > 1)
        qsort(rows, nrows, sizeof(*rows), topic_row_cmp);
    if (describe_rows(ses.rk, rows, nrows, errstr, sizeof(errstr)) != 0)
        fprintf(stderr, "dozenctl: live topic configuration unavailable (shown as '?'): %s\n",
                errstr);

    status = 0;
    for (t = 0; t < nrows; t++) {
        if (print_topic(ses.rk, &rows[t]) != 0)
            status = 1;
    }
    if (fflush(stdout) != 0)
        status = 1;
done:
    free(rows);
    session_close(&ses);
    return status;
}

/* Prints "name=value" for the last header called name, the value as it is, or "-". */
static void print_header(rd_kafka_headers_t *hdrs, const char *name)
{
    const void *val = NULL;
    size_t size = 0;

    printf(" %s=", name);
    if (hdrs != NULL &&
        rd_kafka_header_get_last(hdrs, name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        val != NULL)
        fwrite(val, 1, size, stdout);
    else
        fputs("-", stdout);
}

static void print_record(const rd_kafka_message_t *msg)
{
    static const char *const ce[] = { "ce_type", "ce_id", "ce_source", "ce_time",
                                      "ce_specversion", "ce_traceparent" };
    rd_kafka_headers_t *hdrs = NULL; /* borrowed from msg */
    size_t i;

    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        hdrs = NULL;
    printf("partition=%d offset=%lld key=", (int)msg->partition, (long long)msg->offset);
    if (msg->key != NULL)
        fwrite(msg->key, 1, msg->key_len, stdout);
    else
        fputs("-", stdout);
    for (i = 0; i < sizeof(ce) / sizeof(ce[0]); i++)
        print_header(hdrs, ce[i]);
    fputs(" value=", stdout);
    if (msg->payload != NULL)
        fwrite(msg->payload, 1, msg->len, stdout);
    else
        fputs("-", stdout);
    fputs("\n", stdout);
    fflush(stdout); /* one line at a time for whoever reads the pipe */
}

/* What `dozenctl tail` counts. */
struct tail {
    long long max;   /* 0: no limit */
    long long seen;
};

/* Prints one record of tail (a kafka_reader_fn); ends the read after max records. */
static int tail_record(void *ctx, const rd_kafka_message_t *msg)
{
    struct tail *t = ctx;

    print_record(msg);
    t->seen++;
    return t->max > 0 && t->seen >= t->max;
}

/* `dozenctl tail TOPIC [--from-beginning] [--max N] [--exit]`. */
static int cmd_tail(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "from-beginning", no_argument, NULL, 'b' },
        { "max", required_argument, NULL, 'm' },
        { "exit", no_argument, NULL, 'e' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int status = 1;
    int from_beginning = 0, exit_at_end = 0, opt;
    struct tail t = { 0, 0 };
    const char *topic;
    struct session ses = { NULL, NULL, NULL };
    kafka_reader_opts_t opts = { 0 };
    kafka_reader_t *reader = NULL;
    char errstr[512];

    optind = 0; /* a fresh scan of this sub-command's arguments */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            from_beginning = 1;
            break;
        case 'e':
            exit_at_end = 1;
            break;
        case 'm': {
            char *end = NULL;

            errno = 0;
            t.max = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || t.max < 1) {
                fprintf(stderr, "dozenctl tail: --max: '%s' is not a positive integer\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "dozenctl tail: bad option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (argc - optind != 1 || argv[optind][0] == '\0') {
        fprintf(stderr, "dozenctl tail: expected exactly one TOPIC\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    topic = argv[optind];

    if (session_open(&ses, 0) != 0)
        goto done;
    opts.rk = ses.rk;
    opts.topic = topic;
    opts.start = from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    opts.follow = !exit_at_end;
    opts.stop = &stop_requested;
    opts.on_error = print_consume_error;
    opts.ctx = &t;
    reader = kafka_reader_new(&opts, errstr, sizeof(errstr));
    if (reader == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    catch_signals();
    if (kafka_reader_run(reader, tail_record, errstr, sizeof(errstr)) < 0) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    status = 0;
done:
    kafka_reader_free(reader);
    session_close(&ses);
    return status;
}

int main(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    log_init("dozenctl");
    /* Each sub-command gets its own argv: argv[0] is the sub-command's name. */
    if (strcmp(cmd, "topics") == 0)
        return cmd_topics(argc - 1, argv + 1);
    if (strcmp(cmd, "tail") == 0)
        return cmd_tail(argc - 1, argv + 1);
    if (strcmp(cmd, "dlq") == 0)
        return cmd_dlq(argc - 1, argv + 1);
    if (strcmp(cmd, "groups") == 0)
        return cmd_groups(argc - 1, argv + 1);
    if (strcmp(cmd, "trace") == 0)
        return cmd_trace(argc - 1, argv + 1);
    if (strcmp(cmd, "web") == 0)
        return cmd_web(argc - 1, argv + 1);
    fprintf(stderr, "dozenctl: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
