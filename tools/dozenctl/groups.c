/* dozenctl groups: consumer groups with their members, assignment and per-partition lag,
 * like kafka-consumer-groups --describe. On Apache Kafka through ListGroups, DescribeGroups
 * and OffsetFetch; on the dev broker (librdkafka's mock cluster, which has no ListGroups or
 * DescribeGroups) through OffsetFetch for the groups dozen declares, members from the
 * services' own /metrics. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "dozenctl.h"
#include "httpc.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#define ADMIN_TIMEOUT_MS 10000
#define METRICS_TIMEOUT_MS 3000
#define MAX_GROUPS 256

/* One partition of a group: its committed offset (-1: none), the end offset (-1: unknown)
 * and the member it is assigned to ("" when none or unknown). */
struct gpart {
    char topic[256];
    int32_t partition;
    int64_t committed;
    int64_t end;
    char member[256];
};

struct group {
    char name[256];
    char state[32];        /* "?" when the broker cannot say */
    int described;         /* DescribeGroups answered */
    json_t *members;       /* [{client_id, instance_id, host, assignment: ["t/p"]}] */
    struct gpart *parts;
    size_t nparts, cap;
    char error[512];       /* why the offsets could not be read, "" if they could */
};

static const char *admin_error(rd_kafka_event_t *ev, char *buf, size_t size)
{
    if (ev == NULL)
        return "no answer from the broker";
    if (rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    util_errf(buf, size, "%s (%s)", rd_kafka_event_error_string(ev),
              rd_kafka_err2name(rd_kafka_event_error(ev)));
    return buf;
}

/* Runs an admin call that posts its result on a fresh queue and waits for it. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type)
{
    rd_kafka_event_t *ev;

    while ((ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 2000)) != NULL) {
        if (rd_kafka_event_type(ev) == type)
            return ev;
        rd_kafka_event_destroy(ev);
    }
    return NULL;
}

static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op)
{
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, op);
    char errstr[256];

    if (o != NULL)
        rd_kafka_AdminOptions_set_request_timeout(o, ADMIN_TIMEOUT_MS, errstr, sizeof(errstr));
    return o;
}

static int group_cmp(const void *a, const void *b)
{
    return strcmp(((const struct group *)a)->name, ((const struct group *)b)->name);
}

static int gpart_cmp(const void *a, const void *b)
{
    const struct gpart *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);

    return c != 0 ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static struct gpart *group_part(struct group *g, const char *topic, int32_t partition)
{
    size_t i;

    for (i = 0; i < g->nparts; i++) {
        if (g->parts[i].partition == partition && strcmp(g->parts[i].topic, topic) == 0)
            return &g->parts[i];
    }
    if (g->nparts == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        struct gpart *p = realloc(g->parts, cap * sizeof(*p));

        if (p == NULL)
            return NULL;
        g->parts = p;
        g->cap = cap;
    }
    memset(&g->parts[g->nparts], 0, sizeof(g->parts[0]));
    snprintf(g->parts[g->nparts].topic, sizeof(g->parts[0].topic), "%s", topic);
    g->parts[g->nparts].partition = partition;
    g->parts[g->nparts].committed = -1;
    g->parts[g->nparts].end = -1;
    return &g->parts[g->nparts++];
}

/* Every group the cluster knows (ListGroups). Returns the count, or -1 with errstr when the
 * broker cannot list them. */
static int list_groups(rd_kafka_t *rk, struct group *groups, size_t max, char *errstr,
                       size_t errstr_size)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = admin_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    rd_kafka_event_t *ev = NULL;
    const rd_kafka_ConsumerGroupListing_t **valid;
    const rd_kafka_error_t **errors;
    size_t nvalid = 0, nerrors = 0, i, n = 0;
    const char *why;
    char buf[512];
    int ret = -1;

    if (q == NULL || o == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    rd_kafka_ListConsumerGroups(rk, o, q);
    ev = admin_wait(q, RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT);
    if ((why = admin_error(ev, buf, sizeof(buf))) != NULL) {
        util_errf(errstr, errstr_size, "%s", why);
        goto done;
    }
    valid = rd_kafka_ListConsumerGroups_result_valid(
        rd_kafka_event_ListConsumerGroups_result(ev), &nvalid);
    errors = rd_kafka_ListConsumerGroups_result_errors(
        rd_kafka_event_ListConsumerGroups_result(ev), &nerrors);
    if (nvalid == 0 && nerrors > 0) {
        util_errf(errstr, errstr_size, "%s", rd_kafka_error_string(errors[0]));
        goto done;
    }
    for (i = 0; i < nvalid && n < max; i++) {
        snprintf(groups[n].name, sizeof(groups[n].name), "%s",
                 rd_kafka_ConsumerGroupListing_group_id(valid[i]));
        n++;
    }
    ret = (int)n;
done:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (o != NULL)
        rd_kafka_AdminOptions_destroy(o);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    return ret;
}

/* State and members of each group (DescribeGroups). Returns 0, or -1 with errstr. */
static int describe_groups(rd_kafka_t *rk, struct group *groups, size_t n, char *errstr,
                           size_t errstr_size)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *o = admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    rd_kafka_event_t *ev = NULL;
    const char **names = calloc(n + 1, sizeof(*names));
    const rd_kafka_ConsumerGroupDescription_t **descs;
    size_t ndescs = 0, i, j, m;
    const char *why;
    char buf[512];
    int ret = -1;

    if (q == NULL || o == NULL || names == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (i = 0; i < n; i++)
        names[i] = groups[i].name;
    rd_kafka_DescribeConsumerGroups(rk, names, n, o, q);
    ev = admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONSUMERGROUPS_RESULT);
    if ((why = admin_error(ev, buf, sizeof(buf))) != NULL) {
        util_errf(errstr, errstr_size, "%s", why);
        goto done;
    }
    descs = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev), &ndescs);
    for (i = 0; i < ndescs; i++) {
        const char *id = rd_kafka_ConsumerGroupDescription_group_id(descs[i]);
        struct group *g = NULL;

        for (j = 0; j < n && g == NULL; j++) {
            if (strcmp(groups[j].name, id) == 0)
                g = &groups[j];
        }
        if (g == NULL || rd_kafka_ConsumerGroupDescription_error(descs[i]) != NULL)
            continue;
        g->described = 1;
        snprintf(g->state, sizeof(g->state), "%s",
                 rd_kafka_consumer_group_state_name(
                     rd_kafka_ConsumerGroupDescription_state(descs[i])));
        for (m = 0; m < rd_kafka_ConsumerGroupDescription_member_count(descs[i]); m++) {
            const rd_kafka_MemberDescription_t *md =
                rd_kafka_ConsumerGroupDescription_member(descs[i], m);
            const rd_kafka_topic_partition_list_t *tp = rd_kafka_MemberAssignment_partitions(
                rd_kafka_MemberDescription_assignment(md));
            const char *client = rd_kafka_MemberDescription_client_id(md);
            const char *inst = rd_kafka_MemberDescription_group_instance_id(md);
            json_t *assignment = json_array(), *member;
            int k;

            for (k = 0; tp != NULL && k < tp->cnt; k++) {
                struct gpart *p = group_part(g, tp->elems[k].topic, tp->elems[k].partition);
                char where[300];

                snprintf(where, sizeof(where), "%s/%d", tp->elems[k].topic,
                         (int)tp->elems[k].partition);
                json_array_append_new(assignment, json_string(where));
                if (p != NULL)
                    snprintf(p->member, sizeof(p->member), "%s",
                             inst != NULL && inst[0] ? inst : client);
            }
            member = json_pack("{s:s, s:s?, s:s, s:o}", "client_id", client ? client : "",
                               "instance_id", inst,
                               "host", rd_kafka_MemberDescription_host(md) ?
                                           rd_kafka_MemberDescription_host(md) : "",
                               "assignment", assignment);
            if (member != NULL)
                json_array_append_new(g->members, member);
        }
    }
    ret = 0;
