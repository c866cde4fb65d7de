"""Celery tasks of the recommendations app: thin wrappers that take ids and (re)compute stored lists."""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from merchants.models import Store

logger = logging.getLogger(__name__)

# A 100k-product store takes minutes to index; give the rebuild room beyond the default task limits.
REBUILD_SOFT_TIME_LIMIT = 55 * 60
REBUILD_TIME_LIMIT = 60 * 60


@shared_task(
    name="recommendations.rebuild_store",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=REBUILD_SOFT_TIME_LIMIT,
    time_limit=REBUILD_TIME_LIMIT,
)
def rebuild_store_task(store_id: int) -> None:
    """Build the store's engine and rewrite all its local lists (idempotent; a store gone meanwhile is skipped)."""
    from recommendations.services import rebuild_store_lists  # services enqueue this task

    store = Store.objects.filter(id=store_id).first()
    if store is None:
        logger.info("recommendations.store_gone", extra={"store_id": store_id})
        return
    rebuild_store_lists(store=store)


@shared_task(name="recommendations.refresh_products", acks_late=True, ignore_result=True)
def refresh_products_task(store_id: int, external_ids: list[str] | None = None) -> None:
    """Recompute the lists touched by changed products: those given, plus every product pending for the store."""
    from recommendations.services import refresh_pending_lists, refresh_product_lists  # services enqueue this

    store = Store.objects.filter(id=store_id).first()
    if store is None:
        logger.info("recommendations.store_gone", extra={"store_id": store_id})
        return
    if external_ids:
        refresh_product_lists(store=store, external_ids=external_ids)
    refresh_pending_lists(store=store)


@shared_task(name="recommendations.prune_network_answers", ignore_result=True)
def prune_network_answers_task() -> int:
    """Forget network answers older than RECS_NETWORK_ANSWER_RETENTION_DAYS that no list serves any more."""
    from recommendations.services import prune_network_answers  # services enqueue tasks from here

    days = int(settings.RECS_NETWORK_ANSWER_RETENTION_DAYS)
    return prune_network_answers(before=timezone.now() - timedelta(days=days))


@shared_task(name="recommendations.prune_saved_engines", ignore_result=True)
def prune_saved_engines_task() -> int:
    """Delete saved engines past their age and those of stores that are gone (shop/redact)."""
    from recommendations.services import prune_saved_engines  # services enqueue tasks from here

    return prune_saved_engines()


@shared_task(name="recommendations.drain_events", ignore_result=True)
def drain_events_task() -> int:
    """Write the spooled shopper-event batches to the database (a database outage leaves them spooled)."""
    from recommendations.services.events import drain_event_spool  # services enqueue this task

    return drain_event_spool()


@shared_task(name="recommendations.prune_events", ignore_result=True)
def prune_events_task() -> int:
    """Roll up the days about to leave, then delete raw events older than EVENTS_RETENTION_DAYS (returns how many
    went) and per-visitor experiment rows older than EXPERIMENT_VISITOR_RETENTION_DAYS."""
    from recommendations.services.events import prune_events
    from recommendations.services.rollups import prune_visitor_days, rollup_day

    before = timezone.now() - timedelta(days=int(settings.EVENTS_RETENTION_DAYS))
    rollup_day(day=(before - timedelta(days=1)).date())
    rollup_day(day=before.date())
    pruned = prune_events(before=before)
    visitors = prune_visitor_days()
    logger.info("recommendations.events_pruned", extra={"events": pruned, "visitor_days": visitors})
    return pruned


@shared_task(name="recommendations.rollup_recent_days", ignore_result=True)
def rollup_recent_days_task() -> int:
    """Recompute the daily rollups of yesterday and today (UTC) for every store; returns rows written."""
    from recommendations.services.rollups import rollup_day

    today = timezone.now().date()
    return rollup_day(day=today - timedelta(days=1)) + rollup_day(day=today)


@shared_task(name="recommendations.rollup_day", ignore_result=True)
def rollup_day_task(day: str, store_id: int | None = None) -> int:
    """Recompute one UTC day's rollups ("YYYY-MM-DD"), for one store or all; idempotent, re-runnable."""
    from datetime import date

    from recommendations.services.rollups import rollup_day

    return rollup_day(day=date.fromisoformat(day), store_id=store_id)
