"""WooCommerceCatalog against the local fake store: paging, mapping, faults and webhook bodies, over real HTTP."""

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from woocommerce import API

from bitrecs_site.testing.fake_woocommerce import DEFAULT_CATALOG_CSV, ApiKey, FakeWooCommerce, build_webhook_delivery
from catalog_sync.clients import SkippedRecord
from catalog_sync.clients.woocommerce import (
    WooCommerceCatalog,
    WooCommerceDeleted,
    WooCommercePage,
    WooCommerceVariationChanged,
)
from catalog_sync.types import OrderLinePayload, ProductPayload, VariantPayload
from merchants.clients.woocommerce import WooCommerceClient
from merchants.exceptions import PlatformRejected, PlatformUnavailable
from merchants.models import Store
from merchants.services.woocommerce import build_woocommerce_client
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory

WOOCOMMERCE_SLICE = Path(__file__).parent / "data" / "woocommerce_slice.csv"


@pytest.fixture
def key(fake_woocommerce: FakeWooCommerce) -> ApiKey:
    return fake_woocommerce.issue_key()


@pytest.fixture
def woo(fake_woocommerce: FakeWooCommerce, key: ApiKey, settings: Any) -> WooCommerceClient:
    settings.PLATFORM_HTTP_TIMEOUT_SECONDS = 5.0
    return WooCommerceClient(
        store_url=fake_woocommerce.base_url, consumer_key=key.consumer_key, consumer_secret=key.consumer_secret
    )


@pytest.fixture
def catalog(woo: WooCommerceClient) -> WooCommerceCatalog:
    return WooCommerceCatalog(woo)


def ref(term: Mapping[str, Any]) -> dict[str, Any]:
    """A term as a product lists it (no parent)."""
    return {"id": term["id"], "name": term["name"], "slug": term["slug"]}


def webhook_body(topic: str, payload: Any) -> Any:
    """The body as our endpoint receives it: WooCommerce's wp_json_encode output, decoded."""
    return json.loads(build_webhook_delivery(topic=topic, payload=payload, secret="s3cret").body)


def last_query(fake: FakeWooCommerce, path_suffix: str) -> dict[str, str]:
    return [r for r in fake.requests if r.path.endswith(path_suffix)][-1].query


# Paging.


def test_iter_products_pages_through_every_product_once(fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog):
    # given: 5 simple and 2 variable products
    made = fake_woocommerce.load_catalog(simple=5, variable=2)

    # when
    pages = list(catalog.iter_products(per_page=3))

    # then
    assert [len(page.items) for page in pages] == [3, 3, 1]
    assert [page.next_cursor for page in pages] == ["2", "3", None]
    assert [item.external_id for page in pages for item in page.items] == [str(p["id"]) for p in made]
    assert all(isinstance(page, WooCommercePage) and (page.total, page.total_pages) == (7, 3) for page in pages)
    assert all(page.skipped == () for page in pages)
    query = last_query(fake_woocommerce, "/products")
    assert {name: query[name] for name in ("page", "per_page", "status", "orderby", "order")} == {
        "page": "3",
        "per_page": "3",
        "status": "any",
        "orderby": "id",
        "order": "asc",
    }
    # one variations call per variable product, none for simple ones
    assert fake_woocommerce.request_count("products/*/variations") == 2


def test_per_page_is_limited_to_wordpress_maximum(
    fake_woocommerce: FakeWooCommerce, woo: WooCommerceClient, catalog: WooCommerceCatalog
):
    # the fake answers like WordPress
    with pytest.raises(PlatformRejected, match=r"HTTP 400\): rest_invalid_param"):
        woo.get("products", params={"per_page": 101})
    # and the catalog refuses before calling
    calls = len(fake_woocommerce.requests)
    with pytest.raises(ValueError, match="per_page must be between 1 and 100"):
        catalog.products_page(page=1, per_page=101)
    assert len(fake_woocommerce.requests) == calls


def test_iter_products_is_bounded(fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog):
    # given
    for _ in range(3):
        fake_woocommerce.add_product()

    # when / then
    with pytest.raises(PlatformRejected, match="Stopped after 2 pages"):
        list(catalog.iter_products(per_page=1, max_pages=2))


