"""The widget on the demo storefront, in real headless Chromium: what a shopper sees, what it sends, what it stores,
and the whole loop from a card to an attributed order line and the miner stats."""

import json
import re
import time
from decimal import Decimal
from typing import Any

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError

from bitrecs_site.demo.tests.conftest import DESKTOP, PHONE, Demo, Shop, sent_events, wait_for_events
from catalog_sync.models import OrderLine, Product
from merchants.models import WebhookEvent
from recommendations.process_state import clear_process_caches
from recommendations.services import store_network_list

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MINER = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"


def product_with_lists(demo: Demo) -> Product:
    return Product.objects.filter(store=demo.store, handle="golden-horizon-desk-mat-204970974").get()


def answer(demo: Demo, **params: Any) -> dict[str, Any]:
    response = requests.get(f"{demo.url}/api/v1/recommendations", params={"site_key": "demo", **params}, timeout=10)
    assert response.status_code == 200
    return dict(response.json())


def usd(price: str) -> str:
    return f"${Decimal(price):,.2f}"


# --- what the shopper sees ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_product_page_cards_are_the_stores_recommendations_with_prices_and_no_layout_shift(
    open_shop: Any, demo: Demo, viewport: dict[str, int]
) -> None:
    # given: the answer arrives after first paint
    product = product_with_lists(demo)
    expected = answer(demo, sku=product.sku, placement="product", limit=4)
    shop: Shop = open_shop(viewport=viewport, slow=True)

    # when
    shop.open(f"/demo/products/{product.handle}")
    cards = shop.cards("product")

    # then: the answer's items, in order, linked with their rec id, priced in dollars
    assert [c["sku"] for c in cards] == [item["sku"] for item in expected["items"]]
    store_skus = set(Product.objects.filter(store=demo.store).values_list("sku", flat=True))
    assert {c["sku"] for c in cards} <= store_skus - {product.sku}
    for card, item in zip(cards, expected["items"], strict=True):
        assert card["rec_id"] == expected["rec_id"]
        assert card["href"] == f"{demo.url}{item['url']}?bitrecs_rec_id={expected['rec_id']}"
        assert card["name"] == item["name"]
        assert card["price"] == usd(item["price"])
        assert card["img"] == {
            "loading": "lazy",
            "width": "180",
            "height": "180",
            "alt": item["name"],
            "src": f"{demo.url}{item['image']}",
        }
    assert (
        shop.page.eval_on_selector('[data-bitrecs-placement="product"] ul', "ul => ul.getAttribute('role')") == "list"
    )
    assert shop.page.text_content('[data-bitrecs-placement="product"] .bitrecs-title') == "You may also like"
    assert shop.layout_shifts() == []
    assert shop.errors == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_page_that_arrives_in_parts_does_not_shift_as_its_consent_banner_arrives(
    open_shop: Any, demo: Demo, viewport: dict[str, int]
) -> None:
    # given: a first visit (the banner asks), the page's HTML arriving in parts cut inside the banner
    product = product_with_lists(demo)
    shop: Shop = open_shop(viewport=viewport)

    # when
    shop.open(f"/in-parts/demo/products/{product.handle}")
    shop.cards("product")

    # then: the banner shows, and nothing moved while the rest of it arrived (it once grew upwards: 0.04 on a phone)
    assert shop.page.is_visible("[data-consent-banner]")
    assert shop.page.inner_text("[data-consent-banner] .actions").split() == ["Decline", "Accept"]
    assert shop.layout_shifts() == []
    assert shop.errors == []


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_home_and_cart_placements_render_without_layout_shift(
    open_shop: Any, demo: Demo, viewport: dict[str, int]
) -> None:
    shop: Shop = open_shop(viewport=viewport, slow=True)
    home = answer(demo, placement="home", limit=4)

    shop.open("/demo/")
    assert [c["sku"] for c in shop.cards("home")] == [item["sku"] for item in home["items"]]
    assert shop.layout_shifts() == []

    # a product in the cart: the cart placement (a row that scrolls sideways) complements it
    product = product_with_lists(demo)
    shop.open(f"/demo/products/{product.handle}")
    shop.page.click('button[data-bitrecs-demo="add-to-cart"]')
    shop.page.wait_for_url(f"{demo.url}/demo/cart")
    cart_cards = shop.cards("cart")
    assert product.sku not in [c["sku"] for c in cart_cards]
    assert shop.page.eval_on_selector('[data-bitrecs-placement="cart"]', "box => box.classList.contains('bitrecs-row')")
    assert shop.layout_shifts() == []
    assert shop.errors == []


