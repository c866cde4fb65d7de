"""Writes of the recommendations app: precomputing a store's lists, refreshing them, storing network answers."""

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from bitrecs_site.db import delete_in_batches
from catalog_sync.models import OrderLine, Product
from merchants.models import Store
from recommendations.engine import Recommender, ScoredItem
from recommendations.engine.loader import (
    build_recommender_for_store,
    delete_saved_store_engine,
    save_store_engine,
)
from recommendations.models import (
    NetworkAnswer,
    PendingListRefresh,
    Placement,
    RecommendationList,
    Source,
    generate_rec_id,
)
from recommendations.selectors import get_external_ids_for_skus

logger = logging.getLogger(__name__)

WRITE_BATCH = 1000
# Changed products searched for per query when looking for the lists that contain them.
CONTAINING_BATCH = 50


@dataclass(frozen=True)
class ListsWritten:
    """What a rebuild or refresh wrote: lists per placement, and the time it took."""

    store_id: int
    products: int = 0
    product_lists: int = 0
    cart_lists: int = 0
    home_lists: int = 0
    deleted: int = 0
    seconds: float = 0.0
    full_rebuild_enqueued: bool = False


def rebuild_store_lists(
    *, store: Store, list_size: int | None = None, engine: Recommender | None = None
) -> ListsWritten:
    """Build the store's engine from the database and rewrite every local list (product, cart, home).

    engine: an engine already built from this store's rows (evaluate_recs --serving stored-lists passes the one it
    evaluates, self-tuned or not); default: built here, trending aged from now, and saved for the web processes'
    personalised answers (engine/loader.py).

    Lists are upserted in batches (each batch atomic, so a reader never sees a product without its list),
    then the local lists of products this run did not write (one that left the cart-list cap) are deleted. For 100k
    products this takes minutes: call it from a worker (recommendations.rebuild_store), never a request.
    """
    started = time.monotonic()
    size = list_size or int(settings.RECS_LIST_SIZE)
    now = timezone.now()
    if engine is None:
        engine = build_recommender_for_store(store=store, now=now)
        save_store_engine(store=store, engine=engine)
    pks = _product_pks(store=store)
    ids = [item.id for item in engine.items if item.id in pks]

    product_lists = 0
    for chunk in _batched(ids, WRITE_BATCH):
        lists = engine.precompute(limit=size, ids=chunk)
        product_lists += _upsert_local_lists(
            store=store,
            placement=Placement.PRODUCT,
            rows=[(pid, pks[pid], lists.get(pid, [])) for pid in chunk],
            computed_at=now,
        )
    cart_ids = _cart_list_ids(store=store, ids=ids)
    cart_lists = _write_cart_lists(store=store, engine=engine, ids=cart_ids, pks=pks, size=size, computed_at=now)
    home_lists = _write_home_list(store=store, engine=engine, size=size, computed_at=now)
    deleted = _delete_unwritten_lists(store=store, placement=Placement.CART, keep=set(cart_ids))
    deleted += _delete_unwritten_lists(store=store, placement=Placement.PRODUCT, keep=set(ids))
    result = ListsWritten(
        store_id=store.id,
        products=len(ids),
        product_lists=product_lists,
        cart_lists=cart_lists,
        home_lists=home_lists,
        deleted=deleted,
        seconds=round(time.monotonic() - started, 3),
    )
    logger.info(
        "recommendations.rebuilt", extra={"store_id": store.id, "products": len(ids), "seconds": result.seconds}
    )
    return result


def request_list_refresh(*, store_id: int, external_ids: Iterable[str]) -> None:
    """Record products whose lists must be recomputed and enqueue one delayed refresh of the store on commit."""
    from recommendations.tasks import refresh_products_task  # tasks.py imports this module

    rows = [PendingListRefresh(store_id=store_id, external_id=x) for x in dict.fromkeys(external_ids) if x]
    if not rows:
        return
    PendingListRefresh.objects.bulk_create(rows, ignore_conflicts=True)
    countdown = int(settings.RECS_REFRESH_DELAY_SECONDS)
    transaction.on_commit(lambda: refresh_products_task.apply_async((store_id,), countdown=countdown))


