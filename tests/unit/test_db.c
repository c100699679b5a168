/* Unit tests for libcommon/db.c that need no server: option checks, argument checks, and
 * how the pool behaves when the server cannot be reached (nothing listens on port 1, so
 * every connect is refused at once); what a connection sends in its start-up packet, read
 * by a fake server that then hangs up. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "db.h"
#include "util.h"

#define UNREACHABLE "host=127.0.0.1 port=1 dbname=dozen user=dozen connect_timeout=2"

static const db_stmt_t stmts[] = {
    { "one", "SELECT 1", 0 },
};

static void test_pool_options(void **state)
{
    char err[256];
    db_pool_t *p;

    (void)state;
    assert_null(db_pool_new(UNREACHABLE, 0, NULL, 0, err, sizeof(err)));
    assert_string_equal(err, "pool size must be positive, not 0");
    assert_null(db_pool_new(UNREACHABLE, -3, NULL, 0, err, sizeof(err)));
    assert_string_equal(err, "pool size must be positive, not -3");
    assert_null(db_pool_new(UNREACHABLE, 2, NULL, 1, err, sizeof(err)));
    assert_string_equal(err, "statements missing");
    assert_null(db_pool_new(NULL, 2, NULL, 0, err, sizeof(err)));
    assert_string_equal(err, "no connection string");

    /* A connection string that does not parse is refused at once, in one line, and the
     * parser's message does not repeat the password. */
    err[0] = '\0';
    assert_null(db_pool_new("host=x password=s3cret dbname='unterminated", 2, NULL, 0, err,
                            sizeof(err)));
    if (strncmp(err, "bad connection string: ", 23) != 0)
        fail_msg("unexpected error: %s", err);
    assert_null(strchr(err, '\n'));
    assert_null(strstr(err, "s3cret"));
    assert_null(db_pool_new("nosuchoption=1", 1, NULL, 0, err, sizeof(err)));
    if (strncmp(err, "bad connection string: ", 23) != 0)
        fail_msg("unexpected error: %s", err);

    /* A valid string makes a pool without connecting: connections are opened lazily. */
    p = db_pool_new(UNREACHABLE, 2, stmts, 1, err, sizeof(err));
    assert_non_null(p);
    db_pool_free(p);
    p = db_pool_new("postgresql://dozen@127.0.0.1:1/dozen", 1, NULL, 0, err, sizeof(err));
    assert_non_null(p);
    db_pool_free(p);
    db_pool_free(NULL);
}

