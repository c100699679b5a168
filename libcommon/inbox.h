/* inbox: the consumer side of exactly-once: each consumer records the ce_id of every event
 * it applied, in the same transaction as the effect. */
#ifndef DOZEN_INBOX_H
#define DOZEN_INBOX_H

#include <stddef.h>
#include <libpq-fe.h>

#define INBOX_STMT_NAME "dozen_inbox_claim"
/* Listed among a pool's statements by every service that calls inbox_claim(). */
#define INBOX_DB_STMT                                                                    \
    { INBOX_STMT_NAME,                                                                   \
      "INSERT INTO processed_events (consumer, ce_id) VALUES ($1, $2::uuid) "            \
      "ON CONFLICT DO NOTHING", 2 }

/* Records that consumer applies event ce_id, inside the caller's transaction on conn.
 * Returns 1 when this is the first time (apply the effect, then commit), 0 when the event was
 * applied before (commit nothing new), -1 with errstr on a database error. */
int inbox_claim(PGconn *conn, const char *consumer, const char *ce_id,
                char *errstr, size_t errstr_size);

#endif