def refresh_pending_lists(*, store: Store) -> ListsWritten:
    """Take the store's pending products (recorded by request_list_refresh) and refresh their lists."""
    with transaction.atomic():
        pending = list(
            PendingListRefresh.objects.select_for_update().filter(store=store).values_list("id", "external_id")
        )
        PendingListRefresh.objects.filter(id__in=[row_id for row_id, _ in pending]).delete()
    if not pending:
        return ListsWritten(store_id=store.id)  # an earlier task of the same burst took them
    return refresh_product_lists(store=store, external_ids=[external_id for _, external_id in pending])


def refresh_product_lists(*, store: Store, external_ids: Sequence[str], list_size: int | None = None) -> ListsWritten:
    """Recompute the lists of changed products, of the lists that contain them and of their new neighbours.

    Bounded: at most RECS_REFRESH_MAX_LISTS query products per placement. A store above
    RECS_REFRESH_MAX_PRODUCTS (an engine build takes minutes there) gets a full rebuild enqueued instead.
    Deleted products need nothing: their own lists go with them, and serving skips ids it cannot find.
    """
    from recommendations.tasks import rebuild_store_task  # tasks.py imports this module

    started = time.monotonic()
    if Product.objects.filter(store=store).count() > int(settings.RECS_REFRESH_MAX_PRODUCTS):
        transaction.on_commit(lambda: rebuild_store_task.delay(store.id))
        return ListsWritten(store_id=store.id, full_rebuild_enqueued=True)
    size = list_size or int(settings.RECS_LIST_SIZE)
    bound = int(settings.RECS_REFRESH_MAX_LISTS)
    now = timezone.now()
    engine = build_recommender_for_store(store=store, now=now)
    save_store_engine(store=store, engine=engine)
    pks = _product_pks(store=store)
    changed = [x for x in dict.fromkeys(external_ids) if x in pks and x in engine]
    own_lists = engine.precompute(limit=size, ids=changed)
    neighbours = [entry.id for x in changed for entry in own_lists.get(x, [])]
    containing = _lists_containing(store=store, external_ids=external_ids, limit=bound)
    affected = [x for x in dict.fromkeys([*changed, *containing, *neighbours]) if x in pks and x in engine][:bound]

    lists = engine.precompute(limit=size, ids=affected)
    product_lists = _upsert_local_lists(
        store=store,
        placement=Placement.PRODUCT,
        rows=[(x, pks[x], lists.get(x, [])) for x in affected],
        computed_at=now,
    )
    has_cart_list = set(
        RecommendationList.objects.filter(
            store=store, source=Source.LOCAL, placement=Placement.CART, query_id__in=affected
        ).values_list("query_id", flat=True)
    )
    all_get_cart_lists = len(pks) <= int(settings.RECS_CART_LISTS_MAX)
    cart_ids = [x for x in affected if all_get_cart_lists or x in has_cart_list]
    cart_lists = _write_cart_lists(store=store, engine=engine, ids=cart_ids, pks=pks, size=size, computed_at=now)
    home_lists = _write_home_list(store=store, engine=engine, size=size, computed_at=now)
    result = ListsWritten(
        store_id=store.id,
        products=len(changed),
        product_lists=product_lists,
        cart_lists=cart_lists,
        home_lists=home_lists,
        seconds=round(time.monotonic() - started, 3),
    )
    logger.info(
        "recommendations.refreshed",
        extra={"store_id": store.id, "changed": len(changed), "lists": product_lists + cart_lists},
    )
    return result


