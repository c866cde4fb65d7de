"""python manage.py import_catalog --store SITE_KEY FILE [--format auto|woocommerce|…|amazon] [--encoding CODEC].

Exits non-zero whenever the import failed: a file refused before anything was written (not text in its
encoding, binary, unknown format), a run that stopped on an error, or a run recorded as failed (no product
imported). Every failure is one message on stderr, never a traceback (the log has it).
"""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from bitrecs_site.db import require_migrated_database
from catalog_sync.exceptions import CatalogSyncError
from catalog_sync.importers import FORMATS
from catalog_sync.models import SyncRun
from catalog_sync.services import ImportProgress, import_catalog_file
from merchants.models import Store

# Without a terminal, one progress line per this many bytes read.
_PLAIN_PROGRESS_STEP = 4 * 1024 * 1024


class Command(BaseCommand):
    help = "Import a catalog export (WooCommerce, Shopify, Walmart or ASOS CSV, Amazon JSON) into a store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the catalog file")
        parser.add_argument("--store", required=True, help="the store's site key")
        parser.add_argument("--format", default="auto", choices=FORMATS, help="the file's format (default: detect)")
        parser.add_argument("--currency", default="", help="ISO currency of the prices when the file does not say")
        parser.add_argument(
            "--encoding",
            default=None,
            help="the file's text encoding, e.g. cp1252 or latin-1 (default: its byte order mark, else UTF-8); "
            "a file that is not valid text in it is refused before anything is imported",
        )
        parser.add_argument(
            "--build-now",
            action="store_true",
            help="Build the store's recommendation lists here, now (default: queue the rebuild for a worker).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        require_migrated_database()
        store = Store.objects.filter(site_key=options["store"]).first()
        if store is None:
            raise CommandError(f"No store has the site key {options['store']!r}; create one with create_store.")
        bar = tqdm(total=0, unit="B", unit_scale=True, desc="import", file=sys.stderr, disable=None, leave=False)
        next_plain = _PLAIN_PROGRESS_STEP

        def progress(state: ImportProgress) -> None:
            nonlocal next_plain
            if not bar.disable:
                bar.total = state.bytes_total
                bar.update(state.bytes_read - bar.n)
                bar.set_postfix(products=state.products, skipped=state.skipped, refresh=False)
            elif state.bytes_read >= next_plain:
                next_plain = state.bytes_read + _PLAIN_PROGRESS_STEP
                self.stderr.write(
                    f"import: {state.bytes_read * 100 // max(state.bytes_total, 1)}% read, "
                    f"{state.products} products, {state.skipped} skipped"
                )

        try:
            report = import_catalog_file(
                store=store,
                path=options["file"],
                fmt=options["format"],
                progress=progress,
                currency=options["currency"],
                encoding=options["encoding"],
            )
        except CatalogSyncError as exc:
            raise CommandError(str(exc)) from exc
        except Exception as exc:  # recorded as a failed run with its traceback in the log; one line here
            raise CommandError(f"The import failed ({type(exc).__name__}: {exc}); see the log for details.") from exc
        finally:
            bar.close()
        for line in report.summary_lines():
            self.stdout.write(line)
        if report.status == SyncRun.Status.FAILED:
            raise CommandError(
                f"The import failed: no product was imported (sync run {report.sync_run_id}); see the skipped rows."
            )
        self._rebuild_lists(store=store, now=options["build_now"])

    def _rebuild_lists(self, *, store: Store, now: bool) -> None:
        """Entry points compose apps: an import, like a sync, is followed by a rebuild of the store's lists."""
        from recommendations.services import rebuild_store_lists
        from recommendations.tasks import rebuild_store_task

        if now:
            written = rebuild_store_lists(store=store)
            self.stdout.write(
                f"recommendations: {written.product_lists} product, {written.cart_lists} cart and "
                f"{written.home_lists} home lists built in {written.seconds:.1f} s"
            )
        else:
            rebuild_store_task.delay(store.id)
            self.stdout.write("recommendations: rebuild queued for a worker (or run again with --build-now)")
