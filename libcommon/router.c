/* router: dispatch of a consumer's records through a table of (topic, ce_type) routes. */
#include "router.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

int router_bind(router_t *r, const router_route_t *routes, size_t n, void *ctx,
                kafka_consumer_opts_t *opts, char *errstr, size_t errstr_size)
{
    size_t i, j;

    if (r == NULL || routes == NULL || n == 0 || opts == NULL) {
        util_errf(errstr, errstr_size, "router: no routes");
        return -1;
    }
    memset(r, 0, sizeof(*r));
    for (i = 0; i < n; i++) {
        const char *topic;

        if ((unsigned)routes[i].event >= EVENT_COUNT || routes[i].handler == NULL) {
            util_errf(errstr, errstr_size, "router: route %zu has no event or no handler", i);
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (routes[j].event == routes[i].event) {
                util_errf(errstr, errstr_size, "router: two routes for %s",
                          events_all[routes[i].event].type);
                return -1;
            }
        }
        topic = events_all[routes[i].event].topic;
        for (j = 0; j < r->ntopics && strcmp(r->topics[j], topic) != 0; j++)
            ;
        if (j < r->ntopics)
            continue;
        if (r->ntopics == ROUTER_TOPICS_MAX) {
            util_errf(errstr, errstr_size, "router: more than %d topics", ROUTER_TOPICS_MAX);
            return -1;
        }
        r->topics[r->ntopics++] = topic;
    }
    r->routes = routes;
    r->nroutes = n;
    r->ctx = ctx;
    opts->topics = r->topics;
    opts->ntopics = r->ntopics;
    opts->handler = router_dispatch;
    opts->ctx = r;
    return 0;
}

kafka_verdict_t router_dispatch(const kafka_record_t *rec, void *ctx, kafka_outcome_t *out)
{
    const router_t *r = ctx;
    const char *expected = NULL;
    event_meta_t meta;
    size_t i;

    snprintf(out->reason, sizeof(out->reason), "invalid_record");
    /* The loop has checked the headers already; this only fails on a broken record. */
    if (event_meta_read(rec->msg, &meta, out->error, sizeof(out->error)) != 0)
        return KAFKA_FAIL;
    for (i = 0; i < r->nroutes; i++) {
        const event_spec_t *spec = &events_all[r->routes[i].event];

        if (strcmp(spec->topic, rec->topic) != 0)
            continue;
        if (strcmp(spec->type, meta.type) == 0) {
            out->reason[0] = '\0';
            return r->routes[i].handler(rec, r->ctx, out);
        }
        if (expected == NULL)
            expected = spec->type;
    }
    if (expected != NULL)
        util_errf(out->error, sizeof(out->error), "ce_type is '%s', expected '%s'", meta.type,
                  expected);
    else
        util_errf(out->error, sizeof(out->error), "no route for topic %s", rec->topic);
    return KAFKA_FAIL;
}
