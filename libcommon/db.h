/* db: PostgreSQL connections, a small pool, prepared statements, transactions, reconnects,
 * array parameters. */
#ifndef DOZEN_DB_H
#define DOZEN_DB_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "strbuf.h"

/* A statement prepared on every pooled connection, (re)prepared after every reconnect. */
typedef struct db_stmt {
    const char *name;
    const char *sql;  /* with $1..$n parameters; never built from input */
    int nparams;
} db_stmt_t;

typedef struct db_pool db_pool_t;

/* Opens one connection (blocking) and prepares stmts on it (may be NULL/0). Returns a new
 * connection the caller frees with PQfinish, or NULL with errstr.
 *
 * Unless conninfo sets them itself, the connection gets connect_timeout=5 (seconds),
 * keepalives=1 with keepalives_idle=5, keepalives_interval=2, keepalives_count=3, and
 * tcp_user_timeout=10000 (ms): a peer that vanished (host down, network cut) fails a
 * blocked query within about 11 s instead of the operating system's two hours. (Keepalives
 * and tcp_user_timeout do nothing on a Unix-domain socket.) With a statement timeout set
 * (db_set_statement_timeout), the session starts with options "-c statement_timeout=<ms>"
 * followed by the options of conninfo, or of PGOPTIONS when conninfo has none: a
 * statement_timeout the user wrote there comes later and wins. */
PGconn *db_connect(const char *conninfo, const db_stmt_t *stmts, size_t nstmts,
                   char *errstr, size_t errstr_size);

/* Sets the statement_timeout (ms; 0 or less: none, the server's own) of every connection
 * db_connect opens from now on, pooled ones included. Process-wide: call once at start-up,
 * before any thread connects. */
void db_set_statement_timeout(long long ms);

/* The `options` value db_connect sends: "-c statement_timeout=<ms>" (nothing when
 * stmt_timeout_ms <= 0), then a space and user_options when that is neither NULL nor
 * empty. Appends to out. Returns 0, or -1 when out failed (out of memory). */
int db_options_merge(const char *user_options, long long stmt_timeout_ms, strbuf_t *out);

/* Creates a pool of at most `size` connections. Connections are opened lazily by
 * db_acquire. stmts (borrowed; must outlive the pool) are prepared on each connection.
 * Returns NULL with errstr if conninfo cannot be parsed. */
db_pool_t *db_pool_new(const char *conninfo, int size, const db_stmt_t *stmts, size_t nstmts,
                       char *errstr, size_t errstr_size);

/* Closes every connection and frees the pool. Accepts NULL. No connection may be out. */
void db_pool_free(db_pool_t *pool);

/* Takes a connection, waiting up to timeout_ms for one to be free. A connection found broken
 * (the server restarted or closed it) is reset and its statements prepared again. Returns
 * the connection, or NULL with errstr (timeout, or the server cannot be reached). */
PGconn *db_acquire(db_pool_t *pool, int timeout_ms, char *errstr, size_t errstr_size);

/* Gives a connection back. A connection left inside a transaction is rolled back; a broken
 * one is closed and reopened by the next db_acquire. Accepts NULL. */
void db_release(db_pool_t *pool, PGconn *conn);

/* Runs a prepared statement with text parameters (NULL entries are SQL NULL). Returns the
 * result (the caller PQclear()s it) when the status is PGRES_COMMAND_OK or PGRES_TUPLES_OK;
 * otherwise NULL with errstr "<SQLSTATE> <message>" and, if sqlstate is not NULL, the
 * five-character SQLSTATE copied into sqlstate[6] ("" when the connection itself failed). */
PGresult *db_exec(PGconn *conn, const char *stmt_name, int nparams,
                  const char *const *params, char sqlstate[6],
                  char *errstr, size_t errstr_size);

/* The same for an unprepared, parameterised statement (PQexecParams). */
PGresult *db_query(PGconn *conn, const char *sql, int nparams,
                   const char *const *params, char sqlstate[6],
                   char *errstr, size_t errstr_size);

/* What a failed statement says about the work that ran it. */
typedef enum db_error_class {
    DB_ERROR_NONE = 0,   /* no failure */
    DB_ERROR_TRANSIENT,  /* the same work may succeed later: the connection failed (no
                          * SQLSTATE), 08 connection, 40001 serialization, 40P01 deadlock,
                          * 53 insufficient resources, 55P03 lock not available, 57
                          * operator intervention (57P01 admin shutdown, 57014 statement
                          * timeout), 58 system error; and every other class (a missing
                          * migration, a bug), which input cannot cause */
    DB_ERROR_DATA        /* the input itself is refused and always will be: class 22 data
                          * exception (bad timestamp, invalid UTF-8, out of range), class
                          * 23 integrity violation other than on the dedupe key
                          * (DB_DEDUPE_CONSTRAINT), 54 program limit exceeded (a value too
                          * large for an index) */
} db_error_class_t;

