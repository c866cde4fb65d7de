import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from merchants.fields import EncryptedTextField


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def generate_site_key() -> str:
    """A public, unguessable key the storefront widget sends; not a secret, but not enumerable."""
    return "sk_" + secrets.token_urlsafe(12)


class Store(TimeStampedModel):
    class Platform(models.TextChoices):
        SHOPIFY = "shopify", "Shopify"
        WOOCOMMERCE = "woocommerce", "WooCommerce"
        CUSTOM = "custom", "Custom (catalog from imports)"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACTIVE = "active", "Active"
        NEEDS_REAUTH = "needs_reauth", "Needs re-authorisation"
        UNINSTALLED = "uninstalled", "Uninstalled"

    platform = models.CharField(max_length=20, choices=Platform.choices)
    # Shopify: the myshopify.com host; WooCommerce: the store's base URL host (and path); custom: any host.
    domain = models.CharField(max_length=255)
    site_key = models.CharField(max_length=64, unique=True, default=generate_site_key)
    name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # Merchant settings (recommendation rules, widget options); defaults live in code.
    settings = models.JSONField(default=dict, blank=True)
    installed_at = models.DateTimeField(null=True, blank=True)
    uninstalled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "domain"], name="uniq_store_platform_domain"),
        ]

    def __str__(self) -> str:
        return f"{self.domain} ({self.get_platform_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class StoreMembership(models.Model):
    """A portal user's access to one store: every portal read of merchant data is scoped through these rows."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="store_memberships")
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "store"], name="uniq_store_membership")]

    def __str__(self) -> str:
        return f"{self.user} on {self.store}"


class PlatformCredential(TimeStampedModel):
    """A store's platform credentials, every secret encrypted at rest (merchants.fields)."""

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="credential")
    # Shopify: offline access token (expiring, 60 min) and its rotating refresh token.
    access_token = EncryptedTextField(blank=True, default="")
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token = EncryptedTextField(blank=True, default="")
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    scopes = models.CharField(max_length=1000, blank=True)
    # WooCommerce: REST API keys from /wc-auth/v1/authorize.
    key_id = models.CharField(max_length=64, blank=True)
    consumer_key = EncryptedTextField(blank=True, default="")
    consumer_secret = EncryptedTextField(blank=True, default="")
    # Secret for webhooks we register (WooCommerce); Shopify signs with the app secret instead.
    webhook_secret = EncryptedTextField(blank=True, default="")

    def __str__(self) -> str:
        return f"credentials for {self.store.domain}"


class StoreEvent(models.Model):
    """What happened to a store's installation, kept for support and audit."""

    class Kind(models.TextChoices):
        INSTALLED = "installed", "Installed"
        REINSTALLED = "reinstalled", "Reinstalled"
        UNINSTALLED = "uninstalled", "Uninstalled"
        TOKEN_REFRESHED = "token_refreshed", "Token refreshed"
        REAUTH_REQUIRED = "reauth_required", "Re-authorisation required"
        DATA_REQUEST = "data_request", "Customer data request answered"
        CUSTOMER_REDACTED = "customer_redacted", "Customer redaction handled"
        SHOP_REDACTED = "shop_redacted", "Shop data deleted"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["store", "kind"])]

    def __str__(self) -> str:
        return f"{self.store.domain}: {self.kind}"


class OAuthState(models.Model):
    """A one-time `state` nonce for a Shopify authorization-code grant, bound to the shop."""

    nonce = models.CharField(max_length=64, unique=True)
    shop = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"state for {self.shop}"


class WooCommerceInstall(models.Model):
    """A pending WooCommerce key request: the unguessable user_id WooCommerce echoes back."""

    user_id = models.CharField(max_length=64, unique=True)
    store_url = models.URLField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"WooCommerce install for {self.store_url}"


class WebhookEvent(models.Model):
    """A verified webhook delivery, kept for deduplication and processed by a Celery task.

    The payload is stored with customer personal data removed (merchants.services.webhooks.scrub_pii).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    platform = models.CharField(max_length=20, choices=Store.Platform.choices)
    store = models.ForeignKey(Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_events")
    shop_domain = models.CharField(max_length=255)
    topic = models.CharField(max_length=100)
    # Shopify: X-Shopify-Event-Id; WooCommerce: X-WC-Webhook-ID + X-WC-Webhook-Delivery-ID.
    dedup_key = models.CharField(max_length=255)
    payload: Any = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now, editable=False)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "dedup_key"], name="uniq_webhook_delivery"),
        ]
        indexes = [
            models.Index(fields=["received_at"]),
            models.Index(fields=["status"], condition=Q(status="pending"), name="webhook_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.platform} {self.topic} {self.dedup_key}"


class PortalSignInNonce(models.Model):
    """A used nonce of a signed portal sign-in link (the WooCommerce plugin's "Open Bitrecs portal").

    The link carries its expiry; a row exists from the link's first use until it is pruned after that expiry, so a
    second use of the same link is refused by the unique constraint.
    """

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "nonce"], name="uniq_portal_signin_nonce")]
        indexes = [models.Index(fields=["expires_at"], name="portal_nonce_expires_idx")]

    def __str__(self) -> str:
        return f"sign-in nonce of {self.store_id}"
