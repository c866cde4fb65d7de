"""Settings and "why this list" in real Chromium: the preview follows the rule, saving changes the widget's answer."""

import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from catalog_sync.tests.factories import ProductFactory
from merchants.models import Store
from merchants.services.stores import create_store, grant_store_access
from portal.tests.conftest import DESKTOP, PHONE
from recommendations.models import RecommendationList, generate_rec_id
from recommendations.services import store_network_list

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

# Screenshots for a person to look at (not compared): BITRECS_SCREENSHOTS, else the temp dir (/tmp/g-*.png).
SHOTS = Path(os.environ.get("BITRECS_SCREENSHOTS", tempfile.gettempdir()))
HOTKEY = "5F3sa2TJAWMqDhXG6jhV4N8ko9SxwGy8TpaNS1repo5EYjQX"


@pytest.fixture(autouse=True)
def _serving(settings: Any) -> None:
    settings.RECS_LIVE_ENGINE_MAX_PRODUCTS = 0
    settings.RECS_STORE_CACHE_SECONDS = 300  # a save must forget the cached config, not wait for it
    settings.RECS_ANSWER_CACHE_SECONDS = 300


@pytest.fixture
def shop() -> tuple[Any, Store]:
    user = get_user_model().objects.create_user("ann@shop.example", email="ann@shop.example", password="x")
    store = create_store(platform=Store.Platform.CUSTOM, domain="ann.example", name="Ann's mugs")
    grant_store_access(user=user, store=store)
    products = [
        ProductFactory.create(
            store=store,
            external_id=f"p{n}",
            sku=f"MUG-{n}",
            title=f"Stoneware mug no. {n} with a rather long name",
            price=Decimal("12.00") + n,
            tags=["Clearance"] if n == 3 else [],
        )
        for n in range(10)
    ]
    products[2].in_stock = False
    products[2].save()
    RecommendationList.objects.create(
        store=store,
        product=products[0],
        query_id="p0",
        placement="product",
        source="local",
        items=[[f"p{n}", 1 - n / 20, "similar" if n % 2 else "bought_together"] for n in range(4, 10)],
        rec_id=generate_rec_id("local"),
    )
    store_network_list(
        store=store,
        product=products[0],
        placement="product",
        skus=["MUG-1", "MUG-2", "MUG-3", "MUG-4"],
        miner_hotkey=HOTKEY,
        validator="http://127.0.0.1:9401",
        models_used=["qwen-2.5-7b"],
        latency_ms=840,
    )
    return user, store


def after_skus(page: Any) -> list[str]:
    return page.locator("#preview-after ol.served li[data-sku]").evaluate_all("els => els.map(e => e.dataset.sku)")


def widget_skus(page: Any, live_server: Any, store: Store) -> list[str]:
    answer = page.request.get(
        f"{live_server.url}/api/v1/recommendations?site_key={store.site_key}&sku=MUG-0&limit=4",
        headers={"Origin": "https://ann.example"},
    )
    assert answer.status == 200
    return [item["sku"] for item in answer.json()["items"]]


def test_a_rules_preview_changes_when_the_rule_changes(signed_in, shop):
    user, store = shop
    page = signed_in(user, f"/portal/stores/{store.pk}/settings")
    page.fill("#id_preview_sku", "MUG-0")

    page.click("#rules-preview")
    page.wait_for_selector("#preview")
    first = after_skus(page)
    page.fill("#id_exclude_skus", "MUG-1\nMUG-4")
    page.click("#rules-preview")
    page.wait_for_selector("#preview")
    second = after_skus(page)

    assert first == ["MUG-1", "MUG-3", "MUG-4", "MUG-5"]
    assert second == ["MUG-3", "MUG-5", "MUG-6", "MUG-7"]
    assert page.locator("tr[data-rule=excluded_sku] td").all_inner_texts() == ["Excluded SKUs", "0", "2"]
    assert page.locator("#preview-diff").inner_text() == "Leaves the list: MUG-1, MUG-4. Joins the list: MUG-6, MUG-7."
    assert page.errors == []
    page.screenshot(path=SHOTS / "g-settings-preview-desktop.png", full_page=True)


def test_saving_the_rules_changes_what_the_widget_answers(signed_in, shop, live_server):
    user, store = shop
    page = signed_in(user, f"/portal/stores/{store.pk}/settings")
    assert widget_skus(page, live_server, store) == ["MUG-1", "MUG-3", "MUG-4", "MUG-5"]  # now cached for 300 s

    page.fill("#id_exclude_tags", "clearance")
    page.fill("#id_pinned_skus", "MUG-9")
    page.click("#rules-save")
    page.wait_for_selector(".portal-messages li")

    assert page.locator(".portal-messages li").inner_text() == "Rules saved: the widget uses them now."
    assert widget_skus(page, live_server, store) == ["MUG-9", "MUG-1", "MUG-4", "MUG-5"]
    assert page.locator("#id_exclude_tags").input_value() == "clearance"


def test_another_stores_settings_page_is_404(signed_in, shop):
    user, _ = shop
    other = create_store(platform=Store.Platform.CUSTOM, domain="bob.example", name="Bob's")

    page = signed_in(user, f"/portal/stores/{other.pk}/settings")

    assert page.locator("body").inner_text().count("Bob") == 0
    response = page.request.get(page.url)
    assert response.status == 404


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_settings_and_why_pages_fit_the_screen(signed_in, shop, viewport, name):
    user, store = shop
    settings_page = signed_in(user, f"/portal/stores/{store.pk}/settings", viewport=viewport)
    settings_page.fill("#id_preview_sku", "MUG-0")
    settings_page.fill("#id_exclude_tags", "clearance")
    settings_page.click("#rules-preview")
    settings_page.wait_for_selector("#preview")
    why = signed_in(user, f"/portal/stores/{store.pk}/why?sku=MUG-0", viewport=viewport)

    for page, label in ((settings_page, "settings"), (why, "why")):
        page.screenshot(path=SHOTS / f"g-{label}-{name}.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        assert page.errors == []
    # the preview saved nothing: the tag rule is not applied to what shoppers get
    assert why.locator("#served tbody tr").evaluate_all("rows => rows.map(r => r.dataset.sku)") == [
        "MUG-1",
        "MUG-3",
        "MUG-4",
        "MUG-5",
    ]
    assert why.locator("#sources .hotkey").inner_text() == HOTKEY
    assert why.locator("#removed tr[data-sku]").evaluate_all("rows => rows.map(r => r.dataset.rule)") == [
        "out_of_stock"
    ]
    assert why.locator("#substitutions").inner_text() == "Substituted: MUG-5 took the place of MUG-2."
