/* sales: takes orders over HTTP; stock decrement, order row and events in one transaction. */
#include "sales.h"

#include <string.h>

#include "svc.h"

static const svc_config_spec_t settings = {
    .port_var = "SALES_PORT", .port_def = 8080, .pool_def = 16, .pool_min = 1, .outbox = 1,
};

static void config_read(struct config *c)
{
    char err[256];

    if (svc_config_read(&settings, &c->svc, err, sizeof(err)) != 0)
        svc_die(SALES_SERVICE, "%s", err);
    c->db_wait_ms = c->svc.db_wait_ms;
}

static void describe(void *ctx, strbuf_t *line)
{
    const struct sales *s = ctx;

    strbuf_addf(line, " db_pool=%d", s->cfg.svc.db_pool_size);
}

int main(void)
{
    struct sales s;
    svc_t sv;
    char err[1024];

    memset(&s, 0, sizeof(s));
    svc_init(SALES_SERVICE);
    config_read(&s.cfg);

    /* Stop taking orders first (svc_run stops HTTP first), then let the relay publish
     * what they wrote. */
    memset(&sv, 0, sizeof(sv));
    sv.name = SALES_SERVICE;
    sv.cfg = &s.cfg.svc;
    sv.stmts = store_stmts;
    sv.nstmts = store_nstmts;
    sv.pool = &s.db;
    sv.relay = &s.relay;
    sv.routes = api_routes;
    sv.nroutes = api_nroutes;
    sv.health = api_health;
    sv.ctx = &s;
    sv.describe = describe;
    if (svc_run(&sv, err, sizeof(err)) != 0)
        svc_die(SALES_SERVICE, "%s", err);
    return 0;
}
