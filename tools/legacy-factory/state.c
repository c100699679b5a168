/* state: the legacy factory's knobs and its memory of calls and orders, with validation. */
#include "legacy_factory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "log.h"
#include "sku.h"

/* One POST /api/manufactures as it arrived. */
struct call_rec {
    int64_t at_ms;               /* wall clock */
    char product_id[LF_ATTR_MAX + 1]; /* "" when the call had no valid product id */
    long long count;
    int has_count;               /* the call had an integer count */
    enum lf_outcome outcome;
};

enum order_status {
    ORDER_SCHEDULED,
    ORDER_DELIVERING,
    ORDER_DELIVERED,
    ORDER_CALLBACK_FAILED
};

/* A request's attributes without its CallbackUrl, whose buffer would make every record
 * 2 KiB larger (the URL is kept at its length, in order_rec). */
struct lf_attrs {
    char group_id[LF_ATTR_MAX + 1];
    char product_id[LF_ATTR_MAX + 1];
    long long count;
    char factory_id[LF_ATTR_MAX + 1];
    char requester[LF_ATTR_MAX + 1];
};

/* One accepted order and what became of its callback. */
struct order_rec {
    uint64_t seq;
    char id[LF_ID_LEN + 1];
    struct lf_attrs in;          /* what was asked for (the URL is below) */
    char *callback_url;          /* owned */
    int64_t received_ms;         /* wall clock */
    enum order_status status;
    int attempts;
    int deliveries;
};

/*
 * Both records are rings of LF_RECORDS_MAX entries, oldest at head, so the newest are
 * kept. Orders are appended in seq order under the lock and seqs never repeat (a reset
 * empties the ring but the counter goes on), so the ring holds consecutive seqs and an
 * order is found from its seq without a search.
 */
struct lf_state {
    standin_t *si;               /* owned: the lock, the stop flag and the mode */
    struct call_rec *calls;      /* LF_RECORDS_MAX entries, owned */
    size_t calls_head, calls_len;
    struct order_rec *orders;    /* LF_RECORDS_MAX entries, owned */
    size_t orders_head, orders_len;
    uint64_t next_seq;
};

/* ---------------------------------------------------------------------------------- */
/* Validation */

static const char *const status_names[] = {
    "scheduled", "delivering", "delivered", "callback_failed"
};

const char *lf_outcome_name(enum lf_outcome o)
{
    switch (o) {
    case LF_CALL_ACCEPTED:
        return "accepted";
    case LF_CALL_UNAVAILABLE:
        return "unavailable";
    case LF_CALL_REFUSED:
        return "refused";
    case LF_CALL_INVALID:
        return "invalid";
    case LF_CALL_REJECTED:
        return "rejected";
    }
    return "unknown";
}

int lf_callback_url_valid(const char *url)
{
    CURLU *u = NULL;
    char *host = NULL;
    const char *authority;
    size_t i, len;
    int ok = 0;

    if (url == NULL)
        goto done;
    len = strlen(url);
    if (len > LF_URL_MAX)
        goto done;
    if (strncasecmp(url, "http://", 7) == 0)
        authority = url + 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        authority = url + 8;
    else
        goto done;
    /* libcurl reads "http:///h/x" as host "h"; a URL like that is a mistake, refuse it. */
    if (authority[0] == '/')
        goto done;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];

        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            goto done;
    }
    /* libcurl's own parser decides, so that what passes here is what it will fetch. */
    u = curl_url();
    if (u == NULL)
        goto done;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto done;
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host == NULL ||
        host[0] == '\0')
        goto done;
    ok = 1;
done:
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static const char *const shape_names[LF_SHAPE_COUNT] = {
    [LF_SHAPE_OBJECT] = "object",
    [LF_SHAPE_JSON_STRING] = "json_string",
    [LF_SHAPE_TEXT_PLAIN] = "text_plain",
};

const char *lf_shape_name(int shape)
{
    return shape >= 0 && shape < LF_SHAPE_COUNT ? shape_names[shape] : "unknown";
}

int lf_shape_parse(const char *name)
{
    for (int i = 0; name != NULL && i < LF_SHAPE_COUNT; i++) {
        if (strcmp(shape_names[i], name) == 0)
            return i;
    }
    return -1;
}

#define NON_EMPTY_MSG(attr) \
    "The message attribute '" attr "' must contain non-empty message attribute value."

/* Copies string attribute name of body into out (size LF_ATTR_MAX + 1). Returns 0, or -1
 * with the factory's message. */
