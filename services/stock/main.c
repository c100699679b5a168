/* stock: inventory levels over HTTP, and the admin's way to set them. */
#include "stock.h"

#include <string.h>

#include "cfg.h"
#include "svc.h"

static const svc_config_spec_t settings = {
    .port_var = "STOCK_PORT", .port_def = 8081, .pool_def = 4, .pool_min = 1,
};

static void config_read(struct config *c)
{
    char err[256];

    if (svc_config_read(&settings, &c->svc, err, sizeof(err)) != 0 ||
        cfg_str("ADMIN_TOKEN", NULL, &c->admin_token, err, sizeof(err)) != 0 ||
        cfg_str("STOCK_GROUP", "stock", &c->group, err, sizeof(err)) != 0)
        svc_die(STOCK_SERVICE, "%s", err);
    if (strlen(c->admin_token) < 16)
        svc_die(STOCK_SERVICE, "ADMIN_TOKEN: must be at least 16 characters");
    c->db_wait_ms = c->svc.db_wait_ms;
}

int main(void)
{
    struct stock s;
    char err[1024];

    memset(&s, 0, sizeof(s));
    svc_init(STOCK_SERVICE);
    config_read(&s.cfg);
    if ((s.metrics = metrics_new()) == NULL)
        svc_die(STOCK_SERVICE, "out of memory");

    s.consumer_opts.group = s.cfg.group;
    if (router_bind(&s.router, handlers_routes, handlers_nroutes, &s, &s.consumer_opts,
                    err, sizeof(err)) != 0)
        svc_die(STOCK_SERVICE, "consumer: %s", err);

    const svc_t sv = {
        .name = STOCK_SERVICE, .metrics = s.metrics, .cfg = &s.cfg.svc, .ctx = &s,
        .stmts = store_stmts, .nstmts = store_nstmts, .pool = &s.db,
        .consumer_opts = &s.consumer_opts, .consumer = &s.consumer,
        .gauges = stock_metrics_gauges, .ngauges = stock_metrics_ngauges,
        .routes = api_routes, .nroutes = api_nroutes, .health = api_health,
    };
    if (svc_run(&sv, err, sizeof(err)) != 0)
        svc_die(STOCK_SERVICE, "%s", err);
    metrics_free(s.metrics);
    return 0;
}
