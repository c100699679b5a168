/* metrics: the stock service's own series, read from PostgreSQL at scrape time. */
#include "stock.h"

/* The SKUs are the shop's catalog (tens of rows), so a label per SKU stays low-cardinality;
 * the LIMIT keeps a runaway catalog from flooding a scrape. */
const metrics_sql_gauge_t stock_metrics_gauges[] = {
    { "dozen_stock_quantity", "Units in stock, per SKU (inventory.quantity).", "sku",
      "SELECT sku, quantity FROM inventory ORDER BY sku LIMIT 256", 0 },
};
const size_t stock_metrics_ngauges =
    sizeof(stock_metrics_gauges) / sizeof(stock_metrics_gauges[0]);
