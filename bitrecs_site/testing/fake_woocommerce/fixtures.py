"""pytest fixtures for the fake WooCommerce store."""

from collections.abc import Iterator
from typing import Any

import pytest

from bitrecs_site.testing.fake_woocommerce.server import FakeWooCommerce
from bitrecs_site.testing.fake_woocommerce.webhooks import DjangoClientTransport


@pytest.fixture
def fake_woocommerce() -> Iterator[FakeWooCommerce]:
    """A started fake WooCommerce store (plain http on 127.0.0.1), stopped after the test."""
    fake = FakeWooCommerce().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_woocommerce_https(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWooCommerce]:
    """The fake store over https with a self-signed certificate that requests trusts for this test."""
    fake = FakeWooCommerce(tls=True).start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_bundle))
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def woocommerce_settings(settings: Any) -> Any:
    """Settings for onboarding tests: an https APP_URL (WooCommerce insists on an https callback_url)."""
    settings.LOCAL_MODE = True
    settings.APP_URL = "https://bitrecs.test"
    settings.WOOCOMMERCE_APP_NAME = "Bitrecs"
    settings.WOOCOMMERCE_INSTALL_MAX_AGE_SECONDS = 3600
    settings.PLATFORM_HTTP_TIMEOUT_SECONDS = 5.0
    return settings


@pytest.fixture
def woocommerce_transport(client: Any) -> DjangoClientTransport:
    """Delivers the fake store's callback POSTs to our app through the Django test client."""
    return DjangoClientTransport(client=client)
