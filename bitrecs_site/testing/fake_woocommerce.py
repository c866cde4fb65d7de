"""A local fake WooCommerce store that speaks WooCommerce's wire formats, plus pytest fixtures for it.

What it serves, on 127.0.0.1 over plain http (a real socket, in a thread):

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

import base64
import binascii
import bisect
import contextlib
import csv
import fnmatch
import functools
import hashlib
import hmac
import html
import ipaddress
import itertools
import json
import math
import re
import secrets
import shutil
import ssl
import tempfile
import threading
import time
import zlib
from collections import Counter, abc
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pytest
import requests

WC_VERSION = "9.8.5"
WP_VERSION = "6.8.1"
HOOKSHOT_USER_AGENT = f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"
OAUTH_WINDOW_SECONDS = 15 * 60
REQUIRED_OAUTH_PARAMS = (
    "oauth_consumer_key",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
)

# The product CSV export the benchmarks build big catalogs from (`load_catalog_csv()`).
DEFAULT_CATALOG_CSV = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "catalogs" / "woocommerce" / ("product_catalog.csv")
)
# The order item meta key the Bitrecs plugin stores the recommendation id under.
REC_ID_META_KEY = "_bitrecs_rec_id"

# A transport delivers one POST (url, body, headers) and returns the HTTP status it got.
Transport = Callable[[str, bytes, dict[str, str]], int]


@dataclass
class ApiKey:
    """A row of wp_woocommerce_api_keys, as far as the fake needs it."""

    key_id: int
    consumer_key: str
    consumer_secret: str
    permissions: str
    description: str = ""
    revoked: bool = False


@dataclass(frozen=True)
class Approval:
    """What happened when the merchant approved: the key, the callback WooCommerce sent, where the browser went."""

    key: ApiKey
    callback_url: str
    callback_body: bytes
    callback_headers: dict[str, str]
    callback_status: int
    # return_url?success=1&user_id=… when the callback answered 200; None when WooCommerce showed an error.
    return_location: str | None


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(frozen=True)
class Delivery:
    """One webhook request as WooCommerce would send it."""

    body: bytes
    headers: dict[str, str]
    content_type: str = "application/json"


class AuthorizeRefused(AssertionError):
    """The fake's /wc-auth/v1/authorize refused the request, as WooCommerce would."""


@dataclass
class _Failure:
    status: int
    retry_after: str | None = None
    code: str = "fake_failure"