done:
    free(names);
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (o != NULL)
        rd_kafka_AdminOptions_destroy(o);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    return ret;
}

/* The committed offsets of one group: OffsetFetch through a consumer handle of that
 * group.id that never subscribes, assigns or commits (so it never joins the group), asked
 * for every partition of every topic of the cluster; the partitions without a committed
 * offset are left out unless the group is assigned them. Works on both brokers (the admin
 * API's ListConsumerGroupOffsets gets no answer from the dev broker). */
static void fetch_offsets(const struct session *ses, struct group *g)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *tp = NULL;
    rd_kafka_resp_err_t err;
    char errstr[512];
    int t, k;

    conf = kafka_conf_new(ses->bootstrap, "dozenctl", errstr, sizeof(errstr));
    if (conf == NULL ||
        kafka_conf_set_forced(conf, "group.id", g->name, errstr, sizeof(errstr)) != 0 ||
        kafka_conf_set_forced(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) != 0 ||
        kafka_conf_set_forced(conf, "enable.auto.offset.store", "false", errstr,
                              sizeof(errstr)) != 0) {
        snprintf(g->error, sizeof(g->error), "%s", errstr);
        goto done;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        snprintf(g->error, sizeof(g->error), "%s", errstr);
        goto done;
    }
    conf = NULL; /* rd_kafka_new() took it */
    tp = rd_kafka_topic_partition_list_new(64);
    for (t = 0; t < ses->md->topic_cnt; t++) {
        const rd_kafka_metadata_topic_t *mt = &ses->md->topics[t];

        if (strncmp(mt->topic, "__", 2) == 0)
            continue;
        for (k = 0; k < mt->partition_cnt; k++)
            rd_kafka_topic_partition_list_add(tp, mt->topic, mt->partitions[k].id);
    }
    err = rd_kafka_committed(rk, tp, ADMIN_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(g->error, sizeof(g->error), "committed offsets: %s", rd_kafka_err2str(err));
        goto done;
    }
    for (k = 0; k < tp->cnt; k++) {
        const rd_kafka_topic_partition_t *e = &tp->elems[k];
        struct gpart *p;
        size_t i;
        int known = 0;

        for (i = 0; i < g->nparts && !known; i++)
            known = g->parts[i].partition == e->partition &&
                    strcmp(g->parts[i].topic, e->topic) == 0;
        if (e->err != RD_KAFKA_RESP_ERR_NO_ERROR || (e->offset < 0 && !known))
            continue;
        p = group_part(g, e->topic, e->partition);
        if (p != NULL && e->offset >= 0)
            p->committed = e->offset;
    }
