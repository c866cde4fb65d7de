"""Client for one shop's GraphQL Admin API: catalog pages, order lines and bulk catalog exports.

Everything goes through `POST {SHOPIFY_ADMIN_URL_TEMPLATE}/admin/api/{SHOPIFY_API_VERSION}/graphql.json` with
the shop's access token in `X-Shopify-Access-Token`; answers leave this package as catalog_sync.types payloads
(the documents are in `queries`, the mapping in `mapping`, the bulk file in `bulk`, the cost bucket in `pacing`).

Errors: HTTP 401/403 (and the ACCESS_DENIED GraphQL code, as `ShopifyAccessDenied`) raise `PlatformUnauthorized`;
other 4xx and GraphQL errors such as MAX_COST_EXCEEDED raise `PlatformRejected`; 429, 5xx, timeouts and
connection errors raise `PlatformUnavailable` (with Retry-After). A THROTTLED answer is retried here a few times.
An orders query denied the customer's id is asked again without it, and the order lines stay unkeyed.

Rate limits: before each call the client waits just long enough for the bucket to hold what the same query cost
last time, so it slows down instead of being throttled. A sync hands the bucket (and the shop's currency) from
one step to the next and waits for the bucket between pages by task countdown (`next_page_wait`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from django.conf import settings

from bitrecs_site.http import error_text, json_get, retry_after_seconds, timeouts
from catalog_sync.clients import Malformed, Page, PlatformUnauthorized, SkippedRecord, ThrottleStatus
from catalog_sync.clients.shopify.bulk import BulkStatus, read_bulk_products
from catalog_sync.clients.shopify.mapping import (
    connection,
    nested_connection,
    node_external_id,
    optional_str,
    order_lines,
    product_payload,
)
from catalog_sync.clients.shopify.pacing import CostBucket, cost_key
from catalog_sync.clients.shopify.queries import (
    BULK_PRODUCTS_QUERY,
    BULK_RUN_MUTATION,
    BULK_STATUS_QUERY,
    LINE_ITEMS_FOLLOW_UP_PAGE,
    MAX_LINE_ITEM_PAGES,
    MAX_VARIANT_PAGES,
    ORDER_LINE_ITEMS_QUERY,
    ORDERS_QUERY,
    ORDERS_WITHOUT_CUSTOMER_QUERY,
    PRODUCT_VARIANTS_QUERY,
    PRODUCTS_COUNT_QUERY,
    PRODUCTS_QUERY,
    SHOP_CURRENCY_QUERY,
    VARIANTS_FOLLOW_UP_PAGE,
    orders_page_size,
    products_page_size,
)
from catalog_sync.types import OrderLinePayload, ProductPayload
from merchants.customers import customer_key_in
from merchants.exceptions import PlatformRejected, PlatformUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_THROTTLE_RETRIES = 5
DEFAULT_MAX_PAGES = 10_000
_SHOP_DOMAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\.myshopify\.com")
# Where an error answer of the Admin API explains itself.
_ERROR_FIELDS = ("errors",)


class ShopifyAccessDenied(PlatformUnauthorized):
    """Shopify answered a query with ACCESS_DENIED: the app lacks a scope (or protected-data access) it asks for."""


class ShopifyQueryRejected(PlatformRejected):
    """Shopify answered the query with a GraphQL error (MAX_COST_EXCEEDED, BAD_REQUEST…); `error_code` says which."""

    def __init__(self, message: str, *, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


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
        bucket: CostBucket | None = None,
        currency: str | None = None,
        customers_readable: bool = True,
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
        self.bucket = bucket if bucket is not None else CostBucket()
        self._currency = currency
        # False once the shop denied the orders query its `customer { id }`: lines are then read without a key.
        self.customers_readable = customers_readable
        self._page_cost_key: str | None = None

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
        key = cost_key(query, (variables or {}).get("first"))
        for attempt in range(MAX_THROTTLE_RETRIES + 1):
            self._wait_for_bucket(key)
            body = self.request(query, variables)
            self.bucket.record(body, key)
            errors = body.get("errors")
            if errors:
                codes = _error_codes(errors)
                if "THROTTLED" in codes:
                    delay = self.bucket.throttle_backoff()
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

    @property
    def throttle(self) -> ThrottleStatus | None:
        """The cost bucket as Shopify last reported it (None before the first answer)."""
        return self.bucket.throttle

    @property
    def known_currency(self) -> str | None:
        """The shop's currency if this client has read (or was given) it, without asking Shopify."""
        return self._currency

    def next_page_wait(self) -> float:
        """Seconds until the bucket again holds what the last page query cost (0 when it already does)."""
        return self.bucket.wait_for(self._page_cost_key) if self._page_cost_key is not None else 0.0

    def _wait_for_bucket(self, key: str) -> None:
        """Sleep until the bucket should hold what this query shape cost last time."""
        delay = self.bucket.wait_for(key)
        if delay > 0:
            logger.debug("Shopify bucket of %s low; waiting %.2f s", self.shop, delay)
            self._sleep(delay)

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
        self._page_cost_key = cost_key(PRODUCTS_QUERY, first)
        data = self.graphql(PRODUCTS_QUERY, {"first": first, "after": after, "query": search})
        nodes, next_cursor = connection(data.get("products"), "products")
        items: list[ProductPayload] = []
        skipped: list[SkippedRecord] = []
        for node in nodes:
            try:
                variant_nodes = self._all_variants(node)
                items.append(product_payload(node, variant_nodes, currency))
            except Malformed as exc:
                skipped.append(SkippedRecord(node_external_id(node), str(exc)))
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
        variants, cursor = nested_connection(node.get("variants"), "variants")
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
            more, next_cursor = nested_connection(json_get(product, "variants"), "variants")
            variants.extend(more)
            cursor = next_cursor
        return variants

    # -- orders -------------------------------------------------------------------------------------

    def orders_page(
        self, *, after: str | None = None, page_size: int = 50, created_since: datetime, store_id: int | None = None
    ) -> Page[OrderLinePayload]:
        """One page of orders created at or after `created_since`, as order lines.

        Of the customer only `customer { id }` is read, and only to key the lines with the store's anonymous key
        for it (given `store_id`; without one, lines carry no key).
        """
        first = orders_page_size(page_size)
        search = f"created_at:>='{_search_time(created_since)}'"
        data = self._orders_data({"first": first, "after": after, "query": search})
        nodes, next_cursor = connection(data.get("orders"), "orders")
        items: list[OrderLinePayload] = []
        skipped: list[SkippedRecord] = []
        for node in nodes:
            try:
                lines = self._all_line_items(node)
                key = customer_key_in(store_id=store_id, platform="shopify", body=node) if store_id else ""
                good_lines, bad_lines = order_lines(node, lines, customer_key=key)
            except Malformed as exc:
                skipped.append(SkippedRecord(node_external_id(node), str(exc)))
                continue
            items.extend(good_lines)
            skipped.extend(bad_lines)
        return Page(tuple(items), next_cursor, tuple(skipped), self.throttle)

    def _orders_data(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Run the orders query with the customer's id, or without it once the shop denied it (`customers_readable`)."""
        if self.customers_readable:
            try:
                self._page_cost_key = cost_key(ORDERS_QUERY, variables["first"])
                return self.graphql(ORDERS_QUERY, variables)
            except ShopifyAccessDenied as exc:
                logger.warning(
                    "Shopify denied %s the orders' customer ids; order lines stay unkeyed: %s", self.shop, exc
                )
                self.customers_readable = False
        self._page_cost_key = cost_key(ORDERS_WITHOUT_CUSTOMER_QUERY, variables["first"])
        return self.graphql(ORDERS_WITHOUT_CUSTOMER_QUERY, variables)

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
        lines, cursor = nested_connection(node.get("lineItems"), "lineItems")
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
            more, cursor = nested_connection(json_get(order, "lineItems"), "lineItems")
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
            url=optional_str(node.get("url")),
            object_count=object_count,
            error_code=optional_str(node.get("errorCode")),
            partial_data_url=optional_str(node.get("partialDataUrl")),
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
            yield from read_bulk_products(response, currency=currency, grouped=grouped)


def _search_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("Use an aware datetime for Shopify search filters.")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        return ShopifyAccessDenied(f"Shopify denied access (missing scope?): {message}")
    if "INTERNAL_SERVER_ERROR" in codes:
        return PlatformUnavailable(f"Shopify failed internally: {message}")
    code = sorted(codes)[0] if codes else "GRAPHQL_ERROR"
    return ShopifyQueryRejected(f"Shopify rejected the query ({code}): {message}", error_code=code)


def _retry_after(response: requests.Response) -> float | None:
    return retry_after_seconds(response.headers.get("Retry-After"))