class FakeWooCommerce:
    """A fake WooCommerce store on a free port of 127.0.0.1."""

    def __init__(self, *, require_https_callback: bool = True, tls: bool = False) -> None:
        self.require_https_callback = require_https_callback
        self.tls = tls
        self.ca_bundle: Path | None = None
        self.plain_permalinks = False
        self.redirect_to: str | None = None
        self.keys: dict[str, ApiKey] = {}
        self.currency = "USD"
        self.products: list[Any] = []
        self.variations: dict[int, list[Any]] = {}
        self.categories: dict[int, dict[str, Any]] = {
            15: {"id": 15, "name": "Uncategorized", "slug": "uncategorized", "parent": 0, "count": 0}
        }
        self.orders: list[Any] = []
        self.bulk: BulkCatalog | None = None
        self.requests: list[RecordedRequest] = []
        self.record_requests = True
        self.route_counts: Counter[str] = Counter()
        self.failure: _Failure | None = None
        self.delay_seconds = 0.0
        # wp_woocommerce_api_keys.nonces: per key, {timestamp: nonce} for the last 15 minutes.
        self._nonces: dict[str, dict[int, str]] = {}
        self._faults: list[_Fault] = []
        self._views: dict[tuple[Any, ...], Sequence[Any]] = {}
        self._version = 0
        self._category_by_parent_and_name: dict[tuple[int, str], dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._next_key_id = 1
        self._next_post_id = 100
        self._next_term_id = 16
        self._next_order_id = 5000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # Lifecycle.

    def start(self) -> "FakeWooCommerce":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True
        server.block_on_close = False  # a deliberately slow answer must not hold up teardown
        scheme = "http"
        if self.tls:
            self.ca_bundle = _write_self_signed_certificate()
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.ca_bundle, self.ca_bundle.with_suffix(".key"))
            server.socket = context.wrap_socket(server.socket, server_side=True)
            scheme = "https"
        self._server = server
        self.base_url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-woocommerce", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down: later calls get a refused connection, like a store that is down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.ca_bundle is not None:
            shutil.rmtree(self.ca_bundle.parent, ignore_errors=True)
            self.ca_bundle = None

    # Store content and behaviour.

    def fail_with(self, status: int, *, retry_after: str | None = None) -> None:
        """Answer every REST call with this status (e.g. 500, 503, 429), until `recover()`."""
        self.failure = _Failure(status=status, retry_after=retry_after)

    def recover(self) -> None:
        self.failure = None

    def add_product(self, **overrides: Any) -> dict[str, Any]:
        """Add a simple product (a wc/v3 product representation); `overrides` replace any field, even the id."""
        with self._lock:
            product_id = self._allocate_ids(1)
        product = self._product_defaults(product_id)
        product.update(overrides)
        self._append_product(product)
        return product

    def add_raw_product(self, product: Any) -> Any:
        """Add whatever the store should answer for one product, unchecked (e.g. a malformed record)."""
        self._append_product(product)
        return product

    def add_variable_product(
        self,
        *,
        attributes: Mapping[str, Sequence[str]] | None = None,
        variations: Sequence[Mapping[str, Any]] | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Add a variable product with variations: one per combination of `attributes`, or one per `variations` entry.

        Each `variations` entry may hold `options` ({"Size": "L"}) and any variation field (sku, regular_price, …).
        The parent's price fields are derived from the variations as WooCommerce does (price = cheapest).
        """
        attributes = dict(attributes or {"Size": ["S", "M", "L"]})
        if variations is None:
            combos = list(itertools.product(*attributes.values()))
            variations = [{"options": dict(zip(attributes, combo, strict=True))} for combo in combos]
        with self._lock:
            product_id = self._allocate_ids(1 + len(variations))
        product = self._product_defaults(product_id)
        product.update(
            type="variable",
            sku=f"VAR-{product_id}",
            attributes=[
                {
                    "id": 0,
                    "name": name,
                    "position": position,
                    "visible": True,
                    "variation": True,
                    "options": list(values),
                }
                for position, (name, values) in enumerate(attributes.items())
            ],
        )
        product.update(overrides)
        rows: list[dict[str, Any]] = []
        for position, spec in enumerate(variations, start=1):
            spec = dict(spec)
            options = spec.pop("options", {})
            variation_id = product_id + position
            row = self._variation_defaults(product, variation_id, options, position)
            row.update(spec)
            rows.append(row)
        derived = {**_variable_parent_fields(rows), "variations": [row["id"] for row in rows if "id" in row]}
        product.update({name: value for name, value in derived.items() if name not in overrides})
        self.variations[product_id] = rows
        self._append_product(product)
        return product

    def add_category(self, name: str, *, parent: int = 0, slug: str | None = None) -> dict[str, Any]:
        """Add a product category (a term of product_cat); `name` is stored HTML-escaped, as WordPress does."""
        with self._lock:
            term_id = self._next_term_id
            self._next_term_id += 1
            category = {
                "id": term_id,
                "name": html.escape(name, quote=False),
                "slug": slug or _slugify(name),
                "parent": parent,
                "description": "",
                "display": "default",
                "image": None,
                "menu_order": 0,
                "count": 0,
            }
            self.categories[term_id] = category
            self._version += 1
        return category

    def category_path(self, *names: str) -> dict[str, Any]:
        """The category at the end of the path of names ("Clothing", "Men", "Hoodies"), created as needed."""
        parent = 0
        category: dict[str, Any] = {}
        for name in names:
            key = (parent, name)
            found = self._category_by_parent_and_name.get(key)
            if found is None:
                found = self.add_category(name, parent=parent)
                self._category_by_parent_and_name[key] = found
            category, parent = found, found["id"]
        return category

    def add_order(
        self,
        *,
        lines: Sequence[Mapping[str, Any]] = (),
        status: str = "processing",
        created_at: datetime | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """Add an order with customer data (billing, shipping, IP) as a real store holds it.

        Each of `lines` is {"product": product dict or id, "variation": variation dict or id (optional),
        "quantity": 2, "price": "19.99" (optional), "rec_id": "…" (optional, stored as _bitrecs_rec_id meta)}.
        """
        with self._lock:
            order_id = self._next_order_id
            self._next_order_id += 1
        moment = _wc_time(created_at or datetime.now(tz=UTC))
        line_items = [self._line_item(order_id, position, spec) for position, spec in enumerate(lines, start=1)]
        total = sum((Decimal(item["total"]) for item in line_items), Decimal("0"))
        order: dict[str, Any] = {
            "id": order_id,
            "parent_id": 0,
            "status": status,
            "currency": self.currency,
            "version": WC_VERSION,
            "prices_include_tax": False,
            "date_created": moment,
            "date_created_gmt": moment,
            "date_modified": moment,
            "date_modified_gmt": moment,
            "discount_total": "0.00",
            "shipping_total": "5.00",
            "total": f"{total + 5:.2f}",
            "total_tax": "0.00",
            "customer_id": 12,
            "order_key": f"wc_order_{secrets.token_hex(6)}",
            "billing": {
                "first_name": "Jane",
                "last_name": "Shopper",
                "company": "",
                "address_1": "221B Baker Street",
                "address_2": "",
                "city": "London",
                "state": "",
                "postcode": "NW1 6XE",
                "country": "GB",
                "email": "jane.shopper@example.com",
                "phone": "+44 20 7946 0000",
            },
            "shipping": {
                "first_name": "Jane",
                "last_name": "Shopper",
                "company": "",
                "address_1": "221B Baker Street",
                "address_2": "",
                "city": "London",
                "state": "",
                "postcode": "NW1 6XE",
                "country": "GB",
                "phone": "+44 20 7946 0000",
            },
            "payment_method": "stripe",
            "payment_method_title": "Credit card (Stripe)",
            "transaction_id": "ch_3Pfake",
            "customer_ip_address": "203.0.113.7",
            "customer_user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
            "customer_note": "Leave it with the neighbour at 221A.",
            "date_paid_gmt": moment if status in ("processing", "completed") else None,
            "meta_data": [{"id": 901, "key": "_customer_phone_verified", "value": "+44 20 7946 0000"}],
            "line_items": line_items,
            "shipping_lines": [{"id": 999, "method_title": "Flat rate", "total": "5.00"}],
            "refunds": [],
        }
        order.update(overrides)
        with self._lock:
            self.orders.append(order)
            self._version += 1
        return order

    def update_product(self, product_id: int, *, modified_at: datetime | None = None, **changes: Any) -> dict[str, Any]:
        """Change fields of a product (added or bulk-loaded); date_modified(_gmt) moves to `modified_at` or now."""
        stamp = _wc_time(modified_at or datetime.now(tz=UTC))
        changes = {"date_modified": stamp, "date_modified_gmt": stamp, **changes}
        with self._lock:
            for product in self.products:
                if isinstance(product, dict) and product.get("id") == product_id:
                    product.update(changes)
                    self._version += 1
                    return product
            bulk = self.bulk
            index = bulk.index_of(product_id) if bulk is not None else None
            if bulk is None or index is None:
                raise KeyError(product_id)
            bulk.overrides.setdefault(index, {}).update(changes)
            self._version += 1
            return bulk.product(index)

    def load_catalog(
        self,
        *,
        simple: int = 6,
        variable: int = 3,
        attributes: Mapping[str, Sequence[str]] | None = None,
        modified_at: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Add a small generated catalog: simple and variable products (with variations), categories and tags.

        Product n (from 1) sits in "Clothing > Men|Women > Tops|Bottoms" and is tagged "new"/"sale"; every third
        simple product is on sale and every fourth is out of stock. Dates step by one minute from `modified_at`.
        """
        start = modified_at or datetime(2025, 1, 1, tzinfo=UTC)
        made: list[dict[str, Any]] = []
        for n in range(1, simple + variable + 1):
            branch = self.category_path("Clothing", ("Men", "Women")[n % 2], ("Tops", "Bottoms")[n % 3 == 0])
            stamp = _wc_time(start + timedelta(minutes=n))
            common: dict[str, Any] = {
                "name": f"Generated Product {n}",
                "slug": f"generated-product-{n}",
                "description": f"<p>Generated product <strong>{n}</strong>.</p>",
                "short_description": f"<p>Product {n}.</p>",
                "categories": [_term_ref(self.category_path("Clothing")), _term_ref(branch)],
                "tags": [_tag(1, "new"), _tag(2, "sale")] if n % 3 == 0 else [_tag(1, "new")],
                "date_created": stamp,
                "date_created_gmt": stamp,
                "date_modified": stamp,
                "date_modified_gmt": stamp,
            }
            if n <= simple:
                regular = Decimal(10 + n)
                on_sale = n % 3 == 0
                price = regular - 2 if on_sale else regular
                made.append(
                    self.add_product(
                        sku=f"GEN-{n}",
                        price=f"{price:.2f}",
                        regular_price=f"{regular:.2f}",
                        sale_price=f"{price:.2f}" if on_sale else "",
                        on_sale=on_sale,
                        stock_status="outofstock" if n % 4 == 0 else "instock",
                        manage_stock=True,
                        stock_quantity=0 if n % 4 == 0 else n,
                        **common,
                    )
                )
            else:
                made.append(self.add_variable_product(attributes=attributes, sku=f"GEN-{n}", **common))
        return made

    def load_catalog_csv(
        self,
        path: str | Path | None = None,
        *,
        products: int | None = None,
        modified_at: datetime | None = None,
    ) -> "BulkCatalog":
        """Serve `products` products (default: one copy) built from a WooCommerce product CSV export, lazily.

        The export's simple and variable products (with their variation rows) are repeated with fresh ids, SKUs
        and slugs until there are `products` of them; nothing is materialised until a page asks for it, so a
        100,000-product catalog loads in well under a second and costs no memory per product. Product i has
        date_modified_gmt = `modified_at` + i seconds. One bulk catalog per fake; `update_product` works on it.
        """
        if self.bulk is not None:
            raise RuntimeError("This fake store already holds a bulk catalog.")
        templates = _catalog_templates(str(path or DEFAULT_CATALOG_CSV))
        count = len(templates) if products is None else products
        categories = [
            [_term_ref(self.category_path(*names)) for names in template.category_paths] for template in templates
        ]
        span = sum(1 + len(template.variations) for template in templates)
        cycles = -(-count // len(templates)) if count else 0
        with self._lock:
            first_id = self._allocate_ids(span * cycles)
            self.bulk = BulkCatalog(
                templates=templates,
                categories=categories,
                count=count,
                first_id=first_id,
                base_time=(modified_at or datetime(2025, 1, 1, tzinfo=UTC)).astimezone(UTC).replace(tzinfo=None),
                base_url=self.base_url,
                insert_position=len(self.products),
            )
            self._version += 1
        return self.bulk

    def fail_next(
        self, status: int, *, retry_after: str | None = None, route: str | None = None, times: int = 1
    ) -> None:
        """Answer the next `times` REST calls matching `route` (a glob, e.g. "products/*/variations") with `status`."""
        with self._lock:
            self._faults.append(_Fault(status=status, retry_after=retry_after, route=route, remaining=times))

    def serve_malformed_json(self, *, route: str | None = None, times: int = 1, body: bytes | None = None) -> None:
        """Answer the next `times` matching REST calls with 200 and a body that is not valid JSON (a cut-off page)."""
        raw = body if body is not None else b'[{"id":101,"name":"Cut off'
        with self._lock:
            self._faults.append(_Fault(status=200, route=route, remaining=times, raw_body=raw))

    def request_count(self, route: str) -> int:
        """How many REST calls reached `route` (a glob such as "products/*/variations"), failed ones included."""
        with self._lock:
            return sum(count for name, count in self.route_counts.items() if fnmatch.fnmatchcase(name, route))

    # Product building blocks.

    def _allocate_ids(self, count: int) -> int:
        """Reserve `count` consecutive post ids (products, variations) and return the first; hold the lock."""
        first = self._next_post_id
        self._next_post_id += count
        return first

    def _append_product(self, product: Any) -> None:
        with self._lock:
            self.products.append(product)
            self._version += 1

    def _product_defaults(self, product_id: int) -> dict[str, Any]:
        stamp = "2025-01-01T00:00:00"
        return {
            "id": product_id,
            "name": f"Product {product_id}",
            "slug": f"product-{product_id}",
            "permalink": f"{self.base_url}/product/product-{product_id}/",
            "date_created": stamp,
            "date_created_gmt": stamp,
            "date_modified": stamp,
            "date_modified_gmt": stamp,
            "type": "simple",
            "status": "publish",
            "featured": False,
            "catalog_visibility": "visible",
            "description": "",
            "short_description": "",
            "sku": f"SKU-{product_id}",
            "price": "19.99",
            "regular_price": "19.99",
            "sale_price": "",
            "on_sale": False,
            "purchasable": True,
            "manage_stock": False,
            "stock_quantity": None,
            "stock_status": "instock",
            "backorders": "no",
            "categories": [{"id": 15, "name": "Uncategorized", "slug": "uncategorized"}],
            "tags": [],
            "images": [],
            "attributes": [],
            "default_attributes": [],
            "variations": [],
            "menu_order": 0,
            "meta_data": [],
        }

    def _variation_defaults(
        self, parent: dict[str, Any], variation_id: int, options: Mapping[str, str], position: int
    ) -> dict[str, Any]:
        query = urlencode({f"attribute_{_slugify(name)}": _slugify(value) for name, value in options.items()})
        return {
            "id": variation_id,
            "name": f"{parent['name']} - {', '.join(options.values())}" if options else parent["name"],
            "date_created": parent["date_created"],
            "date_created_gmt": parent["date_created_gmt"],
            "date_modified": parent["date_modified"],
            "date_modified_gmt": parent["date_modified_gmt"],
            "description": "",
            "permalink": f"{parent['permalink']}?{query}",
            "sku": "-".join([str(parent.get("sku") or parent["id"]), *(_slugify(v).upper() for v in options.values())]),
            "price": "25.00",
            "regular_price": "25.00",
            "sale_price": "",
            "on_sale": False,
            "status": "publish",
            "purchasable": True,
            "manage_stock": True,
            "stock_quantity": 10,
            "stock_status": "instock",
            "backorders": "no",
            "image": None,
            "attributes": [{"id": 0, "name": name, "option": value} for name, value in options.items()],
            "menu_order": position,
            "meta_data": [],
        }

    def _line_item(self, order_id: int, position: int, spec: Mapping[str, Any]) -> dict[str, Any]:
        product = spec.get("product")
        variation = spec.get("variation")
        if isinstance(product, int):
            product = self._find_product(product) or {"id": product}
        if isinstance(variation, int):
            variation = self._find_variation(variation) or {"id": variation}
        product = product or {}
        source = variation or product
        quantity = int(spec.get("quantity", 1))
        unit = Decimal(str(spec.get("price") or source.get("price") or "0"))
        total = unit * quantity
        meta: list[dict[str, Any]] = []
        if variation:
            for attribute in variation.get("attributes") or []:
                meta.append(
                    {"id": order_id * 100 + len(meta), "key": _slugify(attribute["name"]), "value": attribute["option"]}
                )
        if spec.get("rec_id"):
            meta.append({"id": order_id * 100 + len(meta), "key": REC_ID_META_KEY, "value": spec["rec_id"]})
        return {
            "id": order_id * 10 + position,
            "name": str(source.get("name") or product.get("name") or ""),
            "product_id": product.get("id", 0),
            "variation_id": variation.get("id", 0) if variation else 0,
            "quantity": quantity,
            "tax_class": "",
            "subtotal": f"{total:.2f}",
            "subtotal_tax": "0.00",
            "total": f"{total:.2f}",
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": meta,
            "sku": str(source.get("sku") or ""),
            "price": float(unit),  # WooCommerce sends the unit price as a JSON number, unlike every other price
            "image": {"id": 0, "src": ""},
            "parent_name": product.get("name") if variation else None,
        }

    def _find_product(self, product_id: int) -> dict[str, Any] | None:
        for product in self.products:
            if isinstance(product, dict) and product.get("id") == product_id:
                return product
        if self.bulk is not None:
            index = self.bulk.index_of(product_id)
            if index is not None:
                return self.bulk.product(index)
        return None

    def _find_variation(self, variation_id: int) -> dict[str, Any] | None:
        for rows in self.variations.values():
            for row in rows:
                if isinstance(row, dict) and row.get("id") == variation_id:
                    return row
        return self.bulk.variation(variation_id) if self.bulk is not None else None

    def _variations_of(self, product_id: int) -> list[Any]:
        if product_id in self.variations:
            return self.variations[product_id]
        if self.bulk is not None:
            index = self.bulk.index_of(product_id)
            if index is not None:
                return self.bulk.variations(index)
        return []

    def issue_key(self, *, permissions: str = "read", description: str = "") -> ApiKey:
        """Create a key pair as WooCommerce's create_keys() does: ck_/cs_ + wc_rand_hash() (40 hex)."""
        with self._lock:
            key = ApiKey(
                key_id=self._next_key_id,
                consumer_key="ck_" + secrets.token_hex(20),
                consumer_secret="cs_" + secrets.token_hex(20),
                permissions=permissions,
                description=description,
            )
            self._next_key_id += 1
            self.keys[key.consumer_key] = key
        return key

    def revoke_key(self, consumer_key: str) -> None:
        with self._lock:
            if consumer_key in self.keys:
                self.keys[consumer_key].revoked = True

    # The merchant's side of /wc-auth/v1/authorize.

    def approve(self, authorize_url: str, *, transport: Transport) -> Approval:
        """Open the authorize URL (over HTTP), approve, and deliver the callback through `transport`."""
        params = self._open_grant_screen(authorize_url)
        key = self.issue_key(permissions=params["scope"], description=f"{params['app_name']} - API (fake)")
        body = json.dumps(
            {
                "key_id": key.key_id,
                "user_id": params["user_id"],
                "consumer_key": key.consumer_key,
                "consumer_secret": key.consumer_secret,
                "key_permissions": key.permissions,
            }
        ).encode()
        headers = {"Content-Type": "application/json;charset=UTF-8", "User-Agent": f"WordPress/{WP_VERSION}"}
        status = transport(params["callback_url"], body, headers)
        location = None
        if status == 200:
            location = _add_query(params["return_url"], {"success": "1", "user_id": params["user_id"]})
        else:
            # class-wc-auth.php: the key is deleted and the merchant sees "An error occurred in the request…".
            with self._lock:
                del self.keys[key.consumer_key]
        return Approval(
            key=key,
            callback_url=params["callback_url"],
            callback_body=body,
            callback_headers=headers,
            callback_status=status,
            return_location=location,
        )

    def deny(self, authorize_url: str) -> str:
        """Open the authorize URL and press Deny; returns where the browser is sent (success=0)."""
        params = self._open_grant_screen(authorize_url)
        return _add_query(params["return_url"], {"success": "0", "user_id": params["user_id"]})

    def _open_grant_screen(self, authorize_url: str) -> dict[str, str]:
        if not authorize_url.startswith(self.base_url + "/"):
            raise AuthorizeRefused(f"{authorize_url} does not point at this fake store ({self.base_url}).")
        response = requests.get(authorize_url, allow_redirects=False, timeout=5)
        if response.status_code != 200:
            raise AuthorizeRefused(f"HTTP {response.status_code}: {response.text}")
        return dict(parse_qsl(urlsplit(authorize_url).query))

    # Request handling (called from the server's threads).

    def _record(self, handler: BaseHTTPRequestHandler, path: str, query: dict[str, str]) -> None:
        if not self.record_requests:
            return
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    method=handler.command,
                    path=path,
                    query=query,
                    headers={name.lower(): value for name, value in handler.headers.items()},
                )
            )

    def _authorize_page(self, query: dict[str, str]) -> tuple[int, str]:
        for name in ("app_name", "scope", "user_id", "return_url", "callback_url"):
            if not query.get(name):
                return 401, f"Error: Missing parameter {name}."
        if query["scope"] not in ("read", "write", "read_write"):
            return 401, f"Error: Invalid scope {query['scope']}."
        for name in ("return_url", "callback_url"):
            parts = urlsplit(query[name])
            if parts.scheme not in ("http", "https") or not parts.netloc:
                return 401, f"Error: The {query[name]} is not a valid URL."
        if self.require_https_callback and not query["callback_url"].lower().startswith("https://"):
            return 401, "Error: The callback_url needs to be over SSL."
        return 200, (
            f"<h1>{query['app_name']} would like to connect to your store</h1>"
            f"<p>This will give {query['app_name']} {query['scope']} access.</p>"
            '<a class="wc-auth-approve" href="#">Approve</a> <a class="wc-auth-deny" href="#">Deny</a>'
        )

    def _rest(self, handler: BaseHTTPRequestHandler, route: str, query: dict[str, str]) -> tuple[int, Any, dict]:
        with self._lock:
            self.route_counts[_route_name(route)] += 1
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        failure = self.failure
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return failure.status, _wc_error(failure.code, "The fake store was told to fail.", failure.status), headers
        fault = self._take_fault(route)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            if fault.raw_body is not None:
                return fault.status, _RawBody(fault.raw_body), headers
            return fault.status, _wc_error("fake_failure", "The fake store was told to fail.", fault.status), headers
        endpoint = self._route(route) if handler.command == "GET" else None
        if endpoint is None:
            return 404, _wc_error("rest_no_route", "No route was found matching the URL and request method.", 404), {}
        view, collection = endpoint
        key, error = self._authenticate(handler, query)
        if error is not None:
            return 401, error, {}
        if key is None:
            message = "Sorry, you cannot list resources." if collection else "Sorry, you cannot view this resource."
            return 401, _wc_error("woocommerce_rest_cannot_view", message, 401), {}
        return view(query)

    def _route(self, route: str) -> tuple[Callable[[dict[str, str]], tuple[int, Any, dict]], bool] | None:
        """The view for a GET route and whether it is a collection; None when WordPress has no such route."""
        if route == "system_status":
            return (lambda query: (200, self._system_status(), {})), False
        if route == "products":
            return (lambda query: self._list("products", query, self._product_view)), True
        if route == "products/categories":
            return (lambda query: self._list(route, query, lambda _: list(self.categories.values()))), True
        if route == "orders":
            return (lambda query: self._list("orders", query, self._order_view)), True
        if route == "data/currencies/current":
            return (lambda query: (200, self._current_currency(), {})), False
        match = _VARIATIONS_ROUTE.fullmatch(route)
        if match:
            product_id = int(match.group(1))
            return (lambda query: self._list(route, query, lambda _: self._variations_of(product_id))), True
        match = _PRODUCT_ROUTE.fullmatch(route)
        if match:
            return (lambda query: self._single_product(int(match.group(1)))), False
        return None

    def _take_fault(self, route: str) -> "_Fault | None":
        with self._lock:
            for fault in self._faults:
                if fault.route is None or fault.route == route or fnmatch.fnmatchcase(route, fault.route):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _authenticate(
        self, handler: BaseHTTPRequestHandler, query: dict[str, str]
    ) -> tuple[ApiKey | None, dict | None]:
        """WC_REST_Authentication: over https Basic auth (or query keys) first; OAuth 1.0a otherwise."""
        if self.tls:
            key, error, tried = self._basic_authentication(handler, query)
            if tried:
                return key, error
        given = [name for name in REQUIRED_OAUTH_PARAMS if name in query]
        if not given:
            return None, None  # unauthenticated: the endpoint's permission check answers
        for name in REQUIRED_OAUTH_PARAMS:
            if not query.get(name):
                return None, _wc_error(
                    "woocommerce_rest_authentication_missing_parameter", f"Missing OAuth parameter {name}", 401
                )
        with self._lock:
            key = self.keys.get(query["oauth_consumer_key"])
        if key is None or key.revoked:
            return None, _wc_error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        method = query["oauth_signature_method"]
        if method not in ("HMAC-SHA1", "HMAC-SHA256"):
            return None, _wc_error(
                "woocommerce_rest_authentication_error", "Invalid signature - signature method is invalid.", 401
            )
        scheme = "https" if self.tls else "http"
        base_uri = f"{scheme}://{handler.headers.get('Host', '')}{urlsplit(handler.path).path}"
        expected = wc_oauth_signature(
            method=handler.command, base_uri=base_uri, params=query, consumer_secret=key.consumer_secret
        )
        provided = unquote(query["oauth_signature"].replace(" ", "+"))
        if not hmac.compare_digest(expected, provided):
            return None, _wc_error(
                "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match.", 401
            )
        try:
            timestamp = int(query["oauth_timestamp"])
        except ValueError:
            timestamp = 0
        if abs(time.time() - timestamp) > OAUTH_WINDOW_SECONDS:
            return None, _wc_error("woocommerce_rest_authentication_error", "Invalid timestamp.", 401)
        with self._lock:
            used = self._nonces.setdefault(key.consumer_key, {})
            if query["oauth_nonce"] in used.values():
                return None, _wc_error(
                    "woocommerce_rest_authentication_error", "Invalid nonce - nonce has already been used.", 401
                )
            used[timestamp] = query["oauth_nonce"]
            expired = time.time() - OAUTH_WINDOW_SECONDS
            for stamp in [stamp for stamp in used if stamp < expired]:
                del used[stamp]
        if handler.command in ("GET", "HEAD") and key.permissions not in ("read", "read_write"):
            return None, _wc_error(
                "woocommerce_rest_authentication_error", "The API key provided does not have read permissions.", 401
            )
        return key, None

    def _basic_authentication(
        self, handler: BaseHTTPRequestHandler, query: dict[str, str]
    ) -> tuple[ApiKey | None, dict | None, bool]:
        header = handler.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None, None, False
        elif query.get("consumer_key") and query.get("consumer_secret"):
            user, password = query["consumer_key"], query["consumer_secret"]
        else:
            return None, None, False
        with self._lock:
            key = self.keys.get(user)
        if key is None or key.revoked:
            return None, _wc_error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401), True
        if not hmac.compare_digest(key.consumer_secret, password):
            return None, _wc_error("woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401), True
        if handler.command in ("GET", "HEAD") and key.permissions not in ("read", "read_write"):
            return (
                None,
                _wc_error(
                    "woocommerce_rest_authentication_error", "The API key provided does not have read permissions.", 401
                ),
                True,
            )
        return key, None, True

    def _system_status(self) -> dict[str, Any]:
        return {
            "environment": {
                "home_url": self.base_url,
                "site_url": self.base_url,
                "version": WC_VERSION,
                "wp_version": WP_VERSION,
                "wp_multisite": False,
                "server_info": "fake",
            },
            "database": {"wc_database_version": WC_VERSION},
            "active_plugins": [],
            "theme": {"name": "Storefront"},
            "settings": {"api_enabled": True, "currency": self.currency},
            "security": {"secure_connection": False},
            "pages": [],
        }

    def _current_currency(self) -> dict[str, Any]:
        return {"code": self.currency, "name": self.currency, "symbol": "&#36;" if self.currency == "USD" else ""}

    def _single_product(self, product_id: int) -> tuple[int, Any, dict]:
        product = self._find_product(product_id) or self._find_variation(product_id)
        if product is None:
            return 404, _wc_error("woocommerce_rest_product_invalid_id", "Invalid ID.", 404), {}
        return 200, product, {}

    def _list(
        self, route: str, query: dict[str, str], build: Callable[["_Filters"], Sequence[Any]]
    ) -> tuple[int, Any, dict]:
        """One page of a collection with WordPress's paging rules, headers and errors; `build` gives the rows."""
        try:
            per_page = int(query.get("per_page", "10"))
            page = int(query.get("page", "1"))
        except ValueError:
            per_page, page = 0, 0
        if not 1 <= per_page <= 100 or page < 1:
            bad = "per_page" if not 1 <= per_page <= 100 else "page"
            body = _wc_error("rest_invalid_param", f"Invalid parameter(s): {bad}", 400)
            body["data"]["params"] = {bad: f"{bad} must be between 1 (inclusive) and 100 (inclusive)"}
            return 400, body, {}
        try:
            filters = _Filters.from_query(query)
        except ValueError as exc:
            body = _wc_error("rest_invalid_param", f"Invalid parameter(s): {exc}", 400)
            body["data"]["params"] = {str(exc): "Invalid date."}
            return 400, body, {}
        rows = build(filters)
        total = len(rows)
        total_pages = (total + per_page - 1) // per_page
        if filters.descending:
            stop = max(0, total - (page - 1) * per_page)
            entries = list(reversed(rows[max(0, stop - per_page) : stop]))
        else:
            entries = list(rows[(page - 1) * per_page : page * per_page])
        items = [self.bulk.product(entry) if isinstance(entry, int) and self.bulk else entry for entry in entries]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(total_pages)}
        kept = {name: value for name, value in query.items() if not name.startswith(("oauth_", "consumer_"))}
        links = []
        if 1 < page <= total_pages + 1:
            links.append(f'<{self.base_url}/wp-json/wc/v3/{route}?{urlencode({**kept, "page": page - 1})}>; rel="prev"')
        if page < total_pages:
            links.append(f'<{self.base_url}/wp-json/wc/v3/{route}?{urlencode({**kept, "page": page + 1})}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return 200, items, headers

    def _product_view(self, filters: "_Filters") -> Sequence[Any]:
        """The matching products in id order (bulk products as their index), built once per filter and change."""
        key = ("products", filters, self._version, len(self.products))
        with self._lock:
            cached = self._views.get(key)
        if cached is not None:
            return cached
        explicit = [product for product in self.products if filters.matches(product)]
        rows: Sequence[Any] = explicit
        if self.bulk is not None:
            cut = sum(1 for product in self.products[: self.bulk.insert_position] if filters.matches(product))
            bulk_rows = self.bulk.matching(filters)
            rows = _Chain([explicit[:cut], bulk_rows, explicit[cut:]]) if explicit else bulk_rows
        with self._lock:
            if len(self._views) > 32:
                self._views.clear()
            self._views[key] = rows
        return rows

    def _order_view(self, filters: "_Filters") -> Sequence[Any]:
        key = ("orders", filters, self._version, len(self.orders))
        with self._lock:
            cached = self._views.get(key)
        if cached is not None:
            return cached
        rows = [order for order in self.orders if filters.matches(order, hidden=frozenset({"trash", "checkout-draft"}))]
        with self._lock:
            self._views[key] = rows
        return rows


def _make_handler(fake: FakeWooCommerce) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "Apache"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._dispatch()

        do_PUT = do_DELETE = do_POST

        def _dispatch(self) -> None:
            parts = urlsplit(self.path)
            # PHP's $_GET: a repeated name keeps its last value.
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            fake._record(self, parts.path, query)
            path = parts.path.rstrip("/")
            if path == "/wc-auth/v1/authorize" and self.command == "GET":
                status, html = fake._authorize_page(query)
                self._send(status, html.encode(), "text/html; charset=UTF-8", {})
            elif path.startswith("/wp-json/") and fake.redirect_to:
                self._send(301, b"", "text/html; charset=UTF-8", {"Location": fake.redirect_to + self.path})
            elif path.startswith("/wp-json/") and fake.plain_permalinks:
                self._send(
                    200, b"<!doctype html><title>My Shop</title><h1>Welcome</h1>", "text/html; charset=UTF-8", {}
                )
            elif path.startswith("/wp-json/wc/v3/"):
                status, body, headers = fake._rest(self, path.removeprefix("/wp-json/wc/v3/"), query)
                payload = body.content if isinstance(body, _RawBody) else json.dumps(body).encode()
                self._send(status, payload, "application/json; charset=UTF-8", headers)
            else:
                self._send(404, b"<h1>Page not found</h1>", "text/html; charset=UTF-8", {})

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up first (timeouts)
                self.wfile.write(body)

    return Handler


# WooCommerce's algorithms, written from its PHP.


def _rawurlencode(value: str) -> str:
    """PHP rawurlencode: RFC 3986, everything but unreserved characters encoded (including '/')."""
    return quote(value, safe="-_.~")


def wc_oauth_signature(*, method: str, base_uri: str, params: dict[str, str], consumer_secret: str) -> str:
    """WC_REST_Authentication::check_oauth_signature's expected signature for a request."""
    signed = {key: value for key, value in params.items() if key != "oauth_signature"}
    pairs = []
    for key in sorted(signed):  # uksort(strcmp)
        name = _rawurlencode(unquote(key)).replace("%", "%25")
        value = _rawurlencode(unquote(signed[key])).replace("%", "%25")
        pairs.append(f"{name}%3D{value}")
    string_to_sign = f"{method.upper()}&{_rawurlencode(base_uri)}&{'%26'.join(pairs)}"
    algorithm = hashlib.sha1 if params.get("oauth_signature_method") == "HMAC-SHA1" else hashlib.sha256
    digest = hmac.new(f"{consumer_secret}&".encode(), string_to_sign.encode(), algorithm).digest()
    return base64.b64encode(digest).decode()


def wp_json_encode(value: Any) -> bytes:
    """PHP json_encode's default output: compact, \\uXXXX for non-ASCII, and '/' escaped as '\\/'."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def webhook_signature(body: bytes, secret: str) -> str:
    """WC_Webhook::generate_signature: base64(HMAC-SHA256(body, secret))."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def build_webhook_delivery(
    *,
    topic: str,
    payload: Any,
    secret: str | None,
    webhook_id: int = 7,
    delivery_id: str | None = None,
    source: str = "https://shop.example/",
    signature: str | None = None,
) -> Delivery:
    """The request WC_Webhook::deliver() sends; `signature` overrides the computed one, `secret=None` omits it."""
    body = wp_json_encode(payload)
    resource, _, event = topic.partition(".")
    headers = {
        "User-Agent": HOOKSHOT_USER_AGENT,
        "X-WC-Webhook-Source": source,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": str(webhook_id),
        # wp_hash(webhook id . current second): an md5-length hex string.
        "X-WC-Webhook-Delivery-ID": delivery_id or hashlib.md5(f"{webhook_id}{time.time()}".encode()).hexdigest(),  # noqa: S324
    }
    if signature is not None:
        headers["X-WC-Webhook-Signature"] = signature
    elif secret is not None:
        headers["X-WC-Webhook-Signature"] = webhook_signature(body, secret)
    return Delivery(body=body, headers=headers)


