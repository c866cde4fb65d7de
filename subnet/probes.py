"""Ground-truth probes the gateway gives validators: (query, session, what the shopper went on to buy) cases.

A case is a request about a product, built exactly as a live request is (`subnet.services.build_request_pool`:
shuffled, with weaker candidates), together with the SKUs the shopper bought next. The validator sends
the request part to miners among its live traffic and keeps the bought SKUs to itself to score the answers
(NDCG@k, `subnet.validator.scoring`). Sources, by preference:

* **attributed order history**: an order line that came through a recommendation (its `rec_id` names a
  network answer or a local list, hence the query product): query = that product, bought = the line's
  product, session = the order's other products;
* **held-out shopper sequences** (before a store has history): records in the
  `../shared/data/interactions/` format (`user_id`, `parent_asin`, `timestamp`), whose items are products
  of the store (a catalog imported from the same file); per shopper, the last item is what was bought,
  the one before it the query, the earlier ones the session. The repo ships a slice of the UCI online
  retail file (`subnet/data/probe_sequences.json`, 281 shoppers, the fields this code reads) for stores created from it.

Cases are drawn afresh, at random, for every fetch, so each validator sees a different, rotating sample.
"""

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from catalog_sync.models import OrderLine, Product
from merchants.models import Store
from recommendations.engine import Recommender
from recommendations.engine.loader import build_recommender_for_store
from recommendations.models import NetworkAnswer, RecommendationList
from subnet.selectors import DEFAULT_POOL_SIZE, MIN_POOL_SIZE, is_valid_for_validator, wire_sku
from subnet.services import build_context, build_request_pool
from subnet.types import MAX_QUERY_LENGTH, MIN_QUERY_LENGTH

PROBE_SEQUENCES_PATH: Final = Path(__file__).resolve().parent / "data" / "probe_sequences.json"
MAX_PROBE_CASES: Final = 50
DEFAULT_NUM_RESULTS: Final = 5
# Order lines read per store when looking for attributed purchases (newest first).
_MAX_LINES_PER_STORE: Final = 5_000


@dataclass(frozen=True)
class ProbeCase:
    """One ground-truth case: the request part goes to miners, `bought` and `session` stay with the validator."""

    site_key: str
    query: str
    context: str
    num_results: int
    bought: tuple[str, ...]
    session: tuple[str, ...]
    source: str

    def as_wire(self) -> dict[str, Any]:
        """The case as the probe endpoint sends it."""
        data = asdict(self)
        data["bought"], data["session"] = list(self.bought), list(self.session)
        return data


@dataclass(frozen=True)
class ShopperCase:
    """A shopper's items, oldest first (held-out sequence or order), in a store's wire SKUs."""

    query: str
    bought: tuple[str, ...]
    session: tuple[str, ...]
    source: str


