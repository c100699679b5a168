/* asset: serving files built into the program (asset.h). */
#include "asset.h"

void asset_serve(http_response_t *res, const char *start, const char *end,
                 const char *content_type)
{
    http_text(res, 200, content_type, start, (size_t)(end - start));
}
