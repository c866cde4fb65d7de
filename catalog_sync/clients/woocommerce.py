"""WooCommerce catalog and order sync: wc/v3 REST pages and webhook bodies turned into catalog_sync.types payloads.

All HTTP goes through the store's one `merchants.clients.woocommerce.WooCommerceClient` (auth, explicit timeouts,
no redirects, and the error mapping: 401/403/404 → PlatformRejected; 429/5xx/timeouts → PlatformUnavailable with
`retry_after`). This module only pages and maps, so raw JSON never leaves it.

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

Orders (`orders_page`): only order ids, dates, currency and line items are read, never billing, shipping,
customer or IP fields. Orders that are not purchases (pending, failed, cancelled, refunded, drafts) give no lines.

Webhooks (`payload_from_webhook`): a delivery's body is the same REST representation, so the same mapping
applies; a deleted resource is only {"id"} and a variable product's body has no variations (variants=None).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from catalog_sync.clients import Malformed, Page, SkippedRecord, optional_int, price_field, string_field
from catalog_sync.text import html_to_text
from catalog_sync.types import OrderLinePayload, ProductPayload, VariantPayload
from merchants.clients.woocommerce import ApiResponse, WooCommerceClient
from merchants.exceptions import PlatformRejected

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P", bound=Page[Any])

# The order item meta key the Bitrecs plugin stores the widget's recommendation id under.
REC_ID_META_KEY = "_bitrecs_rec_id"
MAX_PER_PAGE = 100  # WordPress rejects per_page > 100 (rest_invalid_param)
DEFAULT_MAX_PAGES = 10_000  # 1,000,000 records at 100 a page
MAX_VARIATION_PAGES = 20  # 2,000 variations per product
MAX_CATEGORY_PAGES = 100  # 10,000 categories
# Variation listings read in parallel for one page of products: a few, so a shared host is not flooded.
DEFAULT_VARIATION_WORKERS = 4
# Orders whose lines count as purchases; pending/failed/cancelled/refunded/draft orders give no lines.
PURCHASED_ORDER_STATUSES = frozenset({"processing", "completed", "on-hold"})
# wc/v3 post status -> (our status, is_published).
_STATUSES = {
    "publish": ("active", True),
    "future": ("draft", False),
    "draft": ("draft", False),
    "pending": ("draft", False),
    "private": ("draft", False),
    "trash": ("archived", False),
}
# The default product_cat term every product without a category falls into: it says nothing.
_UNCATEGORIZED_SLUG = "uncategorized"
_BRAND_ATTRIBUTES = frozenset({"brand", "pa_brand", "brands"})
_MAX_REC_ID_LENGTH = 64


@dataclass(frozen=True)
class WooCommercePage(Page[T]):
    """A page plus WordPress's totals (X-WP-Total, X-WP-TotalPages); `next_cursor` is the next page number."""

    total: int | None = None
    total_pages: int | None = None


@dataclass(frozen=True)
class WooCommerceDeleted:
    """A webhook saying a product or order was deleted (its body is only {"id": …})."""

    resource: str
    external_id: str


@dataclass(frozen=True)
class WooCommerceVariationChanged(SkippedRecord):
    """A product webhook whose body is one variation: re-read its product (`WooCommerceCatalog.product`)."""

    product_external_id: str = ""


