/* health: Kafka metadata freshness and consumer group membership for /readyz. Contract in
 * health.h. */
#include "health.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <librdkafka/rdkafka.h>

#include "kafka.h"
#include "log.h"
#include "util.h"

/* ---------------------------------------------------------------------------------- */
/* Consumer groups */

struct group_state {
    char name[128];
    int members;        /* live members of this group in this process */
    int assigned;       /* the latest word from the group was an assignment */
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct group_state g_groups[HEALTH_GROUPS_MAX];

/* The entry of group, created when create is set and there is room; NULL otherwise.
 * Called with g_lock held. */
static struct group_state *group_find(const char *group, int create)
{
    struct group_state *free_slot = NULL;
    size_t i;

    for (i = 0; i < HEALTH_GROUPS_MAX; i++) {
        if (g_groups[i].members > 0 && strcmp(g_groups[i].name, group) == 0)
            return &g_groups[i];
        if (g_groups[i].members == 0 && free_slot == NULL)
            free_slot = &g_groups[i];
    }
    if (!create || free_slot == NULL)
        return NULL;
    memset(free_slot, 0, sizeof(*free_slot));
    snprintf(free_slot->name, sizeof(free_slot->name), "%s", group);
    return free_slot;
}

void health_consumer_created(const char *group)
{
    struct group_state *g;

    pthread_mutex_lock(&g_lock);
    g = group_find(group, 1);
    if (g != NULL) {
        if (g->members == 0)
            g->assigned = 0;
        g->members++;
    }
    pthread_mutex_unlock(&g_lock);
}

static void group_set(const char *group, int assigned)
{
    struct group_state *g;

    pthread_mutex_lock(&g_lock);
    g = group_find(group, 0);
    if (g != NULL)
        g->assigned = assigned;
    pthread_mutex_unlock(&g_lock);
}

void health_consumer_assigned(const char *group)
{
    group_set(group, 1);
}

void health_consumer_lost(const char *group)
{
    group_set(group, 0);
}

void health_consumer_closed(const char *group)
{
    struct group_state *g;

    pthread_mutex_lock(&g_lock);
    g = group_find(group, 0);
    if (g != NULL && g->members > 0)
        g->members--;
    pthread_mutex_unlock(&g_lock);
}

int health_consumers_ready(char *errstr, size_t errstr_size)
{
    int ret = 0;
    size_t i;

    pthread_mutex_lock(&g_lock);
    for (i = 0; i < HEALTH_GROUPS_MAX; i++) {
        if (g_groups[i].members > 0 && !g_groups[i].assigned) {
            snprintf(errstr, errstr_size,
                     "consumer group '%s' has no partition assignment (joining or lost)",
                     g_groups[i].name);
            ret = -1;
            break;
        }
    }
    pthread_mutex_unlock(&g_lock);
    return ret;
}

/* ---------------------------------------------------------------------------------- */
/* Kafka metadata */

struct health_kafka {
    rd_kafka_t *rk;
    pthread_t thread;
    pthread_mutex_t lock;        /* guards everything below */
    pthread_cond_t wake;
    int stop;
    int64_t last_ok_ms;          /* util_mono_ms() of the last metadata answer */
    int64_t started_ms;
    char last_error[256];
};

/* The watcher thread: asks for the brokers' metadata (no topics), records when it last
 * got an answer, until stop. The request blocks at most its own timeout. */
static void *watch_main(void *arg)
{
    health_kafka_t *hk = arg;

    pthread_mutex_lock(&hk->lock);
    while (!hk->stop) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err;
        struct timespec until;

        pthread_mutex_unlock(&hk->lock);
        err = rd_kafka_metadata(hk->rk, 0, NULL, &md, HEALTH_METADATA_INTERVAL_MS);
        pthread_mutex_lock(&hk->lock);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR && md != NULL && md->broker_cnt > 0) {
            hk->last_ok_ms = util_mono_ms();
            hk->last_error[0] = '\0';
        } else {
            snprintf(hk->last_error, sizeof(hk->last_error), "%s",
                     err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(err)
                                                       : "no brokers in the metadata");
        }
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        if (hk->stop)
            break;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += HEALTH_METADATA_INTERVAL_MS / 1000;
        until.tv_nsec += (long)(HEALTH_METADATA_INTERVAL_MS % 1000) * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&hk->wake, &hk->lock, &until);
    }
    pthread_mutex_unlock(&hk->lock);
    return NULL;
}

health_kafka_t *health_kafka_start(const char *bootstrap, const char *client_id,
                                   char *errstr, size_t errstr_size)
{
    health_kafka_t *hk = NULL, *ret = NULL;
    rd_kafka_conf_t *conf = NULL;
    pthread_condattr_t ca;
    char rderr[512];
    int sync_ready = 0;

    hk = calloc(1, sizeof(*hk));
    if (hk == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    if (pthread_mutex_init(&hk->lock, NULL) != 0) {
        util_errf(errstr, errstr_size, "cannot create a mutex");
        goto done;
    }
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&hk->lock);
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        goto done;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_cond_init(&hk->wake, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&hk->lock);
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        goto done;
    }
    pthread_condattr_destroy(&ca);
    sync_ready = 1;
    conf = kafka_conf_new(bootstrap, client_id, errstr, errstr_size);
    if (conf == NULL)
        goto done;
    hk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (hk->rk == NULL) {
        util_errf(errstr, errstr_size, "kafka metadata client: %s", rderr);
        goto done;
    }
    conf = NULL; /* rd_kafka_new() took it */
    hk->started_ms = util_mono_ms();
    snprintf(hk->last_error, sizeof(hk->last_error), "no answer yet");
    if (pthread_create(&hk->thread, NULL, &watch_main, hk) != 0) {
        util_errf(errstr, errstr_size, "cannot start the Kafka metadata thread");
        goto done;
    }
    ret = hk;
    hk = NULL; /* ownership passed to the caller */

done:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    if (hk != NULL) {
        if (hk->rk != NULL)
            rd_kafka_destroy(hk->rk);
        if (sync_ready) {
            pthread_cond_destroy(&hk->wake);
            pthread_mutex_destroy(&hk->lock);
        }
        free(hk);
    }
    return ret;
}

int health_kafka_status(health_kafka_t *hk, char *errstr, size_t errstr_size)
{
    int64_t now = util_mono_ms(), age;
    int ret = 0;

    if (hk == NULL)
        return 0;
    pthread_mutex_lock(&hk->lock);
    age = now - (hk->last_ok_ms > 0 ? hk->last_ok_ms : hk->started_ms);
    if (hk->last_ok_ms == 0 || age > HEALTH_METADATA_MAX_AGE_MS) {
        if (hk->last_ok_ms == 0)
            snprintf(errstr, errstr_size, "no Kafka metadata yet: %s", hk->last_error);
        else
            snprintf(errstr, errstr_size, "Kafka metadata is %lld s old: %s",
                     (long long)(age / 1000), hk->last_error);
        ret = -1;
    }
    pthread_mutex_unlock(&hk->lock);
    return ret;
}

void health_kafka_stop(health_kafka_t *hk)
{
    if (hk == NULL)
        return;
    pthread_mutex_lock(&hk->lock);
    hk->stop = 1;
    pthread_cond_signal(&hk->wake);
    pthread_mutex_unlock(&hk->lock);
    pthread_join(hk->thread, NULL);
    rd_kafka_destroy(hk->rk);
    pthread_cond_destroy(&hk->wake);
    pthread_mutex_destroy(&hk->lock);
    free(hk);
}
