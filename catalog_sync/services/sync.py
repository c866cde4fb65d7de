"""Platform syncs: a store's catalog and recent order lines, one step (a page) per task run.

A sync is a SyncRun that knows the step it expects next (`detail["phase"]` and `cursor`). A step
fetches one page from the platform, then, in one transaction holding the run's row lock, checks the
run still expects that step, upserts the page and advances the run. So a task delivered twice (a
worker killed mid-page, a broker redelivery) applies its page once: a redelivered step that already
ran finds the run past it and does nothing, and one that did not finish runs again from its cursor.
`resume_stalled_syncs` (beat) re-enqueues the expected step of a run nobody has advanced for a while.

Phases, per platform:
- Shopify: start → products (GraphQL pages) | bulk_start → bulk_poll → bulk_import (JSONL stream) → orders → finish
- WooCommerce: start → products (REST pages, with variations) → orders → finish
A full sync ends by deleting the products it did not see (only when no record failed); a catch-up
sync reads what changed since the last successful sync (webhooks can be lost; WooCommerce never
retries them).
"""

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import requests
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from catalog_sync.clients import Page, PlatformUnauthorized, SkippedRecord
from catalog_sync.clients.shopify import CostBucket, ShopifyAdminClient
from catalog_sync.clients.woocommerce import WooCommerceCatalog
from catalog_sync.exceptions import SyncAlreadyRunning
from catalog_sync.models import Product, SyncRun
from catalog_sync.services.catalog import (
    UpsertResult,
    finish_sync_run,
    start_sync_run,
    upsert_order_lines,
    upsert_products,
)
from catalog_sync.types import OrderLinePayload, ProductPayload
from merchants.exceptions import PlatformRejected, PlatformUnavailable, TokenRefreshRefused
from merchants.models import Store
from merchants.services.shopify import get_shopify_access_token
from merchants.services.stores import mark_store_needs_reauth
from merchants.services.woocommerce import build_woocommerce_client

logger = logging.getLogger(__name__)

T = TypeVar("T")

ORDER_HISTORY_DAYS = 60  # Shopify lets apps read the last 60 days of orders without read_all_orders.
CATCH_UP_OVERLAP = timedelta(minutes=5)
STALLED_AFTER = timedelta(minutes=10)
SHOPIFY_PAGE_SIZE = 50
WOOCOMMERCE_PAGE_SIZE = 100
BULK_BATCH_SIZE = 1000
SYNCABLE_PLATFORMS = (Store.Platform.SHOPIFY, Store.Platform.WOOCOMMERCE)
# Store.settings flag of the local demo store (seed_demo): a Shopify shop no sync may call.
LOCAL_DEMO_FLAG = "local_demo"


@dataclass(frozen=True)
class SyncStep:
    """The next step of a run: what the task runs next, after `countdown` seconds."""

    run_id: int
    phase: str
    cursor: str = ""
    countdown: float = 0.0


def start_store_sync(*, store: Store, kind: str = SyncRun.Kind.FULL) -> None:
    """Enqueue a sync of the store (opened by the task) after the current transaction commits."""
    from catalog_sync.tasks import sync_store_task  # tasks.py imports this module

    if kind == SyncRun.Kind.FULL:
        sync_store_task.delay_on_commit(store.id)  # type: ignore[attr-defined]
    else:
        sync_store_task.delay_on_commit(store.id, kind)  # type: ignore[attr-defined]


def begin_store_sync(*, store: Store, kind: str = SyncRun.Kind.FULL) -> SyncStep | None:
    """Open a sync run for an active platform store and return its first step; None if it cannot start.

    A store already syncing keeps its running sync (the database allows one running sync per store).
    """
    if store.platform not in SYNCABLE_PLATFORMS or not store.is_active or store.settings.get(LOCAL_DEMO_FLAG):
        logger.info("catalog_sync.not_syncable", extra={"store_id": store.id, "status": store.status})
        return None
    detail: dict[str, Any] = {"phase": "start"}
    if kind == SyncRun.Kind.CATCH_UP:
        since = _catch_up_watermark(store=store)
        if since is None:
            kind = SyncRun.Kind.FULL  # nothing synced yet: a catch-up would be a full sync anyway
        else:
            detail["since"] = since.isoformat()
    try:
        run = start_sync_run(store=store, kind=kind, detail=detail)
    except SyncAlreadyRunning:
        logger.info("catalog_sync.already_running", extra={"store_id": store.id})
        return None
    return SyncStep(run_id=run.id, phase="start")


