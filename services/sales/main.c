/* sales: takes orders over HTTP; stock decrement, order row and events in one transaction. */
#include "sales.h"

#include <string.h>

#include "cfg.h"
#include "svc.h"

static const svc_config_spec_t settings = {
    .port_var = "SALES_PORT", .port_def = 8080, .pool_def = 16, .pool_min = 1, .outbox = 1,
    /* An order's handler blocks while its batch runs (combine.c). On workers, a blocked
     * handler holds no I/O thread, so that every connection's orders reach the combiner
     * however the connections fell on the pool's threads; and more handlers than database
     * connections make bigger batches rather than a longer queue. */
    .workers_def = 64,
};

static void config_read(struct config *c)
{
    char err[256];

    long long statements;

    if (svc_config_read(&settings, &c->svc, err, sizeof(err)) != 0 ||
        cfg_int("COMBINE_STATEMENTS", COMBINE_STATEMENTS_DEFAULT, 0, 256, &statements, err,
                sizeof(err)) != 0)
        svc_die(SALES_SERVICE, "%s", err);
    c->combine_statements = (int)statements;
    c->db_wait_ms = c->svc.db_wait_ms;
}

static void describe(void *ctx, strbuf_t *line)
{
    const struct sales *s = ctx;

    strbuf_addf(line, " db_pool=%d combine_statements=%d", s->cfg.svc.db_pool_size,
                s->cfg.combine_statements);
}

int main(void)
{
    struct sales s;
    char err[1024];

    memset(&s, 0, sizeof(s));
    svc_init(SALES_SERVICE);
    config_read(&s.cfg);
    if ((s.metrics = metrics_new()) == NULL)
        svc_die(SALES_SERVICE, "out of memory");
    sales_metrics_init(s.metrics);
    if ((s.combine = combine_new(s.metrics, s.cfg.combine_statements)) == NULL)
        svc_die(SALES_SERVICE, "out of memory");

    /* HTTP stops first (no new orders), then the relay publishes what they wrote. */
    const svc_t sv = {
        .name = SALES_SERVICE, .metrics = s.metrics, .cfg = &s.cfg.svc, .ctx = &s, .describe = describe,
        .stmts = store_stmts, .nstmts = store_nstmts, .pool = &s.db, .relay = &s.relay,
        .routes = api_routes, .nroutes = api_nroutes, .health = api_health,
    };
    if (svc_run(&sv, err, sizeof(err)) != 0)
        svc_die(SALES_SERVICE, "%s", err);
    combine_free(s.combine);
    metrics_free(s.metrics);
    return 0;
}
