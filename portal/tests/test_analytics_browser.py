"""The overview checklist and the analytics page in real Chromium: charts drawn from events written through the
intake's checker and writer, orders attributed, and days rolled up by the real rollup service."""

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from catalog_sync.models import Product, SyncRun
from merchants.models import Store
from merchants.services.stores import create_store, grant_store_access
from portal.tests.conftest import DESKTOP, PHONE
from recommendations.tests.figures import fill_store

# Screenshots for a person to look at (not compared): $BITRECS_SCREENSHOTS or the temp directory.
SHOTS = Path(os.environ.get("BITRECS_SCREENSHOTS", tempfile.gettempdir()))

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

CHARTS = ["chart-daily-traffic", "chart-daily-revenue", "chart-by-placement", "chart-by-source", "chart-by-arm"]


@pytest.fixture
def merchant() -> tuple[Any, Store]:
    user = get_user_model().objects.create_user("cy@shop.example", email="cy@shop.example", password="pw")
    store = create_store(platform=Store.Platform.CUSTOM, domain="cy.example", name="Cy's Teas")
    store.status = Store.Status.ACTIVE
    store.save()
    grant_store_access(user=user, store=store)
    return user, store


def _no_page_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_a_merchant_sees_the_analytics_charts_drawn_from_rolled_up_events(
    signed_in: Any, merchant: tuple[Any, Store], viewport: Any, name: str
) -> None:
    user, store = merchant
    fill_store(store, days=14)

    page = signed_in(user, f"/portal/stores/{store.pk}/analytics", viewport=viewport)
    for chart in CHARTS:
        page.wait_for_selector(f'canvas[data-chart="{chart}"][data-chart-drawn]', state="attached")

    drawn = page.eval_on_selector_all("canvas[data-chart-drawn]", "els => els.map(e => e.dataset.chart)")
    assert sorted(drawn) == sorted(CHARTS)
    # The daily line holds the impressions the rollups counted, day by day.
    points = page.evaluate(
        "document.querySelector('canvas[data-chart=\"chart-daily-traffic\"]').bitrecsChart.data.datasets[0].data"
    )
    assert len(points) == 30
    assert sum(points) == int(page.locator('[data-kpi="impressions"]').inner_text())
    assert sum(points) > 0
    assert page.locator(".portal-nav a[aria-current=page]").inner_text() == "Analytics"
    assert page.locator("table.figures tr[data-group=placement]").count() == 3
    assert _no_page_scroll(page)
    assert page.errors == []
    page.screenshot(path=SHOTS / f"f-analytics-{name}.png", full_page=True)


def test_the_date_range_form_narrows_the_figures(signed_in: Any, merchant: tuple[Any, Store]) -> None:
    user, store = merchant
    fill_store(store, days=3)
    today = timezone.now().date()

    page = signed_in(user, f"/portal/stores/{store.pk}/analytics")
    page.fill("#id_start", today.isoformat())
    page.fill("#id_end", today.isoformat())
    page.click("form.range-form button[type=submit]")
    page.wait_for_selector('canvas[data-chart="chart-daily-traffic"][data-chart-drawn]', state="attached")

    points = page.evaluate(
        "document.querySelector('canvas[data-chart=\"chart-daily-traffic\"]').bitrecsChart.data.labels"
    )
    assert points == [today.isoformat()]
    assert page.errors == []


def test_another_stores_analytics_answer_404_in_the_browser(signed_in: Any, merchant: tuple[Any, Store]) -> None:
    user, _ = merchant
    other = create_store(platform=Store.Platform.CUSTOM, domain="dee.example", name="Dee's")

    page = signed_in(user, "/portal/")
    response = page.goto(page.url.split("/portal/")[0] + f"/portal/stores/{other.pk}/analytics")

    assert response is not None
    assert response.status == 404
    assert "Dee" not in page.content()


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_overview_checklist_on_desktop_and_phone(
    signed_in: Any, merchant: tuple[Any, Store], viewport: Any, name: str
) -> None:
    user, store = merchant
    Product.objects.create(store=store, external_id="P1", title="Green tea")
    SyncRun.objects.create(store=store, kind=SyncRun.Kind.FULL, status=SyncRun.Status.SUCCEEDED, total=1, done=1)
    fill_store(store, days=2, visitors=3)

    page = signed_in(user, f"/portal/stores/{store.pk}/", viewport=viewport)

    states = page.eval_on_selector_all("[data-step]", "els => els.map(e => [e.dataset.step, e.dataset.state])")
    assert states == [["connected", "done"], ["catalog", "done"], ["widget", "done"], ["click", "done"],
                      ["order", "done"]]  # fmt: skip
    assert page.locator("[data-steps-done]").inner_text() == "5 of 5 done"
    assert _no_page_scroll(page)
    assert page.errors == []
    page.screenshot(path=SHOTS / f"f-overview-{name}.png", full_page=True)


def test_a_new_store_checklist_says_what_to_do_next(signed_in: Any, merchant: tuple[Any, Store]) -> None:
    user, store = merchant
    SyncRun.objects.create(store=store, kind=SyncRun.Kind.FULL, status=SyncRun.Status.RUNNING, total=400, done=100)

    page = signed_in(user, f"/portal/stores/{store.pk}/", viewport=PHONE)

    assert page.locator('[data-step="catalog"]').get_attribute("data-state") == "running"
    assert page.locator('[data-step="catalog"] progress').get_attribute("value") == "25"
    assert "Add the Bitrecs block" in page.locator('[data-step="widget"] .next').inner_text()
    assert _no_page_scroll(page)
    page.screenshot(path=SHOTS / "f-overview-new-phone.png", full_page=True)
