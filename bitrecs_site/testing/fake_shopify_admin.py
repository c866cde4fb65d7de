"""A local server that speaks Shopify's GraphQL Admin API, for sync tests and benchmarks.

It serves `POST /{shop}/admin/api/{version}/graphql.json` (point SHOPIFY_ADMIN_URL_TEMPLATE at
`http://127.0.0.1:{port}/{shop}`) with what a sync needs:

- `products` and `orders` connections with cursor pagination (`first`/`after`, `pageInfo`), answered in
  Shopify's JSON shape, with `extensions.cost` and a leaky bucket (`throttleStatus`) that answers
  `THROTTLED` when the bucket is empty, and `MAX_COST_EXCEEDED` for a query over 1,000 points;
- follow-up pages of a single node's children: `product(id:) { variants(first:, after:) }` and
  `order(id:) { lineItems(first:, after:) }`, and `shop { currencyCode }`;
- the search syntax a sync uses: `updated_at:>'…'` / `created_at:>='…'` in the `query` argument filters nodes;
- bulk operations: `bulkOperationRunQuery` (products with their variants), polling with `bulkOperation(id:)`
  (API 2026-01+) or `node(id:) { ... on BulkOperation }`, and the JSONL result (`__parentId` on child rows)
  streamed from `/bulk/{id}.jsonl`. As in API 2026-01+, `groupObjects` defaults to false: an ungrouped file
  lists every product row first and then the variant rows; `groupObjects: true` puts each product's
  variant rows right after it;
- fault injection: the next N answers can be an HTTP status (401, 429 with Retry-After, 500…),
  a THROTTLED error, or a truncated JSONL file; `bulk_file_lines` serves exact JSONL content instead.

Operations are recognised by their root field, as Shopify's resolver would; variables are honoured.
The catalog is a list of product nodes (dicts in the Admin API's shape), made by `make_product`.

Known differences from Shopify: nodes carry every field they have, whatever the selection asked for (so
order nodes always include the buyer's email and customer); the cost is `2 + first * (1 + nested first)`
rather than Shopify's per-object sum; cursors are `cursor:{index}`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from bitrecs_site.testing.fake_server import FakeRequest, FakeResponse, FakeServer

MAX_QUERY_COST = 1000


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def make_product(
    number: int,
    *,
    title: str,
    vendor: str = "",
    product_type: str = "",
    category: str = "",
    tags: Iterable[str] = (),
    description_html: str = "",
    price: str | Decimal = "10.00",
    compare_at_price: str | None = None,
    variants: int = 1,
    inventory: int = 5,
    status: str = "ACTIVE",
    sku_prefix: str = "SKU",
    updated_at: str = "2026-11-01T10:00:00Z",
    variant_options: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A product node as the Admin API returns it, with `variants` variants.

    `variant_options` gives each variant's options ({"Size": "M", "Color": "Red"}) and then sets the number
    of variants; without it a single variant is Shopify's "Title: Default Title" and several are "Option N".
    """
    handle = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or f"product-{number}"
    if variant_options is None:
        default = "Default Title" if variants == 1 else None
        variant_options = [{"Title": default or f"Option {index}"} for index in range(1, variants + 1)]
    variants = len(variant_options)
    variant_nodes = [
        {
            "id": gid("ProductVariant", number * 1000 + index),
            "sku": f"{sku_prefix}-{number}-{index}",
            "title": " / ".join(options.values()),
            "position": index,
            "price": str(price),
            "compareAtPrice": compare_at_price,
            "inventoryQuantity": inventory,
            "availableForSale": inventory > 0,
            "selectedOptions": [{"name": name, "value": value} for name, value in options.items()],
        }
        for index, options in enumerate(variant_options, start=1)
    ]
    return {
        "id": gid("Product", number),
        "legacyResourceId": str(number),
        "title": title,
        "handle": handle,
        "descriptionHtml": description_html,
        "vendor": vendor,
        "productType": product_type,
        "category": {"fullName": category} if category else None,
        "tags": list(tags),
        "status": status,
        "onlineStoreUrl": f"https://example.myshopify.com/products/{handle}" if status == "ACTIVE" else None,
        "featuredMedia": {"preview": {"image": {"url": f"https://cdn.example.com/{handle}.jpg"}}},
        "totalInventory": inventory * variants,
        "updatedAt": updated_at,
        "priceRangeV2": {"minVariantPrice": {"amount": str(price), "currencyCode": "USD"}},
        "variants": {"nodes": variant_nodes},
    }


