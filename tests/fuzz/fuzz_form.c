/* fuzz_form: application/x-www-form-urlencoded bodies from outside (libcommon/form.c):
 * Twilio's status callbacks (POST /sms/status/{id}) and inbound-message webhook
 * (POST /sms/inbound), read with form_parse and form_get, then what the webhook does with
 * the form before it trusts it: signup_twilio_signature over every pair, signup_is_stop on
 * Body (services/notifier/signup.c). The input is the body, as sent.
 *
 * Properties: a refused body says why and leaves the form empty, and is refused only for a
 * bad escape or a NUL; an accepted one has at most one pair per '&'-separated piece, every
 * key and value inside the decoded buffer, form_get finds the first of each name, and the
 * pairs percent-encoded again parse back identical; the signature is 28 base64
 * characters. */
#include <stdint.h>
#include <string.h>

#include "form.h"
#include "fuzz.h"
#include "signup.h"
#include "strbuf.h"

/* Appends s with every byte but letters and digits as %XX. */
static void encode(strbuf_t *b, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            strbuf_add(b, s, 1);
        else
            strbuf_addf(b, "%%%02X", c);
    }
}

static int inside(const form_t *f, const char *p, size_t buf_size)
{
    return p >= f->buf && p + strlen(p) < f->buf + buf_size;
}

static void check_accepted(const form_t *f, const uint8_t *data, size_t size)
{
    size_t pieces = 1, i;
    strbuf_t again = STRBUF_INIT;
    form_t g;
    char err[256], sig[64];

    for (i = 0; i < size; i++)
        pieces += data[i] == '&';
    FUZZ_CHECK(f->n <= pieces);
    FUZZ_CHECK(f->n == 0 || (f->pairs != NULL && f->buf != NULL));
    for (i = 0; i < f->n; i++) {
        const char *key = f->pairs[i].key, *value = f->pairs[i].value;
        size_t count = 0;

        FUZZ_CHECK(inside(f, key, size + 1));
        FUZZ_CHECK(value[0] == '\0' || inside(f, value, size + 1));
        if (i >= 32) /* form_get is linear: checking every pair would be quadratic */
            goto encode;
        FUZZ_CHECK(form_get(f, key, &count) != NULL && count >= 1);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(f->pairs[j].key, key) == 0) {
                FUZZ_CHECK(form_get(f, key, NULL) == f->pairs[j].value);
                break;
            }
        }
    encode:
        if (i > 0)
            strbuf_add(&again, "&", 1);
        encode(&again, key);
        strbuf_add(&again, "=", 1);
        encode(&again, value);
    }
    FUZZ_CHECK(!again.failed);
    FUZZ_CHECK(form_parse(again.buf != NULL ? again.buf : "", again.len, &g, err,
                          sizeof(err)) == 0);
    /* "=" (an empty key) is skipped only when the whole pair is empty */
    FUZZ_CHECK(g.n == f->n);
    for (i = 0; i < f->n; i++) {
        FUZZ_CHECK(strcmp(g.pairs[i].key, f->pairs[i].key) == 0);
        FUZZ_CHECK(strcmp(g.pairs[i].value, f->pairs[i].value) == 0);
    }
    form_free(&g);
    strbuf_release(&again);

    /* what POST /sms/inbound does before it trusts the form */
    FUZZ_CHECK(signup_twilio_signature("0123456789abcdef0123456789abcdef",
                                       "https://example.com/sms/inbound", f, sig,
                                       sizeof(sig)) == 0);
    FUZZ_CHECK(strlen(sig) == 28 && sig[27] == '=');
    FUZZ_CHECK(signup_equal(sig, sig));
    {
        const char *body = form_get(f, "Body", NULL);

        if (body != NULL && signup_is_stop(body))
            FUZZ_CHECK(strlen(body) >= 3);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    form_t f;
    char err[256] = "";

    if (form_parse((const char *)data, size, &f, err, sizeof(err)) == 0) {
        check_accepted(&f, data, size);
    } else {
        FUZZ_CHECK(f.pairs == NULL && f.n == 0 && f.buf == NULL);
        FUZZ_CHECK(err[0] != '\0' && fuzz_printable(err, strlen(err)));
        FUZZ_CHECK(memchr(data, '%', size) != NULL || memchr(data, '\0', size) != NULL);
    }
    form_free(&f);
    form_free(&f); /* emptied: a second free is harmless */
    return 0;
}
