/* Unit tests for libcommon/svc.c: the common settings (defaults, required variables, ranges,
 * which variable an error names) and svc_run's start-up failure before any server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "svc.h"

#define PORT_VAR "DOZEN_TEST_SVC_PORT"

static const char *const vars[] = {
    "DATABASE_URL", "KAFKA_BOOTSTRAP", "HTTP_BIND", PORT_VAR, "DB_POOL_SIZE", "DB_WAIT",
    "TOPICS_WAIT", "OUTBOX_POLL_INTERVAL", "DB_STATEMENT_TIMEOUT", "DB_LEADER_LEASE",
};

static const svc_config_spec_t with_relay = {
    .port_var = PORT_VAR, .port_def = 8090, .pool_def = 8, .pool_min = 2, .outbox = 1,
};

static const svc_config_spec_t without_relay = {
    .port_var = PORT_VAR, .port_def = 8091, .pool_def = 4, .pool_min = 1, .outbox = 0,
};

static void set(const char *name, const char *value)
{
    assert_int_equal(setenv(name, value, 1), 0);
}

/* The two required settings set, every other one unset. */
static int minimal_env(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    set("DATABASE_URL", "postgresql://localhost/dozen");
    set("KAFKA_BOOTSTRAP", "127.0.0.1:9092");
    return 0;
}

static void test_defaults(void **state)
{
    svc_config_t c;
    char err[256] = "";

    (void)state;
    assert_int_equal(svc_config_read(&with_relay, &c, err, sizeof(err)), 0);
    assert_string_equal(c.database_url, "postgresql://localhost/dozen");
    assert_string_equal(c.kafka_bootstrap, "127.0.0.1:9092");
    assert_string_equal(c.http_bind, "127.0.0.1");
    assert_int_equal(c.port, 8090);
    assert_int_equal(c.db_pool_size, 8);
    assert_int_equal(c.db_wait_ms, 5000);
    assert_int_equal(c.topics_wait_ms, 30000);
    assert_int_equal(c.outbox_poll_ms, 1000);
    assert_int_equal(c.db_statement_timeout_ms, 30000);
    assert_int_equal(c.db_leader_lease_ms, 3000);

    assert_int_equal(svc_config_read(&without_relay, &c, err, sizeof(err)), 0);
    assert_int_equal(c.port, 8091);
    assert_int_equal(c.db_pool_size, 4);
    assert_int_equal(c.outbox_poll_ms, 0);
}

static void test_values(void **state)
{
    svc_config_t c;
    char err[256] = "";

    (void)state;
    set("HTTP_BIND", "0.0.0.0");
    set(PORT_VAR, "18080");
    set("DB_POOL_SIZE", "256");
    set("DB_WAIT", "250ms");
    set("TOPICS_WAIT", "2m");
    set("OUTBOX_POLL_INTERVAL", "2s");
    set("DB_STATEMENT_TIMEOUT", "0s");
    set("DB_LEADER_LEASE", "1500ms");
    assert_int_equal(svc_config_read(&with_relay, &c, err, sizeof(err)), 0);
    assert_int_equal(c.db_statement_timeout_ms, 0);
    assert_int_equal(c.db_leader_lease_ms, 1500);
    assert_string_equal(c.http_bind, "0.0.0.0");
    assert_int_equal(c.port, 18080);
    assert_int_equal(c.db_pool_size, SVC_POOL_MAX);
    assert_int_equal(c.db_wait_ms, 250);
    assert_int_equal(c.topics_wait_ms, 120000);
    assert_int_equal(c.outbox_poll_ms, 2000);
}

