/* metrics: counters, gauges and histograms in the Prometheus text format. Contract in
 * metrics.h. */
#include "metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define METRICS_NAME_MAX 128
#define METRICS_LABELS_MAX 512
#define METRICS_COLLECTORS_MAX 8

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const type_names[] = { "counter", "gauge", "histogram" };

/* A double kept in an atomic 64-bit word (its bit pattern). */
typedef _Atomic uint64_t atomic_f64;

struct metric {
    struct metric *next;
    struct family *family;
    char *raw;               /* the labels as asked for ("k=v,k=v"), "" for none */
    char *rendered;          /* k="v",k="v" with values escaped, "" for none */
    atomic_f64 value;        /* counter and gauge */
    _Atomic uint64_t *counts; /* histogram: per bucket (not cumulative), nbounds + 1 */
    _Atomic uint64_t count;
    atomic_f64 sum;
};

struct family {
    struct family *next;
    char name[METRICS_NAME_MAX];
    const char *help;
    enum metric_type type;
    char *keys;              /* label keys of the first series, "k,k" */
    double *bounds;
    size_t nbounds;
    struct metric *series, *last;
};

struct metrics {
    pthread_mutex_t mu;      /* guards the lists (creation and rendering), not the values */
    struct family *families, *last;
    struct {
        metrics_collect_fn fn;
        void *ctx;
    } collectors[METRICS_COLLECTORS_MAX];
    int ncollectors;
};

const double metrics_latency_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                           0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
const size_t metrics_latency_nbuckets =
    sizeof(metrics_latency_buckets) / sizeof(metrics_latency_buckets[0]);

static double f64_load(atomic_f64 *a)
{
    uint64_t bits = atomic_load_explicit(a, memory_order_relaxed);
    double d;

    memcpy(&d, &bits, sizeof(d));
    return d;
}

static void f64_store(atomic_f64 *a, double d)
{
    uint64_t bits;

    memcpy(&bits, &d, sizeof(bits));
    atomic_store_explicit(a, bits, memory_order_relaxed);
}

