/* dozen-migrate: applies the numbered SQL migrations once each, then an optional seed file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cfg.h"
#include "db.h"

#define PROG "dozen-migrate"

/* Session advisory lock (one bigint key) held while migrating, so that two runners started
 * together never apply the same file twice. ASCII "dozenmig". */
#define MIGRATE_LOCK_KEY "7236850788566509927"

#define MAX_FILE_SIZE (1024L * 1024L)   /* refuse migration or seed files above 1 MiB */
#define WAIT_SERVER_MS 30000            /* how long to wait for PostgreSQL at start */
#define RETRY_MS 500

/* Only these names are migrations; anything else in the directory (seed.sql, notes) is
 * left alone. */
#define MIGRATION_RE "^[0-9]{4}_[A-Za-z0-9_]+\\.sql$"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " [--dir DIR] [--seed FILE]\n"
            "  Applies DIR/NNNN_name.sql files not yet recorded in schema_migrations, in\n"
            "  order, each in its own transaction; then runs FILE (every time) if given.\n"
            "environment:\n"
            "  DATABASE_URL    PostgreSQL connection string (required)\n"
            "  MIGRATIONS_DIR  default for --dir (default: migrations)\n");
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads a whole SQL file into a new NUL-terminated buffer the caller frees. Refuses files
 * above MAX_FILE_SIZE and files holding a NUL byte (PQexec would silently stop there).
 * Returns NULL with errstr. */
static char *read_sql_file(const char *path, char *errstr, size_t errstr_size)
{
    struct stat st;
    char *buf = NULL, *ret = NULL;
    size_t len = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "cannot open: %s", strerror(errno));
        goto done;
    }
    if (fstat(fd, &st) != 0) {
        snprintf(errstr, errstr_size, "cannot stat: %s", strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(errstr, errstr_size, "not a regular file");
        goto done;
    }
    if (st.st_size > MAX_FILE_SIZE) {
        snprintf(errstr, errstr_size, "larger than %ld bytes", MAX_FILE_SIZE);
        goto done;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    /* Read up to one byte more than the size seen, to notice a file that grew meanwhile. */
    for (;;) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(errstr, errstr_size, "cannot read: %s", strerror(errno));
            goto done;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > (size_t)st.st_size) {
            snprintf(errstr, errstr_size, "changed while being read");
            goto done;
        }
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        snprintf(errstr, errstr_size, "contains a NUL byte");
        goto done;
    }
    ret = buf;
    buf = NULL;
done:
    if (fd >= 0)
        close(fd);
    free(buf);
    return ret;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Lists the migration files of dir, sorted. *names_out is a new array of new strings (free
 * with free_names). Returns 0, or -1 with errstr. */
static int list_migrations(const char *dir, char ***names_out, size_t *n_out,
                           char *errstr, size_t errstr_size)
{
    regex_t re;
    DIR *d = NULL;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int have_re = 0, ret = -1;

    if (regcomp(&re, MIGRATION_RE, REG_EXTENDED | REG_NOSUB) != 0) {
        snprintf(errstr, errstr_size, "cannot compile the file name pattern");
        goto done;
    }
    have_re = 1;
    d = opendir(dir);
    if (d == NULL) {
        snprintf(errstr, errstr_size, "%s: %s", dir, strerror(errno));
        goto done;
    }
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (regexec(&re, de->d_name, 0, NULL, 0) != 0)
            continue;
        if (n == cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            char **nn = realloc(names, ncap * sizeof(*nn));

            if (nn == NULL)
                goto oom;
            names = nn;
            cap = ncap;
        }
        names[n] = strdup(de->d_name);
        if (names[n] == NULL)
            goto oom;
        n++;
        errno = 0;
    }
    if (errno != 0) {
        snprintf(errstr, errstr_size, "%s: %s", dir, strerror(errno));
        goto done;
    }
    if (n > 1)
        qsort(names, n, sizeof(*names), cmp_str);
    *names_out = names;
    *n_out = n;
    names = NULL;
    n = 0;
    ret = 0;
    goto done;
oom:
    snprintf(errstr, errstr_size, "out of memory");
done:
    free_names(names, n);
    if (d != NULL)
        closedir(d);
    if (have_re)
        regfree(&re);
    return ret;
}

