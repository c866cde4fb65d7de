import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from catalog_sync.exceptions import SyncAlreadyRunning
from catalog_sync.models import OrderLine, Product, SyncRun, Variant
from catalog_sync.services import (
    ImportProgress,
    UpsertResult,
    import_catalog_file,
    start_sync_run,
    upsert_order_lines,
    upsert_products,
)
from catalog_sync.tests.conftest import DATA
from catalog_sync.tests.factories import ProductPayloadFactory, VariantPayloadFactory
from catalog_sync.types import OrderLinePayload

pytestmark = pytest.mark.django_db

WALMART_HEADER = "UNIQUE_ID,PRODUCT_NAME,LIST_PRICE,SALE_PRICE,BRAND,ITEM_NUMBER,GTIN,CATEGORY,IN_STOCK\n"


def test_upsert_products_updates_existing_rows_instead_of_duplicating(store):
    # given
    upsert_products(store=store, payloads=[ProductPayloadFactory.build(external_id="1", title="Old")])

    # when
    result = upsert_products(
        store=store,
        payloads=[
            ProductPayloadFactory.build(external_id="1", title="New", price=Decimal("12.00")),
            ProductPayloadFactory.build(external_id="2", title="Other"),
        ],
    )

    # then
    assert result == UpsertResult(created=1, updated=1)
    assert list(
        Product.objects.filter(store=store).order_by("external_id").values_list("external_id", "title", "price")
    ) == [
        ("1", "New", Decimal("12.00")),
        ("2", "Other", Decimal("10.00")),
    ]


def test_upsert_products_replaces_the_variant_set(store):
    # given
    a, b, c = (VariantPayloadFactory.build(external_id=v) for v in "abc")
    upsert_products(store=store, payloads=[ProductPayloadFactory.build(external_id="1", variants=(a, b))])

    # when
    result = upsert_products(store=store, payloads=[ProductPayloadFactory.build(external_id="1", variants=(b, c))])

    # then
    assert result == UpsertResult(updated=1, variants_created=1, variants_updated=1, variants_deleted=1)
    assert list(
        Variant.objects.filter(product__store=store).values_list("external_id", flat=True).order_by("external_id")
    ) == ["b", "c"]


def test_upsert_products_with_variants_none_leaves_stored_variants(store):
    # given
    upsert_products(
        store=store, payloads=[ProductPayloadFactory.build(external_id="1", variants=(VariantPayloadFactory.build(),))]
    )

    # when
    upsert_products(
        store=store, payloads=[ProductPayloadFactory.build(external_id="1", title="Renamed", variants=None)]
    )

    # then
    assert Variant.objects.filter(product__store=store).count() == 1
    assert Product.objects.get(store=store).title == "Renamed"


def test_upsert_products_works_across_batches(store, monkeypatch):
    # given
    monkeypatch.setattr("catalog_sync.services.catalog.BATCH_SIZE", 3)
    payloads = [
        ProductPayloadFactory.build(external_id=str(n), variants=(VariantPayloadFactory.build(),)) for n in range(7)
    ]

    # when
    first = upsert_products(store=store, payloads=payloads)
    second = upsert_products(store=store, payloads=payloads)

    # then
    assert first == UpsertResult(created=7, variants_created=7)
    assert second == UpsertResult(updated=7, variants_updated=7)
    assert Product.objects.filter(store=store).count() == 7


def test_upsert_order_lines_links_known_products_and_is_idempotent(store):
    # given
    upsert_products(
        store=store,
        payloads=[
            ProductPayloadFactory.build(external_id="p1", variants=(VariantPayloadFactory.build(external_id="v1"),))
        ],
    )
    ordered_at = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    payloads = [
        OrderLinePayload(
            order_id="o1",
            line_id="1",
            ordered_at=ordered_at,
            product_external_id="p1",
            variant_external_id="v1",
            quantity=2,
            price=Decimal("9.99"),
            rec_id="rec_abc",
        ),
        OrderLinePayload(order_id="o1", line_id="2", ordered_at=ordered_at, product_external_id="unknown"),
    ]

    # when
    first = upsert_order_lines(store=store, payloads=payloads)
    second = upsert_order_lines(store=store, payloads=payloads)

    # then
    assert (first, second) == (UpsertResult(created=2), UpsertResult(updated=2))
    line = OrderLine.objects.select_related("product", "variant").get(store=store, line_id="1")
    assert line.product is not None and line.variant is not None
    assert (line.product.external_id, line.variant.external_id, line.quantity, line.rec_id, line.created_at) == (
        "p1",
        "v1",
        2,
        "rec_abc",
        ordered_at,
    )
    assert OrderLine.objects.get(store=store, line_id="2").product is None