def make_order(number: int, *, lines: list[tuple[dict[str, Any], int]], created_at: str, rec_id: str = "") -> dict:
    """An order node with line items for (product node, quantity) pairs; PII fields as Shopify sends them."""
    line_nodes = []
    for index, (product, quantity) in enumerate(lines, start=1):
        variant = product["variants"]["nodes"][0]
        attributes = [{"key": "_bitrecs_rec_id", "value": rec_id}] if rec_id else []
        line_nodes.append(
            {
                "id": gid("LineItem", number * 100 + index),
                "quantity": quantity,
                "sku": variant["sku"],
                "product": {"id": product["id"]},
                "variant": {"id": variant["id"]},
                "originalUnitPriceSet": {"shopMoney": {"amount": variant["price"], "currencyCode": "USD"}},
                "customAttributes": attributes,
            }
        )
    return {
        "id": gid("Order", number),
        "name": f"#{1000 + number}",
        "createdAt": created_at,
        "email": f"buyer{number}@example.com",
        "customer": {"id": gid("Customer", number), "email": f"buyer{number}@example.com", "firstName": "Ann"},
        "lineItems": {"nodes": line_nodes},
    }


@dataclass
class BulkOperation:
    id: str
    query: str
    status: str = "CREATED"
    polls: int = 0
    object_count: int = 0
    group_objects: bool = False


