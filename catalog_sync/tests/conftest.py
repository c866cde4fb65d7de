from pathlib import Path

import pytest

from merchants.models import Store
from merchants.tests.factories import StoreFactory

DATA = Path(__file__).parent / "data"
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture
def store() -> Store:
    return StoreFactory.create(platform=Store.Platform.CUSTOM, domain="demo.local", site_key="demo")
