"""Reads for `GET /subnet/miner/stats/...`: storefront actions attributed to the miner whose answer led to them.

The public validators fetch these as plain dicts and count, per miner hotkey, the VIEW_PRODUCT, ADD_TO_CART and
PURCHASE actions (BITRECS_PROTOCOL.md §4 and §6, `UserAction`). Each kind of action comes from its own source; the
sources are merged by time: purchases from order lines carrying a network rec_id, product views and add-to-carts
from the widget's events carrying one (ShopperEvent, whose miner hotkey was resolved when it was written).
"""

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from django.db.models import OuterRef, Subquery

from catalog_sync.models import OrderLine
from recommendations.models import EventType, NetworkAnswer, ShopperEvent, Source, rec_id_prefix
from subnet.types import ActionType

# At most this many actions per answer, oldest first: a 30-day window of a busy network stays well under it,
# and the endpoint is public, so no request can make it read or send an unbounded number of rows.
MAX_ACTIONS: Final = 50_000


@dataclass(frozen=True)
class MinerAction:
    """One storefront action, attributed to the miner (`hot_key`) whose recommendation led to it.

    `ip` and `user` stay "" because no customer data is stored (visitors are anonymous). `source_rank` and
    `row_id` only order actions with the same `created_at` deterministically across sources.
    """

    site_info: str
    action: ActionType
    sku: str
    hot_key: str
    created_at: datetime
    source_rank: int
    row_id: int
    ip: str = ""
    user: str = ""

    @property
    def sort_key(self) -> tuple[datetime, int, int]:
        return (self.created_at, self.source_rank, self.row_id)

    def as_wire(self) -> dict[str, str]:
        """The upstream `UserAction` shape: seven strings, `created_at` in UTC as `YYYY-MM-DDTHH:MM:SSZ`."""
        return {
            "ip": self.ip,
            "site_info": self.site_info,
            "user": self.user,
            "action": self.action.value,
            "sku": self.sku,
            "hot_key": self.hot_key,
            "created_at": format_wire_time(self.created_at),
        }


@dataclass(frozen=True)
class MinerActionPage:
    actions: list[MinerAction]
    # True when the window held more than the limit; `actions` are then its oldest `limit` actions.
    is_truncated: bool


# A source returns its actions with start <= created_at < end, oldest first (by created_at, then row id),
# at most `limit` of them.
ActionSource = Callable[[datetime, datetime, int], list[MinerAction]]


def format_wire_time(moment: datetime) -> str:
    """Format an aware datetime as UTC ISO 8601 to the second with a "Z" (the validator only passes it along)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_purchases(start: datetime, end: datetime, limit: int) -> list[MinerAction]:
    """Return one PURCHASE per order line whose network rec_id names a miner, ordered in [start, end), in one query.

    A line counts once whatever its quantity (upstream counts actions, not units). Its rec_id must resolve to a
    NetworkAnswer of the same store with a miner hotkey: local ("l_") ids, unknown ids and answers without a
    hotkey are skipped. `sku` is the line's SKU, or its product's platform id when the line has none.
    """
    hotkey = NetworkAnswer.objects.filter(rec_id=OuterRef("rec_id"), store_id=OuterRef("store_id")).values(
        "miner_hotkey"
    )[:1]
    rows = (
        OrderLine.objects.filter(
            created_at__gte=start, created_at__lt=end, rec_id__startswith=rec_id_prefix(Source.NETWORK)
        )
        .annotate(hot_key=Subquery(hotkey))
        .filter(hot_key__gt="")  # neither NULL (no such answer in this store) nor "" (no miner named)
        .order_by("created_at", "id")
        .values_list("id", "created_at", "store__site_key", "sku", "product_external_id", "hot_key")[:limit]
    )
    return [
        MinerAction(
            site_info=site_key,
            action=ActionType.PURCHASE,
            sku=sku or product_external_id,
            hot_key=hot_key,
            created_at=created_at,
            source_rank=0,
            row_id=row_id,
        )
        for row_id, created_at, site_key, sku, product_external_id, hot_key in rows
    ]


# Widget events that count for the miner whose network card led to them. A click is not listed: the product view
# it leads to (the view event carrying the card's rec_id) is the VIEW_PRODUCT, so a visit counts once.
WIDGET_ACTIONS: Final = {EventType.VIEW: ActionType.VIEW_PRODUCT, EventType.ADD_TO_CART: ActionType.ADD_TO_CART}


def list_widget_actions(start: datetime, end: datetime, limit: int) -> list[MinerAction]:
    """Return one VIEW_PRODUCT / ADD_TO_CART per widget event with a network rec_id naming a miner, in one query.

    `created_at` is when the event reached us (the shopper's clock is not trusted); events arrive within seconds.
    """
    rows = (
        ShopperEvent.objects.filter(
            received_at__gte=start, received_at__lt=end, source=Source.NETWORK, type__in=list(WIDGET_ACTIONS)
        )
        .exclude(miner_hotkey="")
        .order_by("received_at", "id")
        .values_list("id", "received_at", "store__site_key", "type", "sku", "miner_hotkey")[:limit]
    )
    return [
        MinerAction(
            site_info=site_key,
            action=WIDGET_ACTIONS[EventType(kind)],
            sku=sku,
            hot_key=hot_key,
            created_at=received_at,
            source_rank=1,
            row_id=row_id,
        )
        for row_id, received_at, site_key, kind, sku, hot_key in rows
    ]


ACTION_SOURCES: Final[tuple[ActionSource, ...]] = (list_purchases, list_widget_actions)


def list_miner_actions(
    *,
    start: datetime,
    end: datetime,
    limit: int = MAX_ACTIONS,
    sources: Iterable[ActionSource] = ACTION_SOURCES,
) -> MinerActionPage:
    """Return the attributed actions with start <= created_at < end, oldest first, at most `limit` of them.

    Each source is read once (one query each), for at most limit + 1 rows, so the cost is bounded by the limit
    and not by the window.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    merged = heapq.merge(*(source(start, end, limit + 1) for source in sources), key=lambda a: a.sort_key)
    actions = list(itertools.islice(merged, limit + 1))
    return MinerActionPage(actions=actions[:limit], is_truncated=len(actions) > limit)