# Mapping.


def test_a_simple_product_maps_every_field(fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog):
    # given: a product as WooCommerce returns it, entities and HTML included
    kitchen = fake_woocommerce.category_path("Kitchen")
    mugs = fake_woocommerce.category_path("Kitchen", "Drinkware", "Mugs & Cups")
    product = fake_woocommerce.add_product(
        name="Caf&eacute; Mug &amp; Saucer &#8211; <em>Large</em>",
        slug="cafe-mug-saucer",
        permalink="https://shop.example/product/cafe-mug-saucer/",
        sku="MUG-L",
        description="<p>Hand-made <strong>stoneware</strong>.</p><ul><li>350&nbsp;ml</li><li>Dishwasher safe</li></ul>",
        short_description="<p>Short</p>",
        categories=[ref(kitchen), ref(mugs)],
        tags=[{"id": 1, "name": "Gift &amp; Home", "slug": "gift-home"}, {"id": 2, "name": "new", "slug": "new"}],
        brands=[{"id": 7, "name": "Acme", "slug": "acme"}],
        price="12.00",
        regular_price="15.00",
        sale_price="12.00",
        on_sale=True,
        stock_status="onbackorder",
        manage_stock=True,
        stock_quantity=0,
        images=[{"id": 1, "src": "https://shop.example/mug.jpg"}, {"id": 2, "src": "https://shop.example/mug-2.jpg"}],
        attributes=[
            {"id": 1, "name": "Material", "position": 0, "visible": True, "variation": False, "options": ["Stoneware"]}
        ],
        date_modified_gmt="2025-03-04T05:06:07",
    )
    fake_woocommerce.currency = "EUR"

    # when
    page = catalog.products_page(page=1)

    # then
    assert page.items == (
        ProductPayload(
            external_id=str(product["id"]),
            title="Café Mug & Saucer \u2013 Large",
            sku="MUG-L",
            handle="cafe-mug-saucer",
            url="https://shop.example/product/cafe-mug-saucer/",
            description="Hand-made stoneware. 350 ml Dishwasher safe",
            vendor="Acme",
            product_type="",
            category_path="Kitchen > Drinkware > Mugs & Cups",
            tags=("Gift & Home", "new"),
            options=({"name": "Material", "values": ["Stoneware"]},),
            price=Decimal("12.00"),
            compare_at_price=Decimal("15.00"),
            currency="EUR",
            image_url="https://shop.example/mug.jpg",
            in_stock=True,
            inventory=0,
            status="active",
            is_published=True,
            platform_updated_at=datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
            variants=(),
        ),
    )
    assert page.next_cursor is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"status": "draft"}, ("draft", False)),
        ({"status": "pending"}, ("draft", False)),
        ({"status": "private"}, ("draft", False)),
        ({"status": "publish", "catalog_visibility": "hidden"}, ("active", False)),
    ],
)
def test_unpublished_statuses_map_to_draft(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog, changes: dict[str, str], expected: tuple[str, bool]
):
    # given
    fake_woocommerce.add_product(**changes)

    # when
    (item,) = catalog.products_page(page=1).items

    # then
    assert (item.status, item.is_published) == expected


def test_an_unsold_product_without_price_or_stock_keeps_empty_values(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog
):
    # given: "" means no price in wc/v3; Uncategorized says nothing; a brand as an attribute
    fake_woocommerce.add_product(
        price="",
        regular_price="",
        sale_price="",
        stock_status="outofstock",
        attributes=[{"id": 3, "name": "Brand", "variation": False, "visible": True, "options": ["Zeta"]}],
    )

    # when
    (item,) = catalog.products_page(page=1).items

    # then
    assert (item.price, item.compare_at_price, item.in_stock, item.inventory) == (None, None, False, None)
    assert (item.category_path, item.vendor) == ("", "Zeta")