static void test_unreachable_server(void **state)
{
    char err[256];
    db_pool_t *p = db_pool_new(UNREACHABLE, 1, stmts, 1, err, sizeof(err));
    PGconn *c;
    int64_t t0;
    int i;

    (void)state;
    assert_non_null(p);
    /* A failed connect gives its slot back: the next acquire tries again (and fails the
     * same way) instead of waiting for a free connection. */
    for (i = 0; i < 3; i++) {
        err[0] = '\0';
        t0 = util_mono_ms();
        c = db_acquire(p, 200, err, sizeof(err));
        assert_null(c);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "no free database connection"));
        assert_null(strchr(err, '\n')); /* libpq's multi-line message, joined */
        assert_true(util_mono_ms() - t0 < 5000);
    }
    assert_int_equal(db_ping(p, 200, err, sizeof(err)), -1);
    assert_null(strstr(err, "no free database connection"));
    db_pool_free(p);

    assert_null(db_connect(UNREACHABLE, NULL, 0, err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    assert_null(db_connect("dbname='x", NULL, 0, err, sizeof(err)));
    if (strncmp(err, "bad connection string: ", 23) != 0)
        fail_msg("unexpected error: %s", err);
}

static void test_bad_arguments(void **state)
{
    const char *params[1] = { "1" };
    char err[256], sqlstate[6];
    PGconn *bad;

    (void)state;
    assert_null(db_acquire(NULL, 10, err, sizeof(err)));
    assert_string_equal(err, "no database pool");
    db_release(NULL, NULL);

    memcpy(sqlstate, "XXXXX", 6);
    assert_null(db_exec(NULL, "one", 0, NULL, sqlstate, err, sizeof(err)));
    assert_string_equal(err, "no database connection");
    assert_string_equal(sqlstate, "");
    assert_null(db_query(NULL, "SELECT 1", 0, NULL, NULL, err, sizeof(err)));
    assert_string_equal(err, "no database connection");
    assert_int_equal(db_begin(NULL, err, sizeof(err)), -1);
    assert_int_equal(db_commit(NULL, err, sizeof(err)), -1);
    assert_int_equal(db_rollback(NULL), -1);

    /* A connection object that never connected (CONNECTION_BAD) is not NULL: the argument
     * checks come first, then libpq's own failure, with no SQLSTATE. */
    bad = PQconnectdb(UNREACHABLE);
    assert_non_null(bad);
    assert_int_not_equal(PQstatus(bad), CONNECTION_OK);
    assert_null(db_exec(bad, NULL, 0, NULL, NULL, err, sizeof(err)));
    assert_string_equal(err, "no statement name");
    assert_null(db_query(bad, NULL, 0, NULL, NULL, err, sizeof(err)));
    assert_string_equal(err, "no SQL");
    assert_null(db_query(bad, "SELECT $1", -1, params, NULL, err, sizeof(err)));
    assert_string_equal(err, "bad parameter list");
    assert_null(db_query(bad, "SELECT $1", 1, NULL, NULL, err, sizeof(err)));
    assert_string_equal(err, "bad parameter list");
    memcpy(sqlstate, "XXXXX", 6);
    err[0] = '\0';
    assert_null(db_query(bad, "SELECT $1", 1, params, sqlstate, err, sizeof(err)));
    assert_string_equal(sqlstate, "");
    assert_true(err[0] != '\0');
    assert_int_equal(db_rollback(bad), -1); /* not even a transaction status to read */

    /* A connection the pool never handed out is refused (and logged), not adopted. */
    {
        db_pool_t *p = db_pool_new(UNREACHABLE, 1, NULL, 0, err, sizeof(err));

        assert_non_null(p);
        db_release(p, bad);
        db_pool_free(p);
    }
    PQfinish(bad);
}

static void test_options_merge(void **state)
{
    strbuf_t sb = STRBUF_INIT;

    (void)state;
    assert_int_equal(db_options_merge(NULL, 30000, &sb), 0);
    assert_string_equal(sb.buf, "-c statement_timeout=30000");
    strbuf_reset(&sb);
    /* The user's options come after ours: a statement_timeout of theirs wins. */
    assert_int_equal(db_options_merge("-c statement_timeout=0 -csearch_path=x", 5, &sb), 0);
    assert_string_equal(sb.buf, "-c statement_timeout=5 -c statement_timeout=0 "
                        "-csearch_path=x");
    strbuf_reset(&sb);
    assert_int_equal(db_options_merge("", 5, &sb), 0);
    assert_string_equal(sb.buf, "-c statement_timeout=5");
    strbuf_reset(&sb);
    assert_int_equal(db_options_merge("-c a=b", 0, &sb), 0);
    assert_string_equal(sb.buf, "-c a=b");
    strbuf_reset(&sb);
    assert_int_equal(db_options_merge(NULL, 0, &sb), 0);
    assert_int_equal(sb.len, 0);
    strbuf_release(&sb);
}

/* A fake server: accepts one connection, keeps the parameters of its StartupMessage
 * ("key\0value\0...") and hangs up, or, with accept_login, answers AuthenticationOk and
 * ReadyForQuery and waits for the client to hang up. */
struct fake_server {
    int fd;
    int accept_login;
    char params[2048];
    size_t params_len;
};

static int read_full(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);

        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void *fake_server_main(void *arg)
{
    struct fake_server *fs = arg;
    unsigned char head[8], body[2048];
    uint32_t len;
    int c = accept(fs->fd, NULL, NULL);

    if (c < 0)
        return NULL;
    if (read_full(c, head, 8) == 0) {
        len = ((uint32_t)head[0] << 24) | ((uint32_t)head[1] << 16) |
              ((uint32_t)head[2] << 8) | head[3];
        if (len > 8 && len - 8 <= sizeof(body) && read_full(c, body, len - 8) == 0) {
            memcpy(fs->params, body, len - 8);
            fs->params_len = len - 8;
        }
    }
    if (fs->accept_login) {
        static const unsigned char ok[] = { 'R', 0, 0, 0, 8, 0, 0, 0, 0,
                                            'Z', 0, 0, 0, 5, 'I' };

        if (write(c, ok, sizeof(ok)) == (ssize_t)sizeof(ok))
            while (read(c, body, sizeof(body)) > 0)
                ; /* until the client's Terminate and close */
    }
    close(c);
    return NULL;
}

/* The value of parameter key in the captured start-up packet, or NULL. */
static const char *startup_param(const struct fake_server *fs, const char *key)
{
    size_t i = 0;

    while (i < fs->params_len && fs->params[i] != '\0') {
        const char *k = fs->params + i;
        const char *v = k + strlen(k) + 1;

        if ((size_t)(v - fs->params) >= fs->params_len)
            return NULL;
        if (strcmp(k, key) == 0)
            return v;
        i = (size_t)(v - fs->params) + strlen(v) + 1;
    }
    return NULL;
}

/* Connects to a fake server with conninfo_fmt (one %d: the port); fills fs. With
 * fs->accept_login set on entry, returns the open connection (the caller PQfinish()es it
 * and then calls fake_join); else NULL, the server already gone. */
static pthread_t fake_thread;

static PGconn *connect_fake(const char *conninfo_fmt, struct fake_server *fs)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    char conninfo[512], err[256];
    int accept_login = fs->accept_login;
    PGconn *conn;

    memset(fs, 0, sizeof(*fs));
    fs->accept_login = accept_login;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fs->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fs->fd >= 0);
    assert_int_equal(bind(fs->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fs->fd, 1), 0);
    assert_int_equal(getsockname(fs->fd, (struct sockaddr *)&a, &alen), 0);
    assert_int_equal(pthread_create(&fake_thread, NULL, fake_server_main, fs), 0);
    snprintf(conninfo, sizeof(conninfo), conninfo_fmt, ntohs(a.sin_port));
    conn = db_connect(conninfo, NULL, 0, err, sizeof(err));
    if (accept_login) {
        if (conn == NULL)
            fail_msg("connect to the fake server failed: %s", err);
        return conn;
    }
    assert_null(conn); /* it hangs up */
    pthread_join(fake_thread, NULL);
    close(fs->fd);
    assert_true(fs->params_len > 0);
    return NULL;
}

