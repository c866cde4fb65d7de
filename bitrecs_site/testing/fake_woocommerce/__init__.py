"""A local fake WooCommerce store that speaks WooCommerce's wire formats, plus pytest fixtures for it.

One module per concern: `wire` (WooCommerce's algorithms and shapes), `content` (what the store holds), `bulk`
(big catalogs from a CSV export), `auth` (keys, the authorize screen, request authentication), `rest` (the wc/v3
routes, paging and faults), `server` (FakeWooCommerce on a FakeServer), `webhooks` (deliveries and transports),
`fixtures`. Import from the package: `from bitrecs_site.testing.fake_woocommerce import FakeWooCommerce`.

What it serves, on 127.0.0.1 over plain http (a real socket, in a thread, HTTP/1.1 keep-alive):

- `GET /wc-auth/v1/authorize`: validates the five parameters the way class-wc-auth.php does (401 page
  "Error: Missing parameter …", "Invalid scope …", "The callback_url needs to be over SSL") and shows
  a grant page. `FakeWooCommerce.approve()` then plays the merchant clicking Approve: it mints a key pair,
  POSTs the JSON WooCommerce sends to callback_url through a transport you give it (e.g. the Django test
  client), deletes the key when that answer is not 200, and returns the browser's return_url redirect.
- `GET /wp-json/wc/v3/system_status` and `/wp-json/wc/v3/products`: authenticated as WooCommerce does over
  plain http, i.e. one-legged OAuth 1.0a only (signature over PHP's rawurlencode normalisation, HMAC-SHA1 or
  -SHA256, 15-minute timestamp window, nonces remembered per timestamp second within the window, as
  check_oauth_timestamp_and_nonce does); Basic auth and consumer_key query parameters are
  ignored without https, exactly as WC_REST_Authentication does. Errors carry WooCommerce's
  {"code", "message", "data": {"status"}} bodies. Can be told to fail (e.g. 500, 429 + Retry-After) or be slow.
- The catalog a sync reads, with WordPress's paging (page/per_page <= 100, else 400 rest_invalid_param;
  X-WP-Total, X-WP-TotalPages and Link rel="prev"/"next" headers) and WP_Query filters (status=any|a,b;
  modified_after/modified_before/after/before with dates_are_gmt; type; order=asc|desc by id):
  `GET products`, `products/{id}`, `products/{id}/variations`, `products/categories`, `orders` (with the
  billing/shipping/IP data a real store holds) and `data/currencies/current`. Content comes from
  `add_product()`, `add_variable_product()`, `add_category()`/`category_path()`, `add_order()`,
  `add_raw_product()` (anything, e.g. a malformed record), `load_catalog()` (a small generated catalog) and
  `load_catalog_csv()` (a product CSV export repeated to any size, generated lazily: 100k products cost no
  memory per product). Paging slices a per-filter view built once per change, never a scan per request,
  so change a stored record's status or dates through `update_product()` (or add/append records), not in
  place. Known deviations: with no `order` parameter the fake lists oldest first (WordPress: date desc),
  and bulk-loaded variations cannot be changed.
- Per-call faults: `fail_next(429, retry_after="7", route="products")`, `serve_malformed_json(route=…)`;
  `route_counts` / `request_count("products/*/variations")` count the calls. `record_requests = False`
  stops keeping every request (for benchmarks).
- Optional https (`tls=True`): a self-signed certificate for 127.0.0.1, trusted by pointing REQUESTS_CA_BUNDLE
  at `ca_bundle` (the `fake_woocommerce_https` fixture does), so the production path runs for real: HTTP Basic
  auth (or consumer_key/consumer_secret query parameters), with OAuth 1.0a still accepted as WooCommerce does.
- `plain_permalinks = True` serves /wp-json/… as the shop's front page (200 HTML), as WordPress does without
  pretty permalinks; `redirect_to = "https://…"` answers every REST call with a 301 there.
- Webhook deliveries: `build_webhook_delivery()` / `build_ping()` produce the body and headers WC_Webhook
  sends (wp_json_encode body, X-WC-Webhook-* headers, Hookshot user agent); `send_delivery()` posts them.
"""

from bitrecs_site.testing.fake_woocommerce.auth import ApiKey, Approval, AuthorizeRefused
from bitrecs_site.testing.fake_woocommerce.bulk import DEFAULT_CATALOG_CSV, BulkCatalog
from bitrecs_site.testing.fake_woocommerce.fixtures import (
    fake_woocommerce,
    fake_woocommerce_https,
    woocommerce_settings,
    woocommerce_transport,
)
from bitrecs_site.testing.fake_woocommerce.server import FakeWooCommerce, RecordedRequest
from bitrecs_site.testing.fake_woocommerce.webhooks import (
    Delivery,
    DjangoClientTransport,
    Transport,
    build_ping,
    build_webhook_delivery,
    http_transport,
    send_delivery,
)
from bitrecs_site.testing.fake_woocommerce.wire import (
    HOOKSHOT_USER_AGENT,
    OAUTH_WINDOW_SECONDS,
    REC_ID_META_KEY,
    REQUIRED_OAUTH_PARAMS,
    WC_VERSION,
    WP_VERSION,
    wc_oauth_signature,
    webhook_signature,
    wp_json_encode,
)

__all__ = [
    "DEFAULT_CATALOG_CSV",
    "HOOKSHOT_USER_AGENT",
    "OAUTH_WINDOW_SECONDS",
    "REC_ID_META_KEY",
    "REQUIRED_OAUTH_PARAMS",
    "WC_VERSION",
    "WP_VERSION",
    "ApiKey",
    "Approval",
    "AuthorizeRefused",
    "BulkCatalog",
    "Delivery",
    "DjangoClientTransport",
    "FakeWooCommerce",
    "RecordedRequest",
    "Transport",
    "build_ping",
    "build_webhook_delivery",
    "fake_woocommerce",
    "fake_woocommerce_https",
    "http_transport",
    "send_delivery",
    "wc_oauth_signature",
    "webhook_signature",
    "woocommerce_settings",
    "woocommerce_transport",
    "wp_json_encode",
]