@transaction.atomic
def store_network_list(
    *,
    store: Store,
    product: Product | None,
    placement: str,
    skus: Sequence[str],
    miner_hotkey: str,
    validator: str,
    models_used: Sequence[str],
    latency_ms: int | None,
    computed_at: datetime | None = None,
) -> RecommendationList:
    """Store the network's answer for (store, product, placement) as its current network list.

    SKUs are matched to the store's products (product SKU, then external id, then variant SKU; unknown ones
    are dropped, duplicates keep the first). The answer is also appended to NetworkAnswer with a new rec_id,
    so events carrying an older rec_id still resolve to their miner. Raises ValueError when no SKU matches.
    """
    if placement not in Placement.values:
        raise ValueError(f"Unknown placement {placement!r}.")
    if product is not None and product.store_id != store.id:
        raise ValueError("The product belongs to another store.")
    item_ids = [x for x in dict.fromkeys(get_external_ids_for_skus(store_id=store.id, skus=skus)) if x]
    if product is not None:
        item_ids = [x for x in item_ids if x != product.external_id]
    if not item_ids:
        raise ValueError("None of the network's SKUs is in the store's catalog.")
    when = computed_at or timezone.now()
    rec_id = generate_rec_id(Source.NETWORK)
    query_id = product.external_id if product is not None else ""
    NetworkAnswer.objects.create(
        store=store,
        product=product,
        query_id=query_id,
        placement=placement,
        rec_id=rec_id,
        item_ids=item_ids,
        miner_hotkey=miner_hotkey,
        validator=validator,
        models_used=list(models_used),
        latency_ms=latency_ms,
        created_at=when,
    )
    count = len(item_ids)
    items = [[x, round(1.0 - rank / count, 4), "network"] for rank, x in enumerate(item_ids)]
    stored, _ = RecommendationList.objects.update_or_create(
        store=store,
        placement=placement,
        source=Source.NETWORK,
        query_id=query_id,
        defaults={
            "product": product,
            "items": items,
            "rec_id": rec_id,
            "computed_at": when,
            "miner_hotkey": miner_hotkey,
            "validator": validator,
            "models_used": list(models_used),
            "latency_ms": latency_ms,
        },
    )
    return stored


# --- helpers ---------------------------------------------------------------------------------------------