def build_ping(*, webhook_id: int = 7) -> Delivery:
    """The unsigned ping WC_Webhook::deliver_ping() sends when a webhook is saved."""
    return Delivery(
        body=f"webhook_id={webhook_id}".encode(),
        headers={"User-Agent": HOOKSHOT_USER_AGENT},
        content_type="application/x-www-form-urlencoded",
    )


def send_delivery(client: Any, url: str, delivery: Delivery) -> Any:
    """POST a delivery to our app through the Django test client; returns the response."""
    return client.generic(
        "POST",
        urlsplit(url).path or url,
        delivery.body,
        content_type=delivery.content_type,
        headers=delivery.headers,
    )


@dataclass
class DjangoClientTransport:
    """A Transport that posts to the path of the URL through the Django test client, keeping the responses."""

    client: Any
    responses: list[Any] = field(default_factory=list)

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        extra = {name: value for name, value in headers.items() if name.lower() != "content-type"}
        response = self.client.generic(
            "POST", urlsplit(url).path, body, content_type=headers.get("Content-Type", ""), headers=extra
        )
        self.responses.append(response)
        return int(response.status_code)


def http_transport(url: str, body: bytes, headers: dict[str, str]) -> int:
    """A Transport over real HTTP, for a running server (e.g. pytest-django's live_server)."""
    return requests.post(url, data=body, headers=headers, timeout=60, allow_redirects=False).status_code


