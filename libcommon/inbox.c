/* inbox: records which events a consumer has applied (processed_events). */
#include "inbox.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "util.h"

int inbox_claim(PGconn *conn, const char *consumer, const char *ce_id,
                char *errstr, size_t errstr_size)
{
    const char *params[2] = { consumer, ce_id };
    PGresult *res;
    int first;

    res = db_exec(conn, INBOX_STMT_NAME, 2, params, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    first = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return first;
}
