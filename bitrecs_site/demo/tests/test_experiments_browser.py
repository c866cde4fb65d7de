"""A/B arms on the demo storefront, in real headless Chromium: what each arm shows a shopper who consented, what
their events carry, and that a shopper without consent is served the default arm and left out of the experiment."""

import re
from typing import Any

import pytest

from bitrecs_site.demo.tests.conftest import Demo, Shop, sent_events, wait_for_events
from catalog_sync.models import Product
from recommendations.models import OrderSummary, ShopperEvent
from recommendations.process_state import clear_process_caches
from recommendations.services import store_network_list
from recommendations.services.experiments import start_experiment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MINER = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"


def product_with_both_lists(demo: Demo) -> tuple[Product, Any]:
    """The demo product whose local list exists, given a network list of four other products from a miner."""
    product = Product.objects.filter(store=demo.store, handle="golden-horizon-desk-mat-204970974").get()
    others = list(Product.objects.filter(store=demo.store).exclude(id=product.id).exclude(sku="").order_by("-id")[:4])
    network = store_network_list(
        store=demo.store,
        product=product,
        placement="product",
        skus=[p.sku for p in others],
        miner_hotkey=MINER,
        validator="local-validator",
        models_used=["offline"],
        latency_ms=900,
    )
    clear_process_caches()
    return product, network


def card_facts(shop: Shop) -> list[dict[str, str]]:
    shop.cards("product")
    return shop.page.eval_on_selector_all(
        '[data-bitrecs-placement="product"] a.bitrecs-card',
        "cards => cards.map(a => ({sku: a.dataset.bitrecsSku, rec_id: a.dataset.bitrecsRecId,"
        " source: a.dataset.bitrecsSource || '', arm: a.dataset.bitrecsArm || ''}))",
    )


def test_the_interleaved_arm_mixes_both_lists_and_a_click_credits_the_cards_list(open_shop: Any, demo: Demo) -> None:
    # given: a running experiment that puts every consenting visitor in the interleaving arm
    product, network = product_with_both_lists(demo)
    start_experiment(store=demo.store, name="interleave all", weights={"interleave": 1})
    shop: Shop = open_shop(consent=True)

    # when: the shopper opens the product page
    shop.open(f"/demo/products/{product.handle}")
    cards = card_facts(shop)

    # then: the cards come from both lists, each card with its own list's rec id and source
    assert {c["source"] for c in cards} == {"network", "local"}
    assert {c["arm"] for c in cards} == {"interleave"}
    for card in cards:
        assert card["rec_id"].startswith("n_" if card["source"] == "network" else "l_")
    assert {c["rec_id"] for c in cards if c["source"] == "network"} == {network.rec_id}
    # when: they click a card from the local list
    local = next(c for c in cards if c["source"] == "local")
    shop.page.click(f'a.bitrecs-card[data-bitrecs-sku="{local["sku"]}"]')
    shop.page.wait_for_url(re.compile(r"bitrecs_rec_id=l_"))
    # then: the click carries the arm and the local list's rec id, stored with the local source
    (click,) = wait_for_events(lambda e: e["type"] == "click")
    assert (click["sku"], click["rec_id"], click["arm"]) == (local["sku"], local["rec_id"], "interleave")
    stored = ShopperEvent.objects.get(type="click")
    assert (stored.source, stored.arm, stored.miner_hotkey) == ("local", "interleave", "")
    # and the product page's cart form carries the arm next to the rec id
    hidden = dict(
        shop.page.eval_on_selector_all(
            'form[action*="/cart/add"] input[type=hidden]', "inputs => inputs.map(i => [i.name, i.value])"
        )
    )
    assert hidden["properties[_bitrecs_rec_id]"] == local["rec_id"]
    assert hidden["properties[_bitrecs_arm]"] == "interleave"
    assert shop.errors == []


