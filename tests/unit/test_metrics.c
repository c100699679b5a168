/* Unit tests for libcommon/metrics.c: the text exposition format, label escaping, types,
 * histograms, concurrent updates and the process collector. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "metrics.h"

static char *render(metrics_t *m)
{
    strbuf_t sb = STRBUF_INIT;

    assert_int_equal(metrics_render(m, &sb), 0);
    return strbuf_detach(&sb, NULL);
}

static void test_counter_and_gauge_text(void **state)
{
    metrics_t *m = metrics_new();
    metric_t *c, *g;
    char *text;

    (void)state;
    c = metrics_counter(m, "dozen_orders_total", "Orders by outcome.", "outcome=completed");
    assert_non_null(c);
    metric_inc(c);
    metric_add(c, 2);
    metric_add(c, -5); /* counters never go down */
    assert_ptr_equal(metrics_counter(m, "dozen_orders_total", "Orders by outcome.",
                                     "outcome=completed"), c);
    metric_inc(metrics_counter(m, "dozen_orders_total", "Orders by outcome.",
                               "outcome=rejected"));
    g = metrics_gauge(m, "dozen_stock_level", "Stock per SKU.", NULL);
    metric_set(g, 42.5);
    text = render(m);
    assert_string_equal(text,
                        "# HELP dozen_orders_total Orders by outcome.\n"
                        "# TYPE dozen_orders_total counter\n"
                        "dozen_orders_total{outcome=\"completed\"} 3\n"
                        "dozen_orders_total{outcome=\"rejected\"} 1\n"
                        "# HELP dozen_stock_level Stock per SKU.\n"
                        "# TYPE dozen_stock_level gauge\n"
                        "dozen_stock_level 42.5\n");
    free(text);
    metrics_free(m);
}

static void test_bad_names_labels_and_conflicts(void **state)
{
    metrics_t *m = metrics_new();

    (void)state;
    assert_null(metrics_counter(m, "9lives", "", NULL));
    assert_null(metrics_counter(m, "a-b", "", NULL));
    assert_null(metrics_counter(m, "", "", NULL));
    assert_null(metrics_counter(m, "x", "", "=v"));
    assert_null(metrics_counter(m, "x", "", "k"));
    assert_null(metrics_counter(m, "x", "", "k=v,"));
    assert_null(metrics_counter(m, "x", "", "__k=v"));
    assert_null(metrics_counter(m, "x", "", "k=a=b"));
    assert_non_null(metrics_counter(m, "x", "", "k=v"));
    assert_null(metrics_gauge(m, "x", "", "k=v"));     /* same name, other type */
    assert_null(metrics_counter(m, "x", "", "j=v"));   /* same name, other label keys */
    assert_null(metrics_histogram(m, "h", "", "le=1", metrics_latency_buckets,
                                  metrics_latency_nbuckets));
    {
        const double bad[] = { 1, 1 };
        assert_null(metrics_histogram(m, "h2", "", NULL, bad, 2));
    }
    metric_inc(NULL); /* a series that could not be made is a no-op */
    metric_observe(NULL, 1);
    metrics_free(m);
}

static void test_label_values_are_escaped(void **state)
{
    metrics_t *m = metrics_new();
    char *text;

    (void)state;
    metric_inc(metrics_counter(m, "c_total", "help with \\ and\nnewline",
                               "route=/a\"b\\c\nd"));
    text = render(m);
    assert_non_null(strstr(text, "# HELP c_total help with \\\\ and\\nnewline\n"));
    assert_non_null(strstr(text, "c_total{route=\"/a\\\"b\\\\c\\nd\"} 1\n"));
    free(text);
    metrics_free(m);
}

static void test_histogram(void **state)
{
    const double b[] = { 0.01, 0.1, 1 };
    metrics_t *m = metrics_new();
    metric_t *h = metrics_histogram(m, "lat_seconds", "Latency.", "route=/orders", b, 3);
    char *text;

    (void)state;
    metric_observe(h, 0.005);
    metric_observe(h, 0.01); /* le is inclusive */
    metric_observe(h, 0.5);
    metric_observe(h, 7);
    text = render(m);
    assert_string_equal(text,
                        "# HELP lat_seconds Latency.\n"
                        "# TYPE lat_seconds histogram\n"
                        "lat_seconds_bucket{route=\"/orders\",le=\"0.01\"} 2\n"
                        "lat_seconds_bucket{route=\"/orders\",le=\"0.1\"} 2\n"
                        "lat_seconds_bucket{route=\"/orders\",le=\"1\"} 3\n"
                        "lat_seconds_bucket{route=\"/orders\",le=\"+Inf\"} 4\n"
                        "lat_seconds_sum{route=\"/orders\"} 7.515\n"
                        "lat_seconds_count{route=\"/orders\"} 4\n");
    free(text);
    metrics_free(m);
}

#define THREADS 4
#define ADDS 20000

static void *adder(void *arg)
{
    metric_t **s = arg;
    int i;

    for (i = 0; i < ADDS; i++) {
        metric_inc(s[0]);
        metric_observe(s[1], 0.002);
    }
    return NULL;
}

static void test_concurrent_updates_are_not_lost(void **state)
{
    metrics_t *m = metrics_new();
    metric_t *s[2];
    pthread_t t[THREADS];
    char *text;
    int i;

    (void)state;
    s[0] = metrics_counter(m, "n_total", "", NULL);
    s[1] = metrics_histogram(m, "d_seconds", "", NULL, metrics_latency_buckets,
                             metrics_latency_nbuckets);
    for (i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, adder, s), 0);
    for (i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    text = render(m);
    assert_non_null(strstr(text, "n_total 80000\n"));
    assert_non_null(strstr(text, "d_seconds_count 80000\n"));
    assert_non_null(strstr(text, "d_seconds_bucket{le=\"0.001\"} 0\n"));
    assert_non_null(strstr(text, "d_seconds_bucket{le=\"0.0025\"} 80000\n"));
    free(text);
    metrics_free(m);
}

static void test_process_collector(void **state)
{
    metrics_t *m = metrics_new();
    char *text, *p;

    (void)state;
    assert_int_equal(metrics_add_collector(m, metrics_process_collect, NULL), 0);
    text = render(m);
    assert_non_null(strstr(text, "# TYPE process_resident_memory_bytes gauge\n"));
    assert_non_null(strstr(text, "\nprocess_open_fds "));
    assert_non_null(strstr(text, "\nprocess_threads 1\n"));
    p = strstr(text, "\nprocess_start_time_seconds ");
    assert_non_null(p);
    assert_true(strtod(p + strlen("\nprocess_start_time_seconds "), NULL) > 1.7e9);
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_gauge_text),
        cmocka_unit_test(test_bad_names_labels_and_conflicts),
        cmocka_unit_test(test_label_values_are_escaped),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_concurrent_updates_are_not_lost),
        cmocka_unit_test(test_process_collector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
