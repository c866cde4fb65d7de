"""How the reference miner answers a request: an LLM through `subnet.miner.providers`, checked and topped up,
or the offline strategy alone.

The offline strategy (shared with the validator's offline pool) is deterministic text similarity
over the request's `context` (TF-IDF cosine over words and character trigrams of product names): no
network, no model, same answer for the same request.
"""

import logging
import math
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Final

from subnet.miner.prompt import (
    SYSTEM_PROMPT,
    build_prompt,
    cart_skus,
    clean_name,
    clean_reason,
    parse_items,
    select_items,
)
from subnet.miner.providers import ChatProvider, ProviderError
from subnet.types import MAX_NUM_RESULTS
from subnet.validator.catalog import CatalogEntry, load_items

logger = logging.getLogger(__name__)

OFFLINE_MODEL: Final = "bitrecs/offline-text-similarity"
# Above this many products the prompt only lists the ones most like the query (checks still use all).
MAX_PROMPT_PRODUCTS: Final = 400
_WORD_RE: Final = re.compile(r"[a-z0-9]{2,}")

__all__ = [
    "MAX_PROMPT_PRODUCTS",
    "OFFLINE_MODEL",
    "Recommendation",
    "context_entries",
    "recommend",
    "recommend_similar",
]


@dataclass(frozen=True)
class Recommendation:
    """A miner's answer before encoding: `items` are `{sku, name, price, reason}` dicts from the context.

    `models_used` names the LLM, followed by OFFLINE_MODEL when offline picks topped the answer up (or
    OFFLINE_MODEL alone). `fallback` says why offline picks were needed, `rejected` what the checks dropped.
    """

    items: list[dict[str, str]]
    models_used: list[str]
    fallback: str = ""
    rejected: list[str] = field(default_factory=list)


def context_entries(context: str) -> list[CatalogEntry]:
    """Return every object of a request's context that has a SKU, in order, names and prices as given."""
    return [
        CatalogEntry(sku=str(item["sku"]), name=str(item.get("name") or ""), price=str(item.get("price") or ""))
        for item in load_items(context)
        if isinstance(item, dict) and item.get("sku")
    ]


def _features(text: str) -> Counter[str]:
    words = _WORD_RE.findall(text.lower())
    features: Counter[str] = Counter(f"w:{word}" for word in words)
    for word in words:
        padded = f" {word} "
        features.update(f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2))
    return features