def test_the_holdout_arm_shows_no_widget_and_the_page_stays_intact(open_shop: Any, demo: Demo) -> None:
    # given: every consenting visitor in the holdout arm (the baseline for incremental revenue)
    product, _ = product_with_both_lists(demo)
    start_experiment(store=demo.store, name="holdout all", weights={"holdout": 1})
    shop: Shop = open_shop(consent=True)

    # when
    shop.open(f"/demo/products/{product.handle}")
    shop.page.wait_for_function(
        "!document.querySelector('[data-bitrecs-placement=\"product\"]').classList.contains('bitrecs-busy')"
    )

    # then: no card, nothing visible in the placement, no shift, no error; the product view carries the arm
    box = shop.page.eval_on_selector(
        '[data-bitrecs-placement="product"]',
        "box => ({cards: box.querySelectorAll('a').length,"
        " visible: [...box.querySelectorAll('*')].filter(e => getComputedStyle(e).visibility === 'visible').length})",
    )
    assert box == {"cards": 0, "visible": 0}
    assert shop.layout_shifts() == []
    # and the shop still works; leaving the page sends its events, the product view with the visitor's arm
    shop.page.click('button[data-bitrecs-demo="add-to-cart"]')
    shop.page.wait_for_url(f"{demo.url}/demo/cart")
    (view,) = wait_for_events(lambda e: e["type"] == "view" and e["sku"] == product.sku)
    assert (view["arm"], view["rec_id"]) == ("holdout", "")
    assert [e["type"] for e in sent_events() if e["type"] in ("impression", "click")] == []
    assert shop.errors == []


def test_a_shopper_without_consent_gets_the_default_arm_and_no_arm_on_their_events(open_shop: Any, demo: Demo) -> None:
    # given: an experiment whose weights would put everyone in the holdout, with the network list as the default
    product, network = product_with_both_lists(demo)
    start_experiment(store=demo.store, name="holdout all", weights={"holdout": 1}, default_arm="network")
    shop: Shop = open_shop()  # no consent given

    # when
    shop.open(f"/demo/products/{product.handle}")
    cards = card_facts(shop)
    shop.page.click(f'a.bitrecs-card[data-bitrecs-sku="{cards[0]["sku"]}"]')
    shop.page.wait_for_url(re.compile(r"bitrecs_rec_id="))

    # then: the default arm's list is served, and no event of theirs is counted in the experiment
    assert {c["rec_id"] for c in cards} == {network.rec_id}
    wait_for_events(lambda e: e["type"] == "click")
    sent = sent_events()
    assert {e["type"] for e in sent} == {"view", "impression", "click"}
    assert {(e["arm"], e["session_id"]) for e in sent} == {("", "")}
    assert shop.errors == []


def test_a_consenting_visitors_order_counts_for_their_arm_even_in_the_holdout(open_shop: Any, demo: Demo) -> None:
    # given: every consenting visitor in the holdout arm, so no card is ever clicked
    product, _ = product_with_both_lists(demo)
    experiment = start_experiment(store=demo.store, name="holdout all", weights={"holdout": 1})
    shop: Shop = open_shop(consent=True)

    # when: they buy the product they are looking at
    shop.open(f"/demo/products/{product.handle}")
    session_id = shop.page.evaluate("localStorage.getItem('bitrecs_sid')").split(".")[0]
    assert shop.page.input_value('form[action*="/cart/add"] input[name="attributes[_bitrecs_sid]"]') == session_id
    shop.page.click('button[data-bitrecs-demo="add-to-cart"]')
    shop.page.wait_for_url(f"{demo.url}/demo/cart")
    shop.page.click('button[data-bitrecs-demo="checkout"]')
    shop.page.wait_for_url(f"{demo.url}/demo/thanks")

    # then: the order webhook carried the session as a cart attribute, and the order is the holdout visitor's
    summary = OrderSummary.objects.get(store=demo.store)
    assert (summary.session_id, summary.arm, summary.experiment_id, summary.recommended) == (
        session_id,
        "holdout",
        experiment.id,
        False,
    )
    assert summary.revenue == product.price
    assert shop.errors == []


def test_without_consent_the_cart_carries_no_session(open_shop: Any, demo: Demo) -> None:
    product, _ = product_with_both_lists(demo)
    shop: Shop = open_shop()

    shop.open(f"/demo/products/{product.handle}")
    shop.cards("product")

    assert shop.page.locator('input[name="attributes[_bitrecs_sid]"]').count() == 0
    assert shop.storage() == {"cookies": [], "local": [], "session": []}
