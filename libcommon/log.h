/* log: one line per event on stderr: time, level, service and key=value fields. */
#ifndef DOZEN_LOG_H
#define DOZEN_LOG_H

#include <stddef.h>

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Sets the service name printed on every line, the minimum level, read from LOG_LEVEL
 * (debug, info, warn, error; default info), and the format, read from LOG_FORMAT (text, the
 * default: key=value; json: one JSON object a line with the same fields, the first word of
 * the message as "event"). Returns 0, or -1 for a bad LOG_LEVEL or LOG_FORMAT (the level
 * stays info, the format text). Call once, before threads start. */
int log_init(const char *service);

/* Sets the trace id every later line of this thread carries (trace_id=...), or none (NULL).
 * trace.c calls it; other code uses trace_begin/trace_end. */
void log_trace_id_set(const char *trace_id);

/* Prints one line: "ts=<RFC3339 UTC ms> level=<lvl> svc=<service> <formatted message>".
 * The message should be "event_name key=value key=value"; values with spaces are quoted by
 * the caller. Thread-safe: the line is written with a single write(2). Newlines in the
 * message are replaced by spaces so one event is always one line. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A quoted, escaped log value: see log_q. */
#define LOG_VALUE_MAX 512
typedef struct log_value {
    char s[LOG_VALUE_MAX];
} log_value_t;

/* The one way to put a value that came from outside into a log line. Returns in as a
 * double-quoted value: '"' and '\\' are escaped with a backslash, control characters and
 * bytes that are not valid UTF-8 become \xNN, and a value that does not fit is cut (never
 * inside an escape or a UTF-8 character) and ends in "..." before the closing quote. NULL
 * gives "-" unquoted. Use it through LOG_Q inside the argument list of one log call:
 * log_warn("bad_request path=%s", LOG_Q(path)); the text lives until the call returns. */
log_value_t log_q(const char *in);

/* The same for n bytes that may hold NULs (Kafka keys and header values). */
log_value_t log_qn(const void *in, size_t n);

#define LOG_Q(x) (log_q(x).s)
#define LOG_QN(p, n) (log_qn((p), (n)).s)

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
