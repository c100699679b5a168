/* web: `dozenctl web`, the operations console: a page (tools/dozenctl/web/console.html) and
 * a small JSON API on 127.0.0.1. The Kafka views and the trace run dozenctl's own
 * sub-commands (topics, groups --json, dlq list, dlq replay --at, trace --json) as child
 * processes of this same program, so
 * that the console shows and does exactly what the terminal does, replay-once rules
 * included; the database views are read-only SQL. Looking needs nothing; replaying needs
 * the admin token (Authorization: Bearer). Nothing shown holds a phone number or a secret. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "asset.h"
#include "db.h"
#include "dozenctl.h"
#include "http.h"
#include "strbuf.h"
#include "util.h"

ASSET_EMBED(console_html, "tools/dozenctl/web/console.html");

#define WEB_PORT_DEFAULT 8090
#define CHILD_TIMEOUT_MS 30000
#define CHILD_OUTPUT_MAX (8 * 1024 * 1024)

struct web {
    char *token;       /* ADMIN_TOKEN (owned); NULL: replays are refused */
    char *db_url;      /* DATABASE_URL (owned); NULL: the database views say so */
};

/* Runs this program with argv (argv[0] is ignored; NULL-terminated), its stdout into out
 * and its stderr into err, for at most CHILD_TIMEOUT_MS (then it is killed). Returns its
 * exit status (128 + signal when killed), or -1 with err saying why it could not run. */
static int run_self(char *const *argv, strbuf_t *out, strbuf_t *err)
{
    int po[2] = { -1, -1 }, pe[2] = { -1, -1 }, status = 0, ret = -1;
    pid_t pid = -1;
    int64_t deadline = util_mono_ms() + CHILD_TIMEOUT_MS;
    char buf[65536];

    if (pipe(po) != 0 || pipe(pe) != 0) {
        strbuf_addf(err, "pipe: %s", strerror(errno));
        goto done;
    }
    pid = fork();
    if (pid < 0) {
        strbuf_addf(err, "fork: %s", strerror(errno));
        goto done;
    }
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        close(po[1]);
        close(pe[1]);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    while (po[0] >= 0 || pe[0] >= 0) {
        struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
        int64_t left = deadline - util_mono_ms();
        int n;

        if (left <= 0) {
            kill(pid, SIGKILL);
            strbuf_addf(err, "\n(dozenctl web: stopped after %d s)", CHILD_TIMEOUT_MS / 1000);
            break;
        }
        n = poll(fds, 2, (int)left);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < 2 && n > 0; i++) {
            int *fd = i == 0 ? &po[0] : &pe[0];
            strbuf_t *sb = i == 0 ? out : err;
            ssize_t r;

            if (*fd < 0 || fds[i].revents == 0)
                continue;
            r = read(*fd, buf, sizeof(buf));
            if (r <= 0) {
                close(*fd);
                *fd = -1;
            } else if (sb->len + (size_t)r <= CHILD_OUTPUT_MAX) {
                strbuf_add(sb, buf, (size_t)r);
            }
        }
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    ret = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
done:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    return ret;
}

/* A new JSON string of len bytes of a child's output; bytes of a text that is not UTF-8
 * become '?' (jansson takes UTF-8 only). */
static json_t *text_json(const char *buf, size_t len)
{
    json_t *s = json_stringn(buf, len);
    char *copy;

    if (s != NULL || (copy = malloc(len + 1)) == NULL)
        return s;
    for (size_t i = 0; i < len; i++)
        copy[i] = (unsigned char)buf[i] >= 0x80 || buf[i] == '\0' ? '?' : buf[i];
    s = json_stringn(copy, len);
    free(copy);
    return s;
}

/* Answers {"exit", "out" (text, or the parsed JSON when json), "err"} of one run. */
static void answer_run(http_response_t *res, char *const *argv, int json)
{
    strbuf_t out = STRBUF_INIT, err = STRBUF_INIT;
    int rc = run_self(argv, &out, &err);
    json_t *o = NULL;

    if (json && rc >= 0)
        o = json_loadb(out.buf, out.len, 0, NULL);
    if (o == NULL)
        o = text_json(out.buf, out.len);
    http_json(res, rc < 0 ? 500 : 200,
              json_pack("{s:i, s:o, s:o}", "exit", rc, "out", o, "err",
                        text_json(err.buf, err.len)));
    strbuf_release(&out);
    strbuf_release(&err);
}

