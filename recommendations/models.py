"""Stored recommendation lists (what the widget is served from) and the network answers behind them."""

import secrets
from typing import Any

from django.db import models
from django.utils import timezone

from catalog_sync.models import EXTERNAL_ID_MAX_LENGTH, Product
from merchants.models import Store

REC_ID_MAX_LENGTH = 32


class Placement(models.TextChoices):
    PRODUCT = "product", "Product page (goes with / similar)"
    CART = "cart", "Cart (complements the cart)"
    HOME = "home", "Home (bestsellers and trending)"


class Source(models.TextChoices):
    LOCAL = "local", "Local recommender"
    NETWORK = "network", "Bitrecs network"


def rec_id_prefix(source: str) -> str:
    """How the rec_ids of a source begin: "l_" for local lists, "n_" for network answers."""
    return f"{source[0]}_"


def generate_rec_id(source: str) -> str:
    """A new id for one version of a stored list: "l_…" for local lists, "n_…" for network answers."""
    return f"{rec_id_prefix(source)}{secrets.token_hex(10)}"


class RecommendationList(models.Model):
    """The current list for (store, query product, placement, source); the widget is answered from these.

    `items` is ordered best first: [[product external_id, score, reason], ...]. Merchant rules are not baked
    in (they are applied at serve time against the live Product rows). `rec_id` names this version of the
    list: it changes whenever the list is recomputed, so a cached answer keeps a valid id and a widget event
    carrying it can be attributed (network versions stay resolvable through NetworkAnswer).
    """

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="recommendation_lists")
    # The query product; null for the store-wide home list (and for a cart list asked without a product).
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.CASCADE, related_name="recommendation_lists"
    )
    # The query product's external_id ("" for a store-wide list): a non-null key so that (store, placement,
    # source, query_id) is one plain unique constraint, which bulk upserts can target on every database.
    query_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, blank=True)
    placement = models.CharField(max_length=10, choices=Placement.choices)
    source = models.CharField(max_length=10, choices=Source.choices)
    items: Any = models.JSONField(default=list, blank=True)
    rec_id = models.CharField(max_length=REC_ID_MAX_LENGTH, unique=True)
    computed_at = models.DateTimeField(default=timezone.now)
    # Network lists only: who produced the answer, with what, and how long the round trip took.
    miner_hotkey = models.CharField(max_length=64, blank=True)
    validator = models.CharField(max_length=255, blank=True)
    models_used: Any = models.JSONField(default=list, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["store", "placement", "source", "query_id"], name="uniq_recommendation_list"
            ),
        ]
        indexes = [models.Index(fields=["product", "placement"], name="reclist_product_placement_idx")]

    def __str__(self) -> str:
        return f"{self.placement} list of {self.query_id or 'store'} ({self.source})"

    @property
    def item_ids(self) -> list[str]:
        return [str(entry[0]) for entry in self.items]


