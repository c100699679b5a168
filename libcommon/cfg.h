/* cfg: configuration read from environment variables, with defaults and errors naming the
 * variable.
 *
 * Every cfg_* reader takes a variable NAME from the environment or, when NAME is unset or
 * empty, from the file that NAME_FILE names (docker's and the postgres image's convention
 * for secrets: ADMIN_TOKEN_FILE=/run/secrets/admin_token). The file must be a regular file
 * of at most 4096 bytes that neither group nor others may write, holding one line (a
 * trailing newline is dropped). Setting both NAME and NAME_FILE is an error. A file's
 * value is read once and kept for the life of the process. */
#ifndef DOZEN_CFG_H
#define DOZEN_CFG_H

#include <stddef.h>

/* Reads a string. When the variable is unset or empty, *out = def; when def is NULL too the
 * variable is required and -1 is returned. *out is borrowed (environment or def). */
int cfg_str(const char *name, const char *def, const char **out,
            char *errstr, size_t errstr_size);

/* Reads a base-10 integer in [min, max] (whole string, no trailing junk). Unset or empty:
 * *out = def. Returns 0, or -1 with errstr such as "SALES_PORT: 'abc' is not an integer". */
int cfg_int(const char *name, long long def, long long min, long long max,
            long long *out, char *errstr, size_t errstr_size);

/* Reads a TCP port (1..65535). */
int cfg_port(const char *name, int def, int *out, char *errstr, size_t errstr_size);

/* Parses a duration: a non-negative integer followed by ms, s, m or h ("500ms", "5s", "10m",
 * "2h"); a bare integer means milliseconds. Returns 0 and *out_ms, or -1 with errstr. */
int cfg_parse_duration_ms(const char *text, long long *out_ms,
                          char *errstr, size_t errstr_size);

/* Reads a duration variable (see cfg_parse_duration_ms); def is a duration string. The result
 * must lie in [min_ms, max_ms]. */
int cfg_duration_ms(const char *name, const char *def, long long min_ms, long long max_ms,
                    long long *out_ms, char *errstr, size_t errstr_size);

/* Reads an http:// or https:// base URL of at most 512 characters, without a trailing '/'
 * (paths are appended to it), nor spaces or control characters. *out is borrowed. */
int cfg_url(const char *name, const char *def, const char **out,
            char *errstr, size_t errstr_size);

#endif
