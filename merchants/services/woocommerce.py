"""WooCommerce onboarding (to be built)."""

from merchants.models import WebhookEvent


def handle_woocommerce_webhook(event: WebhookEvent) -> str:
    return WebhookEvent.Status.IGNORED
