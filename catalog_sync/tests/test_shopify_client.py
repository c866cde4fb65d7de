"""ShopifyAdminClient against the local fake Admin API (bitrecs_site.testing.fake_shopify_admin), over real HTTP."""

import json
import time
import tracemalloc
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bitrecs_site.testing.fake_shopify_admin import FakeShopifyAdmin, make_order, make_product
from catalog_sync.clients import PlatformUnauthorized, SkippedRecord
from catalog_sync.clients.shopify import (
    REC_ID_ATTRIBUTE,
    BulkFileNotGrouped,
    ShopifyAdminClient,
    ShopifyQueryRejected,
    products_page_size,
)
from catalog_sync.clients.shopify.pacing import CostBucket, cost_key
from catalog_sync.clients.shopify.queries import PRODUCTS_QUERY
from catalog_sync.types import OrderLinePayload, ProductPayload
from merchants.exceptions import PlatformRejected, PlatformUnavailable

SHOP = "demo-store.myshopify.com"


class RecordingSleep:
    """Records the client's sleeps; sleeps for real only when asked to (so the fake's bucket refills)."""

    def __init__(self, *, real: bool = False) -> None:
        self.calls: list[float] = []
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.real:
            time.sleep(seconds)


def make_client(state: FakeShopifyAdmin, **kwargs: Any) -> ShopifyAdminClient:
    kwargs.setdefault("sleep", RecordingSleep())
    return ShopifyAdminClient(SHOP, state.access_token, **kwargs)


def graphql_bodies(state: FakeShopifyAdmin) -> list[dict[str, Any]]:
    return [json.loads(request["body"]) for request in state.requests if "body" in request]


def sweater(number: int = 1) -> dict[str, Any]:
    return make_product(
        number,
        title="Merino Sweater",
        vendor="Woolly",
        product_type="Sweaters",
        category="Apparel & Accessories > Clothing > Sweaters",
        tags=["wool", "winter"],
        description_html="<p>Warm &amp; <b>soft</b> merino.</p><ul><li>Machine washable</li></ul>",
        price="49.90",
        compare_at_price="59.00",
        inventory=3,
        updated_at="2026-11-03T08:30:00Z",
        variant_options=[
            {"Size": "S", "Color": "Navy"},
            {"Size": "M", "Color": "Navy"},
            {"Size": "M", "Color": "Grey"},
        ],
    )


# -- products -----------------------------------------------------------------------------------------


def test_paging_through_products_yields_every_product_with_its_fields(fake_shopify_admin):
    fake_shopify_admin.products = [sweater(1)] + [make_product(n, title=f"Mug {n}") for n in range(2, 8)]
    client = make_client(fake_shopify_admin)

    pages = list(client.iter_products(page_size=3))

    assert [len(page.items) for page in pages] == [3, 3, 1]
    assert [page.next_cursor for page in pages] == ["cursor:3", "cursor:6", None]
    products = [product for page in pages for product in page.items]
    assert [product.external_id for product in products] == ["1", "2", "3", "4", "5", "6", "7"]
    assert all(page.skipped == () for page in pages)
    sample = products[0]
    assert sample.title == "Merino Sweater"
    assert sample.handle == "merino-sweater"
    assert sample.url == "https://example.myshopify.com/products/merino-sweater"
    assert sample.description == "Warm & soft merino. Machine washable"
    assert sample.vendor == "Woolly"
    assert sample.product_type == "Sweaters"
    assert sample.category_path == "Apparel & Accessories > Clothing > Sweaters"
    assert sample.tags == ("wool", "winter")
    assert sample.price == Decimal("49.90")
    assert sample.compare_at_price == Decimal("59.00")
    assert sample.currency == "USD"
    assert sample.image_url == "https://cdn.example.com/merino-sweater.jpg"
    assert sample.in_stock is True
    assert sample.inventory == 9
    assert sample.status == "active"
    assert sample.is_published is True
    assert sample.platform_updated_at == datetime(2026, 11, 3, 8, 30, tzinfo=UTC)
    assert sample.sku == "SKU-1-1"
    assert sample.options == ({"name": "Size", "values": ["S", "M"]}, {"name": "Color", "values": ["Navy", "Grey"]})
    assert sample.variants is not None
    assert [(v.external_id, v.sku, v.title, dict(v.options), v.price, v.position) for v in sample.variants] == [
        ("1001", "SKU-1-1", "S / Navy", {"Size": "S", "Color": "Navy"}, Decimal("49.90"), 1),
        ("1002", "SKU-1-2", "M / Navy", {"Size": "M", "Color": "Navy"}, Decimal("49.90"), 2),
        ("1003", "SKU-1-3", "M / Grey", {"Size": "M", "Color": "Grey"}, Decimal("49.90"), 3),
    ]
    assert all(v.inventory == 3 and v.in_stock and v.compare_at_price == Decimal("59.00") for v in sample.variants)
    # Shopify's default "Title: Default Title" option is not an option.
    assert products[1].options == ()
    assert dict(products[1].variants[0].options) == {}  # type: ignore[index]
    # Every request went to the pinned version with the shop's token.
    requests = [r for r in fake_shopify_admin.requests if "body" in r]
    assert {(r["shop"], r["version"]) for r in requests} == {(SHOP, "2026-10")}
    assert {r["headers"]["X-Shopify-Access-Token"] for r in requests} == {"shpat_fake_token"}