WebhookPayload = ProductPayload | list[OrderLinePayload] | WooCommerceDeleted | SkippedRecord


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
                        term_id, name = _get(row, "id"), _get(row, "name")
                        parent = _get(row, "parent")
                        if _is_int(term_id) and isinstance(name, str):
                            terms[term_id] = (html_to_text(name), parent if _is_int(parent) else 0)
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
        variable_ids = [node["id"] for node in nodes if _is_variable(node)]
        variations = self._variations_of(variable_ids)
        currency = self.currency()
        paths = self.category_paths()
        items: list[ProductPayload] = []
        skipped: list[SkippedRecord] = []
        for node in nodes:
            rows: Sequence[Any] | Malformed = variations[node["id"]] if _is_variable(node) else ()
            if isinstance(rows, Malformed):
                skipped.append(SkippedRecord(_record_key(node), str(rows)))
                continue
            payload, problems = _product_or_skips(node, rows, currency=currency, category_paths=paths)
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
        if _is_variable(node):
            rows = self._variations_of([node["id"]]).get(node["id"], ())
        if isinstance(rows, Malformed):
            return SkippedRecord(str(external_id), str(rows))
        payload, problems = _product_or_skips(
            node, rows, currency=self.currency(), category_paths=self.category_paths()
        )
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
    ) -> WooCommercePage[OrderLinePayload]:
        """One page of orders as purchase lines (never customer data); optionally modified/created after a time."""
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
                lines, bad_lines = _order_lines(node)
            except Malformed as exc:
                skipped.append(SkippedRecord(_record_key(node), str(exc)))
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
        """Map one product.* or order.* delivery body without any HTTP call.

        - {"id": n} alone (a `*.deleted` delivery) gives WooCommerceDeleted.
        - A product gives a ProductPayload. A variable product's body lists only variation ids, so its `variants`
          is None: the stored variants are left as they are (variation changes arrive with the variation's own
          delivery or the next sync). A simple product's `variants` is () since it has none.
        - A product body that is one variation gives WooCommerceVariationChanged (a SkippedRecord naming the
          product to re-read with `WooCommerceCatalog.product`).
        - An order gives its purchase lines (an empty list for an order that is not a purchase).
        - A body that cannot be mapped gives a SkippedRecord with the reason.
        Prices carry `currency` and categories use `category_paths` when given (else the names are joined).
        """
        if resource not in ("product", "order"):
            raise ValueError(f"No payload for WooCommerce webhook resource {resource!r}.")
        if not isinstance(body, Mapping):
            return SkippedRecord("", f"{resource} body is not an object")
        if set(body) == {"id"}:
            if not _is_id(body["id"]):
                return SkippedRecord("", f"deleted {resource} has no usable id ({body['id']!r})")
            return WooCommerceDeleted(resource=resource, external_id=str(body["id"]))
        if resource == "order":
            try:
                lines, bad_lines = _order_lines(body)
            except Malformed as exc:
                return SkippedRecord(_record_key(body), str(exc))
            if bad_lines and not lines:
                return SkippedRecord(_record_key(body), "; ".join(record.reason for record in bad_lines))
            if bad_lines:
                logger.warning("woocommerce.order_lines_skipped", extra={"count": len(bad_lines)})
            return lines
        if body.get("type") == "variation":
            parent = body.get("parent_id")
            return WooCommerceVariationChanged(
                external_id=_record_key(body),
                reason=f"a variation of product {parent}: re-read the product",
                product_external_id=str(parent) if _is_id(parent) else "",
            )
        payload, problems = _product_or_skips(
            body, None if _is_variable(body) else (), currency=currency, category_paths=category_paths or {}
        )
        return payload if payload is not None else problems[-1]


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


# Mapping.


def _product_or_skips(
    node: Any,
    variation_rows: Sequence[Any] | None,
    *,
    currency: str,
    category_paths: Mapping[int, str],
) -> tuple[ProductPayload | None, list[SkippedRecord]]:
    """The product's payload, or the skipped records that explain why there is none."""
    key = _record_key(node)
    variants: tuple[VariantPayload, ...] | None = None
    if variation_rows is not None:
        found: list[VariantPayload] = []
        bad: list[SkippedRecord] = []
        for position, row in enumerate(variation_rows, start=1):
            try:
                found.append(_variant_payload(row, position))
            except Malformed as exc:
                bad.append(SkippedRecord(f"{key}/{_record_key(row)}", f"variation: {exc}"))
        if bad:
            # Landing the product without some of its variations would delete the stored ones.
            return None, [*bad, SkippedRecord(key, "product with a malformed variation")]
        variants = tuple(found)
    try:
        return _product_payload(node, variants, currency=currency, category_paths=category_paths), []
    except Malformed as exc:
        return None, [SkippedRecord(key, str(exc))]


