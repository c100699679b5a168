/* sku: what a product identifier may look like. */
#include "sku.h"

#include <stddef.h>

int sku_valid(const char *sku)
{
    size_t n = 0;

    for (const char *p = sku; *p; p++, n++) {
        char c = *p;
        if (n >= SKU_MAX)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n > 0;
}
