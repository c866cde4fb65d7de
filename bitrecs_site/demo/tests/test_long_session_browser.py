"""A long shopping session in real Chromium: its widget request goes as a form body, and the cards still render."""

import json
from typing import Any

import pytest

from bitrecs_site.demo.tests.conftest import Demo, Shop
from catalog_sync.models import Product

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_session_too_long_for_a_url_is_asked_by_post_and_rendered(open_shop: Any, demo: Demo) -> None:
    # given: a consenting shopper who viewed twenty products with very long SKUs before this page
    product = Product.objects.filter(store=demo.store, handle="golden-horizon-desk-mat-204970974").get()
    shop: Shop = open_shop(consent=True)
    long_skus = [f"VIEWED-{n:02d}-" + "z" * 200 for n in range(20)]
    shop.context.add_init_script(f"localStorage.setItem('bitrecs_viewed', {json.dumps(json.dumps(long_skus))});")
    asked: list[tuple[str, str]] = []
    shop.page.on(
        "request",
        lambda request: (
            asked.append((request.method, request.url)) if "/api/v1/recommendations" in request.url else None
        ),
    )

    # when
    shop.open(f"/demo/products/{product.handle}")
    cards = shop.cards("product")

    # then: the request was a POST to the bare endpoint (nothing in its URL), and the cards are the store's
    assert [method for method, _ in asked] == ["POST"]
    assert asked[0][1].endswith("/api/v1/recommendations")
    assert len(cards) == 4
    assert all(card["rec_id"] for card in cards)
    assert shop.errors == []
