/* trace: the thread's W3C traceparent (see trace.h). */
#include "trace.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "util.h"

static _Thread_local char current[TRACE_PARENT_SIZE];
static _Thread_local char current_id[TRACE_ID_SIZE];

static int lower_hex(const char *s, size_t n, int *all_zero)
{
    size_t i;

    *all_zero = 1;
    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
        if (s[i] != '0')
            *all_zero = 0;
    }
    return 1;
}

int trace_parse(const char *s, size_t n, char *trace_id, unsigned *flags)
{
    int zero;

    /* 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 */
    if (s == NULL || n < 55)
        return -1;
    if (!lower_hex(s, 2, &zero) || (s[0] == 'f' && s[1] == 'f') || s[2] != '-' ||
        !lower_hex(s + 3, 32, &zero) || zero || s[35] != '-' ||
        !lower_hex(s + 36, 16, &zero) || zero || s[52] != '-' ||
        !lower_hex(s + 53, 2, &zero))
        return -1;
    /* Version 00 is exactly 55 bytes; a later version may go on after a '-'. */
    if (n > 55 && ((s[0] == '0' && s[1] == '0') || s[55] != '-'))
        return -1;
    if (trace_id != NULL) {
        memcpy(trace_id, s + 3, 32);
        trace_id[32] = '\0';
    }
    if (flags != NULL) {
        unsigned v = 0;
        int i;

        for (i = 53; i < 55; i++)
            v = v * 16 + (unsigned)(s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10);
        *flags = v;
    }
    return 0;
}

static void hex_random(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t i;

    if (nbytes > sizeof(b) || util_random_bytes(b, nbytes) != 0) {
        /* No randomness: the trace still needs an id that is not all zeros. */
        memset(b, 0x11, sizeof(b));
    }
    b[0] |= 0x01; /* never all zeros */
    for (i = 0; i < nbytes; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 0x0f];
    }
    out[2 * nbytes] = '\0';
}

void trace_begin(const char *incoming, size_t n)
{
    char span[17];
    unsigned flags = 1; /* sampled: dozen records every trace it starts */

    if (incoming == NULL || trace_parse(incoming, n, current_id, &flags) != 0) {
        hex_random(current_id, 16);
        flags = 1;
    }
    hex_random(span, 8);
    snprintf(current, sizeof(current), "00-%s-%s-%02x", current_id, span, flags & 0xffu);
    log_trace_id_set(current_id);
}

void trace_end(void)
{
    current[0] = '\0';
    current_id[0] = '\0';
    log_trace_id_set(NULL);
}

const char *trace_current(void)
{
    return current[0] != '\0' ? current : NULL;
}

const char *trace_current_id(void)
{
    return current_id[0] != '\0' ? current_id : NULL;
}
