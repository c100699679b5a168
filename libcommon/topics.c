/* topics: the one declaration of the project's Kafka topics, used by every path. */
#include "topics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "events.h"
#include "kafka.h"
#include "log.h"
#include "retry.h"
#include "util.h"

/* Six partitions for the keyed business topics (per-SKU ordering, room for six consumers
 * per group); three for the low-volume retry and dead-letter topics. Replication factor 1
 * suits the single-broker dev and compose set-ups. Dead letters are kept 14 days so an
 * operator can inspect and replay them; everything else uses the broker's retention. */
const topic_spec_t topics_all[] = {
    { TOPIC_ORDERS,            6, 1, -1LL,         "delete" },
    { TOPIC_STOCK_DEPLETED,    6, 1, -1LL,         "delete" },
    { TOPIC_STOCK_REPLENISHED, 6, 1, -1LL,         "delete" },
    /* The notifier's daily bulletin runs (key: the local date), so that a run that must
     * wait for the feed is retried through the retry service like any record. */
    { TOPIC_BULLETINS,         3, 1, 2592000000LL, "delete" },
    { "retry",             3, 1, -1LL,         "delete" },
    { "dead-letter",       3, 1, 1209600000LL, "delete" },
    /* Redeliveries for one consumer group each (retry.<group>), written by the retry
     * service when a record is due and by `dozenctl dlq replay`. */
    { "retry.stock",       3, 1, -1LL,         "delete" },
    { "retry.factory",     3, 1, -1LL,         "delete" },
    { "retry.notifier",    3, 1, -1LL,         "delete" },
};

const size_t topics_count = sizeof(topics_all) / sizeof(topics_all[0]);

#define TOPICS_ENSURE_MAX 64  /* topics one topics_ensure call can check */

const topic_spec_t *topics_find(const char *name)
{
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; i < topics_count; i++) {
        if (strcmp(topics_all[i].name, name) == 0)
            return &topics_all[i];
    }
    return NULL;
}

/* Returns 1 if md lists topic name without error, else 0. */
static int metadata_has(const struct rd_kafka_metadata *md, const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, name) == 0)
            return md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                   md->topics[i].partition_cnt > 0;
    }
    return 0;
}

/* Fills missing[] with the specs among wanted[0..nwanted) that md lacks; returns how many. */
static size_t find_missing(const struct rd_kafka_metadata *md, const topic_spec_t **wanted,
                           size_t nwanted, const topic_spec_t **missing)
{
    size_t n = 0;

    for (size_t i = 0; i < nwanted; i++) {
        if (!metadata_has(md, wanted[i]->name))
            missing[n++] = wanted[i];
    }
    return n;
}

int topics_replication(int *replication_factor, int *min_insync_replicas, char *errstr,
                       size_t errstr_size)
{
    long long rf, isr;

    if (cfg_int("TOPIC_REPLICATION_FACTOR", 1, 1, TOPICS_REPLICATION_MAX, &rf, errstr,
                errstr_size) != 0 ||
        cfg_int("TOPIC_MIN_INSYNC_REPLICAS", 1, 1, TOPICS_REPLICATION_MAX, &isr, errstr,
                errstr_size) != 0)
        return -1;
    if (isr > rf) {
        /* The topic would refuse every acks=all write: a set-up error, not a fault. */
        util_errf(errstr, errstr_size, "TOPIC_MIN_INSYNC_REPLICAS (%lld) must not exceed "
                  "TOPIC_REPLICATION_FACTOR (%lld)", isr, rf);
        return -1;
    }
    *replication_factor = (int)rf;
    *min_insync_replicas = (int)isr;
    return 0;
}

/* Sends one CreateTopics request for specs and waits for its result. Topics that exist
 * already count as success. Every topic gets the deployment's replication factor and
 * min.insync.replicas (topics_replication). Returns 0, or -1 with errstr naming the first
 * failure. */
