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