def _write_self_signed_certificate() -> Path:
    """A throwaway certificate + key for 127.0.0.1 (PEM files in a temp dir); returns the certificate's path."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-woocommerce")])
    now = datetime.now(tz=UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    directory = Path(tempfile.mkdtemp(prefix="fake-woocommerce-"))
    cert_path = directory / "cert.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    cert_path.with_suffix(".key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path


def _wc_error(code: str, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"status": status}}


def _add_query(url: str, params: dict[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


# Catalog building blocks: filters, lazily generated bulk catalogs, CSV templates.

_PRODUCT_ROUTE = re.compile(r"products/(\d+)")
_VARIATIONS_ROUTE = re.compile(r"products/(\d+)/variations")
_NUMERIC_SEGMENT = re.compile(r"(?<=/)\d+(?=/|$)")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_WC_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass
class _Fault:
    """A one-off answer for the next calls to a route: an error status, or a raw (non-JSON) body."""

    status: int
    retry_after: str | None = None
    route: str | None = None
    remaining: int = 1
    raw_body: bytes | None = None


@dataclass(frozen=True)
class _RawBody:
    """A body sent as-is (e.g. a cut-off JSON page), still labelled application/json."""

    content: bytes


@dataclass(frozen=True)
class _Filters:
    """The collection filters the fake understands (WP_Query semantics: date bounds are exclusive)."""

    statuses: frozenset[str] | None = None  # None is status=any
    type: str | None = None
    modified_after: str | None = None
    modified_before: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    gmt: bool = False
    descending: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "_Filters":
        status = query.get("status", "any").strip()
        statuses = None if status in ("", "any") else frozenset(s.strip() for s in status.split(",") if s.strip())
        return cls(
            statuses=statuses,
            type=query.get("type") or None,
            modified_after=_query_date(query, "modified_after"),
            modified_before=_query_date(query, "modified_before"),
            created_after=_query_date(query, "after"),
            created_before=_query_date(query, "before"),
            gmt=query.get("dates_are_gmt", "").lower() in ("1", "true"),
            descending=query.get("order", "asc").lower() == "desc",
        )

    def matches(self, record: Any, *, hidden: frozenset[str] = frozenset({"trash"})) -> bool:
        if not isinstance(record, dict):
            return True  # a corrupt row is served whatever the filters, as a broken plugin would
        status = record.get("status")
        if (status in hidden) if self.statuses is None else (status not in self.statuses):
            return False
        if self.type is not None and record.get("type") != self.type:
            return False
        suffix = "_gmt" if self.gmt else ""
        modified = str(record.get("date_modified" + suffix) or "")[:19]
        created = str(record.get("date_created" + suffix) or "")[:19]
        return (
            (self.modified_after is None or modified > self.modified_after)
            and (self.modified_before is None or modified < self.modified_before)
            and (self.created_after is None or created > self.created_after)
            and (self.created_before is None or created < self.created_before)
        )


def _query_date(query: Mapping[str, str], name: str) -> str | None:
    """A date parameter as WordPress's rest_parse_date reads it, normalised to the stored format (UTC)."""
    value = query.get(name)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "+"))
    except ValueError:
        raise ValueError(name) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime(_WC_TIME_FORMAT)


