/* metrics: the retry service's own series. What waits and what died is read from
 * PostgreSQL at scrape time (it survives restarts and agrees between instances); how late
 * the scheduler delivers is measured in the process, where it happens. */
#include "retry_service.h"

#include <stdio.h>

const metrics_sql_gauge_t retry_metrics_gauges[] = {
    { "dozen_retry_pending", "Records waiting in retry_pending, by owning group and the "
      "owner's reason.", "group,reason",
      "SELECT group_id, reason, count(*) FROM retry_pending GROUP BY 1, 2 "
      "ORDER BY 3 DESC LIMIT 256", 0 },
    { "dozen_retry_overdue_seconds", "How long the earliest due record has been due (0 "
      "when none is due): grows when the scheduler is not keeping up or not running.", NULL,
      "SELECT GREATEST(0, (extract(epoch FROM now()) * 1000 - min(due_at)) / 1000.0) "
      "FROM retry_pending", 0 },
    { "dozen_retry_dead_letters", "Records the retry service gave up on (retry_dead_letters), "
      "by owning group and give-up reason.", "group,reason",
      "SELECT group_id, reason, count(*) FROM retry_dead_letters GROUP BY 1, 2 "
      "ORDER BY 3 DESC LIMIT 256", 0 },
};
const size_t retry_metrics_ngauges =
    sizeof(retry_metrics_gauges) / sizeof(retry_metrics_gauges[0]);

/* Seconds from 0 to 5 min: a redelivery is normally due within a scheduler sleep (2 s),
 * later when the service was down. */
static const double lateness_buckets[] = { 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60,
                                           300 };

void retry_metrics_outcome(metrics_t *m, const char *group, const char *give_up,
                           int64_t due_ms, int64_t acked_ms)
{
    char labels[128 + RETRY_GROUP_MAX];

    metric_observe(metrics_histogram(m, "dozen_retry_lateness_seconds",
                                     "From a record's due time to the broker's "
                                     "acknowledgement of its redelivery or dead letter.", NULL,
                                     lateness_buckets,
                                     sizeof(lateness_buckets) / sizeof(lateness_buckets[0])),
                   due_ms < acked_ms ? (double)(acked_ms - due_ms) / 1000.0 : 0);
    if (give_up == NULL) {
        snprintf(labels, sizeof(labels), "group=%s", group);
        metric_inc(metrics_counter(m, "dozen_retry_redelivered_total",
                                   "Records redelivered to their group's retry topic.",
                                   labels));
    } else {
        snprintf(labels, sizeof(labels), "group=%s,reason=%s", group, give_up);
        metric_inc(metrics_counter(m, "dozen_retry_given_up_total",
                                   "Records sent to dead-letter by this process, by group and "
                                   "give-up reason.", labels));
    }
}
