/* phone: E.164 telephone numbers: the check, and the masked form that logs and lists show. */
#include "phone.h"

#include <string.h>

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int phone_e164_valid(const char *s)
{
    size_t n = 0;

    if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return 0;
    for (s++; is_digit(*s); s++)
        n++;
    return *s == '\0' && n >= PHONE_E164_MIN_DIGITS && n <= PHONE_E164_MAX_DIGITS;
}

/* The length of the ITU-T E.164 country code at the start of digits (at least two digits
 * follow it in a valid number): 1 and 7 are one digit, a fixed set of two, the rest
 * three. */
static size_t country_code_len(const char *digits)
{
    static const int two[] = {
        20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49,
        51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84,
        86, 90, 91, 92, 93, 94, 95, 98,
    };
    int cc = (digits[0] - '0') * 10 + (digits[1] - '0');
    size_t i;

    if (digits[0] == '1' || digits[0] == '7')
        return 1;
    for (i = 0; i < sizeof(two) / sizeof(two[0]); i++) {
        if (two[i] == cc)
            return 2;
    }
    return 3;
}

void phone_mask(const char *s, char *out, size_t out_size)
{
    enum { SHOWN_MAX = 24 };  /* input characters considered; longer input is cut */
    size_t len, ndigits = 0, keep = 0, seen = 0, i, o = 0;

    if (out == NULL || out_size == 0)
        return;
    if (s == NULL)
        s = "";
    len = strlen(s);
    for (i = 0; i < len; i++)
        ndigits += is_digit(s[i]);
    if (phone_e164_valid(s)) {
        size_t cc = country_code_len(s + 1);

        if (ndigits >= cc + 4 + 4)
            keep = cc;
    }
    for (i = 0; i < len && i < SHOWN_MAX && o + 1 < out_size; i++) {
        char c = s[i];

        if (is_digit(c)) {
            if (seen >= keep && seen + 4 < ndigits)
                c = '*';
            seen++;
        } else if (c != '+') {
            c = '?';
        }
        out[o++] = c;
    }
    if (len > SHOWN_MAX) {
        for (i = 0; i < 3 && o + 1 < out_size; i++)
            out[o++] = '.';
    }
    out[o] = '\0';
}

int phone_sender_valid(const char *s)
{
    size_t n = 0;
    int letters = 0;

    if (phone_e164_valid(s))
        return 1;
    for (; *s != '\0'; s++, n++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
            letters++;
        else if (!(*s >= '0' && *s <= '9') && *s != ' ')
            return 0;
    }
    return letters > 0 && n <= PHONE_SENDER_ALNUM_MAX;
}
