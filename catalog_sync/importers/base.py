"""What every importer shares: skip records, the parse context and a byte-counting, encoding-aware reader."""

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

from catalog_sync.exceptions import CatalogFileError
from catalog_sync.types import ProductPayload

# Product descriptions in real exports exceed csv's 128 KiB default field limit.
MAX_FIELD_CHARS = 16 * 1024 * 1024
csv.field_size_limit(MAX_FIELD_CHARS)
# Byte order marks, longest first (the UTF-32 LE mark starts with the UTF-16 LE one).
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHECK_CHUNK = 1 << 20


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


def _suggest_encoding(sample: bytes) -> str:
    """A guess at a sample's encoding for the error message ("" when it looks like no text at all)."""
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    return best.encoding if best is not None else ""


class FileSource:
    """A catalog file read as text in its real encoding, remembering how many bytes were consumed (for progress).

    The encoding is the one its byte order mark names, else the one declared (`--encoding`), else UTF-8. `check()`
    decodes the whole file strictly before anything is imported: a file that is not valid text in that encoding,
    or holds NUL characters (a binary file), is refused with a message that says where and what to pass instead.
    Nothing is ever replaced by U+FFFD.
    """

    def __init__(self, path: Path, *, encoding: str | None = None) -> None:
        self.path = path
        try:
            self.bytes_total = path.stat().st_size
        except OSError as exc:
            raise CatalogFileError(f"Cannot read {path}: {exc.strerror or exc}") from exc
        if not path.is_file():
            raise CatalogFileError(f"{path} is not a file.")
        self._binary: IO[bytes] | None = None
        self.declared_encoding = encoding
        self.encoding = self._choose_encoding(encoding)

    def _read_head(self, size: int) -> bytes:
        try:
            with self.path.open("rb") as binary:
                return binary.read(size)
        except OSError as exc:
            raise CatalogFileError(f"Cannot read {self.path}: {exc.strerror or exc}") from exc

    def _choose_encoding(self, declared: str | None) -> str:
        head = self._read_head(4)
        for bom, name in _BOMS:
            if head.startswith(bom):
                return name
        if not declared:
            return "utf-8"
        try:
            return codecs.lookup(declared).name
        except LookupError as exc:
            raise CatalogFileError(f"Unknown encoding {declared!r}; pass a Python codec name such as cp1252.") from exc

    def check(self) -> None:
        """Decode the whole file strictly; raise CatalogFileError saying where it is not text in its encoding."""
        decoder = codecs.getincrementaldecoder(self.encoding)("strict")
        offset = 0
        lines = 1
        try:
            with self.path.open("rb") as binary:
                while chunk := binary.read(_CHECK_CHUNK):
                    try:
                        text = decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        self._refuse_undecodable(at=offset + exc.start, line=lines + chunk[: exc.start].count(b"\n"))
                    if "\x00" in text:
                        self._refuse_binary(line=lines + text[: text.index("\x00")].count("\n"), at=offset)
                    lines += text.count("\n")
                    offset += len(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            self._refuse_undecodable(at=offset, line=lines)
        except OSError as exc:
            raise CatalogFileError(f"Cannot read {self.path}: {exc.strerror or exc}") from exc

    def _sample(self, *, at: int) -> bytes:
        with self.path.open("rb") as binary:
            binary.seek(max(at - 2048, 0))
            return binary.read(4096)

    def _refuse_undecodable(self, *, at: int, line: int) -> NoReturn:
        guess = _suggest_encoding(self._sample(at=at))
        hint = (
            f"pass --encoding with the file's real encoding (it looks like {guess})"
            if guess
            else "it does not look like text at all: is it a CSV or JSON catalog export?"
        )
        named = f"declared {self.encoding}" if self.declared_encoding else self.encoding
        raise CatalogFileError(
            f"{self.path.name} is not valid {named} text at byte {at} (line {line}); nothing was imported: {hint}."
        )

    def _refuse_binary(self, *, line: int, at: int) -> NoReturn:
        guess = _suggest_encoding(self._sample(at=at))
        hint = f" (if it is text, it looks like {guess}: pass --encoding {guess})" if guess.startswith("utf_") else ""
        raise CatalogFileError(
            f"{self.path.name} holds NUL characters (line {line}): it is a binary file, not a CSV or JSON catalog "
            f"export; nothing was imported{hint}."
        )

    def open_text(self) -> IO[str]:
        """Open the file for reading as text in its encoding (BOM dropped, strict: check() has vetted it)."""
        try:
            binary = self.path.open("rb")
        except OSError as exc:
            raise CatalogFileError(f"Cannot read {self.path}: {exc.strerror or exc}") from exc
        self._binary = binary
        return io.TextIOWrapper(binary, encoding=self.encoding, errors="strict", newline="")

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