def test_page_size_is_lowered_so_the_query_cost_stays_under_1000(fake_shopify_admin):
    fake_shopify_admin.products = [make_product(n, title=f"Mug {n}") for n in range(1, 101)]
    client = make_client(fake_shopify_admin)

    page = client.products_page(page_size=250)

    assert len(page.items) == products_page_size(250) == 35
    assert page.throttle is not None
    assert page.throttle.requested_cost == 2 + 35 * 11


def test_draft_product_is_unpublished_and_lower_cased(fake_shopify_admin):
    fake_shopify_admin.products = [make_product(1, title="Draft", status="DRAFT", inventory=0)]

    (product,) = make_client(fake_shopify_admin).products_page().items

    assert (product.status, product.is_published, product.url, product.in_stock) == ("draft", False, "", False)


def test_product_with_more_variants_than_the_nested_page_gets_all_of_them(fake_shopify_admin):
    fake_shopify_admin.set_bucket(10_000.0, 1_000.0)
    fake_shopify_admin.products = [
        make_product(1, title="Few"),
        make_product(2, title="Many", variants=2000),
        make_product(3, title="Some", variants=25),
    ]
    client = make_client(fake_shopify_admin)

    page = client.products_page()

    few, many, some = page.items
    assert len(few.variants or ()) == 1
    assert [v.external_id for v in many.variants or ()] == [str(2000 + i) for i in range(1, 2001)]
    assert [v.external_id for v in some.variants or ()] == [str(3000 + i) for i in range(1, 26)]
    follow_ups = [b["variables"] for b in graphql_bodies(fake_shopify_admin) if "BitrecsProductVariants" in b["query"]]
    assert follow_ups == [
        *[{"id": "gid://shopify/Product/2", "first": 250, "after": f"cursor:{10 + 250 * i}"} for i in range(8)],
        {"id": "gid://shopify/Product/3", "first": 250, "after": "cursor:10"},
    ]


def test_updated_since_is_sent_in_the_search_query(fake_shopify_admin):
    fake_shopify_admin.products = [
        make_product(1, title="Old", updated_at="2026-10-01T00:00:00Z"),
        make_product(2, title="New", updated_at="2026-11-05T12:00:00Z"),
    ]
    client = make_client(fake_shopify_admin)

    page = client.products_page(updated_since=datetime(2026, 11, 2, 9, 15, tzinfo=UTC))

    assert [p.title for p in page.items] == ["New"]
    (variables,) = [b["variables"] for b in graphql_bodies(fake_shopify_admin) if "BitrecsProducts(" in b["query"]]
    assert variables == {"first": 35, "after": None, "query": "updated_at:>'2026-11-02T09:15:00Z'"}


def test_malformed_products_are_skipped_and_reported(fake_shopify_admin):
    bad_price = make_product(2, title="Bad price")
    bad_price["variants"]["nodes"][0]["price"] = "twelve"
    no_title = make_product(3, title="x")
    no_title["title"] = None
    bad_tags = make_product(4, title="Bad tags")
    bad_tags["tags"] = "a,b"
    no_id = make_product(5, title="No id")
    no_id["id"] = None
    no_id["legacyResourceId"] = None
    fake_shopify_admin.products = [make_product(1, title="Good"), bad_price, no_title, bad_tags, no_id]

    page = make_client(fake_shopify_admin).products_page()

    assert [p.external_id for p in page.items] == ["1"]
    assert page.skipped == (
        SkippedRecord("2", "variant price is not a number: 'twelve'"),
        SkippedRecord("3", "product has no title"),
        SkippedRecord("4", "tags are not a list of strings"),
        SkippedRecord("", "no usable id (None)"),
    )


