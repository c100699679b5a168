/* sms_segments: how many SMS parts a text needs, GSM-7 or UCS-2 (3GPP TS 23.038/23.040). */
#include "sms_segments.h"

#include <stdint.h>
#include <string.h>

#include "util.h"

/* The characters of the GSM 7-bit default alphabet outside ASCII, as code points. */
static const uint32_t gsm_basic_extra[] = {
    0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, 0x00D8, 0x00F8,
    0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3,
    0x0398, 0x039E, 0x00C6, 0x00E6, 0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6,
    0x00D1, 0x00DC, 0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
};

/* Septets one code point costs in GSM-7: 1 (default alphabet), 2 (extension table), or 0
 * when it has no GSM-7 form. */
static int gsm_septets(uint32_t c)
{
    size_t i;

    if (c == '\n' || c == '\r')
        return 1;
    if (c == '\f' || c == '^' || c == '{' || c == '}' || c == '\\' || c == '[' ||
        c == '~' || c == ']' || c == '|' || c == 0x20AC)
        return 2;
    if (c >= 0x20 && c <= 0x7E)
        return c == '`' ? 0 : 1;
    for (i = 0; i < sizeof(gsm_basic_extra) / sizeof(gsm_basic_extra[0]); i++) {
        if (gsm_basic_extra[i] == c)
            return 1;
    }
    return 0;
}

/* Reads one UTF-8 character at s (n bytes left, n > 0). Returns its length and *c, or 0 for
 * an invalid sequence (overlong, surrogate, above U+10FFFF, cut short). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *c)
{
    size_t len, i;
    uint32_t v;

    if (s[0] < 0x80) {
        *c = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        v = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        v = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        v = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *c = v;
    return len;
}

const char *smsseg_encoding_name(smsseg_encoding_t e)
{
    return e == SMSSEG_GSM7 ? "GSM-7" : "UCS-2";
}

/* Parts needed for text (valid UTF-8) of total units: one part up to single units, else
 * parts of at most part units filled in order, a character never split between two. */
static size_t parts(const unsigned char *text, size_t len, int gsm, size_t total,
                    size_t single, size_t part)
{
    size_t segments = 1, used = 0, i = 0, k, cost;
    uint32_t c;

    if (total <= single)
        return 1;
    while (i < len) {
        k = utf8_next(text + i, len - i, &c);   /* valid: checked by the caller */
        i += k;
        cost = gsm ? (size_t)gsm_septets(c) : (c >= 0x10000 ? 2 : 1);
        if (used + cost > part) {
            segments++;
            used = 0;
        }
        used += cost;
    }
    return segments;
}

int smsseg_count(const char *text, size_t len, smsseg_count_t *out, char *errstr,
                 size_t errstr_size)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, k, chars = 0, septets = 0, utf16 = 0;
    int gsm = 1, cost;
    uint32_t c;

    if (text == NULL && len > 0) {
        util_errf(errstr, errstr_size, "no text");
        return -1;
    }
    while (i < len) {
        k = utf8_next(s + i, len - i, &c);
        if (k == 0 || c == 0) {
            util_errf(errstr, errstr_size, "not valid UTF-8 at byte %zu", i);
            return -1;
        }
        i += k;
        chars++;
        utf16 += c >= 0x10000 ? 2 : 1;
        if (gsm && (cost = gsm_septets(c)) > 0)
            septets += (size_t)cost;
        else
            gsm = 0;
    }
    memset(out, 0, sizeof(*out));
    out->characters = chars;
    if (gsm) {
        out->encoding = SMSSEG_GSM7;
        out->units = septets;
        out->segments = parts(s, len, 1, septets, SMSSEG_GSM7_SINGLE, SMSSEG_GSM7_PART);
    } else {
        out->encoding = SMSSEG_UCS2;
        out->units = utf16;
        out->segments = parts(s, len, 0, utf16, SMSSEG_UCS2_SINGLE, SMSSEG_UCS2_PART);
    }
    return 0;
}