done:
    if (tp != NULL)
        rd_kafka_topic_partition_list_destroy(tp);
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    if (rk != NULL)
        rd_kafka_destroy(rk);
}

/* A group the dev broker cannot list: each of dozen's default groups and the *_GROUP
 * settings of the environment (or .run/env). */
static size_t declared_groups(struct group *groups, size_t max)
{
    static const char *const names[] = { "stock", "factory", "notifier", "retry" };
    static const char *const settings[] = { "STOCK_GROUP", "FACTORY_GROUP", "NOTIFIER_GROUP",
                                            "RETRY_GROUP" };
    size_t n = 0, i, j;

    for (i = 0; i < 4 && n < max; i++) {
        char errstr[256];
        char *set = find_setting(settings[i], errstr, sizeof(errstr));
        const char *name = set != NULL ? set : names[i];
        int dup = 0;

        for (j = 0; j < n; j++)
            dup |= strcmp(groups[j].name, name) == 0;
        if (!dup)
            snprintf(groups[n++].name, sizeof(groups[0].name), "%s", name);
        free(set);
    }
    return n;
}

/* The members as the services' own metrics show them (the dev broker has no DescribeGroups):
 * every dozen_consumer_position series of the services whose *_URL is known says that
 * this service consumes that partition. */
static void members_from_metrics(struct group *groups, size_t n)
{
    static const char *const urls[] = { "STOCK_URL", "FACTORY_URL", "NOTIFIER_URL",
                                        "RETRY_URL" };
    size_t u;

    for (u = 0; u < 4; u++) {
        char errstr[256], url[1024];
        char *base = find_setting(urls[u], errstr, sizeof(errstr));
        httpc_request_t req = { 0 };
        httpc_result_t res;
        strbuf_t body;
        CURL *curl;
        const char *line;

        if (base == NULL)
            continue;
        snprintf(url, sizeof(url), "%s/metrics", base);
        req.url = url;
        req.timeout_ms = METRICS_TIMEOUT_MS;
        strbuf_init(&body, 4 << 20);
        curl = curl_easy_init();
        if (curl == NULL || httpc_request(curl, &req, &body, &res, errstr, sizeof(errstr)) != 0 ||
            res.status != 200) {
            if (curl != NULL)
                curl_easy_cleanup(curl);
            strbuf_release(&body);
            free(base);
            continue;
        }
        curl_easy_cleanup(curl);
        for (line = body.buf; line != NULL && *line; ) {
            const char *eol = strchr(line, '\n');
            char group[256], topic[256];
            int partition;
            size_t g;

            if (sscanf(line, "dozen_consumer_position{group=\"%255[^\"]\",topic=\"%255[^\"]\","
                             "partition=\"%d\"}", group, topic, &partition) == 3) {
                for (g = 0; g < n; g++) {
                    struct gpart *p;

                    if (strcmp(groups[g].name, group) != 0)
                        continue;
                    p = group_part(&groups[g], topic, partition);
                    if (p != NULL)
                        snprintf(p->member, sizeof(p->member), "%s", base);
                }
            }
            line = eol != NULL ? eol + 1 : NULL;
        }
        strbuf_release(&body);
        free(base);
    }
}

