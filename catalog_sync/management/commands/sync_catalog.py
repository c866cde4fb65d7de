import sys
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from bitrecs_site.db import require_migrated_database
from catalog_sync.models import SyncRun
from catalog_sync.services.sync import SyncStep, begin_store_sync, fail_sync_run, run_sync_step
from catalog_sync.tasks import sync_store_task
from merchants.exceptions import PlatformUnavailable
from merchants.models import Store

MAX_RETRIES = 8


class Command(BaseCommand):
    help = (
        "Sync a store's catalog and recent order lines from its platform. By default the sync is queued for "
        "the Celery workers; --now runs it here, with a progress bar."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--store", required=True, metavar="SITE_KEY", help="the store's site key")
        parser.add_argument("--now", action="store_true", help="run in this process instead of queueing it")
        parser.add_argument("--kind", choices=[SyncRun.Kind.FULL, SyncRun.Kind.CATCH_UP], default=SyncRun.Kind.FULL)

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated_database()
        store = Store.objects.filter(site_key=options["store"]).first()
        if store is None:
            raise CommandError(f"No store has the site key {options['store']!r}.")
        if store.platform not in (Store.Platform.SHOPIFY, Store.Platform.WOOCOMMERCE):
            raise CommandError(f"{store.domain} is a {store.platform} store: its catalog comes from import_catalog.")
        if not store.is_active:
            raise CommandError(f"{store.domain} is {store.get_status_display().lower()}; it cannot sync until active.")
        if not options["now"]:
            sync_store_task.delay(store.id, options["kind"])
            self.stdout.write(f"Queued a {options['kind']} sync of {store.domain}; the workers will run it.")
            return
        step = begin_store_sync(store=store, kind=options["kind"])
        if step is None:
            raise CommandError(f"{store.domain} already has a running sync; try again when it ends.")
        run = self._drive(step)
        self.stdout.write(
            f"Sync run {run.id} {run.status}: {run.seen} products seen, {run.created} created, {run.updated} updated, "
            f"{run.deleted} deleted, {run.failed} failed; {run.detail.get('order_lines', 0)} order lines."
        )
        for error in run.errors[:20]:
            self.stdout.write(f"  failed {error.get('id') or '?'}: {error.get('reason')}")
        if run.error:
            raise CommandError(run.error)

    def _drive(self, first: SyncStep) -> SyncRun:
        step: SyncStep | None = first
        retries = 0
        bar = tqdm(desc="products", unit="product", file=sys.stderr, disable=None)
        try:
            while step is not None:
                if step.countdown:
                    time.sleep(step.countdown)
                try:
                    following = run_sync_step(run_id=step.run_id, phase=step.phase, cursor=step.cursor)
                except PlatformUnavailable as exc:
                    retries += 1
                    if retries > MAX_RETRIES:
                        fail_sync_run(run_id=step.run_id, error=f"Gave up after {MAX_RETRIES} retries: {exc.message}")
                        break
                    time.sleep(min(exc.retry_after or 2**retries, 60))
                    continue
                retries = 0
                run = SyncRun.objects.get(id=step.run_id)
                bar.total = run.total
                bar.n = run.done
                bar.set_postfix_str(step.phase)
                bar.refresh()
                step = following
        finally:
            bar.close()
        return SyncRun.objects.get(id=first.run_id)
