/* signup: the sign-up's settings and pure parts: codes, their hashes, STOP words, Twilio's
 * webhook signature, the verdict on a typed code. */
#include "signup.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "cfg.h"
#include "strbuf.h"
#include "util.h"

int signup_config_read(struct signup_config *c, char *err, size_t err_size)
{
    memset(c, 0, sizeof(*c));
    if (cfg_duration_ms("SIGNUP_CODE_TTL", "10m", 1000, 24LL * 3600 * 1000, &c->code_ttl_ms,
                        err, err_size) != 0 ||
        cfg_int("SIGNUP_MAX_ATTEMPTS", 5, 1, 100, &c->max_attempts, err, err_size) != 0 ||
        cfg_int("SIGNUP_CODES_PER_NUMBER", 5, 1, 1000, &c->per_number, err, err_size) != 0 ||
        cfg_int("SIGNUP_PER_CLIENT", 20, 1, 100000, &c->per_client, err, err_size) != 0 ||
        cfg_str("SIGNUP_WEBHOOK_URL", "", &c->webhook_url, err, err_size) != 0)
        return -1;
    return 0;
}

int signup_code_new(char *code, size_t code_size)
{
    uint32_t r;

    if (code_size < SIGNUP_CODE_DIGITS + 1)
        return -1;
    /* 2^32 is not a multiple of 10^6: draw again above the largest multiple, so that
     * every code is equally likely */
    do {
        if (util_random_bytes(&r, sizeof(r)) != 0)
            return -1;
    } while (r >= 4294000000u);
    snprintf(code, code_size, "%06u", (unsigned)(r % 1000000u));
    return 0;
}

int signup_salt_new(char *salt, size_t salt_size)
{
    if (salt_size < 2 * SIGNUP_SALT_BYTES + 1)
        return -1;
    return util_random_hex(salt, SIGNUP_SALT_BYTES);
}

static void hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void signup_code_hash(const char *salt, const char *code, char *out)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;

    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, salt, strlen(salt)) != 1 || EVP_DigestUpdate(ctx, ":", 1) != 1 ||
        EVP_DigestUpdate(ctx, code, strlen(code)) != 1 || EVP_DigestFinal_ex(ctx, md, &len) != 1) {
        out[0] = '\0'; /* matches no stored hash */
    } else {
        hex(md, len, out);
    }
    EVP_MD_CTX_free(ctx);
}

int signup_code_valid(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++)
        if (i >= SIGNUP_CODE_DIGITS || s[i] < '0' || s[i] > '9')
            return 0;
    return i == SIGNUP_CODE_DIGITS;
}

int signup_is_stop(const char *body)
{
    static const char *const words[] = { "STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE",
                                         "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE" };
    const char *b = body, *e;
    size_t n;

    while (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\n')
        b++;
    e = b + strlen(b);
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n' ||
                     e[-1] == '.' || e[-1] == '!'))
        e--;
    n = (size_t)(e - b);
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strlen(words[i]) == n && strncasecmp(b, words[i], n) == 0)
            return 1;
    return 0;
}

int signup_is_opted_out_error(const char *why)
{
    static const char mark[] = "(21610)";
    size_t n = strlen(why), m = sizeof(mark) - 1;

    return strncmp(why, "HTTP 4", 6) == 0 && n >= m && strcmp(why + n - m, mark) == 0;
}

/* qsort order of form pairs: by name in byte order, then by place in the body (the pairs
 * are one array, so their addresses are body order): a stable sort, as Twilio's helpers. */
static int pair_cmp(const void *a, const void *b)
{
    const struct form_pair *pa = *(const struct form_pair *const *)a;
    const struct form_pair *pb = *(const struct form_pair *const *)b;
    int c = strcmp(pa->key, pb->key);

    return c != 0 ? c : (pa > pb) - (pa < pb);
}

int signup_twilio_signature(const char *auth_token, const char *url, const form_t *form,
                            char *out, size_t out_size)
{
    size_t n = form->n;
    strbuf_t data = STRBUF_INIT;
    const struct form_pair **order = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ret = -1;

    if (out_size < 29 || (n > 0 && (order = calloc(n, sizeof(*order))) == NULL))
        goto done;
    for (size_t i = 0; i < n; i++)
        order[i] = &form->pairs[i];
    /* O(n log n): the webhook is public, and 16 KiB of pairs in reverse order took an
     * insertion sort seconds (the fuzz_form target found it) */
    if (n > 1)
        qsort(order, n, sizeof(*order), pair_cmp);
    if (strbuf_add(&data, url, strlen(url)) != 0)
        goto done;
    for (size_t i = 0; i < n; i++)
        if (strbuf_add(&data, order[i]->key, strlen(order[i]->key)) != 0 ||
            strbuf_add(&data, order[i]->value, strlen(order[i]->value)) != 0)
            goto done;
    if (HMAC(EVP_sha1(), auth_token, (int)strlen(auth_token), (const unsigned char *)data.buf,
             data.len, md, &mdlen) == NULL)
        goto done;
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    ret = 0;
done:
    free(order);
    strbuf_release(&data);
    return ret;
}

int signup_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;

    for (size_t i = 0; i < la && i < lb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

signup_verdict_t signup_decide(int has_row, const char *salt, const char *hash, long long attempts,
                               int64_t expires_ms, int64_t now_ms, long long max_attempts,
                               const char *code)
{
    char typed[SIGNUP_HASH_HEX];

    if (!has_row || now_ms >= expires_ms)
        return SIGNUP_NO_CODE;
    if (attempts >= max_attempts)
        return SIGNUP_LOCKED;
    signup_code_hash(salt, code, typed);
    return typed[0] != '\0' && signup_equal(typed, hash) ? SIGNUP_OK : SIGNUP_WRONG;
}

enum signup_limit signup_limited(long long by_phone, long long by_client,
                                 const struct signup_config *c)
{
    if (by_phone >= c->per_number)
        return SIGNUP_LIMIT_NUMBER;
    if (by_client >= c->per_client)
        return SIGNUP_LIMIT_CLIENT;
    return SIGNUP_ALLOWED;
}

json_t *signup_skus_unique(json_t *skus)
{
    json_t *out = json_array(), *v, *w;
    size_t i, j;
    int seen;

    if (out == NULL)
        return NULL;
    json_array_foreach(skus, i, v) {
        seen = 0;
        json_array_foreach(out, j, w) {
            if (json_equal(v, w)) {
                seen = 1;
                break;
            }
        }
        /* json_array_append takes a new reference of v: skus keeps its own */
        if (!seen && json_array_append(out, v) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