def read_sequences(*, records: Iterable[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """Each shopper's distinct items (`parent_asin`, else `asin`) by time then file order, shoppers with >= 3 items
    (session, query, bought), in order of first appearance."""
    by_user: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for position, record in enumerate(records):
        if not isinstance(record, Mapping):
            continue
        user = str(record.get("user_id") or "").strip()
        item = str(record.get("parent_asin") or record.get("asin") or "").strip()
        stamp = record.get("timestamp")
        if user and item:
            when = float(stamp) if isinstance(stamp, int | float) and not isinstance(stamp, bool) else float("inf")
            by_user[user].append((when, position, item))
    sequences = []
    for rows in by_user.values():
        items: list[str] = []
        for _, _, item in sorted(rows):
            if item not in items:
                items.append(item)
        if len(items) >= 3:
            sequences.append(tuple(items))
    return sequences


def load_probe_sequences(*, path: Path = PROBE_SEQUENCES_PATH) -> list[tuple[str, ...]]:
    """The shipped held-out shopper sequences (or another file in the same format)."""
    with open(path, encoding="utf-8") as handle:
        records = json.load(handle)
    return read_sequences(records=records if isinstance(records, list) else [])


def sequence_cases(*, sequences: Iterable[Sequence[str]]) -> list[ShopperCase]:
    """Held-out sequences as cases: the last item bought, the one before it the query, the rest the session."""
    return [
        ShopperCase(query=items[-2], bought=(items[-1],), session=tuple(items[:-2]), source="sequences")
        for items in sequences
        if len(items) >= 2 and items[-1] != items[-2]
    ]


def order_cases(*, store: Store) -> list[ShopperCase]:
    """Cases from the store's attributed order lines: the recommended-on product, the bought one, the order's rest."""
    lines = list(
        OrderLine.objects.filter(store=store, product__isnull=False)
        .exclude(rec_id="")
        .order_by("-created_at", "-id")
        .values_list("order_id", "rec_id", "product__sku", "product__external_id")[:_MAX_LINES_PER_STORE]
    )
    if not lines:
        return []
    rec_ids = {rec_id for _, rec_id, _, _ in lines}
    network = NetworkAnswer.objects.filter(store=store, rec_id__in=rec_ids, product__isnull=False)
    local = RecommendationList.objects.filter(store=store, rec_id__in=rec_ids, product__isnull=False)
    query_of = {
        rec_id: sku or external_id
        for queryset in (network, local)
        for rec_id, sku, external_id in queryset.values_list("rec_id", "product__sku", "product__external_id")
    }
    orders: dict[str, list[str]] = defaultdict(list)
    every_line = OrderLine.objects.filter(
        store=store, product__isnull=False, order_id__in={order_id for order_id, _, _, _ in lines}
    ).order_by("id")
    for order_id, sku, external_id in every_line.values_list("order_id", "product__sku", "product__external_id"):
        orders[order_id].append(sku or external_id)
    cases = []
    for order_id, rec_id, sku, external_id in lines:
        query, bought = query_of.get(rec_id), sku or external_id
        if query is None or query == bought:
            continue
        session = tuple(dict.fromkeys(item for item in orders[order_id] if item not in (query, bought)))
        cases.append(ShopperCase(query=query, bought=(bought,), session=session, source="orders"))
    return cases


def build_case(
    *,
    store: Store,
    case: ShopperCase,
    rng: random.Random,
    num_results: int = DEFAULT_NUM_RESULTS,
    recommender: Recommender | None = None,
) -> ProbeCase | None:
    """The probe for one case: a request pool about the query built as a live one, holding the bought products;
    None when the products are gone, unofferable, or the query SKU is not one a validator accepts."""
    wanted = [case.query, *case.bought]
    products = {wire_sku(p): p for p in Product.objects.filter(store=store, external_id__in=wanted)}
    products.update({wire_sku(p): p for p in Product.objects.filter(store=store, sku__in=wanted)})
    query = products.get(case.query)
    bought = [products[sku] for sku in case.bought if sku in products and is_valid_for_validator(products[sku])]
    if query is None or not bought or not MIN_QUERY_LENGTH <= len(case.query) <= MAX_QUERY_LENGTH:
        return None
    pool = build_request_pool(
        store=store, product=query, rng=rng, size=DEFAULT_POOL_SIZE, include=bought, recommender=recommender
    )
    if sum(1 for item in pool if is_valid_for_validator(item)) < MIN_POOL_SIZE:
        return None
    return ProbeCase(
        site_key=store.site_key,
        query=case.query,
        context=build_context(products=pool),
        num_results=num_results,
        bought=tuple(wire_sku(item) for item in bought),
        session=case.session,
        source=case.source,
    )


def draw_probe_cases(
    *,
    count: int,
    rng: random.Random,
    stores: Sequence[Store] | None = None,
    sequences: Sequence[Sequence[str]] | None = None,
) -> list[ProbeCase]:
    """Up to `count` probes drawn at random: attributed order history first, held-out sequences for the rest.

    stores: where to look (default: active stores); sequences: the held-out shopper sequences (default: the
    shipped slice), matched against each store's products.
    """
    if not 0 < count <= MAX_PROBE_CASES:
        raise ValueError(f"count must be 1 to {MAX_PROBE_CASES}")
    candidates = list(stores) if stores is not None else list(Store.objects.filter(status=Store.Status.ACTIVE))
    held_out = sequence_cases(sequences=sequences if sequences is not None else load_probe_sequences())
    from_orders = [(store, case) for store in candidates for case in order_cases(store=store)]
    items = {case.query for case in held_out} | {sku for case in held_out for sku in case.bought}
    from_sequences = [
        (store, case)
        for store in candidates
        if items and Product.objects.filter(store=store, sku__in=list(items)[:1000]).exists()
        for case in held_out
    ]
    probes: list[ProbeCase] = []
    engines: dict[int, Recommender] = {}
    for pool in (from_orders, from_sequences):
        rng.shuffle(pool)
        for store, case in pool:
            if len(probes) >= count:
                return probes
            if store.pk not in engines:
                engines[store.pk] = build_recommender_for_store(store=store)
            probe = build_case(store=store, case=case, rng=rng, recommender=engines[store.pk])
            if probe is not None:
                probes.append(probe)
    return probes
