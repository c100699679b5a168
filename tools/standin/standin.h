/* standin: what the stand-ins (legacy-factory, open-data, sms-gateway) share: one lock, a
 * stop flag and a stoppable sleep; the mode (their knobs) described by a table, from which
 * POST /admin/mode patches it and GET /admin/mode shows it; and the admin routes. Each
 * stand-in keeps only its domain: its endpoints, its records, its behaviour. */
#ifndef DOZEN_STANDIN_H
#define DOZEN_STANDIN_H

#include <stddef.h>
#include <jansson.h>

#include "http.h"

/* The limits of the common knobs, the same in every stand-in. */
#define STANDIN_FAIL_NEXT_MAX 1000000000LL
#define STANDIN_SLOW_MS_MAX   60000LL

enum standin_knob_type {
    STANDIN_KNOB_INT,     /* a long long in [min, max]; JSON integer */
    STANDIN_KNOB_BOOL,    /* an int 0 or 1; JSON true or false */
    STANDIN_KNOB_OBJECT,  /* a struct described by sub; JSON object, any subset of its keys */
    STANDIN_KNOB_CUSTOM   /* the stand-in's own: patch, json and log functions */
};

/*
 * One knob of a mode struct. offset is where its field is in the struct the table
 * describes (the mode, or the field of an OBJECT knob). For a CUSTOM knob the functions
 * get that whole struct:
 *   patch: reads v (borrowed) into it; returns 0, or -1 with a message in errstr;
 *   json:  its value as a new reference (NULL when out of memory);
 *   log:   its value for a log line (a buffer of log_size bytes; values are validated, so
 *          they are written as they are), or NULL to leave the knob out of log lines.
 */
struct standin_knob {
    const char *name;              /* NULL ends a table */
    enum standin_knob_type type;
    size_t offset;
    long long min, max;            /* INT */
    const struct standin_knob *sub; /* OBJECT */
    int (*patch)(json_t *v, void *mode, char *errstr, size_t errstr_size);
    json_t *(*json)(const void *mode);
    void (*log)(const void *mode, char *out, size_t out_size);
};