def run_sync_step(*, run_id: int, phase: str, cursor: str = "") -> SyncStep | None:
    """Run one step of a sync and return the next one (None when the run has ended or moved on).

    PlatformUnavailable (429, 5xx, timeouts) propagates for the task to retry the same step. A refused
    credential marks the store as needing re-authorisation and fails the run; any other refusal fails
    the run with the platform's message.
    """
    run = SyncRun.objects.select_related("store").filter(id=run_id).first()
    if run is None or run.status != SyncRun.Status.RUNNING or not _expects(run, phase, cursor):
        return None  # finished, cancelled, or this step was already applied by an earlier delivery
    store = run.store
    if not store.is_active:
        fail_sync_run(run_id=run.id, error=f"The store is {store.get_status_display().lower()}; the sync stopped.")
        return None
    try:
        handler = _PHASES[(store.platform, phase)]
        return handler(run, cursor)
    except PlatformUnauthorized as exc:
        mark_store_needs_reauth(store=store, reason=exc.message)
        fail_sync_run(
            run_id=run.id,
            error=f"{store.get_platform_display()} refused our credentials ({exc.message}); "
            "the merchant must re-authorise the app.",
        )
    except PlatformUnavailable:
        raise
    except TokenRefreshRefused as exc:  # get_shopify_access_token marked the store
        fail_sync_run(run_id=run.id, error=f"{exc.message} The merchant must re-authorise the app.")
    except PlatformRejected as exc:
        fail_sync_run(run_id=run.id, error=exc.message)
    return None