static int create_topics(rd_kafka_t *rk, const topic_spec_t **specs, size_t n,
                         int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_NewTopic_t *nts[16] = { 0 };
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_CreateTopics_result_t *res;
    const rd_kafka_topic_result_t **results;
    char rderr[256], retention[32], isr_text[16];
    size_t i, nres = 0;
    int ret = -1, rf, isr;

    if (n > sizeof(nts) / sizeof(nts[0])) {
        util_errf(errstr, errstr_size, "too many topics to create at once");
        return -1;
    }
    if (topics_replication(&rf, &isr, errstr, errstr_size) != 0)
        return -1;
    snprintf(isr_text, sizeof(isr_text), "%d", isr);
    for (i = 0; i < n; i++) {
        /* The declared factor (1) is the floor; a replicated cluster asks for more. */
        nts[i] = rd_kafka_NewTopic_new(specs[i]->name, specs[i]->partitions,
                                       rf > specs[i]->replication_factor
                                           ? rf : specs[i]->replication_factor,
                                       rderr, sizeof(rderr));
        if (nts[i] == NULL) {
            util_errf(errstr, errstr_size, "topic '%s': %s", specs[i]->name, rderr);
            goto done;
        }
        if (specs[i]->retention_ms >= 0) {
            snprintf(retention, sizeof(retention), "%lld", specs[i]->retention_ms);
            rd_kafka_NewTopic_set_config(nts[i], "retention.ms", retention);
        }
        rd_kafka_NewTopic_set_config(nts[i], "cleanup.policy", specs[i]->cleanup_policy);
        rd_kafka_NewTopic_set_config(nts[i], "min.insync.replicas", isr_text);
    }
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (opts == NULL ||
        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, rderr, sizeof(rderr)) ||
        rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, rderr, sizeof(rderr))) {
        util_errf(errstr, errstr_size, "admin options: %s", opts ? rderr : "out of memory");
        goto done;
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nts, n, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (ev == NULL) {
        util_errf(errstr, errstr_size, "topic '%s' is missing and CreateTopics timed out",
                  specs[0]->name);
        goto done;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "topic '%s' is missing and could not be created: %s",
                  specs[0]->name, rd_kafka_event_error_string(ev));
        goto done;
    }
    res = rd_kafka_event_CreateTopics_result(ev);
    results = res ? rd_kafka_CreateTopics_result_topics(res, &nres) : NULL;
    for (i = 0; i < nres; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
        const char *msg = rd_kafka_topic_result_error_string(results[i]);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_info("topic_created topic=%s", rd_kafka_topic_result_name(results[i]));
        } else if (err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            util_errf(errstr, errstr_size, "topic '%s' is missing and could not be created: %s",
                      rd_kafka_topic_result_name(results[i]),
                      msg ? msg : rd_kafka_err2str(err));
            goto done;
        }
    }
    ret = 0;
done:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    for (i = 0; i < n; i++) {
        if (nts[i] != NULL)
            rd_kafka_NewTopic_destroy(nts[i]);
    }
    return ret;
}

/* Returns a new client for topic administration (the caller destroys it), or NULL with
 * errstr. */
static rd_kafka_t *admin_client(const char *bootstrap, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    char rderr[256];

    conf = kafka_conf_new(bootstrap, "dozen-topics", errstr, errstr_size);
    if (conf == NULL)
        return NULL;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        util_errf(errstr, errstr_size, "%s", rderr);
    }
    return rk;
}

/* Makes sure the topics wanted[0..nwanted) (at most TOPICS_ENSURE_MAX) exist: see
 * topics_ensure. */
static int ensure_specs(const char *bootstrap, const topic_spec_t **wanted, size_t nwanted,
                        int timeout_ms, char *errstr, size_t errstr_size)
{
    const topic_spec_t *missing[TOPICS_ENSURE_MAX];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_resp_err_t err;
    int64_t deadline = util_mono_ms() + timeout_ms;
    size_t n;
    int created = 0, ret = -1;

    rk = admin_client(bootstrap, errstr, errstr_size);
    if (rk == NULL)
        return -1;

    for (;;) {
        int left = (int)(deadline - util_mono_ms());

        /* All topics: asking for named ones could auto-create them with broker defaults. */
        err = rd_kafka_metadata(rk, 1, NULL, &md, left > 1000 ? left : 1000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            util_errf(errstr, errstr_size, "Kafka at %s did not answer: %s", bootstrap,
                      rd_kafka_err2str(err));
            goto done;
        }
        n = find_missing(md, wanted, nwanted, missing);
        rd_kafka_metadata_destroy(md);
        md = NULL;
        if (n == 0)
            break;
        if (!created) {
            if (create_topics(rk, missing, n, left > 1000 ? left : 1000, errstr,
                              errstr_size) != 0)
                goto done;
            created = 1;
        } else if (util_mono_ms() > deadline) {
            util_errf(errstr, errstr_size, "topic '%s' was created but does not appear in "
                      "the cluster's metadata", missing[0]->name);
            goto done;
        } else {
            util_sleep_ms(200, NULL); /* creation reaches every broker a little later */
        }
    }
    ret = 0;
done:
    rd_kafka_destroy(rk);
    return ret;
}

int topics_ensure(const char *bootstrap, const char *const *names, int timeout_ms,
                  char *errstr, size_t errstr_size)
{
    const topic_spec_t *wanted[TOPICS_ENSURE_MAX];
    size_t n = 0;

    for (size_t i = 0; i < topics_count && n < TOPICS_ENSURE_MAX; i++) {
        int want = names == NULL;

        for (size_t j = 0; names != NULL && names[j] != NULL; j++)
            want |= strcmp(names[j], topics_all[i].name) == 0;
        if (want)
            wanted[n++] = &topics_all[i];
    }
    return ensure_specs(bootstrap, wanted, n, timeout_ms, errstr, errstr_size);
}

/* Asks the cluster for topic name alone, which makes a broker that creates topics on use
 * (auto.create.topics.enable, the dev broker) create it. Returns 0 when it then exists, or
 * -1 with errstr. */