#define STANDIN_INT(type, field, lo, hi) \
    { #field, STANDIN_KNOB_INT, offsetof(type, field), (lo), (hi), NULL, NULL, NULL, NULL }
#define STANDIN_BOOL(type, field) \
    { #field, STANDIN_KNOB_BOOL, offsetof(type, field), 0, 1, NULL, NULL, NULL, NULL }
#define STANDIN_OBJECT(type, field, table) \
    { #field, STANDIN_KNOB_OBJECT, offsetof(type, field), 0, 0, (table), NULL, NULL, NULL }
#define STANDIN_CUSTOM(name, patch_fn, json_fn, log_fn) \
    { (name), STANDIN_KNOB_CUSTOM, 0, 0, 0, NULL, (patch_fn), (json_fn), (log_fn) }
#define STANDIN_END { NULL, STANDIN_KNOB_INT, 0, 0, 0, NULL, NULL, NULL, NULL }

/* The common knobs: a long long fail_next (answer failures to this many more calls), a
 * long long slow_ms (sleep before answering) and an int down (refuse calls). */
#define STANDIN_FAIL_NEXT(type) STANDIN_INT(type, fail_next, 0, STANDIN_FAIL_NEXT_MAX)
#define STANDIN_SLOW_MS(type)   STANDIN_INT(type, slow_ms, 0, STANDIN_SLOW_MS_MAX)
#define STANDIN_DOWN(type)      STANDIN_BOOL(type, down)

/* A stand-in's description (static). The hooks run with the lock held and get the app
 * pointer given to standin_new; each may be NULL. */
struct standin_def {
    const struct standin_knob *knobs;  /* the mode's knobs, in the order shown and logged */
    size_t mode_size;                  /* sizeof the mode struct */
    /* After POST /admin/mode applied patch (borrowed) to the mode. */
    void (*patched)(void *app, json_t *patch);
    /* After standin_reset set the mode back to the defaults: forget the records. */
    void (*forget)(void *app);
};

typedef struct standin standin_t;

/* ---------------------------------------------------------------------------------- */
/* The mode as data (pure functions) */

/* Applies patch (borrowed; any subset of the table's keys; unknown keys and wrong types or
 * ranges are errors, with the stand-ins' messages) to cur, writing the result to out (both
 * def->mode_size bytes; they may be the same). All or nothing: on -1 (with a message in
 * errstr) out is untouched. */
int standin_mode_patch(const struct standin_def *def, const void *cur, json_t *patch,
                       void *out, char *errstr, size_t errstr_size);

/* The mode as a new JSON object in table order, or NULL when out of memory. */
json_t *standin_mode_json(const struct standin_def *def, const void *mode);

/* Logs "<event> key=value ..." at info level, in table order (OBJECT knobs flattened). */
void standin_log_mode(const struct standin_def *def, const char *event, const void *mode);

/* ---------------------------------------------------------------------------------- */
/* The shared state */

/* Allocates a stand-in with its mode set to defaults (def->mode_size bytes, copied). def
 * and app are borrowed and must outlive it. Returns NULL with errstr on failure. */
standin_t *standin_new(const struct standin_def *def, const void *defaults, void *app,
                       char *errstr, size_t errstr_size);

/* Frees the stand-in. Accepts NULL. */
void standin_free(standin_t *si);

/* The one lock of a stand-in: its mode and the stand-in's own records are under it. */
void standin_lock(standin_t *si);
void standin_unlock(standin_t *si);

/* The current mode, to read or change with the lock held (def->mode_size bytes). */
void *standin_mode_locked(standin_t *si);

/* Copies the current mode into out. */
void standin_mode_get(standin_t *si, void *out);

/* standin_mode_patch on the current mode under the lock, then def->patched; out (when not
 * NULL) gets the mode after (also after a failure, unchanged then). */
int standin_patch(standin_t *si, json_t *patch, void *out, char *errstr,
                  size_t errstr_size);

/* Mode back to the defaults, then def->forget, in one critical section. */
void standin_reset(standin_t *si);

/* Wakes every standin_sleep and makes later ones return at once (for shutdown). */
void standin_stop(standin_t *si);

/* Sleeps ms milliseconds, or less once standin_stop was called. Returns 0, or -1 when the
 * stand-in is stopping (at once, or cut short). */
int standin_sleep(standin_t *si, long long ms);

/* ---------------------------------------------------------------------------------- */
/* The admin routes. The ctx of the stand-in's HTTP server must point to a struct whose
 * first member is its standin_t *. */

/* GET /admin/mode: 200 and the mode. */
void standin_get_mode(const http_request_t *req, http_response_t *res, void *ctx);

/* POST /admin/mode {any subset of the knobs}: 200 and the mode after, logged as
 * "mode_changed ..."; 400 with the patch's error. */
void standin_post_mode(const http_request_t *req, http_response_t *res, void *ctx);

/* POST /admin/reset: standin_reset, logs "reset" and "mode_changed ...", 200 and the mode.
 * A stand-in with more to reset writes its own route with standin_reset and
 * standin_reply_mode. */
void standin_post_reset(const http_request_t *req, http_response_t *res, void *ctx);

/* Logs the current mode as "mode_changed ..." and sets a 200 with it (500 when out of
 * memory). */
void standin_reply_mode(standin_t *si, http_response_t *res);

/* A state listing's answer: {name: list}, list stolen; NULL (list released) when oom says
 * building the list ran out of memory, or the object cannot be made. */
json_t *standin_listing(const char *name, json_t *list, int oom);

/* Sets a 200 with body (a new reference, stolen), or a 500 "out of memory" when it is
 * NULL: for the answers built by a json_pack or a state listing. */
void standin_reply_json(http_response_t *res, json_t *body);

/* GET /healthz of a stand-in: always healthy (an http_health_fn). */
int standin_health(void *ctx, char *errstr, size_t errstr_size);

#define STANDIN_MODE_ROUTES \
    { "GET", "/admin/mode", standin_get_mode }, \
    { "POST", "/admin/mode", standin_post_mode }

#endif
