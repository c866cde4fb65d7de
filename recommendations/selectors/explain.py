"""Reads that explain the widget's answer: why a list is what it is, and what a change of rules would do.

Both go through the serving code itself (recommendations.selectors.serving's plan and select, and the engine's
rejection_reason), so the portal shows the list the widget serves, not a re-implementation of it.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.utils import timezone

from catalog_sync.models import Product
from merchants.models import Store
from recommendations.engine import CatalogItem, MerchantRules, Rejection, rejection_reason
from recommendations.models import RecommendationList, Source
from recommendations.selectors.serving import (
    Recommendations,
    _attribution,
    _fetch_product_rows,
    _home_lists,
    _merchant_rules,
    _plan,
    _Row,
    _select,
    is_network_list_fresh,
    taxonomy_rejection,
)
from recommendations.selectors.stores import ServingStore, StoreRules, build_serving_store

# Why a candidate is not in the answer, beyond the engine's Rejection values.
EXCLUDED_BY_SKU = "excluded_sku"
NOT_NEEDED = "not_needed"  # it passed every rule, but the list was full before its turn

REJECTION_LABELS: dict[str, str] = {
    Rejection.QUERY_OR_CART: "the product itself (or already in the cart)",
    EXCLUDED_BY_SKU: "excluded by SKU",
    "excluded_tag": "excluded by tag",
    "excluded_category": "excluded by category",
    Rejection.UNKNOWN: "no longer in the catalog",
    Rejection.OUT_OF_STOCK: "out of stock",
    Rejection.UNPUBLISHED: "not published",
    Rejection.BELOW_MIN_PRICE: "below the price range",
    Rejection.ABOVE_MAX_PRICE: "above the price range",
    NOT_NEEDED: "passed the rules; the list was already full",
}

# What the local engine's reasons mean to a merchant (network items carry the miner's choice).
REASON_LABELS: dict[str, str] = {
    "similar": "similar text (title, tags, category)",
    "bought_together": "bought together (co-purchase)",
    "popular": "popular in the store",
    "trending": "trending in the store",
    "pinned": "pinned by you",
}


@dataclass(frozen=True)
class StoredListInfo:
    """One stored list the answer was drawn from: who made it and how old it is."""

    source: str
    placement: str
    rec_id: str
    computed_at: datetime
    age_seconds: int
    fresh: bool
    miner_hotkey: str
    validator: str
    models_used: tuple[str, ...]
    latency_ms: int | None


@dataclass(frozen=True)
class Candidate:
    """One candidate of the chain, in order, with its verdict: served (position from 1) or removed (by what)."""

    external_id: str
    sku: str
    title: str
    price: str | None
    source: str
    reason: str  # the engine's reason: similar, bought_together, popular, trending, pinned
    position: int | None
    removed_by: str
    substitute_for: str = ""

    @property
    def removed_label(self) -> str:
        return REJECTION_LABELS.get(self.removed_by, self.removed_by)

    @property
    def reason_label(self) -> str:
        if self.source == Source.NETWORK:
            return "chosen by a miner"
        return REASON_LABELS.get(self.reason, self.reason)


@dataclass(frozen=True)
class ListExplanation:
    """The answer for (placement, sku) now, the lists behind it, and every candidate's verdict."""

    answer: Recommendations
    query_sku: str
    query_title: str
    query_found: bool
    lists: tuple[StoredListInfo, ...]
    candidates: tuple[Candidate, ...]

    @property
    def removed(self) -> list[Candidate]:
        return [c for c in self.candidates if c.removed_by and c.removed_by != NOT_NEEDED]

    @property
    def substitutions(self) -> list[Candidate]:
        return [c for c in self.candidates if c.substitute_for]


def explain_recommendations(*, store: ServingStore, placement: str, sku: str, limit: int) -> ListExplanation:
    """The widget's answer for a product as a shopper without a session gets it now (outside experiments), explained.

    Out-of-stock substitution: a candidate of the list's first `limit` that a rule removed is paired, in order,
    with a served item from further down the chain (or the home list) that took its place.
    """
    plan = _plan(store=store, placement=placement, sku=sku, limit=limit)
    items, contributors = _select(store=store, chain=plan.chain, limit=limit, never=plan.never, query=plan.query)
    rec_id, source = _attribution(chain=plan.chain, contributors=contributors, fallback=plan.network or plan.local)
    answer = Recommendations(rec_id=rec_id, source=source, placement=placement, items=tuple(items))

    rules = store.rules
    pinned = [x for x in rules.pinned_ids if x not in plan.never]
    ordered = list(dict.fromkeys([*pinned, *plan.chain.ids]))
    rows = _rows(store_id=store.id, external_ids=ordered)
    taxonomy = {x: r for x in ordered if x in rows and (r := _taxonomy_reason(rows[x], rules))}
    merchant_rules = _merchant_rules(
        rules=rules, query=plan.query, excluded={*rules.exclude_ids, *taxonomy}, pinned=pinned
    )
    served = {item.sku: position for position, item in enumerate(items, start=1)}
    reasons = _engine_reasons(store_id=store.id, lists=plan.lists)
    candidates = _verdicts(
        ordered=ordered,
        pinned=set(pinned),
        rows=rows,
        rules=merchant_rules,
        store_rules=rules,
        taxonomy=taxonomy,
        never=plan.never,
        served=served,
        origin=plan.chain.origin,
        reasons=reasons,
    )
    query_title = ""
    if plan.query is not None:
        query_title = (
            Product.objects.filter(store_id=store.id, external_id=plan.query.external_id)
            .values_list("title", flat=True)
            .first()
            or ""
        )
    return ListExplanation(
        answer=answer,
        query_sku=sku,
        query_title=query_title,
        query_found=plan.query is not None,
        lists=tuple(
            _list_infos(store_id=store.id, rec_ids=[c.rec_id for c in (plan.network, plan.local) if c is not None])
        ),
        candidates=tuple(_with_substitutions(candidates, limit=limit)),
    )


