/* bulletin: the texts of the notifier's messages (templates with named fields, checked
 * against the SMS segment budget at start), and the start of a day's bulletin. */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sku.h"
#include "sms_segments.h"
#include "util.h"

/* ---------------------------------------------------------------------------------- */
/* Defaults: what a Korean subscriber expects, the portal's own words for the figures. */

#define DEFAULT_DAILY                                                                    \
    "[dozen] {month}월 {day}일 코로나19 확진 {confirmed}명({confirmed_change}), "           \
    "사망 {deaths}명({deaths_change})"

static const struct {
    const char *code;      /* a reason code, or NULL: any other (the generic notice) */
    const char *var;       /* the variable that overrides it */
    const char *text;
} unavailable_defaults[BULLETIN_NREASONS] = {
    { "source_unreachable", "BULLETIN_UNAVAILABLE_SOURCE_UNREACHABLE",
      "[dozen] {month}월 {day}일 현황을 보내드리지 못합니다: 자료 출처에 연결할 수 없습니다." },
    { "not_published_yet", "BULLETIN_UNAVAILABLE_NOT_PUBLISHED_YET",
      "[dozen] {month}월 {day}일 현황을 보내드리지 못합니다: 오늘 자료가 아직 발표되지 "
      "않았습니다." },
    { "stale_date", "BULLETIN_UNAVAILABLE_STALE_DATE",
      "[dozen] {month}월 {day}일 현황을 보내드리지 못합니다: 발표된 자료의 날짜가 "
      "맞지 않습니다." },
    { "all_zero", "BULLETIN_UNAVAILABLE_ALL_ZERO",
      "[dozen] {month}월 {day}일 현황을 보내드리지 못합니다: 발표된 수치가 모두 0입니다." },
    { "invalid_data", "BULLETIN_UNAVAILABLE_INVALID_DATA",
      "[dozen] {month}월 {day}일 현황을 보내드리지 못합니다: 발표된 자료를 읽을 수 "
      "없습니다." },
    { "decreasing_totals", "BULLETIN_UNAVAILABLE_DECREASING_TOTALS",
      "[dozen] {month}월 {day}일 현황을 보내드리지 못합니다: 누적 수치가 전날보다 "
      "줄었습니다." },
    { "source_refused", "BULLETIN_UNAVAILABLE_SOURCE_REFUSED",
      "[dozen] {month}월 {day}일 현황을 보내드리지 못합니다: 자료 출처가 요청을 "
      "거절했습니다." },
    { NULL, "BULLETIN_UNAVAILABLE_TEMPLATE",
      "[dozen] {month}월 {day}일 현황을 보내드리지 못합니다: {reason}." },
};

#define DEFAULT_RESTOCK "dozen: {sku} is back in stock."

/* ---------------------------------------------------------------------------------- */
/* Fields */

enum field {
    F_DATE, F_MONTH, F_DAY,
    F_CONFIRMED, F_CONFIRMED_CHANGE, F_DEATHS, F_DEATHS_CHANGE,
    F_RECOVERED, F_RECOVERED_CHANGE, F_IN_TREATMENT, F_IN_TREATMENT_CHANGE,
    F_REASON, F_SKU,
    F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "date", "month", "day",
    "confirmed", "confirmed_change", "deaths", "deaths_change",
    "recovered", "recovered_change", "in_treatment", "in_treatment_change",
    "reason", "sku",
};

/* Which fields each kind of message may use. */
#define DATE_FIELDS ((1u << F_DATE) | (1u << F_MONTH) | (1u << F_DAY))
#define DAILY_FIELDS (DATE_FIELDS | 0xFFu << F_CONFIRMED)
#define UNAVAILABLE_FIELDS (DATE_FIELDS | 1u << F_REASON)
#define RESTOCK_FIELDS (1u << F_SKU)

/* The values of one message's fields ("" for those it does not have). */
struct values {
    char v[F_COUNT][96];
};

