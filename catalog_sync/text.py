"""Text normalisation shared by the importers and the platform clients."""

import re
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "footer"),
        *("h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section"),
        *("table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"),
    }
)
_SKIPPED_TAGS = frozenset({"script", "style", "template", "noscript"})
_WHITESPACE = re.compile(r"\s+")
_PRICE_PREFIX = re.compile(r"^(?:from|starting at|now)\s*", re.IGNORECASE)
_CURRENCY_SYMBOLS = "$£€¥₹"
# How exports spell "no price": Amazon's metadata uses "None" and an em dash.
_ABSENT = frozenset({"", "none", "null", "nan", "n/a", "na", "-", "\u2013", "\u2014"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def collapse_whitespace(value: str) -> str:
    """Return the value with runs of whitespace turned into single spaces, stripped."""
    return _WHITESPACE.sub(" ", value).strip()


def html_to_text(value: str | None) -> str:
    """Return the plain text of an HTML fragment: tags removed, entities decoded, whitespace collapsed."""
    if not value:
        return ""
    if "<" not in value and "&" not in value:
        return collapse_whitespace(value)
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    return collapse_whitespace("".join(parser.parts))


def clip(value: str, max_length: int) -> str:
    """Return the value cut to at most max_length characters."""
    return value if len(value) <= max_length else value[: max_length - 1].rstrip() + "…"


class PriceError(ValueError):
    """A price that is present but not a number."""


def parse_price(value: str | float | int | None) -> Decimal | None:
    """Return the price as a Decimal with two places, None when absent; raise PriceError when not a number.

    Accepts "12.5", "$1,299.00", "From 70.00" (a price range's lower bound) and "None"/"N/A" as absent.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise PriceError(str(value))
    text = repr(value) if isinstance(value, int | float) else collapse_whitespace(value)
    if text.lower() in _ABSENT:
        return None
    cleaned = _PRICE_PREFIX.sub("", text).strip(_CURRENCY_SYMBOLS + " ").replace(",", "")
    try:
        price = Decimal(cleaned)
    except InvalidOperation:
        raise PriceError(text) from None
    if not price.is_finite() or price < 0 or price >= Decimal("10000000000"):
        raise PriceError(text)
    return price.quantize(Decimal("0.01"))


def parse_int(value: str | None) -> int | None:
    """Return an integer from "12", "12.0" or "", None when absent or not a number."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        return int(Decimal(text))
    except (InvalidOperation, ValueError, OverflowError):
        return None


def parse_bool(value: str | None, *, default: bool = True) -> bool:
    """Return the truth of "1"/"true"/"yes"/"instock" style flags; the default when empty."""
    text = (value or "").strip().lower()
    if not text:
        return default
    return text in {"1", "true", "yes", "y", "t", "instock", "in stock", "backorder", "onbackorder"}


def split_list(value: str | None, *, separator: str = ",") -> list[str]:
    """Return the non-empty, stripped, de-duplicated items of a separated list, in order."""
    items: list[str] = []
    for raw in (value or "").split(separator):
        item = html_to_text(raw)
        if item and item not in items:
            items.append(item)
    return items
