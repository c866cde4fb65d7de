"""The store overview's onboarding checklist: connected -> catalog synced -> widget placed -> first click -> first
attributed order, each read from the app that owns it (merchants' Store, catalog_sync's SyncRun, the rollups).
"""

from dataclasses import dataclass, field
from datetime import date
from typing import Final

from django.db.models import Min, Q

from catalog_sync.models import Product, SyncRun
from catalog_sync.selectors import get_latest_sync, get_running_sync
from merchants.models import Store
from recommendations.models import AttributedLine, DailyRollup, Placement

DONE: Final = "done"
PENDING: Final = "pending"
RUNNING: Final = "running"
FAILED: Final = "failed"


@dataclass(frozen=True)
class PlacementSeen:
    placement: str
    label: str
    first_day: date | None


@dataclass(frozen=True)
class Step:
    """One checklist step: `state` is done, pending, running or failed; `next` says what to do (blank when done)."""

    key: str
    title: str
    state: str
    detail: str
    next: str = ""
    progress: tuple[int, int | None] | None = None  # (done, total) of a running sync
    placements: list[PlacementSeen] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.state == DONE

    @property
    def percent(self) -> int | None:
        if self.progress is None or not self.progress[1]:
            return None
        return min(100, round(100 * self.progress[0] / self.progress[1]))


_CONNECT_HINT: Final[dict[str, str]] = {
    Store.Platform.SHOPIFY: "Open the Bitrecs app from your Shopify admin and approve its access.",
    Store.Platform.WOOCOMMERCE: "In WordPress, open WooCommerce -> Bitrecs and connect the store.",
    Store.Platform.CUSTOM: "Ask us to activate the store, then import your catalog file.",
}


def get_onboarding_steps(*, store: Store) -> list[Step]:
    """The five steps, in order, as they stand now."""
    return [_connected(store), _catalog(store), *_widget_and_click(store), _first_order(store)]


def _connected(store: Store) -> Step:
    if store.status == Store.Status.ACTIVE:
        return Step(key="connected", title="Store connected", state=DONE, detail=f"{store.get_platform_display()}.")
    if store.status == Store.Status.NEEDS_REAUTH:
        return Step(
            key="connected",
            title="Store connected",
            state=FAILED,
            detail="The platform withdrew our access.",
            next="Re-authorise Bitrecs from your store's admin.",
        )
    return Step(
        key="connected",
        title="Store connected",
        state=PENDING,
        detail=store.get_status_display() + ".",
        next=_CONNECT_HINT.get(store.platform, ""),
    )


def _catalog(store: Store) -> Step:
    title = "Catalog synced"
    running = get_running_sync(store=store)
    if running is not None:
        total = f" of {running.total}" if running.total else ""
        return Step(
            key="catalog",
            title=title,
            state=RUNNING,
            detail=f"{running.get_kind_display()} running: {running.done}{total} products done.",
            next="Wait for it to finish; this page refreshes by itself.",
            progress=(running.done, running.total),
        )
    latest = get_latest_sync(store=store)
    products = Product.objects.filter(store=store).count()
    if latest is not None and latest.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL) and products:
        failed = f", {latest.error_count} failed" if latest.error_count else ""
        plural = "" if products == 1 else "s"
        return Step(key="catalog", title=title, state=DONE, detail=f"{products} product{plural}{failed}.")
    if latest is not None and latest.status == SyncRun.Status.FAILED:
        return Step(
            key="catalog",
            title=title,
            state=FAILED,
            detail=f"The last sync stopped: {latest.error or 'no reason given'}"[:300],
            next="Fix the cause and start the sync again.",
        )
    return Step(
        key="catalog",
        title=title,
        state=PENDING,
        detail="No products yet.",
        next="Start a catalog sync (or import a product file for a custom store).",
    )


def _widget_and_click(store: Store) -> list[Step]:
    first = {
        row["placement"]: row["first"]
        for row in DailyRollup.objects.filter(store=store, impressions__gt=0)
        .values("placement")
        .annotate(first=Min("day"))
        .order_by()
    }
    seen = [PlacementSeen(placement=p.value, label=p.label, first_day=first.get(p.value)) for p in Placement]
    placed = [p for p in seen if p.first_day is not None]
    widget = Step(
        key="widget",
        title="Widget placed",
        state=DONE if placed else PENDING,
        detail=(
            "Seen on " + ", ".join(p.placement for p in placed) + "." if placed else "No widget impression seen yet."
        ),
        next="" if placed else "Add the Bitrecs block to your product, cart or home page and open that page once.",
        placements=seen,
    )
    clicked = DailyRollup.objects.filter(store=store).filter(Q(clicks__gt=0)).aggregate(first=Min("day"))["first"]
    click = Step(
        key="click",
        title="First recommendation clicked",
        state=DONE if clicked else PENDING,
        detail=f"First click on {clicked.isoformat()}." if clicked else "No click on a recommendation yet.",
        next="" if clicked else "Nothing to do: shoppers' clicks show up here (figures refresh every 15 minutes).",
    )
    return [widget, click]


def _first_order(store: Store) -> Step:
    first = (
        AttributedLine.objects.filter(store=store, kind=AttributedLine.Kind.DETERMINISTIC)
        .order_by("ordered_at")
        .values_list("ordered_at", flat=True)
        .first()
    )
    return Step(
        key="order",
        title="First attributed order",
        state=DONE if first else PENDING,
        detail=f"First on {first.date().isoformat()}." if first else "No order carried a recommendation yet.",
        next="" if first else "Make sure your theme keeps line-item properties so orders carry the rec id.",
    )
