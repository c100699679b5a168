/* sku: what a product identifier may look like, shared by every service. */
#ifndef DOZEN_SKU_H
#define DOZEN_SKU_H

#define SKU_MAX 64

/* Returns 1 if sku is 1..SKU_MAX characters of [A-Za-z0-9._-], else 0. The same rule is the
 * CHECK constraint on inventory.sku. */
int sku_valid(const char *sku);

/* The rule in words, for error messages. */
#define SKU_RULE "1 to 64 characters of letters, digits, '.', '_' or '-'"

#endif
