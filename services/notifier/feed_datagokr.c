/* feed_datagokr: the public data portal's COVID-19 service (getCovid19InfStateJson), whose
 * answer is XML: read with libxml2, never by string search, and decided on like the JSON
 * feed, with one more reason (the portal refused our service key). */
#include "feed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "httpc.h"

#define ITEMS_MAX 1000            /* items read from one answer; more is invalid_data */
#define TEXT_MAX 256              /* bytes of one element's text that we read */

void feed_global_init(void)
{
    xmlInitParser();
}

void feed_global_cleanup(void)
{
    xmlCleanupParser();
}

/* The first element child of node named name, or NULL; *count (may be NULL) gets how many
 * there are. */
static xmlNodePtr child(xmlNodePtr node, const char *name, int *count)
{
    xmlNodePtr c, first = NULL;
    int n = 0;

    for (c = node != NULL ? node->children : NULL; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && xmlStrcmp(c->name, BAD_CAST name) == 0) {
            if (first == NULL)
                first = c;
            n++;
        }
    }
    if (count != NULL)
        *count = n;
    return first;
}

/* The text of node (its own text and CDATA children), trimmed, into out (cut at out_size;
 * a text that long is not a figure or a date anyway). "" for NULL. */
static void text_of(xmlNodePtr node, char *out, size_t out_size)
{
    xmlNodePtr c;
    size_t len = 0, start = 0, n;

    out[0] = '\0';
    for (c = node != NULL ? node->children : NULL; c != NULL; c = c->next) {
        if ((c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) ||
            c->content == NULL)
            continue;
        n = strlen((const char *)c->content);
        if (n > out_size - 1 - len)
            n = out_size - 1 - len;
        memcpy(out + len, c->content, n);
        len += n;
    }
    out[len] = '\0';
    while (len > 0 && strchr(" \t\r\n", out[len - 1]) != NULL)
        out[--len] = '\0';
    while (out[start] != '\0' && strchr(" \t\r\n", out[start]) != NULL)
        start++;
    memmove(out, out + start, len - start + 1);
}

/* The text of node's only child name into out. Returns 0, or -1 with err when it is
 * missing or repeated. */
static int field(xmlNodePtr node, const char *name, char *out, size_t out_size,
                 int seq, char *err, size_t err_size)
{
    int count;
    xmlNodePtr c = child(node, name, &count);

    if (count != 1) {
        httpc_errf(err, err_size, "item %d: %s '%s'", seq,
                   count == 0 ? "no" : "more than one", name);
        return -1;
    }
    text_of(c, out, out_size);
    return 0;
}

/* Reads a figure: decimal digits only, at most FEED_FIGURE_MAX. */
static int figure(xmlNodePtr item, const char *name, long long *out, int seq, char *err,
                  size_t err_size)
{
    char text[TEXT_MAX], *end;
    long long v;
    size_t i;

    if (field(item, name, text, sizeof(text), seq, err, err_size) != 0)
        return -1;
    for (i = 0; text[i] != '\0'; i++) {
        if (text[i] < '0' || text[i] > '9')
            break;
    }
    if (i == 0 || text[i] != '\0' || i > 16) {
        httpc_errf(err, err_size, "item %d: '%s' is not a non-negative integer: '%.40s'",
                   seq, name, text);
        return -1;
    }
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || v > FEED_FIGURE_MAX) {
        httpc_errf(err, err_size, "item %d: '%s' is above 10^15", seq, name);
        return -1;
    }
    *out = v;
    return 0;
}

/* "YYYYMMDD" (a real date) into "YYYY-MM-DD". Returns 0 or -1. */
static int compact_date(const char *s, char out[11])
{
    if (strlen(s) != 8)
        return -1;
    snprintf(out, 11, "%.4s-%.2s-%.2s", s, s + 4, s + 6);
    return feed_date_valid(out) ? 0 : -1;
}

