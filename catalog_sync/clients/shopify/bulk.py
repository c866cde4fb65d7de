"""Shopify bulk exports: the JSONL file streamed chunk by chunk and its variant rows joined to their products.

`read_bulk_products` turns a download into products (with their variants) and skipped records. A grouped file
(each product's rows right after it) is joined with one product in memory; any other order is spilled to a
temporary SQLite file on disk and joined from there, so memory stays bounded either way.
"""

import json
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bitrecs_site.http import SHOPIFY_GID_PATTERN, shopify_gid_number
from catalog_sync.clients import Malformed, SkippedRecord
from catalog_sync.clients.shopify.mapping import node_external_id, product_payload
from catalog_sync.types import ProductPayload
from merchants.exceptions import PlatformRejected, PlatformUnavailable

# Bulk files: read in chunks; a single JSONL line longer than this is reported and dropped.
BULK_CHUNK_BYTES = 64 * 1024
MAX_BULK_LINE_BYTES = 4 * 1024 * 1024
# Where the id and the parent id sit in a row's text, to name a row that is not valid JSON.
_ROW_ID = re.compile(rb'"id"\s*:\s*"(' + SHOPIFY_GID_PATTERN.encode() + rb")")
_ROW_PARENT = re.compile(rb'"__parentId"\s*:\s*"(' + SHOPIFY_GID_PATTERN.encode() + rb")")


class BulkFileNotGrouped(PlatformRejected):
    """A variant row arrived outside its product's group in a file read as grouped; read it with grouped=False."""


@dataclass(frozen=True)
class BulkStatus:
    """A bulk operation's state: `url` is set once status is COMPLETED (and expires after 7 days)."""

    id: str
    status: str
    url: str | None
    object_count: int
    error_code: str | None
    partial_data_url: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.status in {"COMPLETED", "FAILED", "CANCELED", "EXPIRED"}


def read_bulk_products(
    response: requests.Response, *, currency: str, grouped: bool
) -> Iterator[ProductPayload | SkippedRecord]:
    """Stream a bulk file's products and skipped records (see `ShopifyAdminClient.iter_bulk_products`)."""
    lines = _iter_jsonl_lines(response)
    if grouped:
        yield from _join_grouped(lines, currency)
    else:
        yield from _join_spilled(lines, currency)


@dataclass(frozen=True)
class _Line:
    number: int
    raw: bytes
    too_long: bool = False


def _iter_jsonl_lines(response: requests.Response) -> Iterator[_Line]:
    """The file's lines, read chunk by chunk; a line over MAX_BULK_LINE_BYTES comes back empty and too_long."""
    buffer = bytearray()
    too_long = False
    number = 0
    try:
        for chunk in response.iter_content(chunk_size=BULK_CHUNK_BYTES):
            start = 0
            while True:
                end = chunk.find(b"\n", start)
                piece = chunk[start:] if end < 0 else chunk[start:end]
                if not too_long:
                    buffer += piece
                    if len(buffer) > MAX_BULK_LINE_BYTES:
                        too_long = True
                        head = bytes(buffer[:512])
                        buffer.clear()
                        buffer += head
                if end < 0:
                    break
                number += 1
                yield _Line(number, bytes(buffer), too_long)
                buffer.clear()
                too_long = False
                start = end + 1
    except (requests.RequestException, OSError) as exc:
        raise PlatformUnavailable(f"The bulk file download broke off: {type(exc).__name__}.") from exc
    if buffer or too_long:
        yield _Line(number + 1, bytes(buffer), too_long)


@dataclass
class _Row:
    """One parsed JSONL row, or why it could not be parsed (then `kind`/`gid` come from a look at its text)."""

    data: dict[str, Any] | None
    kind: str = ""
    gid: str = ""
    parent: str = ""
    error: str = ""


def _parse_row(line: _Line) -> _Row | None:
    raw = line.raw.strip()
    if not raw and not line.too_long:
        return None
    if not line.too_long:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
            data = None
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            parent = data.get("__parentId")
            kind = "child" if parent is not None else "product"
            return _Row(data, kind=kind, gid=data["id"], parent=parent if isinstance(parent, str) else "")
    head = raw[:2048]
    id_match = _ROW_ID.search(head)
    parent_match = _ROW_PARENT.search(head)
    kind = ""
    if parent_match or (id_match and id_match.group(2) != b"Product"):
        kind = "child"
    elif id_match:
        kind = "product"
    reason = "line too long" if line.too_long else "malformed or truncated JSON line"
    return _Row(
        None,
        kind=kind,
        gid=id_match.group(1).decode() if id_match else "",
        parent=parent_match.group(1).decode() if parent_match else "",
        error=f"{reason} (line {line.number})",
    )


@dataclass
class _Pending:
    node: dict[str, Any]
    variants: list[dict[str, Any]] = field(default_factory=list)
    lost_variant: str = ""


