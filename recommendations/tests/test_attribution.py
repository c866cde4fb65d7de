"""Order attribution: rec ids on order lines credit the list's source, miner and arm; revenue net of discounts
and refunds, never tax or shipping; the assisted fallback is off unless the store turns it on, and kept apart."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from catalog_sync.models import OrderLine
from merchants.models import Store
from merchants.tests.factories import PlatformCredentialFactory, StoreFactory
from recommendations.models import AttributedLine, NetworkAnswer, RecommendationList, ShopperEvent
from recommendations.services.attribution import (
    LineExtras,
    OrderExtras,
    attribute_order,
    attribute_webhook_order,
    order_extras_from_webhook,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Store:
    return StoreFactory.create(site_key="sk_attr")


def order_line(store: Store, line_id: str, *, price: str = "20.00", quantity: int = 1, **kw: Any) -> OrderLine:
    return OrderLine.objects.create(
        store=store,
        order_id="1001",
        line_id=line_id,
        created_at=T0,
        price=Decimal(price),
        quantity=quantity,
        currency="EUR",
        **kw,
    )


def credited() -> list[tuple[Any, ...]]:
    return list(
        AttributedLine.objects.order_by("line_id").values_list(
            "line_id", "kind", "rec_id", "source", "miner_hotkey", "validator", "placement", "arm", "gross", "refunded"
        )
    )


def test_rec_ids_credit_network_and_local_lists_with_the_miner_and_arm(store: Store) -> None:
    NetworkAnswer.objects.create(
        store=store, placement="product", rec_id="n_net1", miner_hotkey="5Miner", validator="http://v:7779"
    )
    RecommendationList.objects.create(store=store, placement="cart", source="local", rec_id="l_loc1", query_id="p1")
    order_line(store, "a", rec_id="n_net1", sku="TEE", quantity=2)
    order_line(store, "b", rec_id="l_loc1", price="5.50")
    order_line(store, "c", rec_id="", price="99.00")  # bought without a recommendation
    extras = OrderExtras(order_id="1001", lines={"a": LineExtras(arm="network"), "b": LineExtras(arm="bogus")})

    result = attribute_order(store=store, order_id="1001", extras=extras)

    assert credited() == [
        ("a", "deterministic", "n_net1", "network", "5Miner", "http://v:7779", "product", "network",
         Decimal("40.00"), Decimal("0.00")),
        ("b", "deterministic", "l_loc1", "local", "", "", "cart", "", Decimal("5.50"), Decimal("0.00")),
    ]  # fmt: skip
    assert (result.deterministic, result.assisted, result.revenue, result.day) == (2, 0, Decimal("45.50"), "2026-11-20")


def test_a_rebuilt_local_list_still_credits_local_and_foreign_ids_credit_nothing(store: Store) -> None:
    other = StoreFactory.create(site_key="sk_other")
    NetworkAnswer.objects.create(store=other, placement="product", rec_id="n_theirs", miner_hotkey="5Else")
    order_line(store, "a", rec_id="l_rebuilt_since")
    order_line(store, "b", rec_id="n_theirs")
    order_line(store, "c", rec_id="x_not_ours")

    attribute_order(store=store, order_id="1001")

    assert [(r[0], r[3], r[4]) for r in credited()] == [("a", "local", "")]


def test_discounts_and_refunds_come_off_and_an_update_rewrites_the_line(store: Store) -> None:
    order_line(store, "a", rec_id="l_x", price="30.00", quantity=2)

    attribute_order(
        store=store, order_id="1001", extras=OrderExtras("1001", lines={"a": LineExtras(discount=Decimal("6.00"))})
    )
    assert [(r[8], r[9]) for r in credited()] == [(Decimal("54.00"), Decimal("0.00"))]

    refunded = OrderExtras("1001", lines={"a": LineExtras(discount=Decimal("6.00"), refunded_amount=Decimal("27.00"))})
    result = attribute_order(store=store, order_id="1001", extras=refunded)

    assert [(r[8], r[9]) for r in credited()] == [(Decimal("54.00"), Decimal("27.00"))]
    assert result.revenue == Decimal("27.00")
    assert AttributedLine.objects.get().revenue == Decimal("27.00")


def test_a_refund_never_takes_more_than_the_line_earned(store: Store) -> None:
    order_line(store, "a", rec_id="l_x", price="10.00")

    attribute_order(
        store=store,
        order_id="1001",
        extras=OrderExtras("1001", lines={"a": LineExtras(refunded_amount=Decimal("15.00"))}),
    )

    assert AttributedLine.objects.get().revenue == Decimal("0.00")


def test_an_order_level_refund_is_spread_over_lines_by_their_amount(store: Store) -> None:
    order_line(store, "a", rec_id="l_x", price="30.00")
    order_line(store, "b", rec_id="", price="10.00")

    attribute_order(store=store, order_id="1001", extras=OrderExtras("1001", order_refund=Decimal("10.00")))

    assert [(r[0], r[8], r[9]) for r in credited()] == [("a", Decimal("30.00"), Decimal("7.50"))]


def test_lines_gone_from_the_order_lose_their_credit(store: Store) -> None:
    order_line(store, "a", rec_id="l_x")
    order_line(store, "b", rec_id="l_y")
    attribute_order(store=store, order_id="1001")
    OrderLine.objects.filter(line_id="b").delete()

    result = attribute_order(store=store, order_id="1001")

    assert [r[0] for r in credited()] == ["a"]
    assert result.removed == 1


def _click(store: Store, *, at: datetime, sku: str = "MUG", session: str = "sess-abcdef") -> None:
    ShopperEvent.objects.create(
        store=store,
        event_id=f"c-{at.timestamp()}-{sku}",
        type="click",
        occurred_at=at,
        received_at=at,
        sku=sku,
        rec_id="n_clicked",
        source="network",
        miner_hotkey="5Miner",
        placement="product",
        session_id=session,
    )


def test_assisted_sales_are_off_by_default(store: Store) -> None:
    _click(store, at=T0 - timedelta(hours=1))
    order_line(store, "a", sku="MUG")

    attribute_order(store=store, order_id="1001", session_id="sess-abcdef")

    assert credited() == []


def test_assisted_sales_need_a_click_of_that_product_in_the_session_within_the_window(store: Store) -> None:
    store.settings = {"attribution": {"assisted": True, "window_hours": 24}}
    store.save()
    _click(store, at=T0 - timedelta(hours=2))  # counts
    _click(store, at=T0 - timedelta(hours=30), sku="OLD")  # outside the window
    _click(store, at=T0 - timedelta(hours=1), sku="OTHER", session="sess-someone")  # another session
    order_line(store, "a", sku="MUG", price="12.00")
    order_line(store, "b", sku="OLD")
    order_line(store, "c", sku="OTHER")

    result = attribute_order(store=store, order_id="1001", session_id="sess-abcdef")

    assert credited() == [
        ("a", "assisted", "n_clicked", "network", "", "", "product", "", Decimal("12.00"), Decimal("0.00"))
    ]
    assert (result.deterministic, result.assisted) == (0, 1)


def test_shopify_order_bodies_give_arms_discounts_refunds_and_the_session() -> None:
    body = {
        "id": 1001,
        "note_attributes": [{"name": "_bitrecs_sid", "value": "sess-abcdef"}],
        "line_items": [
            {
                "id": 11,
                "properties": [
                    {"name": "_bitrecs_rec_id", "value": "n_1"},
                    {"name": "_bitrecs_arm", "value": "interleave"},
                ],
                "discount_allocations": [{"amount": "2.50"}, {"amount": "0.50"}],
            },
            {"id": 12, "properties": {"_bitrecs_arm": "local"}, "total_discount": "1.00"},
            "junk",
        ],
        "refunds": [
            {"refund_line_items": [{"line_item_id": 11, "quantity": 1, "subtotal": 7.5}]},
            {"refund_line_items": [{"line_item_id": 11, "quantity": 1, "subtotal": "2.50"}, None]},
        ],
    }

    extras = order_extras_from_webhook(platform="shopify", body=body)

    assert extras == OrderExtras(
        order_id="1001",
        session_id="sess-abcdef",
        lines={
            "11": LineExtras(arm="interleave", discount=Decimal("3.00"), refunded_amount=Decimal("10.00")),
            "12": LineExtras(arm="local", discount=Decimal("1.00")),
        },
    )


def test_woocommerce_order_bodies_give_arms_refunds_and_the_session() -> None:
    body = {
        "id": 77,
        "meta_data": [{"key": "_bitrecs_sid", "value": "sess-woo-1234"}],
        "line_items": [{"id": 5, "meta_data": [{"key": "_bitrecs_arm", "value": "holdout"}]}],
        "refunds": [{"id": 9, "total": "-4.00"}, {"id": 10, "total": "-1.5"}],
    }

    extras = order_extras_from_webhook(platform="woocommerce", body=body)

    assert extras == OrderExtras(
        order_id="77", session_id="sess-woo-1234", lines={"5": LineExtras(arm="holdout")}, order_refund=Decimal("5.50")
    )


@pytest.mark.parametrize("body", [None, [], {}, {"id": True}, {"id": {"x": 1}}])
def test_unreadable_order_bodies_give_nothing(body: Any) -> None:
    assert order_extras_from_webhook(platform="shopify", body=body) is None


def test_hostile_values_in_an_order_body_count_as_absent() -> None:
    body = {
        "id": "gid://shopify/Order/5",
        "line_items": [{"id": 1, "discount_allocations": [{"amount": "NaN"}, {"amount": True}, {"amount": "1e999"}]}],
        "refunds": [{"refund_line_items": [{"line_item_id": 1, "subtotal": "Infinity"}]}, "x"],
        "note_attributes": "nope",
    }

    assert order_extras_from_webhook(platform="shopify", body=body) == OrderExtras(
        order_id="5", lines={"1": LineExtras()}
    )


# --- through the order webhook -------------------------------------------------------------------------------

SHOP = "attribution-demo.myshopify.com"


def test_a_signed_order_webhook_credits_the_miner_and_the_arm_and_an_update_takes_the_refund_off(
    client: Any, fake_shopify: Any, django_capture_on_commit_callbacks: Any
) -> None:
    store = StoreFactory.create(domain=SHOP, site_key="sk_hook")
    PlatformCredentialFactory.create(store=store, access_token="shpat_attr")
    NetworkAnswer.objects.create(store=store, placement="product", rec_id="n_hook1", miner_hotkey="5Miner")
    order = {
        "id": 9001,
        "created_at": "2026-11-20T10:00:00-05:00",
        "currency": "EUR",
        "total_tax": "9.50",
        "shipping_lines": [{"price": "4.90"}],
        "line_items": [
            {
                "id": 1,
                "product_id": 501,
                "sku": "SCARF-RED",
                "quantity": 2,
                "price": "25.00",
                "discount_allocations": [{"amount": "5.00"}],
                "properties": [
                    {"name": "_bitrecs_rec_id", "value": "n_hook1"},
                    {"name": "_bitrecs_arm", "value": "interleave"},
                ],
            },
            {"id": 2, "product_id": 502, "sku": "HAT", "quantity": 1, "price": "30.00"},
        ],
    }

    with django_capture_on_commit_callbacks(execute=True):
        fake_shopify.deliver_webhook(client, topic="orders/create", shop=SHOP, payload=order, event_id="o-1")

    assert credited() == [
        ("1", "deterministic", "n_hook1", "network", "5Miner", "", "product", "interleave",
         Decimal("45.00"), Decimal("0.00")),
    ]  # fmt: skip
    stats = client.get(f"/subnet/miner/stats/from/{int(T0.timestamp()) - 86400}/to/{int(T0.timestamp()) + 86400}")
    assert [(a["action"], a["sku"], a["hot_key"]) for a in stats.json()] == [("PURCHASE", "SCARF-RED", "5Miner")]

    refunded = {**order, "refunds": [{"refund_line_items": [{"line_item_id": 1, "quantity": 1, "subtotal": "22.50"}]}]}
    attribute_webhook_order(store=store, platform="shopify", body=refunded)

    assert AttributedLine.objects.get().revenue == Decimal("22.50")
