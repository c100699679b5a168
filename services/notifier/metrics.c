/* metrics: the notifier's own series. The bulletin's state, open deliveries and subscribers
 * live in PostgreSQL and are read at scrape time; what the SMS gateway answered is counted
 * in the process, at the send. */
#include "notifier.h"

#include <stdio.h>
#include <string.h>

/* One series per state, 1 for the latest bulletin's (all 0 before the first), so that a
 * dashboard can show the state and an alert can ask for "retrying for more than N min". */
const metrics_sql_gauge_t notifier_metrics_gauges[] = {
    { "dozen_bulletin_state", "1 for the state of the latest day's bulletin (scheduled, "
      "retrying, sent, unavailable), 0 for the others.", "state",
      "SELECT s.state, CASE WHEN b.state = s.state THEN 1 ELSE 0 END "
      "FROM unnest(ARRAY['scheduled', 'retrying', 'sent', 'unavailable']) AS s(state) "
      "LEFT JOIN (SELECT state FROM bulletins ORDER BY day DESC LIMIT 1) b ON true", 0 },
    { "dozen_bulletin_attempts", "Feed checks made so far for the latest day's bulletin.",
      NULL, "SELECT COALESCE((SELECT attempts FROM bulletins ORDER BY day DESC LIMIT 1), 0)",
      0 },
    { "dozen_subscribers_active", "Subscribers who have not opted out.", NULL,
      "SELECT count(*) FROM subscribers WHERE opted_out_at IS NULL", 0 },
    { "dozen_sms_deliveries_open", "SMS deliveries not settled yet, by status (pending, "
      "sending) and whether an earlier try may have gone through (uncertain).",
      "status,uncertain",
      "SELECT s.status, u.uncertain::text, count(d.id) "
      "FROM unnest(ARRAY['pending', 'sending']) AS s(status) "
      "CROSS JOIN unnest(ARRAY[false, true]) AS u(uncertain) "
      "LEFT JOIN deliveries d ON d.status = s.status AND d.uncertain = u.uncertain "
      "AND d.status IN ('pending', 'sending') GROUP BY 1, 2 ORDER BY 1, 2", 0 },
};
const size_t notifier_metrics_ngauges =
    sizeof(notifier_metrics_gauges) / sizeof(notifier_metrics_gauges[0]);

#define SENDS "dozen_sms_sends_total"
#define SENDS_HELP "SMS gateway requests by outcome: sent (accepted), failed (refused for " \
                   "good: 4xx), rate_limited (429), error (5xx or unreachable, retried), " \
                   "uncertain (may have gone through: checked before a resend)."
#define SEND_SECONDS "dozen_sms_send_duration_seconds"
#define SEND_SECONDS_HELP "Duration of one SMS gateway send request."

static const char *const outcomes[] = { "sent", "failed", "rate_limited", "error",
                                        "uncertain" };

/* The outcome label of a send; why is sms_send's text ("HTTP 429: ..."). */
static const char *outcome_of(sms_result_t res, const char *why)
{
    switch (res) {
    case SMS_SENT:
        return "sent";
    case SMS_REJECTED:
        return "failed";
    case SMS_UNCERTAIN:
        return "uncertain";
    case SMS_THROTTLED:
        return "rate_limited";
    case SMS_RETRY:
        break;
    }
    (void)why;
    return "error";
}

void notifier_metrics_init(metrics_t *m)
{
    char labels[64];
    size_t i;

    for (i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++) {
        snprintf(labels, sizeof(labels), "outcome=%s", outcomes[i]);
        metric_add(metrics_counter(m, SENDS, SENDS_HELP, labels), 0);
    }
    (void)metrics_histogram(m, SEND_SECONDS, SEND_SECONDS_HELP, NULL,
                            metrics_latency_buckets, metrics_latency_nbuckets);
}

void notifier_metrics_sms(metrics_t *m, sms_result_t res, const char *why, int64_t us)
{
    char labels[64];

    snprintf(labels, sizeof(labels), "outcome=%s", outcome_of(res, why));
    metric_inc(metrics_counter(m, SENDS, SENDS_HELP, labels));
    metric_observe(metrics_histogram(m, SEND_SECONDS, SEND_SECONDS_HELP, NULL,
                                     metrics_latency_buckets, metrics_latency_nbuckets),
                   (double)us / 1e6);
}
