"""What every importer shares: skip records, the parse context and a byte-counting CSV reader."""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from catalog_sync.exceptions import CatalogFileError
from catalog_sync.types import ProductPayload

# Product descriptions in real exports exceed csv's 128 KiB default field limit.
csv.field_size_limit(16 * 1024 * 1024)


@dataclass(frozen=True)
class Skip:
    """A row (or product) left out of the import, and why."""

    row: int | None
    reason: str
    external_id: str = ""
    value: str = ""


Item = ProductPayload | Skip


@dataclass(frozen=True)
class ParseContext:
    """Facts an importer cannot read from the file itself."""

    currency: str = ""
    # The storefront host, to build product URLs from handles when the export has none.
    store_domain: str = ""


class FileSource:
    """A catalog file opened as text, remembering how many bytes have been consumed (for progress)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.bytes_total = path.stat().st_size
        except OSError as exc:
            raise CatalogFileError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        if not path.is_file():
            raise CatalogFileError(f"{path} is not a file.")
        self._binary: IO[bytes] | None = None

    def open_text(self) -> IO[str]:
        """Open the file for reading as UTF-8 text (BOM dropped, undecodable bytes replaced)."""
        try:
            binary = self.path.open("rb")
        except OSError as exc:
            raise CatalogFileError(f"Cannot read {self.path}: {exc.strerror or exc}") from exc
        self._binary = binary
        return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")

    @property
    def bytes_read(self) -> int:
        binary = self._binary
        if binary is None or binary.closed:
            return self.bytes_total if binary is not None else 0
        return binary.tell()

    def head(self, size: int = 65536) -> str:
        """Return the first characters of the file, for format detection."""
        with self.open_text() as text:
            return text.read(size)

    def csv_rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Yield (line number, row) for each data row; values are never None; unreadable rows are skipped."""
        with self.open_text() as text:
            reader = csv.reader(text)
            try:
                header = [name.strip() for name in next(reader)]
            except StopIteration:
                return
            except csv.Error as exc:
                raise CatalogFileError(f"{self.path} is not a readable CSV file: {exc}") from exc
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error:
                    # The csv module resumes on the next line after an error.
                    yield reader.line_num, {_BROKEN_ROW: "1"}
                    continue
                if not any(value.strip() for value in values):
                    continue
                row = dict(zip(header, values, strict=False))
                for name in header[len(values) :]:
                    row[name] = ""
                yield reader.line_num, row

    def csv_header(self) -> list[str]:
        """Return the CSV header's column names."""
        with self.open_text() as text:
            try:
                return [name.strip() for name in next(csv.reader(text))]
            except (StopIteration, csv.Error):
                return []


_BROKEN_ROW = "\x00broken"


def is_broken_row(row: dict[str, str]) -> bool:
    """Tell whether csv_rows yielded a placeholder for a row the csv module could not parse."""
    return _BROKEN_ROW in row


def broken_row_skip(line: int) -> Skip:
    """Return the skip record of an unparseable CSV row."""
    return Skip(row=line, reason="unreadable CSV row")
