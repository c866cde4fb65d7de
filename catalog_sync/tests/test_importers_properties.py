"""Property tests of the catalog importers (WooCommerce, Shopify, Walmart and ASOS CSV, Amazon JSON).

Hypothesis, derandomized. Files are arbitrary bytes, or well-formed exports whose cells hold odd text (quotes,
separators, newlines, NUL, any character, very long values) in UTF-8, UTF-8 with a BOM, cp1252 or UTF-16. The
properties, on `import_catalog_file` (what `manage.py import_catalog` runs):
- it raises nothing but CatalogSyncError (CatalogFileError, UnknownCatalogFormat) and then stores nothing;
- a product it reports as imported is stored as the importer parsed it (text cut as catalog_sync.text.clip says);
- products stored before stay unchanged when the file is refused.
Run on PostgreSQL too (DATABASE_URL): it refuses NUL and over-long text that SQLite stores.
"""

import csv
import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from catalog_sync.exceptions import CatalogSyncError
from catalog_sync.importers import asos, open_catalog, shopify, walmart, woocommerce
from catalog_sync.models import SKU_MAX_LENGTH, TITLE_MAX_LENGTH, Product
from catalog_sync.services.catalog import import_catalog_file
from catalog_sync.text import clip
from catalog_sync.types import ProductPayload
from merchants.models import Store
from merchants.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
_names = itertools.count()

cell_text = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(['"', '""', ",", ";", "\n", "\r\n", "a\x00b", "<b>x</b>", "12.50", "$1,299.00", "-3", "N/A"]),
    st.integers(min_value=250, max_value=1200).map(lambda n: "y" * n),
    st.decimals(min_value=0, max_value=10**6, places=2).map(str),
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
)
COLUMNS = {
    "woocommerce": (
        *woocommerce.REQUIRED_COLUMNS,
        "Sale price",
        "Published",
        "Categories",
        "Tags",
        "Stock",
        "Attribute 1 name",
        "Attribute 1 value(s)",
    ),
    "shopify": (
        *shopify.REQUIRED_COLUMNS,
        "Variant SKU",
        "Option1 Name",
        "Option1 Value",
        "Variant Inventory Qty",
        "Variant Compare At Price",
        "Image Src",
    ),
    "walmart": (*walmart.REQUIRED_COLUMNS, "SALE_PRICE", "LIST_PRICE", "CATEGORY", "BRAND", "IN_STOCK"),
    "asos": (*asos.REQUIRED_COLUMNS, "Categories", "Color"),
}
ENCODINGS = ["utf-8", "utf-8-sig", "cp1252", "utf-16"]


@st.composite
def csv_exports(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(sorted(COLUMNS)))
    columns = list(COLUMNS[fmt])
    rows = draw(st.lists(st.fixed_dictionaries(dict.fromkeys(columns, cell_text)), max_size=5))
    if fmt == "woocommerce":
        for number, row in enumerate(rows, start=1):
            row["Type"] = draw(st.sampled_from(["simple", "variable", "variation", row["Type"]]))
            row["ID"] = draw(st.sampled_from([str(number), row["ID"]]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writeheader()
    writer.writerows(rows)
    encoding = draw(st.sampled_from(ENCODINGS))
    return ".csv", buffer.getvalue().encode(encoding, errors="replace")


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), cell_text)
amazon_record = st.fixed_dictionaries(
    {},
    optional={
        "parent_asin": st.one_of(st.sampled_from(["B0A", "B0B", "B0C"]), json_scalar),
        "asin": json_scalar,
        "metadata": st.fixed_dictionaries(
            {}, optional={"title": json_scalar, "price": json_scalar, "store": json_scalar, "main_category": cell_text}
        )
        | json_scalar,
        "text": cell_text,
    },
)


@st.composite
def amazon_exports(draw: st.DrawFn) -> tuple[str, bytes]:
    records = draw(st.lists(amazon_record | json_scalar, max_size=5))
    if draw(st.booleans()):
        text = json.dumps(records, ensure_ascii=draw(st.booleans()))
    else:
        text = "\n".join(json.dumps(record) for record in records)
    if draw(st.booleans()):  # a truncated or spliced file
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:cut] + draw(st.sampled_from(["", "]", "{", '"', "\x00", "[[[[", "NaN"]))
    return draw(st.sampled_from([".json", ".jsonl"])), text.encode(draw(st.sampled_from(["utf-8", "utf-16"])))


arbitrary_files = st.tuples(
    st.sampled_from([".csv", ".json", ".txt"]),
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=100).map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"ID,Type\n\x00\x00\x00", b"[" * 5000, b"{" * 70]),
    ),
)


@pytest.fixture
def store() -> Store:
    return StoreFactory.create(platform=Store.Platform.WOOCOMMERCE)


def stored(store: Store) -> list[tuple[Any, ...]]:
    return sorted(Product.objects.filter(store=store).values_list("external_id", "title", "sku", "price"))


def check_import(store: Store, folder: Path, suffix: str, data: bytes) -> None:
    path = folder / f"catalog-{next(_names)}{suffix}"
    path.write_bytes(data)
    with transaction.atomic():
        Product.objects.create(store=store, external_id="kept", title="Kept as it was", sku="KEPT-1")
        before = stored(store)
        try:
            report = import_catalog_file(store=store, path=path)
        except CatalogSyncError as exc:
            event(f"refused: {type(exc).__name__}")
            assert str(exc)
            assert stored(store) == before
        else:
            parsed = {
                item.external_id: item
                for item in open_catalog(path, fmt=report.format)
                if isinstance(item, ProductPayload)
            }
            event(f"imported: {report.status}, {'some' if report.products else 'no'} products")
            rows = {row.external_id: row for row in Product.objects.filter(store=store).exclude(external_id="kept")}
            assert len(rows) == report.products_created
            assert set(rows) <= set(parsed)
            for external_id, row in rows.items():
                assert row.title == clip(parsed[external_id].title, TITLE_MAX_LENGTH)
                assert row.sku == clip(parsed[external_id].sku, SKU_MAX_LENGTH)
                assert row.price == parsed[external_id].price
            if "kept" not in parsed:
                assert Product.objects.get(store=store, external_id="kept").title == "Kept as it was"
        transaction.set_rollback(True)


@PROPERTY
@given(file=arbitrary_files)
def test_arbitrary_bytes_are_imported_or_refused_with_a_catalog_error(store, tmp_path, file):
    check_import(store, tmp_path, *file)


@PROPERTY
@given(file=csv_exports())
def test_a_csv_export_with_odd_cells_is_imported_as_parsed_or_refused(store, tmp_path, file):
    check_import(store, tmp_path, *file)


@PROPERTY
@given(file=amazon_exports())
def test_an_amazon_json_file_with_odd_records_is_imported_as_parsed_or_refused(store, tmp_path, file):
    check_import(store, tmp_path, *file)
