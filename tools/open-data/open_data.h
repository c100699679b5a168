/* open-data: a stand-in for the upstream open-data feed of daily figures. Private header;
 * prototypes grouped by source file. */
#ifndef DOZEN_OPEN_DATA_H
#define DOZEN_OPEN_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <jansson.h>

#include "http.h"
#include "strbuf.h"
#include "standin.h"

#define OD_SERVICE "open-data"

#define OD_DATE_LEN          10          /* "YYYY-MM-DD", without the NUL */
#define OD_TZ_MAX            64          /* characters of OPEN_DATA_TZ */
#define OD_RECORDS_MAX       10000       /* requests kept for GET /admin/requests */
#define OD_PUBLISH_AFTER_MAX 1000000000LL
#define OD_FIGURE_MAX        1000000000000LL
#define OD_WRONG_DATE_DAYS   10          /* "wrong_date" serves today minus this */
#define OD_DECREASE          100         /* "decreasing" serves confirmed minus this */

/* What GET /daily serves; the names are the "mode" values of the admin API. */
enum od_kind {
    OD_OK,             /* today's date and the configured figures */
    OD_NOT_PUBLISHED,  /* yesterday's date: today's data is not out yet */
    OD_WRONG_DATE,     /* a date OD_WRONG_DATE_DAYS days ago */
    OD_ALL_ZERO,       /* today's date, all four figures 0 */
    OD_INVALID,        /* today's date, one field missing, negative or not an integer */
    OD_DOWN,           /* 503 */
    OD_DECREASING,     /* today's date, confirmed OD_DECREASE below the configured base */
    OD_REFUSED         /* the key is refused: the data portal's OpenAPI_ServiceResponse
                        * envelope (XML), 401 on the JSON feed */
};
#define OD_NKINDS 8

/* The day before's figures in the XML answer: the base minus these (not below 0). */
#define OD_DAILY_CONFIRMED 1671
#define OD_DAILY_RECOVERED 70
#define OD_DAILY_DEATHS    9

/* What the XML service was asked (GET /openapi/service/rest/Covid19/getCovid19InfStateJson);
 * the key itself is never kept. */
struct od_request {
    int xml;                     /* 0: GET /daily */
    int key_ok;                  /* serviceKey given (and the one configured, if any) */
    char start[9], end[9];       /* startCreateDt, endCreateDt as given (cut) */
    char page[8], rows[8];       /* pageNo, numOfRows as given (cut) */
};

/* The base values served by "ok" (confirmed, recovered and deaths are cumulative). */
struct od_figures {
    long long confirmed;
    long long recovered;
    long long in_treatment;
    long long deaths;
};

/* The knobs: set from the environment at start, changed by POST /admin/mode. */
struct od_mode {
    enum od_kind kind;           /* "mode" */
    long long publish_after;     /* serve "not_published" to this many more /daily calls */
    long long slow_ms;           /* sleep before answering /daily */
    struct od_figures figures;
    char date[OD_DATE_LEN + 1];  /* pinned "today", or "" to follow the clock */
};

struct config {
    const char *http_bind;
    int port;
    const char *tz;              /* OPEN_DATA_TZ as given */
    char tz_effective[OD_TZ_MAX + 1]; /* what TZ was set to (see od_tz_resolve) */
    struct od_mode mode;         /* also what POST /admin/reset returns to */
    const char *service_key;     /* OPEN_DATA_SERVICE_KEY: the only key the XML service
                                  * takes; "": any non-empty one (never logged) */
};

/* How one GET /daily is answered, decided by state_daily. */
struct od_answer {
    enum od_kind served;
    int status;                  /* 200, or 503 for "down" */
    char date[OD_DATE_LEN + 1];  /* the "date" served; "" for "down" */
    struct od_figures figures;   /* the base values at that moment */
    uint64_t invalid_seq;        /* for "invalid": how many were served before (0, 1, ...) */
};

typedef struct od_state od_state_t;

/* Everything the HTTP handlers reach through their ctx. */
struct feed {
    standin_t *standin;          /* first, for the admin routes (standin.h); borrowed */
    struct config cfg;
    od_state_t *state;
};

/* daily.c: dates, time zones and the /daily document (pure functions) */

const char *od_kind_name(enum od_kind k);

/* Looks up a mode name ("ok", "not_published", ...). Returns 0 and *out, or -1. */
int od_kind_parse(const char *name, enum od_kind *out);

