"""Project-wide pytest plugins (local servers that speak the platforms' wire formats) and per-test process state."""

from collections.abc import Iterator

import pytest

pytest_plugins = [
    "bitrecs_site.testing.celery_worker",
    "bitrecs_site.testing.fake_shopify",
    "bitrecs_site.testing.fake_shopify_admin",
    "bitrecs_site.testing.fake_woocommerce",
]


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    """Every test starts and ends with no store config, widget answer or live engine cached in this process."""
    from recommendations.process_state import clear_process_caches  # imported once Django is set up

    clear_process_caches()
    yield
    clear_process_caches()
