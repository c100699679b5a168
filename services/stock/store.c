/* store: the stock service's SQL. */
#include "stock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbox.h"

const db_stmt_t store_stmts[] = {
    { "inv_list", "SELECT sku, quantity FROM inventory ORDER BY sku", 0 },
    { "inv_get", "SELECT sku, quantity FROM inventory WHERE sku = $1", 1 },
    /* xmax = 0 only for a freshly inserted row: tells "created" from "updated". */
    { "inv_set",
      "INSERT INTO inventory (sku, quantity) VALUES ($1, $2::int) "
      "ON CONFLICT (sku) DO UPDATE SET quantity = EXCLUDED.quantity, updated_at = now() "
      "RETURNING (xmax = 0)", 2 },
    { "inv_raise",
      "UPDATE inventory SET quantity = quantity + $2::int, updated_at = now() "
      "WHERE sku = $1 RETURNING quantity", 2 },
    INBOX_DB_STMT,
};
const size_t store_nstmts = sizeof(store_stmts) / sizeof(store_stmts[0]);

static json_t *row_item(const PGresult *res, int row)
{
    return json_pack("{s:s, s:I}", "sku", PQgetvalue(res, row, 0), "quantity",
                     (json_int_t)strtoll(PQgetvalue(res, row, 1), NULL, 10));
}

json_t *store_list(PGconn *conn, char *errstr, size_t errstr_size)
{
    PGresult *res;
    json_t *items = NULL, *list;

    res = db_exec(conn, "inv_list", 0, NULL, NULL, errstr, errstr_size);
    if (res == NULL)
        return NULL;
    list = json_array();
    for (int i = 0; list != NULL && i < PQntuples(res); i++) {
        if (json_array_append_new(list, row_item(res, i)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (list == NULL)
        snprintf(errstr, errstr_size, "out of memory");
    items = list;
    PQclear(res);
    return items;
}

int store_get(PGconn *conn, const char *sku, json_t **item, char *errstr, size_t errstr_size)
{
    const char *params[1] = { sku };
    PGresult *res;
    int ret = -1;

    *item = NULL;
    res = db_exec(conn, "inv_get", 1, params, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 0) {
        ret = 0;
    } else {
        *item = row_item(res, 0);
        if (*item == NULL)
            snprintf(errstr, errstr_size, "out of memory");
        else
            ret = 1;
    }
    PQclear(res);
    return ret;
}

int store_set(PGconn *conn, const char *sku, long long quantity,
              char *errstr, size_t errstr_size)
{
    char qty[24];
    const char *params[2] = { sku, qty };
    PGresult *res;
    int ret = -1;

    snprintf(qty, sizeof(qty), "%lld", quantity);
    res = db_exec(conn, "inv_set", 2, params, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1)
        ret = PQgetvalue(res, 0, 0)[0] == 't';
    else
        snprintf(errstr, errstr_size, "upsert returned %d rows", PQntuples(res));
    PQclear(res);
    return ret;
}

int store_replenish(PGconn *conn, const char *ce_id, const char *sku, long long quantity,
                    long long *level, char *errstr, size_t errstr_size)
{
    char qty[24];
    const char *params[2] = { sku, qty };
    PGresult *res = NULL;
    int ret = -1, first;

    snprintf(qty, sizeof(qty), "%lld", quantity);
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    first = inbox_claim(conn, STOCK_SERVICE, ce_id, errstr, errstr_size);
    if (first <= 0) {
        ret = first;
        goto done;
    }
    /* A level that would leave the column's range (SQLSTATE 22003) is a data error: the
     * consumer loop dead-letters it as invalid_record (db_error_classify). */
    res = db_exec(conn, "inv_raise", 2, params, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    if (PQntuples(res) == 0) {
        snprintf(errstr, errstr_size, "unknown sku '%s'", sku);
        ret = -2;
        goto done;
    }
    *level = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    if (db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    ret = 1;
done:
    PQclear(res);
    if (ret != 1)
        db_rollback(conn); /* a duplicate commits nothing: its claim found the row there */
    return ret;
}