def recommend_similar(*, entries: Sequence[CatalogEntry], query: str, limit: int) -> list[dict[str, str]]:
    """Return up to `limit` products most like the query product (its name, or the query text when its
    SKU is not in the catalog), by TF-IDF cosine over words and character trigrams; never the query SKU,
    one per SKU, ties broken by name then SKU."""
    query_key = query.strip().casefold()
    query_entry = next((entry for entry in entries if entry.sku.casefold() == query_key), None)
    query_text = query_entry.name if query_entry else query
    unique: dict[str, CatalogEntry] = {}
    for entry in entries:
        if entry.sku.casefold() != query_key:
            unique.setdefault(entry.sku.casefold(), entry)
    candidates = list(unique.values())
    vectors = [_features(entry.name) for entry in candidates]
    document_frequency: Counter[str] = Counter()
    for vector in vectors:
        document_frequency.update(vector.keys())
    total = len(candidates) + 1

    def weighted(vector: Counter[str]) -> dict[str, float]:
        weights = {f: (1 + math.log(n)) * math.log(total / (1 + document_frequency[f])) for f, n in vector.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {f: w / norm for f, w in weights.items()}

    query_vector = weighted(_features(query_text))
    query_words = {f[2:] for f in query_vector if f.startswith("w:")}
    scored = []
    for entry, vector in zip(candidates, vectors, strict=True):
        weights = weighted(vector)
        score = sum(weight * weights.get(feature, 0.0) for feature, weight in query_vector.items())
        scored.append((-score, entry.name, entry.sku, entry))
    scored.sort(key=lambda row: row[:3])
    picks = []
    for _, _, _, entry in scored[:limit]:
        shared = sorted(query_words & set(_WORD_RE.findall(entry.name.lower())))
        reason = f"Like {query_text}: shares {', '.join(shared[:3])}" if shared else f"Goes with {query_text}"
        picks.append({"sku": entry.sku, "name": entry.name, "price": entry.price, "reason": reason})
    return picks


def _offline_picks(
    *, entries: Sequence[CatalogEntry], query: str, limit: int, exclude: Collection[str], avoid: Collection[str]
) -> list[dict[str, str]]:
    """Return up to `limit` offline picks not in `exclude`, preferring products not in `avoid` (the cart)."""
    excluded = {sku.casefold() for sku in exclude}
    avoided = {sku.casefold() for sku in avoid}
    ranked = [
        pick
        for pick in recommend_similar(entries=entries, query=query, limit=len(entries))
        if pick["sku"].casefold() not in excluded
    ]
    ranked.sort(key=lambda pick: pick["sku"].casefold() in avoided)  # stable: similarity order kept within groups
    return [
        {**pick, "name": clean_name(pick["name"]), "reason": clean_reason(pick["reason"], fallback="Similar product")}
        for pick in ranked[:limit]
    ]


def recommend(
    *,
    query: str,
    context: str,
    num_results: int,
    provider: ChatProvider | None,
    user: str | None = None,
    timeout: float | None = None,
) -> Recommendation:
    """Return `num_results` products from the context for the query (fewer only if the context has fewer).

    With a provider, ask the LLM (one call, at most `timeout` seconds) and keep its valid picks; any
    provider error, or fewer valid picks than asked for, is made up from the offline strategy.
    """
    entries = context_entries(context)
    wanted = max(0, min(num_results, MAX_NUM_RESULTS))
    cart = cart_skus(user)
    if wanted == 0 or not entries:
        return Recommendation(items=[], models_used=[provider.model if provider else OFFLINE_MODEL])
    if provider is None:
        items = _offline_picks(entries=entries, query=query, limit=wanted, exclude=(), avoid=cart)
        return Recommendation(items=items, models_used=[OFFLINE_MODEL])

    prompt_entries = _prompt_entries(entries=entries, query=query)
    prompt = build_prompt(query=query, entries=prompt_entries, num_results=wanted, cart=cart, user=user)
    try:
        completion = provider.complete(system=SYSTEM_PROMPT, user=prompt, timeout=timeout)
    except ProviderError as exc:
        logger.warning("miner.llm_failed", extra={"provider": provider.name, "error": str(exc)})
        items = _offline_picks(entries=entries, query=query, limit=wanted, exclude=(), avoid=cart)
        return Recommendation(items=items, models_used=[OFFLINE_MODEL], fallback=str(exc))

    selection = select_items(
        items=parse_items(completion.text), entries=entries, query=query, num_results=wanted, avoid=cart
    )
    items = list(selection.items)
    fallback = ""
    models_used = [completion.model]
    if len(items) < wanted:
        fallback = f"{provider.name} gave {len(items)} valid of {wanted} products"
        items += _offline_picks(
            entries=entries, query=query, limit=wanted - len(items), exclude=[item["sku"] for item in items], avoid=cart
        )
        models_used.append(OFFLINE_MODEL)
    return Recommendation(items=items, models_used=models_used, fallback=fallback, rejected=selection.rejected)


def _prompt_entries(*, entries: Sequence[CatalogEntry], query: str) -> Sequence[CatalogEntry]:
    if len(entries) <= MAX_PROMPT_PRODUCTS:
        return entries
    keep = {pick["sku"] for pick in recommend_similar(entries=entries, query=query, limit=MAX_PROMPT_PRODUCTS)}
    query_key = query.strip().casefold()
    return [entry for entry in entries if entry.sku in keep or entry.sku.casefold() == query_key]