def _batched(values: Sequence[str], size: int) -> Iterator[list[str]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _product_pks(*, store: Store) -> dict[str, int]:
    return dict(Product.objects.filter(store=store).values_list("external_id", "id"))


def _items_json(results: Sequence[ScoredItem]) -> list[list[object]]:
    return [[r.id, round(r.score, 4), str(r.reason)] for r in results]


def _upsert_local_lists(
    *,
    store: Store,
    placement: str,
    rows: Sequence[tuple[str, int | None, Sequence[ScoredItem]]],
    computed_at: datetime,
) -> int:
    """Insert or replace local lists keyed by (store, placement, source, query_id), one atomic statement per batch."""
    objects = [
        RecommendationList(
            store=store,
            product_id=product_pk,
            query_id=query_id,
            placement=placement,
            source=Source.LOCAL,
            items=_items_json(results),
            rec_id=generate_rec_id(Source.LOCAL),
            computed_at=computed_at,
        )
        for query_id, product_pk, results in rows
    ]
    for start in range(0, len(objects), WRITE_BATCH):
        with transaction.atomic():
            RecommendationList.objects.bulk_create(
                objects[start : start + WRITE_BATCH],
                update_conflicts=True,
                unique_fields=["store", "placement", "source", "query_id"],
                update_fields=["product", "items", "rec_id", "computed_at"],
            )
    return len(objects)


def _delete_unwritten_lists(*, store: Store, placement: str, keep: set[str]) -> int:
    """Delete the store's local lists of the placement whose query product is not in keep."""
    stale = [
        pk
        for pk, query_id in RecommendationList.objects.filter(
            store=store, source=Source.LOCAL, placement=placement
        ).values_list("id", "query_id")
        if query_id not in keep
    ]
    deleted = 0
    for start in range(0, len(stale), WRITE_BATCH):
        count, _ = RecommendationList.objects.filter(id__in=stale[start : start + WRITE_BATCH]).delete()
        deleted += count
    return deleted


def _cart_list_ids(*, store: Store, ids: Sequence[str]) -> list[str]:
    """Every product when the catalog is within RECS_CART_LISTS_MAX, else the most ordered ones."""
    maximum = int(settings.RECS_CART_LISTS_MAX)
    if len(ids) <= maximum:
        return list(ids)
    known = set(ids)
    ranked = (
        OrderLine.objects.filter(store=store)
        .exclude(product_external_id="")
        .values("product_external_id")
        .annotate(orders=Count("order_id", distinct=True))
        .order_by("-orders", "product_external_id")
        .values_list("product_external_id", flat=True)
    )
    chosen = [x for x in ranked[: maximum * 2] if x in known][:maximum]
    return chosen


def _write_cart_lists(
    *,
    store: Store,
    engine: Recommender,
    ids: Sequence[str],
    pks: dict[str, int],
    size: int,
    computed_at: datetime,
) -> int:
    written = 0
    for chunk in _batched(ids, WRITE_BATCH):
        rows = [
            (x, pks[x], engine.recommend(query_id=None, placement=Placement.CART, session_ids=[x], limit=size))
            for x in chunk
        ]
        written += _upsert_local_lists(store=store, placement=Placement.CART, rows=rows, computed_at=computed_at)
    return written


def _write_home_list(*, store: Store, engine: Recommender, size: int, computed_at: datetime) -> int:
    home = engine.recommend(query_id=None, placement=Placement.HOME, limit=size)
    return _upsert_local_lists(store=store, placement=Placement.HOME, rows=[("", None, home)], computed_at=computed_at)


def _lists_containing(*, store: Store, external_ids: Sequence[str], limit: int) -> list[str]:
    """Query ids of the store's local product/cart lists whose items name one of external_ids (at most limit)."""
    found: list[str] = []
    wanted = [x for x in dict.fromkeys(external_ids) if x]
    for chunk in _batched(wanted, CONTAINING_BATCH):
        condition = Q()
        for external_id in chunk:
            # The JSON text holds each id as a quoted string: [["p1", 0.5, "similar"], ...].
            condition |= Q(items_text__contains=f'"{external_id}"')
        rows = (
            RecommendationList.objects.filter(store=store, source=Source.LOCAL)
            .exclude(query_id="")
            .annotate(items_text=Cast("items", TextField()))
            .filter(condition)
            .values_list("query_id", flat=True)
            .distinct()[: limit - len(found)]
        )
        found.extend(rows)
        if len(found) >= limit:
            break
    return list(dict.fromkeys(found))[:limit]


def prune_network_answers(*, before: datetime) -> int:
    """Forget network answers created before `before`, except those still served; returns how many went.

    An answer's rec_id names its miner for the events and order lines that carry it; keep them at least as long
    as validators look back for conversions (the miner stats window reaches 60 days back).
    """
    served = RecommendationList.objects.filter(source=Source.NETWORK).values("rec_id")
    return delete_in_batches(NetworkAnswer.objects.filter(created_at__lt=before).exclude(rec_id__in=served))


def prune_saved_engines() -> int:
    """Delete the saved engines of stores that are gone and those past RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS (never
    loaded again); returns how many went."""
    folder = Path(settings.RECS_ENGINE_SNAPSHOT_DIR)
    if not folder.is_dir():
        return 0
    max_age = int(settings.RECS_ENGINE_SNAPSHOT_MAX_AGE_SECONDS)
    found: dict[int, Path] = {}
    for path in folder.glob("store-*.npz"):
        number = path.stem.removeprefix("store-")
        if number.isdigit():
            found[int(number)] = path
    existing = set(Store.objects.filter(id__in=found).values_list("id", flat=True))
    deleted = 0
    for store_id, path in found.items():
        try:
            stale = time.time() - path.stat().st_mtime > max_age
        except FileNotFoundError:
            continue
        if stale or store_id not in existing:
            delete_saved_store_engine(store_id=store_id)
            deleted += 1
    for leftover in folder.glob(".store-*.tmp"):  # a write interrupted by a crash
        try:
            if time.time() - leftover.stat().st_mtime > 3600:
                leftover.unlink(missing_ok=True)
        except FileNotFoundError:
            continue
    return deleted
