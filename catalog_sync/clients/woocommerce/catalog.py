"""WooCommerce catalog and order reads: wc/v3 REST pages turned into catalog_sync.types payloads.

All HTTP goes through the store's one `merchants.clients.woocommerce.WooCommerceClient` (auth, explicit timeouts,
a keep-alive session, no redirects, and the error mapping: 401/403/404 → PlatformRejected; 429/5xx/timeouts →
PlatformUnavailable with `retry_after`). This package only pages and maps, so raw JSON never leaves it.

Reading the catalog (`products_page`):
- `GET products?status=any&orderby=id&order=asc&per_page<=100&page=n` (plus `modified_after` in UTC with
  `dates_are_gmt=true`; WP_Query's bound is exclusive). The page count comes from X-WP-TotalPages.
- wc/v3 lists only variation ids on a variable product, so each one's variations are read from
  `products/{id}/variations` (paged), a few products at a time (`variation_workers`). There is no bulk call.
- Product lists carry categories as flat {id, name, slug}: the category tree (`products/categories`) is read
  once per catalog object so the deepest category gives the path "A > B > C".
- Product prices carry no currency: the store's currency (`data/currencies/current`) is read once.
A malformed product (no id or name, a non-numeric price, a wrong type, a malformed variation) is reported as a
SkippedRecord and the rest of the page lands. Paging is by page number: a product deleted while a full sync runs
shifts later pages by one, so one product may be missed until the next sync (WooCommerce offers no id cursor).

Orders (`orders_page`) and webhook bodies (`payload_from_webhook`) are mapped by `mapping`, the one module that
knows the wire format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from bitrecs_site.http import json_get
from catalog_sync.clients import Malformed, Page, SkippedRecord
from catalog_sync.clients.woocommerce.mapping import (
    WebhookPayload,
    is_int,
    is_variable,
    order_lines,
    payload_from_webhook,
    product_or_skips,
    record_key,
)
from catalog_sync.text import html_to_text
from catalog_sync.types import OrderLinePayload, ProductPayload
from merchants.clients.woocommerce import ApiResponse, WooCommerceClient
from merchants.customers import customer_key_in
from merchants.exceptions import PlatformRejected

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P", bound=Page[Any])

MAX_PER_PAGE = 100  # WordPress rejects per_page > 100 (rest_invalid_param)
DEFAULT_MAX_PAGES = 10_000  # 1,000,000 records at 100 a page
MAX_VARIATION_PAGES = 20  # 2,000 variations per product
MAX_CATEGORY_PAGES = 100  # 10,000 categories
# Variation listings read in parallel for one page of products: a few, so a shared host is not flooded.
DEFAULT_VARIATION_WORKERS = 4


@dataclass(frozen=True)
class WooCommercePage(Page[T]):
    """A page plus WordPress's totals (X-WP-Total, X-WP-TotalPages); `next_cursor` is the next page number."""

    total: int | None = None
    total_pages: int | None = None