/* Reads one item (stateDt and the four figures). */
static int read_item(xmlNodePtr item, int seq, feed_figures_t *f, char *err, size_t err_size)
{
    char text[TEXT_MAX];

    memset(f, 0, sizeof(*f));
    if (field(item, "stateDt", text, sizeof(text), seq, err, err_size) != 0)
        return -1;
    if (compact_date(text, f->date) != 0) {
        httpc_errf(err, err_size, "item %d: 'stateDt' is not a date YYYYMMDD: '%.40s'", seq,
                   text);
        return -1;
    }
    return figure(item, "decideCnt", &f->confirmed, seq, err, err_size) != 0 ||
           figure(item, "deathCnt", &f->deaths, seq, err, err_size) != 0 ||
           figure(item, "clearCnt", &f->recovered, seq, err, err_size) != 0 ||
           figure(item, "careCnt", &f->in_treatment, seq, err, err_size) != 0 ? -1 : 0;
}

/* The portal's resultCode (not "00") as a reason. */
static feed_reason_t result_reason(const char *code)
{
    char *end;
    long n;

    if (strcmp(code, "03") == 0)
        return FEED_NOT_PUBLISHED_YET;                /* NODATA_ERROR */
    n = strtol(code, &end, 10);
    if (end != code && *end == '\0' && n >= 10 && n <= 33)
        return FEED_SOURCE_REFUSED;                   /* bad request, key, quota, IP */
    return FEED_SOURCE_UNREACHABLE;                   /* application, DB, timeout, ... */
}

/* The first cumulative figure of now below before's: its name, or NULL. */
static const char *decreased(const feed_figures_t *now, const feed_figures_t *before,
                             long long *a, long long *b)
{
    if (now->confirmed < before->confirmed) {
        *a = now->confirmed, *b = before->confirmed;
        return "confirmed";
    }
    if (now->recovered < before->recovered) {
        *a = now->recovered, *b = before->recovered;
        return "recovered";
    }
    if (now->deaths < before->deaths) {
        *a = now->deaths, *b = before->deaths;
        return "deaths";
    }
    return NULL;
}

