"""Catalog file importers: pure parsing of platform exports into ProductPayloads and Skip records.

`open_catalog(path)` detects the format and returns a CatalogReader; iterating it yields payloads and
skips lazily. Nothing here touches the database; catalog_sync.services upserts what comes out.
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from catalog_sync.exceptions import UnknownCatalogFormat
from catalog_sync.importers import amazon, asos, shopify, walmart, woocommerce
from catalog_sync.importers.base import FileSource, Item, ParseContext, Skip
from catalog_sync.types import ProductPayload

Parser = Callable[..., Iterator[Item]]

PARSERS: dict[str, Parser] = {
    "woocommerce": woocommerce.parse,
    "shopify": shopify.parse,
    "walmart": walmart.parse,
    "asos": asos.parse,
    "amazon": amazon.parse,
}
FORMATS = ("auto", *PARSERS)
_CSV_FORMATS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("woocommerce", woocommerce.REQUIRED_COLUMNS),
    ("shopify", shopify.REQUIRED_COLUMNS),
    ("walmart", walmart.REQUIRED_COLUMNS),
    ("asos", asos.REQUIRED_COLUMNS),
)
_JSON_SUFFIXES = {".json", ".jsonl", ".ndjson"}

__all__ = ["FORMATS", "CatalogReader", "ParseContext", "Skip", "detect_format", "open_catalog"]


def _looks_like_json(source: FileSource) -> bool:
    return source.head(4096).lstrip()[:1] in {"[", "{"}


def detect_format(source: FileSource) -> str:
    """Return the format of a catalog file from its extension and header; raise UnknownCatalogFormat."""
    if source.path.suffix.lower() in _JSON_SUFFIXES or _looks_like_json(source):
        if not _looks_like_json(source):
            raise UnknownCatalogFormat(f"{source.path.name} has a JSON extension but is not a JSON list or lines.")
        return "amazon"
    header = set(source.csv_header())
    for name, required in _CSV_FORMATS:
        if set(required) <= header:
            return name
    shown = ", ".join(sorted(header)[:12]) or "(empty)"
    raise UnknownCatalogFormat(
        f"Cannot tell the format of {source.path.name} from its header ({shown}); "
        f"pass --format with one of {', '.join(PARSERS)}."
    )


def _check_format(source: FileSource, fmt: str) -> None:
    if fmt == "amazon":
        if not _looks_like_json(source):
            raise UnknownCatalogFormat(f"{source.path.name} is not an Amazon JSON file (a JSON list or lines).")
        return
    required = dict(_CSV_FORMATS)[fmt]
    missing = [column for column in required if column not in set(source.csv_header())]
    if missing:
        raise UnknownCatalogFormat(f"{source.path.name} is not a {fmt} export: it has no {', '.join(missing)} column.")


class CatalogReader:
    """Iterate a catalog file as ProductPayloads and Skips, dropping duplicate ids and SKUs within the file."""

    def __init__(self, source: FileSource, fmt: str, context: ParseContext) -> None:
        self.source = source
        self.format = fmt
        self.context = context
        self._parser = PARSERS[fmt]

    @property
    def bytes_total(self) -> int:
        return self.source.bytes_total

    @property
    def bytes_read(self) -> int:
        return self.source.bytes_read

    def __enter__(self) -> "CatalogReader":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def __iter__(self) -> Iterator[ProductPayload | Skip]:
        seen_ids: set[str] = set()
        seen_skus: set[str] = set()
        for item in self._parser(self.source, context=self.context):
            if isinstance(item, Skip):
                yield item
                continue
            skus = [item.sku, *(variant.sku for variant in item.variants or ())] if self.format == "woocommerce" else []
            skus = [sku for sku in (skus or [item.sku]) if sku]
            duplicate = next((sku for sku in skus if sku in seen_skus), None)
            if duplicate is None and len(set(skus)) < len(skus):
                duplicate = next(sku for sku in skus if skus.count(sku) > 1)
            if duplicate is not None:
                yield Skip(row=None, reason="duplicate SKU", external_id=item.external_id, value=duplicate)
                continue
            if item.external_id in seen_ids:
                yield Skip(row=None, reason="duplicate id", external_id=item.external_id, value=item.external_id)
                continue
            seen_ids.add(item.external_id)
            seen_skus.update(skus)
            yield item


def open_catalog(
    path: str | Path, *, fmt: str = "auto", context: ParseContext | None = None, encoding: str | None = None
) -> CatalogReader:
    """Open a catalog file, vet its encoding, detect its format; raise CatalogFileError or UnknownCatalogFormat.

    The whole file is decoded strictly first (FileSource.check), so an undecodable or binary file is refused
    before a single row is imported.
    """
    if fmt not in FORMATS:
        raise UnknownCatalogFormat(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    source = FileSource(Path(path), encoding=encoding)
    source.check()
    if fmt == "auto":
        fmt = detect_format(source)
    else:
        _check_format(source, fmt)
    return CatalogReader(source, fmt, context or ParseContext())