def test_category_names_are_joined_when_the_tree_cannot_be_read(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog
):
    # given: the categories call is refused
    men = fake_woocommerce.category_path("Clothing", "Men")
    fake_woocommerce.add_product(categories=[ref(fake_woocommerce.category_path("Clothing")), ref(men)])
    fake_woocommerce.fail_next(403, route="products/categories")

    # when
    (item,) = catalog.products_page(page=1).items

    # then
    assert item.category_path == "Clothing > Men"


def test_an_unreadable_currency_leaves_it_empty(fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog):
    # given: an old store without the data endpoints
    fake_woocommerce.add_product()
    fake_woocommerce.fail_next(404, route="data/currencies/current")

    # when
    (item,) = catalog.products_page(page=1).items

    # then
    assert (item.currency, item.price) == ("", Decimal("19.99"))


def test_variable_products_carry_their_variations(fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog):
    # given
    simple = fake_woocommerce.add_product(sku="SIMPLE")
    hoodie = fake_woocommerce.add_variable_product(
        name="Hoodie",
        sku="HOOD",
        attributes={"Size": ["S", "M"], "Color": ["Black"]},
        variations=[
            {
                "options": {"Size": "S", "Color": "Black"},
                "sku": "HOOD-S",
                "price": "40.00",
                "regular_price": "50.00",
                "sale_price": "40.00",
                "on_sale": True,
                "stock_quantity": 3,
            },
            {
                "options": {"Size": "M", "Color": "Black"},
                "sku": "HOOD-M",
                "price": "45.00",
                "regular_price": "45.00",
                "stock_status": "outofstock",
                "stock_quantity": 0,
                "image": {"id": 9, "src": "https://shop.example/hood-m.jpg"},
            },
        ],
    )

    # when
    first, second = catalog.products_page(page=1).items

    # then
    assert (first.external_id, first.variants) == (str(simple["id"]), ())
    assert second.external_id == str(hoodie["id"])
    assert second.variants == (
        VariantPayload(
            external_id=str(hoodie["id"] + 1),
            sku="HOOD-S",
            title="Hoodie - S, Black",
            options={"Size": "S", "Color": "Black"},
            price=Decimal("40.00"),
            compare_at_price=Decimal("50.00"),
            in_stock=True,
            inventory=3,
            image_url="",
            position=1,
        ),
        VariantPayload(
            external_id=str(hoodie["id"] + 2),
            sku="HOOD-M",
            title="Hoodie - M, Black",
            options={"Size": "M", "Color": "Black"},
            price=Decimal("45.00"),
            compare_at_price=None,
            in_stock=False,
            inventory=0,
            image_url="https://shop.example/hood-m.jpg",
            position=2,
        ),
    )
    # the parent: cheapest price (with its regular price), options from the attributes, stock summed
    assert (second.sku, second.price, second.compare_at_price) == ("HOOD", Decimal("40.00"), Decimal("50.00"))
    assert second.options == ({"name": "Size", "values": ["S", "M"]}, {"name": "Color", "values": ["Black"]})
    assert (second.in_stock, second.inventory) == (True, 3)


def test_variations_are_read_page_by_page(fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog):
    # given: 150 variations, two pages of the variations listing
    product = fake_woocommerce.add_variable_product(attributes={"Number": [str(n) for n in range(150)]})

    # when
    (item,) = catalog.products_page(page=1).items

    # then
    assert [variant.external_id for variant in item.variants or ()] == [str(product["id"] + n) for n in range(1, 151)]
    assert fake_woocommerce.request_count("products/*/variations") == 2


def test_modified_after_is_sent_in_gmt_and_the_same_second_is_read_again(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog
):
    # given
    fake_woocommerce.add_product(sku="OLD", date_modified_gmt="2025-01-01T00:00:00")
    fake_woocommerce.add_product(sku="EDGE", date_modified_gmt="2025-02-01T12:00:00")
    fake_woocommerce.add_product(sku="NEW", date_modified_gmt="2025-02-02T00:00:00")

    # when
    page = catalog.products_page(page=1, modified_after=datetime(2025, 2, 1, 12, 0, 0, 500000, tzinfo=UTC))

    # then
    assert [item.sku for item in page.items] == ["EDGE", "NEW"]
    query = last_query(fake_woocommerce, "/products")
    assert (query["modified_after"], query["dates_are_gmt"]) == ("2025-02-01T11:59:59", "true")
    with pytest.raises(ValueError, match="aware datetime"):
        catalog.products_page(page=1, modified_after=datetime(2025, 2, 1))  # noqa: DTZ001