static void page(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)ctx;
    asset_serve(res, console_html_start, console_html_end, "text/html; charset=utf-8");
}

/* GET /api/topics: `dozenctl topics` */
static void api_topics(const http_request_t *req, http_response_t *res, void *ctx)
{
    char *argv[] = { "dozenctl", "topics", NULL };

    (void)req;
    (void)ctx;
    answer_run(res, argv, 0);
}

/* GET /api/groups: `dozenctl groups --json` */
static void api_groups(const http_request_t *req, http_response_t *res, void *ctx)
{
    char *argv[] = { "dozenctl", "groups", "--json", NULL };

    (void)req;
    (void)ctx;
    answer_run(res, argv, 1);
}

/* GET /api/dlq[?group=G&reason=R]: `dozenctl dlq list` (the child checks G and R) */
static void api_dlq(const http_request_t *req, http_response_t *res, void *ctx)
{
    const char *group = http_query(req, "group"), *reason = http_query(req, "reason");
    char *argv[8] = { "dozenctl", "dlq", "list", NULL };
    int n = 3;

    (void)ctx;
    if (group != NULL && group[0] != '\0') {
        argv[n++] = "--group";
        argv[n++] = (char *)group;
    }
    if (reason != NULL && reason[0] != '\0') {
        argv[n++] = "--reason";
        argv[n++] = (char *)reason;
    }
    argv[n] = NULL;
    answer_run(res, argv, 0);
}

/* GET /api/trace?id=ORDER_ID|CE_ID: `dozenctl trace ID --json` (one order's story; phone
 * numbers masked and tokens left out by the trace itself) */
static void api_trace(const http_request_t *req, http_response_t *res, void *ctx)
{
    const char *id = http_query(req, "id");
    char *argv[] = { "dozenctl", "trace", NULL, "--json", NULL };

    (void)ctx;
    if (id == NULL || !util_is_uuid(id)) {
        http_error(res, 400, "id must be an order id or a ce_id (a UUID)");
        return;
    }
    argv[2] = (char *)id;
    answer_run(res, argv, 1);
}

/* POST /api/dlq/replay {"at": "P:O"} with the admin token: `dozenctl dlq replay --at P:O`,
 * which replays that record unless it was replayed before. */
static void api_replay(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct web *w = ctx;
    json_t *body = NULL;
    const char *at;
    struct filter f = { NULL, NULL, 0, 0, 0 };
    char *argv[] = { "dozenctl", "dlq", "replay", "--at", NULL, NULL };

    if (w->token == NULL) {
        http_error(res, 403, "no ADMIN_TOKEN is configured: the console is read-only");
        return;
    }
    if (!http_check_bearer(req, res, w->token))
        return;
    if ((body = http_body_object(req, res)) == NULL)
        return;
    at = json_string_value(json_object_get(body, "at"));
    if (at == NULL || strlen(at) > 40 || parse_at("replay", at, &f) != 0) {
        http_error(res, 400, "the body must be {\"at\": \"PARTITION:OFFSET\"} of dead-letter");
        goto done;
    }
    argv[4] = (char *)at;
    answer_run(res, argv, 0);
done:
    json_decref(body);
}

/* The database's side, read-only: the outbox backlog, retries pending by group and reason,
 * the latest bulletins with their failed checks. Every query builds its JSON in SQL. (The
 * dead letters come from the topic itself, through dozenctl dlq list: /api/dlq.) */
