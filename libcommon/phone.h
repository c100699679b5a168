/* phone: E.164 telephone numbers: the check, and the masked form that logs and lists show. */
#ifndef DOZEN_PHONE_H
#define DOZEN_PHONE_H

#include <stddef.h>

#define PHONE_E164_MIN_DIGITS 8
#define PHONE_E164_MAX_DIGITS 15
#define PHONE_MAX (1 + PHONE_E164_MAX_DIGITS)   /* "+" and the digits, without the NUL */
#define PHONE_MASK_MAX 40                       /* bytes of a masked number, with the NUL */

/* Returns 1 if s is an E.164 number: '+', a first digit 1-9, then more digits, 8..15
 * digits in all, and nothing else. */
int phone_e164_valid(const char *s);

#define PHONE_SENDER_ALNUM_MAX 11                /* alphanumeric sender IDs, as Twilio */

/* Returns 1 if s can be an SMS sender as Twilio takes them: an E.164 number, or an
 * alphanumeric sender ID of 1..PHONE_SENDER_ALNUM_MAX letters, digits and spaces with at
 * least one letter. */
int phone_sender_valid(const char *s);

/* Writes s with the subscriber's number hidden: every digit but the last four becomes '*';
 * for an E.164 number the country code stays too, as long as four digits remain hidden
 * ("+821012341234" -> "+82******1234"). Anything else that is not a digit or '+' becomes
 * '?', and long input is cut with "...", so the result is always safe to log unquoted.
 * out_size should be PHONE_MASK_MAX. */
void phone_mask(const char *s, char *out, size_t out_size);

#endif