def test_a_product_changed_in_a_big_csv_catalog_is_the_only_one_modified_since(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog
):
    # given: 500 products from the CSV slice in the repo, stamped 2025-01-01 + i seconds; one changed later
    bulk = fake_woocommerce.load_catalog_csv(WOOCOMMERCE_SLICE, products=500)
    changed = bulk.product_id(321)
    fake_woocommerce.update_product(changed, name="Renamed", modified_at=datetime(2025, 6, 1, tzinfo=UTC))

    # when
    pages = list(catalog.iter_products(modified_after=datetime(2025, 3, 1, tzinfo=UTC)))

    # then
    assert [(item.external_id, item.title) for page in pages for item in page.items] == [(str(changed), "Renamed")]


@pytest.mark.skipif(not DEFAULT_CATALOG_CSV.exists(), reason="needs ../shared/data beside the checkout")
def test_a_catalog_built_from_the_csv_export_keeps_its_variations(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog
):
    # given: the export's 191 products, then copies with new ids up to 250
    bulk = fake_woocommerce.load_catalog_csv(products=250)

    # when
    pages = list(catalog.iter_products())

    # then
    items = [item for page in pages for item in page.items]
    assert (len(pages), len(items), len({item.external_id for item in items})) == (3, 250, 250)
    assert sum(len(item.variants or ()) for item in items) == bulk.variation_count
    assert all(page.skipped == () for page in pages)
    hoodie = items[0]
    assert (hoodie.title, hoodie.sku, hoodie.price) == ("Chaz Kangeroo Hoodie", "MH01", Decimal("52.00"))
    assert hoodie.category_path == "Clothing > Men > Tops > Hoodies & Sweatshirts"
    assert hoodie.options == (
        {"name": "Size", "values": ["XS", "S", "M", "L", "XL"]},
        {"name": "Color", "values": ["Black", "Gray", "Orange"]},
    )
    assert hoodie.description.startswith("Ideal for cold-weather training or work outdoors")
    first_variant = (hoodie.variants or ())[0]
    assert (first_variant.sku, first_variant.options, first_variant.price) == (
        "MH01-L-Black",
        {"Size": "L", "Color": "Black"},
        Decimal("52.00"),
    )
    copy = items[191]
    assert (copy.title, copy.sku, copy.external_id) == ("Chaz Kangeroo Hoodie #2", "MH01-2", str(bulk.product_id(191)))


# Faults.


def test_a_malformed_product_is_skipped_with_a_reason_and_the_rest_land(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog
):
    # given
    fake_woocommerce.add_product(sku="GOOD-1")
    fake_woocommerce.add_raw_product({"name": "No id"})
    fake_woocommerce.add_raw_product({"id": 901, "name": "  <b></b> "})
    fake_woocommerce.add_raw_product({"id": 902, "name": "Bad price", "price": "twelve"})
    fake_woocommerce.add_raw_product({"id": 903, "name": "Bad tags", "tags": "red"})
    fake_woocommerce.add_raw_product({"id": 904, "name": "Bad stock", "stock_quantity": [1]})
    fake_woocommerce.add_raw_product("not an object")
    fake_woocommerce.add_product(sku="GOOD-2")

    # when
    page = catalog.products_page(page=1)

    # then
    assert [item.sku for item in page.items] == ["GOOD-1", "GOOD-2"]
    assert page.skipped == (
        SkippedRecord("", "product has no usable id (None)"),
        SkippedRecord("901", "product has no name"),
        SkippedRecord("902", "price is not a number: 'twelve'"),
        SkippedRecord("903", "tags is not a list"),
        SkippedRecord("904", "stock_quantity is not an integer"),
        SkippedRecord("", "product is not an object"),
    )