def test_keyboard_reaches_every_card_and_its_button_with_a_visible_focus_ring(open_shop: Any, demo: Demo) -> None:
    shop: Shop = open_shop()
    shop.open(f"/demo/products/{product_with_lists(demo).handle}")
    cards = shop.cards("product")

    focused: list[dict[str, str]] = []
    for _ in range(80):
        shop.page.keyboard.press("Tab")
        state = shop.page.evaluate(
            """() => { const el = document.activeElement, style = getComputedStyle(el);
                return {cls: el.className, sku: el.dataset.bitrecsSku || "", outline: style.outlineStyle,
                        width: style.outlineWidth}; }"""
        )
        if "bitrecs-" in state["cls"]:
            focused.append(state)
        if len(focused) == 2 * len(cards):
            break

    assert [f["cls"] for f in focused] == ["bitrecs-card", "bitrecs-add"] * len(cards)
    assert [f["sku"] for f in focused[::2]] == [c["sku"] for c in cards]
    assert {(f["outline"], f["width"]) for f in focused} == {("solid", "3px")}


# --- events, consent and attribution -----------------------------------------------------------------------------


def test_with_consent_a_click_is_sent_with_the_cards_rec_id_and_session_and_carried_into_the_product_form(
    open_shop: Any, demo: Demo
) -> None:
    # given
    shop: Shop = open_shop(consent=True)
    product = product_with_lists(demo)
    shop.open(f"/demo/products/{product.handle}")
    cards = shop.cards("product")
    target = cards[1]

    # when: the shopper clicks the second card
    shop.page.click(f'a.bitrecs-card[data-bitrecs-sku="{target["sku"]}"]')
    shop.page.wait_for_url(re.compile(r"bitrecs_rec_id="))

    # then: the click went out as a text/plain beacon with the card's rec id and the visitor's session id
    (click,) = wait_for_events(lambda e: e["type"] == "click")
    session_id = shop.page.evaluate("localStorage.getItem('bitrecs_sid')").split(".")[0]
    assert UUID.match(session_id)
    assert {k: click[k] for k in ("content_type", "site_key", "sku", "rec_id", "placement", "session_id")} == {
        "content_type": "text/plain",
        "site_key": "demo",
        "sku": target["sku"],
        "rec_id": target["rec_id"],
        "placement": "product",
        "session_id": session_id,
    }
    # with the view of the page it came from and an impression of each card (all four were in view)
    sent = sent_events()
    assert [e["sku"] for e in sent if e["type"] == "view"] == [product.sku]
    assert sorted(e["sku"] for e in sent if e["type"] == "impression") == sorted(c["sku"] for c in cards)
    assert {e["rec_id"] for e in sent if e["type"] == "impression"} == {target["rec_id"]}
    assert len({e["event_id"] for e in sent}) == len(sent)
    # and the product page it opened puts the rec id on the cart form as a hidden line property
    hidden = shop.page.eval_on_selector_all(
        'form[action*="/cart/add"] input[type=hidden]', "inputs => inputs.map(i => [i.name, i.value])"
    )
    assert ["properties[_bitrecs_rec_id]", target["rec_id"]] in hidden
    assert shop.errors == []