/* The consumers' dedupe key (processed_events): a unique violation on it means another
 * member applied the same event meanwhile, so trying again finds it done. */
#define DB_DEDUPE_CONSTRAINT "processed_events_pkey"

/* Classifies a failure from its SQLSTATE ("" or NULL: no SQLSTATE, the connection failed)
 * and, for class 23, the constraint it names (NULL or "" when none). Pure. */
db_error_class_t db_error_classify(const char *sqlstate, const char *constraint);

/* The last statement that failed on the calling thread (db_exec, db_query, db_begin,
 * db_commit), kept until db_error_reset: so that the consumer loop can classify a
 * handler's failure without every store function passing the SQLSTATE up. */
typedef struct db_error {
    char sqlstate[6];      /* "" when the connection failed */
    char constraint[64];   /* PG_DIAG_CONSTRAINT_NAME, "" when none */
    char message[512];     /* "<SQLSTATE> <primary message>", as in errstr */
} db_error_t;

/* Forgets the calling thread's last failure. */
void db_error_reset(void);

/* Copies the calling thread's last failure since db_error_reset into *out. Returns 1 when
 * there was one, else 0 (*out then zeroed). */
int db_error_last(db_error_t *out);

/* BEGIN / COMMIT / ROLLBACK. Return 0 or -1 with errstr. db_rollback is harmless outside a
 * transaction. */
int db_begin(PGconn *conn, char *errstr, size_t errstr_size);
int db_commit(PGconn *conn, char *errstr, size_t errstr_size);
int db_rollback(PGconn *conn);

/* A function db_commit calls on the committing thread once a COMMIT succeeded (committed
 * 1), and db_commit's failures and db_rollback call (committed 0): the outbox uses it to
 * wake its relay right after a transaction that wrote events. One per process; NULL
 * removes it. Any thread. */
typedef void (*db_txn_hook_t)(int committed);
void db_set_txn_hook(db_txn_hook_t fn);

/* A quick "SELECT 1" through the pool, for /readyz. Returns 0, or -1 with errstr
 * ("PostgreSQL unreachable: <why>"). */
int db_ping(db_pool_t *pool, int timeout_ms, char *errstr, size_t errstr_size);

/* Leader leases: how a session advisory lock (one leader among instances) is made to end
 * within a bounded time when its holder stops talking: paused (SIGSTOP, a stalled VM),
 * hung, or cut off from the network. Without it the server keeps a silent but still
 * connected session, and its lock, for ever (a paused process's kernel still answers TCP).
 *
 * db_lease_begin sets idle_session_timeout, idle_in_transaction_session_timeout and the
 * server's tcp_user_timeout to lease_ms on conn's session (PostgreSQL 14 or later): the
 * server closes a session that sends nothing for that long, which releases its locks. The
 * holder must then run a statement on conn at least every db_lease_heartbeat_ms(lease_ms)
 * (a third of the lease) while it has nothing else to run; db_lease_renew is the cheapest.
 * A holder that was paused past its lease finds its session closed at its next statement
 * (an error, the connection CONNECTION_BAD) and must treat the lock as lost.
 * db_lease_begin returns 0; 1 with errstr (the server's complaint) when the server is older
 * than PostgreSQL 14 and only idle_in_transaction_session_timeout could be set: the lock
 * then outlives a paused holder, which the caller should log; or -1 with errstr (a lease
 * out of range, or the statement failed). db_lease_renew returns 0 or -1 with errstr. */
#define DB_LEASE_MIN_MS 300
#define DB_LEASE_MAX_MS 600000
int db_lease_begin(PGconn *conn, long long lease_ms, char *errstr, size_t errstr_size);
long long db_lease_heartbeat_ms(long long lease_ms);
int db_lease_renew(PGconn *conn, char *errstr, size_t errstr_size);

/* Array parameters: the one way to build the text of a PostgreSQL array literal
 * ("{1,NULL,3}", "{\"a b\",\"c\\\"d\"}") for a parameter such as $1::bigint[],
 * $2::text[] or $3::uuid[]. The strbuf holds only the array being built: it starts empty,
 * each db_array_add_* appends one element (the first also opens the brace), and
 * db_array_finish closes it ("{}" when nothing was added). Text elements are always
 * double-quoted with '"' and '\\' escaped by a backslash, so any byte string (empty, "NULL",
 * commas, braces, spaces) comes back unchanged; only db_array_add_null (or a NULL text)
 * gives an SQL NULL element. The adds report failure through sb->failed as strbuf does;
 * check once with db_array_finish. One-dimensional arrays only. */
int db_array_add_int64(strbuf_t *sb, int64_t v);
int db_array_add_text(strbuf_t *sb, const char *s);  /* NULL: a NULL element */
int db_array_add_null(strbuf_t *sb);

/* Closes the array. Returns 0, or -1 when any add or this one failed (out of memory, or
 * over sb->max): sb->buf is then not a complete literal. */
int db_array_finish(strbuf_t *sb);

#endif
