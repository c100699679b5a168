/* page: the shop page (services/sales/web/shop.html), built into the binary. */
#include "sales.h"

#include "asset.h"

ASSET_EMBED(shop_html, "services/sales/web/shop.html");

void page_shop(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)ctx;
    asset_serve(res, shop_html_start, shop_html_end, "text/html; charset=utf-8");
}
