/* devbroker: the embedded development broker, librdkafka's in-memory mock cluster with the
 * project's topics, listening on 127.0.0.1 until SIGTERM or SIGINT. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "log.h"
#include "topics.h"
#include "util.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: devbroker [--addr-file PATH] [--skip-topic NAME]\n"
            "\n"
            "Runs an in-memory Kafka broker (librdkafka's mock cluster) on 127.0.0.1 with\n"
            "the project's topics. Prints its bootstrap address as the only line on stdout\n"
            "and, with --addr-file, also writes it to PATH (atomically; removed again on\n"
            "exit). Stops on SIGTERM or SIGINT. Data lives in memory only.\n"
            "--skip-topic NAME leaves one declared topic out (for tests of a missing topic).\n");
}

/* Writes "addr\n" to path atomically: a reader sees either no file or the whole line.
 * Returns 0, or -1 with errstr. */
static int write_addr_file(const char *path, const char *addr, char *errstr,
                           size_t errstr_size)
{
    int ret = -1;
    int fd = -1;
    char tmp[4096];
    size_t len = strlen(addr), off = 0;
    int n;

    n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        util_errf(errstr, errstr_size, "%s: path too long", path);
        goto done;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        util_errf(errstr, errstr_size, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    while (off <= len) {
        /* The address, then its newline, without building another buffer. */
        const char *p = off < len ? addr + off : "\n";
        size_t want = off < len ? len - off : 1;
        ssize_t w = write(fd, p, want);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            util_errf(errstr, errstr_size, "%s: %s", tmp, strerror(errno));
            goto done;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        util_errf(errstr, errstr_size, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    n = close(fd);
    fd = -1; /* closed even when close() reports an error */
    if (n != 0) {
        util_errf(errstr, errstr_size, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        util_errf(errstr, errstr_size, "rename %s: %s", path, strerror(errno));
        goto done;
    }
    ret = 0;
done:
    if (fd >= 0)
        close(fd);
    if (ret != 0)
        unlink(tmp);
    return ret;
}

/* librdkafka's (and the mock brokers') log lines, routed into our log module. */
static void rdkafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    char msg[1024];
    size_t i;

    (void)rk;
    /* A double quote inside would end the quoted value early. */
    for (i = 0; buf[i] != '\0' && i + 1 < sizeof(msg); i++)
        msg[i] = buf[i] == '"' ? '\'' : buf[i];
    msg[i] = '\0';
    log_msg(level <= 3 ? LOG_LEVEL_ERROR : level == 4 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO,
            "rdkafka fac=%s msg=\"%s\"", fac != NULL ? fac : "-", msg);
}

/* Sets TCP_NODELAY on the mock brokers' listening sockets, whose accepted connections
 * inherit it (Linux). librdkafka sends one ProduceRequest per partition; with Nagle's
 * algorithm on, the mock's third small response in a row waited for the client's delayed
 * ACK, 40 ms: a relay round of three or more partitions took 43-50 ms instead of under 1.
 * librdkafka has no setting for the mock's sockets, so they are found among this process's
 * descriptors (the only listening ones here are the mock's). Returns how many were set. */
static int mock_listeners_nodelay(void)
{
    struct rlimit rl;
    int fd, max, n = 0;

    max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
    for (fd = 3; fd < max; fd++) {
        int listening = 0, one = 1;
        socklen_t len = sizeof(listening);

        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening)
            continue;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0)
            n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    int status = 1;
    const char *addr_file = NULL;
    const char *skip_topic = NULL;
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mcluster = NULL;
    const char *addr;
    char errstr[512];
    sigset_t sigs;
    int i, sig = 0;
    size_t t;

    log_init("devbroker");
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--addr-file") == 0 && i + 1 < argc &&
                   argv[i + 1][0] != '\0') {
            addr_file = argv[++i];
        } else if (strncmp(argv[i], "--addr-file=", 12) == 0 && argv[i][12] != '\0') {
            addr_file = argv[i] + 12;
        } else if (strcmp(argv[i], "--skip-topic") == 0 && i + 1 < argc &&
                   topics_find(argv[i + 1]) != NULL) {
            skip_topic = argv[++i];
        } else {
            fprintf(stderr, "devbroker: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    /* Blocked before librdkafka starts any thread, so every thread inherits the mask and
     * the signals wait for sigwait() below instead of killing the process. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0) {
        log_error("devbroker_failed step=sigmask");
        goto done;
    }

    /* The handle only anchors the mock cluster: it has no brokers of its own. */
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, rdkafka_log_cb);
    /* Warnings and errors only: the anchor handle's notice that it has no
     * bootstrap.servers is expected here and would only mislead. */
    if (rd_kafka_conf_set(conf, "client.id", "devbroker", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
        log_error("devbroker_failed step=conf error=%s", LOG_Q(errstr));
        goto done;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        log_error("devbroker_failed step=rd_kafka_new error=%s", LOG_Q(errstr));
        goto done;
    }
    conf = NULL; /* rd_kafka_new() took it */

    mcluster = rd_kafka_mock_cluster_new(rk, 1);
    if (mcluster == NULL) {
        log_error("devbroker_failed step=mock_cluster_new");
        goto done;
    }
    for (t = 0; t < topics_count; t++) {
        rd_kafka_resp_err_t err;

        if (skip_topic != NULL && strcmp(skip_topic, topics_all[t].name) == 0)
            continue;
        err = rd_kafka_mock_topic_create(
            mcluster, topics_all[t].name, topics_all[t].partitions,
            topics_all[t].replication_factor);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_error("devbroker_failed step=topic_create topic=%s err=%s",
                      topics_all[t].name, rd_kafka_err2name(err));
            goto done;
        }
    }

    if (mock_listeners_nodelay() == 0)
        log_warn("devbroker_nagle_on reason=\"no listening socket found: responses may "
                 "wait 40 ms for delayed ACKs\"");
    addr = rd_kafka_mock_cluster_bootstraps(mcluster);
    if (addr_file != NULL && write_addr_file(addr_file, addr, errstr, sizeof(errstr)) != 0) {
        log_error("devbroker_failed step=addr_file error=%s", LOG_Q(errstr));
        goto done;
    }
    printf("%s\n", addr);
    if (fflush(stdout) != 0) {
        log_error("devbroker_failed step=stdout error=%s", LOG_Q(strerror(errno)));
        goto done;
    }
    log_info("devbroker_ready bootstrap=%s topics=%zu", addr, topics_count - (skip_topic != NULL));

    for (;;) {
        int err = sigwait(&sigs, &sig);

        if (err == 0)
            break;
        if (err != EINTR) {
            log_error("devbroker_failed step=sigwait error=%s", LOG_Q(strerror(err)));
            goto done;
        }
    }
    log_info("devbroker_stopping signal=%d", sig);
    /* The address is dead from now on: a script waiting for the file of the next run must
     * not read this one. */
    if (addr_file != NULL && unlink(addr_file) != 0 && errno != ENOENT)
        log_warn("devbroker_unlink_failed path=%s error=%s", addr_file, LOG_Q(strerror(errno)));
    status = 0;

done:
    if (mcluster != NULL)
        rd_kafka_mock_cluster_destroy(mcluster);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    return status;
}