def fail_sync_run(*, run_id: int, error: str) -> None:
    """Close a running sync as failed with a message a person can act on."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().filter(id=run_id, status=SyncRun.Status.RUNNING).first()
        if run is not None:
            finish_sync_run(run=run, status=SyncRun.Status.FAILED, error=error[:2000])
    logger.warning("catalog_sync.failed", extra={"run_id": run_id, "error": error[:200]})


def resume_stalled_syncs(*, older_than: timedelta = STALLED_AFTER) -> list[SyncStep]:
    """Return the expected step of every running platform sync nobody has advanced for `older_than`.

    A run stalls when its next step was lost (a worker died between committing a page and enqueueing
    the next one, or a transport without redelivery). File imports are not resumable: a stalled one is
    failed instead, so the store can sync again.
    """
    cutoff = timezone.now() - older_than
    steps = []
    for run in SyncRun.objects.filter(status=SyncRun.Status.RUNNING, updated_at__lt=cutoff).order_by("id"):
        if run.kind == SyncRun.Kind.IMPORT:
            fail_sync_run(run_id=run.id, error="The import stopped without finishing (its process ended).")
            continue
        SyncRun.objects.filter(id=run.id).update(updated_at=timezone.now())
        steps.append(SyncStep(run_id=run.id, phase=run.detail.get("phase", "start"), cursor=run.cursor))
    return steps


def list_stores_to_sync() -> list[int]:
    """Ids of the active platform stores with no running sync (for the scheduled syncs)."""
    running = SyncRun.objects.filter(status=SyncRun.Status.RUNNING).values("store_id")
    return list(
        Store.objects.filter(platform__in=SYNCABLE_PLATFORMS, status=Store.Status.ACTIVE)
        .exclude(id__in=running)
        .exclude(**{f"settings__{LOCAL_DEMO_FLAG}": True})
        .order_by("id")
        .values_list("id", flat=True)
    )


# --- Steps ---------------------------------------------------------------------------------------------


def _expects(run: SyncRun, phase: str, cursor: str) -> bool:
    return run.detail.get("phase", "start") == phase and (run.cursor or "") == (cursor or "")


def _since(run: SyncRun) -> datetime | None:
    value = run.detail.get("since")
    return datetime.fromisoformat(value) if value else None


def _order_window_start() -> datetime:
    return timezone.now() - timedelta(days=ORDER_HISTORY_DAYS)


def _catch_up_watermark(*, store: Store) -> datetime | None:
    last = (
        SyncRun.objects.filter(
            store=store,
            kind__in=[SyncRun.Kind.FULL, SyncRun.Kind.CATCH_UP],
            status__in=[SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL],
        )
        .order_by("-started_at")
        .first()
    )
    return last.started_at - CATCH_UP_OVERLAP if last else None


def _advance(
    run: SyncRun,
    *,
    phase: str,
    cursor: str,
    next_phase: str,
    next_cursor: str,
    apply: Callable[[SyncRun], UpsertResult] | None = None,
    skipped: Sequence[SkippedRecord] = (),
    countdown: float = 0.0,
    detail: dict[str, Any] | None = None,
    total: int | None = None,
) -> SyncStep | None:
    """Apply a fetched page and move the run to its next step, atomically and at most once."""
    with transaction.atomic():
        locked = SyncRun.objects.select_for_update().get(id=run.id)
        if locked.status != SyncRun.Status.RUNNING or not _expects(locked, phase, cursor):
            return None  # another delivery of this step got here first
        if apply is not None:
            result = apply(locked)
            locked.created += result.created
            locked.updated += result.updated
            seen = result.created + result.updated
            locked.seen += seen
            locked.done += seen
        _record_skipped(locked, skipped)
        if total is not None:
            locked.total = total
        locked.detail = {**locked.detail, **(detail or {}), "phase": next_phase}
        locked.cursor = next_cursor
        locked.save()
    return SyncStep(run_id=run.id, phase=next_phase, cursor=next_cursor, countdown=countdown)


def _record_skipped(run: SyncRun, skipped: Iterable[SkippedRecord]) -> None:
    for record in skipped:
        run.failed += 1
        run.error_count += 1
        if len(run.errors) < SyncRun.MAX_ERRORS:
            run.errors = [*run.errors, {"id": record.external_id, "reason": record.reason}]


def _products(page: Page[ProductPayload]) -> Callable[[SyncRun], UpsertResult]:
    return lambda run: upsert_products(store=run.store, payloads=page.items)


def _order_lines(page: Page[OrderLinePayload]) -> Callable[[SyncRun], UpsertResult]:
    def apply(run: SyncRun) -> UpsertResult:
        result = upsert_order_lines(store=run.store, payloads=page.items)
        run.detail = {**run.detail, "order_lines": run.detail.get("order_lines", 0) + result.created + result.updated}
        return UpsertResult()  # order lines are counted in detail, not as products

    return apply


def _finish(run: SyncRun, cursor: str) -> SyncStep | None:
    """Delete what a full sync did not see (when nothing failed), then close the run."""
    with transaction.atomic():
        locked = SyncRun.objects.select_for_update().get(id=run.id)
        if locked.status != SyncRun.Status.RUNNING or not _expects(locked, "finish", cursor):
            return None
        if locked.kind == SyncRun.Kind.FULL and locked.failed == 0:
            stale = Product.objects.filter(store_id=locked.store_id, updated_at__lt=locked.started_at)
            locked.deleted = stale.count()
            stale.delete()
        elif locked.kind == SyncRun.Kind.FULL:
            locked.detail["deletions_skipped"] = (
                f"{locked.failed} record(s) failed, so products not seen were kept rather than deleted."
            )
        status = SyncRun.Status.PARTIAL if locked.failed else SyncRun.Status.SUCCEEDED
        finish_sync_run(run=locked, status=status)
    _close_sync_session(run)
    logger.info("catalog_sync.finished", extra={"run_id": run.id, "status": status})
    return None


# The keep-alive HTTP session of each store's sync in this worker process, by store id: (run id, session). The
# steps of one sync (separate tasks) that land in this process reuse its connections instead of opening one per
# call; a new sync of the store, the sync's end, or a full table (oldest first) closes a session.
MAX_SYNC_SESSIONS = 16
_sync_sessions: dict[int, tuple[int, requests.Session]] = {}


def _sync_session(run: SyncRun) -> requests.Session:
    """The run's keep-alive session in this process (created on its first step here)."""
    held = _sync_sessions.get(run.store_id)
    if held is not None and held[0] == run.id:
        return held[1]
    _close_sync_session(run)
    while len(_sync_sessions) >= MAX_SYNC_SESSIONS:
        _sync_sessions.pop(next(iter(_sync_sessions)))[1].close()
    session = requests.Session()
    _sync_sessions[run.store_id] = (run.id, session)
    return session