def test_a_product_with_a_malformed_variation_is_skipped_whole(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog
):
    # given: landing it without that variation would delete the stored one
    product = fake_woocommerce.add_variable_product(attributes={"Size": ["S", "M"]})
    fake_woocommerce.variations[product["id"]][1]["regular_price"] = "n/a?"
    fake_woocommerce.variations[product["id"]][1]["price"] = "n/a?"

    # when
    page = catalog.products_page(page=1)

    # then
    pid = product["id"]
    assert page.items == ()
    assert page.skipped == (
        SkippedRecord(f"{pid}/{pid + 2}", "variation: price is not a number: 'n/a?'"),
        SkippedRecord(str(pid), "product with a malformed variation"),
    )


def test_a_429_is_platform_unavailable_with_retry_after(fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog):
    # given
    fake_woocommerce.add_product()
    fake_woocommerce.fail_next(429, retry_after="7", route="products")

    # when
    with pytest.raises(PlatformUnavailable, match="HTTP 429") as caught:
        catalog.products_page(page=1)

    # then
    assert caught.value.retry_after == 7.0
    # and the fault was one call only
    assert len(catalog.products_page(page=1).items) == 1


def test_a_500_while_reading_variations_fails_the_page(fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog):
    # given
    fake_woocommerce.load_catalog(simple=1, variable=3)
    fake_woocommerce.fail_next(500, route="products/*/variations")

    # when
    with pytest.raises(PlatformUnavailable, match="HTTP 500") as caught:
        catalog.products_page(page=1)

    # then
    assert caught.value.retry_after is None


def test_a_page_that_is_not_json_is_a_clear_error(fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog):
    # given: WordPress sent a cut-off body labelled application/json
    fake_woocommerce.add_product()
    fake_woocommerce.serve_malformed_json(route="products")

    # when / then
    with pytest.raises(PlatformRejected, match="answered products with malformed JSON"):
        catalog.products_page(page=1)


# Orders.


def test_orders_map_to_purchase_lines_without_customer_data(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog
):
    # given
    mug = fake_woocommerce.add_product(name="Mug", sku="MUG", price="12.50")
    hoodie = fake_woocommerce.add_variable_product(name="Hoodie", attributes={"Size": ["S", "M"]})
    medium = fake_woocommerce.variations[hoodie["id"]][1]
    ordered = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)
    order = fake_woocommerce.add_order(
        lines=[{"product": mug, "quantity": 2, "rec_id": "rec-123"}, {"product": hoodie, "variation": medium}],
        created_at=ordered,
    )
    fake_woocommerce.add_order(lines=[{"product": mug}], status="pending")
    fake_woocommerce.add_order(lines=[{"product": mug}], status="cancelled")

    # when
    page = catalog.orders_page(page=1)

    # then
    oid = order["id"]
    assert page.items == (
        OrderLinePayload(
            order_id=str(oid),
            line_id=str(oid * 10 + 1),
            ordered_at=ordered,
            product_external_id=str(mug["id"]),
            variant_external_id="",
            sku="MUG",
            quantity=2,
            price=Decimal("12.50"),
            currency="USD",
            rec_id="rec-123",
        ),
        OrderLinePayload(
            order_id=str(oid),
            line_id=str(oid * 10 + 2),
            ordered_at=ordered,
            product_external_id=str(hoodie["id"]),
            variant_external_id=str(medium["id"]),
            sku=medium["sku"],
            quantity=1,
            price=Decimal("25.00"),
            currency="USD",
            rec_id="",
        ),
    )
    assert (page.skipped, page.next_cursor, page.total) == ((), None, 3)
    # the store sent the customer's data; none of it is in what the catalog returns
    assert "jane.shopper@example.com" in json.dumps(fake_woocommerce.orders)
    returned = repr(page) + json.dumps([asdict(item) for item in page.items], default=str)
    for secret in ("jane", "Shopper", "Baker", "NW1", "203.0.113.7", "+44", "Mozilla", "neighbour", "stripe", "ch_3P"):
        assert secret.lower() not in returned.lower()