def test_a_network_card_leads_to_an_order_line_attributed_to_its_miner(open_shop: Any, demo: Demo) -> None:
    # given: the network's answer for the product, from a miner
    product = product_with_lists(demo)
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
    started = int(time.time())
    shop: Shop = open_shop(consent=True)

    # when: card -> product page -> add to cart -> checkout
    shop.open(f"/demo/products/{product.handle}")
    cards = shop.cards("product")
    assert {c["rec_id"] for c in cards} == {network.rec_id}
    shop.page.click(f'a.bitrecs-card[data-bitrecs-sku="{cards[0]["sku"]}"]')
    shop.page.wait_for_url(re.compile(r"bitrecs_rec_id=n_"))
    shop.page.click('button[data-bitrecs-demo="add-to-cart"]')
    shop.page.wait_for_url(f"{demo.url}/demo/cart")
    assert shop.page.get_attribute("[data-cart-line]", "data-rec-id") == network.rec_id
    shop.page.click('button[data-bitrecs-demo="checkout"]')
    shop.page.wait_for_url(f"{demo.url}/demo/thanks")

    # then: the signed orders/create webhook was accepted and stored the line with the rec id
    assert "was accepted by /webhooks/shopify with HTTP 200" in (shop.page.text_content(".notice") or "")
    event = WebhookEvent.objects.get(store=demo.store, topic="orders/create")
    assert event.status == WebhookEvent.Status.PROCESSED
    line = OrderLine.objects.get(store=demo.store)
    bought = next(p for p in others if p.sku == cards[0]["sku"])
    assert (line.sku, line.product_external_id, line.quantity, line.price, line.currency, line.rec_id) == (
        bought.sku,
        bought.external_id,
        1,
        bought.price,
        "USD",
        network.rec_id,
    )
    # the purchase is in the miner stats, credited to the miner whose answer it came from
    stats = requests.get(f"{demo.url}/subnet/miner/stats/from/{started - 5}/to/{int(time.time()) + 5}", timeout=10)
    assert [(a["action"], a["sku"], a["hot_key"], a["site_info"]) for a in stats.json()] == [
        ("PURCHASE", bought.sku, MINER, "demo")
    ]
    # and the product form's add to cart went out as an event with the rec id
    (added,) = wait_for_events(lambda e: e["type"] == "add_to_cart")
    assert (added["sku"], added["rec_id"]) == (bought.sku, network.rec_id)
    assert shop.errors == []


def test_a_cards_add_to_cart_button_puts_the_product_in_the_cart_with_its_rec_id(open_shop: Any, demo: Demo) -> None:
    shop: Shop = open_shop(consent=True)
    shop.open(f"/demo/products/{product_with_lists(demo).handle}")
    card = shop.cards("product")[2]

    shop.page.click(f'[data-bitrecs-sku="{card["sku"]}"] ~ button.bitrecs-add')
    shop.page.wait_for_function("document.querySelector('[data-cart-count]').textContent.trim() === '1'")
    shop.open("/demo/cart")

    assert shop.page.eval_on_selector_all(
        "[data-cart-line]", "lines => lines.map(l => [l.dataset.sku, l.dataset.recId])"
    ) == [[card["sku"], card["rec_id"]]]
    shop.open("/demo/")  # leaving the page sends the queue
    (added,) = wait_for_events(lambda e: e["type"] == "add_to_cart")
    assert (added["sku"], added["rec_id"], added["placement"]) == (card["sku"], card["rec_id"], "product")
    assert shop.errors == []


def test_before_consent_nothing_is_stored_and_only_anonymous_events_are_sent(open_shop: Any, demo: Demo) -> None:
    # given: a shopper who has not answered the consent banner
    shop: Shop = open_shop()
    product = product_with_lists(demo)
    shop.open(f"/demo/products/{product.handle}")
    assert shop.page.is_visible("[data-consent-banner]")
    cards = shop.cards("product")

    # when: they look and click
    shop.page.click(f'a.bitrecs-card[data-bitrecs-sku="{cards[0]["sku"]}"]')
    shop.page.wait_for_url(re.compile(r"bitrecs_rec_id="))

    # then: recommendations showed, events went out without a session id, nothing is kept on the device
    wait_for_events(lambda e: e["type"] == "click")
    sent = sent_events()
    assert {e["type"] for e in sent} == {"view", "impression", "click"}
    assert {e["session_id"] for e in sent} == {""}
    assert shop.storage() == {"cookies": [], "local": [], "session": []}

    # when they decline, only the consent tool's record of the choice is kept
    shop.page.click('[data-consent="deny"]')
    shop.open(f"/demo/products/{product.handle}")
    shop.cards("product")
    assert shop.storage() == {"cookies": ["demo_consent"], "local": [], "session": []}
    assert shop.errors == []