def close_sync_sessions() -> None:
    """Close every sync session this process holds (between tests; a worker's end closes them anyway)."""
    while _sync_sessions:
        _sync_sessions.popitem()[1][1].close()


def _close_sync_session(run: SyncRun) -> None:
    held = _sync_sessions.pop(run.store_id, None)
    if held is not None:
        held[1].close()


# Shopify.


# A shop's cost bucket (as Shopify last reported it) and its currency, kept between a sync's steps, which are
# separate tasks, possibly in separate workers: the next step starts paced, after the countdown the bucket asked
# for, and without asking the currency again (nor, once denied, the orders' customer ids). Both are read afresh
# when a sync starts.
SHOPIFY_STATE_TTL = 24 * 3600


def _shopify_state_key(store: Store) -> str:
    return f"catalog_sync:shopify:state:{store.id}"


@contextmanager
def _shopify_client(run: SyncRun, *, fresh_currency: bool = False) -> Iterator[ShopifyAdminClient]:
    """The shop's client with the state the previous step left (saved again when the step ends, even by an error)."""
    store = run.store
    state = cache.get(_shopify_state_key(store)) or {}
    client = ShopifyAdminClient(
        store.domain,
        get_shopify_access_token(store=store),
        session=_sync_session(run),
        bucket=CostBucket.from_state(state.get("bucket")),
        currency=None if fresh_currency else state.get("currency"),
        customers_readable=fresh_currency or state.get("customers_readable", True) is not False,
    )
    try:
        yield client
    finally:
        state = {
            "bucket": client.bucket.to_state(),
            "currency": client.known_currency,
            "customers_readable": client.customers_readable,
        }
        cache.set(_shopify_state_key(store), state, SHOPIFY_STATE_TTL)


def _shopify_start(run: SyncRun, cursor: str) -> SyncStep | None:
    if run.kind == SyncRun.Kind.CATCH_UP:
        with _shopify_client(run, fresh_currency=True) as client:
            client.shop_currency()
        return _advance(run, phase="start", cursor=cursor, next_phase="products", next_cursor="")
    with _shopify_client(run, fresh_currency=True) as client:
        client.shop_currency()
        count = client.products_count()
    bulk = count >= int(settings.SHOPIFY_BULK_THRESHOLD)
    return _advance(
        run,
        phase="start",
        cursor=cursor,
        next_phase="bulk_start" if bulk else "products",
        next_cursor="",
        total=count,
        detail={"mode": "bulk" if bulk else "paged"},
    )


def _page_step(
    run: SyncRun,
    *,
    phase: str,
    cursor: str,
    page: Page[Any],
    apply: Callable[[SyncRun], UpsertResult],
    then: tuple[str, str],
    total: int | None = None,
    ready_at: float | None = None,
) -> SyncStep | None:
    """Apply one page and go on to the next page of the same phase (not before `ready_at`), or to `then`."""
    next_phase, next_cursor = (phase, str(page.next_cursor)) if page.next_cursor else then
    step = _advance(
        run,
        phase=phase,
        cursor=cursor,
        next_phase=next_phase,
        next_cursor=next_cursor,
        apply=apply,
        skipped=page.skipped,
        total=total,
    )
    if step is None or not page.next_cursor or ready_at is None:
        return step
    # What the bucket asked for, less the time the page took to land: the next page waits in the queue.
    return dataclasses.replace(step, countdown=max(0.0, ready_at - time.time()))


