"""Merchant settings: the rule that keeps a candidate out, the writes and their cache forgetting, the network switch."""

from decimal import Decimal

import pytest

from catalog_sync.tests.factories import ProductFactory
from merchants.exceptions import InvalidRequest
from merchants.tests.factories import StoreFactory
from recommendations import process_state
from recommendations.engine import CatalogItem, MerchantRules, Rejection, rejection_reason
from recommendations.selectors import get_serving_store
from recommendations.selectors.store_settings import RulesSettings, get_rules_settings, is_network_enabled
from recommendations.services.store_settings import (
    save_attribution_settings,
    save_merchant_rules,
    save_network_sharing,
    save_placement_settings,
)
from subnet.services import pick_products_to_ask

ITEMS = {
    "ok": CatalogItem(id="ok", price=10.0),
    "gone": CatalogItem(id="gone", price=10.0, in_stock=False),
    "draft": CatalogItem(id="draft", price=10.0, is_published=False),
    "cheap": CatalogItem(id="cheap", price=1.0),
    "dear": CatalogItem(id="dear", price=100.0),
}


@pytest.mark.parametrize(
    ("item_id", "expected"),
    [
        ("ok", None),
        ("query", Rejection.QUERY_OR_CART),
        ("banned", Rejection.EXCLUDED),
        ("missing", Rejection.UNKNOWN),
        ("gone", Rejection.OUT_OF_STOCK),
        ("draft", Rejection.UNPUBLISHED),
        ("cheap", Rejection.BELOW_MIN_PRICE),
        ("dear", Rejection.ABOVE_MAX_PRICE),
    ],
)
def test_rejection_reason_names_the_rule_that_keeps_an_item_out(item_id, expected):
    rules = MerchantRules(exclude_ids=frozenset({"banned"}), min_price=5.0, max_price=50.0)

    reason = rejection_reason(item_id, lookup=ITEMS.get, rules=rules, never_ids={"query"})

    assert reason == expected


def test_a_rule_turned_off_lets_its_items_through():
    rules = MerchantRules(require_in_stock=False, require_published=False)

    reasons = [rejection_reason(x, lookup=ITEMS.get, rules=rules) for x in ("gone", "draft")]

    assert reasons == [None, None]


@pytest.mark.django_db
def test_saving_rules_keeps_other_settings_and_forgets_the_cached_serving_config():
    store = StoreFactory.create(settings={"currency": "EUR", "allowed_origins": ["https://www.x.example"]})
    ProductFactory.create(store=store, external_id="p1", sku="SKU-1")
    before = get_serving_store(site_key=store.site_key)
    assert before is not None and before.rules.pinned_ids == ()

    save_merchant_rules(store=store, rules=RulesSettings(pinned_skus=("SKU-1",), exclude_tags=("Sale",)))

    store.refresh_from_db()
    assert store.settings["currency"] == "EUR"
    assert store.settings["allowed_origins"] == ["https://www.x.example"]
    assert get_rules_settings(store=store) == RulesSettings(pinned_skus=("SKU-1",), exclude_tags=("Sale",))
    after = get_serving_store(site_key=store.site_key)
    assert after is not None
    assert (after.rules.pinned_ids, after.rules.exclude_tags) == (("p1",), frozenset({"sale"}))


@pytest.mark.django_db
def test_forget_store_leaves_other_stores_cached():
    mine, theirs = StoreFactory.create(), StoreFactory.create()
    get_serving_store(site_key=mine.site_key)
    get_serving_store(site_key=theirs.site_key)

    process_state.forget_store(store_id=mine.id, site_key=mine.site_key)

    assert process_state.serving_stores.get(mine.site_key) is None
    assert process_state.serving_stores.get(theirs.site_key) is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (RulesSettings(price_min_ratio=2.0, price_max_ratio=1.0), "price_min_ratio must not be above price_max_ratio."),
        (RulesSettings(price_max_ratio=101.0), "price_max_ratio: a ratio from 0 to 100 of the viewed product's price."),
        (RulesSettings(exclude_tags=("x",) * 201), "exclude_tags: at most 200 entries."),
        (RulesSettings(pinned_skus=(" ",)), "pinned_skus: each entry must be 1 to 255 characters."),
    ],
)
def test_bad_rules_are_refused_by_the_service(rules, message):
    store = StoreFactory.create()

    with pytest.raises(InvalidRequest) as caught:
        save_merchant_rules(store=store, rules=rules)

    assert caught.value.message == message
    store.refresh_from_db()
    assert store.settings == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"placement": "footer"}, "placement: use one of product, cart, home."),
        ({"layout": "carousel"}, "layout: use one of grid, row."),
        ({"count": 0}, "count: show from 1 to 20 products."),
        ({"title": "x" * 121}, "title: at most 120 characters."),
    ],
)
def test_bad_placement_settings_are_refused(kwargs, message):
    store = StoreFactory.create()
    values = {"placement": "product", "title": "", "count": 4, "layout": "grid", **kwargs}

    with pytest.raises(InvalidRequest) as caught:
        save_placement_settings(store=store, **values)

    assert caught.value.message == message


@pytest.mark.django_db
def test_attribution_window_out_of_range_is_refused():
    store = StoreFactory.create()

    with pytest.raises(InvalidRequest) as caught:
        save_attribution_settings(store=store, assisted=True, window_hours=721)

    assert caught.value.message == "window_hours: give a whole number of hours from 1 to 720."


@pytest.mark.django_db
def test_with_the_network_off_no_product_of_the_store_is_asked_about():
    store = StoreFactory.create()
    ProductFactory.create(store=store, external_id="p1", sku="SKU-1", price=Decimal("5.00"))
    assert [p.sku for p in pick_products_to_ask(store=store, limit=5)] == ["SKU-1"]

    save_network_sharing(store=store, enabled=False)

    store.refresh_from_db()
    assert is_network_enabled(store=store) is False
    assert pick_products_to_ask(store=store, limit=5) == []