static void fake_join(struct fake_server *fs)
{
    pthread_join(fake_thread, NULL);
    close(fs->fd);
}

static int sockopt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);

    assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

/* The socket of a connection has the keepalives and user timeout db.h promises, unless the
 * connection string says otherwise. */
static void test_socket_options(void **state)
{
    struct fake_server fs;
    PGconn *conn;

    (void)state;
    memset(&fs, 0, sizeof(fs));
    fs.accept_login = 1;
    conn = connect_fake("host=127.0.0.1 port=%d user=u dbname=d sslmode=disable "
                        "gssencmode=disable", &fs);
    assert_int_equal(sockopt(PQsocket(conn), SOL_SOCKET, SO_KEEPALIVE), 1);
    assert_int_equal(sockopt(PQsocket(conn), IPPROTO_TCP, TCP_KEEPIDLE), 5);
    assert_int_equal(sockopt(PQsocket(conn), IPPROTO_TCP, TCP_KEEPINTVL), 2);
    assert_int_equal(sockopt(PQsocket(conn), IPPROTO_TCP, TCP_KEEPCNT), 3);
    assert_int_equal(sockopt(PQsocket(conn), IPPROTO_TCP, TCP_USER_TIMEOUT), 10000);
    PQfinish(conn);
    fake_join(&fs);

    fs.accept_login = 1;
    conn = connect_fake("postgresql://u@127.0.0.1:%d/d?sslmode=disable&gssencmode=disable"
                        "&keepalives_idle=30&tcp_user_timeout=2500", &fs);
    assert_int_equal(sockopt(PQsocket(conn), IPPROTO_TCP, TCP_KEEPIDLE), 30);
    assert_int_equal(sockopt(PQsocket(conn), IPPROTO_TCP, TCP_USER_TIMEOUT), 2500);
    assert_int_equal(sockopt(PQsocket(conn), IPPROTO_TCP, TCP_KEEPCNT), 3);
    PQfinish(conn);
    fake_join(&fs);
}

