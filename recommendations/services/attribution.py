"""Writes of order attribution: which order lines recommendations earned, for which source, miner and arm.

Deterministic first: a line whose `_bitrecs_rec_id` (read by the order sync into OrderLine.rec_id) names a list
of the same store is credited to that list's source (network or local) and, for network lists, to the miner and
validator of the answer. The line's `_bitrecs_arm` property (the experiment arm the widget served) travels along.
Optionally, per store, a line without a rec id is "assisted" when the same session clicked a card of that product
within the store's window before the order (Store.settings["attribution"] = {"assisted": true, "window_hours":
24}; off by default); assisted lines are kept apart (AttributedLine.kind) and never count for miners.

Revenue is the line's price x quantity less its discounts, never tax or shipping; refunds (and any later update
of the order) rewrite it: call `attribute_order` again with the order's current state, it is idempotent.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from bitrecs_site.http import json_list, platform_id
from catalog_sync.models import OrderLine
from merchants.models import Store
from recommendations.models import Arm, AttributedLine, EventType, ShopperEvent
from recommendations.selectors import get_rec_attribution, rec_id_source
from recommendations.services.experiments import SummaryLine, summarise_order

logger = logging.getLogger(__name__)

ARM_PROPERTY = "_bitrecs_arm"
# The widget's session id, when the storefront passes it with the order (a cart attribute on Shopify, order meta
# on WooCommerce): the assisted-sales fallback needs it.
SESSION_PROPERTY = "_bitrecs_sid"
ATTRIBUTED_LINE_UPDATE_FIELDS = [
    *("ordered_at", "kind", "sku", "product_external_id", "rec_id", "source", "miner_hotkey", "validator"),
    *("placement", "arm", "quantity", "gross", "refunded", "currency", "updated_at"),
]
ZERO = Decimal("0.00")
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1e11")


@dataclass(frozen=True)
class LineExtras:
    """What the order sync does not keep for a line: its arm, its discounts and what refunds took back."""

    arm: str = ""
    discount: Decimal = ZERO
    refunded_amount: Decimal = ZERO


@dataclass(frozen=True)
class OrderExtras:
    """Attribution facts of one order read from its webhook body (see order_extras_from_webhook)."""

    order_id: str
    session_id: str = ""
    lines: Mapping[str, LineExtras] = field(default_factory=dict)
    # Refunds the platform reports for the whole order only (WooCommerce): spread over lines by their net amount.
    order_refund: Decimal = ZERO


@dataclass(frozen=True)
class OrderAttribution:
    """What one call credited: lines per kind, attributed revenue, and the order's UTC day (for the rollups)."""

    order_id: str
    deterministic: int = 0
    assisted: int = 0
    revenue: Decimal = ZERO
    removed: int = 0
    day: str | None = None


def attribute_order(
    *, store: Store, order_id: str, extras: OrderExtras | None = None, session_id: str = ""
) -> OrderAttribution:
    """(Re)attribute one order from its stored OrderLine rows; lines no longer attributable are removed."""
    lines = list(OrderLine.objects.filter(store=store, order_id=order_id).order_by("line_id"))
    extras = extras or OrderExtras(order_id=order_id)
    session_id = session_id or extras.session_id
    per_line = {line.line_id: extras.lines.get(line.line_id, LineExtras()) for line in lines}
    refund_shares = _spread(extras.order_refund, {line.line_id: _gross(line, per_line[line.line_id]) for line in lines})
    assisted_window = _assisted_window(store)
    rows: list[AttributedLine] = []
    order_lines: list[SummaryLine] = []
    for line in lines:
        line_extras = per_line[line.line_id]
        gross = _gross(line, line_extras)
        refunded = min(gross, line_extras.refunded_amount + refund_shares.get(line.line_id, ZERO))
        order_lines.append(SummaryLine(ordered_at=line.created_at, net=gross - refunded, arm=line_extras.arm))
        credit = _deterministic(store, line) or (
            _assisted(store, line, session_id=session_id, window=assisted_window) if assisted_window else None
        )
        if credit is None:
            continue
        rows.append(
            AttributedLine(
                store=store,
                order_id=order_id,
                line_id=line.line_id,
                ordered_at=line.created_at,
                sku=line.sku,
                product_external_id=line.product_external_id,
                arm=line_extras.arm if line_extras.arm in Arm.values else "",
                quantity=line.quantity,
                gross=gross,
                refunded=refunded,
                currency=line.currency,
                **credit,
            )
        )
    kept = [row.line_id for row in rows]
    with transaction.atomic():
        removed, _ = AttributedLine.objects.filter(store=store, order_id=order_id).exclude(line_id__in=kept).delete()
        AttributedLine.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["store", "order_id", "line_id"],
            update_fields=ATTRIBUTED_LINE_UPDATE_FIELDS,
        )
        summarise_order(store=store, order_id=order_id, lines=order_lines, attributed=rows, session_id=session_id)
    result = OrderAttribution(
        order_id=order_id,
        deterministic=sum(1 for r in rows if r.kind == AttributedLine.Kind.DETERMINISTIC),
        assisted=sum(1 for r in rows if r.kind == AttributedLine.Kind.ASSISTED),
        revenue=sum((r.gross - r.refunded for r in rows), ZERO),
        removed=removed,
        day=lines[0].created_at.date().isoformat() if lines else None,
    )
    logger.info("recommendations.order_attributed", extra={"store_id": store.id, **result.__dict__})
    return result


