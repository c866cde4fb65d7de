"""Property tests of the platform mappers: Shopify webhooks (REST JSON), Shopify GraphQL pages, WooCommerce REST bodies.

Hypothesis, derandomized (the same cases every run). Each mapper gets structured-but-odd records: every field may
be missing, of the wrong type, huge, empty, or text with any character. The properties:
- a mapper never raises anything but its documented error (per record a SkippedRecord; for a whole page a
  merchants.exceptions.MerchantError: PlatformRejected or PlatformUnavailable);
- what a mapper accepts is stored by the upsert services without a database error, and reads back as the payload
  said (text cut to the column as catalog_sync.text.clip documents).
Run on PostgreSQL too (DATABASE_URL): SQLite accepts over-long text and NUL characters that PostgreSQL refuses.
"""

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bitrecs_site.json_intake import normalise_json
from catalog_sync.clients import SkippedRecord
from catalog_sync.clients.shopify import ShopifyAdminClient
from catalog_sync.clients.shopify.webhooks import deleted_product_id, order_lines_from_webhook, product_from_webhook
from catalog_sync.clients.woocommerce import WooCommerceCatalog, WooCommerceDeleted
from catalog_sync.models import EXTERNAL_ID_MAX_LENGTH, SKU_MAX_LENGTH, TITLE_MAX_LENGTH, OrderLine, Product
from catalog_sync.services.catalog import clamp_integer, upsert_order_lines, upsert_products
from catalog_sync.text import clip
from catalog_sync.types import OrderLinePayload, ProductPayload
from merchants.clients.woocommerce import WooCommerceClient
from merchants.exceptions import MerchantError
from merchants.models import Store
from merchants.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Scalars a platform (or something pretending to be one) may put in any field.
any_text = st.text(st.characters(codec="utf-8"), max_size=8)
long_text = st.integers(min_value=250, max_value=2100).map(lambda n: "x" * n)
odd_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
    long_text,
    st.sampled_from(["", " ", "0", "-1", "12.50", "1e3", "N/A", "gid://shopify/Product/7", "2026-11-03T08:30:00Z"]),
)
odd_value = st.one_of(odd_scalar, st.lists(odd_scalar, max_size=3), st.dictionaries(any_text, odd_scalar, max_size=3))


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The valid shape four times in five, otherwise any odd value: records get deep enough to be stored."""
    return st.integers(min_value=0, max_value=4).flatmap(lambda n: valid if n else odd_value)


ids = mostly(st.integers(min_value=1, max_value=2**63) | st.integers(min_value=1, max_value=10**6).map(str))
titles = mostly(st.just("Merino Sweater") | st.text(st.characters(codec="utf-8"), min_size=1, max_size=20))
prices = mostly(st.decimals(min_value=0, max_value=10**9, places=2).map(str))
BOUNDARY_INTEGERS = [0, 1, -1, 2**31 - 1, 2**31, -(2**31) - 1, 2**40, 2**63, 10**30]
quantities = mostly(st.sampled_from(BOUNDARY_INTEGERS) | st.integers(min_value=-5, max_value=2**40))
times = mostly(st.sampled_from(["2026-11-03T08:30:00Z", "2026-11-03T08:30:00", "2026-11-03T08:30:00+05:30"]))


def record(
    fields: dict[str, st.SearchStrategy[Any]], *, always: tuple[str, ...] = ()
) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object with the `always` fields and any subset of the others, plus maybe an unknown one."""
    optional = {name: value for name, value in fields.items() if name not in always}
    return st.fixed_dictionaries(
        {name: fields[name] for name in always}, optional={**optional, "unexpected": odd_value}
    )


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run one example in a savepoint that is undone afterwards: examples do not see each other's rows."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@pytest.fixture
def store() -> Store:
    return StoreFactory.create()


def intake(body: Any) -> Any:
    """What the webhook intake stores and routes: the JSON normaliser's value (bitrecs_site.json_intake)."""
    return normalise_json(body)


