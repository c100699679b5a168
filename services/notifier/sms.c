/* sms: the notifier's client of a Twilio-compatible Messages API: one send, and the
 * question "did this message already go out?" asked after an uncertain send. */
#include "sms.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

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
};

/* An answer's body, kept up to max bytes. */
struct body_buf {
    char *data;            /* owned, NUL-terminated once something arrived */
    size_t len, cap, max;
    int too_long;          /* more than max bytes came: the transfer was stopped */
};

/* ---------------------------------------------------------------------------------- */
/* Text for err */

/* Replaces, in text (changed in place), the bytes that are not printable ASCII, quotes
 * and backslashes by '?': safe in a log line, a JSON string and a database column. */
static void make_printable(char *text)
{
    size_t i;

    for (i = 0; text[i] != '\0'; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            text[i] = '?';
    }
}

/*
 * Copies at most SMS_MESSAGE_MAX characters of text from elsewhere (a gateway's message,
 * curl's words) into out, printable (make_printable), and with every run of digits that
 * looks like a phone number (7 digits or more, possibly with single spaces, '-', '.', '('
 * or ')' between them) masked but for its last four digits: a gateway may quote the
 * number in its message (Twilio's 21211 does), and err must never hold it.
 */
static void discreet_copy(const char *text, char *out, size_t out_size)
{
    size_t i = 0, j, last_digit, digits, k, seen;

    snprintf(out, out_size, "%.*s", SMS_MESSAGE_MAX, text != NULL ? text : "");
    make_printable(out);
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

/* Formats err (err may be NULL, err_size 0), then make_printable. The format and the
 * arguments are ours; text from elsewhere goes through discreet_copy first. */
static void set_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(err, err_size, fmt, ap) < 0)
        err[0] = '\0';
    va_end(ap);
    make_printable(err);
}

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

/* curl's write callback: keeps the bytes (NUL-terminated), or stops the transfer (returns
 * less than it was given) once there would be more than b->max. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body_buf *b = userdata;
    size_t n = size * nmemb;   /* size is always 1 */

    if (n > b->max - b->len) {
        b->too_long = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        if (cap > b->max + 1)
            cap = b->max + 1;
        p = realloc(b->data, cap);
        if (p == NULL)
            return 0;           /* CURLE_WRITE_ERROR: out of memory */
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* What one request gave. */
struct outcome {
    CURLcode rc;
    long status;           /* 0 when no answer came */
    int sent;              /* the request may have reached the gateway (see perform) */
    char cerr[CURL_ERROR_SIZE];
};

/*
 * Runs one request on c's handle: url, with form (NULL for a GET) as its POST body, HTTP
 * Basic auth, at most cfg.timeout_ms; the answer into body (up to body->max). Blocks.
 * out->sent tells whether the request may have reached the gateway: it is 0 only when
 * the transfer never got to the point of sending (name lookup or connect failed or timed
 * out). Returns 0, or -1 when the handle could not be set up (out->cerr says so).
 */
static int perform(sms_client_t *c, const char *url, const char *form, struct body_buf *body,
                   struct outcome *out)
{
    struct curl_slist *headers = NULL, *h;
    curl_off_t pretransfer = 0;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    curl_easy_reset(c->curl);   /* keeps the live connection, forgets the last options */
    /* "Expect:" off: no 100-continue round trip for a send */
    if ((h = curl_slist_append(headers, "Accept: application/json")) == NULL)
        goto setup_failed;
    headers = h;
    if ((h = curl_slist_append(headers, "Expect:")) == NULL)
        goto setup_failed;
    headers = h;
    if (curl_easy_setopt(c->curl, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->cfg.timeout_ms) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_USERAGENT, SMS_USER_AGENT) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_USERNAME, c->cfg.account_sid) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_PASSWORD, c->cfg.auth_token) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, out->cerr) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, body) != CURLE_OK)
        goto setup_failed;
    if (form != NULL) {
        if (curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, form) != CURLE_OK ||
            curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)strlen(form)) != CURLE_OK)
            goto setup_failed;
    } else if (curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L) != CURLE_OK) {
        goto setup_failed;
    }

    out->rc = curl_easy_perform(c->curl);
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &out->status);
    /* Pre-transfer time is set once the connection is up and the request about to go
     * (a reused connection too); 0 means nothing was sent. */
    if (curl_easy_getinfo(c->curl, CURLINFO_PRETRANSFER_TIME_T, &pretransfer) != CURLE_OK)
        pretransfer = 1;        /* unknown: assume it was sent */
    out->sent = out->rc == CURLE_OK || out->status != 0 || pretransfer > 0;
    ret = 0;
    goto done;
setup_failed:
    snprintf(out->cerr, sizeof(out->cerr), "cannot set up the request (out of memory?)");
done:
    /* nothing of this call may outlive it in the handle */
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, NULL);
    curl_slist_free_all(headers);
    return ret;
}