def _product_payload(
    node: Any,
    variants: tuple[VariantPayload, ...] | None,
    *,
    currency: str,
    category_paths: Mapping[int, str],
) -> ProductPayload:
    if not isinstance(node, Mapping):
        raise Malformed("product is not an object")
    external_id = _required_id(node, "product")
    title = html_to_text(string_field(node, "name"))
    if not title:
        raise Malformed("product has no name")
    price, compare_at = _prices(node)
    known = variants or ()
    priced = [variant for variant in known if variant.price is not None]
    cheapest = min(priced, key=lambda variant: variant.price or Decimal(0)) if priced else None
    if cheapest is not None:
        if price is None:
            price = cheapest.price
        if compare_at is None and cheapest.price == price:
            compare_at = cheapest.compare_at_price
    in_stock = _in_stock(node)
    inventory = _inventory(node)
    if known:
        in_stock = any(variant.in_stock for variant in known)
        counts = [variant.inventory for variant in known if variant.inventory is not None]
        inventory = sum(counts) if counts else inventory
    status, is_published = _STATUSES.get(string_field(node, "status") or "publish", ("draft", False))
    if string_field(node, "catalog_visibility") == "hidden":
        is_published = False  # WooCommerce itself shows it nowhere but on its own page
    images = _list(node, "images")
    return ProductPayload(
        external_id=external_id,
        title=title,
        sku=string_field(node, "sku"),
        handle=string_field(node, "slug"),
        url=string_field(node, "permalink"),
        description=html_to_text(string_field(node, "description"))
        or html_to_text(string_field(node, "short_description")),
        vendor=_brand(node),
        category_path=_category_path(_list(node, "categories"), category_paths),
        tags=_term_names(_list(node, "tags"), "tags"),
        options=_options(_list(node, "attributes")),
        price=price,
        compare_at_price=compare_at,
        currency=currency,
        image_url=string_field(images[0], "src") if images else "",
        in_stock=in_stock,
        inventory=inventory,
        status=status,
        is_published=is_published,
        platform_updated_at=_gmt_time(node, "date_modified_gmt"),
        variants=variants,
    )


def _variant_payload(node: Any, position: int) -> VariantPayload:
    if not isinstance(node, Mapping):
        raise Malformed("not an object")
    external_id = _required_id(node, "variation")
    options: dict[str, str] = {}
    for attribute in _list(node, "attributes"):
        name, value = string_field(attribute, "name"), string_field(attribute, "option")
        if name and value:  # an "Any …" attribute has no option
            options[html_to_text(name)] = html_to_text(value)
    price, compare_at = _prices(node)
    image = node.get("image")
    menu_order = node.get("menu_order")
    if isinstance(menu_order, int) and not isinstance(menu_order, bool) and menu_order > 0:
        position = menu_order
    managed = node.get("manage_stock")
    return VariantPayload(
        external_id=external_id,
        sku=string_field(node, "sku"),
        title=html_to_text(string_field(node, "name")) or " / ".join(options.values()),
        options=options,
        price=price,
        compare_at_price=compare_at,
        in_stock=_in_stock(node),
        # "parent": the parent's stock is reported on every variation, so it is not this variation's own.
        inventory=None if managed == "parent" else _inventory(node),
        image_url=string_field(image, "src") if isinstance(image, Mapping) else "",
        position=position,
    )


def _order_lines(node: Any) -> tuple[list[OrderLinePayload], list[SkippedRecord]]:
    """The purchase lines of one order; reads ids, dates, currency and line items only, never customer data."""
    if not isinstance(node, Mapping):
        raise Malformed("order is not an object")
    order_id = _required_id(node, "order")
    ordered_at = _gmt_time(node, "date_created_gmt")
    if ordered_at is None:
        raise Malformed("order has no date_created_gmt")
    if string_field(node, "status") not in PURCHASED_ORDER_STATUSES:
        return [], []
    currency = string_field(node, "currency").upper()[:3]
    lines: list[OrderLinePayload] = []
    skipped: list[SkippedRecord] = []
    for item in _list(node, "line_items"):
        try:
            lines.append(_order_line(item, order_id=order_id, ordered_at=ordered_at, currency=currency))
        except Malformed as exc:
            skipped.append(SkippedRecord(f"{order_id}/{_record_key(item)}", str(exc)))
    return lines, skipped


def _order_line(item: Any, *, order_id: str, ordered_at: datetime, currency: str) -> OrderLinePayload:
    if not isinstance(item, Mapping):
        raise Malformed("line item is not an object")
    line_id = _required_id(item, "line item")
    quantity = optional_int(item.get("quantity"), "quantity")
    if quantity is None:
        quantity = 1
    # `price` is the unit price after discounts (a JSON number); older stores only send the line total.
    price = price_field(item.get("price"), "price")
    if price is None:
        total = price_field(item.get("total"), "total")
        price = (total / quantity).quantize(Decimal("0.01")) if total is not None and quantity else None
    return OrderLinePayload(
        order_id=order_id,
        line_id=line_id,
        ordered_at=ordered_at,
        product_external_id=_optional_id(item.get("product_id"), "product_id"),
        variant_external_id=_optional_id(item.get("variation_id"), "variation_id"),
        sku=string_field(item, "sku"),
        quantity=quantity,
        price=price,
        currency=currency,
        rec_id=_rec_id(item.get("meta_data")),
    )


def _rec_id(meta: Any) -> str:
    if not isinstance(meta, list):
        return ""
    for entry in meta:
        if _get(entry, "key") == REC_ID_META_KEY:
            value = _get(entry, "value")
            return value.strip()[:_MAX_REC_ID_LENGTH] if isinstance(value, str) else ""
    return ""