def test_orders_page_filters_by_creation_or_modification_time(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog
):
    # given
    mug = fake_woocommerce.add_product()
    fake_woocommerce.add_order(lines=[{"product": mug}], created_at=datetime(2025, 1, 1, tzinfo=UTC))
    recent = fake_woocommerce.add_order(lines=[{"product": mug}], created_at=datetime(2025, 3, 1, tzinfo=UTC))

    # when
    created = catalog.orders_page(page=1, created_after=datetime(2025, 2, 1, tzinfo=UTC))
    query = last_query(fake_woocommerce, "/orders")
    modified = catalog.orders_page(page=1, modified_after=datetime(2025, 2, 1, tzinfo=UTC))

    # then
    assert [line.order_id for line in created.items] == [str(recent["id"])]
    assert [line.order_id for line in modified.items] == [str(recent["id"])]
    assert (query["after"], query["dates_are_gmt"], query["status"]) == ("2025-01-31T23:59:59", "true", "any")


def test_a_malformed_order_is_skipped_and_bad_lines_are_reported(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog
):
    # given
    mug = fake_woocommerce.add_product(price="3.00")
    good = fake_woocommerce.add_order(lines=[{"product": mug}, {"product": mug}])
    good["line_items"][1]["quantity"] = "lots"
    fake_woocommerce.orders.append({"id": 77, "status": "completed", "line_items": []})

    # when
    page = catalog.orders_page(page=1)

    # then
    assert [line.line_id for line in page.items] == [str(good["id"] * 10 + 1)]
    assert page.skipped == (
        SkippedRecord(f"{good['id']}/{good['id'] * 10 + 2}", "quantity is not an integer: 'lots'"),
        SkippedRecord("77", "order has no date_created_gmt"),
    )


# Webhooks.


def test_a_product_webhook_maps_like_the_rest_api(fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog):
    # given
    product = fake_woocommerce.add_product(name="Tea &amp; Co", price="4.00", regular_price="5.00")
    body = webhook_body("product.updated", product)

    # when
    mapped = WooCommerceCatalog.payload_from_webhook("product", body, currency="USD")

    # then
    (from_api,) = catalog.products_page(page=1).items
    assert mapped == from_api
    assert isinstance(mapped, ProductPayload)
    assert (mapped.title, mapped.price, mapped.compare_at_price, mapped.variants) == (
        "Tea & Co",
        Decimal("4.00"),
        Decimal("5.00"),
        (),
    )


def test_a_variable_product_webhook_leaves_stored_variants_alone(fake_woocommerce: FakeWooCommerce):
    # given: the body lists only variation ids
    product = fake_woocommerce.add_variable_product(name="Hoodie", attributes={"Size": ["S", "M"]})
    body = webhook_body("product.updated", product)
    assert body["variations"] == [product["id"] + 1, product["id"] + 2]

    # when
    mapped = WooCommerceCatalog.payload_from_webhook("product", body)

    # then
    assert isinstance(mapped, ProductPayload)
    assert (mapped.external_id, mapped.title, mapped.variants, mapped.price) == (
        str(product["id"]),
        "Hoodie",
        None,
        Decimal("25.00"),
    )


def test_delete_and_variation_webhooks_give_markers(fake_woocommerce: FakeWooCommerce):
    # given
    product = fake_woocommerce.add_variable_product(attributes={"Size": ["S"]})
    variation = {**fake_woocommerce.variations[product["id"]][0], "type": "variation", "parent_id": product["id"]}

    # when / then
    assert WooCommerceCatalog.payload_from_webhook("product", webhook_body("product.deleted", {"id": 42})) == (
        WooCommerceDeleted(resource="product", external_id="42")
    )
    assert WooCommerceCatalog.payload_from_webhook("order", {"id": 7}) == WooCommerceDeleted("order", "7")
    assert WooCommerceCatalog.payload_from_webhook("product", webhook_body("product.updated", variation)) == (
        WooCommerceVariationChanged(
            external_id=str(variation["id"]),
            reason=f"a variation of product {product['id']}: re-read the product",
            product_external_id=str(product["id"]),
        )
    )
    assert WooCommerceCatalog.payload_from_webhook("product", {"id": "x"}) == SkippedRecord(
        "", "deleted product has no usable id ('x')"
    )
    assert WooCommerceCatalog.payload_from_webhook("product", {"id": 5, "name": ""}) == SkippedRecord(
        "5", "product has no name"
    )
    assert WooCommerceCatalog.payload_from_webhook("product", ["not", "an", "object"]) == SkippedRecord(
        "", "product body is not an object"
    )
    with pytest.raises(ValueError, match="coupon"):
        WooCommerceCatalog.payload_from_webhook("coupon", {"id": 1})