# -- throttling and errors ----------------------------------------------------------------------------


def test_client_slows_down_before_the_bucket_runs_dry(fake_shopify_admin):
    fake_shopify_admin.set_bucket(250.0, 500.0)
    fake_shopify_admin.products = [make_product(n, title=f"Mug {n}") for n in range(1, 61)]
    sleep = RecordingSleep(real=True)
    client = make_client(fake_shopify_admin, sleep=sleep)

    products = [p for page in client.iter_products(page_size=20) for p in page.items]

    assert len(products) == 60
    assert len(sleep.calls) == 2
    assert all(0 < seconds < 0.5 for seconds in sleep.calls)
    assert fake_shopify_admin.throttled_answers == 0


def test_a_throttled_answer_is_retried_after_a_backoff(fake_shopify_admin):
    fake_shopify_admin.products = [make_product(1, title="Mug")]
    fake_shopify_admin.faults = ["THROTTLED", "THROTTLED"]
    sleep = RecordingSleep()
    client = make_client(fake_shopify_admin, sleep=sleep)

    page = client.products_page()

    assert [p.title for p in page.items] == ["Mug"]
    assert sleep.calls == [1.0, 1.0]


def test_throttled_answers_that_do_not_stop_become_platform_unavailable(fake_shopify_admin):
    fake_shopify_admin.faults = ["THROTTLED"] * 6

    with pytest.raises(PlatformUnavailable) as caught:
        make_client(fake_shopify_admin).shop_currency()

    assert caught.value.retry_after == 1.0
    assert fake_shopify_admin.faults == []


def test_a_wrong_token_raises_platform_unauthorized(fake_shopify_admin):
    client = ShopifyAdminClient(SHOP, "shpat_revoked")

    with pytest.raises(PlatformUnauthorized) as caught:
        client.products_page()

    assert "Invalid API key or access token" in caught.value.message
    assert isinstance(caught.value, PlatformRejected)


def test_403_raises_platform_unauthorized(fake_shopify_admin):
    fake_shopify_admin.faults = [403]

    with pytest.raises(PlatformUnauthorized):
        make_client(fake_shopify_admin).shop_currency()


def test_429_raises_platform_unavailable_with_retry_after(fake_shopify_admin):
    fake_shopify_admin.faults = [429]

    with pytest.raises(PlatformUnavailable) as caught:
        make_client(fake_shopify_admin).products_page()

    assert caught.value.retry_after == 1.0


def test_500_raises_platform_unavailable(fake_shopify_admin):
    fake_shopify_admin.faults = [500]

    with pytest.raises(PlatformUnavailable) as caught:
        make_client(fake_shopify_admin).products_page()

    assert caught.value.retry_after is None


def test_unreachable_shop_raises_platform_unavailable(fake_shopify_admin):
    client = make_client(fake_shopify_admin, url_template="http://127.0.0.1:9/{shop}", timeout=2)

    with pytest.raises(PlatformUnavailable, match="could not be reached"):
        client.shop_currency()


def test_max_cost_exceeded_raises_platform_rejected(fake_shopify_admin):
    query = "{ products(first: 250) { nodes { id variants(first: 50) { nodes { id } } } } }"

    with pytest.raises(ShopifyQueryRejected) as caught:
        make_client(fake_shopify_admin).graphql(query)

    assert isinstance(caught.value, PlatformRejected)
    assert caught.value.error_code == "MAX_COST_EXCEEDED"
    assert "Query cost is 12752" in caught.value.message


def test_shop_must_be_a_myshopify_domain(fake_shopify_admin):
    with pytest.raises(ValueError, match=r"myshopify\.com"):
        ShopifyAdminClient("evil.example/x?", "token")


# -- orders -------------------------------------------------------------------------------------------