class _Chain(abc.Sequence):
    """Several sequences read as one, sliced without copying the parts (explicit products around a bulk range)."""

    def __init__(self, parts: Sequence[Sequence[Any]]) -> None:
        self.parts = [part for part in parts if len(part)]
        self.length = sum(len(part) for part in self.parts)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, int):
            found = self[item : item + 1] if item >= 0 else self[self.length + item : self.length + item + 1]
            if not found:
                raise IndexError(item)
            return found[0]
        start, stop, _ = item.indices(self.length)
        rows: list[Any] = []
        offset = 0
        for part in self.parts:
            low, high = max(start - offset, 0), min(stop - offset, len(part))
            if low < high:
                rows.extend(part[low:high])
            offset += len(part)
        return rows


@dataclass(frozen=True)
class _VariationTemplate:
    sku: str
    values: tuple[str, ...]
    base: dict[str, Any]


@dataclass(frozen=True)
class _Template:
    """One product of a CSV export, ready to be stamped out with fresh ids."""

    type: str
    name: str
    sku: str
    slug: str
    category_paths: tuple[tuple[str, ...], ...]
    base: dict[str, Any]
    variations: tuple[_VariationTemplate, ...]


@dataclass
class BulkCatalog:
    """Products generated on demand from CSV templates; product i is template i % T, copy i // T + 1.

    Ids are laid out as WordPress would after an import: each product's id is followed by its variations' ids.
    Product i was created and last modified at `base_time` + i seconds (UTC), unless `update_product` changed it.
    """

    templates: tuple[_Template, ...]
    categories: list[list[dict[str, Any]]]
    count: int
    first_id: int
    base_time: datetime  # naive UTC
    base_url: str
    insert_position: int
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)
    offsets: list[int] = field(init=False)
    span: int = field(init=False)

    def __post_init__(self) -> None:
        self.offsets = []
        position = 0
        for template in self.templates:
            self.offsets.append(position)
            position += 1 + len(template.variations)
        self.span = position

    @property
    def variation_count(self) -> int:
        """How many variations the catalog's products have in all."""
        per_cycle = [len(template.variations) for template in self.templates]
        cycles, rest = divmod(self.count, len(self.templates))
        return cycles * sum(per_cycle) + sum(per_cycle[:rest])

    def product_id(self, index: int) -> int:
        cycle, slot = divmod(index, len(self.templates))
        return self.first_id + cycle * self.span + self.offsets[slot]

    def _locate(self, post_id: int) -> tuple[int, int] | None:
        """(product index, variation position or -1 for the product itself) of a post id of this catalog."""
        relative = post_id - self.first_id
        if relative < 0:
            return None
        cycle, rest = divmod(relative, self.span)
        slot = bisect.bisect_right(self.offsets, rest) - 1
        index = cycle * len(self.templates) + slot
        if index >= self.count:
            return None
        return index, rest - self.offsets[slot] - 1

    def index_of(self, product_id: int) -> int | None:
        found = self._locate(product_id)
        return found[0] if found is not None and found[1] == -1 else None

    def stamp(self, index: int) -> str:
        return (self.base_time + timedelta(seconds=index)).strftime(_WC_TIME_FORMAT)

    def product(self, index: int) -> dict[str, Any]:
        cycle, slot = divmod(index, len(self.templates))
        template = self.templates[slot]
        product_id = self.product_id(index)
        suffix = f"-{cycle + 1}" if cycle else ""
        slug = template.slug + suffix
        stamp = self.stamp(index)
        product = dict(template.base)
        product.update(
            id=product_id,
            name=f"{template.name} #{cycle + 1}" if cycle else template.name,
            slug=slug,
            sku=template.sku + suffix if template.sku else "",
            permalink=f"{self.base_url}/product/{slug}/",
            date_created=stamp,
            date_created_gmt=stamp,
            date_modified=stamp,
            date_modified_gmt=stamp,
            categories=self.categories[slot],
            variations=list(range(product_id + 1, product_id + 1 + len(template.variations))),
        )
        product.update(self.overrides.get(index, {}))
        return product

    def variations(self, index: int) -> list[dict[str, Any]]:
        parent = self.product(index)
        cycle = index // len(self.templates)
        suffix = f"-{cycle + 1}" if cycle else ""
        template = self.templates[index % len(self.templates)]
        rows = []
        for position, variation in enumerate(template.variations):
            row = dict(variation.base)
            row.update(
                id=parent["id"] + 1 + position,
                name=f"{parent['name']} - {', '.join(variation.values)}" if variation.values else parent["name"],
                sku=variation.sku + suffix if variation.sku else "",
                permalink=parent["permalink"],
                date_created=parent["date_created"],
                date_created_gmt=parent["date_created_gmt"],
                date_modified=parent["date_modified"],
                date_modified_gmt=parent["date_modified_gmt"],
            )
            rows.append(row)
        return rows

    def variation(self, variation_id: int) -> dict[str, Any] | None:
        found = self._locate(variation_id)
        if found is None or found[1] < 0:
            return None
        return self.variations(found[0])[found[1]]

    def matching(self, filters: _Filters) -> Sequence[int]:
        """Indexes of the products that pass `filters`, in id order; a plain range unless products were changed."""
        low, high = 0, self.count
        for after in (filters.modified_after, filters.created_after):
            if after is not None:
                low = max(low, math.floor(self._seconds(after)) + 1)
        for before in (filters.modified_before, filters.created_before):
            if before is not None:
                high = min(high, math.ceil(self._seconds(before)))
        low, high = max(low, 0), max(high, low, 0)
        base_ok = filters.statuses is None or "publish" in filters.statuses
        if not self.overrides and filters.type is None:
            return range(low, high) if base_ok else range(0)
        count = len(self.templates)
        indexes = {
            index
            for index in (range(low, high) if base_ok else range(0))
            if index not in self.overrides
            and (filters.type is None or self.templates[index % count].type == filters.type)
        }
        indexes.update(index for index in self.overrides if filters.matches(self.product(index)))
        return sorted(indexes)

    def _seconds(self, stamp: str) -> float:
        return (datetime.strptime(stamp, _WC_TIME_FORMAT) - self.base_time).total_seconds()  # noqa: DTZ007


