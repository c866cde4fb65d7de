"""One normaliser for JSON from outside: strict parsing of bytes into values PostgreSQL's jsonb and text accept.

Every intake of outside JSON (webhooks, callbacks, widget events, validator answers, catalog files, DRF bodies)
calls `parse_json` (or `parse_json_object`) on the raw bytes, or `normalise_json` on a value some library already
decoded. The answer is either a value that PostgreSQL stores as it is, or a `JsonIntakeError` that the error path
(bitrecs_site.exception_handler) answers with a 4xx JSON body. The rules:

- Bytes must be UTF-8 (a leading UTF-8 BOM is dropped); anything else is refused, never guessed or replaced.
- `NaN`, `Infinity`, `-Infinity` and numbers that overflow a float are refused: JSON has no such numbers, and
  jsonb cannot hold them. Integers longer than Python's 4,300 digits are refused too.
- Nesting deeper than `max_depth` (64) is refused, whatever the interpreter's recursion limit.
- Bodies longer than `max_bytes` are refused with 413.
- A repeated key keeps its last value: what JavaScript's JSON.parse and PostgreSQL's jsonb do, so a platform's
  payload means the same here as where it was written.
- `\\u0000` is stripped from strings and keys. PostgreSQL refuses it in both text and jsonb, and it carries no
  meaning in text a person reads (browsers drop it). Stripping rather than replacing keeps an identifier such as a
  SKU matching its other copies: `"AB\\u0000C"` becomes `"ABC"`, not `"AB\\ufffdC"`. When stripping makes two keys
  equal, the key that had no NUL keeps its value.
- A lone UTF-16 surrogate (`"\\ud800"` unpaired) cannot be encoded as UTF-8, so it becomes U+FFFD: it is already
  a broken character, and there is no character to keep.
"""

import json
import math
import re
from typing import Any, Final

DEFAULT_MAX_BYTES: Final = 5 * 1024 * 1024
DEFAULT_MAX_DEPTH: Final = 64
_NUL: Final = "\x00"
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
# What json.loads can only produce from an escape: NUL (\u0000) and surrogates (\ud800-\udfff). Text without
# either (and with no more brackets than the depth allowed) decodes to a value that needs no normalising.
_ESCAPE_TO_NORMALISE: Final = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


class JsonIntakeError(ValueError):
    """Outside JSON that cannot be stored: `status_code`, `code` and `message` are what the sender sees."""

    status_code = 400
    code = "invalid_json"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class JsonTooLarge(JsonIntakeError):
    """A JSON body over its size limit."""

    status_code = 413
    code = "payload_too_large"


def _reject_constant(name: str) -> Any:
    raise JsonIntakeError(f"{name} is not a number JSON allows.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonIntakeError(f"The number {text[:40]} is too large.")
    return value


def clean_text(value: str) -> str:
    """Return a string PostgreSQL text accepts: NUL stripped, lone surrogates replaced by U+FFFD."""
    if _NUL in value:
        value = value.replace(_NUL, "")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = _SURROGATE.sub("\ufffd", value)
    return value


def normalise_json(value: Any, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Return a decoded JSON value as PostgreSQL stores it (see the module rules); raise JsonIntakeError."""
    return _normalise(value, depth=1, max_depth=max_depth)


def _normalise(value: Any, *, depth: int, max_depth: int) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise JsonIntakeError(f"{value} is not a number JSON allows.")
        return value
    if depth > max_depth:
        raise JsonIntakeError(f"The JSON nests deeper than {max_depth} levels.")
    if isinstance(value, dict):
        clean: dict[str, Any] = {}
        stripped: list[tuple[str, Any]] = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise JsonIntakeError("JSON object keys must be strings.")
            normalised = _normalise(item, depth=depth + 1, max_depth=max_depth)
            new_key = clean_text(key)
            if new_key == key:
                clean[key] = normalised
            else:
                stripped.append((new_key, normalised))
        for key, item in stripped:
            clean.setdefault(key, item)
        return clean
    if isinstance(value, list | tuple):
        return [_normalise(item, depth=depth + 1, max_depth=max_depth) for item in value]
    raise JsonIntakeError(f"A {type(value).__name__} is not a JSON value.")


def parse_json(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Parse outside JSON strictly and normalise it for PostgreSQL (see the module rules); raise JsonIntakeError."""
    size = len(data.encode("utf-8", "surrogatepass")) if isinstance(data, str) else len(data)
    if size > max_bytes:
        raise JsonTooLarge(f"The JSON is {size} bytes; the limit is {max_bytes} bytes.")
    if isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
        if raw.startswith(_UTF8_BOM):
            raw = raw[len(_UTF8_BOM) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonIntakeError(f"The body is not UTF-8 text (byte {exc.start}); send JSON in UTF-8.") from exc
    else:
        text = data
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise JsonIntakeError(f"The JSON nests deeper than {max_depth} levels.") from exc
    except JsonIntakeError:
        raise
    except ValueError as exc:  # json.JSONDecodeError, and integers over Python's digit limit
        raise JsonIntakeError(f"The body is not valid JSON: {exc}.") from exc
    if text.count("[") + text.count("{") <= max_depth and _ESCAPE_TO_NORMALISE.search(text) is None:
        # Nothing to strip or replace, and no deeper than allowed: the walk would return the value unchanged
        # (json.loads refuses raw control characters, and strict UTF-8 decoding refuses raw surrogates).
        return value
    return normalise_json(value, max_depth=max_depth)


def parse_json_object(
    data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> dict[str, Any]:
    """Parse outside JSON that must be an object (see parse_json); raise JsonIntakeError."""
    value = parse_json(data, max_bytes=max_bytes, max_depth=max_depth)
    if not isinstance(value, dict):
        raise JsonIntakeError("The body must be a JSON object.")
    return value
