"""The fake store's wc/v3 REST API: routes, WordPress paging and headers, and the faults a test injects."""

import fnmatch
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bitrecs_site.testing.fake_server import FakeRequest
from bitrecs_site.testing.fake_woocommerce.auth import StoreAuth
from bitrecs_site.testing.fake_woocommerce.bulk import RowChain
from bitrecs_site.testing.fake_woocommerce.wire import WC_VERSION, WP_VERSION, Filters, route_name, wc_error

_PRODUCT_ROUTE = re.compile(r"products/(\d+)")
_VARIATIONS_ROUTE = re.compile(r"products/(\d+)/variations")


@dataclass
class _Failure:
    status: int
    retry_after: str | None = None
    code: str = "fake_failure"


@dataclass
class _Fault:
    """A one-off answer for the next calls to a route: an error status, or a raw (non-JSON) body."""

    status: int
    retry_after: str | None = None
    route: str | None = None
    remaining: int = 1
    raw_body: bytes | None = None


@dataclass(frozen=True)
class RawBody:
    """A body sent as-is (e.g. a cut-off JSON page), still labelled application/json."""

    content: bytes


class StoreRest(StoreAuth):
    """The wc/v3 routes a sync reads, with paging, filters and injected faults."""

    def __init__(self, *, require_https_callback: bool = True, tls: bool = False) -> None:
        super().__init__(require_https_callback=require_https_callback, tls=tls)
        self.route_counts: Counter[str] = Counter()
        self.failure: _Failure | None = None
        self.delay_seconds = 0.0
        self._faults: list[_Fault] = []
        self._views: dict[tuple[Any, ...], Sequence[Any]] = {}

    def fail_with(self, status: int, *, retry_after: str | None = None) -> None:
        """Answer every REST call with this status (e.g. 500, 503, 429), until `recover()`."""
        self.failure = _Failure(status=status, retry_after=retry_after)

    def recover(self) -> None:
        self.failure = None

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

    def _rest(self, request: FakeRequest, route: str, query: dict[str, str]) -> tuple[int, Any, dict]:
        with self._lock:
            self.route_counts[route_name(route)] += 1
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        failure = self.failure
        if failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return failure.status, wc_error(failure.code, "The fake store was told to fail.", failure.status), headers
        fault = self._take_fault(route)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            if fault.raw_body is not None:
                return fault.status, RawBody(fault.raw_body), headers
            return fault.status, wc_error("fake_failure", "The fake store was told to fail.", fault.status), headers
        endpoint = self._route(route) if request.method == "GET" else None
        if endpoint is None:
            return 404, wc_error("rest_no_route", "No route was found matching the URL and request method.", 404), {}
        view, collection = endpoint
        key, error = self._authenticate(request, query)
        if error is not None:
            return 401, error, {}
        if key is None:
            message = "Sorry, you cannot list resources." if collection else "Sorry, you cannot view this resource."
            return 401, wc_error("woocommerce_rest_cannot_view", message, 401), {}
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
            return 404, wc_error("woocommerce_rest_product_invalid_id", "Invalid ID.", 404), {}
        return 200, product, {}

    def _list(
        self, route: str, query: dict[str, str], build: Callable[["Filters"], Sequence[Any]]
    ) -> tuple[int, Any, dict]:
        """One page of a collection with WordPress's paging rules, headers and errors; `build` gives the rows."""
        try:
            per_page = int(query.get("per_page", "10"))
            page = int(query.get("page", "1"))
        except ValueError:
            per_page, page = 0, 0
        if not 1 <= per_page <= 100 or page < 1:
            bad = "per_page" if not 1 <= per_page <= 100 else "page"
            body = wc_error("rest_invalid_param", f"Invalid parameter(s): {bad}", 400)
            body["data"]["params"] = {bad: f"{bad} must be between 1 (inclusive) and 100 (inclusive)"}
            return 400, body, {}
        try:
            filters = Filters.from_query(query)
        except ValueError as exc:
            body = wc_error("rest_invalid_param", f"Invalid parameter(s): {exc}", 400)
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

    def _product_view(self, filters: "Filters") -> Sequence[Any]:
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
            rows = RowChain([explicit[:cut], bulk_rows, explicit[cut:]]) if explicit else bulk_rows
        with self._lock:
            if len(self._views) > 32:
                self._views.clear()
            self._views[key] = rows
        return rows

    def _order_view(self, filters: "Filters") -> Sequence[Any]:
        key = ("orders", filters, self._version, len(self.orders))
        with self._lock:
            cached = self._views.get(key)
        if cached is not None:
            return cached
        rows = [order for order in self.orders if filters.matches(order, hidden=frozenset({"trash", "checkout-draft"}))]
        with self._lock:
            self._views[key] = rows
        return rows
