/* outbox: the transactional outbox and its relay to Kafka.
 *
 * A service writes its event with outbox_add() in the same PostgreSQL transaction as the
 * change the event describes. The relay (one thread per service) publishes unsent rows with
 * an idempotent producer and marks them sent only after the broker acknowledged them.
 * The committing thread wakes the relay of its own process directly (outbox_wake, or
 * db_commit after outbox_add); a standby relay passes the wake on to the leader with one
 * NOTIFY per round, not per row; a short poll covers rows written by anything else. See docs/decisions.md for
 * how a crash between "acknowledged" and "marked sent" is kept from publishing twice. */
#ifndef DOZEN_OUTBOX_H
#define DOZEN_OUTBOX_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include "db.h"
#include "metrics_sql.h"

/* The prepared statement outbox_add() runs: every service that calls outbox_add() on a
 * pooled connection lists OUTBOX_DB_STMT among its pool's statements. */
#define OUTBOX_STMT_NAME "dozen_outbox_insert"
#define OUTBOX_DB_STMT                                                                   \
    { OUTBOX_STMT_NAME,                                                                  \
      "INSERT INTO outbox (producer, topic, msg_key, ce_id, ce_type, ce_source, ce_time, " \
      "payload, traceparent) VALUES ($1, $2, $3, $4::uuid, $5, $6, $7::timestamptz, $8, $9)", \
      9 }

/* Adds one event to the outbox on conn, which must be inside the caller's transaction and
 * have OUTBOX_DB_STMT prepared. payload_json is the event's data (the Kafka value). The
 * thread's trace (trace.h) goes with it as its traceparent. A fresh ce_id is generated and, if ce_id_out is not NULL, copied there (37 bytes). Returns 0, or -1
 * with errstr. */
int outbox_add(PGconn *conn, const char *producer, const char *topic, const char *key,
               const char *ce_type, const char *ce_source, const char *payload_json,
               char *ce_id_out, char *errstr, size_t errstr_size);

/* Wakes this process's relay of producer after a transaction that wrote outbox rows of
 * that producer has committed (a leader publishes them at once, a standby passes the wake
 * on to the leader). Cheap: one atomic exchange, and one byte written to a pipe when the
 * relay is not already woken. Does nothing when no such relay runs. Any thread. A
 * transaction that calls outbox_add() and ends with db_commit() needs no call: db_commit
 * wakes the relays of the producers outbox_add() wrote for on that thread. */
void outbox_wake(const char *producer);

typedef struct outbox_relay_opts {
    const char *conninfo;   /* copied */
    const char *bootstrap;  /* copied */
    const char *producer;   /* which rows are ours: outbox.producer; copied */
    int64_t poll_ms;        /* backstop poll interval (default 1000 if 0): rows written
                             * by something that does not wake the relay */
    int batch;              /* rows per round (default 500 if 0) */
    int64_t lease_ms;       /* the leader's lease (db.h, leader leases): a leader silent
                             * this long loses the lock to a standby (default 3000 if 0) */
    struct metrics *metrics; /* NULL, or where the relay keeps its dozen_outbox_* series
                              * (borrowed: must outlive the relay) */
} outbox_relay_opts_t;

typedef struct outbox_relay outbox_relay_t;

/* The outbox's scrape-time gauges ($1 = the producer): dozen_outbox_backlog_rows (rows not
 * yet acknowledged by the broker) and dozen_outbox_oldest_unsent_age_seconds (age of the
 * oldest of them, 0 when none), labelled producer; both read through the outbox_unsent
 * partial index. svc_run registers them for a service with a relay. */
extern const metrics_sql_gauge_t outbox_metrics_gauges[];
extern const size_t outbox_metrics_ngauges;

/* Starts the relay thread. It connects (and reconnects) by itself, so a database or broker
 * that is down at start is not an error. Returns NULL with errstr only for bad options or
 * when the thread cannot start. */
outbox_relay_t *outbox_relay_start(const outbox_relay_opts_t *opts,
                                   char *errstr, size_t errstr_size);

/* Stops the relay: finishes the round in progress (waiting for outstanding delivery reports
 * up to 10 s), closes its connections and frees it. Accepts NULL. */
void outbox_relay_stop(outbox_relay_t *relay);

/* Returns 0 when the relay's last round succeeded, else -1 with errstr describing the last
 * failure (for /healthz and logs). */
int outbox_relay_status(outbox_relay_t *relay, char *errstr, size_t errstr_size);

#endif