/* Waits for the server to accept connections (up to WAIT_SERVER_MS), then connects.
 * Returns a new connection, or NULL with errstr. */
static PGconn *connect_waiting(const char *url, char *errstr, size_t errstr_size)
{
    const char *keys[] = { "connect_timeout", "dbname", NULL };
    const char *vals[] = { "5", url, NULL };
    int64_t deadline = mono_ms() + WAIT_SERVER_MS;
    int said_waiting = 0;
    PQconninfoOption *opts;
    char *perr = NULL;

    /* A string that does not parse would otherwise be taken for a database name. */
    opts = PQconninfoParse(url, &perr);
    if (opts == NULL) {
        const char *m = perr != NULL ? perr : "out of memory";
        size_t len = strlen(m);

        while (len > 0 && m[len - 1] == '\n')
            len--;
        snprintf(errstr, errstr_size, "bad connection string: %.*s", (int)len, m);
        PQfreemem(perr);
        return NULL;
    }
    PQconninfoFree(opts);

    for (;;) {
        PGPing p = PQpingParams(keys, vals, 1);

        if (p == PQPING_OK)
            break;
        if (p == PQPING_NO_ATTEMPT) {
            /* Bad parameters: connecting reports why. */
            return db_connect(url, NULL, 0, errstr, errstr_size);
        }
        if (mono_ms() >= deadline) {
            snprintf(errstr, errstr_size, "PostgreSQL did not accept connections within %d s",
                     WAIT_SERVER_MS / 1000);
            return NULL;
        }
        if (!said_waiting) {
            fprintf(stderr, PROG ": waiting for PostgreSQL\n");
            said_waiting = 1;
        }
        usleep(RETRY_MS * 1000);
    }
    /* The server is up: a failure now (password, missing database) will not fix itself. */
    return db_connect(url, NULL, 0, errstr, errstr_size);
}

/* Runs a parameterless command and reports its error on stderr. Returns 0 or -1. */
static int run(PGconn *conn, const char *sql, const char *what)
{
    char err[512];
    PGresult *res = db_query(conn, sql, 0, NULL, NULL, err, sizeof(err));

    if (res == NULL) {
        fprintf(stderr, PROG ": %s: %s\n", what, err);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Runs the text of one trusted SQL file inside a transaction the caller opened. The files
 * come from the repository, never from a request: PQexec is used because a migration holds
 * many statements, which a parameterised call cannot carry. Returns 0, or -1 after printing
 * the server's error naming the file. */
static int run_file_text(PGconn *conn, const char *name, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int ret = -1;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        const char *msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(conn);
        size_t len = strlen(msg);

        while (len > 0 && msg[len - 1] == '\n')
            len--;
        fprintf(stderr, PROG ": %s: %.*s\n", name, (int)len, msg);
        goto done;
    }
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        /* A COMMIT or ROLLBACK inside the file breaks the one-file-one-transaction rule:
         * the version is not recorded, and the operator has to look at what was kept. */
        fprintf(stderr, PROG ": %s: the file ended the transaction itself (COMMIT or "
                "ROLLBACK inside it): part of it may be committed; remove the transaction "
                "control and check the schema\n", name);
        goto done;
    }
    ret = 0;
done:
    PQclear(res);
    return ret;
}

/* Applies one migration file if its version is not recorded yet. Returns 1 when applied,
 * 0 when already there, -1 after printing the error. */
