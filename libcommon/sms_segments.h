/* sms_segments: how many SMS parts a text needs, GSM-7 or UCS-2 (3GPP TS 23.038/23.040). */
#ifndef DOZEN_SMS_SEGMENTS_H
#define DOZEN_SMS_SEGMENTS_H

#include <stddef.h>

#define SMSSEG_GSM7_SINGLE 160   /* septets in a message of one part */
#define SMSSEG_GSM7_PART   153   /* septets per part of a concatenated message */
#define SMSSEG_UCS2_SINGLE 70    /* UTF-16 code units in a message of one part */
#define SMSSEG_UCS2_PART   67    /* UTF-16 code units per part of a concatenated one */

typedef enum smsseg_encoding {
    SMSSEG_GSM7 = 0,   /* every character is in the GSM 7-bit default alphabet or its
                        * extension table (which costs two septets: ESC + the code) */
    SMSSEG_UCS2        /* anything else, Korean included: UTF-16 */
} smsseg_encoding_t;

typedef struct smsseg_count {
    smsseg_encoding_t encoding;
    size_t characters;   /* Unicode code points */
    size_t units;        /* septets (GSM-7) or UTF-16 code units (UCS-2) */
    size_t segments;     /* parts on the air; 1 for the empty text */
} smsseg_count_t;

/* The name of an encoding: "GSM-7" or "UCS-2". */
const char *smsseg_encoding_name(smsseg_encoding_t e);

/* Counts text (len bytes of UTF-8, not necessarily NUL-terminated) as a phone sends it: GSM-7
 * when every character is in the default alphabet or its extension table, else UCS-2. A
 * concatenated message's parts are filled in order and a character never straddles two
 * (an escape pair, a surrogate pair), as handsets and gateways split them. Returns 0 and
 * *out, or -1 with errstr when text is not valid UTF-8 (or holds a NUL). Pure. */
int smsseg_count(const char *text, size_t len, smsseg_count_t *out, char *errstr,
                 size_t errstr_size);

#endif
