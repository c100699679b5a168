/* dozenctl: the program's private header, what its sub-command files share. */
#ifndef DOZENCTL_H
#define DOZENCTL_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

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

/* Creates a plain consumer handle: no group membership, no commits. eof asks for a
 * partition-EOF event at the end of each partition. NULL with errstr on failure. The caller
 * closes it (rd_kafka_consumer_close, rd_kafka_destroy). */
rd_kafka_t *client_new(const char *bootstrap, int eof, char *errstr, size_t errstr_size);

/* Returns the cluster's metadata for every topic (free with rd_kafka_metadata_destroy),
 * or NULL with errstr. Asking for all topics never auto-creates one. */
const struct rd_kafka_metadata *metadata_get(rd_kafka_t *rk, const char *bootstrap,
                                             char *errstr, size_t errstr_size);

/* The topic called name in md (borrowed from md), or NULL. */
const rd_kafka_metadata_topic_t *metadata_topic(const struct rd_kafka_metadata *md,
                                                const char *name);

/* dlq.c */

/* `dozenctl dlq list|replay ...`; argv[0] is "dlq". Returns the exit status. */
int cmd_dlq(int argc, char **argv);

#endif
