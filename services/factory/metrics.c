/* metrics: the factory's own series. Production orders by state are read from PostgreSQL
 * at scrape time; the legacy factory's calls are measured in the process, where they are
 * made. */
#include "factory.h"

#include <stdio.h>

/* production_orders has a row per depletion that reached the factory: a few per SKU and
 * day, so the count over it stays cheap. Every state has a series (0 when empty). */
const metrics_sql_gauge_t factory_metrics_gauges[] = {
    { "dozen_production_orders", "Production orders by state (pending: not yet accepted by "
      "the legacy factory; requested: accepted, delivery awaited; delivered; failed).",
      "state",
      "SELECT s.state, count(p.id) FROM unnest(ARRAY['" PO_PENDING_NAME "', '"
      PO_REQUESTED_NAME "', '" PO_DELIVERED_NAME "', '" PO_FAILED_NAME "']) AS s(state) "
      "LEFT JOIN production_orders p ON p.status = s.state GROUP BY 1 ORDER BY 1", 0 },
};
const size_t factory_metrics_ngauges =
    sizeof(factory_metrics_gauges) / sizeof(factory_metrics_gauges[0]);

#define CALLS "dozen_legacy_call_duration_seconds"
#define CALLS_HELP "Calls to the legacy factory's API by outcome: accepted, refused (4xx: " \
                   "the order failed), error (timeout, unreachable, 5xx, a bad answer: retried)."

/* Buckets up to the call timeout's range (the legacy factory is slow). */
static const double call_buckets[] = { 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
#define NCALL_BUCKETS (sizeof(call_buckets) / sizeof(call_buckets[0]))

static const char *outcome_of(int called)
{
    return called == 0 ? "accepted" : called == -2 ? "refused" : "error";
}

void factory_metrics_init(metrics_t *m)
{
    (void)metrics_histogram(m, CALLS, CALLS_HELP, "outcome=accepted", call_buckets,
                            NCALL_BUCKETS);
    (void)metrics_histogram(m, CALLS, CALLS_HELP, "outcome=refused", call_buckets,
                            NCALL_BUCKETS);
    (void)metrics_histogram(m, CALLS, CALLS_HELP, "outcome=error", call_buckets,
                            NCALL_BUCKETS);
}

void factory_metrics_legacy_call(metrics_t *m, int called, int64_t us)
{
    char labels[32];

    snprintf(labels, sizeof(labels), "outcome=%s", outcome_of(called));
    metric_observe(metrics_histogram(m, CALLS, CALLS_HELP, labels, call_buckets, NCALL_BUCKETS),
                   (double)us / 1e6);
}