def test_orders_map_to_lines_with_rec_id_and_no_customer_data(fake_shopify_admin):
    mug, tee = make_product(1, title="Mug", price="12.00"), make_product(2, title="Tee", price="20.50")
    many_lines = [(make_product(10 + n, title=f"P{n}"), 1) for n in range(7)]
    fake_shopify_admin.orders = [
        make_order(1, lines=[(mug, 2), (tee, 1)], created_at="2026-11-04T10:00:00Z", rec_id="rec-abc"),
        make_order(2, lines=[(tee, 3)], created_at="2026-08-01T10:00:00Z"),
        make_order(3, lines=many_lines, created_at="2026-11-05T10:00:00Z"),
    ]
    client = make_client(fake_shopify_admin)

    page = client.orders_page(created_since=datetime(2026, 9, 6, tzinfo=UTC))

    first, second = page.items[:2]
    assert first == OrderLinePayload(
        order_id="1",
        line_id="101",
        ordered_at=datetime(2026, 11, 4, 10, 0, tzinfo=UTC),
        product_external_id="1",
        variant_external_id="1001",
        sku="SKU-1-1",
        quantity=2,
        price=Decimal("12.00"),
        currency="USD",
        rec_id="rec-abc",
    )
    assert (second.line_id, second.product_external_id, second.quantity, second.price) == (
        "102",
        "2",
        1,
        Decimal("20.50"),
    )
    assert [line.line_id for line in page.items[2:]] == [str(300 + n) for n in range(1, 8)]
    assert page.next_cursor is None and page.skipped == ()
    (variables,) = [b["variables"] for b in graphql_bodies(fake_shopify_admin) if "BitrecsOrders" in b["query"]]
    assert variables["query"] == "created_at:>='2026-09-06T00:00:00Z'"
    assert REC_ID_ATTRIBUTE == "_bitrecs_rec_id"
    assert {f.name for f in fields(OrderLinePayload)} == {
        "order_id",
        "line_id",
        "ordered_at",
        "product_external_id",
        "variant_external_id",
        "sku",
        "quantity",
        "price",
        "currency",
        "rec_id",
        "customer_key",  # a per-store keyed hash of the customer id, never the id (issue 13)
    }
    assert "buyer" not in repr(page) and "Ann" not in repr(page)


# -- bulk ---------------------------------------------------------------------------------------------


def run_bulk(client: ShopifyAdminClient) -> str:
    op_id = client.start_bulk_products()
    for _ in range(10):
        status = client.bulk_status(op_id)
        if status.is_finished:
            break
    assert status.status == "COMPLETED"
    assert status.url is not None
    return status.url


def test_bulk_export_starts_polls_and_streams_products_with_variants(fake_shopify_admin):
    fake_shopify_admin.polls_until_complete = 3
    fake_shopify_admin.products = [sweater(1)] + [
        make_product(n, title=f"Mug {n}", variants=n % 3 + 1) for n in range(2, 13)
    ]
    client = make_client(fake_shopify_admin)

    op_id = client.start_bulk_products()
    statuses = [client.bulk_status(op_id) for _ in range(3)]
    results = list(client.iter_bulk_products(statuses[-1].url or ""))

    assert op_id == "gid://shopify/BulkOperation/1"
    assert [s.status for s in statuses] == ["RUNNING", "RUNNING", "COMPLETED"]
    assert statuses[0].url is None
    assert statuses[-1].object_count == 12 + 3 + sum(n % 3 + 1 for n in range(2, 13))
    assert all(isinstance(r, ProductPayload) for r in results)
    products = [r for r in results if isinstance(r, ProductPayload)]
    assert [p.external_id for p in products] == [str(n) for n in range(1, 13)]
    assert [len(p.variants or ()) for p in products[1:]] == [n % 3 + 1 for n in range(2, 13)]
    page_sweater = make_client(fake_shopify_admin).products_page().items[0]
    assert products[0] == page_sweater
    (mutation,) = [b for b in graphql_bodies(fake_shopify_admin) if "bulkOperationRunQuery" in b["query"]]
    assert mutation["variables"]["groupObjects"] is True
    assert "__parentId" not in mutation["variables"]["query"]
    (download,) = [r for r in fake_shopify_admin.requests if "bulk_download" in r]
    assert "X-Shopify-Access-Token" not in download["headers"]


def test_bulk_user_errors_raise_platform_rejected(fake_shopify_admin):
    fake_shopify_admin.polls_until_complete = 99
    client = make_client(fake_shopify_admin)
    for _ in range(5):
        client.start_bulk_products()

    with pytest.raises(PlatformRejected, match="already in progress"):
        client.start_bulk_products()


