"""Merchant rules applied to engine results at serve time (not baked into the index)."""

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from recommendations.engine.core import CatalogItem, Reason, ScoredItem


@dataclass(frozen=True)
class MerchantRules:
    """A store's rules for what may be shown. Prices compare with CatalogItem.price (items without one pass)."""

    require_in_stock: bool = True
    require_published: bool = True
    exclude_ids: frozenset[str] = frozenset()
    min_price: float | None = None
    max_price: float | None = None
    # Shown first, in this order, when they pass the other rules (and are not the query or in the cart).
    pinned_ids: tuple[str, ...] = ()


def apply_merchant_rules(
    results: Sequence[ScoredItem],
    *,
    lookup: Callable[[str], CatalogItem | None],
    rules: MerchantRules,
    limit: int,
    never_ids: Collection[str] = (),
) -> list[ScoredItem]:
    """Return at most limit results that pass the rules, pinned items first; unknown ids are dropped.

    lookup: item id -> CatalogItem (e.g. ``Recommender.item``). never_ids: the query and cart ids, which no
    rule (not even pinning) may bring back. Ask the engine for more than limit (say 2x) so rules can drop some.
    """

    def allowed(item_id: str) -> bool:
        return rejection_reason(item_id, lookup=lookup, rules=rules, never_ids=never_ids) is None

    top = max((r.score for r in results), default=0.0)
    pinned = [ScoredItem(id=x, score=top, reason=Reason.PINNED) for x in _unique(rules.pinned_ids)]
    out: list[ScoredItem] = []
    seen: set[str] = set()
    for result in (*pinned, *results):
        if len(out) >= limit:
            break
        if result.id in seen or not allowed(result.id):
            continue
        seen.add(result.id)
        out.append(result)
    return out


class Rejection:
    """Why a rule keeps a candidate out of a list (the values are what the portal explains)."""

    QUERY_OR_CART = "query_or_cart"
    EXCLUDED = "excluded"
    UNKNOWN = "unknown"
    OUT_OF_STOCK = "out_of_stock"
    UNPUBLISHED = "unpublished"
    BELOW_MIN_PRICE = "below_min_price"
    ABOVE_MAX_PRICE = "above_max_price"


def rejection_reason(
    item_id: str,
    *,
    lookup: Callable[[str], CatalogItem | None],
    rules: MerchantRules,
    never_ids: Collection[str] = (),
) -> str | None:
    """The first rule that keeps item_id out (a Rejection value), or None when every rule lets it through."""
    if item_id in never_ids:
        return Rejection.QUERY_OR_CART
    if item_id in rules.exclude_ids:
        return Rejection.EXCLUDED
    item = lookup(item_id)
    if item is None:
        return Rejection.UNKNOWN
    if rules.require_in_stock and not item.in_stock:
        return Rejection.OUT_OF_STOCK
    if rules.require_published and not item.is_published:
        return Rejection.UNPUBLISHED
    if item.price is not None:
        if rules.min_price is not None and item.price < rules.min_price:
            return Rejection.BELOW_MIN_PRICE
        if rules.max_price is not None and item.price > rules.max_price:
            return Rejection.ABOVE_MAX_PRICE
    return None


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))
