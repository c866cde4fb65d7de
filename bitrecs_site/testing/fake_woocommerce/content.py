"""What the fake store holds and how a test fills it: products, variations, categories, orders, bulk catalogs."""

import html
import itertools
import secrets
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bitrecs_site.testing.fake_woocommerce.bulk import (
    DEFAULT_CATALOG_CSV,
    BulkCatalog,
    catalog_templates,
    variable_parent_fields,
)
from bitrecs_site.testing.fake_woocommerce.wire import REC_ID_META_KEY, WC_VERSION, slugify, tag_ref, term_ref, wc_time

# Where the fake's orders are billed and shipped to (with WooCommerce's address fields, as a real order holds them).
_SHOPPER_ADDRESS = {
    "first_name": "Jane",
    "last_name": "Shopper",
    "company": "",
    "address_1": "221B Baker Street",
    "address_2": "",
    "city": "London",
    "state": "",
    "postcode": "NW1 6XE",
    "country": "GB",
}
_SHOPPER_PHONE = "+44 20 7946 0000"


class StoreContent:
    """The store's content and settings; the layers above add keys, the REST API and the server."""

    def __init__(self, *, tls: bool = False) -> None:
        self.tls = tls
        self.base_url = ""
        self.currency = "USD"
        self.products: list[Any] = []
        self.variations: dict[int, list[Any]] = {}
        self.categories: dict[int, dict[str, Any]] = {
            15: {"id": 15, "name": "Uncategorized", "slug": "uncategorized", "parent": 0, "count": 0}
        }
        self.orders: list[Any] = []
        self.bulk: BulkCatalog | None = None
        # Bumped on every change of the content: REST views built for an older version are rebuilt.
        self._version = 0
        self._category_by_parent_and_name: dict[tuple[int, str], dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._next_post_id = 100
        self._next_term_id = 16
        self._next_order_id = 5000

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
        derived = {**variable_parent_fields(rows), "variations": [row["id"] for row in rows if "id" in row]}
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
                "slug": slug or slugify(name),
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
        moment = wc_time(created_at or datetime.now(tz=UTC))
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
            "billing": {**_SHOPPER_ADDRESS, "email": "jane.shopper@example.com", "phone": _SHOPPER_PHONE},
            "shipping": {**_SHOPPER_ADDRESS, "phone": _SHOPPER_PHONE},
            "payment_method": "stripe",
            "payment_method_title": "Credit card (Stripe)",
            "transaction_id": "ch_3Pfake",
            "customer_ip_address": "203.0.113.7",
            "customer_user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
            "customer_note": "Leave it with the neighbour at 221A.",
            "date_paid_gmt": moment if status in ("processing", "completed") else None,
            "meta_data": [{"id": 901, "key": "_customer_phone_verified", "value": _SHOPPER_PHONE}],
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
        stamp = wc_time(modified_at or datetime.now(tz=UTC))
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
            stamp = wc_time(start + timedelta(minutes=n))
            common: dict[str, Any] = {
                "name": f"Generated Product {n}",
                "slug": f"generated-product-{n}",
                "description": f"<p>Generated product <strong>{n}</strong>.</p>",
                "short_description": f"<p>Product {n}.</p>",
                "categories": [term_ref(self.category_path("Clothing")), term_ref(branch)],
                "tags": [tag_ref(1, "new"), tag_ref(2, "sale")] if n % 3 == 0 else [tag_ref(1, "new")],
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
        templates = catalog_templates(str(path or DEFAULT_CATALOG_CSV))
        count = len(templates) if products is None else products
        categories = [
            [term_ref(self.category_path(*names)) for names in template.category_paths] for template in templates
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
        query = urlencode({f"attribute_{slugify(name)}": slugify(value) for name, value in options.items()})
        return {
            "id": variation_id,
            "name": f"{parent['name']} - {', '.join(options.values())}" if options else parent["name"],
            "date_created": parent["date_created"],
            "date_created_gmt": parent["date_created_gmt"],
            "date_modified": parent["date_modified"],
            "date_modified_gmt": parent["date_modified_gmt"],
            "description": "",
            "permalink": f"{parent['permalink']}?{query}",
            "sku": "-".join([str(parent.get("sku") or parent["id"]), *(slugify(v).upper() for v in options.values())]),
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
                    {"id": order_id * 100 + len(meta), "key": slugify(attribute["name"]), "value": attribute["option"]}
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