def _prices(node: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None]:
    """(price, compare_at_price): the active price, and the regular price when it is higher (an item on sale)."""
    price = price_field(node.get("price"), "price")
    regular = price_field(node.get("regular_price"), "regular_price")
    sale = price_field(node.get("sale_price"), "sale_price")
    if price is None:
        price = sale if sale is not None else regular
    compare_at = regular if regular is not None and price is not None and regular > price else None
    return price, compare_at


def _in_stock(node: Mapping[str, Any]) -> bool:
    status = node.get("stock_status")
    if status is not None and not isinstance(status, str):
        raise Malformed("stock_status is not a string")
    return status != "outofstock"  # "instock" and "onbackorder" can be bought


def _inventory(node: Mapping[str, Any]) -> int | None:
    return optional_int(node.get("stock_quantity"), "stock_quantity")


def _category_path(categories: list[Any], paths: Mapping[int, str]) -> str:
    """The deepest category's path when the tree is known (else the product's category names joined)."""
    names: list[str] = []
    candidates: list[str] = []
    for category in categories:
        if not isinstance(category, Mapping):
            raise Malformed("categories is not a list of objects")
        if string_field(category, "slug") == _UNCATEGORIZED_SLUG:
            continue
        name = html_to_text(string_field(category, "name"))
        known = paths.get(category["id"]) if _is_int(category.get("id")) else None
        if name:
            names.append(name)
        if known or name:
            candidates.append(known or name)
    if not paths:
        return " > ".join(names)
    return max(candidates, key=lambda path: path.count(" > "), default="")


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


def _term_names(terms: list[Any], what: str) -> tuple[str, ...]:
    names: list[str] = []
    for term in terms:
        if not isinstance(term, Mapping):
            raise Malformed(f"{what} is not a list of objects")
        name = html_to_text(string_field(term, "name"))
        if name and name not in names:
            names.append(name)
    return tuple(names)


def _brand(node: Mapping[str, Any]) -> str:
    """The brand: WooCommerce Brands' `brands` terms, else a "Brand" attribute's first value."""
    brands = node.get("brands")
    if isinstance(brands, list):
        names = _term_names(brands, "brands")
        if names:
            return names[0]
    for attribute in _list(node, "attributes"):
        if isinstance(attribute, Mapping) and string_field(attribute, "name").strip().lower() in _BRAND_ATTRIBUTES:
            values = attribute.get("options")
            if isinstance(values, list) and values and isinstance(values[0], str):
                return html_to_text(values[0])
    return ""


def _options(attributes: list[Any]) -> tuple[Mapping[str, object], ...]:
    """[{"name": "Size", "values": ["S", "M"]}] from the product's attributes, in their order."""
    options: list[Mapping[str, object]] = []
    for attribute in attributes:
        if not isinstance(attribute, Mapping):
            raise Malformed("attributes is not a list of objects")
        name = html_to_text(string_field(attribute, "name"))
        values = attribute.get("options")
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise Malformed(f"attribute {name!r} options are not a list of strings")
        if name:
            options.append({"name": name, "values": [html_to_text(value) for value in values if value.strip()]})
    return tuple(options)


# Small readers: each raises Malformed on a wrong type.


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


def _gmt_time(node: Mapping[str, Any], key: str) -> datetime | None:
    value = node.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Malformed(f"{key} is not a date")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Malformed(f"{key} is not a date: {value!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    return _is_int(value) and value > 0


def _is_variable(node: Any) -> bool:
    return isinstance(node, Mapping) and node.get("type") == "variable" and _is_id(node.get("id"))


def _required_id(node: Mapping[str, Any], what: str) -> str:
    value = node.get("id")
    if not _is_id(value):
        raise Malformed(f"{what} has no usable id ({value!r})")
    return str(value)


def _optional_id(value: Any, what: str) -> str:
    """An id where 0 or null means none (a line item of a deleted product, a simple product's variation_id)."""
    if value is None or value == 0:
        return ""
    if not _is_id(value):
        raise Malformed(f"{what} is not an id ({value!r})")
    return str(value)


def _record_key(node: Any) -> str:
    """The record's id for a SkippedRecord, or "" when even that is unreadable."""
    value = node.get("id") if isinstance(node, Mapping) else None
    return str(value) if _is_id(value) else ""


def _list(node: Mapping[str, Any], key: str) -> list[Any]:
    value = node.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Malformed(f"{key} is not a list")
    return value


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None
