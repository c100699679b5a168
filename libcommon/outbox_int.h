/* outbox_int: what the outbox's own files share, never included outside libcommon/outbox*.c.
 *
 *   outbox.c            the writer: outbox_add() and the checks it makes before SQL
 *   outbox_relay.c      the relay thread: connection, leader lock, LISTEN, the loop, status
 *   outbox_publish.c    one publishing round: produce, await the reports, mark sent
 *   outbox_reconcile.c  after a crash between ack and mark: read the topics back
 *   outbox_prune.c      deleting rows sent long ago
 *
 * How these keep "published exactly once" is written at the top of outbox_relay.c. */
#ifndef DOZEN_OUTBOX_INT_H
#define DOZEN_OUTBOX_INT_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "db.h"
#include "outbox.h"

/* ------------------------------------------------------------------------------------ */
/* The relay's state, shared by the relay thread's files */

enum row_state { ROW_SKIPPED = 0, ROW_INFLIGHT, ROW_ACKED, ROW_FAILED };

/* One outbox row of the round in progress; its text lives in the round's PGresult. */
struct relay_row {
    enum row_state state;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
    int64_t created_ms;     /* outbox.created_at: when the writer's transaction began */
};

struct outbox_relay {
    /* Options, copied. */
    char *conninfo;
    char *bootstrap;
    char *producer;
    int64_t poll_ms;
    int64_t lease_ms;
    int batch;
    int crash_after_ack; /* OUTBOX_DEBUG_CRASH_AFTER_ACK, see the top of outbox_relay.c */

    pthread_t thread;
    volatile int stop;
    int wake[2]; /* self-pipe: outbox_relay_stop() writes to wake[1] */
    int kick[2]; /* self-pipe: outbox_wake() writes to kick[1] */
    int kicked;  /* 1 from a kick until the relay takes it (outbox_take_kick); atomic, so
                  * that a burst of commits writes one byte, not one per commit */

    pthread_mutex_t mu; /* guards the status */
    int status_ok;
    char status_err[512];

    /* The rest belongs to the relay thread. */
    PGconn *pg;        /* the leader's LISTENs and holds the advisory lock */
    rd_kafka_t *rk;    /* our producer */
    int leader;
    int64_t beat_ms;   /* when the leader last renewed its lease (monotonic) */
    int need_reconcile;
    struct relay_row *rows; /* batch entries, allocated at start */
    int round_n;            /* rows the delivery callback may touch; 0 between rounds */
    int pending;            /* deliveries not yet reported */
    int64_t next_prune_ms;
    char logged_err[512];   /* last failure logged; "" while healthy */
    int standby_logged;

    /* Series in opts->metrics, NULL without one (metric_* accept NULL). */
    struct metric *m_latency;   /* commit-to-publish: created_at to the broker's ack */
    struct metric *m_published; /* rows acknowledged */
    struct metric *m_errors;    /* deliveries that failed or were not reported */
    struct metric *m_leader;    /* 1 while this relay holds the producer's lock */
};

/* Keeps the leader's lease: runs db_lease_renew on r->pg when a heartbeat is due (a third
 * of the lease since the last one), nothing otherwise, or when not the leader. Long waits
 * of the relay thread (delivery reports, a reconciliation's read) call it often. A failure
 * is left for the next statement to find. Defined in outbox_relay.c. */
void outbox_lease_beat(outbox_relay_t *r);

/* Takes the pending kick: empties the self-pipe, then clears r->kicked. Returns 1 when
 * there was one. In that order: a commit that kicks after the clear writes a new byte, so
 * that no kick is lost between this call and the next wait. Defined in outbox_relay.c. */
int outbox_take_kick(outbox_relay_t *r);

/* Whether outbox_relay_stop() was called: long steps check it and give up. */
static inline int outbox_stopping(outbox_relay_t *r)
{
    return __atomic_load_n(&r->stop, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------------------------------ */
/* outbox.c */

#define OUTBOX_PRODUCER_MAX 64 /* bytes of a producer name */

/* The db_txn_hook_t the relay installs (db_set_txn_hook): after a COMMIT, wakes the relay
 * of the producer outbox_add() last wrote for on this thread; either way forgets it. */
void outbox_txn_end(int committed);

/* The checks outbox_add() makes before it touches the database: producer non-empty, a topic
 * whose name Kafka accepts, a payload (key NULL is a record without key). Pure, for unit
 * tests. Returns 0, or -1 with errstr. */
int outbox_add_check(const char *producer, const char *topic, const char *payload_json,
                     char *errstr, size_t errstr_size);

/* Kafka's own rule for topic names: 1..249 bytes of [A-Za-z0-9._-], not "." or "..". */
int outbox_topic_name_ok(const char *topic);

/* ------------------------------------------------------------------------------------ */
/* outbox_relay.c */

/* Parses a whole base-10 integer from the database within [min, max]. Returns 0, or -1. */
int outbox_parse_ll(const char *s, long long min, long long max, long long *out);

/* ------------------------------------------------------------------------------------ */
/* outbox_publish.c: every function runs on the relay thread, on r->pg and r->rk. */

/* The statements a publishing round runs, prepared on the relay's connection. */
#define OUTBOX_PUBLISH_NSTMTS 2
extern const db_stmt_t outbox_publish_stmts[OUTBOX_PUBLISH_NSTMTS];

/* Creates r->rk with the round's delivery callback. Returns 0, or -1 with errstr. */
int outbox_producer_open(outbox_relay_t *r, char *errstr, size_t errstr_size);

/* Drops r->rk (flushing up to flush_ms); whatever it still had queued or in flight may or
 * may not have been written, so it sets r->need_reconcile. */
void outbox_producer_close(outbox_relay_t *r, int flush_ms);

/* One publishing round: up to `batch` unsent rows in id order are produced, their
 * delivery reports awaited, and the acknowledged ones marked. Returns the number of rows
 * the round looked at, or -1 with errstr when any of them failed (the others are marked;
 * r->need_reconcile is then set). Blocks for up to 35 s of delivery reports. */
int outbox_publish_round(outbox_relay_t *r, char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------------------------ */
/* outbox_reconcile.c */

#define OUTBOX_RECONCILE_NSTMTS 5
extern const db_stmt_t outbox_reconcile_stmts[OUTBOX_RECONCILE_NSTMTS];

/* Finds records that reached the topics but whose rows are not marked sent, and marks
 * them. Blocks for at most 30 s plus one Kafka request. Returns 0, or -1 with errstr. */
int outbox_reconcile(outbox_relay_t *r, char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------------------------ */
/* outbox_prune.c */

#define OUTBOX_PRUNE_NSTMTS 1
extern const db_stmt_t outbox_prune_stmts[OUTBOX_PRUNE_NSTMTS];

/* Deletes this producer's rows sent more than 7 days ago (at most 100 000 per call) and sets
 * r->next_prune_ms: an hour on, or a minute after a failure, which it logs. */
void outbox_prune(outbox_relay_t *r);

#endif
