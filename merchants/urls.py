from merchants.views import shopify, woocommerce

# Each platform's views module owns its routes (Shopify: /shopify/…, /webhooks/shopify; WooCommerce: …).
urlpatterns = [*shopify.urlpatterns, *woocommerce.urlpatterns]