static int attr_str(json_t *body, const char *name, const char *msg, char *out,
                    char *errstr, size_t errstr_size)
{
    json_t *v = json_object_get(body, name);  /* borrowed */

    if (!json_is_string(v) || json_string_length(v) == 0) {
        util_errf(errstr, errstr_size, "%s", msg);
        return -1;
    }
    if (json_string_length(v) > LF_ATTR_MAX ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        util_errf(errstr, errstr_size, "The message attribute '%s' must be at most %d bytes "
                  "of text.", name, LF_ATTR_MAX);
        return -1;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int lf_order_parse(json_t *body, struct lf_order_in *out, char *errstr, size_t errstr_size)
{
    json_t *cnt, *url;   /* borrowed from body */
    json_int_t q;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(body)) {
        util_errf(errstr, errstr_size, "The request body must be a JSON object.");
        return -1;
    }
    if (attr_str(body, "MessageGroupId", NON_EMPTY_MSG("MessageGroupId"), out->group_id,
                 errstr, errstr_size) != 0 ||
        attr_str(body, "MessageAttributeProductId", NON_EMPTY_MSG("MessageAttributeProductId"),
                 out->product_id, errstr, errstr_size) != 0)
        return -1;
    cnt = json_object_get(body, "MessageAttributeProductCnt");
    if (cnt == NULL || json_is_null(cnt) ||
        (json_is_string(cnt) && json_string_length(cnt) == 0)) {
        util_errf(errstr, errstr_size, NON_EMPTY_MSG("MessageAttributeProductCnt"));
        return -1;
    }
    if (!json_is_integer(cnt) || (q = json_integer_value(cnt)) < 1 || q > LF_QUANTITY_MAX) {
        util_errf(errstr, errstr_size, "The message attribute 'MessageAttributeProductCnt' "
                  "must be an integer between 1 and %d.", LF_QUANTITY_MAX);
        return -1;
    }
    out->count = (long long)q;
    if (attr_str(body, "MessageAttributeFactoryId", NON_EMPTY_MSG("MessageAttributeFactoryId"),
                 out->factory_id, errstr, errstr_size) != 0 ||
        attr_str(body, "MessageAttributeRequester", NON_EMPTY_MSG("MessageAttributeRequester"),
                 out->requester, errstr, errstr_size) != 0)
        return -1;
    url = json_object_get(body, "CallbackUrl");
    if (!json_is_string(url) || json_string_length(url) == 0) {
        util_errf(errstr, errstr_size, "The attribute 'CallbackUrl' must contain a non-empty "
                  "value.");
        return -1;
    }
    if (!lf_callback_url_valid(json_string_value(url))) {
        util_errf(errstr, errstr_size, "The attribute 'CallbackUrl' must be an http:// or "
                  "https:// URL with a host, at most %d characters, without spaces, quotes "
                  "or backslashes.", LF_URL_MAX);
        return -1;
    }
    snprintf(out->callback_url, sizeof(out->callback_url), "%s", json_string_value(url));
    return 0;
}

int lf_callback_body(const struct lf_order_in *in, const struct lf_mode *mode, char **body,
                     const char **content_type)
{
    long long n = mode->deliver_count > 0 ? mode->deliver_count : in->count;
    char digits[24];
    json_t *obj, *wrapped = NULL;
    char *text = NULL;

    *body = NULL;
    snprintf(digits, sizeof(digits), "%lld", n);
    /* "o" steals the count's new reference, also when json_pack fails */
    obj = json_pack("{s:s, s:s, s:o, s:s, s:s}",
                    "MessageGroupId", in->group_id,
                    "MessageAttributeProductId", in->product_id,
                    "MessageAttributeProductCnt",
                    mode->count_as_string ? json_string(digits) : json_integer(n),
                    "MessageAttributeFactoryId", in->factory_id,
                    "MessageAttributeRequester", in->requester);
    if (obj == NULL)
        return -1;
    text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text == NULL)
        return -1;
    if (mode->callback_shape == LF_SHAPE_JSON_STRING) {
        wrapped = json_string(text);
        free(text);
        text = wrapped != NULL ? json_dumps(wrapped, JSON_ENCODE_ANY) : NULL;
        json_decref(wrapped);
        if (text == NULL)
            return -1;
    }
    *content_type = mode->callback_shape == LF_SHAPE_TEXT_PLAIN ? "text/plain; charset=utf-8"
                                                                : "application/json";
    *body = text;
    return 0;
}

