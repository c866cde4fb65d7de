"""Shopify onboarding, one module per job; the names the other modules use are re-exported here.

- shop: shop domains, the app's secrets and URLs, the token endpoint client
- request_hmac: the signed query of install and callback URLs
- install: OAuth install and callback, and what every install shares
- tokens: expiring offline tokens (refresh, re-authorisation)
- id_tokens: App Bridge ID tokens and Shopify-managed installation (token exchange)
- webhooks: webhook intake and the installation and compliance topics
"""

from merchants.services.shopify.id_tokens import (
    ShopifySession,
    authenticate_shopify_id_token,
    install_shopify_by_token_exchange,
)
from merchants.services.shopify.install import (
    OAUTH_STATE_MAX_AGE,
    OAuthStart,
    complete_shopify_install,
    get_installed_shopify_store,
    prune_oauth_states,
    start_shopify_oauth,
)
from merchants.services.shopify.request_hmac import compute_query_hmac, verify_shopify_request
from merchants.services.shopify.shop import (
    MYSHOPIFY_SUFFIX,
    SHOPIFY_ADMIN_ORIGIN,
    shopify_admin_app_url,
    shopify_frame_ancestors,
    shopify_redirect_uri,
    validate_shop_domain,
)
from merchants.services.shopify.tokens import REAUTH_STATUSES, get_shopify_access_token, refresh_expiring_tokens
from merchants.services.shopify.webhooks import handle_shopify_webhook, receive_shopify_webhook, verify_webhook_hmac

__all__ = [
    "MYSHOPIFY_SUFFIX",
    "OAUTH_STATE_MAX_AGE",
    "REAUTH_STATUSES",
    "SHOPIFY_ADMIN_ORIGIN",
    "OAuthStart",
    "ShopifySession",
    "authenticate_shopify_id_token",
    "complete_shopify_install",
    "compute_query_hmac",
    "get_installed_shopify_store",
    "get_shopify_access_token",
    "handle_shopify_webhook",
    "install_shopify_by_token_exchange",
    "prune_oauth_states",
    "receive_shopify_webhook",
    "refresh_expiring_tokens",
    "shopify_admin_app_url",
    "shopify_frame_ancestors",
    "shopify_redirect_uri",
    "start_shopify_oauth",
    "validate_shop_domain",
    "verify_shopify_request",
    "verify_webhook_hmac",
]