@pytest.mark.parametrize(
    ("name", "products", "variants"),
    [
        ("woocommerce_slice.csv", 8, 30),
        ("shopify_slice.csv", 6, 17),
        ("walmart_slice.csv", 30, 0),
        ("asos_slice.csv", 29, 0),
        ("amazon_slice.json", 41, 0),
    ],
)
def test_import_each_format_then_reimport_is_idempotent(store, name, products, variants):
    # when
    first = import_catalog_file(store=store, path=DATA / name)
    second = import_catalog_file(store=store, path=DATA / name)

    # then
    assert (first.products_created, first.products_updated, first.variants_created) == (products, 0, variants)
    assert (second.products_created, second.products_updated) == (0, products)
    assert (second.variants_created, second.variants_updated, second.variants_deleted) == (0, variants, 0)
    assert Product.objects.filter(store=store).count() == products
    assert Variant.objects.filter(product__store=store).count() == variants


def test_import_shopify_groups_variant_rows_into_one_product(store):
    # when
    report = import_catalog_file(store=store, path=DATA / "shopify_slice.csv")

    # then
    assert report.skipped == {}
    speaker = Product.objects.get(store=store, external_id="music-manager-bluetooth-speaker-and-subwoofer-1-1426142472")
    assert (speaker.title, speaker.vendor, speaker.sku, speaker.price, speaker.product_type, speaker.status) == (
        "Music Manager Bluetooth Speaker And Subwoofer",
        "Salmon Lucky",
        "723466566193",
        Decimal("24.15"),
        "Tech Accessories",
        "active",
    )
    assert speaker.tags == [
        "Best Sellers",
        "Bluetooth",
        "Electronic Accessories",
        "Electronics",
        "Entire Store",
        "Home",
        "Mother's Day",
        "NEW ARRIVALS",
        "New Items",
        "Speaker",
        "VISTA",
    ]
    assert list(speaker.variants.values_list("title", "sku", "price")) == [
        ("GEO BLUE", "723466566193", Decimal("32.22")),
        ("SOLID BLUE", "723466566186", Decimal("32.22")),
        ("SOLID BLACK", "723466566230", Decimal("28.19")),
        ("GEOMETRIC RED", "723466566209", Decimal("24.15")),
        ("SOLID RED", "723466566223", Decimal("28.19")),
        ("JUNGLE GREEN", "723466566247", Decimal("28.19")),
        ("GEOMETRIC BLUE", "723466566216", Decimal("24.15")),
    ]
    mat = Product.objects.get(store=store, handle="golden-horizon-desk-mat-204970974")
    assert mat.description == (
        "Golden Horizon Desk Mat is a must-have for gamers and desk enthusiasts alike. This high-quality desk mat "
        "not only enhances the aesthetics of your gaming setup but also provides a smooth and comfortable surface "
        "for precise mouse movement. Making it a perfect fit for gamers who want to add a touch of style to their "
        "gaming or office space. Made of 4mm thick neoprene material, it has an anti-slip backing and a hemmed edge "
        "for durability and stability. - 4 mm thick neoprene - Anti-slip backing - Multifunctional use - "
        'Size 31" x 15.5"'
    )
    assert (mat.category_path, mat.tags, mat.url) == (
        "Mousepads",
        ["desk mats", "desk pads", "gaming mouse pads"],
        "https://demo.local/products/golden-horizon-desk-mat-204970974",
    )


def test_import_woocommerce_keeps_variable_products_whole(store):
    # when
    import_catalog_file(store=store, path=DATA / "woocommerce_slice.csv")

    # then
    hoodie = Product.objects.get(store=store, external_id="59")
    assert (hoodie.sku, hoodie.title, hoodie.category_path, hoodie.price, hoodie.variants.count()) == (
        "MH01",
        "Chaz Kangeroo Hoodie",
        "Clothing > Men > Tops > Hoodies & Sweatshirts",
        Decimal("52.00"),
        15,
    )
    assert hoodie.options == [
        {"name": "Size", "values": ["XS", "S", "M", "L", "XL"]},
        {"name": "Color", "values": ["Black", "Gray", "Orange"]},
    ]
    assert hoodie.variants.get(sku="MH01-L-Black").options == {"Size": "L", "Color": "Black"}
    assert Product.objects.get(store=store, external_id="75").variants.count() == 15  # parent given as "id:75"


def test_import_records_a_sync_run_and_reports_progress(store):
    # given
    seen: list[ImportProgress] = []

    # when
    report = import_catalog_file(store=store, path=DATA / "walmart_slice.csv", progress=seen.append, batch_size=10)

    # then
    run = SyncRun.objects.get(id=report.sync_run_id)
    assert (run.kind, run.status, run.seen, run.created, run.updated, run.failed) == (
        "import",
        "succeeded",
        30,
        30,
        0,
        0,
    )
    assert run.finished_at is not None
    assert run.detail["format"] == "walmart"
    assert [state.products for state in seen] == [10, 20, 30, 30]
    assert seen[-1].bytes_read == seen[-1].bytes_total == (DATA / "walmart_slice.csv").stat().st_size


