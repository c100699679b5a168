/* metrics: the sales service's own series. Orders are counted in the process, not read from
 * the orders table: that table only grows, and a count over it at every scrape would not be
 * cheap; a counter's rate() is what a dashboard wants anyway. */
#include "sales.h"

#include <string.h>

#define ORDERS "dozen_orders_total"
#define ORDERS_HELP "Orders answered, by outcome: completed (stock taken) or rejected " \
                    "(out of stock). Replays of an Idempotency-Key are not counted here."
#define REPLAYS "dozen_orders_idempotent_replays_total"
#define REPLAYS_HELP "Orders answered with the stored answer of an Idempotency-Key used " \
                     "before (nothing changed)."

void sales_metrics_init(metrics_t *m)
{
    metric_add(metrics_counter(m, ORDERS, ORDERS_HELP, "outcome=completed"), 0);
    metric_add(metrics_counter(m, ORDERS, ORDERS_HELP, "outcome=rejected"), 0);
    metric_add(metrics_counter(m, REPLAYS, REPLAYS_HELP, NULL), 0);
}

void sales_metrics_order(metrics_t *m, const order_outcome_t *o)
{
    if (o->replayed)
        metric_inc(metrics_counter(m, REPLAYS, REPLAYS_HELP, NULL));
    else if (o->state != NULL && strcmp(o->state, "completed") == 0)
        metric_inc(metrics_counter(m, ORDERS, ORDERS_HELP, "outcome=completed"));
    else if (o->state != NULL)
        metric_inc(metrics_counter(m, ORDERS, ORDERS_HELP, "outcome=rejected"));
    /* no row and no replay: 404 unknown sku or 422 reused key, counted by the HTTP series */
}