int lf_mode_set_fail_skus(struct lf_mode *m, const char *list, char *errstr,
                          size_t errstr_size)
{
    char buf[sizeof(m->fail_skus)], *save = NULL, *item;

    if (strlen(list) >= sizeof(buf)) {
        util_errf(errstr, errstr_size, "fail_skus: longer than %zu bytes", sizeof(buf) - 1);
        return -1;
    }
    memcpy(buf, list, strlen(list) + 1);
    for (item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        if (!sku_valid(item)) {
            util_errf(errstr, errstr_size, "fail_skus: '%.64s' is not a valid sku", item);
            return -1;
        }
    }
    memcpy(m->fail_skus, list, strlen(list) + 1);
    return 0;
}

int lf_mode_fails_sku(const struct lf_mode *m, const char *sku)
{
    size_t n = strlen(sku);
    const char *p = m->fail_skus;

    while (n > 0 && *p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len == n && strncmp(p, sku, n) == 0)
            return 1;
        p += len + (end != NULL);
    }
    return 0;
}

/* "fail_skus": an array of SKUs (empty for none). */
static int patch_fail_skus(json_t *v, void *mode, char *errstr, size_t errstr_size)
{
    struct lf_mode *m = mode;
    char list[sizeof(m->fail_skus)] = "";
    size_t i, used = 0;
    json_t *item;

    if (!json_is_array(v)) {
        util_errf(errstr, errstr_size, "field 'fail_skus' must be an array of SKUs");
        return -1;
    }
    json_array_foreach(v, i, item) {
        const char *sku = json_string_value(item);
        int n;

        if (sku == NULL || !sku_valid(sku)) {
            util_errf(errstr, errstr_size, "field 'fail_skus' must be an array of SKUs");
            return -1;
        }
        n = snprintf(list + used, sizeof(list) - used, "%s%s", used > 0 ? "," : "", sku);
        if (n < 0 || (size_t)n >= sizeof(list) - used) {
            util_errf(errstr, errstr_size, "field 'fail_skus' is too long");
            return -1;
        }
        used += (size_t)n;
    }
    return lf_mode_set_fail_skus(m, list, errstr, errstr_size);
}

/* "fail_skus" as GET /admin/mode shows it: an array of SKUs. A new reference, or NULL. */
static json_t *fail_skus_json(const void *mode)
{
    const struct lf_mode *m = mode;
    json_t *skus = json_array();
    char buf[sizeof(m->fail_skus)], *save = NULL, *item;

    memcpy(buf, m->fail_skus, sizeof(buf));
    for (item = strtok_r(buf, ",", &save); skus != NULL && item != NULL;
         item = strtok_r(NULL, ",", &save))
        json_array_append_new(skus, json_string(item));
    return skus;
}

/* "callback_shape": one of shape_names. */
static int patch_shape(json_t *v, void *mode, char *errstr, size_t errstr_size)
{
    struct lf_mode *m = mode;
    int shape = lf_shape_parse(json_string_value(v));

    if (shape < 0) {
        util_errf(errstr, errstr_size, "field 'callback_shape' must be \"object\", "
                  "\"json_string\" or \"text_plain\"");
        return -1;
    }
    m->callback_shape = shape;
    return 0;
}

static json_t *shape_json(const void *mode)
{
    return json_string(lf_shape_name(((const struct lf_mode *)mode)->callback_shape));
}

static void shape_log(const void *mode, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s", lf_shape_name(((const struct lf_mode *)mode)->callback_shape));
}

/* The knobs, in the order GET /admin/mode shows them; fail_skus is not logged. */
static const struct standin_knob lf_knobs[] = {
    STANDIN_FAIL_NEXT(struct lf_mode),
    STANDIN_INT(struct lf_mode, reject_next, 0, STANDIN_FAIL_NEXT_MAX),
    STANDIN_SLOW_MS(struct lf_mode),
    STANDIN_DOWN(struct lf_mode),
    STANDIN_BOOL(struct lf_mode, deliver_twice),
    STANDIN_INT(struct lf_mode, delay_ms, 0, LF_DELAY_MS_MAX),
    STANDIN_CUSTOM("callback_shape", patch_shape, shape_json, shape_log),
    STANDIN_BOOL(struct lf_mode, count_as_string),
    STANDIN_INT(struct lf_mode, deliver_count, 0, LF_DELIVER_COUNT_MAX),
    STANDIN_CUSTOM("fail_skus", patch_fail_skus, fail_skus_json, NULL),
    STANDIN_END
};

static void forget(void *app);

const struct standin_def lf_standin = { lf_knobs, sizeof(struct lf_mode), NULL, forget };

/* ---------------------------------------------------------------------------------- */
/* The state */