def test_import_lands_good_rows_and_counts_each_skip_reason(store, tmp_path: Path):
    # given
    path = tmp_path / "feed.csv"
    path.write_text(
        WALMART_HEADER
        + "a1,Good one,5,5,Acme,,,Home | Kitchen,True\n"
        + "a2,,5,5,Acme,,,Home,True\n"  # missing title
        + "a3,Bad price,abc,abc,Acme,,,Home,True\n"
        + "a4,Bad price too,abc,abc,Acme,,,Home,True\n"
        + ",No id,5,5,Acme,,,Home,True\n"
        + "a5,<b>Bold</b> &amp; plain,7,6,Acme,,,Home,False\n"  # HTML in the title is stripped, the row lands
        + "a1,Same SKU again,5,5,Acme,,,Home,True\n"
    )

    # when
    report = import_catalog_file(store=store, path=path)

    # then
    assert (report.products_created, report.status) == (2, "partial")
    assert report.skipped == {"missing title": 1, "non-numeric price": 2, "missing id": 1, "duplicate SKU": 1}
    assert report.summary_lines()[-1] == (
        "Skipped 5: non-numeric price: 2 (e.g. 'abc'), duplicate SKU: 1 (e.g. 'a1'), missing id: 1, missing title: 1."
    )
    assert list(
        Product.objects.filter(store=store)
        .order_by("external_id")
        .values_list("external_id", "title", "price", "compare_at_price", "in_stock", "category_path")
    ) == [
        ("a1", "Good one", Decimal("5.00"), None, True, "Home > Kitchen"),
        ("a5", "Bold & plain", Decimal("6.00"), Decimal("7.00"), False, "Home"),
    ]
    run = SyncRun.objects.get(id=report.sync_run_id)
    assert (run.status, run.failed, run.error_count) == ("partial", 5, 5)
    assert run.errors[:2] == [
        {"row": 3, "id": "a2", "reason": "missing title"},
        {"row": 4, "id": "a3", "reason": "non-numeric price", "value": "abc"},
    ]


def test_a_later_bad_row_does_not_corrupt_the_stored_product(store, tmp_path: Path):
    # given
    good = tmp_path / "good.csv"
    good.write_text(WALMART_HEADER + "a1,Kettle,30,25,Acme,,,Home,True\n")
    import_catalog_file(store=store, path=good)
    bad = tmp_path / "bad.csv"
    bad.write_text(WALMART_HEADER + "a1,Kettle,abc,abc,Acme,,,Home,True\na1b,,30,25,Acme,,,Home,True\n")

    # when
    report = import_catalog_file(store=store, path=bad)

    # then
    assert (report.products, report.status) == (0, "failed")
    kettle = Product.objects.get(store=store, external_id="a1")
    assert (kettle.title, kettle.price, kettle.compare_at_price) == ("Kettle", Decimal("25.00"), Decimal("30.00"))


def test_a_bad_variant_row_skips_its_product_and_keeps_the_stored_variants(store, tmp_path: Path):
    # given
    import_catalog_file(store=store, path=DATA / "shopify_slice.csv")
    rows = (DATA / "shopify_slice.csv").read_text().replace("28.19", "n/a price", 1)
    path = tmp_path / "shopify.csv"
    path.write_text(rows)

    # when
    report = import_catalog_file(store=store, path=path)

    # then
    assert report.skipped == {"non-numeric price": 1, "product with a bad variant row": 1}
    assert report.products_updated == 5
    speaker = Product.objects.get(store=store, external_id="music-manager-bluetooth-speaker-and-subwoofer-1-1426142472")
    assert speaker.variants.count() == 7
    assert speaker.variants.get(title="SOLID BLACK").price == Decimal("28.19")


def test_import_broken_json_lands_the_other_records(store, tmp_path: Path):
    # given
    good = {
        "parent_asin": "B1",
        "metadata": {"title": "Stapler", "price": "4.50", "store": "Acme", "main_category": "Office"},
    }
    other = {"parent_asin": "B2", "metadata": {"title": "Paper", "price": "None"}}
    path = tmp_path / "reviews.json"
    path.write_text(f'[{json.dumps(good)}, {{"parent_asin": "B9" "metadata": {{}}}}, {json.dumps(other)}]')

    # when
    report = import_catalog_file(store=store, path=path)

    # then
    assert report.skipped == {"broken JSON": 1}
    assert list(
        Product.objects.filter(store=store).order_by("external_id").values_list("external_id", "title", "price")
    ) == [
        ("B1", "Stapler", Decimal("4.50")),
        ("B2", "Paper", None),
    ]


def test_import_refuses_while_another_sync_runs(store):
    # given
    start_sync_run(store=store, kind=SyncRun.Kind.FULL)

    # when / then
    with pytest.raises(SyncAlreadyRunning, match="already has a running full sync"):
        import_catalog_file(store=store, path=DATA / "walmart_slice.csv")
    assert Product.objects.filter(store=store).count() == 0


def test_demo_catalog_imports_cleanly(store):
    # when
    report = import_catalog_file(store=store, path=Path(__file__).parents[1] / "fixtures" / "demo_catalog.csv")

    # then
    assert (report.format, report.products_created, report.variants_created, report.skipped) == ("shopify", 96, 356, {})