static int64_t part_lag(const struct gpart *p)
{
    if (p->end < 0)
        return -1;
    if (p->committed < 0)
        return p->end; /* nothing committed: everything still to read (earliest) */
    return p->end > p->committed ? p->end - p->committed : 0;
}

static void print_group(const struct group *g)
{
    size_t i, m;

    printf("group=%s state=%s members=", g->name, g->state);
    if (g->described)
        printf("%zu", json_array_size(g->members));
    else
        printf("?");
    printf("\n");
    for (m = 0; m < json_array_size(g->members); m++) {
        json_t *mem = json_array_get(g->members, m), *a = json_object_get(mem, "assignment");
        const char *inst = json_string_value(json_object_get(mem, "instance_id"));

        printf("  member client_id=%s instance_id=%s host=%s partitions=",
               json_string_value(json_object_get(mem, "client_id")), inst ? inst : "-",
               json_string_value(json_object_get(mem, "host")));
        for (i = 0; i < json_array_size(a); i++)
            printf("%s%s", i ? "," : "", json_string_value(json_array_get(a, i)));
        printf("%s\n", json_array_size(a) ? "" : "-");
    }
    if (g->error[0])
        printf("  error=\"%s\"\n", g->error);
    for (i = 0; i < g->nparts; i++) {
        const struct gpart *p = &g->parts[i];
        int64_t lag = part_lag(p);

        printf("  %s/%d committed=", p->topic, (int)p->partition);
        if (p->committed >= 0)
            printf("%lld", (long long)p->committed);
        else
            printf("-");
        printf(" end=");
        if (p->end >= 0)
            printf("%lld", (long long)p->end);
        else
            printf("?");
        printf(" lag=");
        if (lag >= 0)
            printf("%lld", (long long)lag);
        else
            printf("?");
        printf(" member=%s\n", p->member[0] ? p->member : "-");
    }
}

static json_t *group_json(const struct group *g)
{
    json_t *parts = json_array();
    size_t i;

    for (i = 0; i < g->nparts; i++) {
        const struct gpart *p = &g->parts[i];
        int64_t lag = part_lag(p);
        json_t *o = json_pack("{s:s, s:i}", "topic", p->topic, "partition", (int)p->partition);

        json_object_set_new(o, "committed", p->committed >= 0 ? json_integer(p->committed)
                                                               : json_null());
        json_object_set_new(o, "end", p->end >= 0 ? json_integer(p->end) : json_null());
        json_object_set_new(o, "lag", lag >= 0 ? json_integer(lag) : json_null());
        json_object_set_new(o, "member", p->member[0] ? json_string(p->member) : json_null());
        json_array_append_new(parts, o);
    }
    return json_pack("{s:s, s:s, s:O, s:o, s:s?}", "group", g->name, "state", g->state,
                     "members", g->described ? g->members : json_null(), "partitions", parts,
                     "error", g->error[0] ? g->error : NULL);
}

static int parse_lag(const char *s, long long *out)
{
    char *end = NULL;

    errno = 0;
    *out = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *out < 0) {
        fprintf(stderr, "dozenctl groups: --max-lag: '%s' is not a count of records\n", s);
        return -1;
    }
    return 0;
}

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define lsan_disable() __lsan_disable()
#define lsan_enable() __lsan_enable()
#else
#define lsan_disable() ((void)0)
#define lsan_enable() ((void)0)
#endif

/* A handle of its own for the group admin calls (ListGroups, DescribeGroups): a dev broker
 * that has neither leaves librdkafka 2.0's consumer handle unable to close, so these go
 * through a producer handle that is destroyed without waiting. */
static rd_kafka_t *admin_client(const char *bootstrap)
{
    char errstr[512];
    rd_kafka_conf_t *conf = kafka_conf_new(bootstrap, "dozenctl-admin", errstr, sizeof(errstr));
    rd_kafka_t *rk;

    if (conf == NULL) {
        fprintf(stderr, "dozenctl groups: %s\n", errstr);
        return NULL;
    }
    /* librdkafka 2.0.2 loses one block (176 bytes) of a handle it made when that handle's
     * ListConsumerGroups met a broker without ListGroups (the dev broker): not ours to free,
     * so LeakSanitizer is told to ignore what the handle's creation allocates. */
    lsan_disable();
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    lsan_enable();
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "dozenctl groups: %s\n", errstr);
    }
    return rk;
}

