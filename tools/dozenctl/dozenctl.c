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
#include "log.h"
#include "topics.h"
#include "util.h"

#define WATERMARK_TIMEOUT_MS 5000
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
            "  dlq list [--group G] [--reason R]\n"
            "              every record of dead-letter, one line each: where it came from,\n"
            "              its group, attempts, reason, error, first failure, ce_id and\n"
            "              whether it was replayed (replayed=- without $DATABASE_URL);\n"
            "              records with unreadable dozen-* headers show reason=?\n"
            "  dlq replay [--group G] [--reason R] [--limit N] [--rate N/s] [--dry-run]\n"
            "              copies each matching dead record not replayed yet to its group's\n"
            "              retry.<group> with a fresh attempt count; each is replayed at most\n"
            "              once (recorded in PostgreSQL: $DATABASE_URL is required). --limit\n"
            "              stops after N records, --rate spaces them, --dry-run only prints\n"
            "              what would be replayed. Exit 1 if any failed, 130 on Ctrl-C.\n"
            "\n"
            "The broker is $KAFKA_BOOTSTRAP, else the KAFKA_BOOTSTRAP line of ./" ENV_FILE
            ",\nelse of " ENV_FILE " next to the program's directory (<bin>/../" ENV_FILE ").\n"
            "Other KAFKA_* variables pass through as librdkafka properties\n"
            "(KAFKA_SECURITY_PROTOCOL=ssl sets security.protocol).\n"
            "DATABASE_URL (dlq) is found the same way.\n");
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

