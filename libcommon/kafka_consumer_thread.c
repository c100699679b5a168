/* kafka_consumer_thread: a consumer loop (kafka_consumer_run, or a service's own) on a
 * thread of its own, for services that also serve HTTP (kafka_consumer.h). */
#include "kafka_consumer.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

struct kafka_consumer {
    kafka_consumer_loop_fn loop;
    void *ctx;
    const char *name;
    pthread_t thread;
    volatile int stop;
    volatile int failed;
};

static void *consumer_thread(void *arg)
{
    kafka_consumer_t *c = arg;
    char err[512];

    if (c->loop(c->ctx, &c->stop, err, sizeof(err)) != 0) {
        log_error("kafka_consumer_failed group=%s error=%s", c->name, LOG_Q(err));
        c->failed = 1;
    }
    return NULL;
}

kafka_consumer_t *kafka_consumer_spawn(kafka_consumer_loop_fn loop, void *ctx,
                                       const char *name, char *errstr, size_t errstr_size)
{
    kafka_consumer_t *c = calloc(1, sizeof(*c));
    int err;

    if (c == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->loop = loop;
    c->ctx = ctx;
    c->name = name;
    err = pthread_create(&c->thread, NULL, consumer_thread, c);
    if (err != 0) {
        util_errf(errstr, errstr_size, "pthread_create: %s", strerror(err));
        free(c);
        return NULL;
    }
    return c;
}

/* kafka_consumer_run as a kafka_consumer_loop_fn. */
static int run_loop(void *ctx, const volatile int *stop, char *errstr, size_t errstr_size)
{
    return kafka_consumer_run(ctx, stop, errstr, errstr_size);
}

kafka_consumer_t *kafka_consumer_start(const kafka_consumer_opts_t *opts,
                                       char *errstr, size_t errstr_size)
{
    if (opts == NULL) {
        util_errf(errstr, errstr_size, "kafka consumer: bad options");
        return NULL;
    }
    return kafka_consumer_spawn(run_loop, (void *)opts, opts->group, errstr, errstr_size);
}

int kafka_consumer_failed(kafka_consumer_t *c)
{
    return c != NULL && c->failed;
}

void kafka_consumer_stop(kafka_consumer_t *c)
{
    if (c == NULL)
        return;
    c->stop = 1;
    pthread_join(c->thread, NULL);
    free(c);
}
