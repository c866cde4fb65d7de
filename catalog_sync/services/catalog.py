"""Catalog and order sync services: idempotent bulk upserts, sync runs and catalog file imports."""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import DatabaseError, IntegrityError, reset_queries, transaction
from django.utils import timezone

from catalog_sync.exceptions import SyncAlreadyRunning
from catalog_sync.importers import ParseContext, Skip, open_catalog
from catalog_sync.models import (
    CUSTOMER_KEY_LENGTH,
    EXTERNAL_ID_MAX_LENGTH,
    SKU_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    URL_MAX_LENGTH,
    OrderLine,
    Product,
    SyncRun,
    Variant,
)
from catalog_sync.text import clip
from catalog_sync.types import OrderLinePayload, ProductPayload, VariantPayload
from merchants.models import Store

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
# The range of an IntegerField on every backend (PostgreSQL's integer); counts beyond it are stored at its ends.
INTEGER_MIN = -(2**31)
INTEGER_MAX = 2**31 - 1
PRODUCT_UPDATE_FIELDS = [
    "sku",
    "title",
    "handle",
    "url",
    "description",
    "vendor",
    "product_type",
    "category_path",
    "tags",
    "options",
    "price",
    "compare_at_price",
    "currency",
    "image_url",
    "in_stock",
    "inventory",
    "status",
    "is_published",
    "platform_updated_at",
    "updated_at",
]
VARIANT_UPDATE_FIELDS = [
    "sku",
    "title",
    "options",
    "price",
    "compare_at_price",
    "in_stock",
    "inventory",
    "image_url",
    "position",
    "updated_at",
]
ORDER_LINE_UPDATE_FIELDS = [
    "product",
    "variant",
    "product_external_id",
    "variant_external_id",
    "sku",
    "quantity",
    "price",
    "currency",
    "rec_id",
    "customer_key",
    "created_at",
    "updated_at",
]


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert did: rows created and updated (variants counted apart)."""

    created: int = 0
    updated: int = 0
    variants_created: int = 0
    variants_updated: int = 0
    variants_deleted: int = 0

    def __add__(self, other: "UpsertResult") -> "UpsertResult":
        return UpsertResult(
            created=self.created + other.created,
            updated=self.updated + other.updated,
            variants_created=self.variants_created + other.variants_created,
            variants_updated=self.variants_updated + other.variants_updated,
            variants_deleted=self.variants_deleted + other.variants_deleted,
        )


@dataclass(frozen=True)
class ImportProgress:
    """How far an import has got, reported after each batch."""

    bytes_read: int
    bytes_total: int
    products: int
    skipped: int


@dataclass
class ImportReport:
    """The outcome of a catalog file import."""

    sync_run_id: int
    path: str
    format: str
    status: str = SyncRun.Status.SUCCEEDED
    products_created: int = 0
    products_updated: int = 0
    variants_created: int = 0
    variants_updated: int = 0
    variants_deleted: int = 0
    # Reason -> rows (or products) skipped for it, and one example value per reason.
    skipped: dict[str, int] = field(default_factory=dict)
    skip_examples: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def products(self) -> int:
        return self.products_created + self.products_updated

    @property
    def variants(self) -> int:
        return self.variants_created + self.variants_updated

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary_lines(self) -> list[str]:
        """Return the human summary the import command prints."""
        lines = [
            f"Imported {self.path} as {self.format} in {self.seconds:.1f}s (sync run {self.sync_run_id}, "
            f"{self.status}).",
            f"Products: {self.products_created} created, {self.products_updated} updated.",
            f"Variants: {self.variants_created} created, {self.variants_updated} updated, "
            f"{self.variants_deleted} deleted.",
        ]
        if not self.skipped:
            lines.append("Skipped: none.")
            return lines
        reasons = ", ".join(
            f"{reason}: {count}" + (f" (e.g. {self.skip_examples[reason]!r})" if reason in self.skip_examples else "")
            for reason, count in sorted(self.skipped.items(), key=lambda item: (-item[1], item[0]))
        )
        lines.append(f"Skipped {self.rows_skipped}: {reasons}.")
        return lines


def start_sync_run(*, store: Store, kind: str, detail: dict[str, Any] | None = None) -> SyncRun:
    """Open a running SyncRun for the store; raise SyncAlreadyRunning if one is already running."""
    try:
        with transaction.atomic():
            return SyncRun.objects.create(store=store, kind=kind, status=SyncRun.Status.RUNNING, detail=detail or {})
    except IntegrityError:
        running = SyncRun.objects.filter(store=store, status=SyncRun.Status.RUNNING).first()
        if running is None:
            raise
        raise SyncAlreadyRunning(
            f"Store {store.site_key} already has a running {running.get_kind_display().lower()} "
            f"(sync run {running.id}, started {running.started_at:%Y-%m-%d %H:%M:%S %Z}); try again when it ends."
        ) from None


def finish_sync_run(*, run: SyncRun, status: str, error: str = "") -> SyncRun:
    """Close a sync run with its final status (and the error that stopped it), saving its counts."""
    run.status = status
    run.error = error
    run.finished_at = timezone.now()
    run.save()
    return run


def upsert_products(*, store: Store, payloads: Sequence[ProductPayload]) -> UpsertResult:
    """Insert or update products and their variants by external id, in batches; safe to re-run.

    A payload's variants are the product's complete set: stored variants it lacks are deleted
    (unless its variants are None). A repeated external id in one call keeps the last payload.
    """
    result = UpsertResult()
    unique = list({payload.external_id: payload for payload in payloads}.values())
    for start in range(0, len(unique), BATCH_SIZE):
        with transaction.atomic():
            result += _upsert_product_batch(store=store, payloads=unique[start : start + BATCH_SIZE])
    return result


def clamp_integer(value: int, *, low: int = INTEGER_MIN) -> int:
    """An integer column's value: anything outside [low, INTEGER_MAX] becomes the nearest end."""
    return min(max(value, low), INTEGER_MAX)