def _shopify_products(run: SyncRun, cursor: str) -> SyncStep | None:
    with _shopify_client(run) as client:
        page = client.products_page(after=cursor or None, page_size=SHOPIFY_PAGE_SIZE, updated_since=_since(run))
        ready_at = time.time() + client.next_page_wait()
    return _page_step(
        run, phase="products", cursor=cursor, page=page, apply=_products(page), then=("orders", ""), ready_at=ready_at
    )


def _shopify_bulk_start(run: SyncRun, cursor: str) -> SyncStep | None:
    with _shopify_client(run) as client:
        operation_id = client.start_bulk_products()
    return _advance(
        run,
        phase="bulk_start",
        cursor=cursor,
        next_phase="bulk_poll",
        next_cursor="1",
        countdown=1.0,
        detail={"bulk_operation": operation_id},
    )


def _shopify_bulk_poll(run: SyncRun, cursor: str) -> SyncStep | None:
    with _shopify_client(run) as client:
        status = client.bulk_status(run.detail["bulk_operation"])
    if status.status == "COMPLETED" and status.url:
        return _advance(
            run,
            phase="bulk_poll",
            cursor=cursor,
            next_phase="bulk_import",
            next_cursor="",
            detail={"bulk_url": status.url},
        )
    if status.status == "COMPLETED":  # an empty catalog gives no file
        return _advance(run, phase="bulk_poll", cursor=cursor, next_phase="orders", next_cursor="")
    if status.status in ("FAILED", "CANCELED", "CANCELLED", "EXPIRED"):
        fail_sync_run(
            run_id=run.id,
            error=f"Shopify's bulk operation ended {status.status} ({status.error_code or 'no error code'}).",
        )
        return None
    polls = int(cursor or "1")
    return _advance(
        run,
        phase="bulk_poll",
        cursor=cursor,
        next_phase="bulk_poll",
        next_cursor=str(polls + 1),
        countdown=min(2.0 ** min(polls, 5), 30.0),
    )


def _shopify_bulk_import(run: SyncRun, cursor: str) -> SyncStep | None:
    """Stream the bulk JSONL, upserting batches; a redelivery skips the products already applied."""
    already = run.done
    position = 0
    batch: list[ProductPayload] = []
    skipped: list[SkippedRecord] = []
    with _shopify_client(run) as client:
        for item in client.iter_bulk_products(run.detail["bulk_url"]):
            if isinstance(item, SkippedRecord):
                position += 1
                if position > already:
                    skipped.append(item)
                continue
            position += 1
            if position <= already:
                continue
            batch.append(item)
            if len(batch) + len(skipped) >= BULK_BATCH_SIZE:
                if not _apply_bulk_batch(run, batch, skipped):
                    return None
                batch, skipped = [], []
    if (batch or skipped) and not _apply_bulk_batch(run, batch, skipped):
        return None
    return _advance(run, phase="bulk_import", cursor=cursor, next_phase="orders", next_cursor="")


def _apply_bulk_batch(run: SyncRun, batch: list[ProductPayload], skipped: list[SkippedRecord]) -> bool:
    with transaction.atomic():
        locked = SyncRun.objects.select_for_update().get(id=run.id)
        if locked.status != SyncRun.Status.RUNNING or not _expects(locked, "bulk_import", ""):
            return False
        result = upsert_products(store=locked.store, payloads=batch)
        locked.created += result.created
        locked.updated += result.updated
        locked.seen += len(batch)
        # done counts records read (skipped ones too), so a redelivery knows where to resume.
        locked.done += len(batch) + len(skipped)
        _record_skipped(locked, skipped)
        locked.save()
    run.done = locked.done
    return True