/* Returns 1 when the transfer failed for good (no complete answer): only a body cut by
 * our own limit still counts as an answer. */
static int transfer_failed(const struct outcome *o, const struct body_buf *b)
{
    return o->rc != CURLE_OK && !(o->rc == CURLE_WRITE_ERROR && b->too_long);
}

/* The words of a failed transfer, discreet, into out. */
static void transfer_error(const struct outcome *o, char *out, size_t out_size)
{
    discreet_copy(o->cerr[0] != '\0' ? o->cerr : curl_easy_strerror(o->rc), out, out_size);
}

/* Writes "HTTP <status>[: <message> (<code>)]" into err, message and code from a Twilio
 * error body when there is one. */
static void http_error_text(long status, const struct body_buf *b, char *err,
                            size_t err_size)
{
    json_t *doc = NULL;   /* owned */
    json_t *msg, *code;   /* borrowed from doc */
    char text[SMS_MESSAGE_MAX + 1];

    if (b->data != NULL && !b->too_long)
        doc = json_loadb(b->data, b->len, 0, NULL);
    msg = json_object_get(doc, "message");     /* NULL-safe */
    code = json_object_get(doc, "code");
    if (json_is_string(msg))
        discreet_copy(json_string_value(msg), text, sizeof(text));
    if (json_is_string(msg) && json_is_integer(code))
        set_err(err, err_size, "HTTP %ld: %s (%lld)", status, text,
                (long long)json_integer_value(code));
    else if (json_is_string(msg))
        set_err(err, err_size, "HTTP %ld: %s", status, text);
    else
        set_err(err, err_size, "HTTP %ld", status);
    json_decref(doc);
}

/* Returns 1 if s is a SID worth keeping: 1..size-1 letters and digits. */
static int sid_ok(const char *s, size_t size)
{
    return s != NULL && size > 1 && util_alnum_valid(s, size - 1);
}

/* ---------------------------------------------------------------------------------- */
/* Send */

/* Appends "&key=<escaped value>" ("key=..." first) to the form being built in *form
 * (owned, reallocated). Returns 0, or -1 when out of memory. */
static int form_add(CURL *curl, char **form, const char *key, const char *value)
{
    char *esc = curl_easy_escape(curl, value, 0);   /* owned; curl_free */
    size_t old = *form != NULL ? strlen(*form) : 0, size;
    char *p;
    int ret = -1;

    if (esc == NULL)
        goto done;
    size = old + 1 + strlen(key) + 1 + strlen(esc) + 1;
    p = realloc(*form, size);
    if (p == NULL)
        goto done;
    snprintf(p + old, size - old, "%s%s=%s", old > 0 ? "&" : "", key, esc); /* fits */
    *form = p;
    ret = 0;
done:
    curl_free(esc);
    return ret;
}

sms_result_t sms_send(sms_client_t *c, const char *to, const char *body,
                      char *sid, size_t sid_size, char *err, size_t err_size)
{
    sms_result_t ret = SMS_RETRY;
    struct body_buf b = { NULL, 0, 0, SMS_SEND_BODY_MAX, 0 };
    struct outcome o;
    char *form = NULL;      /* owned */
    char why[CURL_ERROR_SIZE];
    json_t *doc = NULL;     /* owned */
    json_t *jsid;           /* borrowed from doc */

    if (sid != NULL && sid_size > 0)
        sid[0] = '\0';
    set_err(err, err_size, "%s", "");
    if (c == NULL || to == NULL || body == NULL) {
        set_err(err, err_size, "no client, number or body");
        goto done;
    }
    if (form_add(c->curl, &form, "To", to) != 0 ||
        form_add(c->curl, &form, "From", c->cfg.from) != 0 ||
        form_add(c->curl, &form, "Body", body) != 0) {
        set_err(err, err_size, "out of memory");
        goto done;
    }
    if (perform(c, c->messages_url, form, &b, &o) != 0) {
        set_err(err, err_size, "%s", o.cerr);
        goto done;
    }
    if (transfer_failed(&o, &b)) {
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
        transfer_error(&o, why, sizeof(why));
        set_err(err, err_size, "%s", why);
        goto done;
    }
    if (o.status < 200 || o.status > 299) {
        if (o.status == 429 || o.status >= 500)
            ret = SMS_RETRY;
        else if (o.status >= 400)
            ret = SMS_REJECTED;
        else
            ret = SMS_RETRY;    /* 1xx or 3xx (redirects are not followed): not taken */
        http_error_text(o.status, &b, err, err_size);
        goto done;
    }
    /* 2xx: taken. Without a SID to record, it is still taken: uncertain, so that the
     * next try asks the list instead of sending again. */
    ret = SMS_UNCERTAIN;
    if (b.too_long) {
        set_err(err, err_size, "HTTP %ld with an answer over %ld bytes", o.status,
                SMS_SEND_BODY_MAX);
        goto done;
    }
    if (b.data != NULL)
        doc = json_loadb(b.data, b.len, 0, NULL);
    jsid = json_object_get(doc, "sid");
    if (!json_is_string(jsid) || !sid_ok(json_string_value(jsid), sid_size)) {
        set_err(err, err_size, "HTTP %ld without a readable sid", o.status);
        goto done;
    }
    snprintf(sid, sid_size, "%s", json_string_value(jsid)); /* checked: fits */
    set_err(err, err_size, "HTTP %ld", o.status);
    ret = SMS_SENT;
done:
    json_decref(doc);
    free(form);
    free(b.data);
    return ret;
}

