/* http_reply: what a route handler uses: JSON answers and errors, request headers, query
 * arguments, the JSON body, bearer tokens. */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "http_int.h"
#include "util.h"

/* Returns a new JSON string for msg, or NULL when out of memory. Bytes that are not valid
 * UTF-8 (for example a JSON parser message quoting the client's bytes, or a message cut
 * inside a character) are replaced by '?', since jansson accepts only UTF-8. */
json_t *http_safe_string(const char *msg)
{
    char copy[HTTP_ERROR_MAX];
    json_t *str;
    size_t i;

    str = json_string(msg);
    if (str != NULL)
        return str;
    if (snprintf(copy, sizeof(copy), "%s", msg) < 0) /* a cut message is still useful */
        copy[0] = '\0';
    for (i = 0; copy[i] != '\0'; i++) {
        if ((unsigned char)copy[i] >= 0x80)
            copy[i] = '?';
    }
    return json_string(copy);
}

/* Returns a new {"error": msg} object, or NULL when out of memory. */
json_t *http_error_body(const char *msg)
{
    json_t *obj = json_object();

    /* json_object_set_new consumes the value even when it fails */
    if (obj == NULL || json_object_set_new(obj, "error", http_safe_string(msg)) != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

void http_json(http_response_t *res, int status, json_t *body)
{
    json_t *old = res->body;

    res->status = status;
    res->body = body; /* reference stolen */
    json_decref(old);
}

void http_text(http_response_t *res, int status, const char *content_type, const char *data,
               size_t len)
{
    char *copy = malloc(len + 1);

    free(res->text);
    res->text = NULL;
    res->text_len = 0;
    if (copy == NULL) {
        http_error(res, 500, "out of memory");
        return;
    }
    memcpy(copy, data, len);
    copy[len] = '\0';
    /* a placeholder body: the server's rules for a response that has one hold */
    http_json(res, status, json_null());
    res->text = copy;
    res->text_len = len;
    snprintf(res->content_type, sizeof(res->content_type), "%s", content_type);
}

void http_error(http_response_t *res, int status, const char *fmt, ...)
{
    char msg[HTTP_ERROR_MAX];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0) /* a cut message is still useful */
        snprintf(msg, sizeof(msg), "error");
    va_end(ap);
    /* NULL when out of memory: the server then answers 500. */
    http_json(res, status, http_error_body(msg));
}

/* ---------------------------------------------------------------------------------- */
/* Helpers for handlers */

const char *http_header(const http_request_t *req, const char *name)
{
    if (req == NULL || req->conn == NULL || name == NULL)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

int http_client_ip(const http_request_t *req, char *out, size_t out_size)
{
    const union MHD_ConnectionInfo *info;
    const struct sockaddr *sa;

    if (out_size == 0)
        return -1;
    out[0] = '\0';
    if (req == NULL || req->conn == NULL)
        return -1;
    info = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info == NULL || (sa = info->client_addr) == NULL)
        return -1;
    if (sa->sa_family == AF_INET)
        return inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                         out, (socklen_t)out_size) != NULL ? 0 : -1;
    if (sa->sa_family == AF_INET6)
        return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                         out, (socklen_t)out_size) != NULL ? 0 : -1;
    return -1;
}

const char *http_query(const http_request_t *req, const char *name)
{
    if (req == NULL || req->conn == NULL || name == NULL)
        return NULL;
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

json_t *http_body_object(const http_request_t *req, http_response_t *res)
{
    json_error_t err;
    json_t *obj;

    if (req->body == NULL || req->body_len == 0) {
        http_error(res, MHD_HTTP_BAD_REQUEST, "request body is empty");
        return NULL;
    }
    /* JSON_DECODE_ANY so that a bare string or number gets the "must be an object"
     * message rather than a parser error. */
    obj = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (obj == NULL) {
        http_error(res, MHD_HTTP_BAD_REQUEST, "malformed JSON: %s at line %d column %d",
                   err.text, err.line, err.column);
        return NULL;
    }
    if (!json_is_object(obj)) {
        json_decref(obj);
        http_error(res, MHD_HTTP_BAD_REQUEST, "request body must be a JSON object");
        return NULL;
    }
    return obj; /* new reference, owned by the caller */
}

int http_check_bearer(const http_request_t *req, http_response_t *res, const char *token)
{
    const char *h = http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *given;

    /* An empty configured token would let an empty "Bearer " in: fail closed. */
    if (h != NULL && token != NULL && token[0] != '\0' &&
        strncasecmp(h, "Bearer ", 7) == 0) {
        given = h + 7;
        while (*given == ' ')
            given++;
        if (given[0] != '\0' && util_streq_ct(given, token))
            return 1;
    }
    http_error(res, MHD_HTTP_UNAUTHORIZED, "missing or invalid admin token");
    snprintf(res->www_authenticate, sizeof(res->www_authenticate), "Bearer");
    return 0;
}