def test_truncated_bulk_file_yields_the_good_products_and_one_skipped_record(fake_shopify_admin):
    fake_shopify_admin.products = [make_product(n, title=f"Mug {n}", variants=2) for n in range(1, 11)]
    fake_shopify_admin.truncate_bulk = True
    client = make_client(fake_shopify_admin)

    results = list(client.iter_bulk_products(run_bulk(client)))

    products = [r for r in results if isinstance(r, ProductPayload)]
    skipped = [r for r in results if isinstance(r, SkippedRecord)]
    assert [p.external_id for p in products] == ["1", "2", "3", "4", "5"]
    assert all(len(p.variants or ()) == 2 for p in products)
    assert skipped == [SkippedRecord("9999999", "malformed or truncated JSON line (line 16)")]


def test_an_unreadable_variant_row_skips_its_product_too(fake_shopify_admin):
    fake_shopify_admin.products = [make_product(n, title=f"Mug {n}", variants=2) for n in range(1, 4)]
    client = make_client(fake_shopify_admin)
    url = run_bulk(client)
    lines = list(fake_shopify_admin.bulk_lines())
    lines[4] = lines[4][:60] + b"\n"  # product 2's first variant row, cut before its __parentId
    fake_shopify_admin.bulk_file_lines = lines

    results = list(client.iter_bulk_products(url))

    assert results[0] == make_client(fake_shopify_admin).products_page().items[0]
    assert results[1:3] == [
        SkippedRecord("2001", "malformed or truncated JSON line (line 5)"),
        SkippedRecord("2", "a variant row was unreadable (malformed or truncated JSON line (line 5))"),
    ]
    assert isinstance(results[3], ProductPayload) and results[3].external_id == "3"
    assert len(results) == 4


def test_an_ungrouped_file_is_refused_when_read_as_grouped_and_joined_when_not(fake_shopify_admin):
    fake_shopify_admin.products = [make_product(n, title=f"Mug {n}", variants=n) for n in range(1, 6)]
    client = make_client(fake_shopify_admin)
    client.start_bulk_products(group_objects=False)
    url = client.bulk_status("gid://shopify/BulkOperation/1").url or ""

    with pytest.raises(BulkFileNotGrouped):
        list(client.iter_bulk_products(url))
    results = list(client.iter_bulk_products(url, grouped=False))

    assert [(r.external_id, len(r.variants or ())) for r in results if isinstance(r, ProductPayload)] == [
        (str(n), n) for n in range(1, 6)
    ]
    assert len(results) == 5


def test_streaming_a_large_bulk_file_keeps_memory_flat(fake_shopify_admin):
    fake_shopify_admin.products = [
        make_product(n, title=f"Product number {n}", description_html="<p>A fine product.</p>")
        for n in range(1, 20_001)
    ]
    # Serialised up front, so the fake server's own work is not measured with the client's.
    fake_shopify_admin.bulk_file_lines = list(fake_shopify_admin.bulk_lines())
    file_size = sum(len(line) for line in fake_shopify_admin.bulk_file_lines)
    client = make_client(fake_shopify_admin)
    url = run_bulk(client)
    client.shop_currency()

    tracemalloc.start()
    try:
        count = variants = 0
        for result in client.iter_bulk_products(url):
            assert isinstance(result, ProductPayload)
            count += 1
            variants += len(result.variants or ())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (count, variants) == (20_000, 20_000)
    assert file_size > 15_000_000
    assert peak < 2 * 1024 * 1024


def test_the_cost_bucket_survives_a_round_trip_through_its_state_and_ignores_garbage():
    # given a bucket that has seen an answer
    now = [100.0]
    clock = lambda: now[0]  # noqa: E731
    bucket = CostBucket(clock=clock)
    body = {
        "extensions": {
            "cost": {
                "requestedQueryCost": 387,
                "actualQueryCost": 300,
                "throttleStatus": {"maximumAvailable": 400.0, "currentlyAvailable": 11.0, "restoreRate": 10.0},
            }
        }
    }
    bucket.record(body, cost_key(PRODUCTS_QUERY, 35))

    # when: restored two seconds later
    restored = CostBucket.from_state(bucket.to_state(), clock=clock)
    now[0] = 102.0

    # then: the same bucket, and at t=102 it holds 31 points, so 387 need (387 - 31 + 1) / 10 s more
    assert restored == bucket
    assert restored.wait_for(cost_key(PRODUCTS_QUERY, 35)) == pytest.approx(35.7)
    assert CostBucket.from_state({"throttle": {"nope": 1}}) == CostBucket()
    assert CostBucket.from_state("garbage").wait_for("any") == 0.0