def test_a_store_that_turns_anonymous_events_off_gets_none_before_consent(open_shop: Any, demo: Demo) -> None:
    # given: the answer carries the store's settings with anonymous events off
    shop: Shop = open_shop()

    def with_settings(route: Any) -> None:
        try:
            response = route.fetch()
            body = {**response.json(), "settings": {"anonymous_events": False, "title": "Picked for you"}}
            route.fulfill(response=response, body=json.dumps(body))
        except PlaywrightError:
            pass  # the page navigated away (or the test ended) while this answer was in flight

    shop.context.route("**/api/v1/recommendations?*", with_settings)
    product = product_with_lists(demo)
    shop.open(f"/demo/products/{product.handle}")
    first = shop.cards("product")[0]
    assert shop.page.text_content('[data-bitrecs-placement="product"] .bitrecs-title') == "Picked for you"

    # when: the shopper clicks without consent, then accepts on the next page and clicks again
    shop.page.click(f'a.bitrecs-card[data-bitrecs-sku="{first["sku"]}"]')
    shop.page.wait_for_url(re.compile(r"bitrecs_rec_id="))
    shop.page.click('[data-consent="grant"]')
    second = shop.cards("product")[0]
    shop.page.click(f'a.bitrecs-card[data-bitrecs-sku="{second["sku"]}"]')
    shop.page.wait_for_url(re.compile(r"bitrecs_rec_id=.*"))

    # then: only what happened after consent was sent, all of it with the session id
    wait_for_events(lambda e: e["type"] == "click")
    sent = sent_events()
    assert [e["sku"] for e in sent if e["type"] == "click"] == [second["sku"]]
    assert len({e["session_id"] for e in sent}) == 1
    assert UUID.match(sent[0]["session_id"])
    assert shop.errors == []


# --- when the API is not there ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "viewport", "collapsed"),
    [
        ("blocked", DESKTOP, False),  # in view: the reserved space stays, empty
        ("error", DESKTOP, False),
        ("empty", DESKTOP, False),
        ("blocked", PHONE, True),  # below the fold: the space goes
        # no script at all: the page's own reservation goes blank (after the CSS's 10 s), the space stays
        ("script-blocked", DESKTOP, False),
    ],
)
def test_without_recommendations_the_page_is_intact(
    open_shop: Any, demo: Demo, failure: str, viewport: dict[str, int], collapsed: bool
) -> None:
    shop: Shop = open_shop(viewport=viewport, slow=True)

    def fail(route: Any) -> None:
        if failure == "error":
            route.fulfill(status=500, content_type="application/json", body='{"error": "oops"}')
        elif failure == "empty":
            route.fulfill(status=200, content_type="application/json", body='{"rec_id": null, "items": []}')
        else:
            route.abort("blockedbyclient")

    shop.context.route("**/widget.js" if failure == "script-blocked" else "**/api/v1/recommendations?*", fail)
    product = product_with_lists(demo)

    shop.open(f"/demo/products/{product.handle}")
    if failure == "script-blocked":
        shop.page.wait_for_function(
            "[...document.querySelectorAll('[data-bitrecs-placement] *')]"
            ".every(e => getComputedStyle(e).visibility !== 'visible')",
            timeout=20_000,
        )
    else:
        shop.page.wait_for_function(
            "(() => { const box = document.querySelector('[data-bitrecs-placement]');"
            " return !box.classList.contains('bitrecs-busy'); })()"
        )
    shop.page.wait_for_load_state("networkidle")

    box = shop.page.eval_on_selector(
        '[data-bitrecs-placement="product"]',
        "box => ({cards: box.querySelectorAll('a').length, height: box.getBoundingClientRect().height,"
        " visible: [...box.querySelectorAll('*')].filter(e => getComputedStyle(e).visibility === 'visible').length})",
    )
    assert box["cards"] == 0
    assert box["visible"] == 0
    assert (box["height"] == 0) is collapsed
    assert shop.layout_shifts() == []
    assert shop.errors == []
    # the shop still works
    shop.page.click('button[data-bitrecs-demo="add-to-cart"]')
    shop.page.wait_for_url(f"{demo.url}/demo/cart")
    assert shop.page.eval_on_selector_all("[data-cart-line]", "lines => lines.map(l => l.dataset.sku)") == [product.sku]
