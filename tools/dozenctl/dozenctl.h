/* dozenctl: the program's private header, what its sub-command files share. */
#ifndef DOZENCTL_H
#define DOZENCTL_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "kafka_reader.h"
#include "retry.h"

#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130 /* 128 + SIGINT, as a shell reports it */
#define METADATA_TIMEOUT_MS 10000
#define POLL_MS 200
#define ENV_FILE ".run/env"

/* dozenctl.c */

/* Set by SIGINT/SIGTERM (on_signal); loops look at it between records. */
extern volatile sig_atomic_t stop_requested;

void usage(FILE *out);
void on_signal(int sig);

/* Returns the setting NAME (KAFKA_BOOTSTRAP, DATABASE_URL) as a new string the caller
 * frees: $NAME, else the NAME line of ./.run/env, else of <dir of the executable>/../.run/env.
 * NULL with errstr naming NAME if none says (or an env file cannot be read). */
char *find_setting(const char *name, char *errstr, size_t errstr_size);

/* SIGINT/SIGTERM set stop_requested; the handler is reset after the first signal, so that
 * a second Ctrl-C ends the program at once. */
void catch_signals(void);

/* Prints on stderr an error the consumer reported instead of a record (a
 * kafka_reader_error_fn: the read goes on). */
int print_consume_error(void *ctx, const rd_kafka_message_t *msg);

/* What every sub-command talking to the broker starts with. */
struct session {
    char *bootstrap;                    /* KAFKA_BOOTSTRAP (owned) */
    rd_kafka_t *rk;                     /* a kafka_reader client (owned) */
    const struct rd_kafka_metadata *md; /* every topic of the cluster (owned) */
};

/* Finds KAFKA_BOOTSTRAP (find_setting), makes sure the declared topics exist when
 * create_topics (topics_ensure), makes the reader client and reads the metadata of every
 * topic (which never auto-creates one). Returns 0, or -1 after saying why on stderr (s is
 * then empty). Free with session_close. */
int session_open(struct session *s, int create_topics);

/* Frees what session_open made. */
void session_close(struct session *s);

/* The topic called name in md (borrowed from md), or NULL. */
const rd_kafka_metadata_topic_t *metadata_topic(const struct rd_kafka_metadata *md,
                                                const char *name);

/* dlq.c: what the dlq sub-commands share */

/* Which dead records a command is about. */
struct filter {
    const char *group;   /* NULL: any */
    const char *reason;  /* NULL: any; "?" selects the records with unreadable headers */
    int has_at;          /* 1: only the record at partition:offset of dead-letter (--at) */
    int32_t partition;
    int64_t offset;
};

/* Reads --at P:O (a partition and an offset of dead-letter) into f. Returns 0, or -1 after
 * saying why. */
int parse_at(const char *cmd, const char *s, struct filter *f);

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
void dead_read(struct dead *d, const rd_kafka_message_t *msg);
void dead_clear(struct dead *d);

/* 1 if d is one of the records f is about. */
int filter_match(const struct filter *f, const struct dead *d);

/* Writes s so that a key=value line stays one line a machine can split: inside quotes '"'
 * and '\' are escaped with '\'; control bytes (and, outside quotes, space, '"' and '\')
 * are written as \xHH. Other bytes, UTF-8 included, pass unchanged. */
void put_text(FILE *out, const char *s, int quoted);

/* "partition=P offset=O original=T/P/O group=G" of a readable record. */
void put_where(FILE *out, const struct dead *d);

/* " ce_id=<id>" of d, "-" when it has none. */
void put_ce_id(FILE *out, const struct dead *d);

/* session_open, then checks that dead-letter exists. Returns 0, or -1 after saying why on
 * stderr (s is then empty). */
int dlq_open(struct session *s);

/* Reads dead-letter from the beginning to its end (each partition's high watermark when the
 * scan began: records added meanwhile are left for the next run) with the reader of
 * kafka_reader.h, calling fn for each record. Returns 0 at the end (or when fn ended the
 * scan), 1 when stop_requested cut it short, -1 with errstr when reading failed (a fatal
 * error, or nothing heard for 30 s). */
int dlq_scan(struct session *s, kafka_reader_fn fn, void *ctx, char *errstr,
             size_t errstr_size);

/* Option checks of the dlq sub-commands: each returns 0, or -1 after saying why. */
int parse_name(const char *cmd, const char *opt, const char *s);
int parse_count(const char *cmd, const char *s, long long *out);
int parse_rate(const char *cmd, const char *s, double *out);

/* Says that an option is bad (getopt's '?' or ':'). */
void bad_option(const char *cmd, int opt, char **argv);

/* `dozenctl dlq list|replay ...`; argv[0] is "dlq". Returns the exit status. */
int cmd_dlq(int argc, char **argv);

/* dlq_list.c */

/* `dozenctl dlq list [--group G] [--reason R]`. Returns the exit status. */
int cmd_dlq_list(int argc, char **argv);

/* dlq_replay.c */

/* `dozenctl dlq replay [--group G] [--reason R] [--limit N] [--rate N/s] [--dry-run]`.
 * Returns the exit status. */
int cmd_dlq_replay(int argc, char **argv);

/* web.c */

/* `dozenctl web [--port N]`: the operations console, until SIGINT/SIGTERM. Returns the
 * exit status. */
int cmd_web(int argc, char **argv);

/* groups.c */

/* `dozenctl groups [GROUP] [--max-lag N] [--json]`. Returns the exit status. */
int cmd_groups(int argc, char **argv);

/* trace.c */

/* `dozenctl trace ID [--since DURATION|RFC3339] [--json]`. Returns the exit status. */
int cmd_trace(int argc, char **argv);

#endif
