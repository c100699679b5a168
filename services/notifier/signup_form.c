/* signup_form: a webhook's form body, read with the SMS stand-in's form reader
 * (tools/sms-gateway/form.c), kept apart since that stand-in's header has its own
 * struct config. */
#include "signup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sms_gateway.h"

int signup_form_parse(const char *body, size_t len, signup_form_t *f, char *errstr,
                      size_t errstr_size)
{
    sg_form_t *form = calloc(1, sizeof(*form));

    memset(f, 0, sizeof(*f));
    if (form == NULL || sg_form_parse(body, len, form, errstr, errstr_size) != 0)
        goto fail;
    f->impl = form;
    f->n = form->n;
    if (form->n > 0 && ((f->names = calloc(form->n, sizeof(*f->names))) == NULL ||
                        (f->values = calloc(form->n, sizeof(*f->values))) == NULL)) {
        snprintf(errstr, errstr_size, "out of memory");
        signup_form_free(f);
        return -1;
    }
    for (size_t i = 0; i < form->n; i++) {
        f->names[i] = form->pairs[i].key;
        f->values[i] = form->pairs[i].value;
    }
    return 0;
fail:
    free(form);
    return -1;
}

const char *signup_form_get(const signup_form_t *f, const char *name, size_t *count)
{
    return sg_form_get(f->impl, name, count);
}

void signup_form_free(signup_form_t *f)
{
    if (f == NULL)
        return;
    if (f->impl != NULL) {
        sg_form_free(f->impl);
        free(f->impl);
    }
    free(f->names);
    free(f->values);
    memset(f, 0, sizeof(*f));
}