static void test_required(void **state)
{
    svc_config_t c;
    char err[256] = "";

    (void)state;
    unsetenv("DATABASE_URL");
    set(PORT_VAR, "eighty"); /* bad too, but read later: the first variable is named */
    assert_int_equal(svc_config_read(&with_relay, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "DATABASE_URL is required");

    set("DATABASE_URL", "postgresql://localhost/dozen");
    unsetenv("KAFKA_BOOTSTRAP");
    assert_int_equal(svc_config_read(&with_relay, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "KAFKA_BOOTSTRAP is required");
}

static void test_bad_values_named(void **state)
{
    static const struct {
        const char *var, *value;
    } bad[] = {
        { PORT_VAR, "eighty" }, { PORT_VAR, "70000" }, { "DB_POOL_SIZE", "1" },
        { "DB_POOL_SIZE", "257" }, { "DB_POOL_SIZE", "many" }, { "DB_WAIT", "0" },
        { "DB_WAIT", "2m" }, { "TOPICS_WAIT", "soon" }, { "TOPICS_WAIT", "500ms" },
        { "OUTBOX_POLL_INTERVAL", "5ms" }, { "OUTBOX_POLL_INTERVAL", "2h" },
        { "DB_STATEMENT_TIMEOUT", "2h" }, { "DB_STATEMENT_TIMEOUT", "-1s" },
        { "DB_STATEMENT_TIMEOUT", "forever" }, { "DB_LEADER_LEASE", "999ms" },
        { "DB_LEADER_LEASE", "61s" }, { "DB_LEADER_LEASE", "3" },
    };
    svc_config_t c;
    char err[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        minimal_env(NULL);
        set(bad[i].var, bad[i].value);
        err[0] = '\0';
        assert_int_equal(svc_config_read(&with_relay, &c, err, sizeof(err)), -1);
        if (strncmp(err, bad[i].var, strlen(bad[i].var)) != 0)
            fail_msg("%s=%s: error does not name the variable: %s", bad[i].var, bad[i].value,
                     err);
    }
    minimal_env(NULL);
    set(PORT_VAR, "eighty");
    assert_int_equal(svc_config_read(&with_relay, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "eighty"));
}

static void test_outbox_only_with_relay(void **state)
{
    svc_config_t c;
    char err[256] = "";

    (void)state;
    set("OUTBOX_POLL_INTERVAL", "whenever");
    assert_int_equal(svc_config_read(&without_relay, &c, err, sizeof(err)), 0);
    assert_int_equal(svc_config_read(&with_relay, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "OUTBOX_POLL_INTERVAL"));

    /* A pool size the service with a relay refuses (below its minimum) is fine for the
     * other one. */
    unsetenv("OUTBOX_POLL_INTERVAL");
    set("DB_POOL_SIZE", "1");
    assert_int_equal(svc_config_read(&without_relay, &c, err, sizeof(err)), 0);
    assert_int_equal(c.db_pool_size, 1);
}

static int hook_calls;

static int hook_start(void *ctx, char *errstr, size_t errstr_size)
{
    (void)ctx;
    (void)errstr;
    (void)errstr_size;
    hook_calls++;
    return 0;
}

static void hook_stop(void *ctx)
{
    (void)ctx;
    hook_calls++;
}

/* A DATABASE_URL that cannot be parsed stops svc_run at its first step, with the text
 * main() dies with, before any hook, thread or server. */
static void test_run_bad_database_url(void **state)
{
    svc_config_t c;
    svc_t s;
    db_pool_t *pool = (db_pool_t *)&s; /* not NULL: svc_run must reset it */
    outbox_relay_t *relay = NULL;
    char err[512] = "";

    (void)state;
    set("DATABASE_URL", "not a conninfo");
    assert_int_equal(svc_config_read(&with_relay, &c, err, sizeof(err)), 0);
    memset(&s, 0, sizeof(s));
    s.name = "test";
    s.metrics = metrics_new();
    s.cfg = &c;
    s.pool = &pool;
    s.relay = &relay;
    s.before_consumer[0].start = hook_start;
    s.before_consumer[0].stop = hook_stop;
    s.after_consumer[0].start = hook_start;
    s.after_consumer[0].stop = hook_stop;
    hook_calls = 0;
    assert_int_equal(svc_run(&s, err, sizeof(err)), -1);
    assert_int_equal(strncmp(err, "DATABASE_URL: ", 14), 0);
    assert_null(pool);
    assert_null(relay);
    assert_int_equal(hook_calls, 0);
    metrics_free(s.metrics);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, minimal_env),
        cmocka_unit_test_setup(test_values, minimal_env),
        cmocka_unit_test_setup(test_required, minimal_env),
        cmocka_unit_test_setup(test_bad_values_named, minimal_env),
        cmocka_unit_test_setup(test_outbox_only_with_relay, minimal_env),
        cmocka_unit_test_setup(test_run_bad_database_url, minimal_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