feed_reason_t feed_validate_datagokr(const char *body, size_t len, const char *today,
                                     const feed_figures_t *last, feed_figures_t *out,
                                     feed_figures_t *prev, int *has_prev,
                                     char *err, size_t err_size)
{
    feed_reason_t ret = FEED_INVALID_DATA;
    xmlParserCtxtPtr ctxt = NULL;   /* owned */
    xmlDocPtr doc = NULL;           /* owned */
    xmlNodePtr root, header, items, item;
    feed_figures_t f, newest, before;
    char yesterday[11], code[TEXT_MAX], words[TEXT_MAX];
    int nitems = 0, have_newest = 0, have_before = 0;
    const char *which;
    long long a, b;

    if (has_prev != NULL)
        *has_prev = 0;
    memset(&newest, 0, sizeof(newest));
    memset(&before, 0, sizeof(before));
    httpc_errf(err, err_size, "%s", "");
    if (feed_date_before(today, yesterday) != 0) {
        httpc_errf(err, err_size, "today's date is not a valid date");
        goto done;
    }
    if (body == NULL || len == 0 || len > FEED_BODY_MAX) {
        httpc_errf(err, err_size, len == 0 ? "empty answer" : "answer too long");
        goto done;
    }
    /* No network, no DTD loaded, no entity substituted (no XML_PARSE_NOENT: an external
     * entity is never read), nothing printed; the size is bounded above. */
    if ((ctxt = xmlNewParserCtxt()) == NULL) {
        httpc_errf(err, err_size, "out of memory");
        goto done;
    }
    doc = xmlCtxtReadMemory(ctxt, body, (int)len, NULL, NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                            XML_PARSE_NOCDATA);
    if (doc == NULL) {
        const xmlError *xe = xmlCtxtGetLastError(ctxt);

        httpc_errf(err, err_size, "not XML: %s", xe != NULL && xe->message != NULL
                                                   ? xe->message : "unreadable");
        /* libxml2's messages end with a newline, made '?' by httpc_printable */
        goto done;
    }
    if (doc->intSubset != NULL || doc->extSubset != NULL) {
        httpc_errf(err, err_size, "a document type declaration is not accepted");
        goto done;
    }
    root = xmlDocGetRootElement(doc);
    if (root != NULL && xmlStrcmp(root->name, BAD_CAST "OpenAPI_ServiceResponse") == 0) {
        xmlNodePtr h = child(root, "cmmMsgHeader", NULL);
        char reason[TEXT_MAX];

        text_of(child(h, "returnAuthMsg", NULL), words, sizeof(words));
        text_of(child(h, "returnReasonCode", NULL), reason, sizeof(reason));
        text_of(child(h, "errMsg", NULL), code, sizeof(code));
        ret = FEED_SOURCE_REFUSED;
        httpc_errf(err, err_size, "the portal refused the request: %.100s (reason code "
                   "%.20s)%s%.60s", words[0] != '\0' ? words : "no returnAuthMsg",
                   reason[0] != '\0' ? reason : "none", code[0] != '\0' ? ": " : "", code);
        goto done;
    }
    if (root == NULL || xmlStrcmp(root->name, BAD_CAST "response") != 0 ||
        (header = child(root, "header", NULL)) == NULL ||
        child(header, "resultCode", NULL) == NULL) {
        httpc_errf(err, err_size, "not a data portal answer: no response/header/resultCode");
        goto done;
    }
    text_of(child(header, "resultCode", NULL), code, sizeof(code));
    if (strcmp(code, "00") != 0) {
        text_of(child(header, "resultMsg", NULL), words, sizeof(words));
        ret = result_reason(code);
        httpc_errf(err, err_size, "resultCode %.20s: %.100s", code,
                   words[0] != '\0' ? words : "no resultMsg");
        goto done;
    }
    items = child(child(root, "body", NULL), "items", NULL);
    for (item = items != NULL ? items->children : NULL; item != NULL; item = item->next) {
        if (item->type != XML_ELEMENT_NODE || xmlStrcmp(item->name, BAD_CAST "item") != 0)
            continue;
        if (++nitems > ITEMS_MAX) {
            httpc_errf(err, err_size, "more than %d items", ITEMS_MAX);
            goto done;
        }
        if (read_item(item, nitems, &f, err, err_size) != 0)
            goto done;
        /* Newest first, says the portal; the latest date wins whatever the order, and of
         * two items of one day (a correction) the first. */
        if (!have_newest || strcmp(f.date, newest.date) > 0) {
            newest = f;
            have_newest = 1;
        }
        if (!have_before && strcmp(f.date, yesterday) == 0) {
            before = f;
            have_before = 1;
        }
    }
    if (!have_newest || strcmp(newest.date, yesterday) == 0) {
        ret = FEED_NOT_PUBLISHED_YET;
        if (have_newest)
            httpc_errf(err, err_size, "the newest item is yesterday's (%s)", newest.date);
        else
            httpc_errf(err, err_size, "no item at all for %s", today);
        goto done;
    }
    if (strcmp(newest.date, today) != 0) {
        ret = FEED_STALE_DATE;
        httpc_errf(err, err_size, "the newest item is dated %s, not today (%s)", newest.date,
                   today);
        goto done;
    }
    if (newest.confirmed == 0 && newest.recovered == 0 && newest.in_treatment == 0 &&
        newest.deaths == 0) {
        ret = FEED_ALL_ZERO;
        httpc_errf(err, err_size, "all four figures are 0");
        goto done;
    }
    if (have_before && (which = decreased(&newest, &before, &a, &b)) != NULL) {
        ret = FEED_DECREASING_TOTALS;
        httpc_errf(err, err_size, "%s %lld < %lld on %s in the same answer", which, a, b,
                   before.date);
        goto done;
    }
    if (last != NULL && (which = decreased(&newest, last, &a, &b)) != NULL) {
        ret = FEED_DECREASING_TOTALS;
        httpc_errf(err, err_size, "%s %lld < %lld on %.10s", which, a, b, last->date);
        goto done;
    }
    if (out != NULL)
        *out = newest;
    if (prev != NULL && have_before) {
        *prev = before;
        if (has_prev != NULL)
            *has_prev = 1;
    }
    ret = FEED_OK;
done:
    xmlFreeDoc(doc);
    xmlFreeParserCtxt(ctxt);
    return ret;
}
