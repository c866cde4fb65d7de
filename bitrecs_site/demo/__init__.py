"""A demo storefront for local mode (`/demo/`): the demo catalog as a small shop, with the widget, a cart and a
checkout that delivers a signed Shopify `orders/create` webhook to our own endpoint, as Shopify would."""
