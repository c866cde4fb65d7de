import io
from decimal import Decimal
from pathlib import Path

import pytest

from catalog_sync.exceptions import CatalogFileError, UnknownCatalogFormat
from catalog_sync.importers import Skip, open_catalog
from catalog_sync.importers.amazon import BrokenJson, iter_json_records
from catalog_sync.tests.conftest import DATA
from catalog_sync.text import PriceError, html_to_text, parse_price
from catalog_sync.types import ProductPayload


def test_html_to_text_strips_tags_decodes_entities_and_collapses_whitespace():
    # given
    html = "<p>Two-tone&nbsp;hoodie</p>\n<ul><li>&bull; Warm</li><li>Soft &amp; light</li></ul><script>x()</script>"

    # when
    text = html_to_text(html)

    # then
    assert text == "Two-tone\xa0hoodie • Warm Soft & light".replace("\xa0", " ")


def test_html_to_text_keeps_plain_text_with_ampersands():
    assert html_to_text("  M&S   <b>slim</b>\tfit ") == "M&S slim fit"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.5", Decimal("12.50")),
        ("$1,299.00", Decimal("1299.00")),
        ("From  70.00", Decimal("70.00")),
        ("None", None),
        ("—", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_price_accepts_real_export_spellings(raw, expected):
    assert parse_price(raw) == expected


@pytest.mark.parametrize("raw", ["abc", "12,50 EUR", "-3", "inf"])
def test_parse_price_rejects_non_numbers(raw):
    with pytest.raises(PriceError):
        parse_price(raw)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("woocommerce_slice.csv", "woocommerce"),
        ("shopify_slice.csv", "shopify"),
        ("walmart_slice.csv", "walmart"),
        ("asos_slice.csv", "asos"),
        ("amazon_slice.json", "amazon"),
    ],
)
def test_open_catalog_detects_each_format(name, expected):
    assert open_catalog(DATA / name).format == expected


def test_open_catalog_rejects_an_unknown_header(tmp_path: Path):
    # given
    path = tmp_path / "other.csv"
    path.write_text("colour,size\nred,L\n")

    # when / then
    with pytest.raises(UnknownCatalogFormat, match=r"Cannot tell the format of other.csv"):
        open_catalog(path)


def test_open_catalog_rejects_a_format_the_file_does_not_match():
    with pytest.raises(UnknownCatalogFormat, match="is not a walmart export: it has no UNIQUE_ID, PRODUCT_NAME column"):
        open_catalog(DATA / "asos_slice.csv", fmt="walmart")


def test_open_catalog_rejects_a_missing_file(tmp_path: Path):
    with pytest.raises(CatalogFileError, match="Cannot read"):
        open_catalog(tmp_path / "nope.csv")


def test_woocommerce_variations_attach_to_parent_by_sku_or_id_even_before_the_parent(tmp_path: Path):
    # given: a variation listed before its parent, one parent referenced as "id:10"
    path = tmp_path / "woo.csv"
    path.write_text(
        "ID,Type,SKU,Name,Published,In stock?,Stock,Regular price,Sale price,Parent,"
        "Attribute 1 name,Attribute 1 value(s)\n"
        "12,variation,TEE-L,Tee - L,1,1,3,20,15,TEE,Size,L\n"
        '10,variable,TEE,Tee,1,1,,,,,Size,"S, L"\n'
        "11,variation,TEE-S,Tee - S,1,0,0,20,,id:10,Size,S\n"
        "20,simple,MUG,<b>Mug</b>,1,1,5,9.5,,,,\n"
    )

    # when
    items = list(open_catalog(path))

    # then
    assert [item.external_id for item in items] == ["10", "20"]
    tee, mug = items
    assert isinstance(tee, ProductPayload) and isinstance(mug, ProductPayload)
    assert [
        (v.external_id, v.sku, dict(v.options), v.price, v.compare_at_price, v.in_stock) for v in tee.variants or ()
    ] == [
        ("12", "TEE-L", {"Size": "L"}, Decimal("15.00"), Decimal("20.00"), True),
        ("11", "TEE-S", {"Size": "S"}, Decimal("20.00"), None, False),
    ]
    assert (tee.price, tee.compare_at_price, tee.inventory, tee.in_stock) == (
        Decimal("15.00"),
        Decimal("20.00"),
        3,
        True,
    )
    assert (mug.title, mug.price, mug.variants) == ("Mug", Decimal("9.50"), ())


def test_json_records_survive_a_broken_element_and_read_json_lines():
    # given
    text = '[{"a": 1}, {"a": "x" "b": 2}, {"a": [1, {"c": "}]"}]},\n {"a": 3}]'

    # when
    records = list(iter_json_records(io.StringIO(text)))

    # then
    assert [index for index, _ in records] == [0, 1, 2, 3]
    assert isinstance(records[1][1], BrokenJson)
    assert [value for _, value in records if not isinstance(value, BrokenJson)] == [
        {"a": 1},
        {"a": [1, {"c": "}]"}]},
        {"a": 3},
    ]
    assert [value for _, value in iter_json_records(io.StringIO('{"a": 1}\n{"a": "\\"2"}\n'))] == [
        {"a": 1},
        {"a": '"2'},
    ]


def test_json_records_report_a_file_cut_inside_an_element():
    records = list(iter_json_records(io.StringIO('[{"a": 1}, {"a": ')))

    assert records[0] == (0, {"a": 1})
    assert isinstance(records[1][1], BrokenJson)


def test_amazon_catalog_is_the_distinct_parent_asins_with_metadata_of_the_first_record():
    # when
    items = list(open_catalog(DATA / "amazon_slice.json"))

    # then
    products = [item for item in items if isinstance(item, ProductPayload)]
    assert [item for item in items if isinstance(item, Skip)] == []
    assert len(products) == 41
    first = products[0]
    assert (first.external_id, first.sku, first.title, first.vendor, first.category_path, first.price) == (
        "B0BCYZ8FN7",
        "B0BCYZ8FN7",
        "Avery Business Card Pages, Pack of 10 (76009)",
        "AVERY",
        "Office Products",
        Decimal("5.38"),
    )
    assert products[-1].price is None  # "—" in the metadata