/* Returns 1 if s is a real calendar date written YYYY-MM-DD (years 1970..9999), else 0. */
int od_date_valid(const char *s);

/* Writes the date days (may be negative) after ymd, a valid date, into out (at least
 * OD_DATE_LEN + 1 bytes). Returns 0, or -1 for an invalid ymd or a result out of range. */
int od_date_add_days(const char *ymd, int days, char *out, size_t out_size);

/* Writes "today": pinned when it is not NULL or "", else the local date at now in the
 * process's time zone (TZ, see od_tz_resolve). Returns 0, or -1 when the clock cannot be
 * converted or out is too small. */
int od_today(const char *pinned, time_t now, char *out, size_t out_size);

/*
 * Decides what TZ must be set to for the zone name: name itself when zoneinfo_dir has a
 * file of that name (a zone such as "Asia/Seoul", without ".." or a leading '/'), or when
 * name is a fixed-offset POSIX TZ ("KST-9", "UTC0", "<+09>-9"). Without tzdata (slim
 * containers), "Asia/Seoul" becomes "KST-9" and "UTC"/"Etc/UTC" become "UTC0", which mean
 * the same. Returns 0 and out, or -1 with errstr.
 */
int od_tz_resolve(const char *name, const char *zoneinfo_dir, char *out, size_t out_size,
                  char *errstr, size_t errstr_size);

/* The body GET /daily serves for a 200 answer (not "down"): {"date", "confirmed",
 * "recovered", "in_treatment", "deaths"}, spoilt as the kind says. Returns a new
 * reference, or NULL when out of memory or for OD_DOWN. */
json_t *od_daily_json(const struct od_answer *a);

/* The body the XML service serves for a (not "down"): the data portal's
 * response/header/body/items with two items, newest first: the date served with the
 * figures, and the day before with the figures less OD_DAILY_*; spoilt as the kind says
 * ("invalid": decideCnt missing, deathCnt -1, careCnt not a number, or not XML at all, in
 * turn); for "refused" the OpenAPI_ServiceResponse envelope with
 * SERVICE_KEY_IS_NOT_REGISTERED_ERROR, reason code 30. Returns 0, or -1 when out of memory
 * (out is then emptied). */
int od_daily_xml(const struct od_answer *a, strbuf_t *out);

/* state.c: the mode, the request record and the decision per request */

/* The mode's knobs ("mode", "publish_after", "slow_ms", "figures" (any subset of the four),
 * "date" (YYYY-MM-DD, or null to follow the clock)) for standin_mode_patch,
 * standin_mode_json and the admin routes. */
extern const struct standin_def od_standin;

/* Allocates the state with mode = defaults; its standin (the lock, the stop flag, the mode:
 * standin_sleep, standin_patch, ...) is state_standin's. standin_reset also forgets every
 * recorded request. Returns NULL with errstr on failure. */
od_state_t *state_new(const struct od_mode *defaults, char *errstr, size_t errstr_size);

/* Frees the state and its standin. Accepts NULL. */
void state_free(od_state_t *st);

/* The state's standin, owned by the state. */
standin_t *state_standin(od_state_t *st);

/*
 * Decides the answer to one GET /daily at now_ms (wall clock) and records it: while
 * publish_after is above 0 it is "not_published" (and publish_after goes down by one),
 * else the mode's kind. The date follows from "today" (the pinned date or the clock).
 * Returns 0, or -1 when "today" cannot be worked out (nothing is recorded then).
 */
int state_daily(od_state_t *st, int64_t now_ms, struct od_answer *a);
/* state_daily for a request rq (NULL: GET /daily): an XML request whose key is not right
 * is "refused" whatever the mode (publish_after does not move then); the record keeps
 * rq's format and parameters. */
int state_daily_request(od_state_t *st, int64_t now_ms, const struct od_request *rq,
                        struct od_answer *a);

/* {"requests": [{"at", "served", "status", "date", "format" ("json" or "xml"), and for
 * xml "key_ok", "startCreateDt", "endCreateDt", "pageNo", "numOfRows"}]}, oldest first. Returns a new
 * reference, or NULL when out of memory. */
json_t *state_requests(od_state_t *st);

/* api.c: HTTP routes */

extern const http_route_t api_routes[];
extern const size_t api_nroutes;

#endif