static void test_startup_options(void **state)
{
    struct fake_server fs;

    (void)state;
    memset(&fs, 0, sizeof(fs));
    unsetenv("PGOPTIONS");
    db_set_statement_timeout(0);
    connect_fake("host=127.0.0.1 port=%d user=u dbname=d sslmode=disable "
                 "gssencmode=disable", &fs);
    assert_null(startup_param(&fs, "options"));
    assert_string_equal(startup_param(&fs, "user"), "u");

    db_set_statement_timeout(1234);
    connect_fake("postgresql://u@127.0.0.1:%d/d?sslmode=disable&gssencmode=disable", &fs);
    assert_string_equal(startup_param(&fs, "options"), "-c statement_timeout=1234");
    assert_string_equal(startup_param(&fs, "database"), "d");

    /* The user's options are kept, after ours; PGOPTIONS only stands in for them. */
    setenv("PGOPTIONS", "-c work_mem=1MB", 1);
    connect_fake("host=127.0.0.1 port=%d user=u dbname=d sslmode=disable gssencmode=disable "
                 "options='-c statement_timeout=0 -c search_path=x'", &fs);
    assert_string_equal(startup_param(&fs, "options"),
                        "-c statement_timeout=1234 -c statement_timeout=0 -c search_path=x");
    connect_fake("host=127.0.0.1 port=%d user=u dbname=d sslmode=disable "
                 "gssencmode=disable", &fs);
    assert_string_equal(startup_param(&fs, "options"),
                        "-c statement_timeout=1234 -c work_mem=1MB");
    unsetenv("PGOPTIONS");
    db_set_statement_timeout(0);
}

static void test_lease_arguments(void **state)
{
    char err[256];

    (void)state;
    assert_int_equal(db_lease_begin(NULL, DB_LEASE_MIN_MS - 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(db_lease_begin(NULL, DB_LEASE_MAX_MS + 1, err, sizeof(err)), -1);
    assert_int_equal(db_lease_begin(NULL, 3000, err, sizeof(err)), -1);
    assert_string_equal(err, "no database connection");
    assert_int_equal(db_lease_renew(NULL, err, sizeof(err)), -1);
    assert_int_equal(db_lease_heartbeat_ms(3000), 1000);
    assert_int_equal(db_lease_heartbeat_ms(2), 1);
}

static void test_error_classify(void **state)
{
    static const char *const transient[] = { "", "08006", "40001", "40P01", "53300", "55P03",
                                             "57P01", "57P02", "57P03", "57014", "58030",
                                             "42P01", "XX000" };
    static const char *const data[] = { "22007", "22008", "22021", "22P02", "22003",
                                        "23502", "23514", "23503", "54000" };
    db_error_t e;

    (void)state;
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++)
        assert_int_equal(db_error_classify(transient[i], NULL), DB_ERROR_TRANSIENT);
    for (size_t i = 0; i < sizeof(data) / sizeof(data[0]); i++)
        assert_int_equal(db_error_classify(data[i], "some_check"), DB_ERROR_DATA);
    assert_int_equal(db_error_classify(NULL, NULL), DB_ERROR_TRANSIENT);
    assert_int_equal(db_error_classify("2200", NULL), DB_ERROR_TRANSIENT);
    /* A unique violation: data, unless on the dedupe key (another member got there). */
    assert_int_equal(db_error_classify("23505", "orders_pkey"), DB_ERROR_DATA);
    assert_int_equal(db_error_classify("23505", NULL), DB_ERROR_DATA);
    assert_int_equal(db_error_classify("23505", DB_DEDUPE_CONSTRAINT), DB_ERROR_TRANSIENT);
    /* Nothing failed on this thread. */
    db_error_reset();
    memset(&e, 'x', sizeof(e));
    assert_int_equal(db_error_last(&e), 0);
    assert_string_equal(e.sqlstate, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_merge),
        cmocka_unit_test(test_startup_options),
        cmocka_unit_test(test_socket_options),
        cmocka_unit_test(test_lease_arguments),
        cmocka_unit_test(test_pool_options),
        cmocka_unit_test(test_unreachable_server),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_error_classify),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
