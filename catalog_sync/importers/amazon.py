"""Amazon Reviews 2023 records (a JSON list or JSON lines): the catalog is the distinct parent_asin items."""

import re
from collections.abc import Iterator
from typing import IO, Any

from bitrecs_site.json_intake import JsonIntakeError, parse_json
from catalog_sync.exceptions import CatalogFileError
from catalog_sync.importers.base import FileSource, Item, ParseContext, Skip
from catalog_sync.text import PriceError, html_to_text, parse_price
from catalog_sync.types import ProductPayload

DEFAULT_CURRENCY = "USD"
_CHUNK = 1 << 16
_OUTSIDE_STRING = re.compile(r'[{}\[\]"]')
_INSIDE_STRING = re.compile(r'["\\]')
_SCALAR_END = re.compile(r"[,\]\s]")
# One record of the file, in characters: far beyond a real product record (a few KiB), and a bound on memory.
MAX_RECORD_CHARS = 16 * 1024 * 1024


class BrokenJson:
    """A top-level element of the file that is not valid JSON."""

    def __init__(self, message: str) -> None:
        self.message = message


def parse(source: FileSource, *, context: ParseContext) -> Iterator[Item]:
    """Yield one payload per distinct parent_asin (metadata of its first record), or a Skip per bad record."""
    emitted: set[str] = set()
    with source.open_text() as text:
        for index, record in iter_json_records(text):
            if isinstance(record, BrokenJson):
                yield Skip(row=index, reason="broken JSON", value=record.message)
                continue
            if not isinstance(record, dict):
                yield Skip(row=index, reason="not a JSON object")
                continue
            external_id = str(record.get("parent_asin") or record.get("asin") or "").strip()
            if not external_id:
                yield Skip(row=index, reason="missing id")
                continue
            if external_id in emitted:
                continue  # another review of the same item
            metadata = record.get("metadata")
            metadata = metadata if isinstance(metadata, dict) else {}
            # Item text comes from product metadata only, never from review text.
            title = html_to_text(_text(metadata.get("title")))
            if not title:
                yield Skip(row=index, reason="missing title", external_id=external_id)
                continue
            try:
                price = parse_price(_text(metadata.get("price")) if metadata.get("price") is not None else None)
            except PriceError as exc:
                yield Skip(row=index, reason="non-numeric price", external_id=external_id, value=str(exc))
                continue
            emitted.add(external_id)
            yield ProductPayload(
                external_id=external_id,
                title=title,
                sku=external_id,
                url=f"https://www.amazon.com/dp/{external_id}",
                vendor=html_to_text(_text(metadata.get("store"))),
                category_path=html_to_text(_text(metadata.get("main_category"))),
                price=price,
                currency=context.currency or DEFAULT_CURRENCY,
            )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def iter_json_records(text: IO[str]) -> Iterator[tuple[int, Any]]:
    """Yield (index, value) for each element of a top-level JSON list, or each value of a JSON-lines file.

    Elements are found by scanning brackets and strings, then decoded one by one, so only one element is
    in memory at a time and a malformed element yields a BrokenJson instead of stopping the rest.
    """
    buffer = ""
    position = 0
    eof = False
    index = 0

    def fill() -> bool:
        nonlocal buffer, position, eof
        chunk = text.read(_CHUNK)
        if not chunk:
            eof = True
            return False
        buffer = buffer[position:] + chunk
        position = 0
        return True

    fill()
    while True:
        while position < len(buffer) and buffer[position].isspace():
            position += 1
        if position >= len(buffer):
            if not fill():
                return
            continue
        break
    if buffer[position] == "[":
        position += 1
    elif buffer[position] != "{":
        raise CatalogFileError("The file is neither a JSON list nor JSON lines.")
    while True:
        while position < len(buffer) and (buffer[position].isspace() or buffer[position] == ","):
            position += 1
        if position >= len(buffer):
            if not fill():
                return
            continue
        if buffer[position] == "]":
            return
        end = _element_end(buffer, position)
        while end is None and not eof:
            if len(buffer) - position > MAX_RECORD_CHARS:
                raise CatalogFileError(
                    f"Record {index} of the file is larger than {MAX_RECORD_CHARS // (1024 * 1024)} MiB: "
                    "not a product record; the import stopped there."
                )
            fill()
            end = _element_end(buffer, position)
        if end is None:
            yield index, BrokenJson("the file ends inside an element")
            return
        element = buffer[position:end]
        position = end
        try:
            # The one JSON normaliser: no NaN, bounded depth, NUL stripped, lone surrogates replaced.
            yield index, parse_json(element, max_bytes=4 * MAX_RECORD_CHARS)
        except JsonIntakeError as exc:
            yield index, BrokenJson(exc.message)
        index += 1


def _element_end(buffer: str, start: int) -> int | None:
    """Return the index just past the JSON element starting at start, or None if the buffer ends first."""
    if buffer[start] not in "{[":
        match = _SCALAR_END.search(buffer, start)
        return match.start() if match else None
    depth = 0
    position = start
    while True:
        match = _OUTSIDE_STRING.search(buffer, position)
        if match is None:
            return None
        char = match.group()
        position = match.end()
        if char == '"':
            while True:
                inner = _INSIDE_STRING.search(buffer, position)
                if inner is None:
                    return None
                position = inner.end()
                if inner.group() == "\\":
                    position += 1  # skip the escaped character
                    if position > len(buffer):
                        return None
                else:
                    break
        elif char in "{[":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return position
