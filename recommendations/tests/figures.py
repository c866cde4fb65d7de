"""Test helpers that make real figures: events through the intake's checker and writer, orders through attribution.

Not a test module: the analytics, experiments and portal tests share it.
"""

import json
from datetime import datetime
from decimal import Decimal
from itertools import count
from typing import Any

from catalog_sync.models import OrderLine
from merchants.models import Store
from recommendations.models import NetworkAnswer, RecommendationList
from recommendations.services.attribution import LineExtras, OrderAttribution, OrderExtras, attribute_order
from recommendations.services.events import parse_event_batch, write_event_records

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
