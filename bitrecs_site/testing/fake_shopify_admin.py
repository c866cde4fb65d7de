"""A local server that speaks Shopify's GraphQL Admin API, for sync tests and benchmarks.

It serves `POST /{shop}/admin/api/{version}/graphql.json` (point SHOPIFY_ADMIN_URL_TEMPLATE at
`http://127.0.0.1:{port}/{shop}`) with what a sync needs:

- `products` and `orders` connections with cursor pagination (`first`/`after`, `pageInfo`), answered in
  Shopify's JSON shape, with `extensions.cost` and a leaky bucket (`throttleStatus`) that answers
  `THROTTLED` when the bucket is empty, and `MAX_COST_EXCEEDED` for a query over 1,000 points;
- bulk operations: `bulkOperationRunQuery` (products with their variants), polling with `node(id:)`,
  and the JSONL result (`__parentId` on child rows) streamed from `/bulk/{id}.jsonl`;
- fault injection: the next N answers can be an HTTP status (401, 429 with Retry-After, 500…),
  a THROTTLED error, or a truncated JSONL file.

Operations are recognised by their root field, as Shopify's resolver would; variables are honoured.
The catalog is a list of product nodes (dicts in the Admin API's shape), made by `make_product`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

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
) -> dict[str, Any]:
    """A product node as the Admin API returns it, with `variants` variants."""
    handle = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or f"product-{number}"
    variant_nodes = [
        {
            "id": gid("ProductVariant", number * 1000 + index),
            "sku": f"{sku_prefix}-{number}-{index}",
            "title": "Default Title" if variants == 1 else f"Option {index}",
            "price": str(price),
            "compareAtPrice": compare_at_price,
            "inventoryQuantity": inventory,
            "availableForSale": inventory > 0,
            "selectedOptions": [{"name": "Title", "value": "Default Title" if variants == 1 else f"Option {index}"}],
        }
        for index in range(1, variants + 1)
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
    faults: list[Any] = field(default_factory=list)
    truncate_bulk: bool = False
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

    # -- the leaky bucket -------------------------------------------------------------------------

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
            return 200, self._run_bulk(variables.get("query") or _inline_bulk_query(query))
        if re.search(r"\bnode\s*\(", query) and "BulkOperation" in query:
            return 200, self._poll_bulk(str(variables.get("id", "")))
        root = "orders" if re.search(r"\borders\s*\(", query) else "products"
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
        ok, throttle = self._take(cost)
        if not ok:
            return 200, {
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                "extensions": {
                    "cost": {"requestedQueryCost": cost, "actualQueryCost": None, "throttleStatus": throttle}
                },
            }
        items = self.orders if root == "orders" else self.products
        start = _cursor_index(variables.get("after"))
        page = items[start : start + first]
        nodes = [_shape(node, nested) for node in page]
        end = start + len(page)
        data = {
            root: {
                "nodes": nodes,
                "pageInfo": {"hasNextPage": end < len(items), "endCursor": _cursor(end) if page else None},
            }
        }
        actual = 2 + len(page) * (1 + nested)
        return 200, {
            "data": data,
            "extensions": {"cost": {"requestedQueryCost": cost, "actualQueryCost": actual, "throttleStatus": throttle}},
        }

    def _run_bulk(self, bulk_query: str) -> dict[str, Any]:
        running = [op for op in self._bulk.values() if op.status in ("CREATED", "RUNNING")]
        if len(running) >= 5:
            return {
                "data": {
                    "bulkOperationRunQuery": {
                        "bulkOperation": None,
                        "userErrors": [{"field": None, "message": "A bulk query operation is already in progress."}],
                    }
                }
            }
        op = BulkOperation(id=gid("BulkOperation", len(self._bulk) + 1), query=bulk_query)
        self._bulk[op.id] = op
        return {
            "data": {"bulkOperationRunQuery": {"bulkOperation": {"id": op.id, "status": op.status}, "userErrors": []}},
            "extensions": {
                "cost": {"requestedQueryCost": 10, "actualQueryCost": 10, "throttleStatus": self._take(0)[1]}
            },
        }

    def _poll_bulk(self, op_id: str) -> dict[str, Any]:
        op = self._bulk.get(op_id)
        if op is None:
            return {"data": {"node": None}}
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
                "node": {
                    "id": op.id,
                    "status": op.status,
                    "errorCode": None,
                    "objectCount": str(op.object_count),
                    "fileSize": None,
                    "url": url,
                    "partialDataUrl": None,
                }
            }
        }

    def bulk_lines(self) -> Iterator[bytes]:
        """The JSONL result, grouped: each product row followed by its variant rows (groupObjects: true)."""
        for emitted, product in enumerate(self.products, start=1):
            row = {k: v for k, v in product.items() if k != "variants"}
            yield (json.dumps(row) + "\n").encode()
            for variant in product["variants"]["nodes"]:
                yield (json.dumps({**variant, "__parentId": product["id"]}) + "\n").encode()
            if self.truncate_bulk and emitted * 2 >= len(self.products):
                yield b'{"id": "gid://shopify/Product/9999999", "title": "cut o'
                return


def _literal(query: str, field_name: str, argument: str) -> str | None:
    match = re.search(rf"\b{field_name}\s*\(([^)]*)\)", query)
    if not match:
        return None
    arg = re.search(rf"\b{argument}\s*:\s*(\d+)", match.group(1))
    return arg.group(1) if arg else None


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


def _handler_for(state: FakeShopifyAdmin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _fault(self) -> bool:
            if not state.faults:
                return False
            fault = state.faults.pop(0)
            if fault == "THROTTLED":
                body = _error("Throttled", "THROTTLED")
                body["extensions"] = {"cost": {"requestedQueryCost": 50, "throttleStatus": state._take(0)[1]}}
                self._send(200, json.dumps(body).encode())
            elif fault == 429:
                self._send(429, b'{"errors":"Exceeded 2 calls per second for api client."}', Retry_After="1.0")
            else:
                self._send(int(fault), json.dumps({"errors": f"fault {fault}"}).encode())
            return True

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            match = re.fullmatch(r"/([^/]+)/admin/api/([^/]+)/graphql\.json", self.path)
            if not match:
                self._send(404, b'{"errors":"Not Found"}')
                return
            state.requests.append(
                {"shop": match.group(1), "version": match.group(2), "body": raw, "headers": dict(self.headers)}
            )
            if self.headers.get("X-Shopify-Access-Token") != state.access_token:
                self._send(
                    401,
                    b'{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}',
                )
                return
            if self._fault():
                return
            try:
                payload = json.loads(raw)
            except ValueError:
                self._send(400, b'{"errors":{"query":"Required parameter missing or invalid"}}')
                return
            status, body = state.graphql(payload.get("query", ""), payload.get("variables") or {})
            self._send(status, json.dumps(body).encode())

        def do_GET(self) -> None:
            match = re.fullmatch(r"/bulk/(\d+)\.jsonl", self.path)
            if not match:
                self._send(404, b"Not Found", "text/plain")
                return
            state.requests.append({"bulk_download": match.group(1)})
            self.send_response(200)
            self.send_header("Content-Type", "application/jsonl")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in state.bulk_lines():
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")

    return Handler


class FakeShopifyAdminServer:
    """Runs a FakeShopifyAdmin on 127.0.0.1 in a background thread."""

    def __init__(self, state: FakeShopifyAdmin | None = None) -> None:
        self.state = state or FakeShopifyAdmin()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self.state))
        self._server.daemon_threads = True
        self.state.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeShopifyAdmin:
        self._thread.start()
        return self.state

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fake_shopify_admin(settings: Any) -> Iterator[FakeShopifyAdmin]:
    """A running fake Admin API; SHOPIFY_ADMIN_URL_TEMPLATE points at it for the test."""
    with FakeShopifyAdminServer() as state:
        settings.SHOPIFY_ADMIN_URL_TEMPLATE = state.base_url_template
        yield state


ProductMaker = Callable[..., dict[str, Any]]