def ids_fit(payload: ProductPayload | OrderLinePayload) -> bool:
    """Whether every id of the payload fits its column (EXTERNAL_ID_MAX_LENGTH); see the xfail tests below."""
    if isinstance(payload, OrderLinePayload):
        values = [payload.order_id, payload.line_id, payload.product_external_id, payload.variant_external_id]
    else:
        values = [payload.external_id, *(variant.external_id for variant in payload.variants or ())]
    return all(len(value) <= EXTERNAL_ID_MAX_LENGTH for value in values)


def assert_products_stored(store: Store, payloads: list[ProductPayload]) -> None:
    payloads = [payload for payload in payloads if ids_fit(payload)]
    upsert_products(store=store, payloads=payloads)
    last = {payload.external_id: payload for payload in payloads}
    rows = {row.external_id: row for row in Product.objects.filter(store=store, external_id__in=list(last))}
    assert set(rows) == set(last)
    for external_id, payload in last.items():
        row = rows[external_id]
        assert row.inventory == (None if payload.inventory is None else clamp_integer(payload.inventory))
        assert row.title == clip(payload.title, TITLE_MAX_LENGTH)
        assert row.sku == clip(payload.sku, SKU_MAX_LENGTH)
        assert row.price == payload.price
        assert row.compare_at_price == payload.compare_at_price
        assert row.tags == list(payload.tags)
        assert row.description == payload.description
        if payload.variants is not None:
            assert sorted(row.variants.values_list("external_id", flat=True)) == sorted(
                {variant.external_id for variant in payload.variants}
            )


def assert_order_lines_stored(store: Store, payloads: list[OrderLinePayload]) -> None:
    payloads = [payload for payload in payloads if ids_fit(payload)]
    upsert_order_lines(store=store, payloads=payloads)
    last = {(payload.order_id, payload.line_id): payload for payload in payloads}
    rows = {(row.order_id, row.line_id): row for row in OrderLine.objects.filter(store=store)}
    assert set(rows) == set(last)
    for key, payload in last.items():
        assert rows[key].quantity == clamp_integer(payload.quantity, low=0)
        assert rows[key].price == payload.price
        assert rows[key].sku == clip(payload.sku, SKU_MAX_LENGTH)


# Shopify webhooks (REST representation).

shopify_rest_variant = record(
    {
        "id": ids,
        "sku": odd_value,
        "title": odd_value,
        "price": prices,
        "compare_at_price": prices,
        "inventory_quantity": quantities,
        "inventory_policy": mostly(st.sampled_from(["deny", "continue"])),
        "position": quantities,
        "option1": odd_value,
        "option2": odd_value,
    },
    always=("id", "inventory_quantity", "price", "sku"),
)
shopify_rest_product = record(
    {
        "id": ids,
        "title": titles,
        "body_html": st.one_of(st.just("<p>Warm &amp; <b>soft</b></p>"), odd_value),
        "handle": odd_value,
        "vendor": odd_value,
        "product_type": odd_value,
        "status": mostly(st.sampled_from(["active", "draft", "archived", "ACTIVE"])),
        "tags": odd_value,
        "published_at": times,
        "updated_at": times,
        "category": mostly(record({"full_name": odd_value})),
        "image": mostly(record({"src": odd_value})),
        "images": mostly(st.lists(record({"src": odd_value}), max_size=2)),
        "options": mostly(st.lists(record({"name": odd_value, "values": odd_value}), max_size=2)),
        "variants": mostly(st.lists(shopify_rest_variant, max_size=3)),
    },
    always=("id", "title", "variants"),
)
shopify_rest_line = record(
    {
        "id": ids,
        "quantity": quantities,
        "price": prices,
        "sku": odd_value,
        "product_id": ids,
        "variant_id": ids,
        "properties": st.lists(record({"name": st.just("_bitrecs_rec_id") | odd_value, "value": odd_value}))
        | odd_value,
    },
    always=("id", "quantity", "price", "sku"),
)
shopify_rest_order = record(
    {"id": ids, "created_at": times, "currency": odd_value, "line_items": st.lists(shopify_rest_line, max_size=3)},
    always=("id", "created_at", "line_items"),
)