/* ---------------------------------------------------------------------------------- */
/* Find */

/* Returns 1 if s is "YYYY-MM-DD" in shape (digits and dashes; the gateway judges the
 * date): enough to put it in a URL unescaped. */
static int date_shaped(const char *s)
{
    size_t i;

    if (s == NULL || strlen(s) != 10)
        return 0;
    for (i = 0; i < 10; i++) {
        if ((i == 4 || i == 7) ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
            return 0;
    }
    return 1;
}

int sms_find(sms_client_t *c, const char *to, const char *body, const char *since,
             char *sid, size_t sid_size, char *err, size_t err_size)
{
    int ret = -1;
    struct body_buf b = { NULL, 0, 0, SMS_LIST_BODY_MAX, 0 };
    struct outcome o;
    char *esc_to = NULL;    /* owned; curl_free */
    char *url = NULL;       /* owned */
    char why[CURL_ERROR_SIZE];
    size_t url_size, i;
    json_t *doc = NULL;     /* owned */
    json_t *list, *next;    /* borrowed from doc */

    if (sid != NULL && sid_size > 0)
        sid[0] = '\0';
    set_err(err, err_size, "%s", "");
    if (c == NULL || to == NULL || body == NULL || !date_shaped(since)) {
        set_err(err, err_size, "no client, number, body or date YYYY-MM-DD");
        goto done;
    }
    esc_to = curl_easy_escape(c->curl, to, 0);
    if (esc_to == NULL) {
        set_err(err, err_size, "out of memory");
        goto done;
    }
    /* Twilio's "DateSent>=" filter: the key "DateSent>" escaped. */
    url_size = strlen(c->messages_url) + strlen(esc_to) + 64;
    url = malloc(url_size);
    if (url == NULL) {
        set_err(err, err_size, "out of memory");
        goto done;
    }
    snprintf(url, url_size, "%s?To=%s&DateSent%%3E=%s&PageSize=%d", c->messages_url,
             esc_to, since, SMS_LIST_PAGE_SIZE); /* sized to fit */
    if (perform(c, url, NULL, &b, &o) != 0) {
        set_err(err, err_size, "%s", o.cerr);
        goto done;
    }
    if (transfer_failed(&o, &b)) {
        transfer_error(&o, why, sizeof(why));
        set_err(err, err_size, "list: %s", why);
        goto done;
    }
    if (o.status < 200 || o.status > 299) {
        http_error_text(o.status, &b, why, sizeof(why));
        set_err(err, err_size, "list: %s", why);
        goto done;
    }
    if (b.too_long) {
        set_err(err, err_size, "list: answer over %ld bytes", SMS_LIST_BODY_MAX);
        goto done;
    }
    doc = b.data != NULL ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    list = json_object_get(doc, "messages");
    if (!json_is_array(list)) {
        set_err(err, err_size, "list: answer without a \"messages\" array");
        goto done;
    }
    for (i = 0; i < json_array_size(list); i++) {
        json_t *m = json_array_get(list, i);
        json_t *mto = json_object_get(m, "to"), *mbody = json_object_get(m, "body");
        json_t *msid = json_object_get(m, "sid");

        if (!json_is_string(mto) || !json_is_string(mbody) ||
            strcmp(json_string_value(mto), to) != 0 ||
            strcmp(json_string_value(mbody), body) != 0)
            continue;
        if (!json_is_string(msid) || !sid_ok(json_string_value(msid), sid_size)) {
            set_err(err, err_size, "list: the message is there, without a readable sid");
            goto done;
        }
        snprintf(sid, sid_size, "%s", json_string_value(msid)); /* checked: fits */
        set_err(err, err_size, "found");
        ret = 1;
        goto done;
    }
    /* Only the first page is read: with more, the message may be on another one. */
    next = json_object_get(doc, "next_page_uri");
    if (next != NULL && !json_is_null(next)) {
        set_err(err, err_size, "list: more than %d messages to this number since %s, "
                "not all read", SMS_LIST_PAGE_SIZE, since);
        goto done;
    }
    set_err(err, err_size, "not found among %zu messages since %s", json_array_size(list),
            since);
    ret = 0;
done:
    json_decref(doc);
    free(url);
    curl_free(esc_to);
    free(b.data);
    return ret;
}