/* Writes v with thousands separators: 345116 -> "345,116". */
static void group_digits(long long v, char *out, size_t out_size)
{
    char digits[32];
    size_t n, i, o = 0;
    int len;

    len = snprintf(digits, sizeof(digits), "%lld", v < 0 ? -v : v);
    n = len > 0 ? (size_t)len : 0;
    if (v < 0 && o + 1 < out_size)
        out[o++] = '-';
    for (i = 0; i < n && o + 2 < out_size; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

/* The change since the day before: "▲1,671", "▼12", "0", or "-" when unknown. */
static void change(long long now, long long before, int known, char *out, size_t out_size)
{
    char n[40];
    long long d = now - before;

    if (!known) {
        snprintf(out, out_size, "-");
        return;
    }
    if (d == 0) {
        snprintf(out, out_size, "0");
        return;
    }
    group_digits(d < 0 ? -d : d, n, sizeof(n));
    snprintf(out, out_size, "%s%s", d > 0 ? "\xe2\x96\xb2" : "\xe2\x96\xbc", n);
}

static void date_values(struct values *vals, const char *day)
{
    int m = 0, d = 0;

    snprintf(vals->v[F_DATE], sizeof(vals->v[F_DATE]), "%.10s", day);
    if (strlen(day) == 10) {
        m = (day[5] - '0') * 10 + (day[6] - '0');
        d = (day[8] - '0') * 10 + (day[9] - '0');
    }
    snprintf(vals->v[F_MONTH], sizeof(vals->v[F_MONTH]), "%d", m);
    snprintf(vals->v[F_DAY], sizeof(vals->v[F_DAY]), "%d", d);
}

static void daily_values(struct values *vals, const feed_figures_t *f,
                         const feed_figures_t *prev)
{
    static const feed_figures_t none;
    const feed_figures_t *p = prev != NULL ? prev : &none;
    int known = prev != NULL;

    memset(vals, 0, sizeof(*vals));
    date_values(vals, f->date);
    group_digits(f->confirmed, vals->v[F_CONFIRMED], sizeof(vals->v[0]));
    group_digits(f->deaths, vals->v[F_DEATHS], sizeof(vals->v[0]));
    group_digits(f->recovered, vals->v[F_RECOVERED], sizeof(vals->v[0]));
    group_digits(f->in_treatment, vals->v[F_IN_TREATMENT], sizeof(vals->v[0]));
    change(f->confirmed, p->confirmed, known, vals->v[F_CONFIRMED_CHANGE], sizeof(vals->v[0]));
    change(f->deaths, p->deaths, known, vals->v[F_DEATHS_CHANGE], sizeof(vals->v[0]));
    change(f->recovered, p->recovered, known, vals->v[F_RECOVERED_CHANGE], sizeof(vals->v[0]));
    change(f->in_treatment, p->in_treatment, known, vals->v[F_IN_TREATMENT_CHANGE],
           sizeof(vals->v[0]));
}

/* ---------------------------------------------------------------------------------- */
/* Templates */

/*
 * Expands tpl into out (emptied first): "{name}" is the field's value, "{{" and "}}" are
 * '{' and '}'. With vals NULL it only checks. Returns 0, or -1 with err naming the problem:
 * an unknown field, one this kind of message does not have (not in allowed), a '{' or '}'
 * unmatched, or a text longer than NOTIFIER_BODY_MAX bytes.
 */
static int expand(const char *tpl, unsigned allowed, const struct values *vals, strbuf_t *out,
                  char *err, size_t err_size)
{
    const char *p = tpl, *end;
    size_t len, i;

    strbuf_reset(out);
    while (*p != '\0') {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            strbuf_addch(out, p[0]);
            p += 2;
            continue;
        }
        if (*p == '}') {
            util_errf(err, err_size, "a '}' without its '{' (write '}}' for the character)");
            return -1;
        }
        if (*p != '{') {
            strbuf_addch(out, *p++);
            continue;
        }
        end = strchr(p + 1, '}');
        if (end == NULL) {
            util_errf(err, err_size, "a '{' without its '}' (write '{{' for the character)");
            return -1;
        }
        len = (size_t)(end - p - 1);
        for (i = 0; i < F_COUNT; i++) {
            if (strlen(field_names[i]) == len && strncmp(p + 1, field_names[i], len) == 0)
                break;
        }
        if (i == F_COUNT || !(allowed & (1u << i))) {
            char known[512] = "";
            size_t k;

            for (k = 0; k < F_COUNT; k++) {
                if (allowed & (1u << k)) {
                    strncat(known, known[0] != '\0' ? ", {" : "{",
                            sizeof(known) - strlen(known) - 1);
                    strncat(known, field_names[k], sizeof(known) - strlen(known) - 1);
                    strncat(known, "}", sizeof(known) - strlen(known) - 1);
                }
            }
            util_errf(err, err_size, "unknown field {%.*s}; the fields are %s",
                      (int)(len > 40 ? 40 : len), p + 1, known);
            return -1;
        }
        if (vals != NULL)
            strbuf_adds(out, vals->v[i]);
        p = end + 1;
    }
    if (out->failed) {
        util_errf(err, err_size, "the text is longer than %d bytes", NOTIFIER_BODY_MAX);
        return -1;
    }
    return 0;
}

/* Expands tpl with vals into out (out_size bytes) and checks the budget. Returns 0, or -1
 * with out "" (err, when not NULL, says why). */
static int render(const struct bulletin_texts *t, const char *tpl, unsigned allowed,
                  const struct values *vals, char *out, size_t out_size, char *err,
                  size_t err_size)
{
    strbuf_t sb;   /* owned */
    smsseg_count_t c;
    char why[256];
    int ret = -1;

    strbuf_init(&sb, NOTIFIER_BODY_MAX);
    if (out_size > 0)
        out[0] = '\0';
    if (expand(tpl, allowed, vals, &sb, why, sizeof(why)) != 0)
        goto done;
    if (smsseg_count(sb.buf != NULL ? sb.buf : "", sb.len, &c, why, sizeof(why)) != 0)
        goto done;
    if (c.segments > (size_t)t->max_segments) {
        util_errf(why, sizeof(why), "%zu %s characters (%zu code units) make %zu SMS "
                  "segments, over SMS_MAX_SEGMENTS=%d", c.characters,
                  smsseg_encoding_name(c.encoding), c.units, c.segments, t->max_segments);
        goto done;
    }
    if (sb.len == 0 || sb.len >= out_size) {
        util_errf(why, sizeof(why), sb.len == 0 ? "the text is empty" : "too long");
        goto done;
    }
    memcpy(out, sb.buf, sb.len + 1);
    ret = 0;
done:
    if (ret != 0)
        util_errf(err, err_size, "%s", why);
    strbuf_release(&sb);
    return ret;
}

int bulletin_texts_read(struct bulletin_texts *t, int max_segments, char *err,
                        size_t err_size)
{
    char why[512], out[NOTIFIER_BODY_MAX + 1];
    struct values vals;
    feed_figures_t big, prev;
    size_t i, r;
    const char *v;

    memset(t, 0, sizeof(*t));
    t->max_segments = max_segments;
    v = getenv("BULLETIN_TEMPLATE");
    t->daily = v != NULL && v[0] != '\0' ? v : DEFAULT_DAILY;
    v = getenv("BULLETIN_RESTOCK_TEMPLATE");
    t->restock = v != NULL && v[0] != '\0' ? v : DEFAULT_RESTOCK;
    for (i = 0; i < BULLETIN_NREASONS; i++) {
        v = getenv(unavailable_defaults[i].var);
        t->unavailable[i] = v != NULL && v[0] != '\0' ? v : unavailable_defaults[i].text;
    }

    /* The largest figures a valid feed can give, and the widest changes (a drop of as much
     * in treatment, a rise of as much elsewhere), on the widest date. */
    memset(&big, 0, sizeof(big));
    memset(&prev, 0, sizeof(prev));
    snprintf(big.date, sizeof(big.date), "2026-12-28");
    big.confirmed = big.recovered = big.deaths = FEED_FIGURE_MAX;
    big.in_treatment = 0;
    prev.in_treatment = FEED_FIGURE_MAX;
    daily_values(&vals, &big, &prev);
    group_digits(FEED_FIGURE_MAX, vals.v[F_IN_TREATMENT], sizeof(vals.v[0]));
    if (render(t, t->daily, DAILY_FIELDS, &vals, out, sizeof(out), why, sizeof(why)) != 0) {
        util_errf(err, err_size, "BULLETIN_TEMPLATE: %s (with the largest figures a feed "
                  "may give, 10^15)", why);
        return -1;
    }
    for (i = 0; i < BULLETIN_NREASONS; i++) {
        for (r = 0; r < BULLETIN_NREASONS; r++) {
            /* a reason's own notice meets its words; the generic one every reason's */
            if (unavailable_defaults[i].code != NULL && r != i)
                continue;
            memset(&vals, 0, sizeof(vals));
            date_values(&vals, "2026-12-28");
            snprintf(vals.v[F_REASON], sizeof(vals.v[0]), "%s",
                     bulletin_reason_words(unavailable_defaults[r].code));
            if (render(t, t->unavailable[i], UNAVAILABLE_FIELDS, &vals, out, sizeof(out),
                       why, sizeof(why)) != 0) {
                util_errf(err, err_size, "%s: %s", unavailable_defaults[i].var, why);
                return -1;
            }
        }
    }
    memset(&vals, 0, sizeof(vals));
    memset(vals.v[F_SKU], 'W', SKU_MAX);
    if (render(t, t->restock, RESTOCK_FIELDS, &vals, out, sizeof(out), why,
               sizeof(why)) != 0) {
        util_errf(err, err_size, "BULLETIN_RESTOCK_TEMPLATE: %s (with a %d-character SKU)",
                  why, SKU_MAX);
        return -1;
    }
    return 0;
}

const char *bulletin_reason_words(const char *code)
{
    static const struct {
        const char *code, *words;
    } words[] = {
        { "source_unreachable", "자료 출처에 연결할 수 없습니다" },
        { "not_published_yet", "오늘 자료가 아직 발표되지 않았습니다" },
        { "stale_date", "발표된 자료의 날짜가 맞지 않습니다" },
        { "all_zero", "발표된 수치가 모두 0입니다" },
        { "invalid_data", "발표된 자료를 읽을 수 없습니다" },
        { "decreasing_totals", "누적 수치가 전날보다 줄었습니다" },
        { "source_refused", "자료 출처가 요청을 거절했습니다" },
    };
    size_t i;

    for (i = 0; code != NULL && i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(words[i].code, code) == 0)
            return words[i].words;
    }
    return "자료를 확인할 수 없습니다";
}

