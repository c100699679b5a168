/* sms: the notifier's client of a Twilio-compatible Messages API: one send, and the
 * question "did this message already go out?" asked after an uncertain send. */
#include "sms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "httpc.h"
#include "strbuf.h"
#include "util.h"

#define SMS_API_PATH       "/2010-04-01/Accounts/"
#define SMS_SEND_BODY_MAX  (64L * 1024)          /* bytes of a send's answer kept */
#define SMS_LIST_BODY_MAX  (4L * 1024 * 1024)    /* bytes of a list's answer kept */
#define SMS_LIST_PAGE_SIZE 1000                  /* Twilio's largest page */
#define SMS_ACCOUNT_MAX    64                    /* characters of an account SID */
#define SMS_MESSAGE_MAX    120                   /* characters of a gateway's message in err */
#define SMS_USER_AGENT     "dozen-notifier"

struct sms_client {
    sms_config_t cfg;      /* strings borrowed */
    CURL *curl;            /* owned; keeps its connection alive between requests */
    char *messages_url;    /* owned: "{gateway}/2010-04-01/Accounts/{sid}/Messages.json" */
    size_t base_len;       /* bytes of messages_url before its path */
};

/* ---------------------------------------------------------------------------------- */
/* Text for err */

/*
 * Copies at most SMS_MESSAGE_MAX characters of text from elsewhere (a gateway's message,
 * curl's words) into out, printable (httpc_printable), and with every run of digits that
 * looks like a phone number (7 digits or more, possibly with single spaces, '-', '.', '('
 * or ')' between them) masked but for its last four digits: a gateway may quote the
 * number in its message (Twilio's 21211 does), and err must never hold it.
 */
static void discreet_copy(const char *text, char *out, size_t out_size)
{
    size_t i = 0, j, last_digit, digits, k, seen;

    snprintf(out, out_size, "%.*s", SMS_MESSAGE_MAX, text != NULL ? text : "");
    httpc_printable(out);
    while (out[i] != '\0') {
        if (out[i] < '0' || out[i] > '9') {
            i++;
            continue;
        }
        /* a run: digits, and single separators between digits */
        digits = 0;
        last_digit = i;
        for (j = i; out[j] != '\0'; j++) {
            if (out[j] >= '0' && out[j] <= '9') {
                digits++;
                last_digit = j;
            } else if (strchr(" -.()", out[j]) == NULL || out[j + 1] < '0' ||
                       out[j + 1] > '9') {
                break;
            }
        }
        if (digits >= 7) {
            for (k = i, seen = 0; k <= last_digit; k++) {
                if (out[k] >= '0' && out[k] <= '9' && seen++ < digits - 4)
                    out[k] = '*';
            }
        }
        i = last_digit + 1;
    }
}

/* err is always written with httpc_errf: the format and the arguments are ours; text
 * from elsewhere goes through discreet_copy first. */

/* ---------------------------------------------------------------------------------- */
/* The client */