class WooCommerceCatalog:
    """Pages of a store's products and order lines, as payloads, read through its WooCommerceClient."""

    def __init__(
        self,
        client: WooCommerceClient,
        *,
        currency: str | None = None,
        category_paths: Mapping[int, str] | None = None,
        variation_workers: int = DEFAULT_VARIATION_WORKERS,
    ) -> None:
        self.client = client
        self.variation_workers = max(1, variation_workers)
        self._currency = currency
        self._category_paths = dict(category_paths) if category_paths is not None else None

    def __repr__(self) -> str:
        return f"WooCommerceCatalog({self.client!r})"

    # Store-wide facts, read once per object.

    def currency(self) -> str:
        """The store's currency code (product prices are in it), read once from `data/currencies/current`.

        A store that refuses the call (PlatformRejected, e.g. a very old WooCommerce) gives "".
        """
        if self._currency is None:
            try:
                body = self.client.get("data/currencies/current").body
            except PlatformRejected as exc:
                logger.warning("woocommerce.currency_unreadable", extra={"host": self.client.host, "error": str(exc)})
                body = None
            code = body.get("code") if isinstance(body, Mapping) else None
            self._currency = code.strip().upper()[:3] if isinstance(code, str) else ""
        return self._currency

    def category_paths(self) -> Mapping[int, str]:
        """Every product category's full path by id ({22: "Clothing > Men > Hoodies"}), read once.

        A store that refuses the call (PlatformRejected) gives {}: paths then fall back to the product's names.
        """
        if self._category_paths is None:
            try:
                terms: dict[int, tuple[str, int]] = {}
                for page in range(1, MAX_CATEGORY_PAGES + 1):
                    answer = self.client.get(
                        "products/categories", params={"page": page, "per_page": MAX_PER_PAGE, "orderby": "id"}
                    )
                    rows = _list_body(answer, "products/categories", self.client.host)
                    for row in rows:
                        term_id, name = json_get(row, "id"), json_get(row, "name")
                        parent = json_get(row, "parent")
                        if is_int(term_id) and isinstance(name, str):
                            terms[term_id] = (html_to_text(name), parent if is_int(parent) else 0)
                    if not _has_next(answer, page, MAX_PER_PAGE):
                        break
            except PlatformRejected as exc:
                logger.warning("woocommerce.categories_unreadable", extra={"host": self.client.host, "error": str(exc)})
                terms = {}
            self._category_paths = _category_tree_paths(terms)
        return self._category_paths

    # Products.

    def products_page(
        self, *, page: int, per_page: int = MAX_PER_PAGE, modified_after: datetime | None = None
    ) -> WooCommercePage[ProductPayload]:
        """One page of products (variable ones with all their variations), optionally only those modified after."""
        params = _page_params(page, per_page)
        params["status"] = "any"
        if modified_after is not None:
            params.update(modified_after=_wc_after(modified_after), dates_are_gmt="true")
        answer = self.client.get("products", params=params)
        nodes = _list_body(answer, "products", self.client.host)
        variable_ids = [node["id"] for node in nodes if is_variable(node)]
        variations = self._variations_of(variable_ids)
        currency = self.currency()
        paths = self.category_paths()
        items: list[ProductPayload] = []
        skipped: list[SkippedRecord] = []
        for node in nodes:
            rows: Sequence[Any] | Malformed = variations[node["id"]] if is_variable(node) else ()
            if isinstance(rows, Malformed):
                skipped.append(SkippedRecord(record_key(node), str(rows)))
                continue
            payload, problems = product_or_skips(node, rows, currency=currency, category_paths=paths)
            skipped.extend(problems)
            if payload is not None:
                items.append(payload)
        return self._page(what="products", answer=answer, page=page, per_page=per_page, items=items, skipped=skipped)

    def _page(
        self,
        *,
        what: str,
        answer: ApiResponse,
        page: int,
        per_page: int,
        items: list[T],
        skipped: list[SkippedRecord],
    ) -> WooCommercePage[T]:
        """Report the skipped records of one listing page and wrap it with its paging facts."""
        if skipped:
            logger.warning(
                "woocommerce.%s_skipped", what, extra={"host": self.client.host, "page": page, "count": len(skipped)}
            )
        return WooCommercePage(
            items=tuple(items),
            next_cursor=str(page + 1) if _has_next(answer, page, per_page) else None,
            skipped=tuple(skipped),
            total=answer.total,
            total_pages=answer.total_pages,
        )

    def iter_products(
        self,
        *,
        per_page: int = MAX_PER_PAGE,
        modified_after: datetime | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Iterator[WooCommercePage[ProductPayload]]:
        """Every page of products, first to last; more than `max_pages` pages is an error."""
        return paginate(
            lambda page: self.products_page(page=page, per_page=per_page, modified_after=modified_after),
            max_pages=max_pages,
        )

    def product(self, external_id: str) -> ProductPayload | SkippedRecord:
        """One product with all its variations (e.g. after a variation's webhook); PlatformRejected when unknown."""
        node = self.client.get(f"products/{int(external_id)}").body
        if not isinstance(node, Mapping):
            raise PlatformRejected(f"{self.client.host} answered products/{external_id} with something else.")
        rows: Sequence[Any] | Malformed = ()
        if is_variable(node):
            rows = self._variations_of([node["id"]]).get(node["id"], ())
        if isinstance(rows, Malformed):
            return SkippedRecord(str(external_id), str(rows))
        payload, problems = product_or_skips(node, rows, currency=self.currency(), category_paths=self.category_paths())
        return payload if payload is not None else problems[-1]

    def _variations_of(self, product_ids: list[int]) -> dict[int, Sequence[Any] | Malformed]:
        """Each variable product's variation rows (or why they cannot be read), a few products at a time."""

        def read(product_id: int) -> tuple[int, Sequence[Any] | Malformed]:
            try:
                return product_id, self._variation_rows(product_id)
            except Malformed as exc:
                return product_id, exc

        if self.variation_workers == 1 or len(product_ids) <= 1:
            return dict(map(read, product_ids))
        pool = ThreadPoolExecutor(
            max_workers=min(self.variation_workers, len(product_ids)), thread_name_prefix="woocommerce-variations"
        )
        try:
            return dict(pool.map(read, product_ids))
        finally:
            # After a 429 or 5xx, calls not yet started are dropped rather than sent to a struggling store.
            pool.shutdown(wait=True, cancel_futures=True)

    def _variation_rows(self, product_id: int) -> list[Any]:
        rows: list[Any] = []
        endpoint = f"products/{product_id}/variations"
        for page in range(1, MAX_VARIATION_PAGES + 1):
            params = _page_params(page, MAX_PER_PAGE)
            answer = self.client.get(endpoint, params=params)
            found = _list_body(answer, endpoint, self.client.host)
            rows.extend(found)
            if not _has_next(answer, page, MAX_PER_PAGE):
                return rows
        raise Malformed(f"more than {MAX_VARIATION_PAGES * MAX_PER_PAGE} variations")

    # Orders.

    def orders_page(
        self,
        *,
        page: int,
        per_page: int = MAX_PER_PAGE,
        modified_after: datetime | None = None,
        created_after: datetime | None = None,
        store_id: int | None = None,
    ) -> WooCommercePage[OrderLinePayload]:
        """One page of orders as purchase lines; optionally modified/created after a time.

        Of the customer only `customer_id` is read, and only to key the lines with the store's anonymous key for
        it (given `store_id`; without one, lines carry no key).
        """
        params = _page_params(page, per_page)
        params["status"] = "any"
        if modified_after is not None:
            params["modified_after"] = _wc_after(modified_after)
        if created_after is not None:
            params["after"] = _wc_after(created_after)
        if modified_after is not None or created_after is not None:
            params["dates_are_gmt"] = "true"
        answer = self.client.get("orders", params=params)
        nodes = _list_body(answer, "orders", self.client.host)
        items: list[OrderLinePayload] = []
        skipped: list[SkippedRecord] = []
        for node in nodes:
            try:
                key = customer_key_in(store_id=store_id, platform="woocommerce", body=node) if store_id else ""
                lines, bad_lines = order_lines(node, customer_key=key)
            except Malformed as exc:
                skipped.append(SkippedRecord(record_key(node), str(exc)))
                continue
            items.extend(lines)
            skipped.extend(bad_lines)
        return self._page(what="orders", answer=answer, page=page, per_page=per_page, items=items, skipped=skipped)

    def iter_orders(
        self,
        *,
        per_page: int = MAX_PER_PAGE,
        modified_after: datetime | None = None,
        created_after: datetime | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Iterator[WooCommercePage[OrderLinePayload]]:
        """Every page of order lines, first to last; more than `max_pages` pages is an error."""
        return paginate(
            lambda page: self.orders_page(
                page=page, per_page=per_page, modified_after=modified_after, created_after=created_after
            ),
            max_pages=max_pages,
        )

    # Webhooks.

    @staticmethod
    def payload_from_webhook(
        resource: str,
        body: Any,
        *,
        currency: str = "",
        category_paths: Mapping[int, str] | None = None,
    ) -> WebhookPayload:
        """Map one product.* or order.* delivery body without any HTTP call (see `mapping.payload_from_webhook`)."""
        return payload_from_webhook(resource, body, currency=currency, category_paths=category_paths)


def paginate(fetch: Callable[[int], P], *, max_pages: int = DEFAULT_MAX_PAGES) -> Iterator[P]:
    """Yield `fetch(1)`, `fetch(2)`, … until a page has no next page; more than `max_pages` pages is an error."""
    page_number = 1
    for _ in range(max_pages):
        page = fetch(page_number)
        yield page
        if page.next_cursor is None:
            return
        page_number = int(page.next_cursor)
    raise PlatformRejected(f"Stopped after {max_pages} pages from WooCommerce; the listing did not end.")


def _category_tree_paths(terms: Mapping[int, tuple[str, int]]) -> dict[int, str]:
    """Each term's "Root > … > Term" path; a loop or an unknown parent ends the walk."""
    paths: dict[int, str] = {}
    for term_id in terms:
        names: list[str] = []
        seen: set[int] = set()
        current: int | None = term_id
        while current is not None and current in terms and current not in seen:
            seen.add(current)
            name, parent = terms[current]
            names.append(name)
            current = parent or None
        paths[term_id] = " > ".join(reversed([name for name in names if name]))
    return paths


# Paging.


def _page_params(page: int, per_page: int) -> dict[str, Any]:
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"per_page must be between 1 and {MAX_PER_PAGE}.")
    if page < 1:
        raise ValueError("page starts at 1.")
    return {"page": page, "per_page": per_page, "orderby": "id", "order": "asc"}


def _list_body(answer: ApiResponse, endpoint: str, host: str) -> list[Any]:
    if not isinstance(answer.body, list):
        raise PlatformRejected(f"{host} answered {endpoint} with something other than a list.")
    return answer.body


def _has_next(answer: ApiResponse, page: int, per_page: int) -> bool:
    """Whether a later page exists: X-WP-TotalPages when sent, else "this page was full"."""
    if answer.total_pages is not None:
        return page < answer.total_pages
    return isinstance(answer.body, list) and len(answer.body) >= per_page


def _wc_after(moment: datetime) -> str:
    """An aware lower bound as WooCommerce's GMT date parameters take it ("2025-01-01T00:00:00").

    WordPress stores whole seconds and its `after` bounds are exclusive, so the bound is moved one second back:
    a record stamped in the same second as `moment` is read again rather than missed.
    """
    if moment.tzinfo is None:
        raise ValueError("Use an aware datetime for WooCommerce date filters.")
    return (moment.astimezone(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