@functools.lru_cache(maxsize=4)
def _catalog_templates(path: str) -> tuple[_Template, ...]:
    """The simple and variable products of a WooCommerce product CSV export, with their variation rows."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    children: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        if (row.get("Type") or "").strip() == "variation":
            parent = (row.get("Parent") or "").strip()
            children.setdefault(parent.removeprefix("id:"), []).append(row)
    templates = []
    for row in rows:
        kind = (row.get("Type") or "").strip()
        if kind not in ("simple", "variable"):
            continue
        sku = (row.get("SKU") or "").strip()
        variation_rows = children.get(sku, []) + children.get((row.get("ID") or "").strip(), [])
        templates.append(_template(row, kind, variation_rows if kind == "variable" else []))
    if not templates:
        raise ValueError(f"{path} holds no simple or variable products.")
    return tuple(templates)


def _template(row: dict[str, str], kind: str, variation_rows: list[dict[str, str]]) -> _Template:
    name = (row.get("Name") or "").strip()
    attributes = _csv_attributes(row)
    variations = []
    for position, variation in enumerate(variation_rows, start=1):
        values = tuple(value for _, value in _csv_attributes(variation))
        names = [attribute_name for attribute_name, _ in _csv_attributes(variation)]
        images = _csv_images(variation)
        base = {
            "description": "",
            "status": "publish",
            "purchasable": True,
            "image": images[0] if images else None,
            "attributes": [
                {"id": 0, "name": attribute_name, "option": value}
                for attribute_name, value in zip(names, values, strict=True)
            ],
            "menu_order": position,
            "meta_data": [],
            **_csv_prices(variation),
            **_csv_stock(variation),
        }
        variations.append(_VariationTemplate(sku=(variation.get("SKU") or "").strip(), values=values, base=base))
    published = (row.get("Published") or "1").strip()
    base = {
        "type": kind,
        "status": {"1": "publish", "0": "draft", "-1": "private"}.get(published, "publish"),
        "featured": (row.get("Is featured?") or "0").strip() == "1",
        "catalog_visibility": (row.get("Visibility in catalog") or "visible").strip(),
        "description": row.get("Description") or "",
        "short_description": row.get("Short description") or "",
        "purchasable": True,
        "tags": [_tag(zlib.crc32(tag.encode()) % 100_000, tag) for tag in _csv_list(row.get("Tags"))],
        "brands": [],
        "images": _csv_images(row),
        "attributes": [
            {
                "id": 0,
                "name": attribute_name,
                "position": position,
                "visible": True,
                "variation": kind == "variable",
                "options": [value.strip() for value in _UNESCAPED_COMMA.split(values) if value.strip()],
            }
            for position, (attribute_name, values) in enumerate(attributes)
        ],
        "default_attributes": [],
        "grouped_products": [],
        "menu_order": 0,
        "meta_data": [],
        **_csv_prices(row),
        **_csv_stock(row),
    }
    if variations:
        base.update(_variable_parent_fields([variation.base for variation in variations]))
    return _Template(
        type=kind,
        name=name,
        sku=(row.get("SKU") or "").strip(),
        slug=_slugify(name) or f"product-{row.get('ID', '')}",
        category_paths=tuple(
            tuple(part.strip() for part in path.split(">") if part.strip())
            for path in (p.replace("\\,", ",") for p in _UNESCAPED_COMMA.split(row.get("Categories") or ""))
            if path.strip()
        ),
        base=base,
        variations=tuple(variations),
    )


def _csv_attributes(row: dict[str, str]) -> list[tuple[str, str]]:
    found = []
    for slot in range(1, 10):
        name = (row.get(f"Attribute {slot} name") or "").strip()
        if name:
            found.append((name, (row.get(f"Attribute {slot} value(s)") or "").strip()))
    return found


def _csv_list(value: str | None) -> list[str]:
    return [item.strip() for item in _UNESCAPED_COMMA.split(value or "") if item.strip()]


def _csv_images(row: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"id": zlib.crc32(src.encode()) % 1_000_000, "src": src, "name": src.rsplit("/", 1)[-1], "alt": ""}
        for src in _csv_list(row.get("Images"))
    ]


def _csv_prices(row: dict[str, str]) -> dict[str, Any]:
    regular = (row.get("Regular price") or "").strip()
    sale = (row.get("Sale price") or "").strip()
    return {"price": sale or regular, "regular_price": regular, "sale_price": sale, "on_sale": bool(sale)}


def _csv_stock(row: dict[str, str]) -> dict[str, Any]:
    stock = (row.get("Stock") or "").strip()
    flag = (row.get("In stock?") or "1").strip().lower()
    status = "onbackorder" if flag == "backorder" else "instock" if flag in ("1", "") else "outofstock"
    quantity = int(float(stock)) if stock else None
    return {
        "manage_stock": quantity is not None,
        "stock_quantity": quantity,
        "stock_status": status,
        "backorders": "no",
    }


def _variable_parent_fields(variations: Sequence[Any]) -> dict[str, Any]:
    """What WooCommerce reports on a variable parent: the cheapest active price, no regular/sale price of its own."""
    priced = []
    for row in variations:
        if isinstance(row, dict):
            with contextlib.suppress(ArithmeticError, TypeError, ValueError):
                priced.append((Decimal(str(row.get("price"))), str(row.get("price"))))
    in_stock = any(isinstance(row, dict) and row.get("stock_status") != "outofstock" for row in variations)
    return {
        "price": min(priced)[1] if priced else "",
        "regular_price": "",
        "sale_price": "",
        "on_sale": any(isinstance(row, dict) and row.get("on_sale") for row in variations),
        "stock_status": "instock" if in_stock else "outofstock",
    }


def _slugify(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


def _term_ref(term: Mapping[str, Any]) -> dict[str, Any]:
    """How a product lists one of its terms: id, name and slug (no parent)."""
    return {"id": term["id"], "name": term["name"], "slug": term["slug"]}


def _tag(tag_id: int, name: str) -> dict[str, Any]:
    return {"id": tag_id, "name": name, "slug": _slugify(name)}


def _wc_time(moment: datetime) -> str:
    """A datetime in the format of WooCommerce's *_gmt fields ("2025-01-01T00:00:00", UTC, no offset)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime(_WC_TIME_FORMAT)


