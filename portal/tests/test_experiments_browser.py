"""The experiments page in real Chromium: a merchant sets up arms and weights, visitors arrive through the real
intake and rollups, and the report shows every arm; another store's page answers 404."""

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from merchants.models import Store
from merchants.services.stores import create_store, grant_store_access
from portal.tests.conftest import DESKTOP, PHONE
from recommendations.models import Experiment
from recommendations.tests.figures import fill_store

# Screenshots for a person to look at (not compared): $BITRECS_SCREENSHOTS or the temp directory.
SHOTS = Path(os.environ.get("BITRECS_SCREENSHOTS", tempfile.gettempdir()))

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def merchant() -> tuple[Any, Store]:
    user = get_user_model().objects.create_user("eve@shop.example", email="eve@shop.example", password="pw")
    store = create_store(platform=Store.Platform.CUSTOM, domain="eve.example", name="Eve's Pots")
    grant_store_access(user=user, store=store)
    return user, store


def _arms(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("tr[data-arm]", "els => els.map(e => e.dataset.arm)"))


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_a_merchant_starts_an_experiment_and_the_report_shows_the_arms(
    signed_in: Any, merchant: tuple[Any, Store], viewport: Any, name: str
) -> None:
    user, store = merchant
    page = signed_in(user, f"/portal/stores/{store.pk}/experiments", viewport=viewport)
    assert "No experiment yet" in page.content()

    page.fill("#id_name", "Network vs local, 10% holdout")
    page.fill("#id_weight_network", "40")
    page.fill("#id_weight_local", "40")
    page.fill("#id_weight_holdout", "10")
    page.fill("#id_weight_interleave", "10")
    page.click("form[novalidate] button[type=submit]")
    page.wait_for_selector("tr[data-arm]")

    experiment = Experiment.objects.get(store=store)
    assert experiment.weights == {"network": 40, "local": 40, "holdout": 10, "interleave": 10}
    assert _arms(page) == ["network", "local", "holdout", "interleave"]

    fill_store(store, days=1, experiment=experiment, visitors=80)
    page.reload()

    visitors = page.eval_on_selector_all('tr[data-arm] [data-cell="visitors"]', "els => els.map(e => +e.textContent)")
    assert sum(visitors) == 80
    assert all(count > 0 for count in visitors)
    assert page.locator("[data-srm]").count() == 1
    assert page.locator('[data-kpi="incremental"]').count() == 1
    assert page.locator('[data-kpi="network-share"]').count() == 1
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.errors == []
    page.screenshot(path=SHOTS / f"f-experiments-{name}.png", full_page=True)
    page.locator("table.report").screenshot(path=SHOTS / f"f-experiments-report-{name}.png")


def test_the_merchant_stops_the_running_experiment(signed_in: Any, merchant: tuple[Any, Store]) -> None:
    user, store = merchant
    page = signed_in(user, f"/portal/stores/{store.pk}/experiments")
    page.fill("#id_name", "Quick")
    page.fill("#id_weight_network", "1")
    page.click("form[novalidate] button[type=submit]")
    page.wait_for_selector("text=Stop this experiment")

    page.click("text=Stop this experiment")
    page.wait_for_selector(".badge >> text=stopped")

    assert Experiment.objects.get(store=store).status == "stopped"
    assert page.errors == []


def test_bad_weights_show_the_message_and_start_nothing(signed_in: Any, merchant: tuple[Any, Store]) -> None:
    user, store = merchant
    page = signed_in(user, f"/portal/stores/{store.pk}/experiments", viewport=PHONE)
    page.fill("#id_name", "Nothing")
    for arm in ("network", "local", "holdout", "interleave"):
        page.fill(f"#id_weight_{arm}", "0")
    page.click("form[novalidate] button[type=submit]")

    assert "at least one arm needs a weight above 0" in page.locator("p.error[role=alert]").inner_text()
    assert Experiment.objects.filter(store=store).count() == 0


def test_another_stores_experiments_answer_404_in_the_browser(signed_in: Any, merchant: tuple[Any, Store]) -> None:
    user, _ = merchant
    other = create_store(platform=Store.Platform.CUSTOM, domain="fay.example", name="Fay's")

    page = signed_in(user, "/portal/")
    response = page.goto(page.url.split("/portal/")[0] + f"/portal/stores/{other.pk}/experiments")

    assert response is not None
    assert response.status == 404
