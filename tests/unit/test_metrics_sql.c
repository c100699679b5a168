/* Unit tests for libcommon/metrics_sql.c that need no server: label lists built from
 * columns, and a collector whose database cannot be reached (nothing listens on port 1):
 * the scrape still answers, the failure is counted once per cache period, and stopping the
 * collector unregisters it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics_sql.h"
#include "util.h"

#define UNREACHABLE "host=127.0.0.1 port=1 dbname=dozen user=dozen connect_timeout=2"

static void test_labels(void **state)
{
    const char *two[] = { "stock", "handler_failed" };
    const char *odd[] = { "a,b=c" };
    const char *empty[] = { NULL };
    char out[64];

    (void)state;
    assert_int_equal(metrics_sql_labels("group,reason", two, 2, out, sizeof(out)), 0);
    assert_string_equal(out, "group=stock,reason=handler_failed");
    /* ',' and '=' cannot be carried by the registry's label syntax. */
    assert_int_equal(metrics_sql_labels("sku", odd, 1, out, sizeof(out)), 0);
    assert_string_equal(out, "sku=a_b_c");
    assert_int_equal(metrics_sql_labels("sku", empty, 1, out, sizeof(out)), 0);
    assert_string_equal(out, "sku=");
    assert_int_equal(metrics_sql_labels(NULL, NULL, 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    /* Columns and keys that do not match, and a buffer too small. */
    assert_int_equal(metrics_sql_labels("group", two, 2, out, sizeof(out)), -1);
    assert_int_equal(metrics_sql_labels("group,reason,x", two, 2, out, sizeof(out)), -1);
    assert_int_equal(metrics_sql_labels("group,reason", two, 2, out, 20), -1);
}

static const metrics_sql_gauge_t gauges[] = {
    { "dozen_test_rows", "Rows.", "producer", "SELECT $1::text, 1", 1 },
};

static char *render(metrics_t *m)
{
    strbuf_t sb = STRBUF_INIT;

    assert_int_equal(metrics_render(m, &sb), 0);
    return strbuf_detach(&sb, NULL);
}

static void test_unreachable_database(void **state)
{
    metrics_t *m = metrics_new();
    metrics_sql_t *c;
    db_pool_t *pool;
    char err[256], *text;
    int64_t t0;

    (void)state;
    pool = db_pool_new(UNREACHABLE, 1, NULL, 0, err, sizeof(err));
    assert_non_null(pool);
    c = metrics_sql_start(m, pool, "sales", gauges, 1, 60000, err, sizeof(err));
    assert_non_null(c);

    t0 = util_mono_ms();
    text = render(m);
    assert_true(util_mono_ms() - t0 < 3000); /* bounded: the refused connect fails at once */
    assert_non_null(strstr(text, "dozen_metrics_sql_errors_total 1\n"));
    assert_null(strstr(text, "dozen_test_rows")); /* never read: no series */
    free(text);
    /* Within the cache period nothing is asked again. */
    text = render(m);
    assert_non_null(strstr(text, "dozen_metrics_sql_errors_total 1\n"));
    free(text);

    metrics_sql_stop(c);
    text = render(m); /* the collector is gone: still 1 */
    assert_non_null(strstr(text, "dozen_metrics_sql_errors_total 1\n"));
    free(text);
    metrics_sql_stop(NULL);
    db_pool_free(pool);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_unreachable_database),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