class NetworkAnswer(models.Model):
    """Every list the network gave us, kept after a newer answer replaces it, so old rec_ids still name a miner."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="network_answers")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    query_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, blank=True)
    placement = models.CharField(max_length=10, choices=Placement.choices)
    rec_id = models.CharField(max_length=REC_ID_MAX_LENGTH, unique=True)
    # The product external ids of the answer, in the miner's order.
    item_ids: Any = models.JSONField(default=list, blank=True)
    miner_hotkey = models.CharField(max_length=64, blank=True)
    validator = models.CharField(max_length=255, blank=True)
    models_used: Any = models.JSONField(default=list, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["store", "created_at"], name="netanswer_store_created_idx")]

    def __str__(self) -> str:
        return f"network answer {self.rec_id} from {self.miner_hotkey or '?'}"


class PendingListRefresh(models.Model):
    """A product whose lists must be recomputed; webhooks add rows, one delayed task drains a store's rows.

    Kept in the database (not the cache) so that a burst of webhooks handled by several worker processes
    still ends in one engine build per store.
    """

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    requested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "external_id"], name="uniq_pending_list_refresh"),
        ]

    def __str__(self) -> str:
        return f"refresh lists of {self.external_id} ({self.store_id})"


# --- Shopper events, attribution, rollups and experiments (issue 10) ----------------------------------------

EVENT_ID_MAX_LENGTH = 64
SESSION_ID_MAX_LENGTH = 64
HOTKEY_MAX_LENGTH = 64
MONEY_DIGITS = 14


class EventType(models.TextChoices):
    VIEW = "view", "Product view"
    IMPRESSION = "impression", "Card seen (at least half visible)"
    CLICK = "click", "Card clicked"
    ADD_TO_CART = "add_to_cart", "Added to cart"
    PURCHASE = "purchase", "Purchased"


class Arm(models.TextChoices):
    NETWORK = "network", "Network recommendations"
    LOCAL = "local", "Local recommendations"
    HOLDOUT = "holdout", "Holdout (no widget)"
    INTERLEAVE = "interleave", "Team-draft interleaving of network and local"


class ShopperEvent(models.Model):
    """One anonymous storefront event sent by the widget (POST /api/v1/events); no IP or user agent is kept.

    `received_at` (server time) drives retention, rollups and the miner stats; `occurred_at` is the shopper's
    clock, kept for ordering within a session. `source` comes from the rec_id's prefix and `miner_hotkey` from
    the network answer it names, both resolved when the event is written.
    """

    id = models.BigAutoField(primary_key=True)
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    event_id = models.CharField(max_length=EVENT_ID_MAX_LENGTH)
    type = models.CharField(max_length=12, choices=EventType.choices)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    sku = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    rec_id = models.CharField(max_length=REC_ID_MAX_LENGTH, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, blank=True)
    miner_hotkey = models.CharField(max_length=HOTKEY_MAX_LENGTH, blank=True)
    placement = models.CharField(max_length=10, choices=Placement.choices, blank=True)
    arm = models.CharField(max_length=12, choices=Arm.choices, blank=True)
    # A random id the widget makes after consent ("" for anonymous events); never tied to a person.
    session_id = models.CharField(max_length=SESSION_ID_MAX_LENGTH, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "event_id"], name="uniq_shopper_event")]
        indexes = [
            # Rollups read one store's day; the assisted-sales fallback looks up a session's clicks. On
            # PostgreSQL a BRIN index on received_at (migration 0002) serves pruning and the miner stats window.
            models.Index(fields=["store", "received_at"], name="event_store_received_idx"),
            models.Index(
                fields=["store", "session_id", "sku"],
                condition=~models.Q(session_id=""),
                name="event_session_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.sku} ({self.store_id})"


class AttributedLine(models.Model):
    """An order line credited to a recommendation: deterministically (its `_bitrecs_rec_id`) or, when the store
    turns it on, as "assisted" (a click on that product in the same session within the store's window).

    Revenue excludes tax and shipping: `gross` is the line's price x quantity less its discounts, `refunded` what
    refunds took back; order updates and refunds rewrite both. `revenue` = gross - refunded.
    """

    class Kind(models.TextChoices):
        DETERMINISTIC = "deterministic", "Carried the rec id"
        ASSISTED = "assisted", "Clicked in the same session within the window"

    id = models.BigAutoField(primary_key=True)
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    order_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    line_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    ordered_at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DETERMINISTIC)
    sku = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, blank=True)
    product_external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, blank=True)
    rec_id = models.CharField(max_length=REC_ID_MAX_LENGTH, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, blank=True)
    miner_hotkey = models.CharField(max_length=HOTKEY_MAX_LENGTH, blank=True)
    validator = models.CharField(max_length=255, blank=True)
    placement = models.CharField(max_length=10, choices=Placement.choices, blank=True)
    arm = models.CharField(max_length=12, choices=Arm.choices, blank=True)
    quantity = models.PositiveIntegerField(default=0)
    gross = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=2, default=0)
    refunded = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "order_id", "line_id"], name="uniq_attributed_line"),
        ]
        indexes = [models.Index(fields=["store", "ordered_at"], name="attrline_store_ordered_idx")]

    def __str__(self) -> str:
        return f"order {self.order_id} line {self.line_id} -> {self.source or '?'} ({self.kind})"

    @property
    def revenue(self) -> Any:
        return self.gross - self.refunded


class DailyRollup(models.Model):
    """What one store's recommendations did on one UTC day, per placement, source, arm and miner: the portal's
    only source of figures (raw events are pruned after EVENTS_RETENTION_DAYS).

    "" in a dimension means "not known" (an event without a placement, an order line without an arm). Counts
    are events; `orders`/`revenue` are deterministic attributions (by order day), `assisted_*` the fallback,
    shown apart. `exposed_sessions` counts distinct sessions with an impression in the group (or, for the
    holdout arm, any event): it does not add up across groups.
    """

    id = models.BigAutoField(primary_key=True)
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    placement = models.CharField(max_length=10, blank=True)
    source = models.CharField(max_length=10, blank=True)
    arm = models.CharField(max_length=12, blank=True)
    miner_hotkey = models.CharField(max_length=HOTKEY_MAX_LENGTH, blank=True)
    views = models.PositiveIntegerField(default=0)
    impressions = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    add_to_carts = models.PositiveIntegerField(default=0)
    purchases = models.PositiveIntegerField(default=0)
    exposed_sessions = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=2, default=0)
    assisted_orders = models.PositiveIntegerField(default=0)
    assisted_revenue = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=2, default=0)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["store", "day", "placement", "source", "arm", "miner_hotkey"], name="uniq_daily_rollup"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.store_id} {self.day} {self.placement or '-'}/{self.source or '-'}/{self.arm or '-'}"


class OrderSummary(models.Model):
    """One order of a store as the portal reads it: net revenue, the part recommendations earned, and the visitor
    (the session id the storefront passes with the order) and experiment arm it belongs to.

    Written by attribution for every order it sees, attributed or not, so the portal can compare orders with and
    without recommendations and measure revenue per visitor of each arm (the holdout's too). Revenue follows
    AttributedLine's definition: price x quantity less discounts and refunds, never tax or shipping.
    """

    id = models.BigAutoField(primary_key=True)
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    order_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    ordered_at = models.DateTimeField()
    revenue = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=2, default=0)
    attributed_revenue = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=2, default=0)
    recommended = models.BooleanField(default=False)  # at least one line carried one of our rec ids
    session_id = models.CharField(max_length=SESSION_ID_MAX_LENGTH, blank=True)
    arm = models.CharField(max_length=12, choices=Arm.choices, blank=True)
    experiment = models.ForeignKey("Experiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "order_id"], name="uniq_order_summary")]
        indexes = [models.Index(fields=["store", "ordered_at"], name="ordersummary_store_ordered_idx")]

    def __str__(self) -> str:
        return f"order {self.order_id} ({self.store_id})"


class VisitorDay(models.Model):
    """What one visitor (session id) in one experiment arm did on one UTC day: the experiment report's unit.

    Rebuilt with the day's rollup. `exposed` is True when the visitor saw a widget card that day (or, in the
    holdout arm, sent any event); orders and revenue come from OrderSummary rows carrying the session id.
    """

    id = models.BigAutoField(primary_key=True)
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    arm = models.CharField(max_length=12, choices=Arm.choices)
    session_id = models.CharField(max_length=SESSION_ID_MAX_LENGTH)
    exposed = models.BooleanField(default=False)
    impressions = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    add_to_carts = models.PositiveIntegerField(default=0)
    purchases = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=2, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "day", "arm", "session_id"], name="uniq_visitor_day"),
        ]
        indexes = [models.Index(fields=["store", "arm", "day"], name="visitorday_store_arm_day_idx")]

    def __str__(self) -> str:
        return f"{self.store_id} {self.day} {self.arm} {self.session_id}"


class Experiment(models.Model):
    """A store's A/B test of how recommendations are served: weighted arms, sticky per session.

    `weights` maps arms (Arm values) to non-negative integers; visitors without consent (no session id) get
    `default_arm` and are left out of the figures. At most one experiment per store runs at a time.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        RUNNING = "running", "Running"
        STOPPED = "stopped", "Stopped"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    weights: Any = models.JSONField(default=dict, blank=True)
    default_arm = models.CharField(max_length=12, choices=Arm.choices, default=Arm.NETWORK)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["store"], condition=models.Q(status="running"), name="one_running_experiment_per_store"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class PlacementSettings(models.Model):
    """How the widget shows one placement of a store; sent with every answer (the portal edits these)."""

    class Layout(models.TextChoices):
        GRID = "grid", "Grid"
        ROW = "row", "Row (scrolls sideways)"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    placement = models.CharField(max_length=10, choices=Placement.choices)
    title = models.CharField(max_length=120, blank=True)
    count = models.PositiveSmallIntegerField(default=4)
    layout = models.CharField(max_length=4, choices=Layout.choices, default=Layout.GRID)
    # Before consent the widget may still send events without a session id (counts only); off sends none.
    anonymous_events = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "placement"], name="uniq_placement_settings"),
            models.CheckConstraint(
                condition=models.Q(count__gte=1, count__lte=20), name="placement_settings_count_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.placement} settings of {self.store_id}"
