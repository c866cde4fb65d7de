from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog_sync.models import Product, SyncRun
from catalog_sync.tests.conftest import DATA
from recommendations.models import RecommendationList

pytestmark = pytest.mark.django_db


def test_import_catalog_prints_a_summary(store):
    # given
    out, err = StringIO(), StringIO()

    # when
    call_command("import_catalog", str(DATA / "asos_slice.csv"), store="demo", stdout=out, stderr=err)

    # then
    lines = out.getvalue().splitlines()
    assert lines[1:] == [
        "Products: 29 created, 0 updated.",
        "Variants: 0 created, 0 updated, 0 deleted.",
        "Skipped 1: duplicate SKU: 1 (e.g. '123274381').",
        "recommendations: rebuild queued for a worker (or run again with --build-now)",
    ]
    assert lines[0].startswith(f"Imported {DATA / 'asos_slice.csv'} as asos in ")
    assert Product.objects.get(store=store, external_id="116000789").price == 10.5  # "From  10.50"


def test_import_catalog_builds_the_lists_now_when_asked(store):
    # given
    out = StringIO()

    # when
    call_command("import_catalog", str(DATA / "asos_slice.csv"), store="demo", build_now=True, stdout=out)

    # then: one product list per imported product, one home list
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("recommendations: 29 product, ")
    assert RecommendationList.objects.filter(store=store, placement="product", source="local").count() == 29
    assert RecommendationList.objects.filter(store=store, placement="home", source="local").count() == 1


def test_import_catalog_with_an_explicit_format(store):
    # given
    out = StringIO()

    # when
    call_command("import_catalog", str(DATA / "walmart_slice.csv"), store="demo", format="walmart", stdout=out)

    # then
    assert "Products: 30 created, 0 updated." in out.getvalue()


def test_import_catalog_rejects_an_unknown_site_key(store):
    with pytest.raises(CommandError, match="No store has the site key 'nope'"):
        call_command("import_catalog", str(DATA / "asos_slice.csv"), store="nope")


def test_import_catalog_rejects_an_unreadable_file(store, tmp_path: Path):
    with pytest.raises(CommandError, match=r"Cannot read .*missing\.csv"):
        call_command("import_catalog", str(tmp_path / "missing.csv"), store="demo")
    assert SyncRun.objects.count() == 0


def test_import_catalog_rejects_an_unknown_format(store, tmp_path: Path):
    # given
    path = tmp_path / "mystery.csv"
    path.write_text("foo,bar\n1,2\n")

    # when / then
    with pytest.raises(CommandError, match=r"Cannot tell the format of mystery\.csv"):
        call_command("import_catalog", str(path), store="demo")
