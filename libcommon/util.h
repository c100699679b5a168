/* util: UUIDs, clocks and timestamps shared by every service. */
#ifndef DOZEN_UTIL_H
#define DOZEN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#define UTIL_UUID_LEN 36 /* without the terminating NUL */

/* Writes a random (version 4) UUID, lower case, into out (at least 37 bytes).
 * Returns 0, or -1 if the kernel's random source failed. */
int util_uuid_v4(char *out);

/* Fills buf with len bytes from the kernel's CSPRNG (getrandom). Returns 0, or -1. */
int util_random_bytes(void *buf, size_t len);

/* Writes nbytes bytes from the kernel's CSPRNG (getrandom(2)) as 2 * nbytes lower-case hex
 * digits and a NUL into out (at least 2 * nbytes + 1 bytes): an unguessable token.
 * Returns 0, or -1 if the random source failed. */
int util_random_hex(char *out, size_t nbytes);

/* The value of one hexadecimal digit (either case), or -1 when c is none. */
int util_hex_value(char c);

/* Returns 1 if s is a UUID in canonical 8-4-4-4-12 hex form (either case), else 0. */
int util_is_uuid(const char *s);

/* Wall clock, milliseconds since the Unix epoch. */
int64_t util_now_ms(void);

/* Monotonic clock, milliseconds. */
int64_t util_mono_ms(void);

/* Monotonic clock, microseconds (for durations well under a millisecond). */
int64_t util_mono_us(void);

/* Formats ms-since-epoch as RFC 3339 UTC with milliseconds ("2026-11-22T01:40:31.123Z")
 * into out (at least 25 bytes). Returns 0, or -1 if the buffer is too small. */
int util_rfc3339(int64_t epoch_ms, char *out, size_t out_size);

/* Reads an RFC 3339 date-time (section 5.6: "2026-11-22T01:40:31.123Z",
 * "2026-11-22t02:40:31+01:00"; 'T' and 'Z' in either case, 1 to 9 fraction digits, years
 * 0001..9999, a real calendar day, second 60 allowed) into ms since the epoch (may be
 * NULL). Returns 0, or -1 when s is anything else. */
int util_rfc3339_parse(const char *s, int64_t *epoch_ms);

/* Length of the valid UTF-8 sequence at p (n > 0 bytes available), or 0 when the bytes
 * there are not one: overlong forms, surrogates and code points past U+10FFFF are refused. */
size_t util_utf8_seq(const unsigned char *p, size_t n);

/* 1 if s[0..n) is valid UTF-8 (util_utf8_seq) without a NUL byte, else 0. */
int util_utf8_valid(const void *s, size_t n);

/* Sleeps ms milliseconds, or less if *stop becomes non-zero (checked every 50 ms).
 * stop may be NULL. */
void util_sleep_ms(int64_t ms, const volatile int *stop);

/* Initialises a condition variable whose timed waits use CLOCK_MONOTONIC (wall-clock jumps
 * do not stretch or cut them). Returns 0, or -1 if it could not be created. */
int util_cond_init_monotonic(pthread_cond_t *cond);

/* With mutex held, waits on cond (made by util_cond_init_monotonic) until *flag is non-zero
 * or ms milliseconds have passed. Returns the value of *flag at the end. */
int util_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *mutex, const int *flag,
                      long long ms);

/* Returns 1 if s is 1..max ASCII letters and digits and nothing else (account SIDs). */
int util_alnum_valid(const char *s, size_t max);

/* Compares two NUL-terminated secrets in time that depends only on the length of a (the
 * untrusted one), never on where the first difference is. Returns 1 when equal. */
int util_streq_ct(const char *a, const char *b);

/* Formats an error message into errstr (errstr may be NULL or errstr_size 0: then nothing
 * is written). A message longer than the buffer is cut; errstr is always NUL-terminated. */
void util_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