@PROPERTY
@given(body=shopify_rest_product)
def test_shopify_product_webhook_maps_to_a_payload_or_a_skip_and_a_payload_is_stored_as_mapped(store, body):
    with rolled_back():
        result = product_from_webhook(intake(body))
        assert isinstance(result, ProductPayload | SkippedRecord)
        if isinstance(result, ProductPayload):
            assert_products_stored(store, [result])
        assert isinstance(deleted_product_id(intake(body)), str)


@PROPERTY
@given(body=shopify_rest_order)
def test_shopify_order_webhook_maps_to_lines_and_skips_and_the_lines_are_stored_as_mapped(store, body):
    with rolled_back():
        lines, skipped = order_lines_from_webhook(intake(body))
        assert all(isinstance(line, OrderLinePayload) for line in lines)
        assert all(isinstance(skip, SkippedRecord) for skip in skipped)
        assert_order_lines_stored(store, lines)


# Shopify GraphQL Admin API pages, through ShopifyAdminClient with a canned HTTP answer.

gid = mostly(st.integers(min_value=1, max_value=10**6).map(lambda n: f"gid://shopify/Product/{n}"))
graphql_variant = record(
    {
        "id": gid,
        "sku": odd_value,
        "title": odd_value,
        "price": prices,
        "compareAtPrice": prices,
        "availableForSale": odd_value,
        "inventoryQuantity": quantities,
        "position": quantities,
        "selectedOptions": mostly(st.lists(record({"name": odd_value, "value": odd_value}), max_size=2)),
    },
    always=("id", "inventoryQuantity", "price", "position"),
)
graphql_product = record(
    {
        "id": gid,
        "title": titles,
        "handle": odd_value,
        "descriptionHtml": odd_value,
        "vendor": odd_value,
        "productType": odd_value,
        "status": odd_value,
        "onlineStoreUrl": odd_value,
        "totalInventory": quantities,
        "updatedAt": times,
        "tags": mostly(st.lists(any_text, max_size=3)),
        "category": mostly(record({"fullName": odd_value})),
        "featuredMedia": odd_value,
        "variants": mostly(st.fixed_dictionaries({"nodes": st.lists(graphql_variant, max_size=3)}) | st.none()),
    },
    always=("id", "title", "totalInventory", "variants"),
)
graphql_line = record(
    {
        "id": gid,
        "sku": odd_value,
        "quantity": quantities,
        "product": mostly(record({"id": gid})),
        "variant": mostly(record({"id": gid})),
        "originalUnitPriceSet": record({"shopMoney": record({"amount": prices, "currencyCode": odd_value})}),
        "customAttributes": odd_value,
    },
    always=("id", "quantity", "sku"),
)
graphql_order = record(
    {"id": gid, "createdAt": times, "lineItems": st.fixed_dictionaries({"nodes": st.lists(graphql_line, max_size=3)})},
    always=("id", "createdAt", "lineItems"),
)


class CannedSession(requests.Session):
    """Answers every POST with one JSON body: the HTTP boundary of ShopifyAdminClient."""

    def __init__(self, body: Any) -> None:
        super().__init__()
        self.body = body

    def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response._content = _dumps(self.body)
        response.headers["Content-Type"] = "application/json"
        return response


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def shopify_client(body: Any) -> ShopifyAdminClient:
    return ShopifyAdminClient("fuzz.myshopify.com", "token", session=CannedSession(body), sleep=lambda _: None)


def page_or_error(call: Callable[[], Any]) -> Any:
    try:
        page = call()
    except MerchantError as exc:
        event(f"refused: {type(exc).__name__}")
        assert exc.message
        return None
    event(f"page: {'some' if page.items else 'no'} items, {'some' if page.skipped else 'no'} skipped")
    return page


@PROPERTY
@given(nodes=st.lists(graphql_product, max_size=3), currency=st.just("USD") | odd_value)
def test_a_shopify_products_page_maps_or_fails_with_a_platform_error_and_its_items_are_stored(store, nodes, currency):
    client = shopify_client({"data": {"shop": {"currencyCode": currency}, "products": {"nodes": nodes}}})
    with rolled_back():
        page = page_or_error(lambda: client.products_page())
        if page is not None:
            assert len(page.items) + len(page.skipped) == len(nodes)
            assert_products_stored(store, list(page.items))


