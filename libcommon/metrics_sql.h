/* metrics_sql: gauges read from PostgreSQL when /metrics is scraped.
 *
 * Where a figure lives in the database (rows waiting in a table, the state of a row), it is
 * read rather than counted in the process: it then survives restarts, agrees between
 * instances, and cannot drift. Each gauge is one bounded, cheap query; the results are kept
 * for a short time (ttl) so that several scrapers, or a fast one, cost one round of queries.
 *
 * A query returns its label values in the leading columns (text, in the order of labels)
 * and the value in the last one (a number; NULL counts as 0). At most METRICS_SQL_ROWS_MAX
 * rows are read. A series seen before but absent from the latest answer is set to 0, so that
 * a reason that no longer has pending rows drops to 0 instead of keeping its last value. */
#ifndef DOZEN_METRICS_SQL_H
#define DOZEN_METRICS_SQL_H

#include <stddef.h>

#include "db.h"
#include "metrics.h"

#define METRICS_SQL_ROWS_MAX 256
#define METRICS_SQL_TTL_MS 1000        /* how long an answer is served again */
#define METRICS_SQL_WAIT_MS 250        /* how long a scrape waits for a pooled connection */
#define METRICS_SQL_STATEMENT_TIMEOUT "1s"

/* One gauge family and the query that gives its series. All strings are borrowed and must
 * outlive the collector (string literals). */
typedef struct metrics_sql_gauge {
    const char *name;        /* "dozen_retry_pending" */
    const char *help;
    const char *labels;      /* the label keys of the leading columns, "group,reason";
                              * NULL: none (the query returns one column) */
    const char *sql;         /* never built from input; $1 is the service name when
                              * with_service is 1, else the query takes no parameter */
    int with_service;
} metrics_sql_gauge_t;

typedef struct metrics_sql metrics_sql_t;

/* Registers a collector on m that runs the n queries of gauges (borrowed) through pool
 * (borrowed) at most once per ttl_ms, in one read-only transaction with a statement
 * timeout. service (copied) is the $1 of queries with with_service. A failed round keeps
 * the previous values, counts dozen_metrics_sql_errors_total and is logged once until a
 * round succeeds again. Returns the collector (free it with metrics_sql_stop), or NULL with
 * errstr (out of memory, m's collector table full). */
metrics_sql_t *metrics_sql_start(metrics_t *m, db_pool_t *pool, const char *service,
                                 const metrics_sql_gauge_t *gauges, size_t n, long long ttl_ms,
                                 char *errstr, size_t errstr_size);

/* Unregisters the collector and frees it. Call only while nothing renders m (after the HTTP
 * server stopped). Accepts NULL. */
void metrics_sql_stop(metrics_sql_t *c);

/* Parses one label value list for a row: joins keys ("a,b") with values into "a=v,b=w" in
 * out (out_size bytes). A value holding ',' or '=' (which the registry's label syntax
 * cannot carry) has them replaced by '_'. Returns 0, or -1 when out is too small or the
 * counts differ. Pure; for the collector and its unit test. */
int metrics_sql_labels(const char *keys, const char *const *values, size_t nvalues,
                       char *out, size_t out_size);

#endif
