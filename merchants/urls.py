from django.urls import path

from merchants.views import shopify, woocommerce

urlpatterns = [
    # Shopify: OAuth install, embedded admin, webhooks.
    path("shopify/install", shopify.install, name="shopify-install"),
    path("shopify/callback", shopify.callback, name="shopify-callback"),
    path("webhooks/shopify", shopify.webhook, name="shopify-webhook"),
    # WooCommerce: key provisioning and webhooks.
    path("woocommerce/connect", woocommerce.connect, name="woocommerce-connect"),
    path("woocommerce/callback", woocommerce.callback, name="woocommerce-callback"),
    path("webhooks/woocommerce/<str:site_key>", woocommerce.webhook, name="woocommerce-webhook"),
]