int bulletin_text(const struct bulletin_texts *t, const feed_figures_t *f,
                  const feed_figures_t *prev, char *out, size_t out_size)
{
    struct values vals;

    daily_values(&vals, f, prev);
    return render(t, t->daily, DAILY_FIELDS, &vals, out, out_size, NULL, 0);
}

int bulletin_unavailable_text(const struct bulletin_texts *t, const char *day,
                              const char *reason, char *out, size_t out_size)
{
    struct values vals;
    size_t i;

    for (i = 0; i + 1 < BULLETIN_NREASONS; i++) {
        if (reason != NULL && strcmp(unavailable_defaults[i].code, reason) == 0)
            break;
    }
    memset(&vals, 0, sizeof(vals));
    date_values(&vals, day);
    snprintf(vals.v[F_REASON], sizeof(vals.v[0]), "%s", bulletin_reason_words(reason));
    return render(t, t->unavailable[i], UNAVAILABLE_FIELDS, &vals, out, out_size, NULL, 0);
}

int bulletin_restock_text(const struct bulletin_texts *t, const char *sku, char *out,
                          size_t out_size)
{
    struct values vals;

    if (!sku_valid(sku)) {
        if (out_size > 0)
            out[0] = '\0';
        return -1;
    }
    memset(&vals, 0, sizeof(vals));
    snprintf(vals.v[F_SKU], sizeof(vals.v[0]), "%s", sku);
    return render(t, t->restock, RESTOCK_FIELDS, &vals, out, out_size, NULL, 0);
}

store_result_t bulletin_start(struct notifier *n, PGconn *conn, int64_t run_ms,
                              const char *trigger, int *created, json_t **out,
                              char *errstr, size_t errstr_size)
{
    char day[11], why[256];
    int64_t deadline_ms;

    *created = 0;
    if (out != NULL)
        *out = NULL;
    if (cron_local_date(n->cfg.zone, run_ms, day) != 0) {
        util_errf(errstr, errstr_size, "no local date for %lld in %s", (long long)run_ms,
                  cron_zone_name(n->cfg.zone));
        return STORE_FAILED;
    }
    /* A run after a clock deadline (a manual run at noon with BULLETIN_DEADLINE=11:00)
     * checks the feed once: no retries, and the notice at once if the check fails. */
    if (cron_deadline_at(&n->cfg.deadline, n->cfg.zone, run_ms, &deadline_ms,
                         why, sizeof(why)) != 0)
        deadline_ms = run_ms;
    return store_bulletin_create(conn, day, trigger, run_ms, deadline_ms, created, out,
                                 errstr, errstr_size);
}