def _route_name(route: str) -> str:
    """A route with its ids as '*': products/123/variations -> products/*/variations."""
    return _NUMERIC_SEGMENT.sub("*", "/" + route)[1:]


# Fixtures.


@pytest.fixture
def fake_woocommerce() -> Iterator[FakeWooCommerce]:
    """A started fake WooCommerce store (plain http on 127.0.0.1), stopped after the test."""
    fake = FakeWooCommerce().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_woocommerce_https(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWooCommerce]:
    """The fake store over https with a self-signed certificate that requests trusts for this test."""
    fake = FakeWooCommerce(tls=True).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_bundle))
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def woocommerce_settings(settings: Any) -> Any:
    """Settings for onboarding tests: an https APP_URL (WooCommerce insists on an https callback_url)."""
    settings.LOCAL_MODE = True
    settings.APP_URL = "https://bitrecs.test"
    settings.WOOCOMMERCE_APP_NAME = "Bitrecs"
    settings.WOOCOMMERCE_INSTALL_MAX_AGE_SECONDS = 3600
    settings.PLATFORM_HTTP_TIMEOUT_SECONDS = 5.0
    return settings


@pytest.fixture
def woocommerce_transport(client: Any) -> DjangoClientTransport:
    """Delivers the fake store's callback POSTs to our app through the Django test client."""
    return DjangoClientTransport(client=client)
