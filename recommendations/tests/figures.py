"""Test helpers that make real figures: events through the intake's checker and writer, orders through attribution.

Not a test module: the analytics, experiments and portal tests share it.
"""

import json
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from django.utils import timezone

from catalog_sync.models import OrderLine
from merchants.models import Store
from recommendations.experiments import assign_arm, check_weights
from recommendations.models import Experiment, NetworkAnswer, RecommendationList
from recommendations.services.attribution import LineExtras, OrderAttribution, OrderExtras, attribute_order
from recommendations.services.events import parse_event_batch, write_event_records
from recommendations.services.rollups import rollup_day

_ids = count(1)
LOCAL_REC = "l_localproduct01"
NETWORK_REC = "n_networkprod001"


def make_lists(store: Store, *, suffix: str = "") -> tuple[str, str]:
    """A local product list and a network answer of the store; returns their rec ids (local, network)."""
    local, network = LOCAL_REC + suffix, NETWORK_REC + suffix
    RecommendationList.objects.create(store=store, placement="product", source="local", rec_id=local, query_id="P1")
    NetworkAnswer.objects.create(store=store, placement="product", rec_id=network, miner_hotkey="5MinerHotkey")
    return local, network


def send_events(store: Store, events: list[dict[str, Any]], *, at: datetime) -> int:
    """Check a widget batch as POST /api/v1/events does and write it as the drain does, received at `at`."""
    for event in events:
        event.setdefault("event_id", f"ev-{next(_ids)}")
        event.setdefault("ts", int(at.timestamp() * 1000))
        event.setdefault("sku", "SKU-1")
    body = json.dumps({"site_key": store.site_key, "events": events}).encode()
    batch = parse_event_batch(body=body)
    return write_event_records(
        records=[{"k": batch.site_key, "s": store.id, "r": at.timestamp(), "e": list(batch.events)}]
    )


def place_order(
    store: Store,
    *,
    at: datetime,
    lines: list[tuple[str, str, int, str]],
    session_id: str = "",
    arm: str = "",
    order_id: str = "",
) -> OrderAttribution:
    """Store an order's lines [(sku, price, quantity, rec_id)] as the order sync does and attribute it."""
    order_id = order_id or f"order-{next(_ids)}"
    extras: dict[str, LineExtras] = {}
    for index, (sku, price, quantity, rec_id) in enumerate(lines):
        line_id = f"{order_id}-{index}"
        OrderLine.objects.create(
            store=store,
            order_id=order_id,
            line_id=line_id,
            created_at=at,
            sku=sku,
            price=Decimal(price),
            quantity=quantity,
            currency="EUR",
            rec_id=rec_id,
        )
        extras[line_id] = LineExtras(arm=arm if rec_id else "")
    return attribute_order(
        store=store, order_id=order_id, extras=OrderExtras(order_id=order_id, session_id=session_id, lines=extras)
    )


def fill_store(store: Store, *, days: int, experiment: Experiment | None = None, visitors: int = 8) -> None:
    """`days` days of widget traffic up to today: impressions, clicks, add-to-carts and orders, then the rollups."""
    local, network = make_lists(store, suffix=str(store.pk))
    weights = check_weights(experiment.weights) if experiment else {}
    today = timezone.now().date()
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        at = datetime.combine(day, time(9, 0), tzinfo=UTC)
        if back == 0:
            at = timezone.now() if experiment is not None else min(at, timezone.now() - timedelta(minutes=1))
        events: list[dict[str, Any]] = []
        count = visitors + (back * 7) % 5
        for index in range(count):
            sid = f"visitor-{store.pk}-{day:%m%d}-{index:03d}"
            arm = ("network", "local")[index % 2]
            if experiment is not None and experiment.started_at and at >= experiment.started_at:
                arm = assign_arm(store_id=store.pk, experiment_id=experiment.pk, session_id=sid, weights=weights)
            if arm == "holdout":
                events.append({"type": "view", "arm": arm, "session_id": sid})
                if index % 4 == 0:
                    place_order(store, at=at, lines=[("SKU-9", "18.00", 1, "")], session_id=sid)
                continue
            rec = {"network": network, "local": local}.get(arm, network if index % 3 else local)
            placement = ("product", "product", "cart", "home")[index % 4]
            card = {"rec_id": rec, "placement": placement, "arm": arm, "session_id": sid}
            events += [{"type": "impression", **card} for _ in range(3)]
            if index % 3 != 2:
                events.append({"type": "click", **card})
            if index % 3 == 0 and placement == "product":
                events.append({"type": "add_to_cart", **card})
                place_order(
                    store, at=at, lines=[("SKU-1", "24.00", 1 + index % 2, rec), ("SKU-9", "9.50", 1, "")],
                    session_id=sid, arm=arm,
                )  # fmt: skip
            elif index % 5 == 1:
                place_order(store, at=at, lines=[("SKU-9", "31.00", 1, "")], session_id=sid)
        for start in range(0, len(events), 50):
            send_events(store, events[start : start + 50], at=at)
        rollup_day(day=day, store_id=store.pk)