static int create_on_use(const char *bootstrap, const char *name, int timeout_ms,
                         char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int ret = -1;

    rk = admin_client(bootstrap, errstr, errstr_size);
    if (rk == NULL)
        return -1;
    rkt = rd_kafka_topic_new(rk, name, NULL);
    if (rkt == NULL) {
        util_errf(errstr, errstr_size, "topic '%s': %s", name,
                  rd_kafka_err2str(rd_kafka_last_error()));
        goto done;
    }
    err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || !metadata_has(md, name)) {
        util_errf(errstr, errstr_size, "topic '%s' is missing and could not be created: %s",
                  name, err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(err)
                                                          : "not created on use");
        goto done;
    }
    log_info("topic_created topic=%s how=on_use", name);
    ret = 0;
done:
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return ret;
}

int topics_ensure_redelivery(const char *bootstrap, const char *group, int timeout_ms,
                             char *errstr, size_t errstr_size)
{
    /* The same as the retry.<group> rows of topics_all. */
    topic_spec_t spec = { NULL, 3, 1, -1LL, "delete" };
    const topic_spec_t *wanted[1] = { &spec };
    char name[RETRY_GROUP_MAX + sizeof(RETRY_REDELIVERY_PREFIX)];

    if (!retry_group_valid(group) || retry_redelivery_topic(group, name, sizeof(name)) != 0) {
        util_errf(errstr, errstr_size, "consumer group '%s' is not 1 to %d characters of "
                  "letters, digits, '.', '_' or '-'", group != NULL ? group : "",
                  RETRY_GROUP_MAX);
        return -1;
    }
    spec.name = name;
    if (topics_find(name) != NULL)
        wanted[0] = topics_find(name); /* declared: exactly as declared */
    if (ensure_specs(bootstrap, wanted, 1, timeout_ms, errstr, errstr_size) == 0)
        return 0;
    /* A cluster that refuses CreateTopics (the dev broker) may still create it on use. */
    return create_on_use(bootstrap, name, timeout_ms, errstr, errstr_size);
}

int topics_describe(rd_kafka_t *rk, const char *const *names, size_t n, topic_config_t *out,
                    int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_ConfigResource_t **crs = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_DescribeConfigs_result_t *res;
    const rd_kafka_ConfigResource_t **rres;
    char rderr[256];
    size_t i, nres = 0;
    int ret = -1;

    memset(out, 0, n * sizeof(*out));
    if (n == 0)
        return 0;
    crs = calloc(n, sizeof(*crs));
    if (crs == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (i = 0; i < n; i++)
        crs[i] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, names[i]);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    if (opts == NULL ||
        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, rderr, sizeof(rderr))) {
        util_errf(errstr, errstr_size, "admin options: %s", opts ? rderr : "out of memory");
        goto done;
    }
    q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, crs, n, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (ev == NULL) {
        util_errf(errstr, errstr_size, "DescribeConfigs timed out");
        goto done;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "DescribeConfigs: %s", rd_kafka_event_error_string(ev));
        goto done;
    }
    res = rd_kafka_event_DescribeConfigs_result(ev);
    rres = res ? rd_kafka_DescribeConfigs_result_resources(res, &nres) : NULL;
    for (i = 0; i < nres; i++) {
        const rd_kafka_ConfigEntry_t **entries;
        const char *name = rd_kafka_ConfigResource_name(rres[i]);
        size_t k, nent = 0, slot;

        for (slot = 0; slot < n && strcmp(names[slot], name) != 0; slot++)
            ;
        if (slot == n || rd_kafka_ConfigResource_error(rres[i]) != RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        entries = rd_kafka_ConfigResource_configs(rres[i], &nent);
        for (k = 0; k < nent; k++) {
            const char *key = rd_kafka_ConfigEntry_name(entries[k]);
            const char *val = rd_kafka_ConfigEntry_value(entries[k]);

            if (val == NULL)
                continue;
            if (strcmp(key, "retention.ms") == 0)
                snprintf(out[slot].retention_ms, sizeof(out[slot].retention_ms), "%s", val);
            else if (strcmp(key, "cleanup.policy") == 0)
                snprintf(out[slot].cleanup_policy, sizeof(out[slot].cleanup_policy), "%s", val);
        }
    }
    ret = 0;
done:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    for (i = 0; i < n; i++)
        rd_kafka_ConfigResource_destroy(crs[i]);
    free(crs);
    return ret;
}

int topics_service_ready(const char *bootstrap, const char *client_id, int wait_ms,
                         char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf;
    int rf, isr;

    /* Producers and consumers are built later, on their own threads: a bad setting must
     * stop the start here, with its name, rather than fail quietly there. */
    if (topics_replication(&rf, &isr, errstr, errstr_size) != 0)
        return -1;
    conf = kafka_conf_new(bootstrap, client_id, errstr, errstr_size);
    if (conf == NULL)
        return -1;
    rd_kafka_conf_destroy(conf);
    return topics_ensure(bootstrap, NULL, wait_ms, errstr, errstr_size);
}