def test_an_order_webhook_gives_its_lines_and_a_variation_can_be_re_read(
    fake_woocommerce: FakeWooCommerce, catalog: WooCommerceCatalog
):
    # given
    hoodie = fake_woocommerce.add_variable_product(name="Hoodie", attributes={"Size": ["S", "M"]})
    small = fake_woocommerce.variations[hoodie["id"]][0]
    order = fake_woocommerce.add_order(lines=[{"product": hoodie, "variation": small, "rec_id": " r-9 "}])

    # when
    lines = WooCommerceCatalog.payload_from_webhook("order", webhook_body("order.created", order))
    refreshed = catalog.product(str(hoodie["id"]))

    # then
    assert isinstance(lines, list)
    assert [(line.variant_external_id, line.rec_id, line.price) for line in lines] == [
        (str(small["id"]), "r-9", Decimal("25.00"))
    ]
    pending = {**order, "status": "pending"}
    assert WooCommerceCatalog.payload_from_webhook("order", webhook_body("order.created", pending)) == []
    assert isinstance(refreshed, ProductPayload)
    assert [variant.options for variant in refreshed.variants or ()] == [{"Size": "S"}, {"Size": "M"}]


# A connected store.


@pytest.mark.django_db
def test_a_connected_store_is_read_over_https_with_its_stored_keys(fake_woocommerce_https: FakeWooCommerce):
    # given
    key = fake_woocommerce_https.issue_key()
    fake_woocommerce_https.add_product(sku="MUG-1")
    store = StoreFactory.create(
        platform=Store.Platform.WOOCOMMERCE, domain=fake_woocommerce_https.base_url.removeprefix("https://")
    )
    PlatformCredentialFactory.create(
        store=store, access_token="", consumer_key=key.consumer_key, consumer_secret=key.consumer_secret
    )

    # when
    page = WooCommerceCatalog(build_woocommerce_client(store=store)).products_page(page=1)

    # then
    assert [item.sku for item in page.items] == ["MUG-1"]
    rest_calls = [r for r in fake_woocommerce_https.requests if r.path.startswith("/wp-json/")]
    assert rest_calls and all(r.headers["authorization"].startswith("Basic ") for r in rest_calls)


# The fake itself.


def test_the_fake_pages_with_wordpress_headers(fake_woocommerce: FakeWooCommerce, key: ApiKey):
    # given
    for _ in range(5):
        fake_woocommerce.add_product()
    api = API(url=fake_woocommerce.base_url, consumer_key=key.consumer_key, consumer_secret=key.consumer_secret)

    # when: the raw answer to the `woocommerce` package's own client
    response = api.get("products", params={"per_page": 2, "page": 2, "status": "any"})

    # then
    base = f"{fake_woocommerce.base_url}/wp-json/wc/v3/products"
    assert (response.headers["X-WP-Total"], response.headers["X-WP-TotalPages"]) == ("5", "3")
    assert response.headers["Link"] == (
        f'<{base}?per_page=2&page=1&status=any>; rel="prev", <{base}?per_page=2&page=3&status=any>; rel="next"'
    )


def test_the_fake_refuses_a_replayed_oauth_nonce(fake_woocommerce: FakeWooCommerce, woo: WooCommerceClient):
    # given: a signed call that succeeded
    woo.get("system_status")
    signed = fake_woocommerce.requests[-1]

    # when: the same signed query is sent again
    replay = requests.get(f"{fake_woocommerce.base_url}{signed.path}", params=signed.query, timeout=5)

    # then
    assert replay.status_code == 401
    assert replay.json()["message"] == "Invalid nonce - nonce has already been used."