def _rows(*, store_id: int, external_ids: Sequence[str]) -> dict[str, _Row]:
    if not external_ids:
        return {}
    rows = _fetch_product_rows(store_id=store_id, external_ids=external_ids, taxonomy=True)
    return {values[0]: _Row(*values) for values in rows}


def _taxonomy_reason(row: _Row, rules: StoreRules) -> str | None:
    return taxonomy_rejection(tags=row.tags, category_path=row.category_path, rules=rules)


def _catalog_item(row: _Row) -> CatalogItem:
    return CatalogItem(
        id=row.external_id,
        price=None if row.price is None else float(row.price),
        in_stock=row.in_stock,
        is_published=row.is_published and row.status == Product.Status.ACTIVE,
    )


def _engine_reasons(*, store_id: int, lists: Iterable[Any]) -> dict[str, str]:
    reasons: dict[str, str] = {}
    home = _home_lists(store_id=store_id)
    for stored in (*lists, *home):
        for entry in stored.items:
            if entry and len(entry) > 2:
                reasons.setdefault(str(entry[0]), str(entry[2]))
    return reasons


def _verdicts(
    *,
    ordered: Sequence[str],
    pinned: set[str],
    rows: dict[str, _Row],
    rules: MerchantRules,
    store_rules: StoreRules,
    taxonomy: dict[str, str],
    never: set[str],
    served: dict[str, int],
    origin: dict[str, tuple[str, str | None]],
    reasons: dict[str, str],
) -> list[Candidate]:
    catalog = {x: _catalog_item(row) for x, row in rows.items()}
    out: list[Candidate] = []
    for external_id in ordered:
        row = rows.get(external_id)
        sku = (row.sku or row.external_id) if row else external_id
        position = served.get(sku) if row else None
        removed_by = ""
        if position is None:
            removed_by = rejection_reason(external_id, lookup=catalog.get, rules=rules, never_ids=never) or NOT_NEEDED
            if removed_by == Rejection.EXCLUDED:
                removed_by = taxonomy.get(external_id, EXCLUDED_BY_SKU)
        source = origin.get(external_id, ("", None))[0] if external_id not in pinned else ""
        out.append(
            Candidate(
                external_id=external_id,
                sku=sku,
                title=row.title if row else "",
                price=None if row is None or row.price is None else str(row.price),
                source=source,
                reason="pinned" if external_id in pinned else reasons.get(external_id, ""),
                position=position,
                removed_by=removed_by,
            )
        )
    return out


def _with_substitutions(candidates: list[Candidate], *, limit: int) -> list[Candidate]:
    """Pair the rule-removed candidates among the first `limit` with the served ones from beyond it, in order."""
    eligible = [c for c in candidates if c.removed_by != Rejection.QUERY_OR_CART]
    head, tail = eligible[:limit], eligible[limit:]
    removed = [c for c in head if c.removed_by and c.removed_by != NOT_NEEDED]
    fillers = [c for c in tail if c.position is not None]
    pairs = {filler.external_id: gone.sku for gone, filler in zip(removed, fillers, strict=False)}
    return [replace(c, substitute_for=pairs.get(c.external_id, "")) for c in candidates]


def _list_infos(*, store_id: int, rec_ids: Sequence[str]) -> list[StoredListInfo]:
    if not rec_ids:
        return []
    rows = RecommendationList.objects.filter(store_id=store_id, rec_id__in=list(rec_ids)).values_list(
        "source", "placement", "rec_id", "computed_at", "miner_hotkey", "validator", "models_used", "latency_ms"
    )
    now = timezone.now()
    by_id = {row[2]: row for row in rows}
    infos = []
    for rec_id in rec_ids:
        if rec_id not in by_id:
            continue
        source, placement, _, computed_at, hotkey, validator, models_used, latency = by_id[rec_id]
        infos.append(
            StoredListInfo(
                source=source,
                placement=placement,
                rec_id=rec_id,
                computed_at=computed_at,
                age_seconds=max(0, int((now - computed_at).total_seconds())),
                fresh=source != Source.NETWORK or is_network_list_fresh(computed_at=computed_at),
                miner_hotkey=hotkey,
                validator=validator,
                models_used=tuple(str(m) for m in models_used) if isinstance(models_used, list) else (),
                latency_ms=latency,
            )
        )
    return infos