lf_state_t *state_new(const struct lf_mode *defaults, char *errstr, size_t errstr_size)
{
    lf_state_t *st = NULL, *ret = NULL;

    st = calloc(1, sizeof(*st));
    if (st == NULL)
        goto oom;
    st->calls = calloc(LF_RECORDS_MAX, sizeof(*st->calls));
    st->orders = calloc(LF_RECORDS_MAX, sizeof(*st->orders));
    if (st->calls == NULL || st->orders == NULL)
        goto oom;
    st->si = standin_new(&lf_standin, defaults, st, errstr, errstr_size);
    if (st->si == NULL)
        goto done;
    st->next_seq = 1;
    ret = st;
    st = NULL; /* ownership passed to the caller */
    goto done;
oom:
    util_errf(errstr, errstr_size, "out of memory");
done:
    if (st != NULL) {
        free(st->calls);
        free(st->orders);
        free(st);
    }
    return ret;
}

/* Frees the URLs and empties the order ring. Lock held (or no other thread). */
static void orders_clear(lf_state_t *st)
{
    size_t i;

    for (i = 0; i < st->orders_len; i++) {
        struct order_rec *o = &st->orders[(st->orders_head + i) % LF_RECORDS_MAX];

        free(o->callback_url);
        o->callback_url = NULL;
    }
    st->orders_head = 0;
    st->orders_len = 0;
}

void state_free(lf_state_t *st)
{
    if (st == NULL)
        return;
    orders_clear(st);
    standin_free(st->si);
    free(st->calls);
    free(st->orders);
    free(st);
}

standin_t *state_standin(lf_state_t *st)
{
    return st->si;
}

int state_gate(lf_state_t *st, struct lf_mode *now)
{
    int fail = 0;
    struct lf_mode *m;

    standin_lock(st->si);
    m = standin_mode_locked(st->si);
    if (m->fail_next > 0) {
        m->fail_next--;
        fail = 1;
    }
    *now = *m;
    standin_unlock(st->si);
    return fail;
}

int state_reject_gate(lf_state_t *st)
{
    int reject = 0;
    struct lf_mode *m;

    standin_lock(st->si);
    m = standin_mode_locked(st->si);
    if (m->reject_next > 0) {
        m->reject_next--;
        reject = 1;
    }
    standin_unlock(st->si);
    return reject;
}

/* The records are forgotten with the mode's reset, under the lock. */
static void forget(void *app)
{
    lf_state_t *st = app;

    orders_clear(st);
    st->calls_head = 0;
    st->calls_len = 0;
}

/* Appends a call, dropping the oldest when full. Lock held. */
static void call_append(lf_state_t *st, const char *product_id, int has_count,
                        long long count, enum lf_outcome outcome)
{
    struct call_rec *c;

    if (st->calls_len == LF_RECORDS_MAX) {
        st->calls_head = (st->calls_head + 1) % LF_RECORDS_MAX;
        st->calls_len--;
    }
    c = &st->calls[(st->calls_head + st->calls_len) % LF_RECORDS_MAX];
    st->calls_len++;
    memset(c, 0, sizeof(*c));
    c->at_ms = util_now_ms();
    if (product_id != NULL)
        snprintf(c->product_id, sizeof(c->product_id), "%s", product_id); /* checked: fits */
    c->has_count = has_count;
    c->count = count;
    c->outcome = outcome;
}

void state_record_call(lf_state_t *st, json_t *body, enum lf_outcome outcome)
{
    /* borrowed; NULL for a NULL body */
    json_t *pid = json_object_get(body, "MessageAttributeProductId");
    json_t *cnt = json_object_get(body, "MessageAttributeProductCnt");
    const char *s = json_string_value(pid);
    int ok = s != NULL && json_string_length(pid) <= LF_ATTR_MAX &&
             strlen(s) == json_string_length(pid);

    standin_lock(st->si);
    call_append(st, ok ? s : NULL, json_is_integer(cnt),
                json_is_integer(cnt) ? (long long)json_integer_value(cnt) : 0, outcome);
    standin_unlock(st->si);
}

int state_order_add(lf_state_t *st, const struct lf_order_in *in, const char *id,
                    uint64_t *seq)
{
    char *url = strdup(in->callback_url); /* owned by the record below */
    struct order_rec *o;

    if (url == NULL)
        return -1;
    standin_lock(st->si);
    if (st->orders_len == LF_RECORDS_MAX) {
        free(st->orders[st->orders_head].callback_url);
        st->orders[st->orders_head].callback_url = NULL;
        st->orders_head = (st->orders_head + 1) % LF_RECORDS_MAX;
        st->orders_len--;
    }
    o = &st->orders[(st->orders_head + st->orders_len) % LF_RECORDS_MAX];
    st->orders_len++;
    memset(o, 0, sizeof(*o));
    o->seq = st->next_seq++;
    snprintf(o->id, sizeof(o->id), "%s", id);
    memcpy(o->in.group_id, in->group_id, sizeof(o->in.group_id));
    memcpy(o->in.product_id, in->product_id, sizeof(o->in.product_id));
    memcpy(o->in.factory_id, in->factory_id, sizeof(o->in.factory_id));
    memcpy(o->in.requester, in->requester, sizeof(o->in.requester));
    o->in.count = in->count;
    o->callback_url = url;
    url = NULL;
    o->received_ms = util_now_ms();
    o->status = ORDER_SCHEDULED;
    *seq = o->seq;
    call_append(st, in->product_id, 1, in->count, LF_CALL_ACCEPTED);
    standin_unlock(st->si);
    return 0;
}