sms_client_t *sms_client_new(const sms_config_t *cfg, char *errstr, size_t errstr_size)
{
    sms_client_t *c = NULL, *ret = NULL;
    size_t base_len, url_size;

    if (cfg == NULL || cfg->gateway_url == NULL || cfg->account_sid == NULL ||
        cfg->auth_token == NULL || cfg->from == NULL) {
        util_errf(errstr, errstr_size, "SMS configuration is incomplete");
        goto done;
    }
    if (strncmp(cfg->gateway_url, "http://", 7) != 0 &&
        strncmp(cfg->gateway_url, "https://", 8) != 0) {
        util_errf(errstr, errstr_size, "SMS gateway URL must start with http:// or https://");
        goto done;
    }
    /* It goes into the path unescaped: Twilio's are "AC" and 32 hex digits. */
    if (!util_alnum_valid(cfg->account_sid, SMS_ACCOUNT_MAX)) {
        util_errf(errstr, errstr_size, "SMS account SID must be 1 to %d letters and digits",
                  SMS_ACCOUNT_MAX);
        goto done;
    }
    if (cfg->auth_token[0] == '\0' || cfg->from[0] == '\0' || cfg->timeout_ms <= 0) {
        util_errf(errstr, errstr_size, "SMS auth token, sender and timeout must be set");
        goto done;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    c->cfg = *cfg;
    base_len = strlen(cfg->gateway_url);
    while (base_len > 0 && cfg->gateway_url[base_len - 1] == '/')
        base_len--;
    url_size = base_len + sizeof(SMS_API_PATH) + strlen(cfg->account_sid) +
               sizeof("/Messages.json");
    c->messages_url = malloc(url_size);
    if (c->messages_url == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    c->base_len = base_len;
    snprintf(c->messages_url, url_size, "%.*s" SMS_API_PATH "%s/Messages.json",
             (int)base_len, cfg->gateway_url, cfg->account_sid); /* sized to fit */
    c->curl = curl_easy_init();
    if (c->curl == NULL) {
        util_errf(errstr, errstr_size, "cannot create a curl handle");
        goto done;
    }
    ret = c;
    c = NULL; /* ownership passed to the caller */
done:
    sms_client_free(c);
    return ret;
}

void sms_client_free(sms_client_t *c)
{
    if (c == NULL)
        return;
    if (c->curl != NULL)
        curl_easy_cleanup(c->curl);
    free(c->messages_url);
    free(c);
}

/* ---------------------------------------------------------------------------------- */
/* One request */

/*
 * Runs one request on c's handle: url, with form (NULL for a GET) as its POST body, HTTP
 * Basic auth, at most cfg.timeout_ms; the answer into body (up to body->max). Blocks.
 * Returns 0 when an answer came (res->status; res->too_long when body was cut), or -1 when
 * the transfer failed (res->rc, res->sent) with its words, discreet, in why.
 */
static int perform(sms_client_t *c, const char *url, const char *form, strbuf_t *body,
                   httpc_result_t *res, char *why, size_t why_size)
{
    /* "Expect:" off: no 100-continue round trip for a send */
    static const char *const headers[] = { "Accept: application/json", "Expect:", NULL };
    httpc_request_t req = { .headers = headers, .user_agent = SMS_USER_AGENT };
    char cerr[CURL_ERROR_SIZE];

    req.url = url;
    req.body = form;
    req.body_len = form != NULL ? strlen(form) : 0;
    req.username = c->cfg.account_sid;
    req.password = c->cfg.auth_token;
    req.timeout_ms = c->cfg.timeout_ms;
    if (httpc_request(c->curl, &req, body, res, cerr, sizeof(cerr)) == 0)
        return 0;
    discreet_copy(cerr, why, why_size);
    return -1;
}

/* Writes "HTTP <status>[: <message> (<code>)]" into err, message and code from a Twilio
 * error body when there is one. */
static void http_error_text(const httpc_result_t *res, const strbuf_t *b, char *err,
                            size_t err_size)
{
    json_t *doc = NULL;   /* owned */
    json_t *msg, *code;   /* borrowed from doc */
    char text[SMS_MESSAGE_MAX + 1];

    if (!res->too_long)
        doc = json_loadb(b->buf, b->len, 0, NULL);
    msg = json_object_get(doc, "message");     /* NULL-safe */
    code = json_object_get(doc, "code");
    if (json_is_string(msg))
        discreet_copy(json_string_value(msg), text, sizeof(text));
    if (json_is_string(msg) && json_is_integer(code))
        httpc_errf(err, err_size, "HTTP %ld: %s (%lld)", res->status, text,
                   (long long)json_integer_value(code));
    else if (json_is_string(msg))
        httpc_errf(err, err_size, "HTTP %ld: %s", res->status, text);
    else
        httpc_errf(err, err_size, "HTTP %ld", res->status);
    json_decref(doc);
}

/* Returns 1 if s is a SID worth keeping: 1..size-1 letters and digits. */
static int sid_ok(const char *s, size_t size)
{
    return s != NULL && size > 1 && util_alnum_valid(s, size - 1);
}

/* ---------------------------------------------------------------------------------- */
/* Send */

sms_result_t sms_send(sms_client_t *c, const char *to, const char *body,
                      const char *status_callback, char *sid, size_t sid_size,
                      long long *retry_after_ms, char *err, size_t err_size)
{
    sms_result_t ret = SMS_RETRY;
    strbuf_t b;             /* owned: the answer */
    strbuf_t form;          /* owned */
    httpc_result_t o;
    char why[CURL_ERROR_SIZE];
    json_t *doc = NULL;     /* owned */
    json_t *jsid;           /* borrowed from doc */

    strbuf_init(&b, SMS_SEND_BODY_MAX);
    strbuf_init(&form, 0);
    if (sid != NULL && sid_size > 0)
        sid[0] = '\0';
    httpc_errf(err, err_size, "%s", "");
    if (c == NULL || to == NULL || body == NULL) {
        httpc_errf(err, err_size, "no client, number or body");
        goto done;
    }
    httpc_form_add(&form, "To", to);
    if (retry_after_ms != NULL)
        *retry_after_ms = 0;
    httpc_form_add(&form, "From", c->cfg.from);
    if (status_callback != NULL)
        httpc_form_add(&form, "StatusCallback", status_callback);
    if (httpc_form_add(&form, "Body", body) != 0) {
        httpc_errf(err, err_size, "out of memory");
        goto done;
    }
    if (perform(c, c->messages_url, form.buf, &b, &o, why, sizeof(why)) != 0) {
        switch (o.rc) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_CONNECT:
            ret = SMS_RETRY;
            break;
        case CURLE_GOT_NOTHING:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
            ret = SMS_UNCERTAIN;
            break;
        default:
            /* a timeout, or anything else: uncertain once the request may have gone */
            ret = o.sent ? SMS_UNCERTAIN : SMS_RETRY;
            break;
        }
        httpc_errf(err, err_size, "%s", why);
        goto done;
    }
    if (o.status < 200 || o.status > 299) {
        if (o.status == 429) {
            ret = SMS_THROTTLED;
            if (retry_after_ms != NULL)
                *retry_after_ms = o.retry_after_s > 0 ? o.retry_after_s * 1000LL : 1000;
        } else if (o.status >= 500)
            ret = SMS_RETRY;
        else if (o.status >= 400)
            ret = SMS_REJECTED;
        else
            ret = SMS_RETRY;    /* 1xx or 3xx (redirects are not followed): not taken */
        http_error_text(&o, &b, err, err_size);
        goto done;
    }
    /* 2xx: taken. Without a SID to record, it is still taken: uncertain, so that the
     * next try asks the list instead of sending again. */
    ret = SMS_UNCERTAIN;
    if (o.too_long) {
        httpc_errf(err, err_size, "HTTP %ld with an answer over %ld bytes", o.status,
                   SMS_SEND_BODY_MAX);
        goto done;
    }
    doc = json_loadb(b.buf, b.len, 0, NULL);
    jsid = json_object_get(doc, "sid");
    if (!json_is_string(jsid) || !sid_ok(json_string_value(jsid), sid_size)) {
        httpc_errf(err, err_size, "HTTP %ld without a readable sid", o.status);
        goto done;
    }
    snprintf(sid, sid_size, "%s", json_string_value(jsid)); /* checked: fits */
    httpc_errf(err, err_size, "HTTP %ld", o.status);
    ret = SMS_SENT;
done:
    json_decref(doc);
    strbuf_release(&form);
    strbuf_release(&b);
    return ret;
}

/* ---------------------------------------------------------------------------------- */
/* Find */

static const char *const months[12] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    long long era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

/* Reads exactly n digits at *p into *v and moves *p past them. */
static int digits(const char **p, int n, int *v)
{
    int i;

    *v = 0;
    for (i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -1;
        *v = *v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return 0;
}

int sms_date_parse(const char *s, long long *ms)
{
    static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    const char *p = s;
    int day, mon = -1, year, hh, mm, ss, zh, zm, i, sign;

    if (s == NULL)
        return -1;
    /* "Tue, " */
    if (strlen(p) < 5 || p[3] != ',' || p[4] != ' ')
        return -1;
    p += 5;
    if (digits(&p, 2, &day) != 0 || *p++ != ' ')
        return -1;
    for (i = 0; i < 12; i++) {
        if (strncmp(p, months[i], 3) == 0)
            mon = i;
    }
    if (mon < 0 || p[3] != ' ')
        return -1;
    p += 4;
    if (digits(&p, 4, &year) != 0 || *p++ != ' ' || digits(&p, 2, &hh) != 0 ||
        *p++ != ':' || digits(&p, 2, &mm) != 0 || *p++ != ':' ||
        digits(&p, 2, &ss) != 0 || *p++ != ' ')
        return -1;
    if (*p != '+' && *p != '-')
        return -1;
    sign = *p++ == '-' ? -1 : 1;
    if (digits(&p, 2, &zh) != 0 || digits(&p, 2, &zm) != 0 || *p != '\0')
        return -1;
    if (year < 1970 || day < 1 || day > mdays[mon] || hh > 23 || mm > 59 || ss > 60 ||
        zh > 23 || zm > 59 ||
        (mon == 1 && day == 29 && !(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))))
        return -1;
    *ms = ((days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400LL +
            hh * 3600LL + mm * 60LL + ss) - sign * (zh * 3600LL + zm * 60LL)) * 1000LL;
    return 0;
}

/* Returns 1 if uri is a list page's URI of this client's account: its messages path, then
 * '?', then printable ASCII without spaces: safe to append to the gateway's URL. */
static int page_uri_ok(const sms_client_t *c, const char *uri)
{
    const char *path = c->messages_url + c->base_len;
    size_t n = strlen(path);

    if (strncmp(uri, path, n) != 0 || uri[n] != '?' || strlen(uri) > 2048)
        return 0;
    for (uri += n; *uri != '\0'; uri++) {
        if (*uri <= 0x20 || *uri >= 0x7f)
            return 0;
    }
    return 1;
}

int sms_find(sms_client_t *c, const char *to, const char *body, long long since_ms,
             char (*sids)[SMS_SID_MAX], char *err, size_t err_size)
{
    int ret = -1, found = 0, page, complete = 0, older;
    strbuf_t b;             /* owned: the answer */
    strbuf_t url;           /* owned */
    httpc_result_t o;
    char why[CURL_ERROR_SIZE];
    size_t i;
    long long since_s, created;
    json_t *doc = NULL;     /* owned */
    json_t *list, *next;    /* borrowed from doc */

    strbuf_init(&b, SMS_LIST_BODY_MAX);
    strbuf_init(&url, 0);
    httpc_errf(err, err_size, "%s", "");
    if (c == NULL || to == NULL || body == NULL || sids == NULL || since_ms <= 0) {
        httpc_errf(err, err_size, "no client, number, body or time");
        goto done;
    }
    since_s = since_ms / 1000 * 1000;   /* date_created is to the second */
    strbuf_addf(&url, "%s?", c->messages_url);
    httpc_form_add(&url, "To", to);
    strbuf_addf(&url, "&");
    httpc_form_add(&url, "From", c->cfg.from);
    strbuf_addf(&url, "&PageSize=%d", SMS_LIST_PAGE_SIZE);
    for (page = 0; page < SMS_FIND_PAGES && !complete; page++) {
        if (url.failed) {
            httpc_errf(err, err_size, "out of memory");
            goto done;
        }
        if (perform(c, url.buf, NULL, &b, &o, why, sizeof(why)) != 0) {
            httpc_errf(err, err_size, "list: %s", why);
            goto done;
        }
        if (o.status < 200 || o.status > 299) {
            http_error_text(&o, &b, why, sizeof(why));
            httpc_errf(err, err_size, "list: %s", why);
            goto done;
        }
        if (o.too_long) {
            httpc_errf(err, err_size, "list: answer over %ld bytes", SMS_LIST_BODY_MAX);
            goto done;
        }
        json_decref(doc);
        doc = json_loadb(b.buf, b.len, 0, NULL);
        list = json_object_get(doc, "messages");
        if (!json_is_array(list)) {
            httpc_errf(err, err_size, "list: answer without a \"messages\" array");
            goto done;
        }
        older = 0;
        for (i = 0; i < json_array_size(list); i++) {
            json_t *m = json_array_get(list, i);
            const char *mto = json_string_value(json_object_get(m, "to"));
            const char *mfrom = json_string_value(json_object_get(m, "from"));
            const char *mbody = json_string_value(json_object_get(m, "body"));
            const char *msid = json_string_value(json_object_get(m, "sid"));

            /* Most recent first: a page that reaches back before the first claim is the
             * last to read (the whole page is read: a queued message, without date_sent,
             * need not sort exactly by date_created). */
            if (sms_date_parse(json_string_value(json_object_get(m, "date_created")),
                               &created) != 0) {
                httpc_errf(err, err_size, "list: a message without a readable "
                           "date_created");
                goto done;
            }
            if (created < since_s) {
                older = 1;
                continue;
            }
            if (mto == NULL || mbody == NULL || strcmp(mto, to) != 0 ||
                strcmp(mbody, body) != 0 || (mfrom != NULL && strcmp(mfrom, c->cfg.from) != 0))
                continue;
            if (msid == NULL || !sid_ok(msid, SMS_SID_MAX)) {
                httpc_errf(err, err_size, "list: the message is there, without a readable "
                           "sid");
                goto done;
            }
            if (found == SMS_FIND_MAX) {
                httpc_errf(err, err_size, "list: more than %d messages match",
                           SMS_FIND_MAX);
                goto done;
            }
            snprintf(sids[found++], SMS_SID_MAX, "%s", msid); /* checked: fits */
        }
        next = json_object_get(doc, "next_page_uri");
        if (older || next == NULL || json_is_null(next)) {
            complete = 1;
            break;
        }
        if (!json_is_string(next) || !page_uri_ok(c, json_string_value(next))) {
            httpc_errf(err, err_size, "list: a next_page_uri not of this account");
            goto done;
        }
        strbuf_reset(&url);
        strbuf_addf(&url, "%.*s%s", (int)c->base_len, c->messages_url,
                    json_string_value(next));
    }
    if (!complete) {
        httpc_errf(err, err_size, "list: more than %d pages of messages since the claim, "
                   "not all read", SMS_FIND_PAGES);
        goto done;
    }
    httpc_errf(err, err_size, "%d found", found);
    ret = found;
done:
    json_decref(doc);
    strbuf_release(&url);
    strbuf_release(&b);
    return ret;
}
