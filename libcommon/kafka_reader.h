/* kafka_reader: the one assign-only reader: given partitions of a topic read from an offset
 * (or the beginning) up to the high watermark taken when the reader was made, one callback
 * per record, then it stops. No consumer group is joined and nothing is committed. Used by
 * `dozenctl topics` (end offsets), `dozenctl tail` and the dead-letter scan of `dozenctl dlq`;
 * made so that a read-back such as the outbox's (each partition from a start offset to the
 * end) is one kafka_reader_run. */
#ifndef DOZEN_KAFKA_READER_H
#define DOZEN_KAFKA_READER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

/* Returns a new plain consumer for readers: a group.id of its own that never joins a group
 * (no subscribe), no offset store or commit, a partition-EOF event at the end of each
 * partition, KAFKA_* applied as in kafka_conf_new. NULL with errstr on failure. The caller
 * frees it with kafka_reader_client_free; one client may serve several readers, one after
 * the other. */
rd_kafka_t *kafka_reader_client_new(const char *bootstrap, const char *client_id,
                                    char *errstr, size_t errstr_size);

/* Closes and destroys a client of kafka_reader_client_new. Accepts NULL. */
void kafka_reader_client_free(rd_kafka_t *rk);

/* Called for each record, in offset order within a partition (partitions interleave). The
 * message is borrowed for the call. Returns 0 to go on, non-zero to end the read. */
typedef int (*kafka_reader_fn)(void *ctx, const rd_kafka_message_t *msg);

/* Called for an error the consumer reported instead of a record. Returns 0 to go on (a
 * fatal error ends the read all the same), non-zero to end the read as failed. NULL: logged
 * as a warning, and the read goes on. */
typedef int (*kafka_reader_error_fn)(void *ctx, const rd_kafka_message_t *msg);

typedef struct kafka_reader_opts {
    rd_kafka_t *rk;             /* a client of kafka_reader_client_new, borrowed */
    const char *topic;
    const int32_t *partitions;  /* the partitions to read; NULL: every partition */
    size_t npartitions;
    const int64_t *from;        /* per entry of partitions: the first offset to read; one
                                 * outside the partition's log (retention deleted it, or
                                 * the log was made anew) reads it from its start; NULL:
                                 * every one from `start` */
    int64_t start;              /* when from is NULL: RD_KAFKA_OFFSET_BEGINNING (0 works
                                 * too), RD_KAFKA_OFFSET_END, or an offset */
    int follow;                 /* 0: stop at the high watermark; 1: go on reading new
                                 * records until *stop or the callback says so (tail) */
    int idle_ms;                /* neither a record nor an end for this long is an error;
                                 * 0: wait for ever */
    int timeout_ms;             /* the whole read must end within this; 0: no limit */
    int missing_ok;             /* 1: a topic that does not exist gives a reader of no
                                 * partitions (nothing was written to it), not an error */
    int watermark_timeout_ms;   /* for each partition's watermarks (0: 5 s) */
    const volatile sig_atomic_t *stop; /* non-zero: stop between two records; may be NULL */
    kafka_reader_error_fn on_error;
    void *ctx;                  /* for the callbacks */
} kafka_reader_opts_t;

typedef struct kafka_reader kafka_reader_t;

/* Makes a reader: finds the topic in the cluster's metadata (asked for every topic, which
 * never auto-creates one), and takes each partition's watermarks. opts is copied; what it
 * points to is borrowed until kafka_reader_free. Returns NULL with errstr when the topic
 * does not exist (errstr then says "does not exist"; but see missing_ok), has no
 * partitions, a partition asked for is not one of it, or the cluster did not answer. A
 * partition whose watermarks cannot be read is not an error: kafka_reader_partition says so
 * and the read of it ends at the partition-EOF event instead. */
kafka_reader_t *kafka_reader_new(const kafka_reader_opts_t *opts, char *errstr,
                                 size_t errstr_size);

/* How many partitions r reads (in partition id order). */
size_t kafka_reader_count(const kafka_reader_t *r);

/* Partition i (0..count-1) of r: its id and the watermarks taken by kafka_reader_new (lo is
 * the first offset kept, hi the offset the next record will get). Returns NO_ERROR, or why
 * the watermarks could not be read (then *lo = 0, *hi = -1). */
rd_kafka_resp_err_t kafka_reader_partition(const kafka_reader_t *r, size_t i, int32_t *id,
                                           int64_t *lo, int64_t *hi);

/* Sets where the read of one of r's partitions starts, after kafka_reader_new and before
 * kafka_reader_run, for a start that depends on what the watermarks are (the outbox's
 * stored positions); the rule of opts.from applies. Returns 0, or -1 when partition is not
 * one that r reads. */
int kafka_reader_set_from(kafka_reader_t *r, int32_t partition, int64_t from);

/* Reads: calls fn for each record of the partitions from their start, until each partition's
 * end (its high watermark when r was made, or the partition-EOF event if that comes first:
 * a log can end in records a consumer never sees), unless opts.follow. Can be called once
 * per reader; blocks while fn does. Returns 0 at the end or when fn ended the read, 1 when
 * *stop cut it short, -1 with errstr (a fatal consumer error, nothing heard for idle_ms, the
 * assignment refused). The client is unassigned again before it returns. */
int kafka_reader_run(kafka_reader_t *r, kafka_reader_fn fn, char *errstr,
                     size_t errstr_size);

/* Frees r (not its client). Accepts NULL. */
void kafka_reader_free(kafka_reader_t *r);

#endif
