"""Imports never corrupt silently: real encodings, undecodable and hostile files refused, failed runs exit non-zero."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from catalog_sync.importers import amazon
from catalog_sync.models import Product, SyncRun
from merchants.models import Store

pytestmark = pytest.mark.django_db

HEADER = "UNIQUE_ID,PRODUCT_NAME,LIST_PRICE,SALE_PRICE,BRAND,CATEGORY,IN_STOCK\n"
ROWS = "w1,Café crème,4.50,,Brûlerie,Food | Coffee,True\nw2,Thé vert,3.00,,Maison,Food | Tea,True\n"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def run_import(path: Path, **options: object) -> str:
    out = StringIO()
    call_command("import_catalog", str(path), store="demo", stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def titles(store: Store) -> dict[str, str]:
    return dict(Product.objects.filter(store=store).values_list("external_id", "title"))


def test_a_latin1_file_without_encoding_is_refused_before_it_touches_a_stored_title(store: Store, tmp_path: Path):
    # given products imported from the UTF-8 file
    run_import(write(tmp_path, "feed.csv", (HEADER + ROWS).encode()))
    runs = SyncRun.objects.count()
    # when the same feed comes as latin-1
    latin1 = write(tmp_path, "feed-latin1.csv", (HEADER + ROWS.replace("crème", "crème NEW")).encode("latin-1"))

    with pytest.raises(CommandError) as refused:
        run_import(latin1)

    # then nothing is written, not even a run, and the message says where and what to pass
    assert titles(store) == {"w1": "Café crème", "w2": "Thé vert"}
    assert SyncRun.objects.count() == runs
    message = str(refused.value)
    assert message.startswith("feed-latin1.csv is not valid utf-8 text at byte 75 (line 2); nothing was imported: ")
    assert "pass --encoding with the file's real encoding (it looks like " in message


def test_the_declared_encoding_reads_the_file_as_it_is(store: Store, tmp_path: Path):
    path = write(tmp_path, "feed.csv", (HEADER + ROWS).encode("latin-1"))

    run_import(path, encoding="latin-1")

    assert titles(store) == {"w1": "Café crème", "w2": "Thé vert"}


def test_a_declared_encoding_that_does_not_fit_is_refused(store: Store, tmp_path: Path):
    path = write(tmp_path, "feed.csv", (HEADER + "w1,Bad \x81 byte,1,,B,C,True\n").encode("latin-1"))

    with pytest.raises(CommandError, match=r"^feed.csv is not valid declared cp1252 text at byte 76 \(line 2\)"):
        run_import(path, encoding="cp1252")
    assert titles(store) == {}


def test_an_unknown_encoding_is_refused(store: Store, tmp_path: Path):
    with pytest.raises(CommandError, match=r"^Unknown encoding 'klingon'; pass a Python codec name such as cp1252\.$"):
        run_import(write(tmp_path, "feed.csv", (HEADER + ROWS).encode()), encoding="klingon")


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-32"])
def test_a_byte_order_mark_names_the_encoding(store: Store, tmp_path: Path, codec: str):
    run_import(write(tmp_path, "feed.csv", (HEADER + ROWS).encode(codec)))

    assert titles(store) == {"w1": "Café crème", "w2": "Thé vert"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "is not valid utf-8 text at byte 0 (line 1)"),
        (b"UNIQUE_ID,PRODUCT_NAME\nw1,ok\x00\x00\x00\n", "holds NUL characters (line 2): it is a binary file"),
    ],
)
def test_a_binary_file_gets_a_clear_message(store: Store, tmp_path: Path, data: bytes, message: str):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_import(write(tmp_path, "feed.csv", data))
    assert SyncRun.objects.count() == 0


def test_a_run_recorded_as_failed_exits_non_zero(store: Store, tmp_path: Path):
    path = write(tmp_path, "feed.csv", (HEADER + "w1,,1,,B,C,True\nw2,,2,,B,C,True\n").encode())

    with pytest.raises(CommandError, match=r"^The import failed: no product was imported \(sync run \d+\)"):
        run_import(path)

    assert SyncRun.objects.get().status == SyncRun.Status.FAILED


def test_deeply_nested_json_records_are_skipped_with_a_message(store: Store, tmp_path: Path):
    deep = "[" * 100_000 + "]" * 100_000
    good = {"parent_asin": "B1", "metadata": {"title": "Kettle\u0000", "price": 12.5}}
    path = write(tmp_path, "items.jsonl", f"{json.dumps(good)}\n{deep}\n".encode())

    out = run_import(path)

    assert titles(store) == {"B1": "Kettle"}
    assert "Skipped 1: broken JSON: 1 (e.g. 'The JSON nests deeper than 64 levels.')." in out


def test_a_json_file_of_only_hostile_records_fails_non_zero(store: Store, tmp_path: Path):
    path = write(tmp_path, "items.json", b'[{"parent_asin": "B1", "metadata": {"price": NaN}}, ' + b"[" * 5000 + b"]")

    with pytest.raises(CommandError, match="The import failed"):
        run_import(path)


def test_a_huge_json_record_stops_the_import_with_a_message(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(amazon, "MAX_RECORD_CHARS", 1000)
    huge = json.dumps({"parent_asin": "B2", "metadata": {"title": "x" * 300_000}})
    path = write(tmp_path, "items.jsonl", huge.encode())

    with pytest.raises(CommandError, match=r"^Record 0 of the file is larger than 0 MiB: not a product record"):
        run_import(path)
    assert SyncRun.objects.get().status == SyncRun.Status.FAILED


def test_a_huge_csv_field_is_a_skipped_row_not_a_crash(store: Store, tmp_path: Path):
    huge = "x" * (16 * 1024 * 1024 + 10)
    path = write(tmp_path, "feed.csv", (HEADER + f'w1,"{huge}",1,,B,C,True\n' + ROWS.split("\n")[1] + "\n").encode())

    out = run_import(path)

    assert titles(store) == {"w2": "Thé vert"}
    assert "unreadable CSV row: 1" in out


@pytest.mark.django_db(transaction=True)
def test_the_process_exits_1_with_one_line_and_no_traceback(store: Store, tmp_path: Path):
    path = write(tmp_path, "feed.csv", (HEADER + ROWS).encode("latin-1"))
    db = connection.settings_dict
    if db["ENGINE"].endswith("postgresql"):
        url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    else:
        url = f"sqlite:///{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "bitrecs_site.test_settings"}

    done = subprocess.run(
        [sys.executable, "manage.py", "import_catalog", str(path), "--store", "demo"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("CommandError: feed.csv is not valid utf-8 text at byte 75 (line 2)")