@PROPERTY
@given(nodes=st.lists(graphql_order, max_size=3))
def test_a_shopify_orders_page_maps_or_fails_with_a_platform_error_and_its_lines_are_stored(store, nodes):
    from datetime import UTC, datetime

    client = shopify_client({"data": {"orders": {"nodes": nodes}}})
    with rolled_back():
        page = page_or_error(lambda: client.orders_page(created_since=datetime(2026, 1, 1, tzinfo=UTC)))
        if page is not None:
            assert_order_lines_stored(store, list(page.items))


@PROPERTY
@given(body=odd_value)
def test_any_shopify_graphql_answer_body_gives_data_or_a_platform_error(body):
    client = shopify_client(body)
    assert page_or_error(lambda: client.products_page()) is None or isinstance(body, dict)


class BulkFileSession(CannedSession):
    """Also serves one bulk export file (JSONL bytes) to GET, streamed as requests streams it."""

    def __init__(self, body: Any, file: bytes) -> None:
        super().__init__(body)
        self.file = file

    def get(self, url: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response.raw = io.BytesIO(self.file)
        return response


def bulk_line(node: Any, parent: str | None) -> str:
    row = dict(node) if isinstance(node, dict) else {"id": node}
    if parent is not None:
        row["__parentId"] = parent
    return json.dumps(row)


@st.composite
def bulk_files(draw: st.DrawFn) -> bytes:
    lines = []
    for product in draw(st.lists(graphql_product, max_size=3)):
        variants = product.pop("variants", None)
        lines.append(bulk_line(product, None))
        nodes = variants.get("nodes", []) if isinstance(variants, dict) else []
        lines += [bulk_line(variant, str(product.get("id"))) for variant in nodes]
    text = "\n".join(lines)
    if draw(st.booleans()):  # a cut, a spliced line, a deep one
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "\n{", "\n\x00", "\n" + "[" * 10, '\n{"id": "x"}']))
    return text.encode()


@PROPERTY
@given(file=bulk_files(), grouped=st.booleans())
def test_a_shopify_bulk_file_maps_or_fails_with_a_platform_error_and_its_products_are_stored(store, file, grouped):
    session = BulkFileSession({"data": {"shop": {"currencyCode": "USD"}}}, file)
    client = ShopifyAdminClient("fuzz.myshopify.com", "token", session=session, sleep=lambda _: None)
    with rolled_back():
        try:
            results = list(client.iter_bulk_products("https://storage.test/bulk.jsonl", grouped=grouped))
        except MerchantError as exc:
            event(f"refused: {type(exc).__name__}")
            assert exc.message
            return
        assert all(isinstance(result, ProductPayload | SkippedRecord) for result in results)
        event(f"{'some' if any(isinstance(r, ProductPayload) for r in results) else 'no'} products")
        assert_products_stored(store, [result for result in results if isinstance(result, ProductPayload)])