@dataclass
class FakeShopifyAdmin:
    """State of the fake shop(s): catalog, orders, bucket, faults, and what was asked."""

    products: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    access_token: str = "shpat_fake_token"
    bucket_max: float = 2000.0
    restore_rate: float = 100.0
    polls_until_complete: int = 1
    requests: list[dict[str, Any]] = field(default_factory=list)
    # False stops keeping every request in `requests` (for benchmarks: thousands of pages).
    record_requests: bool = True
    faults: list[Any] = field(default_factory=list)
    truncate_bulk: bool = False
    # Seconds to wait before answering each GraphQL call (to catch a client in the middle of a page).
    delay_seconds: float = 0.0
    # When set, the JSONL file served for every bulk operation, verbatim (to test odd or damaged files).
    bulk_file_lines: list[bytes] | None = None
    currency: str = "USD"
    # False: a query asking for an order's `customer` is denied (an app without that access), as Shopify does.
    customers_readable: bool = True
    # How many THROTTLED answers the leaky bucket gave (injected faults are not counted).
    throttled_answers: int = 0
    # Computed per request: the product list of a call, to let a test change the catalog as it goes.
    port: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._available = self.bucket_max
        self._refilled_at = time.monotonic()
        self._bulk: dict[str, BulkOperation] = {}

    @property
    def base_url_template(self) -> str:
        return f"http://127.0.0.1:{self.port}/{{shop}}"

    # -- HTTP -------------------------------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Serve one HTTP request (called from the server's threads): GraphQL calls and bulk result files."""
        if request.method == "GET":
            return self._bulk_download(request)
        match = re.fullmatch(r"/([^/]+)/admin/api/([^/]+)/graphql\.json", request.target)
        if request.method != "POST" or not match:
            return _json_response(404, b'{"errors":"Not Found"}')
        if self.record_requests:
            self.requests.append(
                {
                    "shop": match.group(1),
                    "version": match.group(2),
                    "body": request.body,
                    "headers": dict(request.headers),
                }
            )
        if request.headers.get("X-Shopify-Access-Token") != self.access_token:
            return _json_response(
                401, b'{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}'
            )
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        if self.faults:
            return self._fault(self.faults.pop(0))
        try:
            payload = json.loads(request.body)
        except ValueError:
            return _json_response(400, b'{"errors":{"query":"Required parameter missing or invalid"}}')
        status, body = self.graphql(payload.get("query", ""), payload.get("variables") or {})
        return _json_response(status, json.dumps(body).encode())

    def _fault(self, fault: Any) -> FakeResponse:
        if fault == "THROTTLED":
            body = _error("Throttled", "THROTTLED")
            body["extensions"] = {"cost": {"requestedQueryCost": 50, "throttleStatus": self._take(0)[1]}}
            return _json_response(200, json.dumps(body).encode())
        if fault == 429:
            return _json_response(
                429, b'{"errors":"Exceeded 2 calls per second for api client."}', {"Retry-After": "1.0"}
            )
        return _json_response(int(fault), json.dumps({"errors": f"fault {fault}"}).encode())

    def _bulk_download(self, request: FakeRequest) -> FakeResponse:
        match = re.fullmatch(r"/bulk/(\d+)\.jsonl", request.target)
        if not match:
            return FakeResponse(404, b"Not Found", "text/plain")
        if self.record_requests:
            self.requests.append({"bulk_download": match.group(1), "headers": dict(request.headers)})
        op = self.bulk_operation(match.group(1))
        grouped = op.group_objects if op is not None else True
        return FakeResponse(200, _chunks(self.bulk_lines(grouped=grouped)), "application/jsonl")

    # -- the leaky bucket -------------------------------------------------------------------------

    def set_bucket(self, maximum: float, restore_rate: float) -> None:
        """Resize the bucket (as a different Shopify plan would) and fill it."""
        with self._lock:
            self.bucket_max = maximum
            self.restore_rate = restore_rate
            self._available = maximum
            self._refilled_at = time.monotonic()

    def _take(self, cost: float) -> tuple[bool, dict[str, float]]:
        with self._lock:
            now = time.monotonic()
            self._available = min(self.bucket_max, self._available + (now - self._refilled_at) * self.restore_rate)
            self._refilled_at = now
            ok = self._available >= cost
            if ok:
                self._available -= cost
            status = {
                "maximumAvailable": self.bucket_max,
                "currentlyAvailable": round(self._available, 1),
                "restoreRate": self.restore_rate,
            }
            return ok, status

    # -- GraphQL ----------------------------------------------------------------------------------

    def graphql(self, query: str, variables: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "bulkOperationRunQuery" in query:
            group = variables.get("groupObjects")
            if group is None:
                literal = re.search(r"\bgroupObjects\s*:\s*(true|false)", query)
                group = bool(literal and literal.group(1) == "true")
            return 200, self._run_bulk(variables.get("query") or _inline_bulk_query(query), group_objects=bool(group))
        if re.search(r"\bproductsCount\b", query):
            _ok, throttle = self._take(1)
            return 200, {
                "data": {"productsCount": {"count": len(self.products), "precision": "EXACT"}},
                "extensions": {"cost": {"requestedQueryCost": 1, "actualQueryCost": 1, "throttleStatus": throttle}},
            }
        if re.search(r"\bbulkOperation\s*\(", query):
            return 200, self._poll_bulk(str(variables.get("id", "")), "bulkOperation")
        if re.search(r"\bnode\s*\(", query) and "BulkOperation" in query:
            return 200, self._poll_bulk(str(variables.get("id", "")), "node")
        if re.search(r"\b(product|order)\s*\(", query):
            return self._one_node(query, variables)
        if not re.search(r"\b(products|orders)\s*\(", query) and re.search(r"\bshop\s*\{", query):
            return self._charged(1, {"shop": {"currencyCode": self.currency}}, 1)
        root = "orders" if re.search(r"\borders\s*\(", query) else "products"
        if root == "orders" and not self.customers_readable and re.search(r"\bcustomer\s*\{", query):
            return 200, _error("Access denied for customer field.", "ACCESS_DENIED")
        first = int(variables.get("first") or _literal(query, root, "first") or 50)
        variants_first = int(_literal(query, "variants", "first") or 0)
        lines_first = int(_literal(query, "lineItems", "first") or 0)
        if first > 250:
            return 200, _error(f"The page size {first} is larger than 250.", "BAD_REQUEST")
        nested = variants_first if root == "products" else lines_first
        cost = 2 + first * (1 + nested)
        if cost > MAX_QUERY_COST:
            return 200, {
                "errors": [
                    {
                        "message": f"Query cost is {cost}, which exceeds the single query max cost limit (1000).",
                        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": cost, "maxCost": MAX_QUERY_COST},
                    }
                ]
            }
        items = self.orders if root == "orders" else self.products
        search = variables.get("query") or _literal_string(query, root, "query")
        if search:
            items = [node for node in items if _matches(node, str(search))]
        start = _cursor_index(variables.get("after"))
        page = items[start : start + first]
        nodes = [_shape(node, nested) for node in page]
        if root == "orders" and not re.search(r"\bcustomer\s*\{", query):
            nodes = [{key: value for key, value in node.items() if key != "customer"} for node in nodes]
        end = start + len(page)
        data = {
            root: {
                "nodes": nodes,
                "pageInfo": {"hasNextPage": end < len(items), "endCursor": _cursor(end) if page else None},
            }
        }
        return self._charged(cost, data, 2 + len(page) * (1 + nested))

    def _charged(self, cost: int, data: dict[str, Any], actual: int) -> tuple[int, dict[str, Any]]:
        """Take `cost` from the bucket and answer `data`, or answer THROTTLED when the bucket is short."""
        ok, throttle = self._take(cost)
        if not ok:
            with self._lock:
                self.throttled_answers += 1
            return 200, {
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                "extensions": {
                    "cost": {"requestedQueryCost": cost, "actualQueryCost": None, "throttleStatus": throttle}
                },
            }
        return 200, {
            "data": data,
            "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": actual, "throttleStatus": throttle}},
        }

    def _one_node(self, query: str, variables: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """`product(id:) { variants(first:, after:) }` or `order(id:) { lineItems(first:, after:) }`."""
        is_order = re.search(r"\border\s*\(", query) is not None
        root, child, items = ("order", "lineItems", self.orders) if is_order else ("product", "variants", self.products)
        first = int(variables.get("first") or _literal(query, child, "first") or 0)
        if first > 250 and not (child == "variants" and first <= 2000):
            return 200, _error(f"The page size {first} is larger than 250.", "BAD_REQUEST")
        cost = 3 + first
        node = next((item for item in items if item["id"] == variables.get("id")), None)
        if node is None:
            return self._charged(cost, {root: None}, 1)
        children = node[child]["nodes"]
        start = _cursor_index(variables.get("after"))
        page = children[start : start + first]
        end = start + len(page)
        shaped = {k: v for k, v in node.items() if k not in ("variants", "lineItems")}
        shaped[child] = {
            "nodes": page,
            "pageInfo": {"hasNextPage": end < len(children), "endCursor": _cursor(end) if page else None},
        }
        return self._charged(cost, {root: shaped}, 3 + len(page))

    def _run_bulk(self, bulk_query: str, *, group_objects: bool = False) -> dict[str, Any]:
        running = [op for op in self._bulk.values() if op.status in ("CREATED", "RUNNING")]
        if len(running) >= 5:
            return {
                "data": {
                    "bulkOperationRunQuery": {
                        "bulkOperation": None,
                        "userErrors": [
                            {
                                "field": None,
                                "message": "A bulk query operation is already in progress.",
                                "code": "OPERATION_IN_PROGRESS",
                            }
                        ],
                    }
                }
            }
        op = BulkOperation(id=gid("BulkOperation", len(self._bulk) + 1), query=bulk_query, group_objects=group_objects)
        self._bulk[op.id] = op
        return {
            "data": {"bulkOperationRunQuery": {"bulkOperation": {"id": op.id, "status": op.status}, "userErrors": []}},
            "extensions": {
                "cost": {"requestedQueryCost": 10, "actualQueryCost": 10, "throttleStatus": self._take(0)[1]}
            },
        }

    def _poll_bulk(self, op_id: str, root_field: str = "node") -> dict[str, Any]:
        op = self._bulk.get(op_id)
        if op is None:
            return {"data": {root_field: None}}
        op.polls += 1
        if op.polls >= self.polls_until_complete:
            op.status = "COMPLETED"
            op.object_count = sum(1 + len(p["variants"]["nodes"]) for p in self.products)
        else:
            op.status = "RUNNING"
        url = (
            f"http://127.0.0.1:{self.port}/bulk/{op.id.rsplit('/', 1)[-1]}.jsonl" if op.status == "COMPLETED" else None
        )
        return {
            "data": {
                root_field: {
                    "id": op.id,
                    "status": op.status,
                    "errorCode": None,
                    "objectCount": str(op.object_count),
                    "rootObjectCount": str(len(self.products)) if op.status == "COMPLETED" else "0",
                    "fileSize": None,
                    "url": url,
                    "partialDataUrl": None,
                }
            },
            "extensions": {"cost": {"requestedQueryCost": 1, "actualQueryCost": 1, "throttleStatus": self._take(1)[1]}},
        }

    def bulk_lines(self, *, grouped: bool = True) -> Iterator[bytes]:
        """The JSONL result: grouped (each product row, then its variant rows) or, as Shopify's default since
        2026-01, ungrouped (every product row, then every variant row)."""
        if self.bulk_file_lines is not None:
            yield from self.bulk_file_lines
            return
        if not grouped:
            yield from self._ungrouped_bulk_lines()
            return
        for emitted, product in enumerate(self.products, start=1):
            row = {k: v for k, v in product.items() if k != "variants"}
            yield (json.dumps(row) + "\n").encode()
            for variant in product["variants"]["nodes"]:
                yield (json.dumps({**variant, "__parentId": product["id"]}) + "\n").encode()
            if self.truncate_bulk and emitted * 2 >= len(self.products):
                yield b'{"id": "gid://shopify/Product/9999999", "title": "cut o'
                return

    def _ungrouped_bulk_lines(self) -> Iterator[bytes]:
        for product in self.products:
            yield (json.dumps({k: v for k, v in product.items() if k != "variants"}) + "\n").encode()
        for emitted, product in enumerate(self.products, start=1):
            for variant in product["variants"]["nodes"]:
                yield (json.dumps({**variant, "__parentId": product["id"]}) + "\n").encode()
            if self.truncate_bulk and emitted * 2 >= len(self.products):
                yield b'{"id": "gid://shopify/ProductVariant/9999999", "title": "cut o'
                return

    def bulk_operation(self, number: str) -> BulkOperation | None:
        return self._bulk.get(gid("BulkOperation", int(number)))


def _literal(query: str, field_name: str, argument: str) -> str | None:
    match = re.search(rf"\b{field_name}\s*\(([^)]*)\)", query)
    if not match:
        return None
    arg = re.search(rf"\b{argument}\s*:\s*(\d+)", match.group(1))
    return arg.group(1) if arg else None


def _literal_string(query: str, field_name: str, argument: str) -> str | None:
    match = re.search(rf"\b{field_name}\s*\(([^)]*)\)", query)
    if not match:
        return None
    arg = re.search(rf'\b{argument}\s*:\s*"([^"]*)"', match.group(1))
    return arg.group(1) if arg else None


_SEARCH_TERM = re.compile(r"\b(updated_at|created_at):(>=|<=|>|<)'?([0-9T:.+\-Z]+)'?")
_SEARCH_FIELDS = {"updated_at": "updatedAt", "created_at": "createdAt"}


def _matches(node: dict[str, Any], search: str) -> bool:
    """Whether a node passes the `updated_at:>'…'` / `created_at:>='…'` terms of a search query (AND-ed)."""
    for name, operator, value in _SEARCH_TERM.findall(search):
        raw = node.get(_SEARCH_FIELDS[name])
        if not raw:
            return False
        left = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        right = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if right.tzinfo is None:
            right = right.replace(tzinfo=left.tzinfo)
        if not {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[operator]:
            return False
    return True


def _inline_bulk_query(query: str) -> str:
    match = re.search(r'query\s*:\s*"""(.*?)"""', query, re.S)
    return match.group(1) if match else ""


def _cursor(index: int) -> str:
    return f"cursor:{index}"


def _cursor_index(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        return int(str(cursor).split(":", 1)[1])
    except (IndexError, ValueError):
        return 0


def _shape(node: dict[str, Any], nested_first: int) -> dict[str, Any]:
    shaped = dict(node)
    for key in ("variants", "lineItems"):
        if key in shaped:
            children = shaped[key]["nodes"]
            shaped[key] = {
                "nodes": children[:nested_first],
                "pageInfo": {"hasNextPage": len(children) > nested_first, "endCursor": _cursor(nested_first)},
            }
    return shaped


def _error(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def _json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> FakeResponse:
    return FakeResponse(status, body, "application/json", headers or {})


def _chunks(lines: Iterable[bytes]) -> Iterator[bytes]:
    """Lines joined into HTTP chunks of about 64 KiB, cut anywhere (as a storage bucket would)."""
    pending = bytearray()
    for line in lines:
        pending += line
        if len(pending) >= 64 * 1024:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


class FakeShopifyAdminServer(FakeServer):
    """Runs a FakeShopifyAdmin on 127.0.0.1 in a background thread; `with` gives the state."""

    def __init__(self, state: FakeShopifyAdmin | None = None) -> None:
        self.state = state or FakeShopifyAdmin()
        super().__init__(self.state.handle, name="fake-shopify-admin")
        self.state.port = self.port
        self._server = self.httpd  # the socketserver, as bench/sync_bench.py counts its connections

    def __enter__(self) -> FakeShopifyAdmin:  # type: ignore[override]
        self.start()
        return self.state


@pytest.fixture
def fake_shopify_admin(settings: Any) -> Iterator[FakeShopifyAdmin]:
    """A running fake Admin API; SHOPIFY_ADMIN_URL_TEMPLATE points at it for the test."""
    with FakeShopifyAdminServer() as state:
        settings.SHOPIFY_ADMIN_URL_TEMPLATE = state.base_url_template
        yield state


ProductMaker = Callable[..., dict[str, Any]]
