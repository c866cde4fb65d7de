from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache

from merchants.models import Store
from merchants.tests.factories import StoreFactory

DATA = Path(__file__).parent / "data"
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(autouse=True)
def _fresh_sync_state() -> Iterator[None]:
    """No test inherits another's cached store context (currency, cost bucket) or kept-alive sync session."""
    from catalog_sync.services.sync import close_sync_sessions  # imported once Django is set up

    cache.clear()
    yield
    close_sync_sessions()
    cache.clear()


@pytest.fixture
def store() -> Store:
    return StoreFactory.create(platform=Store.Platform.CUSTOM, domain="demo.local", site_key="demo")
