"""Merchant services: onboarding, credentials and webhook intake, one module per concern.

- stores: creating stores, recording install events, rotating credential encryption
- webhooks: verified-delivery intake (dedup, PII scrubbing) and dispatch to the platform handlers
- shopify: OAuth install/callback, token refresh, embedded-admin ID tokens, Shopify webhook topics
- woocommerce: key provisioning (connect/callback), WooCommerce webhook topics
"""