/* `dozenctl groups [GROUP] [--max-lag N] [--json]`. */
int cmd_groups(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "max-lag", required_argument, NULL, 'l' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct session ses = { NULL, NULL, NULL };
    rd_kafka_t *admin = NULL;
    struct group *groups = NULL;
    long long max_lag = -1;
    int as_json = 0, opt, status = 1, n = 0, i, over = 0, listed = 1;
    const char *only = NULL;
    char errstr[512];
    json_t *out = NULL;
    size_t p;

    optind = 0;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (parse_lag(optarg, &max_lag) != 0)
                return EXIT_USAGE;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "dozenctl groups: bad option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "dozenctl groups: at most one GROUP\n");
        return EXIT_USAGE;
    }
    if (argc - optind == 1) {
        only = argv[optind];
        if (only[0] == '\0' || strlen(only) >= sizeof(groups[0].name)) {
            fprintf(stderr, "dozenctl groups: GROUP must be 1 to 255 bytes\n");
            return EXIT_USAGE;
        }
    }
    if (session_open(&ses, 0) != 0)
        return 1;
    if ((admin = admin_client(ses.bootstrap)) == NULL)
        goto done;
    groups = calloc(MAX_GROUPS, sizeof(*groups));
    if (groups == NULL) {
        fprintf(stderr, "dozenctl: out of memory\n");
        goto done;
    }
    /* ListGroups first in every case: a broker that cannot list groups (the dev broker)
     * cannot describe them either, and a DescribeGroups sent to it gets no answer. */
    n = list_groups(admin, groups, MAX_GROUPS, errstr, sizeof(errstr));
    if (n < 0) {
        fprintf(stderr, "dozenctl groups: the broker does not list or describe groups (%s; "
                        "the dev broker, librdkafka's mock cluster, has no ListGroups or "
                        "DescribeGroups): state and members are unknown, the partitions a "
                        "service consumes come from its /metrics (dozen_consumer_position)\n",
                errstr);
        n = only != NULL ? 0 : (int)declared_groups(groups, MAX_GROUPS);
        listed = 0;
    }
    if (only != NULL) {
        snprintf(groups[0].name, sizeof(groups[0].name), "%s", only);
        n = 1;
    }
    if (n > 1)
        qsort(groups, (size_t)n, sizeof(*groups), group_cmp);
    for (i = 0; i < n; i++) {
        snprintf(groups[i].state, sizeof(groups[i].state), "?");
        groups[i].members = json_array();
    }
    if (!listed) {
        members_from_metrics(groups, (size_t)n);
    } else if (n > 0 && describe_groups(admin, groups, (size_t)n, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "dozenctl groups: cannot describe the groups: %s\n", errstr);
    }
    for (i = 0; i < n; i++) {
        fetch_offsets(&ses, &groups[i]);
        for (p = 0; p < groups[i].nparts; p++) {
            struct gpart *gp = &groups[i].parts[p];
            int64_t lo, hi;

            if (rd_kafka_query_watermark_offsets(ses.rk, gp->topic, gp->partition, &lo, &hi,
                                                 METADATA_TIMEOUT_MS) ==
                RD_KAFKA_RESP_ERR_NO_ERROR)
                gp->end = hi;
            if (max_lag >= 0 && part_lag(gp) > max_lag)
                over = 1;
        }
        if (groups[i].nparts > 1)
            qsort(groups[i].parts, groups[i].nparts, sizeof(groups[i].parts[0]), gpart_cmp);
    }
    if (as_json) {
        out = json_array();
        for (i = 0; i < n; i++)
            json_array_append_new(out, group_json(&groups[i]));
        if (json_dumpf(out, stdout, JSON_INDENT(2)) != 0)
            goto done;
        printf("\n");
    } else {
        for (i = 0; i < n; i++)
            print_group(&groups[i]);
    }
    if (fflush(stdout) != 0)
        goto done;
    status = over ? 1 : 0;
    if (over)
        fprintf(stderr, "dozenctl groups: a partition lags more than %lld records\n", max_lag);
done:
    json_decref(out);
    for (i = 0; groups != NULL && i < n; i++) {
        json_decref(groups[i].members);
        free(groups[i].parts);
    }
    free(groups);
    if (admin != NULL)
        rd_kafka_destroy(admin);
    session_close(&ses);
    return status;
}
