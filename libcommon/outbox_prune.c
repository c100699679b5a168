/* outbox_prune: deleting this producer's outbox rows sent more than 7 days ago, so that the
 * table does not grow without bound. Runs on the relay thread, on r->pg, once at start and
 * then hourly. */
#include "outbox.h"

#include <stdio.h>

#include "log.h"
#include "outbox_int.h"
#include "util.h"

#define PRUNE_INTERVAL_MS (3600LL * 1000)
#define PRUNE_RETRY_MS (60LL * 1000)
#define PRUNE_BATCH 1000             /* rows per DELETE */
#define PRUNE_MAX_BATCHES 100        /* rows per pruning pass: at most 100 000 */

const db_stmt_t outbox_prune_stmts[OUTBOX_PRUNE_NSTMTS] = {
    { "relay_prune",
      "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE producer = $1 "
      "AND sent_at < now() - interval '7 days' ORDER BY id LIMIT $2::int)", 2 },
};

/* In batches of PRUNE_BATCH rows, at most PRUNE_MAX_BATCHES of them. */
void outbox_prune(outbox_relay_t *r)
{
    char limit[16], err[256];
    const char *params[2] = { r->producer, limit };
    int i;
    long long total = 0;

    snprintf(limit, sizeof(limit), "%d", PRUNE_BATCH);
    for (i = 0; i < PRUNE_MAX_BATCHES && !outbox_stopping(r); i++) {
        PGresult *res = db_exec(r->pg, "relay_prune", 2, params, NULL, err, sizeof(err));
        long long n;

        if (res == NULL) {
            log_warn("outbox_prune_failed producer=%s error=%s", r->producer, LOG_Q(err));
            r->next_prune_ms = util_mono_ms() + PRUNE_RETRY_MS;
            return;
        }
        if (outbox_parse_ll(PQcmdTuples(res), 0, PRUNE_BATCH, &n) != 0)
            n = 0;
        PQclear(res);
        total += n;
        if (n < PRUNE_BATCH)
            break;
    }
    if (total > 0)
        log_info("outbox_pruned producer=%s count=%lld", r->producer, total);
    r->next_prune_ms = util_mono_ms() + PRUNE_INTERVAL_MS;
}