static void f64_add(atomic_f64 *a, double v)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed), next;
    double d;

    do {
        memcpy(&d, &old, sizeof(d));
        d += v;
        memcpy(&next, &d, sizeof(next));
    } while (!atomic_compare_exchange_weak_explicit(a, &old, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

metrics_t *metrics_new(void)
{
    metrics_t *m = calloc(1, sizeof(*m));

    if (m != NULL && pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        m = NULL;
    }
    return m;
}

static void series_free(struct metric *s)
{
    if (s == NULL)
        return;
    free(s->raw);
    free(s->rendered);
    free((void *)s->counts);
    free(s);
}

void metrics_free(metrics_t *m)
{
    struct family *f, *fn;
    struct metric *s, *sn;

    if (m == NULL)
        return;
    for (f = m->families; f != NULL; f = fn) {
        fn = f->next;
        for (s = f->series; s != NULL; s = sn) {
            sn = s->next;
            series_free(s);
        }
        free(f->keys);
        free(f->bounds);
        free(f);
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int name_ok(const char *s, int colon)
{
    size_t i;

    if (s == NULL || s[0] == '\0' || strlen(s) >= METRICS_NAME_MAX)
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (colon && c == ':');

        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

/* Parses "k=v,k=v" into the label keys ("k,k") and the rendered form (k="v",k="v").
 * Returns 0, or -1 for a malformed list (the outputs are then left empty). */
static int labels_parse(const char *raw, int histogram, strbuf_t *keys, strbuf_t *out)
{
    const char *p = raw;

    while (p != NULL && *p != '\0') {
        const char *eq = strchr(p, '='), *end;
        char key[METRICS_NAME_MAX];
        size_t klen;

        if (eq == NULL || (klen = (size_t)(eq - p)) == 0 || klen >= sizeof(key))
            return -1;
        memcpy(key, p, klen);
        key[klen] = '\0';
        if (!name_ok(key, 0) || strncmp(key, "__", 2) == 0 ||
            (histogram && strcmp(key, "le") == 0))
            return -1;
        end = strchr(eq + 1, ',');
        if (end == NULL)
            end = eq + 1 + strlen(eq + 1);
        if (memchr(eq + 1, '=', (size_t)(end - eq - 1)) != NULL)
            return -1;
        strbuf_addf(keys, "%s%s", keys->len > 0 ? "," : "", key);
        strbuf_addf(out, "%s%s=\"", out->len > 0 ? "," : "", key);
        for (p = eq + 1; p < end; p++) {
            if (*p == '\\' || *p == '"')
                strbuf_addch(out, '\\');
            if (*p == '\n')
                strbuf_adds(out, "\\n");
            else
                strbuf_addch(out, *p);
        }
        strbuf_addch(out, '"');
        p = *end == ',' ? end + 1 : end;
        if (*end == ',' && *p == '\0')
            return -1; /* a trailing comma */
    }
    return keys->failed || out->failed ? -1 : 0;
}

/* Finds or creates the family; with m->mu held. */
static struct family *family_get(metrics_t *m, const char *name, const char *help,
                                 enum metric_type type, const double *bounds, size_t n)
{
    struct family *f;
    size_t i;

    for (f = m->families; f != NULL; f = f->next) {
        if (strcmp(f->name, name) != 0)
            continue;
        if (f->type != type || f->nbounds != n)
            return NULL;
        for (i = 0; i < n; i++)
            if (f->bounds[i] != bounds[i])
                return NULL;
        return f;
    }
    for (i = 1; i < n; i++)
        if (!(bounds[i] > bounds[i - 1]))
            return NULL;
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->help = help != NULL ? help : "";
    f->type = type;
    if (n > 0) {
        f->bounds = malloc(n * sizeof(*f->bounds));
        if (f->bounds == NULL) {
            free(f);
            return NULL;
        }
        memcpy(f->bounds, bounds, n * sizeof(*f->bounds));
        f->nbounds = n;
    }
    if (m->last != NULL)
        m->last->next = f;
    else
        m->families = f;
    m->last = f;
    return f;
}

static metric_t *series_get(metrics_t *m, const char *name, const char *help,
                            enum metric_type type, const char *labels, const double *bounds,
                            size_t n)
{
    strbuf_t keys, rendered;
    struct family *f;
    struct metric *s = NULL, *ret = NULL;
    const char *raw = labels != NULL ? labels : "";

    strbuf_init(&keys, METRICS_LABELS_MAX);
    strbuf_init(&rendered, METRICS_LABELS_MAX * 2);
    if (m == NULL || !name_ok(name, 1) ||
        labels_parse(raw, type == METRIC_HISTOGRAM, &keys, &rendered) != 0)
        goto out;
    pthread_mutex_lock(&m->mu);
    f = family_get(m, name, help, type, bounds, n);
    if (f == NULL)
        goto done;
    if (f->keys != NULL && strcmp(f->keys, keys.buf) != 0)
        goto done;
    for (s = f->series; s != NULL; s = s->next) {
        if (strcmp(s->raw, raw) == 0) {
            ret = s;
            goto done;
        }
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto done;
    s->family = f;
    s->raw = strdup(raw);
    s->rendered = strbuf_detach(&rendered, NULL);
    if (type == METRIC_HISTOGRAM)
        s->counts = calloc(n + 1, sizeof(*s->counts));
    if (f->keys == NULL)
        f->keys = strdup(keys.buf);
    if (s->raw == NULL || s->rendered == NULL || f->keys == NULL ||
        (type == METRIC_HISTOGRAM && s->counts == NULL)) {
        series_free(s);
        s = NULL;
        goto done;
    }
    if (f->last != NULL)
        f->last->next = s;
    else
        f->series = s;
    f->last = s;
    ret = s;
done:
    pthread_mutex_unlock(&m->mu);
out:
    strbuf_release(&keys);
    strbuf_release(&rendered);
    return ret;
}

metric_t *metrics_counter(metrics_t *m, const char *name, const char *help,
                          const char *labels)
{
    return series_get(m, name, help, METRIC_COUNTER, labels, NULL, 0);
}

metric_t *metrics_gauge(metrics_t *m, const char *name, const char *help, const char *labels)
{
    return series_get(m, name, help, METRIC_GAUGE, labels, NULL, 0);
}

metric_t *metrics_histogram(metrics_t *m, const char *name, const char *help,
                            const char *labels, const double *bounds, size_t n)
{
    if (bounds == NULL || n == 0)
        return NULL;
    return series_get(m, name, help, METRIC_HISTOGRAM, labels, bounds, n);
}

void metric_add(metric_t *s, double v)
{
    if (s == NULL || s->family->type == METRIC_HISTOGRAM ||
        (s->family->type == METRIC_COUNTER && !(v >= 0)))
        return;
    f64_add(&s->value, v);
}

void metric_inc(metric_t *s)
{
    metric_add(s, 1);
}

void metric_set(metric_t *s, double v)
{
    if (s == NULL || s->family->type == METRIC_HISTOGRAM)
        return;
    f64_store(&s->value, v);
}

void metric_observe(metric_t *s, double v)
{
    size_t i;

    if (s == NULL || s->family->type != METRIC_HISTOGRAM || isnan(v))
        return;
    for (i = 0; i < s->family->nbounds && v > s->family->bounds[i]; i++)
        ;
    atomic_fetch_add_explicit(&s->counts[i], 1, memory_order_relaxed);
    f64_add(&s->sum, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

int metrics_add_collector(metrics_t *m, metrics_collect_fn fn, void *ctx)
{
    int ret = -1;

    pthread_mutex_lock(&m->mu);
    if (m->ncollectors < METRICS_COLLECTORS_MAX) {
        m->collectors[m->ncollectors].fn = fn;
        m->collectors[m->ncollectors].ctx = ctx;
        m->ncollectors++;
        ret = 0;
    }
    pthread_mutex_unlock(&m->mu);
    return ret;
}

void metrics_remove_collector(metrics_t *m, metrics_collect_fn fn, void *ctx)
{
    int i;

    pthread_mutex_lock(&m->mu);
    for (i = 0; i < m->ncollectors; i++) {
        if (m->collectors[i].fn == fn && m->collectors[i].ctx == ctx) {
            memmove(&m->collectors[i], &m->collectors[i + 1],
                    (size_t)(m->ncollectors - i - 1) * sizeof(m->collectors[0]));
            m->ncollectors--;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

/* A sample value as the text format spells it. */
static void add_value(strbuf_t *out, double v)
{
    if (isnan(v))
        strbuf_adds(out, "NaN");
    else if (isinf(v))
        strbuf_adds(out, v > 0 ? "+Inf" : "-Inf");
    else
        strbuf_addf(out, "%.15g", v);
}

/* One sample line: name{labels[,extra]} value. */
static void add_sample(strbuf_t *out, const char *name, const char *suffix, const char *labels,
                       const char *extra, double v)
{
    int braces = labels[0] != '\0' || extra != NULL;

    strbuf_addf(out, "%s%s%s%s%s%s%s ", name, suffix, braces ? "{" : "", labels,
                labels[0] != '\0' && extra != NULL ? "," : "", extra != NULL ? extra : "",
                braces ? "}" : "");
    add_value(out, v);
    strbuf_addch(out, '\n');
}

static void render_family(const struct family *f, strbuf_t *out)
{
    const struct metric *s;
    const char *h;

    strbuf_addf(out, "# HELP %s ", f->name);
    for (h = f->help; *h != '\0'; h++) {
        if (*h == '\\')
            strbuf_adds(out, "\\\\");
        else if (*h == '\n')
            strbuf_adds(out, "\\n");
        else
            strbuf_addch(out, *h);
    }
    strbuf_addf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    for (s = f->series; s != NULL; s = s->next) {
        if (f->type != METRIC_HISTOGRAM) {
            add_sample(out, f->name, "", s->rendered, NULL, f64_load((atomic_f64 *)&s->value));
        } else {
            uint64_t cum = 0;
            size_t i;
            char le[48];

            for (i = 0; i <= f->nbounds; i++) {
                cum += atomic_load_explicit(&s->counts[i], memory_order_relaxed);
                if (i < f->nbounds)
                    snprintf(le, sizeof(le), "le=\"%.15g\"", f->bounds[i]);
                else
                    snprintf(le, sizeof(le), "le=\"+Inf\"");
                add_sample(out, f->name, "_bucket", s->rendered, le, (double)cum);
            }
            add_sample(out, f->name, "_sum", s->rendered, NULL,
                       f64_load((atomic_f64 *)&s->sum));
            /* Observations that landed between the bucket reads and here are counted in
             * neither: _count is the +Inf bucket, as the format requires. */
            add_sample(out, f->name, "_count", s->rendered, NULL, (double)cum);
        }
    }
}

int metrics_render(metrics_t *m, strbuf_t *out)
{
    const struct family *f;
    int i, n;

    pthread_mutex_lock(&m->mu);
    n = m->ncollectors;
    pthread_mutex_unlock(&m->mu);
    for (i = 0; i < n; i++)
        m->collectors[i].fn(m, m->collectors[i].ctx);
    pthread_mutex_lock(&m->mu);
    for (f = m->families; f != NULL; f = f->next)
        render_family(f, out);
    pthread_mutex_unlock(&m->mu);
    return out->failed ? -1 : 0;
}

/* ------------------------------------------------------------------------------------ */
/* process_* from /proc/self */

/* Reads field number `field` (1-based, as proc(5) counts) of /proc/self/stat. Returns 0 or
 * -1. The command name (field 2) may hold spaces and parentheses: fields are counted after
 * its last ')'. */
static int proc_stat_field(int field, unsigned long long *out)
{
    char buf[1024], *p, *end;
    FILE *fp = fopen("/proc/self/stat", "r");
    size_t n;
    int i;

    if (fp == NULL)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    p++;
    for (i = 3; i <= field; i++) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            return -1;
        if (i == field) {
            *out = strtoull(p, &end, 10);
            return end == p ? -1 : 0;
        }
        while (*p != ' ' && *p != '\0')
            p++;
    }
    return -1;
}

static double boot_time_seconds(void)
{
    char line[256];
    double btime = 0;
    FILE *fp = fopen("/proc/stat", "r");

    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strncmp(line, "btime ", 6) == 0) {
            btime = strtod(line + 6, NULL);
            break;
        }
    }
    fclose(fp);
    return btime;
}

void metrics_process_collect(metrics_t *m, void *ctx)
{
    long page = sysconf(_SC_PAGESIZE), tck = sysconf(_SC_CLK_TCK);
    unsigned long long size = 0, rss = 0, ut, st, threads, start;
    struct rlimit rl;
    FILE *fp;
    DIR *d;

    (void)ctx;
    fp = fopen("/proc/self/statm", "r");
    if (fp != NULL) {
        if (fscanf(fp, "%llu %llu", &size, &rss) == 2) {
            metric_set(metrics_gauge(m, "process_virtual_memory_bytes",
                                     "Virtual memory size in bytes.", NULL),
                       (double)size * (double)page);
            metric_set(metrics_gauge(m, "process_resident_memory_bytes",
                                     "Resident memory size in bytes.", NULL),
                       (double)rss * (double)page);
        }
        fclose(fp);
    }
    d = opendir("/proc/self/fd");
    if (d != NULL) {
        long n = 0;
        struct dirent *e;

        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        metric_set(metrics_gauge(m, "process_open_fds", "Number of open file descriptors.",
                                 NULL), (double)(n > 0 ? n - 1 : 0)); /* less opendir's own */
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        metric_set(metrics_gauge(m, "process_max_fds",
                                 "Maximum number of open file descriptors.", NULL),
                   rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
    if (tck > 0 && proc_stat_field(14, &ut) == 0 && proc_stat_field(15, &st) == 0)
        metric_set(metrics_counter(m, "process_cpu_seconds_total",
                                 "Total user and system CPU time spent in seconds.", NULL),
                   (double)(ut + st) / (double)tck);
    if (proc_stat_field(20, &threads) == 0)
        metric_set(metrics_gauge(m, "process_threads", "Number of OS threads in the process.",
                                 NULL), (double)threads);
    if (tck > 0 && proc_stat_field(22, &start) == 0)
        metric_set(metrics_gauge(m, "process_start_time_seconds",
                                 "Start time of the process since unix epoch in seconds.",
                                 NULL), boot_time_seconds() + (double)start / (double)tck);
}