def test_a_bulk_line_nested_past_the_decoder_limit_is_a_skipped_record():
    file = (
        b'{"id": "gid://shopify/Product/1", "title": "T"}\n' + b'{"id": "x", "a": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    )
    session = BulkFileSession({"data": {"shop": {"currencyCode": "USD"}}}, file)
    client = ShopifyAdminClient("fuzz.myshopify.com", "token", session=session, sleep=lambda _: None)
    results = list(client.iter_bulk_products("https://storage.test/bulk.jsonl"))
    # the unreadable line is reported, and the product before it is held back (that line may have been its variant)
    assert results == [
        SkippedRecord(external_id="", reason="malformed or truncated JSON line (line 2)"),
        SkippedRecord(
            external_id="1", reason="a variant row was unreadable (malformed or truncated JSON line (line 2))"
        ),
    ]


# WooCommerce REST bodies (what GET products/orders and the webhooks carry), mapped without HTTP.

woo_ids = mostly(st.integers(min_value=1, max_value=2**63))  # WooCommerce ids are JSON integers
woo_product = record(
    {
        "id": woo_ids,
        "name": titles,
        "type": mostly(st.sampled_from(["simple", "variable", "variation", "grouped"])),
        "parent_id": woo_ids,
        "status": mostly(st.sampled_from(["publish", "draft", "private"])),
        "catalog_visibility": mostly(st.sampled_from(["visible", "hidden"])),
        "sku": odd_value,
        "slug": odd_value,
        "permalink": odd_value,
        "description": odd_value,
        "short_description": odd_value,
        "price": prices,
        "regular_price": prices,
        "sale_price": prices,
        "stock_status": mostly(st.sampled_from(["instock", "outofstock", "onbackorder"])),
        "stock_quantity": quantities,
        "manage_stock": odd_value,
        "date_modified_gmt": times,
        "categories": mostly(st.lists(record({"id": woo_ids, "name": odd_value}), max_size=2)),
        "tags": mostly(st.lists(record({"name": odd_value}), max_size=2)),
        "images": mostly(st.lists(record({"src": odd_value}), max_size=2)),
        "attributes": mostly(st.lists(record({"name": odd_value, "options": odd_value, "option": odd_value}))),
        "brands": odd_value,
    },
    always=("id", "name", "type", "stock_quantity", "price"),
)
woo_line = record(
    {
        "id": woo_ids,
        "product_id": woo_ids,
        "variation_id": st.just(0) | woo_ids,
        "quantity": quantities,
        "price": prices,
        "total": prices,
        "sku": odd_value,
        "meta_data": mostly(st.lists(record({"key": st.just("_bitrecs_rec_id") | odd_value, "value": odd_value}))),
    },
    always=("id", "product_id", "quantity", "price"),
)
woo_order = record(
    {
        "id": woo_ids,
        "status": mostly(st.sampled_from(["processing", "completed", "pending"])),
        "currency": odd_value,
        "date_created_gmt": mostly(st.just("2026-11-03T08:30:00")),
        "line_items": mostly(st.lists(woo_line, max_size=3)),
    },
    always=("id", "status", "date_created_gmt", "line_items"),
)


@PROPERTY
@given(body=woo_product | odd_value, currency=st.just("EUR") | any_text)
def test_a_woocommerce_product_body_maps_to_a_payload_or_a_skip_and_a_payload_is_stored_as_mapped(
    store, body, currency
):
    with rolled_back():
        result = WooCommerceCatalog.payload_from_webhook("product", intake(body), currency=currency)
        assert isinstance(result, ProductPayload | SkippedRecord | WooCommerceDeleted)
        if isinstance(result, ProductPayload):
            assert_products_stored(store, [result])


@PROPERTY
@given(body=woo_order | odd_value)
def test_a_woocommerce_order_body_maps_to_lines_or_a_skip_and_the_lines_are_stored_as_mapped(store, body):
    with rolled_back():
        result = WooCommerceCatalog.payload_from_webhook("order", intake(body))
        assert isinstance(result, list | SkippedRecord | WooCommerceDeleted)
        if isinstance(result, list):
            assert all(isinstance(line, OrderLinePayload) for line in result)
            assert_order_lines_stored(store, result)


# WooCommerce REST pages, through WooCommerceClient with canned HTTP answers (the `woocommerce` package's request).


@pytest.fixture
def woo_http(monkeypatch, settings):
    """Answers every REST call from `answers` by endpoint suffix: (status, headers, JSON body)."""
    settings.PLATFORM_ALLOW_PRIVATE_HOSTS = True  # no DNS: the host is never called
    answers: dict[str, tuple[int, dict[str, str], Any]] = {}

    def request(*, method: str, url: str, **kwargs: Any) -> requests.Response:
        path = url.split("?")[0]
        status, headers, body = next(
            (answer for suffix, answer in answers.items() if path.endswith(suffix)), (404, {}, {"code": "none"})
        )
        response = requests.Response()
        response.status_code = status
        response._content = _dumps(body)
        response.headers.update({"Content-Type": "application/json", **headers})
        return response

    monkeypatch.setattr("woocommerce.api.request", request)
    return answers


def woo_catalog() -> WooCommerceCatalog:
    client = WooCommerceClient(store_url="https://woo.example", consumer_key="ck_x", consumer_secret="cs_x")
    return WooCommerceCatalog(client, variation_workers=1)


page_headers = st.fixed_dictionaries(
    {},
    optional={
        "X-WP-Total": st.sampled_from(["1", "x", "-1"]),
        "X-WP-TotalPages": st.sampled_from(["1", "2", "", "1e9"]),
    },
)


@PROPERTY
@given(
    nodes=mostly(st.lists(woo_product, max_size=3)),
    variations=mostly(st.lists(woo_product, max_size=2)),
    headers=page_headers,
    status=st.sampled_from([200] * 8 + [301, 401, 404, 429, 500]),
)
def test_a_woocommerce_products_page_maps_or_fails_with_a_platform_error_and_its_items_are_stored(
    store, woo_http, nodes, variations, headers, status
):
    woo_http.clear()
    woo_http.update(
        {
            "/products": (status, headers, nodes),
            "/variations": (200, {}, variations),
            "/data/currencies/current": (200, {}, {"code": "EUR"}),
            "/products/categories": (200, {}, []),
        }
    )
    with rolled_back():
        page = page_or_error(lambda: woo_catalog().products_page(page=1))
        if page is not None:
            assert_products_stored(store, list(page.items))


@PROPERTY
@given(nodes=mostly(st.lists(woo_order, max_size=3)), headers=page_headers)
def test_a_woocommerce_orders_page_maps_or_fails_with_a_platform_error_and_its_lines_are_stored(
    store, woo_http, nodes, headers
):
    woo_http.clear()
    woo_http["/orders"] = (200, headers, nodes)
    with rolled_back():
        page = page_or_error(lambda: woo_catalog().orders_page(page=1))
        if page is not None:
            assert_order_lines_stored(store, list(page.items))


def test_counts_beyond_an_integer_column_are_stored_at_its_ends(store):
    # given: what a hostile or broken platform may send as stock, position and quantity
    product = product_from_webhook(
        {"id": 1, "title": "T", "variants": [{"id": 2, "inventory_quantity": 2**40, "position": 2**40}]}
    )
    assert isinstance(product, ProductPayload)
    lines, _ = order_lines_from_webhook(
        {"id": 9, "created_at": "2026-11-03T08:30:00Z", "line_items": [{"id": 3, "quantity": 10**30}]}
    )

    # when
    upsert_products(store=store, payloads=[product])
    upsert_order_lines(store=store, payloads=lines)

    # then
    stored = Product.objects.get(store=store, external_id="1")
    assert (stored.inventory, stored.variants.get().inventory, stored.variants.get().position) == (
        2**31 - 1,
        2**31 - 1,
        2**31 - 1,
    )
    assert OrderLine.objects.get(store=store).quantity == 2**31 - 1


# An id longer than EXTERNAL_ID_MAX_LENGTH (255) is refused where its payload is made (catalog_sync.types): the
# record is skipped, instead of the whole batch failing on PostgreSQL (varchar(255)).
long_id = st.integers(min_value=256, max_value=400).map(lambda n: "9" * n)


@PROPERTY
@given(product_id=long_id | st.just("7"), variant_id=long_id)
def test_a_shopify_webhook_product_with_an_over_long_id_is_skipped(product_id, variant_id):
    result = product_from_webhook({"id": product_id, "title": "T", "variants": [{"id": variant_id}]})
    assert isinstance(result, SkippedRecord)


@PROPERTY
@given(product_id=long_id)
def test_a_shopify_graphql_product_with_an_over_long_id_is_skipped(product_id):
    node = {"id": f"gid://shopify/Product/{product_id}", "title": "T", "variants": {"nodes": []}}
    page = shopify_client({"data": {"shop": {"currencyCode": "USD"}, "products": {"nodes": [node]}}}).products_page()
    assert (page.items, len(page.skipped)) == ((), 1)


@PROPERTY
@given(product_id=long_id)
def test_a_woocommerce_product_with_an_over_long_id_is_skipped(product_id):
    body = {"id": int(product_id), "name": "T", "type": "simple"}
    result = WooCommerceCatalog.payload_from_webhook("product", body)
    assert isinstance(result, SkippedRecord)