def _optional_integer(value: int | None) -> int | None:
    return None if value is None else clamp_integer(value)


def _product_row(store: Store, payload: ProductPayload) -> Product:
    status = payload.status.lower()
    return Product(
        store=store,
        external_id=payload.external_id,
        sku=clip(payload.sku, SKU_MAX_LENGTH),
        title=clip(payload.title, TITLE_MAX_LENGTH),
        handle=clip(payload.handle, 255),
        url=clip(payload.url, URL_MAX_LENGTH),
        description=payload.description,
        vendor=clip(payload.vendor, 255),
        product_type=clip(payload.product_type, 255),
        category_path=clip(payload.category_path, TITLE_MAX_LENGTH),
        tags=list(payload.tags),
        options=[dict(option) for option in payload.options],
        price=payload.price,
        compare_at_price=payload.compare_at_price,
        currency=payload.currency.upper()[:3],
        image_url=clip(payload.image_url, URL_MAX_LENGTH),
        in_stock=payload.in_stock,
        inventory=_optional_integer(payload.inventory),
        status=status if status in Product.Status.values else Product.Status.ACTIVE,
        is_published=payload.is_published,
        platform_updated_at=payload.platform_updated_at,
    )


def _variant_row(product_id: int, payload: VariantPayload) -> Variant:
    return Variant(
        product_id=product_id,
        external_id=payload.external_id,
        sku=clip(payload.sku, SKU_MAX_LENGTH),
        title=clip(payload.title, TITLE_MAX_LENGTH),
        options=dict(payload.options),
        price=payload.price,
        compare_at_price=payload.compare_at_price,
        in_stock=payload.in_stock,
        inventory=_optional_integer(payload.inventory),
        image_url=clip(payload.image_url, URL_MAX_LENGTH),
        position=clamp_integer(payload.position, low=0),
    )


def _upsert_product_batch(*, store: Store, payloads: Sequence[ProductPayload]) -> UpsertResult:
    external_ids = [payload.external_id for payload in payloads]
    existing = set(
        Product.objects.filter(store=store, external_id__in=external_ids).values_list("external_id", flat=True)
    )
    Product.objects.bulk_create(
        [_product_row(store, payload) for payload in payloads],
        update_conflicts=True,
        unique_fields=["store", "external_id"],
        update_fields=PRODUCT_UPDATE_FIELDS,
    )
    # Re-read the ids: not every backend returns them from an upsert.
    ids = dict(Product.objects.filter(store=store, external_id__in=external_ids).values_list("external_id", "id"))
    managed = [payload for payload in payloads if payload.variants is not None]
    stored = list(
        Variant.objects.filter(product_id__in=[ids[p.external_id] for p in managed]).values_list(
            "id", "product_id", "external_id"
        )
    )
    stored_keys = {(product_id, external_id) for _, product_id, external_id in stored}
    rows: dict[tuple[int, str], Variant] = {}
    for payload in managed:
        product_id = ids[payload.external_id]
        for variant in payload.variants or ():
            rows[(product_id, variant.external_id)] = _variant_row(product_id, variant)
    if rows:
        Variant.objects.bulk_create(
            list(rows.values()),
            batch_size=BATCH_SIZE,
            update_conflicts=True,
            unique_fields=["product", "external_id"],
            update_fields=VARIANT_UPDATE_FIELDS,
        )
    gone = [variant_id for variant_id, product_id, external_id in stored if (product_id, external_id) not in rows]
    for start in range(0, len(gone), BATCH_SIZE):
        Variant.objects.filter(id__in=gone[start : start + BATCH_SIZE]).delete()
    variants_updated = len(stored_keys & rows.keys())
    return UpsertResult(
        created=len(payloads) - len(existing),
        updated=len(existing),
        variants_created=len(rows) - variants_updated,
        variants_updated=variants_updated,
        variants_deleted=len(gone),
    )


