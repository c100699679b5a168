/* fuzz_callback: the legacy factory's delivery callback body (services/factory/callback.c),
 * POST /deliveries/{id}?token=: callback_parse in every shape it accepts (a JSON object,
 * or a JSON string holding one), and callback_token_form on the input as a token. The
 * input is the body, as sent.
 *
 * Properties: an accepted body gives a product id that meets FACTORY_ATTR_RULE and a count
 * in 1..FACTORY_DELIVERY_MAX, and the same delivery written as a plain object reads back
 * identical; a refused one leaves nothing half-filled and has a message that makes a valid
 * JSON error answer; a token of the right form is FACTORY_TOKEN_LEN lower-case hex. */
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "factory.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct delivery_in in, again;
    char why[256] = "", *token;

    if (callback_parse((const char *)data, size, &in, why, sizeof(why)) == 0) {
        json_t *obj;
        char *text;

        FUZZ_CHECK(callback_attr_valid(in.product_id));
        FUZZ_CHECK(in.count >= 1 && in.count <= FACTORY_DELIVERY_MAX);
        obj = json_pack("{s:s, s:I}", "MessageAttributeProductId", in.product_id,
                        "MessageAttributeProductCnt", (json_int_t)in.count);
        FUZZ_CHECK(obj != NULL);
        text = json_dumps(obj, JSON_COMPACT);
        FUZZ_CHECK(text != NULL);
        FUZZ_CHECK(callback_parse(text, strlen(text), &again, why, sizeof(why)) == 0);
        FUZZ_CHECK(strcmp(again.product_id, in.product_id) == 0 && again.count == in.count);
        free(text);
        json_decref(obj);
    } else {
        FUZZ_CHECK(in.product_id[0] == '\0' && in.count == 0);
        FUZZ_CHECK(why[0] != '\0');
        fuzz_check_error_body(why); /* what http_error(res, 400, "%s", why) sends */
    }

    token = fuzz_cstr(data, size);
    if (callback_token_form(token)) {
        FUZZ_CHECK(strlen(token) == FACTORY_TOKEN_LEN);
        FUZZ_CHECK(strspn(token, "0123456789abcdef") == FACTORY_TOKEN_LEN);
    }
    free(token);
    return 0;
}
