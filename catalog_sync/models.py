from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from merchants.customers import CUSTOMER_KEY_LENGTH, customer_key
from merchants.models import Store, TimeStampedModel

TITLE_MAX_LENGTH = 1000
URL_MAX_LENGTH = 2000
EXTERNAL_ID_MAX_LENGTH = 255
SKU_MAX_LENGTH = 255
PRICE_DIGITS = 12

__all__ = ["CUSTOMER_KEY_LENGTH", "OrderLine", "Product", "SyncRun", "Variant", "customer_key"]


class Product(TimeStampedModel):
    """A store's product, mirrored from its platform or an import; variants hang off it."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DRAFT = "draft", "Draft"
        ARCHIVED = "archived", "Archived"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="products")
    # The platform's id: Shopify product id (or the handle for a CSV import), WooCommerce product id,
    # the feed's unique id, or the Amazon parent ASIN.
    external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    sku = models.CharField(max_length=SKU_MAX_LENGTH, blank=True)
    title = models.CharField(max_length=TITLE_MAX_LENGTH)
    handle = models.CharField(max_length=255, blank=True)
    url = models.CharField(max_length=URL_MAX_LENGTH, blank=True)
    description = models.TextField(blank=True, help_text="Plain text; HTML is stripped on the way in.")
    vendor = models.CharField(max_length=255, blank=True, help_text="Vendor or brand.")
    product_type = models.CharField(max_length=255, blank=True)
    category_path = models.CharField(max_length=TITLE_MAX_LENGTH, blank=True, help_text='"Electronics > Audio".')
    tags: Any = models.JSONField(default=list, blank=True)
    options: Any = models.JSONField(default=list, blank=True, help_text='[{"name": "Size", "values": [...]}]')
    price = models.DecimalField(max_digits=PRICE_DIGITS, decimal_places=2, null=True, blank=True)
    compare_at_price = models.DecimalField(max_digits=PRICE_DIGITS, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    image_url = models.CharField(max_length=URL_MAX_LENGTH, blank=True)
    in_stock = models.BooleanField(default=True)
    inventory = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    is_published = models.BooleanField(default=True)
    platform_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "external_id"], name="uniq_product_per_store"),
        ]
        indexes = [models.Index(fields=["store", "sku"], name="product_store_sku_idx")]

    def __str__(self) -> str:
        return f"{self.title} ({self.sku or self.external_id})"


class Variant(TimeStampedModel):
    """One purchasable variant of a product (Shopify variant, WooCommerce variation)."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    sku = models.CharField(max_length=SKU_MAX_LENGTH, blank=True)
    title = models.CharField(max_length=TITLE_MAX_LENGTH, blank=True)
    options: Any = models.JSONField(default=dict, blank=True, help_text='{"Size": "L", "Color": "Black"}')
    price = models.DecimalField(max_digits=PRICE_DIGITS, decimal_places=2, null=True, blank=True)
    compare_at_price = models.DecimalField(max_digits=PRICE_DIGITS, decimal_places=2, null=True, blank=True)
    in_stock = models.BooleanField(default=True)
    inventory = models.IntegerField(null=True, blank=True)
    image_url = models.CharField(max_length=URL_MAX_LENGTH, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["product_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "external_id"], name="uniq_variant_per_product"),
        ]
        indexes = [models.Index(fields=["sku"], name="variant_sku_idx")]

    def __str__(self) -> str:
        return f"{self.title or self.external_id} ({self.sku or '-'})"


class OrderLine(TimeStampedModel):
    """One line of a store's order, kept for co-purchase and attribution; never any customer data.

    created_at is the time of the order on the platform, not the time the row was written. customer_key is
    customer_key() of the platform's customer id (blank for guests): it links one shopper's orders, so the
    recommender learns what is bought after what, and customers/redact deletes the lines it keys.
    """

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="order_lines")
    order_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    line_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="order_lines")
    variant = models.ForeignKey(Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="order_lines")
    # Kept raw so a line still counts when its product is synced after the order, or deleted.
    product_external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, blank=True)
    variant_external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, blank=True)
    sku = models.CharField(max_length=SKU_MAX_LENGTH, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    price = models.DecimalField(max_digits=PRICE_DIGITS, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    # The recommendation attribution line-item property, when the shopper came through a recommendation.
    rec_id = models.CharField(max_length=64, blank=True)
    customer_key = models.CharField(max_length=CUSTOMER_KEY_LENGTH, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "order_id", "line_id"], name="uniq_order_line_per_store"),
        ]
        indexes = [
            models.Index(fields=["store", "order_id"], name="orderline_store_order_idx"),
            # customers/redact deletes one customer's lines.
            models.Index(
                fields=["store", "customer_key"], name="orderline_store_customer_idx", condition=~Q(customer_key="")
            ),
            models.Index(fields=["store", "product"], name="orderline_store_product_idx"),
            # The miner stats endpoint reads attributed lines by time.
            models.Index(fields=["created_at"], name="orderline_created_idx"),
        ]

    def __str__(self) -> str:
        return f"order {self.order_id} line {self.line_id}"


class SyncRun(TimeStampedModel):
    """One catalog sync or import of a store: what it did, how far it got and what failed."""

    class Kind(models.TextChoices):
        FULL = "full", "Full sync"
        CATCH_UP = "catch_up", "Catch-up sync"
        IMPORT = "import", "File import"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        PARTIAL = "partial", "Partially succeeded"

    MAX_ERRORS = 200

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    seen = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    # Progress: items expected (when known) and done, plus the platform's page cursor for a sync.
    total = models.PositiveIntegerField(null=True, blank=True)
    done = models.PositiveIntegerField(default=0)
    cursor = models.TextField(blank=True)
    # What failed and why: [{"row": 12, "id": "abc", "reason": "missing title"}], the first MAX_ERRORS only;
    # error_count counts them all. error holds the message of a run that stopped.
    errors: Any = models.JSONField(default=list, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # Kind-specific facts: the imported file and format, skip counts per reason, variant counts.
    detail: Any = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["store"], condition=Q(status="running"), name="one_running_sync_per_store"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.store_id}: {self.status}"