static const struct {
    const char *name, *sql;
} db_views[] = {
    { "outbox",
      "SELECT COALESCE(json_agg(x ORDER BY x.producer), '[]') FROM ("
      " SELECT producer, count(*) AS unsent, min(created_at) AS oldest"
      " FROM outbox WHERE sent_at IS NULL GROUP BY producer) x" },
    { "retries",
      "SELECT COALESCE(json_agg(x ORDER BY x.group_id, x.reason), '[]') FROM ("
      " SELECT group_id, reason, count(*) AS pending,"
      " to_timestamp(min(due_at) / 1000.0) AS next_due"
      " FROM retry_pending GROUP BY group_id, reason) x" },
    { "bulletins",
      "SELECT COALESCE(json_agg(x ORDER BY x.day DESC), '[]') FROM ("
      " SELECT b.day, b.state, b.trigger, b.attempts, b.last_reason, b.deadline_at,"
      " b.finished_at, (SELECT COALESCE(json_agg(json_build_object('attempt', a.attempt,"
      "  'source', a.source, 'at', a.at, 'reason', a.reason, 'error', left(a.error, 300))"
      "  ORDER BY a.attempt, a.at), '[]') FROM bulletin_attempts a WHERE a.day = b.day)"
      "  AS failures,"
      " (SELECT json_object_agg(status, n) FROM (SELECT status, count(*) AS n"
      "  FROM deliveries d WHERE d.message_key = 'day:' || to_char(b.day, 'YYYY-MM-DD')"
      "  GROUP BY status) s) AS deliveries"
      " FROM bulletins b ORDER BY b.day DESC LIMIT 3) x" },
};

/* GET /api/db */
static void api_db(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct web *w = ctx;
    PGconn *conn = NULL;
    json_t *o = NULL;
    char err[512];

    (void)req;
    if (w->db_url == NULL) {
        http_error(res, 503, "DATABASE_URL is not set (nor in .run/env)");
        return;
    }
    if ((conn = db_connect(w->db_url, NULL, 0, err, sizeof(err))) == NULL) {
        http_error(res, 503, "database unavailable: %s", err);
        return;
    }
    o = json_object();
    for (size_t i = 0; i < sizeof(db_views) / sizeof(db_views[0]); i++) {
        PGresult *r = db_query(conn, db_views[i].sql, 0, NULL, NULL, err, sizeof(err));
        json_t *v = r != NULL && PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, NULL)
                                                    : NULL;

        json_object_set_new(o, db_views[i].name,
                            v != NULL ? v : json_pack("{s:s}", "error", err));
        PQclear(r);
    }
    http_json(res, 200, o);
    PQfinish(conn);
}

static const http_route_t routes[] = {
    { "GET", "/", page },
    { "GET", "/api/topics", api_topics },
    { "GET", "/api/groups", api_groups },
    { "GET", "/api/dlq", api_dlq },
    { "POST", "/api/dlq/replay", api_replay },
    { "GET", "/api/db", api_db },
    { "GET", "/api/trace", api_trace },
};

int cmd_web(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "port", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct web w = { NULL, NULL };
    http_server_t *srv = NULL;
    long long port = WEB_PORT_DEFAULT;
    char errstr[512], *end;
    int opt, status = 1;

    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            errno = 0;
            port = strtoll(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || port < 0 || port > 65535) {
                fprintf(stderr, "dozenctl web: --port must be 0..65535 (got '%s')\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            bad_option("web", opt, argv);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dozenctl web: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    w.token = find_setting("ADMIN_TOKEN", errstr, sizeof(errstr));
    if (w.token == NULL)
        fprintf(stderr, "dozenctl web: %s: replays are refused (read-only console)\n", errstr);
    w.db_url = find_setting("DATABASE_URL", errstr, sizeof(errstr));
    if (w.db_url == NULL)
        fprintf(stderr, "dozenctl web: %s: the database views are empty\n", errstr);
    catch_signals();
    srv = http_server_start("127.0.0.1", (int)port, routes, sizeof(routes) / sizeof(routes[0]),
                            NULL, &w, errstr, sizeof(errstr));
    if (srv == NULL) {
        fprintf(stderr, "dozenctl web: %s\n", errstr);
        goto done;
    }
    printf("dozenctl web: http://127.0.0.1:%d/\n", http_server_port(srv));
    fflush(stdout);
    while (!stop_requested) {
        struct timespec ts = { 0, 200 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    status = 0;
done:
    http_server_stop(srv);
    free(w.token);
    free(w.db_url);
    return status;
}
