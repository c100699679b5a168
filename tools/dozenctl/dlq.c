/* dlq: what `dozenctl dlq list` (dlq_list.c) and `dozenctl dlq replay` (dlq_replay.c)
 * share: a dead record read and filtered, its fields written on a line, the scan of
 * dead-letter, option parsing, and the `dlq` sub-command dispatch. */
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
#include "kafka_reader.h"
#include "retry.h"
#include "util.h"

#define SCAN_IDLE_MS 30000        /* neither a record nor the end for this long: give up */
#define WATERMARK_TIMEOUT_MS 5000
#define RATE_MIN 0.001            /* records per second: one every 1000 s at the slowest */
#define RATE_MAX 1000000.0
#define UNREADABLE "?"            /* group and reason of a record with unreadable headers */

/* Fills d from msg (borrowed for as long as d is used). Free with dead_clear. */
void dead_read(struct dead *d, const rd_kafka_message_t *msg)
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

void dead_clear(struct dead *d)
{
    free(d->ce_id);
    d->ce_id = NULL;
}

int filter_match(const struct filter *f, const struct dead *d)
{
    const char *group = d->readable ? d->info.group : UNREADABLE;
    const char *reason = d->readable ? d->info.reason : UNREADABLE;

    return (f->group == NULL || strcmp(f->group, group) == 0) &&
           (f->reason == NULL || strcmp(f->reason, reason) == 0) &&
           (!f->has_at || (d->msg->partition == f->partition && d->msg->offset == f->offset));
}

int parse_at(const char *cmd, const char *s, struct filter *f)
{
    char *end;
    long p;
    long long o;

    errno = 0;
    p = strtol(s, &end, 10);
    if (errno == 0 && end != s && *end == ':' && p >= 0 && p <= INT32_MAX) {
        const char *os = end + 1;
        o = strtoll(os, &end, 10);
        if (errno == 0 && end != os && *end == '\0' && o >= 0) {
            f->has_at = 1;
            f->partition = (int32_t)p;
            f->offset = o;
            return 0;
        }
    }
    fprintf(stderr, "dozenctl dlq %s: --at must be PARTITION:OFFSET of dead-letter, such as "
            "0:12 (got '%s')\n", cmd, s);
    return -1;
}

/* Writes s so that a key=value line stays one line a machine can split: inside quotes '"'
 * and '\' are escaped with '\'; control bytes (and, outside quotes, space, '"' and '\')
 * are written as \xHH. Other bytes, UTF-8 included, pass unchanged. */
void put_text(FILE *out, const char *s, int quoted)
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
void put_where(FILE *out, const struct dead *d)
{
    fprintf(out, "partition=%d offset=%lld original=", (int)d->msg->partition,
            (long long)d->msg->offset);
    put_text(out, d->info.original_topic, 0);
    fprintf(out, "/%d/%lld group=", (int)d->info.original_partition,
            (long long)d->info.original_offset);
    put_text(out, d->info.group, 0);
}

void put_ce_id(FILE *out, const struct dead *d)
{
    fputs(" ce_id=", out);
    if (d->ce_id != NULL && d->ce_id[0] != '\0')
        put_text(out, d->ce_id, 0);
    else
        fputs("-", out);
}

int dlq_open(struct session *s)
{
    const rd_kafka_metadata_topic_t *mt;

    if (session_open(s, 0) != 0)
        return -1;
    mt = metadata_topic(s->md, RETRY_DEAD_LETTER_TOPIC);
    if (mt == NULL || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        fprintf(stderr, "dozenctl: topic '%s' does not exist (dozenctl topics --create)\n",
                RETRY_DEAD_LETTER_TOPIC);
        session_close(s);
        return -1;
    }
    return 0;
}

int dlq_scan(struct session *s, kafka_reader_fn fn, void *ctx, char *errstr,
             size_t errstr_size)
{
    kafka_reader_opts_t opts = { 0 };
    kafka_reader_t *reader;
    int ret;

    opts.rk = s->rk;
    opts.topic = RETRY_DEAD_LETTER_TOPIC;
    opts.start = RD_KAFKA_OFFSET_BEGINNING;
    opts.idle_ms = SCAN_IDLE_MS;
    opts.watermark_timeout_ms = WATERMARK_TIMEOUT_MS;
    opts.stop = &stop_requested;
    opts.on_error = print_consume_error;
    opts.ctx = ctx;
    reader = kafka_reader_new(&opts, errstr, errstr_size);
    if (reader == NULL)
        return -1;
    ret = kafka_reader_run(reader, fn, errstr, errstr_size);
    kafka_reader_free(reader);
    return ret;
}

/* Reads a non-empty option value for --group/--reason. Returns 0, or -1 after saying why. */
int parse_name(const char *cmd, const char *opt, const char *s)
{
    if (s[0] == '\0') {
        fprintf(stderr, "dozenctl dlq %s: --%s: must not be empty\n", cmd, opt);
        return -1;
    }
    return 0;
}

/* Parses --limit: decimal digits only, 1..LLONG_MAX. Returns 0, or -1 after saying why. */
int parse_count(const char *cmd, const char *s, long long *out)
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
int parse_rate(const char *cmd, const char *s, double *out)
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
void bad_option(const char *cmd, int opt, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";

    if (opt == ':')
        fprintf(stderr, "dozenctl dlq %s: option '%s' needs a value\n", cmd, arg);
    else
        fprintf(stderr, "dozenctl dlq %s: bad option '%s'\n", cmd, arg);
    usage(stderr);
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
