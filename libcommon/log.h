/* log: one line per event on stderr: time, level, service and key=value fields. */
#ifndef DOZEN_LOG_H
#define DOZEN_LOG_H

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Sets the service name printed on every line and the minimum level, read from LOG_LEVEL
 * (debug, info, warn, error; default info). Returns 0, or -1 for a bad LOG_LEVEL (the level
 * stays info). Call once, before threads start. */
int log_init(const char *service);

/* Prints one line: "ts=<RFC3339 UTC ms> level=<lvl> svc=<service> <formatted message>".
 * The message should be "event_name key=value key=value"; values with spaces are quoted by
 * the caller. Thread-safe: the line is written with a single write(2). Newlines in the
 * message are replaced by spaces so one event is always one line. */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