def _finish(pending: _Pending, currency: str) -> ProductPayload | SkippedRecord:
    external_id = node_external_id(pending.node)
    if pending.lost_variant:
        return SkippedRecord(external_id, f"a variant row was unreadable ({pending.lost_variant})")
    try:
        return product_payload(pending.node, pending.variants, currency)
    except Malformed as exc:
        return SkippedRecord(external_id, str(exc))


def _join_grouped(lines: Iterator[_Line], currency: str) -> Iterator[ProductPayload | SkippedRecord]:
    pending: _Pending | None = None
    # The product whose rows are being dropped after its own row was unreadable ("?" when its id is unknown).
    dropped_parent = ""
    for line in lines:
        row = _parse_row(line)
        if row is None:
            continue
        if row.data is None:
            yield SkippedRecord(shopify_gid_number(row.gid or row.parent), row.error)
            if row.kind == "product":
                if pending is not None:
                    yield _finish(pending, currency)
                pending, dropped_parent = None, row.gid
            elif pending is not None and row.parent in ("", pending.node["id"]):
                pending.lost_variant = row.error
                dropped_parent = "?" if not row.kind else dropped_parent
            elif not row.parent:
                dropped_parent = "?"
            continue
        if row.kind == "product":
            if pending is not None:
                yield _finish(pending, currency)
            pending, dropped_parent = _Pending(row.data), ""
        elif pending is not None and row.parent == pending.node["id"]:
            pending.variants.append(row.data)
        elif row.parent and row.parent == dropped_parent:
            continue
        elif dropped_parent == "?":
            dropped_parent = row.parent
        else:
            raise BulkFileNotGrouped(
                f"Variant row {row.gid} (line {line.number}) is not under its product {row.parent}: "
                "the bulk file is not grouped."
            )
    if pending is not None:
        yield _finish(pending, currency)


def _join_spilled(lines: Iterator[_Line], currency: str) -> Iterator[ProductPayload | SkippedRecord]:
    with tempfile.TemporaryDirectory(prefix="bitrecs-bulk-") as directory:
        db = sqlite3.connect(Path(directory) / "rows.sqlite3")
        try:
            db.executescript(
                """
                PRAGMA journal_mode = OFF;
                PRAGMA synchronous = OFF;
                CREATE TABLE products (seq INTEGER PRIMARY KEY, gid TEXT UNIQUE, body TEXT);
                CREATE TABLE variants (seq INTEGER PRIMARY KEY, parent TEXT, body TEXT);
                CREATE TABLE lost (parent TEXT PRIMARY KEY, reason TEXT);
                """
            )
            batch: list[tuple[str, str, str]] = []
            for line in lines:
                row = _parse_row(line)
                if row is None:
                    continue
                if row.data is None:
                    yield SkippedRecord(shopify_gid_number(row.gid or row.parent), row.error)
                    if row.kind == "product" and row.gid:
                        db.execute("INSERT OR IGNORE INTO lost VALUES (?, ?)", (row.gid, row.error))
                    elif row.parent:
                        db.execute("INSERT OR IGNORE INTO lost VALUES (?, ?)", (row.parent, row.error))
                    continue
                table = "products" if row.kind == "product" else "variants"
                batch.append((table, row.gid if table == "products" else row.parent, json.dumps(row.data)))
                if len(batch) >= 1000:
                    _spill(db, batch)
            _spill(db, batch)
            lost = dict(db.execute("SELECT parent, reason FROM lost"))
            products = db.execute("SELECT gid, body FROM products ORDER BY seq")
            for gid, body in products:
                node = json.loads(body)
                if gid in lost:
                    yield SkippedRecord(
                        node_external_id(node), f"its row or a variant row was unreadable ({lost[gid]})"
                    )
                    continue
                pending = _Pending(node)
                pending.variants = [
                    json.loads(variant)
                    for (variant,) in db.execute("SELECT body FROM variants WHERE parent = ? ORDER BY seq", (gid,))
                ]
                yield _finish(pending, currency)
            orphans = db.execute("SELECT DISTINCT parent FROM variants WHERE parent NOT IN (SELECT gid FROM products)")
            for (parent,) in orphans:
                if parent not in lost:
                    yield SkippedRecord(shopify_gid_number(parent), "variant rows without their product row")
        finally:
            db.close()


def _spill(db: sqlite3.Connection, batch: list[tuple[str, str, str]]) -> None:
    products = [(gid, body) for table, gid, body in batch if table == "products"]
    variants = [(parent, body) for table, parent, body in batch if table == "variants"]
    db.executemany("INSERT OR REPLACE INTO products (gid, body) VALUES (?, ?)", products)
    db.executemany("INSERT INTO variants (parent, body) VALUES (?, ?)", variants)
    batch.clear()