def _shopify_orders(run: SyncRun, cursor: str) -> SyncStep | None:
    since = _since(run) or _order_window_start()
    with _shopify_client(run) as client:
        page = client.orders_page(
            after=cursor or None, page_size=SHOPIFY_PAGE_SIZE, created_since=since, store_id=run.store_id
        )
        ready_at = time.time() + client.next_page_wait()
    return _page_step(
        run, phase="orders", cursor=cursor, page=page, apply=_order_lines(page), then=("finish", ""), ready_at=ready_at
    )


# WooCommerce.


# A store's currency and category tree, read at the start of each sync and reused by its pages and by
# webhooks (whose payloads carry neither), so that they cost no extra REST calls.
WOOCOMMERCE_CONTEXT_TTL = 24 * 3600


def _woocommerce_context_key(store: Store) -> str:
    return f"catalog_sync:woocommerce:context:{store.id}"


def woocommerce_catalog(*, store: Store, session: requests.Session | None = None) -> WooCommerceCatalog:
    """The store's catalog reader with the context its last sync cached (currency, category tree)."""
    cached = cache.get(_woocommerce_context_key(store))
    currency, category_paths = cached if cached else (None, None)
    client = build_woocommerce_client(store=store, session=session)
    return WooCommerceCatalog(client, currency=currency, category_paths=category_paths)


def _woocommerce(run: SyncRun) -> WooCommerceCatalog:
    return woocommerce_catalog(store=run.store, session=_sync_session(run))


def _woocommerce_start(run: SyncRun, cursor: str) -> SyncStep | None:
    catalog = WooCommerceCatalog(build_woocommerce_client(store=run.store, session=_sync_session(run)))
    context = (catalog.currency(), dict(catalog.category_paths()))
    cache.set(_woocommerce_context_key(run.store), context, WOOCOMMERCE_CONTEXT_TTL)
    return _advance(run, phase="start", cursor=cursor, next_phase="products", next_cursor="1")


def _woocommerce_products(run: SyncRun, cursor: str) -> SyncStep | None:
    page = _woocommerce(run).products_page(
        page=int(cursor or "1"), per_page=WOOCOMMERCE_PAGE_SIZE, modified_after=_since(run)
    )
    return _page_step(
        run, phase="products", cursor=cursor, page=page, apply=_products(page), then=("orders", "1"), total=page.total
    )


def _woocommerce_orders(run: SyncRun, cursor: str) -> SyncStep | None:
    catalog = _woocommerce(run)
    since = _since(run)
    if since is not None:
        page = catalog.orders_page(
            page=int(cursor or "1"), per_page=WOOCOMMERCE_PAGE_SIZE, modified_after=since, store_id=run.store_id
        )
    else:
        page = catalog.orders_page(
            page=int(cursor or "1"),
            per_page=WOOCOMMERCE_PAGE_SIZE,
            created_after=_order_window_start(),
            store_id=run.store_id,
        )
    return _page_step(run, phase="orders", cursor=cursor, page=page, apply=_order_lines(page), then=("finish", ""))


_PHASES: dict[tuple[str, str], Callable[[SyncRun, str], SyncStep | None]] = {
    (Store.Platform.SHOPIFY, "start"): _shopify_start,
    (Store.Platform.SHOPIFY, "products"): _shopify_products,
    (Store.Platform.SHOPIFY, "bulk_start"): _shopify_bulk_start,
    (Store.Platform.SHOPIFY, "bulk_poll"): _shopify_bulk_poll,
    (Store.Platform.SHOPIFY, "bulk_import"): _shopify_bulk_import,
    (Store.Platform.SHOPIFY, "orders"): _shopify_orders,
    (Store.Platform.SHOPIFY, "finish"): _finish,
    (Store.Platform.WOOCOMMERCE, "start"): _woocommerce_start,
    (Store.Platform.WOOCOMMERCE, "products"): _woocommerce_products,
    (Store.Platform.WOOCOMMERCE, "orders"): _woocommerce_orders,
    (Store.Platform.WOOCOMMERCE, "finish"): _finish,
}