# --- Rule preview ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleCount:
    """How many catalog products one rule removes, under the current and under the proposed settings."""

    rule: str
    label: str
    current: int
    proposed: int


@dataclass(frozen=True)
class RulePreview:
    """The effect of proposed rules before they are saved: catalog-wide removals and one product's list."""

    catalog_size: int
    counts: tuple[RuleCount, ...]
    removed_current: int
    removed_proposed: int
    sku: str
    before: ListExplanation | None
    after: ListExplanation | None

    @property
    def added_skus(self) -> list[str]:
        if self.before is None or self.after is None:
            return []
        before = {item.sku for item in self.before.answer.items}
        return [item.sku for item in self.after.answer.items if item.sku not in before]

    @property
    def dropped_skus(self) -> list[str]:
        if self.before is None or self.after is None:
            return []
        after = {item.sku for item in self.after.answer.items}
        return [item.sku for item in self.before.answer.items if item.sku not in after]


PREVIEW_RULES: tuple[tuple[str, str], ...] = (
    (EXCLUDED_BY_SKU, "Excluded SKUs"),
    ("excluded_tag", "Excluded tags"),
    ("excluded_category", "Excluded categories"),
    (Rejection.OUT_OF_STOCK, "In stock only"),
    (Rejection.UNPUBLISHED, "Published only"),
)


def preview_merchant_rules(
    *, store: Store, proposed_settings: dict[str, Any], placement: str, sku: str, limit: int
) -> RulePreview:
    """What saving `proposed_settings` (the whole Store.settings) would change, computed without saving anything.

    Catalog-wide: how many of the store's products each rule removes (price ranges depend on the product viewed,
    so they show in the product's list only). For `sku`: the widget's answer before and after, served by the
    same code the widget uses.
    """
    current = build_serving_store(store=store)
    draft = Store(id=store.id, site_key=store.site_key, domain=store.domain, settings=proposed_settings)
    proposed = build_serving_store(store=draft)
    (current_counts, proposed_counts), total = _catalog_removals(
        store_id=store.id, rules=[current.rules, proposed.rules]
    )
    counts = tuple(
        RuleCount(rule=rule, label=label, current=current_counts.get(rule, 0), proposed=proposed_counts.get(rule, 0))
        for rule, label in PREVIEW_RULES
    )
    before = after = None
    if sku:
        before = explain_recommendations(store=current, placement=placement, sku=sku, limit=limit)
        after = explain_recommendations(store=proposed, placement=placement, sku=sku, limit=limit)
    return RulePreview(
        catalog_size=total,
        counts=counts,
        removed_current=current_counts.get("any", 0),
        removed_proposed=proposed_counts.get("any", 0),
        sku=sku,
        before=before,
        after=after,
    )


def _catalog_removals(*, store_id: int, rules: Sequence[StoreRules]) -> tuple[list[dict[str, int]], int]:
    """Per rule set: products removed per rule (one product may count under several) and under "any"; catalog size.

    One pass over the catalog for every rule set; stock and publication go through the engine's rejection_reason.
    """
    counts: list[dict[str, int]] = [{} for _ in rules]
    only_stock = [MerchantRules(require_in_stock=r.in_stock_only, require_published=False) for r in rules]
    only_published = [MerchantRules(require_in_stock=False, require_published=r.published_only) for r in rules]
    total, active = 0, Product.Status.ACTIVE.value
    fields = ("external_id", "in_stock", "is_published", "status", "tags", "category_path")
    rows = Product.objects.filter(store_id=store_id).values_list(*fields).iterator(chunk_size=2000)
    for external_id, in_stock, is_published, status, tags, category_path in rows:
        total += 1
        item = CatalogItem(id=external_id, in_stock=in_stock, is_published=is_published and status == active)
        lookup = {external_id: item}.get
        for index, rule_set in enumerate(rules):
            hits = []
            if external_id in rule_set.exclude_ids:
                hits.append(EXCLUDED_BY_SKU)
            taxonomy = taxonomy_rejection(tags=tags, category_path=category_path, rules=rule_set)
            if taxonomy:
                hits.append(taxonomy)
            for rule, check in ((Rejection.OUT_OF_STOCK, only_stock), (Rejection.UNPUBLISHED, only_published)):
                if rejection_reason(external_id, lookup=lookup, rules=check[index]) == rule:
                    hits.append(rule)
            for hit in hits:
                counts[index][hit] = counts[index].get(hit, 0) + 1
            if hits:
                counts[index]["any"] = counts[index].get("any", 0) + 1
    return counts, total


def sample_skus(*, store_id: int, limit: int) -> list[tuple[str, str]]:
    """(SKU, title) of a few of the store's products that have a stored list, to try "why this list" on."""
    rows = (
        RecommendationList.objects.filter(store_id=store_id, placement="product", product__isnull=False)
        .order_by("-computed_at", "-id")
        .values_list("product__sku", "product__external_id", "product__title")[: limit * 3]
    )
    found = dict.fromkeys((sku or external_id, title) for sku, external_id, title in rows)
    return list(found)[:limit]