def upsert_order_lines(*, store: Store, payloads: Sequence[OrderLinePayload]) -> UpsertResult:
    """Insert or update order lines by (order id, line id), linking them to known products and variants."""
    result = UpsertResult()
    unique = list({(p.order_id, p.line_id): p for p in payloads}.values())
    for start in range(0, len(unique), BATCH_SIZE):
        with transaction.atomic():
            result += _upsert_order_line_batch(store=store, payloads=unique[start : start + BATCH_SIZE])
    return result


def delete_customer_order_lines(*, store: Store, customer_key: str) -> int:
    """Delete the store's order lines keyed to one customer (customers/redact); return how many went."""
    if not customer_key:
        return 0
    deleted, _ = OrderLine.objects.filter(store=store, customer_key=customer_key).delete()
    logger.info("catalog_sync.customer_redacted", extra={"store_id": store.id, "order_lines_deleted": deleted})
    return deleted


def _upsert_order_line_batch(*, store: Store, payloads: Sequence[OrderLinePayload]) -> UpsertResult:
    product_ids = dict(
        Product.objects.filter(
            store=store, external_id__in={p.product_external_id for p in payloads if p.product_external_id}
        ).values_list("external_id", "id")
    )
    variant_ids = {
        (product_id, external_id): variant_id
        for variant_id, product_id, external_id in Variant.objects.filter(
            product_id__in=set(product_ids.values()),
            external_id__in={p.variant_external_id for p in payloads if p.variant_external_id},
        ).values_list("id", "product_id", "external_id")
    }
    existing = set(
        OrderLine.objects.filter(store=store, order_id__in={p.order_id for p in payloads}).values_list(
            "order_id", "line_id"
        )
    )
    rows = []
    for payload in payloads:
        product_id = product_ids.get(payload.product_external_id)
        rows.append(
            OrderLine(
                store=store,
                order_id=clip(payload.order_id, EXTERNAL_ID_MAX_LENGTH),
                line_id=clip(payload.line_id, EXTERNAL_ID_MAX_LENGTH),
                product_id=product_id,
                variant_id=variant_ids.get((product_id, payload.variant_external_id)) if product_id else None,
                product_external_id=clip(payload.product_external_id, EXTERNAL_ID_MAX_LENGTH),
                variant_external_id=clip(payload.variant_external_id, EXTERNAL_ID_MAX_LENGTH),
                sku=clip(payload.sku, SKU_MAX_LENGTH),
                quantity=clamp_integer(payload.quantity, low=0),
                price=payload.price,
                currency=payload.currency.upper()[:3],
                rec_id=clip(payload.rec_id, 64),
                customer_key=clip(payload.customer_key, CUSTOMER_KEY_LENGTH),
                created_at=payload.ordered_at,
            )
        )
    OrderLine.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["store", "order_id", "line_id"],
        update_fields=ORDER_LINE_UPDATE_FIELDS,
    )
    updated = sum(1 for p in payloads if (p.order_id, p.line_id) in existing)
    return UpsertResult(created=len(payloads) - updated, updated=updated)


