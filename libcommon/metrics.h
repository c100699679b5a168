/* metrics: counters, gauges and histograms, rendered in the Prometheus text exposition
 * format (version 0.0.4) for GET /metrics.
 *
 * A registry holds metric families (one name, one type, one help text) and their series
 * (one set of label values each). Series are created on first use and live as long as the
 * registry: look one up once (metrics_counter ...) and keep the pointer; updating it is
 * lock-free (C11 atomics) and safe from any thread. Labels must have low cardinality:
 * never an order id or a phone number.
 *
 * Naming follows Prometheus' conventions: base units (seconds, bytes), `_total` for
 * counters; a histogram family NAME renders NAME_bucket{le=...}, NAME_sum and NAME_count. */
#ifndef DOZEN_METRICS_H
#define DOZEN_METRICS_H

#include <stddef.h>

#include "strbuf.h"

typedef struct metrics metrics_t;
typedef struct metric metric_t;

/* Returns a new, empty registry (the caller frees it with metrics_free), or NULL if out of
 * memory. */
metrics_t *metrics_new(void);

/* Frees the registry and every series in it; pointers to series become invalid. Accepts
 * NULL. */
void metrics_free(metrics_t *m);

/* Returns the series of counter family name with these labels, creating family and series
 * on first use. labels is NULL or "key=value,key=value" (values may hold any byte but ','
 * and '='; they are escaped on output). The same name must always be asked for with the same
 * type and label keys. Returns NULL for a bad name or labels, a type conflict, or out of
 * memory. help is borrowed and must be a string literal (or outlive the registry). */
metric_t *metrics_counter(metrics_t *m, const char *name, const char *help,
                          const char *labels);

/* The same for a gauge. */
metric_t *metrics_gauge(metrics_t *m, const char *name, const char *help, const char *labels);

/* The same for a histogram with n upper bounds, strictly increasing (the +Inf bucket is
 * added); bounds are copied when the family is created and must be the same on later calls. */
metric_t *metrics_histogram(metrics_t *m, const char *name, const char *help,
                            const char *labels, const double *bounds, size_t n);

/* Latency buckets in seconds, 0.5 ms to 10 s, for metrics_histogram. */
extern const double metrics_latency_buckets[];
extern const size_t metrics_latency_nbuckets;

/* Adds v to a counter (v >= 0; a negative v is ignored) or to a gauge (any v). Accepts NULL
 * (does nothing), so a caller that could not create a series keeps working. */
void metric_add(metric_t *s, double v);

/* Counter or gauge + 1. Accepts NULL. */
void metric_inc(metric_t *s);

/* Sets a gauge, or a counter that mirrors a count kept elsewhere (a collector copying the
 * kernel's CPU time). Accepts NULL. */
void metric_set(metric_t *s, double v);

/* Records one observation in a histogram. Accepts NULL. */
void metric_observe(metric_t *s, double v);

/* A function called at the start of every metrics_render, to set gauges that are read
 * rather than counted (process figures, backlog sizes). Runs on the rendering thread. */
typedef void (*metrics_collect_fn)(metrics_t *m, void *ctx);

/* Registers a collector (at most 8). Returns 0, or -1 when the table is full. */
int metrics_add_collector(metrics_t *m, metrics_collect_fn fn, void *ctx);

/* Removes the collector registered with fn and ctx (does nothing when there is none). Call
 * only while nothing renders m: a render in progress may still be calling it. */
void metrics_remove_collector(metrics_t *m, metrics_collect_fn fn, void *ctx);

/* The collector for the usual process_* series (process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds, process_threads,
 * process_cpu_seconds_total, process_start_time_seconds), read from /proc/self. Register it
 * with metrics_add_collector(m, metrics_process_collect, NULL). */
void metrics_process_collect(metrics_t *m, void *ctx);

/* Appends the whole registry to out in the text exposition format: families in the order
 * they were created, HELP and TYPE once per family, series in creation order. Returns 0, or
 * -1 when out failed (out of memory). */
int metrics_render(metrics_t *m, strbuf_t *out);

/* The Content-Type of metrics_render's output. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
