"""Records of the gateway's requests to the network: every attempt, answered, rejected or failed."""

from typing import Any

from django.db import models
from django.utils import timezone

from catalog_sync.models import EXTERNAL_ID_MAX_LENGTH, Product
from merchants.models import Store


class NetworkRequest(models.Model):
    """One attempt to get a product's list from a validator; a rejected answer is kept here and never served.

    `answered`: the checked list was stored as the product's network list. `rejected`: the validator
    answered with a list that failed our checks (`error_code` says why). `failed`: no usable answer
    (`error_code` is the client error's class name, or the domain error's code).
    """

    class Status(models.TextChoices):
        ANSWERED = "answered", "Answered"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="network_requests")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The query product's external id, kept when the product is deleted.
    query_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH, blank=True)
    validator = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    # Whether another attempt may succeed, and how long a rate-limiting validator asked us to wait.
    retryable = models.BooleanField(default=False)
    retry_after_seconds = models.FloatField(null=True, blank=True)
    miner_hotkey = models.CharField(max_length=64, blank=True)
    miner_uid = models.CharField(max_length=64, blank=True)
    models_used: Any = models.JSONField(default=list, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["store", "product", "created_at"], name="netrequest_product_created_idx"),
            models.Index(fields=["status", "created_at"], name="netrequest_status_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.status} request for {self.query_id or '?'} to {self.validator}"
