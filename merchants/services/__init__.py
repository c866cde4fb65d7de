"""Merchant services: onboarding, credentials and webhook intake, one module per concern.

- stores: creating stores, recording install events, rotating credential encryption
- webhooks: verified-delivery intake (dedup, PII scrubbing) and routing by topic to the owning app's task
- shopify: a package, one module per job (OAuth install, request HMAC, token refresh, ID tokens, webhook intake)
- woocommerce: key provisioning (connect/callback), WooCommerce webhook topics
"""