static int apply_one(PGconn *conn, const char *dir, const char *file)
{
    char path[4096], version[256], err[512];
    const char *params[1];
    char *sql = NULL;
    PGresult *res = NULL;
    size_t len = strlen(file);
    int n, ret = -1;

    /* file matched MIGRATION_RE, so it ends in ".sql" */
    if (len - 4 >= sizeof(version)) {
        fprintf(stderr, PROG ": %s: file name too long\n", file);
        goto done;
    }
    memcpy(version, file, len - 4);
    version[len - 4] = '\0';
    n = snprintf(path, sizeof(path), "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        fprintf(stderr, PROG ": %s: path too long\n", file);
        goto done;
    }

    if (run(conn, "BEGIN", file) != 0)
        goto done;
    params[0] = version;
    res = db_query(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params,
                   NULL, err, sizeof(err));
    if (res == NULL) {
        fprintf(stderr, PROG ": %s: %s\n", file, err);
        goto done;
    }
    if (PQntuples(res) > 0) {
        ret = 0;
        goto done;
    }
    PQclear(res);
    res = NULL;

    sql = read_sql_file(path, err, sizeof(err));
    if (sql == NULL) {
        fprintf(stderr, PROG ": %s: %s\n", path, err);
        goto done;
    }
    if (run_file_text(conn, file, sql) != 0)
        goto done;
    res = db_query(conn, "INSERT INTO schema_migrations (version) VALUES ($1)", 1, params,
                   NULL, err, sizeof(err));
    if (res == NULL) {
        fprintf(stderr, PROG ": %s: %s\n", file, err);
        goto done;
    }
    if (db_commit(conn, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s: %s\n", file, err);
        goto done;
    }
    printf("applied %s\n", version);
    ret = 1;
done:
    PQclear(res);
    free(sql);
    db_rollback(conn); /* ends the transaction if anything above failed or found it done */
    return ret;
}

/* Runs the seed file in its own transaction. Returns 0, or -1 after printing the error. */
static int run_seed(PGconn *conn, const char *path)
{
    char err[512];
    char *sql = NULL;
    int ret = -1;

    sql = read_sql_file(path, err, sizeof(err));
    if (sql == NULL) {
        fprintf(stderr, PROG ": %s: %s\n", path, err);
        goto done;
    }
    if (run(conn, "BEGIN", path) != 0 || run_file_text(conn, path, sql) != 0)
        goto done;
    if (db_commit(conn, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s: %s\n", path, err);
        goto done;
    }
    printf("seeded %s\n", path);
    ret = 0;
done:
    free(sql);
    db_rollback(conn);
    return ret;
}

static int count_applied(PGconn *conn, long *out)
{
    char err[512];
    PGresult *res;
    char *end;

    res = db_query(conn, "SELECT count(*) FROM schema_migrations", 0, NULL, NULL,
                   err, sizeof(err));
    if (res == NULL || PQntuples(res) != 1) {
        fprintf(stderr, PROG ": counting migrations: %s\n", res == NULL ? err : "no row");
        PQclear(res);
        return -1;
    }
    errno = 0;
    *out = strtol(PQgetvalue(res, 0, 0), &end, 10);
    if (errno != 0 || *end != '\0' || *out < 0)
        *out = -1;
    PQclear(res);
    return 0;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *dir = NULL, *seed = NULL;
    char err[512];
    char **names = NULL;
    size_t nnames = 0, i;
    PGconn *conn = NULL;
    int applied = 0, ret = 1;
    long total;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (cfg_str("MIGRATIONS_DIR", "migrations", &dir, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    for (i = 1; i < (size_t)argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < (size_t)argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < (size_t)argc) {
            seed = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (cfg_str("DATABASE_URL", NULL, &url, err, sizeof(err)) != 0) {
        if (strstr(err, " is required") == NULL) /* DATABASE_URL_FILE could not be read */
            fprintf(stderr, PROG ": %s\n", err);
        else
            fprintf(stderr, PROG ": DATABASE_URL is not set (a PostgreSQL connection string "
                    "such as postgresql://dozen@127.0.0.1:5432/dozen)\n");
        return 1;
    }
    /* List first: a wrong directory is reported without waiting for the server. */
    if (list_migrations(dir, &names, &nnames, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": migrations directory %s\n", err);
        goto done;
    }

    conn = connect_waiting(url, err, sizeof(err));
    if (conn == NULL) {
        fprintf(stderr, PROG ": DATABASE_URL: %s\n", err);
        goto done;
    }
    /* Released when the session ends. */
    if (run(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "taking the migration lock")
            != 0 ||
        run(conn, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  "version text PRIMARY KEY, "
                  "applied_at timestamptz NOT NULL DEFAULT now())",
            "creating schema_migrations") != 0)
        goto done;

    for (i = 0; i < nnames; i++) {
        int r = apply_one(conn, dir, names[i]);

        if (r < 0)
            goto done;
        applied += r;
    }
    if (applied == 0) {
        if (count_applied(conn, &total) != 0)
            goto done;
        printf("migrations up to date (%ld applied)\n", total);
    }
    if (seed != NULL && run_seed(conn, seed) != 0)
        goto done;
    ret = 0;
done:
    free_names(names, nnames);
    PQfinish(conn);
    return ret;
}