/* The record of order seq, or NULL when it is no longer kept. Lock held. */
static struct order_rec *order_find(lf_state_t *st, uint64_t seq)
{
    uint64_t oldest;

    if (st->orders_len == 0)
        return NULL;
    oldest = st->orders[st->orders_head].seq;
    if (seq < oldest || seq - oldest >= st->orders_len)
        return NULL;
    return &st->orders[(st->orders_head + (size_t)(seq - oldest)) % LF_RECORDS_MAX];
}

void state_order_attempt(lf_state_t *st, uint64_t seq)
{
    struct order_rec *o;

    standin_lock(st->si);
    o = order_find(st, seq);
    if (o != NULL) {
        o->attempts++;
        if (o->status == ORDER_SCHEDULED)
            o->status = ORDER_DELIVERING;
    }
    standin_unlock(st->si);
}

void state_order_result(lf_state_t *st, uint64_t seq, enum lf_cb_result r, int last)
{
    struct order_rec *o;

    standin_lock(st->si);
    o = order_find(st, seq);
    if (o != NULL) {
        if (r == LF_CB_DELIVERED) {
            o->deliveries++;
            o->status = ORDER_DELIVERED;
        } else if ((r == LF_CB_REJECTED || last) && o->deliveries == 0) {
            o->status = ORDER_CALLBACK_FAILED;
        }
    }
    standin_unlock(st->si);
}

static json_t *order_json(const struct order_rec *o)
{
    char at[32];

    if (util_rfc3339(o->received_ms, at, sizeof(at)) != 0)
        at[0] = '\0';
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i}",
                     "manufacture_id", o->id,
                     "product_id", o->in.product_id,
                     "count", (json_int_t)o->in.count,
                     "factory_id", o->in.factory_id,
                     "requester", o->in.requester,
                     "group_id", o->in.group_id,
                     "callback_url", o->callback_url,
                     "received_at", at,
                     "status", status_names[o->status],
                     "callback_attempts", o->attempts,
                     "deliveries", o->deliveries);
}

static json_t *call_json(const struct call_rec *c)
{
    char at[32];

    if (util_rfc3339(c->at_ms, at, sizeof(at)) != 0)
        at[0] = '\0';
    /* "o?" takes a new reference, or null for a NULL value */
    return json_pack("{s:s, s:o?, s:o?, s:s}",
                     "at", at,
                     "product_id", c->product_id[0] != '\0' ? json_string(c->product_id)
                                                             : NULL,
                     "count", c->has_count ? json_integer(c->count) : NULL,
                     "outcome", lf_outcome_name(c->outcome));
}

json_t *state_list(lf_state_t *st, const char *product_id)
{
    json_t *orders = json_array(), *calls = json_array(), *ret = NULL;
    size_t i;
    int oom = 0;

    if (orders == NULL || calls == NULL)
        goto done;
    standin_lock(st->si);
    for (i = 0; i < st->orders_len && !oom; i++) {
        const struct order_rec *o = &st->orders[(st->orders_head + i) % LF_RECORDS_MAX];

        /* json_array_append_new consumes the item even when it fails (NULL fails too) */
        if (product_id == NULL || strcmp(o->in.product_id, product_id) == 0)
            oom = json_array_append_new(orders, order_json(o)) != 0;
    }
    for (i = 0; i < st->calls_len && !oom; i++) {
        const struct call_rec *c = &st->calls[(st->calls_head + i) % LF_RECORDS_MAX];

        if (product_id == NULL || strcmp(c->product_id, product_id) == 0)
            oom = json_array_append_new(calls, call_json(c)) != 0;
    }
    standin_unlock(st->si);
    if (oom)
        goto done;
    /* "o" steals both arrays, also when json_pack fails */
    ret = json_pack("{s:o, s:o}", "manufactures", orders, "calls", calls);
    orders = NULL;
    calls = NULL;
done:
    json_decref(orders);
    json_decref(calls);
    return ret;
}