def _gross(line: OrderLine, extras: LineExtras) -> Decimal:
    if line.price is None:
        return ZERO
    return max(ZERO, (line.price * line.quantity - extras.discount).quantize(CENT))


def _spread(total: Decimal, weights: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Split an order-level amount over lines in proportion to their weights, to the cent, summing to the total."""
    whole = sum(weights.values(), ZERO)
    if total <= 0 or whole <= 0:
        return {}
    shares = {key: (total * weight / whole).quantize(CENT) for key, weight in weights.items()}
    if shares:
        last = max(weights, key=lambda key: weights[key])
        shares[last] += total - sum(shares.values(), ZERO)
    return shares


def _deterministic(store: Store, line: OrderLine) -> dict[str, Any] | None:
    if not line.rec_id:
        return None
    found = get_rec_attribution(rec_id=line.rec_id)
    if found is not None and found.store_id == store.id:
        return {
            "kind": AttributedLine.Kind.DETERMINISTIC,
            "rec_id": line.rec_id,
            "source": found.source,
            "miner_hotkey": found.miner_hotkey,
            "validator": found.validator,
            "placement": found.placement,
        }
    source = rec_id_source(line.rec_id)
    if source is None or (found is not None and found.store_id != store.id):
        return None  # not one of our ids, or another store's: nothing to credit
    # A local id whose list was rebuilt since (or a network answer pruned): still that source, no miner.
    return {"kind": AttributedLine.Kind.DETERMINISTIC, "rec_id": line.rec_id, "source": source}


def _assisted_window(store: Store) -> timedelta | None:
    raw = store.settings.get("attribution") if isinstance(store.settings, dict) else None
    if not isinstance(raw, dict) or raw.get("assisted") is not True:
        return None
    hours = raw.get("window_hours", settings.ATTRIBUTION_DEFAULT_WINDOW_HOURS)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24 * 30:
        hours = settings.ATTRIBUTION_DEFAULT_WINDOW_HOURS
    return timedelta(hours=float(hours))


def _assisted(store: Store, line: OrderLine, *, session_id: str, window: timedelta) -> dict[str, Any] | None:
    skus = [value for value in (line.sku, line.product_external_id) if value]
    if not session_id or not skus:
        return None
    click = (
        ShopperEvent.objects.filter(
            store=store,
            session_id=session_id,
            sku__in=skus,
            type=EventType.CLICK,
            received_at__gte=line.created_at - window,
            received_at__lte=line.created_at,
        )
        .order_by("-received_at")
        .values("rec_id", "source", "placement")
        .first()
    )
    if click is None:
        return None
    return {"kind": AttributedLine.Kind.ASSISTED, **click}  # no miner: assisted sales never score miners


# --- Reading the facts the order sync leaves out, from the order's webhook body ----------------------------


def order_extras_from_webhook(*, platform: str, body: Any) -> OrderExtras | None:
    """Arm, discounts, refunds and session of a Shopify or WooCommerce order body; None when it names no order.

    Tolerant: a field it cannot read counts as absent (the order sync already refused what it could not map).
    """
    if not isinstance(body, dict):
        return None
    order_id = platform_id(body.get("id"))
    if not order_id:
        return None
    if platform == Store.Platform.SHOPIFY:
        return _shopify_extras(order_id, body)
    if platform == Store.Platform.WOOCOMMERCE:
        return _woocommerce_extras(order_id, body)
    return None


def _shopify_extras(order_id: str, body: dict[str, Any]) -> OrderExtras:
    refunded: dict[str, Decimal] = {}
    for refund in json_list(body.get("refunds")):
        for item in json_list(refund.get("refund_line_items") if isinstance(refund, dict) else None):
            if isinstance(item, dict):
                line_id = platform_id(item.get("line_item_id"))
                refunded[line_id] = refunded.get(line_id, ZERO) + _money(item.get("subtotal"))  # before tax
    lines: dict[str, LineExtras] = {}
    for item in json_list(body.get("line_items")):
        if not isinstance(item, dict) or not platform_id(item.get("id")):
            continue
        line_id = platform_id(item["id"])
        allocations = json_list(item.get("discount_allocations"))
        discount = (
            sum((_money(a.get("amount")) for a in allocations if isinstance(a, dict)), ZERO)
            if allocations
            else _money(item.get("total_discount"))
        )
        lines[line_id] = LineExtras(
            arm=_property(item.get("properties"), ARM_PROPERTY),
            discount=discount,
            refunded_amount=refunded.get(line_id, ZERO),
        )
    return OrderExtras(
        order_id=order_id, session_id=_property(body.get("note_attributes"), SESSION_PROPERTY), lines=lines
    )


def _woocommerce_extras(order_id: str, body: dict[str, Any]) -> OrderExtras:
    # Line prices in the order sync are already after discounts; refunds are order-level totals (negative).
    lines = {
        platform_id(item.get("id")): LineExtras(arm=_meta(item.get("meta_data"), ARM_PROPERTY))
        for item in json_list(body.get("line_items"))
        if isinstance(item, dict) and platform_id(item.get("id"))
    }
    refund = sum((abs(_money(r.get("total"))) for r in json_list(body.get("refunds")) if isinstance(r, dict)), ZERO)
    return OrderExtras(
        order_id=order_id, session_id=_meta(body.get("meta_data"), SESSION_PROPERTY), lines=lines, order_refund=refund
    )


def _money(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return ZERO
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return ZERO
    # Money fits the model's 14 digits; anything else (NaN, Infinity, 1e999) is not an amount.
    return amount.quantize(CENT) if amount.is_finite() and abs(amount) < MAX_AMOUNT else ZERO


def _property(properties: Any, name: str) -> str:
    """A line-item property or note attribute: [{"name", "value"}] or a plain object."""
    if isinstance(properties, dict):
        value = properties.get(name)
        return str(value)[:64] if isinstance(value, str | int) else ""
    for item in json_list(properties):
        if isinstance(item, dict) and item.get("name") == name and isinstance(item.get("value"), str | int):
            return str(item["value"])[:64]
    return ""


def _meta(meta: Any, key: str) -> str:
    for entry in json_list(meta):
        if isinstance(entry, dict) and entry.get("key") == key and isinstance(entry.get("value"), str | int):
            return str(entry["value"])[:64]
    return ""


def attribute_webhook_order(*, store: Store, platform: str, body: Any) -> OrderAttribution | None:
    """Attribute an order after its webhook was applied to OrderLine (create, update, refund, delete alike).

    A day older than yesterday gets its rollup recomputed (the beat task only redoes yesterday and today).
    """
    extras = order_extras_from_webhook(platform=platform, body=body)
    if extras is None:
        return None
    result = attribute_order(store=store, order_id=extras.order_id, extras=extras)
    day = stale_rollup_day(result=result)
    if day is not None:
        from recommendations.tasks import rollup_day_task  # services enqueue this task

        transaction.on_commit(lambda: rollup_day_task.delay(day, store.id))
    return result


def attribute_orders(*, store: Store, order_ids: Sequence[str]) -> list[OrderAttribution]:
    """Attribute several stored orders (a catalog sync's backfill): arms and refunds unknown, lines as stored."""
    return [attribute_order(store=store, order_id=order_id) for order_id in order_ids]


def stale_rollup_day(*, result: OrderAttribution) -> str | None:
    """The order's day when its rollup will not be recomputed by the recent-days beat task (older than yesterday)."""
    if result.day is None:
        return None
    yesterday = (timezone.now() - timedelta(days=1)).date().isoformat()
    return result.day if result.day < yesterday else None