rd_kafka_t *client_new(const char *bootstrap, int eof, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    char rderr[512], group[64];
    int n;

    conf = kafka_conf_new(bootstrap, "dozenctl", errstr, errstr_size);
    if (conf == NULL)
        goto done;
    /* librdkafka wants a group.id even for rd_kafka_assign(); this one never joins (no
     * subscribe) and never commits, so it leaves no trace on the cluster. */
    n = snprintf(group, sizeof(group), "dozenctl-%ld", (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(group)) {
        util_errf(errstr, errstr_size, "group.id too long");
        goto done;
    }
    if (rd_kafka_conf_set(conf, "group.id", group, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        util_errf(errstr, errstr_size, "%s", rderr);
        goto done;
    }
    if (rd_kafka_conf_set(conf, "enable.auto.commit", "false", rderr, sizeof(rderr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", rderr,
                          sizeof(rderr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.partition.eof", eof ? "true" : "false", rderr,
                          sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        util_errf(errstr, errstr_size, "%s", rderr);
        goto done;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (rk == NULL) {
        util_errf(errstr, errstr_size, "%s", rderr);
        goto done;
    }
    conf = NULL; /* rd_kafka_new() took it */
done:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return rk;
}

const struct rd_kafka_metadata *metadata_get(rd_kafka_t *rk, const char *bootstrap,
                                             char *errstr, size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, METADATA_TIMEOUT_MS);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "cannot get metadata from %s: %s", bootstrap,
                rd_kafka_err2str(err));
        return NULL;
    }
    return md;
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

static int partition_cmp(const void *a, const void *b)
{
    int32_t x = ((const rd_kafka_metadata_partition_t *)a)->id;
    int32_t y = ((const rd_kafka_metadata_partition_t *)b)->id;

    return (x > y) - (x < y);
}

/* Prints one topic's line. Returns 0, or -1 if an end offset could not be read (the line
 * shows '?' for it and the error goes to stderr). */
static int print_topic(rd_kafka_t *rk, const struct topic_row *row)
{
    const rd_kafka_metadata_topic_t *mt = row->mt;
    const topic_spec_t *spec = topics_find(row->name);
    rd_kafka_metadata_partition_t *parts = NULL;
    int ret = 0, i;

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

    /* Metadata does not promise partitions in id order. */
    if (mt->partition_cnt > 0) {
        parts = malloc((size_t)mt->partition_cnt * sizeof(*parts));
        if (parts == NULL) {
            printf("\n");
            fprintf(stderr, "dozenctl: out of memory\n");
            return -1;
        }
        memcpy(parts, mt->partitions, (size_t)mt->partition_cnt * sizeof(*parts));
        qsort(parts, (size_t)mt->partition_cnt, sizeof(*parts), partition_cmp);
    }
    printf(" end_offsets=");
    for (i = 0; i < mt->partition_cnt; i++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            rk, row->name, parts[i].id, &lo, &hi, WATERMARK_TIMEOUT_MS);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            printf("%s%d:?", i > 0 ? "," : "", (int)parts[i].id);
            fprintf(stderr, "dozenctl: %s [%d]: end offset: %s\n", row->name,
                    (int)parts[i].id, rd_kafka_err2str(err));
            ret = -1;
        } else {
            printf("%s%d:%lld", i > 0 ? "," : "", (int)parts[i].id, (long long)hi);
        }
    }
    if (mt->partition_cnt == 0)
        printf("-");
    printf("\n");
    free(parts);
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
    char *bootstrap = NULL;
    rd_kafka_t *rk = NULL;
    const struct rd_kafka_metadata *md = NULL;
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

    bootstrap = find_setting("KAFKA_BOOTSTRAP", errstr, sizeof(errstr));
    if (bootstrap == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    if (create && topics_ensure(bootstrap, NULL, CREATE_TIMEOUT_MS, errstr,
                                sizeof(errstr)) != 0) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    rk = client_new(bootstrap, 0, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    md = metadata_get(rk, bootstrap, errstr, sizeof(errstr));
    if (md == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }

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
    qsort(rows, nrows, sizeof(*rows), topic_row_cmp);
    if (describe_rows(rk, rows, nrows, errstr, sizeof(errstr)) != 0)
        fprintf(stderr, "dozenctl: live topic configuration unavailable (shown as '?'): %s\n",
                errstr);

    status = 0;
    for (t = 0; t < nrows; t++) {
        if (print_topic(rk, &rows[t]) != 0)
            status = 1;
    }
    if (fflush(stdout) != 0)
        status = 1;
done:
    free(rows);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    free(bootstrap);
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
                                      "ce_specversion" };
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
    char *bootstrap = NULL;
    int from_beginning = 0, exit_at_end = 0, opt;
    long long max = 0, seen = 0;
    const char *topic;
    rd_kafka_t *rk = NULL;
    const struct rd_kafka_metadata *md = NULL;
    const rd_kafka_metadata_topic_t *mt;
    rd_kafka_topic_partition_list_t *assignment = NULL;
    unsigned char *at_eof = NULL; /* per partition id: at the end since its last record */
    int32_t max_id = -1;
    int eofs = 0, i;
    rd_kafka_resp_err_t err;
    struct sigaction sa;
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
            max = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || max < 1) {
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

    bootstrap = find_setting("KAFKA_BOOTSTRAP", errstr, sizeof(errstr));
    if (bootstrap == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    rk = client_new(bootstrap, exit_at_end, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    md = metadata_get(rk, bootstrap, errstr, sizeof(errstr));
    if (md == NULL) {
        fprintf(stderr, "dozenctl: %s\n", errstr);
        goto done;
    }
    mt = metadata_topic(md, topic);
    if (mt == NULL || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        fprintf(stderr, "dozenctl: topic '%s' does not exist\n", topic);
        goto done;
    }
    if (mt->partition_cnt <= 0) {
        fprintf(stderr, "dozenctl: topic '%s' has no partitions (%s)\n", topic,
                rd_kafka_err2str(mt->err));
        goto done;
    }

    assignment = rd_kafka_topic_partition_list_new(mt->partition_cnt);
    for (i = 0; i < mt->partition_cnt; i++) {
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_add(assignment, topic, mt->partitions[i].id);

        tp->offset = from_beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
        if (mt->partitions[i].id > max_id)
            max_id = mt->partitions[i].id;
    }
    at_eof = calloc((size_t)max_id + 1, 1);
    if (at_eof == NULL) {
        fprintf(stderr, "dozenctl: out of memory\n");
        goto done;
    }
    err = rd_kafka_assign(rk, assignment);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "dozenctl: cannot assign %s: %s\n", topic, rd_kafka_err2str(err));
        goto done;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    status = 0;
    while (!stop_requested) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, POLL_MS);
        int done_now = 0;

        if (msg == NULL)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (msg->partition >= 0 && msg->partition <= max_id && !at_eof[msg->partition]) {
                at_eof[msg->partition] = 1;
                eofs++;
            }
            done_now = exit_at_end && eofs == mt->partition_cnt;
        } else if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "dozenctl: %s [%d]: %s\n", topic, (int)msg->partition,
                    rd_kafka_message_errstr(msg));
            if (msg->err == RD_KAFKA_RESP_ERR__FATAL) {
                status = 1;
                done_now = 1;
            }
        } else {
            print_record(msg);
            if (msg->partition >= 0 && msg->partition <= max_id && at_eof[msg->partition]) {
                at_eof[msg->partition] = 0;
                eofs--;
            }
            seen++;
            done_now = max > 0 && seen >= max;
        }
        rd_kafka_message_destroy(msg);
        if (done_now)
            break;
    }
done:
    free(at_eof);
    if (assignment != NULL)
        rd_kafka_topic_partition_list_destroy(assignment);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    free(bootstrap);
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
    fprintf(stderr, "dozenctl: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
