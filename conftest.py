"""Project-wide pytest plugins: fixtures for local servers that speak the platforms' wire formats."""

pytest_plugins = [
    "bitrecs_site.testing.celery_worker",
    "bitrecs_site.testing.fake_shopify",
    "bitrecs_site.testing.fake_shopify_admin",
    "bitrecs_site.testing.fake_woocommerce",
]