class _ImportTally:
    """Counts and the capped error list of a running import."""

    def __init__(self, run: SyncRun, report: ImportReport) -> None:
        self.run = run
        self.report = report

    def skip(self, item: Skip) -> None:
        report = self.report
        report.skipped[item.reason] = report.skipped.get(item.reason, 0) + 1
        if item.value and item.reason not in report.skip_examples:
            report.skip_examples[item.reason] = item.value[:80]
        self.run.error_count += 1
        if len(self.run.errors) < SyncRun.MAX_ERRORS:
            entry: dict[str, Any] = {"row": item.row, "id": item.external_id, "reason": item.reason}
            if item.value:
                entry["value"] = item.value[:200]
            self.run.errors.append(entry)

    def add(self, result: UpsertResult) -> None:
        report = self.report
        report.products_created += result.created
        report.products_updated += result.updated
        report.variants_created += result.variants_created
        report.variants_updated += result.variants_updated
        report.variants_deleted += result.variants_deleted

    def save(self, *, bytes_read: int, bytes_total: int) -> None:
        run, report = self.run, self.report
        run.created, run.updated = report.products_created, report.products_updated
        run.failed = report.rows_skipped
        run.seen = run.done = report.products + report.rows_skipped
        run.detail.update(
            bytes_read=bytes_read,
            bytes_total=bytes_total,
            variants_created=report.variants_created,
            variants_updated=report.variants_updated,
            variants_deleted=report.variants_deleted,
            skipped=dict(report.skipped),
        )
        run.save()


def _upsert_import_batch(*, store: Store, payloads: list[ProductPayload], tally: _ImportTally) -> None:
    try:
        tally.add(upsert_products(store=store, payloads=payloads))
        return
    except DatabaseError:
        logger.warning("catalog_sync.import_batch_rejected", extra={"store_id": store.id}, exc_info=True)
    # One row at a time, so the rows the database rejects cannot take the good ones down with them.
    for payload in payloads:
        try:
            tally.add(upsert_products(store=store, payloads=[payload]))
        except DatabaseError as exc:
            tally.skip(
                Skip(row=None, reason="rejected by the database", external_id=payload.external_id, value=str(exc))
            )


def import_catalog_file(
    *,
    store: Store,
    path: str | Path,
    fmt: str = "auto",
    progress: Callable[[ImportProgress], None] | None = None,
    currency: str = "",
    batch_size: int = BATCH_SIZE,
    encoding: str | None = None,
) -> ImportReport:
    """Import a catalog export into the store's products (streamed, upserted in batches), recorded as a SyncRun.

    Bad rows are skipped and counted per reason; they never stop the good rows or touch stored ones.
    Raises CatalogFileError or UnknownCatalogFormat before anything is written, SyncAlreadyRunning when
    the store has a sync running.
    """
    started = time.monotonic()
    context = ParseContext(currency=currency, store_domain=store.domain)
    reader = open_catalog(path, fmt=fmt, context=context, encoding=encoding)
    run = start_sync_run(store=store, kind=SyncRun.Kind.IMPORT, detail={"file": str(path), "format": reader.format})
    report = ImportReport(sync_run_id=run.id, path=str(path), format=reader.format)
    tally = _ImportTally(run, report)
    logger.info("catalog_sync.import_started", extra={"store_id": store.id, "sync_run_id": run.id})

    def flush(batch: list[ProductPayload]) -> None:
        if batch:
            _upsert_import_batch(store=store, payloads=batch, tally=tally)
        # With DEBUG on, Django keeps every query's SQL (a 1,000-row upsert is about 0.5 MB of it).
        reset_queries()
        tally.save(bytes_read=reader.bytes_read, bytes_total=reader.bytes_total)
        if progress is not None:
            progress(ImportProgress(reader.bytes_read, reader.bytes_total, report.products, report.rows_skipped))

    try:
        batch: list[ProductPayload] = []
        for item in reader:
            if isinstance(item, Skip):
                tally.skip(item)
                continue
            batch.append(item)
            if len(batch) >= batch_size:
                flush(batch)
                batch = []
        flush(batch)
    except BaseException as exc:
        report.status = SyncRun.Status.FAILED
        report.seconds = time.monotonic() - started
        finish_sync_run(run=run, status=SyncRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        logger.exception("catalog_sync.import_failed", extra={"store_id": store.id, "sync_run_id": run.id})
        raise
    if report.rows_skipped and not report.products:
        report.status = SyncRun.Status.FAILED
    elif report.rows_skipped:
        report.status = SyncRun.Status.PARTIAL
    report.seconds = time.monotonic() - started
    run.detail["seconds"] = round(report.seconds, 3)
    finish_sync_run(run=run, status=report.status)
    logger.info(
        "catalog_sync.import_finished",
        extra={"store_id": store.id, "sync_run_id": run.id, "products": report.products, "status": report.status},
    )
    return report
