/* router: a consumer's routes from (topic, ce_type) to a handler, over the consumer loop of
 * kafka.h: the consumer's topics follow from its routes, and a record no route takes goes
 * to dead-letter as invalid_record. */
#ifndef DOZEN_ROUTER_H
#define DOZEN_ROUTER_H

#include <stddef.h>

#include "events.h"
#include "kafka.h"

#define ROUTER_TOPICS_MAX 8

/* One route: records of event (its topic and ce_type in the catalog) go to handler, which
 * is called with the router's ctx. */
typedef struct router_route {
    event_id_t event;
    kafka_handler_fn handler;
} router_route_t;

typedef struct router {
    const router_route_t *routes;   /* borrowed: must outlive the consumer */
    size_t nroutes;
    void *ctx;                      /* passed to every handler */
    const char *topics[ROUTER_TOPICS_MAX]; /* the routes' topics, each once */
    size_t ntopics;
} router_t;

/* Sets r up for routes (n of them, borrowed) and points opts at it: opts->topics and
 * ntopics become the routes' topics, opts->handler router_dispatch and opts->ctx r. Returns
 * 0, or -1 with errstr (no routes, an unknown event, a route given twice, too many topics). */
int router_bind(router_t *r, const router_route_t *routes, size_t n, void *ctx,
                kafka_consumer_opts_t *opts, char *errstr, size_t errstr_size);

/* A kafka_handler_fn whose ctx is a router_t: calls the handler of the record's (topic,
 * ce_type) route. A record without a route is KAFKA_FAIL with reason invalid_record. */
kafka_verdict_t router_dispatch(const kafka_record_t *rec, void *ctx, kafka_outcome_t *out);

#endif
