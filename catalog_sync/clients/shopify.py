"""Client for one shop's GraphQL Admin API: catalog pages, order lines and bulk catalog exports.

Everything goes through `POST {SHOPIFY_ADMIN_URL_TEMPLATE}/admin/api/{SHOPIFY_API_VERSION}/graphql.json` with
the shop's access token in `X-Shopify-Access-Token`; answers leave this module as catalog_sync.types payloads.

Errors: HTTP 401/403 (and the ACCESS_DENIED GraphQL code) raise `PlatformUnauthorized`; other 4xx and GraphQL
errors such as MAX_COST_EXCEEDED raise `PlatformRejected`; 429, 5xx, timeouts and connection errors raise
`PlatformUnavailable` (with Retry-After). A THROTTLED answer is retried here a few times.

Rate limits: Shopify charges each query's requested cost up front from a leaky bucket and reports the bucket
in `extensions.cost.throttleStatus`. The client remembers that state and, before the next call, sleeps just
long enough for the bucket to hold what the same query cost last time, so it slows down instead of being
throttled. Page sizes are chosen so a query's estimated cost stays under Shopify's 1,000-point limit.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import requests
from django.conf import settings

from bitrecs_site.http import error_text, json_get, retry_after_seconds, shopify_gid_number, timeouts
from catalog_sync.clients import (
    Malformed,
    Page,
    PlatformUnauthorized,
    SkippedRecord,
    ThrottleStatus,
    optional_int,
    price_field,
    string_field,
)
from catalog_sync.text import html_to_text
from catalog_sync.types import OrderLinePayload, ProductPayload, VariantPayload
from merchants.exceptions import PlatformRejected, PlatformUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The hidden line-item property the widget adds to the cart when a shopper adds a recommended product.
REC_ID_ATTRIBUTE = "_bitrecs_rec_id"

MAX_QUERY_COST = 1000
MAX_PAGE_SIZE = 250
MAX_THROTTLE_RETRIES = 5
MIN_THROTTLE_BACKOFF_SECONDS = 1.0
# Variants asked for with each product of a page; products with more get the rest in follow-up queries.
VARIANTS_PER_PRODUCT = 10
VARIANTS_FOLLOW_UP_PAGE = 250
# Shopify allows 2,000 variants per product: 8 follow-up pages of 250, with room to spare.
MAX_VARIANT_PAGES = 10
LINE_ITEMS_PER_ORDER = 5
LINE_ITEMS_FOLLOW_UP_PAGE = 100
MAX_LINE_ITEM_PAGES = 50
DEFAULT_MAX_PAGES = 10_000
# Bulk files: read in chunks; a single JSONL line longer than this is reported and dropped.
BULK_CHUNK_BYTES = 64 * 1024
MAX_BULK_LINE_BYTES = 4 * 1024 * 1024

# Estimated query costs, by Shopify's documented rules (object 1, scalar 0, connection 2 + first x node cost),
# rounded up so a page never trips MAX_COST_EXCEEDED: a product with its category and featured-media image
# objects, a variant with its selectedOptions, a line item with product, variant, price set and attributes.
_PRODUCT_NODE_COST = 6
_VARIANT_NODE_COST = 2
_ORDER_NODE_COST = 2
_LINE_ITEM_NODE_COST = 6
# Requested costs remembered per (query, first), to pace the next call of the same shape.
_MAX_REMEMBERED_COSTS = 32

_SHOP_DOMAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\.myshopify\.com")
_ROW_ID = re.compile(rb'"id"\s*:\s*"gid://shopify/([A-Za-z]+)/(\d+)')
_ROW_PARENT = re.compile(rb'"__parentId"\s*:\s*"(gid://shopify/[A-Za-z]+/\d+)"')
_DEFAULT_OPTION = ("Title", "Default Title")
# Where an error answer of the Admin API explains itself.
_ERROR_FIELDS = ("errors",)

_PRODUCT_FIELDS = """
      id
      legacyResourceId
      title
      handle
      descriptionHtml
      vendor
      productType
      category { fullName }
      tags
      status
      onlineStoreUrl
      featuredMedia { preview { image { url } } }
      totalInventory
      updatedAt
"""
_VARIANT_FIELDS = """
        id
        sku
        title
        position
        price
        compareAtPrice
        inventoryQuantity
        availableForSale
        selectedOptions { name value }
"""
_LINE_ITEM_FIELDS = """
        id
        quantity
        sku
        product { id }
        variant { id }
        originalUnitPriceSet { shopMoney { amount currencyCode } }
        customAttributes { key value }
"""

PRODUCTS_QUERY = (
    """
