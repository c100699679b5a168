/* trace: W3C Trace Context (traceparent) for the thread that handles one request or one
 * record. An HTTP request or a consumed record begins a span (trace_begin) that continues
 * the caller's trace, or starts a new one; everything the thread does until trace_end sees
 * it: events written to the outbox carry it (ce_traceparent and traceparent headers), the
 * outbound HTTP calls send it, and every log line carries trace_id. */
#ifndef DOZEN_TRACE_H
#define DOZEN_TRACE_H

#include <stddef.h>

/* "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>" and its NUL. */
#define TRACE_PARENT_SIZE 56
#define TRACE_ID_SIZE 33

/* Checks a traceparent value of n bytes (not NUL-terminated) against the W3C rules: version
 * 2 lowercase hex, not "ff" (a version above 00 may carry more after the flags, after a
 * '-'), a trace id and a parent id of lowercase hex that are not all zeros, 2 hex flags.
 * Returns 0 and, when trace_id is not NULL, the trace id (33 bytes) and *flags; -1 when the
 * value is not one (a receiver then starts a new trace, as the spec says). */
int trace_parse(const char *s, size_t n, char *trace_id, unsigned *flags);

/* Begins this thread's span: in the trace of incoming (n bytes, a traceparent; NULL or
 * invalid: a new trace), with a new span id. Sets the trace id of the thread's log lines. */
void trace_begin(const char *incoming, size_t n);

/* Ends this thread's span: nothing is traced until the next trace_begin. */
void trace_end(void);

/* The traceparent of the thread's span (a new span id for each call would be a child; this
 * one is the span itself, which is what a hop passes on), or NULL outside a span. Valid
 * until trace_end or the next trace_begin on this thread. */
const char *trace_current(void);

/* The trace id of the thread's span, or NULL outside one. */
const char *trace_current_id(void);

#endif