query BitrecsProducts($first: Int!, $after: String, $query: String) {
  products(first: $first, after: $after, query: $query, sortKey: ID) {
    nodes {
"""
    + _PRODUCT_FIELDS
    + f"""
      variants(first: {VARIANTS_PER_PRODUCT}) {{
        nodes {{
"""
    + _VARIANT_FIELDS
    + """
        }
        pageInfo { hasNextPage endCursor }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
)

PRODUCT_VARIANTS_QUERY = (
    """
query BitrecsProductVariants($id: ID!, $first: Int!, $after: String) {
  product(id: $id) {
    id
    variants(first: $first, after: $after) {
      nodes {
"""
    + _VARIANT_FIELDS
    + """
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
)

ORDERS_QUERY = (
    """
query BitrecsOrders($first: Int!, $after: String, $query: String) {
  orders(first: $first, after: $after, query: $query, sortKey: ID) {
    nodes {
      id
      createdAt
"""
    + f"""
      lineItems(first: {LINE_ITEMS_PER_ORDER}) {{
        nodes {{
"""
    + _LINE_ITEM_FIELDS
    + """
        }
        pageInfo { hasNextPage endCursor }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
)

ORDER_LINE_ITEMS_QUERY = (
    """
query BitrecsOrderLineItems($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    id
    lineItems(first: $first, after: $after) {
      nodes {
"""
    + _LINE_ITEM_FIELDS
    + """
      }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
)

PRODUCTS_COUNT_QUERY = "query ProductsCount { productsCount(limit: null) { count precision } }"
SHOP_CURRENCY_QUERY = "query BitrecsShop { shop { currencyCode } }"

# The bulk query: no `first` (bulk connections are unbounded), edges/node as the bulk guide writes them, and a
# single nested connection, so each variant row carries its product's id in `__parentId`.
BULK_PRODUCTS_QUERY = (
    """
{
  products {
    edges {
      node {
"""
    + _PRODUCT_FIELDS
    + """
        variants {
          edges {
            node {
"""
    + _VARIANT_FIELDS
    + """
            }
          }
        }
      }
    }
  }
}
"""
)

BULK_RUN_MUTATION = """
mutation BitrecsBulkProducts($query: String!, $groupObjects: Boolean!) {
  bulkOperationRunQuery(query: $query, groupObjects: $groupObjects) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

# `bulkOperation(id:)` exists from API 2026-01; `currentBulkOperation` is deprecated.
BULK_STATUS_QUERY = """
query BitrecsBulkStatus($id: ID!) {
  bulkOperation(id: $id) { id status errorCode objectCount url partialDataUrl }
}
"""


class ShopifyQueryRejected(PlatformRejected):
    """Shopify answered the query with a GraphQL error (MAX_COST_EXCEEDED, BAD_REQUEST…); `error_code` says which."""

    def __init__(self, message: str, *, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class BulkFileNotGrouped(PlatformRejected):
    """A variant row arrived outside its product's group in a file read as grouped; read it with grouped=False."""


@dataclass(frozen=True)
class BulkStatus:
    """A bulk operation's state: `url` is set once status is COMPLETED (and expires after 7 days)."""

    id: str
    status: str
    url: str | None
    object_count: int
    error_code: str | None
    partial_data_url: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.status in {"COMPLETED", "FAILED", "CANCELED", "EXPIRED"}


class ShopifyAdminClient:
    """Calls one shop's GraphQL Admin API with its access token (a Session per client, never a global one)."""

    def __init__(
        self,
        shop: str,
        access_token: str,
        *,
        api_version: str | None = None,
        url_template: str | None = None,
        timeout: float | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not _SHOP_DOMAIN.fullmatch(shop):
            raise ValueError(f"Not a myshopify.com domain: {shop!r}")
        self.shop = shop
        self._access_token = access_token
        self.api_version = api_version or settings.SHOPIFY_API_VERSION
        template = url_template or settings.SHOPIFY_ADMIN_URL_TEMPLATE
        self.base_url = template.format(shop=shop).rstrip("/")
        self.graphql_url = f"{self.base_url}/admin/api/{self.api_version}/graphql.json"
        read_timeout = float(timeout if timeout is not None else settings.PLATFORM_HTTP_TIMEOUT_SECONDS)
        self.timeout = timeouts(read=read_timeout)
        self.session = session or requests.Session()
        self._sleep = sleep
        self.throttle: ThrottleStatus | None = None
        self._throttle_seen_at = 0.0
        self._last_requested_cost: float | None = None
        self._requested_costs: dict[tuple[str, Any], float] = {}
        self._currency: str | None = None

    def __repr__(self) -> str:
        return f"ShopifyAdminClient(shop={self.shop!r}, api_version={self.api_version!r})"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ShopifyAdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport --------------------------------------------------------------------------------

    def request(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST one GraphQL document and return the whole JSON body; HTTP-level failures become domain errors."""
        try:
            response = self.session.post(
                self.graphql_url,
                json={"query": query, "variables": dict(variables or {})},
                headers={
                    "X-Shopify-Access-Token": self._access_token,
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
                timeout=self.timeout,
            )
        except requests.Timeout as exc:
            raise PlatformUnavailable(f"Shopify did not answer within {self.timeout[1]:g} s.") from exc
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"Shopify could not be reached: {type(exc).__name__}.") from exc
        status = response.status_code
        if status in (401, 403):
            raise PlatformUnauthorized(
                f"Shopify refused the access token ({status}): {error_text(response, fields=_ERROR_FIELDS)}"
            )
        if status == 429 or status >= 500:
            raise PlatformUnavailable(
                f"Shopify answered {status}; try again later.",
                retry_after=_retry_after(response),
            )
        if status >= 400:
            raise PlatformRejected(
                f"Shopify rejected the request ({status}): {error_text(response, fields=_ERROR_FIELDS)}"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise PlatformUnavailable("Shopify answered with something that is not JSON.") from exc
        if not isinstance(body, dict):
            raise PlatformUnavailable("Shopify answered with JSON that is not an object.")
        return body

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run a query and return its `data`, pacing calls by the cost bucket and retrying THROTTLED answers."""
        cost_key = (query, (variables or {}).get("first"))
        for attempt in range(MAX_THROTTLE_RETRIES + 1):
            self._wait_for_bucket(self._requested_costs.get(cost_key, self._last_requested_cost))
            body = self.request(query, variables)
            self._record_cost(body, cost_key)
            errors = body.get("errors")
            if errors:
                codes = _error_codes(errors)
                if "THROTTLED" in codes:
                    delay = self._throttle_backoff()
                    if attempt == MAX_THROTTLE_RETRIES:
                        raise PlatformUnavailable(
                            f"Shopify kept throttling after {MAX_THROTTLE_RETRIES} retries.", retry_after=delay
                        )
                    logger.info("Shopify throttled %s; retrying in %.2f s", self.shop, delay)
                    self._sleep(delay)
                    continue
                raise _graphql_error(errors, codes)
            data = body.get("data")
            if not isinstance(data, dict):
                raise PlatformUnavailable("Shopify answered without data.")
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    def _record_cost(self, body: Mapping[str, Any], cost_key: tuple[str, Any]) -> None:
        cost = json_get(body, "extensions", "cost")
        status = json_get(cost, "throttleStatus")
        if not isinstance(status, Mapping):
            return
        try:
            requested = _optional_float(json_get(cost, "requestedQueryCost"))
            self.throttle = ThrottleStatus(
                maximum_available=float(status["maximumAvailable"]),
                currently_available=float(status["currentlyAvailable"]),
                restore_rate=float(status["restoreRate"]),
                requested_cost=requested,
                actual_cost=_optional_float(json_get(cost, "actualQueryCost")),
            )
        except (KeyError, TypeError, ValueError):
            return
        self._throttle_seen_at = time.monotonic()
        if requested is not None:
            self._last_requested_cost = requested
            if len(self._requested_costs) >= _MAX_REMEMBERED_COSTS and cost_key not in self._requested_costs:
                self._requested_costs.clear()
            self._requested_costs[cost_key] = requested

    def _available_now(self, throttle: ThrottleStatus) -> float:
        elapsed = max(0.0, time.monotonic() - self._throttle_seen_at)
        return min(throttle.maximum_available, throttle.currently_available + elapsed * throttle.restore_rate)

    def _wait_for_bucket(self, cost: float | None) -> None:
        """Sleep until the bucket should hold `cost` points (as last reported, refilled since at restoreRate)."""
        throttle = self.throttle
        if throttle is None or cost is None or throttle.restore_rate <= 0:
            return
        needed = min(cost, throttle.maximum_available)
        available = self._available_now(throttle)
        if available >= needed:
            return
        # One point of margin: currentlyAvailable is rounded and refills continuously.
        delay = (needed - available + 1.0) / throttle.restore_rate
        logger.debug("Shopify bucket of %s low (%.1f < %.1f); waiting %.2f s", self.shop, available, needed, delay)
        self._sleep(delay)

    def _throttle_backoff(self) -> float:
        throttle = self.throttle
        if throttle is None or throttle.restore_rate <= 0 or throttle.requested_cost is None:
            return MIN_THROTTLE_BACKOFF_SECONDS
        deficit = min(throttle.requested_cost, throttle.maximum_available) - throttle.currently_available
        return max(MIN_THROTTLE_BACKOFF_SECONDS, deficit / throttle.restore_rate)

    def paginate(
        self, fetch: Callable[[str | None], Page[T]], *, max_pages: int = DEFAULT_MAX_PAGES
    ) -> Iterator[Page[T]]:
        """Yield pages from `fetch(cursor)` until the last one; more than `max_pages` pages is an error."""
        cursor: str | None = None
        for _ in range(max_pages):
            page = fetch(cursor)
            yield page
            if page.next_cursor is None:
                return
            if page.next_cursor == cursor:
                raise PlatformRejected("Shopify returned the same page cursor twice.")
            cursor = page.next_cursor
        raise PlatformRejected(f"Stopped after {max_pages} pages from Shopify; the listing did not end.")

    # -- shop ---------------------------------------------------------------------------------------

    def shop_currency(self) -> str:
        """The shop's currency (variant prices are in it); asked once per client."""
        if self._currency is None:
            data = self.graphql(SHOP_CURRENCY_QUERY)
            currency = json_get(data, "shop", "currencyCode")
            if not isinstance(currency, str) or not currency:
                raise PlatformUnavailable("Shopify answered without the shop's currency.")
            self._currency = currency
        return self._currency

    def products_count(self) -> int:
        """How many products the shop has (to choose between paging and a bulk operation)."""
        data = self.graphql(PRODUCTS_COUNT_QUERY)
        count = json_get(data, "productsCount", "count")
        if not isinstance(count, int) or count < 0:
            raise PlatformUnavailable("Shopify answered without a product count.")
        return count

    # -- products -----------------------------------------------------------------------------------

    def products_page(
        self, *, after: str | None = None, page_size: int = 50, updated_since: datetime | None = None
    ) -> Page[ProductPayload]:
        """One page of products (all their variants), optionally only those updated after `updated_since`.

        `page_size` is lowered, if needed, so the query's estimated cost stays under 1,000 points.
        """
        first = products_page_size(page_size)
        search = f"updated_at:>'{_search_time(updated_since)}'" if updated_since is not None else None
        currency = self.shop_currency()
        data = self.graphql(PRODUCTS_QUERY, {"first": first, "after": after, "query": search})
        nodes, next_cursor = _connection(data.get("products"), "products")
        items: list[ProductPayload] = []
        skipped: list[SkippedRecord] = []
        for node in nodes:
            try:
                variant_nodes = self._all_variants(node)
                items.append(_product_payload(node, variant_nodes, currency))
            except Malformed as exc:
                skipped.append(SkippedRecord(_node_external_id(node), str(exc)))
        if skipped:
            logger.warning("Skipped %d malformed Shopify products of %s", len(skipped), self.shop)
        return Page(tuple(items), next_cursor, tuple(skipped), self.throttle)

    def iter_products(
        self, *, page_size: int = 50, updated_since: datetime | None = None, max_pages: int = DEFAULT_MAX_PAGES
    ) -> Iterator[Page[ProductPayload]]:
        """Every page of products, first to last."""
        return self.paginate(
            lambda cursor: self.products_page(after=cursor, page_size=page_size, updated_since=updated_since),
            max_pages=max_pages,
        )

    def _all_variants(self, node: Any) -> list[Any]:
        """The product's variant nodes: those of the page plus follow-up pages when it has more."""
        if not isinstance(node, Mapping):
            raise Malformed("product is not an object")
        variants, cursor = _nested_connection(node.get("variants"), "variants")
        product_id = node.get("id")
        pages = 0
        while cursor is not None:
            pages += 1
            if pages > MAX_VARIANT_PAGES:
                raise Malformed(f"more than {MAX_VARIANT_PAGES * VARIANTS_FOLLOW_UP_PAGE} variants")
            data = self.graphql(
                PRODUCT_VARIANTS_QUERY, {"id": product_id, "first": VARIANTS_FOLLOW_UP_PAGE, "after": cursor}
            )
            product = data.get("product")
            if product is None:
                raise Malformed("product disappeared while its variants were read")
            more, next_cursor = _nested_connection(json_get(product, "variants"), "variants")
            variants.extend(more)
            cursor = next_cursor
        return variants

    # -- orders -------------------------------------------------------------------------------------

    def orders_page(
        self, *, after: str | None = None, page_size: int = 50, created_since: datetime
    ) -> Page[OrderLinePayload]:
        """One page of orders created at or after `created_since`, as order lines (never customer data)."""
        first = orders_page_size(page_size)
        search = f"created_at:>='{_search_time(created_since)}'"
        data = self.graphql(ORDERS_QUERY, {"first": first, "after": after, "query": search})
        nodes, next_cursor = _connection(data.get("orders"), "orders")
        items: list[OrderLinePayload] = []
        skipped: list[SkippedRecord] = []
        for node in nodes:
            try:
                lines = self._all_line_items(node)
                order_lines, bad_lines = _order_lines(node, lines)
            except Malformed as exc:
                skipped.append(SkippedRecord(_node_external_id(node), str(exc)))
                continue
            items.extend(order_lines)
            skipped.extend(bad_lines)
        return Page(tuple(items), next_cursor, tuple(skipped), self.throttle)

    def iter_orders(
        self, *, created_since: datetime, page_size: int = 50, max_pages: int = DEFAULT_MAX_PAGES
    ) -> Iterator[Page[OrderLinePayload]]:
        """Every page of order lines since `created_since`, first to last."""
        return self.paginate(
            lambda cursor: self.orders_page(after=cursor, page_size=page_size, created_since=created_since),
            max_pages=max_pages,
        )

    def _all_line_items(self, node: Any) -> list[Any]:
        if not isinstance(node, Mapping):
            raise Malformed("order is not an object")
        lines, cursor = _nested_connection(node.get("lineItems"), "lineItems")
        pages = 0
        while cursor is not None:
            pages += 1
            if pages > MAX_LINE_ITEM_PAGES:
                raise Malformed(f"more than {MAX_LINE_ITEM_PAGES * LINE_ITEMS_FOLLOW_UP_PAGE} line items")
            data = self.graphql(
                ORDER_LINE_ITEMS_QUERY, {"id": node.get("id"), "first": LINE_ITEMS_FOLLOW_UP_PAGE, "after": cursor}
            )
            order = data.get("order")
            if order is None:
                raise Malformed("order disappeared while its line items were read")
            more, cursor = _nested_connection(json_get(order, "lineItems"), "lineItems")
            lines.extend(more)
        return lines

    # -- bulk export --------------------------------------------------------------------------------

    def start_bulk_products(self, *, group_objects: bool = True) -> str:
        """Start a bulk export of every product with its variants; return the operation's id.

        `group_objects=True` (the default here; Shopify's default is false since 2026-01) puts each product's
        variant rows right after it, which lets `iter_bulk_products` stream with one product in memory.
        """
        data = self.graphql(BULK_RUN_MUTATION, {"query": BULK_PRODUCTS_QUERY, "groupObjects": group_objects})
        payload = data.get("bulkOperationRunQuery")
        if not isinstance(payload, Mapping):
            raise PlatformUnavailable("Shopify answered bulkOperationRunQuery without a payload.")
        user_errors = payload.get("userErrors") or []
        if user_errors:
            messages = "; ".join(str(json_get(error, "message") or error) for error in user_errors)
            raise PlatformRejected(f"Shopify refused the bulk export: {messages}")
        op_id = json_get(payload, "bulkOperation", "id")
        if not isinstance(op_id, str) or not op_id:
            raise PlatformUnavailable("Shopify started no bulk operation and gave no reason.")
        return op_id

    def bulk_status(self, op_id: str) -> BulkStatus:
        """Poll a bulk operation (`bulkOperation(id:)`, API 2026-01+)."""
        data = self.graphql(BULK_STATUS_QUERY, {"id": op_id})
        node = data.get("bulkOperation")
        if not isinstance(node, Mapping):
            raise PlatformRejected(f"Shopify knows no bulk operation {op_id}.")
        try:
            object_count = int(node.get("objectCount") or 0)
        except (TypeError, ValueError):
            object_count = 0
        return BulkStatus(
            id=str(node.get("id") or op_id),
            status=str(node.get("status") or ""),
            url=_optional_str(node.get("url")),
            object_count=object_count,
            error_code=_optional_str(node.get("errorCode")),
            partial_data_url=_optional_str(node.get("partialDataUrl")),
        )

    def iter_bulk_products(self, url: str, *, grouped: bool = True) -> Iterator[ProductPayload | SkippedRecord]:
        """Stream a bulk export's JSONL file as products (with their variants) and skipped records.

        The file is downloaded in chunks and never held in memory. Variant rows are joined to their product by
        `__parentId`:

        - `grouped=True` (files from `start_bulk_products()`): each product is held until the next product row
          or the end of the file, so memory holds one product. A variant row whose parent is not the current
          product means the file is not grouped; rather than emit products with missing variants (the upsert
          deletes stored variants missing from a payload), this raises `BulkFileNotGrouped` — read the same
          URL again with `grouped=False`.
        - `grouped=False` (any order, e.g. Shopify's ungrouped default): rows are spilled to a temporary SQLite
          file on disk, then products are emitted in file order with their variants; memory stays bounded,
          disk use is about the file's size.

        A malformed or truncated line is reported as a `SkippedRecord`. When it was (or may have been) a
        variant row, its product is reported as skipped too instead of being emitted with variants missing.
        The signed download URL is not Shopify's API host: the access token is not sent with it.
        """
        currency = self.shop_currency()
        try:
            response = self.session.get(url, stream=True, timeout=self.timeout)
        except requests.Timeout as exc:
            raise PlatformUnavailable(f"The bulk file did not start within {self.timeout[1]:g} s.") from exc
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"The bulk file could not be downloaded: {type(exc).__name__}.") from exc
        with response:
            if response.status_code in (401, 403, 404, 410):
                raise PlatformRejected(f"The bulk file is gone or expired ({response.status_code}).")
            if response.status_code >= 400:
                raise PlatformUnavailable(
                    f"The bulk file download answered {response.status_code}.",
                    retry_after=_retry_after(response),
                )
            lines = _iter_jsonl_lines(response)
            if grouped:
                yield from _join_grouped(lines, currency)
            else:
                yield from _join_spilled(lines, currency)


# -- page sizes ---------------------------------------------------------------------------------------


def products_page_size(requested: int) -> int:
    """The largest page size up to `requested` whose estimated products query cost stays within 1,000."""
    per_product = _PRODUCT_NODE_COST + 2 + VARIANTS_PER_PRODUCT * _VARIANT_NODE_COST
    return _page_size(requested, per_product)


def orders_page_size(requested: int) -> int:
    per_order = _ORDER_NODE_COST + 2 + LINE_ITEMS_PER_ORDER * _LINE_ITEM_NODE_COST
    return _page_size(requested, per_order)


def _page_size(requested: int, per_node: int) -> int:
    affordable = (MAX_QUERY_COST - 2) // per_node
    return max(1, min(requested, MAX_PAGE_SIZE, affordable))


# -- mapping ------------------------------------------------------------------------------------------


def _product_payload(node: Any, variant_nodes: list[Any], currency: str) -> ProductPayload:
    if not isinstance(node, Mapping):
        raise Malformed("product is not an object")
    external_id = _external_id(node)
    title = node.get("title")
    if not isinstance(title, str) or not title.strip():
        raise Malformed("product has no title")
    variants = tuple(_variant_payload(variant, index) for index, variant in enumerate(variant_nodes, start=1))
    priced = [variant for variant in variants if variant.price is not None]
    cheapest = min(priced, key=lambda variant: variant.price or Decimal(0)) if priced else None
    tags = node.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise Malformed("tags are not a list of strings")
    status = string_field(node, "status") or "ACTIVE"
    url = string_field(node, "onlineStoreUrl")
    return ProductPayload(
        external_id=external_id,
        title=title.strip(),
        sku=next((variant.sku for variant in variants if variant.sku), ""),
        handle=string_field(node, "handle"),
        url=url,
        description=html_to_text(string_field(node, "descriptionHtml")),
        vendor=string_field(node, "vendor"),
        product_type=string_field(node, "productType"),
        category_path=string_field(node.get("category") or {}, "fullName"),
        tags=tuple(tag.strip() for tag in tags if tag.strip()),
        options=_product_options(variants),
        price=cheapest.price if cheapest else None,
        compare_at_price=cheapest.compare_at_price if cheapest else None,
        currency=currency,
        image_url=_image_url(node),
        in_stock=any(variant.in_stock for variant in variants) if variants else True,
        inventory=optional_int(node.get("totalInventory"), "totalInventory"),
        status=status.lower(),
        # onlineStoreUrl is null unless the product is active and published to the Online Store channel.
        is_published=bool(url),
        platform_updated_at=_parse_time(node.get("updatedAt"), "updatedAt"),
        variants=variants,
    )


def _variant_payload(node: Any, position: int) -> VariantPayload:
    if not isinstance(node, Mapping):
        raise Malformed("variant is not an object")
    options: dict[str, str] = {}
    selected = node.get("selectedOptions") or []
    if not isinstance(selected, list):
        raise Malformed("variant options are not a list")
    for option in selected:
        name, value = json_get(option, "name"), json_get(option, "value")
        if isinstance(name, str) and isinstance(value, str) and (name, value) != _DEFAULT_OPTION:
            options[name] = value
    in_stock = node.get("availableForSale")
    return VariantPayload(
        external_id=_external_id(node),
        sku=string_field(node, "sku"),
        title=string_field(node, "title"),
        options=options,
        price=price_field(node.get("price"), "variant price"),
        compare_at_price=price_field(node.get("compareAtPrice"), "variant compareAtPrice"),
        in_stock=in_stock if isinstance(in_stock, bool) else True,
        inventory=optional_int(node.get("inventoryQuantity"), "inventoryQuantity"),
        position=optional_int(node.get("position"), "position") or position,
    )


def _product_options(variants: tuple[VariantPayload, ...]) -> tuple[Mapping[str, object], ...]:
    """[{"name": "Size", "values": ["S", "M"]}] in order of first appearance among the variants."""
    values: dict[str, list[str]] = {}
    for variant in variants:
        for name, value in variant.options.items():
            seen = values.setdefault(name, [])
            if value not in seen:
                seen.append(value)
    return tuple({"name": name, "values": option_values} for name, option_values in values.items())


def _order_lines(node: Any, line_nodes: list[Any]) -> tuple[list[OrderLinePayload], list[SkippedRecord]]:
    """Order lines of one order; reads only ids, SKU, quantity, price and the rec id, never customer data."""
    order_id = _external_id(node)
    ordered_at = _parse_time(node.get("createdAt"), "createdAt")
    if ordered_at is None:
        raise Malformed("order has no createdAt")
    lines: list[OrderLinePayload] = []
    skipped: list[SkippedRecord] = []
    for line in line_nodes:
        try:
            if not isinstance(line, Mapping):
                raise Malformed("line item is not an object")
            quantity = optional_int(line.get("quantity"), "quantity")
            money = json_get(line, "originalUnitPriceSet", "shopMoney") or {}
            lines.append(
                OrderLinePayload(
                    order_id=order_id,
                    line_id=_external_id(line),
                    ordered_at=ordered_at,
                    product_external_id=shopify_gid_number(json_get(line, "product", "id")),
                    variant_external_id=shopify_gid_number(json_get(line, "variant", "id")),
                    sku=string_field(line, "sku"),
                    quantity=quantity if quantity is not None else 1,
                    price=price_field(json_get(money, "amount"), "line price"),
                    currency=string_field(money, "currencyCode"),
                    rec_id=_rec_id(line.get("customAttributes")),
                )
            )
        except Malformed as exc:
            skipped.append(SkippedRecord(f"{order_id}/{_node_external_id(line)}", str(exc)))
    return lines, skipped


def _rec_id(attributes: Any) -> str:
    if not isinstance(attributes, list):
        return ""
    for attribute in attributes:
        if json_get(attribute, "key") == REC_ID_ATTRIBUTE:
            value = json_get(attribute, "value")
            return value.strip()[:64] if isinstance(value, str) else ""
    return ""


def _image_url(node: Mapping[str, Any]) -> str:
    url = json_get(node, "featuredMedia", "preview", "image", "url")
    return url if isinstance(url, str) else ""


def _external_id(node: Mapping[str, Any]) -> str:
    """The numeric id: legacyResourceId when asked for, else the tail of the gid."""
    legacy = node.get("legacyResourceId")
    if isinstance(legacy, str | int) and not isinstance(legacy, bool) and str(legacy).isdigit():
        return str(legacy)
    number = shopify_gid_number(node.get("id"))
    if not number:
        raise Malformed(f"no usable id ({node.get('id')!r})")
    return number


def _node_external_id(node: Any) -> str:
    if not isinstance(node, Mapping):
        return ""
    try:
        return _external_id(node)
    except Malformed:
        return ""


def _parse_time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Malformed(f"{what} is not a timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Malformed(f"{what} is not a timestamp: {value!r}") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _search_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("Use an aware datetime for Shopify search filters.")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _connection(value: Any, name: str) -> tuple[list[Any], str | None]:
    """The nodes and next cursor of a top-level connection; a broken shape is Shopify's problem, retry later."""
    if not isinstance(value, Mapping) or not isinstance(value.get("nodes"), list):
        raise PlatformUnavailable(f"Shopify answered without a {name} list.")
    return list(value["nodes"]), _next_cursor(value.get("pageInfo"))


def _nested_connection(value: Any, name: str) -> tuple[list[Any], str | None]:
    if value is None:
        return [], None
    if not isinstance(value, Mapping) or not isinstance(value.get("nodes"), list):
        raise Malformed(f"{name} is not a connection")
    return list(value["nodes"]), _next_cursor(value.get("pageInfo"))


def _next_cursor(page_info: Any) -> str | None:
    if not isinstance(page_info, Mapping) or page_info.get("hasNextPage") is not True:
        return None
    cursor = page_info.get("endCursor")
    return cursor if isinstance(cursor, str) and cursor else None


def _optional_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# -- errors -------------------------------------------------------------------------------------------


def _error_codes(errors: Any) -> set[str]:
    if not isinstance(errors, list):
        return set()
    return {str(code) for error in errors if (code := json_get(error, "extensions", "code"))}


def _graphql_error(errors: Any, codes: set[str]) -> PlatformRejected | PlatformUnavailable:
    if isinstance(errors, list):
        message = "; ".join(str(json_get(error, "message") or error) for error in errors)[:500]
    else:
        message = str(errors)[:500]
    if "ACCESS_DENIED" in codes:
        return PlatformUnauthorized(f"Shopify denied access (missing scope?): {message}")
    if "INTERNAL_SERVER_ERROR" in codes:
        return PlatformUnavailable(f"Shopify failed internally: {message}")
    code = sorted(codes)[0] if codes else "GRAPHQL_ERROR"
    return ShopifyQueryRejected(f"Shopify rejected the query ({code}): {message}", error_code=code)


def _retry_after(response: requests.Response) -> float | None:
    return retry_after_seconds(response.headers.get("Retry-After"))


# -- bulk JSONL ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    number: int
    raw: bytes
    too_long: bool = False


def _iter_jsonl_lines(response: requests.Response) -> Iterator[_Line]:
    """The file's lines, read chunk by chunk; a line over MAX_BULK_LINE_BYTES comes back empty and too_long."""
    buffer = bytearray()
    too_long = False
    number = 0
    try:
        for chunk in response.iter_content(chunk_size=BULK_CHUNK_BYTES):
            start = 0
            while True:
                end = chunk.find(b"\n", start)
                piece = chunk[start:] if end < 0 else chunk[start:end]
                if not too_long:
                    buffer += piece
                    if len(buffer) > MAX_BULK_LINE_BYTES:
                        too_long = True
                        head = bytes(buffer[:512])
                        buffer.clear()
                        buffer += head
                if end < 0:
                    break
                number += 1
                yield _Line(number, bytes(buffer), too_long)
                buffer.clear()
                too_long = False
                start = end + 1
    except (requests.RequestException, OSError) as exc:
        raise PlatformUnavailable(f"The bulk file download broke off: {type(exc).__name__}.") from exc
    if buffer or too_long:
        yield _Line(number + 1, bytes(buffer), too_long)


@dataclass
class _Row:
    """One parsed JSONL row, or why it could not be parsed (then `kind`/`gid` come from a look at its text)."""

    data: dict[str, Any] | None
    kind: str = ""
    gid: str = ""
    parent: str = ""
    error: str = ""


def _parse_row(line: _Line) -> _Row | None:
    raw = line.raw.strip()
    if not raw and not line.too_long:
        return None
    if not line.too_long:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            parent = data.get("__parentId")
            kind = "child" if parent is not None else "product"
            return _Row(data, kind=kind, gid=data["id"], parent=parent if isinstance(parent, str) else "")
    head = raw[:2048]
    id_match = _ROW_ID.search(head)
    parent_match = _ROW_PARENT.search(head)
    kind = ""
    if parent_match or (id_match and id_match.group(1) != b"Product"):
        kind = "child"
    elif id_match:
        kind = "product"
    reason = "line too long" if line.too_long else "malformed or truncated JSON line"
    return _Row(
        None,
        kind=kind,
        gid=f"gid://shopify/{id_match.group(1).decode()}/{id_match.group(2).decode()}" if id_match else "",
        parent=parent_match.group(1).decode() if parent_match else "",
        error=f"{reason} (line {line.number})",
    )


@dataclass
class _Pending:
    node: dict[str, Any]
    variants: list[dict[str, Any]] = field(default_factory=list)
    lost_variant: str = ""


def _finish(pending: _Pending, currency: str) -> ProductPayload | SkippedRecord:
    external_id = _node_external_id(pending.node)
    if pending.lost_variant:
        return SkippedRecord(external_id, f"a variant row was unreadable ({pending.lost_variant})")
    try:
        return _product_payload(pending.node, pending.variants, currency)
    except Malformed as exc:
        return SkippedRecord(external_id, str(exc))


def _join_grouped(lines: Iterator[_Line], currency: str) -> Iterator[ProductPayload | SkippedRecord]:
    pending: _Pending | None = None
    # The product whose rows are being dropped after its own row was unreadable ("?" when its id is unknown).
    dropped_parent = ""
    for line in lines:
        row = _parse_row(line)
        if row is None:
            continue
        if row.data is None:
            yield SkippedRecord(shopify_gid_number(row.gid or row.parent), row.error)
            if row.kind == "product":
                if pending is not None:
                    yield _finish(pending, currency)
                pending, dropped_parent = None, row.gid
            elif pending is not None and row.parent in ("", pending.node["id"]):
                pending.lost_variant = row.error
                dropped_parent = "?" if not row.kind else dropped_parent
            elif not row.parent:
                dropped_parent = "?"
            continue
        if row.kind == "product":
            if pending is not None:
                yield _finish(pending, currency)
            pending, dropped_parent = _Pending(row.data), ""
        elif pending is not None and row.parent == pending.node["id"]:
            pending.variants.append(row.data)
        elif row.parent and row.parent == dropped_parent:
            continue
        elif dropped_parent == "?":
            dropped_parent = row.parent
        else:
            raise BulkFileNotGrouped(
                f"Variant row {row.gid} (line {line.number}) is not under its product {row.parent}: "
                "the bulk file is not grouped."
            )
    if pending is not None:
        yield _finish(pending, currency)


def _join_spilled(lines: Iterator[_Line], currency: str) -> Iterator[ProductPayload | SkippedRecord]:
    with tempfile.TemporaryDirectory(prefix="bitrecs-bulk-") as directory:
        db = sqlite3.connect(Path(directory) / "rows.sqlite3")
        try:
            db.executescript(
                """
                PRAGMA journal_mode = OFF;
                PRAGMA synchronous = OFF;
                CREATE TABLE products (seq INTEGER PRIMARY KEY, gid TEXT UNIQUE, body TEXT);
                CREATE TABLE variants (seq INTEGER PRIMARY KEY, parent TEXT, body TEXT);
                CREATE TABLE lost (parent TEXT PRIMARY KEY, reason TEXT);
                """
            )
            batch: list[tuple[str, str, str]] = []
            for line in lines:
                row = _parse_row(line)
                if row is None:
                    continue
                if row.data is None:
                    yield SkippedRecord(shopify_gid_number(row.gid or row.parent), row.error)
                    if row.kind == "product" and row.gid:
                        db.execute("INSERT OR IGNORE INTO lost VALUES (?, ?)", (row.gid, row.error))
                    elif row.parent:
                        db.execute("INSERT OR IGNORE INTO lost VALUES (?, ?)", (row.parent, row.error))
                    continue
                table = "products" if row.kind == "product" else "variants"
                batch.append((table, row.gid if table == "products" else row.parent, json.dumps(row.data)))
                if len(batch) >= 1000:
                    _spill(db, batch)
            _spill(db, batch)
            lost = dict(db.execute("SELECT parent, reason FROM lost"))
            products = db.execute("SELECT gid, body FROM products ORDER BY seq")
            for gid, body in products:
                node = json.loads(body)
                if gid in lost:
                    yield SkippedRecord(
                        _node_external_id(node), f"its row or a variant row was unreadable ({lost[gid]})"
                    )
                    continue
                pending = _Pending(node)
                pending.variants = [
                    json.loads(variant)
                    for (variant,) in db.execute("SELECT body FROM variants WHERE parent = ? ORDER BY seq", (gid,))
                ]
                yield _finish(pending, currency)
            orphans = db.execute("SELECT DISTINCT parent FROM variants WHERE parent NOT IN (SELECT gid FROM products)")
            for (parent,) in orphans:
                if parent not in lost:
                    yield SkippedRecord(shopify_gid_number(parent), "variant rows without their product row")
        finally:
            db.close()


def _spill(db: sqlite3.Connection, batch: list[tuple[str, str, str]]) -> None:
    products = [(gid, body) for table, gid, body in batch if table == "products"]
    variants = [(parent, body) for table, parent, body in batch if table == "variants"]
    db.executemany("INSERT OR REPLACE INTO products (gid, body) VALUES (?, ?)", products)
    db.executemany("INSERT INTO variants (parent, body) VALUES (?, ?)", variants)
    batch.clear()


__all__ = [
    "REC_ID_ATTRIBUTE",
    "BulkFileNotGrouped",
    "BulkStatus",
    "Page",
    "PlatformUnauthorized",
    "ShopifyAdminClient",
    "ShopifyQueryRejected",
    "SkippedRecord",
    "ThrottleStatus",
    "orders_page_size",
    "products_page_size",
]
